//! The realtime feeds over real sockets: the Electric headers and messages,
//! live polls woken by the clock, by retrieves and by shutdown, hold times,
//! handles, scopes, CORS, and many polls over a few HTTP/2 connections.

use crate::support::{DEV_KEY, NOW, Reply, config, request, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use trigger_mock::clock::Clock;
use trigger_mock::config::Config;
use trigger_mock::scenario::Source;
use trigger_mock::server::Server;

const SCENARIO: &str = r#"{
  "version": 1,
  "runs": [
    { "id": "run_rt_timed", "taskIdentifier": "rt", "tags": ["rt", "user:1"], "batchId": "batch_rt",
      "lifecycle": [{ "status": "PENDING", "for": "1m" }, { "status": "EXECUTING", "for": "1m" }, { "status": "COMPLETED_SUCCESSFULLY" }] },
    { "id": "run_rt_other", "taskIdentifier": "rt", "tags": ["rt"], "batchId": "batch_rt",
      "lifecycle": [{ "status": "PENDING", "for": "1h" }, { "status": "CANCELED" }] },
    { "id": "run_rt_polled", "taskIdentifier": "rt",
      "lifecycle": [{ "status": "PENDING", "retrieves": 1 }, { "status": "EXECUTING" }] },
    { "id": "run_rt_fast", "taskIdentifier": "rt",
      "lifecycle": [{ "status": "PENDING", "for": "1s" }, { "status": "EXECUTING" }] }
  ]
}"#;

fn rt_config(hold_ms: u64) -> Config {
    Config {
        inline_scenarios: vec![Source { name: "rt.json".into(), text: SCENARIO.into(), path: None }],
        realtime_hold: Duration::from_millis(hold_ms),
        ..config()
    }
}

const ELECTRIC: (&str, &str) = ("x-trigger-electric-version", "1.0.0-beta.1");

async fn feed(server: &Server, path: &str, key: &str) -> Reply {
    let auth = format!("Bearer {key}");
    request(server, "GET", path, &[("authorization", &auth), ELECTRIC]).await
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply.headers.get(name).map_or("", |v| v.to_str().unwrap())
}

fn rows(reply: &Reply) -> Vec<Value> {
    let body = reply.json();
    let messages = body.as_array().expect("an array");
    assert_eq!(messages.last().unwrap()["headers"]["control"], "up-to-date", "every answer ends up-to-date");
    messages[..messages.len() - 1].iter().map(|m| m["value"].clone()).collect()
}

