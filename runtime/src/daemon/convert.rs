//! The one-shot conversion of stored contact states (issue 10, item 6): a
//! state an earlier version stored (tag `0x01`, or JSON text; see
//! [`crate::store::doc`]) is read through its old layout, but stays in it
//! until it is written. At every start the daemon walks, in the background,
//! the contacts whose stored state is in an older format
//! ([`Store::old_format_contacts`](crate::store::Store::old_format_contacts),
//! found by the format tag, so once everything is converted the walk is one
//! empty index look) and sends each through the applier as a
//! [`Job::Convert`]: the normal commit path, so the contact's version
//! moves, a concurrent input wins (a contact written since it was listed
//! is already converted and is skipped), and the write compacts the state
//! as an input would. No input is run: the contact's enrollments, waits
//! and fields stay as they were.
//!
//! Each conversion is counted (`nudge_state_conversions_total`) once its
//! commit returned; one info line gives the total when the pass converted
//! anything, and a warn line each page that had failures (those rows are
//! tried again at the next start, or converted by their next input).

use super::{Done, Job, Shared};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Contacts listed and converted per step of the walk.
const PAGE: usize = 1000;

/// Convert every stored state in an older format, a page at a time;
/// stops early on `cancel`. Gives how many states were rewritten.
pub async fn convert_states(shared: Arc<Shared>, cancel: CancellationToken) -> usize {
    let mut after: Option<String> = None;
    let mut converted = 0;
    while !cancel.is_cancelled() {
        let page = match shared
            .store
            .old_format_contacts(after.as_deref(), PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the contact states stored in an older format; they are converted at the next start or by their next input");
                break;
            }
        };
        let Some((last, _)) = page.last().cloned() else {
            break;
        };
        let jobs = page
            .into_iter()
            .map(|(contact, version)| Job::Convert { contact, version })
            .collect();
        let mut failed = Vec::new();
        for outcome in shared.queue.submit_each(jobs).await {
            match outcome {
                Ok(Done::Converted) => converted += 1,
                Ok(_) => {}
                Err(e) => failed.push(e),
            }
        }
        if let Some(first) = failed.first() {
            tracing::warn!(failed = failed.len(), error = %first, "contact states not converted to the current format; tried again at the next start");
        }
        after = Some(last);
    }
    converted
}

/// The daemon's task: the pass, and its info line.
pub(super) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let n = convert_states(shared, cancel).await;
    if n > 0 {
        tracing::info!(
            contacts = n,
            "converted stored contact states to the current format"
        );
    }
}
