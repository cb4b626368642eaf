//! `eval-images`: how well a model colours pictures it has never seen.
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

use image::DynamicImage;
use tincture_core::frame::{LumaImage, RgbImage};
use tincture_core::metrics::{ImageScores, PSNR_CAP_DB, colorfulness, psnr_rgb, srgb8_to_lab};
use tincture_engine::neural::open_colorizer;
use tincture_infer::{Hint, Model, NeuralColorizer};

use crate::outputs::Outputs;
use crate::still::{STILL_MATRIX, compose_rgb};
use crate::{Failure, ModelArgs};

/// Arguments of `eval-images`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A folder of colour photographs (jpg, jpeg, png, tif, tiff, bmp), taken in name order.
    pub dir: PathBuf,
    /// Hint points per picture, each carrying the original's colour at one random pixel.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub points: usize,
    /// Also write the scores as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Seed of the random points; the same seed gives the same points.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Print a line of scores per picture.
    #[arg(long)]
    pub verbose: bool,
    /// Replace the --json file if it exists.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub model: ModelArgs,
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

/// File extensions `eval-images` reads.
const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "tif", "tiff", "bmp"];

/// The pictures in `dir`, sorted by name.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| Failure {
        code: 3,
        message: format!("{}: cannot read the folder: {e}", dir.display()),
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

/// The scores of one picture.
#[derive(Clone, Debug)]
struct Scored {
    name: String,
    width: usize,
    height: usize,
    scores: ImageScores,
    colorfulness_reference: f64,
    gray_psnr: f64,
}

/// What became of one picture.
enum Verdict {
    Scored(Scored),
    /// Not a colour picture: nothing to score against.
    Skipped,
}

/// Why a picture could not be scored, and the exit code it leads to.
struct ImageFailure {
    code: u8,
    reason: String,
}

fn failure(code: u8, reason: impl std::fmt::Display) -> ImageFailure {
    ImageFailure {
        code,
        reason: reason.to_string(),
    }
}

