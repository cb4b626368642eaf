//! Tincture's dense optical flow against OpenCV's DIS and a learned
//! reference flow (RAFT).
//!
//! `cargo bench -p tincture-engine --bench flow` prints:
//!
//! 1. **Speed and accuracy on a synthetic 1280x720 scene** moved by a known
//!    smooth flow: for each DIS preset (ultrafast, fast, medium) our time
//!    per flow and OpenCV's (best of several, in rounds that alternate
//!    between the two so a busy machine slows both alike), the speed ratio
//!    and each one's end-point error against the true flow.
//! 2. **The shared colour clips** (`../shared/data/video/color`, when
//!    present): on evenly spaced pairs of consecutive frames, the time per
//!    flow of both at each preset, the end-point error against RAFT
//!    (`../shared/models/raft_small_iter12_dynamic.onnx`, run by ONNX
//!    Runtime), and every flow's warp error (RGB, forward-backward occlusion
//!    test, as `tincture_core::video_metrics` computes it), RAFT's own
//!    included. A table per clip and the mean over clips.
//!
//! Both use every core: rayon's default pool for ours, OpenCV's default
//! `cv2.getNumThreads()` for OpenCV. OpenCV runs in Python
//! (`benches/opencv_dis.py`, `scripts/setup.sh --bench` installs it into
//! `target/bench-venv`); frames go to it as raw 8-bit gray files and its
//! flows come back as raw f32, so the end-point and warp errors of both are
//! computed here, alike. Every part prints a `skip:` line and goes on when
//! OpenCV, the shared data, the model or ONNX Runtime is missing.
//!
//! Environment: `FLOW_BENCH_PART` (`synthetic` or `clips`: only that
//! part), `FLOW_BENCH_PAIRS` (pairs per clip, default 8),
//! `FLOW_BENCH_CLIPS` (comma-separated parts of clip names to run),
//! `FLOW_BENCH_RAFT=0` (no RAFT), `TINCTURE_BENCH_PYTHON` (the Python with
//! cv2). RAFT flows are cached in `target/flow-bench-cache` (RAFT-small
//! takes several seconds a flow on a CPU).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ort::session::Session;
use ort::value::Tensor;
use tincture_core::compose::frame_to_rgb8;
use tincture_core::flow::{DisPreset, FlowField, FlowParams, estimate_flow};
use tincture_core::frame::RgbImage;
use tincture_core::video_metrics::{visible_mask, warp_error};
use tincture_media::VideoReader;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best time of `runs` calls, in milliseconds.
fn best_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

// ---------------------------------------------------------------- OpenCV

/// OpenCV's DIS, run by `benches/opencv_dis.py`.
struct OpenCv {
    python: PathBuf,
    script: PathBuf,
}

/// One run of the script: OpenCV's version and thread count, and the best
/// time of each (pair, preset).
struct OpenCvRun {
    version: String,
    threads: u64,
    timings: Vec<(usize, String, f64)>,
}

/// A pair of frame files in a job folder, and the stem of its flow files.
struct JobPair {
    a: String,
    b: String,
    stem: String,
}

impl OpenCv {
    fn new() -> Self {
        let root = workspace();
        let python = std::env::var_os("TINCTURE_BENCH_PYTHON")
            .map(PathBuf::from)
            .or_else(|| {
                [
                    "target/bench-venv/bin/python",
                    "tests/python/.venv/bin/python",
                ]
                .iter()
                .map(|p| root.join(p))
                .find(|p| p.is_file())
            })
            .unwrap_or_else(|| "python3".into());
        Self {
            python,
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/opencv_dis.py"),
        }
    }

