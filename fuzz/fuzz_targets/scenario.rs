//! Bytes → lossy UTF-8 → one scenario file → `scenario::compile`, then
//! `World::build`. Neither may panic, and every problem must name the file
//! and a line and column inside it, with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trigger_mock::scenario::{self, Diagnostic, Source};
use trigger_mock::time::Millis;
use trigger_mock::world::{DEFAULT_OFFLOAD_THRESHOLD, Settings, World};

const NAME: &str = "fuzz.json";

fn check(text: &str, problems: &[Diagnostic], stage: &str) {
    assert!(!problems.is_empty(), "{stage}: an error without a problem");
    let lines = text.matches('\n').count() + 1;
    for d in problems {
        assert_eq!(d.file, NAME, "{stage}: {d} names another file");
        assert!(d.line >= 1 && d.line <= lines, "{stage}: line {} of {lines} in {d}", d.line);
        assert!(d.column >= 1, "{stage}: column {} in {d}", d.column);
        assert!(!d.message.trim().is_empty(), "{stage}: no message in {d:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let sources = [Source { name: NAME.into(), text: text.clone(), path: None }];
    if let Err(problems) = scenario::compile(&sources) {
        check(&text, &problems, "compile");
        return;
    }
    let settings = Settings {
        seed: 0,
        anchor: Millis(1_767_225_600_000),
        generate: true,
        rate_limit: false,
        offload_threshold: DEFAULT_OFFLOAD_THRESHOLD,
    };
    if let Err(problems) = World::build(&settings, &sources) {
        check(&text, &problems, "World::build");
    }
});
