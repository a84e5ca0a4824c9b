//! EchoPilot's engine: the domain, with no knowledge of the web.
//!
//! - [`scheduler`]: the [`Engine`] handle — control (start, stop, restart, status), the
//!   firing loop and watchdog, jobs and runs, crash recovery.
//! - [`schedule`]: cron (with seconds, in an IANA zone) and `@every` schedules.
//! - [`model`]: jobs, runs, policies, validation.
//! - [`kinds`]: what a job does — async functions registered by name.
//! - [`live_log`]: run logs followed live while the run lasts.
//! - [`outbound`]: the one guarded client every outbound request goes through (SSRF
//!   guard, DNS pinning, redirects checked hop by hop, secrets kept to their host).
//! - [`secrets`]: which params are secret; masking, restoring and scrubbing them.
//! - [`http_job`]: the `http` job kind.
//! - [`shell_job`]: the `shell` job kind (argv only, process-group kill), off by default.
//! - [`automations`]: the built-in jobs (self-heal, metrics summary, retention cleanup).
//! - [`store`]: the durable store (SQLite via sqlx, embedded migrations), with group
//!   commit for run rows (`writer`).
//! - [`events`]: the JSON-lines event log in `<data dir>/logs/`.
//! - [`data_dir`]: the data dir and its files, private (0700 / 0600).
//! - [`clock`]: the injectable clock that time-dependent logic reads.
//! - [`error`]: the engine's error type, [`EngineError`].
//!
//! The server (`echopilot` binary) and the dashboard's server functions both drive the
//! engine through one [`Engine`] handle.

pub mod automations;
pub mod clock;
pub mod data_dir;
pub mod error;
pub mod events;
pub mod http_job;
pub mod kinds;
pub mod live_log;
pub mod model;
pub mod outbound;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod shell_job;
pub mod store;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineError, Result};
pub use kinds::{JobContext, JobFailure, JobResult, Kinds};
pub use live_log::{Follow, RunLog};
pub use model::{
    Job, JobSpec, Misfire, Overlap, Run, RunQuery, RunStatus, Trigger, ValidationError,
};
pub use outbound::{Outbound, Resolver};
pub use schedule::{describe as describe_schedule, PreviewSlot, Schedule, ScheduleError};
pub use scheduler::{DayFigures, Engine, EngineConfig, LlmConfig, SchedulerState, Status};
pub use store::{DesiredState, NextRun, Store};
