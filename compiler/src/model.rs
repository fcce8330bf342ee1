//! The checked view of a project: types, and the [`Env`] of every declaration
//! by name, built by the resolve pass and read by the later passes.

use nudge_grammar::ast::{
    ChannelDecl, DefineDecl, FlowDecl, FlowItem, SourceDecl, Step, Stmt, TemplateDecl,
};
use nudge_grammar::span::Span;
use std::collections::BTreeMap;
use std::fmt;

/// A Nudge type (LANGUAGE.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Text,
    Int,
    Decimal,
    Bool,
    Time,
    Date,
    Duration,
    Email,
    Phone,
    Url,
    Timezone,
    TimeOfDay,
    Percent,
    Set(Box<Type>),
    List(Box<Type>),
    /// A union of string literals, in declaration order.
    Union(Vec<String>),
    Optional(Box<Type>),
    /// Dynamically typed JSON (`NAME.json`, `request.json`): converts on use.
    Json,
    /// A free-form map `{ key: value }`.
    Map,
    /// A value whose type could not be found (an error was already reported).
    Unknown,
}

impl Type {
    /// The type without its optional marker.
    pub fn base(&self) -> &Type {
        match self {
            Type::Optional(t) => t.base(),
            t => t,
        }
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Type::Optional(_))
    }

    pub fn optional(self) -> Type {
        match self {
            Type::Optional(_) | Type::Unknown | Type::Json => self,
            t => Type::Optional(Box::new(t)),
        }
    }

    /// Texts of every kind: `text`, formatted texts and unions.
    pub fn is_textual(&self) -> bool {
        matches!(
            self.base(),
            Type::Text | Type::Email | Type::Phone | Type::Url | Type::Timezone | Type::Union(_)
        )
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self.base(), Type::Int | Type::Decimal)
    }

    /// Unknown and JSON values take any type silently.
    pub fn is_dynamic(&self) -> bool {
        matches!(self.base(), Type::Unknown | Type::Json)
    }

    /// Can a value of `self` be stored where `target` is expected?
    pub fn assignable_to(&self, target: &Type) -> bool {
        if self.is_dynamic() || target.is_dynamic() {
            return true;
        }
        let (s, t) = (self, target);
        if let Type::Optional(ti) = t {
            return s.base().assignable_to(ti);
        }
        if s.is_optional() {
            return false;
        }
        match (s, t) {
            (a, b) if a == b => true,
            (Type::Int, Type::Decimal) => true,
            (Type::Union(a), Type::Union(b)) => a.iter().all(|x| b.contains(x)),
            (Type::Union(_), Type::Text) => true,
            (Type::Email | Type::Phone | Type::Url | Type::Timezone, Type::Text) => true,
            (Type::Set(a) | Type::List(a), Type::Set(b) | Type::List(b)) => a.assignable_to(b),
            _ => false,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Text => f.write_str("text"),
            Type::Int => f.write_str("int"),
            Type::Decimal => f.write_str("decimal"),
            Type::Bool => f.write_str("bool"),
            Type::Time => f.write_str("time"),
            Type::Date => f.write_str("date"),
            Type::Duration => f.write_str("duration"),
            Type::Email => f.write_str("email"),
            Type::Phone => f.write_str("phone"),
            Type::Url => f.write_str("url"),
            Type::Timezone => f.write_str("timezone"),
            Type::TimeOfDay => f.write_str("time of day"),
            Type::Percent => f.write_str("percentage"),
            Type::Set(t) => write!(f, "set<{t}>"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Union(v) => {
                let parts: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
                f.write_str(&parts.join(" | "))
            }
            Type::Optional(t) => write!(f, "{t}?"),
            Type::Json => f.write_str("json"),
            Type::Map => f.write_str("map"),
            Type::Unknown => f.write_str("unknown"),
        }
    }
}

/// A field of the contact schema or of an event.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Type,
    pub unique: bool,
    pub has_default: bool,
    /// `None` for built-in fields.
    pub span: Option<Span>,
}

impl FieldInfo {
    pub fn builtin(name: &str, ty: Type, unique: bool) -> FieldInfo {
        FieldInfo {
            name: name.into(),
            ty,
            unique,
            has_default: true,
            span: None,
        }
    }

    /// Must be given when a contact is created.
    pub fn required(&self) -> bool {
        !self.has_default
            && !self.ty.is_optional()
            && !matches!(self.ty, Type::Set(_) | Type::List(_))
    }
}

#[derive(Debug, Clone)]
pub struct EventInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    /// `None` for built-in events.
    pub span: Option<Span>,
}

impl EventInfo {
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Smtp,
    Slack,
    Http,
}

