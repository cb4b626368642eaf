//! Moving per-pixel data from one frame to the next along the optical flow,
//! with a confidence that says how far to trust each moved value.
//!
//! Both keyframe propagation ([`crate::propagate`]) and the temporal
//! stabiliser ([`crate::stabilise`]) build on [`carry`]: every pixel of
//! frame t looks up where it came from in frame t-1 (the flow t → t-1),
//! takes the value there by bilinear interpolation, and is trusted only when
//! the flow is consistent both ways (Sundaram, Brox & Keutzer's
//! forward-backward check, the one the warp-error metric uses), the point
//! lies inside the frame, and the luma there matches its own.

use rayon::prelude::*;

use crate::flow::FlowField;
use crate::frame::{ChromaField, LumaImage};
use crate::{Error, Result};

/// Chroma with a per-pixel confidence in 0..1.
#[derive(Clone, Debug, PartialEq)]
pub struct Confident {
    /// The chroma.
    pub chroma: ChromaField,
    /// How far each pixel's chroma can be trusted, 0..1.
    pub confidence: Vec<f32>,
}

impl Confident {
    /// Chroma trusted everywhere with the same confidence.
    pub fn uniform(chroma: ChromaField, confidence: f32) -> Self {
        let n = chroma.cb.len();
        Self {
            chroma,
            confidence: vec![confidence; n],
        }
    }
}

/// How [`carry`] judges a moved value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CarryParams {
    /// Confidence kept per frame travelled, 0..1.
    pub decay: f32,
    /// Luma difference (unit range) at which a match is trusted about 60%.
    pub luma_sigma: f32,
}

impl Default for CarryParams {
    fn default() -> Self {
        Self {
            decay: 0.985,
            luma_sigma: 0.05,
        }
    }
}

#[inline]
pub(crate) fn bilinear(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
    let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Catmull-Rom bicubic interpolation, limited to the range of the four
/// nearest samples (so it sharpens without ringing). Repeated moves along
/// the flow blur far less than with bilinear interpolation.
#[inline]
fn bicubic(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x1, y1) = (x as usize, y as usize);
    let (fx, fy) = (x - x1 as f32, y - y1 as f32);
    if x1 == 0 || y1 == 0 || x1 + 2 >= w || y1 + 2 >= h {
        return bilinear(src, w, h, x, y);
    }
    let weights = |t: f32| {
        let t2 = t * t;
        let t3 = t2 * t;
        [
            0.5 * (-t3 + 2.0 * t2 - t),
            0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
            0.5 * (-3.0 * t3 + 4.0 * t2 + t),
            0.5 * (t3 - t2),
        ]
    };
    let (wx, wy) = (weights(fx), weights(fy));
    let mut acc = 0.0;
    for (j, wyj) in wy.iter().enumerate() {
        let row = &src[(y1 + j - 1) * w + x1 - 1..(y1 + j - 1) * w + x1 + 3];
        acc += wyj * (wx[0] * row[0] + wx[1] * row[1] + wx[2] * row[2] + wx[3] * row[3]);
    }
    let (a, b) = (src[y1 * w + x1], src[y1 * w + x1 + 1]);
    let (c, d) = (src[(y1 + 1) * w + x1], src[(y1 + 1) * w + x1 + 1]);
    acc.clamp(a.min(b).min(c).min(d), a.max(b).max(c).max(d))
}

fn check_size(what: &str, got: (usize, usize), want: (usize, usize)) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::SizeMismatch {
            what: format!(
                "{what} is {}x{} but the frame is {}x{}",
                got.0, got.1, want.0, want.1
            ),
        })
    }
}

/// The frame size, as its longer side in pixels, up to which the
/// forward-backward check allows its fixed 0.5 px² of disagreement (Sundaram
/// et al. 2010). See [`fb_tolerance`].
pub const FB_REFERENCE_SIDE: usize = 854;

/// The disagreement (px²) the forward-backward check allows between the two
/// flows, besides 1% of their squared length: 0.5 px² up to
/// [`FB_REFERENCE_SIDE`], then growing with the square of the frame's size.
///
/// Flow errs by more pixels on a larger frame, most where grain outweighs
/// the picture's own texture (walls, sky, a table top). On shared clips
/// scaled to 1920x1080 with grain added, a fixed 0.5 px² judged up to three
/// quarters of a frame lost, so the model's colour showed there; scaled with
/// the frame, the colour kept 0.1 to 1.8 dB more (see the README's
/// "Propagation at scan sizes"). Frames up to 854 px are judged as before.
pub fn fb_tolerance(width: usize, height: usize) -> f32 {
    let s = (width.max(height) as f32 / FB_REFERENCE_SIDE as f32).max(1.0);
    0.5 * s * s
}

