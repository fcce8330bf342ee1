//! Redeploys of the real `nudge run` binary without a restart: SIGHUP,
//! `--watch` with a real file edit, `POST /v1/deploy` with a compile error
//! (422, the running version kept, the diagnostics logged with file, line,
//! column and code), and a formatting-only change that keeps the version.

#![allow(clippy::unwrap_used)]

mod daemon_support;

use daemon_support::{Daemon, Options, Scratch, wait_until};
use std::process::Command;
use std::time::Duration;

const V1: &str = "event go {}\nflow f {\n  when go\n  step one { wait 1 day }\n}\n";
const V2: &str = "event go {}\nflow f {\n  when go\n  step one { wait 2 days }\n}\n";
const BROKEN: &str = "event go {}\nflow f {\n  when gone\n  step one { wait 1 day }\n}\n";

fn started(opts: &Options) -> (Scratch, Daemon) {
    let s = Scratch::new("redeploy");
    s.write("main.nudge", V1);
    let d = Daemon::start(&s, opts);
    (s, d)
}

fn version(d: &Daemon) -> String {
    d.flow("f")["version"].as_str().unwrap().to_string()
}

/// Wait until the deployed version differs from `old`.
fn moved_from(d: &Daemon, old: &str) -> Option<String> {
    wait_until(Duration::from_secs(10), || {
        let v = version(d);
        (v != old).then_some(v)
    })
}

#[test]
fn sighup_deploys_the_changed_project() {
    let (s, mut d) = started(&Options::default());
    let v1 = version(&d);
    s.write("main.nudge", V2);
    let sent = Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let v2 = moved_from(&d, &v1);
    assert!(v2.is_some(), "{}", d.log());
    let versions = d.flow("f")["versions"].clone();
    assert_eq!(versions[0]["hash"], v2.unwrap().as_str(), "{versions}");
    assert_eq!(versions.as_array().unwrap().len(), 1, "no contact is on v1");
    assert!(d.terminate(Duration::from_secs(15)).success());
}

#[test]
fn watch_deploys_a_file_edit_and_formatting_keeps_the_version() {
    let (s, mut d) = started(&Options::default().arg("--watch"));
    let v1 = version(&d);
    s.write("main.nudge", V2);
    let v2 = moved_from(&d, &v1);
    assert!(v2.is_some(), "{}", d.log());
    let v2 = v2.unwrap();
    // comments and blank lines only: deployed, same version
    s.write("main.nudge", &format!("// the welcome flow\n\n{V2}"));
    let unchanged = wait_until(Duration::from_secs(10), || {
        d.log().contains(r#""changed":false"#).then_some(())
    });
    assert!(unchanged.is_some(), "{}", d.log());
    assert_eq!(version(&d), v2);
    let metrics = d.get("/metrics").body;
    // a write may settle as more than one change: each deploys the same
    assert!(
        metrics.contains("nudge_deploys_total{outcome=\"unchanged\"} "),
        "{metrics}"
    );
    assert!(d.terminate(Duration::from_secs(15)).success());
}

#[test]
fn a_compile_error_answers_422_and_keeps_the_running_version() {
    let (s, mut d) = started(&Options::default());
    let v1 = version(&d);
    s.write("main.nudge", BROKEN);
    let r = d.call("POST", "/v1/deploy", &[], None);
    assert_eq!(r.status, 422, "{r:?}");
    let body = r.json();
    assert_eq!(body["error"]["code"], "compile_error", "{body}");
    let d0 = &body["error"]["diagnostics"][0];
    assert_eq!(d0["code"], "nudge::resolve::unknown_event", "{body}");
    assert_eq!(
        (d0["file"].as_str(), d0["line"].as_u64()),
        (Some("main.nudge"), Some(3))
    );
    assert_eq!(version(&d), v1, "nothing changed");
    assert!(
        d.log()
            .contains("main.nudge:3:8: error [nudge::resolve::unknown_event]"),
        "{}",
        d.log()
    );
    // the project fixed: deployed
    s.write("main.nudge", V2);
    let r = d.call("POST", "/v1/deploy?migrate=true", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["changed"], true);
    assert_ne!(version(&d), v1);
    assert!(d.terminate(Duration::from_secs(15)).success());
}
