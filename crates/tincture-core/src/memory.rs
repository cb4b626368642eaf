//! A memory of coloured frames, and non-local matching against it.
//!
//! Propagation along optical flow carries colour only where the flow can
//! follow. Where it cannot (fast motion, limbs crossing, something coming
//! back into the frame), a frame's pixels are better matched against frames
//! already coloured, wherever the same stuff was seen. Each frame is
//! described by *cell features*: a vector per cell of a coarse grid (the
//! colorizer's encoder activations at 1/8 of its input, for instance) that
//! says "this is the same stuff". The [`ColourMemory`] holds, for the
//! shot's keyframes (always) and a bounded set of recent confident frames,
//! every cell's features with its chroma and confidence.
//!
//! [`ColourMemory::match_cells`] matches each cell of a frame against every
//! cell in the memory by cosine similarity; the best `k` matches, weighted
//! by a softmax at temperature `T`, bring back chroma, and the match's
//! sharpness (the best cosine) and agreement (how much the `k` colours
//! agree) its confidence. Each cell holds two colours, those of its darker
//! and of its lighter pixels ([`CellColour::from_frame`]), so a cell on an
//! outline keeps both sides; [`CellColour::upsample`] brings the result to a
//! frame's full resolution, each pixel taking the side its luma lies on,
//! and the chroma solver fits it to the luma.
//!
//! The hot loop is one f32 matrix product per block of query cells
//! (`matrixmultiply`'s GEMM), then a top-k scan per row: the same shape as a
//! batched matrix product on a GPU.

use rayon::prelude::*;

use crate::frame::{ChromaField, LumaImage};
use crate::guided::bilinear_taps;
use crate::motion::Confident;
use crate::{Error, Result};

/// One block of a feature map as a network returns it: `channels` planes
/// of `width * height` values (CHW).
#[derive(Clone, Copy, Debug)]
pub struct FeatureBlock<'a> {
    /// The values, channel after channel.
    pub data: &'a [f32],
    /// Channels.
    pub channels: usize,
    /// Width of each plane.
    pub width: usize,
    /// Height of each plane.
    pub height: usize,
}

/// Per-cell features of one frame: `width * height` cells in row-major
/// order, each `channels` values of unit length (a cell with no signal at
/// all stays zero, and matches nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct CellFeatures {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<f32>,
}

impl CellFeatures {
    /// Features from cell-major values (`channels` per cell), each cell
    /// normalised to unit length.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when `data` does not hold
    /// `width * height * channels` values, or a value is not finite.
    pub fn new(width: usize, height: usize, channels: usize, mut data: Vec<f32>) -> Result<Self> {
        if data.len() != width * height * channels || channels == 0 {
            return Err(Error::SizeMismatch {
                what: format!(
                    "cell features: {} values for {width}x{height} cells of {channels} channels",
                    data.len()
                ),
            });
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::SizeMismatch {
                what: "cell features hold non-finite values".into(),
            });
        }
        data.chunks_exact_mut(channels).for_each(normalise);
        Ok(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// A hypercolumn: every block brought to `width` x `height` cells
    /// (bilinear, cell centres aligned), each block normalised per cell so
    /// that a block with many channels does not outweigh one with few, and
    /// the joined vector normalised again.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when a block's data does not match its size,
    /// or there are no channels.
    pub fn hypercolumn(blocks: &[FeatureBlock<'_>], width: usize, height: usize) -> Result<Self> {
        let channels: usize = blocks.iter().map(|b| b.channels).sum();
        let cells = width * height;
        let mut data = vec![0.0f32; cells * channels];
        let mut offset = 0;
        for b in blocks {
            if b.data.len() != b.channels * b.width * b.height || b.width == 0 || b.height == 0 {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "feature block: {} values for {} channels of {}x{}",
                        b.data.len(),
                        b.channels,
                        b.width,
                        b.height
                    ),
                });
            }
            let xs = taps(width, b.width);
            let ys = taps(height, b.height);
            for (y, &(y0, y1, ty)) in ys.iter().enumerate() {
                for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
                    let cell = &mut data[(y * width + x) * channels + offset..][..b.channels];
                    for (c, v) in cell.iter_mut().enumerate() {
                        let plane = &b.data[c * b.width * b.height..][..b.width * b.height];
                        let top =
                            plane[y0 * b.width + x0] * (1.0 - tx) + plane[y0 * b.width + x1] * tx;
                        let bot =
                            plane[y1 * b.width + x0] * (1.0 - tx) + plane[y1 * b.width + x1] * tx;
                        *v = top * (1.0 - ty) + bot * ty;
                    }
                    normalise(cell);
                }
            }
            offset += b.channels;
        }
        Self::new(width, height, channels, data)
    }

    /// Cells across.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Cells down.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Values per cell.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Cell `i`'s unit vector.
    pub fn cell(&self, i: usize) -> &[f32] {
        &self.data[i * self.channels..][..self.channels]
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-12 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v.fill(0.0);
    }
}

