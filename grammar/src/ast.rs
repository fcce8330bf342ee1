//! The abstract syntax tree of a Nudge file.
//!
//! Every node carries a [`Span`]; no `pest` type appears here. The tree keeps
//! enough of the written form (titles, duration parts, bare rate units) for
//! `nudge fmt` to print it back; comments live beside the tree in
//! [`Module::comments`]. Equality ignores nothing: two trees are equal only if
//! spans are equal too, so round-trip tests compare trees without their spans
//! (see `compiler/tests/fmt_support`).

use crate::span::Span;
use serde::{Deserialize, Serialize};

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal: its value after escapes and indentation removal, and a
/// map from value offsets back to source offsets (so diagnostics inside a
/// template point inside the string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
    /// Written with `"""`.
    pub multiline: bool,
    /// Sorted `(value_offset, source_offset)` pairs: from `value_offset` on,
    /// value bytes map one to one to source bytes starting at `source_offset`.
    pub segments: Vec<(u32, u32)>,
}

impl StrLit {
    /// The source byte offset of a byte offset in [`StrLit::value`].
    pub fn source_offset(&self, value_offset: usize) -> usize {
        let v = value_offset as u32;
        let idx = self.segments.partition_point(|(vo, _)| *vo <= v);
        match idx.checked_sub(1).and_then(|i| self.segments.get(i)) {
            Some((vo, so)) => (so + (v - vo)) as usize,
            None => self.span.start as usize + 1,
        }
    }

    /// The span of a byte range of the value, inside the literal.
    pub fn sub_span(&self, start: usize, end: usize) -> Span {
        let s = self.source_offset(start).min(self.span.end as usize);
        let e = self
            .source_offset(end.max(start))
            .clamp(s, self.span.end as usize);
        Span::new(self.span.file, s, e)
    }
}

/// A file: its items and its comments (for the formatter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Module {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// The whole comment text as written, `//` or `/* */` included.
    pub text: String,
    pub span: Span,
    /// Starts a line (only whitespace before it on its line).
    pub own_line: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    Contact(ContactDecl),
    Event(EventDecl),
    Channel(ChannelDecl),
    Template(TemplateDecl),
    Source(SourceDecl),
    Define(DefineDecl),
    Flow(FlowDecl),
    Test(TestDecl),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Contact(d) => d.span,
            Item::Event(d) => d.span,
            Item::Channel(d) => d.span,
            Item::Template(d) => d.span,
            Item::Source(d) => d.span,
            Item::Define(d) => d.span,
            Item::Flow(d) => d.span,
            Item::Test(d) => d.span,
        }
    }
}

/// `contact { field: type … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactDecl {
    pub fields: Vec<FieldDecl>,
    pub doc: Option<String>,
    pub span: Span,
}

/// `name: type [unique] [= default]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub unique: bool,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TypeExprKind {
    /// `text`, `int`, `decimal`, `bool`, `time`, `date`, `duration`, `email`,
    /// `phone`, `url`, `timezone` (checked by the compiler, not the parser).
    Named(Ident),
    Set(Box<TypeExpr>),
    List(Box<TypeExpr>),
    /// `"a" | "b"`
    Union(Vec<StrLit>),
    /// `T?` (for a union, `?` applies to the whole union)
    Optional(Box<TypeExpr>),
}

/// `event name { field: type, … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub doc: Option<String>,
    pub span: Span,
}

/// `name = value` inside braces (channel and template settings, contact and
/// event data, `call … with`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `channel name: kind { setting … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDecl {
    pub name: Ident,
    pub kind: Ident,
    pub settings: Vec<Setting>,
    pub doc: Option<String>,
    pub span: Span,
}

/// `template name: kind { setting … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDecl {
    pub name: Ident,
    pub kind: Ident,
    pub settings: Vec<Setting>,
    pub doc: Option<String>,
    pub span: Span,
}

/// `source name: kind { contact = …, event = …, token = …, rename {…}, fields {…} }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDecl {
    pub name: Ident,
    pub kind: Ident,
    pub entries: Vec<SourceEntry>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceEntry {
    Setting(Setting),
    /// `rename { "dep" = sale, … }`
    Rename {
        pairs: Vec<(StrLit, Ident)>,
        span: Span,
    },
    /// `fields { amount = param("payout"), … }`
    Fields {
        settings: Vec<Setting>,
        span: Span,
    },
}

/// `define name = expr`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefineDecl {
    pub name: Ident,
    pub value: Expr,
    pub doc: Option<String>,
    pub span: Span,
}

/// `flow name ["Title"] { … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDecl {
    pub name: Ident,
    pub title: Option<StrLit>,
    pub body: Vec<FlowItem>,
    pub doc: Option<String>,
    pub span: Span,
}

/// What may appear directly in a flow body, in source order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowItem {
    Trigger(Trigger),
    Option(FlowOption),
    Handler(Handler),
    Step(Step),
    /// A statement before the first `step` (the implicit step `start`).
    Stmt(Stmt),
}

