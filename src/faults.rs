//! Faults: which one fires for a request is a pure decision; the caller
//! applies it (sleeps, resets the connection, rewrites the body).

use crate::generate::stable_hash;
use crate::scenario::format::RouteName;
use serde_json::Value;
use std::collections::BTreeMap;

/// A compiled fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What the journal records when it fires, e.g. `flaky.json faults[0]: reset`.
    pub label: String,
    pub run_id: Option<Glob>,
    pub route: RouteName,
    pub after: u64,
    pub times: Option<u64>,
    pub probability: f64,
    pub delay_ms: u64,
    pub action: Option<Action>,
}

/// What a fault answers instead of the normal response.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Status { status: u16, body: bytes::Bytes, json: bool, headers: BTreeMap<String, String> },
    NotFound { should_retry: bool },
    RateLimit { limit: u32, remaining: i64, reset_ms: u64 },
    ServerError { status: u16 },
    Reset,
    CloseMidBody,
    Truncate,
    Malformed,
    BreakSchema,
    Dribble { chunk_bytes: usize, interval_ms: u64 },
}

impl Action {
    /// A short name for the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Status { .. } => "status",
            Action::NotFound { .. } => "notFound",
            Action::RateLimit { .. } => "rateLimit",
            Action::ServerError { .. } => "serverError",
            Action::Reset => "reset",
            Action::CloseMidBody => "closeMidBody",
            Action::Truncate => "truncate",
            Action::Malformed => "malformed",
            Action::BreakSchema => "breakSchema",
            Action::Dribble { .. } => "dribble",
        }
    }
}

/// A glob over run ids: `*` matches any run of characters, `?` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(pub String);

impl Glob {
    /// True when `text` matches: the classic greedy match with one backtrack
    /// point, at most pattern × text steps, so no id can make it explode.
    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (self.0.as_bytes(), text.as_bytes());
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    // Let the last `*` swallow one more character and retry.
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

/// The fault that fires, with its index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision<'a> {
    pub index: usize,
    pub fault: &'a Fault,
}

/// SplitMix64's step: every input bit reaches every output bit.
fn splitmix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from (seed, key, fault, count): repeatable, and
/// independent from one count to the next. Each part goes through a full
/// SplitMix64 round, so neighbouring counts share no high bits (hashing their
/// decimal text with FNV-1a did: the last digit never reached the top bits).
fn draw(seed: u64, key_hash: u64, index: usize, count: u64) -> f64 {
    let h = [key_hash, index as u64, count].into_iter().fold(splitmix(seed), |h, part| splitmix(h ^ part));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Fault {
    /// True when a request on `route` for `run_id` counts towards this fault.
    pub fn applies(&self, route: RouteName, run_id: Option<&str>) -> bool {
        let route_ok = self.route == RouteName::Any || self.route == route;
        route_ok
            && match (&self.run_id, run_id) {
                (None, _) => true,
                (Some(glob), Some(id)) => glob.matches(id),
                (Some(_), None) => false,
            }
    }
}

/// True when some fault counts a request on `route` for `run_id`: when none
/// does, [`decide`] changes no counter and fires nothing, so a caller may
/// skip the key's state altogether.
pub fn any_applies(faults: &[Fault], route: RouteName, run_id: Option<&str>) -> bool {
    faults.iter().any(|f| f.applies(route, run_id))
}

/// Decides which fault fires for a request on `route` for `run_id`, counting
/// the request in `counters` (one per fault, per key) for every fault it
/// matches. The first fault that fires wins.
pub fn decide<'a>(
    faults: &'a [Fault],
    counters: &mut Vec<u64>,
    route: RouteName,
    run_id: Option<&str>,
    seed: u64,
    key: &str,
) -> Option<Decision<'a>> {
    counters.resize(faults.len(), 0);
    let mut key_hash = None;
    let mut fired = None;
    for (index, fault) in faults.iter().enumerate() {
        if !fault.applies(route, run_id) {
            continue;
        }
        counters[index] += 1;
        let n = counters[index];
        let in_window = n > fault.after && fault.times.is_none_or(|t| n <= fault.after + t);
        if fired.is_none() && in_window {
            let fires = fault.probability >= 1.0 || {
                let key_hash = *key_hash.get_or_insert_with(|| stable_hash(key.as_bytes()));
                draw(seed, key_hash, index, n) < fault.probability
            };
            if fires {
                fired = Some(Decision { index, fault });
            }
        }
    }
    fired
}

