//! Builds and runs the server: [`build`] takes a bound listener (tests bind port 0 and
//! run the app in-process), [`Application::run_until_stopped`] takes its shutdown future
//! from the caller (the binary passes SIGINT/SIGTERM), and [`run`] does both for the
//! binary, so the same code runs in production and in tests.
//!
//! Order matters: the PID lock comes first (a second server must not touch the store or
//! even listen), then the key (an empty or short key refuses to start), then the engine
//! (store, migrations, scheduler at its stored intent), then serving.

use crate::api;
use crate::auth::{self, DashKey, Sessions, Throttle};
use crate::config::ServeArgs;
use crate::pidfile::PidFile;
use anyhow::Context;
use axum::extract::{FromRef, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
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
use tower_http::set_header::SetResponseHeaderLayer;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
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
    /// Pings of inbound checks, per address.
    pub pings: Arc<api::alerts::PingLimit>,
    /// `/metrics` without the key (`--metrics-public`).
    pub metrics_public: bool,
}

/// A built server, not yet serving: its listener is bound, its engine open.
pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: Router,
    engine: Engine,
    limits: crate::listener::Limits,
    grace: Duration,
    /// Held while the server runs: one server per data dir.
    _pidfile: PidFile,
}

/// Binds `args.bind`, builds the server and runs it until `shutdown` resolves.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Taken before the port: a second server on this data dir must not even listen.
    let pidfile = lock_data_dir(&args.data_dir)?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let app = build_with(args, listener, pidfile).await?;
    crate::systemd::ready(app.engine());
    app.run_until_stopped(async {
        shutdown.await;
        crate::systemd::stopping();
    })
    .await
}

/// Makes the data dir (private) and takes its single-instance lock.
fn lock_data_dir(dir: &Path) -> anyhow::Result<PidFile> {
    engine::data_dir::prepare(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    Ok(PidFile::acquire(dir)?)
}

/// Builds the server on a listener the caller bound (tests bind port 0 and run it
/// in-process).
pub async fn build(
    args: ServeArgs,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Application> {
    let pidfile = lock_data_dir(&args.data_dir)?;
    build_with(args, listener, pidfile).await
}

async fn build_with(
    args: ServeArgs,
    listener: tokio::net::TcpListener,
    pidfile: PidFile,
) -> anyhow::Result<Application> {
    args.check()?;
    let data_dir = args.data_dir.clone();
    let key = DashKey::load_or_create(args.dashboard_key.as_deref(), &data_dir)?;
    let mut kinds = Kinds::builtin();
    let ticks = args.bench.then(|| Arc::new(crate::bench::Ticks::default()));
    if let Some(ticks) = &ticks {
        crate::bench::register(&mut kinds, ticks.clone());
    }
    let engine = Engine::open(engine_config(&args), kinds, clock(&args)).await?;
    engine::automations::seed(&engine)
        .await
        .context("cannot create the built-in jobs")?;
    if ticks.is_some() {
        crate::bench::ensure_job(&engine)
            .await
            .context("cannot create the benchmark job")?;
    }
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
        pings: Default::default(),
        metrics_public: args.metrics_public,
    };
    // Tests and scripts read this line to learn the port when binding port 0.
    println!(
        "EchoPilot is running on http://{addr} (dashboard key: {})",
        if args.dashboard_key.is_some() {
            "from DASHBOARD_KEY".to_string()
        } else {
            data_dir.join("dashboard.key").display().to_string()
        }
    );
    tracing::info!(%addr, data_dir = %data_dir.display(), site_root = %site_root.display(), "listening");
    Ok(Application {
        listener,
        addr,
        router: router(state),
        engine,
        limits: crate::listener::Limits {
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_secs(args.header_timeout_secs),
        },
        grace: Duration::from_secs(args.shutdown_grace_secs),
        _pidfile: pidfile,
    })
}

/// The engine's settings from the server's flags and environment: the one place they
/// meet.
fn engine_config(args: &ServeArgs) -> EngineConfig {
    let data_dir = args.data_dir.clone();
    EngineConfig {
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
        database_url: args.database_url.clone(),
        lease_ttl: Duration::from_secs(args.lease_ttl_secs),
        // Several nodes agree on the time by reading the database's.
        follow_db_clock: args.database_url.is_some(),
        heartbeat_url: args.heartbeat_url.clone(),
        heartbeat_url_every: Duration::from_secs(args.heartbeat_url_secs),
        ..EngineConfig::new(data_dir)
    }
}

/// The wall clock, or (chaos tests) the wall clock off by `--clock-skew-ms`.
fn clock(args: &ServeArgs) -> Arc<dyn engine::Clock> {
    match args.clock_skew_ms {
        0 => Arc::new(SystemClock),
        ms => Arc::new(engine::SkewedClock(chrono::Duration::milliseconds(ms))),
    }
}

impl Application {
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: no new connections,
    /// the engine's own shutdown (firing stops at once, runs get the grace period), open
    /// requests finished within the grace.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let serving = tokio::spawn(crate::listener::serve(
            self.listener,
            self.router,
            self.limits,
            stop.clone(),
            self.grace,
        ));
        shutdown.await;
        stop.cancel();
        self.engine.shutdown(self.grace).await;
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "server task failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Every route, behind the auth guard.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let engine = state.engine.clone();
    let options = state.leptos_options.clone();
    let (api, doc) = api::routes().split_for_parts();
    let api = api.layer(axum::Extension(api::openapi::Served::new(
        &api::openapi::document(doc),
    )));
    api.leptos_routes_with_context(
        &state,
        routes,
        move || {
            provide_context(engine.clone());
            page_csp();
        },
        move || app::shell(options.clone()),
    )
    .fallback(fallback)
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::guard,
    ))
    .layer(axum::middleware::from_fn_with_state(
        crate::metrics::Http::register(&state.engine),
        crate::metrics::count,
    ))
    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
    .layer(tower_http::limit::RequestBodyLimitLayer::new(
        MAX_BODY_BYTES,
    ))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ))
    .layer(axum::middleware::from_fn(api::errors_as_json))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp(None)).expect("the policy is ASCII"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ),
    ))
    .with_state(state)
}

/// The Content-Security-Policy: scripts only from this origin (and WASM), plus — on a
/// page — the one inline hydration script carrying this response's `nonce`. No
/// `'unsafe-inline'` for scripts.
fn csp(nonce: Option<&str>) -> String {
    let inline = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{inline} 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// A page's policy names the nonce leptos_axum gives its render (a fresh random one per
/// response, on every inline script it writes).
fn page_csp() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&csp(Some(nonce.as_inner()))) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
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
