//! One component per page.

use crate::api::*;
use crate::components::*;
use crate::wire::{JobForm, JobRow};
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
            <section class="card" aria-labelledby="scheduler-heading">
                <div class="card-head">
                    <h2 id="scheduler-heading">"Scheduler"</h2>
                    <AutoRefreshToggle refresh />
                </div>
                {loaded(status, |s| view! {
                    <div class="status-line"><StatusBadge state=s.state /></div>
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

/// Every job, with its schedule in words, next run, last outcome and controls.
#[component]
pub fn JobsPage() -> impl IntoView {
    let refresh = use_auto_refresh();
    let run = ServerAction::<RunJobNow>::new();
    let enable = ServerAction::<SetJobEnabled>::new();
    let delete = ServerAction::<DeleteJob>::new();
    toast_on(run.value(), |id| format!("Run #{id} started"));
    toast_on(enable.value(), |_| "Job updated".to_string());
    toast_on(delete.value(), |_| "Job deleted".to_string());
    let jobs = data(
        move || {
            (
                refresh.tick.get(),
                run.version().get(),
                enable.version().get(),
                delete.version().get(),
            )
        },
        |_| list_jobs(),
    );
    view! {
        <Title text="Jobs · EchoPilot" />
        <Layout>
            <section class="card">
                <LiveHead title="Jobs" refresh>
                    <a class="button primary" href="/jobs/new" data-testid="new-job">"New job"</a>
                </LiveHead>
                {loaded(jobs, move |page| view! {
                    <div class="table-wrap">
                        <table class="jobs">
                            <thead><tr><th>"Job"</th><th>"Schedule"</th><th>"Next run"</th><th>"Last"</th><th>"Enabled"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody>
                                {page.jobs.into_iter().map(|j| view! { <JobLine job=j run enable delete /> }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                })}
            </section>
        </Layout>
    }
}

#[component]
fn JobLine(
    job: JobRow,
    run: ServerAction<RunJobNow>,
    enable: ServerAction<SetJobEnabled>,
    delete: ServerAction<DeleteJob>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let id = job.id.clone();
    let (id1, id2, id3) = (id.clone(), id.clone(), id.clone());
    view! {
        <tr data-testid="job-row" data-job=id.clone()>
            <td>
                <a href=format!("/jobs/{id}")><strong>{job.name}</strong></a>
                <div class="muted"><code>{id.clone()}</code>" · "{job.kind}</div>
            </td>
            <td>{job.words}<div class="muted"><code>{job.schedule}</code>" "{job.timezone}</div></td>
            <td>{job.next_run.unwrap_or_else(|| "—".into())}</td>
            <td>{match (job.last_status, job.last_run) {
                (Some(s), Some(r)) => view! { <a href=format!("/runs/{r}")><RunStatusPill status=s /></a> }.into_any(),
                _ => view! { <span class="muted">"never"</span> }.into_any(),
            }}</td>
            <td>
                <input type="checkbox" role="switch" checked=job.enabled data-testid="enabled"
                    aria-label=format!("{id} enabled")
                    on:change=move |ev| { enable.dispatch(SetJobEnabled { id: id1.clone(), enabled: event_target_checked(&ev) }); } />
            </td>
            <td class="row-actions">
                <button data-testid="run-now" on:click=move |_| { run.dispatch(RunJobNow { id: id2.clone() }); }>"Run now"</button>
                <Show when=move || confirming.get()
                    fallback=move || view! { <button class="danger-outline" on:click=move |_| confirming.set(true)>"Delete"</button> }>
                    {
                        let id3 = id3.clone();
                        view! {
                            <button class="danger" data-testid="confirm-delete"
                                on:click=move |_| { delete.dispatch(DeleteJob { id: id3.clone() }); }>"Delete for good"</button>
                            <button on:click=move |_| confirming.set(false)>"Keep"</button>
                        }
                    }
                </Show>
            </td>
        </tr>
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
        </Layout>
    }
}

#[component]
fn JobFormView(form: JobForm, original: String) -> impl IntoView {
    let save = ServerAction::<SaveJob>::new();
    let schedule = RwSignal::new(form.schedule.clone());
    let timezone = RwSignal::new(form.timezone.clone());
    let preview = data(
        move || (schedule.get(), timezone.get()),
        |(s, t)| preview_schedule(s, t),
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
                    pattern="[a-z0-9][a-z0-9_\\-]*" aria-describedby="id-help" />
                <small id="id-help" class="muted">"Lowercase letters, digits, - and _."</small>
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
                                    {p.slots.into_iter().map(|s| view! {
                                        <li>
                                            {s.local}<span class="muted">{format!(" · {}", s.utc)}</span>
                                            {s.change.map(|c| view! { <span class="pill pill-warn" title="The zone's UTC offset changes before this run">{format!("DST {c}")}</span> })}
                                        </li>
                                    }).collect_view()}
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
    let page = data(
        move || {
            (
                get("job"),
                get("status"),
                get("before").parse::<i64>().ok(),
                refresh.tick.get(),
            )
        },
        |(job, status, before, _)| list_runs(job, status, before),
    );
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
                        <RunsTable runs=p.runs />
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
    let detail = data(move || (id(), ended.get()), |(id, _)| get_run(id));
    view! {
        <Title text="Run · EchoPilot" />
        <Layout>
            {loaded(detail, move |d| {
                let r = d.run;
                view! {
                    <section class="card">
                        <div class="card-head">
                            <h2>{format!("Run #{} of ", r.id)}<a href=format!("/jobs/{}", r.job)><code>{r.job.clone()}</code></a></h2>
                            <RunStatusPill status=r.status.clone() />
                        </div>
                        <dl class="facts">
                            <div><dt>"Trigger"</dt><dd>{r.trigger}</dd></div>
                            <div><dt>"Attempt"</dt><dd>{r.attempt}</dd></div>
                            <div><dt>"Scheduled"</dt><dd>{d.scheduled.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Started"</dt><dd>{d.started.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Ended"</dt><dd>{d.ended.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Took"</dt><dd>{r.duration.unwrap_or_else(|| "—".into())}</dd></div>
                            <div><dt>"Node"</dt><dd>{d.node}</dd></div>
                        </dl>
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
