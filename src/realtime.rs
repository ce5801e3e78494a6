//! The Electric shape protocol of the realtime routes, as
//! `@electric-sql/client` 1.0.14 (inside `@trigger.dev/core`) requires it:
//! the query a client sends, the rows in database vocabulary (every column
//! a string or null, decoded by the `electric-schema` header), offsets and
//! handles, and the message arrays. Pure: no I/O, no clock.
//!
//! Offsets are `<updatedAtMs>_<changes>`: the row's `updatedAt` on the mock
//! clock and the number of status changes it has been through (so two
//! changes within one millisecond of a frozen clock still differ). A feed of
//! many rows uses the largest of its rows' offsets, comparing the pairs in
//! order.

use crate::excerpt::percent_decode;
use crate::model::{ApiVersion, EngineStatus, Run};
use crate::time::Millis;
use serde_json::{Map, Value};

/// The columns, in the server's order, with their Postgres types.
pub const COLUMNS: [(&str, &str, bool); 26] = [
    ("id", "text", false),
    ("taskIdentifier", "text", false),
    ("createdAt", "timestamp", false),
    ("updatedAt", "timestamp", false),
    ("startedAt", "timestamp", false),
    ("delayUntil", "timestamp", false),
    ("queuedAt", "timestamp", false),
    ("expiredAt", "timestamp", false),
    ("completedAt", "timestamp", false),
    ("friendlyId", "text", false),
    ("number", "int4", false),
    ("isTest", "bool", false),
    ("status", "text", false),
    ("usageDurationMs", "int4", false),
    ("costInCents", "float8", false),
    ("baseCostInCents", "float8", false),
    ("ttl", "text", false),
    ("payload", "text", false),
    ("payloadType", "text", false),
    ("metadata", "text", false),
    ("metadataType", "text", false),
    ("output", "text", false),
    ("outputType", "text", false),
    ("runTags", "text", true),
    ("error", "jsonb", false),
    ("realtimeStreams", "text", true),
];

/// Columns `skipColumns` can never remove.
const KEPT: [&str; 5] = ["id", "taskIdentifier", "friendlyId", "status", "createdAt"];

/// The most columns a request may name in `skipColumns`, and the most tags in `tags`.
pub const MAX_LIST: usize = 64;

/// Which columns a response carries: a bit per entry of [`COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns(u32);

impl Columns {
    /// Every column.
    pub const ALL: Columns = Columns((1 << COLUMNS.len()) - 1);

    /// Removes the named columns, except those the server always keeps;
    /// unknown names are ignored.
    pub fn skip<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Columns {
        let mut bits = self.0;
        for name in names.into_iter().take(MAX_LIST) {
            if KEPT.contains(&name) {
                continue;
            }
            if let Some(i) = COLUMNS.iter().position(|(c, _, _)| *c == name) {
                bits &= !(1 << i);
            }
        }
        Columns(bits)
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }

    /// The `electric-schema` header of these columns.
    pub fn schema(self) -> String {
        let mut map = Map::new();
        for (i, (name, kind, array)) in COLUMNS.iter().enumerate() {
            if self.has(i) {
                let mut t = Map::new();
                t.insert("type".into(), Value::from(*kind));
                if *array {
                    t.insert("dims".into(), Value::from(1));
                }
                map.insert((*name).into(), Value::Object(t));
            }
        }
        Value::Object(map).to_string()
    }
}

/// What the request's query asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `None` for `offset=-1` or no offset: a snapshot.
    pub offset: Option<Offset>,
    pub handle: Option<String>,
    pub live: bool,
    /// The `electric-cursor` the client echoes; the answer carries the next.
    pub cursor: Option<u64>,
    pub skip_columns: Vec<String>,
    pub tags: Vec<String>,
    /// `createdAt`: the tag feed's window, as a duration (`1h`); default 24 hours.
    pub created_within_ms: Option<i64>,
}

/// A position in a feed: `<updatedAtMs>_<changes>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offset {
    pub updated_ms: i64,
    pub changes: u64,
}

impl Offset {
    /// The start of every feed (`-1` on the wire is "no offset").
    pub const ZERO: Offset = Offset { updated_ms: i64::MIN, changes: 0 };

    /// Parses `<i64>_<u64>`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Offset> {
        let (a, b) = text.split_once('_')?;
        Some(Offset { updated_ms: a.parse().ok()?, changes: b.parse().ok()? })
    }

    /// The wire form.
    pub fn render(self) -> String {
        if self == Offset::ZERO { "0_0".to_owned() } else { format!("{}_{}", self.updated_ms, self.changes) }
    }
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).take(MAX_LIST).map(str::to_owned).collect()
}

