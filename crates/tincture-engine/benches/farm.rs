//! A render split into farm chunks against one whole render.
//!
//! `cargo bench -p tincture-engine --bench farm [-- --chunks 4 --frames 144]`
//! makes a 1280x720 film of three shots (40%, 30% and 30% of the frames,
//! three different scenes) and a plan with a painted keyframe at the start
//! of each shot and one at the end of the middle shot (so colour is carried
//! both ways). It renders the plan once whole, then as the chunks
//! `farm plan --chunks N` makes of it (chunk boundaries on shot
//! boundaries; a shot longer than a chunk cut into pieces that run in order
//! through a shared chunk-state folder), one after another in this process.
//! It prints the CPU time (user + system, all threads) and wall time of
//! each, their ratio (target: chunks at most 1.1x the whole), and checks
//! that the chunks' frames equal the whole render's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tincture_engine::farm::plan::chunk_film;
use tincture_engine::film::{FilmColorizer, FilmPlan, KeyColour, ShotPlan, StrokeHint};
use tincture_engine::render::{OutputFormat, RenderRequest, render};
use tincture_media::{VideoCodec, VideoReader};

const W: usize = 1280;
const H: usize = 720;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("the ffmpeg tool (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// The three shots' lengths for a film of `frames` frames.
fn shot_lengths(frames: u64) -> [u64; 3] {
    let a = frames * 4 / 10;
    let b = frames * 3 / 10;
    [a, b, frames - a - b]
}

/// A gray 1280x720 FFV1 film of three shots (three lavfi scenes, cut hard).
fn film(dir: &Path, frames: u64) -> PathBuf {
    let path = dir.join(format!("three-shots-{frames}.mkv"));
    let [a, b, c] = shot_lengths(frames);
    let size = format!("{W}x{H}");
    let sources = [
        format!("testsrc2=size={size}:rate=24,trim=end_frame={a}"),
        format!("mandelbrot=size={size}:rate=24,trim=end_frame={b}"),
        format!("life=size={size}:rate=24:mold=10:ratio=0.5,trim=end_frame={c}"),
    ];
    let graph = format!(
        "{};{};{};[a][b][c]concat=n=3:v=1:a=0,format=gray[v]",
        format_args!("{}[a]", sources[0]),
        format_args!("{}[b]", sources[1]),
        format_args!("{}[c]", sources[2]),
    );
    ffmpeg(&[
        "-filter_complex",
        &graph,
        "-map",
        "[v]",
        "-c:v",
        "ffv1",
        path.to_str().expect("utf8"),
    ]);
    path
}

fn stroke(x: f32, rgb: [u8; 3]) -> KeyColour {
    KeyColour::Steered {
        strokes: vec![StrokeHint {
            points: vec![[x, H as f32 * 0.2], [x, H as f32 * 0.8]],
            rgb,
            size: 32.0,
        }],
        reference: None,
    }
}

/// The plan: three shots, a keyframe at each one's start and one at the
/// middle shot's end; the model off (its cost does not change with chunks).
fn plan(path: &Path, frames: u64) -> FilmPlan {
    let mut plan = FilmPlan::whole_film(path.to_owned(), frames);
    let template = plan.shots[0].clone();
    let [a, b, _] = shot_lengths(frames);
    let bounds = [(0, a - 1), (a, a + b - 1), (a + b, frames - 1)];
    plan.shots = bounds
        .iter()
        .map(|&(start, end)| ShotPlan {
            start,
            end,
            model_prior: false,
            ..template.clone()
        })
        .collect();
    plan.keys.insert(0, stroke(200.0, [200, 60, 50]));
    plan.keys.insert(a, stroke(600.0, [50, 90, 200]));
    plan.keys.insert(a + b - 1, stroke(900.0, [60, 170, 70]));
    plan.keys.insert(a + b, stroke(300.0, [210, 180, 40]));
    plan
}

/// CPU time of this process so far (user + system, all threads), seconds.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Renders frames `range` (the whole film for `None`) with chunk state in
/// `state`; (CPU s, wall s).
fn render_range(
    source: &Path,
    frames: u64,
    out: &Path,
    range: Option<(u64, u64)>,
    state: Option<&Path>,
) -> (f64, f64) {
    let mut colorizer = FilmColorizer::new(plan(source, frames), None);
    if let (Some(dir), Some((_, last))) = (state, range) {
        colorizer.set_chunk_state(dir.to_owned(), last);
    }
    let req = RenderRequest {
        input: source.to_owned(),
        output: out.to_owned(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: range,
        colorizer: Some(Box::new(colorizer)),
        overwrite: true,
        threads: 0,
        metrics: None,
        also_reads: Vec::new(),
    };
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    render(req, &AtomicBool::new(false), |_| {}).expect("render");
    (cpu_seconds() - cpu, wall.elapsed().as_secs_f64())
}

fn chroma_of(path: &Path) -> Vec<Vec<u16>> {
    let mut reader = VideoReader::open(path).expect("open");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        let c = f.frame.chroma.expect("colour");
        out.push([c.cb.data, c.cr.data].concat());
    }
    out
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("farm: skipped outside `cargo bench` (it takes minutes)");
        return;
    }
    let chunks = arg(&args, "--chunks", 4).max(1);
    let frames = arg(&args, "--frames", 144).max(12);
    let dir = tempfile::tempdir().expect("tmp");
    let source = film(dir.path(), frames);
    let [a, b, _] = shot_lengths(frames);
    let shots = [(0, a - 1), (a, a + b - 1), (a + b, frames - 1)];
    let planned = chunk_film(frames, &shots, frames.div_ceil(chunks));
    println!(
        "farm bench: {W}x{H}, {frames} frames in 3 shots {shots:?}; {} chunks (--chunks {chunks}): {:?}",
        planned.len(),
        planned.iter().map(|c| c.frames).collect::<Vec<_>>()
    );

    let whole_out = dir.path().join("whole.mkv");
    let (whole_cpu, whole_wall) = render_range(&source, frames, &whole_out, None, None);
    let state = dir.path().join("state");
    let (mut chunk_cpu, mut chunk_wall) = (0.0, 0.0);
    let mut joined = Vec::new();
    // In plan order: a piece of a shot runs after the piece before it.
    for c in &planned {
        let out = dir.path().join(format!("chunk-{}.mkv", c.id));
        let (cpu, wall) = render_range(
            &source,
            frames,
            &out,
            Some((c.frames[0], c.frames[1])),
            Some(&state),
        );
        println!(
            "  chunk {} frames {}-{}: CPU {cpu:.1} s, wall {wall:.1} s",
            c.id, c.frames[0], c.frames[1]
        );
        chunk_cpu += cpu;
        chunk_wall += wall;
        joined.extend(chroma_of(&out));
    }
    let whole = chroma_of(&whole_out);
    assert_eq!(joined.len(), whole.len(), "frames");
    let same = joined.iter().zip(&whole).all(|(a, b)| a == b);
    println!("  whole render: CPU {whole_cpu:.1} s, wall {whole_wall:.1} s");
    println!(
        "  {} chunks one after another: CPU {chunk_cpu:.1} s, wall {chunk_wall:.1} s",
        planned.len()
    );
    println!(
        "  ratio chunks/whole: CPU {:.3}x (target <= 1.1x), wall {:.3}x; chunks' colour equals the whole's: {same}",
        chunk_cpu / whole_cpu,
        chunk_wall / whole_wall
    );
    assert!(same, "the chunks' colour differs from the whole render");
}
