//! A readable listing of compiled programs (`nudge compile --emit disasm`):
//! offsets, step labels, source lines, and expressions shown back in infix.

use super::*;
use crate::value::{Value, format_date, format_decimal, format_time};
use std::fmt::Write as _;

/// The whole bundle's flows.
pub fn disasm_bundle(b: &Bundle) -> String {
    let mut out = String::new();
    for p in &b.flows {
        out.push_str(&disasm(p));
        out.push('\n');
    }
    out
}

/// One program.
pub fn disasm(p: &Program) -> String {
    let mut o = String::new();
    let title = p
        .title
        .as_ref()
        .map(|t| format!(" {t:?}"))
        .unwrap_or_default();
    let _ = writeln!(o, "flow {}{title}  ({})", p.name, p.file);
    for t in &p.triggers {
        let _ = writeln!(o, "  trigger   {}", trigger(t));
    }
    let _ = writeln!(o, "  reenter   {}", p.reenter.name());
    for m in &p.exit_when {
        let _ = writeln!(o, "  exit when {}", matcher(m));
    }
    for m in &p.goals {
        let _ = writeln!(o, "  goal      {}", matcher(m));
    }
    if let Some(h) = p.holdout {
        let _ = writeln!(o, "  holdout   {}%", format_decimal(h));
    }
    if let Some(w) = &p.window {
        let _ = writeln!(o, "  window    {}", window(w));
    }
    for h in &p.handlers {
        let _ = writeln!(o, "  on        {} -> @{:04}", matcher(&h.on), h.pc);
    }
    for (pc, ins) in p.code.iter().enumerate() {
        let pc = pc as u32;
        for s in p.steps.iter().filter(|s| s.pc == pc) {
            let t = s
                .title
                .as_ref()
                .map(|t| format!(" {t:?}"))
                .unwrap_or_default();
            let _ = writeln!(o, "step {}{t}:", s.name);
        }
        for h in p.handlers.iter().filter(|h| h.pc == pc) {
            let _ = writeln!(o, "handler on {}:", matcher(&h.on));
        }
        let line = p.lines.get(pc as usize).copied().unwrap_or(0);
        let _ = writeln!(o, "  {pc:04}  L{line:<4} {}", instr(p, ins));
    }
    o
}

fn window(w: &WindowDef) -> String {
    format!(
        "{:02}:{:02}..{:02}:{:02}{}",
        w.from.0,
        w.from.1,
        w.to.0,
        w.to.1,
        if w.local { " local" } else { "" }
    )
}

fn matcher(m: &EventMatch) -> String {
    let mut s = m.event.clone();
    if let Some(n) = m.nth {
        let _ = write!(s, " #{n}");
    }
    if let Some(c) = &m.cond {
        let _ = write!(s, " where {}", code(c));
    }
    s
}

fn trigger(t: &Trigger) -> String {
    match t {
        Trigger::Event(m) => format!("when {}", matcher(m)),
        Trigger::Time { at, late, cond } => {
            let late = if *late > 0 {
                format!(" late {late}s")
            } else {
                String::new()
            };
            format!("when {}{late}{}", code(at), where_(cond))
        }
        Trigger::Schedule {
            schedule,
            local,
            cond,
        } => {
            let l = if *local { " local" } else { "" };
            let s = match schedule {
                Schedule::Daily { hour, minute } => format!("every day at {hour:02}:{minute:02}"),
                Schedule::Weekly { day, hour, minute } => {
                    format!("every {} at {hour:02}:{minute:02}", day.name())
                }
                Schedule::Cron(c) => format!("every {:?}", c.text),
            };
            format!("when {s}{l}{}", where_(cond))
        }
        Trigger::Keyword(k) => format!("keyword {k:?}"),
    }
}

fn where_(c: &Option<Code>) -> String {
    c.as_ref()
        .map(|c| format!(" where {}", code(c)))
        .unwrap_or_default()
}

