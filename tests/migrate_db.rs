//! `nudge migrate-db` with the real binary: a daemon on SQLite enrolls
//! contacts in a flow waiting a few seconds and is stopped before the
//! waits end; the store is copied to Postgres (summary on stdout,
//! progress on stderr); a second copy writes nothing; a daemon started on
//! the copy fires the waiting timers, each hook sent once. The wrong
//! direction is refused with a clear message. Needs
//! `NUDGE_TEST_POSTGRES_URL`: `scripts/test --test migrate_db`.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::projects::local;
use daemon_support::{Daemon, Scratch, fill, nudge_cmd, wait_until};
use nudge_testkit::HttpSink;
use nudge_testkit::pg::PgDatabase;
use serde_json::json;
use std::time::Duration;

const SRC: &str = r#"
contact { later: bool = false }
event go {}

channel hook: http {
  method = "POST"
  url = "@HOOK@/hook"
  body = json { contact: contact.id }
}

flow later "Later" {
  when go
  step s {
    wait 6 seconds
    set contact.later = true
    send hook "woke"
  }
}
"#;

const IDS: [&str; 3] = ["ann", "bob", "cat"];

fn migrate(from: &str, to: &str) -> std::process::Output {
    nudge_cmd(&["migrate-db", "--from", from, "--to", to], &[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_copied_store_fires_its_waiting_timers_on_postgres() {
    let sink = HttpSink::start_blocking();
    let s = Scratch::new("migrate-db");
    s.write("main.nudge", &fill(SRC, &[("HOOK", sink.url())]));
    let mut d = Daemon::start(&s, &local());
    for id in IDS {
        let r = d.post_json("/v1/events", &json!({"event": "go", "contact": {"id": id}}));
        assert_eq!(r.status, 202, "{r:?}");
    }
    for id in IDS {
        wait_until(Duration::from_secs(5), || {
            (d.contact(id).status == 200).then_some(())
        })
        .unwrap_or_else(|| panic!("`{id}` never stored"));
    }
    assert!(d.terminate(Duration::from_secs(10)).success());
    assert!(sink.requests().is_empty(), "a wait fired before the copy");

    let pg = PgDatabase::create_blocking("migrate_db_cli");
    let out = migrate(&s.db(), pg.url());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let contacts = stdout.lines().find(|l| l.starts_with("contacts ")).unwrap();
    assert_eq!(contacts.split_whitespace().nth(1), Some("3"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stderr.contains("contacts: 3 rows copied"), "{stderr}");

    let again = migrate(&s.db(), pg.url());
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{stdout}\n{}", text(&again.stderr));
    let contacts = stdout.lines().find(|l| l.starts_with("contacts ")).unwrap();
    let cols: Vec<&str> = contacts.split_whitespace().collect();
    assert_eq!(cols.get(1..3), Some(&["0", "3"][..]), "{stdout}");

    let d = Daemon::start(&s, &local().db(pg.url()));
    let got = sink.wait_for_blocking(IDS.len(), Duration::from_secs(20));
    assert_eq!(got.len(), IDS.len());
    for id in IDS {
        let c = d.contact(id).json();
        assert_eq!(c["fields"]["later"], true, "{c}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.requests().len(), IDS.len(), "a hook sent twice");
}

#[test]
fn only_sqlite_to_postgres_is_copied() {
    let out = migrate("postgres://u:hunter2@127.0.0.1:1/x", "sqlite://x.db");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("copies from a SQLite store to a PostgreSQL one"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
