//! Scenario fidelity: what scenario runs, faults and the clock look like to a
//! client, at the edges the other suites do not reach (independent coin flips,
//! a fault's rate limit under a live bucket, timestamps that never run ahead
//! of the clock, syntax errors where the parser failed, the clock's limits,
//! and the Host a presigned URL is built from).

use crate::support::{DEV_KEY, config, request_with_body, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use trigger_mock::config::Config;
use trigger_mock::scenario::Source;
use trigger_mock::server::Server;

fn inline(text: &str) -> Config {
    Config { inline_scenarios: vec![Source { name: "inline.json".into(), text: text.into(), path: None }], ..config() }
}

/// `n` retrieves of `id` with `key` over one keep-alive HTTP/1.1 connection;
/// the status of each.
async fn statuses(server: &Server, id: &str, key: &str, n: usize) -> Vec<u16> {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let req = Request::get(format!("/api/v3/runs/{id}"))
            .header("host", server.addr().to_string())
            .header("authorization", format!("Bearer {key}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        out.push(res.status().as_u16());
        res.into_body().collect().await.unwrap();
    }
    out
}

async fn admin(server: &Server, method: &str, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let reply = request_with_body(server, method, path, &[], body).await;
    (reply.status, reply.json())
}

/// Item 16: each matching request draws anew; a 0.5 fault is a fair coin per
/// request, not per key (it was constant for a key's first nine requests and
/// again from the tenth on).
#[tokio::test]
async fn a_probability_fault_flips_a_fresh_coin_per_request() {
    let text = r#"{"version": 1, "faults": [
        {"runId": "run_coin", "probability": 0.5, "action": {"type": "serverError", "status": 502}}
    ]}"#;
    let server = start(&Config { seed: 11, ..inline(text) }).await;
    let mut sequences = Vec::new();
    for key in ["tr_dev_coin_a", "tr_dev_coin_b"] {
        let seen = statuses(&server, "run_coin", key, 1000).await;
        assert!(seen.iter().all(|s| *s == 200 || *s == 502), "{seen:?}");
        let fired: Vec<bool> = seen.iter().map(|s| *s == 502).collect();
        let rate = fired.iter().filter(|f| **f).count();
        assert!((400..=600).contains(&rate), "{key}: fired {rate} of 1000");
        let changes = fired.windows(2).filter(|w| w[0] != w[1]).count();
        let longest = fired.chunk_by(|a, b| a == b).map(<[bool]>::len).max().unwrap_or(0);
        assert!((400..=600).contains(&changes), "{key}: the outcome changed {changes} times in 1000");
        assert!(longest <= 20, "{key}: {longest} identical outcomes in a row");
        sequences.push(seen);
    }
    assert_ne!(sequences[0], sequences[1], "each key draws its own coins");
    // The same seed, key and positions give the same coins: after a reset, and on another server.
    admin(&server, "POST", "/_mock/reset", "").await;
    assert_eq!(statuses(&server, "run_coin", "tr_dev_coin_a", 1000).await, sequences[0], "after a reset");
    server.shutdown().await;
    let again = start(&Config { seed: 11, ..inline(text) }).await;
    assert_eq!(statuses(&again, "run_coin", "tr_dev_coin_b", 1000).await, sequences[1], "on another server");
    again.shutdown().await;
    let other_seed = start(&Config { seed: 12, ..inline(text) }).await;
    assert_ne!(statuses(&other_seed, "run_coin", "tr_dev_coin_b", 1000).await, sequences[1], "another seed");
    other_seed.shutdown().await;
}

/// Item 17: a `rateLimit` fault under a live token bucket sends its own
/// `x-ratelimit-*` values, the ones its body carries (the bucket's headers
/// overwrote them, and the SDK waited for the bucket's refill instead).
#[tokio::test]
async fn a_rate_limit_fault_under_a_live_bucket_sends_its_own_headers() {
    let text = r#"{"version": 1,
        "rateLimit": {"limit": 750, "refill": 250, "interval": "10s"},
        "faults": [
            {"runId": "run_rl", "nth": 1, "action": {"type": "rateLimit", "limit": 5, "remaining": 0, "resetMs": 700}},
            {"runId": "run_own", "action": {"type": "status", "status": 429, "text": "slow down",
                "headers": {"x-ratelimit-remaining": "3"}}}
        ]}"#;
    let server = start(&inline(text)).await;
    let auth = format!("Bearer {DEV_KEY}");
    let get = |id: &'static str| {
        let (server, auth) = (&server, auth.clone());
        async move { request_with_body(server, "GET", &format!("/api/v3/runs/{id}"), &[("authorization", &auth)], "").await }
    };
    let before = trigger_mock::clock::wall_now().0;
    let limited = get("run_rl").await;
    let after = trigger_mock::clock::wall_now().0;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let header = |name: &str| limited.headers[name].to_str().unwrap().parse::<i64>().unwrap();
    assert_eq!((header("x-ratelimit-limit"), header("x-ratelimit-remaining")), (5, 0));
    let reset = header("x-ratelimit-reset");
    assert!((before + 700..=after + 700).contains(&reset), "reset {reset} is 700 ms after {before}..{after}");
    let body = limited.json();
    assert_eq!(
        (body["limit"].as_i64(), body["remaining"].as_i64(), body["reset"].as_i64()),
        (Some(5), Some(0), Some(reset))
    );
    // The fault is spent: the next answer is the run, with the bucket's headers (two tokens taken).
    let normal = get("run_rl").await;
    assert_eq!(normal.status, StatusCode::OK);
    assert_eq!(normal.headers["x-ratelimit-limit"], "750");
    assert_eq!(normal.headers["x-ratelimit-remaining"], "748");
    // A status fault's own rate-limit header wins too; the bucket fills in the others.
    let own = get("run_own").await;
    assert_eq!((own.status.as_u16(), own.body.as_ref()), (429, b"slow down".as_slice()));
    assert_eq!(own.headers["x-ratelimit-remaining"], "3");
    assert_eq!(own.headers["x-ratelimit-limit"], "750");
    server.shutdown().await;
}
