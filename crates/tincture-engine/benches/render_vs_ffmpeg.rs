//! Render speed against the `ffmpeg` tool, and memory over a long render.
//!
//! `cargo bench -p tincture-engine --bench render_vs_ffmpeg` decodes a 720p
//! H.264 clip and encodes it to FFV1 (level 3, slice CRCs, the same slices
//! and threads) in five rounds, each alternating: through Tincture's
//! pipeline in passthrough mode, with the `ffmpeg` tool, and through
//! Tincture again with live metrics. It prints the frame rates (median and
//! best), Tincture's ratio to ffmpeg, and what live metrics cost.
//!
//! `... -- --memory 10000` renders that many 720p frames with reference
//! colour transfer to FFV1 and prints resident memory as it goes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tincture_engine::render::{OutputFormat, RenderRequest, render};
use tincture_media::VideoCodec;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("the ffmpeg tool (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?}");
}

fn make_clip(dir: &Path, frames: u32, preset: &str) -> PathBuf {
    let clip = dir.join(format!("clip_{frames}.mp4"));
    let n = frames.to_string();
    // A telecined black-and-white film: moving texture, no chroma.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=24,hue=s=0,noise=alls=12:allf=t",
        "-frames:v",
        &n,
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().expect("utf8"),
    ]);
    clip
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn tincture_render(clip: &Path, out: &Path, reference: Option<&Path>) -> u64 {
    tincture_render_with(clip, out, reference, false)
}

/// A render, with the live metrics (flicker and colourfulness per frame,
/// written beside the output) when `metrics`.
fn tincture_render_with(clip: &Path, out: &Path, reference: Option<&Path>, metrics: bool) -> u64 {
    let colorizer: Option<Box<dyn tincture_core::colorize::Colorizer>> = reference.map(|r| {
        Box::new(
            tincture_engine::reference::reference_colorizer(r, tincture_core::color::Matrix::Bt709)
                .expect("reference"),
        ) as Box<dyn tincture_core::colorize::Colorizer>
    });
    let req = RenderRequest {
        input: clip.to_owned(),
        output: out.to_owned(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: None,
        colorizer,
        overwrite: true,
        threads: threads(),
        metrics: metrics.then(tincture_engine::live_metrics::LiveMetrics::default),
        also_reads: Vec::new(),
    };
    match render(req, &AtomicBool::new(false), |_| {}).expect("render") {
        tincture_engine::render::Outcome::Completed { frames, .. } => frames,
        other => panic!("{other:?}"),
    }
}

fn ffmpeg_transcode(clip: &Path, out: &Path) {
    let t = threads().to_string();
    // The same settings Tincture's FFV1 writer uses for 720p.
    ffmpeg(&[
        "-threads",
        &t,
        "-i",
        clip.to_str().expect("utf8"),
        "-map",
        "0:v",
        "-c:v",
        "ffv1",
        "-level",
        "3",
        "-slicecrc",
        "1",
        "-g",
        "1",
        "-slices",
        "16",
        "-threads",
        &t,
        out.to_str().expect("utf8"),
    ]);
}

/// User and system CPU seconds of this process so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: fills our own local.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    assert_eq!(r, 0, "getrusage");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn make_reference(path: &Path) {
    let img = image::RgbImage::from_fn(320, 240, |x, y| {
        let n = ((x * 7 + y * 13) % 17) as u8;
        if y < 80 {
            image::Rgb([110 + n, 160, 230])
        } else if y < 160 {
            image::Rgb([60, 140 + n, 50])
        } else {
            image::Rgb([150 + n, 95, 55])
        }
    });
    img.save(path).expect("reference");
}

