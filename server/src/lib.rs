//! The `echopilot` binary's library: everything but `main`.
//!
//! - [`config`]: command-line flags and environment (clap).
//! - [`settings`]: the settings file under the environment and the flags.
//! - [`startup`]: builds the server on a listener (data dir, PID lock, key, engine,
//!   router) and runs it until the caller's shutdown signal.
//! - [`auth`]: the guard in front of every route — the key, sessions, the throttle, the
//!   Host check, the audit trail.
//! - [`api`]: REST handlers by resource and the JSON error type.
//! - [`live`]: server-sent event streams (a run's live log, run activity).
//! - [`listener`]: accepts connections (a cap, a header-read timeout, graceful close).
//! - [`pidfile`]: one server per data dir.
//! - [`secret_env`]: secrets leave the environment before the server starts.
//! - [`bench`]: hooks for the benchmark harness (`--bench`).
//! - [`cli`]: the client commands (`echopilot scheduler ...`).
//! - [`telemetry`]: tracing set-up.
//! - [`metrics`]: HTTP requests counted for `/metrics`.
//! - [`systemd`]: the notify protocol (ready, watchdog, stopping) for `Type=notify`.

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod pidfile;
pub mod secret_env;
pub mod settings;
pub mod startup;
pub mod systemd;
pub mod telemetry;
