//! The dashboard under `/_mock/ui` and the admin JSON it reads: the page
//! and its assets (embedded in the binary), `GET /_mock/environments`,
//! `GET /_mock/runs?env=`, `GET /_mock/runs/{id}` and the server-sent events of
//! `GET /_mock/events`. Reached only through the admin API's access rules.
//!
//! Nothing here runs unless a page asks: the views are computed from the
//! journal, the keys' state and the world when requested, and the event
//! stream is a task parked on the change [`Feed`](crate::feed::Feed).

use super::{App, json_response};
use crate::auth::KeyKind;
use crate::body::Body;
use crate::feed::{Generations, HEARTBEAT};
use crate::journal::{Query, Record};
use crate::keys::KeyId;
use crate::lifecycle::{Next, Timeline, Until};
use crate::model::{ApiVersion, Run};
use crate::time::Millis;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The most runs `GET /_mock/runs` looks at (the key's own first).
pub const MAX_EXAMINED: usize = 2000;

/// The most runs `GET /_mock/runs` lists.
pub const MAX_LISTED: usize = 500;

/// The page may load and connect to nothing but the mock itself.
const POLICY: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
);

/// The paths this module answers.
pub fn owns(path: &str) -> bool {
    matches!(path, "/_mock/ui" | "/_mock/events" | "/_mock/environments" | "/_mock/runs")
        || path.starts_with("/_mock/ui/")
        || path.starts_with("/_mock/runs/")
}

/// The page and its assets: the same for everyone, no data in them.
pub fn is_shell(path: &str) -> bool {
    matches!(path, "/_mock/ui" | "/_mock/ui/" | "/_mock/ui/app.js" | "/_mock/ui/app.css")
}

fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, POLICY);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn reply(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

fn fail(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, Bytes::from(serde_json::to_vec(&json!({ "error": message })).unwrap_or_default()))
}

/// Answers a GET (or HEAD) of one of [`owns`]'s paths. The views read the
/// whole journal and build runs: they are computed on a blocking thread.
pub async fn handle(app: &App, path: &str, query: Option<&str>, host: String) -> Response<Body> {
    match path {
        "/_mock/ui" | "/_mock/ui/" => return asset(INDEX, "text/html; charset=utf-8"),
        "/_mock/ui/app.js" => return asset(SCRIPT, "text/javascript; charset=utf-8"),
        "/_mock/ui/app.css" => return asset(STYLE, "text/css; charset=utf-8"),
        "/_mock/events" => return events(app),
        _ => {}
    }
    let (app, path, query) = (app.clone(), path.to_owned(), query.map(str::to_owned));
    let view = tokio::task::spawn_blocking(move || compute(&app, &path, query.as_deref(), &host));
    view.await.unwrap_or_else(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "the view failed"))
}

fn compute(app: &App, path: &str, query: Option<&str>, host: &str) -> Response<Body> {
    let param = |name: &str| super::admin::param(query, name).filter(|v| !v.is_empty());
    match path {
        "/_mock/environments" => reply(&environments(app)),
        "/_mock/runs" => match param("env").map(|handle| find(app, &handle)) {
            Some(Some(env)) => reply(&runs(app, &env, param("status").as_deref(), param("task").as_deref())),
            Some(None) => fail(StatusCode::NOT_FOUND, "no environment by that handle in the journal"),
            None => fail(StatusCode::BAD_REQUEST, "name the environment: /_mock/runs?env=HANDLE"),
        },
        p if p.starts_with("/_mock/runs/") => {
            let id = &p["/_mock/runs/".len()..];
            let env = param("env").and_then(|handle| find(app, &handle));
            match run_detail(app, id, env.as_ref(), host) {
                Some(detail) => reply(&detail),
                None => fail(StatusCode::NOT_FOUND, "no such run"),
            }
        }
        _ => fail(StatusCode::NOT_FOUND, "dashboard routes: GET ui, events, environments, runs?env=, runs/ID?env="),
    }
}

/// An environment as the dashboard knows it: a key the journal has seen.
#[derive(Debug, Clone)]
struct Env {
    id: KeyId,
    /// The key's first characters, as the journal keeps them.
    shown: String,
}

