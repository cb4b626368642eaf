//! Reference-based colour transfer in the manner of Welsh, Ashikhmin &
//! Mueller, "Transferring Color to Greyscale Images" (SIGGRAPH 2002).
//!
//! The archivist supplies a colour photograph of a similar scene (or a frame
//! they coloured by hand). A jittered grid of samples is taken from it, each
//! remembering its luminance, the standard deviation of luminance around it
//! (a cheap texture measure) and its chroma. For every frame the samples'
//! luminances are remapped to the frame's luma statistics, each pixel takes
//! the chroma of the sample that best matches its (luma, local std-dev), and
//! the result is cleaned up with a guided filter steered by the frame's own
//! luma, so colour follows the picture's edges. Finally each pixel's chroma is
//! limited to the RGB gamut at that pixel's luma, so an RGB export never
//! clips (clipping would alter the luma, which is sacred).
//!
//! Matching is O(1) per pixel: per frame a lookup table over quantised
//! (luma, std-dev) holds the best sample of every cell, filled lazily for the
//! cells the frame actually uses.

use crate::color::Matrix;
use crate::colorize::Colorizer;
use crate::frame::{ChromaField, LumaImage, RgbImage};
use crate::guided::{BoxScratch, GuidedFilter, box_mean_into};
use crate::{Error, Result};

/// Name of this engine in logs and metadata.
pub const ENGINE_NAME: &str = "reference-transfer";

/// A reference whose mean chroma magnitude `sqrt(cb² + cr²)` lies below this
/// is refused as grayscale.
pub const GRAYSCALE_CHROMA_THRESHOLD: f32 = 0.02;

/// Smallest reference side accepted, in pixels.
pub const MIN_REFERENCE_SIDE: usize = 8;

/// The reference is box-downscaled until its longer side is at most this.
pub const MAX_ANALYSIS_SIDE: usize = 512;

/// Upper bound on [`TransferSettings::samples`]; larger values are clamped.
pub const MAX_SAMPLES: usize = 4096;

/// Luminance bins of the per-frame lookup table.
const L_BINS: usize = 256;
/// Std-dev bins of the per-frame lookup table (spaced on a square-root scale,
/// so low-texture areas, the common case, are resolved finely).
const S_BINS: usize = 64;
/// Marks a lookup-table cell not computed yet.
const UNSET: u32 = u32::MAX;

/// What controls a [`ReferenceColorizer`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TransferSettings {
    /// About how many samples to take from the reference (jittered grid),
    /// 1 ..= [`MAX_SAMPLES`].
    pub samples: usize,
    /// Radius of the neighbourhood over which the local std-dev of
    /// luminance is measured: 2 means 5x5.
    pub window: usize,
    /// Weight of the luminance difference in the matching metric, 0..1; the
    /// std-dev difference gets the rest.
    pub luminance_weight: f32,
    /// Radius of the guided filter that cleans up the chroma.
    pub smoothing_radius: usize,
    /// Regularisation of the guided filter (luma variance below which the
    /// chroma is simply averaged).
    pub smoothing_eps: f32,
    /// Seed of the sample jitter.
    pub seed: u64,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            samples: 256,
            window: 2,
            luminance_weight: 0.5,
            smoothing_radius: 8,
            smoothing_eps: 1e-3,
            seed: 0,
        }
    }
}

/// One sample of the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    /// Y' at the sample (with the analysis matrix).
    luma: f32,
    /// Std-dev of Y' over the window around it.
    sigma: f32,
    /// The sample's non-linear R'G'B' (0..1), so its chroma can be expressed
    /// in whatever matrix a frame is encoded with.
    rgb: [f32; 3],
}

/// Reusable per-frame buffers. They never carry information from one frame
/// to the next: every one is fully rewritten before it is read.
#[derive(Debug)]
struct Scratch {
    luma: Vec<f32>,
    luma_sq: Vec<f32>,
    mean: Vec<f32>,
    mean_sq: Vec<f32>,
    cb: Vec<f32>,
    cr: Vec<f32>,
    boxes: BoxScratch,
    filter: GuidedFilter,
    lut: Vec<u32>,
    /// Weighted squared luminance distance, `L_BINS x samples`.
    cost_l: Vec<f32>,
    /// Weighted squared std-dev distance, `S_BINS x samples`.
    cost_s: Vec<f32>,
    sample_cb: Vec<f32>,
    sample_cr: Vec<f32>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            luma: Vec::new(),
            luma_sq: Vec::new(),
            mean: Vec::new(),
            mean_sq: Vec::new(),
            cb: Vec::new(),
            cr: Vec::new(),
            boxes: BoxScratch::default(),
            filter: GuidedFilter::new(&[], 0, 0, 0, 0.0),
            lut: Vec::new(),
            cost_l: Vec::new(),
            cost_s: Vec::new(),
            sample_cb: Vec::new(),
            sample_cr: Vec::new(),
        }
    }
}

