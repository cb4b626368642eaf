//! Helpers shared by Tincture's end-to-end tests: fixtures generated with
//! the `ffmpeg` tool (synthetic scenes with known motion), the CLI binary,
//! and frame comparisons.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tincture_core::frame::Frame;
use tincture_media::VideoReader;

/// The environment variable that turns every skipped test into a failed
/// one. `.ci/run` sets it: CI has `../shared`, root, ffmpeg and the ONNX
/// Runtime, so there a test that would skip has lost something it needs.
pub const REQUIRE_FIXTURES: &str = "TINCTURE_REQUIRE_FIXTURES";

/// Whether tests may not skip: [`REQUIRE_FIXTURES`] is set to anything but
/// an empty string or `0`.
pub fn fixtures_required() -> bool {
    std::env::var_os(REQUIRE_FIXTURES).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Every test that cannot run here (no fixture, no `../shared`, no ffmpeg,
/// no runtime, no way to make a full disk) calls this, then returns: it
/// prints `skipping TEST: REASON`, or, under [`REQUIRE_FIXTURES`], fails the
/// test with the reason instead.
#[track_caller]
pub fn skip_or_fail(test: &str, reason: impl Display) {
    assert!(
        !fixtures_required(),
        "{test} cannot be skipped under {REQUIRE_FIXTURES}: {reason}"
    );
    println!("skipping {test}: {reason}");
}

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

/// A lavfi source of 1280x720 film, grainy, panning slowly (3 px a frame)
/// over a textured ground, into which a 300x300 test pattern slides from
/// the right edge from frame `enters_at` on (60 px a frame, so it is no cut)
/// to a stop at x = 700: ground a keyframe before it never saw.
pub fn entering_pattern(enters_at: u64) -> String {
    format!(
        "nullsrc=s=360x180:r=24,\
         geq=lum='128+60*sin(X/23)*cos(Y/17)+30*sin(X/3+Y/4)':cb=128:cr=128,\
         scale=1440x720,crop=1280:720:'n*3':0,noise=alls=6:allf=t+u[bg];\
         testsrc2=s=300x300:r=24[fg];\
         [bg][fg]overlay=x='if(lt(n,{enters_at}),W,max(W-(n-{enters_at})*60,700))':y=200"
    )
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

/// The checkout's root folder (holding `models/`, `screenshots/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the checkout")
        .to_owned()
}

/// The shared colour clip `name` (in `data/video/color`), or `None` after
/// skipping `test`, saying why, when `../shared` or the clip is absent
/// (failing instead under `TINCTURE_REQUIRE_FIXTURES`).
pub fn shared_clip(test: &str, name: &str) -> Option<PathBuf> {
    let Some(shared) = shared_dir() else {
        skip_or_fail(test, "../shared is absent, so there is no shared clip");
        return None;
    };
    let clip = shared.join("data/video/color").join(name);
    if !clip.is_file() {
        skip_or_fail(test, format!("{} is missing", clip.display()));
        return None;
    }
    Some(clip)
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

// ---- A disk that fills up ---------------------------------------------------

/// Set (to `limit`) to make the full-disk tests use the file-size limit even
/// where a tmpfs could be mounted, to check that way on a privileged machine.
pub const SMALL_DISK: &str = "TINCTURE_SMALL_DISK";

/// Marks the child process a full-disk test re-runs itself in.
const SMALL_DISK_CHILD: &str = "TINCTURE_SMALL_DISK_CHILD";

/// A folder that can take only about so many bytes, for the full-disk tests.
///
/// Two ways, both checked by the same tests:
/// * where `mount` is allowed (root with `CAP_SYS_ADMIN`), a tmpfs of that
///   size is mounted on the folder: a real full disk, and writes fail with
///   `ENOSPC` ("the disk is full");
/// * elsewhere (a container without `CAP_SYS_ADMIN`, a plain user) the test
///   runs again in a child process of its own, which, once its fixtures are
///   made, may write no file past that size (`RLIMIT_FSIZE`, with `SIGXFSZ`
///   ignored so the write fails with `EFBIG` instead of killing the process).
///   The limit is the whole process's, which is why the test runs alone in
///   a child: the exports under test write from threads of the test process,
///   and the other tests of the binary must not be limited. An `EFBIG` is not
///   a full disk, so the export then reports "writing failed", not "the disk
///   is full"; everything else (the partial file kept, valid, named) is the same.
#[derive(Debug)]
pub enum SmallDisk {
    /// A tmpfs mounted on the folder, unmounted on drop.
    Tmpfs(PathBuf),
    /// This (child) process may write files up to this many bytes once
    /// [`SmallDisk::fill_from_now`] is called.
    FileSizeLimit(u64),
}

impl SmallDisk {
    /// Makes the empty folder `dir` a disk of about `bytes` for the test
    /// named `test` (its full name, as `cargo test -- --exact` takes it).
    ///
    /// Returns `None` when the test has already run, and passed, in a child
    /// process under the file-size limit: the caller then returns. Panics
    /// when that child fails.
    pub fn make(dir: &Path, bytes: u64, test: &str) -> Option<Self> {
        std::fs::create_dir(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        if std::env::var_os(SMALL_DISK_CHILD).is_some() {
            return Some(Self::FileSizeLimit(bytes));
        }
        let forced = std::env::var_os(SMALL_DISK).is_some_and(|v| v == "limit");
        let why_not = if forced {
            format!("{SMALL_DISK}=limit")
        } else {
            match Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={bytes}"),
                    "tincture-test",
                ])
                .arg(dir)
                .output()
            {
                Ok(o) if o.status.success() => return Some(Self::Tmpfs(dir.to_owned())),
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => format!("mount cannot run: {e}"),
            }
        };
        println!("{test}: no tmpfs ({why_not}); running it again under a file-size limit");
        let out = Command::new(std::env::current_exe().expect("test executable"))
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(SMALL_DISK_CHILD, "1")
            .output()
            .expect("run the test in a child process");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{text}");
        assert!(
            out.status.success() && text.contains("test result: ok. 1 passed"),
            "{test} failed under the file-size limit: {:?}",
            out.status
        );
        None
    }

    /// From now on the disk is small: a no-op for a tmpfs; for the limit,
    /// this process can no longer write a file past the size, until the
    /// returned guard is dropped.
    pub fn fill_from_now(&self) -> FileSizeGuard {
        let Self::FileSizeLimit(bytes) = *self else {
            return FileSizeGuard(None);
        };
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on the process's own signal disposition
        // and limits, with valid pointers to local values.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &raw mut old), 0);
            let new = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: old.rlim_max,
            };
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_FSIZE, &raw const new),
                0,
                "setrlimit(RLIMIT_FSIZE): {}",
                std::io::Error::last_os_error()
            );
        }
        FileSizeGuard(Some(old))
    }

    /// The words of the export's error on this disk: "the disk is full"
    /// on a tmpfs, "writing failed" under the file-size limit.
    pub fn failure_words(&self) -> &'static str {
        match self {
            Self::Tmpfs(_) => "the disk is full",
            Self::FileSizeLimit(_) => "writing failed",
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Self::Tmpfs(dir) = self {
            let _ = Command::new("umount").arg(&*dir).status();
        }
    }
}

/// Lifts the file-size limit of [`SmallDisk::fill_from_now`] when dropped.
#[derive(Debug)]
pub struct FileSizeGuard(Option<libc::rlimit>);

impl Drop for FileSizeGuard {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            // SAFETY: restores the limit read before, from a valid local.
            unsafe {
                libc::setrlimit(libc::RLIMIT_FSIZE, &raw const old);
            }
        }
    }
}
