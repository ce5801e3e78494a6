//! The admin API under `/_mock/`: health, reset, clock, journal and scenarios,
//! described by the OpenAPI document it serves (`schemas/admin.openapi.json`).
//! Its answers are JSON; its errors are `{"error": "..."}`.

use super::{App, Refusal, json_response};
use crate::body::Body;
use crate::clock::{Clock, EARLIEST, LATEST, OUT_OF_RANGE};
use crate::excerpt::percent_decode;
use crate::excerpt::{quote, shorten_quotes};
use crate::journal::{Query, Record};
use crate::scenario::Source;
use crate::time::{Millis, parse_duration};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest scenario name: every problem found in the scenario names it.
const MAX_NAME_CHARS: usize = 128;

/// The largest admin request body: a scenario file, so the scenario files' limit.
const MAX_BODY: usize = crate::scenario::MAX_FILE_BYTES;

/// The OpenAPI 3.1 description of this API, served as `GET /_mock/openapi.json`.
pub const OPENAPI: &str = include_str!("../../schemas/admin.openapi.json");

fn reply(status: StatusCode, value: &Value) -> Response<Body> {
    json_response(status, Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

/// An error answer. Quoted input in `message` is cut to a short prefix
/// (see [`crate::excerpt`]), so no error body grows with a request.
fn fail(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let message = message.into();
    reply(status, &json!({ "error": shorten_quotes(&message) }))
}

/// A query parameter, percent-decoded.
pub(super) fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// Reads a whole request body: 413 over [`MAX_BODY`], 400 when it is
/// malformed (a broken chunked encoding, a body cut short), 408 when it has
/// not arrived whole within `timeout`. After a 408 the connection closes.
async fn read_body<B>(body: B, timeout: std::time::Duration) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body has more than {MAX_BODY} bytes; an admin body (a scenario file) has at most 8 MiB"),
        )),
        Ok(Err(e)) => {
            let mut message = format!("the body is malformed: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Err(fail(StatusCode::BAD_REQUEST, message))
        }
        Err(_) => {
            let mut response = fail(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s (--body-timeout)", timeout.as_secs_f64()),
            );
            response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            Err(response)
        }
    }
}

/// The answer to `GET /_mock/journal`, serialised straight from the records.
#[derive(Serialize)]
struct Listing<'a> {
    enabled: bool,
    records: &'a [Record],
    /// The cursor of the next page, when one was asked for and more records match.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<u64>,
}

/// `POST /_mock/clock` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    /// Move "now" to this RFC 3339 instant.
    set: Option<String>,
    /// Move "now" forward by a duration (`10m`).
    advance: Option<String>,
    /// Move "now" forward by this many milliseconds.
    advance_ms: Option<i64>,
    /// Stop or start the clock.
    freeze: Option<bool>,
}

/// The answer to a negative `advance` or `advanceMs`.
const BACKWARDS: &str = "`advance` and `advanceMs` move the clock forward only; use `set` to move it back";

/// Applies a clock change, or refuses it whole and changes nothing. `set`
/// moves "now" anywhere in range; `advance` and `advanceMs` move it forward
/// by zero or more (after `set` when both are given); `freeze` stops or
/// starts it.
fn change_clock(clock: &Clock, change: &ClockChange) -> Result<(), String> {
    let set = change.set.as_deref().map(Millis::parse_rfc3339).transpose()?;
    let advance = match change.advance.as_deref() {
        None => 0,
        Some(d) if d.trim_start().starts_with('-') => return Err(BACKWARDS.into()),
        Some(d) => parse_duration(d)
            .and_then(|secs| i64::try_from(secs).ok()?.checked_mul(1000))
            .ok_or_else(|| format!("`{}` is not a duration such as 10m", quote(d)))?,
    };
    let advance_ms = change.advance_ms.unwrap_or(0);
    if advance_ms < 0 {
        return Err(BACKWARDS.into());
    }
    let by = advance.checked_add(advance_ms).ok_or(OUT_OF_RANGE)?;
    let target = (set.is_some() || by > 0).then(|| set.unwrap_or_else(|| clock.now()).plus(by));
    if target.is_some_and(|at| !(EARLIEST..=LATEST).contains(&at)) {
        return Err(OUT_OF_RANGE.into());
    }
    if let Some(frozen) = change.freeze {
        clock.freeze(frozen);
    }
    if let Some(at) = target {
        clock.set(at);
    }
    Ok(())
}

fn clock_state(app: &App) -> Value {
    let clock = &app.state().clock;
    let now = clock.now();
    json!({ "now": now, "nowMs": now.0, "frozen": clock.is_frozen() })
}

/// A problem as shown over HTTP: files by their name only, never a local path.
pub fn redact(problem: &crate::scenario::Diagnostic, sources: &[Source]) -> String {
    let mut text = problem.to_string();
    for source in sources.iter().filter(|s| s.path.is_some()) {
        text = text.replace(&source.name, source.display_name());
    }
    text
}

