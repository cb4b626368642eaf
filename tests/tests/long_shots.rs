//! Real sizes and long shots, end to end on films made with the `ffmpeg`
//! CLI: the viewer's half-size preview of an HD film colours the frames
//! after a painted keyframe; the backward pass over a long shot gives the
//! same colour in a small memory budget as in an unbounded one; and a stop
//! asked for inside a backward pass ends it promptly.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tincture_core::Error;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_engine::film::{FilmColorizer, FilmPlan, KeyColour, StrokeHint};
use tincture_infer::model::resize_area;
use tincture_media::VideoReader;
use tincture_tests::{make_video, scene};

/// A gray FFV1 film of the moving lavfi test scene.
fn film(dir: &Path, name: &str, size: &str, frames: u32, pix_fmt: &str) -> std::path::PathBuf {
    make_video(
        &dir.join(name),
        &scene(size, "24"),
        frames,
        &["-pix_fmt", pix_fmt, "-c:v", "ffv1"],
    )
}

/// A plan with one keyframe at `key`, painted with a red stroke down the
/// left of a `w` x `h` picture (coordinates in that picture's pixels).
fn red_key_plan(source: &Path, frames: u64, key: u64, w: usize, h: usize) -> FilmPlan {
    let mut plan = FilmPlan::whole_film(source.to_owned(), frames);
    let x = w as f32 * 0.12;
    plan.keys.insert(
        key,
        KeyColour::Steered {
            strokes: vec![StrokeHint {
                points: vec![[x, h as f32 * 0.1], [x, h as f32 * 0.9]],
                rgb: [210, 40, 40],
                size: w as f32 * 0.05,
            }],
            reference: None,
        },
    );
    plan
}

fn luma_of(reader: &mut VideoReader, frame: u64) -> LumaImage {
    reader
        .seek(frame)
        .expect("the frame decodes")
        .frame
        .luma_unit()
}

fn half(luma: &LumaImage) -> LumaImage {
    let (w, h) = (luma.width.div_ceil(2), luma.height.div_ceil(2));
    LumaImage {
        width: w,
        height: h,
        data: resize_area(&luma.data, luma.width, luma.height, w, h),
    }
}

/// Mean Cr over the column band around the stroke.
fn red_under_stroke(c: &ChromaField) -> f32 {
    let x0 = (c.width as f32 * 0.10) as usize;
    let x1 = (c.width as f32 * 0.14) as usize;
    let (y0, y1) = (c.height / 5, c.height * 4 / 5);
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += c.cr[y * c.width + x];
            n += 1.0;
        }
    }
    sum / n
}

/// The viewer colours films wider than 960 px at half size: the keyframe,
/// the replay from it and the read-ahead must all be at that size. A
/// 1280x720 film and a 2048x1556 10-bit scan, painted at frame 0, stepped
/// to frame 20.
#[test]
fn a_half_size_preview_colours_frames_after_its_keyframe() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, size, pix_fmt) in [
        ("hd.mkv", "1280x720", "gray"),
        ("scan-2k.mkv", "2048x1556", "gray10le"),
    ] {
        let path = film(dir.path(), name, size, 24, pix_fmt);
        let mut reader = VideoReader::open(&path).expect("the film opens");
        let key = luma_of(&mut reader, 0);
        let small_key = half(&key);
        let plan = red_key_plan(&path, 24, 0, small_key.width, small_key.height);
        let mut preview = FilmColorizer::preview(plan, None);
        let at_key = preview
            .colorize(&small_key, 0, Matrix::Bt709)
            .expect("the keyframe colours");
        // Clicking frame 20: replayed from the keyframe at the preview's size.
        let small_20 = half(&luma_of(&mut reader, 20));
        let at_20 = preview
            .colorize(&small_20, 20, Matrix::Bt709)
            .unwrap_or_else(|e| panic!("{name}: frame 20 colours: {e}"));
        assert_eq!(
            (at_20.width, at_20.height),
            (small_20.width, small_20.height)
        );
        let (k, f) = (red_under_stroke(&at_key), red_under_stroke(&at_20));
        assert!(k > 0.08, "{name}: the stroke is red on its keyframe ({k})");
        assert!(
            f > 0.5 * k,
            "{name}: the painted red reached frame 20 ({f} against {k} on the keyframe)"
        );
        // A frame far from the keyframe, then back: still the same colour.
        let again = preview
            .colorize(&small_20, 20, Matrix::Bt709)
            .expect("frame 20 again");
        assert_eq!(again, at_20, "{name}: frame 20 coloured twice the same");
    }
}

