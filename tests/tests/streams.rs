//! Audio, timecode, colour tags and metadata survive a render; `--frames`
//! chunks joined equal one whole render.

use std::path::Path;

use tincture_tests::{ffmpeg, ffprobe, frame_hashes, make_reference, render_ok};

fn fixture_with_audio(dir: &Path, name: &str, audio_codec: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25,format=gray",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=4",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-metadata:s:v:0",
        "timecode=10:00:00:00",
        "-metadata",
        "title=Reel 3",
    ];
    args.extend_from_slice(audio_codec);
    let p = path.to_str().expect("utf8").to_owned();
    args.push(&p);
    ffmpeg(&args);
    path
}

/// The first audio stream, decoded and written raw by ffmpeg with `args`
/// (such as `-f s16le`).
fn decoded_audio(path: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0"])
        .args(args)
        .arg("-")
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn audio_samples(path: &Path) -> usize {
    decoded_audio(path, &["-f", "s16le", "-ac", "1"]).len() / 2
}

/// Where the first audio stream's last packet ends, in seconds.
fn audio_end(path: &Path) -> f64 {
    let s = ffprobe(&[
        "-select_streams",
        "a:0",
        "-show_entries",
        "packet=pts_time,duration_time",
        "-of",
        "csv=p=0",
        path.to_str().expect("utf8"),
    ]);
    s.lines()
        .filter_map(|l| {
            let (pts, duration) = l.split_once(',')?;
            Some(pts.parse::<f64>().ok()? + duration.parse::<f64>().unwrap_or(0.0))
        })
        .reduce(f64::max)
        .unwrap_or_else(|| panic!("{}: no audio packets: {s:?}", path.display()))
}

fn start_time(path: &Path, stream: &str) -> f64 {
    let s = ffprobe(&[
        "-select_streams",
        stream,
        "-show_entries",
        "stream=start_time",
        "-of",
        "csv=p=0",
        path.to_str().expect("utf8"),
    ]);
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: no start time for {stream}: {s:?}", path.display()))
}

#[test]
fn audio_timecode_and_tags_survive_a_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let reference = make_reference(&dir.path().join("ref.png"));
    for (src_name, audio, out_name) in [
        ("aac.mp4", &["-c:a", "aac"][..], "out.mkv"),
        ("pcm.mov", &["-c:a", "pcm_s24le"][..], "out.mov"),
    ] {
        let src = fixture_with_audio(dir.path(), src_name, audio);
        let out = dir.path().join(out_name);
        render_ok(
            &src,
            &out,
            &["--reference", reference.to_str().expect("utf8")],
        );

        assert_eq!(
            audio_samples(&out),
            audio_samples(&src),
            "{out_name}: same number of audio samples"
        );
        let frame = 1.0 / 25.0;
        let sync_src = start_time(&src, "a:0") - start_time(&src, "v:0");
        let sync_out = start_time(&out, "a:0") - start_time(&out, "v:0");
        assert!(
            (sync_src - sync_out).abs() < frame,
            "{out_name}: audio offset {sync_out:.4} s vs source {sync_src:.4} s"
        );

        let info = tincture_media::probe(&out).expect("probe");
        assert_eq!(
            info.video.timecode.as_deref(),
            Some("10:00:00:00"),
            "{out_name}: timecode"
        );
        assert_eq!(info.video.colour.matrix, "bt709", "{out_name}: matrix tag");
        assert_eq!(
            info.video.colour.primaries, "bt709",
            "{out_name}: primaries tag"
        );
        let tags: std::collections::HashMap<String, String> = info
            .tags
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        assert_eq!(
            tags.get("tincture_version").map(String::as_str),
            Some(env!("CARGO_PKG_VERSION")),
            "{out_name}: {tags:?}"
        );
        assert!(
            tags.get("tincture_settings_digest")
                .is_some_and(|d| d.starts_with("sha256:")),
            "{out_name}: {tags:?}"
        );
        assert_eq!(tags.get("title").map(String::as_str), Some("Reel 3"));
    }
}

/// Regression: copied packets were rescaled from the packet's own time base,
/// which FFmpeg's demuxer leaves unset, so the output stream's was taken for
/// it. A Matroska source's PCM (milliseconds) written to MOV (samples) kept 2
/// of its packets; a MOV source's written to Matroska played 48 times too late.
/// And a whole film keeps the sound that runs past its last frame.
#[test]
fn pcm_sound_is_kept_whole_in_prores_and_ffv1() {
    let dir = tempfile::tempdir().expect("tmp");
    for (src_name, audio) in [
        ("pcm.mkv", &["-c:a", "pcm_s16le"][..]),
        ("pcm.mov", &["-c:a", "pcm_s24le"][..]),
        // 3 s of picture, 4 s of sound; FFV1 (the later -c:v wins), as
        // H.264's decoder delay happened to read on to the end of the file.
        (
            "long.mkv",
            &[
                "-c:a",
                "pcm_s16le",
                "-vf",
                "trim=duration=3",
                "-c:v",
                "ffv1",
            ][..],
        ),
    ] {
        let src = fixture_with_audio(dir.path(), src_name, audio);
        let samples = decoded_audio(&src, &["-f", "s32le"]);
        assert_eq!(samples.len(), 4 * 48_000 * 4, "{src_name}: 4 s of sound");
        let src_end = audio_end(&src) - start_time(&src, "v:0");
        for (format, out_name) in [("prores", "out.mov"), ("ffv1", "out.mkv")] {
            let out = dir.path().join(format!("{src_name}.{out_name}"));
            render_ok(
                &src,
                &out,
                &["--passthrough", "--no-metrics", "--format", format],
            );
            let what = format!("{src_name} -> {format} {out_name}");
            assert!(
                decoded_audio(&out, &["-f", "s32le"]) == samples,
                "{what}: the decoded sound differs from the source's"
            );
            let out_end = audio_end(&out) - start_time(&out, "v:0");
            assert!(
                (out_end - src_end).abs() < 1.0 / 25.0,
                "{what}: the sound ends at {out_end:.4} s, the source's at {src_end:.4} s"
            );
        }
    }
}

