//! The request journal: a ring buffer of compact request records, bounded in
//! count and in bytes, so a test can assert how many requests a client made
//! and how far apart.
//!
//! A record keeps at most [`FIELD_CHARS`] characters of the method, path,
//! run id and fault, and only the first [`KEY_CHARS`] characters of the key
//! (never a whole secret key); what was cut is listed in its `truncated`
//! field. Filtering by key still compares whole keys, through their
//! [`KeyId`].

use crate::excerpt::prefix;
use crate::keys::KeyId;
use crate::time::Millis;
use serde::Serialize;
use serde::ser::SerializeSeq;
use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most characters a record keeps of the method, path, run id and fault.
pub const FIELD_CHARS: usize = 256;

/// The most characters a record keeps of the key.
pub const KEY_CHARS: usize = 16;

/// The most characters a record keeps of the client's `trigger-version`.
pub const VERSION_CHARS: usize = 64;

/// The most runs a record lists in `runIds` besides its `runId` (a batch's first runs).
pub const MAX_RUN_IDS: usize = 64;

/// The default byte budget of the journal: 8 MiB.
pub const DEFAULT_JOURNAL_BYTES: usize = 8 << 20;

/// The most records one page of a listing holds when `after` is given without `limit`.
pub const PAGE_RECORDS: usize = 1000;

/// The fields of a record that were cut, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Truncated(u8);

impl Truncated {
    const NAMES: [&'static str; 6] = ["method", "path", "runId", "key", "fault", "triggerVersion"];

    /// True when nothing was cut.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The names of the fields that were cut.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        Truncated::NAMES.iter().enumerate().filter(|(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n)
    }
}

impl Serialize for Truncated {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for name in self.names() {
            seq.serialize_element(name)?;
        }
        seq.end()
    }
}

/// One request, as recorded after it was answered.
///
/// Its texts (method, path, run id, key prefix, fault) share one allocation:
/// a record costs one `malloc` on the request path, not one per field.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1, 2, 3… in arrival order; never reused, even after a clear.
    pub seq: u64,
    /// The mock clock when the request arrived (ISO-8601).
    pub at: Millis,
    /// The wall clock when the request arrived, in epoch milliseconds: use it
    /// for the spacing of retries.
    pub wall_ms: i64,
    /// The texts, one after the other; `ends[i]` is where text `i` ends.
    text: Box<str>,
    ends: [u32; Text::COUNT],
    /// Which of the optional texts (run id, key, fault) are present.
    present: u8,
    /// The whole key, for filtering.
    pub key_id: Option<KeyId>,
    /// A public access token's environment and scopes (never the token).
    pub token: Option<crate::auth::TokenSummary>,
    /// The status sent, or 0 when the connection was reset instead.
    pub status: u16,
    /// The fields cut to their limit.
    pub truncated: Truncated,
    /// Runs the request created or changed besides `runId` (a batch's runs,
    /// a replay's new run), at most [`MAX_RUN_IDS`], each cut to [`FIELD_CHARS`].
    pub run_ids: Box<[Box<str>]>,
}

/// The texts of a record, in the order they are stored.
#[derive(Debug, Clone, Copy)]
enum Text {
    Method,
    Path,
    RunId,
    Key,
    Fault,
    TriggerVersion,
}

impl Text {
    const COUNT: usize = 6;
}

/// What a request was, before it is cut to a record.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub at: Millis,
    pub wall_ms: i64,
    pub method: &'a str,
    pub path: &'a str,
    pub run_id: Option<&'a str>,
    pub key: Option<&'a str>,
    /// A public access token's summary (already bounded: see [`crate::auth::TokenSummary`]).
    pub token: Option<&'a crate::auth::TokenSummary>,
    pub status: u16,
    pub fault: Option<&'a str>,
    /// Runs the request created or changed besides `run_id`.
    pub run_ids: &'a [String],
    /// The SDK version the client sent (`trigger-version`).
    pub trigger_version: Option<&'a str>,
}

