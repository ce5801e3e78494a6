//! Per-API-key scenario state (lifecycle positions, fault counters, rate-limit
//! buckets), so parallel suites using different keys never interfere.
//!
//! Keys are spread over shards, each a `std::sync::Mutex`: a lock is held
//! only for the few arithmetic steps of one request, never across `.await`,
//! so cores do not queue on one lock.
//!
//! The state is bounded in bytes: each shard keeps at most its share of the
//! budget and forgets its least recently used keys first (amortised O(1) per
//! request, under the shard's lock only). A forgotten key that comes back
//! starts afresh, as a new key would. Keys are stored by a fixed-size
//! [`KeyId`]: short keys whole, longer ones by their SHA-256, so a 64 KiB key
//! costs no more than a short one.

use crate::lifecycle::Progress;
use crate::ratelimit::Bucket;
use crate::time::Millis;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::mem::size_of;
use std::sync::Mutex;

/// Keys up to this many bytes are stored whole; longer ones by their SHA-256.
pub const INLINE_KEY_BYTES: usize = 32;

/// The default budget of all keys' state: 32 MiB.
pub const DEFAULT_KEY_STATE_BYTES: usize = 32 << 20;

/// A key as stored: fixed size, distinct for distinct keys (long keys differ
/// unless their SHA-256 digests collide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId {
    /// The key's length when stored whole, [`KeyId::DIGEST`] for a digest.
    tag: u8,
    bytes: [u8; INLINE_KEY_BYTES],
}

impl KeyId {
    const DIGEST: u8 = u8::MAX;

    /// The id of `key`.
    pub fn of(key: &str) -> KeyId {
        let mut bytes = [0u8; INLINE_KEY_BYTES];
        if key.len() <= INLINE_KEY_BYTES {
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            KeyId { tag: key.len() as u8, bytes }
        } else {
            bytes.copy_from_slice(&Sha256::digest(key.as_bytes()));
            KeyId { tag: KeyId::DIGEST, bytes }
        }
    }

    /// The id as bytes, as the journal stores it: the tag, then the bytes.
    pub fn to_bytes(&self) -> [u8; 1 + INLINE_KEY_BYTES] {
        let mut out = [0u8; 1 + INLINE_KEY_BYTES];
        out[0] = self.tag;
        out[1..].copy_from_slice(&self.bytes);
        out
    }

    /// The id [`KeyId::to_bytes`] gave these bytes for.
    pub fn from_bytes(raw: [u8; 1 + INLINE_KEY_BYTES]) -> KeyId {
        let mut bytes = [0u8; INLINE_KEY_BYTES];
        bytes.copy_from_slice(&raw[1..]);
        KeyId { tag: raw[0], bytes }
    }

    fn shard(&self) -> usize {
        crate::generate::stable_hash(&self.bytes) as usize
    }

    /// A short name of the key that does not show it (16 hex digits of a
    /// hash of the whole key), by which the dashboard names an environment.
    pub fn handle(&self) -> String {
        let mut whole = [0u8; INLINE_KEY_BYTES + 1];
        whole[0] = self.tag;
        whole[1..].copy_from_slice(&self.bytes);
        format!("{:016x}", crate::generate::stable_hash(&whole))
    }
}

/// One key's state.
#[derive(Debug)]
pub struct KeyState {
    /// When this key's timeline began: its first request, or its last reset.
    pub epoch: Millis,
    /// Lifecycle positions, by run id.
    runs: HashMap<Box<str>, Progress>,
    /// The heap bytes of `runs`' ids and progress.
    runs_heap: usize,
    /// Matching-request counters, one per fault.
    pub fault_counters: Vec<u64>,
    /// The rate-limit bucket, once used.
    pub bucket: Option<Bucket>,
}

impl KeyState {
    fn new(epoch: Millis) -> KeyState {
        KeyState { epoch, runs: HashMap::new(), runs_heap: 0, fault_counters: Vec::new(), bucket: None }
    }

    /// Runs `f` on this key's progress through run `id`, started by `start`
    /// the first time.
    pub fn with_progress<R>(
        &mut self,
        id: &str,
        start: impl FnOnce() -> Progress,
        f: impl FnOnce(&mut Progress) -> R,
    ) -> R {
        fn measured<R>(progress: &mut Progress, heap: &mut usize, f: impl FnOnce(&mut Progress) -> R) -> R {
            let before = progress.heap_bytes();
            let r = f(progress);
            *heap = (*heap + progress.heap_bytes()).saturating_sub(before);
            r
        }
        if let Some(progress) = self.runs.get_mut(id) {
            return measured(progress, &mut self.runs_heap, f);
        }
        // The id is copied only the first time.
        let mut progress = start();
        self.runs_heap += id.len() + progress.heap_bytes();
        let r = measured(&mut progress, &mut self.runs_heap, f);
        self.runs.insert(id.into(), progress);
        r
    }

