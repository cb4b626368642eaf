//! Metrics of a whole clip: how much a colorization flickers, and, when the
//! true colour is known, how far it is from it, frame by frame.
//!
//! - **Warp error** (Lai et al. 2018, "Learning Blind Video Temporal
//!   Consistency"): frame t+1 is warped back onto frame t along the optical
//!   flow from t to t+1, and the squared RGB differences (values in 0..1,
//!   averaged over the three channels) are averaged over the pixels that the
//!   flow can follow. A pixel is followed when its destination lies inside
//!   the frame and the forward and backward flows agree
//!   (`|w_f + w_b|² < 0.01 (|w_f|² + |w_b|²) + 0.5`, Sundaram et al. 2010,
//!   with `w_b` sampled bilinearly at the destination).
//! - **CDC**, colour distribution consistency (Liu et al., "Temporally
//!   Consistent Video Colorization"): the Jensen-Shannon divergence (natural
//!   logarithm) between the 256-bin histograms of frames i and i+d, per RGB
//!   channel, for d in {1, 2, 4}; per channel the mean over frame pairs of
//!   each d, weighted 1/3 per d; the mean over the three channels.
//! - **Colourfulness** (Hasler & Süsstrunk's M3), per-frame mean CIE a\*,
//!   b\* and chroma, and against a reference: PSNR, SSIM and CIEDE2000
//!   (see [`crate::metrics`]).
//!
//! [`MetricsStream`] takes frames one at a time and can be read at any time,
//! so the GUI plots the series while frames are coloured, and an export
//! writes them beside its output. Optical flow comes from the frames' luma
//! ([`LumaFlow`]): a colorization never changes luma, so the source, the
//! colorized result and the ground truth share one flow field.

use serde::{Deserialize, Serialize};

use crate::flow::{FlowField, FlowParams, estimate_flow};
use crate::frame::RgbImage;
use crate::metrics::{PSNR_CAP_DB, ciede2000_mean, colorfulness, psnr_rgb, srgb8_to_ab, ssim};
use crate::{Error, Result};

/// Frame distances that CDC compares.
pub const CDC_STEPS: [usize; 3] = [1, 2, 4];

/// Normalised 256-bin histograms of the R, G and B channels of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelHistograms(pub [[f64; 256]; 3]);

/// Histograms of `image`'s R, G and B values, each summing to 1.
pub fn rgb_histograms(image: &RgbImage) -> ChannelHistograms {
    let mut counts = [[0u64; 256]; 3];
    for px in image.data.chunks_exact(3) {
        counts[0][usize::from(px[0])] += 1;
        counts[1][usize::from(px[1])] += 1;
        counts[2][usize::from(px[2])] += 1;
    }
    let n = (image.data.len() / 3).max(1) as f64;
    ChannelHistograms(counts.map(|c| c.map(|v| v as f64 / n)))
}

/// Jensen-Shannon divergence of two distributions, natural logarithm
/// (0 for equal ones, at most ln 2).
pub fn jensen_shannon(p: &[f64; 256], q: &[f64; 256]) -> f64 {
    let mut sum = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let m = 0.5 * (a + b);
        if a > 0.0 {
            sum += 0.5 * a * (a / m).ln();
        }
        if b > 0.0 {
            sum += 0.5 * b * (b / m).ln();
        }
    }
    sum
}

/// CDC of a clip from its frames' histograms, by the published definition;
/// `None` for fewer than two frames. A distance d with no frame pair (clips
/// of up to d frames) is left out and the others share its weight.
pub fn cdc(histograms: &[ChannelHistograms]) -> Option<f64> {
    let mut channels = 0.0;
    for c in 0..3 {
        let mut per_d = Vec::new();
        for d in CDC_STEPS {
            if histograms.len() > d {
                let pairs = histograms.len() - d;
                let s: f64 = (0..pairs)
                    .map(|i| jensen_shannon(&histograms[i].0[c], &histograms[i + d].0[c]))
                    .sum();
                per_d.push(s / pairs as f64);
            }
        }
        if per_d.is_empty() {
            return None;
        }
        channels += per_d.iter().sum::<f64>() / per_d.len() as f64;
    }
    Some(channels / 3.0)
}

