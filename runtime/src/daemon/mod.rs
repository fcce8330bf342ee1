//! The daemon behind `nudge run`: one process that takes events and
//! postbacks over HTTP, keeps every contact's place in the store, fires due
//! timers and delivers the outbox.
//!
//! Tasks, all stopped by one [`CancellationToken`]:
//! * the HTTP API (`api.rs`, served by `serve/` under a connection cap and
//!   timeouts), which validates input and hands [`Job`]s to
//! * the applier task (`queue.rs` around `apply.rs`), the only writer of
//!   contact state in this process: it groups whatever is queued into one
//!   commit (group commit) and answers each caller after the commit;
//! * the scheduler (`scheduler.rs`): due contacts from the wake-time index,
//!   in batches, as `Timer` jobs;
//! * the outbox worker (`outbox.rs`): claims due rows, delivers them through
//!   `crate::deliver`, retries with backoff or dead-letters them, and turns
//!   call responses into jobs;
//! * before start, while the database server cannot be reached yet, the
//!   waiting API (`waiting.rs`: `/healthz` 200, everything else 503);
//! * at start, the conversion pass (`convert.rs`): contact states stored in
//!   an older format are rewritten in the current one, through the applier;
//! * the store poll (`poll.rs`): a version another daemon deployed is
//!   loaded here too.
//!
//! The deployed bundle is swapped whole while running (`deploy.rs`: SIGHUP,
//! `--watch` and `POST /v1/deploy` through the CLI's [`Project`]); with
//! `migrate`, enrollments move to it by step name (`migrate.rs`).
//!
//! Shutdown (SIGTERM): stop intake, let in-flight requests finish their
//! commits, drain the queue, let in-flight deliveries finish; nothing is
//! half-applied because every input is one transaction.

pub mod api;
pub mod api_admin;
pub mod api_deploy;
pub mod api_edge;
pub mod api_events;
pub mod apply;
mod apply_jobs;
pub mod clock;
pub mod convert;
pub mod deploy;
pub mod group;
pub mod metrics;
mod migrate;
pub mod outbox;
pub mod poll;
pub mod queue;
pub mod scheduler;
pub mod serve;
pub mod waiting;

pub use apply::{Applier, ApplyError, ContactRef, Done, Job};
pub use clock::{Clock, ManualClock, SystemClock};
pub use deploy::{DeployError, DeployReport, Deployment, Project, ReloadError};

use crate::deliver::{Channels, DeliverOptions};
use crate::store::Store;
use metrics::Metrics;
use nudge_compiler::bundle::{Bundle, BundleError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the daemon runs; flags and environment fill it in the CLI.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// When set, `/v1/*` needs `Authorization: Bearer …`.
    pub api_token: Option<String>,
    /// Hosts outgoing requests may reach although private or loopback.
    pub allow_hosts: Vec<String>,
    /// The values of the `env(…)` names the bundle reads.
    pub env: BTreeMap<String, String>,
    pub retry: RetryPolicy,
    /// The longest the scheduler and outbox sleep between looks.
    pub tick: Duration,
    /// How long an outbox claim holds its rows: a crashed daemon's claimed
    /// rows go out again (same idempotency keys) once it ends. The worker
    /// renews the lease of its rows in flight every third of it; a `call …
    /// as NAME` waits its timeout plus the lease for the response.
    pub outbox_lease: Duration,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// Inputs per commit at most.
    pub max_group: usize,
    /// Browser origins `/v1/*` accepts (`Origin`); none by default.
    pub allow_origins: Vec<String>,
    /// Connection cap and timeouts of the HTTP server.
    pub http: serve::Limits,
    /// The project to compile again on a redeploy (`None`: a fixed bundle,
    /// `POST /v1/deploy` answers 409).
    pub project: Option<Project>,
    /// Move enrollments on older versions to each deployed one by step name.
    pub migrate: bool,
    /// How often the store is asked for a version another daemon deployed.
    pub bundle_poll: Duration,
}

