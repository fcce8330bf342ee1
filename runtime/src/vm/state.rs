//! The data `advance` reads and writes: contacts, events, enrollments,
//! inputs, effects.

use nudge_compiler::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A contact: its external id and its fields (built-ins included:
/// `created_at`, `tags`, `timezone`). An unset optional is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Contact {
    pub id: String,
    pub fields: BTreeMap<String, Value>,
}

impl Contact {
    pub fn get(&self, field: &str) -> Value {
        if field == "id" {
            return Value::Text(self.id.clone());
        }
        self.fields.get(field).cloned().unwrap_or(Value::Null)
    }

    /// The contact's time zone (`UTC` unless set).
    pub fn timezone(&self) -> &str {
        match self.fields.get("timezone") {
            Some(Value::Text(tz)) if !tz.is_empty() => tz,
            _ => "UTC",
        }
    }

    /// The contact as a map value (for expressions and templates).
    pub fn as_value(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("id".into(), Value::Text(self.id.clone()));
        Value::Map(m)
    }
}

/// An event as a flow sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventValue {
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    pub at: i64,
    /// How many events of this name the contact has had, this one included.
    pub nth: i64,
}

impl EventValue {
    pub fn as_value(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("name".into(), Value::Text(self.name.clone()));
        m.insert("at".into(), Value::Time(self.at));
        m.insert("nth".into(), Value::Int(self.nth));
        Value::Map(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Running or waiting in the flow.
    Active,
    Completed,
    Exited,
    Converted,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Completed => "completed",
            Status::Exited => "exited",
            Status::Converted => "converted",
            Status::Failed => "failed",
        }
    }
}

/// What an enrollment is waiting for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingWait {
    /// The `Wait` (or `Call`) instruction.
    pub pc: u32,
    /// Instants at which timers fire, with where each continues.
    pub timers: Vec<(i64, u32)>,
    /// A `call … as NAME` waiting for its response.
    pub call: Option<String>,
}

impl PendingWait {
    /// The earliest timer.
    pub fn wake_at(&self) -> Option<i64> {
        self.timers.iter().map(|(t, _)| *t).min()
    }
}

/// A contact's place in one flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub flow: String,
    /// The bundle version (hash) the contact entered with.
    pub version: String,
    pub pc: u32,
    pub status: Status,
    pub step: String,
    pub entered_at: i64,
    /// The last event this enrollment consumed.
    pub event: Option<EventValue>,
    /// Call results by name.
    pub locals: BTreeMap<String, Value>,
    pub wait: Option<PendingWait>,
    /// In the control group: no messages or calls.
    pub holdout: bool,
    /// Why the enrollment failed.
    pub failure: Option<String>,
}

impl Enrollment {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// What makes an enrollment move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Start running a new enrollment (at its `pc`).
    Start,
    Event(EventValue),
    /// Fire the due timers of the pending wait.
    Timer,
    /// The contact's data changed: re-check data-match waits.
    DataChange,
    CallResponse {
        name: String,
        status: i64,
        json: Value,
    },
    /// Move to a step (manual move).
    Move {
        step: String,
    },
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub flow: String,
    pub step: String,
    pub channel: String,
    pub template: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// When it may go out (later than now when a send window holds it).
    pub at: i64,
    pub force: bool,
    /// For `http` and `slack` channels: the request that carries it, built
    /// from the channel's settings when the message was made.
    pub request: Option<HttpRequest>,
}

/// An HTTP request ready to go (no contact data needed any more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Where `env` values were left out (`seal.rs`); none in older rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<super::seal::SecretRef>,
}

/// A built HTTP request (a `call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub flow: String,
    pub step: String,
    /// The channel called, or `None` for a bare URL.
    pub channel: Option<String>,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub json: Option<serde_json::Value>,
    /// The body as sent.
    pub body: String,
    /// `as NAME`: the response goes back to the enrollment.
    pub result: Option<String>,
    /// Where `env` values were left out (`seal.rs`); none in older rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<super::seal::SecretRef>,
}

/// Something `advance` asks the world to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    Send(Message),
    Call(Request),
    Emit(EventValue),
    /// Enroll in another flow (in parallel), carrying the current event.
    Start {
        flow: String,
        event: Option<EventValue>,
    },
    /// Leave for another flow, at a step or its start.
    Goto {
        flow: String,
        step: Option<String>,
        event: Option<EventValue>,
    },
    Stop {
        flow: String,
    },
    /// A line of the contact's journey, at the step it happened in.
    Journal {
        step: String,
        what: String,
    },
}

/// A change to the contact's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    Set(String, Value),
    Unset(String),
}

/// What `advance` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub enrollment: Enrollment,
    pub contact: Contact,
    pub changes: Vec<Change>,
    pub effects: Vec<Effect>,
    /// Set when this input failed the enrollment (its status is then
    /// `Failed` and `failure` holds the same text).
    pub failure: Option<super::run::Failure>,
}

/// What the world tells `advance` besides the input: settings it reads and
/// the contact's recent sends (for per-contact caps). Kept explicit so that
/// `advance` stays pure.
#[derive(Debug, Clone)]
pub struct World<'w> {
    pub env: &'w BTreeMap<String, String>,
    /// Instants of the contact's recent sends, per channel.
    pub sent: &'w BTreeMap<String, Vec<i64>>,
    /// The bundle version (hash) for new enrollments.
    pub version: &'w str,
    /// How long a `call … as NAME` waits for its response.
    pub calls: super::CallLimits,
}