/// Colours frames `0..n` of `path` in order, its only keyframe the last,
/// with the backward pass held to `budget` bytes.
fn render_in_order(path: &Path, n: u64, budget: usize) -> (Vec<ChromaField>, u64) {
    let mut reader = VideoReader::open(path).expect("the film opens");
    let first = luma_of(&mut reader, 0);
    let plan = red_key_plan(path, n, n - 1, first.width, first.height);
    let mut colorizer = FilmColorizer::new(plan, None);
    colorizer.set_memory_budget(budget);
    let mut out = Vec::new();
    for f in 0..n {
        let luma = luma_of(&mut reader, f);
        out.push(
            colorizer
                .colorize(&luma, f, Matrix::Bt709)
                .unwrap_or_else(|e| panic!("frame {f}: {e}")),
        );
    }
    (out, colorizer.backward_steps())
}

/// A shot whose only keyframe is its last frame: with room for a handful
/// of frames' colour the render is the same to the bit as with room for
/// all of them, at a bounded cost in recomputed frames.
#[test]
fn a_long_shot_in_a_small_budget_gives_the_same_colour() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 48u64;
    let path = film(dir.path(), "long.mkv", "160x120", n as u32, "gray");
    let frame_bytes = tincture_core::propagate::carried_bytes(160 * 120);
    let (all, steps_all) = render_in_order(&path, n, 1 << 30);
    let (small, steps_small) = render_in_order(&path, n, 8 * frame_bytes);
    assert_eq!(steps_all, n - 1, "with room for all, each frame once");
    assert!(
        steps_small > n - 1 && steps_small <= 4 * n,
        "{steps_small} backward steps for {} frames in the small budget",
        n - 1
    );
    for (f, (a, b)) in all.iter().zip(&small).enumerate() {
        assert!(a == b, "frame {f} differs between the budgets");
    }
    assert!(
        red_under_stroke(&all[0]) > 0.03,
        "the last frame's red reaches the first ({})",
        red_under_stroke(&all[0])
    );
}

/// A 1280x720 H.264 film of `frames` frames (a keyframe every 48), as an
/// access copy would be.
fn long_hd_film(dir: &Path, frames: u64) -> std::path::PathBuf {
    make_video(
        &dir.join("long-hd.mp4"),
        &scene("1280x720", "24"),
        frames as u32,
        &[
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "48",
        ],
    )
}

/// A stop asked for while the first frame waits on a backward pass over a
/// long HD shot ends it within a second, with `Cancelled`.
#[test]
fn a_stop_inside_a_backward_pass_takes_effect_within_a_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 240u64;
    let path = long_hd_film(dir.path(), n);
    let mut reader = VideoReader::open(&path).expect("the film opens");
    let first = luma_of(&mut reader, 0);
    let plan = red_key_plan(&path, n, n - 1, first.width, first.height);
    let mut colorizer = FilmColorizer::new(plan, None);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    colorizer.set_stop(Box::new(move || flag.load(Ordering::Relaxed)));
    let asked = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let (flag, when) = (stop.clone(), asked.clone());
    let stopper = std::thread::Builder::new()
        .name("stopper".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            *when.lock().expect("lock") = Some(Instant::now());
            flag.store(true, Ordering::Relaxed);
        })
        .expect("the stopper starts");
    let result = colorizer.colorize(&first, 0, Matrix::Bt709);
    let ended = Instant::now();
    stopper.join().expect("the stopper");
    assert!(
        matches!(result, Err(Error::Cancelled)),
        "the pass was stopped, not finished: {:?}",
        result.map(|c| c.width)
    );
    let asked = asked.lock().expect("lock").expect("the stop was asked");
    let latency = ended.duration_since(asked);
    assert!(
        latency < Duration::from_secs(1),
        "stopped {latency:?} after it was asked"
    );
    assert!(
        colorizer.backward_steps() < n - 1,
        "it stopped inside the pass"
    );
}

