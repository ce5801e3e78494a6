//! The lifecycle engine: where a scripted run is at a given instant, and how
//! its fields follow. Pure: no I/O, no locks, time comes in as an argument.
//!
//! A lifecycle is a list of steps. Each step holds one engine status for a
//! number of retrieves or a duration on the mock clock; the last lasts
//! forever. A run with a TTL that is still queued when the TTL has passed
//! since it was enqueued becomes EXPIRED.

use crate::generate::Deploy;
use crate::model::{EngineStatus, Phase, Run, SerializedError};
use crate::time::Millis;
use serde_json::Value;

/// How long a step lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// This many retrieves see the step; the next one sees the following step.
    Retrieves(u32),
    /// This many milliseconds on the mock clock after the step was entered.
    Elapsed(i64),
    /// The last step.
    Forever,
}

/// One step of a lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub status: EngineStatus,
    pub until: Until,
}

/// A compiled, valid lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub steps: Vec<Step>,
    /// Time to live from enqueueing, in milliseconds.
    pub ttl_ms: Option<i64>,
    /// The output shown once the run completes successfully.
    pub output: Option<Value>,
    /// The error shown once the run fails.
    pub error: Option<SerializedError>,
    /// The deployment whose worker version a run that names none shows once
    /// it starts, dated from the run's `createdAt` as this caller sees it.
    pub deploy: Deploy,
    /// A fixed worker version shown instead (a scenario task's `version`).
    pub version: Option<String>,
}

impl Lifecycle {
    /// True when this is `other` with TTL `ttl_ms`.
    pub fn same_but_ttl(&self, other: &Lifecycle, ttl_ms: Option<i64>) -> bool {
        // Destructured: a field added later must be compared here too.
        let Lifecycle { steps, ttl_ms: _, output, error, deploy, version } = other;
        self.ttl_ms == ttl_ms
            && self.steps == *steps
            && self.output == *output
            && self.error == *error
            && self.deploy == *deploy
            && self.version == *version
    }
}

/// Why a lifecycle is impossible.
pub fn check_transition(from: EngineStatus, to: EngineStatus) -> Result<(), String> {
    use Phase::*;
    let ok = match (from.phase(), to.phase()) {
        _ if from.is_terminal() => false,
        (Delayed, Queued | Canceled | Expired) => true,
        (Queued, Queued | Started | Canceled | Expired) => true,
        (Queued, Failed) => to == EngineStatus::SystemFailure,
        (Started, Started | Succeeded | Failed | Canceled) => true,
        _ => false,
    };
    if from == to {
        return Err(format!("two steps in a row are {}; merge them", from.name()));
    }
    if ok {
        return Ok(());
    }
    if from.is_terminal() {
        Err(format!("{} is terminal: a run cannot leave it (for {})", from.name(), to.name()))
    } else {
        Err(format!("a run cannot go from {} to {}", from.name(), to.name()))
    }
}

/// What comes next for a run, as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next step begins at this instant on the mock clock.
    At(EngineStatus, Millis),
    /// The next step begins after this many more retrieves.
    AfterRetrieves(EngineStatus, u32),
}

/// One caller's history of a run and what comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Every status shown so far with the instant it began, oldest first.
    pub steps: Vec<(EngineStatus, Millis)>,
    /// The next step, unless the run stays where it is.
    pub next: Option<Next>,
    /// The statuses still to come after the current one, in order.
    pub upcoming: Vec<EngineStatus>,
    /// When the TTL expires the run, while it is queued.
    pub expires_at: Option<Millis>,
}

/// Where one caller's view of a scripted run stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The current step's index (u32: with the timestamps, a created run's
    /// progress stays at 80 bytes).
    step: u32,
    /// When the first step began, for this caller.
    began: Millis,
    entered_at: Millis,
    retrieves_in_step: u32,
    enqueued_at: Option<Millis>,
    expired_at: Option<Millis>,
    /// Every status change after the first step, with its instant.
    /// A boxed slice, grown one at a time: most runs hold one to three.
    transitions: Box<[(EngineStatus, Millis)]>,
    /// Added to the base run's timestamps for this caller.
    shift: i64,
}

