//! What declarations read: every expression nested in an expression, the
//! expressions and strings of a statement, the names a template text reads,
//! and what a channel's request is built from (`message`, `data.F`).
//!
//! Template texts are scanned, not parsed: inside `{{ … }}` and `{% … %}`,
//! outside quoted strings, each identifier that does not follow a `.` is a
//! name read, with the member after it if one follows (`data.interest`).
//! This is enough for "which names does it read"; the type checker does the
//! real template checks.

use nudge_grammar::ast::{
    ChannelDecl, Content, Expr, ExprKind, Stmt, StmtKind, StrLit, WaitBranchKind, WaitKind,
};
use std::collections::BTreeSet;

/// Call `f` on `e` and on every expression nested in it, parents first.
pub fn each_expr<'a>(e: &'a Expr, f: &mut impl FnMut(&'a Expr)) {
    f(e);
    match &e.kind {
        ExprKind::List(items) => items.iter().for_each(|x| each_expr(x, f)),
        ExprKind::Map(entries) => entries.iter().for_each(|m| each_expr(&m.value, f)),
        ExprKind::Json(x) | ExprKind::Field(x, _) | ExprKind::Unary(_, x) | ExprKind::Paren(x) => {
            each_expr(x, f)
        }
        ExprKind::IsSet { value, .. } => each_expr(value, f),
        ExprKind::Rate { count, .. } => each_expr(count, f),
        ExprKind::Call { args, .. } => args.iter().for_each(|x| each_expr(x, f)),
        ExprKind::Binary(_, a, b) => {
            each_expr(a, f);
            each_expr(b, f);
        }
        ExprKind::Str(_)
        | ExprKind::Int(_)
        | ExprKind::Decimal(_)
        | ExprKind::Bool(_)
        | ExprKind::Percent(_)
        | ExprKind::Duration(_)
        | ExprKind::Date(_)
        | ExprKind::Time(_)
        | ExprKind::TimeOfDay(_)
        | ExprKind::Name(_) => {}
    }
}

/// The expressions and string literals written directly in `s` (not in the
/// statements nested in it).
pub fn stmt_parts(s: &Stmt) -> (Vec<&Expr>, Vec<&StrLit>) {
    let mut exprs: Vec<&Expr> = Vec::new();
    let mut strs: Vec<&StrLit> = Vec::new();
    match &s.kind {
        StmtKind::Send { content, to, .. } => {
            match content {
                Content::Template(_) => {}
                Content::Inline(lit) => strs.push(lit),
                Content::Fields(settings, _) => exprs.extend(settings.iter().map(|s| &s.value)),
            }
            exprs.extend(to);
        }
        StmtKind::Call { target, with, .. } => {
            if let nudge_grammar::ast::CallTarget::Url(lit) = target {
                strs.push(lit);
            }
            exprs.extend(with.iter().flatten().map(|s| &s.value));
        }
        StmtKind::Set { target, value }
        | StmtKind::Add { value, target }
        | StmtKind::Remove { value, target } => exprs.extend([target, value]),
        StmtKind::Unset { target } => exprs.push(target),
        StmtKind::Tag { value } | StmtKind::Untag { value } => exprs.push(value),
        StmtKind::If { branches, .. } => exprs.extend(branches.iter().map(|(c, _)| c)),
        StmtKind::Wait(w) => {
            match &w.kind {
                WaitKind::Duration(e) | WaitKind::Until(e) => exprs.push(e),
                WaitKind::Clock { .. } => {}
                WaitKind::For { cond, .. } => exprs.extend(cond),
                WaitKind::Block(branches) => {
                    for b in branches {
                        match &b.kind {
                            WaitBranchKind::On { cond, .. } => exprs.extend(cond),
                            WaitBranchKind::Until(e) | WaitBranchKind::After(e) => exprs.push(e),
                        }
                    }
                }
            }
            exprs.extend(w.within.as_ref().map(|w| &w.duration));
        }
        StmtKind::Emit { fields, .. } => exprs.extend(fields.iter().flatten().map(|s| &s.value)),
        StmtKind::Log { text } => strs.push(text),
        StmtKind::Split { .. }
        | StmtKind::Goto { .. }
        | StmtKind::Start { .. }
        | StmtKind::Stop { .. }
        | StmtKind::Exit
        | StmtKind::Block(_) => {}
    }
    (exprs, strs)
}

