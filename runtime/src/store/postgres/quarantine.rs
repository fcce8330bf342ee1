//! Poison rows and the write probe of [`PgStore`](super::PgStore): a
//! contact state or a held postback's parameters that cannot be decoded
//! is set aside (`store/quarantine.rs` tells them apart and logs them)
//! instead of failing every read that meets it; and the due page, whose
//! unreadable states are set aside so they never hold up the rows behind.
//!
//! Guarantees, as for SQLite: a quarantined contact has no wake time (the
//! one it had is kept in `contacts_quarantined`) and loading it fails with
//! [`StoreError::Quarantined`](crate::store::StoreError::Quarantined); a
//! quarantined held postback is never released nor expired. Each is logged
//! once, when it is set aside (the mark is written only where none is).

use super::{PgStore, db};
use crate::store::quarantine::{decode_states, log_contact, log_held, log_released};
use crate::store::rows::{limit, wall_now};
use crate::store::{Quarantine, Release, Result, Versioned, doc};
use sqlx::PgConnection;

/// Claims the first page of the due set (`$1` now, `$2` the limit, `$3`
/// the lease's end): the due contacts no other claim holds, in (wake time,
/// id) order from the index on `(next_wake, id)`, skipping rows another
/// transaction has locked (a commit under way, another daemon's claim), and
/// stamps them with the lease, so that several daemons share the due set
/// instead of all firing every timer. The order of `RETURNING` is not the
/// page's: the caller sorts.
pub(super) const DUE_FIRST: &str = "WITH due AS (SELECT id FROM contacts \
     WHERE next_wake <= $1 AND wake_lease <= $1 ORDER BY next_wake, id LIMIT $2 \
     FOR UPDATE SKIP LOCKED) \
     UPDATE contacts c SET wake_lease = $3 FROM due WHERE c.id = due.id \
     RETURNING c.id, c.state, c.version, c.next_wake";

/// [`DUE_FIRST`] after `($4, $5)`, a (wake time, id).
pub(super) const DUE_AFTER: &str = "WITH due AS (SELECT id FROM contacts \
     WHERE next_wake <= $1 AND wake_lease <= $1 AND (next_wake, id) > ($4, $5) \
     ORDER BY next_wake, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
     UPDATE contacts c SET wake_lease = $3 FROM due WHERE c.id = due.id \
     RETURNING c.id, c.state, c.version, c.next_wake";

impl PgStore {
    /// Sets these contacts (id, reason) aside: marked, wake time cleared,
    /// in one transaction.
    pub(super) async fn quarantine(&self, bad: &[(String, String)]) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = mark(&mut tx, bad).await;
        let marked = self.finish(tx, done).await?;
        for (id, reason) in bad.iter().filter(|(id, _)| marked.contains(id)) {
            log_contact(id, reason);
        }
        Ok(())
    }

    /// Sets a held postback aside (kept, marked, never released).
    pub(super) async fn quarantine_held(&self, id: i64, source: &str, reason: &str) -> Result<()> {
        let q = sqlx::query(
            "UPDATE postbacks_held SET quarantined = $1 WHERE id = $2 AND quarantined IS NULL",
        )
        .bind(reason)
        .bind(id);
        if self.write(q).await? > 0 {
            log_held(id, source, reason);
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
             WHERE $1::text IS NULL OR contact = $1 ORDER BY at, contact LIMIT $2",
        )
        .bind(contact)
        .bind(limit(limit_))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(crate::store::quarantine::records(rows))
    }

    /// See [`crate::store::Store::release_quarantine`]: in one transaction,
    /// the row locked, so the state checked is the state released.
    pub(super) async fn release(&self, contact: &str) -> Result<Release> {
        let mut tx = self.begin().await?;
        let done = release_in(&mut tx, contact).await;
        let done = self.finish(tx, done).await?;
        if done == Release::Released {
            log_released(contact);
        }
        Ok(done)
    }

    /// Proof that writes go through again: one row rewritten.
    pub(super) async fn probe(&self, now: i64) -> Result<()> {
        let q = sqlx::query(
            "INSERT INTO store_probe (id, at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now);
        self.write(q).await.map(drop)
    }

    /// Claims a page of the due set (see [`crate::store::Store::due_after`]
    /// and [`DUE_FIRST`]) under a lease of [`PgOptions::timer_lease`]
    /// seconds; the states in it that cannot be decoded come back apart
    /// (id, reason).
    ///
    /// [`PgOptions::timer_lease`]: super::PgOptions::timer_lease
    pub(super) async fn due_page(
        &self,
        now: i64,
        after: Option<(i64, &str)>,
        limit_: usize,
    ) -> Result<(Vec<(i64, Versioned)>, Vec<(String, String)>)> {
        let sql = match after {
            None => DUE_FIRST,
            Some(_) => DUE_AFTER,
        };
        let lease_until = now.saturating_add(self.timer_lease);
        let q = sqlx::query_as(sql)
            .bind(now)
            .bind(limit(limit_))
            .bind(lease_until);
        let q = match after {
            None => q,
            Some((wake, id)) => q.bind(wake).bind(id),
        };
        let rows: Vec<(String, Vec<u8>, i64, Option<i64>)> =
            q.fetch_all(&self.pool).await.map_err(db)?;
        let (states, bad) = decode_states(rows);
        let mut page: Vec<(i64, Versioned)> = states
            .into_iter()
            .filter_map(|v| v.next_wake.map(|w| (w, v)))
            .collect();
        page.sort_unstable_by(|(a, x), (b, y)| {
            (a, &x.state.contact.id).cmp(&(b, &y.state.contact.id))
        });
        Ok((page, bad))
    }
}

/// Marks contacts quarantined and clears their wake times; the ids newly
/// marked.
async fn mark(conn: &mut PgConnection, bad: &[(String, String)]) -> Result<Vec<String>> {
    let (ids, reasons): (Vec<&str>, Vec<&str>) =
        bad.iter().map(|(i, r)| (i.as_str(), r.as_str())).unzip();
    let marked: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO contacts_quarantined (contact, reason, at, next_wake) \
         SELECT c.id, b.reason, $3, c.next_wake \
         FROM UNNEST($1::text[], $2::text[]) AS b(id, reason) JOIN contacts c ON c.id = b.id \
         ON CONFLICT (contact) DO NOTHING RETURNING contact",
    )
    .bind(&ids)
    .bind(reasons)
    .bind(wall_now())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query(
        "UPDATE contacts SET next_wake = NULL WHERE id = ANY($1) AND next_wake IS NOT NULL",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(marked.into_iter().map(|(id,)| id).collect())
}

/// The release itself, inside the caller's transaction.
async fn release_in(conn: &mut PgConnection, contact: &str) -> Result<Release> {
    let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
        "SELECT c.state, q.next_wake FROM contacts_quarantined q \
         JOIN contacts c ON c.id = q.contact WHERE q.contact = $1 FOR UPDATE",
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
    sqlx::query("UPDATE contacts SET next_wake = coalesce(next_wake, $1) WHERE id = $2")
        .bind(wake)
        .bind(contact)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM contacts_quarantined WHERE contact = $1")
        .bind(contact)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(Release::Released)
}
