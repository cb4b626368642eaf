//! [`TinctureApp`]: the main window. Menus, the shots and keyframes list,
//! properties, the before/after viewer, the timeline and the status bar.
//!
//! The UI thread only draws and edits the project. Decoding runs on the
//! frame worker ([`crate::worker`]), colouring on the colour worker
//! ([`crate::colour`]), thumbnails and shot detection on a background
//! thread, and autosaves on the autosave thread ([`crate::document`]); all
//! of them talk to the UI over crossbeam channels.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use egui::{Color32, Key, Modifiers, RichText, TextureHandle, TextureOptions};
use tincture_core::project::{
    KeyframeReference, Project, REFERENCE_WEIGHT_MAX, ReferencePhoto, ShotEntry, ShotSettings,
};
use tincture_core::timecode::frame_timecode;

use crate::colour::{ColourCommand, ColourMessage, ColourWorker};
use crate::document::{Document, IoResult, ProjectIo, Recovery, SaveJob, Session, StateDir};
use crate::export::{ExportAction, Exporter, SourceInfo};
use crate::paint::{PaintState, Tool};
use crate::timeline::{Thumb, Timeline, TimelineAction};
use crate::viewer::{self, Side, SplitMode, ViewState};
use crate::worker::{
    self, BackgroundWork, Command, FrameWorker, MediaSummary, Message, ProxySettings, RgbFrame,
};

/// File extensions offered by the Open dialog.
pub const FILM_EXTENSIONS: &[&str] = &[
    "mp4", "mkv", "mov", "avi", "mxf", "m4v", "webm", "mpg", "ts",
];

/// Timeline thumbnails per film.
const THUMBNAILS: u64 = 24;

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

/// How the app starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// A film or a project (`.json`) to open at once.
    pub file: Option<PathBuf>,
    /// Where recent files and recovery information live.
    pub state: StateDir,
    /// Whether to colour the "after" side (tests of the bare viewer turn it off).
    pub colour: bool,
    /// Whether to build and read scrub proxies of long-GOP films (see
    /// [`StateDir::proxies`]); benchmarks turn them off to measure without.
    pub scrub_proxies: bool,
}

impl AppOptions {
    /// The defaults for `file`: the state folder from the environment, colour on.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file,
            state: StateDir::from_env(),
            colour: true,
            scrub_proxies: true,
        }
    }
}

/// A picture on screen.
struct Picture {
    index: u64,
    generation: u64,
    size: [usize; 2],
    texture: TextureHandle,
    /// The pixels on the texture, for the eyedropper.
    image: Arc<egui::ColorImage>,
}

impl Picture {
    fn side(&self) -> Side {
        Side {
            texture: self.texture.id(),
            size: self.size,
        }
    }
}

