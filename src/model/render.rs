//! Rendering a [`Run`] as the body of `GET /api/v3/runs/{runId}`.
//!
//! The wire structs borrow from the run and serialise straight to bytes; no
//! `serde_json::Value` tree is built. Field order follows the real server.

use super::run::{Run, Schedule, SerializedError, TriggerFunction};
use super::status::{ApiStatus, ApiVersion};
use crate::time::Millis;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// What a request decides about the rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Which status vocabulary the client sees.
    pub version: ApiVersion,
    /// Development environments are not billed: costs render as 0.
    pub zero_costs: bool,
    /// A public API key gets no payload, output or presigned URLs.
    pub hide_packets: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CommonFields<'a> {
    id: &'a str,
    status: ApiStatus,
    task_identifier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    is_queued: bool,
    is_executing: bool,
    is_waiting: bool,
    is_completed: bool,
    is_success: bool,
    is_failed: bool,
    is_cancelled: bool,
    is_test: bool,
    created_at: Millis,
    updated_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delayed_until: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_at: Option<Millis>,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(serialize_with = "js_number")]
    cost_in_cents: f64,
    #[serde(serialize_with = "js_number")]
    base_cost_in_cents: f64,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    depth: u32,
    trigger_function: TriggerFunction,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_id: Option<&'a str>,
}

impl<'a> CommonFields<'a> {
    fn of(run: &'a Run, opts: RenderOptions) -> Self {
        let status = run.status.render(opts.version);
        let flags = status.flags();
        let cost = |c: f64| if opts.zero_costs { 0.0 } else { c };
        CommonFields {
            id: &run.id,
            status,
            task_identifier: &run.task_identifier,
            idempotency_key: run.idempotency_key.as_deref(),
            version: run.version.as_deref(),
            is_queued: flags.is_queued,
            is_executing: flags.is_executing,
            is_waiting: flags.is_waiting,
            is_completed: flags.is_completed,
            is_success: flags.is_success,
            is_failed: flags.is_failed,
            is_cancelled: flags.is_cancelled,
            is_test: run.is_test,
            created_at: run.created_at,
            updated_at: run.updated_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            delayed_until: run.delayed_until,
            ttl: run.ttl.as_deref(),
            expired_at: run.expired_at,
            tags: &run.tags,
            metadata: run.metadata.as_ref(),
            cost_in_cents: cost(run.cost_in_cents),
            base_cost_in_cents: cost(run.base_cost_in_cents),
            duration_ms: run.duration_ms,
            region: run.region.as_deref(),
            depth: run.depth,
            trigger_function: run.trigger_function,
            batch_id: run.batch_id.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct RelatedRuns<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<CommonFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<CommonFields<'a>>,
    children: Children<'a>,
}

/// The children of a body: rendered now, or copied from a rendering made
/// when the server started.
#[derive(Serialize)]
#[serde(untagged)]
enum Children<'a> {
    Runs(Vec<CommonFields<'a>>),
    Rendered(&'a RawValue),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetrieveBody<'a> {
    #[serde(flatten)]
    common: CommonFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_presigned_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_presigned_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a SerializedError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<&'a Schedule>,
    related_runs: RelatedRuns<'a>,
    attempt_count: u32,
    /// Always empty: the server stopped filling it, and v3 SDKs require it.
    attempts: [(); 0],
}

/// Serialises a float as `JSON.stringify` does: whole numbers without a
/// fraction (`0`, not `0.0`).
fn js_number<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    match json_number(*x) {
        Value::Number(n) => n.serialize(s),
        _ => s.serialize_unit(),
    }
}

/// A JSON number as JavaScript would print it: integral values become
/// integers. Non-finite values (which JSON cannot hold) become `null`.
pub fn json_number(x: f64) -> Value {
    const SAFE: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() < SAFE {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// How serde_json writes byte `b` of a string: as it is (`None`), or as
/// this escape (`None` inside: `\u00XX`, for a control character with no
/// short escape).
fn escape(b: u8) -> Option<Option<&'static str>> {
    match b {
        b'"' => Some(Some("\\\"")),
        b'\\' => Some(Some("\\\\")),
        b'\n' => Some(Some("\\n")),
        b'\r' => Some(Some("\\r")),
        b'\t' => Some(Some("\\t")),
        0x08 => Some(Some("\\b")),
        0x0c => Some(Some("\\f")),
        0..=0x1f => Some(None),
        _ => None,
    }
}

/// Writes `prefix` and `text` as one JSON string, escaped as serde_json
/// escapes them.
pub fn push_json_str(out: &mut String, prefix: &str, text: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for part in [prefix, text] {
        // Runs of characters that need no escape are copied whole.
        let mut rest = part;
        while let Some(at) = rest.bytes().position(|b| escape(b).is_some()) {
            out.push_str(&rest[..at]);
            let b = rest.as_bytes()[at];
            match escape(b).flatten() {
                Some(short) => out.push_str(short),
                None => {
                    let _ = write!(out, "\\u{b:04x}");
                }
            }
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
    }
    out.push('"');
}

/// The length of `s` written as a JSON string (quotes and escapes included),
/// without writing it.
pub fn json_string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match escape(b) {
            None => 1,
            Some(Some(_)) => 2,
            Some(None) => 6,
        })
        .sum::<usize>()
}

/// The presigned URLs of a run's offloaded packets, signed for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketUrls<'a> {
    pub payload: Option<&'a str>,
    pub output: Option<&'a str>,
}

/// Renders `run` as the retrieve-run body. `related` looks up the runs named
/// by the run's root, parent and children; ids it cannot find are left out.
pub fn render<'a>(
    run: &'a Run,
    opts: RenderOptions,
    related: impl Fn(&str) -> Option<&'a Run>,
    urls: PacketUrls<'a>,
) -> impl Serialize + 'a {
    render_with(run, opts, related, urls, None)
}

