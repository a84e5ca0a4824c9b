//! The router and its lazily loaded pages.
//!
//! Each page's view is split out of the main WASM file (`cargo leptos build --split`): the
//! browser downloads the frame (router, reactive system, hydration) plus the chunks of the
//! page it opens, and the rest only when the operator navigates there. The server records
//! which chunks a render used and preloads them in the page's head, so a first visit does
//! not wait on a round trip per chunk.

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
                <Route path=path!("/stats") view={Lazy::<Metrics>::new()} />
                <Route path=path!("/maintenance") view={Lazy::<Maintenance>::new()} />
                <Route path=path!("/alerts") view={Lazy::<Alerts>::new()} />
                <Route path=path!("/checks") view={Lazy::<Checks>::new()} />
                <Route path=path!("/audit") view={Lazy::<Audit>::new()} />
                <Route path=path!("/nodes") view={Lazy::<Nodes>::new()} />
                <Route path=path!("/login") view=pages::LoginPage />
            </Routes>
        </Router>
    }
}

// Pages load their own data (their resources follow the auto-refresh toggle and the URL),
// so a route carries none: `data()` is empty and `view()` — the part split out — renders
// the page. The split function is named after the route type, so each needs its own.
macro_rules! lazy_page {
    ($($route:ident => $page:path),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                Self
            }
            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    )*};
}

lazy_page! {
    Overview => pages::OverviewPage,
    Jobs => pages::JobsPage,
    JobEdit => pages::JobEditPage,
    Runs => pages::RunsPage,
    Maintenance => pages::MaintenancePage,
    Alerts => pages::AlertsPage,
    Checks => pages::ChecksPage,
    Run => pages::RunPage,
    Briefs => pages::BriefsPage,
    Finance => pages::FinancePage,
    Metrics => pages::MetricsPage,
    Audit => pages::AuditPage,
    Nodes => pages::NodesPage,
}
