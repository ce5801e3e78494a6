//! `--watch`: reload scenario files when they change. Polls modification
//! times (portable, no extra crate); an invalid edit is reported on stderr
//! and the previous version keeps serving.

use crate::app::{App, Refusal};
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
            reload(&app).await;
        }
        last = now;
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Re-reads every file-backed source and rebuilds, as one writer with the
/// admin API (see [`App::update`]), on a blocking thread.
async fn reload(app: &App) {
    let outcome = app
        .update_off_thread(|current| {
            let mut fresh = Vec::with_capacity(current.len());
            for source in current {
                // The same loader as at start-up: size limit, UTF-8 and all.
                fresh.push(match &source.path {
                    Some(_) => Source::load(&source.name).map_err(|d| Refusal::Invalid(vec![d]))?,
                    None => source.clone(),
                });
            }
            Ok(fresh)
        })
        .await;
    match outcome {
        Ok(_) => {
            app.note_reload(None);
            crate::reqlog::notice("trigger-mock: scenarios reloaded");
        }
        Err(Refusal::Missing) => {}
        Err(Refusal::Invalid(problems)) => {
            for p in &problems {
                crate::reqlog::notice(&p.to_string());
            }
            let shown = app.sources();
            app.note_reload(Some(problems.iter().map(|p| crate::app::redact(p, &shown)).collect()));
            crate::reqlog::notice("trigger-mock: the edit is invalid; the previous version keeps serving");
        }
    }
}
