//! The event log: JSON lines of lifecycle events (started, stopped, heartbeat, ...) in
//! `<data dir>/logs/events.<date>.jsonl`, one file a day, old files pruned. It is for
//! operators and their tools (`tail -f`, `jq`), alongside the store's history.

use crate::error::{EngineError, Result};
use chrono::Utc;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// How many daily files the appender itself keeps; retention may prune sooner.
const MAX_FILES: usize = 90;

/// Appends JSON lines to the rolling event log.
pub struct EventLog {
    /// A std mutex: each write is one short, complete `write_all` of a line and the lock
    /// is never held across an await.
    out: Mutex<RollingFileAppender>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    ts: chrono::DateTime<Utc>,
    event: &'a str,
    #[serde(flatten)]
    fields: T,
}

impl EventLog {
    /// Opens (creating) the log directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let err = |source| EngineError::EventLog {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix("events")
            .filename_suffix("jsonl")
            .max_log_files(MAX_FILES)
            .build(dir)
            .map_err(|e| err(std::io::Error::other(e)))?;
        Ok(Self {
            out: Mutex::new(appender),
        })
    }

    /// Writes one event. Failures are logged, never propagated: losing a log line must not
    /// stop the scheduler.
    pub fn write<T: Serialize>(&self, event: &str, fields: T) {
        let line = Line {
            ts: Utc::now(),
            event,
            fields,
        };
        let mut text = match serde_json::to_vec(&line) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, event, "event does not serialise");
                return;
            }
        };
        text.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, event, "cannot write the event log");
        }
    }
}