/// Colour transfer from a reference photograph (Welsh et al. 2002), with a
/// guided-filter clean-up and a gamut limit.
///
/// Deterministic: the output depends only on the reference, the settings and
/// the frame's luma and matrix; nothing is carried from frame to frame.
#[derive(Debug)]
pub struct ReferenceColorizer {
    settings: TransferSettings,
    analysis_matrix: Matrix,
    reference_width: usize,
    reference_height: usize,
    reference_hash: u64,
    analysis_size: (usize, usize),
    mean_chroma: f32,
    samples: Vec<Sample>,
    /// Mean and std-dev of the samples' luminances.
    sample_mean: f32,
    sample_std: f32,
    scratch: Scratch,
}

impl ReferenceColorizer {
    /// Analyses `reference` (8-bit sRGB) with `matrix` and takes the samples.
    ///
    /// # Errors
    /// [`Error::TooSmall`] for a reference under 8x8 pixels,
    /// [`Error::SizeMismatch`] when its data is not `width * height * 3`
    /// bytes, and [`Error::GrayscaleReference`] when it carries no colour.
    pub fn new(reference: &RgbImage, matrix: Matrix, settings: TransferSettings) -> Result<Self> {
        let (w, h) = (reference.width, reference.height);
        if w < MIN_REFERENCE_SIDE || h < MIN_REFERENCE_SIDE {
            return Err(Error::TooSmall {
                width: w,
                height: h,
                min: MIN_REFERENCE_SIDE,
            });
        }
        if w.checked_mul(h).and_then(|n| n.checked_mul(3)) != Some(reference.data.len()) {
            return Err(Error::SizeMismatch {
                what: format!(
                    "reference image of {w}x{h} needs {} bytes, has {}",
                    w.saturating_mul(h).saturating_mul(3),
                    reference.data.len()
                ),
            });
        }

        let (aw, ah, rgb) = downscale(reference);
        let n = aw * ah;
        let mut luma = Vec::with_capacity(n);
        let mut chroma_sum = 0.0f64;
        for px in &rgb {
            let [y, cb, cr] = matrix.rgb_to_ycbcr(*px);
            luma.push(y);
            chroma_sum += f64::from((cb * cb + cr * cr).sqrt());
        }
        let mean_chroma = (chroma_sum / n as f64) as f32;
        if mean_chroma < GRAYSCALE_CHROMA_THRESHOLD {
            return Err(Error::GrayscaleReference { mean_chroma });
        }

        let sigma = local_std(&luma, aw, ah, settings.window, &mut BoxScratch::default());
        let samples = take_samples(&luma, &sigma, &rgb, aw, ah, settings.samples, settings.seed);
        let (sample_mean, sample_std) = mean_std(samples.iter().map(|s| s.luma));

        Ok(Self {
            settings,
            analysis_matrix: matrix,
            reference_width: w,
            reference_height: h,
            reference_hash: fnv1a64(reference),
            analysis_size: (aw, ah),
            mean_chroma,
            samples,
            sample_mean,
            sample_std,
            scratch: Scratch::new(),
        })
    }

    /// The settings this colorizer was made with.
    pub fn transfer_settings(&self) -> &TransferSettings {
        &self.settings
    }

    /// How many samples were taken from the reference.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Mean chroma magnitude of the (downscaled) reference.
    pub fn reference_mean_chroma(&self) -> f32 {
        self.mean_chroma
    }

    /// FNV-1a 64 hash of the reference's size and bytes.
    pub fn reference_hash(&self) -> u64 {
        self.reference_hash
    }
}

impl Colorizer for ReferenceColorizer {
    fn name(&self) -> &str {
        ENGINE_NAME
    }

