//! Edge-aware chroma solver: one optimisation that joins everything that
//! steers colour (the model's prior and its confidence, painted hints,
//! chroma propagated from keyframes, a reference's colours) into one chroma
//! field that follows the luma's edges.
//!
//! For each chroma channel (Cb and Cr, solved independently with the same
//! matrix) the solver minimises
//!
//! ```text
//! E(x) = Σ_i W_i (x_i − t_i)²  +  λ Σ_{i~j} a_ij (x_i − x_j)²  +  ε Σ_i x_i²
//! ```
//!
//! where the data terms ([`DataTerm`]) give per-pixel targets `t` and
//! confidences `W`, `i~j` are 4-connected neighbours, and
//! `a_ij = exp(−(Y_i − Y_j)² / 2σ²) + floor` is the luma affinity of Levin,
//! Lischinski & Weiss ("Colorization using Optimization", SIGGRAPH 2004). The
//! tiny `ε` keeps pixels that no data reaches neutral and the system positive
//! definite. With hints alone this is Levin's colorization: sparse strokes
//! fill whole regions and stop at edges.
//!
//! Start reading at [`ChromaSolver`]: it is built once per luma frame
//! (affinities and the multigrid hierarchy, which depend on the luma only)
//! and then solves any number of data-term combinations without allocating.
//! The normal equations `A x = b`, `A = diag(W + ε) + λ L(a)`, for both
//! channels at once, are solved by conjugate gradients preconditioned with
//! one multigrid W-cycle:
//!
//! - coarsening by two steps of exact elimination (Schur complement) per
//!   level, black cells then the odd-odd ones, each lumped back to a
//!   five-point stencil along real paths of the fine grid, so coarse
//!   couplings stay as weak across an edge as the fine ones and sparse hints
//!   reach a whole frame in a few cycles (see `coarsen`);
//! - interpolation exact for the eliminated cells, restriction its
//!   transpose, data weights restricted like residuals;
//! - red-black Gauss–Seidel smoothing, parallel over rows, plus exact solves
//!   along runs of cells one cell thin (dark lines on a bright ground, which
//!   no coarse grid can hold), and a dense Cholesky factorisation on the
//!   coarsest grid (at most 64 cells);
//! - deflation of "floating" regions: large regions of strongly joined
//!   pixels that the data do not reach (a window pane behind its glazing
//!   bars, with no hint in it) take their colour through faint couplings
//!   across their walls, which multigrid resolves slowly; their means are
//!   solved exactly in each iteration (see `Regions`). On the solver bench's
//!   hints-alone case this cut CG from 7 iterations to 5 and the distance
//!   to the exact answer from 3.4e-3 to 2.5e-4.
//!
//! [`solve_cg_baseline`] solves the same system with plain
//! Jacobi-preconditioned CG, as a reference, and [`measure_solution`]
//! computes residual and energy of any answer in `f64`.
//!
//! Internally each level keeps its cells in four arrays by the parity of
//! their coordinates (see `Quad`): every neighbour of a cell lies in another
//! array, so half-sweeps write some arrays while reading the others
//! (contiguous, vectorisable, safely parallel), and the cells with even `x`
//! and `y` are the next coarser grid.

use rayon::prelude::*;

use crate::frame::{ChromaField, LumaImage};
use crate::{Error, Result};

/// Tuning of the chroma solve. The defaults suit unit-range luma and data
/// weights between about 0.01 (a weak prior) and 1 (a painted hint).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverParams {
    /// λ, the weight of the smoothness term against the data terms. With a
    /// data weight `w`, a lone target spreads over about `sqrt(λ / w)` pixels
    /// of even luma. Negative values are treated as 0.
    pub smoothness: f32,
    /// σ of the luma affinity, in unit luma: luma steps much larger than σ
    /// stop colour. Clamped to at least 1e-4.
    pub sigma: f32,
    /// Added to every affinity so that no pixel is ever fully cut off: a
    /// region without data behind a strong edge takes a faint mix of its
    /// neighbours' colour instead of an arbitrary one. Negative values are
    /// treated as 0.
    pub affinity_floor: f32,
    /// ε, the pull towards neutral chroma at every pixel. Keep it tiny (its
    /// effect over a whole frame is about `ε · pixels / λ`). Clamped to at
    /// least 1e-12.
    pub neutral_weight: f32,
    /// Stop when `‖b − A x‖ ≤ tolerance · ‖b‖` for both channels.
    pub tolerance: f32,
    /// Upper bound on conjugate-gradient iterations (each one multigrid cycle).
    pub max_iterations: usize,
}

impl Default for SolverParams {
    fn default() -> Self {
        Self {
            smoothness: 1.0,
            sigma: 0.04,
            affinity_floor: 1e-4,
            neutral_weight: 1e-8,
            tolerance: 1e-4,
            max_iterations: 50,
        }
    }
}

impl SolverParams {
    /// The parameters with out-of-range values brought into range, as
    /// documented on each field.
    fn sanitized(self) -> Self {
        let finite_or = |v: f32, d: f32| if v.is_finite() { v } else { d };
        let d = Self::default();
        Self {
            smoothness: finite_or(self.smoothness, d.smoothness).max(0.0),
            sigma: finite_or(self.sigma, d.sigma).max(1e-4),
            affinity_floor: finite_or(self.affinity_floor, d.affinity_floor).max(0.0),
            neutral_weight: finite_or(self.neutral_weight, d.neutral_weight).max(1e-12),
            tolerance: finite_or(self.tolerance, d.tolerance).max(0.0),
            max_iterations: self.max_iterations,
        }
    }
}

/// One source of colour: a target chroma and a per-pixel confidence, each a
/// row-major slice of `width * height` values (the luma's size).
///
/// A weight of 0 means "no opinion" at that pixel; weights are summed over
/// terms, and the targets averaged by weight. Negative and non-finite weights
/// count as 0, as do pixels whose target is not finite.
#[derive(Clone, Copy, Debug)]
pub struct DataTerm<'a> {
    /// Target Cb, -0.5..0.5.
    pub cb: &'a [f32],
    /// Target Cr, -0.5..0.5.
    pub cr: &'a [f32],
    /// Confidence, ≥ 0.
    pub weight: &'a [f32],
}

/// How a solve went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SolveStats {
    /// Iterations done: multigrid-preconditioned CG steps for
    /// [`ChromaSolver`], plain CG steps for [`solve_cg_baseline`].
    pub iterations: usize,
    /// Final `‖b − A x‖ / ‖b‖` for Cb and Cr as tracked by the iteration (0
    /// for a channel whose `b` is 0, whose solution is exactly neutral).
    pub relative_residual: [f32; 2],
    /// Whether both channels reached the tolerance.
    pub converged: bool,
}

/// Quality of a chroma field as a solution of the system, computed in `f64`
/// from scratch (see [`measure_solution`]), to compare solvers fairly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolutionQuality {
    /// `‖b − A x‖ / ‖b‖` for Cb and Cr (0 where `b` is 0 and `x` is too).
    pub relative_residual: [f64; 2],
    /// The energy `E(x)` summed over both channels, up to a constant (the
    /// same for every candidate: only differences mean anything).
    pub energy: f64,
}

/// Cells on the coarsest grid, solved directly.
const COARSEST_CELLS: usize = 64;
/// How much more than their series conductance two-step paths may take when
/// a coupling is lumped onto them before the coupling counts as running along
/// a thin structure (see [`lump`]).
const LUMP_CAPACITY: f32 = 4.0;
/// A level where the data make at least this share of every cell's diagonal
/// gets one coarse correction per cycle, not two (see `Level::cycle`).
const DATA_DOMINATED: f32 = 0.1;
/// Levels smaller than this many cells run on one thread.
const PARALLEL_MIN_CELLS: usize = 16_384;
/// Cells per parallel task, roughly.
const CELLS_PER_TASK: usize = 8_192;

/// Solves for the chroma field once; see [`ChromaSolver`] to solve several
/// times for the same luma.
///
/// # Errors
/// [`Error::SizeMismatch`] when a data term's slices do not hold one value
/// per luma pixel or `luma.data` does not hold `width * height` values.
pub fn solve_chroma(
    luma: &LumaImage,
    terms: &[DataTerm<'_>],
    params: SolverParams,
) -> Result<ChromaField> {
    ChromaSolver::new(luma, params)?.solve(terms, None)
}

/// Geometry of one level in the polyphase layout: the cells are split by the
/// parity of their coordinates into four arrays, parity `p = 2 (y mod 2) +
/// (x mod 2)`, each holding cell `(y, x)` at row `y / 2`, column `x / 2`,
/// row-major with a zero border one cell wide. Every neighbour of a cell lies
/// in another array, so red-black and zebra-line sweeps write some arrays
/// while reading the others, and the cells with even `x` and `y` (parity 0)
/// are the next coarser grid.
///
/// The four arrays have the same shape; where the image has an odd size the
/// last row or column of some of them holds no cell, and stays 0 (zero
/// couplings, zero data, zero inverse diagonal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Quad {
    width: usize,
    height: usize,
    /// Columns and rows of each parity array.
    w2: usize,
    h2: usize,
    stride: usize,
}

impl Quad {
    fn new(width: usize, height: usize) -> Self {
        let (w2, h2) = (width.div_ceil(2), height.div_ceil(2));
        Self {
            width,
            height,
            w2,
            h2,
            stride: w2 + 2,
        }
    }

    fn cells(&self) -> usize {
        self.width * self.height
    }

    /// Length of each parity array.
    fn len(&self) -> usize {
        (self.h2 + 2) * self.stride
    }

    /// Index of row `yy`, column `xx` of a parity array.
    fn at(&self, yy: usize, xx: usize) -> usize {
        (yy + 1) * self.stride + xx + 1
    }

    /// Parity array and index of image cell `(y, x)`.
    fn locate(&self, y: usize, x: usize) -> (usize, usize) {
        (2 * (y & 1) + (x & 1), self.at(y >> 1, x >> 1))
    }

    fn parallel(&self) -> bool {
        self.cells() >= PARALLEL_MIN_CELLS
    }
}

/// One array of the solver: `len` values that start some cache lines into
/// their allocation, a different number for each array.
///
/// The solver's passes stream up to a dozen arrays in step. Large
/// allocations come straight from the system, page-aligned, so without the
/// offset the same element of every array falls in the same set of the
/// first-level cache and they evict one another: with every array so
/// aligned the bench's hints-alone solve took 82-88 ms instead of 73-76 ms.
#[derive(Clone, Debug, Default, PartialEq)]
struct Arr {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl std::ops::Deref for Arr {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl std::ops::DerefMut for Arr {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

impl<'a> IntoIterator for &'a Arr {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Arr {
    type Item = &'a mut f32;
    type IntoIter = std::slice::IterMut<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Cache lines (of 16 values) over which the arrays' starts are spread.
const STAGGER_LINES: usize = 64;

/// Bytes of arrays kept for later solvers (see [`zeroed`]).
const SPARE_BYTES: usize = 512 << 20;
/// Arrays shorter than this are not kept.
const SPARE_MIN_LEN: usize = 4096;
/// A kept array that this many later arrays were asked for without taking
/// it is let go: its size is no longer in use (see [`recycle`]).
const SPARE_MAX_AGE: u64 = 1024;

/// Arrays of dropped solvers and of finished constructions, for the next,
/// oldest first, each with the [`ASKED`] count when it was kept.
static SPARE: std::sync::Mutex<Vec<(u64, Arr)>> = std::sync::Mutex::new(Vec::new());
/// Arrays of at least [`SPARE_MIN_LEN`] asked for so far.
static ASKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `len` zeros: an array that a dropped solver handed back where one fits,
/// or a new one with the next start offset (see [`Arr`]).
///
/// A solver holds about 80 arrays of a megabyte at 1280x720, and one is
/// built for every frame a film renders. Freed to the allocator, that
/// memory may go back to the system at once (when it lies at the top of
/// the heap), and the next solver then pays a page fault for every 4 KiB
/// it touches. Handing the arrays from one solver to the next keeps them
/// in the process. At most [`SPARE_BYTES`] are kept.
fn zeroed(len: usize) -> Arr {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if len >= SPARE_MIN_LEN {
        ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kept = SPARE.lock().ok().and_then(|mut spare| {
            // The smallest array that holds `len` without wasting half.
            let k = spare
                .iter()
                .enumerate()
                .filter(|(_, (_, a))| a.buf.len() - a.off >= len && a.buf.len() / 2 <= len)
                .min_by_key(|(_, (_, a))| a.buf.len())?
                .0;
            Some(spare.remove(k).1)
        });
        if let Some(mut a) = kept {
            a.len = len;
            a.fill(0.0);
            return a;
        }
    }
    let line = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STAGGER_LINES;
    let off = if len >= SPARE_MIN_LEN { 16 * line } else { 0 };
    Arr {
        buf: vec![0.0; off + len],
        off,
        len,
    }
}

/// Keeps `arrays` for later [`zeroed`] calls. Arrays that sat unused
/// while [`SPARE_MAX_AGE`] others were asked for are let go first, then
/// the oldest, until at most [`SPARE_BYTES`] are kept: a long render asks
/// for arrays of many sizes in turn (the backward pass, the preview's
/// scale, the keyframes), and kept arrays of a size no longer asked for
/// would otherwise fill the pool for good.
fn recycle(arrays: impl IntoIterator<Item = Arr>) {
    let asked = ASKED.load(std::sync::atomic::Ordering::Relaxed);
    let let_go: Vec<(u64, Arr)> = {
        let Ok(mut spare) = SPARE.lock() else {
            return;
        };
        spare.extend(
            arrays
                .into_iter()
                .filter(|a| a.len >= SPARE_MIN_LEN)
                .map(|a| (asked, a)),
        );
        let mut bytes: usize = spare.iter().map(|(_, a)| a.buf.len() * 4).sum();
        let mut stale = 0;
        for (at, a) in spare.iter() {
            if asked.saturating_sub(*at) <= SPARE_MAX_AGE && bytes <= SPARE_BYTES {
                break;
            }
            bytes -= a.buf.len() * 4;
            stale += 1;
        }
        spare.drain(..stale).collect()
    };
    // Freed outside the lock.
    drop(let_go);
}

/// Bytes the solvers' pool of spare arrays holds now.
pub fn spare_bytes() -> usize {
    SPARE
        .lock()
        .map(|s| s.iter().map(|(_, a)| a.buf.len() * 4).sum())
        .unwrap_or(0)
}

/// One array per parity.
type Phases = [Arr; 4];
/// A two-channel field (Cb, Cr), `[channel][parity]`.
type Field = [Phases; 2];

fn phases(quad: Quad) -> Phases {
    [0; 4].map(|_| zeroed(quad.len()))
}

fn field(quad: Quad) -> Field {
    [phases(quad), phases(quad)]
}

/// Calls `f(yy, rows)` for every row `yy` of the parity arrays `arrays`,
/// `rows` holding that row of each (cell `xx` at `rows[k][1 + xx]`), in
/// parallel on large levels. Returns the per-channel sums of what `f`
/// returns.
fn rows<const N: usize>(
    quad: Quad,
    arrays: [&mut [f32]; N],
    f: impl Fn(usize, [&mut [f32]; N]) -> [f64; 2] + Sync,
) -> [f64; 2] {
    let s = quad.stride;
    let data = arrays.map(|a| &mut a[s..(quad.h2 + 1) * s]);
    let min_rows = if quad.parallel() {
        (CELLS_PER_TASK / s).max(1)
    } else {
        usize::MAX
    };
    rows_from(s, 0, quad.h2, data, &f, min_rows)
}

fn rows_from<const N: usize>(
    stride: usize,
    first: usize,
    count: usize,
    mut arrays: [&mut [f32]; N],
    f: &(impl Fn(usize, [&mut [f32]; N]) -> [f64; 2] + Sync),
    min_rows: usize,
) -> [f64; 2] {
    if count > min_rows {
        let half = count / 2;
        let mut left: [&mut [f32]; N] = std::array::from_fn(|_| <&mut [f32]>::default());
        let mut right: [&mut [f32]; N] = std::array::from_fn(|_| <&mut [f32]>::default());
        for (k, a) in arrays.into_iter().enumerate() {
            (left[k], right[k]) = a.split_at_mut(half * stride);
        }
        let (a, b) = rayon::join(
            || rows_from(stride, first, half, left, f, min_rows),
            || rows_from(stride, first + half, count - half, right, f, min_rows),
        );
        return [a[0] + b[0], a[1] + b[1]];
    }
    let mut sum = [0.0; 2];
    for r in 0..count {
        let row = arrays
            .each_mut()
            .map(|a| &mut a[r * stride..(r + 1) * stride]);
        let s = f(first + r, row);
        sum = [sum[0] + s[0], sum[1] + s[1]];
    }
    sum
}

/// The five-point stencil of one row of one parity array: its couplings and
/// where its neighbours lie in the two partner arrays (`p ^ 1` holds the
/// left and right neighbours, `p ^ 2` the upper and lower ones).
struct Stencil<'a> {
    n: usize,
    base: usize,
    /// Start of the left neighbours in the horizontal partner array.
    hb: usize,
    /// Start of the upper neighbours in the vertical partner array.
    vb: usize,
    stride: usize,
    wl: &'a [f32],
    wr: &'a [f32],
    wu: &'a [f32],
    wd: &'a [f32],
}

impl<'a> Stencil<'a> {
    fn new(quad: Quad, right: &'a Phases, down: &'a Phases, p: usize, yy: usize) -> Self {
        let (py, px) = (p >> 1, p & 1);
        let (n, s) = (quad.w2, quad.stride);
        let base = quad.at(yy, 0);
        let hb = base + px - 1;
        let vb = base + py * s - s;
        Self {
            n,
            base,
            hb,
            vb,
            stride: s,
            wl: &right[p ^ 1][hb..hb + n],
            wr: &right[p][base..base + n],
            wu: &down[p ^ 2][vb..vb + n],
            wd: &down[p][base..base + n],
        }
    }