/// `image` as a texture of at most `max_side` pixels a side: itself when it
/// fits, else scaled down by area averaging, keeping its aspect (a frame
/// wider than the GPU's texture limit is shown smaller, never refused).
pub fn fit_to_texture(image: &Arc<egui::ColorImage>, max_side: usize) -> Arc<egui::ColorImage> {
    let [w, h] = image.size;
    let max_side = max_side.max(1);
    if w <= max_side && h <= max_side {
        return Arc::clone(image);
    }
    let k = max_side as f64 / w.max(h) as f64;
    let (dw, dh) = (
        ((w as f64 * k).floor() as usize).clamp(1, max_side),
        ((h as f64 * k).floor() as usize).clamp(1, max_side),
    );
    let span = |i: usize, s: usize, d: usize| (i * s / d, ((i + 1) * s).div_ceil(d).min(s));
    let mut pixels = Vec::with_capacity(dw * dh);
    for y in 0..dh {
        let (y0, y1) = span(y, h, dh);
        for x in 0..dw {
            let (x0, x1) = span(x, w, dw);
            let mut sum = [0u32; 3];
            for yy in y0..y1 {
                for c in &image.pixels[yy * w + x0..yy * w + x1] {
                    sum[0] += u32::from(c.r());
                    sum[1] += u32::from(c.g());
                    sum[2] += u32::from(c.b());
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            let [r, g, b] = sum.map(|v| ((v + n / 2) / n) as u8);
            pixels.push(Color32::from_rgb(r, g, b));
        }
    }
    Arc::new(egui::ColorImage::new([dw, dh], pixels))
}

/// Shows `frame` in `slot`, reusing its texture when the size matches.
fn upload(ctx: &egui::Context, slot: &mut Option<Picture>, frame: &RgbFrame, name: &str) {
    let size = [frame.width, frame.height];
    let image = fit_to_texture(&frame.image, ctx.input(|i| i.max_texture_side));
    let options = TextureOptions::LINEAR;
    let texture = match slot.take() {
        // Written over the texture in place: a whole-image `set` makes the
        // renderer allocate a new GPU texture for every frame shown.
        Some(mut p) if p.size == size => {
            p.texture.set_partial([0, 0], Arc::clone(&image), options);
            p.texture
        }
        _ => ctx.load_texture(name, Arc::clone(&image), options),
    };
    *slot = Some(Picture {
        index: frame.index,
        generation: frame.generation,
        size,
        texture,
        image,
    });
}

/// Playback: direction and speed in frames per frame-time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Playback {
    speed: f64,
    started: Instant,
    from: u64,
}

/// The Tincture main window.
///
/// Construct it with [`TinctureApp::new`] or [`TinctureApp::with_options`]
/// (from `eframe`'s creation context or from a test harness).
pub struct TinctureApp {
    ctx: egui::Context,
    worker: Option<FrameWorker>,
    inbox: Receiver<Message>,
    to_ui: Sender<Message>,
    colour: Option<ColourWorker>,
    colour_inbox: Receiver<ColourMessage>,
    /// Which engine colours the preview, in words.
    engine: Option<String>,
    /// The open film.
    media: Option<MediaSummary>,
    /// The film's path as opened (for the colour worker and the session).
    film: Option<PathBuf>,
    /// A film or project being opened.
    opening: Option<PathBuf>,
    /// The frame asked for (playhead).
    position: u64,
    /// Counts frame requests; bumped by every seek and open.
    generation: u64,
    /// The generation of the last open: frames before it belong to another film.
    open_generation: u64,
    before: Option<Picture>,
    after: Option<Picture>,
    /// A colour request is out for the playhead.
    colouring: bool,
    /// When the colour request out for the playhead was sent.
    colouring_since: Instant,
    thumbs: Vec<(u64, TextureHandle)>,
    /// Shot detection has finished for the open film.
    shots_detected: bool,
    /// The background pass over the film (shots, scrub proxy): frames read, of all.
    pass: Option<(u64, u64)>,
    /// The last error shown, kept for the status bar once its banner is gone.
    last_error: Option<String>,
    /// What the user asked for that would leave unsaved work: the "Unsaved
    /// changes" window asks first (save, discard or cancel).
    leaving: Option<Leave>,
    /// What to do once the save started from that window is written.
    after_save: Option<Leave>,
    /// The window may close: the user chose to leave unsaved work.
    may_quit: bool,
    /// Why the open film has no scrub proxy, when its budget said no.
    proxy_note: Option<String>,
    /// The frame and project revision whose colouring failed last.
    colour_failed: Option<(u64, u64)>,
    /// Shot models from outside the opened project's folder, waiting for
    /// the user to allow them: nothing is coloured until they answer.
    foreign_models: Vec<String>,
    /// The lock on the open project's autosave: no other Tincture writes it.
    autosave_lock: Option<tincture_engine::lock::FileLock>,
    background_cancel: Arc<AtomicBool>,
    doc: Option<Document>,
    /// The project revision the colour worker has.
    colour_revision: Option<u64>,
    state: StateDir,
    /// Where scrub proxies go, unless they are turned off.
    proxies: Option<ProxySettings>,
    /// File > Recent, read once at start and kept current.
    recent: Vec<PathBuf>,
    /// The project I/O thread: saves, autosaves, recovery.
    io: Option<ProjectIo>,
    /// The project file a save is being written to.
    saving: Option<PathBuf>,
    autosave_note: Option<String>,
    recovery: Option<Recovery>,
    /// A project whose film must be located: (project file, message).
    relink: Option<(PathBuf, String)>,
    /// A recovered project waiting for its film to open: the project, its
    /// file and that file as last saved.
    pending_recovery: Option<(Project, Option<PathBuf>, Option<Project>)>,
    view: ViewState,
    in_out: (Option<u64>, Option<u64>),
    playback: Option<Playback>,
    selected_shot: Option<usize>,
    show_shortcuts: bool,
    show_about: bool,
    /// The "Compare settings" window.
    compare: crate::compare::Compare,
    error: Option<String>,
    runtime: RuntimeStatus,
    /// File > Export…: its window, the running export and its notice.
    exporter: Exporter,
    queue: crate::queue::QueuePanel,
    farm: crate::farm::FarmDialog,
    /// The project revision the "after" picture was coloured with.
    after_revision: Option<u64>,
    /// The hint painting tools.
    paint: PaintState,
    /// The hint colour picker (the a*b* plane at the lightness under the pointer).
    picker: crate::picker::Picker,
    /// The coloured frame's colour under the pointer, while it is on the picture.
    colour_here: Option<[u8; 3]>,
    /// The model's likely colours under the pointer (sRGB at the film's
    /// lightness there, and their probability), most likely first.
    likely_here: Vec<([u8; 3], f32)>,
    /// The model's class distribution over a frame: (frame, map), `None`
    /// map when the model gives none.
    likely: Option<(u64, Option<Arc<tincture_infer::model::ClassMap>>)>,
    /// The frame whose class distribution was last asked for.
    likely_asked: Option<u64>,
    /// The names of the models installed in the user's models folders.
    user_models: Vec<String>,
    /// Where the picture painted on was last drawn, and its size in pixels.
    paint_picture: Option<(egui::Rect, [usize; 2])>,
    /// The project revision when the clip's mean flicker was last noted, and that mean.
    flicker_baseline: Option<(u64, f64)>,
    /// Thumbnails of reference pictures, by file (`None`: asked for, or unreadable).
    ref_thumbs: std::collections::HashMap<PathBuf, Option<TextureHandle>>,
    /// The thumbnails' pixels, for the eyedropper.
    ref_pixels: std::collections::HashMap<PathBuf, egui::ColorImage>,
    /// The keyframe whose picture is being pinned.
    pinning: Option<u64>,
    /// The keyframe-suggestion scan thread, started on the first scan.
    suggest: Option<crate::suggest::SuggestWorker>,
    suggest_tx: Sender<crate::suggest::SuggestMessage>,
    suggest_inbox: Receiver<crate::suggest::SuggestMessage>,
    /// The last scan for weak colour, with its suggestions.
    scan: Option<crate::suggest::Scan>,
}

impl TinctureApp {
    /// Creates the app on `ctx` with the state folder from the environment,
    /// opening `file` if given.
    pub fn new(ctx: &egui::Context, file: Option<PathBuf>) -> Self {
        Self::with_options(ctx, AppOptions::new(file))
    }

    /// Creates the app on `ctx`, starts its threads, offers recovery when
    /// the last run did not exit cleanly, and opens `options.file` if given.
    ///
    /// Never fails: a thread that cannot start is reported in the window.
    pub fn with_options(ctx: &egui::Context, options: AppOptions) -> Self {
        ctx.set_theme(egui::ThemePreference::Dark);
        lower_parallel_work_priority();
        let (tx, inbox) = crossbeam_channel::unbounded();
        let mut error = None;
        let proxies = options
            .scrub_proxies
            .then(|| options.state.proxies())
            .flatten();
        let worker = FrameWorker::spawn(
            ctx.clone(),
            tx.clone(),
            proxies.as_ref().map(|p| p.root.clone()),
        )
        .inspect_err(|e| error = Some(format!("Could not start the decoding thread: {e}")))
        .ok();
        let mut runtime = RuntimeStatus::Checking;
        if let Err(e) = worker::spawn_runtime_check(ctx.clone(), tx.clone()) {
            runtime = RuntimeStatus::Failed(format!("could not start the ONNX Runtime check: {e}"));
        }
        let (colour_tx, colour_inbox) = crossbeam_channel::unbounded();
        let (suggest_tx, suggest_inbox) = crossbeam_channel::unbounded();
        let colour = if options.colour {
            ColourWorker::spawn(ctx.clone(), colour_tx)
                .inspect_err(|e| error = Some(format!("Could not start the colour thread: {e}")))
                .ok()
        } else {
            None
        };
        let wake = ctx.clone();
        let io = ProjectIo::spawn(move || wake.request_repaint())
            .inspect_err(|e| {
                error = Some(format!("Could not start the project saving thread: {e}"))
            })
            .ok();
        let recovery = options.state.recovery();
        let recent = options.state.recent();
        let queue = crate::queue::QueuePanel::new(options.state.root());
        let mut app = Self {
            ctx: ctx.clone(),
            worker,
            inbox,
            to_ui: tx,
            colour,
            colour_inbox,
            engine: None,
            media: None,
            film: None,
            opening: None,
            position: 0,
            generation: 0,
            open_generation: 0,
            before: None,
            after: None,
            colouring: false,
            colouring_since: Instant::now(),
            thumbs: Vec::new(),
            shots_detected: false,
            pass: None,
            last_error: None,
            background_cancel: Arc::new(AtomicBool::new(false)),
            doc: None,
            colour_revision: None,
            state: options.state,
            proxies,
            recent,
            io,
            saving: None,
            autosave_note: None,
            recovery,
            relink: None,
            pending_recovery: None,
            view: ViewState::default(),
            in_out: (None, None),
            playback: None,
            selected_shot: None,
            show_shortcuts: false,
            show_about: false,
            compare: crate::compare::Compare::default(),
            error,
            runtime,
            leaving: None,
            after_save: None,
            may_quit: false,
            autosave_lock: None,
            foreign_models: Vec::new(),
            proxy_note: None,
            colour_failed: None,
            exporter: Exporter::default(),
            queue,
            farm: crate::farm::FarmDialog::default(),
            after_revision: None,
            paint: PaintState::default(),
            picker: crate::picker::Picker::default(),
            colour_here: None,
            likely_here: Vec::new(),
            likely: None,
            likely_asked: None,
            user_models: tincture_infer::ModelRegistry::standard()
                .user_models()
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
            paint_picture: None,
            flicker_baseline: None,
            ref_thumbs: std::collections::HashMap::new(),
            ref_pixels: std::collections::HashMap::new(),
            pinning: None,
            suggest: None,
            suggest_tx,
            suggest_inbox,
            scan: None,
        };
        if let Some(file) = options.file {
            app.open_any(file);
        }
        app
    }

    /// Opens a project (`.json`) or a film.
    pub fn open_any(&mut self, path: PathBuf) {
        let is_project = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_project {
            self.open_project(path, None);
        } else {
            self.open(path);
        }
    }

    fn start_opening(&mut self, path: &Path) {
        self.error = None;
        self.relink = None;
        self.opening = Some(path.to_owned());
        self.autosave_lock = None;
        self.proxy_note = None;
        self.position = 0;
        self.generation += 1;
        self.open_generation = self.generation;
        self.doc = None;
        self.colour_revision = None;
        self.after = None;
        self.after_revision = None;
        self.likely = None;
        self.likely_asked = None;
        self.likely_here.clear();
        self.before = None;
        self.thumbs.clear();
        self.shots_detected = false;
        self.pass = None;
        self.in_out = (None, None);
        self.playback = None;
        self.selected_shot = None;
        self.background_cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(c) = &self.colour {
            c.send(ColourCommand::Close);
        }
        if let Some(s) = &self.suggest {
            s.cancel();
        }
        self.scan = None;
    }

    /// Opens a film (on the worker) with a new project, and shows its first frame.
    pub fn open(&mut self, path: PathBuf) {
        tracing::info!(path = %path.display(), "opening");
        self.start_opening(&path);
        self.send(Command::Open(path.clone()));
        self.send(Command::Show {
            index: 0,
            generation: self.generation,
        });
        self.remember_recent(&path);
    }

    /// Opens a project file and its film; `film` relinks it to a film in
    /// another place (accepted when its first frames match).
    pub fn open_project(&mut self, path: PathBuf, film: Option<PathBuf>) {
        tracing::info!(path = %path.display(), "opening project");
        self.start_opening(&path);
        self.send(Command::OpenProject {
            path: path.clone(),
            film,
        });
        self.send(Command::Show {
            index: 0,
            generation: self.generation,
        });
        self.remember_recent(&path);
    }

    /// Puts `path` at the top of File > Recent; the list is written on the project I/O thread.
    fn remember_recent(&mut self, path: &Path) {
        self.recent = crate::document::recent_with(&self.recent, path);
        if let Some(io) = &self.io {
            io.write_recent(self.state.clone(), self.recent.clone());
        }
    }

    /// Moves the playhead to frame `index` (clamped to the film).
    /// Does nothing while no film is open.
    pub fn seek(&mut self, index: u64) {
        let Some(media) = &self.media else { return };
        let index = index.min(media.frame_count.saturating_sub(1));
        if index == self.position && self.before.as_ref().is_some_and(|p| p.index == index) {
            return;
        }
        self.position = index;
        self.generation += 1;
        self.send(Command::Show {
            index,
            generation: self.generation,
        });
        self.colouring = false;
    }

    /// The open film, once the worker has opened it.
    pub fn media(&self) -> Option<&MediaSummary> {
        self.media.as_ref()
    }

    /// The project, once a film or project is open.
    pub fn document(&self) -> Option<&Document> {
        self.doc.as_ref()
    }

    /// The playhead.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The index of the film frame on screen, if any.
    pub fn shown_frame(&self) -> Option<u64> {
        self.before.as_ref().map(|p| p.index)
    }

    /// The index of the coloured frame on screen, if any. When it differs
    /// from [`position`](Self::position) it is shown marked as stale.
    pub fn coloured_frame(&self) -> Option<u64> {
        self.after.as_ref().map(|p| p.index)
    }

    /// Timeline thumbnails received for the open film (they arrive in the background).
    pub fn thumbnail_count(&self) -> usize {
        self.thumbs.len()
    }

    /// Whether shot detection, which runs in the background after the
    /// thumbnails, has finished for the open film.
    pub fn shots_detected(&self) -> bool {
        self.shots_detected
    }

    /// Whether the film frame on screen is the one asked for, and nothing is being opened.
    pub fn is_settled(&self) -> bool {
        self.opening.is_none()
            && self
                .before
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

    /// Work from a run that did not exit cleanly, while recovery is offered.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The viewer's settings.
    pub fn view(&self) -> ViewState {
        self.view
    }

    /// The export range's in and out points.
    pub fn in_out(&self) -> (Option<u64>, Option<u64>) {
        self.in_out
    }

    /// File > Export…: the export window, the running export and its notice.
    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// Opens the Export window (File > Export…); does nothing while no
    /// film and project are open.
    pub fn open_export_dialog(&mut self) {
        if let (Some(film), Some(_)) = (&self.film, &self.doc) {
            self.exporter.open_dialog(film);
        }
    }

    /// The Export to farm window.
    pub fn farm(&self) -> &crate::farm::FarmDialog {
        &self.farm
    }

    /// The batch queue.
    pub fn queue(&self) -> &crate::queue::QueuePanel {
        &self.queue
    }

    /// The batch queue, to start or stop it (tests; the Queue window's
    /// buttons do this for users).
    pub fn queue_mut(&mut self) -> &mut crate::queue::QueuePanel {
        &mut self.queue
    }

    /// File > Add folder to queue…: every film of a folder, each with a new
    /// project, rendered to a second folder in the Export window's format.
    fn add_folder_to_queue_dialog(&mut self) {
        let Some(films) = rfd::FileDialog::new()
            .set_title("A folder of films to queue")
            .pick_folder()
        else {
            return;
        };
        let Some(outputs) = rfd::FileDialog::new()
            .set_title("The folder the coloured films go to")
            .pick_folder()
        else {
            return;
        };
        let format = self.exporter.format_name();
        match self.queue.add_folder(&films, &outputs, format) {
            Ok(0) => self.error = Some(format!("No films found in {}.", films.display())),
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    /// A project whose film must be located before it can open, with the reason.
    pub fn relink_needed(&self) -> Option<&(PathBuf, String)> {
        self.relink.as_ref()
    }

    fn send(&mut self, command: Command) {
        let sent = self.worker.as_ref().is_some_and(|w| w.send(command));
        if !sent {
            self.error =
                Some("The decoding thread has stopped; restart Tincture to open films.".into());
        }
    }

    /// Changes the project as one undo step; structural changes are autosaved at once.
    pub fn edit(&mut self, structural: bool, change: impl FnOnce(&mut Project)) {
        if let Some(doc) = &mut self.doc {
            doc.edit(change);
            self.autosave(structural);
        }
    }

    /// Marks the playhead's frame as a keyframe.
    pub fn add_keyframe_here(&mut self) {
        let frame = self.position;
        self.edit(true, |p| {
            p.add_keyframe(frame);
        });
    }

    /// The project's keyframes (none without a project).
    fn keyframes(&self) -> Vec<u64> {
        self.doc
            .as_ref()
            .map(|d| d.project().keyframes.iter().map(|k| k.frame).collect())
            .unwrap_or_default()
    }

    /// "Suggest keyframes": scans the shot under the playhead for frames
    /// coloured from weak sources, on the scan thread (see
    /// [`crate::suggest`]); the suggestions come when it ends. A scan
    /// already running is ended first.
    pub fn suggest_keyframes(&mut self) {
        let (Some(doc), Some(film)) = (&self.doc, &self.film) else {
            return;
        };
        if self.suggest.is_none() {
            match crate::suggest::SuggestWorker::spawn(self.ctx.clone(), self.suggest_tx.clone()) {
                Ok(w) => self.suggest = Some(w),
                Err(e) => {
                    self.error = Some(format!(
                        "Could not start the keyframe suggestion thread: {e}"
                    ));
                    return;
                }
            }
        }
        let range = doc.project().shot_of(self.position);
        let generation = self.scan.as_ref().map_or(1, |s| s.generation + 1);
        let request = crate::suggest::ScanRequest {
            project: Box::new(doc.project().clone()),
            project_path: doc.path().map(Path::to_path_buf),
            film: film.clone(),
            range,
            generation,
        };
        if self.suggest.as_ref().is_some_and(|w| w.scan(request)) {
            self.scan = Some(crate::suggest::Scan {
                generation,
                range,
                running: true,
                ..crate::suggest::Scan::default()
            });
        } else {
            self.error =
                Some("The keyframe suggestion thread has stopped; restart Tincture.".into());
        }
    }

    /// Ends the keyframe suggestion scan running, keeping what it found.
    pub fn stop_suggesting(&mut self) {
        if let Some(s) = &self.suggest {
            s.cancel();
        }
    }

    /// The last keyframe suggestion scan, if any.
    pub fn scan(&self) -> Option<&crate::suggest::Scan> {
        self.scan.as_ref()
    }

    /// Accepts a suggested keyframe: frame `frame` becomes a keyframe, the
    /// playhead moves there and the brush is taken, to paint it.
    pub fn accept_suggestion(&mut self, frame: u64) {
        self.paint.tool = Tool::Brush;
        self.edit(true, |p| {
            p.add_keyframe(frame);
        });
        if let Some(scan) = &mut self.scan {
            scan.suggestions.retain(|s| s.frame != frame);
        }
        self.playback = None;
        self.seek(frame);
    }

    /// Removes the keyframe at `frame`, if there is one.
    pub fn remove_keyframe(&mut self, frame: u64) {
        self.edit(true, |p| {
            p.remove_keyframe(frame);
        });
    }

    /// Undoes the last change to the project.
    pub fn undo(&mut self) {
        if self.doc.as_mut().is_some_and(Document::undo) {
            self.autosave(true);
        }
    }

    /// Redoes the last undone change.
    pub fn redo(&mut self) {
        if self.doc.as_mut().is_some_and(Document::redo) {
            self.autosave(true);
        }
    }

    /// Saves the project to its file, or to `path` (Save As), on the
    /// project I/O thread; [`is_saving`](Self::is_saving) until it is
    /// written. Errors are shown in the window.
    pub fn save(&mut self, path: Option<PathBuf>) {
        let (Some(doc), Some(io)) = (&self.doc, &self.io) else {
            return;
        };
        // A project saved under a new name may not land on the film it colours.
        if let (Some(p), Some(film)) = (&path, &self.film)
            && let Err(e) = tincture_engine::output::check_not_input(p, &[film.as_path()])
        {
            self.error = Some(e.to_string());
            return;
        }
        match doc.to_save(path) {
            Ok((project, path)) => {
                io.save(SaveJob {
                    project,
                    path: path.clone(),
                    replaced_autosave: doc.autosave_path(&self.state),
                    state: self.state.clone(),
                    film: self.film.clone(),
                });
                self.autosave_note = Some(format!("Saving {}…", path.display()));
                self.saving = Some(path);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Whether a save is being written.
    pub fn is_saving(&self) -> bool {
        self.saving.is_some()
    }

    fn saved(&mut self, path: PathBuf, project: Project, outcome: Result<Vec<PathBuf>, String>) {
        if self.saving.as_ref() == Some(&path) {
            self.saving = None;
        }
        match outcome {
            Ok(recent) => {
                // The same project still open (not a new film since): it is saved.
                if let Some(doc) = self
                    .doc
                    .as_mut()
                    .filter(|d| d.project().source == project.source)
                {
                    doc.mark_saved(path.clone(), project);
                    // Paths in the project now resolve against its file.
                    self.colour_revision = None;
                }
                self.autosave_note = Some(format!("Saved {}", path.display()));
                self.recent = recent;
                if self.saving.is_none()
                    && let Some(action) = self.after_save.take()
                {
                    self.request(action);
                }
            }
            Err(e) => {
                self.autosave_note = None;
                // The save failed: stay, with the work unsaved.
                self.after_save = None;
                self.error = Some(e);
            }
        }
    }

    /// Does `action`, or, when the project has unsaved changes, asks first
    /// (save, discard or cancel) in the "Unsaved changes" window.
    pub fn request(&mut self, action: Leave) {
        if self.doc.as_ref().is_some_and(Document::has_unsaved_work) {
            self.leaving = Some(action);
        } else {
            self.leave(action);
        }
    }

    /// What is waiting on the "Unsaved changes" window, if it is open.
    pub fn unsaved_prompt(&self) -> Option<&Leave> {
        self.leaving.as_ref()
    }

    fn leave(&mut self, action: Leave) {
        match action {
            Leave::Close => self.close(),
            Leave::Open(path) => self.open_any(path),
            Leave::OpenFilmDialog => self.open_dialog(),
            Leave::OpenProjectDialog => self.open_project_dialog(),
            Leave::Quit => {
                self.may_quit = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// The "Unsaved changes" window: Save (then go on once it is written),
    /// Discard (go on; the work stays in the autosave until the next
    /// start), or Cancel.
    fn unsaved_ui(&mut self, ctx: &egui::Context) {
        let Some(action) = self.leaving.clone() else {
            return;
        };
        let name = self
            .doc
            .as_ref()
            .and_then(|d| d.path().map(worker::display_name))
            .unwrap_or_else(|| "The untitled project".to_owned());
        let what = match &action {
            Leave::Close => "closing it".to_owned(),
            Leave::Open(path) => format!("opening {}", worker::display_name(path)),
            Leave::OpenFilmDialog => "opening another film".to_owned(),
            Leave::OpenProjectDialog => "opening another project".to_owned(),
            Leave::Quit => "quitting".to_owned(),
        };
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("unsaved changes")).show(ctx, |ui| {
            ui.heading("Unsaved changes");
            ui.label(format!(
                "{name} has changes that are not saved. Save them before {what}?"
            ));
            ui.horizontal(|ui| {
                if ui.button("Save").clicked() {
                    choice = Some(0);
                }
                if ui.button("Discard").clicked() {
                    choice = Some(1);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(2);
                }
            });
        });
        match choice {
            Some(0) => {
                self.leaving = None;
                self.save_or_ask();
                if self.saving.is_some() {
                    self.after_save = Some(action);
                }
            }
            Some(1) => {
                self.leaving = None;
                self.leave(action);
            }
            Some(2) => self.leaving = None,
            _ => {}
        }
    }

    /// Closes the film and project. Unsaved work stays in the autosave.
    pub fn close(&mut self) {
        self.autosave(true);
        self.start_opening(Path::new(""));
        self.opening = None;
        self.media = None;
        self.film = None;
        self.clear_session();
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title("Tincture".into()));
    }

    /// Opens the work recovered from the autosave on offer: the autosave
    /// is read back on the project I/O thread, then its film opens.
    pub fn recover(&mut self) {
        let (Some(recovery), Some(io)) = (self.recovery.take(), &self.io) else {
            return;
        };
        io.recover(recovery.session);
    }

    fn recovered(&mut self, session: Session, outcome: Result<(Project, Option<Project>), String>) {
        match outcome {
            Ok((project, saved)) => {
                // Open the film (or project) first, then put the recovered project in place.
                match &session.project {
                    Some(p) => self.open_project(p.clone(), Some(session.film.clone())),
                    None => self.open(session.film.clone()),
                }
                self.pending_recovery = Some((project, session.project.clone(), saved));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Declines the recovery on offer; the autosave file is left where it is.
    pub fn discard_recovery(&mut self) {
        self.recovery = None;
        self.clear_session();
    }

    /// Forgets what is open: nothing to recover at the next start.
    fn clear_session(&self) {
        if let Some(io) = &self.io {
            io.record_session(self.state.clone(), None);
        }
    }

    fn autosave(&mut self, structural: bool) {
        let now = Instant::now();
        let Some(target) = self
            .doc
            .as_ref()
            .filter(|d| d.autosave_due(structural, now))
            .map(|d| d.autosave_path(&self.state))
        else {
            return;
        };
        // Saved under a new name: its autosave moved, and so does the lock.
        if let Err(e) = self.lock_autosave(&target) {
            if self.error.is_none() {
                self.error = Some(format!("Autosave is off: {e}"));
            }
            return;
        }
        let (Some(doc), Some(io)) = (&mut self.doc, &self.io) else {
            return;
        };
        io.autosave(doc.project().clone(), target);
        doc.mark_autosaved(now);
    }

    fn record_session(&self) {
        let (Some(doc), Some(film), Some(io)) = (&self.doc, &self.film, &self.io) else {
            return;
        };
        let session = Session {
            film: film.clone(),
            project: doc.path().map(Path::to_owned),
            autosave: doc.autosave_path(&self.state),
        };
        io.record_session(self.state.clone(), Some(session));
    }
}

impl TinctureApp {
    /// Applies everything the background threads have sent.
    fn handle_messages(&mut self) {
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                Message::Opened(summary) => self.opened(summary),
                Message::NewProject(project) => self.project_ready(*project, None),
                Message::ProjectOpened {
                    project,
                    path,
                    film,
                } => {
                    self.film = Some(film);
                    self.project_ready(*project, Some(path));
                }
                Message::ProjectNeedsFilm { path, text } => {
                    self.opening = None;
                    self.pending_recovery = None;
                    self.relink = Some((path, text));
                }
                Message::Frame(frame) => self.frame_arrived(&frame),
                Message::Thumbnail(frame) => {
                    if frame.generation == self.open_generation {
                        let side = self.ctx.input(|i| i.max_texture_side);
                        let texture = self.ctx.load_texture(
                            format!("thumb-{}", frame.index),
                            fit_to_texture(&frame.image, side),
                            TextureOptions::LINEAR,
                        );
                        self.thumbs.push((frame.index, texture));
                    }
                }
                Message::Shots { generation, shots } => {
                    self.shots_detected |= generation == self.open_generation;
                    let no_shots = self
                        .doc
                        .as_ref()
                        .is_some_and(|d| d.project().shots.is_empty());
                    if generation == self.open_generation && no_shots && shots.len() > 1 {
                        self.edit(true, |p| {
                            p.shots = shots
                                .iter()
                                .map(|&(start, end)| ShotEntry {
                                    start,
                                    end,
                                    settings: None,
                                })
                                .collect();
                        });
                    }
                }
                Message::Error(text) => {
                    if self.opening.take().is_some() {
                        // The worker dropped the previous film before trying this one.
                        self.media = None;
                        self.before = None;
                        self.pending_recovery = None;
                        self.ctx
                            .send_viewport_cmd(egui::ViewportCommand::Title("Tincture".into()));
                    }
                    self.error = Some(text);
                }
                Message::Pass {
                    generation,
                    done,
                    total,
                } => {
                    if generation == self.open_generation {
                        self.pass = (done < total).then_some((done, total));
                    }
                }
                Message::ProxyNote { generation, text } => {
                    if generation == self.open_generation {
                        tracing::info!("{text}");
                        self.proxy_note = Some(text);
                    }
                }
                Message::Runtime(Ok(version)) => self.runtime = RuntimeStatus::Ready(version),
                Message::Runtime(Err(text)) => self.runtime = RuntimeStatus::Failed(text),
            }
        }
        if !self.suggest_inbox.is_empty() {
            let keys = self.keyframes();
            while let Ok(message) = self.suggest_inbox.try_recv() {
                if let Some(scan) = &mut self.scan {
                    scan.take(message, &keys);
                }
            }
        }
        while let Ok(message) = self.colour_inbox.try_recv() {
            match message {
                ColourMessage::Frame {
                    frame,
                    revision,
                    flicker,
                } => {
                    if frame.generation >= self.open_generation {
                        upload(&self.ctx, &mut self.after, &frame, "tincture-after");
                        self.after_revision = Some(revision);
                        // Previewing on, frame by frame, measures the flicker too.
                        if let (Some(sample), Some(film)) = (flicker, &self.film) {
                            self.exporter.record_flicker(film, frame.index, sample);
                        }
                    }
                    self.colouring = false;
                }
                ColourMessage::Compared {
                    index,
                    generation,
                    frames,
                    flicker,
                } => self
                    .compare
                    .receive(&self.ctx, generation, index, &frames, flicker),
                ColourMessage::Likely { index, map } => {
                    if self.likely_asked == Some(index) {
                        self.likely = Some((index, map));
                    }
                }
                ColourMessage::Engine(text) => self.engine = Some(text),
                ColourMessage::Error(text) => {
                    self.colouring = false;
                    // Not asked again until the frame or the project changes.
                    self.colour_failed = self.doc.as_ref().map(|d| (self.position, d.revision()));
                    self.compare.pending = false;
                    self.error = Some(text);
                }
            }
        }
        let results: Vec<IoResult> = self
            .io
            .as_ref()
            .map(|io| io.results.try_iter().collect())
            .unwrap_or_default();
        for result in results {
            match result {
                IoResult::Autosaved { path, outcome } => {
                    self.autosave_note = Some(match outcome {
                        Ok(()) => format!("Autosaved to {}", path.display()),
                        Err(e) => {
                            self.error = Some(e.clone());
                            e
                        }
                    });
                }
                IoResult::Saved {
                    path,
                    project,
                    outcome,
                } => self.saved(path, project, outcome),
                IoResult::Recovered { session, outcome } => self.recovered(session, outcome),
                IoResult::Pinned {
                    frame,
                    path,
                    outcome,
                } => self.pinned(frame, path, outcome),
                IoResult::ReferenceChecked {
                    path,
                    shot,
                    join,
                    outcome,
                } => self.reference_checked(path, shot, join, outcome),
            }
        }
    }

    fn opened(&mut self, summary: MediaSummary) {
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(format!(
                "{} — Tincture",
                summary.file_name
            )));
        if self.film.is_none() || self.opening.as_deref() == Some(summary.path.as_path()) {
            self.film = Some(summary.path.clone());
        }
        self.opening = None;
        self.before = None;
        self.position = self.position.min(summary.frame_count.saturating_sub(1));
        let cancel = Arc::new(AtomicBool::new(false));
        self.background_cancel = Arc::clone(&cancel);
        if let Err(e) = worker::spawn_background(
            self.ctx.clone(),
            self.to_ui.clone(),
            summary.path.clone(),
            self.open_generation,
            BackgroundWork {
                thumbnails: THUMBNAILS,
                detect: true,
                proxies: self.proxies.clone(),
            },
            cancel,
        ) {
            self.error = Some(format!("Could not start the thumbnail thread: {e}"));
        }
        self.media = Some(summary);
    }

    fn project_ready(&mut self, project: Project, path: Option<PathBuf>) {
        let doc = match self.pending_recovery.take() {
            Some((recovered, recovered_path, saved)) => {
                Document::recovered(recovered, recovered_path, saved)
            }
            None => match path {
                Some(p) => Document::loaded(project, p),
                None => Document::untitled(project),
            },
        };
        // A project (or film) open in another Tincture is not opened here
        // too: both would write its autosave.
        self.autosave_lock = None;
        if let Err(e) = self.lock_autosave(&doc.autosave_path(&self.state)) {
            let name = doc.path().map_or_else(
                || worker::display_name(&doc.project().source.path),
                worker::display_name,
            );
            self.close();
            self.error = Some(format!("{name} is not opened here: {e}"));
            return;
        }
        // A project from elsewhere may name model files anywhere: a model
        // is code the colour engine runs, so the user allows them first.
        self.foreign_models = doc.project().model_path_problems();
        self.doc = Some(doc);
        self.colour_revision = None;
        self.record_session();
        self.autosave(true);
    }

    /// Why the open film has no scrub proxy, when its budget said no.
    pub fn proxy_note(&self) -> Option<&str> {
        self.proxy_note.as_deref()
    }

    /// Shot models from outside the project's folder that wait for the
    /// user's answer (one sentence each).
    pub fn foreign_models(&self) -> &[String] {
        &self.foreign_models
    }

    /// The user's answer about those models: `true` uses them, `false`
    /// gives those shots the export's model instead (one undo step).
    pub fn answer_foreign_models(&mut self, allow: bool) {
        if self.foreign_models.is_empty() {
            return;
        }
        self.foreign_models.clear();
        if !allow {
            self.edit(true, |p| {
                let outside = |m: &Option<String>| {
                    m.as_deref()
                        .is_some_and(|m| !tincture_core::project::model_stays_in_project(m))
                };
                if outside(&p.defaults.model) {
                    p.defaults.model = None;
                }
                for s in &mut p.shots {
                    if let Some(st) = s.settings.as_mut()
                        && outside(&st.model)
                    {
                        st.model = None;
                    }
                }
            });
        }
    }

    /// The window asking about models from outside the project's folder.
    fn foreign_models_ui(&mut self, ctx: &egui::Context) {
        if self.foreign_models.is_empty() {
            return;
        }
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("foreign models")).show(ctx, |ui| {
            ui.heading("Models from outside the project's folder");
            ui.label(
                "This project names colorizer models that are not Tincture's and not in the \
                 project's own folder. A model is run by the colour engine: use them only if \
                 you trust where the project came from.",
            );
            for p in &self.foreign_models {
                ui.label(RichText::new(p).weak());
            }
            ui.horizontal(|ui| {
                if ui.button("Use these models").clicked() {
                    answer = Some(true);
                }
                if ui.button("Use the export's model instead").clicked() {
                    answer = Some(false);
                }
            });
        });
        if let Some(a) = answer {
            self.answer_foreign_models(a);
        }
    }

    /// Holds the lock on the autosave at `target` (taken anew when its path
    /// moved, after Save As).
    fn lock_autosave(&mut self, target: &Path) -> Result<(), String> {
        let lock_file = tincture_engine::lock::lock_path(target);
        if self
            .autosave_lock
            .as_ref()
            .is_some_and(|l| l.path() == lock_file)
        {
            return Ok(());
        }
        if let Some(dir) = target.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let lock = tincture_engine::lock::FileLock::acquire(target, "this project")
            .map_err(|e| e.to_string())?;
        self.autosave_lock = Some(lock);
        Ok(())
    }

    /// Shows a decoded film frame unless it is stale: from before the
    /// current film was opened, or older than the frame on screen.
    fn frame_arrived(&mut self, frame: &RgbFrame) {
        let older_than_shown = self
            .before
            .as_ref()
            .is_some_and(|p| frame.generation <= p.generation);
        if frame.generation < self.open_generation || older_than_shown {
            tracing::trace!(frame.index, frame.generation, "stale frame dropped");
            return;
        }
        if frame.image.size != [frame.width, frame.height] {
            self.error = Some(format!(
                "Frame {}: the decoder returned a {}x{} picture for {}x{} pixels",
                frame.index, frame.image.size[0], frame.image.size[1], frame.width, frame.height
            ));
            return;
        }
        upload(&self.ctx, &mut self.before, frame, "tincture-before");
    }

    /// Keeps the colour worker's project current and asks it for the playhead's frame.
    fn drive_colour(&mut self) {
        let (Some(colour), Some(doc), Some(film)) = (&self.colour, &self.doc, &self.film) else {
            return;
        };
        if !self.foreign_models.is_empty()
            || self.colour_failed == Some((self.position, doc.revision()))
        {
            return;
        }
        if self.colour_revision != Some(doc.revision()) {
            colour.send(ColourCommand::Project {
                project: Box::new(doc.project().clone()),
                project_path: doc.path().map(Path::to_owned),
                film: film.clone(),
                revision: doc.revision(),
            });
            self.colour_revision = Some(doc.revision());
            self.colouring = false;
        }
        // Current: this frame, coloured with the project as it is now (a new
        // stroke or setting colours the frame again).
        let current = self
            .after
            .as_ref()
            .is_some_and(|a| a.index == self.position && a.generation >= self.generation)
            && self.after_revision == Some(doc.revision());
        // Also while playing: the newest frame is coloured as the worker keeps up.
        if !current && !self.colouring {
            colour.send(ColourCommand::Show {
                index: self.position,
                generation: self.generation,
            });
            self.colouring = true;
            self.colouring_since = Instant::now();
        }
    }

    fn advance_playback(&mut self) {
        let (Some(play), Some(media)) = (self.playback, &self.media) else {
            return;
        };
        let fps = media.frame_rate.max(1.0);
        let last = media.frame_count.saturating_sub(1);
        let moved = (play.started.elapsed().as_secs_f64() * fps * play.speed) as i64;
        let target = (play.from as i64 + moved).clamp(0, last as i64) as u64;
        if (target == last && play.speed > 0.0) || (target == 0 && play.speed < 0.0) {
            self.playback = None;
        }
        self.seek(target);
        self.ctx.request_repaint();
    }

    fn play(&mut self, speed: f64) {
        self.playback = Some(Playback {
            speed,
            started: Instant::now(),
            from: self.position,
        });
    }

    /// Keyboard: arrows step (Shift: ten frames), Home/End, J/K/L and Space
    /// play, I/O set the export range, `\` held shows the film alone, and
    /// the menu shortcuts.
    fn keyboard_ui(&mut self, ui: &mut egui::Ui) {
        if ui.ctx().text_edit_focused() {
            return;
        }
        let shift = Modifiers::SHIFT;
        let cmd = Modifiers::COMMAND;
        // Shifted keys first: a plain pattern also matches a shifted press.
        let keys = [
            (shift, Key::ArrowLeft),
            (shift, Key::ArrowRight),
            (Modifiers::NONE, Key::ArrowLeft),
            (Modifiers::NONE, Key::ArrowRight),
            (Modifiers::NONE, Key::Home),
            (Modifiers::NONE, Key::End),
            (Modifiers::NONE, Key::J),
            (Modifiers::NONE, Key::K),
            (Modifiers::NONE, Key::L),
            (Modifiers::NONE, Key::Space),
            (Modifiers::NONE, Key::I),
            (Modifiers::NONE, Key::O),
            (cmd, Key::O),
            (cmd | shift, Key::S),
            (cmd, Key::S),
            (cmd | shift, Key::Z),
            (cmd, Key::Z),
            (cmd, Key::Y),
            (Modifiers::NONE, Key::F),
            (Modifiers::NONE, Key::Num1),
        ];
        self.paint_keys(ui);
        self.flicker_keys(ui);
        // Presses are counted, so steps typed faster than frames are drawn
        // (a held key on a busy machine) are not lost.
        let counts = ui.input_mut(|i| keys.map(|(m, k)| i.count_and_consume_key(m, k)));
        let steps = |n: usize| n as u64;
        let (left10, right10, left, right) = (
            steps(counts[0]) * 10,
            steps(counts[1]) * 10,
            steps(counts[2]),
            steps(counts[3]),
        );
        let pressed = counts.map(|n| n > 0);
        let [
            _,
            _,
            _,
            _,
            home,
            end,
            j,
            k,
            l,
            space,
            mark_in,
            mark_out,
            open,
            save_as,
            save,
            redo_z,
            undo,
            redo_y,
            fit,
            one,
        ] = pressed;
        if open {
            self.request(Leave::OpenFilmDialog);
        }
        if save_as {
            self.save_as_dialog();
        } else if save {
            self.save_or_ask();
        }
        if undo {
            self.undo();
        }
        if redo_z || redo_y {
            self.redo();
        }
        if fit {
            self.view.zoom = None;
            self.view.pan = egui::Vec2::ZERO;
        }
        if one {
            self.view.zoom = Some(1.0);
            self.view.pan = egui::Vec2::ZERO;
        }
        let Some(last) = self.media.as_ref().map(|m| m.frame_count.saturating_sub(1)) else {
            return;
        };
        let p = self.position;
        let target = if home {
            Some(0)
        } else if end {
            Some(last)
        } else if left10 + right10 + left + right > 0 {
            Some(
                (p + right10 + right)
                    .saturating_sub(left10 + left)
                    .min(last),
            )
        } else {
            None
        };
        if let Some(index) = target {
            self.playback = None;
            self.seek(index);
        }
        if k {
            self.playback = None;
        }
        if l {
            let speed = self.playback.map_or(1.0, |pb| {
                if pb.speed > 0.0 {
                    (pb.speed * 2.0).min(8.0)
                } else {
                    1.0
                }
            });
            self.play(speed);
        }
        if j {
            let speed = self.playback.map_or(-1.0, |pb| {
                if pb.speed < 0.0 {
                    (pb.speed * 2.0).max(-8.0)
                } else {
                    -1.0
                }
            });
            self.play(speed);
        }
        if space {
            if self.playback.is_some() {
                self.playback = None;
            } else {
                self.play(1.0);
            }
        }
        if mark_in {
            self.in_out.0 = Some(p);
            if self.in_out.1.is_some_and(|o| o < p) {
                self.in_out.1 = None;
            }
        }
        if mark_out {
            self.in_out.1 = Some(p);
            if self.in_out.0.is_some_and(|i| i > p) {
                self.in_out.0 = None;
            }
        }
    }

    /// Asks for a film or project with the system file dialog.
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

    fn open_project_dialog(&mut self) {
        let picked = rfd::FileDialog::new()
            .set_title("Open a Tincture project")
            .add_filter("Tincture project", &["json"])
            .pick_file();
        if let Some(path) = picked {
            self.open_project(path, None);
        }
    }

    fn relink_dialog(&mut self) {
        let Some((project, _)) = self.relink.clone() else {
            return;
        };
        let picked = rfd::FileDialog::new()
            .set_title("Locate the project's film")
            .add_filter("Film", FILM_EXTENSIONS)
            .add_filter("All files", &["*"])
            .pick_file();
        if let Some(film) = picked {
            self.open_project(project, Some(film));
        }
    }

    fn save_as_dialog(&mut self) {
        let Some(doc) = &self.doc else { return };
        let name = doc
            .project()
            .source
            .path
            .file_stem()
            .map_or_else(|| "project".into(), |s| s.to_string_lossy().into_owned());
        let picked = rfd::FileDialog::new()
            .set_title("Save the project")
            .add_filter("Tincture project", &["json"])
            .set_file_name(format!("{name}.tincture.json"))
            .save_file();
        if let Some(path) = picked {
            self.save(Some(path));
        }
    }

    fn save_or_ask(&mut self) {
        if self.doc.as_ref().is_some_and(|d| d.path().is_some()) {
            self.save(None);
        } else {
            self.save_as_dialog();
        }
    }

    fn menu_bar_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("menu_bar").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                ui.menu_button("File", |ui| self.file_menu(ui));
                ui.menu_button("Edit", |ui| {
                    let (can_undo, can_redo) = self
                        .doc
                        .as_ref()
                        .map_or((false, false), |d| (d.can_undo(), d.can_redo()));
                    if ui
                        .add_enabled(can_undo, egui::Button::new("Undo").shortcut_text("Ctrl+Z"))
                        .clicked()
                    {
                        ui.close();
                        self.undo();
                    }
                    if ui
                        .add_enabled(
                            can_redo,
                            egui::Button::new("Redo").shortcut_text("Ctrl+Shift+Z"),
                        )
                        .clicked()
                    {
                        ui.close();
                        self.redo();
                    }
                    ui.separator();
                    let has_doc = self.doc.is_some();
                    if ui
                        .add_enabled(has_doc, egui::Button::new("Add keyframe here"))
                        .clicked()
                    {
                        ui.close();
                        self.add_keyframe_here();
                    }
                });
                ui.menu_button("View", |ui| {
                    for mode in SplitMode::ALL {
                        if ui.radio(self.view.mode == mode, mode.label()).clicked() {
                            self.view.mode = mode;
                            ui.close();
                        }
                    }
                    ui.separator();
                    if ui
                        .add_enabled(self.doc.is_some(), egui::Button::new("Compare settings…"))
                        .clicked()
                    {
                        self.open_compare();
                        ui.close();
                    }
                    ui.separator();
                    if ui
                        .add(egui::Button::new("Zoom to fit").shortcut_text("F"))
                        .clicked()
                    {
                        self.view.zoom = None;
                        self.view.pan = egui::Vec2::ZERO;
                        ui.close();
                    }
                    if ui
                        .add(egui::Button::new("Zoom 1:1").shortcut_text("1"))
                        .clicked()
                    {
                        self.view.zoom = Some(1.0);
                        self.view.pan = egui::Vec2::ZERO;
                        ui.close();
                    }
                });
                ui.menu_button("Help", |ui| {
                    if ui.button("Keyboard shortcuts").clicked() {
                        self.show_shortcuts = true;
                        ui.close();
                    }
                    if ui.button("About Tincture").clicked() {
                        self.show_about = true;
                        ui.close();
                    }
                });
            });
        });
    }

    fn file_menu(&mut self, ui: &mut egui::Ui) {
        if ui
            .add(egui::Button::new("Open Film…").shortcut_text("Ctrl+O"))
            .clicked()
        {
            ui.close();
            self.request(Leave::OpenFilmDialog);
        }
        if ui.button("Open Project…").clicked() {
            ui.close();
            self.request(Leave::OpenProjectDialog);
        }
        let has_doc = self.doc.is_some();
        if ui
            .add_enabled(has_doc, egui::Button::new("Save").shortcut_text("Ctrl+S"))
            .clicked()
        {
            ui.close();
            self.save_or_ask();
        }
        if ui
            .add_enabled(
                has_doc,
                egui::Button::new("Save As…").shortcut_text("Ctrl+Shift+S"),
            )
            .clicked()
        {
            ui.close();
            self.save_as_dialog();
        }
        let can_export = has_doc && self.film.is_some();
        if ui
            .add_enabled(can_export, egui::Button::new("Export…"))
            .clicked()
        {
            ui.close();
            self.open_export_dialog();
        }
        if ui
            .add_enabled(can_export, egui::Button::new("Add to queue…"))
            .on_hover_text("Choose the export settings, then Add to queue")
            .clicked()
        {
            ui.close();
            self.open_export_dialog();
        }
        if ui
            .add_enabled(can_export, egui::Button::new("Export to farm…"))
            .on_hover_text("A job bundle for Open Job Description or Slurm")
            .clicked()
        {
            ui.close();
            if let Some(film) = &self.film {
                self.farm.open_for(film);
            }
        }
        if ui.button("Add folder to queue…").clicked() {
            ui.close();
            self.add_folder_to_queue_dialog();
        }
        if ui.button("Queue…").clicked() {
            ui.close();
            self.queue.open = true;
        }
        if ui
            .add_enabled(has_doc, egui::Button::new("Import reference photo…"))
            .clicked()
        {
            ui.close();
            self.import_reference_dialog();
        }
        ui.menu_button("Recent", |ui| {
            let recent = self.recent.clone();
            if recent.is_empty() {
                ui.label("Nothing yet");
            }
            for path in recent {
                if ui.button(path.display().to_string()).clicked() {
                    ui.close();
                    self.request(Leave::Open(path));
                }
            }
        });
        if ui
            .add_enabled(has_doc, egui::Button::new("Close"))
            .clicked()
        {
            ui.close();
            self.request(Leave::Close);
        }
        ui.separator();
        if ui.button("Quit").clicked() {
            ui.close();
            self.request(Leave::Quit);
        }
    }

    fn status_bar_ui(&self, ui: &mut egui::Ui) {
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    self.runtime_ui(ui);
                    ui.separator();
                    self.workers_ui(ui);
                    ui.separator();
                    ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                        self.media_status_ui(ui);
                        if self.colouring {
                            ui.separator();
                            // No spinner: it repaints the window on every
                            // frame for as long as colouring runs, and a
                            // frame that waits on a long backward pass (a
                            // keyframe hundreds of frames on, at 1920x1080)
                            // then shares the CPU with the window's drawing.
                            // The seconds waited, redrawn once a second.
                            let waited = self.colouring_since.elapsed().as_secs();
                            let text = if waited >= 1 {
                                format!("Colouring frame {}… {waited} s", self.position)
                            } else {
                                format!("Colouring frame {}…", self.position)
                            };
                            ui.ctx().request_repaint_after(Duration::from_secs(1));
                            // Labels on the left give way (cut short) to the
                            // workers' status on the right, never run under it.
                            ui.add(egui::Label::new(text).truncate());
                        }
                        // The colour engine is named in the Properties panel and
                        // in Help > About; the status bar keeps room for the workers.
                        if let Some(doc) = &self.doc {
                            ui.separator();
                            let name = doc.path().map_or_else(
                                || "untitled project".to_owned(),
                                worker::display_name,
                            );
                            let dirty = if doc.is_dirty() { " •" } else { "" };
                            ui.add(egui::Label::new(format!("{name}{dirty}")).truncate());
                        }
                        if let Some(note) = &self.proxy_note {
                            ui.separator();
                            ui.add(egui::Label::new(RichText::new("No scrub proxy").weak()))
                                .on_hover_text(note);
                        }
                        if let Some(note) = &self.autosave_note {
                            ui.separator();
                            // Long paths are cut short rather than run under the runtime status.
                            ui.add(egui::Label::new(RichText::new(note).weak()).truncate())
                                .on_hover_text(note);
                        }
                    });
                });
            });
        });
    }

    /// Jobs waiting for the worker threads: frame requests, the frame on
    /// screen still being decoded or coloured, and project writes.
    pub fn queue_length(&self) -> usize {
        let frames = self.worker.as_ref().map_or(0, FrameWorker::queued);
        let decoding = usize::from(self.media.is_some() && !self.is_settled());
        let writes = self.io.as_ref().map_or(0, ProjectIo::pending);
        frames + decoding + usize::from(self.colouring) + writes
    }

    /// The worker threads' state and queue, and the last error (right-hand
    /// side of the status bar, laid out right to left).
    fn workers_ui(&self, ui: &mut egui::Ui) {
        let mut busy = Vec::new();
        if self.media.is_some() && !self.is_settled() {
            busy.push(format!("decoding frame {}", self.position));
        }
        if self.colouring {
            busy.push("colouring".to_owned());
        }
        let thumbnails = self
            .media
            .as_ref()
            .map_or(0, |m| m.frame_count.min(THUMBNAILS));
        if (self.thumbs.len() as u64) < thumbnails && self.pass.is_none() && !self.shots_detected {
            busy.push(format!("thumbnails {}/{thumbnails}", self.thumbs.len()));
        }
        if let Some((done, total)) = self.pass {
            busy.push(format!(
                "shots and scrub proxy {}%",
                done * 100 / total.max(1)
            ));
        }
        if self.is_saving() {
            busy.push("saving".to_owned());
        }
        if self.exporter.is_running() {
            busy.push("exporting".to_owned());
        }
        let queue = self.queue_length();
        let state = if busy.is_empty() {
            "Workers idle".to_owned()
        } else {
            format!("Working: {}", busy.join(", "))
        };
        ui.label(format!("Queue {queue}")).on_hover_text(
            "Jobs waiting for the worker threads: frames, colour and project writes",
        );
        // No spinner: it would repaint the window for as long as anything runs.
        ui.label(state);
        // While its banner is up the error is shown there; afterwards here.
        if let Some(text) = self.last_error.as_ref().filter(|_| self.error.is_none()) {
            ui.separator();
            // At most a third of the bar, cut short on screen, so it never
            // runs under the film's details on the left; the whole message
            // is on hover, to screen readers, and in the log.
            let max = (ui.available_width() / 3.0).max(160.0);
            ui.scope(|ui| {
                ui.set_max_width(max);
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("Last error: {text}"))
                            .color(ui.visuals().error_fg_color),
                    )
                    .truncate(),
                )
                .on_hover_text(text);
            });
        }
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

    fn timeline_ui(&mut self, ui: &mut egui::Ui) {
        let Some(media) = &self.media else { return };
        let (count, rate, start_tc) = (media.frame_count, media.frame_rate, media.timecode.clone());
        let shots: Vec<(u64, u64)> = self
            .doc
            .as_ref()
            .map(|d| d.project().shots.iter().map(|s| (s.start, s.end)).collect())
            .unwrap_or_default();
        let keys: Vec<u64> = self
            .doc
            .as_ref()
            .map(|d| d.project().keyframes.iter().map(|k| k.frame).collect())
            .unwrap_or_default();
        let thumbs: Vec<Thumb> = {
            let mut t: Vec<Thumb> = self
                .thumbs
                .iter()
                .map(|(f, tex)| Thumb {
                    frame: *f,
                    texture: tex.id(),
                    aspect: tex.aspect_ratio(),
                })
                .collect();
            t.sort_by_key(|t| t.frame);
            t
        };
        let weak = self
            .scan
            .as_ref()
            .map(crate::suggest::Scan::weak_stretches)
            .unwrap_or_default();
        let suggested: Vec<u64> = self
            .scan
            .as_ref()
            .map(|s| s.suggestions.iter().map(|x| x.frame).collect())
            .unwrap_or_default();
        let mut seek = None;
        egui::Panel::bottom("timeline").show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                let frame_label = format!("Frame {} / {count}", self.position);
                ui.label(RichText::new(frame_label).monospace());
                ui.separator();
                let tc = frame_timecode(self.position, rate, start_tc.as_deref());
                ui.label(RichText::new(tc).monospace())
                    .on_hover_text("Timecode");
                ui.separator();
                let playing = if self.playback.is_some() {
                    "Pause"
                } else {
                    "Play"
                };
                if ui
                    .button(playing)
                    .on_hover_text("Space; J/K/L shuttle")
                    .clicked()
                {
                    if self.playback.is_some() {
                        self.playback = None;
                    } else {
                        self.play(1.0);
                    }
                }
                let range = match self.in_out {
                    (Some(a), Some(b)) => format!("In {a} – Out {b}"),
                    (Some(a), None) => format!("In {a}"),
                    (None, Some(b)) => format!("Out {b}"),
                    (None, None) => "No in/out (I, O)".to_owned(),
                };
                ui.label(range);
                ui.separator();
                let mut position = self.position;
                ui.spacing_mut().slider_width = ui.available_width().max(50.0);
                let slider =
                    egui::Slider::new(&mut position, 0..=count.saturating_sub(1)).show_value(false);
                if ui.add(slider).accessible_name("Frame position").changed() {
                    seek = Some(position);
                }
            });
            let flicker = self.exporter.flicker(self.film.as_deref());
            let timeline = Timeline {
                frame_count: count,
                position: self.position,
                shots: &shots,
                keyframes: &keys,
                in_out: self.in_out,
                thumbs: &thumbs,
                flicker,
                weak: &weak,
                suggested: &suggested,
            };
            match timeline.show(ui) {
                Some(TimelineAction::Scrub(f) | TimelineAction::Jump(f)) => seek = Some(f),
                None => {}
            }
            ui.add_space(2.0);
        });
        if let Some(f) = seek {
            self.playback = None;
            self.seek(f);
        }
    }
}

