//! Small pieces the pages are built from.

use crate::api::{get_pauses, CancelRun, RerunRun, Resume};
use crate::wire::{Bar, HourBar, Month, Pauses, RunRow, SchedulerState, SchedulerStatus, Table};
use leptos::prelude::*;
use leptos_router::components::A;
use wasm_bindgen::{closure::Closure, JsCast};

/// How often live pages refresh when auto-refresh is on.
pub const AUTO_REFRESH_MS: u32 = 10_000;
/// Where the auto-refresh setting is remembered. Only this preference is kept in browser
/// storage — never the dashboard key.
const AUTO_REFRESH_STORAGE_KEY: &str = "echopilot.autoRefresh";

/// What a page loads through a server function: fetched during the server render, sent
/// with the page, refetched in the browser when its source changes.
pub type Data<T> = Resource<Result<T, ServerFnError>, JsonBytes>;

/// A [`Data`] resource.
#[track_caller]
pub fn data<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetch: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Data<T>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    Fut: std::future::Future<Output = Result<T, ServerFnError>> + Send + 'static,
{
    Resource::new_with_options(source, fetch, false)
}

/// JSON for the data sent with a page, read from bytes as server functions read their
/// answers: each wire type's deserializer is then compiled into the WASM once (Leptos'
/// default codec reads from `&str`, which doubles them).
pub struct JsonBytes;

impl<T: serde::Serialize> leptos::server::codee::Encoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: serde::de::DeserializeOwned> leptos::server::codee::Decoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(encoded: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(encoded.as_bytes())
    }
}

/// True once the WASM has taken over the server-rendered page; pages put it on their root
/// as `data-hydrated`, so tests (and people) know the buttons work.
pub fn use_hydrated() -> impl Fn() -> Option<&'static str> + Copy + Send + Sync + 'static {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    move || hydrated.get().then_some("true")
}

/// Bumped whenever a pause changes from this page, so the banner reloads.
#[derive(Clone, Copy)]
pub struct PausesVersion(RwSignal<u32>);

pub fn provide_pauses() {
    provide_context(PausesVersion(RwSignal::new(0)));
}

/// Reloads the banner each time `version` (an action's) moves on.
pub fn pauses_follow(version: impl Get<Value = usize> + Send + Sync + 'static) {
    Effect::new(move |prev: Option<usize>| {
        let v = version.get();
        if prev.is_some_and(|p| p != v) {
            if let Some(PausesVersion(n)) = use_context::<PausesVersion>() {
                n.update(|n| *n += 1);
            }
        }
        v
    });
}

/// While anything is paused: what, why, by whom and until when — on every page.
#[component]
fn PauseBanner() -> impl IntoView {
    let version = use_context::<PausesVersion>().map(|v| v.0);
    let resume = ServerAction::<Resume>::new();
    toast_on(resume.value(), |_| "Resumed".to_string());
    pauses_follow(resume.version());
    let pauses = data(
        move || (version.map(|v| v.get()), resume.version().get()),
        |_| get_pauses(),
    );
    let shown = move |p: Pauses| {
        if p.all.is_none() && p.jobs.is_empty() {
            return None;
        }
        let until = |u: Option<String>| {
            u.map(|u| format!("until {u}"))
                .unwrap_or_else(|| "until resumed".into())
        };
        Some(view! {
            <div class="pause-banner" role="status" data-testid="pause-banner">
                {p.all.map(|a| view! {
                    <p><strong>"Everything is paused: "</strong>{a.reason}
                        <span class="muted">{format!(" · by {} · {}", a.by, until(a.until))}</span>" "
                        <button data-testid="resume-all" on:click=move |_| { resume.dispatch(Resume { id: String::new() }); }>"Resume now"</button>
                    </p>
                })}
                {(!p.jobs.is_empty()).then(|| view! {
                    <p><strong>{format!("{} paused: ", if p.jobs.len() == 1 { "1 job".to_string() } else { format!("{} jobs", p.jobs.len()) })}</strong>
                        {p.jobs.into_iter().map(|(id, n)| view! {
                            <span class="banner-job"><a href="/jobs"><code>{id}</code></a>{format!(" — {} ({}, {})", n.reason, n.by, until(n.until))}</span>
                        }).collect_view()}
                    </p>
                })}
            </div>
        })
    };
    view! {
        <Transition fallback=|| ()>
            {move || pauses.get().and_then(Result::ok).and_then(shown)}
        </Transition>
    }
}

