//! Frame-accurate random access: seeking to a frame returns exactly the
//! pixels that sequential decoding gives for it, on a long-GOP H.264 file
//! with B-frames and on a variable-frame-rate file.

use rand::{Rng, SeedableRng};
use tincture_media::VideoReader;
use tincture_tests::{decode_all, make_video, scene};

fn check_seek_matches_sequential(path: &std::path::Path, expected_frames: u64) {
    let sequential = decode_all(path);
    assert_eq!(
        sequential.len() as u64,
        expected_frames,
        "sequential decode of {}",
        path.display()
    );
    let mut reader = VideoReader::open(path).expect("open");
    assert_eq!(reader.frame_count(), expected_frames, "counted frames");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..50 {
        let i = rng.random_range(0..expected_frames);
        let got = reader.seek(i).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.index, i);
        assert!(
            got.frame == sequential[i as usize],
            "{}: frame {i} after seeking differs from sequential decode",
            path.display()
        );
    }
    // Backwards, from the end to the start, and reading on after a seek.
    let last = expected_frames - 1;
    assert!(reader.seek(last).expect("last").frame == sequential[last as usize]);
    assert!(reader.seek(0).expect("first").frame == sequential[0]);
    let next = reader.next_frame().expect("decode").expect("frame 1");
    assert_eq!(next.index, 1);
    assert!(next.frame == sequential[1]);
    assert!(
        reader.seek(expected_frames).is_err(),
        "past the end is an error"
    );
}

#[test]
fn seek_is_frame_accurate_on_long_gop_h264() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = make_video(
        &dir.path().join("long_gop.mp4"),
        &scene("320x240", "24"),
        180,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "120",
            "-bf",
            "3",
            "-x264-params",
            "b-pyramid=normal",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let info = tincture_media::probe(&path).expect("probe");
    assert!(
        info.video.keyframes <= 3,
        "long GOP fixture has few keyframes: {}",
        info.video.keyframes
    );
    check_seek_matches_sequential(&path, 180);
}

#[test]
fn seek_is_frame_accurate_on_variable_frame_rate() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = scene("320x240", "24");
    // Frame durations change twice: 1/24 s, then 1/12 s, then 1/30 s.
    let filter = format!(
        "{src},settb=1/1000,setpts='if(lt(N,40),N/24,if(lt(N,80),40/24+(N-40)/12,40/24+40/12+(N-80)/30))/TB'"
    );
    let path = make_video(
        &dir.path().join("vfr.mkv"),
        &filter,
        120,
        &[
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/1000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let info = tincture_media::probe(&path).expect("probe");
    assert!(info.video.variable_frame_rate, "fixture is VFR");
    check_seek_matches_sequential(&path, 120);
}
