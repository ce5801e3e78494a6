//! Property-based tests: arbitrary requests never panic and always get one of
//! the known answers; hostile bearer tokens never panic and never
//! authenticate; presigned URLs name a plain host whatever `Host` and
//! authority say; sessions that move the mock clock anywhere get bodies that
//! match the schemas; arbitrary and near-valid scenario files never panic and
//! every problem points into its file; every generated run, in both API
//! versions and for every kind of key, matches the project's JSON Schemas;
//! the journal and the per-key state never exceed their byte budgets and
//! keep the most recent.
//!
//! Case counts are bounded so the module stays fast in a debug build on two
//! cores; `PROPTEST_CASES` raises them all for a longer local run. No failure
//! file is written: a failure prints its minimal input instead.

use crate::support::{DEV_KEY, NOW, assert_valid};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Uri};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Number, Value};
use std::sync::OnceLock;
use trigger_mock::app::App;
use trigger_mock::clock::Clock;
use trigger_mock::config::Config;
use trigger_mock::conn::Control;
use trigger_mock::convention;
use trigger_mock::environments::environment_id;
use trigger_mock::generate::generate;
use trigger_mock::jwt::{self, Algorithm, base64url};
use trigger_mock::model::{ApiVersion, EngineStatus, PacketUrls, RenderOptions, Run, render_json};
use trigger_mock::presign::Presigner;
use trigger_mock::scenario::{self, Diagnostic, Source};
use trigger_mock::time::Millis;
use trigger_mock::world::{DEFAULT_OFFLOAD_THRESHOLD, Settings, World};

/// The presign secret of the app under test.
const SECRET: &str = "p";

/// `cases` cases (or `PROPTEST_CASES`), no failure file, few rejects.
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() })
}

/// Runs `test` over `strategy`; a failure panics with the minimal input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases).run(&strategy, test) {
        panic!("{e}");
    }
}

/// The app of the brief: the test clock, a known presign secret, no files.
fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        Config { presign_secret: Some(SECRET.into()), ..Config::ephemeral(Clock::frozen(NOW)) }.build_app().unwrap()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// What `App::handle` answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Bytes,
}

/// Sends one request straight to [`App::handle`]. `None` for a reset fault
/// (there is none without scenario files).
async fn send(req: Request<Empty<Bytes>>) -> Option<Answer> {
    send_to(app(), req).await
}

async fn send_to<B>(app: &App, req: Request<B>) -> Option<Answer>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = app.handle(req, &Control::default()).await.ok()?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some(Answer { status, content_type, body })
}

fn is_json(content_type: &str) -> bool {
    content_type.starts_with("application/json") || content_type.starts_with("application/problem+json")
}

// ---------------------------------------------------------------------------
// 1. Requests
// ---------------------------------------------------------------------------

/// Characters of paths: mostly printable ASCII, many slashes and percent
/// signs, some unicode and controls (which `Uri` refuses).
fn path_char() -> impl Strategy<Value = char> {
    prop_oneof![
        12 => proptest::char::range('!', '~'),
        3 => Just('/'),
        3 => Just('%'),
        2 => select(vec!['a', 'z', '0', '9', '_', '-', '.', '?', '#', '&', '=']),
        1 => select(vec!['é', 'ü', '€', '中', '😀', ' ', '\t', '\n', '\u{0}', '\u{7f}', '\u{200b}']),
        1 => any::<char>(),
    ]
}

fn path_tail() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::collection::vec(path_char(), 0..40).prop_map(String::from_iter),
        1 => prop::collection::vec(path_char(), 200..4000).prop_map(String::from_iter),
        1 => (path_char(), 1000usize..70_000).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// A signed URL of the catalogue's offloaded payload, valid at [`NOW`].
fn signed_packet_path() -> String {
    let path = "/packets/run_demo_large_payload/payload.json";
    format!("{path}?{}", Presigner::new(SECRET.as_bytes()).query(path, NOW))
}

fn path_prefix() -> impl Strategy<Value = String> {
    select(vec![
        "",
        "/",
        "//",
        "*",
        "/api",
        "/api/",
        "/api/v3",
        "/api/v3/runs",
        "/api/v3/runs/",
        "/api/v3/runs/run_",
        "/api/v3/runs/run_completed",
        "/api/v3/runs/run_demo_root",
        "/api/v3/runs/run_demo_large_payload",
        "/api/v3/runs/run_completed/",
        "/api/v1/auth/jwt/claims",
        "/api/v1/auth/public-tokens",
        "/_mock",
        "/_mock/",
        "/_mock/health",
        "/_mock/clock",
        "/_mock/journal",
        "/_mock/scenarios",
        "/_mock/scenarios/",
        "/_mock/reset",
        "/packets/",
        "/packets/run_demo_large_payload/payload.json",
        "http://localhost:3033/api/v3/runs/",
        "https://user@example.test/",
    ])
    .prop_map(str::to_owned)
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => (path_prefix(), path_tail()).prop_map(|(p, t)| p + &t),
        1 => Just(signed_packet_path()),
        1 => path_tail().prop_map(|t| signed_packet_path() + &t),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "FOO", "get"])
        .prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap())
}

/// Raw header values, some of which `HeaderValue` refuses.
fn header_bytes(known: Vec<&'static str>) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        4 => select(known).prop_map(|v| Some(v.as_bytes().to_vec())),
        2 => "[ -~]{0,60}".prop_map(|s| Some(s.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..60).prop_map(Some),
    ]
}

fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    header_bytes(vec![
        "Bearer tr_dev_tests_0123456789",
        "Bearer tr_prod_abc",
        "Bearer tr_stg_abc",
        "Bearer tr_preview_abc",
        "Bearer pk_dev_abc",
        "Bearer pk_prod_abc",
        "bearer tr_dev_x",
        "Bearer ",
        "Bearer tr_dev_",
        "Basic dXNlcjpwYXNz",
        "Bearer  tr_dev_spaces  ",
        "",
    ])
}

fn api_version() -> impl Strategy<Value = Option<Vec<u8>>> {
    header_bytes(vec!["2025-07-16", "2025-07-17", "", "2025-07-16 "])
}

/// The statuses a request may get without scenario files. Packets answer as
/// S3 does, with XML, and have their own set.
const API_STATUSES: [u16; 7] = [200, 400, 401, 404, 405, 413, 422];
const PACKET_STATUSES: [u16; 6] = [200, 206, 403, 404, 405, 416];

#[derive(Debug, Clone)]
struct RawRequest {
    method: Method,
    path: String,
    authorization: Option<Vec<u8>>,
    version: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

/// The path with what `Uri` refuses percent-encoded.
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii_graphic() && !"\"<>\\^`{|}#".contains(c) {
            out.push(c);
        } else {
            for b in c.to_string().bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The request, or `None` when `http` refuses the URI (also once escaped)
/// or a header value (also without its control characters).
fn build(raw: &RawRequest) -> Option<Request<Empty<Bytes>>> {
    let uri = Uri::try_from(raw.path.as_str()).or_else(|_| Uri::try_from(escape_path(&raw.path))).ok()?;
    let mut req = Request::builder().method(raw.method.clone()).uri(uri);
    for (name, value) in
        [("authorization", &raw.authorization), ("x-trigger-api-version", &raw.version), ("host", &raw.host)]
    {
        if let Some(v) = value {
            let value = HeaderValue::from_bytes(v).or_else(|_| {
                let printable: Vec<u8> =
                    v.iter().copied().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)).collect();
                HeaderValue::from_bytes(&printable)
            });
            req = req.header(name, value.ok()?);
        }
    }
    req.body(Empty::new()).ok()
}