/// Page chrome: header with navigation and log-out, the pause banner, then the page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let hydrated = use_hydrated();
    view! {
        <div class="layout" data-hydrated=hydrated>
            <header class="topbar">
                <a class="brand" href="/">"EchoPilot"</a>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Overview"</A>
                    <A href="/jobs">"Jobs"</A>
                    <A href="/runs">"Runs"</A>
                    <A href="/briefs">"Briefs"</A>
                    <A href="/finance">"Finance"</A>
                    <A href="/stats">"Metrics"</A>
                    <A href="/alerts">"Alerts"</A>
                    <A href="/checks">"Checks"</A>
                    <A href="/maintenance">"Maintenance"</A>
                    <A href="/nodes">"Nodes"</A>
                    <A href="/audit">"Audit"</A>
                    // Served by the server, not a page of this app: the router must not take it.
                    <a href="/api/docs" rel="external">"API"</a>
                </nav>
                <form method="post" action="/api/session/logout" class="logout">
                    <button type="submit" class="ghost">"Log out"</button>
                </form>
            </header>
            <PauseBanner />
            <main>{children()}</main>
        </div>
    }
}

/// The colour-coded scheduler state.
#[component]
pub fn StatusBadge(state: SchedulerState) -> impl IntoView {
    let class = match state {
        SchedulerState::Running => "badge badge-running",
        SchedulerState::Stopped => "badge badge-stopped",
        SchedulerState::Stalled => "badge badge-stalled",
    };
    view! {
        <span class=class data-testid="status-badge" data-state=format!("{state:?}").to_lowercase()>
            {state.label()}
        </span>
    }
}

/// The scheduler's facts under the badge.
#[component]
pub fn StatusFacts(status: SchedulerStatus) -> impl IntoView {
    let heartbeat = match status.heartbeat_age_secs {
        Some(age) => format!("{} ago", human_duration(age)),
        None => "none yet".to_string(),
    };
    let next_runs = status.next_runs.clone();
    view! {
        <dl class="facts">
            <div><dt>"PID"</dt><dd data-testid="pid">{status.pid}</dd></div>
            <div><dt>"Uptime"</dt><dd data-testid="uptime">{human_duration(status.uptime_secs)}</dd></div>
            <div>
                <dt>"Heartbeat"</dt>
                <dd data-testid="heartbeat-age">
                    {heartbeat}
                    <span class="muted">{format!(" (every {})", human_duration(status.heartbeat_interval_secs))}</span>
                </dd>
            </div>
            <div><dt>"Node"</dt><dd>{status.node.clone()}</dd></div>
            <div><dt>"Role"</dt><dd data-testid="role"><a href="/nodes">{status.role.clone()}</a></dd></div>
        </dl>
        <h3>"Next runs"</h3>
        {if next_runs.is_empty() {
            view! { <p class="muted">"No scheduled runs."</p> }.into_any()
        } else {
            view! {
                <ul class="next-runs">
                    {next_runs
                        .into_iter()
                        .map(|n| view! { <li><code>{n.job}</code>" "{n.at}</li> })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }}
    }
}

/// Auto-refresh state for a live page: `enabled` (remembered across reloads) and `tick`,
/// which counts up every [`AUTO_REFRESH_MS`] while enabled — key resources on it.
#[derive(Clone, Copy)]
pub struct AutoRefresh {
    pub enabled: RwSignal<bool>,
    pub tick: RwSignal<u64>,
}

/// An open server-sent event stream; dropping it closes the stream.
pub struct EventStream(send_wrapper::SendWrapper<Option<OpenStream>>);

/// The browser's stream and the handlers that must live as long as it.
type OpenStream = (
    web_sys::EventSource,
    Vec<Closure<dyn FnMut(web_sys::Event)>>,
);

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some((source, _)) = Option::take(&mut *self.0) {
            source.close();
        }
    }
}

