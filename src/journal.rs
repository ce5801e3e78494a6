//! The request journal: compact request records, bounded in count and in
//! bytes, so a test can assert how many requests a client made and how far
//! apart.
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
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// One request, as a listing shows it: decoded from the journal's bytes.
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
    /// The record of `request` as the journal would keep it, its fields cut
    /// to their limits ([`Journal::push`] numbers it).
    pub fn new(request: &Request<'_>) -> Record {
        let cut = codec::Cut::new(request);
        let mut bytes = VecDeque::with_capacity(cut.len);
        cut.write(&mut bytes, 0);
        codec::View(bytes.make_contiguous()).record()
    }

    /// The bytes the journal takes to keep this record, counted against its budget.
    pub fn bytes(&self) -> usize {
        let key_id = if self.key_id.is_some() { codec::KEY_ID } else { 0 };
        let run_ids = codec::list_len(self.run_ids.iter().map(|id| &**id));
        let token = self
            .token
            .as_ref()
            .map_or(0, |t| codec::token_len(t.environment.as_deref(), t.scopes.iter().map(String::as_str)));
        codec::HEAD + key_id + self.text.len() + run_ids + token
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

/// The journal keeps records as bytes, one after the other in a ring per
/// shard: recording one writes a few consecutive cache lines and allocates
/// nothing. Beside the bytes, each shard keeps every record's [`Place`] (its
/// length among them), so dropping the oldest record reads a few bytes that
/// follow one another in memory, not the record. An encoded record is:
///
/// - the head: `seq`, `at` and `wall_ms` (8 bytes each), the status (u16),
///   the cut and present fields (a byte each) and the six texts' lengths
///   (u16 each);
/// - the key's [`KeyId`] when a key was given;
/// - the texts;
/// - the run ids: their count (u8), then each one's length (u16) and text;
/// - a token summary when present: the environment's length (u16, `u16::MAX`
///   for none) and text, whether it was valid (u8), its scopes' count (u8),
///   and each one's length (u16) and text.
///
/// All numbers are little-endian. Every length fits its field: texts are cut
/// to [`FIELD_CHARS`] characters and a token summary to its own limits.
mod codec {
    use super::*;

    const SEQ: usize = 0;
    const AT: usize = 8;
    const WALL: usize = 16;
    const STATUS: usize = 24;
    const TRUNCATED: usize = 26;
    const PRESENT: usize = 27;
    const TEXT_LENS: usize = 28;
    pub const HEAD: usize = TEXT_LENS + 2 * Text::COUNT;
    pub const KEY_ID: usize = 1 + crate::keys::INLINE_KEY_BYTES;
    /// In `present`, after the texts' bits: a key id follows the head; a token summary ends the record.
    const HAS_KEY_ID: u8 = 1 << 6;
    const HAS_TOKEN: u8 = 1 << 7;
    /// The most bytes of a token summary's texts kept (they are far shorter already).
    const TOKEN_TEXT: usize = 1024;

    /// A request cut to what its record keeps, and the length it encodes to.
    pub struct Cut<'a> {
        request: &'a Request<'a>,
        texts: [&'a str; Text::COUNT],
        present: u8,
        truncated: u8,
        pub len: usize,
    }

    /// A token summary's environment and scopes, cut to what a record keeps.
    fn token_texts(t: &crate::auth::TokenSummary) -> (Option<&str>, impl Iterator<Item = &str> + Clone) {
        let environment = t.environment.as_deref().map(|e| prefix(e, TOKEN_TEXT).0);
        (environment, t.scopes.iter().take(usize::from(u8::MAX)).map(|s| prefix(s, TOKEN_TEXT).0))
    }

    /// The bytes a list of texts takes: its count, then each one's length and text.
    pub fn list_len<'s>(items: impl Iterator<Item = &'s str>) -> usize {
        1 + items.map(|s| 2 + s.len()).sum::<usize>()
    }

    /// The bytes a token summary of these texts takes.
    pub fn token_len<'s>(environment: Option<&str>, scopes: impl Iterator<Item = &'s str>) -> usize {
        2 + environment.map_or(0, str::len) + 1 + list_len(scopes)
    }

    /// Where a record's bytes go as they are encoded.
    trait Sink {
        fn put(&mut self, bytes: &[u8]);
    }

    impl Sink for VecDeque<u8> {
        fn put(&mut self, bytes: &[u8]) {
            self.extend(bytes);
        }
    }

    /// A record assembled on the stack, to be appended to its ring with one
    /// copy rather than piece by piece (each piece checks the ring's room and
    /// where it wraps).
    struct Assembled<'b> {
        buf: &'b mut [u8],
        at: usize,
    }

    impl Sink for Assembled<'_> {
        fn put(&mut self, bytes: &[u8]) {
            let end = self.at + bytes.len();
            if let Some(to) = self.buf.get_mut(self.at..end) {
                to.copy_from_slice(bytes);
            }
            debug_assert!(end <= self.buf.len(), "a record fits the length counted for it");
            self.at = end;
        }
    }

    /// Records up to this long are assembled on the stack.
    const ASSEMBLED: usize = 512;

    /// Appends a list of at most 255 texts (see [`list_len`]).
    fn put_list<'s>(out: &mut impl Sink, items: impl Iterator<Item = &'s str> + Clone) {
        out.put(&[u8::try_from(items.clone().count()).unwrap_or(u8::MAX)]);
        for s in items {
            out.put(&short(s.len()).to_le_bytes());
            out.put(s.as_bytes());
        }
    }

    impl<'a> Cut<'a> {
        pub fn new(request: &'a Request<'a>) -> Cut<'a> {
            let fields = [
                Some((request.method, FIELD_CHARS)),
                Some((request.path, FIELD_CHARS)),
                request.run_id.map(|id| (id, FIELD_CHARS)),
                request.key.map(|k| (k, KEY_CHARS)),
                request.fault.map(|f| (f, FIELD_CHARS)),
                request.trigger_version.map(|v| (v, VERSION_CHARS)),
            ];
            let (mut truncated, mut present) = (0u8, 0u8);
            let mut texts = [""; Text::COUNT];
            for (i, field) in fields.iter().enumerate() {
                if let Some((text, max)) = field {
                    let (cut, was_cut) = prefix(text, *max);
                    texts[i] = cut;
                    present |= 1 << i;
                    if was_cut {
                        truncated |= 1 << i;
                    }
                }
            }
            let mut len = HEAD + texts.iter().map(|t| t.len()).sum::<usize>();
            if request.key.is_some() {
                present |= HAS_KEY_ID;
                len += KEY_ID;
            }
            len += list_len(Cut::run_ids(request));
            if let Some(t) = request.token {
                present |= HAS_TOKEN;
                let (environment, scopes) = token_texts(t);
                len += token_len(environment, scopes);
            }
            Cut { request, texts, present, truncated, len }
        }

        fn run_ids(request: &'a Request<'a>) -> impl Iterator<Item = &'a str> + Clone {
            request
                .run_ids
                .iter()
                .filter(move |id| Some(id.as_str()) != request.run_id)
                .take(MAX_RUN_IDS)
                .map(|id| prefix(id, FIELD_CHARS).0)
        }

        /// Appends the record, numbered `seq`.
        pub fn write(&self, out: &mut VecDeque<u8>, seq: u64) {
            let before = out.len();
            if self.len <= ASSEMBLED {
                let mut buf = [0u8; ASSEMBLED];
                let mut assembled = Assembled { buf: &mut buf, at: 0 };
                self.encode(&mut assembled, seq);
                out.extend(&buf[..self.len]);
            } else {
                out.reserve(self.len);
                self.encode(out, seq);
            }
            debug_assert_eq!(out.len() - before, self.len, "a record is as long as counted");
        }

        /// Encodes the record into `out`.
        fn encode(&self, out: &mut impl Sink, seq: u64) {
            let r = self.request;
            let mut head = [0u8; HEAD];
            let mut put = |at: usize, bytes: &[u8]| head[at..at + bytes.len()].copy_from_slice(bytes);
            put(SEQ, &seq.to_le_bytes());
            put(AT, &r.at.0.to_le_bytes());
            put(WALL, &r.wall_ms.to_le_bytes());
            put(STATUS, &r.status.to_le_bytes());
            put(TRUNCATED, &[self.truncated]);
            put(PRESENT, &[self.present]);
            for (i, t) in self.texts.iter().enumerate() {
                put(TEXT_LENS + 2 * i, &short(t.len()).to_le_bytes());
            }
            out.put(&head);
            if let Some(key) = r.key {
                out.put(&KeyId::of(key).to_bytes());
            }
            for t in &self.texts {
                out.put(t.as_bytes());
            }
            put_list(out, Cut::run_ids(r));
            if let Some(t) = r.token {
                let (environment, scopes) = token_texts(t);
                out.put(&environment.map_or(u16::MAX, |e| short(e.len())).to_le_bytes());
                out.put(environment.unwrap_or_default().as_bytes());
                out.put(&[u8::from(t.valid)]);
                put_list(out, scopes);
            }
        }
    }

    /// A length known to fit 16 bits.
    fn short(n: usize) -> u16 {
        u16::try_from(n).unwrap_or(u16::MAX)
    }

    /// One encoded record.
    #[derive(Clone, Copy)]
    pub struct View<'a>(pub &'a [u8]);

    /// A reader of a record's bytes; a short record reads as zeros and empty texts.
    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let start = self.at.min(self.bytes.len());
            let end = self.at.saturating_add(n).min(self.bytes.len());
            self.at = self.at.saturating_add(n);
            &self.bytes[start..end]
        }
        fn u8(&mut self) -> u8 {
            self.take(1).first().copied().unwrap_or(0)
        }
        fn u16(&mut self) -> u16 {
            let b = self.take(2);
            u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)])
        }
        fn str(&mut self, n: usize) -> &'a str {
            std::str::from_utf8(self.take(n)).unwrap_or_default()
        }
        /// A list [`put_list`] wrote.
        fn list(&mut self) -> Vec<&'a str> {
            let count = self.u8();
            (0..count)
                .map(|_| {
                    let n = self.u16();
                    self.str(usize::from(n))
                })
                .collect()
        }
    }

    impl<'a> View<'a> {
        fn fixed<const N: usize>(&self, at: usize) -> [u8; N] {
            let mut out = [0u8; N];
            if let Some(b) = self.0.get(at..at + N) {
                out.copy_from_slice(b);
            }
            out
        }
        fn u64(&self, at: usize) -> u64 {
            u64::from_le_bytes(self.fixed(at))
        }
        fn present(&self) -> u8 {
            self.fixed::<1>(PRESENT)[0]
        }
        fn text_lens(&self) -> [usize; Text::COUNT] {
            std::array::from_fn(|i| usize::from(u16::from_le_bytes(self.fixed(TEXT_LENS + 2 * i))))
        }
        /// Where the texts start.
        fn texts_at(&self) -> usize {
            HEAD + if self.present() & HAS_KEY_ID != 0 { KEY_ID } else { 0 }
        }

        /// The records of a contiguous run of them, `lens` long each.
        pub fn all(bytes: &'a [u8], lens: impl Iterator<Item = usize> + 'a) -> impl Iterator<Item = View<'a>> {
            let mut rest = bytes;
            lens.map_while(move |len| {
                let (one, after) = rest.split_at_checked(len)?;
                rest = after;
                Some(View(one))
            })
        }

        pub fn seq(&self) -> u64 {
            self.u64(SEQ)
        }

        pub fn key_id(&self) -> Option<KeyId> {
            (self.present() & HAS_KEY_ID != 0).then(|| KeyId::from_bytes(self.fixed(HEAD)))
        }

        fn reader(&self, at: usize) -> Reader<'a> {
            Reader { bytes: self.0, at }
        }

        pub fn run_id(&self) -> Option<&'a str> {
            let i = Text::RunId as usize;
            if self.present() & (1 << i) == 0 {
                return None;
            }
            let lens = self.text_lens();
            Some(self.reader(self.texts_at() + lens[..i].iter().sum::<usize>()).str(lens[i]))
        }

        /// The run ids, then a reader at what follows them.
        fn run_ids(&self) -> (Vec<&'a str>, Reader<'a>) {
            let mut r = self.reader(self.texts_at() + self.text_lens().iter().sum::<usize>());
            (r.list(), r)
        }

        pub fn has_run_id(&self, id: &str) -> bool {
            self.run_id() == Some(id) || self.run_ids().0.contains(&id)
        }

        pub fn record(&self) -> Record {
            let lens = self.text_lens();
            let total: usize = lens.iter().sum();
            let text = self.reader(self.texts_at()).str(total);
            let mut ends = [0u32; Text::COUNT];
            let mut end = 0;
            for (i, n) in lens.iter().enumerate() {
                end += n;
                ends[i] = u32::try_from(end).unwrap_or(u32::MAX);
            }
            let (ids, mut r) = self.run_ids();
            let token = (self.present() & HAS_TOKEN != 0).then(|| {
                let env_len = r.u16();
                let environment = (env_len != u16::MAX).then(|| r.str(usize::from(env_len)).to_owned());
                let valid = r.u8() != 0;
                let scopes = r.list().into_iter().map(str::to_owned).collect();
                crate::auth::TokenSummary { environment, scopes, valid }
            });
            Record {
                seq: self.seq(),
                at: Millis(i64::from_le_bytes(self.fixed(AT))),
                wall_ms: i64::from_le_bytes(self.fixed(WALL)),
                text: text.into(),
                ends,
                present: self.present() & ((1 << Text::COUNT) - 1),
                key_id: self.key_id(),
                token,
                status: u16::from_le_bytes(self.fixed(STATUS)),
                truncated: Truncated(self.fixed::<1>(TRUNCATED)[0]),
                run_ids: ids.into_iter().map(Box::from).collect(),
            }
        }
    }
}

