//! The memory of coloured frames through the real engine: a generated colour
//! clip in which a textured red square leaves the frame and comes back
//! elsewhere, coloured back from its first frame by `tincture-cli eval`,
//! with the built-in model's features, with and without the memory.

use std::path::Path;

use tincture_core::compose::chroma_field_of;
use tincture_core::frame::ChromaField;
use tincture_tests::{assert_luma_identical, cli, decode_all, ffmpeg, ffprobe, ok, s};

/// Frame `t` of the clip: a striped blue ground, and the red square (48
/// px, a checker of two reds) at x = 40 on frames 0-2, gone on frames 3-9,
/// and at x = 232 from frame 10.
fn frame(t: u32) -> image::RgbImage {
    let (w, h) = (320u32, 192u32);
    let square = match t {
        0..=2 => Some(40u32),
        3..=9 => None,
        _ => Some(232u32),
    };
    image::RgbImage::from_fn(w, h, |x, y| {
        let inside = square.is_some_and(|sx| (sx..sx + 48).contains(&x) && (72..120).contains(&y));
        if inside {
            if (x / 8 + y / 8).is_multiple_of(2) {
                image::Rgb([230, 60, 50])
            } else {
                image::Rgb([170, 30, 30])
            }
        } else if (y / 6).is_multiple_of(2) {
            image::Rgb([60, 90, 170])
        } else {
            image::Rgb([45, 70, 140])
        }
    })
}

/// The clip of [`frame`]s, `frames` long.
fn make_clip(dir: &Path, frames: u32) -> std::path::PathBuf {
    for t in 0..frames {
        frame(t)
            .save(dir.join(format!("f{t:03}.png")))
            .expect("frame written");
    }
    let clip = dir.join("square.mkv");
    ffmpeg(&[
        "-framerate",
        "24",
        "-i",
        s(&dir.join("f%03d.png")),
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv444p",
        s(&clip),
    ]);
    clip
}

/// Mean PSNR of frames 10-15 (the square back) of an evaluation, and the
/// mean share of those frames coloured from weak sources.
fn psnr_after_return(clip: &Path, json: &Path, extra: &[&str]) -> (f64, f64) {
    let mut args = vec![
        "eval",
        s(clip),
        "--keyframes-from-gt",
        "0",
        "--stabilise",
        "0",
        "--json",
        s(json),
    ];
    args.extend_from_slice(extra);
    ok(&cli(&args));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json).expect("json written")).expect("json");
    let per_frame = v["psnr"]["per_frame"].as_array().expect("per-frame PSNR");
    let back: Vec<f64> = per_frame[10..16]
        .iter()
        .map(|p| p.as_f64().expect("a number"))
        .collect();
    let weak = v["weak_share"]
        .as_array()
        .expect("the weak share per frame");
    assert_eq!(weak.len(), 16, "one weak share per frame");
    assert_eq!(weak[0].as_f64(), Some(0.0), "the keyframe is all strong");
    let weak_back: f64 = weak[10..16]
        .iter()
        .map(|w| w.as_f64().expect("a number"))
        .sum::<f64>()
        / 6.0;
    (back.iter().sum::<f64>() / back.len() as f64, weak_back)
}

#[test]
fn a_square_that_comes_back_gets_its_colour_from_the_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(dir.path(), 16);
    let (without, weak_without) = psnr_after_return(&clip, &dir.path().join("without.json"), &[]);
    // As a data term of the solve (the default), the match takes over at
    // once where the flow cannot follow.
    let (with, weak_with) = psnr_after_return(&clip, &dir.path().join("with.json"), &["--memory"]);
    eprintln!(
        "PSNR after the square is back: {without:.2} dB without the memory, {with:.2} dB with it"
    );
    assert!(
        with > without + 2.0,
        "the memory should bring the square's colour back: {with:.2} dB against {without:.2} dB"
    );
    // The square (3.75% of the frame) is weak colour until the memory
    // finds it.
    eprintln!("weak share after the return: {weak_without:.4} without, {weak_with:.4} with");
    assert!(weak_without > 0.02, "{weak_without}");
    assert!(
        weak_with < 0.5 * weak_without,
        "{weak_with} against {weak_without}"
    );
    // Without the data term (matched colour only in the prior's place) it
    // runs too, and does no harm here.
    let (in_place, _) = psnr_after_return(
        &clip,
        &dir.path().join("in_place.json"),
        &["--memory", "--memory-weight", "0"],
    );
    eprintln!("with the memory in the prior's place only: {in_place:.2} dB");
    assert!(
        in_place > without - 0.2,
        "{in_place:.2} dB against {without:.2} dB"
    );
}

