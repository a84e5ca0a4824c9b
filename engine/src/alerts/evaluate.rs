//! One alerting pass: for every rule and every subject it watches, whether an incident
//! opens, is reminded of, or closes. What decides is the store's record — the ledger of
//! runs after the last incident of the pair, the checks' pings, the incidents themselves
//! — so the pass is idempotent, and a new leader carries on where the last one stopped.

use super::{Channel, Check, CHANNEL, CHECK, RULE};
use crate::error::Result;
use crate::model::alert::{AlertEvent, CheckState, Incident, PingKind, Rule, RuleOn};
use crate::model::{DesiredState, Job, Run, RunQuery, RunStatus, SchedulerState, Trigger};
use crate::store::{NewIncident, Notice};
use crate::Engine;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// Most runs of one job read per pass.
const SCAN: u32 = 200;

fn failing(s: RunStatus) -> bool {
    matches!(s, RunStatus::Failed | RunStatus::TimedOut)
}

/// What a pass decided for one (rule, subject).
enum Verdict {
    Open {
        run: Option<i64>,
        message: String,
        error: Option<String>,
    },
    Close {
        run: Option<i64>,
    },
    Nothing,
}

/// A subject's identity in the events and the incident.
struct Subject<'a> {
    key: String,
    job: Option<&'a Job>,
    check: Option<&'a Check>,
}

pub(super) async fn pass(engine: &Engine) -> Result<()> {
    let rules: Vec<Rule> = engine.items(RULE).await?;
    if rules.iter().any(|r| r.on == RuleOn::System) {
        store_health(engine, &rules).await;
    }
    if rules.is_empty() {
        return Ok(());
    }
    let store = &engine.inner.store;
    let channels: Vec<Channel> = engine.items(CHANNEL).await?;
    let checks: Vec<Check> = engine.items(CHECK).await?;
    let jobs = engine.list_jobs();
    let latest: HashMap<(String, String), Incident> = store
        .latest_incidents()
        .await?
        .into_iter()
        .map(|i| ((i.rule.clone(), i.subject.clone()), i))
        .collect();
    let pings = if checks.is_empty() {
        Vec::new()
    } else {
        store.last_pings().await?
    };
    for rule in &rules {
        let mut subjects = Vec::new();
        if rule.on == RuleOn::System {
            system(engine, rule, &channels, &latest).await?;
            continue;
        }
        for job in jobs.iter().filter(|j| rule.watches_job(&j.id)) {
            subjects.push(Subject {
                key: format!("job:{}", job.id),
                job: Some(job),
                check: None,
            });
        }
        for check in checks.iter().filter(|c| rule.watches_check(&c.id)) {
            subjects.push(Subject {
                key: format!("check:{}", check.id),
                job: None,
                check: Some(check),
            });
        }
        for s in subjects {
            let last = latest.get(&(rule.id.clone(), s.key.clone()));
            let open = last.filter(|i| i.closed_at.is_none());
            let verdict = match (s.job, s.check) {
                (Some(job), _) => judge_job(engine, rule, job, last).await?,
                (_, Some(check)) => judge_check(engine, rule, check, &pings),
                _ => Verdict::Nothing,
            };
            act(engine, rule, &channels, &s, open, verdict).await?;
        }
    }
    Ok(())
}

