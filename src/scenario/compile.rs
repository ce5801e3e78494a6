//! Scenario files → checked runs, lifecycles, faults and a rate limit. Every
//! problem becomes a [`Diagnostic`] `FILE:LINE:COLUMN: message` with the key
//! path in the message.

use super::format::{ActionSpec, RouteName, ScenarioFile};
use super::locate::{KeyPath, locate, locate_exact};
use crate::catalogue::{CompactSpec, FieldSeg, RunSpec, SpecError, StepSpec, statuses};
use crate::excerpt::{quote, shorten_quotes};
use crate::faults::{Action, Fault, Glob, status_body};
use crate::lifecycle::{Lifecycle, Step, Until, check_transition};
use crate::model::{EngineStatus, Phase};
use crate::ratelimit::RateLimit;
use crate::time::parse_duration_ms;
use std::collections::HashMap;
use std::path::PathBuf;

/// A scenario's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as given, or `builtin:NAME`.
    pub name: String,
    pub text: String,
    /// The file on disk, for `--watch`.
    pub path: Option<PathBuf>,
}

impl Source {
    /// The name the server shows over HTTP: a file's name without its folder,
    /// so no response reveals a local path.
    pub fn display_name(&self) -> &str {
        match &self.path {
            Some(path) => path.file_name().and_then(|n| n.to_str()).unwrap_or(&self.name),
            None => &self.name,
        }
    }

    /// Reads `arg`: a path, or `builtin:NAME` for an embedded scenario. A
    /// file over [`MAX_FILE_BYTES`] is refused before it is read.
    pub fn load(arg: &str) -> Result<Source, Diagnostic> {
        if let Some(name) = arg.strip_prefix("builtin:") {
            let text = super::builtin(name).ok_or_else(|| Diagnostic {
                file: arg.to_owned(),
                line: 1,
                column: 1,
                message: format!(
                    "no built-in scenario `{}`; there are: {}",
                    quote(name),
                    super::builtin_names().join(", ")
                ),
            })?;
            return Ok(Source { name: arg.to_owned(), text: text.to_owned(), path: None });
        }
        let unreadable = |e: std::io::Error| Diagnostic::whole(arg, format!("cannot read the file: {e}"));
        let size = std::fs::metadata(arg).map_err(unreadable)?.len();
        if size > MAX_FILE_BYTES as u64 {
            return Err(Diagnostic::whole(arg, too_large(size)));
        }
        // Read at most one byte more than allowed: the file may grow meanwhile.
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(arg).map_err(unreadable)?, MAX_FILE_BYTES as u64 + 1),
            &mut bytes,
        )
        .map_err(unreadable)?;
        Source::from_bytes(arg.to_owned(), bytes, Some(PathBuf::from(arg)))
    }

    /// The one way bytes become a scenario source, for files on the command
    /// line, `--watch` reloads and `PUT /_mock/scenarios/NAME` alike: at most
    /// [`MAX_FILE_BYTES`], and UTF-8 (an invalid byte is reported where it is).
    pub fn from_bytes(name: String, bytes: Vec<u8>, path: Option<PathBuf>) -> Result<Source, Diagnostic> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(Diagnostic::whole(&name, too_large(bytes.len() as u64)));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source { name, text, path }),
            Err(e) => {
                let bytes = e.as_bytes();
                let valid = e.utf8_error().valid_up_to();
                // The prefix is valid UTF-8 by definition.
                let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
                let (line, column) = super::locate::line_col(prefix, prefix.len());
                let byte = bytes.get(valid).copied().unwrap_or_default();
                let message = format!("the file is not UTF-8 text: byte 0x{byte:02X} at offset {valid} is invalid");
                Err(Diagnostic { file: name, line, column, message })
            }
        }
    }
}

/// The largest scenario file, on the command line and over the admin API
/// alike: 8 MiB (about 180 000 minimal runs).
pub const MAX_FILE_BYTES: usize = 8 << 20;

