//! Offloaded packets: presigned URLs in bodies, signatures and expiry on the
//! mock clock, HEAD and ranges, truncation, files, and a large packet
//! streamed in constant memory.

use crate::support::{DEV_KEY, config, request, request_with_body, retrieve, start};
use bytes::Bytes;
use hyper::StatusCode;
use trigger_mock::config::Config;
use trigger_mock::model::ApiVersion;
use trigger_mock::scenario::Source;

fn with(text: &str) -> Config {
    Config { inline_scenarios: vec![Source { name: "packets.json".into(), text: text.into(), path: None }], ..config() }
}

const SCENARIO: &str = r#"{
  "version": 1,
  "runs": [
    { "id": "run_big", "status": "COMPLETED_SUCCESSFULLY",
      "payloadPacket": { "type": "application/super+json", "size": "2MiB" },
      "outputPacket": { "type": "text/plain", "size": "600KiB" } },
    { "id": "run_small_always", "status": "EXECUTING", "payloadPacket": { "data": { "a": 1 }, "offload": "always" } },
    { "id": "run_big_never", "status": "EXECUTING", "payloadPacket": { "type": "text/plain", "size": "1MiB", "offload": "never" } },
    { "id": "run_expired_url", "status": "EXECUTING", "payloadPacket": { "size": "1MiB", "url": "expired" } },
    { "id": "run_missing_url", "status": "EXECUTING", "payloadPacket": { "size": "1MiB", "url": "notFound" } },
    { "id": "run_truncated_url", "status": "EXECUTING", "payloadPacket": { "size": "1MiB", "url": "truncated" } },
    { "id": "run_huge", "status": "EXECUTING", "payloadPacket": { "size": "64MiB" } }
  ]
}"#;

