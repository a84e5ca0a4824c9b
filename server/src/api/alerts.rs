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
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every channel (secrets masked).
#[utoipa::path(get, path = "/api/alerts/channels", tag = "alerts",
    responses((status = 200, description = "Every channel.", body = Vec<Channel>)))]
pub async fn list_channels(State(s): State<AppState>) -> ApiResult<Json<Vec<Channel>>> {
    Ok(Json(s.engine.list_channels().await?))
}

/// Adds a channel: webhook, slack, discord, ntfy (`url`) or email (`host`, `port`, `from`, `to`, ...).
#[utoipa::path(post, path = "/api/alerts/channels", tag = "alerts", request_body = ChannelSpec,
    responses((status = 201, description = "The channel added.", body = Channel),
        (status = 409, description = "A channel has that id.", body = super::ErrorBody)))]
pub async fn create_channel(
    State(s): State<AppState>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.engine.create_channel(spec).await?),
    ))
}

/// One channel (secrets masked).
#[utoipa::path(get, path = "/api/alerts/channels/{id}", tag = "alerts", params(("id" = String, Path, description = "The channel's id.")),
    responses((status = 200, description = "The channel.", body = Channel)))]
pub async fn get_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(s.engine.get_channel(&id).await?))
}

/// Replaces a channel; a secret sent as the mask (or left out) keeps the stored one.
#[utoipa::path(put, path = "/api/alerts/channels/{id}", tag = "alerts", params(("id" = String, Path, description = "The channel's id.")), request_body = ChannelSpec,
    responses((status = 200, description = "The channel as replaced.", body = Channel)))]
pub async fn replace_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<ChannelSpec>,
) -> ApiResult<Json<Channel>> {
    Ok(Json(s.engine.update_channel(&id, spec).await?))
}

/// Deletes a channel.
#[utoipa::path(delete, path = "/api/alerts/channels/{id}", tag = "alerts", params(("id" = String, Path, description = "The channel's id.")),
    responses((status = 204, description = "Deleted."),
        (status = 409, description = "A rule still sends to it.", body = super::ErrorBody)))]
pub async fn delete_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_channel(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How the far end took a test notice.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TestAnswer {
    /// Taken (a 2xx, or the mail accepted).
    pub ok: bool,
    /// The far end's HTTP status or SMTP code.
    pub code: Option<u16>,
    pub error: Option<String>,
}

/// Sends a test notice now: 200 with `{ok, code, error}` however the far end answered.
#[utoipa::path(post, path = "/api/alerts/channels/{id}/test", tag = "alerts", params(("id" = String, Path, description = "The channel's id.")),
    responses((status = 200, description = "How the far end answered.", body = TestAnswer)))]
pub async fn test_channel(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TestAnswer>> {
    let a = s.engine.test_channel(&id).await?;
    Ok(Json(TestAnswer {
        ok: a.ok(),
        code: a.code,
        error: a.error,
    }))
}

/// Every rule.
#[utoipa::path(get, path = "/api/alerts/rules", tag = "alerts",
    responses((status = 200, description = "Every rule.", body = Vec<Rule>)))]
pub async fn list_rules(State(s): State<AppState>) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(s.engine.list_rules().await?))
}

/// Adds a rule: what opens an incident, for which jobs or checks, told to which channels.
#[utoipa::path(post, path = "/api/alerts/rules", tag = "alerts", request_body = RuleSpec,
    responses((status = 201, description = "The rule added.", body = Rule),
        (status = 409, description = "A rule has that id.", body = super::ErrorBody)))]
pub async fn create_rule(
    State(s): State<AppState>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    Ok((StatusCode::CREATED, Json(s.engine.create_rule(spec).await?)))
}

/// One rule.
#[utoipa::path(get, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = String, Path, description = "The rule's id.")),
    responses((status = 200, description = "The rule.", body = Rule)))]
pub async fn get_rule(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Rule>> {
    Ok(Json(s.engine.get_rule(&id).await?))
}

/// Replaces a rule.
#[utoipa::path(put, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = String, Path, description = "The rule's id.")), request_body = RuleSpec,
    responses((status = 200, description = "The rule as replaced.", body = Rule)))]
