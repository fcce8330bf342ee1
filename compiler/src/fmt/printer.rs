//! The formatter's output buffer and its comment bookkeeping.
//!
//! Takes the source text and its comments (in source order); gives the
//! formatted text, built line by line with two-space indentation.
//!
//! Guarantees, as long as callers print nodes in source order through
//! [`Printer::block`] / [`Printer::module`]:
//! * every comment is written exactly once, in source order: before the node
//!   that follows it (own-line comments on their own line, at that node's
//!   indentation), at the end of the line of the node it trails, or at the end
//!   of its block or file;
//! * no line ends in whitespace the printer added;
//! * blank lines between nodes and comments are kept (at most one), never at the
//!   start or end of a block; top-level declarations are separated by one;
//! * `///` lines stay directly above exactly the declarations and steps whose
//!   `doc` they are (a blank line is added where another `///` comment would
//!   otherwise join a doc).

use nudge_grammar::ast::Comment;
use nudge_grammar::span::Span;

/// Lines longer than this break their `{ … }` entries one per line.
pub(super) const WIDTH: usize = 100;

/// Where a node of a block sits, for comments and blank lines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub span: Span,
    /// `Some(n)` for a node that takes a doc comment (declarations, steps),
    /// `n` being the number of `///` lines of its doc (0 without one).
    pub doc: Option<usize>,
}

impl Slot {
    pub fn plain(span: Span) -> Slot {
        Slot { span, doc: None }
    }

    pub fn with_doc(span: Span, doc: Option<&str>) -> Slot {
        Slot {
            span,
            doc: Some(doc.map_or(0, |d| d.split('\n').count())),
        }
    }
}

/// Blank-line state of the block being printed.
struct Run {
    /// Nothing has started a line in this block yet.
    first: bool,
    /// The next line must be preceded by a blank line (between declarations).
    sep: bool,
}

pub(super) struct Printer<'a> {
    text: &'a str,
    comments: &'a [Comment],
    /// Index of the first comment not yet written.
    next: usize,
    out: String,
    indent: usize,
    /// Source offset just after the last node or comment written.
    last_pos: usize,
    /// The current line ends with a `//` comment: nothing may follow on it.
    line_comment: bool,
    /// The current line ends with a `///` doc comment.
    doc_line: bool,
}

fn is_doc(c: &Comment) -> bool {
    c.text.starts_with("///") && !c.text.starts_with("////")
}

/// A line holding only whitespace lies between `from` and `to`.
fn has_blank_line(text: &str, from: usize, to: usize) -> bool {
    let Some(gap) = text.get(from..to) else {
        return false;
    };
    let mut after_newline = false;
    for ch in gap.chars() {
        match ch {
            '\n' if after_newline => return true,
            '\n' => after_newline = true,
            ' ' | '\t' | '\r' | '\u{FEFF}' => {}
            _ => after_newline = false,
        }
    }
    false
}

