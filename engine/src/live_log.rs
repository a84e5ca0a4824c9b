//! Run logs while they are written: each running run has a [`RunLog`] its kind appends
//! to; followers get what was written so far and then every new chunk, until the run ends
//! and the whole log is stored with the run's row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A run log keeps at most this much; later text is dropped with a note.
pub const MAX_LOG: usize = 1024 * 1024;
/// Chunks a slow follower may fall behind by before it skips ahead.
const FOLLOW_BUFFER: usize = 1024;

#[derive(Default)]
struct State {
    text: String,
    truncated: bool,
    /// Scrubs the job's secrets from every chunk before it is kept or sent.
    redactor: crate::secrets::Redactor,
    /// `None` once the run has ended: followers see the channel close.
    live: Option<broadcast::Sender<Arc<str>>>,
}

/// The log of one running run. Cheap to clone; every clone appends to the same log.
#[derive(Clone)]
pub struct RunLog(Arc<Mutex<State>>);

impl Default for RunLog {
    /// A log nobody follows yet; for running a kind outside the engine's runner.
    fn default() -> Self {
        let (tx, _) = broadcast::channel(FOLLOW_BUFFER);
        RunLog(Arc::new(Mutex::new(State {
            live: Some(tx),
            ..State::default()
        })))
    }
}

impl RunLog {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Appends are a push and a send: a poisoned lock still guards whole text.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A log whose chunks are scrubbed of the secrets `redactor` knows.
    pub fn with_redactor(redactor: crate::secrets::Redactor) -> Self {
        let log = RunLog::default();
        log.state().redactor = redactor;
        log
    }

    /// What scrubs this log; the runner scrubs the run's output and error with it too.
    pub fn redactor(&self) -> crate::secrets::Redactor {
        self.state().redactor.clone()
    }

    /// Appends a program's output (kept up to [`MAX_LOG`]) and passes it to followers.
    /// Secrets are scrubbed and control characters other than newline and tab encoded,
    /// so output cannot rewrite what a terminal shows. (A secret split across two chunks
    /// is not recognised; programs print whole lines in practice.)
    pub fn append(&self, chunk: &str) {
        let clean: String = if chunk
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            chunk
                .chars()
                .map(|c| match c {
                    '\n' | '\t' => c.to_string(),
                    c if c.is_control() => c.escape_unicode().to_string(),
                    c => c.to_string(),
                })
                .collect()
        } else {
            chunk.to_string()
        };
        self.push(&clean);
    }

    fn push(&self, chunk: &str) {
        let mut s = self.state();
        if s.truncated || chunk.is_empty() {
            return;
        }
        let scrubbed = s.redactor.text(chunk);
        let chunk = scrubbed.as_str();
        let room = MAX_LOG.saturating_sub(s.text.len());
        let kept: Arc<str> = if chunk.len() <= room {
            chunk.into()
        } else {
            s.truncated = true;
            let mut cut = room;
            while !chunk.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}\n[log truncated at 1 MiB]\n", &chunk[..cut]).into()
        };
        s.text.push_str(&kept);
        if let Some(tx) = &s.live {
            // No followers is the usual case, not an error.
            let _ = tx.send(kept);
        }
    }

    /// The text so far.
    pub fn text(&self) -> String {
        self.state().text.clone()
    }

    /// Appends one line: every control character in it is encoded, so text that came
    /// from outside (a target's name, an error) can never start a line of its own.
    pub fn line(&self, line: &str) {
        self.push(&format!("{}\n", crate::secrets::escape_controls(line)));
    }

    /// Ends the log: followers' streams close; the text is returned for storing.
    fn end(&self) -> String {
        let mut s = self.state();
        s.live = None;
        s.text.clone()
    }
}

/// What a follower gets: the text so far, and the chunks after it while the run lasts.
pub struct Follow {
    pub so_far: String,
    /// `None` when the run had already ended (`so_far` is then the whole log).
    pub live: Option<broadcast::Receiver<Arc<str>>>,
}

/// The logs of the runs in flight, by run id.
#[derive(Default)]
pub(crate) struct LiveLogs(Mutex<HashMap<i64, RunLog>>);

impl LiveLogs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, RunLog>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn open(&self, run_id: i64, redactor: crate::secrets::Redactor) -> RunLog {
        let log = RunLog::with_redactor(redactor);
        self.map().insert(run_id, log.clone());
        log
    }

    /// Ends run `run_id`'s log and returns its text; the run stays followable (closed)
    /// until [`LiveLogs::forget`], so no follower falls between memory and the store.
    pub fn end(&self, log: &RunLog) -> String {
        log.end()
    }

    pub fn forget(&self, run_id: i64) {
        self.map().remove(&run_id);
    }

    /// The text so far and a subscription, taken under one lock so no chunk is lost or
    /// seen twice. `None` when the run is not in flight here.
    pub fn follow(&self, run_id: i64) -> Option<Follow> {
        let log = self.map().get(&run_id)?.clone();
        let s = log.state();
        Some(Follow {
            so_far: s.text.clone(),
            live: s.live.as_ref().map(|tx| tx.subscribe()),
        })
    }
}
