//! Bundle bytes: versioned JSON, deterministic, hashed with SHA-256.

use super::Bundle;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The bundle format version; a runtime refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

/// Why bundle bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle format {found} is not supported (this build reads format {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("invalid bundle: {0}")]
    Invalid(String),
}

impl Bundle {
    /// The bundle's bytes: the same sources give the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read bytes written by [`Bundle::to_bytes`], checking the format version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        #[derive(serde::Deserialize)]
        struct Header {
            format: u32,
        }
        let h: Header =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Invalid(e.to_string()))?;
        if h.format != FORMAT_VERSION {
            return Err(BundleError::Version { found: h.format });
        }
        serde_json::from_slice(bytes).map_err(|e| BundleError::Invalid(e.to_string()))
    }

    /// SHA-256 of the bytes, in hex: the bundle's identity.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_bytes());
        let mut out = String::with_capacity(64);
        for b in digest.iter() {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}
