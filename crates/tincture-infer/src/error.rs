//! The crate's one error type. Every message names the file (and the frame,
//! where there is one) and says what to do.

use std::path::PathBuf;

/// Errors from the runtime, the model files and inference.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No runtime library was found.
    #[error(
        "ONNX Runtime was not found (looked in: {}); run `make run` or `scripts/setup.sh` to install it into \
         third_party/onnxruntime, or set ORT_DYLIB_PATH to a libonnxruntime.so",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// Where we looked.
        searched: Vec<PathBuf>,
    },
    /// A library was found but would not load.
    #[error("{}: ONNX Runtime would not load: {reason}", path.display())]
    LoadFailed {
        /// The library.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A manifest is missing, unreadable or inconsistent.
    #[error("{}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The model file is missing, corrupt or not a colorizer.
    #[error("{}: {reason}", path.display())]
    Model {
        /// The ONNX file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// `--model NAME` named no known model.
    #[error("no model called `{name}`; known models: {}. Give a model name, or the path of a manifest (.json) or an .onnx file", known.join(", "))]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// What exists.
        known: Vec<String>,
    },
    /// Running the graph failed.
    #[error("model `{model}`, frame {frame}: inference failed: {reason}")]
    Inference {
        /// The model's name.
        model: String,
        /// The frame (or image index).
        frame: u64,
        /// What ONNX Runtime said.
        reason: String,
    },
    /// The graph produced NaN or infinite values.
    #[error(
        "model `{model}`, frame {frame}: the output holds {count} non-finite values (NaN or infinity); \
         the model is broken for this input. Try another model or a different render resolution"
    )]
    NonFinite {
        /// The model's name.
        model: String,
        /// The frame.
        frame: u64,
        /// How many values.
        count: usize,
    },
    /// A hints file is invalid.
    #[error("{}: {reason}", path.display())]
    Hints {
        /// The hints file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The worker thread is gone.
    #[error("the inference worker has stopped{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    WorkerStopped {
        /// Why, when known.
        reason: String,
    },
}

/// Result with the infer [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
