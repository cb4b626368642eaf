//! File → Export…: the Export window, the export itself running in the
//! background ([`ExportJob`] on its own thread), the progress panel with its
//! Cancel button, and the notice left when an export ends.
//!
//! An export renders from a snapshot of the project taken when Export is
//! clicked, so the user keeps editing and scrubbing while it runs. Its
//! per-frame flicker (warp error, from [`LiveMetrics`]) fills the
//! timeline's graph as frames are written.
//!
//! Start reading at [`Exporter`]: the app owns one, calls
//! [`Exporter::poll`] every frame, draws [`Exporter::window_ui`] and
//! [`Exporter::panel_ui`], and applies the [`ExportAction`]s they return.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui::RichText;
use tincture_core::project::Project;
use tincture_engine::export::{ExportEvent, ExportJob, ExportProgress, ExportSpec, ProjectExport};
use tincture_engine::live_metrics::LiveMetrics;

use crate::flicker::{Flicker, Sample};
use tincture_engine::neural::ModelChoice;
use tincture_engine::render::{Outcome, OutputFormat, RenderRequest, Start};
use tincture_infer::RenderSettings;

/// Constant rate factor of H.264 exports (visually transparent).
const H264_CRF: u8 = 18;

/// The formats the Export window offers: (engine name, label).
pub const FORMATS: &[(&str, &str)] = &[
    ("ffv1", "FFV1 (MKV)"),
    ("prores", "ProRes 422 HQ (MOV)"),
    ("h264", "H.264 (MP4)"),
    ("png", "PNG sequence"),
    ("tiff", "TIFF sequence"),
];

/// Render resolutions the Export window offers: the short side of the
/// picture the model sees (`None`: the model's own default).
pub const RESOLUTIONS: &[(Option<u32>, &str)] = &[
    (None, "Model's default"),
    (Some(256), "256 px (short side)"),
    (Some(384), "384 px (short side)"),
    (Some(512), "512 px (short side)"),
];

/// A shot's render resolution in words.
pub fn shot_resolution_label(side: Option<u32>) -> String {
    match side {
        None => "Export's choice".into(),
        Some(s) => format!("{s} px (short side)"),
    }
}

/// A shot's render resolution as a combo box named `name` for AccessKit:
/// the render's own choice, or one of [`RESOLUTIONS`].
pub fn shot_resolution_ui(ui: &mut egui::Ui, id_salt: &str, name: &str, side: &mut Option<u32>) {
    egui::ComboBox::from_id_salt(id_salt)
        .selected_text(shot_resolution_label(*side))
        .show_ui(ui, |ui| {
            ui.selectable_value(side, None, shot_resolution_label(None));
            for (s, _) in RESOLUTIONS.iter().filter(|r| r.0.is_some()) {
                ui.selectable_value(side, *s, shot_resolution_label(*s));
            }
        })
        .response
        .accessible_name(name)
        .on_hover_text(
            "The short side of the picture the model colours in this shot: larger resolves \
             finer colour, at more time per frame",
        );
}

/// A shot's model in words: `None` is the render's own.
pub fn shot_model_label(model: Option<&str>) -> String {
    match model {
        None => "Export's model".into(),
        Some("builtin") => "Built-in colorizer".into(),
        Some(m) => Path::new(m)
            .file_name()
            .map_or_else(|| m.to_owned(), |f| f.to_string_lossy().into_owned()),
    }
}

