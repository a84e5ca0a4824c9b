//! Prometheus metrics (`prometheus-client`): what the engine counts as it works — the
//! lag from a claimed slot to its run's start, run durations and outcomes by job, skipped
//! and missed slots by reason, each job's last success, every store operation's latency —
//! and what it reads at scrape time (the scheduler's state, leadership and epoch). The
//! edges add their own families (HTTP requests) to the same registry and serve the text.

use crate::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub job: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub job: String,
    /// `overlap`, `missed`, `paused`, `maintenance`, `queue_full`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: String,
}

/// A histogram per label set, each made with the family's buckets.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type Hist = Histograms<JobLabel>;

/// Every store operation's latency, by operation: one process-wide family (a store is
/// opened before the engine that holds it, and every engine of a process shares the
/// database file or server anyway).
pub(crate) static STORE_OPS: LazyLock<Histograms<OpLabel>> = LazyLock::new(|| {
    Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 18)))
});

/// Records one store operation's latency.
pub(crate) fn store_op(op: &'static str, took: Duration) {
    STORE_OPS
        .get_or_create(&OpLabel { op: op.to_string() })
        .observe(took.as_secs_f64());
}

/// The engine's families and the registry they are in.
pub struct Metrics {
    registry: Mutex<Registry>,
    schedule_lag: Histogram,
    run_duration: Hist,
    runs: Family<RunLabels, Counter>,
    skipped: Family<SkipLabels, Counter>,
    last_success: Family<JobLabel, Gauge<f64, AtomicU64>>,
    state: Family<StateLabel, Gauge>,
    leader: Gauge,
    epoch: Gauge,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let schedule_lag = Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        let run_duration: Hist =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 20)));
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            schedule_lag,
            run_duration,
            runs: Family::default(),
            skipped: Family::default(),
            last_success: Family::default(),
            state: Family::default(),
            leader: Gauge::default(),
            epoch: Gauge::default(),
            in_flight: Gauge::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register(
                "echopilot_schedule_lag_seconds",
                "From a claimed slot's instant to its run's start",
                m.schedule_lag.clone(),
            );
            r.register(
                "echopilot_run_duration_seconds",
                "Runs' durations, by job",
                m.run_duration.clone(),
            );
            r.register(
                "echopilot_runs",
                "Runs ended, by job and status",
                m.runs.clone(),
            );
            r.register("echopilot_slots_skipped", "Slots recorded skipped, by job and reason (overlap, missed, paused, maintenance, queue_full)", m.skipped.clone());
            r.register(
                "echopilot_last_success_timestamp_seconds",
                "When each job last succeeded (Unix time)",
                m.last_success.clone(),
            );
            r.register(
                "echopilot_scheduler_state",
                "1 for the scheduler's state on this node (running, stopped, stalled)",
                m.state.clone(),
            );
            r.register(
                "echopilot_leader",
                "1 while this node leads (always, on SQLite)",
                m.leader.clone(),
            );
            r.register(
                "echopilot_leader_epoch",
                "The leader's epoch this node knows (0 on SQLite)",
                m.epoch.clone(),
            );
            r.register(
                "echopilot_runs_in_flight",
                "Runs executing on this node",
                m.in_flight.clone(),
            );
            r.register("echopilot_store_operation_seconds", "Store operations' latency, by operation (the writes: claim_slot, start_run, finish_run, record_*, …)", STORE_OPS.clone());
        }
        m
    }
}

/// The reason label of a skipped slot, from its ledger reason.
pub(crate) fn skip_reason(reason: &str) -> &'static str {
    match reason.split(':').next().unwrap_or_default() {
        "missed" => "missed",
        "paused" => "paused",
        "maintenance" => "maintenance",
        _ if reason == crate::store::SKIPPED_QUEUE_FULL => "queue_full",
        _ => "overlap",
    }
}

impl Metrics {
    pub(crate) fn run_started(&self, lag: Option<chrono::Duration>) {
        if let Some(lag) = lag.and_then(|l| l.to_std().ok()) {
            self.schedule_lag.observe(lag.as_secs_f64());
        }
    }

    pub(crate) fn run_ended(
        &self,
        job: &str,
        status: &str,
        took: Option<chrono::Duration>,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let label = JobLabel {
            job: job.to_string(),
        };
        if let Some(took) = took.and_then(|t| t.to_std().ok()) {
            self.run_duration
                .get_or_create(&label)
                .observe(took.as_secs_f64());
        }
        self.runs
            .get_or_create(&RunLabels {
                job: job.to_string(),
                status: status.to_string(),
            })
            .inc();
        if status == "succeeded" {
            self.last_success
                .get_or_create(&label)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
    }

    pub(crate) fn skipped(&self, job: &str, reason: &str, n: u64) {
        self.skipped
            .get_or_create(&SkipLabels {
                job: job.to_string(),
                reason: skip_reason(reason).to_string(),
            })
            .inc_by(n);
    }
}

impl Engine {
    /// Adds a family of the edges' own (HTTP requests, say) to the registry `/metrics`
    /// serves.
    pub fn register_metric(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .metrics
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// Every metric in the Prometheus text format, the scheduler's state, leadership and
    /// runs in flight read now.
    pub fn metrics_text(&self) -> String {
        let m = &self.inner.metrics;
        let status = self.status();
        let current = serde_json::to_value(status.state).unwrap_or_default();
        for state in ["running", "stopped", "stalled"] {
            let now = i64::from(current == state);
            m.state
                .get_or_create(&StateLabel {
                    state: state.into(),
                })
                .set(now);
        }
        m.leader.set(i64::from(status.leader));
        m.epoch.set(crate::leader::epoch(self).unwrap_or(0));
        m.in_flight.set(status.active_runs as i64);
        let mut text = String::new();
        let registry = m.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }
}
