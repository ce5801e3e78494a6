//! Named runs: the embedded default catalogue (`fixtures/catalogue.json`) and
//! the [`RunSpec`] format it is written in.
//!
//! A spec sets any fields it likes; the rest is generated exactly as for an
//! unknown id. Specs are parsed and checked once, at start-up; relations
//! (parent, root, children, depth) are resolved here, never per request.

use crate::generate::generate;
use crate::model::{EngineStatus, Phase, Run, Schedule, SerializedError, TriggerFunction};
use crate::time::{Millis, parse_duration};
use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The embedded fixtures folder.
pub static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/fixtures");

/// The file of the default catalogue inside [`FIXTURES`].
pub const CATALOGUE_FILE: &str = "catalogue.json";

/// A catalogue file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFile {
    /// The format version; only 1 exists.
    pub version: u32,
    pub runs: Vec<RunSpec>,
}

/// One run as a file declares it. Every field but `id` is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunSpec {
    pub id: String,
    /// One line for `trigger-mock catalogue`.
    pub description: Option<String>,
    pub status: Option<EngineStatus>,
    pub task_identifier: Option<String>,
    pub idempotency_key: Option<String>,
    pub version: Option<String>,
    pub is_test: Option<bool>,
    pub ttl: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub payload: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<SerializedError>,
    pub schedule: Option<Schedule>,
    pub batch_id: Option<String>,
    pub region: Option<String>,
    /// The id of the run that triggered this one.
    pub parent: Option<String>,
    pub trigger_function: Option<TriggerFunction>,
    pub attempt_count: Option<u32>,
    pub cost_in_cents: Option<f64>,
    pub base_cost_in_cents: Option<f64>,
    pub duration_ms: Option<u64>,
}

/// A compiled catalogue entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub status: EngineStatus,
    pub description: String,
}

/// Runs defined by files, keyed by id, with their listing.
#[derive(Debug, Default)]
pub struct Defined {
    pub runs: HashMap<String, Run>,
    pub entries: Vec<Entry>,
}

/// Parses the embedded default catalogue.
pub fn default_catalogue() -> Result<CatalogueFile, String> {
    let file = FIXTURES.get_file(CATALOGUE_FILE).ok_or_else(|| format!("fixtures/{CATALOGUE_FILE} is not embedded"))?;
    serde_json::from_slice(file.contents())
        .map_err(|e| format!("fixtures/{CATALOGUE_FILE}:{}:{}: {e}", e.line(), e.column()))
}

/// Builds runs from specs. Parents are compiled before their children; an
/// unknown parent, a cycle or a field that contradicts the status is an error
/// naming the run.
pub fn compile(specs: &[RunSpec], seed: u64, anchor: Millis) -> Result<Defined, String> {
    let mut defined = Defined::default();
    let by_id: HashMap<&str, &RunSpec> = specs.iter().map(|s| (s.id.as_str(), s)).collect();
    if by_id.len() != specs.len() {
        let mut seen = std::collections::HashSet::new();
        let dup = specs.iter().find(|s| !seen.insert(s.id.as_str())).map(|s| s.id.as_str()).unwrap_or_default();
        return Err(format!("run {dup} is defined twice"));
    }
    // Compile in dependency order: a spec waits for its parent.
    let mut pending: Vec<&RunSpec> = specs.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for spec in pending {
            match &spec.parent {
                Some(p) if !by_id.contains_key(p.as_str()) => {
                    return Err(format!("run {}: parent {p} is not defined", spec.id));
                }
                Some(p) if !defined.runs.contains_key(p) => waiting.push(spec),
                _ => {
                    let parent = spec.parent.as_ref().and_then(|p| defined.runs.get(p));
                    let run = build(spec, parent, seed, anchor).map_err(|e| format!("run {}: {e}", spec.id))?;
                    if let Some(p) = &spec.parent
                        && let Some(parent) = defined.runs.get_mut(p)
                    {
                        parent.child_ids.push(run.id.clone());
                    }
                    defined.entries.push(Entry {
                        id: run.id.clone(),
                        status: run.status,
                        description: spec.description.clone().unwrap_or_default(),
                    });
                    defined.runs.insert(run.id.clone(), run);
                }
            }
        }
        if waiting.len() == before {
            return Err(format!("run {}: its parents form a cycle", waiting[0].id));
        }
        pending = waiting;
    }
    defined.entries.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(defined)
}

