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
//! Last, how far the preview's frame is from the same frame as an export
//! colours it at the preview's size (the preview's replay matches only the
//! frames it takes features of; an export matches every frame).
//!
//! `cargo bench -p tincture-engine --bench memory_render` (`-- --preview-only`: the preview alone)

#[path = "common/films.rs"]
mod films;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer as _;
use tincture_core::frame::{ChromaField, LumaImage};
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

/// Frame `index` of the film at half size, as the window's preview sees it.
fn half_size_luma(reader: &mut tincture_media::VideoReader, index: u64) -> LumaImage {
    let luma = reader.seek(index).expect("the frame").frame.luma_unit();
    LumaImage {
        width: W / 2,
        height: H / 2,
        data: tincture_infer::model::resize_area(&luma.data, W, H, W / 2, H / 2),
    }
}

/// Seconds to colour the preview's frame [`PREVIEW_FRAME`] with a fresh
/// preview colorizer at half size, as the window does after an edit, and
/// its colour.
fn preview_once(path: &Path, memory: bool) -> (f64, ChromaField) {
    let prior = WorkerColorizer::start(&ModelChoice::default()).expect("the built-in model");
    let mut reader = tincture_media::VideoReader::open(path).expect("the film");
    let small = half_size_luma(&mut reader, PREVIEW_FRAME);
    let started = Instant::now();
    let mut colorizer = FilmColorizer::preview(plan(path, memory, 0.5), Some(Box::new(prior)));
    let chroma = colorizer
        .colorize(&small, PREVIEW_FRAME, Matrix::Bt709)
        .expect("the preview");
    (started.elapsed().as_secs_f64(), chroma)
}

/// The preview's frame as an export at the preview's size colours it:
/// every frame from the keyframe on, in order, each matched against the
/// memory.
fn exported_at_preview_size(path: &Path, memory: bool) -> ChromaField {
    let prior = WorkerColorizer::start(&ModelChoice::default()).expect("the built-in model");
    let mut reader = tincture_media::VideoReader::open(path).expect("the film");
    let mut colorizer = FilmColorizer::new(plan(path, memory, 0.5), Some(Box::new(prior)));
    let mut last = None;
    for f in 0..=PREVIEW_FRAME {
        let luma = half_size_luma(&mut reader, f);
        last = Some(
            colorizer
                .colorize(&luma, f, Matrix::Bt709)
                .expect("the frame"),
        );
    }
    last.expect("frames")
}

/// Mean and largest |Cb difference| + |Cr difference| between `a` and `b`,
/// in 8-bit code values.
fn chroma_difference(a: &ChromaField, b: &ChromaField) -> (f64, f64) {
    let d: Vec<f64> =
        a.cb.iter()
            .zip(&a.cr)
            .zip(b.cb.iter().zip(&b.cr))
            .map(|((p, q), (r, s))| f64::from((p - r).abs() + (q - s).abs()) * 255.0)
            .collect();
    (
        d.iter().sum::<f64>() / d.len().max(1) as f64,
        d.iter().copied().fold(0.0, f64::max),
    )
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
    let mut shown = None;
    for round in 0..PREVIEW_ROUNDS {
        let (a, plain) = preview_once(&path, false);
        let (b, chroma) = preview_once(&path, true);
        shown = Some((plain, chroma));
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
    // The replay matches only the frames it takes features of; an export
    // matches every frame. How far apart that leaves the frame shown:
    if let Some((plain, shown)) = shown {
        for (memory, preview) in [(false, plain), (true, shown)] {
            let (mean, max) = chroma_difference(&preview, &exported_at_preview_size(&path, memory));
            println!(
                "the preview's frame {PREVIEW_FRAME} {} the memory against the same frame as an \
                 export colours it (at the preview's size): |dCb| + |dCr| {mean:.2} code values \
                 on average, {max:.1} at most",
                if memory { "with" } else { "without" }
            );
        }
    }
}