/// Bilinear sample of a plane at `(x, y)`, which must lie inside it.
#[inline]
fn bilinear(get: impl Fn(usize, usize) -> f64, w: usize, h: usize, x: f64, y: f64) -> f64 {
    let x0 = (x.floor().max(0.0) as usize).min(w.saturating_sub(2));
    let y0 = (y.floor().max(0.0) as usize).min(h.saturating_sub(2));
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f64;
    let fy = y - y0 as f64;
    (1.0 - fx) * (1.0 - fy) * get(x0, y0)
        + fx * (1.0 - fy) * get(x1, y0)
        + (1.0 - fx) * fy * get(x0, y1)
        + fx * fy * get(x1, y1)
}

/// Which pixels of frame t the flow follows into frame t+1: the destination
/// is inside the frame and the forward and backward flows agree. `forward`
/// is the flow t → t+1, `backward` the flow t+1 → t.
///
/// # Errors
/// [`Error::SizeMismatch`] when the fields differ in size.
pub fn visible_mask(forward: &FlowField, backward: &FlowField) -> Result<Vec<bool>> {
    let (w, h) = (forward.width, forward.height);
    if (backward.width, backward.height) != (w, h) {
        return Err(Error::SizeMismatch {
            what: format!(
                "the forward flow is {w}x{h} but the backward flow is {}x{}",
                backward.width, backward.height
            ),
        });
    }
    let (xmax, ymax) = ((w as f64) - 1.0, (h as f64) - 1.0);
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (u, v) = (f64::from(forward.u[i]), f64::from(forward.v[i]));
            let (qx, qy) = (x as f64 + u, y as f64 + v);
            if !(qx >= 0.0 && qx <= xmax && qy >= 0.0 && qy <= ymax) {
                continue;
            }
            let bu = bilinear(|x, y| f64::from(backward.u[y * w + x]), w, h, qx, qy);
            let bv = bilinear(|x, y| f64::from(backward.v[y * w + x]), w, h, qx, qy);
            let lhs = (u + bu).powi(2) + (v + bv).powi(2);
            let rhs = 0.01 * (u * u + v * v + bu * bu + bv * bv) + 0.5;
            mask[i] = lhs < rhs;
        }
    }
    Ok(mask)
}

/// Warp error between frames t and t+1 given the flows t → t+1 (`forward`)
/// and t+1 → t (`backward`); `None` when the flow follows no pixel.
///
/// # Errors
/// [`Error::SizeMismatch`] when frames and flows differ in size.
pub fn warp_error(
    frame_t: &RgbImage,
    frame_t1: &RgbImage,
    forward: &FlowField,
    backward: &FlowField,
) -> Result<Option<f64>> {
    let (w, h) = (frame_t.width, frame_t.height);
    let same = |a: (usize, usize), what: &str| {
        if a == (w, h) {
            Ok(())
        } else {
            Err(Error::SizeMismatch {
                what: format!("frame t is {w}x{h} but {what} is {}x{}", a.0, a.1),
            })
        }
    };
    same((frame_t1.width, frame_t1.height), "frame t+1")?;
    same((forward.width, forward.height), "the forward flow")?;
    if frame_t.data.len() != w * h * 3 || frame_t1.data.len() != w * h * 3 {
        return Err(Error::SizeMismatch {
            what: "a frame buffer does not hold width * height * 3 bytes".into(),
        });
    }
    let mask = visible_mask(forward, backward)?;
    let (mut sum, mut count) = (0.0f64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !mask[i] {
                continue;
            }
            let qx = x as f64 + f64::from(forward.u[i]);
            let qy = y as f64 + f64::from(forward.v[i]);
            let mut e = 0.0;
            for c in 0..3 {
                let warped = bilinear(
                    |x, y| f64::from(frame_t1.data[3 * (y * w + x) + c]),
                    w,
                    h,
                    qx,
                    qy,
                );
                let d = (f64::from(frame_t.data[3 * i + c]) - warped) / 255.0;
                e += d * d;
            }
            sum += e / 3.0;
            count += 1;
        }
    }
    Ok((count > 0).then(|| sum / count as f64))
}

