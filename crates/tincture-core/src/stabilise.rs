//! The temporal stabiliser: a recursive chroma filter that follows the
//! motion.
//!
//! Per-frame colorization flickers: the same coat turns a shade bluer for a
//! frame, a face loses its colour and regains it. The stabiliser blends each
//! frame's chroma with the previous *output* moved along the optical flow,
//! `out_t = (1 - a) * chroma_t + a * carried(out_{t-1})`, where
//! `a = strength * match` and `match` (from [`crate::motion::match_weights`])
//! is zero where the flow fails its forward-backward check, leaves the
//! frame, or lands on different luma. Occluded and newly revealed areas thus
//! take the new frame's colour at once, and a cut starts afresh
//! ([`Stabiliser::reset`]). It changes chroma only.

use crate::flow::{FlowField, FlowParams, estimate_flow};
use crate::frame::{ChromaField, LumaImage};
use crate::motion::{CarryParams, Confident, carry, match_weights};
use crate::{Error, Result};

/// The flows between the previous frame and this one.
#[derive(Clone, Copy, Debug)]
pub struct FlowsToPrevious<'a> {
    /// Frame t → t-1.
    pub to_prev: &'a FlowField,
    /// Frame t-1 → t.
    pub from_prev: &'a FlowField,
}

/// A recursive, flow-guided chroma filter (see the module docs).
#[derive(Clone, Debug)]
pub struct Stabiliser {
    strength: f32,
    carry: CarryParams,
    flow: FlowParams,
    previous: Option<(LumaImage, ChromaField)>,
}

impl Stabiliser {
    /// A stabiliser of the given strength (0 off, 1 strongest; values are
    /// clamped to 0..0.95 so new frames always contribute).
    pub fn new(strength: f32, flow: FlowParams) -> Self {
        Self {
            strength: strength.clamp(0.0, 0.95),
            carry: CarryParams {
                decay: 1.0,
                ..CarryParams::default()
            },
            flow,
            previous: None,
        }
    }

    /// The strength in use.
    pub fn strength(&self) -> f32 {
        self.strength
    }

    /// Changes the strength (at a shot boundary, say).
    pub fn set_strength(&mut self, strength: f32) {
        self.strength = strength.clamp(0.0, 0.95);
    }

    /// The previous output and its luma, which the next frame is held
    /// against (see [`crate::propagate::ForwardState`]).
    pub fn previous(&self) -> Option<&(LumaImage, ChromaField)> {
        self.previous.as_ref()
    }

    /// Sets what [`previous`](Self::previous) gave, to continue where
    /// another stabiliser left off.
    pub fn set_previous(&mut self, previous: Option<(LumaImage, ChromaField)>) {
        self.previous = previous;
    }

    /// Forgets the past: the next frame passes unchanged. Call it at every
    /// cut.
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// Filters the next frame. `flows` may carry flows already computed
    /// (propagation computes them anyway); without them the stabiliser
    /// estimates its own. `hold` passes the chroma through unchanged and
    /// makes it the new state (a keyframe: what the archivist set is kept
    /// exactly).
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when sizes differ.
    pub fn push(
        &mut self,
        luma: &LumaImage,
        chroma: ChromaField,
        flows: Option<FlowsToPrevious<'_>>,
        hold: bool,
    ) -> Result<ChromaField> {
        if (luma.width, luma.height) != (chroma.width, chroma.height) {
            return Err(Error::SizeMismatch {
                what: format!(
                    "stabiliser: luma is {}x{} but chroma is {}x{}",
                    luma.width, luma.height, chroma.width, chroma.height
                ),
            });
        }
        let out = match self.previous.take() {
            Some((prev_luma, prev_chroma))
                if !hold
                    && self.strength > 0.0
                    && (prev_luma.width, prev_luma.height) == (luma.width, luma.height) =>
            {
                let (w, h) = (luma.width, luma.height);
                let owned;
                let f = match flows {
                    Some(f) => f,
                    None => {
                        owned = (
                            estimate_flow(&luma.data, &prev_luma.data, w, h, &self.flow),
                            estimate_flow(&prev_luma.data, &luma.data, w, h, &self.flow),
                        );
                        FlowsToPrevious {
                            to_prev: &owned.0,
                            from_prev: &owned.1,
                        }
                    }
                };
                let weights = match_weights(luma, &prev_luma, f.to_prev, f.from_prev, self.carry)?;
                let carried = carry(
                    &Confident::uniform(prev_chroma, 1.0),
                    f.to_prev,
                    &weights,
                    self.carry,
                )?;
                let mut out = chroma;
                for i in 0..out.cb.len() {
                    let a = self.strength * carried.confidence[i];
                    out.cb[i] += a * (carried.chroma.cb[i] - out.cb[i]);
                    out.cr[i] += a * (carried.chroma.cr[i] - out.cr[i]);
                }
                out
            }
            _ => chroma,
        };
        self.previous = Some((luma.clone(), out.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(w: usize, h: usize, shift: f32) -> LumaImage {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - shift, (i / w) as f32);
                0.5 + 0.25 * (x * 0.25).sin() * (y * 0.3).cos()
            })
            .collect();
        LumaImage {
            width: w,
            height: h,
            data,
        }
    }

