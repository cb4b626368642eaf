//! `project`: create a project for a film, check it, relink it to a moved
//! film. Projects are JSON ([`tincture_core::project`]), saved atomically.

use std::path::{Path, PathBuf};

use tincture_core::project::{Project, ShotEntry};
use tincture_core::shots::Shot;
use tincture_engine::project::{check_source, new_project};

use crate::Failure;
use crate::outputs::Outputs;

/// What `project` does.
#[derive(clap::Subcommand)]
pub enum ProjectCommand {
    /// Create a project for a film: its size, length, geometry, rate and the fingerprint of its
    /// first frames are recorded, so a changed or moved film is noticed later.
    New {
        /// The film.
        film: PathBuf,
        /// The project file to write.
        #[arg(short, long, value_name = "P.json")]
        output: PathBuf,
        /// Replace the project if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Check a project: its contents, and that its film is there and unchanged.
    Check {
        /// The project.
        project: PathBuf,
        /// Check against this film instead of the one the project records.
        #[arg(long, value_name = "PATH")]
        film: Option<PathBuf>,
    },
    /// Point a project at its film's new location. The film is accepted when its first frames
    /// match the project's fingerprint.
    Relink {
        /// The project.
        project: PathBuf,
        /// Where the film is now.
        film: PathBuf,
        /// Also accept a film whose size or length changed (its first frames must still match).
        #[arg(long)]
        accept_changed: bool,
    },
}

fn input(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 3,
        message: e.to_string(),
    }
}

fn output(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 4,
        message: e.to_string(),
    }
}

/// Loads the project at `path` and checks that `film` is its film.
///
/// # Errors
/// Exit code 3 naming what is wrong.
pub fn load_for(path: &Path, film: &Path) -> Result<Project, Failure> {
    let project = Project::load(path).map_err(input)?;
    check_source(&project, path, Some(film), false)?;
    Ok(project)
}

/// Replaces the project's shot list.
pub fn set_shots(project: &mut Project, shots: &[Shot]) {
    project.shots = shots
        .iter()
        .map(|s| ShotEntry {
            start: s.start,
            end: s.end,
            settings: project
                .shots
                .iter()
                .find(|old| old.start == s.start && old.end == s.end)
                .and_then(|old| old.settings.clone()),
        })
        .collect();
}

/// `project`: returns the exit code.
///
/// # Errors
/// 3 for a project or film that cannot be used, 4 when the project cannot
/// be written (an existing one without --overwrite, or the film itself).
pub fn project_cmd(command: &ProjectCommand) -> Result<u8, Failure> {
    match command {
        ProjectCommand::New {
            film,
            output: out,
            overwrite,
        } => {
            let outputs = Outputs::new([film.as_path()], *overwrite);
            outputs.check(out)?;
            let project = new_project(film)?;
            // Checked again and saved atomically (flushed, renamed into place).
            outputs.check(out)?;
            project.save(out).map_err(output)?;
            let s = &project.source;
            eprintln!(
                "wrote {} for {} ({} frames, {}x{}, fingerprint {})",
                out.display(),
                film.display(),
                s.frame_count,
                s.width,
                s.height,
                s.fingerprint.get(..12).unwrap_or(&s.fingerprint)
            );
            Ok(0)
        }
        ProjectCommand::Check { project, film } => {
            let p = Project::load(project).map_err(input)?;
            let path = check_source(&p, project, film.as_deref(), false)?;
            println!(
                "{}: valid; film {} matches ({} frames, {} shots, {} keyframes, {} reference photos)",
                project.display(),
                path.display(),
                p.source.frame_count,
                p.shots.len().max(1),
                p.keyframes.len(),
                p.references.len()
            );
            Ok(0)
        }
        ProjectCommand::Relink {
            project,
            film,
            accept_changed,
        } => {
            let mut p = Project::load_unvalidated(project).map_err(input)?;
            check_source(&p, project, Some(film), *accept_changed)?;
            let fresh = new_project(film)?;
            p.source.path = std::path::absolute(film).unwrap_or_else(|_| film.clone());
            p.source.size = fresh.source.size;
            p.source.frame_count = fresh.source.frame_count;
            p.save(project).map_err(output)?;
            eprintln!(
                "{} now points at {}",
                project.display(),
                p.source.path.display()
            );
            Ok(0)
        }
    }
}