/// For each of `out` positions, the two source positions and the weight of
/// the second (centres aligned, clamped at the borders).
fn taps(out: usize, src: usize) -> Vec<(usize, usize, f32)> {
    (0..out)
        .map(|i| {
            let p = ((i as f32 + 0.5) * src as f32 / out as f32 - 0.5).clamp(0.0, (src - 1) as f32);
            let p0 = p.floor() as usize;
            (p0, (p0 + 1).min(src - 1), p - p0 as f32)
        })
        .collect()
}

/// Chroma and confidence per cell of a coarse grid.
#[derive(Clone, Debug, PartialEq)]
pub struct CellColour {
    /// Cells across.
    pub width: usize,
    /// Cells down.
    pub height: usize,
    /// Cb per cell, -0.5..0.5.
    pub cb: Vec<f32>,
    /// Cr per cell.
    pub cr: Vec<f32>,
    /// Confidence per cell, 0..1.
    pub confidence: Vec<f32>,
    /// Chroma (Cb, Cr) of each cell's darker pixels (at or below halfway
    /// between the mean lumas of its darker and lighter halves, found by
    /// two-means), and of its lighter ones: where a cell straddles an
    /// outline, the two sides' colours. Both equal the cell's mean where the
    /// colour was taken without its luma.
    pub dark: Vec<[f32; 2]>,
    /// See [`dark`](Self::dark).
    pub light: Vec<[f32; 2]>,
}

/// The narrowest luma spread (0..1) over which [`CellColour::upsample`]
/// moves from a cell's dark colour to its light one: 10 grey levels in 8
/// bits. A flat cell, grain aside, takes the middle of the two rather
/// than copying the grain into its chroma. Chosen on the colour ceiling
/// of c02-c04's true frames (cells of the true colour brought back to full
/// size, frame 10 of each, with a first version that split each cell once
/// at its mean): 0.04 cost at most 0.02 dB of it against no limit, 0.08 up
/// to 0.10 dB.
pub const TONE_MIN_SPREAD: f32 = 0.04;

/// Per cell of a `width` x `height` grid over `luma`: the mean luma of its
/// darker pixels and of its lighter ones (both the cell's mean where there
/// is one side only). Two rounds of two-means: split at the cell's mean,
/// then again halfway between the two sides' means, so a cell mostly on one
/// side of an outline still finds both sides.
fn luma_tones(luma: &LumaImage, width: usize, height: usize) -> Vec<[f32; 2]> {
    let (w, h) = (luma.width, luma.height);
    let cells = width * height;
    let cell_of = |x: usize, y: usize| (y * height / h) * width + x * width / w;
    let mut sum = vec![(0.0f64, 0u32); cells];
    for y in 0..h {
        for x in 0..w {
            let s = &mut sum[cell_of(x, y)];
            s.0 += f64::from(luma.data[y * w + x]);
            s.1 += 1;
        }
    }
    let mean: Vec<f32> = sum
        .iter()
        .map(|&(s, n)| (s / f64::from(n.max(1))) as f32)
        .collect();
    let mut threshold = mean.clone();
    let mut tones = vec![[0.0f32; 2]; cells];
    for _ in 0..2 {
        let mut split = vec![[(0.0f64, 0u32); 2]; cells];
        for y in 0..h {
            for x in 0..w {
                let c = cell_of(x, y);
                let v = luma.data[y * w + x];
                let s = &mut split[c][usize::from(v > threshold[c])];
                s.0 += f64::from(v);
                s.1 += 1;
            }
        }
        for c in 0..cells {
            tones[c] = split[c].map(|(v, n)| {
                if n > 0 {
                    (v / f64::from(n)) as f32
                } else {
                    mean[c]
                }
            });
            threshold[c] = 0.5 * (tones[c][0] + tones[c][1]);
        }
    }
    tones
}

impl CellColour {
    /// A frame's colour averaged over `width` x `height` cells: each cell's
    /// chroma is the confidence-weighted mean of its pixels, and its
    /// confidence their mean confidence.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the chroma and confidence sizes differ
    /// or there are fewer pixels than cells.
    pub fn from_confident(colour: &Confident, width: usize, height: usize) -> Result<Self> {
        let (w, h) = (colour.chroma.width, colour.chroma.height);
        if colour.confidence.len() != w * h
            || colour.chroma.cb.len() != w * h
            || colour.chroma.cr.len() != w * h
            || w < width
            || h < height
            || width == 0
            || height == 0
        {
            return Err(Error::SizeMismatch {
                what: format!("colour of {w}x{h} for {width}x{height} cells"),
            });
        }
        let cells = width * height;
        let (mut cb, mut cr, mut conf, mut count) = (
            vec![0.0f64; cells],
            vec![0.0f64; cells],
            vec![0.0f64; cells],
            vec![0u32; cells],
        );
        for y in 0..h {
            let cy = y * height / h;
            for x in 0..w {
                let c = cy * width + x * width / w;
                let i = y * w + x;
                let k = f64::from(colour.confidence[i].max(0.0));
                cb[c] += k * f64::from(colour.chroma.cb[i]);
                cr[c] += k * f64::from(colour.chroma.cr[i]);
                conf[c] += k;
                count[c] += 1;
            }
        }
        let mut out = Self {
            width,
            height,
            cb: vec![0.0; cells],
            cr: vec![0.0; cells],
            confidence: vec![0.0; cells],
            dark: Vec::new(),
            light: Vec::new(),
        };
        for c in 0..cells {
            if conf[c] > 0.0 {
                out.cb[c] = (cb[c] / conf[c]) as f32;
                out.cr[c] = (cr[c] / conf[c]) as f32;
            }
            out.confidence[c] = (conf[c] / f64::from(count[c].max(1))) as f32;
        }
        out.dark = out.cb.iter().zip(&out.cr).map(|(&b, &r)| [b, r]).collect();
        out.light = out.dark.clone();
        Ok(out)
    }

