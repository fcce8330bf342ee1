//! Serving the API over TCP with limits no client can exhaust
//! (docs/operations.md, "Connections").
//!
//! Takes the listener, the router, the [`Limits`] and the daemon's cancel
//! token; gives a task that accepts connections until cancelled, then lets
//! each connection finish its request in flight (hyper's graceful shutdown)
//! and returns once all are closed.
//!
//! Guarantees, per connection (HTTP/1.1, hyper's own server builder):
//! * **header-read timeout**: a request head not complete within
//!   `header_timeout` closes the connection. hyper starts that clock whenever
//!   it waits for a head, so it is also the keep-alive idle timeout;
//! * **stall timeout**: a connection that moves no byte either way for
//!   `idle_timeout` while no request of it is being handled (a client that
//!   stops reading its answer) is closed;
//! * **a cap**: at most `max_connections` are open at once. A connection
//!   accepted at the cap takes the place of the one that has been idle (no
//!   request in hand) the longest, which is closed: half-sent heads and
//!   idle keep-alives make room for a new client, so `/healthz` still
//!   answers at once. Only when every open connection is handling a request
//!   does the new one wait for a slot, and then the daemon accepts nothing
//!   more meanwhile (new connections wait in the kernel's backlog, holding
//!   none of the process's file descriptors). Either way one `warn` line
//!   per [`WARN_EVERY`] says the cap was reached. Accept errors (`EMFILE`)
//!   are logged the same way and retried after a short pause.
//!
//! * **a head-size limit**: a request head (request line and headers) over
//!   `max_head_size` bytes is answered 431, deterministically (hyper's
//!   `max_header_size`).
//!
//! Every answer hyper makes by itself (400 malformed head, 414, 431) gets
//! the API's JSON error body (`parse_errors.rs`). Counts (open, cap
//! reached, evicted, timed out, malformed) are in [`ConnStats`], rendered on
//! `/metrics`. One connection's serving is `conn.rs`.

mod conn;
mod parse_errors;

use axum::Router;
use conn::{Activity, Handle};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shortest interval between two warnings about the same limit.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connection limits (`nudge run --max-connections`, `--header-timeout`,
/// `--idle-timeout`, `--request-timeout`, `--max-head-size`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once at most; keep it well below the process's
    /// file-descriptor limit (the database, SMTP and HTTP deliveries need
    /// some too).
    pub max_connections: usize,
    /// A request head must arrive within this (also the keep-alive idle time).
    pub header_timeout: Duration,
    /// A connection moving no byte for this long with no request in hand closes.
    pub idle_timeout: Duration,
    /// The longest a request may take, body included (408 after; `api.rs`).
    pub request_timeout: Duration,
    /// The largest request head (request line and headers) in bytes; 431
    /// above it.
    pub max_head_size: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_head_size: 16 * 1024,
        }
    }
}

/// Connection counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicUsize,
    accepted: AtomicU64,
    at_limit: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
    accept_errors: AtomicU64,
    malformed: AtomicU64,
}

impl ConnStats {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The Prometheus lines of these counters.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut line = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        line(
            "nudge_http_connections_open",
            "gauge",
            "HTTP connections open now",
            self.open() as u64,
        );
        line(
            "nudge_http_connections_total",
            "counter",
            "HTTP connections accepted",
            get(&self.accepted),
        );
        line(
            "nudge_http_connection_limit_reached_total",
            "counter",
            "connections accepted while `--max-connections` were open",
            get(&self.at_limit),
        );
        line(
            "nudge_http_connections_evicted_total",
            "counter",
            "idle connections closed to make room for a new one at the cap",
            get(&self.evicted),
        );
        line(
            "nudge_http_connections_timed_out_total",
            "counter",
            "connections closed by the header-read or stall timeout",
            get(&self.timed_out),
        );
        line(
            "nudge_http_accept_errors_total",
            "counter",
            "failed accepts (e.g. out of file descriptors)",
            get(&self.accept_errors),
        );
        line(
            "nudge_http_malformed_requests_total",
            "counter",
            "requests refused before routing: malformed head (400), target too long (414), head too large (431)",
            get(&self.malformed),
        );
        o
    }
}

