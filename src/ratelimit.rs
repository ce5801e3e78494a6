//! A token bucket per API key with the real server's defaults (750 tokens,
//! 250 more every 10 s), on the mock clock. Pure arithmetic; the caller keeps
//! the state under its key's lock.

use crate::time::Millis;

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

#[cfg(test)]
mod tests {
    use super::*;

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
