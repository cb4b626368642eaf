//! The Tincture desktop workstation: an [`eframe`]/egui GUI (wgpu renderer)
//! for film archivists who colorize black-and-white film.
//!
//! This first version is a viewer: open a film, scrub through it frame by
//! frame with its timecode, and see its format and whether ONNX Runtime is
//! available for colorization.
//!
//! Start reading at [`TinctureApp`] (the window, in [`app`]); decoding runs
//! on the frame worker thread in [`worker`], never on the UI thread.
//! File → Export… ([`export`]) renders a snapshot of the project in the
//! background while the window stays usable. The `tincture` binary
//! (`src/main.rs`) only parses arguments and starts eframe.

pub mod app;
pub mod colour;
pub mod compare;
pub mod document;
pub mod export;
pub mod farm;
pub mod flicker;
pub mod paint;
pub mod picker;
pub mod queue;
pub mod suggest;
pub mod timeline;
pub mod viewer;
pub mod worker;

pub use app::{AppOptions, RuntimeStatus, TinctureApp};
pub use worker::MediaSummary;

/// The window title and application name.
pub const APP_NAME: &str = "Tincture";
