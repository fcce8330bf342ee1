//! Shared by the formatter tests: comparing syntax trees without positions,
//! the full round-trip check, and a generator of random valid programs
//! ([`programs`]).

pub mod programs;

use nudge_compiler::fmt::format_source;
use nudge_grammar::ast::Module;
use nudge_grammar::parse;
use nudge_grammar::span::FileId;
use serde_json::Value;

/// The tree as JSON without positions: every `span`, `with_span`,
/// `segments` and `multiline` key removed, and spans inside tuples
/// (`#N`, `send … { … }`) replaced by `null`. Comments are left out (compare
/// them with [`comment_texts`]).
pub fn normalized(module: &Module) -> Value {
    let mut v = serde_json::to_value(&module.items).expect("the AST serialises");
    strip(&mut v);
    v
}

fn is_span(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 3
        && ["file", "start", "end"]
            .iter()
            .all(|k| map.contains_key(*k))
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in ["span", "with_span", "segments", "multiline"] {
                map.remove(key);
            }
            for child in map.values_mut() {
                if matches!(child, Value::Object(m) if is_span(m)) {
                    *child = Value::Null;
                } else {
                    strip(child);
                }
            }
        }
        Value::Array(items) => {
            for child in items {
                if matches!(child, Value::Object(m) if is_span(m)) {
                    *child = Value::Null;
                } else {
                    strip(child);
                }
            }
        }
        _ => {}
    }
}

pub fn comment_texts(module: &Module) -> Vec<String> {
    module.comments.iter().map(|c| c.text.clone()).collect()
}

/// Format `source` and check every guarantee of the formatter; returns the
/// formatted text, or what went wrong (with both texts).
pub fn check(source: &str) -> Result<String, String> {
    let show = |what: &str, out: &str| {
        format!("{what}\n--- source ---\n{source}\n--- formatted ---\n{out}")
    };
    let before = parse(FileId(0), source)
        .map_err(|e| format!("source does not parse: {}\n{source}", e.message))?;
    let once = format_source(FileId(0), source).map_err(|e| e.message)?;
    let after = parse(FileId(0), &once).map_err(|e| {
        show(
            &format!(
                "formatted text does not parse: {} at {:?}",
                e.message, e.span
            ),
            &once,
        )
    })?;
    if normalized(&before) != normalized(&after) {
        let a = serde_json::to_string_pretty(&normalized(&before)).unwrap_or_default();
        let b = serde_json::to_string_pretty(&normalized(&after)).unwrap_or_default();
        let at = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        let context = |s: &str| {
            s.lines()
                .skip(at.saturating_sub(8))
                .take(16)
                .collect::<Vec<_>>()
                .join("\n")
        };
        return Err(show(
            &format!(
                "the tree changed\n--- before ---\n{}\n--- after ---\n{}",
                context(&a),
                context(&b)
            ),
            &once,
        ));
    }
    if comment_texts(&before) != comment_texts(&after) {
        return Err(show(
            &format!(
                "comments changed\nbefore: {:?}\nafter:  {:?}",
                comment_texts(&before),
                comment_texts(&after)
            ),
            &once,
        ));
    }
    let twice = format_source(FileId(0), &once).map_err(|e| e.message)?;
    if twice != once {
        return Err(show(
            &format!("not idempotent; second pass:\n{twice}"),
            &once,
        ));
    }
    if let Some((n, line)) = once
        .lines()
        .enumerate()
        .find(|(_, l)| l.ends_with([' ', '\t']))
    {
        // Only a block comment's own text may keep trailing spaces.
        if !after.comments.iter().any(|c| c.text.contains(line.trim())) {
            return Err(show(
                &format!("trailing whitespace on line {}", n + 1),
                &once,
            ));
        }
    }
    if !once.is_empty() && (!once.ends_with('\n') || once.ends_with("\n\n")) {
        return Err(show("the text must end with exactly one newline", &once));
    }
    Ok(once)
}
