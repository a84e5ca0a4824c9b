//! Jobs: what runs, when, and under which policies; and how a caller's spec becomes one.

use super::schedule::{Schedule, ScheduleError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What to do when a slot comes due while the job's previous run is still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the slot as skipped.
    #[default]
    Skip,
    /// Run it after the active run, keeping at most one waiting.
    Queue,
    /// Run it alongside.
    Allow,
}

/// What to do with slots missed while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Record every missed slot as skipped.
    Skip,
    /// Run once for the latest missed slot; record the others as skipped.
    #[default]
    RunOnce,
}

text_enum!(Overlap { Skip => "skip", Queue => "queue", Allow => "allow" });
text_enum!(Misfire { Skip => "skip", RunOnce => "run_once" });

/// A job as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub schedule: String,
    pub timezone: String,
    pub enabled: bool,
    pub timeout_secs: u64,
    pub retries: u32,
    pub retry_backoff_secs: u64,
    pub overlap: Overlap,
    pub misfire: Misfire,
    pub params: serde_json::Value,
    /// Computed by the scheduler, not stored by callers.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The pause in force, if any (set by pause and resume, never by edits).
    #[serde(default)]
    pub paused: Option<super::Pause>,
    /// Applied from a file (`echopilot jobs apply`)...
    #[serde(default)]
    pub from_file: bool,
    /// ...and edited by other means since (the file no longer says what runs).
    #[serde(default)]
    pub drift: bool,
}

/// The fields a caller sets when creating a job (everything but `id` has a default).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    pub timeout_secs: Option<u64>,
    pub retries: Option<u32>,
    pub retry_backoff_secs: Option<u64>,
    pub overlap: Option<Overlap>,
    pub misfire: Option<Misfire>,
    pub params: Option<serde_json::Value>,
    /// Accepted and ignored, so a job read from the API can be sent back as is.
    #[serde(default)]
    pub next_run_at: Option<serde_json::Value>,
    /// Accepted and ignored likewise: pausing has its own call.
    #[serde(default)]
    pub paused: Option<serde_json::Value>,
    /// Accepted and ignored likewise: said by the store, not by callers.
    #[serde(default)]
    pub from_file: Option<serde_json::Value>,
    #[serde(default)]
    pub drift: Option<serde_json::Value>,
}

/// A field the caller must fix, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl From<ScheduleError> for ValidationError {
    fn from(e: ScheduleError) -> Self {
        ValidationError {
            field: e.field.to_string(),
            message: e.message,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.to_string(),
        message: message.into(),
    }
}

pub const DEFAULT_TIMEOUT_SECS: u64 = 300;
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
const MAX_RETRIES: u32 = 20;
/// Longest wait before a retry (the backoff doubles per attempt, up to this).
pub const MAX_RETRY_BACKOFF_SECS: u64 = 24 * 3600;
const MAX_SCHEDULE_LEN: usize = 256;
const MAX_TIMEZONE_LEN: usize = 64;
/// Params are configuration, not data: 64 KiB of JSON is plenty.
const MAX_PARAMS_BYTES: usize = 64 * 1024;