fn is_compute(status: EngineStatus) -> bool {
    matches!(status, EngineStatus::Dequeued | EngineStatus::Executing | EngineStatus::RetryingAfterFailure)
}

/// Compute price per millisecond (small-1x), in cents.
const CENTS_PER_MS: f64 = 0.000_003_4;
/// Invocation price, in cents.
const BASE_CENTS: f64 = 0.0025;

impl Progress {
    /// The view of a caller whose timeline starts at `epoch`. `base` is the run
    /// as generated for the first step at `anchor`; a run that starts queued
    /// or delayed is created at `epoch`, any other keeps its history, moved so
    /// that `anchor` falls on `epoch`.
    pub fn start(base: &Run, lifecycle: &Lifecycle, anchor: Millis, epoch: Millis) -> Progress {
        Progress::begin(base.created_at, base.updated_at, lifecycle, anchor, epoch)
    }

    /// [`Progress::start`] of a run created at `created_at` and updated at
    /// `updated_at`: all it reads of the run.
    pub fn begin(
        created_at: Millis,
        updated_at: Millis,
        lifecycle: &Lifecycle,
        anchor: Millis,
        epoch: Millis,
    ) -> Progress {
        let first = lifecycle.steps[0].status;
        let queued_first = matches!(first.phase(), Phase::Queued | Phase::Delayed);
        let shift = if queued_first { epoch.0 - created_at.0 } else { epoch.0 - anchor.0 };
        let entered_at = if queued_first { epoch } else { updated_at.plus(shift) };
        Progress {
            step: 0,
            began: entered_at,
            entered_at,
            retrieves_in_step: 0,
            enqueued_at: (first.phase() == Phase::Queued).then_some(entered_at),
            expired_at: None,
            transitions: Box::default(),
            shift,
        }
    }

    /// The bytes this progress holds on the heap (its transitions).
    pub fn heap_bytes(&self) -> usize {
        self.transitions.len() * std::mem::size_of::<(EngineStatus, Millis)>()
    }

    /// The status now shown.
    pub fn status(&self, lifecycle: &Lifecycle) -> EngineStatus {
        if self.expired_at.is_some() { EngineStatus::Expired } else { lifecycle.steps[self.at()].status }
    }

    fn enter_next(&mut self, lifecycle: &Lifecycle, at: Millis) {
        if self.at() + 1 >= lifecycle.steps.len() {
            return;
        }
        self.step += 1;
        self.entered_at = at;
        self.retrieves_in_step = 0;
        let status = lifecycle.steps[self.at()].status;
        if status.phase() == Phase::Queued && self.enqueued_at.is_none() {
            self.enqueued_at = Some(at);
        }
        self.push_transition(status, at);
    }

    /// Records a status change. Exactly as many as there are: thousands of
    /// runs each hold a few.
    fn push_transition(&mut self, status: EngineStatus, at: Millis) {
        let mut all = std::mem::take(&mut self.transitions).into_vec();
        all.reserve_exact(1);
        all.push((status, at));
        self.transitions = all.into_boxed_slice();
    }

    /// The current step's index.
    fn at(&self) -> usize {
        self.step as usize
    }

    /// Applies every time-driven change (step durations, TTL expiry) up to `now`.
    pub fn advance(&mut self, lifecycle: &Lifecycle, now: Millis) {
        loop {
            let Some((step_end, expiry)) = self.deadlines(lifecycle) else { return };
            match (step_end, expiry) {
                (_, Some(exp)) if exp <= now && step_end.is_none_or(|end| exp <= end) => {
                    self.expired_at = Some(exp);
                    self.push_transition(EngineStatus::Expired, exp);
                }
                (Some(end), _) if end <= now => self.enter_next(lifecycle, end),
                _ => return,
            }
        }
    }

