//! "Compare settings": the frame under the playhead, or a short range from
//! it, coloured under two to four variants of the shot's settings (the
//! model's colour on or off, its render resolution, saturation, shadow
//! roll-off, stabiliser strength), side by side, so the archivist can choose
//! by eye, and by each variant's measured flicker over the range, and take
//! one for the shot.
//!
//! The variants are coloured on the colour worker
//! ([`crate::colour::ColourCommand::Compare`]) by the same engine as the
//! preview; the window only edits settings and shows the pictures.

use eframe::egui;
use egui::TextureHandle;
use tincture_core::project::{Project, SATURATION_MAX, ShotSettings};

/// Fewest and most variants compared at once.
pub const VARIANTS: std::ops::RangeInclusive<usize> = 2..=4;

/// The ranges offered: frames coloured per variant from the playhead.
pub const RANGES: &[u64] = &[1, 4, 8];

/// The letter naming variant `i` ("A", "B", ...).
pub fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// The starting variants for a shot whose settings are `current`: those
/// settings, a more saturated look, and the other choice of the model's
/// colour.
pub fn starting_variants(current: &ShotSettings) -> Vec<ShotSettings> {
    let mut richer = current.clone();
    richer.saturation = (current.saturation * 1.3).min(SATURATION_MAX);
    let mut model = current.clone();
    model.model_prior = !current.model_prior;
    vec![current.clone(), richer, model]
}

/// `project` with `settings` on the shot holding `frame` (or as the
/// defaults when the film has no shots yet).
pub fn with_settings(project: &Project, frame: u64, settings: &ShotSettings) -> Project {
    let mut p = project.clone();
    set_settings(&mut p, frame, settings.clone());
    p
}

/// Gives the shot holding `frame` these settings (or makes them the
/// defaults when the film has no shots yet).
pub fn set_settings(project: &mut Project, frame: u64, settings: ShotSettings) {
    match project.shot_index(frame) {
        Some(i) => project.shots[i].settings = Some(settings),
        None => project.defaults = settings,
    }
}

/// What the window asks of the app this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum CompareAction {
    /// Colour the frame under the playhead with each variant.
    Render,
    /// Give the shot these settings.
    Use(ShotSettings),
}

/// The window's state: the variants and the last pictures.
#[derive(Default)]
pub struct Compare {
    /// Whether the window is open.
    pub open: bool,
    /// The settings compared.
    pub variants: Vec<ShotSettings>,
    /// The newest comparison asked for.
    pub generation: u64,
    /// Whether a comparison is being coloured.
    pub pending: bool,
    /// Frames coloured per variant, from the playhead (one of [`RANGES`]).
    pub count: u64,
    /// The first frame the pictures show, and per variant its pictures.
    pub results: Option<(u64, Vec<Vec<TextureHandle>>)>,
    /// Which of the range's frames is shown.
    pub offset: usize,
    /// The variants the pictures were coloured with.
    pub shown: Vec<ShotSettings>,
    /// The pictures' pixels: per variant, one per frame.
    pub pictures: Vec<Vec<std::sync::Arc<egui::ColorImage>>>,
    /// Per variant, its mean flicker over the range (when more than one frame).
    pub flicker: Vec<Option<crate::flicker::Sample>>,
}

impl Compare {
    /// Opens the window with variants of `current`.
    pub fn open_with(&mut self, current: &ShotSettings) {
        self.open = true;
        self.variants = starting_variants(current);
        self.count = self.count.max(1);
        self.results = None;
        self.shown.clear();
    }

    /// Takes the pictures of comparison `generation` (older ones are dropped).
    pub fn receive(
        &mut self,
        ctx: &egui::Context,
        generation: u64,
        index: u64,
        frames: &[Vec<crate::worker::RgbFrame>],
        flicker: Vec<Option<crate::flicker::Sample>>,
    ) {
        if generation != self.generation {
            return;
        }
        self.pending = false;
        let textures = frames
            .iter()
            .enumerate()
            .map(|(i, variant)| {
                variant
                    .iter()
                    .map(|f| {
                        let side = ctx.input(|i| i.max_texture_side);
                        ctx.load_texture(
                            format!("compare-{}-{}", letter(i), f.index),
                            (*crate::app::fit_to_texture(&f.image, side)).clone(),
                            egui::TextureOptions::LINEAR,
                        )
                    })
                    .collect()
            })
            .collect();
        self.results = Some((index, textures));
        self.offset = 0;
        self.pictures = frames
            .iter()
            .map(|v| v.iter().map(|f| std::sync::Arc::clone(&f.image)).collect())
            .collect();
        self.flicker = flicker;
    }