/// A shot's model as a combo box named `name` for AccessKit: the render's
/// own, the built-in colorizer, the user models in `user_models`, or a
/// model file picked with "Other model file…".
pub fn shot_model_ui(
    ui: &mut egui::Ui,
    id_salt: &str,
    name: &str,
    model: &mut Option<String>,
    user_models: &[String],
) {
    let mut pick_file = false;
    egui::ComboBox::from_id_salt(id_salt)
        .selected_text(shot_model_label(model.as_deref()))
        .show_ui(ui, |ui| {
            ui.selectable_value(model, None, shot_model_label(None));
            ui.selectable_value(
                model,
                Some("builtin".into()),
                shot_model_label(Some("builtin")),
            );
            for m in user_models {
                ui.selectable_value(model, Some(m.clone()), m.as_str());
            }
            if let Some(m) = model.clone()
                && m != "builtin"
                && !user_models.contains(&m)
            {
                ui.selectable_value(model, Some(m.clone()), shot_model_label(Some(&m)));
            }
            if ui.button("Other model file…").clicked() {
                pick_file = true;
            }
        })
        .response
        .accessible_name(name)
        .on_hover_text(
            "The colorizer for this shot: a model's manifest (.json) or ONNX file, or a model \
             installed in Tincture's models folder",
        );
    if pick_file
        && let Some(path) = rfd::FileDialog::new()
            .set_title("A colorizer model for this shot")
            .add_filter("Model manifest or ONNX file", &["json", "onnx"])
            .pick_file()
    {
        *model = Some(path.to_string_lossy().into_owned());
    }
}

/// The engine's format for an entry of [`FORMATS`].
fn output_format(index: usize) -> OutputFormat {
    let name = FORMATS.get(index).map_or("ffv1", |f| f.0);
    OutputFormat::from_name(name, H264_CRF)
        .unwrap_or(OutputFormat::Video(tincture_media::VideoCodec::Ffv1))
}

/// Which frames to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeChoice {
    /// The whole film.
    All,
    /// The shot under the playhead.
    CurrentShot,
    /// From the in point to the out point.
    InOut,
}

/// What the Export window needs to know about the open film.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// The film.
    pub film: PathBuf,
    /// Frames in the film.
    pub frame_count: u64,
    /// The shot under the playhead, inclusive.
    pub current_shot: (u64, u64),
    /// The in and out points.
    pub in_out: (Option<u64>, Option<u64>),
}

impl SourceInfo {
    fn last(&self) -> u64 {
        self.frame_count.saturating_sub(1)
    }

    /// The in–out range, when an in or out point is set (a missing one is the film's end).
    fn in_out_range(&self) -> Option<(u64, u64)> {
        match self.in_out {
            (None, None) => None,
            (a, b) => Some((a.unwrap_or(0), b.unwrap_or(self.last()))),
        }
    }

    /// The inclusive frame range of `choice`; `None` for the whole film.
    fn frames(&self, choice: RangeChoice) -> Option<(u64, u64)> {
        match choice {
            RangeChoice::All => None,
            RangeChoice::CurrentShot => Some(self.current_shot),
            RangeChoice::InOut => self.in_out_range(),
        }
    }
}

/// The settings of one export, as the Export window collects them.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSettings {
    /// The format.
    pub format: OutputFormat,
    /// Inclusive frame range; `None` for the whole film.
    pub frames: Option<(u64, u64)>,
    /// The model's render resolution.
    pub render: RenderSettings,
    /// The output file, or folder for image sequences.
    pub output: PathBuf,
    /// Replace an existing output.
    pub overwrite: bool,
}

/// What the export UI asks the app to do, after the frame.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportAction {
    /// Start exporting with these settings.
    Start(ExportSettings),
    /// Add the project to the batch queue with these settings.
    Queue(ExportSettings),
    /// Stop the running export (its partial file is kept).
    Cancel,
    /// Open the folder of this output in the system's file manager.
    ShowInFolder(PathBuf),
}

/// What is left on show when an export ends well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Every frame was written.
    Completed {
        /// The output.
        path: PathBuf,
        /// Frames in it.
        frames: u64,
        /// The source frame this run resumed from, when it continued a
        /// cancelled export.
        resumed_from: Option<u64>,
    },
    /// Stopped on request; the partial file was kept for resuming.
    Cancelled {
        /// The partial output.
        partial: PathBuf,
        /// Frames in it.
        frames: u64,
        /// The source frame an export of the same settings resumes from.
        resume_from: u64,
    },
}