pub async fn replace_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<Rule>> {
    Ok(Json(s.engine.update_rule(&id, spec).await?))
}

/// Deletes a rule (its incidents stay in the history).
#[utoipa::path(delete, path = "/api/alerts/rules/{id}", tag = "alerts", params(("id" = String, Path, description = "The rule's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// How many (default 100).
    limit: Option<u32>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Incidents {
    pub incidents: Vec<Incident>,
}

/// Open incidents first, then the newest: `{incidents: [...]}`, each with its deliveries.
#[utoipa::path(get, path = "/api/alerts/incidents", tag = "alerts", params(IncidentQuery),
    responses((status = 200, description = "Incidents, open ones first.", body = Incidents)))]
pub async fn incidents(
    State(s): State<AppState>,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<Json<Incidents>> {
    let incidents = s.engine.list_incidents(q.limit.unwrap_or(100)).await?;
    Ok(Json(Incidents { incidents }))
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

/// Every check, with its state, its last ping and its ping URL.
#[utoipa::path(get, path = "/api/checks", tag = "checks",
    responses((status = 200, description = "Every check.", body = Vec<CheckView>)))]
pub async fn list_checks(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<CheckView>>> {
    let list = s.engine.list_checks().await?;
    Ok(Json(
        list.into_iter().map(|v| absolute(&headers, v)).collect(),
    ))
}

/// Adds a check: a `period` or a cron `schedule`, and a `grace`.
#[utoipa::path(post, path = "/api/checks", tag = "checks", request_body = CheckSpec,
    responses((status = 201, description = "The check added, with its ping URL.", body = CheckView),
        (status = 409, description = "A check has that id.", body = super::ErrorBody)))]
pub async fn create_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<(StatusCode, Json<CheckView>)> {
    let view = s.engine.create_check(spec).await?;
    Ok((StatusCode::CREATED, Json(absolute(&headers, view))))
}

/// One check with its newest pings: the check's fields, `pings: [...]`.
#[utoipa::path(get, path = "/api/checks/{id}", tag = "checks", params(("id" = String, Path, description = "The check's id.")),
    responses((status = 200, description = "The check and its newest pings.", body = CheckView)))]
pub async fn get_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckView>> {
    let (mut view, pings) = s.engine.get_check(&id).await?;
    view.pings = Some(pings);
    Ok(Json(absolute(&headers, view)))
}

/// Replaces a check (its token is kept).
#[utoipa::path(put, path = "/api/checks/{id}", tag = "checks", params(("id" = String, Path, description = "The check's id.")), request_body = CheckSpec,
    responses((status = 200, description = "The check as replaced.", body = CheckView)))]
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

/// Deletes a check and its pings.
#[utoipa::path(delete, path = "/api/checks/{id}", tag = "checks", params(("id" = String, Path, description = "The check's id.")),
    responses((status = 204, description = "Deleted.")))]
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

/// A ping: the job behind the check ran (no key needed: the token is the secret). The
/// body's first 1 KiB is kept with the ping.
#[utoipa::path(method(get, post), path = "/ping/{token}", tag = "checks", params(("token" = String, Path, description = "The check's token (its `ping_url` ends with it).")),
    responses((status = 200, description = "`OK`", content_type = "text/plain", body = String),
        (status = 429, description = "More than 120 pings a minute from this address.", body = super::ErrorBody)))]
pub async fn ping_success(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, &'static str)> {
    ping(s, peer, &token, PingKind::Success, body).await
}

/// A ping that the job started (`start`) or failed (`fail`: the check is down at once).
#[utoipa::path(method(get, post), path = "/ping/{token}/{kind}", tag = "checks",
    params(("token" = String, Path, description = "The check's token (its `ping_url` ends with it)."), ("kind" = PingKind, Path, description = "`start` or `fail`.")),
    responses((status = 200, description = "`OK`", content_type = "text/plain", body = String),
        (status = 429, description = "More than 120 pings a minute from this address.", body = super::ErrorBody)))]
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