/// Checks an answer to any request.
fn check_answer(req: &Request<Empty<Bytes>>, answer: &Answer) -> Result<(), TestCaseError> {
    let path = req.uri().path();
    let packets = path.starts_with("/packets/");
    let known: &[u16] = if packets { &PACKET_STATUSES } else { &API_STATUSES };
    prop_assert!(known.contains(&answer.status), "status {} for {} {}", answer.status, req.method(), req.uri());
    if packets {
        prop_assert!(
            answer.content_type == "application/xml" || answer.status < 300,
            "a packet error is S3's XML, not {:?}",
            answer.content_type
        );
        return Ok(());
    }
    prop_assert!(is_json(&answer.content_type), "content type {:?} for {}", answer.content_type, req.uri());
    let value: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {:?}", answer.body)))?;
    if answer.status != 200 {
        prop_assert!(value["error"].is_string(), "no string `error` in a {}: {value}", answer.status);
    } else if let Some(id) = path.strip_prefix("/api/v3/runs/")
        && (req.method() == Method::GET || req.method() == Method::HEAD)
    {
        prop_assert_eq!(value["id"].as_str(), Some(id));
        let version = ApiVersion::from_header(req.headers().get(ApiVersion::HEADER).map(HeaderValue::as_bytes));
        assert_valid(&value, version);
    }
    Ok(())
}

#[test]
fn any_request_gets_a_known_status_and_a_json_error() {
    let rt = runtime();
    let raw =
        (method(), path(), authorization(), api_version(), header_bytes(vec!["localhost:3033", "[::1]:9"])).prop_map(
            |(method, path, authorization, version, host)| RawRequest { method, path, authorization, version, host },
        );
    check(1200, raw, |raw| {
        let Some(req) = build(&raw) else { return Ok(()) };
        let echo = build(&raw).unwrap();
        let answer = rt.block_on(send(req));
        let answer = answer.ok_or_else(|| TestCaseError::fail("no answer (reset or body error)"))?;
        check_answer(&echo, &answer)
    });
}

/// Host values: plain ones, ports at and past their limits, brackets, junk.
fn host_value() -> impl Strategy<Value = String> {
    let name = "[a-z0-9._-]{1,12}";
    prop_oneof![
        3 => (name, prop::option::of(0u32..70_000)).prop_map(|(n, p)| match p {
            Some(p) => format!("{n}:{p}"),
            None => n,
        }),
        1 => (name, "[0-9]{6,12}").prop_map(|(n, p)| format!("{n}:{p}")),
        1 => (select(vec!["::1", "fe80::1", "1.2.3.4", "nope", ""]), prop::option::of(0u32..70_000))
            .prop_map(|(ip, p)| format!("[{ip}]{}", p.map(|p| format!(":{p}")).unwrap_or_default())),
        1 => "[ -~]{0,20}",
    ]
}

/// The oracle for a Host: `name[:port]` or `[ipv6][:port]` with a port from 1 to 65535.
fn plain_host(text: &str) -> bool {
    let port_ok =
        |p: &str| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0);
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => (h, Some(p)),
        _ => (text, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) => ip.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
    };
    text.len() <= 255 && host_ok && port.is_none_or(port_ok)
}

/// Presigned URLs name the request's authority if plain, else its `Host` if
/// plain, else the address the connection reached: never a port past 65535,
/// never junk, never `localhost` without a port.
#[test]
fn presigned_urls_name_a_plain_host() {
    let rt = runtime();
    let reached: std::net::SocketAddr = "127.0.0.1:4321".parse().unwrap();
    check(400, (prop::option::of(host_value()), prop::option::of(host_value())), |(authority, host)| {
        let uri = match &authority {
            Some(a) => format!("http://{a}/api/v3/runs/run_demo_large_payload"),
            None => "/api/v3/runs/run_demo_large_payload".into(),
        };
        let Ok(uri) = uri.parse::<Uri>() else { return Ok(()) };
        if uri.path() != "/api/v3/runs/run_demo_large_payload" {
            return Ok(()); // the junk held a `/`, `?` or `#`
        }
        let authority = uri.authority().map(|a| a.as_str().to_owned());
        let mut req = Request::get(uri).header("authorization", format!("Bearer {DEV_KEY}"));
        if let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            req = req.header(header::HOST, h);
        }
        let mut req = req.body(Empty::<Bytes>::new()).unwrap();
        req.extensions_mut().insert(trigger_mock::app::Reached(reached));
        let answer = rt.block_on(send(req)).ok_or_else(|| TestCaseError::fail("no answer"))?;
        prop_assert_eq!(answer.status, 200);
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        let url = body["payloadPresignedUrl"].as_str().unwrap_or_default();
        let named = url.strip_prefix("http://").and_then(|r| r.split('/').next()).unwrap_or_default();
        let want = [authority.as_deref(), host.as_deref()]
            .into_iter()
            .flatten()
            .find(|h| plain_host(h))
            .map_or_else(|| reached.to_string(), str::to_owned);
        prop_assert_eq!(named, want.as_str(), "{}", url);
        Ok(())
    });
}

/// `GET /api/v3/runs/{id}` with a development key.
fn retrieve_status(rt: &tokio::runtime::Runtime, id: &str, current: bool) -> Result<Answer, TestCaseError> {
    let mut req = Request::get(format!("/api/v3/runs/{id}")).header("authorization", format!("Bearer {DEV_KEY}"));
    if current {
        req = req.header(ApiVersion::HEADER, "2025-07-16");
    }
    let req = req.body(Empty::new()).map_err(|e| TestCaseError::fail(format!("{id:?}: {e}")))?;
    rt.block_on(send(req)).ok_or_else(|| TestCaseError::fail("no answer"))
}

