//! The hint colour picker: the a\*b\* plane shown at one lightness, the
//! lightness of the film's pixel under the pointer, so the user sees the
//! colours that pixel can really take (the film's luma is kept, only chroma
//! is added). Colours outside the sRGB gamut at that lightness are shown
//! dark and cannot be picked. Beside it, suggested colours.

use eframe::egui;
use egui::{Color32, Pos2, Rect, Sense, TextureHandle, TextureOptions, Vec2};
use tincture_core::metrics::{lab_to_srgb, lab_to_srgb8, srgb8_to_lab};
use tincture_core::project::rgb8_to_hex;

/// The plane spans a\* and b\* from `-AB_RANGE` to `AB_RANGE`.
pub const AB_RANGE: f64 = 100.0;
/// Pixels per side of the plane's picture.
const SIDE: usize = 128;
/// Shown size of the plane, in points.
const SHOWN: f32 = 150.0;

/// Whether Lab(`l`, `a`, `b`) is inside the sRGB gamut.
pub fn in_gamut(l: f64, a: f64, b: f64) -> bool {
    lab_to_srgb([l, a, b])
        .iter()
        .all(|&c| (-1e-4..=1.0 + 1e-4).contains(&c))
}

/// The a\*b\* of the plane's point `t` (each 0..1, left to right and top to bottom).
pub fn ab_at(t: [f32; 2]) -> [f64; 2] {
    [
        (f64::from(t[0]) * 2.0 - 1.0) * AB_RANGE,
        (1.0 - f64::from(t[1]) * 2.0) * AB_RANGE,
    ]
}

/// The plane's picture at lightness `l`: each pixel its colour, or a dark
/// checker where the colour is out of gamut.
pub fn plane_image(l: f64) -> egui::ColorImage {
    let mut pixels = Vec::with_capacity(SIDE * SIDE);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let t = [
                (x as f32 + 0.5) / SIDE as f32,
                (y as f32 + 0.5) / SIDE as f32,
            ];
            let [a, b] = ab_at(t);
            pixels.push(if in_gamut(l, a, b) {
                let [r, g, bl] = lab_to_srgb8([l, a, b]);
                Color32::from_rgb(r, g, bl)
            } else if (x / 8 + y / 8) % 2 == 0 {
                Color32::from_gray(28)
            } else {
                Color32::from_gray(40)
            });
        }
    }
    egui::ColorImage::new([SIDE, SIDE], pixels)
}

/// The picker's state: the plane's texture and the lightness it shows.
pub struct Picker {
    texture: Option<(i32, TextureHandle)>,
    /// The lightness shown (L\*, 0..100).
    pub lightness: f64,
    /// Whether the lightness follows the pointer (else the hint colour's).
    pub from_pointer: bool,
}

impl Default for Picker {
    fn default() -> Self {
        Self {
            texture: None,
            lightness: 50.0,
            from_pointer: false,
        }
    }
}

impl Picker {
    /// Shows the plane at `self.lightness`; a click in gamut sets `colour`
    /// (keeping its chroma, at the lightness shown). Returns whether it did.
    pub fn ui(&mut self, ui: &mut egui::Ui, colour: &mut [u8; 3]) -> bool {
        let l = self.lightness.clamp(1.0, 99.0);
        let key = l.round() as i32;
        if self.texture.as_ref().is_none_or(|(k, _)| *k != key) {
            let texture = ui.ctx().load_texture(
                "hint-picker-plane",
                plane_image(f64::from(key)),
                TextureOptions::LINEAR,
            );
            self.texture = Some((key, texture));
        }
        let Some((_, texture)) = &self.texture else {
            return false;
        };
        let (rect, response) = ui.allocate_exact_size(Vec2::splat(SHOWN), Sense::click_and_drag());
        let response = response.on_hover_text(format!(
            "Hint colours at lightness L* {key}{}: dark squares cannot be shown at this lightness",
            if self.from_pointer {
                " (the film under the pointer)"
            } else {
                ""
            }
        ));
        let painter = ui.painter_at(rect);
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        painter.image(texture.id(), rect, uv, Color32::WHITE);
        // Where the hint colour's chroma sits.
        let [_, a, b] = srgb8_to_lab(*colour);
        let at = Pos2::new(
            rect.left() + ((a / AB_RANGE + 1.0) / 2.0) as f32 * rect.width(),
            rect.top() + ((1.0 - b / AB_RANGE) / 2.0) as f32 * rect.height(),
        );
        if rect.contains(at) {
            painter.circle_stroke(at, 5.0, egui::Stroke::new(2.0, Color32::WHITE));
            painter.circle_stroke(at, 6.5, egui::Stroke::new(1.0, Color32::BLACK));
        }
        let mut picked = false;
        if (response.clicked() || response.dragged())
            && let Some(p) = response.interact_pointer_pos()
        {
            let t = [
                ((p.x - rect.left()) / rect.width()).clamp(0.0, 1.0),
                ((p.y - rect.top()) / rect.height()).clamp(0.0, 1.0),
            ];
            let [a, b] = ab_at(t);
            if in_gamut(f64::from(key), a, b) {
                *colour = lab_to_srgb8([f64::from(key), a, b]);
                picked = true;
            }
        }
        picked
    }
}

