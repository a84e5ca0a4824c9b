//! Alerts: `GET|POST /api/alerts/channels`, `GET|PUT|DELETE /api/alerts/channels/{id}`,
//! `POST /api/alerts/channels/{id}/test`; `GET|POST /api/alerts/rules`,
//! `GET|PUT|DELETE /api/alerts/rules/{id}`; `GET /api/alerts/incidents`; inbound checks
//! `GET|POST /api/checks`, `GET|PUT|DELETE /api/checks/{id}`; and the pings,
//! `GET|POST /ping/{token}[/start|/fail]`, which need no key (the token is the secret),
//! are rate-limited per address and accept nothing but pings.

use super::{ApiError, ApiJson, ApiResult};
use crate::startup::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use engine::model::alert::{
    Channel, ChannelSpec, CheckSpec, CheckView, Incident, PingKind, Rule, RuleSpec,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub async fn list_channels(State(s): State<AppState>) -> ApiResult<Json<Vec<Channel>>> {
    Ok(Json(s.engine.list_channels().await?))
}

pub async fn create_channel(
    State(s): State<AppState>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.engine.create_channel(spec).await?),
    ))
}

pub async fn get_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(s.engine.get_channel(&id).await?))
}

pub async fn replace_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(s.engine.update_channel(&id, spec).await?))
}

pub async fn delete_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_channel(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test notice now: 200 with `{ok, code, error}` however the far end answered.
pub async fn test_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = s.engine.test_channel(&id).await?;
    Ok(Json(
        json!({ "ok": a.ok(), "code": a.code, "error": a.error }),
    ))
}

pub async fn list_rules(State(s): State<AppState>) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(s.engine.list_rules().await?))
}

pub async fn create_rule(
    State(s): State<AppState>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    Ok((StatusCode::CREATED, Json(s.engine.create_rule(spec).await?)))
}

pub async fn get_rule(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Rule>> {
    Ok(Json(s.engine.get_rule(&id).await?))
}

pub async fn replace_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<Rule>> {
    Ok(Json(s.engine.update_rule(&id, spec).await?))
}

pub async fn delete_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    limit: Option<u32>,
}

/// Open incidents first, then the newest: `{incidents: [...]}`, each with its deliveries.
pub async fn incidents(
    State(s): State<AppState>,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<Json<Value>> {
    let list: Vec<Incident> = s.engine.list_incidents(q.limit.unwrap_or(100)).await?;
    Ok(Json(json!({ "incidents": list })))
}

/// A check's ping URL as the caller reached us (scheme from the proxy, if it said).
fn absolute(headers: &HeaderMap, mut view: CheckView) -> CheckView {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(host) = host {
        let scheme = if crate::auth::behind_tls(headers) {
            "https"
        } else {
            "http"
        };
        view.ping_url = format!("{scheme}://{host}{}", view.ping_url);
    }
    view
}

pub async fn list_checks(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<CheckView>>> {
    let list = s.engine.list_checks().await?;
    Ok(Json(
        list.into_iter().map(|v| absolute(&headers, v)).collect(),
    ))
}

pub async fn create_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<(StatusCode, Json<CheckView>)> {
    let view = s.engine.create_check(spec).await?;
    Ok((StatusCode::CREATED, Json(absolute(&headers, view))))
}

/// One check with its newest pings: the check's fields, `pings: [...]`.
pub async fn get_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (view, pings) = s.engine.get_check(&id).await?;
    let mut body = serde_json::to_value(absolute(&headers, view)).unwrap_or_default();
    body["pings"] = serde_json::to_value(pings).unwrap_or_default();
    Ok(Json(body))
}

pub async fn replace_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<Json<CheckView>> {
    Ok(Json(absolute(
        &headers,
        s.engine.update_check(&id, spec).await?,
    )))
}

pub async fn delete_check(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_check(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pings per address per minute before 429.
const PINGS_PER_MINUTE: u32 = 120;

/// A fixed one-minute window of pings per address.
#[derive(Default)]
pub struct PingLimit {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PingLimit {
    /// Whether `ip` may ping now (and counts it).
    fn allow(&self, ip: IpAddr) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if seen.len() > 10_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let (start, n) = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            *start = now;
            *n = 0;
        }
        *n += 1;
        *n <= PINGS_PER_MINUTE
    }
}

async fn ping(
    s: AppState,
    peer: SocketAddr,
    token: &str,
    kind: PingKind,
    body: Bytes,
) -> ApiResult<(StatusCode, &'static str)> {
    if !s.pings.allow(peer.ip()) {
        return Err(ApiError::TooManyAttempts(60));
    }
    match s
        .engine
        .ping(token, kind, &body, Some(peer.ip().to_string()))
        .await
    {
        Ok(()) => Ok((StatusCode::OK, "OK\n")),
        Err(e) if e.kind() == engine::error::ErrorKind::NotFound => {
            Err(ApiError::NotFound("no such check".into()))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn ping_success(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, &'static str)> {
    ping(s, peer, &token, PingKind::Success, body).await
}

pub async fn ping_kind(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((token, kind)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, &'static str)> {
    let kind = match kind.as_str() {
        "start" => PingKind::Start,
        "fail" => PingKind::Fail,
        _ => return Err(ApiError::NotFound("no such check".into())),
    };
    ping(s, peer, &token, kind, body).await
}
