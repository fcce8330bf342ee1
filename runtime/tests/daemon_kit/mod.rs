//! Helpers for in-process daemon tests: a daemon on a fresh database (a
//! SQLite file, or a Postgres database: [`Scratch::on`] takes the
//! [`Engine`]; `on_both_engines!` runs one test on each) with a
//! `ManualClock`, and moving that clock through every wake time so the
//! scheduler fires each timer at its own instant, as the simulator does.

#![allow(dead_code, clippy::unwrap_used)]

use nudge_runtime::compiler::bundle::Bundle;
use nudge_runtime::daemon::{self, Clock, Config, ManualClock, Running};
use nudge_runtime::store::{self, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use nudge_testkit::engine::{Engine, TestDb};

/// A scratch directory and a fresh database on one engine (a file in the
/// directory, or a Postgres database of its own); both removed on drop.
pub struct Scratch {
    pub path: PathBuf,
    pub db: TestDb,
}

impl Scratch {
    /// On SQLite.
    pub fn new(name: &str) -> Scratch {
        Scratch::on(Engine::Sqlite, name)
    }

    pub fn on(engine: Engine, name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "nudge-{name}-{}-{}",
            engine.name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        let db = TestDb::new(engine, &path, name);
        Scratch { path, db }
    }

    pub fn db_url(&self) -> String {
        self.db.url()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Start a daemon on `url` with a fast tick.
pub async fn start(
    url: &str,
    bundle: Bundle,
    clock: &ManualClock,
    env: BTreeMap<String, String>,
) -> (Running, Arc<dyn Store>) {
    start_with(url, bundle, clock, |c| c.env = env).await
}

/// A daemon on a fresh database on `engine` in scratch directory `name`,
/// with no `env`, its manual clock at 2026-01-01.
pub async fn start_fresh(
    engine: Engine,
    name: &str,
    bundle: Bundle,
) -> (Scratch, Running, Arc<dyn Store>) {
    let dir = Scratch::on(engine, name);
    let clock = ManualClock::new(1_767_225_600);
    let (running, store) = start(&dir.db_url(), bundle, &clock, BTreeMap::new()).await;
    (dir, running, store)
}

/// Start a daemon with a fast tick and settings changed by `set`.
pub async fn start_with(
    url: &str,
    bundle: Bundle,
    clock: &ManualClock,
    set: impl FnOnce(&mut Config),
) -> (Running, Arc<dyn Store>) {
    let store = store::open(url).await.unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.tick = Duration::from_millis(10);
    set(&mut config);
    let running = daemon::start(store.clone(), bundle, Arc::new(clock.clone()), config)
        .await
        .unwrap();
    (running, store)
}

/// Move the clock to `target` through every wake time on the way, waiting
/// at each for the scheduler to fire what is due.
pub async fn advance(store: &Arc<dyn Store>, clock: &ManualClock, target: i64) {
    loop {
        let next = store.next_wake().await.unwrap();
        let Some(w) = next.filter(|w| *w <= target) else {
            break;
        };
        clock.set(w.max(clock.now()));
        for _ in 0..500 {
            if store.due_contacts(clock.now(), 1).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    clock.set(target);
}

/// POST `body` as JSON to the daemon at `addr`; gives the status.
pub async fn post(addr: std::net::SocketAddr, path: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The daemon's `/metrics` text.
pub async fn metrics(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Poll `/metrics` until `done` holds for its text (60 s at most); gives it.
pub async fn metrics_until(addr: std::net::SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(addr).await;
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never got there:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run one SQL statement on the scratch database, on a connection of its
/// own (what an operator, or an earlier build, did to it).
pub async fn sql(dir: &Scratch, statement: &str) {
    dir.db.exec(statement).await;
}
