//! Alerts on the injected clock: incidents open once per (rule, job) — on a failure, N in
//! a row, N within a window, a missed slot, a job that stopped firing — remind on their
//! cooldown, close on recovery, stay silent (and say why) while a job is paused; a flood
//! of 3,600 failures is one incident; inbound checks go late, then down, then up on a
//! ping. Deliveries reach real peers on loopback: a webhook receiver (signature checked,
//! a 500 retried) and an SMTP server (the mail read back; a wrong password reported).

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use engine::alerts::send::signature;
use engine::model::alert::{ChannelSpec, CheckSpec, DeliveryStatus, Incident, PingKind, RuleSpec};
use engine::testing::peers::{Receiver, SmtpSink};
use engine::testing::{Options, TestEngine};
use engine::{
    Clock, JobSpec, ManualClock, Misfire, Overlap, PauseRequest, Run, RunStatus, Trigger,
};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()
}

async fn open(dir: &Path, clock: &ManualClock) -> TestEngine {
    Options::new(dir)
        .clock(Arc::new(clock.clone()))
        .allow(&["127.0.0.1"])
        .open()
        .await
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid spec")
}

/// A webhook channel `hook` to `url`, signed with `s3cret`.
async fn hook(h: &TestEngine, url: &str) {
    h.create_channel(from::<ChannelSpec>(
        json!({ "id": "hook", "kind": "webhook", "url": url, "secret": "s3cret" }),
    ))
    .await
    .unwrap();
}

async fn job(h: &TestEngine, id: &str, schedule: &str) {
    h.create_job(JobSpec {
        id: Some(id.into()),
        kind: Some("noop".into()),
        schedule: Some(schedule.into()),
        overlap: Some(Overlap::Allow),
        params: Some(json!({ "fail": false, "duration_ms": 0 })),
        ..JobSpec::default()
    })
    .await
    .unwrap();
}

/// Runs `job` now, failing or not, and waits for its end.
async fn outcome(h: &TestEngine, job: &str, fail: bool) -> Run {
    let run = h
        .run_with(job, Trigger::Api, Some(json!({ "fail": fail })))
        .await
        .unwrap();
    h.wait_run(run.id, Duration::from_secs(10)).await.unwrap()
}

async fn incidents(h: &TestEngine) -> Vec<Incident> {
    h.list_incidents(100).await.unwrap()
}

