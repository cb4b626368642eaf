//! Long shots: peak memory and cancel latency of a render whose shot has
//! its only keyframe at its last frame, so the first frame waits on a
//! backward pass over the whole shot.
//!
//! For each picture size and shot length, a child process renders the
//! first 5 frames of a generated film (H.264, a keyframe every 48 frames)
//! through the real render pipeline (decode thread, film colorizer, FFV1
//! encoder) and the parent reads the child's peak resident memory from
//! `wait4`. The baseline is the same render with the backward pass's
//! budget lifted (every frame's carried colour kept, as before the
//! budget), run where it fits this machine; beside it, the memory that
//! keeping every frame would take, 12 bytes a pixel a frame.
//!
//! Then, in this process, the cancel latency: a stop asked 3 s into the
//! backward pass of the longest 720p and 1080p shot, and the time until
//! `colorize` returns; beside it, the time one backward step takes (the
//! granularity of the stop).
//!
//! `cargo bench -p tincture-engine --bench long_shot -- [--sizes 720p,1080p]
//! [--lengths 100,600,2400] [--baseline-max-gb 12]`

#[path = "common/films.rs"]
mod films;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_engine::film::{FilmColorizer, FilmPlan, KeyColour, StrokeHint};
use tincture_engine::render::{OutputFormat, RenderRequest, render};
use tincture_media::{VideoCodec, VideoReader};

const FIRST_FRAMES: u64 = 5;

fn size_of_name(name: &str) -> (usize, usize) {
    match name {
        "720p" => (1280, 720),
        "1080p" => (1920, 1080),
        "2k" => (2048, 1556),
        other => panic!("unknown size {other}: use 720p, 1080p or 2k"),
    }
}

/// The generated film of `frames` frames at `w` x `h`, made once and kept
/// in the target folder.
fn film(w: usize, h: usize, frames: u64) -> PathBuf {
    films::testsrc_film("long", w, h, frames)
}

/// The colorizer of a one-shot film painted on its last frame only.
fn colorizer(path: &Path, frames: u64, w: usize, h: usize) -> FilmColorizer {
    let mut plan = FilmPlan::whole_film(path.to_owned(), frames);
    plan.keys.insert(
        frames - 1,
        KeyColour::Steered {
            strokes: vec![StrokeHint {
                points: vec![
                    [w as f32 * 0.2, h as f32 * 0.2],
                    [w as f32 * 0.2, h as f32 * 0.8],
                ],
                rgb: [210, 40, 40],
                size: 24.0,
            }],
            reference: None,
        },
    );
    FilmColorizer::new(plan, None)
}

