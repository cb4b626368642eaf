//! The inference worker: one named thread that owns the model session and
//! takes commands over a crossbeam channel.
//!
//! * `preview` jobs carry a generation number; when several are waiting,
//!   only the newest runs and the older ones are dropped (reported as
//!   [`WorkerEvent::Dropped`]), so a fast-moving UI never builds a backlog.
//! * `batch` jobs (export) run in order, after any waiting preview.
//! * `cancel` drops every waiting batch job; the one running finishes.
//! * `stop` ends the thread.
//!
//! Results and errors come back as [`WorkerEvent`]s; a panic inside the
//! model is caught and reported as an error, never propagated.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tincture_core::color::Matrix;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::memory::CellFeatures;

use crate::colorizer::NeuralColorizer;
use crate::error::{Error, Result};
use crate::hints::Hint;
use crate::model::ClassMap;

/// One frame to colour.
#[derive(Clone, Debug)]
pub struct Job {
    /// The frame's luma.
    pub luma: Arc<LumaImage>,
    /// Hints in the frame's pixel coordinates.
    pub hints: Vec<Hint>,
    /// Frame index.
    pub frame: u64,
    /// The Y'CbCr matrix of the output.
    pub matrix: Matrix,
    /// The short side the model sees for this frame (a shot's render
    /// resolution); `None` for the colorizer's own setting.
    pub short_side: Option<u32>,
}

enum Command {
    Preview { generation: u64, job: Job },
    Batch { id: u64, job: Job },
    Classes { id: u64, job: Job },
    Features { id: u64, job: Job },
    Cancel,
    Stop,
}

/// What the worker reports.
#[derive(Debug)]
pub enum WorkerEvent {
    /// The model is loaded.
    Ready {
        /// Model name.
        model: String,
        /// Execution provider.
        provider: String,
    },
    /// A preview finished.
    Preview {
        /// Its generation.
        generation: u64,
        /// Frame index.
        frame: u64,
        /// The chroma, or why not.
        result: Result<ChromaField>,
    },
    /// A preview was superseded by a newer one before it ran.
    Dropped {
        /// Its generation.
        generation: u64,
    },
    /// A batch job finished.
    Batch {
        /// The id given at submission.
        id: u64,
        /// Frame index.
        frame: u64,
        /// The chroma, or why not.
        result: Result<ChromaField>,
    },
    /// The model's class distribution for a frame (see
    /// [`InferenceWorker::classes_blocking`]).
    Classes {
        /// The id given at submission.
        id: u64,
        /// Frame index.
        frame: u64,
        /// The distribution (`None` when the model has none), or why not.
        result: Result<Option<ClassMap>>,
    },
    /// The model's features for a frame (see
    /// [`InferenceWorker::features_blocking`]).
    Features {
        /// The id given at submission.
        id: u64,
        /// Frame index.
        frame: u64,
        /// The features (`None` when the model has none), or why not.
        result: Result<Option<CellFeatures>>,
    },
    /// Waiting batch jobs were dropped by a cancel.
    Cancelled {
        /// Ids of the dropped jobs.
        ids: Vec<u64>,
    },
    /// Something the user should know (for example, a fallback to the CPU).
    Notice(String),
}

