//! The engine's integration tests, in one binary (one link instead of six): a real
//! SQLite file per test, a real runtime, real processes and servers on loopback, an
//! injected clock where time matters.
//!
//! - [`store`]: the store conformance suite — every operation's contract, per backend.
//! - [`scheduling`]: firing, misfire, overlap, recovery, retries, liveness, built-ins.
//! - [`dst`]: daylight-saving rules over two years of four zones.
//! - [`http`]: outbound requests, the SSRF guard, secrets in what runs print.
//! - [`shell`]: shell jobs (argv only, process groups, live output).
//! - [`alerts`]: incidents on the injected clock, deliveries to real peers on loopback.
//! - [`brief`]: the CEO brief against a small OpenAI-compatible server.

mod alerts;
mod brief;
mod controls;
mod dst;
mod http;
mod scheduling;
mod shell;
mod store;
mod support;
