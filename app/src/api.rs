//! Server functions. Each is a thin call into the engine — the same call its REST twin in
//! the server makes — and maps the result to a wire type. Authentication and CSRF checks
//! happen in the server's middleware before any of these run.

use crate::wire::SchedulerStatus;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;

    /// The engine handle the server provides as context.
    pub fn engine() -> Result<engine::Engine, ServerFnError> {
        use_context::<engine::Engine>()
            .ok_or_else(|| ServerFnError::new("the engine is not available"))
    }

    /// Engine errors are logged with their cause and shown as a sentence without internals.
    pub fn internal(e: engine::EngineError) -> ServerFnError {
        leptos::logging::error!("scheduler control failed: {e}");
        ServerFnError::new("the scheduler could not record the change; see the server log")
    }
}

#[server(prefix = "/api/fn")]
pub async fn get_status() -> Result<SchedulerStatus, ServerFnError> {
    Ok(ssr::engine()?.status().into())
}

#[server(prefix = "/api/fn")]
pub async fn start_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    let status = ssr::engine()?.start().await.map_err(ssr::internal)?;
    Ok(status.into())
}

#[server(prefix = "/api/fn")]
pub async fn stop_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    let status = ssr::engine()?.stop().await.map_err(ssr::internal)?;
    Ok(status.into())
}

#[server(prefix = "/api/fn")]
pub async fn restart_scheduler() -> Result<SchedulerStatus, ServerFnError> {
    let status = ssr::engine()?.restart().await.map_err(ssr::internal)?;
    Ok(status.into())
}
