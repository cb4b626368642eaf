//! "Suggest keyframes": the scan thread ([`SUGGEST_THREAD_NAME`]) colours a
//! shot as an export would (at the reduced size of
//! [`tincture_engine::analysis::weak::scan_size`]) and reports, frame by
//! frame, the share of the picture coloured from weak sources. The window
//! marks the weak stretches on the timeline and lists the frames where one
//! more keyframe would help most; one click on a suggestion makes it a
//! keyframe and moves there to paint it.
//!
//! The thread has its own model worker, started on the first scan, and runs
//! below the window's priority. A new scan, a closed film or the Stop button
//! ends the one running.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use tincture_core::colorize::Colorizer;
use tincture_core::project::Project;
use tincture_engine::analysis::weak::{self, Suggestion};
use tincture_engine::neural::ModelChoice;
use tincture_engine::project::plan_of;

use crate::colour::SharedModel;

/// Name of the scan thread.
pub const SUGGEST_THREAD_NAME: &str = "tincture-suggest";

/// Frames whose weak share is at least this are marked on the timeline.
pub const WEAK_MARK: f32 = 0.25;

/// What to scan.
#[derive(Clone, Debug)]
pub struct ScanRequest {
    /// The project, as it is now.
    pub project: Box<Project>,
    /// Its file, against which its relative paths resolve; `None` while untitled.
    pub project_path: Option<PathBuf>,
    /// The film.
    pub film: PathBuf,
    /// First and last frame (inclusive): the shot under the playhead.
    pub range: (u64, u64),
    /// The window's scan counter.
    pub generation: u64,
}

/// A message from the scan thread.
#[derive(Clone, Debug, PartialEq)]
pub enum SuggestMessage {
    /// Frame `frame` is coloured; `weak` of it came from weak sources.
    Frame {
        /// The scan it belongs to.
        generation: u64,
        /// The frame.
        frame: u64,
        /// Its weak share, 0 to 1.
        weak: f32,
    },
    /// The scan ended: `complete` unless it was stopped.
    Finished {
        /// The scan.
        generation: u64,
        /// Whether every frame was scanned.
        complete: bool,
    },
    /// The scan failed; the text names the film and the frame.
    Failed {
        /// The scan.
        generation: u64,
        /// Why.
        text: String,
    },
}

enum Command {
    Scan(ScanRequest),
    Stop,
}

/// Handle to the scan thread; dropping it stops the thread.
pub struct SuggestWorker {
    commands: Sender<Command>,
    cancel: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl SuggestWorker {
    /// Starts the thread; its messages go to `to_ui`, and `ctx` is woken after each.
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(ctx: egui::Context, to_ui: Sender<SuggestMessage>) -> std::io::Result<Self> {
        let (commands, rx) = crossbeam_channel::unbounded();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name(SUGGEST_THREAD_NAME.to_owned())
            .spawn(move || run(&rx, &ctx, &to_ui, &flag))?;
        Ok(Self {
            commands,
            cancel,
            _thread: thread,
        })
    }

    /// Starts a scan, ending the one running. `false` when the thread has ended.
    pub fn scan(&self, request: ScanRequest) -> bool {
        self.cancel.store(true, Ordering::Relaxed);
        self.commands.send(Command::Scan(request)).is_ok()
    }

    /// Ends the scan running, if any.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl Drop for SuggestWorker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.commands.send(Command::Stop);
    }
}

fn run(
    rx: &Receiver<Command>,
    ctx: &egui::Context,
    to_ui: &Sender<SuggestMessage>,
    cancel: &AtomicBool,
) {
    tincture_engine::lower_thread_priority();
    let mut model: Option<Result<SharedModel, String>> = None;
    while let Ok(first) = rx.recv() {
        let mut request = None;
        for command in std::iter::once(first).chain(rx.try_iter()) {
            match command {
                Command::Stop => return,
                Command::Scan(r) => request = Some(r),
            }
        }
        let Some(request) = request else { continue };
        cancel.store(false, Ordering::Relaxed);
        let generation = request.generation;
        let send = |m: SuggestMessage| {
            let ok = to_ui.send(m).is_ok();
            ctx.request_repaint();
            ok
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan(&request, &mut model, cancel, &send)
        }))
        .unwrap_or_else(|_| Err("the scan stopped on an internal error".into()));
        let message = match outcome {
            Ok(complete) => SuggestMessage::Finished {
                generation,
                complete,
            },
            Err(text) => SuggestMessage::Failed { generation, text },
        };
        if !send(message) {
            return;
        }
    }
}

