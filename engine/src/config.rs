//! How the engine is set up: the server fills [`EngineConfig`] from its flags and
//! environment, in one place; tests start from [`EngineConfig::new`].

use std::path::PathBuf;
use std::time::Duration;

/// How the engine is set up; the server fills it from flags, env and config.
#[derive(Clone)]
pub struct EngineConfig {
    /// Where the SQLite file, logs and everything else the engine writes live.
    pub data_dir: PathBuf,
    /// How often the scheduler records a heartbeat. Status says `stalled` past twice this.
    pub heartbeat: Duration,
    /// This node's name in heartbeats and runs.
    pub node: String,
    /// Hosts (names or IP addresses) HTTP jobs may reach even though they are loopback,
    /// private or link-local.
    pub http_allow: Vec<String>,
    /// Whether `shell` jobs may be created and run.
    pub allow_shell: bool,
    /// Directories `finance-metrics` may read a ledger file from.
    pub ledger_dirs: Vec<PathBuf>,
    /// The model endpoint the CEO brief asks, when configured.
    pub llm: LlmConfig,
    /// `postgres://…` for several nodes on one PostgreSQL; `None` for SQLite in the data
    /// dir. (Holds a password: never shown unmasked.)
    pub database_url: Option<String>,
    /// How long the leader's lease (and a node's registration) lasts unrenewed.
    pub lease_ttl: Duration,
    /// Read time as the database's clock (the wall clock corrected by the offset measured
    /// at each lease renewal), so a node whose clock is off still fires on time. Only
    /// meaningful on PostgreSQL; tests with a hand-moved clock leave it off.
    pub follow_db_clock: bool,
    /// A URL every node GETs every `heartbeat_url_every`, so a monitor elsewhere notices
    /// when EchoPilot is gone (healthchecks.io, Uptime Kuma's push monitor).
    pub heartbeat_url: Option<String>,
    pub heartbeat_url_every: Duration,
}

impl EngineConfig {
    /// Defaults for a data dir: heartbeat every 60 s, node `local`, nothing allowed beyond
    /// the defaults, ledgers read from the data dir and `examples/`, no model.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        EngineConfig {
            ledger_dirs: vec![data_dir.clone(), PathBuf::from("examples")],
            data_dir,
            heartbeat: Duration::from_secs(60),
            node: "local".into(),
            http_allow: Vec::new(),
            allow_shell: false,
            llm: LlmConfig::default(),
            database_url: None,
            lease_ttl: Duration::from_secs(10),
            follow_db_clock: false,
            heartbeat_url: None,
            heartbeat_url_every: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("data_dir", &self.data_dir)
            .field("heartbeat", &self.heartbeat)
            .field("node", &self.node)
            .field("http_allow", &self.http_allow)
            .field("allow_shell", &self.allow_shell)
            .field("ledger_dirs", &self.ledger_dirs)
            .field("llm", &self.llm)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::secrets::mask_url),
            )
            .field("lease_ttl", &self.lease_ttl)
            .field("follow_db_clock", &self.follow_db_clock)
            .field(
                "heartbeat_url",
                &self.heartbeat_url.as_deref().map(crate::secrets::mask_url),
            )
            .finish()
    }
}

/// An OpenAI-compatible endpoint for the CEO brief's narrative.
#[derive(Clone, Default)]
pub struct LlmConfig {
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Sent as a bearer token; never shown, never logged.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field(
                "api_key",
                &self.api_key.as_ref().map(|_| crate::secrets::MASK),
            )
            .finish()
    }
}