fn events(i: &Incident) -> Vec<&'static str> {
    i.deliveries.iter().map(|d| d.event.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_failures_open_one_incident_and_a_success_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    job(&h, "flaky", "0 0 3 * * *").await;
    h.create_rule(from::<RuleSpec>(json!({ "id": "three", "on": "consecutive_failures", "threshold": 3, "jobs": ["flaky"], "channels": ["hook"] })))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(outcome(&h, "flaky", true).await.status, RunStatus::Failed);
    }
    // A success between failures starts the count again.
    outcome(&h, "flaky", false).await;
    outcome(&h, "flaky", true).await;
    outcome(&h, "flaky", true).await;
    h.evaluate_alerts().await.unwrap();
    assert!(incidents(&h).await.is_empty(), "two in a row is not three");
    let third = outcome(&h, "flaky", true).await;
    h.evaluate_alerts().await.unwrap();
    h.evaluate_alerts().await.unwrap();
    let list = incidents(&h).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let i = &list[0];
    assert_eq!(
        (i.rule.as_str(), i.subject.as_str(), i.run),
        ("three", "job:flaky", Some(third.id))
    );
    assert!(i.closed_at.is_none());
    assert!(i.message.contains("3 failures in a row"), "{}", i.message);
    assert_eq!(events(i), ["opened"], "one notice, however many passes");
    let body = &i.deliveries[0].body;
    assert_eq!(body["incident"], i.id, "{body}");
    assert_eq!(body["job"], "flaky");
    assert_eq!(body["run"], third.id);

    let ok = outcome(&h, "flaky", false).await;
    h.evaluate_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    assert_eq!(i.closed_by, Some(ok.id), "{i:?}");
    assert_eq!(events(i), ["opened", "recovered"]);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_within_a_window_count_only_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    job(&h, "busy", "0 0 3 * * *").await;
    h.create_rule(from::<RuleSpec>(json!({ "id": "burst", "on": "failures_in_window", "threshold": 3, "window": "10m", "channels": ["hook"] })))
        .await
        .unwrap();
    for minute in [0, 6, 12] {
        clock.set(t0() + Span::minutes(minute));
        outcome(&h, "busy", true).await;
        h.evaluate_alerts().await.unwrap();
    }
    assert!(
        incidents(&h).await.is_empty(),
        "never three within ten minutes"
    );
    clock.set(t0() + Span::minutes(14));
    let third = outcome(&h, "busy", true).await;
    h.evaluate_alerts().await.unwrap();
    let list = incidents(&h).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].run, Some(third.id));
    assert!(
        list[0].message.contains("3 failures within 10m"),
        "{}",
        list[0].message
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failures_is_one_incident_with_reminders_on_their_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    h.create_job(JobSpec {
        id: Some("every-second".into()),
        kind: Some("noop".into()),
        schedule: Some("* * * * * *".into()),
        overlap: Some(Overlap::Allow),
        params: Some(json!({ "fail": true })),
        ..JobSpec::default()
    })
    .await
    .unwrap();
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "any", "on": "failed", "channels": ["hook"], "remind_every": "15m" }),
    ))
    .await
    .unwrap();
    // An hour of per-second failures, the leader's pass once a minute.
    for s in 1..=3600 {
        clock.set(t0() + Span::seconds(s) + Span::milliseconds(1));
        h.fire_due(clock.now()).await;
        if s % 60 == 0 {
            h.evaluate_alerts().await.unwrap();
        }
    }
    let history = h.history();
    h.wait_until("3,600 failed runs", Duration::from_secs(60), || async {
        let runs = history.runs_of("every-second").await.unwrap();
        runs.len() == 3600 && runs.iter().all(|r| r.status == RunStatus::Failed)
    })
    .await;
    let list = incidents(&h).await;
    assert_eq!(list.len(), 1, "one incident, not 3,600");
    // Opened within the first minute; reminded every 15 minutes after: 3 within the hour.
    assert_eq!(
        events(&list[0]),
        ["opened", "reminder", "reminder", "reminder"]
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_opens_a_silent_incident_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    job(&h, "quiet", "0 0 3 * * *").await;
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "any", "on": "failed", "channels": ["hook"] }),
    ))
    .await
    .unwrap();
    let pause: PauseRequest = from(json!({ "reason": "vendor outage" }));
    h.pause_job("quiet", &pause, "key").await.unwrap();
    outcome(&h, "quiet", true).await;
    h.evaluate_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    assert!(
        i.suppressed
            .as_deref()
            .is_some_and(|s| s.contains("vendor outage")),
        "{i:?}"
    );
    assert!(i.deliveries.is_empty(), "nobody is told: {i:?}");
    // Its recovery is silent too.
    outcome(&h, "quiet", false).await;
    h.evaluate_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    assert!(i.closed_at.is_some() && i.deliveries.is_empty(), "{i:?}");
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_slots_after_downtime_open_one_incident_and_the_next_run_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0() + Span::seconds(30));
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    h.create_job(JobSpec {
        id: Some("minutely".into()),
        kind: Some("noop".into()),
        schedule: Some("0 * * * * *".into()),
        misfire: Some(Misfire::Skip),
        overlap: Some(Overlap::Allow),
        ..JobSpec::default()
    })
    .await
    .unwrap();
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "gaps", "on": "missed", "jobs": ["minutely"], "channels": ["hook"] }),
    ))
    .await
    .unwrap();
    for m in 1..=3 {
        clock.set(t0() + Span::minutes(m) + Span::milliseconds(5));
        h.fire_due(clock.now()).await;
    }
    h.evaluate_alerts().await.unwrap();
    assert!(incidents(&h).await.is_empty(), "every slot ran");
    h.close().await;
    // Down for an hour: its slots are recorded missed when it comes back.
    clock.set(t0() + Span::minutes(63) + Span::seconds(5));
    let h = open(dir.path(), &clock).await;
    let history = h.history();
    h.wait_until("the missed slots", Duration::from_secs(10), || async {
        history
            .runs_of("minutely")
            .await
            .unwrap()
            .iter()
            .filter(|r| r.status == RunStatus::Skipped)
            .count()
            >= 59
    })
    .await;
    h.evaluate_alerts().await.unwrap();
    h.evaluate_alerts().await.unwrap();
    let list = incidents(&h).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        list[0].message.contains("missed its slot"),
        "{}",
        list[0].message
    );
    assert_eq!(events(&list[0]), ["opened"]);
    clock.set(t0() + Span::minutes(64) + Span::milliseconds(5));
    h.fire_due(clock.now()).await;
    h.wait_until("the next slot's run", Duration::from_secs(10), || async {
        history.runs_of("minutely").await.unwrap().iter().any(|r| {
            r.status == RunStatus::Succeeded && r.scheduled_at == Some(t0() + Span::minutes(64))
        })
    })
    .await;
    h.evaluate_alerts().await.unwrap();
    let list = incidents(&h).await;
    assert!(list[0].closed_at.is_some(), "{list:?}");
    assert_eq!(events(&list[0]), ["opened", "recovered"]);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_stops_firing_is_missed_after_twice_its_interval() {
    // On PostgreSQL the leader's lease renewals (every 2 s of real time) also run the
    // firing pass, which fires the due slots by the moved clock: a test engine there does
    // not stop firing. What decides reads the ledger through the store interface, which
    // the conformance suite holds to the same contract on both backends.
    if !matches!(engine::testing::backend(), engine::testing::Backend::Sqlite) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    job(&h, "silent", "0 */5 * * * *").await;
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "gaps", "on": "missed", "channels": ["hook"] }),
    ))
    .await
    .unwrap();
    clock.set(t0() + Span::minutes(9));
    h.evaluate_alerts().await.unwrap();
    assert!(incidents(&h).await.is_empty(), "not yet twice its interval");
    clock.set(t0() + Span::minutes(11));
    h.evaluate_alerts().await.unwrap();
    let list = incidents(&h).await;
    assert_eq!(list.len(), 1, "{:?}", h.runs_of("silent").await);
    assert!(
        list[0].message.contains("has not run since"),
        "{}",
        list[0].message
    );
    assert_eq!(list[0].run, None);
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_check_goes_late_then_down_and_a_ping_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    let check = h
        .create_check(from::<CheckSpec>(
            json!({ "id": "backup", "name": "nightly backup", "period": "1m", "grace": "30s" }),
        ))
        .await
        .unwrap();
    let token = check.ping_url.trim_start_matches("/ping/").to_string();
    assert_eq!(token.len(), 32, "128 random bits: {token}");
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "down", "on": "missed", "checks": ["backup"], "channels": ["hook"] }),
    ))
    .await
    .unwrap();
    let state = |h: &TestEngine| {
        let h = h.engine.clone();
        async move { h.list_checks().await.unwrap()[0].state.as_str() }
    };
    assert_eq!(state(&h).await, "new");
    let wrong = h
        .ping(
            "0123456789abcdef0123456789abcdef",
            PingKind::Success,
            b"",
            None,
        )
        .await;
    assert_eq!(
        wrong.unwrap_err().kind(),
        engine::error::ErrorKind::NotFound
    );
    h.ping(
        &token,
        PingKind::Success,
        b"dumped 3 GB",
        Some("10.0.0.7".into()),
    )
    .await
    .unwrap();
    for (secs, want) in [(50, "up"), (70, "late"), (100, "down")] {
        clock.set(t0() + Span::seconds(secs));
        assert_eq!(state(&h).await, want, "at +{secs} s");
        h.evaluate_alerts().await.unwrap();
        let open = incidents(&h).await.len();
        assert_eq!(open, usize::from(want == "down"), "at +{secs} s");
    }
    let i = &incidents(&h).await[0];
    assert!(i.message.contains("check backup is down"), "{}", i.message);
    assert_eq!(events(i), ["opened"]);
    clock.set(t0() + Span::seconds(110));
    h.ping(&token, PingKind::Success, b"", None).await.unwrap();
    assert_eq!(state(&h).await, "up");
    h.evaluate_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    assert!(i.closed_at.is_some());
    assert_eq!(events(i), ["opened", "recovered"]);
    let (_, pings) = h.get_check("backup").await.unwrap();
    assert_eq!(pings.len(), 2);
    assert_eq!(pings[1].body.as_deref(), Some("dumped 3 GB"));
    // A fail ping is down at once.
    clock.set(t0() + Span::seconds(111));
    h.ping(&token, PingKind::Fail, b"exit 3", None)
        .await
        .unwrap();
    assert_eq!(state(&h).await, "down");
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_signed_retried_after_a_500_and_a_mail_reaches_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    let receiver = Receiver::start(&[500]).await;
    hook(&h, &receiver.url).await;
    let smtp = SmtpSink::start("ops", "hunter2").await;
    h.create_channel(from::<ChannelSpec>(json!({ "id": "mail", "kind": "email", "host": "127.0.0.1", "port": smtp.port,
        "tls": "none", "from": "echopilot@example.com", "to": ["oncall@example.com"], "user": "ops", "password": "hunter2" })))
        .await
        .unwrap();
    h.create_channel(from::<ChannelSpec>(json!({ "id": "badmail", "kind": "email", "host": "127.0.0.1", "port": smtp.port,
        "tls": "none", "from": "echopilot@example.com", "to": ["oncall@example.com"], "user": "ops", "password": "wrong" })))
        .await
        .unwrap();
    job(&h, "boom", "0 0 3 * * *").await;
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "any", "on": "failed", "channels": ["hook", "mail", "badmail"] }),
    ))
    .await
    .unwrap();
    let run = outcome(&h, "boom", true).await;
    h.evaluate_alerts().await.unwrap();
    h.deliver_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    let by = |c: &str| {
        i.deliveries
            .iter()
            .find(|d| d.channel == c)
            .unwrap()
            .clone()
    };
    let webhook = by("hook");
    assert_eq!(
        (webhook.status, webhook.code),
        (DeliveryStatus::Pending, Some(500)),
        "{webhook:?}"
    );
    let bad = by("badmail");
    assert!(
        bad.error
            .as_deref()
            .is_some_and(|e| e.contains("refused the login")),
        "{bad:?}"
    );
    assert_eq!(by("mail").status, DeliveryStatus::Sent);
    // The retry after its backoff.
    clock.set(t0() + Span::seconds(6));
    h.deliver_alerts().await.unwrap();
    let i = &incidents(&h).await[0];
    let webhook = i.deliveries.iter().find(|d| d.channel == "hook").unwrap();
    assert_eq!(
        (webhook.status, webhook.attempts, webhook.code),
        (DeliveryStatus::Sent, 2, Some(200))
    );
    let got = receiver.received();
    assert_eq!(got.len(), 2, "the 500, then the 200");
    let last = &got[1];
    assert_eq!(
        last.header("x-echopilot-signature"),
        Some(signature("s3cret", &last.body))
    );
    let sent_at = (t0() + Span::seconds(6)).timestamp().to_string();
    assert_eq!(last.header("x-echopilot-timestamp"), Some(sent_at));
    let body = last.json();
    assert_eq!(
        (
            body["event"].as_str(),
            body["job"].as_str(),
            body["run"].as_i64()
        ),
        (Some("opened"), Some("boom"), Some(run.id))
    );
    assert_eq!(body["incident"], i.id);
    let mail = smtp.mail();
    assert_eq!(mail.len(), 1, "only the right password got through");
    let m = &mail[0];
    assert_eq!(
        (m.from.as_str(), m.to.as_slice(), m.user.as_deref()),
        (
            "echopilot@example.com",
            &["oncall@example.com".to_string()][..],
            Some("ops")
        )
    );
    let subject = m.subject().unwrap_or_default();
    assert!(
        subject.contains("opened") && subject.contains("boom"),
        "{subject}"
    );
    assert!(
        m.data.contains("asked to fail"),
        "the body names the error: {}",
        m.data
    );
    h.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_channels_and_rules_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let h = open(dir.path(), &clock).await;
    hook(&h, "http://127.0.0.1:9/hook").await;
    job(&h, "real", "0 0 3 * * *").await;
    let field = |e: engine::EngineError| match e {
        engine::EngineError::Invalid(v) => v.field,
        other => panic!("not invalid: {other}"),
    };
    for (spec, want) in [
        (
            json!({ "id": "r", "on": "consecutive_failures", "threshold": 0, "channels": ["hook"] }),
            "threshold",
        ),
        (
            json!({ "id": "r", "on": "consecutive_failures", "channels": ["hook"] }),
            "threshold",
        ),
        (
            json!({ "id": "r", "on": "failed", "jobs": ["nope"], "channels": ["hook"] }),
            "jobs[0]",
        ),
        (
            json!({ "id": "r", "on": "failed", "channels": [] }),
            "channels",
        ),
        (
            json!({ "id": "r", "on": "failed", "channels": ["ghost"] }),
            "channels[0]",
        ),
        (
            json!({ "id": "r", "on": "sometimes", "channels": ["hook"] }),
            "on",
        ),
        (
            json!({ "id": "r", "on": "failures_in_window", "threshold": 2, "window": "soon", "channels": ["hook"] }),
            "window",
        ),
    ] {
        let e = h
            .create_rule(from::<RuleSpec>(spec.clone()))
            .await
            .unwrap_err();
        assert_eq!(field(e), want, "{spec}");
    }
    for (spec, want) in [
        (json!({ "id": "c", "kind": "pager" }), "kind"),
        (
            json!({ "id": "c", "kind": "webhook", "url": "ftp://x" }),
            "url",
        ),
        (
            json!({ "id": "c", "kind": "email", "host": "smtp.example.com", "from": "me", "to": ["a@b.c"] }),
            "from",
        ),
        (
            json!({ "id": "c", "kind": "email", "host": "smtp.example.com", "from": "a@b.c", "to": [] }),
            "to",
        ),
    ] {
        let e = h
            .create_channel(from::<ChannelSpec>(spec.clone()))
            .await
            .unwrap_err();
        assert_eq!(field(e), want, "{spec}");
    }
    assert!(
        h.list_rules().await.unwrap().is_empty(),
        "nothing half-written"
    );
    // Secrets are write-only; a read sent back keeps them.
    let shown = h.get_channel("hook").await.unwrap();
    assert_eq!(shown.secret.as_deref(), Some("********"));
    let back = serde_json::to_value(&shown).unwrap();
    h.update_channel("hook", from::<ChannelSpec>(back))
        .await
        .unwrap();
    h.create_rule(from::<RuleSpec>(
        json!({ "id": "r", "on": "failed", "channels": ["hook"] }),
    ))
    .await
    .unwrap();
    // A channel a rule uses is not deleted from under it.
    let e = h.delete_channel("hook").await.unwrap_err();
    assert_eq!(e.kind(), engine::error::ErrorKind::Conflict);
    h.close().await;
}
