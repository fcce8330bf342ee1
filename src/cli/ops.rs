//! The commands that operate on a daemon's database (`--db`): `stats`,
//! `contact show|move|remove|release`, `flow pause|resume`, `outbox list|retry`,
//! `send-event`. They load the bundle deployed last and go through the same
//! applier and checks as the HTTP API, so a running daemon and these
//! commands can share one database (every write is a versioned commit).

use super::Outcome;
use super::args::{ContactCommand, DbArgs, FlowCommand, OutboxCommand, SendEventArgs};
use super::error::CliError;
use nudge_compiler::bundle::Bundle;
use nudge_runtime::daemon::api::ApiError;
use nudge_runtime::daemon::apply::Done;
use nudge_runtime::daemon::{self, Config, Job, Shared, SystemClock, api_admin, api_events};
use nudge_runtime::store::{OutboxStatus, Release, Requeue, Store, Totals};
use std::fmt::Write as _;
use std::sync::Arc;

/// A runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}

fn api(e: ApiError) -> CliError {
    CliError::Runtime(e.message)
}

fn db_error(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("database: {e}"))
}

async fn store(db: &DbArgs) -> Result<Arc<dyn Store>, CliError> {
    nudge_runtime::store::open(&db.db)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot open `{}`: {e}", db.db)))
}

/// The database with the bundle deployed last, ready to apply jobs.
async fn attach(db: &DbArgs) -> Result<Arc<Shared>, CliError> {
    let store = store(db).await?;
    let (_, bytes) = store
        .latest_bundle()
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            CliError::Runtime(format!(
                "nothing was deployed to `{}` yet (start `nudge run` once)",
                db.db
            ))
        })?;
    let bundle = Bundle::from_bytes(&bytes)
        .map_err(|e| CliError::Runtime(format!("the deployed bundle cannot be read: {e}")))?;
    let mut config = Config::new(([127, 0, 0, 1], 0).into());
    config.env = daemon::read_env(&bundle, |n| std::env::var(n).ok()).map_err(CliError::Runtime)?;
    let (shared, _task) = daemon::attach(store, Arc::new(bundle), Arc::new(SystemClock), config)?;
    Ok(shared)
}

fn text(stdout: String) -> Outcome {
    Outcome {
        stdout,
        ..Outcome::default()
    }
}

pub fn stats(db: &DbArgs) -> Result<Outcome, CliError> {
    runtime()?.block_on(async {
        let store = store(db).await?;
        let t = store.totals(SystemClock.now_secs()).await.map_err(db_error)?;
        let paused = store.paused().await.map_err(db_error)?;
        let mut o = String::new();
        let _ = writeln!(o, "contacts  {}\nevents    {}\ndue now   {}", t.contacts, t.events, t.due);
        let _ = writeln!(o, "outbox    {} pending, {} delivered, {} dead", t.outbox_pending, t.outbox_delivered, t.outbox_dead);
        quarantine(&mut o, &*store, &t).await?;
        for c in store.flow_counts().await.map_err(db_error)? {
            let state = if paused.contains(&c.flow) { " (paused)" } else { "" };
            let _ = writeln!(
                o,
                "flow {}{state}: {} enrolled, {} active, {} completed, {} exited, {} converted, {} failed",
                c.flow, c.enrolled, c.active, c.completed, c.exited, c.converted, c.failed
            );
            for (step, n) in &c.steps {
                let _ = writeln!(o, "  {step}: {n}");
            }
        }
        Ok(text(o))
    })
}

/// How many contacts and held postbacks are quarantined, and the first
/// contacts with their reasons.
async fn quarantine(o: &mut String, store: &dyn Store, t: &Totals) -> Result<(), CliError> {
    if t.quarantined_contacts == 0 && t.quarantined_postbacks == 0 {
        return Ok(());
    }
    let _ = writeln!(
        o,
        "quarantined {} contacts, {} held postbacks (their stored data cannot be read)",
        t.quarantined_contacts, t.quarantined_postbacks
    );
    for q in store.quarantined(20).await.map_err(db_error)? {
        let since = nudge_runtime::compiler::value::format_time(q.at);
        let _ = writeln!(o, "  {} since {since}: {}", q.contact, q.reason);
    }
    Ok(())
}

pub fn contact(cmd: &ContactCommand) -> Result<Outcome, CliError> {
    runtime()?.block_on(async {
        match cmd {
            ContactCommand::Show { id, db } => {
                let store = store(db).await?;
                let st = store
                    .load_contacts(std::slice::from_ref(id))
                    .await
                    .map_err(db_error)?
                    .pop()
                    .ok_or_else(|| CliError::Runtime(format!("no contact `{id}`")))?;
                let journey = store.journal(id, 500).await.map_err(db_error)?;
                let v = api_admin::contact_json(&st.state, &journey);
                Ok(text(
                    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
                ))
            }
            ContactCommand::Move { id, flow, step, db } => {
                let shared = attach(db).await?;
                let st = shared
                    .store
                    .load_contacts(std::slice::from_ref(id))
                    .await
                    .map_err(db_error)?;
                let active = st.first().is_some_and(|v| v.state.active(flow).is_some());
                let action = if active { "move" } else { "enter" };
                let input =
                    api_admin::manual_input(&shared, flow, action, step.clone()).map_err(api)?;
                manual(&shared, id, input).await
            }
            ContactCommand::Remove { id, flow, db } => {
                let shared = attach(db).await?;
                let input = api_admin::manual_input(&shared, flow, "remove", None).map_err(api)?;
                manual(&shared, id, input).await
            }
            ContactCommand::Release { id, db } => release(db, id).await,
        }
    })
}

