//! The engine's error type. Each variant keeps its cause and reads as a sentence an
//! operator can act on; [`EngineError::kind`] says what sort of failure it is, which is
//! all an edge needs to choose its answer (each edge maps kinds to statuses once).

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The data dir could not be created or written.
    #[error("data dir {path} is not usable")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The SQLite file could not be opened or migrated (corrupt, locked, unreadable).
    #[error("cannot open the store at {path}")]
    OpenStore {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    /// Embedded migrations failed to apply.
    #[error("cannot migrate the store at {path}")]
    Migrate {
        path: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed after the store was open.
    #[error("the store did not answer")]
    Store(#[from] sqlx::Error),
    /// A write through the group-commit queue failed (shared by every request of its
    /// batch, hence the `Arc`).
    #[error("cannot write to the store")]
    Write(#[source] Arc<sqlx::Error>),
    /// The group-commit task is gone (the store is closing).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The database did not answer in time (PostgreSQL out of reach).
    #[error("the database did not answer within {0:?}")]
    StoreTimeout(std::time::Duration),
    /// A row held a value the engine does not understand.
    #[error("bad value in the store: {0}")]
    Corrupt(String),
    /// The caller's input is wrong in the named field.
    #[error(transparent)]
    Invalid(#[from] crate::model::ValidationError),
    /// No such job or run.
    #[error("{0}")]
    NotFound(String),
    /// The thing already exists (duplicate job id), or is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// The threads jobs run on could not be started.
    #[error("cannot start the threads jobs run on")]
    Threads(#[source] std::io::Error),
    /// The event log could not be created.
    #[error("cannot open the event log in {path}")]
    EventLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What sort of failure an error is: what an edge needs to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such job or run.
    NotFound,
    /// The caller's input, in the named field ([`EngineError::field`]).
    Invalid,
    /// Exists already, or not in a state that allows it.
    Conflict,
    /// The store is busy or out of reach for now: worth retrying shortly.
    Unavailable,
    /// Anything else: a bug or a broken store. Logged with its causes, shown opaquely.
    Internal,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Invalid(_) => ErrorKind::Invalid,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::WriterGone | EngineError::StoreTimeout(_) => ErrorKind::Unavailable,
            EngineError::Store(e) if transient(e) => ErrorKind::Unavailable,
            EngineError::Write(e) if transient(e) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// The field an `Invalid` error names.
    pub fn field(&self) -> Option<&str> {
        match self {
            EngineError::Invalid(v) => Some(&v.field),
            _ => None,
        }
    }
}

/// Failures that pass: a locked or busy SQLite, a pool with no connection free, a
/// connection that dropped.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(d) => {
            let m = d.message();
            // PostgreSQL: a connection problem (08…), a server shutting down or starting
            // (57P01-57P03), a lock or statement timeout (55P03, 57014), a conflict
            // worth retrying (40001, 40P01).
            let code = d.code();
            let pg_transient = code.as_deref().is_some_and(|c| {
                c.starts_with("08")
                    || matches!(
                        c,
                        "57P01" | "57P02" | "57P03" | "55P03" | "57014" | "40001" | "40P01"
                    )
            });
            pg_transient || m.contains("database is locked") || m.contains("database is busy")
        }
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// An error and all its causes, as one line: "cannot write to the store: database is
/// locked". For logs and for reports that must say what actually went wrong.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = EngineError::DataDir {
            path: "/data".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        };
        assert_eq!(chain(&e), "data dir /data is not usable: permission denied");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            EngineError::Store(sqlx::Error::PoolTimedOut).kind(),
            ErrorKind::Unavailable
        );
    }
}
