//! The timeline: a thumbnail strip, shot boundaries, keyframe markers, the
//! in/out range and the playhead, over a graph row (egui_plot) of per-frame
//! flicker filled in as frames are coloured. Click or drag anywhere to scrub.

use eframe::egui;
use egui::{Color32, Pos2, Rect, Sense, Stroke, TextureId, Vec2};

use crate::flicker::Flicker;

/// Where the graph row was last drawn is kept in egui's memory under this key.
pub const GRAPH_RECT_KEY: &str = "tincture-flicker-graph-rect";

/// The graph row shows values up to this many times their threshold.
const GRAPH_CEILING: f64 = 3.0;

/// A click on the graph row snaps to a marked frame this close, in screen points.
const SNAP: f32 = 6.0;

/// A thumbnail for the strip.
#[derive(Clone, Copy, Debug)]
pub struct Thumb {
    /// The frame it shows.
    pub frame: u64,
    /// Its texture.
    pub texture: TextureId,
    /// Its width over its height.
    pub aspect: f32,
}

/// What the timeline shows.
pub struct Timeline<'a> {
    /// Frames in the film.
    pub frame_count: u64,
    /// The playhead.
    pub position: u64,
    /// Shots as inclusive ranges (empty: the film is one shot).
    pub shots: &'a [(u64, u64)],
    /// Keyframes.
    pub keyframes: &'a [u64],
    /// The in and out points, for export.
    pub in_out: (Option<u64>, Option<u64>),
    /// Thumbnails, in frame order.
    pub thumbs: &'a [Thumb],
    /// Per-frame flicker where measured.
    pub flicker: Option<&'a Flicker>,
    /// Stretches of frames coloured mostly from weak sources, inclusive
    /// (from "Suggest keyframes").
    pub weak: &'a [(u64, u64)],
    /// Frames suggested as keyframes.
    pub suggested: &'a [u64],
}

/// What the user did on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineAction {
    /// Clicked or dragged on the strip: move the playhead here.
    Scrub(u64),
    /// Clicked on the graph row: this frame (a marked frame, if one is near).
    Jump(u64),
}

/// Frames coloured mostly from weak sources.
pub const WEAK_COLOUR: Color32 = Color32::from_rgb(235, 140, 40);
/// Suggested keyframes.
pub const SUGGESTED_COLOUR: Color32 = Color32::from_rgb(250, 230, 90);

/// Height of the timeline's rows: thumbnails, markers, graph.
const THUMB_H: f32 = 44.0;
const MARK_H: f32 = 22.0;
const GRAPH_H: f32 = 70.0;

