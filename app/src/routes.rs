//! The router and its lazily loaded pages.
//!
//! Each page's view is split out of the main WASM file (`cargo leptos build --split`): the
//! browser downloads the frame (router, reactive system, hydration) plus the chunks of the
//! page it opens, and the rest only when the operator navigates there. The server records
//! which chunks a render used and preloads them in the page's head, so a first visit does
//! not wait on a round trip per chunk.
//!
//! `#[lazy_route]` names each split function after its location in this file, so every
//! page gets its own written-out impl (a `macro_rules!` would give them one location).

use crate::pages;
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{lazy_route, path, Lazy, LazyRoute};

/// The dashboard's routes.
#[component]
pub fn DashboardRouter() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=pages::NotFoundPage>
                <Route path=path!("/") view={Lazy::<Overview>::new()} />
                <Route path=path!("/jobs") view={Lazy::<Jobs>::new()} />
                <Route path=path!("/jobs/new") view={Lazy::<JobEdit>::new()} />
                <Route path=path!("/jobs/:id") view={Lazy::<JobEdit>::new()} />
                <Route path=path!("/runs") view={Lazy::<Runs>::new()} />
                <Route path=path!("/runs/:id") view={Lazy::<Run>::new()} />
                <Route path=path!("/briefs") view={Lazy::<Briefs>::new()} />
                <Route path=path!("/finance") view={Lazy::<Finance>::new()} />
                <Route path=path!("/metrics") view={Lazy::<Metrics>::new()} />
                <Route path=path!("/audit") view={Lazy::<Audit>::new()} />
                <Route path=path!("/login") view=pages::LoginPage />
            </Routes>
        </Router>
    }
}

// Pages load their own data (their resources follow the auto-refresh toggle and the URL),
// so the routes carry none.

struct Overview;
#[lazy_route]
impl LazyRoute for Overview {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::OverviewPage().into_any()
    }
}

struct Jobs;
#[lazy_route]
impl LazyRoute for Jobs {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::JobsPage().into_any()
    }
}

struct JobEdit;
#[lazy_route]
impl LazyRoute for JobEdit {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::JobEditPage().into_any()
    }
}

struct Runs;
#[lazy_route]
impl LazyRoute for Runs {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::RunsPage().into_any()
    }
}

struct Run;
#[lazy_route]
impl LazyRoute for Run {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::RunPage().into_any()
    }
}

struct Briefs;
#[lazy_route]
impl LazyRoute for Briefs {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::BriefsPage().into_any()
    }
}

struct Finance;
#[lazy_route]
impl LazyRoute for Finance {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::FinancePage().into_any()
    }
}

struct Metrics;
#[lazy_route]
impl LazyRoute for Metrics {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::MetricsPage().into_any()
    }
}

struct Audit;
#[lazy_route]
impl LazyRoute for Audit {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        pages::AuditPage().into_any()
    }
}