/// The bytes prefetched for a shard's next record: most records take 130 to
/// 160 bytes, starting anywhere in a line.
const NEXT_RECORD_BYTES: usize = 3 * crate::prefetch::LINE;

/// How many shards hold the records. A thread records into one shard, chosen
/// when it first records, so the server's workers do not meet on one lock and
/// one buffer; readers lock every shard and merge by `seq`.
const SHARDS: usize = 8;

/// A shard's ring keeps room for at most four times what it holds (and at
/// least this much) once records leave it.
const SHARD_SLACK: usize = 64 << 10;

/// One shard: the encoded records of the threads that chose it, in `seq`
/// order. Each on its own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Records>);

/// A shard's records: their bytes, and the place of each.
#[derive(Debug, Default)]
struct Records {
    bytes: VecDeque<u8>,
    places: VecDeque<Place>,
}

impl Records {
    /// Prefetches where this shard's next record and place will be written
    /// (unless the ring wraps or grows first). They were last written a full
    /// journal ago, so no cache holds them: without this, the stores of
    /// every record waited on the next atomic instruction (perf put 135 ns
    /// of a retrieve on the first one).
    fn prefetch_next(&self) {
        fn end<T>(deque: &VecDeque<T>) -> *const u8 {
            let (front, back) = deque.as_slices();
            let last = if back.is_empty() { front } else { back };
            last.as_ptr_range().end.cast()
        }
        crate::prefetch::for_write(end(&self.bytes), NEXT_RECORD_BYTES);
        crate::prefetch::for_write(end(&self.places), std::mem::size_of::<Place>());
    }

