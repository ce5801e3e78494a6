//! Every error response, with the real bodies and headers.

use crate::support::{DEV_KEY, config, request, retrieve, start};
use hyper::StatusCode;
use trigger_mock::model::ApiVersion;

#[tokio::test]
async fn error_responses() {
    let server = start(&config()).await;
    let bearer = format!("Bearer {DEV_KEY}");
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, StatusCode);
    let cases: [Case; 9] = [
        ("no_authorization_header", "GET", "/api/v3/runs/run_completed", vec![], StatusCode::UNAUTHORIZED),
        (
            "empty_bearer",
            "GET",
            "/api/v3/runs/run_completed",
            vec![("authorization", "Bearer ")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "invalid_key",
            "GET",
            "/api/v3/runs/run_completed",
            vec![("authorization", "Bearer sk_nope")],
            StatusCode::UNAUTHORIZED,
        ),
        ("invalid_run_id", "GET", "/api/v3/runs/abc", vec![("authorization", &bearer)], StatusCode::BAD_REQUEST),
        ("missing_run_id", "GET", "/api/v3/runs/", vec![("authorization", &bearer)], StatusCode::BAD_REQUEST),
        ("malformed_run_id", "GET", "/api/v3/runs/run_NOPE", vec![("authorization", &bearer)], StatusCode::NOT_FOUND),
        ("unknown_route", "GET", "/api/v9/nothing", vec![("authorization", &bearer)], StatusCode::NOT_FOUND),
        (
            "method_not_allowed",
            "DELETE",
            "/api/v3/runs/run_completed",
            vec![("authorization", &bearer)],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "cors_preflight",
            "OPTIONS",
            "/api/v3/runs/run_completed",
            vec![
                ("origin", "http://localhost:5173"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization,x-trigger-api-version"),
            ],
            StatusCode::OK,
        ),
    ];
    for (name, method, path, headers, status) in cases {
        let reply = request(&server, method, path, &headers).await;
        assert_eq!(reply.status, status, "{name}");
        reply.json();
        insta::assert_snapshot!(format!("error__{name}"), reply.snapshot());
    }
    let outside = request(&server, "GET", "/", &[]).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    insta::assert_snapshot!("error__outside_api", outside.snapshot());
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_runs_carry_x_should_retry_as_configured() {
    for retry in [true, false] {
        let mut cfg = config();
        cfg.generate = false;
        cfg.not_found_retry = retry;
        let server = start(&cfg).await;
        let reply = retrieve(&server, "run_doesnotexist", DEV_KEY, ApiVersion::V20250716).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.headers["x-should-retry"], if retry { "true" } else { "false" });
        insta::assert_snapshot!(format!("error__run_not_found__retry_{retry}"), reply.snapshot());
        server.shutdown().await;
    }
}

#[tokio::test]
async fn secret_key_list_and_public_key_policy() {
    let mut cfg = config();
    cfg.auth.secret_keys = vec!["tr_dev_allowed".into()];
    cfg.auth.reject_public_keys = true;
    let server = start(&cfg).await;
    let ok = retrieve(&server, "run_completed", "tr_dev_allowed", ApiVersion::V20250716).await;
    assert_eq!(ok.status, StatusCode::OK);
    for key in ["tr_dev_other", "pk_dev_public"] {
        let reply = retrieve(&server, "run_completed", key, ApiVersion::V20250716).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{key}");
        assert_eq!(reply.json()["error"], "Invalid API key");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn responses_are_json_with_charset() {
    let server = start(&config()).await;
    let reply = retrieve(&server, "run_completed", DEV_KEY, ApiVersion::V20250716).await;
    assert_eq!(reply.headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    let head = request(&server, "HEAD", "/api/v3/runs/run_completed", &[("authorization", "Bearer tr_dev_x")]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    server.shutdown().await;
}
