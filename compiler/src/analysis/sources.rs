//! Sources (`source_without_dedupe`): a `postback` source without
//! `dedupe = …` counts a retried postback again (LANGUAGE.md A5), so the
//! checker warns at the source's name and shows the setting to add.

use super::Bundle;
use super::diag::AnalysisWarning;
use crate::diagnostics::{Diagnostics, ss};
use nudge_grammar::ast::{SourceDecl, SourceEntry};

pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    for (name, decl) in &b.env.sources {
        if !has_dedupe(decl) {
            diags.push(
                decl.name.span,
                AnalysisWarning::SourceWithoutDedupe {
                    source_name: name.clone(),
                    span: ss(decl.name.span),
                    help: "add `dedupe = param(\"…\")` with the parameter that identifies one \
                           postback (a transaction id), so that a retry is answered `duplicate` \
                           and changes nothing"
                        .into(),
                },
            );
        }
    }
}

fn has_dedupe(decl: &SourceDecl) -> bool {
    decl.entries
        .iter()
        .any(|e| matches!(e, SourceEntry::Setting(s) if s.name.name == "dedupe"))
}