    fn settings(&self) -> serde_json::Value {
        let settings = serde_json::to_value(&self.settings).unwrap_or(serde_json::Value::Null);
        let matrix = serde_json::to_value(self.analysis_matrix).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "engine": ENGINE_NAME,
            "settings": settings,
            "reference": {
                "width": self.reference_width,
                "height": self.reference_height,
                "analysis_width": self.analysis_size.0,
                "analysis_height": self.analysis_size.1,
                "matrix": matrix,
                "fnv1a64": format!("{:016x}", self.reference_hash),
            },
        })
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        _frame_index: u64,
        matrix: Matrix,
    ) -> Result<ChromaField> {
        let (w, h) = (luma.width, luma.height);
        if w.checked_mul(h) != Some(luma.data.len()) {
            return Err(Error::SizeMismatch {
                what: format!("luma of {w}x{h} holds {} values", luma.data.len()),
            });
        }
        let n = luma.data.len();
        if n == 0 || self.samples.is_empty() {
            return Ok(ChromaField::neutral(w, h));
        }
        let settings = &self.settings;
        let s = &mut self.scratch;

        // Sanitised luma (non-finite values read as black) and its square.
        s.luma.clear();
        s.luma.extend(
            luma.data
                .iter()
                .map(|&v| if v.is_finite() { v } else { 0.0 }),
        );
        s.luma_sq.clear();
        s.luma_sq.extend(s.luma.iter().map(|&v| v * v));

        // Frame statistics for the luminance remapping and the table range.
        let (frame_mean, frame_std) = mean_std(s.luma.iter().copied());
        let (l_min, l_max) = s
            .luma
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });

        // Local std-dev of the frame's luma, O(N) by box means of Y' and Y'^2.
        for buf in [&mut s.mean, &mut s.mean_sq] {
            buf.clear();
            buf.resize(n, 0.0);
        }
        box_mean_into(&s.luma, w, h, settings.window, &mut s.boxes, &mut s.mean);
        box_mean_into(
            &s.luma_sq,
            w,
            h,
            settings.window,
            &mut s.boxes,
            &mut s.mean_sq,
        );
        // `mean_sq` becomes sigma.
        let mut sigma_max = 0.0f32;
        for (m2, &m) in s.mean_sq.iter_mut().zip(&s.mean) {
            let sd = (*m2 - m * m).max(0.0).sqrt();
            *m2 = sd;
            sigma_max = sigma_max.max(sd);
        }

        // Welsh's luminance remapping: the samples' luma (and with it their
        // local std-dev) scaled and shifted to the frame's mean and std-dev.
        let ratio = if self.sample_std > 1e-6 {
            frame_std / self.sample_std
        } else {
            1.0
        };
        let wl = settings.luminance_weight.clamp(0.0, 1.0);
        let ws = 1.0 - wl;
        let ns = self.samples.len();

        // Per-bin partial costs and per-sample chroma in the frame's matrix.
        let l_range = l_max - l_min;
        let l_scale = if l_range > 1e-9 {
            (L_BINS - 1) as f32 / l_range
        } else {
            0.0
        };
        let s_scale = if sigma_max > 1e-9 {
            1.0 / sigma_max
        } else {
            0.0
        };
        s.cost_l.clear();
        for i in 0..L_BINS {
            let l = l_min + l_range * i as f32 / (L_BINS - 1) as f32;
            s.cost_l.extend(self.samples.iter().map(|smp| {
                let d = l - ((smp.luma - self.sample_mean) * ratio + frame_mean);
                wl * d * d
            }));
        }
        s.cost_s.clear();
        for j in 0..S_BINS {
            let q = j as f32 / (S_BINS - 1) as f32;
            let sd = sigma_max * q * q;
            s.cost_s.extend(self.samples.iter().map(|smp| {
                let d = sd - smp.sigma * ratio;
                ws * d * d
            }));
        }
        s.sample_cb.clear();
        s.sample_cr.clear();
        for smp in &self.samples {
            let [_, cb, cr] = matrix.rgb_to_ycbcr(smp.rgb);
            s.sample_cb.push(cb);
            s.sample_cr.push(cr);
        }

        // O(1) per pixel: quantise (luma, sigma), look up (or fill) the cell.
        s.lut.clear();
        s.lut.resize(L_BINS * S_BINS, UNSET);
        s.cb.clear();
        s.cb.resize(n, 0.0);
        s.cr.clear();
        s.cr.resize(n, 0.0);
        for i in 0..n {
            // Float-to-int casts saturate, so these never go out of range.
            let li = (((s.luma[i] - l_min) * l_scale + 0.5) as usize).min(L_BINS - 1);
            let sj = (((s.mean_sq[i] * s_scale).sqrt() * (S_BINS - 1) as f32 + 0.5) as usize)
                .min(S_BINS - 1);
            let cell = li * S_BINS + sj;
            let mut best = s.lut[cell];
            if best == UNSET {
                best = best_sample(
                    &s.cost_l[li * ns..(li + 1) * ns],
                    &s.cost_s[sj * ns..(sj + 1) * ns],
                );
                s.lut[cell] = best;
            }
            let b = best as usize;
            s.cb[i] = s.sample_cb[b];
            s.cr[i] = s.sample_cr[b];
        }

        // Edge-aware clean-up steered by the frame's luma.
        s.filter.reset(
            &s.luma,
            w,
            h,
            settings.smoothing_radius,
            settings.smoothing_eps,
        );
        let mut out_cb = vec![0.0; n];
        let mut out_cr = vec![0.0; n];
        s.filter.filter_into(&s.cb, &mut out_cb);
        s.filter.filter_into(&s.cr, &mut out_cr);

        // Gamut limit at each pixel's own (source) luma.
        for ((cb, cr), &y) in out_cb.iter_mut().zip(out_cr.iter_mut()).zip(&luma.data) {
            (*cb, *cr) = matrix.limit_to_gamut(y, *cb, *cr);
        }

        Ok(ChromaField {
            width: w,
            height: h,
            cb: out_cb,
            cr: out_cr,
        })
    }
}

