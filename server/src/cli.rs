//! Client commands against a running server: `echopilot scheduler start|stop|restart|status`
//! (printing the status JSON), `run JOB [--param k=v]`, `runs cancel|rerun ID`, `jobs
//! pause|resume JOB`. Exit codes: 0 success (for `status`: running), 3 stopped or stalled,
//! 2 a waited-for run did not succeed, 1 any error — with a one-line message naming the URL.

use crate::config::{
    AlertItemCommand, AlertsCommand, ChecksCommand, ClientArgs, JobsCommand, MaintenanceCommand,
    RunArgs, RunsCommand, SchedulerCommand,
};
use std::process::ExitCode;
use std::time::Duration;

/// `status` exits with this when the scheduler is stopped or stalled.
const EXIT_NOT_RUNNING: u8 = 3;

pub async fn scheduler(cmd: SchedulerCommand) -> ExitCode {
    let (method, route, args, body) = match cmd {
        SchedulerCommand::Start(a) => (reqwest::Method::POST, "start", a, None),
        SchedulerCommand::Stop {
            reason,
            for_,
            until,
            client,
        } => {
            let body =
                reason.map(|r| serde_json::json!({ "reason": r, "for": for_, "until": until }));
            (reqwest::Method::POST, "stop", client, body)
        }
        SchedulerCommand::Restart(a) => (reqwest::Method::POST, "restart", a, None),
        SchedulerCommand::Status(a) => (reqwest::Method::GET, "status", a, None),
    };
    match call(&args, method, &format!("/api/automations/{route}"), body).await {
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
    let body = match overrides(&args.params) {
        Ok(b) => b,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match call(&args.client, reqwest::Method::POST, &path, body).await {
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

/// `--param k=v` as the run-now body `{"params": {k: v}}` (a value that is JSON as such,
/// else as text); none without params.
fn overrides(params: &[String]) -> Result<Option<serde_json::Value>, String> {
    if params.is_empty() {
        return Ok(None);
    }
    let mut map = serde_json::Map::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--param {p:?}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
        map.insert(k.to_string(), value);
    }
    Ok(Some(serde_json::json!({ "params": map })))
}

/// `echopilot runs cancel|rerun ID`: prints the run.
pub async fn runs(cmd: RunsCommand) -> ExitCode {
    let (client, path, body) = match cmd {
        RunsCommand::Cancel { id, reason, client } => (
            client,
            format!("/api/runs/{id}/cancel"),
            Some(serde_json::json!({ "reason": reason })),
        ),
        RunsCommand::Rerun { id, client } => (client, format!("/api/runs/{id}/rerun"), None),
    };
    print_answer(call(&client, reqwest::Method::POST, &path, body).await)
}

/// `echopilot jobs pause|resume JOB`: prints the job.
pub async fn jobs(cmd: JobsCommand) -> ExitCode {
    let (client, path, body) = match cmd {
        JobsCommand::Pause { job, pause, client } => {
            (client, format!("/api/jobs/{job}/pause"), Some(pause.body()))
        }
        JobsCommand::Resume { job, client } => (client, format!("/api/jobs/{job}/resume"), None),
    };
    print_answer(call(&client, reqwest::Method::POST, &path, body).await)
}

/// `echopilot maintenance list|add|delete`: prints the windows, or the one added.
pub async fn maintenance(cmd: MaintenanceCommand) -> ExitCode {
    use reqwest::Method;
    let (client, method, path, body) = match cmd {
        MaintenanceCommand::List { client } => {
            (client, Method::GET, "/api/maintenance".to_string(), None)
        }
        MaintenanceCommand::Add {
            id,
            name,
            schedule,
            duration,
            start,
            end,
            timezone,
            jobs,
            client,
        } => {
            let body = serde_json::json!({
                "id": id, "name": name, "schedule": schedule, "duration": duration,
                "start": start, "end": end, "timezone": timezone,
                "jobs": (!jobs.is_empty()).then_some(jobs),
            });
            (
                client,
                Method::POST,
                "/api/maintenance".to_string(),
                Some(body),
            )
        }
        MaintenanceCommand::Delete { id, client } => (
            client,
            Method::DELETE,
            format!("/api/maintenance/{id}"),
            None,
        ),
    };
    print_answer(call(&client, method, &path, body).await)
}

/// A spec given on the command line: JSON text, or `-` to read it from stdin.
fn spec(text: &str) -> Result<serde_json::Value, String> {
    let text = if text == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read stdin: {e}"))?
    } else {
        text.to_string()
    };
    serde_json::from_str(&text).map_err(|e| format!("the spec is not JSON: {e}"))
}

/// `echopilot alerts channels|rules list|add|test|delete`, `echopilot alerts incidents`.
pub async fn alerts(cmd: AlertsCommand) -> ExitCode {
    use reqwest::Method;
    let (base, cmd) = match cmd {
        AlertsCommand::Incidents { client } => {
            return print_answer(call(&client, Method::GET, "/api/alerts/incidents", None).await)
        }
        AlertsCommand::Channels { cmd } => ("/api/alerts/channels", cmd),
        AlertsCommand::Rules { cmd } => ("/api/alerts/rules", cmd),
    };
    let (client, method, path, body) = match cmd {
        AlertItemCommand::List { client } => (client, Method::GET, base.to_string(), None),
        AlertItemCommand::Add { spec: text, client } => match spec(&text) {
            Ok(body) => (client, Method::POST, base.to_string(), Some(body)),
            Err(e) => return print_answer(Err(e)),
        },
        AlertItemCommand::Test { id, client } => {
            let answer = call(&client, Method::POST, &format!("{base}/{id}/test"), None).await;
            let taken = matches!(&answer, Ok(b) if b["ok"] == true);
            let code = print_answer(answer);
            return if taken { code } else { ExitCode::FAILURE };
        }
        AlertItemCommand::Delete { id, client } => {
            (client, Method::DELETE, format!("{base}/{id}"), None)
        }
    };
    print_answer(call(&client, method, &path, body).await)
}

/// `echopilot checks list|show|add|delete`.
pub async fn checks(cmd: ChecksCommand) -> ExitCode {
    use reqwest::Method;
    let (client, method, path, body) = match cmd {
        ChecksCommand::List { client } => (client, Method::GET, "/api/checks".to_string(), None),
        ChecksCommand::Show { id, client } => {
            (client, Method::GET, format!("/api/checks/{id}"), None)
        }
        ChecksCommand::Add {
            id,
            name,
            period,
            schedule,
            timezone,
            grace,
            client,
        } => {
            let body = serde_json::json!({
                "id": id, "name": name, "period": period, "schedule": schedule,
                "timezone": timezone, "grace": grace,
            });
            (client, Method::POST, "/api/checks".to_string(), Some(body))
        }
        ChecksCommand::Delete { id, client } => {
            (client, Method::DELETE, format!("/api/checks/{id}"), None)
        }
    };
    print_answer(call(&client, method, &path, body).await)
}

/// Prints the answer's JSON (nothing for an answer without a body), or the error.
fn print_answer(answer: Result<serde_json::Value, String>) -> ExitCode {
    match answer {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(body) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one request (with a JSON body, if any) and returns the JSON body, or a one-line
/// error.
async fn call(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let base = args.url.trim_end_matches('/');
    let key = key(args)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(35))
        // The audit log tells CLI changes from other keyed API calls by this.
        .user_agent(concat!("echopilot-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut request = client
        .request(method, format!("{base}{path}"))
        .header("X-Dash-Key", key)
        .header("X-EchoPilot-Client", "cli");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "cannot reach EchoPilot at {base}: {}",
            crate::api::root_cause(&e)
        )
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(serde_json::Value::Null);
    }
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
