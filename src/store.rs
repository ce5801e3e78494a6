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
use crate::world::Rendering;
use bytes::Bytes;
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

const CACHE_SHARDS: usize = 32;
/// Generated runs kept per shard; a full shard is emptied (memory stays flat).
const CACHE_PER_SHARD: usize = 128;

/// How many bytes of a generated run's id its cache entry holds itself.
const INLINE_ID: usize = 32;

/// A cache entry: the run, its id and its bodies, where the lookup reads
/// them. With a thousand generated runs in turn, a lookup rarely finds any of
/// this cached, so what a retrieve reads is kept in the table itself:
///
/// - ids up to [`INLINE_ID`] bytes (the real ones are 29), compared here
///   rather than in a string allocated elsewhere;
/// - the bodies, read here rather than through the run's `Arc`, whose count
///   a retrieve would increment: an atomic increment waits for its line,
///   where plain reads of the entry overlap (perf put 100 ns of a retrieve on
///   that increment);
/// - each body an `Arc<[u8]>`, whose counts share a line with its first
///   bytes: the reference a retrieve takes (a `Bytes` over it, with a small
///   allocation the thread's allocator has at hand) changes a line the
///   kernel copies anyway. A shared `Bytes` keeps its count in an
///   allocation of its own, one more line to fetch (perf: 100 ns).
#[derive(Debug)]
struct Cached {
    id: [u8; INLINE_ID],
    /// The id's length, or `u8::MAX` for a longer id (compared with the run's).
    len: u8,
    /// [`is_plain`]: the bodies are kept once rendered.
    plain: bool,
    /// By [`Rendering::index`], once rendered; only for a plain run.
    bodies: [Option<Arc<[u8]>>; Rendering::COUNT],
    run: Arc<Run>,
}

impl Cached {
    fn new(id: &str, run: Arc<Run>) -> Cached {
        let mut inline = [0u8; INLINE_ID];
        let len = match inline.get_mut(..id.len()) {
            Some(to) => {
                to.copy_from_slice(id.as_bytes());
                id.len() as u8
            }
            None => u8::MAX,
        };
        Cached { id: inline, len, plain: is_plain(&run), bodies: Default::default(), run }
    }

    fn is(&self, id: &str) -> bool {
        match self.id.get(..usize::from(self.len)) {
            Some(inline) => inline == id.as_bytes(),
            None => self.run.id == id,
        }
    }
}

/// True when `run` has no packets: its body depends only on the rendering
/// (a packet's URL names the request's host).
fn is_plain(run: &Run) -> bool {
    run.payload_packet.is_none() && run.output_packet.is_none()
}

/// The bytes of an `Arc`'s counts, before its value.
const ARC_COUNTS: usize = 2 * std::mem::size_of::<usize>();

/// A generated run's retrieve, as the cache answers it.
#[derive(Debug)]
pub enum Generated {
    /// The body: it answers every request.
    Body(Bytes),
    /// The run, to be rendered for the request (its packets' URLs name the host).
    Run(Arc<Run>),
}

type CacheShard = Mutex<FxHashMap<u64, Cached>>;

