//! Maintenance windows: spans when jobs do not run — recurring (a cron expression that
//! opens the window, and how long it stays open, in a zone: "Sundays 02:00-04:00
//! Europe/Warsaw") or one-off (a start and an end) — for every job or chosen ones. The
//! slots a window swallows are recorded skipped, their reason `maintenance: <name>`.

use super::schedule::Schedule;
use super::{validate_id, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A window as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Window {
    pub id: String,
    pub name: String,
    /// Recurring: the cron expression (with seconds) that opens it, read in `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Recurring: how long it stays open (`2h`, `90m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// One-off: from when, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    pub timezone: String,
    /// The jobs it holds; `None`: every job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<String>>,
}

/// A window as a caller sends it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub id: Option<String>,
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub duration: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
    pub jobs: Option<Vec<String>>,
}

/// Longest a window may stay open.
const MAX_OPEN: chrono::Duration = chrono::Duration::days(31);

/// A window checked, with what it needs to answer "does it hold this slot" quickly.
#[derive(Debug, Clone)]
pub struct OpenWindow {
    pub window: Window,
    kind: Span,
}

#[derive(Debug, Clone)]
enum Span {
    Recurring {
        opens: Schedule,
        open_for: chrono::Duration,
    },
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

fn invalid(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        message: message.into(),
    }
}

impl WindowSpec {
    /// The window this asks for (`id` given by the path on updates). Recurring needs
    /// `schedule` and `duration`; one-off needs `start` and `end`; not both.
    pub fn check(self, id: Option<&str>) -> Result<OpenWindow, ValidationError> {
        let id = match (id, self.id) {
            (Some(path), Some(body)) if path != body => {
                return Err(invalid("id", "the id of a window cannot change"))
            }
            (Some(path), _) => path.to_string(),
            (None, Some(id)) => id,
            (None, None) => return Err(invalid("id", "required: a slug such as sunday-backups")),
        };
        validate_id(&id)?;
        let name = self.name.map(|n| n.trim().to_string()).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid(
                "name",
                "required: 1-200 characters, shown in the ledger",
            ));
        }
        let timezone = self
            .timezone
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".into());
        super::schedule::parse_timezone(&timezone)?;
        let recurring = self.schedule.is_some() || self.duration.is_some();
        let once = self.start.is_some() || self.end.is_some();
        let (kind, texts) = match (recurring, once) {
            (true, true) => {
                return Err(invalid(
                    "start",
                    "a window is recurring (schedule and duration) or one-off (start and end), not both",
                ))
            }
            (false, false) => {
                return Err(invalid(
                    "schedule",
                    "required: a cron expression and a duration, or a start and an end",
                ))
            }
            (true, false) => {
                let schedule = self.schedule.ok_or_else(|| {
                    invalid("schedule", "required with duration: the cron expression that opens the window")
                })?;
                let opens = Schedule::parse(&schedule, &timezone)?;
                let duration = self
                    .duration
                    .ok_or_else(|| invalid("duration", "required with schedule: how long it stays open, e.g. 2h"))?;
                let open_for = humantime::parse_duration(duration.trim())
                    .ok()
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .ok_or_else(|| invalid("duration", format!("{duration:?} is not a duration such as 90m or 2h")))?;
                if open_for <= chrono::Duration::zero() {
                    return Err(invalid("duration", "must be longer than zero"));
                }
                if open_for > MAX_OPEN {
                    return Err(invalid("duration", "longer than 31 days"));
                }
                let texts = (Some(schedule.trim().to_string()), Some(duration.trim().to_string()));
                (Span::Recurring { opens, open_for }, texts)
            }
            (false, true) => {
                let at = |field: &str, v: Option<String>| -> Result<DateTime<Utc>, ValidationError> {
                    let v = v.ok_or_else(|| invalid(field, "required: an RFC 3339 time such as 2026-12-24T22:00:00Z"))?;
                    DateTime::parse_from_rfc3339(v.trim())
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| invalid(field, format!("{v:?} is not an RFC 3339 time ({e})")))
                };
                let start = at("start", self.start)?;
                let end = at("end", self.end)?;
                if end <= start {
                    return Err(invalid("end", "must be after start (a window of zero or negative length)"));
                }
                (Span::Once { start, end }, (None, None))
            }
        };
        if let Some(jobs) = &self.jobs {
            if jobs.is_empty() {
                return Err(invalid(
                    "jobs",
                    "empty: leave it out for every job, or name some",
                ));
            }
            for j in jobs {
                validate_id(j).map_err(|e| invalid("jobs", e.message))?;
            }
        }
        let (schedule, duration) = texts;
        let (start, end) = match &kind {
            Span::Recurring { .. } => (None, None),
            Span::Once { start, end } => (Some(*start), Some(*end)),
        };
        Ok(OpenWindow {
            window: Window {
                id,
                name,
                schedule,
                duration,
                start,
                end,
                timezone,
                jobs: self.jobs,
            },
            kind,
        })
    }
}

impl OpenWindow {
    /// A stored window, checked again (one that no longer checks out is `None`).
    pub fn from_stored(w: Window) -> Option<OpenWindow> {
        WindowSpec {
            id: Some(w.id.clone()),
            name: Some(w.name),
            schedule: w.schedule,
            duration: w.duration,
            start: w.start.map(|t| t.to_rfc3339()),
            end: w.end.map(|t| t.to_rfc3339()),
            timezone: Some(w.timezone),
            jobs: w.jobs,
        }
        .check(Some(&w.id))
        .ok()
    }

    /// Whether it holds `job`'s slot at `slot`.
    pub fn holds(&self, job: &str, slot: DateTime<Utc>) -> bool {
        if self
            .window
            .jobs
            .as_ref()
            .is_some_and(|jobs| !jobs.iter().any(|j| j == job))
        {
            return false;
        }
        match &self.kind {
            Span::Once { start, end } => *start <= slot && slot < *end,
            // Open at `slot` if it opened in (slot - open_for, slot].
            Span::Recurring { opens, open_for } => {
                !opens.slots_between(slot - *open_for, slot, 1).is_empty()
            }
        }
    }

    /// The reason a slot it swallows is recorded with.
    pub fn ledger_reason(&self) -> String {
        format!("maintenance: {}", self.window.name)
    }
}
