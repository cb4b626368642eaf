//! The open project: the [`Document`] with its undo history, the autosave
//! thread that writes it to a sidecar, and the [`StateDir`] where the app
//! remembers recent files and what was open, so that the next start can
//! offer to recover work after a crash or kill.
//!
//! Every save is atomic (`Project::save`: temporary file, fsync, rename), so
//! neither the project nor its autosave is ever half-written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use tincture_core::project::Project;

/// How often unsaved work is written to the autosave sidecar.
pub const AUTOSAVE_INTERVAL: Duration = Duration::from_secs(30);
/// Undo steps kept.
const UNDO_LIMIT: usize = 200;
/// Entries in File → Recent.
const RECENT_LIMIT: usize = 10;
/// Name of the project I/O thread (saves, autosaves, recovery).
pub const PROJECT_IO_THREAD_NAME: &str = "tincture-project";

/// The project being worked on, with its file and its undo history.
pub struct Document {
    project: Project,
    /// The project file; `None` until the project is first saved.
    path: Option<PathBuf>,
    /// The project as last saved (or loaded), to tell whether there is unsaved work.
    saved: Option<Project>,
    undo: Vec<Project>,
    redo: Vec<Project>,
    /// Bumped by every change; the autosave records which one it wrote.
    revision: u64,
    autosaved_revision: u64,
    last_autosave: Instant,
    /// The user changed it (or it was recovered from an autosave).
    touched: bool,
}

impl Document {
    /// A new, unsaved project.
    pub fn untitled(project: Project) -> Self {
        Self::with(project, None, None)
    }

    /// A project loaded from `path`.
    pub fn loaded(project: Project, path: PathBuf) -> Self {
        let saved = Some(project.clone());
        Self::with(project, Some(path), saved)
    }

    /// Work recovered from an autosave: it belongs to `path` (if it was ever
    /// saved, and was then `saved`) and differs from what is on disk, so it
    /// counts as unsaved.
    pub fn recovered(project: Project, path: Option<PathBuf>, saved: Option<Project>) -> Self {
        let mut doc = Self::with(project, path, saved);
        doc.revision = 1;
        doc.touched = true;
        doc
    }

    fn with(project: Project, path: Option<PathBuf>, saved: Option<Project>) -> Self {
        Self {
            project,
            path,
            saved,
            undo: Vec::new(),
            redo: Vec::new(),
            revision: 0,
            autosaved_revision: 0,
            last_autosave: Instant::now(),
            touched: false,
        }
    }

    /// The project as it stands.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The project file, once saved.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether there is work not yet saved to the project file.
    pub fn is_dirty(&self) -> bool {
        self.saved.as_ref() != Some(&self.project)
    }

    /// Whether closing it would leave work the user did unsaved: it
    /// differs from its file, or, never saved, the user changed it (a film
    /// just opened, with only what Tincture found in it, is not asked about).
    pub fn has_unsaved_work(&self) -> bool {
        self.is_dirty() && (self.saved.is_some() || self.touched)
    }

    /// Counts changes; a new value means the project changed.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Changes the project with `change`, as one undo step. A change that
    /// leaves the project as it was is not recorded.
    pub fn edit(&mut self, change: impl FnOnce(&mut Project)) {
        let before = self.project.clone();
        change(&mut self.project);
        if self.project != before {
            self.undo.push(before);
            if self.undo.len() > UNDO_LIMIT {
                self.undo.remove(0);
            }
            self.redo.clear();
            self.revision += 1;
            self.touched = true;
        }
    }

    /// Whether [`undo`](Self::undo) has something to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether [`redo`](Self::redo) has something to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Steps back one change; `false` when there is none.
    pub fn undo(&mut self) -> bool {
        let Some(previous) = self.undo.pop() else {
            return false;
        };
        self.redo
            .push(std::mem::replace(&mut self.project, previous));
        self.revision += 1;
        true
    }

