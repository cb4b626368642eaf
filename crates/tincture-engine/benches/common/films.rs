//! Generated films for the benches, made once with the ffmpeg CLI and kept
//! in the target folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use tincture_media::VideoReader;

/// `testsrc2` at `w` x `h`, 24 fps, `frames` frames, H.264 with a keyframe
/// every 48 frames, as `target/bench-films/NAME-WxH-FRAMES.mp4`.
pub fn testsrc_film(name: &str, w: usize, h: usize, frames: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-films");
    std::fs::create_dir_all(&dir).expect("the bench films folder");
    let path = dir.join(format!("{name}-{w}x{h}-{frames}.mp4"));
    if VideoReader::open(&path).is_ok_and(|r| r.frame_count() == frames) {
        return path;
    }
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={w}x{h}:rate=24"))
        .args(["-frames:v", &frames.to_string()])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-g", "48"])
        .arg(&path)
        .status()
        .expect("the ffmpeg CLI runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
    path
}
