//! Drives the real Tincture window with egui_kittest (rendered with wgpu,
//! headless): the real frame worker decodes a real film made with the
//! `ffmpeg` CLI. Three snapshot tests compare key states with the images in
//! `tests/snapshots/` (`UPDATE_SNAPSHOTS=1` rewrites them), with a tolerance
//! for software renderers and with what varies between machines and runs
//! (temporary paths, the ONNX Runtime version, live progress) masked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use tincture_app::document::StateDir;
use tincture_app::{AppOptions, TinctureApp};
use tincture_engine::render::Start;
use tincture_tests::{SmallDisk, skip_or_fail};

const FIXTURE_FRAMES: u64 = 30;

/// Makes a 160x120 gray FFV1 film of 30 frames at 24 fps in `dir`, or says
/// why it cannot.
fn make_fixture(dir: &Path) -> Result<PathBuf, String> {
    make_clip(dir, "fixture.mkv", "160x120", FIXTURE_FRAMES)
}

/// Makes a gray FFV1 film `name` of `size` and `frames` frames at 24 fps in
/// `dir`, or says why it cannot.
fn make_clip(dir: &Path, name: &str, size: &str, frames: u64) -> Result<PathBuf, String> {
    make_clip_from(dir, name, &format!("testsrc2=size={size}:rate=24"), frames)
}

/// Makes a gray FFV1 film `name` of `frames` frames from the lavfi `source`
/// in `dir`, or says why it cannot.
fn make_clip_from(dir: &Path, name: &str, source: &str, frames: u64) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(source)
        .args([
            "-frames:v",
            &frames.to_string(),
            "-pix_fmt",
            "gray",
            "-c:v",
            "ffv1",
        ])
        .arg(&path)
        .output()
        .map_err(|e| format!("the ffmpeg CLI is not available ({e})"))?;
    if !output.status.success() {
        return Err(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(path)
}

/// The fixture film, or `None` (with the reason printed) when ffmpeg is
/// missing; under `TINCTURE_REQUIRE_FIXTURES` that fails the test instead.
fn fixture_or_skip(dir: &Path, test: &str) -> Option<PathBuf> {
    make_fixture(dir)
        .inspect_err(|reason| skip_or_fail(test, reason))
        .ok()
}

/// The app on `file`, remembering its state in `state` (a temporary
/// folder), colouring the "after" side when `colour`.
fn harness_with(
    file: Option<PathBuf>,
    state: &Path,
    colour: bool,
    size: [f32; 2],
) -> Harness<'static, TinctureApp> {
    let options = AppOptions {
        file,
        state: StateDir::at(state.to_owned()),
        colour,
        scrub_proxies: true,
    };
    Harness::builder()
        .with_size(size)
        .wgpu()
        .build_eframe(move |cc| TinctureApp::with_options(&cc.egui_ctx, options))
}

/// The bare viewer (no colouring) on `file`.
fn harness(file: Option<PathBuf>, state: &Path, size: [f32; 2]) -> Harness<'static, TinctureApp> {
    harness_with(file, state, false, size)
}

/// Steps the harness (the worker is a real thread) until `done` holds, for at most 30 s.
#[track_caller]
fn wait_for(
    harness: &mut Harness<'_, TinctureApp>,
    what: &str,
    done: impl Fn(&TinctureApp) -> bool,
) {
    wait_for_within(harness, what, Duration::from_secs(30), done);
}

/// [`wait_for`] with a limit of its own: the background pass over a real
/// film (thumbnails, shots, the scrub proxy) runs at a low priority and,
/// beside the rest of the suite on two cores, can take longer.
#[track_caller]
fn wait_for_within(
    harness: &mut Harness<'_, TinctureApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&TinctureApp) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit {
        harness.step();
        if done(harness.state()) {
            // One more pass so the accessibility tree shows the new state.
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "timed out waiting for {what}; error shown: {:?}",
        harness.state().error()
    );
}

/// Waits until frame `index` is on screen and the labels show it.
#[track_caller]
fn wait_for_frame(harness: &mut Harness<'_, TinctureApp>, index: u64) {
    wait_for(harness, &format!("frame {index}"), |app| {
        app.is_settled() && app.shown_frame() == Some(index)
    });
    assert_eq!(harness.state().position(), index);
    harness.get_by_label(&format!("Frame {index} / {FIXTURE_FRAMES}"));
}

#[test]
fn opens_film_and_steps_through_frames() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "opens_film_and_steps_through_frames") else {
        return;
    };
    let mut harness = harness(Some(film), dir.path(), [1000.0, 700.0]);
    wait_for_frame(&mut harness, 0);

    let media = harness.state().media().expect("film open").clone();
    assert_eq!(
        (media.width, media.height, media.frame_count),
        (160, 120, FIXTURE_FRAMES)
    );
    assert_eq!(media.pixel_format, "gray");
    harness.get_by_label("00:00:00:00");
    harness.get_by_label("fixture.mkv");
    harness.get_by_label("160×120");
    harness.get_by_label("24 fps");
    harness.get_by_label("30 frames");
    assert!(harness.state().error().is_none());

    // The picture is on screen: the viewer is not one flat colour.
    let image = harness.render().expect("render");
    let (w, h) = image.dimensions();
    let row: Vec<u8> = (w / 4..3 * w / 4)
        .map(|x| image.get_pixel(x, h / 2)[0])
        .collect();
    let (min, max) = (row.iter().min().copied(), row.iter().max().copied());
    assert!(
        max.zip(min).is_some_and(|(max, min)| max - min > 40),
        "viewer looks blank: {min:?}..{max:?}"
    );

    harness.key_press(egui::Key::ArrowRight);
    wait_for_frame(&mut harness, 1);
    harness.get_by_label("00:00:00:01");

    harness.key_press(egui::Key::End);
    wait_for_frame(&mut harness, FIXTURE_FRAMES - 1);
    harness.get_by_label("00:00:01:05");

    // Right at the end stays at the end.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    wait_for_frame(&mut harness, FIXTURE_FRAMES - 1);

    harness.key_press(egui::Key::ArrowLeft);
    wait_for_frame(&mut harness, FIXTURE_FRAMES - 2);

    harness.key_press(egui::Key::Home);
    wait_for_frame(&mut harness, 0);

    // The scrub slider, set the way assistive technology sets it.
    harness
        .get_by_label("Frame position")
        .set_value_accesskit(12.0);
    wait_for_frame(&mut harness, 12);
    harness.get_by_label("00:00:00:12");

    // A press on the right end of the slider jumps to the last frame.
    let rail = harness.get_by_label("Frame position").rect();
    let end = egui::pos2(rail.right() - 1.0, rail.center().y);
    harness.drag_at(end);
    harness.step();
    harness.drop_at(end);
    wait_for_frame(&mut harness, FIXTURE_FRAMES - 1);

    // Settles (no endless repaints) once the background pass over the film
    // has sent its last message, and every control has an accessible name.
    wait_for_within(
        &mut harness,
        "the background pass",
        Duration::from_secs(180),
        |app| app.shots_detected(),
    );
    harness.run();
}

#[test]
fn dragging_the_slider_shows_the_frame_under_the_pointer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "dragging_the_slider_shows_the_frame_under_the_pointer",
    ) else {
        return;
    };
    let mut harness = harness(Some(film), dir.path(), [1000.0, 700.0]);
    wait_for_frame(&mut harness, 0);
    let rail = harness.get_by_label("Frame position").rect();
    // Drag from the left end to the middle in small steps, like a hand would.
    harness.drag_at(egui::pos2(rail.left() + 1.0, rail.center().y));
    harness.step();
    for i in 1..=10 {
        let x = rail.left() + rail.width() * 0.5 * i as f32 / 10.0;
        harness.hover_at(egui::pos2(x, rail.center().y));
        harness.step();
    }
    harness.drop_at(egui::pos2(rail.center().x, rail.center().y));
    harness.step();
    let position = harness.state().position();
    assert!(
        (13..=16).contains(&position),
        "middle of 30 frames, got {position}"
    );
    wait_for_frame(&mut harness, position);
}

#[test]
fn a_long_gop_film_gets_a_scrub_proxy_and_jumps_show_the_right_frames() {
    let dir = tempfile::tempdir().expect("temp dir");
    let frames = tincture_media::PROXY_CHUNK + 30;
    // One keyframe for the whole film: every jump would decode from frame 0.
    let film = dir.path().join("long-gop.mkv");
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=160x120:rate=24")
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", "gray"])
        .args(["-c:v", "ffv1", "-g", &frames.to_string()])
        .arg(&film)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        skip_or_fail(
            "a_long_gop_film_gets_a_scrub_proxy",
            format!("the ffmpeg CLI failed: {made:?}"),
        );
        return;
    }
    let state = dir.path().join("state");
    let mut harness = harness(Some(film.clone()), &state, [1000.0, 700.0]);
    wait_for(&mut harness, "frame 0", |app| app.shown_frame() == Some(0));
    let reader = tincture_media::VideoReader::open(&film).expect("the film opens");
    assert!(
        reader.longest_keyframe_run() > tincture_media::PROXY_MIN_RUN,
        "the fixture is long-GOP"
    );
    let proxy = tincture_media::ScrubProxy::for_film(
        &StateDir::at(state.clone())
            .proxies()
            .expect("proxies on")
            .root,
        &reader,
    )
    .expect("a long-GOP film gets a proxy");
    let start = Instant::now();
    while proxy.built_frames() < frames {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the proxy was not built in a minute ({} of {frames} frames)",
            proxy.built_frames()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        proxy.dir().starts_with(&state),
        "proxies live in the state folder"
    );
    for target in [frames - 3, 40, tincture_media::PROXY_CHUNK + 1, 7] {
        harness
            .get_by_label("Frame position")
            .set_value_accesskit(target as f64);
        wait_for(&mut harness, &format!("frame {target}"), |app| {
            app.is_settled() && app.shown_frame() == Some(target)
        });
        harness.get_by_label(&format!("Frame {target} / {frames}"));
    }
    assert!(harness.state().error().is_none());
}

#[test]
fn opening_a_text_file_shows_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        "Reel 3: scratches at 00:01:12:04.\nColour reference: none.\n",
    )
    .expect("write");
    let mut harness = harness(Some(notes), dir.path(), [1000.0, 700.0]);
    wait_for(&mut harness, "the open to fail", |app| {
        app.error().is_some()
    });

    let error = harness.state().error().expect("error").to_owned();
    assert!(error.contains("notes.txt"), "{error}");
    assert!(harness.state().media().is_none());
    harness.get_by_label_contains("not a readable video file");
    harness.get_by_label("No film open");
    assert!(harness.query_by_label_contains("Frame 0 /").is_none());
    // The status bar says the workers are idle.
    harness.get_by_label("Workers idle");
    harness.get_by_label("Queue 0");

    // The window keeps working: a film opened afterwards replaces the error.
    if let Some(film) = fixture_or_skip(
        dir.path(),
        "opening_a_text_file_shows_an_error (second half)",
    ) {
        harness.state_mut().open(film);
        wait_for_frame(&mut harness, 0);
        assert!(harness.state().error().is_none());
        // The banner is gone; the status bar keeps a record of it.
        let mentions: Vec<String> = harness
            .query_all_by_label_contains("not a readable video file")
            .map(|node| {
                node.value()
                    .or_else(|| node.accesskit_node().label())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(mentions.len(), 1, "{mentions:?}");
        assert!(mentions[0].starts_with("Last error: "), "{mentions:?}");
    }
}

#[test]
fn missing_file_shows_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness(
        Some(dir.path().join("no-such-reel.mkv")),
        dir.path(),
        [800.0, 600.0],
    );
    wait_for(&mut harness, "the open to fail", |app| {
        app.error().is_some()
    });
    harness.get_by_label_contains("no-such-reel.mkv: cannot read the file");
}

#[test]
fn empty_window_without_a_film() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness(None, dir.path(), [800.0, 600.0]);
    harness.step();
    harness.get_by_label("No film open");
    harness.get_by_label("File");
    // The ONNX Runtime check reports either way, without taking the window down.
    wait_for(&mut harness, "the ONNX Runtime check", |app| {
        !matches!(app.runtime_status(), tincture_app::RuntimeStatus::Checking)
    });
    match harness.state().runtime_status() {
        tincture_app::RuntimeStatus::Ready(version) => {
            harness.get_by_label(&format!("ONNX Runtime {version}"));
        }
        tincture_app::RuntimeStatus::Failed(text) => {
            skip_or_fail(
                "empty_window_without_a_film (its ONNX Runtime half)",
                format!("ONNX Runtime not available here: {text}"),
            );
            harness.get_by_label_contains("ONNX Runtime unavailable");
        }
        tincture_app::RuntimeStatus::Checking => unreachable!(),
    }
}

