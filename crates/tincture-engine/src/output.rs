//! The one check every output goes through, and the writes that follow it.
//!
//! Every file or folder Tincture writes at a path the user chose (a render,
//! a still, a JSON report, a plot, an EDL, a project) passes [`check`]
//! first, from the CLI and the GUI alike:
//!
//! - **The inputs are untouchable.** An output that is one of the files the
//!   command reads (the film, a project, a reference photo, a hints file),
//!   by the same path, a path through `..`, a symbolic link or a hard link,
//!   is refused; so is an output that is a folder holding an input (its
//!   folder or any folder above it), or whose folder is an input.
//! - **`--overwrite` means the same everywhere.** Without it an existing
//!   output is refused; with it a file is replaced atomically
//!   ([`write_atomically`], [`replace_file`]): written beside it under a
//!   temporary name, flushed to disk, renamed over it.
//! - **Tincture never removes a folder it did not make.** An image-sequence
//!   folder is replaced only when it is empty, or when it holds Tincture's
//!   [marker](tincture_media::SEQUENCE_MARKER) and nothing but the files
//!   Tincture writes there ([`tincture_media::is_sequence_file`]); those
//!   files alone are removed, then the empty folder.

use std::io;
use std::path::{Path, PathBuf};

use tincture_media::{SEQUENCE_MARKER, SEQUENCE_SETTINGS, is_sequence_file};

use crate::{Error, Result};

/// What is written at an output path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One file (a video, a picture, a report).
    File,
    /// A folder of frames (`frame_NNNNNN.png` / `.tif`).
    Sequence,
}

/// Checks that `output` may be written by a command that reads `inputs`:
/// it is none of them nor a folder holding one (see the module docs), its
/// folder exists, and an existing output is replaced only with `overwrite`
/// (a sequence folder only when it is Tincture's).
///
/// # Errors
/// [`Error::OutputIsInput`], [`Error::OutputExists`],
/// [`Error::NotTinctureFolder`], or [`Error::Output`] for a missing folder
/// or an output of the wrong kind; each names the paths and what to do.
pub fn check(output: &Path, inputs: &[&Path], overwrite: bool, kind: Kind) -> Result<()> {
    if output.as_os_str().is_empty() {
        return Err(Error::Output {
            path: output.to_owned(),
            reason: "no output path was given".into(),
        });
    }
    check_not_input(output, inputs)?;
    let folder = folder_of(output);
    if !folder.is_dir() {
        return Err(Error::Output {
            path: output.to_owned(),
            reason: format!(
                "the folder {} does not exist; create it or choose another output path",
                folder.display()
            ),
        });
    }
    let meta = match std::fs::symlink_metadata(output) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Output {
                path: output.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    match kind {
        Kind::File if meta.is_dir() => Err(Error::Output {
            path: output.to_owned(),
            reason: "it is a folder, and Tincture only replaces a file here; choose a file name"
                .into(),
        }),
        Kind::File if !overwrite => Err(Error::OutputExists {
            path: output.to_owned(),
        }),
        Kind::File => Ok(()),
        Kind::Sequence if !meta.is_dir() => {
            if overwrite {
                Err(Error::Output {
                    path: output.to_owned(),
                    reason: "it is a file or a link, not a folder of frames; Tincture writes an \
                             image sequence into a folder: choose an empty or new folder"
                        .into(),
                })
            } else {
                Err(Error::OutputExists {
                    path: output.to_owned(),
                })
            }
        }
        Kind::Sequence => {
            let folder = SequenceFolder::read(output)?;
            if folder.is_empty() {
                Ok(())
            } else if !overwrite {
                Err(Error::OutputExists {
                    path: output.to_owned(),
                })
            } else {
                folder.check_ours()
            }
        }
    }
}

/// Refuses an `output` that is one of `inputs`, a folder holding one, or a
/// path inside a folder that resolves to one (see the module docs). Paths
/// are compared once resolved (`..` and symbolic links followed) and, on
/// Unix, by device and inode, which also catches hard links.
///
/// # Errors
/// [`Error::OutputIsInput`], naming both paths.
pub fn check_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let out = Resolved::of(output);
    let parent = Resolved::of(folder_of(output));
    for &input in inputs {
        let Ok(resolved) = std::fs::canonicalize(input) else {
            // An input that is not there cannot be harmed.
            continue;
        };
        let inp = Resolved::of(&resolved);
        let refuse = |what: &str| {
            Err(Error::OutputIsInput {
                output: output.to_owned(),
                input: input.to_owned(),
                what: what.to_owned(),
            })
        };
        if out.same(&inp) {
            return refuse("it is the same file as");
        }
        if parent.same(&inp) {
            return refuse("its folder is");
        }
        let mut above = resolved.parent();
        while let Some(dir) = above {
            if out.same(&Resolved::of(dir)) {
                return refuse("it is a folder holding");
            }
            above = dir.parent();
        }
    }
    Ok(())
}

