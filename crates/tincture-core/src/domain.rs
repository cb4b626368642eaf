//! The edge-aware recursive filter of Gastal & Oliveira ("Domain Transform
//! for Edge-Aware Image and Video Processing", SIGGRAPH 2011).
//!
//! The image is stretched along each row and column by its guide's changes:
//! two neighbours are `1 + (sigma_s / sigma_r) * |Δguide|` apart instead of
//! one. A first-order recursive filter run forwards and backwards over that
//! stretched line then smooths within regions of even guide and barely across
//! its edges. Alternating horizontal and vertical passes, with the spatial
//! sigma shrinking each iteration, approximates a 2-D edge-aware Gaussian in
//! O(N) time whatever `sigma_s`.
//!
//! Tincture uses it to carry sparse colour (painted hints, their difference
//! from the model's colour) to the pixels that share their region.

/// A domain-transform filter prepared for one guide image.
#[derive(Clone, Debug)]
pub struct DomainTransform {
    width: usize,
    height: usize,
    sigma_s: f32,
    iterations: usize,
    /// Distance from each pixel to its left neighbour (unused at x = 0).
    dx: Vec<f32>,
    /// Distance from each pixel to the pixel above (unused at y = 0).
    dy: Vec<f32>,
}

impl DomainTransform {
    /// Prepares the filter. `sigma_s` is the spatial reach in pixels,
    /// `sigma_r` the guide difference that counts as an edge (guide units),
    /// `iterations` the number of horizontal+vertical rounds (3 is plenty).
    ///
    /// # Panics
    /// When `guide.len() != width * height`.
    pub fn new(
        guide: &[f32],
        width: usize,
        height: usize,
        sigma_s: f32,
        sigma_r: f32,
        iterations: usize,
    ) -> Self {
        assert_eq!(guide.len(), width * height, "guide size");
        let ratio = sigma_s / sigma_r.max(1e-6);
        let mut dx = vec![1.0f32; guide.len()];
        let mut dy = vec![1.0f32; guide.len()];
        for y in 0..height {
            let row = y * width;
            for x in 1..width {
                dx[row + x] = 1.0 + ratio * (guide[row + x] - guide[row + x - 1]).abs();
            }
            if y > 0 {
                for x in 0..width {
                    dy[row + x] = 1.0 + ratio * (guide[row + x] - guide[row + x - width]).abs();
                }
            }
        }
        Self {
            width,
            height,
            sigma_s: sigma_s.max(1e-3),
            iterations: iterations.max(1),
            dx,
            dy,
        }
    }

    /// The spatial sigma of round `i` (Gastal & Oliveira, eq. 14): the rounds'
    /// variances add up to `sigma_s²`.
    fn round_sigma(&self, i: usize) -> f32 {
        let n = self.iterations as i32;
        self.sigma_s * 3f32.sqrt() * 2f32.powi(n - 1 - i as i32) / (4f32.powi(n) - 1.0).sqrt()
    }

    /// Filters `src` in place.
    ///
    /// # Panics
    /// When `src.len() != width * height`.
    pub fn filter_in_place(&self, src: &mut [f32]) {
        assert_eq!(src.len(), self.width * self.height, "image size");
        let (w, h) = (self.width, self.height);
        for i in 0..self.iterations {
            let ln_a = -(2f32.sqrt()) / self.round_sigma(i);
            // Rows.
            for y in 0..h {
                let row = y * w;
                for x in 1..w {
                    let k = (ln_a * self.dx[row + x]).exp();
                    src[row + x] += k * (src[row + x - 1] - src[row + x]);
                }
                for x in (0..w.saturating_sub(1)).rev() {
                    let k = (ln_a * self.dx[row + x + 1]).exp();
                    src[row + x] += k * (src[row + x + 1] - src[row + x]);
                }
            }
            // Columns, swept row by row so memory is read in order.
            for y in 1..h {
                let (above, below) = src.split_at_mut(y * w);
                let above = &above[(y - 1) * w..];
                for x in 0..w {
                    let k = (ln_a * self.dy[y * w + x]).exp();
                    below[x] += k * (above[x] - below[x]);
                }
            }
            for y in (0..h.saturating_sub(1)).rev() {
                let (top, rest) = src.split_at_mut((y + 1) * w);
                let here = &mut top[y * w..];
                for x in 0..w {
                    let k = (ln_a * self.dy[(y + 1) * w + x]).exp();
                    here[x] += k * (rest[x] - here[x]);
                }
            }
        }
    }

    /// Filters a copy of `src`.
    pub fn filter(&self, src: &[f32]) -> Vec<f32> {
        let mut out = src.to_vec();
        self.filter_in_place(&mut out);
        out
    }

    /// The filtered value at the centre of a unit impulse on a flat guide:
    /// how much weight a lone sample keeps at its own pixel. Normalised
    /// convolution uses it to judge how well a pixel is covered by samples.
    pub fn impulse_peak(sigma_s: f32, iterations: usize) -> f32 {
        let half = (6.0 * sigma_s.max(1e-3)).ceil() as usize + 2;
        let n = 2 * half + 1;
        let line = Self::new(&vec![0.0; n], n, 1, sigma_s, 1.0, iterations);
        let mut v = vec![0.0f32; n];
        v[half] = 1.0;
        line.filter_in_place(&mut v);
        v[half] * v[half]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_guide_preserves_constants_and_mass() {
        let (w, h) = (64, 48);
        let dt = DomainTransform::new(&vec![0.5; w * h], w, h, 6.0, 0.1, 3);
        let out = dt.filter(&vec![3.0; w * h]);
        assert!(out.iter().all(|v| (v - 3.0).abs() < 1e-4));
        let mut impulse = vec![0.0f32; w * h];
        impulse[24 * w + 32] = 1.0;
        let out = dt.filter(&impulse);
        let sum: f32 = out.iter().sum();
        assert!(
            (sum - 1.0).abs() < 0.05,
            "mass kept away from borders: {sum}"
        );
        // Spread is symmetric and about sigma_s wide.
        let left = out[24 * w + 26];
        let right = out[24 * w + 38];
        assert!((left - right).abs() < 1e-3 * out[24 * w + 32]);
        assert!(left > 0.1 * out[24 * w + 32] && left < 0.9 * out[24 * w + 32]);
        let peak = DomainTransform::impulse_peak(6.0, 3);
        assert!(
            (peak - out[24 * w + 32]).abs() < 0.05 * peak,
            "{peak} vs {}",
            out[24 * w + 32]
        );
    }

    #[test]
    fn edges_in_the_guide_stop_the_spread() {
        let (w, h) = (80, 20);
        // Left half dark, right half bright.
        let guide: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 40 { 20.0 } else { 80.0 })
            .collect();
        let dt = DomainTransform::new(&guide, w, h, 20.0, 10.0, 3);
        let mut impulse = vec![0.0f32; w * h];
        impulse[10 * w + 36] = 1.0;
        let out = dt.filter(&impulse);
        let same_side = out[10 * w + 33];
        let across = out[10 * w + 43];
        assert!(
            same_side > 50.0 * across,
            "3 px on the same side {same_side} vs 7 px across the edge {across}"
        );
    }
}
