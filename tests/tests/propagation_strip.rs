//! The README's propagation strip: one shared colour clip, made gray and
//! coloured back from its first frame alone, shown every 10 frames as gray
//! input, the model frame by frame, propagation (stabilised) and the truth.
//! Skips, saying why, without `../shared` (fails instead under
//! `TINCTURE_REQUIRE_FIXTURES`, as in CI).

use std::process::Command;

use tincture_tests::{cli_path, repo, shared_clip};

#[test]
fn propagation_strip_of_a_shared_clip() {
    strip("propagation_strip_of_a_shared_clip", false);
}

/// c07 has the most motion of the shared clips (a pan: its mean absolute
/// frame difference is 3 to 11 times the others'); this strip is coloured
/// with the colour memory, which brings back colour where the pan reveals
/// ground the flow cannot carry colour onto.
#[test]
fn propagation_strip_with_the_colour_memory() {
    strip("propagation_strip_with_the_colour_memory", true);
}

fn strip(test: &str, memory: bool) {
    let Some(clip) = shared_clip(test, "c07_davis_blackswan.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("eval.json");
    let strip = repo().join(if memory {
        "screenshots/propagation-strip-c07-memory.png"
    } else {
        "screenshots/propagation-strip-c07.png"
    });
    let o = Command::new(cli_path())
        .args(["eval"])
        .arg(&clip)
        .args([
            "--keyframes-from-gt",
            "0",
            "--frames",
            "0-49",
            "--cpu",
            // The README's picture, redrawn on purpose.
            "--overwrite",
            "--strip",
        ])
        .arg(&strip)
        .arg("--json")
        .arg(&json)
        .args(if memory { &["--memory"][..] } else { &[] })
        .env("TINCTURE_BUILTIN_MODELS", repo().join("models"))
        .env("RUST_LOG", "error")
        .output()
        .expect("run tincture-cli");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let img = image::open(&strip).expect("the strip is a PNG").into_rgb8();
    // Five columns (frames 0, 10, ..., 40) of 240 px after the captions.
    assert!(img.width() > 5 * 240, "{}", img.width());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    let psnr = r["psnr"]["mean"].as_f64().expect("psnr");
    // The gray clip scores about 22 dB against its truth; colour that
    // followed the film must do far better.
    assert!(psnr > 28.0, "mean PSNR {psnr:.2} dB");
    let engine = r["engine"].as_str().expect("engine");
    assert_eq!(engine.contains("colour memory"), memory, "{engine}");
    println!("wrote {} (mean PSNR {psnr:.2} dB)", strip.display());
}
