//! What the video metrics cost, and what measuring them live adds to an export.
//!
//! `cargo bench -p tincture-engine --bench metrics` prints:
//!
//! 1. the cost of each metric per 1280x720 frame (median of several runs),
//!    on frames of a moving colour test clip;
//! 2. the export time of a 720p clip to FFV1 with reference colour transfer
//!    (the fastest colour export, so the strictest test), with live metrics
//!    and without, alternating, best of three each, and the share of export
//!    time the metrics take. The target is at most 10%.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tincture_core::compose::frame_to_rgb8;
use tincture_core::flow::{FlowParams, estimate_flow};
use tincture_core::frame::RgbImage;
use tincture_core::metrics::{colorfulness, psnr_rgb, ssim};
use tincture_core::video_metrics::{
    cdc, jensen_shannon, lab_means, luma_of_rgb, rgb_histograms, visible_mask, warp_error,
};
use tincture_engine::live_metrics::{LiveMetrics, PREVIEW_SIDE, preview_frame};
use tincture_engine::render::{OutputFormat, RenderRequest, render};
use tincture_media::{VideoCodec, VideoReader};

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("the ffmpeg tool (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// A colour clip with motion, and its black-and-white version.
fn make_clips(dir: &Path, frames: u32) -> (PathBuf, PathBuf) {
    let colour = dir.join("colour.mkv");
    let gray = dir.join("gray.mp4");
    let n = frames.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=24",
        "-frames:v",
        &n,
        "-c:v",
        "ffv1",
        colour.to_str().expect("utf8"),
    ]);
    ffmpeg(&[
        "-i",
        colour.to_str().expect("utf8"),
        "-vf",
        "hue=s=0,noise=alls=8:allf=t",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        gray.to_str().expect("utf8"),
    ]);
    (colour, gray)
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn per_metric(colour: &Path) {
    let mut reader = VideoReader::open(colour).expect("clip");
    let mut frames = Vec::new();
    while let Some(d) = reader.next_frame().expect("decode") {
        frames.push(d.frame);
        if frames.len() == 5 {
            break;
        }
    }
    let rgb: Vec<RgbImage> = frames
        .iter()
        .map(|f| RgbImage {
            width: f.width(),
            height: f.height(),
            data: frame_to_rgb8(f),
        })
        .collect();
    let (w, h) = (rgb[0].width, rgb[0].height);
    let l0 = frames[0].luma_unit().data;
    let l1 = frames[1].luma_unit().data;
    let runs = 5;
    println!("cost per {w}x{h} frame (median of {runs}):");
    let mut total_live = 0.0;
    println!("  (\"live\" marks the parts an export measures, here at full size)");
    let mut row = |name: &str, ms: f64, live: bool| {
        if live {
            total_live += ms;
        }
        println!(
            "  {name:<44} {ms:8.2} ms{}",
            if live { "  (live)" } else { "" }
        );
    };
    row(
        "frame to 8-bit RGB",
        median_ms(runs, || drop(frame_to_rgb8(&frames[1]))),
        true,
    );
    row(
        "luma to unit floats",
        median_ms(runs, || drop(frames[1].luma_unit())),
        true,
    );
    let full = FlowParams::default();
    let fast = FlowParams::fast();
    row(
        "optical flow, full resolution (x2: fw + bw)",
        2.0 * median_ms(3, || drop(estimate_flow(&l0, &l1, w, h, &full))),
        false,
    );
    row(
        "optical flow, half resolution (x2: fw + bw)",
        2.0 * median_ms(3, || drop(estimate_flow(&l0, &l1, w, h, &fast))),
        true,
    );
    let fw = estimate_flow(&l0, &l1, w, h, &fast);
    let bw = estimate_flow(&l1, &l0, w, h, &fast);
    row(
        "occlusion mask (in warp error)",
        median_ms(runs, || drop(visible_mask(&fw, &bw))),
        false,
    );
    row(
        "warp error given the flows",
        median_ms(runs, || drop(warp_error(&rgb[0], &rgb[1], &fw, &bw))),
        true,
    );
    let hists: Vec<_> = rgb.iter().map(rgb_histograms).collect();
    row(
        "CDC: histograms + 3 distances x 3 channels",
        median_ms(runs, || {
            let h = rgb_histograms(&rgb[4]);
            for d in [1usize, 2, 4] {
                for c in 0..3 {
                    std::hint::black_box(jensen_shannon(&hists[4 - d].0[c], &h.0[c]));
                }
            }
        }),
        true,
    );
    std::hint::black_box(cdc(&hists));
    row(
        "colourfulness",
        median_ms(runs, || drop(colorfulness(&rgb[1]))),
        true,
    );
    row(
        "mean a*, b*, chroma",
        median_ms(runs, || {
            std::hint::black_box(lab_means(&rgb[1]));
        }),
        true,
    );
    row(
        "PSNR (with a reference)",
        median_ms(runs, || drop(psnr_rgb(&rgb[1], &rgb[0]))),
        false,
    );
    row(
        "SSIM (with a reference)",
        median_ms(3, || drop(ssim(&rgb[1], &rgb[0]))),
        false,
    );
    let mut s = tincture_core::video_metrics::MetricsStream::new(Default::default());
    s.push(&rgb[0], &luma_of_rgb(&rgb[0]), None).expect("push");
    row(
        "CIEDE2000 (with a reference)",
        median_ms(3, || {
            drop(tincture_core::metrics::ciede2000_mean(&rgb[1], &rgb[0]))
        }),
        false,
    );
    println!(
        "  {:<44} {total_live:8.2} ms",
        "sum of the above marked live, at full size"
    );
    // What the export's metrics thread really does, on its preview.
    let live_ms = median_ms(3, || {
        let live = LiveMetrics::default();
        for f in &frames {
            live.measure(f);
        }
    }) / frames.len() as f64;
    println!(
        "  {:<44} {live_ms:8.2} ms",
        format!("live metrics as exported ({PREVIEW_SIDE} px preview)")
    );
    // Its parts.
    let previews: Vec<_> = frames.iter().map(preview_frame).collect();
    println!(
        "    {:<42} {:8.2} ms",
        "the preview (box average of the planes)",
        median_ms(runs, || drop(preview_frame(&frames[1])))
    );
    let (pw, ph) = (previews[0].width(), previews[0].height());
    let (p0, p1) = (previews[0].luma_unit().data, previews[1].luma_unit().data);
    let flow = FlowParams::fast();
    println!(
        "    {:<42} {:8.2} ms",
        format!("optical flow on {pw}x{ph}, at half (x2: fw + bw)"),
        2.0 * median_ms(runs, || drop(estimate_flow(&p0, &p1, pw, ph, &flow)))
    );
}

