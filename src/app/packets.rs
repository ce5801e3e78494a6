//! `GET|HEAD /packets/{runId}/{payload|output}.{ext}`: offloaded packets
//! behind S3-style presigned URLs. No key is needed (whoever holds the URL
//! may read it, as in production); the signature and its expiry on the mock
//! clock decide. `Range` works as on S3 (206, 416).

use super::App;
use crate::body::{Body, file_body, open_regular};
use crate::packet::{Content, Packet, UrlBehaviour};
use crate::presign::{EXPIRES_SECS, Presigner, Refusal, s3_error, s3_time};
use crate::time::Millis;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// Where packets are served.
pub const PREFIX: &str = "/packets/";

/// Which packet of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Payload,
    Output,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Payload => "payload",
            Which::Output => "output",
        }
    }
}

/// The presigned URL of a packet, signed at `now` (or already expired when the
/// scenario says so).
pub fn url(presigner: &Presigner, host: &str, run_id: &str, which: Which, packet: &Packet, now: Millis) -> String {
    let path = format!("{PREFIX}{run_id}/{}.{}", which.name(), packet.kind.extension());
    let signed_at = if packet.url == UrlBehaviour::Expired { now.plus(-(EXPIRES_SECS + 1) * 1000) } else { now };
    format!("http://{host}{path}?{}", presigner.query(&path, signed_at))
}

/// The run id of a packet path, for the journal.
pub fn run_id(path: &str) -> Option<&str> {
    path.strip_prefix(PREFIX)?.split('/').next().filter(|id| !id.is_empty())
}

fn parse(path: &str) -> Option<(&str, Which, &str)> {
    let (run_id, file) = path.strip_prefix(PREFIX)?.split_once('/')?;
    let (name, ext) = file.split_once('.')?;
    let which = match name {
        "payload" => Which::Payload,
        "output" => Which::Output,
        _ => return None,
    };
    Some((run_id, which, ext))
}

pub(super) fn xml(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

pub(super) fn no_such_key(request_id: &str) -> Response<Body> {
    xml(StatusCode::NOT_FOUND, s3_error("NoSuchKey", "The specified key does not exist.", "", request_id))
}

/// Checks a presigned URL's signature and expiry (GETs of packets and PUTs
/// of uploads alike): S3's answer when it is refused, `None` when it holds.
pub(super) fn signature_refusal(
    presigner: &Presigner,
    path: &str,
    query: Option<&str>,
    now: Millis,
    request_id: &str,
) -> Option<Response<Body>> {
    match presigner.verify(path, query.unwrap_or(""), now) {
        Ok(()) => None,
        Err(Refusal::SignatureDoesNotMatch) => Some(xml(
            StatusCode::FORBIDDEN,
            s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                "",
                request_id,
            ),
        )),
        Err(Refusal::Expired { signed_at, expires_secs }) => {
            let extra = format!(
                "<X-Amz-Expires>{expires_secs}</X-Amz-Expires><Expires>{}</Expires><ServerTime>{}</ServerTime>",
                s3_time(signed_at.plus(expires_secs * 1000)),
                s3_time(now)
            );
            Some(xml(StatusCode::FORBIDDEN, s3_error("AccessDenied", "Request has expired", &extra, request_id)))
        }
    }
}

/// A single byte range, as S3 reads `Range`.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn range(header: Option<&HeaderValue>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    // S3 serves the whole object for several ranges or a malformed one.
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((from, to)) = spec.split_once('-') else { return Range::Whole };
    match (from.trim().parse::<u64>().ok(), to.trim().parse::<u64>().ok()) {
        (Some(start), _) if start >= size => Range::Unsatisfiable,
        (Some(start), Some(end)) if end >= start => Range::Part(start, end.min(size - 1) + 1),
        (Some(_), Some(_)) => Range::Whole,
        (Some(start), None) if to.trim().is_empty() => Range::Part(start, size),
        (None, Some(0)) if from.trim().is_empty() => Range::Unsatisfiable,
        (None, Some(suffix)) if from.trim().is_empty() => Range::Part(size.saturating_sub(suffix), size),
        _ => Range::Whole,
    }
}