    /// Steps forward one undone change; `false` when there is none.
    pub fn redo(&mut self) -> bool {
        let Some(next) = self.redo.pop() else {
            return false;
        };
        self.undo.push(std::mem::replace(&mut self.project, next));
        self.revision += 1;
        true
    }

    /// What a save to `path` (the current file when `None`) writes: the
    /// project as it stands and the file. The write itself happens on the
    /// project I/O thread ([`ProjectIo::save`]); [`mark_saved`](Self::mark_saved)
    /// records it when done.
    ///
    /// # Errors
    /// When the project has no file yet and no `path` is given.
    pub fn to_save(&self, path: Option<PathBuf>) -> Result<(Project, PathBuf), String> {
        let path = path
            .or_else(|| self.path.clone())
            .ok_or_else(|| "The project has no file yet: use File > Save As…".to_owned())?;
        Ok((self.project.clone(), path))
    }

    /// Records that `project` was saved to `path`, which becomes the
    /// project's file. Changes made while it was being written stay unsaved.
    pub fn mark_saved(&mut self, path: PathBuf, project: Project) {
        self.path = Some(path);
        self.saved = Some(project);
    }

    /// Where unsaved work is autosaved: beside the project file, or for an
    /// untitled project in the state folder, named after its film.
    pub fn autosave_path(&self, state: &StateDir) -> PathBuf {
        match &self.path {
            Some(p) => Project::autosave_path(p),
            None => {
                let name = self
                    .project
                    .source
                    .path
                    .file_stem()
                    .map_or_else(|| "film".into(), |s| s.to_string_lossy().into_owned());
                let tag = self
                    .project
                    .source
                    .fingerprint
                    .get(..12)
                    .unwrap_or("untitled");
                state
                    .root
                    .join(format!("{name}-{tag}.untitled.autosave.json"))
            }
        }
    }

    /// Whether an autosave is due: unsaved changes since the last one, and
    /// either `structural` (a change the user would hate to lose) or
    /// [`AUTOSAVE_INTERVAL`] has passed.
    pub fn autosave_due(&self, structural: bool, now: Instant) -> bool {
        self.revision != self.autosaved_revision
            && self.is_dirty()
            && (structural || now.duration_since(self.last_autosave) >= AUTOSAVE_INTERVAL)
    }

    /// Records that the current revision was handed to the autosaver.
    pub fn mark_autosaved(&mut self, now: Instant) {
        self.autosaved_revision = self.revision;
        self.last_autosave = now;
    }
}

/// Disk the scrub proxies of all films may take together, in gigabytes.
pub const DEFAULT_PROXY_BUDGET_GB: f64 = 20.0;

/// What the app remembers between runs, in a folder of its own:
/// `session.json` (what is open, for recovery) and `recent.json`.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

/// What was open when the app last ran: written while a project is open,
/// removed on a clean exit. Present at start means the app did not exit
/// cleanly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The film.
    pub film: PathBuf,
    /// The project file, if the project had been saved.
    pub project: Option<PathBuf>,
    /// Its autosave sidecar.
    pub autosave: PathBuf,
}

/// Work that can be recovered after a crash: the autosave is newer than
/// the project file (or the project was never saved).
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// What was open.
    pub session: Session,
    /// When the autosave was written.
    pub saved_at: SystemTime,
}