    /// Runs the presets on the pairs, whose frames are in `dir`; the flows
    /// land in `dir` as `<stem>_<preset>.f32`.
    ///
    /// # Errors
    /// A line saying why OpenCV could not run (not installed, script
    /// failure).
    fn run(
        &self,
        dir: &Path,
        (w, h): (usize, usize),
        pairs: &[JobPair],
        repeats: usize,
    ) -> Result<OpenCvRun, String> {
        let job = serde_json::json!({
            "width": w,
            "height": h,
            "repeats": repeats,
            "presets": DisPreset::ALL.map(DisPreset::name),
            "pairs": pairs.iter().map(|p| [&p.a, &p.b, &p.stem]).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join("job.json"), job.to_string()).map_err(|e| e.to_string())?;
        let out = Command::new(&self.python)
            .arg(&self.script)
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(3) {
            return Err(stdout.trim().trim_start_matches("skip: ").to_owned());
        }
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                self.script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let v: serde_json::Value =
            serde_json::from_str(stdout.trim()).map_err(|e| format!("bad output: {e}"))?;
        let timings = v["timings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        (
                            t["pair"].as_u64().unwrap_or(0) as usize,
                            t["preset"].as_str().unwrap_or("").to_owned(),
                            t["best_ms"].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(OpenCvRun {
            version: v["opencv"].as_str().unwrap_or("?").to_owned(),
            threads: v["threads"].as_u64().unwrap_or(0),
            timings,
        })
    }
}

impl OpenCvRun {
    /// Mean over pairs of the best time of `preset`.
    fn mean_ms(&self, preset: DisPreset) -> f64 {
        let t: Vec<f64> = self
            .timings
            .iter()
            .filter(|(_, p, _)| p == preset.name())
            .map(|t| t.2)
            .collect();
        t.iter().sum::<f64>() / t.len().max(1) as f64
    }
}

/// Unit-range luma as 8-bit gray, OpenCV's input.
fn to_u8(luma: &[f32]) -> Vec<u8> {
    luma.iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// A flow written as raw little-endian f32: the u plane, then the v plane.
fn read_flow(path: &Path, w: usize, h: usize) -> Option<FlowField> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() != 8 * w * h {
        return None;
    }
    let vals: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some(FlowField {
        width: w,
        height: h,
        u: vals[..w * h].to_vec(),
        v: vals[w * h..].to_vec(),
    })
}

fn write_flow(path: &Path, f: &FlowField) -> std::io::Result<()> {
    let bytes: Vec<u8> =
        f.u.iter()
            .chain(&f.v)
            .flat_map(|v| v.to_le_bytes())
            .collect();
    std::fs::write(path, bytes)
}

// ------------------------------------------------------------- synthetic

/// Smooth value noise: a hashed lattice every `scale` pixels, blended with
/// smoothstep weights.
fn value_noise(x: f32, y: f32, scale: f32, seed: u32) -> f32 {
    let hash = |ix: i32, iy: i32| {
        let mut v = (ix as u32).wrapping_mul(0x8DA6_B343)
            ^ (iy as u32).wrapping_mul(0xD816_3841)
            ^ seed.wrapping_mul(0xCB1A_B31F);
        v ^= v >> 13;
        v = v.wrapping_mul(0x5BD1_E995);
        v ^= v >> 15;
        (v & 0xFF_FFFF) as f32 / 16_777_216.0
    };
    let (fx, fy) = (x / scale, y / scale);
    let (x0, y0) = (fx.floor(), fy.floor());
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let (tx, ty) = (smooth(fx - x0), smooth(fy - y0));
    let (ix, iy) = (x0 as i32, y0 as i32);
    let top = hash(ix, iy) + tx * (hash(ix + 1, iy) - hash(ix, iy));
    let bottom = hash(ix, iy + 1) + tx * (hash(ix + 1, iy + 1) - hash(ix, iy + 1));
    top + ty * (bottom - top)
}

/// A textured scene, defined everywhere (so it can be moved by fractions of
/// a pixel exactly): four octaves of value noise, unit range.
fn scene(x: f32, y: f32) -> f32 {
    [(90.0, 0.35), (35.0, 0.3), (14.0, 0.2), (5.0, 0.15)]
        .iter()
        .enumerate()
        .map(|(i, &(scale, amp))| amp * value_noise(x, y, scale, i as u32 + 1))
        .sum()
}

/// Where the content at `q` of the second frame came from: `q - g(q)`; a
/// smooth motion of up to about 8 pixels (pan, slight zoom, waves).
fn backward_motion(qx: f32, qy: f32, (w, h): (usize, usize)) -> (f32, f32) {
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    (
        4.0 + 2.5 * (qy / 110.0).sin() + 0.01 * (qx - cx),
        -2.5 + 2.0 * (qx / 150.0).cos() + 0.008 * (qy - cy),
    )
}

/// The two frames of the synthetic scene and the true flow between them.
fn synthetic(w: usize, h: usize) -> (Vec<f32>, Vec<f32>, FlowField) {
    let a: Vec<f32> = (0..w * h)
        .map(|i| scene((i % w) as f32, (i / w) as f32))
        .collect();
    let b: Vec<f32> = (0..w * h)
        .map(|i| {
            let (qx, qy) = ((i % w) as f32, (i / w) as f32);
            let (gx, gy) = backward_motion(qx, qy, (w, h));
            scene(qx - gx, qy - gy)
        })
        .collect();
    // The flow at p solves q - g(q) = p: a fixed point, g being smooth.
    let mut truth = FlowField::zero(w, h);
    for i in 0..w * h {
        let (px, py) = ((i % w) as f32, (i / w) as f32);
        let (mut qx, mut qy) = (px, py);
        for _ in 0..20 {
            let (gx, gy) = backward_motion(qx, qy, (w, h));
            (qx, qy) = (px + gx, py + gy);
        }
        truth.u[i] = qx - px;
        truth.v[i] = qy - py;
    }
    (a, b, truth)
}

/// Mean end-point error against the true flow, over the pixels whose
/// destination is inside the frame.
fn epe_vs_truth(f: &FlowField, truth: &FlowField) -> f64 {
    let (w, h) = (f.width, f.height);
    let (mut sum, mut n) = (0.0, 0usize);
    for i in 0..w * h {
        let (qx, qy) = ((i % w) as f32 + truth.u[i], (i / w) as f32 + truth.v[i]);
        if qx >= 0.0 && qx <= (w - 1) as f32 && qy >= 0.0 && qy <= (h - 1) as f32 {
            sum += f64::from(f.u[i] - truth.u[i]).hypot(f64::from(f.v[i] - truth.v[i]));
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

fn synthetic_part(opencv: &OpenCv) {
    let (w, h) = (1280, 720);
    let rounds = env_usize("FLOW_BENCH_ROUNDS", 3);
    let runs = 5;
    println!("== 1. synthetic {w}x{h} textured scene, known smooth flow (up to ~8 px)");
    let (a, b, truth) = synthetic(w, h);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (a8, b8) = (to_u8(&a), to_u8(&b));
    std::fs::write(dir.path().join("a.u8"), &a8).expect("write a frame");
    std::fs::write(dir.path().join("b.u8"), &b8).expect("write a frame");
    let pairs = [JobPair {
        a: "a.u8".into(),
        b: "b.u8".into(),
        stem: "ab".into(),
    }];
    // Ours on the same 8-bit frames OpenCV gets, as unit-range floats.
    let (af, bf): (Vec<f32>, Vec<f32>) = (
        a8.iter().map(|&v| f32::from(v) / 255.0).collect(),
        b8.iter().map(|&v| f32::from(v) / 255.0).collect(),
    );
    let mut ours = [f64::INFINITY; 3];
    let mut theirs: Option<[f64; 3]> = None;
    let mut skip = None;
    for round in 0..rounds {
        if skip.is_none() {
            match opencv.run(dir.path(), (w, h), &pairs, runs) {
                Ok(run) => {
                    if round == 0 {
                        println!(
                            "  OpenCV {} on {} threads; ours on rayon's {} threads; best of {runs} \
                             calls in each of {rounds} alternating rounds",
                            run.version,
                            run.threads,
                            rayon::current_num_threads()
                        );
                    }
                    let t = theirs.get_or_insert([f64::INFINITY; 3]);
                    for (i, p) in DisPreset::ALL.iter().enumerate() {
                        t[i] = t[i].min(run.mean_ms(*p));
                    }
                }
                Err(why) => skip = Some(why),
            }
        }
        for (i, p) in DisPreset::ALL.iter().enumerate() {
            let params = FlowParams::preset(*p);
            ours[i] = ours[i].min(best_ms(runs, || {
                drop(estimate_flow(&af, &bf, w, h, &params))
            }));
        }
    }
    if let Some(why) = &skip {
        println!("  skip: OpenCV: {why}");
    }
    println!(
        "  {:<10} {:>9} {:>11} {:>16} {:>11} {:>12}",
        "preset", "ours ms", "OpenCV ms", "speed vs OpenCV", "EPE ours", "EPE OpenCV"
    );
    for (i, p) in DisPreset::ALL.iter().enumerate() {
        let flow = estimate_flow(&af, &bf, w, h, &FlowParams::preset(*p));
        let epe = epe_vs_truth(&flow, &truth);
        let cv_epe = read_flow(&dir.path().join(format!("ab_{}.f32", p.name())), w, h)
            .map(|f| epe_vs_truth(&f, &truth));
        let cv_ms = theirs.map(|t| t[i]);
        println!(
            "  {:<10} {:>9.2} {:>11} {:>16} {:>11.3} {:>12}",
            p.name(),
            ours[i],
            opt(cv_ms, 2),
            cv_ms.map_or("-".into(), |t| format!("{:.2}x", t / ours[i])),
            epe,
            opt(cv_epe, 3),
        );
    }
    println!("  (speed vs OpenCV: OpenCV's time / ours; the target is at least 0.5x)");
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

// ------------------------------------------------------------------ RAFT

/// RAFT-small in an ONNX Runtime session: two RGB images (0..255, sides
/// multiples of 8) in, the flow from the first to the second out.
struct Raft {
    session: Session,
    model: PathBuf,
    /// Flows computed (not cached) and the seconds they took.
    runs: usize,
    seconds: f64,
}

impl Raft {
    /// # Errors
    /// Why RAFT cannot run: no model, no runtime, a model that won't load.
    fn open(model: &Path) -> Result<Self, String> {
        if !model.is_file() {
            return Err(format!("no RAFT model at {}", model.display()));
        }
        let (_, env) = tincture_infer::runtime().map_err(|e| e.to_string())?;
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", model.display());
        let builder = Session::builder(&env).map_err(|e| fail(&e))?;
        let mut builder = builder
            .with_intra_threads(rayon::current_num_threads())
            .map_err(|e| fail(&e))?;
        let session = builder.commit_from_file(model).map_err(|e| fail(&e))?;
        Ok(Self {
            session,
            model: model.to_owned(),
            runs: 0,
            seconds: 0.0,
        })
    }

    /// The flow from `a` to `b`; the frames are padded (edges repeated) to
    /// multiples of 8 and the flow cropped back.
    fn flow(&mut self, a: &RgbImage, b: &RgbImage) -> Result<FlowField, String> {
        let (w, h) = (a.width, a.height);
        let (pw, ph) = (w.div_ceil(8) * 8, h.div_ceil(8) * 8);
        let planar = |img: &RgbImage| {
            let mut out = vec![0.0f32; 3 * pw * ph];
            for c in 0..3 {
                for y in 0..ph {
                    for x in 0..pw {
                        let s = 3 * (y.min(h - 1) * w + x.min(w - 1)) + c;
                        out[(c * ph + y) * pw + x] = f32::from(img.data[s]);
                    }
                }
            }
            Tensor::from_array(([1usize, 3, ph, pw], out)).map_err(|e| e.to_string())
        };
        let inputs = ort::inputs!["image1" => planar(a)?, "image2" => planar(b)?];
        let outputs = self.session.run(inputs).map_err(|e| e.to_string())?;
        let (shape, data) = outputs["flow"]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        if dims != [1, 2, ph as i64, pw as i64] {
            return Err(format!("RAFT returned a flow of shape {dims:?}"));
        }
        let mut f = FlowField::zero(w, h);
        for y in 0..h {
            for x in 0..w {
                f.u[y * w + x] = data[y * pw + x];
                f.v[y * w + x] = data[(ph + y) * pw + x];
            }
        }
        Ok(f)
    }

    /// As [`Raft::flow`], cached on disk under `key`.
    fn cached_flow(&mut self, key: &str, a: &RgbImage, b: &RgbImage) -> Result<FlowField, String> {
        let size = std::fs::metadata(&self.model).map_or(0, |m| m.len());
        let dir = workspace().join("target/flow-bench-cache");
        let path = dir.join(format!("raft-{size}-{key}.f32"));
        if let Some(f) = read_flow(&path, a.width, a.height) {
            return Ok(f);
        }
        let t0 = Instant::now();
        let f = self.flow(a, b)?;
        self.runs += 1;
        self.seconds += t0.elapsed().as_secs_f64();
        // A cache that cannot be written only costs time.
        let _ = std::fs::create_dir_all(&dir).and_then(|()| write_flow(&path, &f));
        Ok(f)
    }
}

// ----------------------------------------------------------------- clips

/// Two consecutive frames: luma for the flows, RGB for RAFT and the warp
/// error.
struct Pair {
    t: u64,
    luma: [Vec<f32>; 2],
    rgb: [RgbImage; 2],
}

/// `count` evenly spaced pairs (t, t + 1) of a clip.
fn read_pairs(path: &Path, count: usize) -> Result<(usize, usize, u64, Vec<Pair>), String> {
    let mut reader = VideoReader::open(path).map_err(|e| e.to_string())?;
    let n = reader.frame_count();
    if n < 2 {
        return Err("fewer than two frames".into());
    }
    let count = (count as u64).min(n - 1).max(1);
    let mut pairs = Vec::new();
    for i in 0..count {
        let t = i * (n - 2) / (count - 1).max(1);
        let first = reader.seek(t).map_err(|e| e.to_string())?;
        let second = reader
            .next_frame()
            .map_err(|e| e.to_string())?
            .ok_or("the clip ended early")?;
        let frames = [first.frame, second.frame];
        pairs.push(Pair {
            t,
            luma: frames.each_ref().map(|f| f.luma_unit().data),
            rgb: frames.each_ref().map(|f| RgbImage {
                width: f.width(),
                height: f.height(),
                data: frame_to_rgb8(f),
            }),
        });
    }
    let (w, h) = (pairs[0].rgb[0].width, pairs[0].rgb[0].height);
    Ok((w, h, n, pairs))
}

/// A flow pair's warp error and the share of pixels the forward-backward
/// check keeps for it.
#[derive(Clone, Copy)]
struct Warp {
    error: Option<f64>,
    kept: f64,
}

/// One method's results on a clip: sums over pairs, for means.
#[derive(Clone, Default)]
struct Score {
    ms: f64,
    epe: f64,
    warp: f64,
    kept: f64,
    pairs: usize,
    warp_pairs: usize,
}

/// Means of a [`Score`]: ms per flow, EPE vs RAFT, warp error, share kept.
struct Means {
    ms: f64,
    epe: f64,
    warp: Option<f64>,
    kept: f64,
}

impl Score {
    fn add(&mut self, ms: f64, epe: f64, warp: Warp) {
        self.ms += ms;
        self.epe += epe;
        if let Some(w) = warp.error {
            self.warp += w;
            self.warp_pairs += 1;
        }
        self.kept += warp.kept;
        self.pairs += 1;
    }

    fn mean(&self) -> Means {
        let n = self.pairs.max(1) as f64;
        Means {
            ms: self.ms / n,
            epe: self.epe / n,
            warp: (self.warp_pairs > 0).then(|| self.warp / self.warp_pairs as f64),
            kept: self.kept / n,
        }
    }
}

/// The rows of the clip tables: RAFT, then ours and OpenCV per preset.
const ROWS: [&str; 7] = [
    "RAFT-small (reference)",
    "ours ultrafast",
    "OpenCV ultrafast",
    "ours fast",
    "OpenCV fast",
    "ours medium",
    "OpenCV medium",
];

fn print_table(title: &str, scores: &[Option<Score>; 7]) {
    println!("  {title}");
    println!(
        "    {:<24} {:>9} {:>12} {:>16} {:>7}",
        "flow", "ms/flow", "EPE vs RAFT", "warp err x1e3", "kept %"
    );
    for (row, (name, s)) in ROWS.iter().zip(scores).enumerate() {
        match s {
            Some(s) if s.pairs > 0 => {
                let m = s.mean();
                let reference = row == 0;
                let ms = if reference {
                    "-".into()
                } else {
                    format!("{:.2}", m.ms)
                };
                let epe = if reference {
                    "(ref)".into()
                } else {
                    opt(Some(m.epe).filter(|e| e.is_finite()), 3)
                };
                let warp = opt(m.warp.map(|w| w * 1e3), 3);
                println!(
                    "    {name:<24} {ms:>9} {epe:>12} {warp:>16} {:>7.1}",
                    m.kept * 100.0
                );
            }
            _ => println!(
                "    {name:<24} {:>9} {:>12} {:>16} {:>7}",
                "-", "-", "-", "-"
            ),
        }
    }
}

fn clip_part(opencv: &OpenCv) {
    let root = workspace();
    let clips_dir = root.join("../shared/data/video/color");
    println!("== 2. shared colour clips ({})", clips_dir.display());
    let Ok(listing) = std::fs::read_dir(&clips_dir) else {
        println!("  skip: no shared clips at {}", clips_dir.display());
        return;
    };
    let filter: Vec<String> = std::env::var("FLOW_BENCH_CLIPS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut clips: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp4" || e == "mkv"))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    clips.sort();
    let pairs_per_clip = env_usize("FLOW_BENCH_PAIRS", 8);
    let model = std::env::var_os("TINCTURE_RAFT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/models/raft_small_iter12_dynamic.onnx"));
    let mut raft = if std::env::var("FLOW_BENCH_RAFT").is_ok_and(|v| v == "0") {
        println!("  skip: RAFT (FLOW_BENCH_RAFT=0): no EPE vs RAFT");
        None
    } else {
        match Raft::open(&model) {
            Ok(r) => Some(r),
            Err(why) => {
                println!("  skip: RAFT: {why}: no EPE vs RAFT");
                None
            }
        }
    };
    let mut opencv_ok = true;
    let mut total: [Score; 7] = Default::default();
    let mut clips_done = 0usize;
    for clip in &clips {
        let name = clip
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (w, h, n, pairs) = match read_pairs(clip, pairs_per_clip) {
            Ok(p) => p,
            Err(why) => {
                println!("  skip: {name}: {why}");
                continue;
            }
        };
        let mut scores: [Option<Score>; 7] = Default::default();
        // OpenCV: every pair both ways, in one job.
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut job = Vec::new();
        for (i, p) in pairs.iter().enumerate() {
            for (j, l) in p.luma.iter().enumerate() {
                std::fs::write(dir.path().join(format!("{i}_{j}.u8")), to_u8(l))
                    .expect("write a frame");
            }
            job.push(JobPair {
                a: format!("{i}_0.u8"),
                b: format!("{i}_1.u8"),
                stem: format!("{i}_fw"),
            });
            job.push(JobPair {
                a: format!("{i}_1.u8"),
                b: format!("{i}_0.u8"),
                stem: format!("{i}_bw"),
            });
        }
        let cv = if opencv_ok {
            match opencv.run(dir.path(), (w, h), &job, 3) {
                Ok(run) => Some(run),
                Err(why) => {
                    println!("  skip: OpenCV: {why}");
                    opencv_ok = false;
                    None
                }
            }
        } else {
            None
        };
        for (i, p) in pairs.iter().enumerate() {
            let reference = match raft.as_mut() {
                Some(r) => {
                    let fw = r.cached_flow(&format!("{name}-{}-fw", p.t), &p.rgb[0], &p.rgb[1]);
                    let bw = r.cached_flow(&format!("{name}-{}-bw", p.t), &p.rgb[1], &p.rgb[0]);
                    match (fw, bw) {
                        (Ok(fw), Ok(bw)) => Some((fw, bw)),
                        (Err(e), _) | (_, Err(e)) => {
                            println!("  skip: RAFT on {name} frame {}: {e}", p.t);
                            None
                        }
                    }
                }
                None => None,
            };
            let warp = |fw: &FlowField, bw: &FlowField| Warp {
                error: warp_error(&p.rgb[0], &p.rgb[1], fw, bw).ok().flatten(),
                kept: visible_mask(fw, bw).map_or(0.0, |m| {
                    m.iter().filter(|&&v| v).count() as f64 / m.len().max(1) as f64
                }),
            };
            let epe = |f: &FlowField| {
                reference
                    .as_ref()
                    .map_or(f64::NAN, |(r, _)| f.endpoint_error(r))
            };
            if let Some((fw, bw)) = &reference {
                scores[0]
                    .get_or_insert_default()
                    .add(0.0, 0.0, warp(fw, bw));
            }
            for (k, preset) in DisPreset::ALL.iter().enumerate() {
                let params = FlowParams::preset(*preset);
                let (a, b) = (&p.luma[0], &p.luma[1]);
                let ms = best_ms(3, || drop(estimate_flow(a, b, w, h, &params)));
                let fw = estimate_flow(a, b, w, h, &params);
                let bw = estimate_flow(b, a, w, h, &params);
                scores[1 + 2 * k]
                    .get_or_insert_default()
                    .add(ms, epe(&fw), warp(&fw, &bw));
                if let Some(run) = &cv {
                    let path = |d: &str| dir.path().join(format!("{i}_{d}_{}.f32", preset.name()));
                    if let (Some(fw), Some(bw)) =
                        (read_flow(&path("fw"), w, h), read_flow(&path("bw"), w, h))
                    {
                        let ms = run
                            .timings
                            .iter()
                            .find(|(pair, name, _)| *pair == 2 * i && name == preset.name())
                            .map_or(f64::NAN, |t| t.2);
                        scores[2 + 2 * k]
                            .get_or_insert_default()
                            .add(ms, epe(&fw), warp(&fw, &bw));
                    }
                }
            }
        }
        print_table(
            &format!("{name} ({w}x{h}, {n} frames, {} pairs)", pairs.len()),
            &scores,
        );
        for (t, s) in total.iter_mut().zip(&scores) {
            if let Some(s) = s {
                let m = s.mean();
                t.add(
                    m.ms,
                    m.epe,
                    Warp {
                        error: m.warp,
                        kept: m.kept,
                    },
                );
            }
        }
        clips_done += 1;
    }
    if clips_done > 0 {
        let mean = total.map(|t| (t.pairs > 0).then_some(t));
        print_table(
            &format!("mean over {clips_done} clips (of the per-clip means)"),
            &mean,
        );
        println!(
            "  (EPE vs RAFT: mean over all pixels of the forward flow, in pixels; warp error:"
        );
        println!(
            "   mean squared RGB difference, 0..1 units, between frame t and frame t+1 sampled"
        );
        println!("   along the flow, over the pixels the forward-backward check keeps (kept %);");
        println!("   lower is better for both, at a similar share kept)");
        if let Some(r) = raft.as_ref().filter(|r| r.runs > 0) {
            println!(
                "  (RAFT: {:.1} s per flow on the CPU, {} flows computed, the rest cached)",
                r.seconds / r.runs as f64,
                r.runs
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("flow: benchmark");
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "flow bench: skipped outside `cargo bench` (run `cargo bench -p tincture-engine --bench flow`)"
        );
        return;
    }
    let opencv = OpenCv::new();
    let part = std::env::var("FLOW_BENCH_PART").unwrap_or_default();
    if part != "clips" {
        synthetic_part(&opencv);
    }
    if part != "synthetic" {
        clip_part(&opencv);
    }
}
