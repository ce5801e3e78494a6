//! What an application does to runs after triggering them: list
//! (`GET /api/v1/runs`), cancel, replay, reschedule, tags and metadata.
//!
//! Runs the caller's environment created live in its ledger. Any other run
//! (catalogue, scenario, generated) can be cancelled, rescheduled, tagged or
//! given metadata too: the change is kept in the caller's environment as an
//! overlay, so no other key sees it.
//!
//! The list returns the runs the caller's environment created (newest
//! first); catalogue, scenario and generated runs are not listed.

use super::render_options;
use super::reply::{Ctx, Reply, json_body, query_pairs, type_name};
use super::tasks::{self, MACHINES, MAX_TAGS};
use crate::auth::Environment;
use crate::ledger::{NewRun, Overlay};
use crate::lifecycle::Progress;
use crate::model::{ApiVersion, EngineStatus, ListEnv, Run, TriggerFunction, render_list_item};
use crate::scope::{Action as ScopeAction, Resource, ResourceType};
use crate::time::Millis;
use hyper::StatusCode;
use hyper::header::HeaderValue;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The metadata route's `maxContentLength`: 2 MiB.
pub const MAX_METADATA_BODY: usize = 2 * 1024 * 1024;
/// Bodies of cancel, replay, reschedule and tags.
pub const MAX_SMALL_BODY: usize = 3 * 1024 * 1024;
/// The list's default page size.
pub const DEFAULT_PAGE: usize = 25;
/// The list's default window: runs created in the last 7 days.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;
/// Metadata of a run finished longer ago than this cannot change.
const METADATA_WINDOW_MS: i64 = 3_600_000;

/// Where a run lives, as the caller's environment sees it.
enum Found {
    /// Created by this environment.
    Created(Run),
    /// Any other run, with this environment's changes applied.
    Other(Run),
}

impl Found {
    fn run(&self) -> &Run {
        match self {
            Found::Created(r) | Found::Other(r) => r,
        }
    }
}

/// The run `id` as the caller sees it now (no retrieve is counted).
fn find(ctx: &Ctx<'_>, id: &str) -> Option<Found> {
    let ledger = &ctx.app.state().ledger;
    if ledger.is_run_id(id) {
        return ledger.env(ctx.key)?.with(|st| st.view(id, ctx.now, false)).map(Found::Created);
    }
    if !id.starts_with("run_") {
        return None;
    }
    let world = ctx.world;
    let mut run = match (world.lifecycle(id), world.store.related(id)) {
        (Some(lifecycle), Some(base)) => ctx.app.state().keys.with(ctx.key, ctx.now, |ks| {
            let epoch = ks.epoch;
            let start = || Progress::start(base, lifecycle, world.anchor, epoch);
            ks.with_progress(id, start, |progress| progress.view(base, lifecycle, ctx.now))
        }),
        _ => world.store.get(id)?.into_owned(),
    };
    if let Some(env) = ledger.env_with_overlays(ctx.key)
        && let Some(overlay) = env.with(|st| st.overlays.get(id).cloned())
    {
        overlay.apply(&mut run);
    }
    Some(Found::Other(run))
}

/// Records a change to a run the caller did not create.
fn change_other(ctx: &Ctx<'_>, id: &str, f: impl FnOnce(&mut Overlay)) {
    let ledger = &ctx.app.state().ledger;
    let env = ledger.env_or_create(ctx.key);
    let caps = ledger.caps();
    env.with(|st| f(st.overlay(&caps, id)));
    ledger.note_overlay();
}

fn version(ctx: &Ctx<'_>) -> ApiVersion {
    ApiVersion::from_header(ctx.req.headers().get(ApiVersion::header_name()).map(HeaderValue::as_bytes))
}