/// A chunk that starts inside a shot replays from the keyframe before it,
/// not from the shot's start (a keyframe sets the whole forward state),
/// and equals the same frames of a whole render to the bit.
#[test]
fn a_chunk_replays_from_the_keyframe_before_it_and_equals_a_whole_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 24u64;
    let path = film(dir.path(), "chunks.mkv", "160x120", n as u32, "gray");
    let plan = || {
        let mut plan = red_key_plan(&path, n, 8, 160, 120);
        let blue = KeyColour::Steered {
            strokes: vec![StrokeHint {
                points: vec![[120.0, 20.0], [120.0, 100.0]],
                rgb: [40, 60, 200],
                size: 8.0,
            }],
            reference: None,
        };
        plan.keys.insert(20, blue);
        plan
    };
    let mut reader = VideoReader::open(&path).expect("the film opens");
    let lumas: Vec<LumaImage> = (0..n).map(|f| luma_of(&mut reader, f)).collect();
    let mut whole = FilmColorizer::new(plan(), None);
    let all: Vec<ChromaField> = (0..n)
        .map(|f| {
            whole
                .colorize(&lumas[f as usize], f, Matrix::Bt709)
                .expect("whole")
        })
        .collect();
    assert_eq!(whole.replayed_frames(), 0);
    // (chunk start, frames replayed: since the keyframe before it, or the
    // shot's start when there is none; none at a keyframe)
    for (start, replayed) in [(14u64, 6u64), (20, 0), (5, 5), (8, 0)] {
        let mut chunk = FilmColorizer::new(plan(), None);
        for f in start..n {
            let got = chunk
                .colorize(&lumas[f as usize], f, Matrix::Bt709)
                .expect("chunk");
            assert!(
                got == all[f as usize],
                "chunk from {start}: frame {f} differs from the whole render"
            );
        }
        assert_eq!(
            chunk.replayed_frames(),
            replayed,
            "chunk from {start}: frames replayed"
        );
    }
}

/// With a chunk state folder shared by the chunks of one render, chunks
/// run in order continue from the forward state the chunk before each left
/// (nothing replayed), and walk back over their own frames and at most a
/// stride more: the first walk over the stretch leaves its colour every
/// stride frames for the chunks after it. A split into N chunks thus costs
/// O(N) frames, not O(N²). In any order every frame equals a whole render
/// to the bit.
#[test]
fn chunks_sharing_a_state_folder_neither_replay_nor_walk_again_and_equal_a_whole_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 30u64;
    let path = film(dir.path(), "chunks.mkv", "160x120", n as u32, "gray");
    let plan = || {
        let mut plan = red_key_plan(&path, n, 3, 160, 120);
        let blue = KeyColour::Steered {
            strokes: vec![StrokeHint {
                points: vec![[120.0, 20.0], [120.0, 100.0]],
                rgb: [40, 60, 200],
                size: 8.0,
            }],
            reference: None,
        };
        plan.keys.insert(27, blue);
        plan
    };
    let mut reader = VideoReader::open(&path).expect("the film opens");
    let lumas: Vec<LumaImage> = (0..n).map(|f| luma_of(&mut reader, f)).collect();
    let mut whole = FilmColorizer::new(plan(), None);
    let all: Vec<ChromaField> = (0..n)
        .map(|f| {
            whole
                .colorize(&lumas[f as usize], f, Matrix::Bt709)
                .expect("whole")
        })
        .collect();
    let chunks = [(0u64, 6u64), (7, 13), (14, 20), (21, 29)];
    let stride = 8;
    // (chunk, frames replayed, backward steps) of one chunk, rendered
    // against `state` (or none).
    let render = |state: Option<&Path>, (a, b): (u64, u64)| {
        let mut chunk = FilmColorizer::new(plan(), None);
        if let Some(state) = state {
            chunk.set_chunk_state(state.to_owned(), b);
            chunk.set_state_stride(stride);
        }
        for f in a..=b {
            let got = chunk
                .colorize(&lumas[f as usize], f, Matrix::Bt709)
                .expect("chunk");
            assert!(
                got == all[f as usize],
                "chunk {a}-{b} (state {state:?}): frame {f} differs from the whole render"
            );
        }
        (chunk.replayed_frames(), chunk.backward_steps())
    };
    let alone: Vec<(u64, u64)> = chunks.iter().map(|&c| render(None, c)).collect();
    // Without a state folder: replayed from keyframe 3, walked back from 27.
    assert_eq!(
        alone.iter().map(|c| c.0).collect::<Vec<_>>(),
        [0, 4, 11, 18]
    );
    // ... and the replay needs the colour carried back to it too.
    assert_eq!(alone[2].1, 27 - 4, "chunk 14-20 walks back from 27 to 4");

    let forward_dir = dir.path().join("state-in-order");
    let in_order: Vec<(u64, u64)> = chunks
        .iter()
        .map(|&c| render(Some(&forward_dir), c))
        .collect();
    assert_eq!(
        in_order.iter().map(|c| c.0).collect::<Vec<_>>(),
        [0, 0, 0, 0],
        "chunks in order continue from the state the chunk before left"
    );
    for (&(a, b), &(_, steps)) in chunks.iter().zip(&in_order).skip(1) {
        assert!(
            steps <= (b - a + 1) + stride,
            "chunk {a}-{b} walked back {steps} frames: more than its own and the stride"
        );
    }

    // Run in any other order, the chunks find less left for them, and the
    // colour is the same.
    let reverse_dir = dir.path().join("state-in-reverse");
    for &c in chunks.iter().rev() {
        render(Some(&reverse_dir), c);
    }
    let total_alone: u64 = alone.iter().map(|c| c.0 + c.1).sum();
    let total_in_order: u64 = in_order.iter().map(|c| c.0 + c.1).sum();
    eprintln!("(replayed, walked back) per chunk: alone {alone:?}, in order {in_order:?}");
    assert!(
        total_in_order < total_alone,
        "{total_in_order} frames replayed or walked with the state, {total_alone} without"
    );
}