    /// This row of an array of the same parity.
    fn own<'b>(&self, a: &'b [f32]) -> &'b [f32] {
        &a[self.base..self.base + self.n]
    }

    /// Left, right, upper and lower neighbours in the partner arrays `h` (`p ^ 1`) and `v` (`p ^ 2`).
    fn around<'b>(&self, h: &'b [f32], v: &'b [f32]) -> [&'b [f32]; 4] {
        let n = self.n;
        [
            &h[self.hb..][..n],
            &h[self.hb + 1..][..n],
            &v[self.vb..][..n],
            &v[self.vb + self.stride..][..n],
        ]
    }

    /// `out = rhs + Σ w x_nb`, then times `scale` if given.
    fn gather(&self, out: &mut [f32], rhs: &[f32], scale: Option<&[f32]>, h: &[f32], v: &[f32]) {
        let n = self.n;
        let [l, r, u, d] = self.around(h, v);
        let (out, rhs) = (&mut out[1..1 + n], self.own(rhs));
        let (wl, wr, wu, wd) = (&self.wl[..n], &self.wr[..n], &self.wu[..n], &self.wd[..n]);
        match scale {
            Some(scale) => {
                let scale = self.own(scale);
                for k in 0..n {
                    out[k] = (rhs[k] + wl[k] * l[k] + wr[k] * r[k] + wu[k] * u[k] + wd[k] * d[k])
                        * scale[k];
                }
            }
            None => {
                for k in 0..n {
                    out[k] = rhs[k] + wl[k] * l[k] + wr[k] * r[k] + wu[k] * u[k] + wd[k] * d[k];
                }
            }
        }
    }

    /// Both channels at once: `out = (rhs + Σ w x_nb) · scale`, the last
    /// argument holding per channel its partner arrays `p ^ 1` and `p ^ 2`
    /// (each weight read once for both).
    fn gather_both(
        &self,
        [o0, o1]: [&mut [f32]; 2],
        [rhs0, rhs1]: [&[f32]; 2],
        scale: &[f32],
        [[h0, v0], [h1, v1]]: [[&[f32]; 2]; 2],
    ) {
        let n = self.n;
        let [l0, r0, u0, d0] = self.around(h0, v0);
        let [l1, r1, u1, d1] = self.around(h1, v1);
        let (o0, o1) = (&mut o0[1..1 + n], &mut o1[1..1 + n]);
        let (rhs0, rhs1, scale) = (self.own(rhs0), self.own(rhs1), self.own(scale));
        let (wl, wr, wu, wd) = (&self.wl[..n], &self.wr[..n], &self.wu[..n], &self.wd[..n]);
        for k in 0..n {
            let (a, b, c, d, sc) = (wl[k], wr[k], wu[k], wd[k], scale[k]);
            o0[k] = (rhs0[k] + a * l0[k] + b * r0[k] + c * u0[k] + d * d0[k]) * sc;
            o1[k] = (rhs1[k] + a * l1[k] + b * r1[k] + c * u1[k] + d * d1[k]) * sc;
        }
    }

    /// Both channels at once, `x[ch]` holding channel `ch`'s arrays of
    /// parity `p`, `p ^ 1` and `p ^ 2` (each weight read once for both):
    /// with `MODE` [`RESIDUAL`], `out = rhs − diag x + Σ w x_nb`; with
    /// [`PRODUCT`], `out = diag x − Σ w x_nb` (the matrix times `x`), and
    /// then it returns `Σ out · x` per channel (otherwise 0).
    fn apply_both<const MODE: u8>(
        &self,
        [o0, o1]: [&mut [f32]; 2],
        [rhs0, rhs1]: [&[f32]; 2],
        diag: &[f32],
        [[x0, h0, v0], [x1, h1, v1]]: [[&[f32]; 3]; 2],
    ) -> [f64; 2] {
        let n = self.n;
        let [l0, r0, u0, d0] = self.around(h0, v0);
        let [l1, r1, u1, d1] = self.around(h1, v1);
        let (o0, o1) = (&mut o0[1..1 + n], &mut o1[1..1 + n]);
        let (x0, x1, diag) = (self.own(x0), self.own(x1), self.own(diag));
        let (wl, wr, wu, wd) = (&self.wl[..n], &self.wr[..n], &self.wu[..n], &self.wd[..n]);
        match MODE {
            RESIDUAL => {
                let (rhs0, rhs1) = (self.own(rhs0), self.own(rhs1));
                for k in 0..n {
                    let (a, b, c, d, dg) = (wl[k], wr[k], wu[k], wd[k], diag[k]);
                    o0[k] = rhs0[k] - dg * x0[k] + (a * l0[k] + b * r0[k] + c * u0[k] + d * d0[k]);
                    o1[k] = rhs1[k] - dg * x1[k] + (a * l1[k] + b * r1[k] + c * u1[k] + d * d1[k]);
                }
                [0.0; 2]
            }
            _ => {
                for k in 0..n {
                    let (a, b, c, d, dg) = (wl[k], wr[k], wu[k], wd[k], diag[k]);
                    o0[k] = dg * x0[k] - (a * l0[k] + b * r0[k] + c * u0[k] + d * d0[k]);
                    o1[k] = dg * x1[k] - (a * l1[k] + b * r1[k] + c * u1[k] + d * d1[k]);
                }
                [dot(o0, x0), dot(o1, x1)]
            }
        }
    }
}

/// Modes of [`Stencil::apply_both`].
const RESIDUAL: u8 = 0;
const PRODUCT: u8 = 1;

/// The arrays of parity `p`, `p ^ 1` and `p ^ 2` of both channels of `x`.
fn around_both(x: &Field, p: usize) -> [[&[f32]; 3]; 2] {
    x.each_ref()
        .map(|x| [&x[p][..], &x[p ^ 1][..], &x[p ^ 2][..]])
}

/// The red arrays (parities 0 and 3) or the black ones (1 and 2), mutably,
/// and all four for reading, the mutable two left empty.
fn split_colour(a: &mut Phases, colour: usize) -> ([&mut [f32]; 2], [&[f32]; 4]) {
    let [p0, p1, p2, p3] = a;
    if colour == 0 {
        ([p0, p3], [&[], p1, p2, &[]])
    } else {
        ([p1, p2], [p0, &[], &[], p3])
    }
}

/// The two parities of a colour.
fn colour_phases(colour: usize) -> [usize; 2] {
    if colour == 0 { [0, 3] } else { [1, 2] }
}

/// Row-major `src` (`quad.width × quad.height`) into the parity arrays `dst`.
fn to_quad(quad: Quad, src: &[f32], dst: &mut Phases) {
    let w = quad.width;
    for (p, d) in dst.iter_mut().enumerate() {
        let (py, px) = (p >> 1, p & 1);
        rows(quad, [d], |yy, [row]| {
            let y = 2 * yy + py;
            for xx in 0..quad.w2 {
                let x = 2 * xx + px;
                row[1 + xx] = if y < quad.height && x < w {
                    src[y * w + x]
                } else {
                    0.0
                };
            }
            [0.0; 2]
        });
    }
}

/// Parity arrays back to row-major.
fn from_quad(quad: Quad, src: &Phases, dst: &mut [f32]) {
    let w = quad.width;
    if w == 0 {
        return;
    }
    dst.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        for (x, o) in out.iter_mut().enumerate() {
            let (p, i) = quad.locate(y, x);
            *o = src[p][i];
        }
    });
}

/// A run of cells along a row (or a column) that is one cell thin: coupled
/// strongly along the run and weakly across it, such as a dark line on a
/// bright ground. Point smoothing converges slowly along such runs and the
/// coarse grids cannot hold them exactly, so the smoother solves each run
/// exactly (a tridiagonal solve) given its neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    /// The row (or column).
    line: u32,
    /// First cell and one past the last along the line.
    start: u32,
    end: u32,
}

/// Cells coupled at most this much across a line, relative to the stronger
/// coupling along it, count as thin.
const THIN: f32 = 0.1;

/// The thin runs of a level, `[along rows, along columns]`: runs of at least
/// two cells coupled across the run less than `THIN` times along it.
fn thin_segments(quad: Quad, right: &Phases, down: &Phases) -> [Vec<Segment>; 2] {
    const ALONG_ROW: u8 = 1;
    const ALONG_COLUMN: u8 = 2;
    const NONE: u32 = u32::MAX;
    let (w, h) = (quad.width, quad.height);
    if w == 0 || h == 0 {
        return Default::default();
    }
    let min_rows = (CELLS_PER_TASK / w).max(1);
    // Per pixel, whether it is thin along its row and along its column.
    let mut flags = vec![0u8; w * h];
    flags
        .par_chunks_mut(w)
        .with_min_len(min_rows)
        .enumerate()
        .for_each(|(y, row)| {
            let (py, yy) = (y & 1, y >> 1);
            for px in 0..2 {
                let st = Stencil::new(quad, right, down, 2 * py + px, yy);
                for k in 0..st.n {
                    let x = 2 * k + px;
                    if x < w {
                        let (horizontal, vertical) =
                            (st.wl[k].max(st.wr[k]), st.wu[k].max(st.wd[k]));
                        let along_row = if vertical < THIN * horizontal {
                            ALONG_ROW
                        } else {
                            0
                        };
                        let along_column = if horizontal < THIN * vertical {
                            ALONG_COLUMN
                        } else {
                            0
                        };
                        row[x] = along_row | along_column;
                    }
                }
            }
        });
    let close = |out: &mut Vec<Segment>, line: usize, start: u32, end: usize| {
        if end - start as usize >= 2 {
            out.push(Segment {
                line: line as u32,
                start,
                end: end as u32,
            });
        }
    };
    let along_rows: Vec<Segment> = flags
        .par_chunks(w)
        .with_min_len(min_rows)
        .enumerate()
        .flat_map_iter(|(y, row)| {
            let mut out = Vec::new();
            let mut start = NONE;
            for (x, &f) in row.iter().chain([&0]).enumerate() {
                match (f & ALONG_ROW != 0, start) {
                    (true, NONE) => start = x as u32,
                    (false, a) if a != NONE => {
                        close(&mut out, y, a, x);
                        start = NONE;
                    }
                    _ => {}
                }
            }
            out
        })
        .collect();
    // Columns in blocks, each scanned row by row.
    const BLOCK: usize = 64;
    let along_columns: Vec<Segment> = (0..w.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|b| {
            let x0 = b * BLOCK;
            let x1 = (x0 + BLOCK).min(w);
            let mut out = Vec::new();
            let mut column_start = [NONE; BLOCK];
            for y in 0..=h {
                for (j, start) in column_start[..x1 - x0].iter_mut().enumerate() {
                    let thin = y < h && flags[y * w + x0 + j] & ALONG_COLUMN != 0;
                    match (thin, *start) {
                        (true, NONE) => *start = y as u32,
                        (false, a) if a != NONE => {
                            close(&mut out, x0 + j, a, y);
                            *start = NONE;
                        }
                        _ => {}
                    }
                }
            }
            out.sort_unstable_by_key(|s| (s.line, s.start));
            out
        })
        .collect();
    [along_rows, along_columns]
}

/// One level of the multigrid hierarchy: the operator, the interpolation
/// from the next coarser level, and scratch.
#[derive(Clone, Debug)]
struct Level {
    quad: Quad,
    /// Coupling of each cell with its right and its lower neighbour.
    right: Phases,
    down: Phases,
    /// The diagonal without the data: sum of the couplings plus what
    /// coarsening turned into diagonal.
    fixed_diag: Phases,
    /// `1 / (fixed_diag + nominal data)` of the black cells (parities 1 and
    /// 2; the others are empty): eliminated cells hand their data to their
    /// neighbours with weights `coupling × inv_nominal`.
    inv_nominal: Phases,
    /// Interpolation of the cells with odd `x` and `y` from their NW, NE, SW
    /// and SE neighbours on the coarse grid, in the layout of parity 3
    /// (empty on the coarsest level).
    interp: [Arr; 4],
    /// The diagonal, `W + ε + fixed_diag` (while a solve is prepared, first
    /// the data weight `W + ε` alone), and its inverse (0 where there is no
    /// cell).
    diag: Phases,
    inv_diag: Phases,
    /// Whether the data make at least `DATA_DOMINATED` of every cell's
    /// diagonal in the current solve: the problem is then local at this
    /// scale, and one coarse correction is enough.
    data_dominated: bool,
    /// Thin runs along rows and along columns, solved exactly by the smoother.
    segments: [Vec<Segment>; 2],
    /// Scratch for the segment solves.
    segment_scratch: Vec<[f32; 4]>,
    b: Field,
    x: Field,
    /// Red residuals (parities 0 and 3), `[channel][0 or 1]`; also scratch.
    r_red: [[Arr; 2]; 2],
    /// Per channel, values on the next coarser grid in this level's array
    /// shape (the coarse grid is this level's parity-0 array).
    scratch: [Arr; 2],
}

impl Level {
    /// A level with couplings `right` and `down` and the fixed diagonal
    /// `extra` beyond them, interpolating from the next coarser level with
    /// `interp` (parity-3 layout); `epsilon` is the nominal data per cell.
    fn new(
        quad: Quad,
        right: Phases,
        down: Phases,
        extra: &Phases,
        interp: Option<[Arr; 4]>,
        epsilon: f32,
    ) -> Self {
        let mut fixed_diag = phases(quad);
        for (p, fd) in fixed_diag.iter_mut().enumerate() {
            rows(quad, [&mut fd[..]], |yy, [row]| {
                let st = Stencil::new(quad, &right, &down, p, yy);
                let x = st.own(&extra[p]);
                for k in 0..st.n {
                    row[1 + k] = x[k] + st.wl[k] + st.wr[k] + st.wu[k] + st.wd[k];
                }
                [0.0; 2]
            });
        }
        let inv_nominal = [0, 1, 2, 3].map(|p| {
            if p == 1 || p == 2 {
                let mut inv = zeroed(quad.len());
                inv.par_iter_mut()
                    .zip(fixed_diag[p].par_iter())
                    .for_each(|(v, &d)| *v = 1.0 / (d + epsilon));
                inv
            } else {
                Arr::default()
            }
        });
        let z = || zeroed(quad.len());
        let segments = thin_segments(quad, &right, &down);
        Self {
            quad,
            right,
            down,
            fixed_diag,
            inv_nominal,
            interp: interp.unwrap_or_default(),
            diag: phases(quad),
            inv_diag: phases(quad),
            data_dominated: false,
            segments,
            segment_scratch: vec![[0.0; 4]; quad.width.max(quad.height)],
            b: field(quad),
            x: field(quad),
            r_red: [[z(), z()], [z(), z()]],
            scratch: [z(), z()],
        }
    }

    /// Every `f32` array of the level.
    fn into_arrays(self) -> impl Iterator<Item = Arr> {
        let [b, x] = [self.b, self.x].map(|f| f.into_iter().flatten());
        [
            self.right,
            self.down,
            self.fixed_diag,
            self.inv_nominal,
            self.interp,
            self.diag,
            self.inv_diag,
        ]
        .into_iter()
        .flatten()
        .chain(b)
        .chain(x)
        .chain(self.r_red.into_iter().flatten())
        .chain(self.scratch)
    }

    /// Adds the fixed diagonal to the data weights held in `diag`, and inverts.
    fn set_diagonal(&mut self) {
        let mut least_share = f32::INFINITY;
        for p in 0..4 {
            let (d, inv, fixed) = (
                &mut self.diag[p],
                &mut self.inv_diag[p],
                &self.fixed_diag[p],
            );
            let share = d
                .par_chunks_mut(CELLS_PER_TASK)
                .zip(inv.par_chunks_mut(CELLS_PER_TASK))
                .zip(fixed.par_chunks(CELLS_PER_TASK))
                .map(|((d, inv), fixed)| {
                    let mut least = f32::INFINITY;
                    for ((d, inv), &f) in d.iter_mut().zip(inv.iter_mut()).zip(fixed) {
                        let data = *d;
                        *d += f;
                        *inv = if *d > 0.0 { 1.0 / *d } else { 0.0 };
                        if *d > 0.0 {
                            least = least.min(data * *inv);
                        }
                    }
                    least
                })
                .reduce(|| f32::INFINITY, f32::min);
            least_share = least_share.min(share);
        }
        self.data_dominated = least_share >= DATA_DOMINATED;
    }

