//! How much memory the SQLite connections of [`SqliteStore`](super::SqliteStore)
//! may hold: the writer's page cache, each reader's page cache, and how
//! much of the file every connection maps (`mmap_size`). Read from the
//! environment when the store opens (`docs/operations.md`, "Memory"):
//!
//! * `NUDGE_SQLITE_WRITER_CACHE_MIB`: the writer's page cache;
//! * `NUDGE_SQLITE_READER_CACHE_MIB`: each reader's (and the background
//!   checkpointer's) page cache;
//! * `NUDGE_SQLITE_MMAP_MIB`: bytes of the file mapped by each connection
//!   (0: none). Mapped pages are the kernel's page cache of the file: they
//!   count in the process's resident memory (`RssFile`), shared and
//!   dropped without a write under memory pressure.
//!
//! A value that is not a whole number of MiB fails the open, naming the
//! variable.

use crate::store::StoreError;

/// Page caches and the mapped size, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Memory {
    pub writer_cache: u64,
    pub reader_cache: u64,
    pub mmap: u64,
}

impl Memory {
    /// The defaults (see `docs/benchmarks.md`, "Memory of the daemon").
    pub const DEFAULT: Memory = Memory {
        writer_cache: 8,
        reader_cache: 2,
        mmap: 64,
    };

    /// The settings from the environment, each defaulted when unset.
    pub fn from_env() -> Result<Memory, StoreError> {
        Memory::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Memory, StoreError> {
        let read = |name: &str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                StoreError::Unsupported(format!("{name}: `{v}` is not a whole number of MiB"))
            }),
        };
        let d = Memory::DEFAULT;
        Ok(Memory {
            writer_cache: read("NUDGE_SQLITE_WRITER_CACHE_MIB", d.writer_cache)?,
            reader_cache: read("NUDGE_SQLITE_READER_CACHE_MIB", d.reader_cache)?,
            mmap: read("NUDGE_SQLITE_MMAP_MIB", d.mmap)?,
        })
    }

    /// `PRAGMA cache_size` for `mib` (negative: KiB).
    pub fn cache_pragma(mib: u64) -> String {
        format!("-{}", mib.saturating_mul(1024))
    }

    /// `PRAGMA mmap_size`, in bytes.
    pub fn mmap_pragma(&self) -> String {
        self.mmap.saturating_mul(1024 * 1024).to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Memory, StoreError> {
        Memory::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        assert_eq!(with(&[]).unwrap(), Memory::DEFAULT);
    }

    #[test]
    fn each_variable_sets_its_own_size() {
        let m = with(&[
            ("NUDGE_SQLITE_WRITER_CACHE_MIB", "8"),
            ("NUDGE_SQLITE_READER_CACHE_MIB", " 2 "),
            ("NUDGE_SQLITE_MMAP_MIB", "0"),
        ])
        .unwrap();
        assert_eq!(
            m,
            Memory {
                writer_cache: 8,
                reader_cache: 2,
                mmap: 0
            }
        );
        assert_eq!(Memory::cache_pragma(m.writer_cache), "-8192");
        assert_eq!(m.mmap_pragma(), "0");
    }

    #[test]
    fn a_bad_value_fails_naming_the_variable() {
        let e = with(&[("NUDGE_SQLITE_MMAP_MIB", "lots")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NUDGE_SQLITE_MMAP_MIB: `lots` is not a whole number of MiB"
        );
    }
}
