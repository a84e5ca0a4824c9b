//! One component per page.

use crate::api::*;
use crate::components::*;
use crate::wire::{IncidentRow, JobForm, JobRow};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

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

/// Shows a resource's value through `view`, "Loading…" until the first answer, and its
/// error in place.
fn loaded<T, V>(resource: Data<T>, view: impl Fn(T) -> V + Send + Sync + 'static) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    let view = std::sync::Arc::new(view);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {
                let view = view.clone();
                move || {
                    let view = view.clone();
                    resource
                        .get()
                        .map(move |r| match r {
                            Ok(v) => view(v).into_any(),
                            Err(e) => view! { <p class="error" role="alert">{error_text(&e)}</p> }.into_any(),
                        })
                }
            }
        </Transition>
    }
}

/// The overview: the scheduler's state and controls, health, the last day at a glance.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let start = ServerAction::<StartScheduler>::new();
    let stop = ServerAction::<StopScheduler>::new();
    let restart = ServerAction::<RestartScheduler>::new();
    toast_on(start.value(), |_| "Scheduler started".into());
    toast_on(stop.value(), |_| "Scheduler stopped".into());
    toast_on(restart.value(), |_| "Scheduler restarted".into());
    let refresh = use_auto_refresh();
    let status = data(
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
    let overview = data(move || refresh.tick.get(), |_| get_overview());
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
        .map(|e| error_text(&e))
    };
    view! {
        <Title text="Overview · EchoPilot" />
        <Layout>
            <OpenIncidents />
            <section class="card" aria-labelledby="scheduler-heading">
                <div class="card-head">
                    <h2 id="scheduler-heading">"Scheduler"</h2>
                    <AutoRefreshToggle refresh />
                </div>
                {loaded(status, |s| view! {
                    <div class="status-line"><StatusBadge state=s.state />
                        {s.paused.clone().map(|p| view! { <span class="pill pill-paused" data-testid="status-paused">{format!("everything paused: {}", p.reason)}</span> })}
                    </div>
                    <StatusFacts status=s />
                })}
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
            {loaded(overview, |o| view! {
                <section class="card" aria-labelledby="health-heading">
                    <h2 id="health-heading">"Health"</h2>
                    {match o.health {
                        None => view! { <p class="muted">"Self-heal has not run yet."</p> }.into_any(),
                        Some(h) => view! {
                            <p class="muted">{format!("From the last self-heal, {} ", h.at)}<a href=format!("/runs/{}", h.run_id)>"(report)"</a></p>
                            <ul class="checks">
                                {h.checks.into_iter().map(|c| view! {
                                    <li><span class=format!("pill pill-{}", c.state)>{c.state.clone()}</span>" "<strong>{c.name.replace('_', " ")}</strong>" — "{c.message}</li>
                                }).collect_view()}
                            </ul>
                            {(!h.repairs.is_empty()).then(|| view! {
                                <h3>"Repairs"</h3>
                                <ul>{h.repairs.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                            })}
                        }.into_any(),
                    }}
                </section>
                <section class="card" aria-labelledby="day-heading">
                    <h2 id="day-heading">"Last 24 hours"</h2>
                    <h3>"Runs per hour (UTC)"</h3>
                    <HourChart hours=o.hours />
                    <h3>"p95 duration per job"</h3>
                    {if o.p95.is_empty() {
                        view! { <p class="muted">"No finished runs yet."</p> }.into_any()
                    } else {
                        view! { <BarChart bars=o.p95 label="p95 run duration per job" /> }.into_any()
                    }}
                </section>
                <section class="card" aria-labelledby="problems-heading">
                    <h2 id="problems-heading">"Failures and missed slots"</h2>
                    <RunsTable runs=o.problems />
                </section>
            })}
        </Layout>
    }
}

