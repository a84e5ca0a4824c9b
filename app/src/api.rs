//! Server functions. Each is a thin call into the engine — the same call its REST twin in
//! the server makes — mapped to a wire type by [`crate::ssr`]. Authentication, CSRF checks
//! and the audit log happen in the server's middleware before any of these run.

use crate::wire::*;
use leptos::prelude::*;
// Reads are GETs: they change nothing, so the audit log (which records every other
// method) leaves them out.
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::ssr::{actor, engine, fail, invalid};

#[server(prefix = "/api/fn", endpoint = "get_status", input = GetUrl)]
pub async fn get_status() -> Result<SchedulerStatus, ServerFnError> {
    Ok(engine()?.status().into())
}

#[server(prefix = "/api/fn", endpoint = "start_scheduler")]
pub async fn start_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    Ok(engine()?.start().await.map_err(fail)?.into())
}

#[server(prefix = "/api/fn", endpoint = "stop_scheduler")]
pub async fn stop_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    Ok(engine()?.stop().await.map_err(fail)?.into())
}

#[server(prefix = "/api/fn", endpoint = "restart_scheduler")]
pub async fn restart_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    Ok(engine()?.restart().await.map_err(fail)?.into())
}

/// Health from the last self-heal, the last 24 h of problems, runs per hour and p95 per job.
#[server(prefix = "/api/fn", endpoint = "get_overview", input = GetUrl)]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    Ok(engine()?.overview().await.map_err(fail)?.into())
}

#[server(prefix = "/api/fn", endpoint = "list_jobs", input = GetUrl)]
pub async fn list_jobs() -> Result<JobsPage, ServerFnError> {
    let jobs = engine()?.job_summaries().await.map_err(fail)?;
    Ok(JobsPage {
        jobs: jobs.into_iter().map(JobRow::from).collect(),
    })
}

/// The form for job `id`, or a new job's defaults when `id` is empty.
#[server(prefix = "/api/fn", endpoint = "get_job_form", input = GetUrl)]
pub async fn get_job_form(id: String) -> Result<JobForm, ServerFnError> {
    let engine = engine()?;
    let kinds = engine.kinds();
    if id.is_empty() {
        return Ok(JobForm {
            id: String::new(),
            name: String::new(),
            kind: "http".into(),
            schedule: "0 */5 * * * *".into(),
            timezone: "UTC".into(),
            timeout_secs: 60,
            retries: 0,
            retry_backoff_secs: 10,
            overlap: "skip".into(),
            misfire: "run_once".into(),
            params: "{}".into(),
            enabled: true,
            kinds,
        });
    }
    let j = engine.get_job(&id).map_err(fail)?;
    Ok(JobForm {
        id: j.id,
        name: j.name,
        kind: j.kind,
        schedule: j.schedule,
        timezone: j.timezone,
        timeout_secs: j.timeout_secs,
        retries: j.retries,
        retry_backoff_secs: j.retry_backoff_secs,
        overlap: serde_json::to_value(j.overlap)?
            .as_str()
            .unwrap_or("skip")
            .into(),
        misfire: serde_json::to_value(j.misfire)?
            .as_str()
            .unwrap_or("skip")
            .into(),
        params: serde_json::to_string_pretty(&j.params)?,
        enabled: j.enabled,
        kinds,
    })
}

/// The schedule in words and its next five fire times (each a pause or a maintenance
/// window of job `job` swallows marked), or why it is refused.
#[server(prefix = "/api/fn", endpoint = "preview_schedule", input = GetUrl)]
pub async fn preview_schedule(
    schedule: String,
    timezone: String,
    #[server(default)] job: String,
) -> Result<Preview, ServerFnError> {
    Ok(
        match engine()?.preview_schedule(&schedule, &timezone, None, 5, Some(&job)) {
            Ok(p) => Preview {
                words: p.description,
                slots: p
                    .slots
                    .into_iter()
                    .map(|s| Slot {
                        local: s.local,
                        utc: crate::ssr::time(s.at),
                        change: s.offset_change,
                        swallowed: s.swallowed,
                    })
                    .collect(),
                error: None,
            },
            Err(e) => Preview {
                words: String::new(),
                slots: vec![],
                error: Some(e.to_string()),
            },
        },
    )
}