impl StateDir {
    /// The folder named by `TINCTURE_STATE_DIR`, else `$XDG_STATE_HOME/tincture`,
    /// else `~/.local/state/tincture`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("TINCTURE_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("tincture"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/tincture"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("tincture-state"));
        Self { root }
    }

    /// A state folder at `root` (tests use a temporary one).
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where scrub proxies of long-GOP films are kept: `proxies/` in this
    /// folder, within a budget of `TINCTURE_PROXY_BUDGET_GB` gigabytes
    /// ([`DEFAULT_PROXY_BUDGET_GB`] if unset). A budget of 0 turns proxies off.
    pub fn proxies(&self) -> Option<crate::worker::ProxySettings> {
        let gigabytes = std::env::var("TINCTURE_PROXY_BUDGET_GB")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|g| g.is_finite() && *g >= 0.0)
            .unwrap_or(DEFAULT_PROXY_BUDGET_GB);
        (gigabytes > 0.0).then(|| crate::worker::ProxySettings {
            root: self.root.join("proxies"),
            budget: (gigabytes * 1e9) as u64,
        })
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        tincture_core::project::write_file_atomically(&self.root.join(name), &text)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Option<T> {
        let bytes = std::fs::read(self.root.join(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records what is open.
    ///
    /// # Errors
    /// When the state folder cannot be written.
    pub fn set_session(&self, session: &Session) -> std::io::Result<()> {
        self.write_json("session.json", session)
    }

    /// Forgets what was open (a clean exit, or the user discarded recovery).
    pub fn clear_session(&self) {
        let _ = std::fs::remove_file(self.root.join("session.json"));
    }

    /// Work left behind by a run that did not exit cleanly, if any.
    pub fn recovery(&self) -> Option<Recovery> {
        let session: Session = self.read_json("session.json")?;
        let saved_at = std::fs::metadata(&session.autosave)
            .and_then(|m| m.modified())
            .ok()?;
        let project_time = session
            .project
            .as_deref()
            .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        if project_time.is_some_and(|t| t >= saved_at) {
            return None;
        }
        Some(Recovery { session, saved_at })
    }

    /// Recently opened projects and films, newest first.
    pub fn recent(&self) -> Vec<PathBuf> {
        self.read_json("recent.json").unwrap_or_default()
    }

    /// Puts `path` at the top of the recent list and returns the new list.
    pub fn push_recent(&self, path: &Path) -> Vec<PathBuf> {
        let list = recent_with(&self.recent(), path);
        self.write_recent(&list);
        list
    }

    /// Writes File > Recent (failures are logged: the list is a convenience).
    pub fn write_recent(&self, list: &[PathBuf]) {
        if let Err(e) = self.write_json("recent.json", &list) {
            tracing::warn!(
                "could not remember recent files in {}: {e}",
                self.root.display()
            );
        }
    }
}

/// `list` with `path` put at the top, without repeats, at most
/// [`RECENT_LIMIT`] long.
pub fn recent_with(list: &[PathBuf], path: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = list.iter().filter(|p| *p != path).cloned().collect();
    list.insert(0, path.to_owned());
    list.truncate(RECENT_LIMIT);
    list
}

/// What the project I/O thread reports back.
#[derive(Debug)]
// A handful of these pass per save; boxing the project buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum IoResult {
    /// An autosave: the sidecar written, or why it failed (naming the file).
    Autosaved {
        /// The sidecar.
        path: PathBuf,
        /// `Err` with a message naming the file.
        outcome: Result<(), String>,
    },
    /// A save to the project file.
    Saved {
        /// The project file.
        path: PathBuf,
        /// The snapshot that was written (the document may have moved on since).
        project: Project,
        /// File > Recent as it now is, or why the save failed (naming the file).
        outcome: Result<Vec<PathBuf>, String>,
    },
    /// A frame pinned as its keyframe's reference: its picture written.
    Pinned {
        /// The keyframe.
        frame: u64,
        /// The picture file.
        path: PathBuf,
        /// Its thumbnail, or why it could not be written (naming the file).
        outcome: Result<Thumbnail, String>,
    },
    /// A reference photo checked (before it joins the project, or for its thumbnail).
    ReferenceChecked {
        /// The photo.
        path: PathBuf,
        /// The shot it is for.
        shot: Option<usize>,
        /// Whether it is to join the project (else only its thumbnail was wanted).
        join: bool,
        /// Its thumbnail, or why it cannot steer the colour (naming the file).
        outcome: Result<Thumbnail, String>,
    },
    /// Work to recover, read back from its autosave.
    Recovered {
        /// What was open.
        session: Session,
        /// The recovered project and the project file as last saved (if it
        /// was ever saved), or why the autosave could not be read.
        outcome: Result<(Project, Option<Project>), String>,
    },
}

/// A small picture for a panel: 8-bit RGB, row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` RGB triplets.
    pub rgb: Vec<u8>,
}