impl Record {
    /// The record of `request`, its fields cut to their limits; [`Journal::push`] numbers it.
    pub fn new(request: &Request<'_>) -> Record {
        let fields = [
            Some((request.method, FIELD_CHARS)),
            Some((request.path, FIELD_CHARS)),
            request.run_id.map(|id| (id, FIELD_CHARS)),
            request.key.map(|k| (k, KEY_CHARS)),
            request.fault.map(|f| (f, FIELD_CHARS)),
            request.trigger_version.map(|v| (v, VERSION_CHARS)),
        ];
        let (mut truncated, mut present) = (0u8, 0u8);
        let mut kept = [""; Text::COUNT];
        for (i, field) in fields.iter().enumerate() {
            if let Some((text, max)) = field {
                let (cut, was_cut) = prefix(text, *max);
                kept[i] = cut;
                present |= 1 << i;
                if was_cut {
                    truncated |= 1 << i;
                }
            }
        }
        let mut text = String::with_capacity(kept.iter().map(|k| k.len()).sum());
        let mut ends = [0u32; Text::COUNT];
        for (i, k) in kept.iter().enumerate() {
            text.push_str(k);
            // Each text is at most FIELD_CHARS characters: the sum fits.
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Record {
            seq: 0,
            at: request.at,
            wall_ms: request.wall_ms,
            text: text.into_boxed_str(),
            ends,
            present,
            key_id: request.key.map(KeyId::of),
            token: request.token.cloned(),
            status: request.status,
            truncated: Truncated(truncated),
            run_ids: request
                .run_ids
                .iter()
                .filter(|id| Some(id.as_str()) != request.run_id)
                .take(MAX_RUN_IDS)
                .map(|id| Box::from(prefix(id, FIELD_CHARS).0))
                .collect(),
        }
    }

    fn text(&self, which: Text) -> Option<&str> {
        let i = which as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    /// The request's method (cut to [`FIELD_CHARS`]).
    pub fn method(&self) -> &str {
        self.text(Text::Method).unwrap_or_default()
    }

    /// The request's path (cut to [`FIELD_CHARS`]).
    pub fn path(&self) -> &str {
        self.text(Text::Path).unwrap_or_default()
    }

    /// The run the request named, if any (cut to [`FIELD_CHARS`]).
    pub fn run_id(&self) -> Option<&str> {
        self.text(Text::RunId)
    }

    /// The first [`KEY_CHARS`] characters of the key.
    pub fn key(&self) -> Option<&str> {
        self.text(Text::Key)
    }

    /// The fault applied (`label: action`), if any (cut to [`FIELD_CHARS`]).
    pub fn fault(&self) -> Option<&str> {
        self.text(Text::Fault)
    }

    /// The SDK version the client sent (cut to [`VERSION_CHARS`]).
    pub fn trigger_version(&self) -> Option<&str> {
        self.text(Text::TriggerVersion)
    }

    /// The bytes this record takes: its own size, its texts and its token's.
    pub fn bytes(&self) -> usize {
        let token = self.token.as_ref().map_or(0, |t| {
            t.environment.as_ref().map_or(0, String::capacity)
                + t.scopes.capacity() * size_of::<String>()
                + t.scopes.iter().map(String::capacity).sum::<usize>()
        });
        let run_ids = self.run_ids.iter().map(|id| size_of::<Box<str>>() + id.len()).sum::<usize>();
        size_of::<Record>() + self.text.len() + token + run_ids
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("at", &self.at)?;
        map.serialize_entry("wallMs", &self.wall_ms)?;
        map.serialize_entry("method", self.method())?;
        map.serialize_entry("path", self.path())?;
        if let Some(id) = self.run_id() {
            map.serialize_entry("runId", id)?;
        }
        if let Some(key) = self.key() {
            map.serialize_entry("key", key)?;
        }
        if let Some(token) = &self.token {
            map.serialize_entry("token", token)?;
        }
        map.serialize_entry("status", &self.status)?;
        if let Some(fault) = self.fault() {
            map.serialize_entry("fault", fault)?;
        }
        if !self.run_ids.is_empty() {
            map.serialize_entry("runIds", &self.run_ids)?;
        }
        if let Some(version) = self.trigger_version() {
            map.serialize_entry("triggerVersion", version)?;
        }
        if !self.truncated.is_empty() {
            map.serialize_entry("truncated", &self.truncated)?;
        }
        map.end()
    }
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<Record>,
    /// The sum of the records' [`Record::bytes`].
    bytes: usize,
}

/// The journal. The lock is held only to push or copy records.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    budget: usize,
    ring: Mutex<Ring>,
    seq: AtomicU64,
}

/// Which records a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub key: Option<String>,
    /// Compared with the recorded run id, cut as records cut it.
    pub run_id: Option<String>,
    /// At most this many: the newest, or without `after`, the first after it.
    pub limit: Option<usize>,
    /// Only records with a larger `seq` (a cursor: the `next` of the previous page).
    pub after: Option<u64>,
}

