//! The admin API against its OpenAPI document (`schemas/admin.openapi.json`),
//! in both directions: every documented operation and answer is produced by a
//! request below, and every answer the server gives validates against the
//! document's schema for its status.

use crate::hostile::{exchange, header};
use crate::support::{DEV_KEY, config, request, request_with_body, retrieve, start};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use trigger_mock::config::{AdminAccess, Config, Limits};
use trigger_mock::model::ApiVersion;

fn document() -> Value {
    let path = format!("{}/schemas/admin.openapi.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Follows a local `$ref` (`#/components/...`) once, if there is one.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc.pointer(pointer.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {pointer}")),
        None => value,
    }
}

/// A validator for one schema of the document, its `#/components/...` refs resolved.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut schema = schema.clone();
    let object = schema.as_object_mut().expect("a schema is an object");
    object.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    object.insert("components".into(), doc["components"].clone());
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}: {schema}"))
}

fn assert_matches(doc: &Value, schema: &Value, value: &Value, what: &str) {
    let errors: Vec<String> =
        validator(doc, schema).iter_errors(value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not match the document: {errors:#?}\n{value:#}");
}

/// The operation of `method` on the documented path `template`.
fn operation<'a>(doc: &'a Value, method: &str, template: &str) -> &'a Value {
    doc["paths"][template]
        .get(method.to_ascii_lowercase())
        .unwrap_or_else(|| panic!("{method} {template} is not in the document"))
}

/// Every documented (operationId, status) pair.
fn documented(doc: &Value) -> BTreeSet<(String, u16)> {
    let mut out = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} has no operationId"));
            for status in op["responses"].as_object().unwrap().keys() {
                out.insert((id.to_owned(), status.parse().unwrap()));
            }
        }
    }
    out
}

/// One exchange: the request, and the documented operation it exercises.
struct Exchange {
    method: &'static str,
    template: &'static str,
    path: String,
    body: String,
}

fn ex(method: &'static str, template: &'static str, path: &str, body: Value) -> Exchange {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    Exchange { method, template, path: path.to_owned(), body }
}

