//! Drives the real Tincture window with egui_kittest (rendered with wgpu,
//! headless): the real frame worker decodes a real film made with the
//! `ffmpeg` CLI. No snapshot comparisons: rendering differs across machines.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tincture_app::document::StateDir;
use tincture_app::{AppOptions, TinctureApp};

const FIXTURE_FRAMES: u64 = 30;

/// Makes a 160x120 gray FFV1 film of 30 frames at 24 fps in `dir`, or says
/// why it cannot.
fn make_fixture(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join("fixture.mkv");
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
        .arg("testsrc2=size=160x120:rate=24")
        .args([
            "-frames:v",
            &FIXTURE_FRAMES.to_string(),
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

/// The fixture film, or `None` (with the reason printed) when ffmpeg is missing.
fn fixture_or_skip(dir: &Path, test: &str) -> Option<PathBuf> {
    match make_fixture(dir) {
        Ok(path) => Some(path),
        Err(reason) => {
            println!("skipping {test}: {reason}");
            None
        }
    }
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
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
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

    // Settles (no endless repaints), and every control has an accessible name.
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

    // The window keeps working: a film opened afterwards replaces the error.
    if let Some(film) = fixture_or_skip(
        dir.path(),
        "opening_a_text_file_shows_an_error (second half)",
    ) {
        harness.state_mut().open(film);
        wait_for_frame(&mut harness, 0);
        assert!(harness.state().error().is_none());
        assert!(
            harness
                .query_by_label_contains("not a readable video file")
                .is_none()
        );
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
            println!("ONNX Runtime not available here: {text}");
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
        println!(
            "skipping readme_screenshot: no b01*.mp4 in {}",
            films.display()
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut harness = harness_with(Some(film), dir.path(), true, [1280.0, 800.0]);
    wait_for(&mut harness, "the first frame", |app| app.is_settled());
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
    harness.step();
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
