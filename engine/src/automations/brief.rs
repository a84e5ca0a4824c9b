//! CEO brief: a markdown executive brief from the latest finance, metrics and self-heal
//! reports and the failures that need attention.
//!
//! With an OpenAI-compatible endpoint configured (params `llm_base_url` and `llm_model`,
//! or the server's `--llm-base-url` / `--llm-model`; the key only from the server's
//! `--llm-api-key`), the facts go to the model as JSON and it writes the
//! narrative; any error, a timeout (`llm_timeout_secs`, default 30) or no configuration
//! gives the built-in template instead, and `source` says which. Token usage is kept when
//! the endpoint reports it. With `webhook_url`, the brief is posted as `{"text": ...}` —
//! once per run and its retries.

use crate::kinds::{number_in, string_param, JobContext, JobFailure, JobResult};
use crate::model::{RunStatus, ValidationError};
use crate::outbound::{Method, OutboundError, Request};
use serde_json::{json, Value};
use std::time::Duration;

pub const KIND: &str = "ceo-brief";

/// Gathers the facts the brief is written from.
async fn facts(ctx: &JobContext) -> Value {
    let engine = &ctx.engine;
    let report = |job: &'static str| async move {
        engine
            .latest_report(job)
            .await
            .ok()
            .flatten()
            .map(|r| json!({ "at": r.finished_at, "status": r.status, "report": r.output }))
    };
    let now = ctx.now();
    let since = now - chrono::Duration::hours(24);
    let mut failures = Vec::new();
    for status in [RunStatus::Failed, RunStatus::TimedOut] {
        for r in engine
            .recent_runs(since, &[status], 10)
            .await
            .unwrap_or_default()
        {
            failures.push(json!({ "job": r.job_id, "run": r.id, "status": r.status, "at": r.started_at, "error": r.error }));
        }
    }
    json!({
        "date": now.date_naive().to_string(),
        "finance": report(super::finance::KIND).await,
        "operations": report(super::metrics::KIND).await,
        "health": report(super::self_heal::KIND).await,
        "failures": failures,
    })
}

/// `1 run`, `3 runs`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn money(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => {
            let whole = x.abs().round() as i64;
            let digits = whole.to_string();
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            format!("{}${grouped}", if x < 0.0 { "-" } else { "" })
        }
        None => "n/a".into(),
    }
}

/// "12.3 months", "out of cash", or `None` when the company is not burning cash.
fn runway_text(latest: &Value) -> Option<String> {
    if latest["cash"].as_f64().is_some_and(|c| c <= 0.0) {
        return Some("out of cash".into());
    }
    latest["runway_months"]
        .as_f64()
        .map(|r| format!("{r:.1} months"))
}

