//! A corpus of damaged and hostile films, made here with the `ffmpeg` tool
//! and byte edits: bit flips inside packets, a file cut short mid-GOP, a
//! frame size that changes mid-stream, a packet the decoder refuses in the
//! middle of the film, an absurd sample aspect ratio, a
//! huge timecode tag, and playlists that point at another file.
//!
//! `tincture-cli probe` and `tincture-cli render` run on each under a time
//! limit (a hang fails). The result is success, or one line of error with a
//! documented exit code (3: the input cannot be used); never a panic (exit
//! code 101) nor a signal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tincture_tests::{cli_path, make_video, scene};

/// How long one command may run before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(60);

/// What one run of the CLI ended with.
struct Run {
    code: Option<i32>,
    stderr: String,
}

/// Runs `tincture-cli ARGS`, killing it after [`LIMIT`].
fn run(args: &[&str]) -> Run {
    let mut child = Command::new(cli_path())
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tincture-cli");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tincture-cli {args:?} hung: still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Probes and renders `input` (passed through, to FFV1), checks that each
/// ends in success or in one clear line naming the file with exit code 3,
/// and returns the render's run.
fn probe_and_render(input: &Path, dir: &Path) -> Run {
    let name = input.file_name().and_then(|n| n.to_str()).expect("name");
    let out = dir.join(format!("{name}.out.mkv"));
    let text = input.to_str().expect("utf8");
    let probe = run(&["probe", text]);
    let render = run(&[
        "render",
        text,
        "-o",
        out.to_str().expect("utf8"),
        "--passthrough",
        "--no-metrics",
        "--overwrite",
    ]);
    for (what, r) in [("probe", &probe), ("render", &render)] {
        let Some(code) = r.code else {
            panic!("{what} {name}: killed by a signal; stderr: {}", r.stderr);
        };
        assert!(
            !r.stderr.contains("panicked"),
            "{what} {name}: a panic: {}",
            r.stderr
        );
        assert!(
            code == 0 || code == 3,
            "{what} {name}: exit code {code}, expected 0 or 3; stderr: {}",
            r.stderr
        );
        if code != 0 {
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what} {name}: one line: {}", r.stderr);
            assert!(
                lines[0].starts_with("error: "),
                "{what} {name}: {}",
                r.stderr
            );
            assert!(
                lines[0].contains(name),
                "{what} {name}: names the file: {}",
                r.stderr
            );
        }
    }
    render
}

/// A 64x48 H.264 film of `frames` frames, a keyframe every 12.
fn h264(path: &Path, size: &str, frames: u32) -> PathBuf {
    make_video(
        path,
        &scene(size, "24"),
        frames,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "12",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

#[test]
fn bit_flips_inside_packets() {
    let dir = tempfile::tempdir().expect("tmp");
    let clean = h264(&dir.path().join("clean.mkv"), "64x48", 48);
    let bytes = std::fs::read(&clean).expect("read");
    for seed in 0..8u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut damaged = bytes.clone();
        // The headers stay whole (their damage is another test's); the
        // packets after them take 1 to 64 flipped bits.
        let from = bytes.len() / 5;
        for _ in 0..rng.random_range(1..=64) {
            let at = rng.random_range(from..bytes.len());
            damaged[at] ^= 1 << rng.random_range(0..8);
        }
        let path = dir.path().join(format!("flipped-{seed}.mkv"));
        std::fs::write(&path, &damaged).expect("write");
        probe_and_render(&path, dir.path());
    }
}

#[test]
fn file_cut_short_mid_gop() {
    let dir = tempfile::tempdir().expect("tmp");
    let clean = h264(&dir.path().join("clean.mkv"), "64x48", 48);
    let bytes = std::fs::read(&clean).expect("read");
    for (i, fraction) in [0.3, 0.55, 0.8, 0.97].into_iter().enumerate() {
        let path = dir.path().join(format!("cut-{i}.mkv"));
        std::fs::write(&path, &bytes[..(bytes.len() as f64 * fraction) as usize]).expect("write");
        probe_and_render(&path, dir.path());
    }
}

#[test]
fn frame_size_changes_mid_stream() {
    let dir = tempfile::tempdir().expect("tmp");
    // MPEG-TS streams joined byte for byte are one stream whose size changes.
    let a = h264(&dir.path().join("a.ts"), "64x48", 24);
    let b = h264(&dir.path().join("b.ts"), "96x64", 24);
    let mut joined = std::fs::read(&a).expect("read");
    joined.extend(std::fs::read(&b).expect("read"));
    let path = dir.path().join("two-sizes.ts");
    std::fs::write(&path, joined).expect("write");
    let render = probe_and_render(&path, dir.path());
    assert_eq!(render.code, Some(3), "{}", render.stderr);
    assert!(
        render.stderr.contains("the size of frame 24 is 96x64") && render.stderr.contains("64x48"),
        "names the frame and both sizes: {}",
        render.stderr
    );
}

#[test]
fn absurd_sample_aspect_ratio() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = make_video(
        &dir.path().join("wide-pixels.mkv"),
        &format!("{},setsar=sar=100000/1:max=1000000", scene("64x48", "24")),
        12,
        &["-c:v", "ffv1"],
    );
    let probe = run(&["probe", path.to_str().expect("utf8")]);
    assert_eq!(probe.code, Some(3), "{}", probe.stderr);
    assert!(
        probe.stderr.contains("sample aspect ratio is 100000:1"),
        "{}",
        probe.stderr
    );
    probe_and_render(&path, dir.path());
}