/// `nudge contact release ID`: a repaired contact out of quarantine.
async fn release(db: &DbArgs, id: &str) -> Result<Outcome, CliError> {
    let store = store(db).await?;
    match store.release_quarantine(id).await.map_err(db_error)? {
        Release::Released => Ok(text(format!(
            "released `{id}`: its state reads again and its timers resume\n"
        ))),
        Release::Unreadable(reason) => Err(CliError::Runtime(format!(
            "`{id}` stays quarantined: its state still cannot be read ({reason})"
        ))),
        Release::NotQuarantined => Err(CliError::Runtime(format!("`{id}` is not quarantined"))),
    }
}

async fn manual(
    shared: &Shared,
    id: &str,
    input: nudge_runtime::engine::EngineInput,
) -> Result<Outcome, CliError> {
    let job = Job::Manual {
        contact: id.to_string(),
        input,
    };
    match shared.queue.submit(vec![job]).await.pop() {
        Some(Ok(_)) => {
            let st = shared
                .store
                .load_contacts(&[id.to_string()])
                .await
                .map_err(db_error)?;
            let mut o = String::new();
            for e in st.iter().flat_map(|v| v.state.enrollments.iter()) {
                let _ = writeln!(o, "{}: {} at `{}`", e.flow, e.status.name(), e.step);
            }
            Ok(text(o))
        }
        Some(Err(e)) => Err(CliError::Runtime(e.to_string())),
        None => Err(CliError::Runtime("not applied".into())),
    }
}

pub fn flow(cmd: &FlowCommand) -> Result<Outcome, CliError> {
    runtime()?.block_on(async {
        let (flow, db, paused) = match cmd {
            FlowCommand::Pause { flow, db } => (flow, db, true),
            FlowCommand::Resume { flow, db } => (flow, db, false),
        };
        let shared = attach(db).await?;
        let n = api_admin::set_paused(&shared, flow, paused)
            .await
            .map_err(api)?;
        Ok(text(if paused {
            format!("flow `{flow}` paused\n")
        } else {
            format!("flow `{flow}` resumed ({n} contacts re-planned)\n")
        }))
    })
}

pub fn outbox(cmd: &OutboxCommand) -> Result<Outcome, CliError> {
    runtime()?.block_on(async {
        match cmd {
            OutboxCommand::List { status, limit, db } => {
                let status = match status {
                    None => None,
                    Some(s) => Some(OutboxStatus::from_name(s).ok_or_else(|| {
                        CliError::Runtime(format!(
                            "`{s}` is not a status (pending, delivered, dead)"
                        ))
                    })?),
                };
                let store = store(db).await?;
                let rows = store.outbox_list(status, *limit).await.map_err(db_error)?;
                let mut o = String::new();
                for r in &rows {
                    let v = api_admin::outbox_json(r);
                    let _ = writeln!(o, "{v}");
                }
                Ok(text(o))
            }
            OutboxCommand::Retry { id, db } => {
                let store = store(db).await?;
                let done = store
                    .outbox_requeue(*id, SystemClock.now_secs())
                    .await
                    .map_err(db_error)?;
                match done {
                    Requeue::Pending => Ok(text(format!("outbox row {id} is pending again\n"))),
                    Requeue::NotDead => Err(CliError::Runtime(format!(
                        "outbox row {id} is not a dead letter"
                    ))),
                    Requeue::Missing => Err(CliError::Runtime(format!("no outbox row {id}"))),
                }
            }
        }
    })
}

pub fn send_event(a: &SendEventArgs) -> Result<Outcome, CliError> {
    runtime()?.block_on(async {
        let shared = attach(&a.db).await?;
        let parse = |what: &str, s: &str| {
            serde_json::from_str::<serde_json::Value>(s)
                .map_err(|e| CliError::Runtime(format!("`--{what}` is not valid JSON: {e}")))
        };
        let mut ev =
            serde_json::json!({"event": a.event, "contact": parse("contact", &a.contact)?});
        if let Some(d) = &a.data {
            ev["data"] = parse("data", d)?;
        }
        if let Some(id) = &a.id {
            ev["id"] = serde_json::Value::String(id.clone());
        }
        let job = api_events::parse_event(&shared, &ev).map_err(CliError::Runtime)?;
        match shared.queue.submit(vec![job]).await.pop() {
            Some(Ok(Done::Duplicate)) => Ok(text(
                "duplicate: an event with this id was applied before\n".into(),
            )),
            Some(Ok(Done::Applied { contact, created })) => Ok(text(format!(
                "applied to `{contact}`{}\n",
                if created { " (new contact)" } else { "" }
            ))),
            Some(Ok(_)) => Ok(text("applied\n".into())),
            Some(Err(e)) => Err(CliError::Runtime(e.to_string())),
            None => Err(CliError::Runtime("not applied".into())),
        }
    })
}