/// The built-in brief: plain facts, no model.
pub fn template(f: &Value) -> String {
    let mut md = format!(
        "# CEO brief — {}\n\n",
        f["date"].as_str().unwrap_or_default()
    );
    let latest = &f["finance"]["report"]["latest"];
    let failures = f["failures"].as_array().map_or(0, |a| a.len());
    let headline = if latest.is_object() {
        let growth = latest["revenue_growth_pct"]
            .as_f64()
            .map_or(String::new(), |g| format!(" ({g:+.1}% month over month)"));
        let runway = runway_text(latest).map_or("not burning cash".to_string(), |r| {
            if r == "out of cash" {
                r
            } else {
                format!("{r} of runway")
            }
        });
        format!(
            "Revenue {} in {}{growth}; {runway}; {} in the last 24 h.",
            money(&latest["revenue"]),
            latest["month"].as_str().unwrap_or("?"),
            count(failures as u64, "failure"),
        )
    } else {
        format!(
            "No finance snapshot yet; {} in the last 24 h.",
            count(failures as u64, "failure")
        )
    };
    md.push_str(&format!("**{headline}**\n\n## Finance\n\n"));
    if latest.is_object() {
        md.push_str(&format!(
            "| {} | |\n|---|---:|\n",
            latest["month"].as_str().unwrap_or("?")
        ));
        for (label, key) in [
            ("Revenue", "revenue"),
            ("Expenses", "expenses"),
            ("Net", "net"),
            ("MRR", "mrr"),
            ("Burn", "burn"),
            ("Cash", "cash"),
        ] {
            md.push_str(&format!("| {label} | {} |\n", money(&latest[key])));
        }
        let runway = runway_text(latest).unwrap_or_else(|| "not burning cash".into());
        md.push_str(&format!("| Runway | {runway} |\n\n"));
    } else {
        md.push_str("No finance snapshot yet (run finance-metrics).\n\n");
    }
    md.push_str("## Operations\n\n");
    match f["operations"]["report"]["jobs"].as_array() {
        Some(jobs) if !jobs.is_empty() => {
            for j in jobs.iter().filter(|j| j["runs"].as_u64().unwrap_or(0) > 0) {
                let rate = j["success_rate"]
                    .as_f64()
                    .map_or("—".to_string(), |r| format!("{:.0}%", r * 100.0));
                let p95 = j["p95_ms"]
                    .as_i64()
                    .map_or("n/a".to_string(), |ms| format!("{ms} ms"));
                md.push_str(&format!(
                    "- `{}`: {}, {rate} succeeded, p95 {p95}\n",
                    j["job"].as_str().unwrap_or("?"),
                    count(j["runs"].as_u64().unwrap_or(0), "run"),
                ));
            }
            md.push('\n');
        }
        _ => md.push_str("No runs in the last 24 h.\n\n"),
    }
    md.push_str("## Health\n\n");
    match f["health"]["report"]["checks"].as_array() {
        Some(checks) => {
            for c in checks {
                md.push_str(&format!(
                    "- {} `{}`: {}\n",
                    c["status"].as_str().unwrap_or("?"),
                    c["name"].as_str().unwrap_or("?"),
                    c["message"].as_str().unwrap_or("")
                ));
            }
            md.push('\n');
        }
        None => md.push_str("No self-heal report yet.\n\n"),
    }
    md.push_str("## Needs attention\n\n");
    match f["failures"].as_array() {
        Some(list) if !list.is_empty() => {
            for x in list {
                md.push_str(&format!(
                    "- `{}` run {} {}: {}\n",
                    x["job"].as_str().unwrap_or("?"),
                    x["run"],
                    x["status"].as_str().unwrap_or("?"),
                    x["error"].as_str().unwrap_or("")
                ));
            }
        }
        _ => md.push_str("Nothing failed in the last 24 h.\n"),
    }
    md
}

