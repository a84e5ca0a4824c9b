//! The HTTP side of `/metrics`: requests counted by route (the matched pattern, never the
//! raw path: ids would make a series each), method and status, and their latency, in the
//! engine's registry.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use engine::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Labels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

/// The families, cheap to clone into the middleware.
#[derive(Clone)]
pub struct Http {
    requests: Family<Labels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
}

impl Http {
    /// The families, registered with the engine's registry.
    pub fn register(engine: &Engine) -> Self {
        let http = Http {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
            }),
        };
        engine.register_metric(
            "echopilot_http_requests",
            "HTTP requests, by route, method and status",
            http.requests.clone(),
        );
        engine.register_metric(
            "echopilot_http_request_seconds",
            "HTTP requests' latency until the response head, by route",
            http.latency.clone(),
        );
        http
    }
}

/// Counts one request once its response is ready.
pub async fn count(State(http): State<Http>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| {
            if request.uri().path().starts_with("/pkg/") {
                "/pkg/*"
            } else {
                "unmatched"
            }
            .to_string()
        });
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    http.latency
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    http.requests
        .get_or_create(&Labels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
