//! The leader's decisions about time, pure: which slots of a schedule are due, which of
//! them were missed, and what a job's misfire policy makes of the missed ones. No runtime,
//! no store: the firing loop and boot recovery act on what these answer, and the unit
//! tests below pin the rules down.

use crate::model::{Misfire, Schedule};
use chrono::{DateTime, Utc};

/// Most missed slots recorded one by one per job; past that the rest are only counted, so
/// a long outage of an every-second job cannot flood the store.
pub const MAX_CATCH_UP_SLOTS: usize = 10_000;

/// The slots of one job found due: the latest is fired; any before it were missed (the
/// loop fell behind) and follow the misfire policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub slot: DateTime<Utc>,
    pub missed: Vec<DateTime<Utc>>,
}

/// The slots in `(cursor, horizon]`, split into the one to fire and those missed; `None`
/// when none is due.
pub fn due(schedule: &Schedule, cursor: DateTime<Utc>, horizon: DateTime<Utc>) -> Option<Due> {
    let mut slots = schedule.slots_between(cursor, horizon, MAX_CATCH_UP_SLOTS);
    let slot = slots.pop()?;
    Some(Due {
        slot,
        missed: slots,
    })
}

/// How long before a leader's term began a slot may have fallen due and still run as
/// itself when the leader takes over on several nodes (a graceful handoff takes
/// milliseconds, and may straddle a slot); older ones were missed and follow the misfire
/// policy.
pub const LATE_GRACE: chrono::Duration = chrono::Duration::seconds(1);

/// Most slots a takeover runs late, per job; older late ones are skipped.
pub const MAX_LATE_RUNS: usize = 5;

/// Splits the slots a takeover found missed into the gap (due while no node led: the
/// misfire policy decides) and the late (due since `LATE_GRACE` before the term began:
/// this leader's own, late only because taking over took time — they run as
/// themselves, the latest [`MAX_LATE_RUNS`] of them).
pub fn split_late(
    missed: &[DateTime<Utc>],
    term_began: DateTime<Utc>,
) -> (&[DateTime<Utc>], &[DateTime<Utc>]) {
    let first_late = missed.partition_point(|s| *s < term_began - LATE_GRACE);
    let first_run = first_late.max(missed.len().saturating_sub(MAX_LATE_RUNS));
    missed.split_at(first_run)
}

/// The next slot to wait for once `cursor` has been handled: never one before `now`
/// (a clock stepped back does not make a handled slot due again).
pub fn next(
    schedule: &Schedule,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule.next_after(cursor.max(now))
}

/// The slots a job missed while the server was down: those after its last claimed slot up
/// to `now`, at most [`MAX_CATCH_UP_SLOTS`]; `truncated` says whether there were more.
pub fn missed_while_down(
    schedule: &Schedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<DateTime<Utc>>, bool) {
    let mut all = schedule.slots_between(last, now, MAX_CATCH_UP_SLOTS + 1);
    let truncated = all.len() > MAX_CATCH_UP_SLOTS;
    all.truncate(MAX_CATCH_UP_SLOTS);
    (all, truncated)
}

/// What becomes of missed slots: recorded as skipped, and at most one run for the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisfirePlan {
    pub skipped: Vec<DateTime<Utc>>,
    pub catch_up: Option<DateTime<Utc>>,
}

/// `skip`: every missed slot skipped. `run_once`: the latest runs once, the rest skipped.
pub fn misfire(policy: Misfire, missed: &[DateTime<Utc>]) -> MisfirePlan {
    match (policy, missed.split_last()) {
        (Misfire::RunOnce, Some((last, rest))) => MisfirePlan {
            skipped: rest.to_vec(),
            catch_up: Some(*last),
        },
        _ => MisfirePlan {
            skipped: missed.to_vec(),
            catch_up: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap()
    }

    fn minutely() -> Schedule {
        Schedule::parse("0 * * * * *", "UTC").unwrap()
    }

    #[test]
    fn one_slot_due_is_fired_and_none_missed() {
        let d = due(&minutely(), at(8, 0, 30), at(8, 1, 0)).unwrap();
        assert_eq!(
            d,
            Due {
                slot: at(8, 1, 0),
                missed: vec![]
            }
        );
        assert_eq!(
            due(&minutely(), at(8, 1, 0), at(8, 1, 59)),
            None,
            "the cursor's own slot is not due again"
        );
    }

    #[test]
    fn a_loop_that_fell_behind_fires_the_latest_and_reports_the_rest_missed() {
        let d = due(&minutely(), at(8, 0, 0), at(8, 3, 10)).unwrap();
        assert_eq!(d.slot, at(8, 3, 0));
        assert_eq!(d.missed, vec![at(8, 1, 0), at(8, 2, 0)]);
    }

    #[test]
    fn the_next_slot_never_lies_before_now() {
        // The clock stepped back an hour after 09:05 was handled: 08:06 is not next.
        assert_eq!(
            next(&minutely(), at(9, 5, 0), at(8, 5, 30)),
            Some(at(9, 6, 0))
        );
        assert_eq!(
            next(&minutely(), at(9, 5, 0), at(9, 7, 30)),
            Some(at(9, 8, 0))
        );
    }

    #[test]
    fn downtime_is_counted_from_the_last_claimed_slot_and_capped() {
        let (missed, truncated) = missed_while_down(&minutely(), at(8, 29, 0), at(10, 21, 0));
        assert_eq!(missed.len(), 112, "08:30 .. 10:21 inclusive");
        assert!(!truncated);
        let every_second = Schedule::parse("@every 1s", "UTC").unwrap();
        let (missed, truncated) = missed_while_down(&every_second, at(0, 0, 0), at(12, 0, 0));
        assert_eq!(missed.len(), MAX_CATCH_UP_SLOTS);
        assert!(truncated);
    }

    #[test]
    fn a_takeover_runs_the_slots_due_since_just_before_its_term_and_a_few_at_most() {
        let missed: Vec<_> = (0..10).map(|s| at(12, 0, s)).collect();
        // Term began at :05.5: :04.5 and later are late (run), the rest were missed.
        let (gap, late) = split_late(&missed, at(12, 0, 5) + chrono::Duration::milliseconds(500));
        assert_eq!(gap, &missed[..5]);
        assert_eq!(late, &missed[5..]);
        // Taking over took long: only the latest few run.
        let (gap, late) = split_late(&missed, at(12, 0, 0));
        assert_eq!(late, &missed[10 - MAX_LATE_RUNS..]);
        assert_eq!(gap.len(), 10 - MAX_LATE_RUNS);
        // All due long before the term: none is late.
        let (gap, late) = split_late(&missed, at(12, 5, 0));
        assert_eq!((gap.len(), late.len()), (10, 0));
    }

    #[test]
    fn misfire_skip_skips_all_and_run_once_runs_the_latest() {
        let missed = [at(8, 30, 0), at(8, 31, 0), at(8, 32, 0)];
        assert_eq!(
            misfire(Misfire::Skip, &missed),
            MisfirePlan {
                skipped: missed.to_vec(),
                catch_up: None
            }
        );
        assert_eq!(
            misfire(Misfire::RunOnce, &missed),
            MisfirePlan {
                skipped: missed[..2].to_vec(),
                catch_up: Some(at(8, 32, 0))
            }
        );
        assert_eq!(
            misfire(Misfire::RunOnce, &[]),
            MisfirePlan {
                skipped: vec![],
                catch_up: None
            }
        );
    }
}