    /// [`from_confident`](Self::from_confident), with the colour of each
    /// cell's darker and lighter pixels kept apart ([`dark`](Self::dark),
    /// [`light`](Self::light)) by the frame's `luma`: matched colour then
    /// keeps the outlines inside a cell.
    ///
    /// # Errors
    /// As [`from_confident`](Self::from_confident), and when `luma`'s size
    /// differs from the colour's.
    pub fn from_frame(
        colour: &Confident,
        luma: &LumaImage,
        width: usize,
        height: usize,
    ) -> Result<Self> {
        let mut out = Self::from_confident(colour, width, height)?;
        let (w, h) = (colour.chroma.width, colour.chroma.height);
        if (luma.width, luma.height) != (w, h) || luma.data.len() != w * h {
            return Err(Error::SizeMismatch {
                what: format!(
                    "colour of {w}x{h} for a frame of {}x{}",
                    luma.width, luma.height
                ),
            });
        }
        let tones = luma_tones(luma, width, height);
        let cells = width * height;
        let mut acc = vec![[[0.0f64; 3]; 2]; cells];
        for y in 0..h {
            let cy = y * height / h;
            for x in 0..w {
                let c = cy * width + x * width / w;
                let i = y * w + x;
                let mid = 0.5 * (tones[c][0] + tones[c][1]);
                let side = usize::from(luma.data[i] > mid);
                let k = f64::from(colour.confidence[i].max(0.0));
                let a = &mut acc[c][side];
                a[0] += k * f64::from(colour.chroma.cb[i]);
                a[1] += k * f64::from(colour.chroma.cr[i]);
                a[2] += k;
            }
        }
        for (c, a) in acc.iter().enumerate() {
            let side =
                |s: [f64; 3]| (s[2] > 0.0).then(|| [(s[0] / s[2]) as f32, (s[1] / s[2]) as f32]);
            let mean = [out.cb[c], out.cr[c]];
            out.dark[c] = side(a[0]).unwrap_or(mean);
            out.light[c] = side(a[1]).unwrap_or(mean);
        }
        Ok(out)
    }

    /// The cells brought to `luma`'s size, bilinearly (cell centres
    /// aligned). Within each cell, a pixel takes the cell's
    /// [`dark`](Self::dark) colour, its [`light`](Self::light) colour, or a
    /// mix, by where its luma lies between the means of `luma`'s darker and
    /// lighter pixels in that cell (a ramp at least [`TONE_MIN_SPREAD`]
    /// wide). Where the two colours are the same this is plain bilinear
    /// upsampling, so the luma's texture reaches the chroma only where the
    /// matched colour itself changes from dark to light (an outline). The
    /// result is meant as a data term of the chroma solver, which fits it
    /// to the frame's luma edges.
    pub fn upsample(&self, luma: &LumaImage) -> Confident {
        let (w, h) = (luma.width, luma.height);
        let (cw, ch) = (self.width, self.height);
        let xs = bilinear_taps(w, cw);
        let ys = bilinear_taps(h, ch);
        // Cells made without tones take their mean as both colours, so the
        // loop below has one path.
        let mean: Vec<[f32; 2]>;
        let (dark, light) = if self.dark.len() == cw * ch && self.light.len() == cw * ch {
            (&self.dark, &self.light)
        } else {
            mean = self
                .cb
                .iter()
                .zip(&self.cr)
                .map(|(&b, &r)| [b, r])
                .collect();
            (&mean, &mean)
        };
        // Per cell, the middle of its ramp and the ramp's width.
        let ramps: Vec<(f32, f32)> = luma_tones(luma, cw, ch)
            .iter()
            .map(|&[lo, hi]| (0.5 * (lo + hi), (hi - lo).max(TONE_MIN_SPREAD)))
            .collect();
        let mut cb = vec![0.0f32; w * h];
        let mut cr = vec![0.0f32; w * h];
        let mut confidence = vec![0.0f32; w * h];
        cb.par_chunks_mut(w.max(1))
            .zip(cr.par_chunks_mut(w.max(1)))
            .zip(confidence.par_chunks_mut(w.max(1)))
            .zip(luma.data.par_chunks(w.max(1)))
            .zip(&ys)
            .for_each(|((((cb, cr), conf), lrow), &(j0, j1, t))| {
                for (x, &(i0, i1, u)) in xs.iter().enumerate() {
                    let taps = [
                        (j0 * cw + i0, (1.0 - u) * (1.0 - t)),
                        (j0 * cw + i1, u * (1.0 - t)),
                        (j1 * cw + i0, (1.0 - u) * t),
                        (j1 * cw + i1, u * t),
                    ];
                    let (mut b, mut r, mut k) = (0.0f32, 0.0f32, 0.0f32);
                    for (c, wt) in taps {
                        k += wt * self.confidence[c];
                        let (mid, spread) = ramps[c];
                        let s = ((lrow[x] - mid) / spread + 0.5).clamp(0.0, 1.0);
                        let ([db, dr], [lb, lr]) = (dark[c], light[c]);
                        b += wt * (db + s * (lb - db));
                        r += wt * (dr + s * (lr - dr));
                    }
                    cb[x] = b;
                    cr[x] = r;
                    conf[x] = k.clamp(0.0, 1.0);
                }
            });
        Confident {
            chroma: ChromaField {
                width: w,
                height: h,
                cb,
                cr,
            },
            confidence,
        }
    }
}