/// The independent statement of a well-formed id: `run_`, then 1 to 124
/// lower-case letters, digits and underscores.
fn well_formed(id: &str) -> bool {
    id.len() <= 128
        && id.strip_prefix("run_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[test]
fn well_formed_run_ids_are_found() {
    let rt = runtime();
    check(200, ("run_[a-z0-9_]{1,60}", any::<bool>()), |(id, current)| {
        let answer = retrieve_status(&rt, &id, current)?;
        prop_assert_eq!(answer.status, 200, "{}: {:?}", id, answer.body);
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(value["id"].as_str(), Some(id.as_str()));
        assert_valid(&value, if current { ApiVersion::V20250716 } else { ApiVersion::Unversioned });
        Ok(())
    });
}

/// Characters allowed in a path segment without escaping, and a few escapes.
const SEGMENT: &str = "([a-zA-Z0-9_.~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,40}";

#[test]
fn ids_without_the_run_prefix_are_bad_requests() {
    let rt = runtime();
    let id = SEGMENT.prop_filter("not run_", |id| !id.starts_with("run_"));
    check(200, (id, any::<bool>()), |(id, current)| {
        let answer = retrieve_status(&rt, &id, current)?;
        prop_assert_eq!(answer.status, 400, "{}: {:?}", id, answer.body);
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(value["error"].is_string());
        Ok(())
    });
}

#[test]
fn malformed_run_ids_are_not_found() {
    let rt = runtime();
    let id = prop_oneof![
        4 => SEGMENT.prop_map(|rest| format!("run_{rest}")),
        1 => "[a-z0-9_]{125,300}".prop_map(|rest| format!("run_{rest}")),
    ]
    .prop_filter("malformed", |id| !well_formed(id));
    check(200, (id, any::<bool>()), |(id, current)| {
        let answer = retrieve_status(&rt, &id, current)?;
        prop_assert_eq!(answer.status, 404, "{}: {:?}", id, answer.body);
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(value["error"].is_string());
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 1b. Bearer tokens
// ---------------------------------------------------------------------------

/// An app that knows the environment of [`DEV_KEY`] from start-up.
fn token_app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let mut config = Config { presign_secret: Some(SECRET.into()), ..Config::ephemeral(Clock::frozen(NOW)) };
        config.auth.secret_keys = vec![DEV_KEY.to_owned()];
        config.build_app().unwrap()
    })
}

/// A valid admin token of [`DEV_KEY`]'s environment.
fn valid_token() -> String {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(environment_id(DEV_KEY)));
    claims.insert("pub".into(), Value::Bool(true));
    claims.insert("scopes".into(), Value::from(vec!["admin"]));
    jwt::mint(&claims, DEV_KEY, jwt::epoch_seconds(NOW) + 900, NOW)
}

fn b64(text: &str) -> String {
    base64url::encode(text.as_bytes())
}

/// Bearer strings no one signed with the key: random bytes, JWT-shaped text,
/// the valid token truncated, altered, spliced or re-signed with another key,
/// `alg: none`, and huge headers and payloads.
fn hostile_bearer() -> impl Strategy<Value = Vec<u8>> {
    let token = valid_token();
    let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let (t1, t2, t3, t4) = (token.clone(), token.clone(), token.clone(), token.clone());
    let (p1, p2, p3) = (parts.clone(), parts.clone(), parts);
    let payload = format!(
        r#"{{"sub":"{}","pub":true,"scopes":["admin"],"iss":"https://id.trigger.dev","aud":"https://api.trigger.dev","exp":{}}}"#,
        environment_id(DEV_KEY),
        jwt::epoch_seconds(NOW) + 900
    );
    let (pl1, pl2, pl3) = (payload.clone(), payload.clone(), payload);
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..300),
        2 => "[A-Za-z0-9_=+/.-]{0,400}".prop_map(String::into_bytes),
        3 => (0..t1.len()).prop_map(move |n| t1.as_bytes()[..n].to_vec()),
        4 => (0..t2.len(), any::<u8>()).prop_map(move |(i, b)| {
            let mut bytes = t2.clone().into_bytes();
            bytes[i] = b;
            bytes
        }),
        2 => (0..=t3.len(), any::<u8>()).prop_map(move |(i, b)| {
            let mut bytes = t3.clone().into_bytes();
            bytes.insert(i, b);
            bytes
        }),
        2 => (0..t4.len()).prop_map(move |i| {
            let mut bytes = t4.clone().into_bytes();
            bytes.remove(i);
            bytes
        }),
        2 => (select(vec![0usize, 1, 2]), select(vec![0usize, 1, 2]), select(vec![0usize, 1, 2]))
            .prop_map(move |(a, b, c)| format!("{}.{}.{}", p1[a], p1[b], p1[c]).into_bytes()),
        2 => select(vec![r#"{"alg":"none"}"#, r#"{"alg":"None"}"#, r#"{"alg":"HS256","crit":["b64"]}"#, r#"{"alg":"RS256"}"#, "{}", "[]", "null"])
            .prop_flat_map(move |h| {
                let (payload, sig) = (b64(&pl1), p2[2].clone());
                select(vec![String::new(), sig, "AAAA".into()]).prop_map(move |s| format!("{}.{payload}.{s}", b64(h)).into_bytes())
            }),
        2 => "[a-z]{1,12}".prop_map(move |key| {
            // The right claims, signed with a key that is not the environment's.
            let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&pl2) else { return Vec::new() };
            jwt::sign(Algorithm::Hs256, &claims, format!("tr_dev_{key}").as_bytes()).into_bytes()
        }),
        1 => (1usize..48_000, 1usize..3).prop_map(move |(n, which)| {
            let big = "x".repeat(n);
            let header = if which == 1 { format!(r#"{{"alg":"HS256","pad":"{big}"}}"#) } else { r#"{"alg":"HS256"}"#.into() };
            let payload = if which == 2 { pl3.replace("\"pub\"", &format!("\"pad\":\"{big}\",\"pub\"")) } else { pl3.clone() };
            format!("{}.{}.{}", b64(&header), b64(&payload), p3[2]).into_bytes()
        }),
        1 => (1usize..2000).prop_map(|depth| {
            let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            format!("{}.{}.AAAA", b64(r#"{"alg":"HS256"}"#), b64(&format!(r#"{{"pub":true,"sub":{nested}}}"#))).into_bytes()
        }),
    ]
}

#[test]
fn hostile_bearer_tokens_never_panic_and_never_authenticate() {
    let rt = runtime();
    let valid = valid_token();
    let send_bearer = |path: &str, method: &str, bearer: &[u8]| -> Result<Option<Answer>, TestCaseError> {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(bearer);
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(None) };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", value)
            .body(Empty::<Bytes>::new())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(send_to(token_app(), req)).map(Some).ok_or_else(|| TestCaseError::fail("no answer"))
    };
    // The property can fail: the valid token does authenticate.
    let ok = send_bearer("/api/v3/runs/run_completed", "GET", valid.as_bytes()).ok().flatten().map(|a| a.status);
    assert_eq!(ok, Some(200));
    check(1500, hostile_bearer(), |bearer| {
        if bearer == valid.as_bytes() || String::from_utf8_lossy(&bearer).trim() == valid {
            return Ok(());
        }
        for (method, path) in [
            ("GET", "/api/v3/runs/run_completed"),
            ("POST", "/api/v1/auth/jwt/claims"),
            ("POST", "/api/v1/auth/public-tokens"),
        ] {
            let Some(answer) = send_bearer(path, method, &bearer)? else { return Ok(()) };
            prop_assert_eq!(answer.status, 401, "{} {}: {:?}", method, path, answer.body);
            let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(value["error"].is_string());
        }
        Ok(())
    });
}

/// A change of the mock clock, as `POST /_mock/clock` takes it: extreme
/// instants, huge durations and offsets included.
fn clock_change() -> impl Strategy<Value = Value> {
    let set = prop_oneof![
        select(vec![
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "1969-12-31T23:59:59Z",
            "2026-01-01T00:10:00Z",
            "2026-01-01T00:00:00+23:59",
            "2026-13-01T00:00:00Z",
            "not a date",
        ])
        .prop_map(str::to_owned),
        concat!(
            "[0-9]{4}-(0[1-9]|1[0-2])-[0-2][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]",
            "(\\.[0-9]{1,6})?(Z|[+-][0-2][0-9]:[0-5][0-9])"
        ),
    ];
    let advance = prop_oneof![
        select(vec!["10m", "1h30m", "0s", "2562048w", "15250000000000000s", "99999999999999999999s", "1y"])
            .prop_map(str::to_owned),
        "[0-9]{1,17}[wdhms]",
    ];
    let advance_ms = prop_oneof![
        -100_000_000i64..100_000_000,
        any::<i64>(),
        select(vec![i64::MAX, i64::MIN, 3_155_760_000_000, -3_155_760_000_000]),
    ];
    (prop::option::of(set), prop::option::of(advance), prop::option::of(advance_ms), prop::option::of(any::<bool>()))
        .prop_map(|(set, advance, advance_ms, freeze)| {
            let mut change = Map::new();
            for (k, v) in [
                ("set", set.map(Value::from)),
                ("advance", advance.map(Value::from)),
                ("advanceMs", advance_ms.map(Value::from)),
                ("freeze", freeze.map(Value::from)),
            ] {
                if let Some(v) = v {
                    change.insert(k.into(), v);
                }
            }
            Value::Object(change)
        })
}

/// One request of a session with the admin API and the runs API.
#[derive(Debug, Clone)]
enum Step {
    Clock(Value),
    Retrieve { id: &'static str, key: usize, current: bool },
    Reset,
}

/// Runs with lifecycles and TTLs, a rate limit that refills by a lot, and
/// runs from the catalogue and the convention.
const SESSION_RUNS: &[&str] = &[
    "run_poll_ok",
    "run_poll_fail",
    "run_delayed_start",
    "run_ttl",
    "run_every_delayed",
    "run_every_pending",
    "run_every_executing",
    "run_every_expired",
    "run_every_completed_successfully",
    "run_demo_child",
    "run_demo_large_payload",
    "run_executing",
];

fn session_app() -> App {
    let limit = r#"{"version": 1, "rateLimit": {"limit": 3, "refill": 4294967295, "interval": "1s"}}"#;
    Config {
        presign_secret: Some(SECRET.into()),
        scenarios: ["poll-to-completion", "poll-to-failure", "delayed-to-queued", "expired-ttl", "every-status"]
            .map(|n| format!("builtin:{n}"))
            .to_vec(),
        inline_scenarios: vec![Source { name: "limit.json".into(), text: limit.into(), path: None }],
        ..Config::ephemeral(Clock::frozen(NOW))
    }
    .build_app()
    .unwrap()
}

/// Plays one session on a fresh app: every answer is JSON with a known status,
/// and every run it shows matches the schema, wherever the clock has been
/// (it stays a year inside what RFC 3339 can write).
fn session(rt: &tokio::runtime::Runtime, steps: &[Step]) -> Result<(), TestCaseError> {
    let app = session_app();
    for step in steps {
        let req = match step {
            Step::Clock(change) => {
                Request::post("/_mock/clock").body(http_body_util::Full::new(Bytes::from(change.to_string())))
            }
            Step::Retrieve { id, key, current } => {
                let mut req =
                    Request::get(format!("/api/v3/runs/{id}")).header("authorization", format!("Bearer tr_dev_{key}"));
                if *current {
                    req = req.header(ApiVersion::HEADER, "2025-07-16");
                }
                req.body(http_body_util::Full::new(Bytes::new()))
            }
            Step::Reset => Request::post("/_mock/reset").body(http_body_util::Full::new(Bytes::new())),
        }
        .unwrap();
        let version = ApiVersion::from_header(req.headers().get(ApiVersion::HEADER).map(HeaderValue::as_bytes));
        let answer = rt.block_on(send_to(&app, req)).ok_or_else(|| TestCaseError::fail("no answer"))?;
        prop_assert!([200, 400, 429].contains(&answer.status), "{} after {step:?}: {:?}", answer.status, answer.body);
        prop_assert!(is_json(&answer.content_type));
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if answer.status != 200 {
            prop_assert!(value["error"].is_string(), "{value}");
        } else if matches!(step, Step::Retrieve { .. }) {
            assert_valid(&value, version);
        }
    }
    Ok(())
}

#[test]
fn clock_changes_and_retrieves_never_panic() {
    let rt = runtime();
    let step = prop_oneof![
        3 => clock_change().prop_map(Step::Clock),
        5 => (select(SESSION_RUNS.to_vec()), 0usize..3, any::<bool>())
            .prop_map(|(id, key, current)| Step::Retrieve { id, key, current }),
        1 => Just(Step::Reset),
    ];
    check(120, prop::collection::vec(step, 1..12), |steps| session(&rt, &steps));
}

/// The sessions the property above shrank its failures to, played on every
/// run so that they do not depend on the random cases.
#[test]
fn shrunk_clock_sessions_never_panic() {
    let rt = runtime();
    let clock = |change: Value| Step::Clock(change);
    let get = Step::Retrieve { id: "run_poll_ok", key: 2, current: false };
    let executing = Step::Retrieve { id: "run_every_executing", key: 0, current: true };
    let sessions = [
        vec![clock(serde_json::json!({"advance": "15250000000000000s"}))],
        vec![get.clone(), clock(serde_json::json!({"set": "2100-01-01T00:00:00Z"})), get.clone()],
        vec![
            clock(serde_json::json!({"set": "2026-01-01T00:00:00+23:59", "advanceMs": i64::MAX})),
            clock(serde_json::json!({"freeze": false})),
        ],
        vec![clock(serde_json::json!({"set": "0000-01-01T00:00:00Z", "advanceMs": i64::MIN})), get],
        vec![
            clock(serde_json::json!({"advanceMs": i64::MIN + 62_000_000_000_000})),
            executing.clone(),
            clock(serde_json::json!({"advanceMs": i64::MAX})),
            executing,
        ],
    ];
    let mut failures = Vec::new();
    for steps in sessions {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session(&rt, &steps))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{steps:?}: {e}")),
            Err(_) => failures.push(format!("{steps:?}: panicked (message above)")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// 2. Scenario files
// ---------------------------------------------------------------------------

/// Keys a scenario file knows, at any level, so that arbitrary values reach
/// deeper checks than "unknown key".
const KNOWN_KEYS: &[&str] = &[
    "$schema",
    "version",
    "description",
    "runs",
    "faults",
    "rateLimit",
    "id",
    "status",
    "taskIdentifier",
    "idempotencyKey",
    "isTest",
    "ttl",
    "tags",
    "metadata",
    "payload",
    "output",
    "error",
    "schedule",
    "batchId",
    "region",
    "parent",
    "triggerFunction",
    "attemptCount",
    "costInCents",
    "baseCostInCents",
    "durationMs",
    "lifecycle",
    "retrieves",
    "for",
    "payloadPacket",
    "outputPacket",
    "type",
    "data",
    "size",
    "file",
    "offload",
    "url",
    "runId",
    "route",
    "nth",
    "after",
    "times",
    "probability",
    "delayMs",
    "action",
    "body",
    "text",
    "headers",
    "shouldRetry",
    "limit",
    "remaining",
    "resetMs",
    "chunkBytes",
    "intervalMs",
    "refill",
    "interval",
    "name",
    "message",
    "stackTrace",
];

/// Strings that mean something somewhere in a scenario file.
const KNOWN_STRINGS: &[&str] = &[
    "",
    "run_",
    "run_a",
    "run_b",
    "run_demo_root",
    "run_demo_parent",
    "run_demo_child",
    "run_demo_completed",
    "run_completed",
    "run-A",
    "run_*",
    "*",
    "?",
    "10s",
    "0s",
    "1h30m",
    "-1s",
    "99999999999999999999h",
    "10",
    "retrieve",
    "any",
    "status",
    "notFound",
    "rateLimit",
    "serverError",
    "reset",
    "closeMidBody",
    "truncate",
    "malformed",
    "breakSchema",
    "dribble",
    "application/json",
    "application/super+json",
    "text/plain",
    "auto",
    "always",
    "never",
    "valid",
    "expired",
    "truncated",
    "5MiB",
    "1KiB",
    "64GiB",
    "65GiB",
    "../x",
    "/etc/passwd",
    "TRIGGER",
    "TRIGGER_AND_WAIT",
    "BATCH_TRIGGER",
    "BATCH_TRIGGER_AND_WAIT",
    "é\u{0}\n\"",
];

fn status_names() -> Vec<&'static str> {
    EngineStatus::ALL.iter().map(|s| s.name()).chain(["DONE", "completed", "QUEUED", ""]).collect()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..700).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        select(vec![0.5f64, -0.0, 1e308, -1.5, 4_294_967_296.0, 1e-9]).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        select(KNOWN_STRINGS.to_vec()).prop_map(Value::from),
        select(status_names()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => select(KNOWN_KEYS.to_vec()).prop_map(str::to_owned), 1 => "\\PC{0,10}"]
}

/// Any JSON value, biased towards the scenario format's keys and strings.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A JSON document as text: compact, pretty, or with CRLF line ends.
fn render_text(value: &Value, style: u8) -> String {
    match style % 3 {
        0 => serde_json::to_string(value).unwrap(),
        1 => serde_json::to_string_pretty(value).unwrap(),
        _ => serde_json::to_string_pretty(value).unwrap().replace('\n', "\r\n"),
    }
}

/// A change to a JSON document; each picks its target by `at` among the
/// nodes it applies to.
#[derive(Debug, Clone)]
enum Mutation {
    DropKey { at: usize },
    ChangeType { at: usize, to: Value },
    InsertUnknownKey { at: usize, key: String, value: Value },
    InsertKnownKey { at: usize, key: &'static str, value: Value },
    ReplaceStatus { at: usize, to: &'static str },
    ReplaceString { at: usize, to: &'static str },
    ReplaceNumber { at: usize, to: Value },
    DuplicateElement { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        2 => at.prop_map(|at| Mutation::DropKey { at }),
        2 => (at, leaf()).prop_map(|(at, to)| Mutation::ChangeType { at, to }),
        1 => (at, "[a-zA-Z$_]{1,12}", leaf())
            .prop_map(|(at, key, value)| Mutation::InsertUnknownKey { at, key, value }),
        2 => (at, select(KNOWN_KEYS.to_vec()), json_value())
            .prop_map(|(at, key, value)| Mutation::InsertKnownKey { at, key, value }),
        2 => (at, select(status_names())).prop_map(|(at, to)| Mutation::ReplaceStatus { at, to }),
        2 => (at, select(KNOWN_STRINGS.to_vec())).prop_map(|(at, to)| Mutation::ReplaceString { at, to }),
        1 => (at, select(vec![
            Value::from(0),
            Value::from(-1),
            Value::from(1),
            Value::from(2),
            Value::from(u64::from(u32::MAX) + 1),
            Value::from(u64::MAX),
            Value::from(0.5),
            Value::from(1e300),
        ]))
        .prop_map(|(at, to)| Mutation::ReplaceNumber { at, to }),
        1 => at.prop_map(|at| Mutation::DuplicateElement { at }),
    ]
}

/// JSON pointers of every node of `value` for which `want` holds.
fn nodes(value: &Value, want: &dyn Fn(Option<&str>, &Value) -> bool) -> Vec<String> {
    fn walk(
        v: &Value,
        key: Option<&str>,
        here: String,
        want: &dyn Fn(Option<&str>, &Value) -> bool,
        out: &mut Vec<String>,
    ) {
        if want(key, v) {
            out.push(here.clone());
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    walk(child, Some(k), format!("{here}/{escaped}"), want, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, None, format!("{here}/{i}"), want, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, None, String::new(), want, &mut out);
    out
}

/// The node `at` (modulo their number) among those for which `want` holds.
fn pick<'v>(
    value: &'v mut Value,
    at: usize,
    want: &dyn Fn(Option<&str>, &Value) -> bool,
) -> Option<(String, &'v mut Value)> {
    let all = nodes(value, want);
    let pointer = all.get(at % all.len().max(1))?.clone();
    let node = value.pointer_mut(&pointer)?;
    Some((pointer, node))
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn apply(doc: &mut Value, m: &Mutation) {
    match m {
        Mutation::DropKey { at } => {
            if let Some((_, Value::Object(map))) = pick(doc, *at, &|_, v| v.as_object().is_some_and(|m| !m.is_empty()))
            {
                let keys: Vec<String> = map.keys().cloned().collect();
                map.shift_remove(&keys[*at % keys.len()]);
            }
        }
        Mutation::ChangeType { at, to } => {
            if let Some((pointer, node)) = pick(doc, *at, &|_, _| true)
                && !pointer.is_empty()
            {
                *node = if same_type(node, to) { Value::Array(vec![to.clone()]) } else { to.clone() };
            }
        }
        Mutation::InsertUnknownKey { at, key, value } => {
            if let Some((_, Value::Object(map))) = pick(doc, *at, &|_, v| v.is_object()) {
                map.insert(format!("x{key}"), value.clone());
            }
        }
        Mutation::InsertKnownKey { at, key, value } => {
            if let Some((_, Value::Object(map))) = pick(doc, *at, &|_, v| v.is_object()) {
                map.insert((*key).to_owned(), value.clone());
            }
        }
        Mutation::ReplaceStatus { at, to } => {
            if let Some((_, node)) = pick(doc, *at, &|k, v| k == Some("status") && v.is_string()) {
                *node = Value::from(*to);
            }
        }
        Mutation::ReplaceString { at, to } => {
            if let Some((_, node)) = pick(doc, *at, &|_, v| v.is_string()) {
                *node = Value::from(*to);
            }
        }
        Mutation::ReplaceNumber { at, to } => {
            if let Some((_, node)) = pick(doc, *at, &|_, v| v.is_number()) {
                *node = to.clone();
            }
        }
        Mutation::DuplicateElement { at } => {
            if let Some((_, Value::Array(items))) = pick(doc, *at, &|_, v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                let i = *at % items.len();
                let copy = items[i].clone();
                items.insert(i, copy);
            }
        }
    }
}

/// Valid files beyond the built-ins: packets, relations, every step kind.
const EXTRA_BASES: &[&str] = &[
    r#"{"version": 1, "runs": [
        {"id": "run_p", "status": "COMPLETED_SUCCESSFULLY",
         "payloadPacket": {"type": "text/plain", "data": "hello"},
         "outputPacket": {"size": 2048, "offload": "always", "url": "expired"}},
        {"id": "run_q", "payloadPacket": {"type": "application/super+json", "data": {"json": {"a": 1}, "meta": {}}}}
    ]}"#,
    r#"{"version": 1, "runs": [
        {"id": "run_a", "status": "WAITING_TO_RESUME"},
        {"id": "run_b", "parent": "run_a", "status": "EXECUTING", "triggerFunction": "TRIGGER_AND_WAIT"},
        {"id": "run_c", "parent": "run_b", "ttl": "10m", "status": "PENDING"},
        {"id": "run_demo_completed", "status": "CANCELED", "tags": ["b", "a"], "metadata": {"k": 1}}
    ]}"#,
    r#"{"version": 1, "runs": [
        {"id": "run_l", "ttl": "1m", "lifecycle": [
            {"status": "DELAYED", "for": "30s"},
            {"status": "PENDING", "retrieves": 2},
            {"status": "EXPIRED"}]}
    ], "faults": [
        {"runId": "run_l*", "nth": 2, "probability": 0.5, "delayMs": 5},
        {"route": "any", "after": 1, "times": 3,
         "action": {"type": "status", "status": 418, "text": "x", "headers": {"x-a": "b"}}},
        {"action": {"type": "rateLimit", "limit": 1, "remaining": 0, "resetMs": 10}},
        {"action": {"type": "dribble", "chunkBytes": 1, "intervalMs": 1}}
    ], "rateLimit": {"limit": 1, "refill": 1, "interval": "1s"}}"#,
];

fn base_texts() -> Vec<&'static str> {
    let builtins = scenario::builtin_names().into_iter().map(|name| scenario::builtin(name).unwrap());
    builtins.chain(EXTRA_BASES.iter().copied()).collect()
}

/// A built-in or extra scenario with a few mutations, as text.
fn near_valid() -> impl Strategy<Value = String> {
    (select(base_texts()), prop::collection::vec(mutation(), 1..4), any::<u8>()).prop_map(|(base, ms, style)| {
        let mut doc: Value = serde_json::from_str(base).unwrap();
        for m in &ms {
            apply(&mut doc, m);
        }
        render_text(&doc, style)
    })
}

/// A text edit that keeps the text almost JSON.
fn text_edit() -> impl Strategy<Value = String> {
    (
        select(base_texts()),
        any::<usize>(),
        0usize..6,
        select(vec!["", "\"", "{", "}", "[", ",", ":", "\\", "\n", "é", "0"]),
    )
        .prop_map(|(base, at, len, insert)| {
            let chars: Vec<char> = base.chars().collect();
            let at = at % (chars.len() + 1);
            let end = (at + len).min(chars.len());
            chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(&chars[end..]).collect()
        })
}

/// Runs related to each other and to the catalogue's family
/// (`run_demo_root` ← `run_demo_parent` ← `run_demo_child`).
fn relations() -> impl Strategy<Value = String> {
    let ids =
        vec!["run_a", "run_b", "run_c", "run_demo_root", "run_demo_parent", "run_demo_child", "run_demo_completed"];
    let run = (
        select(ids.clone()),
        prop::option::of(select(ids)),
        prop::option::of(select(EngineStatus::ALL.iter().map(|s| s.name()).collect::<Vec<_>>())),
        prop::option::of(select(vec!["TRIGGER", "TRIGGER_AND_WAIT", "BATCH_TRIGGER", "BATCH_TRIGGER_AND_WAIT"])),
    )
        .prop_map(|(id, parent, status, function)| {
            let mut run = Map::new();
            run.insert("id".into(), id.into());
            if let Some(p) = parent {
                run.insert("parent".into(), p.into());
            }
            if let Some(s) = status {
                run.insert("status".into(), s.into());
            }
            if let Some(f) = function {
                run.insert("triggerFunction".into(), f.into());
            }
            Value::Object(run)
        });
    (prop::collection::vec(run, 1..5), any::<u8>())
        .prop_map(|(runs, style)| render_text(&serde_json::json!({"version": 1, "runs": runs}), style))
}

/// Any text a scenario file might hold.
fn scenario_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => "\\PC{0,40}",
        2 => (json_value(), any::<u8>()).prop_map(|(v, style)| render_text(&v, style)),
        2 => (prop::collection::vec((key(), json_value()), 0..6), any::<u8>()).prop_map(|(kv, style)| {
            let mut doc: Map<String, Value> = kv.into_iter().collect();
            doc.insert("version".into(), Value::from(1));
            render_text(&Value::Object(doc), style)
        }),
        6 => near_valid(),
        2 => text_edit(),
        2 => relations(),
    ]
}

