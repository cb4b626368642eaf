//! Each adapter against a small ONNX graph of the same signature, written by
//! the test itself (the real weights cannot ship), plus the broken-model
//! cases. Runs on the real ONNX Runtime that `make test` installs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tincture_core::color::Matrix;
use tincture_core::frame::LumaImage;
use tincture_core::metrics::srgb_to_lab;
use tincture_infer::model::gray_l;
use tincture_infer::onnx_writer::{Attr, Dim, Graph};
use tincture_infer::worker::Job;
use tincture_infer::{
    Error, ExecutionChoice, Hint, InferenceWorker, Model, NeuralColorizer, RenderSettings,
    WorkerEvent,
};

fn gray_luma(w: usize, h: usize, y: f32) -> LumaImage {
    LumaImage {
        width: w,
        height: h,
        data: vec![y; w * h],
    }
}

/// The Lab colour Tincture would output at pixel `i`: source luma plus the chroma.
fn lab_at(luma: &LumaImage, c: &tincture_core::frame::ChromaField, i: usize) -> [f64; 3] {
    let rgb = Matrix::Bt709.ycbcr_to_rgb([luma.data[i], c.cb[i], c.cr[i]]);
    srgb_to_lab(rgb.map(|v| f64::from(v.clamp(0.0, 1.0))))
}

fn open(path: &Path) -> Result<NeuralColorizer, Error> {
    let model = if path.extension().is_some_and(|e| e == "json") {
        Model::open(path, ExecutionChoice::Cpu, 1)?
    } else {
        Model::open_onnx(path, ExecutionChoice::Cpu, 1)?
    };
    Ok(NeuralColorizer::new(model, RenderSettings::default()))
}

fn write_manifest(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, body).expect("write manifest");
    p
}

/// siggraph17: color_ab = 0.4 * [data_l, -data_l] + user_ab * user_map / 110.
fn siggraph17(dir: &Path, size: i64) -> PathBuf {
    let s = [1, 1, size, size];
    let mut g = Graph::new();
    g.input("data_l", s)
        .input("user_ab", [1, 2, size, size])
        .input("user_map", s)
        .output("color_ab", [1, 2, size, size])
        .constant("k", &[1], &[0.4])
        .constant("inv110", &[1], &[1.0 / 110.0])
        .node("Mul", &["data_l", "k"], &["lk"], &[])
        .node("Neg", &["lk"], &["nlk"], &[])
        .node(
            "Concat",
            &["lk", "nlk"],
            &["prior"],
            &[("axis", Attr::Int(1))],
        )
        .node("Mul", &["user_map", "inv110"], &["m"], &[])
        .node("Mul", &["user_ab", "m"], &["hinted"], &[])
        .node("Add", &["prior", "hinted"], &["color_ab"], &[]);
    let p = dir.join("siggraph17.onnx");
    g.write(&p).expect("write graph");
    p
}

/// eccv16: ab = [20, -30] everywhere (0 * L + bias), or NaN (0 / 0) when `nan`.
fn eccv16(dir: &Path, name: &str, nan: bool, out_channels: usize) -> PathBuf {
    let mut g = Graph::new();
    g.input("L", [1, 1, 256, 256])
        .output("ab", [1, out_channels as i64, 256, 256])
        .constant("zero", &[1], &[0.0])
        .constant("bias", &[1, 2, 1, 1], &[20.0, -30.0])
        .node("Mul", &["L", "zero"], &["l0"], &[]);
    let zeros: Vec<&str> = vec!["l0"; out_channels];
    g.node("Concat", &zeros, &["z"], &[("axis", Attr::Int(1))]);
    if nan {
        g.node("Div", &["z", "z"], &["ab"], &[]);
    } else if out_channels == 2 {
        g.node("Add", &["z", "bias"], &["ab"], &[]);
    } else {
        g.node("Identity", &["z"], &["ab"], &[]);
    }
    let p = dir.join(format!("{name}.onnx"));
    g.write(&p).expect("write graph");
    p
}

