//! Scenario fidelity: what scenario runs, faults and the clock look like to a
//! client, at the edges the other suites do not reach (independent coin flips,
//! a fault's rate limit under a live bucket, timestamps that never run ahead
//! of the clock, syntax errors where the parser failed, the clock's limits,
//! and the Host a presigned URL is built from).

use crate::support::{DEV_KEY, NOW, config, request_with_body, retrieve, start};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use trigger_mock::clock::Clock;
use trigger_mock::config::Config;
use trigger_mock::model::ApiVersion;
use trigger_mock::scenario::Source;
use trigger_mock::server::Server;
use trigger_mock::time::Millis;

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

/// The instants of a run body, parsed.
fn instant(body: &serde_json::Value, field: &str) -> Option<Millis> {
    body[field].as_str().map(|t| Millis::parse_rfc3339(t).unwrap_or_else(|e| panic!("{field}: {e}")))
}

/// Scripted runs for item 18: each first status, retrieve-driven.
const SCRIPTED: &str = r#"{"version": 1, "runs": [
    {"id": "run_ua_pending_a", "lifecycle": [{"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING", "retrieves": 1}, {"status": "COMPLETED_SUCCESSFULLY"}]},
    {"id": "run_ua_pending_b", "lifecycle": [{"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING", "retrieves": 1}, {"status": "COMPLETED_SUCCESSFULLY"}]},
    {"id": "run_ua_pending_c", "lifecycle": [{"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING", "retrieves": 1}, {"status": "COMPLETED_SUCCESSFULLY"}]},
    {"id": "run_ua_queued", "lifecycle": [{"status": "PENDING_VERSION", "retrieves": 1}, {"status": "DEQUEUED", "retrieves": 1}, {"status": "EXECUTING", "retrieves": 1}, {"status": "SYSTEM_FAILURE"}]},
    {"id": "run_ua_delayed", "lifecycle": [{"status": "DELAYED", "for": "1s"}, {"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING"}]},
    {"id": "run_ua_executing", "lifecycle": [{"status": "EXECUTING", "retrieves": 1}, {"status": "COMPLETED_SUCCESSFULLY"}]}
]}"#;

/// Item 18: a scripted run's `updatedAt` never runs ahead of the clock (a
/// run that starts queued was updated a few ms after the frozen "now"), and
/// no timestamp does.
#[tokio::test]
async fn scripted_timestamps_never_run_ahead_of_a_frozen_clock() {
    let server = start(&inline(SCRIPTED)).await;
    for id in [
        "run_ua_pending_a",
        "run_ua_pending_b",
        "run_ua_pending_c",
        "run_ua_queued",
        "run_ua_delayed",
        "run_ua_executing",
    ] {
        for attempt in 0..4 {
            let reply = retrieve(&server, id, DEV_KEY, ApiVersion::V20250716).await;
            let body = reply.json();
            for field in ["createdAt", "updatedAt", "startedAt", "finishedAt"] {
                if let Some(at) = instant(&body, field) {
                    assert!(at <= NOW, "{id} retrieve {attempt}: {field} {at} is after now {NOW}");
                }
            }
            assert!(instant(&body, "updatedAt") >= instant(&body, "createdAt"), "{id}: {body}");
        }
    }
    server.shutdown().await;
}

/// Item 18: under the real clock, `updatedAt` never goes back from one
/// retrieve to the next, and never passes the wall clock.
#[tokio::test]
async fn scripted_updated_at_never_goes_back_under_the_real_clock() {
    let cfg = Config { inline_scenarios: inline(SCRIPTED).inline_scenarios, ..Config::ephemeral(Clock::system()) };
    let server = start(&cfg).await;
    for id in ["run_ua_pending_a", "run_ua_pending_b", "run_ua_pending_c", "run_ua_queued", "run_ua_executing"] {
        let mut last = None;
        for attempt in 0..5 {
            let reply = retrieve(&server, id, DEV_KEY, ApiVersion::V20250716).await;
            let after = trigger_mock::clock::wall_now();
            let body = reply.json();
            let updated = instant(&body, "updatedAt");
            assert!(updated >= last, "{id} retrieve {attempt}: updatedAt went back from {last:?} to {updated:?}");
            assert!(updated <= Some(after), "{id} retrieve {attempt}: updatedAt {updated:?} is after {after}");
            last = updated;
        }
    }
    server.shutdown().await;
}