/// Creates (when `original` is empty) or replaces a job; answers its id.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api/fn", endpoint = "save_job")]
pub async fn save_job(
    original: String,
    id: String,
    name: String,
    kind: String,
    schedule: String,
    timezone: String,
    timeout_secs: String,
    retries: String,
    overlap: String,
    misfire: String,
    params: String,
    enabled: Option<String>,
) -> Result<String, ServerFnError> {
    let number = |field: &str, v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("{field}: {v:?} is not a whole number")))
    };
    let params: serde_json::Value = serde_json::from_str(if params.trim().is_empty() {
        "{}"
    } else {
        &params
    })
    .map_err(|e| invalid(format!("params: not JSON: {e}")))?;
    fn as_enum<T: serde::de::DeserializeOwned>(field: &str, v: &str) -> Result<T, ServerFnError> {
        serde_json::from_value(serde_json::Value::String(v.into()))
            .map_err(|_| invalid(format!("{field}: {v:?} is not an option")))
    }
    let spec = engine::JobSpec {
        id: Some(id.trim().to_string()),
        name: Some(name.trim().to_string()).filter(|n| !n.is_empty()),
        kind: Some(kind),
        schedule: Some(schedule),
        timezone: Some(timezone),
        enabled: Some(enabled.is_some()),
        timeout_secs: Some(number("timeout_secs", &timeout_secs)?),
        retries: Some(number("retries", &retries)?.min(u64::from(u32::MAX)) as u32),
        overlap: Some(as_enum("overlap", &overlap)?),
        misfire: Some(as_enum("misfire", &misfire)?),
        params: Some(params),
        ..Default::default()
    };
    let engine = engine()?;
    let job = if original.is_empty() {
        engine.create_job(spec).await
    } else {
        engine.update_job(&original, spec, false).await
    }
    .map_err(fail)?;
    Ok(job.id)
}

/// Enables or disables job `id`; disabling needs a reason (it lands in the audit log).
#[server(prefix = "/api/fn", endpoint = "set_job_enabled")]
pub async fn set_job_enabled(
    id: String,
    enabled: bool,
    #[server(default)] reason: String,
) -> Result<(), ServerFnError> {
    if !enabled {
        engine::model::pause::valid_reason(Some(&reason)).map_err(|e| invalid(e.to_string()))?;
    }
    let spec = engine::JobSpec {
        enabled: Some(enabled),
        ..Default::default()
    };
    engine()?.update_job(&id, spec, true).await.map_err(fail)?;
    Ok(())
}

/// Starts a run of job `id` now; answers the run's id.
#[server(prefix = "/api/fn", endpoint = "run_job_now")]
pub async fn run_job_now(id: String) -> Result<i64, ServerFnError> {
    let run = engine()?
        .run_now(&id, engine::Trigger::Manual)
        .await
        .map_err(fail)?;
    Ok(run.id)
}

/// Deletes job `id` (its runs stay); needs a reason, which lands in the audit log.
#[server(prefix = "/api/fn", endpoint = "delete_job")]
pub async fn delete_job(
    id: String,
    #[server(default)] reason: String,
) -> Result<(), ServerFnError> {
    engine::model::pause::valid_reason(Some(&reason)).map_err(|e| invalid(e.to_string()))?;
    engine()?.delete_job(&id).await.map_err(fail)
}