fn too_large(size: u64) -> String {
    format!("the file has {size} bytes; a scenario file has at most {MAX_FILE_BYTES} bytes (8 MiB)")
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// A problem with a file as a whole, reported at its start.
    pub fn whole(file: &str, message: String) -> Diagnostic {
        Diagnostic { file: file.to_owned(), line: 1, column: 1, message }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl Source {
    pub(super) fn at(&self, path: &KeyPath, message: impl std::fmt::Display) -> Diagnostic {
        let (line, column) = locate(&self.text, path);
        let message = message.to_string();
        let message = shorten_quotes(&message);
        let message = if path.0.is_empty() { message.into_owned() } else { format!("{path}: {message}") };
        Diagnostic { file: self.name.clone(), line, column, message }
    }

    /// Parses the file; syntax and type errors carry serde's position.
    pub fn parse(&self) -> Result<ScenarioFile, Diagnostic> {
        let mut de = serde_json::Deserializer::from_str(&self.text);
        let file = serde_path_to_error::deserialize::<_, ScenarioFile>(&mut de).map_err(|e| {
            let segments = key_path(e.path());
            let path = segments.to_string();
            self.serde_diagnostic(&path, locate_exact(&self.text, &segments), &e.into_inner())
        })?;
        de.end().map_err(|e| self.serde_diagnostic("", None, &e))?;
        Ok(file)
    }

    /// `at` is where the key path starts, when it exists in the text: for a
    /// value of the wrong type a person looks for the key, while serde points
    /// after the bad token. A syntax error is shown where the parser failed
    /// (the unexpected token), since the key path only names the enclosing
    /// object.
    fn serde_diagnostic(&self, path: &str, at: Option<(usize, usize)>, e: &serde_json::Error) -> Diagnostic {
        use serde_json::error::Category;
        let text = e.to_string();
        // serde_json appends " at line L column C"; the position goes in front instead.
        let message = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]);
        let serde_at = (e.line() > 0).then(|| (e.line(), self.char_column(e.line(), e.column())));
        let at = at.filter(|_| !path.is_empty() && e.classify() == Category::Data);
        let (line, column) = at.or(serde_at).unwrap_or((1, 1));
        // serde_json says column 0 at the end of the input or right after a newline.
        let (line, column) = (line.max(1), column.max(1));
        // serde quotes the offending key or value whole: cut it.
        let message = shorten_quotes(message);
        let message = if path.is_empty() { message.into_owned() } else { format!("{path}: {message}") };
        Diagnostic { file: self.name.clone(), line, column, message }
    }
}

impl Source {
    /// serde_json counts columns in bytes; people (and [`locate`]) count
    /// characters. The 1-based character column of byte column `column` of
    /// 1-based line `line`.
    fn char_column(&self, line: usize, column: usize) -> usize {
        let Some(text) = self.text.split('\n').nth(line.saturating_sub(1)) else { return column };
        let mut end = column.saturating_sub(1).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].chars().count() + 1
    }
}

