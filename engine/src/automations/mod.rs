//! Built-in automations: jobs EchoPilot runs for itself, as ordinary job kinds with
//! ordinary schedules (seeded once at first start, then editable like any job).
//!
//! - [`self_heal`]: checks the store, disk, heartbeat, stuck runs and HTTP health targets;
//!   repairs what it can.
//! - [`metrics`]: success rate and durations per job over 24 h; process figures.
//! - [`retention`]: deletes old runs and event-log files, keeps the last N per job.
//! - [`brief`]: the CEO brief (template or an OpenAI-compatible model), optional webhook.
//! - [`finance`]: monthly revenue, expenses, net, MRR, burn, runway from a ledger.
//!
//! Each returns a JSON report as the run's output.

pub mod brief;
pub mod finance;
pub mod metrics;
pub mod retention;
pub mod self_heal;

use crate::kinds::Kinds;
use crate::model::{JobSpec, Overlap};
use crate::Engine;

/// Marks in the store's `meta` table that the built-ins were seeded.
const SEEDED_KEY: &str = "builtin_jobs_seeded_v1";

pub(crate) fn register(kinds: &mut Kinds) {
    kinds
        .register_checked(brief::KIND, brief::run, brief::check_params)
        .register_checked(finance::KIND, finance::run, finance::check_params)
        .register_checked(self_heal::KIND, self_heal::run, self_heal::check_params)
        .register(metrics::KIND, metrics::run)
        .register_checked(retention::KIND, retention::run, retention::check_params);
}

/// The built-in jobs with their default schedules (DESIGN.md).
pub fn default_jobs() -> Vec<JobSpec> {
    let job = |id: &str, name: &str, schedule: &str, timeout: u64| JobSpec {
        id: Some(id.into()),
        name: Some(name.into()),
        kind: Some(id.into()),
        schedule: Some(schedule.into()),
        timeout_secs: Some(timeout),
        overlap: Some(Overlap::Skip),
        ..JobSpec::default()
    };
    vec![
        job(retention::KIND, "Retention cleanup", "0 0 3 * * *", 1800),
        job(self_heal::KIND, "Self-heal", "0 */5 * * * *", 120),
        job(metrics::KIND, "Metrics summary", "0 */15 * * * *", 120),
        job(finance::KIND, "Finance metrics", "0 0 * * * *", 300),
        job(brief::KIND, "CEO brief", "0 0 8 * * *", 120),
    ]
}

/// Creates the built-in jobs on a store that never had them. A job the operator deleted
/// afterwards stays deleted.
pub async fn seed(engine: &Engine) -> crate::Result<()> {
    if engine.fact(SEEDED_KEY).await?.is_some() {
        return Ok(());
    }
    for spec in default_jobs() {
        engine.ensure_job(spec).await?;
    }
    engine
        .record_fact(SEEDED_KEY, &engine.now().to_rfc3339())
        .await
}

/// Free bytes on the file system holding `path`.
pub(crate) fn disk_free(path: &std::path::Path) -> Option<u64> {
    fs4::available_space(path).ok()
}

/// Resident memory of this process, in bytes, from /proc.
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time this process has used, in seconds (/proc/self/schedstat counts nanoseconds).
pub(crate) fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}