    /// The coarse level's data weights from this level's (both held in
    /// `diag`): the black cells' data handed to the red ones, then
    /// restricted like a residual.
    fn restrict_data(&mut self, coarse: &mut Level) {
        let quad = self.quad;
        let [[t1, t2], [s0, s3]] = &mut self.r_red;
        for (t, p) in [(&mut *t1, 1), (&mut *t2, 2)] {
            for ((t, &d), &inv) in t.iter_mut().zip(&self.diag[p]).zip(&self.inv_nominal[p]) {
                *t = d * inv;
            }
        }
        let (t1, t2) = (&*t1, &*t2);
        let (right, down, data) = (&self.right, &self.down, &self.diag);
        rows(quad, [s0, s3], |yy, [o0, o3]| {
            Stencil::new(quad, right, down, 0, yy).gather(o0, &data[0], None, t1, t2);
            Stencil::new(quad, right, down, 3, yy).gather(o3, &data[3], None, t2, t1);
            [0.0; 2]
        });
        let [scratch, _] = &mut self.scratch;
        restrict(quad, &self.interp, [&*s0, &*s3], scratch);
        split_coarse(quad, scratch, coarse.quad, &mut coarse.diag);
    }

    /// Gauss–Seidel half-sweep over the red (`colour` 0) or black cells,
    /// both channels.
    fn relax(&mut self, colour: usize) {
        let quad = self.quad;
        let [x0, x1] = &mut self.x;
        let ([a0, b0], r0) = split_colour(x0, colour);
        let ([a1, b1], r1) = split_colour(x1, colour);
        let [pa, pb] = colour_phases(colour);
        let (right, down, inv, b) = (&self.right, &self.down, &self.inv_diag, &self.b);
        rows(quad, [a0, b0, a1, b1], |yy, [oa0, ob0, oa1, ob1]| {
            for (p, [o0, o1]) in [(pa, [oa0, oa1]), (pb, [ob0, ob1])] {
                let st = Stencil::new(quad, right, down, p, yy);
                st.gather_both(
                    [o0, o1],
                    [&b[0][p], &b[1][p]],
                    &inv[p],
                    [[r0[p ^ 1], r0[p ^ 2]], [r1[p ^ 1], r1[p ^ 2]]],
                );
            }
            [0.0; 2]
        });
    }

    /// The red half-sweep from `x = 0`, both channels; with `zero_black`,
    /// the black cells are set to 0 as well (for the thin-run solves, which
    /// read them before the first black half-sweep).
    fn relax_red_from_zero(&mut self, zero_black: bool) {
        let quad = self.quad;
        let [[x00, x01, x02, x03], [x10, x11, x12, x13]] = &mut self.x;
        let (inv, b) = (&self.inv_diag, &self.b);
        let arrays = [x00, x03, x01, x02, x10, x13, x11, x12].map(|a| &mut a[..]);
        rows(
            quad,
            arrays,
            |yy, [r00, r03, k01, k02, r10, r13, k11, k12]| {
                let (base, n) = (quad.at(yy, 0), quad.w2);
                for (ch, outs) in [[r00, r03], [r10, r13]].into_iter().enumerate() {
                    for (p, out) in [0, 3].into_iter().zip(outs) {
                        let (o, bb, iv) = (
                            &mut out[1..1 + n],
                            &b[ch][p][base..base + n],
                            &inv[p][base..base + n],
                        );
                        for k in 0..n {
                            o[k] = bb[k] * iv[k];
                        }
                    }
                }
                if zero_black {
                    for out in [k01, k02, k11, k12] {
                        out[1..1 + n].fill(0.0);
                    }
                }
                [0.0; 2]
            },
        );
    }

    /// Red residuals `b − A x` into `r_red`.
    fn residual_red(&mut self) {
        let quad = self.quad;
        let [[r00, r03], [r10, r13]] = &mut self.r_red;
        let (right, down, diag, b, x) = (&self.right, &self.down, &self.diag, &self.b, &self.x);
        rows(quad, [r00, r03, r10, r13], |yy, [o00, o03, o10, o13]| {
            for (p, outs) in [(0, [o00, o10]), (3, [o03, o13])] {
                let st = Stencil::new(quad, right, down, p, yy);
                st.apply_both::<RESIDUAL>(outs, [&b[0][p], &b[1][p]], &diag[p], around_both(x, p));
            }
            [0.0; 2]
        });
    }

    /// One multigrid cycle on `levels[0]`: `x ≈ A⁻¹ b` from `x = 0`, or
    /// with `warm`, `x ← x + C (b − A x)` from the `x` it holds, where `C`
    /// is the cycle from zero (every step is such an update, so the cycle
    /// is the same operator either way). A symmetric operator (the
    /// post-smoother is the pre-smoother's adjoint, restriction the
    /// transpose of interpolation), as conjugate gradients need; with
    /// `w_cycle`, two coarse corrections per level (a W-cycle), which sparse
    /// data need to carry colour across the whole frame, but one where the
    /// coarse level is dominated by its data. The second correction goes on
    /// from the first (a warm cycle on the coarse level).
    fn cycle(levels: &mut [Level], coarsest: &DenseCholesky, w_cycle: bool, warm: bool) {
        let Some((fine, rest)) = levels.split_first_mut() else {
            return;
        };
        let Some(coarse) = rest.first_mut() else {
            coarsest.solve_level(fine);
            return;
        };
        let thin = fine.segments.iter().any(|s| !s.is_empty());
        if warm {
            fine.relax(0);
        } else {
            fine.relax_red_from_zero(thin);
        }
        if thin {
            fine.relax_segments(false);
        }
        fine.relax(1);
        fine.residual_red();
        restrict_both(
            fine.quad,
            &fine.interp,
            &fine.r_red,
            coarse.quad,
            &mut coarse.b,
        );
        Self::cycle(rest, coarsest, w_cycle, false);
        if w_cycle && rest.len() > 1 && !rest[0].data_dominated {
            Self::cycle(rest, coarsest, w_cycle, true);
        }
        if let Some(coarse) = rest.first() {
            fine.prolong(coarse);
        }
        fine.relax(1);
        fine.relax_segments(true);
        fine.relax(0);
    }

    /// Exact solves of the thin runs, rows then columns, one after the other
    /// (a block Gauss–Seidel sweep), or in the opposite order when `reverse`
    /// (its adjoint).
    fn relax_segments(&mut self, reverse: bool) {
        let order: [usize; 2] = if reverse { [1, 0] } else { [0, 1] };
        for dir in order {
            let count = self.segments[dir].len();
            for k in 0..count {
                let seg = self.segments[dir][if reverse { count - 1 - k } else { k }];
                self.solve_segment(dir, seg);
            }
        }
    }

    /// Solves the cells of one thin run exactly, both channels, the cells
    /// around it held fixed.
    fn solve_segment(&mut self, dir: usize, seg: Segment) {
        let quad = self.quad;
        let s = quad.stride;
        let cell = |t: usize| {
            let (y, x) = if dir == 0 {
                (seg.line as usize, t)
            } else {
                (t, seg.line as usize)
            };
            quad.locate(y, x)
        };
        let (start, end) = (seg.start as usize, seg.end as usize);
        let scratch = &mut self.segment_scratch;
        let (mut e_prev, mut g_prev, mut z) = (0.0f32, 0.0f32, [0.0f32; 2]);
        for t in start..end {
            let (p, i) = cell(t);
            let (py, px) = (p >> 1, p & 1);
            // Neighbours across the run, and before and after it.
            let (l, r, u, d) = (i + px - 1, i + px, i + py * s - s, i + py * s);
            let (wl, wr, wu, wd) = (
                self.right[p ^ 1][l],
                self.right[p][i],
                self.down[p ^ 2][u],
                self.down[p][i],
            );
            let (w_before, w_after, e) = if dir == 0 { (wl, wr, wr) } else { (wu, wd, wd) };
            let mut rhs = [0.0f32; 2];
            for (ch, v) in rhs.iter_mut().enumerate() {
                let x = &self.x[ch];
                *v = self.b[ch][p][i]
                    + if dir == 0 {
                        wu * x[p ^ 2][u] + wd * x[p ^ 2][d]
                    } else {
                        wl * x[p ^ 1][l] + wr * x[p ^ 1][r]
                    };
                if t == start {
                    *v += w_before * if dir == 0 { x[p ^ 1][l] } else { x[p ^ 2][u] };
                }
                if t + 1 == end {
                    *v += w_after * if dir == 0 { x[p ^ 1][r] } else { x[p ^ 2][d] };
                }
            }
            let denom = self.diag[p][i] - e_prev * g_prev;
            let m = if denom > 0.0 { 1.0 / denom } else { 0.0 };
            let g = if t + 1 == end { 0.0 } else { e * m };
            for ch in 0..2 {
                z[ch] = (rhs[ch] + e_prev * z[ch]) * m;
            }
            scratch[t - start] = [g, z[0], z[1], 0.0];
            (e_prev, g_prev) = (e, g);
        }
        let mut u = [0.0f32; 2];
        for t in (start..end).rev() {
            let [g, z0, z1, _] = scratch[t - start];
            u = [z0 + g * u[0], z1 + g * u[1]];
            let (p, i) = cell(t);
            self.x[0][p][i] = u[0];
            self.x[1][p][i] = u[1];
        }
    }

    /// `x += P coarse.x` on the red cells (the black ones are recomputed by
    /// the next black half-sweep, whatever they hold).
    fn prolong(&mut self, coarse: &Level) {
        let quad = self.quad;
        let n = quad.w2;
        // The coarse grid's values row-major in this level's array shape:
        // row `yy` interleaves the coarse parities `2 (yy mod 2)` and `+ 1`.
        let (cq, cx) = (coarse.quad, &coarse.x);
        let [s0, s1] = &mut self.scratch;
        rows(quad, [&mut s0[..], &mut s1[..]], |yy, outs| {
            let (py, base) = (yy & 1, cq.at(yy >> 1, 0));
            for (ch, row) in outs.into_iter().enumerate() {
                let (even, odd) = (
                    &cx[ch][2 * py][base..base + cq.w2],
                    &cx[ch][2 * py + 1][base..base + cq.w2],
                );
                for (j, pair) in row[1..1 + n].chunks_mut(2).enumerate() {
                    pair[0] = even[j];
                    if let Some(o) = pair.get_mut(1) {
                        *o = odd[j];
                    }
                }
            }
            [0.0; 2]
        });
        let [p_nw, p_ne, p_sw, p_se] = &self.interp;
        let s = quad.stride;
        let [[x00, _, _, x03], [x10, _, _, x13]] = &mut self.x;
        let [e0, e1] = &self.scratch;
        let arrays = [x00, x03, x10, x13].map(|a| &mut a[..]);
        rows(quad, arrays, |yy, [o00, o03, o10, o13]| {
            let base = quad.at(yy, 0);
            let (nw, ne, sw, se) = (
                &p_nw[base..][..n],
                &p_ne[base..][..n],
                &p_sw[base..][..n],
                &p_se[base..][..n],
            );
            for ((out0, out3), e) in [(o00, o03), (o10, o13)].into_iter().zip([e0, e1]) {
                let (a, b, c, d) = (
                    &e[base..][..n],
                    &e[base + 1..][..n],
                    &e[base + s..][..n],
                    &e[base + s + 1..][..n],
                );
                for (o, &v) in out0[1..1 + n].iter_mut().zip(a) {
                    *o += v;
                }
                let o = &mut out3[1..1 + n];
                for k in 0..n {
                    o[k] += nw[k] * a[k] + ne[k] * b[k] + sw[k] * c[k] + se[k] * d[k];
                }
            }
            [0.0; 2]
        });
    }
}

/// `Pᵀ v` for a field that is 0 on the black cells, into `out` (this level's
/// array shape, the coarse grid's values row-major): coarse cell `(Y, X)` is
/// fine cell `(2Y, 2X)` (parity 0) plus its four diagonal neighbours
/// (parity 3), weighted by their interpolation from it.
fn restrict(quad: Quad, interp: &[Arr; 4], [r0, r3]: [&[f32]; 2], out: &mut [f32]) {
    let [p_nw, p_ne, p_sw, p_se] = interp;
    let s = quad.stride;
    rows(quad, [out], |yy, [row]| {
        let n = quad.w2;
        let base = quad.at(yy, 0);
        let up = base - s;
        let (own, a, b, c, d) = (
            &r0[base..][..n],
            &r3[base..][..n],
            &r3[base - 1..][..n],
            &r3[up..][..n],
            &r3[up - 1..][..n],
        );
        let (nw, ne, sw, se) = (
            &p_nw[base..][..n],
            &p_ne[base - 1..][..n],
            &p_sw[up..][..n],
            &p_se[up - 1..][..n],
        );
        let o = &mut row[1..1 + n];
        for k in 0..n {
            o[k] = own[k] + nw[k] * a[k] + ne[k] * b[k] + sw[k] * c[k] + se[k] * d[k];
        }
        [0.0; 2]
    });
}

/// [`restrict`] for both channels (`r_red[ch]` holding parities 0 and 3),
/// straight into the coarse level's parity arrays `dst`.
fn restrict_both(
    quad: Quad,
    interp: &[Arr; 4],
    r_red: &[[Arr; 2]; 2],
    coarse: Quad,
    dst: &mut Field,
) {
    const BLOCK: usize = 512;
    let [p_nw, p_ne, p_sw, p_se] = interp;
    let s = quad.stride;
    let n = quad.w2;
    let [[d00, d01, d02, d03], [d10, d11, d12, d13]] = dst;
    let arrays = [d00, d01, d02, d03, d10, d11, d12, d13].map(|a| &mut a[..]);
    rows(coarse, arrays, |cy, outs| {
        let [o00, o01, o02, o03, o10, o11, o12, o13] = outs;
        let mut outs = [[o00, o01, o02, o03], [o10, o11, o12, o13]];
        let mut buf = [0.0f32; BLOCK];
        for py in 0..2 {
            // Coarse row `2 cy + py` is this level's parity-0 row of that index.
            let yy = 2 * cy + py;
            for (ch, outs) in outs.iter_mut().enumerate() {
                let (e, o) = outs.split_at_mut(2 * py + 1);
                let (even, odd) = (
                    &mut e[2 * py][1..1 + coarse.w2],
                    &mut o[0][1..1 + coarse.w2],
                );
                if yy >= quad.h2 {
                    even.fill(0.0);
                    odd.fill(0.0);
                    continue;
                }
                let [r0, r3] = &r_red[ch];
                let base = quad.at(yy, 0);
                let up = base - s;
                for k0 in (0..n).step_by(BLOCK) {
                    let len = BLOCK.min(n - k0);
                    let (b0, u0) = (base + k0, up + k0);
                    let (own, a, b, c, d) = (
                        &r0[b0..][..len],
                        &r3[b0..][..len],
                        &r3[b0 - 1..][..len],
                        &r3[u0..][..len],
                        &r3[u0 - 1..][..len],
                    );
                    let (nw, ne, sw, se) = (
                        &p_nw[b0..][..len],
                        &p_ne[b0 - 1..][..len],
                        &p_sw[u0..][..len],
                        &p_se[u0 - 1..][..len],
                    );
                    let out = &mut buf[..len];
                    for k in 0..len {
                        out[k] = own[k] + nw[k] * a[k] + ne[k] * b[k] + sw[k] * c[k] + se[k] * d[k];
                    }
                    // Even columns to one coarse parity, odd to the other.
                    for (j, pair) in out.chunks(2).enumerate() {
                        let xx = k0 / 2 + j;
                        even[xx] = pair[0];
                        odd[xx] = pair.get(1).copied().unwrap_or(0.0);
                    }
                }
            }
        }
        [0.0; 2]
    });
}

/// Coarse-grid values held row-major in the fine level's array shape into
/// the coarse level's parity arrays.
fn split_coarse(fine: Quad, src: &[f32], coarse: Quad, dst: &mut Phases) {
    for (p, d) in dst.iter_mut().enumerate() {
        let (py, px) = (p >> 1, p & 1);
        rows(coarse, [&mut d[..]], |yy, [row]| {
            let base = fine.at(2 * yy + py, px);
            for xx in 0..coarse.w2 {
                row[1 + xx] = src[base + 2 * xx];
            }
            [0.0; 2]
        });
    }
}

/// `Σ a·b` with eight `f32` lanes per block of 1024 and `f64` across blocks.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for (ca, cb) in a.chunks(1024).zip(b.chunks(1024)) {
        let mut lanes = [0.0f32; 8];
        let mut ia = ca.chunks_exact(8);
        let mut ib = cb.chunks_exact(8);
        for (xa, xb) in (&mut ia).zip(&mut ib) {
            for l in 0..8 {
                lanes[l] += xa[l] * xb[l];
            }
        }
        let tail: f32 = ia
            .remainder()
            .iter()
            .zip(ib.remainder())
            .map(|(x, y)| x * y)
            .sum();
        total += lanes.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(tail);
    }
    total
}

