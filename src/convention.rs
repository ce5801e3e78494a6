//! The run-id convention: `run_<status>` or `run_<status>_<anything>` names a
//! generated run in that status, so any status can be had with no file.
//!
//! `<status>` is an engine status in lower case (`run_waiting_to_resume`) or a
//! status of either API vocabulary (`run_completed`, `run_frozen`). The
//! longest keyword wins: `run_completed_with_errors` is a failed run,
//! `run_completed_x1` a completed one.

use crate::model::EngineStatus;

/// The longest a run id may be.
pub const MAX_ID_LEN: usize = 128;

/// Keywords that are API status names rather than engine names.
const ALIASES: [(&str, EngineStatus); 6] = [
    ("queued", EngineStatus::Pending),
    ("waiting", EngineStatus::WaitingToResume),
    ("completed", EngineStatus::CompletedSuccessfully),
    ("failed", EngineStatus::CompletedWithErrors),
    ("reattempting", EngineStatus::RetryingAfterFailure),
    ("frozen", EngineStatus::Paused),
];

/// Every keyword with the status it selects.
pub fn keywords() -> &'static [(String, EngineStatus)] {
    static KEYWORDS: std::sync::OnceLock<Vec<(String, EngineStatus)>> = std::sync::OnceLock::new();
    KEYWORDS.get_or_init(|| {
        EngineStatus::ALL
            .into_iter()
            .map(|s| (s.name().to_ascii_lowercase(), s))
            .chain(ALIASES.into_iter().map(|(k, s)| (k.to_owned(), s)))
            .collect()
    })
}

/// True for ids the mock can generate a run for: `run_` and then 1 to 124
/// lower-case letters, digits and underscores (the real ids are lower-case
/// alphanumerics).
pub fn is_well_formed(id: &str) -> bool {
    id.len() <= MAX_ID_LEN
        && id.strip_prefix("run_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// The status the id asks for, if it follows the convention.
pub fn status_of(id: &str) -> Option<EngineStatus> {
    let rest = id.strip_prefix("run_")?;
    keywords()
        .iter()
        .filter(|(kw, _)| rest == kw || rest.strip_prefix(kw.as_str()).is_some_and(|tail| tail.starts_with('_')))
        .max_by_key(|(kw, _)| kw.len())
        .map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_status_is_reachable() {
        for s in EngineStatus::ALL {
            let id = format!("run_{}", s.name().to_ascii_lowercase());
            assert_eq!(status_of(&id), Some(s), "{id}");
            assert_eq!(status_of(&format!("{id}_7")), Some(s), "{id}_7");
        }
    }

    #[test]
    fn longest_keyword_wins() {
        assert_eq!(status_of("run_completed_with_errors"), Some(EngineStatus::CompletedWithErrors));
        assert_eq!(status_of("run_completed_abc"), Some(EngineStatus::CompletedSuccessfully));
        assert_eq!(status_of("run_pending_version_2"), Some(EngineStatus::PendingVersion));
        assert_eq!(status_of("run_waiting"), Some(EngineStatus::WaitingToResume));
        assert_eq!(status_of("run_waiting_for_deploy"), Some(EngineStatus::WaitingForDeploy));
    }

    #[test]
    fn non_keywords_are_not_statuses() {
        assert_eq!(status_of("run_completedx"), None);
        assert_eq!(status_of("run_cm0abcdefghijklmnopqrstu"), None);
        assert_eq!(status_of("completed"), None);
    }

    #[test]
    fn well_formed_ids() {
        assert!(is_well_formed("run_cm0abcdefghijklmnopqrstu"));
        assert!(is_well_formed("run_timed_out_1"));
        assert!(!is_well_formed("run_"));
        assert!(!is_well_formed("run_ABC"));
        assert!(!is_well_formed("run_a-b"));
        assert!(!is_well_formed("batch_abc"));
        assert!(!is_well_formed(&format!("run_{}", "a".repeat(200))));
    }
}