fn instr(p: &Program, i: &Instr) -> String {
    match i {
        Instr::Step(s) => format!(
            "step {}",
            p.steps.get(*s as usize).map_or("?", |s| s.name.as_str())
        ),
        Instr::Send {
            channel,
            message,
            to,
            force,
        } => {
            let what = match (&message.template, &message.subject, &message.text) {
                (Some(t), _, _) => format!("template {t}"),
                (None, Some(s), _) => format!("{{ subject = {:?} … }}", s.0),
                (None, None, Some(t)) => format!("{:?}", t.0),
                _ => "{}".into(),
            };
            let to = to
                .as_ref()
                .map(|t| format!(" to {}", code(t)))
                .unwrap_or_default();
            format!(
                "send {channel} {what}{to}{}",
                if *force { " force" } else { "" }
            )
        }
        Instr::Call {
            target,
            with,
            result,
        } => {
            let t = match target {
                CallTarget::Channel(c) => c.clone(),
                CallTarget::Url(u) => format!("{:?}", u.0),
            };
            let w = if with.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = with
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", code(v)))
                    .collect();
                format!(" with {{ {} }}", parts.join(", "))
            };
            let r = result
                .as_ref()
                .map(|r| format!(" as {r} (suspends)"))
                .unwrap_or_default();
            format!("call {t}{w}{r}")
        }
        Instr::Set { field, value } => format!("set contact.{field} = {}", code(value)),
        Instr::Unset { field } => format!("unset contact.{field}"),
        Instr::Add { field, value } => format!("add {} to contact.{field}", code(value)),
        Instr::Remove { field, value } => format!("remove {} from contact.{field}", code(value)),
        Instr::Tag(v) => format!("tag {}", code(v)),
        Instr::Untag(v) => format!("untag {}", code(v)),
        Instr::Jump(to) => format!("jump @{to:04}"),
        Instr::JumpUnless { cond, to } => format!("jump @{to:04} unless {}", code(cond)),
        Instr::Split { id, arms } => {
            let parts: Vec<String> = arms
                .iter()
                .map(|a| format!("{}% -> @{:04}", format_decimal(a.share), a.pc))
                .collect();
            format!("split #{id} [{}]", parts.join(", "))
        }
        Instr::Wait(w) => {
            let mut parts = Vec::new();
            for (t, pc) in &w.timers {
                let t = match t {
                    TimerDef::After(c) => format!("after {}", code(c)),
                    TimerDef::At(c) => format!("at {}", code(c)),
                    TimerDef::Clock {
                        day,
                        hour,
                        minute,
                        second,
                        local,
                    } => format!(
                        "until {}{hour:02}:{minute:02}{}{}",
                        day.map(|d| format!("{} ", d.name())).unwrap_or_default(),
                        if *second > 0 {
                            format!(":{second:02}")
                        } else {
                            String::new()
                        },
                        if *local { " local" } else { "" }
                    ),
                };
                parts.push(format!("{t} -> @{pc:04}"));
            }
            for (m, pc) in &w.events {
                parts.push(format!("on {} -> @{pc:04}", matcher(m)));
            }
            for (c, pc) in &w.data {
                parts.push(format!("until {} -> @{pc:04}", code(c)));
            }
            format!("wait [{}]", parts.join("; "))
        }
        Instr::GotoFlow { flow, step } => match step {
            Some(s) => format!("goto {flow}.{s}"),
            None => format!("goto {flow}"),
        },
        Instr::Start(f) => format!("start {f}"),
        Instr::Stop(f) => format!("stop {f}"),
        Instr::Exit => "exit".into(),
        Instr::Complete => "complete".into(),
        Instr::Emit { event, fields } => {
            if fields.is_empty() {
                format!("emit {event}")
            } else {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", code(v)))
                    .collect();
                format!("emit {event} {{ {} }}", parts.join(", "))
            }
        }
        Instr::Log(t) => format!("log {t:?}"),
        Instr::Return => "return to wait".into(),
    }
}

/// An expression's stack code shown back in infix form.
pub fn code(c: &Code) -> String {
    let mut st: Vec<String> = Vec::new();
    for op in &c.0 {
        match op {
            Op::Push(v) => st.push(value(v)),
            Op::Load(r) => st.push(match r {
                Root::Contact => "contact".into(),
                Root::Event => "event".into(),
                Root::Flow => "flow".into(),
                Root::Local(n) | Root::NamedContact(n) => n.clone(),
                Root::Message => "message".into(),
                Root::Request => "request".into(),
                Root::Data => "data".into(),
            }),
            Op::Get(f) => {
                let b = st.pop().unwrap_or_default();
                st.push(format!("{b}.{f}"));
            }
            Op::Now => st.push("now".into()),
            Op::Env(n) => st.push(format!("env({n:?})")),
            Op::Not => {
                let a = st.pop().unwrap_or_default();
                st.push(format!("not ({a})"));
            }
            Op::Neg => {
                let a = st.pop().unwrap_or_default();
                st.push(format!("-({a})"));
            }
            Op::Bin(b) => {
                let r = st.pop().unwrap_or_default();
                let l = st.pop().unwrap_or_default();
                st.push(format!("({l} {} {r})", b.symbol()));
            }
            Op::IsSet => {
                let a = st.pop().unwrap_or_default();
                st.push(format!("{a} is set"));
            }
            Op::IsNotSet => {
                let a = st.pop().unwrap_or_default();
                st.push(format!("{a} is not set"));
            }
            Op::Call(f, n) => {
                let at = st.len().saturating_sub(*n as usize);
                let args = st.split_off(at);
                st.push(format!(
                    "{}({})",
                    format!("{f:?}").to_lowercase(),
                    args.join(", ")
                ));
            }
            Op::List(n) => {
                let at = st.len().saturating_sub(*n as usize);
                let items = st.split_off(at);
                st.push(format!("[{}]", items.join(", ")));
            }
            Op::Map(keys) => {
                let at = st.len().saturating_sub(keys.len());
                let vals = st.split_off(at);
                let parts: Vec<String> = keys
                    .iter()
                    .zip(vals)
                    .map(|(k, v)| format!("{k:?}: {v}"))
                    .collect();
                st.push(format!("{{ {} }}", parts.join(", ")));
            }
            Op::Render(t, _) => st.push(format!("render({:?})", t.0)),
        }
    }
    st.join(" ")
}

fn value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => format_decimal(*d),
        Value::Text(s) => format!("{s:?}"),
        Value::Time(t) => format_time(*t),
        Value::Date(d) => format_date(*d),
        Value::Duration(s) => duration(*s),
        Value::List(items) | Value::Set(items) => {
            format!(
                "[{}]",
                items.iter().map(value).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Map(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k:?}: {}", value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `172800` seconds → `2 days`.
fn duration(s: i64) -> String {
    for (unit, n) in [
        ("week", 604_800),
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
    ] {
        if s != 0 && s % n == 0 {
            let k = s / n;
            return format!("{k} {unit}{}", if k == 1 { "" } else { "s" });
        }
    }
    format!("{s} second{}", if s == 1 { "" } else { "s" })
}
