//! hyper's own error answers, given the API's JSON error shape
//! (docs/operations.md, "Connections").
//!
//! When hyper cannot parse a request head it answers by itself — the router
//! never sees that request — and closes the connection: 400 for a malformed
//! request line or header, 431 for a head over `--max-head-size` (or with
//! too many header fields), 414 for a request target too long
//! (`hyper::proto::h1::role::Server::on_error`). That answer is a bare head:
//! `HTTP/1.1 <status> <reason>`, `connection: close`, `content-length: 0`,
//! `date`. [`JsonErrors`] is the connection's stream as hyper sees it: a
//! write that is exactly such a head is replaced by the same head with
//! `content-type: application/json`, its `content-length` and an
//! `{"error":{"code","message"}}` body. Each one is logged (one `info` line
//! under the access target: peer, status, code — never the bytes received)
//! and counted (`nudge_http_malformed_requests_total`).
//!
//! Why such a write is hyper's answer and nothing else:
//! * hyper writes it only while no byte of an answer to that request has
//!   been written, and it reads the next head of a keep-alive connection
//!   only once the previous answer is flushed (`try_keep_alive` runs after
//!   the flush), so that head starts a write of its own, alone — for the
//!   2nd request of a keep-alive connection as for the 1st;
//! * every error answer the router gives carries `content-type:
//!   application/json` (`api.rs`, `json_errors`), so an error head with no
//!   content type, no body and `connection: close` is not the router's.
//!
//! Every other write goes straight through, unbuffered: it is looked at
//! only when it is short and starts `HTTP/1.x 4` or `5`. Should hyper ever
//! write its answer behind other bytes, it passes unchanged (a bare head,
//! as before this module).

use super::ConnStats;
use crate::daemon::api_edge::ACCESS_TARGET;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's answer heads are about 100 bytes; longer writes are not looked at.
const MAX_HEAD: usize = 512;

/// A stream whose writes of hyper's own bare error heads become JSON answers.
pub struct JsonErrors<S> {
    inner: S,
    peer: SocketAddr,
    stats: Arc<ConnStats>,
    max_head_size: usize,
    /// The replacement answer not yet written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    pub fn new(inner: S, peer: SocketAddr, stats: Arc<ConnStats>, max_head_size: usize) -> Self {
        JsonErrors {
            inner,
            peer,
            stats,
            max_head_size,
            pending: None,
        }
    }

    /// Take `buf` in place of the stream when it is hyper's error head.
    fn replace(&mut self, buf: &[u8]) -> bool {
        let Some((status, head)) = recognise(buf) else {
            return false;
        };
        let (code, message) = describe(status, self.max_head_size);
        tracing::info!(
            target: ACCESS_TARGET,
            peer = %self.peer,
            status,
            code,
            "request refused before routing: {message}"
        );
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        self.pending = Some((answer(head, code, &message), 0));
        true
    }
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    /// Write what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Self { inner, pending, .. } = self;
        if let Some((bytes, done)) = pending {
            while *done < bytes.len() {
                let n = ready!(Pin::new(&mut *inner).poll_write(cx, &bytes[*done..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *done += n;
            }
            *pending = None;
        }
        Poll::Ready(Ok(()))
    }
}

/// The status and head (without its blank line) of a write that is exactly
/// hyper's bare error answer.
fn recognise(buf: &[u8]) -> Option<(u16, &str)> {
    let prefix = buf.get(..10)?;
    if buf.len() > MAX_HEAD
        || !prefix.starts_with(b"HTTP/1.")
        || prefix[8] != b' '
        || !matches!(prefix[9], b'4' | b'5')
    {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?.strip_suffix("\r\n\r\n")?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.get(9..12)?.parse().ok()?;
    let (mut closes, mut empty) = (false, false);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => closes = value.eq_ignore_ascii_case("close"),
            "content-length" => empty = value == "0",
            "content-type" | "transfer-encoding" => return None,
            _ => {}
        }
    }
    (closes && empty).then_some((status, head))
}

/// The error code and message of a status hyper answers by itself.
fn describe(status: u16, max_head_size: usize) -> (&'static str, String) {
    match status {
        400 => (
            "bad_request",
            "the request line or a header is malformed (HTTP/1.1 expected)".to_string(),
        ),
        414 => ("uri_too_long", "the request target is too long".to_string()),
        431 => (
            "headers_too_large",
            format!(
                "the request head is larger than {max_head_size} bytes or has too many header fields"
            ),
        ),
        s => {
            let reason = axum::http::StatusCode::from_u16(s)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("error")
                .to_lowercase();
            (if s >= 500 { "internal" } else { "bad_request" }, reason)
        }
    }
}

/// hyper's head with a JSON body: its `content-length` replaced.
fn answer(head: &str, code: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    let kept = head.split("\r\n").filter(|l| {
        !l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
    });
    for line in kept {
        out.push_str(line);
        out.push_str("\r\n");
    }
    // writing to a String cannot fail
    let _ = write!(
        out,
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    out.into_bytes()
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if self.replace(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && self.replace(only)
        {
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BARE: &str = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
                        date: Wed, 02 Dec 2026 12:58:22 GMT\r\n\r\n";

    #[test]
    fn only_a_bare_error_head_is_hypers() {
        let (status, head) = recognise(BARE.as_bytes()).unwrap();
        assert_eq!((status, head), (400, BARE.trim_end()));
        let ours = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\
                    content-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(recognise(ours.as_bytes()), None);
        let ok = BARE.replace("400 Bad Request", "200 OK");
        assert_eq!(recognise(ok.as_bytes()), None);
        let kept_alive = BARE.replace("connection: close\r\n", "");
        assert_eq!(recognise(kept_alive.as_bytes()), None);
        let with_body = format!("{BARE}{{}}");
        assert_eq!(recognise(with_body.as_bytes()), None);
        let two = format!("{BARE}{BARE}");
        assert_eq!(recognise(two.as_bytes()), None);
        assert_eq!(recognise(b"HTTP/1.1 4"), None);
    }

    #[test]
    fn the_answer_keeps_the_head_and_adds_a_json_body() {
        let (status, head) = recognise(BARE.as_bytes()).unwrap();
        let (code, message) = describe(status, 16384);
        let raw = String::from_utf8(answer(head, code, &message)).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{raw}");
        assert!(head.contains("\r\nconnection: close") && head.contains("\r\ndate: "));
        assert!(head.contains("\r\ncontent-type: application/json"), "{raw}");
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        assert!(!head.contains("content-length: 0"), "{raw}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        let (code, message) = describe(431, 16384);
        assert_eq!(code, "headers_too_large");
        assert!(message.contains("16384"), "{message}");
        assert_eq!(describe(503, 1).0, "internal");
    }

    #[tokio::test]
    async fn other_writes_pass_and_the_answer_is_written_in_full_in_small_pieces() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(16);
        let stats = Arc::new(ConnStats::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut w = JsonErrors::new(a, peer, stats.clone(), 16384);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.map(|_| got)
        });
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        w.write_all(ok.as_bytes()).await.unwrap();
        w.write_all(BARE.as_bytes()).await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        let got = String::from_utf8(reader.await.unwrap().unwrap()).unwrap();
        let rest = got.strip_prefix(ok).unwrap_or_else(|| panic!("{got}"));
        let (head, body) = rest.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request", "{got}");
        assert_eq!(stats.malformed.load(Ordering::Relaxed), 1);
    }
}
