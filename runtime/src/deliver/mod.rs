//! Outgoing delivery: one attempt at one outbox row.
//!
//! Takes the bundle's channels, the environment and [`DeliverOptions`];
//! gives [`Channels::deliver`], which sends a rendered `send` (a
//! [`crate::vm::Message`]) or a built `call` (a [`crate::vm::Request`]) and
//! says what happened as a [`Delivered`]. Retry, backoff and dead letters are
//! the caller's policy; this module only classifies.
//!
//! Guarantees: a message on an `smtp` channel goes as e-mail (`smtp.rs`), one
//! on `http`/`slack` as its request, a call as its request (`http.rs`); every
//! HTTP request carries `Idempotency-Key` and every e-mail a `Message-ID`
//! derived from the key, so retries are recognisable; HTTP and SMTP never
//! reach a non-public address unless allowed (`guard.rs`); a channel's `rate` is a
//! slot per row taken when the row is claimed ([`Channels::admit`]): a row
//! whose slot is later goes back to the outbox with that not-before, so no
//! delivery sleeps on it and no other channel waits; each attempt is
//! bounded by the channel's timeout. Error texts never contain a URL, a query or a header value.
//! A payload's requests are sealed (`vm/seal.rs`): their `env` values are
//! joined here, from the environment the channels were made with, just
//! before the request is sent.

pub mod guard;
pub mod http;
pub mod smtp;

use crate::vm::{Message, Request};
use guard::Guard;
use http::{Http, Outgoing};
use nudge_compiler::bundle::{Bundle, ChannelKind, Rate};
use smtp::{Mailer, SmtpSettings};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How delivery is set up.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// Hosts HTTP may reach even when internal: names or IP literals,
    /// optionally with a port (`127.0.0.1:9000`); case-insensitive.
    pub allow_hosts: Vec<String>,
    /// The timeout of a channel without `timeout`, and of bare-URL calls.
    pub default_timeout: Duration,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        DeliverOptions {
            allow_hosts: Vec::new(),
            default_timeout: Duration::from_secs(10),
        }
    }
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Accepted: a 2xx with its body parsed as JSON (`Null` when not JSON),
    /// or an e-mail the SMTP server accepted (status 250, `Null`).
    Ok {
        status: i64,
        json: serde_json::Value,
    },
    /// Try again later: connection errors, timeouts, 408, 429, 5xx, SMTP 4xx.
    Transient(String),
    /// Will not succeed as is: other 4xx, SMTP 5xx, a bad address, a payload
    /// that cannot be read, or a request refused by the guard (status 0).
    Permanent { status: i64, error: String },
}

/// The longest a delivery waits for its rate slot in place; a later slot
/// sends the row back to the outbox with that instant as its not-before.
pub const TINY_WAIT: Duration = Duration::from_millis(100);

/// What a channel's `rate` says about one row now ([`Channels::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Deliver it after this wait (at most [`TINY_WAIT`]).
    Go(Duration),
    /// Its slot is this far away: reschedule it; the slot stays reserved
    /// for the row, so it goes when it comes back.
    Later(Duration),
}

/// A channel's throttle: `count` per `per`, bursts up to `count` (GCRA).
/// Slots are taken when rows are claimed, never slept on in a delivery.
struct Throttle {
    interval: Duration,
    burst: Duration,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// When the next delivery would be due at the steady rate.
    next: Option<Instant>,
    /// Rows sent back with a slot of their own: outbox id → slot.
    reserved: HashMap<i64, Instant>,
}

/// Reserved slots this far in the past belong to rows settled elsewhere.
const STALE_SLOT: Duration = Duration::from_secs(3600);

impl Throttle {
    fn new(rate: Rate) -> Throttle {
        let count = rate.count.max(1);
        let per = Duration::from_secs(u64::try_from(rate.per_seconds.max(1)).unwrap_or(1));
        let interval = per / count;
        Throttle {
            interval,
            burst: interval * (count - 1),
            slots: Mutex::new(Slots::default()),
        }
    }

    /// This row's turn: its reserved slot, or the next one at the rate.
    fn admit(&self, id: i64, now: Instant) -> Admission {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let start = match s.reserved.get(&id).copied() {
            Some(at) => at,
            None => {
                let due = s.next.map_or(now, |n| n.max(now));
                s.next = Some(due + self.interval);
                due.checked_sub(self.burst).unwrap_or(now).max(now)
            }
        };
        let wait = start.saturating_duration_since(now);
        if wait <= TINY_WAIT {
            s.reserved.remove(&id);
            return Admission::Go(wait);
        }
        if s.reserved.insert(id, start).is_none() && s.reserved.len().is_multiple_of(1024) {
            s.reserved
                .retain(|_, at| now.saturating_duration_since(*at) < STALE_SLOT);
        }
        Admission::Later(wait)
    }
}

enum Way {
    Smtp(Box<Mailer>),
    Web,
}

struct Channel {
    way: Way,
    throttle: Option<Throttle>,
    timeout: Duration,
}

struct Inner {
    channels: BTreeMap<String, Channel>,
    http: Http,
    default_timeout: Duration,
    /// The values sealed requests refer to.
    env: BTreeMap<String, String>,
}

/// The delivery side of every channel of a bundle. Cheap to clone (shared).
#[derive(Clone)]
pub struct Channels {
    inner: Arc<Inner>,
}