/// Starts a run of job `id` now with `params` (a JSON object) over its own; answers the
/// run's id.
#[server(prefix = "/api/fn", endpoint = "run_with_params")]
pub async fn run_with_params(id: String, params: String) -> Result<i64, ServerFnError> {
    let overrides: serde_json::Value =
        serde_json::from_str(&params).map_err(|e| invalid(format!("params: not JSON ({e})")))?;
    let run = engine()?
        .run_with(&id, engine::Trigger::Manual, Some(overrides))
        .await
        .map_err(fail)?;
    Ok(run.id)
}

/// The pauses in force, for the banner on every page.
#[server(prefix = "/api/fn", endpoint = "get_pauses", input = GetUrl)]
pub async fn get_pauses() -> Result<Pauses, ServerFnError> {
    let engine = engine()?;
    Ok(Pauses {
        all: engine.scheduler_paused().map(PauseNote::from),
        jobs: engine
            .list_jobs()
            .into_iter()
            .filter_map(|j| j.paused.map(|p| (j.id, PauseNote::from(p))))
            .collect(),
    })
}

/// Pauses job `id` — or everything, when `id` is empty — for `for_` (`2h`; empty: until
/// resumed), saying why; `cancel_running` cancels the runs in flight too.
#[server(prefix = "/api/fn", endpoint = "pause")]
pub async fn pause(
    id: String,
    reason: String,
    #[server(default)] for_: String,
    #[server(default)] cancel_running: bool,
) -> Result<(), ServerFnError> {
    let req = engine::PauseRequest {
        reason: Some(reason),
        until: None,
        for_: Some(for_).filter(|f| !f.trim().is_empty()),
        cancel_running,
    };
    let engine = engine()?;
    if id.is_empty() {
        engine.pause_all(&req, &actor()).await.map_err(fail)?;
    } else {
        engine.pause_job(&id, &req, &actor()).await.map_err(fail)?;
    }
    Ok(())
}

/// Ends the pause of job `id` — or of everything, when `id` is empty — now.
#[server(prefix = "/api/fn", endpoint = "resume")]
pub async fn resume(id: String) -> Result<(), ServerFnError> {
    let engine = engine()?;
    if id.is_empty() {
        engine.resume_all(&actor()).await.map_err(fail)?;
    } else {
        engine.resume_job(&id, &actor()).await.map_err(fail)?;
    }
    Ok(())
}

/// Every maintenance window.
#[server(prefix = "/api/fn", endpoint = "list_windows", input = GetUrl)]
pub async fn list_windows() -> Result<Vec<WindowRow>, ServerFnError> {
    Ok(engine()?
        .list_windows()
        .into_iter()
        .map(WindowRow::from)
        .collect())
}

/// Adds a maintenance window: recurring (`schedule` and `duration`) or one-off (`start`
/// and `end`, RFC 3339), for every job or the comma-separated `jobs`.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api/fn", endpoint = "add_window")]
pub async fn add_window(
    id: String,
    name: String,
    #[server(default)] schedule: String,
    #[server(default)] duration: String,
    #[server(default)] start: String,
    #[server(default)] end: String,
    #[server(default)] timezone: String,
    #[server(default)] jobs: String,
) -> Result<String, ServerFnError> {
    let given = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let jobs: Vec<String> = jobs
        .split(',')
        .map(|j| j.trim().to_string())
        .filter(|j| !j.is_empty())
        .collect();
    let spec = engine::WindowSpec {
        id: given(id),
        name: given(name),
        schedule: given(schedule),
        duration: given(duration),
        start: given(start),
        end: given(end),
        timezone: given(timezone),
        jobs: (!jobs.is_empty()).then_some(jobs),
    };
    Ok(engine()?.create_window(spec).await.map_err(fail)?.id)
}

#[server(prefix = "/api/fn", endpoint = "delete_window")]
pub async fn delete_window(id: String) -> Result<(), ServerFnError> {
    engine()?.delete_window(&id).await.map_err(fail)
}

