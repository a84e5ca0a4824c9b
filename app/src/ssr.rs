//! The server side of the dashboard: engine types mapped to wire types, with times
//! formatted and reports turned into tables. Compiled only into the server.

use crate::wire::*;
use chrono::{DateTime, Utc};
use engine::{Engine, Run};
use leptos::prelude::*;
use serde_json::Value;

/// The engine handle the server provides as context.
pub fn engine() -> Result<Engine, ServerFnError> {
    use_context::<Engine>().ok_or_else(|| ServerFnError::new("the engine is not available"))
}

/// Engine errors become the sentence the operator sees, with the status the REST API
/// gives them — mapped from the error's kind, here once for the dashboard: invalid 422,
/// not found 404, conflict 409, unavailable 503; anything else is logged with its causes
/// and summarised (500).
pub fn fail(e: engine::EngineError) -> ServerFnError {
    use engine::ErrorKind as K;
    let status = match e.kind() {
        K::Invalid => http::StatusCode::UNPROCESSABLE_ENTITY,
        K::NotFound => http::StatusCode::NOT_FOUND,
        K::Conflict => http::StatusCode::CONFLICT,
        K::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        K::Internal => {
            leptos::logging::error!("dashboard request failed: {}", engine::error::chain(&e));
            return refuse(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not answer; see the server log",
            );
        }
    };
    refuse(status, e.to_string())
}

/// An error for the operator, answered with `status` — except to a plain HTML form post
/// (no WASM yet), which Leptos answers with a redirect back to the form.
pub fn refuse(status: http::StatusCode, message: impl Into<String>) -> ServerFnError {
    let plain_form_post = use_context::<http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if !plain_form_post {
            response.set_status(status);
        }
    }
    ServerFnError::new(message.into())
}

/// Bad input in a form field: 422 with the field's name.
pub fn invalid(message: impl Into<String>) -> ServerFnError {
    refuse(http::StatusCode::UNPROCESSABLE_ENTITY, message)
}

pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `1234` ms → `1.23 s`; `45` → `45 ms`.
pub fn millis(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {}s", ms / 60_000, ms / 1000 % 60)
    }
}

impl From<engine::Status> for SchedulerStatus {
    fn from(s: engine::Status) -> Self {
        SchedulerStatus {
            state: match s.state {
                engine::SchedulerState::Running => SchedulerState::Running,
                engine::SchedulerState::Stopped => SchedulerState::Stopped,
                engine::SchedulerState::Stalled => SchedulerState::Stalled,
            },
            pid: s.pid,
            uptime_secs: s.uptime_secs,
            heartbeat_age_secs: s.heartbeat_age_secs.map(|a| a as u64),
            heartbeat_interval_secs: s.heartbeat_interval_secs,
            next_runs: s
                .next_runs
                .into_iter()
                .map(|n| NextRun {
                    job: n.job,
                    at: time(n.at),
                })
                .collect(),
            node: s.node,
            role: match (s.store.as_str(), s.epoch) {
                ("sqlite", _) => "only node".into(),
                (_, Some(epoch)) => format!("leader (epoch {epoch})"),
                (_, None) => "follower".into(),
            },
            loop_lag_ms: s.loop_lag_ms.map(|l| format!("{l:.2} ms")),
            active_runs: s.active_runs,
            paused: s.paused.map(PauseNote::from),
        }
    }
}

impl From<engine::Window> for WindowRow {
    fn from(w: engine::Window) -> Self {
        let when = match (&w.schedule, &w.duration, w.start, w.end) {
            (Some(s), Some(d), _, _) => format!(
                "{} for {d} ({}): {}",
                s,
                w.timezone,
                engine::describe_schedule(s)
            ),
            (_, _, Some(start), Some(end)) => format!("from {} to {}", time(start), time(end)),
            _ => String::new(),
        };
        WindowRow {
            id: w.id,
            name: w.name,
            when,
            jobs: w.jobs.map_or_else(|| "every job".into(), |j| j.join(", ")),
        }
    }
}

impl From<engine::Pause> for PauseNote {
    fn from(p: engine::Pause) -> Self {
        PauseNote {
            reason: p.reason,
            by: p.by,
            since: time(p.since),
            until: p.until.map(time),
        }
    }
}

/// Who the request comes from, as the server's guard put it on the request.
pub fn actor() -> String {
    use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<engine::Actor>().map(|a| a.0.clone()))
        .unwrap_or_else(|| "dashboard".into())
}

