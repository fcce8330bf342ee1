//! Text → [`Module`]: runs the lexical pre-pass, then pest, then builds the
//! AST. No pest type leaves this module; errors come back as [`SyntaxError`]
//! with a span and "expected …" in words a marketer knows.

use crate::ast::*;
use crate::lex;
use crate::span::{FileId, Span};
use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::LazyLock;

#[derive(pest_derive::Parser)]
#[grammar = "nudge.pest"]
struct NudgeParser;

/// What went wrong while reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxErrorKind {
    Unexpected,
    UnterminatedString,
    UnterminatedComment,
    InvalidEscape,
    InvalidNumber,
    TooDeep,
    FileTooLarge,
    /// `when sale or resale`
    TriggerOr,
    /// `set contact.score += 1`
    CompoundAssignment,
    /// `on b goto done`
    MissingArrow,
    /// `expect in f`
    ExpectInStep,
}

impl SyntaxErrorKind {
    /// The stable diagnostic name (`nudge::syntax::<name>`).
    pub fn name(self) -> &'static str {
        match self {
            SyntaxErrorKind::Unexpected => "unexpected",
            SyntaxErrorKind::UnterminatedString => "unterminated_string",
            SyntaxErrorKind::UnterminatedComment => "unterminated_comment",
            SyntaxErrorKind::InvalidEscape => "invalid_escape",
            SyntaxErrorKind::InvalidNumber => "invalid_number",
            SyntaxErrorKind::TooDeep => "too_deep",
            SyntaxErrorKind::FileTooLarge => "file_too_large",
            SyntaxErrorKind::TriggerOr => "trigger_or",
            SyntaxErrorKind::CompoundAssignment => "compound_assignment",
            SyntaxErrorKind::MissingArrow => "missing_arrow",
            SyntaxErrorKind::ExpectInStep => "expect_in_step",
        }
    }
}

/// A syntax error with its span, ready to be turned into a diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub kind: SyntaxErrorKind,
    pub span: Span,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

type Res<T> = Result<T, SyntaxError>;

/// Parse one file.
pub fn parse(file: FileId, text: &str) -> Result<Module, SyntaxError> {
    let comments = lex::scan(file, text)?;
    pest::set_call_limit(std::num::NonZeroUsize::new(50_000_000));
    let mut pairs = NudgeParser::parse(Rule::file, text).map_err(|e| pest_error(file, text, e))?;
    let root = pairs.next().ok_or_else(|| SyntaxError {
        kind: SyntaxErrorKind::Unexpected,
        span: Span::new(file, 0, 0),
        message: "empty parse".into(),
        label: "here".into(),
        help: None,
    })?;
    let b = Builder {
        file,
        text,
        comments: &comments,
    };
    let mut items = Vec::new();
    for p in root.into_inner() {
        if p.as_rule() == Rule::EOI {
            break;
        }
        items.push(b.item(p)?);
    }
    Ok(Module { items, comments })
}

/// Parse a single expression (used by tools and tests).
pub fn parse_expr(file: FileId, text: &str) -> Result<Expr, SyntaxError> {
    lex::scan(file, text)?;
    let mut pairs = NudgeParser::parse(Rule::expr, text).map_err(|e| pest_error(file, text, e))?;
    let b = Builder {
        file,
        text,
        comments: &[],
    };
    let p = pairs.next().ok_or_else(|| SyntaxError {
        kind: SyntaxErrorKind::Unexpected,
        span: Span::new(file, 0, 0),
        message: "expected an expression".into(),
        label: "here".into(),
        help: None,
    })?;
    if p.as_span().end() != text.trim_end().len() {
        let at = p.as_span().end();
        return Err(SyntaxError {
            kind: SyntaxErrorKind::Unexpected,
            span: Span::new(file, at, text.len()),
            message: "unexpected text after the expression".into(),
            label: "not part of the expression".into(),
            help: None,
        });
    }
    b.expr(p)
}

/// Words for rules in "expected …" messages; `None` hides the rule.
fn rule_label(rule: Rule) -> Option<String> {
    let name = format!("{rule:?}");
    if let Some(kw) = name.strip_prefix("kw_") {
        let kw = kw.strip_suffix("_type").unwrap_or(kw);
        return Some(format!("`{kw}`"));
    }
    let words = match rule {
        Rule::ident | Rule::var | Rule::template_name => "a name",
        Rule::expr | Rule::primary | Rule::e_cond | Rule::wait_duration | Rule::trigger_target => {
            "an expression"
        }
        Rule::string | Rule::simple_string | Rule::triple_string => "a string",
        Rule::int => "a whole number",
        Rule::decimal => "a number",
        Rule::percent => "a percentage like `50%`",
        Rule::duration => "a duration like `3 days`",
        Rule::bare_unit => "a time unit",
        Rule::time_of_day => "a time of day like `09:00`",
        Rule::time_lit => "a time like `2026-12-24T09:00:00Z`",
        Rule::date_lit => "a date like `2026-12-24`",
        Rule::weekday => "a weekday",
        Rule::reenter_mode => "`never`, `after_exit` or `restart`",
        Rule::EOI => "end of file",
        Rule::contact_decl
        | Rule::event_decl
        | Rule::channel_decl
        | Rule::template_decl
        | Rule::source_decl
        | Rule::define_decl
        | Rule::flow_decl
        | Rule::test_decl => {
            "a declaration (`contact`, `event`, `channel`, `template`, `source`, `define`, `flow`, `test`)"
        }
        Rule::stmt | Rule::block => "a statement",
        Rule::test_stmt => "a test statement",
        Rule::trigger | Rule::keyword_trigger => "a trigger",
        Rule::step => "a step",
        Rule::handler => "a handler",
        Rule::field_decl => "a field",
        Rule::type_expr | Rule::type_union | Rule::type_set | Rule::type_list => "a type",
        Rule::setting | Rule::settings | Rule::brace_settings => "a setting `name = value`",
        Rule::map_entry => "an entry `key: value`",
        Rule::rename_pair => "a rename `\"name\" = event`",
        Rule::split_arm => "a share like `50% -> …`",
        Rule::wait_branch | Rule::branch_on | Rule::branch_until | Rule::branch_after => {
            "a wait branch (`on`, `until` or `after`)"
        }
        Rule::within => "`within`",
        Rule::where_clause => "`where`",
        Rule::nth => "`#N`",
        Rule::op_eq | Rule::op_ne | Rule::op_le | Rule::op_ge | Rule::op_lt | Rule::op_gt => {
            "a comparison"
        }
        Rule::op_or
        | Rule::op_and
        | Rule::op_in
        | Rule::op_contains
        | Rule::op_starts_with
        | Rule::op_ends_with
        | Rule::op_matches
        | Rule::op_coalesce
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_rem => "an operator",
        Rule::op_is_set | Rule::op_is_not_set => "`is set`",
        Rule::field_access => "`.`",
        _ => return None,
    };
    Some(words.to_string())
}

