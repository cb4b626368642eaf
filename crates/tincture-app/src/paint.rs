//! Painting colour hints on the viewer: the tools, the stroke being
//! painted, and the mapping between the screen and the film's pixels.
//!
//! Strokes are stored in the project as vectors in film pixels (see
//! [`Stroke`]), so they are independent of the zoom they were painted at.
//! A finished stroke becomes one undo step and makes its frame a keyframe.

use eframe::egui;
use egui::{Color32, Pos2, Rect};
use tincture_core::project::{Stroke, hex_to_rgb8, rgb8_to_hex};

/// What a drag or click on the viewer does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    /// Drag the wipe, pan a zoomed picture (no painting).
    #[default]
    View,
    /// Paint a stroke of hint colour.
    Brush,
    /// Click to place a small patch of hint colour.
    Point,
    /// Remove strokes of this frame under the pointer.
    Eraser,
    /// Click to take the colour under the pointer from the coloured frame.
    Eyedropper,
}

impl Tool {
    /// Every tool, for the panel.
    pub const ALL: [Self; 5] = [
        Self::View,
        Self::Brush,
        Self::Point,
        Self::Eraser,
        Self::Eyedropper,
    ];

    /// Its name (also its accessibility label).
    pub fn label(self) -> &'static str {
        match self {
            Self::View => "View tool",
            Self::Brush => "Brush",
            Self::Point => "Point hint",
            Self::Eraser => "Eraser",
            Self::Eyedropper => "Eyedropper",
        }
    }

    /// Its keyboard shortcut.
    pub fn key(self) -> egui::Key {
        match self {
            Self::View => egui::Key::V,
            Self::Brush => egui::Key::B,
            Self::Point => egui::Key::P,
            Self::Eraser => egui::Key::E,
            Self::Eyedropper => egui::Key::D,
        }
    }

    /// Whether a drag on the viewer paints or erases instead of wiping and panning.
    pub fn paints(self) -> bool {
        self != Self::View
    }
}

/// Brush sizes, in film pixels.
pub const SIZE_RANGE: std::ops::RangeInclusive<f32> = 1.0..=200.0;
/// The diameter of a point hint's patch, in film pixels.
pub const POINT_SIZE: f32 = 7.0;

/// The painting tools' state, kept by the app.
#[derive(Clone, Debug, PartialEq)]
pub struct PaintState {
    /// The tool in use.
    pub tool: Tool,
    /// The hint colour, sRGB.
    pub colour: [u8; 3],
    /// The brush diameter, in film pixels.
    pub size: f32,
    /// The stroke being painted: its points in film pixels.
    pub current: Option<Vec<[f32; 2]>>,
}

impl Default for PaintState {
    fn default() -> Self {
        Self {
            tool: Tool::View,
            colour: [200, 60, 50],
            size: 24.0,
            current: None,
        }
    }
}

impl PaintState {
    /// `[` and `]`: one step smaller or larger (by a quarter, so steps
    /// feel the same at every size).
    pub fn resize(&mut self, larger: bool) {
        // At least a pixel a step, so small brushes change too.
        let next = if larger {
            (self.size * 1.25).round().max(self.size + 1.0)
        } else {
            (self.size * 0.8).round().min(self.size - 1.0)
        };
        self.size = next.clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end());
    }

    /// The hint colour as stored in strokes: `"#rrggbb"`.
    pub fn colour_hex(&self) -> String {
        rgb8_to_hex(self.colour)
    }

    /// The finished stroke, if one is being painted, on a frame of `canvas`.
    pub fn finish(&mut self, canvas: [u32; 2]) -> Option<Stroke> {
        let points = self.current.take()?;
        (!points.is_empty()).then(|| Stroke {
            points,
            color: self.colour_hex(),
            size: if self.tool == Tool::Point {
                POINT_SIZE
            } else {
                self.size
            },
            canvas,
        })
    }
}

/// The film position under screen point `p`, for a picture of `size`
/// pixels shown in `picture`, in pixel coordinates (pixel `i`'s centre is
/// at `i`); clipped to the frame, so a hint painted past the edge lands on
/// the edge.
pub fn film_pixel(p: Pos2, picture: Rect, size: [usize; 2]) -> [f32; 2] {
    let [w, h] = size.map(|v| v as f32);
    let x = (p.x - picture.left()) / picture.width().max(1e-3) * w - 0.5;
    let y = (p.y - picture.top()) / picture.height().max(1e-3) * h - 0.5;
    [
        x.clamp(0.0, (w - 1.0).max(0.0)),
        y.clamp(0.0, (h - 1.0).max(0.0)),
    ]
}

/// Whether screen point `p` is on the picture.
pub fn on_picture(p: Pos2, picture: Rect) -> bool {
    picture.contains(p)
}

/// The screen point of film pixel `at`.
fn screen_point(at: [f32; 2], picture: Rect, size: [usize; 2]) -> Pos2 {
    let [w, h] = size.map(|v| v.max(1) as f32);
    Pos2::new(
        picture.left() + (at[0] + 0.5) / w * picture.width(),
        picture.top() + (at[1] + 0.5) / h * picture.height(),
    )
}

/// Adds `at` to a stroke's points unless it is within a pixel of the last
/// one (a still pointer adds nothing).
pub fn extend(points: &mut Vec<[f32; 2]>, at: [f32; 2]) {
    let far = points
        .last()
        .is_none_or(|l| (l[0] - at[0]).hypot(l[1] - at[1]) >= 1.0);
    if far {
        points.push(at);
    }
}

