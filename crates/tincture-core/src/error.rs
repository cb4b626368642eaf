//! The crate's one error type.

/// Errors raised by the colour engines and frame operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference image that carries no colour was given to a colour-transfer engine.
    #[error(
        "the reference image is grayscale (mean chroma {mean_chroma:.4}): it has no colour to transfer; \
         pick a colour photograph or a colourised frame of a similar scene"
    )]
    GrayscaleReference {
        /// Mean absolute chroma over the image, 0 for a perfectly neutral picture.
        mean_chroma: f32,
    },
    /// An image or frame is too small for the requested operation.
    #[error("image is {width}x{height}; at least {min}x{min} pixels are needed")]
    TooSmall {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Smallest accepted side.
        min: usize,
    },
    /// An external colour engine (such as the neural model) failed; the
    /// message names the model and what to do.
    #[error("{message}")]
    Engine {
        /// The engine's own message.
        message: String,
    },
    /// The work was stopped (Ctrl-C, Cancel, or a newer request) before it
    /// finished; nothing is wrong with the input.
    #[error("stopped before it finished (cancelled)")]
    Cancelled,
    /// Buffers whose sizes do not agree were combined.
    #[error("size mismatch: {what}")]
    SizeMismatch {
        /// What did not match, for the message.
        what: String,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
