//! EchoPilot's engine: the domain, with no knowledge of the web. The edges (the server's
//! REST API, the dashboard's server functions, the CLI) hold one [`Engine`] handle and
//! call one method per use case; nothing reaches the store but through it.
//!
//! Where things live:
//!
//! - [`engine`]: the [`Engine`] handle — open, shutdown, the scheduler's controls; the use
//!   cases sit beside it in [`jobs`], [`runs`] and [`reads`].
//! - [`scheduler`]: the **leader's** work — which runs exist: due slots, misfire,
//!   catch-up, the firing loop and its watchdog. Runs only while this node leads
//!   ([`leader`]).
//! - [`runner`]: **every node's** work — executing runs: timeout, panic capture,
//!   cancellation, retry, recording the end.
//! - [`store`]: the one store interface and its backends ([`store::sqlite`]).
//! - [`model`]: pure data and validation — jobs, runs, schedules, status, reports.
//! - [`notify`]: "a run changed", "the jobs changed", "leadership moved".
//! - [`cluster`]: several nodes on PostgreSQL — the lease, the registry, the rescue, the
//!   listener.
//! - [`kinds`]: what a job does (noop, http, shell); [`automations`]: the built-ins.
//! - [`outbound`]: the one guarded client for every outbound request; [`secrets`]: which
//!   params are secret, masked and scrubbed.
//! - [`live_log`], [`events`], [`data_dir`], [`clock`], [`config`], [`error`]: the rest.
//! - [`testing`]: the harness tests and benchmarks share.

pub mod alerts;
pub mod apply;
pub mod automations;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod error;
pub mod events;
pub mod jobs;
pub mod kinds;
pub mod leader;
pub mod live_log;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod outbound;
pub mod pause;
pub mod reads;
pub mod runner;
pub mod runs;
pub mod scheduler;
pub mod secrets;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use clock::{Clock, ManualClock, SkewedClock, SystemClock};
pub use config::{EngineConfig, LlmConfig};
pub use engine::Engine;
pub use error::{EngineError, ErrorKind, Result};
pub use kinds::{JobContext, JobFailure, JobResult, Kinds};
pub use live_log::{Follow, RunLog};
pub use model::{
    describe as describe_schedule, Actor, Job, JobSpec, LeaderTerm, Misfire, NodeStatus, Overlap,
    Pause, PauseRequest, PreviewSlot, Run, RunQuery, RunStatus, Schedule, ScheduleError,
    SchedulerState, Status, Trigger, ValidationError, Window, WindowSpec,
};
pub use outbound::{Outbound, Resolver};
pub use reads::{DayFigures, JobSummary, Overview, SchedulePreview};
pub use runner::RunRequest;
pub use runs::{Bulk, BulkDone, RunDetail, RunsPage, RunsRequest, MAX_WAIT};
