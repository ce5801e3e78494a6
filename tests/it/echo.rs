//! Error messages quote at most a short prefix of the input they are about:
//! a 1 MiB value never becomes a 1 MiB error body or line.

use crate::support::{DEV_KEY, config, request, request_with_body, retrieve, start};
use hyper::StatusCode;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trigger_mock::config::Config;
use trigger_mock::excerpt::QUOTE_CHARS;
use trigger_mock::model::ApiVersion;
use trigger_mock::scenario::Source;

/// A 1 MiB value that is valid in a JSON string, a URL and a file name.
fn huge() -> String {
    "y".repeat(1 << 20)
}

/// The longest error text a test accepts: the message and one quoted prefix or two.
const SMALL: usize = 600;

fn assert_small(what: &str, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!(body.len() < SMALL, "{what}: a {}-byte error: {}…", body.len(), &text[..text.len().min(300)]);
    // What is quoted is cut to a prefix and marked so.
    assert!(!text.contains("yyyy") || text.contains('…'), "{what}: {text}");
    assert!(!text.contains(&"y".repeat(QUOTE_CHARS + 1)), "{what}: {text}");
}

#[tokio::test]
async fn admin_errors_quote_a_short_prefix() {
    let server = start(&config()).await;
    let y = huge();
    let run = |body: String| format!(r#"{{"version": 1, "runs": [{body}]}}"#);
    let cases: Vec<(&str, &str, String, String)> = vec![
        ("clock duration", "POST", "/_mock/clock".into(), format!(r#"{{"advance": "{y}"}}"#)),
        ("clock instant", "POST", "/_mock/clock".into(), format!(r#"{{"set": "{y}"}}"#)),
        ("clock unknown field", "POST", "/_mock/clock".into(), format!(r#"{{"{y}": 1}}"#)),
        ("clock wrong type", "POST", "/_mock/clock".into(), format!(r#"{{"freeze": "{y}"}}"#)),
        ("scenario ttl", "PUT", "/_mock/scenarios/a".into(), run(format!(r#"{{"id": "run_a", "ttl": "{y}"}}"#))),
        (
            "scenario parent",
            "PUT",
            "/_mock/scenarios/a".into(),
            run(format!(r#"{{"id": "run_a", "parent": "run_{y}"}}"#)),
        ),
        (
            "scenario twice",
            "PUT",
            "/_mock/scenarios/a".into(),
            run(format!(r#"{{"id": "run_{y}"}}, {{"id": "run_{y}"}}"#)),
        ),
        ("scenario unknown key", "PUT", "/_mock/scenarios/a".into(), run(format!(r#"{{"id": "run_a", "{y}": 1}}"#))),
        (
            "scenario bad status",
            "PUT",
            "/_mock/scenarios/a".into(),
            run(format!(r#"{{"id": "run_a", "status": "{y}"}}"#)),
        ),
        (
            "scenario step duration",
            "PUT",
            "/_mock/scenarios/a".into(),
            run(format!(
                r#"{{"id": "run_a", "lifecycle": [{{"status": "EXECUTING", "for": "{y}"}}, {{"status": "CANCELED"}}]}}"#
            )),
        ),
        (
            "fault header",
            "PUT",
            "/_mock/scenarios/a".into(),
            format!(
                r#"{{"version": 1, "faults": [{{"action": {{"type": "status", "status": 500, "headers": {{"{y}\n": "v"}}}}}}]}}"#
            ),
        ),
        ("scenario name", "DELETE", format!("/_mock/scenarios/{}", &y[..60_000]), String::new()),
        ("journal limit", "GET", format!("/_mock/journal?limit={}", &y[..60_000]), String::new()),
    ];
    for (what, method, path, body) in cases {
        let reply = request_with_body(&server, method, &path, &[], &body).await;
        assert!(reply.status.is_client_error(), "{what}: {}", reply.status);
        assert_small(what, &reply.body);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wire_errors_quote_a_short_prefix() {
    let packet =
        r#"{"version": 1, "runs": [{"id": "run_p", "status": "EXECUTING", "payloadPacket": {"size": "1MiB"}}]}"#;
    let source = Source { name: "p".into(), text: packet.into(), path: None };
    let server = start(&Config { inline_scenarios: vec![source], ..config() }).await;
    // A long extension method on an admin route.
    let method = "Y".repeat(30_000);
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!("{method} /_mock/clock HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 405"), "{}", &text[..text.len().min(200)]);
    assert!(answer.len() < 1000, "a {}-byte answer to a long method", answer.len());

    // A long, valid Range beyond the packet on its presigned URL.
    let body = retrieve(&server, "run_p", DEV_KEY, ApiVersion::V20250716).await.json();
    let url = body["payloadPresignedUrl"].as_str().unwrap();
    let rest = url.strip_prefix("http://").unwrap();
    let path = &rest[rest.find('/').unwrap()..];
    let range = format!("bytes={}99999999-", " ".repeat(30_000));
    let reply = request(&server, "GET", path, &[("range", &range)]).await;
    assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(reply.body.len() < 1000, "a {}-byte 416", reply.body.len());
    server.shutdown().await;
}

#[test]
fn command_line_errors_quote_a_short_prefix() {
    let bin = env!("CARGO_BIN_EXE_trigger-mock");
    let long = "y".repeat(100_000);
    let dir = std::env::temp_dir().join(format!("trigger-mock-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.json");
    std::fs::write(&file, format!(r#"{{"version": 1, "runs": [{{"id": "run_a", "ttl": "{long}"}}]}}"#)).unwrap();
    let runs: Vec<Vec<String>> = vec![
        vec!["validate".into(), file.to_string_lossy().into_owned()],
        vec!["--secret-key".into(), format!("pk_{long}"), "--addr".into(), "127.0.0.1:0".into()],
        vec!["--clock".into(), long.clone(), "--addr".into(), "127.0.0.1:0".into()],
        vec!["render".into(), format!("run_{long}"), "--no-generate".into()],
        vec!["scenarios".into(), long.clone()],
    ];
    for args in runs {
        let out = Command::new(bin).args(&args).output().unwrap();
        assert!(!out.status.success(), "{:?} succeeded", &args[0]);
        assert!(out.stderr.len() < 1000, "{}: {} bytes on stderr", args[0], out.stderr.len());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