/// How much each pixel of frame t can take from frame t-1: the product of
/// the forward-backward check, the in-frame test and the luma match, in 0..1
/// (before any decay). `to_prev` is the flow t → t-1, `from_prev` the flow
/// t-1 → t. The check allows [`fb_tolerance`] for the frame's size.
///
/// # Errors
/// [`Error::SizeMismatch`] when sizes differ.
pub fn match_weights(
    luma: &LumaImage,
    prev_luma: &LumaImage,
    to_prev: &FlowField,
    from_prev: &FlowField,
    params: CarryParams,
) -> Result<Vec<f32>> {
    let (w, h) = (luma.width, luma.height);
    check_size(
        "the previous frame",
        (prev_luma.width, prev_luma.height),
        (w, h),
    )?;
    check_size(
        "the flow to the previous frame",
        (to_prev.width, to_prev.height),
        (w, h),
    )?;
    check_size(
        "the flow from the previous frame",
        (from_prev.width, from_prev.height),
        (w, h),
    )?;
    let (xmax, ymax) = ((w - 1) as f32, (h - 1) as f32);
    let tolerance = fb_tolerance(w, h);
    let inv = 1.0 / (2.0 * params.luma_sigma * params.luma_sigma);
    // Old film flickers in exposure: compare luma after taking out the
    // change in the frame's mean, so a brighter frame is not read as a
    // mismatch everywhere.
    let mean = |d: &[f32]| d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len().max(1) as f64;
    let offset = (mean(&luma.data) - mean(&prev_luma.data)) as f32;
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let i = y * w + x;
            let (u, v) = (to_prev.u[i], to_prev.v[i]);
            let (qx, qy) = (x as f32 + u, y as f32 + v);
            if !(qx >= 0.0 && qx <= xmax && qy >= 0.0 && qy <= ymax) {
                continue;
            }
            let fu = bilinear(&from_prev.u, w, h, qx, qy);
            let fv = bilinear(&from_prev.v, w, h, qx, qy);
            let lhs = (u + fu).powi(2) + (v + fv).powi(2);
            let rhs = 0.01 * (u * u + v * v + fu * fu + fv * fv) + tolerance;
            if lhs >= rhs {
                continue;
            }
            let dy = luma.data[i] - offset - bilinear(&prev_luma.data, w, h, qx, qy);
            *o = (-dy * dy * inv).exp();
        }
    });
    Ok(out)
}