    fn flat(w: usize, h: usize, cb: f32) -> ChromaField {
        ChromaField {
            width: w,
            height: h,
            cb: vec![cb; w * h],
            cr: vec![-cb; w * h],
        }
    }

    #[test]
    fn flicker_is_damped_and_a_cut_resets() {
        let (w, h) = (48, 32);
        let luma = scene(w, h, 0.0);
        let zero = FlowField::zero(w, h);
        let flows = FlowsToPrevious {
            to_prev: &zero,
            from_prev: &zero,
        };
        let mut s = Stabiliser::new(0.8, FlowParams::default());
        // Chroma alternating between 0.10 and 0.14: a static scene that flickers.
        let mut outs = Vec::new();
        for t in 0..20 {
            let c = if t % 2 == 0 { 0.10 } else { 0.14 };
            outs.push(
                s.push(&luma, flat(w, h, c), Some(flows), false)
                    .expect("sizes")
                    .cb[0],
            );
        }
        let swing = (outs[19] - outs[18]).abs();
        assert!(swing < 0.04 * 0.3, "swing {swing} is not damped");
        assert_eq!(outs[0], 0.10, "the first frame passes unchanged");
        s.reset();
        let after_cut = s
            .push(&luma, flat(w, h, -0.2), Some(flows), false)
            .expect("sizes");
        assert_eq!(after_cut.cb[0], -0.2);
        // A held (key) frame is kept exactly.
        let held = s
            .push(&luma, flat(w, h, 0.3), Some(flows), true)
            .expect("sizes");
        assert_eq!(held.cb[0], 0.3);
    }

    #[test]
    fn occluded_pixels_take_the_new_colour() {
        let (w, h) = (48, 32);
        let luma = scene(w, h, 0.0);
        let zero = FlowField::zero(w, h);
        let mut broken = FlowField::zero(w, h);
        broken.u.iter_mut().for_each(|u| *u = 6.0);
        let mut s = Stabiliser::new(0.9, FlowParams::default());
        s.push(&luma, flat(w, h, 0.1), None, false).expect("sizes");
        let out = s
            .push(
                &luma,
                flat(w, h, -0.1),
                Some(FlowsToPrevious {
                    to_prev: &zero,
                    from_prev: &broken,
                }),
                false,
            )
            .expect("sizes");
        assert!(
            out.cb.iter().all(|&c| c == -0.1),
            "a failed flow check must not blend"
        );
    }

    #[test]
    fn motion_is_followed_with_estimated_flow() {
        let (w, h) = (64, 48);
        let mut s = Stabiliser::new(0.9, FlowParams::default());
        // Colour tied to the scene: a vertical stripe pattern in chroma that moves with the luma.
        let colour = |shift: f32| {
            let mut c = ChromaField::neutral(w, h);
            for i in 0..w * h {
                let x = (i % w) as f32 - shift;
                c.cb[i] = 0.1 * (x * 0.25).sin();
            }
            c
        };
        s.push(&scene(w, h, 0.0), colour(0.0), None, false)
            .expect("sizes");
        let out = s
            .push(&scene(w, h, 2.0), colour(2.0), None, false)
            .expect("sizes");
        let truth = colour(2.0);
        let mut err = 0.0f32;
        let mut n = 0;
        for y in 8..h - 8 {
            for x in 8..w - 8 {
                err += (out.cb[y * w + x] - truth.cb[y * w + x]).abs();
                n += 1;
            }
        }
        assert!(
            err / (n as f32) < 0.01,
            "moving colour smeared: mean error {}",
            err / n as f32
        );
    }
}
