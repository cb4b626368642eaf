//! The guided filter of He, Sun & Tang ("Guided Image Filtering", ECCV 2010),
//! in O(N) time whatever the radius: every box mean is computed with running
//! sums, so a radius of 2 costs the same as a radius of 200.
//!
//! Tincture uses it to clean up chroma with the source's luma as the guide:
//! chroma is smoothed inside regions of even luma and follows the luma's
//! edges exactly, which is what stops colour from bleeding across outlines.
//!
//! All images here are single-channel, row-major `f32` slices without
//! padding. Box windows are clamped at the borders: near an edge the mean is
//! taken over the part of the window that lies inside the image.

/// Mean of `src` over the `(2 * radius + 1)²` window around every pixel,
/// clamped at the borders (the mean averages only the pixels inside the
/// image). O(N) in the number of pixels, independent of `radius`.
///
/// # Panics
/// When `src.len() != width * height`.
pub fn box_mean(src: &[f32], width: usize, height: usize, radius: usize) -> Vec<f32> {
    let mut out = vec![0.0; width * height];
    let mut scratch = BoxScratch::default();
    box_mean_into(src, width, height, radius, &mut scratch, &mut out);
    out
}

/// Edge-preserving smoothing of `src` guided by `guide` (both `width * height`
/// values), with box windows of `radius` and regularisation `eps` (in units of
/// the guide's variance: edges whose guide variance is well above `eps` are
/// kept, flatter areas are averaged).
///
/// A radius larger than the image and images of one pixel are fine; an empty
/// image gives an empty result.
///
/// # Panics
/// When `guide` or `src` does not hold `width * height` values.
pub fn guided_filter(
    guide: &[f32],
    src: &[f32],
    width: usize,
    height: usize,
    radius: usize,
    eps: f32,
) -> Vec<f32> {
    let mut filter = GuidedFilter::new(guide, width, height, radius, eps);
    let mut out = vec![0.0; width * height];
    filter.filter_into(src, &mut out);
    out
}

/// A guided filter prepared for one guide image, to filter several inputs
/// (for instance Cb and Cr) with the guide's statistics computed once.
///
/// It owns its scratch buffers, so filtering allocates nothing.
#[derive(Clone, Debug)]
pub struct GuidedFilter {
    width: usize,
    height: usize,
    radius: usize,
    guide: Vec<f32>,
    /// Box mean of the guide.
    mean_i: Vec<f32>,
    /// `1 / (var(guide) + eps)` per pixel.
    inv_var: Vec<f32>,
    tmp_a: Vec<f32>,
    tmp_b: Vec<f32>,
    tmp_c: Vec<f32>,
    scratch: BoxScratch,
}

impl GuidedFilter {
    /// Computes the guide's local means and variances.
    ///
    /// # Panics
    /// When `guide.len() != width * height`.
    pub fn new(guide: &[f32], width: usize, height: usize, radius: usize, eps: f32) -> Self {
        let n = width * height;
        assert_eq!(guide.len(), n, "guide must hold width * height values");
        let mut filter = Self {
            width,
            height,
            radius,
            guide: guide.to_vec(),
            mean_i: vec![0.0; n],
            inv_var: vec![0.0; n],
            tmp_a: vec![0.0; n],
            tmp_b: vec![0.0; n],
            tmp_c: vec![0.0; n],
            scratch: BoxScratch::default(),
        };
        filter.set_guide_stats(eps);
        filter
    }

    /// Re-prepares the filter for a new guide (of any size), reusing the
    /// buffers already allocated; for filtering frame after frame.
    ///
    /// # Panics
    /// When `guide.len() != width * height`.
    pub fn reset(&mut self, guide: &[f32], width: usize, height: usize, radius: usize, eps: f32) {
        let n = width * height;
        assert_eq!(guide.len(), n, "guide must hold width * height values");
        self.width = width;
        self.height = height;
        self.radius = radius;
        self.guide.clear();
        self.guide.extend_from_slice(guide);
        for buf in [
            &mut self.mean_i,
            &mut self.inv_var,
            &mut self.tmp_a,
            &mut self.tmp_b,
            &mut self.tmp_c,
        ] {
            buf.clear();
            buf.resize(n, 0.0);
        }
        self.set_guide_stats(eps);
    }

