//! Client commands against a running server: `scheduler start|stop|restart|status`, `run
//! JOB [--param k=v] [--wait]`, `jobs list|show|add|edit|rm|enable|disable|pause|resume`,
//! `runs list|show|log [-f]|cancel|rerun`, `maintenance …`, `alerts …`, `checks …`. Each
//! prints a table (lists) or `field: value` lines, or the JSON with `--json`. Exit codes:
//! 0 success (for `scheduler status`: running); 1 any error, with a one-line message
//! naming the URL; 2 a run waited for (`run --wait`, `runs log -f`) did not succeed; 3 the
//! scheduler is stopped or stalled (`scheduler status`).

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
            show(&body, args.json);
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
            show(&body, args.client.json);
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
    use reqwest::Method;
    let (client, method, path, body) = match cmd {
        RunsCommand::List {
            job,
            status,
            limit,
            client,
        } => {
            let query = serde_urlencoded::to_string([
                ("job", job),
                ("status", status),
                ("limit", Some(limit.to_string())),
            ])
            .unwrap_or_default();
            (client, Method::GET, format!("/api/runs?{query}"), None)
        }
        RunsCommand::Show { id, client } => (client, Method::GET, format!("/api/runs/{id}"), None),
        RunsCommand::Log { id, follow, client } => return log(&client, id, follow).await,
        RunsCommand::Cancel { id, reason, client } => (
            client,
            Method::POST,
            format!("/api/runs/{id}/cancel"),
            Some(serde_json::json!({ "reason": reason })),
        ),
        RunsCommand::Rerun { id, client } => {
            (client, Method::POST, format!("/api/runs/{id}/rerun"), None)
        }
    };
    print_answer(call(&client, method, &path, body).await, client.json)
}

