//! A loopback HTTP server (axum) that records every request and answers from
//! a programmable queue.
//!
//! Each request takes the next queued reply ([`HttpSink::respond`],
//! [`HttpSink::redirect`]); with the queue empty it gets the default reply,
//! `200 {}` unless [`HttpSink::set_default`] changed it. Bodies are sent as
//! `application/json`.

use crate::{Log, Server, Shared};
use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One request as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path and query, e.g. `/hook?token=x`.
    pub path: String,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    location: Option<String>,
}

#[derive(Clone)]
struct State {
    requests: Log<ReceivedRequest>,
    queue: Shared<VecDeque<Reply>>,
    default: Shared<Reply>,
}

/// A running HTTP sink on `127.0.0.1`. Dropping it stops the listener.
pub struct HttpSink(Server<State>);

impl HttpSink {
    /// Start on the current tokio runtime.
    pub async fn start() -> HttpSink {
        HttpSink(Server::here(State::new(), serve).await)
    }

    /// Start on a thread of its own (for synchronous tests).
    pub fn start_blocking() -> HttpSink {
        HttpSink(Server::thread(State::new(), serve))
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub fn port(&self) -> u16 {
        self.0.addr.port()
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.0.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.0.state.requests.all()
    }

    /// Wait until at least `n` requests arrived or `timeout` passed.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        self.0.state.requests.wait_for(n, timeout).await
    }

    /// [`HttpSink::wait_for`] for synchronous tests.
    pub fn wait_for_blocking(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        self.0.state.requests.wait_for_blocking(n, timeout)
    }

    /// Queue a reply for the next request not yet answered.
    pub fn respond(&self, status: u16, body: impl Into<String>) {
        let reply = Reply {
            status,
            body: body.into(),
            location: None,
        };
        self.0.state.queue.with(|q| q.push_back(reply));
    }

    /// Queue a `302 Found` to `location` for the next request.
    pub fn redirect(&self, location: impl Into<String>) {
        let reply = Reply {
            status: 302,
            body: String::new(),
            location: Some(location.into()),
        };
        self.0.state.queue.with(|q| q.push_back(reply));
    }

    /// The reply when the queue is empty (initially `200 {}`).
    pub fn set_default(&self, status: u16, body: impl Into<String>) {
        let reply = Reply {
            status,
            body: body.into(),
            location: None,
        };
        self.0.state.default.with(|d| *d = reply);
    }
}

impl State {
    fn new() -> State {
        State {
            requests: Log::new(),
            queue: Shared::new(VecDeque::new()),
            default: Shared::new(Reply {
                status: 200,
                body: "{}".into(),
                location: None,
            }),
        }
    }
}

async fn serve(listener: TcpListener, stop: oneshot::Receiver<()>, state: State) {
    let app = Router::new().fallback(handle).with_state(state);
    // A failing test server shows up as the test's own assertion failing.
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.await;
        })
        .await;
}

async fn handle(AxState(state): AxState<State>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    state.requests.push(ReceivedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).to_string(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).to_string(),
    });
    let reply = state
        .queue
        .with(|q| q.pop_front())
        .unwrap_or_else(|| state.default.with(|d| d.clone()));
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        reply.body,
    )
        .into_response();
    if let Some(loc) = reply.location
        && let Ok(v) = HeaderValue::from_str(&loc)
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
