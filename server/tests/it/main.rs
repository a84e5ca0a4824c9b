//! The server's integration tests, in one binary: the app in-process on port 0 for the API
//! ([`support::spawn_app`]), the real binary as a process where signals, `kill -9`, the
//! environment or start-up itself are under test ([`support::spawn`]).
//!
//! - [`server`]: the walking skeleton — auth, status, intent across restarts, signals,
//!   the PID lock, the key, the CLI.
//! - [`jobs`]: jobs and runs over the API, crash recovery with real processes, live logs.
//! - [`alerts`]: notices to a webhook receiver and an SMTP server on loopback; checks.
//! - [`deploy`]: the systemd unit verified, and the notify protocol it declares.
//! - [`metrics`]: `/metrics` scraped and parsed as Prometheus text.
//! - [`openapi`]: every route's real answers checked against the OpenAPI document.
//! - [`settings`]: the settings file under the environment and the flags; docs in step.
//! - [`security`]: the outside probe's findings, each performed as the attack.

mod alerts;
mod cluster;
mod controls;
mod deploy;
mod jobs;
mod metrics;
mod openapi;
mod security;
mod server;
mod settings;
mod support;