/// The Export window's state (kept between openings).
#[derive(Clone, Debug)]
struct Dialog {
    open: bool,
    format: usize,
    range: RangeChoice,
    short_side: Option<u32>,
    destination: String,
    overwrite: bool,
    /// The film the destination was proposed for.
    film: Option<PathBuf>,
}

/// The export in progress.
struct Running {
    job: ExportJob,
    output: PathBuf,
    /// The first source frame this run renders (later than the range's
    /// first frame when resuming).
    run_first: u64,
    metrics: LiveMetrics,
    /// Metrics already copied into the flicker graph.
    measured: usize,
    start: Option<Start>,
    progress: Option<ExportProgress>,
    cancelling: bool,
}

/// File → Export…: the window, the running export and its notices (see the module docs).
pub struct Exporter {
    dialog: Dialog,
    running: Option<Running>,
    notice: Option<Notice>,
    /// Flicker (warp error and CDC) by source frame, for `flicker_film`.
    flicker: Flicker,
    flicker_film: Option<PathBuf>,
}

impl Default for Exporter {
    fn default() -> Self {
        Self {
            dialog: Dialog {
                open: false,
                format: 0,
                range: RangeChoice::All,
                short_side: None,
                destination: String::new(),
                overwrite: false,
                film: None,
            },
            running: None,
            notice: None,
            flicker: Flicker::default(),
            flicker_film: None,
        }
    }
}

/// The destination proposed for `film` in `format`: beside the film,
/// `STEM-colour.EXT` (a folder `STEM-colour-png` for image sequences).
pub fn default_destination(film: &Path, format: OutputFormat) -> PathBuf {
    let stem = film
        .file_stem()
        .map_or_else(|| "film".into(), |s| s.to_string_lossy().into_owned());
    let name = match format {
        OutputFormat::Video(codec) => format!("{stem}-colour.{}", codec.container().extension()),
        OutputFormat::Images(image) => format!("{stem}-colour-{}", image.extension()),
    };
    film.with_file_name(name)
}

/// `path` with the extension `format` needs: the container's for video,
/// none for an image-sequence folder.
pub fn with_format_extension(path: &Path, format: OutputFormat) -> PathBuf {
    let known = ["mkv", "mov", "mp4"];
    let has_video_ext = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| known.contains(&e.to_ascii_lowercase().as_str()));
    match format {
        OutputFormat::Video(codec) => path.with_extension(codec.container().extension()),
        OutputFormat::Images(_) if has_video_ext => path.with_extension(""),
        OutputFormat::Images(_) => path.to_owned(),
    }
}

/// Checks that `output` can be written, so a bad destination is reported
/// before anything starts; the message names the folder and says what to do.
///
/// # Errors
/// An empty path, a missing or unwritable folder, or an output that exists
/// when `overwrite` is off.
pub fn check_destination(output: &Path, overwrite: bool) -> Result<(), String> {
    if output.as_os_str().is_empty() {
        return Err("Export: choose a destination (type a path or use Browse…).".into());
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(format!(
            "Cannot export to {}: the folder {} does not exist. Create it, or choose another \
             destination.",
            output.display(),
            dir.display()
        ));
    }
    let probe = dir.join(format!(".tincture-write-test-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(format!(
                "Cannot export to {}: the folder {} is not writable ({e}). Choose a folder you \
                 can write to.",
                output.display(),
                dir.display()
            ));
        }
    }
    if output.exists() && !overwrite {
        return Err(format!(
            "{} already exists: tick \u{201c}Replace it if it exists\u{201d}, or choose another \
             name.",
            output.display()
        ));
    }
    Ok(())
}

