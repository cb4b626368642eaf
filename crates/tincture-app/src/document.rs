//! The open project: the [`Document`] with its undo history, the autosave
//! thread that writes it to a sidecar, and the [`StateDir`] where the app
//! remembers recent files and what was open, so that the next start can
//! offer to recover work after a crash or kill.
//!
//! Every save is atomic (`Project::save`: temporary file, fsync, rename), so
//! neither the project nor its autosave is ever half-written.

use std::path::{Path, PathBuf};
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
/// Name of the autosave thread.
pub const AUTOSAVE_THREAD_NAME: &str = "tincture-autosave";

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
    /// saved) and differs from what is on disk, so it counts as unsaved.
    pub fn recovered(project: Project, path: Option<PathBuf>) -> Self {
        let saved = path.as_deref().and_then(|p| Project::load(p).ok());
        let mut doc = Self::with(project, path, saved);
        doc.revision = 1;
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

    /// Saves atomically to `path` (the current file when `None`), which
    /// becomes the project's file.
    ///
    /// # Errors
    /// The message names the file and says why; the file on disk is then
    /// as it was.
    pub fn save(&mut self, path: Option<PathBuf>) -> Result<PathBuf, String> {
        let Some(path) = path.or_else(|| self.path.clone()) else {
            return Err("The project has no file yet: use File > Save As…".into());
        };
        self.project
            .save(&path)
            .map_err(|e| format!("Could not save the project: {e}"))?;
        self.path = Some(path.clone());
        self.saved = Some(self.project.clone());
        Ok(path)
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
                let tag = if self.project.source.fingerprint.len() >= 12 {
                    &self.project.source.fingerprint[..12]
                } else {
                    "untitled"
                };
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
        let mut list = self.recent();
        list.retain(|p| p != path);
        list.insert(0, path.to_owned());
        list.truncate(RECENT_LIMIT);
        if let Err(e) = self.write_json("recent.json", &list) {
            tracing::warn!(
                "could not remember recent files in {}: {e}",
                self.root.display()
            );
        }
        list
    }
}

/// A finished autosave: the file written, or why it failed.
#[derive(Debug)]
pub struct AutosaveResult {
    /// The sidecar.
    pub path: PathBuf,
    /// `Err` with a message naming the file.
    pub outcome: Result<(), String>,
}

/// The autosave thread ([`AUTOSAVE_THREAD_NAME`]): takes snapshots of the
/// project and writes them atomically, off the UI thread. Only the newest
/// pending snapshot is written.
pub struct Autosaver {
    jobs: Sender<(Project, PathBuf)>,
    /// Results, for the status bar.
    pub results: Receiver<AutosaveResult>,
    _thread: JoinHandle<()>,
}

impl Autosaver {
    /// Starts the thread; `wake` is called after each write and every
    /// [`AUTOSAVE_INTERVAL`] (to repaint the UI).
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (jobs, rx) = crossbeam_channel::unbounded::<(Project, PathBuf)>();
        let (tx, results) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(AUTOSAVE_THREAD_NAME.to_owned())
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
                    let (project, path) = rx.try_iter().last().unwrap_or(first);
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let outcome = project
                        .save(&path)
                        .map_err(|e| format!("Autosave failed: {e}"));
                    if tx.send(AutosaveResult { path, outcome }).is_err() {
                        break;
                    }
                    wake();
                }
            })?;
        Ok(Self {
            jobs,
            results,
            _thread: thread,
        })
    }

    /// Queues a snapshot; never blocks.
    pub fn save(&self, project: Project, path: PathBuf) {
        let _ = self.jobs.send((project, path));
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
        assert!(doc.save(None).is_err(), "no file yet");
        let file = dir.path().join("reel.json");
        doc.save(Some(file.clone())).expect("saves");
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

    #[test]
    fn the_autosaver_writes_the_newest_snapshot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let saver = Autosaver::spawn(|| {}).expect("thread starts");
        let path = dir.path().join("x.autosave.json");
        let mut p = project();
        p.add_keyframe(7);
        saver.save(p.clone(), path.clone());
        let result = saver
            .results
            .recv_timeout(Duration::from_secs(10))
            .expect("a result");
        assert_eq!(result.path, path);
        assert!(result.outcome.is_ok());
        assert_eq!(Project::load(&path).expect("loads"), p);
        // A folder that cannot be written gives a message naming the file.
        let blocked = dir.path().join("file-not-dir");
        std::fs::write(&blocked, b"x").expect("writes");
        saver.save(p, blocked.join("y.autosave.json"));
        let result = saver
            .results
            .recv_timeout(Duration::from_secs(10))
            .expect("a result");
        let message = result.outcome.expect_err("cannot write");
        assert!(message.contains("y.autosave.json"), "{message}");
    }
}