/// Index of the sample minimising `cost_l[s] + cost_s[s]` (first on ties).
fn best_sample(cost_l: &[f32], cost_s: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_cost = f32::INFINITY;
    for (k, (&a, &b)) in cost_l.iter().zip(cost_s).enumerate() {
        let c = a + b;
        if c < best_cost {
            best_cost = c;
            best = k;
        }
    }
    best as u32
}

/// Mean and (population) std-dev, accumulated in `f64`.
fn mean_std(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (mut n, mut sum, mut sum_sq) = (0usize, 0.0f64, 0.0f64);
    for v in values {
        let v = f64::from(v);
        n += 1;
        sum += v;
        sum_sq += v * v;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let var = (sum_sq / n as f64 - mean * mean).max(0.0);
    (mean as f32, var.sqrt() as f32)
}

/// Local std-dev of `luma` over the `(2r+1)²` window, clamped at borders.
fn local_std(luma: &[f32], w: usize, h: usize, radius: usize, boxes: &mut BoxScratch) -> Vec<f32> {
    let n = w * h;
    let sq: Vec<f32> = luma.iter().map(|v| v * v).collect();
    let mut mean = vec![0.0; n];
    let mut mean_sq = vec![0.0; n];
    box_mean_into(luma, w, h, radius, boxes, &mut mean);
    box_mean_into(&sq, w, h, radius, boxes, &mut mean_sq);
    mean.iter()
        .zip(&mean_sq)
        .map(|(&m, &m2)| (m2 - m * m).max(0.0).sqrt())
        .collect()
}

/// Box-downscales the reference by the smallest integer factor that brings
/// its longer side to at most [`MAX_ANALYSIS_SIDE`], returning the new size
/// and unit-range R'G'B' pixels. Blocks at the right and bottom edges that
/// stick out of the picture average only the pixels inside it.
fn downscale(img: &RgbImage) -> (usize, usize, Vec<[f32; 3]>) {
    let (w, h) = (img.width, img.height);
    let f = w.max(h).div_ceil(MAX_ANALYSIS_SIDE).max(1);
    let (aw, ah) = (w.div_ceil(f), h.div_ceil(f));
    let mut acc = vec![[0.0f32; 3]; aw * ah];
    for (y, row) in img.data.chunks_exact(w * 3).enumerate() {
        let acc_row = &mut acc[(y / f) * aw..(y / f + 1) * aw];
        for (x, px) in row.chunks_exact(3).enumerate() {
            let a = &mut acc_row[x / f];
            a[0] += f32::from(px[0]);
            a[1] += f32::from(px[1]);
            a[2] += f32::from(px[2]);
        }
    }
    for (i, a) in acc.iter_mut().enumerate() {
        let (bx, by) = (i % aw, i / aw);
        let cw = (w - bx * f).min(f);
        let ch = (h - by * f).min(f);
        let inv = 1.0 / (255.0 * (cw * ch) as f32);
        for c in a.iter_mut() {
            *c *= inv;
        }
    }
    (aw, ah, acc)
}

/// About `count` samples on a jittered grid: the image is cut into a grid of
/// near-square cells and one pixel is drawn at random in each.
fn take_samples(
    luma: &[f32],
    sigma: &[f32],
    rgb: &[[f32; 3]],
    w: usize,
    h: usize,
    count: usize,
    seed: u64,
) -> Vec<Sample> {
    let count = count.clamp(1, MAX_SAMPLES);
    let gx = ((count as f64 * w as f64 / h as f64).sqrt().round() as usize).clamp(1, w.min(count));
    let gy = ((count as f64 / gx as f64).round() as usize).clamp(1, h);
    let mut rng = SplitMix64(seed);
    let mut samples = Vec::with_capacity(gx * gy);
    for cy in 0..gy {
        let (y0, y1) = (cy * h / gy, (cy + 1) * h / gy);
        for cx in 0..gx {
            let (x0, x1) = (cx * w / gx, (cx + 1) * w / gx);
            let x = x0 + rng.below(x1 - x0);
            let y = y0 + rng.below(y1 - y0);
            let i = y * w + x;
            samples.push(Sample {
                luma: luma[i],
                sigma: sigma[i],
                rgb: rgb[i],
            });
        }
    }
    samples
}

/// The SplitMix64 generator: tiny, fast and good enough for jitter.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough integer in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// FNV-1a 64 over the image's width, height and bytes.
fn fnv1a64(img: &RgbImage) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let dims = [
        (img.width as u64).to_le_bytes(),
        (img.height as u64).to_le_bytes(),
    ];
    for &b in dims.iter().flatten().chain(&img.data) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUE: [u8; 3] = [25, 45, 130];
    const ORANGE: [u8; 3] = [240, 165, 40];

    /// Deterministic hash noise in -1..1 for pixel (x, y).
    fn hash_noise(x: usize, y: usize, salt: u64) -> f32 {
        let mut r =
            SplitMix64((x as u64) << 32 ^ y as u64 ^ salt.wrapping_mul(0x1234_5678_9abc_def1));
        (r.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Two-region scene: the left 45% dark blue with fine low-contrast
    /// grain, the rest bright orange with coarse stripes. `u` in 0..1 across.
    fn scene_rgb(u: f32, x: usize, y: usize) -> [u8; 3] {
        let shift = |c: u8, d: f32| (f32::from(c) + d).round().clamp(0.0, 255.0) as u8;
        if u < 0.45 {
            let d = 6.0 * hash_noise(x, y, 1);
            [shift(BLUE[0], d), shift(BLUE[1], d), shift(BLUE[2], d)]
        } else {
            let d = if (x / 3).is_multiple_of(2) {
                14.0
            } else {
                -14.0
            };
            [
                shift(ORANGE[0], d),
                shift(ORANGE[1], d),
                shift(ORANGE[2], d),
            ]
        }
    }

    fn scene_reference(w: usize, h: usize) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&scene_rgb((x as f32 + 0.5) / w as f32, x, y));
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    fn scene_luma(w: usize, h: usize, m: Matrix) -> LumaImage {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = scene_rgb((x as f32 + 0.5) / w as f32, x, y);
                let rgb = [
                    f32::from(r) / 255.0,
                    f32::from(g) / 255.0,
                    f32::from(b) / 255.0,
                ];
                data.push(m.rgb_to_ycbcr(rgb)[0]);
            }
        }
        LumaImage {
            width: w,
            height: h,
            data,
        }
    }

    /// A colourful reference: four saturated quadrants with a gradient.
    fn colourful_reference(w: usize, h: usize) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let t = (x + y) as f32 / (w + h) as f32;
                let v = (80.0 + 175.0 * t) as u8;
                let px = match (x * 2 / w, y * 2 / h) {
                    (0, 0) => [v, 10, 10],
                    (1, 0) => [10, v, 20],
                    (0, _) => [20, 20, v],
                    _ => [v, v, 0],
                };
                data.extend_from_slice(&px);
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    fn gradient_luma(w: usize, h: usize) -> LumaImage {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let base = (x as f32 / w.max(2) as f32 + y as f32 / h.max(2) as f32) * 0.5;
                (base + 0.05 * hash_noise(x, y, 9)).clamp(0.0, 1.0)
            })
            .collect();
        LumaImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn transfers_region_colours_by_luma_and_texture() {
        let m = Matrix::Bt709;
        let mut c =
            ReferenceColorizer::new(&scene_reference(160, 100), m, TransferSettings::default())
                .expect("colour reference");
        let (w, h) = (200, 120);
        let luma = scene_luma(w, h, m);
        let out = c.colorize(&luma, 0, m).expect("colorize");
        assert_eq!(
            (out.width, out.height, out.cb.len(), out.cr.len()),
            (w, h, w * h, w * h)
        );

        let edge = (0.45 * w as f32) as usize;
        let region_mean = |v: &[f32], xs: std::ops::Range<usize>| {
            let mut s = 0.0f64;
            let mut n = 0usize;
            for y in 0..h {
                for x in xs.clone() {
                    s += f64::from(v[y * w + x]);
                    n += 1;
                }
            }
            (s / n as f64) as f32
        };
        let dark = 0..edge - 12;
        let bright = edge + 12..w;
        let (dark_cb, dark_cr) = (
            region_mean(&out.cb, dark.clone()),
            region_mean(&out.cr, dark),
        );
        let (bright_cb, bright_cr) = (
            region_mean(&out.cb, bright.clone()),
            region_mean(&out.cr, bright),
        );
        let [_, blue_cb, blue_cr] = m.rgb_to_ycbcr(BLUE.map(|c| f32::from(c) / 255.0));
        assert!(
            dark_cb > 0.5 * blue_cb,
            "dark region blue: cb {dark_cb} (reference {blue_cb})"
        );
        assert!(
            dark_cr < 0.02,
            "dark region not red: cr {dark_cr} (reference {blue_cr})"
        );
        assert!(bright_cr > 0.05, "bright region orange: cr {bright_cr}");
        assert!(bright_cb < -0.05, "bright region orange: cb {bright_cb}");
    }

    #[test]
    fn grayscale_reference_is_refused() {
        let (w, h) = (64, 48);
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let v = (x * 255 / w) as f32;
                // A little per-channel noise, as a JPEG of a B&W photo has.
                let px = [0, 1, 2]
                    .map(|c| (v + 1.5 * hash_noise(x, y, c)).round().clamp(0.0, 255.0) as u8);
                data.extend_from_slice(&px);
            }
        }
        let img = RgbImage {
            width: w,
            height: h,
            data,
        };
        match ReferenceColorizer::new(&img, Matrix::Bt709, TransferSettings::default()) {
            Err(Error::GrayscaleReference { mean_chroma }) => assert!(mean_chroma < 0.02),
            other => panic!("expected GrayscaleReference, got {other:?}"),
        }
    }

    #[test]
    fn tiny_or_malformed_reference_is_refused() {
        let img = RgbImage {
            width: 7,
            height: 20,
            data: vec![0; 7 * 20 * 3],
        };
        assert!(matches!(
            ReferenceColorizer::new(&img, Matrix::Bt601, TransferSettings::default()),
            Err(Error::TooSmall {
                width: 7,
                height: 20,
                min: 8
            })
        ));
        let img = RgbImage {
            width: 8,
            height: 8,
            data: vec![0; 10],
        };
        assert!(matches!(
            ReferenceColorizer::new(&img, Matrix::Bt601, TransferSettings::default()),
            Err(Error::SizeMismatch { .. })
        ));
    }

    #[test]
    fn deterministic_across_calls_and_instances() {
        let m = Matrix::Bt601;
        let reference = colourful_reference(90, 70);
        let luma = gradient_luma(101, 67);
        let mut a =
            ReferenceColorizer::new(&reference, m, TransferSettings::default()).expect("ok");
        let first = a.colorize(&luma, 0, m).expect("ok");
        // Another frame in between must not influence the next result.
        a.colorize(&scene_luma(40, 30, m), 1, m).expect("ok");
        let second = a.colorize(&luma, 7, m).expect("ok");
        assert_eq!(first, second);
        let mut b =
            ReferenceColorizer::new(&reference, m, TransferSettings::default()).expect("ok");
        assert_eq!(first, b.colorize(&luma, 0, m).expect("ok"));
        assert!(
            first.cb.iter().chain(&first.cr).any(|&v| v.abs() > 0.01),
            "some colour"
        );
    }

    #[test]
    fn output_is_inside_the_rgb_gamut() {
        let reference = colourful_reference(120, 80);
        for m in [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020] {
            let mut c =
                ReferenceColorizer::new(&reference, Matrix::Bt709, TransferSettings::default())
                    .expect("ok");
            let mut luma = gradient_luma(97, 61);
            // Extremes, including out-of-range luma and a non-finite value.
            luma.data[0] = 0.0;
            luma.data[1] = 1.0;
            luma.data[2] = -0.05;
            luma.data[3] = 1.07;
            luma.data[4] = f32::NAN;
            let out = c.colorize(&luma, 0, m).expect("ok");
            for i in 0..luma.data.len() {
                let y = luma.data[i];
                let (cb, cr) = (out.cb[i], out.cr[i]);
                assert!(cb.is_finite() && cr.is_finite(), "finite at {i}");
                if !(0.0..=1.0).contains(&y) {
                    assert_eq!((cb, cr), (0.0, 0.0), "neutral where luma is out of range");
                    continue;
                }
                let rgb = m.ycbcr_to_rgb([y, cb, cr]);
                assert!(
                    rgb.iter().all(|v| (-1e-4..=1.0 + 1e-4).contains(v)),
                    "{m:?} pixel {i}: {rgb:?}"
                );
            }
        }
    }

    #[test]
    fn any_frame_size_works() {
        let m = Matrix::Bt709;
        let mut c =
            ReferenceColorizer::new(&colourful_reference(64, 64), m, TransferSettings::default())
                .expect("ok");
        for (w, h) in [(1, 1), (2, 3), (3, 2), (1, 40), (853, 479)] {
            let luma = gradient_luma(w, h);
            let out = c.colorize(&luma, 0, m).expect("ok");
            assert_eq!(
                (out.width, out.height, out.cb.len(), out.cr.len()),
                (w, h, w * h, w * h)
            );
            assert!(out.cb.iter().chain(&out.cr).all(|v| v.is_finite()));
        }
        let empty = LumaImage {
            width: 0,
            height: 5,
            data: Vec::new(),
        };
        assert!(c.colorize(&empty, 0, m).expect("ok").cb.is_empty());
        let bad = LumaImage {
            width: 4,
            height: 4,
            data: vec![0.5; 3],
        };
        assert!(matches!(
            c.colorize(&bad, 0, m),
            Err(Error::SizeMismatch { .. })
        ));
        let flat = LumaImage {
            width: 16,
            height: 9,
            data: vec![0.4; 144],
        };
        assert!(c.colorize(&flat, 0, m).is_ok());
    }

    #[test]
    fn large_reference_is_downscaled_and_odd_settings_work() {
        let reference = colourful_reference(1100, 300);
        let settings = TransferSettings {
            samples: 0,
            window: 0,
            smoothing_radius: 0,
            ..TransferSettings::default()
        };
        let mut c = ReferenceColorizer::new(&reference, Matrix::Bt709, settings).expect("ok");
        assert_eq!(c.analysis_size, (367, 100));
        assert_eq!(c.sample_count(), 1);
        let out = c
            .colorize(&gradient_luma(30, 20), 0, Matrix::Bt709)
            .expect("ok");
        assert_eq!(out.cb.len(), 600);
        let settings = TransferSettings {
            samples: 1_000_000,
            ..TransferSettings::default()
        };
        let c = ReferenceColorizer::new(&colourful_reference(20, 10), Matrix::Bt709, settings)
            .expect("ok");
        assert!(c.sample_count() <= 200);
    }

    #[test]
    fn settings_json_records_reference_and_parameters() {
        let m = Matrix::Bt709;
        let a =
            ReferenceColorizer::new(&colourful_reference(40, 30), m, TransferSettings::default())
                .expect("ok");
        let mut changed = colourful_reference(40, 30);
        changed.data[100] ^= 1;
        let b = ReferenceColorizer::new(&changed, m, TransferSettings::default()).expect("ok");
        let (ja, jb) = (a.settings(), b.settings());
        assert_eq!(ja["engine"], ENGINE_NAME);
        assert_eq!(a.name(), ENGINE_NAME);
        assert_eq!(ja["reference"]["width"], 40);
        assert_eq!(ja["reference"]["height"], 30);
        assert_eq!(ja["settings"]["samples"], 256);
        assert_eq!(ja["settings"]["smoothing_radius"], 8);
        assert_ne!(ja, jb, "digest follows the reference's content");
        let back: TransferSettings =
            serde_json::from_value(ja["settings"].clone()).expect("round trip");
        assert_eq!(&back, a.transfer_settings());
    }
}