/// The environment's id and slug as list items show them: the same id as
/// the claims route's `sub`.
fn env_names(ctx: &Ctx<'_>) -> (String, &'static str) {
    let slug = match ctx.kind.environment() {
        Environment::Development => "dev",
        Environment::Staging => "stg",
        Environment::Preview => "preview",
        Environment::Production => "prod",
    };
    // The id public access tokens name (`sub`), derived from the key alone.
    (crate::environments::environment_id(ctx.key), slug)
}

// ---------------------------------------------------------------------------
// List

/// The engine statuses a `filter[status]` value matches (the server's
/// `apiStatusToRunStatuses`, which is not the inverse of the display mapping).
pub fn statuses_of_filter(value: &str) -> Option<&'static [EngineStatus]> {
    use EngineStatus as E;
    Some(match value {
        "QUEUED" => &[E::Pending],
        "EXECUTING" => &[E::Executing],
        "WAITING" => &[E::WaitingToResume],
        "FROZEN" => &[E::Paused, E::WaitingToResume],
        "FAILED" => &[E::CompletedWithErrors],
        "PENDING_VERSION" => &[E::PendingVersion],
        "WAITING_FOR_DEPLOY" => &[E::WaitingForDeploy],
        "DELAYED" => &[E::Delayed],
        "DEQUEUED" => &[E::Dequeued],
        "COMPLETED" => &[E::CompletedSuccessfully],
        "CANCELED" => &[E::Canceled],
        "CRASHED" => &[E::Crashed],
        "SYSTEM_FAILURE" => &[E::SystemFailure],
        "EXPIRED" => &[E::Expired],
        "TIMED_OUT" => &[E::TimedOut],
        "INTERRUPTED" => &[E::Interrupted],
        "REATTEMPTING" => &[E::RetryingAfterFailure],
        _ => return None,
    })
}

/// A list query, checked.
#[derive(Debug, Default)]
struct ListQuery {
    size: usize,
    after: Option<String>,
    before: Option<String>,
    statuses: Option<HashSet<EngineStatus>>,
    tasks: Option<Vec<String>>,
    versions: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    batch: Option<String>,
    schedule: Option<String>,
    bulk_action: Option<String>,
    is_test: Option<bool>,
    machines: Option<Vec<String>>,
    queues: Option<Vec<String>>,
    regions: Option<Vec<String>>,
    from: Option<Millis>,
    to: Option<Millis>,
    period: Option<i64>,
}

fn list_of(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn custom(path: &str, message: String) -> Value {
    json!({ "code": "custom", "message": message, "path": [path] })
}

fn date_param(v: &str) -> Option<Millis> {
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() => Some(Millis(n as i64)),
        _ => Millis::parse_rfc3339(v).ok(),
    }
}

