//! The mock's notion of "now": injectable, freezable and movable at run time
//! through the admin API, so a test can jump ten minutes ahead in a
//! millisecond.

use crate::time::Millis;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 0001-01-01T00:00:00.000Z: the clock never goes before it. A year inside
/// what RFC 3339 can write ([`crate::time::FIRST`]), because runs are dated
/// back from "now" (created hours before, their worker version weeks before).
pub const EARLIEST: Millis = Millis(-62_135_596_800_000);
/// 9998-12-31T23:59:59.999Z: the clock never goes past it. A year inside what
/// RFC 3339 can write ([`crate::time::LAST`]), because some dates lie ahead of
/// "now" (a delayed run's `delayedUntil`, hours later).
pub const LATEST: Millis = Millis(253_370_764_799_999);

/// Why an instant is refused as "now": the same words for `--clock` and the
/// admin API.
pub const OUT_OF_RANGE: &str = "the clock stays within 0001-01-01T00:00:00.000Z and 9998-12-31T23:59:59.999Z, \
a year inside what RFC 3339 can write, so that dates derived from now can be written too";

/// Where "now" comes from. Lock-free: reads are two atomic loads.
#[derive(Debug)]
pub struct Clock {
    frozen: AtomicBool,
    /// The frozen instant, or the offset added to the wall clock.
    base: AtomicI64,
}

/// The wall clock, in milliseconds since the epoch.
pub fn wall_now() -> Millis {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Millis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

impl Clock {
    /// The machine's wall clock.
    pub fn system() -> Clock {
        Clock { frozen: AtomicBool::new(false), base: AtomicI64::new(0) }
    }

    /// A clock stopped at `at` (`--clock RFC3339`).
    pub fn frozen(at: Millis) -> Clock {
        Clock { frozen: AtomicBool::new(true), base: AtomicI64::new(at.0) }
    }

    /// True when the clock does not move by itself.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// The current instant on this clock, within [`EARLIEST`] and [`LATEST`].
    pub fn now(&self) -> Millis {
        if self.is_frozen() { self.at_wall(Millis(0)) } else { self.at_wall(wall_now()) }
    }

    /// "Now" when the wall clock reads `wall` (ignored by a frozen clock): a
    /// caller that needs both readings reads the system clock once.
    pub fn at_wall(&self, wall: Millis) -> Millis {
        let base = self.base.load(Ordering::Acquire);
        let now = if self.is_frozen() { Millis(base) } else { wall.plus(base) };
        now.clamp(EARLIEST, LATEST)
    }

    /// Moves "now" to `at`. A frozen clock stays frozen there; a running one
    /// keeps running from there. Returns false, and changes nothing, for an
    /// instant outside [`EARLIEST`] and [`LATEST`].
    pub fn set(&self, at: Millis) -> bool {
        if !(EARLIEST..=LATEST).contains(&at) {
            return false;
        }
        if self.is_frozen() {
            self.base.store(at.0, Ordering::Release);
        } else {
            self.base.store(at.0.saturating_sub(wall_now().0), Ordering::Release);
        }
        true
    }

    /// Moves "now" by `ms` (negative moves it back). Returns false, and
    /// changes nothing, when that would leave [`EARLIEST`] and [`LATEST`].
    pub fn advance(&self, ms: i64) -> bool {
        self.set(self.now().plus(ms))
    }

    /// Freezes the clock at its current instant, or lets it run from there.
    pub fn freeze(&self, frozen: bool) {
        let now = self.now();
        self.frozen.store(frozen, Ordering::Release);
        self.set(now);
    }
}

impl Clone for Clock {
    fn clone(&self) -> Clock {
        Clock { frozen: AtomicBool::new(self.is_frozen()), base: AtomicI64::new(self.base.load(Ordering::Acquire)) }
    }
}

impl PartialEq for Clock {
    fn eq(&self, other: &Clock) -> bool {
        self.is_frozen() == other.is_frozen() && self.base.load(Ordering::Acquire) == other.base.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let clock = Clock::frozen(Millis(42));
        assert_eq!(clock.now(), Millis(42));
        clock.advance(600_000);
        assert_eq!(clock.now(), Millis(600_042));
        assert!(clock.set(Millis(7)));
        assert_eq!(clock.now(), Millis(7));
        assert!(!clock.advance(i64::MAX), "past the year 9998");
        assert!(!clock.set(Millis(i64::MIN)));
        assert_eq!(clock.now(), Millis(7), "a refused change changes nothing");
        assert_eq!(EARLIEST.to_string(), "0001-01-01T00:00:00.000Z");
        assert_eq!(LATEST.to_string(), "9998-12-31T23:59:59.999Z");
        assert!(OUT_OF_RANGE.contains(&EARLIEST.to_string()) && OUT_OF_RANGE.contains(&LATEST.to_string()));
        assert!(clock.set(EARLIEST) && clock.set(LATEST));
        assert!(!clock.set(EARLIEST.plus(-1)) && !clock.set(LATEST.plus(1)));
    }

    #[test]
    fn system_clock_runs_and_can_be_moved() {
        let clock = Clock::system();
        assert!(clock.now() > Millis(1_735_689_600_000));
        assert!(clock.set(Millis(1_000_000)));
        let now = clock.now();
        assert!(now >= Millis(1_000_000) && now < Millis(1_100_000), "{now:?}");
        clock.advance(3_600_000);
        assert!(clock.now() >= Millis(4_600_000));
        clock.freeze(true);
        let at = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), at);
    }
}
