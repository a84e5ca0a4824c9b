//! The event log: JSON lines of lifecycle events (started, stopped, heartbeat, ...) in
//! `<data dir>/logs/events.<date>.jsonl`, one file a UTC day (mode 0600, like everything
//! in the data dir), pruned by retention. It is for operators and their tools (`tail -f`,
//! `jq`), alongside the store's history.

use crate::error::{EngineError, Result};
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends JSON lines to the day's file.
pub struct EventLog {
    dir: PathBuf,
    /// A std mutex: each write is one short, complete `write_all` of a line and the lock
    /// is never held across an await.
    out: Mutex<Option<(NaiveDate, File)>>,
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
        crate::data_dir::create_private_dir(dir).map_err(err)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            out: Mutex::new(None),
        })
    }

    /// The open file for `day`, opening (creating 0600) a new one when the day changed.
    fn file_for<'a>(
        &self,
        slot: &'a mut Option<(NaiveDate, File)>,
        day: NaiveDate,
    ) -> std::io::Result<&'a mut File> {
        if slot.as_ref().is_none_or(|(d, _)| *d != day) {
            let path = self
                .dir
                .join(format!("events.{}.jsonl", day.format("%Y-%m-%d")));
            *slot = Some((day, crate::data_dir::open_private_append(&path)?));
        }
        match slot {
            Some((_, file)) => Ok(file),
            None => Err(std::io::Error::other("no event log file")),
        }
    }

    /// Writes one event. Failures are logged, never propagated: losing a log line must not
    /// stop the scheduler.
    pub fn write<T: Serialize>(&self, event: &str, fields: T) {
        let ts = Utc::now();
        let line = Line { ts, event, fields };
        let mut text = match serde_json::to_vec(&line) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, event, "event does not serialise");
                return;
            }
        };
        text.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let written = self
            .file_for(&mut out, ts.date_naive())
            .and_then(|f| f.write_all(&text));
        if let Err(e) = written {
            tracing::warn!(error = %e, event, "cannot write the event log");
        }
    }
}

/// Deletes `events.<date>.jsonl` files dated before `cutoff`; returns their names.
pub fn prune(dir: &std::path::Path, cutoff: chrono::NaiveDate) -> std::io::Result<Vec<String>> {
    let mut deleted = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(deleted),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // The event log's files and the server's own log files, one per day each.
        let date = name
            .strip_prefix("events.")
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .or_else(|| {
                name.strip_prefix("echopilot.")
                    .and_then(|rest| rest.strip_suffix(".log"))
            })
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if date.is_some_and(|d| d < cutoff) {
            std::fs::remove_file(entry.path())?;
            deleted.push(name);
        }
    }
    deleted.sort();
    Ok(deleted)
}
