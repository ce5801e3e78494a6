//! The run as the mock holds it: typed, complete, independent of how any
//! request will see it.

use super::status::EngineStatus;
use crate::packet::Packet;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// One run. Optional fields that are `None` are omitted on the wire, never
/// sent as `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `run_…`
    pub id: String,
    /// The one status the run holds; each API version renders it.
    pub status: EngineStatus,
    pub task_identifier: String,
    pub idempotency_key: Option<String>,
    /// The locked worker version, `YYYYMMDD.N`; absent until locked.
    pub version: Option<String>,
    pub is_test: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub delayed_until: Option<Millis>,
    pub expired_at: Option<Millis>,
    /// A duration string such as `"10m"`.
    pub ttl: Option<String>,
    /// Sorted, as the server sorts them.
    pub tags: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
    /// Compute cost so far; rendered as 0 for development keys.
    pub cost_in_cents: f64,
    /// Invocation cost; rendered as 0 for development keys.
    pub base_cost_in_cents: f64,
    pub duration_ms: u64,
    pub depth: u32,
    pub trigger_function: TriggerFunction,
    pub batch_id: Option<String>,
    pub region: Option<String>,
    /// The payload, already flattened to plain JSON.
    pub payload: Option<Value>,
    /// The output; present only on successful completion.
    pub output: Option<Value>,
    /// The payload when offloaded: the API sends a presigned URL instead.
    pub payload_packet: Option<Arc<Packet>>,
    /// The output when offloaded (shown only on successful completion).
    pub output_packet: Option<Arc<Packet>>,
    pub error: Option<SerializedError>,
    pub schedule: Option<Schedule>,
    /// Ids of related runs, resolved against the run store when rendering.
    pub root_id: Option<String>,
    pub parent_id: Option<String>,
    /// Shared, so that a lifecycle's per-request copy of a run with many
    /// children copies no ids.
    pub child_ids: Arc<[String]>,
    pub attempt_count: u32,
}

/// How the run was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TriggerFunction {
    Trigger,
    TriggerAndWait,
    BatchTrigger,
    BatchTriggerAndWait,
}

impl TriggerFunction {
    /// The function for a run that is (or is not) in a batch and does (or
    /// does not) resume its parent.
    pub fn of(in_batch: bool, and_wait: bool) -> TriggerFunction {
        match (in_batch, and_wait) {
            (false, false) => TriggerFunction::Trigger,
            (false, true) => TriggerFunction::TriggerAndWait,
            (true, false) => TriggerFunction::BatchTrigger,
            (true, true) => TriggerFunction::BatchTriggerAndWait,
        }
    }

    /// True for the batch functions, which require a `batchId`.
    pub fn is_batch(self) -> bool {
        matches!(self, TriggerFunction::BatchTrigger | TriggerFunction::BatchTriggerAndWait)
    }
}

/// An error as the API serialises it (`SerializedError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SerializedError {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// The schedule that triggered a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// `sched_…`
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplication_key: Option<String>,
    pub generator: ScheduleGenerator,
}

/// A schedule's generator; the API knows only CRON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleGenerator {
    /// Always `"CRON"`.
    #[serde(rename = "type")]
    pub kind: CronKind,
    pub expression: String,
    pub description: String,
}

/// The only generator type there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CronKind {
    #[serde(rename = "CRON")]
    Cron,
}
