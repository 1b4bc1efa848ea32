//! The states of a scan job and the one rule that says which state may follow which
//! (docs/job.md, "States and transitions").
//!
//! ```text
//! Planned -> Discovering -> Snapshotting -> Sharing -> Networking -> Launching -> Scanning
//!         -> Collecting -> TearingDown -> Done | Failed | Cancelled
//! ```
//!
//! # Guarantees
//!
//! - [`can_transition`] allows exactly: one step forward on the path above; any non-terminal state
//!   to `TearingDown` (teardown always runs, whatever went wrong and whenever a cancel arrives);
//!   `TearingDown` to `Done`, `Failed` or `Cancelled`. Nothing leaves a terminal state, and no state
//!   follows itself (a resumed job carries on in its state, it does not re-enter it).
//! - Every match on [`JobState`] here lists every state: adding a state fails to compile until the
//!   rule says where it fits.
//!
//! # Caveats
//!
//! The stored names ([`JobState::as_str`]) are part of the ledger's schema: renaming one needs a
//! migration (`schema.rs`).

use std::fmt;
use std::str::FromStr;

/// The state of a scan job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    /// Recorded, nothing done yet.
    Planned,
    /// Resolving the targets (`--instance`, `--tag`, `--all`) and their volumes.
    Discovering,
    /// Creating the snapshots and waiting for them to complete.
    Snapshotting,
    /// Making the snapshots usable by the scanners (KMS grants, copies, permissions).
    Sharing,
    /// Building the job's ephemeral network.
    Networking,
    /// Launching the scanner instances.
    Launching,
    /// Scanners are running.
    Scanning,
    /// Receiving the result bundles.
    Collecting,
    /// Removing everything the job created.
    TearingDown,
    /// Torn down after a completed scan.
    Done,
    /// Torn down after an error.
    Failed,
    /// Torn down after a cancel.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of the forward path (terminal states last).
    pub const ALL: [JobState; 12] = [
        JobState::Planned,
        JobState::Discovering,
        JobState::Snapshotting,
        JobState::Sharing,
        JobState::Networking,
        JobState::Launching,
        JobState::Scanning,
        JobState::Collecting,
        JobState::TearingDown,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The name stored in the ledger and printed to users (as in docs/job.md).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Planned => "Planned",
            JobState::Discovering => "Discovering",
            JobState::Snapshotting => "Snapshotting",
            JobState::Sharing => "Sharing",
            JobState::Networking => "Networking",
            JobState::Launching => "Launching",
            JobState::Scanning => "Scanning",
            JobState::Collecting => "Collecting",
            JobState::TearingDown => "TearingDown",
            JobState::Done => "Done",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Cancelled",
        }
    }

    /// `Done`, `Failed` and `Cancelled`: the job is over and owns nothing any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        match self {
            JobState::Done | JobState::Failed | JobState::Cancelled => true,
            JobState::Planned
            | JobState::Discovering
            | JobState::Snapshotting
            | JobState::Sharing
            | JobState::Networking
            | JobState::Launching
            | JobState::Scanning
            | JobState::Collecting
            | JobState::TearingDown => false,
        }
    }

    /// The next state on the forward path, `None` from `TearingDown` (which has three possible
    /// ends) and from the terminal states.
    #[must_use]
    pub fn next(self) -> Option<JobState> {
        match self {
            JobState::Planned => Some(JobState::Discovering),
            JobState::Discovering => Some(JobState::Snapshotting),
            JobState::Snapshotting => Some(JobState::Sharing),
            JobState::Sharing => Some(JobState::Networking),
            JobState::Networking => Some(JobState::Launching),
            JobState::Launching => Some(JobState::Scanning),
            JobState::Scanning => Some(JobState::Collecting),
            JobState::Collecting => Some(JobState::TearingDown),
            JobState::TearingDown | JobState::Done | JobState::Failed | JobState::Cancelled => None,
        }
    }
}

/// Whether a job in state `from` may go to state `to` (see the module's guarantees).
#[must_use]
pub fn can_transition(from: JobState, to: JobState) -> bool {
    match from {
        JobState::Planned
        | JobState::Discovering
        | JobState::Snapshotting
        | JobState::Sharing
        | JobState::Networking
        | JobState::Launching
        | JobState::Scanning
        | JobState::Collecting => to == JobState::TearingDown || from.next() == Some(to),
        JobState::TearingDown => to.is_terminal(),
        JobState::Done | JobState::Failed | JobState::Cancelled => false,
    }
}

/// A string that is not the name of a job state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a job state (one of Planned, Discovering, Snapshotting, Sharing, Networking, Launching, Scanning, Collecting, TearingDown, Done, Failed, Cancelled)"
)]
pub struct UnknownJobState(pub String);

impl FromStr for JobState {
    type Err = UnknownJobState;
    fn from_str(s: &str) -> Result<JobState, UnknownJobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s).ok_or_else(|| {
            // Cut what we echo back: the text may come from a damaged file.
            UnknownJobState(s.chars().take(80).collect())
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("planned".parse::<JobState>().is_err(), "names are case-sensitive");
    }
}
