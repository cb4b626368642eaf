//! Analysis: how much a coloured film flickers and, where the true colour
//! is known, how far it is from it; the same for stills; and pictures of
//! the figures.
//!
//! - [`metrics`]: a clip's per-frame flicker (warp error, CDC) and
//!   colourfulness, and with a reference clip its PSNR, SSIM and CIEDE2000
//!   ([`metrics::measure`]; `tincture-cli metrics`).
//! - [`eval`]: a colour clip taken as the truth, made gray, coloured back
//!   (the model, or keyframes of true colour propagated or transferred) and
//!   measured against it ([`eval::evaluate`]; `tincture-cli eval`).
//! - [`stills`]: the same for a folder of colour photographs, with random
//!   hint points ([`stills::evaluate_stills`]; `tincture-cli eval-images`).
//! - [`plot`]: PNG plots of the per-frame series and side-by-side strips.
//!
//! Each takes a plain request, reports progress through a callback, stops
//! between frames when its cancel flag is set, and returns its figures; the
//! caller prints, draws or shows them.

pub mod eval;
pub mod metrics;
pub mod plot;
pub mod stills;
pub mod weak;

use std::path::Path;

use tincture_core::compose::frame_to_rgb8;
use tincture_core::frame::{Frame, RgbImage};
use tincture_core::video_metrics::lab_means;
use tincture_media::{DecodedFrame, VideoReader};

use crate::{Error, Result};

/// A clip whose mean CIE chroma (C*ab) lies below this on the frames
/// looked at is gray.
pub const GRAY_CHROMA: f64 = 1.0;

/// How many frames a summary lists, and a plot marks, as flickering most.
pub const TOP_FLICKER: usize = 5;

/// "frame N" or "frames A-B".
pub fn frames_label((first, last): (u64, u64)) -> String {
    if first == last {
        format!("frame {first}")
    } else {
        format!("frames {first}-{last}")
    }
}

/// A frame as 8-bit sRGB.
pub fn rgb8(frame: &Frame) -> RgbImage {
    RgbImage {
        width: frame.width(),
        height: frame.height(),
        data: frame_to_rgb8(frame),
    }
}

/// Why the clip at `path` holds no colour, or `None` when it does: it has
/// no chroma planes, or its mean CIE chroma is below [`GRAY_CHROMA`] on the
/// first frame of `range` and also on its middle and last frames (so a fade
/// from black does not count as gray). The reason says what to do.
///
/// # Errors
/// When the clip cannot be read.
pub fn why_gray(path: &Path, (first, last): (u64, u64)) -> Result<Option<String>> {
    let gray = |detail: String| {
        Some(format!(
            "the clip is gray ({detail}): a reference must hold the true colour; give the colour original of the clip"
        ))
    };
    let mut reader = VideoReader::open(path)?;
    if reader.subsampling().is_none() {
        return Ok(gray(format!(
            "its pixel format {} has no chroma planes",
            reader.info().video.pixel_format
        )));
    }
    let mut looked = Vec::new();
    for index in [first, first + (last - first) / 2, last] {
        if looked.iter().any(|(i, _)| *i == index) {
            continue;
        }
        let f = reader.seek(index)?;
        if f.frame.chroma.is_none() {
            return Ok(gray(format!("frame {index} has no chroma planes")));
        }
        let chroma = lab_means(&rgb8(&f.frame))[2];
        if chroma >= GRAY_CHROMA {
            return Ok(None);
        }
        looked.push((index, chroma));
    }
    let list: Vec<String> = looked
        .iter()
        .map(|(i, c)| format!("frame {i}: {c:.2}"))
        .collect();
    Ok(gray(format!(
        "mean chroma C*ab below {GRAY_CHROMA}: {}",
        list.join(", ")
    )))
}

/// The inclusive range `frames` names in a clip of `count` frames (all of
/// them for `None`).
///
/// # Errors
/// [`Error::Analysis`] for a clip without frames, [`Error::FrameRange`] for
/// a range outside it or running backwards.
pub(crate) fn frame_range(
    path: &Path,
    frames: Option<(u64, u64)>,
    count: u64,
) -> Result<(u64, u64)> {
    if count == 0 {
        return Err(Error::Analysis {
            path: path.to_owned(),
            reason: "holds no video frames".into(),
        });
    }
    match frames {
        None => Ok((0, count - 1)),
        Some((first, last)) if first <= last && last < count => Ok((first, last)),
        Some((first, last)) => Err(Error::FrameRange {
            path: path.to_owned(),
            first,
            last,
            count,
        }),
    }
}

/// The file name of `path`, or all of it when it has none.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Frames `first..=last` of a clip, in order.
pub(crate) struct FrameRange {
    reader: VideoReader,
    next: u64,
    first: u64,
    last: u64,
}

impl FrameRange {
    pub(crate) fn new(reader: VideoReader, (first, last): (u64, u64)) -> Self {
        Self {
            reader,
            next: first,
            first,
            last,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.reader.path()
    }

    /// The next frame of the range; `None` after its last.
    ///
    /// # Errors
    /// When the clip cannot be read, or ends before the range does.
    pub(crate) fn next(&mut self) -> Result<Option<DecodedFrame>> {
        if self.next > self.last {
            return Ok(None);
        }
        let frame = if self.next == self.first && self.first > 0 {
            self.reader.seek(self.first)?
        } else {
            match self.reader.next_frame()? {
                Some(f) => f,
                None => {
                    return Err(Error::Analysis {
                        path: self.path().to_owned(),
                        reason: format!(
                            "frame {}: the file ends there, though {} frames were counted; it may be truncated",
                            self.next,
                            self.reader.frame_count()
                        ),
                    });
                }
            }
        };
        self.next = frame.index + 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests;
