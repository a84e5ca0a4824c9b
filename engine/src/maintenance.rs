//! Maintenance windows' use cases: list, read, create, replace, delete. Windows live in
//! the store (announced, so every node follows), and in memory here for the leader's
//! claims to ask, for each slot, whether a window swallows it ([`crate::pause::swallowed`]).

use crate::error::{EngineError, Result};
use crate::model::{OpenWindow, ValidationError, Window, WindowSpec};
use crate::Engine;

impl Engine {
    /// Every window, by id.
    pub fn list_windows(&self) -> Vec<Window> {
        crate::scheduler::windows(self)
            .iter()
            .map(|w| w.window.clone())
            .collect()
    }

    pub fn get_window(&self, id: &str) -> Result<Window> {
        self.list_windows()
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("no maintenance window with id {id:?}")))
    }

    /// Adds a window (`Conflict` if its id exists).
    pub async fn create_window(&self, spec: WindowSpec) -> Result<Window> {
        let open = self.check_window(spec, None)?;
        if !self
            .inner
            .store
            .put_window(&open.window, true, self.now())
            .await?
        {
            return Err(EngineError::Conflict(format!(
                "a maintenance window with id {:?} already exists",
                open.window.id
            )));
        }
        self.windows_changed("window_created", &open.window.id)
            .await;
        Ok(open.window)
    }

    /// Replaces window `id`.
    pub async fn update_window(&self, id: &str, spec: WindowSpec) -> Result<Window> {
        let open = self.check_window(spec, Some(id))?;
        if !self
            .inner
            .store
            .put_window(&open.window, false, self.now())
            .await?
        {
            return Err(EngineError::NotFound(format!(
                "no maintenance window with id {id:?}"
            )));
        }
        self.windows_changed("window_updated", id).await;
        Ok(open.window)
    }

    pub async fn delete_window(&self, id: &str) -> Result<()> {
        if !self.inner.store.delete_window(id).await? {
            return Err(EngineError::NotFound(format!(
                "no maintenance window with id {id:?}"
            )));
        }
        self.windows_changed("window_deleted", id).await;
        Ok(())
    }

    /// A window that checks out, for jobs that exist.
    fn check_window(&self, spec: WindowSpec, id: Option<&str>) -> Result<OpenWindow> {
        let open = spec.check(id)?;
        for job in open.window.jobs.iter().flatten() {
            if self.job(job).is_err() {
                return Err(ValidationError {
                    field: "jobs".into(),
                    message: format!("no job with id {job:?}"),
                }
                .into());
            }
        }
        Ok(open)
    }

    async fn windows_changed(&self, event: &str, id: &str) {
        self.follow_windows().await;
        self.event(event, serde_json::json!({ "window": id }));
    }

    /// Re-reads the windows from the store (here after a change, or another node's).
    pub(crate) async fn follow_windows(&self) {
        match self.inner.store.list_windows().await {
            Ok(stored) => crate::scheduler::set_windows(
                self,
                stored
                    .into_iter()
                    .filter_map(OpenWindow::from_stored)
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "cannot read the maintenance windows")
            }
        }
    }
}
