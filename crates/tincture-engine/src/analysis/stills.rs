//! Scoring a model on stills it has never seen ([`evaluate_stills`];
//! `tincture-cli eval-images`), and composing a still's luma with the
//! model's chroma ([`compose_rgb`], which `colorize-image` shares).
//!
//! Each colour photograph in a folder is made gray exactly as a scan of a
//! print would be (BT.601 luma of its 8-bit R'G'B', rounded to 8 bits),
//! given N one-pixel hints carrying the original's CIE a*b* at random
//! points, coloured back, composed as `colorize-image` does and scored
//! against the original. The gray picture's own PSNR is the baseline a
//! model has to beat.
//!
//! The points are drawn by [`SplitMix64`] from (seed, image index), so a run
//! is repeatable on any machine and any version of the `rand` crate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use image::DynamicImage;
use tincture_core::color::Matrix;
use tincture_core::frame::{ChromaField, LumaImage, RgbImage};
use tincture_core::metrics::{ImageScores, PSNR_CAP_DB, colorfulness, psnr_rgb, srgb8_to_lab};
use tincture_infer::{Hint, HintSpread, Model, NeuralColorizer, SolverSpread};

use super::file_name;
use crate::neural::{ModelChoice, open_colorizer};
use crate::{Error, Result};

/// The matrix stills are composed with: BT.601, full range.
pub const STILL_MATRIX: Matrix = Matrix::Bt601;

/// File extensions [`evaluate_stills`] reads.
pub const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "tif", "tiff", "bmp"];

/// `luma` + `chroma` (BT.601, full range) as R'G'B' code values of `max`
/// (255 or 65535), row-major triplets: chroma limited to the gamut at each
/// pixel's luma, converted, clamped and rounded.
pub fn compose_rgb(luma: &LumaImage, chroma: &ChromaField, max: f32) -> Vec<u16> {
    let mut out = Vec::with_capacity(luma.data.len() * 3);
    for ((&y, &cb), &cr) in luma.data.iter().zip(&chroma.cb).zip(&chroma.cr) {
        let (cb, cr) = STILL_MATRIX.limit_to_gamut(y, cb, cr);
        for c in STILL_MATRIX.ycbcr_to_rgb([y, cb, cr]) {
            out.push((c.clamp(0.0, 1.0) * max).round() as u16);
        }
    }
    out
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny generator whose output
/// is fixed by its definition, so points stay the same across versions.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator starting at `state`.
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    /// The generator for picture `index` of a run seeded with `seed`.
    pub fn for_image(seed: u64, index: u64) -> Self {
        Self::new(mix64(mix64(seed) ^ index))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// A number in `0..n` (`n` > 0), by multiply-and-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// `n` distinct pixels (x, y) of a `width` x `height` picture (all of them
/// when `n` is larger), in the order drawn.
pub fn pick_points(
    n: usize,
    width: usize,
    height: usize,
    rng: &mut SplitMix64,
) -> Vec<(usize, usize)> {
    let total = width * height;
    let n = n.min(total);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let i = rng.below(total as u64) as usize;
        if seen.insert(i) {
            out.push((i % width, i / width));
        }
    }
    out
}

/// The 8-bit gray an archivist's scan gives: BT.601 luma of 8-bit R'G'B',
/// rounded (halves up), as exact integer arithmetic.
pub fn gray8_of(rgb: &RgbImage) -> Vec<u8> {
    rgb.data
        .chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
            ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
        })
        .collect()
}

/// The pictures in `dir` ([`EXTENSIONS`]), sorted by name.
///
/// # Errors
/// [`Error::Analysis`] when the folder cannot be read.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Analysis {
        path: dir.to_owned(),
        reason: format!("cannot read the folder: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// The short side the model runs at for large pictures: the fixed size of a
/// fixed-size model, else `requested` or the model's default. (Pictures
/// smaller than that run at their own size; see [`ScoredStill::model_size`].)
pub fn render_short_side(model: &Model, requested: Option<u32>) -> usize {
    let big = 1 << 16;
    let (w, h) = model.run_size(big, big, requested);
    w.min(h)
}

/// What to score.
#[derive(Clone, Debug, Default)]
pub struct StillsRequest {
    /// A folder of colour photographs ([`EXTENSIONS`]), taken in name order.
    pub dir: PathBuf,
    /// Hint points per picture, each carrying the original's colour at one
    /// random pixel.
    pub points: usize,
    /// Seed of the random points; the same seed gives the same points.
    pub seed: u64,
    /// The model to score.
    pub model: ModelChoice,
    /// Settings of the solver's hint spread in place of the built-in ones,
    /// when the model's render settings spread hints with the solver (for
    /// choosing them on validation photos).
    pub solver_spread: Option<SolverSpread>,
}

/// The scores of one picture.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredStill {
    /// Its file name.
    pub name: String,
    /// Its width, pixels.
    pub width: usize,
    /// Its height, pixels.
    pub height: usize,
    /// The size the model ran at.
    pub model_size: (usize, usize),
    /// The prediction against the original.
    pub scores: ImageScores,
    /// The original's colourfulness.
    pub colorfulness_reference: f64,
    /// The gray picture's PSNR against the original: the baseline.
    pub gray_psnr: f64,
}