/// The environment whose [`KeyId::handle`] is `handle`, from the journal.
fn find(app: &App, handle: &str) -> Option<Env> {
    journal(app, None, None).into_iter().find_map(|r| {
        let id = r.key_id.filter(|id| id.handle() == handle)?;
        Some(Env { id, shown: r.key().unwrap_or_default().to_owned() })
    })
}

/// The key of the environment whose handle is `handle`.
pub fn find_id(app: &App, handle: &str) -> Option<KeyId> {
    find(app, handle).map(|env| env.id)
}

/// The journal's records, oldest first, of one environment and one run.
fn journal(app: &App, env: Option<&KeyId>, run_id: Option<&str>) -> Vec<Record> {
    let q = Query { key: None, run_id: run_id.map(str::to_owned), limit: None, after: None };
    let mut records = app.state().journal.query(&q).records;
    if let Some(env) = env {
        records.retain(|r| r.key_id.as_ref() == Some(env));
    }
    records
}

fn failed(record: &Record) -> bool {
    record.status == 0 || record.status >= 400
}

/// `GET /_mock/environments`: every key the journal has seen, with its
/// requests, errors, faults, runs and rate-limit state.
fn environments(app: &App) -> Value {
    let state = app.state();
    let world = app.world();
    let now = state.clock.now();
    #[derive(Default)]
    struct Seen {
        requests: u64,
        errors: u64,
        faults: u64,
        last: Millis,
        runs: std::collections::BTreeSet<String>,
    }
    let mut seen: BTreeMap<String, (Env, Seen)> = BTreeMap::new();
    for record in journal(app, None, None) {
        let (Some(key), Some(id)) = (record.key(), record.key_id) else { continue };
        let (_, entry) =
            seen.entry(id.handle()).or_insert_with(|| (Env { id, shown: key.to_owned() }, Seen::default()));
        entry.requests += 1;
        entry.errors += u64::from(failed(&record));
        entry.faults += u64::from(record.fault().is_some());
        entry.last = entry.last.max(record.at);
        if let Some(id) = record.run_id() {
            entry.runs.insert(id.to_owned());
        }
    }
    let list: Vec<Value> = seen
        .into_iter()
        .map(|(handle, (env, s))| {
            let environment = match kind_of(&env).environment() {
                crate::auth::Environment::Development => "development",
                crate::auth::Environment::Staging => "staging",
                crate::auth::Environment::Preview => "preview",
                crate::auth::Environment::Production => "production",
            };
            let kept = state.keys.peek(&env.id, |ks| {
                let bucket = world.rate_limit.as_ref().zip(ks.bucket).map(|(rl, mut bucket)| {
                    let v = bucket.take(rl, now);
                    json!({ "limit": rl.limit, "available": if v.allowed { v.remaining + 1 } else { 0 }, "reset": v.reset })
                });
                (ks.epoch, bucket)
            });
            json!({
                "env": handle,
                "key": env.shown,
                "environment": environment,
                "requests": s.requests,
                "errors": s.errors,
                "faults": s.faults,
                "lastAt": s.last,
                "runs": s.runs.len(),
                "state": kept.as_ref().map(|(epoch, _)| json!({ "since": epoch })),
                "rateLimit": kept.and_then(|(_, b)| b),
            })
        })
        .collect();
    json!({
        "now": now,
        "rateLimit": world.rate_limit.map(|rl| json!({ "limit": rl.limit, "refill": rl.refill, "intervalMs": rl.interval_ms })),
        "environments": list,
    })
}

fn until_text(until: Until) -> Value {
    match until {
        Until::Retrieves(n) => json!({ "retrieves": n }),
        Until::Elapsed(ms) => json!({ "ms": ms }),
        Until::Forever => json!("forever"),
    }
}

fn timeline_json(t: &Timeline) -> Value {
    json!({
        "steps": t.steps.iter().map(|(s, at)| json!({ "status": s.name(), "at": at })).collect::<Vec<_>>(),
        "next": t.next.map(|n| match n {
            Next::At(s, at) => json!({ "status": s.name(), "at": at }),
            Next::AfterRetrieves(s, n) => json!({ "status": s.name(), "afterRetrieves": n }),
        }),
        "upcoming": t.upcoming.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "expiresAt": t.expires_at,
    })
}

