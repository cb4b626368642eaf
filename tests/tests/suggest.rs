//! `tincture-cli project suggest`: where a project's colour is weak, and
//! where one more keyframe would help, headless. A generated 1280x720 film
//! pans over a textured ground; from frame 24 a test pattern slides in from
//! the right, ground the only keyframe (frame 0) never saw (the film of the
//! window's keyframe-suggestion test).

use std::path::Path;

use tincture_tests::{cli, entering_pattern, make_video, ok, s, stderr};

const ENTERS_AT: u64 = 24;

fn film(dir: &Path) -> std::path::PathBuf {
    make_video(
        &dir.join("entering.mkv"),
        &entering_pattern(ENTERS_AT),
        48,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    )
}

#[test]
fn project_suggest_points_where_the_pattern_comes_in() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let film = film(d);
    let project = d.join("p.json");
    ok(&cli(&["project", "new", s(&film), "-o", s(&project)]));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&project).expect("project")).expect("json");
    doc["keyframes"] = serde_json::json!([{ "frame": 0 }]);
    std::fs::write(&project, doc.to_string()).expect("project written");
    let json = d.join("suggest.json");
    let o = cli(&[
        "project",
        "suggest",
        s(&project),
        "--cpu",
        "--json",
        s(&json),
    ]);
    ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    println!("{out}{}", stderr(&o));
    assert!(out.contains("shot 0-47:"), "{out}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    let shots = v.as_array().expect("one entry per shot");
    assert_eq!(shots.len(), 1, "{v}");
    let weak: Vec<f64> = shots[0]["weak_share"]
        .as_array()
        .expect("weak shares")
        .iter()
        .map(|w| w.as_f64().expect("a number"))
        .collect();
    assert_eq!(weak.len(), 48);
    assert_eq!(weak[0], 0.0, "the keyframe is all strong");
    let mean = |r: std::ops::Range<usize>| weak[r.clone()].iter().sum::<f64>() / r.len() as f64;
    let (before, after) = (
        mean(1..ENTERS_AT as usize),
        mean(ENTERS_AT as usize + 8..48),
    );
    assert!(
        after > before + 0.05,
        "before {before:.3}, after {after:.3}"
    );
    let best = shots[0]["suggested_keyframes"][0]["frame"]
        .as_u64()
        .expect("a suggestion");
    assert!(
        (ENTERS_AT..ENTERS_AT + 12).contains(&best),
        "best suggestion {best}: {v}"
    );
    // The keyframe is never suggested, and --frames outside the film is refused.
    assert!(
        shots[0]["suggested_keyframes"]
            .as_array()
            .expect("suggestions")
            .iter()
            .all(|x| x["frame"].as_u64() != Some(0))
    );
    let o = cli(&["project", "suggest", s(&project), "--frames", "40-90"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--frames 40-90"), "{}", stderr(&o));
}
