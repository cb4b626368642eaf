//! Colour that follows the film, end to end: a generated scene with known
//! motion and known colour is made gray, one keyframe gets its true colour
//! (a reference picture of that frame) or a few painted strokes, and
//! `tincture-cli render --project` must bring the known colours back on
//! every frame, with the gray film's luma untouched. Also the project's bad
//! input: keyframes outside the film, strokes painted on a frame of another
//! size, a different or moved film, a gray reference photo.

use std::path::{Path, PathBuf};

use serde_json::json;
use tincture_core::compose::chroma_field_of;
use tincture_core::frame::ChromaField;
use tincture_tests::{assert_luma_identical, cli, decode_all, ffmpeg, ok, s, stderr};

const W: u32 = 128;
const H: u32 = 96;
const FRAMES: u32 = 16;
/// Background pattern speed, pixels per frame (to the right).
const SPEED: f32 = 1.5;

/// Frame `t` of the scene: a textured field whose colour changes from red
/// (left) to blue (right) at a moving boundary, and a green disc moving
/// down-right. The colour belongs to the content and moves with it.
fn picture(t: u32) -> image::RgbImage {
    let shift = t as f32 * SPEED;
    let (cx, cy) = (40.0 + 2.0 * t as f32, 30.0 + 1.0 * t as f32);
    image::RgbImage::from_fn(W, H, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let sx = fx - shift;
        let texture = 9.0 * (sx * 0.45).sin() * (fy * 0.37).cos();
        let disc = (fx - cx).powi(2) + (fy - cy).powi(2) < 14.0f32.powi(2);
        let rgb: [f32; 3] = if disc {
            [90.0, 200.0, 90.0]
        } else if sx < 64.0 {
            [200.0, 70.0, 60.0]
        } else {
            [40.0, 60.0, 150.0]
        };
        image::Rgb(rgb.map(|c| (c + texture).clamp(0.0, 255.0) as u8))
    })
}

struct Scene {
    truth: PathBuf,
    film: PathBuf,
    key_png: PathBuf,
}

fn scene(dir: &Path) -> Scene {
    let pics = dir.join("frames");
    std::fs::create_dir_all(&pics).expect("mkdir");
    for t in 0..FRAMES {
        picture(t)
            .save(pics.join(format!("f{t:03}.png")))
            .expect("save frame");
    }
    let pattern = pics.join("f%03d.png");
    let truth = dir.join("truth.mkv");
    let film = dir.join("film.mkv");
    for (out, fmt) in [(&truth, "yuv444p"), (&film, "gray")] {
        ffmpeg(&[
            "-framerate",
            "24",
            "-i",
            s(&pattern),
            "-c:v",
            "ffv1",
            "-pix_fmt",
            fmt,
            s(out),
        ]);
    }
    Scene {
        truth,
        film,
        key_png: pics.join("f000.png"),
    }
}

/// Creates a project for the film with `cli project new`, then edits its
/// JSON with `edit`.
fn project(
    dir: &Path,
    film: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let path = dir.join(name);
    ok(&cli(&[
        "project",
        "new",
        s(film),
        "-o",
        s(&path),
        "--overwrite",
    ]));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    path
}

/// Plain settings: no model prior (the test must not depend on it), no
/// look, so the colours can be compared with the truth.
fn plain(doc: &mut serde_json::Value) {
    doc["defaults"] = json!({
        "saturation": 1.0,
        "shadow_rolloff": {"threshold": 0.08, "width": 0.1, "enabled": false},
        "highlight_rolloff": {"threshold": 0.92, "width": 0.08, "enabled": false},
        "stabiliser": 0.5,
        "model_prior": false
    });
}

fn chroma(path: &Path) -> Vec<ChromaField> {
    decode_all(path).iter().map(chroma_field_of).collect()
}

/// Mean |ΔCb| + |ΔCr| / 2 over the frame's inner area (a border of 8 px is
/// left out: content enters there that no keyframe has seen).
fn error(a: &ChromaField, b: &ChromaField) -> f32 {
    let (w, h) = (a.width, a.height);
    let mut sum = 0.0;
    let mut n = 0;
    for y in 8..h - 8 {
        for x in 8..w - 8 {
            let i = y * w + x;
            sum += (a.cb[i] - b.cb[i]).abs() + (a.cr[i] - b.cr[i]).abs();
            n += 2;
        }
    }
    sum / n as f32
}

