//! The admin API under `/_mock/`: health, reset, clock, journal and scenarios.
//! Its answers are JSON; its errors are `{"error": "..."}`.

use super::{App, json_response};
use crate::body::Body;
use crate::journal::Query;
use crate::scenario::Source;
use crate::time::{Millis, parse_duration_ms};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// The answer to a clock change that would leave years 0000-9999.
const OUT_OF_RANGE: &str = "the clock stays within the years 0000 to 9999";

/// The largest admin request body (a scenario file), in bytes.
const MAX_BODY: usize = 8 * 1024 * 1024;

fn reply(status: StatusCode, value: &Value) -> Response<Body> {
    json_response(status, Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

fn fail(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    reply(status, &json!({ "error": message.into() }))
}

/// A query parameter, percent-decoded.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read_body<B>(body: B) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(fail(StatusCode::PAYLOAD_TOO_LARGE, format!("the body could not be read: {e}"))),
    }
}

/// `POST /_mock/clock` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    /// Move "now" to this RFC 3339 instant.
    set: Option<String>,
    /// Move "now" forward by a duration (`10m`).
    advance: Option<String>,
    /// Move "now" by this many milliseconds (may be negative).
    advance_ms: Option<i64>,
    /// Stop or start the clock.
    freeze: Option<bool>,
}

fn clock_state(app: &App) -> Value {
    let clock = &app.state().clock;
    let now = clock.now();
    json!({ "now": now, "nowMs": now.0, "frozen": clock.is_frozen() })
}

/// A problem as shown over HTTP: files by their name only, never a local path.
fn redact(problem: &crate::scenario::Diagnostic, sources: &[Source]) -> String {
    let mut text = problem.to_string();
    for source in sources.iter().filter(|s| s.path.is_some()) {
        text = text.replace(&source.name, source.display_name());
    }
    text
}

/// Tells the realtime hub that the clock moved, when dropped.
struct WakeOnDrop<'a>(&'a crate::notify::Hub);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clock_moved();
    }
}

/// The answer to an admin request without the `--admin-token`.
pub fn unauthorized() -> Response<Body> {
    let mut response = fail(StatusCode::UNAUTHORIZED, "the admin API needs Authorization: Bearer <--admin-token>");
    response.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
    response
}

/// Answers an admin request.
pub async fn handle<B>(app: &App, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    let query = parts.uri.query();
    let state = app.state();
    match (&parts.method, path) {
        (&Method::GET, "/_mock/health") => reply(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "now": state.clock.now(),
                "scenarios": app.world().summaries,
            }),
        ),
        (&Method::POST, "/_mock/reset") => {
            let key = param(query, "key");
            state.keys.reset(key.as_deref());
            state.hub.everything_changed();
            reply(StatusCode::OK, &json!({ "reset": key.as_deref().unwrap_or("all") }))
        }
        (&Method::GET, "/_mock/clock") => reply(StatusCode::OK, &clock_state(app)),
        (&Method::POST, "/_mock/clock") => {
            let bytes = match read_body(body).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let change: ClockChange = match serde_json::from_slice(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    return fail(
                        StatusCode::BAD_REQUEST,
                        format!("expected {{\"set\"|\"advance\"|\"advanceMs\"|\"freeze\"}}: {e}"),
                    );
                }
            };
            // Whatever part of the change applies, waiting realtime polls look again.
            let _wake = WakeOnDrop(&state.hub);
            if let Some(frozen) = change.freeze {
                state.clock.freeze(frozen);
            }
            if let Some(at) = &change.set {
                match Millis::parse_rfc3339(at) {
                    Ok(at) if state.clock.set(at) => {}
                    Ok(_) => return fail(StatusCode::BAD_REQUEST, OUT_OF_RANGE),
                    Err(e) => return fail(StatusCode::BAD_REQUEST, e),
                }
            }
            if let Some(d) = &change.advance {
                match parse_duration_ms(d) {
                    Some(ms) if state.clock.advance(ms) => {}
                    Some(_) => return fail(StatusCode::BAD_REQUEST, OUT_OF_RANGE),
                    None => return fail(StatusCode::BAD_REQUEST, format!("`{d}` is not a duration such as 10m")),
                }
            }
            if let Some(ms) = change.advance_ms
                && !state.clock.advance(ms)
            {
                return fail(StatusCode::BAD_REQUEST, OUT_OF_RANGE);
            }
            reply(StatusCode::OK, &clock_state(app))
        }
        (&Method::GET, "/_mock/journal") => {
            let limit = param(query, "limit").and_then(|l| l.parse().ok());
            let q = Query { key: param(query, "key"), run_id: param(query, "runId"), limit };
            let records = state.journal.query(&q);
            reply(StatusCode::OK, &json!({ "enabled": state.journal.enabled(), "records": records }))
        }
        (&Method::DELETE, "/_mock/journal") => {
            state.journal.clear();
            reply(StatusCode::OK, &json!({ "cleared": true }))
        }
        (&Method::GET, "/_mock/scenarios") => {
            let sources: Vec<String> = app.sources().iter().map(|s| s.display_name().to_owned()).collect();
            let world = app.world();
            let mut runs: Vec<&String> = world.lifecycles.keys().collect();
            runs.sort();
            reply(StatusCode::OK, &json!({ "sources": sources, "summaries": world.summaries, "runs": runs }))
        }
        (method, p) if p.starts_with("/_mock/scenarios/") && (method == Method::PUT || method == Method::DELETE) => {
            let name = &p["/_mock/scenarios/".len()..];
            if name.is_empty() || name.contains('/') {
                return fail(StatusCode::BAD_REQUEST, "name the scenario: /_mock/scenarios/NAME");
            }
            let mut sources: Vec<Source> = app.sources().into_iter().filter(|s| s.name != name).collect();
            let existed = sources.len() != app.sources().len();
            if method == Method::PUT {
                let bytes = match read_body(body).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let text = String::from_utf8_lossy(&bytes).into_owned();
                sources.push(Source { name: name.to_owned(), text, path: None });
            } else if !existed {
                return fail(StatusCode::NOT_FOUND, format!("no scenario named {name}"));
            }
            match app.reload(sources) {
                Ok(()) => reply(StatusCode::OK, &json!({ "loaded": app.world().summaries })),
                Err(problems) => reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({
                        "error": "the scenario is invalid; the previous scenarios keep serving",
                        "problems": problems.iter().map(|p| redact(p, &app.sources())).collect::<Vec<_>>(),
                    }),
                ),
            }
        }
        (_, "/_mock/health" | "/_mock/reset" | "/_mock/clock" | "/_mock/journal" | "/_mock/scenarios") => {
            fail(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {path}", parts.method))
        }
        _ => fail(
            StatusCode::NOT_FOUND,
            "admin routes: GET health, POST reset, GET|POST clock, GET|DELETE journal, GET scenarios, PUT|DELETE scenarios/NAME",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(param(Some("key=tr_dev_a%2Bb&runId=run_x"), "key").as_deref(), Some("tr_dev_a+b"));
        assert_eq!(param(Some("key=a+b"), "key").as_deref(), Some("a b"));
        assert_eq!(param(Some("x=1"), "key"), None);
        assert_eq!(param(None, "key"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
