//! `echopilot`: parses flags and hands over to the library.

use clap::Parser;
use echopilot::config::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    // reqwest is built without a TLS provider of its own; ring is ours (see Cargo.toml).
    // Installing fails only if one is already installed, which is then just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            echopilot::telemetry::init(args.log_json);
            let _failpoints = fail::FailScenario::setup();
            match runtime.block_on(echopilot::startup::run(args, shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scheduler(cmd) => runtime.block_on(echopilot::cli::scheduler(cmd)),
    }
}

/// Resolves on SIGINT or SIGTERM. Signals are handled here, in the binary only.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}