impl TinctureApp {
    /// What the Export window needs: the film, its length, the shot under
    /// the playhead and the in/out points.
    fn export_source(&self) -> Option<SourceInfo> {
        let (film, doc) = (self.film.as_ref()?, self.doc.as_ref()?);
        let project = doc.project();
        let frame_count = self
            .media
            .as_ref()
            .map_or(project.source.frame_count, |m| m.frame_count);
        let current_shot = project
            .shots
            .iter()
            .find(|s| (s.start..=s.end).contains(&self.position))
            .map_or((0, frame_count.saturating_sub(1)), |s| (s.start, s.end));
        Some(SourceInfo {
            film: film.clone(),
            frame_count,
            current_shot,
            in_out: self.in_out,
        })
    }

    fn export_panel_ui(&mut self, ui: &mut egui::Ui) {
        let action = self.exporter.panel_ui(ui);
        self.apply_export(action);
    }

    /// Applies what the export window or panel asked for; errors go to the banner.
    fn apply_export(&mut self, action: Option<ExportAction>) {
        let result = match action {
            None => Ok(()),
            Some(ExportAction::Cancel) => {
                self.exporter.cancel();
                Ok(())
            }
            Some(ExportAction::ShowInFolder(path)) => crate::export::show_in_folder(&path),
            Some(ExportAction::Queue(settings)) => match (&self.film, &self.doc) {
                (Some(film), Some(doc)) => match doc.path() {
                    Some(path) if !doc.is_dirty() => {
                        let added = self.queue.add(
                            film,
                            path,
                            &settings.output,
                            self.exporter.format_name(),
                            settings.frames,
                            settings.render.short_side,
                        );
                        if added.is_ok() {
                            self.exporter.close_dialog();
                            self.error = None;
                        }
                        added
                    }
                    _ => Err(
                        "Save the project first (File > Save): the queue renders the project \
                              as saved when its turn comes."
                            .into(),
                    ),
                },
                _ => Err("Open a film before queueing it.".into()),
            },
            Some(ExportAction::Start(settings)) => match (&self.film, &self.doc) {
                (Some(film), Some(doc)) => {
                    // Relative paths in an untitled project resolve beside the
                    // film, as they do for the preview.
                    let project_path = doc
                        .path()
                        .map_or_else(|| film.with_extension("tincture.json"), Path::to_owned);
                    self.exporter.start_export(
                        settings,
                        film,
                        doc.project().clone(),
                        project_path,
                        &self.ctx,
                    )
                }
                _ => Err("Open a film before exporting.".into()),
            },
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn shots_panel_ui(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        let project = doc.project();
        let count = project.source.frame_count;
        let shots: Vec<(u64, u64)> = if project.shots.is_empty() {
            vec![(0, count.saturating_sub(1))]
        } else {
            project.shots.iter().map(|s| (s.start, s.end)).collect()
        };
        let keys: Vec<u64> = project.keyframes.iter().map(|k| k.frame).collect();
        let mut seek = None;
        let mut select = None;
        let mut remove = None;
        let mut add = false;
        let (mut suggest, mut stop_scan, mut accept) = (false, false, None);
        egui::Panel::left("shots_panel")
            .default_size(200.0)
            .show(ui, |ui| {
                ui.heading("Shots");
                egui::ScrollArea::vertical()
                    .id_salt("shots")
                    .max_height(ui.available_height() * 0.5)
                    .show(ui, |ui| {
                        for (i, &(s, e)) in shots.iter().enumerate() {
                            let selected = self.selected_shot == Some(i);
                            let text = format!("Shot {}: {s}–{e}", i + 1);
                            if ui.selectable_label(selected, text).clicked() {
                                select = Some(i);
                                seek = Some(s);
                            }
                        }
                    });
                ui.separator();
                if let Some(f) = self.flicker_panel_ui(ui) {
                    seek = Some(f);
                }
                ui.separator();
                ui.heading("Keyframes");
                ui.horizontal_wrapped(|ui| {
                    if ui.button("Add keyframe here").clicked() {
                        add = true;
                    }
                    let running = self.scan.as_ref().is_some_and(|s| s.running);
                    if running {
                        if ui.button("Stop").on_hover_text("Stop the scan").clicked() {
                            stop_scan = true;
                        }
                    } else if ui
                        .button("Suggest keyframes")
                        .on_hover_text(
                            "Colour this shot as an export would and find the frames coloured \
                             from weak sources (the model alone, unsure matches): they are marked \
                             on the timeline, and the frames where one more keyframe would help \
                             most are listed here",
                        )
                        .clicked()
                    {
                        suggest = true;
                    }
                });
                if let Some(scan) = &self.scan {
                    accept = suggestions_ui(ui, scan, &mut seek);
                }
                egui::ScrollArea::vertical().id_salt("keys").show(ui, |ui| {
                    if keys.is_empty() {
                        ui.weak("None yet: a keyframe holds painted hints or a reference.");
                    }
                    for &k in &keys {
                        ui.horizontal(|ui| {
                            if ui.button(format!("Frame {k}")).clicked() {
                                seek = Some(k);
                            }
                            if ui
                                .small_button("Remove")
                                .on_hover_text(format!("Remove keyframe {k}"))
                                .clicked()
                            {
                                remove = Some(k);
                            }
                        });
                    }
                });
            });
        if let Some(i) = select {
            self.selected_shot = Some(i);
        }
        if add {
            self.add_keyframe_here();
        }
        if suggest {
            self.suggest_keyframes();
        }
        if stop_scan {
            self.stop_suggesting();
        }
        if let Some(f) = accept {
            self.accept_suggestion(f);
        }
        if let Some(k) = remove {
            self.remove_keyframe(k);
        }
        if let Some(f) = seek {
            self.seek(f);
        }
    }

    /// The flicker summary of the clip and of the shot under the playhead,
    /// with the trend since the project last changed; returns a frame to
    /// jump to.
    fn flicker_panel_ui(&self, ui: &mut egui::Ui) -> Option<u64> {
        ui.heading("Flicker");
        let flicker = self
            .exporter
            .flicker(self.film.as_deref())
            .filter(|f| !f.is_empty());
        let (Some(flicker), Some(doc)) = (flicker, &self.doc) else {
            ui.weak("Not measured yet: step or play through the film, or export it, to measure.");
            return None;
        };
        let count = doc.project().source.frame_count;
        let (shot_start, shot_end) = doc.project().shot_of(self.position);
        let mut jump = None;
        let line = |ui: &mut egui::Ui, what: &str, s: &crate::flicker::Summary| {
            ui.label(format!(
                "{what}: mean {:.5}, worst {:.5} at frame {}, {} marked ({} frames)",
                s.mean_warp, s.worst.1, s.worst.0, s.marked, s.frames
            ));
        };
        let clip = flicker.summary(0, count.saturating_sub(1));
        if let Some(c) = &clip {
            line(ui, "Clip", c);
        }
        if let Some(s) = flicker.summary(shot_start, shot_end) {
            line(ui, "Shot", &s);
        }
        if let (Some((_, before)), Some(c)) = (self.flicker_baseline, &clip)
            && let Some(t) = crate::flicker::trend(before, c.mean_warp)
            && t.abs() >= 0.05
        {
            let word = if t < 0.0 { "steadier" } else { "more flicker" };
            ui.label(format!("Since the last change: {t:+.1}% ({word})"));
        }
        // Wrapped, so the panel never widens (and moves the viewer) as values come in.
        ui.horizontal_wrapped(|ui| {
            if let Some(c) = &clip
                && ui.button("Jump to worst").clicked()
            {
                jump = Some(c.worst.0);
            }
            if ui
                .button("Next flicker")
                .on_hover_text("The next frame marked red on the graph (N)")
                .clicked()
            {
                jump = flicker.next_marked(self.position);
            }
        });
        jump
    }

    /// Keeps the clip's mean flicker as it was when the project last
    /// changed, so the panel can say whether the change helped.
    fn track_flicker_baseline(&mut self) {
        let Some(revision) = self.doc.as_ref().map(Document::revision) else {
            return;
        };
        if self.flicker_baseline.is_some_and(|(r, _)| r == revision) {
            return;
        }
        let count = self.media.as_ref().map_or(0, |m| m.frame_count);
        let mean = self
            .exporter
            .flicker(self.film.as_deref())
            .and_then(|f| f.summary(0, count.saturating_sub(1)))
            .map_or(f64::NAN, |s| s.mean_warp);
        self.flicker_baseline = Some((revision, mean));
    }

    /// N: the next frame that stands out on the flicker graph.
    fn flicker_keys(&mut self, ui: &mut egui::Ui) {
        if ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::N))
            && let Some(f) = self
                .exporter
                .flicker(self.film.as_deref())
                .and_then(|f| f.next_marked(self.position))
        {
            self.playback = None;
            self.seek(f);
        }
    }