/// [`dot`] over whole arrays, in parallel for large ones.
fn par_dot(a: &[f32], b: &[f32]) -> f64 {
    if a.len() >= PARALLEL_MIN_CELLS {
        a.par_chunks(CELLS_PER_TASK)
            .zip(b.par_chunks(CELLS_PER_TASK))
            .map(|(x, y)| dot(x, y))
            .sum()
    } else {
        dot(a, b)
    }
}

/// Series conductance of two couplings.
fn series(a: f32, b: f32) -> f32 {
    if a + b > 0.0 { a * b / (a + b) } else { 0.0 }
}

/// Lumping of a coupling `c` between two cells two steps apart, which the
/// five-point coarse stencil cannot hold, onto the two two-step paths between
/// them, whose series conductances are `s1` and `s2`. Where the paths are
/// about as strong as `c` (inside a region) they share it in proportion to
/// their conductances, which keeps the coarse operator right for smooth
/// fields. Where both are much weaker, `c` runs along a structure one cell
/// thin (a dark line on a bright ground) and crosses its edges: all of it
/// goes onto the first path, a fixed choice for each direction, so the thin
/// structure stays connected on the coarse grid, merged with the region on
/// that side consistently along its length, while the regions on its two
/// sides stay apart. (Dropping it instead, or moving it to the diagonal,
/// leaves every cell of a lattice of thin lines on its own on the coarse
/// grid, and convergence on such luma several times slower.)
fn lump(c: f32, s1: f32, s2: f32) -> (f32, f32) {
    let s = s1 + s2;
    if s * LUMP_CAPACITY >= c && s > 0.0 {
        let f = c / s;
        (s1 * f, s2 * f)
    } else {
        (c, 0.0)
    }
}

/// The next coarser operator, in the shape of the fine level's parity
/// arrays (the coarse grid is the fine parity-0 array).
struct Coarsened {
    right: Arr,
    down: Arr,
    extra: Arr,
    /// Interpolation of the fine parity-3 cells from their NW, NE, SW and SE
    /// (parity-0, coarse) neighbours, in the parity-3 layout.
    interp: [Arr; 4],
}

/// Index `i + off` (offsets are small and stay inside the padded arrays).
fn shifted(i: usize, off: isize) -> usize {
    i.wrapping_add_signed(off)
}

/// Arrays of one shape, recycled between the passes of [`coarsen`]. Every
/// pass writes all the cells of every row it owns and never the zero
/// border, so a recycled array needs no clearing.
struct Spare {
    len: usize,
    free: Vec<Arr>,
}

impl Spare {
    fn take(&mut self) -> Arr {
        self.free.pop().unwrap_or_else(|| zeroed(self.len))
    }

    fn give(&mut self, arrays: impl IntoIterator<Item = Arr>) {
        self.free.extend(arrays);
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        recycle(self.free.drain(..));
    }
}

/// Builds the next coarser operator by two steps of exact elimination
/// (Schur complement), each followed by lumping back to a five-point
/// stencil: first the black cells (`x + y` odd, parities 1 and 2) are
/// eliminated, leaving the red cells coupled diagonally; then the red cells
/// with odd `x` and `y` (parity 3), leaving parity 0, the coarse grid. The
/// coarse couplings are sums over real paths through the fine grid, so they
/// are as weak across an edge as the fine ones; interpolation is the exact
/// ("ideal") one for the eliminated cells. `extra` is the fine level's
/// fixed diagonal beyond its couplings; the interpolation uses the nominal
/// data `epsilon` per cell (the real data only enters per solve, through
/// the same restriction as residuals).
fn coarsen(level: &Level, extra: &Phases, epsilon: f32) -> Coarsened {
    let quad = level.quad;
    let (n, s) = (quad.w2, quad.stride as isize);
    let (right, down, inv) = (&level.right, &level.down, &level.inv_nominal);
    let mut spare = Spare {
        len: quad.len(),
        free: Vec::new(),
    };
    // The cells of a row (starting at `base`) shifted by `off`.
    let span = |base: usize, off: isize| {
        let b = shifted(base, off);
        b..b + n
    };

    // Step 1, for both red parities r (parity 3r, o = r): raw couplings to
    // the diagonal neighbours (NE, SE), to the cells two steps right (E2)
    // and down (S2), and the diagonal handed over by the black neighbours
    // (the fixed part, and with the nominal data).
    let mut ne = [spare.take(), spare.take()];
    let mut se = [spare.take(), spare.take()];
    let mut e2 = [spare.take(), spare.take()];
    let mut s2 = [spare.take(), spare.take()];
    let mut ext1 = [spare.take(), spare.take()];
    let mut nom1 = [spare.take(), spare.take()];
    for r in 0..2 {
        let (p, o) = (3 * r, r as isize);
        let (hb, vb, other) = (p ^ 1, p ^ 2, 3 - p);
        let arrays = [
            &mut ne[r],
            &mut se[r],
            &mut e2[r],
            &mut s2[r],
            &mut ext1[r],
            &mut nom1[r],
        ]
        .map(|a| &mut a[..]);
        rows(
            quad,
            arrays,
            |yy, [o_ne, o_se, o_e2, o_s2, o_ext, o_nom]| {
                let base = quad.at(yy, 0);
                let own = base..base + n;
                let (l, rr, u, d) = (
                    span(base, o - 1),
                    span(base, o),
                    span(base, (o - 1) * s),
                    span(base, o * s),
                );
                let ne_i = span(base, (o - 1) * s + o);
                let (wl, wr, wu, wd) = (
                    &right[hb][l.clone()],
                    &right[p][own.clone()],
                    &down[vb][u.clone()],
                    &down[p][own.clone()],
                );
                let (il, ir, iu, id) = (
                    &inv[hb][l.clone()],
                    &inv[hb][rr.clone()],
                    &inv[vb][u.clone()],
                    &inv[vb][d.clone()],
                );
                let (xl, xr, xu, xd, xo) = (
                    &extra[hb][l],
                    &extra[hb][rr.clone()],
                    &extra[vb][u.clone()],
                    &extra[vb][d.clone()],
                    &extra[p][own],
                );
                let (r_u, r_d, r_r) =
                    (&right[vb][u], &right[vb][d.clone()], &right[hb][rr.clone()]);
                let (d_ne, d_r, d_d) = (&down[other][ne_i], &down[hb][rr], &down[vb][d]);
                for k in 0..n {
                    let (ql, qr, qu, qd) =
                        (wl[k] * il[k], wr[k] * ir[k], wu[k] * iu[k], wd[k] * id[k]);
                    o_ne[1 + k] = qu * r_u[k] + qr * d_ne[k];
                    o_se[1 + k] = qd * r_d[k] + qr * d_r[k];
                    o_e2[1 + k] = qr * r_r[k];
                    o_s2[1 + k] = qd * d_d[k];
                    let ext = xo[k] + ql * xl[k] + qr * xr[k] + qu * xu[k] + qd * xd[k];
                    o_ext[1 + k] = ext;
                    o_nom[1 + k] = ext + epsilon * (1.0 + ql + qr + qu + qd);
                }
                [0.0; 2]
            },
        );
    }
    // The straight two-step couplings of parity 0 join cells that are
    // neighbours on the coarse grid and pass down as they are. Those of
    // parity 3 join cells that step 2 eliminates: lump them onto the
    // diagonal paths, E2 via NE (up) or SE (down), S2 via SE (right) or SW
    // (left).
    let (mut t_up, mut t_dn, mut t_r, mut t_l) =
        (spare.take(), spare.take(), spare.take(), spare.take());
    {
        let arrays = [&mut t_up[..], &mut t_dn[..], &mut t_r[..], &mut t_l[..]];
        let (ne, se, e2, s2) = (&ne, &se, &e2[1], &s2[1]);
        rows(quad, arrays, |yy, [o_up, o_dn, o_r, o_l]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            // Parity-0 neighbours of a parity-3 cell: NE at +1, SE at s + 1, SW at s.
            let (ne0, se0, e20, s20) = (
                &ne[1][own.clone()],
                &se[1][own.clone()],
                &e2[own.clone()],
                &s2[own],
            );
            let (se_ne, ne_se, ne_s2) = (
                &se[0][span(base, 1)],
                &ne[0][span(base, s + 1)],
                &ne[1][span(base, s)],
            );
            let (ne_sw, se_sw) = (&ne[0][span(base, s)], &se[0][span(base, s)]);
            for k in 0..n {
                let (a, b) = lump(e20[k], series(ne0[k], se_ne[k]), series(se0[k], ne_se[k]));
                (o_up[1 + k], o_dn[1 + k]) = (a, b);
                let (a, b) = lump(s20[k], series(se0[k], ne_s2[k]), series(ne_sw[k], se_sw[k]));
                (o_r[1 + k], o_l[1 + k]) = (a, b);
            }
            [0.0; 2]
        });
    }
    // Final diagonal couplings: each path edge takes what the pairs lumped
    // onto it.
    let mut ne1 = [spare.take(), spare.take()];
    let mut se1 = [spare.take(), spare.take()];
    for r in 0..2 {
        let arrays = [&mut ne1[r], &mut se1[r]].map(|a| &mut a[..]);
        let (ne, se, t_up, t_dn, t_r, t_l) = (&ne[r], &se[r], &t_up, &t_dn, &t_r, &t_l);
        rows(quad, arrays, |yy, [o_ne, o_se]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            let (ne0, se0) = (&ne[own.clone()], &se[own.clone()]);
            if r == 0 {
                // Paths through this cell of the pairs with top-left cell NW,
                // SW (horizontal) and NE (vertical, via the left).
                let (dn_nw, up_sw, l_ne) = (
                    &t_dn[span(base, -s - 1)],
                    &t_up[span(base, -1)],
                    &t_l[span(base, -s)],
                );
                for k in 0..n {
                    o_ne[1 + k] = ne0[k] + dn_nw[k] + l_ne[k];
                    o_se[1 + k] = se0[k] + up_sw[k] + l_ne[k];
                }
            } else {
                // The first edges of this cell's own pairs, and the last edge
                // of the vertical pair from two rows up (via the right).
                let (up0, dn0, r0, r_n2) = (
                    &t_up[own.clone()],
                    &t_dn[own.clone()],
                    &t_r[own],
                    &t_r[span(base, -s)],
                );
                for k in 0..n {
                    o_ne[1 + k] = ne0[k] + up0[k] + r_n2[k];
                    o_se[1 + k] = se0[k] + dn0[k] + r0[k];
                }
            }
            [0.0; 2]
        });
    }
    let [e2_0, e2_1] = e2;
    let [s2_0, s2_1] = s2;
    spare.give(
        ne.into_iter()
            .chain(se)
            .chain([e2_1, s2_1, t_up, t_dn, t_r, t_l]),
    );

    // Step 2: eliminate parity 3. Interpolation weights from its NW (parity
    // 0, same index), NE (its own NE coupling), SW (parity 0 one row down)
    // and SE neighbours.
    let mut interp = [spare.take(), spare.take(), spare.take(), spare.take()];
    let mut inv1 = spare.take();
    {
        let [p_nw, p_ne, p_sw, p_se] = &mut interp;
        let arrays = [
            &mut p_nw[..],
            &mut p_ne[..],
            &mut p_sw[..],
            &mut p_se[..],
            &mut inv1[..],
        ];
        let (ne1, se1, nom1) = (&ne1, &se1, &nom1);
        rows(quad, arrays, |yy, [o_nw, o_ne, o_sw, o_se, o_inv]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            let (nw, nee, sw, see, nom) = (
                &se1[0][own.clone()],
                &ne1[1][own.clone()],
                &ne1[0][span(base, s)],
                &se1[1][own.clone()],
                &nom1[1][own],
            );
            for k in 0..n {
                let iv = 1.0 / (nom[k] + nw[k] + nee[k] + sw[k] + see[k]);
                (
                    o_nw[1 + k],
                    o_ne[1 + k],
                    o_sw[1 + k],
                    o_se[1 + k],
                    o_inv[1 + k],
                ) = (nw[k] * iv, nee[k] * iv, sw[k] * iv, see[k] * iv, iv);
            }
            [0.0; 2]
        });
    }
    // Coarse couplings (the straight ones between parity-0 cells plus the
    // axis paths through parity 3), diagonal couplings to lump, and the fixed
    // diagonal handed down.
    let (mut c_right, mut c_down, mut c_ne, mut c_se, mut c_ext) = (
        spare.take(),
        spare.take(),
        spare.take(),
        spare.take(),
        spare.take(),
    );
    {
        let [_, p_ne, p_sw, p_se] = &interp;
        let arrays = [
            &mut c_right[..],
            &mut c_down[..],
            &mut c_ne[..],
            &mut c_se[..],
            &mut c_ext[..],
        ];
        let (ne1, se1, ext1, inv1, straight_r, straight_d) =
            (&ne1, &se1, &ext1, &inv1, &e2_0, &s2_0);
        rows(quad, arrays, |yy, [o_r, o_d, o_ne, o_se, o_ext]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            // The parity-3 neighbours: NE (f1), SE (f2), SW (f3), NW (f0).
            let (f1, f2, f3, f0) = (
                span(base, -s),
                own.clone(),
                span(base, -1),
                span(base, -s - 1),
            );
            let (e1, e2, e3, e0) = (
                &ne1[0][own.clone()],
                &se1[0][own.clone()],
                &ne1[1][f3.clone()],
                &se1[1][f0.clone()],
            );
            let (sr, sd, x0) = (
                &straight_r[own.clone()],
                &straight_d[own.clone()],
                &ext1[0][own],
            );
            let (se_1, ne_2, sw_2, se_3, ne_1, se_2) = (
                &p_se[f1.clone()],
                &p_ne[f2.clone()],
                &p_sw[f2.clone()],
                &p_se[f3.clone()],
                &p_ne[f1.clone()],
                &p_se[f2.clone()],
            );
            let x = &ext1[1];
            let (x1, x2, x3, x0_) = (
                &x[f1.clone()],
                &x[f2.clone()],
                &x[f3.clone()],
                &x[f0.clone()],
            );
            let (i1, i2, i3, i0) = (&inv1[f1], &inv1[f2], &inv1[f3], &inv1[f0]);
            for k in 0..n {
                o_r[1 + k] = sr[k] + e1[k] * se_1[k] + e2[k] * ne_2[k];
                o_d[1 + k] = sd[k] + e2[k] * sw_2[k] + e3[k] * se_3[k];
                o_ne[1 + k] = e1[k] * ne_1[k];
                o_se[1 + k] = e2[k] * se_2[k];
                o_ext[1 + k] = x0[k]
                    + e1[k] * x1[k] * i1[k]
                    + e2[k] * x2[k] * i2[k]
                    + e3[k] * x3[k] * i3[k]
                    + e0[k] * x0_[k] * i0[k];
            }
            [0.0; 2]
        });
    }
    spare.give(
        ne1.into_iter()
            .chain(se1)
            .chain(ext1)
            .chain(nom1)
            .chain([inv1, e2_0, s2_0]),
    );
    // Lump the coarse diagonal couplings onto the axis paths: to NE via up
    // (a) or right (b), to SE via right (c) or down (d).
    let (mut ta, mut tb, mut tc, mut td) = (spare.take(), spare.take(), spare.take(), spare.take());
    {
        let arrays = [&mut ta[..], &mut tb[..], &mut tc[..], &mut td[..]];
        let (cr, cd, cne, cse) = (&c_right, &c_down, &c_ne, &c_se);
        rows(quad, arrays, |yy, [o_a, o_b, o_c, o_d]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            let (r0, d0, ne0, se0) = (
                &cr[own.clone()],
                &cd[own.clone()],
                &cne[own.clone()],
                &cse[own],
            );
            let (d_up, r_up, d_upr, d_r, r_dn) = (
                &cd[span(base, -s)],
                &cr[span(base, -s)],
                &cd[span(base, 1 - s)],
                &cd[span(base, 1)],
                &cr[span(base, s)],
            );
            for k in 0..n {
                let (a, b) = lump(ne0[k], series(d_up[k], r_up[k]), series(r0[k], d_upr[k]));
                let (c, d) = lump(se0[k], series(r0[k], d_r[k]), series(d0[k], r_dn[k]));
                (o_a[1 + k], o_b[1 + k], o_c[1 + k], o_d[1 + k]) = (a, b, c, d);
            }
            [0.0; 2]
        });
    }
    let (mut right_c, mut down_c) = (spare.take(), spare.take());
    {
        let arrays = [&mut right_c[..], &mut down_c[..]];
        let (cr, cd, ta, tb, tc, td) = (&c_right, &c_down, &ta, &tb, &tc, &td);
        rows(quad, arrays, |yy, [o_r, o_d]| {
            let base = quad.at(yy, 0);
            let own = base..base + n;
            let (r0, d0, b0, c0, d0_) = (
                &cr[own.clone()],
                &cd[own.clone()],
                &tb[own.clone()],
                &tc[own.clone()],
                &td[own],
            );
            let (a_dn, d_up, b_dnl, c_l) = (
                &ta[span(base, s)],
                &td[span(base, -s)],
                &tb[span(base, s - 1)],
                &tc[span(base, -1)],
            );
            for k in 0..n {
                o_r[1 + k] = r0[k] + b0[k] + a_dn[k] + c0[k] + d_up[k];
                o_d[1 + k] = d0[k] + a_dn[k] + b_dnl[k] + d0_[k] + c_l[k];
            }
            [0.0; 2]
        });
    }
    Coarsened {
        right: right_c,
        down: down_c,
        extra: c_ext,
        interp,
    }
}