fn parse_list_query(query: Option<&str>) -> Result<ListQuery, Vec<Value>> {
    let mut q = ListQuery { size: DEFAULT_PAGE, ..ListQuery::default() };
    let mut details = Vec::new();
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "page[size]" => match v.trim().parse::<f64>() {
                Ok(n) if n.fract() != 0.0 => details.push(json!({
                    "code": "invalid_type", "expected": "integer", "received": "float",
                    "message": "Expected integer, received float", "path": [k],
                })),
                Ok(n) if n > 100.0 => details.push(json!({
                    "code": "too_big", "maximum": 100, "type": "number", "inclusive": true, "exact": false,
                    "message": "Number must be less than or equal to 100", "path": [k],
                })),
                Ok(n) if n < 1.0 => details.push(json!({
                    "code": "too_small", "minimum": 1, "type": "number", "inclusive": true, "exact": false,
                    "message": "Number must be greater than or equal to 1", "path": [k],
                })),
                Ok(n) => q.size = n as usize,
                Err(_) => details.push(json!({
                    "code": "invalid_type", "expected": "number", "received": "nan",
                    "message": "Expected number, received nan", "path": [k],
                })),
            },
            "page[after]" => q.after = Some(v),
            "page[before]" => q.before = Some(v),
            "filter[status]" => {
                let values = list_of(&v);
                let bad: Vec<&String> = values.iter().filter(|s| statuses_of_filter(s).is_none()).collect();
                if bad.is_empty() {
                    q.statuses = Some(values.iter().filter_map(|s| statuses_of_filter(s)).flatten().copied().collect());
                } else {
                    let bad: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
                    details.push(custom(&k, format!("Invalid status values: {}", bad.join(", "))));
                }
            }
            "filter[isTest]" => match v.as_str() {
                "true" => q.is_test = Some(true),
                "false" => q.is_test = Some(false),
                _ => details.push(custom(&k, format!("Invalid value for isTest: {v}"))),
            },
            "filter[machine]" => {
                let values = list_of(&v);
                let bad: Vec<&str> = values.iter().map(String::as_str).filter(|m| !MACHINES.contains(m)).collect();
                if bad.is_empty() {
                    q.machines = Some(values);
                } else {
                    details.push(custom(&k, format!("Invalid machine values: {}", bad.join(", "))));
                }
            }
            "filter[createdAt][from]" | "filter[createdAt][to]" => match date_param(&v) {
                Some(at) if k.ends_with("[from]") => q.from = Some(at),
                Some(at) => q.to = Some(at),
                None => details.push(json!({ "code": "invalid_date", "message": "Invalid date", "path": [k] })),
            },
            "filter[createdAt][period]" => q.period = tasks::natural_duration_ms(&v),
            "filter[taskIdentifier]" => q.tasks = Some(list_of(&v)),
            "filter[version]" => q.versions = Some(list_of(&v)),
            "filter[tag]" => q.tags = Some(list_of(&v)),
            "filter[batch]" => q.batch = Some(v),
            "filter[schedule]" => q.schedule = Some(v),
            "filter[bulkAction]" => q.bulk_action = Some(v),
            "filter[queue]" => q.queues = Some(list_of(&v)),
            "filter[region]" => q.regions = Some(list_of(&v)),
            _ => {}
        }
    }
    if details.is_empty() { Ok(q) } else { Err(details) }
}