#[test]
fn one_keyframe_of_true_colour_colours_the_shot() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let key = sc.key_png.clone();
    let p = project(d, &sc.film, "p.json", |doc| {
        plain(doc);
        doc["keyframes"] =
            json!([{ "frame": 0, "reference": { "kind": "image", "path": s(&key) } }]);
    });
    let out = d.join("out.mkv");
    ok(&cli(&[
        "render",
        s(&sc.film),
        "--project",
        s(&p),
        "-o",
        s(&out),
    ]));
    assert_luma_identical(&sc.film, &out);
    let (got, truth) = (chroma(&out), chroma(&sc.truth));
    assert_eq!(got.len(), FRAMES as usize);
    // Colour chroma in this scene is about 0.1 to 0.25 from neutral; gray
    // output would be off by that much everywhere.
    let gray = error(
        &ChromaField::neutral(W as usize, H as usize),
        &truth[FRAMES as usize - 1],
    );
    let errors: Vec<f32> = got.iter().zip(&truth).map(|(g, tr)| error(g, tr)).collect();
    eprintln!("forward errors {errors:?}");
    for (t, (g, tr)) in got.iter().zip(&truth).enumerate() {
        let e = error(g, tr);
        assert!(
            e < 0.01 && e < 0.1 * gray,
            "frame {t}: mean chroma error {e:.4} (gray would be {gray:.4})"
        );
    }
}

#[test]
fn a_later_keyframe_colours_backward() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let last = FRAMES - 1;
    let key = d.join("frames").join(format!("f{last:03}.png"));
    let p = project(d, &sc.film, "p.json", |doc| {
        plain(doc);
        doc["keyframes"] =
            json!([{ "frame": last, "reference": { "kind": "image", "path": s(&key) } }]);
    });
    let out = d.join("out.mkv");
    ok(&cli(&[
        "render",
        s(&sc.film),
        "--project",
        s(&p),
        "-o",
        s(&out),
    ]));
    let (got, truth) = (chroma(&out), chroma(&sc.truth));
    let errors: Vec<f32> = got.iter().zip(&truth).map(|(g, tr)| error(g, tr)).collect();
    eprintln!("forward errors {errors:?}");
    let errors: Vec<f32> = got.iter().zip(&truth).map(|(g, tr)| error(g, tr)).collect();
    eprintln!("backward errors {errors:?}");
    for (t, (g, tr)) in got.iter().zip(&truth).enumerate() {
        let e = error(g, tr);
        assert!(e < 0.01, "frame {t}: mean chroma error {e:.4}");
    }
    // A chunk of the same render equals those frames of the whole.
    let chunk = d.join("chunk.mkv");
    ok(&cli(&[
        "render",
        s(&sc.film),
        "--project",
        s(&p),
        "--frames",
        "5-9",
        "-o",
        s(&chunk),
    ]));
    let whole = decode_all(&out);
    let part = decode_all(&chunk);
    for (k, f) in part.iter().enumerate() {
        assert!(
            f.chroma == whole[5 + k].chroma,
            "frame {} of a chunk differs from the whole render",
            5 + k
        );
    }
    // Chunks sharing a state folder: the first leaves the forward state at
    // its end (and the colour carried back to its start), the second
    // continues from it; the frames are the whole render's.
    let state = d.join("chunk-state");
    for (range, name) in [("0-4", "a.mkv"), ("5-9", "b.mkv")] {
        ok(&cli(&[
            "render",
            s(&sc.film),
            "--project",
            s(&p),
            "--frames",
            range,
            "--chunk-state",
            s(&state),
            "-o",
            s(&d.join(name)),
        ]));
    }
    let left: Vec<String> = std::fs::read_dir(&state)
        .expect("the state folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().any(|n| n.starts_with("fwd-4-")),
        "the first chunk left its forward state: {left:?}"
    );
    let chained: Vec<_> = [d.join("a.mkv"), d.join("b.mkv")]
        .iter()
        .flat_map(|f| decode_all(f))
        .collect();
    for (k, f) in chained.iter().enumerate() {
        assert!(
            f.chroma == whole[k].chroma,
            "frame {k} of chunks sharing a state folder differs from the whole render"
        );
    }
}

