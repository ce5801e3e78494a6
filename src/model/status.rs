//! Run statuses: the one engine status a run holds, the API versions a client
//! can ask for, and the status vocabulary each version renders.

use serde::Serialize;

/// The status a run holds inside the mock: the server's database status
/// (`TaskRunStatus`). Clients never see these names directly; they see an
/// [`ApiStatus`] chosen by [`EngineStatus::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EngineStatus {
    /// Triggered with a delay that has not passed yet.
    Delayed,
    /// Waiting for a worker version that can run it.
    PendingVersion,
    /// The legacy name of [`EngineStatus::PendingVersion`].
    WaitingForDeploy,
    /// In the queue.
    Pending,
    /// Taken off the queue, not yet executing.
    Dequeued,
    /// Executing an attempt.
    Executing,
    /// An attempt failed; another one is coming.
    RetryingAfterFailure,
    /// Paused (checkpointed).
    Paused,
    /// Waiting on a wait point (a child run, a delay, a token).
    WaitingToResume,
    /// Finished with an output.
    CompletedSuccessfully,
    /// Canceled by a user.
    Canceled,
    /// Finished with an error.
    CompletedWithErrors,
    /// Interrupted (legacy engine).
    Interrupted,
    /// The worker crashed.
    Crashed,
    /// The platform failed.
    SystemFailure,
    /// Its TTL passed before it was dequeued.
    Expired,
    /// Exceeded its `maxDuration`.
    TimedOut,
}

impl EngineStatus {
    /// Every engine status, in the order the docs list their lifecycle.
    pub const ALL: [EngineStatus; 17] = [
        EngineStatus::Delayed,
        EngineStatus::PendingVersion,
        EngineStatus::WaitingForDeploy,
        EngineStatus::Pending,
        EngineStatus::Dequeued,
        EngineStatus::Executing,
        EngineStatus::RetryingAfterFailure,
        EngineStatus::Paused,
        EngineStatus::WaitingToResume,
        EngineStatus::CompletedSuccessfully,
        EngineStatus::Canceled,
        EngineStatus::CompletedWithErrors,
        EngineStatus::Interrupted,
        EngineStatus::Crashed,
        EngineStatus::SystemFailure,
        EngineStatus::Expired,
        EngineStatus::TimedOut,
    ];

    /// The database name, e.g. `COMPLETED_SUCCESSFULLY`.
    pub fn name(self) -> &'static str {
        match self {
            EngineStatus::Delayed => "DELAYED",
            EngineStatus::PendingVersion => "PENDING_VERSION",
            EngineStatus::WaitingForDeploy => "WAITING_FOR_DEPLOY",
            EngineStatus::Pending => "PENDING",
            EngineStatus::Dequeued => "DEQUEUED",
            EngineStatus::Executing => "EXECUTING",
            EngineStatus::RetryingAfterFailure => "RETRYING_AFTER_FAILURE",
            EngineStatus::Paused => "PAUSED",
            EngineStatus::WaitingToResume => "WAITING_TO_RESUME",
            EngineStatus::CompletedSuccessfully => "COMPLETED_SUCCESSFULLY",
            EngineStatus::Canceled => "CANCELED",
            EngineStatus::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
            EngineStatus::Interrupted => "INTERRUPTED",
            EngineStatus::Crashed => "CRASHED",
            EngineStatus::SystemFailure => "SYSTEM_FAILURE",
            EngineStatus::Expired => "EXPIRED",
            EngineStatus::TimedOut => "TIMED_OUT",
        }
    }

    /// The status a client sees under `version` (the server's
    /// `ApiRetrieveRunPresenter` mapping).
    pub fn render(self, version: ApiVersion) -> ApiStatus {
        use ApiStatus as A;
        use EngineStatus as E;
        let current = version == ApiVersion::V20250716;
        match self {
            E::Delayed => A::Delayed,
            E::PendingVersion => A::PendingVersion,
            E::WaitingForDeploy if current => A::PendingVersion,
            E::WaitingForDeploy => A::WaitingForDeploy,
            E::Pending => A::Queued,
            E::Dequeued if current => A::Dequeued,
            E::Dequeued | E::Executing => A::Executing,
            E::RetryingAfterFailure if current => A::Executing,
            E::RetryingAfterFailure => A::Reattempting,
            E::Paused | E::WaitingToResume if current => A::Waiting,
            E::Paused | E::WaitingToResume => A::Frozen,
            E::CompletedSuccessfully => A::Completed,
            E::Canceled => A::Canceled,
            E::CompletedWithErrors => A::Failed,
            E::Interrupted if current => A::Failed,
            E::Interrupted => A::Interrupted,
            E::Crashed => A::Crashed,
            E::SystemFailure => A::SystemFailure,
            E::Expired => A::Expired,
            E::TimedOut => A::TimedOut,
        }
    }

    /// Where the run is in its life, which decides the timestamps and the
    /// fields it carries.
    pub fn phase(self) -> Phase {
        use EngineStatus as E;
        match self {
            E::Delayed => Phase::Delayed,
            E::PendingVersion | E::WaitingForDeploy | E::Pending => Phase::Queued,
            E::Dequeued | E::Executing | E::RetryingAfterFailure | E::Paused | E::WaitingToResume => Phase::Started,
            E::CompletedSuccessfully => Phase::Succeeded,
            E::CompletedWithErrors | E::Interrupted | E::Crashed | E::SystemFailure | E::TimedOut => Phase::Failed,
            E::Canceled => Phase::Canceled,
            E::Expired => Phase::Expired,
        }
    }

    /// True once the run can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(self.phase(), Phase::Succeeded | Phase::Failed | Phase::Canceled | Phase::Expired)
    }
}

