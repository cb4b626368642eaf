//! Tincture's video metrics against an independent Python implementation
//! (tests/python/metrics_reference.py: numpy and scikit-image, written from
//! the published definitions) on the shared colour clips.
//!
//! For each clip, the first frames are decoded, Tincture's own optical flow
//! is computed from their luma, and frames, a reference clip and both flow
//! fields are written to a folder. Tincture's `MetricsStream` and the Python
//! script then measure the same data; every per-frame value of every metric
//! must agree within 1e-4 relative.
//!
//! The reference is the same clip one frame later (frame i is compared with
//! frame i+1), so PSNR, SSIM and CIEDE2000 see real, non-trivial differences.
//!
//! Skips, saying why, when ../shared or the Python environment
//! (tests/python/.venv, made by `make test` when ../shared exists, or
//! `TINCTURE_PYTHON`) is absent; fails instead under
//! `TINCTURE_REQUIRE_FIXTURES` (as in CI).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tincture_core::compose::frame_to_rgb8;
use tincture_core::flow::FlowParams;
use tincture_core::frame::RgbImage;
use tincture_core::video_metrics::{FlowPair, LumaFlow, MetricsStream, StreamOptions};
use tincture_media::VideoReader;
use tincture_tests::skip_or_fail;

/// Frames checked per clip (the Python SSIM and CIEDE2000 are the slow part).
const FRAMES: usize = 24;
const TOLERANCE: f64 = 1e-4;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TINCTURE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/.venv/bin/python");
    venv.is_file().then_some(venv)
}

fn write_all(path: &Path, chunks: impl Iterator<Item = Vec<u8>>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create dump file"));
    for c in chunks {
        f.write_all(&c).expect("write dump");
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1e-9)
}

fn check_clip(clip: &Path, python: &Path) -> usize {
    let mut reader = VideoReader::open(clip).expect("open clip");
    let mut rgb = Vec::new();
    let mut luma = Vec::new();
    while rgb.len() < FRAMES + 1 {
        let Some(d) = reader.next_frame().expect("decode") else {
            break;
        };
        rgb.push(RgbImage {
            width: d.frame.width(),
            height: d.frame.height(),
            data: frame_to_rgb8(&d.frame),
        });
        luma.push(d.frame.luma_unit().data);
    }
    assert!(rgb.len() > 4, "{}: too few frames", clip.display());
    let n = rgb.len() - 1;
    let (w, h) = (rgb[0].width, rgb[0].height);
    let mut flow = LumaFlow::new(FlowParams::default());
    let mut flows: Vec<Option<FlowPair>> = Vec::new();
    for l in &luma[..n] {
        flows.push(flow.push(l, w, h));
    }
    let mut stream = MetricsStream::new(StreamOptions::default());
    for i in 0..n {
        stream
            .push_with_flow(&rgb[i], Some(&rgb[i + 1]), flows[i].as_ref())
            .expect("metrics");
    }
    let ours = stream.report();

    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::write(
        d.join("meta.json"),
        serde_json::json!({"width": w, "height": h, "frames": n, "reference": true}).to_string(),
    )
    .expect("meta");
    write_all(
        &d.join("frames.rgb"),
        rgb[..n].iter().map(|f| f.data.clone()),
    );
    write_all(
        &d.join("reference.rgb"),
        rgb[1..=n].iter().map(|f| f.data.clone()),
    );
    let pairs = || flows.iter().flatten();
    write_all(
        &d.join("flow_fw.f32"),
        pairs().map(|p| [f32_bytes(&p.forward.u), f32_bytes(&p.forward.v)].concat()),
    );
    write_all(
        &d.join("flow_bw.f32"),
        pairs().map(|p| [f32_bytes(&p.backward.u), f32_bytes(&p.backward.v)].concat()),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/metrics_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(d)
        .output()
        .expect("run the Python reference");
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from Python");

    let series = [
        ("warp_error", &ours.warp_error),
        ("cdc", &ours.cdc),
        ("colorfulness", &ours.colorfulness),
        ("mean_a", &ours.mean_a),
        ("mean_b", &ours.mean_b),
        ("mean_chroma", &ours.mean_chroma),
        ("psnr", ours.psnr.as_ref().expect("psnr")),
        ("ssim", ours.ssim.as_ref().expect("ssim")),
        ("ciede2000", ours.ciede2000.as_ref().expect("ciede2000")),
    ];
    let mut compared = 0;
    let mut worst = (0.0f64, "");
    for (name, s) in series {
        let py = theirs["per_frame"][name]
            .as_array()
            .unwrap_or_else(|| panic!("Python gave no {name}"));
        assert_eq!(py.len(), s.per_frame.len(), "{name}: frame count");
        for (i, (a, b)) in s.per_frame.iter().zip(py).enumerate() {
            match (a, b.as_f64()) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    assert!(
                        close(*a, b),
                        "{}: {name} of frame {i}: Tincture {a} vs Python {b}",
                        clip.display()
                    );
                    let rel = (a - b).abs() / a.abs().max(b.abs()).max(1e-9);
                    if rel > worst.0 {
                        worst = (rel, name);
                    }
                    compared += 1;
                }
                (a, b) => panic!("{}: {name} of frame {i}: {a:?} vs {b:?}", clip.display()),
            }
        }
    }
    for (name, ours) in [("warp_error", ours.warp_error.clip), ("cdc", ours.cdc.clip)] {
        let py = theirs["clip"][name].as_f64().expect("clip value");
        let a = ours.expect("clip value");
        assert!(
            close(a, py),
            "{}: clip {name}: Tincture {a} vs Python {py}",
            clip.display()
        );
    }
    println!(
        "{}: {n} frames {w}x{h}, {compared} values agree; largest relative difference {:.2e} ({})",
        clip.display(),
        worst.0,
        worst.1
    );
    compared
}

#[test]
fn metrics_agree_with_the_python_reference_on_shared_clips() {
    const TEST: &str = "metrics_agree_with_the_python_reference_on_shared_clips";
    let Some(shared) = tincture_tests::shared_dir() else {
        skip_or_fail(
            TEST,
            "../shared is absent (the shared colour clips are needed)",
        );
        return;
    };
    let Some(python) = python() else {
        skip_or_fail(
            TEST,
            "no Python for the reference metrics (tests/python/.venv is made by make test \
             when ../shared exists; or set TINCTURE_PYTHON to a Python with numpy and scikit-image)",
        );
        return;
    };
    let mut clips: Vec<PathBuf> = std::fs::read_dir(shared.join("data/video/color"))
        .expect("colour clips")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "mp4" || e == "mkv" || e == "mov")
        })
        .collect();
    clips.sort();
    assert!(!clips.is_empty(), "no colour clips in {}", shared.display());
    let total: usize = clips.iter().map(|c| check_clip(c, &python)).sum();
    println!("{} clips, {total} values compared", clips.len());
}
