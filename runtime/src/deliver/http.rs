//! HTTP delivery: one reqwest client for every `http` and `slack` channel
//! and every `call`.
//!
//! Takes a ready request (method, URL, headers, body) and gives a
//! [`Delivered`]. The client never uses a proxy, resolves names through the
//! [`GuardedResolver`], re-checks every redirect hop (at most
//! [`MAX_REDIRECTS`]), and checks IP-literal hosts before sending. Every
//! request carries `Idempotency-Key`. Error texts are written here from the
//! error's kind: they never contain the URL, its query or a header value
//! (Slack webhooks and API tokens are secrets).

use super::guard::{Guard, GuardedResolver, Refused};
use super::{Delivered, describe_io, format_duration};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url, redirect};
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

/// Redirect hops followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Response bodies read at most (the rest is ignored).
const MAX_BODY: usize = 1024 * 1024;

/// A request ready to go.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a str,
    /// The body is JSON (adds `Content-Type: application/json` when absent).
    pub json: bool,
}

/// Too many redirects.
#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// The shared client and its guard.
#[derive(Clone)]
pub struct Http {
    client: Client,
    guard: Arc<Guard>,
}

impl Http {
    pub fn new(guard: Guard) -> Result<Http, String> {
        let guard = Arc::new(guard);
        let hops = Arc::clone(&guard);
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(TooManyRedirects);
            }
            match hops.check_hop(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let client = Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: Arc::clone(&guard),
            }))
            .redirect(policy)
            .user_agent(concat!("nudge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the http client: {}", e.without_url()))?;
        Ok(Http { client, guard })
    }

    /// Send one request and classify the answer.
    pub async fn send(&self, out: &Outgoing<'_>, idem_key: &str, timeout: Duration) -> Delivered {
        let request = match self.prepare(out, idem_key, timeout).await {
            Ok(r) => r,
            Err(permanent) => return permanent,
        };
        let attempt = async {
            let resp = request.send().await?;
            let status = resp.status().as_u16();
            let body = read_body(resp).await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Err(_) => Delivered::Transient(format!("timed out after {}", format_duration(timeout))),
            Ok(Err(e)) => classify_error(e, timeout),
            Ok(Ok((status, body))) => classify_status(status, &body),
        }
    }

    async fn prepare(
        &self,
        out: &Outgoing<'_>,
        idem_key: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, Delivered> {
        let permanent = |error: String| Delivered::Permanent { status: 0, error };
        let method = Method::from_bytes(out.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| permanent(format!("invalid http method `{}`", out.method)))?;
        let url = Url::parse(out.url.trim()).map_err(|e| permanent(format!("invalid url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(permanent(format!(
                "unsupported url scheme `{}`",
                url.scheme()
            )));
        }
        self.guard
            .check_url(&url)
            .await
            .map_err(|Refused(msg)| permanent(msg))?;
        let mut headers = HeaderMap::new();
        for (k, v) in out.headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| permanent(format!("invalid header name `{k}`")))?;
            // The value may be a secret: name the header only.
            let value = HeaderValue::from_str(v.trim())
                .map_err(|_| permanent(format!("invalid value for header `{k}`")))?;
            headers.append(name, value);
        }
        if out.json && !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let key = HeaderValue::from_str(idem_key)
            .map_err(|_| permanent("invalid idempotency key".to_string()))?;
        headers.insert(HeaderName::from_static("idempotency-key"), key);
        let mut req = self
            .client
            .request(method, url)
            .headers(headers)
            .timeout(timeout);
        if !out.body.is_empty() {
            req = req.body(out.body.to_string());
        }
        Ok(req)
    }
}

/// The body, up to [`MAX_BODY`] bytes.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(body)
}

/// 2xx → `Ok`; 408, 429, 5xx → `Transient`; the rest → `Permanent`.
pub fn classify_status(status: u16, body: &[u8]) -> Delivered {
    match status {
        200..=299 => Delivered::Ok {
            status: i64::from(status),
            json: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
        },
        408 | 429 | 500..=599 => Delivered::Transient(format!("http status {status}")),
        _ => Delivered::Permanent {
            status: i64::from(status),
            error: format!("http status {status}"),
        },
    }
}

/// A transport error, described without its URL.
fn classify_error(e: reqwest::Error, timeout: Duration) -> Delivered {
    let e = e.without_url();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(Refused(msg)) = s.downcast_ref::<Refused>() {
            return Delivered::Permanent {
                status: 0,
                error: msg.clone(),
            };
        }
        if s.downcast_ref::<TooManyRedirects>().is_some() {
            return Delivered::Permanent {
                status: 0,
                error: TooManyRedirects.to_string(),
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Delivered::Transient(format!("timed out after {}", format_duration(timeout)));
    }
    let what = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    match describe_io(&e) {
        Some(io) => Delivered::Transient(format!("{what}: {io}")),
        None => Delivered::Transient(what.to_string()),
    }
}
