//! The dashboard's routes: the page under the admin rules, its JSON views,
//! and the event stream over both HTTP versions (raw bytes for HTTP/1.1).

use crate::hostile::h2_connect;
use crate::support::{DEV_KEY, config, request, retrieve, start};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trigger_mock::config::{AdminAccess, Config};
use trigger_mock::model::ApiVersion;

fn scripted() -> Config {
    Config {
        scenarios: vec![
            "builtin:poll-to-completion".into(),
            "builtin:flaky-run".into(),
            "builtin:delayed-to-queued".into(),
        ],
        ..config()
    }
}

#[tokio::test]
async fn the_page_follows_the_admin_rules_and_loads_nothing_from_elsewhere() {
    let open = start(&config()).await;
    let page = request(&open, "GET", "/_mock/ui", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'; script-src 'self'") && policy.contains("connect-src 'self'"));
    let html = String::from_utf8_lossy(&page.body);
    assert!(!html.contains("http://") && !html.contains("https://"), "no outside URL in the page");
    for (path, kind) in [("/_mock/ui/app.js", "text/javascript"), ("/_mock/ui/app.css", "text/css")] {
        let asset = request(&open, "GET", path, &[]).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert!(asset.headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let text = String::from_utf8_lossy(&asset.body);
        assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("@import"), "{path}");
    }
    open.shutdown().await;

    let off = start(&Config { admin: AdminAccess::Off, ..config() }).await;
    for path in ["/_mock/ui", "/_mock/ui/app.js", "/_mock/environments", "/_mock/events"] {
        assert_eq!(request(&off, "GET", path, &[]).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    off.shutdown().await;

    let guarded = start(&Config { admin: AdminAccess::Token("s3cret".into()), ..config() }).await;
    // The static page is served (it asks for the token); everything it reads needs the token.
    assert_eq!(request(&guarded, "GET", "/_mock/ui", &[]).await.status, StatusCode::OK);
    for path in ["/_mock/environments", "/_mock/events", "/_mock/runs?env=x", "/_mock/runs/run_x"] {
        assert_eq!(request(&guarded, "GET", path, &[]).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let with = [("authorization", "Bearer s3cret")];
    assert_eq!(request(&guarded, "GET", "/_mock/environments", &with).await.status, StatusCode::OK);
    assert_eq!(request(&guarded, "POST", "/_mock/ui", &with).await.status, StatusCode::METHOD_NOT_ALLOWED);
    guarded.shutdown().await;
}

#[tokio::test]
async fn environments_runs_and_one_run_as_the_page_reads_them() {
    let server = start(&scripted()).await;
    for _ in 0..2 {
        retrieve(&server, "run_poll_ok", DEV_KEY, ApiVersion::V20250716).await;
    }
    assert_eq!(
        retrieve(&server, "run_flaky", DEV_KEY, ApiVersion::V20250716).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let envs = request(&server, "GET", "/_mock/environments", &[]).await.json();
    let env = &envs["environments"][0];
    assert_eq!(envs["environments"].as_array().unwrap().len(), 1);
    assert_eq!(env["key"], &DEV_KEY[..16]);
    assert_eq!((env["requests"].as_u64(), env["errors"].as_u64(), env["faults"].as_u64()), (Some(3), Some(1), Some(1)));
    assert_eq!(env["environment"], "development");
    let handle = env["env"].as_str().unwrap();
    assert!(handle.len() == 16 && !handle.contains("tr_dev"), "a handle, not the key: {handle}");

    let runs = request(&server, "GET", &format!("/_mock/runs?env={handle}"), &[]).await.json();
    let row = |id: &str| runs["runs"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap();
    let poll = row("run_poll_ok");
    assert_eq!(poll["status"], "EXECUTING");
    assert_eq!(poll["seen"], true);
    let steps: Vec<&str> =
        poll["timeline"]["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(steps, ["PENDING", "EXECUTING"]);
    assert_eq!(poll["timeline"]["next"], serde_json::json!({"status": "COMPLETED_SUCCESSFULLY", "afterRetrieves": 1}));
    let delayed = row("run_delayed_start");
    assert_eq!((delayed["seen"].as_bool(), delayed["plan"][0]["until"]["ms"].as_i64()), (Some(false), Some(60_000)));
    // Reading the views moved nothing: the next retrieve is the one the timeline announced.
    assert_eq!(retrieve(&server, "run_poll_ok", DEV_KEY, ApiVersion::V20250716).await.json()["status"], "EXECUTING");

    let filtered = request(&server, "GET", &format!("/_mock/runs?env={handle}&status=DELAYED"), &[]).await.json();
    assert!(filtered["runs"].as_array().unwrap().iter().all(|r| r["status"] == "DELAYED"));
    assert!(filtered["runs"].as_array().unwrap().iter().any(|r| r["id"] == "run_delayed_start"));

    let detail = request(&server, "GET", &format!("/_mock/runs/run_poll_ok?env={handle}"), &[]).await.json();
    assert_eq!(detail["bodies"]["2025-07-16"]["status"], "COMPLETED", "the third retrieve moved it on");
    assert_eq!(detail["bodies"]["none"]["status"], "COMPLETED");
    assert_eq!(detail["requests"].as_array().unwrap().len(), 3);
    assert_eq!(request(&server, "GET", "/_mock/runs/not_a_run", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(request(&server, "GET", "/_mock/runs?env=0000000000000000", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(request(&server, "GET", "/_mock/runs", &[]).await.status, StatusCode::BAD_REQUEST);

    // A run the key creates is listed, from the ledger, and shown whole.
    let auth = format!("Bearer {DEV_KEY}");
    let made = crate::support::request_with_body(
        &server,
        "POST",
        "/api/v1/tasks/send-report/trigger",
        &[("authorization", &auth), ("content-type", "application/json")],
        r#"{"payload":"{}","options":{"payloadType":"application/json"}}"#,
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    let created = made.json()["id"].as_str().unwrap().to_owned();
    let runs = request(&server, "GET", &format!("/_mock/runs?env={handle}&task=send-report"), &[]).await.json();
    let listed: Vec<(&str, &str)> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(created.as_str(), "created")]);
    let detail = request(&server, "GET", &format!("/_mock/runs/{created}?env={handle}"), &[]).await.json();
    assert_eq!(detail["bodies"]["2025-07-16"]["taskIdentifier"], "send-report");
    assert_eq!(detail["requests"].as_array().unwrap().len(), 1, "the trigger");

    // Reset by handle: the key's lifecycle starts again.
    let reset = request(&server, "POST", &format!("/_mock/reset?env={handle}"), &[]).await;
    assert_eq!(reset.status, StatusCode::OK);
    let runs = request(&server, "GET", &format!("/_mock/runs?env={handle}"), &[]).await.json();
    let poll = runs["runs"].as_array().unwrap().iter().find(|r| r["id"] == "run_poll_ok").cloned().unwrap();
    assert_eq!(poll["seen"], false);
    server.shutdown().await;
}

/// Reads from a raw socket until `needle` has arrived (or panics after 5 s).
async fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within 5 s; got {seen:?}"))
            .unwrap();
        assert!(n > 0, "closed before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn events_arrive_on_changes_over_http1_and_end_when_the_server_stops() {
    let server = start(&scripted()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(b"GET /_mock/events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"scenarios\":0}\n\n").await;
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(seen.contains("content-type: text/event-stream\r\n") && seen.contains("transfer-encoding: chunked\r\n"));
    assert!(seen.contains("event: change\ndata: {\"journal\":0,\"clock\":0,\"runs\":0,\"scenarios\":0}"), "{seen}");

    retrieve(&server, "run_poll_ok", DEV_KEY, ApiVersion::V20250716).await;
    read_until(&mut stream, &mut seen, "{\"journal\":1,").await;
    let moved = crate::support::request_with_body(&server, "POST", "/_mock/clock", &[], r#"{"advance":"1s"}"#).await;
    assert_eq!(moved.status, StatusCode::OK);
    read_until(&mut stream, &mut seen, "\"clock\":1,").await;
    request(&server, "POST", "/_mock/reset", &[]).await;
    read_until(&mut stream, &mut seen, "\"runs\":1,").await;
    // Admin requests are not journaled, so the page's own reads never wake it.
    assert!(!seen.contains("\"journal\":2"), "{seen}");

    // Shutting down ends the stream at once instead of waiting out the drain.
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_flood_of_requests_coalesces_into_a_few_events() {
    // Under load every request is a change; an open page must not be told of
    // each (it would re-read its view thousands of times a second).
    let server = start(&scripted()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(b"GET /_mock/events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"scenarios\":0}\n\n").await;
    let started = std::time::Instant::now();
    for _ in 0..200 {
        retrieve(&server, "run_poll_ok", DEV_KEY, ApiVersion::V20250716).await;
    }
    // The last change always arrives, within the gap.
    read_until(&mut stream, &mut seen, "{\"journal\":200,").await;
    let elapsed = started.elapsed();
    let events = seen.matches("event: change").count() - 1;
    let allowed = 2 + (elapsed.as_millis() / 500) as usize;
    assert!(events <= allowed, "{events} events for 200 requests in {elapsed:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn events_over_http2_and_a_cap_on_open_streams() {
    let server = start(&scripted()).await;
    let mut sender = h2_connect(server.addr()).await;
    let req = hyper::Request::get(format!("http://{}/_mock/events", server.addr()))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"journal\":0"));
    retrieve(&server, "run_poll_ok", DEV_KEY, ApiVersion::V20250716).await;
    let next = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.unwrap().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&next.into_data().unwrap()).contains("\"journal\":1"));

    // 64 streams at once at most (one is open above); the rest get 503 and nothing is held for them.
    let mut open = Vec::new();
    for _ in 0..trigger_mock::feed::MAX_STREAMS - 1 {
        let req = hyper::Request::get(format!("http://{}/_mock/events", server.addr()))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let mut s = h2_connect(server.addr()).await;
        let res = s.send_request(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut b = res.into_body();
        b.frame().await.unwrap().unwrap();
        open.push((s, b));
    }
    assert_eq!(request(&server, "GET", "/_mock/events", &[]).await.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(open);
    drop(body);
    // Places are given back once each stream's task notices its client left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        drop(stream);
        let status = {
            let mut raw = TcpStream::connect(server.addr()).await.unwrap();
            raw.write_all(b"GET /_mock/events HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut seen = String::new();
            read_until(&mut raw, &mut seen, "\r\n").await;
            seen
        };
        if status.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place came back: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}
