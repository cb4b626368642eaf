//! Image-quality metrics for judging a colourised picture against the
//! original colour one, and the sRGB ⇄ CIE Lab conversions they rest on.
//!
//! Every definition follows scikit-image (0.19 and later) exactly, so numbers
//! computed here can be compared with numbers from Python evaluation scripts:
//!
//! | here | scikit-image |
//! |---|---|
//! | [`psnr_rgb`] | `peak_signal_noise_ratio(truth, prediction, data_range=255)` |
//! | [`ssim`] | `structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` |
//! | [`srgb8_to_lab`], [`srgb_to_lab`] | `rgb2lab` (D65, 2° observer) |
//! | [`lab_to_srgb8`] | `np.round(lab2rgb(lab) * 255)` |
//! | [`lab_to_srgb`] | `lab2rgb` without its clipping (for colours in gamut, the same) |
//! | [`ciede2000`] | `deltaE_ciede2000(lab1, lab2)` |
//! | [`ciede2000_mean`] | `deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()` |
//!
//! [`colorfulness`] is Hasler and Süsstrunk's M3, which scikit-image lacks.
//! [`ImageScores::score`] computes all four for one prediction.
//!
//! Everything works on 8-bit sRGB [`RgbImage`]s, and [`ssim_plane`] takes a
//! single float channel. Arithmetic is in `f64` throughout.

use std::f64::consts::{PI, TAU};
use std::sync::LazyLock;

use crate::frame::RgbImage;
use crate::{Error, Result};

/// The PSNR that [`ImageScores::score`] reports for identical (or nearly
/// identical) images, in dB, so that means over many images stay finite.
///
/// [`psnr_rgb`] itself is uncapped and returns `f64::INFINITY` for identical
/// images. For scale: the smallest non-zero error of an 8-bit 1920x1080 image
/// (one sample off by one) gives 116 dB.
pub const PSNR_CAP_DB: f64 = 100.0;

/// Peak signal-to-noise ratio over all R, G and B samples, in dB, with a
/// peak of 255: `10 · log10(255² / MSE)`.
///
/// Identical images have an MSE of zero and give `f64::INFINITY` (as
/// scikit-image does); use [`PSNR_CAP_DB`] or [`ImageScores::score`] where a
/// finite number is needed. The metric is symmetric.
///
/// # Errors
///
/// [`Error::SizeMismatch`] if the images differ in size or a buffer does not
/// hold `width * height * 3` bytes; [`Error::TooSmall`] if they are empty.
pub fn psnr_rgb(prediction: &RgbImage, truth: &RgbImage) -> Result<f64> {
    check_pair(prediction, truth, 1)?;
    // Exact: at most 255² per sample, so u64 holds any realistic image.
    let sum_sq: u64 = prediction
        .data
        .iter()
        .zip(&truth.data)
        .map(|(&p, &t)| {
            let d = u64::from(p.abs_diff(t));
            d * d
        })
        .sum();
    if sum_sq == 0 {
        return Ok(f64::INFINITY);
    }
    let mse = sum_sq as f64 / prediction.data.len() as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

/// Gaussian standard deviation of the SSIM window (Wang et al. 2004).
const SSIM_SIGMA: f64 = 1.5;
/// Radius of the SSIM window: scipy's `int(truncate * sigma + 0.5)` with
/// scikit-image's `truncate = 3.5`, so an 11 x 11 window.
const SSIM_RADIUS: usize = 5;
/// Side of the SSIM window, and the smallest image side [`ssim`] accepts.
pub const SSIM_WINDOW: usize = 2 * SSIM_RADIUS + 1;
/// SSIM stabilising constant for the luminance term, `C1 = (K1 · L)²`.
const SSIM_K1: f64 = 0.01;
/// SSIM stabilising constant for the contrast-structure term, `C2 = (K2 · L)²`.
const SSIM_K2: f64 = 0.03;

/// Mean structural similarity (SSIM) of two 8-bit RGB images, computed per
/// channel and averaged over R, G and B; 1 for identical images.
///
/// The definition is Wang, Bovik, Sheikh and Simoncelli, "Image quality
/// assessment: from error visibility to structural similarity", IEEE TIP
/// 13(4), 2004, as scikit-image computes it with
/// `structural_similarity(a, b, channel_axis=-1, data_range=255,
/// gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`:
///
/// * local means, variances and the covariance are taken under a normalised
///   Gaussian window of σ = 1.5 truncated at radius 5 (11 x 11 taps,
///   separable), with population (not sample) statistics;
/// * `SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`
///   with `C1 = (0.01 · 255)²` and `C2 = (0.03 · 255)²`;
/// * the mean is taken over the pixels at least 5 from every edge (scikit-
///   image crops `(win_size - 1) / 2` pixels). Because the crop equals the
///   window radius, no window used reaches past the image, so the boundary
///   mode of the filter (scikit-image uses `reflect`) plays no part.
///
/// # Errors
///
/// [`Error::SizeMismatch`] if the images differ in size or a buffer does not
/// hold `width * height * 3` bytes; [`Error::TooSmall`] if either side is
/// shorter than [`SSIM_WINDOW`] (scikit-image refuses these too).
pub fn ssim(a: &RgbImage, b: &RgbImage) -> Result<f64> {
    check_pair(a, b, SSIM_WINDOW)?;
    let total: f64 = (0..3)
        .map(|ch| {
            ssim_channel(
                a.width,
                a.height,
                |i| f64::from(a.data[3 * i + ch]),
                |i| f64::from(b.data[3 * i + ch]),
                255.0,
            )
        })
        .sum();
    Ok(total / 3.0)
}

/// Mean SSIM of one channel of float samples (luma, or one channel of a float
/// RGB image), with the same window, constants and crop as [`ssim`].
///
/// `data_range` is the range the samples may span (1 for unit-range values,
/// 255 for 8-bit code values); the constants `C1` and `C2` scale with it.
/// Samples are widened to `f64` before filtering, so for `f32` data this is
/// slightly more accurate than scikit-image, which filters `f32` in `f32`.
///
/// # Errors
///
/// [`Error::SizeMismatch`] if a slice does not hold `width * height` samples;
/// [`Error::TooSmall`] if either side is shorter than [`SSIM_WINDOW`].
pub fn ssim_plane(
    a: &[f32],
    b: &[f32],
    width: usize,
    height: usize,
    data_range: f64,
) -> Result<f64> {
    for (name, plane) in [("first plane", a), ("second plane", b)] {
        if width.checked_mul(height) != Some(plane.len()) {
            return Err(Error::SizeMismatch {
                what: format!(
                    "the {name} holds {} samples, not {width} x {height}",
                    plane.len()
                ),
            });
        }
    }
    check_min_size(width, height, SSIM_WINDOW)?;
    Ok(ssim_channel(
        width,
        height,
        |i| f64::from(a[i]),
        |i| f64::from(b[i]),
        data_range,
    ))
}

/// scipy's `_gaussian_kernel1d(SSIM_SIGMA, 0, SSIM_RADIUS)`: `exp(-x² / 2σ²)`
/// for x in -5..=5, normalised to sum to 1.
fn ssim_kernel() -> [f64; SSIM_WINDOW] {
    let mut k = [0.0; SSIM_WINDOW];
    for (i, w) in k.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *w = (-0.5 / (SSIM_SIGMA * SSIM_SIGMA) * x * x).exp();
    }
    let sum: f64 = k.iter().sum();
    k.map(|w| w / sum)
}

