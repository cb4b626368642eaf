//! The command line: probe, passthrough, refusing to overwrite, and Ctrl-C
//! leaving a valid partial file that can be resumed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tincture_tests::{
    cli, cli_path, decode_all, frame_hashes, make_reference, make_video, render_ok, scene,
};

#[test]
fn probe_reports_streams_and_exact_counts_as_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("reel.mov");
    tincture_tests::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=24000/1001",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-t",
        "2",
        "-c:v",
        "prores_ks",
        "-pix_fmt",
        "yuv422p10le",
        "-c:a",
        "pcm_s16le",
        "-metadata:s:v:0",
        "timecode=01:00:00:00",
        "-color_range",
        "tv",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-movflags",
        "+write_colr",
        src.to_str().expect("utf8"),
    ]);
    let out = cli(&["probe", src.to_str().expect("utf8"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let v = &json["video"];
    assert_eq!(v["width"], 320);
    assert_eq!(v["frame_count"], 48);
    assert_eq!(v["bit_depth"], 10);
    assert_eq!(v["chroma"], "4:2:2");
    assert_eq!(v["frame_rate_exact"], "24000/1001");
    assert_eq!(v["timecode"], "01:00:00:00");
    assert_eq!(v["colour"]["range"], "tv");
    let streams = json["streams"].as_array().expect("streams");
    assert!(
        streams
            .iter()
            .any(|s| s["kind"] == "audio" && s["codec"] == "pcm_s16le"),
        "{streams:?}"
    );
    let text = cli(&["probe", src.to_str().expect("utf8")]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("48 counted"));
}

#[test]
fn passthrough_is_a_plain_transcode() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("yuv.mkv"),
        &scene("320x240", "24"),
        10,
        &["-pix_fmt", "yuv420p", "-c:v", "ffv1"],
    );
    let out = dir.path().join("copy.mkv");
    render_ok(&src, &out, &["--passthrough"]);
    assert_eq!(
        frame_hashes(&out),
        frame_hashes(&src),
        "pixels unchanged, Y and chroma"
    );
}

#[test]
fn existing_output_is_not_overwritten_without_asking() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("g.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let out = dir.path().join("out.mkv");
    std::fs::write(&out, b"precious").expect("write");
    let res = cli(&[
        "render",
        src.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--passthrough",
    ]);
    assert_eq!(res.status.code(), Some(4));
    assert_eq!(std::fs::read(&out).expect("read"), b"precious");
    let res = cli(&[
        "render",
        src.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--passthrough",
        "--overwrite",
    ]);
    assert!(res.status.success());
    assert_eq!(decode_all(&out).len(), 3);
}

#[test]
fn conflicting_colour_sources_and_bad_frames_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = make_video(
        &dir.path().join("g.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let out = dir.path().join("out.mkv");
    let s = src.to_str().expect("utf8");
    let o = out.to_str().expect("utf8");
    // One colour source: the model (the default), a reference, or none.
    for conflict in [
        &["--model", "m.onnx", "--passthrough"][..],
        &["--model", "m.onnx", "--reference", "r.png"],
        &["--reference", "r.png", "--passthrough"],
        &["--passthrough", "--render-size", "64"],
    ] {
        let mut args = vec!["render", s, "-o", o];
        args.extend_from_slice(conflict);
        assert_eq!(cli(&args).status.code(), Some(2), "{conflict:?}");
    }
    let res = cli(&["render", s, "-o", o, "--passthrough", "--frames", "2-9"]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("frames 0-2"));
    assert!(!out.exists());
}

#[test]
fn ctrl_c_leaves_a_valid_partial_file_and_resume_completes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let frames = 600;
    let src = make_video(
        &dir.path().join("long.mkv"),
        &scene("640x480", "24"),
        frames,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let reference = make_reference(&dir.path().join("ref.png"));
    let out = dir.path().join("out.mkv");
    let partial = dir.path().join("out.tincture-partial.mkv");
    let child = Command::new(cli_path())
        .args([
            "render",
            src.to_str().expect("utf8"),
            "-o",
            out.to_str().expect("utf8"),
            "--reference",
            reference.to_str().expect("utf8"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the render has written something, then interrupt it.
    let start = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 200_000
        && start.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let result = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(
        !out.exists(),
        "an interrupted render never takes the final name"
    );
    let written = decode_all(&partial);
    assert!(
        !written.is_empty() && written.len() < frames as usize,
        "partial has {} frames",
        written.len()
    );
    let resume_from = written.len();
    assert!(
        stderr.contains(&format!("--frames {resume_from}-")),
        "{stderr}"
    );

    // Resuming from where it stopped and joining gives the whole reel.
    let rest = dir.path().join("rest.mkv");
    let resume = format!("{resume_from}-");
    render_ok(
        &src,
        &rest,
        &[
            "--reference",
            reference.to_str().expect("utf8"),
            "--frames",
            &resume,
        ],
    );
    let source = decode_all(&src);
    let resumed = decode_all(&rest);
    assert_eq!(written.len() + resumed.len(), source.len());
    for (i, f) in written.iter().chain(&resumed).enumerate() {
        assert!(f.y == source[i].y, "frame {i}: luma");
    }
}