async fn advance(server: &Server, by: &str) {
    let reply = crate::support::request_with_body(
        server,
        "POST",
        "/_mock/clock",
        &[("content-type", "application/json")],
        &format!(r#"{{"advance":"{by}"}}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

fn live(id: &str, offset: &str) -> String {
    format!("/realtime/v1/runs/{id}?cursor=&handle=run-{id}&live=true&log=full&offset={offset}")
}

#[tokio::test]
async fn a_snapshot_carries_every_header_the_client_requires() {
    let server = start(&rt_config(20_000)).await;
    let reply = feed(&server, "/realtime/v1/runs/run_rt_timed?log=full&offset=-1", DEV_KEY).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(header(&reply, "content-type"), "application/json");
    assert_eq!(header(&reply, "cache-control"), "no-store");
    assert_eq!(header(&reply, "access-control-allow-origin"), "*");
    assert_eq!(header(&reply, "access-control-expose-headers"), "*");
    assert_eq!(header(&reply, "electric-handle"), "run-run_rt_timed");
    assert!(reply.headers.contains_key("electric-up-to-date"));
    let schema: Value = serde_json::from_str(header(&reply, "electric-schema")).unwrap();
    assert_eq!(schema.as_object().unwrap().len(), 26);
    let body = reply.json();
    assert_eq!(body[0]["headers"]["operation"], "insert");
    assert!(body[0]["key"].as_str().unwrap().starts_with(r#""public"."TaskRun"/"cm"#));
    let row = &rows(&reply)[0];
    assert_eq!(row["status"], "PENDING");
    assert_eq!(row["friendlyId"], "run_rt_timed");
    assert_eq!(row["runTags"], "{rt,user:1}");
    assert_eq!(row["createdAt"], "2026-01-01T00:00:00.000");
    assert!(row.as_object().unwrap().values().all(|v| v.is_string() || v.is_null()));
    let offset = header(&reply, "electric-offset");
    assert!(offset.starts_with("1767225600") && offset.ends_with("_0"), "{offset}");

    // Without the electric version header, the legacy names.
    let auth = format!("Bearer {DEV_KEY}");
    let legacy = request(&server, "GET", "/realtime/v1/runs/run_rt_timed?offset=-1", &[("authorization", &auth)]).await;
    assert_eq!(header(&legacy, "electric-shape-id"), "run-run_rt_timed");
    assert_eq!(header(&legacy, "electric-chunk-last-offset"), offset);
    assert!(!legacy.headers.contains_key("electric-handle"));

    let skipped =
        feed(&server, "/realtime/v1/runs/run_rt_timed?offset=-1&skipColumns=payload,status,metadata", DEV_KEY).await;
    let row = &rows(&skipped)[0];
    assert!(row.get("payload").is_none() && row.get("metadata").is_none());
    assert_eq!(row["status"], "PENDING", "status is never skipped");
    let schema: Value = serde_json::from_str(header(&skipped, "electric-schema")).unwrap();
    assert!(schema.get("payload").is_none() && schema.get("payloadType").is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn a_live_poll_waits_and_wakes_on_a_clock_move_only_for_its_run() {
    let server = start(&rt_config(20_000)).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_timed?offset=-1", DEV_KEY).await;
    let offset = header(&snap, "electric-offset").to_owned();
    let other = feed(&server, "/realtime/v1/runs/run_rt_other?offset=-1", DEV_KEY).await;
    let other_offset = header(&other, "electric-offset").to_owned();
    let (timed_url, other_url) = (live("run_rt_timed", &offset), live("run_rt_other", &other_offset));
    let started = Instant::now();
    let (a, b) = tokio::join!(feed(&server, &timed_url, DEV_KEY), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The other run is not due for an hour: its poll keeps waiting.
        let other_poll = tokio::time::timeout(Duration::from_millis(600), feed(&server, &other_url, DEV_KEY));
        let (_, waited) = tokio::join!(advance(&server, "1m"), other_poll);
        waited
    });
    assert!(b.is_err(), "a poll on an unchanged run is not answered by another run's change");
    assert!(started.elapsed() < Duration::from_secs(5), "answered on the move, not at the hold");
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()[0]["headers"]["operation"], "update");
    assert_eq!(rows(&a)[0]["status"], "EXECUTING");
    assert_eq!(header(&a, "electric-cursor"), "1");
    assert_ne!(header(&a, "electric-offset"), offset);
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_poll_answers_up_to_date_after_the_hold() {
    let server = start(&rt_config(300)).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_other?offset=-1", DEV_KEY).await;
    let offset = header(&snap, "electric-offset").to_owned();
    let started = Instant::now();
    let reply = feed(&server, &format!("{}&cursor=41", live("run_rt_other", &offset)), DEV_KEY).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(reply.json(), serde_json::json!([{ "headers": { "control": "up-to-date" } }]));
    assert_eq!(header(&reply, "electric-offset"), offset);
    assert_eq!(header(&reply, "electric-cursor"), "42");
    server.shutdown().await;
}

#[tokio::test]
async fn under_a_running_clock_a_poll_wakes_when_the_step_is_due() {
    let server = start(&Config { clock: Clock::system(), ..rt_config(10_000) }).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_fast?offset=-1", DEV_KEY).await;
    assert_eq!(rows(&snap)[0]["status"], "PENDING");
    let offset = header(&snap, "electric-offset").to_owned();
    let started = Instant::now();
    let reply = feed(&server, &live("run_rt_fast", &offset), DEV_KEY).await;
    let took = started.elapsed();
    assert_eq!(rows(&reply)[0]["status"], "EXECUTING");
    assert!(took < Duration::from_secs(3), "woken when due (1 s), not at the 10 s hold: {took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn realtime_never_counts_as_a_retrieve_but_a_retrieve_wakes_it() {
    let server = start(&rt_config(400)).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_polled?offset=-1", DEV_KEY).await;
    let offset = header(&snap, "electric-offset").to_owned();
    for _ in 0..3 {
        let idle = feed(&server, &live("run_rt_polled", &offset), DEV_KEY).await;
        assert!(rows(&idle).is_empty(), "realtime reads do not move a retrieve-driven step");
    }
    let auth = format!("Bearer {DEV_KEY}");
    let started = Instant::now();
    let server_ref = &server;
    let polled_url = live("run_rt_polled", &offset);
    let (woken, retrieved) = tokio::join!(feed(server_ref, &polled_url, DEV_KEY), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        request(server_ref, "GET", "/api/v3/runs/run_rt_polled", &[("authorization", &auth)]).await
    });
    assert_eq!(retrieved.json()["status"], "QUEUED", "the retrieve saw the first step, then moved it on");
    assert_eq!(rows(&woken)[0]["status"], "EXECUTING");
    assert!(started.elapsed() < Duration::from_millis(390), "woken by the retrieve, not the hold");
    server.shutdown().await;
}

#[tokio::test]
async fn handles_scopes_and_missing_runs() {
    let server = start(&rt_config(300)).await;
    let conflict =
        feed(&server, "/realtime/v1/runs/run_rt_timed?handle=run-run_other&live=true&offset=1_0", DEV_KEY).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(header(&conflict, "electric-handle"), "run-run_rt_timed");
    assert_eq!(conflict.json(), serde_json::json!([{ "headers": { "control": "must-refetch" } }]));

    let missing = feed(&server, "/realtime/v1/runs/run_nope_x?offset=-1", DEV_KEY).await;
    assert_eq!(missing.status, StatusCode::OK, "a well-formed id is generated, as on retrieve");
    let bad = feed(&server, "/realtime/v1/runs/nope?offset=-1", DEV_KEY).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let no_batch = feed(&server, "/realtime/v1/batches/batch_none?offset=-1", DEV_KEY).await;
    assert_eq!(no_batch.status, StatusCode::NOT_FOUND);
    let unauthenticated = request(&server, "GET", "/realtime/v1/runs/run_rt_timed?offset=-1", &[]).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);

    let tags = feed(&server, "/realtime/v1/runs?offset=-1&tags=rt", DEV_KEY).await;
    let mut ids: Vec<String> = rows(&tags).iter().map(|r| r["friendlyId"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["run_rt_other", "run_rt_timed"]);
    let both = feed(&server, "/realtime/v1/runs?offset=-1&tags=rt,user%3A1", DEV_KEY).await;
    assert_eq!(rows(&both).len(), 1);
    let batch = feed(&server, "/realtime/v1/batches/batch_rt?offset=-1", DEV_KEY).await;
    assert_eq!(rows(&batch).len(), 2);
    assert_eq!(header(&batch, "electric-handle"), "batch-batch_rt");

    let preflight = request(
        &server,
        "OPTIONS",
        "/realtime/v1/runs/run_rt_timed",
        &[
            ("origin", "http://127.0.0.1:1"),
            ("access-control-request-headers", "authorization,x-trigger-electric-version"),
        ],
    )
    .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert_eq!(header(&preflight, "access-control-allow-headers"), "authorization,x-trigger-electric-version");
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_read_only_what_their_scopes_allow() {
    let server = start(&rt_config(300)).await;
    let env = trigger_mock::environments::environment_id(DEV_KEY);
    let token = |scopes: Value| {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), Value::from(env.clone()));
        claims.insert("pub".into(), Value::Bool(true));
        claims.insert("scopes".into(), scopes);
        claims.insert("realtime".into(), serde_json::json!({ "skipColumns": ["payload"] }));
        trigger_mock::jwt::mint(&claims, DEV_KEY, trigger_mock::jwt::epoch_seconds(NOW) + 600, NOW)
    };
    // The environment becomes known when its key is first used.
    let _ =
        request(&server, "POST", "/api/v1/auth/jwt/claims", &[("authorization", &format!("Bearer {DEV_KEY}"))]).await;
    let one_run = token(serde_json::json!(["read:runs:run_rt_timed"]));
    let ok = feed(&server, "/realtime/v1/runs/run_rt_timed?offset=-1", &one_run).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(rows(&ok)[0].get("payload").is_none(), "the token's skipColumns claim applies");
    let denied = feed(&server, "/realtime/v1/runs/run_rt_other?offset=-1", &one_run).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(feed(&server, "/realtime/v1/runs?offset=-1&tags=rt", &one_run).await.status, StatusCode::FORBIDDEN);
    let by_tag = token(serde_json::json!(["read:tags:rt"]));
    assert_eq!(feed(&server, "/realtime/v1/runs?offset=-1&tags=rt", &by_tag).await.status, StatusCode::OK);
    assert_eq!(feed(&server, "/realtime/v1/runs/run_rt_other?offset=-1", &by_tag).await.status, StatusCode::OK);
    let by_batch = token(serde_json::json!(["read:batch:batch_rt"]));
    assert_eq!(feed(&server, "/realtime/v1/batches/batch_rt?offset=-1", &by_batch).await.status, StatusCode::OK);
    assert_eq!(feed(&server, "/realtime/v1/batches/batch_rt?offset=-1", &by_tag).await.status, StatusCode::FORBIDDEN);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_held_polls_at_once() {
    let server = start(&rt_config(60_000)).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_other?offset=-1", DEV_KEY).await;
    let offset = header(&snap, "electric-offset").to_owned();
    let addr = server.addr();
    let poll = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::get(live("run_rt_other", &offset))
            .header("host", addr.to_string())
            .header("authorization", format!("Bearer {DEV_KEY}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3), "the drain did not wait for the 60 s hold");
    let body = poll.await.unwrap();
    assert_eq!(&body[..], br#"[{"headers":{"control":"up-to-date"}}]"#);
}

#[tokio::test]
async fn two_hundred_polls_on_four_http2_connections_wake_on_one_clock_move() {
    let server = start(&rt_config(20_000)).await;
    let snap = feed(&server, "/realtime/v1/runs/run_rt_timed?offset=-1", DEV_KEY).await;
    let offset = header(&snap, "electric-offset").to_owned();
    // 50 streams per connection: the server allows 64.
    let mut senders = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let polls: Vec<_> = (0..200)
        .map(|i| {
            let mut sender = senders[i % 4].clone();
            let req = Request::get(format!("http://{}{}", server.addr(), live("run_rt_timed", &offset)))
                .header("authorization", format!("Bearer {DEV_KEY}"))
                .header(ELECTRIC.0, ELECTRIC.1)
                .body(Empty::<Bytes>::new())
                .unwrap();
            tokio::spawn(async move {
                let res = sender.send_request(req).await.unwrap();
                res.into_body().collect().await.unwrap().to_bytes()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    advance(&server, "1m").await;
    for poll in polls {
        let body: Value = serde_json::from_slice(&poll.await.unwrap()).unwrap();
        assert_eq!(body[0]["value"]["status"], "EXECUTING");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    server.shutdown().await;
}

#[tokio::test]
async fn hostile_queries_are_answered_not_panicked_on() {
    let server = start(&rt_config(50)).await;
    let many_tags = (0..5000).map(|i| format!("t{i}")).collect::<Vec<_>>().join(",");
    let long_handle = "h".repeat(20_000);
    let paths = [
        format!("/realtime/v1/runs?offset=-1&tags={many_tags}"),
        format!("/realtime/v1/runs?offset=-1&tags={many_tags}&skipColumns={many_tags}"),
        "/realtime/v1/runs/run_rt_timed?live=true&offset=9223372036854775807_18446744073709551615".into(),
        "/realtime/v1/runs/run_rt_timed?live=true&offset=-9223372036854775808_0&cursor=18446744073709551615".into(),
        "/realtime/v1/runs/run_rt_timed?live=true&offset=1_-1&handle=%ff%fe".into(),
        format!("/realtime/v1/runs/run_rt_timed?live=true&offset=1_0&handle={long_handle}"),
        "/realtime/v1/runs/run_rt_timed?offset=-1&createdAt=99999999999999999999y&skipColumns=%%%,,,".into(),
        "/realtime/v1/runs?tags=&createdAt=1ms&offset=-1".into(),
        "/realtime/v1/batches/%00?offset=-1".into(),
        "/realtime/v1/runs/run_rt_timed/extra".into(),
    ];
    for path in &paths {
        let reply = feed(&server, path, DEV_KEY).await;
        assert!(
            [StatusCode::OK, StatusCode::CONFLICT, StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST]
                .contains(&reply.status),
            "{path}: {}",
            reply.status
        );
        if reply.status == StatusCode::OK {
            let _ = reply.json();
        }
    }
    let public = feed(&server, "/realtime/v1/runs/run_rt_timed?offset=-1", "pk_dev_legacy").await;
    let row = &rows(&public)[0];
    assert!(row.get("payload").is_none() && row.get("output").is_none(), "legacy public keys see no packets");
    let put = request(&server, "PUT", "/realtime/v1/runs/run_rt_timed", &[("authorization", "Bearer tr_dev_x")]).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}
