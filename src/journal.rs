//! The request journal: a bounded ring buffer of compact request records, so
//! a test can assert how many requests a client made and how far apart.

use crate::time::Millis;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// One request, as recorded after it was answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// 1, 2, 3… in arrival order; never reused, even after a clear.
    pub seq: u64,
    /// The mock clock when the request arrived (ISO-8601).
    pub at: Millis,
    /// The wall clock when the request arrived, in epoch milliseconds: use it
    /// for the spacing of retries.
    pub wall_ms: i64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The key, or for a public access token the secret key of its
    /// environment (whose scenario state it shares).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A public access token's environment and scopes (never the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<crate::auth::TokenSummary>,
    /// The status sent, or 0 when the connection was reset instead.
    pub status: u16,
    /// The fault applied (`label: action`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// The journal. The lock is held only to push or copy records.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    records: Mutex<VecDeque<Record>>,
    seq: AtomicU64,
}

/// Which records a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub key: Option<String>,
    pub run_id: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

impl Journal {
    /// A journal of at most `capacity` records; 0 switches it off.
    pub fn new(capacity: usize) -> Journal {
        Journal { capacity, records: Mutex::new(VecDeque::with_capacity(capacity.min(4096))), seq: AtomicU64::new(0) }
    }

    /// True when recording.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Appends a record, dropping the oldest when full.
    pub fn push(&self, record: Record) {
        if self.capacity == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The matching records, oldest first.
    pub fn query(&self, q: &Query) -> Vec<Record> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&Record> = records
            .iter()
            .filter(|r| q.key.as_ref().is_none_or(|k| r.key.as_ref() == Some(k)))
            .filter(|r| q.run_id.as_ref().is_none_or(|id| r.run_id.as_ref() == Some(id)))
            .collect();
        let skip = q.limit.map_or(0, |l| matching.len().saturating_sub(l));
        matching.into_iter().skip(skip).cloned().collect()
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(j: &Journal, key: &str) -> Record {
        Record {
            seq: j.next_seq(),
            at: Millis(0),
            wall_ms: 0,
            method: "GET".into(),
            path: "/".into(),
            run_id: None,
            key: Some(key.into()),
            token: None,
            status: 200,
            fault: None,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let j = Journal::new(3);
        for k in ["a", "b", "a", "b", "a"] {
            j.push(record(&j, k));
        }
        let all = j.query(&Query::default());
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
        let a = j.query(&Query { key: Some("a".into()), ..Query::default() });
        assert_eq!(a.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 5]);
        let last = j.query(&Query { limit: Some(1), ..Query::default() });
        assert_eq!(last[0].seq, 5);
        j.clear();
        assert!(j.query(&Query::default()).is_empty());
    }

    #[test]
    fn capacity_zero_records_nothing() {
        let j = Journal::new(0);
        j.push(record(&j, "a"));
        assert!(!j.enabled() && j.query(&Query::default()).is_empty());
    }
}
