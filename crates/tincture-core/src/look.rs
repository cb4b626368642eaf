//! Per-shot look controls, applied to chroma only: saturation, and soft
//! roll-offs that fade chroma toward neutral in the deepest shadows and the
//! brightest highlights.
//!
//! The shadow roll-off answers a complaint archivists make of colorized film:
//! magenta or blue "shadows" where a colorizer invents chroma in near-black
//! areas, which a real colour print never shows. Luma is never touched.

use rayon::prelude::*;

use crate::frame::{ChromaField, LumaImage};
use crate::{Error, Result};

/// A soft knee over luma.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rolloff {
    /// Luma (0..1) at the middle of the knee.
    pub threshold: f32,
    /// Luma width of the knee; chroma goes from full to zero across it.
    pub width: f32,
    /// Whether the roll-off applies.
    pub enabled: bool,
}

/// The look of a shot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    /// Chroma gain: 0 gray, 1 as computed, up to [`crate::project::SATURATION_MAX`].
    pub saturation: f32,
    /// Chroma fades to zero below this.
    pub shadows: Rolloff,
    /// Chroma fades to zero above this.
    pub highlights: Rolloff,
}

impl Default for Look {
    fn default() -> Self {
        Self {
            saturation: 1.0,
            shadows: Rolloff {
                threshold: 0.08,
                width: 0.10,
                enabled: true,
            },
            highlights: Rolloff {
                threshold: 0.92,
                width: 0.08,
                enabled: true,
            },
        }
    }
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    if edge1 <= edge0 {
        return if x < edge0 { 0.0 } else { 1.0 };
    }
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl Look {
    /// A look that changes nothing: saturation 1, no roll-offs.
    pub fn identity() -> Self {
        let off = Rolloff {
            threshold: 0.5,
            width: 0.1,
            enabled: false,
        };
        Self {
            saturation: 1.0,
            shadows: off,
            highlights: off,
        }
    }

    /// True when the look changes nothing.
    pub fn is_identity(&self) -> bool {
        self.saturation == 1.0 && !self.shadows.enabled && !self.highlights.enabled
    }

    /// The chroma gain at luma `y`.
    pub fn gain(&self, y: f32) -> f32 {
        let mut g = self.saturation;
        if self.shadows.enabled {
            let half = self.shadows.width * 0.5;
            g *= smoothstep(
                self.shadows.threshold - half,
                self.shadows.threshold + half,
                y,
            );
        }
        if self.highlights.enabled {
            let half = self.highlights.width * 0.5;
            g *= 1.0
                - smoothstep(
                    self.highlights.threshold - half,
                    self.highlights.threshold + half,
                    y,
                );
        }
        g
    }

    /// Checks the values: finite, saturation within 0..=`SATURATION_MAX`, thresholds and
    /// widths within 0..=1.
    ///
    /// # Errors
    /// [`Error::Engine`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Error::Engine {
            message: format!("look: {what}"),
        };
        let max = crate::project::SATURATION_MAX;
        if !(0.0..=max).contains(&self.saturation) {
            return Err(bad(&format!(
                "saturation {} is outside 0 to {max}",
                self.saturation
            )));
        }
        for (name, r) in [("shadow", self.shadows), ("highlight", self.highlights)] {
            if !(0.0..=1.0).contains(&r.threshold) || !(0.0..=1.0).contains(&r.width) {
                return Err(bad(&format!(
                    "{name} roll-off threshold {} and width {} must lie within 0 to 1",
                    r.threshold, r.width
                )));
            }
        }
        Ok(())
    }

    /// Applies the look to `chroma`, whose luma is `luma`.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the sizes differ.
    pub fn apply(&self, luma: &LumaImage, chroma: &mut ChromaField) -> Result<()> {
        if (luma.width, luma.height) != (chroma.width, chroma.height) {
            return Err(Error::SizeMismatch {
                what: format!(
                    "look: luma is {}x{} but chroma is {}x{}",
                    luma.width, luma.height, chroma.width, chroma.height
                ),
            });
        }
        if self.is_identity() {
            return Ok(());
        }
        chroma
            .cb
            .par_iter_mut()
            .zip(chroma.cr.par_iter_mut())
            .zip(luma.data.par_iter())
            .for_each(|((cb, cr), &y)| {
                let g = self.gain(y);
                *cb *= g;
                *cr *= g;
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadows_and_highlights_fade_to_neutral() {
        let look = Look::default();
        assert_eq!(look.gain(0.0), 0.0);
        assert_eq!(look.gain(1.0), 0.0);
        assert!((look.gain(0.5) - 1.0).abs() < 1e-6);
        // Monotone across the shadow knee.
        let mut last = 0.0;
        for i in 0..=20 {
            let g = look.gain(0.02 + 0.006 * i as f32);
            assert!(g >= last, "gain falls at step {i}");
            last = g;
        }
    }

    #[test]
    fn saturation_scales_and_identity_changes_nothing() {
        let luma = LumaImage {
            width: 2,
            height: 1,
            data: vec![0.5, 0.02],
        };
        let mut c = ChromaField {
            width: 2,
            height: 1,
            cb: vec![0.1, 0.1],
            cr: vec![-0.2, -0.2],
        };
        let off = Rolloff {
            threshold: 0.5,
            width: 0.1,
            enabled: false,
        };
        let identity = Look {
            saturation: 1.0,
            shadows: off,
            highlights: off,
        };
        let before = c.clone();
        identity.apply(&luma, &mut c).expect("same size");
        assert_eq!(c, before);
        let look = Look {
            saturation: 0.5,
            ..Look::default()
        };
        look.apply(&luma, &mut c).expect("same size");
        assert!((c.cb[0] - 0.05).abs() < 1e-6 && (c.cr[0] + 0.1).abs() < 1e-6);
        assert_eq!(
            (c.cb[1], c.cr[1]),
            (0.0, 0.0),
            "near-black pixel keeps chroma"
        );
        assert!(
            Look {
                saturation: 5.0,
                ..Look::default()
            }
            .validate()
            .is_err()
        );
    }
}
