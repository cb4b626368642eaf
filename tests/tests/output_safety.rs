//! The source and the user's folders are untouchable: an output that is the
//! source film (by the same path, a hard link or a symbolic link) or a
//! folder holding it is refused even with `--overwrite`, and the source is
//! left byte for byte; an existing folder Tincture did not make is never
//! emptied; and `--overwrite` decides for every file the CLI writes
//! (`metrics --json` here), as it does for renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tincture_tests::{cli, make_video, ok, s, scene, stderr};

/// A folder holding a short gray film `reel.mkv` and a note of the user's.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("reel.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    std::fs::write(dir.path().join("notes.txt"), b"the archivist's notes").expect("write");
    (dir, src)
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read the folder") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                files.insert(path, bytes);
            } else {
                files.insert(path, Vec::new());
            }
        }
    }
    files
}

/// Renders `src` to `out` (passthrough, --overwrite, `extra`) and checks
/// that it is refused as an input, with a message naming the source and
/// saying what to do, and that nothing in `dir` changed.
fn expect_refused_as_input(dir: &Path, src: &Path, out: &Path, extra: &[&str]) {
    let before = snapshot(dir);
    let mut args = vec![
        "render",
        s(src),
        "-o",
        s(out),
        "--passthrough",
        "--overwrite",
    ];
    args.extend_from_slice(extra);
    let res = cli(&args);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(4), "{err}");
    assert!(err.contains("reel.mkv"), "names the source: {err}");
    assert!(err.contains("which this command reads"), "{err}");
    assert!(err.contains("choose another output path"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        snapshot(dir) == before,
        "the folder is unchanged, the source byte for byte"
    );
}

#[test]
fn rendering_over_the_source_is_refused_and_the_source_kept() {
    let (dir, src) = setup();
    expect_refused_as_input(dir.path(), &src, &src, &[]);
    // The same file through `..`.
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let around = dir.path().join("sub").join("..").join("reel.mkv");
    expect_refused_as_input(dir.path(), &src, &around, &[]);
}

#[test]
fn a_folder_holding_the_source_is_not_replaced_by_frames() {
    let (dir, src) = setup();
    expect_refused_as_input(dir.path(), &src, dir.path(), &["--format", "png"]);
    // Nor the folder above it.
    let parent = dir.path().join("films");
    std::fs::create_dir(&parent).expect("mkdir");
    let inner = parent.join("reel.mkv");
    std::fs::copy(&src, &inner).expect("copy");
    expect_refused_as_input(dir.path(), &inner, &parent, &["--format", "png"]);
}

#[test]
fn links_to_the_source_are_refused() {
    let (dir, src) = setup();
    let hard = dir.path().join("hard.mkv");
    std::fs::hard_link(&src, &hard).expect("hard link");
    expect_refused_as_input(dir.path(), &src, &hard, &[]);
    #[cfg(unix)]
    {
        let soft = dir.path().join("soft.mkv");
        std::os::unix::fs::symlink(&src, &soft).expect("symlink");
        expect_refused_as_input(dir.path(), &src, &soft, &[]);
        // A link to the source's folder, as an image-sequence folder.
        let folder = dir.path().join("frames");
        std::os::unix::fs::symlink(dir.path(), &folder).expect("symlink");
        expect_refused_as_input(dir.path(), &src, &folder, &["--format", "png"]);
    }
}

#[test]
fn only_a_frame_folder_tincture_made_is_replaced() {
    let (dir, src) = setup();
    // A folder of the user's, with frames of the same names and a file of theirs.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::fs::write(theirs.join("frame_000000.png"), b"not ours").expect("write");
    std::fs::write(theirs.join("keep.txt"), b"keep").expect("write");
    let before = snapshot(dir.path());
    let res = cli(&[
        "render",
        s(&src),
        "-o",
        s(&theirs),
        "--passthrough",
        "--overwrite",
        "--format",
        "png",
    ]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(4), "{err}");
    assert!(err.contains("choose an empty or new folder"), "{err}");
    assert!(snapshot(dir.path()) == before, "nothing removed");

    // A folder Tincture made is replaced, frame files and all.
    let ours = dir.path().join("ours");
    let render = |extra: &[&str]| {
        let mut args = vec!["render", s(&src), "-o", s(&ours), "--passthrough"];
        args.extend_from_slice(&["--format", "png"]);
        args.extend_from_slice(extra);
        cli(&args)
    };
    ok(&render(&[]));
    assert!(
        ours.join(".tincture-sequence").exists(),
        "marked as Tincture's"
    );
    assert!(ours.join("frame_000002.png").exists());
    let again = render(&[]);
    assert_eq!(again.status.code(), Some(4), "exists: {}", stderr(&again));
    assert!(stderr(&again).contains("--overwrite"), "{}", stderr(&again));
    ok(&render(&["--overwrite"]));
    assert!(image::open(ours.join("frame_000002.png")).is_ok());
    // Once the user adds a file of theirs, it is no longer replaced.
    std::fs::write(ours.join("grade.txt"), b"mine").expect("write");
    let res = render(&["--overwrite"]);
    assert_eq!(res.status.code(), Some(4), "{}", stderr(&res));
    assert!(ours.join("grade.txt").exists() && ours.join("frame_000000.png").exists());
}

#[test]
fn metrics_json_is_replaced_only_with_overwrite() {
    let dir = tempfile::tempdir().expect("tmp");
    let video = make_video(
        &dir.path().join("colour.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "yuv444p", "-c:v", "ffv1"],
    );
    let json = dir.path().join("existing.json");
    std::fs::write(&json, b"{\"kept\": true}").expect("write");
    let res = cli(&["metrics", s(&video), "--json", s(&json)]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(4), "{err}");
    assert!(
        err.contains("existing.json") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&json).expect("read"), b"{\"kept\": true}");

    ok(&cli(&[
        "metrics",
        s(&video),
        "--json",
        s(&json),
        "--overwrite",
    ]));
    let text = std::fs::read_to_string(&json).expect("read");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert!(value.get("kept").is_none(), "replaced: {text}");
    assert!(value.get("warp_error").is_some(), "the report: {text}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tincture-partial"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left");

    // The report may not be the clip it measures.
    let before = std::fs::read(&video).expect("read");
    let res = cli(&["metrics", s(&video), "--json", s(&video), "--overwrite"]);
    assert_eq!(res.status.code(), Some(4), "{}", stderr(&res));
    assert_eq!(std::fs::read(&video).expect("read"), before);
}

/// A render whose partial file another Tincture is writing is refused with
/// a message naming the output and who holds it; nothing is written.
#[test]
fn a_partial_file_in_use_is_not_written_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = make_video(
        &dir.path().join("reel.mkv"),
        &scene("64x48", "24"),
        4,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let out = dir.path().join("reel_colour.mkv");
    let partial = dir.path().join("reel_colour.tincture-partial.mkv");
    let held = tincture_engine::lock::FileLock::acquire(&partial, "a render").expect("held");
    let res = cli(&["render", s(&source), "-o", s(&out), "--passthrough"]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(4), "{err}");
    assert!(err.contains("in use by another Tincture"), "{err}");
    assert!(!out.exists() && !partial.exists(), "nothing written");
    drop(held);
    ok(&cli(&[
        "render",
        s(&source),
        "-o",
        s(&out),
        "--passthrough",
    ]));
    assert!(out.exists());
}