/// Moves `prev` (the chroma and confidence of frame t-1) to frame t along
/// `to_prev` (the flow t → t-1). Confidence decays by `params.decay` per
/// frame and is capped by this step's `weights` (from [`match_weights`]).
///
/// # Errors
/// [`Error::SizeMismatch`] when sizes differ.
pub fn carry(
    prev: &Confident,
    to_prev: &FlowField,
    weights: &[f32],
    params: CarryParams,
) -> Result<Confident> {
    let (w, h) = (prev.chroma.width, prev.chroma.height);
    check_size(
        "the flow to the previous frame",
        (to_prev.width, to_prev.height),
        (w, h),
    )?;
    if weights.len() != w * h || prev.confidence.len() != w * h {
        return Err(Error::SizeMismatch {
            what: "carry: weights or confidence do not hold one value per pixel".into(),
        });
    }
    let mut cb = vec![0.0f32; w * h];
    let mut cr = vec![0.0f32; w * h];
    let mut conf = vec![0.0f32; w * h];
    cb.par_chunks_mut(w)
        .zip(cr.par_chunks_mut(w))
        .zip(conf.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, ((cb_row, cr_row), c_row))| {
            for x in 0..w {
                let i = y * w + x;
                let (qx, qy) = (x as f32 + to_prev.u[i], y as f32 + to_prev.v[i]);
                cb_row[x] = bicubic(&prev.chroma.cb, w, h, qx, qy);
                cr_row[x] = bicubic(&prev.chroma.cr, w, h, qx, qy);
                if weights[i] > 0.0 {
                    // Confidence is bounded by this step's match, not multiplied
                    // by it: a long, well-tracked run must not lose its colour
                    // to grain that makes every match a little short of perfect.
                    c_row[x] =
                        (bilinear(&prev.confidence, w, h, qx, qy) * params.decay).min(weights[i]);
                }
            }
        });
    Ok(Confident {
        chroma: ChromaField {
            width: w,
            height: h,
            cb,
            cr,
        },
        confidence: conf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, shift: f32) -> LumaImage {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - shift, (i / w) as f32);
                0.5 + 0.3 * (x * 0.3).sin() * (y * 0.2).cos()
            })
            .collect();
        LumaImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn carry_follows_a_known_shift() {
        let (w, h) = (40, 30);
        // Frame t is frame t-1 moved 2 px right: pixel x came from x - 2.
        let (prev_luma, luma) = (ramp(w, h, 0.0), ramp(w, h, 2.0));
        let mut to_prev = FlowField::zero(w, h);
        to_prev.u.iter_mut().for_each(|u| *u = -2.0);
        let mut from_prev = FlowField::zero(w, h);
        from_prev.u.iter_mut().for_each(|u| *u = 2.0);
        let params = CarryParams::default();
        let weights =
            match_weights(&luma, &prev_luma, &to_prev, &from_prev, params).expect("sizes");
        let mut chroma = ChromaField::neutral(w, h);
        for (i, cb) in chroma.cb.iter_mut().enumerate() {
            *cb = (i % w) as f32 / 100.0;
        }
        let moved =
            carry(&Confident::uniform(chroma, 1.0), &to_prev, &weights, params).expect("sizes");
        for y in 0..h {
            // Columns 0 and 1 came from outside the frame.
            assert_eq!(moved.confidence[y * w], 0.0);
            assert_eq!(moved.confidence[y * w + 1], 0.0);
            for x in 2..w {
                let i = y * w + x;
                assert!((moved.chroma.cb[i] - (x - 2) as f32 / 100.0).abs() < 1e-5);
                assert!(
                    (moved.confidence[i] - params.decay).abs() < 1e-4,
                    "({x},{y})"
                );
            }
        }
    }

    #[test]
    fn the_forward_backward_tolerance_grows_with_the_frame_past_854_px() {
        assert_eq!(fb_tolerance(640, 480), 0.5);
        assert_eq!(fb_tolerance(854, 480), 0.5);
        assert_eq!(fb_tolerance(160, 120), 0.5);
        // Twice the size, four times the squared disagreement.
        assert!((fb_tolerance(1708, 960) - 2.0).abs() < 1e-5);
        assert!((fb_tolerance(1920, 1080) - 2.527).abs() < 1e-3);
        // Portrait frames count their longer side too.
        assert_eq!(fb_tolerance(1080, 1920), fb_tolerance(1920, 1080));
        // A 1.2 px disagreement fails at 854 px and passes at 1920.
        let (w, h) = (1920, 1080);
        let zero = FlowField::zero(w, h);
        let mut off = FlowField::zero(w, h);
        off.u.iter_mut().for_each(|u| *u = 1.2);
        let luma = LumaImage {
            width: w,
            height: h,
            data: vec![0.5; w * h],
        };
        let p = CarryParams::default();
        let big = match_weights(&luma, &luma, &zero, &off, p).expect("sizes");
        assert!(big.iter().all(|&c| c > 0.99));
        let small = LumaImage {
            width: 854,
            height: 480,
            data: vec![0.5; 854 * 480],
        };
        let mut off = FlowField::zero(854, 480);
        off.u.iter_mut().for_each(|u| *u = 1.2);
        let fails =
            match_weights(&small, &small, &FlowField::zero(854, 480), &off, p).expect("sizes");
        assert!(fails.iter().all(|&c| c == 0.0));
    }

    #[test]
    fn inconsistent_flow_and_luma_mismatch_lose_trust() {
        let (w, h) = (20, 10);
        let luma = ramp(w, h, 0.0);
        let zero = FlowField::zero(w, h);
        let mut wrong = FlowField::zero(w, h);
        wrong.u.iter_mut().for_each(|u| *u = 5.0);
        let p = CarryParams::default();
        let ok = match_weights(&luma, &luma, &zero, &zero, p).expect("sizes");
        assert!(ok.iter().all(|&c| (c - 1.0).abs() < 1e-6));
        let bad = match_weights(&luma, &luma, &zero, &wrong, p).expect("sizes");
        assert!(
            bad.iter().all(|&c| c == 0.0),
            "forward-backward disagreement must be distrusted"
        );
        // A different picture is distrusted; the same picture brighter (exposure
        // flicker) is not.
        let other = ramp(w, h, 5.0);
        let dim = match_weights(&other, &luma, &zero, &zero, p).expect("sizes");
        assert!(dim.iter().filter(|&&c| c < 0.5).count() > w * h / 2);
        let mut brighter = luma.clone();
        brighter.data.iter_mut().for_each(|y| *y += 0.1);
        let flicker = match_weights(&brighter, &luma, &zero, &zero, p).expect("sizes");
        assert!(flicker.iter().all(|&c| c > 0.99));
        assert!(match_weights(&ramp(5, 5, 0.0), &luma, &zero, &zero, p).is_err());
    }
}
