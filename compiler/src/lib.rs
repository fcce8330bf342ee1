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
pub mod bundle;
pub mod diagnostics;
pub mod files;
pub mod fmt;
pub mod graph;
pub mod lower;
pub mod model;
pub mod resolve;
pub mod syntax;
pub mod templates;
pub mod types;
pub mod value;
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
    run(sources, fs, false).0
}

/// Check a project and, when it has no errors, lower it to a [`bundle::Bundle`].
pub fn compile(sources: &SourceSet, fs: &dyn FileSystem) -> (Checked, Option<bundle::Bundle>) {
    run(sources, fs, true)
}

fn run(sources: &SourceSet, fs: &dyn FileSystem, lower: bool) -> (Checked, Option<bundle::Bundle>) {
    let mut diags = Diagnostics::new();
    let modules = syntax::parse_all(sources, &mut diags);
    let mut bundle = None;
    if !diags.has_errors() {
        bundle = run_semantic_passes(sources, fs, &modules, &mut diags, lower);
    }
    diags.sort();
    let checked = Checked {
        modules,
        diagnostics: diags,
    };
    (checked, bundle)
}

fn run_semantic_passes(
    sources: &SourceSet,
    fs: &dyn FileSystem,
    modules: &[(FileId, Module)],
    diags: &mut Diagnostics,
    lower: bool,
) -> Option<bundle::Bundle> {
    let env = resolve::resolve(modules, diags);
    if diags.has_errors() {
        return None;
    }
    let info = types::check(&env, modules, sources, fs, diags);
    if diags.has_errors() {
        return None;
    }
    analysis::analyse(&env, modules, diags);
    if !lower || diags.has_errors() {
        return None;
    }
    Some(lower::lower(&env, modules, &info, sources))
}
