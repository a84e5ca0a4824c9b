//! Shared by the engine's integration tests: an engine on a temp data dir.
#![allow(dead_code)]

use engine::{Engine, EngineConfig, Kinds, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The configuration tests start from: a temp data dir, hourly heartbeats, ledgers from
/// the data dir and the repository's `examples/`.
pub fn config(dir: &std::path::Path, http_allow: &[&str], allow_shell: bool) -> EngineConfig {
    EngineConfig {
        heartbeat: Duration::from_secs(3600),
        node: "t".into(),
        http_allow: http_allow.iter().map(|s| s.to_string()).collect(),
        allow_shell,
        ledger_dirs: vec![dir.to_path_buf(), "../examples".into()],
        ..EngineConfig::new(dir)
    }
}

/// Opens an engine on `dir` with the built-in kinds and the system clock.
pub async fn open(
    dir: &std::path::Path,
    http_allow: &[&str],
    allow_shell: bool,
) -> (Engine, CancellationToken, TaskTracker) {
    open_with(config(dir, http_allow, allow_shell)).await
}

pub async fn open_with(config: EngineConfig) -> (Engine, CancellationToken, TaskTracker) {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let engine = Engine::open(
        config,
        Kinds::builtin(),
        Arc::new(SystemClock),
        token.clone(),
        tracker.clone(),
    )
    .await
    .expect("engine opens");
    (engine, token, tracker)
}
