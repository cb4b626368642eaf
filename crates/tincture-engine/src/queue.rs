//! The batch queue: films rendered one after another, overnight, by the
//! window's queue or by `tincture-cli batch QUEUE.json` on a server.
//!
//! A queue is a JSON file ([`Queue`]), saved atomically like a project (a
//! temporary file, fsync, rename), and saved again after every change of an
//! item's state, so it survives a restart or a crash. Each item is a film, a
//! project to colour it by, an output and its format. An item that was
//! running when the machine stopped is pending again when the queue is
//! next loaded, and its render resumes from its partial file (see
//! [`crate::render`]): no frame is lost or written twice.
//!
//! [`run_next`] runs the first pending item through the same export job as
//! the window's File > Export ([`crate::export::ExportJob`]), reporting its
//! progress, and records how it ended: done, failed (with the message, and
//! the queue goes on to the next item) or stopped (pending, with its
//! partial file kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tincture_core::project::Project;

use crate::export::{ExportEvent, ExportJob, ExportProgress, ExportSpec, ProjectExport};
use crate::live_metrics::LiveMetrics;
use crate::neural::ModelChoice;
use crate::render::{Outcome, OutputFormat, RenderRequest};
use crate::{Error, Result};

/// Serialises the read-modify-write of queue files within this process (the
/// window edits its queue while its runner records an item's end).
static EDITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Loads the queue at `path`, applies `change` and saves it, while no other
/// edit of this process runs; returns what `change` returned.
///
/// # Errors
/// As [`Queue::load`] and [`Queue::save`].
pub fn edit<R>(path: &Path, change: impl FnOnce(&mut Queue) -> R) -> Result<R> {
    let _guard = EDITS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut queue = Queue::load(path)?;
    let out = change(&mut queue);
    queue.save(path)?;
    Ok(out)
}

/// The queue file's format version.
pub const QUEUE_VERSION: u32 = 1;

/// Films with a name ending in one of these are added by
/// [`Queue::add_folder`].
pub const FILM_EXTENSIONS: &[&str] = &[
    "mkv", "mov", "mp4", "m4v", "avi", "mxf", "ts", "m2ts", "mpg", "mpeg", "webm", "dv",
];

/// How far an item has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting its turn (or stopped midway, with its partial file kept).
    #[default]
    Pending,
    /// Rendering now. A queue loaded with an item in this state was
    /// interrupted; the item is pending again.
    Running,
    /// Held back by the user until resumed.
    Paused,
    /// Rendered: the output has its final name.
    Done,
    /// Failed; [`Item::message`] says why. Retry makes it pending again.
    Failed,
}

/// One film to render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Unique within its queue.
    pub id: u64,
    /// The source film (opened read-only).
    pub film: PathBuf,
    /// The project it is coloured by.
    pub project: PathBuf,
    /// The output file, or folder for image sequences.
    pub output: PathBuf,
    /// `ffv1`, `prores`, `h264`, `png` or `tiff`.
    pub format: String,
    /// Inclusive frame range; `None` for the whole film.
    #[serde(default)]
    pub frames: Option<[u64; 2]>,
    /// The short side the model runs at; `None` for the model's own.
    #[serde(default)]
    pub render_short_side: Option<u32>,
    /// How far it has got.
    #[serde(default)]
    pub status: Status,
    /// Why it failed, or how it ended.
    #[serde(default)]
    pub message: Option<String>,
    /// Frames written by the last run.
    #[serde(default)]
    pub frames_done: u64,
    /// Frames the last run had to write.
    #[serde(default)]
    pub frames_total: u64,
}

impl Item {
    /// The export format, or an error naming the item.
    fn output_format(&self) -> Result<OutputFormat> {
        OutputFormat::from_name(&self.format, H264_CRF).ok_or_else(|| Error::Output {
            path: self.output.clone(),
            reason: format!(
                "queue item {}: unknown format {:?}; use ffv1, prores, h264, png or tiff",
                self.id, self.format
            ),
        })
    }
}

/// The H.264 quality of queued access copies, as the window's export.
const H264_CRF: u8 = 18;