/// `echopilot runs log ID [-f]`: the log so far; with `-f`, the live log (server-sent
/// events) until the run ends, then exit 2 unless it succeeded.
async fn log(client: &ClientArgs, id: i64, follow: bool) -> ExitCode {
    match follow_log(client, id, follow).await {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(status)) if status == "succeeded" || !follow => ExitCode::SUCCESS,
        Ok(Some(status)) => {
            eprintln!("run {id} ended {status}");
            ExitCode::from(EXIT_RUN_FAILED)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A request to the server with the key, as the CLI (`timeout`: for the whole exchange;
/// none for a stream).
fn request(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    timeout: Option<Duration>,
) -> Result<reqwest::RequestBuilder, String> {
    let base = args.url.trim_end_matches('/');
    let key = key(args)?;
    let mut client = reqwest::Client::builder()
        // The audit log tells CLI changes from other keyed API calls by this.
        .user_agent(concat!("echopilot-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = timeout {
        client = client.timeout(t);
    }
    let client = client
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    Ok(client
        .request(method, format!("{base}{path}"))
        .header("X-Dash-Key", key)
        .header("X-EchoPilot-Client", "cli"))
}

/// Prints a run's `log` events as they come; answers the status its `end` event names.
/// Not `follow`ing, it stops after the log so far (the stream's first event): `None`.
async fn follow_log(client: &ClientArgs, id: i64, follow: bool) -> Result<Option<String>, String> {
    use std::io::Write;
    let base = client.url.trim_end_matches('/');
    let mut response = request(
        client,
        reqwest::Method::GET,
        &format!("/api/runs/{id}/log"),
        None,
    )?
    .send()
    .await
    .map_err(|e| {
        format!(
            "cannot reach EchoPilot at {base}: {}",
            crate::api::root_cause(&e)
        )
    })?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body
            .pointer("/error/message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message");
        return Err(format!("EchoPilot at {base} answered {status}: {message}"));
    }
    // Server-sent events: `event:` and `data:` lines, a blank line ending each event.
    let (mut pending, mut event, mut data) = (String::new(), String::new(), Vec::<String>::new());
    let mut out = std::io::stdout();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the log stream broke: {e}"))?
    {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            } else if line.is_empty() && !data.is_empty() {
                let text = std::mem::take(&mut data).join("\n");
                match event.as_str() {
                    "log" => {
                        let _ = out.write_all(text.as_bytes());
                        let _ = out.flush();
                        if !follow {
                            return Ok(None);
                        }
                    }
                    "end" => return Ok(Some(text.trim().to_string())),
                    _ => {}
                }
            }
        }
    }
    Err("the log stream ended before the run did".into())
}

/// `echopilot jobs pause|resume JOB`: prints the job.
pub async fn jobs(cmd: JobsCommand) -> ExitCode {
    use reqwest::Method;
    let parsed = |text: &str| spec(text).map(Some);
    let (client, method, path, body) = match cmd {
        JobsCommand::List { client } => (client, Method::GET, "/api/jobs".to_string(), Ok(None)),
        JobsCommand::Export { client } => return export(&client).await,
        JobsCommand::Apply {
            file,
            dry_run,
            prune,
            client,
        } => return apply(&client, &file, dry_run, prune).await,
        JobsCommand::Show { job, client } => {
            (client, Method::GET, format!("/api/jobs/{job}"), Ok(None))
        }
        JobsCommand::Add { spec, client } => {
            (client, Method::POST, "/api/jobs".to_string(), parsed(&spec))
        }
        JobsCommand::Edit { job, spec, client } => (
            client,
            Method::PATCH,
            format!("/api/jobs/{job}"),
            parsed(&spec),
        ),
        JobsCommand::Rm { job, client } => {
            (client, Method::DELETE, format!("/api/jobs/{job}"), Ok(None))
        }
        JobsCommand::Enable { job, client } => (
            client,
            Method::PATCH,
            format!("/api/jobs/{job}"),
            Ok(Some(serde_json::json!({ "enabled": true }))),
        ),
        JobsCommand::Disable { job, client } => (
            client,
            Method::PATCH,
            format!("/api/jobs/{job}"),
            Ok(Some(serde_json::json!({ "enabled": false }))),
        ),
        JobsCommand::Pause { job, pause, client } => (
            client,
            Method::POST,
            format!("/api/jobs/{job}/pause"),
            Ok(Some(pause.body())),
        ),
        JobsCommand::Resume { job, client } => (
            client,
            Method::POST,
            format!("/api/jobs/{job}/resume"),
            Ok(None),
        ),
    };
    match body {
        Ok(body) => print_answer(call(&client, method, &path, body).await, client.json),
        Err(e) => print_answer(Err(e), false),
    }
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
    print_answer(call(&client, method, &path, body).await, client.json)
}

/// `echopilot jobs export`: the jobs as a TOML file (`[[jobs]]` tables).
async fn export(client: &ClientArgs) -> ExitCode {
    match call(client, reqwest::Method::GET, "/api/jobs/export", None).await {
        Ok(body) if client.json => print_answer(Ok(body), true),
        Ok(body) => match toml::to_string(&body) {
            Ok(text) => {
                println!("# EchoPilot jobs: `echopilot jobs apply FILE [--dry-run] [--prune]` applies them.\n# Secret params are masked (\"********\"): applied back, they keep their values.\n");
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => print_answer(Err(format!("cannot write the jobs as TOML: {e}")), false),
        },
        Err(e) => print_answer(Err(e), false),
    }
}

/// `echopilot jobs apply FILE`: the plan, then (unless dry) the same plan applied.
async fn apply(
    client: &ClientArgs,
    file: &std::path::Path,
    dry_run: bool,
    prune: bool,
) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return print_answer(Err(format!("cannot read {}: {e}", file.display())), false),
    };
    let parsed: Result<serde_json::Value, String> = if file.extension().is_some_and(|e| e == "json")
    {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
    } else {
        toml::from_str(&text)
            .map_err(|e| format!("{}: {}", file.display(), e.to_string().replace('\n', " ")))
    };
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return print_answer(Err(e), false),
    };
    let path = format!("/api/jobs/apply?dry_run={dry_run}&prune={prune}");
    match call(client, reqwest::Method::POST, &path, Some(body)).await {
        Ok(plan) if client.json => print_answer(Ok(plan), true),
        Ok(plan) => {
            print!("{}", diff(&plan));
            ExitCode::SUCCESS
        }
        Err(e) => print_answer(Err(e), false),
    }
}

