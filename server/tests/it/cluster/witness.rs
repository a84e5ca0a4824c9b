//! The independent witness of executions: an HTTP server on loopback that the chaos jobs
//! call, counting each execution by its `Idempotency-Key`. It knows nothing of the store,
//! so a slot run twice shows here even if the database would hide it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// What the witness saw.
#[derive(Default)]
pub struct Seen {
    /// Idempotency key → the wall-clock ms of each request with it.
    pub hits: HashMap<String, Vec<i64>>,
}

pub struct Witness {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

impl Witness {
    /// Serves `POST /hit` (counted, answered at once) on a free loopback port.
    pub async fn start() -> Witness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = state.clone();
                tokio::spawn(async move {
                    let Some((head, _)) = engine::testing::read_request(&mut sock).await else {
                        return;
                    };
                    let at = wall_ms();
                    let key = head.lines().find_map(|line| {
                        let (k, v) = line.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("idempotency-key")
                            .then(|| v.trim().to_string())
                    });
                    if let Some(key) = key {
                        seen.lock().unwrap().hits.entry(key).or_default().push(at);
                    }
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Witness { port, seen, task }
    }

    /// Keys seen more than once: executions the store would call one.
    pub fn duplicates(&self) -> Vec<(String, usize)> {
        let seen = self.seen.lock().unwrap();
        let mut d: Vec<_> = seen
            .hits
            .iter()
            .filter(|(_, at)| at.len() > 1)
            .map(|(k, at)| (k.clone(), at.len()))
            .collect();
        d.sort();
        d
    }

    pub fn executions(&self) -> usize {
        self.seen.lock().unwrap().hits.values().map(Vec::len).sum()
    }

    pub fn has(&self, key: &str) -> bool {
        self.seen.lock().unwrap().hits.contains_key(key)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.task.abort();
    }
}
