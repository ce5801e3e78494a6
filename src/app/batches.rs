//! The two-phase batch API the SDK always uses: `POST /api/v3/batches`
//! (202, cached by the batch's idempotency key), `POST
//! /api/v3/batches/{id}/items` (NDJSON, one run per item, deduplicated by
//! index, `sealed` once every item arrived) and `GET /api/v2/batches/{id}`.
//! Runs are created synchronously, with `batchId` and the `batchTrigger`
//! function, in the caller's environment.

use super::reply::{Ctx, Issue, PathSeg, Reply, json_body, type_name, validation_error};
use super::tasks;
use crate::model::TriggerFunction;
use crate::scope::{Action as ScopeAction, Resource, ResourceType};
use hyper::StatusCode;
use serde_json::{Map, Value, json};

/// The create route's `maxContentLength`: 128 KiB.
pub const MAX_CREATE_BODY: usize = 131_072;
/// The largest NDJSON items body: 32 MiB (the SDK offloads payloads of 128 KiB and more).
pub const MAX_ITEMS_BODY: usize = 32 * 1024 * 1024;
/// The most items one batch may have (`STREAMING_BATCH_MAX_ITEMS`).
pub const MAX_ITEMS: u64 = 1000;

fn issue(path: &str, message: String) -> Issue {
    Issue { path: vec![PathSeg::Key(path.to_owned())], message }
}

/// `POST /api/v3/batches`.
pub fn create(ctx: &Ctx<'_>) -> Reply {
    let body = match json_body(&ctx.body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let Value::Object(obj) = &body else {
        return validation_error(&[Issue {
            path: Vec::new(),
            message: format!("Expected object, received {}", type_name(&body)),
        }]);
    };
    let mut issues = Vec::new();
    let run_count = match obj.get("runCount") {
        None => {
            issues.push(issue("runCount", "Required".into()));
            None
        }
        Some(v) => match v.as_f64() {
            Some(n) if n.fract() == 0.0 => Some(n),
            Some(_) => {
                issues.push(issue("runCount", "Expected integer, received float".into()));
                None
            }
            None => {
                issues.push(issue("runCount", format!("Expected number, received {}", type_name(v))));
                None
            }
        },
    };
    let mut task_ids = Vec::new();
    match obj.get("taskIdentifiers") {
        None => issues.push(issue("taskIdentifiers", "Required".into())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => task_ids.push(s.to_owned()),
                    None => issues.push(Issue {
                        path: vec![PathSeg::Key("taskIdentifiers".into()), PathSeg::Index(i)],
                        message: format!("Expected string, received {}", type_name(item)),
                    }),
                }
            }
        }
        Some(other) => issues.push(issue("taskIdentifiers", format!("Expected array, received {}", type_name(other)))),
    }
    if let Some(v) = obj.get("idempotencyKey").filter(|v| !v.is_string()) {
        issues.push(issue("idempotencyKey", format!("Expected string, received {}", type_name(v))));
    }
    if !issues.is_empty() {
        return validation_error(&issues);
    }
    // `batchTrigger` on every task, or on the tasks or batches as a whole.
    if let Err(reply) = ctx.authorize_all(
        ScopeAction::BatchTrigger,
        &[ResourceType::Tasks, ResourceType::Batch],
        ResourceType::Tasks,
        &task_ids,
    ) {
        return reply;
    }
    let run_count = run_count.unwrap_or(0.0);
    if run_count <= 0.0 {
        return Reply::error(StatusCode::BAD_REQUEST, "runCount must be a positive integer");
    }
    if run_count > MAX_ITEMS as f64 {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            format!(
                "Batch runCount of {} exceeds maximum allowed of {MAX_ITEMS}.",
                crate::model::json_number(run_count)
            ),
        );
    }
    let stored = obj.get("idempotencyKey").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_owned);
    let user = obj.get("idempotencyKeyOptions").and_then(|o| o.get("key")).and_then(Value::as_str).map(str::to_owned);
    let ledger = &ctx.app.state().ledger;
    let env = ledger.env_or_create(ctx.key);
    let (batch, cached) =
        env.with(|st| st.create_batch(ledger, &env, run_count as u32, task_ids, stored.map(|s| (s, user)), ctx.now));
    let mut out = json!({ "id": batch.id, "runCount": batch.run_count, "isCached": cached });
    if let Some((stored, _)) = &batch.idempotency {
        out["idempotencyKey"] = json!(stored);
    }
    let browser = ctx.header("x-trigger-client") == Some("browser");
    let minted = ctx.principal.mint_for_batch(&ctx.app.state().environments, &batch.id, browser, ctx.now);
    Reply::json(StatusCode::ACCEPTED, &out).with_minted(minted)
}

