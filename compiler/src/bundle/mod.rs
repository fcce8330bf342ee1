//! The compiled bundle: the only thing the runtime takes from the compiler.
//!
//! A [`Bundle`] holds the schema, events, channels, templates, sources and one
//! [`Program`] per flow, plus the compiled `test` blocks. It serialises to
//! JSON with a format version ([`FORMAT_VERSION`]); the same sources give the
//! same bytes (every map is ordered), and [`Bundle::hash`] is the SHA-256 of
//! those bytes. `disasm.rs` prints programs readably. `enums.rs` holds the
//! bundle's own operator, re-entry and weekday enums: the bundle embeds no
//! AST type, so a grammar change cannot silently change stored bundles.

pub mod cron;
pub mod disasm;
mod enums;
mod serial;

use crate::value::Value;
use serde::{Deserialize, Serialize};

pub use cron::CronSpec;
pub use enums::{BinaryOp, Reenter, Weekday};
pub use serial::{BundleError, FORMAT_VERSION, READABLE_FORMATS};

/// Everything the runtime needs to run a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: u32,
    pub schema: Vec<FieldDef>,
    pub events: Vec<EventDef>,
    pub channels: Vec<ChannelDef>,
    pub templates: Vec<TemplateDef>,
    pub sources: Vec<SourceDef>,
    /// Flows in bundle order (files by path, then position).
    pub flows: Vec<Program>,
    pub tests: Vec<TestDef>,
    /// Named conditions, for templates that read them.
    pub defines: Vec<(String, Code)>,
    /// Names of every `env("…")` the bundle reads, sorted.
    pub env: Vec<String>,
}

impl Bundle {
    pub fn flow(&self, name: &str) -> Option<&Program> {
        self.flows.iter().find(|f| f.name == name)
    }

    pub fn flow_index(&self, name: &str) -> Option<usize> {
        self.flows.iter().position(|f| f.name == name)
    }

    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelDef> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn template(&self, name: &str) -> Option<&TemplateDef> {
        self.templates.iter().find(|t| t.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.schema.iter().find(|f| f.name == name)
    }
}

/// A field's type as the runtime validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldType {
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
    Set(Box<FieldType>),
    List(Box<FieldType>),
    Union(Vec<String>),
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub ty: FieldType,
    pub optional: bool,
    pub unique: bool,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDef {
    pub name: String,
    pub fields: Vec<FieldDef>,
    pub builtin: bool,
}

/// An expression compiled to stack code.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Code(pub Vec<Op>);

/// Where a name at the root of a path reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Root {
    Contact,
    Event,
    Flow,
    /// A call result (`call … as NAME`).
    Local(String),
    /// A named contact of a test.
    NamedContact(String),
    /// `message` (channel bodies: the rendered text; tests: the captured message).
    Message,
    /// `request` in `expect called … where`.
    Request,
    /// `data` in a channel body.
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    Lower,
    Upper,
    Trim,
    Len,
    Round,
    Abs,
    Date,
    Hour,
    Minute,
    Weekday,
    Coalesce,
}

impl Func {
    pub fn from_name(s: &str) -> Option<Func> {
        Some(match s {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "trim" => Func::Trim,
            "len" => Func::Len,
            "round" => Func::Round,
            "abs" => Func::Abs,
            "date" => Func::Date,
            "hour" => Func::Hour,
            "minute" => Func::Minute,
            "weekday" => Func::Weekday,
            "coalesce" => Func::Coalesce,
            _ => return None,
        })
    }
}

/// One operation of the expression stack machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Push(Value),
    Load(Root),
    /// Pop a value, push its field (unset when missing).
    Get(String),
    Now,
    /// `env("NAME")`
    Env(String),
    Not,
    Neg,
    Bin(BinaryOp),
    IsSet,
    IsNotSet,
    Call(Func, u8),
    /// Pop N values, push a list.
    List(u32),
    /// Pop one value per key, push a map.
    Map(Vec<String>),
    /// Push the rendered text of a template (LANGUAGE.md A2: a string in
    /// `call … with` or `emit`), with the defines it may read.
    Render(Tpl, Vec<(String, Code)>),
}