fn speed(dir: &Path) {
    let frames = 240;
    let clip = make_clip(dir, frames, "medium");
    let out_t = dir.join("tincture.mkv");
    let out_f = dir.join("ffmpeg.mkv");
    let rounds = 5;
    let (mut ts, mut fs, mut ms) = (Vec::new(), Vec::new(), Vec::new());
    // CPU seconds of this process (all its threads) per passthrough render,
    // without and with live metrics: what the metrics cost whatever else
    // the machine runs.
    let (mut cpu_t, mut cpu_m) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let n = tincture_render(&clip, &out_t, None);
        let t = t0.elapsed().as_secs_f64();
        cpu_t.push(cpu_seconds() - c0);
        assert_eq!(n, u64::from(frames));
        let t0 = Instant::now();
        ffmpeg_transcode(&clip, &out_f);
        let f = t0.elapsed().as_secs_f64();
        let (t0, c0) = (Instant::now(), cpu_seconds());
        tincture_render_with(&clip, &out_t, None, true);
        let m = t0.elapsed().as_secs_f64();
        cpu_m.push(cpu_seconds() - c0);
        println!(
            "round {round}: tincture {:.1} fps, ffmpeg {:.1} fps, tincture with live metrics {:.1} fps",
            f64::from(frames) / t,
            f64::from(frames) / f,
            f64::from(frames) / m
        );
        ts.push(t);
        fs.push(f);
        ms.push(m);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let (best_t, best_f, best_m) = (best(&ts), best(&fs), best(&ms));
    let (med_t, med_f, med_m) = (median(&mut ts), median(&mut fs), median(&mut ms));
    let fps = |s: f64| f64::from(frames) / s;
    println!(
        "720p H.264 -> FFV1, {frames} frames, {} threads, {rounds} rounds alternating; median (best):",
        threads()
    );
    println!(
        "  tincture passthrough  {:.1} fps ({:.1})",
        fps(med_t),
        fps(best_t)
    );
    println!(
        "  ffmpeg tool           {:.1} fps ({:.1})",
        fps(med_f),
        fps(best_f)
    );
    println!(
        "  ratio tincture/ffmpeg {:.3}x ({:.3}x) (target >= 0.9x)",
        med_f / med_t,
        best_f / best_t
    );
    println!(
        "  tincture passthrough with live metrics {:.1} fps ({:.1})",
        fps(med_m),
        fps(best_m)
    );
    let cost = (med_m / med_t - 1.0) * 100.0;
    println!(
        "  live metrics cost {cost:.1}% ({:.1}%) of the passthrough's time (target <= 5%: {})",
        (best_m / best_t - 1.0) * 100.0,
        if cost <= 5.0 { "MET" } else { "NOT MET" }
    );
    let (cpu_t, cpu_m) = (median(&mut cpu_t), median(&mut cpu_m));
    println!(
        "  CPU time per render, median: passthrough {cpu_t:.2} s, with live metrics {cpu_m:.2} s: \
         live metrics cost {:.1}% of the passthrough's CPU time",
        (cpu_m / cpu_t - 1.0) * 100.0
    );

    let reference = dir.join("ref.png");
    make_reference(&reference);
    let t0 = Instant::now();
    tincture_render(&clip, &out_t, Some(&reference));
    println!(
        "  tincture with reference colour transfer {:.1} fps",
        f64::from(frames) / t0.elapsed().as_secs_f64()
    );
}

fn memory(dir: &Path, frames: u32) {
    let clip = make_clip(dir, frames, "ultrafast");
    let reference = dir.join("ref.png");
    make_reference(&reference);
    let out = dir.join("long.mkv");
    let req = RenderRequest {
        input: clip.clone(),
        output: out.clone(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: None,
        colorizer: Some(Box::new(
            tincture_engine::reference::reference_colorizer(
                &reference,
                tincture_core::color::Matrix::Bt709,
            )
            .expect("ref"),
        )),
        overwrite: true,
        threads: threads(),
        metrics: None,
        also_reads: Vec::new(),
    };
    let mut samples = Vec::new();
    let t0 = Instant::now();
    render(req, &AtomicBool::new(false), |p| {
        if p.done % 500 == 0 || p.done == p.total {
            let mb = rss_mb();
            samples.push((p.done, mb));
            println!(
                "  frame {:>6}/{}  RSS {mb:.0} MB  {:.1} fps",
                p.done,
                p.total,
                p.done as f64 / t0.elapsed().as_secs_f64()
            );
        }
    })
    .expect("render");
    let max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let early = samples.iter().find(|s| s.0 >= 1000).map_or(0.0, |s| s.1);
    let last = samples.last().map_or(0.0, |s| s.1);
    println!("{frames} frames at 1280x720 with reference transfer to FFV1:");
    println!(
        "  RSS at frame 1000 {early:.0} MB, at the end {last:.0} MB, peak {max:.0} MB (limit 500 MB)"
    );
    println!(
        "  growth from frame 1000 to the end: {:.1} MB",
        last - early
    );
    let _ = std::fs::remove_file(out);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("render_vs_ffmpeg: skipped outside `cargo bench` (it takes minutes)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    match args.iter().position(|a| a == "--memory") {
        Some(i) => memory(
            dir.path(),
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000),
        ),
        None => speed(dir.path()),
    }
}
