//! `--watch`: reload scenario files when they change. Polls modification
//! times (portable, no extra crate); an invalid edit is reported on stderr
//! and the previous version keeps serving.

use crate::app::App;
use crate::scenario::Source;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often files are checked.
pub const INTERVAL: Duration = Duration::from_millis(250);

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches the files of `app`'s sources until the task is dropped.
pub async fn watch(app: App) {
    let mut last: Vec<(PathBuf, Option<(SystemTime, u64)>)> = Vec::new();
    loop {
        let sources = app.sources();
        let now: Vec<(PathBuf, Option<(SystemTime, u64)>)> =
            sources.iter().filter_map(|s| s.path.clone()).map(|p| (p.clone(), stamp(&p))).collect();
        if !last.is_empty() && now != last {
            reload(&app, sources);
        }
        last = now;
        tokio::time::sleep(INTERVAL).await;
    }
}

fn reload(app: &App, sources: Vec<Source>) {
    let mut fresh = Vec::with_capacity(sources.len());
    for source in sources {
        match &source.path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => fresh.push(Source { text, ..source }),
                Err(e) => {
                    eprintln!(
                        "trigger-mock: {}: cannot read the file: {e}; the previous version keeps serving",
                        source.name
                    );
                    return;
                }
            },
            None => fresh.push(source),
        }
    }
    let shown = app.sources();
    match app.reload(fresh) {
        Ok(()) => {
            app.note_reload(None);
            eprintln!("trigger-mock: scenarios reloaded");
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            app.note_reload(Some(problems.iter().map(|p| crate::app::redact(p, &shown)).collect()));
            eprintln!("trigger-mock: the edit is invalid; the previous version keeps serving");
        }
    }
}