    fn set_guide_stats(&mut self, eps: f32) {
        let (w, h, r) = (self.width, self.height, self.radius);
        box_mean_into(&self.guide, w, h, r, &mut self.scratch, &mut self.mean_i);
        for (sq, &g) in self.tmp_a.iter_mut().zip(&self.guide) {
            *sq = g * g;
        }
        box_mean_into(&self.tmp_a, w, h, r, &mut self.scratch, &mut self.tmp_b);
        let eps = eps.max(0.0);
        for ((iv, &m), &m2) in self.inv_var.iter_mut().zip(&self.mean_i).zip(&self.tmp_b) {
            let var = (m2 - m * m).max(0.0);
            let denom = var + eps;
            *iv = if denom > 0.0 { 1.0 / denom } else { 0.0 };
        }
    }

    /// Width of the guide in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height of the guide in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Filters `src` (the guide's size) into a new buffer.
    ///
    /// # Panics
    /// When `src.len()` differs from the guide's size.
    pub fn filter(&mut self, src: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.guide.len()];
        self.filter_into(src, &mut out);
        out
    }

    /// Filters `src` into `out`, both the guide's size; `src` and `out` may
    /// not alias (Rust forbids it anyway), but `out` may be a buffer reused
    /// from frame to frame.
    ///
    /// # Panics
    /// When `src.len()` or `out.len()` differs from the guide's size.
    pub fn filter_into(&mut self, src: &[f32], out: &mut [f32]) {
        let n = self.guide.len();
        assert_eq!(src.len(), n, "src must have the guide's size");
        assert_eq!(out.len(), n, "out must have the guide's size");
        // q = mean(a) * I + mean(b).
        let mut mean_a = std::mem::take(&mut self.tmp_c);
        self.coefficients_into(src, &mut mean_a, out);
        for ((q, &ma), &g) in out.iter_mut().zip(&mean_a).zip(&self.guide) {
            *q += ma * g;
        }
        self.tmp_c = mean_a;
    }

    /// The filter's smoothed linear coefficients for `src`: the output is
    /// `mean_a * guide + mean_b` at every pixel. Brought to a larger size
    /// and applied to a larger guide, they upsample `src` along that
    /// guide's edges (see [`upsample_into`](Self::upsample_into)).
    fn coefficients_into(&mut self, src: &[f32], mean_a: &mut [f32], mean_b: &mut [f32]) {
        let (w, h, r) = (self.width, self.height, self.radius);

        // mean_p -> tmp_b, mean(I * p) -> mean_a (as scratch).
        box_mean_into(src, w, h, r, &mut self.scratch, &mut self.tmp_b);
        for ((ip, &g), &p) in self.tmp_a.iter_mut().zip(&self.guide).zip(src) {
            *ip = g * p;
        }
        box_mean_into(&self.tmp_a, w, h, r, &mut self.scratch, mean_a);

        // a -> tmp_a, b -> tmp_b.
        for (((a_out, b_out), (&mean_i, &inv_var)), &mean_ip) in self
            .tmp_a
            .iter_mut()
            .zip(self.tmp_b.iter_mut())
            .zip(self.mean_i.iter().zip(&self.inv_var))
            .zip(mean_a.iter())
        {
            let mean_p = *b_out;
            let a = (mean_ip - mean_i * mean_p) * inv_var;
            *a_out = a;
            *b_out = mean_p - a * mean_i;
        }
        box_mean_into(&self.tmp_a, w, h, r, &mut self.scratch, mean_a);
        box_mean_into(&self.tmp_b, w, h, r, &mut self.scratch, mean_b);
    }

    /// Fast guided upsampling (He & Sun, "Fast Guided Filter", 2015):
    /// `src`, at this filter's size, brought to the size of `fine_guide`
    /// (`fine_width` x `fine_height`, the same picture as this filter's
    /// guide at a larger size). The filter's coefficients are computed at
    /// the small size, brought up bilinearly (pixel centres aligned) and
    /// applied to the fine guide, so the result's edges are the fine
    /// guide's own. Rows of the output are computed in parallel.
    ///
    /// # Panics
    /// When `src` does not have the guide's size, or `fine_guide` and `out`
    /// do not hold `fine_width * fine_height` values.
    pub fn upsample_into(
        &mut self,
        src: &[f32],
        fine_guide: &[f32],
        fine_width: usize,
        fine_height: usize,
        out: &mut [f32],
    ) {
        use rayon::prelude::*;
        let n = self.guide.len();
        assert_eq!(src.len(), n, "src must have the guide's size");
        let fine = fine_width * fine_height;
        assert_eq!(
            fine_guide.len(),
            fine,
            "the fine guide must hold width * height values"
        );
        assert_eq!(out.len(), fine, "out must hold width * height values");
        if n == 0 || fine == 0 {
            out.fill(0.0);
            return;
        }
        let (mut mean_a, mut mean_b) = (vec![0.0; n], vec![0.0; n]);
        self.coefficients_into(src, &mut mean_a, &mut mean_b);
        let (sw, sh) = (self.width, self.height);
        let (xs, ys) = (
            bilinear_taps(fine_width, sw),
            bilinear_taps(fine_height, sh),
        );
        let (ma, mb) = (&mean_a, &mean_b);
        out.par_chunks_mut(fine_width)
            .zip(fine_guide.par_chunks(fine_width))
            .zip(&ys)
            .for_each(|((row, guide), &(j0, j1, t))| {
                let (a0, a1) = (&ma[j0 * sw..][..sw], &ma[j1 * sw..][..sw]);
                let (b0, b1) = (&mb[j0 * sw..][..sw], &mb[j1 * sw..][..sw]);
                for ((o, &g), &(i0, i1, u)) in row.iter_mut().zip(guide).zip(&xs) {
                    let lerp2 = |r0: &[f32], r1: &[f32]| {
                        let top = r0[i0] + (r0[i1] - r0[i0]) * u;
                        let bot = r1[i0] + (r1[i1] - r1[i0]) * u;
                        top + (bot - top) * t
                    };
                    *o = lerp2(a0, a1) * g + lerp2(b0, b1);
                }
            });
    }
}

