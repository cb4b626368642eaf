//! What the workstation benches share: the `ffmpeg` tool, percentiles and
//! stepping the window until something holds.

#![allow(dead_code, reason = "each bench uses the part it needs")]

use std::process::Command;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use tincture_app::TinctureApp;

/// Whether this run is `cargo bench` (`cargo test --all-targets` runs bench
/// binaries without `--bench`; timings are for `cargo bench` only).
pub fn benchmarking(name: &str) -> bool {
    let on = std::env::args().any(|a| a == "--bench");
    if !on {
        println!("skip: the {name} bench runs under `cargo bench -p tincture-app --bench {name}`");
    }
    on
}

/// Runs the `ffmpeg` tool quietly; panics with its arguments on failure.
pub fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("the ffmpeg tool (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

pub fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

pub fn median(samples: &[f64]) -> f64 {
    let s = sorted(samples);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The 99th percentile by nearest rank (the maximum of under 100 samples).
pub fn p99(samples: &[f64]) -> f64 {
    let s = sorted(samples);
    let rank = ((s.len() as f64) * 0.99).ceil() as usize;
    s.get(rank.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// `PASS` or `MISS` against a target in milliseconds.
pub fn verdict(value_ms: f64, target_ms: f64) -> &'static str {
    if value_ms < target_ms { "PASS" } else { "MISS" }
}

/// Steps until `done` holds, for at most `limit`.
pub fn wait_for(
    harness: &mut Harness<'_, TinctureApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&TinctureApp) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit {
        harness.step();
        if done(harness.state()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!(
        "timed out waiting for {what}; error shown: {:?}",
        harness.state().error()
    );
}
