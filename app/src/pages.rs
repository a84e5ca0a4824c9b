//! One component per page.

use crate::api::{get_status, RestartScheduler, StartScheduler, StopScheduler};
use crate::components::{
    use_auto_refresh, use_hydrated, AutoRefreshToggle, Layout, StatusBadge, StatusFacts,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Log in with the dashboard key. A plain form post, so it works before (and without)
/// WASM; the server answers with a session cookie and a redirect.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || match query.read().get("error").as_deref() {
        Some("throttled") => Some("Too many failed attempts. Wait a minute, then try again."),
        Some(_) => Some("That key is not right. Try again."),
        None => None,
    };
    let hydrated = use_hydrated();
    view! {
        <Title text="Log in · EchoPilot" />
        <main class="login" data-hydrated=hydrated>
            <form method="post" action="/api/session" class="card login-card">
                <h1>"EchoPilot"</h1>
                <p class="muted">"Enter the dashboard key. It is printed when the server first starts and kept in the data dir as dashboard.key."</p>
                <label for="key">"Dashboard key"</label>
                <input id="key" name="key" type="password" autocomplete="current-password" required autofocus />
                {move || error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" class="primary">"Log in"</button>
            </form>
        </main>
    }
}

/// The overview: the scheduler's state and its controls.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let start = ServerAction::<StartScheduler>::new();
    let stop = ServerAction::<StopScheduler>::new();
    let restart = ServerAction::<RestartScheduler>::new();
    let refresh = use_auto_refresh();
    let status = Resource::new(
        move || {
            (
                start.version().get(),
                stop.version().get(),
                restart.version().get(),
                refresh.tick.get(),
            )
        },
        |_| get_status(),
    );
    let busy = move || start.pending().get() || stop.pending().get() || restart.pending().get();
    let action_error = move || {
        [
            start.value().get(),
            stop.value().get(),
            restart.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| e.to_string())
    };
    view! {
        <Title text="Overview · EchoPilot" />
        <Layout>
            <section class="card" aria-labelledby="scheduler-heading">
                <div class="card-head">
                    <h2 id="scheduler-heading">"Scheduler"</h2>
                    <AutoRefreshToggle refresh />
                </div>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        status
                            .get()
                            .map(|r| match r {
                                Ok(s) => {
                                    view! {
                                        <div class="status-line">
                                            <StatusBadge state=s.state />
                                        </div>
                                        <StatusFacts status=s />
                                    }
                                        .into_any()
                                }
                                Err(e) => {
                                    view! {
                                        <p class="error" role="alert">
                                            {format!("Cannot read the status: {e}")}
                                        </p>
                                    }
                                        .into_any()
                                }
                            })
                    }}
                </Transition>
                <div class="controls" role="group" aria-label="Scheduler controls">
                    <button class="primary" data-testid="start" disabled=busy
                        on:click=move |_| { start.dispatch(StartScheduler {}); }>"Start"</button>
                    <button data-testid="stop" disabled=busy
                        on:click=move |_| { stop.dispatch(StopScheduler {}); }>"Stop"</button>
                    <button data-testid="restart" disabled=busy
                        on:click=move |_| { restart.dispatch(RestartScheduler {}); }>"Restart"</button>
                </div>
                {move || action_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            </section>
        </Layout>
    }
}

/// Unknown paths.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · EchoPilot" />
        <Layout>
            <section class="card">
                <h2>"Page not found"</h2>
                <p><a href="/">"Back to the overview"</a></p>
            </section>
        </Layout>
    }
}
