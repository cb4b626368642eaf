//! The colour worker ([`COLOUR_THREAD_NAME`]): colours the frame on screen
//! for the "after" side of the viewer, with the same engine an export uses
//! ([`FilmColorizer`] over a snapshot of the project), so the preview shows
//! what the export will contain.
//!
//! Requests are latest-wins: while the user scrubs, only the newest frame is
//! coloured, and the viewer keeps the last result on screen, marked stale.
//! The neural model (through the inference worker of `tincture-infer`) is
//! started once and shared by every project snapshot. The model's likely
//! colours for the hint picker are worked out on a thread of their own
//! ([`LIKELY_THREAD_NAME`]), so a stroke's colour never waits behind them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::compose::compose_rgb8_444;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::guided::GuidedFilter;
use tincture_core::memory::CellFeatures;
use tincture_core::project::Project;
use tincture_engine::analysis::metrics::MeanFlicker;
use tincture_engine::film::FilmColorizer;
use tincture_engine::neural::{ModelChoice, WorkerColorizer};
use tincture_engine::project::plan_of;
use tincture_infer::model::{ClassMap, resize_area};
use tincture_media::VideoReader;

use crate::flicker::Sample;
use crate::worker::RgbFrame;
use tincture_engine::live_metrics::LiveMetrics;

/// Name of the colour worker thread.
pub const COLOUR_THREAD_NAME: &str = "tincture-colour";

/// A command for the colour worker.
#[derive(Clone, Debug)]
pub enum ColourCommand {
    /// Colour with this project from now on (a snapshot; the UI keeps editing its own).
    Project {
        /// The project.
        project: Box<Project>,
        /// Its file, against which its relative paths resolve; `None` while untitled.
        project_path: Option<PathBuf>,
        /// The film, already checked against the project.
        film: PathBuf,
        /// The document's revision this snapshot is of.
        revision: u64,
    },
    /// Colour frame `index`; only the newest pending one is done.
    Show {
        /// Frame index.
        index: u64,
        /// The UI's request counter.
        generation: u64,
    },
    /// Colour `count` frames from `index` under each of these variants of
    /// the project (settings compared side by side); the preview keeps its
    /// own project.
    Compare {
        /// The project with each variant's settings.
        variants: Vec<Project>,
        /// First frame.
        index: u64,
        /// Frames, one or more.
        count: u64,
        /// The UI's comparison counter.
        generation: u64,
    },
    /// Forget the project (the film was closed).
    Close,
    /// End the worker.
    Stop,
}

/// A message from the colour worker.
#[derive(Clone, Debug, PartialEq)]
pub enum ColourMessage {
    /// A coloured frame, and the revision of the project it was coloured with.
    Frame {
        /// The frame.
        frame: RgbFrame,
        /// The project revision.
        revision: u64,
        /// Its flicker against the frame before, when that was coloured just before it.
        flicker: Option<Sample>,
    },
    /// The frames of a [`ColourCommand::Compare`] coloured under each variant, in order.
    Compared {
        /// First frame.
        index: u64,
        /// The comparison counter it answers.
        generation: u64,
        /// Per variant, its frames.
        frames: Vec<Vec<RgbFrame>>,
        /// Per variant, its mean flicker over the frames (when more than one).
        flicker: Vec<Option<Sample>>,
    },
    /// The model's a\*b\* class distribution over frame `index`
    /// (`None` when the model gives none, or there is no model).
    Likely {
        /// Frame index.
        index: u64,
        /// The distribution.
        map: Option<Arc<ClassMap>>,
    },
    /// Which engine colours the preview, in words ("model `x` on CPU").
    Engine(String),
    /// Colouring a frame failed; the text names the frame and says why.
    Error(String),
}