/// The body a fault of type `status` sends: JSON as given, or raw text.
pub fn status_body(body: Option<&Value>, text: Option<&str>) -> (bytes::Bytes, bool) {
    match (body, text) {
        (_, Some(t)) => (bytes::Bytes::from(t.to_owned()), false),
        (Some(v), None) => (bytes::Bytes::from(v.to_string()), true),
        (None, None) => (bytes::Bytes::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(after: u64, times: Option<u64>, probability: f64) -> Fault {
        Fault {
            label: "t".into(),
            run_id: Some(Glob("run_flaky*".into())),
            route: RouteName::Retrieve,
            after,
            times,
            probability,
            delay_ms: 0,
            action: Some(Action::Reset),
        }
    }

    fn fires(faults: &[Fault], counters: &mut Vec<u64>, id: &str) -> bool {
        decide(faults, counters, RouteName::Retrieve, Some(id), 0, "k").is_some()
    }

    #[test]
    fn globs() {
        let g = Glob("run_*_x?".into());
        assert!(g.matches("run_a_x1") && g.matches("run__x9"));
        assert!(!g.matches("run_a_x") && !g.matches("run_a_x12") && !g.matches("batch_a_x1"));
        assert!(Glob("*".into()).matches(""));
        assert!(Glob("run_*".into()).matches("run_"));
        assert!(Glob("*x".into()).matches("aax") && !Glob("*x".into()).matches("axa"));
        assert!(Glob("a*b*c".into()).matches("aXbYbZc") && !Glob("a*b*c".into()).matches("aXbYbZ"));
        assert!(Glob("??".into()).matches("ab") && !Glob("??".into()).matches("a"));
    }

    #[test]
    fn globs_stay_fast_on_long_ids() {
        let glob = Glob("*a*a*a*a*a*a*a*a*b".into());
        let id = "a".repeat(60_000);
        let started = std::time::Instant::now();
        assert!(!glob.matches(&id));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn windows_count_matching_requests_only() {
        let faults = [fault(1, Some(2), 1.0)];
        let mut c = Vec::new();
        let pattern: Vec<bool> = (0..5).map(|_| fires(&faults, &mut c, "run_flaky_1")).collect();
        assert_eq!(pattern, [false, true, true, false, false]);
        assert!(!fires(&faults, &mut c, "run_other"));
        assert_eq!(c, [5]);
    }

    #[test]
    fn the_first_fault_wins_but_all_count() {
        let faults = [fault(0, Some(1), 1.0), fault(0, None, 1.0)];
        let mut c = Vec::new();
        assert_eq!(decide(&faults, &mut c, RouteName::Retrieve, Some("run_flaky"), 0, "k").map(|d| d.index), Some(0));
        assert_eq!(decide(&faults, &mut c, RouteName::Retrieve, Some("run_flaky"), 0, "k").map(|d| d.index), Some(1));
        assert_eq!(c, [2, 2]);
    }

    /// How many runs of identical outcomes `outcomes` has, and the longest.
    fn runs(outcomes: &[bool]) -> (usize, usize) {
        let mut count = 0;
        let mut longest = 0;
        let mut current = 0;
        for (i, o) in outcomes.iter().enumerate() {
            if i == 0 || outcomes[i - 1] != *o {
                count += 1;
                current = 0;
            }
            current += 1;
            longest = longest.max(current);
        }
        (count, longest)
    }

    #[test]
    fn each_request_draws_anew() {
        let faults = [fault(0, None, 0.5)];
        let outcomes = |seed, key| {
            let mut c = Vec::new();
            (0..1000)
                .map(|_| decide(&faults, &mut c, RouteName::Retrieve, Some("run_flaky"), seed, key).is_some())
                .collect::<Vec<_>>()
        };
        for key in ["k", "tr_dev_a", "tr_dev_b", "tr_prod_0123456789"] {
            let a = outcomes(42, key);
            let fired = a.iter().filter(|b| **b).count();
            assert!((400..=600).contains(&fired), "{key}: {fired} of 1000");
            // A fair coin gives about 500 runs of mean length 2 in 1000 flips,
            // and a run of 20 about once in a thousand sequences.
            let (count, longest) = runs(&a);
            assert!((400..=600).contains(&count), "{key}: {count} runs");
            assert!(longest <= 20, "{key}: a run of {longest}");
            assert!(a[..9].contains(&true) && a[..9].contains(&false), "{key}: the first nine vary: {:?}", &a[..9]);
            assert_eq!(a, outcomes(42, key), "{key}: repeatable");
        }
        assert_ne!(outcomes(42, "tr_dev_a"), outcomes(42, "tr_dev_b"), "keys draw apart");
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let faults = [fault(0, None, 0.25)];
        let run = |seed| {
            let mut c = Vec::new();
            (0..4000)
                .map(|_| decide(&faults, &mut c, RouteName::Retrieve, Some("run_flaky"), seed, "k").is_some())
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        let rate = a.iter().filter(|b| **b).count() as f64 / 4000.0;
        assert!((0.2..0.3).contains(&rate), "{rate}");
    }
}
