//! The starter projects in `examples/` check with no errors and no warnings.

use nudge_compiler::check;
use nudge_compiler::files::{FileSystem, SourceSet};
use std::path::{Path, PathBuf};

struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

#[test]
fn examples_check_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("project")
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
