//! Scenario files: the format ([`format`]), finding positions in them
//! ([`locate`]) and turning files into checked runs, lifecycles, faults and a
//! rate limit ([`compile`]). Nothing here does I/O except reading the files
//! named on the command line.

pub mod compile;
pub mod format;
pub mod locate;
pub mod tasks;

pub use compile::{Diagnostic, MAX_FILE_BYTES, Scenarios, Source, compile};

use include_dir::Dir;

/// The built-in scenarios, embedded from `fixtures/scenarios/`.
pub fn builtins() -> &'static Dir<'static> {
    crate::catalogue::FIXTURES.get_dir("scenarios").unwrap_or(&EMPTY)
}

static EMPTY: Dir<'static> = Dir::new("", &[]);

/// Names of the built-in scenarios, sorted.
pub fn builtin_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = builtins().files().filter_map(|f| f.path().file_stem()?.to_str()).collect();
    names.sort_unstable();
    names
}

/// The text of a built-in scenario.
pub fn builtin(name: &str) -> Option<&'static str> {
    builtins().get_file(format!("scenarios/{name}.json"))?.contents_utf8()
}
