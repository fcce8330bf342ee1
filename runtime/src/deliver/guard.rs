//! The SSRF guard: which hosts outgoing HTTP may reach.
//!
//! Takes the operator's `allow_hosts` (host names or IP literals, each with
//! an optional port) and gives three checks that together keep requests off
//! internal networks unless a host is allowed:
//!
//! * [`Guard::check_url`], before a request is sent: an IP-literal host is
//!   judged directly (a literal URL never reaches the resolver);
//! * [`GuardedResolver`], the client's DNS resolver: it drops non-public
//!   addresses of a name and refuses a name left with none;
//! * [`Guard::check_hop`], in the redirect policy: every hop again.
//!
//! Non-public: loopback, private (10/8, 172.16/12, 192.168/16), link-local
//! (169.254/16, cloud metadata included), CGNAT 100.64/10, "this network"
//! 0/8, broadcast, multicast, reserved 240/4, and their IPv6 forms (`::1`,
//! `::`, ULA fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast,
//! and IPv4 embedded in mapped, compatible, NAT64 and 6to4 addresses).
//! Names under `.internal` and bare metadata names (`metadata`,
//! `instance-data`) are refused before any lookup.
//! Refusals are [`Refused`] errors whose text names a host or an IP, never a
//! URL, a query or a header.
//!
//! SMTP goes under the same rules: [`Guard::check_smtp_host`] judges a
//! channel's host before the first connection and gives the public
//! address to connect to (an allowed host is reached by its name).

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Names that reach cloud metadata services without an internal IP literal.
const INTERNAL_NAMES: &[&str] = &["metadata.google.internal", "metadata", "instance-data"];

/// A request refused by the guard; the text is safe to show and store.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Why an address is not public, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private address",
        _ if ip.is_link_local() => "a link-local address",
        _ if ip.is_broadcast() => "a broadcast address",
        _ if ip.is_multicast() => "a multicast address",
        (0, _) => "an unspecified address",
        (100, 64..=127) => "a shared (CGNAT) address",
        (240..=255, _) => "a reserved address",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return v4_reason(v4);
    }
    Some(match s[0] {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        x if x & 0xfe00 == 0xfc00 => "a private (unique local) address",
        x if x & 0xffc0 == 0xfe80 => "a link-local address",
        x if x & 0xffc0 == 0xfec0 => "a site-local address",
        x if x & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// The IPv4 address inside a mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && s[6] != 0)) {
        return Some(last);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// A URL's host: an IP literal or a name (lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    fn parse(text: &str) -> Host {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// One `allow_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: Host,
    port: Option<u16>,
}

impl Allowed {
    fn parse(entry: &str) -> Allowed {
        let e = entry.trim();
        // `[v6]:port`, `host:port`, or a bare host / IPv6 literal.
        let (host, port) = if let Some(rest) = e.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
                None => (rest, None),
            }
        } else {
            match e.split_once(':') {
                Some((h, p)) if !p.contains(':') => match p.parse() {
                    Ok(port) => (h, Some(port)),
                    Err(_) => (e, None),
                },
                _ => (e, None),
            }
        };
        Allowed {
            host: Host::parse(host),
            port,
        }
    }
}

/// The allow list and the checks built on it.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<Allowed>,
}

impl Guard {
    /// A guard that exempts these hosts (`host`, `host:port`, `[v6]:port`).
    pub fn new(allow_hosts: &[String]) -> Guard {
        Guard {
            allow: allow_hosts
                .iter()
                .filter(|h| !h.trim().is_empty())
                .map(|h| Allowed::parse(h))
                .collect(),
        }
    }

    /// The host is allowed on this port.
    fn allows(&self, host: &Host, port: Option<u16>) -> bool {
        self.allow
            .iter()
            .any(|a| &a.host == host && (a.port.is_none() || a.port == port))
    }

    /// The host is allowed on some port (all the resolver can know).
    fn allows_on_any_port(&self, host: &Host) -> bool {
        self.allow.iter().any(|a| &a.host == host)
    }

    /// Judge a URL without DNS: `Ok(true)` when it is allowed outright or is
    /// a public IP literal, `Ok(false)` when it is a name the resolver will
    /// judge, `Err` when refused.
    fn judge(&self, url: &Url) -> Result<bool, Refused> {
        let host = Host::parse(url.host_str().unwrap_or_default());
        let port = url.port_or_known_default();
        if self.allows(&host, port) {
            return Ok(true);
        }
        match host {
            Host::Ip(ip) => match non_public(ip) {
                Some(why) => Err(Refused(format!("refused: `{ip}` is {why}"))),
                None => Ok(true),
            },
            Host::Name(n) if n.is_empty() => Err(Refused("refused: the URL has no host".into())),
            Host::Name(n) if INTERNAL_NAMES.contains(&n.as_str()) || n.ends_with(".internal") => {
                Err(Refused(format!("refused: `{n}` is an internal name")))
            }
            Host::Name(_) => Ok(false),
        }
    }