    /// This caller's timeline at `now`, without changing the progress (the
    /// time-driven changes up to `now` are applied to a copy).
    pub fn timeline(&self, lifecycle: &Lifecycle, now: Millis) -> Timeline {
        let mut at = self.clone();
        at.advance(lifecycle, now);
        let mut steps = vec![(lifecycle.steps[0].status, at.began)];
        steps.extend(at.transitions.iter().copied());
        let status = at.status(lifecycle);
        let following = lifecycle.steps.get(at.step as usize + 1).map(|s| s.status);
        let next = match (status.is_terminal() || at.expired_at.is_some(), following) {
            (false, Some(following)) => match lifecycle.steps[at.step as usize].until {
                Until::Elapsed(ms) => Some(Next::At(following, at.entered_at.plus(ms))),
                Until::Retrieves(n) => Some(Next::AfterRetrieves(following, n.saturating_sub(at.retrieves_in_step))),
                Until::Forever => None,
            },
            _ => None,
        };
        let upcoming = if at.expired_at.is_some() {
            Vec::new()
        } else {
            lifecycle.steps.iter().skip(at.step as usize + 1).map(|s| s.status).collect()
        };
        let expires_at = match (lifecycle.ttl_ms, at.enqueued_at) {
            (Some(ttl), Some(enqueued)) if status.phase() == Phase::Queued => Some(enqueued.plus(ttl)),
            _ => None,
        };
        Timeline { steps, next, upcoming, expires_at }
    }

    /// Moves the run to `status` at `at` for good: the current step ends at
    /// `at` and `status` becomes the last step, lasting forever. The steps
    /// that would have followed are dropped. Returns false, changing nothing,
    /// when the run is already finished at `at`.
    pub fn pin(&mut self, lifecycle: &mut Lifecycle, status: EngineStatus, at: Millis) -> bool {
        self.advance(lifecycle, at);
        if self.status(lifecycle).is_terminal() {
            return false;
        }
        lifecycle.steps.truncate(self.at() + 1);
        let at = at.max(self.entered_at);
        lifecycle.steps[self.at()].until = Until::Elapsed(at.0.saturating_sub(self.entered_at.0));
        lifecycle.steps.push(Step { status, until: Until::Forever });
        self.advance(lifecycle, at);
        true
    }

    /// Moves the end of the current step, when it is time-driven, to `until`.
    /// Used to reschedule a delayed run.
    pub fn end_step_at(&self, lifecycle: &mut Lifecycle, until: Millis) {
        if let Some(step) = lifecycle.steps.get_mut(self.at()) {
            step.until = Until::Elapsed(until.0.saturating_sub(self.entered_at.0).max(1));
        }
    }

