//! `tincture-cli metrics` and `tincture-cli eval` on generated clips: the
//! JSON report and its keys, flicker seen by warp error and CDC, the plot,
//! the exemplar (keyframe) protocol, and the errors for unusable input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tincture_tests::{cli, cli_path, ffmpeg, make_video, scene};

const W: u32 = 96;
const H: u32 = 64;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the JSON was written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A textured colour picture; `flicker` 1 rotates its R, G and B (the same
/// structure in other colours).
fn picture(flicker: u32) -> image::RgbImage {
    image::RgbImage::from_fn(W, H, |x, y| {
        let t = ((x * 7 + y * 13) % 23) as i32 - 11;
        let [r, g, b]: [i32; 3] = match (x / 24 + y / 16) % 3 {
            0 => [200, 70, 60],
            1 => [60, 160, 80],
            _ => [70, 90, 210],
        };
        let px = if flicker == 1 { [g, b, r] } else { [r, g, b] };
        image::Rgb(px.map(|c| (c + 3 * t).clamp(0, 255) as u8))
    })
}

/// A clip of `frames` frames from pictures (lossless 4:4:4 FFV1).
fn clip_of(dir: &Path, name: &str, frames: u32, tint_of: impl Fn(u32) -> u32) -> PathBuf {
    let pics = dir.join(format!("{name}_frames"));
    std::fs::create_dir_all(&pics).expect("mkdir");
    for i in 0..frames {
        picture(tint_of(i))
            .save(pics.join(format!("f{i:03}.png")))
            .expect("save frame");
    }
    let out = dir.join(format!("{name}.mkv"));
    let pattern = pics.join("f%03d.png");
    ffmpeg(&[
        "-framerate",
        "24",
        "-i",
        s(&pattern),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv444p",
        s(&out),
    ]);
    out
}

/// A moving colour clip (testsrc2), 4:2:0.
fn moving(dir: &Path, name: &str, frames: u32) -> PathBuf {
    make_video(
        &dir.join(format!("{name}.mkv")),
        &scene(&format!("{W}x{H}"), "24"),
        frames,
        &["-pix_fmt", "yuv420p", "-c:v", "ffv1"],
    )
}

fn temporal_mean(json: &serde_json::Value, key: &str) -> f64 {
    json[key]["mean"]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}.mean is a number: {}", json[key]))
}

#[test]
fn metrics_json_plot_and_flicker() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let still = clip_of(d, "still", 10, |_| 0);
    let flicker = clip_of(d, "flicker", 10, |i| i % 2);

    let json = d.join("still.json");
    let plot = d.join("still.png");
    let o = cli(&["metrics", s(&still), "--json", s(&json), "--plot", s(&plot)]);
    ok(&o);
    let out = stdout(&o);
    for word in [
        "warp error",
        "CDC",
        "colourfulness",
        "mean chroma",
        "worst 5%",
    ] {
        assert!(out.contains(word), "summary names {word}: {out}");
    }
    assert!(out.contains("flicker most"), "{out}");
    let still_json = read_json(&json);
    assert_eq!(still_json["video"], s(&still));
    assert!(still_json["reference"].is_null());
    assert_eq!(still_json["frames"], 10);
    for key in ["warp_error", "cdc", "colorfulness"] {
        for field in ["mean", "median", "p95", "per_frame"] {
            assert!(
                still_json[key].get(field).is_some(),
                "{key}.{field} in {still_json}"
            );
        }
        assert_eq!(
            still_json[key]["per_frame"].as_array().map(Vec::len),
            Some(10)
        );
    }
    assert!(still_json["cdc"]["clip"].is_number());
    assert!(still_json.get("psnr").is_none(), "no reference, no PSNR");
    let still_warp = temporal_mean(&still_json, "warp_error");
    let still_cdc = temporal_mean(&still_json, "cdc");
    assert!(
        still_warp < 1e-6,
        "a static clip does not flicker: {still_warp}"
    );
    assert!(still_cdc < 1e-9, "{still_cdc}");
    // No partial files are left beside the outputs.
    let names: Vec<String> = std::fs::read_dir(d)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    let png = image::open(&plot).expect("the plot is a PNG");
    assert_eq!(png.width(), 1600);
    assert!(png.height() > 600, "three stacked panels: {}", png.height());

    let json = d.join("flicker.json");
    ok(&cli(&["metrics", s(&flicker), "--json", s(&json)]));
    let flicker_json = read_json(&json);
    let warp = temporal_mean(&flicker_json, "warp_error");
    let cdc = temporal_mean(&flicker_json, "cdc");
    assert!(
        warp > 1e-3 && warp > 100.0 * still_warp.max(1e-9),
        "flicker raises the warp error: {warp} vs {still_warp}"
    );
    assert!(cdc > 0.01, "flicker raises CDC: {cdc} vs {still_cdc}");

    // Against a reference (itself), with a frame range.
    let json = d.join("ref.json");
    let o = cli(&[
        "metrics",
        s(&flicker),
        "--reference",
        s(&flicker),
        "--frames",
        "2-5",
        "--json",
        s(&json),
    ]);
    ok(&o);
    assert!(stdout(&o).contains("PSNR"), "{}", stdout(&o));
    let r = read_json(&json);
    assert_eq!(r["reference"], s(&flicker));
    assert_eq!(r["frames"], 4);
    assert_eq!(r["first_frame"], 2);
    for key in ["psnr", "ssim", "ciede2000"] {
        assert!(r[key]["mean"].is_number(), "{key}: {r}");
    }
    assert_eq!(r["ssim"]["mean"].as_f64(), Some(1.0));
    assert_eq!(r["ciede2000"]["mean"].as_f64(), Some(0.0));
}

