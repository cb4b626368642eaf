//! Dense optical flow between two gray frames, by dense inverse search
//! (Kroeger, Timofte, Dai & Van Gool, "Fast Optical Flow using Dense Inverse
//! Search", ECCV 2016), with its variational refinement.
//!
//! Coarse to fine over an image pyramid, every level:
//!
//! 1. lays a grid of overlapping square patches over the first frame and
//!    finds each patch's displacement into the second frame by
//!    inverse-compositional Lucas-Kanade (gradients and Hessian come from
//!    the first frame, once per patch). With spatial propagation the grid is
//!    swept forwards then backwards, and a patch starts from its
//!    predecessor's displacement when that one fits it better;
//! 2. densifies: every pixel takes the mean of the displacements of the
//!    patches that cover it, each weighted by how well it explains that
//!    pixel;
//! 3. optionally refines the dense field variationally (Brox, Bruhn,
//!    Papenberg & Weickert, ECCV 2004, with the normalised data terms of
//!    Zimmer et al.): intensity and gradient constancy plus a robust
//!    smoothness term, a few fixed-point iterations each solved by red-black
//!    SOR.
//!
//! [`DisPreset`] mirrors OpenCV's `DISOpticalFlow` presets, parameter for
//! parameter, so the two can be compared (the flow bench of
//! `tincture-engine` does: `cargo bench -p tincture-engine --bench flow`).
//! The algorithm is the same; where this implementation knowingly differs:
//! it works on floats, not 8-bit levels; its Gauss-Newton steps are full
//! steps (OpenCV's unnormalised Sobel gradients make its steps an eighth of
//! one), halved when they overshoot; with mean normalisation its Hessian is
//! that of the mean-free residual; its patch grid ends with a patch flush
//! with the border; its refinement uses true (halved) central differences.
//!
//! Every stage runs in parallel on rayon's pool, inside one `rayon::scope`;
//! the work is split in a way that does not depend on the number of
//! threads (the propagating search, like OpenCV's, in a fixed number of
//! stripes), so the result is the same on any machine.
//!
//! Tincture measures flicker with it (the warp error follows motion), so the
//! flow runs on luma, which a colorization never changes: source, output and
//! ground truth all share one flow field.

use rayon::prelude::*;

/// A dense flow field: pixel `(x, y)` of the first frame moves to
/// `(x + u, y + v)` in the second.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowField {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Horizontal displacement, row-major.
    pub u: Vec<f32>,
    /// Vertical displacement, row-major.
    pub v: Vec<f32>,
}

impl FlowField {
    /// A field of zero motion.
    pub fn zero(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            u: vec![0.0; width * height],
            v: vec![0.0; width * height],
        }
    }

    /// Mean end-point error against `truth`, in pixels.
    ///
    /// # Panics
    /// When the fields differ in size.
    pub fn endpoint_error(&self, truth: &FlowField) -> f64 {
        assert_eq!((self.width, self.height), (truth.width, truth.height));
        let n = self.u.len().max(1) as f64;
        self.u
            .iter()
            .zip(&self.v)
            .zip(truth.u.iter().zip(&truth.v))
            .map(|((u, v), (tu, tv))| f64::from(u - tu).hypot(f64::from(v - tv)))
            .sum::<f64>()
            / n
    }

    /// Bilinear upscaling to `width x height`, scaling the displacements with
    /// the size.
    pub fn resized(&self, width: usize, height: usize) -> Self {
        let sx = width as f32 / self.width as f32;
        let sy = height as f32 / self.height as f32;
        let u = resample(&self.u, self.width, self.height, width, height);
        let v = resample(&self.v, self.width, self.height, width, height);
        Self {
            width,
            height,
            u: u.into_iter().map(|x| x * sx).collect(),
            v: v.into_iter().map(|x| x * sy).collect(),
        }
    }
}

/// OpenCV's `DISOpticalFlow` presets (`cv2.DISOPTICAL_FLOW_PRESET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisPreset {
    /// Quarter resolution, 12 descent iterations, no refinement.
    UltraFast,
    /// Quarter resolution, 16 descent iterations, 5 refinement iterations.
    Fast,
    /// Half resolution, patch stride 3, 25 descent iterations, 5 refinement
    /// iterations.
    Medium,
}

impl DisPreset {
    /// The three presets, fastest first.
    pub const ALL: [DisPreset; 3] = [DisPreset::UltraFast, DisPreset::Fast, DisPreset::Medium];

    /// Lower-case name: `ultrafast`, `fast` or `medium`.
    pub fn name(self) -> &'static str {
        match self {
            DisPreset::UltraFast => "ultrafast",
            DisPreset::Fast => "fast",
            DisPreset::Medium => "medium",
        }
    }

    /// The preset's number in OpenCV (`DISOpticalFlow_create(n)`).
    pub fn opencv_id(self) -> u32 {
        match self {
            DisPreset::UltraFast => 0,
            DisPreset::Fast => 1,
            DisPreset::Medium => 2,
        }
    }
}

/// Settings of [`estimate_flow`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowParams {
    /// Side of the square patches, in pixels.
    pub patch: usize,
    /// Distance between neighbouring patches (smaller: denser, slower).
    pub stride: usize,
    /// Gauss-Newton iterations per patch, in all (with spatial propagation
    /// they are shared between the forward and the backward sweep).
    pub iterations: usize,
    /// The finest pyramid level worked on: 0 is full resolution, 1 half
    /// resolution (the result is then upscaled), and so on.
    pub finest_level: usize,
    /// The coarsest level's shorter side is at least this many pixels.
    /// 0 picks the depth as OpenCV does: motion up to about a quarter of the
    /// longer side, while the coarsest level still holds a patch.
    pub coarsest_side: usize,
    /// Fixed-point iterations of the variational refinement on every level
    /// (0: no refinement).
    pub refine_iterations: usize,
    /// Weight of the smoothness term of the refinement.
    pub refine_alpha: f32,
    /// Weight of the gradient constancy term of the refinement.
    pub refine_gamma: f32,
    /// Weight of the intensity constancy term of the refinement.
    pub refine_delta: f32,
    /// Compare patches after subtracting their means, so a change of
    /// exposure between the frames (film flicker) does not read as motion.
    pub mean_normalization: bool,
    /// Sweep the patch grid forwards and backwards, letting each patch start
    /// from its neighbour's displacement when that fits better.
    pub spatial_propagation: bool,
}

impl Default for FlowParams {
    /// Tincture's metric flow: full resolution, no refinement (robust to
    /// flicker, which the refinement's constancy terms are not).
    fn default() -> Self {
        Self {
            patch: 8,
            stride: 4,
            iterations: 12,
            finest_level: 0,
            coarsest_side: 24,
            refine_iterations: 0,
            refine_alpha: 20.0,
            refine_gamma: 10.0,
            refine_delta: 5.0,
            mean_normalization: true,
            spatial_propagation: false,
        }
    }
}

impl FlowParams {
    /// Faster settings for live use: works at half resolution.
    pub fn fast() -> Self {
        Self {
            finest_level: 1,
            iterations: 8,
            ..Self::default()
        }
    }

    /// The settings of OpenCV's `DISOpticalFlow_create(preset)`: patch 8,
    /// mean normalisation and spatial propagation on, refinement weights
    /// alpha 20, gamma 10, delta 5, pyramid depth by OpenCV's rule, and
    ///
    /// | preset    | finest level | stride | iterations | refinement |
    /// |-----------|--------------|--------|------------|------------|
    /// | ultrafast | 2            | 4      | 12         | 0          |
    /// | fast      | 2            | 4      | 16         | 5          |
    /// | medium    | 1            | 3      | 25         | 5          |
    pub fn preset(preset: DisPreset) -> Self {
        let (finest_level, stride, iterations, refine_iterations) = match preset {
            DisPreset::UltraFast => (2, 4, 12, 0),
            DisPreset::Fast => (2, 4, 16, 5),
            DisPreset::Medium => (1, 3, 25, 5),
        };
        Self {
            patch: 8,
            stride,
            iterations,
            finest_level,
            coarsest_side: 0,
            refine_iterations,
            refine_alpha: 20.0,
            refine_gamma: 10.0,
            refine_delta: 5.0,
            mean_normalization: true,
            spatial_propagation: true,
        }
    }
}

