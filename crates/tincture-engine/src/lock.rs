//! Lock files, so that two Tinctures (two windows, or a window and
//! `tincture-cli`) never write the same partial file or autosave.
//!
//! A lock is an advisory `flock` on a small file beside what it guards
//! (`NAME.tincture-lock`). The system releases it when its process ends,
//! however it ends, so a crash never leaves a stale lock behind. The file
//! records who holds it (program and process id) for the message the
//! second Tincture shows.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock and removes its file.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    /// Held open: the lock lasts as long as the descriptor.
    _file: File,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another Tincture holds it.
    #[error(
        "{what} is in use by another Tincture ({holder}); wait for it to finish or close it there, \
         or choose another file (lock: {})",
        path.display()
    )]
    Held {
        /// What the lock guards, for the message.
        what: String,
        /// Who holds it, as its file says.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file cannot be made.
    #[error("cannot make the lock file {}: {reason}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

/// The lock file that guards `target`: `NAME.tincture-lock` beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".tincture-lock");
    target.with_file_name(name)
}

impl FileLock {
    /// Takes the lock that guards `target` (`what` names it in messages),
    /// without waiting.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds it, [`LockError::Io`]
    /// when the lock file cannot be made.
    pub fn acquire(target: &Path, what: &str) -> Result<Self, LockError> {
        let path = lock_path(target);
        let io = |e: std::io::Error| LockError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        // A lock file removed by its holder between our open and our lock
        // is no longer the lock: try again on the new one.
        for _ in 0..8 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            if !try_lock(&file).map_err(io)? {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    what: what.to_owned(),
                    holder: if holder.is_empty() {
                        "a process that is starting".to_owned()
                    } else {
                        holder.to_owned()
                    },
                    path,
                });
            }
            if !same_file(&file, &path) {
                continue;
            }
            let me = format!(
                "{} process {}",
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "tincture".into()),
                std::process::id()
            );
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(me.as_bytes()).map_err(io)?;
            return Ok(Self { path, _file: file });
        }
        Err(LockError::Io {
            path: path.clone(),
            reason: "the lock file kept changing under us".into(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still held, so no one takes a lock on a file that
        // is about to go.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on a descriptor this function's caller owns.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("reel.tincture-partial.mkv");
        let first = FileLock::acquire(&target, "the export reel.mkv").expect("the first lock");
        assert_eq!(
            first.path(),
            dir.path().join("reel.tincture-partial.mkv.tincture-lock")
        );
        // Another descriptor in this process stands for another Tincture:
        // flock locks belong to open files, not processes.
        let second = FileLock::acquire(&target, "the export reel.mkv");
        let Err(e) = second else {
            panic!("a second lock was granted");
        };
        let text = e.to_string();
        assert!(
            text.contains("the export reel.mkv is in use by another Tincture"),
            "{text}"
        );
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "names the holder: {text}"
        );
        drop(first);
        assert!(
            !lock_path(&target).exists(),
            "the lock file goes with the lock"
        );
        let again = FileLock::acquire(&target, "the export reel.mkv").expect("free again");
        drop(again);
    }

    #[test]
    fn a_lock_left_by_a_killed_process_is_free() {
        // The file exists, but no one holds a lock on it.
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("reel.autosave.json");
        std::fs::write(lock_path(&target), "tincture process 1").expect("write");
        let lock = FileLock::acquire(&target, "the autosave").expect("taken");
        drop(lock);
    }
}