impl Job {
    /// Builds a job from a spec, filling defaults; `base` supplies them when updating.
    pub fn from_spec(
        spec: JobSpec,
        base: Option<&Job>,
    ) -> Result<(Job, Schedule), ValidationError> {
        let id = match (spec.id, base) {
            (Some(id), Some(b)) if id != b.id => {
                return Err(invalid("id", "the id of a job cannot change"))
            }
            (_, Some(b)) => b.id.clone(),
            (Some(id), None) => id,
            (None, None) => return Err(invalid("id", "required: a slug such as nightly-report")),
        };
        validate_id(&id)?;
        let kind = spec
            .kind
            .or_else(|| base.map(|b| b.kind.clone()))
            .ok_or_else(|| {
                invalid(
                    "kind",
                    "required: http, shell, noop or a built-in automation",
                )
            })?;
        let schedule = spec
            .schedule
            .or_else(|| base.map(|b| b.schedule.clone()))
            .ok_or_else(|| {
                invalid(
                    "schedule",
                    "required: a 6-field cron expression with seconds, or @every 30s",
                )
            })?;
        if schedule.len() > MAX_SCHEDULE_LEN {
            return Err(invalid(
                "schedule",
                format!(
                    "{} characters is longer than {MAX_SCHEDULE_LEN}",
                    schedule.len()
                ),
            ));
        }
        let timezone = spec
            .timezone
            .or_else(|| base.map(|b| b.timezone.clone()))
            .unwrap_or_else(|| "UTC".into());
        if timezone.len() > MAX_TIMEZONE_LEN {
            return Err(invalid(
                "timezone",
                format!(
                    "{} characters is longer than {MAX_TIMEZONE_LEN}",
                    timezone.len()
                ),
            ));
        }
        let parsed = Schedule::parse(&schedule, &timezone)?;
        let timeout_secs = spec
            .timeout_secs
            .or(base.map(|b| b.timeout_secs))
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout_secs == 0 || timeout_secs > MAX_TIMEOUT_SECS {
            return Err(invalid(
                "timeout_secs",
                format!("{timeout_secs} is out of range 1-{MAX_TIMEOUT_SECS}"),
            ));
        }
        let retries = spec.retries.or(base.map(|b| b.retries)).unwrap_or(0);
        if retries > MAX_RETRIES {
            return Err(invalid(
                "retries",
                format!("{retries} is out of range 0-{MAX_RETRIES}"),
            ));
        }
        let params = spec
            .params
            .or_else(|| base.map(|b| b.params.clone()))
            .unwrap_or_else(|| serde_json::json!({}));
        if !params.is_object() {
            return Err(invalid("params", "must be a JSON object"));
        }
        let size = params.to_string().len();
        if size > MAX_PARAMS_BYTES {
            return Err(invalid(
                "params",
                format!("{size} bytes of JSON is more than {MAX_PARAMS_BYTES}"),
            ));
        }
        let retry_backoff_secs = spec
            .retry_backoff_secs
            .or(base.map(|b| b.retry_backoff_secs))
            .unwrap_or(10);
        if retry_backoff_secs > MAX_RETRY_BACKOFF_SECS {
            return Err(invalid(
                "retry_backoff_secs",
                format!("{retry_backoff_secs} is out of range 0-{MAX_RETRY_BACKOFF_SECS}"),
            ));
        }
        let name = spec
            .name
            .or_else(|| base.map(|b| b.name.clone()))
            .unwrap_or_else(|| id.clone());
        if name.trim().is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1-200 characters"));
        }
        let job = Job {
            id,
            name,
            kind,
            schedule: schedule.trim().to_string(),
            timezone: parsed_zone_name(&timezone),
            enabled: spec.enabled.or(base.map(|b| b.enabled)).unwrap_or(true),
            timeout_secs,
            retries,
            retry_backoff_secs,
            overlap: spec.overlap.or(base.map(|b| b.overlap)).unwrap_or_default(),
            misfire: spec.misfire.or(base.map(|b| b.misfire)).unwrap_or_default(),
            params,
            next_run_at: None,
            paused: None,
            from_file: false,
            drift: false,
        };
        Ok((job, parsed))
    }
}

impl Job {
    /// What an edit changed, field by field: `{field: {"from", "to"}}` (params key by key,
    /// as `params.<key>`), secrets masked; the computed next run and the pause left out.
    pub fn changes(&self, after: &Job) -> serde_json::Map<String, serde_json::Value> {
        let shown = |j: &Job| {
            let mut v = serde_json::to_value(j.clone().masked()).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.remove("next_run_at");
                m.remove("paused");
                m.remove("from_file");
                m.remove("drift");
            }
            v
        };
        let (before, after) = (shown(self), shown(after));
        let mut out = serde_json::Map::new();
        let mut note = |field: String, from: &serde_json::Value, to: &serde_json::Value| {
            if from != to {
                out.insert(field, serde_json::json!({ "from": from, "to": to }));
            }
        };
        let null = serde_json::Value::Null;
        if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
            for (k, from) in b {
                let to = a.get(k).unwrap_or(&null);
                match (k.as_str(), from.as_object(), to.as_object()) {
                    ("params", Some(pb), Some(pa)) => {
                        let keys: std::collections::BTreeSet<&String> =
                            pb.keys().chain(pa.keys()).collect();
                        for key in keys {
                            note(
                                format!("params.{key}"),
                                pb.get(key).unwrap_or(&null),
                                pa.get(key).unwrap_or(&null),
                            );
                        }
                    }
                    _ => note(k.clone(), from, to),
                }
            }
        }
        out
    }

    /// The job as reads show it: secret params masked ([`crate::secrets`]).
    pub fn masked(mut self) -> Job {
        self.params = crate::secrets::mask_params(&self.params);
        self
    }
}

fn parsed_zone_name(tz: &str) -> String {
    if tz.trim().is_empty() {
        "UTC".into()
    } else {
        tz.trim().to_string()
    }
}

/// Ids are slugs: lowercase letters, digits and dashes, 1-64 long, starting with a letter
/// or digit — safe in URLs, file names and log lines.
pub fn validate_id(id: &str) -> Result<(), ValidationError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!("{id:?} is not a slug (a-z, 0-9 and -, 1-64 characters, not starting with -)"),
        ))
    }
}