#[test]
fn siggraph17_adapter_centres_l_and_takes_hints() {
    let dir = tempfile::tempdir().expect("tmp");
    siggraph17(dir.path(), 256);
    let manifest = write_manifest(
        dir.path(),
        "sig",
        r#"{"name":"sig","version":"1","adapter":"siggraph17","file":"siggraph17.onnx",
           "inputs":[{"name":"data_l","shape":[1,1,256,256]},{"name":"user_ab","shape":[1,2,256,256]},
                     {"name":"user_map","shape":[1,1,256,256]}],
           "outputs":[{"name":"color_ab","shape":[1,2,256,256]}]}"#,
    );
    // The filter spread: a lone hint's correction fades with distance. (The
    // solver spread carries a lone hint over a picture of even lightness,
    // as Levin's colorization does; its own tests are in the colorizer.)
    let model = Model::open(&manifest, ExecutionChoice::Cpu, 1).expect("opens");
    let mut c = NeuralColorizer::new(
        model,
        RenderSettings {
            hint_spread: tincture_infer::HintSpread::Filter,
            ..RenderSettings::default()
        },
    );
    // Luma whose L* is 75: the graph's prior is 0.4 * (75 - 50) = 10 -> (a, b) = (10, -10).
    let y = (0..=1000)
        .map(|i| i as f32 / 1000.0)
        .find(|&y| gray_l(y) >= 75.0)
        .expect("y");
    let luma = gray_luma(320, 200, y);
    let hints = [Hint {
        x: 300.0,
        y: 20.0,
        ab: [30.0, 20.0],
        size: 9.0,
    }];
    let out = c
        .colorize_with(&luma, &hints, 0, Matrix::Bt709)
        .expect("runs");
    assert_eq!((out.width, out.height), (320, 200));
    let far = lab_at(&luma, &out, 150 * 320 + 60);
    assert!(
        (far[1] - 10.0).abs() < 1.0 && (far[2] + 10.0).abs() < 1.0,
        "prior {far:?}"
    );
    let at_hint = lab_at(&luma, &out, 20 * 320 + 300);
    assert!(at_hint[1] > 25.0 && at_hint[2] > 0.0, "hint {at_hint:?}");
    // Luma is untouched by construction; check lightness is still 75.
    assert!((far[0] - 75.0).abs() < 0.6, "{far:?}");
}

#[test]
fn eccv16_adapter_returns_the_graphs_ab() {
    let dir = tempfile::tempdir().expect("tmp");
    let onnx = eccv16(dir.path(), "eccv16", false, 2);
    let mut c = open(&onnx).expect("a bare .onnx is recognised as eccv16");
    assert_eq!(
        c.model().manifest().adapter,
        tincture_infer::AdapterKind::Eccv16
    );
    let luma = gray_luma(64, 48, 0.5);
    let out = c.colorize_with(&luma, &[], 3, Matrix::Bt709).expect("runs");
    let lab = lab_at(&luma, &out, 10);
    assert!(
        (lab[1] - 20.0).abs() < 1.0 && (lab[2] + 30.0).abs() < 1.0,
        "{lab:?}"
    );
}

#[test]
fn deoldify_adapter_keeps_only_the_chroma_of_rgb() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = Graph::new();
    g.input(
        "input",
        [Dim::Fixed(1), Dim::Fixed(3), Dim::from("h"), Dim::from("w")],
    )
    .output(
        "output",
        [Dim::Fixed(1), Dim::Fixed(3), Dim::from("h"), Dim::from("w")],
    )
    .constant("tint", &[1, 3, 1, 1], &[1.15, 1.0, 0.8])
    .node("Mul", &["input", "tint"], &["output"], &[]);
    let onnx = dir.path().join("deoldify.onnx");
    g.write(&onnx).expect("write");
    let mut c = open(&onnx).expect("recognised as deoldify");
    assert_eq!(
        c.model().manifest().adapter,
        tincture_infer::AdapterKind::Deoldify
    );
    let luma = gray_luma(100, 60, 0.5);
    let out = c.colorize_with(&luma, &[], 0, Matrix::Bt709).expect("runs");
    // A warm tint: red above, blue below the gray.
    assert!(
        out.cr[0] > 0.02 && out.cb[0] < -0.02,
        "cb {} cr {}",
        out.cb[0],
        out.cr[0]
    );
    let lab = lab_at(&luma, &out, 0);
    let expect = srgb_to_lab([0.575, 0.5, 0.4]);
    assert!(
        (lab[1] - expect[1]).abs() < 2.5 && (lab[2] - expect[2]).abs() < 2.5,
        "{lab:?} vs {expect:?}"
    );
}

#[test]
fn ddcolor_adapter_feeds_gray_rgb_at_512() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = Graph::new();
    g.input("image", [1, 3, 512, 512])
        .output("ab", [1, 2, 512, 512])
        .constant("zero", &[1], &[0.0])
        .constant("bias", &[1, 2, 1, 1], &[-10.0, 25.0])
        .node(
            "ReduceMean",
            &["image"],
            &["m"],
            &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
        )
        // a = -10 + 0 * mean, b = 25 + 40 * (mean - 0.5): proves the gray reaches the graph as RGB.
        .constant("k", &[1, 2, 1, 1], &[0.0, 40.0])
        .constant("half", &[1], &[0.5])
        .node("Sub", &["m", "half"], &["mc"], &[])
        .node("Concat", &["mc", "mc"], &["mm"], &[("axis", Attr::Int(1))])
        .node("Mul", &["mm", "k"], &["scaled"], &[])
        .node("Add", &["scaled", "bias"], &["ab"], &[]);
    let onnx = dir.path().join("ddcolor.onnx");
    g.write(&onnx).expect("write");
    let mut c = open(&onnx).expect("recognised as ddcolor");
    assert_eq!(c.model().run_size(1920, 1080, None), (512, 512));
    let luma = gray_luma(200, 120, 0.75);
    let out = c.colorize_with(&luma, &[], 0, Matrix::Bt709).expect("runs");
    let lab = lab_at(&luma, &out, 55);
    assert!(
        (lab[1] + 10.0).abs() < 1.0 && (lab[2] - 35.0).abs() < 1.5,
        "{lab:?}"
    );
}