/// Every job, with its schedule in words, next run, last outcome, pause and controls.
#[component]
pub fn JobsPage() -> impl IntoView {
    let refresh = use_auto_refresh();
    let run = ServerAction::<RunJobNow>::new();
    let enable = ServerAction::<SetJobEnabled>::new();
    let delete = ServerAction::<DeleteJob>::new();
    let pause = ServerAction::<Pause>::new();
    let resume = ServerAction::<Resume>::new();
    toast_on(run.value(), |id| format!("Run #{id} started"));
    toast_on(enable.value(), |_| "Job updated".to_string());
    toast_on(delete.value(), |_| "Job deleted".to_string());
    toast_on(pause.value(), |_| "Paused".to_string());
    toast_on(resume.value(), |_| "Resumed".to_string());
    pauses_follow(pause.version());
    pauses_follow(resume.version());
    let jobs = data(
        move || {
            (
                refresh.tick.get(),
                run.version().get(),
                enable.version().get(),
                delete.version().get(),
                pause.version().get(),
                resume.version().get(),
            )
        },
        |_| list_jobs(),
    );
    let actions = JobActions {
        run,
        enable,
        delete,
        pause,
        resume,
    };
    let pausing_all = RwSignal::new(false);
    view! {
        <Title text="Jobs · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Jobs" refresh>
                    <button data-testid="pause-all" on:click=move |_| pausing_all.update(|p| *p = !*p)>"Pause everything…"</button>
                    <a class="button primary" href="/jobs/new" data-testid="new-job">"New job"</a>
                </LiveHead>
                <Show when=move || pausing_all.get()>
                    <PauseForm id=String::new() pause open=pausing_all />
                </Show>
                {loaded(jobs, move |page| view! {
                    <div class="table-wrap">
                        <table class="jobs">
                            <thead><tr><th>"Job"</th><th>"Schedule"</th><th>"Next run"</th><th>"Last"</th><th>"Enabled"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody>
                                {page.jobs.into_iter().map(|j| view! { <JobLine job=j actions /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
            </section>
        </Layout>
    }
}

/// The jobs page's actions, shared by its rows.
#[derive(Clone, Copy)]
struct JobActions {
    run: ServerAction<RunJobNow>,
    enable: ServerAction<SetJobEnabled>,
    delete: ServerAction<DeleteJob>,
    pause: ServerAction<Pause>,
    resume: ServerAction<Resume>,
}

/// What a job row asks before acting: why (and, to pause, for how long).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Pause,
    Disable,
    Delete,
}

#[component]
fn JobLine(job: JobRow, actions: JobActions) -> impl IntoView {
    let JobActions {
        run,
        enable,
        delete,
        pause,
        resume,
    } = actions;
    let asking = RwSignal::new(None::<Ask>);
    let id = job.id.clone();
    let (id1, id2, id3, id4) = (id.clone(), id.clone(), id.clone(), id.clone());
    let paused = job.paused.is_some();
    view! {
        <tr data-testid="job-row" data-job=id.clone() data-paused=paused.to_string()>
            <td>
                <a href=format!("/jobs/{id}")><strong>{job.name}</strong></a>
                <div class="muted"><code>{id.clone()}</code>" · "{job.kind}</div>
                {job.from_file.then(|| if job.drift {
                    view! { <span class="pill pill-warn" data-testid="drift" title="Edited since it was applied from a file: the file no longer says what runs">"edited since applied"</span> }.into_any()
                } else {
                    view! { <span class="pill pill-skipped" data-testid="from-file" title="Applied from a file (echopilot jobs apply)">"from file"</span> }.into_any()
                })}
                {job.paused.map(|p| view! { <PauseLine note=p /> })}
            </td>
            <td>{job.words}<div class="muted"><code>{job.schedule}</code>" "{job.timezone}</div></td>
            <td>{if paused { "paused".to_string() } else { job.next_run.unwrap_or_else(|| "—".into()) }}</td>
            <td>{match (job.last_status, job.last_run) {
                (Some(s), Some(r)) => view! { <a href=format!("/runs/{r}")><RunStatusPill status=s /></a> }.into_any(),
                _ => view! { <span class="muted">"never"</span> }.into_any(),
            }}</td>
            <td>
                <input type="checkbox" role="switch" checked=job.enabled data-testid="enabled"
                    aria-label=format!("{id} enabled")
                    on:change=move |ev| {
                        if event_target_checked(&ev) {
                            enable.dispatch(SetJobEnabled { id: id1.clone(), enabled: true, reason: String::new() });
                        } else {
                            // Not yet: disabling asks why first.
                            event_target::<web_sys::HtmlInputElement>(&ev).set_checked(true);
                            asking.set(Some(Ask::Disable));
                        }
                    } />
            </td>
            <td class="row-actions">
                <button data-testid="run-now" on:click=move |_| { run.dispatch(RunJobNow { id: id2.clone() }); }>"Run now"</button>
                {if paused {
                    view! { <button data-testid="resume" on:click=move |_| { resume.dispatch(Resume { id: id3.clone() }); }>"Resume"</button> }.into_any()
                } else {
                    view! { <button data-testid="pause" on:click=move |_| asking.set(Some(Ask::Pause))>"Pause"</button> }.into_any()
                }}
                <button class="danger-outline" on:click=move |_| asking.set(Some(Ask::Delete))>"Delete"</button>
            </td>
        </tr>
        {move || asking.get().map(|ask| {
            let id = id4.clone();
            view! {
                <tr class="ask-row" data-testid="ask-row">
                    <td colspan="6">
                        {match ask {
                            Ask::Pause => {
                                let open = RwSignal::new(true);
                                Effect::new(move |_| if !open.get() { asking.set(None) });
                                view! { <PauseForm id pause open /> }.into_any()
                            }
                            Ask::Disable => view! {
                                <ReasonForm what="Disable" testid="confirm-disable" danger=false
                                    on_confirm=Callback::new(move |reason: String| {
                                        enable.dispatch(SetJobEnabled { id: id.clone(), enabled: false, reason });
                                        asking.set(None);
                                    })
                                    on_keep=Callback::new(move |()| asking.set(None)) />
                            }.into_any(),
                            Ask::Delete => view! {
                                <ReasonForm what="Delete for good" testid="confirm-delete" danger=true
                                    on_confirm=Callback::new(move |reason: String| {
                                        delete.dispatch(DeleteJob { id: id.clone(), reason });
                                        asking.set(None);
                                    })
                                    on_keep=Callback::new(move |()| asking.set(None)) />
                            }.into_any(),
                        }}
                    </td>
                </tr>
            }
        })}
    }
}

/// Asks why before a change that needs a reason; `on_confirm` gets it.
#[component]
fn ReasonForm(
    what: &'static str,
    testid: &'static str,
    danger: bool,
    on_confirm: Callback<String>,
    on_keep: Callback<()>,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    view! {
        <form class="ask" on:submit=move |ev| {
            ev.prevent_default();
            on_confirm.run(reason.get_untracked());
        }>
            <label>"Why? "
                <input type="text" required maxlength="500" data-testid="reason" placeholder="recorded in the audit log"
                    bind:value=reason />
            </label>
            <button type="submit" class=if danger { "danger" } else { "primary" } data-testid=testid>{what}</button>
            <button type="button" on:click=move |_| on_keep.run(())>"Keep"</button>
        </form>
    }
}

/// Pause job `id` (or everything, when empty): why, for how long, and whether to cancel
/// the runs in flight (they finish otherwise). Sets `open` to false when sent or kept.
#[component]
fn PauseForm(id: String, pause: ServerAction<Pause>, open: RwSignal<bool>) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let for_ = RwSignal::new(String::new());
    let cancel_running = RwSignal::new(false);
    let all = id.is_empty();
    view! {
        <form class="ask" data-testid="pause-form" on:submit=move |ev| {
            ev.prevent_default();
            pause.dispatch(Pause {
                id: id.clone(),
                reason: reason.get_untracked(),
                for_: for_.get_untracked(),
                cancel_running: cancel_running.get_untracked(),
            });
            open.set(false);
        }>
            <strong>{if all { "Pause everything" } else { "Pause" }}</strong>
            <label>"Why? "
                <input type="text" required maxlength="500" data-testid="pause-reason" placeholder="shown to everyone" bind:value=reason />
            </label>
            <label>"For "
                <input type="text" data-testid="pause-for" placeholder="2h, 30m, 1d — empty: until resumed" size="24" bind:value=for_ />
            </label>
            <label class="check">
                <input type="checkbox" data-testid="pause-cancel-running" bind:checked=cancel_running />
                " cancel runs in flight (otherwise they finish)"
            </label>
            <button type="submit" class="primary" data-testid="confirm-pause">"Pause"</button>
            <button type="button" on:click=move |_| open.set(false)>"Keep running"</button>
        </form>
    }
}

/// A pause's reason, owner and end.
#[component]
fn PauseLine(note: crate::wire::PauseNote) -> impl IntoView {
    view! {
        <div class="paused-note" data-testid="paused-note">
            <span class="pill pill-paused">"paused"</span>" "{note.reason}
            <span class="muted">{format!(" · by {} · since {} · {}", note.by, note.since,
                note.until.map(|u| format!("until {u}")).unwrap_or_else(|| "until resumed".into()))}</span>
        </div>
    }
}

/// Creates a job (`/jobs/new`) or edits one (`/jobs/:id`), checking the schedule as it
/// is typed.
#[component]
pub fn JobEditPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let form = data(id, get_job_form);
    view! {
        <Title text="Job · EchoPilot" />
        <Layout>
            <section class="card">
                {move || view! { <h2>{if id().is_empty() { "New job".to_string() } else { format!("Edit {}", id()) }}</h2> }}
                {loaded(form, move |f| view! { <JobFormView form=f original=id() /> })}
            </section>
            {move || (!id().is_empty()).then(|| view! { <RunWithParams id=id() /> })}
        </Layout>
    }
}

/// Run a job now with params over its own, for this run only (secrets never shown back).
#[component]
fn RunWithParams(id: String) -> impl IntoView {
    let run = ServerAction::<RunWithParams>::new();
    let params = RwSignal::new("{}".to_string());
    Effect::new(move |_| {
        if let Some(Ok(new)) = run.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/runs/{new}"), Default::default());
        }
    });
    let error = move || match run.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    view! {
        <section class="card">
            <h2>"Run now with params"</h2>
            <p class="muted">"A JSON object of params merged over the job's for this run only, e.g. {\"url\": \"https://example.com/other\"}. Each must be a param the job has."</p>
            <form on:submit=move |ev| {
                ev.prevent_default();
                run.dispatch(RunWithParams { id: id.clone(), params: params.get_untracked() });
            }>
                <textarea rows="4" data-testid="override-params" aria-label="Params for this run" bind:value=params></textarea>
                {move || error().map(|e| view! { <p class="error" role="alert" data-testid="override-error">{e}</p> })}
                <button type="submit" class="primary" data-testid="run-with-params">"Run with these params"</button>
            </form>
        </section>
    }
}

#[component]
fn JobFormView(form: JobForm, original: String) -> impl IntoView {
    let save = ServerAction::<SaveJob>::new();
    let schedule = RwSignal::new(form.schedule.clone());
    let timezone = RwSignal::new(form.timezone.clone());
    let job = original.clone();
    let preview = data(
        move || (schedule.get(), timezone.get()),
        move |(s, t)| preview_schedule(s, t, job.clone()),
    );
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| match save.value().get() {
        Some(Ok(id)) => {
            toast(format!("Saved job {id}"), true);
            navigate("/jobs", Default::default());
        }
        Some(Err(e)) => toast(error_text(&e), false),
        None => {}
    });
    let error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| error_text(&e))
    };
    let editing = !original.is_empty();
    let select = |name: &'static str, options: Vec<String>, current: String| {
        view! {
            <select id=name name=name>
                {options.into_iter().map(|o| {
                    let selected = o == current;
                    view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                }).collect_view()}
            </select>
        }
    };
    view! {
        <ActionForm action=save attr:class="job-form">
            <input type="hidden" name="original" value=original.clone() />
            <div class="field">
                <label for="id">"Id"</label>
                <input id="id" name="id" value=form.id.clone() required readonly=editing
                    pattern="[a-z0-9][a-z0-9\\-]*" maxlength="64" aria-describedby="id-help" />
                <small id="id-help" class="muted">"Lowercase letters, digits and -; at most 64."</small>
            </div>
            <div class="field">
                <label for="name">"Name"</label>
                <input id="name" name="name" value=form.name.clone() />
            </div>
            <div class="field">
                <label for="kind">"Kind"</label>
                {select("kind", form.kinds.clone(), form.kind.clone())}
            </div>
            <div class="field wide">
                <label for="schedule">"Schedule"</label>
                <input id="schedule" name="schedule" value=form.schedule.clone() data-testid="schedule"
                    aria-describedby="schedule-preview" autocomplete="off" spellcheck="false"
                    on:input=move |ev| schedule.set(event_target_value(&ev)) />
                <small class="muted">"6 fields with seconds (0 30 8 * * MON-FRI) or @every 30s"</small>
            </div>
            <div class="field">
                <label for="timezone">"Time zone"</label>
                <input id="timezone" name="timezone" value=form.timezone.clone()
                    on:input=move |ev| timezone.set(event_target_value(&ev)) />
            </div>
            <div id="schedule-preview" class="preview wide" aria-live="polite" data-testid="preview">
                <Transition fallback=|| ()>
                    {move || preview.get().map(|p| match p {
                        Ok(p) => match p.error {
                            Some(e) => view! { <p class="error" data-testid="schedule-error">{e}</p> }.into_any(),
                            None => view! {
                                <p><strong>{p.words}</strong>" — next runs:"</p>
                                <ol class="slots">
                                    {p.slots.into_iter().map(|s| { let gone = s.swallowed.is_some(); view! {
                                        <li class:swallowed=gone>
                                            {s.local}<span class="muted">{format!(" · {}", s.utc)}</span>
                                            {s.change.map(|c| view! { <span class="pill pill-warn" title="The zone's UTC offset changes before this run">{format!("DST {c}")}</span> })}
                                            {s.swallowed.map(|w| view! { <span class="pill pill-skipped" data-testid="swallowed" title="This slot will be recorded skipped, not run">{format!("skipped — {w}")}</span> })}
                                        </li>
                                    }}).collect_view()}
                                </ol>
                            }.into_any(),
                        },
                        Err(e) => view! { <p class="error">{error_text(&e)}</p> }.into_any(),
                    })}
                </Transition>
            </div>
            <div class="field">
                <label for="timeout_secs">"Timeout (s)"</label>
                <input id="timeout_secs" name="timeout_secs" type="number" min="1" value=form.timeout_secs.to_string() />
            </div>
            <div class="field">
                <label for="retries">"Retries"</label>
                <input id="retries" name="retries" type="number" min="0" value=form.retries.to_string() />
            </div>
            <div class="field">
                <label for="overlap">"If still running"</label>
                {select("overlap", vec!["skip".into(), "queue".into(), "allow".into()], form.overlap.clone())}
            </div>
            <div class="field">
                <label for="misfire">"Missed slots"</label>
                {select("misfire", vec!["run_once".into(), "skip".into()], form.misfire.clone())}
            </div>
            <div class="field wide">
                <label for="params">"Params (JSON)"</label>
                <textarea id="params" name="params" rows="6" spellcheck="false">{textarea_text(form.params.clone())}</textarea>
            </div>
            <label class="toggle wide">
                <input type="checkbox" name="enabled" checked=form.enabled />"Enabled"
            </label>
            {move || error().map(|e| view! { <p class="error wide" role="alert" data-testid="form-error">{e}</p> })}
            <div class="controls wide">
                <button type="submit" class="primary" data-testid="save" disabled=move || save.pending().get()>"Save"</button>
                <a class="button" href="/jobs">"Cancel"</a>
            </div>
        </ActionForm>
    }
}

