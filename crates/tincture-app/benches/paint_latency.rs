//! How long a painted hint takes to show: from the end of a stroke to the
//! coloured frame on screen with the stroke in it.
//!
//! `cargo bench -p tincture-app --bench paint_latency` drives the real
//! [`TinctureApp`] headless through egui_kittest (wgpu) on a 1280x720 gray
//! film it makes with the `ffmpeg` tool. It paints strokes with the brush
//! through pointer events, as a user would, and times from the pointer's
//! release to the first step where the "after" side shows the frame
//! coloured with the project revision that holds the stroke (stepping at
//! most 60 times a second meanwhile, as a window with vsync): the colour
//! worker rebuilds the project's colorizer, colours the frame (the solver
//! at the preview's size, half size for this film, starting from the
//! keyframe's colour before the stroke; the model's prior at its preview
//! resolution when the model is on), brings the colour to full size along
//! the luma's edges, and the texture is handed to the GPU. Target: 200 ms.
//!
//! Beside it, the baseline: the same frame coloured by the engine alone at
//! full size, as an export does it (`plan_of` + `FilmColorizer::preview` +
//! `colorize`), no window and no worker. The preview solves the colour of
//! films wider than 960 px at half size, so the ratio is the window's whole
//! path against the full-size solve.
//!
//! Then a burst: strokes painted one per frame with no pause, as a fast
//! drag would make them, to check that no backlog builds up: only the
//! newest project is coloured, and the last stroke shows about as fast as
//! a single one.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ffmpeg, median, millis, ms, p99, verdict, wait_for};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tincture_app::colour::SharedModel;
use tincture_app::document::StateDir;
use tincture_app::worker::RgbFrame;
use tincture_app::{AppOptions, TinctureApp};
use tincture_core::colorize::Colorizer as _;
use tincture_engine::film::FilmColorizer;
use tincture_engine::neural::ModelChoice;
use tincture_engine::project::plan_of;

/// Strokes timed in each configuration.
const STROKES: usize = 12;
/// Strokes in the burst.
const BURST: usize = 10;
/// The frame painted on.
const FRAME: u64 = 10;
/// The target, stroke end to updated preview.
const TARGET_MS: f64 = 200.0;
/// One refresh of a 60 Hz display: the shortest time between two steps
/// while waiting for the colour.
const REFRESH: Duration = Duration::from_micros(16_667);

fn main() {
    if !common::benchmarking("paint_latency") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let film = dir.path().join("gray_720p.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=24,hue=s=0",
        "-frames:v",
        "48",
        "-pix_fmt",
        "gray",
        "-c:v",
        "ffv1",
        film.to_str().expect("a UTF-8 path"),
    ]);
    println!("Tincture paint latency (headless egui_kittest on wgpu, the real TinctureApp)");
    println!(
        "film: 1280x720 gray FFV1, 48 frames; strokes on frame {FRAME}; {} CPU threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "  {:<34} {:>3} {:>9} {:>9}  {:>9}   {:<26} {:>6}",
        "stroke end -> preview on screen",
        "n",
        "median",
        "p99",
        "target",
        "engine alone, full size",
        "ratio"
    );
    for model in [false, true] {
        let (mut harness, state) = open(&film, &dir.path().join(format!("state-{model}")), model);
        let latencies: Vec<f64> = (0..STROKES)
            .map(|i| stroke_latency(&mut harness, i))
            .collect();
        let project = harness
            .state()
            .document()
            .expect("a project")
            .project()
            .clone();
        let floor = engine_floor(&project, &film, model);
        let (m, p, f) = (median(&latencies), p99(&latencies), median(&floor));
        let label = if model {
            "model's colour on"
        } else {
            "hints only (the solver)"
        };
        println!(
            "  {:<34} {:>3} {:>9} {:>9}  {:>6} ms {}   {:<26} {:>5.2}x",
            label,
            latencies.len(),
            ms(m),
            ms(p),
            TARGET_MS,
            verdict(p, TARGET_MS),
            format!("median {}", ms(f)),
            m / f
        );
        // The first stroke on the frame solves its keyframe from nothing;
        // later ones start from the colour before them.
        let each: Vec<String> = latencies.iter().map(|l| format!("{l:.0}")).collect();
        println!("    each stroke in order, ms: {}", each.join(", "));
        let (burst, coloured) = burst_latency(&mut harness);
        println!(
            "    burst of {BURST} strokes, one per frame: last one shown {} after its release; \
             {coloured} of {BURST} revisions were coloured (the rest dropped as stale)",
            ms(burst)
        );
        drop(harness);
        drop(state);
    }
}

/// The window on `film` with the model's colour on or off, its project
/// open, the background pass done and the brush chosen, at frame `FRAME`.
fn open(film: &Path, state: &Path, model: bool) -> (Harness<'static, TinctureApp>, PathBuf) {
    let options = AppOptions {
        file: Some(film.to_owned()),
        state: StateDir::at(state.to_owned()),
        colour: true,
        scrub_proxies: false,
    };
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| TinctureApp::with_options(&cc.egui_ctx, options));
    let minute = Duration::from_secs(60);
    wait_for(&mut harness, "the film", minute, |app| {
        app.is_settled() && app.document().is_some() && app.shots_detected()
    });
    if !model {
        harness.get_by_label("Use the model's colour").click();
        harness.run_steps(2);
    }
    harness.state_mut().seek(FRAME);
    wait_for(&mut harness, "the coloured frame", minute, |app| {
        app.shown_frame() == Some(FRAME)
            && app.coloured_frame() == Some(FRAME)
            && app.coloured_revision() == app.document().map(|d| d.revision())
    });
    harness.get_by_label("Brush").click();
    harness.run_steps(2);
    // Choosing a painting tool asks the model for its likely colours on this
    // frame (on a thread of its own, loading the model the first time);
    // strokes are timed once that background work is done.
    wait_for(&mut harness, "the model's likely colours", minute, |app| {
        app.likely_colours_ready()
    });
    (harness, state.to_owned())
}