fn export(gray: &Path, out: &Path, reference: &Path, metrics: bool) -> f64 {
    let colorizer = tincture_engine::reference::reference_colorizer(
        reference,
        tincture_core::color::Matrix::Bt709,
    )
    .expect("reference");
    let live = metrics.then(LiveMetrics::default);
    let req = RenderRequest {
        input: gray.to_owned(),
        output: out.to_owned(),
        format: OutputFormat::Video(VideoCodec::Ffv1),
        frames: None,
        colorizer: Some(Box::new(colorizer)),
        overwrite: true,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        metrics: live.clone(),
        also_reads: Vec::new(),
    };
    let t0 = Instant::now();
    render(req, &AtomicBool::new(false), |_| {}).expect("render");
    let t = t0.elapsed().as_secs_f64();
    if let Some(l) = live {
        let r = l.report();
        assert!(r.warp_error.mean.is_some(), "metrics measured");
    }
    t
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("metrics: benchmark");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let frames = 96;
    let (colour, gray) = make_clips(dir.path(), frames);
    per_metric(&colour);

    let reference = dir.path().join("ref.png");
    image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
    .save(&reference)
    .expect("reference");
    let out = dir.path().join("out.mkv");
    let (mut best_off, mut best_on) = (f64::MAX, f64::MAX);
    for round in 0..3 {
        let off = export(&gray, &out, &reference, false);
        let on = export(&gray, &out, &reference, true);
        println!(
            "round {round}: export without metrics {:.1} fps, with live metrics {:.1} fps",
            f64::from(frames) / off,
            f64::from(frames) / on
        );
        best_off = best_off.min(off);
        best_on = best_on.min(on);
    }
    println!(
        "720p export to FFV1 with reference transfer, {frames} frames, best of 3: \
         {:.2} s without metrics, {:.2} s with live metrics",
        best_off, best_on
    );
    println!(
        "  live metrics add {:.1}% to export time (target <= 10%)",
        (best_on / best_off - 1.0) * 100.0
    );
}
