//! Keyframe propagation: colour set on a few frames of a shot follows the
//! film to every other frame of it.
//!
//! For one shot, given its frames' luma and its keyframes' chroma (with a
//! confidence each):
//!
//! 1. **Backward pass.** From each keyframe, colour is carried toward the
//!    previous keyframe (or the shot's start) frame by frame along the
//!    optical flow ([`crate::motion::carry`]), losing confidence with every
//!    frame travelled and wherever the flow is occluded or lands on
//!    different luma. After each step the chroma solver
//!    ([`crate::solver`]) re-fits the carried colour to this frame's luma
//!    edges and fills what could not be carried from its surroundings.
//! 2. **Forward pass**, the same toward the next keyframe (or the end). The
//!    two carried colours are blended by their confidences, so a frame
//!    between two keyframes takes most from the nearer one.
//! 3. The colorizer's prior (the neural model, or a reference photo's
//!    transfer) speaks where propagation has little confidence: occlusions,
//!    new objects, frames far from any keyframe. Its share fades in over a
//!    few frames where propagation stays unsure and is carried along the
//!    motion, so a pixel never switches between two colour sources from one
//!    frame to the next.
//! 4. The temporal stabiliser ([`crate::stabilise`]) smooths what flicker
//!    is left; keyframes pass exactly as set.
//!
//! The frames are visited in order in the forward pass and each finished
//! frame is handed to a callback at once, so an export streams.

use crate::flow::{FlowField, FlowParams, estimate_flow};
use crate::frame::{ChromaField, LumaImage};
use crate::memory::MemoryParams;
use crate::motion::{CarryParams, Confident, carry, match_weights};
use crate::solver::{ChromaSolver, DataTerm, SolverParams};
use crate::stabilise::{FlowsToPrevious, Stabiliser};
use crate::{Error, Result};

/// Settings of [`propagate_shot`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PropagationParams {
    /// How carried colour is trusted.
    pub carry: CarryParams,
    /// The optical flow.
    pub flow: FlowParams,
    /// The chroma solver.
    pub solver: SolverParams,
    /// Weight of carried colour in the solve, per unit of confidence. High,
    /// so the solver keeps what was carried (it must not blur the colour a
    /// little more every frame) and only fills where nothing could be
    /// carried.
    pub carried_weight: f32,
    /// Weight of the colorizer's prior, per unit of its confidence.
    pub prior_weight: f32,
    /// How colour matched from the memory of coloured frames (see
    /// [`crate::memory`]) joins. Always: where propagation stays unsure and
    /// the prior fades in, the matched colour comes in the prior's place as
    /// far as the match is confident. With a weight above 0, it is also a
    /// data term of each frame's solve, this weight per unit of its
    /// confidence, scaled by `(1 - carried confidence / matched_gate)²` (0
    /// above the gate): it then takes over at once where the flow fails.
    /// 5 by default, chosen on the shared clips c02 and c04 with two-toned
    /// cells (see [`crate::memory::CellColour::dark`]): 34.70 and 32.66 dB
    /// at 5, 34.70 and 32.55 at 10, 34.66 and 32.39 at 20, against 31.18
    /// and 32.81 with 0 (that pair with a first version of the cells that
    /// split each cell once, at its mean luma).
    pub matched_weight: f32,
    /// The carried confidence at and above which matched colour has no say
    /// (see [`matched_weight`](Self::matched_weight)), 0 to 1.
    pub matched_gate: f32,
    /// Match frames against a memory of coloured frames (keyframes and
    /// recent confident frames) where propagation fails; `None`: off. The
    /// film engine keeps the memory; see [`crate::memory`].
    pub memory: Option<MemoryParams>,
    /// Confidence given to colour the solver filled in where nothing could
    /// be carried, so it is carried on steadily rather than re-invented each
    /// frame.
    pub fill_confidence: f32,
    /// Strength of the temporal stabiliser, 0 off.
    pub stabiliser: f32,
    /// How fast the prior fades in (and out) where propagation stays unsure,
    /// per frame, 0 to 1 (1: at once). The fade is carried along the motion,
    /// so a match that fails for a frame here and there does not flash the
    /// prior's colour.
    pub prior_fade: f32,
    /// How steady the prior is held along the motion before it joins, 0 to
    /// 0.95 (0: each frame's prior as it comes). A per-frame colorizer
    /// shifts its colours a little from one frame to the next; the prior
    /// joins as a running mean carried along the flow,
    /// `p_t = (1 - s) * prior_t + s * carried(p_{t-1})`, so that shift does
    /// not reach the output where the prior shows.
    pub prior_steadiness: f32,
}

impl Default for PropagationParams {
    fn default() -> Self {
        Self {
            carry: CarryParams::default(),
            flow: FlowParams::default(),
            solver: SolverParams::default(),
            carried_weight: 20.0,
            prior_weight: 0.05,
            matched_weight: 5.0,
            matched_gate: 1.0,
            memory: None,
            fill_confidence: 0.2,
            stabiliser: 0.5,
            prior_fade: 0.1,
            prior_steadiness: 0.9,
        }
    }
}

/// A keyframe of a shot: its index within the shot and its colour.
#[derive(Clone, Debug)]
pub struct Key {
    /// Frame index within the shot (0 is the shot's first frame).
    pub index: usize,
    /// The keyframe's chroma and how far to trust it.
    pub colour: Confident,
}

/// What the caller supplies per frame: the colorizer's prior (model,
/// reference transfer), or `None` where there is none.
pub type PriorFn<'a> = dyn FnMut(usize, &LumaImage) -> Result<Option<Confident>> + 'a;

/// Receives each finished frame, in order: its index within the shot and
/// its chroma.
pub type EmitFn<'a> = dyn FnMut(usize, ChromaField) -> Result<()> + 'a;

fn flows(a: &LumaImage, b: &LumaImage, params: &FlowParams) -> (FlowField, FlowField) {
    let (w, h) = (a.width, a.height);
    (
        estimate_flow(&a.data, &b.data, w, h, params),
        estimate_flow(&b.data, &a.data, w, h, params),
    )
}

/// Re-fits carried colour to this frame's luma edges and fills what could
/// not be carried, with colour matched from the memory where the carried
/// colour is unsure; returns it with the confidence propagation goes on
/// with (a confident match counts as carried colour).
fn refine(
    solver: &mut ChromaSolver,
    carried: &Confident,
    matched: Option<&Confident>,
    params: &PropagationParams,
) -> Result<Confident> {
    let weights: Vec<f32> = carried
        .confidence
        .iter()
        .map(|c| c * params.carried_weight)
        .collect();
    let mut terms = vec![DataTerm {
        cb: &carried.chroma.cb,
        cr: &carried.chroma.cr,
        weight: &weights,
    }];
    let matched_w: Vec<f32>;
    if let Some(m) = matched {
        matched_w = carried
            .confidence
            .iter()
            .zip(&m.confidence)
            .map(|(&c, &k)| {
                let gate = params.matched_gate.clamp(1e-3, 1.0);
                let unsure = (1.0 - c.clamp(0.0, 1.0) / gate).max(0.0);
                params.matched_weight * k * unsure * unsure
            })
            .collect();
        terms.push(DataTerm {
            cb: &m.chroma.cb,
            cr: &m.chroma.cr,
            weight: &matched_w,
        });
    }
    let chroma = solver.solve(&terms, Some(&carried.chroma))?;
    let confidence = carried
        .confidence
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let k = matched
                .filter(|_| params.matched_weight > 0.0)
                .map_or(0.0, |m| m.confidence[i].clamp(0.0, 1.0));
            c.max(params.fill_confidence).max(k)
        })
        .collect();
    Ok(Confident { chroma, confidence })
}

/// Radius, in pixels, over which [`Propagator::prior_mix`] averages how
/// unsure propagation is, so the prior's share does not speckle.
const UNSURE_RADIUS: usize = 3;

