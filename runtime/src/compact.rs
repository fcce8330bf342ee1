//! Bounded per-contact state (issue 10, item 6). A contact's state is read
//! and re-encoded on every input, so what it keeps must not grow with the
//! contact's age. After every input [`Engine::apply`](crate::engine::Engine::apply)
//! calls [`compact`], which keeps:
//!
//! * **sends** (`sent`, read only by channel caps, LANGUAGE.md §10): the
//!   instants inside the largest cap window of the bundles the engine runs
//!   (the deployed one and the earlier versions its enrollments run on);
//!   sends released later than now (held by a send window) are kept too. A
//!   bundle without caps keeps none. A send older than the largest window
//!   can never count towards any cap, so dropping it changes no decision.
//! * **enrollments**: per flow, only the latest one (the one `reenter` and
//!   the `expect` statements read: its flow, outcome and step). It stays
//!   whole when active; when finished, its last event and call results are
//!   cleared (nothing reads them once it has ended). Earlier, finished
//!   enrollments of the flow are folded into [`Folded`] counts per (status,
//!   step), so `nudge stats` and `GET /v1/flows` still count every
//!   enrollment ever.
//!
//! Only finished enrollments and old sends are dropped, so an active
//! enrollment's index never moves in a way the engine relies on: it runs
//! once at the end of an input, after every index was used.

use crate::engine::ContactState;
use crate::vm::{Enrollment, Status};
use nudge_compiler::bundle::Bundle;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Finished enrollments of one place folded into a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folded {
    pub flow: String,
    pub status: Status,
    pub step: String,
    pub n: i64,
}

/// The largest cap window (seconds) of these bundles; `None` without caps.
pub fn largest_cap_window<'b>(bundles: impl IntoIterator<Item = &'b Bundle>) -> Option<i64> {
    bundles
        .into_iter()
        .flat_map(|b| b.channels.iter())
        .filter_map(|c| c.cap.map(|r| r.per_seconds))
        .max()
}

/// Bound a state after an input at `now`: old sends dropped, earlier
/// finished enrollments folded (see the module header).
pub fn compact(st: &mut ContactState, now: i64, window: Option<i64>) {
    prune_sent(&mut st.sent, now, window);
    fold_enrollments(st);
}

/// Keep sends after `now − window` (a cap counts `(now − D, now]`).
fn prune_sent(sent: &mut BTreeMap<String, Vec<i64>>, now: i64, window: Option<i64>) {
    match window {
        None => sent.clear(),
        Some(w) => {
            let from = now.saturating_sub(w.max(0));
            for times in sent.values_mut() {
                times.retain(|t| *t > from);
            }
            sent.retain(|_, times| !times.is_empty());
        }
    }
}

/// Per flow, the latest enrollment stays; earlier ones (finished, as only
/// the latest can be active) become counts. The latest, once finished,
/// drops what only a running enrollment reads.
fn fold_enrollments(st: &mut ContactState) {
    let mut latest: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in st.enrollments.iter().enumerate() {
        latest.insert(e.flow.as_str(), i);
    }
    let keep: Vec<bool> = st
        .enrollments
        .iter()
        .enumerate()
        .map(|(i, e)| latest.get(e.flow.as_str()) == Some(&i) || e.is_active())
        .collect();
    if keep.iter().all(|k| *k) {
        st.enrollments.iter_mut().for_each(strip_finished);
        return;
    }
    let old = std::mem::take(&mut st.enrollments);
    for (e, keep) in old.into_iter().zip(keep) {
        if keep {
            st.enrollments.push(e);
        } else {
            add_folded(&mut st.folded, &e);
        }
    }
    st.enrollments.iter_mut().for_each(strip_finished);
}

fn strip_finished(e: &mut Enrollment) {
    if e.is_active() {
        return;
    }
    e.event = None;
    e.locals.clear();
    e.wait = None;
}

fn add_folded(folded: &mut Vec<Folded>, e: &Enrollment) {
    let same = |f: &&mut Folded| f.flow == e.flow && f.status == e.status && f.step == e.step;
    match folded.iter_mut().find(same) {
        Some(f) => f.n += 1,
        None => folded.push(Folded {
            flow: e.flow.clone(),
            status: e.status,
            step: e.step.clone(),
            n: 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Contact;

    fn enrollment(flow: &str, status: Status, step: &str) -> Enrollment {
        Enrollment {
            flow: flow.into(),
            version: "v".into(),
            pc: 0,
            status,
            step: step.into(),
            entered_at: 0,
            event: None,
            locals: BTreeMap::new(),
            wait: None,
            holdout: false,
            failure: None,
        }
    }

    #[test]
    fn sends_outside_the_largest_window_are_dropped() {
        let mut st = ContactState::new(Contact::default());
        st.sent.insert("a".into(), vec![10, 50, 100, 200]);
        st.sent.insert("b".into(), vec![5]);
        compact(&mut st, 100, Some(50));
        // (50, 100] counts now; 200 is a held send still to come
        assert_eq!(st.sent, BTreeMap::from([("a".into(), vec![100, 200])]));
        compact(&mut st, 100, None);
        assert!(st.sent.is_empty());
    }

    #[test]
    fn earlier_enrollments_of_a_flow_fold_into_counts() {
        let mut st = ContactState::new(Contact::default());
        st.enrollments = vec![
            enrollment("f", Status::Completed, "end"),
            enrollment("g", Status::Exited, "x"),
            enrollment("f", Status::Completed, "end"),
            enrollment("f", Status::Active, "wait"),
        ];
        compact(&mut st, 0, None);
        let left: Vec<(&str, Status)> = st
            .enrollments
            .iter()
            .map(|e| (e.flow.as_str(), e.status))
            .collect();
        assert_eq!(left, [("g", Status::Exited), ("f", Status::Active)]);
        assert_eq!(
            st.folded,
            [Folded {
                flow: "f".into(),
                status: Status::Completed,
                step: "end".into(),
                n: 2
            }]
        );
    }
}
