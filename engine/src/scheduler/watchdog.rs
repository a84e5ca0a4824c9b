//! The watchdog: restarts the firing loop when its heartbeat goes stale while it should
//! be running — a loop that died or hangs is replaced, logged, and counted in status.

use super::lock;
use crate::model::{DesiredState, SchedulerState};
use crate::Engine;

pub(crate) fn spawn(engine: &Engine) {
    let e = engine.clone();
    let shutdown = engine.inner.shutdown.clone();
    engine.spawn(async move {
        let engine = e;
        let every = engine.inner.config.heartbeat;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            if engine.status().state != SchedulerState::Stalled || shutdown.is_cancelled() {
                continue;
            }
            let s = &engine.inner.scheduler;
            let _control = s.control.lock().await;
            if *lock(&s.desired) != DesiredState::Running {
                continue;
            }
            tracing::warn!("the scheduler loop stalled; restarting it");
            super::cancel_loop(&engine);
            *lock(&s.loop_restarts) += 1;
            super::spawn_loop(&engine).await;
            engine.event("loop_restarted", serde_json::json!({ "by": "watchdog" }));
        }
    });
}