/// Frames of the clip the project renders.
const LONG: usize = 40;

/// Mean |ΔCb| + |ΔCr| over the square's place from frame 10 on (x 232-279,
/// y 72-119), inset by 4 px.
fn square_error(a: &ChromaField, b: &ChromaField) -> f32 {
    let w = a.width;
    let mut sum = 0.0;
    let mut n = 0;
    for y in 76..116 {
        for x in 236..276 {
            let i = y * w + x;
            sum += (a.cb[i] - b.cb[i]).abs() + (a.cr[i] - b.cr[i]).abs();
            n += 2;
        }
    }
    sum / n as f32
}

/// A project render of the square clip from a keyframe of true colour at
/// frame 0, with the project's colour memory set as `memory`: the mean
/// chroma error over the square once back for a while (frames 25-39), the
/// output's chroma planes, and its colour-settings digest.
fn project_render(dir: &Path, clip: &Path, memory: bool) -> (f32, Vec<ChromaField>, String) {
    let project = dir.join(format!("memory-{memory}.json"));
    ok(&cli(&["project", "new", s(clip), "-o", s(&project)]));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&project).expect("project")).expect("json");
    doc["keyframes"] = serde_json::json!([{
        "frame": 0,
        "reference": { "kind": "image", "path": s(&dir.join("f000.png")) }
    }]);
    doc["defaults"]["colour_memory"] = serde_json::json!(memory);
    std::fs::write(&project, doc.to_string()).expect("project written");
    let out = dir.join(format!("out-{memory}.mkv"));
    ok(&cli(&[
        "render",
        s(clip),
        "--project",
        s(&project),
        "-o",
        s(&out),
    ]));
    assert_luma_identical(clip, &out);
    let got: Vec<ChromaField> = decode_all(&out).iter().map(chroma_field_of).collect();
    let truth: Vec<ChromaField> = decode_all(clip).iter().map(chroma_field_of).collect();
    let errors: Vec<f32> = (25..LONG)
        .map(|t| square_error(&got[t], &truth[t]))
        .collect();
    eprintln!("colour memory {memory}: square errors {errors:.4?}");
    let digest = ffprobe(&[
        "-v",
        "error",
        "-show_entries",
        "format_tags=TINCTURE_COLOUR_DIGEST",
        "-of",
        "default=nw=1:nk=1",
        s(&out),
    ]);
    (
        errors.iter().sum::<f32>() / errors.len() as f32,
        got,
        digest.trim().to_owned(),
    )
}

/// The project's "Colour memory" reaches the render: the colour differs,
/// is no worse over the square that came back, and the output's recorded
/// colour settings differ (so a resumed or joined render cannot mix the two).
#[test]
fn a_project_s_colour_memory_setting_reaches_the_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(dir.path(), LONG as u32);
    let (without, plain, digest_without) = project_render(dir.path(), &clip, false);
    let (with, matched, digest_with) = project_render(dir.path(), &clip, true);
    assert!(digest_with.starts_with("sha256:"), "{digest_with}");
    assert_ne!(digest_with, digest_without);
    let moved: f32 = (10..LONG)
        .map(|t| square_error(&plain[t], &matched[t]))
        .sum::<f32>();
    assert!(moved > 0.0, "the memory changed nothing");
    assert!(
        with <= without,
        "the colour memory should not make the square worse: {with:.4} against {without:.4}"
    );
}
