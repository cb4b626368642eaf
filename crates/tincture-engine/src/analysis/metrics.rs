//! A clip's metrics, streamed frame by frame: flicker (warp error, CDC),
//! colourfulness and mean chroma, and with a reference clip of the true
//! colour PSNR, SSIM and CIEDE2000 against it ([`measure`]). The clip goes
//! through [`MetricsStream`], so memory stays flat however long it is.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tincture_core::video_metrics::{
    FrameMetrics, MetricsReport, MetricsStream, SeriesSummary, StreamOptions,
};
use tincture_media::VideoReader;

use super::plot::{Plot, report_plot};
use super::{FrameRange, file_name, frame_range, frames_label, rgb8, why_gray};
use crate::{Error, Result};

/// What to measure.
#[derive(Clone, Debug, Default)]
pub struct MetricsRequest {
    /// The clip to measure (a colorization, or any colour video).
    pub video: PathBuf,
    /// The true colour of the same clip, frame for frame: adds PSNR, SSIM
    /// and CIEDE2000. It must have the clip's length and frame size, and hold
    /// colour.
    pub reference: Option<PathBuf>,
    /// The frames to measure, inclusive; `None` for all of them.
    pub frames: Option<(u64, u64)>,
}

/// What [`measure`] found.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The clip measured.
    pub video: PathBuf,
    /// The reference it was measured against.
    pub reference: Option<PathBuf>,
    /// The frames asked for, inclusive.
    pub frames: (u64, u64),
    /// The figures, of every frame measured.
    pub report: MetricsReport,
    /// Whether the cancel flag stopped the run before the last frame; the
    /// report then covers the frames measured before it.
    pub stopped: bool,
}

/// What `tincture-cli metrics --json` writes: the report with the files it
/// measured.
#[derive(Serialize)]
pub struct MetricsJson<'a> {
    /// The clip, as given.
    pub video: String,
    /// The reference, as given.
    pub reference: Option<String>,
    /// The source frame index of the series' first value.
    pub first_frame: u64,
    /// The report's fields.
    #[serde(flatten)]
    pub report: &'a MetricsReport,
}

impl Measurement {
    /// "VIDEO against REFERENCE (frames A-B)", naming the files as given.
    pub fn title(&self) -> String {
        match &self.reference {
            Some(r) => format!(
                "{} against {} ({})",
                self.video.display(),
                r.display(),
                frames_label(self.frames)
            ),
            None => format!("{} ({})", self.video.display(), frames_label(self.frames)),
        }
    }

    /// The report with the files it measured.
    pub fn json(&self) -> MetricsJson<'_> {
        MetricsJson {
            video: self.video.display().to_string(),
            reference: self.reference.as_deref().map(|r| r.display().to_string()),
            first_frame: self.frames.0,
            report: &self.report,
        }
    }

    /// The report's plot, titled with the files' names.
    pub fn plot(&self) -> Plot<'_> {
        let title = match &self.reference {
            Some(r) => format!(
                "Tincture metrics: {} against {}, {}",
                file_name(&self.video),
                file_name(r),
                frames_label(self.frames)
            ),
            None => format!(
                "Tincture metrics: {}, {}",
                file_name(&self.video),
                frames_label(self.frames)
            ),
        };
        report_plot(title, &self.report, None, self.frames.0)
    }
}

