//! Bundle bytes: versioned JSON, deterministic, hashed with SHA-256.

use super::Bundle;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The bundle format version this build writes.
///
/// * 1: the first format;
/// * 2: cron schedules stored parsed, `Op::Render` for the template strings
///   of `call … with` and `emit`, `late` on time triggers, `dedupe` on
///   sources.
pub const FORMAT_VERSION: u32 = 2;

/// Formats this build reads: 1 reads as it meant (its cron texts are parsed
/// on reading, its `call … with` strings stay literal), then counts as 2.
pub const READABLE_FORMATS: &[u32] = &[1, 2];

/// Why bundle bytes could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle could not be serialised (so it has no bytes and no hash).
    #[error("the bundle cannot be serialised: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "bundle format {found} is not supported (this build writes format {FORMAT_VERSION} and also reads format 1)"
    )]
    Version { found: u32 },
    #[error("invalid bundle: {0}")]
    Invalid(String),
}

impl Bundle {
    /// The bundle's bytes: the same sources give the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        serde_json::to_vec(self).map_err(BundleError::Encode)
    }

    /// The bundle as indented JSON (`nudge compile --emit json`).
    pub fn to_pretty_json(&self) -> Result<String, BundleError> {
        serde_json::to_string_pretty(self).map_err(BundleError::Encode)
    }

    /// Read bytes written by [`Bundle::to_bytes`] of a format in
    /// [`READABLE_FORMATS`]; the bundle read counts as [`FORMAT_VERSION`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        #[derive(serde::Deserialize)]
        struct Header {
            format: u32,
        }
        let h: Header =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Invalid(e.to_string()))?;
        if !READABLE_FORMATS.contains(&h.format) {
            return Err(BundleError::Version { found: h.format });
        }
        let mut b: Bundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Invalid(e.to_string()))?;
        b.format = FORMAT_VERSION;
        Ok(b)
    }

    /// The bundle's identity (its version): SHA-256, in hex, of the bytes
    /// of the bundle with its source positions cleared (the line table of
    /// every flow, the lines and statement texts of `test` blocks), so a
    /// change of comments or formatting alone keeps the version. The stored
    /// bytes keep the lines (see [`Bundle::to_bytes`]).
    pub fn hash(&self) -> Result<String, BundleError> {
        Ok(Bundle::hash_of(&self.without_positions().to_bytes()?))
    }

    /// A copy without the source positions [`Bundle::hash`] ignores.
    pub fn without_positions(&self) -> Bundle {
        let mut b = self.clone();
        for p in &mut b.flows {
            p.lines.clear();
        }
        for t in &mut b.tests {
            t.line = 0;
            for s in &mut t.steps {
                s.line = 0;
                s.text.clear();
            }
        }
        b
    }

    /// SHA-256 of bytes, in hex.
    pub fn hash_of(bytes: &[u8]) -> String {
        let digest = Sha256::digest(bytes);
        let mut out = String::with_capacity(64);
        for b in digest.iter() {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoding_failure_keeps_its_cause() {
        let Err(cause) = serde_json::from_str::<u8>("x") else {
            panic!("`x` is not a number");
        };
        let e = BundleError::Encode(cause);
        assert!(
            e.to_string()
                .starts_with("the bundle cannot be serialised: ")
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
