//! The AST's small enums mapped to the bundle's own (`bundle/enums.rs`).
//! Exhaustive matches on purpose: a new AST variant must be given its
//! bundle spelling here, deliberately, instead of reaching stored bundles.

use crate::bundle::{BinaryOp, Reenter, Weekday};
use nudge_grammar::ast;

/// A binary operator of the language as the bundle stores it.
pub(super) fn binary_op(op: ast::BinaryOp) -> BinaryOp {
    match op {
        ast::BinaryOp::Or => BinaryOp::Or,
        ast::BinaryOp::And => BinaryOp::And,
        ast::BinaryOp::Eq => BinaryOp::Eq,
        ast::BinaryOp::Ne => BinaryOp::Ne,
        ast::BinaryOp::Lt => BinaryOp::Lt,
        ast::BinaryOp::Le => BinaryOp::Le,
        ast::BinaryOp::Gt => BinaryOp::Gt,
        ast::BinaryOp::Ge => BinaryOp::Ge,
        ast::BinaryOp::In => BinaryOp::In,
        ast::BinaryOp::Contains => BinaryOp::Contains,
        ast::BinaryOp::StartsWith => BinaryOp::StartsWith,
        ast::BinaryOp::EndsWith => BinaryOp::EndsWith,
        ast::BinaryOp::Matches => BinaryOp::Matches,
        ast::BinaryOp::Coalesce => BinaryOp::Coalesce,
        ast::BinaryOp::Add => BinaryOp::Add,
        ast::BinaryOp::Sub => BinaryOp::Sub,
        ast::BinaryOp::Mul => BinaryOp::Mul,
        ast::BinaryOp::Div => BinaryOp::Div,
        ast::BinaryOp::Rem => BinaryOp::Rem,
    }
}

/// A `reenter` mode as the bundle stores it.
pub(super) fn reenter(mode: ast::Reenter) -> Reenter {
    match mode {
        ast::Reenter::Never => Reenter::Never,
        ast::Reenter::AfterExit => Reenter::AfterExit,
        ast::Reenter::Restart => Reenter::Restart,
    }
}

/// A weekday as the bundle stores it.
pub(super) fn weekday(day: ast::Weekday) -> Weekday {
    match day {
        ast::Weekday::Monday => Weekday::Monday,
        ast::Weekday::Tuesday => Weekday::Tuesday,
        ast::Weekday::Wednesday => Weekday::Wednesday,
        ast::Weekday::Thursday => Weekday::Thursday,
        ast::Weekday::Friday => Weekday::Friday,
        ast::Weekday::Saturday => Weekday::Saturday,
        ast::Weekday::Sunday => Weekday::Sunday,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each mapping keeps the language's spelling (the disassembly shows it).
    #[test]
    fn every_variant_keeps_its_spelling() {
        for d in ast::Weekday::ALL {
            assert_eq!(weekday(d).name(), d.name());
        }
        for m in [
            ast::Reenter::Never,
            ast::Reenter::AfterExit,
            ast::Reenter::Restart,
        ] {
            assert_eq!(reenter(m).name(), m.name());
        }
        use ast::BinaryOp as B;
        let all = [
            B::Or,
            B::And,
            B::Eq,
            B::Ne,
            B::Lt,
            B::Le,
            B::Gt,
            B::Ge,
            B::In,
            B::Contains,
            B::StartsWith,
            B::EndsWith,
            B::Matches,
            B::Coalesce,
            B::Add,
            B::Sub,
            B::Mul,
            B::Div,
            B::Rem,
        ];
        for op in all {
            assert_eq!(binary_op(op).symbol(), op.symbol());
        }
    }
}
