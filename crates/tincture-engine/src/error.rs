//! The engine's error type.

use std::path::{Path, PathBuf};

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
    /// The output is one of the command's inputs, or a folder holding one
    /// (see [`crate::output`]).
    #[error(
        "{}: Tincture will not write there: {what} {}, which this command reads, and Tincture \
         never overwrites or removes its inputs; choose another output path",
        output.display(),
        input.display()
    )]
    OutputIsInput {
        /// The output asked for.
        output: PathBuf,
        /// The input it would harm.
        input: PathBuf,
        /// How they are related: "it is the same file as", "it is a folder holding"...
        what: String,
    },
    /// An existing folder chosen for an image sequence that Tincture did
    /// not make, or that holds files Tincture did not write.
    #[error(
        "{}: Tincture will not replace this folder: {reason}; Tincture only replaces an image \
         sequence it made itself and never removes anything else: choose an empty or new folder",
        path.display()
    )]
    NotTinctureFolder {
        /// The folder.
        path: PathBuf,
        /// Why it is not Tincture's to replace.
        reason: String,
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
    /// Writing the output failed (a full disk, a lost drive): the frames
    /// written before are kept in a valid partial file where possible, and a
    /// later export with the same settings resumes from it.
    #[error("{}", write_failed_message(output, *frame, *disk_full, reason, kept.as_ref()))]
    WriteFailed {
        /// The output.
        output: PathBuf,
        /// The frame being written when it failed.
        frame: u64,
        /// Whether the disk (or quota) is full.
        disk_full: bool,
        /// The operating system's reason.
        reason: String,
        /// The partial file kept; `None` when none could be kept.
        kept: Option<KeptPartial>,
    },
    /// A chunk, joined output or job bundle of a render farm that cannot be
    /// used (see [`crate::farm`]); the reason says how and what to do.
    #[error("{}: {reason}", path.display())]
    Farm {
        /// The chunk, output or bundle.
        path: PathBuf,
        /// Why, with advice.
        reason: String,
    },
    /// A clip, picture or folder that cannot be measured or scored (see
    /// [`crate::analysis`]): it holds no frames, ends early, holds no colour
    /// to score against, or a frame of it cannot be measured; the reason
    /// names the frame where there is one, and says what to do.
    #[error("{}: {reason}", path.display())]
    Analysis {
        /// The clip, picture or folder.
        path: PathBuf,
        /// Why, with advice.
        reason: String,
    },
    /// The reference clip a film is measured against cannot be opened (see
    /// [`crate::analysis::metrics`]); the media error names the file.
    #[error(transparent)]
    ReferenceClip(tincture_media::Error),
    /// A setting of an analysis outside its range, or a keyframe outside the
    /// film; `name` is the request field's name.
    #[error("{name} {value}: {reason}")]
    Setting {
        /// The request field, such as `stabilise` or `keyframes`.
        name: &'static str,
        /// The value given.
        value: String,
        /// The range it must lie in, or what to give instead.
        reason: String,
    },
    /// Colouring a frame failed while a film was being evaluated against
    /// its truth (see [`crate::analysis::eval`]).
    #[error("{}: frame {frame}: {by} failed: {source}", path.display())]
    Evaluate {
        /// The truth clip.
        path: PathBuf,
        /// Frame index.
        frame: u64,
        /// What was colouring the frame.
        by: crate::analysis::eval::Colourer,
        /// What went wrong.
        source: tincture_core::Error,
    },
    /// A plot or strip that cannot be drawn (see [`crate::analysis::plot`]).
    #[error("{}: cannot draw the {what}: {reason}", path.display())]
    Draw {
        /// The PNG it was drawn for.
        path: PathBuf,
        /// `plot` or `strip`.
        what: &'static str,
        /// Why.
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

/// A valid partial file kept after a failed write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPartial {
    /// The partial file (or folder).
    pub path: PathBuf,
    /// Frames it holds.
    pub frames: u64,
    /// The source frame a later export resumes from.
    pub resume_from: u64,
}

fn write_failed_message(
    output: &Path,
    frame: u64,
    disk_full: bool,
    reason: &str,
    kept: Option<&KeptPartial>,
) -> String {
    let what = if disk_full {
        format!("the disk is full ({reason})")
    } else {
        format!("writing failed ({reason})")
    };
    let fix = if disk_full {
        "free some space"
    } else {
        "fix the cause"
    };
    let after = match kept {
        Some(k) => format!(
            "the partial file {} with {} frames was kept; {fix} and export again with the same \
             settings to resume from frame {}",
            k.path.display(),
            k.frames,
            k.resume_from
        ),
        None => format!("no valid partial file could be kept; {fix} and export again"),
    };
    format!("{}: frame {frame}: {what}; {after}", output.display())
}

/// Result with the engine [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
