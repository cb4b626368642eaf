//! The analysis library run on small clips the `ffmpeg` tool makes: a
//! moving colour test picture and its gray copy. Without the tool these
//! tests skip, saying so, unless `TINCTURE_REQUIRE_FIXTURES` is set (as in
//! CI), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use tincture_core::metrics::PSNR_CAP_DB;

use super::eval::{EvalEvent, EvalRequest, evaluate};
use super::metrics::{MetricsRequest, measure};
use super::plot::{PANEL_HEIGHT, PLOT_WIDTH, TITLE_HEIGHT, write_plot};
use super::*;

const FRAMES: u64 = 6;

/// Makes `name` in `dir` from the lavfi `source` (6 frames of 128x96,
/// FFV1 with `pix_fmt`), or says why it cannot.
fn clip(dir: &Path, name: &str, filter: &str, pix_fmt: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=128x96:rate=24"])
        .args(["-vf", filter, "-frames:v", &FRAMES.to_string()])
        .args(["-pix_fmt", pix_fmt, "-c:v", "ffv1"])
        .arg(&path)
        .output()
        .map_err(|e| format!("the ffmpeg tool is not available ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(path)
}

/// A colour clip and its gray copy in `dir`; `None` (after saying why) where
/// they cannot be made and skipping is allowed.
fn clips(test: &str, dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let made = clip(dir, "colour.mkv", "null", "yuv420p")
        .and_then(|c| Ok((c, clip(dir, "gray.mkv", "hue=s=0", "yuv420p")?)));
    match made {
        Ok(c) => Some(c),
        Err(reason) => {
            let required = std::env::var_os("TINCTURE_REQUIRE_FIXTURES")
                .is_some_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{test} cannot be skipped: {reason}");
            println!("skipping {test}: {reason}");
            None
        }
    }
}

#[test]
fn a_clip_measured_against_itself_is_perfect_and_its_plot_has_six_panels() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let Some((colour, gray)) = clips("measure", dir.path()) else {
        return;
    };
    let req = MetricsRequest {
        video: colour.clone(),
        reference: Some(colour.clone()),
        frames: Some((1, 4)),
    };
    let mut calls = Vec::new();
    let m = measure(&req, &AtomicBool::new(false), |done, total| {
        calls.push((done, total));
    })
    .expect("measured");
    assert_eq!(calls, [(1, 4), (2, 4), (3, 4), (4, 4)]);
    assert!(!m.stopped);
    assert_eq!((m.report.frames, m.frames), (4, (1, 4)));
    assert_eq!(m.json().first_frame, 1);
    let psnr = m.report.psnr.as_ref().expect("against a reference");
    assert_eq!(psnr.mean, Some(PSNR_CAP_DB));
    let de = m.report.ciede2000.as_ref().expect("against a reference");
    assert!(de.mean.is_some_and(|d| d < 1e-9), "{de:?}");
    assert!(
        m.report.warp_error.mean.is_some(),
        "a moving clip has flicker figures"
    );
    assert_eq!(
        m.title(),
        format!(
            "{} against {} (frames 1-4)",
            colour.display(),
            colour.display()
        )
    );

    // The plot: warp error, CDC, colourfulness, PSNR, SSIM, CIEDE2000.
    let png = dir.path().join("plot.png");
    write_plot(&png, &[&colour], false, &m.plot()).expect("written");
    let img = image::open(&png).expect("a PNG").into_rgb8();
    assert_eq!(
        img.dimensions(),
        (PLOT_WIDTH, TITLE_HEIGHT + 6 * PANEL_HEIGHT)
    );
    // Never over an input, never over an existing file without overwrite.
    assert!(matches!(
        write_plot(&colour, &[&colour], true, &m.plot()),
        Err(Error::OutputIsInput { .. })
    ));
    assert!(matches!(
        write_plot(&png, &[&colour], false, &m.plot()),
        Err(Error::OutputExists { .. })
    ));

    // Against a gray reference: refused, by name.
    let req = MetricsRequest {
        reference: Some(gray.clone()),
        ..req
    };
    match measure(&req, &AtomicBool::new(false), |_, _| {}) {
        Err(Error::Reference { path, reason }) => {
            assert_eq!(path, gray);
            assert!(reason.contains("the clip is gray"), "{reason}");
        }
        other => panic!("a gray reference was not refused: {other:?}"),
    }
}

#[test]
fn measuring_stops_between_frames_when_cancelled() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let Some((colour, _)) = clips("cancel", dir.path()) else {
        return;
    };
    let cancel = AtomicBool::new(false);
    let req = MetricsRequest {
        video: colour,
        ..MetricsRequest::default()
    };
    let m = measure(&req, &cancel, |done, _| {
        if done == 2 {
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .expect("measured");
    assert!(m.stopped);
    assert_eq!((m.report.frames, m.frames), (2, (0, FRAMES - 1)));
    assert!(m.report.psnr.is_none(), "no reference");
    let outside = MetricsRequest {
        frames: Some((2, FRAMES)),
        ..req
    };
    assert!(matches!(
        measure(&outside, &AtomicBool::new(false), |_, _| {}),
        Err(Error::FrameRange { last: FRAMES, .. })
    ));
}

#[test]
fn reference_transfer_from_a_keyframe_is_evaluated_without_a_model() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let Some((colour, gray)) = clips("evaluate", dir.path()) else {
        return;
    };
    let req = EvalRequest {
        truth: colour.clone(),
        keyframes: vec![3, 0, 3],
        transfer: true,
        ..EvalRequest::default()
    };
    let mut said = Vec::new();
    let mut progress = 0;
    let e = evaluate(&req, &AtomicBool::new(false), |event| match event {
        EvalEvent::Colouring(how) => said.push(how),
        EvalEvent::Progress { done, total } => {
            assert_eq!(total, FRAMES);
            progress = done;
        }
        EvalEvent::ModelOpened { .. } => panic!("reference transfer needs no model"),
    })
    .expect("evaluated");
    assert_eq!(said, ["reference transfer from keyframes 0, 3"]);
    assert_eq!(progress, FRAMES);
    assert_eq!(e.engine, "reference transfer");
    assert_eq!(e.keyframes, [0, 3]);
    assert!(e.strip.is_empty(), "no strip asked for");
    // Keyframes keep their true colour; the frames between take it by transfer.
    let psnr = e.report.psnr.as_ref().expect("against the truth");
    assert_eq!(psnr.per_frame[0], Some(PSNR_CAP_DB));
    assert_eq!(psnr.per_frame[3], Some(PSNR_CAP_DB));
    assert!(psnr.per_frame[1].is_some_and(|p| p < PSNR_CAP_DB));
    assert_eq!(e.floor.frames as u64, FRAMES);
    assert!(
        e.title().contains("from keyframes [0, 3] (frames 0-5)"),
        "{}",
        e.title()
    );

    // A keyframe outside the clip, a gray truth: refused.
    let outside = EvalRequest {
        keyframes: vec![FRAMES],
        ..req.clone()
    };
    assert!(matches!(
        evaluate(&outside, &AtomicBool::new(false), |_| {}),
        Err(Error::Setting {
            name: "keyframes",
            ..
        })
    ));
    let gray_truth = EvalRequest { truth: gray, ..req };
    assert!(matches!(
        evaluate(&gray_truth, &AtomicBool::new(false), |_| {}),
        Err(Error::Analysis { .. })
    ));
}

#[test]
fn labels_and_ranges() {
    assert_eq!(frames_label((4, 4)), "frame 4");
    assert_eq!(frames_label((0, 9)), "frames 0-9");
    let p = Path::new("clip.mkv");
    assert_eq!(frame_range(p, None, 10).expect("all"), (0, 9));
    assert_eq!(frame_range(p, Some((2, 5)), 10).expect("some"), (2, 5));
    assert!(matches!(
        frame_range(p, Some((2, 10)), 10),
        Err(Error::FrameRange { last: 10, .. })
    ));
    assert!(matches!(
        frame_range(p, Some((5, 2)), 10),
        Err(Error::FrameRange { .. })
    ));
    let empty = frame_range(p, None, 0).expect_err("no frames");
    assert_eq!(empty.to_string(), "clip.mkv: holds no video frames");
}
