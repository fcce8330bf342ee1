//! Literals in their canonical spelling: strings, durations, times of day,
//! percentages.
//!
//! Takes literal nodes; gives text that the grammar reads back as the same
//! value. Strings are re-escaped (`\"`, `\\`, `\n`, `\t`, `\r`, `\u{…}` for
//! other control characters). A `"""` string is written as `"""`, its lines
//! one level deeper than the line it starts on, then `"""` at that line's
//! indentation; whitespace the indentation removal or the "no trailing
//! whitespace" rule would lose is escaped. Durations use the long units
//! (`3d` → `3 days`, `1h30m` → `1 hour 30 minutes`).

use nudge_grammar::ast::{DurationLit, Percent, StrLit, TimeOfDay};
use std::fmt::Write as _;

/// A string literal; `indent` is the indentation (in spaces) of the line it
/// starts on.
pub(super) fn string(s: &StrLit, indent: usize) -> String {
    if s.multiline {
        block_string(&s.value, indent)
    } else {
        quoted(&s.value)
    }
}

/// `"…"` with every character the grammar would read differently escaped.
pub(super) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            c => escape_common(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// Escapes shared by both string forms (everything but `"`).
fn escape_common(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() => unicode_escape(out, c),
        c => out.push(c),
    }
}

fn unicode_escape(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
}

/// An escape for a whitespace character that must survive as written.
fn escape_space(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c => unicode_escape(out, c),
    }
}

/// One line of a `"""` string's value, escaped; `escape_first` escapes its
/// first character (a space or tab), so the line sets the common indentation.
fn block_line(line: &str, quotes: bool, escape_first: bool) -> String {
    let body_len = line.trim_end_matches(char::is_whitespace).len();
    let mut out = String::with_capacity(line.len() + 4);
    for (i, c) in line.char_indices() {
        if i >= body_len || (i == 0 && escape_first) {
            escape_space(&mut out, c);
        } else if c == '"' && quotes {
            out.push_str("\\\"");
        } else if c == '\t' {
            out.push('\t');
        } else {
            escape_common(&mut out, c);
        }
    }
    out
}

fn leading_ws(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// `"""`, the value's lines at `indent + 2` spaces, `"""` at `indent`.
fn block_string(value: &str, indent: usize) -> String {
    // Quotes need escaping only where three in a row would end the string.
    let quotes = value.contains("\"\"\"");
    let mut lines: Vec<String> = value
        .split('\n')
        .map(|l| block_line(l, quotes, false))
        .collect();
    // The parser removes the common indentation of the non-blank lines: if
    // every line is indented, escape one line's first space so the written
    // indentation is the common one.
    let min = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| leading_ws(l))
        .min();
    if min.is_some_and(|m| m > 0) {
        let raw: Vec<&str> = value.split('\n').collect();
        if let Some(i) = lines.iter().position(|l| !l.trim().is_empty()) {
            lines[i] = block_line(raw[i], quotes, true);
        }
    }
    let mut out = String::from("\"\"\"");
    let pad = " ".repeat(indent + 2);
    for l in &lines {
        out.push('\n');
        if !l.is_empty() {
            out.push_str(&pad);
            out.push_str(l);
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push_str("\"\"\"");
    out
}

/// `1 hour 30 minutes`; a bare rate unit (`per second`) stays bare.
pub(super) fn duration(d: &DurationLit) -> String {
    if d.bare
        && let [(_, unit)] = d.parts.as_slice()
    {
        return unit.long_name(1).to_string();
    }
    let parts: Vec<String> = d
        .parts
        .iter()
        .map(|(n, u)| format!("{n} {}", u.long_name(*n)))
        .collect();
    parts.join(" ")
}

/// `09:00`, or `09:00:30` when it has seconds.
pub(super) fn time_of_day(t: &TimeOfDay) -> String {
    if t.second == 0 {
        format!("{:02}:{:02}", t.hour, t.minute)
    } else {
        format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second)
    }
}

pub(super) fn percent(p: &Percent) -> String {
    format!("{}%", p.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes() {
        assert_eq!(quoted("a\"b\\c\nd\te\u{1}"), r#""a\"b\\c\nd\te\u{1}""#);
    }

    #[test]
    fn block_string_keeps_leading_and_trailing_spaces() {
        let s = block_string("  a\n  b ", 2);
        assert_eq!(s, "\"\"\"\n    \\u{20} a\n      b\\u{20}\n  \"\"\"");
    }

    #[test]
    fn block_string_empty_lines_have_no_indentation() {
        assert_eq!(block_string("a\n\nb", 0), "\"\"\"\n  a\n\n  b\n\"\"\"");
    }
}
