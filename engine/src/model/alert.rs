//! Alerts: where notifications go (channels), what opens an incident (rules), the
//! incidents themselves with the deliveries each made, and inbound checks (crons that
//! live elsewhere and ping EchoPilot). Pure data with its validation.

use super::{validate_id, Schedule, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn invalid(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        message: message.into(),
    }
}

/// The id of what a spec asks for: the path's on updates (a body naming another is
/// refused), the body's on creates; a slug either way.
fn spec_id(path: Option<&str>, body: Option<String>) -> Result<String, ValidationError> {
    let id = match (path, body) {
        (Some(path), Some(body)) if path != body => {
            return Err(invalid(
                "id",
                format!("{body:?} differs from the path's {path:?}"),
            ))
        }
        (Some(path), _) => path.to_string(),
        (None, Some(body)) => body,
        (None, None) => return Err(invalid("id", "is required")),
    };
    validate_id(&id)?;
    Ok(id)
}

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A POST of the event as JSON, signed with the channel's secret.
    Webhook,
    /// `{"text": …}` (Slack and anything Slack-compatible: Mattermost, Rocket.Chat).
    Slack,
    /// `{"content": …}`.
    Discord,
    /// The message as the body of a POST to the topic URL, with a title header.
    Ntfy,
    /// A mail over SMTP.
    Email,
}

text_enum!(ChannelKind { Webhook => "webhook", Slack => "slack", Discord => "discord", Ntfy => "ntfy", Email => "email" });

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain, then upgraded with STARTTLS (refused if the server cannot): port 587.
    #[default]
    Starttls,
    /// TLS from the first byte: port 465.
    Tls,
    /// No TLS at all (a relay on the same host).
    None,
}

/// A channel as stored. Its secret and password never leave the engine: reads show
/// whether one is set (`"********"`), not what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Channel {
    pub id: String,
    pub kind: ChannelKind,
    /// Webhook, Slack, Discord, ntfy: where to POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the HMAC-SHA256 key of the signature header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Smtp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What reads show in place of a secret that is set.
pub const MASK: &str = "********";

impl Channel {
    /// The channel as reads show it: secrets masked.
    pub fn shown(mut self) -> Channel {
        if self.secret.is_some() {
            self.secret = Some(MASK.into());
        }
        if let Some(s) = &mut self.smtp {
            if s.password.is_some() {
                s.password = Some(MASK.into());
            }
        }
        if let Some(u) = &self.url {
            self.url = Some(crate::secrets::mask_url(u));
        }
        self
    }
}

/// A channel as a caller sends it: flat, as the API documents it. A secret or password
/// sent as the mask (or left out on an update) keeps the stored one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub id: Option<String>,
    #[schema(value_type = Option<ChannelKind>)]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<SmtpTls>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Accepted (a read sent back) and ignored.
    pub smtp: Option<serde_json::Value>,
}

fn kept(sent: Option<String>, stored: Option<&String>) -> Option<String> {
    match sent {
        Some(s) if s == MASK => stored.cloned(),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s),
        None => stored.cloned(),
    }
}

fn address(field: &str, a: &str) -> Result<(), ValidationError> {
    let ok = a.len() <= 254
        && a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !a.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{a:?} is not an email address")))
    }
}

