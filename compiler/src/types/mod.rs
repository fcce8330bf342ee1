//! Stage 3, types: every expression, literal, setting and template of the
//! project is typed (LANGUAGE.md §3, §7, §10), with `event` typed at each
//! point of a flow from what can be current there (§5.5).
//!
//! Takes the [`Env`] from resolve; gives diagnostics only. Expression names
//! (`contact.F`, `event.F`, defines) are resolved here, where the scope is
//! known, and reported with the `nudge::resolve::*` codes.

mod constant;
mod decls;
mod expr;
mod flow;
pub mod literals;
mod scope;
mod testblocks;
mod time;

use crate::diagnostics::Diagnostics;
use crate::files::{FileSystem, SourceSet};
use crate::model::{Env, Type};
use miette::{Diagnostic, SourceSpan};
use nudge_grammar::ast::{Item, Module};
use nudge_grammar::span::FileId;
use std::collections::HashMap;
use thiserror::Error;

pub(crate) use decls::dedupe_parts;
pub use scope::EvSet;

/// Type errors. Each variant's doc shows an input that triggers it.
#[derive(Debug, Error, Diagnostic)]
pub enum TypeError {
    /// `set contact.deposits = "many"`
    #[error("expected {expected}, found {found}")]
    #[diagnostic(code(nudge::types::mismatch))]
    Mismatch {
        expected: String,
        found: String,
        #[label("this is {found}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `if contact.deposits { … }`
    #[error("a condition must be `bool`, found {found}")]
    #[diagnostic(code(nudge::types::condition_not_bool))]
    ConditionNotBool {
        found: String,
        #[label("not a condition")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `email = "ann@"`
    #[error("`{value}` is not a valid {what}")]
    #[diagnostic(code(nudge::types::invalid_format))]
    InvalidFormat {
        value: String,
        what: String,
        #[label("not a valid {what}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `2026-02-30`
    #[error("{message}")]
    #[diagnostic(code(nudge::types::invalid_date))]
    InvalidDate {
        message: String,
        #[label("not on the calendar")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `contact.plan == "platinum"` where `plan: "free" | "pro"`
    #[error("`{value}` is not one of the values of {ty}")]
    #[diagnostic(code(nudge::types::not_in_union))]
    NotInUnion {
        value: String,
        ty: String,
        #[label("not a possible value")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `"a" + 1`
    #[error("`{op}` cannot combine {left} and {right}")]
    #[diagnostic(code(nudge::types::invalid_operands))]
    InvalidOperands {
        op: String,
        left: String,
        right: String,
        #[label("{left} {op} {right}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `contact.bonus + 1` where `bonus: int?`
    #[error("arithmetic on an optional value needs a default")]
    #[diagnostic(code(nudge::types::optional_arithmetic))]
    OptionalArithmetic {
        #[label("this may be unset")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `event.amount` in a flow triggered by `when every day at 09:00`
    #[error("there is no event here")]
    #[diagnostic(code(nudge::types::no_event))]
    NoEvent {
        #[label("no event can be current at this point")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `event.amount` after `wait { on sale … on registration … }`
    #[error("`{field}` is not a field of every event that can be current here")]
    #[diagnostic(code(nudge::types::not_common_field))]
    NotCommonField {
        field: String,
        #[label("missing from {missing}")]
        span: SourceSpan,
        missing: String,
        #[help]
        help: Option<String>,
    },
    /// `lower(1, 2)`
    #[error("{message}")]
    #[diagnostic(code(nudge::types::wrong_arguments))]
    WrongArguments {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `env("X")` inside a flow
    #[error("{what} cannot be used here")]
    #[diagnostic(code(nudge::types::not_allowed_here))]
    NotAllowedHere {
        what: String,
        #[label("not allowed here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `set event.amount = 1`, `unset contact.deposits` (required)
    #[error("{message}")]
    #[diagnostic(code(nudge::types::not_assignable))]
    NotAssignable {
        message: String,
        #[label("cannot be changed")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `define a = b` and `define b = a`
    #[error("named condition `{name}` refers to itself")]
    #[diagnostic(
        code(nudge::types::recursive_define),
        help("break the cycle by writing one of the conditions out in full")
    )]
    RecursiveDefine {
        name: String,
        #[label("used inside its own definition")]
        span: SourceSpan,
    },
    /// `event.text matches "(unclosed"`
    #[error("invalid regular expression: {detail}")]
    #[diagnostic(code(nudge::types::invalid_regex))]
    InvalidRegex {
        detail: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `contact { first_name = "Ann" }` when `email: email` is required
    #[error("{what} needs `{field}`")]
    #[diagnostic(code(nudge::types::missing_field))]
    MissingField {
        what: String,
        field: String,
        #[label("`{field}` is not given")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `when every "0 25 * * *"`
    #[error("invalid cron schedule")]
    #[diagnostic(code(nudge::types::invalid_cron))]
    InvalidCron {
        #[label("{detail}")]
        span: SourceSpan,
        detail: String,
        #[help]
        help: Option<String>,
    },
    /// `contact`, `event` or a test contact used as a value
    #[error("`{name}` is not a value")]
    #[diagnostic(code(nudge::types::not_a_value))]
    NotAValue {
        name: String,
        #[label("read one of its fields instead")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `contact.total / 0`, `contact.n % 0.0`
    #[error("division by zero in `{op}`")]
    #[diagnostic(code(nudge::types::division_by_zero))]
    DivisionByZero {
        op: String,
        #[label("this divisor is zero")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `9223372036854775807 + 1`
    #[error("integer overflow: `{expr}` does not fit in a 64-bit `int`")]
    #[diagnostic(code(nudge::types::overflow))]
    Overflow {
        expr: String,
        #[label("overflows")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `wait until now - contact.created_at > 3 days`: a data match that
    /// only time can make true, and time does not re-check it
    #[error("a data match that reads `now` is not re-checked as time passes")]
    #[diagnostic(code(nudge::types::time_only_condition))]
    TimeOnlyCondition {
        #[label("reads `now`{via}; re-checked only when the contact's data changes")]
        span: SourceSpan,
        /// ` through `NAME`` when a define reads `now`.
        via: String,
        #[help]
        help: Option<String>,
    },
    /// `holdout 120%`, `split { 0% -> … }`, `cap = 0 per 1 day`
    #[error("{message}")]
    #[diagnostic(code(nudge::types::out_of_range))]
    OutOfRange {
        message: String,
        #[label("out of range")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
}

/// The state shared by the type checker's functions.
pub(crate) struct Checker<'e, 'a> {
    pub env: &'e Env<'a>,
    pub sources: &'e SourceSet,
    pub fs: &'e dyn FileSystem,
    /// Types of named conditions, filled on first use.
    pub define_types: HashMap<String, Type>,
    pub define_stack: Vec<String>,
    /// Parsed template texts, by their text.
    pub template_cache: HashMap<String, Option<crate::templates::Parsed>>,
    /// `file(...)` bodies by resolved path.
    pub file_cache: HashMap<std::path::PathBuf, Result<String, String>>,
    /// What the lowering needs to know from typing.
    pub info: TypeInfo,
}

/// Facts found while typing that the lowering needs.
#[derive(Debug, Default)]
pub struct TypeInfo {
    /// Spans of `wait until` expressions that are conditions (data matches),
    /// not instants.
    pub data_waits: std::collections::HashSet<nudge_grammar::span::Span>,
    /// `file(…)` bodies read, by resolved path.
    pub files: HashMap<std::path::PathBuf, String>,
}

/// Type-check every expression, template and literal.
pub fn check(
    env: &Env<'_>,
    modules: &[(FileId, Module)],
    sources: &SourceSet,
    fs: &dyn FileSystem,
    diags: &mut Diagnostics,
) -> TypeInfo {
    let mut ck = Checker {
        env,
        sources,
        fs,
        define_types: HashMap::new(),
        define_stack: Vec::new(),
        template_cache: HashMap::new(),
        file_cache: HashMap::new(),
        info: TypeInfo::default(),
    };
    for (_, m) in modules {
        for item in &m.items {
            match item {
                Item::Contact(c) => ck.contact_decl(c, diags),
                Item::Event(e) => ck.event_decl(e, diags),
                Item::Channel(c) => ck.channel_decl(c, diags),
                Item::Template(t) => ck.template_decl(t, diags),
                Item::Source(s) => ck.source_decl(s, diags),
                Item::Define(d) => {
                    ck.define_type(&d.name.name, d.name.span, diags);
                }
                Item::Flow(_) | Item::Test(_) => {}
            }
        }
    }
    flow::check_flows(&mut ck, diags);
    for (_, m) in modules {
        for item in &m.items {
            if let Item::Test(t) = item {
                ck.test_decl(t, diags);
            }
        }
    }
    for (path, text) in ck.file_cache.drain() {
        if let Ok(t) = text {
            ck.info.files.insert(path, t);
        }
    }
    ck.info
}
