//! Every fault kind, over raw sockets where a client library would hide what
//! happened on the wire.

use crate::support::{config, request, retrieve, start};
use hyper::StatusCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trigger_mock::config::Config;
use trigger_mock::model::ApiVersion;
use trigger_mock::scenario::Source;

const KEY: &str = "tr_dev_faults";

fn faults_config() -> Config {
    Config { scenarios: vec!["builtin:faults".into()], ..config() }
}

/// Sends a raw GET and reads until the server closes; returns the bytes read
/// and how reading ended.
async fn raw_get(server: &trigger_mock::server::Server, id: &str) -> (Vec<u8>, std::io::Result<()>) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "GET /api/v3/runs/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\nx-trigger-api-version: 2025-07-16\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(len) = complete_length(&out)
                    && out.len() >= len
                {
                    break Ok(());
                }
            }
            Ok(Err(e)) => break Err(e),
            Err(_) => panic!("no answer within 5 s"),
        }
    };
    (out, end)
}

/// The full length of a response with a Content-Length, once headers are in.
fn complete_length(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n")? + 4;
    let length = text[..head_end]
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse::<usize>()))?
        .ok()?;
    Some(head_end + length)
}

fn split(bytes: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n").map_or(bytes.len(), |i| i + 4);
    (text[..head_end].to_owned(), bytes[head_end..].to_vec())
}

#[tokio::test]
async fn reset_sends_rst_before_any_response() {
    let server = start(&faults_config()).await;
    let (bytes, end) = raw_get(&server, "run_fault_reset").await;
    assert!(bytes.is_empty(), "nothing was sent: {:?}", String::from_utf8_lossy(&bytes));
    let err = end.expect_err("the read fails");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let ok = retrieve(&server, "run_completed", KEY, ApiVersion::V20250716).await;
    assert_eq!(ok.status, StatusCode::OK, "the server carries on");
    server.shutdown().await;
}

#[tokio::test]
async fn close_mid_body_announces_more_than_it_sends() {
    let server = start(&faults_config()).await;
    let (bytes, _) = raw_get(&server, "run_fault_close_mid_body").await;
    let (head, body) = split(&bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let announced = complete_length(&bytes).unwrap() - head.len();
    assert!(!body.is_empty() && body.len() < announced, "sent {} of {announced}", body.len());
    assert!(body.starts_with(b"{\"id\":\"run_fault_close_mid_body\""));
    server.shutdown().await;
}

#[tokio::test]
async fn truncate_and_malformed_send_complete_responses_that_are_not_json() {
    let server = start(&faults_config()).await;
    for id in ["run_fault_truncate", "run_fault_malformed"] {
        let (bytes, end) = raw_get(&server, id).await;
        assert!(end.is_ok());
        let (head, body) = split(&bytes);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert_eq!(complete_length(&bytes), Some(bytes.len()), "{id}: Content-Length matches what is sent");
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err(), "{id}");
    }
    let (bytes, _) = raw_get(&server, "run_fault_truncate").await;
    let (_, body) = split(&bytes);
    assert!(body.starts_with(b"{\"id\":\"run_fault_truncate\",\"status\":\"COMPLETED\""));
    server.shutdown().await;
}

