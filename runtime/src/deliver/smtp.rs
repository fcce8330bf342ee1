//! E-mail delivery through lettre, one pooled transport per `smtp` channel.
//!
//! Takes a channel's settings (evaluated once, at start, against the
//! environment) and gives [`Mailer::send`]: a rendered message becomes an
//! e-mail (multipart text + HTML when both are set), with a `Message-ID`
//! derived from the idempotency key so retries carry the same id. SMTP 5xx
//! answers are permanent; 4xx, connection errors and timeouts are transient.
//!
//! The transport is built on first use, inside the runtime that sends (lettre's
//! pool spawns a cleanup task when built, and a closing task when dropped: the
//! drop enters that runtime again). Before it is built, the SSRF guard judges
//! the host (`guard.rs`, as for HTTP): a loopback, private, link-local or
//! metadata address is refused unless `--allow-host` allows it, and the
//! transport connects to the checked address (the host name stays the TLS
//! name), so a later DNS answer cannot move it. A refusal is permanent and
//! names the channel and the host — by its `env(…)` name when the host came
//! from the environment.

use super::guard::{Guard, Refused, SmtpHost};
use super::{Delivered, describe_io, format_duration};
use crate::vm::Message;
use crate::vm::{Scope, eval};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Tokio1Executor};
use nudge_compiler::bundle::{Code, Op};
use nudge_compiler::value::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::runtime::Handle;

/// The settings of one `smtp` channel, as the compiler gives them.
pub struct SmtpSettings<'a> {
    pub host: &'a Code,
    pub port: u16,
    pub security: &'a str,
    pub username: Option<&'a Code>,
    pub password: Option<&'a Code>,
    pub from: &'a Code,
    pub reply_to: Option<&'a Code>,
}

/// One channel's mailer.
pub struct Mailer {
    channel: String,
    host: String,
    /// How refusals name the host when it is a secret (`env("NAME")`).
    host_label: Option<String>,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    guard: Arc<Guard>,
    /// Built on first use, with the runtime it was built in.
    transport: OnceLock<(AsyncSmtpTransport<Tokio1Executor>, Handle)>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    timeout: Duration,
}

/// A setting's text, `None` when unset or empty.
fn text(code: &Code, scope: &Scope<'_>) -> Option<String> {
    // settings are constants and `env(…)`: they do not fail to evaluate
    match eval(code, scope).ok()? {
        Value::Null => None,
        Value::Text(t) if t.trim().is_empty() => None,
        Value::Text(t) => Some(t.trim().to_string()),
        other => Some(crate::vm::request::to_json(&other).to_string()),
    }
}