impl ChannelSpec {
    /// The channel this asks for; `id` comes from the path on updates, `stored` is the
    /// channel it replaces (whose secrets are kept unless new ones are sent).
    pub fn check(
        self,
        id: Option<&str>,
        stored: Option<&Channel>,
    ) -> Result<Channel, ValidationError> {
        let id = spec_id(id, self.id)?;
        let kind = match self.kind.as_deref() {
            None => {
                return Err(invalid(
                    "kind",
                    "is required (webhook, slack, discord, ntfy or email)",
                ))
            }
            Some(k) => ChannelKind::parse(k).ok_or_else(|| {
                invalid(
                    "kind",
                    format!("{k:?} is not webhook, slack, discord, ntfy or email"),
                )
            })?,
        };
        if kind == ChannelKind::Email {
            if self.url.is_some() || self.secret.is_some() {
                return Err(invalid(
                    "url",
                    "an email channel has host, port, from and to instead",
                ));
            }
            let host = self
                .host
                .filter(|h| !h.trim().is_empty())
                .ok_or_else(|| invalid("host", "is required"))?;
            let tls = self.tls.unwrap_or_default();
            let port = self.port.unwrap_or(match tls {
                SmtpTls::Tls => 465,
                SmtpTls::Starttls => 587,
                SmtpTls::None => 25,
            });
            if port == 0 {
                return Err(invalid("port", "must be 1-65535"));
            }
            let from = self.from.ok_or_else(|| invalid("from", "is required"))?;
            address("from", &from)?;
            let to = self.to.unwrap_or_default();
            if to.is_empty() {
                return Err(invalid("to", "needs at least one address"));
            }
            for (i, a) in to.iter().enumerate() {
                address(&format!("to[{i}]"), a)?;
            }
            let before = stored.and_then(|c| c.smtp.as_ref());
            let password = kept(self.password, before.and_then(|s| s.password.as_ref()));
            let user = self.user.filter(|u| !u.is_empty());
            if password.is_some() && user.is_none() {
                return Err(invalid("user", "is required with a password"));
            }
            return Ok(Channel {
                id,
                kind,
                url: None,
                secret: None,
                smtp: Some(Smtp {
                    host,
                    port,
                    tls,
                    from,
                    to,
                    user,
                    password,
                }),
            });
        }
        if self.host.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.password.is_some()
        {
            return Err(invalid(
                "host",
                format!("a {} channel has a url, not SMTP settings", kind.as_str()),
            ));
        }
        let url = self.url.ok_or_else(|| invalid("url", "is required"))?;
        // Same parse as every outbound call; the address is checked when it is reached.
        crate::outbound::Outbound::parse_url("url", &url)
            .map_err(|e| invalid("url", e.to_string().trim_start_matches("url: ").to_string()))?;
        let url = match stored.and_then(|c| c.url.as_ref()) {
            // A masked URL sent back keeps the stored one (its credentials are not shown).
            Some(before) if crate::secrets::mask_url(before) == url => before.clone(),
            _ => url,
        };
        let secret = if kind == ChannelKind::Webhook {
            kept(self.secret, stored.and_then(|c| c.secret.as_ref()))
        } else if self.secret.is_some() {
            return Err(invalid(
                "secret",
                "only a webhook channel signs its deliveries",
            ));
        } else {
            None
        };
        Ok(Channel {
            id,
            kind,
            url: Some(url),
            secret,
            smtp: None,
        })
    }
}

/// What opens an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleOn {
    /// A run failed or timed out (a check pinged `/fail`).
    Failed,
    /// `threshold` failures in a row.
    ConsecutiveFailures,
    /// `threshold` failures within `window`.
    FailuresInWindow,
    /// A slot recorded missed, or a job that has not run for twice its interval (a check
    /// past its grace).
    Missed,
    /// A run that started more than `grace` after its slot, or is running longer than its
    /// job's interval (a check past its expected time).
    Late,
    /// Silent on failure; notifies when the job recovers.
    Recovered,
    /// EchoPilot itself: a stalled scheduler, a loop restarted by the watchdog, a store
    /// that refuses writes, a leader change or a node lost.
    System,
}

