//! Named runs: the embedded default catalogue (`fixtures/catalogue.json`) and
//! the [`RunSpec`] format it is written in.
//!
//! A spec sets any fields it likes; the rest is generated exactly as for an
//! unknown id. Specs are parsed and checked once, at start-up; relations
//! (parent, root, children, depth) are resolved here, never per request.

use crate::generate::generate;
use crate::model::{EngineStatus, Phase, Run, Schedule, SerializedError, TriggerFunction};
use crate::packet::{Content, Generated, Offload, Packet, PacketType, UrlBehaviour};
use crate::time::{Millis, parse_duration_ms};
use bytes::Bytes;
use include_dir::{Dir, include_dir};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

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
    /// Scenario files only: the statuses the run goes through.
    pub lifecycle: Option<Vec<StepSpec>>,
    /// The payload as a packet (type, size, file, offloading), instead of `payload`.
    pub payload_packet: Option<PacketSpec>,
    /// The output as a packet, instead of `output`.
    pub output_packet: Option<PacketSpec>,
}

/// A [`RunSpec`] as kept after parsing. Most runs of a large file set only
/// an id, a status or lifecycle, perhaps a TTL, a parent and a description:
/// those are kept in a few words; any other spec is kept whole, boxed. It is
/// parsed through a whole `RunSpec` one run at a time, so a file never holds
/// more than one uncompacted spec.
#[derive(Debug, Clone)]
pub struct CompactSpec(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Lean {
        id: Arc<str>,
        status: Option<EngineStatus>,
        lifecycle: Option<Box<[StepSpec]>>,
        /// The rarer lean fields, boxed so that a run without them costs nothing.
        more: Option<Box<LeanMore>>,
    },
    Full {
        id: Arc<str>,
        spec: Box<RunSpec>,
    },
}

#[derive(Debug, Clone)]
struct LeanMore {
    ttl: Option<Box<str>>,
    parent: Option<Box<str>>,
    description: Option<Box<str>>,
}

impl From<RunSpec> for CompactSpec {
    fn from(spec: RunSpec) -> CompactSpec {
        let id = Arc::from(spec.id.as_str());
        if !is_lean(&spec) {
            return CompactSpec(Repr::Full { id, spec: Box::new(spec) });
        }
        let more = (spec.ttl.is_some() || spec.parent.is_some() || spec.description.is_some()).then(|| {
            Box::new(LeanMore {
                ttl: spec.ttl.map(String::into_boxed_str),
                parent: spec.parent.map(String::into_boxed_str),
                description: spec.description.map(String::into_boxed_str),
            })
        });
        CompactSpec(Repr::Lean { id, status: spec.status, lifecycle: spec.lifecycle.map(Vec::into_boxed_slice), more })
    }
}

impl<'de> Deserialize<'de> for CompactSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CompactSpec, D::Error> {
        RunSpec::deserialize(d).map(CompactSpec::from)
    }
}

impl CompactSpec {
    /// The run's id.
    pub fn id(&self) -> &str {
        match &self.0 {
            Repr::Lean { id, .. } | Repr::Full { id, .. } => id,
        }
    }

    /// The run's id, shared: indexes hold it without copying it.
    pub fn shared_id(&self) -> Arc<str> {
        match &self.0 {
            Repr::Lean { id, .. } | Repr::Full { id, .. } => id.clone(),
        }
    }

    /// The id of the run's parent.
    pub fn parent(&self) -> Option<&str> {
        match &self.0 {
            Repr::Lean { more, .. } => more.as_ref()?.parent.as_deref(),
            Repr::Full { spec, .. } => spec.parent.as_deref(),
        }
    }