/// The coarse stage of a run's life, shared by several engine statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for its `delayedUntil`.
    Delayed,
    /// Enqueued, never started.
    Queued,
    /// Started: executing, dequeued, retrying or waiting.
    Started,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error (including crashes and timeouts).
    Failed,
    /// Canceled (it may have started first).
    Canceled,
    /// Expired in the queue; it never started.
    Expired,
}

/// The API version a request asks for with `x-trigger-api-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// No header, or one the server does not know: the documented vocabulary.
    Unversioned,
    /// `2025-07-16`, sent by the v4 SDK: the current vocabulary.
    V20250716,
}

impl ApiVersion {
    /// Both versions, for tests and snapshots.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::Unversioned, ApiVersion::V20250716];

    /// The request header that selects a version.
    pub const HEADER: &'static str = "x-trigger-api-version";

    /// [`ApiVersion::HEADER`] as a header name: looking a header up by a
    /// ready name skips parsing and checking the text on every request.
    pub fn header_name() -> &'static hyper::header::HeaderName {
        static NAME: hyper::header::HeaderName = hyper::header::HeaderName::from_static(ApiVersion::HEADER);
        &NAME
    }

    /// The version a header value selects; anything unknown is unversioned,
    /// as on the real server.
    pub fn from_header(value: Option<&[u8]>) -> ApiVersion {
        match value {
            Some(b"2025-07-16") => ApiVersion::V20250716,
            _ => ApiVersion::Unversioned,
        }
    }

    /// A short name for file names and flags.
    pub fn slug(self) -> &'static str {
        match self {
            ApiVersion::Unversioned => "unversioned",
            ApiVersion::V20250716 => "2025-07-16",
        }
    }
}

/// A status as a client sees it: the union of both vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiStatus {
    PendingVersion,
    WaitingForDeploy,
    Delayed,
    Queued,
    Dequeued,
    Executing,
    Reattempting,
    Frozen,
    Waiting,
    Completed,
    Canceled,
    Failed,
    Crashed,
    Interrupted,
    SystemFailure,
    Expired,
    TimedOut,
}

/// The seven status helpers the server derives from the API status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFlags {
    pub is_queued: bool,
    pub is_executing: bool,
    pub is_waiting: bool,
    pub is_completed: bool,
    pub is_success: bool,
    pub is_failed: bool,
    pub is_cancelled: bool,
}

