//! The starter projects in `examples/` check with no errors and no warnings.

mod support;

use nudge_compiler::check;
use std::path::Path;
use support::{Disk, project, subdirs};

#[test]
fn examples_check_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dirs = subdirs(&root);
    assert!(!dirs.is_empty());
    for dir in dirs {
        let set = project(&dir);
        let result = check(&set, &Disk);
        let problems: Vec<String> = result
            .diagnostics
            .records(&set)
            .into_iter()
            .map(|r| {
                format!(
                    "{}:{}:{}: {} {}",
                    r.file, r.line, r.column, r.code, r.message
                )
            })
            .collect();
        assert!(
            problems.is_empty(),
            "{}: {}",
            dir.display(),
            problems.join("\n")
        );
    }
}