/// A template text (MiniJinja source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tpl(pub String);

/// How an event is matched by triggers, handlers and waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMatch {
    pub event: String,
    pub nth: Option<u32>,
    pub cond: Option<Code>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    Event(EventMatch),
    /// `when TIME_EXPR [late DURATION] [where COND]`
    Time {
        at: Code,
        /// How far in the past (seconds) the instant may be and still fire
        /// when it is scheduled (LANGUAGE.md A3).
        #[serde(default)]
        late: i64,
        cond: Option<Code>,
    },
    /// `when every …`
    Schedule {
        schedule: Schedule,
        local: bool,
        cond: Option<Code>,
    },
    /// `keyword "TEXT"` (stored folded: trimmed, lowercase)
    Keyword(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    Daily {
        hour: u8,
        minute: u8,
    },
    Weekly {
        day: Weekday,
        hour: u8,
        minute: u8,
    },
    /// Parsed by the checker (`bundle/cron.rs`); the runtime never reads the text.
    Cron(CronSpec),
}

/// `window A..B [local]`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowDef {
    pub from: (u8, u8),
    pub to: (u8, u8),
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDef {
    pub name: String,
    pub title: Option<String>,
    pub pc: u32,
    pub window: Option<WindowDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerDef {
    pub on: EventMatch,
    pub pc: u32,
}

/// One flow, lowered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub title: Option<String>,
    pub doc: Option<String>,
    pub triggers: Vec<Trigger>,
    pub reenter: Reenter,
    pub exit_when: Vec<EventMatch>,
    pub goals: Vec<EventMatch>,
    pub handlers: Vec<HandlerDef>,
    /// Share of contacts held out, in percent.
    pub holdout: Option<f64>,
    pub window: Option<WindowDef>,
    pub steps: Vec<StepDef>,
    pub code: Vec<Instr>,
    /// Source line (1-based) of each instruction, for the disassembly and journey.
    pub lines: Vec<u32>,
    /// Source file name.
    pub file: String,
}

impl Program {
    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The step an instruction belongs to (the last step starting at or before it).
    pub fn step_at(&self, pc: u32) -> Option<&StepDef> {
        self.steps.iter().rev().find(|s| s.pc <= pc)
    }
}

/// What a `send` sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDef {
    /// The template's name, if the message is a declared template.
    pub template: Option<String>,
    pub subject: Option<Tpl>,
    pub text: Option<Tpl>,
    pub html: Option<Tpl>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallTarget {
    Channel(String),
    Url(Tpl),
}

/// When a timer of a wait fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TimerDef {
    /// After a duration from entering the wait.
    After(Code),
    /// At an instant (an instant already past fires at once; unset never fires).
    At(Code),
    /// The next `[WEEKDAY] HH:MM:SS` strictly after now, UTC or in the contact's zone.
    Clock {
        day: Option<Weekday>,
        hour: u8,
        minute: u8,
        second: u8,
        local: bool,
    },
}