impl From<engine::Overview> for Overview {
    fn from(o: engine::Overview) -> Self {
        Overview {
            health: o.health.as_ref().map(health),
            problems: o.problems.iter().map(RunRow::from).collect(),
            hours: o
                .day
                .hours
                .iter()
                .map(|h| HourBar {
                    label: DateTime::from_timestamp_millis(h.hour_ms)
                        .map(|t| t.format("%H:00").to_string())
                        .unwrap_or_default(),
                    succeeded: h.succeeded,
                    failed: h.failed,
                    skipped: h.skipped,
                })
                .collect(),
            p95: o
                .day
                .jobs
                .iter()
                .filter_map(|s| {
                    s.p95_ms.map(|p| Bar {
                        label: s.job.clone(),
                        value: p as f64,
                        text: millis(p),
                    })
                })
                .collect(),
        }
    }
}

impl From<engine::JobSummary> for JobRow {
    fn from(s: engine::JobSummary) -> Self {
        let (j, last) = (s.job, s.last_run);
        JobRow {
            words: engine::describe_schedule(&j.schedule),
            next_run: j.next_run_at.map(time),
            last_status: last.as_ref().map(|r| r.status.as_str().to_string()),
            last_run: last.map(|r| r.id),
            id: j.id,
            name: j.name,
            kind: j.kind,
            schedule: j.schedule,
            timezone: j.timezone,
            enabled: j.enabled,
            paused: j.paused.map(PauseNote::from),
            from_file: j.from_file,
            drift: j.drift,
        }
    }
}

impl From<engine::model::AuditEntry> for AuditRow {
    fn from(a: engine::model::AuditEntry) -> Self {
        AuditRow {
            at: time(a.at),
            actor: a.actor,
            ip: a.ip,
            action: a.action,
            target: a.target,
            details: a.details,
            status: a.status,
        }
    }
}

