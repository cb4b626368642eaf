//! The cost of the memory of coloured frames in a 1280x720 project render:
//! the same render with the memory and without it, side by side.
//!
//! A generated 1280x720 film of 48 frames (ffmpeg's `testsrc2`: moving
//! shapes and a scrolling pattern, H.264) is rendered through the real
//! pipeline (decode thread, film colorizer with the built-in model's prior,
//! FFV1 encoder), its first frame a keyframe painted with two strokes. Once
//! with the memory off (today's render) and once with it on (features from
//! the model's encoder, matching, the extra data term), alternating, three
//! rounds; the per-frame times' medians and their ratio are printed.
//!
//! Then the window's preview: frame 12 of the same film coloured as the
//! preview colours it after an edit (a fresh preview colorizer at half size,
//! 640x360, replaying from the keyframe at frame 0, the model's prior on the
//! frame shown), with the memory and without it, alternating, five rounds.
//!
//! `cargo bench -p tincture-engine --bench memory_render` (`-- --preview-only`: the preview alone)

#[path = "common/films.rs"]
mod films;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tincture_core::memory::MemoryParams;
use tincture_engine::film::{FilmColorizer, FilmPlan, KeyColour, StrokeHint};
use tincture_engine::neural::{ModelChoice, WorkerColorizer};
use tincture_engine::render::{OutputFormat, RenderRequest, render};
use tincture_media::VideoCodec;

const W: usize = 1280;
const H: usize = 720;
const FRAMES: u64 = 48;
const ROUNDS: usize = 3;
/// The target: the memory raises the per-frame cost by at most this.
const TARGET_RATIO: f64 = 1.5;

fn film() -> PathBuf {
    films::testsrc_film("memory", W, H, FRAMES)
}

/// Seconds per frame of one whole render.
fn render_once(path: &Path, memory: bool) -> f64 {
    let plan = plan(path, memory, 1.0);
    let prior = WorkerColorizer::start(&ModelChoice::default()).expect("the built-in model");
    let colorizer = FilmColorizer::new(plan, Some(Box::new(prior)));
    let out = std::env::temp_dir().join(format!(
        "tincture-memory-bench-{}-{memory}.mkv",
        std::process::id()
    ));
    let started = Instant::now();
    let req = RenderRequest {
        input: path.to_owned(),
        output: out.clone(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: None,
        colorizer: Some(Box::new(colorizer)),
        overwrite: true,
        threads: 0,
        metrics: None,
        also_reads: Vec::new(),
    };
    render(req, &AtomicBool::new(false), |_| {}).expect("the render");
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&out);
    secs / FRAMES as f64
}

/// Preview frame: `PREVIEW_FRAME` frames after the keyframe.
const PREVIEW_FRAME: u64 = 12;
const PREVIEW_ROUNDS: usize = 5;

/// The plan of both benches: keyframe 0 with two strokes, at `scale` of the film's size.
fn plan(path: &Path, memory: bool, scale: f32) -> FilmPlan {
    let mut plan = FilmPlan::whole_film(path.to_owned(), FRAMES);
    let stroke = |x: f32, rgb| StrokeHint {
        points: vec![
            [x * W as f32 * scale, 0.2 * H as f32 * scale],
            [x * W as f32 * scale, 0.8 * H as f32 * scale],
        ],
        rgb,
        size: 24.0 * scale,
    };
    plan.keys.insert(
        0,
        KeyColour::Steered {
            strokes: vec![stroke(0.25, [200, 60, 40]), stroke(0.75, [40, 90, 200])],
            reference: None,
        },
    );
    if memory {
        plan.params.memory = Some(MemoryParams::default());
    }
    plan
}

/// Seconds to colour the preview's frame [`PREVIEW_FRAME`] with a fresh
/// preview colorizer at half size, as the window does after an edit.
fn preview_once(path: &Path, memory: bool) -> f64 {
    let (w, h) = (W / 2, H / 2);
    let prior = WorkerColorizer::start(&ModelChoice::default()).expect("the built-in model");
    let mut reader = tincture_media::VideoReader::open(path).expect("the film");
    let luma = reader
        .seek(PREVIEW_FRAME)
        .expect("the frame")
        .frame
        .luma_unit();
    let small = tincture_core::frame::LumaImage {
        width: w,
        height: h,
        data: tincture_infer::model::resize_area(&luma.data, W, H, w, h),
    };
    let started = Instant::now();
    let mut colorizer = FilmColorizer::preview(plan(path, memory, 0.5), Some(Box::new(prior)));
    use tincture_core::colorize::Colorizer as _;
    colorizer
        .colorize(&small, PREVIEW_FRAME, tincture_core::color::Matrix::Bt709)
        .expect("the preview");
    started.elapsed().as_secs_f64()
}

/// Prints the render's medians (seconds per frame) and their ratio.
fn report_render(a: f64, b: f64) {
    let ratio = b / a;
    println!(
        "{W}x{H}, {FRAMES} frames, keyframe 0, built-in model's prior: median {:.0} ms/frame \
         without the memory, {:.0} ms/frame with it: ratio {ratio:.2} (target <= {TARGET_RATIO}: {})",
        a * 1e3,
        b * 1e3,
        if ratio <= TARGET_RATIO {
            "MET"
        } else {
            "NOT MET"
        }
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    tincture_engine::keep_heap_bounded();
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries too: this one takes
    // minutes, so it runs only under `cargo bench`.
    if !args.iter().any(|a| a == "--bench") {
        println!("memory render bench: skipped outside `cargo bench`");
        return;
    }
    let path = film();
    // `-- --preview-only` measures the window's preview alone.
    let rounds = if args.iter().any(|a| a == "--preview-only") {
        0
    } else {
        ROUNDS
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let a = render_once(&path, false);
        let b = render_once(&path, true);
        println!(
            "round {}: without the memory {:.0} ms/frame, with it {:.0} ms/frame",
            round + 1,
            a * 1e3,
            b * 1e3
        );
        without.push(a);
        with.push(b);
    }
    if rounds > 0 {
        report_render(median(without), median(with));
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..PREVIEW_ROUNDS {
        let a = preview_once(&path, false);
        let b = preview_once(&path, true);
        println!(
            "preview round {}: without the memory {:.0} ms, with it {:.0} ms",
            round + 1,
            a * 1e3,
            b * 1e3
        );
        without.push(a);
        with.push(b);
    }
    let (a, b) = (median(without), median(with));
    println!(
        "window preview of frame {PREVIEW_FRAME} after an edit (keyframe 0, {}x{}, replaying \
         {PREVIEW_FRAME} frames): median {:.0} ms without the memory, {:.0} ms with it: ratio {:.2}",
        W / 2,
        H / 2,
        a * 1e3,
        b * 1e3,
        b / a
    );
}