/// Cancels run `id`, saying why (optional); its work is stopped.
#[server(prefix = "/api/fn", endpoint = "cancel_run")]
pub async fn cancel_run(id: i64, #[server(default)] reason: String) -> Result<(), ServerFnError> {
    let reason = Some(reason).filter(|r| !r.trim().is_empty());
    engine()?
        .cancel_run(id, reason.as_deref(), &actor())
        .await
        .map_err(fail)?;
    Ok(())
}

/// Starts ended run `id` again with the same params; answers the new run's id.
#[server(prefix = "/api/fn", endpoint = "rerun_run")]
pub async fn rerun_run(id: i64) -> Result<i64, ServerFnError> {
    Ok(engine()?.rerun(id).await.map_err(fail)?.id)
}

/// Cancels (`action = "cancel"`) or reruns (`"rerun"`) every run the runs filter matches;
/// with `dry_run`, only counts them (to confirm first).
#[server(prefix = "/api/fn", endpoint = "bulk_runs")]
pub async fn bulk_runs(
    action: String,
    job: String,
    status: String,
    dry_run: bool,
) -> Result<BulkCount, ServerFnError> {
    let action = match action.as_str() {
        "cancel" => engine::Bulk::Cancel,
        "rerun" => engine::Bulk::Rerun,
        other => return Err(invalid(format!("action: {other:?} is not cancel or rerun"))),
    };
    let req = engine::RunsRequest {
        job: Some(job),
        status: Some(status),
        limit: engine::runs::MAX_PAGE,
        before: None,
        after: None,
    };
    let done = engine()?
        .bulk(action, req, dry_run, &actor())
        .await
        .map_err(fail)?;
    Ok(BulkCount {
        count: done.count,
        more: done.more,
    })
}

/// Runs newest first, filtered by job and status (empty: any), 25 a page before `before`.
#[server(prefix = "/api/fn", endpoint = "list_runs", input = GetUrl)]
pub async fn list_runs(
    job: String,
    status: String,
    before: Option<i64>,
) -> Result<RunsPage, ServerFnError> {
    let engine = engine()?;
    let page = engine
        .runs_page(engine::RunsRequest {
            job: Some(job),
            status: Some(status),
            limit: 25,
            before,
            after: None,
        })
        .await
        .map_err(fail)?;
    Ok(RunsPage {
        runs: page.runs.iter().map(RunRow::from).collect(),
        next: page.next,
        jobs: engine.list_jobs().into_iter().map(|j| j.id).collect(),
    })
}

#[server(prefix = "/api/fn", endpoint = "get_run", input = GetUrl)]
pub async fn get_run(id: i64) -> Result<RunDetail, ServerFnError> {
    Ok(engine()?.run_detail(id).await.map_err(fail)?.into())
}

/// Every CEO brief, newest first (the last 50).
#[server(prefix = "/api/fn", endpoint = "list_briefs", input = GetUrl)]
pub async fn list_briefs() -> Result<Vec<Brief>, ServerFnError> {
    let q = engine::RunQuery {
        job: Some(engine::automations::brief::KIND.into()),
        status: Some(engine::RunStatus::Succeeded),
        limit: 50,
        ..Default::default()
    };
    let runs = engine()?.list_runs(&q).await.map_err(fail)?;
    Ok(runs.iter().map(crate::ssr::brief).collect())
}

/// The latest finance snapshot, if one was taken.
#[server(prefix = "/api/fn", endpoint = "get_finance", input = GetUrl)]
pub async fn get_finance() -> Result<Option<Finance>, ServerFnError> {
    let run = engine()?
        .latest_report(engine::automations::finance::KIND)
        .await
        .map_err(fail)?;
    Ok(run.as_ref().map(crate::ssr::finance))
}

