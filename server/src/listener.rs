//! Accepts connections and serves the router on each, HTTP/1.1 (no TLS here, so browsers
//! never speak HTTP/2 to us; a TLS proxy in front may).
//!
//! Two limits keep a slow or greedy client from holding the server (RELIABILITY, probe
//! finding 6): a client has [`Limits::header_timeout`] to send a request's headers — on a
//! new connection and between requests on a kept-alive one — or the connection is closed;
//! and at most [`Limits::max_connections`] are served at once: past it a new connection
//! is answered 503 at once and closed, rather than queued where nobody sees it.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What a connection past the cap gets before it is closed.
const BUSY_BODY: &str = r#"{"error":{"code":"unavailable","message":"too many open connections; try again in a second"}}"#;

/// Serves `app` on `listener` until `stop` is cancelled, then lets open connections
/// finish their requests for up to `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Pages are streamed in several writes; without TCP_NODELAY, Nagle's algorithm
        // holds the last one back for the client's delayed ACK (~40 ms on every page).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many open connections; refusing one");
            tokio::spawn(refuse(tcp));
            continue;
        };
        let router = match make.clone().oneshot(peer).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not close within the grace period");
    }
}

async fn refuse(mut tcp: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    // Best effort: the client may be gone already.
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
}
