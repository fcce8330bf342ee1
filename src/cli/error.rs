//! Problems that stop a command before or outside the compiler: a missing
//! path, a directory without `.nudge` files, a file that cannot be read or
//! written. Each is printed as one `error: …` line on stderr and exits 2.
//!
//! Problems *inside* source files are never a [`CliError`]: they are
//! diagnostics (see [`super::io_diag`] for the ones the CLI adds).

use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("`{}` does not exist", shown(.path))]
    NotFound { path: PathBuf },
    #[error("no `.nudge` files in `{}`", shown(.path))]
    NoSources { path: PathBuf },
    #[error("cannot read `{}`: {}", shown(.path), describe(.source))]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write `{}`: {}", shown(.path), describe(.source))]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write the report: {}", describe(.0))]
    Output(io::Error),
    /// `nudge graph --flow NAME` with a name no flow has.
    #[error("no flow `{name}`; the flows are: {known}")]
    UnknownFlow { name: String, known: String },
    /// The daemon or a database command could not go on.
    #[error("{0}")]
    Runtime(String),
    /// The compiled bundle cannot be serialised (no bytes, no hash).
    #[error("{0}")]
    Bundle(#[from] nudge_compiler::bundle::BundleError),
}

/// A path as the user wrote it (lossy for names that are not UTF-8).
pub fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// An I/O error in the house style: lowercase, no final period, no
/// `(os error N)` suffix.
pub fn describe(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let words = match e.kind() {
        K::NotFound => "no such file or directory",
        K::PermissionDenied => "permission denied",
        K::IsADirectory => "it is a directory",
        K::NotADirectory => "a part of the path is not a directory",
        K::InvalidData => "the data is not valid",
        K::BrokenPipe => "the pipe was closed",
        K::StorageFull => "no space left on the device",
        K::ReadOnlyFilesystem => "the file system is read-only",
        _ => {
            let text = e.to_string();
            let text = match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            return match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "unknown error".to_string(),
            };
        }
    };
    words.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_house_style() {
        let e = CliError::Read {
            path: PathBuf::from("flows/a.nudge"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(
            e.to_string(),
            "cannot read `flows/a.nudge`: no such file or directory"
        );
        let other = io::Error::other("Something Odd (os error 99)");
        assert_eq!(describe(&other), "something Odd");
    }
}
