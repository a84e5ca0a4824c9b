//! Flags and environment. Every documented setting has a flag and an environment variable.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "echopilot",
    version,
    about = "EchoPilot: a self-hosted automation control plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: dashboard, HTTP API and scheduler in one process.
    Serve(Box<ServeArgs>),
    /// Control the scheduler of a running server.
    #[command(subcommand)]
    Scheduler(SchedulerCommand),
    /// Run a job now on a running server; prints the run. With --wait, exits 2 when the
    /// run did not succeed.
    Run(RunArgs),
    /// Cancel or rerun a run of a running server; prints the run.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Pause or resume a job of a running server; prints the job.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// List, add or delete the maintenance windows of a running server.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Alert channels, rules and incidents of a running server.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The effective settings, from the file, the environment and the flags.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inbound checks (crons elsewhere that ping EchoPilot) of a running server.
    #[command(subcommand)]
    Checks(ChecksCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Prints every setting with its value (secrets masked) and where it came from;
    /// exits 2 on a bad file. Takes the same flags as `serve`.
    Check(Box<ServeArgs>),
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Channels: list, add SPEC (JSON, `-` for stdin), test ID, delete ID.
    Channels {
        #[command(subcommand)]
        cmd: AlertItemCommand,
    },
    /// Rules: list, add SPEC (JSON, `-` for stdin), delete ID.
    Rules {
        #[command(subcommand)]
        cmd: AlertItemCommand,
    },
    /// Open and recent incidents, each with its deliveries.
    Incidents {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertItemCommand {
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add one from its JSON, e.g. '{"id":"ops","kind":"slack","url":"https://hooks…"}'.
    Add {
        spec: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send a test notice through a channel now; exits 1 when it was not taken.
    Test {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// Every check with its state and ping URL.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One check with its newest pings.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a check expected every --period (or on --schedule), down past --grace.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(
            long,
            conflicts_with = "schedule",
            required_unless_present = "schedule"
        )]
        period: Option<String>,
        /// A cron expression with seconds, e.g. "0 0 3 * * *".
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long)]
        grace: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Print every window.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a window: recurring (--schedule and --duration) or one-off (--start and --end).
    Add {
        id: String,
        #[arg(long)]
        name: String,
        /// The cron expression (with seconds) that opens it, e.g. "0 0 2 * * SUN".
        #[arg(long, requires = "duration")]
        schedule: Option<String>,
        /// How long it stays open, e.g. 2h.
        #[arg(long, requires = "schedule")]
        duration: Option<String>,
        /// One-off: from when (RFC 3339).
        #[arg(long, requires = "end", conflicts_with = "schedule")]
        start: Option<String>,
        /// One-off: until when (RFC 3339).
        #[arg(long, requires = "start")]
        end: Option<String>,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// The jobs it holds (comma-separated); every job when left out.
        #[arg(long, value_delimiter = ',')]
        jobs: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a window.
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The newest runs, filtered.
    List {
        #[arg(long)]
        job: Option<String>,
        /// queued, running, succeeded, failed, timed_out, interrupted, cancelled, skipped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One run.
    Show {
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A run's log; with -f, followed live until the run ends (exit 2 if it did not
    /// succeed).
    Log {
        id: i64,
        #[arg(short = 'f', long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a queued or running run: its work is stopped.
    Cancel {
        id: i64,
        /// Why (recorded with the run and in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start an ended run again with the same params.
    Rerun {
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every job.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One job.
    Show {
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a job from its JSON spec (`-` reads it from stdin), e.g.
    /// '{"id":"ping","kind":"http","schedule":"@every 5m","params":{"url":"https://example.com"}}'.
    Add {
        spec: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change some of a job's fields (JSON, `-` for stdin), e.g. '{"schedule":"@every 10m"}'.
    Edit {
        job: String,
        spec: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a job (its runs stay in the history).
    Rm {
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print every job's definition as TOML (`--json`: JSON), secrets masked: a file
    /// `jobs apply` takes back.
    Export {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apply a file of jobs (TOML, or JSON when it ends in .json) in one transaction,
    /// printing what changes first: added, changed field by field, removed (--prune).
    Apply {
        file: std::path::PathBuf,
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
        /// Delete the jobs the file does not name.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Let a job's schedule fire again.
    Enable {
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop a job's schedule from firing (run now still works).
    Disable {
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pause a job: its slots are recorded skipped with the reason until it ends.
    Pause {
        job: String,
        #[command(flatten)]
        pause: PauseArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End a job's pause now.
    Resume {
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A pause: why, and until when.
#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// Why (shown to everyone, recorded in the ledger).
    #[arg(long)]
    pub reason: String,
    /// How long, e.g. 90s, 30m, 2h, 1d.
    #[arg(long = "for", conflicts_with = "until")]
    pub for_: Option<String>,
    /// Until when, RFC 3339 (e.g. 2026-12-01T18:00:00Z).
    #[arg(long)]
    pub until: Option<String>,
    /// Cancel the runs in flight too (otherwise they finish).
    #[arg(long)]
    pub cancel_running: bool,
}

impl PauseArgs {
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "reason": self.reason,
            "for": self.for_,
            "until": self.until,
            "cancel_running": self.cancel_running,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The job's id (e.g. self-heal).
    pub job: String,
    /// Wait (up to 30 s) for the run to finish.
    #[arg(long)]
    pub wait: bool,
    /// A param for this run only, over the job's: `key=value` (the value as JSON when it
    /// is, else as text); repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct ServeArgs {
    /// A TOML file of settings (each named as its flag, `data_dir = "/var/lib/echopilot"`);
    /// the environment overrides it, and flags override both.
    #[arg(long, env = "ECHOPILOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "ECHOPILOT_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,
    /// Where the database, key, PID file and logs live.
    #[arg(long, env = "ECHOPILOT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Seconds between scheduler heartbeats; status says stalled past twice this.
    #[arg(long, env = "ECHOPILOT_HEARTBEAT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat_secs: u64,
    /// Seconds in-flight work gets to finish at shutdown.
    #[arg(long, env = "ECHOPILOT_SHUTDOWN_GRACE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub shutdown_grace_secs: u64,
    /// This node's name (defaults to the host name).
    #[arg(long, env = "ECHOPILOT_NODE")]
    pub node: Option<String>,
    /// Where the built dashboard (target/site) is; found automatically from the repo root.
    #[arg(long, env = "LEPTOS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,
    /// Hosts HTTP jobs may reach although they are loopback, private or link-local
    /// (comma-separated names or IP addresses).
    #[arg(long, env = "ECHOPILOT_HTTP_ALLOW", value_delimiter = ',')]
    pub http_allow: Vec<String>,
    /// Allow `shell` jobs (argv only, never a shell string). Off by default.
    #[arg(long, env = "ECHOPILOT_ALLOW_SHELL")]
    pub allow_shell: bool,
    /// Serve `/metrics` (Prometheus) without the key, for a scraper inside a trusted
    /// network. Off by default: the scraper sends the key (`X-Dash-Key` or a bearer token).
    #[arg(long, env = "ECHOPILOT_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Host names the server answers to besides loopback and IP addresses (comma-separated;
    /// e.g. the name a reverse proxy forwards). Any other Host header is refused, so a
    /// page on a rebinding DNS name cannot talk to the dashboard.
    #[arg(long, env = "ECHOPILOT_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Directories `finance-metrics` may read a ledger file from (comma-separated;
    /// default: the data dir and ./examples).
    #[arg(long, env = "ECHOPILOT_LEDGER_DIRS", value_delimiter = ',')]
    pub ledger_dirs: Vec<PathBuf>,
    /// An OpenAI-compatible API base for the CEO brief (e.g. https://api.openai.com/v1).
    #[arg(long, env = "ECHOPILOT_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// The model the CEO brief asks.
    #[arg(long, env = "ECHOPILOT_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// The model API's key. Prefer the environment: a flag is visible in the process list.
    #[arg(long, env = "ECHOPILOT_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Most connections served at once; past it a new connection gets 503 and is closed.
    #[arg(long, env = "ECHOPILOT_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "ECHOPILOT_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// `postgres://user:password@host:port/db` to share one PostgreSQL with other nodes;
    /// unset, the store is SQLite in the data dir. Prefer the environment: a flag is
    /// visible in the process list.
    #[arg(long, env = "ECHOPILOT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seconds the leader's lease lasts unrenewed (PostgreSQL): a crashed leader is
    /// replaced within this plus about a second. Renewed every fifth of it.
    #[arg(long, env = "ECHOPILOT_LEASE_TTL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_ttl_secs: u64,
    /// A URL this node GETs every `--heartbeat-url-secs`, so a monitor elsewhere
    /// (healthchecks.io, an Uptime Kuma push monitor) notices when EchoPilot is gone.
    #[arg(long, env = "ECHOPILOT_HEARTBEAT_URL", hide_env_values = true)]
    pub heartbeat_url: Option<String>,
    /// Seconds between two fetches of `--heartbeat-url`.
    #[arg(long, env = "ECHOPILOT_HEARTBEAT_URL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat_url_secs: u64,
    /// Tests only: this node's clock off by this many milliseconds (chaos tests).
    #[arg(
        long,
        env = "ECHOPILOT_CLOCK_SKEW_MS",
        hide = true,
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub clock_skew_ms: i64,
    /// Benchmark hooks: an every-second job and GET /api/bench/ticks (see ../shared/bench).
    #[arg(long, env = "ECHOPILOT_BENCH")]
    pub bench: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "ECHOPILOT_LOG_JSON")]
    pub log_json: bool,
    /// The dashboard key from `DASHBOARD_KEY`, taken out of the environment at start-up
    /// (see [`crate::secret_env`]); `None` uses `<data dir>/dashboard.key`.
    #[arg(skip)]
    #[serde(skip)]
    pub dashboard_key: Option<String>,
}

impl ServeArgs {
    /// Checks what clap cannot without echoing a secret back: the database URL is a
    /// `postgres://` or `postgresql://` one (SQLite is the default, not a URL).
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url {
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("postgres" | "postgresql")) {
                anyhow::bail!(
                    "--database-url: expected postgres://user:password@host:port/database, got {}",
                    engine::secrets::mask_url(url)
                );
            }
        }
        Ok(())
    }
}

/// Where a client command finds the server and its key.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(
        long,
        env = "ECHOPILOT_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// The dashboard key (default: read from <data dir>/dashboard.key when present).
    #[arg(long, env = "DASHBOARD_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Print the answer as JSON (default: a table or `field: value` lines).
    #[arg(long, global = true)]
    pub json: bool,
    /// Data dir to read dashboard.key from when no key is given.
    #[arg(
        long,
        env = "ECHOPILOT_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SchedulerCommand {
    /// Start the scheduler (idempotent); prints the status JSON.
    Start(ClientArgs),
    /// Stop firing scheduled runs (idempotent); prints the status JSON. With --reason,
    /// pauses everything instead (slots recorded skipped; start resumes).
    Stop {
        /// Pause everything, saying why.
        #[arg(long)]
        reason: Option<String>,
        /// How long the pause lasts, e.g. 2h.
        #[arg(long = "for", requires = "reason", conflicts_with = "until")]
        for_: Option<String>,
        /// Until when the pause lasts, RFC 3339.
        #[arg(long, requires = "reason")]
        until: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Restart the scheduler loop; prints the status JSON.
    Restart(ClientArgs),
    /// Print the status JSON; exit 0 when running, 3 when stopped or stalled, 1 on error.
    Status(ClientArgs),
}