    /// The records, oldest first; the bytes must be contiguous (see [`Journal::all`]).
    fn views(&self) -> impl Iterator<Item = codec::View<'_>> {
        codec::View::all(self.bytes.as_slices().0, self.places.iter().map(|p| p.len as usize))
    }
}

/// Where a record stands: what deciding to drop it needs. Kept beside the
/// bytes, the oldest record's place is a few bytes after the one dropped
/// before it; read from the record, it was a cache miss on every request
/// (the record was written ten thousand records ago).
#[derive(Debug, Clone, Copy)]
struct Place {
    /// Its length in bytes.
    len: u32,
    /// Its place among the records kept (see [`Order::kept`]).
    idx: u64,
    /// The bytes kept before it (see [`Order::total`]).
    start: u64,
}

/// What orders records across the shards. A record is numbered, counted and
/// placed while its thread holds its shard's lock, so a reader holding every
/// shard sees every numbered record or none. This lock is held for a few
/// instructions: a thread preempted while holding it stalls every other.
#[derive(Debug, Default)]
struct Order {
    /// The last sequence number given.
    seq: u64,
    /// Records kept since the start (a clear does not reset it): the record
    /// that was the `idx`-th kept has `kept - idx` newer records.
    kept: u64,
    /// The bytes of every record kept since the start: a record and its
    /// newer records take `total - start` bytes.
    total: u64,
}

