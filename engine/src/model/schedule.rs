//! Schedules: when a job's slots fall.
//!
//! Two forms: a 6-field cron expression with seconds (`sec min hour dom month dow`, or an
//! `@daily`-style alias) read in the job's IANA time zone, and `@every <duration>`, a fixed
//! interval on a grid anchored at the Unix epoch (so every node and every restart computes
//! the same slots). Slots are instants in UTC and strictly increase.
//!
//! Cron matching and daylight-saving handling come from `croner`, whose rules are those of
//! cronie/OCPS: a fixed-time slot in a skipped hour runs once right after the gap, one in a
//! repeated hour runs once, and interval-style fields keep firing through both repeated
//! hours. The tests in `tests/dst.rs` pin these rules down across zones and years. The
//! field-by-field validation here exists to give precise messages ("hour: 25 is out of
//! range 0-23") before croner parses.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::time::Duration;

/// A parsed, validated schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron { cron: Box<croner::Cron>, tz: Tz },
    Every(Duration),
}

/// Why a schedule or zone was refused; `field` names what the caller should fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// `schedule` or `timezone`.
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field,
        message: message.into(),
    }
}

/// (name, min, max, names) of the six cron fields.
const FIELDS: [(&str, u32, u32, &[&str]); 6] = [
    ("second", 0, 59, &[]),
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day-of-month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    ),
    (
        "day-of-week",
        0,
        7,
        &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    ),
];

const ALIASES: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// The shortest and longest `@every` intervals accepted.
const MIN_EVERY: Duration = Duration::from_secs(1);
const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

impl Schedule {
    /// Parses `schedule` in `timezone` (IANA name; empty means UTC).
    pub fn parse(schedule: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = parse_timezone(timezone)?;
        let text = schedule.trim();
        if text.is_empty() {
            return Err(bad(
                "schedule",
                "schedule is empty; give a 6-field cron expression (with seconds) or @every 30s",
            ));
        }
        if let Some(rest) = text.strip_prefix("@every") {
            return parse_every(rest.trim()).map(Schedule::Every);
        }
        if text.starts_with('@') {
            let lower = text.to_ascii_lowercase();
            if !ALIASES.contains(&lower.as_str()) {
                return Err(bad(
                    "schedule",
                    format!(
                        "unknown alias {text:?}; use one of {} or @every <duration>",
                        ALIASES.join(", ")
                    ),
                ));
            }
            let cron = croner::parser::CronParser::builder()
                .build()
                .parse(&lower)
                .map_err(|e| bad("schedule", e.to_string()))?;
            return Ok(Schedule::Cron {
                cron: Box::new(cron),
                tz,
            });
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(bad(
                "schedule",
                format!(
                    "expected 6 fields (second minute hour day-of-month month day-of-week), got {}",
                    fields.len()
                ),
            ));
        }
        for (value, (name, min, max, names)) in fields.iter().zip(FIELDS) {
            check_field(value, name, min, max, names)?;
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse(text)
            .map_err(|e| bad("schedule", e.to_string()))?;
        let schedule = Schedule::Cron {
            cron: Box::new(cron),
            tz,
        };
        // A pattern like "0 0 0 31 2 *" parses but never fires; say so now.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(bad(
                "schedule",
                "this schedule never fires (no date matches every field)",
            ));
        }
        Ok(schedule)
    }

    /// The first slot strictly after `after`, or `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(every) => {
                let step = every.as_millis() as i64;
                let t = after.timestamp_millis();
                let next = (t.div_euclid(step) + 1) * step;
                DateTime::from_timestamp_millis(next)
            }
            Schedule::Cron { cron, tz } => cron
                .find_next_occurrence(&after.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// Up to `count` slots strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor) {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }

    /// All slots in `(after, until]`, at most `limit` of them.
    pub fn slots_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= until => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }
}

/// A slot of a schedule preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PreviewSlot {
    pub at: DateTime<Utc>,
    /// The slot on the job's clock, with the zone's abbreviation.
    pub local: String,
    /// Set when the zone's UTC offset changed since the slot before (or since `from`, for
    /// the first): "UTC-05:00 → UTC-04:00".
    pub offset_change: Option<String>,
    /// Why it would not run, when a pause or a maintenance window swallows it (`maintenance:
    /// <name>`); set by the engine, which knows them.
    pub swallowed: Option<String>,
}

