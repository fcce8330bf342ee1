//! Real servers on loopback for Nudge's tests: an SMTP sink ([`SmtpSink`])
//! and an HTTP sink ([`HttpSink`]) that record what they receive.
//!
//! Each sink starts either on the caller's tokio runtime (`start().await`,
//! for `#[tokio::test]`) or on a thread of its own with its own runtime
//! (`start_blocking()`, for synchronous tests such as end-to-end tests of the
//! binary). Both bind `127.0.0.1:0`, so tests never clash on ports. Dropping a
//! sink stops its listener. Recorded data is read with plain synchronous
//! methods, and `wait_for` / `wait_for_blocking` poll until N items arrived
//! or the timeout passed (they return what there is either way, so the test's
//! own assertion reports the shortfall).
//!
//! [`pg`] gives each test a fresh PostgreSQL database on the server that
//! `scripts/test` starts; [`engine`] runs one test on SQLite and on
//! Postgres (`on_both_engines!`).
//!
//! Dev-only: never a dependency of shipped code.

pub mod engine;
mod http;
pub mod pg;
mod smtp;

pub use http::{HttpSink, ReceivedRequest};
pub use smtp::{ReceivedMail, SmtpSink};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(5);

/// Stops a server when dropped.
pub(crate) struct Running {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone (its runtime ended): nothing to do.
            let _ = stop.send(());
        }
    }
}

/// Start `serve` on the current tokio runtime.
async fn spawn_here<F, Fut>(serve: F) -> (SocketAddr, Running)
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let (tx, rx) = oneshot::channel();
    tokio::spawn(serve(listener, rx));
    (addr, Running { stop: Some(tx) })
}

/// Start `serve` on a new thread with its own single-threaded runtime.
fn spawn_thread<F, Fut>(serve: F) -> (SocketAddr, Running)
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    std_listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let addr = std_listener.local_addr().expect("local address");
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("testkit-{}", addr.port()))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                serve(listener, rx).await;
            });
        })
        .expect("spawn a server thread");
    (addr, Running { stop: Some(tx) })
}

/// A started sink: its address, the state its server shares with the test,
/// and what stops the server when dropped.
pub(crate) struct Server<S> {
    pub(crate) addr: SocketAddr,
    pub(crate) state: S,
    _running: Running,
}

impl<S: Clone + Send + 'static> Server<S> {
    /// Start `serve` with `state` on the current tokio runtime.
    pub(crate) async fn here<F, Fut>(state: S, serve: F) -> Server<S>
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>, S) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let s = state.clone();
        let (addr, running) = spawn_here(move |l, stop| serve(l, stop, s)).await;
        Server {
            addr,
            state,
            _running: running,
        }
    }

    /// Start `serve` with `state` on a thread of its own.
    pub(crate) fn thread<F, Fut>(state: S, serve: F) -> Server<S>
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>, S) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let s = state.clone();
        let (addr, running) = spawn_thread(move |l, stop| serve(l, stop, s));
        Server {
            addr,
            state,
            _running: running,
        }
    }
}

/// A list shared between a server and the test.
pub(crate) struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(Arc::clone(&self.0))
    }
}

impl<T: Clone> Log<T> {
    pub(crate) fn new() -> Log<T> {
        Log(Arc::new(Mutex::new(Vec::new())))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A test that panicked while holding the lock leaves the data usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, item: T) {
        self.lock().push(item);
    }

    pub(crate) fn all(&self) -> Vec<T> {
        self.lock().clone()
    }

    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<T> {
        let until = Instant::now() + timeout;
        loop {
            let now = self.all();
            if now.len() >= n || Instant::now() >= until {
                return now;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) fn wait_for_blocking(&self, n: usize, timeout: Duration) -> Vec<T> {
        let until = Instant::now() + timeout;
        loop {
            let now = self.all();
            if now.len() >= n || Instant::now() >= until {
                return now;
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A value shared between a server and the test.
pub(crate) struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    pub(crate) fn new(value: T) -> Shared<T> {
        Shared(Arc::new(Mutex::new(value)))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
