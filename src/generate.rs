//! Deterministic fake runs: `(seed, run id, anchor)` → a plausible [`Run`].
//!
//! Each run draws from its own ChaCha8 stream, seeded with the global seed
//! mixed with a stable FNV-1a hash of the id (std's `DefaultHasher` is not
//! stable across Rust versions). The same seed, id and anchor give the same
//! run on every platform and in every process.

use crate::model::{CronKind, json_number};
use crate::model::{EngineStatus, Phase, Run, Schedule, ScheduleGenerator, SerializedError, TriggerFunction};
use crate::time::{Millis, duration_string};
use fake::Fake;
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::SafeEmail;
use fake::faker::lorem::en::Word;
use fake::faker::name::en::{FirstName, LastName};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// FNV-1a, 64-bit: a stable hash that never changes between builds.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    stable_hash_on(0xcbf2_9ce4_8422_2325, bytes)
}

/// [`stable_hash`] continued over `bytes` from `h`: the hash of two texts
/// joined is `stable_hash_on(stable_hash(a), b)`, without joining them.
pub fn stable_hash_on(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads a seed mixed with a hash over all bits.
fn mix(seed: u64, hash: u64) -> u64 {
    let mut z = seed ^ hash.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG of one entity.
pub fn rng_for(seed: u64, id: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed, stable_hash(id.as_bytes())))
}

/// The deployment a run's worker version names: so many days before the run
/// was created, and a build number that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deploy {
    pub days_before: i64,
    pub build: u32,
}

impl Deploy {
    /// A deployment drawn for `id`, the same on every platform.
    pub fn draw(id: &str) -> Deploy {
        let mut rng = rng_for(0, &format!("{id}\u{0}deploy"));
        Deploy { days_before: rng.random_range(0..20), build: rng.random_range(1..25) }
    }

    /// The version as the server names it, `YYYYMMDD.N`, for a run created
    /// at `created_at`: never dated after it.
    pub fn version(self, created_at: Millis) -> String {
        let day = created_at.plus(-self.days_before.saturating_mul(86_400_000)).iso_bytes();
        let mut out = String::with_capacity(12);
        for part in [&day[0..4], &day[5..7], &day[8..10]] {
            // ASCII digits.
            out.push_str(std::str::from_utf8(part).unwrap_or_default());
        }
        let _ = write!(out, ".{}", self.build);
        out
    }
}

const VERBS: &[&str] = &[
    "send",
    "sync",
    "generate",
    "process",
    "resize",
    "summarize",
    "import",
    "export",
    "notify",
    "charge",
    "transcribe",
    "index",
    "render",
    "backup",
    "enrich",
];
const NOUNS: &[&str] = &[
    "welcome-email",
    "stripe-customers",
    "invoice-pdf",
    "order",
    "avatar",
    "document",
    "csv-upload",
    "weekly-report",
    "slack-message",
    "subscription",
    "podcast-episode",
    "search-index",
    "video-thumbnail",
    "database",
    "lead",
];
const REGIONS: &[&str] = &["us-east-1", "eu-central-1", "us-west-2"];
const CRONS: &[(&str, &str)] = &[
    ("0 0 * * *", "Every day at midnight"),
    ("*/15 * * * *", "Every 15 minutes"),
    ("0 9 * * 1", "At 09:00 AM, only on Monday"),
    ("0 */6 * * *", "Every 6 hours"),
];
/// Compute prices per millisecond, in cents, of the machine presets.
const CENTS_PER_MS: &[f64] = &[0.000_000_94, 0.000_003_4, 0.000_006_8, 0.000_013_6];
/// Internal error codes of crashed and system-failed runs.
const CRASH_CODES: &[&str] =
    &["TASK_PROCESS_OOM_KILLED", "TASK_PROCESS_EXITED_WITH_NON_ZERO_CODE", "TASK_PROCESS_SIGSEGV"];
const SYSTEM_FAILURE_CODES: &[&str] = &["TASK_RUN_HEARTBEAT_TIMEOUT", "TASK_DEQUEUED_INVALID_STATE"];
const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn token(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len).map(|_| char::from(*pick(rng, ALNUM))).collect()
}

