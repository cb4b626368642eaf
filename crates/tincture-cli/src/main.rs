//! `tincture-cli`: Tincture's headless renderer, for batches and render farms.
//!
//! Subcommands: `probe`, `render` (a film, by the neural model, a reference
//! photograph or passed through), `colorize-image` (one still, with optional
//! hints; see [`still`]), `eval-images` (score a model on a folder of colour
//! photographs; see [`eval`]), `metrics` and `eval` (a clip's flicker, and
//! colorization scored against a colour clip; see [`metrics`]), `verify`,
//! `join` and `farm` (render farms; see [`farm`]) and `runtime`. The work of
//! each is the engine's; this binary parses, prints and maps errors to exit
//! codes.
//!
//! Exit codes (also in `--help`):
//! 0 success · 1 unexpected failure · 2 bad arguments · 3 the input cannot be used
//! (also a hints file, or an image `eval-images` cannot read) ·
//! 4 the output cannot be written · 5 the reference image cannot be used ·
//! 6 the model cannot be used (missing or corrupt, ONNX Runtime absent, or it produced NaN) ·
//! 7 `verify` found a frame whose luma is not the source's ·
//! 8 a batch queue ran to its end but some items failed ·
//! 130 stopped by Ctrl-C (a valid partial file is kept).

mod batch;
mod eval;
mod farm;
mod metrics;
mod outputs;
mod project;
mod shots;
mod still;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use tincture_core::colorize::Colorizer;
use tincture_engine::Error as EngineError;
use tincture_engine::analysis::eval::Colourer;
use tincture_engine::film::FilmColorizer;
use tincture_engine::neural::{ModelChoice, WorkerColorizer};
use tincture_engine::project::film_colorizer;
use tincture_engine::render::{
    Outcome, OutputFormat, RenderEvent, RenderRequest, Start, render_with,
};
use tincture_infer::{ExecutionChoice, HintSpread, RenderSettings};
use tincture_media::Error as MediaError;

const EXIT_HELP: &str = "Exit codes: 0 success, 1 unexpected failure, 2 bad arguments, \
3 the input cannot be used (also a hints file, or an image eval-images cannot read), \
4 the output cannot be written, 5 the reference image cannot be used, \
6 the model cannot be used (missing or corrupt, ONNX Runtime absent, or it produced NaN), \
7 verify found a frame whose luma is not the source's, \
8 a batch queue ran to its end but some items failed, \
130 stopped by Ctrl-C (a valid partial file is kept).";

#[derive(Parser)]
#[command(name = "tincture-cli", version, about = "Tincture: colorize black-and-white film, headless.", after_help = EXIT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a film file holds: streams, formats, colour tags, timecode, exact frame count.
    Probe {
        /// The film.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Render a film: colorized by the neural model (the default), from a reference photo, or passed through unchanged.
    Render(RenderArgs),
    /// Colour one still picture with the neural model, optionally guided by colour hints.
    ColorizeImage(still::ColorizeImageArgs),
    /// Score a model on a folder of colour photographs: each is made gray, coloured back and compared with the original.
    EvalImages(eval::EvalArgs),
    /// Measure a clip's flicker (warp error, CDC) and colourfulness per frame, and with --reference
    /// its distance from the true colour (PSNR, SSIM, CIEDE2000).
    Metrics(metrics::MetricsArgs),
    /// Score colorization on a colour clip: its own luma is coloured back (the model, or keyframes of
    /// true colour with --keyframes-from-gt) and measured against it.
    Eval(metrics::EvalVideoArgs),
    /// Find a film's shots (hard cuts, not fades or flashes) or read them from a CMX3600 EDL;
    /// print them and write them as an EDL for DaVinci Resolve and as JSON.
    Shots(shots::ShotsArgs),
    /// Create, check or relink a project (the JSON file holding shots, keyframes, hints, references
    /// and per-shot looks).
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Check that every frame of an output keeps the source's luma, bit for bit (archival QC).
    Verify(farm::VerifyArgs),
    /// Join the chunks of a farm render without re-encoding, carrying the source's audio and
    /// subtitles once, and write a manifest beside the output.
    Join(farm::JoinArgs),
    /// Render farms: plan a job bundle for OpenJD or Slurm, render one chunk, join the chunks.
    #[command(subcommand)]
    Farm(farm::FarmCommand),
    /// Check that ONNX Runtime (for the neural colorizer) can be found and loaded.
    Runtime,
    /// Run a batch queue (the JSON file the window's queue saves) item after item, resuming an
    /// interrupted item from its partial file; or add films to it with --add.
    Batch(batch::BatchArgs),
}

