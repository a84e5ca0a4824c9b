//! Fires `* * * * * *` with tokio-cron-scheduler for N seconds (default 30) and prints the
//! lateness of each run after its whole-second slot: p50, p99, max, and missed seconds.

use std::sync::{Arc, Mutex};
use tokio_cron_scheduler::{Job, JobScheduler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let late = Arc::new(Mutex::new(Vec::<(i64, f64)>::new()));
    let sched = JobScheduler::new().await?;
    let record = late.clone();
    sched
        .add(Job::new_async("* * * * * *", move |_id, _l| {
            let now = chrono::Utc::now();
            let record = record.clone();
            Box::pin(async move {
                let slot = now.timestamp();
                let ms = (now.timestamp_micros() - slot * 1_000_000) as f64 / 1000.0;
                record.lock().unwrap().push((slot, ms));
            })
        })?)
        .await?;
    sched.start().await?;
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    let mut runs = late.lock().unwrap().clone();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    let first = runs.first().map(|r| r.0).unwrap_or(0);
    let last = runs.last().map(|r| r.0).unwrap_or(0);
    let mut distinct: Vec<i64> = runs.iter().map(|r| r.0).collect();
    distinct.dedup();
    let mut ms: Vec<f64> = runs.iter().map(|r| r.1).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{{\"scheduler\": \"tokio-cron-scheduler 0.15\", \"runs\": {}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"missed\": {}, \"duplicates\": {}}}",
        runs.len(),
        pct(0.5),
        pct(0.99),
        ms.last().copied().unwrap_or(0.0),
        (last - first + 1) as usize - distinct.len(),
        runs.len() - distinct.len()
    );
    Ok(())
}
