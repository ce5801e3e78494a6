//! `POST /api/v1/tasks/{taskId}/trigger`: checks the body as the server's
//! schema does (its exact 400, 413 and 422 bodies), turns the payload packet
//! into the run's payload, and creates the run in the caller's environment
//! with the behaviour the scenario gives the task (or the default one).
//!
//! The checks of one trigger body are shared with batch items, which carry
//! the same options.

use super::reply::{At, Ctx, Issue, PathSeg, Reply, json_body, type_name, validation_error};
use crate::auth::Environment;
use crate::ledger::{IdempotencyKey, NewRun};
use crate::model::TriggerFunction;
use crate::packet::{Content, Offload, Packet, PacketType, UrlBehaviour};
use crate::scope::{Action as ScopeAction, Resource};
use crate::time::{Millis, duration_string};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// `TASK_PAYLOAD_MAXIMUM_SIZE`: the largest trigger body, 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// `MAX_TAGS_PER_RUN`.
pub const MAX_TAGS: usize = 10;
/// `TASK_RUN_METADATA_MAXIMUM_SIZE`: 256 KiB.
pub const MAX_METADATA: usize = 256 * 1024;
/// The TTL a development environment gives a run that sets none.
pub const DEV_TTL: &str = "10m";
/// [`DEV_TTL`] in milliseconds.
pub const DEV_TTL_MS: i64 = 600_000;
/// The TTL of a run that sets none: [`DEV_TTL`] in a development
/// environment, none elsewhere; as shown and in milliseconds.
pub fn default_ttl(ctx: &Ctx<'_>) -> Option<(Cow<'static, str>, i64)> {
    (ctx.kind.environment() == Environment::Development).then_some((Cow::Borrowed(DEV_TTL), DEV_TTL_MS))
}

/// How long an idempotency key deduplicates by default: 30 days.
const DEFAULT_KEY_TTL_MS: i64 = 30 * 24 * 3_600_000;

/// The machine presets.
pub const MACHINES: [&str; 7] = ["micro", "small-1x", "small-2x", "medium-1x", "medium-2x", "large-1x", "large-2x"];

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_owned())
}

/// Checks against the trigger schema, collecting zod's issues in its order.
struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn issue(&mut self, path: &At<'_>, message: impl Into<String>) {
        self.issues.push(Issue { path: path.path(), message: message.into() });
    }

    fn expected(&mut self, path: &At<'_>, expected: &str, v: &Value) {
        self.issue(path, format!("Expected {expected}, received {}", type_name(v)));
    }

    /// A union of alternatives that all failed on type: zod-validation-error
    /// joins each alternative's message with `, or `.
    fn union(&mut self, path: &At<'_>, expected: &[&str], v: &Value) {
        let at = |e: &str| Issue { path: path.path(), message: format!("Expected {e}, received {}", type_name(v)) };
        let text: Vec<String> = expected.iter().map(|e| at(e).text()).collect();
        // Already joined: the path is part of each alternative.
        self.issues.push(Issue { path: Vec::new(), message: text.join(", or ") });
    }

    fn string(&mut self, path: &At<'_>, v: &Value, max: Option<(usize, &str)>) {
        match v {
            Value::String(s) => {
                if let Some((max, message)) = max
                    && s.chars().count() > max
                {
                    self.issue(path, message);
                }
            }
            _ => self.expected(path, "string", v),
        }
    }

    fn int(&mut self, path: &At<'_>, v: &Value, min: Option<f64>) {
        match v.as_f64() {
            None => self.expected(path, "number", v),
            Some(n) if n.fract() != 0.0 => self.issue(path, "Expected integer, received float"),
            Some(n) => {
                if let Some(min) = min
                    && n < min
                {
                    self.issue(
                        path,
                        format!("Number must be greater than or equal to {}", crate::model::json_number(min)),
                    );
                }
            }
        }
    }

    fn number(&mut self, path: &At<'_>, v: &Value) {
        if !v.is_number() {
            self.expected(path, "number", v);
        }
    }

    fn boolean(&mut self, path: &At<'_>, v: &Value) {
        if !v.is_boolean() {
            self.expected(path, "boolean", v);
        }
    }

    fn enumeration(&mut self, path: &At<'_>, v: &Value, values: &[&str]) {
        let options = || values.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(" | ");
        match v {
            Value::String(s) if values.contains(&s.as_str()) => {}
            Value::String(s) => self.issue(path, format!("Invalid enum value. Expected {}, received '{s}'", options())),
            _ => self.expected(path, &options(), v),
        }
    }
}

