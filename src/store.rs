//! The run store: runs defined by files, and generation for every other
//! well-formed id. Defined runs are read-only after start-up (each built on
//! first use, see [`crate::catalogue::Defined`]); generated runs
//! are kept in a small bounded cache (sharded, locked only to look up or
//! insert), each with its bodies rendered on first use.

use crate::catalogue::{Defined, Entry};
use crate::convention;
use crate::generate::generate;
use crate::model::{ApiVersion, PacketUrls, RenderOptions, Run, render_children, render_json_with};
use crate::time::Millis;
use bytes::Bytes;
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

const CACHE_SHARDS: usize = 32;
/// Generated runs kept per shard; a full shard is emptied (memory stays flat).
const CACHE_PER_SHARD: usize = 128;

/// How many bytes of a generated run's id its cache entry holds itself.
const INLINE_ID: usize = 32;

/// A cache entry: the run, and its id where the lookup reads it. Ids up to
/// [`INLINE_ID`] bytes (the real ones are 29) are compared in the cache's
/// own table, not in a string allocated elsewhere: one line of memory fewer
/// to fetch on a lookup, which with a thousand generated runs in turn is
/// rarely still cached.
#[derive(Debug)]
struct Cached {
    id: [u8; INLINE_ID],
    /// The id's length, or `u8::MAX` for a longer id (compared with the run's).
    len: u8,
    run: Arc<GeneratedRun>,
}

impl Cached {
    fn new(id: &str, run: Arc<GeneratedRun>) -> Cached {
        let mut inline = [0u8; INLINE_ID];
        let len = match inline.get_mut(..id.len()) {
            Some(to) => {
                to.copy_from_slice(id.as_bytes());
                id.len() as u8
            }
            None => u8::MAX,
        };
        Cached { id: inline, len, run }
    }

    fn is(&self, id: &str) -> bool {
        match self.id.get(..usize::from(self.len)) {
            Some(inline) => inline == id.as_bytes(),
            None => self.run.run.id == id,
        }
    }
}

/// A generated run and its bodies, rendered once per rendering on first use.
#[derive(Debug)]
pub struct GeneratedRun {
    pub run: Run,
    bodies: [OnceLock<Bytes>; crate::world::Rendering::COUNT],
}

impl GeneratedRun {
    /// The body for rendering `index`, rendered by `render` the first time.
    pub fn body(&self, index: usize, render: impl FnOnce(&Run) -> Bytes) -> Bytes {
        match self.bodies.get(index) {
            Some(cell) => cell.get_or_init(|| render(&self.run)).clone(),
            None => render(&self.run),
        }
    }
}

/// Where runs come from.
#[derive(Debug)]
pub struct Store {
    defined: Defined,
    seed: u64,
    /// "Now" for generated runs: the clock at start-up, so a run reads the same
    /// on every retrieve.
    anchor: Millis,
    generate: bool,
    /// Generated payloads and outputs this large are offloaded.
    threshold: u64,
    /// By the id's [`crate::generate::stable_hash`] (which also picks the
    /// shard); an entry whose id differs is a collision and is replaced.
    cache: Vec<Mutex<FxHashMap<u64, Cached>>>,
    /// `relatedRuns.children` of runs whose bodies are rendered per request,
    /// rendered at start-up per [`children_index`].
    children: FxHashMap<String, [Option<Box<RawValue>>; 4]>,
}

/// The children array depends only on the API version and the costs.
fn children_index(options: RenderOptions) -> usize {
    usize::from(options.version == ApiVersion::V20250716) * 2 + usize::from(options.zero_costs)
}

fn children_options(i: usize) -> RenderOptions {
    let version = if i & 2 == 0 { ApiVersion::Unversioned } else { ApiVersion::V20250716 };
    RenderOptions { version, zero_costs: i & 1 != 0, hide_packets: false }
}

impl Store {
    /// A store over `defined`, generating other runs from `seed` around
    /// `anchor` when `generate` is on.
    pub fn new(defined: Defined, seed: u64, anchor: Millis, generate: bool, threshold: u64) -> Store {
        let cache = (0..CACHE_SHARDS).map(|_| Mutex::new(FxHashMap::default())).collect();
        Store { defined, seed, anchor, generate, threshold, cache, children: FxHashMap::default() }
    }

    fn make(&self, id: &str) -> Run {
        let mut run = generate(self.seed, id, convention::status_of(id), self.anchor, None);
        crate::catalogue::offload_generated(&mut run, self.threshold, [false, false]);
        run
    }