    fn properties_panel_ui(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        let project = doc.project();
        let shot = self.selected_shot.filter(|&i| i < project.shots.len());
        let mut settings: ShotSettings = match shot {
            Some(i) => project.shots[i]
                .settings
                .clone()
                .unwrap_or_else(|| project.defaults.clone()),
            None => project.defaults.clone(),
        };
        let before = settings.clone();
        let mut compare = false;
        let defaults = project.defaults.clone();
        let engine = self.engine.clone();
        egui::Panel::right("properties_panel")
            .default_size(230.0)
            .show(ui, |ui| {
                // Scrolls when the window is too short for the picker and every setting.
                egui::ScrollArea::vertical()
                    .id_salt("properties")
                    .show(ui, |ui| {
                        self.paint_panel_ui(ui);
                        ui.separator();
                        ui.heading("Properties");
                        match shot {
                            Some(i) => ui.label(format!("Shot {} (its own settings)", i + 1)),
                            None => ui.label("All shots"),
                        };
                        ui.separator();
                        ui.horizontal(|ui| {
                            ui.label("Model");
                            crate::export::shot_model_ui(
                                ui,
                                "shot_model",
                                "Model",
                                &mut settings.model,
                                &self.user_models,
                            );
                        });
                        if let Some(e) = &engine {
                            ui.weak(e);
                        }
                        ui.checkbox(&mut settings.model_prior, "Use the model's colour");
                        ui.add_enabled(
                            settings.model_prior,
                            egui::Checkbox::new(&mut settings.colour_memory, "Colour memory"),
                        )
                        .on_hover_text(
                            "Where motion loses the keyframes' colour (fast motion, things \
                             crossing or entering, a pan onto new ground), match each frame \
                             against the shot's coloured frames, keyframes and reference photos \
                             before the model's colour fills in. Slower; needs the model.",
                        );
                        ui.horizontal(|ui| {
                            ui.label("Render resolution");
                            crate::export::shot_resolution_ui(
                                ui,
                                "shot_resolution",
                                "Render resolution",
                                &mut settings.render_short_side,
                            );
                        });
                        ui.add(
                            egui::Slider::new(&mut settings.saturation, 0.0..=2.0)
                                .text("Saturation"),
                        );
                        ui.add(
                            egui::Slider::new(&mut settings.shadow_rolloff.threshold, 0.0..=0.3)
                                .text("Shadow roll-off"),
                        );
                        ui.add(
                            egui::Slider::new(&mut settings.highlight_rolloff.threshold, 0.7..=1.0)
                                .text("Highlight roll-off"),
                        );
                        ui.add(
                            egui::Slider::new(&mut settings.stabiliser, 0.0..=1.0)
                                .text("Stabiliser"),
                        );
                        if shot.is_some() && ui.button("Use the defaults for this shot").clicked() {
                            settings = defaults.clone();
                        }
                        if ui
                            .button("Compare…")
                            .on_hover_text("Colour this frame under several settings side by side")
                            .clicked()
                        {
                            compare = true;
                        }
                        ui.separator();
                        self.references_panel_ui(ui);
                    });
            });
        if settings != before {
            self.edit(false, move |p| match shot {
                Some(i) => p.shots[i].settings = Some(settings),
                None => p.defaults = settings,
            });
        }
        if compare {
            self.open_compare();
        }
    }

