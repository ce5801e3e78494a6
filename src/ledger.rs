//! The ledger: the runs and batches an application creates through the API,
//! one environment per secret key.
//!
//! A created run is the same [`Run`] every other run is, with a
//! [`Lifecycle`] and a [`Progress`] of its own, so retrieve, list, cancel and
//! the admin API all see it through the one lifecycle machinery and render
//! it with the one renderer. The ledger also keeps what an environment did to
//! runs it did not create (cancel, tags, metadata, reschedule of catalogue,
//! scenario and generated runs), so that no other key sees it.
//!
//! Memory is bounded: at most [`Caps::runs_per_env`] runs (and as many
//! batches) per environment, the oldest finished run evicted first (one a
//! request saw finished, or a finished one among the 64 oldest; then the
//! oldest), so a trigger at the cap costs no scan of the whole ledger; at most [`Caps::envs`] environments, the least recently used
//! evicted whole; at most [`Caps::bytes_per_env`] bytes of offloaded
//! packets per environment.
//!
//! Every request that creates or changes a run stamps it
//! ([`EnvState::stamp`]): the stamp orders realtime offsets and wakes the
//! run's realtime polls on the [`crate::notify::Hub`].
//!
//! Run ids are in the real format (`run_` + a 25-character cuid) and
//! deterministic: they depend on the seed, the key and the order of creation
//! only. Their last four characters are a check over the rest, so any key can
//! tell a created id from one the generator should answer, without a lock.

use crate::generate::stable_hash;
use crate::lifecycle::{Lifecycle, Progress, Step, Until};
use crate::model::{EngineStatus, Run, SerializedError, TriggerFunction};
use crate::packet::Packet;
use crate::time::Millis;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The default of `--max-runs-per-env`.
pub const DEFAULT_RUNS_PER_ENV: usize = 1000;
/// The default of `--max-envs`.
pub const DEFAULT_ENVS: usize = 100;
/// Bytes of payloads, outputs and metadata an environment's runs may hold
/// (inline or offloaded), and of uploads no trigger used yet.
pub const DEFAULT_BYTES_PER_ENV: u64 = 64 << 20;
/// Shared lifecycles kept per environment (one per task and TTL in use).
const MAX_SHARED_LIFECYCLES: usize = 64;
/// How many of the oldest runs eviction checks for one finished by time alone.
const EVICTION_SCAN: usize = 64;
/// Uploaded packets no trigger has used yet, per environment.
const MAX_PENDING_UPLOADS: usize = 64;

/// The limits of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Runs kept per environment (batches too).
    pub runs_per_env: usize,
    /// Environments (keys that created something) kept.
    pub envs: usize,
    /// Bytes of payloads, outputs and metadata kept per environment.
    pub bytes_per_env: u64,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps { runs_per_env: DEFAULT_RUNS_PER_ENV, envs: DEFAULT_ENVS, bytes_per_env: DEFAULT_BYTES_PER_ENV }
    }
}

/// What a triggered run's output is once it completes.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputRule {
    /// This value.
    Fixed(Value),
    /// The run's own payload (an offloaded payload stays offloaded).
    Echo,
    /// A value generated from the seed and the run id.
    Generated,
    /// No output.
    Nothing,
}

/// Fields a finished run shows, when the task fixes them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Finish {
    pub attempt_count: Option<u32>,
    pub duration_ms: Option<u64>,
    pub cost_in_cents: Option<f64>,
    pub base_cost_in_cents: Option<f64>,
}

/// How the runs of one task behave once triggered.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Starts queued (`PENDING`); a delay puts a `DELAYED` step in front.
    pub lifecycle: Lifecycle,
    pub output: OutputRule,
    pub finish: Finish,
    /// Where it came from, for the admin API (`default` or `FILE tasks[i]`).
    pub origin: String,
    /// The lifecycle with the TTL of the first run triggered without a
    /// delay, shared by every later such run with that TTL.
    pub shared: SharedLifecycle,
}

/// See [`Task::shared`]: made once, on first use. A copy of the task starts
/// with none, and it takes no part in comparing tasks.
#[derive(Debug, Default)]
pub struct SharedLifecycle(std::sync::OnceLock<Arc<Lifecycle>>);

impl Clone for SharedLifecycle {
    fn clone(&self) -> Self {
        SharedLifecycle::default()
    }
}

impl PartialEq for SharedLifecycle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Task {
    /// The task's lifecycle with TTL `ttl_ms`, when that is the TTL it
    /// shares ([`Task::shared`]); none for another TTL.
    fn shared_lifecycle(&self, ttl_ms: Option<i64>) -> Option<Arc<Lifecycle>> {
        let shared = self.shared.0.get_or_init(|| Arc::new(Lifecycle { ttl_ms, ..self.lifecycle.clone() }));
        // The fields are public: the lifecycle is compared, not trusted.
        shared.same_but_ttl(&self.lifecycle, ttl_ms).then(|| shared.clone())
    }

    /// The behaviour of a task no file names: it is picked up at once,
    /// executes until the first retrieve has seen it, then completes with its
    /// payload as output. So `tasks.trigger` then `runs.poll` ends after one
    /// poll interval, with the clock frozen or not.
    pub fn default_task() -> Task {
        Task {
            lifecycle: Lifecycle {
                steps: vec![
                    Step { status: EngineStatus::Pending, until: Until::Elapsed(0) },
                    Step { status: EngineStatus::Executing, until: Until::Retrieves(1) },
                    Step { status: EngineStatus::CompletedSuccessfully, until: Until::Forever },
                ],
                ttl_ms: None,
                output: None,
                error: Some(SerializedError {
                    message: "Task failed".into(),
                    name: Some("Error".into()),
                    stack_trace: None,
                }),
                // Deployed the day the run is created.
                deploy: crate::generate::Deploy { days_before: 0, build: 1 },
                version: None,
            },
            output: OutputRule::Echo,
            finish: Finish::default(),
            origin: "default".into(),
            shared: SharedLifecycle::default(),
        }
    }
}

/// An idempotency key as the trigger sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as stored (the SDK's SHA-256 hex); the list shows it.
    pub stored: String,
    /// The key as the user wrote it (`idempotencyKeyOptions.key`); retrieve shows it.
    pub user: String,
    /// When the key stops deduplicating.
    pub expires_at: Millis,
}

/// A run to create.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub task: String,
    pub payload: Option<Value>,
    /// The payload as JSON text, when the request carried it so (in place of `payload`).
    pub payload_json: Option<Box<str>>,
    pub payload_packet: Option<Arc<Packet>>,
    /// Runs only from this instant on (a delay in the future).
    pub delay_until: Option<Millis>,
    /// The TTL as shown and in milliseconds.
    pub ttl: Option<(std::borrow::Cow<'static, str>, i64)>,
    pub tags: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
    pub version: Option<String>,
    pub region: Option<String>,
    pub machine: Option<String>,
    pub queue: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
    /// `x-trigger-request-idempotency-key`.
    pub request_key: Option<String>,
    pub batch_id: Option<String>,
    /// The fingerprint of the one-time-use token that asked for the run:
    /// a second run with the same token is refused.
    pub one_time_token: Option<u64>,
}

/// The outcome of a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    pub id: String,
    pub is_cached: bool,
    /// False when an earlier request with the same request key made it.
    pub created: bool,
    /// True when nothing was made: the one-time-use token had made a run
    /// already (`id` is empty).
    pub token_spent: bool,
    /// The run's creation order in its environment (`None` when
    /// `token_spent`): what stamping it needs, without a lookup by id.
    order: Option<u64>,
}

/// One created run. Kept small: an inline payload is held as its bytes and
/// parsed when the run is shown (an echoed output is that payload again), and
/// runs of a task with the same TTL share one lifecycle until one of them is
/// moved (cancel, reschedule, admin), which copies it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The fields the run was created with; the lifecycle moves it.
    own: Own,
    lifecycle: Arc<Lifecycle>,
    pub progress: Progress,
    /// What a finished run shows, when the task fixes anything.
    finish: Option<Box<Finish>>,
    /// The payload shown inline: as JSON text, or the string itself when
    /// `text_payload` (what the SDK sends: a SuperJSON or plain-text string,
    /// held without JSON's quotes and escapes).
    inline_payload: Option<Box<str>>,
    /// The inline payload is a JSON string, held unquoted.
    text_payload: bool,
    /// The output is the payload.
    echo: bool,
    /// A hash of `(task, x-trigger-request-idempotency-key)`.
    request_key: Option<NonZeroU64>,
    /// Bytes of payload, output and metadata this run holds (at most a few
    /// MiB: request bodies and uploads are capped far below 4 GiB).
    bytes: u32,
    /// The environment's change number when a request last created or
    /// changed the run ([`EnvState::stamp`]): orders realtime offsets of
    /// runs changed within one millisecond.
    seq: u64,
}

