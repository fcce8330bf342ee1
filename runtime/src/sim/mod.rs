//! The simulator behind `nudge test`: contacts in memory, a virtual clock
//! starting at 2026-01-01T00:00:00Z, and every message and call captured,
//! never sent. It drives the same [`Engine`] (and so the same `advance`) as
//! the daemon. `runner.rs` executes `test` blocks against it.

pub mod runner;

use crate::engine::{ContactState, Engine, EngineInput, JournalLine};
use crate::vm::*;
use nudge_compiler::bundle::{Bundle, FieldType, ParamValue};
use nudge_compiler::value::{Value, format_time};
use std::collections::{BTreeMap, VecDeque};

/// 2026-01-01T00:00:00Z, where every test starts.
pub const EPOCH: i64 = 1_767_225_600;

/// Timer firings in one clock move before the simulator gives up.
const MAX_FIRINGS: usize = 100_000;

/// A captured message or call, and whether an `expect` consumed it.
#[derive(Debug, Clone)]
pub struct Captured<T> {
    pub item: T,
    pub consumed: bool,
}

/// A postback whose contact does not exist yet.
#[derive(Debug, Clone)]
pub struct Held {
    pub source: String,
    pub params: BTreeMap<String, String>,
    pub until: i64,
}

/// One simulated world.
pub struct Sim<'b> {
    pub bundle: &'b Bundle,
    pub engine: Engine<'b>,
    pub now: i64,
    pub env: BTreeMap<String, String>,
    pub contacts: Vec<ContactState>,
    /// Named contacts → index in `contacts`.
    pub names: BTreeMap<String, usize>,
    pub messages: Vec<Captured<Message>>,
    pub calls: Vec<Captured<Request>>,
    /// Queued responses per channel name or URL.
    pub replies: BTreeMap<String, VecDeque<(i64, Value)>>,
    pub journal: Vec<(usize, JournalLine)>,
    pub held: Vec<Held>,
    next_id: usize,
}