/// Settings of the memory and its matching.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryParams {
    /// Matches averaged per cell.
    pub top_k: usize,
    /// Softmax temperature over the cosines of the `top_k` matches.
    pub temperature: f32,
    /// Recent frames kept besides the keyframes; the oldest goes first.
    pub max_recent: usize,
    /// Cells less confident than this are not stored.
    pub min_confidence: f32,
    /// Best cosines at or below this give no confidence...
    pub cosine_floor: f32,
    /// ...and at or above this full confidence (linear between).
    pub cosine_full: f32,
    /// A spread (weighted standard deviation) of the matched chroma this
    /// large, in chroma units, halves the confidence.
    pub disagreement: f32,
}

impl Default for MemoryParams {
    fn default() -> Self {
        Self {
            top_k: 4,
            temperature: 0.03,
            max_recent: 4,
            min_confidence: 0.3,
            cosine_floor: 0.5,
            cosine_full: 0.9,
            disagreement: 0.03,
        }
    }
}

/// What a memory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A keyframe, reference picture or pinned frame: kept always.
    Key,
    /// A recent frame the shot's colour came through confidently: kept
    /// while it is among the `max_recent` newest.
    Recent,
}

#[derive(Clone, Debug)]
struct Entry {
    frame: u64,
    kind: EntryKind,
    /// Stored cells' unit features, cell-major.
    features: Vec<f32>,
    cb: Vec<f32>,
    cr: Vec<f32>,
    confidence: Vec<f32>,
    dark: Vec<[f32; 2]>,
    light: Vec<[f32; 2]>,
}

/// Coloured frames to match against: keyframes always, and a bounded number
/// of recent ones. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct ColourMemory {
    params: MemoryParams,
    channels: usize,
    entries: Vec<Entry>,
    /// All stored cells, entry after entry: features (cell-major), chroma
    /// and confidence, rebuilt when the entries change.
    bank: Vec<f32>,
    bank_cb: Vec<f32>,
    bank_cr: Vec<f32>,
    bank_confidence: Vec<f32>,
    bank_dark: Vec<[f32; 2]>,
    bank_light: Vec<[f32; 2]>,
}

/// Query cells per matrix product.
const BLOCK: usize = 64;

impl ColourMemory {
    /// An empty memory.
    pub fn new(params: MemoryParams) -> Self {
        Self {
            params,
            channels: 0,
            entries: Vec::new(),
            bank: Vec::new(),
            bank_cb: Vec::new(),
            bank_cr: Vec::new(),
            bank_confidence: Vec::new(),
            bank_dark: Vec::new(),
            bank_light: Vec::new(),
        }
    }

    /// The settings.
    pub fn params(&self) -> MemoryParams {
        self.params
    }

    /// Frames held, keyframes first in the order given, then recent ones.
    pub fn frames(&self) -> Vec<(u64, EntryKind)> {
        self.entries.iter().map(|e| (e.frame, e.kind)).collect()
    }

    /// Cells held, over all frames.
    pub fn cells(&self) -> usize {
        self.bank_cb.len()
    }

    /// Bytes the memory holds (its entries and the packed bank).
    pub fn bytes(&self) -> usize {
        2 * 4 * self.cells() * (self.channels + 7)
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (a new shot).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.rebuild();
    }

    /// Forgets the recent frames, keeping the keys (at a keyframe: what
    /// came before it must not reach the frames after it through the
    /// memory either, so a render entering the shot at that keyframe
    /// equals one that began earlier).
    pub fn forget_recent(&mut self) {
        self.entries.retain(|e| e.kind == EntryKind::Key);
        self.rebuild();
    }