/// Which neural model to use and how to run it (`render`, `colorize-image`, `eval-images`).
#[derive(clap::Args, Clone, Debug, Default)]
struct ModelArgs {
    /// The colorizer: `builtin` (the default), a user model's name, or the path of a manifest (.json)
    /// or a bare .onnx file.
    #[arg(long, value_name = "builtin|NAME|PATH")]
    model: Option<String>,
    /// The short side, in pixels, of the picture the model runs at (default: the model's own).
    /// Smaller is faster; models of a fixed input size ignore it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(8..=16384))]
    render_size: Option<u32>,
    /// Run the model on the CPU even when an accelerator (CUDA, TensorRT, ...) is present.
    #[arg(long)]
    cpu: bool,
    /// How painted hints' colour spreads to the pixels around them: `filter` (an edge-aware
    /// normalised convolution) or `solver` (the film engine's edge-aware chroma solver).
    #[arg(long, value_name = "filter|solver", value_parser = parse_hint_spread)]
    hint_spread: Option<HintSpread>,
}

fn parse_hint_spread(s: &str) -> Result<HintSpread, String> {
    match s {
        "filter" => Ok(HintSpread::Filter),
        "solver" => Ok(HintSpread::Solver),
        _ => Err(format!(
            "`{s}` is not a hint spread; use `filter` or `solver`"
        )),
    }
}

impl ModelArgs {
    /// The engine's description of this choice.
    fn choice(&self) -> ModelChoice {
        ModelChoice {
            spec: self.model.clone().unwrap_or_else(|| "builtin".into()),
            render: RenderSettings {
                short_side: self.render_size,
                hint_spread: self.hint_spread.unwrap_or_default(),
            },
            execution: if self.cpu {
                ExecutionChoice::Cpu
            } else {
                ExecutionChoice::Auto
            },
            ..ModelChoice::default()
        }
    }
}

