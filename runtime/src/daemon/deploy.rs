//! Deploys while running (RUNTIME.md §5): the deployed version the tasks
//! read ([`Current`]), and how a new one replaces it.
//!
//! The daemon never compiles: the CLI gives a [`Project`] whose `reload`
//! compiles the sources from disk (the runtime never parses text). A
//! deploy — at start, on SIGHUP, on `--watch`, on `POST /v1/deploy` or by
//! the store poll (`poll.rs`) — stores the bundle by hash and swaps the
//! [`Deployment`] the applier, the API and the outbox read. A group of
//! inputs is prepared and committed on the one deployment it started with
//! (the queue takes the applier once per group), so a swap never splits a
//! group; enrollments keep the version they entered with, new ones take
//! the new version. A compile error or a refused bundle (a missing `env`
//! value, a bad channel setting) keeps the running version. Deploys run
//! one at a time; each attempt is logged and counted
//! (`nudge_deploys_total{outcome}`), never journaled.

use super::apply::Applier;
use super::{Shared, migrate, read_env};
use crate::deliver::{Channels, DeliverOptions};
use crate::store::StoreError;
use nudge_compiler::bundle::{Bundle, BundleError, Trigger};
use nudge_compiler::diagnostics::Record;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// What the tasks run with: a bundle, its version and what is built on it.
pub struct Deployment {
    pub bundle: Arc<Bundle>,
    pub version: String,
    /// When this version was deployed (store time): the poll takes only a
    /// later one.
    pub deployed_at: i64,
    /// The applier for this bundle (its cache of older bundles shared).
    pub applier: Arc<Applier>,
    /// The channels built on this bundle (`None` for the CLI's database
    /// commands, which deliver nothing).
    pub channels: Option<Arc<Channels>>,
}

/// The deployment in force, swapped whole by a deploy.
#[derive(Clone)]
pub struct Current(Arc<RwLock<Arc<Deployment>>>);

impl Current {
    pub fn new(d: Deployment) -> Current {
        Current(Arc::new(RwLock::new(Arc::new(d))))
    }

    pub fn get(&self) -> Arc<Deployment> {
        match self.0.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, d: Deployment) {
        match self.0.write() {
            Ok(mut w) => *w = Arc::new(d),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(d),
        }
    }
}

/// Why the project could not be compiled again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    #[error("the project has {} error(s)", .0.iter().filter(|d| d.severity == "error").count())]
    Diagnostics(Vec<Record>),
    #[error("the project cannot be read: {0}")]
    Unreadable(String),
}

/// Compiles the project again from disk.
pub type ReloadFn = dyn Fn() -> Result<Bundle, ReloadError> + Send + Sync;
/// Reads an environment variable (for the `env(…)` a new version reads).
pub type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The project behind the daemon, given by the CLI.
#[derive(Clone)]
pub struct Project {
    pub reload: Arc<ReloadFn>,
    pub env: Arc<EnvFn>,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Project")
    }
}

/// Why a deploy left the running version in force.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// The bundle compiled but cannot run here (env, channels, bytes).
    #[error("the new version cannot run: {0}")]
    Invalid(String),
    #[error("the daemon was started without a project to compile")]
    NoProject,
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl From<BundleError> for DeployError {
    fn from(e: BundleError) -> DeployError {
        DeployError::Invalid(e.to_string())
    }
}

/// Enrollments `--migrate` left on their version: the new version has no
/// step (or no flow) of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    pub flow: String,
    pub step: String,
    pub version: String,
    pub count: i64,
}

/// What a deploy did (the `POST /v1/deploy` answer).
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub version: String,
    /// A new version (false: the same version, e.g. a formatting change).
    pub changed: bool,
    pub flows: Vec<String>,
    /// Enrollments moved to this version (`migrate`).
    pub migrated: usize,
    pub unmapped: Vec<Unmapped>,
}

/// Compile the project again and deploy it (`source` names the trigger
/// in the log: `sighup`, `watch`, `api`).
pub async fn redeploy(
    shared: &Arc<Shared>,
    source: &'static str,
    migrate: bool,
) -> Result<DeployReport, DeployError> {
    let Some(project) = shared.config.project.clone() else {
        shared.metrics.deploy("failed");
        return Err(DeployError::NoProject);
    };
    let _one = shared.deploying.lock().await;
    let reload = project.reload.clone();
    let compiled = tokio::task::spawn_blocking(move || reload())
        .await
        .map_err(|e| ReloadError::Unreadable(format!("the compiler task failed: {e}")));
    match compiled.and_then(|r| r) {
        Ok(bundle) => install(shared, bundle, source, migrate).await,
        Err(e) => {
            rejected(shared, source, &e);
            Err(e.into())
        }
    }
}

