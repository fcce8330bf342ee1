//! Stage 4, analysis.
use crate::diagnostics::Diagnostics;
use crate::model::Env;
use nudge_grammar::ast::Module;
use nudge_grammar::span::FileId;

/// Flow analysis: loops, reachability, unused declarations, and the rest of LANGUAGE.md §6.
pub fn analyse(_env: &Env<'_>, _modules: &[(FileId, Module)], _diags: &mut Diagnostics) {}