/// What a created run holds of its own: the fields most runs set, and the
/// others behind one box that only runs setting them have (a full [`Run`] is
/// 800 bytes, most of them empty for a created run).
#[derive(Debug, Clone)]
struct Own {
    /// `run_` and 25 characters, held inline.
    id: RunId,
    /// Shared by the environment's runs of the task.
    task: Arc<str>,
    created_at: Millis,
    first: EngineStatus,
    trigger_function: TriggerFunction,
    /// Sorted; none until a run has one (boxed: 8 bytes on every run
    /// rather than a 24-byte `Vec` that most runs leave empty).
    #[allow(clippy::box_collection)]
    tags: Option<Box<Vec<String>>>,
    /// An offloaded payload.
    payload_packet: Option<Arc<Packet>>,
    /// The echoed offloaded payload, or none.
    output_packet: Option<Arc<Packet>>,
    rare: Option<Box<Rare>>,
}

/// A created run's id, held inline (it is always 29 ASCII characters).
#[derive(Debug, Clone, Copy)]
struct RunId([u8; RUN_ID_LEN]);

/// `run_` and a 25-character cuid.
const RUN_ID_LEN: usize = 29;

impl RunId {
    fn new(id: &str) -> RunId {
        let mut bytes = [b' '; RUN_ID_LEN];
        let n = id.len().min(RUN_ID_LEN);
        bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
        RunId(bytes)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).map_or("", str::trim_end)
    }
}

/// The fields of a created run that few triggers set, or that a later
/// request (metadata, the admin API) sets.
#[derive(Debug, Clone, Default)]
pub struct Rare {
    /// The TTL as given, when it is not how the lifecycle's TTL prints (`10m`).
    pub ttl: Option<Box<str>>,
    /// The user's idempotency key, as retrieve shows it.
    pub idempotency_key: Option<String>,
    /// The stored idempotency key while it deduplicates (or until cleared); the list shows it.
    pub idempotency_stored: Option<String>,
    pub version: Option<String>,
    pub batch_id: Option<String>,
    pub region: Option<String>,
    pub machine: Option<String>,
    /// The queue when the trigger named one (`task/<task>` otherwise).
    pub queue: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// An output set by the admin API or generated.
    pub output: Option<Value>,
    /// An error set by the admin API.
    pub error: Option<SerializedError>,
}

impl Own {
    /// The run as created, as the lifecycle machinery takes it.
    fn run(&self, ttl_ms: Option<i64>) -> Run {
        let empty = Rare::default();
        let rare = self.rare.as_deref().unwrap_or(&empty);
        Run {
            id: self.id.as_str().to_owned(),
            status: self.first,
            task_identifier: self.task.to_string(),
            idempotency_key: rare.idempotency_key.clone(),
            version: rare.version.clone(),
            is_test: false,
            created_at: self.created_at,
            updated_at: self.created_at,
            started_at: None,
            finished_at: None,
            delayed_until: None,
            expired_at: None,
            ttl: rare
                .ttl
                .as_deref()
                .map(str::to_owned)
                .or_else(|| ttl_ms.map(|ms| crate::time::duration_string((ms / 1000) as u64))),
            tags: self.tags.as_deref().cloned().unwrap_or_default(),
            metadata: rare.metadata.clone(),
            cost_in_cents: 0.0,
            base_cost_in_cents: 0.0,
            duration_ms: 0,
            depth: 0,
            trigger_function: self.trigger_function,
            batch_id: rare.batch_id.clone(),
            region: rare.region.clone(),
            payload: None,
            output: rare.output.clone(),
            payload_packet: self.payload_packet.clone(),
            output_packet: self.output_packet.clone(),
            error: rare.error.clone(),
            schedule: None,
            root_id: None,
            parent_id: None,
            child_ids: Arc::from([]),
            attempt_count: 0,
        }
    }
}

impl Entry {
    /// The run's id.
    pub fn id(&self) -> &str {
        self.own.id.as_str()
    }

    /// Its tags, sorted, which a request may add to.
    pub fn tags_mut(&mut self) -> &mut Vec<String> {
        self.own.tags.get_or_insert_with(Default::default)
    }

    /// The fields few runs set, made when first needed (metadata, an admin's output or error).
    pub fn rare(&mut self) -> &mut Rare {
        self.own.rare.get_or_insert_with(Default::default)
    }

    /// Drops an admin's offloaded output, for one given inline.
    pub fn clear_output_packet(&mut self) {
        self.own.output_packet = None;
    }

    /// The stored idempotency key, the machine and the queue, as the list shows them.
    pub fn list_fields(&self) -> (Option<String>, Option<String>, String) {
        let rare = self.own.rare.as_deref();
        (rare.and_then(|r| r.idempotency_stored.clone()), rare.and_then(|r| r.machine.clone()), self.queue())
    }

    fn idempotency_stored(&self) -> Option<&str> {
        self.own.rare.as_deref().and_then(|r| r.idempotency_stored.as_deref())
    }

    /// Applies time up to `now` and returns the run as it is then.
    pub fn view(&mut self, now: Millis) -> Run {
        let base = self.own.run(self.lifecycle.ttl_ms);
        let mut run = self.progress.view(&base, &self.lifecycle, now);
        if let Some(held) = &self.inline_payload {
            run.payload =
                if self.text_payload { Some(Value::String(held.to_string())) } else { serde_json::from_str(held).ok() };
        }
        if self.echo
            && run.status == EngineStatus::CompletedSuccessfully
            && run.output.is_none()
            && run.output_packet.is_none()
        {
            run.output.clone_from(&run.payload);
        }
        finish(&mut run, self.finish.as_deref());
        run
    }

    /// The queue it was triggered on.
    pub fn queue(&self) -> String {
        self.own.rare.as_deref().and_then(|r| r.queue.clone()).unwrap_or_else(|| format!("task/{}", self.own.task))
    }

    /// Moves the end of the current (delayed) step to `until`.
    pub fn reschedule(&mut self, until: Millis) {
        self.progress.end_step_at(Arc::make_mut(&mut self.lifecycle), until);
    }

    /// Moves the run to `status` at `now` for good; false when it had finished.
    pub fn pin(&mut self, status: EngineStatus, now: Millis) -> bool {
        self.progress.pin(Arc::make_mut(&mut self.lifecycle), status, now)
    }

    /// Counts one retrieve made at `now`.
    pub fn count_retrieve(&mut self, now: Millis) {
        self.progress.count_retrieve(&self.lifecycle, now);
    }

    /// The run's tags (sorted) and batch: the topics a change of it wakes
    /// on the realtime hub.
    pub fn topics(&self) -> (&[String], Option<&str>) {
        (
            self.own.tags.as_deref().map_or(&[][..], Vec::as_slice),
            self.own.rare.as_deref().and_then(|r| r.batch_id.as_deref()),
        )
    }

    /// Where the run stands in a realtime feed: the environment's change
    /// number of its last change by a request (high bits), then how many
    /// status changes time and requests made (low 20 bits). Two runs changed
    /// within one millisecond of a frozen clock are told apart by it.
    pub fn realtime_changes(&self) -> u64 {
        (self.seq << 20) | (self.progress.changes() as u64).min((1 << 20) - 1)
    }

    /// When time alone next changes the run, on the mock clock
    /// ([`Progress::next_due`], after applying time up to `now`); `None`
    /// when only a retrieve, a request or the admin API can.
    pub fn next_due(&mut self, now: Millis) -> Option<Millis> {
        self.progress.advance(&self.lifecycle, now);
        self.progress.next_due(&self.lifecycle)
    }

    /// The current status at `now`.
    pub fn status(&mut self, now: Millis) -> EngineStatus {
        self.progress.advance(&self.lifecycle, now);
        self.progress.status(&self.lifecycle)
    }
}

/// What the environment's run shows beyond what the lifecycle gives.
fn finish(run: &mut Run, finish: Option<&Finish>) {
    if run.status == EngineStatus::Canceled && run.error.is_none() {
        run.error = Some(canceled_error());
    }
    if let Some(finish) = finish
        && run.status.is_terminal()
        && run.started_at.is_some()
    {
        if let Some(n) = finish.attempt_count {
            run.attempt_count = n;
        }
        if let Some(d) = finish.duration_ms {
            run.duration_ms = d;
        }
        if let Some(c) = finish.cost_in_cents {
            run.cost_in_cents = c;
        }
        if let Some(c) = finish.base_cost_in_cents {
            run.base_cost_in_cents = c;
        }
    }
}

/// The error a canceled run shows.
pub fn canceled_error() -> SerializedError {
    SerializedError { message: "Canceled by user".into(), name: None, stack_trace: None }
}

/// What an environment did to a run it did not create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// When it was first changed, for eviction.
    pub order: u64,
    pub canceled_at: Option<Millis>,
    pub added_tags: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
    pub delayed_until: Option<Millis>,
}