    /// Opens "Compare settings" with variants of the playhead's shot's settings.
    pub fn open_compare(&mut self) {
        if let Some(doc) = &self.doc {
            let current = doc.project().settings_for(self.position).clone();
            self.compare.open_with(&current);
        }
    }

    /// The "Compare settings" window's state (tests).
    pub fn comparison(&self) -> &crate::compare::Compare {
        &self.compare
    }

    fn apply_compare(&mut self, action: Option<crate::compare::CompareAction>) {
        let frame = self.position;
        match action {
            Some(crate::compare::CompareAction::Render) => {
                let (Some(colour), Some(doc)) = (&self.colour, &self.doc) else {
                    return;
                };
                let variants = self
                    .compare
                    .variants
                    .iter()
                    .map(|v| crate::compare::with_settings(doc.project(), frame, v))
                    .collect();
                self.compare.generation += 1;
                // The range ends with the film.
                let frames = doc.project().source.frame_count;
                let count = if frames > 0 {
                    self.compare
                        .count
                        .clamp(1, frames.saturating_sub(frame).max(1))
                } else {
                    self.compare.count.max(1)
                };
                self.compare.pending = colour.send(ColourCommand::Compare {
                    variants,
                    index: frame,
                    count,
                    generation: self.compare.generation,
                });
                self.compare.shown = self.compare.variants.clone();
            }
            Some(crate::compare::CompareAction::Use(settings)) => {
                self.edit(true, move |p| {
                    crate::compare::set_settings(p, frame, settings);
                });
            }
            None => {}
        }
    }