/// Renders the main window on a real film for the README:
/// `screenshots/tincture-main-window.png` at the workspace root.
#[test]
fn readme_screenshot() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let films = manifest.join("../../../shared/data/video/bw");
    let film = std::fs::read_dir(&films).ok().and_then(|entries| {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("b01") && n.ends_with(".mp4"))
            })
            .collect();
        found.sort();
        found.into_iter().next()
    });
    let Some(film) = film else {
        skip_or_fail(
            "readme_screenshot",
            format!("no b01*.mp4 in {}", films.display()),
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // Shown as an archive holds it at HD: the 4:3 reel pillarboxed in a
    // 1920x1080 10-bit scan.
    let hd = dir.path().join("b01-1080p.mkv");
    if let Err(e) = ffmpeg(&[
        "-i",
        &film.to_string_lossy(),
        "-vf",
        "scale=-2:1080:flags=lanczos,pad=1920:1080:(ow-iw)/2:0,format=gray10le",
        "-c:v",
        "ffv1",
        "-an",
        &hd.to_string_lossy(),
    ]) {
        skip_or_fail("readme_screenshot", e);
        return;
    }
    let mut harness = harness_with(Some(hd), dir.path(), true, [1280.0, 800.0]);
    wait_for(&mut harness, "the first frame", |app| app.is_settled());
    // The timeline as an archivist sees it a moment after opening: all
    // thumbnails made and the shots found.
    wait_until_quiet(&mut harness);
    let count = harness.state().media().expect("film open").frame_count;
    let third = count / 3;
    harness.state_mut().seek(third);
    wait_for(&mut harness, "the frame a third in", |app| {
        app.is_settled() && app.shown_frame() == Some(third)
    });
    wait_for(&mut harness, "the ONNX Runtime check", |app| {
        !matches!(app.runtime_status(), tincture_app::RuntimeStatus::Checking)
    });
    wait_for(&mut harness, "the coloured frame", |app| {
        app.coloured_frame() == Some(third)
    });
    harness.get_by_label(&format!("Frame {third} / {count}"));
    harness.run();

    let image = harness.render().expect("render");
    let out = manifest.join("../../screenshots");
    std::fs::create_dir_all(&out).expect("screenshots folder");
    let path = out.join("tincture-main-window.png");
    image.save(&path).expect("save screenshot");
    println!("wrote {}", path.display());
}

/// Steps until the project is open.
#[track_caller]
fn wait_for_project(harness: &mut Harness<'_, TinctureApp>) {
    wait_for(harness, "the project", |app| {
        app.is_settled() && app.document().is_some()
    });
}

#[test]
fn keyframes_save_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "keyframes_save_close_and_reopen") else {
        return;
    };
    let state = dir.path().join("state");
    let mut harness = harness(Some(film.clone()), &state, [1000.0, 700.0]);
    wait_for_project(&mut harness);
    // Scrub with keys: Shift+Right moves ten frames.
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowRight);
    wait_for_frame(&mut harness, 10);
    harness.get_by_label("Add keyframe here").click();
    harness.run_steps(4);
    // Listed under Keyframes.
    harness.get_by_label("Frame 10");
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .keyframes[0]
            .frame,
        10
    );
    // Undo and redo through the Edit menu's shortcuts.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .keyframes
            .is_empty()
    );
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    harness.step();
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .keyframes
            .len(),
        1
    );

    let project = dir.path().join("reel.tincture.json");
    harness.state_mut().save(Some(project.clone()));
    // The file is written on the project I/O thread; the window goes on meanwhile.
    assert!(harness.state().is_saving());
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    assert!(harness.state().error().is_none());
    let doc = harness.state().document().expect("project");
    assert!(!doc.is_dirty());
    assert_eq!(doc.path(), Some(project.as_path()));
    harness.state_mut().close();
    harness.step();
    assert!(harness.state().document().is_none());
    harness.get_by_label("No film open");

    // Reopen: the keyframe is back, and listed.
    harness.state_mut().open_any(project.clone());
    wait_for_project(&mut harness);
    let doc = harness.state().document().expect("project");
    assert_eq!(doc.project().keyframes[0].frame, 10);
    assert_eq!(doc.path(), Some(project.as_path()));
    harness.run_steps(4);
    harness.get_by_label("Frame 10");
    // It is in File > Recent.
    assert_eq!(StateDir::at(state).recent()[0], project);
}

#[test]
fn a_killed_session_is_recovered_from_its_autosave() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "a_killed_session_is_recovered_from_its_autosave",
    ) else {
        return;
    };
    let state = dir.path().join("state");
    {
        let mut harness = harness(Some(film.clone()), &state, [1000.0, 700.0]);
        wait_for_project(&mut harness);
        harness.state_mut().seek(7);
        wait_for_frame(&mut harness, 7);
        harness.state_mut().add_keyframe_here();
        // A structural change is autosaved at once, on the autosave thread.
        wait_for(&mut harness, "the autosave", |app| {
            app.document()
                .is_some_and(|d| d.project().keyframes.len() == 1)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while StateDir::at(state.clone()).recovery().is_none() && Instant::now() < deadline {
            harness.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        // Dropped without on_exit: as if the process were killed.
    }
    let mut harness = harness(None, &state, [1000.0, 700.0]);
    harness.step();
    harness.get_by_label_contains("did not close cleanly");
    harness.get_by_label("Recover").click();
    wait_for_project(&mut harness);
    let doc = harness.state().document().expect("recovered project");
    assert_eq!(doc.project().keyframes[0].frame, 7);
    assert!(doc.is_dirty(), "recovered work is not saved yet");
    assert!(harness.state().recovery().is_none());
}

#[test]
fn a_project_whose_film_moved_asks_to_relink() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "a_project_whose_film_moved_asks_to_relink")
    else {
        return;
    };
    let state = dir.path().join("state");
    let project = dir.path().join("reel.tincture.json");
    {
        let mut harness = harness(Some(film.clone()), &state, [1000.0, 700.0]);
        wait_for_project(&mut harness);
        harness.state_mut().save(Some(project.clone()));
        wait_for(&mut harness, "the save", |app| !app.is_saving());
    }
    let moved = dir.path().join("moved.mkv");
    std::fs::rename(&film, &moved).expect("moves");
    let mut harness = harness(Some(project.clone()), &state, [1000.0, 700.0]);
    wait_for(&mut harness, "the relink offer", |app| {
        app.relink_needed().is_some()
    });
    harness.get_by_label_contains("is not there");
    harness.get_by_label("Locate film…");
    // What the dialog would return: the moved film, matched by its fingerprint.
    harness
        .state_mut()
        .open_project(project, Some(moved.clone()));
    wait_for_project(&mut harness);
    assert!(harness.state().relink_needed().is_none());
    assert_eq!(harness.state().media().expect("film").path, moved);
}

#[test]
fn a_project_from_a_future_version_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let project = dir.path().join("future.tincture.json");
    std::fs::write(&project, br#"{"version": 99, "source": {}}"#).expect("writes");
    let mut harness = harness(Some(project), &dir.path().join("state"), [1000.0, 700.0]);
    wait_for(&mut harness, "the error", |app| app.error().is_some());
    let error = harness.state().error().expect("error").to_owned();
    assert!(
        error.contains("future.tincture.json") && error.contains("99"),
        "{error}"
    );
    // The window is still usable.
    harness.get_by_label("No film open");
}

#[test]
fn the_after_side_is_coloured_and_stale_while_colouring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "the_after_side_is_coloured_and_stale_while_colouring",
    ) else {
        return;
    };
    let mut harness = harness_with(Some(film), &dir.path().join("state"), true, [1000.0, 700.0]);
    wait_for_project(&mut harness);
    wait_for(&mut harness, "the coloured frame 0", |app| {
        app.coloured_frame() == Some(0)
    });
    harness.state_mut().seek(5);
    harness.step();
    // Until frame 5 is coloured, frame 0's colour stays on screen.
    if harness.state().coloured_frame() == Some(0) {
        harness.get_by_label_contains("stale");
    }
    wait_for(&mut harness, "the coloured frame 5", |app| {
        app.coloured_frame() == Some(5)
    });
    harness.run();
}

// ---- File > Export… -------------------------------------------------------

/// Frames of the export fixture: small, so exports take a second or two.
const EXPORT_FRAMES: u64 = 24;

/// The luma planes of every frame of `path`, decoded with Tincture's reader.
fn luma_planes(path: &Path) -> Vec<tincture_core::frame::Plane> {
    let mut reader = tincture_media::VideoReader::open(path)
        .unwrap_or_else(|e| panic!("{} does not open: {e}", path.display()));
    let mut planes = Vec::new();
    while let Some(f) = reader
        .next_frame()
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
    {
        planes.push(f.frame.y);
    }
    planes
}

/// Frames ffprobe counts in `path`'s video stream (an independent reader).
fn ffprobe_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe said {text:?}"))
}

/// File > Export…, then FFV1 and `output` as the destination, as a user
/// would with the keyboard and mouse (the text field instead of the file dialog).
fn fill_export_dialog(harness: &mut Harness<'_, TinctureApp>, output: &Path) {
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export…").click();
    harness.run_steps(2);
    assert!(harness.state().exporter().is_dialog_open());
    harness.get_by_label("FFV1 (MKV)").click();
    harness.step();
    harness
        .get_by_label("Destination")
        .set_text_value_accesskit(output.to_str().expect("utf-8 path"));
    harness.run_steps(2);
    assert_eq!(
        harness.get_by_label("Destination").value().as_deref(),
        output.to_str()
    );
}

/// Unticks "Use the model's colour" in Properties, so exports need no model
/// or ONNX Runtime (and run faster); the export path is otherwise the same.
fn model_off(harness: &mut Harness<'_, TinctureApp>) {
    harness.get_by_label("Use the model's colour").click();
    harness.run_steps(2);
    let doc = harness.state().document().expect("project");
    assert!(!doc.project().defaults.model_prior);
}

/// Clicks the Export window's Export button.
fn click_export(harness: &mut Harness<'_, TinctureApp>) {
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Export")
        .click();
    harness.step();
}

/// Steps until no export runs, for at most 60 s.
#[track_caller]
fn wait_for_export(harness: &mut Harness<'_, TinctureApp>) {
    wait_for_export_within(harness, Duration::from_secs(60));
}

/// [`wait_for_export`] with a limit of its own (exports of HD and 2K films).
#[track_caller]
fn wait_for_export_within(harness: &mut Harness<'_, TinctureApp>, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        harness.step();
        if !harness.state().exporter().is_running() {
            harness.run_steps(2);
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "timed out waiting for the export; error shown: {:?}",
        harness.state().error()
    );
}

/// Asserts that `output` holds `film`'s frames `first..` with bit-exact luma,
/// `frames` of them, by Tincture's reader and by ffprobe.
#[track_caller]
fn assert_export_luma(film: &Path, output: &Path, first: usize, frames: u64) {
    let source = luma_planes(film);
    let out = luma_planes(output);
    assert_eq!(out.len() as u64, frames, "frames in {}", output.display());
    assert_eq!(ffprobe_frames(output), frames, "ffprobe's count");
    for (i, y) in out.iter().enumerate() {
        assert!(
            *y == source[first + i],
            "frame {}: luma differs from the film's",
            first + i
        );
    }
}