/// Checks the `options` of a trigger body (or a batch item) at `base`.
fn check_options(c: &mut Checker, base: &At<'_>, options: &Map<String, Value>) {
    for (k, v) in options {
        let path = base.key(k);
        match k.as_str() {
            "parentRunId" | "lockToVersion" | "payloadType" | "metadataType" | "idempotencyKeyTTL" | "region"
            | "bulkActionId" => c.string(&path, v, None),
            "externalDeploymentId" => c.string(&path, v, Some((128, "String must contain at most 128 character(s)"))),
            "idempotencyKey" => c.string(&path, v, Some((2048, "idempotencyKey must be 2048 characters or less"))),
            "resumeParentOnCompletion" | "test" => c.boolean(&path, v),
            "queue" => match v {
                Value::Object(q) => match q.get("name") {
                    Some(name) => c.string(&path.key("name"), name, None),
                    None => c.issue(&path.key("name"), "Required"),
                },
                _ => c.expected(&path, "object", v),
            },
            "concurrencyKey" if !(v.is_string() || v.is_number()) => c.union(&path, &["string", "number"], v),
            "delay" if !(v.is_string() || v.is_number()) => c.union(&path, &["string", "date"], v),
            "idempotencyKeyOptions" => match v {
                Value::Object(o) => {
                    let kp = path.key("key");
                    match o.get("key") {
                        Some(k) => c.string(&kp, k, None),
                        None => c.issue(&kp, "Required"),
                    }
                    let sp = path.key("scope");
                    match o.get("scope") {
                        Some(s) => c.enumeration(&sp, s, &["run", "attempt", "global"]),
                        None => c.issue(&sp, "Required"),
                    }
                }
                _ => c.expected(&path, "object", v),
            },
            "machine" => c.enumeration(&path, v, &MACHINES),
            "maxAttempts" => c.int(&path, v, None),
            "payloadSize" => c.int(&path, v, Some(0.0)),
            "maxDuration" | "priority" => c.number(&path, v),
            "tags" => match v {
                Value::String(s) => {
                    if s.chars().count() > 128 {
                        c.issue(&path, "Tags must be less than 128 characters");
                    }
                }
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let ip = path.index(i);
                        c.string(&ip, item, Some((128, "Tags must be less than 128 characters")));
                    }
                }
                _ => c.union(&path, &["string", "array"], v),
            },
            "ttl" => match v {
                Value::String(_) => {}
                Value::Number(_) => c.int(&path, v, Some(0.0)),
                _ => c.union(&path, &["string", "number"], v),
            },
            "concurrency" => match v {
                Value::Array(items) => {
                    if items.len() > 2 {
                        c.issue(&path, "Array must contain at most 2 element(s)");
                    }
                    for (i, item) in items.iter().enumerate() {
                        c.string(&path.index(i), item, None);
                    }
                }
                _ => c.expected(&path, "array", v),
            },
            "gates" if !v.is_array() => c.expected(&path, "array", v),
            "debounce" => match v {
                Value::Object(d) => {
                    let kp = path.key("key");
                    match d.get("key") {
                        Some(k) => c.string(&kp, k, Some((512, "String must contain at most 512 character(s)"))),
                        None => c.issue(&kp, "Required"),
                    }
                }
                _ => c.expected(&path, "object", v),
            },
            // metadata and context are `any`; unknown keys are stripped.
            _ => {}
        }
    }
}

/// A checked trigger (or batch item): what becomes a run.
pub struct Parsed {
    pub new: NewRun,
    /// The raw tag count, for the 10-tag rule.
    pub tag_count: usize,
    pub metadata_bytes: usize,
}

/// A duration as the server's `parseNaturalLanguageDuration` reads it:
/// `^(\d+(w|d|hr|h|m|s))+$`, in milliseconds.
pub fn natural_duration_ms(text: &str) -> Option<i64> {
    let normalised = if text.contains("hr") { Cow::Owned(text.replace("hr", "h")) } else { Cow::Borrowed(text) };
    if normalised.is_empty() || normalised.contains(|c: char| !(c.is_ascii_digit() || "wdhms".contains(c))) {
        return None;
    }
    crate::time::parse_duration(&normalised).and_then(|s| i64::try_from(s).ok()?.checked_mul(1000))
}