/// A stroke's screen points: a short diagonal at a place that moves with `i`.
fn stroke_points(harness: &Harness<'_, TinctureApp>, i: usize) -> Vec<egui::Pos2> {
    let x0 = 100.0 + (i % 6) as f32 * 180.0;
    let y0 = 120.0 + (i / 6 % 3) as f32 * 200.0;
    (0..6)
        .map(|k| {
            let k = k as f32;
            harness
                .state()
                .screen_point_of(x0 + 12.0 * k, y0 + 8.0 * k)
                .expect("the picture is on screen")
        })
        .collect()
}

/// Paints stroke `i` and returns the instant the pointer was released.
fn paint(harness: &mut Harness<'_, TinctureApp>, i: usize) -> Instant {
    let colours = [[200, 60, 50], [60, 120, 200], [80, 170, 70], [220, 190, 80]];
    harness
        .state_mut()
        .set_hint_colour(colours[i % colours.len()]);
    let points = stroke_points(harness, i);
    harness.hover_at(points[0]);
    harness.step();
    harness.drag_at(points[0]);
    harness.step();
    for &p in &points[1..] {
        harness.hover_at(p);
        harness.step();
    }
    harness.drop_at(points[points.len() - 1]);
    Instant::now()
}

/// Steps until the coloured frame holds the project as it is now; the
/// time since `released`. Steps come at most once per display refresh, as
/// in a window presenting with vsync (the window itself repaints only when a
/// worker wakes it): stepping flat out would take a core from the colour
/// worker that no real window takes.
fn until_coloured(harness: &mut Harness<'_, TinctureApp>, released: Instant) -> f64 {
    loop {
        let tick = Instant::now() + REFRESH;
        harness.step();
        let app = harness.state();
        let revision = app.document().map(|d| d.revision());
        if app.coloured_frame() == Some(FRAME) && app.coloured_revision() == revision {
            return millis(released.elapsed());
        }
        assert!(
            released.elapsed() < Duration::from_secs(60),
            "the stroke never showed; error shown: {:?}",
            app.error()
        );
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
}

/// One stroke, after a pause: its latency in milliseconds.
fn stroke_latency(harness: &mut Harness<'_, TinctureApp>, i: usize) -> f64 {
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let released = paint(harness, i);
    until_coloured(harness, released)
}

/// `BURST` strokes back to back: the last one's latency, and how many of
/// the revisions in between were coloured.
fn burst_latency(harness: &mut Harness<'_, TinctureApp>) -> (f64, usize) {
    let first = harness.state().document().map_or(0, |d| d.revision());
    let mut seen = std::collections::BTreeSet::new();
    let mut released = Instant::now();
    for i in 0..BURST {
        released = paint(harness, 100 + i);
        if let Some(r) = harness.state().coloured_revision().filter(|&r| r > first) {
            seen.insert(r);
        }
    }
    let latency = until_coloured(harness, released);
    if let Some(r) = harness.state().coloured_revision() {
        seen.insert(r);
    }
    (latency, seen.len())
}

/// The engine alone colouring frame `FRAME` with `project`, as the colour
/// worker does for one stroke: plan, preview colorizer, colorize. Times in ms.
fn engine_floor(project: &tincture_core::project::Project, film: &Path, model: bool) -> Vec<f64> {
    let mut reader = tincture_media::VideoReader::open(film).expect("the film opens");
    let frame = reader.seek(FRAME).expect("frame").frame;
    let luma = frame.luma_unit();
    let shared = model
        .then(|| SharedModel::start(&ModelChoice::default()).expect("the built-in model starts"));
    (0..STROKES)
        .map(|_| {
            let t = Instant::now();
            let plan = plan_of(
                project,
                &film.with_extension("tincture.json"),
                film.to_owned(),
            )
            .expect("a plan");
            let prior = shared
                .clone()
                .map(|m| Box::new(m) as Box<dyn tincture_core::colorize::Colorizer>);
            let mut colorizer = FilmColorizer::preview(plan, prior);
            let chroma = colorizer
                .colorize(&luma, FRAME, frame.matrix)
                .expect("colours the frame");
            // The picture the viewer gets, as the colour worker makes it.
            let out = tincture_core::compose::compose_frame(&frame, Some(&chroma), layout(&frame));
            std::hint::black_box(RgbFrame::from_rgb(
                FRAME,
                out.width(),
                out.height(),
                &tincture_core::compose::frame_to_rgb8(&out),
            ));
            millis(t.elapsed())
        })
        .collect()
}

fn layout(frame: &tincture_core::frame::Frame) -> tincture_core::compose::OutputLayout {
    tincture_core::compose::OutputLayout {
        bit_depth: frame.bit_depth,
        subsampling: tincture_core::frame::Subsampling::S444,
    }
}