/// Mean CIE a\*, mean b\* and mean chroma `√(a*² + b*²)` of a picture.
pub fn lab_means(image: &RgbImage) -> [f64; 3] {
    let (mut sa, mut sb, mut sc) = (0.0, 0.0, 0.0);
    for px in image.data.chunks_exact(3) {
        let [a, b] = srgb8_to_ab([px[0], px[1], px[2]]);
        sa += a;
        sb += b;
        // |a|, |b| < 200: no overflow for hypot to guard against.
        sc += (a * a + b * b).sqrt();
    }
    let n = (image.data.len() / 3).max(1) as f64;
    [sa / n, sb / n, sc / n]
}

/// Forward and backward flow between two consecutive frames.
#[derive(Clone, Debug)]
pub struct FlowPair {
    /// Frame t → t+1.
    pub forward: FlowField,
    /// Frame t+1 → t.
    pub backward: FlowField,
}

/// Computes the flow between consecutive frames from their luma.
#[derive(Clone, Debug)]
pub struct LumaFlow {
    params: FlowParams,
    previous: Option<(usize, usize, Vec<f32>)>,
}

impl LumaFlow {
    /// A tracker with the given flow settings.
    pub fn new(params: FlowParams) -> Self {
        Self {
            params,
            previous: None,
        }
    }

    /// Takes the next frame's luma (`width * height` values) and returns the
    /// flow pair between the previous frame and this one (`None` for the
    /// first frame, or after a size change, which starts afresh).
    pub fn push(&mut self, luma: &[f32], width: usize, height: usize) -> Option<FlowPair> {
        let out = match &self.previous {
            Some((w, h, prev)) if (*w, *h) == (width, height) => Some(FlowPair {
                forward: estimate_flow(prev, luma, width, height, &self.params),
                backward: estimate_flow(luma, prev, width, height, &self.params),
            }),
            _ => None,
        };
        self.previous = Some((width, height, luma.to_vec()));
        out
    }
}

/// BT.601 luma of an 8-bit RGB picture, unit range: the gray that flow is
/// computed on when only RGB is at hand.
pub fn luma_of_rgb(image: &RgbImage) -> Vec<f32> {
    image
        .data
        .chunks_exact(3)
        .map(|p| {
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) / 255.0
        })
        .collect()
}

/// The metrics of one frame. Temporal metrics are `None` for the first frame
/// (nothing to compare with); reference metrics are `None` without a
/// reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameMetrics {
    /// Frame index, 0-based.
    pub index: u64,
    /// Warp error between the previous frame and this one.
    pub warp_error: Option<f64>,
    /// Mean Jensen-Shannon divergence between this frame's histograms and
    /// those of the frames 1, 2 and 4 before it (over channels and the
    /// distances available).
    pub cdc: Option<f64>,
    /// Colourfulness (M3).
    pub colorfulness: f64,
    /// Mean a\*.
    pub mean_a: f64,
    /// Mean b\*.
    pub mean_b: f64,
    /// Mean chroma.
    pub mean_chroma: f64,
    /// PSNR against the reference, dB, capped at [`PSNR_CAP_DB`].
    pub psnr: Option<f64>,
    /// SSIM against the reference.
    pub ssim: Option<f64>,
    /// Mean CIEDE2000 against the reference.
    pub ciede2000: Option<f64>,
}

/// Which metrics a [`MetricsStream`] computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamOptions {
    /// Flow settings for the warp error.
    pub flow: FlowParams,
    /// Compute the warp error (the costliest metric: two flows per frame).
    pub warp_error: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            flow: FlowParams::default(),
            warp_error: true,
        }
    }
}

/// Push frames, read the per-frame series at any time.
#[derive(Debug)]
pub struct MetricsStream {
    options: StreamOptions,
    flow: LumaFlow,
    size: Option<(usize, usize)>,
    previous: Option<RgbImage>,
    /// Histograms of the last `max(CDC_STEPS)` frames, oldest first.
    recent: Vec<ChannelHistograms>,
    /// Per channel and distance: sum of divergences and pair count, for the
    /// clip's CDC.
    cdc_sums: [[(f64, u64); 3]; 3],
    frames: Vec<FrameMetrics>,
}