/// A batch queue (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// [`QUEUE_VERSION`].
    pub version: u32,
    /// In the order they run.
    pub items: Vec<Item>,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            version: QUEUE_VERSION,
            items: Vec::new(),
        }
    }
}

impl Queue {
    /// Reads the queue at `path`; a missing file is an empty queue. Items
    /// left running by a run that stopped are pending again.
    ///
    /// # Errors
    /// A file that is not a queue of this version, named with what to do.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(Error::Output {
                    path: path.to_owned(),
                    reason: format!("cannot read the queue: {e}"),
                });
            }
        };
        let mut queue: Self = serde_json::from_str(&text).map_err(|e| Error::Output {
            path: path.to_owned(),
            reason: format!("not a Tincture queue ({e}); fix or remove the file"),
        })?;
        if queue.version != QUEUE_VERSION {
            return Err(Error::Output {
                path: path.to_owned(),
                reason: format!(
                    "a queue of version {} (this Tincture reads version {QUEUE_VERSION})",
                    queue.version
                ),
            });
        }
        let mut ids = std::collections::HashSet::new();
        for item in &mut queue.items {
            if !ids.insert(item.id) {
                return Err(Error::Output {
                    path: path.to_owned(),
                    reason: format!("two queue items have the id {}; renumber one", item.id),
                });
            }
            if item.status == Status::Running {
                item.status = Status::Pending;
            }
        }
        Ok(queue)
    }

    /// Writes the queue to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Output {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        crate::output::write_atomically(path, |partial| {
            std::fs::write(partial, &text).map_err(|e| e.to_string())
        })
        .map_err(|reason| Error::Output {
            path: path.to_owned(),
            reason: format!("cannot save the queue: {reason}"),
        })
    }

    fn next_id(&self) -> u64 {
        self.items.iter().map(|i| i.id + 1).max().unwrap_or(1)
    }

    /// Adds `film` coloured by `project`, rendered to `output` as `format`
    /// (whole, at the model's own size); returns its id.
    ///
    /// # Errors
    /// An unknown format, or an output that is the film or the project (or
    /// a folder holding one).
    pub fn add(&mut self, film: &Path, project: &Path, output: &Path, format: &str) -> Result<u64> {
        let item = Item {
            id: self.next_id(),
            film: film.to_owned(),
            project: project.to_owned(),
            output: output.to_owned(),
            format: format.to_owned(),
            frames: None,
            render_short_side: None,
            status: Status::Pending,
            message: None,
            frames_done: 0,
            frames_total: 0,
        };
        self.push(item)
    }

    /// Adds `item` as it is, under a new id; returns the id.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn push(&mut self, mut item: Item) -> Result<u64> {
        item.output_format()?;
        if item.frames_total == 0 {
            item.frames_total = match item.frames {
                Some([a, b]) => b.saturating_sub(a) + 1,
                None => Project::load(&item.project).map_or(0, |p| p.source.frame_count),
            };
        }
        crate::output::check_not_input(&item.output, &[&item.film, &item.project])?;
        item.id = self.next_id();
        let id = item.id;
        self.items.push(item);
        Ok(id)
    }

    /// Adds every film in `folder` (by name, in name order), each with a new
    /// project of the default settings saved in `projects` (never beside
    /// the films) and an output in `outputs` named after it; returns the
    /// ids. A film already queued for the same output is not added again.
    ///
    /// # Errors
    /// A folder that cannot be read, a film that cannot be opened (named),
    /// or a project that cannot be saved.
    pub fn add_folder(
        &mut self,
        folder: &Path,
        projects: &Path,
        outputs: &Path,
        format: &str,
    ) -> Result<Vec<u64>> {
        let read = std::fs::read_dir(folder).map_err(|e| Error::Output {
            path: folder.to_owned(),
            reason: format!("cannot read the folder: {e}"),
        })?;
        let mut films: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| FILM_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        films.sort();
        let mut ids = Vec::new();
        for film in films {
            if let Some(id) = self.add_film(&film, None, projects, outputs, format)? {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Adds `film`, rendered in `format` to `outputs/STEM-colour.EXT` (a
    /// folder `STEM-colour` for image sequences), with `project`, or else
    /// with `projects/STEM.tincture.json`, made with the default settings
    /// when it does not exist. `None` when an item already writes that
    /// output.
    ///
    /// # Errors
    /// An unknown format, a film or project that cannot be found, or a
    /// project that cannot be made or saved.
    pub fn add_film(
        &mut self,
        film: &Path,
        project: Option<&Path>,
        projects: &Path,
        outputs: &Path,
        format: &str,
    ) -> Result<Option<u64>> {
        let extension = match OutputFormat::from_name(format, H264_CRF) {
            Some(OutputFormat::Video(codec)) => Some(codec.container().extension()),
            Some(OutputFormat::Images(_)) => None,
            None => {
                return Err(Error::Output {
                    path: outputs.to_owned(),
                    reason: format!(
                        "unknown format {format:?}; use ffv1, prores, h264, png or tiff"
                    ),
                });
            }
        };
        let film = std::fs::canonicalize(film).map_err(|e| Error::Output {
            path: film.to_owned(),
            reason: format!("cannot find the film: {e}"),
        })?;
        let stem = film
            .file_stem()
            .map_or_else(|| "film".into(), |s| s.to_string_lossy().into_owned());
        let output = match extension {
            Some(ext) => outputs.join(format!("{stem}-colour.{ext}")),
            None => outputs.join(format!("{stem}-colour")),
        };
        if self.items.iter().any(|i| i.output == output) {
            return Ok(None);
        }
        let project_path = match project {
            Some(p) => std::fs::canonicalize(p).map_err(|e| Error::Output {
                path: p.to_owned(),
                reason: format!("cannot find the project: {e}"),
            })?,
            None => {
                let project_path = projects.join(format!("{stem}.tincture.json"));
                if !project_path.exists() {
                    std::fs::create_dir_all(projects).map_err(|e| Error::Output {
                        path: projects.to_owned(),
                        reason: format!("cannot create the projects folder: {e}"),
                    })?;
                    let project = crate::project::new_project(&film)?;
                    crate::output::check_not_input(&project_path, &[&film])?;
                    project.save(&project_path).map_err(|e| Error::Output {
                        path: project_path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                project_path
            }
        };
        self.add(&film, &project_path, &output, format).map(Some)
    }

    /// The item with id `id`.
    pub fn item(&self, id: u64) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    fn item_mut(&mut self, id: u64) -> Option<&mut Item> {
        self.items.iter_mut().find(|i| i.id == id)
    }

    /// Holds a pending item back until [`resume`](Self::resume)d.
    pub fn pause(&mut self, id: u64) -> bool {
        self.set_status(id, &[Status::Pending], Status::Paused)
    }

    /// Makes a paused item pending again.
    pub fn resume(&mut self, id: u64) -> bool {
        self.set_status(id, &[Status::Paused], Status::Pending)
    }

    /// Makes a failed (or done) item pending again, to render it again.
    pub fn retry(&mut self, id: u64) -> bool {
        self.set_status(id, &[Status::Failed, Status::Done], Status::Pending)
    }

    fn set_status(&mut self, id: u64, from: &[Status], to: Status) -> bool {
        match self.item_mut(id) {
            Some(item) if from.contains(&item.status) => {
                item.status = to;
                item.message = None;
                true
            }
            _ => false,
        }
    }

    /// Removes an item that is not running.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.items.len();
        self.items
            .retain(|i| i.id != id || i.status == Status::Running);
        self.items.len() != before
    }

    /// Moves an item `by` places (negative: earlier), within the queue.
    pub fn move_by(&mut self, id: u64, by: isize) -> bool {
        let Some(from) = self.items.iter().position(|i| i.id == id) else {
            return false;
        };
        let to = from
            .saturating_add_signed(by)
            .min(self.items.len().saturating_sub(1));
        if to == from {
            return false;
        }
        let item = self.items.remove(from);
        self.items.insert(to, item);
        true
    }

    /// The first pending item.
    pub fn next_pending(&self) -> Option<&Item> {
        self.items.iter().find(|i| i.status == Status::Pending)
    }

    /// Items in each state: (pending or running, done, failed, paused).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |s: &[Status]| self.items.iter().filter(|i| s.contains(&i.status)).count();
        (
            n(&[Status::Pending, Status::Running]),
            n(&[Status::Done]),
            n(&[Status::Failed]),
            n(&[Status::Paused]),
        )
    }
}

/// What running one item reports.
#[derive(Clone, Debug)]
pub enum QueueEvent {
    /// The item started (or resumed from its partial file).
    Started {
        /// Its id.
        id: u64,
        /// Fresh, resumed or started over.
        start: crate::render::Start,
    },
    /// After every frame.
    Progress {
        /// Its id.
        id: u64,
        /// Frames, time and ETA of this run.
        progress: ExportProgress,
    },
}

/// How [`run_next`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ran {
    /// No item was pending.
    Nothing,
    /// The item was rendered.
    Done(u64),
    /// The item failed; the queue goes on.
    Failed(u64, String),
    /// Stopped on request: the item is pending with its partial file kept.
    Stopped(u64),
}

/// Runs the first pending item of the queue at `path` (read afresh, so
/// edits made meanwhile count), saving the queue as the item starts and as
/// it ends. `cancel` stops it after the current frame (or step of a
/// backward pass); `on_event` hears its progress.
///
/// # Errors
/// The queue cannot be read or saved. An item's own failure is
/// [`Ran::Failed`], recorded in the queue.
pub fn run_next(
    path: &Path,
    model: &ModelChoice,
    cancel: &Arc<AtomicBool>,
    on_event: &mut dyn FnMut(QueueEvent),
) -> Result<Ran> {
    let item = edit(path, |queue| {
        let item = queue.next_pending().cloned()?;
        if let Some(i) = queue.item_mut(item.id) {
            i.status = Status::Running;
            i.message = None;
        }
        Some(item)
    })?;
    let Some(item) = item else {
        return Ok(Ran::Nothing);
    };
    let id = item.id;
    let result = run_item(&item, model, cancel, on_event);
    // Read again: the window may have reordered or added items meanwhile.
    edit(path, |queue| record(queue, id, result))
}

/// Records how item `id` ended.
fn record(queue: &mut Queue, id: u64, result: std::result::Result<(Outcome, u64), String>) -> Ran {
    let item = queue.item_mut(id);
    match result {
        Ok((Outcome::Completed { frames, .. }, total)) => {
            if let Some(i) = item {
                i.status = Status::Done;
                i.frames_done = frames;
                i.frames_total = total.max(frames);
                i.message = None;
            }
            Ran::Done(id)
        }
        Ok((
            Outcome::Cancelled {
                frames,
                resume_from,
                ..
            },
            total,
        )) => {
            if let Some(i) = item {
                i.status = Status::Pending;
                i.frames_done = frames;
                i.frames_total = total;
                i.message = Some(format!("stopped; resumes from frame {resume_from}"));
            }
            Ran::Stopped(id)
        }
        Err(message) => {
            if let Some(i) = item {
                i.status = Status::Failed;
                i.message = Some(message.clone());
            }
            Ran::Failed(id, message)
        }
    }
}

/// Renders one item to its end: its outcome and the frames it had to write.
fn run_item(
    item: &Item,
    model: &ModelChoice,
    cancel: &Arc<AtomicBool>,
    on_event: &mut dyn FnMut(QueueEvent),
) -> std::result::Result<(Outcome, u64), String> {
    let format = item.output_format().map_err(|e| e.to_string())?;
    let project = Project::load(&item.project).map_err(|e| e.to_string())?;
    let request = RenderRequest {
        input: item.film.clone(),
        output: item.output.clone(),
        format,
        frames: item.frames.map(|[a, b]| (a, b)),
        colorizer: None,
        overwrite: false,
        threads: 0,
        metrics: Some(LiveMetrics::default()),
        also_reads: Vec::new(),
    };
    let mut model = model.clone();
    if item.render_short_side.is_some() {
        model.render.short_side = item.render_short_side;
    }
    let spec = ExportSpec {
        request,
        project: Some(ProjectExport {
            project,
            project_path: item.project.clone(),
            accept_changed: false,
            model,
        }),
        wake: None,
    };
    let job = ExportJob::spawn(spec).map_err(|e| e.to_string())?;
    let mut total = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            job.cancel();
        }
        match job.events().recv_timeout(Duration::from_millis(100)) {
            Ok(ExportEvent::Started(start)) => on_event(QueueEvent::Started { id: item.id, start }),
            Ok(ExportEvent::Progress(progress)) => {
                total = progress.total;
                on_event(QueueEvent::Progress {
                    id: item.id,
                    progress,
                });
            }
            Ok(ExportEvent::Finished(outcome)) => return Ok((outcome, total)),
            Ok(ExportEvent::Failed(message)) => return Err(message),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "the render of {} ended without a word (a bug); retry it",
                    item.film.display()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_queue() -> Queue {
        let mut q = Queue::default();
        for n in ["a", "b", "c"] {
            q.add(
                Path::new(&format!("/films/{n}.mkv")),
                Path::new(&format!("/projects/{n}.json")),
                Path::new(&format!("/out/{n}.mkv")),
                "ffv1",
            )
            .expect("added");
        }
        q
    }

    #[test]
    fn items_are_paused_resumed_reordered_removed_and_retried() {
        let mut q = item_queue();
        let ids: Vec<u64> = q.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(q.pause(1));
        assert_eq!(q.next_pending().map(|i| i.id), Some(2));
        assert!(!q.pause(1), "already paused");
        assert!(q.resume(1));
        assert!(q.move_by(3, -2));
        assert_eq!(q.items.iter().map(|i| i.id).collect::<Vec<_>>(), [3, 1, 2]);
        assert!(!q.move_by(3, -1), "already first");
        assert!(q.move_by(3, 10));
        assert_eq!(q.items.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 2, 3]);
        q.items[1].status = Status::Failed;
        q.items[1].message = Some("the film is damaged at frame 7".into());
        assert!(q.retry(2));
        assert_eq!(q.items[1].status, Status::Pending);
        assert_eq!(q.items[1].message, None);
        q.items[0].status = Status::Running;
        assert!(!q.remove(1), "a running item stays");
        assert!(q.remove(2));
        assert_eq!(q.items.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(
            q.add(
                Path::new("/f/d.mkv"),
                Path::new("/p/d.json"),
                Path::new("/o/d.mkv"),
                "h264"
            )
            .expect("added"),
            4
        );
    }

    #[test]
    fn a_queue_survives_a_save_and_a_crash_mid_item() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("queue.json");
        assert_eq!(
            Queue::load(&path).expect("missing is empty"),
            Queue::default()
        );
        let mut q = item_queue();
        q.items[0].status = Status::Running;
        q.save(&path).expect("saved");
        let back = Queue::load(&path).expect("loaded");
        assert_eq!(
            back.items[0].status,
            Status::Pending,
            "interrupted: pending again"
        );
        assert_eq!(back.items[1..], q.items[1..]);
        std::fs::write(&path, "{\"version\": 1, \"items\": [{\"id\": 1}]}").expect("write");
        let err = Queue::load(&path).expect_err("refused").to_string();
        assert!(
            err.contains("queue.json") && err.contains("not a Tincture queue"),
            "{err}"
        );
    }

    #[test]
    fn bad_items_are_refused_when_added() {
        let mut q = Queue::default();
        let err = q
            .add(
                Path::new("/f/a.mkv"),
                Path::new("/p/a.json"),
                Path::new("/o/a.avi"),
                "avi",
            )
            .expect_err("unknown format")
            .to_string();
        assert!(err.contains("unknown format"), "{err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let film = dir.path().join("reel.mkv");
        std::fs::write(&film, b"film").expect("write");
        let err = q
            .add(&film, Path::new("/p/a.json"), &film, "ffv1")
            .expect_err("the output is the film");
        assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
    }
}
