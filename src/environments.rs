//! Environments: each secret key is one environment, with an id derived from
//! the key alone (the same key gives the same id in every process), and the
//! registry that takes a token's `sub` back to the key that verifies it.
//!
//! An environment is known once its key has been given with `--secret-key`,
//! has asked for its claims, has minted a token through the server, or has
//! been handed a token on a response. The registry holds at most
//! [`MAX_KEY_BYTES`] bytes of keys; past that, a shard is emptied and its
//! environments must ask again.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 16;
/// The most key bytes the registry holds (a flood of distinct keys cannot
/// grow it further).
pub const MAX_KEY_BYTES: usize = 8 * 1024 * 1024;
const SHARD_BUDGET: usize = MAX_KEY_BYTES / SHARDS;

/// The id of the environment of `key`: `env_` and 24 lowercase letters and
/// digits from a SHA-256 of the key.
pub fn environment_id(key: &str) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::new().chain_update(b"trigger-mock environment\0").chain_update(key.as_bytes()).finalize();
    let mut id = String::with_capacity(28);
    id.push_str("env_");
    for byte in digest.iter().take(24) {
        id.push(char::from(DIGITS[usize::from(*byte) % 36]));
    }
    id
}

#[derive(Debug, Default)]
struct Shard {
    keys: HashMap<Arc<str>, Arc<str>>,
    bytes: usize,
}

/// Environment id → secret key, for every known environment.
#[derive(Debug)]
pub struct Environments {
    shards: Vec<RwLock<Shard>>,
    /// Per shard, how many times it was emptied (changed under its write
    /// lock): a thread that registered a key in this generation knows it is
    /// still there without taking the lock.
    generations: Box<[AtomicU64]>,
    /// Tells this registry from others in the process (tests run several).
    instance: u64,
}

impl Default for Environments {
    fn default() -> Environments {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        Environments {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            generations: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// What a thread remembers of the last key it registered.
#[derive(Debug, Clone)]
struct Registered {
    id: Arc<str>,
    /// The key's shard.
    shard: usize,
    /// The registry and the generation of the key's shard it was known in,
    /// or `None` when it could not be kept.
    known_in: Option<(u64, u64)>,
}

impl Environments {
    fn index(id: &str) -> usize {
        (crate::generate::stable_hash(id.as_bytes()) % SHARDS as u64) as usize
    }

    fn shard(&self, id: &str) -> &RwLock<Shard> {
        &self.shards[Environments::index(id)]
    }

    /// Makes the environment of `key` known; returns its id. Every trigger
    /// does: a thread that registered the same key last, in the shard's
    /// current generation, takes no lock at all (a shared lock would still
    /// move its cache line between the workers on every trigger).
    pub fn register(&self, key: &str) -> Arc<str> {
        thread_local! {
            static LAST: crate::memo::Last<Registered> = const { crate::memo::Last::new() };
        }
        let last = LAST.with(|last| last.get(key.as_bytes()));
        if let Some(Registered { id, shard, known_in: Some(known_in) }) = &last
            && *known_in == (self.instance, self.generations[*shard].load(Ordering::Acquire))
        {
            return id.clone();
        }
        let (id, shard) = last.map_or_else(
            || {
                let id: Arc<str> = environment_id(key).into();
                let shard = Environments::index(&id);
                (id, shard)
            },
            |r| (r.id, r.shard),
        );
        let known_in = self.insert(key, &id, shard).map(|g| (self.instance, g));
        LAST.with(|last| last.put(key.as_bytes(), Registered { id: id.clone(), shard, known_in }));
        id
    }

    /// Keeps `key` under `id` in shard `index`; returns the shard's
    /// generation when it is kept.
    fn insert(&self, key: &str, id: &Arc<str>, index: usize) -> Option<u64> {
        let (shard, generation) = (&self.shards[index], &self.generations[index]);
        let known = |shard: &Shard| shard.keys.get(id).is_some_and(|k| **k == *key);
        {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            if known(&shard) {
                return Some(generation.load(Ordering::Acquire));
            }
        }
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        if known(&shard) {
            return Some(generation.load(Ordering::Acquire));
        }
        let cost = key.len() + id.len();
        if shard.bytes + cost > SHARD_BUDGET {
            shard.keys.clear();
            shard.bytes = 0;
            generation.fetch_add(1, Ordering::AcqRel);
        }
        if cost > SHARD_BUDGET {
            return None;
        }
        shard.bytes += cost;
        shard.keys.insert(id.clone(), key.into());
        Some(generation.load(Ordering::Acquire))
    }

    /// The secret key of environment `id`, if it is known.
    pub fn key_of(&self, id: &str) -> Option<Arc<str>> {
        self.shard(id).read().unwrap_or_else(|p| p.into_inner()).keys.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_well_formed() {
        let a = environment_id("tr_dev_a");
        assert_eq!(a, environment_id("tr_dev_a"));
        assert_ne!(a, environment_id("tr_dev_b"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("env_") && a[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        // Pinned: the id must not change between releases (tests may snapshot it).
        assert_eq!(environment_id("tr_dev_tests_0123456789"), "env_gwtex91w04oiqsaq79ve52e2");
    }

    #[test]
    fn registered_environments_map_back_to_their_key() {
        let envs = Environments::default();
        assert_eq!(envs.key_of(&environment_id("tr_dev_a")), None);
        let id = envs.register("tr_dev_a");
        assert_eq!(envs.key_of(&id).as_deref(), Some("tr_dev_a"));
        assert_eq!(envs.register("tr_dev_a"), id);
        assert_eq!(envs.key_of("env_unknown"), None);
    }

    #[test]
    fn a_key_registered_again_after_its_shard_was_emptied_is_known_again() {
        let envs = Environments::default();
        let id = envs.register("tr_dev_kept");
        // Fill the key's shard past its budget from another thread: it is emptied.
        let long = "x".repeat(SHARD_BUDGET / 4);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut i = 0;
                while envs.key_of(&id).is_some() {
                    let other = format!("tr_dev_{i}{long}");
                    if Environments::index(&environment_id(&other)) == Environments::index(&id) {
                        envs.register(&other);
                    }
                    i += 1;
                }
            });
        });
        assert_eq!(envs.key_of(&id), None);
        // This thread registered the key last, but in an older generation.
        assert_eq!(envs.register("tr_dev_kept"), id);
        assert_eq!(envs.key_of(&id).as_deref(), Some("tr_dev_kept"));
        // And in another registry, the key is not taken as known either.
        let other = Environments::default();
        assert_eq!(other.register("tr_dev_kept"), id);
        assert_eq!(other.key_of(&id).as_deref(), Some("tr_dev_kept"));
    }

    #[test]
    fn a_flood_of_keys_stays_within_the_budget() {
        let envs = Environments::default();
        let long = "x".repeat(64 * 1024);
        for i in 0..400 {
            envs.register(&format!("tr_dev_{i}{long}"));
        }
        let held: usize = envs.shards.iter().map(|s| s.read().map(|s| s.bytes).unwrap_or(0)).sum();
        assert!(held <= MAX_KEY_BYTES, "{held}");
        let id = envs.register("tr_dev_after");
        assert_eq!(envs.key_of(&id).as_deref(), Some("tr_dev_after"), "a new key still registers");
    }
}