impl MetricsStream {
    /// An empty stream.
    pub fn new(options: StreamOptions) -> Self {
        Self {
            options,
            flow: LumaFlow::new(options.flow),
            size: None,
            previous: None,
            recent: Vec::new(),
            cdc_sums: [[(0.0, 0); 3]; 3],
            frames: Vec::new(),
        }
    }

    /// Adds the next frame; the flow for the warp error is computed from
    /// `luma` (unit range, `width * height` values: the frame's Y' plane, or
    /// [`luma_of_rgb`]).
    ///
    /// # Errors
    /// As [`MetricsStream::push_with_flow`].
    pub fn push(
        &mut self,
        frame: &RgbImage,
        luma: &[f32],
        reference: Option<&RgbImage>,
    ) -> Result<&FrameMetrics> {
        self.check_size(frame)?;
        if luma.len() != frame.width * frame.height {
            return Err(Error::SizeMismatch {
                what: format!(
                    "frame {} is {}x{} but its luma holds {} values",
                    self.frames.len(),
                    frame.width,
                    frame.height,
                    luma.len()
                ),
            });
        }
        let flows = if self.options.warp_error {
            self.flow.push(luma, frame.width, frame.height)
        } else {
            None
        };
        self.push_with_flow(frame, reference, flows.as_ref())
    }

    /// Adds the next frame with the flows between the previous frame and
    /// this one computed elsewhere (one flow can serve several streams, or
    /// come from another flow method).
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the frame's size differs from the first
    /// frame's or the reference's, or a buffer is malformed.
    pub fn push_with_flow(
        &mut self,
        frame: &RgbImage,
        reference: Option<&RgbImage>,
        flows: Option<&FlowPair>,
    ) -> Result<&FrameMetrics> {
        self.check_size(frame)?;
        let index = self.frames.len() as u64;
        let mut m = FrameMetrics {
            index,
            colorfulness: colorfulness(frame)?,
            ..FrameMetrics::default()
        };
        [m.mean_a, m.mean_b, m.mean_chroma] = lab_means(frame);
        if let (Some(prev), Some(f)) = (&self.previous, flows) {
            m.warp_error = warp_error(prev, frame, &f.forward, &f.backward)?;
        }
        // CDC against the frames 1, 2 and 4 back.
        let hist = rgb_histograms(frame);
        let mut terms = Vec::new();
        for (k, d) in CDC_STEPS.into_iter().enumerate() {
            if self.recent.len() >= d {
                let old = &self.recent[self.recent.len() - d];
                for c in 0..3 {
                    let j = jensen_shannon(&old.0[c], &hist.0[c]);
                    self.cdc_sums[c][k].0 += j;
                    self.cdc_sums[c][k].1 += 1;
                    terms.push(j);
                }
            }
        }
        if !terms.is_empty() {
            m.cdc = Some(terms.iter().sum::<f64>() / terms.len() as f64);
        }
        self.recent.push(hist);
        let keep = CDC_STEPS[CDC_STEPS.len() - 1];
        if self.recent.len() > keep {
            self.recent.remove(0);
        }
        if let Some(r) = reference {
            if (r.width, r.height) != (frame.width, frame.height) {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "frame {index} is {}x{} but the reference frame is {}x{}",
                        frame.width, frame.height, r.width, r.height
                    ),
                });
            }
            m.psnr = Some(psnr_rgb(frame, r)?.min(PSNR_CAP_DB));
            m.ssim = Some(ssim(frame, r)?);
            m.ciede2000 = Some(ciede2000_mean(frame, r)?);
        }
        self.previous = Some(frame.clone());
        self.frames.push(m);
        Ok(&self.frames[self.frames.len() - 1])
    }

    fn check_size(&mut self, frame: &RgbImage) -> Result<()> {
        if frame.data.len() != frame.width * frame.height * 3 {
            return Err(Error::SizeMismatch {
                what: format!(
                    "frame {} is {}x{} but holds {} bytes",
                    self.frames.len(),
                    frame.width,
                    frame.height,
                    frame.data.len()
                ),
            });
        }
        match self.size {
            Some(s) if s != (frame.width, frame.height) => Err(Error::SizeMismatch {
                what: format!(
                    "frame {} is {}x{} but the clip's first frame is {}x{}",
                    self.frames.len(),
                    frame.width,
                    frame.height,
                    s.0,
                    s.1
                ),
            }),
            _ => {
                self.size = Some((frame.width, frame.height));
                Ok(())
            }
        }
    }

    /// The frames pushed so far.
    pub fn frames(&self) -> &[FrameMetrics] {
        &self.frames
    }

    /// The clip's CDC so far, by the published definition (`None` before the
    /// second frame).
    pub fn clip_cdc(&self) -> Option<f64> {
        let mut total = 0.0;
        for c in 0..3 {
            let means: Vec<f64> = self.cdc_sums[c]
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| s / *n as f64)
                .collect();
            if means.is_empty() {
                return None;
            }
            total += means.iter().sum::<f64>() / means.len() as f64;
        }
        Some(total / 3.0)
    }

    /// Summaries and series of every metric so far.
    pub fn report(&self) -> MetricsReport {
        let series = |f: fn(&FrameMetrics) -> Option<f64>, higher: bool| {
            SeriesSummary::of(self.frames.iter().map(f).collect(), higher)
        };
        let has_reference = self.frames.first().is_some_and(|m| m.psnr.is_some());
        let mut notes = Vec::new();
        if self.frames.len() < 2 {
            notes.push(
                "warp_error and cdc compare consecutive frames; a clip of one frame has none, \
                 so they are not applicable"
                    .to_string(),
            );
        }
        let mut cdc = series(|m| m.cdc, false);
        cdc.clip = self.clip_cdc();
        let mut warp = series(|m| m.warp_error, false);
        warp.clip = warp.mean;
        MetricsReport {
            frames: self.frames.len(),
            warp_error: warp,
            cdc,
            colorfulness: series(|m| Some(m.colorfulness), true),
            mean_a: series(|m| Some(m.mean_a), true),
            mean_b: series(|m| Some(m.mean_b), true),
            mean_chroma: series(|m| Some(m.mean_chroma), true),
            psnr: has_reference.then(|| series(|m| m.psnr, true)),
            ssim: has_reference.then(|| series(|m| m.ssim, true)),
            ciede2000: has_reference.then(|| series(|m| m.ciede2000, false)),
            notes,
        }
    }
}