#[test]
fn export_to_ffv1_through_the_dialog() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = make_clip(dir.path(), "reel.mkv", "64x48", EXPORT_FRAMES)
        .inspect_err(|e| skip_or_fail("export_to_ffv1_through_the_dialog", e))
        .ok()
    else {
        return;
    };
    let mut harness = harness(
        Some(film.clone()),
        &dir.path().join("state"),
        [1100.0, 760.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    let output = dir.path().join("out").join("reel-colour.mkv");
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    fill_export_dialog(&mut harness, &output);
    // The destination proposed at first was beside the film, named after it.
    click_export(&mut harness);
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    assert!(harness.state().exporter().is_running());
    // The window stays usable while the export runs.
    harness.key_press(egui::Key::ArrowRight);
    wait_for(&mut harness, "frame 1 while exporting", |app| {
        app.is_settled() && app.shown_frame() == Some(1)
    });
    wait_for_export(&mut harness);

    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    let notice = harness.state().exporter().notice().cloned();
    assert_eq!(
        notice,
        Some(tincture_app::export::Notice::Completed {
            path: output.clone(),
            frames: EXPORT_FRAMES,
            resumed_from: None,
        })
    );
    harness.get_by_label(&format!(
        "Exported {EXPORT_FRAMES} frames to {}",
        output.display()
    ));
    harness.get_by_label("Show in folder");
    assert_export_luma(&film, &output, 0, EXPORT_FRAMES);
    assert!(
        output
            .with_file_name("reel-colour.mkv.metrics.json")
            .exists(),
        "the metrics sidecar"
    );
    // The timeline's flicker graph has every frame after the first.
    let flicker: Vec<(u64, f64)> = harness
        .state()
        .exporter()
        .flicker(Some(&film))
        .expect("measured")
        .samples()
        .map(|(f, s)| (f, s.warp))
        .collect();
    let frames: Vec<u64> = flicker.iter().map(|p| p.0).collect();
    assert_eq!(frames, (1..EXPORT_FRAMES).collect::<Vec<_>>());
    assert!(flicker.iter().all(|p| p.1.is_finite() && p.1 >= 0.0));

    harness.get_by_label("Dismiss").click();
    harness.run();
    assert!(harness.state().exporter().notice().is_none());
}

#[test]
fn a_cancelled_export_keeps_its_partial_file_and_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Long enough that Cancel lands midway (a frame takes tens of milliseconds).
    let frames = 60;
    let Some(film) = make_clip(dir.path(), "reel.mkv", "160x120", frames)
        .inspect_err(|e| skip_or_fail("a_cancelled_export_keeps_its_partial_file_and_resumes", e))
        .ok()
    else {
        return;
    };
    let mut harness = harness(
        Some(film.clone()),
        &dir.path().join("state"),
        [1100.0, 760.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    let output = dir.path().join("reel-colour.mkv");
    fill_export_dialog(&mut harness, &output);
    click_export(&mut harness);
    wait_for(&mut harness, "some progress", |app| {
        app.exporter().progress().is_some_and(|p| p.done >= 2)
    });
    harness.get_by_label_contains(&format!("/ {frames} frames"));
    harness.get_by_label("Cancel export").click();
    harness.step();
    wait_for_export(&mut harness);
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    let Some(tincture_app::export::Notice::Cancelled {
        partial,
        frames: kept,
        resume_from,
    }) = harness.state().exporter().notice().cloned()
    else {
        panic!(
            "expected a cancelled export, got {:?}",
            harness.state().exporter().notice()
        );
    };
    println!("cancelled after {kept} of {frames} frames");
    assert!((2..frames).contains(&kept), "kept {kept} of {frames}");
    assert_eq!(resume_from, kept);
    assert_eq!(partial, tincture_engine::render::partial_path(&output));
    assert!(!output.exists(), "no complete-looking output yet");
    harness.get_by_label_contains("was kept: export again with the same settings");
    // The partial file is a valid film of the frames written so far.
    assert_export_luma(&film, &partial, 0, kept);

    // Export again with the same settings: it resumes.
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export…").click();
    harness.run_steps(2);
    click_export(&mut harness);
    wait_for(&mut harness, "the resumed export to start", |app| {
        app.exporter().start().is_some() || !app.exporter().is_running()
    });
    assert_eq!(
        harness.state().exporter().start(),
        Some(&Start::Resumed { from: kept, kept }),
        "still running, resumed where it stopped"
    );
    harness.get_by_label(&format!("Resuming from frame {kept}"));
    wait_for_export(&mut harness);
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    assert_eq!(
        harness.state().exporter().notice().cloned(),
        Some(tincture_app::export::Notice::Completed {
            path: output.clone(),
            frames,
            resumed_from: Some(kept),
        })
    );
    harness.get_by_label_contains(&format!("(resumed from frame {kept})"));
    assert!(!partial.exists());
    assert_export_luma(&film, &output, 0, frames);
    // The graph holds both runs: all but the first frame of each.
    let flicker = harness
        .state()
        .exporter()
        .flicker(Some(&film))
        .map_or(0, tincture_app::flicker::Flicker::len) as u64;
    assert_eq!(flicker, frames - 2);
}

/// `capget`/`capset`'s header (`_LINUX_CAPABILITY_VERSION_3`, this thread).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `capget`/`capset`'s data: capabilities 0-31, then 32-63.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;
/// The capability that lets root write where the permissions say no.
const CAP_DAC_OVERRIDE: u32 = 1;

/// This thread's capabilities.
fn thread_caps() -> std::io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a valid header and room for version 3's two entries.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if rc == 0 {
        Ok(data)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets this thread's capabilities (lowering the effective set needs no privilege).
fn set_thread_caps(data: &[CapData; 2]) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset with a valid header and version 3's two entries.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// While alive, the test's thread runs without `CAP_DAC_OVERRIDE` in its
/// effective set, so root too is refused a folder of mode 0o555; dropping
/// it gives the capability back. Capabilities are per thread, and the app
/// checks the export folder on the thread that runs the harness, this one.
struct WithoutDacOverride([CapData; 2]);

impl Drop for WithoutDacOverride {
    fn drop(&mut self) {
        let _ = set_thread_caps(&self.0);
    }
}

/// Makes `dir` a folder the test may not write to, with no privilege: mode
/// 0o555; where that does not stop writes (root, whose `CAP_DAC_OVERRIDE`
/// passes over permissions), also without that capability on this thread.
/// Returns the guard that gives it back, or why the folder stays writable.
fn make_unwritable(dir: &Path) -> Result<Option<WithoutDacOverride>, String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir(dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| e.to_string())?;
    let writable = |d: &Path| {
        let probe = d.join("probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(probe);
        ok
    };
    if !writable(dir) {
        return Ok(None);
    }
    let caps = thread_caps().map_err(|e| format!("chmod does not stop writes; capget: {e}"))?;
    let mut lowered = caps;
    lowered[0].effective &= !(1 << CAP_DAC_OVERRIDE);
    set_thread_caps(&lowered).map_err(|e| format!("chmod does not stop writes; capset: {e}"))?;
    let guard = WithoutDacOverride(caps);
    if writable(dir) {
        return Err("a folder of mode 0o555 is writable even without CAP_DAC_OVERRIDE".into());
    }
    Ok(Some(guard))
}

#[test]
fn an_unwritable_export_folder_is_reported_and_the_app_keeps_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = make_clip(dir.path(), "reel.mkv", "64x48", 12)
        .inspect_err(|e| {
            skip_or_fail(
                "an_unwritable_export_folder_is_reported_and_the_app_keeps_running",
                e,
            );
        })
        .ok()
    else {
        return;
    };
    let mut harness = harness(Some(film), &dir.path().join("state"), [1100.0, 760.0]);
    wait_for_project(&mut harness);
    model_off(&mut harness);

    // A folder that does not exist.
    let missing = dir.path().join("no-such-folder");
    fill_export_dialog(&mut harness, &missing.join("out.mkv"));
    click_export(&mut harness);
    harness.run_steps(2);
    let error = harness.state().error().expect("an error").to_owned();
    assert!(
        error.contains(&format!("the folder {} does not exist", missing.display())),
        "{error}"
    );
    harness.get_by_label_contains("does not exist");
    assert!(!harness.state().exporter().is_running());
    harness.get_by_label("Dismiss").click();
    harness.step();

    // A folder that cannot be written to.
    let locked = dir.path().join("read-only");
    let guard = match make_unwritable(&locked) {
        Ok(g) => g,
        Err(reason) => {
            skip_or_fail(
                "an_unwritable_export_folder_is_reported_and_the_app_keeps_running \
                 (its read-only half)",
                reason,
            );
            return;
        }
    };
    let output = locked.join("out.mkv");
    harness
        .get_by_label("Destination")
        .set_text_value_accesskit(output.to_str().expect("utf-8"));
    harness.run_steps(2);
    click_export(&mut harness);
    harness.run_steps(2);
    let error = harness.state().error().expect("an error").to_owned();
    assert!(
        error.contains(&format!("the folder {} is not writable", locked.display())),
        "{error}"
    );
    harness.get_by_label_contains("is not writable");
    assert!(!harness.state().exporter().is_running());
    assert!(!output.exists());
    // The app keeps running: scrubbing works, and the window is still there.
    harness.key_press(egui::Key::End);
    wait_for(&mut harness, "the last frame", |app| {
        app.is_settled() && app.shown_frame() == Some(11)
    });
    assert!(harness.state().exporter().is_dialog_open());
    drop(guard);
}

// ---- A full disk ------------------------------------------------------------

/// An export that fills the disk midway, started from the Export window:
/// the banner says the disk is full and names the partial file it kept,
/// which is a valid film whose frames have the source's luma, bit for bit;
/// and the window goes on working.
#[test]
fn a_full_disk_during_an_export_keeps_a_valid_partial_and_says_so() {
    const TEST: &str = "a_full_disk_during_an_export_keeps_a_valid_partial_and_says_so";
    let dir = tempfile::tempdir().expect("temp dir");
    let small = dir.path().join("small-disk");
    // A 1 MB disk: a tmpfs, or this test again in a child process that may
    // not write files past 1 MB (see `SmallDisk`). Declared before the
    // harness, so it unmounts after the app has let go.
    let Some(disk) = SmallDisk::make(&small, 1 << 20, TEST) else {
        return;
    };
    // Noisy gray 320x240 is about 70 kB a frame in FFV1: 48 frames need
    // over 3 MB, so a 1 MB disk fills a few frames in.
    let frames = 48;
    let film = make_clip_from(
        dir.path(),
        "reel.mkv",
        "testsrc2=size=320x240:rate=24,noise=alls=40:allf=t",
        frames,
    );
    let Some(film) = film.inspect_err(|e| skip_or_fail(TEST, e)).ok() else {
        return;
    };
    let mut harness = harness(
        Some(film.clone()),
        &dir.path().join("state"),
        [1100.0, 760.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    let output = small.join("reel-colour.mkv");
    fill_export_dialog(&mut harness, &output);
    let full = disk.fill_from_now();
    click_export(&mut harness);
    wait_for_export(&mut harness);
    drop(full);

    let error = harness
        .state()
        .error()
        .expect("the banner reports the full disk")
        .to_owned();
    let partial = tincture_engine::render::partial_path(&output);
    assert!(error.contains(disk.failure_words()), "{error}");
    assert!(
        error.contains(&format!("the partial file {} with", partial.display())),
        "names the kept partial file: {error}"
    );
    harness.get_by_label_contains(disk.failure_words());
    assert!(
        harness.state().exporter().notice().is_none(),
        "no success notice"
    );
    assert!(!output.exists(), "no complete-looking output");
    // The kept partial is a valid film of the frames written before the disk filled.
    let kept = luma_planes(&partial).len() as u64;
    println!("the disk filled after {kept} of {frames} frames");
    assert!((1..frames).contains(&kept), "kept {kept} of {frames}");
    assert!(error.contains(&format!("with {kept} frames")), "{error}");
    assert_export_luma(&film, &partial, 0, kept);

    // The window keeps working: scrub to the end and back, then dismiss the banner.
    harness.key_press(egui::Key::End);
    wait_for(&mut harness, "the last frame", |app| {
        app.is_settled() && app.shown_frame() == Some(frames - 1)
    });
    harness.key_press(egui::Key::ArrowLeft);
    wait_for(&mut harness, "the frame before it", |app| {
        app.is_settled() && app.shown_frame() == Some(frames - 2)
    });
    harness.get_by_label("Dismiss").click();
    harness.step();
    assert!(harness.state().error().is_none());
}

// ---- Snapshots --------------------------------------------------------------

/// Tolerance for snapshots: software renderers (lavapipe, llvmpipe) and GPUs
/// anti-alias text a shade apart, on a few hundred pixels at most; a moved
/// widget or a changed label differs on thousands.
fn snapshot_options() -> egui_kittest::SnapshotOptions {
    egui_kittest::SnapshotOptions::new()
        .threshold(2.0)
        .max_failed_pixels(600)
}

/// Thumbnails the timeline asks for (24, or one per frame of a shorter film).
const TIMELINE_THUMBNAILS: usize = 24;

/// Waits until everything the background threads send for a newly opened
/// film has arrived (thumbnails, shots, the ONNX Runtime check), then takes
/// the pointer away (no hover, no tooltip).
#[track_caller]
fn wait_until_quiet(harness: &mut Harness<'_, TinctureApp>) {
    wait_for_within(
        harness,
        "the thumbnails and shots",
        Duration::from_secs(180),
        |app| app.thumbnail_count() == TIMELINE_THUMBNAILS && app.shots_detected(),
    );
    wait_for(harness, "the ONNX Runtime check", |app| {
        !matches!(app.runtime_status(), tincture_app::RuntimeStatus::Checking)
    });
    harness.remove_cursor();
    harness.run_steps(2);
}

/// Masks what differs between machines and runs: the ONNX Runtime status
/// (a version, or why it is missing) and the note of the last save (a
/// temporary path). An untouched project is never autosaved, so no
/// autosave note comes and goes.
fn mask_machine_specific(harness: &mut Harness<'_, TinctureApp>) {
    let runtime: Vec<egui::Rect> = harness
        .query_all_by_label_contains("ONNX Runtime")
        .map(|node| node.rect())
        .collect();
    assert_eq!(runtime.len(), 1, "one runtime status in the status bar");
    let saved: Vec<egui::Rect> = harness
        .query_all_by_label_contains("Saved /")
        .map(|node| node.rect())
        .collect();
    assert!(
        harness.query_by_label_contains("Autosaved to").is_none(),
        "no autosave of an untouched project"
    );
    for rect in runtime.into_iter().chain(saved) {
        harness.mask(rect.expand(2.0));
    }
}

#[test]
fn snapshot_main_window_with_a_film_in_split_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "snapshot_main_window_with_a_film_in_split_view")
    else {
        return;
    };
    let mut harness = harness(Some(film), &dir.path().join("state"), [1000.0, 700.0]);
    wait_for_project(&mut harness);
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowRight);
    wait_for_frame(&mut harness, 10);
    harness.key_press(egui::Key::ArrowRight);
    wait_for_frame(&mut harness, 11);
    assert_eq!(
        harness.state().view().mode,
        tincture_app::viewer::SplitMode::Wipe
    );
    wait_until_quiet(&mut harness);
    harness.run();
    mask_machine_specific(&mut harness);
    harness.snapshot_options("main_window_split_view", &snapshot_options());
}