    /// Stores `frame`'s confident cells. A frame stored before is replaced;
    /// beyond `max_recent` recent frames the oldest recent one is dropped.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the features and colour have different
    /// grids, or the features' channels differ from those stored before.
    pub fn insert(
        &mut self,
        frame: u64,
        kind: EntryKind,
        features: &CellFeatures,
        colour: &CellColour,
    ) -> Result<()> {
        if (features.width, features.height) != (colour.width, colour.height) {
            return Err(Error::SizeMismatch {
                what: format!(
                    "memory entry for frame {frame}: features of {}x{} cells, colour of {}x{}",
                    features.width, features.height, colour.width, colour.height
                ),
            });
        }
        if !self.entries.is_empty() && features.channels != self.channels {
            return Err(Error::SizeMismatch {
                what: format!(
                    "memory entry for frame {frame}: {} feature channels, the memory holds {}",
                    features.channels, self.channels
                ),
            });
        }
        self.channels = features.channels;
        self.entries.retain(|e| e.frame != frame);
        let mut entry = Entry {
            frame,
            kind,
            features: Vec::new(),
            cb: Vec::new(),
            cr: Vec::new(),
            confidence: Vec::new(),
            dark: Vec::new(),
            light: Vec::new(),
        };
        let toned = colour.dark.len() == colour.cb.len() && colour.light.len() == colour.cb.len();
        for i in 0..colour.cb.len() {
            let k = colour.confidence[i];
            let f = features.cell(i);
            if k >= self.params.min_confidence
                && k.is_finite()
                && colour.cb[i].is_finite()
                && colour.cr[i].is_finite()
                && f.iter().any(|&v| v != 0.0)
            {
                entry.features.extend_from_slice(f);
                entry.cb.push(colour.cb[i]);
                entry.cr.push(colour.cr[i]);
                entry.confidence.push(k.min(1.0));
                let mean = [colour.cb[i], colour.cr[i]];
                let (dark, light) = if toned
                    && colour.dark[i]
                        .iter()
                        .chain(&colour.light[i])
                        .all(|v| v.is_finite())
                {
                    (colour.dark[i], colour.light[i])
                } else {
                    (mean, mean)
                };
                entry.dark.push(dark);
                entry.light.push(light);
            }
        }
        self.entries.push(entry);
        // Keys first (stable), then recent frames oldest first.
        self.entries.sort_by_key(|e| e.kind == EntryKind::Recent);
        let recent = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Recent)
            .count();
        if recent > self.params.max_recent {
            let drop = recent - self.params.max_recent;
            let first = self.entries.len() - recent;
            self.entries.drain(first..first + drop);
        }
        self.rebuild();
        Ok(())
    }

    fn rebuild(&mut self) {
        self.bank.clear();
        self.bank_cb.clear();
        self.bank_cr.clear();
        self.bank_confidence.clear();
        self.bank_dark.clear();
        self.bank_light.clear();
        for e in &self.entries {
            self.bank.extend_from_slice(&e.features);
            self.bank_cb.extend_from_slice(&e.cb);
            self.bank_cr.extend_from_slice(&e.cr);
            self.bank_confidence.extend_from_slice(&e.confidence);
            self.bank_dark.extend_from_slice(&e.dark);
            self.bank_light.extend_from_slice(&e.light);
        }
    }

    /// Matches every cell of `query` against the memory: the chroma of its
    /// best `top_k` matches (softmax of cosine / T), and a confidence from
    /// the best cosine, the matches' agreement and their stored confidence.
    /// Cells get confidence 0 where the memory is empty.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the query's channels differ from the
    /// memory's.
    pub fn match_cells(&self, query: &CellFeatures) -> Result<CellColour> {
        let cells = query.width * query.height;
        let mut out = CellColour {
            width: query.width,
            height: query.height,
            cb: vec![0.0; cells],
            cr: vec![0.0; cells],
            confidence: vec![0.0; cells],
            dark: vec![[0.0; 2]; cells],
            light: vec![[0.0; 2]; cells],
        };
        let n = self.cells();
        if n == 0 {
            return Ok(out);
        }
        if query.channels != self.channels {
            return Err(Error::SizeMismatch {
                what: format!(
                    "matching {} feature channels against a memory of {}",
                    query.channels, self.channels
                ),
            });
        }
        let c = self.channels;
        let p = self.params;
        let k = p.top_k.clamp(1, n);
        let inv_t = 1.0 / p.temperature.max(1e-6);
        let span = (p.cosine_full - p.cosine_floor).max(1e-6);
        out.cb
            .par_chunks_mut(BLOCK)
            .zip(out.cr.par_chunks_mut(BLOCK))
            .zip(out.confidence.par_chunks_mut(BLOCK))
            .zip(out.dark.par_chunks_mut(BLOCK))
            .zip(out.light.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each_init(
                || (vec![0.0f32; BLOCK * n], vec![(0.0f32, 0usize); k]),
                |(sims, best), (block, ((((cb, cr), conf), dark), light))| {
                    let rows = cb.len();
                    let q = &query.data[block * BLOCK * c..][..rows * c];
                    // sims (rows x n) = q (rows x c) * bankᵀ (c x n).
                    // SAFETY: the pointers and strides describe `q`
                    // (rows x c, row-major), the bank (n x c, row-major,
                    // read as its transpose) and `sims` (rows x n,
                    // row-major), all in bounds as sized above.
                    unsafe {
                        matrixmultiply::sgemm(
                            rows,
                            c,
                            n,
                            1.0,
                            q.as_ptr(),
                            c as isize,
                            1,
                            self.bank.as_ptr(),
                            1,
                            c as isize,
                            0.0,
                            sims.as_mut_ptr(),
                            n as isize,
                            1,
                        );
                    }
                    for r in 0..rows {
                        let row = &sims[r * n..][..n];
                        top_k(row, best);
                        let s1 = best[0].0;
                        let (mut sw, mut scb, mut scr, mut sk) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                        let (mut sd, mut sl) = ([0.0f32; 2], [0.0f32; 2]);
                        for &(s, j) in best.iter() {
                            let w = ((s - s1) * inv_t).exp();
                            sw += w;
                            scb += w * self.bank_cb[j];
                            scr += w * self.bank_cr[j];
                            sk += w * self.bank_confidence[j];
                            for ch in 0..2 {
                                sd[ch] += w * self.bank_dark[j][ch];
                                sl[ch] += w * self.bank_light[j][ch];
                            }
                        }
                        dark[r] = sd.map(|v| v / sw);
                        light[r] = sl.map(|v| v / sw);
                        let (mcb, mcr) = (scb / sw, scr / sw);
                        let mut var = 0.0f32;
                        for &(s, j) in best.iter() {
                            let w = ((s - s1) * inv_t).exp();
                            var += w
                                * ((self.bank_cb[j] - mcb).powi(2)
                                    + (self.bank_cr[j] - mcr).powi(2));
                        }
                        let spread = (var / sw).sqrt();
                        let sharp = ((s1 - p.cosine_floor) / span).clamp(0.0, 1.0);
                        let agree = 1.0 / (1.0 + (spread / p.disagreement.max(1e-6)).powi(2));
                        cb[r] = mcb;
                        cr[r] = mcr;
                        conf[r] = sharp * agree * (sk / sw);
                    }
                },
            );
        Ok(out)
    }
}

