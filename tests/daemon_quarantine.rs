//! A damaged contact row under `nudge run`, end to end: the real binary on
//! a SQLite file whose one contact state is made unreadable behind its
//! back. The other contacts' timers fire on time; the damaged one is
//! quarantined (logged once at `warn`, counted in `/metrics`, shown with
//! its reason by `GET /v1/contacts/{id}` and `nudge stats`), an event for
//! it is refused with 409 `quarantined`, and `nudge contact release`
//! takes it back once its state is repaired.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::local;
use daemon_support::{Daemon, Scratch, nudge_cmd, wait_until};
use serde_json::json;
use std::time::Duration;

const PROJECT: &str = r#"
contact { email: email? unique  n: int = 0 }
event go {}
flow later {
  when go
  step one { wait 2 seconds }
  step two { set contact.n = contact.n + 10 }
}
"#;

fn go(id: &str) -> serde_json::Value {
    json!({"event": "go", "contact": {"id": id}})
}

/// Runs one statement on the database through a connection of its own
/// (binding `blob`), and gives the contact's state as it was.
fn edit(db: &str, sql: &'static str, id: &str, blob: &[u8]) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(db).await.unwrap();
        let (before,): (Vec<u8>,) = sqlx::query_as("SELECT state FROM contacts WHERE id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::query(sql)
            .bind(blob)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        before
    })
}

/// Makes a contact's state unreadable, as a disk fault or a bad manual
/// edit would; gives the state it had.
fn damage(db: &str, id: &str) -> Vec<u8> {
    edit(
        db,
        "UPDATE contacts SET state = ? WHERE id = ?",
        id,
        &[0x07, 0xff],
    )
}

#[test]
fn a_damaged_contact_is_quarantined_and_blocks_no_timer() {
    let s = Scratch::new("quarantine");
    s.write("main.nudge", PROJECT);
    let d = Daemon::start(&s, &local());
    for id in ["ann", "bad", "bob"] {
        assert_eq!(d.post_json("/v1/events", &go(id)).status, 202);
    }
    let good = damage(&s.db(), "bad");

    // the others' timers fire
    for id in ["ann", "bob"] {
        wait_until(Duration::from_secs(10), || {
            (d.contact(id).json()["fields"]["n"] == json!(10)).then_some(())
        })
        .unwrap_or_else(|| panic!("`{id}` never fired: {:?}\n{}", d.contact(id), d.log()));
    }

    let c = d.contact("bad");
    assert_eq!(c.status, 200, "{c:?}");
    let reason = c.json()["quarantined"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("unknown state format 0x07"), "{reason}");

    let refused = d.post_json("/v1/events", &go("bad"));
    assert_eq!(refused.expect_error(409)["code"], "quarantined");

    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains("nudge_quarantined_contacts 1"),
        "{metrics}"
    );

    let stats = nudge_cmd(&["stats", "--db", &s.db()], &[]);
    let out = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success(), "{out}");
    assert!(
        out.contains("quarantined 1 contacts, 0 held postbacks"),
        "{out}"
    );
    assert!(out.contains("  bad since "), "{out}");
    assert!(out.contains(&reason), "{out}");

    // logged at warn once, though met again since
    let log = d.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("contact quarantined"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("bad"),
        "{}",
        lines[0]
    );
    assert!(!log.contains("cannot read due contacts"), "{log}");

    // released only once it reads again; then its timer fires
    let release = || nudge_cmd(&["contact", "release", "bad", "--db", &s.db()], &[]);
    let kept = release();
    assert!(!kept.status.success());
    let err = String::from_utf8_lossy(&kept.stderr).to_string();
    assert!(err.contains("stays quarantined"), "{err}");
    edit(
        &s.db(),
        "UPDATE contacts SET state = ? WHERE id = ?",
        "bad",
        &good,
    );
    let done = release();
    let out = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(
        done.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.contains("released `bad`"), "{out}");
    wait_until(Duration::from_secs(10), || {
        (d.contact("bad").json()["fields"]["n"] == json!(10)).then_some(())
    })
    .unwrap_or_else(|| panic!("`bad` never fired: {:?}\n{}", d.contact("bad"), d.log()));
    assert!(
        d.get("/metrics")
            .body
            .contains("nudge_quarantined_contacts 0")
    );
    let again = release();
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not quarantined"));
}
