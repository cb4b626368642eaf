//! `metrics` and `eval`: how much a coloured clip flickers and, when the
//! true colour is known, how far it is from it, frame by frame.
//!
//! `metrics VIDEO [--reference GT]` measures a clip as it is. `eval GT`
//! takes a colour clip as the truth, makes it gray, colours it back and
//! measures the result against the truth. The work is the engine's
//! ([`tincture_engine::analysis::metrics`] and
//! [`tincture_engine::analysis::eval`]); this module reads the arguments,
//! shows progress, prints the summary table and writes the files asked for.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use tincture_core::video_metrics::{MetricsReport, SeriesSummary};
use tincture_engine::Error as EngineError;
use tincture_engine::analysis::TOP_FLICKER;
use tincture_engine::analysis::eval::{EvalEvent, EvalRequest, evaluate};
use tincture_engine::analysis::metrics::{MetricsRequest, measure};
use tincture_media::VideoReader;

use crate::outputs::Outputs;
use crate::{Failure, ModelArgs, parse_frames};

/// Arguments of `metrics`.
#[derive(clap::Args)]
pub struct MetricsArgs {
    /// The clip to measure (a colorization, or any colour video).
    pub video: PathBuf,
    /// The true colour of the same clip, frame for frame: adds PSNR, SSIM and CIEDE2000.
    #[arg(long, value_name = "GT_VIDEO")]
    pub reference: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Also draw the per-frame series into this PNG (1600 px wide).
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Frames to measure, inclusive: `A-B`, `A-` (to the end) or `N`.
    #[arg(long, value_name = "A-B")]
    pub frames: Option<String>,
    /// Replace the --json and --plot files if they exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// Arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalVideoArgs {
    /// A colour clip: the truth. Its own luma is the gray input that is coloured back.
    pub gt: PathBuf,
    /// Frames whose true colour is given (comma-separated indices): keyframes. Every other frame
    /// takes its colour by propagation along the optical flow from the keyframes around it, joined
    /// with the model's prior where propagation is unsure. Without it, the neural model colours
    /// every frame on its own.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
    pub keyframes_from_gt: Vec<u64>,
    /// With keyframes: colour the other frames by reference transfer from the nearest keyframe at
    /// or before them, instead of propagation (the simpler engine, for comparison).
    #[arg(long, requires = "keyframes_from_gt")]
    pub transfer: bool,
    /// With keyframes: propagation alone, without the model's prior.
    #[arg(long, requires = "keyframes_from_gt", conflicts_with = "transfer")]
    pub no_prior: bool,
    /// With keyframes: where propagation fails, match each frame against a memory of coloured
    /// frames (the keyframes and recent confident frames) on the model's features.
    #[arg(long, requires = "keyframes_from_gt", conflicts_with_all = ["transfer", "no_prior"])]
    pub memory: bool,
    /// With --memory: matched colour is a data term of each frame's solve, this weight per unit of
    /// its confidence, where propagation is unsure (default: the engine's, 5). 0: matched colour
    /// comes only in the model's place where the model's colour fades in.
    #[arg(long, value_name = "W", requires = "memory")]
    pub memory_weight: Option<f32>,
    /// With --memory: matches whose best cosine is at or below this give no colour. Default: the
    /// engine's.
    #[arg(long, value_name = "C", requires = "memory")]
    pub memory_floor: Option<f32>,
    /// With --memory: how many recent coloured frames the memory keeps besides the keyframes
    /// (0: keyframes only). Default: the engine's.
    #[arg(long, value_name = "N", requires = "memory")]
    pub memory_recent: Option<usize>,
    /// With --memory: the carried confidence (0 to 1) at and above which matched colour has no say.
    /// Default: the engine's.
    #[arg(long, value_name = "C", requires = "memory")]
    pub memory_gate: Option<f32>,
    /// Strength of the temporal stabiliser, 0 (off) to 0.95. Default: 0.6 with keyframes, 0
    /// (the model frame by frame) without.
    #[arg(long, value_name = "S")]
    pub stabilise: Option<f32>,
    /// With keyframes and the prior: how fast the prior fades in where propagation stays unsure,
    /// per frame, 0 to 1 (1: at once). Default: the engine's (0.1).
    #[arg(long, value_name = "F", requires = "keyframes_from_gt")]
    pub prior_fade: Option<f32>,
    /// With keyframes and the prior: how steady the prior is held along the motion before it
    /// joins, 0 (each frame's own) to 0.95. Default: the engine's (0.9).
    #[arg(long, value_name = "S", requires = "keyframes_from_gt")]
    pub prior_steady: Option<f32>,
    /// A colour photograph that steers the model's prior for every frame, as a reference photo of
    /// a project does (a period photo of the same place, say); give it more than once for several.
    /// Gray or unreadable pictures are refused.
    #[arg(long, value_name = "PHOTO", conflicts_with = "transfer")]
    pub reference_photo: Vec<PathBuf>,
    /// Also write a side-by-side strip PNG: every Nth frame (--strip-every) as gray, the model
    /// frame by frame, this evaluation's output and the truth.
    #[arg(long, value_name = "OUT.png")]
    pub strip: Option<PathBuf>,
    /// Frame spacing of --strip.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub strip_every: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Also draw the per-frame series into this PNG (1600 px wide).
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Frames to evaluate, inclusive: `A-B`, `A-` (to the end) or `N`.
    #[arg(long, value_name = "A-B")]
    pub frames: Option<String>,
    /// Replace the --json, --plot and --strip files if they exist.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The exit code and message of an engine error from `metrics` or `eval`:
/// as everywhere, except that a setting is named by its flag and a
/// reference clip that cannot be opened is a reference that cannot be used.
fn failure(e: EngineError) -> Failure {
    match e {
        EngineError::Setting {
            name,
            value,
            reason,
        } => Failure {
            code: 2,
            message: format!("{} {value}: {reason}", flag(name)),
        },
        e => Failure::from(e),
    }
}

/// The flag of an analysis request's field.
fn flag(name: &str) -> String {
    match name {
        "keyframes" => "--keyframes-from-gt".into(),
        name => format!("--{}", name.replace('_', "-")),
    }
}

/// The inclusive frame range `--frames` names, read against the clip's
/// length (`None` without it: the engine takes every frame).
fn frame_range(path: &Path, text: Option<&str>) -> Result<Option<(u64, u64)>, Failure> {
    let Some(text) = text else {
        return Ok(None);
    };
    let count = VideoReader::open(path)
        .map_err(|e| Failure::from(EngineError::Media(e)))?
        .frame_count();
    if count == 0 {
        return Err(Failure {
            code: 3,
            message: format!("{}: holds no video frames", path.display()),
        });
    }
    let range = parse_frames(text, count).map_err(|reason| Failure {
        code: 2,
        message: format!("--frames {text}: {}: {reason}", path.display()),
    })?;
    Ok(Some(range))
}

/// A frame progress bar on stderr (hidden when stderr is not a terminal), for every command
/// that walks a film.
pub fn progress(total: u64) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:40}] {pos}/{len} frames  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A progress bar made at the first report, when the total is known.
#[derive(Default)]
struct LazyBar(Option<indicatif::ProgressBar>);