#[tokio::test]
async fn every_documented_answer_is_given_and_every_answer_is_documented() {
    let doc = document();
    let server = start(&config()).await;
    let locked = start(&Config { admin: AdminAccess::Token("t0ken".into()), ..config() }).await;
    let slow =
        start(&Config { limits: Limits { body_timeout: Duration::from_millis(300), ..Limits::default() }, ..config() })
            .await;
    // Something for the journal to show: two records, so that a page of one has a next.
    retrieve(&server, "run_completed", DEV_KEY, ApiVersion::V20250716).await;
    retrieve(&server, "run_completed", DEV_KEY, ApiVersion::V20250716).await;
    // A page of the journal names the next one.
    let page = request(&server, "GET", "/_mock/journal?after=0&limit=1", &[]).await.json();
    assert_eq!(
        (page["records"].as_array().map(Vec::len), page["next"].as_u64()),
        (Some(1), page["records"][0]["seq"].as_u64())
    );

    // A created run for the admin API to drive.
    let auth = format!("Bearer {DEV_KEY}");
    let made = request_with_body(
        &server,
        "POST",
        "/api/v1/tasks/driven/trigger",
        &[("authorization", &auth), ("content-type", "application/json")],
        r#"{"payload":"{\"n\":1}","options":{"payloadType":"application/json"}}"#,
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    let driven = format!("/_mock/runs/{}", made.json()["id"].as_str().unwrap());

    let scenario = json!({ "version": 1, "description": "one run", "runs": [{ "id": "run_one", "status": "COMPLETED_SUCCESSFULLY" }] });
    // The dashboard's handle of that key.
    let envs = request(&server, "GET", "/_mock/environments", &[]).await.json();
    let handle = envs["environments"][0]["env"].as_str().unwrap().to_owned();
    let plan = vec![
        // Before the reset, which forgets the created run.
        ex("POST", "/_mock/runs/{runId}", &driven, json!({ "status": "EXECUTING" })),
        ex(
            "POST",
            "/_mock/runs/{runId}",
            &driven,
            json!({ "status": "COMPLETED_SUCCESSFULLY", "output": { "ok": true } }),
        ),
        ex("POST", "/_mock/runs/{runId}", &driven, json!({ "status": "CANCELED" })),
        ex("POST", "/_mock/runs/{runId}", &driven, json!({ "status": "CANCELED", "output": 1 })),
        ex("POST", "/_mock/runs/{runId}", "/_mock/runs/run_nothing", json!({ "status": "EXECUTING" })),
        ex("GET", "/_mock/health", "/_mock/health", Value::Null),
        ex("GET", "/_mock/openapi.json", "/_mock/openapi.json", Value::Null),
        ex("POST", "/_mock/reset", "/_mock/reset", Value::Null),
        ex("POST", "/_mock/reset", &format!("/_mock/reset?key={DEV_KEY}"), Value::Null),
        ex("GET", "/_mock/clock", "/_mock/clock", Value::Null),
        ex(
            "POST",
            "/_mock/clock",
            "/_mock/clock",
            json!({ "freeze": true, "set": "2026-01-01T00:00:00Z", "advance": "10m", "advanceMs": 5 }),
        ),
        ex("POST", "/_mock/clock", "/_mock/clock", json!({ "advance": "soon" })),
        ex("POST", "/_mock/clock", "/_mock/clock", json!({ "advanceMs": -1 })),
        ex("POST", "/_mock/clock", "/_mock/clock", json!({ "set": "9999-12-31T23:59:59Z", "advance": "1d" })),
        ex("GET", "/_mock/journal", "/_mock/journal", Value::Null),
        ex("GET", "/_mock/journal", &format!("/_mock/journal?key={DEV_KEY}&runId=run_completed&limit=1"), Value::Null),
        ex("GET", "/_mock/journal", "/_mock/journal?after=0&limit=1", Value::Null),
        ex("GET", "/_mock/journal", "/_mock/journal?limit=ten", Value::Null),
        ex("GET", "/_mock/journal", "/_mock/journal?after=-1", Value::Null),
        ex("GET", "/_mock/environments", "/_mock/environments", Value::Null),
        ex("GET", "/_mock/runs", &format!("/_mock/runs?env={handle}"), Value::Null),
        ex("GET", "/_mock/runs", "/_mock/runs", Value::Null),
        ex("GET", "/_mock/runs", "/_mock/runs?env=0000000000000000", Value::Null),
        ex("GET", "/_mock/runs/{runId}", &format!("/_mock/runs/run_completed?env={handle}"), Value::Null),
        ex("GET", "/_mock/runs/{runId}", "/_mock/runs/not_a_run", Value::Null),
        ex("POST", "/_mock/reset", &format!("/_mock/reset?env={handle}"), Value::Null),
        ex("POST", "/_mock/reset", "/_mock/reset?env=0000000000000000", Value::Null),
        ex("DELETE", "/_mock/journal", "/_mock/journal", Value::Null),
        ex("PUT", "/_mock/scenarios/{name}", "/_mock/scenarios/one", scenario.clone()),
        ex("GET", "/_mock/scenarios", "/_mock/scenarios", Value::Null),
        ex("PUT", "/_mock/scenarios/{name}", "/_mock/scenarios/broken", json!({ "version": 2 })),
        ex("PUT", "/_mock/scenarios/{name}", "/_mock/scenarios/a/b", scenario.clone()),
        ex("PUT", "/_mock/scenarios/{name}", &format!("/_mock/scenarios/{}", "n".repeat(129)), scenario),
        ex("DELETE", "/_mock/scenarios/{name}", "/_mock/scenarios/one", Value::Null),
        ex("DELETE", "/_mock/scenarios/{name}", "/_mock/scenarios/one", Value::Null),
        ex("DELETE", "/_mock/scenarios/{name}", "/_mock/scenarios/a/b", Value::Null),
    ];
    let mut seen = BTreeSet::new();
    let mut check = |op: &Value, status: StatusCode, body: &[u8], what: &str| {
        let id = op["operationId"].as_str().unwrap().to_owned();
        let response = op["responses"]
            .get(status.as_str())
            .unwrap_or_else(|| panic!("{what} answered {status}, which the document does not list"));
        let response = deref(&doc, response);
        let schema = &response["content"]["application/json"]["schema"];
        let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e})"));
        assert_matches(&doc, schema, &value, what);
        seen.insert((id, status.as_u16()));
    };
    for e in &plan {
        let what = format!("{} {} {}", e.method, e.path, e.body);
        let op = operation(&doc, e.method, e.template);
        let reply =
            request_with_body(&server, e.method, &e.path, &[("content-type", "application/json")], &e.body).await;
        assert!(reply.headers["content-type"].to_str().unwrap().starts_with("application/json"), "{what}");
        if reply.status == StatusCode::OK && !e.body.is_empty() {
            // What the document asks for, the server takes.
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert_matches(&doc, schema, &serde_json::from_str(&e.body).unwrap(), &format!("request of {what}"));
        }
        check(op, reply.status, &reply.body, &what);
        // The same without the admin token, on a server that wants one.
        let reply = request_with_body(&locked, e.method, &e.path, &[], &e.body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
        check(op, reply.status, &reply.body, &format!("{what} without the token"));
    }
    // Bodies beyond the limit.
    let huge = " ".repeat(8 * 1024 * 1024 + 1);
    for (method, template, path) in [
        ("POST", "/_mock/clock", "/_mock/clock"),
        ("PUT", "/_mock/scenarios/{name}", "/_mock/scenarios/huge"),
        ("POST", "/_mock/runs/{runId}", "/_mock/runs/run_huge"),
    ] {
        let reply = request_with_body(&server, method, path, &[], &huge).await;
        check(operation(&doc, method, template), reply.status, &reply.body, &format!("{method} {path} with 8 MiB + 1"));
    }
    // Bodies that stall (408, and the connection closes) or whose chunked encoding is broken (400), on the wire.
    for (method, template, path) in [
        ("POST", "/_mock/clock", "/_mock/clock"),
        ("PUT", "/_mock/scenarios/{name}", "/_mock/scenarios/slow"),
        ("POST", "/_mock/runs/{runId}", "/_mock/runs/run_slow"),
    ] {
        let stalled = format!("{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{\"version\"");
        let reply = exchange(slow.addr(), stalled.as_bytes()).await.expect("an answer to a stalled body");
        assert_eq!(header(&reply.head, "connection"), Some("close"), "{}", reply.text());
        let status = StatusCode::from_u16(reply.status).unwrap();
        check(operation(&doc, method, template), status, &reply.body, &format!("{method} {path} with a stalled body"));
        let broken = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n"
        );
        let reply = exchange(slow.addr(), broken.as_bytes()).await.expect("an answer to a broken body");
        let status = StatusCode::from_u16(reply.status).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", reply.text());
        check(operation(&doc, method, template), status, &reply.body, &format!("{method} {path} with a broken body"));
    }
    assert_eq!(seen, documented(&doc), "every documented answer was seen, and nothing else");
}