/// Handle to the worker thread.
#[derive(Debug)]
pub struct InferenceWorker {
    tx: Sender<Command>,
    events: Receiver<WorkerEvent>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InferenceWorker {
    /// Starts the worker; `load` runs on the worker thread and builds the
    /// colorizer (so the session lives on that thread). Returns once the
    /// model is loaded, with the [`WorkerEvent::Ready`] event consumed.
    ///
    /// # Errors
    /// The load error, or a failure to start the thread.
    pub fn start<F>(load: F) -> Result<(Self, String, String)>
    where
        F: FnOnce() -> Result<NeuralColorizer> + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::unbounded::<Command>();
        let (etx, events) = crossbeam_channel::unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("tincture-infer".into())
            .spawn(move || {
                let colorizer = match std::panic::catch_unwind(AssertUnwindSafe(load)) {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(Err(Error::WorkerStopped {
                            reason: "loading the model panicked".into(),
                        }));
                        return;
                    }
                };
                let info = (
                    colorizer.model().name().to_owned(),
                    colorizer.model().provider().to_owned(),
                );
                if ready_tx.send(Ok(info)).is_err() {
                    return;
                }
                run(colorizer, &rx, &etx, &flag);
            })
            .map_err(|e| Error::WorkerStopped {
                reason: format!("cannot start the inference thread: {e}"),
            })?;
        let (model, provider) = ready_rx.recv().map_err(|_| Error::WorkerStopped {
            reason: "the thread ended while loading the model".into(),
        })??;
        Ok((
            Self {
                tx,
                events,
                cancel,
                thread: Some(thread),
            },
            model,
            provider,
        ))
    }

    fn send(&self, c: Command) -> Result<()> {
        self.tx.send(c).map_err(|_| Error::WorkerStopped {
            reason: String::new(),
        })
    }

    /// Queues a preview; older waiting previews are dropped.
    ///
    /// # Errors
    /// When the worker has stopped.
    pub fn preview(&self, generation: u64, job: Job) -> Result<()> {
        self.send(Command::Preview { generation, job })
    }

    /// Queues a batch job.
    ///
    /// # Errors
    /// When the worker has stopped.
    pub fn batch(&self, id: u64, job: Job) -> Result<()> {
        self.cancel.store(false, Ordering::SeqCst);
        self.send(Command::Batch { id, job })
    }

    /// Drops every waiting batch job.
    ///
    /// # Errors
    /// When the worker has stopped.
    pub fn cancel(&self) -> Result<()> {
        self.cancel.store(true, Ordering::SeqCst);
        self.send(Command::Cancel)
    }

    /// The events channel.
    pub fn events(&self) -> &Receiver<WorkerEvent> {
        &self.events
    }

    /// Colours one frame through the batch queue and waits for it. Events
    /// for other jobs that arrive meanwhile are discarded, so use this only
    /// when nothing else is queued (the export path).
    ///
    /// # Errors
    /// The job's error, or the worker's absence.
    pub fn colorize_blocking(&self, id: u64, job: Job) -> Result<ChromaField> {
        self.batch(id, job)?;
        self.wait(id, |event| match event {
            WorkerEvent::Batch {
                id: got, result, ..
            } if got == id => Ok(result),
            other => Err(other),
        })
    }

    /// The model's a\*b\* class distribution for one frame (its hints are
    /// not used), through the batch queue; waits for it. Like
    /// [`InferenceWorker::colorize_blocking`], use it only when nothing else
    /// is queued.
    ///
    /// # Errors
    /// The job's error, or the worker's absence.
    pub fn classes_blocking(&self, id: u64, job: Job) -> Result<Option<ClassMap>> {
        self.cancel.store(false, Ordering::SeqCst);
        self.send(Command::Classes { id, job })?;
        self.wait(id, |event| match event {
            WorkerEvent::Classes {
                id: got, result, ..
            } if got == id => Ok(result),
            other => Err(other),
        })
    }

    /// The model's features for one frame, to match it against a memory of
    /// coloured frames (see [`NeuralColorizer::cell_features`]; its hints
    /// are not used), through the batch queue; waits for it. Like
    /// [`InferenceWorker::colorize_blocking`], use it only when nothing else
    /// is queued.
    ///
    /// # Errors
    /// The job's error, or the worker's absence.
    pub fn features_blocking(&self, id: u64, job: Job) -> Result<Option<CellFeatures>> {
        self.cancel.store(false, Ordering::SeqCst);
        self.send(Command::Features { id, job })?;
        self.wait(id, |event| match event {
            WorkerEvent::Features {
                id: got, result, ..
            } if got == id => Ok(result),
            other => Err(other),
        })
    }

    /// Waits for job `id`'s answer, which `answer` takes out of its event
    /// (handing back any other); notices are logged, other events dropped.
    fn wait<T>(
        &self,
        id: u64,
        answer: impl Fn(WorkerEvent) -> std::result::Result<Result<T>, WorkerEvent>,
    ) -> Result<T> {
        loop {
            let event = self.events.recv().map_err(|_| Error::WorkerStopped {
                reason: String::new(),
            })?;
            match answer(event) {
                Ok(result) => return result,
                Err(WorkerEvent::Cancelled { ids }) if ids.contains(&id) => {
                    return Err(Error::WorkerStopped {
                        reason: "the job was cancelled".into(),
                    });
                }
                Err(WorkerEvent::Notice(n)) => tracing::warn!("{n}"),
                Err(_) => {}
            }
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a queued batch entry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Colour,
    Classes,
    Features,
}

/// Runs `work` on `c` at the job's render size; a panic in the model
/// becomes an error naming the frame, so the worker lives on.
fn guarded<T>(
    c: &mut NeuralColorizer,
    job: &Job,
    work: impl FnOnce(&mut NeuralColorizer, &Job) -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        tincture_core::colorize::Colorizer::set_render_short_side(c, job.short_side);
        work(c, job)
    }))
    .unwrap_or_else(|_| {
        Err(Error::Inference {
            model: c.model().name().to_owned(),
            frame: job.frame,
            reason: "the model panicked on this frame".into(),
        })
    })
}