/// Intensities are worked on in 8-bit units, the scale OpenCV's refinement
/// weights and the densification's error weights are meant for.
const UNIT: f32 = 255.0;
/// Stripes of patch rows searched independently when propagating; fixed (as
/// in OpenCV) so the result does not depend on the number of threads.
const PROPAGATION_STRIPES: usize = 8;
/// Red-black SOR sweeps per fixed-point iteration, and their relaxation.
const SOR_ITERATIONS: usize = 5;
const SOR_OMEGA: f32 = 1.6;
/// Regularisers of the refinement's normalised data terms and of its robust
/// penaliser `sqrt(s² + ε²)`.
const REFINE_ZETA: f32 = 0.1;
const REFINE_EPSILON: f32 = 0.001;

/// A single-channel float image.
#[derive(Clone, Debug)]
struct Plane {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Plane {
    #[inline]
    fn at(&self, x: usize, y: usize) -> f32 {
        self.px[y * self.w + x]
    }

    /// Bilinear sample with coordinates clamped to the image.
    #[inline]
    fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        let x0 = (x as usize).min(self.w.saturating_sub(2));
        let y0 = (y as usize).min(self.h.saturating_sub(2));
        let x1 = (x0 + 1).min(self.w - 1);
        let y1 = (y0 + 1).min(self.h - 1);
        let fx = x - x0 as f32;
        let fy = y - y0 as f32;
        let top = self.at(x0, y0) + fx * (self.at(x1, y0) - self.at(x0, y0));
        let bottom = self.at(x0, y1) + fx * (self.at(x1, y1) - self.at(x0, y1));
        top + fy * (bottom - top)
    }
}

/// Bilinear resampling of a plane to another size (pixel centres aligned).
fn resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let g = Plane {
        w: sw,
        h: sh,
        px: src.to_vec(),
    };
    let sx = sw as f32 / dw as f32;
    let sy = sh as f32 / dh as f32;
    let mut out = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let fy = (y as f32 + 0.5) * sy - 0.5;
        for x in 0..dw {
            out.push(g.sample((x as f32 + 0.5) * sx - 0.5, fy));
        }
    }
    out
}

/// `src` (`sw x sh`) shrunk by an integer `factor`: means of `factor x
/// factor` blocks from the top-left (a partial last row or column is
/// dropped), times `gain`.
fn box_shrink(src: &[f32], sw: usize, sh: usize, factor: usize, gain: f32) -> Plane {
    let (w, h) = (sw / factor, sh / factor);
    let mut px = vec![0.0f32; w * h];
    let k = gain / (factor * factor) as f32;
    if factor == 1 {
        px.par_chunks_mut(sw.max(1))
            .zip(src.par_chunks(sw.max(1)))
            .for_each(|(o, s)| o.iter_mut().zip(s).for_each(|(o, s)| *o = s * k));
        return Plane { w, h, px };
    }
    px.par_chunks_mut(w.max(1))
        .with_min_len(min_rows(w))
        .enumerate()
        .for_each_init(
            || vec![0.0f32; sw],
            |column_sums, (y, out)| {
                column_sums.copy_from_slice(&src[y * factor * sw..(y * factor + 1) * sw]);
                for r in 1..factor {
                    let row = &src[(y * factor + r) * sw..(y * factor + r + 1) * sw];
                    column_sums.iter_mut().zip(row).for_each(|(c, s)| *c += s);
                }
                for (o, block) in out.iter_mut().zip(column_sums.chunks_exact(factor)) {
                    *o = block.iter().sum::<f32>() * k;
                }
            },
        );
    Plane { w, h, px }
}

/// Sobel gradients divided by 8 (intensity per pixel), borders replicated.
fn gradients(a: &Plane) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (a.w, a.h);
    let mut gx = vec![0.0f32; w * h];
    let mut gy = vec![0.0f32; w * h];
    gx.par_chunks_mut(w)
        .zip(gy.par_chunks_mut(w))
        .with_min_len(min_rows(w))
        .enumerate()
        .for_each(|(y, (gxr, gyr))| {
            let up = &a.px[y.saturating_sub(1) * w..][..w];
            let mid = &a.px[y * w..][..w];
            let down = &a.px[(y + 1).min(h - 1) * w..][..w];
            for x in 0..w {
                let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
                gxr[x] = 0.125 * ((up[r] - up[l]) + 2.0 * (mid[r] - mid[l]) + (down[r] - down[l]));
                gyr[x] = 0.125 * ((down[l] - up[l]) + 2.0 * (down[x] - up[x]) + (down[r] - up[r]));
            }
        });
    (gx, gy)
}

/// Bilinear upscaling of a flow by an integer `factor`, from `wc x hc` to
/// `w x h` (pixel centres aligned: fine `x` sits at `(x + 0.5) / factor -
/// 0.5`), the displacements multiplied by `factor`.
fn upscale_flow(
    u: &[f32],
    v: &[f32],
    (wc, hc): (usize, usize),
    (w, h): (usize, usize),
    factor: usize,
) -> FlowField {
    let s = factor as f32;
    let inv = 1.0 / s;
    // Column taps, shared by every row.
    let taps: Vec<(usize, usize, f32)> = (0..w)
        .map(|x| {
            let c = ((x as f32 + 0.5) * inv - 0.5).clamp(0.0, (wc - 1) as f32);
            let x0 = (c as usize).min(wc.saturating_sub(2));
            let x1 = (x0 + 1).min(wc - 1);
            (x0, x1, c - x0 as f32)
        })
        .collect();
    let mut out = FlowField::zero(w, h);
    out.u
        .par_chunks_mut(w)
        .zip(out.v.par_chunks_mut(w))
        .with_min_len(min_rows(w))
        .enumerate()
        .for_each_init(
            || (vec![0.0f32; wc], vec![0.0f32; wc]),
            |(ru, rv), (y, (ou, ov))| {
                let c = ((y as f32 + 0.5) * inv - 0.5).clamp(0.0, (hc - 1) as f32);
                let y0 = (c as usize).min(hc.saturating_sub(2));
                let y1 = (y0 + 1).min(hc - 1);
                let fy = c - y0 as f32;
                // Vertical pass into a coarse row, then horizontal taps.
                for (src, row) in [(u, &mut *ru), (v, &mut *rv)] {
                    let (a, b) = (&src[y0 * wc..][..wc], &src[y1 * wc..][..wc]);
                    for ((r, a), b) in row.iter_mut().zip(a).zip(b) {
                        *r = s * (a + fy * (b - a));
                    }
                }
                for (x, &(x0, x1, fx)) in taps.iter().enumerate() {
                    ou[x] = ru[x0] + fx * (ru[x1] - ru[x0]);
                    ov[x] = rv[x0] + fx * (rv[x1] - rv[x0]);
                }
            },
        );
    out
}

/// Patch origins along one axis: every `stride`, plus one flush with the end.
fn origins(len: usize, patch: usize, stride: usize) -> Vec<usize> {
    if len <= patch {
        return vec![0];
    }
    let last = len - patch;
    let mut o: Vec<usize> = (0..=last).step_by(stride.max(1)).collect();
    if *o.last().unwrap_or(&0) != last {
        o.push(last);
    }
    o
}

/// The coarsest pyramid level for a `width x height` image.
fn coarsest_level(width: usize, height: usize, params: &FlowParams) -> usize {
    let p = params.patch.max(1);
    if params.coarsest_side == 0 {
        // OpenCV's rule: motion up to a quarter of the longer side, and the
        // coarsest level no smaller than a patch.
        let by_motion = ((width.max(height) as f64 / (4.0 * p as f64)).log2() + 0.5).floor();
        let by_patch = ((width.min(height) / p).max(1) as f64).log2().floor();
        by_motion.min(by_patch).max(0.0) as usize
    } else {
        let min_side = params.coarsest_side.max(p * 2);
        let mut level = 0;
        while (width.min(height) >> level) / 2 >= min_side {
            level += 1;
        }
        level
    }
}