#[test]
fn snapshot_export_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "snapshot_export_window") else {
        return;
    };
    let mut harness = harness(Some(film), &dir.path().join("state"), [1000.0, 700.0]);
    wait_for_frame(&mut harness, 0);
    wait_until_quiet(&mut harness);
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export…").click();
    harness.run_steps(2);
    assert!(harness.state().exporter().is_dialog_open());
    // A destination that is the same on every machine (the proposed one is
    // beside the film, in a temporary folder).
    harness
        .get_by_label("Destination")
        .set_text_value_accesskit("/films/reel-3-colour.mkv");
    harness.run_steps(2);
    // A click beside the field takes the focus (and its blinking cursor) away.
    harness.get_by_label("Format").click();
    harness.remove_cursor();
    harness.run();
    assert_eq!(
        harness.get_by_label("Destination").value().as_deref(),
        Some("/films/reel-3-colour.mkv")
    );
    mask_machine_specific(&mut harness);
    harness.snapshot_options("export_window", &snapshot_options());
}

#[test]
fn snapshot_export_progress_panel() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Long enough to be caught running (a frame takes tens of milliseconds).
    let frames = 240;
    let Some(film) = make_clip(dir.path(), "reel.mkv", "160x120", frames)
        .inspect_err(|e| skip_or_fail("snapshot_export_progress_panel", e))
        .ok()
    else {
        return;
    };
    let mut harness = harness(Some(film), &dir.path().join("state"), [1100.0, 760.0]);
    wait_for_project(&mut harness);
    wait_until_quiet(&mut harness);
    model_off(&mut harness);
    // Saved, so no autosave (and its note) can land mid-test.
    harness
        .state_mut()
        .save(Some(dir.path().join("reel.tincture.json")));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    assert!(harness.state().error().is_none());
    let output = dir.path().join("reel-colour.mkv");
    fill_export_dialog(&mut harness, &output);
    click_export(&mut harness);
    wait_for(&mut harness, "the export to be under way", |app| {
        app.exporter().start().is_some()
            && app.exporter().progress().is_some_and(|p| p.done >= 2)
            && app
                .exporter()
                .flicker(app.film())
                .is_some_and(|f| f.len() >= 2)
    });
    harness.remove_cursor();
    harness.run_steps(2);
    assert!(
        harness.state().exporter().is_running(),
        "caught the export running"
    );
    harness.get_by_label_contains(&format!("/ {frames} frames"));
    // Mask what moves with the export: its progress bar, time left and
    // Cancel button (which follows the time left), and the flicker graph
    // filling in above them.
    let name = harness.get_by_label("Exporting reel-colour.mkv").rect();
    let cancel = harness.get_by_label("Cancel export").rect();
    let slider = harness.get_by_label("Frame position").rect();
    let (top, bottom) = (
        name.top().min(cancel.top()) - 3.0,
        name.bottom().max(cancel.bottom()) + 3.0,
    );
    let row = egui::Rect::from_min_max(
        egui::pos2(name.right() + 2.0, top),
        egui::pos2(1100.0, bottom),
    );
    // The graph lies between the thumbnail strip (66 px under the slider's row) and the panel.
    let graph_top = slider.bottom() + 4.0 + 66.0;
    let graph = egui::Rect::from_min_max(egui::pos2(0.0, graph_top), egui::pos2(1100.0, top - 4.0));
    // And the flicker summary, which counts the frames measured so far.
    let summary: Vec<egui::Rect> = ["Clip: mean", "Shot: mean", "Since the last change"]
        .iter()
        .flat_map(|text| {
            harness
                .query_all_by_label_contains(text)
                .map(|node| node.rect())
                .collect::<Vec<_>>()
        })
        .collect();
    mask_machine_specific(&mut harness);
    harness.mask(row);
    harness.mask(graph);
    for rect in summary {
        harness.mask(rect.expand(2.0));
    }
    harness.snapshot_options("export_progress_panel", &snapshot_options());

    harness.get_by_label("Cancel export").click();
    harness.step();
    wait_for_export(&mut harness);
}

// ---- Painting hints ---------------------------------------------------------

/// The two colours of the painting fixture: its left and right halves, a
/// light warm one and a dark blue, apart in luma as the objects of a real
/// scene are (colours of equal luma cannot be told apart from a gray film).
const LEFT_COLOUR: [u8; 3] = [0xe0, 0xa0, 0x70];
const RIGHT_COLOUR: [u8; 3] = [0x20, 0x38, 0x78];

/// Runs the ffmpeg tool with `args`, or says why it failed.
fn ffmpeg(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .map_err(|e| format!("the ffmpeg CLI did not run: {e}"))?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A colour film of two flat halves (the truth) and its luma alone as a
/// gray film (what the archivist colours), both limited-range FFV1.
fn halves(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let hex = |c: [u8; 3]| format!("0x{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    let source = format!(
        "color=c={}:size=160x120:rate=24,drawbox=x=80:y=0:w=80:h=120:color={}:t=fill",
        hex(LEFT_COLOUR),
        hex(RIGHT_COLOUR)
    );
    let truth = dir.join("halves-colour.mkv");
    let film = dir.join("halves.mkv");
    let (t, f) = (truth.to_string_lossy(), film.to_string_lossy());
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-frames:v",
        "12",
        "-pix_fmt",
        "yuv444p",
        "-color_range",
        "tv",
        "-c:v",
        "ffv1",
        &t,
    ])?;
    ffmpeg(&[
        "-i",
        &t,
        "-vf",
        "extractplanes=y",
        "-color_range",
        "tv",
        "-c:v",
        "ffv1",
        &f,
    ])?;
    Ok((truth, film))
}

/// The window on the two-halves film (colour on, the model's off) at frame
/// 4: the truth's path and the harness, or `None` (said why) when the
/// fixture cannot be made.
fn halves_at_frame_4(
    dir: &Path,
    test: &str,
    height: f32,
) -> Option<(PathBuf, Harness<'static, TinctureApp>)> {
    let (truth, film) = halves(dir).inspect_err(|e| skip_or_fail(test, e)).ok()?;
    let mut harness = harness_with(Some(film), &dir.join("state"), true, [1100.0, height]);
    wait_for_project(&mut harness);
    model_off(&mut harness);
    harness.state_mut().seek(4);
    wait_for(&mut harness, "frame 4", |app| {
        app.is_settled() && app.shown_frame() == Some(4)
    });
    Some((truth, harness))
}

/// Drags the brush through film pixels `path` on the viewer.
fn paint_stroke(harness: &mut Harness<'_, TinctureApp>, path: &[[f32; 2]]) {
    let points: Vec<egui::Pos2> = path
        .iter()
        .map(|&[x, y]| {
            harness
                .state()
                .screen_point_of(x, y)
                .expect("the picture is on screen")
        })
        .collect();
    harness.hover_at(points[0]);
    harness.step();
    harness.drag_at(points[0]);
    harness.step();
    for &p in &points[1..] {
        harness.hover_at(p);
        harness.step();
    }
    harness.drop_at(points[points.len() - 1]);
    harness.run_steps(2);
}

/// The strokes of keyframe `frame`, if it is one.
fn strokes_on(app: &TinctureApp, frame: u64) -> Vec<tincture_core::project::Stroke> {
    app.document()
        .and_then(|d| d.project().keyframe(frame))
        .map(|k| k.strokes.clone())
        .unwrap_or_default()
}

/// The true colour of the film's frames: 8-bit RGB, row by row, and the width.
struct Truth(Vec<u8>, usize);

impl Truth {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.1 + x) * 3;
        [self.0[i], self.0[i + 1], self.0[i + 2]]
    }
}

/// Mean CIEDE2000 between the coloured frame and the truth over the
/// square of side `side` centred on (`cx`, `cy`).
fn mean_delta_e(app: &TinctureApp, (cx, cy): (usize, usize), side: usize, truth: &Truth) -> f64 {
    use tincture_core::metrics::{ciede2000, srgb8_to_lab};
    let mut sum = 0.0;
    let mut n = 0;
    for y in cy - side / 2..cy + side / 2 {
        for x in cx - side / 2..cx + side / 2 {
            let Some((_, rgb)) = app.after_rgb_at(x, y) else {
                return f64::INFINITY;
            };
            sum += ciede2000(srgb8_to_lab(rgb), srgb8_to_lab(truth.at(x, y)));
            n += 1;
        }
    }
    sum / f64::from(n)
}

