//! The recovery of the writer of [`SqliteStore`](super::SqliteStore) after
//! a failed write (the outcome of each write is kept by
//! [`crate::store::health`]).
//!
//! Guarantees: a failed write transaction is rolled back; when SQLite ended
//! it already (it does on `SQLITE_FULL` and I/O errors, so the `ROLLBACK`
//! fails and sqlx would keep the connection inside a transaction for ever),
//! the writer connection is closed and the pool opens a new one, so the
//! next write after the fault succeeds without a restart: checked after a
//! failed write (`settle_writer`) and whenever the connection goes back to
//! the pool (`writer_released`, so a transaction dropped on any path is
//! covered). A write transaction that finds the connection stuck settles it
//! first and tries once more.

use super::SqliteStore;
use sqlx::Connection;
use std::future::Future;

/// The writer pool's check of a connection given back: one left inside a
/// transaction (a dropped transaction whose queued `ROLLBACK` failed) is
/// closed instead of kept, and the pool opens a new one. Not for an
/// in-memory database, which lives as long as its connection.
pub(super) fn writer_released(
    conn: &mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        // runs the rollback a dropped transaction queued
        conn.ping().await?;
        let stuck = conn.is_in_transaction();
        if stuck {
            tracing::warn!(
                "the database writer connection is left inside a failed transaction: replaced by a new one"
            );
        }
        Ok(!stuck)
    })
}

impl SqliteStore {
    /// After a failed write transaction: runs the rollback the dropped
    /// transaction queued, and replaces the writer connection if it is
    /// still inside a transaction (its `ROLLBACK` failed) or does not
    /// answer. An in-memory database cannot be replaced: that is logged.
    pub(super) async fn settle_writer(&self) {
        let mut conn = match self.writer.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the database writer connection");
                return;
            }
        };
        let pinged = conn.ping().await;
        if pinged.is_ok() && !conn.is_in_transaction() {
            return;
        }
        let error = match pinged {
            Ok(()) => "its rollback did not end the transaction".to_string(),
            Err(e) => e.to_string(),
        };
        if self.memory {
            tracing::error!(
                error = %error,
                "the in-memory database's writer connection is left inside a failed transaction"
            );
            return;
        }
        tracing::warn!(
            error = %error,
            "the database writer connection is left inside a failed transaction: replaced by a new one"
        );
        conn.close_on_drop();
    }
}