/// The path and query of a presigned URL in a body.
fn url_of(body: &serde_json::Value, field: &str) -> String {
    let url = body[field].as_str().unwrap_or_else(|| panic!("no {field} in {body}"));
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

#[tokio::test]
async fn offloaded_packets_become_presigned_urls() {
    let server = start(&with(SCENARIO)).await;
    let reply = retrieve(&server, "run_big", DEV_KEY, ApiVersion::V20250716).await;
    let body = reply.json();
    assert!(body.get("payload").is_none() && body.get("output").is_none());
    let fixed_host = request(
        &server,
        "GET",
        "/api/v3/runs/run_big",
        &[("authorization", "Bearer tr_dev_x"), ("x-trigger-api-version", "2025-07-16"), ("host", "mock.test:3033")],
    )
    .await;
    crate::support::assert_valid(&fixed_host.json(), ApiVersion::V20250716);
    insta::assert_snapshot!("packets__run_big", fixed_host.snapshot());
    let host = format!("http://{}/packets/run_big/payload.json?", server.addr());
    assert!(body["payloadPresignedUrl"].as_str().unwrap().starts_with(&host), "the Host the client used");
    let mapped = request(
        &server,
        "GET",
        "/api/v3/runs/run_big",
        &[("authorization", "Bearer tr_dev_x"), ("host", "mock.example.test:8080")],
    )
    .await;
    assert!(
        mapped.json()["payloadPresignedUrl"].as_str().unwrap().starts_with("http://mock.example.test:8080/packets/")
    );
    let small = retrieve(&server, "run_small_always", DEV_KEY, ApiVersion::V20250716).await.json();
    assert!(small.get("payloadPresignedUrl").is_some() && small.get("payload").is_none(), "offload: always");
    let never = retrieve(&server, "run_big_never", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(never["payload"].as_str().map(str::len), Some(1 << 20), "offload: never keeps 1 MiB inline");
    let public = retrieve(&server, "run_big", "pk_dev_x", ApiVersion::V20250716).await.json();
    assert!(public.get("payloadPresignedUrl").is_none() && public.get("outputPresignedUrl").is_none());
    server.shutdown().await;

    let low = start(&Config { offload_threshold: 10, ..config() }).await;
    let body = retrieve(&low, "run_demo_completed", DEV_KEY, ApiVersion::V20250716).await.json();
    assert!(body.get("payloadPresignedUrl").is_some() && body.get("outputPresignedUrl").is_some(), "{body}");
    low.shutdown().await;
}

#[tokio::test]
async fn urls_serve_the_packet_with_its_type_to_anyone() {
    let server = start(&with(SCENARIO)).await;
    let body = retrieve(&server, "run_big", DEV_KEY, ApiVersion::V20250716).await.json();
    let payload = request(&server, "GET", &url_of(&body, "payloadPresignedUrl"), &[]).await;
    assert_eq!(payload.status, StatusCode::OK);
    assert_eq!(payload.headers["content-type"], "application/super+json");
    assert_eq!(payload.headers["accept-ranges"], "bytes");
    assert_eq!(payload.body.len(), 2 << 20);
    let json: serde_json::Value = serde_json::from_slice(&payload.body).unwrap();
    assert_eq!(json["meta"]["values"]["createdAt"][0], "Date");
    assert_eq!(json["json"]["createdAt"], body["createdAt"]);
    let output = request(&server, "GET", &url_of(&body, "outputPresignedUrl"), &[]).await;
    assert_eq!(output.headers["content-type"], "text/plain");
    assert_eq!(output.body.len(), 600 << 10);
    server.shutdown().await;
}

#[tokio::test]
async fn head_and_ranges_work_as_on_s3() {
    let server = start(&with(SCENARIO)).await;
    let body = retrieve(&server, "run_big", DEV_KEY, ApiVersion::V20250716).await.json();
    let url = url_of(&body, "payloadPresignedUrl");
    let whole = request(&server, "GET", &url, &[]).await.body;
    let size = whole.len();
    let head = request(&server, "HEAD", &url, &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-length"], size.to_string().as_str());
    assert!(head.body.is_empty());
    for (range, from, to) in [("bytes=0-9", 0, 10), ("bytes=1000-", 1000, size), ("bytes=-25", size - 25, size)] {
        let part = request(&server, "GET", &url, &[("range", range)]).await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(part.headers["content-range"], format!("bytes {from}-{}/{size}", to - 1).as_str());
        assert_eq!(part.body, whole.slice(from..to), "{range}");
    }
    let beyond = request(&server, "GET", &url, &[("range", &format!("bytes={size}-"))]).await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers["content-range"], format!("bytes */{size}").as_str());
    insta::assert_snapshot!("packets__range_not_satisfiable", beyond.snapshot());
    let post = request(&server, "POST", &url, &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}

#[tokio::test]
async fn urls_expire_on_the_mock_clock_and_refuse_tampering() {
    let server = start(&with(SCENARIO)).await;
    let body = retrieve(&server, "run_big", DEV_KEY, ApiVersion::V20250716).await.json();
    let url = url_of(&body, "payloadPresignedUrl");
    let tampered = url.replace("run_big/payload", "run_big/output").replace(".json", ".txt");
    let refused = request(&server, "GET", &tampered, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    insta::assert_snapshot!("packets__signature_does_not_match", refused.snapshot());
    let mut flipped = url.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(request(&server, "GET", &flipped, &[]).await.status, StatusCode::FORBIDDEN);
    request_with_body(&server, "POST", "/_mock/clock", &[], r#"{"advance": "5m"}"#).await;
    assert_eq!(request(&server, "GET", &url, &[]).await.status, StatusCode::OK, "valid for 300 s");
    request_with_body(&server, "POST", "/_mock/clock", &[], r#"{"advanceMs": 1}"#).await;
    let expired = request(&server, "GET", &url, &[]).await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert_eq!(expired.headers["content-type"], "application/xml");
    insta::assert_snapshot!("packets__expired", expired.snapshot());
    let fresh = retrieve(&server, "run_big", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(request(&server, "GET", &url_of(&fresh, "payloadPresignedUrl"), &[]).await.status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn scenarios_break_urls_on_purpose() {
    let server = start(&with(SCENARIO)).await;
    let get = |id: &'static str| {
        let server = &server;
        async move {
            let body = retrieve(server, id, DEV_KEY, ApiVersion::V20250716).await.json();
            request(server, "GET", &url_of(&body, "payloadPresignedUrl"), &[]).await
        }
    };
    let expired = get("run_expired_url").await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert!(
        String::from_utf8_lossy(&expired.body)
            .contains("<Code>AccessDenied</Code><Message>Request has expired</Message>")
    );
    let missing = get("run_missing_url").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    insta::assert_snapshot!("packets__no_such_key", missing.snapshot());
    let truncated = get("run_truncated_url").await;
    assert_eq!(truncated.status, StatusCode::OK);
    assert_eq!(truncated.body.len(), 512 << 10, "a complete response with half the packet");
    assert!(serde_json::from_slice::<serde_json::Value>(&truncated.body).is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn files_beside_the_scenario_are_served_and_escapes_refused() {
    let dir = std::env::temp_dir().join(format!("trigger-mock-packets-{}", std::process::id()));
    let inner = dir.join("scenarios");
    std::fs::create_dir_all(inner.join("data")).unwrap();
    let data: Vec<u8> = (0..700_000u32).map(|i| b"abcdefghij\n"[(i % 11) as usize]).collect();
    std::fs::write(inner.join("data/report.txt"), &data).unwrap();
    std::fs::write(dir.join("secret.txt"), b"outside").unwrap();
    let scenario = inner.join("files.json");
    let write = |file: &str| {
        std::fs::write(
            &scenario,
            format!(
                r#"{{"version": 1, "runs": [{{"id": "run_file", "status": "COMPLETED_SUCCESSFULLY", "outputPacket": {{"type": "text/plain", "file": "{file}"}}}}]}}"#
            ),
        )
        .unwrap();
    };
    write("data/report.txt");
    let cfg = Config { scenarios: vec![scenario.to_string_lossy().into_owned()], ..config() };
    let server = start(&cfg).await;
    let body = retrieve(&server, "run_file", DEV_KEY, ApiVersion::V20250716).await.json();
    let served = request(&server, "GET", &url_of(&body, "outputPresignedUrl"), &[]).await;
    assert_eq!(served.body, Bytes::from(data.clone()));
    let part = request(&server, "GET", &url_of(&body, "outputPresignedUrl"), &[("range", "bytes=5-16")]).await;
    assert_eq!(part.body.as_ref(), &data[5..17]);
    server.shutdown().await;

    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("secret.txt"), inner.join("data/link.txt")).unwrap();
    for (file, why) in [
        ("../secret.txt", "is not a plain path below the scenario's folder"),
        ("/etc/hostname", "is not a plain path below the scenario's folder"),
        ("data/nope.txt", "cannot read `data/nope.txt`"),
        #[cfg(unix)]
        ("data/link.txt", "leads out of the scenario's folder"),
    ] {
        write(file);
        let Err(trigger_mock::server::StartError::Invalid(lines)) = cfg.build_app() else { panic!("{file} accepted") };
        assert!(lines[0].contains("runs[0].outputPacket.file: ") && lines[0].contains(why), "{file}: {}", lines[0]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
