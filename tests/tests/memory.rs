//! The memory of coloured frames through the real engine: a generated colour
//! clip in which a textured red square leaves the frame and comes back
//! elsewhere, coloured back from its first frame by `tincture-cli eval`,
//! with the built-in model's features, with and without the memory.

use std::path::Path;

use tincture_tests::{cli, ffmpeg, ok, s};

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

fn make_clip(dir: &Path) -> std::path::PathBuf {
    for t in 0..16 {
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
    let clip = make_clip(dir.path());
    let (without, weak_without) = psnr_after_return(&clip, &dir.path().join("without.json"), &[]);
    // As a data term of the solve, the match takes over at once where the
    // flow cannot follow.
    let (with, weak_with) = psnr_after_return(
        &clip,
        &dir.path().join("with.json"),
        &["--memory", "--memory-weight", "20"],
    );
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
    // The default (matched colour in the prior's place) runs too, and does
    // no harm here.
    let (default, _) = psnr_after_return(&clip, &dir.path().join("default.json"), &["--memory"]);
    eprintln!("with the memory's default: {default:.2} dB");
    assert!(
        default > without - 0.2,
        "{default:.2} dB against {without:.2} dB"
    );
}