/// One metric over a clip: its per-frame series and summary statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// Mean over the frames where the metric applies (`None` if none).
    pub mean: Option<f64>,
    /// Median over the same frames.
    pub median: Option<f64>,
    /// The worst 5% boundary: the 95th percentile for metrics where lower
    /// is better, the 5th percentile where higher is better (linear
    /// interpolation between frames, as numpy's default).
    pub p95: Option<f64>,
    /// The value for each frame, `None` where it does not apply.
    pub per_frame: Vec<Option<f64>>,
    /// The clip-level figure where the metric's definition differs from
    /// the mean of the series (CDC) or equals it (warp error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
    /// Whether higher values are better.
    pub higher_is_better: bool,
}

impl SeriesSummary {
    /// Summarises a series.
    pub fn of(per_frame: Vec<Option<f64>>, higher_is_better: bool) -> Self {
        let mut v: Vec<f64> = per_frame.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let median = percentile(&v, 50.0);
        let p95 = percentile(&v, if higher_is_better { 5.0 } else { 95.0 });
        Self {
            mean,
            median,
            p95,
            per_frame,
            clip: None,
            higher_is_better,
        }
    }

    /// Frame indices ordered worst first (frames without a value left out).
    pub fn worst_frames(&self, count: usize) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self
            .per_frame
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.map(|x| (i, x)))
            .collect();
        if self.higher_is_better {
            v.sort_by(|a, b| a.1.total_cmp(&b.1));
        } else {
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
        }
        v.truncate(count);
        v
    }
}

