//! Shared by the engine's integration tests: an engine on a temp data dir.
#![allow(dead_code)]

use engine::{Engine, EngineConfig, Kinds, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Opens an engine on `dir` with the built-in kinds and the system clock.
pub async fn open(
    dir: &std::path::Path,
    http_allow: &[&str],
    allow_shell: bool,
) -> (Engine, CancellationToken, TaskTracker) {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        heartbeat: Duration::from_secs(3600),
        node: "t".into(),
        http_allow: http_allow.iter().map(|s| s.to_string()).collect(),
        allow_shell,
    };
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