#[test]
fn painted_hints_colour_their_regions_and_undo_and_redo() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A film of two flat halves whose true colours are known.
    let Some((truth, mut harness)) = halves_at_frame_4(
        dir.path(),
        "painted_hints_colour_their_regions_and_undo_and_redo",
        760.0,
    ) else {
        return;
    };
    let film = harness.state().film().expect("the film").to_owned();
    let mut colour = tincture_media::VideoReader::open(&truth).expect("the truth opens");
    let truth_frame = colour.seek(4).expect("frame 4").frame;
    let gray = tincture_media::VideoReader::open(&film)
        .expect("the film opens")
        .seek(4)
        .expect("frame 4")
        .frame;
    assert_eq!(
        gray.y, truth_frame.y,
        "the film is the truth's luma, sample for sample"
    );
    let truth = Truth(
        tincture_core::compose::frame_to_rgb8(&truth_frame),
        truth_frame.width(),
    );
    let (left_truth, right_truth) = (truth.at(40, 60), truth.at(120, 60));

    // Brush, from the panel; the colour as a user would set it with the picker.
    harness.get_by_label("Brush").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().paint_state().tool,
        tincture_app::paint::Tool::Brush
    );
    harness.state_mut().set_hint_colour(left_truth);
    // Starting on the picture, ending past its left edge: clipped to the frame.
    paint_stroke(
        &mut harness,
        &[[40.0, 30.0], [40.0, 60.0], [20.0, 90.0], [-30.0, 90.0]],
    );
    let strokes = strokes_on(harness.state(), 4);
    assert_eq!(strokes.len(), 1, "one stroke, on the frame shown");
    let stroke = &strokes[0];
    assert_eq!(
        stroke.color,
        tincture_core::project::rgb8_to_hex(left_truth)
    );
    assert_eq!(stroke.canvas, [160, 120]);
    assert!(stroke.points.len() >= 3, "{:?}", stroke.points);
    assert!(
        stroke
            .points
            .iter()
            .all(|&[x, y]| (0.0..160.0).contains(&x) && (0.0..120.0).contains(&y)),
        "points outside the frame are clipped: {:?}",
        stroke.points
    );
    assert_eq!(stroke.points.last().map(|p| p[0]), Some(0.0));

    // Undo and redo cover strokes (and the keyframe the stroke made).
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert!(strokes_on(harness.state(), 4).is_empty(), "undone");
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    harness.step();
    assert_eq!(strokes_on(harness.state(), 4), strokes, "redone");

    // The right half gets its own colour with the B key and a second stroke.
    harness.key_press(egui::Key::V);
    harness.key_press(egui::Key::B);
    harness.step();
    harness.state_mut().set_hint_colour(right_truth);
    paint_stroke(&mut harness, &[[120.0, 30.0], [125.0, 60.0], [120.0, 90.0]]);
    assert_eq!(strokes_on(harness.state(), 4).len(), 2);

    // Each half comes out within 3 CIEDE2000 of its true colour, across the
    // half, not only under the strokes.
    let limit = Instant::now() + Duration::from_secs(60);
    let (mut left, mut right) = (f64::INFINITY, f64::INFINITY);
    while Instant::now() < limit {
        harness.step();
        if harness.state().coloured_frame() == Some(4) {
            left = mean_delta_e(harness.state(), (60, 60), 30, &truth);
            right = mean_delta_e(harness.state(), (105, 60), 30, &truth);
            if left < 3.0 && right < 3.0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        left < 3.0 && right < 3.0,
        "mean CIEDE2000 left {left:.2}, right {right:.2} (limit 3); at (60, 60) {:?} against {:?}, \
         at (40, 60) {:?} against {:?}, at (120, 60) {:?} against {:?}",
        harness.state().after_rgb_at(60, 60),
        truth.at(60, 60),
        harness.state().after_rgb_at(40, 60),
        truth.at(40, 60),
        harness.state().after_rgb_at(120, 60),
        truth.at(120, 60),
    );
    // The eraser removes the stroke it passes over, as one undo step.
    harness.get_by_label("Eraser").click();
    harness.run_steps(2);
    paint_stroke(&mut harness, &[[118.0, 55.0], [130.0, 65.0]]);
    let left_only = strokes_on(harness.state(), 4);
    assert_eq!(left_only.len(), 1);
    assert_eq!(
        left_only[0].color,
        tincture_core::project::rgb8_to_hex(left_truth)
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(strokes_on(harness.state(), 4).len(), 2, "erasing is undone");
    assert!(harness.state().error().is_none());
}

// ---- Live flicker -----------------------------------------------------------

#[test]
fn flicker_marks_lead_to_the_frames_that_stand_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A film with a flash at frame 12 (a bright frame, not a cut): the
    // warp error there stands out.
    let source = "testsrc2=size=160x120:rate=24,eq=brightness=0.35:enable='eq(n\\,12)'";
    let film = match make_clip_from(dir.path(), "flash.mkv", source, 24) {
        Ok(film) => film,
        Err(e) => {
            skip_or_fail("flicker_marks_lead_to_the_frames_that_stand_out", e);
            return;
        }
    };
    let mut harness = harness(
        Some(film.clone()),
        &dir.path().join("state"),
        [1100.0, 760.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    harness.get_by_label_contains("Not measured yet");
    let output = dir.path().join("flash-colour.mkv");
    fill_export_dialog(&mut harness, &output);
    click_export(&mut harness);
    wait_for_export(&mut harness);

    // The graph row got values as the export measured its frames.
    let flicker = harness
        .state()
        .exporter()
        .flicker(Some(&film))
        .expect("measured")
        .clone();
    assert_eq!(flicker.len(), 23, "every frame after the first");
    assert!(flicker.samples().all(|(_, s)| s.cdc.is_some()), "CDC too");
    let marked = flicker.marked();
    assert!(
        marked.contains(&12) || marked.contains(&13),
        "the flash stands out: {marked:?}"
    );
    let clip = flicker.summary(0, 23).expect("a summary");
    let worst = clip.worst.0;
    assert!(
        (12..=13).contains(&worst),
        "the flash is the worst frame: {worst}"
    );
    harness.get_by_label_contains("Clip: mean ");

    // N steps to the next marked frame; the button jumps to the worst.
    harness.state_mut().seek(2);
    wait_for(&mut harness, "frame 2", |app| app.shown_frame() == Some(2));
    harness.key_press(egui::Key::N);
    let next = flicker.next_marked(2).expect("a marked frame");
    wait_for(&mut harness, "the next marked frame", |app| {
        app.is_settled() && app.shown_frame() == Some(next)
    });
    harness.state_mut().seek(20);
    wait_for(&mut harness, "frame 20", |app| {
        app.shown_frame() == Some(20)
    });
    harness.get_by_label("Jump to worst").click();
    wait_for(&mut harness, "the worst frame", |app| {
        app.is_settled() && app.shown_frame() == Some(worst)
    });
    // Clicking on the graph near the red mark goes to its frame.
    let graph = harness
        .state()
        .timeline_graph_rect()
        .expect("the graph row is on screen");
    let x = graph.left() + (worst as f32 + 0.5 + 0.3) / 24.0 * graph.width();
    harness.state_mut().seek(0);
    wait_for(&mut harness, "frame 0", |app| app.shown_frame() == Some(0));
    let at = egui::pos2(x, graph.center().y);
    harness.hover_at(at);
    harness.step();
    harness.drag_at(at);
    harness.step();
    harness.drop_at(at);
    wait_for(&mut harness, "the marked frame clicked", |app| {
        app.is_settled() && app.shown_frame() == Some(worst)
    });
    assert!(harness.state().error().is_none());
}

#[test]
fn the_heavy_parallel_work_runs_below_the_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _harness = harness(None, dir.path(), [800.0, 600.0]);
    let Some(window) = tincture_engine::thread_niceness() else {
        skip_or_fail(
            "the_heavy_parallel_work_runs_below_the_window",
            "no thread priorities here",
        );
        return;
    };
    // A job on the parallel work pool (flow, solver, propagation run there).
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::spawn(move || {
        let _ = tx.send((
            tincture_engine::thread_niceness(),
            std::thread::current().name().map(str::to_owned),
        ));
    });
    let (niceness, name) = rx.recv().expect("a pool thread answers");
    assert!(
        name.as_deref()
            .is_some_and(|n| n.starts_with("tincture-work-")),
        "the app built the pool: {name:?}"
    );
    let expected = window.clamp(tincture_engine::BACKGROUND_NICENESS, 19);
    assert_eq!(
        niceness,
        Some(expected),
        "pool threads run at the background priority; the window's thread is at {window}"
    );
}

// ---- References -------------------------------------------------------------

/// Writes a picture of `width` x `height` whose pixel (x, y) is `colour(x, y)`.
fn write_picture(path: &Path, width: u32, height: u32, colour: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb(colour(x, y)))
        .save(path)
        .expect("writes the picture");
}

#[test]
fn pinned_frames_and_reference_photos_steer_the_shot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_, mut harness)) = halves_at_frame_4(
        dir.path(),
        "pinned_frames_and_reference_photos_steer_the_shot",
        900.0,
    ) else {
        return;
    };
    harness.get_by_label("Brush").click();
    harness.run_steps(2);
    harness.state_mut().set_hint_colour(LEFT_COLOUR);
    paint_stroke(&mut harness, &[[40.0, 30.0], [40.0, 90.0]]);
    wait_for(&mut harness, "frame 4 coloured with the hint", |app| {
        app.coloured_frame() == Some(4)
            && app
                .after_rgb_at(40, 60)
                .is_some_and(|(_, c)| c[0] > c[2] + 40)
    });

    // Pin: the coloured frame becomes keyframe 4's reference, as a picture on disk.
    harness.key_press(egui::Key::V);
    harness.run_steps(2);
    harness.get_by_label("Pin this frame as keyframe").click();
    wait_for(&mut harness, "the pinned reference", |app| {
        app.document()
            .and_then(|d| d.project().keyframe(4))
            .is_some_and(|k| k.reference.is_some())
    });
    let reference = harness
        .state()
        .document()
        .and_then(|d| d.project().keyframe(4).and_then(|k| k.reference.clone()))
        .expect("a reference");
    let tincture_core::project::KeyframeReference::Image { path: pinned } = reference;
    let picture = image::open(&pinned)
        .expect("the pinned picture reads")
        .to_rgb8();
    assert_eq!(picture.dimensions(), (160, 120));
    let p = picture.get_pixel(40, 60).0;
    assert!(p[0] > p[2] + 40, "the picture is the coloured frame: {p:?}");
    harness.get_by_label("Reference of keyframe 4");

    // Pinned again (after a blue stroke): a new picture; undo brings back
    // the first, which is still on disk as it was.
    let first_bytes = std::fs::read(&pinned).expect("the first picture");
    harness.key_press(egui::Key::B);
    harness.step();
    harness.state_mut().set_hint_colour(RIGHT_COLOUR);
    paint_stroke(&mut harness, &[[40.0, 30.0], [40.0, 90.0]]);
    wait_for(&mut harness, "frame 4 coloured again", |app| {
        app.coloured_frame() == Some(4)
            && app.coloured_revision() == app.document().map(|d| d.revision())
            && app.can_pin()
    });
    harness.key_press(egui::Key::V);
    harness.run_steps(2);
    harness.get_by_label("Pin this frame as keyframe").click();
    let reference_of_4 = |app: &TinctureApp| {
        app.document()
            .and_then(|d| d.project().keyframe(4).and_then(|k| k.reference.clone()))
            .map(|tincture_core::project::KeyframeReference::Image { path }| path)
    };
    wait_for(&mut harness, "the second pin", |app| {
        reference_of_4(app).is_some_and(|p| p != pinned)
    });
    let second = reference_of_4(harness.state()).expect("the second picture");
    assert!(second.exists());
    assert_eq!(
        std::fs::read(&pinned).expect("the first picture"),
        first_bytes,
        "the first picture is kept as it was"
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(
        reference_of_4(harness.state()),
        Some(pinned.clone()),
        "undo brings back the first picture"
    );
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    harness.step();
    assert_eq!(reference_of_4(harness.state()), Some(second));

    // A period photo of another size entirely joins the shot's references.
    let photo = dir.path().join("street-1952.png");
    write_picture(&photo, 900, 40, |x, _| [200, (x % 256) as u8, 60]);
    harness.state_mut().import_reference(photo.clone());
    wait_for(&mut harness, "the imported photo", |app| {
        app.document()
            .is_some_and(|d| d.project().references.len() == 1)
    });
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .references[0]
            .path,
        photo
    );
    harness.get_by_label("Photo: street-1952.png");
    assert!(harness.state().error().is_none());
    // Its strength is a slider, saved with the project.
    harness
        .get_by_label("Strength of street-1952.png")
        .set_value_accesskit(2.0);
    harness.run_steps(2);
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .references[0]
            .weight,
        2.0
    );

    // A gray photo and a corrupt file are refused, naming the file.
    let gray = dir.path().join("gray-print.png");
    write_picture(&gray, 120, 90, |x, y| [((x + y) % 256) as u8; 3]);
    harness.state_mut().import_reference(gray);
    wait_for(&mut harness, "the refusal", |app| app.error().is_some());
    let error = harness.state().error().expect("an error").to_owned();
    assert!(
        error.contains("gray-print.png") && error.contains("grayscale"),
        "{error}"
    );
    let corrupt = dir.path().join("torn.png");
    std::fs::write(&corrupt, b"not a picture at all").expect("writes");
    harness.state_mut().import_reference(corrupt);
    wait_for(&mut harness, "the second refusal", |app| {
        app.error().is_some_and(|e| e.contains("torn.png"))
    });
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .references
            .len(),
        1,
        "refused pictures do not join"
    );

    // Each can be removed, and the removal undone.
    harness
        .get_by_label("Remove the reference photo street-1952.png")
        .click();
    harness.run_steps(2);
    assert!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .references
            .is_empty()
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .references
            .len(),
        1
    );
    harness
        .get_by_label("Remove the reference of keyframe 4")
        .click();
    harness.run_steps(2);
    assert!(
        harness
            .state()
            .document()
            .and_then(|d| d.project().keyframe(4))
            .is_some_and(|k| k.reference.is_none() && k.strokes.len() == 2),
        "the reference goes, the hints (two strokes) stay"
    );
}

/// The two-halves film at frame 4 with a brush stroke of the left half's
/// true colour down its middle, coloured; `None` (said why) without the fixture.
fn left_half_painted(dir: &Path, test: &str) -> Option<Harness<'static, TinctureApp>> {
    let (_, mut harness) = halves_at_frame_4(dir, test, 900.0)?;
    harness.key_press(egui::Key::B);
    harness.step();
    harness.state_mut().set_hint_colour(LEFT_COLOUR);
    paint_stroke(&mut harness, &[[40.0, 30.0], [40.0, 90.0]]);
    wait_for(&mut harness, "the stroke coloured", |app| {
        app.coloured_frame() == Some(4)
            && app.coloured_revision() == app.document().map(|d| d.revision())
    });
    Some(harness)
}

#[test]
fn the_picker_follows_the_film_and_suggested_colours_can_be_picked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut harness) = left_half_painted(
        dir.path(),
        "the_picker_follows_the_film_and_suggested_colours_can_be_picked",
    ) else {
        return;
    };

    // The model's likely colours arrive from a thread of their own and add a
    // row to the picker: wait for them first, so no button moves between
    // finding it and clicking it.
    wait_for(&mut harness, "the model's likely colours", |app| {
        app.likely_colours_ready()
    });

    // Over each half the picker shows that half's lightness.
    let lightness_at = |harness: &mut Harness<'_, TinctureApp>, x: f32| {
        let p = harness.state().screen_point_of(x, 60.0).expect("on screen");
        harness.hover_at(p);
        harness.run_steps(2);
        harness.state().picker_lightness()
    };
    let (light, dark) = (
        lightness_at(&mut harness, 40.0),
        lightness_at(&mut harness, 120.0),
    );
    let truth_l = |c: [u8; 3]| tincture_core::metrics::srgb8_to_lab(c)[0];
    assert!(
        (light - truth_l(LEFT_COLOUR)).abs() < 3.0 && (dark - truth_l(RIGHT_COLOUR)).abs() < 3.0,
        "picker lightness {light:.1} and {dark:.1}"
    );

    // Suggested: the colour here now (the right half, still gray), then the project's own.
    let suggested = harness.state().suggested_colours();
    assert!(suggested.len() >= 2, "{suggested:?}");
    let painted = tincture_core::project::hex_to_rgb8(&strokes_on(harness.state(), 4)[0].color)
        .expect("a stroke colour");
    assert_eq!(suggested[1], painted);
    harness.state_mut().set_hint_colour([0, 0, 255]);
    harness.remove_cursor();
    harness.run_steps(2);
    harness
        .get_by_label(&format!(
            "Suggested colour 2: {}",
            tincture_core::project::rgb8_to_hex(painted)
        ))
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().paint_state().colour,
        painted,
        "the suggestion is the hint colour now"
    );

    // The model's most likely colours under the pointer: they come from the
    // built-in model's class distribution over this frame, at the film's
    // lightness there, most likely first.
    wait_for(&mut harness, "the model's likely colours", |app| {
        app.likely_colours_ready()
    });
    let light = lightness_at(&mut harness, 40.0);
    let likely = harness.state().likely_colours_here().to_vec();
    assert!(!likely.is_empty(), "no likely colours over the left half");
    assert!(
        likely.windows(2).all(|w| w[0].1 >= w[1].1),
        "most likely first: {likely:?}"
    );
    let total: f32 = likely.iter().map(|(_, p)| p).sum();
    assert!(
        total > 0.0 && total <= 1.0 + 1e-3,
        "probabilities {likely:?}"
    );
    for (c, _) in &likely {
        assert!(
            (truth_l(*c) - light).abs() < 2.0,
            "{c:?} is not at the film's lightness {light:.1}"
        );
    }
    harness.remove_cursor();
    harness.run_steps(2);
    let first = likely[0].0;
    harness
        .get_by_label(&format!(
            "Model colour 1: {}",
            tincture_core::project::rgb8_to_hex(first)
        ))
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().paint_state().colour,
        first,
        "the model's colour is the hint colour now"
    );
}

