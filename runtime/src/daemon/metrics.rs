//! Counters the daemon keeps and renders for Prometheus (`GET /metrics`),
//! plus the [`Signals`] that wake the scheduler and the outbox worker early
//! after a commit. Lock-free counters on the hot path; labelled series
//! (deliveries by channel and outcome, HTTP answers by status) under a
//! mutex taken once per delivery or request. Failed enrollments (runtime
//! errors) are counted by flow and reason class once their commit returned,
//! and each is logged as a `warn` line (contact, flow, error: no values of
//! settings ever reach an error text).

use super::apply::{Done, Outcome};
use crate::engine::FailedEnrollment;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Wake-ups between the applier and the background loops.
#[derive(Debug, Default)]
pub struct Signals {
    /// Something may be due sooner than the scheduler planned.
    pub wake: Notify,
    /// New outbox rows were committed.
    pub outbox: Notify,
    /// While set, the outbox worker claims nothing (rows wait, pending).
    pub deliveries_held: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    count: u64,
    seconds: f64,
}

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub inputs_applied: AtomicU64,
    pub postbacks_held: AtomicU64,
    pub postbacks_duplicate: AtomicU64,
    pub postbacks_rejected: AtomicU64,
    pub timers_fired: AtomicU64,
    /// Time triggers planned too far in the past to fire (LANGUAGE.md A3).
    pub triggers_missed: AtomicU64,
    /// Timer firings of one contact stopped by the bound of
    /// `shell::MAX_TIMER_ROUNDS` at one instant.
    pub timer_rounds_exhausted: AtomicU64,
    /// Stored states rewritten in the current format (`convert.rs`).
    pub state_conversions: AtomicU64,
    /// Seconds between a timer's due instant and its firing (last batch).
    pub timer_lag_seconds: AtomicI64,
    commits: Mutex<Sum>,
    commit_inputs: AtomicU64,
    deliveries: Mutex<BTreeMap<(String, &'static str), Sum>>,
    http: Mutex<BTreeMap<u16, u64>>,
    /// Failed enrollments by (flow, reason).
    failed: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Store calls of the background tasks that failed, by task
    /// (`scheduler`, `outbox`): the database was away or refused.
    store_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Deploy attempts by outcome (`deploy.rs`).
    deploys: Mutex<BTreeMap<&'static str, u64>>,
    /// Enrollments a `--migrate` deploy could not move (their step is gone).
    pub migrations_unmapped: AtomicU64,
    /// Enrollments moved to a newer version by `--migrate`.
    pub migrations_moved: AtomicU64,
    pub signals: Signals,
    /// HTTP connection counters (`serve.rs`), rendered by `/metrics` itself.
    pub connections: std::sync::Arc<super::serve::ConnStats>,
}

impl Metrics {
    /// A background task's store call failed (logged by the task).
    pub fn store_error(&self, task: &'static str) {
        if let Ok(mut m) = self.store_errors.lock() {
            *m.entry(task).or_default() += 1;
        }
    }

    pub fn commit(&self, took: Duration, inputs: usize) {
        if let Ok(mut s) = self.commits.lock() {
            s.count += 1;
            s.seconds += took.as_secs_f64();
        }
        self.commit_inputs
            .fetch_add(inputs as u64, Ordering::Relaxed);
    }

