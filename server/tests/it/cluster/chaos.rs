//! The chaos test (RELIABILITY 16–18): three real nodes on one real PostgreSQL, jobs
//! firing every second at an independent witness, and faults one after another — kill -9
//! the leader; SIGSTOP it past its lease, then SIGCONT; terminate its database sessions;
//! cut it off the database (reset, and a black hole); PostgreSQL restarted; rolling
//! SIGTERM restarts — while one node's clock is minutes off the whole time.
//!
//! Afterwards every slot is accounted for from the database and the witness: each either
//! ran once (the witness saw it once) or has a `skipped` row with its reason; no epoch
//! wrote after the next one began; and the figures of the table are printed.
//!
//! `make test` runs one round of every fault (`ECHOPILOT_CHAOS_FAULTS` unset); `make
//! chaos` runs until at least `ECHOPILOT_CHAOS_FAULTS` faults and
//! `ECHOPILOT_CHAOS_SLOTS` slots (200 and 100,000) with `ECHOPILOT_CHAOS_JOBS` jobs;
//! `ECHOPILOT_CHAOS_ONLY` (fault names, comma-separated) keeps to some faults.

use super::{gone, within, Cluster};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The lease TTL in the chaos rounds: failover is measured against it.
const TTL: u64 = 3;
/// One node's clock is this far ahead of the others' and the database's.
const SKEW_MS: i64 = 3 * 60 * 1000 + 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillLeader,
    StopLeader,
    TerminateSessions,
    CutLeader,
    BlackholeLeader,
    RestartPostgres,
    RollingRestart,
}

const FAULTS: [Fault; 7] = [
    Fault::KillLeader,
    Fault::StopLeader,
    Fault::TerminateSessions,
    Fault::CutLeader,
    Fault::BlackholeLeader,
    Fault::RestartPostgres,
    Fault::RollingRestart,
];

