//! The before/after viewer: a draggable vertical wipe (the default), side
//! by side, or either side alone; zoom to fit, 1:1 or by the mouse wheel,
//! and pan by dragging when zoomed in.

use eframe::egui;
use egui::{Color32, Pos2, Rect, Sense, TextureId, Vec2};

/// How before (the film) and after (coloured) share the viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitMode {
    /// A vertical wipe: before on the left, after on the right.
    Wipe,
    /// Before and after next to each other.
    SideBySide,
    /// The film alone.
    Before,
    /// The coloured frame alone.
    After,
}

impl SplitMode {
    /// Every mode, for menus.
    pub const ALL: [Self; 4] = [Self::Wipe, Self::SideBySide, Self::Before, Self::After];

    /// The menu label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Wipe => "Wipe",
            Self::SideBySide => "Side by side",
            Self::Before => "Before only",
            Self::After => "After only",
        }
    }
}

/// The viewer's settings, kept by the app.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewState {
    /// The split mode.
    pub mode: SplitMode,
    /// Where the wipe is, 0 (left edge of the picture) to 1 (right edge).
    pub wipe: f32,
    /// Screen pixels per film pixel; `None` fits the picture to the viewer.
    pub zoom: Option<f32>,
    /// Offset of the picture's centre from the viewer's, in screen pixels.
    pub pan: Vec2,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            mode: SplitMode::Wipe,
            wipe: 0.5,
            zoom: None,
            pan: Vec2::ZERO,
        }
    }
}

/// One side's picture.
#[derive(Clone, Copy, Debug)]
pub struct Side {
    /// The texture.
    pub texture: TextureId,
    /// Its size in pixels.
    pub size: [usize; 2],
}

/// Where a picture of `size` (with `pixel_aspect`) goes in `area` under `view`.
pub fn picture_rect(area: Rect, size: [usize; 2], pixel_aspect: f32, view: &ViewState) -> Rect {
    let [w, h] = size;
    let natural = Vec2::new(w as f32 * pixel_aspect, h as f32);
    match view.zoom {
        None => fit_rect(area, natural.x / natural.y.max(1.0)),
        Some(z) => Rect::from_center_size(area.center() + view.pan, natural * z),
    }
}

/// The largest rectangle of width/height `aspect` that fits in `outer`, centred.
pub fn fit_rect(outer: Rect, aspect: f32) -> Rect {
    if !(aspect.is_finite() && aspect > 0.0) || outer.width() <= 0.0 || outer.height() <= 0.0 {
        return outer;
    }
    let size = if outer.width() / outer.height() > aspect {
        Vec2::new(outer.height() * aspect, outer.height())
    } else {
        Vec2::new(outer.width(), outer.width() / aspect)
    };
    Rect::from_center_size(outer.center(), size)
}