    pub fn after_commit(&self, outcomes: &[Outcome]) {
        for o in outcomes {
            match o {
                Ok(Done::Applied { .. }) => &self.inputs_applied,
                Ok(Done::Duplicate) => &self.events_duplicate,
                Ok(Done::Held) => &self.postbacks_held,
                Ok(Done::DuplicatePostback) => &self.postbacks_duplicate,
                Ok(Done::Converted) => &self.state_conversions,
                _ => continue,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A contact will be due at `at`: wake the scheduler to re-plan.
    pub fn wake_hint(&self, _at: i64) {
        self.signals.wake.notify_one();
    }

    pub fn outbox_hint(&self) {
        self.signals.outbox.notify_one();
    }

    pub fn delivery(&self, channel: &str, outcome: &'static str, took: Duration) {
        if let Ok(mut m) = self.deliveries.lock() {
            let s = m.entry((channel.to_string(), outcome)).or_default();
            s.count += 1;
            s.seconds += took.as_secs_f64();
        }
    }

    /// Enrollments a commit failed: counted by flow and reason, and logged.
    pub fn enrollments_failed(&self, failures: &[(String, FailedEnrollment)]) {
        if failures.is_empty() {
            return;
        }
        for (contact, f) in failures {
            tracing::warn!(
                contact = %contact,
                flow = %f.flow,
                reason = f.reason,
                error = %f.error,
                "enrollment failed"
            );
        }
        if let Ok(mut m) = self.failed.lock() {
            for (_, f) in failures {
                *m.entry((f.flow.clone(), f.reason)).or_default() += 1;
            }
        }
    }

    pub fn http(&self, status: u16) {
        if let Ok(mut m) = self.http.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    /// The Prometheus text format; `gauges` are read from the store at scrape.
    /// One deploy attempt, by outcome (`deployed`, `unchanged`,
    /// `rejected`, `failed`).
    pub fn deploy(&self, outcome: &'static str) {
        if let Ok(mut m) = self.deploys.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut o = String::new();
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut o,
            "nudge_events_accepted_total",
            "events accepted by the API",
            get(&self.events_accepted),
        );
        counter(
            &mut o,
            "nudge_events_duplicate_total",
            "events ignored as already seen (idempotency key)",
            get(&self.events_duplicate),
        );
        counter(
            &mut o,
            "nudge_inputs_applied_total",
            "inputs applied (events, changes, postbacks, timers, responses)",
            get(&self.inputs_applied),
        );
        counter(
            &mut o,
            "nudge_postbacks_held_total",
            "postbacks held until their contact appears",
            get(&self.postbacks_held),
        );
        counter(
            &mut o,
            "nudge_postbacks_duplicate_total",
            "postbacks ignored as already seen (`dedupe`)",
            get(&self.postbacks_duplicate),
        );
        counter(
            &mut o,
            "nudge_postbacks_rejected_total",
            "postbacks refused and kept for inspection",
            get(&self.postbacks_rejected),
        );
        counter(
            &mut o,
            "nudge_timers_fired_total",
            "due contacts woken by the scheduler",
            get(&self.timers_fired),
        );
        counter(
            &mut o,
            "nudge_time_triggers_missed_total",
            "time triggers not fired: their instant was more than `late` in the past when planned",
            get(&self.triggers_missed),
        );
        counter(
            &mut o,
            "nudge_timer_rounds_exhausted_total",
            "contacts whose timers were still due after the last firing allowed at one instant",
            get(&self.timer_rounds_exhausted),
        );
        counter(
            &mut o,
            "nudge_state_conversions_total",
            "stored contact states rewritten in the current format",
            get(&self.state_conversions),
        );
        counter(
            &mut o,
            "nudge_commit_inputs_total",
            "inputs written by group commits",
            get(&self.commit_inputs),
        );
        let _ = writeln!(
            o,
            "# HELP nudge_timer_lag_seconds delay between a timer's due instant and its firing\n# TYPE nudge_timer_lag_seconds gauge\nnudge_timer_lag_seconds {}",
            self.timer_lag_seconds.load(Ordering::Relaxed)
        );
        let c = self.commits.lock().map(|s| *s).unwrap_or_default();
        let _ = writeln!(
            o,
            "# HELP nudge_commit_seconds time spent applying and committing groups of inputs\n# TYPE nudge_commit_seconds summary\nnudge_commit_seconds_sum {}\nnudge_commit_seconds_count {}",
            c.seconds, c.count
        );
        let _ = writeln!(
            o,
            "# HELP nudge_deliveries_total deliveries by channel and outcome\n# TYPE nudge_deliveries_total counter"
        );
        let deliveries = self
            .deliveries
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        for ((ch, outcome), s) in &deliveries {
            let _ = writeln!(
                o,
                "nudge_deliveries_total{{channel=\"{}\",outcome=\"{outcome}\"}} {}",
                label(ch),
                s.count
            );
        }
        let _ = writeln!(
            o,
            "# HELP nudge_delivery_seconds time spent per delivery attempt\n# TYPE nudge_delivery_seconds summary"
        );
        for ((ch, outcome), s) in &deliveries {
            let l = format!("channel=\"{}\",outcome=\"{outcome}\"", label(ch));
            let _ = writeln!(
                o,
                "nudge_delivery_seconds_sum{{{l}}} {}\nnudge_delivery_seconds_count{{{l}}} {}",
                s.seconds, s.count
            );
        }
        let _ = writeln!(
            o,
            "# HELP nudge_http_responses_total API answers by status\n# TYPE nudge_http_responses_total counter"
        );
        for (status, n) in self.http.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(o, "nudge_http_responses_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP nudge_enrollments_failed_total enrollments failed by a runtime error, by flow and reason\n# TYPE nudge_enrollments_failed_total counter"
        );
        for ((flow, reason), n) in self.failed.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(
                o,
                "nudge_enrollments_failed_total{{flow=\"{}\",reason=\"{reason}\"}} {n}",
                label(&flow)
            );
        }
        let _ = writeln!(
            o,
            "# HELP nudge_store_errors_total store calls of the scheduler and the outbox worker that failed, by task\n# TYPE nudge_store_errors_total counter"
        );
        for (task, n) in self
            .store_errors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            let _ = writeln!(o, "nudge_store_errors_total{{task=\"{task}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP nudge_deploys_total deploy attempts (start, SIGHUP, --watch, POST /v1/deploy, store poll) by outcome\n# TYPE nudge_deploys_total counter"
        );
        for (outcome, n) in self.deploys.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(o, "nudge_deploys_total{{outcome=\"{outcome}\"}} {n}");
        }
        counter(
            &mut o,
            "nudge_migrations_moved_total",
            "enrollments moved to a newer version at the step of the same name (--migrate)",
            get(&self.migrations_moved),
        );
        counter(
            &mut o,
            "nudge_migrations_unmapped_total",
            "enrollments --migrate left on their version: the new version has no step of that name",
            get(&self.migrations_unmapped),
        );
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        o
    }
}

/// A label value with `"`, `\` and newlines escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_counters_and_labels() {
        let m = Metrics::default();
        m.events_accepted.fetch_add(3, Ordering::Relaxed);
        m.after_commit(&[
            Ok(Done::Duplicate),
            Ok(Done::Held),
            Ok(Done::DuplicatePostback),
            Ok(Done::Converted),
        ]);
        m.delivery("e\"mail", "delivered", Duration::from_millis(5));
        m.http(202);
        m.store_error("outbox");
        m.store_error("outbox");
        let failed = |flow: &str, reason| {
            (
                "c1".to_string(),
                FailedEnrollment {
                    flow: flow.into(),
                    reason,
                    error: "division by zero in `/` (line 3)".into(),
                },
            )
        };
        m.enrollments_failed(&[
            failed("f", "division_by_zero"),
            failed("f", "division_by_zero"),
        ]);
        m.enrollments_failed(&[failed("g", "budget")]);
        let text = m.render(&[("nudge_outbox_pending", "rows waiting", 7)]);
        assert!(text.contains("nudge_events_accepted_total 3"));
        assert!(text.contains("nudge_events_duplicate_total 1"));
        assert!(text.contains("nudge_postbacks_held_total 1"));
        assert!(text.contains("nudge_postbacks_duplicate_total 1"));
        assert!(text.contains("nudge_state_conversions_total 1"));
        assert!(
            text.contains("nudge_deliveries_total{channel=\"e\\\"mail\",outcome=\"delivered\"} 1")
        );
        assert!(text.contains("nudge_http_responses_total{status=\"202\"} 1"));
        assert!(text.contains("nudge_outbox_pending 7"));
        assert!(
            text.contains(
                "nudge_enrollments_failed_total{flow=\"f\",reason=\"division_by_zero\"} 2"
            )
        );
        assert!(text.contains("nudge_enrollments_failed_total{flow=\"g\",reason=\"budget\"} 1"));
        assert!(text.contains("nudge_store_errors_total{task=\"outbox\"} 2"));
    }
}