/// Log a refused compile, one line per diagnostic, and count it.
fn rejected(shared: &Shared, source: &str, e: &ReloadError) {
    shared.metrics.deploy("rejected");
    if let ReloadError::Diagnostics(ds) = e {
        for d in ds {
            tracing::warn!(
                source,
                "{}:{}:{}: {} [{}] {}",
                d.file,
                d.line,
                d.column,
                d.severity,
                d.code,
                d.message
            );
        }
    }
    tracing::warn!(source, error = %e, version = %shared.deployed().version, "deploy refused; the running version stays");
}

/// Deploy a compiled bundle (the caller holds `deploying`, or is the
/// store poll, which takes it here). The same version still replaces the
/// stored bytes (its lines may differ).
pub(super) async fn install(
    shared: &Arc<Shared>,
    bundle: Bundle,
    source: &'static str,
    migrate: bool,
) -> Result<DeployReport, DeployError> {
    let done = swap(shared, bundle).await;
    let (dep, changed) = match done {
        Ok(d) => d,
        Err(e) => {
            shared.metrics.deploy("failed");
            tracing::warn!(source, error = %e, "deploy failed; the running version stays");
            return Err(e);
        }
    };
    shared
        .metrics
        .deploy(if changed { "deployed" } else { "unchanged" });
    tracing::info!(source, version = %dep.version, changed, "deployed");
    let (migrated, unmapped) = if migrate {
        migrate::run(shared, &dep).await?
    } else {
        (0, Vec::new())
    };
    Ok(DeployReport {
        version: dep.version.clone(),
        changed,
        flows: dep.bundle.flows.iter().map(|p| p.name.clone()).collect(),
        migrated,
        unmapped,
    })
}

/// Store the bundle and make it the deployment in force.
async fn swap(
    shared: &Arc<Shared>,
    bundle: Bundle,
) -> Result<(Arc<Deployment>, bool), DeployError> {
    let bytes = bundle.to_bytes()?;
    let version = bundle.hash()?;
    let old = shared.deployed();
    let env = env_for(shared, &bundle)?;
    let channels = match old.channels {
        Some(_) => Some(Arc::new(channels(shared, &bundle, &env)?)),
        None => None,
    };
    let now = shared.clock.now();
    shared.store.put_bundle(&version, &bytes, now).await?;
    let changed = version != old.version;
    let bundle = Arc::new(bundle);
    let applier = Arc::new(old.applier.on(bundle.clone(), version.clone(), env));
    shared.current.set(Deployment {
        bundle: bundle.clone(),
        version,
        deployed_at: now,
        applier,
        channels,
    });
    if changed && timed(&bundle) {
        tokio::spawn(super::rearm(shared.clone(), shared.cancel.clone()));
    }
    shared.metrics.wake_hint(0);
    Ok((shared.deployed(), changed))
}

/// The `env(…)` values the bundle reads: from the project's reader, or
/// (without one) from those the daemon started with.
fn env_for(shared: &Shared, bundle: &Bundle) -> Result<BTreeMap<String, String>, DeployError> {
    let started = &shared.config.env;
    let got = match &shared.config.project {
        Some(p) => read_env(bundle, |n| (p.env)(n)),
        None => read_env(bundle, |n| started.get(n).cloned()),
    };
    got.map_err(DeployError::Invalid)
}

pub(super) fn channels(
    shared: &Shared,
    bundle: &Bundle,
    env: &BTreeMap<String, String>,
) -> Result<Channels, DeployError> {
    Channels::new(
        bundle,
        env,
        DeliverOptions {
            allow_hosts: shared.config.allow_hosts.clone(),
            default_timeout: shared.config.retry.timeout,
        },
    )
    .map_err(DeployError::Invalid)
}

/// Whether the bundle has time triggers or schedules to plan.
pub(super) fn timed(bundle: &Bundle) -> bool {
    bundle.flows.iter().any(|p| {
        p.triggers
            .iter()
            .any(|t| matches!(t, Trigger::Time { .. } | Trigger::Schedule { .. }))
    })
}