/// Opens `url` as an event stream and calls `on(kind, data)` for its `open`, `runs`,
/// `log` and `end` events. In the browser only; on the server it does nothing.
pub fn follow_events(url: &str, on: impl Fn(&str, String) + 'static) -> EventStream {
    let Ok(source) = web_sys::EventSource::new(url) else {
        return EventStream(send_wrapper::SendWrapper::new(None));
    };
    let on = std::rc::Rc::new(on);
    let closures = ["open", "runs", "log", "end"]
        .into_iter()
        .map(|kind| {
            let on = on.clone();
            let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
                let data = ev
                    .dyn_ref::<web_sys::MessageEvent>()
                    .and_then(|m| m.data().as_string())
                    .unwrap_or_default();
                on(kind, data);
            });
            let _ = source.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
            cb
        })
        .collect();
    EventStream(send_wrapper::SendWrapper::new(Some((source, closures))))
}

/// Sets up auto-refresh for the current page.
pub fn use_auto_refresh() -> AutoRefresh {
    let enabled = RwSignal::new(false);
    let tick = RwSignal::new(0u64);
    // Effects run only in the browser, after hydration: read the remembered setting there.
    Effect::new(move |_| {
        if load_auto_refresh() {
            enabled.set(true);
        }
    });
    Effect::new(move |_| {
        if enabled.get() {
            let interval = gloo_timers::callback::Interval::new(AUTO_REFRESH_MS, move || {
                tick.update(|t| *t += 1)
            });
            // The interval lives in the browser's single thread; the wrapper satisfies
            // on_cleanup's Send bound and dropping it cancels the timer.
            let interval = send_wrapper::SendWrapper::new(interval);
            on_cleanup(move || drop(interval));
            // Between ticks, runs starting or finishing refresh the page at once.
            let events = follow_events("/api/events", move |kind, _| {
                if kind == "runs" {
                    tick.update(|t| *t += 1);
                }
            });
            on_cleanup(move || drop(events));
        }
    });
    AutoRefresh { enabled, tick }
}

/// The auto-refresh switch.
#[component]
pub fn AutoRefreshToggle(refresh: AutoRefresh) -> impl IntoView {
    view! {
        <label class="toggle">
            <input
                type="checkbox"
                role="switch"
                data-testid="auto-refresh"
                prop:checked=move || refresh.enabled.get()
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    refresh.enabled.set(on);
                    save_auto_refresh(on);
                }
            />
            {format!("Auto-refresh ({} s)", AUTO_REFRESH_MS / 1000)}
        </label>
    }
}

/// A short message after an action: `ok` false shows it as an error.
#[derive(Clone)]
pub struct Toast {
    id: u64,
    text: String,
    ok: bool,
}

#[derive(Clone, Copy)]
struct Toasts(RwSignal<Vec<Toast>>);

pub fn provide_toasts() {
    provide_context(Toasts(RwSignal::new(Vec::new())));
}

/// Shows a toast for five seconds.
pub fn toast(text: impl Into<String>, ok: bool) {
    let Some(Toasts(list)) = use_context::<Toasts>() else {
        return;
    };
    let id = list.with_untracked(|l| l.last().map_or(0, |t| t.id + 1));
    list.update(|l| {
        l.push(Toast {
            id,
            text: text.into(),
            ok,
        })
    });
    set_timeout(
        move || list.update(|l| l.retain(|t| t.id != id)),
        std::time::Duration::from_secs(5),
    );
}

/// Reports a server action's outcome as a toast: `done` on success, the error otherwise.
pub fn toast_on<T: Clone + Send + Sync + 'static>(
    value: impl Get<Value = Option<Result<T, ServerFnError>>> + Send + Sync + 'static,
    done: impl Fn(&T) -> String + Send + Sync + 'static,
) {
    Effect::new(move |_| match value.get() {
        Some(Ok(v)) => toast(done(&v), true),
        Some(Err(e)) => toast(error_text(&e), false),
        None => {}
    });
}

/// A server function's error as the operator should read it.
pub fn error_text(e: &ServerFnError) -> String {
    let s = e.to_string();
    s.strip_prefix("error running server function: ")
        .unwrap_or(&s)
        .to_string()
}

#[component]
pub fn ToastList() -> impl IntoView {
    let Toasts(list) = expect_context::<Toasts>();
    view! {
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For each=move || list.get() key=|t| t.id let:t>
                <div class=if t.ok { "toast" } else { "toast toast-error" }>{t.text}</div>
            </For>
        </div>
    }
}

/// A run's status as a coloured pill.
#[component]
pub fn RunStatusPill(status: String) -> impl IntoView {
    view! { <span class=format!("pill pill-{status}") data-testid="run-status">{status.replace('_', " ")}</span> }
}

