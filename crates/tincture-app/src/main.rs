//! `tincture [FILE]`: the Tincture desktop workstation.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use eframe::egui;
use tincture_app::{APP_NAME, TinctureApp};

const USAGE: &str = "usage: tincture [FILE]\n\nOpens the Tincture workstation, and FILE (a film) if given.\n\
                     Logging: set RUST_LOG, e.g. RUST_LOG=tincture_app=debug.";

/// Parses `[FILE]`; `Ok(None)` from `--help`/`--version` means: exit.
fn parse_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> anyhow::Result<Option<Option<PathBuf>>> {
    let mut file = None;
    for arg in args {
        match arg.to_str() {
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Some("-V" | "--version") => {
                println!("tincture {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            Some(s) if s.starts_with('-') && s.len() > 1 => bail!("unknown option {s}\n\n{USAGE}"),
            _ if file.is_some() => bail!("only one FILE can be opened\n\n{USAGE}"),
            _ => file = Some(PathBuf::from(arg)),
        }
    }
    Ok(Some(file))
}

fn main() -> anyhow::Result<()> {
    tincture_engine::keep_heap_bounded();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wgpu=warn,naga=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(file) = parse_args(std::env::args_os().skip(1))? else {
        return Ok(());
    };
    let file = file.map(|f| std::path::absolute(&f).unwrap_or(f));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(APP_NAME)
            .with_app_id("tincture")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([640.0, 400.0]),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        APP_NAME,
        options,
        Box::new(move |cc| Ok(Box::new(TinctureApp::new(&cc.egui_ctx, file)))),
    )
    .map_err(|e| anyhow!("{e}"))
    .context(
        "could not open the Tincture window (is a display available? check DISPLAY or WAYLAND_DISPLAY, \
         and that a Vulkan or OpenGL driver is installed)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<std::ffi::OsString> {
        a.iter().map(Into::into).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(args(&[])).expect("none"), Some(None));
        assert_eq!(
            parse_args(args(&["film.mkv"])).expect("one"),
            Some(Some(PathBuf::from("film.mkv")))
        );
        assert!(parse_args(args(&["a.mkv", "b.mkv"])).is_err());
        assert!(parse_args(args(&["--frobnicate"])).is_err());
    }
}