/// `plane` (one value per pixel of frame t-1) moved to frame t along
/// `to_prev`; samples from outside the frame take `outside`.
fn warp_plane(plane: &[f32], to_prev: &FlowField, outside: f32) -> Vec<f32> {
    let (w, h) = (to_prev.width, to_prev.height);
    let (xmax, ymax) = ((w - 1) as f32, (h - 1) as f32);
    let mut out = vec![outside; w * h];
    for (i, o) in out.iter_mut().enumerate() {
        let (qx, qy) = ((i % w) as f32 + to_prev.u[i], (i / w) as f32 + to_prev.v[i]);
        if !(qx >= 0.0 && qx <= xmax && qy >= 0.0 && qy <= ymax) {
            continue;
        }
        *o = crate::motion::bilinear(plane, w, h, qx, qy);
    }
    out
}

fn check_keys(lumas: &[LumaImage], keys: &[Key]) -> Result<()> {
    let n = lumas.len();
    let Some(first) = lumas.first() else {
        return Ok(());
    };
    let (w, h) = (first.width, first.height);
    if let Some((i, l)) = lumas
        .iter()
        .enumerate()
        .find(|(_, l)| (l.width, l.height) != (w, h))
    {
        return Err(Error::SizeMismatch {
            what: format!(
                "frame {i} of the shot is {}x{} but its first frame is {w}x{h}",
                l.width, l.height
            ),
        });
    }
    for pair in keys.windows(2) {
        if pair[0].index >= pair[1].index {
            return Err(Error::Engine {
                message: format!(
                    "keyframes must be in order and distinct; got {} then {}",
                    pair[0].index, pair[1].index
                ),
            });
        }
    }
    for k in keys {
        if k.index >= n {
            return Err(Error::Engine {
                message: format!(
                    "a keyframe at shot frame {} lies outside the shot of {n} frames",
                    k.index
                ),
            });
        }
        let c = &k.colour;
        if (c.chroma.width, c.chroma.height) != (w, h) || c.confidence.len() != w * h {
            return Err(Error::SizeMismatch {
                what: format!(
                    "the keyframe at shot frame {} has colour of {}x{} but the film is {w}x{h}",
                    k.index, c.chroma.width, c.chroma.height
                ),
            });
        }
    }
    Ok(())
}

fn blend(a: Confident, b: &Confident) -> Confident {
    let mut out = a;
    for i in 0..out.confidence.len() {
        let (qa, qb) = (out.confidence[i], b.confidence[i]);
        let sum = qa + qb;
        let t = if sum > 1e-6 { qb / sum } else { 0.5 };
        out.chroma.cb[i] += t * (b.chroma.cb[i] - out.chroma.cb[i]);
        out.chroma.cr[i] += t * (b.chroma.cr[i] - out.chroma.cr[i]);
        out.confidence[i] = qa.max(qb);
    }
    out
}

/// Carries a keyframe's colour backward over the frames before it:
/// `lumas` are frames a..=k in order (the last is the keyframe's), and the
/// result holds frames a..k (the keyframe excluded), each with its
/// confidence.
///
/// # Errors
/// Sizes that differ.
pub fn backward_segment(
    lumas: &[LumaImage],
    key: &Confident,
    params: &PropagationParams,
) -> Result<Vec<Confident>> {
    let Some(last) = lumas.len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Confident> = Vec::with_capacity(last);
    let mut state = key.clone();
    for t in (0..last).rev() {
        state = backward_step(&lumas[t], &lumas[t + 1], &state, params)?;
        out.push(state.clone());
    }
    out.reverse();
    Ok(out)
}

/// One frame of the backward pass: `next_state`, the colour carried to the
/// frame after this one (`next`), carried back to this frame (`luma`) and
/// re-fitted to its edges.
///
/// # Errors
/// Sizes that differ.
pub fn backward_step(
    luma: &LumaImage,
    next: &LumaImage,
    next_state: &Confident,
    params: &PropagationParams,
) -> Result<Confident> {
    let (to_next, from_next) = flows(luma, next, &params.flow);
    let weights = match_weights(luma, next, &to_next, &from_next, params.carry)?;
    let carried = carry(next_state, &to_next, &weights, params.carry)?;
    let mut solver = ChromaSolver::new(luma, params.solver)?;
    refine(&mut solver, &carried, None, params)
}

/// The bytes one frame's carried colour takes (two chroma planes and a
/// confidence, `f32` each) at `pixels` pixels.
pub const fn carried_bytes(pixels: usize) -> usize {
    pixels * 3 * size_of::<f32>()
}

/// The backward pass of one stretch of a shot, under a memory budget,
/// however long the stretch.
///
/// The colour carried back from keyframe `key` to each frame of
/// `from..key` is asked for frame by frame, in order. Holding it for every
/// frame would take [`carried_bytes`] a frame (about 11 MB at 1280x720):
/// gigabytes for a shot of a few hundred frames. Instead the pass keeps
/// *checkpoints*, the carried colour at a few frames, as many as the
/// budget allows. A frame's colour is computed from the nearest checkpoint
/// after it, walking back; on the way, checkpoints are left at even
/// spacing for the frames that follow, and the ones behind the frame asked
/// for are dropped. Each frame is the same computation from the same
/// inputs as in one long walk, so the answer is the same to the bit; a
/// stretch of `n` frames with room for `m` checkpoints costs about
/// `n · (1 + log(n) / log(m))` steps instead of `n`.
///
/// Lumas are read in forward runs of at most [`luma_run`](Self::luma_run)
/// frames (a film's decoder reads forward cheaply, and seeks back only to
/// a keyframe).
#[derive(Debug)]
pub struct BackwardPass {
    key: u64,
    from: u64,
    checkpoints: std::collections::BTreeMap<u64, Confident>,
    max_checkpoints: usize,
    luma_run: usize,
    steps: u64,
}

/// Why a [`BackwardPass`] stopped early.
pub type StopFn<'a> = dyn Fn() -> bool + 'a;

impl BackwardPass {
    /// A pass carrying `key_colour` (keyframe `key`'s) back over
    /// `from..key`, keeping its checkpoints and luma runs within
    /// `budget_bytes` (at least three checkpoints and a run of two frames,
    /// whatever the budget).
    pub fn new(from: u64, key: u64, key_colour: Confident, budget_bytes: usize) -> Self {
        let pixels = key_colour.confidence.len().max(1);
        let state = carried_bytes(pixels);
        let luma = pixels * size_of::<f32>();
        // At most an eighth of the budget, and 16 frames, for the run of
        // lumas read forward (a run of 16 decodes at most a GOP more than
        // it needs, little beside a backward step), the rest for
        // checkpoints.
        let luma_run = (budget_bytes / 8 / luma).clamp(2, 16);
        let max_checkpoints = (budget_bytes.saturating_sub(luma_run * luma) / state).max(3);
        let mut checkpoints = std::collections::BTreeMap::new();
        checkpoints.insert(key, key_colour);
        Self {
            key,
            from,
            checkpoints,
            max_checkpoints,
            luma_run,
            steps: 0,
        }
    }

    /// The keyframe this pass carries back from.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Whether `frame` gets its carried colour from this pass.
    pub fn covers(&self, frame: u64) -> bool {
        (self.from..self.key).contains(&frame)
    }

    /// How many checkpoints the budget allows (the keyframe's included).
    pub fn max_checkpoints(&self) -> usize {
        self.max_checkpoints
    }

    /// How many frames are read forward at a time.
    pub fn luma_run(&self) -> usize {
        self.luma_run
    }

    /// Backward steps computed so far (a frame recomputed counts again).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Leaves `colour`, the colour carried back to `frame` by an earlier
    /// pass over the same stretch (a later chunk of the same render), as a
    /// checkpoint: the walk to the frames before it starts there instead of
    /// at the keyframe. Ignored (`false`) outside the pass, at a frame
    /// already held, at another size, or when no checkpoint slot is free.
    pub fn seed(&mut self, frame: u64, colour: Confident) -> bool {
        let size = self.checkpoints.values().next().map(|c| c.confidence.len());
        if !self.covers(frame)
            || self.checkpoints.contains_key(&frame)
            || self.checkpoints.len() >= self.max_checkpoints
            || size != Some(colour.confidence.len())
            || colour.chroma.cb.len() != colour.confidence.len()
            || colour.chroma.cr.len() != colour.confidence.len()
        {
            return false;
        }
        self.checkpoints.insert(frame, colour);
        true
    }

