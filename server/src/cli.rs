//! Client commands against a running server: `echopilot scheduler start|stop|restart|status`.
//! They print the status JSON. Exit codes: 0 success (for `status`: running), 3 stopped or
//! stalled, 1 any error — with a one-line message naming the URL.

use crate::config::{ClientArgs, RunArgs, SchedulerCommand};
use std::process::ExitCode;
use std::time::Duration;

/// `status` exits with this when the scheduler is stopped or stalled.
const EXIT_NOT_RUNNING: u8 = 3;

pub async fn scheduler(cmd: SchedulerCommand) -> ExitCode {
    let (method, route, args) = match cmd {
        SchedulerCommand::Start(a) => (reqwest::Method::POST, "start", a),
        SchedulerCommand::Stop(a) => (reqwest::Method::POST, "stop", a),
        SchedulerCommand::Restart(a) => (reqwest::Method::POST, "restart", a),
        SchedulerCommand::Status(a) => (reqwest::Method::GET, "status", a),
    };
    match call(&args, method, &format!("/api/automations/{route}")).await {
        Ok(body) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
            );
            let running = body.get("state").and_then(|s| s.as_str()) == Some("running");
            if route == "status" && !running {
                ExitCode::from(EXIT_NOT_RUNNING)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `status`-like exit for `run --wait` when the run did not succeed.
const EXIT_RUN_FAILED: u8 = 2;

/// `echopilot run JOB [--wait]`.
pub async fn run(args: RunArgs) -> ExitCode {
    let path = format!(
        "/api/jobs/{}/run{}",
        args.job,
        if args.wait { "?wait=true" } else { "" }
    );
    match call(&args.client, reqwest::Method::POST, &path).await {
        Ok(body) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
            );
            let status = body
                .pointer("/run/status")
                .and_then(|s| s.as_str())
                .unwrap_or_default();
            if args.wait && status != "succeeded" {
                ExitCode::from(EXIT_RUN_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one request and returns the JSON body, or a one-line error.
async fn call(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
) -> Result<serde_json::Value, String> {
    let base = args.url.trim_end_matches('/');
    let key = key(args)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(35))
        // The audit log tells CLI changes from other keyed API calls by this.
        .user_agent(concat!("echopilot-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .request(method, format!("{base}{path}"))
        .header("X-Dash-Key", key)
        .header("X-EchoPilot-Client", "cli")
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach EchoPilot at {base}: {}",
                crate::api::root_cause(&e)
            )
        })?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| {
        format!("EchoPilot at {base} answered {status} with a body that is not JSON: {e}")
    })?;
    if status.is_success() {
        return Ok(body);
    }
    let message = body
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("no message");
    Err(format!("EchoPilot at {base} answered {status}: {message}"))
}

fn key(args: &ClientArgs) -> Result<String, String> {
    if let Some(k) = &args.key {
        return Ok(k.trim().to_string());
    }
    let path = args.data_dir.join("dashboard.key");
    std::fs::read_to_string(&path)
        .map(|k| k.trim().to_string())
        .map_err(|e| {
            format!(
                "no key given (--key or DASHBOARD_KEY) and cannot read {}: {e}",
                path.display()
            )
        })
}
