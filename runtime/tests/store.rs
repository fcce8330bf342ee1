//! The store behaviour suite (`store_suite/`) on both engines, from one
//! list: [`suite_list!`] names every suite function once, and each engine's
//! module (`store/sqlite.rs`, `store/postgres.rs`) turns the list into one
//! test per function on a fresh, migrated database of its own. Beside the
//! suite, each module holds what only its engine can show (a file that is
//! reopened; two stores on one Postgres database racing).
//!
//! The Postgres half needs `NUDGE_TEST_POSTGRES_URL`: run it with
//! `scripts/test -p nudge-runtime --test store`.

#![allow(clippy::unwrap_used)]

mod store_suite;

/// Calls `$engine!` with the name of every suite function.
macro_rules! suite_list {
    ($engine:ident) => {
        $engine!(
            migrate_twice,
            commit_round_trips_a_contact,
            version_conflict_changes_nothing,
            concurrent_writers_conflict,
            contact_ids_page_in_order,
            unique_key_owned_by_another_contact,
            find_contacts_by_many_values,
            a_taken_key_in_a_large_commit_names_its_owner,
            duplicate_event_key_conflicts,
            outbox_idem_key_dedupes,
            a_large_outbox_commit_spans_statements,
            due_contacts_in_wake_order,
            due_pages_walk_the_due_set,
            claim_outbox_leases_rows,
            outbox_retry_dead_requeue,
            outbox_record_settles_a_claim,
            outbox_acks_are_fenced_by_the_claim,
            outbox_leases_renew,
            claim_outbox_except_leaves_channels_out,
            journal_in_order,
            bundles_by_hash,
            pause_flags,
            flow_counts_from_states,
            writes_move_what_the_caller_read,
            held_postbacks,
            rejected_postbacks_kept,
            totals_count_everything,
            postback_keys_are_unique_per_source,
            postback_keys_count_while_held,
            postback_keys_expire_after_until,
        );
    };
}

#[path = "store/postgres.rs"]
mod postgres;
#[path = "store/sqlite.rs"]
mod sqlite;
