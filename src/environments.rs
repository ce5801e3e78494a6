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
use std::convert::Infallible;
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
}

impl Default for Environments {
    fn default() -> Environments {
        Environments { shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect() }
    }
}

impl Environments {
    fn shard(&self, id: &str) -> &RwLock<Shard> {
        &self.shards[(crate::generate::stable_hash(id.as_bytes()) % SHARDS as u64) as usize]
    }

    /// Makes the environment of `key` known; returns its id. Every trigger
    /// does, so a known key takes only a shared lock.
    pub fn register(&self, key: &str) -> Arc<str> {
        let id = memo_id(key);
        let shard = self.shard(&id);
        let known = |shard: &Shard| shard.keys.get(&id).is_some_and(|k| **k == *key);
        if known(&shard.read().unwrap_or_else(|p| p.into_inner())) {
            return id;
        }
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        if known(&shard) {
            return id;
        }
        let cost = key.len() + id.len();
        if shard.bytes + cost > SHARD_BUDGET {
            shard.keys.clear();
            shard.bytes = 0;
        }
        if cost <= SHARD_BUDGET {
            shard.bytes += cost;
            shard.keys.insert(id.clone(), key.into());
        }
        id
    }

    /// The secret key of environment `id`, if it is known.
    pub fn key_of(&self, id: &str) -> Option<Arc<str>> {
        self.shard(id).read().unwrap_or_else(|p| p.into_inner()).keys.get(id).cloned()
    }
}

/// [`environment_id`], remembered per thread for the last key asked.
fn memo_id(key: &str) -> Arc<str> {
    thread_local! {
        static LAST: crate::memo::Last<Arc<str>> = const { crate::memo::Last::new() };
    }
    let Ok(id) = LAST.with(|last| last.get_or(key.as_bytes(), || Ok::<_, Infallible>(environment_id(key).into())));
    id
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
