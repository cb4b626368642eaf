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
/// not be carried; returns it with the confidence propagation goes on with.
fn refine(
    solver: &mut ChromaSolver,
    carried: &Confident,
    params: &PropagationParams,
) -> Result<Confident> {
    let weights: Vec<f32> = carried
        .confidence
        .iter()
        .map(|c| c * params.carried_weight)
        .collect();
    let terms = [DataTerm {
        cb: &carried.chroma.cb,
        cr: &carried.chroma.cr,
        weight: &weights,
    }];
    let chroma = solver.solve(&terms, Some(&carried.chroma))?;
    let confidence = carried
        .confidence
        .iter()
        .map(|&c| c.max(params.fill_confidence))
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
        let (to_next, from_next) = flows(&lumas[t], &lumas[t + 1], &params.flow);
        let weights = match_weights(&lumas[t], &lumas[t + 1], &to_next, &from_next, params.carry)?;
        let carried = carry(&state, &to_next, &weights, params.carry)?;
        let mut solver = ChromaSolver::new(&lumas[t], params.solver)?;
        state = refine(&mut solver, &carried, params)?;
        out.push(state.clone());
    }
    out.reverse();
    Ok(out)
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
}

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
        }
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
        let params = self.params;
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
                    let refined = refine(&mut solver, &j, &params)?;
                    // The prior's share is kept up to date on every frame,
                    // with a prior or without (a preview replays without),
                    // so a frame's colour does not depend on where the
                    // replay began.
                    let mix = self.prior_mix(&j.confidence, &pair, luma, &params);
                    let mut chroma = refined.chroma.clone();
                    if let Some(p) = prior {
                        for (i, m) in mix.iter().enumerate() {
                            let m = m * p.confidence[i].clamp(0.0, 1.0);
                            chroma.cb[i] += m * (p.chroma.cb[i] - chroma.cb[i]);
                            chroma.cr[i] += m * (p.chroma.cr[i] - chroma.cr[i]);
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
            c.cr.fill(if t % 2 == 0 { 0.3 } else { 0.1 });
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
