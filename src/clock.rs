//! The mock's notion of "now", injectable so that tests and `--clock` can
//! freeze it.

use crate::time::Millis;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The machine's wall clock.
    System,
    /// A fixed instant (`--clock RFC3339`).
    Frozen(Millis),
}

impl Clock {
    /// The current instant on this clock.
    pub fn now(&self) -> Millis {
        match self {
            Clock::Frozen(at) => *at,
            Clock::System => {
                let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                Millis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_never_moves() {
        let clock = Clock::Frozen(Millis(42));
        assert_eq!(clock.now(), Millis(42));
        assert_eq!(clock.now(), Millis(42));
    }

    #[test]
    fn system_clock_is_after_2025() {
        assert!(Clock::System.now() > Millis(1_735_689_600_000));
    }
}
