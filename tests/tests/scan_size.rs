//! Propagation at the sizes archives scan: a shared clip scaled up to
//! 1920x1080 with fresh grain on every frame keeps its carried colour. With
//! the forward-backward check's tolerance fixed at 0.5 px² (as at 854 px),
//! c04's ninth frame was 0.71 weak (coloured by the model or the solver's
//! fill); with the tolerance scaled to the frame, 0.51 (README,
//! "Propagation at scan sizes"). Skips, saying why, without `../shared`
//! (fails instead under `TINCTURE_REQUIRE_FIXTURES`, as in CI).

use tincture_tests::{cli_path, ffmpeg, ok, repo, s, shared_clip};

#[test]
fn carried_colour_holds_on_a_grainy_1080p_scan() {
    let test = "carried_colour_holds_on_a_grainy_1080p_scan";
    let Some(clip) = shared_clip(test, "c04_sam2_coffee.mp4") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let scan = dir.path().join("c04-1080-grain.mkv");
    ffmpeg(&[
        "-i",
        s(&clip),
        "-frames:v",
        "9",
        "-vf",
        "scale=1920:1080:flags=lanczos,noise=c0s=8:c0f=t+u:c0_seed=123457",
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "yuv420p",
        s(&scan),
    ]);
    let json = dir.path().join("eval.json");
    let o = std::process::Command::new(cli_path())
        .args([
            "eval",
            s(&scan),
            "--keyframes-from-gt",
            "0",
            "--cpu",
            "--json",
        ])
        .arg(&json)
        .env("TINCTURE_BUILTIN_MODELS", repo().join("models"))
        .env("RUST_LOG", "error")
        .output()
        .expect("run tincture-cli");
    ok(&o);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the report")).expect("JSON");
    let weak: Vec<f64> = report["weak_share"]
        .as_array()
        .expect("weak_share per frame")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    assert_eq!(weak.len(), 9, "{weak:?}");
    println!("weak share per frame: {weak:?}");
    // Between the 0.51 measured with the scaled tolerance and the 0.71
    // with the fixed one.
    assert!(weak[8] < 0.62, "weak share per frame {weak:?}");
}