/// The answer to a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Oldest first.
    pub records: Vec<Record>,
    /// With `after`: the cursor of the next page, when more records match.
    pub next: Option<u64>,
}

impl Journal {
    /// A journal of at most `capacity` records taking at most `budget` bytes;
    /// a capacity or a budget of 0 switches it off.
    pub fn new(capacity: usize, budget: usize) -> Journal {
        Journal { capacity, budget, ring: Mutex::new(Ring::default()), seq: AtomicU64::new(0) }
    }

    /// True when recording: neither the count nor the byte budget is 0.
    pub fn enabled(&self) -> bool {
        self.capacity > 0 && self.budget > 0
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        crate::spin::lock(&self.ring)
    }

    /// Numbers a record and appends it, dropping the oldest while over the
    /// count or the byte budget; returns its `seq` (0 when the journal is
    /// off). The number is taken under the lock, so records are kept in
    /// `seq` order, which paging relies on. A record larger than the budget
    /// is numbered but not kept.
    pub fn push(&self, mut record: Record) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let bytes = record.bytes();
        // The record it pushes out, freed after the lock is let go (it was
        // allocated on another thread, often: freeing it takes a while).
        let mut dropped = None;
        let mut ring = self.ring();
        record.seq = self.next_seq();
        let seq = record.seq;
        if bytes > self.budget {
            return seq;
        }
        ring.bytes += bytes;
        ring.records.push_back(record);
        while ring.records.len() > self.capacity || ring.bytes > self.budget {
            match ring.records.pop_front() {
                Some(old) => {
                    ring.bytes -= old.bytes();
                    if dropped.is_none() {
                        dropped = Some(old);
                    }
                }
                None => break,
            }
        }
        drop(ring);
        drop(dropped);
        seq
    }

    /// The matching records (see [`Query`]), oldest first.
    pub fn query(&self, q: &Query) -> Page {
        let key = q.key.as_deref().map(KeyId::of);
        let run_id = q.run_id.as_deref().map(|id| prefix(id, FIELD_CHARS).0);
        let matches = |r: &&Record| {
            key.is_none_or(|k| r.key_id == Some(k))
                && run_id.is_none_or(|id| r.run_id() == Some(id) || r.run_ids.iter().any(|r| &**r == id))
        };
        let ring = self.ring();
        match q.after {
            None => {
                let limit = q.limit.unwrap_or(usize::MAX);
                let mut newest: Vec<Record> = ring.records.iter().rev().filter(matches).take(limit).cloned().collect();
                newest.reverse();
                Page { records: newest, next: None }
            }
            Some(after) => {
                let limit = q.limit.unwrap_or(PAGE_RECORDS);
                let start = ring.records.partition_point(|r| r.seq <= after);
                let mut found = ring.records.range(start..).filter(matches);
                let records: Vec<Record> = found.by_ref().take(limit).cloned().collect();
                let more = found.next().is_some();
                let next = records.last().map(|r| r.seq).filter(|_| more);
                Page { records, next }
            }
        }
    }

    /// Forgets every record and releases their memory.
    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.ring());
        drop(old);
    }

    /// How many records are kept.
    pub fn len(&self) -> usize {
        self.ring().records.len()
    }

    /// True when no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the kept records take ([`Record::bytes`] summed): at most the budget.
    pub fn bytes(&self) -> usize {
        self.ring().bytes
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> Record {
        let request = Request {
            at: Millis(0),
            wall_ms: 0,
            method: "GET",
            path: "/",
            run_id: None,
            key: Some(key),
            token: None,
            status: 200,
            fault: None,
            run_ids: &[],
            trigger_version: None,
        };
        Record::new(&request)
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let j = Journal::new(3, DEFAULT_JOURNAL_BYTES);
        for k in ["a", "b", "a", "b", "a"] {
            j.push(record(k));
        }
        assert_eq!(seqs(&j.query(&Query::default())), [3, 4, 5]);
        let a = j.query(&Query { key: Some("a".into()), ..Query::default() });
        assert_eq!(seqs(&a), [3, 5]);
        let last = j.query(&Query { limit: Some(1), ..Query::default() });
        assert_eq!(seqs(&last), [5]);
        j.clear();
        assert!(j.query(&Query::default()).records.is_empty());
        assert_eq!(j.bytes(), 0);
    }

    #[test]
    fn capacity_zero_records_nothing() {
        let j = Journal::new(0, DEFAULT_JOURNAL_BYTES);
        j.push(record("a"));
        assert!(!j.enabled() && j.query(&Query::default()).records.is_empty());
    }

    #[test]
    fn pages_follow_the_cursor() {
        let j = Journal::new(100, DEFAULT_JOURNAL_BYTES);
        for k in ["a", "b", "a", "a", "b", "a"] {
            j.push(record(k));
        }
        let q = |after, limit| Query { key: Some("a".into()), after: Some(after), limit, ..Query::default() };
        let first = j.query(&q(0, Some(2)));
        assert_eq!((seqs(&first), first.next), (vec![1, 3], Some(3)));
        let second = j.query(&q(3, Some(2)));
        assert_eq!((seqs(&second), second.next), (vec![4, 6], None));
        assert_eq!(seqs(&j.query(&q(6, None))), Vec::<u64>::new());
    }

    #[test]
    fn long_fields_are_cut_and_marked_and_the_whole_key_still_filters() {
        let j = Journal::new(10, DEFAULT_JOURNAL_BYTES);
        let key = format!("tr_dev_{}", "k".repeat(30_000));
        let path = format!("/api/v3/runs/run_{}", "é".repeat(30_000));
        let request = Request {
            at: Millis(0),
            wall_ms: 0,
            method: "GET",
            path: &path,
            run_id: Some(&path[13..]),
            key: Some(&key),
            token: None,
            status: 404,
            fault: None,
            run_ids: &[],
            trigger_version: None,
        };
        j.push(Record::new(&request));
        let r = &j.query(&Query { key: Some(key.clone()), ..Query::default() }).records[0];
        assert_eq!(r.key(), Some(&key[..KEY_CHARS]));
        assert_eq!(r.path().chars().count(), FIELD_CHARS);
        assert_eq!(r.truncated.names().collect::<Vec<_>>(), ["path", "runId", "key"]);
        let json = serde_json::to_value(r).unwrap_or_default();
        assert_eq!(json["truncated"], serde_json::json!(["path", "runId", "key"]));
        assert!(j.bytes() < 2048, "{}", j.bytes());
        assert!(j.query(&Query { key: Some(format!("{key}x")), ..Query::default() }).records.is_empty());
        let by_id = j.query(&Query { run_id: Some(path[13..].to_owned()), ..Query::default() });
        assert_eq!(by_id.records.len(), 1);
    }

    #[test]
    fn run_ids_and_the_trigger_version_are_kept_bounded_and_found() {
        let j = Journal::new(10, DEFAULT_JOURNAL_BYTES);
        let ids: Vec<String> = (0..100).map(|i| format!("run_{i}")).collect();
        let version = "4".repeat(100);
        let request = Request {
            at: Millis(0),
            wall_ms: 0,
            method: "POST",
            path: "/api/v3/batches/batch_1/items",
            run_id: Some("run_0"),
            key: Some("tr_dev_x"),
            token: None,
            status: 200,
            fault: None,
            run_ids: &ids,
            trigger_version: Some(&version),
        };
        j.push(Record::new(&request));
        let r = &j.query(&Query::default()).records[0];
        // `runId` is not repeated in `runIds`.
        assert_eq!(r.run_ids.len(), MAX_RUN_IDS);
        assert_eq!(r.run_ids.first().map(|id| &**id), Some("run_1"));
        assert_eq!(r.trigger_version().map(str::len), Some(VERSION_CHARS));
        let json = serde_json::to_value(r).unwrap_or_default();
        assert_eq!(json["runIds"][0], "run_1");
        assert_eq!(json["truncated"], serde_json::json!(["triggerVersion"]));
        for (id, found) in [("run_0", 1), ("run_64", 1), ("run_65", 0)] {
            let q = Query { run_id: Some(id.into()), ..Query::default() };
            assert_eq!(j.query(&q).records.len(), found, "{id}");
        }
    }

    #[test]
    fn concurrent_pushes_keep_seq_order_for_paging() {
        let j = Journal::new(10_000, DEFAULT_JOURNAL_BYTES);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let j = &j;
                scope.spawn(move || {
                    for _ in 0..500 {
                        j.push(record(if t % 2 == 0 { "a" } else { "b" }));
                    }
                });
            }
        });
        let all = seqs(&j.query(&Query::default()));
        assert_eq!(all, (1..=2000).collect::<Vec<u64>>());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest() {
        let one = record("a").bytes();
        let j = Journal::new(1000, 3 * one);
        for k in ["a", "b", "c", "d", "e"] {
            j.push(record(k));
        }
        assert_eq!(seqs(&j.query(&Query::default())), [3, 4, 5]);
        assert_eq!(j.bytes(), 3 * one);
    }
}
