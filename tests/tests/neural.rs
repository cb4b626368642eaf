//! The neural colorizer through the real `tincture-cli` binary:
//! `colorize-image`, `eval-images` and `render --model`, with small ONNX
//! graphs the tests write themselves (the built-in model's weights are not
//! needed): a "hint mean" model and one that returns NaN.

use std::path::{Path, PathBuf};

use tincture_core::metrics::{colorfulness, srgb8_to_lab};
use tincture_infer::onnx_writer::{Attr, Dim, Graph};
use tincture_tests::{assert_luma_identical, cli, decode_all, make_video, scene};

/// The colour the hint-mean model gives a picture without hints.
const PRIOR_AB: [f64; 2] = [20.0, -30.0];

/// A dynamic-size model with the `tincture` adapter's signature
/// (`l`, `ab_hint`, `hint_mask` -> `ab`) that colours the whole picture with
/// the mean a*b* of its hints, or [`PRIOR_AB`] when there are none:
/// ab = (mean(ab_hint * mask) + eps * prior) / (mean(mask) + eps).
fn hint_mean_model(dir: &Path) -> PathBuf {
    hint_mean_model_with(dir, "hint_mean", PRIOR_AB)
}

/// [`hint_mean_model`] named `name`, giving `prior` where there are no hints.
fn hint_mean_model_with(dir: &Path, name: &str, prior: [f64; 2]) -> PathBuf {
    let eps = 1e-7f32;
    let plane = |c: i64| [Dim::Fixed(1), Dim::Fixed(c), Dim::from("h"), Dim::from("w")];
    let mean = [("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(1))];
    let mut g = Graph::new();
    g.input("l", plane(1))
        .input("ab_hint", plane(2))
        .input("hint_mask", plane(1))
        .output("ab", plane(2))
        .constant("zero", &[1], &[0.0])
        .constant("eps", &[1], &[eps])
        .constant(
            "prior",
            &[1, 2, 1, 1],
            &[prior[0] as f32 * eps, prior[1] as f32 * eps],
        )
        .node("Mul", &["ab_hint", "hint_mask"], &["hinted"], &[])
        .node("ReduceMean", &["hinted"], &["sum_ab"], &mean)
        .node("ReduceMean", &["hint_mask"], &["frac"], &mean)
        .node("Add", &["sum_ab", "prior"], &["num"], &[])
        .node("Add", &["frac", "eps"], &["den"], &[])
        .node("Div", &["num", "den"], &["mean_ab"], &[])
        .node("Mul", &["l", "zero"], &["l0"], &[])
        .node("Concat", &["l0", "l0"], &["z"], &[("axis", Attr::Int(1))])
        .node("Add", &["z", "mean_ab"], &["ab"], &[]);
    let p = dir.join(format!("{name}.onnx"));
    g.write(&p).expect("write graph");
    p
}

/// The same signature, returning 0 / 0 = NaN everywhere.
fn nan_model(dir: &Path) -> PathBuf {
    let plane = |c: i64| [Dim::Fixed(1), Dim::Fixed(c), Dim::from("h"), Dim::from("w")];
    let mut g = Graph::new();
    g.input("l", plane(1))
        .input("ab_hint", plane(2))
        .input("hint_mask", plane(1))
        .output("ab", plane(2))
        .constant("zero", &[1], &[0.0])
        .node("Mul", &["l", "zero"], &["l0"], &[])
        .node("Concat", &["l0", "l0"], &["z"], &[("axis", Attr::Int(1))])
        .node("Div", &["z", "z"], &["ab"], &[]);
    let p = dir.join("nan.onnx");
    g.write(&p).expect("write graph");
    p
}

/// A textured gray picture with values in 90..=170 (L* about 38..70, where
/// the test colours are inside the sRGB gamut).
fn gray_picture(path: &Path) -> image::GrayImage {
    let img = image::GrayImage::from_fn(64, 48, |x, y| {
        image::Luma([(90 + (x * 5 + y * 3) % 81) as u8])
    });
    img.save(path).expect("write gray picture");
    img
}

/// A colour photograph stand-in: `base` with luma texture (chroma nearly
/// constant) and a small patch of another colour.
fn colour_picture(base: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_fn(64, 48, |x, y| {
        if (4..12).contains(&x) && (4..10).contains(&y) {
            return image::Rgb([90, 120, 150]);
        }
        let n = ((x * 7 + y * 13) % 21) as i32 - 10;
        image::Rgb(base.map(|c| (i32::from(c) + n * 3).clamp(0, 255) as u8))
    })
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    v.sort();
    v
}

/// BT.601 luma of an 8-bit pixel.
fn luma601(p: [u8; 3]) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

/// Mean CIE a*b* of a picture.
fn mean_ab(img: &image::RgbImage) -> [f64; 2] {
    let n = f64::from(img.width() * img.height());
    let (mut a, mut b) = (0.0, 0.0);
    for p in img.pixels() {
        let lab = srgb8_to_lab(p.0);
        a += lab[1];
        b += lab[2];
    }
    [a / n, b / n]
}

fn assert_ab_near(img: &image::RgbImage, want: [f64; 2], what: &str) {
    let got = mean_ab(img);
    assert!(
        (got[0] - want[0]).abs() < 2.5 && (got[1] - want[1]).abs() < 2.5,
        "{what}: mean a*b* {got:?}, want {want:?}"
    );
}

#[test]
fn colorize_image_keeps_luma_and_takes_the_models_colour() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let model = hint_mean_model(d);
    let input = d.join("gray.png");
    let gray = gray_picture(&input);
    let out = d.join("out.png");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "colorize-image",
            s(&input),
            "-o",
            s(&out),
            "--model",
            s(&model),
            "--cpu",
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let res = run(&[]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let coloured = image::open(&out).expect("output").into_rgb8();
    assert_eq!(coloured.dimensions(), gray.dimensions());
    for (p, g) in coloured.pixels().zip(gray.pixels()) {
        let y = luma601(p.0);
        assert!(
            (y - f64::from(g.0[0])).abs() <= 1.0,
            "luma {y} vs {}",
            g.0[0]
        );
    }
    assert_ab_near(&coloured, PRIOR_AB, "no hints");
    assert!(!d.join("out.tincture-partial.png").exists());

    // An existing output is kept unless --overwrite is given.
    let res = run(&[]);
    assert_eq!(
        res.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(String::from_utf8_lossy(&res.stderr).contains("--overwrite"));

    // Hints reach the model: it spreads their mean colour over the picture.
    let hints = d.join("hints.json");
    std::fs::write(
        &hints,
        r#"{"points": [{"x": 10, "y": 5, "ab": [-25, 15]}, {"x": 50.5, "y": 40, "ab": [-15, 25], "size": 3}]}"#,
    )
    .expect("write hints");
    let res = run(&["--hints", s(&hints), "--overwrite"]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let hinted = image::open(&out).expect("output").into_rgb8();
    // One 1-pixel hint and one 3x3 patch: the mask-weighted mean.
    let want = [(-25.0 + 9.0 * -15.0) / 10.0, (15.0 + 9.0 * 25.0) / 10.0];
    assert_ab_near(&hinted, want, "hinted");

    // 16-bit TIFF from a colour picture: the luma is the input's, to 16-bit precision.
    let colour_in = d.join("colour.png");
    let colour = colour_picture([170, 110, 80]);
    colour.save(&colour_in).expect("write");
    let tif = d.join("out.tif");
    let res = cli(&[
        "colorize-image",
        s(&colour_in),
        "-o",
        s(&tif),
        "--model",
        s(&model),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let img16 = image::open(&tif).expect("tiff");
    assert!(
        matches!(img16, image::DynamicImage::ImageRgb16(_)),
        "16-bit RGB"
    );
    for (p, c) in img16.into_rgb16().pixels().zip(colour.pixels()) {
        let [r, g, b] = p.0.map(|v| f64::from(v) / 257.0);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        assert!(
            (y - luma601(c.0)).abs() < 0.01,
            "luma {y} vs {}",
            luma601(c.0)
        );
    }
}

#[test]
fn colorize_image_hint_outside_the_picture_exits_3_naming_file_and_point() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let model = hint_mean_model(d);
    let input = d.join("gray.png");
    gray_picture(&input);
    let hints = d.join("bad-hints.json");
    std::fs::write(
        &hints,
        r##"{"points": [{"x": 3, "y": 3, "color": "#336699"}, {"x": 64, "y": 10, "color": "#336699"}]}"##,
    )
    .expect("write");
    let before = listing(d);
    let res = cli(&[
        "colorize-image",
        s(&input),
        "-o",
        s(&d.join("out.png")),
        "--hints",
        s(&hints),
        "--model",
        s(&model),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("bad-hints.json") && stderr.contains("point 1"),
        "{stderr}"
    );
    assert!(stderr.contains("outside the 64x48"), "{stderr}");
    assert_eq!(listing(d), before, "nothing written");
}

#[test]
fn missing_model_exits_6_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let input = d.join("gray.png");
    gray_picture(&input);
    let video = make_video(
        &d.join("g.mkv"),
        &scene("64x48", "24"),
        2,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let missing = d.join("no-such-model.onnx");
    let (out_png, out_mkv) = (d.join("out.png"), d.join("out.mkv"));
    let before = listing(d);
    for command in [
        ["colorize-image", s(&input), "-o", s(&out_png)],
        ["render", s(&video), "-o", s(&out_mkv)],
        ["eval-images", s(d), "--points", "3"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--model", s(&missing)]);
        let res = cli(&args);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(6), "{}: {stderr}", args[0]);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.starts_with("error: ")
                && stderr.contains("no-such-model.onnx")
                && stderr.contains("missing"),
            "{}: {stderr}",
            args[0]
        );
        assert_eq!(listing(d), before, "{}: nothing written", args[0]);
    }
}

#[test]
fn eval_images_scores_hinted_pictures_against_their_originals() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let model = hint_mean_model(d);
    let pics = d.join("pictures");
    std::fs::create_dir(&pics).expect("mkdir");
    colour_picture([200, 90, 60])
        .save(pics.join("a.png"))
        .expect("png");
    colour_picture([80, 150, 70])
        .save(pics.join("b.jpg"))
        .expect("jpg");
    let c16 = image::DynamicImage::ImageRgb8(colour_picture([90, 110, 190])).into_rgb16();
    c16.save(pics.join("c.tif")).expect("tif");
    std::fs::write(pics.join("notes.txt"), "not a picture").expect("write");

    let eval = |extra: &[&str], json: &Path| {
        let mut args = vec![
            "eval-images",
            s(&pics),
            "--model",
            s(&model),
            "--points",
            "10",
            "--json",
            s(json),
        ];
        args.extend_from_slice(extra);
        let res = cli(&args);
        let report: serde_json::Value = std::fs::read_to_string(json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        (res, report)
    };
    let (res, report) = eval(&["--verbose"], &d.join("scores.json"));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains("b.jpg") && stdout.contains("mean of 3 pictures"),
        "{stdout}"
    );
    assert!(
        stderr.contains("[3/3] c.tif"),
        "progress on stderr: {stderr}"
    );

    assert_eq!(report["images"], 3, "{report}");
    assert_eq!(report["points"], 10);
    assert_eq!(report["model"], "hint_mean");
    assert_eq!(
        report["render_short_side"], 256,
        "the default of a model without one"
    );
    for key in [
        "psnr",
        "ssim",
        "ciede2000",
        "colorfulness",
        "colorfulness_reference",
        "gray_psnr",
    ] {
        assert!(
            report[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {report}"
        );
    }
    let names: Vec<&str> = report["per_image"]
        .as_array()
        .expect("per_image")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a.png", "b.jpg", "c.tif"]);
    for p in report["per_image"].as_array().expect("per_image") {
        for key in ["psnr", "ssim", "ciede2000", "colorfulness"] {
            assert!(p[key].as_f64().is_some_and(f64::is_finite), "{key}: {p}");
        }
    }
    // The hints carry the true colours, so the result beats the gray picture.
    let psnr = report["psnr"].as_f64().expect("psnr");
    let gray_psnr = report["gray_psnr"].as_f64().expect("gray_psnr");
    assert!(psnr > gray_psnr + 5.0, "psnr {psnr} vs gray {gray_psnr}");
    assert!(report["ciede2000"].as_f64().expect("de") < 6.0, "{report}");
    // The originals' colourfulness, computed here from the files as decoded.
    let reference: f64 = names
        .iter()
        .map(|n| {
            let rgb = image::open(pics.join(n)).expect("read").into_rgb8();
            colorfulness(&tincture_core::frame::RgbImage {
                width: rgb.width() as usize,
                height: rgb.height() as usize,
                data: rgb.into_raw(),
            })
            .expect("colourfulness")
        })
        .sum::<f64>()
        / 3.0;
    let got = report["colorfulness_reference"]
        .as_f64()
        .expect("reference");
    assert!((got - reference).abs() < 1e-9, "{got} vs {reference}");

    // Repeatable: the same seed gives the same points, so the same scores.
    let (res, again) = eval(&[], &d.join("again.json"));
    assert!(res.status.success());
    assert_eq!(again["per_image"], report["per_image"]);

    // An unreadable picture is reported by name and fails the run, but the
    // others are still scored; a gray picture is skipped.
    std::fs::write(pics.join("broken.png"), b"not a png at all").expect("write");
    image::GrayImage::from_pixel(32, 32, image::Luma([128]))
        .save(pics.join("d-gray.png"))
        .expect("write");
    let (res, partial) = eval(&["--render-size", "32"], &d.join("partial.json"));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("broken.png") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(partial["images"], 3, "{partial}");
    assert_eq!(partial["failed"][0]["name"], "broken.png");
    assert_eq!(partial["render_short_side"], 32);
    assert_eq!(
        partial["per_image"][0]["model_size"],
        serde_json::json!([43, 32])
    );
}

#[test]
fn render_with_a_model_keeps_luma_bit_exact_and_colours() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let model = hint_mean_model(d);
    let src = make_video(
        &d.join("source.mkv"),
        &scene("160x120", "24"),
        4,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let out = d.join("out.mkv");
    let res = cli(&[
        "render",
        s(&src),
        "-o",
        s(&out),
        "--model",
        s(&model),
        "--cpu",
        "--render-size",
        "64",
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("model `hint_mean` on CPU"), "{stderr}");
    assert_luma_identical(&src, &out);
    // Blue-violet (a* 20, b* -30): Cb above neutral everywhere.
    let frames = decode_all(&out);
    let cb = &frames[0].chroma.as_ref().expect("chroma").cb.data;
    let mean = cb.iter().map(|&v| f64::from(v)).sum::<f64>() / cb.len() as f64;
    assert!(mean > 128.0 + 8.0, "mean Cb {mean}");
}

#[test]
fn render_with_a_nan_model_exits_6_naming_the_frame_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let model = nan_model(d);
    let src = make_video(
        &d.join("source.mkv"),
        &scene("64x48", "24"),
        3,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let before = listing(d);
    let res = cli(&[
        "render",
        s(&src),
        "-o",
        s(&d.join("out.mkv")),
        "--model",
        s(&model),
        "--cpu",
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("frame 0") && stderr.contains("NaN"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        listing(d),
        before,
        "no output or partial file left: {stderr}"
    );
}

/// A shot with a model of its own is coloured by that model, the other
/// shots by the render's; a shot whose model file is missing is refused
/// before anything is written, naming the shot and the file.
#[test]
fn a_shot_with_a_model_of_its_own_is_coloured_by_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let violet = hint_mean_model(d);
    // Warm yellow: b* strongly positive, so Cb falls below neutral.
    hint_mean_model_with(d, "warm", [10.0, 60.0]);
    let src = make_video(
        &d.join("source.mkv"),
        &scene("160x120", "24"),
        8,
        &["-pix_fmt", "gray", "-c:v", "ffv1"],
    );
    let project = d.join("p.json");
    let out = cli(&["project", "new", s(&src), "-o", s(&project)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let write = |second_model: &str| {
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&project).expect("read")).expect("json");
        doc["shots"] = serde_json::json!([
            {"start": 0, "end": 3},
            {"start": 4, "end": 7, "settings": {"model": second_model}},
        ]);
        std::fs::write(&project, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    };
    // Relative to the project's folder.
    write("warm.onnx");
    let output = d.join("out.mkv");
    let args = |out: &Path| -> Vec<String> {
        [
            "render",
            s(&src),
            "--project",
            s(&project),
            "-o",
            s(out),
            "--model",
            s(&violet),
            "--cpu",
            "--render-size",
            "64",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let argv = args(&output);
    let res = cli(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert_luma_identical(&src, &output);
    let frames = decode_all(&output);
    assert_eq!(frames.len(), 8);
    for (i, f) in frames.iter().enumerate() {
        let cb = &f.chroma.as_ref().expect("chroma").cb.data;
        let mean = cb.iter().map(|&v| f64::from(v)).sum::<f64>() / cb.len() as f64;
        if i < 4 {
            assert!(
                mean > 128.0 + 6.0,
                "frame {i} (the render's model, violet): mean Cb {mean}"
            );
        } else {
            assert!(
                mean < 128.0 - 6.0,
                "frame {i} (the shot's model, warm): mean Cb {mean}"
            );
        }
    }

    write("gone.onnx");
    let before = listing(d);
    let argv = args(&d.join("out2.mkv"));
    let res = cli(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{stderr}");
    assert!(
        stderr.contains("shot 2")
            && stderr.contains("gone.onnx")
            && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(listing(d), before, "nothing written: {stderr}");
}