/// One pyramid level of both frames, ready for the patch search.
struct Level {
    /// The first frame.
    a: Plane,
    /// Its gradients.
    gx: Vec<f32>,
    gy: Vec<f32>,
    /// The second frame with `pad` replicated pixels on every side, so a
    /// patch anywhere within reach reads it without bounds checks.
    b: Vec<f32>,
    /// Width of `b`.
    pw: usize,
    pad: usize,
    /// The patch side on this level.
    p: usize,
}

impl Level {
    fn new(a: Plane, b: &Plane, patch: usize) -> Self {
        let (w, h) = (a.w, a.h);
        let p = patch.min(w).min(h).max(1);
        let pad = p + 2;
        let pw = w + 2 * pad;
        let ph = h + 2 * pad;
        let mut padded = vec![0.0f32; pw * ph];
        padded
            .par_chunks_mut(pw)
            .with_min_len(min_rows(pw))
            .enumerate()
            .for_each(|(py, row)| {
                let src = &b.px[py.saturating_sub(pad).min(h - 1) * w..][..w];
                row[..pad].fill(src[0]);
                row[pad..pad + w].copy_from_slice(src);
                row[pad + w..].fill(src[w - 1]);
            });
        let (gx, gy) = gradients(&a);
        Self {
            a,
            gx,
            gy,
            b: padded,
            pw,
            pad,
            p,
        }
    }

    /// Where a patch at `(ox, oy)` displaced by `(u, v)` reads the second
    /// frame: the index in `b` of its top-left tap and the bilinear weights.
    /// The position is clamped so the patch keeps at least one pixel inside
    /// the frame.
    #[inline]
    fn warp(&self, ox: usize, oy: usize, u: f32, v: f32) -> (usize, [f32; 4]) {
        let reach = (self.p - 1) as f32;
        let x = (ox as f32 + u).clamp(-reach, (self.a.w - 1) as f32);
        let y = (oy as f32 + v).clamp(-reach, (self.a.h - 1) as f32);
        // floor() without a libm call: truncation, one less below zero.
        let floor = |t: f32| {
            let i = t as i32;
            (i - i32::from(t < i as f32)) as f32
        };
        let (x0, y0) = (floor(x), floor(y));
        let (fx, fy) = (x - x0, y - y0);
        let col = (x0 as isize + self.pad as isize) as usize;
        let row = (y0 as isize + self.pad as isize) as usize;
        let weights = [
            (1.0 - fx) * (1.0 - fy),
            fx * (1.0 - fy),
            (1.0 - fx) * fy,
            fx * fy,
        ];
        (row * self.pw + col, weights)
    }

    /// Residual sums of the patch at `(ox, oy)` displaced by `(u, v)`:
    /// Σd, Σd², Σgx·d, Σgy·d with d = second frame − first frame.
    #[inline]
    fn residual_sums(&self, ox: usize, oy: usize, u: f32, v: f32) -> [f32; 4] {
        let (base, k) = self.warp(ox, oy, u, v);
        let a0 = oy * self.a.w + ox;
        if self.p == 8 {
            // The common size, in fixed-size arrays: no bounds checks, and
            // each row is two vector registers.
            if let Some(s) = self.residual_sums_fixed::<8>(a0, base, k) {
                return s;
            }
        }
        self.residual_sums_any(a0, base, k)
    }

    #[inline(always)]
    fn residual_sums_fixed<const P: usize>(
        &self,
        a0: usize,
        b0: usize,
        k: [f32; 4],
    ) -> Option<[f32; 4]> {
        let w = self.a.w;
        let mut acc = [[0.0f32; P]; 4];
        for j in 0..P {
            let ar = row::<P>(&self.a.px, a0 + j * w)?;
            let gxr = row::<P>(&self.gx, a0 + j * w)?;
            let gyr = row::<P>(&self.gy, a0 + j * w)?;
            let top = b0 + j * self.pw;
            let (t0, t1) = (row::<P>(&self.b, top)?, row::<P>(&self.b, top + 1)?);
            let (u0, u1) = (
                row::<P>(&self.b, top + self.pw)?,
                row::<P>(&self.b, top + self.pw + 1)?,
            );
            for i in 0..P {
                let d = k[0] * t0[i] + k[1] * t1[i] + k[2] * u0[i] + k[3] * u1[i] - ar[i];
                acc[0][i] += d;
                acc[1][i] += d * d;
                acc[2][i] += gxr[i] * d;
                acc[3][i] += gyr[i] * d;
            }
        }
        Some(acc.map(|lanes| lanes.iter().sum()))
    }
}

/// `P` values of `p` from `at`, if there are as many.
#[inline(always)]
fn row<const P: usize>(p: &[f32], at: usize) -> Option<&[f32; P]> {
    p.get(at..).and_then(|r| r.first_chunk::<P>())
}

impl Level {
    fn residual_sums_any(&self, a0: usize, b0: usize, k: [f32; 4]) -> [f32; 4] {
        let (w, p) = (self.a.w, self.p);
        let mut acc = [0.0f32; 4];
        for j in 0..p {
            let ar = &self.a.px[a0 + j * w..][..p];
            let gxr = &self.gx[a0 + j * w..][..p];
            let gyr = &self.gy[a0 + j * w..][..p];
            let r0 = &self.b[b0 + j * self.pw..][..p + 1];
            let r1 = &self.b[b0 + (j + 1) * self.pw..][..p + 1];
            for i in 0..p {
                let d = k[0] * r0[i] + k[1] * r0[i + 1] + k[2] * r1[i] + k[3] * r1[i + 1] - ar[i];
                acc[0] += d;
                acc[1] += d * d;
                acc[2] += gxr[i] * d;
                acc[3] += gyr[i] * d;
            }
        }
        acc
    }
}

/// What the Gauss-Newton steps of one patch need from the first frame.
#[derive(Clone, Copy, Debug)]
struct PatchModel {
    /// Inverse Hessian: (h22, -h12, h11) / det.
    inv: [f32; 3],
    /// Σgx and Σgy over the patch (for mean normalisation).
    sum_g: [f32; 2],
    /// Whether the patch has any texture to lock on to.
    textured: bool,
}

impl PatchModel {
    fn new(lv: &Level, ox: usize, oy: usize, mean_normalization: bool) -> Self {
        let (w, p) = (lv.a.w, lv.p);
        let (mut xx, mut xy, mut yy, mut sx, mut sy) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for j in 0..p {
            let gxr = &lv.gx[(oy + j) * w + ox..][..p];
            let gyr = &lv.gy[(oy + j) * w + ox..][..p];
            for (&gx, &gy) in gxr.iter().zip(gyr) {
                xx += gx * gx;
                xy += gx * gy;
                yy += gy * gy;
                sx += gx;
                sy += gy;
            }
        }
        let n = (p * p) as f32;
        if mean_normalization {
            // The Hessian of the mean-free residual: centred gradients.
            xx -= sx * sx / n;
            xy -= sx * sy / n;
            yy -= sy * sy / n;
        }
        // Slightly regularised, so edges (rank-one structure) move along
        // their normal only.
        let reg = 1e-3 * 0.5 * (xx + yy) + 1e-6;
        let (xx, yy) = (xx + reg, yy + reg);
        let det = xx * yy - xy * xy;
        Self {
            inv: [yy / det, -xy / det, xx / det],
            sum_g: [sx, sy],
            // Flat: a mean squared gradient under 1e-3 (grey levels per
            // pixel, squared) along each axis.
            textured: xx + yy > 2e-3 * n && det > 0.0,
        }
    }

    /// Patch cost (sum of squared, optionally mean-free, residuals) and the
    /// Gauss-Newton step from the residual sums.
    #[inline]
    fn cost_and_step(&self, s: [f32; 4], n: f32, mean_normalization: bool) -> (f32, [f32; 2]) {
        let [sd, sdd, sgd_x, sgd_y] = s;
        let (cost, bx, by) = if mean_normalization {
            let mean = sd / n;
            (
                sdd - sd * mean,
                sgd_x - self.sum_g[0] * mean,
                sgd_y - self.sum_g[1] * mean,
            )
        } else {
            (sdd, sgd_x, sgd_y)
        };
        let [i11, i12, i22] = self.inv;
        (cost, [i11 * bx + i12 * by, i12 * bx + i22 * by])
    }
}

