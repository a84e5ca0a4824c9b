//! `echopilot`: parses flags and hands over to the library.

use echopilot::config::Command;
use std::process::ExitCode;

fn main() -> ExitCode {
    // reqwest is built without a TLS provider of its own; ring is ours (see Cargo.toml).
    // Installing fails only if one is already installed, which is then just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Flags over the environment over the settings file (see settings).
    let (mut cli, sources) = match echopilot::settings::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Serve(args) = &mut cli.command {
        // Before any thread starts: the secrets leave the environment (see secret_env).
        let mut secrets = echopilot::secret_env::take();
        args.dashboard_key = secrets.remove("DASHBOARD_KEY");
        if let Some(key) = secrets.remove("ECHOPILOT_LLM_API_KEY") {
            args.llm_api_key = Some(key);
        }
        if let Some(url) = secrets.remove("ECHOPILOT_DATABASE_URL") {
            args.database_url = Some(url);
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            // Every file the server makes is its own alone (the data dir, its logs).
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            // The data dir first (private), for the log files under it.
            let logs = engine::data_dir::prepare(&args.data_dir)
                .ok()
                .map(|()| args.data_dir.join("logs"));
            let _logging = echopilot::telemetry::init(args.log_json, logs.as_deref());
            let _failpoints = fail::FailScenario::setup();
            let served = runtime.block_on(async {
                // Handlers go in before the server announces itself, so a signal sent
                // right after start-up is a graceful shutdown, not the default kill.
                let shutdown = shutdown_signal()?;
                echopilot::startup::run(*args, shutdown).await
            });
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {}", engine::error::chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scheduler(cmd) => runtime.block_on(echopilot::cli::scheduler(cmd)),
        Command::Run(args) => runtime.block_on(echopilot::cli::run(args)),
        Command::Runs(cmd) => runtime.block_on(echopilot::cli::runs(cmd)),
        Command::Jobs(cmd) => runtime.block_on(echopilot::cli::jobs(cmd)),
        Command::Maintenance(cmd) => runtime.block_on(echopilot::cli::maintenance(cmd)),
        Command::Alerts(cmd) => runtime.block_on(echopilot::cli::alerts(cmd)),
        Command::Checks(cmd) => runtime.block_on(echopilot::cli::checks(cmd)),
        Command::Config(echopilot::config::ConfigCommand::Check(args)) => {
            print!("{}", echopilot::settings::report(&args, &sources));
            ExitCode::SUCCESS
        }
    }
}

/// Registers SIGINT and SIGTERM handlers now and returns a future that resolves on
/// either. Signals are handled here, in the binary only.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}
