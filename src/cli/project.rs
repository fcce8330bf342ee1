//! Finding, reading and decoding a project's files, and the disk
//! [`FileSystem`] the compiler reads `file("…")` bodies through.
//!
//! Takes the PATH given on the command line; gives every `*.nudge` file below
//! it in bundle order (display names relative to PATH with `/` separators,
//! compared as text), or a [`CliError`]. Guarantees: a file that is not UTF-8
//! becomes a `nudge::io::invalid_utf8` diagnostic, never an error or a panic;
//! symbolic links to directories are not followed (no loops).

use super::error::CliError;
use super::io_diag::IoDiagnostic;
use nudge_compiler::diagnostics::Diagnostics;
use nudge_compiler::files::{FileSystem, SourceSet, normalize};
use nudge_grammar::span::{FileId, LineIndex, Span};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the user named: a directory, or a single file.
#[derive(Debug, Clone)]
pub struct Root {
    /// PATH, made relative to the current directory when it is inside it.
    pub path: PathBuf,
    pub single_file: bool,
}

impl Root {
    /// A file's path as seen from the current directory (relative when it
    /// is inside it), `/`-separated, for tools that want that (GitHub
    /// annotations).
    pub fn shown_path(&self, name: &str) -> String {
        let joined = if self.single_file {
            self.path.clone()
        } else {
            self.path.join(name)
        };
        slashed(&normalize(&joined))
    }
}

/// One source file found on disk.
#[derive(Debug)]
pub struct ProjectFile {
    /// Where it is (PATH joined with its name).
    pub path: PathBuf,
    /// Its name relative to PATH (for a single file: the file name).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every `.nudge` file of a project, read, in bundle order.
#[derive(Debug)]
pub struct Project {
    pub root: Root,
    pub files: Vec<ProjectFile>,
}

/// The files as text, ready for the compiler.
#[derive(Debug)]
pub struct Decoded {
    /// Every file; one that is not UTF-8 holds its lossy text (`U+FFFD` for
    /// each bad sequence) so a report can show it.
    pub sources: SourceSet,
    /// The files that are valid UTF-8.
    pub valid: Vec<FileId>,
    /// One `nudge::io::invalid_utf8` per file that is not.
    pub diagnostics: Diagnostics,
}

/// Find and read the files of the project at `path`.
pub fn load(path: &Path) -> Result<Project, CliError> {
    let meta = fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => CliError::NotFound {
            path: path.to_path_buf(),
        },
        _ => CliError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let single_file = !meta.is_dir();
    let found = if single_file {
        let name = path
            .file_name()
            .map_or_else(|| slashed(path), |n| n.to_string_lossy().into_owned());
        vec![(name, path.to_path_buf())]
    } else {
        let mut found = Vec::new();
        walk(path, "", &mut found)?;
        found.sort();
        found
    };
    if found.is_empty() {
        return Err(CliError::NoSources {
            path: path.to_path_buf(),
        });
    }
    let files = found
        .into_iter()
        .map(|(name, path)| match fs::read(&path) {
            Ok(bytes) => Ok(ProjectFile { path, name, bytes }),
            Err(source) => Err(CliError::Read { path, source }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Project {
        root: Root {
            path: relative_to_cwd(path),
            single_file,
        },
        files,
    })
}

/// An absolute path inside the current directory, made relative to it.
fn relative_to_cwd(path: &Path) -> PathBuf {
    if !path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

/// Collect `(name, path)` of every `*.nudge` file below `dir`.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), CliError> {
    let read_err = |source| CliError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            walk(&path, &format!("{name}/"), out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "nudge") {
            continue;
        }
        // A link to a directory is skipped; a dangling link is kept so that
        // reading it reports the problem instead of hiding the file.
        if kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        out.push((name, path));
    }
    Ok(())
}

/// Turn the bytes into text, reporting files that are not UTF-8.
pub fn decode(project: Project) -> Decoded {
    let mut sources = SourceSet::new();
    let mut valid = Vec::new();
    let mut diagnostics = Diagnostics::new();
    for f in project.files {
        match String::from_utf8(f.bytes) {
            Ok(text) => valid.push(sources.add(f.path, f.name, text)),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let byte = e.as_bytes().get(offset).copied().unwrap_or(0);
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let (line, column) = LineIndex::new(&text).line_col(&text, offset);
                let id = sources.add(f.path, f.name.clone(), text);
                // The valid prefix is unchanged by the lossy conversion, and
                // the first bad sequence became one U+FFFD.
                let span = Span::new(id, offset, offset + '\u{FFFD}'.len_utf8());
                diagnostics.push(
                    span,
                    IoDiagnostic::InvalidUtf8 {
                        file: f.name,
                        byte: format!("0x{byte:02X}"),
                        line,
                        column,
                        offset,
                        span: (offset, '\u{FFFD}'.len_utf8()).into(),
                    },
                );
            }
        }
    }
    Decoded {
        sources,
        valid,
        diagnostics,
    }
}

/// Reads `file("…")` bodies from the disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

impl FileSystem for DiskFs {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        let bytes = fs::read(path).map_err(|e| super::error::describe(&e))?;
        String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes());
            let (line, column) = LineIndex::new(&text).line_col(&text, at);
            format!("not valid UTF-8 (line {line}, column {column}, byte offset {at})")
        })
    }
}

/// A path with `/` separators, whatever the platform.
pub fn slashed(path: &Path) -> String {
    let mut out = String::new();
    for c in path.components() {
        if !out.is_empty() && !out.ends_with('/') {
            out.push('/');
        }
        match c {
            std::path::Component::RootDir => out.push('/'),
            other => out.push_str(&other.as_os_str().to_string_lossy()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let project = Project {
            root: Root {
                path: PathBuf::from("p"),
                single_file: false,
            },
            files: vec![ProjectFile {
                path: PathBuf::from("p/a.nudge"),
                name: "a.nudge".into(),
                bytes: b"event e {}\nflow \xFF f {}".to_vec(),
            }],
        };
        let decoded = decode(project);
        assert!(decoded.valid.is_empty());
        let records = decoded.diagnostics.records(&decoded.sources);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].code, "nudge::io::invalid_utf8");
        assert_eq!((records[0].line, records[0].column), (2, 6));
        assert!(
            records[0]
                .message
                .contains("byte `0xFF` at line 2, column 6")
        );
    }

    #[test]
    fn disk_reads_explain_failures() {
        let dir = std::env::temp_dir().join(format!("nudge-diskfs-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        fs::write(dir.join("ok.html"), "<p>hi</p>").expect("write");
        fs::write(dir.join("bad.html"), b"ok\n\xFFno").expect("write");
        assert_eq!(
            DiskFs.read_to_string(&dir.join("ok.html")).as_deref(),
            Ok("<p>hi</p>")
        );
        assert_eq!(
            DiskFs.read_to_string(&dir.join("bad.html")),
            Err("not valid UTF-8 (line 2, column 1, byte offset 3)".to_string())
        );
        assert_eq!(
            DiskFs.read_to_string(&dir.join("missing.html")),
            Err("no such file or directory".to_string())
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn github_paths_are_relative_to_the_current_directory() {
        let dir = Root {
            path: PathBuf::from("./flows"),
            single_file: false,
        };
        assert_eq!(dir.shown_path("sub/a.nudge"), "flows/sub/a.nudge");
        let file = Root {
            path: PathBuf::from("flows/a.nudge"),
            single_file: true,
        };
        assert_eq!(file.shown_path("a.nudge"), "flows/a.nudge");
        assert_eq!(slashed(Path::new("/srv/p/./a.nudge")), "/srv/p/a.nudge");
    }
}
