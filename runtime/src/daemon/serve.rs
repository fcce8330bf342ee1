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
//! * **a cap**: at most `max_connections` are open at once. At the cap the
//!   daemon stops accepting — new connections wait in the kernel's backlog,
//!   holding none of the process's file descriptors — and logs one `warn`
//!   line per [`WARN_EVERY`] while it lasts. Accept errors (`EMFILE`) are
//!   logged the same way and retried after a short pause.
//!
//! Counts (open, at-cap waits, timeouts) are in [`ConnStats`], rendered on
//! `/metrics`.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The shortest interval between two warnings about the same limit.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connection limits (`nudge run --max-connections`, `--header-timeout`,
/// `--idle-timeout`, `--request-timeout`).
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
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Connection counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicUsize,
    accepted: AtomicU64,
    at_limit: AtomicU64,
    timed_out: AtomicU64,
    accept_errors: AtomicU64,
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
            "times a new connection had to wait because `--max-connections` were open",
            get(&self.at_limit),
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

/// Accept and serve until `cancel`, then wait for every connection to close.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let conns = TaskTracker::new();
    let (cap_warn, accept_warn) = (Throttle::new(WARN_EVERY), Throttle::new(WARN_EVERY));
    loop {
        let Some(permit) = slot(&slots, &stats, &cap_warn, limits, &cancel).await else {
            break;
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            () = cancel.cancelled() => break,
        };
        match stream {
            Ok((stream, _peer)) => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                let conn = Conn {
                    limits,
                    stats: stats.clone(),
                    _permit: permit,
                };
                conns.spawn(conn.run(stream, app.clone(), cancel.clone()));
            }
            Err(e) => {
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if accept_warn.ready() {
                    tracing::warn!(error = %e, open = stats.open(), "cannot accept a connection; retrying");
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = cancel.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

/// A free connection slot, waiting (and warning) while the cap is reached;
/// `None` once cancelled.
async fn slot(
    slots: &Arc<Semaphore>,
    stats: &ConnStats,
    warn: &Throttle,
    limits: Limits,
    cancel: &CancellationToken,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = slots.clone().try_acquire_owned() {
        return Some(p);
    }
    stats.at_limit.fetch_add(1, Ordering::Relaxed);
    if warn.ready() {
        tracing::warn!(
            max_connections = limits.max_connections,
            "connection limit reached: new connections wait until one closes (see `--max-connections`)"
        );
    }
    tokio::select! {
        p = slots.clone().acquire_owned() => p.ok(),
        () = cancel.cancelled() => None,
    }
}

/// One accepted connection and its slot.
struct Conn {
    limits: Limits,
    stats: Arc<ConnStats>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    async fn run(self, stream: TcpStream, app: Router, cancel: CancellationToken) {
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let busy = activity.clone();
        let service = app
            .map_request(|req: hyper::Request<Incoming>| req.map(Body::new))
            .map_future(move |fut| {
                let guard = busy.busy();
                async move {
                    let res = fut.await;
                    drop(guard);
                    res
                }
            });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, TowerToHyperService::new(service));
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
        let mut stopping = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if r.as_ref().is_err_and(hyper::Error::is_timeout) {
                        self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                () = cancel.cancelled(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tick.tick() => {
                    if activity.stalled(idle) {
                        self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a connection last moved a byte, and how many of its requests are
/// being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: Arc<AtomicUsize>,
}

/// Marks a request as being handled while it lives.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn busy(&self) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.in_flight.clone())
    }

    /// No request in hand and no byte moved for `idle`.
    fn stalled(&self, idle: Duration) -> bool {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.start.elapsed().saturating_sub(last) >= idle
    }
}

/// A stream that records when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn moved(&self, r: &Poll<std::io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.touch();
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.moved(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.moved(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