/// Inverse search of every patch of the grid on one level; returns each
/// patch's displacement (row-major over the grid).
fn search_patches(
    lv: &Level,
    init: &FlowField,
    xs: &[usize],
    ys: &[usize],
    params: &FlowParams,
) -> Vec<[f32; 2]> {
    let (nx, ny) = (xs.len(), ys.len());
    let p = lv.p;
    let n = (p * p) as f32;
    let norm = params.mean_normalization;
    let propagate = params.spatial_propagation;
    let stripes = if propagate {
        PROPAGATION_STRIPES.min(ny)
    } else {
        ny
    };
    let rows_per_stripe = ny.div_ceil(stripes.max(1));
    let passes = if propagate { 2 } else { 1 };
    let steps = params.iterations / passes;
    let mut sparse = vec![[0.0f32; 2]; nx * ny];

    sparse
        .par_chunks_mut(rows_per_stripe * nx)
        .enumerate()
        .for_each(|(stripe, flows)| {
            let first_row = stripe * rows_per_stripe;
            let rows = flows.len() / nx;
            let origin = |k: usize| (xs[k % nx], ys[first_row + k / nx]);
            let models: Vec<PatchModel> = (0..flows.len())
                .map(|k| {
                    let (ox, oy) = origin(k);
                    PatchModel::new(lv, ox, oy, norm)
                })
                .collect();
            // Start from the coarser level's flow at each patch's centre.
            for (k, f) in flows.iter_mut().enumerate() {
                let (ox, oy) = origin(k);
                let c = (oy + p / 2).min(init.height - 1) * init.width
                    + (ox + p / 2).min(init.width - 1);
                *f = [init.u[c], init.v[c]];
            }
            // A patch's cost and Gauss-Newton step at a displacement.
            let eval = |k: usize, f: [f32; 2]| {
                let (ox, oy) = origin(k);
                models[k].cost_and_step(lv.residual_sums(ox, oy, f[0], f[1]), n, norm)
            };
            for pass in 0..passes {
                let forward = pass == 0;
                for t in 0..flows.len() {
                    let k = if forward { t } else { flows.len() - 1 - t };
                    let (row, col) = (k / nx, k % nx);
                    let mut start = flows[k];
                    let mut known = None;
                    if propagate {
                        // The predecessors in this sweep's order, if within
                        // the stripe.
                        let left = if forward {
                            (col > 0).then(|| k - 1)
                        } else {
                            (col + 1 < nx).then(|| k + 1)
                        };
                        let above = if forward {
                            (row > 0).then(|| k - nx)
                        } else {
                            (row + 1 < rows).then(|| k + nx)
                        };
                        let mut best = eval(k, start);
                        for q in [left, above].into_iter().flatten() {
                            let e = eval(k, flows[q]);
                            if e.0 < best.0 {
                                best = e;
                                start = flows[q];
                            }
                        }
                        known = Some(best);
                    }
                    let end = if models[k].textured {
                        descend(|f| eval(k, f), start, known, steps)
                    } else {
                        start
                    };
                    // A patch that wandered further than its own size from
                    // where it started has most likely lost its way.
                    let moved = (end[0] - start[0]).hypot(end[1] - start[1]);
                    flows[k] = if moved <= p as f32 { end } else { start };
                }
            }
        });
    sparse
}

/// Gauss-Newton steps from `start` (whose cost and step may be `known`
/// already). A step that raises the cost is retried at half, then a
/// quarter of its length; the descent stops there, or when the steps
/// become tiny, returning the best position evaluated (or the last step
/// taken from it).
#[inline]
fn descend(
    eval: impl Fn([f32; 2]) -> (f32, [f32; 2]),
    start: [f32; 2],
    mut known: Option<(f32, [f32; 2])>,
    steps: usize,
) -> [f32; 2] {
    let mut best = start;
    let mut best_cost = f32::INFINITY;
    let mut step = [0.0f32; 2];
    let mut scale = 1.0f32;
    let mut cur = start;
    for _ in 0..steps {
        let (cost, s) = known.take().unwrap_or_else(|| eval(cur));
        if cost < best_cost {
            if !(s[0].is_finite() && s[1].is_finite()) {
                return cur;
            }
            best = cur;
            best_cost = cost;
            step = s;
            scale = 1.0;
        } else {
            scale *= 0.5;
            if scale < 0.2 {
                return best;
            }
        }
        let (du, dv) = (scale * step[0], scale * step[1]);
        cur = [best[0] - du, best[1] - dv];
        if du * du + dv * dv < 1e-4 {
            break;
        }
    }
    cur
}

/// Densification: every pixel takes the mean of the displacements of the
/// patches covering it, each weighted by 1 / max(1, |error|) of that
/// displacement at that pixel (in grey levels).
fn densify(lv: &Level, xs: &[usize], ys: &[usize], sparse: &[[f32; 2]]) -> FlowField {
    let (w, h, p) = (lv.a.w, lv.a.h, lv.p);
    let nx = xs.len();
    let warps: Vec<(usize, [f32; 4])> = sparse
        .par_iter()
        .enumerate()
        .map(|(k, f)| lv.warp(xs[k % nx], ys[k / nx], f[0], f[1]))
        .collect();
    let mut out = FlowField::zero(w, h);
    out.u
        .par_chunks_mut(w)
        .zip(out.v.par_chunks_mut(w))
        .with_min_len(min_rows(w) / 4 + 1)
        .enumerate()
        .for_each_init(
            || vec![0.0f32; w],
            |weight, (y, (su, sv))| {
                weight.fill(0.0);
                // Patch rows covering row y: origins in (y - p, y].
                let lo = ys.partition_point(|&oy| oy + p <= y);
                let hi = ys.partition_point(|&oy| oy <= y);
                let arow = &lv.a.px[y * w..][..w];
                for (r, &oy) in ys.iter().enumerate().take(hi).skip(lo) {
                    let dy = y - oy;
                    for (c, &ox) in xs.iter().enumerate() {
                        let k = r * nx + c;
                        let [u, v] = sparse[k];
                        let (base, t) = warps[k];
                        let b0 = &lv.b[base + dy * lv.pw..][..p + 1];
                        let b1 = &lv.b[base + (dy + 1) * lv.pw..][..p + 1];
                        let a = &arow[ox..ox + p];
                        let (su, sv, sw) = (
                            &mut su[ox..ox + p],
                            &mut sv[ox..ox + p],
                            &mut weight[ox..ox + p],
                        );
                        for i in 0..p {
                            let s =
                                t[0] * b0[i] + t[1] * b0[i + 1] + t[2] * b1[i] + t[3] * b1[i + 1];
                            let c = 1.0 / (s - a[i]).abs().max(1.0);
                            su[i] += c * u;
                            sv[i] += c * v;
                            sw[i] += c;
                        }
                    }
                }
                for ((u, v), &wt) in su.iter_mut().zip(sv.iter_mut()).zip(weight.iter()) {
                    if wt > 0.0 {
                        *u /= wt;
                        *v /= wt;
                    }
                }
            },
        );
    out
}

/// Estimates the flow from `from` to `to`, two gray images of
/// `width x height` unit-range values (0 black, 1 white).
///
/// # Panics
/// When a buffer does not hold `width * height` values.
pub fn estimate_flow(
    from: &[f32],
    to: &[f32],
    width: usize,
    height: usize,
    params: &FlowParams,
) -> FlowField {
    assert_eq!(from.len(), width * height, "first frame size");
    assert_eq!(to.len(), width * height, "second frame size");
    if width < 2 || height < 2 {
        return FlowField::zero(width, height);
    }
    // On one of the pool's threads, its many short parallel loops start
    // without a round trip from outside the pool.
    rayon::scope(|_| flow_in_pool(from, to, width, height, params))
}

