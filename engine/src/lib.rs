//! EchoPilot's engine: the domain, with no knowledge of the web.
//!
//! - [`scheduler`]: the [`Engine`] handle — start, stop, restart, status, heartbeat loop.
//! - [`store`]: the durable store (SQLite via sqlx, embedded migrations).
//! - [`events`]: the JSON-lines event log in `<data dir>/logs/`.
//! - [`clock`]: the injectable clock that time-dependent logic reads.
//! - [`error`]: [`EngineError`].
//!
//! The server (`echopilot` binary) and the dashboard's server functions both drive the
//! engine through one [`Engine`] handle.

pub mod clock;
pub mod error;
pub mod events;
pub mod schedule;
pub mod scheduler;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineError, Result};
pub use schedule::{Schedule, ScheduleError};
pub use scheduler::{Engine, EngineConfig, SchedulerState, Status};
pub use store::{DesiredState, NextRun, Store};