/// An opaque cursor: base64url of `{"c": createdAtMs, "r": runId}`.
fn cursor(run: &Run) -> String {
    base64url(json!({ "c": run.created_at.0, "r": run.id }).to_string().as_bytes())
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    let v: Value = serde_json::from_slice(&unbase64url(text)?).ok()?;
    Some((v.get("c")?.as_i64()?, v.get("r")?.as_str()?.to_owned()))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `GET /api/v1/runs`.
pub fn list(ctx: &Ctx<'_>) -> Reply {
    let q = match parse_list_query(ctx.req.uri().query()) {
        Ok(q) => q,
        Err(details) => {
            return Reply::json(StatusCode::BAD_REQUEST, &json!({ "error": "Query Error", "details": details }));
        }
    };
    // `read` on runs or tasks as a whole, or on every task the filter names.
    if let Err(reply) = ctx.authorize_all(
        ScopeAction::Read,
        &[ResourceType::Runs, ResourceType::Tasks],
        ResourceType::Tasks,
        q.tasks.as_deref().unwrap_or_default(),
    ) {
        return reply;
    }
    let now = ctx.now;
    let to = q.to.map_or(now, |t| t.min(now));
    let from = match (q.from, q.period) {
        (Some(from), _) => Some(from),
        (None, Some(period)) => Some(now.plus(-period)),
        (None, None) if q.to.is_none() => Some(now.plus(-DEFAULT_WINDOW_MS)),
        (None, None) => None,
    };
    let rows =
        ctx.app.state().ledger.env(ctx.key).map(|env| env.with(|st| st.runs_newest_first(now))).unwrap_or_default();
    let keep = |(run, _, machine, queue): &(Run, Option<String>, Option<String>, String)| {
        let any = |list: &Option<Vec<String>>, value: Option<&str>| {
            list.as_ref().is_none_or(|l| value.is_some_and(|v| l.iter().any(|x| x == v)))
        };
        q.statuses.as_ref().is_none_or(|s| s.contains(&run.status))
            && any(&q.tasks, Some(&run.task_identifier))
            && any(&q.versions, run.version.as_deref())
            && q.tags.as_ref().is_none_or(|t| t.iter().any(|tag| run.tags.contains(tag)))
            && q.batch.as_ref().is_none_or(|b| run.batch_id.as_ref() == Some(b))
            && q.schedule.as_ref().is_none_or(|s| run.schedule.as_ref().is_some_and(|sc| &sc.id == s))
            && q.bulk_action.is_none()
            && q.is_test.is_none_or(|t| run.is_test == t)
            && any(&q.machines, machine.as_deref())
            && any(&q.queues, Some(queue))
            && any(&q.regions, run.region.as_deref())
            && from.is_none_or(|f| run.created_at >= f)
            && run.created_at <= to
    };
    let rows: Vec<_> = rows.into_iter().filter(keep).collect();
    // Newest first, as created: rows are already in that order.
    let position = |c: &str| -> Option<usize> {
        let (ms, id) = decode_cursor(c)?;
        rows.iter()
            .position(|(r, ..)| r.id == id)
            .or_else(|| Some(rows.iter().position(|(r, ..)| r.created_at.0 < ms).unwrap_or(rows.len())))
    };
    let (start, end, has_prev, has_next) = match (&q.after, &q.before) {
        (Some(after), _) => {
            let Some(p) = position(after) else { return bad_cursor() };
            let begin = if rows.get(p).is_some_and(|(r, ..)| decode_cursor(after).is_some_and(|(_, id)| id == r.id)) {
                p + 1
            } else {
                p
            };
            let end = (begin + q.size).min(rows.len());
            (begin, end, true, end < rows.len())
        }
        (None, Some(before)) => {
            let Some(p) = position(before) else { return bad_cursor() };
            let begin = p.saturating_sub(q.size);
            (begin, p, begin > 0, true)
        }
        (None, None) => {
            let end = q.size.min(rows.len());
            (0, end, false, end < rows.len())
        }
    };
    let opts = render_options(ctx.kind, version(ctx));
    let (env_id, env_name) = env_names(ctx);
    let page = &rows[start.min(end)..end];
    let data: Vec<Value> = page
        .iter()
        .map(|(run, stored, ..)| {
            render_list_item(run, opts, stored.as_deref(), ListEnv { id: &env_id, name: env_name })
        })
        .collect();
    let mut pagination = Map::new();
    if has_next && let Some((last, ..)) = page.last() {
        pagination.insert("next".into(), json!(cursor(last)));
    }
    if has_prev && let Some((first, ..)) = page.first() {
        pagination.insert("previous".into(), json!(cursor(first)));
    }
    Reply::json(StatusCode::OK, &json!({ "data": data, "pagination": pagination }))
}

fn bad_cursor() -> Reply {
    Reply::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": "Query Error", "details": [custom("page[after]", "Invalid cursor".into())] }),
    )
}

// ---------------------------------------------------------------------------
// Cancel, replay, reschedule

/// `POST /api/v2/runs/{runId}/cancel`. A finished run is a 200 no-op.
pub fn cancel(ctx: &Ctx<'_>, id: &str) -> Reply {
    let ok = || Reply::json(StatusCode::OK, &json!({ "id": id })).touching([id.to_owned()]);
    let found = find(ctx, id);
    // An action route: the scope check comes before the 404.
    let resources = Resource::for_cancel(id, found.as_ref().map(Found::run));
    if let Err(e) = ctx.principal.authorize_then_find(ScopeAction::Write, &resources, found.as_ref()) {
        return Reply::api_error(e);
    }
    match found {
        None => Reply::resource_not_found(),
        Some(Found::Created(_)) => {
            if let Some(env) = ctx.app.state().ledger.env(ctx.key) {
                env.with(|st| st.pin(id, EngineStatus::Canceled, ctx.now));
            }
            ok()
        }
        Some(Found::Other(run)) => {
            if !run.status.is_terminal() {
                change_other(ctx, id, |o| o.canceled_at = Some(ctx.now));
            }
            ok()
        }
    }
}