const STATUSES: [&str; 8] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "interrupted",
    "skipped",
];

/// Text for a `<textarea>`. Leptos writes a textarea's children into the server's HTML
/// unescaped (it treats them like a script's), so text holding `</textarea>` would end the
/// element and run as markup. On the server the text is escaped here; in the browser it
/// becomes a text node, which is never markup.
fn textarea_text(text: String) -> String {
    #[cfg(feature = "ssr")]
    {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out
    }
    #[cfg(not(feature = "ssr"))]
    text
}

/// Run history, newest first, filtered and paged; live while auto-refresh is on.
#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let refresh = use_auto_refresh();
    let cancel = ServerAction::<CancelRun>::new();
    let rerun = ServerAction::<RerunRun>::new();
    let bulk = ServerAction::<BulkRuns>::new();
    toast_on(cancel.value(), |_| "Run cancelled".to_string());
    toast_on(rerun.value(), |id| format!("Run #{id} started"));
    let page = data(
        move || {
            (
                get("job"),
                get("status"),
                get("before").parse::<i64>().ok(),
                (
                    refresh.tick.get(),
                    cancel.version().get(),
                    rerun.version().get(),
                    bulk.version().get(),
                ),
            )
        },
        |(job, status, before, _)| list_runs(job, status, before),
    );
    let actions = RunActions { cancel, rerun };
    view! {
        <Title text="Runs · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Runs" refresh />
                {loaded(page, move |p| {
                    let (job, status) = (get("job"), get("status"));
                    let (job_now, status_now) = (job.clone(), status.clone());
                    let older = p.next.map(|n| format!("/runs?job={job}&status={status}&before={n}"));
                    let paged = !get("before").is_empty();
                    view! {
                        <Form method="GET" action="/runs" attr:class="filters">
                            <label>"Job "
                                <select name="job" data-testid="filter-job">
                                    <option value="">"any"</option>
                                    {p.jobs.into_iter().map(|j| {
                                        let selected = j == job_now;
                                        view! { <option value=j.clone() selected=selected>{j.clone()}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>"Status "
                                <select name="status" data-testid="filter-status">
                                    <option value="">"any"</option>
                                    {STATUSES.map(|s| view! { <option value=s selected=s == status_now>{s.replace('_', " ")}</option> }).collect_view()}
                                </select>
                            </label>
                            <button type="submit">"Filter"</button>
                        </Form>
                        <BulkBar job=job.clone() status=status.clone() bulk />
                        <RunsTable runs=p.runs actions />
                        <nav class="pager" aria-label="Pages">
                            {paged.then(|| view! { <a href=format!("/runs?job={job}&status={status}")>"← Newest"</a> })}
                            {older.map(|o| view! { <a href=o>"Older →"</a> })}
                        </nav>
                    }
                })}
            </section>
        </Layout>
    }
}

/// Cancel or rerun every run the filter matches: counted first, then confirmed.
#[component]
fn BulkBar(job: String, status: String, bulk: ServerAction<BulkRuns>) -> impl IntoView {
    // The action asked about and how many runs it would touch.
    let asked = RwSignal::new(None::<(String, usize, bool)>);
    let asking = RwSignal::new(String::new());
    let count = ServerAction::<BulkRuns>::new();
    Effect::new(move |_| {
        if let Some(Ok(c)) = count.value().get() {
            asked.set(Some((asking.get_untracked(), c.count, c.more)));
        }
    });
    let ask = move |action: &str, job: String, status: String| {
        asking.set(action.to_string());
        count.dispatch(BulkRuns {
            action: action.into(),
            job,
            status,
            dry_run: true,
        });
    };
    Effect::new(move |_| match bulk.value().get() {
        Some(Ok(c)) => {
            toast(format!("{} runs done", c.count), true);
            asked.set(None);
        }
        Some(Err(e)) => toast(error_text(&e), false),
        None => {}
    });
    let (j1, s1, j2, s2, j3, s3) = (
        job.clone(),
        status.clone(),
        job.clone(),
        status.clone(),
        job,
        status,
    );
    view! {
        <div class="bulk" data-testid="bulk">
            <button data-testid="bulk-cancel" on:click=move |_| ask("cancel", j1.clone(), s1.clone())>"Cancel all matching…"</button>
            <button data-testid="bulk-rerun" on:click=move |_| ask("rerun", j2.clone(), s2.clone())>"Rerun all matching…"</button>
            {move || asked.get().map(|(action, n, more)| {
                let (job, status, act) = (j3.clone(), s3.clone(), action.clone());
                let verb = if action == "cancel" { "Cancel" } else { "Rerun" };
                view! {
                    <span class="ask" data-testid="bulk-confirm">
                        {format!("{verb} {n} run{}{}?", if n == 1 { "" } else { "s" }, if more { " (the first 500; repeat for the rest)" } else { "" })}
                        <button class="danger" data-testid="bulk-go" disabled=n == 0
                            on:click=move |_| { bulk.dispatch(BulkRuns { action: act.clone(), job: job.clone(), status: status.clone(), dry_run: false }); }>{format!("{verb} {n}")}</button>
                        <button on:click=move |_| asked.set(None)>"Keep"</button>
                    </span>
                }
            })}
        </div>
    }
}

/// One run: its facts, live log, output and error.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let ended = RwSignal::new(0u32);
    let cancel = ServerAction::<CancelRun>::new();
    let rerun = ServerAction::<RerunRun>::new();
    toast_on(cancel.value(), |_| "Run cancelled".to_string());
    toast_on(rerun.value(), |id| format!("Run #{id} started"));
    // A rerun opens the new run.
    Effect::new(move |_| {
        if let Some(Ok(new)) = rerun.value().get() {
            let navigate = leptos_router::hooks::use_navigate();
            navigate(&format!("/runs/{new}"), Default::default());
        }
    });
    let detail = data(
        move || (id(), ended.get(), cancel.version().get()),
        |(id, _, _)| get_run(id),
    );
    view! {
        <Title text="Run · EchoPilot" />
        <Layout>
            {loaded(detail, move |d| {
                let r = d.run;
                let run_id = r.id;
                let live = in_flight(&r.status);
                let reason = RwSignal::new(String::new());
                view! {
                    <section class="card">
                        <div class="card-head">
                            <h2>{format!("Run #{} of ", r.id)}<a href=format!("/jobs/{}", r.job)><code>{r.job.clone()}</code></a></h2>
                            <div class="head-actions">
                                <RunStatusPill status=r.status.clone() />
                                {if live {
                                    view! {
                                        <form class="ask" on:submit=move |ev| {
                                            ev.prevent_default();
                                            cancel.dispatch(CancelRun { id: run_id, reason: reason.get_untracked() });
                                        }>
                                            <input type="text" maxlength="500" placeholder="why (optional)" data-testid="cancel-reason" bind:value=reason />
                                            <button type="submit" class="danger" data-testid="cancel-run">"Cancel run"</button>
                                        </form>
                                    }.into_any()
                                } else {
                                    view! { <button data-testid="rerun-run" on:click=move |_| { rerun.dispatch(RerunRun { id: run_id }); }>"Rerun"</button> }.into_any()
                                }}
                            </div>
                        </div>
                        <dl class="facts">
                            <div><dt>"Trigger"</dt><dd>{r.trigger}</dd></div>
                            <div><dt>"Attempt"</dt><dd>{r.attempt}</dd></div>
                            <div><dt>"Scheduled"</dt><dd>{d.scheduled.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Started"</dt><dd>{d.started.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Ended"</dt><dd>{d.ended.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Took"</dt><dd>{r.duration.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Node"</dt><dd>{d.node}</dd></div>
                            {d.rerun_of.map(|o| view! { <div><dt>"Rerun of"</dt><dd><a href=format!("/runs/{o}") data-testid="rerun-of">{format!("#{o}")}</a></dd></div> })}
                            {(!d.reruns.is_empty()).then(|| view! {
                                <div><dt>"Reruns"</dt><dd data-testid="reruns">{d.reruns.iter().map(|n| view! { <a href=format!("/runs/{n}")>{format!("#{n} ")}</a> }).collect_view()}</dd></div>
                            })}
                        </dl>
                        {d.params.map(|p| view! { <p class="muted">"Ran with params over its job's:"</p><pre class="output" data-testid="run-params">{p}</pre> })}
                        {r.error.map(|e| view! { <p class="error" role="alert" data-testid="run-error">{e}</p> })}
                    </section>
                    <section class="card">
                        <h2>"Log"</h2>
                        {if d.finished {
                            view! { <pre class="log" data-testid="run-log" data-done="true">{d.log}</pre> }.into_any()
                        } else {
                            view! { <LiveLog id=r.id ended /> }.into_any()
                        }}
                    </section>
                    {d.tables.into_iter().map(|t| view! { <section class="card"><DataTable table=t /></section> }).collect_view()}
                    <section class="card">
                        <h2>"Output"</h2>
                        <pre class="output" data-testid="run-output">{d.output}</pre>
                    </section>
                }
            })}
        </Layout>
    }
}

/// A run's log, followed live over server-sent events until the run ends; then `ended`
/// is bumped so the page reloads the finished run.
#[component]
fn LiveLog(id: i64, ended: RwSignal<u32>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let done = RwSignal::new(false);
    // Dropping the stream (when it ends, or with the component) closes it.
    let stream = StoredValue::new(None::<EventStream>);
    Effect::new(move |_| {
        stream.set_value(Some(follow_events(
            &format!("/api/runs/{id}/log"),
            move |kind, data| match kind {
                // Every connection replays the log from its start.
                "open" => text.set(String::new()),
                "log" => text.update(|t| t.push_str(&data)),
                "end" => done.set(true),
                _ => {}
            },
        )));
    });
    // Closed outside the stream's own callback, once it said the run ended.
    Effect::new(move |was_done: Option<bool>| {
        let now = done.get();
        if now && was_done != Some(true) {
            stream.set_value(None);
            ended.update(|n| *n += 1);
        }
        now
    });
    view! {
        <pre class="log" data-testid="run-log" data-done=move || done.get().to_string() aria-live="polite">{move || text.get()}</pre>
    }
}

/// A live page's card head: its title, the auto-refresh switch and the page's actions.
#[component]
fn LiveHead(
    title: &'static str,
    refresh: AutoRefresh,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="card-head">
            <h2>{title}</h2>
            <div class="head-actions">
                <AutoRefreshToggle refresh />
                {children.map(|c| c())}
            </div>
        </div>
    }
}

/// A button that runs `job` now through `action` (the page keys its data on the action).
#[component]
fn RunJobButton(
    action: ServerAction<RunJobNow>,
    job: &'static str,
    label: &'static str,
) -> impl IntoView {
    view! {
        <button class="primary" on:click=move |_| { action.dispatch(RunJobNow { id: job.into() }); }>{label}</button>
    }
}

/// Every CEO brief, newest first, with the facts it was written from.
#[component]
pub fn BriefsPage() -> impl IntoView {
    let write = ServerAction::<RunJobNow>::new();
    toast_on(write.value(), |id| format!("Writing a brief (run #{id})"));
    let refresh = use_auto_refresh();
    let briefs = data(
        move || (refresh.tick.get(), write.version().get()),
        |_| list_briefs(),
    );
    view! {
        <Title text="Briefs · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="CEO briefs" refresh>
                    <RunJobButton action=write job="ceo-brief" label="Write one now" />
                </LiveHead>
                {loaded(briefs, |bs| if bs.is_empty() {
                    view! { <p class="muted">"No brief yet. The ceo-brief job writes one every morning."</p> }.into_any()
                } else {
                    bs.into_iter().map(|b| view! {
                        <article class="brief" data-testid="brief">
                            <p class="muted">{format!("{} · source: {} · ", b.at, b.source)}<a href=format!("/runs/{}", b.run_id)>{format!("run #{}", b.run_id)}</a></p>
                            <div class="markdown" inner_html=b.html></div>
                            <details><summary>"The data it was built from"</summary><pre class="output">{b.facts}</pre></details>
                        </article>
                    }).collect_view().into_any()
                })}
            </section>
        </Layout>
    }
}

/// The latest finance snapshot: monthly chart, MRR, burn and runway, the months table.
#[component]
pub fn FinancePage() -> impl IntoView {
    let compute = ServerAction::<RunJobNow>::new();
    toast_on(compute.value(), |id| {
        format!("Computing finance metrics (run #{id})")
    });
    let refresh = use_auto_refresh();
    let finance = data(
        move || (refresh.tick.get(), compute.version().get()),
        |_| get_finance(),
    );
    view! {
        <Title text="Finance · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Finance" refresh>
                    <RunJobButton action=compute job="finance-metrics" label="Recompute" />
                </LiveHead>
                {loaded(finance, |f| match f {
                    None => view! { <p class="muted">"No snapshot yet. Run finance-metrics to take one."</p> }.into_any(),
                    Some(f) => view! {
                        <p class="muted">{format!("From {} · taken {} · ", f.source, f.at)}<a href=format!("/runs/{}", f.run_id)>{format!("run #{}", f.run_id)}</a></p>
                        <dl class="facts">
                            {f.latest.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                        </dl>
                        <h3>"Revenue, expenses and net by month"</h3>
                        <FinanceChart months=f.months />
                        <DataTable table=f.table />
                    }.into_any(),
                })}
            </section>
        </Layout>
    }
}

/// Success rate and durations per job over the last 24 hours.
#[component]
pub fn MetricsPage() -> impl IntoView {
    let refresh = use_auto_refresh();
    let metrics = data(move || refresh.tick.get(), |_| get_metrics());
    view! {
        <Title text="Metrics · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Metrics (last 24 hours)" refresh />
                {loaded(metrics, |m| if m.success.is_empty() {
                    view! { <p class="muted">"No finished runs in the last 24 hours."</p> }.into_any()
                } else {
                    view! {
                        <h3 data-testid="metrics">"Success rate per job"</h3>
                        <BarChart bars=m.success label="Success rate per job" max=100.0 />
                        <DataTable table=m.table />
                    }.into_any()
                })}
            </section>
        </Layout>
    }
}

/// Who changed what, newest first.
#[component]
pub fn AuditPage() -> impl IntoView {
    let audit = data(|| (), |_| list_audit());
    view! {
        <Title text="Audit · EchoPilot" />
        <Layout>
            <section class="card">
                <h2>"Audit log"</h2>
                <p class="muted">"Every change made through the API, the CLI or this dashboard, every log-in and log-out, and every wrong key. Secrets in the arguments are masked."</p>
                {loaded(audit, |rows| view! {
                    <div class="table-wrap">
                        <table class="audit" data-testid="audit">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"From"</th><th>"What"</th><th>"On"</th><th>"Arguments"</th><th>"Result"</th></tr></thead>
                            <tbody>
                                {rows.into_iter().map(|a| view! {
                                    <tr>
                                        <td>{a.at}</td><td>{a.actor}</td><td>{a.ip}</td><td><code>{a.action}</code></td>
                                        <td>{a.target}</td><td class="args"><code>{a.details}</code></td><td>{a.status}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
            </section>
        </Layout>
    }
}

/// Maintenance windows: when jobs do not run (their slots recorded `skipped: maintenance
/// <name>`); add one, recurring or one-off, for every job or chosen ones.
#[component]
pub fn MaintenancePage() -> impl IntoView {
    let add = ServerAction::<AddWindow>::new();
    let delete = ServerAction::<DeleteWindow>::new();
    toast_on(add.value(), |id| format!("Window {id} added"));
    toast_on(delete.value(), |_| "Window deleted".to_string());
    let windows = data(
        move || (add.version().get(), delete.version().get()),
        |_| list_windows(),
    );
    let recurring = RwSignal::new(true);
    let error = move || match add.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    view! {
        <Title text="Maintenance · EchoPilot" />
        <Layout>
            <section class="card" data-testid="maintenance">
                <h2>"Maintenance windows"</h2>
                <p class="muted">"While a window is open its jobs do not run: each slot it swallows is recorded as skipped, saying which window. The job editor's preview marks them."</p>
                {loaded(windows, move |rows| if rows.is_empty() {
                    view! { <p class="muted">"No windows."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap">
                            <table data-testid="windows">
                                <thead><tr><th>"Window"</th><th>"When"</th><th>"Jobs"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|w| {
                                        let (id, row) = (w.id.clone(), w.id.clone());
                                        view! {
                                            <tr data-testid="window-row" data-window=row>
                                                <td><strong>{w.name}</strong><div class="muted"><code>{w.id}</code></div></td>
                                                <td>{w.when}</td>
                                                <td>{w.jobs}</td>
                                                <td class="row-actions"><button class="danger-outline" on:click=move |_| { delete.dispatch(DeleteWindow { id: id.clone() }); }>"Delete"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                })}
            </section>
            <section class="card">
                <h2>"Add a window"</h2>
                <ActionForm action=add attr:class="job-form" attr:data-testid="window-form">
                    <div class="field"><label for="w-id">"Id"</label><input id="w-id" name="id" required pattern="[a-z0-9][a-z0-9\\-]*" placeholder="sunday-backups" /></div>
                    <div class="field"><label for="w-name">"Name"</label><input id="w-name" name="name" required placeholder="Sunday backups" /></div>
                    <div class="field">
                        <label for="w-kind">"Kind"</label>
                        <select id="w-kind" on:change=move |ev| recurring.set(event_target_value(&ev) == "recurring")>
                            <option value="recurring">"recurring"</option>
                            <option value="once">"one-off"</option>
                        </select>
                    </div>
                    <div class="field"><label for="w-tz">"Time zone"</label><input id="w-tz" name="timezone" value="UTC" /></div>
                    <Show when=move || recurring.get()
                        fallback=|| view! {
                            <div class="field"><label for="w-start">"Start (RFC 3339)"</label><input id="w-start" name="start" placeholder="2026-12-24T22:00:00Z" /></div>
                            <div class="field"><label for="w-end">"End (RFC 3339)"</label><input id="w-end" name="end" placeholder="2026-12-25T06:00:00Z" /></div>
                        }>
                        <div class="field"><label for="w-schedule">"Opens (cron, with seconds)"</label><input id="w-schedule" name="schedule" placeholder="0 0 2 * * SUN" /></div>
                        <div class="field"><label for="w-duration">"Stays open for"</label><input id="w-duration" name="duration" placeholder="2h" /></div>
                    </Show>
                    <div class="field wide"><label for="w-jobs">"Jobs (comma-separated ids; empty: every job)"</label><input id="w-jobs" name="jobs" /></div>
                    {move || error().map(|e| view! { <p class="error wide" role="alert" data-testid="window-error">{e}</p> })}
                    <div class="wide"><button type="submit" class="primary" data-testid="add-window">"Add window"</button></div>
                </ActionForm>
            </section>
        </Layout>
    }
}

/// The nodes sharing the store — heartbeat, runs, clock, who leads — and who led.
#[component]
pub fn NodesPage() -> impl IntoView {
    let refresh = use_auto_refresh();
    let cluster = data(move || refresh.tick.get(), |_| get_cluster());
    view! {
        <Title text="Nodes · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Nodes" refresh />
                {loaded(cluster, |c| {
                    let single = c.store == "sqlite";
                    view! {
                        <p class="muted">{if single {
                            "One node on SQLite: it leads for good. Several nodes share one PostgreSQL (--database-url)."
                        } else {
                            "Nodes sharing this PostgreSQL. The leader fires the schedules; every node runs work. A node whose heartbeat expires is gone: the leader rescues its runs."
                        }}</p>
                        <div class="table-wrap">
                            <table data-testid="nodes">
                                <thead><tr><th>"Node"</th><th>"Role"</th><th>"Heartbeat"</th><th>"Running"</th><th>"Clock offset"</th><th>"Version"</th><th>"PID"</th><th>"Started"</th></tr></thead>
                                <tbody>
                                    {c.nodes.into_iter().map(|n| view! {
                                        <tr class:gone=!n.alive data-leader=n.leader.to_string()>
                                            <td>
                                                <strong>{n.name}</strong>
                                                {n.this.then(|| view! { <span class="muted">" (this node)"</span> })}
                                                <br /><code class="muted">{n.id}</code>
                                            </td>
                                            <td>{if n.leader {
                                                view! { <span class="badge badge-running">"leader"</span> }.into_any()
                                            } else if n.alive {
                                                view! { <span>"follower"</span> }.into_any()
                                            } else {
                                                view! { <span class="badge badge-stalled">"gone"</span> }.into_any()
                                            }}</td>
                                            <td>{n.heartbeat}</td>
                                            <td>{n.running}</td>
                                            <td class:warn=n.clock_warning title=if n.clock_warning { "more than a second off: check its time sync" } else { "" }>{n.clock_offset}</td>
                                            <td>{n.version}</td>
                                            <td>{n.pid}</td>
                                            <td>{n.started}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        {(!single).then(|| view! {
                            <h3>"Leader history"</h3>
                            <div class="table-wrap">
                                <table data-testid="leaders">
                                    <thead><tr><th>"Epoch"</th><th>"Holder"</th><th>"From"</th><th>"Until"</th><th>"Lasted"</th><th>"Ended"</th></tr></thead>
                                    <tbody>
                                        {c.leaders.into_iter().map(|t| view! {
                                            <tr>
                                                <td>{t.epoch}</td><td><code>{t.holder}</code></td><td>{t.from}</td>
                                                <td>{if t.until.is_empty() { "now".to_string() } else { t.until }}</td>
                                                <td>{t.lasted}</td><td>{t.how}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        })}
                    }
                })}
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

/// The pill class for an incident, delivery or check state.
fn pill(state: &str) -> &'static str {
    match state {
        "open" | "failed" | "down" => "pill pill-failed",
        "closed" | "sent" | "up" => "pill pill-succeeded",
        "suppressed" => "pill pill-paused",
        "pending" | "sending" => "pill pill-queued",
        "late" => "pill pill-warn",
        _ => "pill pill-skipped",
    }
}

/// Incidents, newest open first, each with the notices it sent; a compact list on the
/// overview, the full timeline on the Alerts page.
#[component]
fn IncidentList(rows: Vec<IncidentRow>, #[prop(optional)] compact: bool) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted" data-testid="no-incidents">"No incidents."</p> }
            .into_any();
    }
    view! {
        <ul class="incidents" data-testid="incidents">
            {rows.into_iter().map(|i| {
                let state = if i.suppressed.is_some() { "suppressed" } else if i.open { "open" } else { "closed" };
                let subject = match &i.job {
                    Some(j) => view! { <a href=format!("/jobs/{j}")>{i.subject.clone()}</a> }.into_any(),
                    None => view! { <span>{i.subject.clone()}</span> }.into_any(),
                };
                let run = i.run.map(|r| view! { " · " <a href=format!("/runs/{r}")>{format!("run {r}")}</a> });
                let when = if i.open { format!("opened {}", i.opened) } else { format!("{} → {}", i.opened, i.closed) };
                view! {
                    <li class="incident" data-testid="incident" data-state=state data-rule=i.rule.clone()>
                        <div class="incident-head">
                            <span class=pill(state)>{state}</span>
                            <strong>{subject}</strong>
                            <span class="muted">{format!(" · rule {} · #{}", i.rule, i.id)}</span>
                            {run}
                        </div>
                        <p class="incident-message">{i.message.clone()}</p>
                        <p class="muted">{when}</p>
                        {i.suppressed.clone().map(|s| view! { <p class="muted">{format!("Nobody was notified — {s}")}</p> })}
                        {(!compact && !i.deliveries.is_empty()).then(|| view! {
                            <div class="table-wrap">
                                <table class="deliveries" data-testid="deliveries">
                                    <thead><tr><th>"Notice"</th><th>"Channel"</th><th>"Status"</th><th>"Attempts"</th><th>"Answer"</th><th>"When"</th></tr></thead>
                                    <tbody>
                                        {i.deliveries.into_iter().map(|d| view! {
                                            <tr data-testid="delivery" data-status=d.status.clone()>
                                                <td>{d.event}</td>
                                                <td><code>{d.channel}</code></td>
                                                <td><span class=pill(&d.status)>{d.status.clone()}</span></td>
                                                <td>{d.attempts}</td>
                                                <td>{d.code}{(!d.error.is_empty()).then(|| view! { <div class="error">{d.error.clone()}</div> })}</td>
                                                <td>{d.at}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

/// Open incidents, on top of the overview (nothing when there are none).
#[component]
pub fn OpenIncidents() -> impl IntoView {
    let refresh = use_auto_refresh();
    let incidents = data(move || refresh.tick.get(), |_| list_incidents());
    view! {
        <Transition fallback=|| ()>
            {move || incidents.get().and_then(|r| r.ok()).map(|rows| {
                let open: Vec<IncidentRow> = rows.into_iter().filter(|i| i.open && i.suppressed.is_none()).collect();
                (!open.is_empty()).then(|| view! {
                    <section class="card card-alert" data-testid="open-incidents">
                        <div class="card-head">
                            <h2>{format!("Open incidents ({})", open.len())}</h2>
                            <a href="/alerts">"All alerts →"</a>
                        </div>
                        <IncidentList rows=open compact=true />
                    </section>
                })
            })}
        </Transition>
    }
}

/// Alerts: incidents with the deliveries each made; the channels notices go to (with a
/// test button) and the rules that open incidents.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let add_channel = ServerAction::<AddChannel>::new();
    let delete_channel = ServerAction::<DeleteChannel>::new();
    let test = ServerAction::<TestChannel>::new();
    let add_rule = ServerAction::<AddRule>::new();
    let delete_rule = ServerAction::<DeleteRule>::new();
    toast_on(add_channel.value(), |id| format!("Channel {id} added"));
    toast_on(delete_channel.value(), |_| "Channel deleted".into());
    toast_on(add_rule.value(), |id| format!("Rule {id} added"));
    toast_on(delete_rule.value(), |_| "Rule deleted".into());
    let tested = move || {
        test.value().get().map(|r| match r {
            Ok(text) => (text.contains("taken"), text),
            Err(e) => (false, error_text(&e)),
        })
    };
    let refresh = use_auto_refresh();
    let incidents = data(
        move || (refresh.tick.get(), test.version().get()),
        |_| list_incidents(),
    );
    let channels = data(
        move || (add_channel.version().get(), delete_channel.version().get()),
        |_| list_channels(),
    );
    let rules = data(
        move || (add_rule.version().get(), delete_rule.version().get()),
        |_| list_rules(),
    );
    let email = RwSignal::new(false);
    let channel_error = move || match add_channel.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    let rule_error = move || match add_rule.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    view! {
        <Title text="Alerts · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Incidents" refresh />
                <p class="muted">"A rule's condition opens one incident per job or check; it notifies once (and on its reminder cooldown), and again when it recovers. Paused jobs and maintenance windows keep it quiet, and the incident says so."</p>
                {loaded(incidents, |rows| view! { <IncidentList rows /> })}
            </section>
            <section class="card" data-testid="channels">
                <h2>"Channels"</h2>
                {move || tested().map(|(ok, text)| view! { <p class=if ok { "ok" } else { "error" } role="status" data-testid="test-result">{text}</p> })}
                {loaded(channels, move |rows| if rows.is_empty() {
                    view! { <p class="muted">"No channels yet: add one below."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Channel"</th><th>"Kind"</th><th>"Goes to"</th><th>"Secret"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|c| {
                                        let (t, d, row) = (c.id.clone(), c.id.clone(), c.id.clone());
                                        view! {
                                            <tr data-testid="channel-row" data-channel=row>
                                                <td><code>{c.id}</code></td>
                                                <td>{c.kind}</td>
                                                <td class="wrap">{c.target}</td>
                                                <td>{if c.secret { "set (hidden)" } else { "—" }}</td>
                                                <td class="row-actions">
                                                    <button on:click=move |_| { test.dispatch(TestChannel { id: t.clone() }); } data-testid="test-channel">"Send test"</button>
                                                    <button class="danger-outline" on:click=move |_| { delete_channel.dispatch(DeleteChannel { id: d.clone() }); }>"Delete"</button>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                })}
                <h3>"Add a channel"</h3>
                <ActionForm action=add_channel attr:class="job-form" attr:data-testid="channel-form">
                    <div class="field"><label for="c-id">"Id"</label><input id="c-id" name="id" required pattern="[a-z0-9][a-z0-9\\-]*" placeholder="ops-webhook" /></div>
                    <div class="field">
                        <label for="c-kind">"Kind"</label>
                        <select id="c-kind" name="kind" on:change=move |ev| email.set(event_target_value(&ev) == "email")>
                            <option value="webhook">"webhook (signed JSON)"</option>
                            <option value="slack">"Slack"</option>
                            <option value="discord">"Discord"</option>
                            <option value="ntfy">"ntfy"</option>
                            <option value="email">"email (SMTP)"</option>
                        </select>
                    </div>
                    <Show when=move || email.get()
                        fallback=|| view! {
                            <div class="field wide"><label for="c-url">"URL"</label><input id="c-url" name="url" placeholder="https://hooks.example.com/echopilot" /></div>
                            <div class="field"><label for="c-secret">"Signing secret (webhook)"</label><input id="c-secret" name="secret" type="password" autocomplete="off" /></div>
                        }>
                        <div class="field"><label for="c-host">"SMTP host"</label><input id="c-host" name="host" placeholder="smtp.example.com" /></div>
                        <div class="field"><label for="c-port">"Port"</label><input id="c-port" name="port" inputmode="numeric" placeholder="587" /></div>
                        <div class="field">
                            <label for="c-tls">"Security"</label>
                            <select id="c-tls" name="tls">
                                <option value="starttls">"STARTTLS (587)"</option>
                                <option value="tls">"TLS (465)"</option>
                                <option value="none">"none (local relay)"</option>
                            </select>
                        </div>
                        <div class="field"><label for="c-from">"From"</label><input id="c-from" name="from" placeholder="echopilot@example.com" /></div>
                        <div class="field wide"><label for="c-to">"To (comma-separated)"</label><input id="c-to" name="to" placeholder="oncall@example.com" /></div>
                        <div class="field"><label for="c-user">"User"</label><input id="c-user" name="user" autocomplete="off" /></div>
                        <div class="field"><label for="c-password">"Password"</label><input id="c-password" name="password" type="password" autocomplete="off" /></div>
                    </Show>
                    {move || channel_error().map(|e| view! { <p class="error wide" role="alert" data-testid="channel-error">{e}</p> })}
                    <div class="wide"><button type="submit" class="primary" data-testid="add-channel">"Add channel"</button></div>
                </ActionForm>
            </section>
            <section class="card" data-testid="rules">
                <h2>"Rules"</h2>
                {loaded(rules, move |rows| if rows.is_empty() {
                    view! { <p class="muted">"No rules: nothing alerts yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Rule"</th><th>"On"</th><th>"Watches"</th><th>"Details"</th><th>"Channels"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|r| {
                                        let (d, row) = (r.id.clone(), r.id.clone());
                                        view! {
                                            <tr data-testid="rule-row" data-rule=row>
                                                <td><code>{r.id}</code></td>
                                                <td>{r.on}</td>
                                                <td>{r.scope}</td>
                                                <td>{r.detail}</td>
                                                <td>{r.channels}</td>
                                                <td class="row-actions"><button class="danger-outline" on:click=move |_| { delete_rule.dispatch(DeleteRule { id: d.clone() }); }>"Delete"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                })}
                <h3>"Add a rule"</h3>
                <ActionForm action=add_rule attr:class="job-form" attr:data-testid="rule-form">
                    <div class="field"><label for="r-id">"Id"</label><input id="r-id" name="id" required pattern="[a-z0-9][a-z0-9\\-]*" placeholder="nightly-failures" /></div>
                    <div class="field">
                        <label for="r-on">"On"</label>
                        <select id="r-on" name="on">
                            <option value="failed">"a run failed or timed out"</option>
                            <option value="consecutive_failures">"N failures in a row"</option>
                            <option value="failures_in_window">"N failures within a window"</option>
                            <option value="missed">"a slot missed (or a check down)"</option>
                            <option value="late">"a run late (or a check late)"</option>
                            <option value="recovered">"recovery only"</option>
                            <option value="system">"EchoPilot itself"</option>
                        </select>
                    </div>
                    <div class="field"><label for="r-channels">"Channels (comma-separated)"</label><input id="r-channels" name="channels" required /></div>
                    <div class="field"><label for="r-jobs">"Jobs (empty: every job)"</label><input id="r-jobs" name="jobs" /></div>
                    <div class="field"><label for="r-checks">"Checks"</label><input id="r-checks" name="checks" /></div>
                    <div class="field"><label for="r-threshold">"N"</label><input id="r-threshold" name="threshold" inputmode="numeric" /></div>
                    <div class="field"><label for="r-window">"Window"</label><input id="r-window" name="window" placeholder="1h" /></div>
                    <div class="field"><label for="r-grace">"Grace (late)"</label><input id="r-grace" name="grace" placeholder="60s" /></div>
                    <div class="field"><label for="r-remind">"Remind every"</label><input id="r-remind" name="remind_every" placeholder="4h" /></div>
                    {move || rule_error().map(|e| view! { <p class="error wide" role="alert" data-testid="rule-error">{e}</p> })}
                    <div class="wide"><button type="submit" class="primary" data-testid="add-rule">"Add rule"</button></div>
                </ActionForm>
            </section>
        </Layout>
    }
}

/// A check's newest pings: when, what it said, from where, the start of its body.
#[component]
fn PingHistory(id: String) -> impl IntoView {
    let pings = data(move || id.clone(), check_pings);
    view! {
        {loaded(pings, |rows| if rows.is_empty() {
            view! { <p class="muted">"No pings yet."</p> }.into_any()
        } else {
            view! {
                <table class="deliveries" data-testid="pings">
                    <thead><tr><th>"When"</th><th>"Ping"</th><th>"From"</th><th>"Body"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|p| view! {
                            <tr data-testid="ping" data-kind=p.kind.clone()>
                                <td>{p.at}</td>
                                <td><span class=pill(match p.kind.as_str() { "fail" => "failed", "start" => "pending", _ => "up" })>{p.kind.clone()}</span></td>
                                <td>{p.source}</td>
                                <td class="wrap"><code>{p.body}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        })}
    }
}

/// Inbound checks: crons that run elsewhere ping their URL; up, late or down from the
/// pings.
#[component]
pub fn ChecksPage() -> impl IntoView {
    let add = ServerAction::<AddCheck>::new();
    let delete = ServerAction::<DeleteCheck>::new();
    toast_on(add.value(), |id| format!("Check {id} added"));
    toast_on(delete.value(), |_| "Check deleted".into());
    let refresh = use_auto_refresh();
    let checks = data(
        move || {
            (
                refresh.tick.get(),
                add.version().get(),
                delete.version().get(),
            )
        },
        |_| list_checks(),
    );
    let error = move || match add.value().get() {
        Some(Err(e)) => Some(error_text(&e)),
        _ => None,
    };
    view! {
        <Title text="Checks · EchoPilot" />
        <Layout>
            <section class="card" data-testid="checks">
                <LiveHead title="Inbound checks" refresh />
                <p class="muted">"A cron that runs elsewhere calls its ping URL when it is done (append /start when it begins, /fail when it failed). A check is late past its expected time and down past its grace; alert rules on missed or late watch them."</p>
                {loaded(checks, move |rows| if rows.is_empty() {
                    view! { <p class="muted">"No checks."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap">
                            <table>
                                <thead><tr><th>"Check"</th><th>"State"</th><th>"Expected"</th><th>"Last ping"</th><th>"Due"</th><th>"Ping URL"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|c| {
                                        let (d, row, h) = (c.id.clone(), c.id.clone(), c.id.clone());
                                        let shown = RwSignal::new(false);
                                        view! {
                                            <tr data-testid="check-row" data-check=row data-state=c.state.clone()>
                                                <td><strong>{c.name}</strong><div class="muted"><code>{c.id}</code></div></td>
                                                <td><span class=pill(&c.state)>{c.state.clone()}</span></td>
                                                <td>{c.expect}</td>
                                                <td>{c.last_ping}</td>
                                                <td>{c.due}</td>
                                                <td class="wrap"><code>{c.ping_url}</code></td>
                                                <td class="row-actions">
                                                    <button data-testid="ping-history" aria-expanded=move || shown.get().to_string() on:click=move |_| shown.update(|s| *s = !*s)>"History"</button>
                                                    <button class="danger-outline" on:click=move |_| { delete.dispatch(DeleteCheck { id: d.clone() }); }>"Delete"</button>
                                                </td>
                                            </tr>
                                            <Show when=move || shown.get()>
                                                <tr class="ask-row"><td colspan="7"><PingHistory id=h.clone() /></td></tr>
                                            </Show>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                })}
            </section>
            <section class="card">
                <h2>"Add a check"</h2>
                <ActionForm action=add attr:class="job-form" attr:data-testid="check-form">
                    <div class="field"><label for="k-id">"Id"</label><input id="k-id" name="id" required pattern="[a-z0-9][a-z0-9\\-]*" placeholder="offsite-backup" /></div>
                    <div class="field"><label for="k-name">"Name"</label><input id="k-name" name="name" placeholder="Off-site backup" /></div>
                    <div class="field"><label for="k-period">"Every (or a schedule)"</label><input id="k-period" name="period" placeholder="1d" /></div>
                    <div class="field"><label for="k-schedule">"Schedule (cron, with seconds)"</label><input id="k-schedule" name="schedule" placeholder="0 0 3 * * *" /></div>
                    <div class="field"><label for="k-tz">"Time zone"</label><input id="k-tz" name="timezone" value="UTC" /></div>
                    <div class="field"><label for="k-grace">"Grace"</label><input id="k-grace" name="grace" required placeholder="30m" /></div>
                    {move || error().map(|e| view! { <p class="error wide" role="alert" data-testid="check-error">{e}</p> })}
                    <div class="wide"><button type="submit" class="primary" data-testid="add-check">"Add check"</button></div>
                </ActionForm>
            </section>
        </Layout>
    }
}