/// Opens the folder holding `output` (an image-sequence folder itself) in
/// the system's file manager, without waiting for it.
///
/// # Errors
/// When the file manager cannot be started; the message names the folder.
pub fn show_in_folder(output: &Path) -> Result<(), String> {
    let folder = if output.is_dir() {
        output.to_owned()
    } else {
        output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    };
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    let mut child = std::process::Command::new(opener)
        .arg(&folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "Could not open the folder {}: {opener} did not start ({e}). Open the folder \
                 yourself, or install {opener}.",
                folder.display()
            )
        })?;
    // Reaped on a thread of its own, so the UI never waits on the file manager.
    std::thread::Builder::new()
        .name("tincture-opener".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map(|_| ())
        .map_err(|e| format!("Could not open the folder {}: {e}", folder.display()))
}

/// A duration for people: `12 s`, `3 min 05 s`, `1 h 02 min`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "under 1 s".into()
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

impl Exporter {
    /// Opens the Export window for `film`, proposing a destination beside
    /// it the first time (and again for another film).
    pub fn open_dialog(&mut self, film: &Path) {
        let d = &mut self.dialog;
        if d.film.as_deref() != Some(film) || d.destination.is_empty() {
            d.destination = default_destination(film, output_format(d.format))
                .display()
                .to_string();
            d.film = Some(film.to_owned());
            d.range = RangeChoice::All;
        }
        d.open = true;
    }

    /// Whether the Export window is open.
    pub fn is_dialog_open(&self) -> bool {
        self.dialog.open
    }

    /// Whether an export is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Progress of the running export, once its first frame is written.
    pub fn progress(&self) -> Option<ExportProgress> {
        self.running.as_ref().and_then(|r| r.progress)
    }

    /// How the running export began, once it has.
    pub fn start(&self) -> Option<&Start> {
        self.running.as_ref().and_then(|r| r.start.as_ref())
    }

    /// The notice of the last export that ended well, until dismissed.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// Leaves the first frames of shots (`starts`) out of `film`'s flicker:
    /// across a cut the warp error measures the cut.
    pub fn forget_flicker_at(&mut self, film: &Path, starts: &[u64]) {
        if self.flicker_film.as_deref() == Some(film) {
            self.flicker.forget(starts.iter().copied());
        }
    }

    /// Records frame `frame`'s flicker as measured while previewing `film`.
    pub fn record_flicker(&mut self, film: &Path, frame: u64, sample: Sample) {
        if self.flicker_film.as_deref() != Some(film) {
            self.flicker.clear();
            self.flicker_film = Some(film.to_owned());
        }
        self.flicker.insert(frame, sample);
    }

    /// Per-frame flicker measured by exports (and previews) of `film`, by source frame.
    pub fn flicker(&self, film: Option<&Path>) -> Option<&Flicker> {
        (film.is_some() && film == self.flicker_film.as_deref()).then_some(&self.flicker)
    }