/// Percentile `q` (0..100) of sorted values with linear interpolation.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    match sorted.len() {
        0 => None,
        1 => Some(sorted[0]),
        n => {
            let pos = q / 100.0 * (n - 1) as f64;
            let i = (pos.floor() as usize).min(n - 2);
            let f = pos - i as f64;
            Some(sorted[i] + f * (sorted[i + 1] - sorted[i]))
        }
    }
}

/// Every metric of a clip; what `tincture-cli metrics --json` writes and an
/// export records beside its output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Frames measured.
    pub frames: usize,
    /// Warp error (lower is better).
    pub warp_error: SeriesSummary,
    /// Colour distribution consistency (lower is better).
    pub cdc: SeriesSummary,
    /// Colourfulness M3.
    pub colorfulness: SeriesSummary,
    /// Mean a\* per frame.
    pub mean_a: SeriesSummary,
    /// Mean b\* per frame.
    pub mean_b: SeriesSummary,
    /// Mean chroma per frame.
    pub mean_chroma: SeriesSummary,
    /// PSNR against the reference (present with a reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr: Option<SeriesSummary>,
    /// SSIM against the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim: Option<SeriesSummary>,
    /// CIEDE2000 against the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciede2000: Option<SeriesSummary>,
    /// Remarks, such as metrics that do not apply.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured colour picture shifted right by `dx` whole pixels, with
    /// the uncovered strip filled from a fixed colour.
    fn scene(w: usize, h: usize, dx: usize, tint: u8) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let sx = x as i64 - dx as i64;
                let v = if sx < 0 {
                    [40, 40, 40]
                } else {
                    let sx = sx as usize;
                    [
                        ((sx * 7 + y * 3) % 200) as u8 + 20,
                        ((sx * 3 + y * 11) % 180) as u8 + 30,
                        tint.wrapping_add(((sx ^ y) % 60) as u8),
                    ]
                };
                data.extend_from_slice(&v);
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    fn shift_flow(w: usize, h: usize, u: f32) -> FlowField {
        let mut f = FlowField::zero(w, h);
        f.u.fill(u);
        f
    }

    #[test]
    fn warp_error_is_zero_for_motion_followed_exactly_and_sees_flicker() {
        let (w, h) = (48, 32);
        let a = scene(w, h, 0, 10);
        let b = scene(w, h, 3, 10);
        let e = warp_error(&a, &b, &shift_flow(w, h, 3.0), &shift_flow(w, h, -3.0))
            .expect("sizes")
            .expect("pixels followed");
        assert!(e < 1e-12, "{e}");
        // The same motion with the blue channel flickering by 30 codes.
        let c = scene(w, h, 3, 40);
        let e = warp_error(&a, &c, &shift_flow(w, h, 3.0), &shift_flow(w, h, -3.0))
            .expect("sizes")
            .expect("pixels followed");
        let expected = (30.0f64 / 255.0).powi(2) / 3.0;
        assert!((e - expected).abs() < 1e-12, "{e} vs {expected}");
        // Ignoring the motion reads it as flicker.
        let wrong = warp_error(&a, &b, &FlowField::zero(w, h), &FlowField::zero(w, h))
            .expect("sizes")
            .expect("pixels");
        assert!(wrong > 1e-3, "{wrong}");
    }

    #[test]
    fn inconsistent_flow_marks_pixels_occluded() {
        let (w, h) = (20, 10);
        let fw = shift_flow(w, h, 2.0);
        let mask = visible_mask(&fw, &shift_flow(w, h, -2.0)).expect("mask");
        // The last two columns move out of the frame.
        assert_eq!(mask.iter().filter(|&&m| m).count(), (w - 2) * h);
        let mask = visible_mask(&fw, &shift_flow(w, h, 2.0)).expect("mask");
        assert!(mask.iter().all(|&m| !m), "forward and backward disagree");
        let none = warp_error(
            &scene(w, h, 0, 0),
            &scene(w, h, 0, 0),
            &fw,
            &shift_flow(w, h, 2.0),
        )
        .expect("sizes");
        assert_eq!(none, None);
    }

    #[test]
    fn jensen_shannon_and_cdc_known_values() {
        let mut p = [0.0; 256];
        let mut q = [0.0; 256];
        p[0] = 1.0;
        q[255] = 1.0;
        assert!((jensen_shannon(&p, &q) - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(jensen_shannon(&p, &p), 0.0);
        // Frames alternating between two disjoint pictures: every odd
        // distance gives ln 2, every even one 0.
        let black = rgb_histograms(&RgbImage {
            width: 1,
            height: 1,
            data: vec![0, 0, 0],
        });
        let white = rgb_histograms(&RgbImage {
            width: 1,
            height: 1,
            data: vec![255, 255, 255],
        });
        let clip: Vec<_> = (0..9)
            .map(|i| {
                if i % 2 == 0 {
                    black.clone()
                } else {
                    white.clone()
                }
            })
            .collect();
        let v = cdc(&clip).expect("cdc");
        assert!((v - std::f64::consts::LN_2 / 3.0).abs() < 1e-15, "{v}");
        assert_eq!(cdc(&clip[..1]), None);
        // Two frames: only d = 1 exists.
        assert!((cdc(&clip[..2]).expect("cdc") - std::f64::consts::LN_2).abs() < 1e-15);
    }

    #[test]
    fn stream_matches_the_batch_definitions_and_summarises() {
        let (w, h) = (40, 24);
        let frames: Vec<RgbImage> = (0..7).map(|i| scene(w, h, i, (i * 9) as u8)).collect();
        let mut s = MetricsStream::new(StreamOptions::default());
        for (i, f) in frames.iter().enumerate() {
            let flows = (i > 0).then(|| FlowPair {
                forward: shift_flow(w, h, 1.0),
                backward: shift_flow(w, h, -1.0),
            });
            s.push_with_flow(f, Some(&frames[0]), flows.as_ref())
                .expect("push");
        }
        let hists: Vec<_> = frames.iter().map(rgb_histograms).collect();
        let r = s.report();
        assert!((r.cdc.clip.expect("clip") - cdc(&hists).expect("cdc")).abs() < 1e-15);
        assert_eq!(r.frames, 7);
        assert_eq!(r.warp_error.per_frame[0], None);
        let expected = warp_error(
            &frames[2],
            &frames[3],
            &shift_flow(w, h, 1.0),
            &shift_flow(w, h, -1.0),
        )
        .expect("sizes");
        assert_eq!(r.warp_error.per_frame[3], expected);
        let psnr = r.psnr.as_ref().expect("reference given");
        assert_eq!(psnr.per_frame[0], Some(PSNR_CAP_DB));
        assert_eq!(r.ciede2000.as_ref().expect("ref").per_frame[0], Some(0.0));
        // Worst PSNR frames are the last ones (furthest from frame 0).
        assert_eq!(psnr.worst_frames(1)[0].0, 6);
        assert!(r.notes.is_empty());
    }

    #[test]
    fn one_frame_clips_and_size_changes() {
        let mut s = MetricsStream::new(StreamOptions::default());
        let f = scene(16, 16, 0, 0);
        s.push(&f, &luma_of_rgb(&f), None).expect("push");
        let r = s.report();
        assert_eq!(r.warp_error.mean, None);
        assert_eq!(r.cdc.clip, None);
        assert!(!r.notes.is_empty());
        let other = scene(17, 16, 0, 0);
        let err = s
            .push(&other, &luma_of_rgb(&other), None)
            .expect_err("size change");
        assert!(err.to_string().contains("frame 1 is 17x16"), "{err}");
    }

    #[test]
    fn percentiles_follow_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile(&v, 50.0), Some(3.0));
        assert!((percentile(&v, 95.0).expect("p") - 8.8).abs() < 1e-12);
        assert!((percentile(&v, 5.0).expect("p") - 1.2).abs() < 1e-12);
        let s = SeriesSummary::of(vec![Some(5.0), None, Some(1.0)], true);
        assert_eq!(s.mean, Some(3.0));
        assert_eq!(s.worst_frames(5), vec![(2, 1.0), (0, 5.0)]);
    }
}