    /// This key's progress through run `id`, if it has retrieved it.
    pub fn progress(&self, id: &str) -> Option<&Progress> {
        self.runs.get(id)
    }

    /// The ids of the scripted runs this key has retrieved.
    pub fn run_ids(&self) -> impl Iterator<Item = &str> {
        self.runs.keys().map(|id| &**id)
    }

    /// The bytes this state takes, estimated from its sizes and capacities.
    pub fn bytes(&self) -> usize {
        size_of::<KeyState>()
            + self.runs.capacity() * (size_of::<(Box<str>, Progress)>() + 1)
            + self.runs_heap
            + self.fault_counters.capacity() * size_of::<u64>()
    }
}

/// What a key costs besides its state, counted high: two slots of the map
/// (whose capacity is up to twice its length) and four entries of the
/// recency log (up to two per key between compactions, in a buffer up to
/// twice as large).
const KEY_OVERHEAD: usize = 2 * (size_of::<(KeyId, Entry)>() + 1) + 4 * size_of::<(KeyId, u64)>();

#[derive(Debug)]
struct Entry {
    state: KeyState,
    /// The tick of the key's last use: its newest entry in the log.
    used: u64,
    /// What the key was accounted at.
    bytes: usize,
}

/// One shard: its keys, and the order they were used in.
#[derive(Debug, Default)]
struct Shard {
    map: HashMap<KeyId, Entry>,
    /// `(key, tick)` per use, oldest first; an entry whose tick is not the
    /// key's `used` is stale and skipped.
    log: VecDeque<(KeyId, u64)>,
    tick: u64,
    /// The sum of the keys' accounted bytes.
    bytes: usize,
}

impl Shard {
    fn touch(&mut self, id: KeyId) {
        self.tick += 1;
        if let Some(entry) = self.map.get_mut(&id) {
            entry.used = self.tick;
        }
        self.log.push_back((id, self.tick));
        // Drop stale entries once they are the majority: amortised O(1).
        if self.log.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.log.retain(|(id, tick)| map.get(id).is_some_and(|e| e.used == *tick));
        }
    }

    /// Forgets least recently used keys, never `keep`, until the shard fits `budget`.
    fn evict(&mut self, budget: usize, keep: KeyId) {
        while self.bytes > budget {
            let Some((id, tick)) = self.log.pop_front() else { return };
            let live = self.map.get(&id).is_some_and(|e| e.used == tick);
            if !live {
                continue;
            }
            if id == keep {
                // Every other key is gone: the key in use stays, whatever its size.
                self.log.push_front((id, tick));
                return;
            }
            if let Some(entry) = self.map.remove(&id) {
                self.bytes -= entry.bytes;
            }
        }
    }

    fn remove(&mut self, id: &KeyId) {
        if let Some(entry) = self.map.remove(id) {
            self.bytes -= entry.bytes;
        }
    }
}

const SHARDS: usize = 32;

/// All keys' state.
#[derive(Debug)]
pub struct Keys {
    shards: Vec<Mutex<Shard>>,
    /// Each shard's share of the budget.
    shard_budget: usize,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::new(DEFAULT_KEY_STATE_BYTES)
    }
}

impl Keys {
    /// Keys whose state takes at most about `budget` bytes (see [`Keys::bytes`]).
    pub fn new(budget: usize) -> Keys {
        Keys::with_shards(budget, SHARDS)
    }

    /// As [`Keys::new`], over `shards` shards (at least one), each with an
    /// equal share of `budget`. With one shard the eviction order is exactly
    /// least recently used.
    pub fn with_shards(budget: usize, shards: usize) -> Keys {
        let shards = shards.max(1);
        Keys { shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(), shard_budget: budget / shards }
    }

    fn shard(&self, id: &KeyId) -> &Mutex<Shard> {
        &self.shards[id.shard() % self.shards.len()]
    }

