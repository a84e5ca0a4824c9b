//! The store conformance suite: every operation's contract, checked against each backend
//! through the one interface the engine uses: SQLite and PostgreSQL (a fresh database on
//! the test server that `scripts/with-postgres.sh` starts), every contract on both.
//!
//! The contracts: one row per (job, slot) whoever claims it; overlap decided in the claim;
//! a run's end recorded only while it is running; interrupts scoped to a node; paging
//! newest first with a cursor; retention keeping the newest of every job; concurrent
//! writers that never see "database is locked"; figures counted in the store.

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use engine::model::{AuditEntry, DesiredState, Heartbeat, NextRun};
use engine::store::{Claim, NewRun, RunEnd, SlotClaim, Store, SKIPPED_ACTIVE, SKIPPED_QUEUE_FULL};
use engine::testing;
use engine::{Job, JobSpec, Overlap, RunQuery, RunStatus, Trigger};

/// A backend under test: opens as many handles on one fresh store as a test asks for
/// (each like another process).
struct Backend {
    name: &'static str,
    kind: Kind,
}

enum Kind {
    /// The file, and (held, never read) its folder.
    Sqlite(#[allow(dead_code)] tempfile::TempDir, std::path::PathBuf),
    /// A fresh database's URL.
    Postgres(String),
}

impl Backend {
    /// Every backend: SQLite, and PostgreSQL (a fresh database on the test server; the
    /// suite fails, never skips, without one).
    async fn all() -> Vec<Backend> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echopilot.db");
        let name = format!(
            "c_{:x}_{:x}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let url = testing::fresh_database(&testing::postgres_url(), &name).await;
        vec![
            Backend {
                name: "sqlite",
                kind: Kind::Sqlite(dir, path),
            },
            Backend {
                name: "postgres",
                kind: Kind::Postgres(url),
            },
        ]
    }

    async fn open(&self) -> Store {
        match &self.kind {
            Kind::Sqlite(_, path) => Store::open_sqlite(path).await.unwrap(),
            Kind::Postgres(url) => {
                Store::open_postgres(url, "conformance", std::time::Duration::from_secs(10))
                    .await
                    .unwrap()
            }
        }
    }

    /// Makes `node` the leader and answers its epoch. SQLite has one leader for good, with
    /// epoch 0; on PostgreSQL `node` takes the lease (whoever held it).
    async fn lead(&self, store: &Store, node: &str) -> i64 {
        testing::lead(store, node).await
    }

    /// Registers `node` as alive (SQLite keeps no registry: the lock is the registry).
    async fn alive(&self, store: &Store, node: &str) {
        let Some(pg) = store.postgres() else { return };
        let now = Utc::now();
        let info = engine::model::NodeInfo {
            id: node.into(),
            name: node.into(),
            pid: 1,
            version: "test".into(),
            started_at: now,
            heartbeat_at: now,
            expires_at: now,
            running: 0,
            clock_offset_ms: 0,
            leader: false,
        };
        pg.register_node(&info, 3_600_000).await.unwrap();
    }
}

/// Runs `contract` against every backend, naming the backend when it fails.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for backend in Backend::all().await {
                    eprintln!("backend: {}", backend.name);
                    contracts::$name(&backend).await;
                }
            }
        )*
    };
}

conformance!(
    a_slot_is_one_row_whoever_claims_it,
    overlap_is_decided_in_the_claim,
    a_queued_run_starts_only_when_nothing_of_its_job_runs,
    an_end_is_recorded_only_while_the_run_is_running,
    interrupts_touch_only_the_runs_of_the_nodes_named,
    missed_slots_are_recorded_once_and_advance_the_cursor,
    runs_page_newest_first_with_filters_and_a_cursor,
    the_jobs_list_gets_each_jobs_newest_run,
    retention_keeps_the_newest_of_every_job_and_every_run_in_flight,
    fifty_concurrent_writers_never_see_database_is_locked,
    day_figures_are_counted_with_nearest_rank_percentiles,
    intent_heartbeats_facts_and_audit_round_trip,
    jobs_are_unique_by_id_and_keep_their_cursor,
    operator_controls_are_compare_and_set,
    incidents_open_once_per_pair_and_deliveries_are_claimed_once,
    a_file_of_jobs_is_applied_whole_or_not_at_all,
);

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
}

fn job(id: &str, overlap: Overlap) -> Job {
    Job::from_spec(
        JobSpec {
            id: Some(id.into()),
            kind: Some("noop".into()),
            schedule: Some("0 * * * * *".into()),
            overlap: Some(overlap),
            ..JobSpec::default()
        },
        None,
    )
    .unwrap()
    .0
}

/// A claim by `n1`, leading with `epoch` (see [`Backend::lead`]).
fn claim(job_id: &str, slot: DateTime<Utc>, overlap: Overlap, epoch: i64) -> SlotClaim<'_> {
    SlotClaim {
        job_id,
        slot,
        trigger: Trigger::Schedule,
        overlap,
        started_at: slot,
        node: "n1",
        epoch,
    }
}