impl<'b> Sim<'b> {
    pub fn new(bundle: &'b Bundle) -> Sim<'b> {
        Sim {
            bundle,
            engine: Engine::new(bundle),
            now: EPOCH,
            env: BTreeMap::new(),
            contacts: Vec::new(),
            names: BTreeMap::new(),
            messages: Vec::new(),
            calls: Vec::new(),
            replies: BTreeMap::new(),
            journal: Vec::new(),
            held: Vec::new(),
            next_id: 1,
        }
    }

    /// Create a contact from given fields (defaults filled, required checked).
    pub fn create_contact(
        &mut self,
        name: Option<&str>,
        given: Vec<(String, Value)>,
    ) -> Result<usize, String> {
        let mut fields = BTreeMap::new();
        for f in &self.bundle.schema {
            match (&f.default, &f.ty) {
                (Some(d), _) => {
                    fields.insert(f.name.clone(), d.clone());
                }
                (None, FieldType::Set(_)) => {
                    fields.insert(f.name.clone(), Value::Set(Vec::new()));
                }
                (None, FieldType::List(_)) => {
                    fields.insert(f.name.clone(), Value::List(Vec::new()));
                }
                _ => {}
            }
        }
        fields.insert("created_at".into(), Value::Time(self.now));
        fields.insert("timezone".into(), Value::text("UTC"));
        let mut id = match name {
            Some(n) => n.to_string(),
            None => format!("contact-{}", self.next_id),
        };
        self.next_id += 1;
        for (k, v) in given {
            if k == "id" {
                if let Value::Text(t) = v {
                    id = t;
                }
                continue;
            }
            let def = self
                .bundle
                .field(&k)
                .ok_or_else(|| format!("the contact has no field `{k}`"))?;
            let v = coerce(v, &def.ty).ok_or_else(|| format!("`{k}` does not take this value"))?;
            if v.is_null() {
                fields.remove(&k);
            } else {
                fields.insert(k, v);
            }
        }
        for f in &self.bundle.schema {
            if !f.optional && !fields.contains_key(&f.name) && f.name != "id" {
                return Err(format!("the contact needs `{}`", f.name));
            }
            if f.unique
                && f.name != "id"
                && let Some(v) = fields.get(&f.name)
                && self
                    .contacts
                    .iter()
                    .any(|c| c.contact.fields.get(&f.name) == Some(v))
            {
                return Err(format!("another contact already has this `{}`", f.name));
            }
        }
        let mut st = ContactState::new(Contact { id, fields });
        self.engine.arm(&mut st, self.now, &self.env);
        self.contacts.push(st);
        let i = self.contacts.len() - 1;
        if let Some(n) = name {
            self.names.insert(n.to_string(), i);
        }
        self.deliver(
            i,
            EngineInput::Event(self.event_value("contact_created", BTreeMap::new())),
        );
        self.release_held()?;
        Ok(i)
    }

    fn event_value(&self, name: &str, fields: BTreeMap<String, Value>) -> EventValue {
        EventValue {
            name: name.to_string(),
            fields,
            at: self.now,
            nth: 0,
        }
    }

    /// Typed event fields from given values.
    pub fn event_fields(
        &self,
        name: &str,
        given: Vec<(String, Value)>,
    ) -> Result<BTreeMap<String, Value>, String> {
        let def = self
            .bundle
            .event(name)
            .ok_or_else(|| format!("unknown event `{name}`"))?;
        let mut out = BTreeMap::new();
        for (k, v) in given {
            let f = def
                .fields
                .iter()
                .find(|f| f.name == k)
                .ok_or_else(|| format!("event `{name}` has no field `{k}`"))?;
            let v = coerce(v, &f.ty).ok_or_else(|| format!("`{k}` does not take this value"))?;
            if !v.is_null() {
                out.insert(k, v);
            }
        }
        for f in &def.fields {
            if !f.optional && !out.contains_key(&f.name) {
                return Err(format!("event `{name}` needs `{}`", f.name));
            }
        }
        Ok(out)
    }

    /// Send an event to contact `i`.
    pub fn event(&mut self, i: usize, name: &str, fields: BTreeMap<String, Value>) {
        let ev = self.event_value(name, fields);
        self.deliver(i, EngineInput::Event(ev));
    }

    /// A change from outside.
    pub fn set(&mut self, i: usize, field: &str, value: Value) -> Result<(), String> {
        let def = self
            .bundle
            .field(field)
            .ok_or_else(|| format!("the contact has no field `{field}`"))?;
        let v =
            coerce(value, &def.ty).ok_or_else(|| format!("`{field}` does not take this value"))?;
        let Some(st) = self.contacts.get_mut(i) else {
            return Err("no such contact".into());
        };
        if v.is_null() {
            st.contact.fields.remove(field);
        } else {
            st.contact.fields.insert(field.to_string(), v);
        }
        self.deliver(i, EngineInput::Changed(vec![field.to_string()]));
        self.release_held()
    }

    /// Apply an input to contact `i`, then answer its calls at the same instant.
    pub fn deliver(&mut self, i: usize, input: EngineInput) {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let Some(st) = self.contacts.get_mut(i) else {
                return;
            };
            let applied = self.engine.apply(st, input, self.now, &self.env);
            for j in applied.journal {
                self.journal.push((i, j));
            }
            for m in applied.messages {
                self.messages.push(Captured {
                    item: m,
                    consumed: false,
                });
            }
            for c in applied.calls {
                if let Some(name) = &c.result {
                    let key_channel = c.channel.clone().unwrap_or_default();
                    let (status, json) = self
                        .replies
                        .get_mut(&key_channel)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| self.replies.get_mut(&c.url).and_then(VecDeque::pop_front))
                        .unwrap_or((200, Value::Null));
                    pending.push_back(EngineInput::CallResponse {
                        flow: c.flow.clone(),
                        name: name.clone(),
                        status,
                        json,
                    });
                }
                self.calls.push(Captured {
                    item: c,
                    consumed: false,
                });
            }
        }
    }

    /// Move the clock to `target`, firing every due timer in order (by due
    /// instant, then contact), each with `now` at its own instant.
    pub fn advance_to(&mut self, target: i64) -> Result<(), String> {
        for _ in 0..MAX_FIRINGS {
            let next = self
                .contacts
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.next_wake().map(|t| (t, i)))
                .filter(|(t, _)| *t <= target)
                .min();
            let Some((t, i)) = next else {
                self.now = self.now.max(target);
                return Ok(());
            };
            self.now = self.now.max(t);
            let before = self.contacts[i].next_wake();
            self.deliver(i, EngineInput::Timer);
            if self.contacts[i].next_wake() == before && before.is_some_and(|b| b <= self.now) {
                return Err(format!(
                    "a timer due at {} for contact `{}` does not fire",
                    format_time(t),
                    self.contacts[i].contact.id
                ));
            }
        }
        Err(format!(
            "more than {MAX_FIRINGS} timers fired in one clock move"
        ))
    }

    fn param_value(&self, pv: &ParamValue, params: &BTreeMap<String, String>) -> Option<String> {
        match pv {
            ParamValue::Param(p) => params.get(p).cloned(),
            ParamValue::Literal(l) => Some(l.clone()),
            ParamValue::Env(e) => self.env.get(e).cloned(),
        }
    }

    /// A postback through a source's mapping: `Ok(true)` applied, `Ok(false)` held.
    pub fn postback(
        &mut self,
        source: &str,
        params: BTreeMap<String, String>,
    ) -> Result<bool, String> {
        let src = self
            .bundle
            .source(source)
            .ok_or_else(|| format!("unknown source `{source}`"))?
            .clone();
        let expected = self
            .param_value(&src.token, &BTreeMap::new())
            .ok_or_else(|| "the source's token is not set (env)".to_string())?;
        if params.get("token") != Some(&expected) {
            return Err("postback refused: wrong or missing token".into());
        }
        let raw = self
            .param_value(&src.event, &params)
            .ok_or_else(|| "postback refused: no event named".to_string())?;
        let name = src
            .rename
            .iter()
            .find(|(k, _)| *k == raw)
            .map_or(raw.clone(), |(_, v)| v.clone());
        let def = self
            .bundle
            .event(&name)
            .ok_or_else(|| format!("postback refused: event `{name}` is not declared"))?;
        let mut fields = BTreeMap::new();
        for (f, pv) in &src.fields {
            let Some(fd) = def.fields.iter().find(|d| &d.name == f) else {
                continue;
            };
            if let Some(v) = self.param_value(pv, &params) {
                let v = coerce(Value::Text(v), &fd.ty)
                    .ok_or_else(|| format!("postback refused: `{f}` does not convert"))?;
                fields.insert(f.clone(), v);
            }
        }
        if let Some(f) = def
            .fields
            .iter()
            .find(|f| !f.optional && !fields.contains_key(&f.name))
        {
            return Err(format!("postback refused: `{}` is missing", f.name));
        }
        let key = params.get(&src.contact_key).cloned().unwrap_or_default();
        let found = self.contacts.iter().position(
            |c| matches!(c.contact.fields.get(&src.contact_key), Some(Value::Text(v)) if *v == key),
        );
        match found {
            Some(i) => {
                self.event(i, &name, fields);
                Ok(true)
            }
            None => {
                self.held.push(Held {
                    source: source.to_string(),
                    params,
                    until: self.now + src.hold_seconds,
                });
                Ok(false)
            }
        }
    }

    /// Apply held postbacks whose contact now exists.
    fn release_held(&mut self) -> Result<(), String> {
        let now = self.now;
        self.held.retain(|h| h.until >= now);
        let held = std::mem::take(&mut self.held);
        for h in held {
            let Some(src) = self.bundle.source(&h.source) else {
                continue;
            };
            let key = h.params.get(&src.contact_key).cloned().unwrap_or_default();
            let exists = self
                .contacts
                .iter()
                .any(|c| matches!(c.contact.fields.get(&src.contact_key), Some(Value::Text(v)) if *v == key));
            if exists {
                self.postback(&h.source, h.params)?;
            } else {
                self.held.push(h);
            }
        }
        Ok(())
    }
}