    /// True when a file defines `id`.
    pub fn is_defined(&self, id: &str) -> bool {
        self.defined.contains(id)
    }

    /// The generated run `id`, from the cache or made now; `None` when
    /// generation is off or the id is not well-formed.
    pub fn generated(&self, id: &str) -> Option<Arc<GeneratedRun>> {
        if !(self.generate && convention::is_well_formed(id)) {
            return None;
        }
        let hash = crate::generate::stable_hash(id.as_bytes());
        let shard = &self.cache[(hash % CACHE_SHARDS as u64) as usize];
        if let Some(hit) = shard.lock().unwrap_or_else(|p| p.into_inner()).get(&hash).filter(|c| c.is(id)) {
            return Some(hit.run.clone());
        }
        // Generated outside the lock; two racing requests make the same run.
        let made = Arc::new(GeneratedRun { run: self.make(id), bodies: Default::default() });
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_PER_SHARD {
            map.clear();
        }
        map.insert(hash, Cached::new(id, made.clone()));
        Some(made)
    }

    /// The run `id`: defined, generated, or `None` (a 404).
    pub fn get(&self, id: &str) -> Option<Cow<'_, Run>> {
        if let Some(run) = self.defined.get(id) {
            return Some(Cow::Borrowed(run));
        }
        (self.generate && convention::is_well_formed(id)).then(|| Cow::Owned(self.make(id)))
    }

    /// The retrieve body of `run`, its relations resolved against this store.
    pub fn render(&self, run: &Run, options: RenderOptions, urls: PacketUrls<'_>) -> Bytes {
        let children = self.children.get(&run.id).and_then(|c| c[children_index(options)].as_deref());
        Bytes::from(render_json_with(run, options, |id| self.related(id), urls, children))
    }

    /// Renders the children arrays of the defined runs `ids` (those with
    /// children) once, so that a body rendered per request copies them
    /// instead of rendering every child again.
    pub fn prerender_children<'i>(&mut self, ids: impl IntoIterator<Item = &'i str>) {
        for id in ids {
            if !self.defined.has_children(id) {
                continue;
            }
            let Some(run) = self.defined.get(id) else { continue };
            let rendered = std::array::from_fn(|i| render_children(run, children_options(i), |id| self.related(id)));
            self.children.insert(id.to_owned(), rendered);
        }
    }

    /// True when the defined run `id` has children.
    pub fn has_children(&self, id: &str) -> bool {
        self.defined.has_children(id)
    }

    /// A defined run (built on first use), also for resolving relations
    /// (generated runs have none).
    pub fn related(&self, id: &str) -> Option<&Run> {
        self.defined.get(id)
    }

    /// How many of a defined run and the relatives its retrieve shows are
    /// not built yet, counting up to `enough`.
    pub fn unbuilt_family(&self, id: &str, enough: usize) -> usize {
        self.defined.unbuilt_family(id, enough)
    }

    /// Builds a defined run and the relatives its retrieve shows.
    pub fn build_family(&self, id: &str) {
        self.defined.build_family(id);
    }

    /// The spec of a defined run.
    pub fn spec(&self, id: &str) -> Option<&crate::catalogue::CompactSpec> {
        self.defined.spec(id)
    }

    /// The defined runs, sorted by id.
    pub fn entries(&self) -> &[Entry] {
        &self.defined.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let defined = crate::catalogue::compile(Vec::new(), 7, Millis(1_767_225_600_000), u64::MAX)
            .unwrap_or_else(|e| panic!("{e:?}"));
        Store::new(defined, 7, Millis(1_767_225_600_000), true, u64::MAX)
    }

    #[test]
    fn generated_runs_are_cached_by_their_whole_id_short_or_long() {
        let store = store();
        let short = "run_cmabc123";
        let long = format!("run_{}", "x".repeat(INLINE_ID + 20));
        for id in [short, long.as_str()] {
            let first = store.generated(id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(first.run.id, id);
            let again = store.generated(id).unwrap_or_else(|| panic!("{id}"));
            assert!(Arc::ptr_eq(&first, &again), "{id} comes from the cache");
        }
        // An entry answers only for its own id: a longer or shorter one is not it.
        let entry = Cached::new(short, store.generated(short).unwrap_or_else(|| panic!()));
        assert!(entry.is(short) && !entry.is("run_cmabc12") && !entry.is("run_cmabc1234"));
        let entry = Cached::new(&long, store.generated(&long).unwrap_or_else(|| panic!()));
        assert_eq!(entry.len, u8::MAX);
        assert!(entry.is(&long) && !entry.is(&long[..long.len() - 1]));
    }
}
