//! Stage 3, types.
use crate::diagnostics::Diagnostics;
use crate::files::{FileSystem, SourceSet};
use crate::model::Env;
use nudge_grammar::ast::Module;
use nudge_grammar::span::FileId;

/// Type-check every expression, template and literal.
pub fn check(
    _env: &Env<'_>,
    _modules: &[(FileId, Module)],
    _sources: &SourceSet,
    _fs: &dyn FileSystem,
    _diags: &mut Diagnostics,
) {
}
