//! The five conformance projects check with no errors and no warnings, read
//! unchanged from `tests/conformance` (the repository's copy of the shared
//! projects). They predate postback deduplication (LANGUAGE.md A5), so
//! `source_without_dedupe` is the one warning they may give.

mod support;

use nudge_compiler::check;
use std::path::Path;
use support::{Disk, project, subdirs};

#[test]
fn conformance_projects_check_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut checked = 0;
    let mut problems = Vec::new();
    for dir in subdirs(&root) {
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