fn settings(seed: u64) -> Settings {
    Settings { seed, anchor: NOW, generate: true, rate_limit: false, offload_threshold: DEFAULT_OFFLOAD_THRESHOLD }
}

/// Every problem names one of the files, at a line and column inside it.
fn check_diagnostics(sources: &[Source], problems: &[Diagnostic], stage: &str) -> Result<(), TestCaseError> {
    prop_assert!(!problems.is_empty(), "{stage}: an error without a problem");
    for d in problems {
        let Some(source) = sources.iter().find(|s| s.name == d.file) else {
            return Err(TestCaseError::fail(format!("{stage}: {d} names no given file")));
        };
        let lines = source.text.matches('\n').count() + 1;
        prop_assert!(d.line >= 1 && d.line <= lines, "{stage}: line {} of {} in {d}", d.line, lines);
        prop_assert!(d.column >= 1, "{stage}: column {} in {d}", d.column);
        prop_assert!(!d.message.trim().is_empty(), "{stage}: no message in {d:?}");
    }
    Ok(())
}

fn check_sources(sources: &[Source], seed: u64) -> Result<(), TestCaseError> {
    if let Err(problems) = scenario::compile(sources) {
        check_diagnostics(sources, &problems, "compile")?;
    }
    if let Err(problems) = World::build(&settings(seed), sources) {
        check_diagnostics(sources, &problems, "World::build")?;
    }
    Ok(())
}