    /// Checkpoints held now.
    pub fn held(&self) -> usize {
        self.checkpoints.len()
    }

    /// The colour carried back to `frame` (which [`covers`](Self::covers)
    /// must hold), reading lumas with `read`; `stop` is asked before every
    /// step, and a `true` ends the pass with [`Error::Cancelled`].
    ///
    /// # Errors
    /// A frame outside the pass, an error of `read`, sizes that differ, or
    /// a stop.
    pub fn carried(
        &mut self,
        frame: u64,
        read: &mut dyn FnMut(u64) -> Result<LumaImage>,
        params: &PropagationParams,
        stop: &StopFn<'_>,
    ) -> Result<Confident> {
        self.carried_leaving(frame, read, params, stop, &mut |_, _| ())
    }

    /// [`carried`](Self::carried), handing every frame's colour computed on
    /// the way to `leave` (a render split into chunks keeps some for the
    /// chunks before this one; see [`seed`](Self::seed)).
    ///
    /// # Errors
    /// As [`carried`](Self::carried).
    pub fn carried_leaving(
        &mut self,
        frame: u64,
        read: &mut dyn FnMut(u64) -> Result<LumaImage>,
        params: &PropagationParams,
        stop: &StopFn<'_>,
        leave: &mut dyn FnMut(u64, &Confident),
    ) -> Result<Confident> {
        if !self.covers(frame) {
            return Err(Error::Engine {
                message: format!(
                    "frame {frame} is not carried back from keyframe {} (the pass covers {}..{})",
                    self.key, self.from, self.key
                ),
            });
        }
        // Frames are asked for in order: what lies behind is not needed.
        self.checkpoints = self.checkpoints.split_off(&frame);
        if let Some(c) = self.checkpoints.remove(&frame) {
            return Ok(c);
        }
        let Some((&top, _)) = self.checkpoints.iter().next() else {
            return Err(Error::Engine {
                message: format!("the backward pass lost keyframe {}", self.key),
            });
        };
        // Frames top-1 down to `frame` are computed. All are kept when they
        // fit the free checkpoint slots; else half the free slots take
        // checkpoints at even spacing, and the other half is left for the
        // first stretch, which is walked again next.
        let count = (top - frame) as usize;
        let free = self.max_checkpoints.saturating_sub(self.checkpoints.len());
        let spacing = if free == 0 {
            u64::MAX
        } else if count <= free {
            1
        } else {
            count.div_ceil((free / 2).max(1) + 1) as u64
        };
        let mut state = self.checkpoints[&top].clone();
        let mut hi = top;
        let mut hi_luma = read(hi)?;
        let mut answer = None;
        while hi > frame {
            let lo = hi.saturating_sub(self.luma_run as u64 - 1).max(frame);
            let mut run = Vec::with_capacity((hi - lo) as usize);
            for f in lo..hi {
                if stop() {
                    return Err(Error::Cancelled);
                }
                run.push(read(f)?);
            }
            for t in (lo..hi).rev() {
                if stop() {
                    return Err(Error::Cancelled);
                }
                let Some(luma) = run.pop() else { break };
                state = backward_step(&luma, &hi_luma, &state, params)?;
                self.steps += 1;
                leave(t, &state);
                hi_luma = luma;
                if t == frame {
                    answer = Some(state.clone());
                } else if (t - frame).is_multiple_of(spacing) {
                    self.checkpoints.insert(t, state.clone());
                }
            }
            hi = lo;
        }
        answer.ok_or_else(|| Error::Engine {
            message: format!("the backward pass did not reach frame {frame}"),
        })
    }
}

/// Everything the forward pass carries from one frame to the next, so that
/// a render split into chunks can continue where the chunk before it left
/// off instead of replaying the shot (see [`Propagator::state`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForwardState {
    /// The colour carried forward from the last keyframe.
    pub forward: Option<Confident>,
    /// The last frame's luma.
    pub previous: Option<LumaImage>,
    /// The stabiliser's last output and its luma.
    pub stabilised: Option<(LumaImage, ChromaField)>,
    /// How far the prior showed at each pixel.
    pub prior_mix: Option<Vec<f32>>,
    /// The prior as it joined the last frame.
    pub steady_prior: Option<ChromaField>,
}

/// The forward pass of propagation, one frame at a time, in order (see the
/// module docs). Call [`Propagator::reset`] at every cut.
#[derive(Clone, Debug)]
pub struct Propagator {
    params: PropagationParams,
    forward: Option<Confident>,
    previous: Option<LumaImage>,
    stabiliser: Stabiliser,
    /// Per pixel, how far the prior shows in the output (0 to 1).
    prior_mix: Option<Vec<f32>>,
    /// The prior as it joined the previous frame (see
    /// [`PropagationParams::prior_steadiness`]).
    steady_prior: Option<ChromaField>,
    /// See [`weak_share`](Self::weak_share).
    weak_share: f32,
}

/// A match less confident than this counts as a weak source (see
/// [`Propagator::weak_share`]).
const WEAK_MATCH: f32 = 0.5;

impl Propagator {
    /// A propagator at the start of a shot.
    pub fn new(params: PropagationParams) -> Self {
        Self {
            params,
            forward: None,
            previous: None,
            stabiliser: Stabiliser::new(params.stabiliser, params.flow),
            prior_mix: None,
            steady_prior: None,
            weak_share: 1.0,
        }
    }

    /// The share of the last frame coloured (0 to 1) whose colour came from
    /// weak sources: pixels that propagation could not carry with at least
    /// the fill confidence and that no confident match (from the memory of
    /// coloured frames) reached, so the model's colour or the solver's fill
    /// shows there. 0 on a keyframe, 1 where nothing is propagated.
    pub fn weak_share(&self) -> f32 {
        self.weak_share
    }

    /// The settings in use.
    pub fn params(&self) -> &PropagationParams {
        &self.params
    }

    /// Starts a new shot, with its own stabiliser strength.
    pub fn reset(&mut self, stabiliser: f32) {
        self.forward = None;
        self.previous = None;
        self.stabiliser.reset();
        self.prior_mix = None;
        self.steady_prior = None;
        self.stabiliser.set_strength(stabiliser);
        self.params.stabiliser = stabiliser;
    }

    /// The state after the last frame coloured: a propagator given it by
    /// [`restore`](Self::restore) colours the next frame exactly as this one
    /// would.
    pub fn state(&self) -> ForwardState {
        ForwardState {
            forward: self.forward.clone(),
            previous: self.previous.clone(),
            stabilised: self.stabiliser.previous().cloned(),
            prior_mix: self.prior_mix.clone(),
            steady_prior: self.steady_prior.clone(),
        }
    }

    /// Continues from `state` (see [`state`](Self::state)) in a shot whose
    /// stabiliser strength is `stabiliser`.
    pub fn restore(&mut self, state: ForwardState, stabiliser: f32) {
        self.reset(stabiliser);
        self.forward = state.forward;
        self.previous = state.previous;
        self.stabiliser.set_previous(state.stabilised);
        self.prior_mix = state.prior_mix;
        self.steady_prior = state.steady_prior;
    }

