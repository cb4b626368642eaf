//! How long the window takes to show a frame 12 frames after the keyframe
//! just edited, with the colour memory and without it.
//!
//! `cargo bench -p tincture-app --bench memory_preview` drives the real
//! [`TinctureApp`] headless through egui_kittest (wgpu) on a 1280x720 gray
//! film it makes with the `ffmpeg` tool (`testsrc2`: shapes that move, a
//! pattern that scrolls). The model's colour is on. Each round, as an
//! archivist works: at the keyframe (frame 0) a stroke is added, and once
//! the keyframe shows it, the playhead goes to frame 12; the time is taken
//! from there to the step where the "after" side shows frame 12 coloured
//! with the project holding the stroke (stepping at most 60 times a second,
//! as a window with vsync). The colour worker replays the shot from the
//! keyframe to frame 12, at the preview's size (half size for this film),
//! every frame matched against the memory where it is on.
//!
//! Rounds alternate between the memory off and on (the "Colour memory"
//! check box in Properties), so both see the same machine. The first round
//! of each is reported apart: there the model runs on every frame of the
//! replay for the memory's features, which the window then keeps (64
//! frames), so later edits replay without running it again. The medians of
//! the later rounds and their ratio are printed. Target: the memory makes
//! the preview at most 1.5x slower, as it may make the render.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ffmpeg, median, millis, ms, wait_for};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tincture_app::document::StateDir;
use tincture_app::{AppOptions, TinctureApp};
use tincture_core::project::Stroke;

/// The keyframe edited.
const KEY: u64 = 0;
/// The frame shown after each edit.
const SHOWN: u64 = 12;
/// Timed rounds of each, after the first.
const ROUNDS: usize = 5;
/// The target ratio, memory on to off.
const TARGET_RATIO: f64 = 1.5;
/// One refresh of a 60 Hz display.
const REFRESH: Duration = Duration::from_micros(16_667);

fn main() {
    if !common::benchmarking("memory_preview") {
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
    println!(
        "Tincture preview with the colour memory (headless egui_kittest on wgpu, the real TinctureApp)"
    );
    println!(
        "film: 1280x720 gray FFV1, 48 frames; stroke on frame {KEY}, then frame {SHOWN} shown; \
         {} CPU threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut harness = open(&film, &dir.path().join("state"));
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        for memory in [false, true] {
            set_memory(&mut harness, memory);
            let t = edit_then_show(&mut harness, 2 * round + usize::from(memory));
            let label = if memory { "on " } else { "off" };
            if round == 0 {
                let why = if memory {
                    " (the memory's features taken: the model runs on each frame of the replay)"
                } else {
                    ""
                };
                println!("  first time, memory {label}: {}{why}", ms(t));
            } else {
                println!("  round {round}, memory {label}: {}", ms(t));
                if memory {
                    on.push(t);
                } else {
                    off.push(t);
                }
            }
        }
    }
    let (a, b) = (median(&off), median(&on));
    let ratio = b / a;
    println!(
        "frame {SHOWN} after an edit at keyframe {KEY} (a {SHOWN}-frame replay at 640x360): median \
         {} without the memory, {} with it: ratio {ratio:.2} (target <= {TARGET_RATIO}: {})",
        ms(a),
        ms(b),
        if ratio <= TARGET_RATIO {
            "MET"
        } else {
            "NOT MET"
        }
    );
    assert!(
        harness.state().error().is_none(),
        "the window shows an error: {:?}",
        harness.state().error()
    );
}

/// The window on `film`, its project open and the background pass done,
/// at the keyframe.
fn open(film: &Path, state: &Path) -> Harness<'static, TinctureApp> {
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
    wait_for(&mut harness, "the film", Duration::from_secs(60), |app| {
        app.is_settled() && app.document().is_some() && app.shots_detected()
    });
    harness
}

/// Turns the colour memory on or off with its check box in Properties.
fn set_memory(harness: &mut Harness<'_, TinctureApp>, on: bool) {
    let is_on = |h: &Harness<'_, TinctureApp>| {
        h.state()
            .document()
            .is_some_and(|d| d.project().defaults.colour_memory)
    };
    if is_on(harness) != on {
        harness.get_by_label("Colour memory").click();
        harness.run_steps(2);
    }
    assert_eq!(is_on(harness), on, "the Colour memory check box");
}

/// Steps until frame `frame` shows coloured with the project as it is now;
/// the time since `since`, in ms.
fn until_coloured(harness: &mut Harness<'_, TinctureApp>, frame: u64, since: Instant) -> f64 {
    loop {
        let tick = Instant::now() + REFRESH;
        harness.step();
        let app = harness.state();
        let revision = app.document().map(|d| d.revision());
        if app.coloured_frame() == Some(frame) && app.coloured_revision() == revision {
            return millis(since.elapsed());
        }
        assert!(
            since.elapsed() < Duration::from_secs(300),
            "frame {frame} never showed; error shown: {:?}",
            app.error()
        );
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
}

/// At the keyframe, adds stroke `i` and waits for it to show; then shows
/// frame [`SHOWN`]: the time from there until it is coloured, in ms.
fn edit_then_show(harness: &mut Harness<'_, TinctureApp>, i: usize) -> f64 {
    harness.state_mut().seek(KEY);
    let colours = ["#c83c32", "#3c78c8", "#50aa46", "#dcbe50"];
    let x = 100.0 + (i % 8) as f32 * 140.0;
    harness.state_mut().add_stroke(Stroke {
        points: vec![[x, 150.0], [x + 60.0, 300.0], [x + 20.0, 500.0]],
        color: colours[i % colours.len()].to_owned(),
        size: 40.0,
        canvas: [1280, 720],
    });
    until_coloured(harness, KEY, Instant::now());
    harness.state_mut().seek(SHOWN);
    until_coloured(harness, SHOWN, Instant::now())
}
