//! Helpers for checker tests: check a one-file project in memory and list
//! `(code, text under the span)` of every diagnostic.

#![allow(dead_code)]

use nudge_compiler::check;
use nudge_compiler::files::{MemoryFs, SourceSet};

pub fn diags_with(src: &str, fs: &MemoryFs) -> Vec<(String, String)> {
    let mut set = SourceSet::new();
    set.add("main.nudge", "main.nudge", src);
    let checked = check(&set, fs);
    checked
        .diagnostics
        .items
        .iter()
        .map(|d| {
            let text = src.get(d.span.range()).unwrap_or("").to_string();
            (d.code(), text)
        })
        .collect()
}

pub fn diags(src: &str) -> Vec<(String, String)> {
    diags_with(src, &MemoryFs::new())
}

/// Assert that `src` yields a diagnostic `code` whose span covers `text`.
pub fn assert_diag(src: &str, code: &str, text: &str) {
    let found = diags(src);
    assert!(
        found.iter().any(|(c, t)| c == code && t == text),
        "expected {code} at `{text}`, found {found:?}"
    );
}

/// Assert that `src` has no errors (warnings ignored).
pub fn assert_clean(src: &str) {
    let found: Vec<_> = diags(src)
        .into_iter()
        .filter(|(c, _)| !c.starts_with("nudge::analysis::") || c.contains("loop"))
        .collect();
    assert!(found.is_empty(), "expected no errors, found {found:?}");
}