fn build(spec: &RunSpec, parent: Option<&Run>, seed: u64, anchor: Millis) -> Result<Run, String> {
    if !crate::convention::is_well_formed(&spec.id) {
        return Err("an id is `run_` and then lower-case letters, digits and underscores".into());
    }
    let status = spec.status.or_else(|| crate::convention::status_of(&spec.id));
    let not_before = parent.map(|p| p.started_at.unwrap_or(p.created_at));
    let mut run = generate(seed, &spec.id, status, anchor, not_before);
    let phase = run.status.phase();

    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = &spec.$field { run.$field = v.clone().into(); })* };
    }
    set!(task_identifier, idempotency_key, version, is_test, metadata, payload, schedule, batch_id, region);
    set!(attempt_count, cost_in_cents, base_cost_in_cents, duration_ms);
    if let (Some(schedule), None) = (&spec.schedule, &spec.payload) {
        run.payload = Some(crate::generate::schedule_payload(schedule, run.created_at));
    }
    if let Some(tags) = &spec.tags {
        let mut tags = tags.clone();
        tags.sort();
        tags.dedup();
        run.tags = tags;
    }
    if let Some(ttl) = &spec.ttl {
        let secs = parse_duration(ttl).ok_or_else(|| format!("ttl `{ttl}` is not a duration such as 10m or 1h30m"))?;
        if phase == Phase::Expired {
            let created = run.expired_at.unwrap_or(run.created_at).plus(-(secs as i64) * 1000);
            run.created_at = created;
        }
        run.ttl = Some(ttl.clone());
    }
    if let Some(output) = &spec.output {
        if phase != Phase::Succeeded {
            return Err(format!("only a COMPLETED_SUCCESSFULLY run has an output, not a {} one", run.status.name()));
        }
        run.output = Some(output.clone());
    }
    if let Some(error) = &spec.error {
        if phase != Phase::Failed {
            return Err(format!("an error belongs to a failed run, not a {} one", run.status.name()));
        }
        run.error = Some(error.clone());
    }
    for cost in [run.cost_in_cents, run.base_cost_in_cents] {
        if !cost.is_finite() || cost < 0.0 {
            return Err("costs are finite and not negative".into());
        }
    }
    if let Some(p) = parent {
        run.parent_id = Some(p.id.clone());
        run.root_id = Some(p.root_id.clone().unwrap_or_else(|| p.id.clone()));
        run.depth = p.depth + 1;
    }
    let and_wait = parent.is_some_and(|p| p.status.phase() == Phase::Started);
    run.trigger_function =
        spec.trigger_function.unwrap_or_else(|| TriggerFunction::of(run.batch_id.is_some(), and_wait));
    if run.trigger_function.is_batch() != run.batch_id.is_some() {
        return Err("a batch trigger function and a batchId go together".into());
    }
    if run.trigger_function == TriggerFunction::TriggerAndWait && parent.is_none() {
        return Err("triggerAndWait needs a parent run".into());
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR: Millis = Millis(1_767_225_600_000);

    #[test]
    fn the_embedded_catalogue_loads_and_covers_every_status() {
        let file = default_catalogue().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.version, 1);
        let defined = compile(&file.runs, 0, ANCHOR).unwrap_or_else(|e| panic!("{e}"));
        for status in EngineStatus::ALL {
            assert!(defined.entries.iter().any(|e| e.status == status), "{status:?} missing");
        }
        assert!(defined.entries.iter().all(|e| !e.description.is_empty()));
        let runs = &defined.runs;
        assert!(runs.values().any(|r| r.schedule.is_some()), "a scheduled run");
        assert!(runs.values().any(|r| r.parent_id.is_some() && r.root_id != r.parent_id), "a grandchild");
        assert!(runs.values().any(|r| r.is_test), "a test run");
        assert!(runs.values().any(|r| r.idempotency_key.is_some()), "an idempotency key");
        assert!(runs.values().any(|r| r.metadata.is_some() && r.batch_id.is_some()), "metadata and a batch");
        assert!(runs.values().any(|r| r.error.as_ref().is_some_and(|e| e.stack_trace.is_some())), "a stack trace");
    }

    #[test]
    fn children_are_linked_both_ways() {
        let spec = |id: &str, parent: Option<&str>| RunSpec {
            id: id.into(),
            parent: parent.map(Into::into),
            status: Some(EngineStatus::WaitingToResume),
            ..RunSpec::default()
        };
        let d = compile(&[spec("run_c", Some("run_b")), spec("run_b", Some("run_a")), spec("run_a", None)], 1, ANCHOR)
            .unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = (&d.runs["run_a"], &d.runs["run_b"], &d.runs["run_c"]);
        assert_eq!(a.child_ids, ["run_b"]);
        assert_eq!((b.depth, c.depth), (1, 2));
        assert_eq!(c.root_id.as_deref(), Some("run_a"));
        assert_eq!(c.parent_id.as_deref(), Some("run_b"));
        assert_eq!(c.trigger_function, TriggerFunction::of(c.batch_id.is_some(), true));
        assert!(c.created_at >= b.started_at.unwrap_or(b.created_at));
    }

    #[test]
    fn contradictions_are_refused() {
        let base = RunSpec { id: "run_a".into(), status: Some(EngineStatus::Pending), ..RunSpec::default() };
        let with_output = RunSpec { output: Some(Value::Bool(true)), ..base.clone() };
        assert!(compile(&[with_output], 0, ANCHOR).unwrap_err().contains("output"));
        let orphan = RunSpec { parent: Some("run_zz".into()), ..base.clone() };
        assert!(compile(&[orphan], 0, ANCHOR).unwrap_err().contains("not defined"));
        let cycle = [
            RunSpec { id: "run_a".into(), parent: Some("run_b".into()), ..RunSpec::default() },
            RunSpec { id: "run_b".into(), parent: Some("run_a".into()), ..RunSpec::default() },
        ];
        assert!(compile(&cycle, 0, ANCHOR).unwrap_err().contains("cycle"));
        assert!(compile(&[base.clone(), base.clone()], 0, ANCHOR).unwrap_err().contains("twice"));
        let bad_ttl = RunSpec { ttl: Some("ten".into()), ..base };
        assert!(compile(&[bad_ttl], 0, ANCHOR).unwrap_err().contains("ttl"));
    }
}
