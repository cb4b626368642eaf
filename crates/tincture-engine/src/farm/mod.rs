//! Render farms: splitting a project's render into chunks that machines
//! render apart ([`plan`]), joining the chunks' outputs without re-encoding
//! ([`join`]) and checking that an output's luma is the source's
//! ([`verify`]). The CLI's `farm plan`, `join` and `verify` call these.
//!
//! A chunk is an ordinary render of a frame range (`render --frames A-B`),
//! so a joined output equals one whole render of the same project to the
//! bit; chunks inside one shot share a `--chunk-state` folder and run in
//! order (see [`crate::chunk_state`]).

pub mod join;
pub mod plan;
pub mod verify;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The error for a farm file (`path`) that cannot be used.
pub(crate) fn farm_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Farm {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `sha256:HEX` of a file's bytes, read in blocks.
///
/// # Errors
/// [`Error::Farm`] naming the file when it cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|e| farm_error(path, format!("cannot be read: {e}")))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut block)
            .map_err(|e| farm_error(path, format!("cannot be read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// `sha256:HEX` of several files in order, each hashed with its name: the
/// hash of an image-sequence chunk.
///
/// # Errors
/// As [`sha256_file`].
pub fn sha256_files(paths: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for p in paths {
        hasher.update(
            p.file_name()
                .map_or_else(Vec::new, |n| n.as_encoded_bytes().to_vec()),
        );
        hasher.update(sha256_file(p)?.as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A container tag of a probed file, by name whatever its case.
pub(crate) fn tag<'a>(info: &'a tincture_media::MediaInfo, name: &str) -> Option<&'a str> {
    info.tags
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads `A-B` (inclusive frames).
pub(crate) fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.trim().split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}