impl Timeline<'_> {
    fn x_of(&self, rect: Rect, frame: u64) -> f32 {
        let n = self.frame_count.max(1) as f32;
        rect.left() + (frame as f32 + 0.5) / n * rect.width()
    }

    fn frame_at(&self, rect: Rect, x: f32) -> u64 {
        let n = self.frame_count.max(1);
        let t = ((x - rect.left()) / rect.width().max(1.0)).clamp(0.0, 1.0);
        ((t * n as f32) as u64).min(n - 1)
    }

    /// Draws the timeline; returns what the user did on it.
    pub fn show(&self, ui: &mut egui::Ui) -> Option<TimelineAction> {
        let width = ui.available_width();
        let (rect, response) =
            ui.allocate_exact_size(Vec2::new(width, THUMB_H + MARK_H), Sense::click_and_drag());
        let response = response.on_hover_text("Timeline: click or drag to move the playhead");
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, Color32::from_gray(24));
        let thumbs = Rect::from_min_size(rect.min, Vec2::new(rect.width(), THUMB_H));
        let marks = Rect::from_min_size(
            Pos2::new(rect.left(), thumbs.bottom()),
            Vec2::new(rect.width(), MARK_H),
        );
        // Thumbnails: each fills the span up to the next one.
        for (i, t) in self.thumbs.iter().enumerate() {
            let x0 = self.x_of(thumbs, t.frame);
            let next = self
                .thumbs
                .get(i + 1)
                .map_or(thumbs.right(), |n| self.x_of(thumbs, n.frame));
            // Never stretched: a thumbnail whose neighbours have not arrived keeps its shape.
            let x1 = next.min(x0 + THUMB_H * t.aspect);
            let r = Rect::from_min_max(Pos2::new(x0, thumbs.top()), Pos2::new(x1, thumbs.bottom()));
            let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
            painter.image(t.texture, r.shrink(0.5), uv, Color32::WHITE);
        }
        // In/out range.
        if let (Some(a), Some(b)) = self.in_out {
            let r = Rect::from_min_max(
                Pos2::new(self.x_of(rect, a), marks.top()),
                Pos2::new(self.x_of(rect, b), marks.bottom()),
            );
            painter.rect_filled(r, 0.0, Color32::from_rgba_unmultiplied(90, 140, 220, 70));
        }
        // Shots, alternately shaded, with their boundaries.
        for (i, &(s, e)) in self.shots.iter().enumerate() {
            let n = self.frame_count.max(1) as f32;
            let x0 = rect.left() + s as f32 / n * rect.width();
            let x1 = rect.left() + (e + 1) as f32 / n * rect.width();
            let shade = if i % 2 == 0 { 48 } else { 36 };
            let r = Rect::from_min_max(
                Pos2::new(x0, marks.top() + 2.0),
                Pos2::new(x1, marks.top() + 8.0),
            );
            painter.rect_filled(r, 0.0, Color32::from_gray(shade + 40));
            if i > 0 {
                painter.line_segment(
                    [Pos2::new(x0, rect.top()), Pos2::new(x0, marks.bottom())],
                    Stroke::new(1.5, Color32::from_rgb(240, 200, 80)),
                );
            }
        }
        // Weak colour: an orange band under the shots.
        for &(a, b) in self.weak {
            let n = self.frame_count.max(1) as f32;
            let x0 = rect.left() + a as f32 / n * rect.width();
            let x1 = rect.left() + (b + 1) as f32 / n * rect.width();
            let r = Rect::from_min_max(
                Pos2::new(x0, marks.bottom() - 5.0),
                Pos2::new(x1.max(x0 + 1.0), marks.bottom() - 1.0),
            );
            painter.rect_filled(r, 0.0, WEAK_COLOUR);
        }
        // Suggested keyframes: hollow triangles pointing down at the strip.
        for &f in self.suggested {
            let c = Pos2::new(self.x_of(rect, f), marks.center().y + 3.0);
            let d = 5.0;
            painter.add(egui::Shape::convex_polygon(
                vec![
                    c + Vec2::new(-d, -d),
                    c + Vec2::new(d, -d),
                    c + Vec2::new(0.0, d),
                ],
                Color32::TRANSPARENT,
                Stroke::new(1.5, SUGGESTED_COLOUR),
            ));
        }
        // Keyframe markers: diamonds.
        for &k in self.keyframes {
            let c = Pos2::new(self.x_of(rect, k), marks.center().y + 3.0);
            let d = 5.0;
            painter.add(egui::Shape::convex_polygon(
                vec![
                    c + Vec2::new(0.0, -d),
                    c + Vec2::new(d, 0.0),
                    c + Vec2::new(0.0, d),
                    c + Vec2::new(-d, 0.0),
                ],
                Color32::from_rgb(120, 200, 255),
                Stroke::new(1.0, Color32::BLACK),
            ));
        }
        // The playhead.
        let x = self.x_of(rect, self.position);
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(2.0, Color32::from_rgb(255, 80, 60)),
        );
        let mut seek = None;
        if (response.clicked() || response.dragged())
            && let Some(p) = response.interact_pointer_pos()
        {
            seek = Some(TimelineAction::Scrub(self.frame_at(rect, p.x)));
        }
        self.graph(ui, width).or(seek)
    }

    /// The graph row: warp error and CDC, each over its own threshold (so
    /// 1 is where a frame starts to stand out), marked frames in red.
    /// Returns the frame clicked.
    fn graph(&self, ui: &mut egui::Ui, width: f32) -> Option<TimelineAction> {
        use egui_plot::{HLine, Line, Plot, PlotPoints, Points, VLine};
        // One line per run of consecutive frames: frames not measured are
        // a gap, not a straight line between their neighbours.
        let mut warp: Vec<Vec<[f64; 2]>> = Vec::new();
        let mut cdc: Vec<Vec<[f64; 2]>> = Vec::new();
        let mut marks = Vec::new();
        let mut previous: Option<u64> = None;
        let mut marked_frames = Vec::new();
        if let Some(f) = self.flicker {
            let t = f.thresholds();
            // Over the threshold, drawn up to three times it: one spike does not flatten the rest.
            let shown = |v: f64| v.min(GRAPH_CEILING);
            for (frame, s) in f.samples() {
                if previous.is_none_or(|p| p + 1 != frame) {
                    warp.push(Vec::new());
                    cdc.push(Vec::new());
                }
                previous = Some(frame);
                let x = frame as f64;
                let w = s.warp / t.warp;
                warp.last_mut().expect("a run").push([x, shown(w)]);
                if let Some(c) = s.cdc.filter(|_| t.cdc.is_finite()) {
                    cdc.last_mut().expect("a run").push([x, shown(c / t.cdc)]);
                }
                if Flicker::is_marked(&s, &t) {
                    let c = s.cdc.map_or(0.0, |c| c / t.cdc);
                    marks.push([x, shown(w.max(c))]);
                    marked_frames.push(frame);
                }
            }
        }
        // Frame f sits at the same x as on the strip above: the plot spans
        // frames -0.5 to n - 0.5 edge to edge, with no axis taking width.
        let n = self.frame_count.max(1) as f64;
        // Keyed by the film's length, so a new film starts from its own bounds.
        let shown = Plot::new(("flicker_graph", self.frame_count))
            .height(GRAPH_H)
            .width(width)
            .allow_scroll(false)
            .allow_zoom(false)
            .allow_drag(false)
            .allow_double_click_reset(false)
            .show_axes([false, false])
            .default_x_bounds(-0.5, n - 0.5)
            .set_margin_fraction(Vec2::new(0.0, 0.1))
            .include_y(0.0)
            .include_y(1.2)
            .show(ui, |plot| {
                plot.hline(
                    HLine::new("threshold", 1.0)
                        .color(Color32::from_rgba_unmultiplied(255, 90, 70, 90)),
                );
                for run in warp {
                    plot.line(
                        Line::new("warp error", PlotPoints::from(run))
                            .color(Color32::from_rgb(120, 200, 255)),
                    );
                }
                for run in cdc {
                    plot.line(
                        Line::new("CDC", PlotPoints::from(run))
                            .color(Color32::from_rgb(230, 190, 90)),
                    );
                }
                plot.points(
                    Points::new("marked", PlotPoints::from(marks))
                        .radius(3.5)
                        .color(Color32::from_rgb(255, 60, 50)),
                );
                plot.vline(
                    VLine::new("playhead", self.position as f64)
                        .color(Color32::from_rgb(255, 80, 60)),
                );
            });
        let rect = shown.response.rect;
        ui.ctx()
            .data_mut(|d| d.insert_temp(egui::Id::unique(GRAPH_RECT_KEY), rect));
        ui.painter().text(
            rect.left_top() + Vec2::new(4.0, 2.0),
            egui::Align2::LEFT_TOP,
            "flicker: warp error (blue), CDC (amber), over their thresholds; red: stands out (N: next)",
            egui::FontId::proportional(11.0),
            Color32::from_gray(150),
        );
        let clicked = shown.response.clicked() || shown.response.drag_stopped();
        let p = shown.response.interact_pointer_pos().filter(|_| clicked)?;
        let frame = self.frame_at(rect, p.x);
        // A click near a red mark goes to that frame.
        let snapped = marked_frames
            .iter()
            .copied()
            .min_by(|a, b| {
                (self.x_of(rect, *a) - p.x)
                    .abs()
                    .total_cmp(&(self.x_of(rect, *b) - p.x).abs())
            })
            .filter(|&m| (self.x_of(rect, m) - p.x).abs() <= SNAP);
        Some(TimelineAction::Jump(snapped.unwrap_or(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_frames_round_trip() {
        let t = Timeline {
            frame_count: 100,
            position: 0,
            shots: &[],
            keyframes: &[],
            in_out: (None, None),
            thumbs: &[],
            flicker: None,
            weak: &[],
            suggested: &[],
        };
        let rect = Rect::from_min_size(Pos2::new(10.0, 0.0), Vec2::new(1000.0, 50.0));
        for f in [0, 1, 50, 99] {
            assert_eq!(t.frame_at(rect, t.x_of(rect, f)), f);
        }
        assert_eq!(t.frame_at(rect, -100.0), 0);
        assert_eq!(t.frame_at(rect, 5000.0), 99);
    }
}
