//! Pauses: a job — or the whole scheduler — held with a reason, by someone, since a
//! moment, until a moment or until resumed. The slots a pause swallows are recorded, not
//! lost: skipped, their reason beginning `paused:`.

use super::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A pause in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pause {
    pub reason: String,
    /// Who paused (the credential: `key`, or a dashboard session's tag).
    pub by: String,
    pub since: DateTime<Utc>,
    /// When it ends by itself; `None`: until resumed.
    pub until: Option<DateTime<Utc>>,
}

/// A pause as a caller asks for it: `{reason, until?: RFC 3339 | for?: "2h"}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: Option<String>,
    pub until: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// Also cancel the runs in flight (otherwise they finish).
    #[serde(default)]
    pub cancel_running: bool,
}

/// Longest reason kept.
const MAX_REASON: usize = 500;
/// Longest pause with an end (a longer one is a pause until resumed).
const MAX_PAUSE: chrono::Duration = chrono::Duration::days(366);

impl PauseRequest {
    /// The pause this asks for, made `now` by `by`: a reason is required; `until` must lie
    /// ahead and `for` be a duration such as `90s`, `2h` or `1h 30m`, not both.
    pub fn pause(&self, by: &str, now: DateTime<Utc>) -> Result<Pause, ValidationError> {
        use chrono::SubsecRound;
        // Kept to the millisecond, as every other time in the store.
        let now = now.trunc_subsecs(3);
        let reason = valid_reason(self.reason.as_deref())?;
        let until = match (self.until.as_deref(), self.for_.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(invalid("for", "give until or for, not both"));
            }
            (Some(u), None) => {
                let at = DateTime::parse_from_rfc3339(u.trim())
                    .map_err(|e| {
                        invalid(
                            "until",
                            format!(
                                "{u:?} is not an RFC 3339 time such as 2026-12-01T18:00:00Z ({e})"
                            ),
                        )
                    })?
                    .with_timezone(&Utc)
                    .trunc_subsecs(3);
                if at <= now {
                    return Err(invalid(
                        "until",
                        format!(
                            "{} is not in the future (now is {})",
                            at.to_rfc3339(),
                            now.to_rfc3339()
                        ),
                    ));
                }
                Some(at)
            }
            (None, Some(f)) => Some(now + parse_for(f)?),
            (None, None) => None,
        };
        if until.is_some_and(|u| u - now > MAX_PAUSE) {
            return Err(invalid(
                "until",
                "more than a year away; pause without an end and resume by hand",
            ));
        }
        Ok(Pause {
            reason,
            by: by.to_string(),
            since: now,
            until,
        })
    }
}

/// A required reason, trimmed: 1-500 characters.
pub fn valid_reason(reason: Option<&str>) -> Result<String, ValidationError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(invalid(
            "reason",
            "required: say why (it is shown to everyone)",
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(invalid(
            "reason",
            format!("longer than {MAX_REASON} characters"),
        ));
    }
    Ok(reason.to_string())
}

/// A `for` duration: `3s`, `90m`, `2h`, `1d`, `1h 30m`; more than zero.
fn parse_for(text: &str) -> Result<chrono::Duration, ValidationError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            "for",
            format!("{text:?} is not a duration such as 90s, 30m, 2h or 1d ({e})"),
        )
    })?;
    if d.is_zero() {
        return Err(invalid("for", "must be longer than zero"));
    }
    chrono::Duration::from_std(d)
        .ok()
        .filter(|d| *d <= MAX_PAUSE)
        .ok_or_else(|| {
            invalid(
                "for",
                "more than a year; pause without an end and resume by hand",
            )
        })
}

impl Pause {
    /// Whether a slot at `slot` falls in the pause (from `since`, up to but not at `until`).
    pub fn covers(&self, slot: DateTime<Utc>) -> bool {
        slot >= self.since && self.until.is_none_or(|u| slot < u)
    }

    /// Whether it has ended by itself at `now`.
    pub fn ended(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|u| u <= now)
    }

    /// The reason a swallowed slot is recorded with.
    pub fn ledger_reason(&self) -> String {
        match self.until {
            Some(u) => format!(
                "paused: {} (by {}, until {})",
                self.reason,
                self.by,
                u.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            None => format!("paused: {} (by {})", self.reason, self.by),
        }
    }

    /// As stored: JSON text (compared whole when the pause is replaced).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_text(text: &str) -> Option<Pause> {
        serde_json::from_str(text).ok()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn req(reason: &str, until: Option<&str>, for_: Option<&str>) -> PauseRequest {
        PauseRequest {
            reason: Some(reason.into()),
            until: until.map(Into::into),
            for_: for_.map(Into::into),
            cancel_running: false,
        }
    }

    #[test]
    fn a_pause_needs_a_reason_and_an_end_ahead() {
        let err = |r: PauseRequest| r.pause("key", now()).unwrap_err().field;
        assert_eq!(err(req("  ", None, None)), "reason");
        assert_eq!(err(req("x", Some("2026-12-01T11:00:00Z"), None)), "until");
        assert_eq!(err(req("x", Some("tomorrow"), None)), "until");
        assert_eq!(err(req("x", None, Some("0s"))), "for");
        assert_eq!(err(req("x", None, Some("soon"))), "for");
        assert_eq!(
            err(req("x", Some("2026-12-02T00:00:00Z"), Some("2h"))),
            "for"
        );
        let p = req("deploy", None, Some("2h")).pause("key", now()).unwrap();
        assert_eq!(p.until, Some(now() + chrono::Duration::hours(2)));
        let p = req("deploy", Some("2026-12-01T18:00:00+01:00"), None)
            .pause("key", now())
            .unwrap();
        assert_eq!(
            p.until,
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).unwrap())
        );
        assert_eq!(
            req("db move", None, None)
                .pause("key", now())
                .unwrap()
                .until,
            None
        );
    }

    #[test]
    fn a_pause_covers_its_span_and_not_its_end() {
        let p = req("x", None, Some("3s")).pause("key", now()).unwrap();
        assert!(p.covers(now()));
        assert!(p.covers(now() + chrono::Duration::milliseconds(2999)));
        assert!(!p.covers(now() + chrono::Duration::seconds(3)));
        assert!(!p.covers(now() - chrono::Duration::seconds(1)));
        assert!(!p.ended(now()));
        assert!(p.ended(now() + chrono::Duration::seconds(3)));
        assert!(p.ledger_reason().starts_with("paused: x (by key, until "));
        assert_eq!(Pause::from_text(&p.to_text()), Some(p));
    }
}