    /// The window. `frame` is the playhead's frame.
    /// `user_models` are the names of the installed models a variant may use.
    pub fn window_ui(
        &mut self,
        ctx: &egui::Context,
        frame: u64,
        user_models: &[String],
    ) -> Option<CompareAction> {
        if !self.open {
            return None;
        }
        let mut action = None;
        let mut open = self.open;
        egui::Window::new("Compare settings")
            .open(&mut open)
            .resizable(true)
            .default_width(900.0)
            .show(ctx, |ui| {
                action = self.contents_ui(ui, frame, user_models);
            });
        self.open = open;
        action
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        frame: u64,
        user_models: &[String],
    ) -> Option<CompareAction> {
        let mut action = None;
        ui.label(format!(
            "Frame {frame}{} under {} settings of its shot; take the one you prefer.",
            if self.count > 1 {
                format!(" and the {} after it", self.count - 1)
            } else {
                String::new()
            },
            self.variants.len()
        ));
        let mut remove = None;
        let can_remove = self.variants.len() > *VARIANTS.start();
        ui.horizontal_top(|ui| {
            for (i, v) in self.variants.iter_mut().enumerate() {
                let l = letter(i);
                ui.group(|ui| {
                    ui.vertical(|ui| {
                        ui.strong(format!("Variant {l}"));
                        ui.checkbox(&mut v.model_prior, "Use the model's colour")
                            .accessible_name(format!("Variant {l}: use the model's colour"));
                        crate::export::shot_model_ui(
                            ui,
                            &format!("compare_model_{l}"),
                            &format!("Variant {l}: model"),
                            &mut v.model,
                            user_models,
                        );
                        crate::export::shot_resolution_ui(
                            ui,
                            &format!("compare_resolution_{l}"),
                            &format!("Variant {l}: render resolution"),
                            &mut v.render_short_side,
                        );
                        let sliders: [(&mut f32, std::ops::RangeInclusive<f32>, &str); 3] = [
                            (&mut v.saturation, 0.0..=2.0, "saturation"),
                            (
                                &mut v.shadow_rolloff.threshold,
                                0.0..=0.3,
                                "shadow roll-off",
                            ),
                            (&mut v.stabiliser, 0.0..=1.0, "stabiliser"),
                        ];
                        for (value, range, name) in sliders {
                            ui.add(egui::Slider::new(value, range).text(name))
                                .accessible_name(format!("Variant {l}: {name}"));
                        }
                        if can_remove
                            && ui
                                .small_button("Remove")
                                .accessible_name(format!("Remove variant {l}"))
                                .clicked()
                        {
                            remove = Some(i);
                        }
                    });
                });
            }
        });
        if let Some(i) = remove {
            self.variants.remove(i);
        }
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    self.variants.len() < *VARIANTS.end(),
                    egui::Button::new("Add a variant"),
                )
                .clicked()
                && let Some(last) = self.variants.last().cloned()
            {
                self.variants.push(last);
            }
            ui.label("Frames");
            for &n in RANGES {
                let label = if n == 1 {
                    "this one".to_owned()
                } else {
                    format!("{n}")
                };
                ui.selectable_value(&mut self.count, n, label)
                    .accessible_name(format!("Compare {n} frames"))
                    .on_hover_text(if n == 1 {
                        "Colour only the frame under the playhead".to_owned()
                    } else {
                        format!(
                            "Colour {n} frames from the playhead, in order, and measure each \
                             variant's flicker over them"
                        )
                    });
            }
            if ui
                .add_enabled(!self.pending, egui::Button::new("Colour the comparison"))
                .accessible_name("Colour the comparison")
                .clicked()
            {
                action = Some(CompareAction::Render);
            }
            if self.pending {
                ui.spinner();
                ui.label("Colouring…");
            }
        });
        if let Some((index, textures)) = &self.results {
            ui.separator();
            let frames = textures.iter().map(Vec::len).max().unwrap_or(0);
            if frames > 1 {
                let mut offset = self.offset.min(frames - 1);
                ui.add(
                    egui::Slider::new(&mut offset, 0..=frames - 1)
                        .custom_formatter(|v, _| format!("frame {}", *index + v as u64))
                        .text("Showing"),
                )
                .accessible_name("Compared frame");
                self.offset = offset;
            } else if *index != frame {
                ui.weak(format!("These pictures show frame {index}."));
            }
            let columns = textures.len().max(1) as f32;
            let width = ((ui.available_width() - 8.0 * columns) / columns).max(80.0);
            ui.horizontal_top(|ui| {
                for (i, variant) in textures.iter().enumerate() {
                    let l = letter(i);
                    let Some(t) = variant.get(self.offset.min(variant.len().saturating_sub(1)))
                    else {
                        continue;
                    };
                    ui.vertical(|ui| {
                        let size = t.size_vec2();
                        let scale = width / size.x.max(1.0);
                        ui.image((t.id(), size * scale));
                        if let Some(Some(f)) = self.flicker.get(i) {
                            ui.label(format!(
                                "Flicker over the range: warp error {:.5}{}",
                                f.warp,
                                f.cdc.map_or(String::new(), |c| format!(", CDC {c:.5}"))
                            ))
                            .on_hover_text(
                                "Mean over the compared frames, measured as an export measures \
                                 it: lower is steadier",
                            );
                        }
                        if let Some(settings) = self.shown.get(i)
                            && ui
                                .button(format!("Use {l}"))
                                .accessible_name(format!("Use the settings of variant {l}"))
                                .on_hover_text(
                                    "Give the shot these settings (undo takes them back)",
                                )
                                .clicked()
                        {
                            action = Some(CompareAction::Use(settings.clone()));
                        }
                    });
                }
            });
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_variants_differ_from_the_current_settings() {
        let current = ShotSettings::default();
        let v = starting_variants(&current);
        assert!(VARIANTS.contains(&v.len()));
        assert_eq!(v[0], current);
        assert!(v[1].saturation > current.saturation);
        assert_ne!(v[2].model_prior, current.model_prior);
        assert_eq!(letter(0), 'A');
        assert_eq!(letter(3), 'D');
    }
}