async fn start(store: &Store, job_id: &str, node: &str, t: DateTime<Utc>) -> i64 {
    store
        .start_run(&NewRun {
            job_id,
            overlap: Overlap::Allow,
            trigger: Trigger::Api,
            attempt: 1,
            started_at: t,
            node,
            params: None,
            rerun_of: None,
        })
        .await
        .unwrap()
}

async fn end(store: &Store, id: i64, status: RunStatus, t: DateTime<Utc>) -> bool {
    store
        .finish_run(&RunEnd {
            id,
            status,
            at: t,
            output: None,
            error: None,
            log: None,
        })
        .await
        .unwrap()
}

async fn status_of(store: &Store, id: i64) -> RunStatus {
    store.get_run(id).await.unwrap().unwrap().status
}

async fn all_runs(store: &Store, job: &str) -> Vec<engine::Run> {
    let mut runs = store
        .list_runs(&RunQuery {
            job: Some(job.into()),
            limit: 500,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    runs.reverse();
    runs
}

mod contracts {
    pub async fn a_file_of_jobs_is_applied_whole_or_not_at_all(b: &Backend) {
        use engine::store::{JobsPlan, JOBS_APPLIED};
        let store = b.open().await;
        store
            .insert_job(&job("keep", Overlap::Skip), at(8, 0))
            .await
            .unwrap();
        store
            .insert_job(&job("drop", Overlap::Skip), at(8, 0))
            .await
            .unwrap();
        let mut changed = job("keep", Overlap::Allow);
        changed.name = "kept, changed".into();
        let plan = JobsPlan {
            insert: &[job("new", Overlap::Queue)],
            update: &[(changed.clone(), false)],
            delete: &["drop".to_string()],
            applied: r#"{"keep":"a","new":"b"}"#,
        };
        store.apply_jobs(&plan, at(9, 0)).await.unwrap();
        let ids: Vec<String> = store
            .load_jobs()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.job.id)
            .collect();
        assert_eq!(ids, ["keep", "new"]);
        let keep = store
            .load_jobs()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.job.id == "keep")
            .unwrap();
        assert_eq!(
            (keep.job.name.as_str(), keep.job.overlap),
            ("kept, changed", Overlap::Allow)
        );
        assert_eq!(
            keep.last_slot,
            at(8, 0),
            "the cursor stays unless its timing changed"
        );
        assert_eq!(
            store.fact(JOBS_APPLIED).await.unwrap().as_deref(),
            Some(r#"{"keep":"a","new":"b"}"#)
        );
        // A job deleted meanwhile: the whole file is refused, nothing of it written.
        let plan = JobsPlan {
            insert: &[job("another", Overlap::Skip)],
            update: &[(job("drop", Overlap::Allow), false)],
            delete: &[],
            applied: "{}",
        };
        let e = store.apply_jobs(&plan, at(10, 0)).await.unwrap_err();
        assert_eq!(e.kind(), engine::ErrorKind::Conflict, "{e}");
        let ids: Vec<String> = store
            .load_jobs()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.job.id)
            .collect();
        assert_eq!(ids, ["keep", "new"], "nothing of the refused file");
        assert_eq!(
            store.fact(JOBS_APPLIED).await.unwrap().as_deref(),
            Some(r#"{"keep":"a","new":"b"}"#)
        );
    }

    pub async fn incidents_open_once_per_pair_and_deliveries_are_claimed_once(b: &Backend) {
        use engine::model::alert::{AlertEvent, DeliveryStatus};
        use engine::store::{DeliveryEnd, NewIncident, Notice};
        let store = b.open().await;
        let other = b.open().await;
        let body = r#"{"event":"opened","incident":null,"message":"m"}"#;
        let notices = [
            Notice {
                channel: "hook",
                event: AlertEvent::Opened,
                body,
            },
            Notice {
                channel: "mail",
                event: AlertEvent::Opened,
                body,
            },
        ];
        let new = NewIncident {
            rule: "r",
            subject: "job:a",
            at: at(9, 0),
            run: Some(7),
            message: "m",
            suppressed: None,
            notices: &notices,
        };
        let (one, two) = tokio::join!(store.open_incident(&new), other.open_incident(&new));
        let opened: Vec<i64> = [one.unwrap(), two.unwrap()].into_iter().flatten().collect();
        assert_eq!(
            opened.len(),
            1,
            "one open incident per (rule, subject), whoever opens it"
        );
        let id = opened[0];
        let list = store.list_incidents(10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].deliveries.len(), 2, "its notices, written with it");
        let d = &list[0].deliveries[0];
        assert_eq!(
            d.body["incident"], id,
            "the notice names the incident: {}",
            d.body
        );
        // Each attempt is claimed by one sender only.
        let (a, b2) = tokio::join!(
            store.claim_delivery(d.id, at(9, 0), at(9, 1)),
            other.claim_delivery(d.id, at(9, 0), at(9, 1))
        );
        assert_eq!([a.unwrap(), b2.unwrap()].iter().filter(|c| **c).count(), 1);
        let due = store.due_deliveries(at(9, 0), 10).await.unwrap();
        assert_eq!(
            due.len(),
            1,
            "the claimed one is not due while its claim holds"
        );
        store
            .finish_delivery(&DeliveryEnd {
                id: d.id,
                status: DeliveryStatus::Sent,
                next_at: at(9, 0),
                done_at: Some(at(9, 0)),
                code: Some(200),
                error: None,
            })
            .await
            .unwrap();
        // A sender that went silent: its claim runs out and the attempt is due again.
        let e = due[0].id;
        assert!(store.claim_delivery(e, at(9, 0), at(9, 1)).await.unwrap());
        assert!(store.due_deliveries(at(9, 0), 10).await.unwrap().is_empty());
        assert_eq!(store.due_deliveries(at(9, 1), 10).await.unwrap().len(), 1);
        // Reminders and the close are compare-and-set too.
        assert!(store
            .remind_incident(id, at(9, 30), Some(at(9, 0)), &notices[..1])
            .await
            .unwrap());
        assert!(
            !other
                .remind_incident(id, at(9, 30), Some(at(9, 0)), &notices[..1])
                .await
                .unwrap(),
            "reminded already"
        );
        assert!(store
            .close_incident(id, at(10, 0), Some(9), &[])
            .await
            .unwrap());
        assert!(
            !other
                .close_incident(id, at(10, 0), Some(9), &notices)
                .await
                .unwrap(),
            "closed already"
        );
        let latest = store.latest_incidents().await.unwrap();
        assert_eq!(
            (latest[0].closed_by, latest[0].notified_at),
            (Some(9), Some(at(9, 30)))
        );
        assert_eq!(
            store.list_incidents(10).await.unwrap()[0].deliveries.len(),
            3
        );
        // Once closed, the pair may open again.
        assert!(store
            .open_incident(&NewIncident {
                at: at(11, 0),
                ..new
            })
            .await
            .unwrap()
            .is_some());
        // Retention: the closed incident and its sent notice go; the open one stays.
        assert_eq!(store.delete_old_alerts(at(23, 0)).await.unwrap(), 2);
        let left = store.list_incidents(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].closed_at.is_none());
        // Definitions: created once, replaced, deleted.
        assert!(store
            .put_alert_item("rule", "r", "{}", true, at(9, 0))
            .await
            .unwrap());
        assert!(!other
            .put_alert_item("rule", "r", "{}", true, at(9, 0))
            .await
            .unwrap());
        assert!(store
            .put_alert_item("rule", "r", "{\"x\":1}", false, at(9, 0))
            .await
            .unwrap());
        assert!(
            !store
                .put_alert_item("channel", "r", "{}", false, at(9, 0))
                .await
                .unwrap(),
            "kinds apart"
        );
        assert_eq!(store.alert_items("rule").await.unwrap(), ["{\"x\":1}"]);
        assert!(store.delete_alert_item("rule", "r").await.unwrap());
        assert!(!store.delete_alert_item("rule", "r").await.unwrap());
    }

    use super::*;

    pub async fn a_slot_is_one_row_whoever_claims_it(b: &Backend) {
        let epoch = b.lead(&b.open().await, "n1").await;
        b.open()
            .await
            .insert_job(&job("j", Overlap::Allow), at(11, 0))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = b.open().await;
            tasks.push(tokio::spawn(async move {
                let won = store
                    .claim_slot(&claim("j", at(12, 0), Overlap::Allow, epoch))
                    .await
                    .unwrap();
                store.close().await;
                won
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let runs = outcomes
            .iter()
            .filter(|c| matches!(c, Claim::Run(_)))
            .count();
        let taken = outcomes.iter().filter(|c| **c == Claim::Taken).count();
        assert_eq!((runs, taken), (1, 19), "{outcomes:?}");
        assert_eq!(all_runs(&b.open().await, "j").await.len(), 1);
        // A catch-up claim of the same slot is the same slot.
        let store = b.open().await;
        let mut again = claim("j", at(12, 0), Overlap::Allow, epoch);
        again.trigger = Trigger::CatchUp;
        assert_eq!(store.claim_slot(&again).await.unwrap(), Claim::Taken);
    }

    pub async fn overlap_is_decided_in_the_claim(b: &Backend) {
        let store = b.open().await;
        let epoch = b.lead(&store, "n1").await;
        for (id, overlap) in [
            ("skip", Overlap::Skip),
            ("queue", Overlap::Queue),
            ("allow", Overlap::Allow),
        ] {
            store.insert_job(&job(id, overlap), at(8, 0)).await.unwrap();
            let outcomes = [
                store
                    .claim_slot(&claim(id, at(9, 1), overlap, epoch))
                    .await
                    .unwrap(),
                store
                    .claim_slot(&claim(id, at(9, 2), overlap, epoch))
                    .await
                    .unwrap(),
                store
                    .claim_slot(&claim(id, at(9, 3), overlap, epoch))
                    .await
                    .unwrap(),
            ];
            let statuses: Vec<RunStatus> = all_runs(&store, id)
                .await
                .iter()
                .map(|r| r.status)
                .collect();
            match overlap {
                Overlap::Skip => {
                    assert!(
                        matches!(
                            outcomes,
                            [Claim::Run(_), Claim::Skipped(_), Claim::Skipped(_)]
                        ),
                        "{outcomes:?}"
                    );
                    assert_eq!(
                        statuses,
                        [RunStatus::Running, RunStatus::Skipped, RunStatus::Skipped]
                    );
                    let skipped = &all_runs(&store, id).await[1];
                    assert_eq!(skipped.error.as_deref(), Some(SKIPPED_ACTIVE));
                    assert!(skipped.finished_at.is_some(), "a skipped slot ends at once");
                }
                Overlap::Queue => {
                    assert!(
                        matches!(
                            outcomes,
                            [Claim::Run(_), Claim::Queued(_), Claim::Skipped(_)]
                        ),
                        "{outcomes:?}"
                    );
                    assert_eq!(
                        statuses,
                        [RunStatus::Running, RunStatus::Queued, RunStatus::Skipped]
                    );
                    assert_eq!(
                        all_runs(&store, id).await[2].error.as_deref(),
                        Some(SKIPPED_QUEUE_FULL)
                    );
                    assert_eq!(
                        all_runs(&store, id).await[1].started_at,
                        None,
                        "a queued run has not started"
                    );
                }
                Overlap::Allow => {
                    assert!(
                        outcomes.iter().all(|c| matches!(c, Claim::Run(_))),
                        "{outcomes:?}"
                    );
                    assert_eq!(statuses, [RunStatus::Running; 3]);
                }
            }
        }
        // A manual run counts as running for the policy; an ended one does not.
        store
            .insert_job(&job("m", Overlap::Skip), at(8, 0))
            .await
            .unwrap();
        let manual = start(&store, "m", "n1", at(9, 0)).await;
        assert!(matches!(
            store
                .claim_slot(&claim("m", at(9, 1), Overlap::Skip, epoch))
                .await
                .unwrap(),
            Claim::Skipped(_)
        ));
        assert!(end(&store, manual, RunStatus::Succeeded, at(9, 1)).await);
        assert!(matches!(
            store
                .claim_slot(&claim("m", at(9, 2), Overlap::Skip, epoch))
                .await
                .unwrap(),
            Claim::Run(_)
        ));
    }

    pub async fn a_queued_run_starts_only_when_nothing_of_its_job_runs(b: &Backend) {
        let store = b.open().await;
        let epoch = b.lead(&store, "n1").await;
        store
            .insert_job(&job("q", Overlap::Queue), at(8, 0))
            .await
            .unwrap();
        let Claim::Run(first) = store
            .claim_slot(&claim("q", at(9, 1), Overlap::Queue, epoch))
            .await
            .unwrap()
        else {
            panic!("the first claim runs")
        };
        let Claim::Queued(queued) = store
            .claim_slot(&claim("q", at(9, 2), Overlap::Queue, epoch))
            .await
            .unwrap()
        else {
            panic!("the second waits")
        };
        assert_eq!(
            store.start_queued("q", "n2", at(9, 2)).await.unwrap(),
            None,
            "one still runs"
        );
        assert!(end(&store, first, RunStatus::Succeeded, at(9, 3)).await);
        assert_eq!(
            store.start_queued("q", "n2", at(9, 3)).await.unwrap(),
            Some(queued)
        );
        let started = store.get_run(queued).await.unwrap().unwrap();
        assert_eq!(
            (started.status, started.node.as_str()),
            (RunStatus::Running, "n2")
        );
        assert_eq!(started.started_at, Some(at(9, 3)));
        assert_eq!(
            store.start_queued("q", "n2", at(9, 4)).await.unwrap(),
            None,
            "none left"
        );
    }

    pub async fn operator_controls_are_compare_and_set(b: &Backend) {
        let store = b.open().await;
        let epoch = b.lead(&store, "n1").await;
        // Cancel: a queued or running run, once; never an ended one.
        store
            .insert_job(&job("q", Overlap::Queue), at(8, 0))
            .await
            .unwrap();
        let Claim::Run(running) = store
            .claim_slot(&claim("q", at(9, 1), Overlap::Queue, epoch))
            .await
            .unwrap()
        else {
            panic!("the first claim runs")
        };
        let Claim::Queued(queued) = store
            .claim_slot(&claim("q", at(9, 2), Overlap::Queue, epoch))
            .await
            .unwrap()
        else {
            panic!("the second waits")
        };
        assert!(store
            .cancel_run(queued, "cancelled by key", at(9, 3))
            .await
            .unwrap());
        assert!(store
            .cancel_run(running, "cancelled by key: x", at(9, 3))
            .await
            .unwrap());
        assert!(
            !store.cancel_run(running, "again", at(9, 4)).await.unwrap(),
            "ended already"
        );
        assert_eq!(status_of(&store, queued).await, RunStatus::Cancelled);
        let run = store.get_run(running).await.unwrap().unwrap();
        assert_eq!(run.error.as_deref(), Some("cancelled by key: x"));
        assert!(
            !end(&store, running, RunStatus::Succeeded, at(9, 5)).await,
            "a late end is refused"
        );
        store.keep_log(running, "the whole log\n").await.unwrap();
        assert_eq!(
            store.run_log(running).await.unwrap().as_deref(),
            Some("the whole log\n")
        );
        assert_eq!(
            store.start_queued("q", "n1", at(9, 6)).await.unwrap(),
            None,
            "a cancelled run never starts"
        );
        let done = start(&store, "q", "n1", at(9, 0)).await;
        assert!(end(&store, done, RunStatus::Succeeded, at(9, 1)).await);
        assert!(!store.cancel_run(done, "late", at(9, 2)).await.unwrap());
        assert_eq!(status_of(&store, done).await, RunStatus::Succeeded);
        // Params and reruns are kept with the run.
        let rerun = store
            .start_run(&NewRun {
                job_id: "q",
                overlap: Overlap::Allow,
                trigger: Trigger::Rerun,
                attempt: 1,
                started_at: at(9, 7),
                node: "n1",
                params: Some(r#"{"n":2}"#),
                rerun_of: Some(done),
            })
            .await
            .unwrap();
        let r = store.get_run(rerun).await.unwrap().unwrap();
        assert_eq!((r.trigger, r.rerun_of), (Trigger::Rerun, Some(done)));
        assert_eq!(r.params, Some(serde_json::json!({ "n": 2 })));
        assert_eq!(store.reruns_of(done).await.unwrap(), vec![rerun]);
        // A job's pause and the scheduler's: replaced only from what the caller saw.
        assert!(store
            .swap_job_pause("q", None, Some("p1"), at(9, 8))
            .await
            .unwrap());
        assert!(
            !store
                .swap_job_pause("q", None, Some("p2"), at(9, 8))
                .await
                .unwrap(),
            "stale"
        );
        assert!(store
            .swap_job_pause("q", Some("p1"), None, at(9, 8))
            .await
            .unwrap());
        assert!(!store
            .swap_job_pause("ghost", None, Some("p"), at(9, 8))
            .await
            .unwrap());
        assert!(store.swap_scheduler_pause(None, Some("a")).await.unwrap());
        assert!(
            !store.swap_scheduler_pause(None, Some("b")).await.unwrap(),
            "one is in force"
        );
        assert!(store
            .swap_scheduler_pause(Some("a"), Some("b"))
            .await
            .unwrap());
        assert_eq!(store.scheduler_pause().await.unwrap().as_deref(), Some("b"));
        assert!(
            !store.swap_scheduler_pause(Some("a"), None).await.unwrap(),
            "stale"
        );
        assert!(store.swap_scheduler_pause(Some("b"), None).await.unwrap());
        assert_eq!(store.scheduler_pause().await.unwrap(), None);
        // Windows: added once, replaced and deleted only when there.
        let w = engine::WindowSpec {
            id: Some("w".into()),
            name: Some("W".into()),
            start: Some("2026-03-02T09:00:00Z".into()),
            end: Some("2026-03-02T10:00:00Z".into()),
            ..Default::default()
        }
        .check(None)
        .unwrap()
        .window;
        assert!(store.put_window(&w, true, at(9, 9)).await.unwrap());
        assert!(
            !store.put_window(&w, true, at(9, 9)).await.unwrap(),
            "exists"
        );
        assert!(store.put_window(&w, false, at(9, 9)).await.unwrap());
        assert_eq!(store.list_windows().await.unwrap(), vec![w.clone()]);
        assert!(store.delete_window("w").await.unwrap());
        assert!(!store.delete_window("w").await.unwrap());
        assert!(
            !store.put_window(&w, false, at(9, 9)).await.unwrap(),
            "gone"
        );
        // The runs filter's lower bound.
        let newer = store
            .list_runs(&RunQuery {
                after: Some(done),
                limit: 500,
                ..RunQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(newer.iter().map(|r| r.id).collect::<Vec<_>>(), vec![rerun]);
    }

    pub async fn an_end_is_recorded_only_while_the_run_is_running(b: &Backend) {
        let store = b.open().await;
        let id = start(&store, "f", "n1", at(9, 0)).await;
        assert!(end(&store, id, RunStatus::Succeeded, at(9, 1)).await);
        assert!(
            !end(&store, id, RunStatus::Failed, at(9, 2)).await,
            "ended already"
        );
        assert_eq!(status_of(&store, id).await, RunStatus::Succeeded);
        // Cancelled by someone else first: the runner's late end does not overwrite it.
        let id = start(&store, "f", "n1", at(9, 0)).await;
        let cancel = RunEnd {
            id,
            status: RunStatus::Cancelled,
            at: at(9, 1),
            output: None,
            error: Some("cancelled by the operator"),
            log: None,
        };
        assert!(store.finish_run(&cancel).await.unwrap());
        let late = RunEnd {
            id,
            status: RunStatus::Succeeded,
            at: at(9, 2),
            output: Some(&serde_json::json!({ "late": true })),
            error: None,
            log: Some("late log"),
        };
        assert!(!store.finish_run(&late).await.unwrap());
        let run = store.get_run(id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Cancelled);
        assert_eq!(run.error.as_deref(), Some("cancelled by the operator"));
        assert_eq!(store.run_log(id).await.unwrap().as_deref(), Some(""));
        // In one batch, the running one is ended and the ended one is not.
        let running = start(&store, "f", "n1", at(9, 0)).await;
        let (a, c) = tokio::join!(
            end(&store, running, RunStatus::Failed, at(9, 3)),
            end(&store, id, RunStatus::Failed, at(9, 3)),
        );
        assert!(a && !c);
        // A log given with the end is stored with it.
        let logged = start(&store, "f", "n1", at(9, 0)).await;
        let with_log = RunEnd {
            id: logged,
            log: Some("line 1\n"),
            ..late
        };
        assert!(store.finish_run(&with_log).await.unwrap());
        assert_eq!(
            store.run_log(logged).await.unwrap().as_deref(),
            Some("line 1\n")
        );
        assert_eq!(
            store.get_run(logged).await.unwrap().unwrap().output["late"],
            true
        );
    }

    pub async fn interrupts_touch_only_the_runs_of_the_nodes_named(b: &Backend) {
        let store = b.open().await;
        store
            .insert_job(&job("i", Overlap::Queue), at(8, 0))
            .await
            .unwrap();
        let a = start(&store, "i", "node-a", at(9, 0)).await;
        let b_run = start(&store, "i", "node-b", at(9, 0)).await;
        let c = start(&store, "i", "node-c", at(9, 0)).await;
        let done = start(&store, "i", "node-a", at(9, 0)).await;
        assert!(end(&store, done, RunStatus::Succeeded, at(9, 1)).await);
        let hit = store
            .interrupt_runs_of("node-a", "gone", at(9, 5))
            .await
            .unwrap();
        assert_eq!(hit.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a]);
        assert_eq!(status_of(&store, b_run).await, RunStatus::Running);
        assert_eq!(
            status_of(&store, done).await,
            RunStatus::Succeeded,
            "ended runs stay"
        );
        let interrupted = store.get_run(a).await.unwrap().unwrap();
        assert_eq!(
            (interrupted.status, interrupted.error.as_deref()),
            (RunStatus::Interrupted, Some("gone"))
        );
        assert_eq!(interrupted.finished_at, Some(at(9, 5)));
        // The leader (node-b here) rescues the runs of nodes that are gone: node-c is.
        b.alive(&store, "node-b").await;
        let epoch = b.lead(&store, "node-b").await;
        let hit = store
            .interrupt_orphans("node-b", epoch, "orphan", at(9, 6))
            .await
            .unwrap();
        assert_eq!(hit.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c]);
        assert_eq!(status_of(&store, b_run).await, RunStatus::Running);
        assert!(store
            .interrupt_orphans("node-b", epoch, "orphan", at(9, 7))
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn missed_slots_are_recorded_once_and_advance_the_cursor(b: &Backend) {
        let store = b.open().await;
        let epoch = b.lead(&store, "n1").await;
        store
            .insert_job(&job("m", Overlap::Allow), at(8, 0))
            .await
            .unwrap();
        let Claim::Run(claimed) = store
            .claim_slot(&claim("m", at(9, 2), Overlap::Allow, epoch))
            .await
            .unwrap()
        else {
            panic!("claimed")
        };
        let slots = [at(9, 1), at(9, 2), at(9, 3)];
        let n = store
            .record_skipped_slots("m", &slots, "missed: down", at(9, 10), "n1", epoch)
            .await
            .unwrap();
        assert_eq!(n, 2, "the claimed slot keeps its row");
        assert_eq!(status_of(&store, claimed).await, RunStatus::Running);
        let runs = all_runs(&store, "m").await;
        assert_eq!(runs.len(), 3);
        assert!(runs
            .iter()
            .filter(|r| r.status == RunStatus::Skipped)
            .all(|r| r.error.as_deref() == Some("missed: down")));
        let cursor = store
            .load_jobs()
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.job.id == "m")
            .unwrap()
            .last_slot;
        assert_eq!(cursor, at(9, 3));
        // The cursor never moves back.
        store
            .record_skipped_slots("m", &[at(8, 30)], "missed", at(9, 11), "n1", epoch)
            .await
            .unwrap();
        let cursor = store
            .load_jobs()
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.job.id == "m")
            .unwrap()
            .last_slot;
        assert_eq!(cursor, at(9, 3));
    }

    pub async fn runs_page_newest_first_with_filters_and_a_cursor(b: &Backend) {
        let store = b.open().await;
        let mut ids = Vec::new();
        for k in 0..30 {
            let job = if k % 2 == 0 { "even" } else { "odd" };
            let id = start(&store, job, "n1", at(9, k)).await;
            if k % 3 == 0 {
                end(&store, id, RunStatus::Failed, at(9, k)).await;
            } else {
                end(&store, id, RunStatus::Succeeded, at(9, k)).await;
            }
            ids.push(id);
        }
        let page =
            |job: Option<&str>, status: Option<RunStatus>, before: Option<i64>, limit: u32| {
                let store = store.clone();
                let q = RunQuery {
                    job: job.map(str::to_string),
                    status,
                    before,
                    after: None,
                    limit,
                };
                async move { store.list_runs(&q).await.unwrap() }
            };
        let first = page(None, None, None, 10).await;
        assert_eq!(
            first.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids.iter().rev().take(10).copied().collect::<Vec<_>>()
        );
        let second = page(None, None, first.last().map(|r| r.id), 10).await;
        assert_eq!(second[0].id, ids[19]);
        let odd_failed = page(Some("odd"), Some(RunStatus::Failed), None, 500).await;
        assert_eq!(odd_failed.len(), 5, "k = 3, 9, 15, 21, 27");
        assert!(odd_failed
            .iter()
            .all(|r| r.job_id == "odd" && r.status == RunStatus::Failed));
        assert!(
            odd_failed.windows(2).all(|w| w[0].id > w[1].id),
            "newest first"
        );
        assert_eq!(
            page(None, Some(RunStatus::Failed), None, 500).await.len(),
            10
        );
        assert_eq!(page(Some("even"), None, None, 500).await.len(), 15);
        assert!(
            page(None, None, Some(ids[0]), 10).await.is_empty(),
            "nothing before the first"
        );
    }

    pub async fn the_jobs_list_gets_each_jobs_newest_run(b: &Backend) {
        let store = b.open().await;
        for id in ["a", "b", "c"] {
            store
                .insert_job(&job(id, Overlap::Allow), at(8, 0))
                .await
                .unwrap();
        }
        start(&store, "a", "n1", at(9, 0)).await;
        let newest_a = start(&store, "a", "n1", at(9, 1)).await;
        let only_b = start(&store, "b", "n1", at(9, 2)).await;
        start(&store, "deleted-job", "n1", at(9, 3)).await;
        let last = store.last_runs().await.unwrap();
        let pairs: Vec<(String, i64)> = last.iter().map(|r| (r.job_id.clone(), r.id)).collect();
        assert_eq!(
            pairs,
            vec![("a".to_string(), newest_a), ("b".to_string(), only_b)]
        );
    }

    pub async fn retention_keeps_the_newest_of_every_job_and_every_run_in_flight(b: &Backend) {
        let store = b.open().await;
        let old = at(1, 0);
        for k in 0..5 {
            let id = start(&store, "busy", "n1", old + Span::minutes(k)).await;
            end(&store, id, RunStatus::Succeeded, old + Span::minutes(k)).await;
        }
        let running_old = start(&store, "busy", "n1", old).await;
        let rare = start(&store, "rare", "n1", old).await;
        end(&store, rare, RunStatus::Failed, old).await;
        let fresh = start(&store, "busy", "n1", at(12, 0)).await;
        end(&store, fresh, RunStatus::Succeeded, at(12, 0)).await;
        let deleted = store.delete_old_runs(at(6, 0), 2).await.unwrap();
        // busy: 5 old ended + 1 running + 1 fresh; the newest 2 ids (running, fresh) stay
        // by count, and the running one would stay anyway. rare: its only run is kept.
        assert_eq!(deleted, 5);
        let left: Vec<i64> = all_runs(&store, "busy")
            .await
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, vec![running_old, fresh]);
        assert_eq!(all_runs(&store, "rare").await.len(), 1);
        store.reclaim_space().await.unwrap();
    }

    pub async fn fifty_concurrent_writers_never_see_database_is_locked(b: &Backend) {
        // Five handles (like five processes), ten writers on each.
        let mut stores = Vec::new();
        for _ in 0..5 {
            stores.push(b.open().await);
        }
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = stores[i % 5].clone();
            tasks.push(tokio::spawn(async move {
                for k in 0..20 {
                    let node = format!("w{i}");
                    let id = store
                        .start_run(&NewRun {
                            job_id: "w",
                            overlap: Overlap::Allow,
                            trigger: Trigger::Api,
                            attempt: 1,
                            started_at: Utc::now(),
                            node: &node,
                            params: None,
                            rerun_of: None,
                        })
                        .await?;
                    let out = serde_json::json!({ "k": k });
                    let ended = store
                        .finish_run(&RunEnd {
                            id,
                            status: RunStatus::Succeeded,
                            at: Utc::now(),
                            output: Some(&out),
                            error: None,
                            log: None,
                        })
                        .await?;
                    assert!(ended);
                }
                Ok::<_, engine::EngineError>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("no write fails");
        }
        let mut before = None;
        let mut total = 0;
        loop {
            let page = stores[0]
                .list_runs(&RunQuery {
                    job: Some("w".into()),
                    before,
                    limit: 500,
                    ..RunQuery::default()
                })
                .await
                .unwrap();
            total += page.len();
            before = page.last().map(|r| r.id);
            if page.len() < 500 {
                break;
            }
        }
        assert_eq!(total, 1000);
    }

    pub async fn day_figures_are_counted_with_nearest_rank_percentiles(b: &Backend) {
        let store = b.open().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 30, 0).unwrap();
        let add = |job: &'static str, status: RunStatus, start_at: DateTime<Utc>, ms: i64| {
            let store = store.clone();
            async move {
                let id = start(&store, job, "t", start_at).await;
                end(&store, id, status, start_at + Span::milliseconds(ms)).await;
            }
        };
        // Job a: durations 1..=100 ms, this hour and the one before; job b: three failures.
        for d in 1..=100 {
            let hour = if d % 2 == 0 { 0 } else { 1 };
            add("a", RunStatus::Succeeded, now - Span::hours(hour), d).await;
        }
        for d in [5, 7, 9] {
            add("b", RunStatus::Failed, now - Span::minutes(10), d).await;
        }
        // Out of the window: two days old.
        add("a", RunStatus::Failed, now - Span::days(2), 10_000).await;

        let stats = store.job_stats_since(now - Span::hours(24)).await.unwrap();
        assert_eq!(stats.len(), 2);
        let (a, b) = (&stats[0], &stats[1]);
        assert_eq!(
            (a.job.as_str(), a.runs, a.succeeded, a.failed),
            ("a", 100, 100, 0)
        );
        assert_eq!((a.p50_ms, a.p95_ms), (Some(50), Some(95)));
        assert_eq!(a.success_rate, Some(1.0));
        assert_eq!((b.runs, b.failed, b.success_rate), (3, 3, Some(0.0)));
        assert_eq!((b.p50_ms, b.p95_ms), (Some(7), Some(9)));

        let hours = store.hourly_counts(now, 24).await.unwrap();
        assert_eq!(hours.len(), 24);
        let this = hours[23];
        assert_eq!(
            this.hour_ms,
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!((this.succeeded, this.failed), (50, 3));
        assert_eq!((hours[22].succeeded, hours[22].failed), (50, 0));
        assert!(hours[..22]
            .iter()
            .all(|h| h.succeeded + h.failed + h.skipped == 0));
    }

    pub async fn intent_heartbeats_facts_and_audit_round_trip(b: &Backend) {
        let store = b.open().await;
        assert_eq!(store.desired_state().await.unwrap(), None);
        store
            .set_desired_state(DesiredState::Stopped, at(9, 0))
            .await
            .unwrap();
        assert_eq!(
            b.open().await.desired_state().await.unwrap(),
            Some(DesiredState::Stopped)
        );
        let hb = Heartbeat {
            node: "n1".into(),
            pid: 42,
            started_at: at(8, 0),
            at: at(9, 0),
            next_runs: vec![NextRun {
                job: "j".into(),
                at: at(9, 1),
            }],
        };
        store.record_heartbeat(&hb).await.unwrap();
        store
            .record_heartbeat(&Heartbeat {
                at: at(9, 1),
                ..hb.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            store.last_heartbeat("n1").await.unwrap().unwrap().at,
            at(9, 1)
        );
        assert_eq!(store.last_heartbeat("n2").await.unwrap(), None);
        store.ping_write().await.unwrap();
        assert_eq!(store.fact("k").await.unwrap(), None);
        store.record_fact("k", "v1").await.unwrap();
        store.record_fact("k", "v2").await.unwrap();
        assert_eq!(store.fact("k").await.unwrap().as_deref(), Some("v2"));
        let entry = AuditEntry {
            at: at(9, 0),
            actor: "key".into(),
            ip: "127.0.0.1".into(),
            action: "POST /api/jobs\r\nforged: yes".into(),
            target: "job j".into(),
            details: "{}".into(),
            status: 201,
        };
        store.record_audit(&entry).await.unwrap();
        store
            .record_audit(&AuditEntry {
                at: at(10, 0),
                ..entry.clone()
            })
            .await
            .unwrap();
        let listed = store.list_audit(10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].at, at(10, 0), "newest first");
        assert_eq!(
            listed[0].action, "POST /api/jobs\\r\\nforged: yes",
            "controls encoded"
        );
        assert_eq!(store.delete_old_audit(at(9, 30)).await.unwrap(), 1);
    }

    pub async fn jobs_are_unique_by_id_and_keep_their_cursor(b: &Backend) {
        let store = b.open().await;
        let j = job("x", Overlap::Skip);
        store.insert_job(&j, at(8, 0)).await.unwrap();
        let again = store.insert_job(&j, at(8, 1)).await.unwrap_err();
        assert!(matches!(again, engine::EngineError::Conflict(_)), "{again}");
        let mut changed = j.clone();
        changed.name = "renamed".into();
        store.update_job(&changed, false, at(9, 0)).await.unwrap();
        let loaded = store.load_jobs().await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            (loaded[0].job.name.as_str(), loaded[0].last_slot),
            ("renamed", at(8, 0))
        );
        store.update_job(&changed, true, at(9, 0)).await.unwrap();
        assert_eq!(
            store.load_jobs().await.unwrap()[0].last_slot,
            at(9, 0),
            "a new timing starts now"
        );
        let missing = store
            .update_job(&job("nope", Overlap::Skip), false, at(9, 0))
            .await
            .unwrap_err();
        assert!(matches!(missing, engine::EngineError::NotFound(_)));
        assert!(store.delete_job("x").await.unwrap());
        assert!(!store.delete_job("x").await.unwrap());
    }
}