/// Where each of `dst` samples lies among `src` samples when resampling with
/// pixel centres aligned: the sample before, the one after (clamped at the
/// ends) and the weight of the one after.
///
/// # Panics
/// When `src` is 0 and `dst` is not.
pub fn bilinear_taps(dst: usize, src: usize) -> Vec<(usize, usize, f32)> {
    let k = src as f32 / dst as f32;
    (0..dst)
        .map(|x| {
            let f = ((x as f32 + 0.5) * k - 0.5).clamp(0.0, (src - 1) as f32);
            let i = f as usize;
            (i, (i + 1).min(src - 1), f - i as f32)
        })
        .collect()
}

/// Scratch space for [`box_mean_into`], kept between calls so repeated
/// filtering allocates nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct BoxScratch {
    /// Running column sums over the current vertical window.
    col: Vec<f64>,
    /// Copy of the rows being filtered horizontally.
    rows: Vec<f32>,
    /// `1 / count` of the clamped horizontal window at each column.
    inv_cx: Vec<f64>,
}

/// Clamped window `[i - r, i + r] ∩ [0, n)` as a half-open range.
#[inline]
fn window(i: usize, r: usize, n: usize) -> (usize, usize) {
    (
        i.saturating_sub(r),
        i.saturating_add(r).saturating_add(1).min(n),
    )
}

/// Rows filtered together in the horizontal pass: their running sums are
/// independent, so the CPU overlaps them instead of waiting on one chain.
const ROW_GROUP: usize = 4;

/// [`box_mean`] into a caller-provided buffer, with reusable scratch space.
///
/// Vertical pass: one running sum per column (in `f64`, so adding and
/// removing rows never drifts), updated by one row entering and one leaving
/// the window; the column means go to `out`. Horizontal pass: a running sum
/// along each row of those, several rows at a time.
pub(crate) fn box_mean_into(
    src: &[f32],
    width: usize,
    height: usize,
    radius: usize,
    scratch: &mut BoxScratch,
    out: &mut [f32],
) {
    let n = width * height;
    assert_eq!(src.len(), n, "src must hold width * height values");
    assert_eq!(out.len(), n, "out must hold width * height values");
    if n == 0 {
        return;
    }
    let BoxScratch { col, rows, inv_cx } = scratch;

    // Vertical pass. Rows 0 ..= radius (clamped) form the window of row 0.
    col.clear();
    col.resize(width, 0.0);
    let first_hi = window(0, radius, height).1;
    for row in src.chunks_exact(width).take(first_hi) {
        for (c, &v) in col.iter_mut().zip(row) {
            *c += f64::from(v);
        }
    }
    for (y, out_row) in out.chunks_exact_mut(width).enumerate() {
        let (lo, hi) = window(y, radius, height);
        let inv_cy = 1.0 / (hi - lo) as f64;
        for (o, &c) in out_row.iter_mut().zip(col.iter()) {
            *o = (c * inv_cy) as f32;
        }
        // Slide to row y + 1: row `hi` enters, row `lo` leaves (if row
        // y + 1's window no longer reaches it).
        if y + 1 < height {
            let (next_lo, next_hi) = window(y + 1, radius, height);
            if next_hi > hi {
                for (c, &v) in col.iter_mut().zip(&src[hi * width..(hi + 1) * width]) {
                    *c += f64::from(v);
                }
            }
            if next_lo > lo {
                for (c, &v) in col.iter_mut().zip(&src[lo * width..(lo + 1) * width]) {
                    *c -= f64::from(v);
                }
            }
        }
    }

    // Horizontal pass, in place on `out` through a copy of the rows.
    inv_cx.clear();
    inv_cx.extend((0..width).map(|x| {
        let (lo, hi) = window(x, radius, width);
        1.0 / (hi - lo) as f64
    }));
    let mut groups = out.chunks_exact_mut(width * ROW_GROUP);
    for group in &mut groups {
        rows.clear();
        rows.extend_from_slice(group);
        horizontal::<ROW_GROUP>(rows, group, width, radius, inv_cx);
    }
    for row in groups.into_remainder().chunks_exact_mut(width) {
        rows.clear();
        rows.extend_from_slice(row);
        horizontal::<1>(rows, row, width, radius, inv_cx);
    }
}

