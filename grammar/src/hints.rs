//! Syntax errors that point at the real mistake. pest reports what it
//! expected at the furthest point it reached, which for a few common
//! mistakes is a long list far from the cause. When its error falls on a
//! line that reads like one of them, [`recognise`] gives a specific error
//! instead, with the line rewritten the right way in its help:
//!
//! * `set contact.score += 1` → `nudge::syntax::compound_assignment`
//! * `on b goto done` (a wait branch or handler without `->`) →
//!   `nudge::syntax::missing_arrow`
//! * `expect in f` (no step) → `nudge::syntax::expect_in_step`
//!
//! `when sale or resale` parses (as an expression) and is caught by the
//! parser itself (`nudge::syntax::trigger_or`, see [`trigger_or`]).

use crate::parser::{SyntaxError, SyntaxErrorKind};
use crate::span::{FileId, Span};

/// The statements that may follow `->` in a branch or handler.
const STATEMENT_WORDS: &[&str] = &[
    "send", "call", "set", "unset", "add", "remove", "tag", "untag", "if", "split", "wait", "goto",
    "start", "stop", "exit", "emit", "log",
];

/// A specific error for the line of pest's error position, if it reads like
/// a known mistake.
pub(crate) fn recognise(file: FileId, text: &str, pos: usize) -> Option<SyntaxError> {
    let (start, line) = line_at(text, pos);
    compound_assignment(line)
        .or_else(|| missing_arrow(line, pos.saturating_sub(start)))
        .or_else(|| expect_in_step(line))
        .map(|h| SyntaxError {
            kind: h.kind,
            span: Span::new(file, start + h.at.0, start + h.at.1),
            message: h.message,
            label: h.label,
            help: Some(h.help),
        })
}

/// A recognised mistake, positions relative to its line.
struct Hint {
    kind: SyntaxErrorKind,
    at: (usize, usize),
    message: String,
    label: String,
    help: String,
}

/// The line holding `pos` (without its newline) and where it starts.
fn line_at(text: &str, pos: usize) -> (usize, &str) {
    let pos = pos.min(text.len());
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    (start, text[start..end].trim_end_matches('\r'))
}

/// The line without a trailing `//` comment (strings are not looked into:
/// the lines recognised here hold none before the comment).
fn code_part(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i]).trim_end()
}

/// Length of the leading word (letters, digits, `_`).
fn word_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// `s` without `word` and the blanks after it, if it starts with the word.
fn after_word<'s>(s: &'s str, word: &str) -> Option<&'s str> {
    let rest = s.strip_prefix(word)?;
    let trimmed = rest.trim_start();
    (trimmed.len() < rest.len()).then_some(trimmed)
}

/// `set PATH OP= VALUE` (in flows and in tests).
fn compound_assignment(line: &str) -> Option<Hint> {
    let code = code_part(line);
    let rest = after_word(code.trim_start(), "set")?;
    let path_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let path = &rest[..path_len];
    let after_path = rest[path_len..].trim_start();
    let op = ["+", "-", "*", "/", "%"].into_iter().find(|op| {
        after_path
            .strip_prefix(op)
            .is_some_and(|r| r.starts_with('='))
    })?;
    let value = after_path[op.len() + 1..].trim();
    if path.is_empty() || !path.contains('.') || value.is_empty() {
        return None;
    }
    let op_at = code.len() - after_path.len();
    let value = if value.contains(char::is_whitespace) {
        format!("({value})")
    } else {
        value.to_string()
    };
    Some(Hint {
        kind: SyntaxErrorKind::CompoundAssignment,
        at: (op_at, op_at + op.len() + 1),
        message: format!("`set` assigns with `=`, not `{op}=`"),
        label: "not an assignment".into(),
        help: format!("write the new value in full: `set {path} = {path} {op} {value}`"),
    })
}

/// `on EVENT … STATEMENT` (and `after …`/`until …` wait branches) without
/// the `->` before the statement; `at` is pest's position in the line.
fn missing_arrow(line: &str, at: usize) -> Option<Hint> {
    let code = code_part(line);
    let trimmed = code.trim_start();
    let indent = code.len() - trimmed.len();
    let starts_branch = ["on", "after", "until"]
        .into_iter()
        .any(|w| after_word(trimmed, w).is_some());
    if !starts_branch || code.contains("->") || at <= indent || at >= code.len() {
        return None;
    }
    let found = &code[at..];
    let word = &found[..word_len(found)];
    if !STATEMENT_WORDS.contains(&word) {
        return None;
    }
    let before = code[indent..at].trim_end();
    Some(Hint {
        kind: SyntaxErrorKind::MissingArrow,
        at: (at, at + word.len()),
        message: format!("expected `->` before the statement, found `{word}`"),
        label: "`->` goes before this".into(),
        help: format!(
            "a wait branch or a handler puts `->` before its statement: write `{before} -> {found}`"
        ),
    })
}

