//! Inference latency of the built-in colorizer, and the cost of the worker.
//!
//!     cargo bench -p tincture-infer --bench inference [-- --runs N --frames N --threads T]
//!
//! Prints, on this machine's CPU (or the accelerator ONNX Runtime picks):
//! * latency of one `session.run` (through `Model::run`) at 256x256,
//!   512x512 and 1280x720 (run at the nearest multiples of 32);
//! * throughput of the inference worker pipeline (frames sent as batch
//!   jobs over the channel, coloured on the worker thread, chroma sent back)
//!   against raw `Model::run` calls on the same frames, in the same run, and
//!   the worker's overhead.
//!
//! Like every Tincture bench it runs only under `cargo bench` (`--bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tincture_core::color::Matrix;
use tincture_core::frame::LumaImage;
use tincture_infer::worker::Job;
use tincture_infer::{
    ExecutionChoice, InferenceWorker, Model, ModelInput, ModelRegistry, NeuralColorizer,
    RenderSettings, WorkerEvent,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A textured test frame (gradients and rings), deterministic.
fn frame(w: usize, h: usize) -> Vec<f32> {
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let r = ((x - w as f32 / 2.0).hypot(y - h as f32 / 2.0) / 9.0).sin();
            (0.5 + 0.3 * r * (x / w as f32) + 0.15 * (y / h as f32)).clamp(0.0, 1.0)
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fail(msg: String) -> ! {
    println!("inference bench: {msg}");
    std::process::exit(1)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "inference bench: skipped (run it with `cargo bench -p tincture-infer --bench inference`)"
        );
        return;
    }
    let runs = arg("--runs", 10);
    let frames = arg("--frames", 40);
    let threads = arg(
        "--threads",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    );
    let manifest = match ModelRegistry::standard().builtin() {
        Ok(p) => p,
        Err(e) => {
            println!("inference bench: skipped: {e}");
            return;
        }
    };
    let mut model = Model::open(&manifest, ExecutionChoice::Auto, threads)
        .unwrap_or_else(|e| fail(format!("cannot open the built-in model: {e}")));
    println!(
        "model {} ({}), provider {}, {threads} intra-op threads, median of {runs} runs after one warm-up",
        model.name(),
        manifest.display(),
        model.provider()
    );
    println!(
        "{:<12} {:>12} {:>12} {:>10}",
        "size", "run at", "latency ms", "fps"
    );
    for (w, h) in [(256, 256), (512, 512), (1280, 720)] {
        let (rw, rh) = model.run_size(w, h, Some(w.min(h) as u32));
        let luma = frame(rw, rh);
        let input = ModelInput {
            luma: &luma,
            width: rw,
            height: rh,
            hints: &[],
            frame: 0,
        };
        model
            .run(input)
            .unwrap_or_else(|e| fail(format!("{w}x{h}: {e}")));
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                if let Err(e) = model.run(input) {
                    fail(e.to_string());
                }
                t.elapsed()
            })
            .collect();
        let m = median(times);
        println!(
            "{:<12} {:>12} {:>12.1} {:>10.2}",
            format!("{w}x{h}"),
            format!("{rw}x{rh}"),
            m.as_secs_f64() * 1e3,
            1.0 / m.as_secs_f64()
        );
    }

    // Worker pipeline vs raw runs, on frames at the model's run size, so the
    // difference is the worker's own cost: the channel hand-offs, the
    // thread, and turning the model's a*b* into Cb/Cr for the frame.
    let (w, h) = (384, 256);
    let luma = Arc::new(LumaImage {
        width: w,
        height: h,
        data: frame(w, h),
    });
    let t = Instant::now();
    for i in 0..frames {
        let input = ModelInput {
            luma: &luma.data,
            width: w,
            height: h,
            hints: &[],
            frame: i as u64,
        };
        if let Err(e) = model.run(input) {
            fail(e.to_string());
        }
    }
    let raw = t.elapsed();
    drop(model);

    let m2 = manifest.clone();
    let (worker, _, _) = InferenceWorker::start(move || {
        Model::open(&m2, ExecutionChoice::Auto, threads).map(|m| {
            NeuralColorizer::new(
                m,
                RenderSettings {
                    short_side: Some(256),
                    ..RenderSettings::default()
                },
            )
        })
    })
    .unwrap_or_else(|e| fail(format!("worker failed to start: {e}")));
    let job = |i: usize| Job {
        luma: Arc::clone(&luma),
        hints: Vec::new(),
        frame: i as u64,
        matrix: Matrix::Bt709,
        short_side: None,
    };
    if let Err(e) = worker.colorize_blocking(u64::MAX, job(0)) {
        fail(e.to_string());
    }
    let t = Instant::now();
    for i in 0..frames {
        if let Err(e) = worker.batch(i as u64, job(i)) {
            fail(e.to_string());
        }
    }
    let mut done = 0;
    while done < frames {
        match worker.events().recv() {
            Ok(WorkerEvent::Batch { result, .. }) => {
                if let Err(e) = result {
                    fail(e.to_string());
                }
                done += 1;
            }
            Ok(_) => {}
            Err(_) => fail("the worker stopped".into()),
        }
    }
    let piped = t.elapsed();
    worker.stop();
    let raw_fps = frames as f64 / raw.as_secs_f64();
    let worker_fps = frames as f64 / piped.as_secs_f64();
    println!("pipeline at {w}x{h}, {frames} frames:");
    println!("  raw Model::run      {raw_fps:>8.2} fps");
    println!("  inference worker    {worker_fps:>8.2} fps");
    println!(
        "  worker / raw = {:.3}  (overhead {:.1}%)",
        worker_fps / raw_fps,
        (1.0 - worker_fps / raw_fps) * 100.0
    );
}
