//! Helpers shared by Tincture's end-to-end tests: fixtures generated with
//! the `ffmpeg` tool (synthetic scenes with known motion), the CLI binary,
//! and frame comparisons.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tincture_core::frame::Frame;
use tincture_media::VideoReader;

/// Runs the `ffmpeg` tool with `args`, panicking with its output on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg tool is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ffprobe` and returns its stdout.
pub fn ffprobe(args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A moving, textured synthetic scene of `frames` frames (lavfi testsrc2).
pub fn scene(size: &str, rate: &str) -> String {
    format!("testsrc2=size={size}:rate={rate}")
}

/// Generates a video: `filter` is a lavfi source, `codec_args` the encoding.
pub fn make_video(path: &Path, filter: &str, frames: u32, codec_args: &[&str]) -> PathBuf {
    let frames = frames.to_string();
    let mut args = vec!["-f", "lavfi", "-i", filter, "-frames:v", &frames];
    args.extend_from_slice(codec_args);
    let p = path.to_string_lossy().into_owned();
    args.push(&p);
    ffmpeg(&args);
    path.to_owned()
}

/// A colour reference photograph: a sky-blue top, a green middle and a
/// warm brown bottom, with texture, as a PNG.
pub fn make_reference(path: &Path) -> PathBuf {
    let (w, h) = (240u32, 180u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 7 + y * 13) % 17) as i32 - 8;
        let base: [i32; 3] = if y < h / 3 {
            [110, 160, 230]
        } else if y < 2 * h / 3 {
            [60, 140, 50]
        } else {
            [150, 95, 55]
        };
        image::Rgb(base.map(|c| (c + n * 2).clamp(0, 255) as u8))
    });
    img.save(path).expect("write the reference");
    path.to_owned()
}

/// The `tincture-cli` binary built beside the test executable.
pub fn cli_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(format!("tincture-cli{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first: `cargo build --workspace --all-targets` (make test does)",
        bin.display()
    );
    bin
}

/// Runs `tincture-cli` with `args`.
pub fn cli(args: &[&str]) -> Output {
    Command::new(cli_path())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tincture-cli")
}

/// Runs `tincture-cli render INPUT -o OUTPUT EXTRA...` and panics with its
/// error output unless it succeeds.
pub fn render_ok(input: &Path, output: &Path, extra: &[&str]) {
    let mut args = vec![
        "render",
        input.to_str().expect("utf8"),
        "-o",
        output.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    let out = cli(&args);
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes every frame of a file sequentially.
pub fn decode_all(path: &Path) -> Vec<Frame> {
    let mut reader = VideoReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().unwrap_or_else(|e| panic!("{e}")) {
        assert_eq!(f.index, frames.len() as u64, "sequential indices");
        frames.push(f.frame);
    }
    frames
}

/// Asserts that `output` has `source`'s frames with bit-identical luma at
/// the same bit depth, and that every frame was coloured (some Cb sample
/// more than 4 code values from neutral).
pub fn assert_luma_identical(source: &Path, output: &Path) {
    let src = decode_all(source);
    let out = decode_all(output);
    assert_eq!(src.len(), out.len(), "frame count");
    for (i, (a, b)) in src.iter().zip(&out).enumerate() {
        assert_eq!(a.bit_depth, b.bit_depth, "bit depth");
        assert!(a.y == b.y, "frame {i}: luma differs");
        let chroma = b.chroma.as_ref().expect("output has chroma");
        let mid = 1u16 << (b.bit_depth - 1);
        assert!(
            chroma.cb.data.iter().any(|&v| v.abs_diff(mid) > 4),
            "frame {i}: the output is not coloured"
        );
    }
}

/// The per-frame hashes of a file's video (ffmpeg's framemd5, hash column only).
pub fn frame_hashes(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// The shared data folder beside the checkout, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    dir.is_dir().then_some(dir)
}

/// A path as `&str`, for command arguments.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A command's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that a command succeeded, showing its exit code and output when not.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}