impl Schedule {
    /// The zone slots are read in (UTC for `@every`).
    pub fn timezone(&self) -> Tz {
        match self {
            Schedule::Cron { tz, .. } => *tz,
            Schedule::Every(_) => Tz::UTC,
        }
    }

    /// The next `count` slots after `from`, on the job's clock too, with daylight-saving
    /// changes marked.
    pub fn preview(&self, from: DateTime<Utc>, count: usize) -> Vec<PreviewSlot> {
        use chrono::Offset;
        let tz = self.timezone();
        let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
        let mut before = offset(from);
        self.upcoming(from, count)
            .into_iter()
            .map(|at| {
                let now = offset(at);
                let change = (now != before).then(|| format!("UTC{before} → UTC{now}"));
                before = now;
                PreviewSlot {
                    at,
                    local: at
                        .with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M:%S %Z")
                        .to_string(),
                    offset_change: change,
                    swallowed: None,
                }
            })
            .collect()
    }
}

/// A schedule in words ("At 08:00", "Every 5 minutes"); the text itself when it has none.
pub fn describe(schedule: &str) -> String {
    let text = schedule.trim();
    if let Some(rest) = text.strip_prefix("@every") {
        return format!("Every {}", rest.trim());
    }
    let options = cronspeak::Options::new().time_format(cronspeak::TimeFormat::H24);
    let words = |cron: &str| cronspeak::describe_with(cron, &options).ok();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let said = match fields.as_slice() {
        [second, rest @ ..] if rest.len() == 5 => {
            let rest = rest.join(" ");
            let every_minute = rest == "* * * * *";
            match *second {
                "0" if rest == "0 * * * *" => Some("Every hour, on the hour".to_string()),
                "0" => words(&rest),
                "*" if every_minute => Some("Every second".to_string()),
                s if every_minute && s.starts_with("*/") => {
                    Some(format!("Every {} seconds", &s[2..]))
                }
                s => words(&rest).map(|w| format!("{w}, at second {s}")),
            }
        }
        _ => words(text),
    };
    said.unwrap_or_else(|| text.to_string())
}

/// An IANA zone name; empty means UTC.
pub fn parse_timezone(timezone: &str) -> Result<Tz, ScheduleError> {
    let name = timezone.trim();
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    name.parse::<Tz>().map_err(|_| {
        bad(
            "timezone",
            format!(
                "{name:?} is not an IANA time zone (e.g. Europe/Warsaw, America/New_York, UTC)"
            ),
        )
    })
}

/// `30s`, `5m`, `2h`, `1d`, `1h30m`, `500ms`.
fn parse_every(text: &str) -> Result<Duration, ScheduleError> {
    let err = || {
        bad(
            "schedule",
            format!("@every needs a duration like 30s, 5m, 1h30m; got {text:?}"),
        )
    };
    if text.is_empty() {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(err()),
        };
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| err())?)
            .ok_or_else(err)?;
        total = total.checked_add(part).ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    if total < MIN_EVERY || total > MAX_EVERY {
        return Err(bad(
            "schedule",
            format!("@every must be between 1s and 366d; got {text}"),
        ));
    }
    if total.subsec_nanos() != 0 {
        return Err(bad("schedule", "@every must be a whole number of seconds"));
    }
    Ok(total)
}

