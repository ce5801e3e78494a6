//! The change-notification hub: how a waiting realtime long-poll learns that
//! what it watches may have changed, without polling and without a task per
//! run.
//!
//! A long-poll watches one [`Topic`] (a run, a tag, or a batch) within one
//! scenario key (the secret key whose scenario state the caller uses; a
//! public access token uses its environment's key). Watch lists are slots in
//! a sharded map, created by the first watcher of a topic and removed with
//! its last, so memory is bounded by the number of open long-polls (one slot
//! per distinct topic, one small guard per poll), whatever the number of
//! runs. A waiting poll is a parked future on a [`tokio::sync::Notify`]: it
//! costs no CPU until it is woken.
//!
//! What wakes whom:
//! - [`Hub::changed`] wakes exactly the watchers of that run, of each of its
//!   tags and of its batch, in that key. The retrieve route calls it when a
//!   retrieve moves a run to its next step; every run-flow request that
//!   creates or changes a run of the ledger (trigger, replay, batch items,
//!   cancel, reschedule, tags, metadata) and the admin drive route call it
//!   through `EnvState::stamp`, for each run the request touched.
//! - [`Hub::clock_moved`] (admin clock set, advance, freeze) wakes only the
//!   polls whose runs have a time-driven next step; they recompute it and
//!   wait again if nothing is due yet. Under a running clock each such poll
//!   also sleeps until its next step is due, so time-driven lifecycles wake
//!   it exactly when due.
//! - [`Hub::everything_changed`] (admin reset, scenario reload) and
//!   [`Hub::close`] (shutdown: every poll answers at once so draining is
//!   quick) wake every poll.
//!
//! A wake-up is never lost: a poll reads the generations ([`Hub::mark`])
//! before it reads the state, and [`Watch::wait`] returns at once when a
//! generation moved in between.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const SHARDS: usize = 32;

/// What a long-poll watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One run, by its id.
    Run(Box<str>),
    /// Every run with this tag.
    Tag(Box<str>),
    /// Every run of this batch.
    Batch(Box<str>),
    /// Every run of the key (a tag feed with no tags).
    Any,
}

#[derive(Debug, Default)]
struct Slot {
    notify: Notify,
    generation: AtomicU64,
}

type SlotKey = (Box<str>, Topic);
/// A shard of watch lists: each slot with its number of watchers.
type Shard = Mutex<HashMap<SlotKey, (Arc<Slot>, usize)>>;

/// The hub; one per server, shared by all requests.
#[derive(Debug)]
pub struct Hub {
    shards: Vec<Shard>,
    clock: Slot,
    all: Slot,
    closed: AtomicBool,
    /// Open watches. While there are none, a change wakes nobody and costs
    /// one atomic load (a watch is counted before its poll reads the state,
    /// so a change the poll did not see finds it counted).
    watching: AtomicUsize,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            clock: Slot::default(),
            all: Slot::default(),
            closed: AtomicBool::new(false),
            watching: AtomicUsize::new(0),
        }
    }
}

/// The generations a poll saw before it read the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    topic: u64,
    clock: u64,
    all: u64,
}

/// Why [`Watch::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something the poll watches may have changed: read the state again.
    Changed,
    /// The next time-driven step is due.
    Due,
    /// The hold time ran out with no change.
    Timeout,
    /// The server is shutting down.
    Closed,
}

/// One open long-poll's registration; dropping it leaves the watch list.
#[derive(Debug)]
pub struct Watch {
    hub: Arc<Hub>,
    key: Option<SlotKey>,
    slot: Arc<Slot>,
}

fn bump(slot: &Slot) {
    slot.generation.fetch_add(1, Ordering::AcqRel);
    slot.notify.notify_waiters();
}

impl Hub {
    fn shard(&self, key: &SlotKey) -> &Shard {
        let mut bytes = key.0.as_bytes().to_vec();
        let (tag, name) = match &key.1 {
            Topic::Run(n) => (0u8, n),
            Topic::Tag(n) => (1, n),
            Topic::Batch(n) => (2, n),
            Topic::Any => (3, &key.0),
        };
        bytes.push(tag);
        bytes.extend_from_slice(name.as_bytes());
        &self.shards[(crate::generate::stable_hash(&bytes) % SHARDS as u64) as usize]
    }