fn flow_in_pool(
    from: &[f32],
    to: &[f32],
    width: usize,
    height: usize,
    params: &FlowParams,
) -> FlowField {
    let coarsest = coarsest_level(width, height, params);
    // Every level keeps at least 2 x 2 pixels.
    let deepest = (width.min(height) / 2).max(1).ilog2() as usize;
    let coarsest = coarsest.min(deepest);
    let finest = params.finest_level.min(coarsest);

    // The finest level straight from the input (a box of 2^finest pixels),
    // then halvings.
    let factor = 1 << finest;
    let mut pyramid = vec![(
        box_shrink(from, width, height, factor, UNIT),
        box_shrink(to, width, height, factor, UNIT),
    )];
    for _ in finest..coarsest {
        let (a, b) = &pyramid[pyramid.len() - 1];
        let next = (
            box_shrink(&a.px, a.w, a.h, 2, 1.0),
            box_shrink(&b.px, b.w, b.h, 2, 1.0),
        );
        pyramid.push(next);
    }

    let mut flow: Option<FlowField> = None;
    for (a, b) in pyramid.into_iter().rev() {
        let (w, h) = (a.w, a.h);
        let init = match flow.take() {
            None => FlowField::zero(w, h),
            Some(f) => upscale_flow(&f.u, &f.v, (f.width, f.height), (w, h), 2),
        };
        let b_plane = b;
        let lv = Level::new(a, &b_plane, params.patch);
        let xs = origins(w, lv.p, params.stride);
        let ys = origins(h, lv.p, params.stride);
        let sparse = search_patches(&lv, &init, &xs, &ys, params);
        let mut dense = densify(&lv, &xs, &ys, &sparse);
        if params.refine_iterations > 0 {
            refine(&lv.a, &b_plane, &mut dense, params);
        }
        flow = Some(dense);
    }
    let flow = flow.unwrap_or_else(|| FlowField::zero(width, height));
    if finest > 0 {
        upscale_flow(
            &flow.u,
            &flow.v,
            (flow.width, flow.height),
            (width, height),
            factor,
        )
    } else {
        flow
    }
}

/// Rows per parallel task for planes `w` wide: enough pixels that a task
/// outweighs its scheduling.
fn min_rows(w: usize) -> usize {
    (8192 / w.max(1)).max(1)
}

/// Central differences along rows (intensity per pixel), one-sided at the
/// ends.
fn diff_x(p: &[f32], w: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; p.len()];
    if w < 2 {
        return out;
    }
    out.par_chunks_mut(w)
        .zip(p.par_chunks(w))
        .with_min_len(min_rows(w))
        .for_each(|(o, r)| {
            o[0] = r[1] - r[0];
            for ((o, l), r) in o[1..w - 1].iter_mut().zip(&r[..w - 2]).zip(&r[2..]) {
                *o = 0.5 * (r - l);
            }
            o[w - 1] = r[w - 1] - r[w - 2];
        });
    out
}

/// Central differences along columns of row `y`, one-sided at the ends.
#[inline]
fn diff_y_row(out: &mut [f32], p: &[f32], w: usize, h: usize, y: usize) {
    let (u, d) = (y.saturating_sub(1), (y + 1).min(h - 1));
    let k = 1.0 / (d - u).max(1) as f32;
    for ((o, a), b) in out.iter_mut().zip(&p[u * w..][..w]).zip(&p[d * w..][..w]) {
        *o = k * (b - a);
    }
}

/// A `w x h` grid split into its two checkerboard colours (colour c holds
/// the pixels with (x + y) % 2 == c), each stored compactly row by row
/// inside a zero border, so red-black SOR works on contiguous runs.
///
/// A colour's storage interleaves `planes` planes by row: plane j of row
/// y (-1 ..= h, the ends being the border) starts at
/// `((y + 1) * planes + j) * stride`, and pixel x of that row sits at
/// `x / 2 + 1` within it. For a pixel at run index k of colour c in row y
/// (x = 2k + off), the other colour holds its left neighbour at index
/// `k + off`, its right one at `k + off + 1`, and the pixels above and
/// below at `k + 1` of rows y - 1 and y + 1.
struct Checker {
    w: usize,
    h: usize,
    stride: usize,
}

impl Checker {
    fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            stride: w.div_ceil(2) + 2,
        }
    }

    /// The offset of colour `c` in row y (its first x), and its run length.
    #[inline]
    fn run(&self, c: usize, y: usize) -> (usize, usize) {
        let off = (y + c) & 1;
        (off, (self.w + 1 - off) / 2)
    }

    /// Zeroed storage of `planes` planes for both colours.
    fn zeros(&self, planes: usize) -> [Vec<f32>; 2] {
        let n = (self.h + 2) * planes * self.stride;
        [vec![0.0; n], vec![0.0; n]]
    }

    /// Where plane `j` of row `y` starts (row -1 and row h are the border).
    #[inline]
    fn row(&self, planes: usize, y: isize, j: usize) -> usize {
        (((y + 1) as usize) * planes + j) * self.stride
    }

    /// Run `k .. k + n` of plane `j`, row `y`, shifted by `shift` - 1 from
    /// the row's first pixel (`shift` 1: the colour's own pixels).
    #[inline]
    fn slice<'a>(
        &self,
        p: &'a [f32],
        planes: usize,
        y: isize,
        j: usize,
        shift: usize,
        n: usize,
    ) -> &'a [f32] {
        &p[self.row(planes, y, j) + shift..][..n]
    }

    /// The interior rows of both colours' storage of `planes` planes, for
    /// a parallel pass over image rows writing both.
    fn rows_mut<'a>(
        &self,
        store: &'a mut [Vec<f32>; 2],
        planes: usize,
    ) -> impl IndexedParallelIterator<Item = (usize, (&'a mut [f32], &'a mut [f32]))> {
        let block = planes * self.stride;
        let h = self.h;
        let [s0, s1] = store;
        s0[block..(h + 1) * block]
            .par_chunks_mut(block)
            .zip(s1[block..(h + 1) * block].par_chunks_mut(block))
            .with_min_len(min_rows(self.w))
            .enumerate()
    }

    /// A natural-layout plane in single-plane storage.
    fn split(&self, src: &[f32]) -> [Vec<f32>; 2] {
        let mut out = self.zeros(1);
        self.rows_mut(&mut out, 1).for_each(|(y, (r0, r1))| {
            let row = &src[y * self.w..][..self.w];
            for (c, r) in [r0, r1].into_iter().enumerate() {
                let (off, n) = self.run(c, y);
                for (k, o) in r[1..1 + n].iter_mut().enumerate() {
                    *o = row[2 * k + off];
                }
            }
        });
        out
    }

    /// Adds single-plane storage back onto a natural-layout plane.
    fn add_to(&self, src: &[Vec<f32>; 2], dst: &mut [f32]) {
        dst.par_chunks_mut(self.w)
            .with_min_len(min_rows(self.w))
            .enumerate()
            .for_each(|(y, row)| {
                for (c, s) in src.iter().enumerate() {
                    let (off, n) = self.run(c, y);
                    let s = self.slice(s, 1, y as isize, 0, 1, n);
                    for (k, v) in s.iter().enumerate() {
                        row[2 * k + off] += v;
                    }
                }
            });
    }
}

/// The planes of the refinement's data terms: the image derivatives (on
/// the mean of the first frame and the second warped back onto it; z is
/// the difference between the two), each constancy assumption's divided by
/// the square root of its normaliser |∇I|² + ζ², so the linearised
/// residuals read `jz + jx du + jy dv` (intensity) and `kxz + kxx du + kxy
/// dv`, `kyz + kyx du + kyy dv` (the two gradient components).
const JX: usize = 0;
const JY: usize = 1;
const JZ: usize = 2;
const KXX: usize = 3;
const KXY: usize = 4;
const KXZ: usize = 5;
const KYX: usize = 6;
const KYY: usize = 7;
const KYZ: usize = 8;
const DATA: usize = 9;

/// The planes of one colour's equations: with the edge weights w to the
/// existing neighbours, `(a11 + Σw) du + a12 dv = b1 + Σ w du_neighbour`
/// and likewise for dv.
const A12: usize = 0;
const B1: usize = 1;
const B2: usize = 2;
/// 1 / (a11 + Σw) and 1 / (a22 + Σw).
const INV1: usize = 3;
const INV2: usize = 4;
const EQUATION: usize = 5;

