//! What a film file holds: [`probe`] and [`MediaInfo`].

use std::path::{Path, PathBuf};

use ffmpeg_next::Rational;
use ffmpeg_next::media::Type;
use serde::Serialize;
use tincture_core::frame::Subsampling;

use crate::Result;

/// The kind of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Subtitles or captions.
    Subtitle,
    /// Data, such as a QuickTime timecode track.
    Data,
    /// Fonts and other attachments.
    Attachment,
    /// Anything else.
    Other,
}

impl StreamKind {
    pub(crate) fn of(kind: Type) -> Self {
        match kind {
            Type::Video => Self::Video,
            Type::Audio => Self::Audio,
            Type::Subtitle => Self::Subtitle,
            Type::Data => Self::Data,
            Type::Attachment => Self::Attachment,
            _ => Self::Other,
        }
    }
}

/// One stream of the file.
#[derive(Clone, Debug, Serialize)]
pub struct StreamInfo {
    /// Index in the container.
    pub index: usize,
    /// What it carries.
    pub kind: StreamKind,
    /// Codec name (e.g. `aac`, `pcm_s24le`, `tmcd`).
    pub codec: String,
    /// Language tag, if any.
    pub language: Option<String>,
    /// Audio sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Audio channel count.
    pub channels: Option<u16>,
    /// Start time in seconds.
    pub start_time: Option<f64>,
    /// Time base as `num/den`.
    pub time_base: String,
}

/// The colour tags of a stream, as FFmpeg names them (`unknown` when untagged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColourTags {
    /// `tv` (limited) or `pc` (full).
    pub range: String,
    /// Colour primaries.
    pub primaries: String,
    /// Transfer characteristic.
    pub transfer: String,
    /// Y'CbCr matrix.
    pub matrix: String,
    /// Raw FFmpeg values (range, primaries, transfer, matrix), carried to the output as they are.
    #[serde(skip)]
    pub raw: [i32; 4],
}

/// The video stream that Tincture works on.
#[derive(Clone, Debug, Serialize)]
pub struct VideoInfo {
    /// Index in the container.
    pub index: usize,
    /// Codec name.
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Sample (pixel) aspect ratio `num:den`.
    pub sample_aspect_ratio: String,
    /// Display aspect ratio `num:den`.
    pub display_aspect_ratio: String,
    /// Nominal frame rate, frames per second.
    pub frame_rate: f64,
    /// Nominal frame rate as `num/den`.
    pub frame_rate_exact: String,
    /// Whether frame durations vary.
    pub variable_frame_rate: bool,
    /// Stream time base `num/den`.
    pub time_base: String,
    /// Frames counted by reading the whole stream.
    pub frame_count: u64,
    /// The frame count the container states, if it states one.
    pub container_frame_count: Option<u64>,
    /// Pixel format name.
    pub pixel_format: String,
    /// Bits per sample.
    pub bit_depth: u8,
    /// Chroma layout; `None` for gray.
    pub chroma: Option<String>,
    /// Colour tags.
    pub colour: ColourTags,
    /// `progressive`, `tt`, `bb`, `tb`, `bt` or `unknown`.
    pub field_order: String,
    /// Keyframes in the stream.
    pub keyframes: u64,
    /// Start timecode (`HH:MM:SS:FF`, `;` for drop-frame), if the file carries one.
    pub timecode: Option<String>,
}

/// Everything [`probe`] finds.
#[derive(Clone, Debug, Serialize)]
pub struct MediaInfo {
    /// The file.
    pub path: PathBuf,
    /// Container (demuxer) name.
    pub container: String,
    /// Duration in seconds, as the container states it.
    pub duration: Option<f64>,
    /// The video stream.
    pub video: VideoInfo,
    /// Every other stream: audio, subtitle, data.
    pub streams: Vec<StreamInfo>,
    /// Container-level tags (title, date, ...).
    pub tags: Vec<(String, String)>,
}

/// Probes a file: streams, formats, colour tags, timecode and the exact frame count.
///
/// # Errors
/// When the file cannot be read, is not a video file, or its video cannot
/// be decoded by Tincture; the error names the file and the problem.
pub fn probe(path: &Path) -> Result<MediaInfo> {
    Ok(crate::VideoReader::open(path)?.info().clone())
}

pub(crate) fn ratio(r: Rational) -> String {
    format!("{}/{}", r.numerator(), r.denominator())
}

pub(crate) fn subsampling_name(s: Option<Subsampling>) -> Option<String> {
    s.map(|s| s.name().to_owned())
}