/// The neural model, shared by the colorizers of successive project
/// snapshots. Its proposal for a frame depends on the frame's luma and the
/// render resolution alone, so the last one is kept: painting on a frame
/// colours it again and again, and the model need not run again each time.
#[derive(Clone)]
pub struct SharedModel {
    model: Arc<Mutex<WorkerColorizer>>,
    last: Arc<Mutex<Option<(LumaKey, ChromaField)>>>,
    /// The features of the last [`FEATURES_KEPT`] frames for the colour
    /// memory, newest last: after an edit the preview replays the same
    /// frames from their keyframe, and the model need not see them again.
    last_features: Arc<Mutex<Vec<(LumaKey, CellFeatures)>>>,
    /// The render resolution this snapshot's colorizer asks for now.
    short_side: Option<u32>,
    /// The model this snapshot's colorizer asks for now (a shot's own).
    shot_model: Option<String>,
}

/// Frames whose colour-memory features [`SharedModel`] keeps: a replay
/// from a keyframe 48 frames back takes features of each of the 49 (the
/// matched colour is a data term, carried on from every frame), about 1 MB
/// a frame.
const FEATURES_KEPT: usize = 64;

/// What identifies the luma a proposal was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LumaKey {
    index: u64,
    width: usize,
    height: usize,
    matrix: Matrix,
    short_side: Option<u32>,
    model: Option<String>,
    digest: u64,
}

impl LumaKey {
    fn of(
        luma: &LumaImage,
        index: u64,
        matrix: Matrix,
        short_side: Option<u32>,
        model: Option<String>,
    ) -> Self {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for v in &luma.data {
            v.to_bits().hash(&mut hasher);
        }
        Self {
            index,
            width: luma.width,
            height: luma.height,
            matrix,
            short_side,
            model,
            digest: hasher.finish(),
        }
    }
}

impl SharedModel {
    /// Starts the model `choice`.
    ///
    /// # Errors
    /// When the model or ONNX Runtime cannot be loaded; the message says why.
    pub fn start(choice: &ModelChoice) -> tincture_engine::Result<Self> {
        Ok(Self::of(WorkerColorizer::start(choice)?))
    }

    fn of(model: WorkerColorizer) -> Self {
        Self {
            model: Arc::new(Mutex::new(model)),
            last: Arc::new(Mutex::new(None)),
            last_features: Arc::new(Mutex::new(Vec::new())),
            short_side: None,
            shot_model: None,
        }
    }

    /// Runs `work` on the model, set to this snapshot's render resolution
    /// and shot model.
    fn with_model<T>(
        &self,
        work: impl FnOnce(&mut WorkerColorizer) -> tincture_core::Result<T>,
    ) -> tincture_core::Result<T> {
        let mut model = self
            .model
            .lock()
            .map_err(|_| tincture_core::Error::Engine {
                message: "the model worker failed earlier".into(),
            })?;
        model.set_render_short_side(self.short_side);
        model.set_model(self.shot_model.as_deref());
        work(&mut model)
    }

    fn provider(&self) -> String {
        self.model
            .lock()
            .map_or_else(|_| "?".into(), |m| m.provider().to_owned())
    }
}

impl Colorizer for SharedModel {
    fn name(&self) -> &str {
        "shared-model"
    }

    fn settings(&self) -> serde_json::Value {
        self.model
            .lock()
            .map_or(serde_json::Value::Null, |m| m.settings())
    }

    fn set_render_short_side(&mut self, short_side: Option<u32>) {
        self.short_side = short_side;
    }

    fn set_model(&mut self, model: Option<&str>) {
        self.shot_model = model.map(str::to_owned);
    }

    fn features(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
    ) -> tincture_core::Result<Option<CellFeatures>> {
        let key = LumaKey::of(
            luma,
            frame_index,
            Matrix::Bt709,
            self.short_side,
            self.shot_model.clone(),
        );
        if let Ok(kept) = self.last_features.lock()
            && let Some((_, features)) = kept.iter().find(|(k, _)| *k == key)
        {
            return Ok(Some(features.clone()));
        }
        let features = self.with_model(|m| m.features(luma, frame_index))?;
        if let (Ok(mut kept), Some(f)) = (self.last_features.lock(), &features) {
            if kept.len() >= FEATURES_KEPT {
                kept.remove(0);
            }
            kept.push((key, f.clone()));
        }
        Ok(features)
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<ChromaField> {
        let key = LumaKey::of(
            luma,
            frame_index,
            matrix,
            self.short_side,
            self.shot_model.clone(),
        );
        if let Ok(last) = self.last.lock()
            && let Some((k, chroma)) = last.as_ref()
            && *k == key
        {
            return Ok(chroma.clone());
        }
        let chroma = self.with_model(|m| m.colorize(luma, frame_index, matrix))?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((key, chroma.clone()));
        }
        Ok(chroma)
    }
}

