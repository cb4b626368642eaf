//! [`TinctureApp`]: the main window. A film viewer with a scrub bar and a
//! status bar; decoding happens on the frame worker (see [`crate::worker`]).

use std::path::PathBuf;

use crossbeam_channel::Receiver;
use eframe::egui;
use egui::{Color32, Key, Modifiers, Rect, RichText, Sense, TextureHandle, TextureOptions, Vec2};
use tincture_core::timecode::frame_timecode;

use crate::worker::{self, Command, FrameWorker, MediaSummary, Message, RgbFrame};

/// File extensions offered by the Open dialog.
pub const FILM_EXTENSIONS: &[&str] = &[
    "mp4", "mkv", "mov", "avi", "mxf", "m4v", "webm", "mpg", "ts",
];

/// Whether ONNX Runtime is available for colorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeStatus {
    /// Still looking for it (on a background thread).
    Checking,
    /// Loaded; holds its version.
    Ready(String),
    /// Not available; holds the message that says how to install it.
    Failed(String),
}

/// The frame on screen.
struct Picture {
    index: u64,
    generation: u64,
    size: [usize; 2],
    texture: TextureHandle,
}

/// The Tincture main window.
///
/// Construct it with [`TinctureApp::new`] (from `eframe`'s creation context
/// or from a test harness), optionally with a film to open at once.
pub struct TinctureApp {
    ctx: egui::Context,
    worker: Option<FrameWorker>,
    inbox: Receiver<Message>,
    /// The open film.
    media: Option<MediaSummary>,
    /// A film being opened.
    opening: Option<PathBuf>,
    /// The frame asked for (slider position).
    position: u64,
    /// Counts frame requests; bumped by every seek and open.
    generation: u64,
    /// The generation of the last open: frames before it belong to another film.
    open_generation: u64,
    picture: Option<Picture>,
    error: Option<String>,
    runtime: RuntimeStatus,
}

impl TinctureApp {
    /// Creates the app on `ctx`, starts the frame worker and the ONNX Runtime
    /// check, and opens `file` if given.
    ///
    /// Never fails: a thread that cannot start is reported in the window.
    pub fn new(ctx: &egui::Context, file: Option<PathBuf>) -> Self {
        ctx.set_theme(egui::ThemePreference::Dark);
        let (tx, inbox) = crossbeam_channel::unbounded();
        let mut error = None;
        let worker = FrameWorker::spawn(ctx.clone(), tx.clone())
            .inspect_err(|e| error = Some(format!("Could not start the decoding thread: {e}")))
            .ok();
        let mut runtime = RuntimeStatus::Checking;
        if let Err(e) = worker::spawn_runtime_check(ctx.clone(), tx) {
            runtime = RuntimeStatus::Failed(format!("could not start the ONNX Runtime check: {e}"));
        }
        let mut app = Self {
            ctx: ctx.clone(),
            worker,
            inbox,
            media: None,
            opening: None,
            position: 0,
            generation: 0,
            open_generation: 0,
            picture: None,
            error,
            runtime,
        };
        if let Some(file) = file {
            app.open(file);
        }
        app
    }

    /// Opens a film (on the worker) and shows its first frame.
    pub fn open(&mut self, path: PathBuf) {
        tracing::info!(path = %path.display(), "opening");
        self.error = None;
        self.opening = Some(path.clone());
        self.position = 0;
        self.generation += 1;
        self.open_generation = self.generation;
        self.send(Command::Open(path));
        self.send(Command::Show {
            index: 0,
            generation: self.generation,
        });
    }

    /// Moves to frame `index` (clamped to the film) and asks the worker for it.
    /// Does nothing while no film is open.
    pub fn seek(&mut self, index: u64) {
        let Some(media) = &self.media else { return };
        let index = index.min(media.frame_count.saturating_sub(1));
        if index == self.position && self.picture.as_ref().is_some_and(|p| p.index == index) {
            return;
        }
        self.position = index;
        self.generation += 1;
        self.send(Command::Show {
            index,
            generation: self.generation,
        });
    }

    /// The open film, once the worker has opened it.
    pub fn media(&self) -> Option<&MediaSummary> {
        self.media.as_ref()
    }

    /// The frame asked for: what the slider and the frame label show.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The index of the frame on screen, if any.
    pub fn shown_frame(&self) -> Option<u64> {
        self.picture.as_ref().map(|p| p.index)
    }

    /// Whether the frame on screen is the one asked for, and no film is being opened.
    pub fn is_settled(&self) -> bool {
        self.opening.is_none()
            && self
                .picture
                .as_ref()
                .is_some_and(|p| p.index == self.position && p.generation == self.generation)
    }

    /// The error on show, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether ONNX Runtime loaded.
    pub fn runtime_status(&self) -> &RuntimeStatus {
        &self.runtime
    }

    fn send(&mut self, command: Command) {
        let sent = self.worker.as_ref().is_some_and(|w| w.send(command));
        if !sent {
            self.error =
                Some("The decoding thread has stopped; restart Tincture to open films.".into());
        }
    }

