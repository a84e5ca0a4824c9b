//! Jobs as code: a file of job specs applied at once — a plan first (added, changed field
//! by field, removed with `prune`), then, unless it is a dry run, every change in one
//! store transaction. Each job applied is remembered by the digest of its definition, so
//! a job edited by other means since shows as drifted.

use crate::error::{EngineError, Result};
use crate::model::{Job, JobSpec, ValidationError};
use crate::store::JobsPlan;
use crate::Engine;
use serde::Serialize;
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};

/// What applying a file does (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Applied {
    pub dry_run: bool,
    pub added: Vec<String>,
    /// Each changed job with its changed fields (`{field: {from, to}}`, secrets masked).
    pub changed: Vec<Changed>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Changed {
    pub id: String,
    /// `{field: {from, to}}`.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The digest of what a job is (its definition, params in clear): what drift compares.
pub(crate) fn digest(job: &Job) -> String {
    let mut j = job.clone();
    j.next_run_at = None;
    j.paused = None;
    j.from_file = false;
    j.drift = false;
    hex::encode(sha2::Sha256::digest(
        serde_json::to_string(&j).unwrap_or_default(),
    ))
}

fn at(i: usize, e: ValidationError) -> EngineError {
    EngineError::Invalid(ValidationError {
        field: format!("jobs[{i}].{}", e.field),
        message: e.message,
    })
}

impl Engine {
    /// The definitions of every job, secrets masked, as `apply` takes them back (a masked
    /// secret sent back keeps the stored one).
    pub fn export_jobs(&self) -> Vec<serde_json::Value> {
        self.list_jobs()
            .into_iter()
            .map(|j| {
                let mut v = serde_json::to_value(j).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    for said_by_the_store in ["next_run_at", "paused", "from_file", "drift"] {
                        m.remove(said_by_the_store);
                    }
                }
                v
            })
            .collect()
    }

    /// Applies `specs` (every one checked first: `Invalid` naming `jobs[i].field`, nothing
    /// written); with `prune`, jobs the file does not name are deleted.
    pub async fn apply_jobs(
        &self,
        specs: Vec<JobSpec>,
        prune: bool,
        dry_run: bool,
    ) -> Result<Applied> {
        let current: HashMap<String, Job> = self
            .inner
            .jobs
            .list()
            .into_iter()
            .map(|j| (j.id.clone(), j))
            .collect();
        let mut wanted: Vec<Job> = Vec::new();
        for (i, mut spec) in specs.into_iter().enumerate() {
            let id = spec.id.clone().ok_or_else(|| {
                at(
                    i,
                    ValidationError {
                        field: "id".into(),
                        message: "is required".into(),
                    },
                )
            })?;
            if wanted.iter().any(|j| j.id == id) {
                return Err(at(
                    i,
                    ValidationError {
                        field: "id".into(),
                        message: format!("{id:?} is in the file twice"),
                    },
                ));
            }
            if let Some(before) = current.get(&id) {
                spec.params = spec
                    .params
                    .map(|p| crate::secrets::restore_params(p, &before.params));
            }
            let (job, _) = Job::from_spec(spec, None).map_err(|e| at(i, e))?;
            self.check_kind(&job).map_err(|e| match e {
                EngineError::Invalid(v) => at(i, v),
                other => other,
            })?;
            wanted.push(job);
        }
        let mut plan = Applied {
            dry_run,
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
            unchanged: 0,
        };
        let (mut insert, mut update) = (Vec::new(), Vec::new());
        for mut job in wanted.iter().cloned() {
            match current.get(&job.id) {
                None => {
                    plan.added.push(job.id.clone());
                    insert.push(job);
                }
                Some(before) if digest(before) == digest(&job) => plan.unchanged += 1,
                Some(before) => {
                    let mut fields = before.changes(&job);
                    if fields.is_empty() {
                        // Only a secret changed: say so, without it.
                        fields.insert("params".into(), serde_json::json!("a secret changed"));
                    }
                    plan.changed.push(Changed {
                        id: job.id.clone(),
                        fields,
                    });
                    let timing = job.schedule != before.schedule
                        || job.timezone != before.timezone
                        || (job.enabled && !before.enabled);
                    job.paused = before.paused.clone();
                    update.push((job, timing));
                }
            }
        }
        if prune {
            let mut gone: Vec<String> = current
                .keys()
                .filter(|id| !wanted.iter().any(|j| &j.id == *id))
                .cloned()
                .collect();
            gone.sort();
            plan.removed = gone;
        }
        if dry_run {
            return Ok(plan);
        }
        let mut applied = self.applied().await?;
        for j in &wanted {
            applied.insert(j.id.clone(), digest(j));
        }
        for id in &plan.removed {
            applied.remove(id);
        }
        let applied_text = serde_json::to_string(&applied).unwrap_or_default();
        self.inner
            .store
            .apply_jobs(
                &JobsPlan {
                    insert: &insert,
                    update: &update,
                    delete: &plan.removed,
                    applied: &applied_text,
                },
                self.now(),
            )
            .await?;
        crate::jobs::reload(self).await;
        self.event(
            "jobs_applied",
            serde_json::json!({ "added": plan.added, "changed": plan.changed.iter().map(|c| &c.id).collect::<Vec<_>>(), "removed": plan.removed }),
        );
        Ok(plan)
    }

    /// The digests of the jobs as last applied from a file, by id.
    async fn applied(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .inner
            .store
            .fact(crate::store::JOBS_APPLIED)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Marks each job applied from a file, and whether it drifted since.
    pub async fn with_drift(&self, jobs: Vec<Job>) -> Result<Vec<Job>> {
        let applied = self.applied().await?;
        if applied.is_empty() {
            return Ok(jobs);
        }
        Ok(jobs
            .into_iter()
            .map(|mut j| {
                if let Some(d) = applied.get(&j.id) {
                    let clear = self.job(&j.id).ok();
                    j.from_file = true;
                    j.drift = clear.is_some_and(|c| digest(&c) != *d);
                }
                j
            })
            .collect())
    }
}
