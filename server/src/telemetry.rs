//! Tracing, set once at start-up: `RUST_LOG` filters (the default keeps sqlx quiet);
//! lines go to stderr and to a file per day under `<data dir>/logs/`
//! (`echopilot.YYYY-MM-DD.log`, pruned by the retention job with the event log), as text
//! or, with `--log-json`, as JSON lines. A run's lines carry its `run_id` and `job` (the
//! runner's span).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keeps the file writer flushing; hold it until the process ends.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

pub fn init(json: bool, logs: Option<&std::path::Path>) -> Guard {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"))
    };
    let file = logs.and_then(|dir| {
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("echopilot")
            .filename_suffix("log")
            .build(dir)
            .map_err(|e| eprintln!("warning: cannot log to files in {}: {e}", dir.display()))
            .ok()?;
        Some(tracing_appender::non_blocking(appender))
    });
    let (file_writer, guard) = match file {
        Some((w, g)) => (Some(w), Some(g)),
        None => (None, None),
    };
    let stderr = if json {
        fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let to_file = file_writer.map(|w| {
        if json {
            fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(w)
                .with_filter(filter())
                .boxed()
        } else {
            fmt::layer()
                .with_ansi(false)
                .with_writer(w)
                .with_filter(filter())
                .boxed()
        }
    });
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(to_file)
        .try_init();
    Guard(guard)
}