/// An event as named in triggers, handlers and waits: `sale`, `resale #2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRef {
    pub name: Ident,
    pub nth: Option<(u32, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// `late DURATION` after a time trigger (LANGUAGE.md A3).
    pub late: Option<DurationLit>,
    pub cond: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TriggerKind {
    /// `when EVENT [#N]`
    Event(EventRef),
    /// `when TIME_EXPR [late DURATION]` (the `late` is on [`Trigger`])
    Time(Expr),
    /// `when every …`
    Schedule(Schedule),
    /// `keyword "TEXT"`
    Keyword(StrLit),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// `every day at HH:MM [local]`, `every monday at HH:MM [local]`
    At {
        day: Option<Weekday>,
        time: TimeOfDay,
        local: bool,
        span: Span,
    },
    /// `every "CRON" [local]`
    Cron {
        expr: StrLit,
        local: bool,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }

    pub fn from_name(name: &str) -> Option<Weekday> {
        Weekday::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// `HH:MM` (or `HH:MM:SS`) of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FlowOption {
    Reenter {
        mode: Reenter,
        span: Span,
    },
    ExitWhen {
        event: EventRef,
        cond: Option<Expr>,
        span: Span,
    },
    Goal {
        event: EventRef,
        cond: Option<Expr>,
        span: Span,
    },
    Holdout {
        percent: Percent,
        span: Span,
    },
    Window(Window),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reenter {
    Never,
    AfterExit,
    Restart,
}

impl Reenter {
    pub fn name(self) -> &'static str {
        match self {
            Reenter::Never => "never",
            Reenter::AfterExit => "after_exit",
            Reenter::Restart => "restart",
        }
    }
}

/// `window 09:00..21:00 [local]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from: TimeOfDay,
    pub to: TimeOfDay,
    pub local: bool,
    pub span: Span,
}

/// A percentage as written: `25%`, `12.5%`. `value` is in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percent {
    pub value: f64,
    pub text: String,
    pub span: Span,
}

/// `on EVENT [#N] [where COND] -> STMT`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handler {
    pub event: EventRef,
    pub cond: Option<Expr>,
    pub body: Box<Stmt>,
    pub span: Span,
}

/// `step name ["Title"] { … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: Ident,
    pub title: Option<StrLit>,
    /// `window …` set for this step.
    pub window: Option<Window>,
    pub body: Vec<Stmt>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StmtKind {
    Send {
        channel: Ident,
        content: Content,
        to: Option<Expr>,
        force: bool,
    },
    Call {
        target: CallTarget,
        with: Option<Vec<Setting>>,
        with_span: Option<Span>,
        as_name: Option<Ident>,
    },
    /// `set PATH = EXPR` (`contact.F`, or `ID.F` in tests)
    Set {
        target: Expr,
        value: Expr,
    },
    Unset {
        target: Expr,
    },
    Add {
        value: Expr,
        target: Expr,
    },
    Remove {
        value: Expr,
        target: Expr,
    },
    Tag {
        value: Expr,
    },
    Untag {
        value: Expr,
    },
    If {
        branches: Vec<(Expr, Vec<Stmt>)>,
        otherwise: Option<Vec<Stmt>>,
    },
    Split {
        arms: Vec<SplitArm>,
    },
    Wait(Wait),
    Goto {
        target: GotoTarget,
    },
    Start {
        flow: Ident,
    },
    Stop {
        flow: Ident,
    },
    Exit,
    Emit {
        event: Ident,
        fields: Option<Vec<Setting>>,
    },
    Log {
        text: StrLit,
    },
    Block(Vec<Stmt>),
}

/// What a `send` sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Content {
    Template(Ident),
    Inline(StrLit),
    /// `{ subject = …, text = … }`
    Fields(Vec<Setting>, Span),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallTarget {
    Channel(Ident),
    Url(StrLit),
}

