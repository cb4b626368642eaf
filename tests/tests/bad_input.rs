//! Bad input gets a clear one-line error naming the file and the problem, a
//! non-zero exit, no panic, and no output left behind as if complete.

use std::path::{Path, PathBuf};

use tincture_tests::{cli, ffmpeg, make_reference, make_video, render_ok, scene};

struct Case {
    dir: tempfile::TempDir,
    reference: PathBuf,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let reference = make_reference(&dir.path().join("ref.png"));
        Self { dir, reference }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Renders `input` and checks the failure: exit code, one line naming
    /// `names` and containing `says`, no panic, nothing left in the output folder.
    fn expect_failure(
        &self,
        input: &Path,
        reference: &Path,
        out: &Path,
        code: i32,
        names: &Path,
        says: &str,
    ) {
        let before = listing(out.parent().expect("parent"));
        let res = cli(&[
            "render",
            input.to_str().expect("utf8"),
            "-o",
            out.to_str().expect("utf8"),
            "--reference",
            reference.to_str().expect("utf8"),
        ]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(
            res.status.code(),
            Some(code),
            "{}: stderr: {stderr}",
            input.display()
        );
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        let name = names.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(lines[0].contains(name), "names {name}: {stderr}");
        assert!(
            lines[0].to_lowercase().contains(&says.to_lowercase()),
            "says {says:?}: {stderr}"
        );
        assert_eq!(
            listing(out.parent().expect("parent")),
            before,
            "nothing written: {stderr}"
        );
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn zero_byte_file() {
    let c = Case::new();
    let input = c.path("empty.mp4");
    std::fs::write(&input, b"").expect("write");
    c.expect_failure(&input, &c.reference, &c.path("out.mkv"), 3, &input, "empty");
}

#[test]
fn random_bytes_named_mp4() {
    let c = Case::new();
    let input = c.path("noise.mp4");
    let bytes: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&input, bytes).expect("write");
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mkv"),
        3,
        &input,
        "not a readable video file",
    );
}

#[test]
fn truncated_mp4() {
    let c = Case::new();
    let full = make_video(
        &c.path("full.mp4"),
        &scene("320x240", "24"),
        48,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let bytes = std::fs::read(&full).expect("read");
    let input = c.path("truncated.mp4");
    std::fs::write(&input, &bytes[..bytes.len() / 2]).expect("write");
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mkv"),
        3,
        &input,
        "truncated",
    );
}

#[test]
fn text_file() {
    let c = Case::new();
    let input = c.path("notes.txt");
    std::fs::write(
        &input,
        "Reel 3: scratches at 00:12:04.\nColour notes follow.\n",
    )
    .expect("write");
    c.expect_failure(&input, &c.reference, &c.path("out.mkv"), 3, &input, "text");
}

#[test]
fn audio_only_file() {
    let c = Case::new();
    let input = c.path("sound.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:a",
        "aac",
        input.to_str().expect("utf8"),
    ]);
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mkv"),
        3,
        &input,
        "no video stream",
    );
}

#[test]
fn unsupported_pixel_format() {
    let c = Case::new();
    let input = make_video(
        &c.path("rgb.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "rgb24", "-c:v", "png"],
    );
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mkv"),
        3,
        &input,
        "pixel format rgb24 is not supported",
    );
}

#[test]
fn one_by_one_video() {
    let c = Case::new();
    let raw = c.path("dot.gray");
    std::fs::write(&raw, [16u8, 128, 235]).expect("write");
    let input = c.path("dot.mkv");
    ffmpeg(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-s",
        "1x1",
        "-r",
        "24",
        "-i",
        raw.to_str().expect("utf8"),
        "-c:v",
        "ffv1",
        input.to_str().expect("utf8"),
    ]);
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mkv"),
        3,
        &input,
        "too small",
    );
}

#[test]
fn grayscale_reference_is_refused_with_advice() {
    let c = Case::new();
    let input = make_video(
        &c.path("reel.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let gray_ref = c.path("bw_photo.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=200x150,format=gray",
        "-frames:v",
        "1",
        gray_ref.to_str().expect("utf8"),
    ]);
    c.expect_failure(
        &input,
        &gray_ref,
        &c.path("out.mkv"),
        5,
        &gray_ref,
        "grayscale",
    );
    let msg = String::from_utf8_lossy(
        &cli(&[
            "render",
            input.to_str().expect("utf8"),
            "-o",
            c.path("o.mkv").to_str().expect("utf8"),
            "--reference",
            gray_ref.to_str().expect("utf8"),
        ])
        .stderr,
    )
    .into_owned();
    assert!(msg.contains("pick a colour photograph"), "advice: {msg}");
}

#[test]
fn unwritable_output_folder() {
    let c = Case::new();
    let input = make_video(
        &c.path("reel.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let locked = c.path("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let mut perms = std::fs::metadata(&locked).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&locked, perms).expect("chmod");
    // Root ignores permission bits; a read-only file system stands in for it then.
    let folder = if std::fs::write(locked.join("probe"), b"").is_ok() {
        let _ = std::fs::remove_file(locked.join("probe"));
        PathBuf::from("/proc/sys")
    } else {
        locked
    };
    let out = folder.join("out.mkv");
    c.expect_failure(
        &input,
        &c.reference,
        &out,
        4,
        &out,
        "cannot write the output",
    );
}

#[test]
fn odd_dimensions_work() {
    let c = Case::new();
    let input = make_video(
        &c.path("odd.mkv"),
        "testsrc2=size=854x480:rate=24,scale=853:479",
        3,
        &["-pix_fmt", "yuv444p", "-c:v", "ffv1"],
    );
    let out = c.path("out.mkv");
    render_ok(
        &input,
        &out,
        &["--reference", c.reference.to_str().expect("utf8")],
    );
    let info = tincture_media::probe(&out).expect("probe");
    assert_eq!(
        (info.video.width, info.video.height, info.video.frame_count),
        (853, 479, 3)
    );
    // ProRes takes odd sizes; H.264 4:2:0 cannot, and says so before writing anything.
    let mov = c.path("out.mov");
    render_ok(&input, &mov, &["--passthrough"]);
    c.expect_failure(
        &input,
        &c.reference,
        &c.path("out.mp4"),
        4,
        &c.path("out.mp4"),
        "even width and height",
    );
}