impl ApiStatus {
    /// The boolean helpers (`apiBooleanHelpersFromRunStatus`): EXPIRED and
    /// TIMED_OUT set none of them, and CANCELED counts as failed.
    pub fn flags(self) -> StatusFlags {
        use ApiStatus as A;
        let is_completed =
            matches!(self, A::Completed | A::Canceled | A::Failed | A::Crashed | A::Interrupted | A::SystemFailure);
        StatusFlags {
            is_queued: matches!(self, A::Queued | A::WaitingForDeploy | A::Delayed | A::PendingVersion),
            is_executing: matches!(self, A::Executing | A::Reattempting | A::Frozen | A::Dequeued),
            is_waiting: self == A::Waiting,
            is_completed,
            is_success: self == A::Completed,
            is_failed: is_completed && self != A::Completed,
            is_cancelled: self == A::Canceled,
        }
    }

    /// The wire name, e.g. `TIMED_OUT`.
    pub fn name(self) -> &'static str {
        match self {
            ApiStatus::PendingVersion => "PENDING_VERSION",
            ApiStatus::WaitingForDeploy => "WAITING_FOR_DEPLOY",
            ApiStatus::Delayed => "DELAYED",
            ApiStatus::Queued => "QUEUED",
            ApiStatus::Dequeued => "DEQUEUED",
            ApiStatus::Executing => "EXECUTING",
            ApiStatus::Reattempting => "REATTEMPTING",
            ApiStatus::Frozen => "FROZEN",
            ApiStatus::Waiting => "WAITING",
            ApiStatus::Completed => "COMPLETED",
            ApiStatus::Canceled => "CANCELED",
            ApiStatus::Failed => "FAILED",
            ApiStatus::Crashed => "CRASHED",
            ApiStatus::Interrupted => "INTERRUPTED",
            ApiStatus::SystemFailure => "SYSTEM_FAILURE",
            ApiStatus::Expired => "EXPIRED",
            ApiStatus::TimedOut => "TIMED_OUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn vocabulary(version: ApiVersion) -> BTreeSet<&'static str> {
        EngineStatus::ALL.iter().map(|s| s.render(version).name()).collect()
    }

    #[test]
    fn current_vocabulary_is_the_sdk_enum() {
        let sdk = [
            "PENDING_VERSION",
            "QUEUED",
            "DEQUEUED",
            "EXECUTING",
            "WAITING",
            "COMPLETED",
            "CANCELED",
            "FAILED",
            "CRASHED",
            "SYSTEM_FAILURE",
            "DELAYED",
            "EXPIRED",
            "TIMED_OUT",
        ];
        assert_eq!(vocabulary(ApiVersion::V20250716), sdk.into_iter().collect());
    }

    #[test]
    fn unversioned_vocabulary_is_the_documented_one_plus_what_the_server_sends() {
        let documented = [
            "DELAYED",
            "WAITING_FOR_DEPLOY",
            "QUEUED",
            "EXECUTING",
            "REATTEMPTING",
            "FROZEN",
            "COMPLETED",
            "CANCELED",
            "FAILED",
            "CRASHED",
            "INTERRUPTED",
            "SYSTEM_FAILURE",
            "PENDING_VERSION",
            "EXPIRED",
            "TIMED_OUT",
        ];
        assert_eq!(vocabulary(ApiVersion::Unversioned), documented.into_iter().collect());
    }

    #[test]
    fn expired_and_timed_out_set_no_helper() {
        assert_eq!(ApiStatus::Expired.flags(), StatusFlags::default());
        assert_eq!(ApiStatus::TimedOut.flags(), StatusFlags::default());
    }

    #[test]
    fn canceled_is_failed_and_cancelled() {
        let f = ApiStatus::Canceled.flags();
        assert!(f.is_completed && f.is_failed && f.is_cancelled && !f.is_success);
    }

    #[test]
    fn every_api_status_sets_at_most_one_stage_helper() {
        for version in ApiVersion::ALL {
            for engine in EngineStatus::ALL {
                let f = engine.render(version).flags();
                let stages = [f.is_queued, f.is_executing, f.is_waiting, f.is_completed];
                assert!(stages.iter().filter(|b| **b).count() <= 1, "{engine:?}");
            }
        }
    }

    #[test]
    fn unknown_api_version_header_is_unversioned() {
        assert_eq!(ApiVersion::from_header(Some(b"2025-07-16")), ApiVersion::V20250716);
        assert_eq!(ApiVersion::from_header(Some(b"2024-01-01")), ApiVersion::Unversioned);
        assert_eq!(ApiVersion::from_header(None), ApiVersion::Unversioned);
    }
}
