//! A token bucket per API key with the real server's defaults (750 tokens,
//! 250 more every 10 s), and the fixed window per public access token (60 a
//! minute), on the mock clock. Pure arithmetic; the caller keeps a bucket
//! under its key's lock, and [`Windows`] keeps the tokens' windows.

use crate::time::Millis;
use std::collections::HashMap;
use std::sync::Mutex;

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub refill: u32,
    pub interval_ms: i64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit { limit: 750, refill: 250, interval_ms: 10_000 }
    }
}

/// One key's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    tokens: i64,
    /// The start of the current refill interval.
    since: Millis,
}

/// The outcome of taking a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    /// Tokens left (may be negative on the 429 body, as on the server).
    pub remaining: i64,
    /// When the next refill happens, on the mock clock.
    pub reset: Millis,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rl: &RateLimit, now: Millis) -> Bucket {
        Bucket { tokens: i64::from(rl.limit), since: now }
    }

    /// Refills for the intervals passed, then takes one token if there is one.
    pub fn take(&mut self, rl: &RateLimit, now: Millis) -> Verdict {
        let interval = rl.interval_ms.max(1);
        if now >= self.since {
            let intervals = now.0.saturating_sub(self.since.0) / interval;
            if intervals > 0 {
                let added = intervals.saturating_mul(i64::from(rl.refill));
                self.tokens = self.tokens.saturating_add(added).min(i64::from(rl.limit));
                self.since = self.since.plus(intervals.saturating_mul(interval));
            }
        } else {
            // The clock moved back: start the interval again.
            self.since = now;
        }
        let allowed = self.tokens > 0;
        self.tokens -= 1;
        let remaining = self.tokens;
        if !allowed {
            self.tokens = 0;
        }
        Verdict { allowed, limit: rl.limit, remaining, reset: self.since.plus(interval) }
    }
}

/// The server's limit for public access tokens: a fixed window per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    pub tokens: u32,
    pub window_ms: i64,
}

/// The server's defaults: 60 requests a minute.
pub const JWT_WINDOW: FixedWindow = FixedWindow { tokens: 60, window_ms: 60_000 };

/// One token's use of its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Used {
    window: i64,
    count: u32,
}

const WINDOW_SHARDS: usize = 16;
/// Tokens tracked per shard; past it, finished windows are dropped, then all.
const WINDOWS_PER_SHARD: usize = 4096;

/// The windows of every public access token, by a hash of the token.
#[derive(Debug)]
pub struct Windows {
    shards: Vec<Mutex<HashMap<u64, Used>>>,
}

impl Default for Windows {
    fn default() -> Windows {
        Windows { shards: (0..WINDOW_SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl Windows {
    /// Counts one request of the token `fingerprint` at `now`. Windows start
    /// on multiples of their length, as the server's limiter aligns them.
    pub fn take(&self, limit: FixedWindow, fingerprint: u64, now: Millis) -> Verdict {
        let length = limit.window_ms.max(1);
        let window = now.0.div_euclid(length);
        let mut shard =
            self.shards[(fingerprint % WINDOW_SHARDS as u64) as usize].lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= WINDOWS_PER_SHARD && !shard.contains_key(&fingerprint) {
            shard.retain(|_, used| used.window == window);
            if shard.len() >= WINDOWS_PER_SHARD {
                shard.clear();
            }
        }
        let used = shard.entry(fingerprint).or_insert(Used { window, count: 0 });
        if used.window != window {
            *used = Used { window, count: 0 };
        }
        used.count = used.count.saturating_add(1);
        let count = used.count;
        drop(shard);
        Verdict {
            allowed: count <= limit.tokens,
            limit: limit.tokens,
            remaining: i64::from(limit.tokens.saturating_sub(count)),
            reset: Millis(window.saturating_add(1).saturating_mul(length)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_windows_allow_sixty_a_minute_each() {
        let windows = Windows::default();
        let start = Millis(1_767_225_600_000);
        let verdicts: Vec<Verdict> = (0..61).map(|_| windows.take(JWT_WINDOW, 7, start)).collect();
        assert!(verdicts[..60].iter().all(|v| v.allowed));
        assert_eq!(verdicts[0].remaining, 59);
        assert_eq!(verdicts[59].remaining, 0);
        assert!(!verdicts[60].allowed);
        assert_eq!(verdicts[60].remaining, 0, "never negative for a window");
        assert_eq!(verdicts[60].reset, start.plus(60_000));
        assert!(windows.take(JWT_WINDOW, 8, start).allowed, "another token has its own window");
        assert!(windows.take(JWT_WINDOW, 7, start.plus(60_000)).allowed, "the next window starts afresh");
    }

    #[test]
    fn many_tokens_stay_bounded() {
        let windows = Windows::default();
        for fp in 0..(WINDOW_SHARDS * WINDOWS_PER_SHARD * 2) as u64 {
            windows.take(JWT_WINDOW, fp, Millis(0));
        }
        let held: usize = windows.shards.iter().map(|s| s.lock().map(|s| s.len()).unwrap_or(0)).sum();
        assert!(held <= WINDOW_SHARDS * WINDOWS_PER_SHARD, "{held}");
    }

    #[test]
    fn drains_then_refills_per_interval() {
        let rl = RateLimit { limit: 3, refill: 2, interval_ms: 1000 };
        let t = Millis(0);
        let mut b = Bucket::new(&rl, t);
        let taken: Vec<bool> = (0..4).map(|_| b.take(&rl, t).allowed).collect();
        assert_eq!(taken, [true, true, true, false]);
        let v = b.take(&rl, Millis(999));
        assert!(!v.allowed);
        assert_eq!(v.reset, Millis(1000));
        assert!(b.take(&rl, Millis(1000)).allowed);
        assert!(b.take(&rl, Millis(1000)).allowed);
        assert!(!b.take(&rl, Millis(1000)).allowed);
        let v = b.take(&rl, Millis(60_000));
        assert!(v.allowed);
        assert_eq!(v.remaining, 2, "refills up to the limit only");
    }

    #[test]
    fn remaining_counts_down() {
        let rl = RateLimit::default();
        let mut b = Bucket::new(&rl, Millis(0));
        assert_eq!(b.take(&rl, Millis(0)).remaining, 749);
        assert_eq!(b.take(&rl, Millis(0)).remaining, 748);
    }
}