    /// Starts exporting `film` by a snapshot of `project` (saved at
    /// `project_path`, against which its relative paths resolve); wakes the
    /// UI through `ctx` after every event.
    ///
    /// # Errors
    /// When another export runs, the destination cannot be written, or the
    /// export thread cannot start; the message says what to do.
    pub fn start_export(
        &mut self,
        settings: ExportSettings,
        film: &Path,
        project: Project,
        project_path: PathBuf,
        ctx: &egui::Context,
    ) -> Result<(), String> {
        if self.running.is_some() {
            return Err("An export is already running: wait for it, or cancel it first.".into());
        }
        check_destination(&settings.output, settings.overwrite)?;
        // The engine's one output check, before anything starts: never the
        // film, the project or its pictures, nor a folder holding them, and a
        // folder only if Tincture made it (the export checks it again).
        let reads = tincture_engine::project::project_inputs(&project, &project_path);
        let inputs: Vec<&Path> = std::iter::once(film)
            .chain(reads.iter().map(PathBuf::as_path))
            .collect();
        let kind = match settings.format {
            OutputFormat::Video(_) => tincture_engine::output::Kind::File,
            OutputFormat::Images(_) => tincture_engine::output::Kind::Sequence,
        };
        tincture_engine::output::check(&settings.output, &inputs, settings.overwrite, kind)
            .map_err(|e| e.to_string())?;
        let metrics = LiveMetrics::default();
        let request = RenderRequest {
            input: film.to_owned(),
            output: settings.output.clone(),
            format: settings.format,
            frames: settings.frames,
            colorizer: None,
            overwrite: settings.overwrite,
            threads: 0,
            metrics: Some(metrics.clone()),
            // The project's own files are added by the export job.
            also_reads: Vec::new(),
        };
        let wake = ctx.clone();
        let spec = ExportSpec {
            request,
            project: Some(ProjectExport {
                project,
                project_path,
                // As when the project was opened: a changed film is refused.
                accept_changed: false,
                model: ModelChoice {
                    render: settings.render,
                    ..ModelChoice::default()
                },
            }),
            wake: Some(Arc::new(move || wake.request_repaint())),
        };
        let job = ExportJob::spawn(spec).map_err(|e| format!("Could not start the export: {e}"))?;
        tracing::info!(output = %settings.output.display(), "export started");
        if self.flicker_film.as_deref() != Some(film) {
            self.flicker.clear();
            self.flicker_film = Some(film.to_owned());
        }
        self.notice = None;
        self.dialog.open = false;
        self.running = Some(Running {
            job,
            output: settings.output,
            run_first: settings.frames.map_or(0, |f| f.0),
            metrics,
            measured: 0,
            start: None,
            progress: None,
            cancelling: false,
        });
        Ok(())
    }

    /// Asks the running export to stop after its current frame.
    pub fn cancel(&mut self) {
        if let Some(r) = &mut self.running {
            r.job.cancel();
            r.cancelling = true;
        }
    }

    /// Applies what the export reported since the last frame, and copies new
    /// flicker values into the graph. Returns an error to show when the
    /// export failed.
    pub fn poll(&mut self) -> Option<String> {
        let run = self.running.as_mut()?;
        let mut end: Option<Result<Outcome, String>> = None;
        while let Ok(event) = run.job.events().try_recv() {
            match event {
                ExportEvent::Started(start) => {
                    if let Start::Resumed { from, .. } = start {
                        run.run_first = from;
                    }
                    run.start = Some(start);
                }
                ExportEvent::Progress(p) => run.progress = Some(p),
                ExportEvent::Finished(outcome) => end = Some(Ok(outcome)),
                ExportEvent::Failed(message) => end = Some(Err(message)),
            }
        }
        // After the events: a measured frame's run has always reported its start.
        let new = run.metrics.frames_from(run.measured);
        run.measured += new.len();
        for f in &new {
            let Some(warp) = f.warp_error else { continue };
            // A frame measured again (another export over it) replaces its sample.
            self.flicker
                .insert(run.run_first + f.index, Sample { warp, cdc: f.cdc });
        }
        if end.is_none() && run.job.is_finished() {
            // The thread sends its last events before ending: read them all,
            // if they came after the loop above (progress may come first).
            while let Ok(event) = run.job.events().try_recv() {
                match event {
                    ExportEvent::Finished(o) => end = Some(Ok(o)),
                    ExportEvent::Failed(m) => end = Some(Err(m)),
                    ExportEvent::Progress(p) => run.progress = Some(p),
                    ExportEvent::Started(start) => run.start = Some(start),
                }
            }
            if end.is_none() {
                end = Some(Err(format!(
                    "The export to {} stopped without finishing; export again to resume it.",
                    run.output.display()
                )));
            }
        }
        let result = end?;
        let resumed_from = match run.start {
            Some(Start::Resumed { from, .. }) => Some(from),
            _ => None,
        };
        self.running = None;
        match result {
            Ok(Outcome::Completed { path, frames }) => {
                tracing::info!(path = %path.display(), frames, "export completed");
                self.notice = Some(Notice::Completed {
                    path,
                    frames,
                    resumed_from,
                });
                None
            }
            Ok(Outcome::Cancelled {
                partial,
                frames,
                resume_from,
            }) => {
                self.notice = Some(Notice::Cancelled {
                    partial,
                    frames,
                    resume_from,
                });
                None
            }
            Err(message) => Some(format!("Export failed: {message}")),
        }
    }