/// Records and bytes in the shards, visible or not yet dropped: changed by a
/// thread holding a shard's lock, so exact for a reader holding them all.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Held {
    records: AtomicUsize,
    bytes: AtomicUsize,
}

impl Held {
    /// Adds `records` and `bytes` (either may wrap: a negative change);
    /// returns the new counts.
    fn add(&self, records: usize, bytes: usize) -> (usize, usize) {
        let r = self.records.fetch_add(records, Ordering::Relaxed).wrapping_add(records);
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed).wrapping_add(bytes);
        (r, b)
    }
}

/// The journal: at any moment it shows the newest records that fit both the
/// count and the byte budget, exactly as a single ring that drops its oldest
/// would. A thread drops its own shard's records once newer ones push them
/// out; records left in the shard of a thread that stopped recording are
/// dropped by the next read, or by the next record once they exceed a
/// sixteenth of the count or the budget.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    budget: usize,
    shards: Box<[Shard]>,
    order: Mutex<Order>,
    held: Held,
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

type Ring<'a> = std::sync::MutexGuard<'a, Records>;

impl Journal {
    /// A journal of at most `capacity` records taking at most `budget` bytes;
    /// a capacity or a budget of 0 switches it off.
    pub fn new(capacity: usize, budget: usize) -> Journal {
        let shards = (0..SHARDS).map(|_| Shard::default()).collect();
        Journal { capacity, budget, shards, order: Mutex::new(Order::default()), held: Held::default() }
    }

