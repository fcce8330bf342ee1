//! The set of source files being compiled, and the one seam through which the
//! compiler reads files (`file(...)` bodies): the [`FileSystem`] trait.
//!
//! INVARIANT: the compiler does no IO except through [`FileSystem`]; tests use
//! [`MemoryFs`], the CLI uses a disk implementation.

use nudge_grammar::span::{FileId, LineIndex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reads files named by `file("…")`, relative paths already joined.
pub trait FileSystem {
    /// The text of a file, or a message saying why it cannot be read.
    fn read_to_string(&self, path: &Path) -> Result<String, String>;
}

/// An in-memory file set, for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct MemoryFs {
    pub files: BTreeMap<PathBuf, String>,
}

impl MemoryFs {
    pub fn new() -> MemoryFs {
        MemoryFs::default()
    }

    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> MemoryFs {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl FileSystem for MemoryFs {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk. Leading `..` stay
/// (`../../p/x` is still two levels up), and `..` at the root stays there.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// One `.nudge` file: where it is and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path used to resolve `file(...)` (the file's real location).
    pub path: PathBuf,
    /// The name shown in diagnostics (relative to the project root).
    pub name: String,
    pub text: String,
    pub lines: LineIndex,
}

/// All files of a project, indexed by [`FileId`] in path order.
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    pub files: Vec<SourceFile>,
}

impl SourceSet {
    pub fn new() -> SourceSet {
        SourceSet::default()
    }

    /// Add a file; files should be added in path order (bundle order).
    pub fn add(
        &mut self,
        path: impl Into<PathBuf>,
        name: impl Into<String>,
        text: impl Into<String>,
    ) -> FileId {
        let text = text.into();
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            name: name.into(),
            lines: LineIndex::new(&text),
            text,
        });
        id
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn ids(&self) -> impl Iterator<Item = FileId> + '_ {
        (0..self.files.len()).map(|i| FileId(i as u32))
    }
}

#[cfg(test)]
mod normalize_tests {
    use super::normalize;
    use std::path::Path;

    #[test]
    fn parent_dirs_fold_only_over_names() {
        let n = |p: &str| normalize(Path::new(p)).to_string_lossy().into_owned();
        assert_eq!(n("a/./b/../c"), "a/c");
        assert_eq!(n("../../other/p/x.html"), "../../other/p/x.html");
        assert_eq!(n("../a/../../b"), "../../b");
        assert_eq!(n("/../etc"), "/etc");
    }
}
