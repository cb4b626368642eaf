//! Tincture's engine: the render pipeline (decode → colorize → encode) and
//! its job plumbing, shared by the GUI and the CLI so both export
//! identically.
//!
//! Start at [`render::render`] and [`render::RenderRequest`]; the GUI
//! exports in the background through [`export::ExportJob`].

pub mod error;
pub mod export;
pub mod film;
pub mod live_metrics;
pub mod neural;
pub mod project;
pub mod reference;
pub mod render;

pub use error::{Error, KeptPartial, Result};

/// Tincture's version, recorded in every export.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
