//! What an expression or template may read at one place: which events can
//! be `event`, the call results, and the place's special names (`message`,
//! `data` in channels; `message`, `request` and named contacts in tests).

use crate::model::{Env, Type};
use crate::templates::{TemplateScope, root_help};
use std::collections::BTreeSet;

/// The events that can be current at a point of a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvSet {
    pub names: BTreeSet<String>,
    /// The flow may be here with no event (a time or schedule trigger).
    pub none: bool,
}

impl EvSet {
    pub fn one(name: &str) -> EvSet {
        EvSet {
            names: [name.to_string()].into(),
            none: false,
        }
    }

    pub fn nothing() -> EvSet {
        EvSet {
            names: BTreeSet::new(),
            none: true,
        }
    }

    pub fn union(&self, other: &EvSet) -> EvSet {
        EvSet {
            names: self.names.union(&other.names).cloned().collect(),
            none: self.none || other.none,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.none
    }
}

/// What `event` is at a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventCtx {
    /// No event at all (named conditions, tests).
    Absent,
    /// Any event (channel settings: the event of whichever send uses them).
    Any,
    Set(EvSet),
}

/// The kind of place an expression sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Flow,
    /// Channel settings: `message`, `data`, `env(…)` allowed.
    Channel,
    /// Template and source settings: `file(…)`, `env(…)`, `param(…)` allowed.
    Decl,
    Define,
    /// A test statement; `message` in `expect sent … where`, `request` in `expect called … where`.
    Test {
        message: bool,
        request: bool,
    },
}

/// Everything an expression may read at one place.
#[derive(Debug, Clone)]
pub struct Ctx<'c> {
    pub event: EventCtx,
    pub calls: &'c BTreeSet<String>,
    pub place: Place,
    /// Named contacts of a test, in scope at this statement.
    pub contacts: &'c BTreeSet<String>,
}

/// Type of a built-in record's field (`flow.step`, `message.subject` …).
pub fn record_field(root: &str, field: &str) -> Option<Type> {
    Some(match (root, field) {
        ("flow", "name" | "step") => Type::Text,
        ("flow", "entered_at") => Type::Time,
        ("message", "to" | "subject" | "text" | "html") => Type::Text,
        ("message", "at") => Type::Time,
        ("message", "channel" | "template") => Type::Text,
        ("request", "method" | "url" | "body") => Type::Text,
        ("request", "headers") => Type::Map,
        ("request", "json") => Type::Json,
        ("call", "status") => Type::Int,
        ("call", "json") => Type::Json,
        _ => return None,
    })
}

/// Template variable checks at a place.
pub struct TplScope<'s, 'e, 'a> {
    pub env: &'s Env<'a>,
    pub ctx: &'s Ctx<'e>,
}

impl TemplateScope for TplScope<'_, '_, '_> {
    fn readable(&self, name: &str) -> Option<String> {
        if name.contains('.') {
            let path: Vec<&str> = name.split('.').collect();
            return self.check_path(&path).is_ok().then(|| name.to_string());
        }
        if self.env.contact_field(name).is_some() {
            return Some(format!("contact.{name}"));
        }
        if let EventCtx::Set(ev) = &self.ctx.event
            && !ev.names.is_empty()
            && !matches!(name, "name" | "at" | "nth")
            && self.check_path(&["event", name]).is_ok()
        {
            return Some(format!("event.{name}"));
        }
        (self.env.defines.contains_key(name) || self.ctx.calls.contains(name))
            .then(|| name.to_string())
    }

    fn check_path(&self, path: &[&str]) -> Result<(), (String, Option<String>)> {
        let root = path.first().copied().unwrap_or("");
        let field = path.get(1).copied();
        let channel = self.ctx.place == Place::Channel;
        match root {
            "contact" => match field {
                Some(f) if self.env.contact_field(f).is_none() => Err((
                    format!("the contact has no field `{f}`"),
                    crate::diagnostics::did_you_mean(
                        f,
                        self.env.contact.iter().map(|c| c.name.as_str()),
                    ),
                )),
                _ => Ok(()),
            },
            "event" => match &self.ctx.event {
                EventCtx::Any => Ok(()),
                EventCtx::Absent => Err((
                    "there is no event here".into(),
                    Some(
                        "only flows that are entered or moved by an event can read `event`".into(),
                    ),
                )),
                EventCtx::Set(ev) => {
                    if ev.names.is_empty() {
                        return Err((
                            "no event can be current here".into(),
                            Some("this point is reached by a time or schedule trigger, not by an event".into()),
                        ));
                    }
                    let Some(f) = field else { return Ok(()) };
                    if matches!(f, "name" | "at" | "nth") {
                        return Ok(());
                    }
                    let missing: Vec<&String> = ev
                        .names
                        .iter()
                        .filter(|n| self.env.events.get(*n).is_none_or(|e| e.field(f).is_none()))
                        .collect();
                    if missing.is_empty() {
                        Ok(())
                    } else {
                        let list = missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        Err((
                            format!("not a field of {list}"),
                            Some(format!(
                                "here `event` can be {}",
                                ev.names
                                    .iter()
                                    .map(|m| format!("`{m}`"))
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            )),
                        ))
                    }
                }
            },
            "flow" => match field {
                Some(f) if record_field("flow", f).is_none() => Err((
                    format!("`flow` has no field `{f}`"),
                    Some("`flow` has `name`, `step` and `entered_at`".into()),
                )),
                _ => Ok(()),
            },
            "now" => Ok(()),
            "message" | "data" if channel => Ok(()),
            name if path.len() == 1 && self.env.defines.contains_key(name) => Ok(()),
            name if self.ctx.calls.contains(name) => Ok(()),
            other => {
                let mut roots = vec!["contact", "event", "flow", "now"];
                if channel {
                    roots.extend(["message", "data"]);
                }
                let calls: Vec<&str> = self.ctx.calls.iter().map(String::as_str).collect();
                roots.extend(calls);
                Err(("not defined here".into(), root_help(other, &roots)))
            }
        }
    }
}