/// Arguments of `render`.
#[derive(clap::Args)]
struct RenderArgs {
    /// The source film (opened read-only).
    input: PathBuf,
    /// The output file, or folder for png/tiff sequences.
    #[arg(short, long)]
    output: PathBuf,
    /// A colour photograph to take the colours from, instead of the neural model.
    #[arg(long, conflicts_with_all = ["passthrough", "model", "render_size", "cpu"])]
    reference: Option<PathBuf>,
    /// Frames to render, inclusive: `A-B`, `A-` (to the end) or `N`.
    #[arg(long)]
    frames: Option<String>,
    /// ffv1 (MKV, lossless archival), prores (MOV, 422 HQ), h264 (MP4), png or tiff (16-bit) sequence.
    /// Default: from the output's name: .mkv ffv1, .mov prores, .mp4 h264, no extension a png folder.
    #[arg(long, value_parser = ["ffv1", "prores", "h264", "png", "tiff"])]
    format: Option<String>,
    /// Send frames through the pipeline unchanged (a plain transcode).
    #[arg(long, conflicts_with_all = ["model", "render_size", "cpu"])]
    passthrough: bool,
    /// H.264 constant rate factor.
    #[arg(long, default_value_t = 18)]
    crf: u8,
    /// Replace the output if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Encoder threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Render by a project (JSON): its shots, keyframes, hint strokes, references and per-shot
    /// looks; colour is propagated from the keyframes along the optical flow. INPUT must be the
    /// project's film (matched by the fingerprint of its first frames, so a moved file is fine).
    #[arg(long, value_name = "P.json", conflicts_with_all = ["reference", "passthrough"])]
    project: Option<PathBuf>,
    /// With --project: use INPUT even though its size or length differs from what the project
    /// recorded (its first frames still have to match).
    #[arg(long, requires = "project")]
    accept_changed: bool,
    /// With --project and --frames: a folder shared by the chunks of one render (on a render
    /// farm), where each chunk leaves the propagation state at its ends, so the chunk after it
    /// continues instead of replaying the shot from the keyframe before it. Same output to the bit.
    #[arg(long, value_name = "DIR", requires = "project")]
    chunk_state: Option<PathBuf>,
    /// Do not measure the output while rendering. By default flicker (warp error, CDC) and
    /// colourfulness are measured per frame and written beside the output as NAME.metrics.json.
    #[arg(long)]
    no_metrics: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// A failure with its exit code; its message is printed once, on one line.
struct Failure {
    code: u8,
    message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::Media(m) => match m {
                MediaError::Output { .. }
                | MediaError::Encode { .. }
                | MediaError::Write { .. }
                | MediaError::StreamNotCarried { .. } => 4,
                _ => 3,
            },
            EngineError::Colorize { .. } => 1,
            EngineError::Reference { .. } => 5,
            EngineError::Model(m) => model_exit_code(m),
            EngineError::OutputExists { .. }
            | EngineError::OutputIsInput { .. }
            | EngineError::NotTinctureFolder { .. }
            | EngineError::Output { .. }
            | EngineError::WriteFailed { .. } => 4,
            EngineError::FrameRange { .. } | EngineError::Setting { .. } => 2,
            EngineError::Project { .. }
            | EngineError::Farm { .. }
            | EngineError::Analysis { .. } => 3,
            EngineError::ReferenceClip(_) => 5,
            // Reference transfer is not the model: an unexpected failure.
            EngineError::Evaluate { by, .. } => match by {
                Colourer::Transfer { .. } => 1,
                Colourer::Film | Colourer::Model => 6,
            },
            EngineError::Draw { .. } => 1,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<tincture_infer::Error> for Failure {
    fn from(e: tincture_infer::Error) -> Self {
        Self {
            code: model_exit_code(&e),
            message: e.to_string(),
        }
    }
}

/// The exit code of an error from the model layer: 3 for a hints file (it
/// is input), 6 for everything about the model and its runtime.
fn model_exit_code(e: &tincture_infer::Error) -> u8 {
    match e {
        tincture_infer::Error::Hints { .. } => 3,
        _ => 6,
    }
}

/// Reads `--frames` (`A-B`, `A-` or `N`) against a film of `count` frames.
///
/// # Errors
/// The reason, for text that is not a range or a range outside the film
/// (checked here, so no later arithmetic sees a number beyond it).
pub(crate) fn parse_frames(text: &str, count: u64) -> Result<(u64, u64), String> {
    let film = match count.checked_sub(1) {
        Some(last) => format!("the film has frames 0-{last}"),
        None => "the film has no frames".to_owned(),
    };
    let number = |t: &str| -> Result<u64, String> {
        t.trim().parse().map_err(|_| {
            format!(
                "`{}` is not a frame number; expected A-B, A- or N ({film})",
                t.trim()
            )
        })
    };
    let last_frame = count.checked_sub(1).ok_or_else(|| film.clone())?;
    let (a, b) = match text.split_once('-') {
        Some((a, "")) => (number(a)?, last_frame),
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if a > b {
        return Err(format!("the range {a}-{b} runs backwards ({film})"));
    }
    if b > last_frame {
        return Err(format!("frame {b} lies past the end ({film})"));
    }
    Ok((a, b))
}

fn probe_cmd(file: PathBuf, json: bool) -> Result<(), Failure> {
    let info = tincture_media::probe(&file).map_err(|e| Failure::from(EngineError::Media(e)))?;
    if json {
        let text = serde_json::to_string_pretty(&info).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        println!("{text}");
        return Ok(());
    }
    let v = &info.video;
    println!("{}", info.path.display());
    println!(
        "  container     {}  duration {}",
        info.container,
        info.duration
            .map_or("unknown".into(), |d| format!("{d:.3} s"))
    );
    println!(
        "  video         #{} {} {}x{} SAR {} DAR {}",
        v.index, v.codec, v.width, v.height, v.sample_aspect_ratio, v.display_aspect_ratio
    );
    println!(
        "  frames        {} counted{}  {:.3} fps ({}){}  time base {}",
        v.frame_count,
        v.container_frame_count
            .map_or(String::new(), |n| format!(" ({n} stated by the container)")),
        v.frame_rate,
        v.frame_rate_exact,
        if v.variable_frame_rate {
            " variable"
        } else {
            ""
        },
        v.time_base
    );
    println!(
        "  pixels        {} ({}-bit{})",
        v.pixel_format,
        v.bit_depth,
        v.chroma
            .as_ref()
            .map_or(", gray".into(), |c| format!(", {c}"))
    );
    println!(
        "  colour        range {} primaries {} transfer {} matrix {}",
        v.colour.range, v.colour.primaries, v.colour.transfer, v.colour.matrix
    );
    println!(
        "  field order   {}  keyframes {}",
        v.field_order, v.keyframes
    );
    println!(
        "  timecode      {}",
        v.timecode.as_deref().unwrap_or("none")
    );
    for s in &info.streams {
        let extra = match (s.sample_rate, s.channels) {
            (Some(r), Some(c)) => format!(" {r} Hz {c} ch"),
            _ => String::new(),
        };
        let lang = s
            .language
            .as_deref()
            .map_or(String::new(), |l| format!(" [{l}]"));
        println!(
            "  stream #{:<5} {:?} {}{extra}{lang}",
            s.index, s.kind, s.codec
        );
    }
    Ok(())
}

/// The film colorizer for `render --project`: the project is loaded, then
/// built as the GUI's export builds it (film matched, references read, the
/// model started when a shot uses its prior); with the files the project
/// makes the render read.
fn project_colorizer(
    project_path: &std::path::Path,
    input: &std::path::Path,
    accept_changed: bool,
    model: &ModelArgs,
) -> Result<(FilmColorizer, Vec<PathBuf>), Failure> {
    let project = tincture_core::project::Project::load(project_path).map_err(|e| Failure {
        code: 3,
        message: e.to_string(),
    })?;
    let inputs = tincture_engine::project::project_inputs(&project, project_path);
    let colorizer = film_colorizer(
        &project,
        project_path,
        Some(input),
        accept_changed,
        || -> Result<Box<dyn Colorizer>, Failure> { Ok(Box::new(start_worker(model)?)) },
    )?;
    let plan = colorizer.plan();
    eprintln!(
        "project {}: {} shots, {} keyframes, {} reference photos",
        project_path.display(),
        plan.shots.len(),
        plan.keys.len(),
        plan.references.len()
    );
    Ok((colorizer, inputs))
}

fn render_cmd(args: RenderArgs) -> Result<u8, Failure> {
    let RenderArgs {
        input,
        output,
        reference,
        frames,
        format,
        passthrough,
        crf,
        overwrite,
        threads,
        no_metrics,
        project,
        accept_changed,
        chunk_state,
        model,
    } = args;
    let format = match format {
        Some(name) => OutputFormat::from_name(&name, crf),
        None => OutputFormat::from_path(&output, crf),
    }
    .ok_or_else(|| Failure {
        code: 2,
        message: format!(
            "{}: cannot tell the format from the name; pass --format",
            output.display()
        ),
    })?;
    // The output is checked before anything starts (the render checks it
    // again, with the project's own files too).
    let mut also_reads: Vec<PathBuf> = reference.iter().chain(&project).cloned().collect();
    let inputs: Vec<&std::path::Path> = std::iter::once(input.as_path())
        .chain(also_reads.iter().map(PathBuf::as_path))
        .collect();
    let kind = match format {
        OutputFormat::Video(_) => tincture_engine::output::Kind::File,
        OutputFormat::Images(_) => tincture_engine::output::Kind::Sequence,
    };
    tincture_engine::output::check(&output, &inputs, overwrite, kind)?;
    // Probe first: the frame range and the matrix depend on the source.
    let source = tincture_media::VideoReader::open(&input)
        .map_err(|e| Failure::from(EngineError::Media(e)))?;
    let (count, matrix) = (source.frame_count(), source.matrix());
    drop(source);
    let frames = match frames {
        Some(text) => Some(parse_frames(&text, count).map_err(|reason| Failure {
            code: 2,
            message: format!("--frames {text}: {reason}"),
        })?),
        None => None,
    };
    // The model loads here, before the render creates any file, so a
    // missing or broken model fails fast and leaves nothing behind.
    let neural = reference.is_none() && !passthrough && project.is_none();
    let colorizer: Option<Box<dyn Colorizer>> = match (&reference, &project) {
        (Some(path), _) => Some(Box::new(tincture_engine::reference::reference_colorizer(
            path, matrix,
        )?)),
        (None, Some(p)) => {
            let (mut colorizer, inputs) = project_colorizer(p, &input, accept_changed, &model)?;
            if let Some(dir) = &chunk_state {
                let reads: Vec<&std::path::Path> = std::iter::once(input.as_path())
                    .chain(also_reads.iter().map(PathBuf::as_path))
                    .chain(inputs.iter().map(PathBuf::as_path))
                    .collect();
                // Only files of its own are written there, never an input.
                tincture_engine::output::check_not_input(dir, &reads)?;
                let last = frames.map_or(count.saturating_sub(1), |(_, b)| b);
                colorizer.set_chunk_state(dir.clone(), last);
            }
            also_reads.extend(inputs);
            Some(Box::new(colorizer))
        }
        (None, None) if passthrough => None,
        (None, None) => Some(Box::new(start_worker(&model)?)),
    };
    // The first Ctrl-C stops the render cleanly within a frame (or a step
    // of a backward pass) and keeps a valid partial file to resume.
    let cancel = stop_on_ctrl_c("stopping after this step (Ctrl-C again to stop at once)");
    let mut colorizer = colorizer;
    if let Some(c) = colorizer.as_mut() {
        let flag = cancel.clone();
        c.set_stop(Box::new(move || flag.load(Ordering::Relaxed)));
    }
    let total = frames.map_or(count, |(a, b)| b.saturating_sub(a) + 1);
    let bar = metrics::progress(total);
    let request = RenderRequest {
        input,
        output,
        format,
        frames,
        colorizer,
        overwrite,
        threads,
        metrics: (!no_metrics).then(tincture_engine::live_metrics::LiveMetrics::default),
        also_reads,
    };
    let last = frames.map_or(count.saturating_sub(1), |(_, b)| b);
    let on_event = |event: RenderEvent| match event {
        RenderEvent::Started(Start::Resumed { from, kept }) => {
            bar.suspend(|| {
                eprintln!("resuming from frame {from} ({kept} frames kept from the partial file)")
            });
            bar.set_length(last.saturating_sub(from) + 1);
        }
        RenderEvent::Started(Start::StartedOver { reason }) => {
            bar.suspend(|| eprintln!("starting over: {reason}"));
        }
        RenderEvent::Started(Start::Fresh) => {}
        RenderEvent::Progress(p) => bar.set_position(p.done),
    };
    let outcome = render_with(request, &cancel, on_event).map_err(|e| match e {
        // Only the model can fail a frame of a neural render; the message names the frame.
        EngineError::Colorize { .. } if neural => Failure {
            code: 6,
            message: e.to_string(),
        },
        e => Failure::from(e),
    })?;
    bar.finish_and_clear();
    match outcome {
        Outcome::Completed { path, frames } => {
            eprintln!("wrote {frames} frames to {}", path.display());
            Ok(0)
        }
        Outcome::Cancelled {
            partial,
            frames,
            resume_from,
        } => {
            eprintln!(
                "stopped after {frames} frames; the partial render is kept, valid, at {}; run the same command again to resume from frame {resume_from} (or render the rest apart with --frames {resume_from}-)",
                partial.display()
            );
            Ok(130)
        }
    }
}

/// Starts the inference worker for a render and says which model runs where.
fn start_worker(args: &ModelArgs) -> Result<WorkerColorizer, Failure> {
    let worker = WorkerColorizer::start(&args.choice()).map_err(|e| {
        let mut f = Failure::from(e);
        if args.model.is_none() && f.code == 6 {
            f.message.push_str(
                "; or colour from a photograph with --reference IMAGE, or transcode with --passthrough",
            );
        }
        f
    })?;
    eprintln!(
        "colouring with model `{}` on {}",
        worker.name(),
        worker.provider()
    );
    Ok(worker)
}

fn runtime_cmd() -> Result<(), Failure> {
    let info = tincture_infer::load_runtime().map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    let found = match info.source {
        tincture_infer::RuntimeSource::Project => "Tincture's own folder",
        tincture_infer::RuntimeSource::Environment => "ORT_DYLIB_PATH",
        tincture_infer::RuntimeSource::System => "a system library folder",
    };
    println!(
        "ONNX Runtime {} loaded from {} ({found})",
        info.version,
        info.path.display(),
    );
    Ok(())
}

/// A flag the first Ctrl-C sets, saying `message` (what stops, and how);
/// a second Ctrl-C exits at once with code 130.
pub(crate) fn stop_on_ctrl_c(message: &'static str) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            eprintln!("tincture-cli: stopped at once by a second Ctrl-C");
            std::process::exit(130);
        }
        eprintln!("tincture-cli: {message}");
    }) {
        tracing::warn!("Ctrl-C will not stop cleanly: {e}");
    }
    cancel
}