    /// The whole spec: borrowed when kept whole, rebuilt (a few small
    /// allocations) when kept lean.
    pub fn spec(&self) -> std::borrow::Cow<'_, RunSpec> {
        match &self.0 {
            Repr::Full { spec, .. } => std::borrow::Cow::Borrowed(spec),
            Repr::Lean { id, status, lifecycle, more } => {
                let text = |field: Option<&Box<str>>| field.map(ToString::to_string);
                std::borrow::Cow::Owned(RunSpec {
                    id: id.to_string(),
                    status: *status,
                    lifecycle: lifecycle.as_ref().map(|l| l.to_vec()),
                    ttl: more.as_ref().and_then(|m| text(m.ttl.as_ref())),
                    parent: more.as_ref().and_then(|m| text(m.parent.as_ref())),
                    description: more.as_ref().and_then(|m| text(m.description.as_ref())),
                    ..RunSpec::default()
                })
            }
        }
    }

    /// The spec for editing, when it is kept whole (specs with packets are).
    pub fn full_mut(&mut self) -> Option<&mut RunSpec> {
        match &mut self.0 {
            Repr::Full { spec, .. } => Some(spec),
            Repr::Lean { .. } => None,
        }
    }

    /// True when building the run reads files: it is built once, at load.
    fn reads_files(&self) -> bool {
        matches!(&self.0, Repr::Full { spec, .. } if spec.payload_packet.is_some() || spec.output_packet.is_some())
    }
}

/// True when `spec` sets nothing a lean [`CompactSpec`] cannot hold. The
/// destructuring makes a new field a compile error here until it is sorted.
fn is_lean(spec: &RunSpec) -> bool {
    let RunSpec {
        id: _,
        description: _,
        status: _,
        lifecycle: _,
        ttl: _,
        parent: _,
        task_identifier,
        idempotency_key,
        version,
        is_test,
        tags,
        metadata,
        payload,
        output,
        error,
        schedule,
        batch_id,
        region,
        trigger_function,
        attempt_count,
        cost_in_cents,
        base_cost_in_cents,
        duration_ms,
        payload_packet,
        output_packet,
    } = spec;
    task_identifier.is_none()
        && idempotency_key.is_none()
        && version.is_none()
        && is_test.is_none()
        && tags.is_none()
        && metadata.is_none()
        && payload.is_none()
        && output.is_none()
        && error.is_none()
        && schedule.is_none()
        && batch_id.is_none()
        && region.is_none()
        && trigger_function.is_none()
        && attempt_count.is_none()
        && cost_in_cents.is_none()
        && base_cost_in_cents.is_none()
        && duration_ms.is_none()
        && payload_packet.is_none()
        && output_packet.is_none()
}

/// A payload or output packet as a file declares it: exactly one of `data`,
/// `size` (generated) or `file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PacketSpec {
    /// `application/json` (the default), `application/super+json` or `text/plain`.
    #[serde(rename = "type")]
    pub kind: Option<PacketType>,
    /// The packet itself: any JSON for JSON, `{"json", "meta"}` for SuperJSON, a string for text.
    pub data: Option<Value>,
    /// Generate a valid packet of this size: bytes, or `512KiB`, `5MiB`, `2GiB`.
    pub size: Option<SizeSpec>,
    /// A file next to the scenario file.
    pub file: Option<String>,
    /// `auto` (offloaded at the threshold), `always` or `never`.
    pub offload: Option<Offload>,
    /// What the presigned URL does: `valid`, `expired`, `notFound` or `truncated`.
    pub url: Option<UrlBehaviour>,
}