/// Success rate and durations per job over the last 24 h, from the run history.
#[server(prefix = "/api/fn", endpoint = "get_metrics", input = GetUrl)]
pub async fn get_metrics() -> Result<Metrics, ServerFnError> {
    let day = engine()?.day_figures().await.map_err(fail)?;
    Ok(crate::ssr::metrics(&day.jobs))
}

/// The newest 200 audit entries.
#[server(prefix = "/api/fn", endpoint = "list_audit", input = GetUrl)]
pub async fn list_audit() -> Result<Vec<AuditRow>, ServerFnError> {
    let rows = engine()?.audit(200).await.map_err(fail)?;
    Ok(rows.into_iter().map(AuditRow::from).collect())
}

/// The nodes sharing the store and the newest 50 leader terms.
#[server(prefix = "/api/fn", endpoint = "get_cluster", input = GetUrl)]
pub async fn get_cluster() -> Result<Cluster, ServerFnError> {
    let engine = engine()?;
    let terms = engine.leader_history(50).await.map_err(fail)?;
    Ok(crate::ssr::cluster(engine.status(), terms, engine.now()))
}

// ---- alerts -------------------------------------------------------------------------

/// Open incidents first, then the newest, each with its deliveries.
#[server(prefix = "/api/fn", endpoint = "list_incidents", input = GetUrl)]
pub async fn list_incidents() -> Result<Vec<IncidentRow>, ServerFnError> {
    let list = engine()?.list_incidents(100).await.map_err(fail)?;
    Ok(list.into_iter().map(IncidentRow::from).collect())
}

#[server(prefix = "/api/fn", endpoint = "list_channels", input = GetUrl)]
pub async fn list_channels() -> Result<Vec<ChannelRow>, ServerFnError> {
    let list = engine()?.list_channels().await.map_err(fail)?;
    Ok(list.into_iter().map(ChannelRow::from).collect())
}

/// Adds a channel: `url` (and `secret` for a webhook), or the SMTP settings for email
/// (`to` comma-separated).
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api/fn", endpoint = "add_channel")]
pub async fn add_channel(
    id: String,
    kind: String,
    #[server(default)] url: String,
    #[server(default)] secret: String,
    #[server(default)] host: String,
    #[server(default)] port: String,
    #[server(default)] tls: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] user: String,
    #[server(default)] password: String,
) -> Result<String, ServerFnError> {
    let given = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let email = kind == "email";
    let port = match given(port) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| invalid(format!("port: {p:?} is not a port number")))?,
        ),
        None => None,
    };
    let tls = match given(tls).as_deref() {
        None | Some("starttls") => None,
        Some("tls") => Some(engine::model::alert::SmtpTls::Tls),
        Some("none") => Some(engine::model::alert::SmtpTls::None),
        Some(other) => {
            return Err(invalid(format!(
                "tls: {other:?} is not starttls, tls or none"
            )))
        }
    };
    let spec = engine::model::alert::ChannelSpec {
        id: given(id),
        kind: given(kind),
        url: if email { None } else { given(url) },
        secret: if email { None } else { given(secret) },
        host: if email { given(host) } else { None },
        port: if email { port } else { None },
        tls: if email { tls } else { None },
        from: if email { given(from) } else { None },
        to: email.then(|| {
            to.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        }),
        user: if email { given(user) } else { None },
        password: if email { given(password) } else { None },
        smtp: None,
    };
    Ok(engine()?.create_channel(spec).await.map_err(fail)?.id)
}

/// Sends a test notice through channel `id` now; answers what happened, in words.
#[server(prefix = "/api/fn", endpoint = "test_channel")]
pub async fn test_channel(id: String) -> Result<String, ServerFnError> {
    let a = engine()?.test_channel(&id).await.map_err(fail)?;
    Ok(match (a.error, a.code) {
        (None, Some(code)) => format!("Channel {id}: test notice taken ({code})"),
        (None, None) => format!("Channel {id}: test notice taken"),
        (Some(e), _) => format!("Channel {id}: the test notice failed: {e}"),
    })
}

