//! How responsive the Tincture window is: UI frame time with and without an
//! export running, and scrub latency on a long-GOP film.
//!
//! `cargo bench -p tincture-app --bench responsiveness` drives the real
//! [`TinctureApp`] headless through egui_kittest (wgpu, as the GUI tests do)
//! on a 720p H.264 clip with a 250-frame GOP that it makes with the `ffmpeg`
//! tool, and prints:
//!
//! - **UI frame time**: the time of one `Harness::step` (the app's logic and
//!   UI, kittest's accessibility update and the texture upload; painting is
//!   left out, as on a real machine it is the GPU's), over the same scripted
//!   scrubbing with no export and while an FFV1 export of the film runs,
//!   started through the Export window. Target: p99 under 16 ms.
//! - **Scrub latency**: from a key press (Right, a frame inside the
//!   read-ahead cache) or a jump of three seconds or more on the position
//!   slider (a frame nobody has decoded) to the new frame being on screen.
//!   Targets: 50 ms cached, 150 ms uncached. Uncached jumps are measured
//!   twice: in the window as it runs, reading frames it has not cached from
//!   the film's scrub proxy (built in the background after opening; the
//!   bench waits for it), and in a window with proxies turned off, which
//!   decodes from the film's keyframe. Beside them, the floor: the same
//!   frames decoded with `tincture_media` alone, no window and no cache.
//!
//! The model's colour is off (the viewer's "after" side and the export's
//! prior), so the figures are the window's own, not the network's.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ffmpeg, median, millis, ms, p99, verdict, wait_for};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tincture_app::document::StateDir;
use tincture_app::{AppOptions, TinctureApp};

/// A 60 Hz display: steps are paced at this period while frame times are measured.
const FRAME_PERIOD: Duration = Duration::from_micros(16_667);
/// Frames measured in each frame-time run.
const FRAME_SAMPLES: usize = 360;
/// A Right press every this many frames while frame times are measured (about 10 a second).
const PRESS_EVERY: usize = 6;
/// Right presses measured for cached scrub latency.
const CACHED_SAMPLES: usize = 40;
/// Far jumps measured for uncached scrub latency.
const UNCACHED_SAMPLES: usize = 24;
/// The shortest far jump, in frames (three seconds at 25 fps).
const MIN_JUMP: u64 = 75;

/// The clip: 720p H.264 at 25 fps, 20 s, one keyframe every 250 frames.
const CLIP_RATE: u32 = 25;
const CLIP_SECONDS: u32 = 20;
const CLIP_GOP: u32 = 250;

