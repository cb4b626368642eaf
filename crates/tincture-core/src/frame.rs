//! Planar frame buffers: the form in which every decoded frame travels
//! through Tincture, whatever its bit depth or chroma layout.

use crate::color::{ColorRange, Matrix};

/// How the chroma planes are sampled relative to luma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Subsampling {
    /// Chroma at half width and half height.
    S420,
    /// Chroma at half width, full height.
    S422,
    /// Chroma at full resolution.
    S444,
}

impl Subsampling {
    /// Horizontal and vertical log2 subsampling factors.
    pub fn shifts(self) -> (u32, u32) {
        match self {
            Self::S420 => (1, 1),
            Self::S422 => (1, 0),
            Self::S444 => (0, 0),
        }
    }

    /// Size of a chroma plane for a luma plane of `width` x `height` (rounded up, as FFmpeg does).
    pub fn chroma_size(self, width: usize, height: usize) -> (usize, usize) {
        let (sx, sy) = self.shifts();
        (width.div_ceil(1 << sx), height.div_ceil(1 << sy))
    }

    /// Short name, as in FFmpeg pixel format names.
    pub fn name(self) -> &'static str {
        match self {
            Self::S420 => "4:2:0",
            Self::S422 => "4:2:2",
            Self::S444 => "4:4:4",
        }
    }
}

/// One plane of samples. Every bit depth from 8 to 16 is held in `u16`, so a
/// plane's values are the source's code values exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plane {
    /// Width in samples.
    pub width: usize,
    /// Height in samples.
    pub height: usize,
    /// Row-major samples, `width * height` of them, no padding.
    pub data: Vec<u16>,
}

impl Plane {
    /// A plane filled with `value`.
    pub fn filled(width: usize, height: usize, value: u16) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// One row of samples.
    pub fn row(&self, y: usize) -> &[u16] {
        &self.data[y * self.width..(y + 1) * self.width]
    }
}

/// The chroma planes of a colour frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChromaPlanes {
    /// How the planes are sampled.
    pub subsampling: Subsampling,
    /// Blue-difference plane.
    pub cb: Plane,
    /// Red-difference plane.
    pub cr: Plane,
}

/// A decoded frame: a luma plane, optional chroma planes, and what the code
/// values mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Bits per sample, 8 to 16.
    pub bit_depth: u8,
    /// Luma (Y'). For gray sources this is the only plane.
    pub y: Plane,
    /// Chroma, `None` for gray frames.
    pub chroma: Option<ChromaPlanes>,
    /// Limited ("TV") or full range code values.
    pub range: ColorRange,
    /// Y'CbCr matrix used to interpret the chroma.
    pub matrix: Matrix,
}

impl Frame {
    /// Luma width in pixels.
    pub fn width(&self) -> usize {
        self.y.width
    }

    /// Luma height in pixels.
    pub fn height(&self) -> usize {
        self.y.height
    }

    /// A neutral (gray) frame of the given layout; handy for fixtures.
    pub fn neutral(
        width: usize,
        height: usize,
        bit_depth: u8,
        subsampling: Option<Subsampling>,
        range: ColorRange,
        matrix: Matrix,
    ) -> Self {
        let mid = 1u16 << (bit_depth - 1);
        let black = range.luma_black(bit_depth);
        let chroma = subsampling.map(|s| {
            let (cw, ch) = s.chroma_size(width, height);
            ChromaPlanes {
                subsampling: s,
                cb: Plane::filled(cw, ch, mid),
                cr: Plane::filled(cw, ch, mid),
            }
        });
        Self {
            bit_depth,
            y: Plane::filled(width, height, black),
            chroma,
            range,
            matrix,
        }
    }

    /// The luma as unit-range floats (0 = black, 1 = white), the form the
    /// colour engines work on.
    pub fn luma_unit(&self) -> LumaImage {
        let (offset, scale) = self.range.luma_offset_scale(self.bit_depth);
        let data = self
            .y
            .data
            .iter()
            .map(|&v| (f32::from(v) - offset) / scale)
            .collect();
        LumaImage {
            width: self.width(),
            height: self.height(),
            data,
        }
    }
}

/// Unit-range luma (Y' in 0..1, may stray slightly outside for super-blacks
/// and super-whites of limited-range video).
#[derive(Clone, Debug, PartialEq)]
pub struct LumaImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// Full-resolution chroma computed by a colour engine: Cb and Cr in the unit
/// range -0.5..0.5, the same size as the luma it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct ChromaField {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Blue-difference values.
    pub cb: Vec<f32>,
    /// Red-difference values.
    pub cr: Vec<f32>,
}

impl ChromaField {
    /// The largest difference between the two fields' values, over both
    /// channels (fields of other sizes are compared over their common
    /// prefix; compare sizes first).
    pub fn max_abs_diff(&self, other: &Self) -> f32 {
        self.cb
            .iter()
            .zip(&other.cb)
            .chain(self.cr.iter().zip(&other.cr))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// All-neutral chroma (a faithful gray picture).
    pub fn neutral(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            cb: vec![0.0; width * height],
            cr: vec![0.0; width * height],
        }
    }
}

/// An 8-bit sRGB picture, row-major RGB triplets (a reference photograph, a preview).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}
