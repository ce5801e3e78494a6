//! Per-API-key scenario state (lifecycle positions, fault counters, rate-limit
//! buckets), so parallel suites using different keys never interfere.
//!
//! Keys are spread over shards, each a `std::sync::Mutex`: a lock is held
//! only for the few arithmetic steps of one request, never across `.await`,
//! so cores do not queue on one lock.

use crate::generate::stable_hash;
use crate::lifecycle::Progress;
use crate::ratelimit::Bucket;
use crate::time::Millis;
use std::collections::HashMap;
use std::sync::Mutex;

/// One key's state.
#[derive(Debug)]
pub struct KeyState {
    /// When this key's timeline began: its first request, or its last reset.
    pub epoch: Millis,
    /// Lifecycle positions, by run id.
    pub runs: HashMap<String, Progress>,
    /// Matching-request counters, one per fault.
    pub fault_counters: Vec<u64>,
    /// The rate-limit bucket, once used.
    pub bucket: Option<Bucket>,
}

const SHARDS: usize = 32;

/// All keys' state.
#[derive(Debug)]
pub struct Keys {
    shards: Vec<Mutex<HashMap<String, KeyState>>>,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl Keys {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, KeyState>> {
        &self.shards[(stable_hash(key.as_bytes()) % SHARDS as u64) as usize]
    }

    /// Runs `f` on `key`'s state, creating it (with its epoch at `now`) if new.
    pub fn with<R>(&self, key: &str, now: Millis, f: impl FnOnce(&mut KeyState) -> R) -> R {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        // Look up before inserting: the key is copied only the first time.
        if !shard.contains_key(key) {
            let fresh = KeyState { epoch: now, runs: HashMap::new(), fault_counters: Vec::new(), bucket: None };
            shard.insert(key.to_owned(), fresh);
        }
        match shard.get_mut(key) {
            Some(state) => f(state),
            None => unreachable!("inserted above"),
        }
    }

    /// Forgets one key's state, or every key's.
    pub fn reset(&self, key: Option<&str>) {
        match key {
            Some(key) => {
                self.shard(key).lock().unwrap_or_else(|p| p.into_inner()).remove(key);
            }
            None => {
                for shard in &self.shards {
                    shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
            }
        }
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
}