/// The kind of key an environment uses (a development secret key when unknown).
fn kind_of(env: &Env) -> KeyKind {
    KeyKind::of(&env.shown).unwrap_or(KeyKind::Secret(crate::auth::Environment::Development))
}

/// A run as `env` sees it now: (run, its timeline when scripted and seen by the key).
fn view(app: &App, id: &str, env: Option<&Env>, now: Millis) -> Option<(Run, Option<Timeline>)> {
    let world = app.world();
    let ledger = &app.state().ledger;
    if ledger.is_run_id(id) {
        // A run created through the API: its environment is named inside its id.
        let fp = crate::ledger::fingerprint_of("run_", id)?;
        return ledger
            .by_fingerprint(fp)
            .iter()
            .find_map(|env| env.with(|st| st.view(id, now, false)))
            .map(|r| (r, None));
    }
    if let (Some(lifecycle), Some(base)) = (world.lifecycle(id), world.store.related(id)) {
        let seen = env.and_then(|env| {
            app.state().keys.peek(&env.id, |ks| {
                ks.progress(id).map(|p| {
                    let mut at = p.clone();
                    at.advance(lifecycle, now);
                    (at.materialize(base, lifecycle, now), p.timeline(lifecycle, now))
                })
            })
        });
        return match seen.flatten() {
            Some((run, timeline)) => Some((run, Some(timeline))),
            None => world.first_view(id, now).map(|run| (run, None)),
        };
    }
    world.store.get(id).map(|run| (run.into_owned(), None))
}

/// The static history of a run that no scenario drives: its own timestamps.
fn dated_steps(run: &Run) -> Value {
    let mut steps = vec![json!({ "status": "CREATED", "at": run.created_at })];
    if let Some(at) = run.started_at {
        steps.push(json!({ "status": "STARTED", "at": at }));
    }
    if let Some(at) = run.finished_at.or(run.expired_at) {
        steps.push(json!({ "status": run.status.name(), "at": at }));
    }
    json!({ "steps": steps, "next": null, "upcoming": [], "expiresAt": null })
}

fn row(app: &App, run: &Run, timeline: Option<&Timeline>, scripted: bool) -> Value {
    let world = app.world();
    let plan = world.lifecycle(&run.id).map(|l| {
        l.steps.iter().map(|s| json!({ "status": s.status.name(), "until": until_text(s.until) })).collect::<Vec<_>>()
    });
    json!({
        "id": run.id,
        "status": run.status.name(),
        "task": run.task_identifier,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
        "tags": run.tags,
        "source": match (scripted, world.store.is_defined(&run.id)) {
            _ if app.state().ledger.is_run_id(&run.id) => "created",
            (true, _) => "scenario",
            (false, true) => "catalogue",
            (false, false) => "generated",
        },
        "plan": plan,
        "ttlMs": world.lifecycle(&run.id).and_then(|l| l.ttl_ms),
        "timeline": timeline.map_or_else(|| dated_steps(run), timeline_json),
        "seen": timeline.is_some(),
    })
}

