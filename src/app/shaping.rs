//! What faults and the rate limiter do to an answer: the answers that
//! replace it whole, the body-shaping faults (truncate, malformed, broken
//! schema, cut mid-body, dribble), and the limiter's 429 and headers.

use super::*;

/// The answer a fault sends instead of the normal one, for the faults that
/// replace it whole (the others shape the normal answer, see [`shape`]).
pub(super) fn replacement(action: &Action, now: Millis) -> Option<Response<Body>> {
    let status_of = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(match action {
        Action::Status { status, body, json, headers } => {
            let mut response = Response::new(Body::full(body.clone()));
            *response.status_mut() = status_of(*status);
            if *json {
                response.headers_mut().insert(header::CONTENT_TYPE, JSON);
            }
            for (name, value) in headers {
                // Checked when the scenario was loaded.
                if let (Ok(n), Ok(v)) = (header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
                {
                    response.headers_mut().insert(n, v);
                }
            }
            response
        }
        Action::NotFound { should_retry } => error_response(ApiError::RunNotFound { should_retry: *should_retry }),
        Action::RateLimit { limit, remaining, reset_ms } => {
            let reset = now.plus(i64::try_from(*reset_ms).unwrap_or(i64::MAX));
            rate_limited(Verdict { allowed: false, limit: *limit, remaining: *remaining, reset }, now)
        }
        Action::ServerError { status } => {
            json_response(status_of(*status), Bytes::from_static(br#"{"error":"Internal Server Error"}"#))
        }
        Action::Reset
        | Action::CloseMidBody
        | Action::Truncate
        | Action::Malformed
        | Action::BreakSchema
        | Action::Dribble { .. } => return None,
    })
}

/// Applies a body-shaping fault to a normal answer.
pub(super) fn shape(status: StatusCode, body: Bytes, action: Option<&Action>) -> Response<Body> {
    let half = body.len() / 2;
    let body = match action {
        Some(Action::Truncate) => Body::full(body.slice(..half)),
        Some(Action::Malformed) => Body::full(Bytes::from_static(b"{\"id\": run_, \"status\": <not json>")),
        Some(Action::BreakSchema) => Body::full(break_schema(&body)),
        Some(Action::CloseMidBody) => {
            Body::Cut { first: Some(body.slice(..half)), announced: body.len() as u64, pause: None }
        }
        Some(Action::Dribble { chunk_bytes, interval_ms }) => Body::Dribble {
            rest: body,
            chunk: *chunk_bytes,
            interval: Duration::from_millis(*interval_ms),
            sleep: None,
        },
        _ => Body::full(body),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// The body with its status replaced by one no SDK accepts.
pub(super) fn break_schema(body: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(body);
    match text.find("\"status\":\"") {
        Some(start) => {
            let value_start = start + "\"status\":\"".len();
            let end = text[value_start..].find('"').map_or(value_start, |e| value_start + e);
            Bytes::from(format!("{}NOT_A_STATUS{}", &text[..value_start], &text[end..]))
        }
        None => body.clone(),
    }
}

/// The rate limiter's 429, as the server's middleware sends it, with the
/// `x-ratelimit-*` headers. The body's `reset` and the header are one value.
pub(super) fn rate_limited(v: Verdict, now: Millis) -> Response<Body> {
    let wall_reset = wall_reset(&v, now);
    let seconds = ((v.reset.0 - now.0).max(0) as f64) / 1000.0;
    let detail = format!(
        "Rate limit exceeded {}/{} requests remaining. Retry in {} seconds.",
        v.remaining.max(0),
        v.limit,
        crate::model::json_number((seconds * 10.0).round() / 10.0)
    );
    let body = serde_json::json!({
        "title": "Rate Limit Exceeded",
        "status": 429,
        "type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429",
        "detail": detail,
        "reset": wall_reset.0,
        "limit": v.limit,
        "remaining": v.remaining,
        "secondsUntilReset": crate::model::json_number(seconds),
        "error": detail,
    });
    let mut response = Response::new(Body::full(serde_json::to_vec_pretty(&body).unwrap_or_default()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(header::CONTENT_TYPE, PROBLEM_JSON);
    put_rate_headers(&mut response, &v, wall_reset);
    response
}

/// The verdict's reset in wall-clock epoch milliseconds, as the SDK compares
/// it with its own `Date.now()`. Read the wall clock once per response.
pub(super) fn wall_reset(v: &Verdict, now: Millis) -> Millis {
    wall_now().plus(v.reset.0 - now.0)
}

/// Adds the limiter's `x-ratelimit-*` headers when it is on, except those the
/// response already has: a fault's 429 (or its own headers) wins over the
/// bucket, so headers and body tell the client the same thing.
pub(super) fn with_rate_headers(mut response: Response<Body>, verdict: Option<Verdict>, now: Millis) -> Response<Body> {
    if let Some(v) = verdict {
        let wall_reset = wall_reset(&v, now);
        let headers = response.headers_mut();
        for (name, value) in rate_headers(&v, wall_reset) {
            headers.entry(name).or_insert(value);
        }
    }
    response
}

/// The `x-ratelimit-*` headers of a verdict.
pub(super) fn rate_headers(v: &Verdict, wall_reset: Millis) -> [(&'static str, HeaderValue); 3] {
    [
        ("x-ratelimit-limit", HeaderValue::from(v.limit)),
        ("x-ratelimit-remaining", HeaderValue::from(v.remaining.max(0))),
        ("x-ratelimit-reset", HeaderValue::from(wall_reset.0)),
    ]
}

pub(super) fn put_rate_headers(response: &mut Response<Body>, v: &Verdict, wall_reset: Millis) {
    let headers = response.headers_mut();
    for (name, value) in rate_headers(v, wall_reset) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_schema_replaces_the_first_status_only() {
        let body =
            Bytes::from_static(br#"{"id":"run_a","status":"QUEUED","relatedRuns":{"root":{"status":"WAITING"}}}"#);
        assert_eq!(
            break_schema(&body),
            Bytes::from_static(
                br#"{"id":"run_a","status":"NOT_A_STATUS","relatedRuns":{"root":{"status":"WAITING"}}}"#
            )
        );
    }
}
