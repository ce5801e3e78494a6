//! Offloaded payloads going up: `PUT /api/v2/packets/{filename}` answers a
//! presigned upload URL, and `PUT /uploads/{env}/{filename}` behind it takes
//! the bytes, as S3 would. A trigger whose payload is `application/store`
//! with that path then gets the bytes as its payload packet, so a payload of
//! any size the SDK offloads (128 KiB and more) round-trips byte for byte.

use super::App;
use super::packets::{no_such_key, signature_refusal, xml};
use super::reply::{Ctx, Reply, percent_decode};
use crate::body::Body;
use crate::packet::{Content, Offload, Packet, PacketType, UrlBehaviour};
use crate::presign::s3_error;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// Where uploads go.
pub const PREFIX: &str = "/uploads/";
/// The largest upload: the 3 MiB payload limit.
pub const MAX_UPLOAD: usize = 3 * 1024 * 1024;
/// The longest file name the upload route takes.
const MAX_NAME: usize = 1024;

/// `PUT /api/v2/packets/{filename}`: where to upload.
pub fn presign(ctx: &Ctx<'_>, raw_name: &str) -> Reply {
    let name = percent_decode(raw_name);
    if name.is_empty() || name.len() > MAX_NAME {
        return Reply::error(StatusCode::BAD_REQUEST, "Params Error");
    }
    let state = ctx.app.state();
    let env = state.ledger.env_or_create(ctx.key);
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let path = format!("{PREFIX}{}/{encoded}", env.fingerprint);
    let url = format!("http://{}{path}?{}", ctx.host(), state.presigner.query(&path, ctx.now));
    Reply::json(StatusCode::OK, &json!({ "presignedUrl": url, "storagePath": name }))
}

/// `PUT /uploads/{env}/{filename}?X-Amz-…`: keeps the bytes for a trigger.
pub async fn handle<B>(app: &App, req: &Request<()>, body: B) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let state = app.state();
    let request_id = format!("{:016X}", state.journal.next_seq());
    if req.method() != Method::PUT {
        let mut response = xml(
            StatusCode::METHOD_NOT_ALLOWED,
            s3_error("MethodNotAllowed", "The specified method is not allowed against this resource.", "", &request_id),
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("PUT"));
        return response;
    }
    let path = req.uri().path();
    let now = state.clock.now();
    if let Some(refused) = signature_refusal(&state.presigner, path, req.uri().query(), now, &request_id) {
        return refused;
    }
    let Some((fp, name)) = path.strip_prefix(PREFIX).and_then(|rest| rest.split_once('/')) else {
        return no_such_key(&request_id);
    };
    let name = percent_decode(name);
    let kind = match req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(t) if t.starts_with("application/super+json") => PacketType::SuperJson,
        Some(t) if t.starts_with("text/plain") => PacketType::Text,
        _ => PacketType::Json,
    };
    let bytes: Bytes = match Limited::new(body, MAX_UPLOAD).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return xml(
                StatusCode::BAD_REQUEST,
                s3_error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", "", &request_id),
            );
        }
    };
    let packet =
        Arc::new(Packet { kind, content: Content::Bytes(bytes), offload: Offload::Always, url: UrlBehaviour::Valid });
    let caps = state.ledger.caps();
    for env in state.ledger.by_fingerprint(fp) {
        env.with(|st| st.put_upload(&caps, name.clone(), packet.clone()));
    }
    let mut response = Response::new(Body::full(Bytes::new()));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", v);
    }
    response
}
