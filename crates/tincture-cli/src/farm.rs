//! `verify`, `join` and `farm plan|render|join`: thin callers of
//! [`tincture_engine::farm`].

use std::path::{Path, PathBuf};

use tincture_engine::farm::join::{JoinRequest, join, manifest_path};
use tincture_engine::farm::plan::{ChunkSize, Engine, JobPlan, PlanRequest, write_bundle};
use tincture_engine::farm::verify::{VerifyRequest, verify};

use crate::{Failure, ModelArgs, RenderArgs, parse_frames, render_cmd};

/// Exit code of a `verify` that found a frame whose luma is not the source's.
pub const EXIT_MISMATCH: u8 = 7;

/// Arguments of `verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The output to check: a video file (FFV1) or a png/tiff sequence folder.
    output: PathBuf,
    /// The source film it was rendered from.
    #[arg(long)]
    source: PathBuf,
    /// The source frames the output holds, inclusive (default: the range the render recorded
    /// in the output, else the whole film).
    #[arg(long)]
    frames: Option<String>,
}

/// Arguments of `join`.
#[derive(clap::Args)]
pub struct JoinArgs {
    /// The chunks' outputs (video files or sequence folders), in any order.
    chunks: Vec<PathBuf>,
    /// A file listing the chunks, one path a line (relative paths from its folder).
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,
    /// The joined output.
    #[arg(short, long)]
    output: PathBuf,
    /// The source film the chunks were rendered from: its audio and subtitles are copied once.
    #[arg(long)]
    source: PathBuf,
    /// The source frames the joined output must cover (default: the whole film).
    #[arg(long)]
    frames: Option<String>,
    /// Replace the output and its manifest if they exist.
    #[arg(long)]
    overwrite: bool,
}

/// What `farm` does.
#[derive(clap::Subcommand)]
pub enum FarmCommand {
    /// Plan a render farm job: chunks on shot boundaries, and a job bundle for OpenJD or Slurm.
    Plan(PlanArgs),
    /// Render one chunk of a bundle (a job's render step); a chunk already rendered is skipped.
    Render(FarmRenderArgs),
    /// Join a bundle's chunks into its output (a job's join step).
    Join {
        /// The bundle folder.
        bundle: PathBuf,
    },
}

/// Arguments of `farm plan`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// The source film.
    film: PathBuf,
    /// The project to render.
    #[arg(long, value_name = "P.json")]
    project: PathBuf,
    /// The bundle folder to write (new or empty).
    #[arg(short, long)]
    output: PathBuf,
    /// The chunks' format.
    #[arg(long, default_value = "ffv1", value_parser = ["ffv1", "prores", "png", "tiff"])]
    format: String,
    /// About this many chunks.
    #[arg(long, conflicts_with = "chunk_frames")]
    chunks: Option<u64>,
    /// At most this many frames a chunk.
    #[arg(long)]
    chunk_frames: Option<u64>,
    /// The engine to write the job for.
    #[arg(long, value_parser = ["openjd", "slurm"])]
    engine: String,
}

/// Arguments of `farm render`.
#[derive(clap::Args)]
pub struct FarmRenderArgs {
    /// The bundle folder.
    bundle: PathBuf,
    /// The chunk's number.
    #[arg(long, conflicts_with_all = ["pass", "index"])]
    chunk: Option<usize>,
    /// With --index: the pass (Slurm: one job array a pass).
    #[arg(long, requires = "index")]
    pass: Option<usize>,
    /// With --pass: the chunk's place in its pass, from 0 (`$SLURM_ARRAY_TASK_ID`).
    #[arg(long, requires = "pass")]
    index: Option<usize>,
}

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

fn frames_of(text: Option<&str>, film: &Path) -> Result<Option<(u64, u64)>, Failure> {
    let Some(text) = text else { return Ok(None) };
    let count = tincture_media::VideoReader::open(film)
        .map_err(|e| Failure::from(tincture_engine::Error::Media(e)))?
        .frame_count();
    parse_frames(text, count)
        .map(Some)
        .map_err(|reason| usage(format!("--frames {text}: {reason}")))
}

/// `verify`: 0 when every frame's luma is the source's, [`EXIT_MISMATCH`] when not.
pub fn verify_cmd(args: &VerifyArgs) -> Result<u8, Failure> {
    let frames = frames_of(args.frames.as_deref(), &args.source)?;
    let req = VerifyRequest {
        output: args.output.clone(),
        source: args.source.clone(),
        frames,
    };
    let report = verify(&req, |_, _| {})?;
    if report.passed() {
        eprintln!("{}", report.message());
        Ok(0)
    } else {
        Err(Failure {
            code: EXIT_MISMATCH,
            message: report.message(),
        })
    }
}

/// `join`.
pub fn join_cmd(args: &JoinArgs) -> Result<u8, Failure> {
    let mut chunks = args.chunks.clone();
    if let Some(list) = &args.list {
        let text = std::fs::read_to_string(list).map_err(|e| Failure {
            code: 3,
            message: format!("{}: cannot be read: {e}", list.display()),
        })?;
        let base = list.parent().unwrap_or(Path::new("."));
        chunks.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| base.join(l)),
        );
    }
    if chunks.is_empty() {
        return Err(usage("join: give the chunks, or --list FILE".into()));
    }
    let frames = frames_of(args.frames.as_deref(), &args.source)?;
    run_join(JoinRequest {
        chunks,
        output: args.output.clone(),
        source: args.source.clone(),
        frames,
        overwrite: args.overwrite,
    })
}