#[tokio::test]
async fn break_schema_sends_a_status_no_sdk_accepts() {
    let server = start(&faults_config()).await;
    let reply = request(
        &server,
        "GET",
        "/api/v3/runs/run_fault_break_schema",
        &[("authorization", "Bearer tr_dev_faults"), ("x-trigger-api-version", "2025-07-16")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["status"], "NOT_A_STATUS");
    assert_eq!(body["id"], "run_fault_break_schema");
    server.shutdown().await;
}

#[tokio::test]
async fn dribble_sends_the_normal_body_slowly() {
    let server = start(&faults_config()).await;
    let normal = retrieve(&server, "run_every_completed_successfully_nope", KEY, ApiVersion::V20250716).await;
    assert_eq!(normal.status, StatusCode::OK);
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /api/v3/runs/run_fault_dribble HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tr_dev_faults\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reads = 0;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        bytes.extend_from_slice(&buf[..n]);
    }
    let (head, body) = split(&bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["id"], "run_fault_dribble");
    let chunks = body.len().div_ceil(64);
    assert!(reads >= chunks / 2, "{reads} reads for {chunks} chunks");
    assert!(started.elapsed() >= Duration::from_millis(5 * (chunks as u64 - 1)), "{:?}", started.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn status_not_found_rate_limit_server_error_and_latency() {
    let server = start(&faults_config()).await;
    let get = |id: &'static str| {
        let server = &server;
        async move { retrieve(server, id, KEY, ApiVersion::V20250716).await }
    };
    let teapot = get("run_fault_status").await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.headers["x-teapot"], "yes");
    assert_eq!(teapot.json()["error"], "I'm a teapot");
    let missing = get("run_fault_not_found").await;
    assert_eq!((missing.status, missing.headers["x-should-retry"].to_str().unwrap()), (StatusCode::NOT_FOUND, "false"));
    assert_eq!(missing.json()["error"], "Not found");
    let limited = get("run_fault_rate_limit").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["x-ratelimit-limit"], "750");
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    let reset: i64 = limited.headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let wall = trigger_mock::clock::wall_now().0;
    assert!((wall..=wall + 300).contains(&reset), "reset {reset} is ~300 ms after {wall}");
    assert_eq!(limited.json()["title"], "Rate Limit Exceeded");
    let unavailable = get("run_fault_server_error").await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.json()["error"], "Internal Server Error");
    let started = Instant::now();
    let slow = get("run_fault_latency").await;
    assert_eq!(slow.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

/// The 429 body's `reset` and the `x-ratelimit-reset` header are one value.
/// Reading the wall clock twice made them differ by 1 ms whenever a
/// millisecond ended between the two reads; 400 answers make that near certain.
#[tokio::test]
async fn a_429_body_and_header_agree_on_reset() {
    let server = start(&faults_config()).await;
    for i in 0..400 {
        let limited = retrieve(&server, "run_fault_rate_limit", KEY, ApiVersion::V20250716).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        let header: i64 = limited.headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert_eq!(limited.json()["reset"], header, "answer {i}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn nth_windows_probability_and_routes() {
    let text = r#"{
  "version": 1,
  "faults": [
    { "runId": "run_third_*", "route": "retrieve", "nth": 3, "action": { "type": "serverError" } },
    { "runId": "run_window_*", "after": 1, "times": 2, "action": { "type": "notFound" } },
    { "runId": "run_coin_*", "probability": 0.5, "action": { "type": "serverError", "status": 502 } },
    { "route": "any", "runId": "run_any", "action": { "type": "status", "status": 409, "text": "conflict" } }
  ]
}"#;
    let cfg = Config {
        inline_scenarios: vec![Source { name: "inline.json".into(), text: text.into(), path: None }],
        seed: 7,
        ..config()
    };
    let server = start(&cfg).await;
    let statuses = |id: &'static str, n: usize| {
        let server = &server;
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(retrieve(server, id, KEY, ApiVersion::V20250716).await.status.as_u16());
            }
            out
        }
    };
    assert_eq!(statuses("run_third_a", 4).await, [200, 200, 500, 200]);
    assert_eq!(statuses("run_window_a", 4).await, [200, 404, 404, 200]);
    let coin = statuses("run_coin_a", 40).await;
    let failed = coin.iter().filter(|s| **s == 502).count();
    assert!((8..=32).contains(&failed), "{coin:?}");
    assert_eq!(
        coin,
        {
            let again = start(&cfg).await;
            let mut out = Vec::new();
            for _ in 0..40 {
                out.push(retrieve(&again, "run_coin_a", KEY, ApiVersion::V20250716).await.status.as_u16());
            }
            again.shutdown().await;
            out
        },
        "the same seed gives the same coin flips"
    );
    let conflict = retrieve(&server, "run_any", KEY, ApiVersion::V20250716).await;
    assert_eq!((conflict.status.as_u16(), conflict.body.as_ref()), (409, b"conflict".as_slice()));
    server.shutdown().await;
}