    /// Applies everything the background threads have sent.
    fn handle_messages(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                Message::Opened(summary) => self.opened(summary),
                Message::Frame(frame) => self.frame_arrived(frame),
                Message::Error(text) => {
                    if self.opening.take().is_some() {
                        // The worker dropped the previous film before trying this one.
                        self.media = None;
                        self.picture = None;
                        self.ctx
                            .send_viewport_cmd(egui::ViewportCommand::Title("Tincture".into()));
                    }
                    self.error = Some(text);
                }
                Message::Runtime(Ok(version)) => self.runtime = RuntimeStatus::Ready(version),
                Message::Runtime(Err(text)) => self.runtime = RuntimeStatus::Failed(text),
            }
        }
    }

    fn opened(&mut self, summary: MediaSummary) {
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(format!(
                "{} — Tincture",
                summary.file_name
            )));
        self.opening = None;
        self.picture = None;
        self.position = self.position.min(summary.frame_count.saturating_sub(1));
        self.media = Some(summary);
    }

    /// Shows a decoded frame unless it is stale: from before the current
    /// film was opened, or older than the frame on screen. Frames newer than
    /// the one on screen are shown even if a newer request is pending, so the
    /// picture follows a scrub.
    fn frame_arrived(&mut self, frame: RgbFrame) {
        let older_than_shown = self
            .picture
            .as_ref()
            .is_some_and(|p| frame.generation <= p.generation);
        if frame.generation < self.open_generation || older_than_shown {
            tracing::trace!(frame.index, frame.generation, "stale frame dropped");
            return;
        }
        let size = [frame.width, frame.height];
        if frame.rgb.len() != frame.width * frame.height * 3 {
            self.error = Some(format!(
                "Frame {}: the decoder returned {} bytes for {}x{} pixels",
                frame.index,
                frame.rgb.len(),
                frame.width,
                frame.height
            ));
            return;
        }
        let image = egui::ColorImage::from_rgb(size, &frame.rgb);
        let options = TextureOptions::LINEAR;
        let texture = match self.picture.take() {
            Some(mut p) if p.size == size => {
                p.texture.set(image, options);
                p.texture
            }
            _ => self.ctx.load_texture("tincture-frame", image, options),
        };
        self.picture = Some(Picture {
            index: frame.index,
            generation: frame.generation,
            size,
            texture,
        });
    }

    /// Left/Right step one frame, Home/End jump to the ends, Ctrl+O opens.
    fn keyboard_ui(&mut self, ui: &mut egui::Ui) {
        if ui.ctx().text_edit_focused() {
            return;
        }
        let [left, right, home, end, open] = ui.input_mut(|i| {
            [
                (Modifiers::NONE, Key::ArrowLeft),
                (Modifiers::NONE, Key::ArrowRight),
                (Modifiers::NONE, Key::Home),
                (Modifiers::NONE, Key::End),
                (Modifiers::COMMAND, Key::O),
            ]
            .map(|(m, k)| i.consume_key(m, k))
        });
        if open {
            self.open_dialog();
        }
        let Some(last) = self.media.as_ref().map(|m| m.frame_count.saturating_sub(1)) else {
            return;
        };
        let target = if home {
            Some(0)
        } else if end {
            Some(last)
        } else if left {
            Some(self.position.saturating_sub(1))
        } else if right {
            Some((self.position + 1).min(last))
        } else {
            None
        };
        if let Some(index) = target {
            self.seek(index);
        }
    }

    /// Asks for a film with the system file dialog (blocks until it closes).
    fn open_dialog(&mut self) {
        let picked = rfd::FileDialog::new()
            .set_title("Open a film")
            .add_filter("Film", FILM_EXTENSIONS)
            .add_filter("All files", &["*"])
            .pick_file();
        if let Some(path) = picked {
            self.open(path);
        }
    }

    fn menu_bar_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("menu_bar").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                ui.menu_button("File", |ui| {
                    if ui.button("Open…").clicked() {
                        ui.close();
                        self.open_dialog();
                    }
                    ui.separator();
                    if ui.button("Quit").clicked() {
                        ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                });
            });
        });
    }

    fn status_bar_ui(&self, ui: &mut egui::Ui) {
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    self.runtime_ui(ui);
                    ui.separator();
                    ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        self.media_status_ui(ui);
                    });
                });
            });
        });
    }

    fn media_status_ui(&self, ui: &mut egui::Ui) {
        if let Some(path) = &self.opening {
            ui.spinner();
            ui.label(format!("Opening {}…", worker::display_name(path)));
        } else if let Some(m) = &self.media {
            let fields = [
                m.file_name.clone(),
                format!("{}×{}", m.width, m.height),
                format!("{} fps", format_rate(m.frame_rate)),
                m.pixel_format.clone(),
                format!("{} frames", m.frame_count),
            ];
            for (i, field) in fields.into_iter().enumerate() {
                if i > 0 {
                    ui.separator();
                }
                ui.label(field).on_hover_text(m.path.display().to_string());
            }
        } else {
            ui.label("No film open");
        }
    }

    fn runtime_ui(&self, ui: &mut egui::Ui) {
        match &self.runtime {
            RuntimeStatus::Checking => {
                ui.label("ONNX Runtime: checking…");
                ui.spinner();
            }
            RuntimeStatus::Ready(version) => {
                ui.label(format!("ONNX Runtime {version}"));
            }
            RuntimeStatus::Failed(text) => {
                let warn = ui.visuals().warn_fg_color;
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("ONNX Runtime unavailable: {text}")).color(warn),
                    )
                    .truncate(),
                )
                .on_hover_text(text);
            }
        }
    }

    fn transport_ui(&mut self, ui: &mut egui::Ui) {
        let Some(media) = &self.media else { return };
        let (count, rate, start_tc) = (media.frame_count, media.frame_rate, media.timecode.clone());
        egui::Panel::bottom("transport").show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                let frame_label = format!("Frame {} / {count}", self.position);
                ui.label(RichText::new(frame_label).monospace());
                ui.separator();
                let tc = frame_timecode(self.position, rate, start_tc.as_deref());
                ui.label(RichText::new(tc).monospace())
                    .on_hover_text("Timecode");
                ui.separator();
                let mut position = self.position;
                ui.spacing_mut().slider_width = ui.available_width().max(50.0);
                let slider =
                    egui::Slider::new(&mut position, 0..=count.saturating_sub(1)).show_value(false);
                if ui.add(slider).accessible_name("Frame position").changed() {
                    self.seek(position);
                }
            });
            ui.add_space(2.0);
        });
    }

    fn error_ui(&mut self, ui: &mut egui::Ui) {
        let Some(text) = &self.error else { return };
        let mut dismiss = false;
        egui::Frame::new().inner_margin(8.0).show(ui, |ui| {
            ui.horizontal(|ui| {
                if ui.small_button("Dismiss").clicked() {
                    dismiss = true;
                }
                let colour = ui.visuals().error_fg_color;
                ui.add(egui::Label::new(RichText::new(text).color(colour)).wrap());
            });
        });
        if dismiss {
            self.error = None;
        }
    }

    fn viewer_ui(&self, ui: &mut egui::Ui) {
        let (rect, _) = ui.allocate_exact_size(ui.available_size(), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(16));
        if let Some(picture) = &self.picture {
            let pixel_aspect = self.media.as_ref().map_or(1.0, |m| m.pixel_aspect);
            let [w, h] = picture.size;
            let aspect = w as f32 * pixel_aspect / h.max(1) as f32;
            let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
            painter.image(
                picture.texture.id(),
                fit_rect(rect, aspect),
                uv,
                Color32::WHITE,
            );
        } else if self.opening.is_some() {
            egui::Spinner::new()
                .size(32.0)
                .paint_at(ui, Rect::from_center_size(rect.center(), Vec2::splat(32.0)));
        } else if self.media.is_none() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Open a black-and-white film with File > Open… (Ctrl+O), or drop it here",
                egui::FontId::proportional(16.0),
                ui.visuals().weak_text_color(),
            );
        }
    }
}

