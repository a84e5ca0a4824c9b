//! Builds and runs the server. [`run`] takes its shutdown future from the caller (the
//! binary passes SIGINT/SIGTERM), so the same code runs in production and in tests.
//!
//! Order matters: the PID lock comes first (a second server must not touch the store),
//! then the key (an empty key refuses to start before anything listens), then the engine
//! (store, migrations, scheduler at its stored intent), then the listener.

use crate::api;
use crate::auth::{self, DashKey, Sessions, Throttle};
use crate::config::ServeArgs;
use crate::pidfile::PidFile;
use anyhow::Context;
use axum::extract::{FromRef, Request, State};
use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use engine::{Engine, EngineConfig, Kinds, SystemClock};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long cancelled runs get to record themselves as interrupted.
const ABANDON_WAIT: Duration = Duration::from_secs(5);
/// Every request must finish within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
    pub key: Arc<DashKey>,
    pub sessions: Arc<Sessions>,
    pub throttle: Arc<Throttle>,
    /// The Host names requests may carry (DNS rebinding).
    pub hosts: Arc<auth::AllowedHosts>,
    /// Present with `--bench`.
    pub ticks: Option<Arc<crate::bench::Ticks>>,
}

/// Runs the server until `shutdown` resolves, then shuts down gracefully.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone();
    engine::data_dir::prepare(&data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let _pidfile = PidFile::acquire(&data_dir)?;
    let env_key = args.dashboard_key.clone();
    let key = DashKey::load_or_create(env_key.as_deref(), &data_dir)?;

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut kinds = Kinds::builtin();
    let ticks = args.bench.then(|| Arc::new(crate::bench::Ticks::default()));
    if let Some(ticks) = &ticks {
        crate::bench::register(&mut kinds, ticks.clone());
    }
    let engine = Engine::open(
        EngineConfig {
            data_dir: data_dir.clone(),
            heartbeat: Duration::from_secs(args.heartbeat_secs),
            node: args.node.clone().unwrap_or_else(hostname),
            http_allow: args.http_allow.clone(),
            allow_shell: args.allow_shell,
            ledger_dirs: if args.ledger_dirs.is_empty() {
                vec![data_dir.clone(), PathBuf::from("examples")]
            } else {
                args.ledger_dirs.clone()
            },
            llm: engine::LlmConfig {
                base_url: args.llm_base_url.clone(),
                model: args.llm_model.clone(),
                api_key: args.llm_api_key.clone(),
            },
        },
        kinds,
        Arc::new(SystemClock),
        token.clone(),
        tracker.clone(),
    )
    .await?;
    engine::automations::seed(&engine)
        .await
        .context("cannot create the built-in jobs")?;
    if ticks.is_some() {
        crate::bench::ensure_job(&engine)
            .await
            .context("cannot create the benchmark job")?;
    }

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let site_root = find_site_root(args.site_root.as_deref());
    let state = AppState {
        leptos_options: leptos_options(&site_root, addr),
        engine: engine.clone(),
        key: Arc::new(key),
        sessions: Arc::new(Sessions::default()),
        throttle: Arc::new(Throttle::default()),
        hosts: Arc::new(auth::AllowedHosts::new(&args.allowed_hosts)),
        ticks,
    };
    let app = router(state);

    // Tests and scripts read this line to learn the port when binding port 0.
    println!(
        "EchoPilot is running on http://{addr} (dashboard key: {})",
        if env_key.is_some() {
            "from DASHBOARD_KEY".to_string()
        } else {
            data_dir.join("dashboard.key").display().to_string()
        }
    );
    tracing::info!(%addr, data_dir = %data_dir.display(), site_root = %site_root.display(), "listening");

    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let limits = crate::listener::Limits {
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        header_timeout: Duration::from_secs(args.header_timeout_secs),
    };
    let served = tokio::spawn(crate::listener::serve(
        listener,
        app,
        limits,
        token.clone(),
        grace,
    ));
    token.cancelled().await;

    // Stop firing at once, then give in-flight runs the grace period; whatever is still
    // running after it is cancelled and recorded as interrupted.
    engine.shutdown().await;
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            ?grace,
            "runs still in flight after the grace period; interrupting them"
        );
        engine.abandon_runs();
        if tokio::time::timeout(ABANDON_WAIT, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some runs did not stop; the next start records them as interrupted");
        }
    }
    if let Err(e) = served.await {
        tracing::error!(error = %e, "server task failed");
    }
    engine.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Every route, behind the auth guard.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let engine = state.engine.clone();
    let options = state.leptos_options.clone();
    let api = Router::new()
        .route("/api/automations/status", get(api::status))
        .route("/api/automations/start", post(api::start))
        .route("/api/automations/stop", post(api::stop))
        .route("/api/automations/restart", post(api::restart))
        .route("/api/jobs", get(api::list_jobs).post(api::create_job))
        .route(
            "/api/jobs/{id}",
            get(api::get_job)
                .put(api::replace_job)
                .patch(api::patch_job)
                .delete(api::delete_job),
        )
        .route("/api/jobs/{id}/run", post(api::run_job))
        .route("/api/runs", get(api::list_runs))
        .route("/api/runs/{id}", get(api::get_run))
        .route("/api/runs/{id}/log", get(crate::live::run_log))
        .route("/api/events", get(crate::live::events))
        .route("/api/schedule/preview", get(api::schedule_preview))
        .route("/api/bench/ticks", get(crate::bench::ticks))
        .route("/api/self-heal", post(api::self_heal))
        .route("/api/exec/brief", post(api::exec_brief))
        .route("/api/session", post(api::login).delete(api::logout))
        .route("/api/session/logout", post(api::logout_form))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz));
    api.leptos_routes_with_context(
        &state,
        routes,
        move || provide_context(engine.clone()),
        move || app::shell(options.clone()),
    )
    .fallback(fallback)
    .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    ))
    .with_state(state)
}

/// Unknown API paths get a JSON 404; anything else is a static file or the app's 404 page.
async fn fallback(uri: Uri, State(state): State<AppState>, request: Request) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return api::not_found().await.into_response();
    }
    let asset = uri.path().starts_with("/pkg/");
    let options = state.leptos_options.clone();
    let files = leptos_axum::file_and_error_handler(move |_| app::shell(options.clone()));
    let mut response = files(uri, State(state), request).await;
    if asset {
        // The dashboard's file names carry no content hash (its WASM chunks are
        // `chunk_N.wasm`), so browsers revalidate them (304 when unchanged): after an upgrade
        // they never pair one build's main file with another build's chunks.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

fn leptos_options(site_root: &Path, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("echopilot")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(leptos::config::Env::PROD)
        .build()
}

/// The built dashboard: the flag or `LEPTOS_SITE_ROOT`, else `target/site` under the
/// working directory, else next to the binary (`target/release/../site`).
fn find_site_root(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    let mut candidates = vec![PathBuf::from("target/site")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("../site"));
            candidates.push(dir.join("site"));
        }
    }
    candidates
        .into_iter()
        .find(|c| c.join("pkg").is_dir())
        .unwrap_or_else(|| {
            tracing::warn!("the built dashboard was not found (run `make build`); the API works, pages will lack scripts and styles");
            PathBuf::from("target/site")
        })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
