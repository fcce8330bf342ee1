//! The bundle's own small enums: binary operators, re-entry modes and
//! weekdays.
//!
//! They mirror enums of the AST (`nudge_grammar::ast`) but are a separate
//! contract: the bundle is stored, so its spelling must not move when the
//! grammar does. `lower/` maps the AST's enums to these with exhaustive
//! matches; a new AST variant fails to compile there instead of silently
//! changing stored bundles. The serialised spelling is the variant name, as
//! it was when the bundle borrowed the AST's enums.

use serde::{Deserialize, Serialize};

/// A binary operator of the expression stack machine (`Op::Bin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Coalesce,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// The operator as written in the language (for the disassembly).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Contains => "contains",
            BinaryOp::StartsWith => "starts_with",
            BinaryOp::EndsWith => "ends_with",
            BinaryOp::Matches => "matches",
            BinaryOp::Coalesce => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }
}

/// When a contact may enter a flow again (`reenter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reenter {
    Never,
    AfterExit,
    Restart,
}

impl Reenter {
    /// The mode as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Reenter::Never => "never",
            Reenter::AfterExit => "after_exit",
            Reenter::Restart => "restart",
        }
    }
}

/// A day of the week (weekly schedules, `wait until monday 10:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// Every day, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// The day as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The stored spelling is the variant name; changing it changes bundles.
    #[test]
    fn the_serialised_spelling_is_the_variant_name() {
        let json = |v: serde_json::Value| v.to_string();
        assert_eq!(
            json(serde_json::to_value(BinaryOp::StartsWith).unwrap()),
            "\"StartsWith\""
        );
        assert_eq!(
            json(serde_json::to_value(Reenter::AfterExit).unwrap()),
            "\"AfterExit\""
        );
        assert_eq!(
            json(serde_json::to_value(Weekday::Sunday).unwrap()),
            "\"Sunday\""
        );
    }
}