/// `POST /api/v1/runs/{runId}/replay`: a new run of the same task and
/// payload (the body the SDK may send is ignored, as by the server).
pub fn replay(ctx: &Ctx<'_>, id: &str) -> Reply {
    let Some(found) = find(ctx, id) else { return Reply::resource_not_found() };
    let run = found.run();
    let ttl = tasks::default_ttl(ctx);
    let new = NewRun {
        task: run.task_identifier.clone(),
        payload: run.payload.clone(),
        payload_packet: run.payload_packet.clone(),
        ttl,
        tags: run.tags.clone(),
        metadata: run.metadata.clone(),
        region: run.region.clone(),
        ..NewRun::default()
    };
    let task = ctx.world.task(&new.task);
    let done = ctx.app.state().ledger.trigger(ctx.key, task, new, TriggerFunction::Trigger, ctx.now);
    Reply::json(StatusCode::OK, &json!({ "id": done.id })).touching([done.id])
}

/// `POST /api/v1/runs/{runId}/reschedule`: only a DELAYED run; answers the run.
pub fn reschedule(ctx: &Ctx<'_>, id: &str) -> Reply {
    let delay = serde_json::from_slice::<Value>(&ctx.body)
        .ok()
        .and_then(|b| b.get("delay").cloned())
        .filter(|d| d.is_string() || d.is_number());
    let Some(delay) = delay else { return Reply::error(StatusCode::BAD_REQUEST, "Invalid request body") };
    let Some(until) = tasks::delay_until(&delay, ctx.now) else {
        // Past, unparsable, or past the year 9999.
        let shown = delay.as_str().map_or_else(|| delay.to_string(), str::to_owned);
        return Reply::error(StatusCode::BAD_REQUEST, format!("Invalid delay: {shown}"));
    };
    let Some(found) = find(ctx, id) else { return Reply::error(StatusCode::NOT_FOUND, "Run not found") };
    if found.run().status != EngineStatus::Delayed {
        return Reply::error(StatusCode::BAD_REQUEST, "Cannot reschedule a run that is not delayed");
    }
    let run = match found {
        Found::Created(_) => {
            let env = ctx.app.state().ledger.env(ctx.key);
            let run = env.and_then(|env| {
                env.with(|st| {
                    let entry = st.entry_mut(id)?;
                    entry.reschedule(until);
                    Some(entry.view(ctx.now))
                })
            });
            let Some(run) = run else { return Reply::error(StatusCode::NOT_FOUND, "Run not found") };
            run
        }
        Found::Other(mut run) => {
            change_other(ctx, id, |o| o.delayed_until = Some(until));
            run.delayed_until = Some(until);
            run
        }
    };
    let host = ctx.host();
    let body = ctx.app.render_run(ctx.world, &run, ctx.kind, version(ctx), &host, ctx.now);
    Reply::bytes(StatusCode::OK, body).touching([id.to_owned()])
}

// ---------------------------------------------------------------------------
// Tags and metadata