/// Dense Cholesky factor of the coarsest level's matrix, in `f64`.
#[derive(Clone, Debug, Default)]
struct DenseCholesky {
    n: usize,
    /// Lower triangle, row-major `n × n`.
    l: Vec<f64>,
}

impl DenseCholesky {
    /// Factors the matrix of `level` (whose diagonal is set).
    fn factor(&mut self, level: &Level) {
        let q = level.quad;
        let (w, h) = (q.width, q.height);
        let n = w * h;
        self.n = n;
        self.l.clear();
        self.l.resize(n * n, 0.0);
        let a = &mut self.l;
        for y in 0..h {
            for x in 0..w {
                let (p, i) = q.locate(y, x);
                let c = y * w + x;
                a[c * n + c] = f64::from(level.diag[p][i]);
                if x + 1 < w {
                    let e = -f64::from(level.right[p][i]);
                    a[c * n + c + 1] = e;
                    a[(c + 1) * n + c] = e;
                }
                if y + 1 < h {
                    let e = -f64::from(level.down[p][i]);
                    a[c * n + c + w] = e;
                    a[(c + w) * n + c] = e;
                }
            }
        }
        cholesky(a, n);
    }

    /// `level.x = A⁻¹ level.b`, both channels.
    fn solve_level(&self, level: &mut Level) {
        let (q, n, l) = (level.quad, self.n, &self.l);
        let mut y = [0.0f64; COARSEST_CELLS];
        let y = &mut y[..n];
        for ch in 0..2 {
            for (c, v) in y.iter_mut().enumerate() {
                let (p, i) = q.locate(c / q.width, c % q.width);
                *v = f64::from(level.b[ch][p][i]);
            }
            cholesky_solve(l, n, y);
            for (c, &v) in y.iter().enumerate() {
                let (p, i) = q.locate(c / q.width, c % q.width);
                level.x[ch][p][i] = v as f32;
            }
        }
    }
}

/// Edge-aware chroma solver for one luma frame; see the module docs.
///
/// Building it computes the affinities and the multigrid hierarchy (which
/// depend on the luma only); [`solve`](Self::solve) can then be called with
/// different data terms (a new hint, another prior) without allocating.
#[derive(Clone, Debug)]
pub struct ChromaSolver {
    params: SolverParams,
    width: usize,
    height: usize,
    levels: Vec<Level>,
    coarsest: DenseCholesky,
    /// The regions the preconditioner deflates where they float.
    regions: Regions,
    /// Conjugate-gradient vectors on the finest grid.
    x: Field,
    r: Field,
    p: Field,
    stats: SolveStats,
}

/// Per channel (Cb, Cr).
type Channels<T> = [T; 2];

impl Drop for ChromaSolver {
    /// Hands the arrays on to the next solver (see [`zeroed`]).
    fn drop(&mut self) {
        for level in std::mem::take(&mut self.levels) {
            recycle(level.into_arrays());
        }
        for field in [&mut self.x, &mut self.r, &mut self.p] {
            recycle(std::mem::take(field).into_iter().flatten());
        }
    }
}

/// The preconditioner turned out indefinite (a W-cycle can, on very
/// irregular luma); the solve goes on with V-cycles, which cannot.
struct Breakdown;

impl ChromaSolver {
    /// Prepares the solver for `luma`: affinities and the multigrid hierarchy.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when `luma.data` does not hold `width * height` values.
    pub fn new(luma: &LumaImage, params: SolverParams) -> Result<Self> {
        check_luma(luma)?;
        let params = params.sanitized();
        let (width, height) = (luma.width, luma.height);
        let fine = Quad::new(width, height);
        // The regions need only the luma: they are found while the
        // hierarchy is built, on whatever core that leaves idle.
        let (levels, regions) = rayon::join(
            || Self::hierarchy(luma, &params, fine),
            || Regions::new(luma, &params, fine),
        );
        Ok(Self {
            params,
            width,
            height,
            levels,
            coarsest: DenseCholesky::default(),
            regions,
            x: field(fine),
            r: field(fine),
            p: field(fine),
            stats: SolveStats::default(),
        })
    }

    /// The multigrid levels for `luma`, finest first.
    fn hierarchy(luma: &LumaImage, params: &SolverParams, fine: Quad) -> Vec<Level> {
        let mut levels = Vec::new();
        if fine.cells() > 0 {
            let (mut right, mut down) = affinities_quad(luma, params, fine);
            let mut extra = phases(fine);
            let mut quad = fine;
            let mut epsilon = params.neutral_weight;
            loop {
                let mut level = Level::new(quad, right, down, &extra, None, epsilon);
                if quad.cells() <= COARSEST_CELLS {
                    levels.push(level);
                    break;
                }
                let next = coarsen(&level, &extra, epsilon);
                level.interp = next.interp;
                levels.push(level);
                let coarse = Quad::new(quad.w2, quad.h2);
                let split = |src: &[f32]| {
                    let mut out = phases(coarse);
                    split_coarse(quad, src, coarse, &mut out);
                    out
                };
                recycle(std::mem::replace(&mut extra, split(&next.extra)));
                (right, down) = (split(&next.right), split(&next.down));
                recycle([next.right, next.down, next.extra]);
                quad = coarse;
                epsilon *= 4.0;
            }
        }
        levels
    }

    /// The parameters in use (after bringing them into range).
    pub fn params(&self) -> SolverParams {
        self.params
    }

    /// Whether this solver was built for a luma of `width` x `height` with
    /// `params` (as brought into range): a solver kept for one frame serves
    /// that frame's later solves, when nothing about them changed but the
    /// data, without building the hierarchy again.
    pub fn fits(&self, width: usize, height: usize, params: SolverParams) -> bool {
        (self.width, self.height) == (width, height) && self.params == params.sanitized()
    }

    /// How the last [`solve`](Self::solve) went.
    pub fn last_stats(&self) -> SolveStats {
        self.stats
    }

    /// Solves for the chroma that best fits `terms` (any number, summed) and
    /// follows the luma's edges, starting from `initial` (for instance the
    /// previous frame's result) or from neutral.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when a term's slices or `initial` do not match
    /// the luma's size.
    pub fn solve(
        &mut self,
        terms: &[DataTerm<'_>],
        initial: Option<&ChromaField>,
    ) -> Result<ChromaField> {
        let (w, h) = (self.width, self.height);
        if let Some(init) = initial {
            check_start(init, w, h)?;
        }
        check_terms(terms, w, h)?;
        let mut out = ChromaField::neutral(w, h);
        if self.levels.is_empty() {
            self.stats = SolveStats {
                converged: true,
                ..SolveStats::default()
            };
            return Ok(out);
        }
        let quad = self.levels[0].quad;
        assemble_quad(
            terms,
            quad,
            self.params.neutral_weight,
            &mut self.levels[0].diag,
            &mut self.r,
        );
        let bnorm = [norm(&self.r[0]), norm(&self.r[1])];
        self.regions.prepare(quad, &self.levels[0].diag);
        self.prepare_levels();
        match initial {
            Some(init) => {
                to_quad(quad, &init.cb, &mut self.x[0]);
                to_quad(quad, &init.cr, &mut self.x[1]);
                let mut q = std::mem::take(&mut self.levels[0].b);
                Self::apply(&self.levels[0], &self.x, &mut q);
                for (r, q) in self.r.iter_mut().flatten().zip(q.iter().flatten()) {
                    axpy(r, -1.0, q);
                }
                self.levels[0].b = q;
            }
            None => self.x.iter_mut().flatten().for_each(|v| v.fill(0.0)),
        }
        for ((x, r), &bn) in self.x.iter_mut().zip(&mut self.r).zip(&bnorm) {
            if bn == 0.0 {
                // b = 0: the solution is exactly neutral.
                x.iter_mut().chain(r.iter_mut()).for_each(|v| v.fill(0.0));
            }
        }
        let fine = &self.levels[0];
        self.regions
            .start(quad, &fine.diag, &fine.fixed_diag, &mut self.x, &mut self.r);
        let mut iterations = 0;
        let mut w_cycle = true;
        self.stats = loop {
            match self.pcg(bnorm, w_cycle, &mut iterations) {
                Ok(stats) => break stats,
                // Restart from where it got, with V-cycles.
                Err(Breakdown) if w_cycle => w_cycle = false,
                Err(Breakdown) => {
                    break SolveStats {
                        iterations,
                        relative_residual: [f32::NAN; 2],
                        converged: false,
                    };
                }
            }
        };
        for (ch, dst) in [&mut out.cb, &mut out.cr].into_iter().enumerate() {
            from_quad(quad, &self.x[ch], dst);
        }
        Ok(out)
    }

    /// Per-solve setup of every level: data weights, diagonals, the
    /// coarsest factorisation.
    fn prepare_levels(&mut self) {
        for l in 1..self.levels.len() {
            let (done, rest) = self.levels.split_at_mut(l);
            done[l - 1].restrict_data(&mut rest[0]);
        }
        for level in &mut self.levels {
            level.set_diagonal();
        }
        if let Some(last) = self.levels.last() {
            self.coarsest.factor(last);
        }
    }

    /// `out = A v` on the finest grid, returning `v · A v` per channel.
    fn apply(level: &Level, v: &Field, out: &mut Field) -> [f64; 2] {
        let quad = level.quad;
        let (right, down, diag) = (&level.right, &level.down, &level.diag);
        let [[o00, o01, o02, o03], [o10, o11, o12, o13]] = out;
        let arrays = [o00, o10, o01, o11, o02, o12, o03, o13].map(|a| &mut a[..]);
        rows(
            quad,
            arrays,
            |yy, [a00, a10, a01, a11, a02, a12, a03, a13]| {
                let mut vav = [0.0; 2];
                for (p, outs) in [[a00, a10], [a01, a11], [a02, a12], [a03, a13]]
                    .into_iter()
                    .enumerate()
                {
                    let st = Stencil::new(quad, right, down, p, yy);
                    let s = st.apply_both::<PRODUCT>(outs, [&[], &[]], &diag[p], around_both(v, p));
                    vav = [vav[0] + s[0], vav[1] + s[1]];
                }
                vav
            },
        )
    }

    /// `x += α p` for the channels with a step `α`.
    fn step_x(&mut self, alpha: [Option<f32>; 2]) {
        let quad = self.levels[0].quad;
        let [[x00, x01, x02, x03], [x10, x11, x12, x13]] = &mut self.x;
        let arrays = [x00, x01, x02, x03, x10, x11, x12, x13].map(|a| &mut a[..]);
        let p = &self.p;
        rows(quad, arrays, |yy, xs| {
            let row = quad.at(yy, 0) - 1..quad.at(yy + 1, 0) - 1;
            for (k, x) in xs.into_iter().enumerate() {
                if let Some(a) = alpha[k / 4] {
                    add_scaled(x, a, &p[k / 4][k % 4][row.clone()]);
                }
            }
            [0.0; 2]
        });
    }

    /// Preconditioned conjugate gradients from `x` (or from 0 unless `warm`),
    /// counting iterations on from `iterations`.
    fn pcg(
        &mut self,
        bnorm: [f64; 2],
        w_cycle: bool,
        iterations: &mut usize,
    ) -> Result<SolveStats, Breakdown> {
        let tol = f64::from(self.params.tolerance);
        let mut rnorm = [norm(&self.r[0]), norm(&self.r[1])];
        let mut active = [0, 1].map(|ch| rnorm[ch] > tol * bnorm[ch]);
        let mut rz_old = [0.0f64; 2];
        let mut first = true;
        // The step `x += α p` of the last iteration, per channel, is made in
        // the next one's pass over `p` (or when the solve ends), which saves
        // reading `p` twice.
        let mut pending = [None; 2];
        let broke = 'iterate: loop {
            if !active.iter().any(|&a| a) || *iterations >= self.params.max_iterations {
                break false;
            }
            *iterations += 1;
            // z = M r: the cycle reads level 0's b and leaves z in its x.
            std::mem::swap(&mut self.levels[0].b, &mut self.r);
            Level::cycle(&mut self.levels, &self.coarsest, w_cycle, false);
            std::mem::swap(&mut self.levels[0].b, &mut self.r);
            let fine = &mut self.levels[0];
            self.regions.correct(
                fine.quad,
                &fine.diag,
                &fine.fixed_diag,
                &self.r,
                &mut fine.x,
            );
            let quad = self.levels[0].quad;
            let z = &self.levels[0].x;
            let rz = {
                let r = &self.r;
                rows(quad, [], |yy, []| {
                    let row = quad.at(yy, 0) - 1..quad.at(yy + 1, 0) - 1;
                    [0, 1].map(|ch| {
                        if !active[ch] {
                            return 0.0;
                        }
                        (0..4)
                            .map(|p| dot(&r[ch][p][row.clone()], &z[ch][p][row.clone()]))
                            .sum()
                    })
                })
            };
            let mut beta = [0.0f32; 2];
            for ch in 0..2 {
                if !active[ch] {
                    continue;
                }
                if rz[ch].is_nan() || rz[ch] <= 0.0 {
                    break 'iterate true;
                }
                beta[ch] = if first {
                    0.0
                } else {
                    (rz[ch] / rz_old[ch]) as f32
                };
                rz_old[ch] = rz[ch];
            }
            // x += α p (the last iteration's step), then p = z + β p.
            let [[p00, p01, p02, p03], [p10, p11, p12, p13]] = &mut self.p;
            let [[x00, x01, x02, x03], [x10, x11, x12, x13]] = &mut self.x;
            let arrays = [
                p00, p01, p02, p03, p10, p11, p12, p13, x00, x01, x02, x03, x10, x11, x12, x13,
            ]
            .map(|a| &mut a[..]);
            rows(quad, arrays, |yy, mut out| {
                let row = quad.at(yy, 0) - 1..quad.at(yy + 1, 0) - 1;
                let (ps, xs) = out.split_at_mut(8);
                for (k, (p, x)) in ps.iter_mut().zip(xs).enumerate() {
                    let ch = k / 4;
                    if let Some(a) = pending[ch] {
                        add_scaled(x, a, p);
                    }
                    if active[ch] {
                        let b = beta[ch];
                        for (p, &z) in p.iter_mut().zip(&z[ch][k % 4][row.clone()]) {
                            *p = z + b * *p;
                        }
                    }
                }
                [0.0; 2]
            });
            first = false;
            // q = A p, held in level 0's right-hand side, free between cycles.
            let mut q = std::mem::take(&mut self.levels[0].b);
            let pap = Self::apply(&self.levels[0], &self.p, &mut q);
            // A channel is updated only if it and the active ones before it
            // did not break down.
            let mut pap_broke = false;
            let mut alpha = [None; 2];
            for ch in 0..2 {
                if !active[ch] {
                    continue;
                }
                if pap[ch].is_nan() || pap[ch] <= 0.0 {
                    pap_broke = true;
                    break;
                }
                alpha[ch] = Some((rz_old[ch] / pap[ch]) as f32);
            }
            // r −= α q; x += α p waits for the next pass over p.
            let [[r00, r01, r02, r03], [r10, r11, r12, r13]] = &mut self.r;
            let arrays = [r00, r01, r02, r03, r10, r11, r12, r13].map(|a| &mut a[..]);
            let rr = rows(quad, arrays, |yy, rs| {
                let row = quad.at(yy, 0) - 1..quad.at(yy + 1, 0) - 1;
                let mut rr = [0.0; 2];
                for (k, r) in rs.into_iter().enumerate() {
                    let ch = k / 4;
                    let Some(a) = alpha[ch] else {
                        continue;
                    };
                    add_scaled(r, -a, &q[ch][k % 4][row.clone()]);
                    rr[ch] += dot(r, r);
                }
                rr
            });
            pending = alpha;
            for ch in 0..2 {
                if alpha[ch].is_some() {
                    rnorm[ch] = rr[ch].sqrt();
                    if rnorm[ch] <= tol * bnorm[ch] {
                        active[ch] = false;
                    }
                }
            }
            self.levels[0].b = q;
            if pap_broke {
                break true;
            }
        };
        self.step_x(pending);
        if broke {
            return Err(Breakdown);
        }
        let rel = [0, 1].map(|ch| {
            if bnorm[ch] > 0.0 {
                (rnorm[ch] / bnorm[ch]) as f32
            } else {
                0.0
            }
        });
        Ok(SolveStats {
            iterations: *iterations,
            relative_residual: rel,
            converged: (0..2).all(|ch| f64::from(rel[ch]) <= tol),
        })
    }
}