    /// Where pinned keyframe pictures go: beside the project file
    /// (`NAME.references/`), or in the state folder for a project not yet saved.
    fn reference_folder(&self) -> Option<PathBuf> {
        let doc = self.doc.as_ref()?;
        Some(match doc.path() {
            Some(p) => {
                let stem = p
                    .file_stem()
                    .map_or_else(|| "project".into(), |s| s.to_string_lossy());
                p.with_file_name(format!("{stem}.references"))
            }
            None => {
                let film = &doc.project().source;
                let stem = film
                    .path
                    .file_stem()
                    .map_or_else(|| "film".into(), |s| s.to_string_lossy());
                let tag = film.fingerprint.get(..12).unwrap_or("untitled");
                self.state
                    .root()
                    .join("references")
                    .join(format!("{stem}-{tag}"))
            }
        })
    }

    /// Whether the coloured frame on screen is the playhead's (so it can be pinned).
    pub fn can_pin(&self) -> bool {
        self.pinning.is_none()
            && self
                .after
                .as_ref()
                .is_some_and(|a| a.index == self.position && a.generation >= self.open_generation)
    }

    /// "Pin this frame as keyframe": the coloured frame on screen (with the
    /// user's hints) becomes the reference of a keyframe here, which the
    /// shot's colour then follows. Its picture is written on the project
    /// I/O thread; the keyframe is set when it is.
    pub fn pin_keyframe(&mut self) {
        if !self.can_pin() {
            return;
        }
        let (Some(after), Some(folder), Some(io)) =
            (&self.after, self.reference_folder(), &self.io)
        else {
            return;
        };
        let frame = after.index;
        let path = fresh_pin_path(&folder, frame);
        io.pin(frame, Arc::clone(&after.image), path);
        self.pinning = Some(frame);
    }