/// What a `delay` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// No delay: none given, unparsable, or in the past (silently, as on the server).
    Now,
    /// Run from this instant on.
    Until(Millis),
    /// An instant no date can hold (past the year 9999): `Invalid delay`.
    Invalid,
}

/// The instant a `delay` names: a date (ISO string or epoch ms) or a
/// duration from `now`.
pub fn delay_of(v: &Value, now: Millis) -> Delay {
    let at = match v {
        Value::Number(n) => {
            n.as_f64().filter(|f| f.is_finite()).map(|f| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
        }
        Value::String(s) => match natural_duration_ms(s) {
            Some(ms) => Some(now.0.saturating_add(ms)),
            None => Millis::parse_rfc3339(s).ok().map(|m| m.0),
        },
        _ => None,
    };
    match at {
        Some(at) if at > crate::clock::LATEST.0 => Delay::Invalid,
        Some(at) if at > now.0 => Delay::Until(Millis(at)),
        _ => Delay::Now,
    }
}

/// The instant a `delay` names, when it is in the future and valid.
pub fn delay_until(v: &Value, now: Millis) -> Option<Millis> {
    match delay_of(v, now) {
        Delay::Until(at) => Some(at),
        Delay::Now | Delay::Invalid => None,
    }
}

/// A trigger's payload as the run holds it: inline (a value, or the JSON
/// text the request carried), or a packet.
#[derive(Debug, Default)]
pub struct TriggerPayload {
    pub value: Option<Value>,
    pub json: Option<Box<str>>,
    pub packet: Option<Arc<Packet>>,
}

/// True when JSON `text` can only be an object: what a derived struct reads
/// directly (it would also read an array as its fields in order).
fn is_object_text(text: &[u8]) -> bool {
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The JSON a `payloadType` string shows inline, without building it: the
/// `json` part of SuperJSON, or JSON text itself. None for anything else
/// (text, a SuperJSON string that is not SuperJSON, an empty string),
/// which takes the general way.
fn inline_json<'a>(payload_type: &str, text: &'a str) -> Option<&'a str> {
    #[derive(serde::Deserialize)]
    struct SuperJson<'a> {
        #[serde(borrow)]
        json: Option<&'a serde_json::value::RawValue>,
    }
    match payload_type {
        "application/super+json" if is_object_text(text.as_bytes()) => {
            let parsed: SuperJson<'a> = serde_json::from_str(text).ok()?;
            Some(parsed.json.map_or("null", serde_json::value::RawValue::get))
        }
        "application/super+json" | "application/store" | "text/plain" => None,
        _ => serde_json::from_str::<&'a serde_json::value::RawValue>(text).ok().map(serde_json::value::RawValue::get),
    }
}

/// The payload of a trigger as the run holds it: inline, or a packet.
pub fn payload_of(ctx: &Ctx<'_>, payload: Option<&Value>, payload_type: Option<&str>) -> Result<TriggerPayload, Reply> {
    let Some(payload) = payload else { return Ok(TriggerPayload::default()) };
    let threshold = ctx.app.state().settings.offload_threshold;
    let packet = |kind: PacketType, bytes: Bytes| Packet {
        kind,
        content: Content::Bytes(bytes),
        offload: Offload::Auto,
        url: UrlBehaviour::Valid,
    };
    let payload_type = payload_type.unwrap_or("application/json");
    if let Value::String(text) = payload
        && (text.len() as u64) < threshold
        && let Some(json) = inline_json(payload_type, text)
    {
        // What the SDK sends, shown inline: its JSON text, kept as it came.
        return Ok(TriggerPayload { json: Some(json.into()), ..TriggerPayload::default() });
    }
    let made = match (payload_type, payload) {
        ("application/store", Value::String(path)) if !path.is_empty() => {
            let env = ctx.app.state().ledger.env_or_create(ctx.key);
            let uploaded = env.with(|st| st.take_upload(path));
            // A path nobody uploaded is stored anyway: its URL answers 404, as S3 would.
            let packet = uploaded.unwrap_or_else(|| {
                Arc::new(Packet {
                    kind: PacketType::Json,
                    content: Content::Bytes(Bytes::new()),
                    offload: Offload::Always,
                    url: UrlBehaviour::NotFound,
                })
            });
            return Ok(TriggerPayload { packet: Some(packet), ..TriggerPayload::default() });
        }
        ("application/store", _) => {
            return Err(validation_error(&[Issue {
                path: vec![key("payload")],
                message: "payload must be a non-empty string when payloadType is application/store".into(),
            }]));
        }
        ("application/super+json", Value::String(text)) => packet(PacketType::SuperJson, Bytes::from(text.clone())),
        ("text/plain", Value::String(text)) => packet(PacketType::Text, Bytes::from(text.clone())),
        (_, Value::String(text)) if serde_json::from_str::<Value>(text).is_ok() => {
            packet(PacketType::Json, Bytes::from(text.clone()))
        }
        (_, Value::String(text)) => packet(PacketType::Text, Bytes::from(text.clone())),
        (_, other) => packet(PacketType::Json, Bytes::from(other.to_string())),
    };
    if made.offloaded(threshold) {
        return Ok(TriggerPayload { packet: Some(Arc::new(made)), ..TriggerPayload::default() });
    }
    // A SuperJSON string that is not SuperJSON is shown as the text it is.
    let value = made
        .inline_value()
        .unwrap_or_else(|_| made.read_all().ok().map(|b| Value::String(String::from_utf8_lossy(&b).into_owned())));
    Ok(TriggerPayload { value, ..TriggerPayload::default() })
}

