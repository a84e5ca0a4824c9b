//! The operator's controls on the injected clock: a maintenance window across a
//! daylight-saving change swallows exactly the slots it holds (recorded `skipped:
//! maintenance <name>`), for the jobs it names, and the preview marks them; bad windows
//! are refused naming the field.

use chrono::{DateTime, TimeZone, Utc};
use engine::testing::{Options, TestEngine};
use engine::{JobSpec, ManualClock, Overlap, RunStatus, WindowSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap()
}

fn job(id: &str) -> JobSpec {
    JobSpec {
        id: Some(id.into()),
        kind: Some("noop".into()),
        schedule: Some("0 */30 * * * *".into()),
        overlap: Some(Overlap::Allow),
        ..JobSpec::default()
    }
}

/// The six half-hour slots from midnight UTC on the night of the change, as the preview of
/// `job` shows them.
fn preview_night(h: &TestEngine, job: &str) -> engine::SchedulePreview {
    h.engine
        .preview_schedule(
            "0 */30 * * * *",
            "UTC",
            Some("2026-03-29T00:00:00Z"),
            6,
            Some(job),
        )
        .unwrap()
}

/// Steps the clock over every half hour in `[from, to]`, firing each slot on time.
async fn fire_through(h: &TestEngine, clock: &ManualClock, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut t = from;
    while t <= to {
        clock.set(t + chrono::Duration::milliseconds(5));
        h.engine.fire_due(engine::Clock::now(clock)).await;
        t += chrono::Duration::minutes(30);
    }
}

/// Each slot of `job` in `[from, to]` with its status and error.
async fn ledger(
    h: &TestEngine,
    job: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, RunStatus, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = h.runs_of(job).await;
        if runs.iter().all(|r| r.status.is_finished()) {
            return runs
                .into_iter()
                .filter_map(|r| r.scheduled_at.map(|s| (s, r.status, r.error)))
                .filter(|(s, _, _)| *s >= from && *s <= to)
                .collect();
        }
        assert!(Instant::now() < deadline, "runs never finished: {runs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_window_in_warsaw_holds_its_two_hours_on_both_sides_of_the_spring_change() {
    let dir = tempfile::tempdir().unwrap();
    // Saturday 28 March 2026, before Warsaw springs forward (Sunday 29th, 02:00 CET →
    // 03:00 CEST, 01:00 UTC).
    let clock = ManualClock::new(utc(28, 23, 0));
    let h = Options::new(dir.path())
        .clock(Arc::new(clock.clone()))
        .open()
        .await;
    h.engine.create_job(job("held")).await.unwrap();
    h.engine.create_job(job("free")).await.unwrap();

    // Bad windows: refused naming the field, nothing stored.
    let bad = |f: fn(&mut WindowSpec)| {
        let mut s = WindowSpec {
            id: Some("w".into()),
            name: Some("w".into()),
            schedule: Some("0 30 1 * * SUN".into()),
            duration: Some("2h".into()),
            timezone: Some("Europe/Warsaw".into()),
            ..WindowSpec::default()
        };
        f(&mut s);
        s
    };
    for (spec, field) in [
        (bad(|s| s.duration = Some("0s".into())), "duration"),
        (bad(|s| s.duration = Some("-1h".into())), "duration"),
        (bad(|s| s.schedule = Some("0 30 25 * * SUN".into())), "hour"),
        (bad(|s| s.timezone = Some("Mars/Base".into())), "timezone"),
        (bad(|s| s.jobs = Some(vec!["nope".into()])), "jobs"),
        (
            bad(|s| s.start = Some("2026-03-29T00:00:00Z".into())),
            "start",
        ),
        (
            bad(|s| {
                s.schedule = None;
                s.duration = None;
                s.start = Some("2026-03-29T02:00:00Z".into());
                s.end = Some("2026-03-29T02:00:00Z".into());
            }),
            "end",
        ),
    ] {
        let err = h.engine.create_window(spec).await.unwrap_err();
        let got = err.field().unwrap_or_default().to_string();
        assert!(
            got == field || (field == "hour" && got == "schedule"),
            "{field}: {err}"
        );
    }
    assert!(h.engine.list_windows().is_empty());

    // Sundays 01:30 local for two hours, for `held` only.
    h.engine
        .create_window(WindowSpec {
            id: Some("sunday-upgrade".into()),
            name: Some("Sunday upgrade".into()),
            schedule: Some("0 30 1 * * SUN".into()),
            duration: Some("2h".into()),
            timezone: Some("Europe/Warsaw".into()),
            jobs: Some(vec!["held".into()]),
            ..WindowSpec::default()
        })
        .await
        .unwrap();

    // The preview of `held` marks the slots the window swallows: 01:30 CET is 00:30 UTC,
    // and two hours later (04:30 CEST, after the change) is 02:30 UTC.
    let preview = preview_night(&h, "held");
    let marked: Vec<bool> = preview
        .slots
        .iter()
        .map(|s| s.swallowed.is_some())
        .collect();
    assert_eq!(
        marked,
        [true, true, true, true, false, false],
        "{:?}",
        preview.slots
    );
    assert_eq!(
        preview.slots[0].swallowed.as_deref(),
        Some("maintenance: Sunday upgrade")
    );
    let free = preview_night(&h, "free");
    assert!(
        free.slots.iter().all(|s| s.swallowed.is_none()),
        "not held: {:?}",
        free.slots
    );

    fire_through(&h, &clock, utc(28, 23, 30), utc(29, 3, 30)).await;
    let swallowed = |l: &[(DateTime<Utc>, RunStatus, Option<String>)]| -> Vec<DateTime<Utc>> {
        l.iter()
            .filter(|(_, st, e)| {
                *st == RunStatus::Skipped && e.as_deref() == Some("maintenance: Sunday upgrade")
            })
            .map(|(s, _, _)| *s)
            .collect()
    };
    let held = ledger(&h, "held", utc(28, 23, 30), utc(29, 3, 30)).await;
    assert_eq!(
        swallowed(&held),
        vec![utc(29, 0, 30), utc(29, 1, 0), utc(29, 1, 30), utc(29, 2, 0)]
    );
    assert!(
        held.iter()
            .filter(|(s, _, _)| !swallowed(&held).contains(s))
            .all(|(_, st, _)| *st == RunStatus::Succeeded),
        "{held:?}"
    );
    let free = ledger(&h, "free", utc(28, 23, 30), utc(29, 3, 30)).await;
    assert!(
        free.iter().all(|(_, st, _)| *st == RunStatus::Succeeded),
        "{free:?}"
    );
    assert_eq!(free.len(), 9);

    // A week later, on summer time: 01:30 CEST is 23:30 UTC the evening before.
    let at = |d, h, m| Utc.with_ymd_and_hms(2026, 4, d, h, m, 0).unwrap();
    fire_through(&h, &clock, at(4, 22, 0), at(5, 3, 0)).await;
    let held = ledger(&h, "held", at(4, 22, 30), at(5, 2, 0)).await;
    assert_eq!(
        swallowed(&held),
        vec![at(4, 23, 30), at(5, 0, 0), at(5, 0, 30), at(5, 1, 0)]
    );
    assert_eq!(
        held.iter()
            .find(|(s, _, _)| *s == at(5, 1, 30))
            .map(|r| r.1),
        Some(RunStatus::Succeeded)
    );

    // Deleted: it holds nothing any more.
    h.engine.delete_window("sunday-upgrade").await.unwrap();
    let preview = preview_night(&h, "held");
    assert!(preview.slots.iter().all(|s| s.swallowed.is_none()));
    h.close().await;
}