text_enum!(RuleOn {
    Failed => "failed",
    ConsecutiveFailures => "consecutive_failures",
    FailuresInWindow => "failures_in_window",
    Missed => "missed",
    Late => "late",
    Recovered => "recovered",
    System => "system",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    pub id: String,
    pub on: RuleOn,
    /// The jobs it watches; empty: every job.
    #[serde(default)]
    pub jobs: Vec<String>,
    /// The checks it watches; empty: every check (a rule naming only jobs watches none).
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// `failures_in_window`: how far back the failures count (`1h`, `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// `late`: how long after its slot a run may start (`30s`; default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    pub channels: Vec<String>,
    /// Reminders while the incident stays open (`1h`); none: only the first notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<String>,
    /// Runs that ended before the rule existed do not open its incidents.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: Option<String>,
    #[schema(value_type = Option<RuleOn>)]
    pub on: Option<String>,
    pub jobs: Option<Vec<String>>,
    pub checks: Option<Vec<String>>,
    pub threshold: Option<u32>,
    pub window: Option<String>,
    pub grace: Option<String>,
    pub channels: Option<Vec<String>>,
    pub remind_every: Option<String>,
    /// Accepted (a read sent back) and ignored.
    pub created_at: Option<serde_json::Value>,
}

/// Parses a duration the API takes as text (`90s`, `5m`, `1h`); the error names `field`.
pub fn duration(field: &str, text: &str) -> Result<chrono::Duration, ValidationError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            field,
            format!("{text:?} is not a duration like 30s, 5m or 1h: {e}"),
        )
    })?;
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(366 * 86_400) {
        return Err(invalid(
            field,
            format!("{text:?} must be between 1s and 366 days"),
        ));
    }
    chrono::Duration::from_std(d).map_err(|e| invalid(field, e.to_string()))
}

impl RuleSpec {
    /// The rule this asks for. `known` says whether a job, check or channel id exists.
    pub fn check(
        self,
        id: Option<&str>,
        created_at: DateTime<Utc>,
        known: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Rule, ValidationError> {
        let id = spec_id(id, self.id)?;
        let kinds =
            "failed, consecutive_failures, failures_in_window, missed, late, recovered or system";
        let on = match self.on.as_deref() {
            None => return Err(invalid("on", format!("is required ({kinds})"))),
            Some(o) => {
                RuleOn::parse(o).ok_or_else(|| invalid("on", format!("{o:?} is not {kinds}")))?
            }
        };
        let needs_threshold = matches!(on, RuleOn::ConsecutiveFailures | RuleOn::FailuresInWindow);
        match self.threshold {
            Some(0) => return Err(invalid("threshold", "must be at least 1")),
            Some(n) if n > 10_000 => return Err(invalid("threshold", "must be at most 10000")),
            None if needs_threshold => {
                return Err(invalid(
                    "threshold",
                    format!("is required for on = {}", on.as_str()),
                ))
            }
            Some(_) if !needs_threshold => {
                return Err(invalid(
                    "threshold",
                    format!("means nothing for on = {}", on.as_str()),
                ))
            }
            _ => {}
        }
        match (&self.window, on) {
            (None, RuleOn::FailuresInWindow) => {
                return Err(invalid("window", "is required for on = failures_in_window"))
            }
            (Some(w), RuleOn::FailuresInWindow) => {
                duration("window", w)?;
            }
            (Some(_), _) => {
                return Err(invalid(
                    "window",
                    format!("means nothing for on = {}", on.as_str()),
                ))
            }
            (None, _) => {}
        }
        match (&self.grace, on) {
            (Some(g), RuleOn::Late) => {
                duration("grace", g)?;
            }
            (Some(_), _) => {
                return Err(invalid(
                    "grace",
                    format!("means nothing for on = {}", on.as_str()),
                ))
            }
            (None, _) => {}
        }
        if let Some(r) = &self.remind_every {
            duration("remind_every", r)?;
        }
        let jobs = self.jobs.unwrap_or_default();
        let checks = self.checks.unwrap_or_default();
        if on == RuleOn::System && !(jobs.is_empty() && checks.is_empty()) {
            return Err(invalid(
                "jobs",
                "a system rule watches EchoPilot itself, not jobs or checks",
            ));
        }
        for (i, j) in jobs.iter().enumerate() {
            if !known("job", j) {
                return Err(invalid(
                    &format!("jobs[{i}]"),
                    format!("no job with id {j:?}"),
                ));
            }
        }
        for (i, c) in checks.iter().enumerate() {
            if !known("check", c) {
                return Err(invalid(
                    &format!("checks[{i}]"),
                    format!("no check with id {c:?}"),
                ));
            }
        }
        let channels = self.channels.unwrap_or_default();
        // A rule with nowhere to send would open incidents nobody hears of.
        if channels.is_empty() {
            return Err(invalid("channels", "needs at least one channel"));
        }
        for (i, c) in channels.iter().enumerate() {
            if !known("channel", c) {
                return Err(invalid(
                    &format!("channels[{i}]"),
                    format!("no channel with id {c:?}"),
                ));
            }
        }
        Ok(Rule {
            id,
            on,
            jobs,
            checks,
            threshold: self.threshold,
            window: self.window,
            grace: self.grace,
            channels,
            remind_every: self.remind_every,
            created_at,
        })
    }
}

impl Rule {
    /// Whether it watches job `id`.
    pub fn watches_job(&self, id: &str) -> bool {
        self.on != RuleOn::System
            && (self.jobs.is_empty() && self.checks.is_empty() || self.jobs.iter().any(|j| j == id))
    }