    /// How far the prior shows at each pixel, 0 to 1: the previous frame's
    /// share carried along the motion and eased toward how unsure
    /// propagation is around the pixel now (`prior_fade` per frame). The
    /// prior thus fades in where propagation stays unsure, and a match that
    /// fails for a frame here and there (grain, blur) does not flash its
    /// colour: a pixel switching between two colour sources flickers.
    fn prior_mix(
        &mut self,
        confidence: &[f32],
        pair: &Option<(&LumaImage, (FlowField, FlowField))>,
        luma: &LumaImage,
        params: &PropagationParams,
    ) -> Vec<f32> {
        let (w, h) = (luma.width, luma.height);
        let fill = params.fill_confidence.max(1e-3);
        let unsure: Vec<f32> = confidence
            .iter()
            .map(|c| 1.0 - (c / fill).min(1.0))
            .collect();
        let unsure = crate::guided::box_mean(&unsure, w, h, UNSURE_RADIUS);
        let mut mix = match (self.prior_mix.take(), pair) {
            (Some(m), Some((_, (to_prev, _)))) if m.len() == w * h => warp_plane(&m, to_prev, 0.0),
            _ => vec![0.0; w * h],
        };
        let rate = params.prior_fade.clamp(0.0, 1.0);
        for (m, u) in mix.iter_mut().zip(&unsure) {
            *m = (*m + rate * (u - *m)).clamp(0.0, 1.0);
        }
        mix
    }

    /// This frame's prior held steady along the motion: a running mean of
    /// the priors so far, carried along the flow to this frame (see
    /// [`PropagationParams::prior_steadiness`]). The prior is smooth colour,
    /// so the mean is carried wherever the flow lands inside the frame;
    /// what enters from outside it takes this frame's prior. Without a
    /// prior (a keyframe, a preview's replay) the mean starts again.
    fn steady_prior(
        &mut self,
        prior: Option<&Confident>,
        pair: &Option<(&LumaImage, (FlowField, FlowField))>,
    ) -> Option<Confident> {
        let Some(p) = prior else {
            self.steady_prior = None;
            return None;
        };
        let s = self.params.prior_steadiness.clamp(0.0, 0.95);
        let (w, h) = (p.chroma.width, p.chroma.height);
        let mut chroma = p.chroma.clone();
        if let (Some(past), Some((_, (to_prev, _)))) = (self.steady_prior.take(), pair)
            && s > 0.0
            && (past.width, past.height) == (w, h)
            && (to_prev.width, to_prev.height) == (w, h)
        {
            let cb = warp_plane(&past.cb, to_prev, f32::NAN);
            let cr = warp_plane(&past.cr, to_prev, f32::NAN);
            for i in 0..w * h {
                if cb[i].is_finite() && cr[i].is_finite() {
                    chroma.cb[i] = cb[i] + (1.0 - s) * (chroma.cb[i] - cb[i]);
                    chroma.cr[i] = cr[i] + (1.0 - s) * (chroma.cr[i] - cr[i]);
                }
            }
        }
        self.steady_prior = Some(chroma.clone());
        Some(Confident {
            chroma,
            confidence: p.confidence.clone(),
        })
    }

    /// Colours the next frame of the shot. `key` is its colour when it is a
    /// keyframe (it passes exactly); `backward` what [`backward_segment`]
    /// carried to it from the next keyframe; `prior` the colorizer's
    /// proposal, used where propagation is unsure.
    ///
    /// # Errors
    /// Sizes that differ.
    pub fn step(
        &mut self,
        luma: &LumaImage,
        key: Option<&Confident>,
        backward: Option<Confident>,
        prior: Option<&Confident>,
    ) -> Result<ChromaField> {
        self.step_matched(luma, key, backward, prior, None)
    }

    /// [`step`](Self::step), with colour `matched` from a memory of
    /// coloured frames (see [`crate::memory`]) joining where propagation is
    /// unsure ([`PropagationParams::matched_weight`]).
    ///
    /// # Errors
    /// Sizes that differ.
    pub fn step_matched(
        &mut self,
        luma: &LumaImage,
        key: Option<&Confident>,
        backward: Option<Confident>,
        prior: Option<&Confident>,
        matched: Option<&Confident>,
    ) -> Result<ChromaField> {
        let params = self.params;
        if let Some(m) = matched
            && ((m.chroma.width, m.chroma.height) != (luma.width, luma.height)
                || m.confidence.len() != luma.width * luma.height)
        {
            return Err(Error::SizeMismatch {
                what: format!(
                    "the matched colour is {}x{} but its frame is {}x{}",
                    m.chroma.width, m.chroma.height, luma.width, luma.height
                ),
            });
        }
        let previous = self.previous.take();
        // The flow serves carrying colour forward and the stabiliser; with
        // neither (the model alone, unstabilised) it is not computed.
        let needs_flow =
            (self.forward.is_some() && key.is_none()) || self.stabiliser.strength() > 0.0;
        let pair = match &previous {
            Some(prev) if needs_flow && (prev.width, prev.height) == (luma.width, luma.height) => {
                Some((prev, flows(luma, prev, &params.flow)))
            }
            _ => None,
        };
        let chroma = if let Some(colour) = key {
            if (colour.chroma.width, colour.chroma.height) != (luma.width, luma.height) {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "the keyframe's colour is {}x{} but its frame is {}x{}",
                        colour.chroma.width, colour.chroma.height, luma.width, luma.height
                    ),
                });
            }
            self.forward = Some(colour.clone());
            self.prior_mix = None;
            self.steady_prior = None;
            self.weak_share = 0.0;
            colour.chroma.clone()
        } else {
            let carried = match (&self.forward, &pair) {
                (Some(state), Some((prev, (to_prev, from_prev)))) => {
                    let weights = match_weights(luma, prev, to_prev, from_prev, params.carry)?;
                    Some(carry(state, to_prev, &weights, params.carry)?)
                }
                _ => None,
            };
            let joined = match (carried, backward) {
                (Some(f), Some(b)) => Some(blend(f, &b)),
                (Some(f), None) => Some(f),
                (None, Some(b)) => Some(b),
                (None, None) => None,
            };
            match joined {
                Some(j) => {
                    // Where colour is propagated, the prior joins held steady
                    // along the motion; without propagation (no keyframe)
                    // it is the colorizer's own, which the stabiliser and
                    // its strength setting then govern.
                    let prior = self.steady_prior(prior, &pair);
                    let prior = prior.as_ref();
                    // What is carried on stays pure propagation; the prior
                    // joins only this frame's output, so a weak model cannot
                    // pull the colour a little further every frame.
                    let mut solver = ChromaSolver::new(luma, params.solver)?;
                    let refined = refine(&mut solver, &j, matched, &params)?;
                    // The prior's share is kept up to date on every frame,
                    // with a prior or without (a preview replays without),
                    // so a frame's colour does not depend on where the
                    // replay began. A confident match counts as sure.
                    let fill = params.fill_confidence;
                    let weak = j
                        .confidence
                        .iter()
                        .enumerate()
                        .filter(|&(i, &c)| {
                            c < fill && matched.is_none_or(|m| m.confidence[i] < WEAK_MATCH)
                        })
                        .count();
                    self.weak_share = weak as f32 / j.confidence.len().max(1) as f32;
                    let in_solve = matched.filter(|_| params.matched_weight > 0.0);
                    let sure: Vec<f32> = match in_solve {
                        Some(m) => j
                            .confidence
                            .iter()
                            .zip(&m.confidence)
                            .map(|(&c, &k)| c.max(k))
                            .collect(),
                        None => j.confidence.clone(),
                    };
                    let mix = self.prior_mix(&sure, &pair, luma, &params);
                    let mut chroma = refined.chroma.clone();
                    if let Some(p) = prior {
                        for (i, m) in mix.iter().enumerate() {
                            let m = m * p.confidence[i].clamp(0.0, 1.0);
                            // Where propagation stays unsure, the colour
                            // matched from the memory comes before the
                            // model's, as far as the match is confident.
                            let (tcb, tcr) = match matched {
                                Some(mm) => {
                                    let k = mm.confidence[i].clamp(0.0, 1.0);
                                    (
                                        p.chroma.cb[i] + k * (mm.chroma.cb[i] - p.chroma.cb[i]),
                                        p.chroma.cr[i] + k * (mm.chroma.cr[i] - p.chroma.cr[i]),
                                    )
                                }
                                None => (p.chroma.cb[i], p.chroma.cr[i]),
                            };
                            chroma.cb[i] += m * (tcb - chroma.cb[i]);
                            chroma.cr[i] += m * (tcr - chroma.cr[i]);
                        }
                    }
                    self.prior_mix = Some(mix);
                    if self.forward.is_some() {
                        self.forward = Some(refined);
                    }
                    chroma
                }
                None => {
                    self.steady_prior = None;
                    self.weak_share = 1.0;
                    prior.map_or_else(
                        || ChromaField::neutral(luma.width, luma.height),
                        |p| p.chroma.clone(),
                    )
                }
            }
        };
        let flows_prev = pair
            .as_ref()
            .map(|(_, (to_prev, from_prev))| FlowsToPrevious { to_prev, from_prev });
        let out = self
            .stabiliser
            .push(luma, chroma, flows_prev, key.is_some())?;
        self.previous = Some(luma.clone());
        Ok(out)
    }

    /// How far the colour carried on from the last frame coloured can be
    /// trusted, per pixel (`None` before the first keyframe): what a memory
    /// of coloured frames stores with that frame's colour.
    pub fn carried_confidence(&self) -> Option<&[f32]> {
        self.forward.as_ref().map(|f| f.confidence.as_slice())
    }
}

