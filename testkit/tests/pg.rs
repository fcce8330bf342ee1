//! `PgDatabase` against the real test server (`scripts/test` starts it).

#![allow(clippy::unwrap_used)]

use nudge_testkit::pg::{PgDatabase, server_url};
use sqlx::Connection;

async fn exists(name: &str) -> bool {
    let mut admin = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    n == 1
}

#[tokio::test]
async fn a_database_of_its_own_is_created_and_dropped() {
    let a = PgDatabase::create("one").await;
    let b = PgDatabase::create("one").await;
    assert_ne!(a.name(), b.name());
    let mut conn = sqlx::PgConnection::connect(a.url()).await.unwrap();
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(db, a.name());
    let name = a.name().to_string();
    // dropped while a connection is still open (WITH (FORCE))
    drop(a);
    assert!(!exists(&name).await);
    assert!(exists(b.name()).await);
}

#[test]
fn create_blocking_works_outside_a_runtime() {
    let db = PgDatabase::create_blocking("blocking");
    assert!(db.url().ends_with(db.name()));
}