impl Mailer {
    /// Evaluate the settings and prepare the transport.
    pub fn new(
        channel: &str,
        s: &SmtpSettings<'_>,
        env: &BTreeMap<String, String>,
        timeout: Duration,
        guard: Arc<Guard>,
    ) -> Result<Mailer, String> {
        let mut scope = Scope::new(0);
        scope.env = Some(env);
        let required = |code: &Code, what: &str| {
            text(code, &scope).ok_or_else(|| format!("channel `{channel}`: `{what}` is not set"))
        };
        let host = required(s.host, "host")?;
        let address = |code: &Code, what: &str| -> Result<Mailbox, String> {
            let t = required(code, what)?;
            t.parse().map_err(|_| {
                format!("channel `{channel}`: `{what}` is not an e-mail address: `{t}`")
            })
        };
        let from = address(s.from, "from")?;
        let reply_to = s.reply_to.map(|c| address(c, "reply_to")).transpose()?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_string())
                .map_err(|e| format!("channel `{channel}`: cannot set up tls for `{host}`: {e}"))
        };
        let tls = match s.security {
            "starttls" => Tls::Required(tls(&host)?),
            "tls" => Tls::Wrapper(tls(&host)?),
            "none" => Tls::None,
            other => {
                return Err(format!(
                    "channel `{channel}`: unknown security `{other}` (expected `starttls`, `tls` or `none`)"
                ));
            }
        };
        let credentials = s.username.and_then(|c| text(c, &scope)).map(|user| {
            let password = s.password.and_then(|c| text(c, &scope)).unwrap_or_default();
            Credentials::new(user, password)
        });
        Ok(Mailer {
            channel: channel.to_string(),
            host,
            host_label: env_label(s.host),
            port: s.port,
            tls,
            credentials,
            guard,
            transport: OnceLock::new(),
            from,
            reply_to,
            timeout,
        })
    }

    /// The transport, built on first use once the guard has passed the host.
    /// Must be called inside a tokio runtime (lettre's pool spawns a task).
    async fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, Refused> {
        if let Some((t, _)) = self.transport.get() {
            return Ok(t);
        }
        let host = SmtpHost {
            host: &self.host,
            port: self.port,
            label: self.host_label.as_deref(),
        };
        let ip = self
            .guard
            .check_smtp_host(&host)
            .await
            .map_err(|Refused(why)| Refused(format!("channel `{}`: {why}", self.channel)))?;
        let server = ip.map_or_else(|| self.host.clone(), |ip| ip.to_string());
        let built = self.builder(server).build();
        Ok(&self.transport.get_or_init(|| (built, Handle::current())).0)
    }

    /// A builder that connects to `server` (the checked address, or the
    /// allowed host's name), with the host name for TLS.
    fn builder(&self, server: String) -> AsyncSmtpTransportBuilder {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
            .port(self.port)
            .tls(self.tls.clone())
            .timeout(Some(self.timeout));
        if let Some(c) = &self.credentials {
            b = b.credentials(c.clone());
        }
        b
    }

    /// Send one message.
    pub async fn send(&self, m: &Message, idem_key: &str) -> Delivered {
        let email = match self.build(m, idem_key) {
            Ok(e) => e,
            Err(error) => return Delivered::Permanent { status: 0, error },
        };
        let transport = match self.transport().await {
            Ok(t) => t,
            Err(Refused(error)) => return Delivered::Permanent { status: 0, error },
        };
        match tokio::time::timeout(self.timeout, transport.send(email)).await {
            Err(_) => {
                Delivered::Transient(format!("timed out after {}", format_duration(self.timeout)))
            }
            Ok(Ok(resp)) => Delivered::Ok {
                status: i64::from(u16::from(resp.code())),
                json: serde_json::Value::Null,
            },
            Ok(Err(e)) => classify(&e, self.timeout),
        }
    }

    fn build(&self, m: &Message, idem_key: &str) -> Result<lettre::Message, String> {
        let to = m.to.as_deref().map(str::trim).unwrap_or_default();
        if to.is_empty() {
            return Err("the message has no recipient".into());
        }
        let to: Mailbox = to.parse().map_err(|_| format!("bad address `{to}`"))?;
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone().unwrap_or_default())
            .message_id(Some(message_id(idem_key)));
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        let built = match (&m.text, &m.html) {
            (Some(t), Some(h)) => {
                b.multipart(MultiPart::alternative_plain_html(t.clone(), h.clone()))
            }
            (None, Some(h)) => b.singlepart(SinglePart::html(h.clone())),
            (t, None) => b.singlepart(SinglePart::plain(t.clone().unwrap_or_default())),
        };
        built.map_err(|e| format!("cannot build the e-mail: {e}"))
    }
}

/// `env("NAME")` when a setting is read from the environment.
fn env_label(code: &Code) -> Option<String> {
    code.0.iter().find_map(|op| match op {
        Op::Env(n) => Some(format!("env(\"{n}\")")),
        _ => None,
    })
}

impl Drop for Mailer {
    /// lettre's pool spawns a closing task when dropped: give it the runtime
    /// it was built in, so that dropping the channels outside a runtime does
    /// not panic (a runtime already shut down just cancels the task).
    fn drop(&mut self) {
        if let Some((transport, handle)) = self.transport.take() {
            let _inside = handle.enter();
            drop(transport);
        }
    }
}

/// The `Message-ID` for an idempotency key: the same key, the same id.
/// Characters outside `[A-Za-z0-9._-]` become `-`, with a hash of the key
/// appended then so that different keys keep different ids.
pub fn message_id(idem_key: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let clean: String = idem_key
        .chars()
        .take(64)
        .map(|c| if safe(c) { c } else { '-' })
        .collect();
    if clean == idem_key && !clean.is_empty() {
        return format!("<{clean}@nudge.local>");
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(idem_key.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("<{clean}.{hash}@nudge.local>")
}

/// 5xx → permanent; everything else (4xx, network, tls, timeout) → transient.
fn classify(e: &lettre::transport::smtp::Error, timeout: Duration) -> Delivered {
    let code = e.status().map(u16::from);
    let server_text = || {
        use std::error::Error as _;
        e.source().map(|s| s.to_string()).unwrap_or_default()
    };
    match code {
        Some(c) if e.is_permanent() => Delivered::Permanent {
            status: i64::from(c),
            error: format!("smtp {c}: {}", server_text())
                .trim_end_matches([':', ' '])
                .to_string(),
        },
        Some(c) => Delivered::Transient(
            format!("smtp {c}: {}", server_text())
                .trim_end_matches([':', ' '])
                .to_string(),
        ),
        None if e.is_timeout() => {
            Delivered::Transient(format!("timed out after {}", format_duration(timeout)))
        }
        None => {
            let what = if e.is_tls() {
                "smtp tls failed"
            } else {
                "smtp connection failed"
            };
            match describe_io(e) {
                Some(io) => Delivered::Transient(format!("{what}: {io}")),
                None => Delivered::Transient(what.to_string()),
            }
        }
    }
}