/// Why a picture could not be scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StillFailureKind {
    /// It cannot be read as a picture.
    Unreadable,
    /// The model failed on it.
    Model,
    /// Its scores cannot be computed.
    Unscorable,
}

/// A picture that could not be scored; the run goes on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StillFailure {
    /// The picture.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Why, as a kind.
    pub kind: StillFailureKind,
    /// Why, in words.
    pub reason: String,
}

/// What [`evaluate_stills`] reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum StillsEvent<'a> {
    /// The model is loaded and the pictures listed.
    Started {
        /// The model's name.
        model: &'a str,
        /// Where it runs.
        provider: &'a str,
        /// See [`render_short_side`].
        short_side: usize,
        /// Pictures to score.
        pictures: usize,
    },
    /// Picture `index` (0-based) of `total` is next.
    Picture {
        /// Its position.
        index: usize,
        /// Pictures in all.
        total: usize,
        /// Its file name.
        name: &'a str,
    },
    /// A picture was scored.
    Scored(&'a ScoredStill),
    /// A gray picture was skipped: it has no colour to score against.
    Skipped {
        /// Its file name.
        name: &'a str,
    },
    /// A picture could not be scored.
    Failed(&'a StillFailure),
}

/// Means of the scores over scored pictures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StillMeans {
    /// Mean PSNR, dB.
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean CIEDE2000.
    pub ciede2000: f64,
    /// Mean colourfulness of the predictions.
    pub colorfulness: f64,
    /// Mean colourfulness of the originals.
    pub colorfulness_reference: f64,
    /// Mean PSNR of the gray pictures.
    pub gray_psnr: f64,
}

impl StillMeans {
    /// The means over `scored`; `None` when it is empty.
    pub fn of(scored: &[ScoredStill]) -> Option<Self> {
        if scored.is_empty() {
            return None;
        }
        let n = scored.len() as f64;
        let mean = |f: fn(&ScoredStill) -> f64| scored.iter().map(f).sum::<f64>() / n;
        Some(Self {
            psnr: mean(|s| s.scores.psnr),
            ssim: mean(|s| s.scores.ssim),
            ciede2000: mean(|s| s.scores.ciede2000),
            colorfulness: mean(|s| s.scores.colorfulness),
            colorfulness_reference: mean(|s| s.colorfulness_reference),
            gray_psnr: mean(|s| s.gray_psnr),
        })
    }
}

/// What [`evaluate_stills`] found.
#[derive(Clone, Debug)]
pub struct StillsReport {
    /// Hint points per picture.
    pub points: usize,
    /// The seed of the points.
    pub seed: u64,
    /// The model's name.
    pub model: String,
    /// The model's version, from its manifest.
    pub model_version: String,
    /// Where it ran.
    pub provider: String,
    /// See [`render_short_side`].
    pub render_short_side: usize,
    /// How the hints were spread.
    pub hint_spread: HintSpread,
    /// The pictures scored, in name order.
    pub scored: Vec<ScoredStill>,
    /// The pictures that could not be scored.
    pub failed: Vec<StillFailure>,
    /// Whether the cancel flag stopped the run before the last picture.
    pub stopped: bool,
}

impl StillsReport {
    /// The means over the scored pictures; `None` when none was scored.
    pub fn means(&self) -> Option<StillMeans> {
        StillMeans::of(&self.scored)
    }

