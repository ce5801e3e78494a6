//! Helpers: start a server, make requests, check bodies against the project's
//! JSON Schemas, and print a response for a snapshot.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header::HeaderMap};
use hyper_util::rt::TokioIo;
use std::sync::OnceLock;
use tokio::net::TcpStream;
use trigger_mock::clock::Clock;
use trigger_mock::config::Config;
use trigger_mock::model::ApiVersion;
use trigger_mock::server::Server;
use trigger_mock::time::Millis;

/// The frozen "now" of every test: 2026-01-01T00:00:00Z.
pub const NOW: Millis = Millis(1_767_225_600_000);

/// A development key.
pub const DEV_KEY: &str = "tr_dev_tests_0123456789";

/// A configuration on an ephemeral port with the test clock.
pub fn config() -> Config {
    Config { presign_secret: Some("tests".into()), ..Config::ephemeral(Clock::frozen(NOW)) }
}

/// Starts a server with `config`.
pub async fn start(config: &Config) -> Server {
    Server::start(config).await.expect("server starts")
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Status line, the headers that matter, and the body pretty-printed (in
    /// the order it was sent): what a snapshot holds.
    pub fn snapshot(&self) -> String {
        let mut out = format!("HTTP/1.1 {}\n", self.status);
        for name in [
            "content-type",
            "x-should-retry",
            "allow",
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ] {
            if let Some(v) = self.headers.get(name) {
                out.push_str(&format!("{name}: {}\n", v.to_str().unwrap()));
            }
        }
        out.push('\n');
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) => out.push_str(&serde_json::to_string_pretty(&v).unwrap()),
            Err(_) => out.push_str(&String::from_utf8_lossy(&self.body)),
        }
        out.push('\n');
        out
    }
}

/// One request over a fresh HTTP/1.1 connection.
pub async fn request(server: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    request_with_body(server, method, path, headers, "").await
}

/// One request with a body over a fresh HTTP/1.1 connection.
pub async fn request_with_body(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", server.addr().to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender.send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// `GET /api/v3/runs/{id}` with a key and an API version.
pub async fn retrieve(server: &Server, id: &str, key: &str, version: ApiVersion) -> Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    if version == ApiVersion::V20250716 {
        headers.push(("x-trigger-api-version", "2025-07-16"));
    }
    let reply = request(server, "GET", &format!("/api/v3/runs/{id}"), &headers).await;
    if reply.status == StatusCode::OK {
        assert_valid(&reply.json(), version);
    }
    reply
}

fn load_schema(file: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks a retrieve-run body against the project's schema for `version`.
pub fn assert_valid(body: &serde_json::Value, version: ApiVersion) {
    static CURRENT: OnceLock<jsonschema::Validator> = OnceLock::new();
    static UNVERSIONED: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = match version {
        ApiVersion::V20250716 => CURRENT.get_or_init(|| load_schema("retrieve-run.current.schema.json")),
        ApiVersion::Unversioned => UNVERSIONED.get_or_init(|| load_schema("retrieve-run.unversioned.schema.json")),
    };
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "body does not match the {version:?} schema: {errors:#?}\n{body:#}");
}