fn pest_error(file: FileId, text: &str, e: pest::error::Error<Rule>) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    if let ErrorVariant::CustomError { message } = &e.variant {
        // pest's call limit
        return SyntaxError {
            kind: SyntaxErrorKind::TooDeep,
            span: Span::new(file, pos, pos),
            message: message.clone(),
            label: "here".into(),
            help: Some("simplify this file".into()),
        };
    }
    if let Some(specific) = crate::hints::recognise(file, text, pos) {
        return specific;
    }
    let mut expected: Vec<String> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| rule_label(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    expected.retain(|s| seen.insert(s.clone()));
    let end = token_end(text, pos);
    let found = if pos >= text.len() {
        "end of file".to_string()
    } else {
        format!("`{}`", &text[pos..end])
    };
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", expected[0]),
        _ => {
            let last = expected.pop().unwrap_or_default();
            format!("expected {} or {last}, found {found}", expected.join(", "))
        }
    };
    SyntaxError {
        kind: SyntaxErrorKind::Unexpected,
        span: Span::new(file, pos, end),
        message,
        label: "unexpected here".into(),
        help: None,
    }
}

/// The end of the token starting at `pos` (a word, or one character).
fn token_end(text: &str, pos: usize) -> usize {
    let rest = match text.get(pos..) {
        Some(r) if !r.is_empty() => r,
        _ => return pos.min(text.len()),
    };
    let word: usize = rest
        .char_indices()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    if word > 0 {
        pos + word
    } else {
        pos + rest.chars().next().map_or(0, char::len_utf8)
    }
}

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left)
            | Op::infix(Rule::op_contains, Assoc::Left)
            | Op::infix(Rule::op_starts_with, Assoc::Left)
            | Op::infix(Rule::op_ends_with, Assoc::Left)
            | Op::infix(Rule::op_matches, Assoc::Left)
            | Op::postfix(Rule::op_is_set)
            | Op::postfix(Rule::op_is_not_set))
        .op(Op::infix(Rule::op_coalesce, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::infix(Rule::op_mul, Assoc::Left)
            | Op::infix(Rule::op_div, Assoc::Left)
            | Op::infix(Rule::op_rem, Assoc::Left))
        .op(Op::prefix(Rule::op_neg))
});

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    comments: &'a [Comment],
}

fn inner(p: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    p.into_inner().collect()
}

fn is_kw(p: &Pair<'_, Rule>) -> bool {
    format!("{:?}", p.as_rule()).starts_with("kw_")
}

/// The children of a pair without its keyword tokens.
fn parts(p: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    p.into_inner().filter(|c| !is_kw(c)).collect()
}

