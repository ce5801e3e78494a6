//! The run store: runs defined by files, and generation for every other
//! well-formed id. Read-only after start-up, so requests share it without
//! locks.

use crate::catalogue::{Defined, Entry};
use crate::convention;
use crate::generate::generate;
use crate::model::Run;
use crate::time::Millis;
use std::borrow::Cow;

/// Where runs come from.
#[derive(Debug)]
pub struct Store {
    defined: Defined,
    seed: u64,
    /// "Now" for generated runs: the clock at start-up, so a run reads the same
    /// on every retrieve.
    anchor: Millis,
    generate: bool,
    /// Generated payloads and outputs this large are offloaded.
    threshold: u64,
}

impl Store {
    /// A store over `defined`, generating other runs from `seed` around
    /// `anchor` when `generate` is on.
    pub fn new(defined: Defined, seed: u64, anchor: Millis, generate: bool, threshold: u64) -> Store {
        Store { defined, seed, anchor, generate, threshold }
    }

    /// The run `id`: defined, generated, or `None` (a 404).
    pub fn get(&self, id: &str) -> Option<Cow<'_, Run>> {
        if let Some(run) = self.defined.runs.get(id) {
            return Some(Cow::Borrowed(run));
        }
        (self.generate && convention::is_well_formed(id)).then(|| {
            let mut run = generate(self.seed, id, convention::status_of(id), self.anchor, None);
            crate::catalogue::offload_generated(&mut run, self.threshold, [false, false]);
            Cow::Owned(run)
        })
    }

    /// A defined run, for resolving relations (generated runs have none).
    pub fn related(&self, id: &str) -> Option<&Run> {
        self.defined.runs.get(id)
    }

    /// The defined runs, sorted by id.
    pub fn entries(&self) -> &[Entry] {
        &self.defined.entries
    }
}