#[test]
fn nan_output_is_caught_not_passed_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let onnx = eccv16(dir.path(), "nan", true, 2);
    let mut c = open(&onnx).expect("opens");
    let err = c
        .colorize_with(&gray_luma(32, 32, 0.3), &[], 17, Matrix::Bt709)
        .expect_err("NaN output");
    let msg = err.to_string();
    assert!(matches!(err, Error::NonFinite { frame: 17, .. }), "{msg}");
    assert!(msg.contains("frame 17") && msg.contains("nan"), "{msg}");
}

#[test]
fn broken_models_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // Output is not ab or RGB.
    let four = eccv16(d, "four", false, 4);
    let err = open(&four).expect_err("4-channel output").to_string();
    assert!(err.contains("four.onnx") && err.contains("(ab)"), "{err}");

    // Manifest shapes do not match the graph.
    siggraph17(d, 256);
    let wrong = write_manifest(
        d,
        "wrong",
        r#"{"name":"sig","version":"1","adapter":"siggraph17","file":"siggraph17.onnx",
           "inputs":[{"name":"data_l","shape":[1,1,224,224]},{"name":"user_ab","shape":[1,2,224,224]},
                     {"name":"user_map","shape":[1,1,224,224]}],
           "outputs":[{"name":"color_ab","shape":[1,2,224,224]}]}"#,
    );
    let err = open(&wrong).expect_err("shape mismatch").to_string();
    assert!(
        err.contains("256 in the graph but 224 in the manifest"),
        "{err}"
    );

    // Missing and corrupt files.
    let missing = write_manifest(
        d,
        "missing",
        r#"{"name":"gone","version":"1","adapter":"eccv16","file":"gone.onnx",
           "inputs":[{"name":"L","shape":[1,1,256,256]}],"outputs":[{"name":"ab","shape":[1,2,256,256]}]}"#,
    );
    let err = open(&missing).expect_err("missing").to_string();
    assert!(
        err.contains("gone.onnx") && err.contains("missing"),
        "{err}"
    );
    let corrupt = d.join("corrupt.onnx");
    std::fs::write(&corrupt, b"this is not a protobuf at all").expect("write");
    let err = open(&corrupt).expect_err("corrupt").to_string();
    assert!(
        err.contains("corrupt.onnx") && err.contains("corrupt or not an ONNX model"),
        "{err}"
    );

    // A damaged file whose hash no longer matches its manifest.
    let ok = eccv16(d, "hashed", false, 2);
    let hashed = write_manifest(
        d,
        "hashed",
        &format!(
            r#"{{"name":"h","version":"1","adapter":"eccv16","file":"{}","sha256":"{}",
               "inputs":[{{"name":"L","shape":[1,1,256,256]}}],"outputs":[{{"name":"ab","shape":[1,2,256,256]}}]}}"#,
            ok.file_name().and_then(|n| n.to_str()).expect("name"),
            "00".repeat(32)
        ),
    );
    let err = open(&hashed).expect_err("hash").to_string();
    assert!(err.contains("sha256"), "{err}");
}

