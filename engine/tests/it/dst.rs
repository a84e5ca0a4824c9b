//! Daylight-saving tables (RELIABILITY 9): two years of transitions in four zones whose
//! rules differ (New York, London, Warsaw, and Santiago, which jumps at midnight), found
//! from the tz database rather than hard-coded, then the cronie rules checked on each.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use engine::Schedule;

const ZONES: [&str; 4] = [
    "America/New_York",
    "Europe/London",
    "Europe/Warsaw",
    "America/Santiago",
];

struct Transition {
    /// First instant with the new offset.
    at: DateTime<Utc>,
    /// New offset minus old, in seconds (positive: spring forward).
    shift: i64,
    old_offset: i64,
    new_offset: i64,
}

fn offset(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(t.with_timezone(&tz).offset().fix().local_minus_utc())
}

fn transitions(tz: Tz) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
    while t < end {
        let next = t + Duration::hours(1);
        let (a, b) = (offset(tz, t), offset(tz, next));
        if a != b {
            // Narrow down to the exact minute.
            let mut m = t;
            while offset(tz, m) == a {
                m += Duration::minutes(1);
            }
            out.push(Transition {
                at: m,
                shift: b - a,
                old_offset: a,
                new_offset: b,
            });
        }
        t = next;
    }
    out
}

fn naive(t: DateTime<Utc>, offset_secs: i64) -> NaiveDateTime {
    t.naive_utc() + Duration::seconds(offset_secs)
}

/// The instants of the local calendar day `date` in `tz`: [start, end).
fn local_day(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_of = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap();
        match tz.from_local_datetime(&midnight).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // Midnight itself is skipped (Santiago): the day starts where the gap ends.
            None => {
                let mut probe = midnight;
                loop {
                    probe += Duration::minutes(1);
                    if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                        break t.with_timezone(&Utc);
                    }
                }
            }
        }
    };
    (start_of(date), start_of(date.succ_opt().unwrap()))
}

fn slots_on_day(schedule: &Schedule, tz: Tz, date: NaiveDate) -> Vec<DateTime<Utc>> {
    let (start, end) = local_day(tz, date);
    schedule.slots_between(
        start - Duration::milliseconds(1),
        end - Duration::milliseconds(1),
        100_000,
    )
}

fn assert_strictly_increasing(slots: &[DateTime<Utc>], what: &str) {
    for w in slots.windows(2) {
        assert!(w[0] < w[1], "{what}: {} then {}", w[0], w[1]);
    }
}

#[test]
fn every_zone_has_the_expected_transitions() {
    for name in ZONES {
        let tz: Tz = name.parse().unwrap();
        let ts = transitions(tz);
        assert_eq!(ts.len(), 4, "{name}: two years, two transitions each");
        assert_eq!(ts.iter().filter(|t| t.shift > 0).count(), 2);
    }
}

#[test]
fn fixed_time_slot_in_a_skipped_hour_runs_once_right_after_the_gap() {
    for name in ZONES {
        let tz: Tz = name.parse().unwrap();
        for t in transitions(tz).iter().filter(|t| t.shift > 0) {
            // Half an hour into the gap, on the local wall clock.
            let in_gap = naive(t.at, t.old_offset) + Duration::minutes(30);
            let pattern = format!("0 {} {} * * *", in_gap.minute(), in_gap.hour());
            let s = Schedule::parse(&pattern, name).unwrap();
            let slots = slots_on_day(&s, tz, in_gap.date());
            assert_eq!(slots, vec![t.at], "{name} {pattern} on {}", in_gap.date());
        }
    }
}

#[test]
fn fixed_time_slot_in_a_repeated_hour_runs_once() {
    for name in ZONES {
        let tz: Tz = name.parse().unwrap();
        for t in transitions(tz).iter().filter(|t| t.shift < 0) {
            let in_fold = naive(t.at, t.new_offset) + Duration::minutes(30);
            let pattern = format!("0 {} {} * * *", in_fold.minute(), in_fold.hour());
            let s = Schedule::parse(&pattern, name).unwrap();
            let slots = slots_on_day(&s, tz, in_fold.date());
            assert_eq!(
                slots.len(),
                1,
                "{name} {pattern} on {}: {slots:?}",
                in_fold.date()
            );
            // The first of the two wall-clock occurrences.
            assert_eq!(slots[0], t.at - Duration::minutes(30), "{name}");
        }
    }
}

#[test]
fn interval_fields_fire_through_both_repeated_hours_and_skip_the_gap() {
    for name in ZONES {
        let tz: Tz = name.parse().unwrap();
        let half_hourly = Schedule::parse("0 */30 * * * *", name).unwrap();
        let minutely = Schedule::parse("0 * * * * *", name).unwrap();
        for t in transitions(tz) {
            let date = naive(t.at, t.new_offset.min(t.old_offset)).date();
            let (start, end) = local_day(tz, date);
            let hours = (end - start).num_hours();
            let halves = slots_on_day(&half_hourly, tz, date);
            assert_eq!(
                halves.len() as i64,
                hours * 2,
                "{name} {date}: a {hours} h day"
            );
            assert_strictly_increasing(&halves, name);
            let minutes = slots_on_day(&minutely, tz, date);
            assert_eq!(minutes.len() as i64, hours * 60, "{name} {date}");
            assert_strictly_increasing(&minutes, name);
            if t.shift > 0 {
                assert_eq!(
                    minutes.len(),
                    1380,
                    "{name} {date}: minutely on a spring-forward day"
                );
            }
        }
    }
}

#[test]
fn fire_times_strictly_increase_across_two_years_in_any_zone() {
    // Every zone of the tz database with a daily fixed-time job; every 30th zone also with
    // an every-20-minutes job (all of them would take minutes in a debug build).
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
    for (i, tz) in chrono_tz::TZ_VARIANTS.iter().enumerate() {
        let patterns: &[&str] = if i % 30 == 0 {
            &["0 30 2 * * *", "0 */20 * * * *"]
        } else {
            &["0 30 2 * * *"]
        };
        for pattern in patterns {
            let s = Schedule::parse(pattern, tz.name()).unwrap();
            let slots = s.slots_between(from, until, 200_000);
            assert!(!slots.is_empty(), "{} {pattern}", tz.name());
            assert_strictly_increasing(&slots, tz.name());
            if pattern.starts_with("0 30 2") {
                // Once a day, never twice, never zero (a skipped 02:30 moves past the gap).
                assert!(
                    (729..=731).contains(&slots.len()),
                    "{} {pattern}: {}",
                    tz.name(),
                    slots.len()
                );
            }
        }
    }
}