impl<'a> Builder<'a> {
    /// The span of a pair without the whitespace pest may include at its end
    /// (an optional part that did not match still consumed the whitespace).
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        let (start, mut end) = (s.start(), s.end());
        loop {
            let text = &self.text[start..end];
            end = start
                + text
                    .trim_end_matches([' ', '\t', '\r', '\n', ';', '\u{FEFF}'])
                    .len();
            // a comment that ends the span (pest skipped it looking for more)
            let i = self
                .comments
                .partition_point(|c| (c.span.end as usize) < end);
            match self.comments.get(i) {
                Some(c) if c.span.end as usize == end && c.span.start as usize >= start => {
                    end = c.span.start as usize;
                }
                _ => break,
            }
        }
        Span::new(self.file, start, end)
    }

    fn err(&self, span: Span, kind: SyntaxErrorKind, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            kind,
            span,
            message: message.into(),
            label: "here".into(),
            help: None,
        }
    }

    fn doc(&self, p: &Pair<'_, Rule>) -> Option<String> {
        lex::doc_before(self.text, self.comments, p.as_span().start())
    }

    fn ident(&self, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn item(&self, p: Pair<'_, Rule>) -> Res<Item> {
        let span = self.span(&p);
        let doc = self.doc(&p);
        Ok(match p.as_rule() {
            Rule::contact_decl => {
                let fields = parts(p)
                    .into_iter()
                    .map(|f| self.field(f))
                    .collect::<Res<_>>()?;
                Item::Contact(ContactDecl { fields, doc, span })
            }
            Rule::event_decl => {
                let mut it = parts(p).into_iter();
                let name = self.ident(self.next(&mut it, span)?);
                let fields = it.map(|f| self.field(f)).collect::<Res<_>>()?;
                Item::Event(EventDecl {
                    name,
                    fields,
                    doc,
                    span,
                })
            }
            Rule::channel_decl | Rule::template_decl => {
                let is_channel = p.as_rule() == Rule::channel_decl;
                let mut it = parts(p).into_iter();
                let name = self.ident(self.next(&mut it, span)?);
                let kind = self.ident(self.next(&mut it, span)?);
                let settings = self.settings(self.next(&mut it, span)?)?;
                if is_channel {
                    Item::Channel(ChannelDecl {
                        name,
                        kind,
                        settings,
                        doc,
                        span,
                    })
                } else {
                    Item::Template(TemplateDecl {
                        name,
                        kind,
                        settings,
                        doc,
                        span,
                    })
                }
            }
            Rule::source_decl => {
                let mut it = parts(p).into_iter();
                let name = self.ident(self.next(&mut it, span)?);
                let kind = self.ident(self.next(&mut it, span)?);
                let mut entries = Vec::new();
                for e in it {
                    let espan = self.span(&e);
                    entries.push(match e.as_rule() {
                        Rule::rename_block => {
                            let mut pairs = Vec::new();
                            for rp in parts(e) {
                                let mut ri = rp.into_inner();
                                let from = self.string(self.next(&mut ri, espan)?)?;
                                let to = self.ident(self.next(&mut ri, espan)?);
                                pairs.push((from, to));
                            }
                            SourceEntry::Rename { pairs, span: espan }
                        }
                        Rule::fields_block => {
                            let s = parts(e).into_iter().next();
                            let settings = match s {
                                Some(s) => self.settings(s)?,
                                None => Vec::new(),
                            };
                            SourceEntry::Fields {
                                settings,
                                span: espan,
                            }
                        }
                        _ => SourceEntry::Setting(self.setting(e)?),
                    });
                }
                Item::Source(SourceDecl {
                    name,
                    kind,
                    entries,
                    doc,
                    span,
                })
            }
            Rule::define_decl => {
                let mut it = parts(p).into_iter();
                let name = self.ident(self.next(&mut it, span)?);
                let value = self.expr(self.next(&mut it, span)?)?;
                Item::Define(DefineDecl {
                    name,
                    value,
                    doc,
                    span,
                })
            }
            Rule::flow_decl => {
                let mut it = parts(p).into_iter().peekable();
                let name = self.ident(self.next(&mut it, span)?);
                let title = match it.peek() {
                    Some(t) if t.as_rule() == Rule::string => {
                        Some(self.string(self.next(&mut it, span)?)?)
                    }
                    _ => None,
                };
                let body: Vec<FlowItem> = it.map(|i| self.flow_item(i)).collect::<Res<_>>()?;
                let first_step = body.iter().position(|i| matches!(i, FlowItem::Step(_)));
                if let Some(stray) = first_step.and_then(|at| {
                    body[at..].iter().find_map(|i| match i {
                        FlowItem::Stmt(s) => Some(s.span),
                        _ => None,
                    })
                }) {
                    return Err(SyntaxError {
                        kind: SyntaxErrorKind::Unexpected,
                        span: stray,
                        message: "a statement after the first `step` must be inside a step".into(),
                        label: "outside any step".into(),
                        help: Some(
                            "move it into the step above, or start a new `step name { … }`".into(),
                        ),
                    });
                }
                Item::Flow(FlowDecl {
                    name,
                    title,
                    body,
                    doc,
                    span,
                })
            }
            Rule::test_decl => {
                let mut it = parts(p).into_iter();
                let name = self.string(self.next(&mut it, span)?)?;
                let body = it.map(|s| self.test_stmt(s)).collect::<Res<_>>()?;
                Item::Test(TestDecl {
                    name,
                    body,
                    doc,
                    span,
                })
            }
            r => return Err(self.unexpected_rule(span, r)),
        })
    }

    fn unexpected_rule(&self, span: Span, r: Rule) -> SyntaxError {
        self.err(
            span,
            SyntaxErrorKind::Unexpected,
            format!(
                "unexpected {}",
                rule_label(r).unwrap_or_else(|| "text".into())
            ),
        )
    }

    fn next<'i, I: Iterator<Item = Pair<'i, Rule>>>(
        &self,
        it: &mut I,
        span: Span,
    ) -> Res<Pair<'i, Rule>> {
        it.next().ok_or_else(|| {
            self.err(
                span,
                SyntaxErrorKind::Unexpected,
                "incomplete construct".to_string(),
            )
        })
    }

    fn field(&self, p: Pair<'_, Rule>) -> Res<FieldDecl> {
        let span = self.span(&p);
        let mut it = inner(p).into_iter();
        let name = self.ident(self.next(&mut it, span)?);
        let ty = self.type_expr(self.next(&mut it, span)?)?;
        let mut unique = false;
        let mut default = None;
        for r in it {
            match r.as_rule() {
                Rule::unique_mark => unique = true,
                Rule::expr => default = Some(self.expr(r)?),
                _ => {}
            }
        }
        Ok(FieldDecl {
            name,
            ty,
            unique,
            default,
            span,
        })
    }

    fn type_expr(&self, p: Pair<'_, Rule>) -> Res<TypeExpr> {
        let span = self.span(&p);
        let mut it = inner(p).into_iter();
        let first = self.next(&mut it, span)?;
        let fspan = self.span(&first);
        let base = match first.as_rule() {
            Rule::type_union => TypeExprKind::Union(
                inner(first)
                    .into_iter()
                    .map(|s| self.string(s))
                    .collect::<Res<_>>()?,
            ),
            Rule::type_set | Rule::type_list => {
                let is_set = first.as_rule() == Rule::type_set;
                let t = parts(first).into_iter().next();
                let t = self.type_expr(t.ok_or_else(|| {
                    self.err(fspan, SyntaxErrorKind::Unexpected, "missing type")
                })?)?;
                if is_set {
                    TypeExprKind::Set(Box::new(t))
                } else {
                    TypeExprKind::List(Box::new(t))
                }
            }
            _ => TypeExprKind::Named(self.ident(first)),
        };
        if it.next().is_some() {
            Ok(TypeExpr {
                kind: TypeExprKind::Optional(Box::new(TypeExpr {
                    kind: base,
                    span: fspan,
                })),
                span,
            })
        } else {
            Ok(TypeExpr { kind: base, span })
        }
    }

    fn settings(&self, p: Pair<'_, Rule>) -> Res<Vec<Setting>> {
        inner(p).into_iter().map(|s| self.setting(s)).collect()
    }

    fn setting(&self, p: Pair<'_, Rule>) -> Res<Setting> {
        let span = self.span(&p);
        let mut it = inner(p).into_iter();
        let name = self.ident(self.next(&mut it, span)?);
        let v = self.next(&mut it, span)?;
        let value = if v.as_rule() == Rule::rate {
            self.rate(v)?
        } else {
            self.expr(v)?
        };
        Ok(Setting { name, value, span })
    }

    fn rate(&self, p: Pair<'_, Rule>) -> Res<Expr> {
        let span = self.span(&p);
        let mut it = parts(p).into_iter();
        let count = self.next(&mut it, span)?;
        let cspan = self.span(&count);
        let n = self.int(&count)?;
        let per = self.next(&mut it, span)?;
        let per = if per.as_rule() == Rule::bare_unit {
            let pspan = self.span(&per);
            let unit = unit_of(per.as_str()).ok_or_else(|| {
                self.err(pspan, SyntaxErrorKind::Unexpected, "expected a time unit")
            })?;
            DurationLit {
                parts: vec![(1, unit)],
                bare: true,
                span: pspan,
            }
        } else {
            self.duration(&per)?
        };
        Ok(Expr {
            kind: ExprKind::Rate {
                count: Box::new(Expr {
                    kind: ExprKind::Int(n),
                    span: cspan,
                }),
                per,
            },
            span,
        })
    }

    fn int(&self, p: &Pair<'_, Rule>) -> Res<i64> {
        p.as_str().parse::<i64>().map_err(|_| {
            self.err(
                self.span(p),
                SyntaxErrorKind::InvalidNumber,
                format!("`{}` is too large for a whole number", p.as_str()),
            )
        })
    }

    fn duration(&self, p: &Pair<'_, Rule>) -> Res<DurationLit> {
        let span = self.span(p);
        let text = p.as_str();
        let mut parts_out = Vec::new();
        let mut rest = text;
        while !rest.trim_start().is_empty() {
            rest = rest.trim_start();
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let amount: u64 = rest[..digits].parse().map_err(|_| {
                self.err(
                    span,
                    SyntaxErrorKind::InvalidNumber,
                    "this duration is too large",
                )
            })?;
            rest = rest[digits..].trim_start();
            let ulen = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
            let unit = unit_of(&rest[..ulen]).ok_or_else(|| {
                self.err(span, SyntaxErrorKind::Unexpected, "expected a time unit")
            })?;
            rest = &rest[ulen..];
            parts_out.push((amount, unit));
        }
        Ok(DurationLit {
            parts: parts_out,
            bare: false,
            span,
        })
    }

    fn percent(&self, p: &Pair<'_, Rule>) -> Res<Percent> {
        let text = p.as_str().trim_end_matches('%');
        let value: f64 = text.parse().map_err(|_| {
            self.err(
                self.span(p),
                SyntaxErrorKind::InvalidNumber,
                "invalid percentage",
            )
        })?;
        Ok(Percent {
            value,
            text: text.to_string(),
            span: self.span(p),
        })
    }

    fn time_of_day(&self, p: &Pair<'_, Rule>) -> Res<TimeOfDay> {
        let span = self.span(p);
        let nums: Vec<u8> = p
            .as_str()
            .split(':')
            .map(|n| n.parse::<u8>().unwrap_or(u8::MAX))
            .collect();
        let (hour, minute, second) = (
            nums.first().copied().unwrap_or(0),
            nums.get(1).copied().unwrap_or(0),
            nums.get(2).copied().unwrap_or(0),
        );
        if hour > 23 || minute > 59 || second > 59 {
            return Err(SyntaxError {
                kind: SyntaxErrorKind::InvalidNumber,
                span,
                message: format!("`{}` is not a time of day", p.as_str()),
                label: "hours go from 00 to 23, minutes from 00 to 59".into(),
                help: Some("write a time of day like `09:00` or `21:30`".into()),
            });
        }
        Ok(TimeOfDay {
            hour,
            minute,
            second,
            span,
        })
    }

    /// Decode a string literal, keeping the map from value to source offsets.
    fn string(&self, p: Pair<'_, Rule>) -> Res<StrLit> {
        let span = self.span(&p);
        let raw = p.as_str();
        let base = p.as_span().start();
        let multiline = raw.starts_with("\"\"\"");
        let (open, close) = if multiline { (3, 3) } else { (1, 1) };
        let body = &raw[open..raw.len() - close];
        let body_start = base + open;
        // Lines of a multi-line string: drop the first line if blank, the last
        // if only indentation, and the common indentation of the others.
        let mut pieces: Vec<(usize, &str)> = Vec::new(); // (source offset, text)
        if multiline {
            let mut lines: Vec<(usize, &str)> = Vec::new();
            let mut off = 0;
            for line in body.split('\n') {
                lines.push((off, line));
                off += line.len() + 1;
            }
            if lines.len() > 1 && lines.first().is_some_and(|(_, l)| l.trim().is_empty()) {
                lines.remove(0);
            }
            if lines.len() > 1 && lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
                lines.pop();
            }
            let indent = lines
                .iter()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(_, l)| l.len() - l.trim_start_matches([' ', '\t']).len())
                .min()
                .unwrap_or(0);
            for (i, (off, line)) in lines.iter().enumerate() {
                let cut = indent.min(line.len() - line.trim_start_matches([' ', '\t']).len());
                let text = line[cut..].trim_end_matches('\r');
                pieces.push((body_start + off + cut, text));
                if i + 1 < lines.len() {
                    pieces.push((usize::MAX, "\n"));
                }
            }
        } else {
            pieces.push((body_start, body));
        }
        let mut value = String::new();
        let mut segments: Vec<(u32, u32)> = Vec::new();
        for (src, text) in pieces {
            if src == usize::MAX {
                value.push('\n');
                continue;
            }
            segments.push((value.len() as u32, src as u32));
            let mut chars = text.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c != '\\' {
                    value.push(c);
                    continue;
                }
                let esc_span = Span::new(self.file, src + i, src + i + 2);
                let decoded = match chars.next() {
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    Some((_, '"')) => '"',
                    Some((_, '\\')) => '\\',
                    Some((_, 'u')) => self.unicode_escape(&mut chars, src + i)?,
                    Some((_, other)) => {
                        return Err(SyntaxError {
                            kind: SyntaxErrorKind::InvalidEscape,
                            span: Span::new(self.file, src + i, src + i + 1 + other.len_utf8()),
                            message: format!("unknown escape `\\{other}`"),
                            label: "not an escape".into(),
                            help: Some(
                                "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}`".into(),
                            ),
                        });
                    }
                    None => {
                        return Err(self.err(
                            esc_span,
                            SyntaxErrorKind::InvalidEscape,
                            "a `\\` must be followed by an escape",
                        ));
                    }
                };
                value.push(decoded);
                let next_src = chars.peek().map_or(src + text.len(), |(j, _)| src + j);
                segments.push((value.len() as u32, next_src as u32));
            }
        }
        Ok(StrLit {
            value,
            span,
            multiline,
            segments,
        })
    }

    fn unicode_escape(
        &self,
        chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
        at: usize,
    ) -> Res<char> {
        let bad = |len: usize| SyntaxError {
            kind: SyntaxErrorKind::InvalidEscape,
            span: Span::new(self.file, at, at + len.max(2)),
            message: "invalid unicode escape".into(),
            label: "here".into(),
            help: Some("write `\\u{…}` with 1 to 6 hex digits, like `\\u{e9}`".into()),
        };
        if chars.next().map(|(_, c)| c) != Some('{') {
            return Err(bad(2));
        }
        let mut hex = String::new();
        for (_, c) in chars.by_ref() {
            if c == '}' {
                let n = u32::from_str_radix(&hex, 16).map_err(|_| bad(hex.len() + 4))?;
                return char::from_u32(n).ok_or_else(|| bad(hex.len() + 4));
            }
            hex.push(c);
            if hex.len() > 6 {
                break;
            }
        }
        Err(bad(hex.len() + 3))
    }

    fn event_ref(&self, p: Pair<'_, Rule>) -> Res<EventRef> {
        let span = self.span(&p);
        let mut it = inner(p).into_iter();
        let name = self.ident(self.next(&mut it, span)?);
        let nth = match it.next() {
            Some(n) => {
                let nspan = self.span(&n);
                let num = n
                    .into_inner()
                    .next()
                    .ok_or_else(|| self.err(nspan, SyntaxErrorKind::Unexpected, "expected `#N`"))?;
                let v = self.int(&num)?;
                Some((u32::try_from(v).unwrap_or(u32::MAX), nspan))
            }
            None => None,
        };
        Ok(EventRef { name, nth, span })
    }

    fn where_clause(&self, p: Option<Pair<'_, Rule>>) -> Res<Option<Expr>> {
        match p {
            Some(w) if w.as_rule() == Rule::where_clause => {
                let span = self.span(&w);
                let e = self.next(&mut parts(w).into_iter(), span)?;
                Ok(Some(self.expr(e)?))
            }
            _ => Ok(None),
        }
    }

    fn window(&self, p: Pair<'_, Rule>) -> Res<Window> {
        let span = self.span(&p);
        let ps = parts(p);
        let from = self.time_of_day(ps.first().ok_or_else(|| self.incomplete(span))?)?;
        let to = self.time_of_day(ps.get(1).ok_or_else(|| self.incomplete(span))?)?;
        Ok(Window {
            from,
            to,
            local: ps.len() > 2,
            span,
        })
    }

    /// The texts of the operands of an `a or b or …` chain.
    fn or_operands<'e>(&'e self, e: &Expr, out: &mut Vec<&'e str>) {
        match &e.kind {
            ExprKind::Binary(BinaryOp::Or, l, r) => {
                self.or_operands(l, out);
                self.or_operands(r, out);
            }
            _ => out.push(&self.text[e.span.start as usize..e.span.end as usize]),
        }
    }

    /// `when sale late 1 hour`: `late` is for time triggers only.
    fn late_after_event(&self, span: Span) -> SyntaxError {
        SyntaxError {
            kind: SyntaxErrorKind::Unexpected,
            span,
            message: "`late` only follows a time trigger".into(),
            label: "not after an event".into(),
            help: Some(
                "an event trigger fires when the event arrives; `late` bounds how far in the past a time like `contact.signup_at + 7 days` may be".into(),
            ),
        }
    }

    fn incomplete(&self, span: Span) -> SyntaxError {
        self.err(span, SyntaxErrorKind::Unexpected, "incomplete construct")
    }

    fn flow_item(&self, p: Pair<'_, Rule>) -> Res<FlowItem> {
        let span = self.span(&p);
        Ok(match p.as_rule() {
            Rule::trigger => {
                let mut it = parts(p).into_iter();
                let target = self.next(&mut it, span)?;
                let mut rest = it.next();
                let late = match rest.take_if(|r| r.as_rule() == Rule::late_clause) {
                    Some(l) => {
                        rest = it.next();
                        let lspan = self.span(&l);
                        Some(self.duration(&self.next(&mut parts(l).into_iter(), lspan)?)?)
                    }
                    None => None,
                };
                let cond = self.where_clause(rest)?;
                let kind = if target.as_rule() == Rule::schedule {
                    TriggerKind::Schedule(self.schedule(target)?)
                } else {
                    let tspan = self.span(&target);
                    let mut ti = target.into_inner();
                    let e = self.expr(self.next(&mut ti, tspan)?)?;
                    let nth = match ti.next() {
                        Some(n) => {
                            let nspan = self.span(&n);
                            let num = self.next(&mut n.into_inner(), nspan)?;
                            Some((u32::try_from(self.int(&num)?).unwrap_or(u32::MAX), nspan))
                        }
                        None => None,
                    };
                    match e.kind {
                        ExprKind::Name(_) if late.is_some() => {
                            return Err(
                                self.late_after_event(late.as_ref().map_or(tspan, |l| l.span))
                            );
                        }
                        ExprKind::Name(name) => TriggerKind::Event(EventRef {
                            name,
                            nth,
                            span: tspan,
                        }),
                        ExprKind::Binary(BinaryOp::Or, ..) => {
                            let mut operands = Vec::new();
                            self.or_operands(&e, &mut operands);
                            return Err(crate::hints::trigger_or(e.span, &operands));
                        }
                        _ => {
                            if let Some((_, nspan)) = nth {
                                return Err(SyntaxError {
                                    kind: SyntaxErrorKind::Unexpected,
                                    span: nspan,
                                    message: "`#N` only follows an event name".into(),
                                    label: "not after an event".into(),
                                    help: None,
                                });
                            }
                            TriggerKind::Time(e)
                        }
                    }
                };
                FlowItem::Trigger(Trigger {
                    kind,
                    late,
                    cond,
                    span,
                })
            }
            Rule::keyword_trigger => {
                let s = self.next(&mut parts(p).into_iter(), span)?;
                FlowItem::Trigger(Trigger {
                    kind: TriggerKind::Keyword(self.string(s)?),
                    late: None,
                    cond: None,
                    span,
                })
            }
            Rule::reenter_opt => {
                let m = self.next(&mut parts(p).into_iter(), span)?;
                let mode = match m.as_str() {
                    "never" => Reenter::Never,
                    "restart" => Reenter::Restart,
                    _ => Reenter::AfterExit,
                };
                FlowItem::Option(FlowOption::Reenter { mode, span })
            }
            Rule::exit_when | Rule::goal_opt => {
                let is_goal = p.as_rule() == Rule::goal_opt;
                let mut it = parts(p).into_iter();
                let event = self.event_ref(self.next(&mut it, span)?)?;
                let cond = self.where_clause(it.next())?;
                FlowItem::Option(if is_goal {
                    FlowOption::Goal { event, cond, span }
                } else {
                    FlowOption::ExitWhen { event, cond, span }
                })
            }
            Rule::holdout_opt => {
                let pc = self.next(&mut parts(p).into_iter(), span)?;
                FlowItem::Option(FlowOption::Holdout {
                    percent: self.percent(&pc)?,
                    span,
                })
            }
            Rule::window_opt => FlowItem::Option(FlowOption::Window(self.window(p)?)),
            Rule::handler => {
                let mut it = parts(p).into_iter().peekable();
                let event = self.event_ref(self.next(&mut it, span)?)?;
                let cond = match it.peek() {
                    Some(w) if w.as_rule() == Rule::where_clause => self.where_clause(it.next())?,
                    _ => None,
                };
                let body = self.stmt(self.next(&mut it, span)?)?;
                FlowItem::Handler(Handler {
                    event,
                    cond,
                    body: Box::new(body),
                    span,
                })
            }
            Rule::step => {
                let doc = self.doc(&p);
                let mut it = parts(p).into_iter().peekable();
                let name = self.ident(self.next(&mut it, span)?);
                let title = match it.peek() {
                    Some(t) if t.as_rule() == Rule::string => {
                        Some(self.string(self.next(&mut it, span)?)?)
                    }
                    _ => None,
                };
                let mut window = None;
                let mut body = Vec::new();
                for s in it {
                    if s.as_rule() == Rule::window_opt {
                        window = Some(self.window(s)?);
                    } else {
                        body.push(self.stmt(s)?);
                    }
                }
                FlowItem::Step(Step {
                    name,
                    title,
                    window,
                    body,
                    doc,
                    span,
                })
            }
            Rule::stmt => FlowItem::Stmt(self.stmt(p)?),
            r => return Err(self.unexpected_rule(span, r)),
        })
    }

    fn schedule(&self, p: Pair<'_, Rule>) -> Res<Schedule> {
        let span = self.span(&p);
        let s = self.next(&mut parts(p).into_iter(), span)?;
        let sspan = self.span(&s);
        let ps = parts(s.clone());
        if s.as_rule() == Rule::schedule_cron {
            let expr = self.string(ps.first().cloned().ok_or_else(|| self.incomplete(span))?)?;
            return Ok(Schedule::Cron {
                expr,
                local: ps.len() > 1,
                span: sspan,
            });
        }
        let day_pair = ps.first().ok_or_else(|| self.incomplete(span))?;
        let day = if day_pair.as_rule() == Rule::weekday {
            Weekday::from_name(day_pair.as_str())
        } else {
            None
        };
        let time = self.time_of_day(ps.get(1).ok_or_else(|| self.incomplete(span))?)?;
        Ok(Schedule::At {
            day,
            time,
            local: ps.len() > 2,
            span: sspan,
        })
    }

    fn block_stmts(&self, p: Pair<'_, Rule>) -> Res<Vec<Stmt>> {
        inner(p).into_iter().map(|s| self.stmt(s)).collect()
    }

    fn call_target(&self, p: Pair<'_, Rule>) -> Res<CallTarget> {
        Ok(if p.as_rule() == Rule::string {
            CallTarget::Url(self.string(p)?)
        } else {
            CallTarget::Channel(self.ident(p))
        })
    }

    fn stmt(&self, p: Pair<'_, Rule>) -> Res<Stmt> {
        let span = self.span(&p);
        let p = if p.as_rule() == Rule::stmt {
            self.next(&mut p.into_inner(), span)?
        } else {
            p
        };
        let rule = p.as_rule();
        let mut it = parts(p).into_iter().peekable();
        let kind = match rule {
            Rule::send_stmt => {
                let channel = self.ident(self.next(&mut it, span)?);
                let c = self.next(&mut it, span)?;
                let cspan = self.span(&c);
                let c = self.next(&mut c.into_inner(), cspan)?;
                let content = match c.as_rule() {
                    Rule::string => Content::Inline(self.string(c)?),
                    Rule::brace_settings => Content::Fields(self.settings(c)?, cspan),
                    _ => Content::Template(self.ident(c)),
                };
                let mut to = None;
                let mut force = false;
                for r in it {
                    match r.as_rule() {
                        Rule::expr => to = Some(self.expr(r)?),
                        Rule::force_mark => force = true,
                        _ => {}
                    }
                }
                StmtKind::Send {
                    channel,
                    content,
                    to,
                    force,
                }
            }
            Rule::call_stmt => {
                let target = self.call_target(self.next(&mut it, span)?)?;
                let mut with = None;
                let mut with_span = None;
                let mut as_name = None;
                for r in it {
                    match r.as_rule() {
                        Rule::call_with => {
                            let wspan = self.span(&r);
                            let b = self.next(&mut parts(r).into_iter(), wspan)?;
                            with_span = Some(self.span(&b));
                            with = Some(self.settings(b)?);
                        }
                        Rule::ident => as_name = Some(self.ident(r)),
                        _ => {}
                    }
                }
                StmtKind::Call {
                    target,
                    with,
                    with_span,
                    as_name,
                }
            }
            Rule::set_stmt => {
                let target = self.path(self.next(&mut it, span)?)?;
                let value = self.expr(self.next(&mut it, span)?)?;
                StmtKind::Set { target, value }
            }
            Rule::unset_stmt => StmtKind::Unset {
                target: self.path(self.next(&mut it, span)?)?,
            },
            Rule::add_stmt | Rule::remove_stmt => {
                let value = self.expr(self.next(&mut it, span)?)?;
                let target = self.path(self.next(&mut it, span)?)?;
                if rule == Rule::add_stmt {
                    StmtKind::Add { value, target }
                } else {
                    StmtKind::Remove { value, target }
                }
            }
            Rule::tag_stmt => StmtKind::Tag {
                value: self.expr(self.next(&mut it, span)?)?,
            },
            Rule::untag_stmt => StmtKind::Untag {
                value: self.expr(self.next(&mut it, span)?)?,
            },
            Rule::if_stmt => {
                let cond = self.expr(self.next(&mut it, span)?)?;
                let body = self.block_stmts(self.next(&mut it, span)?)?;
                let mut branches = vec![(cond, body)];
                let mut otherwise = None;
                for r in it {
                    let rspan = self.span(&r);
                    if r.as_rule() == Rule::else_if {
                        let mut ri = parts(r).into_iter();
                        let c = self.expr(self.next(&mut ri, rspan)?)?;
                        let b = self.block_stmts(self.next(&mut ri, rspan)?)?;
                        branches.push((c, b));
                    } else {
                        let b = self.next(&mut parts(r).into_iter(), rspan)?;
                        otherwise = Some(self.block_stmts(b)?);
                    }
                }
                StmtKind::If {
                    branches,
                    otherwise,
                }
            }
            Rule::split_stmt => {
                let mut arms = Vec::new();
                for a in it {
                    let aspan = self.span(&a);
                    let mut ai = a.into_inner();
                    let share = self.percent(&self.next(&mut ai, aspan)?)?;
                    let body = self.stmt(self.next(&mut ai, aspan)?)?;
                    arms.push(SplitArm {
                        share,
                        body,
                        span: aspan,
                    });
                }
                StmtKind::Split { arms }
            }
            Rule::wait_stmt => StmtKind::Wait(self.wait(it.collect(), span)?),
            Rule::goto_stmt => {
                let first = self.ident(self.next(&mut it, span)?);
                let second = it.next().map(|s| self.ident(s));
                StmtKind::Goto {
                    target: GotoTarget {
                        first,
                        second,
                        span,
                    },
                }
            }
            Rule::start_stmt => StmtKind::Start {
                flow: self.ident(self.next(&mut it, span)?),
            },
            Rule::stop_stmt => StmtKind::Stop {
                flow: self.ident(self.next(&mut it, span)?),
            },
            Rule::exit_stmt => StmtKind::Exit,
            Rule::emit_stmt => {
                let event = self.ident(self.next(&mut it, span)?);
                let fields = match it.next() {
                    Some(b) => Some(self.settings(b)?),
                    None => None,
                };
                StmtKind::Emit { event, fields }
            }
            Rule::log_stmt => StmtKind::Log {
                text: self.string(self.next(&mut it, span)?)?,
            },
            Rule::block => StmtKind::Block(it.map(|s| self.stmt(s)).collect::<Res<_>>()?),
            r => return Err(self.unexpected_rule(span, r)),
        };
        Ok(Stmt { kind, span })
    }

    fn wait(&self, ps: Vec<Pair<'_, Rule>>, span: Span) -> Res<Wait> {
        let mut it = ps.into_iter();
        let k = self.next(&mut it, span)?;
        let kspan = self.span(&k);
        let krule = k.as_rule();
        let mut ki = parts(k).into_iter();
        let kind = match krule {
            Rule::wait_for => {
                let event = self.event_ref(self.next(&mut ki, kspan)?)?;
                let cond = self.where_clause(ki.next())?;
                WaitKind::For { event, cond }
            }
            Rule::wait_clock => {
                let mut day = None;
                let mut time = None;
                let mut local = false;
                for r in ki {
                    match r.as_rule() {
                        Rule::weekday => day = Weekday::from_name(r.as_str()),
                        Rule::time_of_day => time = Some(self.time_of_day(&r)?),
                        Rule::local_mark => local = true,
                        _ => {}
                    }
                }
                WaitKind::Clock {
                    day,
                    time: time.ok_or_else(|| self.incomplete(kspan))?,
                    local,
                }
            }
            Rule::wait_until => WaitKind::Until(self.expr(self.next(&mut ki, kspan)?)?),
            Rule::wait_duration => WaitKind::Duration(self.expr(self.next(&mut ki, kspan)?)?),
            Rule::wait_block => {
                let mut branches = Vec::new();
                for b in ki {
                    let bspan = self.span(&b);
                    let mut bi = b.into_inner();
                    let head = self.next(&mut bi, bspan)?;
                    let hspan = self.span(&head);
                    let hrule = head.as_rule();
                    let mut hi = parts(head).into_iter();
                    let kind = match hrule {
                        Rule::branch_on => {
                            let event = self.event_ref(self.next(&mut hi, hspan)?)?;
                            let cond = self.where_clause(hi.next())?;
                            WaitBranchKind::On { event, cond }
                        }
                        Rule::branch_until => {
                            WaitBranchKind::Until(self.expr(self.next(&mut hi, hspan)?)?)
                        }
                        _ => WaitBranchKind::After(self.expr(self.next(&mut hi, hspan)?)?),
                    };
                    let body = self.stmt(self.next(&mut bi, bspan)?)?;
                    branches.push(WaitBranch {
                        kind,
                        body,
                        span: bspan,
                    });
                }
                WaitKind::Block(branches)
            }
            r => return Err(self.unexpected_rule(kspan, r)),
        };
        let within = match it.next() {
            Some(w) => {
                let wspan = self.span(&w);
                let mut wi = parts(w).into_iter();
                let duration = self.expr(self.next(&mut wi, wspan)?)?;
                let otherwise = match wi.next() {
                    Some(s) => Some(Box::new(self.stmt(s)?)),
                    None => None,
                };
                Some(Within {
                    duration,
                    otherwise,
                    span: wspan,
                })
            }
            None => None,
        };
        Ok(Wait { kind, within })
    }

    /// `a.b.c` as a field-access expression.
    fn path(&self, p: Pair<'_, Rule>) -> Res<Expr> {
        let mut it = p.into_inner();
        let first = it.next().ok_or_else(|| self.incomplete(Span::default()))?;
        let mut e = Expr {
            span: self.span(&first),
            kind: ExprKind::Name(self.ident(first)),
        };
        for f in it {
            let id = self.ident(f);
            e = Expr {
                span: e.span.to(id.span),
                kind: ExprKind::Field(Box::new(e), id),
            };
        }
        Ok(e)
    }

    fn test_stmt(&self, p: Pair<'_, Rule>) -> Res<TestStmt> {
        let span = self.span(&p);
        let p = self.next(&mut p.into_inner(), span)?;
        let rule = p.as_rule();
        let mut it = parts(p).into_iter().peekable();
        let kind = match rule {
            Rule::t_env => {
                let name = self.ident(self.next(&mut it, span)?);
                let value = self.string(self.next(&mut it, span)?)?;
                TestStmtKind::Env { name, value }
            }
            Rule::t_contact => {
                let id = match it.peek() {
                    Some(i) if i.as_rule() == Rule::ident => {
                        Some(self.ident(self.next(&mut it, span)?))
                    }
                    _ => None,
                };
                let fields = self.settings(self.next(&mut it, span)?)?;
                TestStmtKind::Contact { id, fields }
            }
            Rule::t_event => {
                let name = self.ident(self.next(&mut it, span)?);
                let mut fields = None;
                let mut contact = None;
                for r in it {
                    match r.as_rule() {
                        Rule::brace_settings => fields = Some(self.settings(r)?),
                        _ => contact = Some(self.ident(r)),
                    }
                }
                TestStmtKind::Event {
                    name,
                    fields,
                    contact,
                }
            }
            Rule::t_postback => {
                let source = self.ident(self.next(&mut it, span)?);
                let params = self.settings(self.next(&mut it, span)?)?;
                TestStmtKind::Postback { source, params }
            }
            Rule::t_set => {
                let target = self.path(self.next(&mut it, span)?)?;
                let value = self.expr(self.next(&mut it, span)?)?;
                TestStmtKind::Set { target, value }
            }
            Rule::t_after => TestStmtKind::After(self.expr(self.next(&mut it, span)?)?),
            Rule::t_at => TestStmtKind::At(self.expr(self.next(&mut it, span)?)?),
            Rule::t_reply => {
                let target = self.call_target(self.next(&mut it, span)?)?;
                let st = self.next(&mut it, span)?;
                let status = u16::try_from(self.int(&st)?).map_err(|_| {
                    self.err(
                        self.span(&st),
                        SyntaxErrorKind::InvalidNumber,
                        "an HTTP status is a number from 100 to 599",
                    )
                })?;
                let json = match it.next() {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                };
                TestStmtKind::Reply {
                    target,
                    status,
                    json,
                }
            }
            Rule::t_expect => {
                let e = self.next(&mut it, span)?;
                TestStmtKind::Expect(self.expect(e, span)?)
            }
            r => return Err(self.unexpected_rule(span, r)),
        };
        Ok(TestStmt { kind, span })
    }

    fn expect(&self, p: Pair<'_, Rule>, span: Span) -> Res<Expect> {
        let rule = p.as_rule();
        let mut it = parts(p).into_iter();
        Ok(match rule {
            Rule::e_in => Expect::In {
                flow: self.ident(self.next(&mut it, span)?),
                step: self.ident(self.next(&mut it, span)?),
            },
            Rule::e_enrolled | Rule::e_not_enrolled => Expect::Enrolled {
                flow: self.ident(self.next(&mut it, span)?),
                negated: rule == Rule::e_not_enrolled,
            },
            Rule::e_completed => Expect::Completed {
                flow: self.ident(self.next(&mut it, span)?),
            },
            Rule::e_exited => Expect::Exited {
                flow: self.ident(self.next(&mut it, span)?),
            },
            Rule::e_converted => Expect::Converted {
                flow: self.ident(self.next(&mut it, span)?),
            },
            Rule::e_nothing_sent => Expect::NothingSent,
            Rule::e_sent | Rule::e_not_sent => {
                let channel = self.ident(self.next(&mut it, span)?);
                let mut template = None;
                let mut cond = None;
                for r in it {
                    match r.as_rule() {
                        Rule::template_name => {
                            let rspan = self.span(&r);
                            template = Some(self.ident(self.next(&mut r.into_inner(), rspan)?));
                        }
                        Rule::where_clause => cond = self.where_clause(Some(r))?,
                        _ => {}
                    }
                }
                Expect::Sent {
                    channel,
                    template,
                    cond,
                    negated: rule == Rule::e_not_sent,
                }
            }
            Rule::e_called => {
                let target = self.call_target(self.next(&mut it, span)?)?;
                let cond = self.where_clause(it.next())?;
                Expect::Called { target, cond }
            }
            _ => Expect::Cond(self.expr(self.next(&mut it, span)?)?),
        })
    }

    fn expr(&self, p: Pair<'_, Rule>) -> Res<Expr> {
        let p = if p.as_rule() == Rule::e_cond {
            let span = self.span(&p);
            self.next(&mut p.into_inner(), span)?
        } else {
            p
        };
        PRATT
            .map_primary(|prim| self.primary(prim))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let ospan = self.span(&op);
                let u = if op.as_rule() == Rule::op_not {
                    UnaryOp::Not
                } else {
                    UnaryOp::Neg
                };
                Ok(Expr {
                    span: ospan.to(rhs.span),
                    kind: ExprKind::Unary(u, Box::new(rhs)),
                })
            })
            .map_postfix(|lhs, op| {
                let lhs = lhs?;
                let ospan = self.span(&op);
                Ok(Expr {
                    span: lhs.span.to(ospan),
                    kind: ExprKind::IsSet {
                        value: Box::new(lhs),
                        negated: op.as_rule() == Rule::op_is_not_set,
                    },
                })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let b = match op.as_rule() {
                    Rule::op_or => BinaryOp::Or,
                    Rule::op_and => BinaryOp::And,
                    Rule::op_eq => BinaryOp::Eq,
                    Rule::op_ne => BinaryOp::Ne,
                    Rule::op_lt => BinaryOp::Lt,
                    Rule::op_le => BinaryOp::Le,
                    Rule::op_gt => BinaryOp::Gt,
                    Rule::op_ge => BinaryOp::Ge,
                    Rule::op_in => BinaryOp::In,
                    Rule::op_contains => BinaryOp::Contains,
                    Rule::op_starts_with => BinaryOp::StartsWith,
                    Rule::op_ends_with => BinaryOp::EndsWith,
                    Rule::op_matches => BinaryOp::Matches,
                    Rule::op_coalesce => BinaryOp::Coalesce,
                    Rule::op_add => BinaryOp::Add,
                    Rule::op_sub => BinaryOp::Sub,
                    Rule::op_mul => BinaryOp::Mul,
                    Rule::op_div => BinaryOp::Div,
                    _ => BinaryOp::Rem,
                };
                Ok(Expr {
                    span: lhs.span.to(rhs.span),
                    kind: ExprKind::Binary(b, Box::new(lhs), Box::new(rhs)),
                })
            })
            .parse(p.into_inner())
    }

    fn primary(&self, p: Pair<'_, Rule>) -> Res<Expr> {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let atom = self.next(&mut it, span)?;
        let mut e = self.atom(atom)?;
        for f in it {
            let fspan = self.span(&f);
            let id = self.ident(self.next(&mut f.into_inner(), fspan)?);
            e = Expr {
                span: e.span.to(id.span),
                kind: ExprKind::Field(Box::new(e), id),
            };
        }
        Ok(e)
    }

    fn atom(&self, p: Pair<'_, Rule>) -> Res<Expr> {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::paren => {
                ExprKind::Paren(Box::new(self.expr(self.next(&mut p.into_inner(), span)?)?))
            }
            Rule::json_value => {
                let e = self.next(&mut parts(p).into_iter(), span)?;
                ExprKind::Json(Box::new(self.expr(e)?))
            }
            Rule::list_lit => {
                ExprKind::List(p.into_inner().map(|e| self.expr(e)).collect::<Res<_>>()?)
            }
            Rule::map_lit => {
                let mut entries = Vec::new();
                for e in p.into_inner() {
                    let espan = self.span(&e);
                    let mut ei = e.into_inner();
                    let k = self.next(&mut ei, espan)?;
                    let key = if k.as_rule() == Rule::string {
                        MapKey::Str(self.string(k)?)
                    } else {
                        MapKey::Name(self.ident(k))
                    };
                    let value = self.expr(self.next(&mut ei, espan)?)?;
                    entries.push(MapEntry {
                        key,
                        value,
                        span: espan,
                    });
                }
                ExprKind::Map(entries)
            }
            Rule::time_lit => ExprKind::Time(p.as_str().to_string()),
            Rule::date_lit => ExprKind::Date(p.as_str().to_string()),
            Rule::time_of_day => ExprKind::TimeOfDay(self.time_of_day(&p)?),
            Rule::duration => ExprKind::Duration(self.duration(&p)?),
            Rule::percent => ExprKind::Percent(self.percent(&p)?),
            Rule::decimal => ExprKind::Decimal(p.as_str().to_string()),
            Rule::int => ExprKind::Int(self.int(&p)?),
            Rule::string => ExprKind::Str(self.string(p)?),
            Rule::bool_lit => ExprKind::Bool(p.as_str() == "true"),
            Rule::func_call => {
                let mut fi = p.into_inner();
                let func = self.ident(self.next(&mut fi, span)?);
                let args = fi.map(|a| self.expr(a)).collect::<Res<_>>()?;
                ExprKind::Call { func, args }
            }
            Rule::var => ExprKind::Name(self.ident(p)),
            r => return Err(self.unexpected_rule(span, r)),
        };
        Ok(Expr { kind, span })
    }
}

/// The unit named by a long or short unit word.
fn unit_of(word: &str) -> Option<TimeUnit> {
    Some(match word {
        "s" | "second" | "seconds" => TimeUnit::Second,
        "m" | "minute" | "minutes" => TimeUnit::Minute,
        "h" | "hour" | "hours" => TimeUnit::Hour,
        "d" | "day" | "days" => TimeUnit::Day,
        "w" | "week" | "weeks" => TimeUnit::Week,
        _ => return None,
    })
}
