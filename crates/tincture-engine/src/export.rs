//! Background exports for the GUI: [`ExportJob::spawn`] runs
//! [`render_with`] on one named thread (`tincture-export`) from a snapshot
//! of the request, reports [`ExportEvent`]s over a channel, and stops
//! cleanly on [`ExportJob::cancel`]. Nothing here blocks the caller.
//!
//! An export of the same settings as a stopped one resumes from its
//! partial file (see [`crate::render`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use tincture_core::colorize::Colorizer;
use tincture_core::project::Project;

use crate::neural::{ModelChoice, WorkerColorizer};
use crate::project::{film_colorizer, project_inputs};
use crate::render::{Outcome, RenderEvent, RenderRequest, Start, render_with};
use crate::{Error, Result};

/// Progress of an export, after every frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportProgress {
    /// Frames rendered by this run (a resumed export counts only the rest).
    pub done: u64,
    /// Frames this run renders.
    pub total: u64,
    /// Time since the export started.
    pub elapsed: Duration,
    /// Estimated time left, from the rate so far; `None` before the first frame.
    pub eta: Option<Duration>,
}

/// What an export reports. [`Finished`](Self::Finished) or
/// [`Failed`](Self::Failed) comes last, exactly once.
#[derive(Clone, Debug)]
pub enum ExportEvent {
    /// Before the first frame: fresh, resumed, or started over (and why).
    Started(Start),
    /// After every frame.
    Progress(ExportProgress),
    /// Completed, or cancelled with a valid partial file.
    Finished(Outcome),
    /// Failed; the message names the file and frame and says what to do
    /// (for a full disk, which partial file was kept).
    Failed(String),
}

/// A project to colour the export by: the film colorizer is built on the
/// export thread (matching the film and starting the model take time).
#[derive(Clone, Debug)]
pub struct ProjectExport {
    /// A snapshot of the project.
    pub project: Project,
    /// Where the project is saved (relative paths resolve against it).
    pub project_path: PathBuf,
    /// Use the request's input even when its size or length changed.
    pub accept_changed: bool,
    /// The model, for shots that use its prior.
    pub model: ModelChoice,
}

/// What to export; build it from a [`RenderRequest`] for a ready colorizer.
pub struct ExportSpec {
    /// The render; its `colorizer` is replaced when `project` is set.
    pub request: RenderRequest,
    /// Colour by this project.
    pub project: Option<ProjectExport>,
    /// Called after every event is sent, e.g. to wake the UI
    /// (`ctx.request_repaint()`).
    pub wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl From<RenderRequest> for ExportSpec {
    fn from(request: RenderRequest) -> Self {
        Self {
            request,
            project: None,
            wake: None,
        }
    }
}

/// A running export (see the module docs). Dropping it cancels the export
/// without waiting; the thread still leaves a valid partial file.
pub struct ExportJob {
    cancel: Arc<AtomicBool>,
    events: Receiver<ExportEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ExportJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportJob")
            .field("cancelled", &self.cancel.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ExportJob {
    /// Starts exporting `spec` on the `tincture-export` thread and returns at once.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn spawn(spec: impl Into<ExportSpec>) -> Result<Self> {
        let spec = spec.into();
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, events) = unbounded();
        let flag = cancel.clone();
        let output = spec.request.output.clone();
        let thread = std::thread::Builder::new()
            .name("tincture-export".into())
            .spawn(move || run(spec, flag, &tx))
            .map_err(|e| Error::Output {
                path: output,
                reason: format!("cannot start the export thread: {e}"),
            })?;
        Ok(Self {
            cancel,
            events,
            thread: Some(thread),
        })
    }

    /// Asks the export to stop after the current frame; it then finishes
    /// the partial file and reports [`ExportEvent::Finished`] with
    /// [`Outcome::Cancelled`].
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The events, to poll with `try_recv` from the UI.
    pub fn events(&self) -> &Receiver<ExportEvent> {
        &self.events
    }

    /// Whether the export thread has ended (its last event is sent).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for ExportJob {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn run(spec: ExportSpec, cancel: Arc<AtomicBool>, tx: &Sender<ExportEvent>) {
    // The export yields the CPU to the window; its decode thread and
    // FFmpeg's encoder threads, started below, inherit the priority.
    crate::lower_thread_priority();
    let ExportSpec {
        mut request,
        project,
        wake,
    } = spec;
    let send = |event: ExportEvent| {
        // The receiver may be gone (the job dropped); the export still finishes cleanly.
        let _ = tx.send(event);
        if let Some(w) = &wake {
            w();
        }
    };
    let started = Instant::now();
    let result = (|| {
        if let Some(p) = project {
            // The project's own files are inputs too: the output may be none of them.
            request
                .also_reads
                .extend(project_inputs(&p.project, &p.project_path));
            let colorizer = film_colorizer(
                &p.project,
                &p.project_path,
                Some(&request.input),
                p.accept_changed,
                || -> Result<Box<dyn Colorizer>> {
                    Ok(Box::new(WorkerColorizer::start(&p.model)?))
                },
            )?;
            request.colorizer = Some(Box::new(colorizer));
        }
        // Cancel stops a long backward pass too, not only between frames.
        if let Some(c) = request.colorizer.as_mut() {
            let flag = cancel.clone();
            c.set_stop(Box::new(move || flag.load(Ordering::Relaxed)));
        }
        let mut first_frame: Option<Instant> = None;
        render_with(request, &cancel, |event| match event {
            RenderEvent::Started(start) => {
                first_frame = Some(Instant::now());
                send(ExportEvent::Started(start));
            }
            RenderEvent::Progress(p) => {
                let since = first_frame.map_or(started, |t| t).elapsed();
                let eta = (p.done > 0).then(|| {
                    since.mul_f64((p.total.saturating_sub(p.done)) as f64 / p.done as f64)
                });
                send(ExportEvent::Progress(ExportProgress {
                    done: p.done,
                    total: p.total,
                    elapsed: started.elapsed(),
                    eta,
                }));
            }
        })
    })();
    match result {
        Ok(outcome) => send(ExportEvent::Finished(outcome)),
        Err(e) => send(ExportEvent::Failed(e.to_string())),
    }
}