/// Checks a trigger body (or, with `item`, a batch item) and builds the run
/// it asks for. The request's idempotency headers apply to a trigger only.
pub fn parse(ctx: &Ctx<'_>, task: &str, body: &Value, item: bool) -> Result<Parsed, Reply> {
    let Value::Object(obj) = body else {
        let mut c = Checker { issues: Vec::new() };
        c.expected(&At::ROOT, "object", body);
        return Err(validation_error(&c.issues));
    };
    parse_members(ctx, task, obj.get("payload"), obj.get("options"), item)
}

/// The members of a trigger body that [`parse`] reads; the others are
/// ignored, as the server's schema strips them.
#[derive(serde::Deserialize)]
struct Members {
    #[serde(default, deserialize_with = "present")]
    payload: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    options: Option<Value>,
}

/// A member that is there, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

impl Members {
    /// The members of a body that is one JSON object with each of them at
    /// most once, read without building the object; none otherwise (an
    /// array, a repeated member), which the general way answers.
    fn read(body: &[u8]) -> Option<Members> {
        if !is_object_text(body) {
            return None;
        }
        serde_json::from_slice(body).ok()
    }
}

/// The options a trigger reads.
const READ: [&str; 12] = [
    "tags",
    "ttl",
    "metadata",
    "idempotencyKey",
    "idempotencyKeyTTL",
    "idempotencyKeyOptions",
    "delay",
    "payloadType",
    "lockToVersion",
    "region",
    "machine",
    "queue",
];