/// `<base>/chat/completions`. A base with a query or fragment is refused: either would
/// aim the request at some other path than the one named here.
pub fn completions_url(base: &str) -> Result<crate::outbound::Url, String> {
    let mut url =
        crate::outbound::Outbound::parse_url("llm_base_url", base).map_err(|e| e.to_string())?;
    if url.query().is_some() || url.fragment().is_some() || base.contains('#') {
        return Err(format!(
            "llm_base_url {} has a query or fragment; give the API's base, e.g. https://api.example.com/v1",
            crate::secrets::mask_url(base)
        ));
    }
    url.path_segments_mut()
        .map_err(|()| "llm_base_url cannot take a path".to_string())?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

/// Asks the model for the narrative. Errors are sentences for the `llm_error` field.
async fn ask_model(
    ctx: &JobContext,
    base: &str,
    model: &str,
    key: Option<&str>,
    timeout: Duration,
    facts: &Value,
) -> Result<(String, Option<Value>), String> {
    let body = json!({
        "model": model,
        "temperature": 0.2,
        "messages": [
            { "role": "system", "content": "You write a concise executive brief in markdown for the CEO of a small company. Use only the facts given; headline first, then finance, operations, health and what needs attention." },
            { "role": "user", "content": facts.to_string() },
        ],
    });
    let mut req = Request::new(Method::POST, completions_url(base)?, timeout).json(&body);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = ctx.engine.outbound().send(req).await.map_err(|e| match e {
        OutboundError::Timeout(_) => format!("timed out after {} s", timeout.as_secs()),
        other => other.to_string(),
    })?;
    if !resp.is_success() {
        return Err(format!("the endpoint answered {}", resp.status));
    }
    let answer: Value = resp
        .json()
        .map_err(|e| format!("the answer is not JSON: {e}"))?;
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no choices[0].message.content")?;
    Ok((text.to_string(), answer.get("usage").cloned()))
}

pub fn check_params(params: &Value) -> Result<(), ValidationError> {
    let invalid = |field: &str, message: String| ValidationError {
        field: format!("params.{field}"),
        message,
    };
    if let Some(base) = string_param(params, "llm_base_url")? {
        completions_url(base).map_err(|m| invalid("llm_base_url", m))?;
    }
    string_param(params, "llm_model")?;
    number_in(params, "llm_timeout_secs", 1..=300)?;
    if let Some(url) = string_param(params, "webhook_url")? {
        crate::outbound::Outbound::parse_url("webhook_url", url)
            .map_err(|e| invalid("webhook_url", e.to_string()))?;
    }
    Ok(())
}

pub async fn run(ctx: JobContext) -> JobResult {
    let p = &ctx.job.params;
    let llm = &ctx.engine.config().llm;
    // A job's own params win over the server's settings; the key comes only from the
    // server (a param would be readable by anyone who can edit jobs).
    let setting = |param: &str, server: &Option<String>| {
        p.get(param)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| server.clone())
            .filter(|s| !s.is_empty())
    };
    let facts = facts(&ctx).await;
    let mut out = json!({ "facts": facts });
    let (markdown, source) = match (
        setting("llm_base_url", &llm.base_url),
        setting("llm_model", &llm.model),
    ) {
        (Some(base), Some(model)) => {
            let timeout = Duration::from_secs(
                p.get("llm_timeout_secs")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(30),
            );
            match ask_model(&ctx, &base, &model, llm.api_key.as_deref(), timeout, &facts).await {
                Ok((text, usage)) => {
                    out["usage"] = usage.unwrap_or(Value::Null);
                    out["model"] = model.into();
                    (text, "llm")
                }
                Err(e) => {
                    out["llm_error"] = e.into();
                    (template(&facts), "template")
                }
            }
        }
        _ => (template(&facts), "template"),
    };
    out["markdown"] = markdown.clone().into();
    out["source"] = source.into();
    if let Some(url) = p.get("webhook_url").and_then(|v| v.as_str()) {
        out["delivery"] = deliver(&ctx, url, &markdown)
            .await
            .map_err(|e| JobFailure {
                message: e,
                output: Some(out.clone()),
            })?;
    }
    Ok(out)
}

/// Posts the brief to the webhook unless an earlier attempt of this run already did.
pub async fn deliver(ctx: &JobContext, url: &str, markdown: &str) -> Result<Value, String> {
    let engine = &ctx.engine;
    let key = format!("ceo-brief-delivered:{}", ctx.first_run);
    if let Ok(Some(at)) = engine.fact(&key).await {
        return Ok(json!({ "sent": false, "already_sent_at": at }));
    }
    let url =
        crate::outbound::Outbound::parse_url("webhook_url", url).map_err(|e| e.to_string())?;
    let req =
        Request::new(Method::POST, url, Duration::from_secs(10)).json(&json!({ "text": markdown }));
    let resp = engine
        .outbound()
        .send(req)
        .await
        .map_err(|e| format!("cannot post the brief to the webhook: {e}"))?;
    if !resp.is_success() {
        return Err(format!("the webhook answered {}", resp.status));
    }
    let at = ctx.now().to_rfc3339();
    engine
        .record_fact(&key, &at)
        .await
        .map_err(|e| format!("the brief was sent but cannot be recorded as sent: {e}"))?;
    Ok(json!({ "sent": true, "at": at }))
}