#[test]
fn stepping_through_the_preview_fills_the_flicker_graph() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "stepping_through_the_preview_fills_the_flicker_graph",
    ) else {
        return;
    };
    let mut harness = harness_with(
        Some(film.clone()),
        &dir.path().join("state"),
        true,
        [1100.0, 760.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    wait_for(&mut harness, "frame 0 coloured", |app| {
        app.coloured_frame() == Some(0)
            && app.coloured_revision() == app.document().map(|d| d.revision())
    });
    // Right, frame by frame, each coloured before the next: each is measured
    // against the one before it.
    for next in 1..=5u64 {
        harness.key_press(egui::Key::ArrowRight);
        wait_for(&mut harness, &format!("frame {next} coloured"), |app| {
            app.coloured_frame() == Some(next)
        });
    }
    let flicker = harness
        .state()
        .exporter()
        .flicker(Some(&film))
        .expect("measured while previewing")
        .clone();
    let frames: Vec<u64> = flicker.samples().map(|(f, _)| f).collect();
    assert_eq!(frames, vec![1, 2, 3, 4, 5]);
    assert!(
        flicker
            .samples()
            .all(|(_, s)| s.warp.is_finite() && s.warp >= 0.0)
    );
    harness.get_by_label_contains("Clip: mean ");
    // A jump starts a new run: the frame jumped to is not measured against the last.
    harness.state_mut().seek(20);
    wait_for(&mut harness, "frame 20 coloured", |app| {
        app.coloured_frame() == Some(20)
    });
    let after_jump = harness
        .state()
        .exporter()
        .flicker(Some(&film))
        .expect("measured")
        .len();
    assert_eq!(after_jump, 5);
}

#[test]
fn the_palette_keeps_colours_and_the_eyedropper_reads_reference_photos() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_, mut harness)) = halves_at_frame_4(
        dir.path(),
        "the_palette_keeps_colours_and_the_eyedropper_reads_reference_photos",
        // Tall enough that the References panel's thumbnails are on screen
        // below every setting.
        960.0,
    ) else {
        return;
    };
    let palette = |harness: &Harness<'_, TinctureApp>| {
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .palette
            .clone()
    };
    let brick = [178, 64, 40];
    harness.get_by_label("Brush").click();
    harness.run_steps(2);
    harness.state_mut().set_hint_colour(brick);
    harness.run_steps(2);
    harness
        .get_by_label("Add the hint colour to the palette")
        .click();
    harness.run_steps(2);
    assert_eq!(palette(&harness), vec!["#b24028".to_owned()]);
    // Added once only.
    harness
        .get_by_label("Add the hint colour to the palette")
        .click();
    harness.run_steps(2);
    assert_eq!(palette(&harness).len(), 1);

    // Another colour; the palette's swatch brings the kept one back.
    harness.state_mut().set_hint_colour([20, 90, 200]);
    harness.run_steps(2);
    harness.get_by_label("Palette colour 1: #b24028").click();
    harness.run_steps(2);
    assert_eq!(harness.state().paint_state().colour, brick);

    // Adding is one undo step.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert!(palette(&harness).is_empty());
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    harness.step();
    assert_eq!(palette(&harness), vec!["#b24028".to_owned()]);

    // The eyedropper takes colour from a reference photo's thumbnail: a
    // photo whose middle is teal, framed in yellow.
    let teal = [30, 140, 130];
    let photo = dir.path().join("harbour-1949.png");
    write_picture(&photo, 400, 300, |x, y| {
        if (80..320).contains(&x) && (60..240).contains(&y) {
            teal
        } else {
            [230, 200, 40]
        }
    });
    harness.state_mut().import_reference(photo);
    wait_for(&mut harness, "the photo's thumbnail", |app| {
        app.document()
            .is_some_and(|d| d.project().references.len() == 1)
    });
    for _ in 0..200 {
        if harness
            .query_by_label("Thumbnail of Photo: harbour-1949.png")
            .is_some()
        {
            break;
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.key_press(egui::Key::D);
    harness.run_steps(2);
    harness
        .get_by_label("Thumbnail of Photo: harbour-1949.png")
        .click();
    harness.run_steps(2);
    let got = harness.state().paint_state().colour;
    assert!(
        got.iter().zip(teal).all(|(g, t)| g.abs_diff(t) <= 3),
        "the eyedropper took {got:?} from the photo's teal middle"
    );
    // Kept in the palette, and saved with the project.
    harness
        .get_by_label("Add the hint colour to the palette")
        .click();
    harness.run_steps(2);
    assert_eq!(palette(&harness).len(), 2);
    let saved = dir.path().join("palette.tincture.json");
    harness.state_mut().save(Some(saved.clone()));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    let back = tincture_core::project::Project::load(&saved).expect("the saved project loads");
    assert_eq!(back.palette, palette(&harness));
}

#[test]
fn compare_colours_the_frame_under_each_variant_and_one_is_taken() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut harness) = left_half_painted(
        dir.path(),
        "compare_colours_the_frame_under_each_variant_and_one_is_taken",
    ) else {
        return;
    };

    harness.get_by_label("View").click();
    harness.run_steps(2);
    harness.get_by_label("Compare settings…").click();
    harness.run_steps(2);
    assert_eq!(harness.state().comparison().variants.len(), 3);
    // Each variant can take a model and a render resolution of its own.
    for l in ['A', 'B', 'C'] {
        harness.get_by_label(&format!("Variant {l}: model"));
        harness.get_by_label(&format!("Variant {l}: render resolution"));
    }
    // Two variants: as the shot is, and without saturation.
    harness.get_by_label("Remove variant C").click();
    harness.run_steps(2);
    harness
        .get_by_label("Variant B: saturation")
        .set_value_accesskit(0.0);
    harness.run_steps(2);
    assert_eq!(harness.state().comparison().variants[1].saturation, 0.0);
    harness.get_by_label("Colour the comparison").click();
    wait_for(&mut harness, "the comparison coloured", |app| {
        let c = app.comparison();
        !c.pending
            && c.results
                .as_ref()
                .is_some_and(|(i, t)| *i == 4 && t.len() == 2)
    });
    let pictures = harness.state().comparison().pictures.clone();
    let at = |k: usize| {
        let p = &pictures[k][0];
        let c = p.pixels[60 * p.size[0] + 40];
        [c.r(), c.g(), c.b()]
    };
    let (a, b) = (at(0), at(1));
    assert!(a[0] > a[2] + 40, "variant A keeps the hint's colour: {a:?}");
    assert!(
        a[0].abs_diff(a[2]) > 40 && b[0].abs_diff(b[2]) <= 3 && b[0].abs_diff(b[1]) <= 3,
        "variant B, at saturation 0, is gray: {b:?}"
    );
    // The pictures are the film's: only their colour differs.
    let luma =
        |c: [u8; 3]| 0.299 * f64::from(c[0]) + 0.587 * f64::from(c[1]) + 0.114 * f64::from(c[2]);
    assert!((luma(a) - luma(b)).abs() < 3.0, "{a:?} and {b:?}");

    // Taking B gives the shot its settings, as one undo step.
    let saturation = |harness: &Harness<'_, TinctureApp>| {
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .settings_for(4)
            .saturation
    };
    let before = saturation(&harness);
    assert!(before > 0.5);
    harness
        .get_by_label("Use the settings of variant B")
        .click();
    harness.run_steps(2);
    assert_eq!(saturation(&harness), 0.0);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.step();
    assert_eq!(saturation(&harness), before);

    // A short range: four frames per variant, coloured in order, each
    // variant with its flicker measured over them.
    harness.get_by_label("Compare 4 frames").click();
    harness.run_steps(2);
    harness.get_by_label("Colour the comparison").click();
    harness.step();
    // Stepping on while the comparison is coloured asks for a frame of
    // the preview: that request stops the comparison for a moment, and
    // the comparison must still be coloured after it.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    wait_for(&mut harness, "the range compared", |app| {
        let c = app.comparison();
        !c.pending
            && c.results
                .as_ref()
                .is_some_and(|(i, t)| *i == 4 && t.len() == 2 && t.iter().all(|v| v.len() == 4))
    });
    let c = harness.state().comparison();
    assert!(
        c.flicker.len() == 2
            && c.flicker
                .iter()
                .all(|f| f.is_some_and(|s| s.warp.is_finite())),
        "{:?}",
        c.flicker
    );
    // Variant A's four pictures are the film's frames 4 to 7: the painted
    // colour holds on the left half in each.
    for p in &c.pictures[0] {
        let px = p.pixels[60 * p.size[0] + 40];
        assert!(px.r() > px.b() + 40, "{px:?}");
    }
    harness
        .get_by_label("Compared frame")
        .set_value_accesskit(3.0);
    harness.run_steps(2);
    assert_eq!(harness.state().comparison().offset, 3);
}

// ---- Real sizes -------------------------------------------------------------

/// Paints a red stroke on frame 0 of a gray film of `size` (`pix_fmt`),
/// steps to frame 20 and checks the red arrived there: the preview colours
/// films wider than 960 px at half size, and the replay from the keyframe
/// must be at that size too.
fn painted_colour_follows_at(size: &str, pix_fmt: &str, test: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let film = dir.path().join(format!("film-{size}.mkv"));
    let source = format!("testsrc2=size={size}:rate=24");
    if let Err(e) = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-frames:v",
        "24",
        "-pix_fmt",
        pix_fmt,
        "-c:v",
        "ffv1",
        &film.to_string_lossy(),
    ]) {
        skip_or_fail(test, e);
        return;
    }
    let (w, h) = {
        let mut parts = size.split('x').map(|v| v.parse::<f32>().expect("size"));
        (parts.next().expect("w"), parts.next().expect("h"))
    };
    let mut harness = harness_with(
        Some(film.clone()),
        &dir.path().join("state"),
        true,
        [1400.0, 900.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    wait_for(&mut harness, "frame 0", |app| {
        app.is_settled() && app.shown_frame() == Some(0)
    });
    harness.key_press(egui::Key::B);
    harness.step();
    harness.state_mut().set_hint_colour([210, 40, 40]);
    let x = 0.12 * w;
    paint_stroke(&mut harness, &[[x, 0.15 * h], [x, 0.5 * h], [x, 0.85 * h]]);
    assert_eq!(
        strokes_on(harness.state(), 0).len(),
        1,
        "the stroke is on frame 0"
    );
    let coloured = |frame: u64| {
        move |app: &TinctureApp| {
            app.coloured_frame() == Some(frame)
                && app.coloured_revision() == app.document().map(|d| d.revision())
        }
    };
    let limit = Duration::from_secs(180);
    wait_for_within(&mut harness, "the stroke coloured", limit, coloured(0));
    // The mean colour of a band down the stroke's middle.
    let band = |app: &TinctureApp| {
        let (mut sum, mut n) = ([0.0f64; 3], 0.0f64);
        let xi = x as usize;
        for y in (0.3 * h) as usize..(0.7 * h) as usize {
            for dx in 0..3 {
                if let Some((_, rgb)) = app.after_rgb_at(xi + dx, y) {
                    for c in 0..3 {
                        sum[c] += f64::from(rgb[c]);
                    }
                    n += 1.0;
                }
            }
        }
        sum.map(|v| v / n.max(1.0))
    };
    let key = band(harness.state());
    assert!(
        key[0] > key[1] + 30.0 && key[0] > key[2] + 30.0,
        "{size}: red under the stroke on frame 0: {key:?}"
    );
    harness.state_mut().seek(20);
    wait_for_within(&mut harness, "frame 20 coloured", limit, coloured(20));
    assert!(
        harness.state().error().is_none(),
        "{size}: {:?}",
        harness.state().error()
    );
    let after = band(harness.state());
    assert!(
        after[0] > after[1] + 15.0 && after[0] > after[2] + 15.0,
        "{size}: the red reached frame 20: {after:?} (frame 0: {key:?})"
    );

    // And out through File > Export, frames 0 to 2 marked with I and O
    // (colouring at full size, where the preview coloured at half): their
    // luma the source's to the bit (at 10 bits too), the red on frame 2.
    for (frame, key) in [(0, egui::Key::I), (2, egui::Key::O)] {
        harness.state_mut().seek(frame);
        wait_for(&mut harness, "the frame to mark", |app| {
            app.is_settled() && app.shown_frame() == Some(frame)
        });
        harness.key_press(key);
        harness.run_steps(2);
    }
    assert_eq!(harness.state().in_out(), (Some(0), Some(2)));
    let output = dir.path().join(format!("film-{size}-colour.mkv"));
    fill_export_dialog(&mut harness, &output);
    harness.get_by_label("In–out (0–2)").click();
    harness.run_steps(2);
    click_export(&mut harness);
    wait_for_export_within(&mut harness, Duration::from_secs(300));
    assert!(
        harness.state().error().is_none(),
        "{size}: {:?}",
        harness.state().error()
    );
    assert_export_luma(&film, &output, 0, 3);
    let mut reader = tincture_media::VideoReader::open(&output).expect("the export opens");
    let frame = reader.seek(2).expect("frame 2 decodes").frame;
    let chroma = frame.chroma.as_ref().expect("the export has colour");
    let cr = &chroma.cr;
    let mid = f64::from(1u32 << (frame.bit_depth - 1));
    // The stroke ran down x = 0.12 w.
    let (x0, x1) = (
        (0.10 * cr.width as f32) as usize,
        (0.14 * cr.width as f32) as usize,
    );
    let (y0, y1) = (
        (0.3 * cr.height as f32) as usize,
        (0.7 * cr.height as f32) as usize,
    );
    let mut sum = 0.0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += f64::from(cr.data[y * cr.width + x]);
        }
    }
    let mean = sum / ((y1 - y0) * (x1 - x0)) as f64;
    assert!(
        mean > mid * 1.08,
        "{size}: red (Cr above {mid}) on frame 2 of the export: {mean:.1}"
    );
}