/// A wait: the first of its timers, events or data conditions to fire wins
/// and continues at its `pc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitDef {
    pub timers: Vec<(TimerDef, u32)>,
    pub events: Vec<(EventMatch, u32)>,
    pub data: Vec<(Code, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitArm {
    pub share: f64,
    pub pc: u32,
}

/// One instruction of a flow program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Instr {
    /// Entering a step (by index into `Program::steps`).
    Step(u32),
    Send {
        channel: String,
        message: MessageDef,
        to: Option<Code>,
        force: bool,
    },
    Call {
        target: CallTarget,
        with: Vec<(String, Code)>,
        /// `as NAME`: the enrollment waits for the response.
        result: Option<String>,
    },
    Set {
        field: String,
        value: Code,
    },
    Unset {
        field: String,
    },
    Add {
        field: String,
        value: Code,
    },
    Remove {
        field: String,
        value: Code,
    },
    Tag(Code),
    Untag(Code),
    Jump(u32),
    JumpUnless {
        cond: Code,
        to: u32,
    },
    /// A deterministic split: `id` is the split's place in the flow.
    Split {
        id: u32,
        arms: Vec<SplitArm>,
    },
    Wait(WaitDef),
    /// Leave this flow for another one (at a step or its start).
    GotoFlow {
        flow: String,
        step: Option<String>,
    },
    Start(String),
    Stop(String),
    Exit,
    /// Ran past the last step.
    Complete,
    Emit {
        event: String,
        fields: Vec<(String, Code)>,
    },
    Log(String),
    /// End of a handler body that did not move: back to the wait.
    Return,
}

/// The kind-specific settings of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChannelKind {
    Smtp {
        host: Code,
        port: u16,
        security: String,
        username: Option<Code>,
        password: Option<Code>,
        from: Code,
        reply_to: Option<Code>,
    },
    Slack {
        webhook: Code,
    },
    Http {
        method: String,
        url: Body,
        headers: Vec<(String, Body)>,
        body: Option<Body>,
    },
}

/// A value built at send time: a template text, an expression, or a JSON
/// structure of them (built structurally, never by concatenation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Tpl(Tpl),
    Expr(Code),
    Object(Vec<(String, Body)>),
    Array(Vec<Body>),
}

/// `N per DURATION`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub count: u32,
    pub per_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDef {
    pub name: String,
    pub kind: ChannelKind,
    pub rate: Option<Rate>,
    pub cap: Option<Rate>,
    pub timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDef {
    pub name: String,
    pub email: bool,
    pub subject: Option<Tpl>,
    pub text: Option<Tpl>,
    pub html: Option<Tpl>,
}

/// Where a postback value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ParamValue {
    Param(String),
    Literal(String),
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDef {
    pub name: String,
    /// The unique contact field that matches a contact.
    pub contact_key: String,
    pub event: ParamValue,
    pub token: ParamValue,
    /// Postback event names → declared events.
    pub rename: Vec<(String, String)>,
    /// Event fields → where their values come from.
    pub fields: Vec<(String, ParamValue)>,
    pub hold_seconds: i64,
    /// `dedupe = …`: the pieces of a postback's deduplication value, joined
    /// (LANGUAGE.md A5); empty without `dedupe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedupe: Vec<ParamValue>,
}

/// A compiled `test` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestDef {
    pub name: String,
    pub file: String,
    pub line: u32,
    pub steps: Vec<TestStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestStep {
    pub op: TestOp,
    pub line: u32,
    /// The statement's source text, for failure reports.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TestOp {
    Env {
        name: String,
        value: String,
    },
    Contact {
        id: Option<String>,
        fields: Vec<(String, Code)>,
    },
    Event {
        name: String,
        fields: Vec<(String, Code)>,
        contact: Option<String>,
    },
    Postback {
        source: String,
        params: Vec<(String, String)>,
    },
    Set {
        contact: Option<String>,
        field: String,
        value: Code,
    },
    /// Advance the clock by seconds.
    After(Code),
    /// Move the clock to an instant.
    At(Code),
    Reply {
        target: CallTarget,
        status: u16,
        json: Option<Code>,
    },
    ExpectIn {
        flow: String,
        step: String,
    },
    ExpectEnrolled {
        flow: String,
        negated: bool,
    },
    ExpectCompleted {
        flow: String,
    },
    ExpectExited {
        flow: String,
    },
    ExpectConverted {
        flow: String,
    },
    ExpectSent {
        channel: String,
        template: Option<String>,
        cond: Option<Code>,
        negated: bool,
    },
    ExpectNothingSent,
    ExpectCalled {
        target: CallTarget,
        cond: Option<Code>,
    },
    Expect(Code),
}