/// FLAC sound cannot go into MOV as it is: the render refuses with the
/// stream, the film and what to do, leaves no output, and MKV takes it.
#[test]
fn flac_sound_to_mov_is_refused_naming_the_stream_and_mkv_keeps_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = fixture_with_audio(dir.path(), "flac.mkv", &["-c:a", "flac", "-c:v", "ffv1"]);
    let out = dir.path().join("out.mov");
    let run = tincture_tests::cli(&[
        "render",
        src.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--passthrough",
        "--no-metrics",
        "--format",
        "prores",
    ]);
    let text = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{text}");
    assert!(
        text.contains("stream 1 (flac)") && text.contains("flac.mkv") && text.contains("ffv1"),
        "the error names the stream, the film and what to do: {text}"
    );
    assert!(!out.exists(), "no output is left");
    let mkv = dir.path().join("out.mkv");
    render_ok(&src, &mkv, &["--passthrough", "--no-metrics"]);
    assert!(decoded_audio(&mkv, &["-f", "s32le"]) == decoded_audio(&src, &["-f", "s32le"]));
}

#[test]
fn subtitles_are_copied() {
    let dir = tempfile::tempdir().expect("tmp");
    let srt = dir.path().join("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:01,500\nREEL THREE\n\n2\n00:00:02,000 --> 00:00:03,000\nTHE END\n").expect("srt");
    let src = dir.path().join("reel.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=24,format=gray",
        "-i",
        srt.to_str().expect("utf8"),
        "-t",
        "3",
        "-c:v",
        "ffv1",
        "-c:s",
        "srt",
        "-metadata:s:s:0",
        "language=fra",
        src.to_str().expect("utf8"),
    ]);
    let out = dir.path().join("out.mkv");
    render_ok(&src, &out, &["--passthrough"]);
    let info = tincture_media::probe(&out).expect("probe");
    let sub = info
        .streams
        .iter()
        .find(|s| s.codec == "subrip")
        .expect("subtitle stream kept");
    assert_eq!(sub.language.as_deref(), Some("fra"));
    let text = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-i",
            out.to_str().expect("utf8"),
            "-map",
            "0:s:0",
            "-f",
            "srt",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("REEL THREE") && text.contains("00:00:02,000 --> 00:00:03,000"),
        "{text}"
    );
}

#[test]
fn chunks_joined_equal_one_whole_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let reference = make_reference(&dir.path().join("ref.png"));
    let src = fixture_with_audio(dir.path(), "reel.mp4", &["-c:a", "aac"]);
    let r = reference.to_str().expect("utf8");
    let whole = dir.path().join("whole.mkv");
    let a = dir.path().join("a.mkv");
    let b = dir.path().join("b.mkv");
    for (out, frames) in [(&whole, None), (&a, Some("0-39")), (&b, Some("40-"))] {
        let mut extra = vec!["--reference", r];
        if let Some(f) = frames {
            extra.extend(["--frames", f]);
        }
        render_ok(&src, out, &extra);
    }
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!("file '{}'\nfile '{}'\n", a.display(), b.display()),
    )
    .expect("list");
    let joined = dir.path().join("joined.mkv");
    ffmpeg(&[
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list.to_str().expect("utf8"),
        "-c",
        "copy",
        joined.to_str().expect("utf8"),
    ]);
    let whole_hashes = frame_hashes(&whole);
    assert_eq!(whole_hashes.len(), 100);
    assert_eq!(
        frame_hashes(&joined),
        whole_hashes,
        "joined chunks equal the whole render, frame for frame"
    );
    let tc_b = tincture_media::probe(&b).expect("probe").video.timecode;
    assert_eq!(
        tc_b.as_deref(),
        Some("10:00:01:15"),
        "the second chunk starts 40 frames later"
    );
}

/// Regression: FFV1 in Matroska states its pixel aspect ratio only in the
/// container, and an early build read it from the codec and wrote 1:1.
#[test]
fn pixel_aspect_ratio_and_field_order_are_carried() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = tincture_tests::make_video(
        &dir.path().join("anamorphic.mkv"),
        "testsrc2=size=320x240:rate=25,setsar=4/3",
        5,
        &["-pix_fmt", "gray", "-c:v", "ffv1", "-field_order", "tt"],
    );
    for name in ["out.mkv", "out.mov"] {
        let out = dir.path().join(name);
        render_ok(&src, &out, &["--passthrough"]);
        let v = tincture_media::probe(&out).expect("probe").video;
        assert_eq!(v.sample_aspect_ratio, "4:3", "{name}");
        assert_eq!(v.display_aspect_ratio, "16:9", "{name}");
        assert_eq!(v.field_order, "tt", "{name}");
    }
}