    /// The next instant on the mock clock at which time alone changes this
    /// view (a step's duration ends, or a queued run's TTL runs out); `None`
    /// when only retrieves, or nothing, can change it. Call
    /// [`Progress::advance`] first. Realtime waits sleep until then.
    pub fn next_due(&self, lifecycle: &Lifecycle) -> Option<Millis> {
        match self.deadlines(lifecycle)? {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the current step's duration ends and when a queued run's TTL
    /// runs out, as far as either applies; `None` once the run is finished.
    fn deadlines(&self, lifecycle: &Lifecycle) -> Option<(Option<Millis>, Option<Millis>)> {
        let status = self.status(lifecycle);
        if status.is_terminal() {
            return None;
        }
        let step_end = match lifecycle.steps[self.at()].until {
            Until::Elapsed(ms) => Some(self.entered_at.plus(ms)),
            _ => None,
        };
        let expiry = match (lifecycle.ttl_ms, self.enqueued_at) {
            (Some(ttl), Some(at)) if status.phase() == Phase::Queued => Some(at.plus(ttl)),
            _ => None,
        };
        Some((step_end, expiry))
    }

    /// How many status changes this view has been through: with
    /// `updatedAt`, what tells two views of the run apart even when both
    /// changes happened within one millisecond of a frozen clock.
    pub fn changes(&self) -> usize {
        self.transitions.len()
    }

    /// True when only an explicit change (cancel, the admin API…) can move
    /// the run on: its status is terminal (time no longer moves it, and the
    /// run as shown no longer depends on the clock) and no retrieve count
    /// ends its step.
    pub fn is_settled(&self, lifecycle: &Lifecycle) -> bool {
        self.status(lifecycle).is_terminal()
            && (self.expired_at.is_some() || !matches!(lifecycle.steps[self.at()].until, Until::Retrieves(_)))
    }

    /// Counts one retrieve made at `now` (after it was answered).
    pub fn count_retrieve(&mut self, lifecycle: &Lifecycle, now: Millis) {
        if self.expired_at.is_some() {
            return;
        }
        if let Until::Retrieves(n) = lifecycle.steps[self.at()].until {
            self.retrieves_in_step += 1;
            if self.retrieves_in_step >= n {
                self.enter_next(lifecycle, now);
            }
        }
    }

    /// Applies what happened up to `now` and returns the run as this caller
    /// sees it then.
    pub fn view(&mut self, base: &Run, lifecycle: &Lifecycle, now: Millis) -> Run {
        self.advance(lifecycle, now);
        self.materialize(base, lifecycle, now)
    }

    /// The run as this caller sees it at `now` (call [`Progress::advance`] first).
    pub fn materialize(&self, base: &Run, lifecycle: &Lifecycle, now: Millis) -> Run {
        let mut run = base.clone();
        let shift = |t: Millis| t.plus(self.shift);
        run.created_at = run.created_at.plus(self.shift);
        // The first step's instant: the caller's epoch for a run created then
        // (a generated queued run is updated a few ms after its creation,
        // which would put it ahead of the clock), else its shifted history.
        run.updated_at = self.began.max(run.created_at);
        run.started_at = run.started_at.map(shift);
        run.finished_at = run.finished_at.map(shift);
        run.expired_at = run.expired_at.map(shift);
        run.delayed_until = None;
        if let (EngineStatus::Delayed, Until::Elapsed(ms)) = (lifecycle.steps[0].status, lifecycle.steps[0].until) {
            run.delayed_until = Some(run.created_at.plus(ms));
        }
        let status = self.status(lifecycle);
        run.status = status;
        let mut previous = lifecycle.steps[0].status;
        let mut since = run.updated_at;
        let mut compute_ms = 0i64;
        for &(next, at) in &self.transitions {
            if is_compute(previous) {
                compute_ms = compute_ms.saturating_add(at.0.saturating_sub(since.0));
            }
            if next == EngineStatus::Executing && previous != EngineStatus::Executing {
                run.attempt_count = run.attempt_count.max(u32::from(run.started_at.is_some())) + 1;
            }
            if next.phase() == Phase::Started && run.started_at.is_none() {
                run.started_at = Some(at);
                run.attempt_count = run.attempt_count.max(1);
            }
            if next.is_terminal() {
                run.finished_at = Some(at);
            }
            if next == EngineStatus::Expired {
                run.expired_at = Some(at);
            }
            run.updated_at = at;
            previous = next;
            since = at;
        }
        if is_compute(status) && !status.is_terminal() {
            compute_ms = compute_ms.saturating_add(now.0.saturating_sub(since.0).max(0));
        }
        if compute_ms > 0 {
            run.duration_ms += compute_ms as u64;
            run.cost_in_cents = ((run.cost_in_cents + compute_ms as f64 * CENTS_PER_MS) * 1e9).round() / 1e9;
        }
        let phase = status.phase();
        if run.started_at.is_some() {
            run.base_cost_in_cents = run.base_cost_in_cents.max(BASE_CENTS);
            if run.version.is_none() {
                run.version =
                    Some(lifecycle.version.clone().unwrap_or_else(|| lifecycle.deploy.version(run.created_at)));
            }
        }
        if phase == Phase::Succeeded {
            // The run's own output (inline or offloaded) wins over the generated one.
            if run.output.is_none() && run.output_packet.is_none() {
                run.output.clone_from(&lifecycle.output);
            }
        } else {
            run.output = None;
            run.output_packet = None;
        }
        run.error = if phase == Phase::Failed { run.error.or_else(|| lifecycle.error.clone()) } else { None };
        if phase == Phase::Expired && run.ttl.is_none() {
            run.ttl = lifecycle.ttl_ms.map(|ms| crate::time::duration_string((ms / 1000) as u64));
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::generate;

    const T0: Millis = Millis(1_767_225_600_000);

    fn lc(steps: &[(EngineStatus, Until)], ttl: Option<i64>) -> Lifecycle {
        Lifecycle {
            steps: steps.iter().map(|&(status, until)| Step { status, until }).collect(),
            ttl_ms: ttl,
            output: Some(serde_json::json!({"ok": true})),
            error: Some(SerializedError { message: "boom".into(), name: None, stack_trace: None }),
            deploy: Deploy { days_before: 0, build: 1 },
            version: None,
        }
    }

    fn base(l: &Lifecycle) -> Run {
        generate(1, "run_x", Some(l.steps[0].status), T0, None)
    }

    #[test]
    fn the_timeline_shows_history_next_step_and_ttl_without_moving_the_run() {
        use EngineStatus::*;
        let l = lc(
            &[
                (Pending, Until::Elapsed(10_000)),
                (Executing, Until::Retrieves(2)),
                (CompletedSuccessfully, Until::Forever),
            ],
            Some(60_000),
        );
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        let queued = p.timeline(&l, T0.plus(1000));
        assert_eq!(queued.steps, [(Pending, T0)]);
        assert_eq!(queued.next, Some(Next::At(Executing, T0.plus(10_000))));
        assert_eq!(queued.upcoming, [Executing, CompletedSuccessfully]);
        assert_eq!(queued.expires_at, Some(T0.plus(60_000)));
        let later = p.timeline(&l, T0.plus(12_000));
        assert_eq!(later.steps, [(Pending, T0), (Executing, T0.plus(10_000))]);
        assert_eq!(later.next, Some(Next::AfterRetrieves(CompletedSuccessfully, 2)));
        assert_eq!(later.expires_at, None);
        assert_eq!(p.timeline(&l, T0.plus(1000)), queued, "reading the timeline moved nothing");
        p.advance(&l, T0.plus(12_000));
        p.count_retrieve(&l, T0.plus(12_000));
        assert_eq!(p.timeline(&l, T0.plus(12_000)).next, Some(Next::AfterRetrieves(CompletedSuccessfully, 1)));
        p.count_retrieve(&l, T0.plus(13_000));
        let done = p.timeline(&l, T0.plus(13_000));
        assert_eq!(done.steps.last(), Some(&(CompletedSuccessfully, T0.plus(13_000))));
        assert_eq!((done.next, done.upcoming.len()), (None, 0));
        let expiring = Progress::start(&b, &l, T0, T0);
        let expired = expiring.timeline(&lc(&[(Pending, Until::Forever)], Some(5000)), T0.plus(6000));
        assert_eq!(expired.steps, [(Pending, T0), (Expired, T0.plus(5000))]);
        assert_eq!((expired.next, expired.expires_at), (None, None));
    }

    #[test]
    fn retrieves_drive_the_steps() {
        use EngineStatus::*;
        let l = lc(
            &[
                (Pending, Until::Retrieves(1)),
                (Executing, Until::Retrieves(2)),
                (CompletedSuccessfully, Until::Forever),
            ],
            None,
        );
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        let mut seen = Vec::new();
        for i in 0..5 {
            let now = T0.plus(i * 1000);
            p.advance(&l, now);
            let run = p.materialize(&b, &l, now);
            seen.push(run.status);
            p.count_retrieve(&l, now);
        }
        assert_eq!(seen, [Pending, Executing, Executing, CompletedSuccessfully, CompletedSuccessfully]);
        let done = p.materialize(&b, &l, T0.plus(10_000));
        assert_eq!(done.created_at, T0);
        assert_eq!(done.started_at, Some(T0));
        assert_eq!(done.finished_at, Some(T0.plus(2000)));
        assert_eq!(done.duration_ms, 2000);
        assert_eq!(done.attempt_count, 1);
        assert_eq!(done.output, l.output);
        assert!(done.error.is_none());
        assert!(done.cost_in_cents > 0.0 && done.base_cost_in_cents > 0.0);
        assert_eq!(done.version.as_deref(), Some("20260101.1"));
    }

    #[test]
    fn a_run_that_starts_queued_is_updated_when_created() {
        use EngineStatus::*;
        let l = lc(&[(Pending, Until::Retrieves(1)), (Executing, Until::Forever)], None);
        let b = base(&l);
        assert!(b.updated_at > b.created_at, "the generated run is updated after its creation");
        let epoch = T0.plus(123_456);
        let mut p = Progress::start(&b, &l, T0, epoch);
        let first = p.view(&b, &l, epoch);
        assert_eq!((first.created_at, first.updated_at), (epoch, epoch));
        p.count_retrieve(&l, epoch);
        assert_eq!(p.view(&b, &l, epoch).updated_at, epoch);
    }

    #[test]
    fn durations_run_on_the_mock_clock() {
        use EngineStatus::*;
        let l = lc(
            &[
                (Pending, Until::Elapsed(30_000)),
                (Executing, Until::Elapsed(60_000)),
                (CompletedWithErrors, Until::Forever),
            ],
            None,
        );
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        p.advance(&l, T0.plus(29_999));
        assert_eq!(p.status(&l), Pending);
        p.advance(&l, T0.plus(30_000));
        assert_eq!(p.status(&l), Executing);
        assert_eq!(p.materialize(&b, &l, T0.plus(45_000)).duration_ms, 15_000);
        p.advance(&l, T0.plus(3_600_000));
        let run = p.materialize(&b, &l, T0.plus(3_600_000));
        assert_eq!(run.status, CompletedWithErrors);
        assert_eq!(run.finished_at, Some(T0.plus(90_000)));
        assert_eq!(run.duration_ms, 60_000);
        assert_eq!(run.error.map(|e| e.message), Some("boom".into()));
        assert!(run.output.is_none());
    }

    #[test]
    fn ttl_expires_a_queued_run() {
        use EngineStatus::*;
        let l = lc(&[(Pending, Until::Retrieves(5)), (Executing, Until::Forever)], Some(600_000));
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        p.advance(&l, T0.plus(599_999));
        assert_eq!(p.status(&l), Pending);
        p.advance(&l, T0.plus(600_000));
        assert_eq!(p.status(&l), Expired);
        let run = p.materialize(&b, &l, T0.plus(700_000));
        assert_eq!(run.expired_at, Some(T0.plus(600_000)));
        assert_eq!(run.finished_at, Some(T0.plus(600_000)));
        assert!(run.started_at.is_none());
        assert!(run.ttl.is_some());
        p.count_retrieve(&l, T0.plus(700_000));
        assert_eq!(p.status(&l), Expired, "terminal");
    }

    #[test]
    fn next_due_is_the_earlier_of_step_end_and_expiry() {
        use EngineStatus::*;
        let l = lc(
            &[(Pending, Until::Elapsed(30_000)), (Executing, Until::Retrieves(1)), (Canceled, Until::Forever)],
            Some(10_000),
        );
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        assert_eq!(p.next_due(&l), Some(T0.plus(10_000)), "the TTL runs out first");
        let l2 = lc(
            &[(Pending, Until::Elapsed(30_000)), (Executing, Until::Retrieves(1)), (Canceled, Until::Forever)],
            None,
        );
        let mut q = Progress::start(&b, &l2, T0, T0);
        assert_eq!(q.next_due(&l2), Some(T0.plus(30_000)));
        q.advance(&l2, T0.plus(30_000));
        assert_eq!((q.status(&l2), q.next_due(&l2), q.changes()), (Executing, None, 1), "only a retrieve moves it now");
        q.count_retrieve(&l2, T0.plus(30_000));
        assert_eq!((q.status(&l2), q.next_due(&l2), q.changes()), (Canceled, None, 2));
        p.advance(&l, T0.plus(10_000));
        assert_eq!((p.status(&l), p.next_due(&l)), (Expired, None));
    }

    #[test]
    fn a_started_run_does_not_expire() {
        use EngineStatus::*;
        let l = lc(&[(Pending, Until::Elapsed(1000)), (Executing, Until::Forever)], Some(5000));
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        p.advance(&l, T0.plus(10_000));
        assert_eq!(p.status(&l), Executing);
    }

    #[test]
    fn delayed_then_queued_counts_ttl_from_the_enqueue() {
        use EngineStatus::*;
        let l = lc(&[(Delayed, Until::Elapsed(60_000)), (Pending, Until::Forever)], Some(120_000));
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        let run = p.materialize(&b, &l, T0);
        assert_eq!((run.status, run.delayed_until), (Delayed, Some(T0.plus(60_000))));
        p.advance(&l, T0.plus(60_000));
        assert_eq!(p.status(&l), Pending);
        p.advance(&l, T0.plus(179_999));
        assert_eq!(p.status(&l), Pending);
        p.advance(&l, T0.plus(180_000));
        assert_eq!(p.status(&l), Expired);
    }

    #[test]
    fn retries_count_attempts() {
        use EngineStatus::*;
        let l = lc(
            &[
                (Executing, Until::Retrieves(1)),
                (RetryingAfterFailure, Until::Retrieves(1)),
                (Executing, Until::Retrieves(1)),
                (CompletedSuccessfully, Until::Forever),
            ],
            None,
        );
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        for i in 0..4 {
            p.count_retrieve(&l, T0.plus(i));
        }
        let run = p.materialize(&b, &l, T0.plus(10));
        assert_eq!(run.status, CompletedSuccessfully);
        assert_eq!(run.attempt_count, b.attempt_count.max(1) + 1);
    }

    #[test]
    fn pin_ends_the_current_step_and_stays() {
        use EngineStatus::*;
        let mut l = lc(&[(Pending, Until::Retrieves(3)), (Executing, Until::Forever)], None);
        let b = base(&l);
        let mut p = Progress::start(&b, &l, T0, T0);
        assert!(p.pin(&mut l, Canceled, T0.plus(500)));
        let run = p.view(&b, &l, T0.plus(10_000));
        assert_eq!((run.status, run.finished_at), (Canceled, Some(T0.plus(500))));
        assert!(!p.pin(&mut l, Executing, T0.plus(20_000)), "a finished run stays finished");
    }

    #[test]
    fn impossible_transitions_are_named() {
        use EngineStatus::*;
        assert!(check_transition(CompletedSuccessfully, Executing).unwrap_err().contains("terminal"));
        assert!(check_transition(Executing, Delayed).unwrap_err().contains("cannot go from EXECUTING to DELAYED"));
        assert!(check_transition(Pending, Pending).unwrap_err().contains("merge"));
        assert!(check_transition(Delayed, CompletedSuccessfully).is_err());
        assert!(check_transition(Pending, Expired).is_ok());
        assert!(check_transition(Executing, CompletedWithErrors).is_ok());
    }
}