/// Regions of at least this many pixels joined by strong affinities are
/// candidates for the preconditioner's region space...
const REGION_MIN_PIXELS: usize = 1024;
/// ...the largest this many of them.
const MAX_REGIONS: usize = 64;
/// Neighbours whose affinity (before the floor) is at least this join one region.
const REGION_JOIN: f32 = 0.5;

/// A coupling across a region's boundary: the cell inside, the cell
/// outside (each `parity << 30 | index`), their coupling, and the
/// candidate region outside (`u16::MAX`: none).
#[derive(Clone, Copy, Debug)]
struct Crossing {
    inside: u32,
    outside: u32,
    w: f32,
    other: u16,
}

/// A cell of the parity layout packed into a `u32`.
fn packed((p, i): (usize, usize)) -> u32 {
    ((p as u32) << 30) | i as u32
}

fn unpacked(c: u32) -> (usize, usize) {
    ((c >> 30) as usize, (c & ((1 << 30) - 1)) as usize)
}

/// The preconditioner's space of whole regions (deflation).
///
/// A region walled off by strong luma edges with no data of its own (a
/// window pane behind its glazing bars, with no hint in it) takes its
/// colour from the faint couplings across its walls, and multigrid
/// resolves that colour slowly: CG spends its last iterations on it. Such
/// "floating" regions are found per solve among the candidates (large
/// regions of strongly joined pixels, found once from the luma), and the
/// preconditioned residual is corrected on their indicators `Z` with the
/// exact Galerkin solve, `z ← z − Z (ZᵀAZ)⁻¹ Zᵀ (A z − r)` (the A-DEF2
/// deflation of Tang, Nabben, Vuik and Erlangga, which keeps CG stable in
/// rounding). Everything it touches is the floating regions' own cells and
/// the couplings across their walls, so it costs nothing where no region
/// floats.
#[derive(Clone, Debug, Default)]
struct Regions {
    /// Per candidate, its runs of pixels `[y, x0, x1)`.
    runs: Vec<Vec<[u32; 3]>>,
    /// Per candidate, the couplings across its boundary.
    crossings: Vec<Vec<Crossing>>,
    /// The couplings' part of `ZᵀAZ` among the candidates (row-major).
    smooth: Vec<f64>,
    /// The floating candidates of the current solve, and the Cholesky
    /// factor of their `ZᵀAZ` (row-major, lower triangle).
    floating: Vec<usize>,
    factor: Vec<f64>,
}

/// Union-find root of `i`, halving paths.
fn root(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let up = parent[parent[i as usize] as usize];
        parent[i as usize] = up;
        i = up;
    }
    i
}

impl Regions {
    /// Finds the candidate regions of `luma`.
    fn new(luma: &LumaImage, params: &SolverParams, quad: Quad) -> Self {
        let (w, h) = (luma.width, luma.height);
        if w * h < REGION_MIN_PIXELS || w >= 1 << 29 {
            return Self::default();
        }
        let y = &luma.data;
        let a = Affinity::new(params);
        // The luma step at which exp(−d²/2σ²) falls to REGION_JOIN.
        let join = (-(REGION_JOIN.ln()) / a.k).sqrt();
        let joined = |i: usize, j: usize| (y[j] - y[i]).abs() <= join;
        // Runs of horizontally joined pixels, row by row in parallel.
        let min_rows = (CELLS_PER_TASK / w).max(1);
        let rows: Vec<Vec<[u32; 2]>> = (0..h)
            .into_par_iter()
            .with_min_len(min_rows)
            .map(|r| {
                let base = r * w;
                let mut out = Vec::new();
                let mut start = 0;
                for x in 1..=w {
                    if x == w || !joined(base + x - 1, base + x) {
                        out.push([start as u32, x as u32]);
                        start = x;
                    }
                }
                out
            })
            .collect();
        let mut first = Vec::with_capacity(h + 1);
        let mut total = 0u32;
        for r in &rows {
            first.push(total);
            total += r.len() as u32;
        }
        first.push(total);
        // Runs joined vertically somewhere along their overlap are one region.
        let mut parent: Vec<u32> = (0..total).collect();
        for r in 1..h {
            let (above, below) = (&rows[r - 1], &rows[r]);
            let (mut ia, mut ib) = (0, 0);
            let mut last = (u32::MAX, u32::MAX);
            for x in 0..w {
                if x as u32 >= above[ia][1] {
                    ia += 1;
                }
                if x as u32 >= below[ib][1] {
                    ib += 1;
                }
                let (ra, rb) = (first[r - 1] + ia as u32, first[r] + ib as u32);
                if (ra, rb) != last && joined((r - 1) * w + x, r * w + x) {
                    last = (ra, rb);
                    let (ta, tb) = (root(&mut parent, ra), root(&mut parent, rb));
                    if ta != tb {
                        parent[ta.max(tb) as usize] = ta.min(tb);
                    }
                }
            }
        }
        // Sizes of the regions, and the largest as candidates.
        let mut size = vec![0u32; total as usize];
        for (r, runs) in rows.iter().enumerate() {
            for (k, run) in runs.iter().enumerate() {
                let t = root(&mut parent, first[r] + k as u32);
                size[t as usize] += run[1] - run[0];
            }
        }
        let mut big: Vec<(u32, u32)> = size
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n as usize >= REGION_MIN_PIXELS)
            .map(|(t, &n)| (n, t as u32))
            .collect();
        big.sort_unstable_by(|a, b| b.cmp(a));
        big.truncate(MAX_REGIONS);
        let count = big.len();
        if count == 0 {
            return Self::default();
        }
        // Root → candidate, reusing `size`.
        size.fill(u32::MAX);
        for (k, &(_, t)) in big.iter().enumerate() {
            size[t as usize] = k as u32;
        }
        let mut runs = vec![Vec::new(); count];
        // Each pixel's candidate (u16::MAX: none), row by row.
        let mut region = vec![u16::MAX; w * h];
        for (r, row_runs) in rows.iter().enumerate() {
            for (k, run) in row_runs.iter().enumerate() {
                let c = size[parent[(first[r] + k as u32) as usize] as usize];
                if (c as usize) < count {
                    runs[c as usize].push([r as u32, run[0], run[1]]);
                    region[r * w + run[0] as usize..r * w + run[1] as usize].fill(c as u16);
                }
            }
        }
        // The couplings between pixels of different regions, one of them a
        // candidate.
        let crossed: Vec<Vec<(usize, usize)>> = (0..h)
            .into_par_iter()
            .with_min_len(min_rows)
            .map(|r| {
                let mut out = Vec::new();
                for x in 0..w {
                    let i = r * w + x;
                    if x + 1 < w && region[i] != region[i + 1] {
                        out.push((i, i + 1));
                    }
                    if r + 1 < h && region[i] != region[i + w] {
                        out.push((i, i + w));
                    }
                }
                out
            })
            .collect();
        let mut crossings = vec![Vec::new(); count];
        let mut smooth = vec![0.0f64; count * count];
        let cell = |i: usize| packed(quad.locate(i / w, i % w));
        for (i, j) in crossed.into_iter().flatten() {
            let c = a.at(y[j] - y[i]);
            let (ri, rj) = (region[i], region[j]);
            let (ki, kj) = (ri as usize, rj as usize);
            // Seen from each side that is a candidate.
            for (inside, outside, k, other) in [(i, j, ki, rj), (j, i, kj, ri)] {
                if k < count {
                    crossings[k].push(Crossing {
                        inside: cell(inside),
                        outside: cell(outside),
                        w: c,
                        other,
                    });
                    smooth[k * count + k] += f64::from(c);
                }
            }
            if ki < count && kj < count {
                smooth[ki * count + kj] -= f64::from(c);
                smooth[kj * count + ki] -= f64::from(c);
            }
        }
        Self {
            runs,
            crossings,
            smooth,
            floating: Vec::new(),
            factor: Vec::new(),
        }
    }

    /// Calls `f(parity, range)` for the cells of run `[y, x0, x1)`: those of
    /// even `x`, then those of odd `x`, each a contiguous range of one
    /// parity array.
    fn cells_of(
        quad: Quad,
        [y, x0, x1]: [u32; 3],
        mut f: impl FnMut(usize, std::ops::Range<usize>),
    ) {
        let (y, x0, x1) = (y as usize, x0 as usize, x1 as usize);
        for px in 0..2 {
            let (lo, hi) = ((x0 + 1 - px) / 2, (x1 + 1 - px) / 2);
            if lo < hi {
                let p = 2 * (y & 1) + px;
                let base = quad.at(y >> 1, 0);
                f(p, base + lo..base + hi);
            }
        }
    }

    /// Calls `f(parity, range)` for every cell of candidate `k` (see
    /// [`cells_of`](Self::cells_of)).
    fn for_cells(&self, quad: Quad, k: usize, mut f: impl FnMut(usize, std::ops::Range<usize>)) {
        for &run in &self.runs[k] {
            Self::cells_of(quad, run, &mut f);
        }
    }

    /// Picks this solve's floating regions (data, `W + ε` per cell, below
    /// the coupling across their walls) and factors their `ZᵀAZ`.
    fn prepare(&mut self, quad: Quad, data: &Phases) {
        let count = self.runs.len();
        // Each candidate's data, summed only as far as it can still float.
        let sums: Vec<Option<f64>> = (0..count)
            .into_par_iter()
            .map(|k| {
                let walls = self.smooth[k * count + k];
                let mut s = 0.0f64;
                for &run in &self.runs[k] {
                    Self::cells_of(quad, run, |p, cells| {
                        let d = &data[p][cells];
                        s += f64::from(lanes_sum(d.len(), |i| d[i]));
                    });
                    if s >= walls {
                        return None;
                    }
                }
                Some(s)
            })
            .collect();
        let (floating, data_sums): (Vec<usize>, Vec<f64>) = sums
            .into_iter()
            .enumerate()
            .filter_map(|(k, s)| Some((k, s?)))
            .unzip();
        self.floating = floating;
        let n = self.floating.len();
        let a = &mut self.factor;
        a.clear();
        a.resize(n * n, 0.0);
        for (u, &k) in self.floating.iter().enumerate() {
            for (v, &l) in self.floating.iter().enumerate() {
                a[u * n + v] = self.smooth[k * count + l];
            }
            a[u * n + u] += data_sums[u];
        }
        cholesky(a, n);
    }

    /// `(ZᵀAZ)⁻¹ v` in place, over the floating regions.
    fn solve(&self, v: &mut [f64]) {
        cholesky_solve(&self.factor, self.floating.len(), v);
    }

    /// The A-DEF2 correction of a preconditioned residual `z` (level 0's
    /// `x`) for the residual `r`: `z ← z − Z (ZᵀAZ)⁻¹ Zᵀ (A z − r)`. `diag`
    /// and `fixed` give each cell's data as `diag − fixed`.
    fn correct(&self, quad: Quad, diag: &Phases, fixed: &Phases, r: &Field, z: &mut Field) {
        if self.floating.is_empty() {
            return;
        }
        // Zᵀ (A z − r) per channel: each region's data and its walls'
        // couplings (the couplings inside a region cancel); regions in
        // parallel.
        let zz = &*z;
        let sums: Vec<[f64; 2]> = self
            .floating
            .par_iter()
            .map(|&k| {
                let mut sum = [0.0f64; 2];
                self.for_cells(quad, k, |p, cells| {
                    let (d, f) = (&diag[p][cells.clone()], &fixed[p][cells.clone()]);
                    for (ch, s) in sum.iter_mut().enumerate() {
                        let (z, r) = (&zz[ch][p][cells.clone()], &r[ch][p][cells.clone()]);
                        *s += f64::from(lanes_sum(d.len(), |i| (d[i] - f[i]) * z[i] - r[i]));
                    }
                });
                for x in &self.crossings[k] {
                    let ((pi, i), (pj, j)) = (unpacked(x.inside), unpacked(x.outside));
                    for (ch, s) in sum.iter_mut().enumerate() {
                        *s += f64::from(x.w * (zz[ch][pi][i] - zz[ch][pj][j]));
                    }
                }
                sum
            })
            .collect();
        for ch in 0..2 {
            let mut s: Vec<f64> = sums.iter().map(|s| s[ch]).collect();
            self.solve(&mut s);
            for (&k, &m) in self.floating.iter().zip(&s) {
                let m = m as f32;
                self.for_cells(quad, k, |p, cells| {
                    z[ch][p][cells].iter_mut().for_each(|v| *v -= m);
                });
            }
        }
    }

    /// Starts a solve in the floating regions' space: `x += Z y` and
    /// `r −= A Z y`, `y = (ZᵀAZ)⁻¹ Zᵀ r`, so that `Zᵀ r = 0`.
    fn start(&self, quad: Quad, diag: &Phases, fixed: &Phases, x: &mut Field, r: &mut Field) {
        let n = self.floating.len();
        if n == 0 {
            return;
        }
        // Each candidate's place among the floating ones.
        let mut place = vec![None; self.runs.len()];
        for (u, &k) in self.floating.iter().enumerate() {
            place[k] = Some(u);
        }
        for ch in 0..2 {
            let mut y = vec![0.0f64; n];
            for (u, &k) in self.floating.iter().enumerate() {
                self.for_cells(quad, k, |p, cells| {
                    y[u] += r[ch][p][cells].iter().map(|&v| f64::from(v)).sum::<f64>();
                });
            }
            self.solve(&mut y);
            for (u, &k) in self.floating.iter().enumerate() {
                let v = y[u] as f32;
                self.for_cells(quad, k, |p, cells| {
                    let (d, f) = (&diag[p][cells.clone()], &fixed[p][cells.clone()]);
                    x[ch][p][cells.clone()].iter_mut().for_each(|x| *x += v);
                    let rr = &mut r[ch][p][cells];
                    for ((r, &d), &f) in rr.iter_mut().zip(d).zip(f) {
                        *r -= (d - f) * v;
                    }
                });
                for c in &self.crossings[k] {
                    let ((pi, i), (pj, j)) = (unpacked(c.inside), unpacked(c.outside));
                    let other = place.get(c.other as usize).copied().flatten();
                    let outside = other.map_or(0.0, |o| y[o] as f32);
                    r[ch][pi][i] -= c.w * (v - outside);
                    // A cell outside every floating region is seen from
                    // this side only.
                    if other.is_none() {
                        r[ch][pj][j] -= c.w * (outside - v);
                    }
                }
            }
        }
    }
}

/// `y ← A⁻¹ y` for the factor `l` of `A` that [`cholesky`] leaves.
#[inline]
fn cholesky_solve(l: &[f64], n: usize, y: &mut [f64]) {
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
}

/// `Σ term(i)` for `i` in `0..n`, in eight f32 lanes (so it vectorises).
#[inline]
fn lanes_sum(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let full = n / 8 * 8;
    for base in (0..full).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += term(base + l);
        }
    }
    (full..n).fold(acc.iter().sum(), |s, i| s + term(i))
}

/// In-place Cholesky factor (lower triangle) of the `n × n` row-major
/// positive definite `a`.
fn cholesky(a: &mut [f64], n: usize) {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        // The matrix is positive definite; guard against rounding anyway.
        let d = d.max(1e-300).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
}

/// `e^(−x)` for `x ≥ 0` (about 1e−38 beyond 86) to a few 1e−6 relative
/// (2e−7 for `x` up to 1, where it matters), in plain arithmetic that
/// vectorises: `2^t`, `t = −x log₂e`,
/// split into the nearest integer (added to the exponent bits) and a
/// fraction in `[−½, ½]` (a Taylor polynomial).
fn exp_neg(x: f32) -> f32 {
    // Adding 1.5 · 2²³ rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const C: [f32; 7] = [
        1.0,
        std::f32::consts::LN_2,
        0.240_226_5,
        0.055_504_11,
        0.009_618_129,
        0.001_333_355_8,
        1.540_353e-4,
    ];
    let t = (-x * std::f32::consts::LOG2_E).max(-125.0);
    let r = t + MAGIC;
    let f = t - (r - MAGIC);
    let i = r.to_bits().wrapping_sub(MAGIC.to_bits());
    let p = C[0] + f * (C[1] + f * (C[2] + f * (C[3] + f * (C[4] + f * (C[5] + f * C[6])))));
    p * f32::from_bits(i.wrapping_add(127) << 23)
}

/// The luma affinity `λ (exp(−d² / 2σ²) + floor)` for a luma step `d`.
#[derive(Clone, Copy, Debug)]
struct Affinity {
    k: f32,
    lambda: f32,
    floor: f32,
}

impl Affinity {
    fn new(params: &SolverParams) -> Self {
        Self {
            k: 1.0 / (2.0 * params.sigma * params.sigma),
            lambda: params.smoothness,
            floor: params.affinity_floor,
        }
    }

    fn at(&self, d: f32) -> f32 {
        self.lambda * (exp_neg(d * d * self.k) + self.floor)
    }
}