    /// The Export window (non-modal), while open.
    pub fn window_ui(
        &mut self,
        ctx: &egui::Context,
        source: Option<&SourceInfo>,
    ) -> Option<ExportAction> {
        let mut open = self.dialog.open;
        let mut action = None;
        let running = self.running.is_some();
        egui::Window::new("Export")
            .open(&mut open)
            .resizable(false)
            .collapsible(false)
            .show(ctx, |ui| match source {
                Some(source) => action = self.dialog_ui(ui, source, running),
                None => {
                    ui.label("Open a film to export it.");
                }
            });
        self.dialog.open = open && self.dialog.open;
        action
    }

    fn dialog_ui(
        &mut self,
        ui: &mut egui::Ui,
        source: &SourceInfo,
        running: bool,
    ) -> Option<ExportAction> {
        let d = &mut self.dialog;
        let in_out = source.in_out_range();
        if d.range == RangeChoice::InOut && in_out.is_none() {
            d.range = RangeChoice::All;
        }
        let before = d.format;
        egui::Grid::new("export_settings")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                ui.label("Format");
                ui.vertical(|ui| {
                    for (i, (_, label)) in FORMATS.iter().enumerate() {
                        ui.radio_value(&mut d.format, i, *label);
                    }
                });
                ui.end_row();

                ui.label("Range");
                ui.vertical(|ui| {
                    let all = format!("All ({} frames)", source.frame_count);
                    ui.radio_value(&mut d.range, RangeChoice::All, all);
                    let (a, b) = source.current_shot;
                    let shot = format!("Current shot ({a}–{b})");
                    ui.radio_value(&mut d.range, RangeChoice::CurrentShot, shot);
                    let label = in_out.map_or_else(
                        || "In–out (set with I and O)".to_owned(),
                        |(a, b)| format!("In–out ({a}–{b})"),
                    );
                    ui.add_enabled_ui(in_out.is_some(), |ui| {
                        ui.radio_value(&mut d.range, RangeChoice::InOut, label);
                    });
                });
                ui.end_row();

                let label = ui.label("Render resolution");
                let current = RESOLUTIONS
                    .iter()
                    .find(|r| r.0 == d.short_side)
                    .map_or("Custom", |r| r.1);
                egui::ComboBox::from_id_salt("export_resolution")
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        for (side, label) in RESOLUTIONS {
                            ui.selectable_value(&mut d.short_side, *side, *label);
                        }
                    })
                    .response
                    .on_hover_text("The size of the picture the model colours, in shots that use the model's colour and have no render resolution of their own.")
                    .labelled_by(label.id);
                ui.end_row();

                let label = ui.label("Destination");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut d.destination)
                            .desired_width(320.0)
                            .hint_text("file, or folder for a sequence"),
                    )
                    .labelled_by(label.id);
                    if ui.button("Browse…").clicked() {
                        browse(d, source);
                    }
                });
                ui.end_row();

                ui.label("");
                ui.checkbox(&mut d.overwrite, "Replace it if it exists");
                ui.end_row();
            });
        if d.format != before && !d.destination.is_empty() {
            let path = with_format_extension(Path::new(&d.destination), output_format(d.format));
            d.destination = path.display().to_string();
        }
        ui.separator();
        let settings = || ExportSettings {
            format: output_format(d.format),
            frames: source.frames(d.range),
            render: RenderSettings {
                short_side: d.short_side,
                ..RenderSettings::default()
            },
            output: PathBuf::from(d.destination.trim()),
            overwrite: d.overwrite,
        };
        let mut action = None;
        ui.horizontal(|ui| {
            let button = ui.add_enabled(!running, egui::Button::new("Export"));
            let button = if running {
                button.on_disabled_hover_text("An export is running: wait for it, or cancel it.")
            } else {
                button
            };
            if button.clicked() {
                action = Some(ExportAction::Start(settings()));
            }
            if ui
                .button("Add to queue")
                .on_hover_text(
                    "Render it later, one after another with the other films of the batch queue \
                     (File > Queue…); the saved project is rendered as it is when its turn comes",
                )
                .clicked()
            {
                action = Some(ExportAction::Queue(settings()));
            }
        });
        action
    }

    /// Closes the Export window.
    pub fn close_dialog(&mut self) {
        self.dialog.open = false;
    }

    /// The format chosen in the Export window, by name (`ffv1`, ...).
    pub fn format_name(&self) -> &'static str {
        FORMATS.get(self.dialog.format).map_or("ffv1", |f| f.0)
    }

    /// The progress panel while an export runs, then its notice; returns
    /// what the user asked for.
    pub fn panel_ui(&mut self, ui: &mut egui::Ui) -> Option<ExportAction> {
        if self.running.is_none() && self.notice.is_none() {
            return None;
        }
        let mut action = None;
        let mut dismiss = false;
        egui::Panel::bottom("export_panel").show(ui, |ui| {
            ui.add_space(2.0);
            ui.horizontal_wrapped(|ui| {
                if let Some(run) = &self.running {
                    action = running_ui(ui, run);
                } else if let Some(notice) = &self.notice {
                    (action, dismiss) = notice_ui(ui, notice);
                }
            });
            ui.add_space(2.0);
        });
        if dismiss {
            self.notice = None;
        }
        action
    }
}

