//! Scrub proxies: every frame read back from a proxy is the source frame,
//! sample for sample, on long-GOP films of three layouts; short-GOP films
//! get none; damaged parts are rebuilt; old proxies are evicted.

use std::path::Path;

use tincture_media::{PROXY_CHUNK, ScrubProxy, VideoReader, evict_proxies};
use tincture_tests::{make_video, scene};

/// Builds the proxy of `film` under `root` with one sequential pass.
fn build(root: &Path, film: &Path) -> ScrubProxy {
    let mut reader = VideoReader::open(film).expect("the fixture opens");
    let proxy = ScrubProxy::for_film(root, &reader).expect("a long-GOP film gets a proxy");
    let mut writer = proxy.writer();
    assert!(!writer.complete());
    while let Some(frame) = reader.next_frame().expect("the fixture decodes") {
        writer.push(&reader, &frame).expect("the proxy is written");
    }
    assert!(writer.complete(), "every part is built after one pass");
    writer.finish().expect("the last part is finished");
    proxy
}

fn assert_same_frames(film: &Path, proxy: &mut ScrubProxy, indices: &[u64]) {
    let mut reader = VideoReader::open(film).expect("the fixture opens");
    for &i in indices {
        let source = reader.seek(i).expect("the source seeks").frame;
        let copy = proxy
            .frame(i)
            .unwrap_or_else(|| panic!("frame {i} is in the proxy"));
        assert_eq!(
            copy,
            source,
            "{}: frame {i} from the proxy differs from the source",
            film.display()
        );
    }
}

#[test]
fn proxy_frames_are_the_source_frames() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let frames = PROXY_CHUNK as u32 + 40;
    let gop = frames.to_string();
    let films = [
        // 8-bit 4:2:0, full range (x264 writes gray input as yuvj420p).
        make_video(
            &dir.path().join("h264.mp4"),
            &scene("96x64", "25"),
            frames,
            &[
                "-c:v", "libx264", "-g", &gop, "-bf", "2", "-pix_fmt", "yuvj420p",
            ],
        ),
        // 10-bit 4:2:0.
        make_video(
            &dir.path().join("h264-10bit.mkv"),
            &scene("96x64", "25"),
            frames,
            &["-c:v", "libx264", "-g", &gop, "-pix_fmt", "yuv420p10le"],
        ),
        // Gray, with one keyframe: FFV1 frames that depend on the first.
        make_video(
            &dir.path().join("gray.mkv"),
            &scene("96x64", "25"),
            frames,
            &["-c:v", "ffv1", "-g", &gop, "-pix_fmt", "gray"],
        ),
    ];
    let root = dir.path().join("proxies");
    let last = u64::from(frames) - 1;
    for film in &films {
        let mut proxy = build(&root, film);
        assert_eq!(proxy.built_frames(), u64::from(frames));
        assert_eq!(proxy.chunks(), 2);
        // Both parts, their edges, backwards and forwards.
        let indices = [
            last,
            0,
            PROXY_CHUNK,
            PROXY_CHUNK - 1,
            137,
            138,
            3,
            PROXY_CHUNK + 17,
        ];
        assert_same_frames(film, &mut proxy, &indices);
        assert!(proxy.frame(last + 1).is_none(), "past the end");
    }
    // The gray film stays gray in its proxy.
    let mut gray = ScrubProxy::for_film(
        &root,
        &VideoReader::open(&films[2]).expect("the gray fixture"),
    )
    .expect("a proxy");
    assert!(gray.frame(5).expect("built").chroma.is_none());
}

#[test]
fn short_gop_films_need_no_proxy() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let film = make_video(
        &dir.path().join("short-gop.mp4"),
        &scene("64x48", "25"),
        90,
        &["-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p"],
    );
    let reader = VideoReader::open(&film).expect("the fixture opens");
    assert!(reader.longest_keyframe_run() <= 25);
    assert!(ScrubProxy::for_film(dir.path(), &reader).is_none());
}

#[test]
fn a_damaged_part_is_removed_and_rebuilt() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let frames = PROXY_CHUNK as u32 + 10;
    let gop = frames.to_string();
    let film = make_video(
        &dir.path().join("film.mp4"),
        &scene("64x48", "25"),
        frames,
        &["-c:v", "libx264", "-g", &gop, "-pix_fmt", "yuv420p"],
    );
    let root = dir.path().join("proxies");
    let mut proxy = build(&root, &film);
    // Cut the first part short, as a crash mid-copy or a bad disk would.
    let part = proxy.dir().join("000000.mkv");
    let bytes = std::fs::read(&part).expect("the first part");
    std::fs::write(&part, &bytes[..bytes.len() / 3]).expect("truncate it");
    assert!(proxy.frame(200).is_none(), "a damaged part is not read");
    assert!(!part.exists(), "the damaged part is removed");
    assert!(proxy.has(PROXY_CHUNK + 1), "the other part is kept");
    assert_eq!(proxy.built_frames(), 10);
    // The next pass writes only what is missing.
    let mut rebuilt = build(&root, &film);
    assert_same_frames(&film, &mut rebuilt, &[200, 0, PROXY_CHUNK + 9]);
}

#[test]
fn old_proxies_are_evicted_first() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path();
    for (name, size) in [("old", 400), ("mid", 300), ("kept", 500)] {
        std::fs::create_dir_all(root.join(name)).expect("a proxy folder");
        std::fs::write(root.join(name).join("000000.mkv"), vec![0u8; size]).expect("a part");
        // Distinct modification times, oldest first.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // "kept" is the open film's, and is never removed; 1200 bytes must fit in 850.
    let freed = evict_proxies(root, &root.join("kept"), 850);
    assert_eq!(freed, 400);
    assert!(!root.join("old").exists());
    assert!(root.join("mid").exists() && root.join("kept").exists());
    assert_eq!(evict_proxies(root, &root.join("kept"), 10_000), 0);
}