/// Handle to the colour worker. Dropping it stops the worker after the
/// frame it is colouring.
pub struct ColourWorker {
    commands: Sender<ColourCommand>,
    likely: Sender<LikelyCommand>,
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
    _likely_thread: JoinHandle<()>,
}

/// Name of the thread that works out the model's likely colours for the
/// hint picker, apart from the colour worker so a stroke never waits for it.
pub const LIKELY_THREAD_NAME: &str = "tincture-likely";

/// A command for the likely-colours thread.
enum LikelyCommand {
    /// The film now open.
    Film(PathBuf),
    /// The model's distribution over this frame; only the newest is done.
    Frame(u64),
    /// The film was closed.
    Close,
    /// End the thread.
    Stop,
}

impl ColourWorker {
    /// Starts the worker; its messages go to `to_ui`, and `ctx` is woken after each.
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(ctx: egui::Context, to_ui: Sender<ColourMessage>) -> std::io::Result<Self> {
        let (commands, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (likely, likely_rx) = crossbeam_channel::unbounded();
        let (likely_ctx, likely_to_ui) = (ctx.clone(), to_ui.clone());
        let thread = std::thread::Builder::new()
            .name(COLOUR_THREAD_NAME.to_owned())
            .spawn(move || {
                crate::worker::run_guarded(
                    "colour",
                    || run(&rx, &ctx, &to_ui, &flag),
                    |text| {
                        let _ = to_ui.send(ColourMessage::Error(text));
                        ctx.request_repaint();
                    },
                );
            })?;
        let likely_thread = std::thread::Builder::new()
            .name(LIKELY_THREAD_NAME.to_owned())
            .spawn(move || run_likely(&likely_rx, &likely_ctx, &likely_to_ui))?;
        Ok(Self {
            commands,
            likely,
            stop,
            _thread: thread,
            _likely_thread: likely_thread,
        })
    }

    /// Queues a command; never blocks. `false` when the worker has ended.
    pub fn send(&self, command: ColourCommand) -> bool {
        match command {
            ColourCommand::Project { ref film, .. } => {
                let _ = self.likely.send(LikelyCommand::Film(film.clone()));
                self.commands.send(command).is_ok()
            }
            ColourCommand::Close => {
                let _ = self.likely.send(LikelyCommand::Close);
                self.commands.send(command).is_ok()
            }
            other => self.commands.send(other).is_ok(),
        }
    }

    /// Asks the likely-colours thread for the model's distribution over
    /// frame `index` (for the hint picker); only the newest pending one is
    /// worked out. `false` when the thread has ended.
    pub fn ask_likely(&self, index: u64) -> bool {
        self.likely.send(LikelyCommand::Frame(index)).is_ok()
    }
}

impl Drop for ColourWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.commands.send(ColourCommand::Stop);
        let _ = self.likely.send(LikelyCommand::Stop);
    }
}