impl eframe::App for TinctureApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.handle_messages();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let dropped = ui.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_owned()));
        if let Some(path) = dropped {
            self.open(path);
        }
        self.keyboard_ui(ui);
        self.menu_bar_ui(ui);
        self.status_bar_ui(ui);
        self.transport_ui(ui);
        egui::CentralPanel::no_frame().show(ui, |ui| {
            self.error_ui(ui);
            self.viewer_ui(ui);
        });
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

/// A frame rate for people: `24`, `25`, `23.976`, `29.97`.
pub fn format_rate(rate: f64) -> String {
    if (rate - rate.round()).abs() < 0.0005 {
        format!("{rate:.0}")
    } else {
        let text = format!("{rate:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let outer = Rect::from_min_size(egui::pos2(0.0, 0.0), Vec2::new(400.0, 100.0));
        let r = fit_rect(outer, 4.0 / 3.0);
        assert!((r.height() - 100.0).abs() < 1e-3 && (r.width() - 133.333).abs() < 1e-2);
        assert!((r.center().x - 200.0).abs() < 1e-3);
        let tall = Rect::from_min_size(egui::pos2(0.0, 0.0), Vec2::new(100.0, 400.0));
        let r = fit_rect(tall, 2.0);
        assert!((r.width() - 100.0).abs() < 1e-3 && (r.height() - 50.0).abs() < 1e-3);
        assert_eq!(fit_rect(outer, 0.0), outer);
    }

    #[test]
    fn rates_read_naturally() {
        assert_eq!(format_rate(24.0), "24");
        assert_eq!(format_rate(24000.0 / 1001.0), "23.976");
        assert_eq!(format_rate(30000.0 / 1001.0), "29.97");
        assert_eq!(format_rate(12.5), "12.5");
    }
}
