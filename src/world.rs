//! The world: every run, lifecycle, fault and rate limit the server answers
//! from, built once from the catalogue and the scenario files. It is
//! immutable; loading new scenarios builds a new world and swaps it in whole.

use crate::catalogue::{CompactSpec, compile as compile_specs, default_catalogue};
use crate::faults::Fault;
use crate::lifecycle::{Lifecycle, Step, Until};
use crate::model::{ApiVersion, EngineStatus, PacketUrls, RenderOptions};
use crate::ratelimit::RateLimit;
use crate::scenario::{self, Diagnostic, Source};
use crate::store::Store;
use crate::time::Millis;
use bytes::Bytes;
use rustc_hash::FxHashMap;
use std::sync::{Arc, OnceLock};

/// What a world is built with besides the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub seed: u64,
    /// "Now" for generated and catalogue runs: the clock at start-up.
    pub anchor: Millis,
    pub generate: bool,
    /// `--rate-limit`: the real defaults, unless a file sets its own.
    pub rate_limit: bool,
    /// Packets of this many bytes or more are offloaded behind presigned URLs.
    pub offload_threshold: u64,
}

/// The server's offload threshold: 512 KiB.
pub const DEFAULT_OFFLOAD_THRESHOLD: u64 = 512 * 1024;

/// Everything a request reads, immutable.
#[derive(Debug)]
pub struct World {
    pub store: Store,
    /// The scripted runs (every scenario run), each lifecycle built on first
    /// use ([`World::lifecycle`]): a large file costs little until it is used.
    pub lifecycles: FxHashMap<Arc<str>, OnceLock<Option<Box<Lifecycle>>>>,
    pub faults: Vec<Fault>,
    pub rate_limit: Option<RateLimit>,
    pub anchor: Millis,
    /// One line per scenario file.
    pub summaries: Vec<String>,
    /// Bodies of runs that cannot change (defined, not scripted, no packet
    /// URLs to sign), rendered once per [`Rendering`].
    pub static_bodies: FxHashMap<String, [Bytes; Rendering::COUNT]>,
    /// How triggered tasks behave, by task id (scenario files' `tasks`).
    pub tasks: FxHashMap<String, crate::ledger::Task>,
    /// Distinct for every world built in the process: a body rendered in one
    /// world (relations resolve in it) is not reused in the next.
    pub generation: u64,
    /// How a task no file names behaves.
    pub default_task: crate::ledger::Task,
}

/// The renderings of a body a request can ask for (API version, costs,
/// packets), numbered so pre-rendered bodies sit in an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendering;

impl Rendering {
    /// How many renderings there are.
    pub const COUNT: usize = 8;

    /// The rendering numbered `i`.
    pub fn options(i: usize) -> RenderOptions {
        RenderOptions {
            version: if i & 4 == 0 { ApiVersion::Unversioned } else { ApiVersion::V20250716 },
            zero_costs: i & 2 != 0,
            hide_packets: i & 1 != 0,
        }
    }

    /// The index of `options` in [`Rendering::all`].
    pub fn index(options: RenderOptions) -> usize {
        usize::from(options.version == ApiVersion::V20250716) * 4
            + usize::from(options.zero_costs) * 2
            + usize::from(options.hide_packets)
    }
}

impl World {
    /// How runs of `task` behave when triggered.
    pub fn task(&self, task: &str) -> &crate::ledger::Task {
        self.tasks.get(task).unwrap_or(&self.default_task)
    }

    /// A scripted run as a key seen for the first time at `now` would see
    /// it; `None` for runs without a lifecycle.
    pub fn first_view(&self, id: &str, now: Millis) -> Option<crate::model::Run> {
        let lifecycle = self.lifecycle(id)?;
        let base = self.store.related(id)?;
        Some(crate::lifecycle::Progress::start(base, lifecycle, self.anchor, now).view(base, lifecycle, now))
    }

    /// The lifecycle of the scripted run `id`, built on first use.
    pub fn lifecycle(&self, id: &str) -> Option<&Lifecycle> {
        self.lifecycles.get(id)?.get_or_init(|| self.build_lifecycle(id).map(Box::new)).as_deref()
    }

    fn build_lifecycle(&self, id: &str) -> Option<Lifecycle> {
        let spec = self.store.spec(id)?.spec();
        // Checked when the file was loaded.
        let mut lifecycle = scenario::compile::lifecycle_of(&spec).ok()?;
        // A run with neither status nor lifecycle keeps the status it was generated with.
        if lifecycle.steps.is_empty()
            && let Some(run) = self.store.related(id)
        {
            lifecycle.steps.push(Step { status: run.status, until: Until::Forever });
            if run.status == EngineStatus::Delayed {
                lifecycle.steps[0].until = Until::Elapsed(3_600_000);
                lifecycle.steps.push(Step { status: EngineStatus::Pending, until: Until::Forever });
            }
        }
        Some(lifecycle)
    }