#[test]
fn any_scenario_text_compiles_or_points_at_its_problems() {
    check(1200, (scenario_text(), any::<u64>()), |(text, seed)| {
        check_sources(&[Source { name: "fuzz.json".into(), text, path: None }], seed)
    });
}

#[test]
fn problems_of_several_files_name_the_right_file() {
    let files = prop::collection::vec(scenario_text(), 1..4);
    check(250, (files, any::<u64>()), |(texts, seed)| {
        let names = ["a.json", "dir/b.json", "builtin:c"];
        let sources: Vec<Source> =
            texts.into_iter().zip(names).map(|(text, name)| Source { name: name.into(), text, path: None }).collect();
        check_sources(&sources, seed)
    });
}

/// Bytes a PUT body might hold: anything, or a scenario with a few bytes
/// replaced (often invalid UTF-8).
fn scenario_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        3 => (near_valid(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)).prop_map(
            |(text, edits)| {
                let mut bytes = text.into_bytes();
                for (at, byte) in edits {
                    if !bytes.is_empty() {
                        let i = at.index(bytes.len());
                        bytes[i] = byte;
                    }
                }
                bytes
            }
        ),
    ]
}

#[test]
fn a_put_gives_the_verdict_the_command_line_gives_for_the_same_bytes() {
    let rt = runtime();
    check(150, scenario_bytes(), |bytes| {
        let app = Config { presign_secret: Some(SECRET.into()), ..Config::ephemeral(Clock::frozen(NOW)) }
            .build_app()
            .unwrap();
        let expected = match Source::from_bytes("put.json".into(), bytes.clone(), None) {
            Err(problem) => Err(vec![problem.to_string()]),
            Ok(source) => World::build(&settings(0), &[source])
                .map(drop)
                .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>()),
        };
        let req =
            Request::put("/_mock/scenarios/put.json").body(http_body_util::Full::new(Bytes::from(bytes))).unwrap();
        let answer = rt.block_on(send_to(&app, req)).unwrap();
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        match expected {
            Ok(()) => prop_assert_eq!(answer.status, 200, "{}", body),
            Err(lines) => {
                prop_assert_eq!(answer.status, 422, "{}", body);
                prop_assert_eq!(&body["problems"], &serde_json::json!(lines));
            }
        }
        Ok(())
    });
}