impl Query {
    /// Parses a query string; unknown parameters are ignored, as the server
    /// ignores them. A malformed offset restarts the feed from a snapshot.
    pub fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for pair in query.unwrap_or("").split('&').take(256) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "offset" => q.offset = Offset::parse(&v),
                "handle" => q.handle = Some(v).filter(|h| !h.is_empty() && h.len() <= 256),
                "live" => q.live = v == "true",
                "cursor" => q.cursor = v.parse().ok(),
                "skipColumns" => q.skip_columns = list(&v),
                "tags" => q.tags = list(&v),
                "createdAt" => q.created_within_ms = crate::time::parse_duration_ms(&v),
                _ => {}
            }
        }
        q
    }
}

/// A timestamp as Postgres sends it to Electric: ISO without the `Z`.
fn timestamp(at: Millis) -> String {
    let mut text = at.to_string();
    text.pop();
    text
}

/// A Postgres one-dimensional text array literal: `{a,"b c"}`.
pub fn pg_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let plain = !item.is_empty()
            && !item.eq_ignore_ascii_case("null")
            && !item.bytes().any(|b| matches!(b, b',' | b'{' | b'}' | b'"' | b'\\') || b.is_ascii_whitespace());
        if plain {
            out.push_str(item);
        } else {
            out.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out.push('}');
    out
}

/// The internal (database) id of a run: `cm` and 23 base-36 characters,
/// derived from its id so it is stable.
pub fn internal_id(run_id: &str) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::from("cm");
    let mut h = crate::generate::stable_hash(run_id.as_bytes());
    let mut g = crate::generate::stable_hash(format!("{run_id}#").as_bytes());
    for i in 0..23 {
        let src = if i < 12 { &mut h } else { &mut g };
        out.push(char::from(DIGITS[(*src % 36) as usize]));
        *src /= 36;
    }
    out
}

/// How a row is rendered for one request.
#[derive(Debug, Clone, Copy)]
pub struct RowOptions {
    pub columns: Columns,
    /// Without the current `x-trigger-api-version`, `DEQUEUED` is sent as `EXECUTING`.
    pub version: ApiVersion,
    /// Development keys see no costs, as on retrieve.
    pub zero_costs: bool,
}

fn number(x: f64) -> String {
    crate::model::json_number(x).to_string()
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

/// The run's row: every column a string or null.
pub fn row(run: &Run, o: RowOptions) -> Map<String, Value> {
    let ts = |m: Option<Millis>| m.map_or(Value::Null, |m| Value::String(timestamp(m)));
    let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
    let terminal = run.status.is_terminal();
    let status = match (run.status, o.version) {
        (EngineStatus::Dequeued, ApiVersion::Unversioned) => EngineStatus::Executing,
        (s, _) => s,
    };
    let queued_at = match run.status {
        EngineStatus::Delayed => None,
        _ => Some(run.delayed_until.unwrap_or(run.created_at)),
    };
    let (cost, base) = if o.zero_costs { (0.0, 0.0) } else { (run.cost_in_cents, run.base_cost_in_cents) };
    let json_type = || Value::from("application/json");
    let error = run.error.as_ref().map(|e| {
        let mut m = Map::new();
        m.insert("type".into(), Value::from("BUILT_IN_ERROR"));
        m.insert("name".into(), Value::from(e.name.clone().unwrap_or_else(|| "Error".into())));
        m.insert("message".into(), Value::from(e.message.clone()));
        m.insert("stackTrace".into(), Value::from(e.stack_trace.clone().unwrap_or_default()));
        Value::Object(m).to_string()
    });
    let values: [Value; 26] = [
        Value::String(internal_id(&run.id)),
        Value::String(run.task_identifier.clone()),
        ts(Some(run.created_at)),
        ts(Some(run.updated_at)),
        ts(run.started_at),
        ts(run.delayed_until),
        ts(queued_at),
        ts(run.expired_at),
        // Every terminal status has a completedAt: the SDK's iterator ends on it.
        ts(run.finished_at.or(terminal.then_some(run.updated_at))),
        Value::String(run.id.clone()),
        Value::String((1 + crate::generate::stable_hash(run.id.as_bytes()) % 9999).to_string()),
        Value::from(if run.is_test { "t" } else { "f" }),
        Value::from(status.name()),
        Value::String(run.duration_ms.min(i32::MAX as u64).to_string()),
        Value::String(number(cost)),
        Value::String(number(base)),
        text(run.ttl.clone()),
        // Offloaded packets are not fetched through realtime: null, as a skipped column.
        text(run.payload.as_ref().filter(|_| run.payload_packet.is_none()).map(json_text)),
        json_type(),
        text(run.metadata.as_ref().map(|m| Value::Object(m.clone()).to_string())),
        json_type(),
        text(run.output.as_ref().filter(|_| run.output_packet.is_none()).map(json_text)),
        json_type(),
        if run.tags.is_empty() { Value::Null } else { Value::String(pg_array(run.tags.iter().map(String::as_str))) },
        text(error),
        Value::from("{}"),
    ];
    let mut map = Map::new();
    for (i, value) in values.into_iter().enumerate() {
        if o.columns.has(i) {
            map.insert(COLUMNS[i].0.into(), value);
        }
    }
    map
}

/// Whether a row message inserts or updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Update,
}