/// A name read by a template: `contact` and `first_name` in
/// `{{ contact.first_name }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateName {
    pub root: String,
    pub member: Option<String>,
}

/// The names a template text reads (see the module docs).
pub fn template_names(text: &str) -> Vec<TemplateName> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        let inner = &rest[open + 2..];
        let close = [inner.find("}}"), inner.find("%}")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(inner.len());
        scan_code(&inner[..close], &mut out);
        rest = &inner[close..];
    }
    out
}

/// Tokens of template code that matter here.
#[derive(PartialEq)]
enum Tok<'t> {
    Ident(&'t str),
    Dot,
    Other,
}

fn scan_code(code: &str, out: &mut Vec<TemplateName>) {
    let mut toks: Vec<Tok<'_>> = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' || c == '\'' {
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            toks.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push(Tok::Ident(&code[i..end]));
        } else if c == '.' {
            toks.push(Tok::Dot);
        } else if !c.is_whitespace() {
            toks.push(Tok::Other);
        }
    }
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(root) = t else {
            continue;
        };
        if i > 0 && toks[i - 1] == Tok::Dot {
            continue;
        }
        let member = match (toks.get(i + 1), toks.get(i + 2)) {
            (Some(Tok::Dot), Some(Tok::Ident(m))) => Some(m.to_string()),
            _ => None,
        };
        out.push(TemplateName {
            root: root.to_string(),
            member,
        });
    }
}

/// Call `f` on each name `e` reads: bare names in the expression tree
/// (`paying`, the `contact` of `contact.email`) and the names its string
/// literals read as templates.
pub fn each_name(e: &Expr, f: &mut impl FnMut(&str)) {
    each_expr(e, &mut |x| match &x.kind {
        ExprKind::Name(id) => f(&id.name),
        ExprKind::Str(lit) => template_names(&lit.value).iter().for_each(|n| f(&n.root)),
        _ => {}
    });
}

/// What a channel's request is built from.
#[derive(Debug, Default)]
pub struct ChannelReads {
    /// Reads `message` (the rendered text of a `send`).
    pub message: bool,
    /// Reads `data` (the object of `call … with`), as a whole or a member.
    pub data: bool,
    /// The members `data.F` it reads.
    pub data_fields: BTreeSet<String>,
}

/// Scan every setting of a channel: expressions, and template strings in them.
pub fn channel_reads(decl: &ChannelDecl) -> ChannelReads {
    let mut reads = ChannelReads::default();
    for s in &decl.settings {
        each_expr(&s.value, &mut |e| match &e.kind {
            ExprKind::Name(id) if id.name == "message" => reads.message = true,
            ExprKind::Name(id) if id.name == "data" => reads.data = true,
            ExprKind::Field(base, member) => {
                if matches!(&base.kind, ExprKind::Name(id) if id.name == "data") {
                    reads.data_fields.insert(member.name.clone());
                }
            }
            ExprKind::Str(lit) => {
                for n in template_names(&lit.value) {
                    match n.root.as_str() {
                        "message" => reads.message = true,
                        "data" => {
                            reads.data = true;
                            reads.data_fields.extend(n.member);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        });
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, Option<String>)> {
        template_names(text)
            .into_iter()
            .map(|n| (n.root, n.member))
            .collect()
    }

    #[test]
    fn template_scan_finds_roots_and_members() {
        assert_eq!(
            names("Hi {{ contact.first_name | default('data.x') }}, {{message}}"),
            vec![
                ("contact".into(), Some("first_name".into())),
                ("default".into(), None),
                ("message".into(), None),
            ]
        );
        assert_eq!(
            names("{% if data.ok %}yes{% endif %} data.no"),
            vec![
                ("if".into(), None),
                ("data".into(), Some("ok".into())),
                ("endif".into(), None),
            ]
        );
        assert_eq!(
            names("no code {{ unclosed data.y"),
            vec![("unclosed".into(), None), ("data".into(), Some("y".into()))]
        );
    }
}