/// Clamped horizontal box mean of `K` consecutive rows of `src` into `out`.
#[inline]
fn horizontal<const K: usize>(
    src: &[f32],
    out: &mut [f32],
    width: usize,
    radius: usize,
    inv_cx: &[f64],
) {
    debug_assert!(src.len() == K * width && out.len() == K * width && inv_cx.len() == width);
    let mut sum = [0.0f64; K];
    let first_hi = window(0, radius, width).1;
    for x in 0..first_hi {
        for (k, s) in sum.iter_mut().enumerate() {
            *s += f64::from(src[k * width + x]);
        }
    }
    for (x, &inv) in inv_cx.iter().enumerate() {
        for (k, s) in sum.iter().enumerate() {
            out[k * width + x] = (s * inv) as f32;
        }
        let enter = x + radius + 1;
        if enter < width {
            for (k, s) in sum.iter_mut().enumerate() {
                *s += f64::from(src[k * width + enter]);
            }
        }
        if x >= radius {
            let leave = x - radius;
            for (k, s) in sum.iter_mut().enumerate() {
                *s -= f64::from(src[k * width + leave]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_puts_colour_edges_on_the_fine_guides_edges() {
        // Fine 40x12: dark left of x = 17 (an odd column, inside a coarse
        // pixel), light right of it. Coarse 20x6: the same, area-averaged.
        let (fw, fh, sw, sh) = (40, 12, 20, 6);
        let fine: Vec<f32> = (0..fw * fh)
            .map(|i| if i % fw < 17 { 0.2 } else { 0.8 })
            .collect();
        let coarse: Vec<f32> = (0..sw * sh)
            .map(|i| {
                let x = i % sw;
                (fine[2 * x] + fine[2 * x + 1]) / 2.0
            })
            .collect();
        // Coarse chroma: 0.3 where dark, -0.1 where light, blended in the
        // mixed column, as a solve at that size gives it.
        let src: Vec<f32> = coarse
            .iter()
            .map(|&l| 0.3 - (l - 0.2) / 0.6 * 0.4)
            .collect();
        let mut filter = GuidedFilter::new(&coarse, sw, sh, 2, 1e-3);
        let mut out = vec![0.0; fw * fh];
        filter.upsample_into(&src, &fine, fw, fh, &mut out);
        for y in 0..fh {
            let row = &out[y * fw..(y + 1) * fw];
            for (x, &v) in row.iter().enumerate() {
                let want = if x < 17 { 0.3 } else { -0.1 };
                assert!((v - want).abs() < 0.02, "({x}, {y}): {v} against {want}");
            }
        }
        // A flat input stays flat whatever the guide.
        let flat = vec![0.125; sw * sh];
        filter.upsample_into(&flat, &fine, fw, fh, &mut out);
        assert!(out.iter().all(|&v| (v - 0.125).abs() < 1e-6));
    }

    /// Brute-force clamped box mean, for checking the running sums.
    fn box_mean_naive(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (yl, yh) = window(y, r, h);
                let (xl, xh) = window(x, r, w);
                let mut s = 0.0f64;
                for yy in yl..yh {
                    for xx in xl..xh {
                        s += f64::from(src[yy * w + xx]);
                    }
                }
                out[y * w + x] = (s / ((yh - yl) * (xh - xl)) as f64) as f32;
            }
        }
        out
    }

    /// Deterministic pseudo-random noise in -0.5..0.5.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn mean_var(v: &[f32]) -> (f32, f32) {
        let n = v.len() as f32;
        let m = v.iter().sum::<f32>() / n;
        (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / n)
    }

    #[test]
    fn box_mean_matches_naive_sums() {
        for (w, h, r) in [
            (7, 5, 1),
            (13, 9, 3),
            (4, 11, 0),
            (6, 6, 10),
            (1, 8, 2),
            (9, 1, 4),
        ] {
            let src = noise(w * h, (w * 31 + h) as u64);
            let fast = box_mean(&src, w, h, r);
            let slow = box_mean_naive(&src, w, h, r);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "{w}x{h} r={r}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn constant_source_stays_constant() {
        let (w, h) = (37, 23);
        let guide = noise(w * h, 7);
        let src = vec![0.25f32; w * h];
        for r in [1, 4, 30] {
            let out = guided_filter(&guide, &src, w, h, r, 1e-3);
            assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-4), "radius {r}");
        }
    }

    #[test]
    fn keeps_step_edge_and_removes_noise() {
        let (w, h) = (64, 48);
        let edge = w / 2;
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w < edge { 0.2 } else { 0.8 })
            .collect();
        let nz = noise(w * h, 42);
        let src: Vec<f32> = (0..w * h)
            .map(|i| if i % w < edge { 0.1 } else { 0.6 } + 0.1 * nz[i])
            .collect();
        let out = guided_filter(&guide, &src, w, h, 6, 1e-3);

        let side = |v: &[f32], left: bool| -> Vec<f32> {
            (0..w * h)
                .filter(|i| (i % w < edge) == left)
                .map(|i| v[i])
                .collect()
        };
        for left in [true, false] {
            let (m_in, v_in) = mean_var(&side(&src, left));
            let (m_out, v_out) = mean_var(&side(&out, left));
            assert!((m_out - m_in).abs() < 0.01, "mean kept: {m_in} -> {m_out}");
            assert!(v_out < v_in * 0.1, "noise reduced: {v_in} -> {v_out}");
            // Right at the edge each side keeps its own level.
            let expect = if left { 0.1 } else { 0.6 };
            let x = if left { edge - 1 } else { edge };
            for y in 0..h {
                let v = out[y * w + x];
                assert!((v - expect).abs() < 0.05, "edge pixel ({x},{y}) = {v}");
            }
        }
    }

    #[test]
    fn tiny_images_and_huge_radius() {
        assert_eq!(guided_filter(&[0.5], &[0.3], 1, 1, 0, 1e-3), vec![0.3]);
        let one = guided_filter(&[0.5], &[0.3], 1, 1, 8, 1e-3);
        assert!((one[0] - 0.3).abs() < 1e-6);
        let out = guided_filter(&[0.1, 0.9, 0.4], &[0.2, 0.7, 0.5], 3, 1, 100, 0.0);
        assert!(out.iter().all(|v| v.is_finite()));
        let out = guided_filter(&[0.1, 0.1, 0.1, 0.1], &[0.2, 0.7, 0.5, 0.1], 2, 2, 100, 0.0);
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(guided_filter(&[], &[], 0, 5, 3, 1e-3).is_empty());
        assert_eq!(box_mean(&[1.0, 3.0], 2, 1, 50), vec![2.0, 2.0]);
    }

    #[test]
    fn prepared_filter_matches_one_shot() {
        let (w, h) = (20, 17);
        let guide = noise(w * h, 3);
        let a = noise(w * h, 4);
        let b = noise(w * h, 5);
        let mut f = GuidedFilter::new(&guide, w, h, 3, 1e-2);
        assert_eq!(f.filter(&a), guided_filter(&guide, &a, w, h, 3, 1e-2));
        assert_eq!(f.filter(&b), guided_filter(&guide, &b, w, h, 3, 1e-2));
        let (w2, h2) = (9, 31);
        let guide2 = noise(w2 * h2, 6);
        let c = noise(w2 * h2, 8);
        f.reset(&guide2, w2, h2, 5, 1e-3);
        assert_eq!(f.filter(&c), guided_filter(&guide2, &c, w2, h2, 5, 1e-3));
    }
}
