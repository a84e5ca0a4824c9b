//! What several nodes on one PostgreSQL promise, one promise at a time, with real
//! processes: one leader and every node in status, run now on any node, a run waited for
//! and followed from a node it does not run on, 503 (JSON) from a node cut off from the
//! database and recovery without a restart, a refused start naming the database, and
//! shell children that die with a `kill -9`'d server.

use super::{gone, within, Cluster};
use crate::support::{read_events, spawn, Opts};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const TTL: u64 = 3;
const SETTLE: Duration = Duration::from_secs(20);

async fn create(c: &Cluster, spec: Value) {
    let (status, body) = c.any().send(Method::POST, "/api/jobs", Some(spec)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_one_leader_its_epoch_and_every_node_and_the_leader_history() {
    let c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let (leader, epoch) = c.leader(SETTLE).await;
    for (i, node) in c.nodes.iter().enumerate() {
        let s = node
            .up()
            .wait_status(SETTLE, |s| {
                s["nodes"].as_array().is_some_and(|n| {
                    n.len() == 2 && n.iter().filter(|n| n["leader"] == true).count() == 1
                })
            })
            .await;
        assert_eq!(s["store"], "postgres");
        assert_eq!(s["state"], "running", "every node's loop runs: {s}");
        assert_eq!(s["leader"], i == leader, "{s}");
        if i == leader {
            assert_eq!(s["epoch"], epoch, "{s}");
        } else {
            assert!(s["epoch"].is_null(), "{s}");
        }
        let nodes = s["nodes"].as_array().unwrap();
        for (j, other) in c.nodes.iter().enumerate() {
            let seen = nodes
                .iter()
                .find(|n| n["id"] == other.id.as_str())
                .unwrap_or_else(|| panic!("{} lists {}: {s}", node.name, other.name));
            assert_eq!(seen["name"], other.name.as_str());
            assert_eq!(seen["leader"], j == leader, "{s}");
            assert_eq!(seen["alive"], true);
            assert_eq!(seen["version"], env!("CARGO_PKG_VERSION"));
            assert_eq!(seen["pid"], other.pid());
            assert!(
                seen["heartbeat_age_secs"].as_f64().unwrap() < TTL as f64,
                "{s}"
            );
            assert!(
                seen["clock_offset_ms"].as_i64().unwrap().abs() < 1000,
                "{s}"
            );
        }
    }
    let (status, terms) = c.any().send(Method::GET, "/api/leaders", None).await;
    assert_eq!(status, 200, "{terms}");
    let first = &terms["leaders"][0];
    assert_eq!(first["epoch"], epoch, "newest first: {terms}");
    assert_eq!(first["holder"], c.nodes[leader].id.as_str());
    assert!(first["ended_at"].is_null(), "{terms}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_is_claimed_by_a_node_and_waited_for_and_followed_from_another() {
    let c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let gate = c.dir.path().join("gate");
    let script = format!(
        "echo started; while [ ! -e '{}' ]; do sleep 0.05; done; echo finished",
        gate.display()
    );
    create(
        &c,
        json!({ "id": "gated", "kind": "shell", "schedule": "@every 24h", "params": { "argv": ["sh", "-c", script] } }),
    )
    .await;
    let (status, body) = c.nodes[0]
        .up()
        .send(Method::POST, "/api/jobs/gated/run", None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["run"]["status"], "queued", "for any node: {body}");
    let id = body["run"]["id"].as_i64().unwrap();
    let runner = within(SETTLE, || async {
        let run = c.any().json("GET", &format!("/api/runs/{id}")).await;
        (run["status"] == "running").then(|| run["node"].as_str().unwrap().to_string())
    })
    .await
    .expect("a node claims the run");
    let x = c
        .nodes
        .iter()
        .position(|n| n.id == runner)
        .expect("a node of ours");
    let other = c.nodes[1 - x].up();
    // From the node it does not run on: its events, its log, and a wait for its end.
    let mut events = other.get("/api/events").await;
    let mut log = other.get(&format!("/api/runs/{id}/log")).await;
    assert_eq!(log.status(), 200);
    let url = other.url.clone();
    let waited = tokio::spawn(async move {
        crate::support::Http { url }
            .json("GET", &format!("/api/runs/{id}?wait=true"))
            .await
    });
    let so_far = read_events(&mut log, SETTLE, |ev| {
        ev.iter().any(|(k, d)| k == "log" && d.contains("started"))
    })
    .await;
    assert!(
        !waited.is_finished(),
        "the wait returned while the run still ran: {so_far:?}"
    );
    std::fs::write(&gate, b"").unwrap();
    let run = waited.await.unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["node"], runner.as_str());
    let rest = read_events(&mut log, SETTLE, |ev| ev.iter().any(|(k, _)| k == "end")).await;
    let text: String = so_far
        .iter()
        .chain(&rest)
        .filter(|(k, _)| k == "log")
        .map(|(_, d)| d.as_str())
        .collect();
    assert!(
        text.contains("started") && text.contains("finished"),
        "{text}"
    );
    assert_eq!(rest.last().unwrap(), &("end".into(), "succeeded".into()));
    let nudges = read_events(&mut events, SETTLE, |ev| !ev.is_empty()).await;
    assert_eq!(nudges[0].0, "runs", "the other node hears runs move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_now_spreads_over_the_nodes_and_each_run_ends_once() {
    let c = Cluster::start(3, TTL, &[]).await;
    c.settled(SETTLE).await;
    create(
        &c,
        json!({ "id": "quick", "kind": "noop", "schedule": "@every 24h", "overlap": "allow" }),
    )
    .await;
    let mut ids = Vec::new();
    for round in 0..60 {
        let node = c.nodes[round % 3].up();
        let (status, body) = node.send(Method::POST, "/api/jobs/quick/run", None).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["run"]["id"].as_i64().unwrap());
    }
    let ended: Vec<(String, String)> = within(SETTLE, || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT status, node FROM runs WHERE job_id = 'quick' AND status <> 'queued' AND status <> 'running'",
        )
        .fetch_all(&c.db)
        .await
        .unwrap();
        (rows.len() == ids.len()).then_some(rows)
    })
    .await
    .expect("every run ends");
    assert!(ended.iter().all(|(s, _)| s == "succeeded"), "{ended:?}");
    let nodes: std::collections::HashSet<_> = ended.iter().map(|(_, n)| n.clone()).collect();
    assert!(
        nodes.iter().all(|n| c.nodes.iter().any(|x| &x.id == n)),
        "{nodes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_off_answers_503_steps_down_and_comes_back_without_a_restart() {
    let mut c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let (leader, epoch) = c.leader(SETTLE).await;
    let cut = &c.nodes[leader];
    cut.proxy.reset();
    let r = cut.up().get("/api/runs?limit=1").await;
    assert_eq!(r.status(), 503, "a store out of reach is unavailable");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().len() > 10,
        "says what: {body}"
    );
    // It stops leading on its own deadline, and the other node takes over.
    let s = cut
        .up()
        .wait_status(Duration::from_secs(TTL + 2), |s| s["leader"] == false)
        .await;
    assert!(s["epoch"].is_null());
    let (next, newer) = c.leader_after(epoch, Duration::from_secs(TTL + 3)).await;
    assert_ne!(next, leader);
    assert!(newer > epoch);
    // Back, without a restart: its API answers again and it follows the new leader.
    c.nodes[leader].proxy.restore();
    let back = within(SETTLE, || async {
        let r = c.nodes[leader].up().get("/api/runs?limit=1").await;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "the node answers again once the database is back"
    );
    let ids: Vec<String> = c.nodes.iter().map(|n| n.id.clone()).collect();
    c.settled(SETTLE).await;
    assert_eq!(
        c.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        ids,
        "no process was restarted"
    );
    c.stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_unreachable_database_url_refuses_to_start_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for (url, says) in [
        (
            format!("postgres://bob:hunter2@127.0.0.1:{port}/db"),
            format!("127.0.0.1:{port}"),
        ),
        (
            "mysql://bob:hunter2@db/x".to_string(),
            "--database-url".to_string(),
        ),
        (
            "postgres://bob:hunter2@no-such-host.invalid/db".to_string(),
            "no-such-host.invalid".to_string(),
        ),
    ] {
        let Err((status, err)) = spawn(Opts::env(&[("ECHOPILOT_DATABASE_URL", &url)])) else {
            panic!("{url}: started");
        };
        assert!(!status.success());
        assert!(err.contains(&says), "{url}: {err}");
        assert!(
            !err.contains("hunter2"),
            "the password is never printed: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nodes_shell_children_die_with_it_and_its_runs_are_rescued() {
    let mut c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let pids = c.dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let script = format!(
        "echo $$ > '{}'/$ECHOPILOT_RUN_ID; exec sleep 120",
        pids.display()
    );
    create(
        &c,
        json!({ "id": "sleeper", "kind": "shell", "schedule": "@every 24h", "overlap": "allow", "timeout_secs": 300, "params": { "argv": ["sh", "-c", script] } }),
    )
    .await;
    for _ in 0..6 {
        c.any()
            .send(Method::POST, "/api/jobs/sleeper/run", None)
            .await;
    }
    // Until each of the six has written its pid.
    let children: Vec<(i64, i32)> = within(SETTLE, || async {
        let found: Vec<(i64, i32)> = std::fs::read_dir(&pids)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let run = e.file_name().to_str()?.parse().ok()?;
                let pid = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((run, pid))
            })
            .collect();
        (found.len() == 6).then_some(found)
    })
    .await
    .expect("six children start");
    let victim = 0;
    let dead_id = c.nodes[victim].id.clone();
    let theirs: Vec<i64> = c.running_on(&dead_id).await;
    assert!(!theirs.is_empty(), "the victim runs some of them");
    c.kill(victim);
    for (run, pid) in &children {
        if theirs.contains(run) {
            let died = within(Duration::from_secs(5), || async {
                gone(*pid).then_some(())
            })
            .await;
            assert!(
                died.is_some(),
                "child {pid} of run {run} outlived its server"
            );
        }
    }
    // The survivor's rescue ends them as interrupted once the dead node's registration
    // lapses (how fast is a figure of `make chaos`).
    let resolved = within(Duration::from_secs(TTL + 10), || async {
        c.running_on(&dead_id).await.is_empty().then_some(())
    })
    .await;
    assert!(resolved.is_some(), "the dead node's runs stay running");
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM runs WHERE id = ANY($1) ORDER BY id")
            .bind(&theirs)
            .fetch_all(&c.db)
            .await
            .unwrap();
    assert!(statuses.iter().all(|s| s == "interrupted"), "{statuses:?}");
    // The survivor's own children are untouched.
    for (run, pid) in &children {
        if !theirs.contains(run) {
            assert!(!gone(*pid), "child {pid} of run {run} on the survivor died");
        }
    }
    c.stop_all();
}

/// A graceful handoff waits for the leader's claims in flight: a SIGTERM'd leader whose
/// claim of a slot is still on its way records that slot itself, rather than resigning
/// first (its claim then fenced by its own resignation, the slot left to the next leader
/// as missed). Every claim on the leader takes 2.5 s here (a failpoint), and the SIGTERM
/// lands 1.5 s after the first slot — past the grace a new leader runs late slots in.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resigning_leader_records_the_slot_it_was_claiming() {
    let mut c = Cluster::start_with(2, TTL, &[], |i| {
        if i == 0 {
            vec![("FAILPOINTS".into(), "claim_slot_delay=return(2500)".into())]
        } else {
            Vec::new()
        }
    })
    .await;
    c.settled(SETTLE).await;
    let (leader, epoch) = c.leader(SETTLE).await;
    assert_eq!(leader, 0, "the first node up leads");
    crate::jobs::only_test_jobs(c.nodes[0].up()).await;
    let (status, job) = c.nodes[0]
        .up()
        .send(
            Method::POST,
            "/api/jobs",
            Some(json!({ "id": "tick", "kind": "noop", "schedule": "* * * * * *" })),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let first = chrono::DateTime::parse_from_rfc3339(job["next_run_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let sigterm_at = first + chrono::Duration::milliseconds(1500);
    if let Ok(wait) = (sigterm_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let old = c.nodes[0].id.clone();
    c.terminate(0);
    let (_, newer) = c.leader_after(epoch, SETTLE).await;
    let first_ms = first.timestamp_millis();
    // Until the new leader has recorded a few slots of its own.
    let rows: Vec<(i64, String, String)> = within(SETTLE, || async {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT scheduled_ms, status, node FROM runs
             WHERE job_id = 'tick' AND scheduled_ms >= $1 ORDER BY scheduled_ms",
        )
        .bind(first_ms)
        .fetch_all(&c.db)
        .await
        .unwrap();
        let newest = rows.last().map_or(0, |r| r.0);
        (newest >= first_ms + 6000).then_some(rows)
    })
    .await
    .expect("the new leader fires");
    assert_eq!(
        (rows[0].0, rows[0].1.as_str(), rows[0].2.as_str()),
        (first_ms, "succeeded", old.as_str()),
        "the slot in flight at the SIGTERM is the old leader's: {rows:?}"
    );
    // And no slot after it lacks its row (each has one: the row is unique).
    let newest = rows.last().unwrap().0;
    assert_eq!(
        rows.len() as i64,
        (newest - first_ms) / 1000 + 1,
        "a slot has no row: {rows:?}"
    );
    let epochs: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT epoch FROM runs WHERE job_id = 'tick' ORDER BY epoch")
            .fetch_all(&c.db)
            .await
            .unwrap();
    assert_eq!(epochs, vec![epoch, newer], "two terms, no other");
    c.stop_all();
}

/// The operator's controls hold across nodes (the state is in the store): a run cancelled
/// through a node it does not run on stops there (its process gone); a pause asked of a
/// follower is kept by the leader — slots recorded `paused:` — and ends by itself; a
/// pause of everything and a maintenance window likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_pause_and_maintenance_hold_across_nodes() {
    let c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let (leader, _) = c.leader(SETTLE).await;
    let follower = &c.nodes[1 - leader];
    let pids = c.dir.path().join("cancel-pids");
    std::fs::create_dir(&pids).unwrap();
    let script = format!(
        "trap '' TERM; echo $$ > '{}'/$ECHOPILOT_RUN_ID; sleep 120",
        pids.display()
    );
    create(
        &c,
        json!({ "id": "sleeper", "kind": "shell", "schedule": "@every 24h", "overlap": "allow", "timeout_secs": 300, "params": { "argv": ["sh", "-c", script] } }),
    )
    .await;
    // One run; the cancel goes through the node it does not run on.
    let (_, started) = c
        .any()
        .send(Method::POST, "/api/jobs/sleeper/run", None)
        .await;
    let run = started["run"]["id"].as_i64().expect("a run id");
    let pid: i32 = within(SETTLE, || async {
        std::fs::read_to_string(pids.join(run.to_string()))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await
    .expect("the run starts");
    let (_, r) = c
        .any()
        .send(Method::GET, &format!("/api/runs/{run}"), None)
        .await;
    let through = c
        .nodes
        .iter()
        .position(|n| n.id != r["node"].as_str().unwrap_or_default())
        .expect("a node the run is not on");
    let (s, body) = c.nodes[through]
        .up()
        .send(
            Method::POST,
            &format!("/api/runs/{run}/cancel"),
            Some(json!({ "reason": "from the other node" })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert!(
        within(Duration::from_secs(5), || async { gone(pid).then_some(()) })
            .await
            .is_some(),
        "the run's process on the other node outlived the cancel"
    );

    // A pause asked of the follower: the leader records the slots it swallows.
    create(
        &c,
        json!({ "id": "tick", "kind": "noop", "schedule": "@every 1s", "misfire": "run_once" }),
    )
    .await;
    let (s, job) = follower
        .up()
        .send(
            Method::POST,
            "/api/jobs/tick/pause",
            Some(json!({ "reason": "replica lag", "for": "3s" })),
        )
        .await;
    assert_eq!(s, 200, "{job}");
    let leader_id = c.nodes[leader].id.clone();
    let seen = within(SETTLE, || async {
        let runs: Vec<(String, String)> = sqlx::query_as(
            "SELECT error, node FROM runs WHERE job_id = 'tick' AND status = 'skipped' AND error LIKE 'paused: replica lag%'",
        )
        .fetch_all(&c.db)
        .await
        .unwrap();
        (!runs.is_empty()).then_some(runs)
    })
    .await
    .expect("the leader records the swallowed slots");
    assert!(seen.iter().all(|(_, node)| *node == leader_id), "{seen:?}");
    // It ends by itself, seen from both nodes.
    for node in &c.nodes {
        let done = within(SETTLE, || async {
            let (_, j) = node.up().send(Method::GET, "/api/jobs/tick", None).await;
            j["paused"].is_null().then_some(())
        })
        .await;
        assert!(done.is_some(), "{} still sees tick paused", node.name);
    }

    // Everything paused through the follower: the leader's status says so, and resumes.
    let (s, status) = follower
        .up()
        .send(
            Method::POST,
            "/api/automations/stop",
            Some(json!({ "reason": "failover drill" })),
        )
        .await;
    assert_eq!(s, 200, "{status}");
    let s = c.nodes[leader]
        .up()
        .wait_status(SETTLE, |s| s["paused"]["reason"] == "failover drill")
        .await;
    assert_eq!(s["paused"]["by"], "key");
    c.nodes[leader]
        .up()
        .send(Method::POST, "/api/automations/start", None)
        .await;
    follower
        .up()
        .wait_status(SETTLE, |s| s["paused"].is_null())
        .await;

    // A maintenance window made on the follower holds on the leader.
    let now = chrono::Utc::now();
    let (s, body) = follower
        .up()
        .send(
            Method::POST,
            "/api/maintenance",
            Some(json!({ "id": "freeze", "name": "Freeze", "jobs": ["tick"],
                "start": (now - chrono::Duration::seconds(1)).to_rfc3339(),
                "end": (now + chrono::Duration::hours(1)).to_rfc3339() })),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let held = within(SETTLE, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE job_id = 'tick' AND error = 'maintenance: Freeze'",
        )
        .fetch_one(&c.db)
        .await
        .unwrap();
        (n > 0).then_some(())
    })
    .await;
    assert!(
        held.is_some(),
        "the leader never held tick's slots for the window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_pending_when_the_leader_is_killed_is_sent_exactly_once_by_the_next() {
    let hook = engine::testing::peers::Receiver::start(&[500]).await;
    let sys = engine::testing::peers::Receiver::start(&[]).await;
    let mut c = Cluster::start(2, TTL, &[]).await;
    c.settled(SETTLE).await;
    let (leader, epoch) = c.leader(SETTLE).await;
    let survivor = 1 - leader;
    let post = |path: &'static str, body: Value| {
        let c = &c;
        async move {
            let (s, b) = c.nodes[survivor]
                .up()
                .send(Method::POST, path, Some(body))
                .await;
            assert!(s < 300, "{path}: {s} {b}");
            b
        }
    };
    post(
        "/api/alerts/channels",
        json!({ "id": "hook", "kind": "webhook", "url": hook.url, "secret": "k" }),
    )
    .await;
    post("/api/jobs", json!({ "id": "boom", "kind": "noop", "schedule": "@every 24h", "params": { "fail": true } })).await;
    post(
        "/api/alerts/rules",
        json!({ "id": "any", "on": "failed", "channels": ["hook"] }),
    )
    .await;
    post(
        "/api/alerts/channels",
        json!({ "id": "sys", "kind": "slack", "url": sys.url }),
    )
    .await;
    post(
        "/api/alerts/rules",
        json!({ "id": "self", "on": "system", "channels": ["sys"] }),
    )
    .await;
    post("/api/jobs/boom/run?wait=true", json!({})).await;
    // The leader's first attempt is answered 500 and recorded pending; then it dies.
    let pending = within(SETTLE, || async {
        let (_, b) = c.nodes[survivor]
            .up()
            .send(Method::GET, "/api/alerts/incidents", None)
            .await;
        let d = b["incidents"][0]["deliveries"][0].clone();
        (d["status"] == "pending" && d["attempts"] == 1).then_some(d)
    })
    .await
    .expect("the first attempt is recorded");
    assert_eq!(pending["code"], 500);
    c.kill(leader);
    let (next, _) = c.leader_after(epoch, SETTLE).await;
    assert_eq!(next, survivor);
    let sent = within(SETTLE, || async {
        let (_, b) = c.nodes[survivor]
            .up()
            .send(Method::GET, "/api/alerts/incidents", None)
            .await;
        (b["incidents"][0]["deliveries"][0]["status"] == "sent").then_some(b)
    })
    .await
    .expect("the next leader delivers it");
    let incidents: Vec<&Value> = sent["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["rule"] == "any")
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "the new leader opened nothing again: {sent}"
    );
    assert_eq!(incidents[0]["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(incidents[0]["deliveries"][0]["attempts"], 2);
    // EchoPilot about itself: the leader change, and the node lost, once each.
    let said = || -> Vec<String> {
        sys.received()
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let heard = within(SETTLE, || async {
        let s = said();
        (s.iter().any(|t| t.contains("leadership moved"))
            && s.iter().any(|t| t.contains("was lost")))
        .then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the system notices: {:?}", said()));
    assert_eq!(heard.len(), 2, "{heard:?}");
    // Exactly once: the 500, then the one 200, and nothing more from either node.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(said().len(), 2, "once each: {:?}", said());
    assert_eq!(got[0].body, got[1].body, "the same notice, retried");
}