fn classes(c: &mut NeuralColorizer, job: &Job) -> Result<Option<ClassMap>> {
    guarded(c, job, |c, job| c.classes(&job.luma, job.frame))
}

fn features(c: &mut NeuralColorizer, job: &Job) -> Result<Option<CellFeatures>> {
    guarded(c, job, |c, job| c.cell_features(&job.luma, job.frame))
}

fn colorize(c: &mut NeuralColorizer, job: &Job) -> Result<ChromaField> {
    guarded(c, job, |c, job| {
        c.colorize_with(&job.luma, &job.hints, job.frame, job.matrix)
    })
}

fn run(
    mut c: NeuralColorizer,
    rx: &Receiver<Command>,
    tx: &Sender<WorkerEvent>,
    cancel: &AtomicBool,
) {
    let mut batches: std::collections::VecDeque<(u64, Job, Kind)> =
        std::collections::VecDeque::new();
    let mut preview: Option<(u64, Job)> = None;
    loop {
        // Block only when there is nothing to do.
        if preview.is_none() && batches.is_empty() {
            match rx.recv() {
                Ok(cmd) => {
                    if !absorb(cmd, &mut preview, &mut batches, tx, cancel) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        for cmd in rx.try_iter() {
            if !absorb(cmd, &mut preview, &mut batches, tx, cancel) {
                return;
            }
        }
        let event = if let Some((generation, job)) = preview.take() {
            WorkerEvent::Preview {
                generation,
                frame: job.frame,
                result: colorize(&mut c, &job),
            }
        } else if let Some((id, job, kind)) = batches.pop_front() {
            match kind {
                Kind::Colour => WorkerEvent::Batch {
                    id,
                    frame: job.frame,
                    result: colorize(&mut c, &job),
                },
                Kind::Classes => WorkerEvent::Classes {
                    id,
                    frame: job.frame,
                    result: classes(&mut c, &job),
                },
                Kind::Features => WorkerEvent::Features {
                    id,
                    frame: job.frame,
                    result: features(&mut c, &job),
                },
            }
        } else {
            continue;
        };
        if let Some(n) = c.model_mut().take_notice()
            && tx.send(WorkerEvent::Notice(n)).is_err()
        {
            return;
        }
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// Takes one command into the queues; false on stop.
fn absorb(
    cmd: Command,
    preview: &mut Option<(u64, Job)>,
    batches: &mut std::collections::VecDeque<(u64, Job, Kind)>,
    tx: &Sender<WorkerEvent>,
    cancel: &AtomicBool,
) -> bool {
    match cmd {
        Command::Preview { generation, job } => {
            if let Some((old, _)) = preview.replace((generation, job)) {
                let _ = tx.send(WorkerEvent::Dropped { generation: old });
            }
        }
        Command::Batch { id, job } => batches.push_back((id, job, Kind::Colour)),
        Command::Classes { id, job } => batches.push_back((id, job, Kind::Classes)),
        Command::Features { id, job } => batches.push_back((id, job, Kind::Features)),
        Command::Cancel => {
            if cancel.swap(false, Ordering::SeqCst) || !batches.is_empty() {
                let ids = batches.drain(..).map(|(id, ..)| id).collect();
                let _ = tx.send(WorkerEvent::Cancelled { ids });
            }
        }
        Command::Stop => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenderSettings;
    use crate::model::{ExecutionChoice, Model};
    use crate::onnx_writer::{Attr, Graph};

    /// A colorizer on an eccv16-shaped graph that answers ab = (20, -30)
    /// everywhere (runs on the real ONNX Runtime).
    fn constant_colorizer(dir: &std::path::Path) -> NeuralColorizer {
        let mut g = Graph::new();
        g.input("L", [1, 1, 256, 256])
            .output("ab", [1, 2, 256, 256])
            .constant("zero", &[1], &[0.0])
            .constant("bias", &[1, 2, 1, 1], &[20.0, -30.0])
            .node("Mul", &["L", "zero"], &["l0"], &[])
            .node("Concat", &["l0", "l0"], &["z"], &[("axis", Attr::Int(1))])
            .node("Add", &["z", "bias"], &["ab"], &[]);
        let path = dir.join("constant.onnx");
        g.write(&path).expect("write graph");
        let model = Model::open_onnx(&path, ExecutionChoice::Cpu, 1).expect("open the graph");
        NeuralColorizer::new(model, RenderSettings::default())
    }

    fn job(frame: u64) -> Job {
        Job {
            luma: Arc::new(LumaImage {
                width: 64,
                height: 48,
                data: vec![0.5; 64 * 48],
            }),
            hints: Vec::new(),
            frame,
            matrix: Matrix::Bt709,
            short_side: None,
        }
    }

    /// Latest wins: of previews that wait together only the newest runs;
    /// the stale ones are dropped (and said to be), and batches still run,
    /// in order. The commands are all queued before the worker loop starts,
    /// so which previews wait together does not depend on timing: a worker
    /// that coloured every preview fails this.
    #[test]
    fn waiting_previews_are_dropped_but_the_newest() {
        const PREVIEWS: u64 = 8;
        let dir = tempfile::tempdir().expect("tmp");
        let colorizer = constant_colorizer(dir.path());
        let (tx, rx) = crossbeam_channel::unbounded();
        let (etx, events) = crossbeam_channel::unbounded();
        for generation in 1..=PREVIEWS {
            tx.send(Command::Preview {
                generation,
                job: job(generation),
            })
            .expect("queued");
        }
        tx.send(Command::Batch {
            id: 100,
            job: job(100),
        })
        .expect("queued");
        tx.send(Command::Batch {
            id: 101,
            job: job(101),
        })
        .expect("queued");
        // With every sender gone, the loop ends once the queue is done.
        drop(tx);
        run(colorizer, &rx, &etx, &AtomicBool::new(false));
        drop(etx);

        let mut ran = Vec::new();
        let mut dropped = Vec::new();
        let mut batches = Vec::new();
        for event in events.iter() {
            match event {
                WorkerEvent::Preview {
                    generation,
                    frame,
                    result,
                } => {
                    let chroma = result.expect("preview ok");
                    assert_eq!((chroma.width, chroma.height), (64, 48));
                    assert_eq!(frame, generation, "the preview's own frame");
                    ran.push(generation);
                }
                WorkerEvent::Dropped { generation } => dropped.push(generation),
                WorkerEvent::Batch { id, result, .. } => {
                    result.expect("batch ok");
                    batches.push(id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            (ran.len() as u64) < PREVIEWS,
            "every one of {PREVIEWS} previews was coloured: {ran:?}"
        );
        assert_eq!(ran, [PREVIEWS], "only the newest preview runs");
        assert_eq!(
            dropped,
            (1..PREVIEWS).collect::<Vec<_>>(),
            "the stale previews are reported dropped, oldest first"
        );
        assert_eq!(batches, [100, 101], "batches all run, in order");
    }
}
