//! The Nudge compiler: from source files to a checked program, with every
//! problem found reported as a diagnostic.
//!
//! ```
//! use nudge_compiler::{check, files::{MemoryFs, SourceSet}};
//! let mut sources = SourceSet::new();
//! sources.add("a.nudge", "a.nudge", "event signup {}\nflow hello { when signup\n log \"hi\" }");
//! let checked = check(&sources, &MemoryFs::new());
//! assert_eq!(checked.diagnostics.error_count(), 0);
//! ```
//!
//! The passes are plain functions called in order by [`check`]; each takes a
//! `&mut Diagnostics`, and the pipeline stops after a stage that produced
//! errors: parse ([`syntax`]) → resolve ([`resolve`]) → type-check with
//! templates ([`types`], [`templates`]) → analyse ([`analysis`]).
//!
//! INVARIANT: the compiler does no IO except through [`files::FileSystem`].

pub mod analysis;
pub mod diagnostics;
pub mod files;
pub mod fmt;
pub mod model;
pub mod resolve;
pub mod syntax;
pub mod templates;
pub mod types;
pub mod walk;

use diagnostics::Diagnostics;
use files::{FileSystem, SourceSet};
use nudge_grammar::ast::Module;
use nudge_grammar::span::FileId;

/// The result of checking a project: its syntax trees (files that parsed) and
/// every diagnostic found, sorted by file and position.
#[derive(Debug)]
pub struct Checked {
    pub modules: Vec<(FileId, Module)>,
    pub diagnostics: Diagnostics,
}

impl Checked {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        !self.diagnostics.has_errors()
    }
}

/// Run every pass over a project.
pub fn check(sources: &SourceSet, fs: &dyn FileSystem) -> Checked {
    let mut diags = Diagnostics::new();
    let modules = syntax::parse_all(sources, &mut diags);
    if !diags.has_errors() {
        run_semantic_passes(sources, fs, &modules, &mut diags);
    }
    diags.sort();
    Checked {
        modules,
        diagnostics: diags,
    }
}

fn run_semantic_passes(
    sources: &SourceSet,
    fs: &dyn FileSystem,
    modules: &[(FileId, Module)],
    diags: &mut Diagnostics,
) {
    let env = resolve::resolve(modules, diags);
    if diags.has_errors() {
        return;
    }
    types::check(&env, modules, sources, fs, diags);
    if diags.has_errors() {
        return;
    }
    analysis::analyse(&env, modules, diags);
}