impl From<&Run> for RunRow {
    fn from(r: &Run) -> Self {
        let when = r.started_at.or(r.scheduled_at).or(r.finished_at);
        RunRow {
            id: r.id,
            job: r.job_id.clone(),
            trigger: r.trigger.as_str().to_string(),
            status: r.status.as_str().to_string(),
            attempt: r.attempt,
            when: when.map(time).unwrap_or_default(),
            duration: r
                .started_at
                .zip(r.finished_at)
                .map(|(s, f)| millis((f - s).num_milliseconds().max(0))),
            error: r.error.clone(),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A table from an array of flat objects: `columns`, or else the first row's keys.
fn table_of(title: &str, rows: &Value, columns: &[&str]) -> Option<Table> {
    let rows = rows.as_array().filter(|r| !r.is_empty())?;
    let columns: Vec<String> = if columns.is_empty() {
        rows[0].as_object()?.keys().cloned().collect()
    } else {
        columns.iter().map(|c| c.to_string()).collect()
    };
    let body = rows
        .iter()
        .map(|r| columns.iter().map(|c| text(&r[c])).collect())
        .collect();
    Some(Table {
        title: title.to_string(),
        columns,
        rows: body,
    })
}

/// The tables a run's report holds: the arrays of objects at its top level.
pub fn tables(output: &Value) -> Vec<Table> {
    output
        .as_object()
        .map(|o| o.iter().filter_map(|(k, v)| table_of(k, v, &[])).collect())
        .unwrap_or_default()
}

impl From<engine::RunDetail> for RunDetail {
    fn from(d: engine::RunDetail) -> Self {
        let (r, log) = (&d.run, d.log);
        RunDetail {
            log,
            run: r.into(),
            finished: r.status.is_finished(),
            node: r.node.clone(),
            scheduled: r.scheduled_at.map(time),
            started: r.started_at.map(time),
            ended: r.finished_at.map(time),
            output: serde_json::to_string_pretty(&r.output).unwrap_or_default(),
            tables: tables(&r.output),
            params: r
                .params
                .as_ref()
                .map(|p| serde_json::to_string_pretty(p).unwrap_or_default()),
            rerun_of: r.rerun_of,
            reruns: r.reruns.clone().unwrap_or_default(),
        }
    }
}

pub fn health(run: &Run) -> Health {
    let o = &run.output;
    let checks = o["checks"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| Check {
                    name: text(&c["name"]),
                    state: text(&c["status"]),
                    message: text(&c["message"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let repairs = o["repairs"]
        .as_array()
        .map(|rs| rs.iter().map(text).collect())
        .unwrap_or_default();
    Health {
        at: run.finished_at.map(time).unwrap_or_default(),
        run_id: run.id,
        checks,
        repairs,
    }
}

/// Markdown to HTML with raw HTML escaped and links only to http(s), mailto or relative
/// targets: a brief written by a model is not trusted to carry markup.
pub fn markdown(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let safe = |url: &str| {
        let lower = url.trim().to_ascii_lowercase();
        !lower.contains(':')
            || ["http://", "https://", "mailto:"]
                .iter()
                .any(|p| lower.starts_with(p))
    };
    let events = Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(
        |e| match e {
            Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) if !safe(&dest_url) => Event::Start(Tag::Link {
                link_type,
                dest_url: "#".into(),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                title,
                id,
                ..
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: "#".into(),
                title,
                id,
            }),
            Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
            other => other,
        },
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

pub fn brief(run: &Run) -> Brief {
    let o = &run.output;
    Brief {
        run_id: run.id,
        at: run.finished_at.map(time).unwrap_or_default(),
        source: text(&o["source"]),
        html: markdown(o["markdown"].as_str().unwrap_or_default()),
        facts: serde_json::to_string_pretty(&o["facts"]).unwrap_or_default(),
    }
}

pub fn finance(run: &Run) -> Finance {
    let o = &run.output;
    let f = |m: &Value, k: &str| m[k].as_f64().unwrap_or(0.0);
    let months = o["months"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| Month {
                    month: text(&m["month"]),
                    revenue: f(m, "revenue"),
                    expenses: f(m, "expenses"),
                    net: f(m, "net"),
                })
                .collect()
        })
        .unwrap_or_default();
    let l = &o["latest"];
    let money = |k: &str| {
        l[k].as_f64()
            .map(|v| format!("${v:.0}"))
            .unwrap_or_else(|| "—".into())
    };
    let latest = vec![
        ("Month".into(), text(&l["month"])),
        ("MRR".into(), money("mrr")),
        ("Burn".into(), money("burn")),
        ("Cash".into(), money("cash")),
        (
            "Runway".into(),
            l["runway_months"]
                .as_f64()
                .map(|r| format!("{r:.1} months"))
                .unwrap_or_else(|| "not burning".into()),
        ),
        (
            "Revenue growth".into(),
            l["revenue_growth_pct"]
                .as_f64()
                .map(|g| format!("{g:+.1}%"))
                .unwrap_or_else(|| "—".into()),
        ),
    ];
    Finance {
        run_id: run.id,
        at: run.finished_at.map(time).unwrap_or_default(),
        source: text(&o["source"]),
        months,
        latest,
        table: table_of(
            "months",
            &o["months"],
            &[
                "month",
                "revenue",
                "expenses",
                "net",
                "mrr",
                "burn",
                "cash",
                "runway_months",
                "revenue_growth_pct",
            ],
        )
        .unwrap_or(Table {
            title: "months".into(),
            columns: vec![],
            rows: vec![],
        }),
    }
}

pub fn metrics(stats: &[engine::model::JobStats]) -> Metrics {
    let pct = |r: Option<f64>| r.map(|r| format!("{:.1}%", r * 100.0));
    Metrics {
        success: stats
            .iter()
            .map(|s| Bar {
                label: s.job.clone(),
                value: s.success_rate.unwrap_or(0.0) * 100.0,
                text: pct(s.success_rate).unwrap_or_else(|| "—".into()),
            })
            .collect(),
        table: Table {
            title: "jobs".into(),
            columns: [
                "job",
                "runs",
                "succeeded",
                "failed",
                "success",
                "p50",
                "p95",
            ]
            .map(String::from)
            .to_vec(),
            rows: stats
                .iter()
                .map(|s| {
                    vec![
                        s.job.clone(),
                        s.runs.to_string(),
                        s.succeeded.to_string(),
                        s.failed.to_string(),
                        pct(s.success_rate).unwrap_or_else(|| "—".into()),
                        s.p50_ms.map(millis).unwrap_or_else(|| "—".into()),
                        s.p95_ms.map(millis).unwrap_or_else(|| "—".into()),
                    ]
                })
                .collect(),
        },
    }
}

/// The nodes page from the status (the registry as last read) and the leader history.
pub fn cluster(
    status: engine::Status,
    terms: Vec<engine::LeaderTerm>,
    now: DateTime<Utc>,
) -> Cluster {
    let this = status.node.clone();
    Cluster {
        store: status.store,
        nodes: status
            .nodes
            .into_iter()
            .map(|n| NodeRow {
                this: n.id == this,
                heartbeat: format!("{} ago", millis((n.heartbeat_age_secs * 1000.0) as i64)),
                clock_offset: format!("{:+} ms", n.clock_offset_ms),
                clock_warning: n.clock_offset_ms.abs() > 1000,
                started: time(n.started_at),
                id: n.id,
                name: n.name,
                pid: n.pid,
                version: n.version,
                alive: n.alive,
                running: n.running,
                leader: n.leader,
            })
            .collect(),
        leaders: terms
            .into_iter()
            .map(|t| LeaderRow {
                epoch: t.epoch,
                from: time(t.acquired_at),
                until: t.ended_at.map(time).unwrap_or_default(),
                how: t.ended_how.clone().unwrap_or_default(),
                lasted: millis(
                    (t.ended_at.unwrap_or(now) - t.acquired_at)
                        .num_milliseconds()
                        .max(0),
                ),
                holder: t.holder,
            })
            .collect(),
    }
}

impl From<engine::model::alert::Incident> for IncidentRow {
    fn from(i: engine::model::alert::Incident) -> Self {
        IncidentRow {
            id: i.id,
            job: i.job().map(str::to_string),
            open: i.closed_at.is_none(),
            opened: time(i.opened_at),
            closed: i.closed_at.map(time).unwrap_or_default(),
            deliveries: i
                .deliveries
                .into_iter()
                .map(|d| DeliveryRow {
                    channel: d.channel,
                    event: d.event.as_str().into(),
                    status: d.status.as_str().into(),
                    attempts: d.attempts,
                    code: d.code.map(|c| c.to_string()).unwrap_or_default(),
                    error: d.error.unwrap_or_default(),
                    at: time(d.done_at.unwrap_or(d.created_at)),
                })
                .collect(),
            rule: i.rule,
            subject: i.subject,
            suppressed: i.suppressed,
            message: i.message,
            run: i.run,
        }
    }
}

impl From<engine::model::alert::Channel> for ChannelRow {
    fn from(c: engine::model::alert::Channel) -> Self {
        let target = match &c.smtp {
            Some(s) => format!("{}:{} → {}", s.host, s.port, s.to.join(", ")),
            None => c.url.clone().unwrap_or_default(),
        };
        ChannelRow {
            secret: c.secret.is_some() || c.smtp.as_ref().is_some_and(|s| s.password.is_some()),
            id: c.id,
            kind: c.kind.as_str().into(),
            target,
        }
    }
}

impl From<engine::model::alert::Rule> for RuleRow {
    fn from(r: engine::model::alert::Rule) -> Self {
        let scope = match (r.jobs.is_empty(), r.checks.is_empty()) {
            _ if r.on == engine::model::alert::RuleOn::System => "EchoPilot itself".to_string(),
            (true, true) => "every job and check".to_string(),
            _ => r
                .jobs
                .iter()
                .map(|j| format!("job {j}"))
                .chain(r.checks.iter().map(|c| format!("check {c}")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let detail = [
            r.threshold.map(|t| format!("{t} times")),
            r.window.clone().map(|w| format!("within {w}")),
            r.grace.clone().map(|g| format!("grace {g}")),
            r.remind_every.clone().map(|e| format!("remind every {e}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        RuleRow {
            id: r.id,
            on: r.on.as_str().replace('_', " "),
            scope,
            detail,
            channels: r.channels.join(", "),
        }
    }
}

impl CheckRow {
    /// `origin` is this server as the browser reached it (for the ping URL).
    pub fn new(v: engine::model::alert::CheckView, origin: &str) -> Self {
        let c = &v.check;
        let expect = match (&c.period, &c.schedule) {
            (Some(p), _) => format!("every {p}, grace {}", c.grace),
            (_, Some(s)) => format!("{s} ({}), grace {}", c.timezone, c.grace),
            _ => String::new(),
        };
        CheckRow {
            id: c.id.clone(),
            name: c.name.clone(),
            state: v.state.as_str().into(),
            expect,
            last_ping: v
                .last_ping
                .as_ref()
                .map(|p| format!("{} ({})", time(p.at), p.kind.as_str()))
                .unwrap_or_else(|| "never".into()),
            due: v.due_at.map(time).unwrap_or_default(),
            ping_url: format!("{origin}{}", v.ping_url),
        }
    }
}

/// This server as the browser reached it (`http://host:port`; https behind a proxy that
/// says so), for URLs shown to copy.
pub fn origin() -> String {
    let parts = use_context::<http::request::Parts>();
    let header = |name: &str| {
        parts
            .as_ref()
            .and_then(|p| p.headers.get(name))
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    };
    let scheme = header("x-forwarded-proto")
        .filter(|p| p == "https")
        .unwrap_or_else(|| "http".into());
    header("host")
        .map(|h| format!("{scheme}://{h}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn markdown_escapes_raw_html_and_unsafe_links() {
        let html = markdown("# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://e.com) ![i](http://e.com/i.png)");
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains(r#"href="https://e.com""#), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }
}