/// The 422 of a change that would leave an invalid set: the previous set keeps serving.
fn invalid(problems: &[crate::scenario::Diagnostic], sources: &[Source]) -> Response<Body> {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "error": "the scenario is invalid; the previous scenarios keep serving",
            "problems": problems.iter().map(|p| redact(p, sources)).collect::<Vec<_>>(),
        }),
    )
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
    let path = req.uri().path().trim_end_matches('/');
    if super::dashboard::owns(path) {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return super::dashboard::handle(app, path, req.uri().query(), super::host_of(&req)).await;
        }
        // As for scenarios/NAME: a method a templated route lacks is an unknown route.
        if !path.starts_with("/_mock/runs/") {
            return fail(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", quote(req.method().as_str())),
            );
        }
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    let query = parts.uri.query();
    let state = app.state();
    // HEAD is answered as GET (the server then sends the headers only).
    let method = if parts.method == Method::HEAD { &Method::GET } else { &parts.method };
    match (method, path) {
        (&Method::GET, "/_mock/health") => reply(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "now": state.clock.now(),
                "scenarios": app.world().summaries,
                "listenBacklog": state.listen_backlog(),
                "memory": {
                    "journalRecords": state.journal.len(),
                    "journalBytes": state.journal.bytes(),
                    "journalBudget": state.journal.budget(),
                    "keys": state.keys.len(),
                    "keyStateBytes": state.keys.bytes(),
                    "keyStateBudget": state.keys.budget(),
                },
            }),
        ),
        (&Method::GET, "/_mock/openapi.json") => json_response(StatusCode::OK, Bytes::from_static(OPENAPI.as_bytes())),
        (&Method::POST, "/_mock/reset") => {
            if let Some(handle) = param(query, "env") {
                // The dashboard names an environment by its handle, not its key.
                let Some(id) = super::dashboard::find_id(app, &handle) else {
                    return fail(StatusCode::NOT_FOUND, "no environment by that handle in the journal");
                };
                state.keys.reset_id(&id);
                state.hub.everything_changed();
                state.feed.changed(crate::feed::Change::Runs);
                return reply(StatusCode::OK, &json!({ "reset": handle }));
            }
            let key = param(query, "key");
            state.keys.reset(key.as_deref());
            state.ledger.reset(key.as_deref());
            state.hub.everything_changed();
            state.feed.changed(crate::feed::Change::Runs);
            reply(StatusCode::OK, &json!({ "reset": key.as_deref().unwrap_or("all") }))
        }
        (&Method::GET, "/_mock/clock") => reply(StatusCode::OK, &clock_state(app)),
        (&Method::POST, "/_mock/clock") => {
            let bytes = match read_body(body, state.limits.body_timeout).await {
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
            match change_clock(&state.clock, &change) {
                Ok(()) => {
                    // Waiting realtime polls look again: a time-driven step may be due.
                    state.hub.clock_moved();
                    state.feed.changed(crate::feed::Change::Clock);
                    reply(StatusCode::OK, &clock_state(app))
                }
                Err(e) => fail(StatusCode::BAD_REQUEST, e),
            }
        }
        (&Method::GET, "/_mock/journal") => {
            let number = |name: &str| match param(query, name) {
                None => Ok(None),
                Some(text) => text
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| format!("{name}: `{}` is not a whole number", quote(&text))),
            };
            let (limit, after) = match (number("limit"), number("after")) {
                (Ok(limit), Ok(after)) => (limit, after),
                (Err(message), _) | (_, Err(message)) => return fail(StatusCode::BAD_REQUEST, message),
            };
            let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
            let q = Query { key: param(query, "key"), run_id: param(query, "runId"), limit, after };
            let page = state.journal.query(&q);
            let listing = Listing { enabled: state.journal.enabled(), records: &page.records, next: page.next };
            json_response(StatusCode::OK, Bytes::from(serde_json::to_vec(&listing).unwrap_or_default()))
        }
        (&Method::DELETE, "/_mock/journal") => {
            state.journal.clear();
            reply(StatusCode::OK, &json!({ "cleared": true }))
        }
        (&Method::GET, "/_mock/scenarios") => {
            let (sources, world) = (app.sources(), app.world());
            let refused = app.reload_problems().map(|(at, problems)| json!({ "at": at, "problems": problems }));
            // Sorting and rendering every scripted id (up to 180 000 a file) is done off the request threads.
            let listing = tokio::task::spawn_blocking(move || {
                let names: Vec<&str> = sources.iter().map(Source::display_name).collect();
                let mut runs: Vec<&str> = world.lifecycles.keys().map(AsRef::as_ref).collect();
                runs.sort_unstable();
                reply(
                    StatusCode::OK,
                    &json!({ "sources": names, "summaries": world.summaries, "runs": runs, "reloadRefused": refused }),
                )
            });
            listing
                .await
                .unwrap_or_else(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, format!("the listing failed: {e}")))
        }
        (method, p) if p.starts_with("/_mock/scenarios/") && (method == Method::PUT || method == Method::DELETE) => {
            // Percent-decoded as a path segment (`+` stays itself), as clients encode it.
            let name = percent_decode(&p["/_mock/scenarios/".len()..].replace('+', "%2B"));
            let name = name.as_str();
            if name.is_empty()
                || name.contains('/')
                || name.contains(char::is_control)
                || name.chars().count() > MAX_NAME_CHARS
            {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "name the scenario: /_mock/scenarios/NAME, a NAME of at most 128 characters without `/`",
                );
            }
            // Waits its turn before reading the body (see `State::changes`); never closed.
            let Ok(_turn) = state.changes.acquire().await else {
                return fail(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
            };
            let name = name.to_owned();
            let put_name = name.clone();
            let outcome = if method == Method::PUT {
                let bytes = match read_body(body, state.limits.body_timeout).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                // The same loader as files on the command line: one verdict for the same bytes.
                let source = match Source::from_bytes(put_name.clone(), bytes.into(), None) {
                    Ok(source) => source,
                    Err(problem) => return invalid(&[problem], &app.sources()),
                };
                app.update_off_thread(move |current| {
                    let mut next: Vec<Source> = current.iter().filter(|s| s.name != put_name).cloned().collect();
                    next.push(source);
                    Ok(next)
                })
                .await
            } else {
                let name = name.clone();
                app.update_off_thread(move |current| {
                    let next: Vec<Source> = current.iter().filter(|s| s.name != name).cloned().collect();
                    if next.len() == current.len() { Err(Refusal::Missing) } else { Ok(next) }
                })
                .await
            };
            state.feed.changed(crate::feed::Change::Scenarios);
            match outcome {
                Ok(world) => reply(StatusCode::OK, &json!({ "loaded": world.summaries })),
                Err(Refusal::Missing) => fail(StatusCode::NOT_FOUND, format!("no scenario named {}", quote(&name))),
                Err(Refusal::Invalid(problems)) => invalid(&problems, &app.sources()),
            }
        }
        (&Method::POST, p) if p.starts_with(super::drive::PREFIX) => {
            let bytes = match read_body(body, state.limits.body_timeout).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            super::drive::handle(app, &Request::from_parts(parts, ()), &bytes)
        }
        (
            _,
            "/_mock/health"
            | "/_mock/openapi.json"
            | "/_mock/reset"
            | "/_mock/clock"
            | "/_mock/journal"
            | "/_mock/scenarios",
        ) => fail(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {path}", quote(parts.method.as_str()))),
        _ => fail(
            StatusCode::NOT_FOUND,
            "admin routes: GET health, GET openapi.json, POST reset, GET|POST clock, GET|DELETE journal, GET scenarios, PUT|DELETE scenarios/NAME, GET environments, GET runs, GET|POST runs/RUN_ID",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: &str) -> ClockChange {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn the_clock_advances_forward_only_and_a_refused_change_changes_nothing() {
        let clock = Clock::frozen(Millis(1_000_000));
        for backwards in [r#"{"advanceMs": -1}"#, r#"{"advance": "-1s"}"#, r#"{"advance": " -1s"}"#] {
            assert_eq!(change_clock(&clock, &change(backwards)), Err(BACKWARDS.into()), "{backwards}");
        }
        for nothing in [r#"{"advanceMs": 0}"#, r#"{"advance": "0s"}"#, "{}"] {
            assert_eq!(change_clock(&clock, &change(nothing)), Ok(()), "{nothing}");
        }
        assert_eq!(clock.now(), Millis(1_000_000));
        assert_eq!(change_clock(&clock, &change(r#"{"advance": "1s", "advanceMs": 5}"#)), Ok(()));
        assert_eq!(clock.now(), Millis(1_001_005));
        assert_eq!(change_clock(&clock, &change(r#"{"set": "1970-01-01T00:00:00Z", "advance": "2s"}"#)), Ok(()));
        assert_eq!(clock.now(), Millis(2000), "set goes back, then advance goes on from there");
        for refused in [
            r#"{"freeze": false, "set": "yesterday"}"#,
            r#"{"freeze": false, "advanceMs": -5}"#,
            r#"{"freeze": false, "advanceMs": 9223372036854775807}"#,
            r#"{"freeze": false, "advance": "2562048w", "advanceMs": 9223372036854775807}"#,
            r#"{"freeze": false, "set": "9998-12-31T23:59:59Z", "advance": "1s"}"#,
        ] {
            assert!(change_clock(&clock, &change(refused)).is_err(), "{refused}");
            assert!(clock.is_frozen() && clock.now() == Millis(2000), "{refused} changed the clock");
        }
    }

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
