//! Poison rows of [`SqliteStore`](super::SqliteStore): a contact state or a
//! held postback's parameters that cannot be decoded is set aside instead
//! of failing every read that meets it. Takes the row and the decode
//! error's text; writes the quarantine mark in its own write transaction.
//!
//! Guarantees: a quarantined contact has no wake time (the scheduler never
//! meets it again; the one it had is kept in `contacts_quarantined`) and
//! loading it fails with [`StoreError::Quarantined`] naming it; a
//! quarantined held postback is never released nor expired. Each is logged
//! at `warn` once, when it is set aside. Reasons are decoder messages:
//! they name positions and formats, never a stored value.

use super::{SqliteStore, db, from_hex, limit, wall_now};
use crate::store::{Quarantine, Release, Result, StoreError, Versioned, doc};

impl SqliteStore {
    /// Sets these contacts (id, reason) aside: marked, wake time cleared.
    pub(super) async fn quarantine(&self, bad: &[(String, String)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut marked = Vec::new();
        let mut done = Ok(());
        for (id, reason) in bad {
            let step = mark(&mut tx, id, reason).await;
            match step {
                Ok(true) => marked.push((id, reason)),
                Ok(false) => {}
                Err(e) => {
                    done = Err(e);
                    break;
                }
            }
        }
        self.finish(tx, done).await?;
        for (id, reason) in marked {
            crate::store::quarantine::log_contact(id, reason);
        }
        Ok(())
    }

    /// Sets a held postback aside (kept, marked, never released).
    pub(super) async fn quarantine_held(&self, id: i64, source: &str, reason: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE postbacks_held SET quarantined = ? WHERE id = ? AND quarantined IS NULL",
        )
        .bind(reason)
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(db)?;
        if done.rows_affected() > 0 {
            crate::store::quarantine::log_held(id, source, reason);
        }
        Ok(())
    }

    /// Quarantine records, oldest first: of one contact, or all.
    pub(super) async fn quarantine_list(
        &self,
        contact: Option<&str>,
        limit_: usize,
    ) -> Result<Vec<Quarantine>> {
        let rows: Vec<crate::store::quarantine::QuarantineRow> = sqlx::query_as(
            "SELECT contact, reason, at, next_wake FROM contacts_quarantined \
             WHERE ?1 IS NULL OR contact = ?1 ORDER BY at, contact LIMIT ?2",
        )
        .bind(contact)
        .bind(limit(limit_))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(crate::store::quarantine::records(rows))
    }

    /// See [`crate::store::Store::release_quarantine`]: in one write
    /// transaction, so the state checked is the state released.
    pub(super) async fn release(&self, contact: &str) -> Result<Release> {
        let mut tx = self.begin_write().await?;
        let done = release_in(&mut tx, contact).await;
        let done = self.finish(tx, done).await?;
        if done == Release::Released {
            crate::store::quarantine::log_released(contact);
        }
        Ok(done)
    }

    /// Proof that writes go through again: one row rewritten.
    pub(super) async fn probe(&self, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO store_probe (id, at) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map(drop)
        .map_err(db);
        self.finish(tx, done).await?;
        self.health.ok();
        Ok(())
    }

    /// A page of the due set (see [`crate::store::Store::due_after`]) and
    /// the states in it that cannot be decoded (id, reason).
    pub(super) async fn due_page(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit_: usize,
    ) -> Result<(Vec<(i64, Versioned)>, Vec<(String, String)>)> {
        let rows = self.due_rows(now, after, limit_).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for (wake, id, state, version) in rows {
            let decoded = match from_hex(&state) {
                Some(bytes) => doc::decode(&id, &bytes),
                None => Err(StoreError::Corrupt(format!("contact `{id}`: bad hex"))),
            };
            match decoded {
                Ok(state) => out.push((
                    wake,
                    Versioned {
                        state,
                        version,
                        next_wake: Some(wake),
                    },
                )),
                Err(e) => bad.push((id, e.to_string())),
            }
        }
        // an aggregate keeps no order by contract
        out.sort_by(|a, b| (a.0, &a.1.state.contact.id).cmp(&(b.0, &b.1.state.contact.id)));
        Ok((out, bad))
    }
}

/// Marks one contact quarantined and clears its wake time; whether it was
/// newly marked.
async fn mark(conn: &mut sqlx::SqliteConnection, id: &str, reason: &str) -> Result<bool> {
    let marked = sqlx::query(
        "INSERT INTO contacts_quarantined (contact, reason, at, next_wake) \
         SELECT id, ?, ?, next_wake FROM contacts WHERE id = ? \
         ON CONFLICT (contact) DO NOTHING",
    )
    .bind(reason)
    .bind(wall_now())
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query("UPDATE contacts SET next_wake = NULL WHERE id = ? AND next_wake IS NOT NULL")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(marked.rows_affected() > 0)
}

/// The release itself, inside the caller's transaction.
async fn release_in(conn: &mut sqlx::SqliteConnection, contact: &str) -> Result<Release> {
    let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
        "SELECT CAST(c.state AS BLOB), q.next_wake FROM contacts_quarantined q \
         JOIN contacts c ON c.id = q.contact WHERE q.contact = ?",
    )
    .bind(contact)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some((state, wake)) = row else {
        return Ok(Release::NotQuarantined);
    };
    if let Err(e) = doc::decode(contact, &state) {
        return Ok(Release::Unreadable(e.to_string()));
    }
    sqlx::query("UPDATE contacts SET next_wake = coalesce(next_wake, ?) WHERE id = ?")
        .bind(wake)
        .bind(contact)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM contacts_quarantined WHERE contact = ?")
        .bind(contact)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(Release::Released)
}