fn running_ui(ui: &mut egui::Ui, run: &Running) -> Option<ExportAction> {
    let name = crate::worker::display_name(&run.output);
    match &run.start {
        None => {
            ui.spinner();
            ui.label(format!("Preparing the export to {name}…"));
        }
        Some(start) => {
            ui.label(format!("Exporting {name}"));
            match start {
                Start::Resumed { from, .. } => {
                    ui.label(format!("Resuming from frame {from}"));
                }
                Start::StartedOver { reason } => {
                    ui.weak(format!("Started over: {reason}"));
                }
                Start::Fresh => {}
            }
        }
    }
    let (done, total) = run.progress.map_or((0, 0), |p| (p.done, p.total));
    let fraction = if total == 0 {
        0.0
    } else {
        done as f32 / total as f32
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(220.0)
            .text(format!("{done} / {total} frames")),
    );
    if let Some(eta) = run.progress.and_then(|p| p.eta) {
        ui.label(format!("about {} left", format_duration(eta)));
    }
    if run.cancelling {
        ui.add_enabled(false, egui::Button::new("Cancelling…"));
        None
    } else {
        ui.button("Cancel export")
            .on_hover_text("Stops after this frame; the partial file is kept, and exporting again with the same settings resumes it.")
            .clicked()
            .then_some(ExportAction::Cancel)
    }
}

fn notice_ui(ui: &mut egui::Ui, notice: &Notice) -> (Option<ExportAction>, bool) {
    let mut action = None;
    match notice {
        Notice::Completed {
            path,
            frames,
            resumed_from,
        } => {
            let resumed = resumed_from
                .map(|f| format!(" (resumed from frame {f})"))
                .unwrap_or_default();
            ui.label(format!(
                "Exported {frames} frames to {}{resumed}",
                path.display()
            ));
            if ui.button("Show in folder").clicked() {
                action = Some(ExportAction::ShowInFolder(path.clone()));
            }
        }
        Notice::Cancelled {
            partial,
            frames,
            resume_from,
        } => {
            ui.label(
                RichText::new(format!(
                    "Export cancelled after {frames} frames. The partial file {} was kept: \
                     export again with the same settings to resume from frame {resume_from}.",
                    partial.display()
                ))
                .color(ui.visuals().warn_fg_color),
            );
        }
    }
    let dismiss = ui.small_button("Dismiss").clicked();
    (action, dismiss)
}

