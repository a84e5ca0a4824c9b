//! The engine's records, pure data with their validation — no store, no runtime:
//!
//! - [`job`]: jobs, their policies (overlap, misfire) and how a spec becomes a job.
//! - [`run`]: runs, their triggers and statuses, run listings.
//! - [`schedule`]: cron (with seconds, in an IANA zone) and `@every` schedules.
//! - [`status`]: the scheduler's state, intent and heartbeats.
//! - [`report`]: figures over the run history and the audit log's entries.

/// `as_str` / `parse` for enums stored and shown as text.
macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(<$t>::$v),)+ _ => None }
            }
        }
    };
}

pub mod alert;
pub mod job;
pub mod maintenance;
pub mod pause;
pub mod report;
pub mod run;
pub mod schedule;
pub mod status;

pub use job::{
    validate_id, Job, JobSpec, Misfire, Overlap, ValidationError, DEFAULT_TIMEOUT_SECS,
    MAX_RETRY_BACKOFF_SECS,
};
pub use maintenance::{OpenWindow, Window, WindowSpec};
pub use pause::{Pause, PauseRequest};

/// Who asks for a change: the credential (`key`, or a dashboard session's tag), recorded
/// as a pause's owner and a cancel's author. The edges put it on each request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);
pub use report::{AuditEntry, HourCount, JobStats};
pub use run::{Run, RunQuery, RunStatus, Trigger};
pub use schedule::{describe, PreviewSlot, Schedule, ScheduleError};
pub use status::{
    DesiredState, Heartbeat, LeaderTerm, NextRun, NodeInfo, NodeStatus, SchedulerState, Status,
};