/// A project for `film` whose only keyframe is its last frame (`frames`
/// frames), painted red on the left, with the model off.
fn project_keyed_at_end(
    dir: &Path,
    film: &Path,
    frames: u64,
    w: f64,
    h: f64,
) -> std::path::PathBuf {
    let path = dir.join("long.tincture.json");
    let made = tincture_tests::cli(&[
        "project",
        "new",
        tincture_tests::s(film),
        "-o",
        tincture_tests::s(&path),
    ]);
    tincture_tests::ok(&made);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    doc["defaults"]["model_prior"] = serde_json::json!(false);
    doc["keyframes"] = serde_json::json!([{
        "frame": frames - 1,
        "strokes": [{
            "points": [[0.2 * w, 0.2 * h], [0.2 * w, 0.8 * h]],
            "color": "#d22828",
            "size": 24.0,
            "canvas": [w as u32, h as u32]
        }]
    }]);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    path
}

/// Sends SIGINT to `child`.
fn interrupt(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Ctrl-C while the first frame waits on the backward pass of a long 720p
/// shot: the render stops within a second or so (exit 130), where it used
/// to finish the whole pass first; a second Ctrl-C exits at once.
#[test]
fn ctrl_c_inside_a_backward_pass_stops_the_render_promptly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let frames = 240u64;
    let film = long_hd_film(dir.path(), frames);
    let project = project_keyed_at_end(dir.path(), &film, frames, 1280.0, 720.0);
    for presses in [1, 2] {
        let out = dir.path().join(format!("out-{presses}.mkv"));
        let mut child = std::process::Command::new(tincture_tests::cli_path())
            .args(["render", tincture_tests::s(&film), "--project"])
            .arg(&project)
            .arg("-o")
            .arg(&out)
            .args(["--no-metrics"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the render starts");
        // Well inside the backward pass (239 frames to carry back first).
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            child.try_wait().expect("status").is_none(),
            "the render was still in its backward pass"
        );
        let asked = Instant::now();
        interrupt(&child);
        if presses == 2 {
            std::thread::sleep(Duration::from_millis(20));
            interrupt(&child);
        }
        let result = child.wait_with_output().expect("wait");
        let took = asked.elapsed();
        let stderr = String::from_utf8_lossy(&result.stderr);
        eprintln!("{presses} Ctrl-C: the render stopped {took:?} after it was asked");
        assert_eq!(result.status.code(), Some(130), "{stderr}");
        assert!(
            took < Duration::from_secs(3),
            "{presses} Ctrl-C: stopped {took:?} after it was asked; {stderr}"
        );
        assert!(!out.exists(), "no output under the final name");
        if presses == 2 {
            // The second press exits at once, unless the clean stop of the
            // first one had already finished (it takes tens of
            // milliseconds now), in which case there was nothing to cut.
            assert!(
                stderr.contains("stopped at once") || stderr.contains("stopped after"),
                "{stderr}"
            );
        }
    }
}