/// Row-major affinities: `right[i]` couples pixel `i` with its right
/// neighbour, `down[i]` with the one below (0 past the border).
fn affinities(luma: &LumaImage, params: &SolverParams) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (luma.width, luma.height);
    let y = &luma.data;
    let a = Affinity::new(params);
    let mut right = vec![0.0; w * h];
    let mut down = vec![0.0; w * h];
    if w == 0 {
        return (right, down);
    }
    right
        .par_chunks_mut(w)
        .zip(down.par_chunks_mut(w))
        .enumerate()
        .for_each(|(row, (r, d))| {
            let here = &y[row * w..(row + 1) * w];
            for x in 0..w.saturating_sub(1) {
                r[x] = a.at(here[x + 1] - here[x]);
            }
            if row + 1 < h {
                let below = &y[(row + 1) * w..(row + 2) * w];
                for x in 0..w {
                    d[x] = a.at(below[x] - here[x]);
                }
            }
        });
    (right, down)
}

/// The same affinities straight into parity arrays.
fn affinities_quad(luma: &LumaImage, params: &SolverParams, quad: Quad) -> (Phases, Phases) {
    const BLOCK: usize = 64;
    let (w, h) = (luma.width, luma.height);
    let y = &luma.data;
    let a = Affinity::new(params);
    let mut right = phases(quad);
    let mut down = phases(quad);
    let [r0, r1, r2, r3] = &mut right;
    let [d0, d1, d2, d3] = &mut down;
    for (py, arrays) in [(0, [r0, r1, d0, d1]), (1, [r2, r3, d2, d3])] {
        rows(quad, arrays.map(|v| &mut v[..]), |yy, [ra, rb, da, db]| {
            let yi = 2 * yy + py;
            if yi >= h {
                return [0.0; 2];
            }
            let here = &y[yi * w..(yi + 1) * w];
            let below = if yi + 1 < h {
                Some(&y[(yi + 1) * w..(yi + 2) * w])
            } else {
                None
            };
            // Blocks of contiguous pixels (vectorised), then split by parity.
            let mut buf = [[0.0f32; BLOCK]; 2];
            for x0 in (0..w).step_by(BLOCK) {
                let len = BLOCK.min(w - x0);
                let ends = (x0 + len).min(w - 1);
                for x in x0..ends {
                    buf[0][x - x0] = a.at(here[x + 1] - here[x]);
                }
                for x in ends..x0 + len {
                    buf[0][x - x0] = 0.0;
                }
                match below {
                    Some(b) => {
                        for x in x0..x0 + len {
                            buf[1][x - x0] = a.at(b[x] - here[x]);
                        }
                    }
                    None => buf[1] = [0.0; BLOCK],
                }
                for (j, (&r, &d)) in buf[0][..len].iter().zip(&buf[1][..len]).enumerate() {
                    let (x, k) = (x0 + j, 1 + (x0 + j) / 2);
                    if x % 2 == 0 {
                        (ra[k], da[k]) = (r, d);
                    } else {
                        (rb[k], db[k]) = (r, d);
                    }
                }
            }
            [0.0; 2]
        });
    }
    (right, down)
}

/// One data term's contribution at a pixel: `(w, w t_cb, w t_cr)`, nothing
/// for negative or non-finite weights or non-finite targets.
fn contribution(w: f32, cb: f32, cr: f32) -> (f32, f32, f32) {
    let ok = w > 0.0 && w.is_finite() && cb.is_finite() && cr.is_finite();
    let w = if ok { w } else { 0.0 };
    (
        w,
        if ok { w * cb } else { 0.0 },
        if ok { w * cr } else { 0.0 },
    )
}

/// Checks that every term holds `width * height` values.
fn check_start(init: &ChromaField, w: usize, h: usize) -> Result<()> {
    if init.width != w || init.height != h || init.cb.len() != w * h || init.cr.len() != w * h {
        return Err(Error::SizeMismatch {
            what: format!(
                "chroma solver initial guess is {}x{} ({} Cb, {} Cr values), the luma is {w}x{h}",
                init.width,
                init.height,
                init.cb.len(),
                init.cr.len()
            ),
        });
    }
    Ok(())
}