/// How many of the model's likely colours the picker offers.
pub const LIKELY_LIMIT: usize = 5;
/// The smallest probability worth offering.
pub const LIKELY_MIN_PROBABILITY: f32 = 0.03;

/// Lab(`l`, `a`, `b`) brought into the sRGB gamut by lowering its chroma
/// (hue and lightness kept: the film's luma is what the pixel will have).
pub fn in_gamut_at(l: f64, a: f64, b: f64) -> [f64; 2] {
    if in_gamut(l, a, b) {
        return [a, b];
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..20 {
        let mid = 0.5 * (lo + hi);
        if in_gamut(l, a * mid, b * mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    [a * lo, b * lo]
}

/// The model's most likely colours at the point `(u, v)` of the frame
/// (each 0..1), as sRGB at the lightness `l` of the film there, with their
/// probabilities; most likely first, without repeats.
pub fn likely_colours(
    map: &tincture_infer::model::ClassMap,
    u: f32,
    v: f32,
    l: f64,
) -> Vec<([u8; 3], f32)> {
    let mut out: Vec<([u8; 3], f32)> = Vec::new();
    for c in map.likely_at(u, v, LIKELY_LIMIT, LIKELY_MIN_PROBABILITY) {
        let [a, b] = in_gamut_at(l, f64::from(c.ab[0]), f64::from(c.ab[1]));
        let rgb = lab_to_srgb8([l, a, b]);
        if let Some(known) = out.iter_mut().find(|(k, _)| *k == rgb) {
            known.1 += c.probability;
        } else {
            out.push((rgb, c.probability));
        }
    }
    out
}

/// Where the model's suggestions for the frame on screen stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikelyState {
    /// Not asked for yet.
    NotAsked,
    /// The model is working on the frame.
    Working,
    /// Here: they follow the pointer.
    Ready,
    /// The model gives none (no model, or one without a class distribution).
    NoModel,
}

/// The model's likely colours under the pointer as swatches, with their
/// probabilities; returns the one clicked.
pub fn likely_ui(
    ui: &mut egui::Ui,
    colours: &[([u8; 3], f32)],
    state: LikelyState,
) -> Option<[u8; 3]> {
    let mut picked = None;
    match state {
        LikelyState::NotAsked | LikelyState::NoModel => return None,
        LikelyState::Working => {
            ui.weak("The model's likely colours: working…");
            return None;
        }
        LikelyState::Ready if colours.is_empty() => {
            ui.weak("The model's likely colours: point at the picture");
            return None;
        }
        LikelyState::Ready => {}
    }
    ui.weak("The model's likely colours here");
    ui.horizontal_wrapped(|ui| {
        for (i, (c, p)) in colours.iter().enumerate() {
            let name = format!("Model colour {}: {}", i + 1, rgb8_to_hex(*c));
            let hover = format!("{name}: the model gives it {:.0}%", p * 100.0);
            if swatch(ui, *c, &name).on_hover_text(hover).clicked() {
                picked = Some(*c);
            }
        }
    });
    picked
}

/// Suggested hint colours: the colour at the pointer now (what the
/// colorizer proposes there), then the project's own colours, newest
/// first, without repeats, at most `limit`.
pub fn suggestions(here: Option<[u8; 3]>, project: &[[u8; 3]], limit: usize) -> Vec<[u8; 3]> {
    let mut out: Vec<[u8; 3]> = Vec::new();
    for c in here.into_iter().chain(project.iter().rev().copied()) {
        if !out.contains(&c) {
            out.push(c);
        }
        if out.len() == limit {
            break;
        }
    }
    out
}

/// A colour swatch button, named for AccessKit.
pub fn swatch(ui: &mut egui::Ui, c: [u8; 3], name: &str) -> egui::Response {
    let button = egui::Button::new("")
        .fill(Color32::from_rgb(c[0], c[1], c[2]))
        .min_size(Vec2::new(22.0, 18.0));
    ui.add(button).accessible_name(name)
}

/// Shows the suggestions as swatches; returns the one clicked.
pub fn suggestions_ui(ui: &mut egui::Ui, colours: &[[u8; 3]]) -> Option<[u8; 3]> {
    let mut picked = None;
    ui.horizontal_wrapped(|ui| {
        for (i, c) in colours.iter().enumerate() {
            let name = format!("Suggested colour {}: {}", i + 1, rgb8_to_hex(*c));
            let hover = if i == 0 {
                format!("{name} (here now)")
            } else {
                name.clone()
            };
            if swatch(ui, *c, &name).on_hover_text(hover).clicked() {
                picked = Some(*c);
            }
        }
    });
    picked
}

/// What the archivist did with the project's palette this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaletteAction {
    /// Paint with this colour.
    Pick([u8; 3]),
    /// Add the hint colour.
    Add,
    /// Remove the colour at this index.
    Remove(usize),
}

/// The project's palette: a swatch per colour (click to paint with it, or
/// its context menu to remove it) and a button that adds the hint colour.
pub fn palette_ui(ui: &mut egui::Ui, colours: &[[u8; 3]]) -> Option<PaletteAction> {
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        ui.label("Palette");
        for (i, c) in colours.iter().enumerate() {
            let name = format!("Palette colour {}: {}", i + 1, rgb8_to_hex(*c));
            let r =
                swatch(ui, *c, &name).on_hover_text(format!("{name} (right-click to remove it)"));
            if r.clicked() {
                action = Some(PaletteAction::Pick(*c));
            }
            r.context_menu(|ui| {
                if ui
                    .button("Remove from palette")
                    .accessible_name(format!("Remove palette colour {}", i + 1))
                    .clicked()
                {
                    action = Some(PaletteAction::Remove(i));
                    ui.close();
                }
            });
        }
        if ui
            .small_button("+")
            .accessible_name("Add the hint colour to the palette")
            .on_hover_text("Keep the hint colour in this project's palette")
            .clicked()
        {
            action = Some(PaletteAction::Add);
        }
    });
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plane_shows_only_colours_a_pixel_of_that_lightness_can_take() {
        // Neutral is in gamut at every lightness; strong chroma is not near black or white.
        for l in [5.0, 50.0, 95.0] {
            assert!(in_gamut(l, 0.0, 0.0));
        }
        assert!(in_gamut(50.0, 40.0, 20.0));
        assert!(!in_gamut(5.0, 80.0, 80.0));
        assert!(!in_gamut(97.0, 0.0, -90.0));
        let dark = plane_image(10.0);
        let light = plane_image(60.0);
        let coloured = |img: &egui::ColorImage| {
            img.pixels
                .iter()
                .filter(|c| !(c.r() == c.g() && c.g() == c.b()))
                .count()
        };
        assert!(
            coloured(&dark) < coloured(&light),
            "fewer colours near black"
        );
        assert_eq!(ab_at([0.5, 0.5]), [0.0, 0.0]);
        assert_eq!(ab_at([1.0, 0.0]), [AB_RANGE, AB_RANGE]);
    }

    #[test]
    fn suggestions_put_the_colour_here_first_then_the_newest_of_the_project() {
        let project = [[1, 1, 1], [2, 2, 2], [1, 1, 1], [3, 3, 3]];
        assert_eq!(
            suggestions(Some([9, 9, 9]), &project, 3),
            vec![[9, 9, 9], [3, 3, 3], [1, 1, 1]]
        );
        assert_eq!(suggestions(None, &[], 5), Vec::<[u8; 3]>::new());
        assert_eq!(
            suggestions(Some([2, 2, 2]), &project, 9),
            vec![[2, 2, 2], [3, 3, 3], [1, 1, 1]]
        );
    }
}