impl Overlay {
    /// Applies the overlay to the run as the environment sees it otherwise.
    pub fn apply(&self, run: &mut Run) {
        if let Some(at) = self.canceled_at {
            run.status = EngineStatus::Canceled;
            run.updated_at = run.updated_at.max(at);
            run.finished_at = Some(at);
            run.output = None;
            run.output_packet = None;
            run.error = Some(canceled_error());
        }
        if let Some(until) = self.delayed_until
            && run.status == EngineStatus::Delayed
        {
            run.delayed_until = Some(until);
        }
        if !self.added_tags.is_empty() {
            run.tags.extend(self.added_tags.iter().cloned());
            run.tags.sort();
            run.tags.dedup();
        }
        if let Some(m) = &self.metadata {
            run.metadata = Some(m.clone());
        }
    }
}

/// A batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub run_count: u32,
    pub task_identifiers: Vec<String>,
    /// The stored key and the user's key.
    pub idempotency: Option<(String, Option<String>)>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The runs of the items received, by item index.
    pub runs: BTreeMap<u32, String>,
    pub sealed: bool,
}

/// One environment's ledger.
#[derive(Debug, Default)]
pub struct EnvState {
    next_run: u64,
    next_batch: u64,
    next_overlay: u64,
    /// Created runs by creation order (boxed: B-tree nodes of kilobyte-sized
    /// values left a third of their room empty).
    pub runs: BTreeMap<u64, Box<Entry>>,
    /// Runs some request saw finished, for eviction.
    finished: BTreeSet<u64>,
    /// A hash of each run's id → its creation order (checked against the id).
    /// These three indexes are B-trees, not hash maps: a hash map churned at
    /// its cap (one run in, one out) fills with tombstones and doubles its
    /// table, which a B-tree never does (see `a_ledger_at_its_cap_stays_flat`).
    by_id: BTreeMap<u64, u64>,
    /// `(task, stored key)` → creation order.
    idempotency: BTreeMap<(String, String), (u64, Millis)>,
    /// `(task, request key)` → creation order.
    requests: BTreeMap<NonZeroU64, u64>,
    /// Task names shared by the runs of each task.
    task_names: std::collections::HashSet<Arc<str>>,
    /// Lifecycles shared by runs of one task and TTL.
    /// Keyed by a hash of the task and TTL; a collision only costs a copy
    /// (the lifecycle itself is compared).
    lifecycles: HashMap<u64, Arc<Lifecycle>>,
    batches: BTreeMap<u64, Batch>,
    batch_by_id: HashMap<String, u64>,
    /// `(sorted tasks, stored key)` → batch order.
    batch_keys: HashMap<(String, String), u64>,
    /// Mutations of runs this environment did not create.
    pub overlays: HashMap<String, Overlay>,
    /// Uploaded packets by storage path, oldest first.
    uploads: VecDeque<(String, Arc<Packet>)>,
    /// Fingerprints of the one-time-use tokens that made a run, oldest first.
    spent_tokens: VecDeque<u64>,
    bytes: u64,
    /// Counts the changes requests made to the environment's runs.
    seq: u64,
    /// When an eviction last scanned the oldest runs and found none that
    /// time had finished. Until the clock moves on, nothing more can have
    /// finished unseen (a request that finishes a run notes it in
    /// `finished`), so evictions at the same instant skip the scan: it
    /// visits dozens of cold entries, a third of a trigger's time at the cap.
    scanned_unfinished_at: Option<Millis>,
    /// Bumped by every [`Env::with`]: a change of any kind to any run.
    edits: u64,
    /// The last retrieve body rendered of a settled run (see [`Rendered`]).
    rendered: Option<Rendered>,
}

/// A created run's retrieve body, kept while nothing can change it: the run
/// was settled (terminal, see [`Progress::is_settled`]) with no packet URLs
/// to sign, and no request has changed the environment since. One per
/// environment, the run a client polls; at most [`MAX_RENDERED`] bytes.
#[derive(Debug, Clone)]
struct Rendered {
    order: u64,
    edits: u64,
    /// [`crate::world::Rendering::index`] of the options it was rendered with.
    index: usize,
    /// [`crate::world::World::generation`] of the world it was rendered in.
    world: u64,
    body: bytes::Bytes,
}

/// The largest body [`EnvState`] keeps rendered.
pub const MAX_RENDERED: usize = 64 * 1024;

/// An environment: one secret key's ledger and identity.
#[derive(Debug)]
pub struct Env {
    /// The key, as the journal and the admin API name it.
    pub key: Arc<str>,
    /// Six characters that name the environment in run ids and upload URLs.
    pub fingerprint: String,
    last_used: AtomicU64,
    has_overlays: AtomicBool,
    state: Mutex<EnvState>,
}

#[derive(Debug, Default)]
struct Envs {
    /// Looked up on every request that names a created run; at most
    /// `--max-envs` entries, so a quick hash (not a keyed one) is safe.
    by_key: rustc_hash::FxHashMap<Arc<str>, Arc<Env>>,
    by_fingerprint: HashMap<String, Vec<Arc<Env>>>,
}

/// Every environment's ledger.
#[derive(Debug)]
pub struct Ledger {
    seed: u64,
    caps: Caps,
    envs: RwLock<Envs>,
    stamp: AtomicU64,
    /// Set once any environment changed a run it did not create: until then
    /// a retrieve of such a run looks at no environment.
    any_overlays: AtomicBool,
}

const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The last `N` base-36 digits of `n`, most significant first.
fn base36<const N: usize>(mut n: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = ALNUM[(n % 36) as usize];
        n /= 36;
    }
    out
}

/// Appends ASCII `digits` to `out`.
fn push_digits(out: &mut String, digits: &[u8]) {
    digits.iter().for_each(|d| out.push(char::from(*d)));
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The six-character fingerprint of `key` under `seed`.
pub fn fingerprint(seed: u64, key: &str) -> String {
    let mut fp = String::with_capacity(6);
    push_digits(&mut fp, &base36::<6>(mix(seed, stable_hash(key.as_bytes()))));
    fp
}

/// The 4-character check of a created id's `body`, as bytes.
fn check_bytes(seed: u64, prefix: &str, body: &str) -> [u8; 4] {
    let joined = crate::generate::stable_hash_on(stable_hash(prefix.as_bytes()), body.as_bytes());
    base36::<4>(mix(seed ^ 0x1ed9e5, joined))
}

/// A created id: `PREFIX` + `c` + fingerprint(6) + 14 characters drawn from
/// (seed, key, order) + a 4-character check.
fn make_id(seed: u64, prefix: &str, fp: &str, key: &str, order: u64) -> String {
    let a = mix(seed ^ order, stable_hash(key.as_bytes()) ^ stable_hash(prefix.as_bytes()));
    let b = mix(a, order.wrapping_add(0x5851_f42d));
    let mut id = String::with_capacity(prefix.len() + 1 + fp.len() + 18);
    id.push_str(prefix);
    id.push('c');
    id.push_str(fp);
    push_digits(&mut id, &base36::<7>(a));
    push_digits(&mut id, &base36::<7>(b));
    let check = check_bytes(seed, prefix, &id[prefix.len()..]);
    push_digits(&mut id, &check);
    id
}

/// True when `id` is one the ledger made (in any environment) under `seed`.
pub fn is_created_id(seed: u64, prefix: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix) else { return false };
    if rest.len() != 25 || !rest.starts_with('c') || !rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return false;
    }
    let (body, tail) = rest.split_at(21);
    check_bytes(seed, prefix, body) == tail.as_bytes()
}

/// The environment fingerprint inside a created id.
pub fn fingerprint_of<'a>(prefix: &str, id: &'a str) -> Option<&'a str> {
    id.strip_prefix(prefix)?.get(1..7)
}

/// Statuses that free an idempotency key: the next trigger with it makes a new run.
pub fn frees_idempotency_key(status: EngineStatus) -> bool {
    matches!(
        status,
        EngineStatus::Interrupted
            | EngineStatus::CompletedWithErrors
            | EngineStatus::SystemFailure
            | EngineStatus::Crashed
            | EngineStatus::TimedOut
            | EngineStatus::Expired
    )
}

impl Ledger {
    /// An empty ledger.
    pub fn new(seed: u64, caps: Caps) -> Ledger {
        Ledger {
            seed,
            caps,
            envs: RwLock::new(Envs::default()),
            stamp: AtomicU64::new(0),
            any_overlays: AtomicBool::new(false),
        }
    }

    /// The seed of its ids.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Its limits.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// The environment of `key` when it changed a run it did not create.
    pub fn env_with_overlays(&self, key: &str) -> Option<Arc<Env>> {
        if !self.any_overlays.load(Ordering::Relaxed) {
            return None;
        }
        self.env(key).filter(|e| e.has_overlays())
    }

    /// Notes that some environment changed a run it did not create.
    pub fn note_overlay(&self) {
        self.any_overlays.store(true, Ordering::Relaxed);
    }