/// The `best.len()` largest values of `row` with their indices, largest
/// first.
fn top_k(row: &[f32], best: &mut [(f32, usize)]) {
    let k = best.len();
    best.fill((f32::NEG_INFINITY, 0));
    for (j, &s) in row.iter().enumerate() {
        if s > best[k - 1].0 {
            let mut i = k - 1;
            while i > 0 && best[i - 1].0 < s {
                best[i] = best[i - 1];
                i -= 1;
            }
            best[i] = (s, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector along axis `i` of `c`, slightly mixed with axis 0 so
    /// features are not all orthogonal.
    fn feature(c: usize, i: usize) -> Vec<f32> {
        let mut v = vec![0.0; c];
        v[i] = 1.0;
        v[0] += 0.1;
        v
    }

    fn features(w: usize, h: usize, c: usize, kinds: &[usize]) -> CellFeatures {
        let data = kinds.iter().flat_map(|&k| feature(c, k)).collect();
        CellFeatures::new(w, h, c, data).expect("valid")
    }

    fn colour(w: usize, h: usize, cells: &[(f32, f32)], confidence: f32) -> CellColour {
        CellColour {
            width: w,
            height: h,
            cb: cells.iter().map(|c| c.0).collect(),
            cr: cells.iter().map(|c| c.1).collect(),
            confidence: vec![confidence; cells.len()],
            dark: Vec::new(),
            light: Vec::new(),
        }
    }

    #[test]
    fn each_cell_takes_the_colour_of_the_stuff_it_matches() {
        // Frame 0: a red thing (kind 1) left, a blue thing (kind 2) right.
        let mut m = ColourMemory::new(MemoryParams::default());
        m.insert(
            0,
            EntryKind::Key,
            &features(2, 1, 8, &[1, 2]),
            &colour(2, 1, &[(-0.1, 0.3), (0.3, -0.1)], 1.0),
        )
        .expect("stored");
        // Later they have swapped sides, and a new thing (kind 3) appears.
        let out = m
            .match_cells(&features(3, 1, 8, &[2, 1, 3]))
            .expect("matched");
        assert!((out.cb[0] - 0.3).abs() < 1e-3 && (out.cr[0] + 0.1).abs() < 1e-3);
        assert!((out.cb[1] + 0.1).abs() < 1e-3 && (out.cr[1] - 0.3).abs() < 1e-3);
        assert!(out.confidence[0] > 0.9 && out.confidence[1] > 0.9);
        assert!(
            out.confidence[2] < 0.1,
            "stuff never seen is not confident: {}",
            out.confidence[2]
        );
    }

    #[test]
    fn ambiguous_matches_are_not_confident() {
        // The same stuff seen in two colours.
        let mut m = ColourMemory::new(MemoryParams::default());
        m.insert(
            0,
            EntryKind::Key,
            &features(2, 1, 4, &[1, 1]),
            &colour(2, 1, &[(-0.2, 0.2), (0.2, -0.2)], 1.0),
        )
        .expect("stored");
        let out = m.match_cells(&features(1, 1, 4, &[1])).expect("matched");
        assert!(out.confidence[0] < 0.1, "{}", out.confidence[0]);
    }

    #[test]
    fn matching_equals_a_direct_computation() {
        // Pseudo-random features and colours; the GEMM path against a
        // plain loop over every pair.
        let (c, cells) = (24, 150);
        let mut s = 12345u64;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mem_f =
            CellFeatures::new(15, 10, c, (0..cells * c).map(|_| rnd()).collect()).expect("ok");
        let mem_c = CellColour {
            width: 15,
            height: 10,
            cb: (0..cells).map(|_| rnd() * 0.5).collect(),
            cr: (0..cells).map(|_| rnd() * 0.5).collect(),
            confidence: (0..cells).map(|_| 0.5 + rnd()).collect(),
            dark: Vec::new(),
            light: Vec::new(),
        };
        let q = CellFeatures::new(10, 13, c, (0..130 * c).map(|_| rnd()).collect()).expect("ok");
        let params = MemoryParams {
            min_confidence: 0.0,
            ..MemoryParams::default()
        };
        let mut m = ColourMemory::new(params);
        m.insert(7, EntryKind::Key, &mem_f, &mem_c).expect("stored");
        let out = m.match_cells(&q).expect("matched");
        for i in 0..130 {
            let mut sims: Vec<(f32, usize)> = (0..cells)
                .map(|j| {
                    let d: f32 = q
                        .cell(i)
                        .iter()
                        .zip(mem_f.cell(j))
                        .map(|(a, b)| a * b)
                        .sum();
                    (d, j)
                })
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0));
            let top = &sims[..4];
            let w: Vec<f32> = top
                .iter()
                .map(|t| ((t.0 - top[0].0) / 0.03).exp())
                .collect();
            let sw: f32 = w.iter().sum();
            let cb: f32 = top
                .iter()
                .zip(&w)
                .map(|(t, w)| w * mem_c.cb[t.1])
                .sum::<f32>()
                / sw;
            assert!(
                (out.cb[i] - cb).abs() < 1e-4,
                "cell {i}: {} vs {cb}",
                out.cb[i]
            );
        }
    }

    #[test]
    fn the_memory_keeps_keys_and_only_the_newest_recent_frames() {
        let params = MemoryParams {
            max_recent: 3,
            ..MemoryParams::default()
        };
        let mut m = ColourMemory::new(params);
        let f = features(2, 2, 4, &[1, 2, 3, 1]);
        let col = colour(2, 2, &[(0.1, 0.1); 4], 1.0);
        m.insert(0, EntryKind::Key, &f, &col).expect("stored");
        for frame in 1..50 {
            m.insert(frame, EntryKind::Recent, &f, &col)
                .expect("stored");
        }
        assert_eq!(
            m.frames(),
            vec![
                (0, EntryKind::Key),
                (47, EntryKind::Recent),
                (48, EntryKind::Recent),
                (49, EntryKind::Recent)
            ]
        );
        assert_eq!(m.cells(), 16);
        // Unconfident cells are not stored.
        m.insert(
            50,
            EntryKind::Recent,
            &f,
            &colour(2, 2, &[(0.0, 0.0); 4], 0.1),
        )
        .expect("stored");
        assert_eq!(m.cells(), 12);
        let other = CellFeatures::new(2, 2, 5, vec![1.0; 20]).expect("ok");
        assert!(m.insert(51, EntryKind::Recent, &other, &col).is_err());
    }

    #[test]
    fn hypercolumns_join_normalised_blocks() {
        // A 1-channel block at 2x2 and a 2-channel block at 1x1, joined at
        // 2x2: each part has unit length before the join.
        let a = [3.0, 0.0, 0.0, 4.0];
        let b = [2.0, 0.0];
        let f = CellFeatures::hypercolumn(
            &[
                FeatureBlock {
                    data: &a,
                    channels: 1,
                    width: 2,
                    height: 2,
                },
                FeatureBlock {
                    data: &b,
                    channels: 2,
                    width: 1,
                    height: 1,
                },
            ],
            2,
            2,
        )
        .expect("joined");
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert_eq!(f.channels(), 3);
        assert!((f.cell(0)[0] - h).abs() < 1e-6 && (f.cell(0)[1] - h).abs() < 1e-6);
        assert!(f.cell(1)[0].abs() < 1e-6 && (f.cell(1)[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn cell_colour_averages_by_confidence_and_upsamples_to_the_frame() {
        let (w, h) = (16, 8);
        let mut cb = vec![0.2f32; w * h];
        let mut conf = vec![1.0f32; w * h];
        // One unconfident pixel with a wild colour does not count.
        cb[0] = -0.5;
        conf[0] = 0.0;
        let c = Confident {
            chroma: ChromaField {
                width: w,
                height: h,
                cb,
                cr: vec![-0.1; w * h],
            },
            confidence: conf,
        };
        let cells = CellColour::from_confident(&c, 4, 2).expect("ok");
        assert!((cells.cb[0] - 0.2).abs() < 1e-6);
        assert!((cells.confidence[0] - 15.0 / 16.0).abs() < 1e-6);
        let luma = LumaImage {
            width: w,
            height: h,
            data: vec![0.5; w * h],
        };
        let up = cells.upsample(&luma);
        assert!(up.chroma.cb.iter().all(|v| (v - 0.2).abs() < 1e-3));
        assert!(up.chroma.cr.iter().all(|v| (v + 0.1).abs() < 1e-3));
    }

    /// A 32x32 frame of 4x4 cells of 8 px: a dark red disc on a light blue
    /// ground, its outline crossing cells; `grain` adds a fixed pattern of
    /// +-`grain` to the luma.
    fn disc(grain: f32) -> (LumaImage, Confident) {
        let (w, h) = (32, 32);
        let inside = |x: usize, y: usize| {
            let (dx, dy) = (x as f32 - 13.5, y as f32 - 15.5);
            dx * dx + dy * dy < 81.0
        };
        let luma = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let base = if inside(x, y) { 0.3 } else { 0.7 };
                base + if (x * 7 + y * 3) % 5 < 2 {
                    grain
                } else {
                    -grain
                }
            })
            .collect();
        let (cb, cr) = (0..w * h)
            .map(|i| {
                if inside(i % w, i / w) {
                    (-0.05, 0.2)
                } else {
                    (0.15, -0.05)
                }
            })
            .unzip();
        (
            LumaImage {
                width: w,
                height: h,
                data: luma,
            },
            Confident::uniform(
                ChromaField {
                    width: w,
                    height: h,
                    cb,
                    cr,
                },
                1.0,
            ),
        )
    }

    fn chroma_error(a: &ChromaField, b: &ChromaField) -> f32 {
        let n = a.cb.len() as f32;
        a.cb.iter()
            .zip(&a.cr)
            .zip(b.cb.iter().zip(&b.cr))
            .map(|((p, q), (r, s))| (p - r).abs() + (q - s).abs())
            .sum::<f32>()
            / n
    }

    #[test]
    fn two_toned_cells_keep_an_outline_inside_a_cell() {
        let (luma, truth) = disc(0.02);
        let plain = CellColour::from_confident(&truth, 4, 4).expect("cells");
        let toned = CellColour::from_frame(&truth, &luma, 4, 4).expect("cells");
        // A cell on the outline: dark red inside, light blue outside.
        let c = 4;
        assert!((toned.dark[c][1] - 0.2).abs() < 1e-4, "{:?}", toned.dark[c]);
        assert!(
            (toned.light[c][0] - 0.15).abs() < 1e-4,
            "{:?}",
            toned.light[c]
        );
        let e_plain = chroma_error(&plain.upsample(&luma).chroma, &truth.chroma);
        let e_toned = chroma_error(&toned.upsample(&luma).chroma, &truth.chroma);
        assert!(
            e_toned < 0.3 * e_plain,
            "two-toned {e_toned}, plain {e_plain}"
        );
        // Through the memory: the frame matched against itself keeps it.
        let feats = CellFeatures::new(
            4,
            4,
            16,
            (0..16 * 16).map(|i| f32::from(i % 16 == i / 16)).collect(),
        )
        .expect("features");
        let mut memory = ColourMemory::new(MemoryParams::default());
        memory
            .insert(0, EntryKind::Key, &feats, &toned)
            .expect("stored");
        let matched = memory.match_cells(&feats).expect("matched");
        let e_matched = chroma_error(&matched.upsample(&luma).chroma, &truth.chroma);
        assert!(
            (e_matched - e_toned).abs() < 1e-4,
            "{e_matched} vs {e_toned}"
        );
    }

    #[test]
    fn two_toned_cells_leave_an_even_colour_alone_whatever_the_grain() {
        let (luma, _) = disc(0.08);
        let even = Confident::uniform(
            ChromaField {
                width: 32,
                height: 32,
                cb: vec![0.1; 32 * 32],
                cr: vec![-0.07; 32 * 32],
            },
            1.0,
        );
        let toned = CellColour::from_frame(&even, &luma, 4, 4).expect("cells");
        let up = toned.upsample(&luma);
        assert!(up.chroma.cb.iter().all(|v| (v - 0.1).abs() < 1e-5));
        assert!(up.chroma.cr.iter().all(|v| (v + 0.07).abs() < 1e-5));
    }
}