#[server(prefix = "/api/fn", endpoint = "delete_channel")]
pub async fn delete_channel(id: String) -> Result<(), ServerFnError> {
    engine()?.delete_channel(&id).await.map_err(fail)
}

#[server(prefix = "/api/fn", endpoint = "list_rules", input = GetUrl)]
pub async fn list_rules() -> Result<Vec<RuleRow>, ServerFnError> {
    let list = engine()?.list_rules().await.map_err(fail)?;
    Ok(list.into_iter().map(RuleRow::from).collect())
}

/// Adds a rule; `jobs`, `checks` and `channels` are comma-separated ids.
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api/fn", endpoint = "add_rule")]
pub async fn add_rule(
    id: String,
    on: String,
    #[server(default)] jobs: String,
    #[server(default)] checks: String,
    #[server(default)] threshold: String,
    #[server(default)] window: String,
    #[server(default)] grace: String,
    #[server(default)] channels: String,
    #[server(default)] remind_every: String,
) -> Result<String, ServerFnError> {
    let given = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let ids = |s: String| -> Vec<String> {
        s.split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let threshold = match given(threshold) {
        Some(t) => Some(
            t.parse::<u32>()
                .map_err(|_| invalid(format!("threshold: {t:?} is not a whole number")))?,
        ),
        None => None,
    };
    let spec = engine::model::alert::RuleSpec {
        id: given(id),
        on: given(on),
        jobs: Some(ids(jobs)),
        checks: Some(ids(checks)),
        threshold,
        window: given(window),
        grace: given(grace),
        channels: Some(ids(channels)),
        remind_every: given(remind_every),
        created_at: None,
    };
    Ok(engine()?.create_rule(spec).await.map_err(fail)?.id)
}

#[server(prefix = "/api/fn", endpoint = "delete_rule")]
pub async fn delete_rule(id: String) -> Result<(), ServerFnError> {
    engine()?.delete_rule(&id).await.map_err(fail)
}

#[server(prefix = "/api/fn", endpoint = "list_checks", input = GetUrl)]
pub async fn list_checks() -> Result<Vec<CheckRow>, ServerFnError> {
    let origin = crate::ssr::origin();
    let list = engine()?.list_checks().await.map_err(fail)?;
    Ok(list
        .into_iter()
        .map(|v| CheckRow::new(v, &origin))
        .collect())
}

/// Adds an inbound check expected every `period` (or on `schedule`), down past `grace`.
#[server(prefix = "/api/fn", endpoint = "add_check")]
pub async fn add_check(
    id: String,
    #[server(default)] name: String,
    #[server(default)] period: String,
    #[server(default)] schedule: String,
    #[server(default)] timezone: String,
    grace: String,
) -> Result<String, ServerFnError> {
    let given = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let spec = engine::model::alert::CheckSpec {
        id: given(id),
        name: given(name),
        period: given(period),
        schedule: given(schedule),
        timezone: given(timezone),
        grace: given(grace),
        ..Default::default()
    };
    Ok(engine()?.create_check(spec).await.map_err(fail)?.check.id)
}

/// A check's newest pings, newest first.
#[server(prefix = "/api/fn", endpoint = "check_pings", input = GetUrl)]
pub async fn check_pings(id: String) -> Result<Vec<PingRow>, ServerFnError> {
    let (_, pings) = engine()?.get_check(&id).await.map_err(fail)?;
    Ok(pings
        .into_iter()
        .map(|p| PingRow {
            at: crate::ssr::time(p.at),
            kind: p.kind.as_str().into(),
            source: p.source.unwrap_or_default(),
            body: p.body.unwrap_or_default(),
        })
        .collect())
}

#[server(prefix = "/api/fn", endpoint = "delete_check")]
pub async fn delete_check(id: String) -> Result<(), ServerFnError> {
    engine()?.delete_check(&id).await.map_err(fail)
}