/// Height of reference thumbnails, in pixels.
pub const REFERENCE_THUMB_HEIGHT: u32 = 56;

impl Thumbnail {
    fn of(image: &image::RgbImage) -> Self {
        let h = REFERENCE_THUMB_HEIGHT.min(image.height()).max(1);
        let w = (u64::from(image.width()) * u64::from(h) / u64::from(image.height().max(1))).max(1);
        let small = image::imageops::thumbnail(image, w as u32, h);
        Self {
            width: small.width() as usize,
            height: small.height() as usize,
            rgb: small.into_raw(),
        }
    }
}

/// A save to the project file, for [`ProjectIo::save`].
#[derive(Clone, Debug)]
pub struct SaveJob {
    /// The snapshot to write.
    pub project: Project,
    /// The project file.
    pub path: PathBuf,
    /// The autosave the saved project replaces; removed once saved.
    pub replaced_autosave: PathBuf,
    /// Where the session and the recent list are recorded.
    pub state: StateDir,
    /// The film that is open, for the session record.
    pub film: Option<PathBuf>,
}

enum Job {
    Autosave {
        project: Project,
        path: PathBuf,
    },
    Save(SaveJob),
    Recover(Session),
    /// Records what is open (`None`: forgets it).
    Session(StateDir, Option<Session>),
    /// Writes File > Recent.
    Recent(StateDir, Vec<PathBuf>),
    /// Writes the coloured frame `frame` as a picture at `path`.
    Pin {
        frame: u64,
        image: Arc<eframe::egui::ColorImage>,
        path: PathBuf,
    },
    /// Reads a reference photo and checks that it carries colour.
    CheckReference {
        path: PathBuf,
        shot: Option<usize>,
        join: bool,
    },
    /// Answered once every job queued before it is done.
    Flush(Sender<()>),
}

/// The project I/O thread ([`PROJECT_IO_THREAD_NAME`]): every project
/// file the app writes or reads back while it runs goes through it, so a
/// slow or stuck disk never freezes the window. It writes autosave
/// snapshots (only the newest pending one per sidecar) and saves, both
/// atomically, and reads back work to recover.
pub struct ProjectIo {
    jobs: Option<Sender<Job>>,
    /// Jobs queued and not yet done.
    pending: Arc<AtomicUsize>,
    /// Results, read by the UI every frame.
    pub results: Receiver<IoResult>,
    thread: Option<JoinHandle<()>>,
}

/// How long a flush (on exit) waits for queued writes.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(10);

