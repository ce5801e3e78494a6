//! The world: every run, lifecycle, fault and rate limit the server answers
//! from, built once from the catalogue and the scenario files. It is
//! immutable; loading new scenarios builds a new world and swaps it in whole.

use crate::catalogue::{RunSpec, compile as compile_specs, default_catalogue};
use crate::faults::Fault;
use crate::lifecycle::{Lifecycle, Step, Until};
use crate::model::{ApiVersion, EngineStatus, PacketUrls, RenderOptions};
use crate::ratelimit::RateLimit;
use crate::scenario::{self, Diagnostic, Source};
use crate::store::Store;
use crate::time::Millis;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};

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
    pub lifecycles: HashMap<String, Lifecycle>,
    pub faults: Vec<Fault>,
    pub rate_limit: Option<RateLimit>,
    pub anchor: Millis,
    /// One line per scenario file.
    pub summaries: Vec<String>,
    /// Bodies of runs that cannot change (defined, not scripted, no packet
    /// URLs to sign), rendered once per [`Rendering`].
    pub static_bodies: HashMap<String, [Bytes; Rendering::COUNT]>,
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
    /// A scripted run as a key seen for the first time at `now` would see
    /// it; `None` for runs without a lifecycle.
    pub fn first_view(&self, id: &str, now: Millis) -> Option<crate::model::Run> {
        let lifecycle = self.lifecycles.get(id)?;
        let base = self.store.related(id)?;
        Some(crate::lifecycle::Progress::start(base, lifecycle, self.anchor, now).view(base, lifecycle, now))
    }

    /// Builds a world from the embedded catalogue and `sources`. A scenario
    /// run may shadow a catalogue run of the same id.
    pub fn build(settings: &Settings, sources: &[Source]) -> Result<World, Vec<Diagnostic>> {
        let one =
            |message: String| vec![Diagnostic { file: "fixtures/catalogue.json".into(), line: 1, column: 1, message }];
        let catalogue = default_catalogue().map_err(one)?;
        let scenarios = scenario::compile(sources)?;
        let shadowed: HashSet<&str> = scenarios.specs.iter().map(|s| s.id.as_str()).collect();
        let mut specs: Vec<RunSpec> =
            catalogue.runs.into_iter().filter(|s| !shadowed.contains(s.id.as_str())).collect();
        let offset = specs.len();
        specs.extend(scenarios.specs.iter().cloned());
        let defined = compile_specs(&specs, settings.seed, settings.anchor, settings.offload_threshold)
            .map_err(|e| vec![scenarios.locate_spec_error(sources, offset, &e)])?;
        let mut lifecycles = scenarios.lifecycles;
        for (id, lifecycle) in &mut lifecycles {
            // A run with neither status nor lifecycle keeps the status it was generated with.
            if lifecycle.steps.is_empty()
                && let Some(run) = defined.runs.get(id)
            {
                lifecycle.steps.push(Step { status: run.status, until: Until::Forever });
                if run.status == EngineStatus::Delayed {
                    lifecycle.steps[0].until = Until::Elapsed(3_600_000);
                    lifecycle.steps.push(Step { status: EngineStatus::Pending, until: Until::Forever });
                }
            }
        }
        let rate_limit = scenarios.rate_limit.or(settings.rate_limit.then(RateLimit::default));
        let mut store =
            Store::new(defined, settings.seed, settings.anchor, settings.generate, settings.offload_threshold);
        // Bodies rendered per request (scripted runs, signed packet URLs) copy their children.
        let per_request: Vec<String> = store
            .entries()
            .iter()
            .filter_map(|e| store.related(&e.id))
            .filter(|r| lifecycles.contains_key(&r.id) || r.payload_packet.is_some() || r.output_packet.is_some())
            .map(|r| r.id.clone())
            .collect();
        store.prerender_children(per_request.iter().map(String::as_str));
        let mut static_bodies = HashMap::new();
        for entry in store.entries() {
            let Some(run) = store.related(&entry.id) else { continue };
            if lifecycles.contains_key(&run.id) || run.payload_packet.is_some() || run.output_packet.is_some() {
                continue;
            }
            let bodies: [Bytes; Rendering::COUNT] =
                std::array::from_fn(|i| store.render(run, Rendering::options(i), PacketUrls::default()));
            static_bodies.insert(run.id.clone(), bodies);
        }
        Ok(World {
            store,
            lifecycles,
            faults: scenarios.faults,
            rate_limit,
            anchor: settings.anchor,
            summaries: scenarios.summaries,
            static_bodies,
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