    /// True when `id` is a run id this ledger makes.
    pub fn is_run_id(&self, id: &str) -> bool {
        is_created_id(self.seed, "run_", id)
    }

    fn touch(&self, env: &Env) {
        env.last_used.store(self.stamp.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The environment of `key`, if it exists.
    pub fn env(&self, key: &str) -> Option<Arc<Env>> {
        let env = self.envs.read().unwrap_or_else(|p| p.into_inner()).by_key.get(key).cloned()?;
        self.touch(&env);
        Some(env)
    }

    /// The environment of `key`, created if new (evicting the least recently
    /// used one when there are as many as the cap).
    pub fn env_or_create(&self, key: &str) -> Arc<Env> {
        if let Some(env) = self.env(key) {
            return env;
        }
        let mut envs = self.envs.write().unwrap_or_else(|p| p.into_inner());
        if let Some(env) = envs.by_key.get(key) {
            return env.clone();
        }
        while envs.by_key.len() >= self.caps.envs.max(1) {
            let Some(oldest) =
                envs.by_key.values().min_by_key(|e| e.last_used.load(Ordering::Relaxed)).map(|e| e.key.clone())
            else {
                break;
            };
            if let Some(gone) = envs.by_key.remove(&oldest)
                && let Some(list) = envs.by_fingerprint.get_mut(&gone.fingerprint)
            {
                list.retain(|e| !Arc::ptr_eq(e, &gone));
                if list.is_empty() {
                    envs.by_fingerprint.remove(&gone.fingerprint);
                }
            }
        }
        let key: Arc<str> = Arc::from(key);
        let env = Arc::new(Env {
            fingerprint: fingerprint(self.seed, &key),
            key: key.clone(),
            last_used: AtomicU64::new(0),
            has_overlays: AtomicBool::new(false),
            state: Mutex::new(EnvState::default()),
        });
        self.touch(&env);
        envs.by_fingerprint.entry(env.fingerprint.clone()).or_default().push(env.clone());
        envs.by_key.insert(key, env.clone());
        env
    }

    /// The environments whose fingerprint is `fp` (almost always one).
    pub fn by_fingerprint(&self, fp: &str) -> Vec<Arc<Env>> {
        self.envs.read().unwrap_or_else(|p| p.into_inner()).by_fingerprint.get(fp).cloned().unwrap_or_default()
    }

    /// How many environments exist.
    pub fn env_count(&self) -> usize {
        self.envs.read().unwrap_or_else(|p| p.into_inner()).by_key.len()
    }

    /// Forgets one key's environment, or all.
    pub fn reset(&self, key: Option<&str>) {
        let mut envs = self.envs.write().unwrap_or_else(|p| p.into_inner());
        match key {
            Some(key) => {
                if let Some(gone) = envs.by_key.remove(key) {
                    envs.by_fingerprint.remove(&gone.fingerprint);
                    let others: Vec<Arc<Env>> =
                        envs.by_key.values().filter(|e| e.fingerprint == gone.fingerprint).cloned().collect();
                    if !others.is_empty() {
                        envs.by_fingerprint.insert(gone.fingerprint.clone(), others);
                    }
                }
            }
            None => *envs = Envs::default(),
        }
    }

    /// A created run's offloaded packet, for the packet route (which has no key).
    pub fn packet(&self, run_id: &str, output: bool, now: Millis) -> Option<Arc<Packet>> {
        let fp = fingerprint_of("run_", run_id)?;
        for env in self.by_fingerprint(fp) {
            let found = env.with(|st| {
                let entry = st.entry_mut(run_id)?;
                let run = entry.view(now);
                if output { run.output_packet } else { run.payload_packet }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Creates a run in `key`'s environment (see [`EnvState::trigger`]).
    pub fn trigger(
        &self,
        key: &str,
        task: &Task,
        new: NewRun,
        trigger_function: TriggerFunction,
        now: Millis,
    ) -> Triggered {
        self.trigger_stamped(key, task, new, trigger_function, now, |_, _, _| {})
    }

    /// [`Ledger::trigger`], and under the same lock the stamp a request's
    /// change gives the run it names ([`EnvState::stamp`], calling
    /// `changed` with its tags and batch for the realtime hub): what the
    /// caller would otherwise do with a second lookup and lock.
    ///
    /// The run is built before the environment's lock is taken, and what
    /// the trigger leaves (runs evicted, a draft not used) is freed after it
    /// is released: two triggers into one environment wait on each other
    /// only for the bookkeeping.
    pub fn trigger_stamped(
        &self,
        key: &str,
        task: &Task,
        new: NewRun,
        trigger_function: TriggerFunction,
        now: Millis,
        changed: impl FnOnce(&str, &[String], Option<&str>),
    ) -> Triggered {
        let draft = Draft::new(task, new, trigger_function, now);
        let env = self.env_or_create(key);
        let (done, spent) = env.with(|st| {
            let (done, spent) = st.trigger_draft(self, &env, draft, now);
            if let Some(order) = done.order {
                st.stamp_order(order, |tags, batch| changed(&done.id, tags, batch));
            }
            (done, spent)
        });
        drop(spent);
        done
    }
}

impl Env {
    /// Runs `f` on the environment's state under its lock (never held across `.await`).
    pub fn with<R>(&self, f: impl FnOnce(&mut EnvState) -> R) -> R {
        self.with_retrieve(|state| {
            // Whatever `f` does may change a run: a kept body is no longer good.
            state.note_edit();
            let r = f(state);
            self.has_overlays.store(!state.overlays.is_empty(), Ordering::Relaxed);
            r
        })
    }

    /// [`Env::with`] for a retrieve, which changes a run only by counting
    /// it (it calls [`EnvState::note_edit`] when that moved the run on).
    pub fn with_retrieve<R>(&self, f: impl FnOnce(&mut EnvState) -> R) -> R {
        let mut state = crate::spin::lock(&self.state);
        f(&mut state)
    }

    /// True when the environment changed a run it did not create (checked
    /// without the lock, so retrieves of other runs stay lock-free).
    pub fn has_overlays(&self) -> bool {
        self.has_overlays.load(Ordering::Relaxed)
    }
}

impl EnvState {
    /// The creation order of the created run `id`.
    fn order_of(&self, id: &str) -> Option<u64> {
        let order = *self.by_id.get(&stable_hash(id.as_bytes()))?;
        self.runs.get(&order).filter(|e| e.id() == id).map(|_| order)
    }

    /// Notes a change to a run made under [`Env::with_retrieve`].
    pub fn note_edit(&mut self) {
        self.edits = self.edits.wrapping_add(1);
    }

    /// The change count a body rendered now is kept under (see [`EnvState::keep_rendered`]).
    pub fn edits(&self) -> u64 {
        self.edits
    }

    /// True when the created run `id` is settled and shows no packet URLs:
    /// its body stays the same until something changes it.
    pub fn is_settled(&self, id: &str) -> bool {
        self.order_of(id).and_then(|o| self.runs.get(&o)).is_some_and(|e| {
            e.own.payload_packet.is_none() && e.own.output_packet.is_none() && e.progress.is_settled(&e.lifecycle)
        })
    }

    /// The body kept for run `id` rendered with options `index` in world
    /// `world`, when nothing changed since.
    pub fn rendered(&self, id: &str, index: usize, world: u64) -> Option<bytes::Bytes> {
        let kept = self.rendered.as_ref().filter(|r| r.edits == self.edits && r.index == index && r.world == world)?;
        (self.order_of(id)? == kept.order).then(|| kept.body.clone())
    }

    /// Keeps `body`, rendered for run `id` (settled: see
    /// [`EnvState::is_settled`]) when the change count was `edits`, unless
    /// something changed since or it is larger than [`MAX_RENDERED`].
    pub fn keep_rendered(&mut self, id: &str, index: usize, world: u64, edits: u64, body: &bytes::Bytes) {
        if edits != self.edits || body.len() > MAX_RENDERED {
            return;
        }
        if let Some(order) = self.order_of(id) {
            self.rendered = Some(Rendered { order, edits, index, world, body: body.clone() });
        }
    }

    /// The created run `id`.
    pub fn entry_mut(&mut self, id: &str) -> Option<&mut Entry> {
        let order = self.order_of(id)?;
        self.runs.get_mut(&order).map(|e| &mut **e)
    }

    /// A request created or changed the run `id`: gives it the next change
    /// number (see [`Entry::realtime_changes`]) and calls `changed` with its
    /// tags and batch, for the realtime hub. False when there is no such run.
    pub fn stamp(&mut self, id: &str, changed: impl FnOnce(&[String], Option<&str>)) -> bool {
        self.order_of(id).is_some_and(|order| self.stamp_order(order, changed))
    }

    /// [`EnvState::stamp`] of the run made `order`-th.
    fn stamp_order(&mut self, order: u64, changed: impl FnOnce(&[String], Option<&str>)) -> bool {
        let Some(entry) = self.runs.get_mut(&order) else { return false };
        self.seq += 1;
        entry.seq = self.seq;
        let (tags, batch) = entry.topics();
        changed(tags, batch);
        true
    }

    /// The created run `id`, viewed at `now`; `count` counts a retrieve.
    pub fn view(&mut self, id: &str, now: Millis, count: bool) -> Option<Run> {
        self.view_counting(id, now, |_| count)
    }

    /// [`EnvState::view`], counting a retrieve when `count` says so of the
    /// run as it was seen (a token that may not read it does not move it on).
    pub fn view_counting(&mut self, id: &str, now: Millis, count: impl FnOnce(&Run) -> bool) -> Option<Run> {
        let order = self.order_of(id)?;
        let entry = self.runs.get_mut(&order)?;
        let run = entry.view(now);
        if count(&run) {
            entry.count_retrieve(now);
        }
        if entry.status(now).is_terminal() {
            self.finished.insert(order);
        }
        Some(run)
    }

    /// Created runs, newest first, viewed at `now`, with the stored
    /// idempotency key, machine and queue of each.
    pub fn runs_newest_first(&mut self, now: Millis) -> Vec<(Run, Option<String>, Option<String>, String)> {
        let finished = &mut self.finished;
        self.runs
            .iter_mut()
            .rev()
            .map(|(order, e)| {
                let run = e.view(now);
                if run.status.is_terminal() {
                    finished.insert(*order);
                }
                let (stored, machine, queue) = e.list_fields();
                (run, stored, machine, queue)
            })
            .collect()
    }

    /// Moves a created run to `status` at `now` for good. `Err` with the
    /// status it has when it is finished already; `None` for no such run.
    pub fn pin(&mut self, id: &str, status: EngineStatus, now: Millis) -> Option<Result<(), EngineStatus>> {
        let order = self.order_of(id)?;
        let entry = self.runs.get_mut(&order)?;
        let current = entry.status(now);
        let moved = current == status || entry.pin(status, now);
        let outcome = if moved { Ok(()) } else { Err(current) };
        if entry.status(now).is_terminal() {
            self.finished.insert(order);
        }
        Some(outcome)
    }

    /// The payload of an uploaded packet at `path`, taken for a run.
    pub fn take_upload(&mut self, path: &str) -> Option<Arc<Packet>> {
        let i = self.uploads.iter().position(|(p, _)| p == path)?;
        self.uploads.remove(i).map(|(_, p)| p)
    }

    /// Keeps an uploaded packet until a trigger uses it.
    pub fn put_upload(&mut self, caps: &Caps, path: String, packet: Arc<Packet>) {
        self.uploads.retain(|(p, _)| *p != path);
        self.uploads.push_back((path, packet));
        while self.uploads.len() > MAX_PENDING_UPLOADS
            || self.uploads.iter().map(|(_, p)| p.size()).sum::<u64>() > caps.bytes_per_env
        {
            if self.uploads.pop_front().is_none() {
                break;
            }
        }
    }

    /// The run a retried request made, if any, and its creation order.
    fn request_run(&self, task: &str, request_key: &str) -> Option<(u64, String)> {
        let order = *self.requests.get(&request_hash(task, request_key))?;
        self.runs.get(&order).map(|e| (order, e.id().to_owned()))
    }

    /// Creates a run (or finds the one its keys name).
    pub fn trigger(
        &mut self,
        ledger: &Ledger,
        env: &Env,
        task: &Task,
        new: NewRun,
        trigger_function: TriggerFunction,
        now: Millis,
    ) -> Triggered {
        let draft = Draft::new(task, new, trigger_function, now);
        self.trigger_draft(ledger, env, draft, now).0
    }

    /// [`EnvState::trigger`] of a run built beforehand ([`Draft::new`]);
    /// what it leaves is returned, to be freed once the lock is released.
    pub fn trigger_draft(&mut self, ledger: &Ledger, env: &Env, draft: Draft, now: Millis) -> (Triggered, Spent) {
        let Draft { mut rest, lifecycle, delayed, parts } = draft;
        let new = &rest.new;
        let unused = |rest, parts, done| (done, Spent { runs: Vec::new(), rest, parts: Some(parts) });
        if let Some(rk) = &new.request_key
            && let Some((order, id)) = self.request_run(&new.task, rk)
        {
            let done = Triggered { id, is_cached: false, created: false, token_spent: false, order: Some(order) };
            return unused(rest, parts, done);
        }
        if let Some(key) = &new.idempotency {
            let slot = (new.task.clone(), key.stored.clone());
            if let Some(&(order, expires_at)) = self.idempotency.get(&slot) {
                let status = self.runs.get_mut(&order).map(|e| e.status(now));
                match status {
                    Some(s) if expires_at > now && !frees_idempotency_key(s) => {
                        // The request key is not recorded: only a run's own request keeps one,
                        // so the map stays as small as the ledger.
                        let id = self.runs.get(&order).map(|e| e.id().to_owned()).unwrap_or_default();
                        return unused(
                            rest,
                            parts,
                            Triggered { id, is_cached: true, created: false, token_spent: false, order: Some(order) },
                        );
                    }
                    _ => {
                        // Expired, or the run failed: the key is cleared on the old run.
                        self.idempotency.remove(&slot);
                        if let Some(e) = self.runs.get_mut(&order) {
                            let rare = e.rare();
                            rare.idempotency_stored = None;
                            rare.idempotency_key = None;
                        }
                    }
                }
            }
        }
        if let Some(fingerprint) = new.one_time_token {
            if self.spent_tokens.contains(&fingerprint) {
                let done =
                    Triggered { id: String::new(), is_cached: false, created: false, token_spent: true, order: None };
                return unused(rest, parts, done);
            }
            // As many as the runs kept: a token older than those may be used again.
            if self.spent_tokens.len() >= ledger.caps.runs_per_env {
                self.spent_tokens.pop_front();
            }
            self.spent_tokens.push_back(fingerprint);
        }
        let order = self.next_run;
        self.next_run += 1;
        let id = make_id(ledger.seed, "run_", &env.fingerprint, &env.key, order);
        let lifecycle = match lifecycle {
            DraftLifecycle::Shared(shared) => shared,
            DraftLifecycle::Own(own) => {
                let (lifecycle, spare) = self.share_lifecycle(&rest.new.task, *own, delayed);
                rest.spare = spare;
                lifecycle
            }
        };
        let task_name = self.task_name(&rest.new.task);
        let entry = Draft::finish(parts, ledger.seed, &id, task_name, lifecycle, now);
        self.bytes += u64::from(entry.bytes);
        if let Some(key) = &rest.new.idempotency {
            self.idempotency.insert((rest.new.task.clone(), key.stored.clone()), (order, key.expires_at));
        }
        if let Some(rk) = entry.request_key {
            self.requests.insert(rk, order);
        }
        self.by_id.insert(stable_hash(id.as_bytes()), order);
        self.runs.insert(order, Box::new(entry));
        let runs = self.evict(&ledger.caps, now, order);
        let done = Triggered { id, is_cached: false, created: true, token_spent: false, order: Some(order) };
        (done, Spent { runs, rest, parts: None })
    }

    /// Drops runs over the caps: the oldest finished first, then the oldest.
    /// `keep` (the run just made) is never dropped.
    /// Returns the runs dropped, for the caller to free after the lock.
    #[must_use]
    #[allow(clippy::vec_box, reason = "entries leave the map boxed: unboxing would copy them under the lock")]
    fn evict(&mut self, caps: &Caps, now: Millis, keep: u64) -> Vec<Box<Entry>> {
        let mut dropped = Vec::new();
        while self.runs.len() > caps.runs_per_env.max(1) || self.bytes > caps.bytes_per_env {
            // Runs seen finished, oldest first; then a finished one among the
            // oldest few (time may have finished them unseen); then the oldest.
            let mut seen = None;
            while let Some(order) = self.finished.pop_first() {
                if order != keep && self.runs.contains_key(&order) {
                    seen = Some(order);
                    break;
                }
            }
            let scanned = self.scanned_unfinished_at;
            let victim = seen
                .or_else(|| {
                    if scanned == Some(now) {
                        return None;
                    }
                    let found = self
                        .runs
                        .iter_mut()
                        .take(EVICTION_SCAN)
                        .filter(|(o, _)| **o != keep)
                        .find_map(|(o, e)| e.status(now).is_terminal().then_some(*o));
                    if found.is_none() {
                        self.scanned_unfinished_at = Some(now);
                    }
                    found
                })
                .or_else(|| self.runs.keys().copied().find(|o| *o != keep));
            let Some(order) = victim else { break };
            dropped.extend(self.remove(order));
        }
        while self.batches.len() > caps.runs_per_env.max(1) {
            let Some((&order, _)) = self.batches.iter().next() else { break };
            if let Some(b) = self.batches.remove(&order) {
                self.batch_by_id.remove(&b.id);
                self.batch_keys.retain(|_, o| *o != order);
            }
        }
        dropped
    }

    fn remove(&mut self, order: u64) -> Option<Box<Entry>> {
        self.finished.remove(&order);
        let entry = self.runs.remove(&order)?;
        let hash = stable_hash(entry.own.id.as_str().as_bytes());
        if self.by_id.get(&hash) == Some(&order) {
            self.by_id.remove(&hash);
        }
        self.bytes = self.bytes.saturating_sub(u64::from(entry.bytes));
        if let Some(stored) = entry.idempotency_stored() {
            let slot = (entry.own.task.to_string(), stored.to_owned());
            if self.idempotency.get(&slot).is_some_and(|(o, _)| *o == order) {
                self.idempotency.remove(&slot);
            }
        }
        if let Some(rk) = entry.request_key {
            self.requests.remove(&rk);
        }
        Some(entry)
    }

    /// The task's name, shared by the environment's runs of it.
    fn task_name(&mut self, task: &str) -> Arc<str> {
        if let Some(name) = self.task_names.get(task) {
            return name.clone();
        }
        if self.task_names.len() >= MAX_SHARED_LIFECYCLES * 16 {
            self.task_names.clear();
        }
        let name: Arc<str> = Arc::from(task);
        self.task_names.insert(name.clone());
        name
    }

    /// The `lifecycle` of a new run of `task`, shared with the environment's
    /// other runs of that task and TTL unless it is `delayed`. The copy not
    /// needed is returned, to be freed after the lock.
    fn share_lifecycle(
        &mut self,
        task: &str,
        lifecycle: Lifecycle,
        delayed: bool,
    ) -> (Arc<Lifecycle>, Option<Lifecycle>) {
        if delayed {
            return (Arc::new(lifecycle), None);
        }
        let slot = mix(stable_hash(task.as_bytes()), lifecycle.ttl_ms.map_or(u64::MAX, |ms| ms as u64));
        if let Some(shared) = self.lifecycles.get(&slot).filter(|l| ***l == lifecycle) {
            return (shared.clone(), Some(lifecycle));
        }
        if self.lifecycles.len() >= MAX_SHARED_LIFECYCLES {
            self.lifecycles.clear();
        }
        let shared = Arc::new(lifecycle);
        self.lifecycles.insert(slot, shared.clone());
        (shared, None)
    }

    /// How many runs the environment holds.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Creates a batch, or finds the one its idempotency key names.
    /// Returns the batch and whether it was cached.
    pub fn create_batch(
        &mut self,
        ledger: &Ledger,
        env: &Env,
        run_count: u32,
        mut tasks: Vec<String>,
        idempotency: Option<(String, Option<String>)>,
        now: Millis,
    ) -> (Batch, bool) {
        tasks.sort();
        tasks.dedup();
        let slot = idempotency.as_ref().map(|(stored, _)| (tasks.join(","), stored.clone()));
        if let Some(slot) = &slot
            && let Some(b) = self.batch_keys.get(slot).and_then(|o| self.batches.get(o))
        {
            return (b.clone(), true);
        }
        let order = self.next_batch;
        self.next_batch += 1;
        let id = make_id(ledger.seed, "batch_", &env.fingerprint, &env.key, order);
        let batch = Batch {
            id: id.clone(),
            run_count,
            task_identifiers: tasks,
            idempotency,
            created_at: now,
            updated_at: now,
            runs: BTreeMap::new(),
            sealed: false,
        };
        if let Some(slot) = slot {
            self.batch_keys.insert(slot, order);
        }
        self.batch_by_id.insert(id, order);
        self.batches.insert(order, batch.clone());
        drop(self.evict(&ledger.caps, now, u64::MAX));
        (batch, false)
    }

    /// The batch `id`.
    pub fn batch_mut(&mut self, id: &str) -> Option<&mut Batch> {
        let order = *self.batch_by_id.get(id)?;
        self.batches.get_mut(&order)
    }

    /// Records what the environment did to a run it did not create. At most
    /// as many runs as the run cap have changes; the oldest changed goes first.
    pub fn overlay(&mut self, caps: &Caps, id: &str) -> &mut Overlay {
        if !self.overlays.contains_key(id) {
            while self.overlays.len() >= caps.runs_per_env.max(1) {
                let Some(oldest) = self.overlays.iter().min_by_key(|(_, o)| o.order).map(|(k, _)| k.clone()) else {
                    break;
                };
                self.overlays.remove(&oldest);
            }
            self.next_overlay += 1;
            let order = self.next_overlay;
            self.overlays.insert(id.to_owned(), Overlay { order, ..Overlay::default() });
        }
        match self.overlays.get_mut(id) {
            Some(o) => o,
            None => unreachable!("inserted above"),
        }
    }
}

/// A key's hash of `(task, request idempotency key)`.
fn request_hash(task: &str, request_key: &str) -> NonZeroU64 {
    NonZeroU64::new(mix(stable_hash(task.as_bytes()), stable_hash(request_key.as_bytes()))).unwrap_or(NonZeroU64::MIN)
}

/// A created run built before its environment's lock is taken: all of it
/// but what the environment decides (its order and id, and the task name
/// and lifecycle it shares with the environment's other runs of the task).
/// After the trigger it holds what is left, freed once the lock is released.
pub struct Draft {
    rest: Rest,
    lifecycle: DraftLifecycle,
    /// The run starts delayed: its lifecycle is its own.
    delayed: bool,
    parts: Parts,
}

/// The task's lifecycle with the run's TTL and delay: the task's shared one,
/// or one to share with the environment's runs (or keep, when delayed).
enum DraftLifecycle {
    Shared(Arc<Lifecycle>),
    Own(Box<Lifecycle>),
}

impl DraftLifecycle {
    fn get(&self) -> &Lifecycle {
        match self {
            DraftLifecycle::Shared(shared) => shared,
            DraftLifecycle::Own(own) => own,
        }
    }
}

/// The request a [`Draft`] was built from, and its lifecycle when the
/// environment shares an equal one.
struct Rest {
    new: NewRun,
    spare: Option<Lifecycle>,
}

/// What a [`Draft`] builds of the [`Entry`].
struct Parts {
    first: EngineStatus,
    trigger_function: TriggerFunction,
    #[allow(clippy::box_collection)]
    tags: Option<Box<Vec<String>>>,
    payload_packet: Option<Arc<Packet>>,
    output_packet: Option<Arc<Packet>>,
    rare: Option<Box<Rare>>,
    progress: Progress,
    finish: Option<Box<Finish>>,
    inline_payload: Option<Box<str>>,
    text_payload: bool,
    echo: bool,
    request_key: Option<NonZeroU64>,
    bytes: u32,
    /// The output is generated from the run's id once it has one.
    generated: bool,
}

/// What a trigger leaves: runs evicted to make room and the draft's
/// remains, freed by dropping it once the environment's lock is released.
#[allow(dead_code, reason = "held only to be dropped")]
pub struct Spent {
    #[allow(clippy::vec_box, reason = "as the map held them")]
    runs: Vec<Box<Entry>>,
    rest: Rest,
    /// The parts of a run not made (an idempotent hit).
    parts: Option<Parts>,
}

impl Draft {
    /// Builds the run that `new` asks of `task`.
    pub fn new(task: &Task, mut new: NewRun, trigger_function: TriggerFunction, now: Millis) -> Draft {
        let ttl_ms = new.ttl.as_ref().map(|(_, ms)| *ms).or(task.lifecycle.ttl_ms);
        let delayed = new.delay_until.is_some_and(|until| until > now);
        let lifecycle = match task.shared_lifecycle(ttl_ms).filter(|_| !delayed) {
            Some(shared) => DraftLifecycle::Shared(shared),
            None => {
                let mut lifecycle = Lifecycle { ttl_ms, ..task.lifecycle.clone() };
                if let Some(until) = new.delay_until.filter(|_| delayed) {
                    let delay = Step { status: EngineStatus::Delayed, until: Until::Elapsed(until.0 - now.0) };
                    lifecycle.steps.insert(0, delay);
                }
                DraftLifecycle::Own(Box::new(lifecycle))
            }
        };
        let first = lifecycle.get().steps.first().map_or(EngineStatus::Pending, |s| s.status);
        let mut tags = std::mem::take(&mut new.tags);
        tags.sort();
        tags.dedup();
        let output_packet = match &task.output {
            OutputRule::Echo => new.payload_packet.clone(),
            OutputRule::Generated | OutputRule::Fixed(_) | OutputRule::Nothing => None,
        };
        // Counted as its JSON text, however it is held.
        let json_len = match (&new.payload_json, &new.payload) {
            (Some(json), _) => json.len(),
            (None, Some(Value::String(s))) => crate::model::json_string_len(s),
            (None, Some(other)) => other.to_string().len(),
            (None, None) => 0,
        };
        let text_payload = new.payload_json.is_none() && matches!(new.payload, Some(Value::String(_)));
        let inline_payload: Option<Box<str>> = new.payload_json.take().or_else(|| {
            new.payload.take().map(|v| match v {
                Value::String(s) => s.into_boxed_str(),
                other => other.to_string().into(),
            })
        });
        let payload_bytes = new.payload_packet.as_ref().map_or(0, |p| p.size()) + json_len as u64;
        // An echoed output costs nothing more: the same packet, or the payload parsed again when shown.
        let metadata_bytes = new.metadata.as_ref().map_or(0, |m| serde_json::to_vec(m).map_or(0, |v| v.len()) as u64);
        let bytes = payload_bytes + metadata_bytes;
        let rare = Rare {
            ttl: new
                .ttl
                .as_ref()
                .filter(|(s, ms)| !crate::time::is_duration_string(s, (ms / 1000) as u64))
                .map(|(s, _)| (**s).into()),
            idempotency_key: new.idempotency.as_ref().map(|k| k.user.clone()),
            idempotency_stored: new.idempotency.as_ref().map(|k| k.stored.clone()),
            version: new.version.take(),
            batch_id: new.batch_id.take(),
            region: new.region.take(),
            machine: new.machine.take(),
            queue: new.queue.take(),
            metadata: new.metadata.take(),
            output: None,
            error: None,
        };
        let some = |o: &Option<String>| o.is_some();
        let any_rare = [&rare.idempotency_key, &rare.version, &rare.batch_id, &rare.region, &rare.machine, &rare.queue]
            .into_iter()
            .any(some)
            || rare.ttl.is_some()
            || rare.metadata.is_some();
        let parts = Parts {
            first,
            trigger_function,
            tags: (!tags.is_empty()).then(|| Box::new(tags)),
            payload_packet: new.payload_packet.take(),
            output_packet,
            rare: any_rare.then(|| Box::new(rare)),
            progress: Progress::begin(now, now, lifecycle.get(), now, now),
            finish: (task.finish != Finish::default()).then(|| Box::new(task.finish)),
            inline_payload,
            text_payload,
            echo: task.output == OutputRule::Echo,
            request_key: new.request_key.as_deref().map(|rk| request_hash(&new.task, rk)),
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            generated: task.output == OutputRule::Generated,
        };
        Draft { rest: Rest { new, spare: None }, lifecycle, delayed, parts }
    }

    /// The entry, once the environment has given the run its `id`, the
    /// task's shared name and its lifecycle.
    fn finish(p: Parts, seed: u64, id: &str, task: Arc<str>, lifecycle: Arc<Lifecycle>, now: Millis) -> Entry {
        let mut rare = p.rare;
        if p.generated {
            let generated = crate::generate::generate(seed, id, Some(EngineStatus::CompletedSuccessfully), now, None);
            if generated.output.is_some() {
                rare.get_or_insert_with(Box::default).output = generated.output;
            }
        }
        Entry {
            own: Own {
                id: RunId::new(id),
                task,
                created_at: now,
                first: p.first,
                trigger_function: p.trigger_function,
                tags: p.tags,
                payload_packet: p.payload_packet,
                output_packet: p.output_packet,
                rare,
            },
            lifecycle,
            progress: p.progress,
            finish: p.finish,
            inline_payload: p.inline_payload,
            text_payload: p.text_payload,
            echo: p.echo,
            request_key: p.request_key,
            bytes: p.bytes,
            seq: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = Millis(1_767_225_600_000);

    fn new(task: &str) -> NewRun {
        NewRun { task: task.into(), payload: Some(serde_json::json!({"a": 1})), ..NewRun::default() }
    }

    #[test]
    fn runs_share_their_tasks_lifecycle_only_while_it_is_the_same() {
        let l = Ledger::new(1, Caps::default());
        let mut t = Task::default_task();
        let ten = || NewRun { ttl: Some(("10m".into(), 600_000)), ..new("x") };
        let ids: Vec<String> = [ten(), ten(), new("x"), new("x")]
            .into_iter()
            .map(|n| l.trigger("tr_dev_a", &t, n, TriggerFunction::Trigger, T0).id)
            .collect();
        // A task whose lifecycle changed after its first run shares nothing stale.
        t.lifecycle.steps = vec![Step { status: EngineStatus::Pending, until: Until::Forever }];
        let changed = l.trigger("tr_dev_a", &t, ten(), TriggerFunction::Trigger, T0).id;
        let env = l.env("tr_dev_a").unwrap();
        env.with(|st| {
            let mut lifecycle = |id: &str| st.entry_mut(id).unwrap().lifecycle.clone();
            let [a, b, c, d] = [0, 1, 2, 3].map(|i| lifecycle(&ids[i]));
            assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&c, &d) && !Arc::ptr_eq(&a, &c));
            assert_eq!((a.ttl_ms, c.ttl_ms), (Some(600_000), None));
            assert_eq!(*lifecycle(&changed), Lifecycle { ttl_ms: Some(600_000), ..t.lifecycle.clone() });
            assert_eq!(st.entry_mut(&changed).unwrap().status(T0.plus(60_000)), EngineStatus::Pending);
        });
    }

    #[test]
    fn ids_are_real_shaped_deterministic_and_recognised() {
        let a = Ledger::new(7, Caps::default());
        let b = Ledger::new(7, Caps::default());
        let t = Task::default_task();
        let ids_a: Vec<String> =
            (0..3).map(|_| a.trigger("tr_dev_a", &t, new("x"), TriggerFunction::Trigger, T0).id).collect();
        let ids_b: Vec<String> =
            (0..3).map(|_| b.trigger("tr_dev_a", &t, new("x"), TriggerFunction::Trigger, T0).id).collect();
        assert_eq!(ids_a, ids_b);
        let other = a.trigger("tr_dev_b", &t, new("x"), TriggerFunction::Trigger, T0).id;
        assert!(!ids_a.contains(&other));
        for id in ids_a.iter().chain([&other]) {
            assert_eq!(id.len(), 29, "{id}");
            assert!(crate::convention::is_well_formed(id), "{id}");
            assert!(a.is_run_id(id), "{id}");
            assert!(!Ledger::new(8, Caps::default()).is_run_id(id), "the seed is in the check");
        }
        assert!(!a.is_run_id("run_cm0abcdefghijklmnopqrstu"));
        assert_eq!(RunId::new(&other).as_str(), other);
        assert!(!a.is_run_id("run_completed"));
    }

    #[test]
    fn default_task_executes_once_then_completes_with_the_payload() {
        let l = Ledger::new(0, Caps::default());
        let id = l.trigger("tr_dev_a", &Task::default_task(), new("x"), TriggerFunction::Trigger, T0).id;
        let env = l.env("tr_dev_a").unwrap_or_else(|| panic!("env"));
        let first = env.with(|st| st.view(&id, T0, true)).unwrap_or_else(|| panic!("run"));
        assert_eq!(first.status, EngineStatus::Executing);
        let second = env.with(|st| st.view(&id, T0, true)).unwrap_or_else(|| panic!("run"));
        assert_eq!(second.status, EngineStatus::CompletedSuccessfully);
        assert_eq!(second.output, Some(serde_json::json!({"a": 1})));
        assert!(second.started_at.is_some() && second.finished_at.is_some());
    }

    #[test]
    fn idempotency_keys_dedupe_until_failure_or_expiry() {
        let l = Ledger::new(0, Caps::default());
        let t = Task::default_task();
        let keyed = |expires: Millis| NewRun {
            idempotency: Some(IdempotencyKey { stored: "h".into(), user: "k".into(), expires_at: expires }),
            ..new("x")
        };
        let first = l.trigger("tr_dev_a", &t, keyed(T0.plus(1000)), TriggerFunction::Trigger, T0);
        let again = l.trigger("tr_dev_a", &t, keyed(T0.plus(1000)), TriggerFunction::Trigger, T0);
        assert_eq!((again.id.clone(), again.is_cached), (first.id.clone(), true));
        let other_task = l.trigger(
            "tr_dev_a",
            &t,
            NewRun { task: "y".into(), ..keyed(T0.plus(1000)) },
            TriggerFunction::Trigger,
            T0,
        );
        assert_ne!(other_task.id, first.id);
        let env = l.env("tr_dev_a").unwrap_or_else(|| panic!("env"));
        env.with(|st| st.pin(&first.id, EngineStatus::CompletedWithErrors, T0));
        let after_failure = l.trigger("tr_dev_a", &t, keyed(T0.plus(1000)), TriggerFunction::Trigger, T0);
        assert!(!after_failure.is_cached && after_failure.id != first.id);
        let expired = l.trigger("tr_dev_a", &t, keyed(T0.plus(1000)), TriggerFunction::Trigger, T0.plus(2000));
        assert!(!expired.is_cached && expired.id != after_failure.id);
    }

    #[test]
    fn request_keys_return_the_same_run() {
        let l = Ledger::new(0, Caps::default());
        let t = Task::default_task();
        let with_rk = || NewRun { request_key: Some("uuid".into()), ..new("x") };
        let a = l.trigger("tr_dev_a", &t, with_rk(), TriggerFunction::Trigger, T0);
        let b = l.trigger("tr_dev_a", &t, with_rk(), TriggerFunction::Trigger, T0);
        assert_eq!((b.id, b.is_cached, b.created), (a.id, false, false));
    }

    #[test]
    fn caps_evict_finished_runs_first_then_environments() {
        let caps = Caps { runs_per_env: 3, envs: 2, bytes_per_env: 1 << 20 };
        let l = Ledger::new(0, caps);
        let t = Task::default_task();
        let ids: Vec<String> =
            (0..3).map(|_| l.trigger("tr_dev_a", &t, new("x"), TriggerFunction::Trigger, T0).id).collect();
        let env = l.env("tr_dev_a").unwrap_or_else(|| panic!("env"));
        env.with(|st| st.pin(&ids[1], EngineStatus::Canceled, T0));
        l.trigger("tr_dev_a", &t, new("x"), TriggerFunction::Trigger, T0);
        env.with(|st| {
            assert_eq!(st.run_count(), 3);
            assert!(st.entry_mut(&ids[1]).is_none(), "the finished run went first");
            assert!(st.entry_mut(&ids[0]).is_some());
        });
        l.trigger("tr_dev_b", &t, new("x"), TriggerFunction::Trigger, T0);
        l.env("tr_dev_a");
        l.trigger("tr_dev_c", &t, new("x"), TriggerFunction::Trigger, T0);
        assert_eq!(l.env_count(), 2);
        assert!(l.env("tr_dev_b").is_none(), "the least recently used environment went");
        assert!(l.env("tr_dev_a").is_some());
    }

    #[test]
    fn bytes_and_changes_of_other_runs_are_capped_too() {
        let caps = Caps { runs_per_env: 3, envs: 2, bytes_per_env: 200 };
        let l = Ledger::new(0, caps);
        let t = Task::default_task();
        let big = || NewRun { payload: Some(Value::String("x".repeat(70))), ..new("x") };
        let first = l.trigger("tr_dev_a", &t, big(), TriggerFunction::Trigger, T0).id;
        l.trigger("tr_dev_a", &t, big(), TriggerFunction::Trigger, T0);
        let env = l.env("tr_dev_a").unwrap_or_else(|| panic!("env"));
        assert!(env.with(|st| st.entry_mut(&first).is_some()));
        l.trigger("tr_dev_a", &t, big(), TriggerFunction::Trigger, T0);
        assert!(env.with(|st| st.entry_mut(&first).is_none()), "three 72-byte payloads are over 200 bytes");
        env.with(|st| {
            for i in 0..10 {
                st.overlay(&caps, &format!("run_other_{i}")).canceled_at = Some(T0);
            }
            assert_eq!(st.overlays.len(), 3);
            assert!(st.overlays.contains_key("run_other_9") && !st.overlays.contains_key("run_other_0"));
        });
    }

    #[test]
    fn delays_and_ttls_run_on_the_given_clock() {
        let l = Ledger::new(0, Caps::default());
        let t = Task::default_task();
        let delayed = NewRun { delay_until: Some(T0.plus(60_000)), ttl: Some(("10m".into(), 600_000)), ..new("x") };
        let id = l.trigger("tr_dev_a", &t, delayed, TriggerFunction::Trigger, T0).id;
        let env = l.env("tr_dev_a").unwrap_or_else(|| panic!("env"));
        let run = env.with(|st| st.view(&id, T0, false)).unwrap_or_else(|| panic!("run"));
        assert_eq!((run.status, run.delayed_until), (EngineStatus::Delayed, Some(T0.plus(60_000))));
        let task = Task {
            lifecycle: Lifecycle {
                steps: vec![Step { status: EngineStatus::Pending, until: Until::Forever }],
                ..Task::default_task().lifecycle
            },
            ..Task::default_task()
        };
        let queued = NewRun { ttl: Some(("1m".into(), 60_000)), ..new("x") };
        let id = l.trigger("tr_dev_a", &task, queued, TriggerFunction::Trigger, T0).id;
        let run = env.with(|st| st.view(&id, T0.plus(60_000), false)).unwrap_or_else(|| panic!("run"));
        assert_eq!((run.status, run.expired_at), (EngineStatus::Expired, Some(T0.plus(60_000))));
    }

    #[test]
    fn a_created_run_stays_compact() {
        // 100 environments of 1000 runs: every byte here is 100 000 bytes of RSS
        // (224: the realtime change number took 8 bytes after the 216 measured).
        assert!(std::mem::size_of::<Entry>() <= 224, "{}", std::mem::size_of::<Entry>());
        assert!(std::mem::size_of::<Progress>() <= 80, "{}", std::mem::size_of::<Progress>());
        let ledger = Ledger::new(1, Caps::default());
        let superjson = r#"{"json":{"n":1,"s":"a\"b"}}"#;
        let sdk = NewRun {
            payload: Some(Value::String(superjson.into())),
            request_key: Some("8f855fc8-a876-490e-b3d0-d2084cdfd4af".into()),
            ..new("t")
        };
        let made = ledger.trigger("tr_dev_a", &Task::default_task(), sdk, TriggerFunction::Trigger, T0);
        let object = ledger.trigger("tr_dev_a", &Task::default_task(), new("t"), TriggerFunction::Trigger, T0);
        let env = ledger.env("tr_dev_a").unwrap();
        env.with(|st| {
            let e = st.entry_mut(&made.id).unwrap();
            // The string is held as itself, without JSON's quotes and escapes, and no box is made for
            // fields the trigger did not set; the bytes counted are still those of its JSON text.
            assert_eq!(e.inline_payload.as_deref(), Some(superjson));
            assert!(e.own.rare.is_none() && e.own.tags.is_none());
            assert_eq!(e.bytes as usize, Value::String(superjson.into()).to_string().len());
            assert_eq!(e.view(T0).payload, Some(Value::String(superjson.into())));
            let o = st.entry_mut(&object.id).unwrap();
            assert_eq!(o.view(T0).payload, Some(serde_json::json!({"a": 1})));
            assert_eq!(o.bytes as usize, r#"{"a":1}"#.len());
        });
        for s in ["", "plain", "q\"\\\n\r\t\u{8}\u{c}", "\u{1}\u{1f}", "é€😀", "</script>\u{7f}"] {
            assert_eq!(crate::model::json_string_len(s), Value::String(s.into()).to_string().len(), "{s:?}");
        }
    }

    /// An SDK-shaped trigger (SuperJSON payload, a request idempotency key;
    /// one in ten with tags and an idempotency key), as the trigger soak sends.
    fn sdk_trigger(n: u64) -> NewRun {
        let payload = format!(r#"{{"json":{{"n":{n},"user":"user_1"}}}}"#);
        let mut new = NewRun {
            payload: Some(Value::String(payload)),
            request_key: Some(format!("{n:08x}-0001-4000-8000-{n:012x}")),
            ..new("soak-task")
        };
        if n % 10 == 0 {
            new.tags = vec!["soak".into(), "env-1".into()];
            new.idempotency = Some(IdempotencyKey {
                stored: format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15),
                user: format!("k{n}"),
                expires_at: T0.plus(86_400_000),
            });
        }
        new
    }

    #[test]
    fn a_ledger_at_its_cap_stays_flat() {
        // Bytes really allocated (this thread's), not an estimate: the runs,
        // their indexes, their payloads.
        let live = crate::counting_alloc::live;
        let ledger = Ledger::new(1, Caps::default());
        let task = Task::default_task();
        ledger.trigger("tr_dev_a", &task, sdk_trigger(0), TriggerFunction::Trigger, T0);
        let before = live();
        for n in 1..=1000 {
            ledger.trigger("tr_dev_a", &task, sdk_trigger(n), TriggerFunction::Trigger, T0);
        }
        let full = live() - before;
        // 1000 runs at the cap: about 470 bytes each with the indexes (100
        // environments of them: 47 MB).
        assert!(full < 1000 * 500, "{} bytes a run", full / 1000);
        // Twenty times the cap through it, one run in and one out: hash maps
        // left tombstones and doubled their tables here (+14%).
        for n in 1001..=21_000 {
            ledger.trigger("tr_dev_a", &task, sdk_trigger(n), TriggerFunction::Trigger, T0);
        }
        let churned = live() - before;
        assert_eq!(ledger.env("tr_dev_a").unwrap().with(|st| st.run_count()), 1000);
        assert!(churned < full + full / 50, "{full} bytes at the cap, {churned} after the churn");
    }
}