    fn pinned(
        &mut self,
        frame: u64,
        path: PathBuf,
        outcome: Result<crate::document::Thumbnail, String>,
    ) {
        self.pinning = None;
        match outcome {
            Ok(thumb) => {
                self.set_ref_thumb(&path, &thumb);
                self.edit(true, move |p| {
                    p.add_keyframe(frame).reference = Some(KeyframeReference::Image { path });
                });
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// "Import reference photo…" without the dialog: a colour picture of
    /// the scene (a period photo, say) for the shot under the playhead. It
    /// is read and checked on the project I/O thread; a gray or unreadable
    /// picture is refused with a message naming it.
    pub fn import_reference(&mut self, path: PathBuf) {
        let (Some(doc), Some(io)) = (&self.doc, &self.io) else {
            return;
        };
        let shot = doc.project().shot_index(self.position);
        io.check_reference(path, shot, true);
    }

    fn import_reference_dialog(&mut self) {
        let picked = rfd::FileDialog::new()
            .set_title("Import a reference photo")
            .add_filter(
                "Colour picture",
                &["png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp"],
            )
            .add_filter("All files", &["*"])
            .pick_file();
        if let Some(path) = picked {
            self.import_reference(path);
        }
    }

    fn reference_checked(
        &mut self,
        path: PathBuf,
        shot: Option<usize>,
        join: bool,
        outcome: Result<crate::document::Thumbnail, String>,
    ) {
        match outcome {
            Ok(thumb) => {
                self.set_ref_thumb(&path, &thumb);
                if join {
                    self.edit(true, move |p| {
                        p.references
                            .push(ReferencePhoto::new(path, shot.into_iter().collect()));
                    });
                }
            }
            Err(e) if join => self.error = Some(e),
            Err(e) => tracing::warn!("no thumbnail for {}: {e}", path.display()),
        }
    }

    fn set_ref_thumb(&mut self, path: &Path, thumb: &crate::document::Thumbnail) {
        let image = egui::ColorImage::from_rgb([thumb.width, thumb.height], &thumb.rgb);
        let side = self.ctx.input(|i| i.max_texture_side);
        let texture = self.ctx.load_texture(
            format!("reference-{}", path.display()),
            fit_to_texture(&Arc::new(image.clone()), side),
            TextureOptions::LINEAR,
        );
        self.ref_thumbs.insert(path.to_owned(), Some(texture));
        self.ref_pixels.insert(path.to_owned(), image);
    }

    /// The thumbnail of the reference picture at `path`, asking for it once.
    fn ref_thumb(&mut self, path: &Path) -> Option<egui::TextureId> {
        if !self.ref_thumbs.contains_key(path)
            && let Some(io) = &self.io
        {
            self.ref_thumbs.insert(path.to_owned(), None);
            io.check_reference(path.to_owned(), None, false);
        }
        self.ref_thumbs.get(path)?.as_ref().map(TextureHandle::id)
    }

    /// The references that steer the shot under the playhead: keyframe
    /// pictures and reference photos, each with its thumbnail and Remove.
    fn references_panel_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("References");
        let Some(doc) = &self.doc else { return };
        let project = doc.project();
        let (start, end) = project.shot_of(self.position);
        let shot = project.shot_index(self.position);
        // Paths as stored resolve against the project's folder.
        let resolve = |p: &Path| match doc.path() {
            Some(pp) => project.resolve(pp, p),
            None => p.to_owned(),
        };
        let keyed: Vec<(u64, PathBuf)> = project
            .keyframes_in(start, end)
            .iter()
            .filter_map(|k| {
                k.reference
                    .as_ref()
                    .map(|KeyframeReference::Image { path }| (k.frame, resolve(path)))
            })
            .collect();
        let photos: Vec<(usize, PathBuf, f32)> = project
            .references
            .iter()
            .enumerate()
            .filter(|(_, r)| shot.is_none_or(|s| r.applies_to(s)))
            .map(|(i, r)| (i, resolve(&r.path), r.weight))
            .collect();
        ui.horizontal_wrapped(|ui| {
            let pin = ui
                .add_enabled(
                    self.can_pin(),
                    egui::Button::new("Pin this frame as keyframe"),
                )
                .on_hover_text(
                    "The coloured frame, with your hints, becomes this shot's reference",
                );
            if pin.clicked() {
                self.pin_keyframe();
            }
            if ui.button("Import reference photo…").clicked() {
                self.import_reference_dialog();
            }
        });
        if keyed.is_empty() && photos.is_empty() {
            ui.weak("None for this shot.");
        }
        let mut remove_key = None;
        let mut remove_photo = None;
        let mut seek = None;
        let mut dropped = None;
        let dropper = self.paint.tool == Tool::Eyedropper;
        if dropper && (!keyed.is_empty() || !photos.is_empty()) {
            ui.weak("Eyedropper: click a thumbnail to take its colour");
        }
        for (frame, path) in keyed {
            let thumb = self.ref_thumb(&path);
            let row = reference_row(
                ui,
                thumb,
                dropper,
                &format!("Reference of keyframe {frame}"),
                &format!("Remove the reference of keyframe {frame}"),
            );
            seek = seek.or(row.open.then_some(frame));
            remove_key = remove_key.or(row.remove.then_some(frame));
            dropped = dropped.or(row.picked_at.map(|at| (path.clone(), at)));
        }
        let mut reweigh = None;
        for (i, path, weight) in photos {
            let thumb = self.ref_thumb(&path);
            let name = worker::display_name(&path);
            let row = reference_row(
                ui,
                thumb,
                dropper,
                &format!("Photo: {name}"),
                &format!("Remove the reference photo {name}"),
            );
            remove_photo = remove_photo.or(row.remove.then_some(i));
            dropped = dropped.or(row.picked_at.map(|at| (path.clone(), at)));
            let mut w = weight;
            let slider = egui::Slider::new(&mut w, 0.0..=REFERENCE_WEIGHT_MAX).text("Strength");
            if ui
                .add(slider)
                .accessible_name(format!("Strength of {name}"))
                .on_hover_text("How strongly this photo steers the shot's colour (0: not at all)")
                .changed()
            {
                reweigh = Some((i, w));
            }
        }
        if let Some((i, w)) = reweigh {
            self.edit(false, move |p| {
                if let Some(r) = p.references.get_mut(i) {
                    r.weight = w;
                }
            });
        }
        if let Some(frame) = remove_key {
            self.edit(true, |p| {
                if let Some(k) = p.keyframes.iter_mut().find(|k| k.frame == frame) {
                    k.reference = None;
                }
            });
        }
        if let Some(i) = remove_photo {
            self.edit(true, |p| {
                if i < p.references.len() {
                    p.references.remove(i);
                }
            });
        }
        if let Some(f) = seek {
            self.seek(f);
        }
        if let Some((path, [u, v])) = dropped
            && let Some(image) = self.ref_pixels.get(&path)
        {
            let [w, h] = image.size;
            let x = ((u * w as f32) as usize).min(w.saturating_sub(1));
            let y = ((v * h as f32) as usize).min(h.saturating_sub(1));
            if let Some(c) = image.pixels.get(y * w + x) {
                self.paint.colour = [c.r(), c.g(), c.b()];
            }
        }
    }

    /// The painting tools: tool, hint colour and brush size, the picker at
    /// the lightness under the pointer, and suggested colours.
    fn paint_panel_ui(&mut self, ui: &mut egui::Ui) {
        paint_tools_ui(ui, &mut self.paint);
        self.palette_panel_ui(ui);
        if !self.paint.tool.paints() {
            return;
        }
        self.picker.ui(ui, &mut self.paint.colour);
        self.ask_for_likely_colours();
        if let Some(c) = crate::picker::likely_ui(ui, &self.likely_here, self.likely_state()) {
            self.paint.colour = c;
        }
        let palette: Vec<[u8; 3]> = self.doc.as_ref().map_or_else(Vec::new, |d| {
            d.project()
                .keyframes
                .iter()
                .flat_map(|k| &k.strokes)
                .filter_map(|s| tincture_core::project::hex_to_rgb8(&s.color))
                .collect()
        });
        let suggested = crate::picker::suggestions(self.colour_here, &palette, 8);
        if !suggested.is_empty() {
            ui.weak("Suggested: the colour here now, then this project's");
            if let Some(c) = crate::picker::suggestions_ui(ui, &suggested) {
                self.paint.colour = c;
            }
        }
    }

    /// Asks the likely-colours thread for the model's class distribution
    /// over the frame on screen, once per frame, while a painting tool is out.
    fn ask_for_likely_colours(&mut self) {
        if self.likely_asked == Some(self.position) || self.doc.is_none() {
            return;
        }
        if let Some(colour) = &self.colour
            && colour.ask_likely(self.position)
        {
            self.likely_asked = Some(self.position);
            self.likely_here.clear();
        }
    }

    /// Where the model's suggestions for the frame on screen stand.
    fn likely_state(&self) -> crate::picker::LikelyState {
        match &self.likely {
            Some((index, map)) if *index == self.position => {
                if map.is_some() {
                    crate::picker::LikelyState::Ready
                } else {
                    crate::picker::LikelyState::NoModel
                }
            }
            _ if self.likely_asked == Some(self.position) => crate::picker::LikelyState::Working,
            _ => crate::picker::LikelyState::NotAsked,
        }
    }

    /// The model's likely colours at the pixel last under the pointer, with
    /// their probabilities (tests).
    pub fn likely_colours_here(&self) -> &[([u8; 3], f32)] {
        &self.likely_here
    }

    /// Whether the model's class distribution for the frame on screen has come (tests).
    pub fn likely_colours_ready(&self) -> bool {
        matches!(self.likely_state(), crate::picker::LikelyState::Ready)
    }

    /// The project's palette: colours kept to paint with again. Adding and
    /// removing are undone like any edit and autosaved at once.
    fn palette_panel_ui(&mut self, ui: &mut egui::Ui) {
        let Some(doc) = &self.doc else { return };
        let colours: Vec<[u8; 3]> = doc
            .project()
            .palette
            .iter()
            .filter_map(|c| tincture_core::project::hex_to_rgb8(c))
            .collect();
        match crate::picker::palette_ui(ui, &colours) {
            Some(crate::picker::PaletteAction::Pick(c)) => self.paint.colour = c,
            Some(crate::picker::PaletteAction::Add) => self.add_to_palette(self.paint.colour),
            Some(crate::picker::PaletteAction::Remove(i)) => self.edit(true, move |p| {
                if i < p.palette.len() {
                    p.palette.remove(i);
                }
            }),
            None => {}
        }
    }

    /// Keeps `colour` in the project's palette (once).
    pub fn add_to_palette(&mut self, colour: [u8; 3]) {
        let hex = tincture_core::project::rgb8_to_hex(colour);
        let known = self
            .doc
            .as_ref()
            .is_none_or(|d| d.project().palette.contains(&hex));
        if !known {
            self.edit(true, move |p| p.palette.push(hex));
        }
    }

    /// The hint colours suggested now (tests).
    pub fn suggested_colours(&self) -> Vec<[u8; 3]> {
        let palette: Vec<[u8; 3]> = self.doc.as_ref().map_or_else(Vec::new, |d| {
            d.project()
                .keyframes
                .iter()
                .flat_map(|k| &k.strokes)
                .filter_map(|s| tincture_core::project::hex_to_rgb8(&s.color))
                .collect()
        });
        crate::picker::suggestions(self.colour_here, &palette, 8)
    }

    /// The lightness the picker shows (L*).
    pub fn picker_lightness(&self) -> f64 {
        self.picker.lightness
    }

    /// V, B, P, E and D choose a tool; `[` and `]` change the brush size.
    fn paint_keys(&mut self, ui: &mut egui::Ui) {
        let tools =
            Tool::ALL.map(|t| (t, ui.input_mut(|i| i.consume_key(Modifiers::NONE, t.key()))));
        if let Some((tool, _)) = tools.iter().rev().find(|(_, pressed)| *pressed) {
            self.paint.tool = *tool;
            self.paint.current = None;
        }
        let (smaller, larger) = ui.input_mut(|i| {
            (
                i.count_and_consume_key(Modifiers::NONE, Key::OpenBracket),
                i.count_and_consume_key(Modifiers::NONE, Key::CloseBracket),
            )
        });
        for _ in 0..smaller {
            self.paint.resize(false);
        }
        for _ in 0..larger {
            self.paint.resize(true);
        }
    }

    /// Where the picture that is painted on lies, and its size: the
    /// coloured side in side-by-side view, else the whole picture.
    fn paint_area(&self, rect: egui::Rect) -> Option<(egui::Rect, [usize; 2])> {
        let size = self.before.as_ref().or(self.after.as_ref())?.size;
        let pixel_aspect = self.media.as_ref().map_or(1.0, |m| m.pixel_aspect);
        let area = if self.view.mode == SplitMode::SideBySide {
            let half = rect.width() / 2.0;
            egui::Rect::from_min_size(
                rect.min + egui::vec2(half, 0.0),
                egui::vec2(half, rect.height()),
            )
        } else {
            rect
        };
        Some((
            viewer::picture_rect(area, size, pixel_aspect, &self.view),
            size,
        ))
    }

    /// The strokes of the frame on screen, drawn over the viewer, and the
    /// painting tool's clicks and drags.
    fn hints_ui(
        &mut self,
        ui: &egui::Ui,
        rect: egui::Rect,
        response: &egui::Response,
        painting: bool,
    ) {
        self.paint_picture = self.paint_area(rect);
        let Some((picture, size)) = self.paint_picture else {
            return;
        };
        if painting {
            self.paint_with_tool(ui, picture, size, response);
            // The picker follows the film's lightness under the pointer.
            if let Some(p) = response.hover_pos().filter(|p| picture.contains(*p)) {
                let [x, y] = crate::paint::film_pixel(p, picture, size).map(|v| v.round() as usize);
                let pixel = |pic: &Picture| {
                    let c = pic.image.pixels.get(y * pic.image.size[0] + x)?;
                    Some([c.r(), c.g(), c.b()])
                };
                if let Some(film) = self.before.as_ref().and_then(pixel) {
                    self.picker.lightness = tincture_core::metrics::srgb8_to_lab(film)[0];
                    self.picker.from_pointer = true;
                }
                self.colour_here = self.after.as_ref().and_then(pixel);
                self.likely_here = match &self.likely {
                    Some((index, Some(map))) if *index == self.position => {
                        let (u, v) = (
                            (x as f32 + 0.5) / size[0].max(1) as f32,
                            (y as f32 + 0.5) / size[1].max(1) as f32,
                        );
                        crate::picker::likely_colours(map, u, v, self.picker.lightness)
                    }
                    _ => Vec::new(),
                };
            }
        }
        let strokes = self
            .doc
            .as_ref()
            .and_then(|d| d.project().keyframe(self.position))
            .map_or(&[][..], |k| k.strokes.as_slice());
        let current = self
            .paint
            .current
            .as_deref()
            .filter(|_| matches!(self.paint.tool, Tool::Brush | Tool::Point))
            .map(|points| (points, self.paint.colour, self.paint.size));
        let painter = ui.painter_at(rect);
        crate::paint::draw_strokes(&painter, picture, size, strokes, current);
        if painting
            && let Some(p) = response.hover_pos()
            && matches!(self.paint.tool, Tool::Brush | Tool::Eraser)
        {
            let radius = self.paint.size / 2.0 * picture.width() / size[0].max(1) as f32;
            painter.circle_stroke(p, radius.max(1.0), egui::Stroke::new(1.0, Color32::WHITE));
        }
    }

    fn paint_with_tool(
        &mut self,
        ui: &egui::Ui,
        picture: egui::Rect,
        size: [usize; 2],
        response: &egui::Response,
    ) {
        let pointer = ui.input(|i| i.pointer.interact_pos());
        let at = pointer.map(|p| crate::paint::film_pixel(p, picture, size));
        let canvas = [size[0] as u32, size[1] as u32];
        match self.paint.tool {
            Tool::View => {}
            Tool::Brush | Tool::Eraser => {
                if response.is_pointer_button_down_on()
                    && let Some(at) = at
                {
                    let started = pointer.is_some_and(|p| crate::paint::on_picture(p, picture));
                    if self.paint.current.is_none() && started {
                        self.paint.current = Some(Vec::new());
                    }
                    if let Some(points) = &mut self.paint.current {
                        crate::paint::extend(points, at);
                    }
                }
                if response.drag_stopped() || response.clicked() {
                    match self.paint.tool {
                        Tool::Brush => {
                            if let Some(stroke) = self.paint.finish(canvas) {
                                self.add_stroke(stroke);
                            }
                        }
                        _ => {
                            let points = self.paint.current.take().unwrap_or_default();
                            self.erase(&points);
                        }
                    }
                }
            }
            Tool::Point => {
                if response.clicked()
                    && let Some(at) = at
                    && pointer.is_some_and(|p| crate::paint::on_picture(p, picture))
                {
                    self.paint.current = Some(vec![at]);
                    if let Some(stroke) = self.paint.finish(canvas) {
                        self.add_stroke(stroke);
                    }
                }
            }
            Tool::Eyedropper => {
                if response.clicked()
                    && let Some([x, y]) = at
                    && let Some(picked) = self.after.as_ref().or(self.before.as_ref())
                {
                    let (x, y) = (x as usize, y as usize);
                    let [w, _] = picked.image.size;
                    if let Some(c) = picked.image.pixels.get(y * w + x) {
                        self.paint.colour = [c.r(), c.g(), c.b()];
                    }
                }
            }
        }
    }

    /// Adds a painted stroke to the frame on screen, which becomes a
    /// keyframe: one undo step, autosaved at once.
    pub fn add_stroke(&mut self, stroke: tincture_core::project::Stroke) {
        let frame = self.position;
        self.edit(true, move |p| p.add_keyframe(frame).strokes.push(stroke));
    }

    /// Removes the strokes of the frame on screen that the eraser passed over.
    fn erase(&mut self, path: &[[f32; 2]]) {
        let frame = self.position;
        let radius = self.paint.size / 2.0;
        self.edit(true, |p| {
            if let Some(k) = p.keyframes.iter_mut().find(|k| k.frame == frame) {
                k.strokes
                    .retain(|s| !path.iter().any(|&at| crate::paint::touches(s, at, radius)));
            }
        });
    }

    /// The film open, if any.
    pub fn film(&self) -> Option<&Path> {
        self.film.as_deref()
    }

    /// Where the timeline's flicker graph row was last drawn.
    pub fn timeline_graph_rect(&self) -> Option<egui::Rect> {
        self.ctx
            .data(|d| d.get_temp(egui::Id::unique(crate::timeline::GRAPH_RECT_KEY)))
    }

    /// The tool in use (tests and benches).
    pub fn paint_state(&self) -> &PaintState {
        &self.paint
    }

    /// Where the picture that is painted on was last drawn, and its size in film pixels.
    pub fn paint_picture(&self) -> Option<(egui::Rect, [usize; 2])> {
        self.paint_picture
    }

    /// The screen point of film pixel (`x`, `y`) on the picture painted on.
    pub fn screen_point_of(&self, x: f32, y: f32) -> Option<egui::Pos2> {
        let (r, [w, h]) = self.paint_picture?;
        Some(egui::pos2(
            r.left() + (x + 0.5) / w as f32 * r.width(),
            r.top() + (y + 0.5) / h as f32 * r.height(),
        ))
    }

    /// The project revision the coloured ("after") frame was coloured with.
    pub fn coloured_revision(&self) -> Option<u64> {
        self.after_revision
    }

    /// The coloured ("after") frame's pixel (`x`, `y`) as sRGB, and its frame number.
    pub fn after_rgb_at(&self, x: usize, y: usize) -> Option<(u64, [u8; 3])> {
        let a = self.after.as_ref()?;
        let c = a.image.pixels.get(y * a.size[0] + x)?;
        Some((a.index, [c.r(), c.g(), c.b()]))
    }

    /// Sets the hint colour (tests; the panel's colour button does this for users).
    pub fn set_hint_colour(&mut self, rgb: [u8; 3]) {
        self.paint.colour = rgb;
    }

    fn banners_ui(&mut self, ui: &mut egui::Ui) {
        if let Some(r) = &self.recovery {
            let when = r.saved_at.elapsed().map_or_else(
                |_| "recently".to_owned(),
                |d| format!("{} s ago", d.as_secs()),
            );
            let what = r.session.project.as_deref().map_or_else(
                || worker::display_name(&r.session.film),
                worker::display_name,
            );
            let mut recover = false;
            let mut discard = false;
            egui::Frame::new().inner_margin(8.0).show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.label(
                        RichText::new(format!(
                            "Tincture did not close cleanly. Unsaved work on {what} was autosaved {when}."
                        ))
                        .color(ui.visuals().warn_fg_color),
                    );
                    recover = ui.button("Recover").clicked();
                    discard = ui.button("Discard").clicked();
                });
            });
            if recover {
                self.recover();
            } else if discard {
                self.discard_recovery();
            }
        }
        if let Some((project, text)) = &self.relink {
            let mut locate = false;
            let mut dismiss = false;
            let name = worker::display_name(project);
            egui::Frame::new().inner_margin(8.0).show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(
                        RichText::new(format!("{name}: {text}")).color(ui.visuals().warn_fg_color),
                    );
                    locate = ui.button("Locate film…").clicked();
                    dismiss = ui.small_button("Dismiss").clicked();
                });
            });
            if locate {
                self.relink_dialog();
            } else if dismiss {
                self.relink = None;
            }
        }
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

    fn viewer_ui(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        ui.allocate_rect(rect, egui::Sense::hover());
        let hold = ui.input(|i| i.key_down(Key::Backslash)) && !ui.ctx().text_edit_focused();
        let pixel_aspect = self.media.as_ref().map_or(1.0, |m| m.pixel_aspect);
        let before = self.before.as_ref().map(Picture::side);
        let after = self.after.as_ref().map(Picture::side);
        let painting = self.paint.tool.paints() && self.doc.is_some();
        let response = viewer::show(
            ui,
            rect,
            &mut self.view,
            before,
            after,
            pixel_aspect,
            hold,
            painting,
        );
        self.hints_ui(ui, rect, &response, painting);
        let painter = ui.painter_at(rect);
        if self.before.is_some() {
            let stale = self
                .after
                .as_ref()
                .filter(|a| a.index != self.position)
                .map(|a| a.index);
            let mut text = match &self.media {
                Some(m) => format!(
                    "Frame {}  {}",
                    self.position,
                    frame_timecode(self.position, m.frame_rate, m.timecode.as_deref())
                ),
                None => String::new(),
            };
            let outdated = self.after_revision != self.doc.as_ref().map(Document::revision);
            if let Some(i) = stale {
                text.push_str(&format!("   After: stale (frame {i}), colouring…"));
            } else if self.after.is_some() && outdated && self.colour.is_some() {
                text.push_str("   After: updating to your change…");
            } else if self.after.is_none() && self.colour.is_some() && self.doc.is_some() {
                text.push_str("   After: colouring…");
            }
            let colour =
                if stale.is_some() || (self.after.is_some() && outdated && self.colour.is_some()) {
                    Color32::from_rgb(255, 190, 80)
                } else {
                    Color32::from_gray(235)
                };
            // A real label (not just paint), so assistive technology reads it too.
            let area = egui::Rect::from_min_size(
                rect.left_top() + egui::vec2(4.0, 4.0),
                egui::vec2(rect.width() - 8.0, 24.0),
            );
            ui.scope_builder(egui::UiBuilder::new().max_rect(area), |ui| {
                egui::Frame::new()
                    .fill(Color32::from_black_alpha(160))
                    .corner_radius(3.0)
                    .inner_margin(egui::Margin::symmetric(4, 2))
                    .show(ui, |ui| {
                        ui.label(RichText::new(text).monospace().color(colour));
                    });
            });
        } else if self.opening.is_some() {
            egui::Spinner::new().size(32.0).paint_at(
                ui,
                egui::Rect::from_center_size(rect.center(), egui::Vec2::splat(32.0)),
            );
        } else if self.media.is_none() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Open a black-and-white film with File > Open Film… (Ctrl+O), or drop it here",
                egui::FontId::proportional(16.0),
                ui.visuals().weak_text_color(),
            );
        }
    }

    fn windows_ui(&mut self, ctx: &egui::Context) {
        egui::Window::new("Keyboard shortcuts")
            .open(&mut self.show_shortcuts)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                    for (k, what) in SHORTCUTS {
                        ui.label(RichText::new(*k).monospace());
                        ui.label(*what);
                        ui.end_row();
                    }
                });
            });
        let runtime = match &self.runtime {
            RuntimeStatus::Checking => "ONNX Runtime: still loading".to_owned(),
            RuntimeStatus::Ready(v) => format!("ONNX Runtime {v}"),
            RuntimeStatus::Failed(e) => format!("ONNX Runtime unavailable: {e}"),
        };
        let engine = self
            .engine
            .clone()
            .unwrap_or_else(|| "Execution provider: shown once a film is coloured".into());
        egui::Window::new("About Tincture")
            .open(&mut self.show_about)
            .resizable(false)
            .show(ctx, |ui| {
                ui.heading(format!("Tincture {}", env!("CARGO_PKG_VERSION")));
                ui.label("A restoration workstation for colorizing black-and-white film.");
                ui.label("Luma is sacred: Tincture adds chroma and nothing else.");
                ui.separator();
                ui.label(runtime);
                ui.label(engine);
            });
    }
}