    /// What `tincture-cli eval-images --json` writes.
    pub fn json(&self) -> serde_json::Value {
        let m = self.means();
        let field = |f: fn(&StillMeans) -> f64| m.as_ref().map(f);
        serde_json::json!({
            "images": self.scored.len(),
            "points": self.points,
            "seed": self.seed,
            "psnr": field(|m| m.psnr),
            "ssim": field(|m| m.ssim),
            "ciede2000": field(|m| m.ciede2000),
            "colorfulness": field(|m| m.colorfulness),
            "colorfulness_reference": field(|m| m.colorfulness_reference),
            "gray_psnr": field(|m| m.gray_psnr),
            "model": self.model,
            "model_version": self.model_version,
            "provider": self.provider,
            "render_short_side": self.render_short_side,
            "hint_spread": self.hint_spread.name(),
            "per_image": self.scored.iter().map(|s| {
                let (mw, mh) = s.model_size;
                serde_json::json!({
                    "name": s.name,
                    "width": s.width,
                    "height": s.height,
                    "model_size": [mw, mh],
                    "psnr": s.scores.psnr,
                    "ssim": s.scores.ssim,
                    "ciede2000": s.scores.ciede2000,
                    "colorfulness": s.scores.colorfulness,
                    "colorfulness_reference": s.colorfulness_reference,
                    "gray_psnr": s.gray_psnr,
                })
            }).collect::<Vec<_>>(),
            "failed": self.failed.iter().map(|f| serde_json::json!({"name": f.name, "reason": f.reason})).collect::<Vec<_>>(),
        })
    }
}

/// Scores the model `req.model` on the pictures in `req.dir`, reporting
/// each through `on_event` and stopping between pictures once `cancel` is
/// set. A picture that cannot be read, coloured or scored is reported
/// ([`StillsEvent::Failed`], [`StillsReport::failed`]) and the run goes on;
/// a gray one is skipped.
///
/// # Errors
/// [`Error::Analysis`] for a folder that cannot be read or holds no
/// pictures; [`Error::Model`] when the model cannot be loaded.
pub fn evaluate_stills(
    req: &StillsRequest,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(StillsEvent<'_>),
) -> Result<StillsReport> {
    let paths = list_images(&req.dir)?;
    if paths.is_empty() {
        return Err(Error::Analysis {
            path: req.dir.clone(),
            reason: format!("holds no pictures ({})", EXTENSIONS.join(", ")),
        });
    }
    let mut colorizer = open_colorizer(&req.model)?;
    if let Some(spread) = req.solver_spread {
        colorizer.set_solver_spread(spread);
    }
    let model = colorizer.model();
    let mut report = StillsReport {
        points: req.points,
        seed: req.seed,
        model: model.name().to_owned(),
        model_version: model.manifest().version.clone(),
        provider: model.provider().to_owned(),
        render_short_side: render_short_side(model, colorizer.settings().short_side),
        hint_spread: colorizer.settings().hint_spread,
        scored: Vec::new(),
        failed: Vec::new(),
        stopped: false,
    };
    on_event(StillsEvent::Started {
        model: &report.model,
        provider: &report.provider,
        short_side: report.render_short_side,
        pictures: paths.len(),
    });
    for (i, path) in paths.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            report.stopped = true;
            break;
        }
        let name = file_name(path);
        on_event(StillsEvent::Picture {
            index: i,
            total: paths.len(),
            name: &name,
        });
        match score_image(&mut colorizer, path, i as u64, req) {
            Ok(Some(s)) => {
                on_event(StillsEvent::Scored(&s));
                report.scored.push(s);
            }
            Ok(None) => on_event(StillsEvent::Skipped { name: &name }),
            Err((kind, reason)) => {
                let f = StillFailure {
                    path: path.clone(),
                    name,
                    kind,
                    reason,
                };
                on_event(StillsEvent::Failed(&f));
                report.failed.push(f);
            }
        }
    }
    Ok(report)
}

