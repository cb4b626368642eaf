//! The engine's error type.

use std::path::PathBuf;

/// Errors from rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From reading or writing media; already names the file and frame.
    #[error(transparent)]
    Media(#[from] tincture_media::Error),
    /// A colour engine failed on a frame.
    #[error("{}: frame {frame}: colorizing failed: {source}", path.display())]
    Colorize {
        /// The source file.
        path: PathBuf,
        /// Frame index.
        frame: u64,
        /// What went wrong.
        source: tincture_core::Error,
    },
    /// The reference image cannot be used.
    #[error("{}: {reason}", path.display())]
    Reference {
        /// The reference image.
        path: PathBuf,
        /// Why, with advice.
        reason: String,
    },
    /// The neural model cannot be used (missing, corrupt, mismatched, or
    /// ONNX Runtime absent); the message names the file and what to do.
    #[error(transparent)]
    Model(#[from] tincture_infer::Error),
    /// The output already exists.
    #[error("{}: the output already exists; choose another name or pass --overwrite", path.display())]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// The output cannot be written.
    #[error("{}: cannot write the output: {reason}", path.display())]
    Output {
        /// The output.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A project that cannot be used: invalid, or its film is missing or
    /// changed; the reason says what to do.
    #[error("{}: {reason}", path.display())]
    Project {
        /// The project file.
        path: PathBuf,
        /// Why, with advice.
        reason: String,
    },
    /// A frame range outside the film.
    #[error("{}: frames {first}-{last} are outside the film, which has frames 0-{}", path.display(), count.saturating_sub(1))]
    FrameRange {
        /// The source.
        path: PathBuf,
        /// First requested.
        first: u64,
        /// Last requested.
        last: u64,
        /// Frames in the film.
        count: u64,
    },
}

/// Result with the engine [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