fn check_terms(terms: &[DataTerm<'_>], width: usize, height: usize) -> Result<()> {
    let n = width * height;
    for (t, term) in terms.iter().enumerate() {
        for (name, len) in [
            ("cb", term.cb.len()),
            ("cr", term.cr.len()),
            ("weight", term.weight.len()),
        ] {
            if len != n {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "chroma solver data term {t}: `{name}` holds {len} values, the {width}x{height} luma needs {n}"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Row-major `W + ε` and `b = Σ w t` per channel, from the data terms
/// (already size-checked).
fn assemble_data(terms: &[DataTerm<'_>], n: usize, epsilon: f32) -> (Vec<f32>, Channels<Vec<f32>>) {
    let mut data = vec![epsilon; n];
    let (mut b0, mut b1) = (vec![0.0; n], vec![0.0; n]);
    for term in terms {
        for i in 0..n {
            let (w, c0, c1) = contribution(term.weight[i], term.cb[i], term.cr[i]);
            data[i] += w;
            b0[i] += c0;
            b1[i] += c1;
        }
    }
    (data, [b0, b1])
}

/// `W + ε` and `b = Σ w t` per channel straight into parity arrays (0 where
/// there is no cell), from the data terms (already size-checked).
fn assemble_quad(
    terms: &[DataTerm<'_>],
    quad: Quad,
    epsilon: f32,
    data: &mut Phases,
    rhs: &mut Field,
) {
    let (w, h) = (quad.width, quad.height);
    let [d0, d1, d2, d3] = data;
    let [[b00, b01, b02, b03], [b10, b11, b12, b13]] = rhs;
    for (py, arrays) in [
        (0, [d0, d1, b00, b01, b10, b11]),
        (1, [d2, d3, b02, b03, b12, b13]),
    ] {
        let arrays = arrays.map(|a| &mut a[..]);
        rows(quad, arrays, |yy, [da, db, b0a, b0b, b1a, b1b]| {
            let y = 2 * yy + py;
            for row in [
                &mut *da, &mut *db, &mut *b0a, &mut *b0b, &mut *b1a, &mut *b1b,
            ] {
                row.fill(0.0);
            }
            if y >= h {
                return [0.0; 2];
            }
            let counts = [w.div_ceil(2), w / 2];
            da[1..1 + counts[0]].fill(epsilon);
            db[1..1 + counts[1]].fill(epsilon);
            for term in terms {
                let at = y * w..(y + 1) * w;
                let (tw, tb, tr) = (&term.weight[at.clone()], &term.cb[at.clone()], &term.cr[at]);
                for (px, d, c0, c1) in [
                    (0, &mut *da, &mut *b0a, &mut *b1a),
                    (1, &mut *db, &mut *b0b, &mut *b1b),
                ] {
                    for k in 0..counts[px] {
                        let x = 2 * k + px;
                        let (cw, v0, v1) = contribution(tw[x], tb[x], tr[x]);
                        d[1 + k] += cw;
                        c0[1 + k] += v0;
                        c1[1 + k] += v1;
                    }
                }
            }
            [0.0; 2]
        });
    }
}

/// The 2-norm of a field channel.
fn norm(f: &Phases) -> f64 {
    f.iter().map(|a| par_dot(a, a)).sum::<f64>().sqrt()
}

/// `y += a x`.
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    y.par_chunks_mut(CELLS_PER_TASK)
        .zip(x.par_chunks(CELLS_PER_TASK))
        .for_each(|(y, x)| add_scaled(y, a, x));
}

/// `y += a x` on one thread (for a row, inside a parallel pass).
fn add_scaled(y: &mut [f32], a: f32, x: &[f32]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
}

/// `y += a x`, returning `Σ y²`.
fn axpy_norm(y: &mut [f32], a: f32, x: &[f32]) -> f64 {
    y.par_chunks_mut(CELLS_PER_TASK)
        .zip(x.par_chunks(CELLS_PER_TASK))
        .map(|(y, x)| {
            add_scaled(y, a, x);
            dot(y, y)
        })
        .sum()
}

/// `y = x + b y`.
fn xpby(y: &mut [f32], x: &[f32], b: f32) {
    y.par_chunks_mut(CELLS_PER_TASK)
        .zip(x.par_chunks(CELLS_PER_TASK))
        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, &x)| *y = x + b * *y));
}

fn check_luma(luma: &LumaImage) -> Result<()> {
    if luma.data.len() != luma.width * luma.height {
        return Err(Error::SizeMismatch {
            what: format!(
                "chroma solver luma is {}x{} but holds {} values",
                luma.width,
                luma.height,
                luma.data.len()
            ),
        });
    }
    Ok(())
}

/// The system in plain row-major form, for the baseline and for measuring.
struct System {
    width: usize,
    height: usize,
    right: Vec<f32>,
    down: Vec<f32>,
    data: Vec<f32>,
    rhs: Channels<Vec<f32>>,
}

impl System {
    fn new(luma: &LumaImage, terms: &[DataTerm<'_>], params: SolverParams) -> Result<Self> {
        check_luma(luma)?;
        let params = params.sanitized();
        let (right, down) = affinities(luma, &params);
        check_terms(terms, luma.width, luma.height)?;
        let (data, rhs) = assemble_data(terms, luma.width * luma.height, params.neutral_weight);
        Ok(Self {
            width: luma.width,
            height: luma.height,
            right,
            down,
            data,
            rhs,
        })
    }

    /// `(A x)_i = data_i x_i + Σ_j a_ij (x_i − x_j)` at pixel `i`, in `f64`.
    fn apply_at(&self, x: &[f32], i: usize) -> f64 {
        let (w, h) = (self.width, self.height);
        let (px, py) = (i % w, i / w);
        let xi = f64::from(x[i]);
        let mut s = f64::from(self.data[i]) * xi;
        let mut edge = |a: f32, j: usize| s += f64::from(a) * (xi - f64::from(x[j]));
        if px + 1 < w {
            edge(self.right[i], i + 1);
        }
        if px > 0 {
            edge(self.right[i - 1], i - 1);
        }
        if py + 1 < h {
            edge(self.down[i], i + w);
        }
        if py > 0 {
            edge(self.down[i - w], i - w);
        }
        s
    }

    /// `out = A x`.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.par_chunks_mut(CELLS_PER_TASK)
            .enumerate()
            .for_each(|(j, o)| {
                for (k, v) in o.iter_mut().enumerate() {
                    *v = self.apply_at(x, j * CELLS_PER_TASK + k) as f32;
                }
            });
    }
}

/// Solves the same system as [`ChromaSolver`] with Jacobi-preconditioned
/// conjugate gradients, from neutral, until `‖b − A x‖ ≤ params.tolerance · ‖b‖`
/// per channel or `params.max_iterations` iterations: simple and clearly
/// correct, but slow on large images with sparse data. A reference for tests
/// and benchmarks.
///
/// # Errors
/// [`Error::SizeMismatch`] as [`ChromaSolver::solve`].
pub fn solve_cg_baseline(
    luma: &LumaImage,
    terms: &[DataTerm<'_>],
    params: SolverParams,
    initial: Option<&ChromaField>,
) -> Result<(ChromaField, SolveStats)> {
    let sys = System::new(luma, terms, params)?;
    if let Some(start) = initial {
        check_start(start, sys.width, sys.height)?;
    }
    let params = params.sanitized();
    let n = sys.width * sys.height;
    let mut inv_diag = sys.data.clone();
    for (i, d) in inv_diag.iter_mut().enumerate() {
        let (x, y, w) = (i % sys.width, i / sys.width, sys.width);
        let mut s = *d;
        if x + 1 < w {
            s += sys.right[i];
        }
        if x > 0 {
            s += sys.right[i - 1];
        }
        if y + 1 < sys.height {
            s += sys.down[i];
        }
        if y > 0 {
            s += sys.down[i - w];
        }
        *d = 1.0 / s;
    }
    let mut out = initial
        .cloned()
        .unwrap_or_else(|| ChromaField::neutral(sys.width, sys.height));
    let mut stats = SolveStats {
        converged: true,
        ..SolveStats::default()
    };
    let (mut r, mut z, mut p, mut q) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for ch in 0..2 {
        let b = &sys.rhs[ch];
        let x = if ch == 0 { &mut out.cb } else { &mut out.cr };
        let bnorm = par_dot(b, b).sqrt();
        sys.apply(x, &mut q);
        r.par_iter_mut()
            .zip(b)
            .zip(&q)
            .for_each(|((r, &b), &ax)| *r = b - ax);
        let mut rnorm = par_dot(&r, &r).sqrt();
        let mut rz_old = 0.0;
        let mut it = 0;
        while rnorm > f64::from(params.tolerance) * bnorm && it < params.max_iterations {
            it += 1;
            z.par_iter_mut()
                .zip(&r)
                .zip(&inv_diag)
                .for_each(|((z, &r), &d)| *z = r * d);
            let rz = par_dot(&r, &z);
            let beta = if it == 1 { 0.0 } else { rz / rz_old };
            rz_old = rz;
            xpby(&mut p, &z, beta as f32);
            sys.apply(&p, &mut q);
            let pap = par_dot(&p, &q);
            if pap.is_nan() || pap <= 0.0 {
                break;
            }
            let alpha = (rz / pap) as f32;
            axpy(x, alpha, &p);
            rnorm = axpy_norm(&mut r, -alpha, &q).sqrt();
        }
        let rel = if bnorm > 0.0 {
            (rnorm / bnorm) as f32
        } else {
            0.0
        };
        stats.iterations = stats.iterations.max(it);
        stats.relative_residual[ch] = rel;
        stats.converged &= rel <= params.tolerance;
    }
    Ok((out, stats))
}

/// Residual and energy of `chroma` as a solution for `terms`, computed from
/// scratch in `f64`: the fair yardstick for comparing solvers.
///
/// # Errors
/// [`Error::SizeMismatch`] when the sizes of `luma`, `terms` and `chroma` disagree.
pub fn measure_solution(
    luma: &LumaImage,
    terms: &[DataTerm<'_>],
    params: SolverParams,
    chroma: &ChromaField,
) -> Result<SolutionQuality> {
    let sys = System::new(luma, terms, params)?;
    let n = sys.width * sys.height;
    if chroma.width != sys.width
        || chroma.height != sys.height
        || chroma.cb.len() != n
        || chroma.cr.len() != n
    {
        return Err(Error::SizeMismatch {
            what: format!(
                "chroma field is {}x{}, the luma is {}x{}",
                chroma.width, chroma.height, sys.width, sys.height
            ),
        });
    }
    let mut relative_residual = [0.0; 2];
    let mut energy = 0.0;
    for (ch, x) in [&chroma.cb, &chroma.cr].into_iter().enumerate() {
        let b = &sys.rhs[ch];
        let (rr, bb, xax, bx) = (0..n)
            .into_par_iter()
            .map(|i| {
                let ax = sys.apply_at(x, i);
                let (bi, xi) = (f64::from(b[i]), f64::from(x[i]));
                ((bi - ax).powi(2), bi * bi, xi * ax, bi * xi)
            })
            .reduce(
                || (0.0, 0.0, 0.0, 0.0),
                |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3),
            );
        relative_residual[ch] = if bb > 0.0 {
            (rr / bb).sqrt()
        } else {
            rr.sqrt()
        };
        // E = xᵀAx − 2bᵀx + Σ_k w_k t_k²; the constant is the same for every
        // candidate, so it is left out: only differences matter.
        energy += xax - 2.0 * bx;
    }
    Ok(SolutionQuality {
        relative_residual,
        energy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three regions of distinct gray behind sharp edges: a background, a
    /// bright rectangle and a dark disc.
    fn regions(w: usize, h: usize) -> (LumaImage, Vec<u8>) {
        let mut data = vec![0.0f32; w * h];
        let mut label = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (fx, fy) = (x as f32, y as f32);
                let grain = 0.01 * (((x * 7 + y * 13) % 5) as f32 - 2.0);
                if (fx - 150.0).powi(2) + (fy - 75.0).powi(2) < 30.0f32.powi(2) {
                    data[i] = 0.15 + grain;
                    label[i] = 2;
                } else if (20..90).contains(&x) && (30..120).contains(&y) {
                    data[i] = 0.8 + grain;
                    label[i] = 1;
                } else {
                    data[i] = 0.45 + grain;
                }
            }
        }
        (
            LumaImage {
                width: w,
                height: h,
                data,
            },
            label,
        )
    }

    #[test]
    fn hints_alone_fill_their_regions() {
        let (w, h) = (200, 150);
        let (luma, label) = regions(w, h);
        let colours = [(0.1f32, -0.1f32), (-0.15, 0.05), (0.05, 0.2)];
        let seeds = [(180usize, 20usize), (50, 70), (150, 75)];
        let mut cb = vec![0.0; w * h];
        let mut cr = vec![0.0; w * h];
        let mut weight = vec![0.0; w * h];
        for (k, &(sx, sy)) in seeds.iter().enumerate() {
            for y in sy - 2..=sy + 2 {
                for x in sx - 2..=sx + 2 {
                    let i = y * w + x;
                    (cb[i], cr[i], weight[i]) = (colours[k].0, colours[k].1, 1.0);
                }
            }
        }
        let terms = [DataTerm {
            cb: &cb,
            cr: &cr,
            weight: &weight,
        }];
        let out = solve_chroma(&luma, &terms, SolverParams::default()).expect("solves");
        for (k, &(tcb, tcr)) in colours.iter().enumerate() {
            let pixels: Vec<usize> = (0..w * h).filter(|&i| label[i] as usize == k).collect();
            let close = pixels
                .iter()
                .filter(|&&i| (out.cb[i] - tcb).abs() < 0.03 && (out.cr[i] - tcr).abs() < 0.03)
                .count();
            let share = close as f32 / pixels.len() as f32;
            assert!(
                share > 0.95,
                "region {k}: only {:.1}% took its hint's colour",
                share * 100.0
            );
        }
    }

    /// Dark one-pixel bars (luma 0.05) where `bar(x, y)`, on a horizontal
    /// gradient elsewhere.
    fn barred(w: usize, h: usize, bar: impl Fn(usize, usize) -> bool) -> LumaImage {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if bar(x, y) {
                    0.05
                } else {
                    0.3 + 0.4 * x as f32 / w as f32
                }
            })
            .collect();
        LumaImage {
            width: w,
            height: h,
            data,
        }
    }

    /// A window: `cols` x `rows` panes of `pane` x `pane` pixels between bars.
    fn lattice(cols: usize, rows: usize, pane: usize) -> LumaImage {
        let (w, h) = (cols * (pane + 1), rows * (pane + 1));
        barred(w, h, |x, y| {
            x % (pane + 1) == pane || y % (pane + 1) == pane
        })
    }

    /// Hint squares of 6x6 pixels in the panes listed (`(column, row)`),
    /// each its own colour.
    fn pane_hints(luma: &LumaImage, pane: usize, panes: &[(usize, usize)]) -> [Vec<f32>; 3] {
        let w = luma.width;
        let (mut cb, mut cr, mut weight) = (
            vec![0.0f32; luma.data.len()],
            vec![0.0f32; luma.data.len()],
            vec![0.0f32; luma.data.len()],
        );
        for (k, &(c, r)) in panes.iter().enumerate() {
            let (x0, y0) = (c * (pane + 1) + 20, r * (pane + 1) + 20);
            for y in y0..y0 + 6 {
                for x in x0..x0 + 6 {
                    let i = y * w + x;
                    (cb[i], cr[i], weight[i]) = (0.3 - 0.15 * k as f32, 0.1 * k as f32 - 0.2, 1.0);
                }
            }
        }
        [cb, cr, weight]
    }

    #[test]
    fn the_panes_without_hints_are_found_floating() {
        let pane = 60;
        let luma = lattice(4, 3, pane);
        let quad = Quad::new(luma.width, luma.height);
        let params = SolverParams::default();
        let mut regions = Regions::new(&luma, &params, quad);
        // The twelve panes, and the bars (one lattice of 1452 pixels).
        assert_eq!(regions.runs.len(), 13);
        let hinted = [(0, 0), (2, 1)];
        let [_, _, weight] = pane_hints(&luma, pane, &hinted);
        let mut data = phases(quad);
        let mut rhs = field(quad);
        let zeros = vec![0.0f32; weight.len()];
        let term = DataTerm {
            cb: &zeros,
            cr: &zeros,
            weight: &weight,
        };
        assemble_quad(&[term], quad, params.neutral_weight, &mut data, &mut rhs);
        regions.prepare(quad, &data);
        // A pane floats unless a hint is in it; the bars float too.
        for (k, runs) in regions.runs.iter().enumerate() {
            let [y, x0, x1] = runs[0];
            let is_pane = x1 - x0 == pane as u32;
            let at = (x0 as usize / (pane + 1), y as usize / (pane + 1));
            let floats = regions.floating.contains(&k);
            assert_eq!(
                floats,
                !(is_pane && hinted.contains(&at)),
                "region at {at:?}"
            );
        }
        assert_eq!(regions.floating.len(), 11);
    }

    #[test]
    fn walled_off_panes_get_closer_to_their_colour_at_the_same_tolerance() {
        // An open gradient with hints, and in it a window whose inner panes
        // (34x34 pixels) are walled off by one-pixel dark bars, as in the
        // solver bench.
        let (w, h) = (320, 240);
        let luma = barred(w, h, |x, y| {
            (100..240).contains(&x) && (50..190).contains(&y) && (x % 35 == 0 || y % 35 == 0)
        });
        let (mut cb, mut cr, mut weight) = (
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
            vec![0.0f32; w * h],
        );
        for (k, &(x0, y0)) in [
            (20usize, 20usize),
            (280, 30),
            (40, 200),
            (270, 210),
            (150, 20),
        ]
        .iter()
        .enumerate()
        {
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    let i = y * w + x;
                    (cb[i], cr[i], weight[i]) = (0.3 - 0.12 * k as f32, 0.1 * k as f32 - 0.2, 1.0);
                }
            }
        }
        let terms = [DataTerm {
            cb: &cb,
            cr: &cr,
            weight: &weight,
        }];
        let params = SolverParams::default();
        let solve = |regions: bool, params: SolverParams| {
            let mut solver = ChromaSolver::new(&luma, params).expect("sizes match");
            if !regions {
                solver.regions = Regions::default();
            }
            let out = solver.solve(&terms, None).expect("sizes match");
            (out, solver.last_stats())
        };
        let (exact, _) = solve(
            false,
            SolverParams {
                tolerance: 1e-8,
                max_iterations: 1000,
                ..params
            },
        );
        let (with, with_stats) = solve(true, params);
        let (without, without_stats) = solve(false, params);
        let (e_with, e_without) = (with.max_abs_diff(&exact), without.max_abs_diff(&exact));
        // The panes' colour comes through the bars' faint couplings, which
        // the residual barely sees: at the same tolerance, the regions'
        // correction ends several times closer to the exact answer
        // (about 1e-3 against 4e-3), in no more iterations.
        assert!(with_stats.converged && without_stats.converged);
        assert!(
            with_stats.iterations <= without_stats.iterations,
            "{with_stats:?} against {without_stats:?}"
        );
        assert!(e_with < 0.5 * e_without, "{e_with} against {e_without}");
    }

    #[test]
    fn agrees_with_the_conjugate_gradient_baseline() {
        let (w, h) = (96, 64);
        let (luma, _) = regions(w, h);
        let prior_cb: Vec<f32> = (0..w * h)
            .map(|i| 0.1 * ((i % w) as f32 / w as f32 - 0.5))
            .collect();
        let prior_cr: Vec<f32> = (0..w * h)
            .map(|i| 0.1 * ((i / w) as f32 / h as f32 - 0.5))
            .collect();
        let prior_w = vec![0.05f32; w * h];
        let mut hint_w = vec![0.0f32; w * h];
        let hint_cb = vec![0.2f32; w * h];
        let hint_cr = vec![-0.1f32; w * h];
        for y in 10..14 {
            for x in 30..34 {
                hint_w[y * w + x] = 2.0;
            }
        }
        let terms = [
            DataTerm {
                cb: &prior_cb,
                cr: &prior_cr,
                weight: &prior_w,
            },
            DataTerm {
                cb: &hint_cb,
                cr: &hint_cr,
                weight: &hint_w,
            },
        ];
        let params = SolverParams {
            tolerance: 1e-6,
            max_iterations: 200,
            ..SolverParams::default()
        };
        let ours = solve_chroma(&luma, &terms, params).expect("solves");
        let (base, _) = solve_cg_baseline(
            &luma,
            &terms,
            SolverParams {
                max_iterations: 100_000,
                ..params
            },
            None,
        )
        .expect("baseline solves");
        let diff = ours
            .cb
            .iter()
            .zip(&base.cb)
            .chain(ours.cr.iter().zip(&base.cr))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 2e-3, "multigrid and CG differ by {diff}");
        // The hint dominates the weak prior where both speak.
        let i = 12 * w + 32;
        assert!((ours.cb[i] - 0.2).abs() < 0.02 && (ours.cr[i] + 0.1).abs() < 0.02);
    }

    #[test]
    fn constant_data_stays_and_no_data_is_neutral() {
        let (w, h) = (64, 48);
        let (luma, _) = regions(w, h);
        let (cb, cr, wt) = (
            vec![0.12f32; w * h],
            vec![-0.07f32; w * h],
            vec![0.3f32; w * h],
        );
        let out = solve_chroma(
            &luma,
            &[DataTerm {
                cb: &cb,
                cr: &cr,
                weight: &wt,
            }],
            SolverParams::default(),
        )
        .expect("solves");
        assert!(out.cb.iter().all(|v| (v - 0.12).abs() < 1e-3));
        assert!(out.cr.iter().all(|v| (v + 0.07).abs() < 1e-3));
        let none = solve_chroma(&luma, &[], SolverParams::default()).expect("solves");
        assert!(none.cb.iter().chain(&none.cr).all(|v| v.abs() < 1e-4));
        let short = vec![0.0f32; 10];
        let bad = solve_chroma(
            &luma,
            &[DataTerm {
                cb: &short,
                cr: &short,
                weight: &short,
            }],
            SolverParams::default(),
        );
        assert!(
            bad.is_err(),
            "a term of the wrong size is an error, not a panic"
        );
    }

    #[test]
    fn a_confident_term_wins_where_it_speaks_and_the_prior_rules_elsewhere() {
        let (w, h) = (120, 90);
        let luma = LumaImage {
            width: w,
            height: h,
            data: vec![0.5; w * h],
        };
        let (prior_cb, prior_cr, prior_w) = (
            vec![-0.1f32; w * h],
            vec![0.15f32; w * h],
            vec![0.05f32; w * h],
        );
        let (hint_cb, hint_cr) = (vec![0.2f32; w * h], vec![-0.2f32; w * h]);
        let mut hint_w = vec![0.0f32; w * h];
        for y in 40..50 {
            for x in 20..30 {
                hint_w[y * w + x] = 5.0;
            }
        }
        let terms = [
            DataTerm {
                cb: &prior_cb,
                cr: &prior_cr,
                weight: &prior_w,
            },
            DataTerm {
                cb: &hint_cb,
                cr: &hint_cr,
                weight: &hint_w,
            },
        ];
        let out = solve_chroma(&luma, &terms, SolverParams::default()).expect("solves");
        let at = |x: usize, y: usize| (out.cb[y * w + x], out.cr[y * w + x]);
        let (cb, cr) = at(25, 45);
        assert!(
            (cb - 0.2).abs() < 0.02 && (cr + 0.2).abs() < 0.02,
            "inside the hint: ({cb}, {cr})"
        );
        // 40 pixels away the hint's pull (range about sqrt(λ / 0.05) ≈ 4.5
        // pixels) has died out: only the prior speaks.
        for (x, y) in [(80, 45), (25, 5), (110, 85)] {
            let (cb, cr) = at(x, y);
            assert!(
                (cb + 0.1).abs() < 2e-3 && (cr - 0.15).abs() < 2e-3,
                "at ({x}, {y}): ({cb}, {cr})"
            );
        }
    }

    /// A window grid of one-pixel dark lines on a gradient, odd-sized: the
    /// thin runs and the lumping along them are where multigrid is weakest.
    fn window(w: usize, h: usize) -> LumaImage {
        barred(w, h, |x, y| x % 12 == 5 || y % 10 == 4)
    }

    #[test]
    fn thin_lines_converge_and_match_the_baseline() {
        let (w, h) = (61, 47);
        let luma = window(w, h);
        let mut cb = vec![0.0f32; w * h];
        let mut cr = vec![0.0f32; w * h];
        let mut weight = vec![0.0f32; w * h];
        // Hints in a few panes only: the others fill through the lines' floor.
        for (k, &(x0, y0)) in [(1usize, 1usize), (30, 20), (50, 40)].iter().enumerate() {
            for y in y0..y0 + 2 {
                for x in x0..x0 + 2 {
                    let i = y * w + x;
                    (cb[i], cr[i], weight[i]) = (0.1 * k as f32 - 0.1, 0.15 - 0.1 * k as f32, 1.0);
                }
            }
        }
        let terms = [DataTerm {
            cb: &cb,
            cr: &cr,
            weight: &weight,
        }];
        let params = SolverParams {
            tolerance: 1e-6,
            max_iterations: 100,
            ..SolverParams::default()
        };
        let mut solver = ChromaSolver::new(&luma, params).expect("solves");
        assert!(
            solver
                .levels
                .iter()
                .any(|l| !l.segments[0].is_empty() && !l.segments[1].is_empty())
        );
        let ours = solver.solve(&terms, None).expect("solves");
        let stats = solver.last_stats();
        let (base, bs) = solve_cg_baseline(
            &luma,
            &terms,
            SolverParams {
                max_iterations: 100_000,
                ..params
            },
            None,
        )
        .expect("baseline solves");
        // A lattice of thin lines with hint-less panes is about the hardest
        // luma there is; plain CG needs hundreds of iterations.
        assert!(
            stats.converged && stats.iterations * 10 < bs.iterations,
            "{stats:?} vs CG {bs:?}"
        );
        let diff = ours
            .cb
            .iter()
            .zip(&base.cb)
            .chain(ours.cr.iter().zip(&base.cr))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 2e-3, "multigrid and CG differ by {diff}");
        let q = measure_solution(&luma, &terms, params, &ours).expect("sizes match");
        assert!(q.relative_residual.iter().all(|&r| r < 1e-5), "{q:?}");
    }

    #[test]
    fn a_converged_start_needs_no_iterations_and_a_wrong_sized_one_is_an_error() {
        let (w, h) = (64, 48);
        let (luma, _) = regions(w, h);
        let (cb, cr, wt) = (
            vec![0.05f32; w * h],
            vec![0.1f32; w * h],
            vec![0.02f32; w * h],
        );
        let terms = [DataTerm {
            cb: &cb,
            cr: &cr,
            weight: &wt,
        }];
        let mut solver = ChromaSolver::new(&luma, SolverParams::default()).expect("solves");
        let first = solver.solve(&terms, None).expect("solves");
        assert!(solver.last_stats().converged);
        let again = solver.solve(&terms, Some(&first)).expect("solves");
        assert_eq!(solver.last_stats().iterations, 0);
        assert_eq!(again, first);
        let wrong = ChromaField::neutral(w + 1, h);
        assert!(solver.solve(&terms, Some(&wrong)).is_err());
        let luma_bad = LumaImage {
            width: w,
            height: h,
            data: vec![0.5; 10],
        };
        assert!(ChromaSolver::new(&luma_bad, SolverParams::default()).is_err());
    }

    #[test]
    fn a_solver_built_on_a_dropped_ones_arrays_gives_the_same_colour() {
        // Big enough that its arrays are kept (SPARE_MIN_LEN), and dirty:
        // arrays handed on hold the last solve's values.
        let (w, h) = (192, 160);
        let (luma, _) = regions(w, h);
        let (cb, cr, wt) = (
            (0..w * h)
                .map(|i| (i % 7) as f32 * 0.03 - 0.1)
                .collect::<Vec<_>>(),
            (0..w * h)
                .map(|i| (i % 5) as f32 * 0.04 - 0.08)
                .collect::<Vec<_>>(),
            (0..w * h)
                .map(|i| if i % 97 == 0 { 1.0 } else { 0.0 })
                .collect::<Vec<_>>(),
        );
        let terms = [DataTerm {
            cb: &cb,
            cr: &cr,
            weight: &wt,
        }];
        let solve = || {
            ChromaSolver::new(&luma, SolverParams::default())
                .and_then(|mut s| s.solve(&terms, None))
                .expect("solves")
        };
        let first = solve();
        // The first solver is dropped: the next takes its arrays.
        let second = solve();
        assert_eq!(second, first);
        let big = zeroed(SPARE_MIN_LEN * 3);
        assert!(big.len() == SPARE_MIN_LEN * 3 && big.iter().all(|&v| v == 0.0));
        let mut dirty = zeroed(SPARE_MIN_LEN * 2);
        dirty.fill(1.0);
        recycle([dirty]);
        let again = zeroed(SPARE_MIN_LEN * 2);
        assert!(again.len() == SPARE_MIN_LEN * 2 && again.iter().all(|&v| v == 0.0));
        // New arrays start at different places within a page.
        let arrays: Vec<Arr> = (0..8).map(|_| zeroed(SPARE_MIN_LEN)).collect();
        let starts: std::collections::HashSet<usize> = arrays.iter().map(|a| a.off).collect();
        assert!(starts.len() > 1, "{starts:?}");
    }

    #[test]
    fn the_fast_exponential_is_accurate() {
        for k in 0..2000 {
            let x = k as f32 * 0.04;
            let (fast, exact) = (exp_neg(x), (-x).exp());
            // Rounding of the argument grows with x; the affinities only ever
            // need small x to be accurate (e^−x < 1e−9 beyond x = 21).
            let tolerance = (1e-6 + 1e-7 * x) * exact + 1e-38;
            assert!(
                (fast - exact).abs() <= tolerance,
                "e^-{x}: {fast} vs {exact}"
            );
        }
    }
}
