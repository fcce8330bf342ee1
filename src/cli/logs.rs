//! The daemon's logs: JSON lines on stderr, filtered by `NUDGE_LOG`
//! (docs/operations.md, "Logs").
//!
//! Takes the `NUDGE_LOG` text; installs the subscriber. Guarantees:
//! * the wire traces of dependencies ([`WIRE_TARGETS`]: SMTP dialogues,
//!   HTTP and TLS internals, SQL statements) are capped at `warn` unless the
//!   filter names their target itself (`NUDGE_LOG=debug,lettre=trace`), so
//!   `NUDGE_LOG=debug` or `trace` never prints an SMTP password, a bearer
//!   token or a message body;
//! * a filter that does not parse falls back to `info`, and says so in one
//!   `warn` line;
//! * `NUDGE_LOG=off` prints nothing.

use tracing_subscriber::EnvFilter;

/// Targets capped at `warn` unless named in the filter.
pub const WIRE_TARGETS: [&str; 10] = [
    "lettre",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "sqlx",
    "tower",
    "tower_http",
];

/// The level when `NUDGE_LOG` is unset or empty.
const DEFAULT: &str = "info";

/// Whether a filter directive names `target` (or a module below it).
fn names(directive: &str, target: &str) -> bool {
    let t = directive.split(['=', '[']).next().unwrap_or("").trim();
    t == target || t.strip_prefix(target).is_some_and(|r| r.starts_with("::"))
}

/// The directives actually installed for a `NUDGE_LOG` text.
pub fn directives(given: &str) -> String {
    let given = given.trim();
    let base = if given.is_empty() { DEFAULT } else { given };
    let mut out = base.to_string();
    for target in WIRE_TARGETS {
        if !base.split(',').any(|d| names(d, target)) {
            out.push_str(&format!(",{target}=warn"));
        }
    }
    out
}

/// Install the JSON subscriber on stderr.
pub fn init(nudge_log: Option<&str>) {
    let given = nudge_log.unwrap_or("");
    let (filter, bad) = match EnvFilter::try_new(directives(given)) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new(directives(DEFAULT)), Some(e)),
    };
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    if let Some(e) = bad {
        tracing::warn!(error = %e, "NUDGE_LOG is not a valid filter; logging at `info`");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_targets_are_capped_unless_named() {
        let d = directives("debug");
        assert!(d.starts_with("debug,"), "{d}");
        for t in WIRE_TARGETS {
            assert!(d.contains(&format!(",{t}=warn")), "{t}: {d}");
        }
        let d = directives("debug,lettre=trace,sqlx::query=trace");
        assert!(
            !d.contains("lettre=warn") && !d.contains("sqlx=warn"),
            "{d}"
        );
        assert!(d.contains("reqwest=warn"), "{d}");
        // a target that only starts like one is not it
        assert!(directives("hyperion=debug").contains("hyper=warn"));
        assert!(directives("").starts_with("info,"));
        assert!(EnvFilter::try_new(directives("off")).is_ok());
    }
}