/// The body of `[start, end)`; `None` when the packet's file is gone or is
/// no longer a regular file.
async fn body_of(packet: &Packet, start: u64, end: u64) -> Option<Body> {
    Some(match &packet.content {
        Content::Bytes(bytes) => Body::full(bytes.slice(start as usize..end as usize)),
        Content::Generated(g) => Body::Generated { packet: Arc::new(g.clone()), pos: start, end },
        Content::File { path, .. } => {
            let path = path.clone();
            let file = tokio::task::spawn_blocking(move || open_regular(&path)).await.ok()?.ok()?;
            file_body(file, start, end)
        }
    })
}

/// Answers a packet request.
pub async fn handle<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let state = app.state();
    let request_id = format!("{:016X}", state.journal.next_seq());
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = xml(
            StatusCode::METHOD_NOT_ALLOWED,
            s3_error("MethodNotAllowed", "The specified method is not allowed against this resource.", "", &request_id),
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = req.uri().path();
    let world = app.world();
    let now = state.clock.now();
    if let Some(refused) = signature_refusal(&state.presigner, path, req.uri().query(), now, &request_id) {
        return refused;
    }
    // As on S3, the signature is checked before the key is looked up, so a
    // URL reveals nothing about objects it was not signed for.
    let Some((run_id, which, ext)) = parse(path) else { return no_such_key(&request_id) };
    let packet = world
        .store
        .related(run_id)
        .and_then(|run| match which {
            Which::Payload => run.payload_packet.clone(),
            Which::Output => run.output_packet.clone(),
        })
        .or_else(|| state.ledger.packet(run_id, which == Which::Output, now));
    let Some(packet) = packet.filter(|p| p.kind.extension() == ext && p.url != UrlBehaviour::NotFound) else {
        return no_such_key(&request_id);
    };
    // A truncated URL serves a complete response with only the first half.
    let size = if packet.url == UrlBehaviour::Truncated { packet.size() / 2 } else { packet.size() };
    let (status, start, end) = match range(req.headers().get(header::RANGE), size) {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end),
        Range::Unsatisfiable => {
            let mut response = xml(
                StatusCode::RANGE_NOT_SATISFIABLE,
                s3_error(
                    "InvalidRange",
                    "The requested range is not satisfiable",
                    &format!("<RangeRequested>{}</RangeRequested><ActualObjectSize>{size}</ActualObjectSize>", {
                        let asked = req.headers().get(header::RANGE).and_then(|h| h.to_str().ok()).unwrap_or("");
                        // Quoted as every error quotes input: a short prefix, and no markup.
                        crate::excerpt::quote(asked).replace('&', "&amp;").replace('<', "&lt;")
                    }),
                    &request_id,
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
    };
    let body = if req.method() == Method::HEAD {
        Body::Full(None)
    } else {
        match body_of(&packet, start, end).await {
            Some(body) => body,
            None => {
                return xml(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    s3_error(
                        "InternalError",
                        "The packet's file is missing or is not a regular file.",
                        "",
                        &request_id,
                    ),
                );
            }
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(packet.kind.content_type()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        headers.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_s3() {
        let h = |s: &'static str| Some(HeaderValue::from_static(s));
        assert_eq!(range(None, 100), Range::Whole);
        assert_eq!(range(h("bytes=0-9").as_ref(), 100), Range::Part(0, 10));
        assert_eq!(range(h("bytes=90-").as_ref(), 100), Range::Part(90, 100));
        assert_eq!(range(h("bytes=-10").as_ref(), 100), Range::Part(90, 100));
        assert_eq!(range(h("bytes=-1000").as_ref(), 100), Range::Part(0, 100));
        assert_eq!(range(h("bytes=50-1000").as_ref(), 100), Range::Part(50, 100));
        assert_eq!(range(h("bytes=100-").as_ref(), 100), Range::Unsatisfiable);
        assert_eq!(range(h("bytes=-0").as_ref(), 100), Range::Unsatisfiable);
        assert_eq!(range(h("bytes=9-3").as_ref(), 100), Range::Whole);
        assert_eq!(range(h("bytes=0-1,5-6").as_ref(), 100), Range::Whole);
        assert_eq!(range(h("items=0-1").as_ref(), 100), Range::Whole);
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/packets/run_a/payload.json"), Some(("run_a", Which::Payload, "json")));
        assert_eq!(parse("/packets/run_a/output.txt"), Some(("run_a", Which::Output, "txt")));
        assert_eq!(parse("/packets/run_a/other.json"), None);
        assert_eq!(run_id("/packets/run_a/payload.json"), Some("run_a"));
    }
}
