//! The active counters of migration 0009, made exact: the migration gave
//! every active count the latest bundle's version, since SQL cannot read a
//! state. When it has just run on a database with contacts, the active
//! rows are rebuilt from the stored states (the places of `store::places`),
//! in one transaction. Ended counts (version `''`) were exact already.
//! A state that cannot be decoded is left out and logged (it is
//! quarantined by the next read that needs it).

use super::{db, doc};
use crate::store::{Result, places};
use sqlx::SqlitePool;
use std::collections::BTreeMap;

/// States read per page.
const PAGE: i64 = 1000;

/// The migration that keys the counters by version.
pub(super) const FLOW_VERSIONS: i64 = 9;

/// Whether migration 0009 is still to run on this database (it has a
/// migration table and an earlier migration in it).
pub(super) async fn pending(pool: &SqlitePool) -> Result<bool> {
    let table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if table.is_none() {
        return Ok(false);
    }
    let (max,): (Option<i64>,) = sqlx::query_as("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok(max.is_some_and(|m| m < FLOW_VERSIONS))
}

/// Rebuild the active counters from the stored states.
pub(super) async fn active_counts(pool: &SqlitePool) -> Result<()> {
    let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut after = String::new();
    let mut skipped = 0usize;
    loop {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, CAST(state AS BLOB) FROM contacts WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        for (id, state) in rows {
            let Ok(st) = doc::decode(&id, &state) else {
                skipped += 1;
                continue;
            };
            for p in places(&st).into_iter().filter(|p| p.status == "active") {
                *counts.entry((p.flow, p.version, p.step)).or_default() += p.n;
            }
        }
    }
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("DELETE FROM flow_counts WHERE status = 'active'")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    for ((flow, version, step), n) in &counts {
        sqlx::query(
            "INSERT INTO flow_counts (flow, version, status, step, n) VALUES (?, ?, 'active', ?, ?)",
        )
        .bind(flow)
        .bind(version)
        .bind(step)
        .bind(n)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    if skipped > 0 {
        tracing::warn!(
            contacts = skipped,
            "flow counts rebuilt by version without contacts whose state cannot be read"
        );
    }
    tracing::info!(rows = counts.len(), "flow counts keyed by bundle version");
    Ok(())
}
