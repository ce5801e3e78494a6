//! The run flow over HTTP: trigger, batches, list, cancel, replay,
//! reschedule, tags and metadata, with every error body of the routes, the
//! ledger's isolation per key, its caps, the journal and the admin drive.

use crate::support::{DEV_KEY, NOW, config, request, request_with_body, retrieve, start};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trigger_mock::model::ApiVersion;
use trigger_mock::scenario::{self, Source};
use trigger_mock::server::Server;

const V2: (&str, &str) = ("x-trigger-api-version", "2025-07-16");

async fn post(server: &Server, path: &str, key: &str, body: &str) -> crate::support::Reply {
    let auth = format!("Bearer {key}");
    let length = body.len().to_string();
    let headers =
        [("authorization", auth.as_str()), ("content-type", "application/json"), V2, ("content-length", &length)];
    request_with_body(server, "POST", path, &headers, body).await
}

async fn put_metadata(server: &Server, run: &str, body: &str) -> crate::support::Reply {
    let auth = format!("Bearer {DEV_KEY}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    request_with_body(server, "PUT", &format!("/api/v1/runs/{run}/metadata"), &headers, body).await
}

async fn get(server: &Server, path: &str, key: &str) -> crate::support::Reply {
    let auth = format!("Bearer {key}");
    request(server, "GET", path, &[("authorization", auth.as_str()), V2]).await
}

async fn trigger(server: &Server, key: &str, task: &str, body: Value) -> String {
    let reply = post(server, &format!("/api/v1/tasks/{task}/trigger"), key, &body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn body_of(reply: &crate::support::Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[tokio::test]
async fn trigger_answers_every_error_body_of_the_server() {
    let server = start(&config()).await;
    let long = "x".repeat(129);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (String::new(), StatusCode::BAD_REQUEST, r#"{"error":"Request body is empty"}"#),
        ("{nope".into(), StatusCode::BAD_REQUEST, r#"{"error":"Invalid JSON"}"#),
        // Bodies an SDK does not send, which the server reads the general way.
        ("[1,2]".into(), StatusCode::BAD_REQUEST, r#"{"error":"Validation error: Expected object, received array"}"#),
        (
            r#"{"options":null}"#.into(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Expected object, received null at \"options\""}"#,
        ),
        (
            r#"{"options":{},"payload":1,"options":{"maxAttempts":1.5}}"#.into(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Expected integer, received float at \"options.maxAttempts\""}"#,
        ),
        (r#"{"options":{}} x"#.into(), StatusCode::BAD_REQUEST, r#"{"error":"Invalid JSON"}"#),
        (
            json!({"payload": 1, "options": {"tags": [long]}}).to_string(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Tags must be less than 128 characters at \"options.tags[0]\""}"#,
        ),
        (
            json!({"options": {"machine": "huge"}}).to_string(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Invalid enum value. Expected 'micro' | 'small-1x' | 'small-2x' | 'medium-1x' | 'medium-2x' | 'large-1x' | 'large-2x', received 'huge' at \"options.machine\""}"#,
        ),
        (
            json!({"options": {"ttl": -1}}).to_string(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Number must be greater than or equal to 0 at \"options.ttl\""}"#,
        ),
        (
            json!({"options": {"maxAttempts": 1.5}}).to_string(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: Expected integer, received float at \"options.maxAttempts\""}"#,
        ),
        (
            json!({"options": {"idempotencyKey": "k".repeat(2049)}}).to_string(),
            StatusCode::BAD_REQUEST,
            r#"{"error":"Validation error: idempotencyKey must be 2048 characters or less at \"options.idempotencyKey\""}"#,
        ),
        (
            json!({"options": {"tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":"Runs can only have 10 tags, you're trying to set 11."}"#,
        ),
        (
            json!({"options": {"metadata": {"big": "m".repeat(300 * 1024)}}}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"Metadata exceeds maximum size of 262144 bytes"}"#,
        ),
        (
            json!({"payload": "x".repeat(3 * 1024 * 1024)}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"Request body too large"}"#,
        ),
    ];
    for (body, status, expected) in cases {
        let reply = post(&server, "/api/v1/tasks/my-task/trigger", DEV_KEY, &body).await;
        assert_eq!((reply.status, body_of(&reply).as_str()), (status, expected), "{}", &body[..body.len().min(80)]);
    }
    let wrong = get(&server, "/api/v1/tasks/my-task/trigger", DEV_KEY).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body_of(&wrong), r#"{"error":"Method not allowed"}"#);
    assert_eq!(wrong.headers["allow"], "POST");
    server.shutdown().await;
}

#[tokio::test]
async fn a_chunked_trigger_without_a_length_is_too_large() {
    let server = start(&config()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let body = r#"{"payload":1}"#;
    let raw = format!(
        "POST /api/v1/tasks/t/trigger HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {DEV_KEY}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"Request body too large"}"#), "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_triggered_run_completes_after_one_retrieve_and_only_its_key_sees_it() {
    let server = start(&config()).await;
    let id = trigger(&server, DEV_KEY, "my-task", json!({"payload": "{\"json\":{\"a\":1}}", "options": {"payloadType": "application/super+json", "tags": ["b", "a", " "]}})).await;
    assert!(id.starts_with("run_c") && id.len() == 29, "{id}");
    let first = retrieve(&server, &id, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!((first["status"].as_str(), first["ttl"].as_str()), (Some("EXECUTING"), Some("10m")));
    assert_eq!(first["tags"], json!(["a", "b"]));
    let second = retrieve(&server, &id, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(second["status"], "COMPLETED");
    assert_eq!(second["output"], json!({"a": 1}));
    assert_eq!(second["payload"], json!({"a": 1}));
    let other = retrieve(&server, &id, "tr_dev_someone_else", ApiVersion::V20250716).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let prod = trigger(&server, "tr_prod_x", "my-task", json!({})).await;
    let prod_run = retrieve(&server, &prod, "tr_prod_x", ApiVersion::V20250716).await.json();
    assert!(prod_run.get("ttl").is_none(), "only development environments get the 10m TTL: {prod_run}");
    server.shutdown().await;
}

#[tokio::test]
async fn payloads_read_as_text_show_as_the_general_way_shows_them() {
    let server = start(&config()).await;
    let sj = "application/super+json";
    let cases = [
        // SuperJSON as the SDK sends it, spaced, with a `json` of every kind.
        (
            json!({"payload": r#" { "json" : {"b": [1, 2.5, null], "a": "\u0041"}, "meta": {} } "#, "options": {"payloadType": sj}}),
            json!({"b": [1, 2.5, null], "a": "A"}),
        ),
        (json!({"payload": r#"{"json":null}"#, "options": {"payloadType": sj}}), Value::Null),
        (json!({"payload": r#"{"meta":{}}"#, "options": {"payloadType": sj}}), Value::Null),
        // Not SuperJSON: shown as the text it is.
        (json!({"payload": "[1]", "options": {"payloadType": sj}}), json!("[1]")),
        (json!({"payload": r#"{"json":1,"json":2}"#, "options": {"payloadType": sj}}), json!(2)),
        // JSON text, and a value.
        (json!({"payload": r#" {"a": [true]} "#}), json!({"a": [true]})),
        (json!({"payload": {"a": 1}}), json!({"a": 1})),
        (json!({"payload": "not json"}), json!("not json")),
    ];
    for (body, shown) in cases {
        let id = trigger(&server, DEV_KEY, "my-task", body.clone()).await;
        let run = retrieve(&server, &id, DEV_KEY, ApiVersion::V20250716).await.json();
        assert_eq!(run.get("payload").cloned().unwrap_or(Value::Null), shown, "{body}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn request_and_idempotency_keys_return_the_same_run() {
    let server = start(&config()).await;
    let auth = format!("Bearer {DEV_KEY}");
    let with_request_key = |k: &'static str| {
        [
            ("authorization", auth.clone()),
            ("content-type", "application/json".to_owned()),
            ("x-trigger-request-idempotency-key", k.to_owned()),
        ]
    };
    let send = |headers: [(&'static str, String); 3], body: &'static str| {
        let server = &server;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request_with_body(server, "POST", "/api/v1/tasks/t/trigger", &h, body).await.json()
        }
    };
    let a = send(with_request_key("u1"), "{}").await;
    let b = send(with_request_key("u1"), "{}").await;
    assert_eq!((&a["id"], &b["isCached"]), (&b["id"], &json!(false)));
    let keyed = r#"{"options":{"idempotencyKey":"h1","idempotencyKeyOptions":{"key":"k","scope":"run"}}}"#;
    let c = send(with_request_key("u2"), keyed).await;
    let d = send(with_request_key("u3"), keyed).await;
    assert_eq!((&c["id"], &d["isCached"]), (&d["id"], &json!(true)));
    assert_eq!(c["isCached"], json!(false));
    let run = retrieve(&server, c["id"].as_str().unwrap(), DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(run["idempotencyKey"], "k", "retrieve shows the user's key");
    let list = get(&server, "/api/v1/runs?filter[taskIdentifier]=t", DEV_KEY).await.json();
    let item = list["data"].as_array().unwrap().iter().find(|r| r["id"] == c["id"]).cloned().unwrap();
    assert_eq!(item["idempotencyKey"], "h1", "the list shows the stored key");
    server.shutdown().await;
}

#[tokio::test]
async fn list_errors_are_query_errors() {
    let server = start(&config()).await;
    let cases = [
        (
            "page%5Bsize%5D=500",
            r#"{"error":"Query Error","details":[{"code":"too_big","maximum":100,"type":"number","inclusive":true,"exact":false,"message":"Number must be less than or equal to 100","path":["page[size]"]}]}"#,
        ),
        (
            "page[size]=0",
            r#"{"error":"Query Error","details":[{"code":"too_small","minimum":1,"type":"number","inclusive":true,"exact":false,"message":"Number must be greater than or equal to 1","path":["page[size]"]}]}"#,
        ),
        (
            "filter[status]=QUEUED,FOO",
            r#"{"error":"Query Error","details":[{"code":"custom","message":"Invalid status values: FOO","path":["filter[status]"]}]}"#,
        ),
        (
            "filter[isTest]=maybe",
            r#"{"error":"Query Error","details":[{"code":"custom","message":"Invalid value for isTest: maybe","path":["filter[isTest]"]}]}"#,
        ),
        (
            "filter[machine]=huge",
            r#"{"error":"Query Error","details":[{"code":"custom","message":"Invalid machine values: huge","path":["filter[machine]"]}]}"#,
        ),
    ];
    for (query, expected) in cases {
        let reply = get(&server, &format!("/api/v1/runs?{query}"), DEV_KEY).await;
        assert_eq!((reply.status, body_of(&reply).as_str()), (StatusCode::BAD_REQUEST, expected), "{query}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn list_pages_both_ways_newest_first_with_filters() {
    let server = start(&config()).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let tags = if i % 2 == 0 { json!(["even"]) } else { json!(["odd"]) };
        ids.push(trigger(&server, DEV_KEY, "lister", json!({"options": {"tags": tags}})).await);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let mut seen = Vec::new();
    let mut query = "page[size]=3".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = get(&server, &format!("/api/v1/runs?{query}"), DEV_KEY).await.json();
        pages.push(page.clone());
        seen.extend(page["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        for item in page["data"].as_array().unwrap() {
            assert!(item.as_object().unwrap().values().all(|v| !v.is_null()), "no nulls: {item}");
            assert_eq!(item["env"]["name"], "dev");
            // The id the claims route names as a token's `sub`.
            assert_eq!(item["env"]["id"], trigger_mock::environments::environment_id(DEV_KEY));
            assert_eq!(item["taskKind"], "STANDARD");
            assert!(item.get("triggerFunction").is_none() && item.get("batchId").is_none(), "{item}");
        }
        match page["pagination"]["next"].as_str() {
            Some(next) => query = format!("page[size]=3&page[after]={next}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert!(pages[0]["pagination"].get("previous").is_none());
    let back = pages[1]["pagination"]["previous"].as_str().unwrap();
    let before = get(&server, &format!("/api/v1/runs?page[size]=3&page[before]={back}"), DEV_KEY).await.json();
    let ids_before: Vec<&str> = before["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids_before, newest_first[..3].iter().map(String::as_str).collect::<Vec<_>>());
    let even = get(&server, "/api/v1/runs?filter[tag]=even&filter[status]=EXECUTING", DEV_KEY).await.json();
    assert_eq!(even["data"].as_array().unwrap().len(), 4);
    let none = get(&server, "/api/v1/runs?filter[status]=COMPLETED", DEV_KEY).await.json();
    assert_eq!(none["data"], json!([]));
    let elsewhere = get(&server, "/api/v1/runs", "tr_dev_other").await.json();
    assert_eq!(elsewhere["data"], json!([]), "another key lists nothing of this one");
    server.shutdown().await;
}

#[tokio::test]
async fn cancel_replay_reschedule_tags_and_metadata() {
    let server = start(&config()).await;
    let run =
        trigger(&server, DEV_KEY, "t", json!({"payload": {"p": 1}, "options": {"delay": "1h", "tags": ["x"]}})).await;
    let rescheduled = post(&server, &format!("/api/v1/runs/{run}/reschedule"), DEV_KEY, r#"{"delay":"2h"}"#).await;
    assert_eq!(rescheduled.status, StatusCode::OK);
    assert_eq!(rescheduled.json()["delayedUntil"], json!(NOW.plus(7_200_000).to_string()));
    let bad_delay = post(&server, &format!("/api/v1/runs/{run}/reschedule"), DEV_KEY, r#"{"delay":"banana"}"#).await;
    assert_eq!(body_of(&bad_delay), r#"{"error":"Invalid delay: banana"}"#);
    let bad_body = post(&server, &format!("/api/v1/runs/{run}/reschedule"), DEV_KEY, r#"{"when":1}"#).await;
    assert_eq!(
        (bad_body.status, body_of(&bad_body).as_str()),
        (StatusCode::BAD_REQUEST, r#"{"error":"Invalid request body"}"#)
    );
    let tagged = post(&server, &format!("/api/v1/runs/{run}/tags"), DEV_KEY, r#"{"tags":["y","x"]}"#).await;
    assert_eq!(body_of(&tagged), r#"{"message":"Successfully set 1 new tags."}"#);
    let again = post(&server, &format!("/api/v1/runs/{run}/tags"), DEV_KEY, r#"{"tags":"x"}"#).await;
    assert_eq!(body_of(&again), r#"{"message":"No new tags to add"}"#);
    let many: Vec<String> = (0..9).map(|i| format!("n{i}")).collect();
    let too_many =
        post(&server, &format!("/api/v1/runs/{run}/tags"), DEV_KEY, &json!({"tags": many[..9]}).to_string()).await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body_of(&too_many).starts_with(
        r#"{"error":"Runs can only have 10 tags, you're trying to set 11. These tags have not been set: 'n0'"#
    ));
    let auth = format!("Bearer {DEV_KEY}");
    let meta = put_metadata(
        &server,
        &run,
        r#"{"operations":[{"type":"set","key":"progress","value":1},{"type":"increment","key":"n","value":2}]}"#,
    )
    .await;
    assert_eq!(body_of(&meta), r#"{"metadata":{"progress":1,"n":2}}"#);
    let read = get(&server, &format!("/api/v1/runs/{run}/metadata"), DEV_KEY).await;
    assert_eq!(body_of(&read), r#"{"metadata":{"progress":1,"n":2},"metadataType":"application/json"}"#);
    let cancelled = post(&server, &format!("/api/v2/runs/{run}/cancel"), DEV_KEY, "").await;
    assert_eq!(body_of(&cancelled), format!(r#"{{"id":"{run}"}}"#));
    let shown = retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(
        (shown["status"].as_str(), shown["error"]["message"].as_str()),
        (Some("CANCELED"), Some("Canceled by user"))
    );
    assert_eq!(shown["tags"], json!(["x", "y"]));
    let twice = post(&server, &format!("/api/v2/runs/{run}/cancel"), DEV_KEY, "").await;
    assert_eq!(twice.status, StatusCode::OK, "cancelling a finished run is a no-op");
    let not_delayed = post(&server, &format!("/api/v1/runs/{run}/reschedule"), DEV_KEY, r#"{"delay":"1h"}"#).await;
    assert_eq!(body_of(&not_delayed), r#"{"error":"Cannot reschedule a run that is not delayed"}"#);
    let replayed = post(&server, &format!("/api/v1/runs/{run}/replay"), DEV_KEY, "").await.json();
    let new_id = replayed["id"].as_str().unwrap();
    assert_ne!(new_id, run);
    let new_run = retrieve(&server, new_id, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!((new_run["taskIdentifier"].as_str(), &new_run["payload"]), (Some("t"), &json!({"p": 1})));
    // Runs the key did not create: changes stay in its environment.
    let catalogue = "run_queued";
    assert_eq!(post(&server, &format!("/api/v2/runs/{catalogue}/cancel"), DEV_KEY, "").await.status, StatusCode::OK);
    assert_eq!(retrieve(&server, catalogue, DEV_KEY, ApiVersion::V20250716).await.json()["status"], "CANCELED");
    assert_eq!(retrieve(&server, catalogue, "tr_dev_other", ApiVersion::V20250716).await.json()["status"], "QUEUED");
    // Unknown runs.
    let unknown = "run_cunknownunknownunknownxx1";
    let cases = [
        (
            "POST",
            format!("/api/v2/runs/{unknown}/cancel"),
            "",
            StatusCode::NOT_FOUND,
            r#"{"error":"Resource not found"}"#,
        ),
        (
            "POST",
            format!("/api/v1/runs/{unknown}/replay"),
            "",
            StatusCode::NOT_FOUND,
            r#"{"error":"Resource not found"}"#,
        ),
        (
            "POST",
            format!("/api/v1/runs/{unknown}/reschedule"),
            r#"{"delay":"1h"}"#,
            StatusCode::NOT_FOUND,
            r#"{"error":"Run not found"}"#,
        ),
        (
            "POST",
            format!("/api/v1/runs/{unknown}/tags"),
            r#"{"tags":["a"]}"#,
            StatusCode::NOT_FOUND,
            r#"{"error":"Run not found"}"#,
        ),
        ("GET", format!("/api/v1/runs/{unknown}/metadata"), "", StatusCode::NOT_FOUND, r#"{"error":"Run not found"}"#),
        (
            "PUT",
            format!("/api/v1/runs/{unknown}/metadata"),
            r#"{"metadata":{}}"#,
            StatusCode::NOT_FOUND,
            r#"{"error":"Task Run not found"}"#,
        ),
        (
            "POST",
            format!("/api/v1/runs/{unknown}/tags"),
            r#"{"tags":5}"#,
            StatusCode::BAD_REQUEST,
            r#"{"error":"Invalid request body","issues":[{"code":"invalid_union","message":"Invalid input","path":["tags"],"received":"number"}]}"#,
        ),
    ];
    let generate_off = trigger_mock::config::Config { generate: false, ..config() };
    let strict = start(&generate_off).await;
    for (method, path, body, status, expected) in cases {
        let reply = request_with_body(
            &strict,
            method,
            &path,
            &[("authorization", &auth), ("content-type", "application/json")],
            body,
        )
        .await;
        assert_eq!((reply.status, body_of(&reply).as_str()), (status, expected), "{method} {path}");
    }
    strict.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn batches_create_items_and_retrieve() {
    let server = start(&config()).await;
    let created = post(
        &server,
        "/api/v3/batches",
        DEV_KEY,
        r#"{"runCount":2,"taskIdentifiers":["b","a"],"idempotencyKey":"bk"}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let batch = created.json();
    let id = batch["id"].as_str().unwrap();
    assert_eq!((&batch["isCached"], &batch["runCount"]), (&json!(false), &json!(2)));
    let cached = post(
        &server,
        "/api/v3/batches",
        DEV_KEY,
        r#"{"runCount":2,"taskIdentifiers":["a","b"],"idempotencyKey":"bk"}"#,
    )
    .await
    .json();
    assert_eq!((&cached["id"], &cached["isCached"]), (&batch["id"], &json!(true)));
    let auth = format!("Bearer {DEV_KEY}");
    let items = "{\"index\":0,\"task\":\"a\",\"payload\":\"{\\\"json\\\":1}\",\"options\":{\"payloadType\":\"application/super+json\"}}\n{\"index\":1,\"task\":\"a\",\"payload\":\"x\",\"options\":{\"payloadType\":\"text/plain\"}}\n";
    // A stray idempotency header on the items request applies to no item.
    let ndjson =
        [("authorization", auth.as_str()), ("content-type", "application/x-ndjson"), ("idempotency-key", "same")];
    let sent = request_with_body(&server, "POST", &format!("/api/v3/batches/{id}/items"), &ndjson, items).await;
    assert_eq!(body_of(&sent), format!(r#"{{"id":"{id}","itemsAccepted":2,"itemsDeduplicated":0,"sealed":true}}"#));
    let retry = request_with_body(&server, "POST", &format!("/api/v3/batches/{id}/items"), &ndjson, items).await;
    assert_eq!(body_of(&retry), format!(r#"{{"id":"{id}","itemsAccepted":0,"itemsDeduplicated":0,"sealed":true}}"#));
    let got = get(&server, &format!("/api/v2/batches/{id}"), DEV_KEY).await.json();
    assert_eq!(got["status"], "COMPLETED");
    let runs = got["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_ne!(runs[0], runs[1], "two items, two runs");
    let first = retrieve(&server, runs[0].as_str().unwrap(), DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!((first["batchId"].as_str(), first["triggerFunction"].as_str()), (Some(id), Some("batchTrigger")));
    assert_eq!(first["payload"], json!(1));
    let listed = get(&server, &format!("/api/v1/runs?filter[batch]={id}"), DEV_KEY).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    // Errors.
    let zero = post(&server, "/api/v3/batches", DEV_KEY, r#"{"runCount":0,"taskIdentifiers":[]}"#).await;
    assert_eq!(body_of(&zero), r#"{"error":"runCount must be a positive integer"}"#);
    let huge = post(&server, "/api/v3/batches", DEV_KEY, r#"{"runCount":5000,"taskIdentifiers":["a"]}"#).await;
    assert_eq!(body_of(&huge), r#"{"error":"Batch runCount of 5000 exceeds maximum allowed of 1000."}"#);
    let json_items = post(&server, &format!("/api/v3/batches/{id}/items"), DEV_KEY, items).await;
    assert_eq!(json_items.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let missing = get(&server, "/api/v2/batches/batch_nope", DEV_KEY).await;
    assert_eq!((missing.status, body_of(&missing).as_str()), (StatusCode::NOT_FOUND, r#"{"error":"Not found"}"#));
    server.shutdown().await;
}

#[tokio::test]
async fn caps_keep_memory_bounded_and_the_journal_names_the_runs() {
    let mut small = config();
    small.ledger.runs_per_env = 5;
    let server = start(&small).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(trigger(&server, DEV_KEY, "capped", json!({})).await);
    }
    let listed = get(&server, "/api/v1/runs", DEV_KEY).await.json();
    let kept: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(kept, ids[3..].iter().rev().map(String::as_str).collect::<Vec<_>>(), "the oldest went first");
    assert_eq!(retrieve(&server, &ids[0], DEV_KEY, ApiVersion::V20250716).await.status, StatusCode::NOT_FOUND);
    let headers = [("trigger-version", "4.8.3")];
    let auth = format!("Bearer {DEV_KEY}");
    request_with_body(
        &server,
        "POST",
        "/api/v1/tasks/journaled/trigger",
        &[("authorization", &auth), headers[0]],
        "{}",
    )
    .await;
    let journal = request(&server, "GET", "/_mock/journal?limit=1", &[]).await.json();
    let record = &journal["records"][0];
    assert_eq!(record["triggerVersion"], "4.8.3");
    assert!(record["runIds"][0].as_str().unwrap().starts_with("run_c"), "{record}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_drives_one_run_and_scenario_tasks_decide_outcomes() {
    let scenario = json!({
        "version": 1,
        "tasks": [
            {"id": "charge", "lifecycle": [{"status": "EXECUTING", "retrieves": 1}, {"status": "COMPLETED_WITH_ERRORS"}],
             "error": {"message": "Card declined"}, "attemptCount": 3},
            {"id": "summarise", "lifecycle": [{"status": "PENDING", "for": "30s"}, {"status": "EXECUTING", "for": "1m"}, {"status": "COMPLETED_SUCCESSFULLY"}],
             "output": {"summary": "ok"}, "durationMs": 60000}
        ]
    });
    let mut with_tasks = config();
    with_tasks.inline_scenarios.push(Source { name: "tasks.json".into(), text: scenario.to_string(), path: None });
    let server = start(&with_tasks).await;
    let charge = trigger(&server, DEV_KEY, "charge", json!({})).await;
    retrieve(&server, &charge, DEV_KEY, ApiVersion::V20250716).await;
    let failed = retrieve(&server, &charge, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(
        (failed["status"].as_str(), failed["error"]["message"].as_str()),
        (Some("FAILED"), Some("Card declined"))
    );
    assert_eq!(failed["attemptCount"], 3);
    let summary = trigger(&server, DEV_KEY, "summarise", json!({})).await;
    assert_eq!(retrieve(&server, &summary, DEV_KEY, ApiVersion::V20250716).await.json()["status"], "QUEUED");
    request_with_body(&server, "POST", "/_mock/clock", &[], r#"{"advance":"90s"}"#).await;
    let done = retrieve(&server, &summary, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(
        (done["status"].as_str(), &done["output"], &done["durationMs"]),
        (Some("COMPLETED"), &json!({"summary": "ok"}), &json!(60000))
    );
    // The admin API moves a run and the journal shows it.
    let driven = trigger(&server, DEV_KEY, "whatever", json!({})).await;
    let moved = request_with_body(
        &server,
        "POST",
        &format!("/_mock/runs/{driven}"),
        &[],
        r#"{"status":"COMPLETED_SUCCESSFULLY","output":{"decided":true}}"#,
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.json()["output"], json!({"decided": true}));
    let again =
        request_with_body(&server, "POST", &format!("/_mock/runs/{driven}"), &[], r#"{"status":"EXECUTING"}"#).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let journal = request(&server, "GET", &format!("/_mock/journal?runId={driven}"), &[]).await.json();
    let paths: Vec<&str> = journal["records"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/api/v1/tasks/whatever/trigger", &format!("/_mock/runs/{driven}"), &format!("/_mock/runs/{driven}")]
    );
    server.shutdown().await;
}

#[test]
fn task_problems_point_at_the_file_line_and_column() {
    let text = "{\n  \"version\": 1,\n  \"tasks\": [\n    {\"id\": \"t\", \"lifecycle\": [{\"status\": \"CANCELED\"}]}\n  ]\n}\n";
    let problems = scenario::compile(&[Source { name: "t.json".into(), text: text.into(), path: None }]).unwrap_err();
    assert_eq!(problems.len(), 1);
    let line = problems[0].to_string();
    assert!(line.starts_with("t.json:4:"), "{line}");
    assert!(line.contains("tasks[0].lifecycle[0].status: a triggered run cannot start CANCELED"), "{line}");
}

/// A token as the SDK signs it for `key`'s environment: these scopes, 15 minutes, one-time use or not.
fn public_token(key: &str, scopes: &[&str], one_time: bool) -> String {
    use trigger_mock::environments::environment_id;
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(environment_id(key)));
    claims.insert("pub".into(), json!(true));
    claims.insert("scopes".into(), json!(scopes));
    if one_time {
        claims.insert("otu".into(), json!(true));
    }
    trigger_mock::jwt::mint(&claims, key, trigger_mock::jwt::epoch_seconds(NOW) + 900, NOW)
}

#[tokio::test]
async fn trigger_and_batch_answers_carry_a_token_that_reads_what_they_made() {
    let server = start(&config()).await;
    let reply = post(&server, "/api/v1/tasks/mailer/trigger", DEV_KEY, r#"{"payload":"{}"}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", body_of(&reply));
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let jwt = reply.headers["x-trigger-jwt"].to_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(reply.headers["x-trigger-jwt-claims"].as_bytes()).unwrap();
    assert_eq!(claims["sub"], json!(trigger_mock::environments::environment_id(DEV_KEY)));
    assert_eq!(claims["scopes"], json!([format!("read:runs:{id}"), format!("write:inputStreams:{id}")]));
    // The handle's token reads its run, and no other.
    let run = get(&server, &format!("/api/v3/runs/{id}"), &jwt).await;
    assert_eq!((run.status, run.json()["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let other = trigger(&server, DEV_KEY, "mailer", json!({})).await;
    assert_eq!(get(&server, &format!("/api/v3/runs/{other}"), &jwt).await.status, StatusCode::FORBIDDEN);
    // It cannot trigger, list, cancel or replay.
    let forbidden = post(&server, "/api/v1/tasks/mailer/trigger", &jwt, "{}").await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{}", body_of(&forbidden));
    assert_eq!(
        body_of(&forbidden),
        r#"{"error":"Unauthorized","code":"unauthorized","param":"access_token","type":"authorization"}"#
    );
    assert_eq!(get(&server, "/api/v1/runs", &jwt).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post(&server, &format!("/api/v2/runs/{id}/cancel"), &jwt, "").await.status, StatusCode::FORBIDDEN);
    let replay = post(&server, &format!("/api/v1/runs/{id}/replay"), &jwt, "").await;
    assert_eq!(
        (replay.status, body_of(&replay).as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"Invalid API key"}"#)
    );

    // A batch's token reads the batch.
    let created = post(&server, "/api/v3/batches", DEV_KEY, r#"{"runCount":1,"taskIdentifiers":["mailer"]}"#).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", body_of(&created));
    let batch = created.json()["id"].as_str().unwrap().to_owned();
    let batch_jwt = created.headers["x-trigger-jwt"].to_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(created.headers["x-trigger-jwt-claims"].as_bytes()).unwrap();
    assert_eq!(claims, json!({"sub": trigger_mock::environments::environment_id(DEV_KEY), "pub": true}));
    assert_eq!(get(&server, &format!("/api/v2/batches/{batch}"), &batch_jwt).await.status, StatusCode::OK);
    // The run's token does not; an unknown batch is a 404 first.
    assert_eq!(get(&server, &format!("/api/v2/batches/{batch}"), &jwt).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&server, "/api/v2/batches/batch_nothing", &jwt).await.status, StatusCode::NOT_FOUND);
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_on_the_run_flow_routes_are_checked_as_the_server_checks_them() {
    let server = start(&config()).await;
    // The environment is known once its key has asked for its claims.
    let auth = format!("Bearer {DEV_KEY}");
    let claims = request(&server, "POST", "/api/v1/auth/jwt/claims", &[("authorization", &auth)]).await;
    assert_eq!(claims.status, StatusCode::OK);
    let id = trigger(&server, DEV_KEY, "a", json!({})).await;

    // A one-time trigger token triggers its task once.
    let once = public_token(DEV_KEY, &["trigger:tasks:a"], true);
    assert_eq!(post(&server, "/api/v1/tasks/b/trigger", &once, "{}").await.status, StatusCode::FORBIDDEN);
    let first = post(&server, "/api/v1/tasks/a/trigger", &once, "{}").await;
    assert_eq!(first.status, StatusCode::OK, "{}", body_of(&first));
    let second = post(&server, "/api/v1/tasks/a/trigger", &once, "{}").await;
    assert_eq!(
        (second.status, body_of(&second).as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":"Cannot trigger a with a one-time use token as it has already been used."}"#
        )
    );
    let many = public_token(DEV_KEY, &["trigger:tasks:a"], false);
    for _ in 0..2 {
        assert_eq!(post(&server, "/api/v1/tasks/a/trigger", &many, "{}").await.status, StatusCode::OK);
    }

    // Cancel: write on the run or its task; the scope check comes before the 404.
    let read = public_token(DEV_KEY, &["read:runs"], false);
    assert_eq!(post(&server, &format!("/api/v2/runs/{id}/cancel"), &read, "").await.status, StatusCode::FORBIDDEN);
    assert_eq!(post(&server, "/api/v2/runs/run_nothing/cancel", &read, "").await.status, StatusCode::FORBIDDEN);
    let write = public_token(DEV_KEY, &["write:tasks:a"], false);
    assert_eq!(post(&server, "/api/v2/runs/run_nothing/cancel", &write, "").await.status, StatusCode::FORBIDDEN);
    let canceled = post(&server, &format!("/api/v2/runs/{id}/cancel"), &write, "").await;
    assert_eq!(canceled.status, StatusCode::OK, "{}", body_of(&canceled));
    assert_eq!(get(&server, &format!("/api/v3/runs/{id}"), &read).await.json()["status"], "CANCELED");

    // List: read on runs or tasks, or on every task of the filter.
    assert_eq!(get(&server, "/api/v1/runs", &read).await.status, StatusCode::OK);
    let task_a = public_token(DEV_KEY, &["read:tasks:a"], false);
    assert_eq!(get(&server, "/api/v1/runs", &task_a).await.status, StatusCode::FORBIDDEN);
    let listed = get(&server, "/api/v1/runs?filter%5BtaskIdentifier%5D=a", &task_a).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", body_of(&listed));
    assert_eq!(listed.json()["data"].as_array().map(Vec::len), Some(4));
    let both = get(&server, "/api/v1/runs?filter%5BtaskIdentifier%5D=a,b", &task_a).await;
    assert_eq!(both.status, StatusCode::FORBIDDEN);

    // Batches: batchTrigger on every task; each item too.
    let batcher = public_token(DEV_KEY, &["batchTrigger:tasks:a"], false);
    let refused = post(&server, "/api/v3/batches", &batcher, r#"{"runCount":1,"taskIdentifiers":["a","b"]}"#).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let made = post(&server, "/api/v3/batches", &batcher, r#"{"runCount":2,"taskIdentifiers":["a"]}"#).await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", body_of(&made));
    let batch = made.json()["id"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {batcher}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/x-ndjson")];
    let items = "{\"index\":0,\"task\":\"a\"}\n{\"index\":1,\"task\":\"b\"}\n";
    let reply = request_with_body(&server, "POST", &format!("/api/v3/batches/{batch}/items"), &headers, items).await;
    assert_eq!((reply.status, body_of(&reply).as_str()), (StatusCode::FORBIDDEN, r#"{"error":"Unauthorized"}"#));

    // Routes without tokens refuse them with their own texts; legacy public keys are refused everywhere.
    let admin = public_token(DEV_KEY, &["admin"], false);
    for (path, text) in [
        (format!("/api/v1/runs/{id}/reschedule"), r#"{"error":"Invalid or missing API Key"}"#),
        (format!("/api/v1/runs/{id}/tags"), r#"{"error":"Invalid or Missing API Key"}"#),
        (format!("/api/v1/runs/{id}/replay"), r#"{"error":"Invalid API key"}"#),
    ] {
        let reply = post(&server, &path, &admin, r#"{"delay":"1h","tags":["x"]}"#).await;
        assert_eq!((reply.status, body_of(&reply).as_str()), (StatusCode::UNAUTHORIZED, text), "{path}");
    }
    let metadata = get(&server, &format!("/api/v1/runs/{id}/metadata"), &admin).await;
    assert_eq!(body_of(&metadata), r#"{"error":"Invalid or Missing API Key"}"#);
    for (method, path) in [
        ("POST", "/api/v1/tasks/a/trigger".to_owned()),
        ("GET", "/api/v1/runs".to_owned()),
        ("POST", format!("/api/v2/runs/{id}/cancel")),
        ("POST", format!("/api/v1/runs/{id}/replay")),
    ] {
        let headers = [("authorization", "Bearer pk_dev_legacy"), ("content-length", "2")];
        let reply = request_with_body(&server, method, &path, &headers, "{}").await;
        assert_eq!(
            (reply.status, body_of(&reply).as_str()),
            (StatusCode::UNAUTHORIZED, r#"{"error":"Invalid API key"}"#),
            "{method} {path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_run_flow_body_is_a_408_that_closes_and_a_broken_one_a_400() {
    use crate::hostile::{exchange, header};
    use std::time::Duration;
    use trigger_mock::config::{Config, Limits};
    let config =
        Config { limits: Limits { body_timeout: Duration::from_millis(300), ..Limits::default() }, ..config() };
    let server = start(&config).await;
    for path in ["/api/v1/tasks/slow/trigger", "/api/v3/batches/batch_x/items"] {
        let stalled = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {DEV_KEY}\r\ncontent-length: 100\r\n\r\n{{\"payload\""
        );
        let reply = exchange(server.addr(), stalled.as_bytes()).await.expect("an answer to a stalled body");
        assert_eq!(reply.status, 408, "{path}: {}", reply.text());
        assert_eq!(header(&reply.head, "connection"), Some("close"), "{path}");
        assert_eq!(reply.json(), json!({"error": "Request body did not arrive in time"}));
        let broken = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {DEV_KEY}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n"
        );
        let reply = exchange(server.addr(), broken.as_bytes()).await.expect("an answer to a broken body");
        // The trigger route wants a content-length on HTTP/1.1 (the server's 413) before it reads anything.
        let expected = if path.ends_with("/trigger") { 413 } else { 400 };
        assert_eq!(reply.status, expected, "{path}: {}", reply.text());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_settled_runs_body_follows_every_later_change() {
    // A finished run's body is kept between polls: each change must still show.
    let server = start(&config()).await;
    let run = trigger(&server, DEV_KEY, "t", json!({"payload": {"p": 1}, "options": {"tags": ["a"]}})).await;
    // The default task: the first retrieve sees it executing, the next ones completed.
    assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json()["status"], "EXECUTING");
    assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json()["status"], "COMPLETED");
    let v2 = retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.body;
    let v1 = retrieve(&server, &run, DEV_KEY, ApiVersion::Unversioned).await.body;
    for _ in 0..3 {
        assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.body, v2);
        assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::Unversioned).await.body, v1);
    }
    // Another key's environment has no such run.
    let other = retrieve(&server, &run, "tr_dev_other", ApiVersion::V20250716).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let tagged = post(&server, &format!("/api/v1/runs/{run}/tags"), DEV_KEY, r#"{"tags":["b"]}"#).await;
    assert_eq!(tagged.status, StatusCode::OK);
    assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json()["tags"], json!(["a", "b"]));
    let meta = put_metadata(&server, &run, r#"{"metadata":{"step":"done"}}"#).await;
    assert_eq!(meta.status, StatusCode::OK);
    let after = retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!((&after["metadata"], &after["tags"]), (&json!({"step": "done"}), &json!(["a", "b"])));
    // A trigger in between changes nothing of this run, and it is shown the same.
    trigger(&server, DEV_KEY, "t", json!({"payload": 2})).await;
    assert_eq!(retrieve(&server, &run, DEV_KEY, ApiVersion::V20250716).await.json(), after);
    server.shutdown().await;
}