/// A change message for `run`.
pub fn change(run: &Run, operation: Operation, o: RowOptions) -> Value {
    let op = match operation {
        Operation::Insert => "insert",
        Operation::Update => "update",
    };
    serde_json::json!({
        "key": format!("\"public\".\"TaskRun\"/\"{}\"", internal_id(&run.id)),
        "value": Value::Object(row(run, o)),
        "headers": { "operation": op },
    })
}

/// The control message that ends every response.
pub fn up_to_date() -> Value {
    serde_json::json!({ "headers": { "control": "up-to-date" } })
}

/// The control message of a 409: the client starts over with the new handle.
pub fn must_refetch() -> Value {
    serde_json::json!({ "headers": { "control": "must-refetch" } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_like_the_client_sends_them() {
        let q = Query::parse(Some(
            "cursor=&handle=run-run_rt1&live=true&log=full&offset=1735689602000_1&skipColumns=payload%2Coutput",
        ));
        assert_eq!(q.offset, Some(Offset { updated_ms: 1_735_689_602_000, changes: 1 }));
        assert_eq!(q.handle.as_deref(), Some("run-run_rt1"));
        assert!(q.live);
        assert_eq!(q.skip_columns, ["payload", "output"]);
        let q = Query::parse(Some("createdAt=1h&log=full&offset=-1&tags=t%2Cuser%3A1"));
        assert_eq!(
            (q.offset, q.tags.clone(), q.created_within_ms),
            (None, vec!["t".into(), "user:1".into()], Some(3_600_000))
        );
        assert_eq!(Query::parse(None), Query::default());
        assert_eq!(Query::parse(Some("offset=x_1&&=&%%%")).offset, None);
        assert_eq!(Offset::parse("-5_2").map(Offset::render).as_deref(), Some("-5_2"));
    }

    #[test]
    fn arrays_are_postgres_literals() {
        assert_eq!(pg_array(["t", "user:1"]), "{t,user:1}");
        assert_eq!(
            pg_array(["a b", "x\"y", "", "NULL", "c,d", "back\\"]),
            r#"{"a b","x\"y","","NULL","c,d","back\\"}"#
        );
        assert_eq!(pg_array([]), "{}");
    }

    #[test]
    fn skipped_columns_leave_the_row_and_the_schema_but_never_the_keys() {
        let cols = Columns::ALL.skip(["payload", "status", "id", "nope"]);
        let schema: Value = serde_json::from_str(&cols.schema()).unwrap_or_default();
        assert!(schema.get("payload").is_none());
        assert_eq!(schema["status"]["type"], "text");
        assert_eq!(schema["runTags"], serde_json::json!({"type": "text", "dims": 1}));
        assert_eq!(Columns::ALL.schema().matches("\"type\"").count(), 26);
    }

    #[test]
    fn rows_use_database_vocabulary() {
        let mut run =
            crate::generate::generate(1, "run_x", Some(EngineStatus::Canceled), Millis(1_767_225_600_000), None);
        run.tags = vec!["t".into(), "user 1".into()];
        run.finished_at = None;
        let o = RowOptions { columns: Columns::ALL, version: ApiVersion::V20250716, zero_costs: true };
        let r = row(&run, o);
        assert_eq!(r["status"], "CANCELED");
        assert_eq!(r["friendlyId"], "run_x");
        assert_eq!(r["runTags"], r#"{t,"user 1"}"#);
        assert_eq!(r["costInCents"], "0");
        assert!(r["completedAt"].as_str().is_some_and(|t| !t.ends_with('Z')), "every terminal status completes");
        assert!(r.values().all(|v| v.is_string() || v.is_null()));
        let id = internal_id("run_x");
        assert_eq!((id.len(), id.starts_with("cm")), (25, true));
        let mut dq = run.clone();
        dq.status = EngineStatus::Dequeued;
        let unversioned = RowOptions { version: ApiVersion::Unversioned, ..o };
        assert_eq!(row(&dq, unversioned)["status"], "EXECUTING");
        assert_eq!(row(&dq, o)["status"], "DEQUEUED");
    }
}