fn main() -> ExitCode {
    tincture_engine::keep_heap_bounded();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe { file, json } => probe_cmd(file, json).map(|()| 0),
        Command::Render(args) => render_cmd(args),
        Command::ColorizeImage(args) => still::colorize_image_cmd(&args).map(|()| 0),
        Command::EvalImages(args) => eval::eval_images_cmd(&args),
        Command::Metrics(args) => metrics::metrics_cmd(&args),
        Command::Eval(args) => metrics::eval_cmd(&args),
        Command::Shots(args) => shots::shots_cmd(&args),
        Command::Project(command) => project::project_cmd(&command),
        Command::Verify(args) => farm::verify_cmd(&args),
        Command::Join(args) => farm::join_cmd(&args),
        Command::Farm(command) => farm::farm_cmd(command),
        Command::Runtime => runtime_cmd().map(|()| 0),
        Command::Batch(args) => batch::batch_cmd(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_frames;

    #[test]
    fn frame_ranges() {
        assert_eq!(parse_frames("10-19", 100), Ok((10, 19)));
        assert_eq!(parse_frames("40-", 100), Ok((40, 99)));
        assert_eq!(parse_frames("7", 100), Ok((7, 7)));
        assert!(
            parse_frames("a-b", 100)
                .expect_err("not numbers")
                .contains("`a` is not a frame number")
        );
        assert!(
            parse_frames("1-2", 0)
                .expect_err("no frames")
                .contains("no frames")
        );
        // Numbers from scripts: no overflow past the film's end.
        let huge = parse_frames("0-18446744073709551615", 100).expect_err("past the end");
        assert!(
            huge.contains("past the end (the film has frames 0-99)"),
            "{huge}"
        );
        assert!(parse_frames("99999999999999999999", 100).is_err());
        assert!(
            parse_frames("5-3", 100)
                .expect_err("backwards")
                .contains("backwards")
        );
    }
}