/// Checks one cron field's syntax and ranges, so the message can name the field.
fn check_field(
    value: &str,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<(), ScheduleError> {
    let number = |s: &str| -> Result<u32, ScheduleError> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + min);
        }
        let n: u32 = s.parse().map_err(|_| {
            bad(
                "schedule",
                format!(
                    "{name}: {s:?} is not a number{}",
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!(" or a name ({})", names.join(", "))
                    }
                ),
            )
        })?;
        if n < min || n > max {
            return Err(bad(
                "schedule",
                format!("{name}: {n} is out of range {min}-{max}"),
            ));
        }
        Ok(n)
    };
    for part in value.split(',') {
        if part.is_empty() {
            return Err(bad(
                "schedule",
                format!("{name}: empty list item in {value:?}"),
            ));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(step) = step {
            let n: u32 = step
                .parse()
                .map_err(|_| bad("schedule", format!("{name}: step {step:?} is not a number")))?;
            if n == 0 || n > max.max(1) {
                return Err(bad(
                    "schedule",
                    format!("{name}: step {n} is out of range 1-{max}"),
                ));
            }
        }
        match range {
            "*" | "?" => {}
            // Quartz-style extras croner understands: last day (L), nth weekday (#), nearest weekday (W).
            r if r.contains(['L', 'l', '#', 'W', 'w'])
                && (name == "day-of-month" || name == "day-of-week") => {}
            r => match r.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(bad(
                            "schedule",
                            format!("{name}: range {a}-{b} runs backwards"),
                        ));
                    }
                }
                None => {
                    number(r)?;
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn out_of_range_field_is_named_with_its_range() {
        let e = Schedule::parse("0 0 25 * * *", "UTC").unwrap_err();
        assert_eq!(e.field, "schedule");
        assert_eq!(e.message, "hour: 25 is out of range 0-23");
        let e = Schedule::parse("0 61 * * * *", "UTC").unwrap_err();
        assert_eq!(e.message, "minute: 61 is out of range 0-59");
        let e = Schedule::parse("0 0 0 1 13 *", "UTC").unwrap_err();
        assert_eq!(e.message, "month: 13 is out of range 1-12");
    }

    #[test]
    fn wrong_field_count_and_bad_zone_are_explained() {
        let e = Schedule::parse("*/5 * * * *", "UTC").unwrap_err();
        assert!(e.message.starts_with("expected 6 fields"), "{}", e.message);
        let e = Schedule::parse("0 * * * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field, "timezone");
        assert!(e.message.contains("not an IANA time zone"));
    }

    #[test]
    fn never_firing_schedule_is_refused() {
        let e = Schedule::parse("0 0 0 31 2 *", "UTC").unwrap_err();
        assert!(e.message.contains("never fires"), "{}", e.message);
    }

    #[test]
    fn schedules_are_said_in_words() {
        assert_eq!(describe("0 0 8 * * *"), "At 08:00");
        assert_eq!(describe("0 0 * * * *"), "Every hour, on the hour");
        assert_eq!(describe("0 */5 * * * *"), "Every 5 minutes");
        assert_eq!(describe("*/10 * * * * *"), "Every 10 seconds");
        assert_eq!(describe("* * * * * *"), "Every second");
        assert_eq!(
            describe("0 30 9 * * MON-FRI"),
            "At 09:30, Monday through Friday"
        );
        assert_eq!(describe("@every 30s"), "Every 30s");
        assert_eq!(describe("@daily"), "At 00:00");
    }

    #[test]
    fn the_preview_marks_daylight_saving_changes() {
        let s = Schedule::parse("0 30 1 * * *", "America/New_York").unwrap();
        let from = "2026-03-06T12:00:00Z".parse().unwrap();
        let slots = s.preview(from, 4);
        assert_eq!(slots[0].local, "2026-03-07 01:30:00 EST");
        assert_eq!(slots[0].offset_change, None);
        assert_eq!(slots[1].local, "2026-03-08 01:30:00 EST");
        assert_eq!(slots[2].local, "2026-03-09 01:30:00 EDT");
        assert_eq!(
            slots[2].offset_change.as_deref(),
            Some("UTC-05:00 → UTC-04:00")
        );
        assert_eq!(slots[3].offset_change, None);
    }

    #[test]
    fn every_is_grid_aligned_and_strictly_after() {
        let s = Schedule::parse("@every 30s", "").unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T00:00:30Z"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:29.999Z")),
            Some(at("2026-01-01T00:00:30Z"))
        );
        let s = Schedule::parse("@every 1h30m", "").unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T01:30:00Z"))
        );
        assert!(Schedule::parse("@every 0s", "").is_err());
        assert!(Schedule::parse("@every soon", "").is_err());
    }

    #[test]
    fn cron_runs_in_the_jobs_zone() {
        let s = Schedule::parse("0 0 8 * * *", "Europe/Warsaw").unwrap();
        let next = s.next_after(at("2026-01-10T12:00:00Z")).unwrap();
        assert_eq!(
            next,
            chrono_tz::Europe::Warsaw
                .with_ymd_and_hms(2026, 1, 11, 8, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
    }

    #[test]
    fn aliases_and_names_parse() {
        assert!(Schedule::parse("@daily", "UTC").is_ok());
        assert!(Schedule::parse("0 0 9 * JAN-MAR MON-FRI", "UTC").is_ok());
        assert!(Schedule::parse("@fortnightly", "UTC").is_err());
    }
}