/// A size: a number of bytes, or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeSpec {
    Bytes(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SizeSpec, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: a whole number of bytes, or a string such as \"5MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Bytes(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Text(s.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The largest packet sent inline (`offload: never`, or a raised threshold):
/// it is built in memory at start-up.
pub const MAX_INLINE_SIZE: u64 = 16 << 20;

/// The largest generated packet, 64 GiB.
pub const MAX_PACKET_SIZE: u64 = 64 << 30;

/// Builds a packet. `created_at` dates a generated SuperJSON packet. An error
/// names the packet's key it is about (`None`: the packet itself).
fn packet_of(spec: &PacketSpec, created_at: Millis) -> Result<Packet, (Option<&'static str>, String)> {
    let kind = spec.kind.unwrap_or(PacketType::Json);
    let content = match (&spec.data, &spec.size, &spec.file) {
        (Some(data), None, None) => Content::Bytes(Bytes::from(match (kind, data) {
            (PacketType::Text, Value::String(text)) => text.clone(),
            (PacketType::Text, _) => return Err((Some("data"), "a text/plain packet's data is a string".into())),
            (PacketType::SuperJson, Value::Object(m)) if m.contains_key("json") => data.to_string(),
            (PacketType::SuperJson, _) => {
                return Err((Some("data"), "a super+json packet's data is an object with `json` (and `meta`)".into()));
            }
            (PacketType::Json, _) => data.to_string(),
        })),
        (None, Some(size), None) => {
            let bytes = match size {
                SizeSpec::Bytes(n) => Some(*n),
                SizeSpec::Text(t) => crate::packet::parse_size(t),
            }
            .filter(|n| *n <= MAX_PACKET_SIZE)
            .ok_or_else(|| {
                (Some("size"), "a size is bytes, or a number with B, KB, MB, GB, KiB, MiB or GiB, up to 64GiB".into())
            })?;
            let at = created_at.to_string();
            let generated = Generated::new(kind, bytes, &at).ok_or_else(|| {
                (
                    Some("size"),
                    format!(
                        "a generated {} packet has at least {} bytes",
                        kind.content_type(),
                        Generated::min_size(kind, &at)
                    ),
                )
            })?;
            Content::Generated(generated)
        }
        (None, None, Some(file)) => {
            let path = std::path::PathBuf::from(file);
            if !path.is_absolute() {
                return Err((Some("file"), "file packets are read relative to a scenario file on disk".into()));
            }
            let size = std::fs::metadata(&path)
                .map_err(|e| (Some("file"), format!("cannot read `{}`: {e}", crate::excerpt::quote(file))))?
                .len();
            Content::File { path, size }
        }
        _ => return Err((None, "give exactly one of `data`, `size` or `file`".into())),
    };
    Ok(Packet { kind, content, offload: spec.offload.unwrap_or_default(), url: spec.url.unwrap_or_default() })
}

/// A packet placed as the API shows it: inline value, or offloaded.
fn place(packet: Packet, threshold: u64) -> Result<(Option<Value>, Option<Arc<Packet>>), String> {
    if packet.offloaded(threshold) {
        Ok((None, Some(Arc::new(packet))))
    } else if packet.size() > MAX_INLINE_SIZE {
        Err(format!(
            "a packet sent inline has at most 16 MiB; this one has {} bytes: let it be offloaded",
            packet.size()
        ))
    } else {
        Ok((packet.inline_value()?, None))
    }
}

/// Offloads a generated run's payload and output when they reach the
/// threshold, as the server decides by size alone. `keep` leaves the payload
/// or output alone (a file set it, with its own offload rule).
pub fn offload_generated(run: &mut Run, threshold: u64, keep: [bool; 2]) {
    let slots = [(&mut run.payload, &mut run.payload_packet), (&mut run.output, &mut run.output_packet)];
    for ((value, packet), keep) in slots.into_iter().zip(keep) {
        if !keep
            && packet.is_none()
            && let Some(v) = value.as_ref()
        {
            let candidate = Packet::json(v);
            if candidate.offloaded(threshold) {
                *value = None;
                *packet = Some(Arc::new(candidate));
            }
        }
    }
}

/// One lifecycle step as a file declares it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    pub status: EngineStatus,
    /// The step lasts this many retrieves.
    pub retrieves: Option<u32>,
    /// The step lasts this long on the mock clock (`30s`, `10m`).
    #[serde(rename = "for")]
    pub duration: Option<String>,
}

/// A problem with one spec: which one, where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Index of the spec in the list given to [`compile`].
    pub index: usize,
    /// The field inside the spec, e.g. `["lifecycle", "2", "status"]`; empty for the spec itself.
    pub field: Vec<FieldSeg>,
    pub message: String,
}

/// A step of a path inside a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSeg {
    Key(&'static str),
    Index(usize),
}

impl SpecError {
    fn at(index: usize, field: &[FieldSeg], message: impl Into<String>) -> SpecError {
        SpecError { index, field: field.to_vec(), message: message.into() }
    }
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "runs[{}]", self.index)?;
        for seg in &self.field {
            match seg {
                FieldSeg::Key(k) => write!(f, ".{k}")?,
                FieldSeg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        write!(f, ": {}", self.message)
    }
}

fn json_packet(value: &Value) -> PacketSpec {
    PacketSpec { kind: None, data: Some(value.clone()), size: None, file: None, offload: None, url: None }
}

/// A compiled catalogue entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub status: EngineStatus,
    pub description: String,
}