fn round_cents(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// Generates the run `id`. `status` forces the engine status (the run-id
/// convention); otherwise one is drawn, so generated runs span all statuses.
/// `anchor` is "now" for the run: its timestamps lie around it. A run created
/// by another (a child) passes `not_before`, the parent's start, so that it
/// is not created before its parent ran.
pub fn generate(seed: u64, id: &str, status: Option<EngineStatus>, anchor: Millis, not_before: Option<Millis>) -> Run {
    let mut rng = rng_for(seed, id);
    let drawn = *pick(&mut rng, &EngineStatus::ALL);
    let status = status.unwrap_or(drawn);
    let phase = status.phase();
    let ms = |rng: &mut ChaCha8Rng, lo: i64, hi: i64| rng.random_range(lo..hi);

    let task_identifier = format!("{}-{}", pick(&mut rng, VERBS), pick(&mut rng, NOUNS));
    let in_batch = rng.random_bool(0.25);
    let scheduled = !in_batch && rng.random_bool(0.12);
    let is_test = rng.random_bool(0.1);

    // Timestamps, consistent with the phase. `anchor` is never before any of them,
    // except `delayedUntil`, which lies ahead of a delayed run.
    let created_at = match not_before {
        Some(start) if start < anchor => start.plus(ms(&mut rng, 0, ((anchor.0 - start.0) / 4).max(1))),
        _ => anchor.plus(-ms(&mut rng, 60_000, 3 * 3_600_000)),
    };
    let mut ttl_secs: Option<u64> = rng.random_bool(0.3).then(|| *pick(&mut rng, &[300, 600, 3600, 86_400]));
    let (mut started_at, mut finished_at, mut delayed_until, mut expired_at) = (None, None, None, None);
    let mut duration_ms = 0u64;
    let mut attempt_count = 0u32;
    let updated_at;
    let mut created_at = created_at;
    match phase {
        Phase::Delayed => {
            delayed_until = Some(anchor.plus(ms(&mut rng, 30_000, 2 * 3_600_000)));
            updated_at = created_at;
        }
        Phase::Queued => {
            created_at = anchor.plus(-ms(&mut rng, 1_000, 600_000)).max(not_before.unwrap_or(Millis(i64::MIN)));
            updated_at = created_at.plus(ms(&mut rng, 0, 50));
        }
        Phase::Expired => {
            let ttl_ms = *ttl_secs.get_or_insert(*pick(&mut rng, &[60, 300, 600])) as i64 * 1000;
            created_at = anchor.plus(-ttl_ms - ms(&mut rng, 0, 3_600_000));
            expired_at = Some(created_at.plus(ttl_ms));
            finished_at = expired_at;
            updated_at = created_at.plus(ttl_ms);
        }
        Phase::Started | Phase::Succeeded | Phase::Failed | Phase::Canceled => {
            let start = created_at.plus(ms(&mut rng, 50, 4_000));
            let ran_for = ms(&mut rng, 0, (anchor.0 - start.0).clamp(1, 1_800_000));
            let canceled_before_start = phase == Phase::Canceled && rng.random_bool(0.3);
            if !canceled_before_start {
                started_at = Some(start);
                attempt_count = match status {
                    EngineStatus::RetryingAfterFailure => rng.random_range(2..4),
                    EngineStatus::CompletedWithErrors | EngineStatus::Crashed => rng.random_range(1..4),
                    _ => rng.random_range(1..3),
                };
                // Compute time excludes waits, so it is at most the wall time.
                duration_ms = (ran_for as f64 * rng.random_range(0.3..1.0)) as u64;
            }
            let end = start.plus(ran_for);
            if phase == Phase::Started {
                updated_at = end;
            } else {
                finished_at = Some(end);
                updated_at = end;
            }
        }
    }

    let version_locked = !matches!(phase, Phase::Delayed | Phase::Queued | Phase::Expired)
        || status == EngineStatus::Pending && rng.random_bool(0.5);
    let version = version_locked.then(|| {
        let deploy = Deploy { days_before: ms(&mut rng, 0, 20), build: rng.random_range(1..25) };
        deploy.version(created_at)
    });

    let mut tags: Vec<String> = (0..rng.random_range(0..4))
        .map(|i| match i {
            0 => format!("user_{}", token(&mut rng, 10)),
            1 => format!("org_{}", token(&mut rng, 10)),
            _ => format!("env:{}", Word().fake_with_rng::<String, _>(&mut rng)),
        })
        .collect();
    tags.sort();

    let idempotency_key = rng.random_bool(0.3).then(|| format!("{}-{}", pick(&mut rng, NOUNS), token(&mut rng, 12)));
    let metadata = rng.random_bool(0.35).then(|| metadata(&mut rng, phase));
    let region = rng.random_bool(0.6).then(|| pick(&mut rng, REGIONS).to_string());
    let batch_id = in_batch.then(|| format!("batch_{}", token(&mut rng, 25)));
    let rate = *pick(&mut rng, CENTS_PER_MS);
    let started = started_at.is_some();
    let cost_in_cents = round_cents(duration_ms as f64 * rate);
    let base_cost_in_cents = if started { 0.0025 } else { 0.0 };

    let schedule = scheduled.then(|| {
        let (expression, description) = *pick(&mut rng, CRONS);
        Schedule {
            id: format!("sched_{}", token(&mut rng, 21)),
            external_id: rng.random_bool(0.5).then(|| format!("user_{}", token(&mut rng, 8))),
            deduplication_key: None,
            generator: ScheduleGenerator {
                kind: CronKind::Cron,
                expression: expression.into(),
                description: description.into(),
            },
        }
    });
    let payload = match &schedule {
        Some(s) => schedule_payload(s, created_at),
        None => person_payload(&mut rng),
    };
    let output = (phase == Phase::Succeeded).then(|| output(&mut rng));
    let error = failure(&mut rng, status);

    Run {
        id: id.to_owned(),
        status,
        task_identifier,
        idempotency_key,
        version,
        is_test,
        created_at,
        updated_at,
        started_at,
        finished_at,
        delayed_until,
        expired_at,
        ttl: ttl_secs.map(duration_string),
        tags,
        metadata,
        cost_in_cents,
        base_cost_in_cents,
        duration_ms,
        depth: 0,
        trigger_function: TriggerFunction::of(in_batch, false),
        batch_id,
        region,
        payload: Some(payload),
        output,
        payload_packet: None,
        output_packet: None,
        error,
        schedule,
        root_id: None,
        parent_id: None,
        child_ids: std::sync::Arc::from([]),
        attempt_count,
    }
}

/// The payload a scheduled run receives.
pub fn schedule_payload(schedule: &Schedule, created_at: Millis) -> Value {
    let mut payload = json!({
        "type": "DECLARATIVE",
        "timestamp": created_at,
        "timezone": "UTC",
        "scheduleId": schedule.id,
        "upcoming": [created_at.plus(3_600_000), created_at.plus(7_200_000)],
    });
    if let (Some(external), Some(map)) = (&schedule.external_id, payload.as_object_mut()) {
        map.insert("externalId".into(), json!(external));
    }
    payload
}

fn person_payload(rng: &mut ChaCha8Rng) -> Value {
    let first: String = FirstName().fake_with_rng(rng);
    let last: String = LastName().fake_with_rng(rng);
    let email: String = SafeEmail().fake_with_rng(rng);
    let company: String = CompanyName().fake_with_rng(rng);
    json!({
        "userId": format!("user_{}", token(rng, 10)),
        "name": format!("{first} {last}"),
        "email": email,
        "company": company,
        "plan": pick(rng, &["free", "hobby", "pro", "enterprise"]),
        "quantity": rng.random_range(1..20),
    })
}

fn output(rng: &mut ChaCha8Rng) -> Value {
    let words: Vec<String> = (0..3).map(|_| Word().fake_with_rng(rng)).collect();
    json!({
        "ok": true,
        "processed": rng.random_range(1..5000),
        "summary": words.join(" "),
        "reference": format!("ref_{}", token(rng, 16)),
    })
}

fn metadata(rng: &mut ChaCha8Rng, phase: Phase) -> Map<String, Value> {
    let progress = match phase {
        Phase::Succeeded => 1.0,
        Phase::Delayed | Phase::Queued | Phase::Expired => 0.0,
        _ => f64::from(rng.random_range(0..100u32)) / 100.0,
    };
    let mut m = Map::new();
    m.insert("progress".into(), json_number(progress));
    m.insert("step".into(), json!(Word().fake_with_rng::<String, _>(rng)));
    m
}

fn internal(code: &str) -> SerializedError {
    SerializedError { message: format!("trigger.dev internal error ({code})"), name: None, stack_trace: None }
}

/// The error a failed run carries, as the server renders its `TaskRunError`.
fn failure(rng: &mut ChaCha8Rng, status: EngineStatus) -> Option<SerializedError> {
    Some(match status {
        EngineStatus::CompletedWithErrors | EngineStatus::Interrupted => {
            let (name, message) = *pick(
                rng,
                &[
                    ("Error", "Request failed with status code 502"),
                    ("TypeError", "Cannot read properties of undefined (reading 'id')"),
                    ("AbortError", "This operation was aborted"),
                    ("Error", "Customer not found"),
                ],
            );
            let line = rng.random_range(10..400);
            SerializedError {
                message: message.into(),
                name: Some(name.into()),
                stack_trace: Some(format!(
                    "{name}: {message}\n    at run (file:///src/trigger/task.ts:{line}:15)\n    at async executeTask (file:///node_modules/@trigger.dev/core/dist/esm/v3/workers/taskExecutor.js:150:30)"
                )),
            }
        }
        EngineStatus::Crashed => internal(pick::<&str>(rng, CRASH_CODES)),
        EngineStatus::SystemFailure => internal(pick::<&str>(rng, SYSTEM_FAILURE_CODES)),
        EngineStatus::TimedOut => internal("MAX_DURATION_EXCEEDED"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR: Millis = Millis(1_767_225_600_000); // 2026-01-01T00:00:00Z

    #[test]
    fn fnv1a_is_the_published_function() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn same_inputs_same_run() {
        assert_eq!(generate(7, "run_abc", None, ANCHOR, None), generate(7, "run_abc", None, ANCHOR, None));
        assert_ne!(generate(7, "run_abc", None, ANCHOR, None), generate(8, "run_abc", None, ANCHOR, None));
    }

    #[test]
    fn generated_runs_span_all_statuses() {
        let seen: std::collections::BTreeSet<_> =
            (0..2000).map(|i| generate(1, &format!("run_{i}"), None, ANCHOR, None).status).collect();
        assert_eq!(seen.len(), EngineStatus::ALL.len());
    }

    #[test]
    fn timestamps_agree_with_the_status() {
        for i in 0..3000 {
            let run = generate(3, &format!("run_x{i}"), None, ANCHOR, None);
            let phase = run.status.phase();
            assert!(run.updated_at >= run.created_at, "{run:?}");
            assert!(run.updated_at <= ANCHOR, "{run:?}");
            assert_eq!(run.delayed_until.is_some(), phase == Phase::Delayed, "{run:?}");
            assert_eq!(run.expired_at.is_some(), phase == Phase::Expired, "{run:?}");
            assert_eq!(
                run.finished_at.is_some(),
                matches!(phase, Phase::Succeeded | Phase::Failed | Phase::Canceled | Phase::Expired),
                "{run:?}"
            );
            if matches!(phase, Phase::Delayed | Phase::Queued | Phase::Expired) {
                assert!(run.started_at.is_none(), "{run:?}");
            }
            if let (Some(s), Some(f)) = (run.started_at, run.finished_at) {
                assert!(s >= run.created_at && f >= s, "{run:?}");
                assert!(run.duration_ms as i64 <= f.0 - s.0, "{run:?}");
            }
            if phase == Phase::Expired {
                assert!(run.ttl.is_some(), "{run:?}");
                assert!(run.expired_at <= Some(ANCHOR));
            }
            assert_eq!(run.output.is_some(), phase == Phase::Succeeded);
            assert_eq!(run.error.is_some(), matches!(phase, Phase::Failed), "{run:?}");
            assert!(run.tags.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(run.batch_id.is_some(), run.trigger_function.is_batch());
            assert!(run.cost_in_cents.is_finite() && run.cost_in_cents >= 0.0);
        }
    }
}