/// The smoothness planes: the weights of each pixel's edges to its right
/// and lower neighbours (0 where there is none).
const EX: usize = 0;
const EY: usize = 1;
const EDGES: usize = 2;

/// The data term planes (see [`DATA`]) for `flow` on the frames `a`, `b`.
fn data_planes(a: &Plane, b: &Plane, flow: &FlowField, grid: &Checker) -> [Vec<f32>; 2] {
    let (w, h) = (a.w, a.h);
    let z2 = REFINE_ZETA * REFINE_ZETA;
    let mut mean = vec![0.0f32; w * h];
    let mut iz = vec![0.0f32; w * h];
    mean.par_chunks_mut(w)
        .zip(iz.par_chunks_mut(w))
        .with_min_len(min_rows(w))
        .enumerate()
        .for_each(|(y, (m, z))| {
            for x in 0..w {
                let i = y * w + x;
                let warped = b.sample(x as f32 + flow.u[i], y as f32 + flow.v[i]);
                m[x] = 0.5 * (a.px[i] + warped);
                z[x] = warped - a.px[i];
            }
        });
    let ix = diff_x(&mean, w);
    let mut iy = vec![0.0f32; w * h];
    iy.par_chunks_mut(w)
        .with_min_len(min_rows(w))
        .enumerate()
        .for_each(|(y, row)| diff_y_row(row, &mean, w, h, y));
    let mut out = grid.zeros(DATA);
    grid.rows_mut(&mut out, DATA).for_each_init(
        || vec![0.0f32; (DATA + 5) * w],
        |tmp, (y, (r0, r1))| {
            // This row's second derivatives, then the normalised planes, in
            // natural layout.
            let (norm, second) = tmp.split_at_mut(DATA * w);
            let mut d = second.chunks_exact_mut(w);
            let (Some(ixx), Some(ixz), Some(ixy), Some(iyy), Some(iyz)) =
                (d.next(), d.next(), d.next(), d.next(), d.next())
            else {
                return;
            };
            let (ixr, iyr, izr) = (&ix[y * w..][..w], &iy[y * w..][..w], &iz[y * w..][..w]);
            for (o, r) in [(&mut *ixx, ixr), (&mut *ixz, izr)] {
                o[0] = r[1] - r[0];
                for x in 1..w - 1 {
                    o[x] = 0.5 * (r[x + 1] - r[x - 1]);
                }
                o[w - 1] = r[w - 1] - r[w - 2];
            }
            diff_y_row(ixy, &ix, w, h, y);
            diff_y_row(iyy, &iy, w, h, y);
            diff_y_row(iyz, &iz, w, h, y);
            let mut p = norm.chunks_exact_mut(w);
            let planes: [&mut [f32]; DATA] = std::array::from_fn(|_| p.next().unwrap_or_default());
            for x in 0..w {
                let ni = 1.0 / (ixr[x] * ixr[x] + iyr[x] * iyr[x] + z2).sqrt();
                let nx = 1.0 / (ixx[x] * ixx[x] + ixy[x] * ixy[x] + z2).sqrt();
                let ny = 1.0 / (ixy[x] * ixy[x] + iyy[x] * iyy[x] + z2).sqrt();
                planes[JX][x] = ixr[x] * ni;
                planes[JY][x] = iyr[x] * ni;
                planes[JZ][x] = izr[x] * ni;
                planes[KXX][x] = ixx[x] * nx;
                planes[KXY][x] = ixy[x] * nx;
                planes[KXZ][x] = ixz[x] * nx;
                planes[KYX][x] = ixy[x] * ny;
                planes[KYY][x] = iyy[x] * ny;
                planes[KYZ][x] = iyz[x] * ny;
            }
            for (c, r) in [r0, r1].into_iter().enumerate() {
                let (off, n) = grid.run(c, y);
                for (dst, src) in r.chunks_exact_mut(grid.stride).zip(&planes) {
                    for (k, o) in dst[1..1 + n].iter_mut().enumerate() {
                        *o = src[2 * k + off];
                    }
                }
            }
        },
    );
    out
}

/// Variational refinement of `flow` (on the level's frames `a`, `b`):
/// minimises intensity and gradient constancy plus smoothness, all under
/// the robust penaliser sqrt(s² + ε²), by `refine_iterations` fixed-point
/// iterations of [`SOR_ITERATIONS`] red-black SOR sweeps each. The data
/// terms are linearised once, around the incoming flow.
fn refine(a: &Plane, b: &Plane, flow: &mut FlowField, params: &FlowParams) {
    let (w, h) = (a.w, a.h);
    if w < 3 || h < 3 {
        return;
    }
    let grid = Checker::new(w, h);
    let data = data_planes(a, b, flow, &grid);
    let base = [grid.split(&flow.u), grid.split(&flow.v)];
    // The increment, the edge weights and the equations, per colour.
    let mut du = grid.zeros(1);
    let mut dv = grid.zeros(1);
    let mut edges = grid.zeros(EDGES);
    let mut eqs = grid.zeros(EQUATION);
    for _ in 0..params.refine_iterations {
        smoothness(&grid, &mut edges, &base, [&du, &dv], params.refine_alpha);
        assemble(&grid, &mut eqs, &data, &edges, &base, [&du, &dv], params);
        for _ in 0..SOR_ITERATIONS {
            for (c, eq) in eqs.iter().enumerate() {
                sor_sweep(&grid, c, eq, &edges, &mut du, &mut dv);
            }
        }
    }
    grid.add_to(&du, &mut flow.u);
    grid.add_to(&dv, &mut flow.v);
}

/// Per colour, (u, v) planes.
type Pair<'a> = [&'a [Vec<f32>; 2]; 2];

/// The edge weights from the forward differences of the current flow
/// (incoming `base` + increment `inc`): α/2 / sqrt(|∇u|² + |∇v|² + ε²).
fn smoothness(
    grid: &Checker,
    edges: &mut [Vec<f32>; 2],
    base: &[[Vec<f32>; 2]; 2],
    inc: Pair<'_>,
    alpha: f32,
) {
    let (w, h) = (grid.w, grid.h);
    let half_alpha = 0.5 * alpha;
    let e2 = REFINE_EPSILON * REFINE_EPSILON;
    grid.rows_mut(edges, EDGES).for_each(|(y, (r0, r1))| {
        let yi = y as isize;
        let has_down = if y + 1 < h { 1.0 } else { 0.0 };
        for (c, rows) in [r0, r1].into_iter().enumerate() {
            let o = 1 - c;
            let (off, n) = grid.run(c, y);
            // Own pixels, right neighbours and lower neighbours, of u and v.
            // Own pixels, right neighbours and lower neighbours, of the
            // incoming flow and of the increment.
            let at = [(c, yi, 1), (o, yi, off + 1), (o, yi + 1, 1)];
            let [u0, ur, ud]: [&[f32]; 3] =
                at.map(|(col, y, shift)| grid.slice(&base[0][col], 1, y, 0, shift, n));
            let [u0d, urd, udd]: [&[f32]; 3] =
                at.map(|(col, y, shift)| grid.slice(&inc[0][col], 1, y, 0, shift, n));
            let [v0, vr, vd]: [&[f32]; 3] =
                at.map(|(col, y, shift)| grid.slice(&base[1][col], 1, y, 0, shift, n));
            let [v0d, vrd, vdd]: [&[f32]; 3] =
                at.map(|(col, y, shift)| grid.slice(&inc[1][col], 1, y, 0, shift, n));
            let (ex, ey) = rows.split_at_mut(grid.stride);
            let (ex, ey) = (&mut ex[1..1 + n], &mut ey[1..1 + n]);
            for k in 0..n {
                let (u, v) = (u0[k] + u0d[k], v0[k] + v0d[k]);
                let ux = ur[k] + urd[k] - u;
                let vx = vr[k] + vrd[k] - v;
                let uy = has_down * (ud[k] + udd[k] - u);
                let vy = has_down * (vd[k] + vdd[k] - v);
                let wt = half_alpha / (ux * ux + vx * vx + uy * uy + vy * vy + e2).sqrt();
                ex[k] = wt;
                ey[k] = has_down * wt;
            }
            // The last pixel of the row has no right neighbour.
            if n > 0 && 2 * (n - 1) + off == w - 1 {
                let k = n - 1;
                let (u, v) = (u0[k] + u0d[k], v0[k] + v0d[k]);
                let uy = has_down * (ud[k] + udd[k] - u);
                let vy = has_down * (vd[k] + vdd[k] - v);
                ex[k] = 0.0;
                ey[k] = has_down * half_alpha / (uy * uy + vy * vy + e2).sqrt();
            }
        }
    });
}

