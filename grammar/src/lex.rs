//! A lexical pre-pass over the raw text, run before pest.
//!
//! It finds the comments (which the grammar skips) so the formatter can keep
//! them and doc comments can attach to declarations, and it rejects inputs the
//! recursive parser should never see: unterminated strings and block comments
//! (with a span at the opening quote), nesting deeper than [`MAX_DEPTH`], and
//! files larger than [`MAX_FILE_BYTES`]. It never panics on any input.

use crate::ast::Comment;
use crate::parser::{SyntaxError, SyntaxErrorKind};
use crate::span::{FileId, Span};

/// Deepest nesting of `(`, `[` and `{` accepted.
pub const MAX_DEPTH: usize = 128;
/// Largest source file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Comments of a file, in order; or the first lexical error.
pub fn scan(file: FileId, text: &str) -> Result<Vec<Comment>, SyntaxError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(SyntaxError {
            kind: SyntaxErrorKind::FileTooLarge,
            span: Span::new(file, 0, 0),
            message: format!(
                "file is too large ({:.1} MB; the limit is {} MB)",
                text.len() as f64 / 1_000_000.0,
                MAX_FILE_BYTES / (1024 * 1024)
            ),
            label: "this file".into(),
            help: Some("split the project into several `.nudge` files".into()),
        });
    }
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut depth_stack: Vec<usize> = Vec::new();
    let mut i = 0;
    let mut line_start_blank = true;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                let end_trim = i + text[i..end].trim_end().len();
                comments.push(Comment {
                    text: text[i..end_trim].to_string(),
                    span: Span::new(file, i, end_trim),
                    own_line: line_start_blank,
                });
                i = end;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let Some(rel) = text[i + 2..].find("*/") else {
                    return Err(SyntaxError {
                        kind: SyntaxErrorKind::UnterminatedComment,
                        span: Span::new(file, i, i + 2),
                        message: "this block comment is never closed".into(),
                        label: "comment starts here".into(),
                        help: Some("end the comment with `*/`".into()),
                    });
                };
                let end = i + 2 + rel + 2;
                comments.push(Comment {
                    text: text[i..end].to_string(),
                    span: Span::new(file, i, end),
                    own_line: line_start_blank,
                });
                line_start_blank = false;
                i = end;
                continue;
            }
            b'"' => {
                i = skip_string(file, text, i)?;
                line_start_blank = false;
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth_stack.push(i);
                if depth_stack.len() > MAX_DEPTH {
                    return Err(SyntaxError {
                        kind: SyntaxErrorKind::TooDeep,
                        span: Span::new(file, i, i + 1),
                        message: format!("nesting is deeper than {MAX_DEPTH} levels"),
                        label: "too deep here".into(),
                        help: Some("split the expression or block into smaller parts".into()),
                    });
                }
            }
            b')' | b']' | b'}' => {
                depth_stack.pop();
            }
            _ => {}
        }
        if b == b'\n' {
            line_start_blank = true;
        } else if !b.is_ascii_whitespace() {
            line_start_blank = false;
        }
        i += 1;
    }
    Ok(comments)
}

/// Skip a string starting at `start` (a `"`), returning the offset after it.
fn skip_string(file: FileId, text: &str, start: usize) -> Result<usize, SyntaxError> {
    let bytes = text.as_bytes();
    let unterminated = |end: usize, triple: bool| SyntaxError {
        kind: SyntaxErrorKind::UnterminatedString,
        span: Span::new(file, start, end),
        message: "this string is never closed".into(),
        label: "string starts here".into(),
        help: Some(if triple {
            "end the multi-line string with `\"\"\"`".into()
        } else {
            "end the string with `\"` on the same line, or use `\"\"\"` for text over several lines"
                .into()
        }),
    };
    if text[start..].starts_with("\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i] == b'\\' {
                i += 1 + text[i + 1..].chars().next().map_or(0, char::len_utf8);
                continue;
            }
            if text[i..].starts_with("\"\"\"") {
                return Ok(i + 3);
            }
            i += 1;
        }
        return Err(unterminated(start + 3, true));
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1 + text[i + 1..].chars().next().map_or(0, char::len_utf8),
            b'"' => return Ok(i + 1),
            b'\n' => return Err(unterminated(start + 1, false)),
            _ => i += 1,
        }
    }
    Err(unterminated(start + 1, false))
}

/// The doc comment (`///` lines) directly above `offset`, if any.
pub fn doc_before(text: &str, comments: &[Comment], offset: usize) -> Option<String> {
    let mut lines = Vec::new();
    let mut cursor = offset;
    let idx = comments.partition_point(|c| (c.span.end as usize) <= offset);
    for c in comments[..idx].iter().rev() {
        let between = text.get(c.span.end as usize..cursor)?;
        if !between.trim().is_empty() || between.matches('\n').count() > 1 {
            break;
        }
        if !c.text.starts_with("///") || c.text.starts_with("////") {
            break;
        }
        lines.push(
            c.text[3..]
                .strip_prefix(' ')
                .unwrap_or(&c.text[3..])
                .to_string(),
        );
        cursor = c.span.start as usize;
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_outside_strings() {
        let text = "// a\nflow x { log \"// not\" } /* b */\n";
        let c = scan(FileId(0), text).expect("scans");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "// a");
        assert!(c[0].own_line);
        assert_eq!(c[1].text, "/* b */");
        assert!(!c[1].own_line);
    }

    #[test]
    fn unterminated_string_points_at_quote() {
        let err = scan(FileId(0), "log \"abc").expect_err("unterminated");
        assert_eq!(err.kind, SyntaxErrorKind::UnterminatedString);
        assert_eq!(err.span.start, 4);
    }

    #[test]
    fn escapes_before_multibyte_characters() {
        assert!(scan(FileId(0), "define x = \"\"\"\\é\"\"\"").is_ok());
        assert!(scan(FileId(0), "define x = \"\\é\"").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "(".repeat(10_000);
        let err = scan(FileId(0), &text).expect_err("too deep");
        assert_eq!(err.kind, SyntaxErrorKind::TooDeep);
    }

    #[test]
    fn doc_comments_attach() {
        let text = "/// one\n/// two\nflow a {}";
        let c = scan(FileId(0), text).expect("scans");
        assert_eq!(doc_before(text, &c, 16).as_deref(), Some("one\ntwo"));
    }
}
