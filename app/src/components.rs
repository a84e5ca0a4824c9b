//! Small pieces the pages are built from.

use crate::wire::{SchedulerState, SchedulerStatus};
use leptos::prelude::*;

/// How often live pages refresh when auto-refresh is on.
pub const AUTO_REFRESH_MS: u32 = 10_000;
/// Where the auto-refresh setting is remembered. Only this preference is kept in browser
/// storage — never the dashboard key.
const AUTO_REFRESH_STORAGE_KEY: &str = "echopilot.autoRefresh";

/// True once the WASM has taken over the server-rendered page; pages put it on their root
/// as `data-hydrated`, so tests (and people) know the buttons work.
pub fn use_hydrated() -> impl Fn() -> Option<&'static str> + Copy + Send + Sync + 'static {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    move || hydrated.get().then_some("true")
}

/// Page chrome: header with navigation and log-out, then the page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let hydrated = use_hydrated();
    view! {
        <div class="layout" data-hydrated=hydrated>
            <header class="topbar">
                <a class="brand" href="/">"EchoPilot"</a>
                <nav aria-label="Main">
                    <a href="/" aria-current="page">"Overview"</a>
                </nav>
                <form method="post" action="/api/session/logout" class="logout">
                    <button type="submit" class="ghost">"Log out"</button>
                </form>
            </header>
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
        Some(age) => format!("{} ago", human_duration(age as u64)),
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
        </dl>
        <h3>"Next runs"</h3>
        {if next_runs.is_empty() {
            view! { <p class="muted">"No scheduled runs."</p> }.into_any()
        } else {
            view! {
                <ul class="next-runs">
                    {next_runs
                        .into_iter()
                        .map(|n| view! { <li><code>{n.job}</code>" "{n.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</li> })
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