#[test]
fn painted_colour_follows_to_frame_20_of_an_hd_film() {
    painted_colour_follows_at(
        "1280x720",
        "gray",
        "painted_colour_follows_to_frame_20_of_an_hd_film",
    );
}

#[test]
fn painted_colour_follows_to_frame_20_of_a_10_bit_2k_scan() {
    painted_colour_follows_at(
        "2048x1556",
        "gray10le",
        "painted_colour_follows_to_frame_20_of_a_10_bit_2k_scan",
    );
}

/// A frame wider than the GPU's texture limit (8192 px here) is shown
/// scaled down, on both sides, and the window keeps running.
#[test]
fn a_frame_wider_than_the_texture_limit_is_shown_scaled_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let test = "a_frame_wider_than_the_texture_limit_is_shown_scaled_down";
    let film = match make_clip(dir.path(), "wide.mkv", "8400x64", 3) {
        Ok(f) => f,
        Err(e) => {
            skip_or_fail(test, e);
            return;
        }
    };
    let mut harness = harness_with(Some(film), &dir.path().join("state"), true, [1200.0, 700.0]);
    wait_for_project(&mut harness);
    model_off(&mut harness);
    wait_for(&mut harness, "frame 0 shown and coloured", |app| {
        app.is_settled() && app.shown_frame() == Some(0) && app.coloured_frame() == Some(0)
    });
    harness.state_mut().seek(2);
    wait_for(&mut harness, "frame 2", |app| {
        app.is_settled() && app.shown_frame() == Some(2)
    });
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
}

/// Closing a project or opening another film with unsaved work asks first:
/// Cancel keeps it open, Save writes it and then goes on, Discard goes on.
#[test]
fn leaving_unsaved_work_asks_first() {
    use tincture_app::app::Leave;
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "leaving_unsaved_work_asks_first") else {
        return;
    };
    let mut harness = harness(
        Some(film.clone()),
        &dir.path().join("state"),
        [1000.0, 700.0],
    );
    wait_for_project(&mut harness);
    // Saved and unchanged: Close goes at once.
    let project = dir.path().join("reel.tincture.json");
    harness.state_mut().save(Some(project.clone()));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    harness.state_mut().request(Leave::Open(film.clone()));
    wait_for_project(&mut harness);
    assert!(harness.state().unsaved_prompt().is_none());

    // A change, then File > Close: the window asks; Cancel keeps everything.
    harness.get_by_label("Add keyframe here").click();
    harness.run_steps(2);
    assert!(
        harness
            .state()
            .document()
            .expect("project")
            .has_unsaved_work()
    );
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Close").click();
    harness.run_steps(2);
    assert_eq!(harness.state().unsaved_prompt(), Some(&Leave::Close));
    harness.get_by_label("Unsaved changes");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(harness.state().unsaved_prompt().is_none());
    assert!(
        harness
            .state()
            .document()
            .expect("still open")
            .has_unsaved_work()
    );

    // Opening another film asks too; Discard opens it.
    harness.state_mut().request(Leave::Open(film.clone()));
    harness.run_steps(2);
    assert!(matches!(
        harness.state().unsaved_prompt(),
        Some(Leave::Open(_))
    ));
    harness.get_by_label("Discard").click();
    wait_for_project(&mut harness);
    let doc = harness.state().document().expect("the film, opened again");
    assert!(
        doc.project().keyframes.is_empty() && !doc.has_unsaved_work(),
        "a new project: {:?}",
        doc.project().keyframes,
    );

    // Save, from the window: the project is written, then closed.
    harness.state_mut().open_any(project.clone());
    wait_for_project(&mut harness);
    harness.get_by_label("Add keyframe here").click();
    harness.run_steps(2);
    harness.state_mut().request(Leave::Close);
    harness.run_steps(2);
    harness.get_by_label("Save").click();
    wait_for(&mut harness, "saved and closed", |app| {
        !app.is_saving() && app.document().is_none()
    });
    let saved = std::fs::read_to_string(&project).expect("the project file");
    let saved: serde_json::Value = serde_json::from_str(&saved).expect("json");
    assert_eq!(
        saved["keyframes"].as_array().map(Vec::len),
        Some(1),
        "the keyframe was saved before closing"
    );
}

/// Two windows on the same film would write the same autosave: the second
/// says the project is open elsewhere and does not open it; once the first
/// closes it, it opens.
#[test]
fn a_project_open_in_another_window_is_not_opened_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "a_project_open_in_another_window_is_not_opened_twice",
    ) else {
        return;
    };
    let state = dir.path().join("state");
    let mut first = harness(Some(film.clone()), &state, [1000.0, 700.0]);
    wait_for_project(&mut first);
    let mut second = harness(Some(film.clone()), &state, [1000.0, 700.0]);
    wait_for(&mut second, "the refusal", |app| app.error().is_some());
    let error = second.state().error().expect("an error").to_owned();
    assert!(
        error.contains("is in use by another Tincture") && error.contains("fixture.mkv"),
        "{error}"
    );
    assert!(second.state().document().is_none());
    first.state_mut().close();
    first.step();
    second.state_mut().open(film);
    wait_for_project(&mut second);
    assert!(second.state().error().is_none());
}

/// A project naming a model file outside its folder opens, but asks before
/// anything is coloured with it; "Use the export's model instead" takes the
/// model away from those shots.
#[test]
fn models_from_outside_the_projects_folder_are_asked_about() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(
        dir.path(),
        "models_from_outside_the_projects_folder_are_asked_about",
    ) else {
        return;
    };
    let state = dir.path().join("state");
    let mut harness = harness_with(Some(film), &state, true, [1000.0, 700.0]);
    wait_for_project(&mut harness);
    let project = dir.path().join("reel.tincture.json");
    harness.state_mut().edit(true, |p| {
        p.defaults.model = Some("/somewhere/else/model.onnx".into());
    });
    harness.state_mut().save(Some(project.clone()));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    harness.state_mut().close();
    harness.step();
    harness.state_mut().open_any(project);
    wait_for_project(&mut harness);
    assert_eq!(harness.state().foreign_models().len(), 1);
    harness.run_steps(3);
    harness.get_by_label("Models from outside the project's folder");
    assert_eq!(
        harness.state().coloured_frame(),
        None,
        "nothing coloured yet"
    );
    harness
        .get_by_label("Use the export's model instead")
        .click();
    harness.run_steps(2);
    assert!(harness.state().foreign_models().is_empty());
    let doc = harness.state().document().expect("project");
    assert_eq!(doc.project().defaults.model, None);
}

/// The scrub-proxy budget holds for the film being opened: a film whose
/// proxy would not fit gets none, and says so for the status bar.
#[test]
fn a_film_whose_proxy_would_not_fit_gets_none_and_says_so() {
    use tincture_app::worker::{BackgroundWork, Message, ProxySettings, spawn_background};
    let dir = tempfile::tempdir().expect("temp dir");
    let test = "a_film_whose_proxy_would_not_fit_gets_none_and_says_so";
    let frames = 60;
    let film = dir.path().join("long-gop.mkv");
    if let Err(e) = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=24",
        "-frames:v",
        &frames.to_string(),
        "-pix_fmt",
        "gray",
        "-c:v",
        "ffv1",
        "-g",
        &frames.to_string(),
        &film.to_string_lossy(),
    ]) {
        skip_or_fail(test, e);
        return;
    }
    let root = dir.path().join("proxies");
    for (budget, fits) in [(1_000_000u64, false), (1_000_000_000, true)] {
        let (tx, rx) = crossbeam_channel::unbounded();
        let work = BackgroundWork {
            thumbnails: 0,
            detect: false,
            proxies: Some(ProxySettings {
                root: root.clone(),
                budget,
            }),
        };
        spawn_background(
            egui::Context::default(),
            tx,
            film.clone(),
            7,
            work,
            std::sync::Arc::default(),
        )
        .expect("the pass starts");
        let mut note = None;
        let limit = Instant::now() + Duration::from_secs(60);
        while Instant::now() < limit {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Message::ProxyNote { generation, text }) => {
                    assert_eq!(generation, 7);
                    note = Some(text);
                }
                Ok(Message::Pass { done, total, .. }) if done == total => break,
                Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        let built = std::fs::read_dir(&root).map_or(0, |d| d.count());
        if fits {
            assert!(note.is_none(), "{note:?}");
            assert_eq!(built, 1, "a proxy within the budget is built");
        } else {
            let note = note.expect("the note");
            assert!(
                note.contains("No scrub proxy") && note.contains("TINCTURE_PROXY_BUDGET_GB"),
                "{note}"
            );
            assert_eq!(built, 0, "nothing written over the budget");
        }
    }
}

/// A log sink for one thread's tracing events.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every error the window shows also goes to the log, with the file named.
#[test]
fn errors_shown_in_the_window_go_to_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a film\n").expect("write");
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The window's own logic runs on this thread, inside the harness.
    let shown = tracing::subscriber::with_default(subscriber, || {
        let mut harness = harness(Some(notes), dir.path(), [1000.0, 700.0]);
        wait_for(&mut harness, "the open to fail", |app| {
            app.error().is_some()
        });
        harness.run_steps(2);
        harness.state().error().expect("error").to_owned()
    });
    let text = String::from_utf8_lossy(&log.0.lock().expect("log lock")).into_owned();
    assert!(shown.contains("notes.txt"), "{shown}");
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains(&shown)),
        "the error is logged: {text}"
    );
}