/// The files the properties above shrank their failures to, checked on every
/// run so that they do not depend on the random cases.
#[test]
fn shrunk_scenario_inputs_point_at_their_problems() {
    let mut failures = Vec::new();
    for text in [
        "",
        "{\n",
        "{\"version\": 1,\n\"\ndescription\": \"x\"}\n",
        r#"{"version":1,"runs":[{"id":"run_demo_root","parent":"run_demo_root"}]}"#,
        r#"{"version":1,"runs":[{"id":"run_demo_root","parent":"run_demo_child"}]}"#,
    ] {
        let sources = [Source { name: "shrunk.json".into(), text: text.into(), path: None }];
        if let Err(e) = check_sources(&sources, 0) {
            failures.push(format!("{text:?}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// 3. Rendering
// ---------------------------------------------------------------------------

/// Every combination a key can ask for: dev (zero costs), prod, public dev,
/// public prod; in both API versions.
fn all_options() -> impl Iterator<Item = RenderOptions> {
    ApiVersion::ALL.into_iter().flat_map(|version| {
        [(true, false), (false, false), (true, true), (false, true)].map(|(zero_costs, hide_packets)| RenderOptions {
            version,
            zero_costs,
            hide_packets,
        })
    })
}

/// The convention ids: every engine status and alias, alone and with a tail.
fn run_id() -> impl Strategy<Value = String> {
    let keywords: Vec<String> = convention::keywords().iter().map(|(k, _)| k.clone()).collect();
    prop_oneof![
        2 => "run_[a-z0-9]{1,30}",
        2 => select(keywords.clone()).prop_map(|k| format!("run_{k}")),
        1 => (select(keywords), "[a-z0-9]{1,8}").prop_map(|(k, tail)| format!("run_{k}_{tail}")),
    ]
}

/// "Now" for a generated run: the test clock, or any instant from 2001 to 2100.
fn anchor() -> impl Strategy<Value = Millis> {
    prop_oneof![Just(NOW), (978_307_200_000i64..4_102_444_800_000).prop_map(Millis)]
}

/// Renders `run` as the app would, with presigned URLs for offloaded packets.
fn render<'a>(run: &'a Run, opts: RenderOptions, related: impl Fn(&str) -> Option<&'a Run>, now: Millis) -> Value {
    let presigner = Presigner::new(SECRET.as_bytes());
    let url = |which: &str, offloaded: bool| {
        offloaded.then(|| {
            let path = format!("/packets/{}/{which}.json", run.id);
            format!("http://localhost:3033{path}?{}", presigner.query(&path, now))
        })
    };
    let payload = url("payload", run.payload_packet.is_some());
    let output = url("output", run.output_packet.is_some());
    let urls = PacketUrls { payload: payload.as_deref(), output: output.as_deref() };
    let bytes = render_json(run, opts, |id: &str| related(id).map(|r| r as &Run), urls);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn generated_runs_match_the_schemas_for_every_key_and_version() {
    let threshold = prop_oneof![Just(DEFAULT_OFFLOAD_THRESHOLD), 0u64..4096];
    check(400, (any::<u64>(), run_id(), anchor(), threshold), |(seed, id, anchor, threshold)| {
        let mut run = generate(seed, &id, convention::status_of(&id), anchor, None);
        trigger_mock::catalogue::offload_generated(&mut run, threshold, [false, false]);
        prop_assert_eq!(&run.id, &id);
        for opts in all_options() {
            let body = render(&run, opts, |_| None, anchor);
            assert_valid(&body, opts.version);
            if opts.hide_packets {
                for field in ["payload", "output", "payloadPresignedUrl", "outputPresignedUrl"] {
                    prop_assert!(body.get(field).is_none(), "{} shown to a public key", field);
                }
            }
            if opts.zero_costs {
                prop_assert_eq!(&body["costInCents"], &Value::from(0));
                prop_assert_eq!(&body["baseCostInCents"], &Value::from(0));
            }
        }
        Ok(())
    });
}

#[test]
fn every_status_renders_valid_for_many_seeds() {
    let statuses: Vec<(String, EngineStatus)> =
        EngineStatus::ALL.iter().map(|s| (format!("run_{}", s.name().to_ascii_lowercase()), *s)).collect();
    check(40, (any::<u64>(), anchor()), |(seed, anchor)| {
        for (id, status) in &statuses {
            prop_assert_eq!(convention::status_of(id), Some(*status));
            let run = generate(seed, id, Some(*status), anchor, None);
            prop_assert_eq!(run.status, *status);
            for opts in all_options() {
                assert_valid(&render(&run, opts, |_| None, anchor), opts.version);
            }
        }
        Ok(())
    });
}

#[test]
fn catalogue_runs_with_their_relations_match_the_schemas() {
    check(12, (any::<u64>(), anchor()), |(seed, anchor)| {
        let world = World::build(&Settings { anchor, ..settings(seed) }, &[])
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        for entry in world.store.entries() {
            let run = world.store.related(&entry.id).unwrap();
            for opts in all_options() {
                assert_valid(&render(run, opts, |id| world.store.related(id), anchor), opts.version);
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 5. The run flow: trigger bodies and list queries
// ---------------------------------------------------------------------------

/// Option names of a trigger body, known and not.
const TRIGGER_OPTIONS: &[&str] = &[
    "payloadType",
    "payloadSize",
    "tags",
    "ttl",
    "delay",
    "machine",
    "maxAttempts",
    "maxDuration",
    "metadata",
    "queue",
    "concurrencyKey",
    "idempotencyKey",
    "idempotencyKeyTTL",
    "idempotencyKeyOptions",
    "lockToVersion",
    "priority",
    "region",
    "test",
    "concurrency",
    "debounce",
    "externalDeploymentId",
    "unknownOption",
];

/// Values that are right for some options and wrong for others.
fn option_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => leaf(),
        1 => select(vec!["application/json", "application/super+json", "text/plain", "application/store", "1h", "2h30m", "banana", "small-2x", "huge", "2026-01-01T01:00:00.000Z", "1999-01-01T00:00:00Z"]).prop_map(Value::from),
        1 => prop::collection::vec(leaf(), 0..14).prop_map(Value::Array),
        1 => (leaf(), select(vec!["run", "attempt", "global", "nope"])).prop_map(|(k, s)| serde_json::json!({"key": k, "scope": s})),
        1 => leaf().prop_map(|n| serde_json::json!({"name": n})),
        1 => (1usize..140).prop_map(|n| Value::String("t".repeat(n))),
    ]
}

fn trigger_body() -> impl Strategy<Value = Value> {
    let options = prop::collection::vec((select(TRIGGER_OPTIONS.to_vec()), option_value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![
        6 => (option_value(), options).prop_map(|(payload, options)| serde_json::json!({"payload": payload, "options": options})),
        1 => json_value(),
        1 => options_only(),
    ]
}

fn options_only() -> impl Strategy<Value = Value> {
    option_value().prop_map(|o| serde_json::json!({"options": o}))
}

/// What a trigger may answer, by status: 200 `{id, isCached}`, or `{"error"}`.
const TRIGGER_STATUSES: [u16; 4] = [200, 400, 413, 422];

#[test]
fn arbitrary_trigger_bodies_get_a_documented_answer() {
    let rt = runtime();
    let raw_text = prop_oneof![
        8 => trigger_body().prop_map(|v| v.to_string()),
        1 => "\\PC{0,40}",
        1 => Just(String::new()),
    ];
    check(500, (raw_text, select(vec!["t", "my%2Ftask%20id", "%", "a"])), |(body, task)| {
        let length = body.len().to_string();
        let req = Request::post(format!("/api/v1/tasks/{task}/trigger"))
            .header("authorization", format!("Bearer {DEV_KEY}"))
            .header("content-type", "application/json")
            .header("content-length", length)
            .body(http_body_util::Full::new(Bytes::from(body.clone())))
            .unwrap();
        let answer = rt.block_on(send_to(app(), req)).ok_or_else(|| TestCaseError::fail("no answer"))?;
        prop_assert!(TRIGGER_STATUSES.contains(&answer.status), "status {} for {body}", answer.status);
        prop_assert!(is_json(&answer.content_type));
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if answer.status == 200 {
            let keys: Vec<&String> = value.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            prop_assert_eq!(keys, vec!["id", "isCached"]);
            let id = value["id"].as_str().unwrap_or("");
            let run = rt.block_on(retrieve_status_current(id))?;
            prop_assert_eq!(run.status, 200, "a created run is retrievable: {}", id);
            let run: Value = serde_json::from_slice(&run.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            assert_valid(&run, ApiVersion::V20250716);
        } else {
            let message = value["error"].as_str().unwrap_or("");
            let documented = match answer.status {
                400 => ["Request body is empty", "Invalid JSON", "Validation error: ", "Params Error"]
                    .iter()
                    .any(|p| message.starts_with(p)),
                413 => {
                    message == "Metadata exceeds maximum size of 262144 bytes" || message == "Request body too large"
                }
                _ => {
                    message.starts_with("Runs can only have 10 tags, you're trying to set ")
                        || message.starts_with("Invalid delay ")
                }
            };
            prop_assert!(documented, "{} {message:?} for {body}", answer.status);
        }
        Ok(())
    });
}

async fn retrieve_status_current(id: &str) -> Result<Answer, TestCaseError> {
    let req = Request::get(format!("/api/v3/runs/{id}"))
        .header("authorization", format!("Bearer {DEV_KEY}"))
        .header(ApiVersion::HEADER, "2025-07-16")
        .body(Empty::<Bytes>::new())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    send(req).await.ok_or_else(|| TestCaseError::fail("no answer"))
}

fn list_param() -> impl Strategy<Value = String> {
    let names = select(vec![
        "filter[status]",
        "filter[taskIdentifier]",
        "filter[version]",
        "filter[tag]",
        "filter[isTest]",
        "filter[createdAt][from]",
        "filter[createdAt][to]",
        "filter[createdAt][period]",
        "filter[batch]",
        "filter[queue]",
        "filter[machine]",
        "filter[region]",
        "filter[schedule]",
        "page[size]",
        "page[after]",
        "page[before]",
        "other",
    ]);
    let values = prop_oneof![
        select(vec![
            "QUEUED",
            "EXECUTING,FROZEN",
            "FOO",
            "true",
            "maybe",
            "1",
            "100",
            "101",
            "0",
            "-5",
            "1.5",
            "nan",
            "small-1x",
            "huge",
            "7d",
            "1767225600000",
            "2026-01-01T00:00:00Z",
            "eyJjIjoxLCJyIjoicnVuX3gifQ",
            "!!",
            ""
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,20}",
    ];
    (names, values).prop_map(|(n, v)| {
        let escape = |s: &str| {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        };
        format!("{}={}", escape(n), escape(&v))
    })
}

#[test]
fn arbitrary_list_queries_get_a_page_or_a_query_error() {
    let rt = runtime();
    // Some runs to list.
    for i in 0..5 {
        let body = format!(r#"{{"options":{{"tags":["t{i}"]}}}}"#);
        let req = Request::post("/api/v1/tasks/listed/trigger")
            .header("authorization", format!("Bearer {DEV_KEY}"))
            .header("content-length", body.len().to_string())
            .body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap();
        rt.block_on(send_to(app(), req));
    }
    check(400, prop::collection::vec(list_param(), 0..6), |params| {
        let query = params.join("&");
        let req = Request::get(format!("/api/v1/runs?{query}"))
            .header("authorization", format!("Bearer {DEV_KEY}"))
            .header(ApiVersion::HEADER, "2025-07-16")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let answer = rt.block_on(send(req)).ok_or_else(|| TestCaseError::fail("no answer"))?;
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match answer.status {
            200 => {
                let data = value["data"].as_array().ok_or_else(|| TestCaseError::fail("no data"))?;
                prop_assert!(value["pagination"].is_object());
                for item in data {
                    let nulls = item.as_object().is_some_and(|o| o.values().any(Value::is_null));
                    prop_assert!(!nulls, "an item with a null: {item}");
                }
            }
            400 => {
                prop_assert_eq!(value["error"].as_str(), Some("Query Error"), "{}", query);
                prop_assert!(value["details"].as_array().is_some_and(|d| !d.is_empty()));
            }
            other => prop_assert!(false, "status {other} for {query}"),
        }
        Ok(())
    });
}

/// Text of 0 to `max` characters, some of them multi-byte.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(select(vec!['a', 'z', '_', '/', 'é', '字', '🦀']), 0..=max)
        .prop_map(|chars| chars.into_iter().collect())
}

#[test]
fn the_journal_keeps_the_newest_records_within_its_byte_budget() {
    use std::collections::VecDeque;
    use trigger_mock::journal::{FIELD_CHARS, Journal, KEY_CHARS, Query, Record, Request};
    let scopes = proptest::option::of(proptest::collection::vec(text(60), 0..6));
    let request = (text(300), text(600), proptest::option::of(text(40)), proptest::option::of(text(300)), scopes);
    let strategy = (1usize..40, 0usize..12_000, proptest::collection::vec(request, 1..50));
    check(64, strategy, |(capacity, budget, requests)| {
        let journal = Journal::new(capacity, budget);
        let mut model: VecDeque<Record> = VecDeque::new();
        for (method, path, key, fault, scopes) in &requests {
            let token = scopes.as_ref().map(|scopes| trigger_mock::auth::TokenSummary {
                environment: Some("env_props".into()),
                scopes: scopes.clone(),
                valid: true,
            });
            let request = Request {
                at: NOW,
                wall_ms: 0,
                method,
                path,
                run_id: Some(path),
                key: key.as_deref(),
                token: token.as_ref(),
                status: 200,
                fault: fault.as_deref(),
                run_ids: &[],
                trigger_version: None,
            };
            let mut record = Record::new(&request);
            // Every field is cut to its limit, and marked when it was.
            let chars = |s: &str| s.chars().count();
            let cut_path: String = path.chars().take(FIELD_CHARS).collect();
            prop_assert_eq!(record.path(), cut_path.as_str());
            prop_assert_eq!(record.truncated.names().any(|n| n == "path"), chars(path) > FIELD_CHARS);
            if let Some(key) = key {
                prop_assert!(key.starts_with(record.key().unwrap_or("")));
                prop_assert_eq!(record.truncated.names().any(|n| n == "key"), chars(key) > KEY_CHARS);
            }
            record.seq = journal.push(&request);
            prop_assert_eq!(record.seq > 0, budget > 0, "a record is numbered when the journal is on");
            if record.bytes() <= budget {
                model.push_back(record.clone());
                while model.len() > capacity || model.iter().map(Record::bytes).sum::<usize>() > budget {
                    model.pop_front();
                }
            }
            prop_assert!(journal.bytes() <= budget, "{} bytes over a budget of {budget}", journal.bytes());
            prop_assert!(journal.len() <= capacity);
            let kept = journal.query(&Query::default()).records;
            prop_assert_eq!(&kept, &Vec::from(model.clone()), "the newest records that fit, oldest first");
        }
        // Filtering by a whole key finds exactly that key's records.
        if let Some(key) = requests.iter().find_map(|r| r.2.clone()) {
            let found = journal.query(&Query { key: Some(key.clone()), ..Query::default() }).records;
            let expected: Vec<u64> =
                model.iter().filter(|r| r.key_id == Some(trigger_mock::keys::KeyId::of(&key))).map(|r| r.seq).collect();
            prop_assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
        }
        Ok(())
    });
}

#[test]
fn key_state_keeps_the_most_recent_keys_within_its_byte_budget() {
    use trigger_mock::keys::Keys;
    // Keys that share long prefixes: over 32 bytes they are kept by digest and must stay distinct.
    let long = "tr_dev_".to_owned() + &"x".repeat(40);
    let names: Vec<String> =
        (0..12).map(|i| if i % 2 == 0 { format!("tr_dev_{i}") } else { format!("{long}{i}") }).collect();
    let op = (0..names.len(), 0usize..64);
    let strategy = (1usize..8, 0usize..12_000, proptest::collection::vec(op, 1..80));
    check(64, strategy, |(shards, budget, ops)| {
        let keys = Keys::with_shards(budget, shards);
        // Recency order, most recent last, of the keys used so far.
        let mut recency: Vec<usize> = Vec::new();
        let mut epochs: Vec<Option<Millis>> = vec![None; names.len()];
        for (step, (k, counters)) in ops.into_iter().enumerate() {
            let now = Millis(step as i64);
            let was_kept = keys.contains(&names[k]);
            let epoch = keys.with(&names[k], now, |s| {
                s.fault_counters.resize(counters, 0);
                s.fault_counters.shrink_to_fit();
                s.epoch
            });
            // A kept key keeps its timeline; a new or forgotten one starts now.
            let expected = if was_kept { epochs[k] } else { Some(now) };
            prop_assert_eq!(Some(epoch), expected, "key {}", k);
            epochs[k] = Some(epoch);
            recency.retain(|&r| r != k);
            recency.push(k);
            prop_assert!(keys.contains(&names[k]), "the key in use is kept");
            if shards == 1 {
                // One shard: exactly least recently used. Kept keys are the most recent ones.
                let kept: Vec<bool> = recency.iter().map(|&r| keys.contains(&names[r])).collect();
                prop_assert!(kept.windows(2).all(|w| !w[0] || w[1]), "an older key outlived a newer one: {:?}", kept);
                prop_assert!(keys.bytes() <= budget || keys.len() == 1, "{} bytes, budget {budget}", keys.bytes());
            } else {
                // Each shard holds its share, plus at most the key in use.
                prop_assert!(keys.bytes() <= budget || keys.len() <= shards, "{} bytes, budget {budget}", keys.bytes());
            }
        }
        Ok(())
    });
}