#[test]
fn one_frame_clip_has_no_temporal_metrics() {
    let dir = tempfile::tempdir().expect("tmp");
    let one = moving(dir.path(), "one", 1);
    let json = dir.path().join("one.json");
    let plot = dir.path().join("one.png");
    let o = cli(&["metrics", s(&one), "--json", s(&json), "--plot", s(&plot)]);
    ok(&o);
    assert!(stdout(&o).contains("n/a (one frame)"), "{}", stdout(&o));
    let r = read_json(&json);
    assert_eq!(r["frames"], 1);
    for key in ["warp_error", "cdc"] {
        for field in ["mean", "median", "p95"] {
            assert!(r[key][field].is_null(), "{key}.{field}: {r}");
        }
    }
    assert!(r["colorfulness"]["mean"].is_number());
    assert_eq!(image::open(&plot).expect("png").width(), 1600);
}

#[test]
fn unusable_references_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let video = moving(d, "video", 6);
    let shorter = moving(d, "shorter", 4);
    let json = d.join("never.json");
    let o = cli(&[
        "metrics",
        s(&video),
        "--reference",
        s(&shorter),
        "--json",
        s(&json),
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("shorter.mkv") && e.contains("4 frames") && e.contains("6"),
        "{e}"
    );
    assert!(!json.exists(), "nothing written on error");

    let bigger = make_video(
        &d.join("bigger.mkv"),
        &scene("128x64", "24"),
        6,
        &["-pix_fmt", "yuv420p", "-c:v", "ffv1"],
    );
    let o = cli(&["metrics", s(&video), "--reference", s(&bigger)]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("128x64"), "{}", stderr(&o));

    // Gray in a colour format (neutral chroma planes) and in a gray format.
    let neutral = make_video(
        &d.join("neutral.mkv"),
        &scene(&format!("{W}x{H}"), "24"),
        6,
        &["-vf", "hue=s=0", "-pix_fmt", "yuv420p", "-c:v", "ffv1"],
    );
    let gray = make_video(
        &d.join("gray.mkv"),
        &scene(&format!("{W}x{H}"), "24"),
        6,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    for reference in [&neutral, &gray] {
        let o = cli(&["metrics", s(&video), "--reference", s(reference)]);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(s(reference)) && e.contains("gray") && e.contains("true colour"),
            "{e}"
        );
    }

    let o = cli(&["metrics", s(&d.join("missing.mkv"))]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.mkv"));
}

#[test]
fn eval_from_keyframes_reports_prediction_and_truth() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let gt = moving(d, "gt", 8);
    let json = d.join("eval.json");
    let plot = d.join("eval.png");
    let o = cli(&[
        "eval",
        s(&gt),
        "--keyframes-from-gt",
        "0",
        "--transfer",
        "--json",
        s(&json),
        "--plot",
        s(&plot),
    ]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("floor"), "{out}");
    assert!(out.contains("PSNR"), "{out}");
    let r = read_json(&json);
    assert_eq!(r["video"], s(&gt));
    assert_eq!(r["engine"], "reference transfer");
    assert_eq!(r["keyframes"], serde_json::json!([0]));
    assert_eq!(r["frames"], 8);
    for key in ["warp_error", "cdc"] {
        assert!(r["truth"][key]["mean"].is_number(), "truth.{key}: {r}");
        assert!(r[key]["mean"].is_number(), "{key}: {r}");
    }
    // The keyframe is the truth itself; the frames coloured from it are not.
    let psnr = r["psnr"]["per_frame"].as_array().expect("psnr series");
    assert_eq!(psnr[0].as_f64(), Some(100.0), "{psnr:?}");
    assert!(psnr[3].as_f64().expect("psnr") < 100.0, "{psnr:?}");
    assert_eq!(r["ciede2000"]["per_frame"][0].as_f64(), Some(0.0));
    assert_eq!(image::open(&plot).expect("png").width(), 1600);

    // Keyframes outside the clip.
    let o = cli(&["eval", s(&gt), "--keyframes-from-gt", "0,8"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("gt.mkv") && e.contains("8 frames"), "{e}");

    // A gray clip has no truth to score against.
    let gray = make_video(
        &d.join("gray.mkv"),
        &scene(&format!("{W}x{H}"), "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let o = cli(&["eval", s(&gray), "--keyframes-from-gt", "0"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("gray"), "{}", stderr(&o));
}

#[test]
fn eval_with_the_builtin_model() {
    let dir = tempfile::tempdir().expect("tmp");
    let gt = moving(dir.path(), "gt", 4);
    let json = dir.path().join("model.json");
    let models = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .join("models");
    let o = Command::new(cli_path())
        .args([
            "eval",
            s(&gt),
            "--render-size",
            "64",
            "--cpu",
            "--json",
            s(&json),
        ])
        .env("RUST_LOG", "error")
        .env("TINCTURE_BUILTIN_MODELS", &models)
        .output()
        .expect("run tincture-cli");
    ok(&o);
    let r = read_json(&json);
    let engine = r["engine"].as_str().expect("engine");
    assert_eq!(engine, "the model frame by frame");
    assert_eq!(r["keyframes"], serde_json::json!([]));
    assert!(r["psnr"]["mean"].is_number());
    assert!(r["truth"]["cdc"]["clip"].is_number());

    // A colour photo of the scene (its first frame, enlarged) steers the
    // model, as a project's reference photo does: closer to the truth than
    // the model alone.
    let photo = dir.path().join("photo.png");
    ffmpeg(&[
        "-i",
        s(&gt),
        "-frames:v",
        "1",
        "-vf",
        "scale=192:128",
        s(&photo),
    ]);
    let gray_photo = dir.path().join("gray photo.png");
    image::open(&photo)
        .expect("the photo")
        .to_luma8()
        .save(&gray_photo)
        .expect("write the gray photo");
    let eval_with_photo = |photo: &Path, json: &Path| {
        Command::new(cli_path())
            .args(["eval", s(&gt), "--render-size", "64", "--cpu"])
            .args(["--reference-photo", s(photo), "--json", s(json)])
            .env("RUST_LOG", "error")
            .env("TINCTURE_BUILTIN_MODELS", &models)
            .output()
            .expect("run tincture-cli")
    };
    let steered = dir.path().join("steered.json");
    ok(&eval_with_photo(&photo, &steered));
    let p = read_json(&steered);
    assert_eq!(
        p["engine"], "the model frame by frame, steered by a reference photo",
        "{p}"
    );
    let (alone, with_photo) = (
        r["psnr"]["mean"].as_f64().expect("psnr"),
        p["psnr"]["mean"].as_f64().expect("psnr"),
    );
    assert!(
        with_photo > alone + 1.0,
        "PSNR {with_photo:.2} dB with the photo against {alone:.2} dB without"
    );
    // A gray photo has no colour to give: refused, by name.
    let o = eval_with_photo(&gray_photo, &dir.path().join("gray.json"));
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("gray photo.png"), "{}", stderr(&o));
}

/// An export measures its output while rendering and leaves the series
/// beside it; `--no-metrics` skips that.
#[test]
fn export_writes_a_metrics_sidecar() {
    let dir = tempfile::tempdir().expect("tmp");
    let gray = make_video(
        &dir.path().join("gray.mkv"),
        &format!("{},hue=s=0", scene("160x96", "24")),
        12,
        &["-c:v", "ffv1", "-pix_fmt", "gray"],
    );
    let reference = tincture_tests::make_reference(&dir.path().join("ref.png"));
    let out = dir.path().join("out.mkv");
    ok(&cli(&[
        "render",
        s(&gray),
        "-o",
        s(&out),
        "--reference",
        s(&reference),
    ]));
    let sidecar = dir.path().join("out.mkv.metrics.json");
    let j = read_json(&sidecar);
    assert_eq!(j["frames"], 12);
    assert_eq!(j["source_frames"], serde_json::json!([0, 11]));
    for key in ["warp_error", "cdc", "colorfulness"] {
        let per_frame = j[key]["per_frame"].as_array().expect("series");
        assert_eq!(per_frame.len(), 12, "{key}");
        assert!(j[key]["mean"].is_number(), "{key}: {}", j[key]);
    }
    assert!(j["warp_error"]["per_frame"][0].is_null());
    assert!(
        j["colorfulness"]["mean"].as_f64().expect("number") > 1.0,
        "coloured output"
    );

    let out2 = dir.path().join("out2.mkv");
    ok(&cli(&[
        "render",
        s(&gray),
        "-o",
        s(&out2),
        "--reference",
        s(&reference),
        "--no-metrics",
    ]));
    assert!(out2.exists());
    assert!(!dir.path().join("out2.mkv.metrics.json").exists());
}
