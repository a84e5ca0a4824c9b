//! Server-sent event streams: a run's log while it is written, and a nudge whenever runs
//! start or finish (the dashboard's live pages refetch on it). Both end when the server
//! shuts down, so they never hold up a graceful exit.

use crate::api::ApiResult;
use crate::startup::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

fn sse(rx: mpsc::Receiver<Result<Event, Infallible>>) -> Response {
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /api/runs/{id}/log`: `log` events carry the text in order (the log so far first),
/// then one `end` event with the run's final status. A queued run's stream waits for it
/// to start; an ended run's stream is its stored log and `end` at once.
#[utoipa::path(get, path = "/api/runs/{id}/log", tag = "runs",
    params(("id" = i64, Path, description = "The run's id.")),
    responses((status = 200, description = "Server-sent events: `log` (text, in order), then one `end` (the run's status).",
        content_type = "text/event-stream", body = String)))]
pub async fn run_log(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Response> {
    let engine = state.engine.clone();
    // Answers 404 before the stream opens when there is no such run.
    let mut follow = engine.follow_log(id).await?;
    let (tx, rx) = mpsc::channel(64);
    let stop = engine.shutting_down();
    tokio::spawn(async move {
        let send = |kind: &'static str, data: &str| {
            let tx = tx.clone();
            let event = Event::default().event(kind).data(data);
            async move { tx.send(Ok(event)).await.is_ok() }
        };
        let mut activity = engine.notifier().runs();
        // Bytes of the log already sent: the log only grows, so a fresh look at it after
        // its run ended resumes where the live stream stopped.
        let mut sent = 0;
        loop {
            let rest = follow.so_far.get(sent..).unwrap_or_default();
            if !rest.is_empty() && !send("log", rest).await {
                return;
            }
            sent = sent.max(follow.so_far.len());
            if let Some(mut live) = follow.live.take() {
                loop {
                    tokio::select! {
                        got = live.recv() => match got {
                            Ok(chunk) => {
                                sent += chunk.len();
                                if !send("log", &chunk).await { return; }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                        () = stop.cancelled() => return,
                    }
                }
            } else {
                match engine.get_run(id).await {
                    Ok(run) if run.status.is_finished() => {
                        let _ = send("end", run.status.as_str()).await;
                        return;
                    }
                    Ok(_) => {
                        // Queued, or ending right now: look again when runs move.
                        tokio::select! {
                            _ = tokio::time::timeout(Duration::from_secs(1), activity.changed()) => {}
                            () = stop.cancelled() => return,
                        }
                    }
                    Err(_) => return,
                }
            }
            follow = match engine.follow_log(id).await {
                Ok(f) => f,
                Err(_) => return,
            };
        }
    });
    Ok(sse(rx))
}

/// `GET /api/events`: a `runs` event (data: a counter) whenever runs started or finished,
/// at most four a second.
#[utoipa::path(get, path = "/api/events", tag = "operations",
    responses((status = 200, description = "Server-sent events: `runs` (a counter) when runs start or finish.",
        content_type = "text/event-stream", body = String)))]
pub async fn events(State(state): State<AppState>) -> Response {
    let engine = state.engine.clone();
    let (tx, rx) = mpsc::channel(4);
    let stop = engine.shutting_down();
    tokio::spawn(async move {
        let mut activity = engine.notifier().runs();
        loop {
            tokio::select! {
                changed = activity.changed() => if changed.is_err() { return },
                () = stop.cancelled() => return,
                () = tx.closed() => return,
            }
            let n = *activity.borrow_and_update();
            if tx
                .send(Ok(Event::default().event("runs").data(n.to_string())))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    sse(rx)
}