/// `POST /api/v3/batches/{batchId}/items`.
pub fn items(ctx: &Ctx<'_>, id: &str) -> Reply {
    let ndjson = ctx
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-ndjson") || t.starts_with("application/ndjson"));
    if !ndjson {
        return Reply::error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/x-ndjson");
    }
    let ledger = &ctx.app.state().ledger;
    let Some(env) = ledger.env(ctx.key) else { return Reply::error(StatusCode::NOT_FOUND, "Batch not found") };
    let Some(sealed) = env.with(|st| st.batch_mut(id).map(|b| b.sealed)) else {
        return Reply::error(StatusCode::NOT_FOUND, "Batch not found");
    };
    if sealed {
        return Reply::json(
            StatusCode::OK,
            &json!({ "id": id, "itemsAccepted": 0, "itemsDeduplicated": 0, "sealed": true }),
        );
    }
    // Parse every line first: checking a payload may take an upload, under the environment's lock.
    let mut parsed = Vec::new();
    for line in ctx.body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(item) = serde_json::from_slice::<Value>(line) else {
            return Reply::error(StatusCode::BAD_REQUEST, "Invalid JSON");
        };
        let index = item.get("index").and_then(Value::as_u64);
        let task = item.get("task").and_then(Value::as_str).map(str::to_owned);
        let (Some(index), Some(task)) = (index, task) else {
            return Reply::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid item: `index` (a whole number) and `task` (a string) are required",
            );
        };
        let Ok(index) = u32::try_from(index) else {
            return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, format!("Invalid item index {index}"));
        };
        // Each item is authorized on its own, with the service's plain 403.
        if ctx
            .authorize_all(
                ScopeAction::BatchTrigger,
                &[ResourceType::Tasks, ResourceType::Batch],
                ResourceType::Tasks,
                std::slice::from_ref(&task),
            )
            .is_err()
        {
            return Reply::error(StatusCode::FORBIDDEN, "Unauthorized");
        }
        let mut body = Map::new();
        if let Some(p) = item.get("payload") {
            body.insert("payload".into(), p.clone());
        }
        if let Some(o) = item.get("options") {
            body.insert("options".into(), o.clone());
        }
        let one = match tasks::parse(ctx, &task, &Value::Object(body), true) {
            Ok(p) => p,
            Err(reply) => return Reply { status: StatusCode::UNPROCESSABLE_ENTITY, ..reply },
        };
        if let Some(reply) = tasks::refuse(&one) {
            return Reply { status: StatusCode::UNPROCESSABLE_ENTITY, ..reply };
        }
        parsed.push((index, one));
    }
    let world = ctx.world;
    let (accepted, deduplicated, made, sealed, enqueued, expected) = env.with(|st| {
        let (mut accepted, mut deduplicated, mut made) = (0u32, 0u32, Vec::new());
        for (index, mut one) in parsed {
            let (seen, run_count) = match st.batch_mut(id) {
                Some(b) => (b.runs.contains_key(&index), b.run_count),
                None => break,
            };
            if seen || index >= run_count {
                deduplicated += u32::from(seen);
                continue;
            }
            one.new.batch_id = Some(id.to_owned());
            let task = world.task(&one.new.task);
            let done = st.trigger(ledger, &env, task, one.new, TriggerFunction::BatchTrigger, ctx.now);
            if let Some(b) = st.batch_mut(id) {
                b.runs.insert(index, done.id.clone());
                b.updated_at = ctx.now;
            }
            accepted += 1;
            made.push(done.id);
        }
        let (sealed, enqueued, expected) = match st.batch_mut(id) {
            Some(b) => {
                b.sealed = b.runs.len() as u32 >= b.run_count;
                (b.sealed, b.runs.len(), b.run_count)
            }
            None => (false, 0, 0),
        };
        (accepted, deduplicated, made, sealed, enqueued, expected)
    });
    let mut out = json!({ "id": id, "itemsAccepted": accepted, "itemsDeduplicated": deduplicated, "sealed": sealed });
    if !sealed {
        out["enqueuedCount"] = json!(enqueued);
        out["expectedCount"] = json!(expected);
    }
    Reply::json(StatusCode::OK, &out).touching(made)
}

/// `GET /api/v2/batches/{batchId}`.
pub fn retrieve(ctx: &Ctx<'_>, id: &str) -> Reply {
    let ledger = &ctx.app.state().ledger;
    let found = ledger.env(ctx.key).and_then(|env| env.with(|st| st.batch_mut(id).cloned()));
    let Some(b) = found else {
        return Reply::error(StatusCode::NOT_FOUND, "Not found").with_header("x-should-retry", "false");
    };
    // A loader route: the 404 comes first, then `read:batch:<id>` or `read:runs`.
    if let Err(reply) =
        ctx.authorize(ScopeAction::Read, &[Resource::batch(id), Resource::collection(ResourceType::Runs)])
    {
        return reply;
    }
    let runs: Vec<&String> = b.runs.values().collect();
    let mut out = json!({
        "id": b.id,
        "status": if b.sealed { "COMPLETED" } else { "PENDING" },
        "createdAt": b.created_at,
        "updatedAt": b.updated_at,
        "runCount": b.run_count,
        "runs": runs,
        "processing": if b.sealed { json!({ "completedAt": b.updated_at, "errors": [] }) } else { json!({ "errors": [] }) },
    });
    if let Some((stored, user)) = &b.idempotency {
        out["idempotencyKey"] = json!(user.as_ref().unwrap_or(stored));
    }
    Reply::json(StatusCode::OK, &out)
}