    /// Runs `f` on `key`'s state, creating it (with its epoch at `now`) if
    /// new, then forgets the shard's least recently used keys while it is
    /// over its budget. The key used is never forgotten by its own request.
    pub fn with<R>(&self, key: &str, now: Millis, f: impl FnOnce(&mut KeyState) -> R) -> R {
        let id = KeyId::of(key);
        let mut shard = self.shard(&id).lock().unwrap_or_else(|p| p.into_inner());
        let shard = &mut *shard;
        let entry = shard.map.entry(id).or_insert_with(|| Entry { state: KeyState::new(now), used: 0, bytes: 0 });
        let r = f(&mut entry.state);
        let bytes = KEY_OVERHEAD + entry.state.bytes();
        shard.bytes = shard.bytes + bytes - entry.bytes;
        entry.bytes = bytes;
        shard.touch(id);
        shard.evict(self.shard_budget, id);
        r
    }

    /// Forgets one key's state, or every key's (releasing the memory).
    pub fn reset(&self, key: Option<&str>) {
        match key {
            Some(key) => {
                let id = KeyId::of(key);
                self.shard(&id).lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            }
            None => {
                for shard in &self.shards {
                    *shard.lock().unwrap_or_else(|p| p.into_inner()) = Shard::default();
                }
            }
        }
    }

    /// Runs `f` on the state of the key `id` if it has any, without creating it or
    /// counting it as used (for the dashboard).
    pub fn peek<R>(&self, id: &KeyId, f: impl FnOnce(&KeyState) -> R) -> Option<R> {
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        shard.map.get(id).map(|entry| f(&entry.state))
    }

    /// Forgets the state of the key `id`.
    pub fn reset_id(&self, id: &KeyId) {
        self.shard(id).lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// True when `key` has state.
    pub fn contains(&self, key: &str) -> bool {
        let id = KeyId::of(key);
        self.shard(&id).lock().unwrap_or_else(|p| p.into_inner()).map.contains_key(&id)
    }

    /// How many keys have state.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len()).sum()
    }

    /// True when no key has state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes all keys' state is accounted at: at most the budget, plus,
    /// per shard, the part of one key in use that does not fit.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes).sum()
    }

    /// The budget [`Keys::bytes`] is held to.
    pub fn budget(&self) -> usize {
        self.shard_budget * self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_independent_and_reset_alone() {
        let keys = Keys::default();
        keys.with("a", Millis(1), |s| s.fault_counters.push(1));
        keys.with("b", Millis(2), |s| s.fault_counters.push(2));
        assert_eq!(keys.with("a", Millis(9), |s| (s.epoch, s.fault_counters.clone())), (Millis(1), vec![1]));
        keys.reset(Some("a"));
        assert_eq!(keys.with("a", Millis(9), |s| (s.epoch, s.fault_counters.len())), (Millis(9), 0));
        assert_eq!(keys.with("b", Millis(9), |s| s.fault_counters.len()), 1);
        keys.reset(None);
        assert_eq!(keys.with("b", Millis(10), |s| s.epoch), Millis(10));
    }

    #[test]
    fn long_keys_are_stored_by_digest_and_stay_distinct() {
        let long_a = format!("tr_dev_{}", "a".repeat(100_000));
        let long_b = format!("tr_dev_{}b", "a".repeat(99_999));
        assert_ne!(KeyId::of(&long_a), KeyId::of(&long_b));
        assert_ne!(KeyId::of("tr_dev_a"), KeyId::of("tr_dev_a\0"));
        let keys = Keys::default();
        keys.with(&long_a, Millis(1), |_| ());
        keys.with(&long_b, Millis(2), |_| ());
        assert_eq!(keys.with(&long_a, Millis(9), |s| s.epoch), Millis(1));
        assert_eq!(keys.with(&long_b, Millis(9), |s| s.epoch), Millis(2));
        assert!(keys.bytes() < 4096, "{} bytes for two 100 KB keys", keys.bytes());
    }

    #[test]
    fn the_least_recently_used_key_goes_first() {
        let one = KEY_OVERHEAD + KeyState::new(Millis(0)).bytes();
        let keys = Keys::with_shards(3 * one, 1);
        for k in ["a", "b", "c"] {
            keys.with(k, Millis(0), |_| ());
        }
        keys.with("a", Millis(0), |_| ());
        keys.with("d", Millis(0), |_| ());
        assert!(!keys.contains("b") && keys.contains("a") && keys.contains("c") && keys.contains("d"));
        assert_eq!(keys.bytes(), 3 * one);
        // The key in use stays even when it alone is over the budget.
        let tiny = Keys::with_shards(1, 1);
        tiny.with("a", Millis(0), |_| ());
        assert!(tiny.contains("a"));
        tiny.with("b", Millis(0), |_| ());
        assert!(tiny.contains("b") && !tiny.contains("a"));
    }
}
