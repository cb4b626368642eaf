//! The [`Colorizer`] abstraction: anything that proposes chroma for a luma
//! picture. Reference transfer, the neural model, hints and propagation all
//! implement it, so the render pipeline treats them alike.

use crate::Result;
use crate::color::Matrix;
use crate::frame::{ChromaField, LumaImage};

/// A colour engine.
///
/// Contract: `colorize` returns chroma of exactly the luma's size. It must be
/// deterministic for a given luma and frame index (so chunks of a reel
/// rendered apart on a render farm equal one whole render), and it never
/// sees or returns luma: the pipeline keeps the source's.
pub trait Colorizer: Send {
    /// Short name for logs and output metadata.
    fn name(&self) -> &str;

    /// The settings that determine the output, recorded (as a digest) in the
    /// exported file's metadata.
    fn settings(&self) -> serde_json::Value;

    /// Computes chroma (Cb, Cr in -0.5..0.5) for `luma`, which is frame
    /// `frame_index` of the reel. `matrix` is the Y'CbCr matrix the chroma
    /// will be encoded with.
    ///
    /// # Errors
    /// When the engine cannot produce colour for this frame; the caller
    /// reports it with the file and frame.
    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> Result<ChromaField>;

    /// Sets the short side of the picture the engine works at for the
    /// frames that follow (`None`: its own choice). Engines without a
    /// working size ignore it.
    fn set_render_short_side(&mut self, _short_side: Option<u32>) {}

    /// Sets the model for the frames that follow (a shot's own: `builtin`,
    /// a user model's name or a model file), `None` for the engine's own.
    /// Engines with a single model ignore it.
    fn set_model(&mut self, _model: Option<&str>) {}

    /// Gives the engine a check it asks between steps of long work inside
    /// one `colorize` (a backward pass over a long shot): when it says
    /// `true`, `colorize` ends early with [`crate::Error::Cancelled`].
    /// Engines whose frames are quick ignore it.
    fn set_stop(&mut self, _stop: Stop) {}

    /// Features that say "this is the same stuff", per cell of a coarse
    /// grid, to match frames on against a memory of coloured frames (see
    /// [`crate::memory`]); `None` when this engine has none (the default).
    ///
    /// # Errors
    /// When computing them fails.
    fn features(
        &mut self,
        _luma: &LumaImage,
        _frame_index: u64,
    ) -> Result<Option<crate::memory::CellFeatures>> {
        Ok(None)
    }
}

/// A check asked between steps of long work; `true` stops it.
pub type Stop = Box<dyn Fn() -> bool + Send>;