/// An apply's plan as a diff: `+` added, `~` changed (each field from → to), `-` removed.
fn diff(plan: &serde_json::Value) -> String {
    let ids = |key: &str| -> Vec<String> {
        plan[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut out = String::new();
    for id in ids("added") {
        out += &format!("+ {id}\n");
    }
    for c in plan["changed"].as_array().into_iter().flatten() {
        out += &format!("~ {}\n", c["id"].as_str().unwrap_or_default());
        for (field, change) in c["fields"].as_object().into_iter().flatten() {
            match (change.get("from"), change.get("to")) {
                (Some(from), Some(to)) => out += &format!("    {field}: {from} → {to}\n"),
                _ => out += &format!("    {field}: {}\n", cell(change)),
            }
        }
    }
    for id in ids("removed") {
        out += &format!("- {id}\n");
    }
    let unchanged = plan["unchanged"].as_u64().unwrap_or(0);
    out += &format!("{unchanged} unchanged\n");
    if plan["dry_run"] == true {
        out += "(dry run: nothing was changed)\n";
    }
    out
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
            return print_answer(
                call(&client, Method::GET, "/api/alerts/incidents", None).await,
                client.json,
            )
        }
        AlertsCommand::Channels { cmd } => ("/api/alerts/channels", cmd),
        AlertsCommand::Rules { cmd } => ("/api/alerts/rules", cmd),
    };
    let (client, method, path, body) = match cmd {
        AlertItemCommand::List { client } => (client, Method::GET, base.to_string(), None),
        AlertItemCommand::Add { spec: text, client } => match spec(&text) {
            Ok(body) => (client, Method::POST, base.to_string(), Some(body)),
            Err(e) => return print_answer(Err(e), false),
        },
        AlertItemCommand::Test { id, client } => {
            let answer = call(&client, Method::POST, &format!("{base}/{id}/test"), None).await;
            let taken = matches!(&answer, Ok(b) if b["ok"] == true);
            let code = print_answer(answer, client.json);
            return if taken { code } else { ExitCode::FAILURE };
        }
        AlertItemCommand::Delete { id, client } => {
            (client, Method::DELETE, format!("{base}/{id}"), None)
        }
    };
    print_answer(call(&client, method, &path, body).await, client.json)
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
    print_answer(call(&client, method, &path, body).await, client.json)
}

/// Prints the answer (nothing for an answer without a body), or the error.
fn print_answer(answer: Result<serde_json::Value, String>, json: bool) -> ExitCode {
    match answer {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(body) => {
            show(&body, json);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints an answer: its JSON with `--json`, else for people — a list (or an object
/// holding one list, such as `{"runs": [...]}`) as a table of its plain fields, an object
/// as `field: value` lines.
fn show(body: &serde_json::Value, json: bool) {
    use serde_json::Value;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())
        );
        return;
    }
    let list = match body {
        Value::Array(a) => Some(a),
        Value::Object(o) if o.len() <= 2 => o.values().find_map(|v| v.as_array()),
        _ => None,
    };
    match list {
        Some(rows) => print!("{}", table(rows)),
        None => print!("{}", fields(body)),
    }
}

/// A value as one table cell or line: text as is, anything else as compact JSON.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    }
}

/// Rows of objects as a table: the plain (not nested) fields of the first row, in order,
/// at most eight, each column as wide as its widest cell (up to 48 characters).
fn table(rows: &[serde_json::Value]) -> String {
    let Some(first) = rows.first().and_then(|r| r.as_object()) else {
        return if rows.is_empty() {
            "(none)\n".into()
        } else {
            rows.iter().map(|r| cell(r) + "\n").collect()
        };
    };
    // What says most about a row first; then the rest, by name.
    const FIRST: [&str; 16] = [
        "id",
        "name",
        "job_id",
        "kind",
        "schedule",
        "state",
        "status",
        "trigger",
        "enabled",
        "paused",
        "attempt",
        "on",
        "subject",
        "started_at",
        "finished_at",
        "next_run_at",
    ];
    let rank = |k: &str| FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len());
    let mut columns: Vec<&String> = first
        .iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .map(|(k, _)| k)
        .collect();
    columns.sort_by_key(|k| rank(k));
    columns.truncate(8);
    let clip = |s: String| {
        if s.chars().count() > 48 {
            s.chars().take(47).collect::<String>() + "…"
        } else {
            s
        }
    };
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| clip(cell(&r[c.as_str()]))).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            grid.iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut l: String = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}  ", w = *w))
            .collect();
        l.truncate(l.trim_end().len());
        l + "\n"
    };
    let mut out = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for r in grid {
        out += &line(r);
    }
    out
}

/// An object as aligned `field: value` lines.
fn fields(body: &serde_json::Value) -> String {
    let Some(o) = body.as_object() else {
        return cell(body) + "\n";
    };
    let width = o.keys().map(|k| k.len()).max().unwrap_or(0);
    o.iter()
        .map(|(k, v)| format!("{k:<width$}  {}\n", cell(v)))
        .collect()
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
    let mut request = request(args, method, path, Some(Duration::from_secs(35)))?;
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