/// Carries out a verdict: the incident's change and its notices in one store write.
async fn act(
    engine: &Engine,
    rule: &Rule,
    channels: &[Channel],
    s: &Subject<'_>,
    open: Option<&Incident>,
    verdict: Verdict,
) -> Result<()> {
    let now = engine.now();
    let store = &engine.inner.store;
    let event = |what: AlertEvent,
                 incident: Option<i64>,
                 run: Option<i64>,
                 message: &str,
                 error: Option<&str>| {
        let mut body = serde_json::json!({
            "event": what.as_str(),
            "incident": incident,
            "rule": rule.id,
            "subject": s.key,
            "message": message,
            "at": now,
        });
        if let Some(j) = s.job {
            body["job"] = j.id.clone().into();
        }
        if let Some(c) = s.check {
            body["check"] = c.id.clone().into();
        }
        if let Some(r) = run {
            body["run"] = r.into();
        }
        if let Some(e) = error {
            body["error"] = e.into();
        }
        body.to_string()
    };
    let targets: Vec<&str> = rule
        .channels
        .iter()
        .filter(|c| channels.iter().any(|ch| ch.id == **c))
        .map(String::as_str)
        .collect();
    match (verdict, open) {
        (
            Verdict::Open {
                run,
                message,
                error,
            },
            None,
        ) => {
            let suppressed = s.job.and_then(|j| crate::pause::swallowed(engine, j, now));
            // `incident: null` here; the store writes the id in with the incident.
            let body = event(AlertEvent::Opened, None, run, &message, error.as_deref());
            let silent = suppressed.is_some() || rule.on == RuleOn::Recovered;
            let notices = notices(&targets, silent, AlertEvent::Opened, &body);
            let opened = store
                .open_incident(&NewIncident {
                    rule: &rule.id,
                    subject: &s.key,
                    at: now,
                    run,
                    message: &message,
                    suppressed: suppressed.as_deref(),
                    notices: &notices,
                })
                .await?;
            if let Some(id) = opened {
                engine.event(
                    "incident_opened",
                    serde_json::json!({ "incident": id, "rule": rule.id, "subject": s.key, "message": message, "suppressed": suppressed }),
                );
            }
        }
        (Verdict::Close { run }, Some(i)) => {
            let message = format!(
                "{} recovered (incident {} of rule {})",
                subject_name(s),
                i.id,
                rule.id
            );
            let body = event(AlertEvent::Recovered, Some(i.id), run, &message, None);
            let notices = notices(
                &targets,
                i.suppressed.is_some(),
                AlertEvent::Recovered,
                &body,
            );
            if store.close_incident(i.id, now, run, &notices).await? {
                engine.event(
                    "incident_closed",
                    serde_json::json!({ "incident": i.id, "rule": rule.id, "subject": s.key }),
                );
            }
        }
        (Verdict::Nothing | Verdict::Open { .. }, Some(i))
            if i.suppressed.is_none() && rule.on != RuleOn::Recovered =>
        {
            let (Some(every), Some(last)) = (rule.remind_every(), i.notified_at) else {
                return Ok(());
            };
            if now - last < every {
                return Ok(());
            }
            let message = format!(
                "still open since {}: {}",
                i.opened_at.format("%Y-%m-%d %H:%M:%S UTC"),
                i.message
            );
            let body = event(AlertEvent::Reminder, Some(i.id), i.run, &message, None);
            let notices = notices(&targets, false, AlertEvent::Reminder, &body);
            store
                .remind_incident(i.id, now, Some(last), &notices)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// One notice of `event` with `body` to each of `targets`; none when `silent`.
fn notices<'a>(
    targets: &[&'a str],
    silent: bool,
    event: AlertEvent,
    body: &'a str,
) -> Vec<Notice<'a>> {
    if silent {
        return Vec::new();
    }
    targets
        .iter()
        .map(|c| Notice {
            channel: c,
            event,
            body,
        })
        .collect()
}

fn subject_name(s: &Subject<'_>) -> String {
    match (s.job, s.check) {
        (Some(j), _) => format!("job {}", j.id),
        (_, Some(c)) => format!("check {}", c.id),
        _ => s.key.clone(),
    }
}

/// The time between two slots of `job` around now, if its schedule has one.
fn interval(job: &Job, now: DateTime<Utc>) -> Option<Duration> {
    let s = crate::model::Schedule::parse(&job.schedule, &job.timezone).ok()?;
    let next = s.upcoming(now, 2);
    match next.as_slice() {
        [a, b] => Some(*b - *a),
        _ => None,
    }
}

async fn judge_job(
    engine: &Engine,
    rule: &Rule,
    job: &Job,
    last: Option<&Incident>,
) -> Result<Verdict> {
    let now = engine.now();
    let store = &engine.inner.store;
    let runs_after = |after: i64, status: Option<RunStatus>| RunQuery {
        job: Some(job.id.clone()),
        status,
        before: None,
        after: (after > 0).then_some(after),
        limit: SCAN,
    };
    if let Some(open) = last.filter(|i| i.closed_at.is_none()) {
        // Open: closes with the first success after what opened it (on time, for late).
        let mut ok = store
            .list_runs(&runs_after(
                open.run.unwrap_or(0),
                Some(RunStatus::Succeeded),
            ))
            .await?;
        ok.reverse();
        let grace = rule.grace();
        let closer = ok.into_iter().find(|r| {
            r.started_at
                .is_some_and(|s| s >= open.opened_at || open.run.is_some())
                && (rule.on != RuleOn::Late || lag(r).is_none_or(|l| l <= grace))
        });
        return Ok(match closer {
            Some(r) => Verdict::Close { run: Some(r.id) },
            None => Verdict::Nothing,
        });
    }
    // Not open: the runs since the last incident closed, oldest first.
    let cursor = last.and_then(|i| i.closed_by.or(i.run)).unwrap_or(0);
    let mut runs = store.list_runs(&runs_after(cursor, None)).await?;
    runs.reverse();
    let since = last
        .and_then(|i| i.closed_at)
        .map_or(rule.created_at, |c| c.max(rule.created_at));
    let fresh = |r: &Run| r.finished_at.or(r.started_at).is_some_and(|t| t >= since);
    let mut streak = 0u32;
    let mut recent: std::collections::VecDeque<DateTime<Utc>> = Default::default();
    for r in runs.iter().filter(|r| fresh(r)) {
        let failed = failing(r.status);
        let what = || {
            let err = r.error.clone();
            (
                format!(
                    "job {} run {} {}{}",
                    job.id,
                    r.id,
                    r.status.as_str().replace('_', " "),
                    err.as_deref()
                        .map(|e| format!(": {}", first_line(e)))
                        .unwrap_or_default()
                ),
                err,
            )
        };
        match rule.on {
            RuleOn::Failed | RuleOn::Recovered if failed => {
                let (message, error) = what();
                return Ok(Verdict::Open {
                    run: Some(r.id),
                    message,
                    error,
                });
            }
            RuleOn::ConsecutiveFailures => {
                if failed {
                    streak += 1;
                } else if r.status == RunStatus::Succeeded {
                    streak = 0;
                }
                if failed && streak >= rule.threshold.unwrap_or(1) {
                    let (m, error) = what();
                    return Ok(Verdict::Open {
                        run: Some(r.id),
                        message: format!("{streak} failures in a row; {m}"),
                        error,
                    });
                }
            }
            RuleOn::FailuresInWindow if failed => {
                let at = r.finished_at.unwrap_or(now);
                recent.push_back(at);
                let window = rule.window().unwrap_or(Duration::hours(1));
                while recent.front().is_some_and(|t| at - *t > window) {
                    recent.pop_front();
                }
                let n = recent.len() as u32;
                if n >= rule.threshold.unwrap_or(1) {
                    let (m, error) = what();
                    let w = rule.window.clone().unwrap_or_default();
                    return Ok(Verdict::Open {
                        run: Some(r.id),
                        message: format!("{n} failures within {w}; {m}"),
                        error,
                    });
                }
            }
            RuleOn::Missed
                if r.status == RunStatus::Skipped
                    && r.error.as_deref().is_some_and(|e| e.starts_with("missed:")) =>
            {
                let slot = r
                    .scheduled_at
                    .map(|s| s.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                return Ok(Verdict::Open {
                    run: Some(r.id),
                    message: format!(
                        "job {} missed its slot {slot}: {}",
                        job.id,
                        r.error.clone().unwrap_or_default()
                    ),
                    error: None,
                });
            }
            RuleOn::Late => {
                if let Some(l) = lag(r).filter(|l| *l > rule.grace()) {
                    return Ok(Verdict::Open {
                        run: Some(r.id),
                        message: format!(
                            "job {} run {} started {} s after its slot (grace {})",
                            job.id,
                            r.id,
                            l.num_seconds(),
                            rule.grace.clone().unwrap_or_else(|| "60s".into())
                        ),
                        error: None,
                    });
                }
                if let (RunStatus::Running, Some(start), Some(every)) =
                    (r.status, r.started_at, interval(job, now))
                {
                    if now - start > every {
                        return Ok(Verdict::Open {
                            run: Some(r.id),
                            message: format!("job {} run {} has been running for {} s, longer than its interval ({} s)", job.id, r.id, (now - start).num_seconds(), every.num_seconds()),
                            error: None,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    // A job that has not fired at all for twice its interval (its slots were neither run
    // nor recorded: the scheduler is not doing its work).
    if rule.on == RuleOn::Missed
        && job.enabled
        && crate::scheduler::desired(engine) == DesiredState::Running
        && crate::pause::swallowed(engine, job, now).is_none()
    {
        if let Some(every) = interval(job, now) {
            let newest = match runs.last() {
                Some(r) => Some(r.clone()),
                None => store
                    .list_runs(&RunQuery {
                        job: Some(job.id.clone()),
                        status: None,
                        before: None,
                        after: None,
                        limit: 1,
                    })
                    .await?
                    .pop(),
            };
            let last_seen = newest
                .as_ref()
                .and_then(|r| r.scheduled_at.or(r.started_at))
                .unwrap_or(since)
                .max(since);
            if now - last_seen > every * 2 {
                return Ok(Verdict::Open {
                    run: None,
                    message: format!(
                        "job {} has not run since {} (expected every {} s)",
                        job.id,
                        last_seen.format("%Y-%m-%d %H:%M:%S UTC"),
                        every.num_seconds()
                    ),
                    error: None,
                });
            }
        }
    }
    Ok(Verdict::Nothing)
}

/// How long after its slot a scheduled run started.
fn lag(r: &Run) -> Option<Duration> {
    if !matches!(r.trigger, Trigger::Schedule | Trigger::CatchUp) {
        return None;
    }
    Some(r.started_at? - r.scheduled_at?)
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}

fn judge_check(
    engine: &Engine,
    rule: &Rule,
    check: &Check,
    pings: &[(String, crate::model::alert::Ping)],
) -> Verdict {
    let newest = |kind: PingKind| {
        pings
            .iter()
            .filter(|(c, p)| *c == check.id && p.kind == kind)
            .map(|(_, p)| p.at)
            .max()
    };
    let fail = newest(PingKind::Fail);
    let (state, due) = check.state(newest(PingKind::Success), fail, engine.now());
    let reported_failure = state == CheckState::Down
        && fail.is_some_and(|f| newest(PingKind::Success).is_none_or(|s| f > s));
    let due = due
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let open = match rule.on {
        RuleOn::Failed
        | RuleOn::Recovered
        | RuleOn::ConsecutiveFailures
        | RuleOn::FailuresInWindow => {
            reported_failure.then(|| format!("check {} reported a failure", check.id))
        }
        RuleOn::Missed => (state == CheckState::Down).then(|| {
            if reported_failure {
                format!("check {} reported a failure", check.id)
            } else {
                format!(
                    "check {} is down: no ping since it was due at {due} (grace {})",
                    check.id, check.grace
                )
            }
        }),
        RuleOn::Late => matches!(state, CheckState::Late | CheckState::Down)
            .then(|| format!("check {} is late: it was due at {due}", check.id)),
        RuleOn::System => None,
    };
    match open {
        Some(message) => Verdict::Open {
            run: None,
            message,
            error: None,
        },
        None if state == CheckState::Up => Verdict::Close { run: None },
        None => Verdict::Nothing,
    }
}

/// EchoPilot's own health, for `system` rules: the scheduler stalled, the loop restarted
/// by the watchdog, leadership moved.
async fn system(
    engine: &Engine,
    rule: &Rule,
    channels: &[Channel],
    latest: &HashMap<(String, String), Incident>,
) -> Result<()> {
    let status = engine.status();
    let state = &engine.inner.alerts;
    let s = |key: &str| Subject {
        key: format!("system:{key}"),
        job: None,
        check: None,
    };
    let open = |key: &str| {
        latest
            .get(&(rule.id.clone(), format!("system:{key}")))
            .filter(|i| i.closed_at.is_none())
    };
    // The scheduler: asked to run, heartbeat stale.
    let verdict = if status.state == SchedulerState::Stalled {
        Verdict::Open {
            run: None,
            message: format!(
                "the scheduler on {} is stalled: its last heartbeat is {} s old",
                status.node,
                status.heartbeat_age_secs.unwrap_or_default().round()
            ),
            error: None,
        }
    } else {
        Verdict::Close { run: None }
    };
    act(
        engine,
        rule,
        channels,
        &s("scheduler"),
        open("scheduler"),
        verdict,
    )
    .await?;
    // The watchdog restarted the loop since the last pass: an incident that closes at the
    // next pass the loop is healthy.
    let restarts = status.loop_restarts;
    let before = state
        .watchdog_restarts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(restarts);
    let verdict = match before {
        Some(b) if restarts > b => Verdict::Open {
            run: None,
            message: format!(
                "the watchdog restarted the firing loop on {} ({restarts} restarts since start)",
                status.node
            ),
            error: None,
        },
        _ if status.state != SchedulerState::Stalled => Verdict::Close { run: None },
        _ => Verdict::Nothing,
    };
    act(
        engine,
        rule,
        channels,
        &s("watchdog"),
        open("watchdog"),
        verdict,
    )
    .await?;
    // Several nodes: a change of leader (after the first), and a node lost without
    // leaving (its lease ran out): one notice each, the incident closed with it.
    let store = &engine.inner.store;
    let mut events = Vec::new();
    if let Some(term) = store
        .leader_history(1)
        .await?
        .into_iter()
        .next()
        .filter(|t| t.epoch > 1 && t.acquired_at >= rule.created_at)
    {
        events.push((
            format!("leader-{}", term.epoch),
            format!(
                "leadership moved to node {} (epoch {})",
                term.holder, term.epoch
            ),
        ));
    }
    let now = engine.now();
    for n in store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| n.expires_at < now && n.expires_at >= rule.created_at)
    {
        events.push((
            format!("node-{}", n.id),
            format!(
                "node {} ({}) was lost: its last heartbeat was at {}",
                n.name,
                n.id,
                n.heartbeat_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        ));
    }
    for (key, message) in events {
        let subject = s(&key);
        if latest.contains_key(&(rule.id.clone(), subject.key.clone())) {
            continue;
        }
        act(
            engine,
            rule,
            channels,
            &subject,
            None,
            Verdict::Open {
                run: None,
                message,
                error: None,
            },
        )
        .await?;
        if let Some(i) = store
            .latest_incidents()
            .await?
            .into_iter()
            .find(|i| i.rule == rule.id && i.subject == subject.key)
        {
            store.close_incident(i.id, now, None, &[]).await?;
        }
    }
    Ok(())
}

/// The store refusing writes cannot be recorded in the store: the system rules' channels
/// hear of it (and of its return) directly, once per outage.
async fn store_health(engine: &Engine, rules: &[Rule]) {
    use std::sync::atomic::Ordering;
    let down = engine.inner.store.ping_write().await.err();
    let was = engine
        .inner
        .alerts
        .store_down
        .swap(down.is_some(), Ordering::Relaxed);
    if was == down.is_some() {
        return;
    }
    let system: Vec<&Rule> = rules.iter().filter(|r| r.on == RuleOn::System).collect();
    if system.is_empty() {
        return;
    }
    // Rules came from the store a moment ago; channels may not: fall back to none.
    let channels: Vec<Channel> = engine.items(CHANNEL).await.unwrap_or_default();
    let now = engine.now();
    let (event, message) = match &down {
        Some(e) => (
            "opened",
            format!(
                "the store on {} refuses writes: {}",
                engine.inner.config.node,
                crate::error::chain(e)
            ),
        ),
        None => (
            "recovered",
            format!(
                "the store on {} takes writes again",
                engine.inner.config.node
            ),
        ),
    };
    let body = serde_json::json!({ "event": event, "incident": null, "subject": "system:store", "message": message, "at": now });
    for rule in system {
        for c in channels.iter().filter(|c| rule.channels.contains(&c.id)) {
            let a = super::send::deliver(&engine.inner.outbound, c, &body, now).await;
            engine.event("alert_direct", serde_json::json!({ "channel": c.id, "event": event, "ok": a.ok(), "error": a.error }));
        }
    }
}

/// The outbound heartbeat: a GET of the configured URL every so often, from every node,
/// so a monitor elsewhere notices when EchoPilot is gone.
pub(super) async fn heartbeat(engine: &Engine) {
    let config = &engine.inner.config;
    let Some(url) = &config.heartbeat_url else {
        return;
    };
    {
        let mut last = engine
            .inner
            .alerts
            .last_beat
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|l| l.elapsed() < config.heartbeat_url_every) {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    if let Err(e) = engine
        .inner
        .outbound
        .get(url, std::time::Duration::from_secs(10))
        .await
    {
        tracing::warn!(error = %e, "the outbound heartbeat failed");
    }
}