    /// Builds a world from the embedded catalogue and `sources`. A scenario
    /// run may shadow a catalogue run of the same id.
    pub fn build(settings: &Settings, sources: &[Source]) -> Result<World, Vec<Diagnostic>> {
        let one =
            |message: String| vec![Diagnostic { file: "fixtures/catalogue.json".into(), line: 1, column: 1, message }];
        let catalogue = default_catalogue().map_err(one)?;
        let scenario::Scenarios { specs: scenario_specs, origins, faults, rate_limit, summaries, tasks } =
            scenario::compile(sources)?;
        let lifecycles: FxHashMap<Arc<str>, _> =
            scenario_specs.iter().map(|s| (s.shared_id(), OnceLock::new())).collect();
        let mut specs: Vec<CompactSpec> = catalogue
            .runs
            .into_iter()
            .filter(|s| !lifecycles.contains_key(s.id.as_str()))
            .map(CompactSpec::from)
            .collect();
        let offset = specs.len();
        specs.extend(scenario_specs);
        let locator = scenario::Scenarios { origins, ..scenario::Scenarios::default() };
        let defined = compile_specs(specs, settings.seed, settings.anchor, settings.offload_threshold)
            .map_err(|e| vec![locator.locate_spec_error(sources, offset, &e)])?;
        let scenarios = scenario::Scenarios { faults, rate_limit, summaries, tasks, ..locator };
        let rate_limit = scenarios.rate_limit.or(settings.rate_limit.then(RateLimit::default));
        let mut store =
            Store::new(defined, settings.seed, settings.anchor, settings.generate, settings.offload_threshold);
        // Bodies rendered per request (scripted runs, signed packet URLs) copy
        // their children. Only parents are built here: every other run is
        // built on first use.
        let per_request: Vec<String> = store
            .entries()
            .iter()
            .filter(|e| store.has_children(&e.id))
            .filter_map(|e| store.related(&e.id))
            .filter(|r| {
                lifecycles.contains_key(r.id.as_str()) || r.payload_packet.is_some() || r.output_packet.is_some()
            })
            .map(|r| r.id.clone())
            .collect();
        store.prerender_children(per_request.iter().map(String::as_str));
        let mut static_bodies = FxHashMap::default();
        for entry in store.entries() {
            if lifecycles.contains_key(entry.id.as_str()) {
                continue;
            }
            let Some(run) = store.related(&entry.id) else { continue };
            if run.payload_packet.is_some() || run.output_packet.is_some() {
                continue;
            }
            let bodies: [Bytes; Rendering::COUNT] =
                std::array::from_fn(|i| store.render(run, Rendering::options(i), PacketUrls::default()));
            static_bodies.insert(run.id.clone(), bodies);
        }
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(World {
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            store,
            lifecycles,
            faults: scenarios.faults,
            rate_limit,
            anchor: settings.anchor,
            summaries: scenarios.summaries,
            static_bodies,
            tasks: scenarios.tasks,
            default_task: crate::ledger::Task::default_task(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_rendered_at_start_up_give_the_body_rendered_whole() {
        let mut runs = vec![r#"{"id": "run_root", "lifecycle": [{"status": "EXECUTING"}]}"#.to_owned()];
        runs.extend((0..50).map(|i| format!(r#"{{"id": "run_kid_{i}", "parent": "run_root"}}"#)));
        let text = format!(r#"{{"version": 1, "runs": [{}]}}"#, runs.join(","));
        let source = Source { name: "kids".into(), text, path: None };
        let settings = Settings {
            seed: 3,
            anchor: Millis(1_767_225_600_000),
            generate: true,
            rate_limit: false,
            offload_threshold: DEFAULT_OFFLOAD_THRESHOLD,
        };
        let world = World::build(&settings, &[source]).unwrap_or_else(|e| panic!("{e:?}"));
        let root = world.store.related("run_root").unwrap_or_else(|| panic!("no root"));
        assert_eq!(root.child_ids.len(), 50);
        for i in 0..Rendering::COUNT {
            let options = Rendering::options(i);
            let whole = crate::model::render_json(root, options, |id| world.store.related(id), PacketUrls::default());
            assert_eq!(world.store.render(root, options, PacketUrls::default()), Bytes::from(whole), "rendering {i}");
        }
    }

    #[test]
    fn rendering_indices_round_trip() {
        for i in 0..Rendering::COUNT {
            assert_eq!(Rendering::index(Rendering::options(i)), i);
        }
    }
}