/// `GET /_mock/runs?env=HANDLE[&status=S][&task=T]`: the runs the environment can see
/// that the mock names: those the key created or retrieved, the scripted
/// ones (as this key sees them now), and the catalogue.
fn runs(app: &App, env: &Env, status: Option<&str>, task: Option<&str>) -> Value {
    let world = app.world();
    let now = app.state().clock.now();
    // The key's own runs first (those it retrieved), then the scripted ones, then the catalogue.
    let mut ids: Vec<String> = Vec::new();
    let mut known = std::collections::HashSet::new();
    for record in journal(app, Some(&env.id), None) {
        // The run a request named, and those it created or touched (a trigger, a batch).
        for id in record.run_id().into_iter().chain(record.run_ids.iter().map(AsRef::as_ref)) {
            if known.insert(id.to_owned()) {
                ids.push(id.to_owned());
            }
        }
    }
    let mut scripted: Vec<&str> = world.lifecycles.keys().map(AsRef::as_ref).collect();
    scripted.sort_unstable();
    let catalogue = world.store.entries().iter().map(|e| e.id.as_str());
    let mut more = false;
    for id in scripted.into_iter().chain(catalogue) {
        if ids.len() >= MAX_EXAMINED {
            more = true;
            break;
        }
        if known.insert(id.to_owned()) {
            ids.push(id.to_owned());
        }
    }
    let mut tasks = std::collections::BTreeSet::new();
    let mut statuses = std::collections::BTreeSet::new();
    let mut rows: Vec<Value> = Vec::new();
    for id in &ids {
        let Some((run, timeline)) = view(app, id, Some(env), now) else { continue };
        tasks.insert(run.task_identifier.clone());
        statuses.insert(run.status.name());
        if status.is_some_and(|s| run.status.name() != s) || task.is_some_and(|t| run.task_identifier != t) {
            continue;
        }
        if rows.len() == MAX_LISTED {
            more = true;
            continue;
        }
        rows.push(row(app, &run, timeline.as_ref(), world.lifecycles.contains_key(id.as_str())));
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json!({
        "env": env.id.handle(),
        "key": env.shown,
        "now": now,
        "tasks": tasks,
        "statuses": statuses,
        "runs": rows,
        "more": more,
    })
}

/// `GET /_mock/runs/{id}[?env=HANDLE]`: the run as the environment sees it (a new key without one), its body
/// in both API versions, its packets, and the key's requests for it.
fn run_detail(app: &App, id: &str, env: Option<&Env>, host: &str) -> Option<Value> {
    let world = app.world();
    let now = app.state().clock.now();
    let (run, timeline) = view(app, id, env, now)?;
    let kind = env.map_or(KeyKind::Secret(crate::auth::Environment::Development), kind_of);
    let body = |version: ApiVersion| {
        let bytes = app.render_run(&world, &run, kind, version, host, now);
        serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    let packet = |p: &Option<std::sync::Arc<crate::packet::Packet>>| {
        p.as_ref().map(|p| json!({ "type": p.kind.content_type(), "bytes": p.size() }))
    };
    let requests = env.map(|env| journal(app, Some(&env.id), Some(id))).unwrap_or_default();
    Some(json!({
        "run": row(app, &run, timeline.as_ref(), world.lifecycles.contains_key(id)),
        "bodies": {
            "2025-07-16": body(ApiVersion::from_header(Some(b"2025-07-16"))),
            "none": body(ApiVersion::from_header(None)),
        },
        "packets": { "payload": packet(&run.payload_packet), "output": packet(&run.output_packet) },
        "requests": requests,
    }))
}

/// The least time between two change events on one stream: changes in
/// between coalesce into the next event.
const MIN_EVENT_GAP: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET /_mock/events`: server-sent events. A `change` event carries the
/// generations (`{"journal", "clock", "runs", "scenarios"}`) whenever one
/// moves; a comment line every [`HEARTBEAT`] otherwise.
fn events(app: &App) -> Response<Body> {
    if app.state().feed.open().is_none() {
        return fail(StatusCode::SERVICE_UNAVAILABLE, "too many open event streams, or the server is stopping");
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let app = app.clone();
    tokio::spawn(async move {
        let feed = &app.state().feed;
        let Some(_place) = feed.open() else { return };
        let event = |g: &Generations| Bytes::from(format!("event: change\ndata: {}\n\n", json!(g)));
        let mut seen = feed.generations();
        if tx.send(Bytes::from(format!("retry: 1000\n{}", String::from_utf8_lossy(&event(&seen))))).await.is_err() {
            return;
        }
        loop {
            let woke = tokio::select! {
                woke = feed.wait(seen, HEARTBEAT) => woke,
                () = tx.closed() => return,
            };
            let frame = match woke {
                Some(now) => {
                    seen = now;
                    event(&now)
                }
                None if feed.is_closed() => return,
                None => Bytes::from_static(b": idle\n\n"),
            };
            let was_change = woke.is_some();
            if tx.send(frame).await.is_err() {
                return;
            }
            if was_change {
                // At most one change event per gap: under load every request
                // is a change, and a page that re-read its view for each
                // would cost the server more than the requests themselves.
                tokio::select! {
                    () = tokio::time::sleep(MIN_EVENT_GAP) => {}
                    () = tx.closed() => return,
                }
            }
        }
    });
    let mut response = Response::new(Body::Stream { rx });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
