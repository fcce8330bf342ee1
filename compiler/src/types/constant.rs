//! Constant folding for the checker (LANGUAGE.md amendment A4): the value of
//! an `int` expression made only of literals, and whether a divisor is a
//! literal zero, so that `x / 0`, `x % 0.0` and `9223372036854775807 + 1`
//! are reported before they can fail an enrollment at run time.

use nudge_grammar::ast::{BinaryOp, Expr, ExprKind, UnaryOp};

/// The value of a constant `int` expression (literals, parentheses, `-`,
/// `+ - * %`); `None` when it is not constant or does not fit (an
/// overflow inside it is reported where it happens).
pub(super) fn int(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(i) => Some(*i),
        ExprKind::Paren(x) => int(x),
        ExprKind::Unary(UnaryOp::Neg, x) => int(x)?.checked_neg(),
        ExprKind::Binary(op, l, r) => fold(*op, int(l)?, int(r)?),
        _ => None,
    }
}

/// `a op b` for constant ints; `None` on overflow or a zero divisor.
pub(super) fn fold(op: BinaryOp, a: i64, b: i64) -> Option<i64> {
    match op {
        BinaryOp::Add => a.checked_add(b),
        BinaryOp::Sub => a.checked_sub(b),
        BinaryOp::Mul => a.checked_mul(b),
        BinaryOp::Rem => a.checked_rem(b),
        _ => None,
    }
}

/// Whether `e` is a zero written as a constant: `0`, `0.0`, `-0`, `(1 - 1)`.
pub(super) fn is_zero(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Decimal(text) => text.parse::<f64>().is_ok_and(|d| d == 0.0),
        ExprKind::Paren(x) | ExprKind::Unary(UnaryOp::Neg, x) => is_zero(x),
        _ => int(e) == Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_grammar::span::Span;

    fn lit(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: Span::default(),
        }
    }

    fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        lit(ExprKind::Binary(op, Box::new(l), Box::new(r)))
    }

    #[test]
    fn folds_ints_and_finds_zeros() {
        let one = || lit(ExprKind::Int(1));
        assert_eq!(int(&bin(BinaryOp::Sub, one(), one())), Some(0));
        assert!(is_zero(&bin(BinaryOp::Sub, one(), one())));
        assert!(is_zero(&lit(ExprKind::Decimal("0.00".into()))));
        assert!(!is_zero(&lit(ExprKind::Decimal("0.5".into()))));
        let max = lit(ExprKind::Int(i64::MAX));
        assert_eq!(int(&bin(BinaryOp::Add, max, one())), None);
        assert_eq!(fold(BinaryOp::Mul, i64::MAX, 2), None);
        assert_eq!(fold(BinaryOp::Mul, 3, 2), Some(6));
    }
}
