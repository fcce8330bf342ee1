//! Expressions, with as few parentheses as the parser needs.
//!
//! Takes an [`Expr`]; gives one line of text (more only inside `"""`
//! strings). Explicit [`ExprKind::Paren`] nodes are always written; other
//! parentheses are added only where the grammar would otherwise read a
//! different tree, so for any tree the parser built, the text reads back as
//! the same tree.
//!
//! The parser is a Pratt parser (`grammar/src/parser.rs`), loosest first:
//! `or`, `and`, prefix `not`, comparisons and postfix `is [not] set`, `??`,
//! `+ -`, `* / %`, prefix `-`; all infix operators are left-associative.
//! Binding powers here are twice [`BinaryOp::precedence`], so that "the
//! operand of a prefix operator of level P" is the odd power `2P - 1`.

use super::lit;
use nudge_grammar::ast::{BinaryOp, Expr, ExprKind, MapKey, UnaryOp};

/// Binding power of postfix `is set` (the comparison level).
const IS_SET: u8 = 8;

fn infix(op: BinaryOp) -> u8 {
    op.precedence() * 2
}

fn prefix(op: UnaryOp) -> u8 {
    match op {
        UnaryOp::Not => 6,
        UnaryOp::Neg => 16,
    }
}

/// An expression on its own (not followed by an operator).
pub(super) fn expr(e: &Expr, indent: usize) -> String {
    let mut out = String::new();
    write(&mut out, e, 0, 0, indent);
    out
}

/// Would `e`, written without parentheses where the parser runs
/// `expr(rbp)` and the next token binds with `next`, read back differently?
fn needs_parens(e: &Expr, rbp: u8, next: u8) -> bool {
    match &e.kind {
        // Taken by the loop at `rbp`, and its right operand must stop at `next`.
        ExprKind::Binary(op, ..) => infix(*op) <= rbp || next > infix(*op),
        // The operand of a prefix operator takes every operator at its level
        // and above.
        ExprKind::Unary(op, _) => next >= prefix(*op),
        ExprKind::IsSet { .. } => IS_SET <= rbp,
        // `json EXPR` and `N per D` take everything that follows.
        ExprKind::Json(_) | ExprKind::Rate { .. } => next > 0,
        _ => false,
    }
}

/// Can be written before `.field` without parentheses.
fn is_primary(e: &Expr) -> bool {
    !matches!(
        e.kind,
        ExprKind::Binary(..)
            | ExprKind::Unary(..)
            | ExprKind::IsSet { .. }
            | ExprKind::Json(_)
            | ExprKind::Rate { .. }
    )
}

fn write(out: &mut String, e: &Expr, rbp: u8, next: u8, indent: usize) {
    if needs_parens(e, rbp, next) {
        out.push('(');
        write(out, e, 0, 0, indent);
        out.push(')');
        return;
    }
    match &e.kind {
        ExprKind::Str(s) => out.push_str(&lit::string(s, indent)),
        ExprKind::Int(n) => out.push_str(&n.to_string()),
        ExprKind::Decimal(d) => out.push_str(d),
        ExprKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ExprKind::Percent(p) => out.push_str(&lit::percent(p)),
        ExprKind::Duration(d) => out.push_str(&lit::duration(d)),
        ExprKind::Date(d) | ExprKind::Time(d) => out.push_str(d),
        ExprKind::TimeOfDay(t) => out.push_str(&lit::time_of_day(t)),
        ExprKind::List(items) => {
            out.push('[');
            list(out, items, indent);
            out.push(']');
        }
        ExprKind::Map(entries) if entries.is_empty() => out.push_str("{}"),
        ExprKind::Map(entries) => {
            out.push_str("{ ");
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match &entry.key {
                    MapKey::Name(n) => out.push_str(&n.name),
                    MapKey::Str(s) => out.push_str(&lit::string(s, indent)),
                }
                out.push_str(": ");
                write(out, &entry.value, 0, 0, indent);
            }
            out.push_str(" }");
        }
        ExprKind::Json(v) => {
            out.push_str("json ");
            write(out, v, 0, 0, indent);
        }
        ExprKind::Rate { count, per } => {
            write(out, count, 0, 0, indent);
            out.push_str(" per ");
            out.push_str(&lit::duration(per));
        }
        ExprKind::Name(n) => out.push_str(&n.name),
        ExprKind::Field(base, name) => {
            if is_primary(base) {
                write(out, base, 0, 0, indent);
            } else {
                out.push('(');
                write(out, base, 0, 0, indent);
                out.push(')');
            }
            out.push('.');
            out.push_str(&name.name);
        }
        ExprKind::Call { func, args } => {
            out.push_str(&func.name);
            out.push('(');
            list(out, args, indent);
            out.push(')');
        }
        ExprKind::Unary(op, operand) => {
            out.push_str(match op {
                UnaryOp::Not => "not ",
                UnaryOp::Neg => "-",
            });
            write(out, operand, prefix(*op) - 1, next, indent);
        }
        ExprKind::Binary(op, lhs, rhs) => {
            let p = infix(*op);
            write(out, lhs, rbp, p, indent);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write(out, rhs, p, next, indent);
        }
        ExprKind::IsSet { value, negated } => {
            write(out, value, rbp, IS_SET, indent);
            out.push_str(if *negated { " is not set" } else { " is set" });
        }
        ExprKind::Paren(inner) => {
            out.push('(');
            write(out, inner, 0, 0, indent);
            out.push(')');
        }
    }
}

fn list(out: &mut String, items: &[Expr], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(out, item, 0, 0, indent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_grammar::parse_expr;
    use nudge_grammar::span::{FileId, Span};

    fn round(text: &str) -> String {
        expr(&parse_expr(FileId(0), text).expect("parses"), 0)
    }

    fn e(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: Span::default(),
        }
    }

    fn name(n: &str) -> Expr {
        e(ExprKind::Name(nudge_grammar::ast::Ident {
            name: n.into(),
            span: Span::default(),
        }))
    }

    fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        e(ExprKind::Binary(op, Box::new(l), Box::new(r)))
    }

    #[test]
    fn parser_trees_get_no_extra_parentheses() {
        for text in [
            "a == not b",
            "not a == b and c",
            "x is set ?? y",
            "a ?? x is set",
            "-a * b",
            "a - -b",
            "-not a",
            "a + json b",
            "(a + b) * c",
            "not (a and b) or c is not set",
        ] {
            assert_eq!(round(text), text);
        }
    }

    #[test]
    fn built_trees_get_the_parentheses_they_need() {
        use BinaryOp::*;
        let t = bin(Mul, bin(Add, name("a"), name("b")), name("c"));
        assert_eq!(expr(&t, 0), "(a + b) * c");
        let t = bin(Sub, name("a"), bin(Sub, name("b"), name("c")));
        assert_eq!(expr(&t, 0), "a - (b - c)");
        let not_a = e(ExprKind::Unary(UnaryOp::Not, Box::new(name("a"))));
        assert_eq!(expr(&bin(Eq, not_a, name("b")), 0), "(not a) == b");
        let is_set = e(ExprKind::IsSet {
            value: Box::new(name("b")),
            negated: false,
        });
        assert_eq!(
            expr(&bin(Coalesce, name("a"), is_set), 0),
            "a ?? (b is set)"
        );
        let json = e(ExprKind::Json(Box::new(name("a"))));
        assert_eq!(expr(&bin(Add, json, name("b")), 0), "(json a) + b");
    }
}