impl ProjectIo {
    /// Starts the thread; `wake` is called after each job and every
    /// [`AUTOSAVE_INTERVAL`] (to repaint the UI, which then autosaves).
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let (tx, results) = crossbeam_channel::unbounded();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name(PROJECT_IO_THREAD_NAME.to_owned())
            .spawn(move || {
                loop {
                    // Wakes the UI every interval, so the timed autosave
                    // happens even when nothing else repaints.
                    let first = match rx.recv_timeout(AUTOSAVE_INTERVAL) {
                        Ok(job) => job,
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                            wake();
                            continue;
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    };
                    let batch: Vec<Job> = std::iter::once(first).chain(rx.try_iter()).collect();
                    for (i, job) in batch.iter().enumerate() {
                        // Counted as done once handled, skipped or not.
                        let finished = Finished(&left);
                        // An autosave that a newer one of the same sidecar replaces is skipped.
                        let superseded = |path: &Path| {
                            batch[i + 1..].iter().any(
                                |later| matches!(later, Job::Autosave { path: p, .. } if p == path),
                            )
                        };
                        let result = match job {
                            Job::Autosave { path, .. } if superseded(path) => continue,
                            Job::Autosave { project, path } => autosave(project, path),
                            Job::Save(save) => save_project(save),
                            Job::Recover(session) => recover(session),
                            Job::Pin { frame, image, path } => pin(*frame, image, path),
                            Job::CheckReference { path, shot, join } => {
                                check_reference(path, *shot, *join)
                            }
                            Job::Session(state, session) => {
                                record_session(state, session.as_ref());
                                continue;
                            }
                            Job::Recent(state, list) => {
                                state.write_recent(list);
                                continue;
                            }
                            Job::Flush(done) => {
                                // Everything before it is done, and so is the flush.
                                drop(finished);
                                let _ = done.send(());
                                continue;
                            }
                        };
                        if tx.send(result).is_err() {
                            return;
                        }
                        wake();
                    }
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            pending,
            results,
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            self.pending.fetch_add(1, Ordering::SeqCst);
            if jobs.send(job).is_err() {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Jobs (saves, autosaves, reads) queued and not yet done.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Queues an autosave snapshot; never blocks.
    pub fn autosave(&self, project: Project, path: PathBuf) {
        self.send(Job::Autosave { project, path });
    }

    /// Queues a save; never blocks. [`IoResult::Saved`] follows.
    pub fn save(&self, job: SaveJob) {
        self.send(Job::Save(job));
    }

    /// Queues reading back the autosave of `session`; [`IoResult::Recovered`] follows.
    pub fn recover(&self, session: Session) {
        self.send(Job::Recover(session));
    }

    /// Queues recording `session` as what is open in `state` (`None`:
    /// a clean state, nothing to recover), in order with the saves.
    pub fn record_session(&self, state: StateDir, session: Option<Session>) {
        self.send(Job::Session(state, session));
    }

    /// Queues writing the coloured frame `frame` to `path` as a PNG, to
    /// pin it as the keyframe's reference; [`IoResult::Pinned`] follows.
    pub fn pin(&self, frame: u64, image: Arc<eframe::egui::ColorImage>, path: PathBuf) {
        self.send(Job::Pin { frame, image, path });
    }

    /// Queues checking the reference photo at `path` (for shot `shot`;
    /// `join`: to add it to the project); [`IoResult::ReferenceChecked`] follows.
    pub fn check_reference(&self, path: PathBuf, shot: Option<usize>, join: bool) {
        self.send(Job::CheckReference { path, shot, join });
    }

    /// Queues writing File > Recent.
    pub fn write_recent(&self, state: StateDir, list: Vec<PathBuf>) {
        self.send(Job::Recent(state, list));
    }

    /// Waits until every job queued so far is done, for at most `limit`;
    /// whether they were.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        self.send(Job::Flush(done));
        wait.recv_timeout(limit).is_ok()
    }
}

impl Drop for ProjectIo {
    /// Lets queued writes finish (for up to [`FLUSH_LIMIT`]): nothing
    /// asked to be saved is dropped with the window.
    fn drop(&mut self) {
        let finished = self.flush(FLUSH_LIMIT);
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && finished
        {
            let _ = thread.join();
        }
    }
}

/// Counts one job done when dropped.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn autosave(project: &Project, path: &Path) -> IoResult {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let outcome = project
        .save(path)
        .map_err(|e| format!("Autosave failed: {e}"));
    IoResult::Autosaved {
        path: path.to_owned(),
        outcome,
    }
}

fn save_project(job: &SaveJob) -> IoResult {
    let SaveJob {
        project,
        path,
        replaced_autosave,
        state,
        film,
    } = job;
    let outcome = project
        .save(path)
        .map_err(|e| format!("Could not save the project: {e}"))
        .map(|()| {
            // The saved file holds that work now.
            let _ = std::fs::remove_file(replaced_autosave);
            if let Some(film) = film {
                let session = Session {
                    film: film.clone(),
                    project: Some(path.clone()),
                    autosave: Project::autosave_path(path),
                };
                record_session(state, Some(&session));
            }
            state.push_recent(path)
        });
    IoResult::Saved {
        path: path.clone(),
        project: project.clone(),
        outcome,
    }
}

fn record_session(state: &StateDir, session: Option<&Session>) {
    match session {
        Some(session) => {
            if let Err(e) = state.set_session(session) {
                tracing::warn!(
                    "could not record the session in {}: {e}",
                    state.root().display()
                );
            }
        }
        None => state.clear_session(),
    }
}

fn pin(frame: u64, image: &eframe::egui::ColorImage, path: &Path) -> IoResult {
    let [w, h] = image.size;
    let rgb: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| [c.r(), c.g(), c.b()])
        .collect();
    let outcome = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| format!("Frame {frame}: the coloured picture is not {w}x{h}"))
        .and_then(|picture| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    format!(
                        "Could not pin frame {frame}: cannot create {}: {e}",
                        dir.display()
                    )
                })?;
            }
            // Written under a temporary name and renamed: never half a picture.
            let partial = path.with_extension("partial.png");
            picture
                .save_with_format(&partial, image::ImageFormat::Png)
                .and_then(|()| {
                    // On disk before it replaces anything.
                    std::fs::File::open(&partial)
                        .and_then(|f| f.sync_all())
                        .and_then(|()| std::fs::rename(&partial, path))
                        .map_err(image::ImageError::IoError)
                })
                .map_err(|e| {
                    format!(
                        "Could not pin frame {frame}: cannot write {}: {e}",
                        path.display()
                    )
                })?;
            Ok(Thumbnail::of(&picture))
        });
    IoResult::Pinned {
        frame,
        path: path.to_owned(),
        outcome,
    }
}

