//! The scenario file format, version 1 (JSON). Unknown keys are errors, so
//! typos are caught. `schemas/scenario.schema.json` describes the same format
//! for editors.

use crate::catalogue::CompactSpec;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioFile {
    /// Editors' schema reference; ignored.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    /// The format version; only 1 exists.
    pub version: u32,
    /// What the scenario is for.
    pub description: Option<String>,
    /// Runs: any field may be set, the rest is generated. Kept compact as
    /// they are parsed (see [`CompactSpec`]).
    #[serde(default)]
    pub runs: Vec<CompactSpec>,
    /// Faults, tried in order; the first that fires applies.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A token-bucket rate limiter per API key.
    pub rate_limit: Option<RateLimitSpec>,
    /// How triggered tasks behave.
    #[serde(default)]
    pub tasks: Vec<super::tasks::TaskSpec>,
}

/// Which route a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteName {
    /// `GET /api/v3/runs/{runId}`.
    Retrieve,
    /// `POST /api/v1/tasks/{taskId}/trigger`.
    Trigger,
    /// `POST /api/v3/batches`, `POST /api/v3/batches/{id}/items`, `GET /api/v2/batches/{id}`.
    Batches,
    /// `GET /api/v1/runs`.
    List,
    /// `POST /api/v2/runs/{runId}/cancel`.
    Cancel,
    /// `POST /api/v1/runs/{runId}/replay`.
    Replay,
    /// `POST /api/v1/runs/{runId}/reschedule`.
    Reschedule,
    /// The realtime feeds: `GET /realtime/v1/runs/{runId}` (matched by run id),
    /// `GET /realtime/v1/runs?tags=…` and `GET /realtime/v1/batches/{batchId}`
    /// (which have no run id, so only faults without `runId` match them).
    Realtime,
    /// Every API route.
    Any,
}

/// A fault as a file declares it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// A glob over run ids (`*` and `?`); any run when absent.
    pub run_id: Option<String>,
    /// The route; `any` when absent.
    pub route: Option<RouteName>,
    /// Fire on the nth matching request only (1-based).
    pub nth: Option<u64>,
    /// Let this many matching requests through first.
    pub after: Option<u64>,
    /// Fire on at most this many matching requests.
    pub times: Option<u64>,
    /// Fire with this probability (seeded, so runs are repeatable).
    pub probability: Option<f64>,
    /// Added latency before the answer, in milliseconds.
    pub delay_ms: Option<u64>,
    /// What to answer instead; the normal answer (after `delayMs`) when absent.
    pub action: Option<ActionSpec>,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ActionSpec {
    /// Any status with any body and headers.
    #[serde(rename_all = "camelCase")]
    Status {
        status: u16,
        /// A JSON body.
        body: Option<Value>,
        /// A raw text body (instead of `body`).
        text: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// The API's 404 with `x-should-retry`.
    #[serde(rename_all = "camelCase")]
    NotFound { should_retry: Option<bool> },
    /// The API's 429 with the rate-limit body and headers.
    #[serde(rename_all = "camelCase")]
    RateLimit { limit: Option<u32>, remaining: Option<i64>, reset_ms: Option<u64> },
    /// A 5xx with the API's body.
    ServerError { status: Option<u16> },
    /// The connection is reset before any response.
    Reset {},
    /// The headers and half the body are sent, then the connection closes.
    CloseMidBody {},
    /// A complete response whose JSON body is cut in half.
    Truncate {},
    /// A complete response whose body is not JSON.
    Malformed {},
    /// A 200 whose body breaks the schema (an unknown status).
    BreakSchema {},
    /// The normal body, a few bytes at a time.
    #[serde(rename_all = "camelCase")]
    Dribble { chunk_bytes: Option<u32>, interval_ms: Option<u64> },
}

/// A rate limiter as a file declares it; the defaults are the real server's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Bucket size (750).
    pub limit: Option<u32>,
    /// Tokens added per interval (250).
    pub refill: Option<u32>,
    /// The refill interval (`10s`).
    pub interval: Option<String>,
}