impl Channels {
    /// Evaluate the channels' settings against `env` and set up the clients.
    /// Fails on a missing or invalid SMTP setting, naming the channel.
    pub fn new(
        bundle: &Bundle,
        env: &BTreeMap<String, String>,
        opts: DeliverOptions,
    ) -> Result<Channels, String> {
        let guard = Arc::new(guard::Guard::new(&opts.allow_hosts));
        let mut channels = BTreeMap::new();
        for def in &bundle.channels {
            let timeout = match def.timeout_seconds {
                Some(s) if s > 0 => Duration::from_secs(u64::try_from(s).unwrap_or(u64::MAX)),
                _ => opts.default_timeout,
            };
            let way = match &def.kind {
                ChannelKind::Smtp {
                    host,
                    port,
                    security,
                    username,
                    password,
                    from,
                    reply_to,
                } => {
                    let settings = SmtpSettings {
                        host,
                        port: *port,
                        security,
                        username: username.as_ref(),
                        password: password.as_ref(),
                        from,
                        reply_to: reply_to.as_ref(),
                    };
                    let guard = Arc::clone(&guard);
                    let mailer = Mailer::new(&def.name, &settings, env, timeout, guard)?;
                    Way::Smtp(Box::new(mailer))
                }
                ChannelKind::Slack { .. } | ChannelKind::Http { .. } => Way::Web,
            };
            channels.insert(
                def.name.clone(),
                Channel {
                    way,
                    throttle: def.rate.map(Throttle::new),
                    timeout,
                },
            );
        }
        let http = Http::new(Guard::clone(&guard))?;
        Ok(Channels {
            inner: Arc::new(Inner {
                channels,
                http,
                default_timeout: opts.default_timeout,
                env: env.clone(),
            }),
        })
    }

    /// One attempt. `kind` is `"message"` (payload: a [`Message`] as JSON)
    /// or `"call"` (payload: a [`Request`] as JSON).
    pub async fn deliver(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        idem_key: &str,
    ) -> Delivered {
        match kind {
            "message" => match serde_json::from_value::<Message>(payload.clone()) {
                Ok(mut m) => match m.request.as_mut().map(|r| r.unseal(&self.inner.env)) {
                    Some(Err(e)) => permanent(e.to_string()),
                    _ => self.send(&m, idem_key).await,
                },
                Err(_) => permanent("unreadable message payload".into()),
            },
            "call" => match serde_json::from_value::<Request>(payload.clone()) {
                Ok(mut r) => match r.unseal(&self.inner.env) {
                    Ok(()) => self.call(&r, idem_key).await,
                    Err(e) => permanent(e.to_string()),
                },
                Err(_) => permanent("unreadable call payload".into()),
            },
            other => permanent(format!("unknown delivery kind `{other}`")),
        }
    }

    /// Whether outbox row `id` on `channel` may go now under the channel's
    /// `rate` (a channel without one, or unknown, always may). Called once
    /// per claim of the row, before [`Channels::deliver`].
    pub fn admit(&self, channel: &str, id: i64) -> Admission {
        match self
            .inner
            .channels
            .get(channel)
            .and_then(|c| c.throttle.as_ref())
        {
            Some(t) => t.admit(id, Instant::now()),
            None => Admission::Go(Duration::ZERO),
        }
    }

    fn channel(&self, name: &str) -> Result<&Channel, Delivered> {
        self.inner
            .channels
            .get(name)
            .ok_or_else(|| permanent(format!("unknown channel `{name}`")))
    }

    async fn send(&self, m: &Message, idem_key: &str) -> Delivered {
        let ch = match self.channel(&m.channel) {
            Ok(c) => c,
            Err(d) => return d,
        };
        match (&ch.way, &m.request) {
            (Way::Smtp(mailer), _) => mailer.send(m, idem_key).await,
            (Way::Web, Some(r)) => {
                let out = Outgoing {
                    method: &r.method,
                    url: &r.url,
                    headers: &r.headers,
                    body: &r.body,
                    json: false,
                };
                self.inner.http.send(&out, idem_key, ch.timeout).await
            }
            (Way::Web, None) => permanent(format!(
                "the message on channel `{}` has no request",
                m.channel
            )),
        }
    }

    async fn call(&self, r: &Request, idem_key: &str) -> Delivered {
        let mut timeout = self.inner.default_timeout;
        if let Some(name) = &r.channel {
            let ch = match self.channel(name) {
                Ok(c) => c,
                Err(d) => return d,
            };
            timeout = ch.timeout;
        }
        let out = Outgoing {
            method: &r.method,
            url: &r.url,
            headers: &r.headers,
            body: &r.body,
            json: r.json.is_some(),
        };
        self.inner.http.send(&out, idem_key, timeout).await
    }
}

fn permanent(error: String) -> Delivered {
    Delivered::Permanent { status: 0, error }
}

/// `10s`, or `250ms` below a whole second.
fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The innermost I/O error of a chain, in plain words (no addresses).
fn describe_io(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut found = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        cur = err.source();
    }
    let io = found?;
    use std::io::ErrorKind as K;
    Some(match io.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut => "timed out".into(),
        K::UnexpectedEof => "connection closed early".into(),
        K::NotFound => "host not found".into(),
        _ => io.to_string(),
    })
}