    /// Check a URL before it is sent. A name allowed only on other ports is
    /// resolved here and must give public addresses only (the resolver lets
    /// an allowed name through whatever the port).
    pub async fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if self.judge(url)? {
            return Ok(());
        }
        let host = Host::parse(url.host_str().unwrap_or_default());
        if let Host::Name(n) = &host
            && self.allows_on_any_port(&host)
        {
            let addrs = tokio::net::lookup_host((n.as_str(), 0))
                .await
                .map_err(|_| Refused(format!("could not resolve `{n}`")))?;
            for a in addrs {
                if let Some(why) = non_public(a.ip()) {
                    return Err(Refused(format!(
                        "refused: `{n}` resolves to `{}`, {why}",
                        a.ip()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Check a redirect hop (synchronous: names are left to the resolver,
    /// except a name allowed only on other ports, which is refused).
    pub fn check_hop(&self, url: &Url) -> Result<(), Refused> {
        if self.judge(url)? {
            return Ok(());
        }
        let host = Host::parse(url.host_str().unwrap_or_default());
        if let Host::Name(n) = &host
            && self.allows_on_any_port(&host)
        {
            return Err(Refused(format!(
                "refused: redirect to `{n}` on a port that is not allowed"
            )));
        }
        Ok(())
    }
}

/// An SMTP host as refusals may name it: as written, or (when it came from
/// `env`) by a label, with no address shown.
pub struct SmtpHost<'a> {
    pub host: &'a str,
    pub port: u16,
    /// `Some("env(\"SMTP_HOST\")")` when the host is a secret.
    pub label: Option<&'a str>,
}

impl Guard {
    /// Check an SMTP host before connecting. `Ok(Some(ip))`: connect to
    /// this checked address; `Ok(None)`: the host is allowed on this port,
    /// connect to it by name.
    pub async fn check_smtp_host(&self, h: &SmtpHost<'_>) -> Result<Option<IpAddr>, Refused> {
        let host = Host::parse(h.host);
        let allowed = self.allows(&host, Some(h.port));
        let shown = h.label.unwrap_or(h.host);
        let name = match host {
            Host::Ip(ip) => {
                return match non_public(ip) {
                    Some(why) if !allowed => Err(Refused(format!("refused: `{shown}` is {why}"))),
                    _ => Ok(Some(ip)),
                };
            }
            _ if allowed => return Ok(None),
            Host::Name(n) if n.is_empty() => return Err(Refused("refused: no host".into())),
            Host::Name(n) => n,
        };
        if INTERNAL_NAMES.contains(&name.as_str()) || name.ends_with(".internal") {
            return Err(Refused(format!("refused: `{shown}` is an internal name")));
        }
        let found: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), h.port))
            .await
            .map_err(|_| Refused(format!("could not resolve `{shown}`")))?
            .map(|a| a.ip())
            .collect();
        if let Some(ip) = found.iter().find(|ip| non_public(**ip).is_none()) {
            return Ok(Some(*ip));
        }
        match found
            .iter()
            .find_map(|ip| non_public(*ip).map(|why| (ip, why)))
        {
            Some((ip, why)) => Err(Refused(match h.label {
                Some(label) => format!("refused: `{label}` resolves to {why}"),
                None => format!("refused: `{name}` resolves to `{ip}`, {why}"),
            })),
            None => Err(Refused(format!("could not resolve `{shown}`"))),
        }
    }
}

/// The client's DNS resolver: system resolution, then the guard's filter.
pub struct GuardedResolver {
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.allows_on_any_port(&Host::Name(host.clone())) {
                let addrs: Addrs = Box::new(found.into_iter());
                return Ok(addrs);
            }
            let mut refused = None;
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match non_public(a.ip()) {
                    Some(why) => {
                        refused.get_or_insert((a.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            if public.is_empty() {
                let msg = match refused {
                    Some((ip, why)) => format!("refused: `{host}` resolves to `{ip}`, {why}"),
                    None => format!("could not resolve `{host}`"),
                };
                return Err(Box::new(Refused(msg)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
        ] {
            assert!(non_public(ip(a)).is_some(), "{a} should be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public(ip(a)), None, "{a} is public");
        }
    }

    #[test]
    fn allow_entries_match_host_and_port() {
        let g = Guard::new(&[
            "127.0.0.1:9000".into(),
            "LocalHost".into(),
            "[::1]:81".into(),
        ]);
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(g.check_hop(&u("http://127.0.0.1:9000/x")).is_ok());
        assert!(g.check_hop(&u("http://127.0.0.1:9001/x")).is_err());
        assert!(g.check_hop(&u("http://[::1]:81/")).is_ok());
        assert!(g.check_hop(&u("http://[::1]:82/")).is_err());
        assert!(g.check_hop(&u("http://localhost:1234/")).is_ok());
        let e = g
            .check_hop(&u("http://169.254.169.254/latest?token=s3cret"))
            .unwrap_err();
        assert_eq!(e.0, "refused: `169.254.169.254` is a link-local address");
        assert!(g.check_hop(&u("http://metadata.google.internal/")).is_err());
    }
}