/// Runs defined by files, keyed by id, with their listing. A run is kept
/// as its spec and its place among its relatives, and built the first time
/// it is asked for (building is deterministic: the same run every time);
/// runs whose packets read files are built at load. So a file of many small
/// runs costs about its own size, not the size of the runs it describes.
#[derive(Debug)]
pub struct Defined {
    index: FxHashMap<Arc<str>, u32>,
    runs: Vec<DefinedRun>,
    pub entries: Vec<Entry>,
    seed: u64,
    anchor: Millis,
    threshold: u64,
}

#[derive(Debug)]
struct DefinedRun {
    id: Arc<str>,
    spec: CompactSpec,
    lineage: Option<Box<Lineage>>,
    children: Box<[u32]>,
    built: std::sync::OnceLock<Option<Box<Run>>>,
    /// Set once the run and all its relatives are built.
    family_built: std::sync::atomic::AtomicBool,
}

/// Where a child run stands: its parent and root (indices), its depth, the
/// instant it may not be created before (its parent's start) and whether its
/// parent waits for it.
#[derive(Debug, Clone, Copy)]
struct Lineage {
    parent: u32,
    root: u32,
    depth: u32,
    not_before: Millis,
    and_wait: bool,
}

impl Defined {
    /// The run `id`, built on first use.
    pub fn get(&self, id: &str) -> Option<&Run> {
        let i = *self.index.get(id)?;
        self.at(i as usize)
    }

    /// True when `id` is defined and is the parent of other defined runs.
    pub fn has_children(&self, id: &str) -> bool {
        self.index.get(id).and_then(|&i| self.runs.get(i as usize)).is_some_and(|r| !r.children.is_empty())
    }

    /// True when `id` is defined.
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// The spec of the run `id`.
    pub fn spec(&self, id: &str) -> Option<&CompactSpec> {
        Some(&self.runs[*self.index.get(id)? as usize].spec)
    }

    /// How many runs are defined.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// True when no run is defined.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// How many of the run `id` and the relatives a retrieve of it shows
    /// (root, parent, children) are not built yet, counting up to `enough`.
    pub fn unbuilt_family(&self, id: &str, enough: usize) -> usize {
        let Some(&i) = self.index.get(id) else { return 0 };
        let run = &self.runs[i as usize];
        if run.family_built.load(std::sync::atomic::Ordering::Acquire) {
            return 0;
        }
        let unbuilt = self
            .family(run, i)
            .filter(|&j| self.runs.get(j as usize).is_some_and(|r| r.built.get().is_none()))
            .take(enough)
            .count();
        if unbuilt == 0 {
            run.family_built.store(true, std::sync::atomic::Ordering::Release);
        }
        unbuilt
    }

    /// Builds the run `id` and the relatives a retrieve of it shows.
    pub fn build_family(&self, id: &str) {
        let Some(&i) = self.index.get(id) else { return };
        let run = &self.runs[i as usize];
        for j in self.family(run, i) {
            self.at(j as usize);
        }
        run.family_built.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The indices of run `i`, its root, its parent and its children.
    fn family<'a>(&'a self, run: &'a DefinedRun, i: u32) -> impl Iterator<Item = u32> + 'a {
        let lineage = run.lineage.as_deref();
        std::iter::once(i)
            .chain(lineage.map(|l| l.root))
            .chain(lineage.map(|l| l.parent))
            .chain(run.children.iter().copied())
    }

    fn at(&self, i: usize) -> Option<&Run> {
        let run = self.runs.get(i)?;
        run.built.get_or_init(|| self.build_at(i).ok().map(Box::new)).as_deref()
    }

    /// Builds run `i` from its spec and lineage, as [`compile`] checked it.
    fn build_at(&self, i: usize) -> Result<Run, SpecError> {
        let entry = &self.runs[i];
        let lineage = entry.lineage.as_deref().map(|l| Parent {
            id: &self.runs[l.parent as usize].id,
            root_id: &self.runs[l.root as usize].id,
            depth: l.depth,
            not_before: l.not_before,
            and_wait: l.and_wait,
        });
        let mut run = build(i, &entry.spec.spec(), lineage, self.seed, self.anchor, self.threshold)?;
        run.child_ids = entry.children.iter().map(|&c| self.runs[c as usize].id.to_string()).collect();
        Ok(run)
    }
}

/// What building a child needs to know of its parent.
#[derive(Debug, Clone, Copy)]
struct Parent<'a> {
    id: &'a str,
    root_id: &'a str,
    depth: u32,
    not_before: Millis,
    and_wait: bool,
}