fn check_reference(path: &Path, shot: Option<usize>, join: bool) -> IoResult {
    let outcome =
        tincture_engine::reference::reference_colorizer(path, tincture_core::color::Matrix::Bt709)
            .map_err(|e| format!("Cannot use this reference photo: {e}"))
            .and_then(|_| {
                let picture = image::open(path).map_err(|e| {
                    format!("Cannot read the reference photo {}: {e}", path.display())
                })?;
                Ok(Thumbnail::of(&picture.to_rgb8()))
            });
    IoResult::ReferenceChecked {
        path: path.to_owned(),
        shot,
        join,
        outcome,
    }
}

fn recover(session: &Session) -> IoResult {
    let outcome = Project::load_asking_for_models(&session.autosave)
        .map(|project| {
            let saved = session
                .project
                .as_deref()
                .and_then(|p| Project::load_asking_for_models(p).ok());
            (project, saved)
        })
        .map_err(|e| format!("Could not recover: {e}"));
    IoResult::Recovered {
        session: session.clone(),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincture_core::project::SourceRef;

    fn project() -> Project {
        Project::new(SourceRef {
            path: "reel.mkv".into(),
            size: 10,
            fingerprint: "abcdef0123456789".into(),
            frame_count: 100,
            width: 64,
            height: 48,
            rate: [24, 1],
        })
    }

    #[test]
    fn undo_and_redo_walk_the_history() {
        let mut doc = Document::untitled(project());
        assert!(!doc.can_undo());
        doc.edit(|p| {
            p.add_keyframe(10);
        });
        doc.edit(|p| {
            p.add_keyframe(20);
        });
        doc.edit(|_| {}); // no change, no step
        assert_eq!(doc.project().keyframes.len(), 2);
        assert!(doc.undo());
        assert_eq!(doc.project().keyframes.len(), 1);
        assert!(doc.undo());
        assert!(!doc.undo());
        assert!(doc.project().keyframes.is_empty());
        assert!(doc.redo());
        assert_eq!(doc.project().keyframes[0].frame, 10);
        // A new edit drops what could be redone.
        doc.edit(|p| {
            p.add_keyframe(30);
        });
        assert!(!doc.can_redo());
    }

    #[test]
    fn dirty_until_saved_and_autosave_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::at(dir.path().join("state"));
        let mut doc = Document::untitled(project());
        assert!(doc.is_dirty(), "a new project has never been saved");
        assert!(
            doc.autosave_path(&state)
                .starts_with(dir.path().join("state"))
        );
        assert!(doc.to_save(None).is_err(), "no file yet");
        let file = dir.path().join("reel.json");
        let (snapshot, to) = doc.to_save(Some(file.clone())).expect("a file to save to");
        assert_eq!(to, file);
        // An edit while the snapshot is being written stays unsaved.
        doc.edit(|p| p.defaults.saturation = 0.7);
        doc.mark_saved(file.clone(), snapshot);
        assert!(doc.is_dirty(), "the edit made during the save is not saved");
        let (snapshot, _) = doc.to_save(None).expect("the project's own file now");
        doc.mark_saved(file.clone(), snapshot);
        assert!(!doc.is_dirty());
        assert_eq!(
            doc.autosave_path(&state),
            dir.path().join("reel.autosave.json")
        );
        doc.edit(|p| p.defaults.saturation = 0.5);
        assert!(doc.is_dirty());
        let now = Instant::now();
        assert!(doc.autosave_due(true, now));
        assert!(!doc.autosave_due(false, now), "not yet 30 s");
        doc.mark_autosaved(now);
        assert!(!doc.autosave_due(true, now), "nothing new");
        assert!(!doc.autosave_due(false, now + AUTOSAVE_INTERVAL));
    }

    #[test]
    fn recovery_is_offered_only_for_a_newer_autosave() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::at(dir.path().join("state"));
        assert_eq!(state.recovery(), None);
        let file = dir.path().join("reel.json");
        let autosave = Project::autosave_path(&file);
        project().save(&file).expect("saves");
        std::thread::sleep(Duration::from_millis(20));
        let mut changed = project();
        changed.add_keyframe(5);
        changed.save(&autosave).expect("saves");
        let session = Session {
            film: "reel.mkv".into(),
            project: Some(file.clone()),
            autosave: autosave.clone(),
        };
        state.set_session(&session).expect("writes");
        let recovery = state.recovery().expect("a newer autosave is offered");
        assert_eq!(recovery.session, session);
        // Saving the project afterwards makes the autosave old news.
        std::thread::sleep(Duration::from_millis(20));
        project().save(&file).expect("saves");
        assert_eq!(state.recovery(), None);
        state.clear_session();
        assert_eq!(state.recovery(), None);
    }

    #[test]
    fn recent_files_newest_first_without_repeats() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::at(dir.path().to_owned());
        for name in ["a", "b", "a", "c"] {
            state.push_recent(Path::new(name));
        }
        assert_eq!(state.recent(), ["c", "a", "b"].map(PathBuf::from).to_vec());
    }

    fn next(io: &ProjectIo) -> IoResult {
        io.results
            .recv_timeout(Duration::from_secs(10))
            .expect("a result")
    }

    #[test]
    fn the_io_thread_autosaves_the_newest_snapshot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let io = ProjectIo::spawn(|| {}).expect("thread starts");
        let path = dir.path().join("x.autosave.json");
        let mut p = project();
        p.add_keyframe(7);
        io.autosave(p.clone(), path.clone());
        let IoResult::Autosaved {
            path: written,
            outcome,
        } = next(&io)
        else {
            panic!("an autosave result");
        };
        assert_eq!(written, path);
        assert!(outcome.is_ok());
        assert_eq!(Project::load(&path).expect("loads"), p);
        // A folder that cannot be written gives a message naming the file.
        let blocked = dir.path().join("file-not-dir");
        std::fs::write(&blocked, b"x").expect("writes");
        io.autosave(p, blocked.join("y.autosave.json"));
        let IoResult::Autosaved { outcome, .. } = next(&io) else {
            panic!("an autosave result");
        };
        let message = outcome.expect_err("cannot write");
        assert!(message.contains("y.autosave.json"), "{message}");
        assert!(io.flush(Duration::from_secs(10)));
        assert_eq!(io.pending(), 0, "nothing left queued");
    }

    #[test]
    fn a_save_writes_the_project_records_it_and_removes_the_old_autosave() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::at(dir.path().join("state"));
        let io = ProjectIo::spawn(|| {}).expect("thread starts");
        let old_autosave = dir.path().join("untitled.autosave.json");
        project().save(&old_autosave).expect("writes");
        let file = dir.path().join("reel.tincture.json");
        let mut p = project();
        p.add_keyframe(3);
        io.save(SaveJob {
            project: p.clone(),
            path: file.clone(),
            replaced_autosave: old_autosave.clone(),
            state: state.clone(),
            film: Some("reel.mkv".into()),
        });
        let IoResult::Saved {
            path,
            project: saved,
            outcome,
        } = next(&io)
        else {
            panic!("a save result");
        };
        assert_eq!((path, &saved), (file.clone(), &p));
        assert_eq!(outcome.expect("saved"), vec![file.clone()], "File > Recent");
        assert_eq!(Project::load(&file).expect("loads"), p);
        assert!(!old_autosave.exists(), "the replaced autosave is removed");
        let session: Session = state.read_json("session.json").expect("a session");
        assert_eq!(session.project, Some(file.clone()));
        // A save that fails names the file and leaves the old autosave alone.
        project().save(&old_autosave).expect("writes");
        let blocked = dir.path().join("file-not-dir");
        std::fs::write(&blocked, b"x").expect("writes");
        io.save(SaveJob {
            project: p,
            path: blocked.join("reel.tincture.json"),
            replaced_autosave: old_autosave.clone(),
            state,
            film: None,
        });
        let IoResult::Saved { outcome, .. } = next(&io) else {
            panic!("a save result");
        };
        let message = outcome.expect_err("cannot write");
        assert!(message.contains("reel.tincture.json"), "{message}");
        assert!(old_autosave.exists());
    }

    #[test]
    fn recovery_reads_the_autosave_and_the_saved_file_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let io = ProjectIo::spawn(|| {}).expect("thread starts");
        let file = dir.path().join("reel.json");
        let autosave = Project::autosave_path(&file);
        project().save(&file).expect("saves");
        let mut changed = project();
        changed.add_keyframe(5);
        changed.save(&autosave).expect("saves");
        let session = Session {
            film: "reel.mkv".into(),
            project: Some(file),
            autosave: autosave.clone(),
        };
        io.recover(session.clone());
        let IoResult::Recovered {
            session: back,
            outcome,
        } = next(&io)
        else {
            panic!("a recovery result");
        };
        assert_eq!(back, session);
        let (recovered, saved) = outcome.expect("recovered");
        assert_eq!((recovered, saved), (changed, Some(project())));
        std::fs::remove_file(&autosave).expect("removes");
        io.recover(session);
        let IoResult::Recovered { outcome, .. } = next(&io) else {
            panic!("a recovery result");
        };
        let message = outcome.expect_err("the autosave is gone");
        assert!(message.contains("reel.autosave.json"), "{message}");
    }

    #[test]
    fn dropping_the_io_thread_finishes_queued_saves() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("late.autosave.json");
        {
            let io = ProjectIo::spawn(|| {}).expect("thread starts");
            io.autosave(project(), file.clone());
        }
        assert_eq!(
            Project::load(&file).expect("written before the drop ended"),
            project()
        );
    }
}