/// Asks for the destination with the system dialog: a file for video, a
/// folder (to hold the sequence's own folder) for image sequences.
fn browse(d: &mut Dialog, source: &SourceInfo) {
    let format = output_format(d.format);
    let proposed = default_destination(&source.film, format);
    let current = PathBuf::from(d.destination.trim());
    let start_dir = current
        .parent()
        .filter(|p| p.is_dir())
        .or_else(|| proposed.parent())
        .map(Path::to_owned);
    let mut dialog = rfd::FileDialog::new().set_title("Export to");
    if let Some(dir) = start_dir {
        dialog = dialog.set_directory(dir);
    }
    let picked = match format {
        OutputFormat::Video(codec) => {
            let ext = codec.container().extension();
            let name = current
                .file_name()
                .or_else(|| proposed.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dialog
                .add_filter(FORMATS[d.format].1, &[ext])
                .set_file_name(name)
                .save_file()
                .map(|p| with_format_extension(&p, format))
        }
        OutputFormat::Images(_) => dialog
            .pick_folder()
            .map(|dir| dir.join(proposed.file_name().unwrap_or_default())),
    };
    if let Some(p) = picked {
        d.destination = p.display().to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincture_media::{ImageFormat, VideoCodec};

    #[test]
    fn destinations_follow_the_format() {
        let film = Path::new("/films/reel3.mkv");
        let ffv1 = OutputFormat::Video(VideoCodec::Ffv1);
        let png = OutputFormat::Images(ImageFormat::Png);
        let prores = OutputFormat::Video(VideoCodec::ProRes);
        assert_eq!(
            default_destination(film, ffv1),
            Path::new("/films/reel3-colour.mkv")
        );
        assert_eq!(
            default_destination(film, png),
            Path::new("/films/reel3-colour-png")
        );
        let out = Path::new("/out/reel3-colour.mkv");
        assert_eq!(
            with_format_extension(out, prores),
            Path::new("/out/reel3-colour.mov")
        );
        assert_eq!(
            with_format_extension(out, png),
            Path::new("/out/reel3-colour")
        );
        assert_eq!(
            with_format_extension(Path::new("/out/frames"), png),
            Path::new("/out/frames")
        );
    }

    #[test]
    fn every_offered_format_is_known_to_the_engine() {
        for (name, _) in FORMATS {
            assert!(OutputFormat::from_name(name, H264_CRF).is_some(), "{name}");
        }
    }

    #[test]
    fn ranges_fill_a_missing_in_or_out_point() {
        let s = SourceInfo {
            film: PathBuf::from("f.mkv"),
            frame_count: 30,
            current_shot: (10, 19),
            in_out: (Some(5), None),
        };
        assert_eq!(s.frames(RangeChoice::All), None);
        assert_eq!(s.frames(RangeChoice::CurrentShot), Some((10, 19)));
        assert_eq!(s.frames(RangeChoice::InOut), Some((5, 29)));
        let none = SourceInfo {
            in_out: (None, None),
            ..s
        };
        assert_eq!(none.frames(RangeChoice::InOut), None);
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("nowhere");
        let err = check_destination(&missing.join("out.mkv"), false).expect_err("refused");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("does not exist"), "{err}");
        check_destination(&dir.path().join("out.mkv"), false).expect("writable");
        assert!(check_destination(Path::new(""), false).is_err());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(300)), "under 1 s");
        assert_eq!(format_duration(Duration::from_secs(12)), "12 s");
        assert_eq!(format_duration(Duration::from_secs(185)), "3 min 05 s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1 h 02 min");
    }
}