/// The folder a path is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A path resolved for comparison: its canonical form (for a path that does
/// not exist yet, its folder's canonical form joined with its name) and,
/// when it exists, its device and inode.
struct Resolved {
    path: Option<PathBuf>,
    id: Option<(u64, u64)>,
}

impl Resolved {
    fn of(path: &Path) -> Self {
        let canonical = std::fs::canonicalize(path).ok().or_else(|| {
            let name = path.file_name()?;
            let dir = std::fs::canonicalize(folder_of(path)).ok()?;
            Some(dir.join(name))
        });
        Self {
            path: canonical,
            id: file_id(path),
        }
    }

    fn same(&self, other: &Self) -> bool {
        let by_path = matches!((&self.path, &other.path), (Some(a), Some(b)) if a == b);
        let by_id = matches!((self.id, other.id), (Some(a), Some(b)) if a == b);
        by_path || by_id
    }
}

/// The (device, inode) of the file `path` names, following links.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Elsewhere only paths are compared.
#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// What an existing image-sequence folder holds.
struct SequenceFolder {
    path: PathBuf,
    /// Whether it carries Tincture's marker (or the settings record every
    /// sequence render has written).
    marked: bool,
    /// Files Tincture writes there.
    ours: Vec<PathBuf>,
    /// Anything else.
    others: Vec<String>,
}

impl SequenceFolder {
    fn read(path: &Path) -> Result<Self> {
        let failed = |e: io::Error| Error::Output {
            path: path.to_owned(),
            reason: format!("cannot look inside the folder: {e}"),
        };
        let mut folder = Self {
            path: path.to_owned(),
            marked: false,
            ours: Vec::new(),
            others: Vec::new(),
        };
        for entry in std::fs::read_dir(path).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().map_err(failed)?.is_file();
            if is_file && is_sequence_file(&name) {
                folder.marked |= name == SEQUENCE_MARKER || name == SEQUENCE_SETTINGS;
                folder.ours.push(entry.path());
            } else {
                folder.others.push(name);
            }
        }
        folder.others.sort();
        Ok(folder)
    }

    fn is_empty(&self) -> bool {
        self.ours.is_empty() && self.others.is_empty()
    }

    /// Refuses a folder Tincture did not make, or one that holds anything
    /// but Tincture's own files.
    fn check_ours(&self) -> Result<()> {
        if !self.marked {
            return Err(Error::NotTinctureFolder {
                path: self.path.clone(),
                reason: format!("it was not made by Tincture (it has no {SEQUENCE_MARKER} marker)"),
            });
        }
        if let Some(first) = self.others.first() {
            let more = match self.others.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            return Err(Error::NotTinctureFolder {
                path: self.path.clone(),
                reason: format!("it also holds {first}{more}, which Tincture did not write"),
            });
        }
        Ok(())
    }
}

/// Removes an image-sequence folder Tincture made: its own files one by
/// one, then the folder, which must then be empty. A folder without the
/// marker, or holding anything else, is left as it is.
///
/// # Errors
/// [`Error::NotTinctureFolder`] for a folder that is not Tincture's, or
/// [`Error::Output`] when a file cannot be removed.
pub fn remove_sequence_folder(path: &Path) -> Result<()> {
    let folder = SequenceFolder::read(path)?;
    if !folder.is_empty() {
        folder.check_ours()?;
    }
    let failed = |e: io::Error| Error::Output {
        path: path.to_owned(),
        reason: format!("cannot remove the earlier image sequence: {e}"),
    };
    for file in &folder.ours {
        std::fs::remove_file(file).map_err(failed)?;
    }
    // Not remove_dir_all: anything that appeared meanwhile stays, and so does the folder.
    std::fs::remove_dir(path).map_err(failed)
}

/// Puts a finished output in place: `partial` (a file, or a sequence
/// folder) is flushed to disk and renamed to `output`, replacing a file
/// atomically, or an image-sequence folder of Tincture's (see
/// [`remove_sequence_folder`]). Call [`check`] first.
///
/// # Errors
/// [`Error::NotTinctureFolder`] or [`Error::Output`], naming `output`.
pub fn replace(partial: &Path, output: &Path, kind: Kind) -> Result<()> {
    let failed = |e: io::Error| Error::Output {
        path: output.to_owned(),
        reason: e.to_string(),
    };
    match kind {
        Kind::File => tincture_media::sync_file(partial).map_err(failed)?,
        Kind::Sequence => {
            // The frames were flushed as they were written; flush their entries.
            sync_dir(partial).map_err(failed)?;
            if std::fs::symlink_metadata(output).is_ok_and(|m| m.is_dir()) {
                remove_sequence_folder(output)?;
            }
        }
    }
    std::fs::rename(partial, output).map_err(failed)?;
    sync_dir(folder_of(output)).map_err(failed)
}