/// Frames where one more keyframe would help most, from each frame's
/// [`Propagator::weak_share`] (index 0 is the first frame given). A
/// keyframe at frame `f` is taken to make `f` sure and to fade from there,
/// as carried colour does: of frame `t`'s weak colour it replaces the part
/// `exp(-(t - f) / window)`. Its expected gain is the weak colour it
/// replaces, summed over `f` and every frame after it. Frames are picked
/// greedily, each on what the ones before it left weak, none within
/// `window / 2` frames of another, at most `max` of them and none whose
/// gain is below `min_gain`; of equal gains, the frame
/// itself weakest first (where the trouble starts). Returns (index, gain),
/// the best first.
pub fn suggest_keyframes(
    weak: &[f32],
    window: usize,
    max: usize,
    min_gain: f32,
) -> Vec<(usize, f32)> {
    let n = weak.len();
    let keep = (-1.0 / window.max(1) as f32).exp();
    // Keyframes closer than this are no help to paint.
    let spacing = (window / 2).max(1);
    let mut left: Vec<f32> = weak.iter().map(|w| w.clamp(0.0, 1.0)).collect();
    let mut gain = vec![0.0f32; n];
    let mut picked: Vec<(usize, f32)> = Vec::new();
    while picked.len() < max {
        // gain[f] = left[f] + keep * gain[f + 1]: one pass from the end.
        let mut acc = 0.0f32;
        for f in (0..n).rev() {
            acc = left[f] + keep * acc;
            gain[f] = acc;
        }
        let best = (0..n)
            .filter(|f| picked.iter().all(|&(p, _)| p.abs_diff(*f) >= spacing))
            .max_by(|&a, &b| {
                gain[a]
                    .total_cmp(&gain[b])
                    .then(left[a].total_cmp(&left[b]))
                    .then(b.cmp(&a))
            });
        let Some(best) = best.filter(|&f| gain[f] >= min_gain) else {
            break;
        };
        picked.push((best, gain[best]));
        let mut fade = 1.0f32;
        for l in &mut left[best..] {
            *l *= 1.0 - fade;
            fade *= keep;
        }
    }
    picked
}

/// Colours every frame of one shot held in memory from its keyframes (see
/// the module docs). `lumas` are the shot's frames in order; `keys` its
/// keyframes in order of index. Frames go to `emit` in order.
///
/// # Errors
/// Keyframes out of order or outside the shot, sizes that differ, or an
/// error of `prior` or `emit`.
pub fn propagate_shot(
    lumas: &[LumaImage],
    keys: &[Key],
    params: &PropagationParams,
    prior: &mut PriorFn<'_>,
    emit: &mut EmitFn<'_>,
) -> Result<()> {
    check_keys(lumas, keys)?;
    let mut backward: Vec<Option<Confident>> = vec![None; lumas.len()];
    for (j, key) in keys.iter().enumerate() {
        let from = if j == 0 { 0 } else { keys[j - 1].index + 1 };
        let carried = backward_segment(&lumas[from..=key.index], &key.colour, params)?;
        for (offset, c) in carried.into_iter().enumerate() {
            backward[from + offset] = Some(c);
        }
    }
    let mut propagator = Propagator::new(*params);
    let mut key_iter = keys.iter().peekable();
    for (t, luma) in lumas.iter().enumerate() {
        let key = key_iter.next_if(|k| k.index == t).map(|k| &k.colour);
        let p = if key.is_some() { None } else { prior(t, luma)? };
        let out = propagator.step(luma, key, backward[t].take(), p.as_ref())?;
        emit(t, out)?;
    }
    Ok(())
}