/// Outbox retries: exponential backoff with jitter, as rescheduled rows.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_delay: Duration,
    pub max_attempts: i64,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(3600),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            api_token: None,
            allow_hosts: Vec::new(),
            env: BTreeMap::new(),
            retry: RetryPolicy::default(),
            tick: Duration::from_secs(1),
            outbox_lease: Duration::from_secs(300),
            body_limit: 4 * 1024 * 1024,
            max_group: 1000,
            allow_origins: Vec::new(),
            http: serve::Limits::default(),
            project: None,
            migrate: false,
            bundle_poll: Duration::from_secs(5),
        }
    }
}

/// The `env(…)` values a bundle needs, read from the process environment;
/// a missing one is an error naming it.
pub fn read_env(
    bundle: &Bundle,
    get: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for name in &bundle.env {
        match get(name) {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None => missing.push(format!("`{name}`")),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "the project reads environment variable{} {} which {} not set",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "are" } else { "is" }
        ))
    }
}

/// What the tasks share.
pub struct Shared {
    pub store: Arc<dyn Store>,
    /// The deployed version; read it once per request or round
    /// ([`Shared::deployed`]).
    pub current: deploy::Current,
    /// Held by a deploy, so deploys run one at a time.
    pub deploying: tokio::sync::Mutex<()>,
    /// Stops every task (the daemon's shutdown).
    pub cancel: CancellationToken,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub queue: queue::Queue,
}

impl Shared {
    /// The deployment in force now.
    pub fn deployed(&self) -> Arc<Deployment> {
        self.current.get()
    }
}

/// A started daemon.
pub struct Running {
    /// The address the API listens on (port 0 resolved).
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// What the tasks share: for [`deploy::redeploy`] (SIGHUP, `--watch`)
    /// and [`poll::poll_once`].
    pub shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    /// Stop intake, finish what is in flight, and wait for every task.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.wait().await;
    }

    /// Wait until the daemon stops (after [`Running::cancel_token`] fires).
    /// The applier ends once every [`Shared`] is gone: a task holding one
    /// must end on the cancel token.
    pub async fn wait(self) {
        let Running { shared, tasks, .. } = self;
        drop(shared);
        tasks.close();
        tasks.wait().await;
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Hold deliveries (the outbox worker claims nothing; rows stay pending)
    /// or let them go again. For benchmarks and tests that measure the
    /// applier alone.
    pub fn hold_deliveries(&self, held: bool) {
        self.metrics
            .signals
            .deliveries_held
            .store(held, std::sync::atomic::Ordering::Relaxed);
        if !held {
            self.metrics.outbox_hint();
        }
    }
}

/// The shared state over a store, with the applier task running; the
/// daemon builds its tasks on it, and the CLI's database commands use it
/// alone. The applier task ends when every `Shared` is dropped. Fails only
/// if the bundle has no bytes to hash.
pub fn attach(
    store: Arc<dyn Store>,
    bundle: Arc<Bundle>,
    clock: Arc<dyn Clock>,
    config: Config,
) -> Result<(Arc<Shared>, tokio::task::JoinHandle<()>), BundleError> {
    attach_with(store, bundle, clock, config, None, 0)
}

/// [`attach`] with the channels to deliver through and the deploy time.
fn attach_with(
    store: Arc<dyn Store>,
    bundle: Arc<Bundle>,
    clock: Arc<dyn Clock>,
    config: Config,
    channels: Option<Arc<Channels>>,
    deployed_at: i64,
) -> Result<(Arc<Shared>, tokio::task::JoinHandle<()>), BundleError> {
    let version = bundle.hash()?;
    let metrics = Arc::new(Metrics::default());
    let applier = Arc::new(Applier {
        store: store.clone(),
        bundle: bundle.clone(),
        version: version.clone(),
        env: config.env.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        older: Default::default(),
        calls: outbox::call_limits(&config),
    });
    let current = deploy::Current::new(Deployment {
        bundle,
        version,
        deployed_at,
        applier,
        channels,
    });
    let (queue, rx) = queue::Queue::new(4096);
    let task = tokio::spawn(queue::run(current.clone(), rx, config.max_group));
    let shared = Arc::new(Shared {
        store,
        current,
        deploying: tokio::sync::Mutex::new(()),
        cancel: CancellationToken::new(),
        config,
        clock,
        metrics,
        queue,
    });
    Ok((shared, task))
}

