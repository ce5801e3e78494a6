//! Public access tokens against a real server: the claims route, every 401 and
//! 403 a token can get, what a token sees, the minting route, the journal and
//! the per-token rate limit.

use crate::support::{DEV_KEY, NOW, config, request, request_with_body, start};
use hyper::{Request, StatusCode};
use serde_json::{Map, Value, json};
use trigger_mock::config::Config;
use trigger_mock::environments::environment_id;
use trigger_mock::jwt::{self, Algorithm, base64url};
use trigger_mock::server::Server;

const PROD_KEY: &str = "tr_prod_tests_0123456789";

fn claims(sub: &str, scopes: &[&str]) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("sub".into(), Value::from(sub));
    c.insert("pub".into(), Value::Bool(true));
    c.insert("scopes".into(), json!(scopes));
    c
}

/// A token as the SDK signs it: the environment of `key`, these scopes, 15 minutes.
fn token(key: &str, scopes: &[&str]) -> String {
    jwt::mint(&claims(&environment_id(key), scopes), key, jwt::epoch_seconds(NOW) + 900, NOW)
}

async fn register(server: &Server, key: &str) -> Value {
    let reply =
        request(server, "POST", "/api/v1/auth/jwt/claims", &[("authorization", &format!("Bearer {key}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

async fn get_with(server: &Server, path: &str, bearer: &str) -> crate::support::Reply {
    let auth = format!("Bearer {bearer}");
    request(server, "GET", path, &[("authorization", &auth), ("x-trigger-api-version", "2025-07-16")]).await
}

fn no_generation() -> Config {
    Config { generate: false, not_found_retry: false, ..config() }
}

#[tokio::test]
async fn claims_name_the_environment_of_a_secret_key_only() {
    let server = start(&config()).await;
    let body = register(&server, DEV_KEY).await;
    assert_eq!(body, json!({"sub": environment_id(DEV_KEY), "pub": true}));
    assert_eq!(register(&server, DEV_KEY).await, body, "stable");
    assert_ne!(register(&server, PROD_KEY).await, body, "one environment per key");

    let jwt = token(DEV_KEY, &["admin"]);
    let refusals: [(&str, Vec<(&str, String)>); 5] = [
        ("no_header", vec![]),
        ("empty_bearer", vec![("authorization", "Bearer ".into())]),
        ("public_key", vec![("authorization", "Bearer pk_dev_abc".into())]),
        ("unknown_key", vec![("authorization", "Bearer nope".into())]),
        ("public_access_token", vec![("authorization", format!("Bearer {jwt}"))]),
    ];
    for (name, headers) in refusals {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = request(&server, "POST", "/api/v1/auth/jwt/claims", &headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            reply.body, r#"{"error":"Invalid or Missing API key"}"#,
            "{name}: the route's own text, even without a header"
        );
        assert_eq!(reply.headers["content-type"], "application/json; charset=utf-8", "{name}");
    }
    let get = get_with(&server, "/api/v1/auth/jwt/claims", DEV_KEY).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_reads_what_its_scopes_cover_and_sees_what_a_secret_key_sees() {
    let server = start(&no_generation()).await;
    register(&server, DEV_KEY).await;
    let path = "/api/v3/runs/run_demo_completed";
    let by_key = get_with(&server, path, DEV_KEY).await;
    assert_eq!(by_key.status, StatusCode::OK);
    for scopes in [
        &["read:runs:run_demo_completed"][..],
        &["read:tasks:summarize-document"],
        &["read:runs"],
        &["read:all"],
        &["*:all"],
        &["admin"],
        &["write:runs:run_x", "read:runs:run_demo_completed"],
    ] {
        let reply = get_with(&server, path, &token(DEV_KEY, scopes)).await;
        assert_eq!(reply.status, StatusCode::OK, "{scopes:?}");
        assert_eq!(reply.body, by_key.body, "{scopes:?}: the same body, payload and output included");
    }
    let tagged = "/api/v3/runs/run_demo_queued";
    for scope in ["read:tags:avatar", "read:tags:user_8f2k1x", "read:tasks:resize-avatar"] {
        assert_eq!(get_with(&server, tagged, &token(DEV_KEY, &[scope])).await.status, StatusCode::OK, "{scope}");
    }
    let batched = "/api/v3/runs/run_demo_batch_item";
    let batch = token(DEV_KEY, &["read:batch:batch_cm5q2w7e9r1t3y5u7i9o1p3a5"]);
    assert_eq!(get_with(&server, batched, &batch).await.status, StatusCode::OK);
    assert_eq!(get_with(&server, tagged, &batch).await.status, StatusCode::FORBIDDEN);

    let one_run = token(DEV_KEY, &["read:runs:run_demo_completed"]);
    let other = get_with(&server, "/api/v3/runs/run_demo_failed", &one_run).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    insta::assert_snapshot!("tokens__out_of_scope", other.snapshot());
    for scopes in [&[][..], &["read:tags:user"], &["write:runs:run_demo_failed"], &["read"], &["read:runs: "]] {
        let reply = get_with(&server, "/api/v3/runs/run_demo_failed", &token(DEV_KEY, scopes)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{scopes:?}");
    }
    // A read route looks the run up first: 404 before 403.
    let missing = get_with(&server, "/api/v3/runs/run_doesnotexist", &one_run).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, r#"{"error":"Not found"}"#);
    let bad_id = get_with(&server, "/api/v3/runs/nope", &one_run).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_of_a_production_key_sees_its_costs_and_a_public_key_still_loses_packets() {
    let server = start(&no_generation()).await;
    register(&server, PROD_KEY).await;
    let path = "/api/v3/runs/run_demo_completed";
    let by_key = get_with(&server, path, PROD_KEY).await;
    let by_token = get_with(&server, path, &token(PROD_KEY, &["read:runs"])).await;
    assert_eq!(by_token.body, by_key.body);
    let dev = get_with(&server, path, DEV_KEY).await;
    assert_ne!(dev.body, by_key.body, "development costs are 0");
    let public = get_with(&server, path, "pk_dev_abc").await;
    assert!(public.json().get("output").is_none() && by_key.json().get("output").is_some());
    server.shutdown().await;
}

fn truncated(token: &str, by: usize) -> String {
    token[..token.len() - by].to_owned()
}

/// A token with this header; its signature does not matter, the header is refused first.
fn with_header(header: &Value, payload: &Value) -> String {
    let head = base64url::encode(header.to_string().as_bytes());
    let body = base64url::encode(payload.to_string().as_bytes());
    format!("{head}.{body}.{}", base64url::encode(&[0; 32]))
}

#[tokio::test]
async fn every_way_a_token_is_wrong_has_the_servers_401() {
    let server = start(&config()).await;
    register(&server, DEV_KEY).await;
    let env = environment_id(DEV_KEY);
    let exp = jwt::epoch_seconds(NOW) + 900;
    let sign = |payload: Value, key: &str| {
        let Value::Object(p) = payload else { panic!("object") };
        jwt::sign(Algorithm::Hs256, &p, key.as_bytes())
    };
    let good =
        json!({"sub": env, "pub": true, "scopes": ["admin"], "iss": jwt::ISSUER, "aud": jwt::AUDIENCE, "exp": exp});
    let with = |field: &str, value: Value| {
        let mut p = good.clone();
        p[field] = value;
        sign(p, DEV_KEY)
    };
    let without = |field: &str| {
        let mut p = good.clone();
        p.as_object_mut().map(|m| m.remove(field));
        sign(p, DEV_KEY)
    };
    let alg_none = {
        let t = sign(good.clone(), DEV_KEY);
        let payload = t.split('.').nth(1).unwrap_or_default().to_owned();
        format!("{}.{payload}.", base64url::encode(br#"{"alg":"none"}"#))
    };
    let crit_header = with_header(&json!({"alg": "HS256", "crit": ["x"]}), &good);
    let rs256 = with_header(&json!({"alg": "RS256"}), &good);
    let cases: Vec<(&str, String, &str)> = vec![
        ("no_sub", without("sub"), "invalid_public_access_token"),
        ("sub_not_a_string", with("sub", json!(7)), "invalid_public_access_token"),
        ("unknown_environment", with("sub", json!("env_nobody")), "invalid_public_access_token"),
        ("another_key", sign(good.clone(), "tr_dev_someone_else"), "public_access_token_is_invalid"),
        ("wrong_issuer", with("iss", json!("https://id.example")), "public_access_token_is_invalid"),
        ("no_issuer", without("iss"), "public_access_token_is_invalid"),
        ("wrong_audience", with("aud", json!("https://api.example")), "public_access_token_is_invalid"),
        ("expired", with("exp", json!(jwt::epoch_seconds(NOW))), "public_access_token_is_invalid"),
        ("not_yet_valid", with("nbf", json!(exp)), "public_access_token_is_invalid"),
        ("exp_not_a_number", with("exp", json!("later")), "public_access_token_is_invalid"),
        ("alg_none", alg_none, "public_access_token_is_invalid"),
        ("crit_header", crit_header, "public_access_token_is_invalid"),
        ("rs256", rs256, "public_access_token_is_invalid"),
        ("truncated_signature", truncated(&sign(good.clone(), DEV_KEY), 5), "public_access_token_is_invalid"),
        ("cut_in_the_payload", sign(good.clone(), DEV_KEY)[..100].to_owned(), "invalid_api_key"),
        ("not_public", with("pub", json!(false)), "invalid_api_key"),
        ("pub_string", with("pub", json!("true")), "invalid_api_key"),
    ];
    for (name, bearer, expected) in cases {
        let reply = get_with(&server, "/api/v3/runs/run_completed", &bearer).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {:?}", reply.body);
        insta::assert_snapshot!(format!("tokens__401__{expected}"), reply.snapshot());
    }
    // The same token is valid a second earlier and refused once the clock passes exp.
    let fine = sign(good.clone(), DEV_KEY);
    assert_eq!(get_with(&server, "/api/v3/runs/run_completed", &fine).await.status, StatusCode::OK);
    let moved = request_with_body(
        &server,
        "POST",
        "/_mock/clock",
        &[("content-type", "application/json")],
        r#"{"advance":"15m"}"#,
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK);
    let late = get_with(&server, "/api/v3/runs/run_completed", &fine).await;
    assert_eq!(late.body, r#"{"error":"Public Access Token is invalid"}"#);
    server.shutdown().await;
}

#[tokio::test]
async fn routes_that_take_no_token_answer_as_the_server_does() {
    let server = start(&config()).await;
    register(&server, DEV_KEY).await;
    let jwt = token(DEV_KEY, &["admin"]);
    let auth = format!("Bearer {jwt}");
    let mint = request_with_body(
        &server,
        "POST",
        "/api/v1/auth/public-tokens",
        &[("authorization", &auth), ("content-type", "application/json")],
        r#"{"scopes":["read:runs"]}"#,
    )
    .await;
    assert_eq!(mint.status, StatusCode::UNAUTHORIZED);
    assert_eq!(mint.body, r#"{"error":"Invalid API key"}"#, "a token falls through to the key lookup");
    server.shutdown().await;
}

async fn mint(server: &Server, bearer: &str, body: &str) -> crate::support::Reply {
    let auth = format!("Bearer {bearer}");
    request_with_body(
        server,
        "POST",
        "/api/v1/auth/public-tokens",
        &[("authorization", &auth), ("content-type", "application/json")],
        body,
    )
    .await
}

#[tokio::test]
async fn the_server_mints_tokens_for_a_key() {
    let server = start(&no_generation()).await;
    let additional = "tr_dev_sk_abcdefghijklmnopqrstuvwx";
    let reply = mint(
        &server,
        additional,
        r#"{"scopes":["read:runs:run_demo_completed"],"oneTimeUse":true,"realtime":{"skipColumns":["payload"]}}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let token = reply.json()["token"].as_str().unwrap_or_default().to_owned();
    let payload = jwt::verify(&token, additional.as_bytes(), NOW).expect("signed with the key");
    assert_eq!(
        Value::Object(payload).to_string(),
        format!(
            r#"{{"sub":"{}","pub":true,"scopes":["read:runs:run_demo_completed"],"otu":true,"realtime":{{"skipColumns":["payload"]}},"iss":"https://id.trigger.dev","aud":"https://api.trigger.dev","exp":{},"iat":{}}}"#,
            environment_id(additional),
            jwt::epoch_seconds(NOW) + 900,
            jwt::epoch_seconds(NOW)
        )
    );
    assert_eq!(get_with(&server, "/api/v3/runs/run_demo_completed", &token).await.status, StatusCode::OK);
    assert_eq!(get_with(&server, "/api/v3/runs/run_demo_failed", &token).await.status, StatusCode::FORBIDDEN);

    let long = mint(&server, DEV_KEY, r#"{"scopes":["read:runs"],"expirationTime":"2h"}"#).await.json();
    let payload = jwt::peek_payload(long["token"].as_str().unwrap_or_default()).expect("payload");
    assert_eq!(payload["exp"], json!(jwt::epoch_seconds(NOW) + 7200));

    let cases = [
        ("not_json", "{"),
        ("empty", ""),
        ("no_scopes", "{}"),
        ("empty_scopes", r#"{"scopes":[]}"#),
        ("scope_not_a_string", r#"{"scopes":[1],"oneTimeUse":"yes"}"#),
        ("expiration_unparsable", r#"{"scopes":["read:runs"],"expirationTime":"soon"}"#),
        ("expiration_past", r#"{"scopes":["read:runs"],"expirationTime":"5m ago"}"#),
        ("expiration_too_long", r#"{"scopes":["read:runs"],"expirationTime":"31d"}"#),
    ];
    for (name, body) in cases {
        let reply = mint(&server, DEV_KEY, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        insta::assert_snapshot!(format!("tokens__mint__{name}"), reply.snapshot());
    }
    assert_eq!(mint(&server, "pk_dev_abc", r#"{"scopes":["read:runs"]}"#).await.status, StatusCode::UNAUTHORIZED);
    let huge = format!(r#"{{"scopes":["{}"]}}"#, "x".repeat(100 * 1024));
    assert_eq!(mint(&server, DEV_KEY, &huge).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let no_header = request_with_body(&server, "POST", "/api/v1/auth/public-tokens", &[], "{}").await;
    assert_eq!(no_header.json()["detail"], "No authorization header provided", "the middleware's 401");
    server.shutdown().await;
}

#[tokio::test]
async fn the_journal_names_a_tokens_environment_and_scopes_never_the_token() {
    let server = start(&config()).await;
    register(&server, DEV_KEY).await;
    let good = token(DEV_KEY, &["read:runs:run_completed"]);
    let forged =
        jwt::mint(&claims(&environment_id(DEV_KEY), &["admin"]), "tr_dev_other", jwt::epoch_seconds(NOW) + 60, NOW);
    get_with(&server, "/api/v3/runs/run_completed", &good).await;
    get_with(&server, "/api/v3/runs/run_completed", &forged).await;
    let journal = request(&server, "GET", "/_mock/journal", &[]).await;
    let text = String::from_utf8_lossy(&journal.body).into_owned();
    assert!(!text.contains(&good) && !text.contains(&forged), "no token in full");
    assert!(!text.contains(good.split('.').nth(2).unwrap_or("-")), "not even its signature");
    let records = journal.json()["records"].as_array().cloned().unwrap_or_default();
    let tokens: Vec<(Value, Value, Value)> =
        records.iter().map(|r| (r["status"].clone(), r["key"].clone(), r["token"].clone())).collect();
    assert_eq!(
        tokens[1..],
        [
            (
                json!(200),
                // The journal shows a key's first characters only.
                json!(&DEV_KEY[..trigger_mock::journal::KEY_CHARS]),
                json!({"environment": environment_id(DEV_KEY), "scopes": ["read:runs:run_completed"], "valid": true})
            ),
            (
                json!(401),
                Value::Null,
                json!({"environment": environment_id(DEV_KEY), "scopes": ["admin"], "valid": false})
            ),
        ]
    );
    let by_key = request(&server, "GET", &format!("/_mock/journal?key={DEV_KEY}"), &[]).await.json();
    assert_eq!(by_key["records"].as_array().map(Vec::len), Some(2), "the claims call and the token's read");
    server.shutdown().await;
}

#[tokio::test]
async fn with_rate_limits_on_a_token_gets_its_own_sixty_a_minute() {
    let server = start(&Config { rate_limit: true, ..config() }).await;
    register(&server, DEV_KEY).await;
    let jwt = token(DEV_KEY, &["read:runs"]);
    let mut last = None;
    for i in 0..61 {
        let reply = get_with(&server, "/api/v3/runs/run_completed", &jwt).await;
        assert_eq!(reply.headers["x-ratelimit-limit"], "60", "{i}");
        last = Some(reply);
    }
    let last = last.expect("61 replies");
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(last.json()["remaining"], 0);
    let other = token(DEV_KEY, &["read:runs", "read:tasks"]);
    assert_eq!(get_with(&server, "/api/v3/runs/run_completed", &other).await.status, StatusCode::OK, "per token");
    let key = get_with(&server, "/api/v3/runs/run_completed", DEV_KEY).await;
    assert_eq!(key.headers["x-ratelimit-limit"], "750", "the key keeps its bucket");
    assert_eq!(key.headers["x-ratelimit-remaining"], "749", "the claims route is not limited");
    request_with_body(&server, "POST", "/_mock/clock", &[], r#"{"advance":"1m"}"#).await;
    assert_eq!(get_with(&server, "/api/v3/runs/run_completed", &jwt).await.status, StatusCode::OK, "a new window");
    server.shutdown().await;
}

#[tokio::test]
async fn over_http2_concurrent_streams_with_good_narrow_and_forged_tokens_each_get_their_answer() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let server = start(&config()).await;
    register(&server, DEV_KEY).await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let good = token(DEV_KEY, &["read:runs:run_completed"]);
    let narrow = token(DEV_KEY, &["read:runs:run_failed"]);
    let forged =
        jwt::mint(&claims(&environment_id(DEV_KEY), &["admin"]), "tr_dev_x", jwt::epoch_seconds(NOW) + 60, NOW);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (bearer, expected) = match i % 3 {
            0 => (good.clone(), StatusCode::OK),
            1 => (narrow.clone(), StatusCode::FORBIDDEN),
            _ => (forged.clone(), StatusCode::UNAUTHORIZED),
        };
        let mut sender = sender.clone();
        let url = format!("{}/api/v3/runs/run_completed", server.url());
        tasks.push(tokio::spawn(async move {
            let req = Request::get(url)
                .header("authorization", format!("Bearer {bearer}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.version(), hyper::Version::HTTP_2);
            let status = res.status();
            res.into_body().collect().await.unwrap();
            assert_eq!(status, expected, "stream {i}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_shares_its_environments_scenario_state() {
    let server = start(&Config { scenarios: vec!["builtin:poll-to-completion".into()], ..config() }).await;
    register(&server, DEV_KEY).await;
    register(&server, PROD_KEY).await;
    let path = "/api/v3/runs/run_poll_ok";
    let by_task = token(DEV_KEY, &["read:tasks:summarize-document"]);
    let status = |reply: crate::support::Reply| reply.json()["status"].as_str().unwrap_or_default().to_owned();
    let wrong_task = token(DEV_KEY, &["read:tasks:other-task"]);
    assert_eq!(get_with(&server, path, &wrong_task).await.status, StatusCode::FORBIDDEN);
    assert_eq!(status(get_with(&server, path, DEV_KEY).await), "QUEUED", "a refused read does not move the run");
    assert_eq!(status(get_with(&server, path, &by_task).await), "EXECUTING", "the key's retrieve counted");
    assert_eq!(status(get_with(&server, path, &by_task).await), "EXECUTING");
    assert_eq!(status(get_with(&server, path, DEV_KEY).await), "COMPLETED", "the token's retrieves counted");
    let other = token(PROD_KEY, &["read:runs:run_poll_ok"]);
    assert_eq!(status(get_with(&server, path, &other).await), "QUEUED", "another environment has its own");
    assert_eq!(get_with(&server, path, &wrong_task).await.status, StatusCode::FORBIDDEN);
    // A valid token on a route the mock does not have gets the 404, a refused one the 401.
    assert_eq!(get_with(&server, "/api/v9/nothing", &by_task).await.status, StatusCode::NOT_FOUND);
    let forged =
        jwt::mint(&claims(&environment_id(DEV_KEY), &["admin"]), "tr_dev_x", jwt::epoch_seconds(NOW) + 60, NOW);
    assert_eq!(get_with(&server, "/api/v9/nothing", &forged).await.status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

/// One raw HTTP/1.1 request; the status line and body of the answer.
async fn raw_get(server: &Server, path: &str, bearer: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test]
async fn huge_tokens_over_a_raw_socket_are_verified_and_summarised_within_bounds() {
    let server = start(&config()).await;
    register(&server, DEV_KEY).await;
    // A valid token of ~60 KB: thousands of scopes, the last one the one that matters.
    let mut scopes: Vec<String> = (0..2500).map(|i| format!("read:tags:t{i}")).collect();
    scopes.push("read:runs:run_completed".into());
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let big = token(DEV_KEY, &scope_refs);
    assert!(big.len() > 50_000 && big.len() < 64 * 1024, "{}", big.len());
    let (status, _) = raw_get(&server, "/api/v3/runs/run_completed", &big).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, body) = raw_get(&server, "/api/v3/runs/run_failed", &big).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert!(body.contains(r#""type":"authorization""#), "{body}");
    // The same size, with one signature character changed.
    let mut forged = big.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, body) = raw_get(&server, "/api/v3/runs/run_completed", &forged).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert_eq!(body, r#"{"error":"Public Access Token is invalid"}"#);
    let journal = request(&server, "GET", "/_mock/journal?limit=3", &[]).await.json();
    for record in journal["records"].as_array().cloned().unwrap_or_default() {
        assert_eq!(record["token"]["scopes"].as_array().map(Vec::len), Some(32), "at most 32 scopes recorded");
    }
    server.shutdown().await;
}