fn scan(
    request: &ScanRequest,
    model: &mut Option<Result<SharedModel, String>>,
    cancel: &AtomicBool,
    send: &impl Fn(SuggestMessage) -> bool,
) -> Result<bool, String> {
    let base = request
        .project_path
        .clone()
        .unwrap_or_else(|| request.film.with_extension("tincture.json"));
    let plan = plan_of(&request.project, &base, request.film.clone()).map_err(|e| e.to_string())?;
    let prior: Option<Box<dyn Colorizer>> = if plan.shots.iter().any(|s| s.model_prior) {
        // Without the model the scan still finds where the flow loses the
        // keyframes' colour; the model's absence is said by the preview.
        let shared = model.get_or_insert_with(|| {
            SharedModel::start(&ModelChoice::default()).map_err(|e| e.to_string())
        });
        shared
            .as_ref()
            .ok()
            .map(|m| Box::new(m.clone()) as Box<dyn Colorizer>)
    } else {
        None
    };
    let generation = request.generation;
    weak::scan(plan, prior, request.range, cancel, |frame, share| {
        if !send(SuggestMessage::Frame {
            generation,
            frame,
            weak: share,
        }) {
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .map_err(|e| e.to_string())
}

/// The window's record of the last scan.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Its counter; messages of older scans are dropped.
    pub generation: u64,
    /// The frames scanned, inclusive.
    pub range: (u64, u64),
    /// Per frame from `range.0`, its weak share, as far as scanned.
    pub weak: Vec<f32>,
    /// Whether it is still running.
    pub running: bool,
    /// Whether it covered its whole range.
    pub complete: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The frames suggested, best first (once it ended).
    pub suggestions: Vec<Suggestion>,
}

impl Scan {
    /// Takes a message of the thread; `keyframes` are the project's, which
    /// are never suggested.
    pub fn take(&mut self, message: SuggestMessage, keyframes: &[u64]) {
        match message {
            SuggestMessage::Frame {
                generation,
                frame,
                weak,
            } if generation == self.generation => {
                let i = frame.saturating_sub(self.range.0) as usize;
                if i == self.weak.len() {
                    self.weak.push(weak);
                }
            }
            SuggestMessage::Finished {
                generation,
                complete,
            } if generation == self.generation => {
                self.running = false;
                self.complete = complete;
                self.suggestions = weak::suggestions(&self.weak, self.range.0, keyframes);
            }
            SuggestMessage::Failed { generation, text } if generation == self.generation => {
                self.running = false;
                self.error = Some(text);
            }
            _ => {}
        }
    }

    /// Stretches of frames marked weak ([`WEAK_MARK`]), inclusive.
    pub fn weak_stretches(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, &w) in self.weak.iter().enumerate() {
            if w < WEAK_MARK {
                continue;
            }
            let f = self.range.0 + i as u64;
            match out.last_mut() {
                Some((_, end)) if *end + 1 == f => *end = f,
                _ => out.push((f, f)),
            }
        }
        out
    }

    /// Mean weak share over the frames scanned.
    pub fn mean_weak(&self) -> f32 {
        self.weak.iter().sum::<f32>() / self.weak.len().max(1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_keeps_its_own_frames_and_suggests_when_it_ends() {
        let mut s = Scan {
            generation: 2,
            range: (10, 49),
            running: true,
            ..Scan::default()
        };
        for f in 10..50 {
            let weak = if (30..40).contains(&f) { 0.9 } else { 0.0 };
            s.take(
                SuggestMessage::Frame {
                    generation: 2,
                    frame: f,
                    weak,
                },
                &[],
            );
        }
        // An older scan's frame is dropped.
        s.take(
            SuggestMessage::Frame {
                generation: 1,
                frame: 50,
                weak: 1.0,
            },
            &[],
        );
        assert_eq!(s.weak.len(), 40);
        assert_eq!(s.weak_stretches(), vec![(30, 39)]);
        assert!(s.suggestions.is_empty());
        s.take(
            SuggestMessage::Finished {
                generation: 2,
                complete: true,
            },
            &[10],
        );
        assert!(!s.running);
        assert_eq!(s.suggestions.first().map(|x| x.frame), Some(30));
    }
}
