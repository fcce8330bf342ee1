//! The five conformance projects check with no errors and no warnings,
//! read unchanged from `tests/conformance` (the copy of `../shared/conformance`). They predate postback
//! deduplication (LANGUAGE.md A5), so `source_without_dedupe` is the one
//! warning they may give.

use nudge_compiler::check;
use nudge_compiler::files::{FileSystem, SourceSet};
use std::path::{Path, PathBuf};

struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

fn project(dir: &Path) -> SourceSet {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("project dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nudge"))
        .collect();
    paths.sort();
    let mut set = SourceSet::new();
    for p in paths {
        let name = p.file_name().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).expect("utf-8");
        set.add(p, name, text);
    }
    set
}

#[test]
fn conformance_projects_check_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("conformance dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let set = project(&dir);
        let result = check(&set, &Disk);
        for r in result.diagnostics.records(&set) {
            if r.code == "nudge::analysis::source_without_dedupe" {
                continue;
            }
            problems.push(format!(
                "{}/{}:{}:{}: {} {}: {}",
                dir.file_name().expect("name").to_string_lossy(),
                r.file,
                r.line,
                r.column,
                r.severity,
                r.code,
                r.message
            ));
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