/// The `relatedRuns.children` array of `run`'s body, rendered once: it
/// depends only on the API version and the costs of `opts`, and a body
/// made with it by [`render_json_with`] is the body [`render_json`] makes.
pub fn render_children<'a>(
    run: &'a Run,
    opts: RenderOptions,
    related: impl Fn(&str) -> Option<&'a Run>,
) -> Option<Box<RawValue>> {
    let children: Vec<CommonFields<'_>> =
        run.child_ids.iter().filter_map(|id| related(id)).map(|r| CommonFields::of(r, opts)).collect();
    // Borrowed structs with string keys and finite numbers always serialise;
    // were one not to, the body would render its children itself.
    serde_json::value::to_raw_value(&children).ok()
}

fn render_with<'a>(
    run: &'a Run,
    opts: RenderOptions,
    related: impl Fn(&str) -> Option<&'a Run>,
    urls: PacketUrls<'a>,
    children: Option<&'a RawValue>,
) -> impl Serialize + 'a {
    let related_of = |id: &Option<String>| id.as_deref().and_then(&related).map(|r| CommonFields::of(r, opts));
    let children = match children {
        Some(rendered) => Children::Rendered(rendered),
        None => Children::Runs(
            run.child_ids.iter().filter_map(|id| related(id)).map(|r| CommonFields::of(r, opts)).collect(),
        ),
    };
    RetrieveBody {
        common: CommonFields::of(run, opts),
        payload: run.payload.as_ref().filter(|_| !opts.hide_packets),
        payload_presigned_url: urls.payload.filter(|_| !opts.hide_packets),
        output: run.output.as_ref().filter(|_| !opts.hide_packets),
        output_presigned_url: urls.output.filter(|_| !opts.hide_packets),
        error: run.error.as_ref(),
        schedule: run.schedule.as_ref(),
        related_runs: RelatedRuns { root: related_of(&run.root_id), parent: related_of(&run.parent_id), children },
        attempt_count: run.attempt_count,
        attempts: [],
    }
}

/// The environment a list item names.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ListEnv<'a> {
    pub id: &'a str,
    /// The environment's slug: `dev`, `stg`, `preview` or `prod`.
    pub name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListItem<'a> {
    #[serde(flatten)]
    common: CommonFields<'a>,
    env: ListEnv<'a>,
    task_kind: &'static str,
}

/// Renders `run` as an item of `GET /api/v1/runs`: the same common fields
/// as retrieve but the trigger function and batch (the list shows the stored
/// idempotency key, `stored_key`), plus the environment and the task kind.
pub fn render_list_item(run: &Run, opts: RenderOptions, stored_key: Option<&str>, env: ListEnv<'_>) -> Value {
    let mut common = CommonFields::of(run, opts);
    common.idempotency_key = stored_key.filter(|k| !k.is_empty());
    let mut item = serde_json::to_value(ListItem { common, env, task_kind: "STANDARD" }).unwrap_or(Value::Null);
    // The list presenter sends neither.
    if let Value::Object(fields) = &mut item {
        fields.remove("triggerFunction");
        fields.remove("batchId");
    }
    item
}

/// [`render`] straight to JSON bytes.
pub fn render_json<'a>(
    run: &'a Run,
    opts: RenderOptions,
    related: impl Fn(&str) -> Option<&'a Run>,
    urls: PacketUrls<'a>,
) -> Vec<u8> {
    render_json_with(run, opts, related, urls, None)
}

/// [`render_json`], with the children array given already rendered (by
/// [`render_children`] for the same version and costs): the cost of the body
/// no longer grows with the work of rendering each child.
pub fn render_json_with<'a>(
    run: &'a Run,
    opts: RenderOptions,
    related: impl Fn(&str) -> Option<&'a Run>,
    urls: PacketUrls<'a>,
    children: Option<&'a RawValue>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + children.map_or(0, |c| c.get().len()));
    // Serialising these borrowed structs cannot fail: every map key is a string
    // and every number is finite (costs come from finite arithmetic).
    if serde_json::to_writer(&mut out, &render_with(run, opts, related, urls, children)).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for text in ["", "plain", "q\"\\\n\r\t\u{8}\u{c}", "\u{1}\u{1f}\u{7f}", "é€😀", "</script>"] {
            let mut out = String::new();
            push_json_str(&mut out, "read:", text);
            assert_eq!(out, serde_json::to_string(&format!("read:{text}")).unwrap());
        }
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        assert_eq!(json_number(0.0).to_string(), "0");
        assert_eq!(json_number(-0.0).to_string(), "0");
        assert_eq!(json_number(3.0).to_string(), "3");
        assert_eq!(json_number(0.00292).to_string(), "0.00292");
        assert_eq!(json_number(f64::NAN), Value::Null);
    }
}
