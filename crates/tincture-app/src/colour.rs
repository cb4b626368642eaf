//! The colour worker ([`COLOUR_THREAD_NAME`]): colours the frame on screen
//! for the "after" side of the viewer, with the same engine an export uses
//! ([`FilmColorizer`] over a snapshot of the project), so the preview shows
//! what the export will contain.
//!
//! Requests are latest-wins: while the user scrubs, only the newest frame is
//! coloured, and the viewer keeps the last result on screen, marked stale.
//! The neural model (through the inference worker of `tincture-infer`) is
//! started once and shared by every project snapshot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::compose::{OutputLayout, compose_frame, frame_to_rgb8};
use tincture_core::frame::{ChromaField, LumaImage, Subsampling};
use tincture_core::project::Project;
use tincture_engine::film::FilmColorizer;
use tincture_engine::neural::{ModelChoice, WorkerColorizer};
use tincture_engine::project::plan_of;
use tincture_media::VideoReader;

use crate::worker::RgbFrame;

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
    },
    /// Which engine colours the preview, in words ("model `x` on CPU").
    Engine(String),
    /// Colouring a frame failed; the text names the frame and says why.
    Error(String),
}

/// The neural model, shared by the colorizers of successive project snapshots.
#[derive(Clone)]
pub struct SharedModel(Arc<Mutex<WorkerColorizer>>);

impl SharedModel {
    /// Starts the model `choice`.
    ///
    /// # Errors
    /// When the model or ONNX Runtime cannot be loaded; the message says why.
    pub fn start(choice: &ModelChoice) -> tincture_engine::Result<Self> {
        Ok(Self(Arc::new(Mutex::new(WorkerColorizer::start(choice)?))))
    }
}

impl Colorizer for SharedModel {
    fn name(&self) -> &str {
        "shared-model"
    }

    fn settings(&self) -> serde_json::Value {
        self.0
            .lock()
            .map_or(serde_json::Value::Null, |m| m.settings())
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<ChromaField> {
        let mut model = self.0.lock().map_err(|_| tincture_core::Error::Engine {
            message: "the model worker failed earlier".into(),
        })?;
        model.colorize(luma, frame_index, matrix)
    }
}

/// Handle to the colour worker. Dropping it stops the worker after the
/// frame it is colouring.
pub struct ColourWorker {
    commands: Sender<ColourCommand>,
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
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
        let thread = std::thread::Builder::new()
            .name(COLOUR_THREAD_NAME.to_owned())
            .spawn(move || run(&rx, &ctx, &to_ui, &flag))?;
        Ok(Self {
            commands,
            stop,
            _thread: thread,
        })
    }

    /// Queues a command; never blocks. `false` when the worker has ended.
    pub fn send(&self, command: ColourCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

impl Drop for ColourWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.commands.send(ColourCommand::Stop);
    }
}

/// What the worker holds between requests.
#[derive(Default)]
struct State {
    model: Option<SharedModel>,
    /// Why the model could not start, once it was tried.
    model_error: Option<String>,
    film: Option<PathBuf>,
    reader: Option<VideoReader>,
    colorizer: Option<FilmColorizer>,
    /// The project revision the colorizer is of.
    revision: u64,
}

impl State {
    fn model(&mut self) -> Option<SharedModel> {
        if self.model.is_none() && self.model_error.is_none() {
            match WorkerColorizer::start(&ModelChoice::default()) {
                Ok(m) => self.model = Some(SharedModel(Arc::new(Mutex::new(m)))),
                Err(e) => self.model_error = Some(e.to_string()),
            }
        }
        self.model.clone()
    }

    /// Builds the colorizer for a project snapshot; returns the engine's description.
    fn set_project(
        &mut self,
        project: &Project,
        project_path: Option<PathBuf>,
        film: PathBuf,
    ) -> Result<String, String> {
        self.colorizer = None;
        if self.film.as_ref() != Some(&film) {
            self.reader = None;
            self.film = Some(film.clone());
        }
        let base = project_path.unwrap_or_else(|| film.with_extension("tincture.json"));
        let plan = plan_of(project, &base, film).map_err(|e| e.to_string())?;
        let wants_model = plan.shots.iter().any(|s| s.model_prior);
        let model = if wants_model { self.model() } else { None };
        let engine = match (&model, &self.model_error, wants_model) {
            (Some(m), _, _) => {
                let provider =
                    m.0.lock()
                        .map_or_else(|_| "?".into(), |m| m.provider().to_owned());
                format!("model prior on {provider}, {} keyframes", plan.keys.len())
            }
            (None, Some(e), true) => format!("no model ({e}); keyframes and references only"),
            _ => format!(
                "keyframes and references only, {} keyframes",
                plan.keys.len()
            ),
        };
        self.colorizer = Some(FilmColorizer::preview(
            plan,
            model.map(|m| Box::new(m) as Box<dyn Colorizer>),
        ));
        Ok(engine)
    }

    fn colour(&mut self, index: u64, generation: u64) -> Result<RgbFrame, String> {
        let Some(film) = self.film.clone() else {
            return Err("no film is open".into());
        };
        let Some(colorizer) = self.colorizer.as_mut() else {
            return Err("no project to colour with".into());
        };
        if self.reader.is_none() {
            self.reader = Some(VideoReader::open(&film).map_err(|e| e.to_string())?);
        }
        let Some(reader) = self.reader.as_mut() else {
            return Err("the film is not open".into());
        };
        let decoded = reader.seek(index).map_err(|e| e.to_string())?;
        let frame = &decoded.frame;
        let luma = frame.luma_unit();
        let chroma = colorizer
            .colorize(&luma, index, frame.matrix)
            .map_err(|e| format!("frame {index} of {}: {e}", film.display()))?;
        let layout = OutputLayout {
            bit_depth: frame.bit_depth,
            subsampling: Subsampling::S444,
        };
        let out = compose_frame(frame, Some(&chroma), layout);
        Ok(RgbFrame {
            generation,
            ..RgbFrame::from_rgb(index, out.width(), out.height(), &frame_to_rgb8(&out))
        })
    }
}

fn run(
    rx: &Receiver<ColourCommand>,
    ctx: &egui::Context,
    to_ui: &Sender<ColourMessage>,
    stop: &AtomicBool,
) {
    let mut state = State::default();
    let send = |m: ColourMessage| {
        let ok = to_ui.send(m).is_ok();
        ctx.request_repaint();
        ok
    };
    while let Ok(first) = rx.recv() {
        let mut project = None;
        let mut show = None;
        let mut close = false;
        for command in std::iter::once(first).chain(rx.try_iter()) {
            match command {
                ColourCommand::Stop => return,
                ColourCommand::Close => {
                    close = true;
                    project = None;
                    show = None;
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
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if close {
            state.colorizer = None;
            state.reader = None;
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
                Ok(frame) => {
                    tracing::trace!(index, generation, "frame coloured");
                    ColourMessage::Frame {
                        frame,
                        revision: state.revision,
                    }
                }
                Err(e) => ColourMessage::Error(format!("Colouring frame {index} failed: {e}")),
            };
            if !send(message) {
                return;
            }
        }
    }
}