/// A long 1280x720 shot whose only keyframe is its last frame: the first
/// frame waits on a backward pass over the whole shot. A newer preview
/// request and the export's Cancel each stop that pass promptly, instead of
/// waiting for it to finish (tens of seconds).
#[test]
fn a_newer_frame_and_the_export_cancel_stop_a_backward_pass() {
    let test = "a_newer_frame_and_the_export_cancel_stop_a_backward_pass";
    let dir = tempfile::tempdir().expect("temp dir");
    let frames = 240u64;
    let film = dir.path().join("long-shot.mkv");
    if let Err(e) = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=24",
        "-frames:v",
        &frames.to_string(),
        "-pix_fmt",
        "gray",
        "-c:v",
        "ffv1",
        &film.to_string_lossy(),
    ]) {
        skip_or_fail(test, e);
        return;
    }
    let last = frames - 1;
    let mut harness = harness_with(
        Some(film.clone()),
        &dir.path().join("state"),
        true,
        [1400.0, 900.0],
    );
    wait_for_project(&mut harness);
    model_off(&mut harness);
    harness.state_mut().seek(last);
    wait_for_within(
        &mut harness,
        "the last frame",
        Duration::from_secs(60),
        |app| app.is_settled() && app.shown_frame() == Some(last),
    );
    harness.key_press(egui::Key::B);
    harness.step();
    harness.state_mut().set_hint_colour([210, 40, 40]);
    paint_stroke(
        &mut harness,
        &[[150.0, 100.0], [150.0, 400.0], [150.0, 620.0]],
    );
    assert_eq!(strokes_on(harness.state(), last).len(), 1);
    let coloured = |frame: u64| {
        move |app: &TinctureApp| {
            app.coloured_frame() == Some(frame)
                && app.coloured_revision() == app.document().map(|d| d.revision())
        }
    };
    wait_for_within(
        &mut harness,
        "the keyframe coloured",
        Duration::from_secs(120),
        coloured(last),
    );

    // The frame before the keyframe, alone: one backward step from it.
    harness.state_mut().seek(last - 1);
    let asked = Instant::now();
    wait_for_within(
        &mut harness,
        "the frame before the keyframe",
        Duration::from_secs(120),
        coloured(last - 1),
    );
    let alone = asked.elapsed();

    // Frame 0 starts the backward pass from the keyframe; a second and a
    // half later the user steps to the frame two before the keyframe, whose
    // colour is a step or two from it.
    harness.state_mut().seek(0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(
        harness.state().coloured_frame(),
        Some(0),
        "frame 0 waits on the whole backward pass"
    );
    harness.state_mut().seek(last - 2);
    let asked = Instant::now();
    wait_for_within(
        &mut harness,
        "the newer frame coloured",
        Duration::from_secs(120),
        coloured(last - 2),
    );
    let preview_latency = asked.elapsed();

    // An export's first frame waits on the same pass at full size; Cancel
    // stops it.
    let output = dir.path().join("long-shot-colour.mkv");
    fill_export_dialog(&mut harness, &output);
    click_export(&mut harness);
    assert!(harness.state().exporter().is_running());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        harness
            .state()
            .exporter()
            .progress()
            .is_none_or(|p| p.done == 0),
        "the export is still inside the backward pass of its first frame"
    );
    harness.get_by_label("Cancel export").click();
    let asked = Instant::now();
    harness.step();
    wait_for_within(
        &mut harness,
        "the export to stop",
        Duration::from_secs(120),
        |app| !app.exporter().is_running(),
    );
    let cancel_latency = asked.elapsed();
    eprintln!(
        "a newer frame was coloured {preview_latency:?} after it was asked for \
         ({alone:?} with nothing to stop); the export stopped {cancel_latency:?} after Cancel"
    );
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
    assert!(
        matches!(
            harness.state().exporter().notice(),
            Some(tincture_app::export::Notice::Cancelled { .. })
        ),
        "{:?}",
        harness.state().exporter().notice()
    );
    assert!(!output.exists(), "no complete-looking output");
    // Each within about a second of the stop (the engine's own test holds
    // it to one), plus the window's frame steps in a debug build beside the
    // rest of the suite; without the stop each waits for the whole pass.
    // The export's time includes finishing its partial file, at a lowered
    // priority beside the rest of the suite (3.5 s seen in CI); the whole
    // pass it would otherwise wait for takes minutes.
    let slack = Duration::from_millis(3000);
    assert!(
        preview_latency < alone + slack,
        "newer frame after {preview_latency:?}, {alone:?} alone"
    );
    assert!(
        cancel_latency < Duration::from_secs(10),
        "export stopped {cancel_latency:?} after Cancel"
    );
}

// ---- The batch queue --------------------------------------------------------

/// File > Add to queue…: an unsaved project is refused with a reason; once
/// saved, the Export window's settings go to the queue, which the Queue
/// window starts; the item renders in the background to its output, with
/// the film's luma. A second film queued and paused stays waiting, and the
/// queue file (in the state folder) records both.
#[test]
fn a_project_queued_from_the_export_window_renders_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let test = "a_project_queued_from_the_export_window_renders_in_the_background";
    let Some(film) = make_clip(dir.path(), "reel.mkv", "160x120", EXPORT_FRAMES)
        .inspect_err(|e| skip_or_fail(test, e))
        .ok()
    else {
        return;
    };
    let state = dir.path().join("state");
    let mut harness = harness(Some(film.clone()), &state, [1200.0, 800.0]);
    wait_for_project(&mut harness);
    model_off(&mut harness);
    let output = dir.path().join("reel-queued.mkv");
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Add to queue…").click();
    harness.run_steps(2);
    harness
        .get_by_label("Destination")
        .set_text_value_accesskit(output.to_str().expect("utf-8 path"));
    harness.run_steps(2);
    harness.get_by_label("FFV1 (MKV)").click();
    harness.step();
    harness.get_by_label("Add to queue").click();
    harness.run_steps(2);
    assert!(
        harness
            .state()
            .error()
            .is_some_and(|e| e.contains("Save the project first")),
        "{:?}",
        harness.state().error()
    );
    assert!(harness.state().queue().queue().items.is_empty());

    let project = dir.path().join("reel.tincture.json");
    harness.state_mut().save(Some(project.clone()));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    harness.get_by_label("Add to queue").click();
    harness.run_steps(2);
    let queue = harness.state().queue().queue().clone();
    assert_eq!(queue.items.len(), 1, "{:?}", harness.state().error());
    assert_eq!(queue.items[0].project, project);
    assert_eq!(queue.items[0].output, output);
    assert_eq!(queue.items[0].frames_total, EXPORT_FRAMES);
    assert!(
        state.join("queue.json").is_file(),
        "saved in the state folder"
    );
    harness.get_by_label_contains("1 items: 1 to render");

    harness.get_by_label("Start queue").click();
    harness.run_steps(2);
    wait_for_within(
        &mut harness,
        "the queue to finish",
        Duration::from_secs(120),
        |app| !app.queue().is_running(),
    );
    let queue = harness.state().queue().queue().clone();
    assert_eq!(
        queue.items[0].status,
        tincture_engine::queue::Status::Done,
        "{:?} {:?}",
        queue.items[0].message,
        harness.state().queue().error()
    );
    harness.get_by_label(&format!("done, {EXPORT_FRAMES} frames"));
    assert_export_luma(&film, &output, 0, EXPORT_FRAMES);

    // A second item, paused: the queue leaves it waiting.
    let second = dir.path().join("reel-second.mkv");
    harness
        .state_mut()
        .queue_mut()
        .add(&film, &project, &second, "ffv1", None, None)
        .expect("queued");
    harness.run_steps(2);
    harness.get_by_label("Pause").click();
    harness.run_steps(2);
    let queue = harness.state().queue().queue().clone();
    assert_eq!(
        queue.items[1].status,
        tincture_engine::queue::Status::Paused
    );
    harness.get_by_label("Resume");
    assert!(!second.exists());

    // For the README: the window with a done, a paused and a waiting item.
    harness
        .state_mut()
        .queue_mut()
        .add(
            &film,
            &project,
            &dir.path().join("reel-third.mov"),
            "prores",
            Some((0, 11)),
            None,
        )
        .expect("queued");
    harness.run_steps(3);
    harness.get_by_label_contains("3 items: 1 to render (12 frames)");
    let image = harness.render().expect("render");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots");
    std::fs::create_dir_all(&out).expect("screenshots folder");
    image
        .save(out.join("queue-window.png"))
        .expect("save screenshot");
}

/// File > Export to farm… writes the job bundle `tincture-cli farm plan`
/// writes, for the saved project: the chunk list, the OpenJD template and
/// the project's copy; an unsaved project is not offered.
#[test]
fn export_to_farm_writes_a_job_bundle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(film) = fixture_or_skip(dir.path(), "export_to_farm_writes_a_job_bundle") else {
        return;
    };
    let mut harness = harness(Some(film), &dir.path().join("state"), [1200.0, 800.0]);
    wait_for_project(&mut harness);
    model_off(&mut harness);
    harness.get_by_label("File").click();
    harness.run_steps(2);
    harness.get_by_label("Export to farm…").click();
    harness.run_steps(2);
    harness.get_by_label("Save the project first: the farm renders the saved project.");
    let project = dir.path().join("reel.tincture.json");
    harness.state_mut().save(Some(project.clone()));
    wait_for(&mut harness, "the save", |app| !app.is_saving());
    let bundle = dir.path().join("job");
    harness
        .get_by_label("Job bundle folder")
        .set_text_value_accesskit(bundle.to_str().expect("utf-8 path"));
    harness.run_steps(2);
    harness.get_by_label("Write job bundle").click();
    harness.run_steps(2);
    let outcome = harness.state().farm().outcome().cloned();
    assert!(outcome.as_ref().is_some_and(Result::is_ok), "{outcome:?}");
    for file in ["job.json", "job.template.json", "project.json"] {
        assert!(bundle.join(file).is_file(), "{file} in the bundle");
    }
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("job.json")).expect("read"))
            .expect("json");
    assert_eq!(plan["project"], serde_json::json!(project));
    harness.get_by_label_contains("Run it with: openjd run");
}

/// Frame at which the square enters the film of
/// [`keyframes_are_suggested_where_the_colour_is_weak`].
const ENTERS_AT: u64 = 24;

/// The film of [`tincture_tests::entering_pattern`], 48 frames.
fn entering_square(dir: &Path) -> Result<PathBuf, String> {
    make_clip_from(
        dir,
        "entering.mkv",
        &tincture_tests::entering_pattern(ENTERS_AT),
        48,
    )
}

#[test]
fn keyframes_are_suggested_where_the_colour_is_weak() {
    let test = "keyframes_are_suggested_where_the_colour_is_weak";
    let dir = tempfile::tempdir().expect("temp dir");
    let film = match entering_square(dir.path()) {
        Ok(f) => f,
        Err(e) => {
            skip_or_fail(test, e);
            return;
        }
    };
    let mut harness = harness_with(Some(film), &dir.path().join("state"), true, [1280.0, 800.0]);
    wait_for_project(&mut harness);
    wait_until_quiet(&mut harness);
    // One keyframe, at the first frame, before the square comes in.
    harness.get_by_label("Add keyframe here").click();
    harness.run_steps(4);
    harness.get_by_label("Suggest keyframes").click();
    harness.run_steps(2);
    assert!(harness.state().scan().is_some_and(|s| s.running));
    wait_for_within(
        &mut harness,
        "the scan for weak colour",
        Duration::from_secs(300),
        |app| app.scan().is_some_and(|s| !s.running),
    );
    let scan = harness.state().scan().expect("scan").clone();
    assert!(scan.error.is_none(), "{:?}", scan.error);
    assert!(scan.complete);
    assert_eq!(scan.range, (0, 47), "the film is one shot");
    assert_eq!(scan.weak.len(), 48);
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        scan.weak[r].iter().sum::<f32>() / n
    };
    let (before, after) = (
        mean(1..ENTERS_AT as usize),
        mean(ENTERS_AT as usize + 2..48),
    );
    println!("weak share before the square {before:.3}, after {after:.3}");
    println!("weak shares {:.2?}", scan.weak);
    println!("suggestions {:?}", scan.suggestions);
    assert!(
        after > before + 0.05,
        "the square's ground is weak: before {before:.3}, after {after:.3}"
    );
    // The most help is where the square comes in, not before it.
    let best = scan.suggestions.first().expect("a suggestion").frame;
    assert!(
        (ENTERS_AT..ENTERS_AT + 12).contains(&best),
        "best suggestion {best}: {:?}",
        scan.suggestions
    );
    // The timeline marks a weak stretch over the square's frames, from
    // when it is mostly in.
    assert!(
        scan.weak_stretches()
            .iter()
            .any(|&(a, b)| a <= ENTERS_AT + 6 && b == 47),
        "{:?}",
        scan.weak_stretches()
    );
    harness.get_by_label("Suggested keyframes, most help first:");
    // A click on the suggestion's frame shows it, coloured.
    harness.get_by_label(&format!("Frame {best}")).click();
    wait_for_within(
        &mut harness,
        "the suggested frame, coloured",
        Duration::from_secs(120),
        |app| app.is_settled() && app.coloured_frame() == Some(best),
    );
    harness.remove_cursor();
    harness.run();
    let image = harness.render().expect("render");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots");
    std::fs::create_dir_all(&out).expect("screenshots folder");
    let path = out.join("keyframe-suggestions.png");
    image.save(&path).expect("save screenshot");
    println!("wrote {}", path.display());

    // One click accepts the best: a keyframe there, and the playhead on it.
    harness
        .get_all_by_label("Add")
        .next()
        .expect("an Add button per suggestion")
        .click();
    harness.run_steps(4);
    let keys: Vec<u64> = harness
        .state()
        .document()
        .expect("project")
        .project()
        .keyframes
        .iter()
        .map(|k| k.frame)
        .collect();
    assert_eq!(keys, vec![0, best]);
    assert_eq!(harness.state().position(), best);
    assert_eq!(
        harness.state().paint_state().tool,
        tincture_app::paint::Tool::Brush,
        "ready to paint"
    );
    assert!(
        harness
            .state()
            .scan()
            .is_some_and(|s| s.suggestions.iter().all(|x| x.frame != best)),
        "an accepted suggestion leaves the list"
    );

    // The colour memory, turned on in Properties, colours the preview too.
    harness.get_by_label("Colour memory").click();
    harness.run_steps(4);
    assert!(
        harness
            .state()
            .document()
            .expect("project")
            .project()
            .defaults
            .colour_memory
    );
    let next = best + 3;
    harness.state_mut().seek(next);
    wait_for_within(
        &mut harness,
        "a frame coloured with the memory",
        Duration::from_secs(120),
        |app| app.is_settled() && app.coloured_frame() == Some(next),
    );
    assert!(
        harness.state().error().is_none(),
        "{:?}",
        harness.state().error()
    );
}