/// Fills both colours' equations for the current increment `inc`.
fn assemble(
    grid: &Checker,
    eqs: &mut [Vec<f32>; 2],
    data: &[Vec<f32>; 2],
    edges: &[Vec<f32>; 2],
    base: &[[Vec<f32>; 2]; 2],
    inc: Pair<'_>,
    params: &FlowParams,
) {
    let z2 = REFINE_ZETA * REFINE_ZETA;
    let e2 = REFINE_EPSILON * REFINE_EPSILON;
    let (half_gamma, half_delta) = (0.5 * params.refine_gamma, 0.5 * params.refine_delta);
    grid.rows_mut(eqs, EQUATION).for_each(|(y, (r0, r1))| {
        let yi = y as isize;
        for (c, rows) in [r0, r1].into_iter().enumerate() {
            let o = 1 - c;
            let (off, n) = grid.run(c, y);
            let d: [&[f32]; DATA] =
                std::array::from_fn(|j| grid.slice(&data[c], DATA, yi, j, 1, n));
            let (du, dv) = (
                grid.slice(&inc[0][c], 1, yi, 0, 1, n),
                grid.slice(&inc[1][c], 1, yi, 0, 1, n),
            );
            let wr = grid.slice(&edges[c], EDGES, yi, EX, 1, n);
            let wd = grid.slice(&edges[c], EDGES, yi, EY, 1, n);
            let wl = grid.slice(&edges[o], EDGES, yi, EX, off, n);
            let wu = grid.slice(&edges[o], EDGES, yi - 1, EY, 1, n);
            // The smoothness of the incoming flow itself, along the edges.
            let mut pull = [vec![0.0f32; n], vec![0.0f32; n]];
            for (p, f) in pull.iter_mut().zip(base) {
                let at = [
                    (c, yi, 1),
                    (o, yi, off + 1),
                    (o, yi, off),
                    (o, yi + 1, 1),
                    (o, yi - 1, 1),
                ];
                let [f0, fr, fl, fd, fu] =
                    at.map(|(col, y, shift)| grid.slice(&f[col], 1, y, 0, shift, n));
                for k in 0..n {
                    p[k] = wr[k] * (fr[k] - f0[k])
                        + wl[k] * (fl[k] - f0[k])
                        + wd[k] * (fd[k] - f0[k])
                        + wu[k] * (fu[k] - f0[k]);
                }
            }
            let mut out = rows.chunks_exact_mut(grid.stride).map(|r| &mut r[1..1 + n]);
            let (Some(a12), Some(b1), Some(b2), Some(inv1), Some(inv2)) =
                (out.next(), out.next(), out.next(), out.next(), out.next())
            else {
                return;
            };
            for k in 0..n {
                let (jx, jy, jz) = (d[JX][k], d[JY][k], d[JZ][k]);
                let (kxx, kxy, kxz) = (d[KXX][k], d[KXY][k], d[KXZ][k]);
                let (kyx, kyy, kyz) = (d[KYX][k], d[KYY][k], d[KYZ][k]);
                let r = jz + jx * du[k] + jy * dv[k];
                let wt = half_delta / (r * r + e2).sqrt();
                let rx = kxz + kxx * du[k] + kxy * dv[k];
                let ry = kyz + kyx * du[k] + kyy * dv[k];
                let wg = half_gamma / (rx * rx + ry * ry + e2).sqrt();
                let a11 = wt * jx * jx + wg * (kxx * kxx + kyx * kyx) + z2;
                let a22 = wt * jy * jy + wg * (kxy * kxy + kyy * kyy) + z2;
                a12[k] = wt * jx * jy + wg * (kxx * kxy + kyx * kyy);
                b1[k] = pull[0][k] - wt * jz * jx - wg * (kxz * kxx + kyz * kyx);
                b2[k] = pull[1][k] - wt * jz * jy - wg * (kxz * kxy + kyz * kyy);
                let sum = wr[k] + wl[k] + wd[k] + wu[k];
                inv1[k] = 1.0 / (a11 + sum);
                inv2[k] = 1.0 / (a22 + sum);
            }
        }
    });
}

/// One SOR half-sweep over colour `c`: its pixels depend only on the other
/// colour's, so rows update in parallel.
fn sor_sweep(
    grid: &Checker,
    c: usize,
    eqs: &[f32],
    edges: &[Vec<f32>; 2],
    du: &mut [Vec<f32>; 2],
    dv: &mut [Vec<f32>; 2],
) {
    let (h, st) = (grid.h, grid.stride);
    let (u_own, u_other) = split_colour(du, c);
    let (v_own, v_other) = split_colour(dv, c);
    let o = 1 - c;
    u_own[st..(h + 1) * st]
        .par_chunks_mut(st)
        .zip(v_own[st..(h + 1) * st].par_chunks_mut(st))
        .with_min_len(min_rows(grid.w))
        .enumerate()
        .for_each(|(y, (ru, rv))| {
            let (off, n) = grid.run(c, y);
            let yi = y as isize;
            let eq = |j: usize| grid.slice(eqs, EQUATION, yi, j, 1, n);
            let (a12, b1, b2, inv1, inv2) = (eq(A12), eq(B1), eq(B2), eq(INV1), eq(INV2));
            let wr = grid.slice(&edges[c], EDGES, yi, EX, 1, n);
            let wd = grid.slice(&edges[c], EDGES, yi, EY, 1, n);
            let wl = grid.slice(&edges[o], EDGES, yi, EX, off, n);
            let wu = grid.slice(&edges[o], EDGES, yi - 1, EY, 1, n);
            // The other colour: right, left, lower and upper neighbours.
            let at = [(yi, off + 1), (yi, off), (yi + 1, 1), (yi - 1, 1)];
            let [ur, ul, ud, uu] = at.map(|(y, shift)| grid.slice(u_other, 1, y, 0, shift, n));
            let [vr, vl, vd, vu] = at.map(|(y, shift)| grid.slice(v_other, 1, y, 0, shift, n));
            let (ru, rv) = (&mut ru[1..1 + n], &mut rv[1..1 + n]);
            for k in 0..n {
                let su = b1[k] + wr[k] * ur[k] + wl[k] * ul[k] + wd[k] * ud[k] + wu[k] * uu[k];
                let sv = b2[k] + wr[k] * vr[k] + wl[k] * vl[k] + wd[k] * vd[k] + wu[k] * vu[k];
                let nu = (1.0 - SOR_OMEGA) * ru[k] + SOR_OMEGA * (su - a12[k] * rv[k]) * inv1[k];
                let nv = (1.0 - SOR_OMEGA) * rv[k] + SOR_OMEGA * (sv - a12[k] * nu) * inv2[k];
                ru[k] = nu;
                rv[k] = nv;
            }
        });
}