/// [`parse`] of a body's `payload` and `options`.
fn parse_members(
    ctx: &Ctx<'_>,
    task: &str,
    payload: Option<&Value>,
    options: Option<&Value>,
    item: bool,
) -> Result<Parsed, Reply> {
    let base = At::ROOT;
    let header = |name: &str| if item { None } else { ctx.header(name) };
    let mut c = Checker { issues: Vec::new() };
    let empty = Map::new();
    let options = match options {
        None => &empty,
        Some(Value::Object(o)) => o,
        Some(other) => {
            c.expected(&base.key("options"), "object", other);
            return Err(validation_error(&c.issues));
        }
    };
    check_options(&mut c, &base.key("options"), options);
    if !c.issues.is_empty() {
        return Err(validation_error(&c.issues));
    }
    // Found in one pass: a lookup by name hashes the name each time.
    let mut found = [None; READ.len()];
    for (k, v) in options {
        if let Some(i) = READ.iter().position(|name| name == k) {
            found[i] = Some(v);
        }
    }
    let opt = |k: &str| {
        debug_assert!(READ.contains(&k), "{k} is not in READ");
        READ.iter().position(|name| *name == k).and_then(|i| found[i])
    };
    let text = |k: &str| opt(k).and_then(Value::as_str).map(str::to_owned);
    let now = ctx.now;
    let tags: Vec<String> = match opt("tags") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let tag_count = tags.len();
    let tags = tags.into_iter().filter(|t| !t.trim().is_empty()).collect();
    let ttl = match opt("ttl") {
        Some(Value::Number(n)) => n.as_u64().map(|s| (duration_string(s).into(), (s as i64).saturating_mul(1000))),
        Some(Value::String(s)) => Some((s.clone().into(), natural_duration_ms(s).unwrap_or(0))),
        _ => default_ttl(ctx),
    }
    .map(|(s, ms)| (s, if ms > 0 { ms } else { i64::MAX }));
    let metadata_bytes = opt("metadata").map_or(0, |m| m.to_string().len());
    let metadata = match opt("metadata") {
        Some(Value::Object(m)) => Some(m.clone()),
        Some(Value::String(s)) => serde_json::from_str::<Map<String, Value>>(s).ok(),
        _ => None,
    };
    // The headers win over the body's keys, as on the server.
    let stored_key = header("idempotency-key").map(str::to_owned).or_else(|| text("idempotencyKey"));
    let key_ttl = header("idempotency-key-ttl").map(str::to_owned).or_else(|| text("idempotencyKeyTTL"));
    let idempotency = stored_key.filter(|k| !k.is_empty()).map(|stored| {
        let user = opt("idempotencyKeyOptions")
            .and_then(|o| o.get("key"))
            .and_then(Value::as_str)
            .map_or_else(|| stored.clone(), str::to_owned);
        let ttl_ms = key_ttl.as_deref().and_then(key_ttl_ms).unwrap_or(DEFAULT_KEY_TTL_MS);
        IdempotencyKey { stored, user, expires_at: now.plus(ttl_ms) }
    });
    if let Some(d) = opt("delay")
        && delay_of(d, now) == Delay::Invalid
    {
        let shown = d.as_str().map_or_else(|| d.to_string(), str::to_owned);
        return Err(Reply::error(StatusCode::UNPROCESSABLE_ENTITY, format!("Invalid delay {shown}")));
    }
    let payload = payload_of(ctx, payload, opt("payloadType").and_then(Value::as_str))?;
    let new = NewRun {
        task: task.to_owned(),
        payload: payload.value,
        payload_json: payload.json,
        payload_packet: payload.packet,
        delay_until: opt("delay").and_then(|d| delay_until(d, now)),
        ttl,
        tags,
        metadata,
        version: text("lockToVersion"),
        region: text("region"),
        machine: text("machine"),
        queue: opt("queue").and_then(|q| q.get("name")).and_then(Value::as_str).map(str::to_owned),
        idempotency,
        request_key: header("x-trigger-request-idempotency-key").map(|k| k.chars().take(256).collect()),
        batch_id: None,
        one_time_token: None,
    };
    Ok(Parsed { new, tag_count, metadata_bytes })
}

/// `idempotencyKeyTTL`: only `^\d+[smhd]$` counts; anything else is ignored.
fn key_ttl_ms(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let size = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(size)
}

/// The 422 and 413 a parsed trigger can still get.
pub fn refuse(parsed: &Parsed) -> Option<Reply> {
    if parsed.tag_count > MAX_TAGS {
        return Some(Reply::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Runs can only have {MAX_TAGS} tags, you're trying to set {}.", parsed.tag_count),
        ));
    }
    if parsed.metadata_bytes > MAX_METADATA {
        return Some(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Metadata exceeds maximum size of {MAX_METADATA} bytes"),
        ));
    }
    None
}