/// Parses the embedded default catalogue.
pub fn default_catalogue() -> Result<CatalogueFile, String> {
    let file = FIXTURES.get_file(CATALOGUE_FILE).ok_or_else(|| format!("fixtures/{CATALOGUE_FILE} is not embedded"))?;
    let file: CatalogueFile = serde_json::from_slice(file.contents())
        .map_err(|e| format!("fixtures/{CATALOGUE_FILE}:{}:{}: {e}", e.line(), e.column()))?;
    if let Some(i) = file.runs.iter().position(|r| r.lifecycle.is_some()) {
        return Err(format!("fixtures/{CATALOGUE_FILE}: runs[{i}]: catalogue runs have no lifecycle"));
    }
    Ok(file)
}

/// The statuses a spec goes through: its lifecycle's, or its one status.
pub fn statuses(spec: &RunSpec) -> Vec<EngineStatus> {
    match &spec.lifecycle {
        Some(steps) => steps.iter().map(|s| s.status).collect(),
        // Without a status, an output or an error says how the run ended, so
        // that checking a file never depends on the seed.
        None => spec
            .status
            .or_else(|| crate::convention::status_of(&spec.id))
            .or((spec.output.is_some() || spec.output_packet.is_some()).then_some(EngineStatus::CompletedSuccessfully))
            .or(spec.error.as_ref().map(|_| EngineStatus::CompletedWithErrors))
            .into_iter()
            .collect(),
    }
}

/// Checks and indexes runs from specs. Parents are built before their
/// children; an unknown parent, a cycle or a field that contradicts the status
/// is an error naming the spec and the field. Every run is built once here, to
/// check it, and then dropped unless its packets read files.
pub fn compile(specs: Vec<CompactSpec>, seed: u64, anchor: Millis, threshold: u64) -> Result<Defined, SpecError> {
    use FieldSeg::Key;
    let mut index: FxHashMap<Arc<str>, u32> = FxHashMap::with_capacity_and_hasher(specs.len(), Default::default());
    let ids: Vec<Arc<str>> = specs.iter().map(CompactSpec::shared_id).collect();
    for (i, id) in ids.iter().enumerate() {
        if index.insert(id.clone(), i as u32).is_some() {
            return Err(SpecError::at(i, &[Key("id")], format!("run {} is defined twice", crate::excerpt::quote(id))));
        }
    }
    let parent_of: Vec<Option<u32>> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| match spec.parent() {
            None => Ok(None),
            Some(p) => index.get(p).map(|&p| Some(p)).ok_or_else(|| {
                SpecError::at(i, &[Key("parent")], format!("parent {} is not defined", crate::excerpt::quote(p)))
            }),
        })
        .collect::<Result<_, _>>()?;
    // What a built parent passes to its children: (depth, root, its start, started).
    let mut as_parent: Vec<Option<(u32, u32, Millis, bool)>> = vec![None; specs.len()];
    let mut lineages: Vec<Option<Box<Lineage>>> = vec![None; specs.len()];
    let mut kept: Vec<Option<Box<Run>>> = vec![None; specs.len()];
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); specs.len()];
    let mut entries = Vec::with_capacity(specs.len());
    // Build in dependency order: a spec waits for its parent.
    let mut pending: Vec<usize> = (0..specs.len()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for i in pending {
            let parent = match parent_of[i] {
                Some(p) => match as_parent[p as usize] {
                    None => {
                        waiting.push(i);
                        continue;
                    }
                    Some((depth, root, not_before, and_wait)) => {
                        Some(Lineage { parent: p, root, depth: depth + 1, not_before, and_wait })
                    }
                },
                None => None,
            };
            let spec = specs[i].spec();
            let view = parent.map(|l| Parent {
                id: &ids[l.parent as usize],
                root_id: &ids[l.root as usize],
                depth: l.depth,
                not_before: l.not_before,
                and_wait: l.and_wait,
            });
            let run = build(i, &spec, view, seed, anchor, threshold)?;
            let root = parent.map_or(i as u32, |l| l.root);
            let depth = parent.map_or(0, |l| l.depth);
            let started = run.status.phase() == Phase::Started;
            as_parent[i] = Some((depth, root, run.started_at.unwrap_or(run.created_at), started));
            if let Some(l) = parent {
                children[l.parent as usize].push(i as u32);
            }
            lineages[i] = parent.map(Box::new);
            entries.push(Entry {
                id: run.id.clone(),
                status: run.status,
                description: spec.description.clone().unwrap_or_default(),
            });
            if specs[i].reads_files() {
                kept[i] = Some(Box::new(run));
            }
        }
        if waiting.len() == before {
            // Report the last spec in the cycle: scenario runs come after the
            // catalogue's, so a user's cycle is reported in the user's file.
            let last = waiting.iter().copied().max().unwrap_or_default();
            return Err(SpecError::at(last, &[Key("parent")], "the parents form a cycle"));
        }
        pending = waiting;
    }
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    let mut runs: Vec<DefinedRun> = specs
        .into_iter()
        .zip(ids)
        .zip(lineages)
        .zip(children)
        .map(|(((spec, id), lineage), children)| DefinedRun {
            id,
            spec,
            lineage,
            children: children.into_boxed_slice(),
            built: std::sync::OnceLock::new(),
            family_built: std::sync::atomic::AtomicBool::new(false),
        })
        .collect();
    for (i, run) in kept.into_iter().enumerate() {
        if let Some(mut run) = run {
            run.child_ids = runs[i].children.iter().map(|&c| runs[c as usize].id.to_string()).collect();
            let _ = runs[i].built.set(Some(run));
        }
    }
    runs.shrink_to_fit();
    Ok(Defined { index, runs, entries, seed, anchor, threshold })
}