/// The likely-colours thread: its own decoder and its own model worker
/// (started the first time it is asked), at background priority.
fn run_likely(rx: &Receiver<LikelyCommand>, ctx: &egui::Context, to_ui: &Sender<ColourMessage>) {
    tincture_engine::lower_thread_priority();
    let mut film: Option<PathBuf> = None;
    let mut reader: Option<VideoReader> = None;
    let mut model: Option<Result<WorkerColorizer, String>> = None;
    while let Ok(first) = rx.recv() {
        let mut frame = None;
        for command in std::iter::once(first).chain(rx.try_iter()) {
            match command {
                LikelyCommand::Stop => return,
                LikelyCommand::Film(f) => {
                    if film.as_ref() != Some(&f) {
                        film = Some(f);
                        reader = None;
                    }
                }
                LikelyCommand::Close => {
                    film = None;
                    reader = None;
                    frame = None;
                }
                LikelyCommand::Frame(index) => frame = Some(index),
            }
        }
        let (Some(index), Some(path)) = (frame, film.as_ref()) else {
            continue;
        };
        let result = (|| -> Result<Option<ClassMap>, String> {
            if reader.is_none() {
                reader = Some(VideoReader::open(path).map_err(|e| e.to_string())?);
            }
            let Some(r) = reader.as_mut() else {
                return Err("the film is not open".into());
            };
            let luma = r.seek(index).map_err(|e| e.to_string())?.frame.luma_unit();
            let worker = model.get_or_insert_with(|| {
                WorkerColorizer::start(&ModelChoice::default()).map_err(|e| e.to_string())
            });
            match worker {
                // No model: no suggestions from it, and nothing to report.
                Err(_) => Ok(None),
                Ok(w) => w.classes(&luma, index).map_err(|e| e.to_string()),
            }
        })();
        let message = match result {
            Ok(map) => ColourMessage::Likely {
                index,
                map: map.map(Arc::new),
            },
            Err(e) => ColourMessage::Error(format!(
                "The model's likely colours for frame {index} of {} failed: {e}",
                path.display()
            )),
        };
        if to_ui.send(message).is_err() {
            return;
        }
        ctx.request_repaint();
    }
}