fn main() {
    if !common::benchmarking("responsiveness") {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let clip = make_clip(dir.path());
    println!("Tincture responsiveness (headless egui_kittest on wgpu, the real TinctureApp)");
    println!("clip: {}", clip_properties(&clip));
    println!(
        "machine: {} CPU threads; model colour off",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let state = dir.path().join("state");
    let (mut harness, ready_after) = open_app(&clip, &state, true);
    let (proxy_frames, proxy_bytes) = proxy_size(&clip, &state);
    let media = harness.state().media().expect("the film is open").clone();
    let last = media.frame_count - 1;

    // UI frame time, with the same scrubbing script with and without an export.
    let idle = frame_times(&mut harness, 100);
    let output = dir.path().join("export").join("clip-colour.mkv");
    std::fs::create_dir_all(output.parent().expect("a folder")).expect("the export folder");
    start_export(&mut harness, &output);
    let busy = frame_times(&mut harness, 100);
    let exported = harness.state().exporter().progress().map_or(0, |p| p.done);
    let still_running = harness.state().exporter().is_running();
    stop_export(&mut harness);

    // Scrub latency.
    let cached = cached_latencies(&mut harness, 200);
    let targets = far_targets(last);
    let uncached = uncached_latencies(&mut harness, &targets);
    drop(harness);
    // The same jumps in a window that reads the film itself: no scrub proxy.
    let (mut bare, _) = open_app(&clip, &dir.path().join("state-no-proxy"), false);
    let without_proxy = uncached_latencies(&mut bare, &targets);
    drop(bare);
    let (next_floor, seek_floor) = decode_floor(&clip, &targets);

    println!();
    println!(
        "UI frame time: one step (logic + ui + texture upload, no painting), {FRAME_SAMPLES} \
         frames paced at 60 Hz, Right pressed every {PRESS_EVERY}th frame"
    );
    println!("  {:<30} {:>9} {:>9}   target", "", "median", "p99");
    let (im, ip) = (median(&idle.all), p99(&idle.all));
    let (bm, bp) = (median(&busy.all), p99(&busy.all));
    println!(
        "  {:<30} {:>9} {:>9}   p99 < 16 ms {}",
        "no export",
        ms(im),
        ms(ip),
        verdict(ip, 16.0)
    );
    println!(
        "  {:<30} {:>9} {:>9}   p99 < 16 ms {}",
        "exporting (FFV1, whole film)",
        ms(bm),
        ms(bp),
        verdict(bp, 16.0)
    );
    for (label, times) in [
        ("  of which new pictures, idle", &idle.new_picture),
        ("  of which new pictures, exp.", &busy.new_picture),
    ] {
        println!(
            "  {:<30} {:>9} {:>9}   ({} frames)",
            label,
            ms(median(times)),
            ms(p99(times)),
            times.len()
        );
    }
    println!(
        "  {:<30} {:>8.2}x {:>8.2}x",
        "ratio (exporting / none)",
        bm / im,
        bp / ip
    );
    println!(
        "  (the export wrote {exported} frames meanwhile{})",
        if still_running {
            " and was still running at the end"
        } else {
            "; it ENDED before the last sample"
        }
    );

    println!();
    println!("Scrub latency: input -> the new frame on screen (app.shown_frame())");
    println!(
        "  {:<28} {:>3} {:>9} {:>9}  {:>10}   {:<34} {:>7}",
        "", "n", "median", "p99", "target", "floor (tincture_media alone)", "ratio"
    );
    let (cm, cp) = (median(&cached), p99(&cached));
    let (um, up) = (median(&uncached), p99(&uncached));
    let (nm, sm) = (median(&next_floor), median(&seek_floor));
    println!(
        "  {:<28} {:>3} {:>9} {:>9}  {:>10} {}   {:<34} {:>6.2}x",
        "cached (Right)",
        cached.len(),
        ms(cm),
        ms(cp),
        "< 50 ms",
        verdict(cp, 50.0),
        format!("next-frame decode, median {}", ms(nm)),
        cm / nm
    );
    println!(
        "  {:<28} {:>3} {:>9} {:>9}  {:>10} {}   {:<34} {:>6.2}x",
        format!("uncached (jump >= {} s)", MIN_JUMP / u64::from(CLIP_RATE)),
        uncached.len(),
        ms(um),
        ms(up),
        "< 150 ms",
        verdict(up, 150.0),
        format!("seek + decode, median {}", ms(sm)),
        um / sm
    );
    let (wm, wp) = (median(&without_proxy), p99(&without_proxy));
    println!(
        "  {:<28} {:>3} {:>9} {:>9}  {:>10} {}   {:<34} {:>6.2}x",
        "uncached, no scrub proxy",
        without_proxy.len(),
        ms(wm),
        ms(wp),
        "< 150 ms",
        verdict(wp, 150.0),
        format!("seek + decode, median {}", ms(sm)),
        wm / sm
    );
    println!(
        "  floor p99: next-frame {}, seek {}; ratio is app median / floor median",
        ms(p99(&next_floor)),
        ms(p99(&seek_floor))
    );
    println!(
        "  scrub proxy vs none, uncached median: {:.1}x faster ({} vs {})",
        wm / um,
        ms(um),
        ms(wm)
    );
    println!(
        "  scrub proxy: {proxy_frames} of {} frames, {:.1} MB (FFV1, all intra), built in the \
         background with shot detection; thumbnails, shots and proxy done {ready_after:.1} s \
         after opening",
        media.frame_count,
        proxy_bytes as f64 / 1e6
    );
    println!();
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// Makes the 720p H.264 clip with a 250-frame GOP: a moving black-and-white test pattern.
fn make_clip(dir: &Path) -> PathBuf {
    let clip = dir.join("gop250_720p.mp4");
    let gop = CLIP_GOP.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=1280x720:rate={CLIP_RATE},hue=s=0"),
        "-t",
        &CLIP_SECONDS.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "fast",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().expect("a UTF-8 path"),
    ]);
    clip
}

/// The clip's properties, as ffprobe reads them.
fn clip_properties(clip: &Path) -> String {
    let probe = |args: &[&str]| {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(args)
            .arg(clip)
            .output()
            .expect("ffprobe runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let stream = probe(&[
        "-show_entries",
        "stream=codec_name,profile,width,height,pix_fmt,r_frame_rate,has_b_frames",
        "-of",
        "default=nw=1",
    ]);
    let field = |name: &str| {
        stream
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or("?")
            .to_owned()
    };
    let packets = probe(&["-show_entries", "packet=flags", "-of", "csv=p=0"]);
    let frames = packets.lines().count();
    let keys = packets.lines().filter(|l| l.starts_with('K')).count();
    let bytes = std::fs::metadata(clip).map_or(0, |m| m.len());
    format!(
        "{} ({}) {}x{} {} at {} fps, {frames} frames, {keys} keyframes (GOP {CLIP_GOP}), \
         B-frames: {}, {:.1} MB",
        field("codec_name"),
        field("profile"),
        field("width"),
        field("height"),
        field("pix_fmt"),
        field("r_frame_rate"),
        if field("has_b_frames") == "0" {
            "no"
        } else {
            "yes"
        },
        bytes as f64 / 1e6
    )
}

/// Whether a thread of this process has `name` (as the kernel keeps it: 15 bytes at most).
fn thread_alive(name: &str) -> bool {
    let short = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| {
        tasks.filter_map(Result::ok).any(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == short)
        })
    })
}