    /// Whether it watches check `id`.
    pub fn watches_check(&self, id: &str) -> bool {
        self.on != RuleOn::System
            && (self.jobs.is_empty() && self.checks.is_empty()
                || self.checks.iter().any(|c| c == id))
    }

    /// Parsed durations (validated when the rule was made).
    pub fn window(&self) -> Option<chrono::Duration> {
        self.window
            .as_deref()
            .and_then(|w| duration("window", w).ok())
    }
    pub fn grace(&self) -> chrono::Duration {
        self.grace
            .as_deref()
            .and_then(|g| duration("grace", g).ok())
            .unwrap_or(chrono::Duration::seconds(60))
    }
    pub fn remind_every(&self) -> Option<chrono::Duration> {
        self.remind_every
            .as_deref()
            .and_then(|r| duration("remind_every", r).ok())
    }
}

/// An incident: a rule's condition held for a subject (`job:<id>`, `check:<id>`,
/// `system:<what>`) from `opened_at` until `closed_at`. One is open per (rule, subject)
/// at a time, whoever evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub rule: String,
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The run that opened it, and the one that closed it.
    pub run: Option<i64>,
    pub closed_by: Option<i64>,
    pub message: String,
    /// Why nobody was notified (a pause, a maintenance window), when so.
    pub suppressed: Option<String>,
    /// The last notice sent (the first, or a reminder).
    pub notified_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

impl Incident {
    pub fn job(&self) -> Option<&str> {
        self.subject.strip_prefix("job:")
    }
    pub fn check(&self) -> Option<&str> {
        self.subject.strip_prefix("check:")
    }
}

/// What a delivery tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    Opened,
    Reminder,
    Recovered,
    Test,
}

text_enum!(AlertEvent { Opened => "opened", Reminder => "reminder", Recovered => "recovered", Test => "test" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt is under way (claimed by one sender).
    Sending,
    Sent,
    /// Gave up after the last attempt.
    Failed,
}

text_enum!(DeliveryStatus { Pending => "pending", Sending => "sending", Sent => "sent", Failed => "failed" });

/// One notice to one channel, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub incident: Option<i64>,
    pub channel: String,
    pub event: AlertEvent,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status (or SMTP reply code).
    pub code: Option<u16>,
    pub error: Option<String>,
    /// The event as JSON (what a webhook receives).
    pub body: serde_json::Value,
}

/// How many attempts a delivery gets before it is failed.
pub const DELIVERY_ATTEMPTS: u32 = 6;

/// The wait before attempt `n + 1` after `n` failed: 5 s, 10 s, 20 s … up to 10 minutes.
pub fn delivery_backoff(attempts: u32) -> chrono::Duration {
    let secs = 5u64.saturating_mul(1 << attempts.saturating_sub(1).min(10));
    chrono::Duration::seconds(secs.min(600) as i64)
}

