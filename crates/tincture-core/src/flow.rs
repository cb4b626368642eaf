//! Dense optical flow between two gray frames, by dense inverse search
//! (Kroeger, Timofte, Dai & Van Gool, "Fast Optical Flow using Dense Inverse
//! Search", ECCV 2016), without its variational refinement.
//!
//! Coarse to fine over an image pyramid, every level lays a grid of
//! overlapping square patches over the first frame, finds each patch's
//! displacement into the second frame by inverse-compositional Lucas-Kanade
//! (gradients and Hessian are computed once per patch, on the first frame),
//! and densifies: every pixel takes the mean of the displacements of the
//! patches that cover it, each weighted by how well it explains that pixel.
//!
//! Tincture measures flicker with it (the warp error follows motion), so the
//! flow runs on luma, which a colorization never changes: source, output and
//! ground truth all share one flow field.

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

/// Settings of [`estimate_flow`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowParams {
    /// Side of the square patches, in pixels.
    pub patch: usize,
    /// Distance between neighbouring patches (smaller: denser, slower).
    pub stride: usize,
    /// Gauss-Newton iterations per patch.
    pub iterations: usize,
    /// The finest pyramid level worked on: 0 is full resolution, 1 half
    /// resolution (the result is then upscaled), and so on.
    pub finest_level: usize,
    /// The coarsest level's shorter side is at least this many pixels.
    pub coarsest_side: usize,
}

