//! The Queue window: the batch queue of [`tincture_engine::queue`] in the
//! workstation. Films are added from the Export window ("Add to queue") or
//! a folder at a time; they render one after another on a background
//! thread, each with its progress and ETA, and the queue's total. Items can
//! be paused, resumed, moved, removed and retried. The queue is the file
//! `queue.json` in the app's state folder, saved after every change, so it
//! survives a restart or a crash (an interrupted item resumes from its
//! partial file), and `tincture-cli batch` runs the same file on a server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use eframe::egui;
use tincture_engine::export::ExportProgress;
use tincture_engine::neural::ModelChoice;
use tincture_engine::queue::{Item, Queue, QueueEvent, Ran, Status, edit, run_next};

/// What the runner thread reports.
enum RunnerMessage {
    Event(QueueEvent),
    Ran(Ran),
    Error(String),
    Ended,
}

/// The thread running the queue.
struct Runner {
    cancel: Arc<AtomicBool>,
    messages: Receiver<RunnerMessage>,
}

/// The Queue window's state (see the module docs).
pub struct QueuePanel {
    /// Whether the window is open.
    pub open: bool,
    path: PathBuf,
    queue: Queue,
    runner: Option<Runner>,
    /// The item running and its progress.
    running: Option<(u64, Option<ExportProgress>)>,
    /// Problems to show in the window.
    error: Option<String>,
    /// When the queue file was last read.
    loaded: Option<Instant>,
}

