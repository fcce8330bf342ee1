//! One accepted connection: hyper's HTTP/1.1 server on a stream that
//! records when bytes move, closed by the header-read timeout (hyper's), the
//! stall timeout, an eviction (the cap was reached and it was the longest
//! idle) or, gracefully, the daemon's shutdown. hyper's own error answers
//! get their JSON body on the way out (`parse_errors.rs`).

use super::parse_errors::JsonErrors;
use super::{ConnStats, Limits};
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// What the accept loop knows of a connection: how idle it is, and how to
/// close it.
pub struct Handle {
    pub activity: Arc<Activity>,
    pub evict: CancellationToken,
    pub peer: SocketAddr,
}

/// Serve one connection until it closes; the caller holds its slot.
pub async fn run(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    handle: Handle,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = handle.activity;
    let watched = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    let io = TokioIo::new(JsonErrors::new(
        watched,
        handle.peer,
        stats.clone(),
        limits.max_head_size,
    ));
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
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_head_size)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    let idle = limits.idle_timeout;
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if r.as_ref().is_err_and(hyper::Error::is_timeout) {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = handle.evict.cancelled() => {
                stats.evicted.fetch_add(1, Ordering::Relaxed);
                break;
            }
            _ = tick.tick() => {
                if activity.stalled(idle) {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

/// When a connection last moved a byte, since when it has had no request
/// in hand, and how many of its requests are being handled.
pub struct Activity {
    start: Instant,
    last_byte_ms: AtomicU64,
    idle_since_ms: AtomicU64,
    in_flight: AtomicUsize,
}

/// Marks a request as being handled while it lives.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0
                .idle_since_ms
                .store(self.0.now_ms(), Ordering::Relaxed);
        }
    }
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_byte_ms: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_byte_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// How long the connection has had no request in hand; `None` while it
    /// has one. A client trickling bytes of a head is still idle.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.idle_since_ms.load(Ordering::Relaxed);
        Some(Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// No request in hand and no byte moved for `idle`.
    fn stalled(&self, idle: Duration) -> bool {
        let last = self.last_byte_ms.load(Ordering::Relaxed);
        self.in_flight.load(Ordering::Relaxed) == 0
            && Duration::from_millis(self.now_ms().saturating_sub(last)) >= idle
    }
}

/// A stream that records when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
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
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_with_a_request_in_hand_is_not_idle() {
        let a = Arc::new(Activity::new());
        assert!(a.idle_for().is_some());
        let busy = a.busy();
        assert_eq!(a.idle_for(), None);
        assert!(!a.stalled(Duration::ZERO));
        drop(busy);
        assert!(a.idle_for().is_some_and(|d| d < Duration::from_secs(1)));
        assert!(a.stalled(Duration::ZERO));
    }
}
