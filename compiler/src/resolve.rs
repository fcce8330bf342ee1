//! Stage 2, resolve: builds the [`Env`] of every declaration and checks every
//! name that is not inside an expression — event, channel, template, source,
//! flow and step references, type names, declaration kinds and settings —
//! with "did you mean" help for close names.
//!
//! Names inside expressions (`contact.F`, `event.F`, defines, functions) are
//! resolved by the type checker, which knows the scope; it reports them with
//! the `nudge::resolve::*` codes of [`ResolveError`] too.

use crate::diagnostics::{Diagnostics, Related, did_you_mean, ss};
use crate::model::*;
use crate::walk::each_flow_stmt;
use miette::{Diagnostic, SourceSpan};
use nudge_grammar::ast::*;
use nudge_grammar::span::{FileId, Span};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// Unknown and duplicate names. Each variant's doc shows an input that
/// triggers it; the case folders in `tests/cases/resolve_*` hold more.
#[derive(Debug, Error, Diagnostic)]
pub enum ResolveError {
    /// `event sale {}` twice
    #[error("{what} `{name}` is declared more than once")]
    #[diagnostic(
        code(nudge::resolve::duplicate),
        help("rename one of them or remove the duplicate")
    )]
    Duplicate {
        what: &'static str,
        name: String,
        #[label("declared again here")]
        span: SourceSpan,
        #[label("first declared here")]
        first: Option<SourceSpan>,
    },
    /// `score: integer`
    #[error("unknown type `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_type))]
    UnknownType {
        name: String,
        #[label("not a type")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `channel x: fax { … }`
    #[error("unknown {what} kind `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_kind))]
    UnknownKind {
        what: &'static str,
        name: String,
        #[label("not a {what} kind")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `smtp { hots = … }`
    #[error("unknown setting `{name}` for {of}")]
    #[diagnostic(code(nudge::resolve::unknown_setting))]
    UnknownSetting {
        name: String,
        of: String,
        #[label("not a setting of {of}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `channel e: smtp { port = 25 }` (no `host`)
    #[error("{of} needs `{name}`")]
    #[diagnostic(code(nudge::resolve::missing_setting))]
    MissingSetting {
        name: String,
        of: String,
        #[label("`{name}` is missing")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `when sigup`
    #[error("unknown event `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_event))]
    UnknownEvent {
        name: String,
        #[label("no event has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `send emial welcome`
    #[error("unknown channel `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_channel))]
    UnknownChannel {
        name: String,
        #[label("no channel has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `send email welcom`
    #[error("unknown template `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_template))]
    UnknownTemplate {
        name: String,
        #[label("no template has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `start tipps`
    #[error("unknown flow `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_flow))]
    UnknownFlow {
        name: String,
        #[label("no flow has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `goto remnd`
    #[error("unknown step `{name}` in flow `{flow}`")]
    #[diagnostic(code(nudge::resolve::unknown_step))]
    UnknownStep {
        name: String,
        flow: String,
        #[label("no step of `{flow}` has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `postback partnr { … }` in a test
    #[error("unknown source `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_source))]
    UnknownSource {
        name: String,
        #[label("no source has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `event sale for bob` with no `contact bob { … }` before it
    #[error("unknown contact `{name}` in this test")]
    #[diagnostic(code(nudge::resolve::unknown_contact))]
    UnknownContact {
        name: String,
        #[label("no contact of this test has this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `contact.frist_name`
    #[error("unknown field `{name}` of {of}")]
    #[diagnostic(code(nudge::resolve::unknown_field))]
    UnknownField {
        name: String,
        of: String,
        #[label("{of} has no field `{name}`")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `if payng { … }`
    #[error("unknown name `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_name))]
    UnknownName {
        name: String,
        #[label("nothing has this name here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `lowr(contact.city)`
    #[error("unknown function `{name}`")]
    #[diagnostic(code(nudge::resolve::unknown_function))]
    UnknownFunction {
        name: String,
        #[label("not a function")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `goto welcome` where `welcome` is both a step of this flow and a flow
    #[error("`goto {name}` is ambiguous: `{name}` is both a step of this flow and a flow")]
    #[diagnostic(
        code(nudge::resolve::ambiguous_goto),
        help(
            "write `goto {flow}.{name}` for the step, or `goto {name}.<step>` for the other flow"
        )
    )]
    AmbiguousGoto {
        name: String,
        flow: String,
        #[label("ambiguous")]
        span: SourceSpan,
    },
}

const TYPE_NAMES: [&str; 11] = [
    "text", "int", "decimal", "bool", "time", "date", "duration", "email", "phone", "url",
    "timezone",
];

/// Resolve a type expression of the schema.
pub fn resolve_type(t: &TypeExpr, diags: &mut Diagnostics) -> Type {
    match &t.kind {
        TypeExprKind::Named(id) => match id.name.as_str() {
            "text" => Type::Text,
            "int" => Type::Int,
            "decimal" => Type::Decimal,
            "bool" => Type::Bool,
            "time" => Type::Time,
            "date" => Type::Date,
            "duration" => Type::Duration,
            "email" => Type::Email,
            "phone" => Type::Phone,
            "url" => Type::Url,
            "timezone" => Type::Timezone,
            other => {
                let help = did_you_mean(other, TYPE_NAMES).or_else(|| {
                    Some(format!(
                        "the types are {}, `set<T>`, `list<T>` and unions of strings like `\"free\" | \"pro\"`",
                        TYPE_NAMES.map(|t| format!("`{t}`")).join(", ")
                    ))
                });
                diags.push(
                    id.span,
                    ResolveError::UnknownType {
                        name: other.into(),
                        span: ss(id.span),
                        help,
                    },
                );
                Type::Unknown
            }
        },
        TypeExprKind::Set(inner) => Type::Set(Box::new(resolve_type(inner, diags))),
        TypeExprKind::List(inner) => Type::List(Box::new(resolve_type(inner, diags))),
        TypeExprKind::Union(v) => Type::Union(v.iter().map(|s| s.value.clone()).collect()),
        TypeExprKind::Optional(inner) => resolve_type(inner, diags).optional(),
    }
}

/// Tracks first declarations to report duplicates.
struct Seen {
    first: HashMap<(&'static str, String), Span>,
}

impl Seen {
    fn check(
        &mut self,
        ns: &'static str,
        what: &'static str,
        id: &Ident,
        diags: &mut Diagnostics,
    ) -> bool {
        self.check_at(ns, what, &id.name, id.span, diags)
    }

    fn check_at(
        &mut self,
        ns: &'static str,
        what: &'static str,
        name: &str,
        span: Span,
        diags: &mut Diagnostics,
    ) -> bool {
        match self.first.get(&(ns, name.to_string())) {
            Some(first) => {
                let same_file = first.file == span.file;
                // A label cannot point into another file: that place goes
                // with the diagnostic as a related place.
                let related = (!same_file)
                    .then(|| Related {
                        span: *first,
                        message: "first declared here".into(),
                    })
                    .into_iter()
                    .collect();
                diags.push_related(
                    span,
                    ResolveError::Duplicate {
                        what,
                        name: name.into(),
                        span: ss(span),
                        first: same_file.then(|| ss(*first)),
                    },
                    related,
                );
                false
            }
            None => {
                self.first.insert((ns, name.to_string()), span);
                true
            }
        }
    }
}

fn field_infos(
    fields: &[FieldDecl],
    seen: &mut Seen,
    ns: &'static str,
    diags: &mut Diagnostics,
) -> Vec<FieldInfo> {
    let mut out = Vec::new();
    for f in fields {
        let ty = resolve_type(&f.ty, diags);
        if seen.check(ns, "field", &f.name, diags) {
            out.push(FieldInfo {
                name: f.name.name.clone(),
                ty,
                unique: f.unique,
                has_default: f.default.is_some(),
                span: Some(f.name.span),
            });
        }
    }
    out
}

/// Build the environment and check every non-expression name.
pub fn resolve<'a>(modules: &'a [(FileId, Module)], diags: &mut Diagnostics) -> Env<'a> {
    let mut env = Env {
        contact: builtin_contact_fields(),
        ..Env::default()
    };
    for e in builtin_events() {
        env.events.insert(e.name.clone(), e);
    }
    let mut seen = Seen {
        first: HashMap::new(),
    };
    let mut flow_index = 0;
    for (_, m) in modules {
        for item in &m.items {
            match item {
                Item::Contact(c) => {
                    for f in &c.fields {
                        if env
                            .contact
                            .iter()
                            .any(|b| b.span.is_none() && b.name == f.name.name)
                        {
                            diags.push(
                                f.name.span,
                                ResolveError::Duplicate {
                                    what: "contact field",
                                    name: f.name.name.clone(),
                                    span: ss(f.name.span),
                                    first: None,
                                },
                            );
                        }
                    }
                    let infos = field_infos(&c.fields, &mut seen, "contact field", diags);
                    env.contact.extend(
                        infos
                            .into_iter()
                            .filter(|f| env_builtin_free(&builtin_contact_fields(), &f.name)),
                    );
                }
                Item::Event(e) => {
                    if env
                        .events
                        .get(&e.name.name)
                        .is_some_and(|b| b.span.is_none())
                    {
                        diags.push(
                            e.name.span,
                            ResolveError::Duplicate {
                                what: "event",
                                name: e.name.name.clone(),
                                span: ss(e.name.span),
                                first: None,
                            },
                        );
                        continue;
                    }
                    if !seen.check("event", "event", &e.name, diags) {
                        continue;
                    }
                    let mut fseen = Seen {
                        first: HashMap::new(),
                    };
                    let fields = field_infos(&e.fields, &mut fseen, "event field", diags);
                    env.events.insert(
                        e.name.name.clone(),
                        EventInfo {
                            name: e.name.name.clone(),
                            fields,
                            span: Some(e.name.span),
                        },
                    );
                }
                Item::Channel(c) => {
                    if seen.check("channel", "channel", &c.name, diags) {
                        let kind = ChannelKind::from_name(&c.kind.name);
                        env.channels.insert(c.name.name.clone(), (c, kind));
                    }
                }
                Item::Template(t) => {
                    if seen.check("template", "template", &t.name, diags) {
                        let kind = TemplateKind::from_name(&t.kind.name);
                        env.templates.insert(t.name.name.clone(), (t, kind));
                    }
                }
                Item::Source(s) => {
                    if seen.check("source", "source", &s.name, diags) {
                        env.sources.insert(s.name.name.clone(), s);
                    }
                }
                Item::Define(d) => {
                    if seen.check("define", "named condition", &d.name, diags) {
                        env.defines.insert(d.name.name.clone(), d);
                    }
                }
                Item::Flow(f) => {
                    if seen.check("flow", "flow", &f.name, diags) {
                        env.flows
                            .insert(f.name.name.clone(), FlowInfo::new(f, flow_index));
                        flow_index += 1;
                    }
                }
                Item::Test(t) => {
                    seen.check_at("test", "test", &t.name.value, t.name.span, diags);
                }
            }
        }
    }
    let r = Resolver { env: &env };
    for (_, m) in modules {
        for item in &m.items {
            r.item(item, diags);
        }
    }
    env
}

fn env_builtin_free(builtins: &[FieldInfo], name: &str) -> bool {
    !builtins.iter().any(|b| b.name == name)
}

struct Resolver<'e, 'a> {
    env: &'e Env<'a>,
}

/// Settings each declaration kind accepts, and those it requires.
fn settings_of(
    what: &str,
    kind: &str,
) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match (what, kind) {
        ("channel", "smtp") => (
            &[
                "host", "port", "security", "username", "password", "from", "reply_to", "rate",
                "cap", "timeout",
            ],
            &["host", "from"],
        ),
        ("channel", "slack") => (&["webhook", "rate", "cap", "timeout"], &["webhook"]),
        ("channel", "http") => (
            &["method", "url", "headers", "body", "rate", "cap", "timeout"],
            &["url"],
        ),
        ("template", "email") => (&["subject", "html", "text"], &["subject"]),
        ("template", "text") => (&["text"], &["text"]),
        ("source", "postback") => (
            &["contact", "event", "token", "hold", "dedupe"],
            &["contact", "event", "token"],
        ),
        _ => return None,
    })
}

fn check_settings(
    what: &'static str,
    decl_name: &Ident,
    kind: &Ident,
    settings: &[&Setting],
    diags: &mut Diagnostics,
) {
    let Some((allowed, required)) = settings_of(what, &kind.name) else {
        let kinds: &[&str] = match what {
            "channel" => &["smtp", "slack", "http"],
            "template" => &["email", "text"],
            _ => &["postback"],
        };
        diags.push(
            kind.span,
            ResolveError::UnknownKind {
                what,
                name: kind.name.clone(),
                span: ss(kind.span),
                help: did_you_mean(&kind.name, kinds.iter().copied()).or_else(|| {
                    Some(format!(
                        "the {what} kinds are {}",
                        kinds
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }),
            },
        );
        return;
    };
    let of = format!("{} `{}`", what, decl_name.name);
    let mut seen = Seen {
        first: HashMap::new(),
    };
    for s in settings {
        seen.check("setting", "setting", &s.name, diags);
        if !allowed.contains(&s.name.name.as_str()) {
            diags.push(
                s.name.span,
                ResolveError::UnknownSetting {
                    name: s.name.name.clone(),
                    of: format!("`{}` {what}s", kind.name),
                    span: ss(s.name.span),
                    help: did_you_mean(&s.name.name, allowed.iter().copied()).or_else(|| {
                        Some(format!(
                            "the settings are {}",
                            allowed
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }),
                },
            );
        }
    }
    for r in required {
        if !settings.iter().any(|s| s.name.name == *r) {
            diags.push(
                decl_name.span,
                ResolveError::MissingSetting {
                    name: (*r).into(),
                    of: of.clone(),
                    span: ss(decl_name.span),
                    help: Some(format!("add `{r} = …` to {of}")),
                },
            );
        }
    }
    if what == "template"
        && kind.name == "email"
        && !settings
            .iter()
            .any(|s| s.name.name == "html" || s.name.name == "text")
    {
        diags.push(
            decl_name.span,
            ResolveError::MissingSetting {
                name: "html".into(),
                of: of.clone(),
                span: ss(decl_name.span),
                help: Some("an e-mail template needs a body: `html = …` and/or `text = …`".into()),
            },
        );
    }
}

impl<'e, 'a> Resolver<'e, 'a> {
    fn item(&self, item: &Item, diags: &mut Diagnostics) {
        match item {
            Item::Channel(c) => check_settings(
                "channel",
                &c.name,
                &c.kind,
                &c.settings.iter().collect::<Vec<_>>(),
                diags,
            ),
            Item::Template(t) => check_settings(
                "template",
                &t.name,
                &t.kind,
                &t.settings.iter().collect::<Vec<_>>(),
                diags,
            ),
            Item::Source(s) => self.source(s, diags),
            Item::Flow(f) => self.flow(f, diags),
            Item::Test(t) => self.test(t, diags),
            Item::Contact(_) | Item::Event(_) | Item::Define(_) => {}
        }
    }

    fn source(&self, s: &SourceDecl, diags: &mut Diagnostics) {
        let settings: Vec<&Setting> = s
            .entries
            .iter()
            .filter_map(|e| match e {
                SourceEntry::Setting(s) => Some(s),
                _ => None,
            })
            .collect();
        check_settings("source", &s.name, &s.kind, &settings, diags);
        for e in &s.entries {
            match e {
                SourceEntry::Setting(set) if set.name.name == "contact" => {
                    if let ExprKind::Name(id) = &set.value.kind {
                        match self.env.contact_field(&id.name) {
                            Some(f) if f.unique => {}
                            Some(_) => diags.push(
                                id.span,
                                ResolveError::UnknownField {
                                    name: id.name.clone(),
                                    of: "the contact's unique keys".into(),
                                    span: ss(id.span),
                                    help: Some(format!(
                                        "mark the field `unique` in the contact schema: `{}: … unique`",
                                        id.name
                                    )),
                                },
                            ),
                            None => self.unknown_contact_field(id, diags),
                        }
                    }
                }
                SourceEntry::Rename { pairs, .. } => {
                    for (_, ev) in pairs {
                        self.event(ev, diags);
                    }
                }
                _ => {}
            }
        }
    }

    pub fn unknown_contact_field(&self, id: &Ident, diags: &mut Diagnostics) {
        diags.push(
            id.span,
            ResolveError::UnknownField {
                name: id.name.clone(),
                of: "the contact".into(),
                span: ss(id.span),
                help: did_you_mean(&id.name, self.env.contact.iter().map(|f| f.name.as_str())),
            },
        );
    }

    fn event(&self, id: &Ident, diags: &mut Diagnostics) {
        if !self.env.events.contains_key(&id.name) {
            diags.push(
                id.span,
                ResolveError::UnknownEvent {
                    name: id.name.clone(),
                    span: ss(id.span),
                    help: did_you_mean(&id.name, self.env.events.keys().map(String::as_str))
                        .or_else(|| Some(format!("declare it: `event {} {{ … }}`", id.name))),
                },
            );
        }
    }

    fn channel(&self, id: &Ident, diags: &mut Diagnostics) {
        if !self.env.channels.contains_key(&id.name) {
            diags.push(
                id.span,
                ResolveError::UnknownChannel {
                    name: id.name.clone(),
                    span: ss(id.span),
                    help: did_you_mean(&id.name, self.env.channels.keys().map(String::as_str)),
                },
            );
        }
    }

    fn template(&self, id: &Ident, diags: &mut Diagnostics) {
        if !self.env.templates.contains_key(&id.name) {
            diags.push(
                id.span,
                ResolveError::UnknownTemplate {
                    name: id.name.clone(),
                    span: ss(id.span),
                    help: did_you_mean(&id.name, self.env.templates.keys().map(String::as_str)),
                },
            );
        }
    }

    fn flow_ref(&self, id: &Ident, diags: &mut Diagnostics) -> Option<&FlowInfo<'a>> {
        let f = self.env.flows.get(&id.name);
        if f.is_none() {
            diags.push(
                id.span,
                ResolveError::UnknownFlow {
                    name: id.name.clone(),
                    span: ss(id.span),
                    help: did_you_mean(&id.name, self.env.flows.keys().map(String::as_str)),
                },
            );
        }
        f
    }

    fn step_ref(&self, flow: &FlowInfo<'_>, id: &Ident, diags: &mut Diagnostics) {
        if flow.step(&id.name).is_none() {
            diags.push(
                id.span,
                ResolveError::UnknownStep {
                    name: id.name.clone(),
                    flow: flow.decl.name.name.clone(),
                    span: ss(id.span),
                    help: did_you_mean(&id.name, flow.steps.iter().map(|s| s.name.as_str())),
                },
            );
        }
    }

    fn flow(&self, f: &FlowDecl, diags: &mut Diagnostics) {
        let Some(info) = self.env.flows.get(&f.name.name) else {
            return;
        };
        if !std::ptr::eq(info.decl, f) {
            return; // a duplicate flow, already reported
        }
        let mut seen = Seen {
            first: HashMap::new(),
        };
        for s in &info.steps {
            seen.check_at("step", "step", &s.name, s.span, diags);
        }
        for item in &f.body {
            match item {
                FlowItem::Trigger(t) => {
                    if let TriggerKind::Event(e) = &t.kind {
                        self.event(&e.name, diags);
                    }
                }
                FlowItem::Option(
                    FlowOption::ExitWhen { event, .. } | FlowOption::Goal { event, .. },
                ) => self.event(&event.name, diags),
                FlowItem::Handler(h) => self.event(&h.event.name, diags),
                _ => {}
            }
        }
        each_flow_stmt(f, &mut |s| self.stmt(info, s, diags));
    }

    fn stmt(&self, flow: &FlowInfo<'_>, s: &Stmt, diags: &mut Diagnostics) {
        match &s.kind {
            StmtKind::Send {
                channel, content, ..
            } => {
                self.channel(channel, diags);
                if let Content::Template(t) = content {
                    self.template(t, diags);
                }
            }
            StmtKind::Call {
                target: CallTarget::Channel(c),
                ..
            } => self.channel(c, diags),
            StmtKind::Wait(w) => match &w.kind {
                WaitKind::For { event, .. } => self.event(&event.name, diags),
                WaitKind::Block(branches) => {
                    for b in branches {
                        if let WaitBranchKind::On { event, .. } = &b.kind {
                            self.event(&event.name, diags);
                        }
                    }
                }
                _ => {}
            },
            StmtKind::Goto { target } => self.goto(flow, target, diags),
            StmtKind::Start { flow: f } | StmtKind::Stop { flow: f } => {
                self.flow_ref(f, diags);
            }
            StmtKind::Emit { event, .. } => self.event(event, diags),
            _ => {}
        }
    }

    fn goto(&self, flow: &FlowInfo<'_>, target: &GotoTarget, diags: &mut Diagnostics) {
        match &target.second {
            Some(step) => {
                if let Some(other) = self.flow_ref(&target.first, diags) {
                    self.step_ref(other, step, diags);
                }
            }
            None => {
                let name = &target.first.name;
                let is_step = flow.step(name).is_some();
                let is_flow = self.env.flows.contains_key(name);
                match (is_step, is_flow) {
                    (true, true) => diags.push(
                        target.span,
                        ResolveError::AmbiguousGoto {
                            name: name.clone(),
                            flow: flow.decl.name.name.clone(),
                            span: ss(target.span),
                        },
                    ),
                    (false, false) => {
                        let candidates = flow
                            .steps
                            .iter()
                            .map(|s| s.name.as_str())
                            .chain(self.env.flows.keys().map(String::as_str));
                        diags.push(
                            target.first.span,
                            ResolveError::UnknownStep {
                                name: name.clone(),
                                flow: flow.decl.name.name.clone(),
                                span: ss(target.first.span),
                                help: did_you_mean(name, candidates).or_else(|| {
                                    Some(
                                        "`goto` takes a step of this flow, a flow, or `flow.step`"
                                            .into(),
                                    )
                                }),
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn test(&self, t: &TestDecl, diags: &mut Diagnostics) {
        let mut contacts: BTreeMap<String, Span> = BTreeMap::new();
        let check_contact = |id: &Ident,
                             contacts: &BTreeMap<String, Span>,
                             diags: &mut Diagnostics| {
            if !contacts.contains_key(&id.name) {
                diags.push(
                    id.span,
                    ResolveError::UnknownContact {
                        name: id.name.clone(),
                        span: ss(id.span),
                        help: did_you_mean(&id.name, contacts.keys().map(String::as_str)).or_else(
                            || Some(format!("create it first: `contact {} {{ … }}`", id.name)),
                        ),
                    },
                );
            }
        };
        for s in &t.body {
            match &s.kind {
                TestStmtKind::Contact { id: Some(id), .. } => {
                    contacts.insert(id.name.clone(), id.span);
                }
                TestStmtKind::Event { name, contact, .. } => {
                    self.event(name, diags);
                    if let Some(c) = contact {
                        check_contact(c, &contacts, diags);
                    }
                }
                TestStmtKind::Postback { source, .. }
                    if !self.env.sources.contains_key(&source.name) =>
                {
                    diags.push(
                        source.span,
                        ResolveError::UnknownSource {
                            name: source.name.clone(),
                            span: ss(source.span),
                            help: did_you_mean(
                                &source.name,
                                self.env.sources.keys().map(String::as_str),
                            ),
                        },
                    );
                }
                TestStmtKind::Reply {
                    target: CallTarget::Channel(c),
                    ..
                } => self.channel(c, diags),
                TestStmtKind::Expect(e) => match e {
                    Expect::In { flow, step } => {
                        if let Some(f) = self.flow_ref(flow, diags) {
                            self.step_ref(f, step, diags);
                        }
                    }
                    Expect::Enrolled { flow, .. }
                    | Expect::Completed { flow }
                    | Expect::Exited { flow }
                    | Expect::Converted { flow } => {
                        self.flow_ref(flow, diags);
                    }
                    Expect::Sent {
                        channel, template, ..
                    } => {
                        self.channel(channel, diags);
                        if let Some(t) = template {
                            self.template(t, diags);
                        }
                    }
                    Expect::Called {
                        target: CallTarget::Channel(c),
                        ..
                    } => self.channel(c, diags),
                    _ => {}
                },
                _ => {}
            }
        }
    }
}