#[test]
fn worker_runs_latest_preview_batches_and_reports_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = eccv16(dir.path(), "good", false, 2);
    let (worker, name, provider) =
        InferenceWorker::start(move || open(&good)).expect("worker starts");
    assert_eq!(name, "good");
    assert_eq!(provider, "CPU");
    let job = |frame| Job {
        luma: Arc::new(gray_luma(128, 96, 0.5)),
        hints: Vec::new(),
        frame,
        matrix: Matrix::Bt709,
        short_side: None,
    };
    for generation in 1..=5 {
        worker.preview(generation, job(generation)).expect("queued");
    }
    worker.batch(100, job(7)).expect("queued");
    worker.batch(101, job(8)).expect("queued");
    let mut seen = Vec::new();
    let mut ran = Vec::new();
    let mut batches = Vec::new();
    while batches.len() < 2 {
        match worker.events().recv().expect("event") {
            WorkerEvent::Preview {
                generation, result, ..
            } => {
                result.expect("preview ok");
                ran.push(generation);
                seen.push(generation);
            }
            WorkerEvent::Dropped { generation } => seen.push(generation),
            WorkerEvent::Batch { id, result, .. } => {
                result.expect("batch ok");
                batches.push(id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Which previews wait together depends on timing here; the worker's
    // unit test `waiting_previews_are_dropped_but_the_newest` checks the
    // dropping itself with a queue filled before the worker starts. Here:
    // the previews that ran ran in order, the newest always runs (nothing
    // supersedes it), and every preview either ran or was dropped.
    assert!(
        ran.windows(2).all(|w| w[0] < w[1]),
        "previews ran oldest first: {ran:?}"
    );
    assert_eq!(ran.last(), Some(&5), "the newest preview runs: {ran:?}");
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 2, 3, 4, 5],
        "every preview either ran or was dropped"
    );
    assert_eq!(batches, [100, 101], "batches run in order");
    let chroma = worker
        .colorize_blocking(102, job(9))
        .expect("blocking batch");
    assert_eq!(chroma.width, 128);
    worker.stop();

    // A model that fails at run time reports errors through events.
    let bad = eccv16(dir.path(), "bad", true, 2);
    let (worker, _, _) = InferenceWorker::start(move || open(&bad)).expect("starts");
    worker.preview(1, job(4)).expect("queued");
    match worker.events().recv().expect("event") {
        WorkerEvent::Preview {
            result: Err(Error::NonFinite { frame: 4, .. }),
            ..
        } => {}
        other => panic!("expected a NaN error, got {other:?}"),
    }
    drop(worker);

    // A model that will not load fails start() with its message.
    let missing = dir.path().join("nothing.onnx");
    let err = InferenceWorker::start(move || open(&missing)).expect_err("no model");
    assert!(err.to_string().contains("nothing.onnx"), "{err}");
}

/// The built-in model returns its a*b* class distribution beside its colour:
/// a quarter of the run size, each cell's probabilities summing to one, and
/// the colour of a run unchanged by asking for it.
#[test]
fn the_builtin_model_gives_its_class_distribution() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(tincture_infer::registry::BUILTIN_MANIFEST);
    let mut c = open(&manifest).expect("the built-in model");
    assert!(c.model().has_classes());
    // A picture with structure: a bright disc on a dark ground.
    let (w, h) = (96usize, 64usize);
    let luma = LumaImage {
        width: w,
        height: h,
        data: (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - 48.0, (i / w) as f32 - 32.0);
                if x.hypot(y) < 20.0 { 0.8 } else { 0.25 }
            })
            .collect(),
    };
    let before = c
        .colorize_with(&luma, &[], 0, Matrix::Bt709)
        .expect("colour");
    let map = c.classes(&luma, 0).expect("run").expect("a distribution");
    let after = c
        .colorize_with(&luma, &[], 0, Matrix::Bt709)
        .expect("colour");
    assert_eq!(before, after, "asking for the distribution changes nothing");
    assert_eq!((map.width, map.height), (w / 4, h / 4));
    let cells = map.width * map.height;
    assert_eq!(map.prob.len(), map.centres.len() * cells);
    for cell in 0..cells {
        let sum: f32 = (0..map.centres.len())
            .map(|q| map.prob[q * cells + cell])
            .sum();
        assert!((sum - 1.0).abs() < 1e-3, "cell {cell} sums to {sum}");
    }
    // A shot's render resolution: the model sees a smaller picture, so
    // its colour differs; back to the settings' choice, it is as before.
    tincture_core::colorize::Colorizer::set_render_short_side(&mut c, Some(32));
    assert_eq!(c.short_side(), Some(32));
    let coarse = c
        .colorize_with(&luma, &[], 0, Matrix::Bt709)
        .expect("colour");
    assert_ne!(
        coarse, before,
        "a render resolution of 32 px changes the colour"
    );
    tincture_core::colorize::Colorizer::set_render_short_side(&mut c, None);
    assert_eq!(
        c.colorize_with(&luma, &[], 0, Matrix::Bt709)
            .expect("colour"),
        before
    );
    let likely = map.likely_at(0.5, 0.5, 5, 0.0);
    assert_eq!(likely.len(), 5);
    assert!(
        likely
            .windows(2)
            .all(|p| p[0].probability >= p[1].probability)
    );
    for (i, a) in likely.iter().enumerate() {
        for b in &likely[i + 1..] {
            let d = (a.ab[0] - b.ab[0]).hypot(a.ab[1] - b.ab[1]);
            assert!(d > 5.0, "{a:?} and {b:?} are one colour");
        }
    }
}