/// serde_path_to_error's path as ours.
fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    use serde_path_to_error::Segment;
    KeyPath(
        path.iter()
            .filter_map(|seg| match seg {
                Segment::Seq { index } => Some(super::locate::Seg::Index(*index)),
                Segment::Map { key } => Some(super::locate::Seg::Key(key.clone())),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect(),
    )
}

/// Everything the scenario files declare, checked.
#[derive(Debug, Clone, Default)]
pub struct Scenarios {
    /// Run specs of all files, in order; every one is scripted (its
    /// lifecycle is checked here and built on first use, [`lifecycle_of`]).
    pub specs: Vec<CompactSpec>,
    /// For each spec, its file and index there (for positions).
    pub origins: Vec<(usize, usize)>,
    pub faults: Vec<Fault>,
    pub rate_limit: Option<RateLimit>,
    /// One line per file: name and what it holds.
    pub summaries: Vec<String>,
    /// How triggered tasks behave, by task id.
    pub tasks: rustc_hash::FxHashMap<String, crate::ledger::Task>,
}

impl Scenarios {
    /// Maps an error from compiling the specs back to its file and position.
    pub fn locate_spec_error(&self, sources: &[Source], offset: usize, e: &SpecError) -> Diagnostic {
        let Some(&(file, index)) = e.index.checked_sub(offset).and_then(|i| self.origins.get(i)) else {
            return Diagnostic { file: "fixtures/catalogue.json".into(), line: 1, column: 1, message: e.to_string() };
        };
        let mut path = KeyPath::default().key("runs").index(index);
        for seg in &e.field {
            path = match seg {
                FieldSeg::Key(k) => path.key(k),
                FieldSeg::Index(i) => path.index(*i),
            };
        }
        sources[file].at(&path, &e.message)
    }
}

/// How many problems in a file's runs and faults are located and reported;
/// the rest are counted on one line.
const MAX_LOCATED: usize = 50;

/// Checks one run of a file: its id is new, its files resolve, its lifecycle
/// holds. Building it comes later, with all files together.
fn check_run(
    spec: &mut CompactSpec,
    here: &KeyPath,
    source: &Source,
    file_index: usize,
    sources: &[Source],
    first_seen: &mut HashMap<std::sync::Arc<str>, usize>,
) -> Result<(), (KeyPath, String)> {
    if let Some(other) = first_seen.insert(spec.shared_id(), file_index) {
        let other = &sources[other].name;
        return Err((here.key("id"), format!("run {} is already defined in {other}", quote(spec.id()))));
    }
    if let Some(full) = spec.full_mut() {
        resolve_files(full, source).map_err(|(field, message)| (here.key(field).key("file"), message))?;
    }
    steps_of(&spec.spec()).map_err(|(field, message)| {
        let path = field.0.iter().fold(here.clone(), |p, s| match s {
            super::locate::Seg::Key(k) => p.key(k),
            super::locate::Seg::Index(n) => p.index(*n),
        });
        (path, message)
    })?;
    Ok(())
}

/// Parses and checks every source. All problems are reported, not just the
/// first (one per file at most for syntax errors; at most [`MAX_LOCATED`]
/// in a file's runs and faults, then a count).
pub fn compile(sources: &[Source]) -> Result<Scenarios, Vec<Diagnostic>> {
    let mut out = Scenarios::default();
    let mut problems = Vec::new();
    // Each run id and the index of the file that defines it first.
    let mut first_seen: HashMap<std::sync::Arc<str>, usize> = HashMap::new();
    let mut first_task: HashMap<String, String> = HashMap::new();
    for (file_index, source) in sources.iter().enumerate() {
        let file = match source.parse() {
            Ok(file) => file,
            Err(d) => {
                problems.push(d);
                continue;
            }
        };
        let root = KeyPath::default();
        if file.version != 1 {
            problems.push(source.at(&root.key("version"), format!("version {} is not known; use 1", file.version)));
            continue;
        }
        let run_count = file.runs.len();
        // Locating a problem scans the file: only the first few are located.
        let (mut located, mut hidden) = (0usize, 0usize);
        let mut report = |problems: &mut Vec<Diagnostic>, path: KeyPath, message: String| {
            if located < MAX_LOCATED {
                located += 1;
                problems.push(source.at(&path, message));
            } else {
                hidden += 1;
            }
        };
        for (i, mut spec) in file.runs.into_iter().enumerate() {
            let here = root.key("runs").index(i);
            match check_run(&mut spec, &here, source, file_index, sources, &mut first_seen) {
                Ok(()) => {
                    out.specs.push(spec);
                    out.origins.push((file_index, i));
                }
                Err((path, message)) => report(&mut problems, path, message),
            }
        }
        super::tasks::compile_tasks(source, &file.tasks, &mut out.tasks, &mut first_task, &mut problems);
        for (i, spec) in file.faults.iter().enumerate() {
            let here = root.key("faults").index(i);
            match fault_of(spec, format!("{} faults[{i}]", source.display_name())) {
                Ok(f) => out.faults.push(f),
                Err((field, message)) => report(&mut problems, here.key(field), message),
            }
        }
        if hidden > 0 {
            problems.push(Diagnostic::whole(
                &source.name,
                format!("and {hidden} more problem(s) in runs and faults; fix the ones above first"),
            ));
        }
        if let Some(spec) = &file.rate_limit {
            let here = root.key("rateLimit");
            if out.rate_limit.is_some() {
                problems.push(source.at(&here, "a rate limit is already set by another file"));
            }
            let interval = spec.interval.as_deref().unwrap_or("10s");
            match parse_duration_ms(interval) {
                None => problems
                    .push(source.at(&here.key("interval"), format!("`{interval}` is not a duration such as 10s"))),
                Some(_) if spec.limit == Some(0) || spec.refill == Some(0) => {
                    problems.push(source.at(&here, "limit and refill are at least 1"))
                }
                Some(interval_ms) => {
                    let d = RateLimit::default();
                    out.rate_limit = Some(RateLimit {
                        limit: spec.limit.unwrap_or(d.limit),
                        refill: spec.refill.unwrap_or(d.refill),
                        interval_ms,
                    });
                }
            }
        }
        out.summaries.push(format!(
            "{}: {} run(s), {} fault(s){}{}{}",
            source.display_name(),
            run_count,
            file.faults.len(),
            if file.rate_limit.is_some() { ", a rate limit" } else { "" },
            if file.tasks.is_empty() { String::new() } else { format!(", {} task(s)", file.tasks.len()) },
            file.description.map(|d| format!(" - {d}")).unwrap_or_default(),
        ));
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// Turns the `file` of a run's packets into a checked absolute path: a file
/// in the scenario file's folder or below it. `..`, absolute paths and
/// symbolic links that lead out are refused.
fn resolve_files(spec: &mut RunSpec, source: &Source) -> Result<(), (&'static str, String)> {
    for (field, packet) in [("payloadPacket", &mut spec.payload_packet), ("outputPacket", &mut spec.output_packet)] {
        let Some(file) = packet.as_mut().and_then(|p| p.file.as_mut()) else { continue };
        let relative = std::path::Path::new(file.as_str());
        if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err((
                field,
                format!("`{file}` is not a plain path below the scenario's folder (no leading `/` or `./`, no `..`)"),
            ));
        }
        let Some(dir) = source.path.as_ref().and_then(|p| p.parent()) else {
            return Err((field, "only a scenario file on disk can name files".into()));
        };
        let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
        let base = dir.canonicalize().map_err(|e| (field, format!("cannot resolve the scenario's folder: {e}")))?;
        let full = base.join(relative).canonicalize().map_err(|e| (field, format!("cannot read `{file}`: {e}")))?;
        if !full.starts_with(&base) {
            return Err((field, format!("`{file}` leads out of the scenario's folder (a symbolic link?)")));
        }
        if !full.is_file() {
            return Err((field, format!("`{file}` is not a file")));
        }
        *file = full.to_string_lossy().into_owned();
    }
    Ok(())
}

type Problem = (KeyPath, String);

fn at(segs: &[super::locate::Seg], message: impl Into<String>) -> Problem {
    (KeyPath(segs.to_vec()), message.into())
}

/// The lifecycle of a spec: its steps, or its one status (a delayed run
/// becomes queued when its delay ends), with what it shows once it starts,
/// succeeds or fails.
pub fn lifecycle_of(spec: &RunSpec) -> Result<Lifecycle, Problem> {
    let (steps, ttl_ms) = steps_of(spec)?;
    let seed_output =
        crate::generate::generate(0, &spec.id, Some(EngineStatus::CompletedSuccessfully), crate::time::Millis(0), None);
    let final_status = steps.last().map_or(EngineStatus::Pending, |s| s.status);
    let seed_error = crate::generate::generate(0, &spec.id, Some(final_status), crate::time::Millis(0), None);
    Ok(Lifecycle {
        steps,
        ttl_ms,
        output: seed_output.output,
        error: spec.error.clone().or(seed_error.error),
        deploy: crate::generate::Deploy::draw(&spec.id),
        version: None,
    })
}

/// The checked steps and TTL of a spec's lifecycle: what loading a file
/// checks, without building what the run shows.
fn steps_of(spec: &RunSpec) -> Result<(Vec<Step>, Option<i64>), Problem> {
    use super::locate::Seg::{Index, Key};
    let ttl_ms = match &spec.ttl {
        Some(ttl) => Some(
            parse_duration_ms(ttl)
                .ok_or_else(|| at(&[Key("ttl".into())], format!("`{ttl}` is not a duration such as 10m or 1h30m")))?,
        ),
        None => None,
    };
    let given: Vec<StepSpec> = match &spec.lifecycle {
        Some(steps) if steps.is_empty() => {
            return Err(at(&[Key("lifecycle".into())], "a lifecycle has at least one step"));
        }
        Some(steps) => steps.clone(),
        None => statuses(spec).into_iter().map(|status| StepSpec { status, retrieves: None, duration: None }).collect(),
    };
    let mut steps = Vec::new();
    let last = given.len().saturating_sub(1);
    for (i, step) in given.iter().enumerate() {
        let here = |field: &str| vec![Key("lifecycle".into()), Index(i), Key(field.into())];
        if let Some(prev) = given.get(i.wrapping_sub(1)).filter(|_| i > 0) {
            check_transition(prev.status, step.status).map_err(|m| at(&here("status"), m))?;
        }
        let until = match (step.retrieves, &step.duration) {
            (Some(_), Some(_)) => return Err(at(&here("for"), "give `retrieves` or `for`, not both")),
            (Some(0), None) => return Err(at(&here("retrieves"), "a step lasts at least 1 retrieve")),
            (Some(n), None) => Until::Retrieves(n),
            (None, Some(d)) => Until::Elapsed(
                parse_duration_ms(d)
                    .ok_or_else(|| at(&here("for"), format!("`{d}` is not a duration such as 30s or 10m")))?,
            ),
            (None, None) => Until::Forever,
        };
        if i == last && until != Until::Forever && step.status != EngineStatus::Delayed {
            return Err(at(&here("status"), "the last step lasts forever: drop its `retrieves` or `for`"));
        }
        if i < last && until == Until::Forever {
            return Err(at(&here("status"), "every step but the last needs `retrieves` or `for`"));
        }
        if step.status == EngineStatus::Delayed && !matches!(until, Until::Elapsed(_)) {
            let message = "a DELAYED step lasts a duration (`for`), which sets delayedUntil";
            if spec.lifecycle.is_some() {
                return Err(at(&here("status"), message));
            }
        }
        steps.push(Step { status: step.status, until });
    }
    // A delayed run is enqueued when its delay ends.
    if let Some(last_step) = steps.last_mut()
        && last_step.status == EngineStatus::Delayed
    {
        if last_step.until == Until::Forever {
            last_step.until = Until::Elapsed(3_600_000);
        }
        steps.push(Step { status: EngineStatus::Pending, until: Until::Forever });
    }
    if steps.first().is_some_and(|s| s.status.phase() == Phase::Expired) && ttl_ms.is_none() && spec.lifecycle.is_some()
    {
        return Err(at(&[Key("ttl".into())], "an EXPIRED step needs the run's `ttl`"));
    }
    Ok((steps, ttl_ms))
}

fn fault_of(spec: &super::format::FaultSpec, label: String) -> Result<Fault, (&'static str, String)> {
    if spec.nth.is_some() && (spec.after.is_some() || spec.times.is_some()) {
        return Err(("nth", "`nth` already says when; drop `after` and `times`".into()));
    }
    if spec.nth == Some(0) {
        return Err(("nth", "requests are counted from 1".into()));
    }
    if let Some(p) = spec.probability
        && !(0.0..=1.0).contains(&p)
    {
        return Err(("probability", format!("{p} is not between 0 and 1")));
    }
    if spec.action.is_none() && spec.delay_ms.is_none() {
        return Err(("action", "a fault needs an `action`, a `delayMs`, or both".into()));
    }
    let action = match &spec.action {
        None => None,
        Some(a) => Some(action_of(a).map_err(|m| ("action", m))?),
    };
    let what = action.as_ref().map_or("delay", Action::name);
    Ok(Fault {
        label: format!("{label}: {what}"),
        run_id: spec.run_id.clone().map(Glob),
        route: spec.route.unwrap_or(RouteName::Any),
        after: spec.nth.map_or(spec.after.unwrap_or(0), |n| n - 1),
        times: if spec.nth.is_some() { Some(1) } else { spec.times },
        probability: spec.probability.unwrap_or(1.0),
        delay_ms: spec.delay_ms.unwrap_or(0),
        action,
    })
}

/// Headers that frame a response or manage the connection: hyper sets them
/// (HTTP/2 forbids most of them), so a fault's headers may not.
const FRAMING_HEADERS: [&str; 8] =
    ["connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

fn action_of(spec: &ActionSpec) -> Result<Action, String> {
    Ok(match spec {
        ActionSpec::Status { status, body, text, headers } => {
            if !(100..=599).contains(status) {
                return Err(format!("{status} is not an HTTP status"));
            }
            if *status < 200 {
                return Err(format!("{status} is informational (1xx) and cannot end a response; use 200 to 599"));
            }
            if body.is_some() && text.is_some() {
                return Err("give `body` or `text`, not both".into());
            }
            for (name, value) in headers {
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || hyper::header::HeaderValue::from_str(value).is_err()
                {
                    return Err(format!("`{name}: {value}` is not a valid header"));
                }
                if let Some(framing) = FRAMING_HEADERS.iter().find(|f| name.eq_ignore_ascii_case(f)) {
                    return Err(format!(
                        "`{framing}` frames the response or the connection, so the server sets it; a fault cannot"
                    ));
                }
            }
            let (body, json) = status_body(body.as_ref(), text.as_deref());
            Action::Status { status: *status, body, json, headers: headers.clone() }
        }
        ActionSpec::NotFound { should_retry } => Action::NotFound { should_retry: should_retry.unwrap_or(true) },
        ActionSpec::RateLimit { limit, remaining, reset_ms } => Action::RateLimit {
            limit: limit.unwrap_or(750),
            remaining: remaining.unwrap_or(0),
            reset_ms: reset_ms.unwrap_or(1000),
        },
        ActionSpec::ServerError { status } => {
            let status = status.unwrap_or(500);
            if !(500..=599).contains(&status) {
                return Err(format!("{status} is not a 5xx status"));
            }
            Action::ServerError { status }
        }
        ActionSpec::Reset {} => Action::Reset,
        ActionSpec::CloseMidBody {} => Action::CloseMidBody,
        ActionSpec::Truncate {} => Action::Truncate,
        ActionSpec::Malformed {} => Action::Malformed,
        ActionSpec::BreakSchema {} => Action::BreakSchema,
        ActionSpec::Dribble { chunk_bytes, interval_ms } => {
            if *chunk_bytes == Some(0) {
                return Err("chunkBytes is at least 1".into());
            }
            Action::Dribble { chunk_bytes: chunk_bytes.unwrap_or(16) as usize, interval_ms: interval_ms.unwrap_or(50) }
        }
    })
}
