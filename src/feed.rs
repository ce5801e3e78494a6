//! The dashboard's change feed: what tells an open page, through
//! `GET /_mock/events` (server-sent events), that the journal, the clock,
//! the runs or the scenarios changed, so it reads them again only then.
//!
//! One generation counter per kind of change and one [`Notify`]. A change
//! made while no page is connected costs one atomic load ([`Feed::changed`]
//! returns at once); a connected page is a parked task that wakes only on a
//! change (and every [`HEARTBEAT`] to learn whether its client left). Bursts
//! coalesce: a page woken once reads every counter that moved.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often an idle stream sends a comment line, so that a page that left
/// is noticed and the connection is never idle long enough to be closed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The most streams open at once; more get 503.
pub const MAX_STREAMS: usize = 64;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A request was journaled (runs it retrieved may have moved too).
    Journal,
    /// The mock clock was set, advanced, frozen or thawed.
    Clock,
    /// Runs changed other than through a request: a reset, a run driven.
    Runs,
    /// Scenarios were loaded, unloaded or a reload was refused.
    Scenarios,
}

impl Change {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        match self {
            Change::Journal => 0,
            Change::Clock => 1,
            Change::Runs => 2,
            Change::Scenarios => 3,
        }
    }
}

/// The generations of every kind of change, as a page sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Generations {
    pub journal: u64,
    pub clock: u64,
    pub runs: u64,
    pub scenarios: u64,
}

/// The feed; one per server.
#[derive(Debug, Default)]
pub struct Feed {
    generations: [AtomicU64; Change::COUNT],
    streams: AtomicUsize,
    notify: Notify,
    closed: AtomicBool,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct Stream<'a> {
    feed: &'a Feed,
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        self.feed.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Feed {
    /// Notes a change; nothing but one load when no stream is open.
    #[inline]
    pub fn changed(&self, change: Change) {
        if self.streams.load(Ordering::Acquire) == 0 {
            return;
        }
        self.generations[change.index()].fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// The generations now.
    pub fn generations(&self) -> Generations {
        let g = |c: Change| self.generations[c.index()].load(Ordering::Acquire);
        Generations {
            journal: g(Change::Journal),
            clock: g(Change::Clock),
            runs: g(Change::Runs),
            scenarios: g(Change::Scenarios),
        }
    }

    /// How many streams are open.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Acquire)
    }

    /// Takes a place for a stream, or `None` when [`MAX_STREAMS`] are open or the server is stopping.
    pub fn open(&self) -> Option<Stream<'_>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let taken =
            self.streams.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_STREAMS).then_some(n + 1));
        taken.ok().map(|_| Stream { feed: self })
    }

    /// Waits until something changed after `seen` (returning the new
    /// generations), `timeout` passed (`None`), or the feed closed (`None`
    /// too; check [`Feed::is_closed`]).
    pub async fn wait(&self, seen: Generations, timeout: Duration) -> Option<Generations> {
        let notified = self.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before reading: a change between the read and the wait is not lost.
        notified.as_mut().enable();
        let now = self.generations();
        if now != seen {
            return Some(now);
        }
        if self.is_closed() {
            return None;
        }
        match tokio::time::timeout(timeout, notified).await {
            Ok(()) if !self.is_closed() => Some(self.generations()),
            _ => None,
        }
    }

    /// Ends every stream (the server is stopping) and refuses new ones.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// True once [`Feed::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_nobody_watching_cost_nothing_and_are_not_counted() {
        let feed = Feed::default();
        feed.changed(Change::Journal);
        assert_eq!(feed.generations(), Generations::default());
        let stream = feed.open();
        feed.changed(Change::Journal);
        feed.changed(Change::Clock);
        assert_eq!(feed.generations(), Generations { journal: 1, clock: 1, ..Generations::default() });
        drop(stream);
        assert_eq!(feed.streams(), 0);
    }

    #[test]
    fn streams_are_capped_and_refused_once_closed() {
        let feed = Feed::default();
        let open: Vec<_> = (0..MAX_STREAMS).map_while(|_| feed.open()).collect();
        assert_eq!(open.len(), MAX_STREAMS);
        assert!(feed.open().is_none());
        drop(open);
        assert!(feed.open().is_some());
        feed.close();
        assert!(feed.open().is_none());
    }

    #[tokio::test]
    async fn a_waiting_stream_wakes_on_a_change_and_on_close() {
        let feed = std::sync::Arc::new(Feed::default());
        let _stream = feed.open();
        let seen = feed.generations();
        let waiter = tokio::spawn({
            let feed = feed.clone();
            async move { feed.wait(seen, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        feed.changed(Change::Runs);
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(woke.ok().and_then(Result::ok).flatten().map(|g| g.runs), Some(1));
        assert_eq!(feed.wait(seen, Duration::from_secs(30)).await.map(|g| g.runs), Some(1), "a change already seen");
        let seen = feed.generations();
        let waiter = tokio::spawn({
            let feed = feed.clone();
            async move { feed.wait(seen, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        feed.close();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(woke, Ok(Ok(None))) && feed.is_closed());
    }
}