/// Mean SSIM over the cropped interior of one channel whose row-major pixel
/// `i` has samples `x(i)` and `y(i)`. The caller has checked that both sides
/// are at least [`SSIM_WINDOW`].
///
/// Works one output row at a time: the five local moments (x, y, x², y², xy)
/// are filtered down the columns into `column`, then across. Only interior
/// pixels are computed, as only they enter the mean.
fn ssim_channel(
    width: usize,
    height: usize,
    x: impl Fn(usize) -> f64,
    y: impl Fn(usize) -> f64,
    data_range: f64,
) -> f64 {
    let kernel = ssim_kernel();
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let mut column = vec![[0.0f64; 5]; width];
    let mut total = 0.0;
    for row in SSIM_RADIUS..height - SSIM_RADIUS {
        column.fill([0.0; 5]);
        for (k, &w) in kernel.iter().enumerate() {
            let start = (row + k - SSIM_RADIUS) * width;
            for (c, moments) in column.iter_mut().enumerate() {
                let (xv, yv) = (x(start + c), y(start + c));
                let values = [xv, yv, xv * xv, yv * yv, xv * yv];
                for (m, v) in moments.iter_mut().zip(values) {
                    *m += w * v;
                }
            }
        }
        let mut row_sum = 0.0;
        for window in column.windows(SSIM_WINDOW) {
            let mut f = [0.0f64; 5];
            for (&w, moments) in kernel.iter().zip(window) {
                for (acc, &m) in f.iter_mut().zip(moments) {
                    *acc += w * m;
                }
            }
            let [ux, uy, uxx, uyy, uxy] = f;
            let vx = uxx - ux * ux;
            let vy = uyy - uy * uy;
            let vxy = uxy - ux * uy;
            let numerator = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            row_sum += numerator / denominator;
        }
        total += row_sum;
    }
    let count = (width - 2 * SSIM_RADIUS) * (height - 2 * SSIM_RADIUS);
    total / count as f64
}

/// scikit-image's `xyz_from_rgb`: linear sRGB (Rec. 709 primaries) to CIE XYZ.
const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// scikit-image's `rgb_from_xyz`, the inverse of [`XYZ_FROM_RGB`].
const RGB_FROM_XYZ: [[f64; 3]; 3] = invert3(XYZ_FROM_RGB);

/// The D65 white point (2° observer) as scikit-image gives it, in XYZ.
pub const D65_WHITE: [f64; 3] = [0.95047, 1.0, 1.08883];