impl Default for FlowParams {
    fn default() -> Self {
        Self {
            patch: 8,
            stride: 4,
            iterations: 12,
            finest_level: 0,
            coarsest_side: 24,
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
}

/// A single-channel float image.
#[derive(Clone, Debug)]
struct Gray {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

impl Gray {
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

    /// Half size by 2x2 means (odd edges take the last row/column once).
    fn half(&self) -> Self {
        let w = self.w.div_ceil(2);
        let h = self.h.div_ceil(2);
        let mut px = Vec::with_capacity(w * h);
        for y in 0..h {
            let (y0, y1) = (2 * y, (2 * y + 1).min(self.h - 1));
            for x in 0..w {
                let (x0, x1) = (2 * x, (2 * x + 1).min(self.w - 1));
                px.push(
                    0.25 * (self.at(x0, y0) + self.at(x1, y0) + self.at(x0, y1) + self.at(x1, y1)),
                );
            }
        }
        Self { w, h, px }
    }

    /// Central-difference gradients (one-sided at the borders).
    fn gradients(&self) -> (Vec<f32>, Vec<f32>) {
        let (w, h) = (self.w, self.h);
        let mut gx = vec![0.0; w * h];
        let mut gy = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
                let (yu, yd) = (y.saturating_sub(1), (y + 1).min(h - 1));
                let dx = (xr - xl).max(1) as f32;
                let dy = (yd - yu).max(1) as f32;
                gx[y * w + x] = (self.at(xr, y) - self.at(xl, y)) / dx;
                gy[y * w + x] = (self.at(x, yd) - self.at(x, yu)) / dy;
            }
        }
        (gx, gy)
    }
}

/// Bilinear resampling of a plane to another size (pixel centres aligned).
fn resample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let g = Gray {
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

/// Estimates the flow from `from` to `to`, two gray images of
/// `width x height` unit-range (or any consistent scale) values.
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
    let mut pyramid_a = vec![Gray {
        w: width,
        h: height,
        px: from.to_vec(),
    }];
    let mut pyramid_b = vec![Gray {
        w: width,
        h: height,
        px: to.to_vec(),
    }];
    let min_side = params.coarsest_side.max(params.patch * 2);
    while {
        let last = &pyramid_a[pyramid_a.len() - 1];
        last.w.min(last.h) / 2 >= min_side
    } {
        let a = pyramid_a[pyramid_a.len() - 1].half();
        let b = pyramid_b[pyramid_b.len() - 1].half();
        pyramid_a.push(a);
        pyramid_b.push(b);
    }
    let finest = params.finest_level.min(pyramid_a.len() - 1);
    let coarsest = pyramid_a.len() - 1;
    let mut flow = FlowField::zero(pyramid_a[coarsest].w, pyramid_a[coarsest].h);
    for level in (finest..=coarsest).rev() {
        let a = &pyramid_a[level];
        let b = &pyramid_b[level];
        if (flow.width, flow.height) != (a.w, a.h) {
            flow = flow.resized(a.w, a.h);
        }
        flow = refine_level(a, b, &flow, params);
    }
    if finest > 0 {
        flow = flow.resized(width, height);
    }
    flow
}

/// One pyramid level: inverse search per patch, then densification.
fn refine_level(a: &Gray, b: &Gray, init: &FlowField, params: &FlowParams) -> FlowField {
    let (w, h) = (a.w, a.h);
    let p = params.patch.min(w).min(h);
    let (gx, gy) = a.gradients();
    let xs = origins(w, p, params.stride);
    let ys = origins(h, p, params.stride);
    let n = p * p;
    let mut tmpl = vec![0.0f32; n];
    let mut tgx = vec![0.0f32; n];
    let mut tgy = vec![0.0f32; n];
    let mut warped = vec![0.0f32; n];

    let mut acc_u = vec![0.0f32; w * h];
    let mut acc_v = vec![0.0f32; w * h];
    let mut acc_w = vec![0.0f32; w * h];

    for &oy in &ys {
        for &ox in &xs {
            // Template and its gradients, mean-normalised for robustness to
            // exposure changes between frames (film flicker).
            let (mut h11, mut h12, mut h22, mut mean) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for j in 0..p {
                for i in 0..p {
                    let k = j * p + i;
                    let idx = (oy + j) * w + ox + i;
                    tmpl[k] = a.px[idx];
                    tgx[k] = gx[idx];
                    tgy[k] = gy[idx];
                    mean += tmpl[k];
                    h11 += tgx[k] * tgx[k];
                    h12 += tgx[k] * tgy[k];
                    h22 += tgy[k] * tgy[k];
                }
            }
            mean /= n as f32;
            // Slightly regularised Hessian, so edges (rank-one structure)
            // move along their normal only; flat patches (det ~ 0) keep
            // their initial motion.
            let reg = 1e-3 * 0.5 * (h11 + h22) + 1e-9;
            let (h11, h22) = (h11 + reg, h22 + reg);
            let det = h11 * h22 - h12 * h12;
            // Initial displacement: the coarser level's flow at the centre.
            let c = (oy + p / 2).min(h - 1) * w + (ox + p / 2).min(w - 1);
            let (u0, v0) = (init.u[c], init.v[c]);
            let (mut u, mut v) = (u0, v0);
            if det > 1e-10 * n as f32 * n as f32 {
                // Gauss-Newton steps; the patch's residual at each visited
                // position is its cost, and the best position visited wins
                // (so a step that makes things worse is never kept).
                let (mut best, mut best_cost) = ((u0, v0), f32::INFINITY);
                for _ in 0..params.iterations {
                    let mut wmean = 0.0;
                    for j in 0..p {
                        for i in 0..p {
                            let s = b.sample((ox + i) as f32 + u, (oy + j) as f32 + v);
                            warped[j * p + i] = s;
                            wmean += s;
                        }
                    }
                    wmean /= n as f32;
                    let (mut b1, mut b2, mut ssd) = (0.0f32, 0.0f32, 0.0f32);
                    for k in 0..n {
                        let e = (warped[k] - wmean) - (tmpl[k] - mean);
                        b1 += tgx[k] * e;
                        b2 += tgy[k] * e;
                        ssd += e * e;
                    }
                    if ssd < best_cost {
                        best_cost = ssd;
                        best = (u, v);
                    }
                    let du = (h22 * b1 - h12 * b2) / det;
                    let dv = (h11 * b2 - h12 * b1) / det;
                    if !(du.is_finite() && dv.is_finite()) {
                        break;
                    }
                    u -= du;
                    v -= dv;
                    // Wandered off: more than a patch from where it started.
                    if (u - u0).abs() > p as f32 || (v - v0).abs() > p as f32 {
                        break;
                    }
                    if du * du + dv * dv < 1e-4 {
                        // Converged: the last small step is kept.
                        best = (u, v);
                        break;
                    }
                }
                (u, v) = best;
            }
            // Densification: each covered pixel takes this displacement with
            // a weight that falls with its own photometric error.
            for j in 0..p {
                for i in 0..p {
                    let (x, y) = (ox + i, oy + j);
                    let e = (b.sample(x as f32 + u, y as f32 + v) - a.at(x, y)).abs();
                    let wt = 1.0 / (e * 255.0).max(1.0);
                    let idx = y * w + x;
                    acc_u[idx] += wt * u;
                    acc_v[idx] += wt * v;
                    acc_w[idx] += wt;
                }
            }
        }
    }
    let mut out = init.clone();
    for i in 0..w * h {
        if acc_w[i] > 0.0 {
            out.u[i] = acc_u[i] / acc_w[i];
            out.v[i] = acc_v[i] / acc_w[i];
        }
    }
    out
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

    #[test]
    fn recovers_a_global_subpixel_shift() {
        let (w, h) = (160, 120);
        let a = render(w, h, 0.0, 0.0);
        let b = render(w, h, 3.4, -2.2);
        let flow = estimate_flow(&a, &b, w, h, &FlowParams::default());
        let mut truth = FlowField::zero(w, h);
        truth.u.fill(3.4);
        truth.v.fill(-2.2);
        // Away from the borders, where the content leaves the frame.
        let mut inner = 0.0;
        let mut count = 0.0;
        for y in 10..h - 10 {
            for x in 10..w - 10 {
                let i = y * w + x;
                inner += f64::from(flow.u[i] - 3.4).hypot(f64::from(flow.v[i] + 2.2));
                count += 1.0;
            }
        }
        let epe = inner / count;
        assert!(epe < 0.1, "end-point error {epe}"); // 0.07 measured
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
        let flow = estimate_flow(&flat, &flat, 20, 10, &FlowParams::fast());
        assert!(flow.u.iter().chain(&flow.v).all(|v| v.abs() < 1e-6));
    }
}