/// Makes picture `index` gray, colours it back with `req.points` hints and
/// scores it; `None` for a gray picture.
fn score_image(
    colorizer: &mut NeuralColorizer,
    path: &Path,
    index: u64,
    req: &StillsRequest,
) -> std::result::Result<Option<ScoredStill>, (StillFailureKind, String)> {
    let img = image::open(path)
        .map_err(|e| (StillFailureKind::Unreadable, format!("cannot read it: {e}")))?;
    if !img.color().has_color() {
        return Ok(None);
    }
    let truth = rgb8_of(&img);
    let (w, h) = (truth.width, truth.height);
    let gray = gray8_of(&truth);
    let luma = LumaImage {
        width: w,
        height: h,
        data: gray.iter().map(|&v| f32::from(v) / 255.0).collect(),
    };
    let mut rng = SplitMix64::for_image(req.seed, index);
    let hints: Vec<Hint> = pick_points(req.points, w, h, &mut rng)
        .into_iter()
        .map(|(x, y)| {
            let i = 3 * (y * w + x);
            let lab = srgb8_to_lab([truth.data[i], truth.data[i + 1], truth.data[i + 2]]);
            Hint {
                x: x as f32,
                y: y as f32,
                ab: [lab[1] as f32, lab[2] as f32],
                size: 1.0,
            }
        })
        .collect();
    let chroma = colorizer
        .colorize_with(&luma, &hints, index, STILL_MATRIX)
        .map_err(|e| (StillFailureKind::Model, e.to_string()))?;
    let prediction = RgbImage {
        width: w,
        height: h,
        data: compose_rgb(&luma, &chroma, 255.0)
            .into_iter()
            .map(|v| v.min(255) as u8)
            .collect(),
    };
    let gray_rgb = RgbImage {
        width: w,
        height: h,
        data: gray.iter().flat_map(|&v| [v, v, v]).collect(),
    };
    let unscorable = |e: tincture_core::Error| {
        (
            StillFailureKind::Unscorable,
            format!("cannot be scored: {e}"),
        )
    };
    Ok(Some(ScoredStill {
        name: file_name(path),
        width: w,
        height: h,
        model_size: colorizer
            .model()
            .run_size(w, h, colorizer.settings().short_side),
        scores: ImageScores::score(&prediction, &truth).map_err(unscorable)?,
        colorfulness_reference: colorfulness(&truth).map_err(unscorable)?,
        gray_psnr: psnr_rgb(&gray_rgb, &truth)
            .map_err(unscorable)?
            .min(PSNR_CAP_DB),
    }))
}

fn rgb8_of(img: &DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(w: usize, h: usize, cb: f32, cr: f32) -> ChromaField {
        ChromaField {
            width: w,
            height: h,
            cb: vec![cb; w * h],
            cr: vec![cr; w * h],
        }
    }

    #[test]
    fn composing_keeps_luma_even_for_chroma_out_of_gamut() {
        let values: Vec<f32> = (0..=255).map(|v| v as f32 / 255.0).collect();
        let luma = LumaImage {
            width: 256,
            height: 1,
            data: values,
        };
        for (cb, cr) in [(0.0, 0.0), (0.1, -0.2), (-0.5, 0.5), (0.45, 0.45)] {
            let rgb = compose_rgb(&luma, &field(256, 1, cb, cr), 255.0);
            for (v, px) in rgb.chunks_exact(3).enumerate() {
                let y =
                    0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]);
                assert!(
                    (y - v as f32).abs() <= 0.5 + 1e-3,
                    "cb {cb} cr {cr}: {v} -> {px:?}"
                );
            }
        }
        let gray = compose_rgb(&luma, &field(256, 1, 0.0, 0.0), 65535.0);
        assert_eq!(&gray[3 * 255..], &[65535, 65535, 65535]);
        assert_eq!(&gray[3 * 51..3 * 52], &[13107, 13107, 13107]);
    }

    #[test]
    fn splitmix64_matches_its_definition() {
        // Reference values of SplitMix64 from state 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let a: Vec<u64> = (0..4)
            .map(|_| SplitMix64::for_image(7, 2).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "repeatable");
        assert_ne!(
            SplitMix64::for_image(7, 2).next_u64(),
            SplitMix64::for_image(7, 3).next_u64()
        );
        assert_ne!(
            SplitMix64::for_image(7, 2).next_u64(),
            SplitMix64::for_image(8, 2).next_u64()
        );
    }

    #[test]
    fn points_are_distinct_and_inside() {
        let mut r = SplitMix64::for_image(1, 0);
        let pts = pick_points(50, 9, 7, &mut r);
        assert_eq!(pts.len(), 50);
        let set: HashSet<_> = pts.iter().collect();
        assert_eq!(set.len(), 50);
        assert!(pts.iter().all(|&(x, y)| x < 9 && y < 7));
        assert_eq!(
            pick_points(500, 9, 7, &mut r).len(),
            63,
            "at most every pixel"
        );
        assert!(pick_points(0, 9, 7, &mut r).is_empty());
    }

    #[test]
    fn gray_is_rounded_bt601_luma() {
        let rgb = RgbImage {
            width: 4,
            height: 1,
            data: vec![255, 255, 255, 0, 0, 0, 255, 0, 0, 10, 200, 30],
        };
        // 0.299 * 255 = 76.245; 0.299 * 10 + 0.587 * 200 + 0.114 * 30 = 123.81.
        assert_eq!(gray8_of(&rgb), [255, 0, 76, 124]);
    }
}