/// `POST /api/v1/runs/{runId}/tags`.
pub fn add_tags(ctx: &Ctx<'_>, id: &str) -> Reply {
    let invalid = |issues: Value| {
        Reply::json(StatusCode::BAD_REQUEST, &json!({ "error": "Invalid request body", "issues": issues }))
    };
    let body: Value = match serde_json::from_slice(&ctx.body) {
        Ok(b) => b,
        Err(_) => return invalid(json!([{ "code": "custom", "message": "Invalid JSON", "path": [] }])),
    };
    let given: Vec<String> = match body.get("tags") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()
        }
        Some(other) => {
            return invalid(json!([{
                "code": "invalid_union", "message": "Invalid input", "path": ["tags"], "received": type_name(other),
            }]));
        }
        None => {
            return invalid(json!([{
                "code": "invalid_type", "expected": "string", "received": "undefined", "path": ["tags"], "message": "Required",
            }]));
        }
    };
    if let Some(i) = given.iter().position(|t| t.chars().count() > 128) {
        return invalid(json!([{
            "code": "too_big", "maximum": 128, "type": "string", "inclusive": true, "exact": false,
            "message": "Tags must be less than 128 characters", "path": ["tags", i],
        }]));
    }
    let Some(found) = find(ctx, id) else { return Reply::error(StatusCode::NOT_FOUND, "Run not found") };
    let existing = &found.run().tags;
    let mut new: Vec<String> = Vec::new();
    for tag in given.into_iter().filter(|t| !t.trim().is_empty()) {
        if !existing.contains(&tag) && !new.contains(&tag) {
            new.push(tag);
        }
    }
    if new.is_empty() {
        return Reply::json(StatusCode::OK, &json!({ "message": "No new tags to add" }));
    }
    let total = existing.len() + new.len();
    if total > MAX_TAGS {
        let list: Vec<String> = new.iter().map(|t| format!("'{t}'")).collect();
        return Reply::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Runs can only have {MAX_TAGS} tags, you're trying to set {total}. These tags have not been set: {}.",
                list.join(", ")
            ),
        );
    }
    let count = new.len();
    match found {
        Found::Created(_) => {
            if let Some(env) = ctx.app.state().ledger.env(ctx.key) {
                env.with(|st| {
                    if let Some(e) = st.entry_mut(id) {
                        let tags = e.tags_mut();
                        tags.extend(new);
                        tags.sort();
                        tags.dedup();
                    }
                });
            }
        }
        Found::Other(_) => change_other(ctx, id, |o| o.added_tags.extend(new)),
    }
    Reply::json(StatusCode::OK, &json!({ "message": format!("Successfully set {count} new tags.") }))
        .touching([id.to_owned()])
}

/// `GET|PUT /api/v1/runs/{runId}/metadata`. GET answers the parsed object
/// (what the SDK accepts; the server sends the stored string).
pub fn metadata(ctx: &Ctx<'_>, id: &str) -> Reply {
    if ctx.req.method() == hyper::Method::GET {
        let Some(found) = find(ctx, id) else { return Reply::error(StatusCode::NOT_FOUND, "Run not found") };
        let metadata = found.run().metadata.clone().unwrap_or_default();
        return Reply::json(StatusCode::OK, &json!({ "metadata": metadata, "metadataType": "application/json" }));
    }
    let body = match json_body(&ctx.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let Some(found) = find(ctx, id) else { return Reply::error(StatusCode::NOT_FOUND, "Task Run not found") };
    let run = found.run();
    if run.finished_at.is_some_and(|f| f.plus(METADATA_WINDOW_MS) < ctx.now) {
        return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "Cannot update metadata for a completed run");
    }
    let mut metadata = run.metadata.clone().unwrap_or_default();
    match (body.get("operations"), body.get("metadata")) {
        (Some(Value::Array(ops)), _) => {
            for op in ops {
                apply_operation(&mut metadata, op);
            }
        }
        (_, Some(Value::Object(m))) => metadata = m.clone(),
        _ => {}
    }
    if Value::Object(metadata.clone()).to_string().len() > tasks::MAX_METADATA {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Metadata exceeds maximum size of {} bytes", tasks::MAX_METADATA),
        );
    }
    let stored = metadata.clone();
    match found {
        Found::Created(_) => {
            if let Some(env) = ctx.app.state().ledger.env(ctx.key) {
                env.with(|st| {
                    if let Some(e) = st.entry_mut(id) {
                        e.rare().metadata = Some(stored);
                    }
                });
            }
        }
        Found::Other(_) => change_other(ctx, id, |o| o.metadata = Some(stored)),
    }
    Reply::json(StatusCode::OK, &json!({ "metadata": metadata })).touching([id.to_owned()])
}