impl std::fmt::Debug for QueuePanel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePanel")
            .field("path", &self.path)
            .field("items", &self.queue.items.len())
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl QueuePanel {
    /// The queue kept in the state folder `state`.
    pub fn new(state: &Path) -> Self {
        let path = state.join("queue.json");
        let (queue, error) = match Queue::load(&path) {
            Ok(q) => (q, None),
            Err(e) => (Queue::default(), Some(e.to_string())),
        };
        Self {
            open: false,
            path,
            queue,
            runner: None,
            running: None,
            error,
            loaded: Some(Instant::now()),
        }
    }

    /// The queue file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The queue as last read.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Whether the queue is running.
    pub fn is_running(&self) -> bool {
        self.runner.is_some()
    }

    /// The problem on show in the window, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn reload(&mut self) {
        match Queue::load(&self.path) {
            Ok(q) => self.queue = q,
            Err(e) => self.error = Some(e.to_string()),
        }
        self.loaded = Some(Instant::now());
    }

    /// Applies `change` to the queue file and shows the result.
    fn change(&mut self, change: impl FnOnce(&mut Queue) -> bool) {
        match edit(&self.path, change) {
            Ok(_) => self.error = None,
            Err(e) => self.error = Some(e.to_string()),
        }
        self.reload();
        if let Some((id, _)) = self.running
            && let Some(item) = self.queue.items.iter_mut().find(|i| i.id == id)
        {
            // The file says pending after a restart; this run holds it.
            item.status = Status::Running;
        }
    }

    /// Adds `film`'s project (saved at `project`) with the Export window's
    /// settings; opens the window.
    ///
    /// # Errors
    /// An output that is an input, or a queue that cannot be saved.
    pub fn add(
        &mut self,
        film: &Path,
        project: &Path,
        output: &Path,
        format: &str,
        frames: Option<(u64, u64)>,
        render_short_side: Option<u32>,
    ) -> Result<(), String> {
        let item = Item {
            id: 0,
            film: film.to_owned(),
            project: project.to_owned(),
            output: output.to_owned(),
            format: format.to_owned(),
            frames: frames.map(|(a, b)| [a, b]),
            render_short_side,
            status: Status::Pending,
            message: None,
            frames_done: 0,
            frames_total: 0,
        };
        let added = edit(&self.path, |q| q.push(item)).map_err(|e| e.to_string())?;
        added.map_err(|e| e.to_string())?;
        self.reload();
        self.open = true;
        Ok(())
    }

    /// Adds every film of `folder`, each with a new project (kept in the
    /// state folder), rendering to `outputs` as `format`.
    ///
    /// # Errors
    /// A folder or film that cannot be read, or a queue that cannot be saved.
    pub fn add_folder(
        &mut self,
        folder: &Path,
        outputs: &Path,
        format: &str,
    ) -> Result<usize, String> {
        let projects = self.path.parent().map_or_else(
            || PathBuf::from("queue-projects"),
            |p| p.join("queue-projects"),
        );
        let added = edit(&self.path, |q| {
            q.add_folder(folder, &projects, outputs, format)
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        self.reload();
        self.open = true;
        Ok(added.len())
    }

    /// Starts running the pending items, one after another, with `model`;
    /// `wake` is called after every event (to repaint the window).
    pub fn start(&mut self, model: ModelChoice, wake: Arc<dyn Fn() + Send + Sync>) {
        if self.runner.is_some() {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, messages) = unbounded();
        let path = self.path.clone();
        let flag = cancel.clone();
        let spawned = std::thread::Builder::new()
            .name("tincture-queue".into())
            .spawn(move || {
                let send = |m: RunnerMessage| {
                    let _ = tx.send(m);
                    wake();
                };
                loop {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let ran = run_next(&path, &model, &flag, &mut |e| {
                        send(RunnerMessage::Event(e));
                    });
                    match ran {
                        Ok(Ran::Nothing) => break,
                        Ok(ran @ Ran::Stopped(_)) => {
                            send(RunnerMessage::Ran(ran));
                            break;
                        }
                        Ok(ran) => send(RunnerMessage::Ran(ran)),
                        Err(e) => {
                            send(RunnerMessage::Error(e.to_string()));
                            break;
                        }
                    }
                }
                send(RunnerMessage::Ended);
            });
        match spawned {
            Ok(_) => {
                self.runner = Some(Runner { cancel, messages });
                self.error = None;
            }
            Err(e) => self.error = Some(format!("Could not start the queue: {e}")),
        }
    }

    /// Stops the queue after the current frame; the item keeps its partial
    /// file and resumes from it next time.
    pub fn stop(&mut self) {
        if let Some(r) = &self.runner {
            r.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes what the runner reported.
    pub fn poll(&mut self) {
        let mut reload = false;
        let mut ended = false;
        if let Some(r) = &self.runner {
            while let Ok(m) = r.messages.try_recv() {
                match m {
                    RunnerMessage::Event(QueueEvent::Started { id, .. }) => {
                        self.running = Some((id, None));
                        reload = true;
                    }
                    RunnerMessage::Event(QueueEvent::Progress { id, progress }) => {
                        self.running = Some((id, Some(progress)));
                    }
                    RunnerMessage::Ran(ran) => {
                        if let Ran::Failed(id, message) = &ran {
                            tracing::error!("queue item {id} failed: {message}");
                        }
                        self.running = None;
                        reload = true;
                    }
                    RunnerMessage::Error(e) => {
                        tracing::error!("the queue stopped: {e}");
                        self.error = Some(e);
                    }
                    RunnerMessage::Ended => ended = true,
                }
            }
        }
        if ended {
            self.runner = None;
            self.running = None;
            reload = true;
        }
        if reload
            || self
                .loaded
                .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
                && self.runner.is_none()
        {
            self.reload();
            if let Some((id, _)) = self.running
                && let Some(item) = self.queue.items.iter_mut().find(|i| i.id == id)
            {
                item.status = Status::Running;
            }
        }
    }

    /// Frames left in the queue, and the time they would take at the
    /// running item's rate.
    fn total(&self) -> (u64, Option<Duration>) {
        let mut left = 0u64;
        for item in &self.queue.items {
            match item.status {
                Status::Pending | Status::Running => {
                    let done = match self.running {
                        Some((id, Some(p))) if id == item.id => {
                            item.frames_total.saturating_sub(p.total) + p.done
                        }
                        _ => 0,
                    };
                    left += item.frames_total.saturating_sub(done);
                }
                _ => {}
            }
        }
        let eta = match self.running {
            Some((_, Some(p))) if p.done > 0 => {
                let per_frame = p.elapsed.as_secs_f64() / p.done as f64;
                Some(Duration::from_secs_f64(per_frame * left as f64))
            }
            _ => None,
        };
        (left, eta)
    }

    /// The Queue window.
    pub fn window_ui(&mut self, ctx: &egui::Context, model: &ModelChoice) {
        self.poll();
        if !self.open {
            return;
        }
        let mut open = self.open;
        let mut action: Option<Action> = None;
        egui::Window::new("Queue")
            .open(&mut open)
            .default_width(640.0)
            .show(ctx, |ui| {
                action = self.contents_ui(ui);
            });
        self.open = open;
        match action {
            None => {}
            Some(Action::Start) => {
                let wake = ctx.clone();
                self.start(model.clone(), Arc::new(move || wake.request_repaint()));
            }
            Some(Action::Stop) => self.stop(),
            Some(Action::Pause(id)) => self.change(|q| q.pause(id)),
            Some(Action::Resume(id)) => self.change(|q| q.resume(id)),
            Some(Action::Retry(id)) => self.change(|q| q.retry(id)),
            Some(Action::Remove(id)) => self.change(|q| q.remove(id)),
            Some(Action::Move(id, by)) => self.change(|q| q.move_by(id, by)),
        }
    }

    fn contents_ui(&self, ui: &mut egui::Ui) -> Option<Action> {
        let mut action = None;
        let (pending, done, failed, paused) = self.queue.counts();
        let (left, eta) = self.total();
        ui.horizontal(|ui| {
            if self.runner.is_some() {
                if ui.button("Stop queue").clicked() {
                    action = Some(Action::Stop);
                }
            } else if ui
                .add_enabled(pending > 0, egui::Button::new("Start queue"))
                .clicked()
            {
                action = Some(Action::Start);
            }
            let eta = eta.map_or_else(String::new, |d| format!(", about {} left", duration_text(d)));
            ui.label(format!(
                "{} items: {pending} to render ({left} frames{eta}), {done} done, {failed} failed, {paused} paused",
                self.queue.items.len()
            ));
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.separator();
        if self.queue.items.is_empty() {
            ui.label(
                "Nothing queued. Add the open project from File > Export… (Add to queue), \
                 or a folder of films from File > Add folder to queue…",
            );
        }
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                let n = self.queue.items.len();
                for (row, item) in self.queue.items.iter().enumerate() {
                    ui.horizontal(|ui| {
                        let name = item.film.file_name().map_or_else(
                            || item.film.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        );
                        let out = item.output.file_name().map_or_else(
                            || item.output.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        );
                        let range = item
                            .frames
                            .map_or_else(String::new, |[a, b]| format!(", frames {a}–{b}"));
                        ui.label(format!(
                            "{}. {name} -> {out} ({}{range})",
                            row + 1,
                            item.format
                        ))
                        .on_hover_text(format!(
                            "{}\n-> {} ({})\nproject {}",
                            item.film.display(),
                            item.output.display(),
                            item.format,
                            item.project.display()
                        ));
                        let state = match (item.status, self.running) {
                            (Status::Running, Some((id, Some(p)))) if id == item.id => {
                                let eta = p.eta.map_or_else(String::new, |d| {
                                    format!(", {} left", duration_text(d))
                                });
                                format!("rendering {}/{} frames{eta}", p.done, p.total)
                            }
                            (Status::Running, _) => "starting…".to_owned(),
                            (Status::Pending, _) => match &item.message {
                                Some(m) => format!("waiting ({m})"),
                                None => "waiting".to_owned(),
                            },
                            (Status::Paused, _) => "paused".to_owned(),
                            (Status::Done, _) => format!("done, {} frames", item.frames_done),
                            (Status::Failed, _) => "failed".to_owned(),
                        };
                        let label = ui.label(state);
                        if let (Status::Failed, Some(m)) = (item.status, &item.message) {
                            label.on_hover_text(m);
                            ui.colored_label(ui.visuals().error_fg_color, m);
                        }
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            let id = item.id;
                            let running = item.status == Status::Running;
                            if ui
                                .add_enabled(!running, egui::Button::new("Remove"))
                                .clicked()
                            {
                                action = Some(Action::Remove(id));
                            }
                            match item.status {
                                Status::Pending if ui.button("Pause").clicked() => {
                                    action = Some(Action::Pause(id));
                                }
                                Status::Paused if ui.button("Resume").clicked() => {
                                    action = Some(Action::Resume(id));
                                }
                                Status::Failed | Status::Done if ui.button("Retry").clicked() => {
                                    action = Some(Action::Retry(id));
                                }
                                _ => {}
                            }
                            if ui
                                .add_enabled(row + 1 < n, egui::Button::new("Down"))
                                .clicked()
                            {
                                action = Some(Action::Move(id, 1));
                            }
                            if ui.add_enabled(row > 0, egui::Button::new("Up")).clicked() {
                                action = Some(Action::Move(id, -1));
                            }
                        });
                    });
                }
            });
        ui.separator();
        ui.label(
            egui::RichText::new(format!(
                "Saved as {}; `tincture-cli batch {}` runs it headless.",
                self.path.display(),
                self.path.display()
            ))
            .small(),
        );
        action
    }
}

/// What the user asked of the queue.
enum Action {
    Start,
    Stop,
    Pause(u64),
    Resume(u64),
    Retry(u64),
    Remove(u64),
    Move(u64, isize),
}

/// "1 h 05 min", "4 min 10 s" or "12 s".
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_would_say_them() {
        assert_eq!(duration_text(Duration::from_secs(12)), "12 s");
        assert_eq!(duration_text(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(duration_text(Duration::from_secs(3900)), "1 h 05 min");
    }
}