/// Writes the file `output` through `write`, which is given a temporary
/// name beside it (`NAME.tincture-partial.EXT`): the file is then flushed
/// to disk and renamed over `output`, so it appears complete or not at
/// all, and an earlier file is replaced atomically. On failure the
/// temporary file is removed. It does not [`check`] the output.
///
/// # Errors
/// The reason `write` gave, or the operating system's.
pub fn write_atomically(
    output: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let partial = crate::render::partial_path(output);
    if std::fs::symlink_metadata(&partial).is_ok_and(|m| !m.is_file()) {
        return Err(format!(
            "{} is in the way of the temporary file Tincture writes first; move it away",
            partial.display()
        ));
    }
    let written = write(&partial).and_then(|()| {
        tincture_media::sync_file(&partial)
            .and_then(|()| std::fs::rename(&partial, output))
            .map_err(|e| format!("cannot move it into place: {e}"))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written?;
    sync_dir(folder_of(output)).map_err(|e| e.to_string())
}

/// [`check`]s the file `output` against `inputs` and `overwrite`, then
/// writes it with [`write_atomically`].
///
/// # Errors
/// As [`check`]; [`Error::Output`] when writing fails.
pub fn write_file(
    output: &Path,
    inputs: &[&Path],
    overwrite: bool,
    write: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    check(output, inputs, overwrite, Kind::File)?;
    check_not_input(&crate::render::partial_path(output), inputs)?;
    write_atomically(output, write).map_err(|reason| Error::Output {
        path: output.to_owned(),
        reason,
    })
}

/// [`write_file`] with the bytes to write.
///
/// # Errors
/// As [`write_file`].
pub fn write_bytes(output: &Path, inputs: &[&Path], overwrite: bool, bytes: &[u8]) -> Result<()> {
    write_file(output, inputs, overwrite, |partial| {
        std::fs::write(partial, bytes).map_err(|e| e.to_string())
    })
}

/// Flushes a folder's entries (a rename into it) to disk. Some file
/// systems cannot sync a folder; the rename itself is done then.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with the film `reel.mkv` in it.
    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let film = dir.path().join("reel.mkv");
        std::fs::write(&film, b"the film").expect("writes");
        (dir, film)
    }

    fn is_input_refusal(r: Result<()>) -> bool {
        matches!(r, Err(Error::OutputIsInput { .. }))
    }

    #[test]
    fn the_input_itself_is_refused_even_with_overwrite() {
        let (_dir, film) = setup();
        let r = check(&film, &[&film], true, Kind::File);
        let message = r.as_ref().map_err(ToString::to_string).err();
        assert!(is_input_refusal(r), "{message:?}");
        let message = message.unwrap_or_default();
        assert!(message.contains("reel.mkv"), "{message}");
        assert!(message.contains("choose another output path"), "{message}");
    }

    #[test]
    fn a_dotdot_path_to_the_input_is_refused() {
        let (dir, film) = setup();
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let around = dir.path().join("sub").join("..").join("reel.mkv");
        assert!(is_input_refusal(check(&around, &[&film], true, Kind::File)));
        // And the other way round: the input given through `..`.
        assert!(is_input_refusal(check(&film, &[&around], true, Kind::File)));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_the_input_is_refused() {
        let (dir, film) = setup();
        let link = dir.path().join("link.mkv");
        std::os::unix::fs::symlink(&film, &link).expect("symlink");
        assert!(is_input_refusal(check(&link, &[&film], true, Kind::File)));
        // A folder reached through a link is still the input's folder.
        let dir_link = dir.path().join("films");
        std::os::unix::fs::symlink(dir.path(), &dir_link).expect("symlink");
        assert!(is_input_refusal(check(
            &dir_link,
            &[&film],
            true,
            Kind::Sequence
        )));
    }

    #[test]
    fn a_hard_link_to_the_input_is_refused() {
        let (dir, film) = setup();
        let link = dir.path().join("same.mkv");
        std::fs::hard_link(&film, &link).expect("hard link");
        assert!(is_input_refusal(check(&link, &[&film], true, Kind::File)));
    }

    #[test]
    fn the_inputs_folder_and_the_folders_above_are_refused() {
        let (dir, film) = setup();
        assert!(is_input_refusal(check(
            dir.path(),
            &[&film],
            true,
            Kind::Sequence
        )));
        let deep = dir.path().join("a").join("b");
        std::fs::create_dir_all(&deep).expect("mkdir");
        let inner = deep.join("reel.mkv");
        std::fs::write(&inner, b"x").expect("writes");
        assert!(is_input_refusal(check(
            &dir.path().join("a"),
            &[&inner],
            true,
            Kind::Sequence
        )));
        assert!(is_input_refusal(check(
            dir.path(),
            &[&inner],
            true,
            Kind::Sequence
        )));
        // A name inside the input's folder is fine; so is a sibling folder.
        assert!(check(&dir.path().join("out.mkv"), &[&film], false, Kind::File).is_ok());
        assert!(check(&dir.path().join("a2"), &[&inner], false, Kind::Sequence).is_ok());
    }

    #[test]
    fn a_path_whose_folder_is_an_input_is_refused() {
        let (dir, _film) = setup();
        let photos = dir.path().join("photos");
        std::fs::create_dir(&photos).expect("mkdir");
        let r = check(&photos.join("report.json"), &[&photos], true, Kind::File);
        assert!(is_input_refusal(r));
    }

    #[test]
    fn overwrite_decides_for_an_existing_file() {
        let (dir, film) = setup();
        let out = dir.path().join("report.json");
        assert!(check(&out, &[&film], false, Kind::File).is_ok(), "new");
        std::fs::write(&out, b"old").expect("writes");
        let r = check(&out, &[&film], false, Kind::File);
        let message = r.as_ref().map_err(ToString::to_string).err();
        assert!(matches!(r, Err(Error::OutputExists { .. })), "{message:?}");
        assert!(message.unwrap_or_default().contains("--overwrite"));
        assert!(check(&out, &[&film], true, Kind::File).is_ok());
        write_bytes(&out, &[&film], true, b"new").expect("replaced");
        assert_eq!(std::fs::read(&out).expect("reads"), b"new");
        assert!(
            !crate::render::partial_path(&out).exists(),
            "no temporary left"
        );
        assert!(matches!(
            write_bytes(&out, &[&film], false, b"newer"),
            Err(Error::OutputExists { .. })
        ));
        assert_eq!(std::fs::read(&out).expect("reads"), b"new", "kept");
    }

    #[test]
    fn a_folder_is_not_replaced_by_a_file() {
        let (dir, film) = setup();
        let out = dir.path().join("folder.mkv");
        std::fs::create_dir(&out).expect("mkdir");
        assert!(check(&out, &[&film], true, Kind::File).is_err());
    }

    #[test]
    fn only_a_folder_tincture_made_is_replaced() {
        let (dir, film) = setup();
        let out = dir.path().join("frames");
        std::fs::create_dir(&out).expect("mkdir");
        // Empty: used as it is, with or without --overwrite.
        assert!(check(&out, &[&film], false, Kind::Sequence).is_ok());
        std::fs::write(out.join("frame_000000.png"), b"x").expect("writes");
        assert!(matches!(
            check(&out, &[&film], false, Kind::Sequence),
            Err(Error::OutputExists { .. })
        ));
        // Frames without the marker: not Tincture's.
        let r = check(&out, &[&film], true, Kind::Sequence);
        let message = r.as_ref().map_err(ToString::to_string).err();
        assert!(
            matches!(r, Err(Error::NotTinctureFolder { .. })),
            "{message:?}"
        );
        assert!(
            message
                .unwrap_or_default()
                .contains("choose an empty or new folder")
        );
        std::fs::write(out.join(SEQUENCE_MARKER), b"").expect("writes");
        assert!(check(&out, &[&film], true, Kind::Sequence).is_ok());
        // Anything else in it: refused, and removal leaves everything.
        std::fs::write(out.join("notes.txt"), b"mine").expect("writes");
        assert!(matches!(
            check(&out, &[&film], true, Kind::Sequence),
            Err(Error::NotTinctureFolder { .. })
        ));
        assert!(remove_sequence_folder(&out).is_err());
        assert!(out.join("notes.txt").exists() && out.join("frame_000000.png").exists());
        std::fs::remove_file(out.join("notes.txt")).expect("removes");
        remove_sequence_folder(&out).expect("removes Tincture's folder");
        assert!(!out.exists());
    }

    #[test]
    fn replace_puts_a_sequence_in_place_of_tinctures_own() {
        let (dir, _film) = setup();
        let out = dir.path().join("frames");
        let partial = dir.path().join("frames.tincture-partial");
        for (folder, name) in [(&out, "frame_000000.png"), (&partial, "frame_000001.png")] {
            std::fs::create_dir(folder).expect("mkdir");
            std::fs::write(folder.join(SEQUENCE_MARKER), b"").expect("writes");
            std::fs::write(folder.join(name), b"x").expect("writes");
        }
        replace(&partial, &out, Kind::Sequence).expect("replaced");
        assert!(out.join("frame_000001.png").exists());
        assert!(!out.join("frame_000000.png").exists());
        assert!(!partial.exists());
    }
}
