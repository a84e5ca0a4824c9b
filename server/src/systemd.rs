//! systemd's notify protocol, for `Type=notify` units (deploy/echopilot.service): `READY=1`
//! once the server listens with its engine open, `WATCHDOG=1` while the scheduler's own
//! heartbeat is fresh (a stalled firing loop stops the pings, and systemd restarts the
//! service), `STOPPING=1` when shutdown begins. Without `NOTIFY_SOCKET` it does nothing.

use engine::{Engine, SchedulerState};
use sd_notify::NotifyState;
use std::time::Duration;

fn send(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the server is ready, and pings its watchdog (when the unit has one)
/// at half its interval for as long as the scheduler is not stalled.
pub fn ready(engine: &Engine) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    send(&[NotifyState::Ready]);
    let Some(usec) = watchdog_usec() else {
        return;
    };
    let every = Duration::from_micros(usec / 2);
    let engine = engine.clone();
    let stop = engine.shutting_down();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            if engine.status().state == SchedulerState::Stalled {
                tracing::error!("the scheduler is stalled: not pinging systemd's watchdog");
                continue;
            }
            send(&[NotifyState::Watchdog]);
        }
    });
}

/// The watchdog interval, as `sd_watchdog_enabled(3)` reads it: `WATCHDOG_USEC`, for this
/// process unless `WATCHDOG_PID` names another. (The crate's own check also insists on
/// `WATCHDOG_PID`, which systemd sets but the protocol does not require.)
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC")
        .ok()?
        .parse()
        .ok()
        .filter(|u| *u > 0)?;
    match std::env::var("WATCHDOG_PID").ok().map(|p| p.parse::<u32>()) {
        Some(Ok(pid)) if pid != std::process::id() => None,
        _ => Some(usec),
    }
}

/// Tells systemd shutdown has begun.
pub fn stopping() {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        send(&[NotifyState::Stopping]);
    }
}