#[test]
fn huge_timecode_tag() {
    let dir = tempfile::tempdir().expect("tmp");
    for (i, tc) in [
        "99999999999999999999:00:00:00",
        // Parses as a number, overflows a frame count (Tincture panicked here).
        "100000000000000000:00:00:00",
        "4294967295:59:59:23",
        "23:59:59:99",
        "not a timecode",
    ]
    .into_iter()
    .enumerate()
    {
        let path = make_video(
            &dir.path().join(format!("timecode-{i}.mkv")),
            &scene("64x48", "24"),
            12,
            &["-c:v", "ffv1", "-metadata", &format!("timecode={tc}")],
        );
        let render = probe_and_render(&path, dir.path());
        assert_eq!(render.code, Some(0), "{}", render.stderr);
    }
}

#[test]
fn playlists_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let film = h264(&dir.path().join("film.ts"), "64x48", 24);
    let m3u8 = dir.path().join("list.m3u8");
    std::fs::write(
        &m3u8,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:1.0,\nfilm.ts\n#EXT-X-ENDLIST\n",
    )
    .expect("write");
    let concat = dir.path().join("list.ffconcat");
    std::fs::write(&concat, "ffconcat version 1.0\nfile 'film.ts'\n").expect("write");
    // The same list under a film's name.
    let disguised = dir.path().join("disguised.mkv");
    std::fs::copy(&m3u8, &disguised).expect("copy");
    assert!(film.exists());
    for list in [&m3u8, &concat, &disguised] {
        let name = list.file_name().and_then(|n| n.to_str()).expect("name");
        for args in [
            vec!["probe", list.to_str().expect("utf8")],
            vec![
                "render",
                list.to_str().expect("utf8"),
                "-o",
                dir.path().join("out.mkv").to_str().expect("utf8"),
                "--passthrough",
            ],
        ] {
            let r = run(&args);
            assert_eq!(r.code, Some(3), "{args:?}: {}", r.stderr);
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{}", r.stderr);
            assert!(
                lines[0].contains(name) && lines[0].contains("Tincture does not open"),
                "{args:?}: {}",
                r.stderr
            );
        }
    }
    assert!(!dir.path().join("out.mkv").exists());
}

/// A film whose 13th packet is damaged (a PNG-in-Matroska film, its chunk
/// header scrambled, so the decoder refuses it rather than concealing it):
/// the probe still counts every frame, and the render stops with an error
/// naming the file and frame 12, leaving no output that looks complete.
#[test]
fn a_damaged_packet_mid_film_stops_the_render_naming_its_frame() {
    let dir = tempfile::tempdir().expect("tmp");
    let clean = make_video(
        &dir.path().join("clean.mkv"),
        &scene("160x120", "24"),
        24,
        &["-c:v", "png", "-pix_fmt", "gray"],
    );
    let mut bytes = std::fs::read(&clean).expect("read");
    let signature = b"\x89PNG\r\n\x1a\n";
    let starts: Vec<usize> = bytes
        .windows(signature.len())
        .enumerate()
        .filter(|(_, w)| w == signature)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 24, "one PNG per frame");
    // The first chunk's type, "IHDR", four bytes after its length.
    let ihdr = starts[12] + signature.len() + 4;
    for b in &mut bytes[ihdr..ihdr + 4] {
        *b ^= 0x5a;
    }
    let path = dir.path().join("damaged-at-12.mkv");
    std::fs::write(&path, &bytes).expect("write");
    let probe = run(&["probe", path.to_str().expect("utf8")]);
    assert_eq!(probe.code, Some(0), "{}", probe.stderr);
    let out = dir.path().join("out.mkv");
    let render = run(&[
        "render",
        path.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--passthrough",
        "--no-metrics",
    ]);
    assert_eq!(render.code, Some(3), "{}", render.stderr);
    let error = render
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("an error line: {}", render.stderr));
    assert!(
        error.contains("damaged-at-12.mkv") && error.contains("frame 12"),
        "names the file and the frame: {error}"
    );
    assert!(!render.stderr.contains("panicked"), "{}", render.stderr);
    assert!(!out.exists(), "no output that looks complete");
}