#[test]
fn painted_strokes_alone_colour_the_regions() {
    // Levin's result, our fallback without any model: a few strokes per
    // region colour the whole frame, following luma edges, and the shot.
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let stroke = |pts: serde_json::Value, color: &str| json!({ "points": pts, "color": color, "size": 5.0, "canvas": [W, H] });
    let p = project(d, &sc.film, "p.json", |doc| {
        plain(doc);
        doc["keyframes"] = json!([{
            "frame": 0,
            "strokes": [
                stroke(json!([[10.0, 70.0], [30.0, 85.0], [50.0, 75.0]]), "#c8463c"),
                stroke(json!([[90.0, 20.0], [110.0, 60.0], [100.0, 85.0]]), "#283c96"),
                stroke(json!([[36.0, 28.0], [44.0, 32.0]]), "#5ac85a"),
            ]
        }]);
    });
    let out = d.join("out.mkv");
    ok(&cli(&[
        "render",
        s(&sc.film),
        "--project",
        s(&p),
        "-o",
        s(&out),
    ]));
    assert_luma_identical(&sc.film, &out);
    let got = chroma(&out);
    let truth = chroma(&sc.truth);
    // Strokes give region colour, not the texture's per-pixel variation:
    // compare with a looser bound, and against gray.
    for t in [0usize, 8, FRAMES as usize - 1] {
        let e = error(&got[t], &truth[t]);
        let gray = error(&ChromaField::neutral(W as usize, H as usize), &truth[t]);
        eprintln!("strokes: frame {t}: error {e:.4}, gray {gray:.4}");
        assert!(
            e < 0.1 * gray,
            "frame {t}: error {e:.4} is not well below gray's {gray:.4}"
        );
    }
}

#[test]
fn bad_projects_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let out = d.join("out.mkv");
    let render = |p: &Path, film: &Path| {
        cli(&[
            "render",
            s(film),
            "--project",
            s(p),
            "-o",
            s(&out),
            "--overwrite",
        ])
    };

    // A keyframe outside the film.
    let p = project(d, &sc.film, "outside.json", |doc| {
        plain(doc);
        doc["keyframes"] = json!([{ "frame": 500 }]);
    });
    let o = render(&p, &sc.film);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("outside.json") && e.contains("500") && e.contains("outside the film"),
        "{e}"
    );

    // Strokes painted on a frame of another size.
    let p = project(d, &sc.film, "size.json", |doc| {
        plain(doc);
        doc["keyframes"] = json!([{ "frame": 2, "strokes": [
            { "points": [[5.0, 5.0]], "color": "#ff0000", "size": 3.0, "canvas": [1920, 1080] }
        ] }]);
    });
    let o = render(&p, &sc.film);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("1920x1080") && e.contains(&format!("{W}x{H}")),
        "{e}"
    );

    // Another film than the project's.
    let other = d.join("other.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={W}x{H}:rate=24"),
        "-frames:v",
        "16",
        "-pix_fmt",
        "gray",
        "-c:v",
        "ffv1",
        s(&other),
    ]);
    let p = project(d, &sc.film, "good.json", plain);
    let o = render(&p, &other);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("other.mkv") && e.contains("not the film"), "{e}");
    assert!(!out.exists(), "nothing is written for a refused project");

    // The film moved: the project finds it by its fingerprint.
    let moved = d.join("moved.mkv");
    std::fs::copy(&sc.film, &moved).expect("copy");
    let p = project(d, &moved, "moved.json", plain);
    std::fs::remove_file(&moved).expect("move away");
    let o = cli(&["project", "check", s(&p)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not there"), "{}", stderr(&o));
    let o = cli(&["project", "relink", s(&p), s(&other)]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "a different film is not accepted: {}",
        stderr(&o)
    );
    ok(&cli(&["project", "relink", s(&p), s(&sc.film)]));
    ok(&cli(&["project", "check", s(&p)]));
    ok(&render(&p, &sc.film));

    // A gray reference photo has no colour to give.
    let gray_png = d.join("gray.png");
    image::GrayImage::from_fn(64, 48, |x, y| image::Luma([((x * 3 + y * 2) % 255) as u8]))
        .save(&gray_png)
        .expect("save");
    let p = project(d, &sc.film, "grayref.json", |doc| {
        plain(doc);
        doc["references"] = json!([{ "path": s(&gray_png) }]);
    });
    let o = render(&p, &sc.film);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("gray.png") && e.contains("grayscale"), "{e}");
}

