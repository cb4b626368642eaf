//! Tincture's core: everything about pixels and colour that needs no GUI, no
//! FFmpeg and no ONNX Runtime, so it builds and tests headless.
//!
//! Start reading at [`frame::Frame`] (a decoded video frame, planar Y'CbCr or
//! gray at 8 to 16 bits), then [`colorize::Colorizer`] (what every colour
//! engine implements) and [`compose::compose_frame`], which joins the source's
//! untouched luma with computed chroma. **Luma is sacred**: nothing in this
//! crate writes a luma plane except by copying the source's.

pub mod color;
pub mod colorize;
pub mod compose;
pub mod domain;
pub mod edl;
pub mod error;
pub mod flow;
pub mod frame;
pub mod guided;
pub mod look;
pub mod memory;
pub mod metrics;
pub mod motion;
pub mod project;
pub mod propagate;
pub mod shots;
pub mod solver;
pub mod stabilise;
pub mod timecode;
pub mod transfer;
pub mod video_metrics;

pub use error::{Error, Result};