/// The chroma of a keyframe from what steers it: hint strokes, a reference,
/// the prior, each a [`DataTerm`] with its weight, solved against the
/// keyframe's luma, from `initial` where given (the keyframe's colour
/// before its latest stroke: the answer is the same, to the solver's
/// tolerance, in fewer iterations).
///
/// # Errors
/// Sizes that differ.
pub fn solve_key(
    luma: &LumaImage,
    terms: &[DataTerm<'_>],
    params: SolverParams,
    initial: Option<&ChromaField>,
) -> Result<ChromaField> {
    ChromaSolver::new(luma, params)?.solve(terms, initial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{CellColour, CellFeatures, ColourMemory, EntryKind, MemoryParams};

    /// Per 8x8 cell, a histogram of the luma in 16 bins: features that tell
    /// the synthetic scenes' stuffs apart.
    fn histogram_features(luma: &LumaImage) -> CellFeatures {
        let (cw, ch) = (luma.width / 8, luma.height / 8);
        let mut data = vec![0.0f32; cw * ch * 16];
        for y in 0..ch * 8 {
            for x in 0..cw * 8 {
                let bin = ((luma.data[y * luma.width + x] * 16.0) as usize).min(15);
                data[((y / 8) * cw + x / 8) * 16 + bin] += 1.0;
            }
        }
        CellFeatures::new(cw, ch, 16, data).expect("features")
    }

    /// Striped ground; a checkered square (16 px) at `square` (left, top),
    /// if any. The truth: the square red, the ground blue.
    fn square_scene(
        w: usize,
        h: usize,
        square: Option<(usize, usize)>,
    ) -> (LumaImage, ChromaField) {
        let mut luma = Vec::with_capacity(w * h);
        let mut chroma = ChromaField::neutral(w, h);
        for y in 0..h {
            for x in 0..w {
                let inside = square.is_some_and(|(sx, sy)| {
                    (sx..sx + 16).contains(&x) && (sy..sy + 16).contains(&y)
                });
                let i = y * w + x;
                if inside {
                    luma.push(if (x / 4 + y / 4) % 2 == 0 { 0.85 } else { 0.7 });
                    chroma.cb[i] = -0.1;
                    chroma.cr[i] = 0.3;
                } else {
                    luma.push(if (y / 4) % 2 == 0 { 0.3 } else { 0.26 });
                    chroma.cb[i] = 0.25;
                    chroma.cr[i] = -0.1;
                }
            }
        }
        (
            LumaImage {
                width: w,
                height: h,
                data: luma,
            },
            chroma,
        )
    }

    /// Two 16 px squares on a striped ground: a checkered red one at
    /// `a`, a striped green one at `b` (drawn over it), both at `y` = 24.
    fn two_squares(w: usize, h: usize, a: usize, b: usize) -> (LumaImage, ChromaField) {
        let (mut luma, mut chroma) = square_scene(w, h, None);
        for y in 24..40 {
            for (left, red) in [(a, true), (b, false)] {
                for x in left..(left + 16).min(w) {
                    let i = y * w + x;
                    if red {
                        luma.data[i] = if (x / 4 + y / 4) % 2 == 0 { 0.85 } else { 0.7 };
                        (chroma.cb[i], chroma.cr[i]) = (-0.1, 0.3);
                    } else {
                        luma.data[i] = if (x / 2) % 2 == 0 { 0.6 } else { 0.45 };
                        (chroma.cb[i], chroma.cr[i]) = (-0.2, -0.2);
                    }
                }
            }
        }
        (luma, chroma)
    }

    /// Runs the propagator over `frames` from the keyframe 0, with or
    /// without a memory holding it; the mean chroma error over each
    /// frame's `boxes` (left, top, size), per frame from 1.
    fn run_with_memory(
        frames: &[(LumaImage, ChromaField)],
        boxes: &dyn Fn(usize) -> Vec<(usize, usize, usize)>,
        with_memory: bool,
    ) -> Vec<f32> {
        run_with_memory_and(frames, boxes, with_memory, None)
    }

    /// [`run_with_memory`], the memory also holding `photo` (a reference
    /// picture: its luma and true colour).
    fn run_with_memory_and(
        frames: &[(LumaImage, ChromaField)],
        boxes: &dyn Fn(usize) -> Vec<(usize, usize, usize)>,
        with_memory: bool,
        photo: Option<&(LumaImage, ChromaField)>,
    ) -> Vec<f32> {
        let (w, h) = (frames[0].0.width, frames[0].0.height);
        // No prior here: the matched colour joins as a data term.
        let mut p = Propagator::new(PropagationParams {
            stabiliser: 0.0,
            matched_weight: 20.0,
            ..PropagationParams::default()
        });
        let mut memory = ColourMemory::new(MemoryParams::default());
        let key = Confident::uniform(frames[0].1.clone(), 1.0);
        let key_cells = CellColour::from_confident(&key, w / 8, h / 8).expect("cells");
        memory
            .insert(
                0,
                EntryKind::Key,
                &histogram_features(&frames[0].0),
                &key_cells,
            )
            .expect("stored");
        if let Some((luma, chroma)) = photo {
            let cells = CellColour::from_confident(
                &Confident::uniform(chroma.clone(), 1.0),
                luma.width / 8,
                luma.height / 8,
            )
            .expect("cells");
            memory
                .insert(u64::MAX, EntryKind::Key, &histogram_features(luma), &cells)
                .expect("stored");
        }
        let mut errors = Vec::new();
        for (t, (luma, truth)) in frames.iter().enumerate() {
            let key = (t == 0).then_some(&key);
            let matched = (with_memory && t > 0).then(|| {
                memory
                    .match_cells(&histogram_features(luma))
                    .expect("matched")
                    .upsample(luma)
            });
            let out = p
                .step_matched(luma, key, None, None, matched.as_ref())
                .expect("step");
            if t > 0 {
                let (mut e, mut n) = (0.0, 0);
                for (bx, by, size) in boxes(t) {
                    for y in by..by + size {
                        for x in bx..bx + size {
                            let i = y * w + x;
                            e += (out.cb[i] - truth.cb[i]).abs() + (out.cr[i] - truth.cr[i]).abs();
                            n += 2;
                        }
                    }
                }
                errors.push(e / n.max(1) as f32);
            }
        }
        errors
    }

    #[test]
    fn two_objects_that_cross_fast_keep_their_colours_with_the_memory() {
        let (w, h) = (144, 64);
        // Each square moves 32 px a frame, past the other.
        let pos = |t: usize| (8 + 32 * t, 120 - 32 * t);
        let frames: Vec<_> = (0..4)
            .map(|t| {
                let (a, b) = pos(t);
                two_squares(w, h, a, b)
            })
            .collect();
        // The inner 12 px of each square, on the last frame, where they
        // have passed each other.
        let boxes = |t: usize| {
            let (a, b) = pos(t);
            if t < 3 {
                Vec::new()
            } else {
                vec![(a + 2, 26, 12), (b + 2, 26, 12)]
            }
        };
        let flow_only = run_with_memory(&frames, &boxes, false);
        let memory = run_with_memory(&frames, &boxes, true);
        let (f, m) = (flow_only[2], memory[2]);
        assert!(m < 0.05, "with the memory, error {m}");
        assert!(f > 0.15, "flow alone, error {f}");
    }

    /// A window of `w` x `h` onto a wide scene at `offset`: striped blue
    /// ground up to x = 160 of the scene, then a field of fine green
    /// checks.
    fn pan_view(w: usize, h: usize, offset: usize) -> (LumaImage, ChromaField) {
        let mut luma = Vec::with_capacity(w * h);
        let mut chroma = ChromaField::neutral(w, h);
        for y in 0..h {
            for x in 0..w {
                let sx = x + offset;
                let i = y * w + x;
                if sx < 160 {
                    luma.push(if (y / 4) % 2 == 0 { 0.3 } else { 0.26 });
                    (chroma.cb[i], chroma.cr[i]) = (0.25, -0.1);
                } else {
                    luma.push(if (sx / 2 + y / 2).is_multiple_of(2) {
                        0.55
                    } else {
                        0.4
                    });
                    (chroma.cb[i], chroma.cr[i]) = (-0.15, -0.2);
                }
            }
        }
        (
            LumaImage {
                width: w,
                height: h,
                data: luma,
            },
            chroma,
        )
    }

    #[test]
    fn a_pan_onto_new_ground_takes_its_colour_from_a_reference_photo() {
        let (w, h) = (128, 64);
        // The camera pans 16 px a frame; frame 0 shows ground only, and the
        // field comes in from the right from frame 3.
        let frames: Vec<_> = (0..7).map(|t| pan_view(w, h, 16 * t)).collect();
        // A photo of the field alone, in its true colour.
        let photo = pan_view(64, 64, 200);
        // The field's pixels on the last frame, away from its edge.
        let boxes = |t: usize| {
            if t == 6 {
                vec![(96, 8, 24), (96, 32, 24)]
            } else {
                Vec::new()
            }
        };
        let flow_only = run_with_memory_and(&frames, &boxes, false, None)[5];
        let memory = run_with_memory_and(&frames, &boxes, true, Some(&photo))[5];
        assert!(
            memory < 0.05,
            "with the photo in the memory, error {memory}"
        );
        assert!(flow_only > 0.15, "flow alone, error {flow_only}");
    }

    #[test]
    fn keyframes_are_suggested_where_weak_colour_lasts_longest() {
        // Weak colour in a short blip at 5 and a long stretch from 30.
        let mut weak = vec![0.0f32; 60];
        weak[5] = 0.9;
        for w in &mut weak[30..50] {
            *w = 0.6;
        }
        let s = suggest_keyframes(&weak, 12, 4, 0.5);
        let frames: Vec<usize> = s.iter().map(|p| p.0).collect();
        // The long stretch first (at its start), then its rest, where the
        // first one's help has faded; the blip itself among the rest.
        assert_eq!(frames[0], 30, "{s:?}");
        assert!((36..=46).contains(&frames[1]), "{s:?}");
        assert!(frames.contains(&5), "{s:?}");
        assert!(s.windows(2).all(|p| p[0].1 >= p[1].1), "{s:?}");
        assert!(
            frames
                .iter()
                .all(|a| frames.iter().all(|b| a == b || a.abs_diff(*b) >= 6)),
            "{s:?}"
        );
        // Weak colour that grows away from the last keyframe (as carried
        // colour fades) with trouble from frame 24 on: the suggestion is
        // where the trouble starts, not at the weakest frames at the end.
        let weak: Vec<f32> = (0..48)
            .map(|t| 0.004 * t as f32 + if t >= 24 { 0.25 } else { 0.0 })
            .collect();
        assert_eq!(suggest_keyframes(&weak, 12, 1, 0.5)[0].0, 24);
        // Nothing weak, nothing suggested.
        assert!(suggest_keyframes(&[0.0; 20], 12, 3, 0.5).is_empty());
    }

    #[test]
    fn the_weak_share_counts_what_neither_flow_nor_memory_coloured() {
        let (w, h) = (128, 64);
        let place = |t: usize| match t {
            0 => Some((40, 24)),
            1..=4 => None,
            _ => Some((88, 24)),
        };
        let frames: Vec<_> = (0..6).map(|t| square_scene(w, h, place(t))).collect();
        let mut shares = Vec::new();
        for with_memory in [false, true] {
            let mut p = Propagator::new(PropagationParams {
                stabiliser: 0.0,
                matched_weight: 20.0,
                ..PropagationParams::default()
            });
            let key = Confident::uniform(frames[0].1.clone(), 1.0);
            let mut memory = ColourMemory::new(MemoryParams::default());
            let cells = CellColour::from_confident(&key, w / 8, h / 8).expect("cells");
            memory
                .insert(0, EntryKind::Key, &histogram_features(&frames[0].0), &cells)
                .expect("stored");
            let mut s = Vec::new();
            for (t, (luma, _)) in frames.iter().enumerate() {
                let matched = (with_memory && t > 0).then(|| {
                    memory
                        .match_cells(&histogram_features(luma))
                        .expect("matched")
                        .upsample(luma)
                });
                p.step_matched(luma, (t == 0).then_some(&key), None, None, matched.as_ref())
                    .expect("step");
                s.push(p.weak_share());
            }
            shares.push(s);
        }
        assert_eq!(shares[0][0], 0.0, "a keyframe is all strong");
        // The square's return (16x16 of 128x64 pixels) is weak without the
        // memory, and not with it.
        assert!(shares[0][5] > 0.02, "{:?}", shares[0]);
        assert!(shares[1][5] < 0.5 * shares[0][5], "{:?}", shares[1]);
    }

    #[test]
    fn an_object_that_leaves_and_comes_back_gets_its_colour_from_the_memory() {
        let (w, h) = (128, 64);
        // Frame 0 (the keyframe) shows the square; it is gone for four
        // frames, then comes back elsewhere: no flow can carry it back.
        let place = |t: usize| match t {
            0 => Some((40, 24)),
            1..=4 => None,
            _ => Some((88, 24)),
        };
        let frames: Vec<_> = (0..9).map(|t| square_scene(w, h, place(t))).collect();
        // The square's inner 12x12 pixels once it is back.
        let boxes = |t: usize| match place(t) {
            Some((sx, sy)) if t > 4 => vec![(sx + 2, sy + 2, 12)],
            _ => Vec::new(),
        };
        let flow_only: Vec<f32> = run_with_memory(&frames, &boxes, false)[4..].to_vec();
        let memory: Vec<f32> = run_with_memory(&frames, &boxes, true)[4..].to_vec();
        for (t, (&f, &m)) in flow_only.iter().zip(&memory).enumerate() {
            // The match comes at cell resolution: its edges are soft.
            assert!(m < 0.05, "frame {}: with the memory, error {m}", t + 5);
            assert!(f > 0.2, "frame {}: flow alone, error {f}", t + 5);
        }
    }

    /// A textured scene whose content (luma and true colour) moves right by
    /// `speed` pixels a frame, with a disc of its own colour.
    fn frame(w: usize, h: usize, t: usize, speed: f32) -> (LumaImage, ChromaField) {
        let shift = t as f32 * speed;
        let mut luma = vec![0.0f32; w * h];
        let mut chroma = ChromaField::neutral(w, h);
        for y in 0..h {
            for x in 0..w {
                let sx = x as f32 - shift;
                let i = y * w + x;
                let (cx, cy) = (30.0 + shift, h as f32 / 2.0);
                let in_disc = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < 100.0;
                let texture = 0.08 * (sx * 0.4).sin() * (y as f32 * 0.35).cos();
                if in_disc {
                    luma[i] = 0.75 + texture;
                    chroma.cb[i] = -0.12;
                    chroma.cr[i] = 0.15;
                } else {
                    luma[i] = 0.35 + texture + 0.1 * (sx * 0.07).sin();
                    chroma.cb[i] = 0.10;
                    chroma.cr[i] = -0.05;
                }
            }
        }
        (
            LumaImage {
                width: w,
                height: h,
                data: luma,
            },
            chroma,
        )
    }

    fn mean_abs_err(a: &ChromaField, b: &ChromaField) -> f32 {
        let n = a.cb.len() as f32;
        a.cb.iter()
            .zip(&b.cb)
            .chain(a.cr.iter().zip(&b.cr))
            .map(|(x, y)| (x - y).abs())
            .sum::<f32>()
            / (2.0 * n)
    }

    fn run(keys_at: &[usize], n: usize) -> Vec<(ChromaField, ChromaField)> {
        let (w, h) = (96, 64);
        let frames: Vec<_> = (0..n).map(|t| frame(w, h, t, 1.5)).collect();
        let lumas: Vec<_> = frames.iter().map(|f| f.0.clone()).collect();
        let keys: Vec<_> = keys_at
            .iter()
            .map(|&k| Key {
                index: k,
                colour: Confident::uniform(frames[k].1.clone(), 1.0),
            })
            .collect();
        let mut out = Vec::new();
        propagate_shot(
            &lumas,
            &keys,
            &PropagationParams::default(),
            &mut |_, _| Ok(None),
            &mut |t, c| {
                out.push((c, frames[t].1.clone()));
                Ok(())
            },
        )
        .expect("propagation runs");
        out
    }

    /// The checkpointed pass gives every frame's carried colour to the bit
    /// as one walk that keeps them all, within its checkpoint budget, at a
    /// bounded number of extra steps, and reads frames only forward in runs.
    #[test]
    fn a_budgeted_backward_pass_equals_the_whole_walk() {
        let (w, h, n) = (48, 32, 40usize);
        let frames: Vec<_> = (0..n).map(|t| frame(w, h, t, 1.5)).collect();
        let lumas: Vec<LumaImage> = frames.iter().map(|f| f.0.clone()).collect();
        let params = PropagationParams::default();
        let key = Confident::uniform(frames[n - 1].1.clone(), 1.0);
        let whole = backward_segment(&lumas, &key, &params).expect("whole walk");
        let state = carried_bytes(w * h);
        let luma = w * h * 4;
        // Budgets from the smallest (3 checkpoints, runs of 2) to one that
        // holds every frame.
        for budget in [0, 6 * state, 12 * state + 8 * luma, 64 * state] {
            let mut pass = BackwardPass::new(0, (n - 1) as u64, key.clone(), budget);
            let mut reads = Vec::new();
            for (f, want) in whole.iter().enumerate() {
                let got = pass
                    .carried(
                        f as u64,
                        &mut |i| {
                            reads.push(i);
                            Ok(lumas[i as usize].clone())
                        },
                        &params,
                        &|| false,
                    )
                    .expect("carried");
                assert!(
                    got.chroma.cb == want.chroma.cb
                        && got.chroma.cr == want.chroma.cr
                        && got.confidence == want.confidence,
                    "budget {budget}: frame {f} differs from the whole walk"
                );
                assert!(
                    pass.held() <= pass.max_checkpoints(),
                    "budget {budget}: {} checkpoints held, {} allowed",
                    pass.held(),
                    pass.max_checkpoints()
                );
            }
            let steps = pass.steps();
            let limit = match pass.max_checkpoints() {
                m if m >= n => n as u64,
                m if m >= 8 => 3 * n as u64,
                _ => (n * n / 4) as u64,
            };
            assert!(
                steps >= (n - 1) as u64 && steps <= limit,
                "budget {budget}: {steps} steps for {} frames with {} checkpoints (limit {limit})",
                n - 1,
                pass.max_checkpoints()
            );
            // Reads go forward within each run of frames.
            let backward_jumps = reads.windows(2).filter(|p| p[1] < p[0]).count();
            assert!(
                backward_jumps as u64 <= steps.div_ceil(pass.luma_run() as u64 - 1) + n as u64,
                "budget {budget}: {backward_jumps} backward seeks"
            );
        }
    }

    #[test]
    fn a_stopped_backward_pass_says_cancelled() {
        let (w, h, n) = (48, 32, 10usize);
        let lumas: Vec<LumaImage> = (0..n).map(|t| frame(w, h, t, 1.5).0).collect();
        let key = Confident::uniform(frame(w, h, n - 1, 1.5).1, 1.0);
        let mut pass = BackwardPass::new(0, (n - 1) as u64, key, 1 << 30);
        let asked = std::cell::Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            asked.get() > 3
        };
        let got = pass.carried(
            0,
            &mut |i| Ok(lumas[i as usize].clone()),
            &PropagationParams::default(),
            &stop,
        );
        assert!(matches!(got, Err(Error::Cancelled)), "{got:?}");
        assert!(pass.steps() < n as u64 - 1, "stopped before the end");
    }

    #[test]
    fn one_keyframe_colours_the_whole_shot() {
        let out = run(&[0], 12);
        assert_eq!(out.len(), 12);
        for (t, (got, truth)) in out.iter().enumerate() {
            let e = mean_abs_err(got, truth);
            assert!(e < 0.02, "frame {t}: mean chroma error {e}");
        }
    }

    #[test]
    fn colour_flows_backward_and_between_two_keyframes() {
        let out = run(&[4, 11], 14);
        for (t, (got, truth)) in out.iter().enumerate() {
            let e = mean_abs_err(got, truth);
            assert!(e < 0.02, "frame {t}: mean chroma error {e}");
        }
        // Keyframes come out exactly as set.
        assert_eq!(out[4].0, out[4].1);
        assert_eq!(out[11].0, out[11].1);
    }

    #[test]
    fn bad_keys_are_refused() {
        let (w, h) = (32, 24);
        let lumas: Vec<_> = (0..3).map(|t| frame(w, h, t, 1.0).0).collect();
        let key = |index, w, h| Key {
            index,
            colour: Confident::uniform(ChromaField::neutral(w, h), 1.0),
        };
        let mut none = |_: usize, _: &LumaImage| Ok(None);
        let mut sink = |_: usize, _: ChromaField| Ok(());
        let p = PropagationParams::default();
        assert!(propagate_shot(&lumas, &[key(5, w, h)], &p, &mut none, &mut sink).is_err());
        assert!(propagate_shot(&lumas, &[key(1, 16, 16)], &p, &mut none, &mut sink).is_err());
        assert!(
            propagate_shot(
                &lumas,
                &[key(2, w, h), key(1, w, h)],
                &p,
                &mut none,
                &mut sink
            )
            .is_err()
        );
    }

    /// A still scene where one square (x 20..40, y 14..34) has its luma
    /// redrawn every frame, so no match can hold there.
    fn noisy_square_scene(w: usize, h: usize, n: usize) -> Vec<LumaImage> {
        let in_square = |x: usize, y: usize| (20..40).contains(&x) && (14..34).contains(&y);
        (0..n)
            .map(|t| LumaImage {
                width: w,
                height: h,
                data: (0..w * h)
                    .map(|i| {
                        let (x, y) = (i % w, i / w);
                        if in_square(x, y) {
                            // Fresh noise every frame.
                            let mut k = (x as u32) ^ (y as u32) << 8 ^ (t as u32) << 16;
                            k = k.wrapping_mul(0x9E37_79B9) ^ (k >> 15);
                            k = k.wrapping_mul(0x85EB_CA6B) ^ (k >> 13);
                            0.2 + 0.6 * (k % 1000) as f32 / 999.0
                        } else {
                            0.5 + 0.05 * ((x as f32 * 0.5).sin() + (y as f32 * 0.4).cos())
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// A still scene where one square's luma is redrawn every frame (no
    /// match can hold there), with a prior that is sure the square is red.
    /// The square takes the prior's colour over a few frames, not at once,
    /// and the rest keeps the keyframe's colour.
    #[test]
    fn the_prior_fades_in_where_propagation_stays_unsure() {
        let (w, h, n) = (64, 48, 30);
        let lumas = noisy_square_scene(w, h, n);
        let mut key_colour = ChromaField::neutral(w, h);
        key_colour.cb.fill(0.1);
        let mut red = ChromaField::neutral(w, h);
        red.cb.fill(-0.1);
        red.cr.fill(0.3);
        let keys = [Key {
            index: 0,
            colour: Confident::uniform(key_colour, 1.0),
        }];
        let params = PropagationParams {
            stabiliser: 0.0,
            ..PropagationParams::default()
        };
        let mut out = Vec::new();
        propagate_shot(
            &lumas,
            &keys,
            &params,
            &mut |_, _| Ok(Some(Confident::uniform(red.clone(), 1.0))),
            &mut |_, c| {
                out.push(c);
                Ok(())
            },
        )
        .expect("propagation runs");
        let corner = 4 * w + 4;
        // The mean share of the prior inside the square, away from its edge.
        let red_share = |c: &ChromaField| {
            let inner: Vec<f32> = (17..31)
                .flat_map(|y| (23..37).map(move |x| y * w + x))
                .map(|i| c.cr[i] / 0.3)
                .collect();
            inner.iter().sum::<f32>() / inner.len() as f32
        };
        let shares: Vec<f32> = out.iter().map(red_share).collect();
        assert!(
            shares[1] < 0.1,
            "frame 1 already shows {:.2} of the prior",
            shares[1]
        );
        assert!(
            shares[n - 1] > 0.5,
            "frame {} shows only {:.2} of the prior",
            n - 1,
            shares[n - 1]
        );
        // No flash, no sudden step: it rises a little every frame.
        for t in 2..n {
            let step = shares[t] - shares[t - 1];
            assert!(
                (-0.03..0.1).contains(&step),
                "the prior's share went {:.2} -> {:.2} at frame {t}",
                shares[t - 1],
                shares[t]
            );
        }
        // Outside the square, the keyframe's colour holds.
        for (t, c) in out.iter().enumerate() {
            assert!(
                (c.cb[corner] - 0.1).abs() < 0.01,
                "frame {t}: cb {}",
                c.cb[corner]
            );
            assert!(c.cr[corner].abs() < 0.01, "frame {t}: cr {}", c.cr[corner]);
        }
    }

    /// The same scene with a prior that wavers: the square's red is strong
    /// on even frames and weak on odd ones, as a per-frame colorizer's
    /// colours shift. Held steady along the motion, the prior reaches the
    /// output with much less of the waver, at the same mean colour.
    #[test]
    fn a_wavering_prior_is_held_steady_before_it_joins() {
        let (w, h, n) = (64, 48, 40);
        let lumas = noisy_square_scene(w, h, n);
        let keys = [Key {
            index: 0,
            colour: Confident::uniform(ChromaField::neutral(w, h), 1.0),
        }];
        let prior = |t: usize| {
            let mut c = ChromaField::neutral(w, h);
            c.cr.fill(if t.is_multiple_of(2) { 0.3 } else { 0.1 });
            Confident::uniform(c, 1.0)
        };
        // The square's mean cr over the last 10 frames, and its mean change
        // from one frame to the next there.
        let run = |steadiness: f32| {
            let params = PropagationParams {
                stabiliser: 0.0,
                prior_steadiness: steadiness,
                ..PropagationParams::default()
            };
            let mut mean_cr = Vec::new();
            propagate_shot(
                &lumas,
                &keys,
                &params,
                &mut |t, _| Ok(Some(prior(t))),
                &mut |_, c| {
                    let inner: Vec<f32> = (17..31)
                        .flat_map(|y| (23..37).map(move |x| y * w + x))
                        .map(|i| c.cr[i])
                        .collect();
                    mean_cr.push(inner.iter().sum::<f32>() / inner.len() as f32);
                    Ok(())
                },
            )
            .expect("propagation runs");
            let tail = &mean_cr[n - 10..];
            let level = tail.iter().sum::<f32>() / 10.0;
            let waver = tail.windows(2).map(|p| (p[1] - p[0]).abs()).sum::<f32>() / 9.0;
            (level, waver)
        };
        let (level_raw, waver_raw) = run(0.0);
        let (level_steady, waver_steady) = run(0.8);
        assert!(
            waver_raw > 0.05,
            "the prior's waver should show without steadying: {waver_raw:.3}"
        );
        assert!(
            waver_steady < 0.25 * waver_raw,
            "steadied waver {waver_steady:.4} against {waver_raw:.4} unsteadied"
        );
        assert!(
            (level_steady - level_raw).abs() < 0.03,
            "mean colour {level_steady:.3} steadied against {level_raw:.3}"
        );
    }
}