/// Whether `stroke` passes within `radius` film pixels of `at` (its own
/// half-width included).
pub fn touches(stroke: &Stroke, at: [f32; 2], radius: f32) -> bool {
    let reach = radius + stroke.size / 2.0;
    let near = |a: [f32; 2], b: [f32; 2]| {
        // Distance from `at` to the segment a-b.
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((at[0] - a[0]) * dx + (at[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (px, py) = (a[0] + t * dx, a[1] + t * dy);
        (at[0] - px).hypot(at[1] - py) <= reach
    };
    match stroke.points.as_slice() {
        [] => false,
        [only] => near(*only, *only),
        points => points.windows(2).any(|w| near(w[0], w[1])),
    }
}

/// A stroke being drawn: its points, colour and brush diameter.
pub type StrokeInProgress<'a> = (&'a [[f32; 2]], [u8; 3], f32);

/// Draws `strokes` (and the one being painted) over the picture, scaled
/// with it: a translucent band of the hint's colour, so the colour it gives
/// the film shows through, along a thin line that shows on any picture.
pub fn draw_strokes(
    painter: &egui::Painter,
    picture: Rect,
    size: [usize; 2],
    strokes: &[Stroke],
    current: Option<StrokeInProgress<'_>>,
) {
    let scale = picture.width() / size[0].max(1) as f32;
    let draw = |points: &[[f32; 2]], rgb: [u8; 3], diameter: f32| {
        let colour = Color32::from_rgb(rgb[0], rgb[1], rgb[2]);
        let width = (diameter * scale).max(2.0);
        let screen: Vec<Pos2> = points
            .iter()
            .map(|&p| screen_point(p, picture, size))
            .collect();
        let band = Color32::from_rgba_unmultiplied(rgb[0], rgb[1], rgb[2], 70);
        let line = egui::Stroke::new(1.5, colour);
        let shadow = egui::Stroke::new(3.0, Color32::from_black_alpha(140));
        if let [only] = screen.as_slice() {
            painter.circle_filled(*only, width / 2.0, band);
            painter.circle_stroke(*only, width / 2.0, shadow);
            painter.circle_stroke(*only, width / 2.0, line);
        } else {
            painter.line(screen.clone(), egui::Stroke::new(width, band));
            painter.line(screen.clone(), shadow);
            painter.line(screen, line);
        }
    };
    for s in strokes {
        draw(&s.points, hex_to_rgb8(&s.color).unwrap_or([128; 3]), s.size);
    }
    if let Some((points, rgb, diameter)) = current {
        draw(points, rgb, diameter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_points_map_to_film_pixels_and_clip_at_the_edges() {
        let picture = Rect::from_min_size(Pos2::new(100.0, 50.0), egui::vec2(320.0, 240.0));
        let size = [160, 120];
        assert_eq!(
            film_pixel(Pos2::new(100.0, 50.0), picture, size),
            [0.0, 0.0]
        );
        assert_eq!(
            film_pixel(Pos2::new(261.0, 171.0), picture, size),
            [80.0, 60.0]
        );
        // Outside the frame: clipped onto its edge.
        assert_eq!(
            film_pixel(Pos2::new(0.0, 400.0), picture, size),
            [0.0, 119.0]
        );
        assert_eq!(
            film_pixel(Pos2::new(999.0, -9.0), picture, size),
            [159.0, 0.0]
        );
        let back = screen_point([80.0, 60.0], picture, size);
        assert_eq!(film_pixel(back, picture, size), [80.0, 60.0]);
    }

    #[test]
    fn a_still_pointer_adds_no_points() {
        let mut points = Vec::new();
        extend(&mut points, [10.0, 10.0]);
        extend(&mut points, [10.4, 10.2]);
        extend(&mut points, [12.0, 10.0]);
        assert_eq!(points, vec![[10.0, 10.0], [12.0, 10.0]]);
    }

    #[test]
    fn the_eraser_finds_strokes_along_their_length() {
        let stroke = Stroke {
            points: vec![[0.0, 0.0], [100.0, 0.0]],
            color: "#ff0000".into(),
            size: 10.0,
            canvas: [200, 100],
        };
        assert!(touches(&stroke, [50.0, 4.0], 1.0), "on the stroke");
        assert!(
            touches(&stroke, [50.0, 9.0], 5.0),
            "within the eraser's radius"
        );
        assert!(!touches(&stroke, [50.0, 20.0], 5.0));
        assert!(!touches(&stroke, [120.0, 0.0], 5.0), "past its end");
        let dot = Stroke {
            points: vec![[30.0, 30.0]],
            ..stroke
        };
        assert!(touches(&dot, [33.0, 30.0], 0.0));
    }

    #[test]
    fn brush_sizes_step_and_stay_in_range() {
        let mut paint = PaintState::default();
        let start = paint.size;
        paint.resize(true);
        assert!(paint.size > start);
        for _ in 0..100 {
            paint.resize(false);
        }
        assert_eq!(paint.size, *SIZE_RANGE.start());
        for _ in 0..100 {
            paint.resize(true);
        }
        assert_eq!(paint.size, *SIZE_RANGE.end());
    }

    #[test]
    fn a_point_hint_is_a_small_patch_of_the_chosen_colour() {
        let mut paint = PaintState {
            tool: Tool::Point,
            colour: [10, 200, 30],
            size: 80.0,
            current: Some(vec![[5.0, 6.0]]),
        };
        let stroke = paint.finish([64, 48]).expect("a stroke");
        assert_eq!(stroke.size, POINT_SIZE);
        assert_eq!(stroke.color, "#0ac81e");
        assert_eq!(stroke.canvas, [64, 48]);
        assert!(paint.current.is_none());
        assert!(paint.finish([64, 48]).is_none(), "nothing being painted");
    }
}
