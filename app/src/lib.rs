//! EchoPilot's dashboard: Leptos pages and components, the server functions they call,
//! and the wire types both sides share.
//!
//! - [`wire`]: serde types that cross the network (wasm-safe, no engine types).
//! - [`api`]: server functions; each is a thin call into the engine.
//! - `ssr` (server only): engine types mapped to wire types, markdown rendering.
//! - [`components`]: small reusable pieces (status badge, auto-refresh toggle).
//! - [`pages`]: one component per page.
//! - `routes`: the router; every page but the login is loaded on demand.
//!
//! With `ssr` this crate renders on the server; with `hydrate` it is compiled to WASM by
//! `frontend` and takes over the server-rendered page.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod pages;
mod routes;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" href="/favicon.ico" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The dashboard's router.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::provide_toasts();
    components::provide_pauses();
    view! {
        <Stylesheet id="leptos" href="/pkg/echopilot.css" />
        <Title text="EchoPilot" />
        <routes::DashboardRouter />
        <components::ToastList />
    }
}