/// `goto NAME` or `goto FLOW.STEP`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GotoTarget {
    pub first: Ident,
    pub second: Option<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitArm {
    pub share: Percent,
    pub body: Stmt,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    pub kind: WaitKind,
    /// `within D [else STMT]`
    pub within: Option<Within>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Within {
    pub duration: Expr,
    pub otherwise: Option<Box<Stmt>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WaitKind {
    /// `wait 2 days` (any duration expression)
    Duration(Expr),
    /// `wait until EXPR` (a time: timer; a bool: data match)
    Until(Expr),
    /// `wait until [WEEKDAY] HH:MM [local]`
    Clock {
        day: Option<Weekday>,
        time: TimeOfDay,
        local: bool,
    },
    /// `wait for EVENT [where COND]`
    For { event: EventRef, cond: Option<Expr> },
    /// `wait { branch … }`
    Block(Vec<WaitBranch>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitBranch {
    pub kind: WaitBranchKind,
    pub body: Stmt,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WaitBranchKind {
    On { event: EventRef, cond: Option<Expr> },
    Until(Expr),
    After(Expr),
}

/// `test "name" { … }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestDecl {
    pub name: StrLit,
    pub body: Vec<TestStmt>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestStmt {
    pub kind: TestStmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TestStmtKind {
    Env {
        name: Ident,
        value: StrLit,
    },
    Contact {
        id: Option<Ident>,
        fields: Vec<Setting>,
    },
    Event {
        name: Ident,
        fields: Option<Vec<Setting>>,
        contact: Option<Ident>,
    },
    Postback {
        source: Ident,
        params: Vec<Setting>,
    },
    Set {
        target: Expr,
        value: Expr,
    },
    After(Expr),
    At(Expr),
    Reply {
        target: CallTarget,
        status: u16,
        json: Option<Expr>,
    },
    Expect(Expect),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expect {
    /// `expect in FLOW.STEP`
    In {
        flow: Ident,
        step: Ident,
    },
    /// `expect [not] enrolled FLOW`
    Enrolled {
        flow: Ident,
        negated: bool,
    },
    Completed {
        flow: Ident,
    },
    Exited {
        flow: Ident,
    },
    Converted {
        flow: Ident,
    },
    /// `expect [not] sent CHANNEL [TEMPLATE] [where COND]`
    Sent {
        channel: Ident,
        template: Option<Ident>,
        cond: Option<Expr>,
        negated: bool,
    },
    /// `expect nothing sent`
    NothingSent,
    /// `expect called CHANNEL_OR_URL [where COND]`
    Called {
        target: CallTarget,
        cond: Option<Expr>,
    },
    /// `expect COND`
    Cond(Expr),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Str(StrLit),
    /// An integer as written.
    Int(i64),
    /// A decimal as written (`12.50` keeps its text).
    Decimal(String),
    Bool(bool),
    Percent(Percent),
    Duration(DurationLit),
    /// `2026-12-24`
    Date(String),
    /// `2026-12-24T09:00:00Z`, with offset
    Time(String),
    TimeOfDay(TimeOfDay),
    List(Vec<Expr>),
    /// `{ key: value, … }` (keys are names or strings)
    Map(Vec<MapEntry>),
    /// `json VALUE`
    Json(Box<Expr>),
    /// `N per DURATION` (channel `rate` and `cap`)
    Rate {
        count: Box<Expr>,
        per: DurationLit,
    },
    /// A bare name: `contact`, `event`, `now`, `message`, a define …
    Name(Ident),
    /// `base.field`
    Field(Box<Expr>, Ident),
    /// `f(args)` — `lower`, `env`, `file`, `param` …
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x is set` (`negated`: `is not set`)
    IsSet {
        value: Box<Expr>,
        negated: bool,
    },
    /// `( expr )`, kept for the formatter
    Paren(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapEntry {
    pub key: MapKey,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapKey {
    Name(Ident),
    Str(StrLit),
}

impl MapKey {
    pub fn text(&self) -> &str {
        match self {
            MapKey::Name(i) => &i.name,
            MapKey::Str(s) => &s.value,
        }
    }
}

/// A duration literal as written: one or more `(amount, unit)` parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationLit {
    pub parts: Vec<(u64, TimeUnit)>,
    /// `per second` written without a number (rates only).
    pub bare: bool,
    pub span: Span,
}

impl DurationLit {
    /// Total length in seconds (durations are exact: 1 day = 24 h).
    pub fn seconds(&self) -> u64 {
        self.parts.iter().fold(0u64, |acc, (n, u)| {
            acc.saturating_add(n.saturating_mul(u.seconds()))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl TimeUnit {
    pub fn seconds(self) -> u64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Minute => 60,
            TimeUnit::Hour => 3600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 604_800,
        }
    }

    /// The long form for `amount`: `1 day`, `2 days`.
    pub fn long_name(self, amount: u64) -> &'static str {
        let one = amount == 1;
        match (self, one) {
            (TimeUnit::Second, true) => "second",
            (TimeUnit::Second, false) => "seconds",
            (TimeUnit::Minute, true) => "minute",
            (TimeUnit::Minute, false) => "minutes",
            (TimeUnit::Hour, true) => "hour",
            (TimeUnit::Hour, false) => "hours",
            (TimeUnit::Day, true) => "day",
            (TimeUnit::Day, false) => "days",
            (TimeUnit::Week, true) => "week",
            (TimeUnit::Week, false) => "weeks",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Coalesce,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Contains => "contains",
            BinaryOp::StartsWith => "starts_with",
            BinaryOp::EndsWith => "ends_with",
            BinaryOp::Matches => "matches",
            BinaryOp::Coalesce => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding strength, loosest first (used by the formatter for parentheses).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In
            | BinaryOp::Contains
            | BinaryOp::StartsWith
            | BinaryOp::EndsWith
            | BinaryOp::Matches => 4,
            BinaryOp::Coalesce => 5,
            BinaryOp::Add | BinaryOp::Sub => 6,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 7,
        }
    }
}
