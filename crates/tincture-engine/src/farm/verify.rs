//! Archival QC: does every frame of an output keep the source's luma, bit
//! for bit and at the source's depth?
//!
//! A video output (FFV1) is decoded and its Y plane compared with the
//! source's. An image sequence (`frame_NNNNNN.png` / `.tif`, named by source
//! frame) holds R'G'B', from which luma is recovered exactly
//! ([`luma_from_rgb16`]) wherever the source's luma lies in its nominal
//! range; outside it (below black, above white) R'G'B' clips, and the luma
//! recovered is the source's clipped to that range, which is what is
//! compared there. Lossy outputs (ProRes, H.264) cannot keep luma to the
//! bit and are refused with a message that says so.

use std::path::{Path, PathBuf};

use tincture_core::color::ColorRange;
use tincture_core::compose::luma_from_rgb16;
use tincture_core::frame::Frame;
use tincture_media::{ImageFormat, ImageSequenceWriter, VideoReader};

use super::{farm_error, parse_range, tag};
use crate::Result;

/// What to verify.
#[derive(Clone, Debug)]
pub struct VerifyRequest {
    /// The output: a video file or an image-sequence folder.
    pub output: PathBuf,
    /// The source film it was rendered from (opened read-only).
    pub source: PathBuf,
    /// The source frames the output holds, inclusive; `None` takes them
    /// from the output (the range a render records in it), else the whole
    /// film.
    pub frames: Option<(u64, u64)>,
}

/// The first frame whose luma is not the source's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The source frame.
    pub frame: u64,
    /// How it differs, in words.
    pub reason: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The output checked.
    pub output: PathBuf,
    /// The source it was checked against.
    pub source: PathBuf,
    /// The source frames the output should hold.
    pub frames: (u64, u64),
    /// Frames the output holds.
    pub output_frames: u64,
    /// Frames checked and found equal.
    pub checked: u64,
    /// The source's bit depth.
    pub bit_depth: u8,
    /// The first frame that differs, or the difference in frame counts.
    pub mismatch: Option<Mismatch>,
}

impl VerifyReport {
    /// Whether every frame is there and keeps the source's luma.
    pub fn passed(&self) -> bool {
        self.mismatch.is_none()
    }

    /// One line for the user: what was checked, and the first difference.
    pub fn message(&self) -> String {
        let (a, b) = self.frames;
        match &self.mismatch {
            None => format!(
                "{}: luma of all {} frames ({a}-{b}) equals {}'s, bit for bit at {} bits",
                self.output.display(),
                self.checked,
                self.source.display(),
                self.bit_depth
            ),
            Some(m) => format!(
                "{}: frame {}: {}; frames {a}-{b} of {} ({} frames) were expected and the output holds {}; {} frames before it verified; render that frame's chunk again",
                self.output.display(),
                m.frame,
                m.reason,
                self.source.display(),
                b - a + 1,
                self.output_frames,
                self.checked
            ),
        }
    }
}

/// Checks `req.output` against `req.source`, calling `progress(done,
/// total)` after each frame. A difference is a [`VerifyReport`] that has not
/// [`passed`](VerifyReport::passed), not an error.
///
/// # Errors
/// When a file cannot be read, the output is lossy (ProRes, H.264), or the
/// frame range lies outside the film; each names the file.
pub fn verify(req: &VerifyRequest, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
    let mut source = VideoReader::open(&req.source)?;
    let count = source.frame_count();
    let out = &req.output;
    let sequence = out.is_dir();
    let frames = match req.frames {
        Some(r) => r,
        None if sequence => sequence_range(out)?.unwrap_or((0, count.saturating_sub(1))),
        None => {
            let info = tincture_media::probe(out)?;
            tag(&info, "TINCTURE_SOURCE_FRAMES")
                .and_then(parse_range)
                .unwrap_or((0, count.saturating_sub(1)))
        }
    };
    let (first, last) = frames;
    if count == 0 || last >= count || first > last {
        return Err(crate::Error::FrameRange {
            path: req.source.clone(),
            first,
            last,
            count,
        });
    }
    let total = last - first + 1;
    let bit_depth = source.info().video.bit_depth;
    let mut report = VerifyReport {
        output: out.clone(),
        source: req.source.clone(),
        frames,
        output_frames: 0,
        checked: 0,
        bit_depth,
        mismatch: None,
    };
    let mut next_source = {
        let mut pending = Some(source.seek(first));
        move || -> Result<Frame> {
            let f = match pending.take() {
                Some(f) => f?,
                None => source.next_frame()?.ok_or_else(|| {
                    farm_error(
                        &req.source,
                        "the film ended early; is it the source of this output?",
                    )
                })?,
            };
            Ok(f.frame)
        }
    };
    if sequence {
        let files = sequence_frames(out)?;
        report.output_frames = files
            .iter()
            .filter(|(i, _)| (first..=last).contains(i))
            .count() as u64;
        for i in first..=last {
            let Some((_, path)) = files.iter().find(|(f, _)| *f == i) else {
                report.mismatch = Some(Mismatch {
                    frame: i,
                    reason: format!(
                        "there is no {} or {}",
                        ImageSequenceWriter::file_name(ImageFormat::Png, i),
                        ImageSequenceWriter::file_name(ImageFormat::Tiff16, i)
                    ),
                });
                return Ok(report);
            };
            let src = next_source()?;
            if let Some(reason) = image_differs(path, &src)? {
                report.mismatch = Some(Mismatch { frame: i, reason });
                return Ok(report);
            }
            report.checked += 1;
            progress(report.checked, total);
        }
        return Ok(report);
    }

    let mut output = VideoReader::open(out)?;
    let codec = output.info().video.codec.clone();
    if matches!(
        codec.as_str(),
        "prores" | "h264" | "hevc" | "mpeg4" | "mjpeg"
    ) {
        return Err(farm_error(
            out,
            format!(
                "it is {codec}, a lossy codec, so its luma cannot equal the source's bit for bit; verify checks FFV1 videos and PNG/TIFF sequences"
            ),
        ));
    }
    report.output_frames = output.frame_count();
    for i in first..=last {
        let Some(got) = output.next_frame()? else {
            report.mismatch = Some(Mismatch {
                frame: i,
                reason: "the output ends before it".into(),
            });
            return Ok(report);
        };
        let src = next_source()?;
        if let Some(reason) = plane_differs(&got.frame, &src) {
            report.mismatch = Some(Mismatch { frame: i, reason });
            return Ok(report);
        }
        report.checked += 1;
        progress(report.checked, total);
    }
    if report.output_frames != total {
        report.mismatch = Some(Mismatch {
            frame: last + 1,
            reason: format!(
                "the output goes on past frame {last}: it holds {} frames, not {total}",
                report.output_frames
            ),
        });
    }
    Ok(report)
}