fn lock(shard: &CacheShard) -> std::sync::MutexGuard<'_, FxHashMap<u64, Cached>> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The cache shard of the generated run `id`, and the id's hash there;
    /// `None` when generation is off or the id is not well-formed.
    fn cache_slot(&self, id: &str) -> Option<(u64, &CacheShard)> {
        if !(self.generate && convention::is_well_formed(id)) {
            return None;
        }
        let hash = crate::generate::stable_hash(id.as_bytes());
        Some((hash, &self.cache[(hash % CACHE_SHARDS as u64) as usize]))
    }

    /// The generated run `id` (made now and cached when the cache lacks it);
    /// `None` when generation is off or the id is not well-formed.
    pub fn generated(&self, id: &str) -> Option<Arc<Run>> {
        let (hash, shard) = self.cache_slot(id)?;
        let cached = lock(shard).get(&hash).filter(|c| c.is(id)).map(|c| c.run.clone());
        Some(cached.unwrap_or_else(|| self.make_cached(hash, shard, id)))
    }

    /// Makes the generated run `id` and caches it. Made outside the lock:
    /// two racing requests make the same run.
    fn make_cached(&self, hash: u64, shard: &CacheShard, id: &str) -> Arc<Run> {
        let made = Arc::new(self.make(id));
        let mut map = lock(shard);
        if map.len() >= CACHE_PER_SHARD {
            map.clear();
        }
        map.insert(hash, Cached::new(id, made.clone()));
        made
    }

    /// The retrieve of the generated run `id` for rendering `index`: its
    /// body, cached once `render` made it, or the run when its body depends
    /// on the request; `None` when generation is off or the id is not
    /// well-formed.
    pub fn generated_retrieve(&self, id: &str, index: usize, render: impl FnOnce(&Run) -> Bytes) -> Option<Generated> {
        let (hash, shard) = self.cache_slot(id)?;
        let cached = match lock(shard).get(&hash).filter(|c| c.is(id)) {
            Some(hit) if hit.plain => match hit.bodies.get(index) {
                Some(Some(body)) => {
                    // Its count and its first bytes share a line: the count
                    // is changed now, the bytes copied by the kernel soon.
                    crate::prefetch::for_read(body.as_ptr().wrapping_sub(ARC_COUNTS), ARC_COUNTS + body.len());
                    return Some(Generated::Body(Bytes::from_owner(body.clone())));
                }
                _ => Some(hit.run.clone()),
            },
            Some(hit) => return Some(Generated::Run(hit.run.clone())),
            None => None,
        };
        let run = cached.unwrap_or_else(|| self.make_cached(hash, shard, id));
        if !is_plain(&run) {
            return Some(Generated::Run(run));
        }
        let body = render(&run);
        if let Some(entry) = lock(shard).get_mut(&hash).filter(|c| Arc::ptr_eq(&c.run, &run))
            && let Some(cell) = entry.bodies.get_mut(index)
        {
            *cell = Some(Arc::from(&body[..]));
        }
        Some(Generated::Body(body))
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

    /// A store of generated runs only, offloading payloads of `threshold` bytes or more.
    fn store_offloading(threshold: u64) -> Store {
        let defined = crate::catalogue::compile(Vec::new(), 7, Millis(1_767_225_600_000), u64::MAX)
            .unwrap_or_else(|e| panic!("{e:?}"));
        Store::new(defined, 7, Millis(1_767_225_600_000), true, threshold)
    }

    fn store() -> Store {
        store_offloading(u64::MAX)
    }

    #[test]
    fn generated_runs_are_cached_by_their_whole_id_short_or_long() {
        let store = store();
        let short = "run_cmabc123";
        let long = format!("run_{}", "x".repeat(INLINE_ID + 20));
        for id in [short, long.as_str()] {
            let first = store.generated(id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(first.id, id);
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

    fn body(answer: Option<Generated>) -> Bytes {
        match answer {
            Some(Generated::Body(body)) => body,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plain_generated_run_is_rendered_once_per_rendering() {
        let store = store();
        let id = "run_cmabc123";
        let first = body(store.generated_retrieve(id, 1, |run| Bytes::from(format!("{} one", run.id))));
        assert_eq!(first, "run_cmabc123 one");
        let again = body(store.generated_retrieve(id, 1, |_| panic!("rendered again")));
        assert_eq!(again, first, "the cached body");
        let other = body(store.generated_retrieve(id, 2, |_| Bytes::from_static(b"two")));
        assert_eq!(other, "two", "each rendering has its own body");
        // A rendering out of range is rendered every time, not kept.
        assert_eq!(body(store.generated_retrieve(id, Rendering::COUNT, |_| Bytes::from_static(b"x"))), "x");
        assert_eq!(body(store.generated_retrieve(id, Rendering::COUNT, |_| Bytes::from_static(b"y"))), "y");
        assert!(store.generated_retrieve("not a run id", 1, |_| panic!()).is_none());
    }

    #[test]
    fn a_generated_run_with_packets_is_rendered_per_request() {
        // Every payload is offloaded: the body names the request's host.
        let store = store_offloading(0);
        let id = (0..100)
            .map(|i| format!("run_cmabc{i}"))
            .find(|id| store.generated(id).is_some_and(|run| run.payload_packet.is_some()))
            .unwrap_or_else(|| panic!("no run with a payload"));
        for _ in 0..2 {
            match store.generated_retrieve(&id, 1, |_| panic!("the store does not render it")) {
                Some(Generated::Run(run)) => assert_eq!(run.id, id),
                other => panic!("{other:?}"),
            }
        }
    }
}