/// True at most once per `period`: for warnings that must not flood.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            last: Mutex::new(None),
        }
    }

    pub fn ready(&self) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.period) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// The open connections, for eviction at the cap.
#[derive(Default)]
struct Open {
    next: u64,
    conns: HashMap<u64, (Arc<Activity>, CancellationToken)>,
}

impl Open {
    fn add(&mut self, activity: Arc<Activity>, evict: CancellationToken) -> u64 {
        self.next += 1;
        self.conns.insert(self.next, (activity, evict));
        self.next
    }

    /// Close the connection idle the longest; false when none is idle.
    fn evict_longest_idle(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, (_, evict))| !evict.is_cancelled())
            .filter_map(|(id, (a, _))| a.idle_for().map(|d| (d, *id)))
            .max();
        match oldest.and_then(|(_, id)| self.conns.get(&id)) {
            Some((_, evict)) => {
                evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// The accept loop's shared parts.
struct Server {
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    slots: Arc<Semaphore>,
    open: Arc<Mutex<Open>>,
    cap_warn: Throttle,
    conns: TaskTracker,
    cancel: CancellationToken,
}

/// Accept and serve until `cancel`, then wait for every connection to close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    cancel: CancellationToken,
) {
    let server = Server {
        app,
        limits,
        stats,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        open: Arc::default(),
        cap_warn: Throttle::new(WARN_EVERY),
        conns: TaskTracker::new(),
        cancel,
    };
    let accept_warn = Throttle::new(WARN_EVERY);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = server.cancel.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(permit) = server.slot().await else {
                    break;
                };
                server.spawn(stream, peer, permit);
            }
            Err(e) => {
                server.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if accept_warn.ready() {
                    let open = server.stats.open();
                    tracing::warn!(error = %e, open, "cannot accept a connection; retrying");
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = server.cancel.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    server.conns.close();
    server.conns.wait().await;
}

impl Server {
    /// A slot for a connection just accepted: a free one, or the one an
    /// evicted idle connection gives back, or (all busy) the next to free
    /// up; `None` once cancelled.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Some(p);
        }
        self.stats.at_limit.fetch_add(1, Ordering::Relaxed);
        let evicted = self
            .open
            .lock()
            .map(|mut o| o.evict_longest_idle())
            .unwrap_or(false);
        if self.cap_warn.ready() {
            let max_connections = self.limits.max_connections;
            if evicted {
                tracing::warn!(
                    max_connections,
                    "connection limit reached: closing the longest idle connection for each new one (see `--max-connections`)"
                );
            } else {
                tracing::warn!(
                    max_connections,
                    "connection limit reached and every connection is busy: new connections wait (see `--max-connections`)"
                );
            }
        }
        tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok(),
            () = self.cancel.cancelled() => None,
        }
    }

    fn spawn(
        &self,
        stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let stats = self.stats.clone();
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let evict = CancellationToken::new();
        let id = self
            .open
            .lock()
            .map(|mut o| o.add(activity.clone(), evict.clone()))
            .unwrap_or(0);
        let handle = Handle {
            activity,
            evict,
            peer,
        };
        let (app, limits, open) = (self.app.clone(), self.limits, self.open.clone());
        let shutdown = self.cancel.clone();
        self.conns.spawn(async move {
            conn::run(stream, app, limits, stats.clone(), handle, shutdown).await;
            if let Ok(mut o) = open.lock() {
                o.conns.remove(&id);
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_through_per_period() {
        let t = Throttle::new(Duration::from_secs(60));
        assert!(t.ready());
        assert!(!t.ready());
        let fast = Throttle::new(Duration::ZERO);
        assert!(fast.ready() && fast.ready());
    }

    #[test]
    fn eviction_closes_the_longest_idle_connection() {
        let mut open = Open::default();
        let old = CancellationToken::new();
        open.add(Arc::new(Activity::new()), old.clone());
        std::thread::sleep(Duration::from_millis(20));
        let young = CancellationToken::new();
        open.add(Arc::new(Activity::new()), young.clone());
        assert!(open.evict_longest_idle());
        assert!(old.is_cancelled() && !young.is_cancelled());
        assert!(open.evict_longest_idle());
        assert!(young.is_cancelled());
        assert!(!open.evict_longest_idle(), "nothing left to evict");
    }
}
