//! Colour hints for the neural colorizer: points carrying a colour, in the
//! pixel coordinates of the image they belong to.
//!
//! The JSON form, for `tincture-cli colorize-image --hints`:
//!
//! ```json
//! { "points": [
//!     { "x": 120, "y": 80, "color": "#b04030", "size": 3 },
//!     { "x": 40.5, "y": 200, "ab": [20.0, -12.5] }
//! ] }
//! ```
//!
//! `color` is an sRGB hex colour, of which only the chroma is used (the
//! luma stays the image's); `ab` gives CIE a*b* directly. `size` is the side
//! of the square patch in image pixels (default 1).

use std::path::Path;

use serde::Deserialize;
use tincture_core::metrics::srgb8_to_lab;

use crate::error::{Error, Result};

/// One hint: a colour at a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hint {
    /// Column, in image pixels.
    pub x: f32,
    /// Row, in image pixels.
    pub y: f32,
    /// CIE a*b*.
    pub ab: [f32; 2],
    /// Side of the square patch, in image pixels.
    pub size: f32,
}

/// A set of hints for one image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hints {
    /// The points.
    pub points: Vec<Hint>,
}

/// Largest |a| or |b| accepted.
pub const AB_LIMIT: f32 = 128.0;
/// Largest patch side accepted, in pixels.
pub const MAX_SIZE: f32 = 256.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointJson {
    x: f64,
    y: f64,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    ab: Option<[f64; 2]>,
    #[serde(default)]
    size: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HintsJson {
    points: Vec<PointJson>,
}

fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

impl Hints {
    /// Reads a hints file for an image of `width` x `height`.
    ///
    /// # Errors
    /// [`Error::Hints`] naming the file and the point (counted from 0) when
    /// the JSON is malformed, a point lies outside the image, or a colour is
    /// not a valid `#rrggbb` or an `ab` pair within +-128.
    pub fn load(path: &Path, width: usize, height: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Hints {
            path: path.to_owned(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, width, height).map_err(|reason| Error::Hints {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses hints JSON (see the module docs); the error is the reason.
    ///
    /// # Errors
    /// As [`Hints::load`], without the file name.
    pub fn parse(text: &str, width: usize, height: usize) -> std::result::Result<Self, String> {
        let json: HintsJson = serde_json::from_str(text)
            .map_err(|e| format!("not a hints file (expected {{\"points\": [...]}}): {e}"))?;
        let mut points = Vec::with_capacity(json.points.len());
        for (i, p) in json.points.iter().enumerate() {
            let at = format!("point {i} (x {}, y {})", p.x, p.y);
            if !(p.x.is_finite() && p.y.is_finite())
                || p.x < 0.0
                || p.y < 0.0
                || p.x >= width as f64
                || p.y >= height as f64
            {
                return Err(format!(
                    "{at} lies outside the {width}x{height} image; coordinates are pixels from the top-left corner"
                ));
            }
            let ab = match (&p.color, p.ab) {
                (Some(c), None) => {
                    let rgb = parse_hex(c)
                        .ok_or_else(|| format!("{at}: colour `{c}` is not of the form #rrggbb"))?;
                    let lab = srgb8_to_lab(rgb);
                    [lab[1] as f32, lab[2] as f32]
                }
                (None, Some([a, b])) => {
                    let lim = f64::from(AB_LIMIT);
                    if !(a.is_finite() && b.is_finite()) || a.abs() > lim || b.abs() > lim {
                        return Err(format!(
                            "{at}: ab [{a}, {b}] is out of range; a and b lie within -{AB_LIMIT}..{AB_LIMIT}"
                        ));
                    }
                    [a as f32, b as f32]
                }
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: give either `color` or `ab`, not both"));
                }
                (None, None) => return Err(format!("{at}: has no `color` (#rrggbb) or `ab`")),
            };
            let size = p.size.unwrap_or(1.0);
            if !(size.is_finite() && (1.0..=f64::from(MAX_SIZE)).contains(&size)) {
                return Err(format!(
                    "{at}: size {size} must lie within 1..{MAX_SIZE} pixels"
                ));
            }
            points.push(Hint {
                x: p.x as f32,
                y: p.y as f32,
                ab,
                size: size as f32,
            });
        }
        Ok(Self { points })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colours_and_ab() {
        let h = Hints::parse(
            r##"{"points":[{"x":1,"y":2,"color":"#ff0000","size":3},{"x":0,"y":0,"ab":[10,-20]}]}"##,
            10,
            10,
        )
        .expect("valid");
        assert_eq!(h.points.len(), 2);
        assert!(
            (h.points[0].ab[0] - 80.09).abs() < 0.01,
            "{:?}",
            h.points[0]
        );
        assert_eq!(h.points[1].ab, [10.0, -20.0]);
        assert_eq!(h.points[1].size, 1.0);
    }

    #[test]
    fn rejects_bad_points_naming_them() {
        let cases = [
            (
                r#"{"points":[{"x":10,"y":2,"ab":[0,0]}]}"#,
                "outside the 10x10",
            ),
            (r#"{"points":[{"x":-1,"y":2,"ab":[0,0]}]}"#, "outside"),
            (r#"{"points":[{"x":1,"y":2,"ab":[0,500]}]}"#, "out of range"),
            (r#"{"points":[{"x":1,"y":2,"color":"red"}]}"#, "#rrggbb"),
            (r#"{"points":[{"x":1,"y":2}]}"#, "has no `color`"),
            (
                r#"{"points":[{"x":1,"y":2,"ab":[0,0],"size":0}]}"#,
                "size 0",
            ),
            (r#"[1,2]"#, "not a hints file"),
        ];
        for (text, want) in cases {
            let err = Hints::parse(text, 10, 10).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = Hints::parse(
            r#"{"points":[{"x":1,"y":1,"ab":[0,0]},{"x":1,"y":99,"ab":[0,0]}]}"#,
            10,
            10,
        )
        .expect_err("second point");
        assert!(err.starts_with("point 1"), "{err}");
    }
}