/// `expect in FLOW` without `.STEP`.
fn expect_in_step(line: &str) -> Option<Hint> {
    let code = code_part(line);
    let rest = after_word(code.trim_start(), "expect")?;
    let flow_part = after_word(rest, "in")?;
    let flow = &flow_part[..word_len(flow_part)];
    if flow.is_empty() || flow_part[flow.len()..].trim_start().starts_with('.') {
        return None;
    }
    let flow_at = code.len() - flow_part.len();
    Some(Hint {
        kind: SyntaxErrorKind::ExpectInStep,
        at: (flow_at, flow_at + flow.len()),
        message: format!("`expect in` takes a flow and a step, found only `{flow}`"),
        label: "a flow without a step".into(),
        help: format!(
            "write `expect in FLOW.STEP`: `expect in {flow}.STEP` with the step the contact \
             should be in, or `expect enrolled {flow}` for any step"
        ),
    })
}

/// `when sale or resale`: a trigger names one event. `operands` are the
/// texts joined by `or`, `span` the whole expression.
pub(crate) fn trigger_or(span: Span, operands: &[&str]) -> SyntaxError {
    let whens: Vec<String> = operands.iter().map(|o| format!("`when {o}`")).collect();
    let (last, rest) = whens
        .split_last()
        .map_or(("", &[][..]), |(l, r)| (l.as_str(), r));
    SyntaxError {
        kind: SyntaxErrorKind::TriggerOr,
        span,
        message: format!("a trigger names one event, not `{}`", operands.join(" or ")),
        label: "events joined by `or`".into(),
        help: Some(format!(
            "write one `when` line per event: {} and {last}",
            rest.join(", ")
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hint(text: &str, at: &str) -> Option<SyntaxError> {
        let pos = text.find(at).expect("marker in text");
        recognise(FileId(0), text, pos)
    }

    #[test]
    fn compound_assignments_are_rewritten() {
        let text = "flow f {\n  set contact.score += 1 // more\n}\n";
        let e = hint(text, "set").expect("recognised");
        assert_eq!(e.kind, SyntaxErrorKind::CompoundAssignment);
        assert_eq!(&text[e.span.start as usize..e.span.end as usize], "+=");
        assert_eq!(
            e.help.as_deref(),
            Some("write the new value in full: `set contact.score = contact.score + 1`")
        );
        let e = hint("  set ann.spent -= a ?? 0\n", "set").expect("recognised");
        assert!(
            e.help
                .unwrap()
                .ends_with("`set ann.spent = ann.spent - (a ?? 0)`")
        );
        assert!(hint("  set contact.score = 1 +\n", "set").is_none());
    }

    #[test]
    fn branches_without_an_arrow_are_rewritten() {
        let text = "  wait {\n    on b goto done\n  }\n";
        let e = hint(text, "goto").expect("recognised");
        assert_eq!(e.kind, SyntaxErrorKind::MissingArrow);
        assert_eq!(&text[e.span.start as usize..e.span.end as usize], "goto");
        assert!(e.help.unwrap().ends_with("write `on b -> goto done`"));
        let e = hint("    after 3 days tag \"x\"\n", "tag").expect("recognised");
        assert!(
            e.help
                .unwrap()
                .ends_with("write `after 3 days -> tag \"x\"`")
        );
        assert!(hint("    on b -> goto\n", "goto").is_none());
        assert!(hint("    on b where x\n", "x").is_none());
    }

    #[test]
    fn expect_in_needs_a_step() {
        let text = "  expect in f\n";
        let e = hint(text, "in").expect("recognised");
        assert_eq!(e.kind, SyntaxErrorKind::ExpectInStep);
        assert_eq!(&text[e.span.start as usize..e.span.end as usize], "f");
        assert!(hint("  expect in f.s\n", "in").is_none());
    }

    #[test]
    fn or_triggers_list_one_when_per_event() {
        let e = trigger_or(Span::new(FileId(0), 0, 1), &["a", "b", "c"]);
        assert_eq!(e.message, "a trigger names one event, not `a or b or c`");
        assert_eq!(
            e.help.as_deref(),
            Some("write one `when` line per event: `when a`, `when b` and `when c`")
        );
    }
}