/// What can be done to a listed run: cancel it while it is queued or running, run it
/// again once it ended.
#[derive(Clone, Copy)]
pub struct RunActions {
    pub cancel: ServerAction<CancelRun>,
    pub rerun: ServerAction<RerunRun>,
}

/// Whether a run of this status is still queued or running.
pub fn in_flight(status: &str) -> bool {
    matches!(status, "queued" | "running")
}

/// Runs as a table; each links to its detail page; with `actions`, each can be cancelled
/// or rerun from its row.
#[component]
pub fn RunsTable(
    runs: Vec<RunRow>,
    #[prop(optional)] actions: Option<RunActions>,
) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted">"No runs."</p> }.into_any();
    }
    let cols = if actions.is_some() { "6" } else { "5" };
    view! {
        <div class="table-wrap">
            <table class="runs">
                <thead><tr><th>"Run"</th><th>"Job"</th><th>"Status"</th><th>"When"</th><th>"Took"</th><th>"Trigger"</th>
                    {actions.map(|_| view! { <th><span class="sr-only">"Actions"</span></th> })}</tr></thead>
                <tbody>
                    {runs.into_iter().map(|r| {
                        let id = r.id;
                        let live = in_flight(&r.status);
                        view! {
                        <tr data-testid="run-row" data-run=r.id data-job=r.job.clone() data-status=r.status.clone()>
                            <td><a href=format!("/runs/{}", r.id)>{format!("#{}", r.id)}</a></td>
                            <td><code>{r.job.clone()}</code></td>
                            <td><RunStatusPill status=r.status.clone() /></td>
                            <td>{r.when}</td>
                            <td>{r.duration.unwrap_or_default()}</td>
                            <td>{r.trigger}{(r.attempt > 1).then(|| format!(" (attempt {})", r.attempt))}</td>
                            {actions.map(|a| view! {
                                <td class="row-actions">{if live {
                                    view! { <button data-testid="cancel-run" on:click=move |_| { a.cancel.dispatch(CancelRun { id, reason: String::new() }); }>"Cancel"</button> }.into_any()
                                } else {
                                    view! { <button data-testid="rerun-run" on:click=move |_| { a.rerun.dispatch(RerunRun { id }); }>"Rerun"</button> }.into_any()
                                }}</td>
                            })}
                        </tr>
                        {r.error.map(|e| {
                            // A slot skipped on purpose (a pause, a window) is no error.
                            let deliberate = e.starts_with("paused:") || e.starts_with("maintenance:");
                            view! { <tr class="error-row"><td></td><td colspan=cols class=if deliberate { "muted" } else { "error" }>{e}</td></tr> }
                        })}
                    }}).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A report table.
#[component]
pub fn DataTable(table: Table) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table>
                <caption>{table.title.replace('_', " ")}</caption>
                <thead><tr>{table.columns.into_iter().map(|c| view! { <th>{c.replace('_', " ")}</th> }).collect_view()}</tr></thead>
                <tbody>
                    {table.rows.into_iter().map(|row| view! {
                        <tr>{row.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Horizontal bars, one per label, scaled to the largest value (or `max`).
#[component]
pub fn BarChart(
    bars: Vec<Bar>,
    label: &'static str,
    #[prop(optional)] max: Option<f64>,
) -> impl IntoView {
    let top = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(1e-9);
    let row = 26.0;
    let height = row * bars.len() as f64;
    view! {
        <svg class="chart" role="img" aria-label=label viewBox=format!("0 0 600 {height}") preserveAspectRatio="xMinYMin meet">
            {bars.into_iter().enumerate().map(|(i, b)| {
                let y = i as f64 * row;
                let w = (b.value / top * 330.0).max(1.0);
                view! {
                    <g>
                        <text x="0" y=y + 17.0 class="chart-label">{b.label}</text>
                        <rect x="170" y=y + 4.0 width=w height="18" rx="3" class="bar" />
                        <text x=175.0 + w y=y + 17.0 class="chart-value">{b.text}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
    }
}

/// Runs per hour over the last day, stacked: succeeded, failed, skipped.
#[component]
pub fn HourChart(hours: Vec<HourBar>) -> impl IntoView {
    let top = hours
        .iter()
        .map(|h| h.succeeded + h.failed + h.skipped)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, h) = (600.0, 160.0);
    let step = w / hours.len().max(1) as f64;
    let scale = (h - 20.0) / top;
    view! {
        <svg class="chart" role="img" aria-label="Runs per hour over the last 24 hours" viewBox=format!("0 0 {w} {h}")>
            <line x1="0" y1=h - 18.0 x2=w y2=h - 18.0 class="axis" />
            {hours.into_iter().enumerate().map(|(i, b)| {
                let x = i as f64 * step + 2.0;
                let bw = step - 4.0;
                let base = h - 18.0;
                let ok = b.succeeded as f64 * scale;
                let bad = b.failed as f64 * scale;
                let skip = b.skipped as f64 * scale;
                let title = format!("{}: {} succeeded, {} failed, {} skipped", b.label, b.succeeded, b.failed, b.skipped);
                view! {
                    <g>
                        <title>{title}</title>
                        <rect x=x y=base - ok width=bw height=ok class="bar-ok" />
                        <rect x=x y=base - ok - bad width=bw height=bad class="bar-failed" />
                        <rect x=x y=base - ok - bad - skip width=bw height=skip class="bar-skipped" />
                        {(i % 4 == 0).then(|| view! { <text x=x y=h - 4.0 class="chart-label">{b.label.clone()}</text> })}
                    </g>
                }
            }).collect_view()}
        </svg>
        <p class="legend"><span class="key key-ok"></span>"succeeded "<span class="key key-failed"></span>"failed "<span class="key key-skipped"></span>"skipped"</p>
    }
}

/// Monthly revenue and expenses as paired bars, with net as a line.
#[component]
pub fn FinanceChart(months: Vec<Month>) -> impl IntoView {
    let (w, h) = (720.0, 240.0);
    let top = months
        .iter()
        .map(|m| m.revenue.max(m.expenses))
        .fold(0.0, f64::max)
        .max(1.0);
    let low = months.iter().map(|m| m.net).fold(0.0, f64::min);
    let span = top - low;
    let zero = 10.0 + (h - 40.0) * top / span;
    let y = move |v: f64| zero - v / span * (h - 40.0);
    let step = w / months.len().max(1) as f64;
    let net: Vec<String> = months
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{:.1},{:.1}", i as f64 * step + step / 2.0, y(m.net)))
        .collect();
    view! {
        <svg class="chart" role="img" aria-label="Monthly revenue, expenses and net" viewBox=format!("0 0 {w} {h}") data-testid="finance-chart">
            <line x1="0" y1=zero x2=w y2=zero class="axis" />
            {months.into_iter().enumerate().map(|(i, m)| {
                let x = i as f64 * step;
                let bw = (step - 4.0) / 2.0;
                view! {
                    <g data-month=m.month.clone()>
                        <title>{format!("{}: revenue ${:.0}, expenses ${:.0}, net ${:.0}", m.month, m.revenue, m.expenses, m.net)}</title>
                        <rect x=x + 2.0 y=y(m.revenue) width=bw height=zero - y(m.revenue) class="bar-ok" />
                        <rect x=x + 2.0 + bw y=y(m.expenses) width=bw height=zero - y(m.expenses) class="bar-failed" />
                        {(i % 3 == 0).then(|| view! { <text x=x y=h - 4.0 class="chart-label">{m.month.clone()}</text> })}
                    </g>
                }
            }).collect_view()}
            <polyline points=net.join(" ") class="line" />
        </svg>
        <p class="legend"><span class="key key-ok"></span>"revenue "<span class="key key-failed"></span>"expenses "<span class="key key-line"></span>"net"</p>
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn load_auto_refresh() -> bool {
    local_storage()
        .and_then(|s| s.get_item(AUTO_REFRESH_STORAGE_KEY).ok().flatten())
        .is_some_and(|v| v == "on")
}

fn save_auto_refresh(on: bool) {
    if let Some(s) = local_storage() {
        // Best effort: private browsing may refuse storage; the toggle still works.
        let _ = s.set_item(AUTO_REFRESH_STORAGE_KEY, if on { "on" } else { "off" });
    }
}

/// `3725` → `1h 2m`; `42` → `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(60), "1m");
        assert_eq!(human_duration(3725), "1h 2m");
        assert_eq!(human_duration(90_061), "1d 1h");
    }
}