#[tokio::test]
async fn every_get_route_answers_head_as_get() {
    let doc = document();
    let server = start(&config()).await;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let get = request(&server, "GET", template, &[]).await;
        let head = request(&server, "HEAD", template, &[]).await;
        assert_eq!(head.status, get.status, "HEAD {template}");
        assert_eq!(head.headers["content-type"], get.headers["content-type"], "HEAD {template}");
        assert_eq!(head.headers["content-length"], get.body.len().to_string().as_str(), "HEAD {template}");
        assert!(head.body.is_empty(), "HEAD {template}");
    }
    // A route without GET has no HEAD either.
    let head = request(&server, "HEAD", "/_mock/reset", &[]).await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn routes_not_in_the_document_are_refused_with_the_documented_error() {
    let doc = document();
    let server = start(&config()).await;
    let error = json!({ "$ref": "#/components/schemas/Error" });
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{name}", "x").replace("{runId}", "run_x");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if item.get(method.to_ascii_lowercase()).is_some() {
                continue;
            }
            let reply = request(&server, method, &path, &[]).await;
            let expected = if template.contains('{') { StatusCode::NOT_FOUND } else { StatusCode::METHOD_NOT_ALLOWED };
            assert_eq!(reply.status, expected, "{method} {path}");
            assert_matches(&doc, &error, &reply.json(), &format!("{method} {path}"));
        }
    }
    let reply = request(&server, "GET", "/_mock/nothing", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_matches(&doc, &error, &reply.json(), "GET /_mock/nothing");
    // The 404 lists the routes the server has ("GET|POST clock, ..."): exactly the documented ones.
    let message = reply.json()["error"].as_str().unwrap().to_owned();
    let listed: BTreeSet<(String, String)> = message
        .trim_start_matches("admin routes: ")
        .split(", ")
        .flat_map(|route| {
            let (methods, tail) = route.split_once(' ').unwrap_or_else(|| panic!("{route:?} in {message}"));
            let path = format!("/_mock/{}", tail.replace("NAME", "{name}").replace("RUN_ID", "{runId}"));
            methods.split('|').map(move |m| (m.to_ascii_lowercase(), path.clone())).collect::<Vec<_>>()
        })
        .collect();
    let mut documented = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|m| *m != "parameters") {
            documented.insert((method.clone(), template.clone()));
        }
    }
    assert_eq!(listed, documented, "the server's routes (its 404 message) against the document");
}

#[tokio::test]
async fn the_served_document_is_the_file_and_is_well_formed() {
    let doc = document();
    let server = start(&config()).await;
    let reply = request(&server, "GET", "/_mock/openapi.json", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), doc);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"), "the document's version is the crate's");
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("components.schemas.{name} is not a valid schema: {e}");
        }
    }
    let mut ids = BTreeSet::new();
    for op in documented(&doc).into_iter().map(|(id, _)| id) {
        ids.insert(op);
    }
    assert!(ids.len() >= 10, "{ids:?}");
}

#[tokio::test]
async fn scenario_names_are_percent_decoded_path_segments() {
    let server = start(&config()).await;
    let body = json!({ "version": 1, "runs": [{ "id": "run_named" }] }).to_string();
    let reply = request_with_body(&server, "PUT", "/_mock/scenarios/my%20orders+v2", &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let listed = request(&server, "GET", "/_mock/scenarios", &[]).await.json();
    assert_eq!(listed["sources"], json!(["my orders+v2"]));
    let reply = request(&server, "DELETE", "/_mock/scenarios/my%20orders%2Bv2", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    // A decoded slash or control character is no name.
    for bad in ["a%2Fb", "a%0Ab", "%00", "%7f"] {
        let reply = request_with_body(&server, "PUT", &format!("/_mock/scenarios/{bad}"), &[], &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(request(&server, "GET", "/_mock/scenarios", &[]).await.json()["sources"], json!([]));
}
