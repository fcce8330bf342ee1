//! A small SMTP server that accepts every message and records it.
//!
//! Speaks EHLO/HELO, MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP,
//! QUIT, and accepts any AUTH PLAIN or LOGIN. No TLS: tests use security
//! `"none"`. [`SmtpSink::fail_rcpt`] makes RCPT answer a given code (451,
//! 550, …) for fault tests. Several messages may share one connection, as a
//! pooled client sends them.

use crate::{Log, Server, Shared};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body, CRLF line ends,
    /// dot-unstuffed, without the final `.` line).
    pub data: String,
}

impl ReceivedMail {
    /// The first header of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_string());
            }
        }
        found
    }
}

#[derive(Clone)]
struct State {
    mails: Log<ReceivedMail>,
    rcpt_fault: Shared<Option<u16>>,
}

/// A running SMTP sink on `127.0.0.1`. Dropping it stops the listener.
pub struct SmtpSink(Server<State>);

impl SmtpSink {
    /// Start on the current tokio runtime.
    pub async fn start() -> SmtpSink {
        SmtpSink(Server::here(State::new(), serve).await)
    }

    /// Start on a thread of its own (for synchronous tests).
    pub fn start_blocking() -> SmtpSink {
        SmtpSink(Server::thread(State::new(), serve))
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub fn port(&self) -> u16 {
        self.0.addr.port()
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.0.state.mails.all()
    }

    /// Wait until at least `n` messages arrived or `timeout` passed.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        self.0.state.mails.wait_for(n, timeout).await
    }

    /// [`SmtpSink::wait_for`] for synchronous tests.
    pub fn wait_for_blocking(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        self.0.state.mails.wait_for_blocking(n, timeout)
    }

    /// Answer every RCPT with this code (e.g. 451 or 550); `None` accepts again.
    pub fn fail_rcpt(&self, code: Option<u16>) {
        self.0.state.rcpt_fault.with(|f| *f = code);
    }
}

impl State {
    fn new() -> State {
        State {
            mails: Log::new(),
            rcpt_fault: Shared::new(None),
        }
    }
}

async fn serve(listener: TcpListener, mut stop: oneshot::Receiver<()>, state: State) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let s = state.clone();
                    tokio::spawn(async move {
                        // A client that hangs up mid-session is not a test failure.
                        let _ = session(stream, s).await;
                    });
                }
            }
        }
    }
}

/// The address inside `<…>` after `FROM:` / `TO:`.
fn path_arg(cmd: &str) -> String {
    let rest = cmd.split_once(':').map_or("", |(_, r)| r);
    match (rest.find('<'), rest.find('>')) {
        (Some(a), Some(b)) if a < b => rest[a + 1..b].to_string(),
        _ => rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

async fn read_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

async fn session(stream: TcpStream, state: State) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 nudge-testkit ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    while let Some(cmd) = read_line(&mut r).await? {
        let upper = cmd.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        let reply: String = match verb {
            "EHLO" => "250-nudge-testkit\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK".into(),
            "HELO" => "250 nudge-testkit".into(),
            "MAIL" => {
                from = Some(path_arg(&cmd));
                to.clear();
                "250 2.1.0 ok".into()
            }
            "RCPT" if from.is_none() => "503 5.5.1 mail first".into(),
            "RCPT" => match state.rcpt_fault.with(|f| *f) {
                Some(550) => "550 5.1.1 mailbox unavailable".into(),
                Some(451) => "451 4.3.0 try again later".into(),
                Some(code) => format!("{code} rejected by the test sink"),
                None => {
                    to.push(path_arg(&cmd));
                    "250 2.1.5 ok".into()
                }
            },
            "DATA" if to.is_empty() => "503 5.5.1 recipient first".into(),
            "DATA" => {
                w.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let Some(line) = read_line(&mut r).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                state.mails.push(ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 2.0.0 queued".into()
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 ok".into()
            }
            "NOOP" => "250 2.0.0 ok".into(),
            "QUIT" => {
                w.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            "AUTH" => {
                let mut parts = upper.split_whitespace().skip(1);
                let mechanism = parts.next().unwrap_or_default();
                let initial = parts.next().is_some();
                if mechanism == "LOGIN" {
                    if !initial {
                        w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        read_line(&mut r).await?;
                    }
                    w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                    read_line(&mut r).await?;
                } else if !initial {
                    w.write_all(b"334 \r\n").await?;
                    read_line(&mut r).await?;
                }
                "235 2.7.0 authenticated".into()
            }
            _ => "502 5.5.2 command not recognised".into(),
        };
        w.write_all(reply.as_bytes()).await?;
        w.write_all(b"\r\n").await?;
    }
    Ok(())
}