fn run_join(req: JoinRequest) -> Result<u8, Failure> {
    let manifest = join(&req, |_, _| {})?;
    eprintln!(
        "joined {} chunks (frames {}-{}, {} copied streams) into {}; manifest {}",
        manifest.chunks.len(),
        manifest.frames[0],
        manifest.frames[1],
        manifest.copied_streams.len(),
        req.output.display(),
        manifest_path(&req.output).display()
    );
    Ok(0)
}

/// `farm ...`.
pub fn farm_cmd(command: FarmCommand) -> Result<u8, Failure> {
    match command {
        FarmCommand::Plan(args) => plan_cmd(&args),
        FarmCommand::Render(args) => farm_render_cmd(&args),
        FarmCommand::Join { bundle } => {
            let plan = JobPlan::load(&bundle)?;
            run_join(JoinRequest {
                chunks: (0..plan.chunks.len())
                    .map(|id| plan.chunk_output(&bundle, id))
                    .collect(),
                output: plan.joined_output(&bundle),
                source: plan.film.clone(),
                frames: None,
                overwrite: true,
            })
        }
    }
}

fn plan_cmd(args: &PlanArgs) -> Result<u8, Failure> {
    let project = tincture_core::project::Project::load(&args.project).map_err(|e| Failure {
        code: 3,
        message: e.to_string(),
    })?;
    let count = tincture_media::VideoReader::open(&args.film)
        .map_err(|e| Failure::from(tincture_engine::Error::Media(e)))?
        .frame_count();
    let shots: Vec<(u64, u64)> = project.shots.iter().map(|s| (s.start, s.end)).collect();
    let size = match (args.chunks, args.chunk_frames) {
        (_, Some(f)) if f > 0 => ChunkSize::Frames(f),
        (Some(n), None) if n > 0 => ChunkSize::Count(n),
        (None, None) => ChunkSize::Count(4),
        _ => {
            return Err(usage(
                "--chunks and --chunk-frames take a number above 0".into(),
            ));
        }
    };
    let engine = if args.engine == "slurm" {
        Engine::Slurm
    } else {
        Engine::Openjd
    };
    let cli = std::env::current_exe().map_err(|e| Failure {
        code: 1,
        message: format!("cannot tell where tincture-cli is: {e}"),
    })?;
    let req = PlanRequest {
        film: args.film.clone(),
        project: args.project.clone(),
        bundle: args.output.clone(),
        format: args.format.clone(),
        size,
        engine,
        cli,
    };
    let plan = write_bundle(&req, count, &shots)?;
    eprintln!(
        "planned {} chunks in {} passes over {} frames ({} shots) into {}",
        plan.chunks.len(),
        plan.passes(),
        count,
        shots.len().max(1),
        args.output.display()
    );
    for c in &plan.chunks {
        let after = c
            .after
            .map_or(String::new(), |a| format!(", after chunk {a}"));
        eprintln!(
            "  chunk {:>4}: frames {}-{} (pass {}{after})",
            c.id, c.frames[0], c.frames[1], c.pass
        );
    }
    Ok(0)
}

fn farm_render_cmd(args: &FarmRenderArgs) -> Result<u8, Failure> {
    let bundle = &args.bundle;
    let plan = JobPlan::load(bundle)?;
    let id = match (args.chunk, args.pass, args.index) {
        (Some(id), _, _) => id,
        (None, Some(pass), Some(index)) => plan
            .pass(pass)
            .get(index)
            .map(|c| c.id)
            .ok_or_else(|| usage(format!("pass {pass} has no chunk {index}")))?,
        _ => {
            return Err(usage(
                "farm render: give --chunk N, or --pass P --index I".into(),
            ));
        }
    };
    let chunk = plan
        .chunks
        .get(id)
        .ok_or_else(|| {
            usage(format!(
                "the bundle has chunks 0-{}",
                plan.chunks.len().saturating_sub(1)
            ))
        })?
        .clone();
    let now = tincture_engine::farm::sha256_file(&plan.project)?;
    if now != plan.project_sha256 {
        return Err(Failure {
            code: 3,
            message: format!(
                "{}: the project changed since the job was planned (its copy is {}); plan the job again",
                plan.project.display(),
                bundle.join("project.json").display()
            ),
        });
    }
    let output = plan.chunk_output(bundle, id);
    let [a, b] = chunk.frames;
    if output.exists() {
        // A chunk rendered before is whole (renders rename when complete);
        // a lossless one is also checked, frame by frame.
        let good = !plan.verifiable()
            || verify(
                &VerifyRequest {
                    output: output.clone(),
                    source: plan.film.clone(),
                    frames: Some((a, b)),
                },
                |_, _| {},
            )
            .is_ok_and(|r| r.passed());
        if good {
            eprintln!(
                "chunk {id} (frames {a}-{b}) is already rendered: {}",
                output.display()
            );
            return Ok(0);
        }
        eprintln!(
            "chunk {id}: {} does not verify; rendering it again",
            output.display()
        );
    }
    render_cmd(RenderArgs {
        input: plan.film.clone(),
        output,
        reference: None,
        frames: Some(format!("{a}-{b}")),
        format: Some(plan.format.clone()),
        passthrough: false,
        crf: 18,
        overwrite: true,
        threads: 0,
        project: Some(plan.project.clone()),
        accept_changed: false,
        chunk_state: Some(plan.chunk_state(bundle, id)),
        no_metrics: true,
        model: ModelArgs::default(),
    })
}