/// The keyboard shortcuts, as Help shows them.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Left / Right", "previous / next frame"),
    ("Shift+Left / Right", "ten frames back / on"),
    ("Home / End", "first / last frame"),
    ("Space", "play / pause"),
    (
        "J / K / L",
        "play backward / stop / play forward (again: faster)",
    ),
    ("I / O", "set the in / out point for export"),
    ("\\ (hold)", "show the film alone (before)"),
    ("F / 1", "zoom to fit / 1:1; the mouse wheel zooms"),
    ("Ctrl+O", "open a film"),
    ("Ctrl+S / Ctrl+Shift+S", "save / save as"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
    (
        "V / B / P / E / D",
        "view tool / brush / point hint / eraser / eyedropper",
    ),
    ("[ / ]", "smaller / larger brush"),
    ("N", "next frame marked red on the flicker graph"),
];

/// The keyframe suggestion scan's progress and its suggestions, each
/// with a button that accepts it; returns the frame accepted. A click on a
/// suggestion's frame number moves the playhead there (`seek`).
fn suggestions_ui(
    ui: &mut egui::Ui,
    scan: &crate::suggest::Scan,
    seek: &mut Option<u64>,
) -> Option<u64> {
    let (first, last) = scan.range;
    let total = last - first + 1;
    let done = scan.weak.len() as u64;
    if scan.running {
        ui.add(
            egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                .text(format!("Scanning frames {first}–{last}: {done} / {total}")),
        );
        return None;
    }
    if let Some(e) = &scan.error {
        ui.colored_label(Color32::from_rgb(230, 90, 80), format!("Scan failed: {e}"));
        return None;
    }
    let stretches = scan.weak_stretches();
    let what = if scan.complete {
        "Scanned"
    } else {
        "Stopped after"
    };
    ui.weak(format!(
        "{what} {done} frames from {first}: {:.0}% of the colour from weak sources, {} weak stretch{}",
        100.0 * scan.mean_weak(),
        stretches.len(),
        if stretches.len() == 1 { "" } else { "es" }
    ));
    if scan.suggestions.is_empty() {
        ui.weak("No suggestions: the keyframes carry this shot.");
        return None;
    }
    ui.label("Suggested keyframes, most help first:");
    let mut accepted = None;
    for s in &scan.suggestions {
        ui.horizontal(|ui| {
            if ui
                .button(format!("Frame {}", s.frame))
                .on_hover_text("Go to this frame")
                .clicked()
            {
                *seek = Some(s.frame);
            }
            ui.weak(format!("gain {:.1}", s.gain))
                .on_hover_text("Frames' worth of weak colour a keyframe here would replace");
            if ui
                .small_button("Add")
                .on_hover_text(format!(
                    "Make frame {} a keyframe and go there to paint it",
                    s.frame
                ))
                .clicked()
            {
                accepted = Some(s.frame);
            }
        });
    }
    accepted
}

/// Where a frame pinned as keyframe `frame` is written in `folder`: a name
/// no earlier picture has (`frame-NNNNNN.png`, then `frame-NNNNNN-2.png`...),
/// so pinning the frame again keeps the earlier picture and undo brings it
/// back.
pub fn fresh_pin_path(folder: &Path, frame: u64) -> PathBuf {
    let first = folder.join(format!("frame-{frame:06}.png"));
    if !first.exists() {
        return first;
    }
    (2u32..)
        .map(|n| folder.join(format!("frame-{frame:06}-{n}.png")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Something that leaves the open project: asked about first when it has
/// unsaved changes (see [`TinctureApp::request`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leave {
    /// File > Close.
    Close,
    /// Opening a film or project (Recent, a dropped file).
    Open(PathBuf),
    /// File > Open Film….
    OpenFilmDialog,
    /// File > Open Project….
    OpenProjectDialog,
    /// File > Quit, or the window's close button.
    Quit,
}

impl eframe::App for TinctureApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.handle_messages();
        self.track_flicker_baseline();
        if let (Some(doc), Some(film)) = (&self.doc, &self.film) {
            let starts: Vec<u64> = doc
                .project()
                .shots
                .iter()
                .skip(1)
                .map(|s| s.start)
                .collect();
            self.exporter.forget_flicker_at(film, &starts);
        }
        if self.error.is_some() && self.error != self.last_error {
            // Every error the window shows goes to the log too (stderr).
            if let Some(e) = &self.error {
                tracing::error!("{e}");
            }
            self.last_error.clone_from(&self.error);
        }
        self.advance_playback();
        self.drive_colour();
        if let Some(e) = self.exporter.poll() {
            self.error = Some(e);
        }
        // The autosave thread wakes the UI every interval for this.
        self.autosave(false);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let dropped = ui.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_owned()));
        if let Some(path) = dropped {
            self.request(Leave::Open(path));
        }
        // The window's close button asks first too, when work is unsaved.
        if ui.ctx().input(|i| i.viewport().close_requested())
            && !self.may_quit
            && self.doc.as_ref().is_some_and(Document::has_unsaved_work)
        {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.leaving = Some(Leave::Quit);
        }
        self.keyboard_ui(ui);
        self.menu_bar_ui(ui);
        self.status_bar_ui(ui);
        self.export_panel_ui(ui);
        self.timeline_ui(ui);
        self.shots_panel_ui(ui);
        self.properties_panel_ui(ui);
        egui::CentralPanel::no_frame().show(ui, |ui| {
            self.banners_ui(ui);
            self.viewer_ui(ui);
        });
        let ctx = ui.ctx().clone();
        self.windows_ui(&ctx);
        self.unsaved_ui(&ctx);
        self.foreign_models_ui(&ctx);
        let compared = self
            .compare
            .window_ui(&ctx, self.position, &self.user_models);
        self.apply_compare(compared);
        let source = self.export_source();
        let action = self.exporter.window_ui(&ctx, source.as_ref());
        self.apply_export(action);
        self.queue
            .window_ui(&ctx, &tincture_engine::neural::ModelChoice::default());
        if let (Some(film), Some(doc)) = (&self.film, &self.doc) {
            let project = doc.project();
            let source = crate::farm::FarmSource {
                film,
                project: doc.path().filter(|_| !doc.is_dirty()),
                frame_count: project.source.frame_count,
                shots: project.shots.iter().map(|s| (s.start, s.end)).collect(),
            };
            self.farm.window_ui(&ctx, Some(&source));
        } else {
            self.farm.window_ui(&ctx, None);
        }
    }

    fn on_exit(&mut self) {
        // The queue's item keeps its partial file and resumes next time.
        self.queue.stop();
        // A clean exit with everything saved needs no recovery next time;
        // unsaved work stays in its autosave and is offered again.
        self.autosave(true);
        if !self.doc.as_ref().is_some_and(Document::is_dirty) {
            self.clear_session();
        }
        // Queued saves and autosaves are written before the window goes.
        if let Some(io) = &self.io
            && !io.flush(crate::document::FLUSH_LIMIT)
        {
            tracing::error!("the project I/O thread did not finish its writes before exit");
        }
    }
}

/// One reference in the References panel: its thumbnail, a button named
/// `label` and a Remove button named `remove`; whether each was clicked.
fn reference_row(
    ui: &mut egui::Ui,
    thumb: Option<egui::TextureId>,
    dropper: bool,
    label: &str,
    remove: &str,
) -> ReferenceRow {
    ui.horizontal(|ui| {
        let mut picked_at = None;
        if let Some(t) = thumb {
            let sense = if dropper {
                egui::Sense::click()
            } else {
                egui::Sense::hover()
            };
            let name = format!("Thumbnail of {label}");
            let r = ui.add(egui::Image::new((t, egui::vec2(56.0 * 4.0 / 3.0, 42.0))).sense(sense));
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &name));
            if r.clicked()
                && let Some(p) = r.interact_pointer_pos()
            {
                let (min, size) = (r.rect.min, r.rect.size());
                picked_at = Some([
                    ((p.x - min.x) / size.x).clamp(0.0, 1.0),
                    ((p.y - min.y) / size.y).clamp(0.0, 1.0),
                ]);
            }
            if dropper {
                r.on_hover_cursor(egui::CursorIcon::Crosshair);
            }
        }
        let open = ui.button(label).clicked();
        let removed = ui
            .small_button("Remove")
            .accessible_name(remove)
            .on_hover_text(remove)
            .clicked();
        ReferenceRow {
            open,
            remove: removed,
            picked_at,
        }
    })
    .inner
}

/// What was clicked in a row of the References panel.
struct ReferenceRow {
    /// The reference's button (go to its keyframe).
    open: bool,
    /// Remove.
    remove: bool,
    /// Where the eyedropper clicked its thumbnail, 0 to 1 across and down.
    picked_at: Option<[f32; 2]>,
}

/// The painting tools' panel: a button per tool, the hint colour and the brush size.
fn paint_tools_ui(ui: &mut egui::Ui, paint: &mut PaintState) {
    ui.heading("Paint hints");
    ui.horizontal_wrapped(|ui| {
        for tool in Tool::ALL {
            let key = format!("{:?}", tool.key());
            if ui
                .selectable_label(paint.tool == tool, tool.label())
                .on_hover_text(format!("{} ({key})", tool.label()))
                .clicked()
            {
                paint.tool = tool;
                paint.current = None;
            }
        }
    });
    ui.horizontal(|ui| {
        ui.color_edit_button_srgb(&mut paint.colour)
            .on_hover_text("Hint colour (only its chroma is used: the film's luma is kept)");
        ui.label("Hint colour");
    });
    ui.add(
        egui::Slider::new(&mut paint.size, crate::paint::SIZE_RANGE)
            .logarithmic(true)
            .text("Brush size"),
    )
    .on_hover_text("[ and ] change it");
}

/// Makes the threads that do the heavy parallel work (optical flow, the
/// chroma solver, propagation: rayon's pool, shared by previews, exports
/// and their live metrics) run at the background priority, so that they
/// never take the CPU from the window. Without it, the pool takes the
/// priority of whichever thread first used it, and an export's parallel
/// work could run at the window's priority and make it stutter. The UI
/// thread itself never waits on the pool. Only the first call in a
/// process has an effect (the pool is built once).
fn lower_parallel_work_priority() {
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("tincture-work-{i}"))
        .start_handler(|_| tincture_engine::lower_thread_priority())
        .build_global();
    if let Err(e) = built {
        tracing::debug!("the parallel work pool was already built: {e}");
    }
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
    fn rates_read_naturally() {
        assert_eq!(format_rate(24.0), "24");
        assert_eq!(format_rate(24000.0 / 1001.0), "23.976");
        assert_eq!(format_rate(30000.0 / 1001.0), "29.97");
        assert_eq!(format_rate(12.5), "12.5");
    }

    #[test]
    fn frames_wider_than_the_texture_limit_are_shown_scaled_down() {
        // 8400x6: left half red, right half blue.
        let (w, h) = (8400, 6);
        let pixels = (0..w * h)
            .map(|i| {
                if i % w < w / 2 {
                    Color32::from_rgb(200, 10, 10)
                } else {
                    Color32::from_rgb(10, 10, 200)
                }
            })
            .collect();
        let image = Arc::new(egui::ColorImage::new([w, h], pixels));
        let fitted = fit_to_texture(&image, 8192);
        assert_eq!(fitted.size, [8192, 5], "the aspect is kept");
        assert_eq!(fitted.pixels[0], Color32::from_rgb(200, 10, 10));
        assert_eq!(fitted.pixels[8191], Color32::from_rgb(10, 10, 200));
        // A frame within the limit is the same picture, not a copy.
        let small = fit_to_texture(&fitted, 8192);
        assert!(Arc::ptr_eq(&small, &fitted));
        // Two by two pixels averaged into one.
        let quad = Arc::new(egui::ColorImage::new(
            [2, 2],
            vec![
                Color32::from_rgb(0, 0, 0),
                Color32::from_rgb(100, 0, 0),
                Color32::from_rgb(0, 200, 0),
                Color32::from_rgb(100, 200, 40),
            ],
        ));
        let one = fit_to_texture(&quad, 1);
        assert_eq!(one.size, [1, 1]);
        assert_eq!(one.pixels[0], Color32::from_rgb(50, 100, 10));
    }
}
