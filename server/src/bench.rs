//! Hooks for the benchmark harness (`../shared/bench`), on with `--bench`: a job that
//! fires every second and records when it was planned and when its body started, and
//! `GET /api/bench/ticks[?since_ms=N]` to read them.

use crate::startup::AppState;
use axum::extract::{Query, State};
use axum::Json;
use engine::{Engine, JobSpec, Kinds, Overlap};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const JOB_ID: &str = "bench-tick";
/// The harness needs at least the last 300.
const KEEP: usize = 1000;

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Tick {
    pub scheduled_ms: f64,
    pub started_ms: f64,
}

/// The recorded ticks, oldest first.
#[derive(Debug, Default)]
pub struct Ticks(Mutex<VecDeque<Tick>>);

impl Ticks {
    fn push(&self, tick: Tick) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(tick);
    }
}

/// Registers the `bench-tick` kind, recording into `ticks`.
pub fn register(kinds: &mut Kinds, ticks: Arc<Ticks>) {
    kinds.register(JOB_ID, move |ctx| {
        // Read first thing in the body, as the harness contract asks.
        let started = chrono::Utc::now();
        let ticks = ticks.clone();
        async move {
            if let Some(planned) = ctx.scheduled_at {
                ticks.push(Tick {
                    scheduled_ms: planned.timestamp_micros() as f64 / 1000.0,
                    started_ms: started.timestamp_micros() as f64 / 1000.0,
                });
            }
            Ok(serde_json::json!({}))
        }
    });
}

/// Creates the every-second job if it is missing.
pub async fn ensure_job(engine: &Engine) -> engine::Result<()> {
    engine
        .ensure_job(JobSpec {
            id: Some(JOB_ID.into()),
            name: Some("Benchmark tick".into()),
            kind: Some(JOB_ID.into()),
            schedule: Some("* * * * * *".into()),
            overlap: Some(Overlap::Allow),
            timeout_secs: Some(10),
            ..JobSpec::default()
        })
        .await
        .map(|_| ())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Since {
    /// Only ticks planned at or after this (ms since the epoch).
    since_ms: Option<f64>,
}

/// The benchmark job's ticks, oldest first (empty unless the server runs with `--bench`).
#[utoipa::path(get, path = "/api/bench/ticks", tag = "operations", params(Since),
    responses((status = 200, description = "When each tick was planned and when it started.", body = Vec<Tick>)))]
pub async fn ticks(State(state): State<AppState>, Query(q): Query<Since>) -> Json<Vec<Tick>> {
    let Some(ticks) = state.ticks.as_ref() else {
        return Json(Vec::new());
    };
    let q_since = q.since_ms.unwrap_or(f64::MIN);
    let list = ticks.0.lock().unwrap_or_else(|e| e.into_inner());
    Json(
        list.iter()
            .filter(|t| t.scheduled_ms >= q_since)
            .copied()
            .collect(),
    )
}