/// Draws the viewer into `rect` and handles wipe dragging, panning and
/// wheel zoom. `before` and `after` are the two pictures; `hold_before`
/// shows the film alone while a key is held. With `painting`, drags and
/// clicks are left to the caller's tool (the wheel still zooms).
#[expect(clippy::too_many_arguments, reason = "the viewer's inputs, each plain")]
pub fn show(
    ui: &mut egui::Ui,
    rect: Rect,
    view: &mut ViewState,
    before: Option<Side>,
    after: Option<Side>,
    pixel_aspect: f32,
    hold_before: bool,
    painting: bool,
) -> egui::Response {
    let response = ui.interact(rect, ui.scope_id().with("viewer"), Sense::click_and_drag());
    let response = if painting {
        response.on_hover_cursor(egui::CursorIcon::Crosshair)
    } else {
        response.on_hover_text("Drag the line to wipe; wheel to zoom; drag to pan when zoomed")
    };
    // While a tool paints, the drags are its own.
    let dragged = response.dragged() && !painting;
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(16));
    let Some(base) = before.or(after) else {
        return response;
    };
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    // Wheel zoom about the pointer.
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            let current = picture_rect(rect, base.size, pixel_aspect, view);
            let z0 = current.width() / (base.size[0] as f32 * pixel_aspect).max(1.0);
            let z1 = (z0 * (scroll / 200.0).exp()).clamp(0.05, 32.0);
            let pointer = ui.input(|i| i.pointer.hover_pos()).unwrap_or(rect.center());
            let centre = current.center();
            let new_centre = pointer + (centre - pointer) * (z1 / z0);
            view.zoom = Some(z1);
            view.pan = new_centre - rect.center();
        }
    }
    let mode = if hold_before {
        SplitMode::Before
    } else {
        view.mode
    };
    match mode {
        SplitMode::SideBySide => {
            let half = rect.width() / 2.0;
            let left = Rect::from_min_size(rect.min, Vec2::new(half, rect.height()));
            let right = left.translate(Vec2::new(half, 0.0));
            for (area, side, label) in [(left, before, "Before"), (right, after, "After")] {
                if let Some(s) = side {
                    let r = picture_rect(area, s.size, pixel_aspect, view);
                    ui.painter_at(area).image(s.texture, r, uv, Color32::WHITE);
                }
                corner_label(&painter, area, label);
            }
            if dragged && view.zoom.is_some() {
                view.pan += response.drag_delta();
            }
        }
        SplitMode::Before | SplitMode::After => {
            let side = if mode == SplitMode::Before {
                before
            } else {
                after.or(before)
            };
            if let Some(s) = side {
                let r = picture_rect(rect, s.size, pixel_aspect, view);
                painter.image(s.texture, r, uv, Color32::WHITE);
            }
            corner_label(
                &painter,
                rect,
                if mode == SplitMode::Before {
                    "Before"
                } else {
                    "After"
                },
            );
            if dragged && view.zoom.is_some() {
                view.pan += response.drag_delta();
            }
        }
        SplitMode::Wipe => {
            let r = picture_rect(rect, base.size, pixel_aspect, view);
            let x = r.left() + view.wipe * r.width();
            // Dragging near the line moves it; elsewhere it pans a zoomed picture.
            let near_line = |p: Pos2| (p.x - x).abs() < 12.0;
            if response.drag_started()
                && !painting
                && let Some(p) = response.interact_pointer_pos()
            {
                ui.memory_mut(|m| {
                    m.data
                        .insert_temp(ui.scope_id().with("wiping"), near_line(p))
                });
            }
            let wiping: bool = ui.memory(|m| {
                m.data
                    .get_temp(ui.scope_id().with("wiping"))
                    .unwrap_or(false)
            });
            if dragged {
                if wiping || view.zoom.is_none() {
                    if let Some(p) = response.interact_pointer_pos() {
                        view.wipe = ((p.x - r.left()) / r.width().max(1.0)).clamp(0.0, 1.0);
                    }
                } else {
                    view.pan += response.drag_delta();
                }
            }
            if response.clicked()
                && !painting
                && let Some(p) = response.interact_pointer_pos()
            {
                view.wipe = ((p.x - r.left()) / r.width().max(1.0)).clamp(0.0, 1.0);
            }
            let x = r.left() + view.wipe * r.width();
            let left_clip = Rect::from_min_max(rect.min, Pos2::new(x, rect.max.y));
            let right_clip = Rect::from_min_max(Pos2::new(x, rect.min.y), rect.max);
            if let Some(b) = before {
                ui.painter_at(left_clip)
                    .image(b.texture, r, uv, Color32::WHITE);
            }
            if let Some(a) = after.or(before) {
                ui.painter_at(right_clip)
                    .image(a.texture, r, uv, Color32::WHITE);
            }
            painter.line_segment(
                [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
                egui::Stroke::new(2.0, Color32::from_gray(230)),
            );
            painter.circle_filled(Pos2::new(x, rect.center().y), 6.0, Color32::from_gray(230));
            corner_label(&painter, left_clip, "Before");
            let after_label = Rect::from_min_max(Pos2::new(x, rect.min.y), rect.max);
            corner_label(&painter, after_label, "After");
        }
    }
    response
}

fn corner_label(painter: &egui::Painter, area: Rect, text: &str) {
    if area.width() < 60.0 {
        return;
    }
    let pos = area.left_bottom() + Vec2::new(8.0, -8.0);
    let galley = painter.layout_no_wrap(
        text.to_owned(),
        egui::FontId::proportional(13.0),
        Color32::from_gray(235),
    );
    let bg = Rect::from_min_size(
        pos - Vec2::new(4.0, galley.size().y + 2.0),
        galley.size() + Vec2::new(8.0, 4.0),
    );
    painter.rect_filled(bg, 3.0, Color32::from_black_alpha(150));
    painter.galley(
        pos - Vec2::new(0.0, galley.size().y),
        galley,
        Color32::WHITE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let outer = Rect::from_min_size(Pos2::ZERO, Vec2::new(400.0, 200.0));
        let r = fit_rect(outer, 1.0);
        assert_eq!(r.size(), Vec2::new(200.0, 200.0));
        assert_eq!(r.center(), outer.center());
        let r = fit_rect(outer, 4.0);
        assert_eq!(r.size(), Vec2::new(400.0, 100.0));
        assert_eq!(fit_rect(outer, f32::NAN), outer);
    }

    #[test]
    fn zoom_one_to_one_shows_film_pixels() {
        let area = Rect::from_min_size(Pos2::ZERO, Vec2::new(400.0, 300.0));
        let view = ViewState {
            zoom: Some(1.0),
            pan: Vec2::new(10.0, 0.0),
            ..ViewState::default()
        };
        let r = picture_rect(area, [640, 480], 1.0, &view);
        assert_eq!(r.size(), Vec2::new(640.0, 480.0));
        assert_eq!(r.center(), area.center() + Vec2::new(10.0, 0.0));
        // Anamorphic pixels are widened.
        let r = picture_rect(area, [100, 100], 2.0, &view);
        assert_eq!(r.size(), Vec2::new(200.0, 100.0));
    }
}