/// Why a frame was not coloured.
#[derive(Debug)]
enum Failure {
    /// A newer request came in while it was being coloured: that one is
    /// coloured instead, and nothing is shown for this one.
    Stopped,
    /// It could not be coloured; the message names the frame and the film.
    Failed(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// What the worker holds between requests.
#[derive(Default)]
struct State {
    /// The worker's own inbox, so long work stops when a newer request is
    /// waiting in it (latest wins within a frame's colouring too).
    inbox: Option<Receiver<ColourCommand>>,
    model: Option<SharedModel>,
    /// Why the model could not start, once it was tried.
    model_error: Option<String>,
    film: Option<PathBuf>,
    /// The project's file, against which its relative paths resolve.
    project_path: Option<PathBuf>,
    reader: Option<VideoReader>,
    colorizer: Option<FilmColorizer>,
    /// The project revision the colorizer is of.
    revision: u64,
    /// The size the colour is solved at, when smaller than the film's (see [`preview_size`]).
    preview_size: Option<(usize, usize)>,
    /// The last frame coloured, decoded, with its luma, and its luma at the
    /// preview's size with the guided filter prepared on it: a frame painted
    /// on is coloured again and again.
    last: Option<LastFrame>,
    /// Consecutive frames coloured, for their flicker.
    run: Option<PreviewRun>,
}

/// A decoded frame kept for colouring it again.
struct LastFrame {
    index: u64,
    frame: tincture_core::frame::Frame,
    luma: LumaImage,
    small: Option<SmallLuma>,
}

/// A frame's luma at the preview's size, and the guided filter prepared on it
/// that brings the chroma solved at that size back to the film's.
struct SmallLuma {
    luma: LumaImage,
    guide: GuidedFilter,
}

impl SmallLuma {
    fn of(luma: &LumaImage, (w, h): (usize, usize)) -> Self {
        let data = resize_area(&luma.data, luma.width, luma.height, w, h);
        let guide = GuidedFilter::new(&data, w, h, UPSAMPLE_RADIUS, UPSAMPLE_EPS);
        Self {
            luma: LumaImage {
                width: w,
                height: h,
                data,
            },
            guide,
        }
    }
}

impl State {
    fn model(&mut self) -> Option<SharedModel> {
        if self.model.is_none() && self.model_error.is_none() {
            match WorkerColorizer::start(&ModelChoice::default()) {
                Ok(m) => self.model = Some(SharedModel::of(m)),
                Err(e) => self.model_error = Some(e.to_string()),
            }
        }
        self.model.clone()
    }

    /// Builds the colorizer for a project snapshot (at the preview's size,
    /// see [`preview_size`]); returns the engine's description.
    fn set_project(
        &mut self,
        project: &Project,
        project_path: Option<PathBuf>,
        film: PathBuf,
    ) -> Result<String, String> {
        // The frame being painted is coloured again after every stroke: its
        // keyframe's solve starts from the colour it had before, with the
        // solver already built for its luma.
        let mut warm = self.last.as_ref().and_then(|l| {
            let old = self.colorizer.as_mut()?;
            let c = old.key_chroma(l.index)?.clone();
            Some((l.index, c, old.take_key_solver(l.index)))
        });
        self.colorizer = None;
        self.project_path.clone_from(&project_path);
        if self.film.as_ref() != Some(&film) {
            self.reader = None;
            self.last = None;
            self.film = Some(film.clone());
            warm = None;
        }
        let base = project_path.unwrap_or_else(|| film.with_extension("tincture.json"));
        let mut plan = plan_of(project, &base, film).map_err(|e| e.to_string())?;
        let (w, h) = (
            project.source.width as usize,
            project.source.height as usize,
        );
        self.preview_size = preview_size(w, h);
        if let Some((sw, sh)) = self.preview_size {
            plan.scale((w, h), (sw, sh));
        }
        let wants_model = plan.shots.iter().any(|s| s.model_prior);
        let model = if wants_model { self.model() } else { None };
        let engine = match (&model, &self.model_error, wants_model) {
            (Some(m), _, _) => {
                let provider = m.provider();
                format!("model prior on {provider}, {} keyframes", plan.keys.len())
            }
            (None, Some(e), true) => format!("no model ({e}); keyframes and references only"),
            _ => format!(
                "keyframes and references only, {} keyframes",
                plan.keys.len()
            ),
        };
        let engine = match self.preview_size {
            Some((sw, sh)) => format!("{engine}; preview colour solved at {sw}x{sh}"),
            None => engine,
        };
        let mut colorizer =
            FilmColorizer::preview(plan, model.map(|m| Box::new(m) as Box<dyn Colorizer>));
        if let Some(inbox) = self.inbox.clone() {
            colorizer.set_stop(Box::new(move || !inbox.is_empty()));
        }
        if let Some((frame, chroma, solver)) = warm {
            colorizer.warm_start(frame, chroma);
            if let Some(solver) = solver {
                colorizer.reuse_key_solver(frame, solver);
            }
        }
        self.colorizer = Some(colorizer);
        Ok(engine)
    }

    fn colour(
        &mut self,
        index: u64,
        generation: u64,
    ) -> Result<(RgbFrame, Option<Sample>), Failure> {
        let (out, rgb) = self.colour_frame(index)?;
        let flicker = self.measure(index, &out);
        Ok((
            RgbFrame {
                generation,
                ..RgbFrame::from_rgb(index, out.width(), out.height(), &rgb)
            },
            flicker,
        ))
    }

    /// `count` frames from `index` coloured under each of `variants` (other
    /// settings of the same project), in order, so the stabiliser and the
    /// propagation run as they would in an export; with each variant's mean
    /// flicker over them. The preview's own colorizer is kept for after.
    #[allow(clippy::type_complexity)]
    fn compare(
        &mut self,
        variants: &[Project],
        index: u64,
        count: u64,
    ) -> Result<(Vec<Vec<RgbFrame>>, Vec<Option<Sample>>), Failure> {
        let Some(film) = self.film.clone() else {
            return Err(Failure::Failed("no film is open".into()));
        };
        let project_path = self.project_path.clone();
        let own = (self.colorizer.take(), self.preview_size);
        let mut frames = Vec::with_capacity(variants.len());
        let mut flicker = Vec::with_capacity(variants.len());
        let mut outcome = Ok(());
        'variants: for (i, v) in variants.iter().enumerate() {
            if let Err(e) = self.set_project(v, project_path.clone(), film.clone()) {
                outcome = Err(Failure::Failed(format!("variant {}: {e}", i + 1)));
                break;
            }
            let metrics = LiveMetrics::default();
            let mut own_frames = Vec::new();
            for f in index..index + count.max(1) {
                match self.colour_frame(f) {
                    Ok((out, rgb)) => {
                        if count > 1 {
                            metrics.measure(&out);
                        }
                        own_frames.push(RgbFrame::from_rgb(f, out.width(), out.height(), &rgb));
                    }
                    Err(Failure::Failed(e)) => {
                        outcome = Err(Failure::Failed(format!("variant {}: {e}", i + 1)));
                        break 'variants;
                    }
                    Err(Failure::Stopped) => {
                        outcome = Err(Failure::Stopped);
                        break 'variants;
                    }
                }
            }
            frames.push(own_frames);
            flicker.push(mean_flicker(&metrics));
        }
        (self.colorizer, self.preview_size) = own;
        self.project_path = project_path;
        // The preview's next frame starts a run of its own.
        self.run = None;
        outcome.map(|()| (frames, flicker))
    }

    /// Decodes frame `index` of `film` into [`State::last`], unless it is there.
    fn decode(&mut self, film: &Path, index: u64) -> Result<(), String> {
        if self.reader.is_none() {
            self.reader = Some(VideoReader::open(film).map_err(|e| e.to_string())?);
        }
        let Some(reader) = self.reader.as_mut() else {
            return Err("the film is not open".into());
        };
        if self.last.as_ref().is_none_or(|l| l.index != index) {
            let frame = reader.seek(index).map_err(|e| e.to_string())?.frame;
            let luma = frame.luma_unit();
            self.last = Some(LastFrame {
                index,
                frame,
                luma,
                small: None,
            });
        }
        Ok(())
    }

    /// Frame `index` coloured by the current colorizer, at the film's size
    /// (4:4:4 at the film's bit depth), and as 8-bit RGB for the screen.
    fn colour_frame(
        &mut self,
        index: u64,
    ) -> Result<(tincture_core::frame::Frame, Vec<u8>), Failure> {
        let Some(film) = self.film.clone() else {
            return Err(Failure::Failed("no film is open".into()));
        };
        self.decode(&film, index)?;
        let Some(colorizer) = self.colorizer.as_mut() else {
            return Err(Failure::Failed("no project to colour with".into()));
        };
        let Some(LastFrame {
            frame, luma, small, ..
        }) = self.last.as_mut()
        else {
            return Err(Failure::Failed("the frame was not decoded".into()));
        };
        let failed = |e: tincture_core::Error| match e {
            tincture_core::Error::Cancelled => Failure::Stopped,
            e => Failure::Failed(format!("frame {index} of {}: {e}", film.display())),
        };
        let (frame, luma) = (&*frame, &*luma);
        let chroma = match self.preview_size {
            Some(size) if size != (luma.width, luma.height) => {
                let small = match small {
                    Some(s) if (s.luma.width, s.luma.height) == size => s,
                    _ => small.insert(SmallLuma::of(luma, size)),
                };
                let c = colorizer
                    .colorize(&small.luma, index, frame.matrix)
                    .map_err(failed)?;
                upsample_chroma(&c, luma, &mut small.guide)
            }
            _ => colorizer
                .colorize(luma, index, frame.matrix)
                .map_err(failed)?,
        };
        Ok(compose_rgb8_444(frame, &chroma))
    }

    /// Measures frame `index` as coloured, when it follows the frame
    /// coloured before it with the same project (stepping or playing on):
    /// its flicker against that frame, as an export measures it.
    fn measure(&mut self, index: u64, out: &tincture_core::frame::Frame) -> Option<Sample> {
        let follows = self
            .run
            .as_ref()
            .is_some_and(|r| r.next == index && r.revision == self.revision);
        if !follows {
            self.run = Some(PreviewRun {
                metrics: LiveMetrics::default(),
                next: index,
                revision: self.revision,
            });
        }
        let run = self.run.as_mut()?;
        run.metrics.measure(out);
        run.next = index + 1;
        let last = run.metrics.frames_from(run.metrics.len().saturating_sub(1));
        let f = last.first()?;
        Some(Sample {
            warp: f.warp_error?,
            cdc: f.cdc,
        })
    }
}

/// The mean flicker of the frames `metrics` measured (`None` before two),
/// as the engine's analysis averages it.
fn mean_flicker(metrics: &LiveMetrics) -> Option<Sample> {
    MeanFlicker::of(&metrics.frames()).map(|m| Sample {
        warp: m.warp_error,
        cdc: m.cdc,
    })
}

/// Frames coloured one after another, measured as they come.
struct PreviewRun {
    metrics: LiveMetrics,
    /// The frame that would continue the run.
    next: u64,
    /// The project revision the run was coloured with.
    revision: u64,
}

/// Films wider than this are coloured for the preview at half size: the
/// solver's cost goes with the pixel count, and chroma at half size, brought
/// back up along the film's own luma edges, is what 4:2:0 carries anyway.
/// The film's luma is always shown at full size; exports solve at full size.
pub const PREVIEW_FULL_SIZE_MAX_WIDTH: usize = 960;

/// The size the preview's colour is solved at for a film of `w` x `h`:
/// `None` for full size.
pub fn preview_size(w: usize, h: usize) -> Option<(usize, usize)> {
    (w > PREVIEW_FULL_SIZE_MAX_WIDTH).then(|| (w.div_ceil(2), h.div_ceil(2)))
}

/// Radius, in preview pixels, of the guided filter that brings the
/// preview's chroma to the film's size: windows of 5x5 preview pixels, wide
/// enough to fit a line across a luma edge, small enough to keep detail.
const UPSAMPLE_RADIUS: usize = 2;
/// Its regularisation, in unit luma squared: luma steps well above
/// `sqrt(1e-3)` ≈ 0.03 keep their colour edge.
const UPSAMPLE_EPS: f32 = 1e-3;

/// Chroma solved at a smaller size brought to `luma`'s by fast guided
/// upsampling: the guided filter's coefficients on the small luma (`guide`),
/// brought up bilinearly and applied to the full-size luma, so colour edges
/// sit on the film's own luma edges.
fn upsample_chroma(small: &ChromaField, luma: &LumaImage, guide: &mut GuidedFilter) -> ChromaField {
    let (w, h) = (luma.width, luma.height);
    let mut up = |c: &[f32]| {
        let mut out = vec![0.0; w * h];
        guide.upsample_into(c, &luma.data, w, h, &mut out);
        out
    };
    ChromaField {
        width: w,
        height: h,
        cb: up(&small.cb),
        cr: up(&small.cr),
    }
}

fn run(
    rx: &Receiver<ColourCommand>,
    ctx: &egui::Context,
    to_ui: &Sender<ColourMessage>,
    stop: &AtomicBool,
) {
    // The preview is background work next to the window: on a busy machine
    // the window keeps the CPU and the preview catches up.
    tincture_engine::lower_thread_priority();
    let mut state = State {
        inbox: Some(rx.clone()),
        ..State::default()
    };
    let send = |m: ColourMessage| {
        let ok = to_ui.send(m).is_ok();
        ctx.request_repaint();
        ok
    };
    // A frame whose colouring a newer request stopped is coloured again
    // after that request, unless the request replaces it.
    // So is a comparison: the window waits for its pictures.
    let mut stopped_show = None;
    let mut stopped_compare = None;
    while let Ok(first) = rx.recv() {
        let mut project = None;
        let mut show = stopped_show.take();
        let mut compare = stopped_compare.take();
        let mut close = false;
        for command in std::iter::once(first).chain(rx.try_iter()) {
            match command {
                ColourCommand::Stop => return,
                ColourCommand::Close => {
                    close = true;
                    project = None;
                    show = None;
                    compare = None;
                }
                ColourCommand::Project {
                    project: p,
                    project_path,
                    film,
                    revision,
                } => {
                    close = false;
                    project = Some((p, project_path, film, revision));
                }
                ColourCommand::Show { index, generation } => show = Some((index, generation)),
                ColourCommand::Compare {
                    variants,
                    index,
                    count,
                    generation,
                } => compare = Some((variants, index, count, generation)),
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if close {
            state.colorizer = None;
            state.reader = None;
            state.last = None;
            state.run = None;
            state.film = None;
        }
        if let Some((p, project_path, film, revision)) = project {
            state.revision = revision;
            let message = match state.set_project(&p, project_path, film) {
                Ok(engine) => ColourMessage::Engine(engine),
                Err(e) => ColourMessage::Error(format!("Cannot colour this project: {e}")),
            };
            if !send(message) {
                return;
            }
        }
        if let Some((index, generation)) = show
            && state.colorizer.is_some()
        {
            let message = match state.colour(index, generation) {
                Ok((frame, flicker)) => {
                    tracing::trace!(index, generation, "frame coloured");
                    ColourMessage::Frame {
                        frame,
                        revision: state.revision,
                        flicker,
                    }
                }
                Err(Failure::Failed(e)) => {
                    ColourMessage::Error(format!("Colouring frame {index} failed: {e}"))
                }
                // A newer request waits: it is taken first.
                Err(Failure::Stopped) => {
                    stopped_show = Some((index, generation));
                    stopped_compare = compare;
                    continue;
                }
            };
            if !send(message) {
                return;
            }
        }
        if let Some((variants, index, count, generation)) = compare
            && state.colorizer.is_some()
        {
            let message = match state.compare(&variants, index, count) {
                Ok((frames, flicker)) => ColourMessage::Compared {
                    index,
                    generation,
                    frames,
                    flicker,
                },
                Err(Failure::Failed(e)) => {
                    ColourMessage::Error(format!("Comparing settings on frame {index} failed: {e}"))
                }
                Err(Failure::Stopped) => {
                    stopped_compare = Some((variants, index, count, generation));
                    continue;
                }
            };
            if !send(message) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_films_are_previewed_at_half_size() {
        assert_eq!(preview_size(720, 576), None);
        assert_eq!(preview_size(1280, 720), Some((640, 360)));
        assert_eq!(preview_size(1921, 1081), Some((961, 541)));
    }

    #[test]
    fn upsampled_chroma_keeps_flat_colour_and_follows_luma_edges() {
        // Full size 16x8: dark left half, light right half.
        let (w, h) = (16, 8);
        let luma = LumaImage {
            width: w,
            height: h,
            data: (0..w * h)
                .map(|i| if i % w < 8 { 0.2 } else { 0.8 })
                .collect(),
        };
        // Half size: blue-ish chroma left, red-ish right.
        let (sw, sh) = (8, 4);
        let small = ChromaField {
            width: sw,
            height: sh,
            cb: (0..sw * sh)
                .map(|i| if i % sw < 4 { 0.2 } else { -0.1 })
                .collect(),
            cr: (0..sw * sh)
                .map(|i| if i % sw < 4 { -0.1 } else { 0.3 })
                .collect(),
        };
        let up = upsample_chroma(&small, &luma, &mut SmallLuma::of(&luma, (sw, sh)).guide);
        assert_eq!((up.width, up.height), (w, h));
        let at = |x: usize, y: usize| (up.cb[y * w + x], up.cr[y * w + x]);
        for y in 0..h {
            let (l, r) = (at(1, y), at(14, y));
            assert!(
                (l.0 - 0.2).abs() < 0.01 && (l.1 + 0.1).abs() < 0.01,
                "{l:?}"
            );
            assert!(
                (r.0 + 0.1).abs() < 0.01 && (r.1 - 0.3).abs() < 0.01,
                "{r:?}"
            );
            // Next to the luma edge, each side keeps most of its own colour.
            assert!(
                at(6, y).0 > 0.12 && at(9, y).0 < -0.02,
                "{:?} {:?}",
                at(6, y),
                at(9, y)
            );
        }
    }
}