/// The child: renders the first frames of the film and exits.
fn child(w: usize, h: usize, frames: u64, budget: Option<usize>) {
    let path = film(w, h, frames);
    let mut c = colorizer(&path, frames, w, h);
    if let Some(b) = budget {
        c.set_memory_budget(b);
    }
    let out = std::env::temp_dir().join(format!("tincture-long-shot-{}.mkv", std::process::id()));
    let started = Instant::now();
    let req = RenderRequest {
        input: path,
        output: out.clone(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: Some((0, FIRST_FRAMES - 1)),
        colorizer: Some(Box::new(c)),
        overwrite: true,
        threads: 0,
        metrics: None,
        also_reads: Vec::new(),
    };
    render(req, &AtomicBool::new(false), |_| {}).expect("the render");
    let _ = std::fs::remove_file(&out);
    println!("SECONDS {:.1}", started.elapsed().as_secs_f64());
    println!("POOL {}", tincture_core::solver::spare_bytes());
}

/// Runs the child for one case: its peak RSS in bytes, its seconds and the
/// bytes the solvers' pool of spare arrays held at its end.
// The child is reaped with `wait4`, which also gives its peak memory.
#[allow(clippy::zombie_processes)]
fn measure(size: &str, frames: u64, budget: Option<usize>) -> (u64, f64, u64) {
    let exe = std::env::current_exe().expect("the bench binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--child", size, &frames.to_string()]);
    if let Some(b) = budget {
        cmd.arg(b.to_string());
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the child starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut stdout = child.stdout.expect("stdout");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).expect("the child's output");
    // SAFETY: waits for our own child, with valid pointers to locals.
    let r = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert!(
        r == pid && status == 0,
        "the child failed ({status}): {text}"
    );
    let seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("SECONDS "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let pool = text
        .lines()
        .find_map(|l| l.strip_prefix("POOL "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    // ru_maxrss is in kilobytes on Linux.
    (usage.ru_maxrss as u64 * 1024, seconds, pool)
}

fn gb(bytes: f64) -> f64 {
    bytes / 1e9
}

/// The stop's latency inside a backward pass, and one step's time.
fn cancel_latency(size: &str, frames: u64) -> (Duration, Duration) {
    let (w, h) = size_of_name(size);
    let path = film(w, h, frames);
    let mut reader = VideoReader::open(&path).expect("the film");
    let first = reader.seek(0).expect("frame 0").frame.luma_unit();
    let mut c = colorizer(&path, frames, w, h);
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    c.set_stop(Box::new(move || f.load(Ordering::Relaxed)));
    let asked = Arc::new(std::sync::Mutex::new(None));
    let (f, a) = (flag.clone(), asked.clone());
    let stopper = std::thread::Builder::new()
        .name("stopper".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            *a.lock().expect("lock") = Some(Instant::now());
            f.store(true, Ordering::Relaxed);
        })
        .expect("the stopper starts");
    let started = Instant::now();
    let result = c.colorize(&first, 0, Matrix::Bt709);
    let ended = Instant::now();
    stopper.join().expect("stopper");
    assert!(
        matches!(result, Err(tincture_core::Error::Cancelled)),
        "the pass was stopped"
    );
    let asked = asked.lock().expect("lock").expect("asked");
    let steps = c.backward_steps().max(1);
    let per_step = asked.duration_since(started) / steps as u32;
    (ended.duration_since(asked), per_step)
}

fn list<T: std::str::FromStr>(args: &[String], flag: &str, default: &str) -> Vec<T> {
    let text = args
        .iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str);
    text.split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn main() {
    // As the binaries do.
    tincture_engine::keep_heap_bounded();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (w, h) = size_of_name(&args[i + 1]);
        let frames = args[i + 2].parse().expect("frames");
        let budget = args.get(i + 3).and_then(|b| b.parse().ok());
        child(w, h, frames, budget);
        return;
    }
    // `cargo test --all-targets` runs bench binaries too: this one takes
    // an hour, so it runs only under `cargo bench`.
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "long-shot bench: skipped outside `cargo bench` (run `cargo bench -p tincture-engine \
             --bench long_shot`)"
        );
        return;
    }
    let sizes: Vec<String> = list(&args, "--sizes", "720p,1080p");
    let lengths: Vec<u64> = list(&args, "--lengths", "100,600,2400");
    let baseline_max: f64 = list(&args, "--baseline-max-gb", "12")
        .first()
        .copied()
        .unwrap_or(12.0);
    let budget = tincture_engine::film::propagation_budget();
    println!(
        "long-shot bench: render of the first {FIRST_FRAMES} frames, the only keyframe the shot's \
         last frame; propagation budget {:.2} GB; peak RSS of the whole render process",
        gb(budget as f64)
    );
    println!(
        "{:>6} {:>7} | {:>13} {:>9} {:>9} | {:>15} {:>9} | {:>16} | {:>6}",
        "size",
        "frames",
        "budgeted RSS",
        "seconds",
        "pool",
        "unbounded RSS",
        "seconds",
        "keep-all needs",
        "ratio"
    );
    let mut worst = 0u64;
    for size in &sizes {
        let (w, h) = size_of_name(size);
        for &frames in &lengths {
            let _ = film(w, h, frames);
            let (rss, secs, pool) = measure(size, frames, None);
            worst = worst.max(rss);
            let keep_all = tincture_core::propagate::carried_bytes(w * h) as f64 * frames as f64;
            let (base, base_text, base_secs) = if gb(keep_all) <= baseline_max {
                let (b, s, _) = measure(size, frames, Some(usize::MAX));
                (
                    Some(b),
                    format!("{:.2} GB", gb(b as f64)),
                    format!("{s:.1}"),
                )
            } else {
                (None, "not run".to_owned(), "-".to_owned())
            };
            let ratio = base.map_or_else(
                || format!("{:.2}", keep_all / rss as f64),
                |b| format!("{:.2}", b as f64 / rss as f64),
            );
            println!(
                "{size:>6} {frames:>7} | {:>10.2} GB {secs:>9.1} {:>6} MB | {base_text:>15} \
                 {base_secs:>9} | {:>13.2} GB | {ratio:>6}",
                gb(rss as f64),
                pool >> 20,
                gb(keep_all)
            );
        }
    }
    println!(
        "target: peak RSS at most 1.5 GB whatever the length: {} (worst {:.2} GB)",
        if worst <= 1_500_000_000 {
            "MET"
        } else {
            "NOT MET"
        },
        gb(worst as f64)
    );
    let longest = lengths.iter().copied().max().unwrap_or(600);
    for size in &sizes {
        let (latency, step) = cancel_latency(size, longest);
        println!(
            "cancel inside the backward pass, {size}, {longest} frames: stopped {:.0} ms after \
             it was asked (one backward step: {:.0} ms); target 1 s: {}",
            latency.as_secs_f64() * 1e3,
            step.as_secs_f64() * 1e3,
            if latency <= Duration::from_secs(1) {
                "MET"
            } else {
                "NOT MET"
            }
        );
    }
}