impl ChannelKind {
    pub fn from_name(s: &str) -> Option<ChannelKind> {
        match s {
            "smtp" => Some(ChannelKind::Smtp),
            "slack" => Some(ChannelKind::Slack),
            "http" => Some(ChannelKind::Http),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Smtp => "smtp",
            ChannelKind::Slack => "slack",
            ChannelKind::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    Email,
    Text,
}

impl TemplateKind {
    pub fn from_name(s: &str) -> Option<TemplateKind> {
        match s {
            "email" => Some(TemplateKind::Email),
            "text" => Some(TemplateKind::Text),
            _ => None,
        }
    }
}

/// A flow and its steps, in source order (`start` first when the body has
/// statements before the first `step`).
#[derive(Debug, Clone)]
pub struct FlowInfo<'a> {
    pub decl: &'a FlowDecl,
    /// Bundle order: index of the flow across all files.
    pub index: usize,
    pub steps: Vec<StepRef<'a>>,
}

/// A step of a flow: named, or the implicit `start` step.
#[derive(Debug, Clone)]
pub struct StepRef<'a> {
    pub name: String,
    pub span: Span,
    pub explicit: Option<&'a Step>,
    /// Statements of the implicit step (empty for explicit steps).
    pub implicit: Vec<&'a Stmt>,
}

impl<'a> StepRef<'a> {
    pub fn stmts(&self) -> Vec<&'a Stmt> {
        match self.explicit {
            Some(s) => s.body.iter().collect(),
            None => self.implicit.clone(),
        }
    }
}

impl<'a> FlowInfo<'a> {
    pub fn new(decl: &'a FlowDecl, index: usize) -> FlowInfo<'a> {
        let mut steps = Vec::new();
        let implicit: Vec<&Stmt> = decl
            .body
            .iter()
            .take_while(|i| !matches!(i, FlowItem::Step(_)))
            .filter_map(|i| match i {
                FlowItem::Stmt(s) => Some(s),
                _ => None,
            })
            .collect();
        if !implicit.is_empty() {
            let span = implicit[0].span;
            steps.push(StepRef {
                name: "start".into(),
                span,
                explicit: None,
                implicit,
            });
        }
        for i in &decl.body {
            if let FlowItem::Step(s) = i {
                steps.push(StepRef {
                    name: s.name.name.clone(),
                    span: s.name.span,
                    explicit: Some(s),
                    implicit: Vec::new(),
                });
            }
        }
        FlowInfo { decl, index, steps }
    }

    pub fn step(&self, name: &str) -> Option<&StepRef<'a>> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// Every declaration of a project by name. Built by [`crate::resolve`].
#[derive(Debug, Default)]
pub struct Env<'a> {
    /// Contact fields, built-ins first, then in declaration order.
    pub contact: Vec<FieldInfo>,
    pub events: BTreeMap<String, EventInfo>,
    pub channels: BTreeMap<String, (&'a ChannelDecl, Option<ChannelKind>)>,
    pub templates: BTreeMap<String, (&'a TemplateDecl, Option<TemplateKind>)>,
    pub sources: BTreeMap<String, &'a SourceDecl>,
    pub defines: BTreeMap<String, &'a DefineDecl>,
    pub flows: BTreeMap<String, FlowInfo<'a>>,
}

impl<'a> Env<'a> {
    pub fn contact_field(&self, name: &str) -> Option<&FieldInfo> {
        self.contact.iter().find(|f| f.name == name)
    }

    /// Flows in bundle order.
    pub fn flows_in_order(&self) -> Vec<&FlowInfo<'a>> {
        let mut v: Vec<&FlowInfo<'a>> = self.flows.values().collect();
        v.sort_by_key(|f| f.index);
        v
    }
}

/// The built-in contact fields (LANGUAGE.md §4.1).
pub fn builtin_contact_fields() -> Vec<FieldInfo> {
    vec![
        FieldInfo::builtin("id", Type::Text, true),
        FieldInfo::builtin("created_at", Type::Time, false),
        FieldInfo::builtin("tags", Type::Set(Box::new(Type::Text)), false),
        FieldInfo::builtin("timezone", Type::Timezone, false),
    ]
}

/// The built-in events (LANGUAGE.md §4.2).
pub fn builtin_events() -> Vec<EventInfo> {
    let ev = |name: &str, fields: Vec<FieldInfo>| EventInfo {
        name: name.into(),
        fields,
        span: None,
    };
    let f = |name: &str, ty: Type| FieldInfo {
        name: name.into(),
        ty,
        unique: false,
        has_default: false,
        span: None,
    };
    vec![
        ev("contact_created", vec![]),
        ev(
            "contact_updated",
            vec![f("changed", Type::Set(Box::new(Type::Text)))],
        ),
        ev("subscribed", vec![]),
        ev("unsubscribed", vec![]),
        ev("email_opened", vec![]),
        ev("email_clicked", vec![f("url", Type::Url)]),
        ev("email_bounced", vec![]),
        ev("message_received", vec![f("text", Type::Text)]),
    ]
}