impl<'a> Printer<'a> {
    pub fn new(text: &'a str, comments: &'a [Comment]) -> Printer<'a> {
        Printer {
            text,
            comments,
            next: 0,
            out: String::with_capacity(text.len() + text.len() / 8),
            indent: 0,
            last_pos: 0,
            line_comment: false,
            doc_line: false,
        }
    }

    /// Spaces of indentation of the current line.
    pub fn width(&self) -> usize {
        self.indent * 2
    }

    /// Append text to the current line.
    pub fn write(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// `s` fits on the current line and is one line.
    pub fn fits(&self, s: &str) -> bool {
        let line = self.out.rsplit('\n').next().unwrap_or("");
        !s.contains('\n') && line.chars().count() + s.chars().count() <= WIDTH
    }

    /// A comment not yet written starts in `start..end`.
    pub fn has_comment_in(&self, start: usize, end: usize) -> bool {
        self.comments[self.next..]
            .iter()
            .map(|c| c.span.start as usize)
            .find(|s| *s >= start)
            .is_some_and(|s| s < end)
    }

    /// `span` without the whitespace and comments the parser lets a node's
    /// span end with (a rule ending in an optional or repeated part keeps the
    /// trivia it skipped looking for one).
    pub fn tight(&self, span: Span) -> Span {
        let start = span.start as usize;
        let mut end = (span.end as usize).min(self.text.len());
        loop {
            let before = self.text.get(start..end).unwrap_or("");
            let trimmed = before.trim_end_matches([' ', '\t', '\r', '\n', ';', '\u{FEFF}']);
            end = start + trimmed.len();
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
        Span {
            end: end as u32,
            ..span
        }
    }

    /// The offset of the closing `}` of a node whose span ends with it (or
    /// the span's end for a node without braces).
    pub fn close_of(&self, span: Span) -> usize {
        let end = self.tight(span).end as usize;
        if end > 0 && self.text.as_bytes().get(end - 1) == Some(&b'}') {
            end - 1
        } else {
            end
        }
    }

    /// The offset of the `}` closing a block whose content ends at `pos`; for
    /// an empty block, `pos` may lie before its `{`.
    pub fn close_after(&self, pos: usize) -> usize {
        let p = self.skip_trivia(pos);
        if self.text.as_bytes().get(p) == Some(&b'{') {
            self.skip_trivia(p + 1)
        } else {
            p
        }
    }

    /// The first offset at or after `pos` that is not whitespace, a separator
    /// (`;`, `,`) or a comment.
    fn skip_trivia(&self, mut pos: usize) -> usize {
        let bytes = self.text.as_bytes();
        loop {
            let rest = self.text.get(pos..).unwrap_or("");
            match bytes.get(pos) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b',') => pos += 1,
                Some(b'/') if rest.starts_with("//") => {
                    pos += rest.find('\n').unwrap_or(rest.len());
                }
                Some(b'/') if rest.starts_with("/*") => {
                    pos += rest.find("*/").map_or(rest.len(), |i| i + 2);
                }
                _ if rest.starts_with('\u{FEFF}') => pos += '\u{FEFF}'.len_utf8(),
                _ => return pos,
            }
        }
    }

    /// Start a new line at the current indentation.
    fn line(&mut self, blank: bool) {
        if !self.out.is_empty() {
            self.out.push('\n');
            if blank {
                self.out.push('\n');
            }
        }
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.line_comment = false;
        self.doc_line = false;
    }

    fn can_append(&self) -> bool {
        !self.out.is_empty() && !self.line_comment
    }

    fn put_comment(&mut self, c: &Comment) {
        self.out.push_str(&c.text);
        self.line_comment = c.text.starts_with("//");
        self.doc_line = is_doc(c);
        self.last_pos = self.last_pos.max(c.span.end as usize);
    }

    /// Comments not yet written that start before `pos`.
    fn count_before(&self, pos: usize) -> usize {
        self.comments[self.next..]
            .iter()
            .take_while(|c| (c.span.start as usize) < pos)
            .count()
    }

    fn blank_before(&self, run: &Run, start: usize) -> bool {
        run.sep || (!run.first && has_blank_line(self.text, self.last_pos, start))
    }

    /// Write the comments before `pos` (the start of the next node, or the
    /// end of a block). `doc` is the next node's doc line count, if it takes
    /// one. Returns whether the node itself needs a blank line to keep a doc
    /// comment above from becoming its doc.
    fn leading(&mut self, pos: usize, run: &mut Run, doc: Option<usize>) -> bool {
        let n = self.count_before(pos);
        // INVARIANT: a node's doc is the run of `///` comments directly above
        // it, so they are the last `k` comments before it.
        let chain = doc.and_then(|k| n.checked_sub(k));
        for i in 0..n {
            let c = &self.comments[self.next];
            self.next += 1;
            let in_chain = chain.is_some_and(|s| i >= s);
            if c.own_line || in_chain || !self.can_append() {
                let start = c.span.start as usize;
                let blank = self.blank_before(run, start) || (chain == Some(i) && self.doc_line);
                self.line(blank);
                run.first = false;
                run.sep = false;
            } else {
                self.out.push(' ');
            }
            self.put_comment(c);
        }
        chain == Some(n) && self.doc_line
    }

    /// Write the comments inside a node just printed (those not written by
    /// a block inside it) at the end of its last line. Once the line ends
    /// with a `//` comment, the rest are left to [`Printer::leading`], so
    /// they are written as the next pass will see them: own-line comments
    /// before the next node.
    fn trailing(&mut self, end: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start as usize >= end || !self.can_append() {
                break;
            }
            self.next += 1;
            self.out.push(' ');
            self.put_comment(c);
        }
        self.last_pos = self.last_pos.max(end);
    }

    fn children<T>(
        &mut self,
        items: &[T],
        separate: bool,
        slot: impl Fn(&T) -> Slot,
        mut each: impl FnMut(&mut Self, &T),
    ) -> Run {
        let mut run = Run {
            first: true,
            sep: false,
        };
        for item in items {
            let mut s = slot(item);
            s.span = self.tight(s.span);
            let start = s.span.start as usize;
            let doc_gap = self.leading(start, &mut run, s.doc);
            let blank = self.blank_before(&run, start) || doc_gap;
            self.line(blank);
            run.first = false;
            run.sep = separate;
            each(self, item);
            self.trailing(s.span.end as usize);
        }
        run
    }

    /// The rest of a block whose `{` was just written: its children, one per
    /// line, one level deeper, then `}` (or `}` at once for an empty block
    /// with no comment, giving `{}`). `close` is the offset of its `}`.
    pub fn block<T>(
        &mut self,
        items: &[T],
        close: usize,
        slot: impl Fn(&T) -> Slot,
        each: impl FnMut(&mut Self, &T),
    ) {
        if items.is_empty() && self.count_before(close) == 0 {
            self.write("}");
            return;
        }
        self.indent += 1;
        let mut run = self.children(items, false, slot, each);
        self.leading(close, &mut run, None);
        self.indent -= 1;
        self.line(false);
        self.write("}");
        self.last_pos = self.last_pos.max(close + 1);
    }

    /// A whole file: declarations separated by a blank line, comments after
    /// the last one kept; the text ends with one newline (empty if nothing).
    pub fn module<T>(
        mut self,
        items: &[T],
        slot: impl Fn(&T) -> Slot,
        each: impl FnMut(&mut Self, &T),
    ) -> String {
        let mut run = self.children(items, true, slot, each);
        run.sep = false;
        self.leading(usize::MAX, &mut run, None);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_found_between_offsets() {
        let text = "a\n\n  b\n c";
        assert!(has_blank_line(text, 1, 5));
        assert!(!has_blank_line(text, 5, text.len()));
        assert!(!has_blank_line("a,\n}\nb", 1, 6));
    }
}