impl LazyBar {
    fn set(&mut self, done: u64, total: u64) {
        self.0
            .get_or_insert_with(|| progress(total))
            .set_position(done);
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// `metrics`: returns the exit code.
///
/// # Errors
/// 2 for a bad frame range, 3 for an unreadable clip, 5 for a reference
/// that cannot be used (another length or size, gray, unreadable), 4 when
/// an output cannot be written.
pub fn metrics_cmd(args: &MetricsArgs) -> Result<u8, Failure> {
    let outputs = Outputs::new(
        std::iter::once(args.video.as_path()).chain(args.reference.as_deref()),
        args.overwrite,
    );
    for out in args.json.iter().chain(&args.plot) {
        outputs.check(out)?;
    }
    let request = MetricsRequest {
        video: args.video.clone(),
        reference: args.reference.clone(),
        frames: frame_range(&args.video, args.frames.as_deref())?,
    };
    let mut bar = LazyBar::default();
    let measured = measure(&request, &AtomicBool::new(false), |done, total| {
        bar.set(done, total);
    })
    .map_err(failure)?;
    bar.finish();
    print_summary(&measured.title(), &measured.report, measured.frames.0, None);
    if let Some(out) = &args.json {
        write_json(&outputs, out, &measured.json())?;
    }
    if let Some(out) = &args.plot {
        outputs.write_plot(out, &measured.plot())?;
    }
    Ok(0)
}

fn write_json(outputs: &Outputs, out: &Path, value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    outputs.write_text(out, &(text + "\n"))
}

/// `eval`: returns the exit code.
///
/// # Errors
/// 2 for a bad frame range or keyframe, 3 for an unreadable or gray clip,
/// 6 when the model cannot be used, 4 when an output cannot be written.
pub fn eval_cmd(args: &EvalVideoArgs) -> Result<u8, Failure> {
    let gt = &args.gt;
    let outputs = Outputs::new(
        std::iter::once(gt.as_path()).chain(args.reference_photo.iter().map(PathBuf::as_path)),
        args.overwrite,
    );
    for out in args.json.iter().chain(&args.strip).chain(&args.plot) {
        outputs.check(out)?;
    }
    let request = EvalRequest {
        truth: gt.clone(),
        frames: frame_range(gt, args.frames.as_deref())?,
        keyframes: args.keyframes_from_gt.clone(),
        transfer: args.transfer,
        no_prior: args.no_prior,
        memory: args.memory,
        memory_weight: args.memory_weight,
        memory_floor: args.memory_floor,
        memory_recent: args.memory_recent,
        memory_gate: args.memory_gate,
        stabilise: args.stabilise,
        prior_fade: args.prior_fade,
        prior_steady: args.prior_steady,
        reference_photos: args.reference_photo.clone(),
        strip_every: args.strip.as_ref().map(|_| args.strip_every),
        model: args.model.choice(),
    };
    let mut bar = LazyBar::default();
    let evaluation = evaluate(&request, &AtomicBool::new(false), |event| match event {
        EvalEvent::ModelOpened { name, provider } => eprintln!("model `{name}` on {provider}"),
        EvalEvent::Colouring(how) => eprintln!("colouring by {how}"),
        EvalEvent::Progress { done, total } => bar.set(done, total),
    })
    .map_err(failure)?;
    bar.finish();
    print_summary(
        &evaluation.title(),
        &evaluation.report,
        evaluation.frames.0,
        Some(&evaluation.floor),
    );
    if !evaluation.weak_share.is_empty() {
        let n = evaluation.weak_share.len() as f32;
        let mean = evaluation.weak_share.iter().sum::<f32>() / n;
        println!(
            "coloured from weak sources (the model alone, unsure matches): {:.1}% of the pixels on average",
            100.0 * mean
        );
        let suggested = evaluation.suggested_keyframes();
        if !suggested.is_empty() {
            let list: Vec<String> = suggested
                .iter()
                .map(|s| format!("{} (gain {:.1})", s.frame, s.gain))
                .collect();
            println!("one more keyframe would help most at: {}", list.join(", "));
        }
    }
    if let Some(out) = &args.json {
        write_json(&outputs, out, &evaluation.json())?;
    }
    if let Some(out) = &args.strip {
        outputs.write_strip(out, &evaluation.strip, &evaluation.engine)?;
        eprintln!("strip: {}", out.display());
    }
    if let Some(out) = &args.plot {
        outputs.write_plot(out, &evaluation.plot())?;
    }
    Ok(0)
}

/// `value` with `decimals`, or "n/a".
fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

/// Prints the summary table and the frames that flicker most.
fn print_summary(
    title: &str,
    report: &MetricsReport,
    first_frame: u64,
    floor: Option<&MetricsReport>,
) {
    let one_frame = report.frames < 2;
    println!(
        "{title}: {} frame{}",
        report.frames,
        if report.frames == 1 { "" } else { "s" }
    );
    println!(
        "  {:<16} {:>12} {:>12} {:>12} {:>12}",
        "metric", "mean", "median", "worst 5%", "clip"
    );
    let row = |name: &str, s: &SeriesSummary, decimals: usize, temporal: bool| {
        if temporal && one_frame {
            println!("  {name:<16} {:>12}", "n/a (one frame)");
            return;
        }
        println!(
            "  {name:<16} {:>12} {:>12} {:>12} {:>12}",
            num(s.mean, decimals),
            num(s.median, decimals),
            num(s.p95, decimals),
            s.clip.map_or(String::new(), |c| format!("{c:.decimals$}")),
        );
    };
    row("warp error", &report.warp_error, 6, true);
    row("CDC", &report.cdc, 5, true);
    row("colourfulness", &report.colorfulness, 2, false);
    row("mean chroma", &report.mean_chroma, 2, false);
    if let Some(s) = &report.psnr {
        row("PSNR dB", s, 2, false);
    }
    if let Some(s) = &report.ssim {
        row("SSIM", s, 4, false);
    }
    if let Some(s) = &report.ciede2000 {
        row("CIEDE2000", s, 2, false);
    }
    if let Some(f) = floor {
        if one_frame {
            println!("  floor (the truth's own): n/a (one frame)");
        } else {
            println!(
                "  floor (the truth's own): warp error {} (mean), CDC {} (clip)",
                num(f.warp_error.mean, 6),
                num(f.cdc.clip, 5)
            );
        }
    }
    println!(
        "  (worst 5%: the 95th percentile where lower is better, the 5th where higher is better; \
         clip: CDC over the whole clip as published)"
    );
    if one_frame {
        println!("frames that flicker most: n/a (one frame)");
        return;
    }
    let worst = report.warp_error.worst_frames(TOP_FLICKER);
    if worst.is_empty() {
        println!("frames that flicker most: n/a (the flow follows no pixel)");
        return;
    }
    println!("frames that flicker most (warp error from the frame before):");
    for (i, v) in worst {
        let cdc = report.cdc.per_frame.get(i).copied().flatten();
        println!(
            "  frame {:>7}  warp error {v:.6}  CDC {}",
            first_frame + i as u64,
            num(cdc, 5)
        );
    }
}