    /// Joins the watch list of `topic` in `key`.
    pub fn watch(self: &Arc<Hub>, key: &str, topic: Topic) -> Watch {
        let slot_key: SlotKey = (key.into(), topic);
        self.watching.fetch_add(1, Ordering::SeqCst);
        let slot = {
            let mut shard = self.shard(&slot_key).lock().unwrap_or_else(|p| p.into_inner());
            let entry = shard.entry(slot_key.clone()).or_insert_with(|| (Arc::new(Slot::default()), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        Watch { hub: self.clone(), key: Some(slot_key), slot }
    }

    fn wake(&self, key: &str, topic: Topic) {
        let slot_key: SlotKey = (key.into(), topic);
        let slot = self.shard(&slot_key).lock().unwrap_or_else(|p| p.into_inner()).get(&slot_key).map(|e| e.0.clone());
        if let Some(slot) = slot {
            bump(&slot);
        }
    }

    /// Run `run_id` (with `tags`, in `batch`) changed for `key`: wakes the
    /// polls watching it, its tags or its batch. Costs a hash lookup per
    /// topic when nobody watches.
    pub fn changed(&self, key: &str, run_id: &str, tags: &[String], batch: Option<&str>) {
        if self.watching.load(Ordering::SeqCst) == 0 {
            return;
        }
        self.wake(key, Topic::Run(run_id.into()));
        for tag in tags {
            self.wake(key, Topic::Tag(tag.as_str().into()));
        }
        if let Some(batch) = batch {
            self.wake(key, Topic::Batch(batch.into()));
        }
        self.wake(key, Topic::Any);
    }

    /// The mock clock was moved: wakes the polls waiting for a time-driven step.
    pub fn clock_moved(&self) {
        bump(&self.clock);
    }

    /// Every key's state may have changed (admin reset, scenario reload).
    pub fn everything_changed(&self) {
        bump(&self.all);
    }

    /// The server is shutting down: every poll answers now, and new ones do
    /// not wait.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        bump(&self.all);
    }

    /// True once [`Hub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many topics have at least one watcher (for tests and the bench).
    pub fn topics(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

impl Watch {
    /// The generations now; take it before reading the state.
    pub fn mark(&self) -> Mark {
        Mark {
            topic: self.slot.generation.load(Ordering::Acquire),
            clock: self.hub.clock.generation.load(Ordering::Acquire),
            all: self.hub.all.generation.load(Ordering::Acquire),
        }
    }

    /// Waits until the topic changes, the clock moves (only when `due` is
    /// `Some`: the real-time wait until the next time-driven step, or
    /// `Duration::MAX` under a frozen clock), everything changes, or `hold`
    /// runs out. Returns at once if anything moved since `mark`.
    pub async fn wait(&self, mark: Mark, due: Option<Duration>, hold: Duration) -> Wake {
        if self.hub.is_closed() {
            return Wake::Closed;
        }
        let mut topic = pin!(self.slot.notify.notified());
        let mut clock = pin!(self.hub.clock.notify.notified());
        let mut all = pin!(self.hub.all.notify.notified());
        topic.as_mut().enable();
        clock.as_mut().enable();
        all.as_mut().enable();
        let now = self.mark();
        if self.hub.is_closed() {
            return Wake::Closed;
        }
        if now.topic != mark.topic || now.all != mark.all || (due.is_some() && now.clock != mark.clock) {
            return Wake::Changed;
        }
        let due_sleep = async {
            match due {
                Some(d) if d < hold => tokio::time::sleep(d).await,
                _ => std::future::pending::<()>().await,
            }
        };
        let clock_wait = async {
            if due.is_some() {
                clock.await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = topic => Wake::Changed,
            () = all => if self.hub.is_closed() { Wake::Closed } else { Wake::Changed },
            () = clock_wait => Wake::Changed,
            () = due_sleep => Wake::Due,
            () = tokio::time::sleep(hold) => Wake::Timeout,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        {
            let mut shard = self.hub.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = shard.get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    shard.remove(&key);
                }
            }
        }
        self.hub.watching.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    fn run(id: &str) -> Topic {
        Topic::Run(id.into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_wakes_exactly_the_watchers_of_that_run() {
        let hub = Arc::new(Hub::default());
        let a = hub.watch("k", run("run_a"));
        let b = hub.watch("k", run("run_b"));
        let other_key = hub.watch("k2", run("run_a"));
        let (ma, mb, mo) = (a.mark(), b.mark(), other_key.mark());
        let wa = tokio::spawn({
            let hub = hub.clone();
            async move {
                let a = hub.watch("k", run("run_a"));
                let m = a.mark();
                a.wait(m, None, LONG).await
            }
        });
        tokio::task::yield_now().await;
        hub.changed("k", "run_a", &[], None);
        assert_eq!(wa.await.ok(), Some(Wake::Changed));
        assert_eq!(a.wait(ma, None, LONG).await, Wake::Changed, "a change after the mark is never lost");
        assert_eq!(b.wait(mb, None, Duration::from_millis(5)).await, Wake::Timeout);
        assert_eq!(other_key.wait(mo, None, Duration::from_millis(5)).await, Wake::Timeout, "keys are separate");
    }

    #[tokio::test(start_paused = true)]
    async fn tags_and_batches_are_woken_by_their_runs() {
        let hub = Arc::new(Hub::default());
        let tag = hub.watch("k", Topic::Tag("user:1".into()));
        let batch = hub.watch("k", Topic::Batch("batch_1".into()));
        let (mt, mb) = (tag.mark(), batch.mark());
        hub.changed("k", "run_x", &["user:1".to_owned()], Some("batch_1"));
        assert_eq!(tag.wait(mt, None, LONG).await, Wake::Changed);
        assert_eq!(batch.wait(mb, None, LONG).await, Wake::Changed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_wakes_only_time_driven_polls() {
        let hub = Arc::new(Hub::default());
        let w = hub.watch("k", run("run_a"));
        let m = w.mark();
        hub.clock_moved();
        assert_eq!(w.wait(m, None, Duration::from_millis(5)).await, Wake::Timeout);
        assert_eq!(w.wait(m, Some(Duration::MAX), LONG).await, Wake::Changed);
        let m = w.mark();
        assert_eq!(w.wait(m, Some(Duration::from_millis(250)), LONG).await, Wake::Due);
        hub.everything_changed();
        assert_eq!(w.wait(m, None, LONG).await, Wake::Changed);
        hub.close();
        assert_eq!(w.wait(w.mark(), None, LONG).await, Wake::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn watch_lists_are_removed_with_their_last_watcher() {
        let hub = Arc::new(Hub::default());
        let watches: Vec<Watch> = (0..1000).map(|i| hub.watch("k", run(&format!("run_{}", i % 10)))).collect();
        assert_eq!(hub.topics(), 10);
        drop(watches);
        assert_eq!(hub.topics(), 0);
        hub.changed("k", "run_1", &[], None);
        assert_eq!(hub.topics(), 0, "a change nobody watches leaves nothing behind");
    }
}