/// The window on `clip`, its project open, the model's colour off, and
/// the thumbnail and shot-detection thread finished (so it does not
/// compete with what is measured).
fn open_app(
    clip: &Path,
    state: &Path,
    scrub_proxies: bool,
) -> (Harness<'static, TinctureApp>, f64) {
    let options = AppOptions {
        file: Some(clip.to_owned()),
        state: StateDir::at(state.to_owned()),
        colour: false,
        scrub_proxies,
    };
    let opened = Instant::now();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| TinctureApp::with_options(&cc.egui_ctx, options));
    let minute = Duration::from_secs(60);
    wait_for(&mut harness, "the film", minute, |app| {
        app.is_settled() && app.document().is_some()
    });
    harness.get_by_label("Use the model's colour").click();
    harness.run_steps(2);
    let prior = harness
        .state()
        .document()
        .expect("project")
        .project()
        .defaults
        .model_prior;
    assert!(!prior, "the model's colour is off");
    let start = Instant::now();
    while thread_alive(tincture_app::worker::BACKGROUND_THREAD_NAME) {
        assert!(
            start.elapsed() < 3 * minute,
            "shot detection and the scrub proxy take over three minutes"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    (harness, opened.elapsed().as_secs_f64())
}

/// The clip's scrub proxy under `state`: frames built and bytes on disk.
fn proxy_size(clip: &Path, state: &Path) -> (u64, u64) {
    let reader = tincture_media::VideoReader::open(clip).expect("the clip opens");
    let Some(proxy) = StateDir::at(state.to_owned())
        .proxies()
        .and_then(|p| tincture_media::ScrubProxy::for_film(&p.root, &reader))
    else {
        return (0, 0);
    };
    let bytes = std::fs::read_dir(proxy.dir())
        .map(|d| {
            d.flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    (proxy.built_frames(), bytes)
}

/// Moves the playhead to `index` through the position slider and waits for it.
fn jump(harness: &mut Harness<'_, TinctureApp>, index: u64) {
    harness
        .get_by_label("Frame position")
        .set_value_accesskit(index as f64);
    wait_for(
        harness,
        &format!("frame {index}"),
        Duration::from_secs(30),
        |app| app.is_settled() && app.shown_frame() == Some(index),
    );
}

/// Frame times in milliseconds: every frame, and those that put a new picture on screen.
struct FrameTimes {
    all: Vec<f64>,
    new_picture: Vec<f64>,
}

/// Times `FRAME_SAMPLES` steps paced at 60 Hz from frame `from`, pressing
/// Right every `PRESS_EVERY`th (down on one frame, up on the next).
fn frame_times(harness: &mut Harness<'_, TinctureApp>, from: u64) -> FrameTimes {
    jump(harness, from);
    let mut times = FrameTimes {
        all: Vec::with_capacity(FRAME_SAMPLES),
        new_picture: Vec::new(),
    };
    let mut next = Instant::now();
    for i in 0..FRAME_SAMPLES {
        match i % PRESS_EVERY {
            0 => harness.key_down(egui::Key::ArrowRight),
            1 => harness.key_up(egui::Key::ArrowRight),
            _ => {}
        }
        let shown = harness.state().shown_frame();
        let t = Instant::now();
        harness.step();
        let took = millis(t.elapsed());
        times.all.push(took);
        if harness.state().shown_frame() != shown {
            times.new_picture.push(took);
        }
        next += FRAME_PERIOD;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    times
}

/// File > Export…, FFV1 to `output`, through the Export window as a user
/// would; waits for the first frame to be written.
fn start_export(harness: &mut Harness<'_, TinctureApp>, output: &Path) {
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export…").click();
    harness.run_steps(2);
    harness.get_by_label("FFV1 (MKV)").click();
    harness.step();
    harness
        .get_by_label("Destination")
        .set_text_value_accesskit(output.to_str().expect("a UTF-8 path"));
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Export")
        .click();
    harness.step();
    assert!(
        harness.state().exporter().is_running(),
        "the export started; error shown: {:?}",
        harness.state().error()
    );
    wait_for(
        harness,
        "the export's first frame",
        Duration::from_secs(60),
        |app| app.exporter().progress().is_some_and(|p| p.done > 0),
    );
}

/// Cancels the running export, if any, and waits for it to end.
fn stop_export(harness: &mut Harness<'_, TinctureApp>) {
    if harness.state().exporter().is_running() {
        harness.get_by_label("Cancel export").click();
    }
    wait_for(
        harness,
        "the export to stop",
        Duration::from_secs(60),
        |app| !app.exporter().is_running(),
    );
}

/// Steps, as fast as the UI would wake, until frame `index` is on screen;
/// the time from the input's frame to then.
fn until_shown(harness: &mut Harness<'_, TinctureApp>, index: u64) -> f64 {
    let t = Instant::now();
    loop {
        harness.step();
        if harness.state().shown_frame() == Some(index) {
            return millis(t.elapsed());
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "frame {index} never came; error shown: {:?}",
            harness.state().error()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Right presses from `from`, each after the read-ahead has had 300 ms to fill.
fn cached_latencies(harness: &mut Harness<'_, TinctureApp>, from: u64) -> Vec<f64> {
    jump(harness, from);
    let mut samples = Vec::with_capacity(CACHED_SAMPLES);
    for _ in 0..CACHED_SAMPLES {
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            harness.step();
            std::thread::sleep(Duration::from_millis(10));
        }
        let target = harness.state().position() + 1;
        harness.key_down(egui::Key::ArrowRight);
        samples.push(until_shown(harness, target));
        harness.key_up(egui::Key::ArrowRight);
        harness.step();
    }
    samples
}

/// Far-jump targets: at least `MIN_JUMP` frames from the one before and
/// away from the last few (which the cache may still hold); fixed seed.
fn far_targets(last: u64) -> Vec<u64> {
    let mut state: u64 = 0x7469_6e63_7475_7265;
    let mut targets: Vec<u64> = vec![0];
    while targets.len() <= UNCACHED_SAMPLES {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let candidate = (state >> 33) % (last + 1);
        let far_from_last = targets
            .last()
            .is_none_or(|&p| p.abs_diff(candidate) >= MIN_JUMP);
        let clear_of_cache = targets
            .iter()
            .rev()
            .take(5)
            .all(|&p| !(p..=p + 13).contains(&candidate));
        if far_from_last && clear_of_cache {
            targets.push(candidate);
        }
    }
    targets
}

/// Jumps through `targets` with the position slider (the first is where it starts).
fn uncached_latencies(harness: &mut Harness<'_, TinctureApp>, targets: &[u64]) -> Vec<f64> {
    jump(harness, targets[0]);
    let mut samples = Vec::with_capacity(targets.len());
    for &target in &targets[1..] {
        // Let the read-ahead of the last jump finish, as a person looking would.
        let settle = Instant::now() + Duration::from_millis(300);
        while Instant::now() < settle {
            harness.step();
            std::thread::sleep(Duration::from_millis(10));
        }
        harness
            .get_by_label("Frame position")
            .set_value_accesskit(target as f64);
        samples.push(until_shown(harness, target));
    }
    samples
}

/// The floor: `tincture_media` alone decoding to RGB as the frame worker
/// does. Returns (next-frame decodes, seeks to each of `targets` from the
/// one before).
fn decode_floor(clip: &Path, targets: &[u64]) -> (Vec<f64>, Vec<f64>) {
    let mut reader = tincture_media::VideoReader::open(clip).expect("the clip opens");
    let mut next = Vec::with_capacity(CACHED_SAMPLES);
    reader.seek(200).expect("frame 200");
    for _ in 0..CACHED_SAMPLES {
        let t = Instant::now();
        let f = reader.next_frame().expect("decodes").expect("a frame");
        std::hint::black_box(tincture_core::compose::frame_to_rgb8(&f.frame));
        next.push(millis(t.elapsed()));
    }
    let mut seek = Vec::with_capacity(targets.len());
    for pair in targets.windows(2) {
        reader.seek(pair[0]).expect("seeks");
        let t = Instant::now();
        let f = reader.seek(pair[1]).expect("seeks");
        std::hint::black_box(tincture_core::compose::frame_to_rgb8(&f.frame));
        seek.push(millis(t.elapsed()));
    }
    (next, seek)
}
