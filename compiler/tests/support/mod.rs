//! Helpers for checker tests: check a one-file project in memory and list
//! `(code, text under the span)` of every diagnostic; read a project folder
//! from disk ([`project`], [`Disk`]) and list the folders under one
//! ([`subdirs`]).

#![allow(dead_code)]

use nudge_compiler::check;
use nudge_compiler::files::{FileSystem, MemoryFs, SourceSet};
use std::path::{Path, PathBuf};

/// `file(…)` bodies read from disk.
pub struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// The `.nudge` files of a project folder, in path order, each named by its
/// file name (so diagnostics and bundle bytes do not depend on where the
/// tree is checked out).
pub fn project(dir: &Path) -> SourceSet {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nudge"))
        .collect();
    paths.sort();
    let mut set = SourceSet::new();
    for p in paths {
        let name = p.file_name().expect("named").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).expect("utf-8 source");
        set.add(p, name, text);
    }
    set
}

/// The folders directly under `root`, sorted.
pub fn subdirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

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