/// Re-plans every contact's wake time (a `Refresh` job each, a page of
/// 1 000 at a time): after deploying a version with time triggers or
/// schedules (new contacts get them when created), and when a paused flow
/// resumes (its timers, triggers and schedules were left out of the wake
/// times). A contact is written only if its triggers or wake time move.
/// Stops early on `cancel`; gives how many contacts it went through.
pub async fn replan(shared: Arc<Shared>, cancel: CancellationToken) -> usize {
    let mut after: Option<String> = None;
    let mut n = 0;
    while !cancel.is_cancelled() {
        let ids = match shared.store.contact_ids(after.as_deref(), 1000).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list contacts to re-plan");
                break;
            }
        };
        let Some(last) = ids.last().cloned() else {
            break;
        };
        n += ids.len();
        let jobs = ids
            .into_iter()
            .map(|contact| Job::Refresh { contact })
            .collect();
        shared.queue.submit(jobs).await;
        after = Some(last);
    }
    shared.metrics.wake_hint(0);
    n
}

async fn rearm(shared: Arc<Shared>, cancel: CancellationToken) {
    let n = replan(shared, cancel).await;
    tracing::info!(
        contacts = n,
        "planned the deployed version's schedules and time triggers"
    );
}

/// Deploy the bundle and start every task.
pub async fn start(
    store: Arc<dyn Store>,
    bundle: Bundle,
    clock: Arc<dyn Clock>,
    config: Config,
) -> Result<Running, String> {
    store.migrate().await.map_err(|e| e.to_string())?;
    let bytes = bundle.to_bytes().map_err(|e| e.to_string())?;
    let version = bundle.hash().map_err(|e| e.to_string())?;
    let first_deploy = store
        .get_bundle(&version)
        .await
        .map_err(|e| e.to_string())?
        .is_none();
    let now = clock.now();
    store
        .put_bundle(&version, &bytes, now)
        .await
        .map_err(|e| e.to_string())?;
    let timed = deploy::timed(&bundle);
    let channels = Channels::new(
        &bundle,
        &config.env,
        DeliverOptions {
            allow_hosts: config.allow_hosts.clone(),
            default_timeout: config.retry.timeout,
        },
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let tasks = TaskTracker::new();
    let channels = Arc::new(channels);
    let (shared, applier_task) = attach_with(
        store,
        Arc::new(bundle),
        clock,
        config,
        Some(channels.clone()),
        now,
    )
    .map_err(|e| e.to_string())?;
    shared.metrics.deploy(if first_deploy {
        "deployed"
    } else {
        "unchanged"
    });
    let cancel = shared.cancel.clone();
    tasks.spawn(async move {
        let _ = applier_task.await;
    });
    if first_deploy && timed {
        tasks.spawn(rearm(shared.clone(), cancel.clone()));
    }
    if shared.config.migrate {
        let dep = shared.deployed();
        let s = shared.clone();
        tasks.spawn(async move {
            if let Err(e) = migrate::run(&s, &dep).await {
                tracing::warn!(error = %e, "--migrate at start failed; enrollments stay on their versions");
            }
        });
    }
    tasks.spawn(convert::run(shared.clone(), cancel.clone()));
    tasks.spawn(scheduler::run(shared.clone(), cancel.clone()));
    tasks.spawn(outbox::run(shared.clone(), channels, cancel.clone()));
    tasks.spawn(poll::run(shared.clone(), cancel.clone()));
    let app = api::router(shared.clone());
    let conns = shared.metrics.connections.clone();
    let limits = shared.config.http;
    tasks.spawn(serve::serve(listener, app, limits, conns, cancel.clone()));
    tracing::info!(%addr, version = %shared.deployed().version, "nudge: listening on http://{addr}");
    let (store, metrics) = (shared.store.clone(), shared.metrics.clone());
    Ok(Running {
        addr,
        store,
        metrics,
        shared,
        cancel,
        tasks,
    })
}