/// `POST /api/v1/tasks/{taskId}/trigger`.
pub fn trigger(ctx: &Ctx<'_>, raw_task: &str) -> Reply {
    let task = crate::excerpt::percent_decoded(raw_task);
    if task.is_empty() {
        return Reply::error(StatusCode::BAD_REQUEST, "Params Error");
    }
    // An SDK's body is read member by member; anything else the general way.
    let parsed = match Members::read(&ctx.body) {
        Some(m) => parse_members(ctx, &task, m.payload.as_ref(), m.options.as_ref(), false),
        None => json_body(&ctx.body).and_then(|body| parse(ctx, &task, &body, false)),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    if let Err(reply) = ctx.authorize(ScopeAction::Trigger, &[Resource::task(&task)]) {
        return reply;
    }
    if let Some(reply) = refuse(&parsed) {
        return reply;
    }
    let state = ctx.app.state();
    let behaviour = ctx.world.task(&task);
    let mut new = parsed.new;
    new.one_time_token = ctx.principal.token().filter(|t| t.one_time_use).map(|t| t.fingerprint);
    let hub = &state.hub;
    let done =
        state.ledger.trigger_stamped(ctx.key, behaviour, new, TriggerFunction::Trigger, ctx.now, |id, tags, batch| {
            hub.changed(ctx.key, id, tags, batch);
        });
    if done.token_spent {
        return Reply::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Cannot trigger {task} with a one-time use token as it has already been used."),
        );
    }
    let minted = ctx.principal.mint_for_trigger(&state.environments, &done.id, ctx.now);
    // `{"id":…,"isCached":…}`, written directly: one per trigger.
    // Exactly its length when the id needs no escape and the run is new: it
    // becomes the body without a copy.
    let mut body = String::with_capacity(26 + done.id.len());
    body.push_str("{\"id\":");
    crate::model::push_json_str(&mut body, "", &done.id);
    body.push_str(if done.is_cached { ",\"isCached\":true}" } else { ",\"isCached\":false}" });
    let reply = Reply::bytes(StatusCode::OK, body).with_minted(minted).touching([done.id]);
    Reply { stamped: true, ..reply }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_the_server_reads_them() {
        assert_eq!(natural_duration_ms("2h30m"), Some(9_000_000));
        assert_eq!(natural_duration_ms("1hr"), Some(3_600_000));
        assert_eq!(natural_duration_ms("banana"), None);
        assert_eq!(natural_duration_ms(DEV_TTL), Some(DEV_TTL_MS));
        assert_eq!(natural_duration_ms(""), None);
        assert_eq!(key_ttl_ms("1h"), Some(3_600_000));
        assert_eq!(key_ttl_ms("1h30m"), None);
        assert_eq!(key_ttl_ms("h"), None);
        assert_eq!(key_ttl_ms(""), None);
    }

    #[test]
    fn an_inline_payload_kept_as_text_reads_as_the_packet_would() {
        let cases = [
            ("application/super+json", r#"{"json":{"n":1,"s":"a\u0041"},"meta":{"values":{}}}"#),
            ("application/super+json", r#" { "json" : [1, 2.50, 1e3, null] } "#),
            ("application/super+json", r#"{"json":null}"#),
            ("application/super+json", r#"{"meta":{}}"#),
            ("application/json", r#" {"a": {"b": [true, false]}} "#),
            ("application/json", "12"),
            ("application/json", r#""text""#),
        ];
        for (kind, text) in cases {
            let json = inline_json(kind, text).unwrap_or_else(|| panic!("{kind} {text}"));
            let kind = if kind == "application/json" { PacketType::Json } else { PacketType::SuperJson };
            let packet = Packet {
                kind,
                content: Content::Bytes(Bytes::from(text.to_owned())),
                offload: Offload::Auto,
                url: UrlBehaviour::Valid,
            };
            let shown: Value = serde_json::from_str(json).unwrap();
            assert_eq!(Some(shown), packet.inline_value().unwrap(), "{text}");
        }
        // What the general way handles: text, not SuperJSON, not JSON, an empty string.
        for (kind, text) in [
            ("text/plain", "{}"),
            ("application/super+json", "[1]"),
            ("application/super+json", r#"{"json":1,"json":2}"#),
            ("application/json", "{"),
            ("application/json", ""),
            ("application/store", "a/b"),
        ] {
            assert_eq!(inline_json(kind, text), None, "{kind} {text}");
        }
    }

    #[test]
    fn members_read_directly_are_the_members_of_the_object() {
        let read = [
            "{}",
            r#"{"payload":1}"#,
            r#" {"options":null} "#,
            r#"{"payload":null,"options":{"b":1,"a":[2]},"context":{"x":[{}]}}"#,
            r#"{"context":1,"context":2,"payload":"{\"json\":1}"}"#,
        ];
        for text in read {
            let m = Members::read(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            let Ok(Value::Object(o)) = json_body(&Bytes::from(text)) else { panic!("{text}") };
            assert_eq!((m.payload.as_ref(), m.options.as_ref()), (o.get("payload"), o.get("options")), "{text}");
        }
        // Left to the general way: not an object, a member twice, not JSON.
        for text in ["[1,2]", "1", r#"{"payload":1,"payload":2}"#, r#"{"a":1} x"#, "", "{"] {
            assert!(Members::read(text.as_bytes()).is_none(), "{text}");
        }
    }

    #[test]
    fn delays_in_the_past_or_unparsable_are_none() {
        let now = Millis(1_000_000);
        assert_eq!(delay_until(&json!("1m"), now), Some(Millis(1_060_000)));
        assert_eq!(delay_until(&json!("banana"), now), None);
        assert_eq!(delay_until(&json!("1970-01-01T00:00:00.000Z"), now), None);
        assert_eq!(delay_until(&json!(2_000_000), now), Some(Millis(2_000_000)));
        assert_eq!(delay_of(&json!("9999999w"), now), Delay::Invalid);
        assert_eq!(delay_of(&json!(1e300), now), Delay::Invalid);
    }
}
