//! The media crate's error type. Every variant names the file, and where it
//! applies the frame, and says what to do.

use std::path::PathBuf;

/// Errors from probing, decoding and encoding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist or cannot be read.
    #[error("{}: cannot read the file: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is empty.
    #[error("{}: the file is empty (0 bytes); was the copy interrupted?", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// FFmpeg could not make sense of the file.
    #[error("{}: not a readable video file ({reason}); check that it is a complete film file, not truncated or mislabelled", path.display())]
    NotMedia {
        /// The file.
        path: PathBuf,
        /// FFmpeg's reason.
        reason: String,
    },
    /// The file has no video stream.
    #[error("{}: no video stream (it holds: {streams}); open the film's video file instead", path.display())]
    NoVideo {
        /// The file.
        path: PathBuf,
        /// What streams it does hold.
        streams: String,
    },
    /// A pixel format Tincture cannot keep luma-exact.
    #[error(
        "{}: pixel format {format} is not supported; Tincture reads gray and Y'CbCr 4:2:0/4:2:2/4:4:4 at 8 to 16 bits. \
         Convert it first, e.g. `ffmpeg -i INPUT -c:v ffv1 -pix_fmt yuv444p OUTPUT.mkv` (an RGB source has no luma plane to preserve)",
        path.display()
    )]
    UnsupportedPixelFormat {
        /// The file.
        path: PathBuf,
        /// FFmpeg's name for the format.
        format: String,
    },
    /// Frames too small to work with.
    #[error("{}: frame size {width}x{height} is too small; Tincture needs at least {min}x{min} pixels", path.display())]
    TooSmall {
        /// The file.
        path: PathBuf,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The minimum side.
        min: u32,
    },
    /// A file Tincture refuses to open: a playlist or list of other files
    /// (HLS, concat...), whose demuxer would open files or addresses the
    /// file names.
    #[error("{}: Tincture does not open {kind} files ({reason}); open the film file itself", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// FFmpeg's name for the file's format.
        kind: String,
        /// Why.
        reason: String,
    },
    /// A number in the file that no film has (an aspect ratio of 100000:1,
    /// a frame size that changes mid-stream...).
    #[error("{}: {field} is {value}: {reason}", path.display())]
    Absurd {
        /// The file.
        path: PathBuf,
        /// What the number is (`sample aspect ratio`, `frame 12 size`).
        field: String,
        /// The value as read.
        value: String,
        /// Why it is refused and what to do.
        reason: String,
    },
    /// No decoder for the video codec.
    #[error("{}: no decoder for video codec {codec} in this FFmpeg build", path.display())]
    NoDecoder {
        /// The file.
        path: PathBuf,
        /// Codec name.
        codec: String,
    },
    /// Decoding a frame failed.
    #[error("{}: frame {frame}: cannot decode ({reason}); the file may be damaged or truncated there", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Frame index (0-based).
        frame: u64,
        /// FFmpeg's reason.
        reason: String,
    },
    /// A frame index past the end.
    #[error("{}: frame {frame} does not exist; the film has {count} frames (0..{last})", path.display(), last = count.saturating_sub(1))]
    FrameOutOfRange {
        /// The file.
        path: PathBuf,
        /// Requested index.
        frame: u64,
        /// Frames in the film.
        count: u64,
    },
    /// The output cannot be created or written.
    #[error("{}: cannot write the output: {reason}", path.display())]
    Output {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Encoding failed.
    #[error("{}: frame {frame}: encoding failed: {reason}", path.display())]
    Encode {
        /// The output file.
        path: PathBuf,
        /// Frame index.
        frame: u64,
        /// FFmpeg's reason.
        reason: String,
    },
    /// Writing the output to disk failed (a full disk, a removed drive, a
    /// lost network share): the frames before `frame` may be on disk.
    #[error("{}: frame {frame}: {}: {reason}", path.display(), if *disk_full { "the disk is full" } else { "writing failed" })]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The frame being written when it failed.
        frame: u64,
        /// The operating system's reason.
        reason: String,
        /// Whether the disk (or the user's quota) is full.
        disk_full: bool,
    },
    /// A stream that cannot be carried in the chosen container.
    #[error("{}: stream {index} ({codec}) cannot be carried in {container} without re-encoding; choose --format ffv1 (MKV) or prores (MOV)", path.display())]
    StreamNotCarried {
        /// The source file.
        path: PathBuf,
        /// Source stream index.
        index: usize,
        /// Codec name.
        codec: String,
        /// Container name.
        container: String,
    },
    /// A chunk of a farm render that cannot be joined to the others
    /// without re-encoding; the reason says how it differs and what to do.
    #[error("{}: {reason}", path.display())]
    Chunk {
        /// The chunk.
        path: PathBuf,
        /// Why, with advice.
        reason: String,
    },
}

/// Result with the media [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