    /// True when recording: neither the count nor the byte budget is 0.
    pub fn enabled(&self) -> bool {
        self.capacity > 0 && self.budget > 0
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        let mut order = self.order();
        order.seq += 1;
        order.seq
    }

    fn order(&self) -> std::sync::MutexGuard<'_, Order> {
        crate::spin::lock(&self.order)
    }

    /// The calling thread's shard.
    fn own_shard(&self) -> &Shard {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        &self.shards[SHARD.try_with(|i| *i).unwrap_or(0)]
    }

    /// True while the `idx`-th record kept, kept after `start` bytes, is
    /// among the newest records that fit the count and the budget, once
    /// `kept` records of `total` bytes have been.
    fn visible(&self, idx: u64, start: u64, (kept, total): (u64, u64)) -> bool {
        let newer = kept.saturating_sub(idx);
        let bytes = total.saturating_sub(start);
        u128::from(newer) < self.capacity as u128 && u128::from(bytes) <= self.budget as u128
    }

    /// The counts of records kept and of their bytes, now.
    fn kept(&self) -> (u64, u64) {
        let order = self.order();
        (order.kept, order.total)
    }

    /// Drops the oldest records of `ring` that are no longer visible, once
    /// `kept` records and bytes have been, and room the ring no longer
    /// needs; returns how many records and bytes went.
    fn trim(&self, ring: &mut Records, kept: (u64, u64)) -> (usize, usize) {
        let (mut at, mut n) = (0, 0);
        while let Some(place) = ring.places.get(n)
            && !self.visible(place.idx, place.start, kept)
        {
            at += place.len as usize;
            n += 1;
        }
        let at = at.min(ring.bytes.len());
        ring.places.drain(..n);
        ring.bytes.drain(..at);
        let room = ring.bytes.len().max(SHARD_SLACK);
        if ring.bytes.capacity() > 4 * room {
            ring.bytes.shrink_to(2 * room);
        }
        let room = ring.places.len().max(SHARD_SLACK / std::mem::size_of::<Place>());
        if ring.places.capacity() > 4 * room {
            ring.places.shrink_to(2 * room);
        }
        (n, at)
    }

    /// Trims `ring` (see [`Journal::trim`]) and takes what went off the held counts.
    fn trim_held(&self, ring: &mut Records) {
        let (n, bytes) = self.trim(ring, self.kept());
        self.held.add(n.wrapping_neg(), bytes.wrapping_neg());
    }

    /// Records a request, numbered next, dropping the oldest records while
    /// over the count or the byte budget; returns its `seq` (0 when the
    /// journal is off). A record larger than the budget is numbered but not
    /// kept.
    pub fn push(&self, request: &Request<'_>) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let cut = codec::Cut::new(request);
        let mut ring = crate::spin::lock(&self.own_shard().0);
        let (seq, idx, start, kept) = {
            let mut order = self.order();
            order.seq += 1;
            if cut.len > self.budget {
                return order.seq;
            }
            order.kept += 1;
            let start = order.total;
            order.total += cut.len as u64;
            (order.seq, order.kept, start, (order.kept, order.total))
        };
        cut.write(&mut ring.bytes, seq);
        // The length is at most a few tens of kilobytes (see the module's note).
        ring.places.push_back(Place { len: u32::try_from(cut.len).unwrap_or(u32::MAX), idx, start });
        let (n, bytes) = self.trim(&mut ring, kept);
        ring.prefetch_next();
        let (held, held_bytes) = self.held.add(1usize.wrapping_sub(n), cut.len.wrapping_sub(bytes));
        drop(ring);
        let sweep = held.saturating_sub(self.capacity) > self.capacity / 16
            || held_bytes.saturating_sub(self.budget) > self.budget / 16;
        if sweep {
            for shard in &self.shards {
                self.trim_held(&mut crate::spin::lock(&shard.0));
            }
        }
        seq
    }

    /// Every shard, locked in order, with only visible records left and
    /// made contiguous.
    fn all(&self) -> Vec<Ring<'_>> {
        let mut shards: Vec<Ring<'_>> = self.shards.iter().map(|s| crate::spin::lock(&s.0)).collect();
        for ring in &mut shards {
            self.trim_held(ring);
            ring.bytes.make_contiguous();
        }
        shards
    }

    /// The matching records (see [`Query`]), oldest first.
    pub fn query(&self, q: &Query) -> Page {
        let key = q.key.as_deref().map(KeyId::of);
        let run_id = q.run_id.as_deref().map(|id| prefix(id, FIELD_CHARS).0);
        let matches =
            |r: &codec::View<'_>| key.is_none_or(|k| r.key_id() == Some(k)) && run_id.is_none_or(|id| r.has_run_id(id));
        let shards = self.all();
        // Each shard is in `seq` order: the answer is among the first (or the
        // last) `limit` matches of each.
        let mut found: Vec<codec::View<'_>> = Vec::new();
        let (limit, more) = match q.after {
            None => {
                let limit = q.limit.unwrap_or(usize::MAX);
                for ring in &shards {
                    let mine: Vec<codec::View<'_>> = ring.views().filter(matches).collect();
                    found.extend_from_slice(&mine[mine.len().saturating_sub(limit)..]);
                }
                found.sort_unstable_by_key(codec::View::seq);
                let skip = found.len().saturating_sub(limit);
                found.drain(..skip);
                (limit, false)
            }
            Some(after) => {
                let limit = q.limit.unwrap_or(PAGE_RECORDS);
                for ring in &shards {
                    let mine = ring.views().filter(|r| r.seq() > after).filter(matches);
                    found.extend(mine.take(limit.saturating_add(1)));
                }
                found.sort_unstable_by_key(codec::View::seq);
                (limit, found.len() > limit)
            }
        };
        let records: Vec<Record> = found.iter().take(limit).map(codec::View::record).collect();
        let next = records.last().map(|r| r.seq).filter(|_| more);
        Page { records, next }
    }

    /// Forgets every record and releases their memory.
    pub fn clear(&self) {
        let mut shards = self.all();
        let old: Vec<Records> = shards.iter_mut().map(|ring| std::mem::take(&mut **ring)).collect();
        self.held.records.store(0, Ordering::Relaxed);
        self.held.bytes.store(0, Ordering::Relaxed);
        drop(shards);
        drop(old);
    }

    /// How many records are kept.
    pub fn len(&self) -> usize {
        let _shards = self.all();
        self.held.records.load(Ordering::Relaxed)
    }

    /// True when no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the kept records take encoded: at most the budget.
    pub fn bytes(&self) -> usize {
        let _shards = self.all();
        self.held.bytes.load(Ordering::Relaxed)
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> Request<'_> {
        Request {
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
        }
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let j = Journal::new(3, DEFAULT_JOURNAL_BYTES);
        for k in ["a", "b", "a", "b", "a"] {
            j.push(&request(k));
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
        j.push(&request("a"));
        assert!(!j.enabled() && j.query(&Query::default()).records.is_empty());
    }

    #[test]
    fn pages_follow_the_cursor() {
        let j = Journal::new(100, DEFAULT_JOURNAL_BYTES);
        for k in ["a", "b", "a", "a", "b", "a"] {
            j.push(&request(k));
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
        j.push(&request);
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
        j.push(&request);
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
                        j.push(&request(if t % 2 == 0 { "a" } else { "b" }));
                    }
                });
            }
        });
        let all = seqs(&j.query(&Query::default()));
        assert_eq!(all, (1..=2000).collect::<Vec<u64>>());
    }

    #[test]
    fn a_reader_paging_while_threads_record_sees_every_record_once_in_order() {
        let j = Journal::new(100_000, DEFAULT_JOURNAL_BYTES);
        let mut seen = Vec::new();
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| (0..2000).for_each(|_| _ = j.push(&request("a"))));
            }
            let mut after = 0;
            while seen.len() < 6000 {
                let page = j.query(&Query { after: Some(after), limit: Some(97), ..Query::default() });
                if page.records.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                seen.extend(seqs(&page));
                after = seen.last().copied().unwrap_or(0);
            }
        });
        assert_eq!(seen, (1..=6000).collect::<Vec<u64>>());
    }

    #[test]
    fn records_left_by_an_idle_thread_go_without_a_read() {
        let j = Journal::new(160, DEFAULT_JOURNAL_BYTES);
        std::thread::scope(|scope| {
            scope.spawn(|| (0..160).for_each(|_| _ = j.push(&request("idle"))));
        });
        let held = || {
            j.shards
                .iter()
                .map(|s| {
                    let ring = crate::spin::lock(&s.0);
                    // One place per record held, and their lengths sum to the bytes.
                    assert_eq!(ring.places.iter().map(|p| p.len as usize).sum::<usize>(), ring.bytes.len());
                    ring.bytes.len()
                })
                .sum::<usize>()
        };
        let one = held() / 160;
        // Newer records push the idle thread's out of sight at once, and
        // out of memory once they are more than a sixteenth of the count.
        for n in 1..=160 {
            j.push(&request("busy"));
            assert!(held() <= (160 + 160 / 16 + 1) * one, "{n}: {} bytes held", held());
        }
        let keys: Vec<_> = j.query(&Query::default()).records.iter().map(|r| r.key().map(str::to_owned)).collect();
        assert_eq!(keys, vec![Some("busy".to_owned()); 160]);
        // A read drops whatever was left.
        assert_eq!(held(), 160 * one);
    }

    #[test]
    fn an_oversized_token_summary_is_cut_to_what_a_record_can_hold() {
        let token = crate::auth::TokenSummary {
            environment: Some("e".repeat(70_000)),
            scopes: (0..300).map(|i| format!("read:runs:{}", "x".repeat(2000 + i))).collect(),
            valid: false,
        };
        let j = Journal::new(10, usize::MAX);
        j.push(&Request { token: Some(&token), ..request("a") });
        let kept = j.query(&Query::default()).records;
        let t = kept[0].token.clone().unwrap_or_else(|| panic!("no token"));
        assert_eq!(t.environment.map(|e| e.len()), Some(1024));
        assert_eq!(t.scopes.len(), 255);
        assert!(t.scopes.iter().all(|s| s.len() == 1024 && s.starts_with("read:runs:x")));
        assert!(!t.valid);
        assert_eq!(j.bytes(), kept[0].bytes());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest() {
        let one = codec::Cut::new(&request("a")).len;
        let j = Journal::new(1000, 3 * one);
        for k in ["a", "b", "c", "d", "e"] {
            j.push(&request(k));
        }
        assert_eq!(seqs(&j.query(&Query::default())), [3, 4, 5]);
        assert_eq!(j.bytes(), 3 * one);
    }
}