/// Measures `req.video`, calling `progress(done, total)` after each frame
/// and stopping between frames once `cancel` is set.
///
/// # Errors
/// [`Error::Media`] or [`Error::Analysis`] when the clip cannot be read or
/// measured (it holds no frames, ends early); [`Error::FrameRange`] for
/// frames outside it; [`Error::ReferenceClip`] when the reference cannot be
/// opened, [`Error::Reference`] when it cannot be used (another length or
/// frame size, gray, ending early). Each names the file, and the frame
/// where there is one.
pub fn measure(
    req: &MetricsRequest,
    cancel: &AtomicBool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Measurement> {
    let video = VideoReader::open(&req.video)?;
    let range = frame_range(&req.video, req.frames, video.frame_count())?;
    let mut reference = match &req.reference {
        Some(path) => {
            let reader = VideoReader::open(path).map_err(Error::ReferenceClip)?;
            check_reference(&video, &reader)?;
            if let Some(reason) = why_gray(path, range)? {
                return Err(Error::Reference {
                    path: path.clone(),
                    reason,
                });
            }
            Some(FrameRange::new(reader, range))
        }
        None => None,
    };
    let total = range.1 - range.0 + 1;
    let mut frames = FrameRange::new(video, range);
    let mut stream = MetricsStream::new(StreamOptions::default());
    let (mut done, mut stopped) = (0, false);
    loop {
        if cancel.load(Ordering::Relaxed) {
            stopped = done < total;
            break;
        }
        let Some(f) = frames.next()? else { break };
        let rgb = rgb8(&f.frame);
        let luma = f.frame.luma_unit();
        let truth = match reference.as_mut() {
            Some(r) => {
                let reference_error = |r: &FrameRange, reason: String| Error::Reference {
                    path: r.path().to_owned(),
                    reason,
                };
                let Some(t) = r.next()? else {
                    return Err(reference_error(
                        r,
                        format!("frame {}: the reference ends early", f.index),
                    ));
                };
                if (t.frame.width(), t.frame.height()) != (rgb.width, rgb.height) {
                    return Err(reference_error(
                        r,
                        format!(
                            "frame {}: the reference frame is {}x{} but {}'s is {}x{}; a reference must be the same clip, frame for frame",
                            t.index,
                            t.frame.width(),
                            t.frame.height(),
                            req.video.display(),
                            rgb.width,
                            rgb.height
                        ),
                    ));
                }
                Some(rgb8(&t.frame))
            }
            None => None,
        };
        stream
            .push(&rgb, &luma.data, truth.as_ref())
            .map_err(|e| Error::Analysis {
                path: req.video.clone(),
                reason: format!("frame {}: {e}", f.index),
            })?;
        done += 1;
        progress(done, total);
    }
    Ok(Measurement {
        video: req.video.clone(),
        reference: req.reference.clone(),
        frames: range,
        report: stream.report(),
        stopped,
    })
}

/// Refuses a reference of another length or frame size than the clip.
fn check_reference(video: &VideoReader, reference: &VideoReader) -> Result<()> {
    let (v, r) = (&video.info().video, &reference.info().video);
    let refuse = |reason: String| Error::Reference {
        path: reference.path().to_owned(),
        reason,
    };
    let vp = video.path().display();
    if video.frame_count() != reference.frame_count() {
        return Err(refuse(format!(
            "the reference has {} frames but {vp} has {}; a reference must be the same clip, frame for frame",
            reference.frame_count(),
            video.frame_count()
        )));
    }
    if (v.width, v.height) != (r.width, r.height) {
        return Err(refuse(format!(
            "the reference's frames are {}x{} but {vp}'s are {}x{}; a reference must be the same clip at the same size",
            r.width, r.height, v.width, v.height
        )));
    }
    Ok(())
}

/// The mean flicker of frames measured one after another: warp error and
/// CDC, each averaged over the frames where it applies (as a report's
/// [`SeriesSummary::mean`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanFlicker {
    /// Mean warp error against the frame before.
    pub warp_error: f64,
    /// Mean CDC, where any frame has one.
    pub cdc: Option<f64>,
}

impl MeanFlicker {
    /// Of per-frame metrics in order; `None` before a warp error is known
    /// (fewer than two frames, or the flow follows no pixel).
    pub fn of(frames: &[FrameMetrics]) -> Option<Self> {
        let series = |f: fn(&FrameMetrics) -> Option<f64>| {
            SeriesSummary::of(frames.iter().map(f).collect(), false).mean
        };
        Some(Self {
            warp_error: series(|m| m.warp_error)?,
            cdc: series(|m| m.cdc),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(warp_error: Option<f64>, cdc: Option<f64>) -> FrameMetrics {
        FrameMetrics {
            warp_error,
            cdc,
            ..FrameMetrics::default()
        }
    }

    #[test]
    fn mean_flicker_skips_frames_without_a_value() {
        assert_eq!(MeanFlicker::of(&[]), None);
        assert_eq!(MeanFlicker::of(&[frame(None, None)]), None);
        let m = MeanFlicker::of(&[
            frame(None, None),
            frame(Some(0.002), None),
            frame(Some(0.004), Some(0.01)),
        ])
        .expect("two warp errors");
        assert!((m.warp_error - 0.003).abs() < 1e-12, "{m:?}");
        assert_eq!(m.cdc, Some(0.01));
    }
}