/// Item 19: a run that starts queued gets its worker version when it starts,
/// dated at or before its `createdAt` (it was dated from 1970, `19691230.15`).
#[tokio::test]
async fn a_scripted_run_that_starts_is_given_a_version_dated_before_its_creation() {
    let text = r#"{"version": 1, "runs": [
        {"id": "run_v_retrieves", "lifecycle": [{"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING"}]},
        {"id": "run_v_for", "lifecycle": [{"status": "DELAYED", "for": "1m"}, {"status": "PENDING", "for": "1m"}, {"status": "EXECUTING"}]},
        {"id": "run_v_named", "version": "20251224.3", "lifecycle": [{"status": "PENDING", "retrieves": 1}, {"status": "EXECUTING"}]}
    ]}"#;
    let server = start(&inline(text)).await;
    let version_of = |body: &serde_json::Value| body["version"].as_str().map(str::to_owned);
    // Retrieve-driven.
    retrieve(&server, "run_v_retrieves", DEV_KEY, ApiVersion::V20250716).await;
    let started = retrieve(&server, "run_v_retrieves", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(started["status"], "EXECUTING");
    // Time-driven.
    admin(&server, "POST", "/_mock/clock", r#"{"advance": "3m"}"#).await;
    let later = retrieve(&server, "run_v_for", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(later["status"], "EXECUTING");
    for body in [&started, &later] {
        let version = version_of(body).unwrap_or_else(|| panic!("no version: {body}"));
        let created = body["createdAt"].as_str().unwrap();
        let created_day: String = created[..10].chars().filter(char::is_ascii_digit).collect();
        let (day, build) = version.split_once('.').unwrap_or_else(|| panic!("{version}"));
        assert!(day <= created_day.as_str(), "{version} is dated after createdAt {created}");
        let earliest = Millis::parse_rfc3339(created).unwrap().plus(-20 * 86_400_000).to_string();
        let earliest: String = earliest[..10].chars().filter(char::is_ascii_digit).collect();
        assert!(day >= earliest.as_str(), "{version} is more than 20 days before createdAt {created}");
        assert!(build.parse::<u32>().is_ok_and(|b| (1..25).contains(&b)), "{version}");
    }
    // A version the file names is kept.
    retrieve(&server, "run_v_named", DEV_KEY, ApiVersion::V20250716).await;
    let named = retrieve(&server, "run_v_named", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(version_of(&named).as_deref(), Some("20251224.3"));
    server.shutdown().await;
}

/// Item 20: a syntax error is reported where the parser failed (the
/// unexpected token), not at the opening brace of the object around it.
#[tokio::test]
async fn a_syntax_error_points_at_the_unexpected_token() {
    let cases = [
        // A missing comma inside a multi-line object: the next key is unexpected.
        (
            "{\n  \"version\": 1,\n  \"runs\": [\n    {\n      \"id\": \"run_a\",\n      \"status\": \"PENDING\"\n      \"ttl\": \"10m\"\n    }\n  ]\n}\n",
            "7:7",
            "expected `,` or `}`",
        ),
        // A bare word where a value belongs.
        (
            "{\n  \"version\": 1,\n  \"runs\": [\n    {\n      \"id\": \"run_a\",\n      \"status\": PENDING\n    }\n  ]\n}\n",
            "6:17",
            "expected value",
        ),
        // Columns count characters, as the rest of the diagnostics do, not serde_json's bytes.
        ("{\n  \"description\": \"café €\" \"version\": 1\n}\n", "2:27", "expected `,` or `}`"),
        // A trailing comma.
        ("{\n  \"version\": 1,\n  \"faults\": [\n    {\"delayMs\": 5,}\n  ]\n}\n", "4:19", "trailing comma"),
    ];
    for (text, at, message) in cases {
        let problems =
            trigger_mock::scenario::compile(&[Source { name: "s.json".into(), text: text.into(), path: None }])
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}"));
        let line = problems[0].to_string();
        assert!(line.starts_with(&format!("s.json:{at}: ")), "{line}\n{text}");
        assert!(line.contains(message), "{line}");
    }
    // A value of the wrong type still points at its key, where a person looks.
    let text =
        "{\n  \"version\": 1,\n  \"runs\": [\n    {\n      \"id\": \"run_a\",\n      \"ttl\": 5\n    }\n  ]\n}\n";
    let problems = trigger_mock::scenario::compile(&[Source { name: "s.json".into(), text: text.into(), path: None }])
        .err()
        .unwrap();
    assert!(problems[0].to_string().starts_with("s.json:6:7: runs[0].ttl: invalid type"), "{}", problems[0]);
    // The admin API says the same.
    let server = start(&config()).await;
    let (status, body) = admin(&server, "PUT", "/_mock/scenarios/comma.json", cases[0].0).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["problems"][0].as_str().unwrap().starts_with("comma.json:7:7: "), "{body}");
    server.shutdown().await;
}

/// Checks that every date of a run body is RFC 3339 as `toISOString` writes
/// it, and that its worker version names a four-digit year.
fn assert_dates_writable(value: &serde_json::Value, at: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                if let (true, Some(text)) = (k.ends_with("At") || k.ends_with("Until"), v.as_str()) {
                    let shape = text.len() == 24
                        && text.bytes().enumerate().all(|(i, b)| match i {
                            4 | 7 => b == b'-',
                            10 => b == b'T',
                            13 | 16 => b == b':',
                            19 => b == b'.',
                            23 => b == b'Z',
                            _ => b.is_ascii_digit(),
                        });
                    assert!(shape && Millis::parse_rfc3339(text).is_ok(), "{here} = {text}");
                }
                if k == "version"
                    && let Some(text) = v.as_str()
                {
                    let (day, build) = text.split_once('.').unwrap_or_else(|| panic!("{here} = {text}"));
                    assert!(day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()), "{here} = {text}");
                    assert!(build.parse::<u32>().is_ok(), "{here} = {text}");
                }
                if k.ends_with("PresignedUrl")
                    && let Some(url) = v.as_str()
                {
                    let date = url.split("X-Amz-Date=").nth(1).map(|d| &d[..16]).unwrap_or_default();
                    assert!(date.bytes().filter(u8::is_ascii_digit).count() == 14, "{here} = {url}");
                }
                assert_dates_writable(v, &here);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_dates_writable(v, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// Item 21: at both ends of the clock's range every run, generated, from the
/// catalogue or scripted, renders dates RFC 3339 can write (a clock at the
/// year 0 wrote `-001-12-31…`, one at 9999-12-31 the year 10000), and the
/// clock refuses to go past either end.
#[tokio::test]
async fn every_date_stays_writable_at_both_ends_of_the_clock() {
    use trigger_mock::clock::{EARLIEST, LATEST};
    use trigger_mock::model::EngineStatus;
    let scenarios: Vec<String> =
        ["every-status", "poll-to-completion", "poll-to-failure", "delayed-to-queued", "expired-ttl"]
            .map(|n| format!("builtin:{n}"))
            .to_vec();
    let world = Config { scenarios: scenarios.clone(), ..config() }.build_app().unwrap().world();
    let mut ids: Vec<String> = world.store.entries().iter().map(|e| e.id.clone()).collect();
    ids.extend(world.lifecycles.keys().map(|id| id.to_string()));
    ids.extend(EngineStatus::ALL.iter().map(|s| format!("run_{}_edge", s.name().to_ascii_lowercase())));
    ids.sort();
    ids.dedup();
    for edge in [EARLIEST, LATEST] {
        let cfg = Config { scenarios: scenarios.clone(), ..Config::ephemeral(Clock::frozen(edge)) };
        let server = start(&cfg).await;
        for id in &ids {
            for (i, version) in
                [ApiVersion::V20250716, ApiVersion::Unversioned, ApiVersion::V20250716].iter().enumerate()
            {
                let reply = retrieve(&server, id, DEV_KEY, *version).await;
                assert_eq!(reply.status, StatusCode::OK, "{id} at {edge}");
                assert_dates_writable(&reply.json(), &format!("{id} at {edge}, retrieve {i}"));
            }
        }
        // Time-driven steps and TTLs at the edge: move as far as the clock goes.
        let (status, _) = admin(&server, "POST", "/_mock/clock", r#"{"advance": "2h"}"#).await;
        if edge == EARLIEST {
            assert_eq!(status, StatusCode::OK);
            for id in &ids {
                assert_dates_writable(&retrieve(&server, id, DEV_KEY, ApiVersion::V20250716).await.json(), id);
            }
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "past the latest instant");
        }
        server.shutdown().await;
    }
    // The admin API refuses instants outside the range, with the range in its answer.
    let server = start(&config()).await;
    for change in [
        r#"{"set": "0000-06-01T00:00:00Z"}"#,
        r#"{"set": "0001-01-01T00:00:00+00:01"}"#,
        r#"{"set": "9999-01-01T00:00:00Z"}"#,
    ] {
        let (status, body) = admin(&server, "POST", "/_mock/clock", change).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("0001-01-01T00:00:00.000Z") && error.contains("9998-12-31T23:59:59.999Z"), "{error}");
    }
    for ok in [r#"{"set": "0001-01-01T00:00:00Z"}"#, r#"{"set": "9998-12-31T23:59:59.999Z"}"#] {
        assert_eq!(admin(&server, "POST", "/_mock/clock", ok).await.0, StatusCode::OK, "{ok}");
    }
    server.shutdown().await;
    // A scenario's own huge duration is written as the last instant RFC 3339 can write.
    let text = r#"{"version": 1, "runs": [{"id": "run_far", "lifecycle": [{"status": "DELAYED", "for": "600000w"}, {"status": "PENDING"}]}]}"#;
    let server = start(&inline(text)).await;
    let far = retrieve(&server, "run_far", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(far["delayedUntil"], "9999-12-31T23:59:59.999Z");
    server.shutdown().await;
    // So does --clock, in one line, before anything is bound.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trigger-mock"))
        .args(["render", "run_completed", "--clock", "0000-01-01T00:00:00Z"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("trigger-mock: --clock: `0000-01-01T00:00:00Z` is out of range"), "{stderr}");
}

/// A raw HTTP/1.x exchange: the request as written, the response's body.
async fn raw_body(server: &Server, request: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut bytes)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {text}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The host part of a presigned URL.
fn url_host(url: &serde_json::Value) -> &str {
    let url = url.as_str().unwrap_or_else(|| panic!("no URL: {url}"));
    url.strip_prefix("http://").and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{url}"))
}

/// Item 23: presigned URLs point at the authority the client used, else its
/// `Host`, else the address it reached (not `localhost` with no port); a
/// `Host` that is not a plain `host[:port]` (a port past 65535) is skipped,
/// and over HTTP/2 `:authority` wins over `host`.
#[tokio::test]
async fn presigned_urls_point_where_the_client_can_reach_them() {
    let server = start(&config()).await;
    let here = server.addr().to_string();
    let get = |head: &str| format!("GET {head} HTTP/1.1\r\nauthorization: Bearer {DEV_KEY}\r\nconnection: close\r\n",);
    let url_for = |extra: &str| format!("{}{extra}\r\n", get("/api/v3/runs/run_demo_large_payload"));
    for (request, want) in [
        (url_for(""), here.as_str()),
        (url_for("host: x:99999999\r\n"), here.as_str()),
        (url_for("host: x:0\r\n"), here.as_str()),
        (url_for("host: a@b:80\r\n"), here.as_str()),
        (url_for("host: \r\n"), here.as_str()),
        (url_for("host: example.test:8080\r\n"), "example.test:8080"),
        (url_for("host: [::1]:9\r\n"), "[::1]:9"),
        (
            format!("{}host: host.test:1\r\n\r\n", get("http://absolute.test:77/api/v3/runs/run_demo_large_payload")),
            "absolute.test:77",
        ),
    ] {
        let body = raw_body(&server, &request).await;
        assert_eq!(url_host(&body["payloadPresignedUrl"]), want, "{request}");
    }
    // The fallback URL works as it is.
    let body = raw_body(&server, &url_for("host: x:99999999\r\n")).await;
    let url = body["payloadPresignedUrl"].as_str().unwrap();
    let path = &url[url.find("/packets/").unwrap()..];
    let packet = request_with_body(&server, "HEAD", path, &[], "").await;
    assert_eq!(packet.status, StatusCode::OK, "{url}");

    // HTTP/2: `:authority` wins over a `host` header.
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for (uri, host, want) in [
        ("http://authority.test:4443/api/v3/runs/run_demo_large_payload", Some("host.test:99"), "authority.test:4443"),
        ("http://authority.test:4443/api/v3/runs/run_demo_large_payload", None, "authority.test:4443"),
    ] {
        let mut req = Request::get(uri).header("authorization", format!("Bearer {DEV_KEY}"));
        if let Some(host) = host {
            req = req.header("host", host);
        }
        let res = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(url_host(&body["payloadPresignedUrl"]), want, "{uri} with host {host:?}");
    }
    server.shutdown().await;
}

/// Item 23: a `status` fault cannot answer 1xx (it was accepted, then served
/// as 500) nor set the headers that frame the response or the connection
/// (they could contradict the body's real length).
#[tokio::test]
async fn status_faults_refuse_informational_codes_and_framing_headers() {
    let server = start(&config()).await;
    let fault = |action: &str| format!(r#"{{"version": 1, "faults": [{{"runId": "run_x", "action": {action}}}]}}"#);
    for (action, says) in [
        (r#"{"type": "status", "status": 100}"#, "100 is informational (1xx)"),
        (r#"{"type": "status", "status": 103, "text": "early"}"#, "103 is informational (1xx)"),
        (
            r#"{"type": "status", "status": 200, "text": "hello", "headers": {"Content-Length": "2"}}"#,
            "`content-length`",
        ),
        (r#"{"type": "status", "status": 200, "headers": {"transfer-encoding": "chunked"}}"#, "`transfer-encoding`"),
        (r#"{"type": "status", "status": 200, "headers": {"connection": "close"}}"#, "`connection`"),
        (r#"{"type": "status", "status": 200, "headers": {"Keep-Alive": "timeout=1"}}"#, "`keep-alive`"),
        (r#"{"type": "status", "status": 200, "headers": {"upgrade": "websocket"}}"#, "`upgrade`"),
        (r#"{"type": "status", "status": 200, "headers": {"te": "trailers"}}"#, "`te`"),
        (r#"{"type": "status", "status": 200, "headers": {"trailer": "x-a"}}"#, "`trailer`"),
    ] {
        let (status, body) = admin(&server, "PUT", "/_mock/scenarios/s.json", &fault(action)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{action}: {body}");
        let problem = body["problems"][0].as_str().unwrap();
        assert!(problem.starts_with("s.json:1:") && problem.contains(says), "{action}: {problem}");
    }
    // The lowest final status and ordinary headers are fine, and served as written.
    let ok = fault(r#"{"type": "status", "status": 200, "text": "hello", "headers": {"x-content-length": "2"}}"#);
    assert_eq!(admin(&server, "PUT", "/_mock/scenarios/s.json", &ok).await.0, StatusCode::OK);
    let auth = format!("Bearer {DEV_KEY}");
    let reply = request_with_body(&server, "GET", "/api/v3/runs/run_x", &[("authorization", &auth)], "").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_ref()), (200, b"hello".as_slice()));
    assert_eq!(reply.headers["content-length"], "5");
    assert_eq!(reply.headers["x-content-length"], "2");
    server.shutdown().await;
}

/// Item 23: one rule for the admin clock. `advance` and `advanceMs` move it
/// forward only (`advanceMs: -1` moved it back while `"-1s"` was refused);
/// `set` goes anywhere in range; a refused change changes nothing.
#[tokio::test]
async fn the_admin_clock_advances_forward_only() {
    let server = start(&config()).await;
    let now = || async { admin(&server, "GET", "/_mock/clock", "").await.1 };
    for backwards in [r#"{"advanceMs": -1}"#, r#"{"advance": "-1s"}"#, r#"{"freeze": false, "advanceMs": -60000}"#] {
        let (status, body) = admin(&server, "POST", "/_mock/clock", backwards).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backwards}: {body}");
        assert!(body["error"].as_str().unwrap().contains("forward only; use `set`"), "{body}");
        let clock = now().await;
        assert_eq!((clock["nowMs"].as_i64(), clock["frozen"].as_bool()), (Some(NOW.0), Some(true)), "{backwards}");
    }
    for zero in [r#"{"advanceMs": 0}"#, r#"{"advance": "0s"}"#] {
        let (status, body) = admin(&server, "POST", "/_mock/clock", zero).await;
        assert_eq!((status, body["nowMs"].as_i64()), (StatusCode::OK, Some(NOW.0)), "{zero}");
    }
    let (_, body) = admin(&server, "POST", "/_mock/clock", r#"{"advance": "1s", "advanceMs": 500}"#).await;
    assert_eq!(body["nowMs"].as_i64(), Some(NOW.0 + 1500));
    let (_, body) = admin(&server, "POST", "/_mock/clock", r#"{"set": "2025-12-31T23:59:59Z"}"#).await;
    assert_eq!(body["nowMs"].as_i64(), Some(NOW.0 - 1000), "set moves it back");
    server.shutdown().await;
}