/// `planes[c]` mutably and `planes[1 - c]` shared.
fn split_colour(planes: &mut [Vec<f32>; 2], c: usize) -> (&mut [f32], &[f32]) {
    let (first, second) = planes.split_at_mut(1);
    if c == 0 {
        (&mut first[0], &second[0])
    } else {
        (&mut second[0], &first[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth, non-periodic test pattern (random Gaussian blobs), defined
    /// everywhere so it can be shifted by fractions of a pixel exactly.
    fn pattern(x: f32, y: f32) -> f32 {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut v = 0.5;
        for _ in 0..120 {
            let (cx, cy) = (next() * 300.0 - 20.0, next() * 240.0 - 20.0);
            let s = 4.0 + next() * 10.0;
            let amp = next() - 0.5;
            v += 0.4 * amp * (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * s * s)).exp();
        }
        v
    }

    fn render(w: usize, h: usize, dx: f32, dy: f32) -> Vec<f32> {
        (0..w * h)
            .map(|i| pattern((i % w) as f32 - dx, (i / w) as f32 - dy))
            .collect()
    }

    /// Mean end-point error against a known motion `truth(x, y)`, at least
    /// `margin` pixels from the borders (where content leaves the frame).
    fn inner_epe(flow: &FlowField, margin: usize, truth: impl Fn(f32, f32) -> (f32, f32)) -> f64 {
        let (w, h) = (flow.width, flow.height);
        let (mut sum, mut count) = (0.0, 0.0);
        for y in margin..h - margin {
            for x in margin..w - margin {
                let i = y * w + x;
                let (tu, tv) = truth(x as f32, y as f32);
                sum += f64::from(flow.u[i] - tu).hypot(f64::from(flow.v[i] - tv));
                count += 1.0;
            }
        }
        sum / count
    }

    #[test]
    fn recovers_a_global_subpixel_shift() {
        let (w, h) = (160, 120);
        let a = render(w, h, 0.0, 0.0);
        let b = render(w, h, 3.4, -2.2);
        let flow = estimate_flow(&a, &b, w, h, &FlowParams::default());
        let epe = inner_epe(&flow, 10, |_, _| (3.4, -2.2));
        assert!(epe < 0.1, "end-point error {epe}");
    }

    #[test]
    fn larger_motion_is_found_through_the_pyramid() {
        let (w, h) = (256, 192);
        let a = render(w, h, 0.0, 0.0);
        let b = render(w, h, 14.0, 9.0);
        let flow = estimate_flow(&a, &b, w, h, &FlowParams::default());
        let i = (h / 2) * w + w / 2;
        assert!(
            (flow.u[i] - 14.0).abs() < 0.3 && (flow.v[i] - 9.0).abs() < 0.3,
            "({}, {})",
            flow.u[i],
            flow.v[i]
        );
    }

    #[test]
    fn still_frames_and_exposure_changes_give_no_motion() {
        let (w, h) = (96, 64);
        let a = render(w, h, 0.0, 0.0);
        let brighter: Vec<f32> = a.iter().map(|v| v + 0.08).collect();
        let flow = estimate_flow(&a, &brighter, w, h, &FlowParams::default());
        let epe = flow.endpoint_error(&FlowField::zero(w, h));
        assert!(epe < 0.05, "flicker must not read as motion: {epe}");
    }

    #[test]
    fn tiny_and_flat_frames_do_not_panic() {
        let flow = estimate_flow(&[0.5; 1], &[0.5; 1], 1, 1, &FlowParams::default());
        assert_eq!(flow.u, vec![0.0]);
        let flat = vec![0.3; 20 * 10];
        for params in [FlowParams::fast(), FlowParams::preset(DisPreset::Medium)] {
            let flow = estimate_flow(&flat, &flat, 20, 10, &params);
            assert!(flow.u.iter().chain(&flow.v).all(|v| v.abs() < 1e-6));
        }
        for (w, h) in [(2, 2), (3, 7), (9, 2), (17, 13)] {
            let a = render(w, h, 0.0, 0.0);
            let b = render(w, h, 0.5, 0.25);
            for preset in DisPreset::ALL {
                let flow = estimate_flow(&a, &b, w, h, &FlowParams::preset(preset));
                assert_eq!((flow.width, flow.height), (w, h));
                assert!(flow.u.iter().chain(&flow.v).all(|v| v.is_finite()));
            }
        }
    }

    /// Rotation by `deg` degrees about the image centre, plus a shift: the
    /// flow at (x, y) of frame `a` (frame `b` is the pattern moved).
    fn rigid(w: usize, h: usize, deg: f32, shift: (f32, f32)) -> impl Fn(f32, f32) -> (f32, f32) {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        move |x, y| {
            let (dx, dy) = (x - cx, y - cy);
            (
                c * dx - s * dy + cx + shift.0 - x,
                s * dx + c * dy + cy + shift.1 - y,
            )
        }
    }

    /// Renders frame b of a rigid motion: b(q) = a(p) with q = motion(p).
    fn render_rigid(w: usize, h: usize, deg: f32, shift: (f32, f32)) -> Vec<f32> {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        (0..w * h)
            .map(|i| {
                // Inverse motion: rotate back by -deg about the centre.
                let (qx, qy) = ((i % w) as f32 - cx - shift.0, (i / w) as f32 - cy - shift.1);
                pattern(c * qx + s * qy + cx, -s * qx + c * qy + cy)
            })
            .collect()
    }

    #[test]
    fn every_preset_follows_translation_and_rotation() {
        let (w, h) = (256, 192);
        let a = render(w, h, 0.0, 0.0);
        // Limits about 1.5x the end-point errors measured (in the comments):
        // a rotation of 2 degrees moves the corners by 5.6 pixels, and a
        // patch's translation fits a rotating neighbourhood only roughly.
        let cases = [
            // (name, degrees, shift, [ultrafast, fast, medium, default])
            (
                "translation",
                0.0f32,
                (5.3f32, -3.6f32),
                [0.12, 0.06, 0.04, 0.04],
            ), // .081 .035 .024 .020
            ("rotation", 2.0, (0.0, 0.0), [0.4, 0.25, 0.2, 0.55]), // .265 .155 .135 .367
            (
                "rotation + translation",
                -1.5,
                (2.5, 1.5),
                [0.3, 0.2, 0.16, 0.42],
            ), // .204 .134 .106 .278
        ];
        for (name, deg, shift, limits) in cases {
            let b = render_rigid(w, h, deg, shift);
            let truth = rigid(w, h, deg, shift);
            let runs = DisPreset::ALL
                .map(|p| (p.name(), FlowParams::preset(p)))
                .into_iter()
                .chain([("default", FlowParams::default())]);
            for ((preset, params), limit) in runs.zip(limits) {
                let flow = estimate_flow(&a, &b, w, h, &params);
                let epe = inner_epe(&flow, 16, &truth);
                assert!(epe < limit, "{name}, {preset}: end-point error {epe}");
            }
        }
    }

    #[test]
    fn the_parallel_result_is_deterministic() {
        let (w, h) = (240, 180);
        let a = render(w, h, 0.0, 0.0);
        let b = render_rigid(w, h, 1.0, (2.0, -1.0));
        for params in DisPreset::ALL
            .map(FlowParams::preset)
            .into_iter()
            .chain([FlowParams::default()])
        {
            let first = estimate_flow(&a, &b, w, h, &params);
            let second = estimate_flow(&a, &b, w, h, &params);
            assert!(first == second, "{params:?} gave two different results");
            // And on a single thread, the same again.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a one-thread pool");
            let single = pool.install(|| estimate_flow(&a, &b, w, h, &params));
            assert!(first == single, "{params:?}: one thread differs from many");
        }
    }

    #[test]
    fn refinement_cleans_up_a_noisy_flow() {
        let (w, h) = (160, 120);
        let a = render(w, h, 0.0, 0.0);
        let b = render(w, h, 1.3, 0.7);
        let scale = |p: &[f32]| Plane {
            w,
            h,
            px: p.iter().map(|v| v * UNIT).collect(),
        };
        // The true flow plus up to half a pixel of noise, from a fixed seed.
        let mut state = 12345u32;
        let mut noise = || {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut flow = FlowField::zero(w, h);
        for (u, v) in flow.u.iter_mut().zip(flow.v.iter_mut()) {
            *u = 1.3 + noise();
            *v = 0.7 + noise();
        }
        let before = inner_epe(&flow, 8, |_, _| (1.3, 0.7));
        refine(
            &scale(&a),
            &scale(&b),
            &mut flow,
            &FlowParams::preset(DisPreset::Fast),
        );
        let after = inner_epe(&flow, 8, |_, _| (1.3, 0.7));
        assert!(after < 0.5 * before, "EPE {before} -> {after}");
    }
}
