//! The engine's error type. Each variant keeps its cause and reads as a sentence an
//! operator can act on.

use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The data dir could not be created or written.
    #[error("data dir {path} is not usable: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The SQLite file could not be opened or migrated (corrupt, locked, unreadable).
    #[error("cannot open the store at {path}: {source}")]
    OpenStore {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    /// Embedded migrations failed to apply.
    #[error("cannot migrate the store at {path}: {source}")]
    Migrate {
        path: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed after the store was open.
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    /// A write through the group-commit queue failed.
    #[error("cannot write to the store: {0}")]
    Write(String),
    /// A row held a value the engine does not understand.
    #[error("bad value in the store: {0}")]
    Corrupt(String),
    /// The caller's input is wrong in the named field.
    #[error(transparent)]
    Invalid(#[from] crate::model::ValidationError),
    /// No such job or run.
    #[error("{0}")]
    NotFound(String),
    /// The thing already exists (duplicate job id).
    #[error("{0}")]
    Conflict(String),
    /// The event log could not be created.
    #[error("cannot open the event log in {path}: {source}")]
    EventLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