/// Inverse of a 3 x 3 matrix by the adjugate (the matrix must be invertible).
const fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    [
        [
            c00 / det,
            (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det,
            (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det,
        ],
        [
            c01 / det,
            (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det,
            (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det,
        ],
        [
            c02 / det,
            (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det,
            (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det,
        ],
    ]
}

fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

/// The sRGB transfer function inverted: a non-linear value (0..1) to linear
/// light, with scikit-image's threshold of 0.04045. Unclamped; values at or
/// below the threshold (negatives included) take the linear segment.
fn srgb_decode(v: f64) -> f64 {
    if v > 0.04045 {
        ((v + 0.055) / 1.055).powf(2.4)
    } else {
        v / 12.92
    }
}

/// The sRGB transfer function: linear light to a non-linear value, with
/// scikit-image's threshold of 0.0031308. Unclamped.
fn srgb_encode(v: f64) -> f64 {
    if v > 0.0031308 {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    } else {
        12.92 * v
    }
}

/// Linear light of each 8-bit sRGB code value.
static SRGB8_TO_LINEAR: LazyLock<[f64; 256]> = LazyLock::new(|| {
    let mut lut = [0.0; 256];
    for (code, v) in lut.iter_mut().enumerate() {
        // scikit-image's `img_as_float` multiplies by 1/255.
        *v = srgb_decode(code as f64 * (1.0 / 255.0));
    }
    lut
});

/// Linear sRGB to CIE Lab (D65), scikit-image's `xyz2lab ∘ (xyz_from_rgb ·)`.
fn linear_to_lab(linear: [f64; 3]) -> [f64; 3] {
    let xyz = mat_vec(&XYZ_FROM_RGB, linear);
    let f = |i: usize| {
        let t = xyz[i] / D65_WHITE[i];
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(0), f(1), f(2));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// `∛t` for `t` in 0.008856..2 (the range [`linear_to_lab`] takes roots
/// of), to within 1e-15 of `f64::cbrt`, by Newton's steps on `t^(-1/3)`:
/// multiplications only, a few times faster than the library's root.
#[inline]
fn cbrt_in_lab_range(t: f64) -> f64 {
    // A first guess from the exponent (within 15% on this range), then
    // five steps, each squaring the error.
    let mut r = f64::from_bits(0x5540_0000_0000_0000 - t.to_bits() / 3);
    for _ in 0..5 {
        r *= (4.0 - t * r * r * r) * (1.0 / 3.0);
    }
    t * r * r
}

/// [`srgb8_to_lab`]'s a\* and b\*, faster (see [`cbrt_in_lab_range`]), for
/// means over whole pictures: within 1e-12 of it.
pub fn srgb8_to_ab(rgb: [u8; 3]) -> [f64; 2] {
    let lut = &*SRGB8_TO_LINEAR;
    let xyz = mat_vec(&XYZ_FROM_RGB, rgb.map(|v| lut[usize::from(v)]));
    let f = |i: usize| {
        let t = xyz[i] / D65_WHITE[i];
        if t > 0.008856 {
            cbrt_in_lab_range(t)
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(0), f(1), f(2));
    [500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// An 8-bit sRGB colour to CIE L\*a\*b\* (D65 white, 2° observer), as
/// scikit-image's `rgb2lab` computes it: L in 0..100, a and b roughly
/// -128..128.
///
/// The steps are: code / 255; the sRGB curve inverted (threshold 0.04045,
/// from a 256-entry table); scikit-image's `xyz_from_rgb` matrix; division
/// by the white [`D65_WHITE`]; `f(t) = ∛t` for `t > 0.008856`, else
/// `7.787 t + 16/116`; `L = 116 f(Y) - 16`, `a = 500 (f(X) - f(Y))`,
/// `b = 200 (f(Y) - f(Z))`. White is (100, -0.0025, 0.0047), not exactly
/// (100, 0, 0), because the matrix and white point are rounded.
pub fn srgb8_to_lab(rgb: [u8; 3]) -> [f64; 3] {
    let lut = &*SRGB8_TO_LINEAR;
    linear_to_lab(rgb.map(|v| lut[usize::from(v)]))
}

/// A non-linear sRGB colour with components in 0..1 to CIE L\*a\*b\*, by the
/// same formulas as [`srgb8_to_lab`]. Values outside 0..1 are converted
/// as they are, not clamped.
pub fn srgb_to_lab(rgb: [f64; 3]) -> [f64; 3] {
    linear_to_lab(rgb.map(srgb_decode))
}

/// CIE L\*a\*b\* (D65) to non-linear sRGB in 0..1, unclamped: the inverse of
/// [`srgb_to_lab`] by scikit-image's `lab2rgb` formulas (`f⁻¹(v) = v³` for
/// `v > 0.2068966`, else `(v - 16/116) / 7.787`; times [`D65_WHITE`];
/// `rgb_from_xyz`; the sRGB curve with threshold 0.0031308).
///
/// Colours outside the sRGB gamut come back outside 0..1, so a caller can
/// see by how much they miss it. Unlike `lab2rgb`, which sets a negative Z
/// to zero and clips the result to 0..1, nothing is clipped here; for
/// colours inside the gamut the two agree. [`lab_to_srgb8`] clips as
/// `lab2rgb` does.
pub fn lab_to_srgb(lab: [f64; 3]) -> [f64; 3] {
    lab_to_srgb_with(lab, false)
}

/// CIE L\*a\*b\* (D65) to an 8-bit sRGB colour, exactly as scikit-image's
/// `lab2rgb` followed by rounding to the nearest code value: a negative Z is
/// set to zero (so out-of-gamut blues keep a hue near the one asked for)
/// and the result is clamped to 0..1. Every 8-bit colour survives
/// `lab_to_srgb8(srgb8_to_lab(c)) == c`.
pub fn lab_to_srgb8(lab: [f64; 3]) -> [u8; 3] {
    // NaN clamps to NaN, which `as` turns into 0.
    lab_to_srgb_with(lab, true).map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// [`lab_to_srgb`], optionally setting a negative Z to zero as `lab2rgb` does.
fn lab_to_srgb_with([l, a, b]: [f64; 3], clip_negative_z: bool) -> [f64; 3] {
    let fy = (l + 16.0) / 116.0;
    let mut fz = fy - b / 200.0;
    if clip_negative_z && fz < 0.0 {
        fz = 0.0;
    }
    let f = [a / 500.0 + fy, fy, fz];
    let mut xyz = [0.0; 3];
    for ((out, v), white) in xyz.iter_mut().zip(f).zip(D65_WHITE) {
        let t = if v > 0.2068966 {
            v * v * v
        } else {
            (v - 16.0 / 116.0) / 7.787
        };
        *out = t * white;
    }
    mat_vec(&RGB_FROM_XYZ, xyz).map(srgb_encode)
}

/// A fast, f32 conversion from CIE L\*a\*b\* to sRGB clamped to 0..1, for
/// whole frames: the same formulas as [`lab_to_srgb`], with the sRGB
/// encoding read from a table (error below 1e-4 of full scale).
#[derive(Clone, Debug)]
pub struct LabToSrgb {
    encode: Vec<f32>,
}

const ENCODE_STEPS: usize = 8192;

impl Default for LabToSrgb {
    fn default() -> Self {
        // Finer steps near black, where the curve is steep: index by sqrt.
        let encode = (0..=ENCODE_STEPS)
            .map(|i| {
                let s = i as f64 / ENCODE_STEPS as f64;
                srgb_encode(s * s) as f32
            })
            .collect();
        Self { encode }
    }
}

impl LabToSrgb {
    /// sRGB (0..1, clamped) of a Lab colour.
    pub fn convert(&self, [l, a, b]: [f32; 3]) -> [f32; 3] {
        let fy = (l + 16.0) / 116.0;
        let f = [a / 500.0 + fy, fy, fy - b / 200.0];
        let mut xyz = [0.0f32; 3];
        for ((out, v), white) in xyz.iter_mut().zip(f).zip(D65_WHITE) {
            let t = if v > 0.206_896_6 {
                v * v * v
            } else {
                (v - 16.0 / 116.0) / 7.787
            };
            *out = t * white as f32;
        }
        let m = &RGB_FROM_XYZ;
        std::array::from_fn(|r| {
            let lin = (m[r][0] as f32 * xyz[0] + m[r][1] as f32 * xyz[1] + m[r][2] as f32 * xyz[2])
                .clamp(0.0, 1.0);
            let t = lin.sqrt() * ENCODE_STEPS as f32;
            let i = (t as usize).min(ENCODE_STEPS - 1);
            let frac = t - i as f32;
            self.encode[i] + (self.encode[i + 1] - self.encode[i]) * frac
        })
    }
}

/// The CIEDE2000 colour difference ΔE₀₀ between two CIE L\*a\*b\* colours,
/// with the parametric factors kL = kC = kH = 1.
///
/// The formula is CIE 142-2001, as written out by Sharma, Wu and Dalal, "The
/// CIEDE2000 color-difference formula: implementation notes, supplementary
/// test data, and mathematical observations", Color Research & Application
/// 30(1), 2005, and implemented by scikit-image's `deltaE_ciede2000`: where
/// either chroma is zero the hue difference is zero and the mean hue is the
/// sum of the hues. It is symmetric in its arguments; a difference of about
/// 1 is just noticeable.
pub fn ciede2000([l1, a1, b1]: [f64; 3], [l2, a2, b2]: [f64; 3]) -> f64 {
    const POW25_7: f64 = 6_103_515_625.0; // 25⁷
    // a' = a (1 + G): a is stretched depending on the mean chroma.
    let c_mean = 0.5 * (a1.hypot(b1) + a2.hypot(b2));
    let c7 = c_mean.powi(7);
    let g = 0.5 * (1.0 - (c7 / (c7 + POW25_7)).sqrt());
    let (c1, h1) = polar_2pi(a1 * (1.0 + g), b1);
    let (c2, h2) = polar_2pi(a2 * (1.0 + g), b2);

    // Lightness.
    let l_mean = 0.5 * (l1 + l2);
    let dl2 = (l_mean - 50.0).powi(2);
    let sl = 1.0 + 0.015 * dl2 / (20.0 + dl2).sqrt();
    let l_term = (l2 - l1) / sl;

    // Chroma.
    let c_mean = 0.5 * (c1 + c2);
    let sc = 1.0 + 0.045 * c_mean;
    let c_term = (c2 - c1) / sc;

    // Hue difference and mean hue, both undefined (taken as 0 and the sum)
    // where a chroma is zero.
    let h_diff = h2 - h1;
    let h_sum = h1 + h2;
    let cc = c1 * c2;
    let (dh, h_mean) = if cc == 0.0 {
        (0.0, h_sum)
    } else if h_diff > PI {
        (
            h_diff - TAU,
            0.5 * if h_sum < TAU {
                h_sum + TAU
            } else {
                h_sum - TAU
            },
        )
    } else if h_diff < -PI {
        (
            h_diff + TAU,
            0.5 * if h_sum < TAU {
                h_sum + TAU
            } else {
                h_sum - TAU
            },
        )
    } else {
        (h_diff, 0.5 * h_sum)
    };
    let dh_big = 2.0 * cc.sqrt() * (dh / 2.0).sin();
    let t = 1.0 - 0.17 * (h_mean - 30f64.to_radians()).cos()
        + 0.24 * (2.0 * h_mean).cos()
        + 0.32 * (3.0 * h_mean + 6f64.to_radians()).cos()
        - 0.20 * (4.0 * h_mean - 63f64.to_radians()).cos();
    let sh = 1.0 + 0.015 * c_mean * t;
    let h_term = dh_big / sh;

    // Rotation term, which matters for blues.
    let c7 = c_mean.powi(7);
    let rc = 2.0 * (c7 / (c7 + POW25_7)).sqrt();
    let dtheta = 30f64.to_radians() * (-((h_mean.to_degrees() - 275.0) / 25.0).powi(2)).exp();
    let r_term = -(2.0 * dtheta).sin() * rc * c_term * h_term;

    (l_term * l_term + c_term * c_term + h_term * h_term + r_term)
        .max(0.0)
        .sqrt()
}

/// Polar coordinates of (x, y), the angle in 0..2π.
fn polar_2pi(x: f64, y: f64) -> (f64, f64) {
    let mut angle = y.atan2(x);
    if angle < 0.0 {
        angle += TAU;
    }
    (x.hypot(y), angle)
}

/// Mean CIEDE2000 difference ([`ciede2000`]) over all pixels of two 8-bit
/// sRGB images, each pixel converted with [`srgb8_to_lab`]: scikit-image's
/// `deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()`. 0 for identical images.
///
/// # Errors
///
/// [`Error::SizeMismatch`] if the images differ in size or a buffer does not
/// hold `width * height * 3` bytes; [`Error::TooSmall`] if they are empty.
pub fn ciede2000_mean(a: &RgbImage, b: &RgbImage) -> Result<f64> {
    check_pair(a, b, 1)?;
    let total: f64 = a
        .data
        .chunks_exact(3)
        .zip(b.data.chunks_exact(3))
        // Equal colours are exactly 0 apart; skipping them saves two Lab
        // conversions per pixel where a prediction matches its truth.
        .filter(|(p, q)| p != q)
        .map(|(p, q)| {
            ciede2000(
                srgb8_to_lab([p[0], p[1], p[2]]),
                srgb8_to_lab([q[0], q[1], q[2]]),
            )
        })
        .sum();
    Ok(total / (a.width * a.height) as f64)
}

/// Colourfulness M3 of Hasler and Süsstrunk, "Measuring colourfulness in
/// natural images", Proc. SPIE 5007, 2003: with `rg = R - G` and
/// `yb = (R + G) / 2 - B` on 0..255 code values (no linearisation),
/// `M = √(σ_rg² + σ_yb²) + 0.3 · √(μ_rg² + μ_yb²)`, σ the population
/// standard deviation and μ the mean over all pixels.
///
/// 0 for any gray picture. The authors found about 15 "slightly colourful",
/// 33 "moderately", 45 "averagely", 59 "quite", 82 "highly" and 109
/// "extremely colourful". Sums are exact integers, so the result does not
/// depend on the image size through rounding.
///
/// # Errors
///
/// [`Error::SizeMismatch`] if the buffer does not hold `width * height * 3`
/// bytes; [`Error::TooSmall`] if the image is empty.
pub fn colorfulness(image: &RgbImage) -> Result<f64> {
    check_image(image, "image")?;
    check_min_size(image.width, image.height, 1)?;
    // rg and 2·yb are integers; their sums and sums of squares are exact.
    let (mut s_rg, mut s_rg2, mut s_yb, mut s_yb2) = (0i64, 0i64, 0i64, 0i64);
    for px in image.data.chunks_exact(3) {
        let [r, g, b] = [px[0], px[1], px[2]].map(i64::from);
        let rg = r - g;
        let yb2 = r + g - 2 * b;
        s_rg += rg;
        s_rg2 += rg * rg;
        s_yb += yb2;
        s_yb2 += yb2 * yb2;
    }
    let n = (image.width * image.height) as i128;
    let n2 = (n * n) as f64;
    // Population variance n²·σ² = n·Σx² - (Σx)², exact in i128.
    let var_rg = (n * i128::from(s_rg2) - i128::from(s_rg).pow(2)) as f64 / n2;
    let var_yb = (n * i128::from(s_yb2) - i128::from(s_yb).pow(2)) as f64 / (4.0 * n2);
    let mean_rg = s_rg as f64 / n as f64;
    let mean_yb = s_yb as f64 / (2.0 * n as f64);
    Ok((var_rg + var_yb).sqrt() + 0.3 * mean_rg.hypot(mean_yb))
}

/// The four scores of one colourised picture against its original.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageScores {
    /// [`psnr_rgb`] in dB, capped at [`PSNR_CAP_DB`] so it is always finite.
    /// Higher is better.
    pub psnr: f64,
    /// [`ssim`], at most 1. Higher is better.
    pub ssim: f64,
    /// [`ciede2000_mean`]. Lower is better; below about 1 is hard to see.
    pub ciede2000: f64,
    /// [`colorfulness`] of the prediction alone (compare with the truth's to
    /// spot washed-out or garish results).
    pub colorfulness: f64,
}

impl ImageScores {
    /// Scores `prediction` against `truth`.
    ///
    /// # Errors
    ///
    /// As [`ssim`]: the images must be the same size, at least
    /// [`SSIM_WINDOW`] pixels on each side, with well-formed buffers.
    pub fn score(prediction: &RgbImage, truth: &RgbImage) -> Result<Self> {
        Ok(Self {
            ssim: ssim(prediction, truth)?,
            psnr: psnr_rgb(prediction, truth)?.min(PSNR_CAP_DB),
            ciede2000: ciede2000_mean(prediction, truth)?,
            colorfulness: colorfulness(prediction)?,
        })
    }
}

/// Checks that `image`'s buffer holds `width * height * 3` bytes.
fn check_image(image: &RgbImage, name: &str) -> Result<()> {
    let expected = image
        .width
        .checked_mul(image.height)
        .and_then(|n| n.checked_mul(3));
    if expected == Some(image.data.len()) {
        Ok(())
    } else {
        Err(Error::SizeMismatch {
            what: format!(
                "the {name} is {}x{} but holds {} bytes, not width * height * 3",
                image.width,
                image.height,
                image.data.len()
            ),
        })
    }
}

/// Checks both buffers, that the images are the same size, and that each
/// side is at least `min`.
fn check_pair(prediction: &RgbImage, truth: &RgbImage, min: usize) -> Result<()> {
    check_image(prediction, "prediction")?;
    check_image(truth, "truth")?;
    if (prediction.width, prediction.height) != (truth.width, truth.height) {
        return Err(Error::SizeMismatch {
            what: format!(
                "the prediction is {}x{} but the truth is {}x{}; \
                 metrics compare images of the same size",
                prediction.width, prediction.height, truth.width, truth.height
            ),
        });
    }
    check_min_size(prediction.width, prediction.height, min)
}

fn check_min_size(width: usize, height: usize, min: usize) -> Result<()> {
    if width < min || height < min {
        Err(Error::TooSmall { width, height, min })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_lab_root_agrees_with_the_library_root() {
        let mut t = 0.008856f64;
        while t < 2.0 {
            let (fast, exact) = (cbrt_in_lab_range(t), t.cbrt());
            assert!(
                (fast - exact).abs() <= 1e-15 * exact,
                "∛{t}: {fast} vs {exact}"
            );
            t *= 1.000_37;
        }
        for r in (0..=255u8).step_by(5) {
            for g in (0..=255u8).step_by(5) {
                for b in (0..=255u8).step_by(5) {
                    let [_, a, bb] = srgb8_to_lab([r, g, b]);
                    let [fa, fb] = srgb8_to_ab([r, g, b]);
                    assert!(
                        (a - fa).abs() < 1e-12 && (bb - fb).abs() < 1e-12,
                        "{r} {g} {b}: {a} {bb} vs {fa} {fb}"
                    );
                }
            }
        }
    }

    fn uniform(width: usize, height: usize, rgb: [u8; 3]) -> RgbImage {
        RgbImage {
            width,
            height,
            data: rgb.repeat(width * height),
        }
    }

    /// An image whose sample `c` at (x, y) is `f(x, y, c)`.
    fn image_fn(width: usize, height: usize, f: impl Fn(usize, usize, usize) -> u8) -> RgbImage {
        let mut data = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend((0..3).map(|c| f(x, y, c)));
            }
        }
        RgbImage {
            width,
            height,
            data,
        }
    }

    /// A textured test picture (saw-tooth ramps with hard edges), easy to
    /// rebuild in numpy: `v = (3x (c + 2) + 5y + 9 (xy mod 7)) mod 256`.
    fn pattern_value(x: usize, y: usize, c: usize) -> usize {
        (3 * x * (c + 2) + 5 * y + 9 * (x * y % 7)) % 256
    }

    fn pattern(width: usize, height: usize) -> RgbImage {
        image_fn(width, height, |x, y, c| pattern_value(x, y, c) as u8)
    }

    /// [`pattern`] washed out towards gray and with noise added, standing in
    /// for a colourised prediction:
    /// `clamp((7v + 384) div 10 + ((13x + 29y + 7c) mod 21) - 10, 0, 255)`.
    fn pattern_washed_out(width: usize, height: usize) -> RgbImage {
        image_fn(width, height, |x, y, c| {
            let v = (7 * pattern_value(x, y, c) + 384) / 10;
            let noise = (13 * x + 29 * y + 7 * c) % 21;
            (v + noise).saturating_sub(10).min(255) as u8
        })
    }

    fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, want {want} (tolerance {tol})"
        );
    }

    #[test]
    fn psnr_of_uniform_offset() {
        let a = uniform(8, 5, [20, 100, 200]);
        let b = uniform(8, 5, [30, 110, 210]);
        let want = 20.0 * (255.0f64 / 10.0).log10(); // 28.1308... dB
        assert_close(psnr_rgb(&b, &a).expect("valid images"), want, 1e-12, "psnr");
        assert_close(want, 28.130_803_608_679_1, 1e-9, "closed form");
        assert_eq!(psnr_rgb(&a, &a).expect("valid images"), f64::INFINITY);
        // One sample off by 235 among 40 * 3: MSE = 235² / 120.
        let mut c = a.clone();
        c.data[0] = 255; // was 20: off by 235
        let want = 10.0 * (255.0f64 * 255.0 * 120.0 / (235.0 * 235.0)).log10();
        assert_close(
            psnr_rgb(&c, &a).expect("valid images"),
            want,
            1e-12,
            "single sample",
        );
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let a = pattern(40, 23);
        assert_close(ssim(&a, &a).expect("valid images"), 1.0, 1e-12, "ssim");
    }

    #[test]
    fn ssim_of_uniform_images_is_the_luminance_term() {
        // No variance, so the contrast-structure term is C2 / C2 and only
        // (2 μx μy + C1) / (μx² + μy² + C1) is left, per channel.
        let a = uniform(13, 17, [100, 0, 250]);
        let b = uniform(13, 17, [110, 30, 240]);
        let c1 = (0.01f64 * 255.0).powi(2);
        let lum = |x: f64, y: f64| (2.0 * x * y + c1) / (x * x + y * y + c1);
        let want = (lum(100.0, 110.0) + lum(0.0, 30.0) + lum(250.0, 240.0)) / 3.0;
        assert_close(ssim(&a, &b).expect("valid images"), want, 1e-12, "ssim");
        // By hand: 22006.5025 / 22106.5025, 6.5025 / 906.5025 and
        // 120006.5025 / 120106.5025, averaged.
        assert_close(want, 0.667_272_341_2, 1e-9, "hand value");
    }

    #[test]
    fn ssim_falls_for_a_washed_out_copy_and_is_symmetric() {
        let a = pattern(64, 48);
        let b = pattern_washed_out(64, 48);
        let s = ssim(&a, &b).expect("valid images");
        assert!(s > 0.5 && s < 0.95, "ssim {s}");
        assert_close(ssim(&b, &a).expect("valid images"), s, 1e-14, "symmetry");
    }

    #[test]
    fn ssim_plane_agrees_with_rgb_ssim() {
        let (w, h) = (31, 20);
        let a = pattern(w, h);
        let b = pattern_washed_out(w, h);
        let channel = |img: &RgbImage, c: usize| -> Vec<f32> {
            img.data
                .iter()
                .skip(c)
                .step_by(3)
                .map(|&v| f32::from(v))
                .collect()
        };
        let mean: f64 = (0..3)
            .map(|c| {
                ssim_plane(&channel(&a, c), &channel(&b, c), w, h, 255.0).expect("valid images")
            })
            .sum::<f64>()
            / 3.0;
        assert_close(
            mean,
            ssim(&a, &b).expect("valid images"),
            1e-14,
            "per-plane mean",
        );
        // The constants scale with the data range: unit-range data agrees.
        let unit = |v: Vec<f32>| v.into_iter().map(|s| s / 255.0).collect::<Vec<_>>();
        let s8 = ssim_plane(&channel(&a, 1), &channel(&b, 1), w, h, 255.0).expect("valid images");
        let s1 = ssim_plane(&unit(channel(&a, 1)), &unit(channel(&b, 1)), w, h, 1.0)
            .expect("valid images");
        assert_close(s1, s8, 1e-6, "unit range");
    }

    /// Regression values from scikit-image 0.25.2 (numpy 2.2, scipy 1.17) on
    /// [`pattern`] (truth) and [`pattern_washed_out`] (prediction) at
    /// 67 x 45, rebuilt there with numpy; the calls are those in the module
    /// docs, and colourfulness is M3 written out in numpy. This and Python
    /// agreed to 1e-14 relative.
    #[test]
    fn matches_scikit_image_on_a_textured_picture() {
        let truth = pattern(67, 45);
        let prediction = pattern_washed_out(67, 45);
        let s = ImageScores::score(&prediction, &truth).expect("valid images");
        assert_close(s.psnr, 20.878_458_867_913_9, 1e-10, "psnr");
        assert_close(s.ssim, 0.907_353_553_751_761, 1e-12, "ssim");
        assert_close(s.ciede2000, 7.064_025_563_854_18, 1e-10, "ciede2000");
        assert_close(s.colorfulness, 102.459_967_614_085, 1e-9, "colourfulness");
        let truth_m3 = colorfulness(&truth).expect("valid images");
        assert_close(truth_m3, 145.291_229_288_517, 1e-9, "truth colourfulness");
    }

    #[test]
    fn fast_lab_to_srgb_matches_the_exact_one() {
        let fast = LabToSrgb::default();
        let mut worst = 0.0f64;
        for l in (0..=100).step_by(5) {
            for a in (-100..=100).step_by(10) {
                for b in (-100..=100).step_by(10) {
                    let lab = [f64::from(l), f64::from(a), f64::from(b)];
                    let exact = lab_to_srgb(lab).map(|v| v.clamp(0.0, 1.0));
                    let got = fast.convert(lab.map(|v| v as f32));
                    for c in 0..3 {
                        worst = worst.max((exact[c] - f64::from(got[c])).abs());
                    }
                }
            }
        }
        assert!(worst < 2e-4, "worst difference {worst}");
    }

    #[test]
    fn lab_known_values() {
        let white = srgb8_to_lab([255, 255, 255]);
        assert_close(white[0], 100.0, 1e-9, "white L");
        assert!(white[1].abs() < 0.01 && white[2].abs() < 0.01, "{white:?}");
        let black = srgb8_to_lab([0, 0, 0]);
        assert_eq!(black, [0.0, 0.0, 0.0]);
        // scikit-image 0.25: rgb2lab(np.array([[[255, 0, 0]]], np.uint8)).
        let red = srgb8_to_lab([255, 0, 0]);
        for (got, want) in red
            .iter()
            .zip([53.240_587_94, 80.092_308_23, 67.202_751_04])
        {
            assert_close(*got, want, 1e-7, "red");
        }
        // The float path agrees with the 8-bit one.
        let float = srgb_to_lab([1.0, 0.0, 0.0]);
        for (got, want) in float.iter().zip(red) {
            assert_close(*got, want, 1e-12, "float red");
        }
        // Mid-gray sits on the neutral axis.
        let gray = srgb8_to_lab([128, 128, 128]);
        assert!(gray[1].abs() < 0.01 && gray[2].abs() < 0.01, "{gray:?}");
    }

    #[test]
    fn lab_round_trips_every_third_8bit_colour() {
        for r in (0..=255u8).step_by(3) {
            for g in (0..=255u8).step_by(3) {
                for b in (0..=255u8).step_by(3) {
                    let lab = srgb8_to_lab([r, g, b]);
                    assert_eq!(lab_to_srgb8(lab), [r, g, b], "{lab:?}");
                    // scikit-image's two thresholds (t > 0.008856 one way,
                    // f > 0.2068966 the other) do not quite meet, so a
                    // colour whose X or Z lands between them comes back a
                    // few millionths off; everything else to ~1e-12.
                    let back = lab_to_srgb(lab);
                    for (v, c) in back.iter().zip([r, g, b]) {
                        assert_close(*v * 255.0, f64::from(c), 1e-3, "float round trip");
                    }
                }
            }
        }
    }

    #[test]
    fn out_of_gamut_lab_is_unclamped_in_float_and_clipped_like_lab2rgb_in_8bit() {
        // A saturated green far outside sRGB.
        let rgb = lab_to_srgb([50.0, -120.0, 60.0]);
        assert!(rgb[0] < 0.0 && rgb[2] < 0.0, "{rgb:?}");
        // scikit-image 0.25: np.round(lab2rgb(lab) * 255).
        assert_eq!(lab_to_srgb8([50.0, -120.0, 60.0]), [0, 152, 0]);
        // Yellows dark enough that Z is negative: lab2rgb sets Z to zero
        // first (without that these would be [119, 55, 0] and [62, 50, 0]).
        assert_eq!(lab_to_srgb8([30.0, 20.0, 120.0]), [115, 56, 0]);
        assert_eq!(lab_to_srgb8([20.0, -10.0, 90.0]), [56, 51, 0]);
        assert_eq!(lab_to_srgb8([f64::NAN, 0.0, 0.0]), [0, 0, 0]);
    }

    /// Sharma, Wu and Dalal (2005), Table 1: the published CIEDE2000 test
    /// data (Lab 1, Lab 2, ΔE₀₀ to four decimals).
    const SHARMA_2005: [([f64; 3], [f64; 3], f64); 34] = [
        ([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485], 2.0425),
        ([50.0, 3.1571, -77.2803], [50.0, 0.0, -82.7485], 2.8615),
        ([50.0, 2.8361, -74.0200], [50.0, 0.0, -82.7485], 3.4412),
        ([50.0, -1.3802, -84.2814], [50.0, 0.0, -82.7485], 1.0000),
        ([50.0, -1.1848, -84.8006], [50.0, 0.0, -82.7485], 1.0000),
        ([50.0, -0.9009, -85.5211], [50.0, 0.0, -82.7485], 1.0000),
        ([50.0, 0.0, 0.0], [50.0, -1.0, 2.0], 2.3669),
        ([50.0, -1.0, 2.0], [50.0, 0.0, 0.0], 2.3669),
        ([50.0, 2.4900, -0.0010], [50.0, -2.4900, 0.0009], 7.1792),
        ([50.0, 2.4900, -0.0010], [50.0, -2.4900, 0.0010], 7.1792),
        ([50.0, 2.4900, -0.0010], [50.0, -2.4900, 0.0011], 7.2195),
        ([50.0, 2.4900, -0.0010], [50.0, -2.4900, 0.0012], 7.2195),
        ([50.0, -0.0010, 2.4900], [50.0, 0.0009, -2.4900], 4.8045),
        ([50.0, -0.0010, 2.4900], [50.0, 0.0010, -2.4900], 4.8045),
        ([50.0, -0.0010, 2.4900], [50.0, 0.0011, -2.4900], 4.7461),
        ([50.0, 2.5, 0.0], [50.0, 0.0, -2.5], 4.3065),
        ([50.0, 2.5, 0.0], [73.0, 25.0, -18.0], 27.1492),
        ([50.0, 2.5, 0.0], [61.0, -5.0, 29.0], 22.8977),
        ([50.0, 2.5, 0.0], [56.0, -27.0, -3.0], 31.9030),
        ([50.0, 2.5, 0.0], [58.0, 24.0, 15.0], 19.4535),
        ([50.0, 2.5, 0.0], [50.0, 3.1736, 0.5854], 1.0000),
        ([50.0, 2.5, 0.0], [50.0, 3.2972, 0.0], 1.0000),
        ([50.0, 2.5, 0.0], [50.0, 1.8634, 0.5757], 1.0000),
        ([50.0, 2.5, 0.0], [50.0, 3.2592, 0.3350], 1.0000),
        (
            [60.2574, -34.0099, 36.2677],
            [60.4626, -34.1751, 39.4387],
            1.2644,
        ),
        (
            [63.0109, -31.0961, -5.8663],
            [62.8187, -29.7946, -4.0864],
            1.2630,
        ),
        (
            [61.2901, 3.7196, -5.3901],
            [61.4292, 2.2480, -4.9620],
            1.8731,
        ),
        (
            [35.0831, -44.1164, 3.7933],
            [35.0232, -40.0716, 1.5901],
            1.8645,
        ),
        (
            [22.7233, 20.0904, -46.6940],
            [23.0331, 14.9730, -42.5619],
            2.0373,
        ),
        (
            [36.4612, 47.8580, 18.3852],
            [36.2715, 50.5065, 21.2231],
            1.4146,
        ),
        (
            [90.8027, -2.0831, 1.4410],
            [91.1528, -1.6435, 0.0447],
            1.4441,
        ),
        (
            [90.9257, -0.5406, -0.9208],
            [88.6381, -0.8985, -0.7239],
            1.5381,
        ),
        (
            [6.7747, -0.2908, -2.4247],
            [5.8714, -0.0985, -2.2286],
            0.6377,
        ),
        (
            [2.0776, 0.0795, -1.1350],
            [0.9033, -0.0636, -0.5514],
            0.9082,
        ),
    ];

    #[test]
    fn ciede2000_matches_sharma_2005_table() {
        for (i, (lab1, lab2, want)) in SHARMA_2005.iter().enumerate() {
            let what = format!("pair {}", i + 1);
            // The table is rounded to four decimals.
            assert_close(ciede2000(*lab1, *lab2), *want, 0.5e-4 + 1e-9, &what);
            assert_close(ciede2000(*lab2, *lab1), *want, 0.5e-4 + 1e-9, &what);
        }
        assert_eq!(ciede2000([50.0, 10.0, -3.0], [50.0, 10.0, -3.0]), 0.0);
    }

    #[test]
    fn ciede2000_mean_of_images() {
        let a = uniform(4, 3, [255, 0, 0]);
        let b = uniform(4, 3, [250, 10, 5]);
        let want = ciede2000(srgb8_to_lab([255, 0, 0]), srgb8_to_lab([250, 10, 5]));
        assert_close(
            ciede2000_mean(&a, &b).expect("valid images"),
            want,
            1e-12,
            "uniform",
        );
        assert_eq!(ciede2000_mean(&a, &a).expect("valid images"), 0.0);
        // Half the pixels differ: the mean halves.
        let mut c = a.clone();
        c.data[..18].copy_from_slice(&b.data[..18]);
        assert_close(
            ciede2000_mean(&a, &c).expect("valid images"),
            want / 2.0,
            1e-12,
            "half",
        );
    }

    #[test]
    fn colorfulness_of_gray_is_zero() {
        let mut img = pattern(16, 9);
        for px in img.data.chunks_exact_mut(3) {
            px[1] = px[0];
            px[2] = px[0];
        }
        assert_eq!(colorfulness(&img).expect("valid images"), 0.0);
    }

    #[test]
    fn colorfulness_of_red_and_blue_halves() {
        // Red: rg = 255, yb = 127.5. Blue: rg = 0, yb = -255.
        // μ_rg = 127.5, σ_rg = 127.5; μ_yb = -63.75, σ_yb = 191.25.
        let mut img = uniform(10, 4, [255, 0, 0]);
        img.data[60..].copy_from_slice(&[0, 0, 255].repeat(20));
        let want = 127.5f64.hypot(191.25) + 0.3 * 127.5f64.hypot(63.75);
        assert_close(colorfulness(&img).expect("valid images"), want, 1e-9, "M3");
        assert_close(want, 272.618_693_881, 1e-8, "hand value");
        // A single uniform colour has no spread: M = 0.3 μ.
        let red = uniform(3, 3, [255, 0, 0]);
        assert_close(
            colorfulness(&red).expect("valid images"),
            0.3 * 255f64.hypot(127.5),
            1e-9,
            "red",
        );
    }

    #[test]
    fn scores_cap_psnr_and_agree_with_the_metrics() {
        let a = pattern(32, 24);
        let b = pattern_washed_out(32, 24);
        let s = ImageScores::score(&b, &a).expect("valid images");
        assert_eq!(s.psnr, psnr_rgb(&b, &a).expect("valid images"));
        assert_eq!(s.ssim, ssim(&b, &a).expect("valid images"));
        assert_eq!(s.ciede2000, ciede2000_mean(&b, &a).expect("valid images"));
        assert_eq!(s.colorfulness, colorfulness(&b).expect("valid images"));
        let same = ImageScores::score(&a, &a).expect("valid images");
        assert_eq!(same.psnr, PSNR_CAP_DB);
        assert_eq!((same.ssim, same.ciede2000), (1.0, 0.0));
    }

    #[test]
    fn malformed_or_mismatched_images_are_errors() {
        let a = uniform(12, 12, [1, 2, 3]);
        let small = uniform(10, 12, [1, 2, 3]);
        assert!(matches!(
            psnr_rgb(&a, &small),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(matches!(
            ssim(&small, &small),
            Err(Error::TooSmall { min: 11, .. })
        ));
        let mut short = a.clone();
        short.data.pop();
        assert!(matches!(
            ciede2000_mean(&short, &a),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(matches!(
            colorfulness(&short),
            Err(Error::SizeMismatch { .. })
        ));
        let empty = uniform(0, 0, [0, 0, 0]);
        assert!(matches!(
            psnr_rgb(&empty, &empty),
            Err(Error::TooSmall { .. })
        ));
        assert!(matches!(colorfulness(&empty), Err(Error::TooSmall { .. })));
        let huge = RgbImage {
            width: usize::MAX,
            height: 2,
            data: Vec::new(),
        };
        assert!(matches!(
            colorfulness(&huge),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(matches!(
            ssim_plane(&[0.0; 10], &[0.0; 11], 11, 1, 1.0),
            Err(Error::SizeMismatch { .. })
        ));
    }
}