/// The keys of a metadata path: `a` or `$.a.b`.
fn keys_of(key: &str) -> Vec<String> {
    match key.strip_prefix("$.") {
        Some(path) => path.split('.').map(str::to_owned).collect(),
        None => vec![key.to_owned()],
    }
}

/// Applies one metadata operation (`set`, `delete`, `append`, `remove`,
/// `increment`, `update`). Unknown or malformed operations do nothing.
fn apply_operation(metadata: &mut Map<String, Value>, op: &Value) {
    let kind = op.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "update" {
        if let Some(Value::Object(m)) = op.get("value") {
            for (k, v) in m {
                metadata.insert(k.clone(), v.clone());
            }
        }
        return;
    }
    let Some(key) = op.get("key").and_then(Value::as_str) else { return };
    let keys = keys_of(key);
    if keys.iter().any(|k| matches!(k.as_str(), "__proto__" | "constructor" | "prototype")) {
        return;
    }
    let Some((last, parents)) = keys.split_last() else { return };
    let mut target = &mut *metadata;
    for k in parents {
        let entry = target.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        target = next;
    }
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    match kind {
        "set" => {
            target.insert(last.clone(), value);
        }
        "delete" => {
            target.remove(last);
        }
        "append" => match target.get_mut(last) {
            Some(Value::Array(items)) => items.push(value),
            Some(other) => *other = json!([other.clone(), value]),
            None => {
                target.insert(last.clone(), json!([value]));
            }
        },
        "remove" => {
            if let Some(Value::Array(items)) = target.get_mut(last) {
                items.retain(|v| *v != value);
            }
        }
        "increment" => {
            let by = value.as_f64().unwrap_or(0.0);
            let now = target.get(last).and_then(Value::as_f64).unwrap_or(0.0);
            target.insert(last.clone(), crate::model::json_number(now + by));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for text in ["", "a", "ab", "abc", "{\"c\":1,\"r\":\"run_x\"}"] {
            assert_eq!(unbase64url(&base64url(text.as_bytes())).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64url(b"{\"c\":1,\"r\":\"ra\"}"), "eyJjIjoxLCJyIjoicmEifQ");
        assert!(unbase64url("!!").is_none());
    }

    #[test]
    fn status_filters_follow_the_server_table() {
        assert_eq!(statuses_of_filter("FROZEN"), Some(&[EngineStatus::Paused, EngineStatus::WaitingToResume][..]));
        assert_eq!(statuses_of_filter("EXECUTING"), Some(&[EngineStatus::Executing][..]));
        assert_eq!(statuses_of_filter("REATTEMPTING"), Some(&[EngineStatus::RetryingAfterFailure][..]));
        assert!(statuses_of_filter("FOO").is_none());
    }

    #[test]
    fn page_size_errors_are_the_servers() {
        let details = parse_list_query(Some("page%5Bsize%5D=500")).unwrap_err();
        assert_eq!(
            details[0].to_string(),
            r#"{"code":"too_big","maximum":100,"type":"number","inclusive":true,"exact":false,"message":"Number must be less than or equal to 100","path":["page[size]"]}"#
        );
        assert!(parse_list_query(Some("page[size]=1")).is_ok());
        assert!(parse_list_query(Some("filter[status]=FOO")).is_err());
    }

    #[test]
    fn metadata_operations_apply() {
        let mut m = Map::new();
        for op in [
            json!({"type":"set","key":"progress","value":1}),
            json!({"type":"append","key":"list","value":"a"}),
            json!({"type":"increment","key":"n","value":2}),
            json!({"type":"increment","key":"n","value":0.5}),
            json!({"type":"set","key":"$.a.b","value":true}),
            json!({"type":"set","key":"__proto__","value":1}),
        ] {
            apply_operation(&mut m, &op);
        }
        assert_eq!(Value::Object(m), json!({"progress":1,"list":["a"],"n":2.5,"a":{"b":true}}));
    }
}