/// What the rounds measured.
#[derive(Default)]
struct Figures {
    faults: BTreeMap<Fault, usize>,
    /// kill -9 of the leader → first fire by the new leader (ms).
    crash_failover_ms: Vec<i64>,
    /// SIGSTOP / cut / black hole of the leader → first fire by the new leader (ms).
    other_failover_ms: Vec<i64>,
    /// SIGTERM of the leader: its resignation → the next term (ms).
    handoff_ms: Vec<i64>,
    /// Every-second slots missed around a graceful handoff (must be none): job, slot (ms)
    /// and the reason recorded.
    handoff_missed: Vec<(String, i64, Option<String>)>,
    /// Slots around a graceful handoff skipped as their job's previous run still ran
    /// (`overlap = skip` doing its work on a loaded machine, not a missed slot).
    handoff_overlaps: usize,
    /// kill -9 → no run left `running` on the dead node (ms).
    rescue_ms: Vec<i64>,
    /// Children of a killed node still alive 5 s later.
    orphan_children: usize,
    /// A SIGCONT'd leader still claiming to lead a lease past its deadline.
    zombie_leaders: usize,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn percentile(values: &[i64], p: f64) -> Option<i64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    (!v.is_empty()).then(|| v[((v.len() as f64 - 1.0) * p).round() as usize])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_no_slot_twice_every_slot_accounted_for() {
    let long = env_usize("ECHOPILOT_CHAOS_FAULTS").is_some();
    let min_faults = env_usize("ECHOPILOT_CHAOS_FAULTS").unwrap_or(FAULTS.len());
    let min_slots = env_usize("ECHOPILOT_CHAOS_SLOTS").unwrap_or(0);
    let jobs = env_usize("ECHOPILOT_CHAOS_JOBS").unwrap_or(if long { 80 } else { 12 });
    // Some faults only (`ECHOPILOT_CHAOS_ONLY=RestartPostgres,RollingRestart`), to look
    // closer at them.
    let faults: Vec<Fault> = match std::env::var("ECHOPILOT_CHAOS_ONLY") {
        Ok(only) => FAULTS
            .into_iter()
            .filter(|f| only.split(',').any(|name| format!("{f:?}") == name.trim()))
            .collect(),
        Err(_) => FAULTS.to_vec(),
    };
    assert!(!faults.is_empty(), "ECHOPILOT_CHAOS_ONLY names no fault");
    let mut c = Cluster::start(3, TTL, &[0, 0, SKEW_MS]).await;
    c.settled(Duration::from_secs(20)).await;
    let pids = c.dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    create_jobs(&c, jobs, &pids).await;
    // Slots are counted from the first whole second after every job exists.
    let first_ms = (c.db_now_ms().await / 1000 + 2) * 1000;
    let mut figures = Figures::default();
    let started = Instant::now();
    let mut round = 0;
    loop {
        let slots = (c.db_now_ms().await - first_ms).max(0) / 1000 * jobs as i64;
        if round >= min_faults && slots >= min_slots as i64 {
            break;
        }
        let fault = faults[round % faults.len()];
        inject(&mut c, fault, &mut figures, &pids).await;
        *figures.faults.entry(fault).or_default() += 1;
        c.settled(Duration::from_secs(30)).await;
        c.fires_on_time(Duration::from_secs(30)).await;
        round += 1;
        if long && round % 7 == 0 {
            eprintln!(
                "chaos: {round} faults, {slots} slots, {:?}",
                started.elapsed()
            );
        }
    }
    // Quiet for a moment, then every slot up to here must be settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last_ms = (c.db_now_ms().await / 1000 - 1) * 1000;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.stop_all();
    let account = account(&c, jobs, first_ms, last_ms).await;
    let stale = stale_epoch_writes(&c).await;
    print_table(&figures, &account, stale, started.elapsed());
    // What must hold, every round.
    assert_eq!(
        account.duplicates,
        Vec::<(String, usize)>::new(),
        "executed twice"
    );
    if let Some(first) = account.unaccounted.first() {
        let (job, at) = first.split_once(':').unwrap_or_default();
        let at = chrono::DateTime::parse_from_rfc3339(at).map_or(0, |t| t.timestamp_millis());
        panic!(
            "slots with no row: {:?}\n{}",
            account.unaccounted,
            explain(&c, job, at).await
        );
    }
    assert_eq!(account.skipped_but_executed, Vec::<String>::new());
    assert_eq!(account.succeeded_unseen, Vec::<String>::new());
    assert_eq!(stale, 0, "writes with a stale epoch");
    assert_eq!(
        figures.orphan_children, 0,
        "children outlived a killed node"
    );
    assert_eq!(
        figures.zombie_leaders, 0,
        "a resumed old leader kept leading"
    );
    assert_eq!(
        figures.handoff_missed,
        Vec::new(),
        "slots missed in a graceful handoff"
    );
    for ms in &figures.crash_failover_ms {
        assert!(
            *ms <= (TTL as i64 + 1) * 1000,
            "crash failover took {ms} ms"
        );
    }
}

async fn create_jobs(c: &Cluster, jobs: usize, pids: &std::path::Path) {
    let hit = format!("http://127.0.0.1:{}/hit", c.witness.port);
    for j in 0..jobs {
        // Half skip, half run the latest missed slot once: both must account for all.
        let misfire = if j % 2 == 0 { "skip" } else { "run_once" };
        let spec = json!({
            "id": format!("tick-{j:03}"), "kind": "http", "schedule": "* * * * * *",
            "misfire": misfire, "timeout_secs": 10,
            "params": { "url": hit, "method": "POST" },
        });
        let (status, body) = c.any().send(Method::POST, "/api/jobs", Some(spec)).await;
        assert_eq!(status, 201, "{body}");
    }
    // Runs in flight on the leader whenever it is hit, for the rescue and the children.
    let script = format!(
        "echo $$ > '{}'/$ECHOPILOT_RUN_ID; exec sleep 6",
        pids.display()
    );
    let spec = json!({
        "id": "sleeper", "kind": "shell", "schedule": "*/2 * * * * *", "overlap": "allow",
        "timeout_secs": 60, "params": { "argv": ["sh", "-c", script] },
    });
    let (status, body) = c.any().send(Method::POST, "/api/jobs", Some(spec)).await;
    assert_eq!(status, 201, "{body}");
}

/// The sleeper children (pid) of runs on node id `node` that were running.
async fn children_of(c: &Cluster, node: &str, pids: &std::path::Path) -> Vec<i32> {
    c.running_on(node)
        .await
        .iter()
        .filter_map(|run| {
            std::fs::read_to_string(pids.join(run.to_string()))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

/// Waits for the first fire under an epoch newer than `epoch`; ms since `since_ms`.
async fn failover(c: &Cluster, epoch: i64, since_ms: i64) -> i64 {
    let Some(fired) = within(Duration::from_secs(TTL + 10), || c.first_fire_after(epoch)).await
    else {
        let logs = c.log_lines(|_| true);
        let sessions = lines(
            c,
            "SELECT format('%s %s %s: %s', application_name, state,
                    wait_event_type || ':' || wait_event, left(query, 120))
             FROM pg_stat_activity WHERE datname = current_database()",
            &[],
        )
        .await;
        panic!(
            "no new leader fired after epoch {epoch}; lease {:?}\nsessions:\n{}\n{}",
            c.lease().await,
            sessions.join("\n"),
            logs.join("\n")
        );
    };
    fired - since_ms
}

async fn inject(c: &mut Cluster, fault: Fault, f: &mut Figures, pids: &std::path::Path) {
    let (leader, epoch) = c.leader(Duration::from_secs(30)).await;
    match fault {
        Fault::KillLeader => {
            let dead = c.nodes[leader].id.clone();
            let children = children_of(c, &dead, pids).await;
            let at = c.db_now_ms().await;
            c.kill(leader);
            f.crash_failover_ms.push(failover(c, epoch, at).await);
            let resolved = within(Duration::from_secs(TTL + 10), || async {
                c.running_on(&dead).await.is_empty().then_some(())
            })
            .await;
            assert!(resolved.is_some(), "the dead node's runs stay running");
            f.rescue_ms.push(c.db_now_ms().await - at);
            let all_gone = within(Duration::from_secs(5), || async {
                children.iter().all(|p| gone(*p)).then_some(())
            })
            .await;
            if all_gone.is_none() {
                f.orphan_children += children.iter().filter(|p| !gone(**p)).count();
            }
            c.boot(leader).await;
        }
        Fault::StopLeader => {
            let at = c.db_now_ms().await;
            c.signal(leader, libc::SIGSTOP);
            let took = failover(c, epoch, at).await;
            f.other_failover_ms.push(took);
            // Past its lease for certain, then woken: it must find out and stand down.
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.signal(leader, libc::SIGCONT);
            let stood_down = within(Duration::from_secs(TTL + 2), || async {
                let s = c.nodes[leader]
                    .up()
                    .json("GET", "/api/automations/status")
                    .await;
                (s["epoch"] != epoch).then_some(())
            })
            .await;
            if stood_down.is_none() {
                f.zombie_leaders += 1;
            }
        }
        Fault::TerminateSessions => {
            let id = c.nodes[leader].id.clone();
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(format!("echopilot:{id}"))
            .execute(&c.db)
            .await
            .expect("sessions are terminated");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Fault::CutLeader | Fault::BlackholeLeader => {
            let at = c.db_now_ms().await;
            if fault == Fault::CutLeader {
                c.nodes[leader].proxy.reset();
            } else {
                c.nodes[leader].proxy.blackhole();
            }
            f.other_failover_ms.push(failover(c, epoch, at).await);
            c.nodes[leader].proxy.restore();
        }
        Fault::RestartPostgres => {
            let pg_ctl = std::env::var("ECHOPILOT_TEST_PG_CTL")
                .expect("ECHOPILOT_TEST_PG_CTL: run through scripts/with-postgres.sh");
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("{pg_ctl} -m fast restart"))
                    .output()
                    .expect("pg_ctl runs")
            })
            .await
            .unwrap();
            assert!(
                out.status.success(),
                "pg_ctl restart: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The test's own pool reconnects by itself; so must every node.
            let back = within(Duration::from_secs(30), || async {
                sqlx::query("SELECT 1")
                    .execute(&c.db)
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await;
            assert!(back.is_some(), "PostgreSQL came back");
        }
        Fault::RollingRestart => {
            // The leader first (a graceful handoff), then the others.
            let order: Vec<usize> = std::iter::once(leader)
                .chain((0..c.nodes.len()).filter(|i| *i != leader))
                .collect();
            for (step, i) in order.into_iter().enumerate() {
                let before = c.leader(Duration::from_secs(30)).await;
                let at = c.db_now_ms().await;
                c.terminate(i);
                if step == 0 {
                    let (_, newer) = c.leader_after(before.1, Duration::from_secs(10)).await;
                    let took = handoff_ms(c, before.1, newer).await;
                    if took > 100 {
                        let logs = handoff_logs(c);
                        let tail = &logs[logs.len().saturating_sub(12)..];
                        eprintln!("slow handoff at {at}: {took} ms\n{}", tail.join("\n"));
                    }
                    f.handoff_ms.push(took);
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    let (missed, overlaps): (Vec<_>, Vec<_>) =
                        skipped_between(c, at - 1000, at + 2000)
                            .await
                            .into_iter()
                            .partition(|(_, _, why)| {
                                why.as_deref().is_none_or(|w| w.starts_with("missed"))
                            });
                    if let Some((job, slot, _)) = missed.first() {
                        let logs = handoff_logs(c);
                        eprintln!(
                            "missed in a handoff at {at}: {}\n{}",
                            explain(c, job, *slot).await,
                            logs.join("\n")
                        );
                    }
                    f.handoff_missed.extend(missed);
                    f.handoff_overlaps += overlaps.len();
                }
                c.boot(i).await;
                c.settled(Duration::from_secs(30)).await;
                c.fires_on_time(Duration::from_secs(30)).await;
            }
        }
    }
}

/// The nodes' log lines about leadership and announcements, to explain a handoff.
fn handoff_logs(c: &Cluster) -> Vec<String> {
    c.log_lines(|l| ["lead", "lease", "LISTEN"].iter().any(|w| l.contains(w)))
}

/// Rows of text from `sql` (one `format(...)` column; `$1`… are `args`), for messages.
async fn lines(c: &Cluster, sql: &'static str, args: &[&str]) -> Vec<String> {
    let mut query = sqlx::query_scalar(sql);
    for arg in args {
        query = query.bind(*arg);
    }
    query
        .fetch_all(&c.db)
        .await
        .unwrap_or_else(|e| vec![format!("({e})")])
}

/// What the store holds about `job` (its rows nearest to `around_ms`), the terms and the
/// nodes: why a slot may have no row, or was missed.
async fn explain(c: &Cluster, job: &str, around_ms: i64) -> String {
    let around = around_ms.to_string();
    let stored = lines(
        c,
        "SELECT format('created %s, updated %s, last slot %s', created_ms, updated_ms, last_slot_ms)
         FROM jobs WHERE id = $1",
        &[job],
    )
    .await;
    let rows = lines(
        c,
        "SELECT format('%s %s %s epoch %s on %s recorded %s', scheduled_ms, status, error, epoch,
                node, recorded_ms) FROM runs WHERE job_id = $1
         ORDER BY abs(scheduled_ms - $2::BIGINT) LIMIT 12",
        &[job, &around],
    )
    .await;
    let nodes = lines(
        c,
        "SELECT format('%s offset %s ms', id, clock_offset_ms) FROM nodes ORDER BY id",
        &[],
    )
    .await;
    let terms = lines(
        c,
        "SELECT format('epoch %s %s from %s to %s (%s)', epoch, holder, acquired_ms, ended_ms,
                ended_how) FROM leader_history ORDER BY epoch LIMIT 12",
        &[],
    )
    .await;
    format!(
        "{job}: {stored:?}\nits first rows:\n{}\nterms:\n{}\nnodes: {nodes:?}",
        rows.join("\n"),
        terms.join("\n")
    )
}

/// A graceful handoff: from the old term's resignation to the new term's start.
async fn handoff_ms(c: &Cluster, old: i64, new: i64) -> i64 {
    let (ended, how): (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT ended_ms, ended_how FROM leader_history WHERE epoch = $1")
            .bind(old)
            .fetch_one(&c.db)
            .await
            .expect("the old term is recorded");
    assert_eq!(
        how.as_deref(),
        Some("resigned"),
        "a SIGTERM'd leader resigns"
    );
    let acquired: i64 =
        sqlx::query_scalar("SELECT acquired_ms FROM leader_history WHERE epoch = $1")
            .bind(new)
            .fetch_one(&c.db)
            .await
            .expect("the new term is recorded");
    acquired - ended.expect("ended")
}

/// Every-second slots in `[from_ms, to_ms]` recorded as skipped, with their reasons.
async fn skipped_between(
    c: &Cluster,
    from_ms: i64,
    to_ms: i64,
) -> Vec<(String, i64, Option<String>)> {
    sqlx::query_as(
        "SELECT job_id, scheduled_ms, error FROM runs WHERE job_id LIKE 'tick-%'
         AND status = 'skipped' AND scheduled_ms BETWEEN $1 AND $2 ORDER BY scheduled_ms, job_id",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(&c.db)
    .await
    .unwrap()
}

#[derive(Default)]
struct Account {
    slots: usize,
    executions: usize,
    skipped: usize,
    interrupted: usize,
    duplicates: Vec<(String, usize)>,
    unaccounted: Vec<String>,
    skipped_but_executed: Vec<String>,
    succeeded_unseen: Vec<String>,
    /// Skipped slots by reason (up to the first `;` or `(`).
    reasons: BTreeMap<String, usize>,
    /// Succeeded runs: slot → start, and start → end (ms).
    start_late_ms: Vec<i64>,
    took_ms: Vec<i64>,
}

fn key(job: &str, ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(ms).expect("a time");
    format!(
        "{job}:{}",
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

/// Every slot of every tick job in `[first, last]`, against the rows and the witness.
async fn account(c: &Cluster, jobs: usize, first_ms: i64, last_ms: i64) -> Account {
    type Row = (
        String,
        i64,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT job_id, scheduled_ms, status, error, started_ms, finished_ms FROM runs
         WHERE job_id LIKE 'tick-%' AND scheduled_ms BETWEEN $1 AND $2",
    )
    .bind(first_ms)
    .bind(last_ms)
    .fetch_all(&c.db)
    .await
    .unwrap();
    let mut a = Account {
        duplicates: c.witness.duplicates(),
        executions: c.witness.executions(),
        ..Account::default()
    };
    let mut by_slot: HashMap<(String, i64), (String, Option<String>)> = HashMap::new();
    for (job, slot, status, error, started, finished) in rows {
        if let (true, Some(s), Some(e)) = (status == "succeeded", started, finished) {
            a.start_late_ms.push(s - slot);
            a.took_ms.push(e - s);
        }
        let again = by_slot.insert((job.clone(), slot), (status, error));
        assert!(
            again.is_none(),
            "two rows for {job} at {slot}: the index failed"
        );
    }
    for j in 0..jobs {
        let job = format!("tick-{j:03}");
        let mut slot = first_ms;
        while slot <= last_ms {
            a.slots += 1;
            let k = key(&job, slot);
            match by_slot.get(&(job.clone(), slot)) {
                None => a.unaccounted.push(k),
                Some((status, error)) => match status.as_str() {
                    "skipped" => {
                        a.skipped += 1;
                        let why = error.as_deref().unwrap_or_default();
                        assert!(!why.is_empty(), "{k} skipped without a reason");
                        let short = why.split([';', '(']).next().unwrap_or(why).trim();
                        *a.reasons.entry(short.to_string()).or_default() += 1;
                        if c.witness.has(&k) {
                            a.skipped_but_executed.push(k);
                        }
                    }
                    "succeeded" => {
                        if !c.witness.has(&k) {
                            a.succeeded_unseen.push(k);
                        }
                    }
                    // Cut short by a fault: it may or may not have reached the witness,
                    // once at most (duplicates are counted from the witness alone).
                    "interrupted" | "failed" | "timed_out" => a.interrupted += 1,
                    other => panic!("{k} still {other} after every node stopped"),
                },
            }
            slot += 1000;
        }
    }
    a
}

/// Rows written under an epoch after the next epoch had begun (database clock).
async fn stale_epoch_writes(c: &Cluster) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM runs r JOIN leader_history next ON next.epoch = r.epoch + 1
         WHERE r.epoch IS NOT NULL AND r.recorded_ms >= next.acquired_ms",
    )
    .fetch_one(&c.db)
    .await
    .unwrap()
}

fn print_table(f: &Figures, a: &Account, stale: i64, took: Duration) {
    let faults: usize = f.faults.values().sum();
    let list = |v: &[i64]| match (percentile(v, 0.5), percentile(v, 0.99), v.iter().max()) {
        (Some(p50), Some(p99), Some(max)) => {
            format!("p50 {p50} ms, p99 {p99} ms, max {max} ms over {}", v.len())
        }
        _ => "not measured".into(),
    };
    println!(
        "\nchaos: {faults} faults in {:.0} s — {:?}",
        took.as_secs_f64(),
        f.faults
    );
    println!(
        "chaos: {} slots ({} executions seen by the witness, {} skipped with a reason, {} cut short)",
        a.slots, a.executions, a.skipped, a.interrupted
    );
    println!("chaos: skipped by reason {:?}", a.reasons);
    println!(
        "chaos: succeeded runs' start after their slot {}; their duration {}",
        list(&a.start_late_ms),
        list(&a.took_ms)
    );
    println!(
        "chaos: one node's clock {} ms ahead throughout; lease TTL {TTL} s",
        SKEW_MS
    );
    println!("| figure | target | measured |");
    println!("|---|---|---|");
    println!(
        "| duplicate executions (witness) | 0 | {} |",
        a.duplicates.len()
    );
    println!(
        "| slots unaccounted for | 0 | {} (and {} skipped rows executed, {} succeeded rows unseen) |",
        a.unaccounted.len(),
        a.skipped_but_executed.len(),
        a.succeeded_unseen.len()
    );
    println!(
        "| crash failover (kill -9 → first fire of the new leader) | ≤ {} ms | {} |",
        (TTL + 1) * 1000,
        list(&f.crash_failover_ms)
    );
    println!(
        "| failover after SIGSTOP / cut / black hole | — | {} |",
        list(&f.other_failover_ms)
    );
    println!(
        "| graceful handoff (SIGTERM of the leader) | ≤ 100 ms p99, no missed slot | {}; {} slots missed ({} skipped by overlap) |",
        list(&f.handoff_ms),
        f.handoff_missed.len(),
        f.handoff_overlaps
    );
    println!("| writes with a stale epoch after a takeover | 0 | {stale} |");
    println!(
        "| runs of a dead node resolved | ≤ {} ms | {} |",
        (TTL + 2) * 1000,
        list(&f.rescue_ms)
    );
    println!(
        "| children of a killed node left running | 0 | {} |",
        f.orphan_children
    );
}