/// An inbound check: a cron that lives elsewhere pings `/ping/<token>` when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub id: String,
    pub name: String,
    /// Expected every `period` (`1h`) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// … or on a cron schedule (with seconds), read in `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default = "utc")]
    pub timezone: String,
    /// How long after the expected time a ping may still come before it is down.
    pub grace: String,
    /// The secret of its ping URL.
    pub token: String,
    pub created_at: DateTime<Utc>,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub id: Option<String>,
    pub name: Option<String>,
    pub period: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub grace: Option<String>,
    /// Accepted (a read sent back) and ignored.
    pub ping_url: Option<serde_json::Value>,
    pub state: Option<serde_json::Value>,
    pub last_ping: Option<serde_json::Value>,
    pub created_at: Option<serde_json::Value>,
}

impl CheckSpec {
    /// The check this asks for; `stored` keeps its token and creation time on updates.
    pub fn check(
        self,
        id: Option<&str>,
        stored: Option<&Check>,
        token: impl FnOnce() -> String,
        now: DateTime<Utc>,
    ) -> Result<Check, ValidationError> {
        let id = spec_id(id, self.id)?;
        let timezone = self.timezone.unwrap_or_else(utc);
        match (&self.period, &self.schedule) {
            (Some(_), Some(_)) => {
                return Err(invalid("schedule", "give a period or a schedule, not both"))
            }
            (None, None) => return Err(invalid("period", "is required (or a schedule)")),
            (Some(p), None) => {
                duration("period", p)?;
            }
            (None, Some(s)) => {
                Schedule::parse(s, &timezone)?;
            }
        }
        let grace = self
            .grace
            .ok_or_else(|| invalid("grace", "is required (e.g. 5m)"))?;
        duration("grace", &grace)?;
        let name = self.name.unwrap_or_else(|| id.clone());
        if name.trim().is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1-200 characters"));
        }
        Ok(Check {
            id,
            name,
            period: self.period,
            schedule: self.schedule,
            timezone,
            grace,
            token: stored.map_or_else(token, |c| c.token.clone()),
            created_at: stored.map_or(now, |c| c.created_at),
        })
    }
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PingKind {
    Success,
    Start,
    Fail,
}

text_enum!(PingKind { Success => "success", Start => "start", Fail => "fail" });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ping {
    pub at: DateTime<Utc>,
    pub kind: PingKind,
    /// The first KiB of what it sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// How much of a ping's body is kept.
pub const PING_BODY_MAX: usize = 1024;

/// A check's state from its pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Never pinged.
    New,
    Up,
    /// Past its expected time, within the grace.
    Late,
    /// Past the grace, or its last ping said it failed.
    Down,
}

text_enum!(CheckState { New => "new", Up => "up", Late => "late", Down => "down" });

impl Check {
    /// When the ping after one at `last` is expected.
    pub fn expected_after(&self, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(p) = &self.period {
            return duration("period", p).ok().map(|d| last + d);
        }
        let s = Schedule::parse(self.schedule.as_deref()?, &self.timezone).ok()?;
        s.next_after(last)
    }

    pub fn grace_period(&self) -> chrono::Duration {
        duration("grace", &self.grace).unwrap_or(chrono::Duration::minutes(5))
    }

    /// Its state at `now`, given its newest success and fail pings, and when it is due.
    pub fn state(
        &self,
        last_success: Option<DateTime<Utc>>,
        last_fail: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (CheckState, Option<DateTime<Utc>>) {
        if let (Some(f), s) = (last_fail, last_success) {
            if s.is_none_or(|s| f > s) {
                return (CheckState::Down, None);
            }
        }
        let Some(last) = last_success else {
            return (CheckState::New, None);
        };
        let Some(due) = self.expected_after(last) else {
            return (CheckState::Up, None);
        };
        let state = if now <= due {
            CheckState::Up
        } else if now <= due + self.grace_period() {
            CheckState::Late
        } else {
            CheckState::Down
        };
        (state, Some(due))
    }
}

/// A check as reads show it: with its ping URL, its state and its last ping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckView {
    #[serde(flatten)]
    pub check: Check,
    pub ping_url: String,
    pub state: CheckState,
    pub due_at: Option<DateTime<Utc>>,
    pub last_ping: Option<Ping>,
    /// The newest pings, newest first (on reads of one check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pings: Option<Vec<Ping>>,
}