fn build(
    i: usize,
    spec: &RunSpec,
    parent: Option<Parent<'_>>,
    seed: u64,
    anchor: Millis,
    threshold: u64,
) -> Result<Run, SpecError> {
    use FieldSeg::Key;
    let err = |field: &'static str, message: String| SpecError::at(i, &[Key(field)], message);
    if !crate::convention::is_well_formed(&spec.id) {
        return Err(err("id", "an id is `run_` and then lower-case letters, digits and underscores".into()));
    }
    if spec.status.is_some() && spec.lifecycle.is_some() {
        return Err(err("lifecycle", "give either `status` or `lifecycle`, not both".into()));
    }
    let all = statuses(spec);
    let first = all.first().copied();
    let last = all.last().copied();
    let not_before = parent.map(|p| p.not_before);
    let mut run = generate(seed, &spec.id, first, anchor, not_before);
    let first_phase = run.status.phase();
    let last_phase = last.unwrap_or(run.status).phase();

    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = &spec.$field { run.$field = v.clone().into(); })* };
    }
    set!(task_identifier, idempotency_key, version, is_test, metadata, schedule, batch_id, region);
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
        let ttl_ms = parse_duration_ms(ttl).ok_or_else(|| {
            err("ttl", format!("`{}` is not a duration such as 10m or 1h30m", crate::excerpt::quote(ttl)))
        })?;
        if first_phase == Phase::Expired {
            run.created_at = run.expired_at.unwrap_or(run.created_at).plus(-ttl_ms);
        }
        run.ttl = Some(ttl.clone());
    }
    let packet =
        |field: &'static str, packet: &PacketSpec| -> Result<(Option<Value>, Option<Arc<Packet>>), SpecError> {
            let built = packet_of(packet, run.created_at).map_err(|(sub, m)| match sub {
                Some(sub) => SpecError::at(i, &[Key(field), Key(sub)], m),
                None => SpecError::at(i, &[Key(field)], m),
            })?;
            place(built, threshold).map_err(|m| err(field, m))
        };
    match (&spec.payload, &spec.payload_packet) {
        (Some(_), Some(_)) => return Err(err("payloadPacket", "give `payload` or `payloadPacket`, not both".into())),
        (Some(value), None) => (run.payload, run.payload_packet) = packet("payload", &json_packet(value))?,
        (None, Some(p)) => (run.payload, run.payload_packet) = packet("payloadPacket", p)?,
        (None, None) => {}
    }
    let output = match (&spec.output, &spec.output_packet) {
        (Some(_), Some(_)) => return Err(err("outputPacket", "give `output` or `outputPacket`, not both".into())),
        (Some(value), None) => Some(("output", json_packet(value))),
        (None, Some(p)) => Some(("outputPacket", p.clone())),
        (None, None) => None,
    };
    if let Some((field, spec_packet)) = output {
        if last_phase != Phase::Succeeded {
            let name = last.unwrap_or(run.status).name();
            return Err(err(field, format!("only a COMPLETED_SUCCESSFULLY run has an output; this one ends {name}")));
        }
        // Kept even when the run starts in another status: a lifecycle shows it at the end.
        (run.output, run.output_packet) = packet(field, &spec_packet)?;
    }
    let given = [
        spec.payload.is_some() || spec.payload_packet.is_some(),
        spec.output.is_some() || spec.output_packet.is_some(),
    ];
    offload_generated(&mut run, threshold, given);
    if let Some(error) = &spec.error {
        if last_phase != Phase::Failed {
            let name = last.unwrap_or(run.status).name();
            return Err(err("error", format!("only a failed run has an error; this one ends {name}")));
        }
        run.error = Some(error.clone());
    }
    for (field, cost) in [("costInCents", run.cost_in_cents), ("baseCostInCents", run.base_cost_in_cents)] {
        if !cost.is_finite() || cost < 0.0 {
            return Err(err(field, "costs are finite and not negative".into()));
        }
    }
    if let Some(p) = parent {
        run.parent_id = Some(p.id.to_owned());
        run.root_id = Some(p.root_id.to_owned());
        run.depth = p.depth;
    }
    let and_wait = parent.is_some_and(|p| p.and_wait);
    run.trigger_function =
        spec.trigger_function.unwrap_or_else(|| TriggerFunction::of(run.batch_id.is_some(), and_wait));
    if run.trigger_function.is_batch() != run.batch_id.is_some() {
        return Err(err("triggerFunction", "a batch trigger function and a batchId go together".into()));
    }
    if matches!(run.trigger_function, TriggerFunction::TriggerAndWait | TriggerFunction::BatchTriggerAndWait)
        && parent.is_none()
    {
        return Err(err("triggerFunction", "a run triggered …AndWait needs a parent run that waits for it".into()));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR: Millis = Millis(1_767_225_600_000);

    fn compact(specs: Vec<RunSpec>) -> Vec<CompactSpec> {
        specs.into_iter().map(CompactSpec::from).collect()
    }

    #[test]
    fn the_embedded_catalogue_loads_and_covers_every_status() {
        let file = default_catalogue().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.version, 1);
        let defined = compile(compact(file.runs), 0, ANCHOR, 524_288).unwrap_or_else(|e| panic!("{e}"));
        for status in EngineStatus::ALL {
            assert!(defined.entries.iter().any(|e| e.status == status), "{status:?} missing");
        }
        assert!(defined.entries.iter().all(|e| !e.description.is_empty()));
        let runs: std::collections::HashMap<&str, &Run> =
            defined.entries.iter().map(|e| (e.id.as_str(), defined.get(&e.id).unwrap())).collect();
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
        let d = compile(
            compact(vec![spec("run_c", Some("run_b")), spec("run_b", Some("run_a")), spec("run_a", None)]),
            1,
            ANCHOR,
            524_288,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = (d.get("run_a").unwrap(), d.get("run_b").unwrap(), d.get("run_c").unwrap());
        assert_eq!(*a.child_ids, ["run_b".to_owned()]);
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
        assert!(compile(compact(vec![with_output]), 0, ANCHOR, 524_288).unwrap_err().to_string().contains("output"));
        let orphan = RunSpec { parent: Some("run_zz".into()), ..base.clone() };
        assert!(compile(compact(vec![orphan]), 0, ANCHOR, 524_288).unwrap_err().to_string().contains("not defined"));
        let cycle = [
            RunSpec { id: "run_a".into(), parent: Some("run_b".into()), ..RunSpec::default() },
            RunSpec { id: "run_b".into(), parent: Some("run_a".into()), ..RunSpec::default() },
        ];
        assert!(compile(compact(cycle.to_vec()), 0, ANCHOR, 524_288).unwrap_err().to_string().contains("cycle"));
        assert!(
            compile(compact(vec![base.clone(), base.clone()]), 0, ANCHOR, 524_288)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let bad_ttl = RunSpec { ttl: Some("ten".into()), ..base };
        assert!(compile(compact(vec![bad_ttl]), 0, ANCHOR, 524_288).unwrap_err().to_string().contains("ttl"));
    }
}