#[test]
fn shots_live_in_the_project_and_export_as_an_edl() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let key = sc.key_png.clone();
    let key6 = d.join("frames").join("f006.png");
    let p = project(d, &sc.film, "p.json", |doc| {
        plain(doc);
        doc["keyframes"] = json!([
            { "frame": 0, "reference": { "kind": "image", "path": s(&key) } },
            { "frame": 6, "reference": { "kind": "image", "path": s(&key6) } }
        ]);
    });
    let edl = d.join("shots.edl");
    // Import an EDL with a cut at frame 6 into the project, then export it back.
    std::fs::write(
        &edl,
        "TITLE: film\nFCM: NON-DROP FRAME\n\n\
         001  AX       V     C        00:00:00:00 00:00:00:06 01:00:00:00 01:00:00:06\n\
         002  AX       V     C        00:00:00:06 00:00:00:16 01:00:00:06 01:00:00:16\n",
    )
    .expect("write edl");
    ok(&cli(&[
        "shots",
        s(&sc.film),
        "--import",
        s(&edl),
        "--project",
        s(&p),
    ]));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    assert_eq!(doc["shots"][0]["end"], 5, "{doc}");
    assert_eq!(doc["shots"][1]["start"], 6, "{doc}");
    let back = d.join("back.edl");
    ok(&cli(&[
        "shots",
        s(&sc.film),
        "--project",
        s(&p),
        "--from-project",
        "--edl",
        s(&back),
    ]));
    let text = std::fs::read_to_string(&back).expect("edl written");
    assert!(text.contains("00:00:00:06 00:00:00:16"), "{text}");
    // A render across the cut: the stabiliser and propagation restart there.
    let out = d.join("out.mkv");
    ok(&cli(&[
        "render",
        s(&sc.film),
        "--project",
        s(&p),
        "-o",
        s(&out),
    ]));
    assert_luma_identical(&sc.film, &out);
}

#[test]
fn a_reference_photo_steers_by_its_weight() {
    // A period photo of another size, the only colour in the project (no
    // keyframes, no model): at weight 1 it colours the film, at weight 0 it
    // takes no part and the film stays gray.
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let sc = scene(d);
    let photo = d.join("photo.png");
    image::RgbImage::from_fn(300, 90, |x, y| {
        let t = (x + y) as f32 / 390.0;
        image::Rgb([(60.0 + 160.0 * t) as u8, 90, (200.0 - 120.0 * t) as u8])
    })
    .save(&photo)
    .expect("save photo");
    let render = |weight: f64| {
        let p = project(d, &sc.film, &format!("w{weight}.json"), |doc| {
            plain(doc);
            doc["references"] = json!([{ "path": s(&photo), "weight": weight }]);
        });
        let out = d.join(format!("w{weight}.mkv"));
        ok(&cli(&[
            "render",
            s(&sc.film),
            "--project",
            s(&p),
            "-o",
            s(&out),
        ]));
        // Luma is the film's either way (weight 0 leaves nothing else to check it by).
        let (film, got) = (decode_all(&sc.film), decode_all(&out));
        assert_eq!(film.len(), got.len(), "frame count");
        assert!(
            film.iter().zip(&got).all(|(a, b)| a.y == b.y),
            "luma differs"
        );
        chroma(&out)
    };
    let neutral = ChromaField::neutral(W as usize, H as usize);
    let steered = render(1.0);
    let off = render(0.0);
    for t in [0usize, FRAMES as usize - 1] {
        let (on_e, off_e) = (error(&steered[t], &neutral), error(&off[t], &neutral));
        eprintln!(
            "reference weight: frame {t}: chroma from gray at 1: {on_e:.4}, at 0: {off_e:.4}"
        );
        assert!(
            on_e > 0.01,
            "frame {t}: weight 1 colours the film ({on_e:.4})"
        );
        assert!(
            off_e < 1e-3,
            "frame {t}: weight 0 leaves it gray ({off_e:.4})"
        );
    }
}