/// Makes picture `index` gray, colours it back with `points` hints and scores it.
fn score_image(
    colorizer: &mut NeuralColorizer,
    path: &Path,
    index: u64,
    args: &EvalArgs,
) -> Result<Verdict, ImageFailure> {
    let img = image::open(path).map_err(|e| failure(3, format!("cannot read it: {e}")))?;
    if !img.color().has_color() {
        return Ok(Verdict::Skipped);
    }
    let truth = rgb8_of(&img);
    let (w, h) = (truth.width, truth.height);
    let gray = gray8_of(&truth);
    let luma = LumaImage {
        width: w,
        height: h,
        data: gray.iter().map(|&v| f32::from(v) / 255.0).collect(),
    };
    let mut rng = SplitMix64::for_image(args.seed, index);
    let hints: Vec<Hint> = pick_points(args.points, w, h, &mut rng)
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
        .map_err(|e| failure(6, e))?;
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
    let unscorable = |e: tincture_core::Error| failure(3, format!("cannot be scored: {e}"));
    Ok(Verdict::Scored(Scored {
        name: file_name(path),
        width: w,
        height: h,
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

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The short side the model runs at for large pictures: the fixed size of a
/// fixed-size model, else `--render-size` or the model's default. (Pictures
/// smaller than that run at their own size; see each picture's entry.)
fn render_short_side(model: &Model, requested: Option<u32>) -> usize {
    let big = 1 << 16;
    let (w, h) = model.run_size(big, big, requested);
    w.min(h)
}

/// Means of the scores over the scored pictures.
#[derive(Clone, Copy, Debug, Default)]
struct Means {
    psnr: f64,
    ssim: f64,
    ciede2000: f64,
    colorfulness: f64,
    colorfulness_reference: f64,
    gray_psnr: f64,
}

fn means(scored: &[Scored]) -> Option<Means> {
    if scored.is_empty() {
        return None;
    }
    let n = scored.len() as f64;
    let mean = |f: fn(&Scored) -> f64| scored.iter().map(f).sum::<f64>() / n;
    Some(Means {
        psnr: mean(|s| s.scores.psnr),
        ssim: mean(|s| s.scores.ssim),
        ciede2000: mean(|s| s.scores.ciede2000),
        colorfulness: mean(|s| s.scores.colorfulness),
        colorfulness_reference: mean(|s| s.colorfulness_reference),
        gray_psnr: mean(|s| s.gray_psnr),
    })
}

fn table_line(name: &str, m: &Means) -> String {
    format!(
        "{name:<32} {:>8.2} {:>7.4} {:>7.2} {:>9.2} {:>9.2} {:>9.2}",
        m.psnr, m.ssim, m.ciede2000, m.colorfulness, m.colorfulness_reference, m.gray_psnr
    )
}

fn report_json(
    args: &EvalArgs,
    colorizer: &NeuralColorizer,
    scored: &[Scored],
    failed: &[(String, String)],
) -> serde_json::Value {
    let m = means(scored);
    let field = |f: fn(&Means) -> f64| m.as_ref().map(f);
    let model = colorizer.model();
    serde_json::json!({
        "images": scored.len(),
        "points": args.points,
        "seed": args.seed,
        "psnr": field(|m| m.psnr),
        "ssim": field(|m| m.ssim),
        "ciede2000": field(|m| m.ciede2000),
        "colorfulness": field(|m| m.colorfulness),
        "colorfulness_reference": field(|m| m.colorfulness_reference),
        "gray_psnr": field(|m| m.gray_psnr),
        "model": model.name(),
        "model_version": model.manifest().version,
        "provider": model.provider(),
        "render_short_side": render_short_side(model, colorizer.settings().short_side),
        "per_image": scored.iter().map(|s| {
            let (mw, mh) = model.run_size(s.width, s.height, colorizer.settings().short_side);
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
        "failed": failed.iter().map(|(name, reason)| serde_json::json!({"name": name, "reason": reason})).collect::<Vec<_>>(),
    })
}

/// `eval-images`: returns the exit code, 0 when every picture was scored.
///
/// # Errors
/// 3 for an unreadable folder or one without pictures, 6 when the model
/// cannot be loaded, 4 when the JSON cannot be written. A picture that
/// cannot be read or coloured is reported and the run goes on; the exit
/// code then says so (6 when the model failed on one, else 3).
pub fn eval_images_cmd(args: &EvalArgs) -> Result<u8, Failure> {
    let outputs = Outputs::new([args.dir.as_path()], args.overwrite);
    if let Some(out) = &args.json {
        outputs.check(out)?;
    }
    let paths = list_images(&args.dir)?;
    if paths.is_empty() {
        return Err(Failure {
            code: 3,
            message: format!(
                "{}: holds no pictures ({})",
                args.dir.display(),
                EXTENSIONS.join(", ")
            ),
        });
    }
    let mut colorizer = open_colorizer(&args.model.choice())?;
    let short = render_short_side(colorizer.model(), colorizer.settings().short_side);
    eprintln!(
        "scoring model `{}` on {} at short side {short}: {} pictures, {} hint points each, seed {}",
        colorizer.model().name(),
        colorizer.model().provider(),
        paths.len(),
        args.points,
        args.seed
    );
    let header = format!(
        "{:<32} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "picture", "PSNR dB", "SSIM", "dE2000", "colourful", "original", "gray PSNR"
    );
    if args.verbose {
        println!("{header}");
    }
    let mut scored = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut code = 0u8;
    for (i, path) in paths.iter().enumerate() {
        let name = file_name(path);
        eprintln!("[{}/{}] {name}", i + 1, paths.len());
        match score_image(&mut colorizer, path, i as u64, args) {
            Ok(Verdict::Scored(s)) => {
                if args.verbose {
                    let one = means(std::slice::from_ref(&s)).unwrap_or_default();
                    println!("{}", table_line(&name, &one));
                }
                scored.push(s);
            }
            Ok(Verdict::Skipped) => {
                eprintln!("{name}: skipped: a gray picture has no colour to score against");
            }
            Err(f) => {
                eprintln!("error: {}: {}", path.display(), f.reason);
                code = code.max(f.code);
                failed.push((name, f.reason));
            }
        }
    }
    match means(&scored) {
        Some(m) => {
            if !args.verbose {
                println!("{header}");
            }
            println!(
                "{}",
                table_line(&format!("mean of {} pictures", scored.len()), &m)
            );
        }
        None => {
            code = code.max(3);
            eprintln!("error: {}: no picture could be scored", args.dir.display());
        }
    }
    if !failed.is_empty() {
        eprintln!("{} pictures could not be scored", failed.len());
    }
    if let Some(out) = &args.json {
        let report = report_json(args, &colorizer, &scored, &failed);
        let text = serde_json::to_string_pretty(&report).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        outputs.write_text(out, &(text + "\n"))?;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

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