/// How the output frame's luma differs from the source's, if it does.
fn plane_differs(got: &Frame, src: &Frame) -> Option<String> {
    if got.bit_depth != src.bit_depth {
        return Some(format!(
            "its luma has {} bits, the source's {}",
            got.bit_depth, src.bit_depth
        ));
    }
    if (got.y.width, got.y.height) != (src.y.width, src.y.height) {
        return Some(format!(
            "it is {}x{}, the source {}x{}",
            got.y.width, got.y.height, src.y.width, src.y.height
        ));
    }
    let w = src.y.width.max(1);
    let at = got
        .y
        .data
        .iter()
        .zip(&src.y.data)
        .position(|(a, b)| a != b)?;
    let differing = got
        .y
        .data
        .iter()
        .zip(&src.y.data)
        .filter(|(a, b)| a != b)
        .count();
    Some(format!(
        "luma differs from the source's at {differing} pixels, first at x={} y={} ({} where the source has {})",
        at % w,
        at / w,
        got.y.data[at],
        src.y.data[at]
    ))
}

/// How the luma recovered from a frame image differs from the source's.
fn image_differs(path: &Path, src: &Frame) -> Result<Option<String>> {
    let img = image::open(path).map_err(|e| {
        farm_error(
            path,
            format!("cannot be read ({e}); render this frame's chunk again"),
        )
    })?;
    let eight = img.color().bytes_per_pixel() == 3;
    let want_eight = src.bit_depth == 8
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if eight != want_eight {
        return Ok(Some(format!(
            "{} has {} bits per channel where a {}-bit source gives {}",
            path.display(),
            if eight { 8 } else { 16 },
            src.bit_depth,
            if want_eight { 8 } else { 16 }
        )));
    }
    let rgb = img.into_rgb16();
    let (w, h) = (src.y.width, src.y.height);
    if (rgb.width() as usize, rgb.height() as usize) != (w, h) {
        return Ok(Some(format!(
            "{} is {}x{}, the source {w}x{h}",
            path.display(),
            rgb.width(),
            rgb.height()
        )));
    }
    let (offset, scale) = src.range.luma_offset_scale(src.bit_depth);
    let (lo, hi) = match src.range {
        ColorRange::Limited => (offset as u16, (offset + scale) as u16),
        ColorRange::Full => (0, scale as u16),
    };
    let mut first = None;
    let mut differing = 0u64;
    for (k, (p, &y)) in rgb.pixels().zip(&src.y.data).enumerate() {
        let got = luma_from_rgb16(p.0, src.matrix, src.range, src.bit_depth);
        let want = y.clamp(lo, hi);
        if got != want {
            differing += 1;
            first.get_or_insert((k, got, want));
        }
    }
    Ok(first.map(|(k, got, want)| {
        format!(
            "the luma recovered from {} differs from the source's at {differing} pixels, first at x={} y={} ({got} where the source has {want})",
            path.display(),
            k % w.max(1),
            k / w.max(1)
        )
    }))
}

/// The frames of a sequence folder: (source frame, file), in order.
pub(crate) fn sequence_frames(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| farm_error(dir, format!("cannot be read: {e}")))?;
    let mut frames: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("frame_")?;
            let (digits, ext) = rest.split_once('.')?;
            if !matches!(ext, "png" | "tif") || digits.len() < 6 {
                return None;
            }
            Some((digits.parse().ok()?, e.path()))
        })
        .collect();
    frames.sort();
    Ok(frames)
}

/// The frame range a render recorded in a sequence folder, or else the one
/// its frame files span.
fn sequence_range(dir: &Path) -> Result<Option<(u64, u64)>> {
    let recorded = std::fs::read(dir.join(tincture_media::SEQUENCE_SETTINGS))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            let f = v.get("frames")?.as_array()?.clone();
            Some((f.first()?.as_u64()?, f.get(1)?.as_u64()?))
        });
    if recorded.is_some() {
        return Ok(recorded);
    }
    let frames = sequence_frames(dir)?;
    Ok(frames.first().zip(frames.last()).map(|(a, b)| (a.0, b.0)))
}
