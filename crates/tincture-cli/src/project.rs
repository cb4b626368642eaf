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
    /// Find where a project's colour comes from weak sources (the model alone, unsure colour-memory
    /// matches) and suggest, shot by shot, the frames where one more keyframe would help most. Each
    /// shot is coloured as a render would, at a reduced size (at most 480 pixels wide).
    Suggest {
        /// The project.
        project: PathBuf,
        /// Only the shots that overlap these frames, `A-B` (inclusive).
        #[arg(long, value_name = "A-B")]
        frames: Option<String>,
        /// Run the model on the CPU even when an accelerator is present.
        #[arg(long)]
        cpu: bool,
        /// Also write each shot's per-frame weak shares and suggestions as JSON.
        #[arg(long, value_name = "OUT.json")]
        json: Option<PathBuf>,
        /// Replace the --json file if it exists.
        #[arg(long)]
        overwrite: bool,
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
        ProjectCommand::Suggest {
            project,
            frames,
            cpu,
            json,
            overwrite,
        } => suggest(
            project,
            frames.as_deref(),
            *cpu,
            json.as_deref(),
            *overwrite,
        ),
    }
}

/// One shot's scan in `project suggest --json`.
#[derive(serde::Serialize)]
struct ShotScan {
    start: u64,
    end: u64,
    weak_share: Vec<f32>,
    suggested_keyframes: Vec<tincture_engine::analysis::weak::Suggestion>,
}

/// `project suggest`: scans the shots, prints each one's weak share and
/// suggestions, and writes them as JSON when asked.
fn suggest(
    path: &Path,
    frames: Option<&str>,
    cpu: bool,
    json: Option<&Path>,
    overwrite: bool,
) -> Result<u8, Failure> {
    use std::sync::atomic::AtomicBool;
    use tincture_engine::analysis::weak;

    let p = Project::load(path).map_err(input)?;
    let film = check_source(&p, path, None, false)?;
    let outputs = json.map(|out| {
        let o = Outputs::new([film.as_path(), path], overwrite);
        o.check(out).map(|()| o)
    });
    let outputs = outputs.transpose()?;
    let count = p.source.frame_count;
    let range = match frames {
        Some(text) => crate::parse_frames(text, count).map_err(|reason| Failure {
            code: 2,
            message: format!("--frames {text}: {}: {reason}", film.display()),
        })?,
        None => (0, count.saturating_sub(1)),
    };
    let plan = tincture_engine::project::plan_of(&p, path, film.clone())?;
    let wants_model = plan.shots.iter().any(|s| s.model_prior);
    let prior: Option<Box<dyn tincture_core::colorize::Colorizer>> = if wants_model {
        let args = crate::ModelArgs {
            cpu,
            ..crate::ModelArgs::default()
        };
        Some(Box::new(crate::start_worker(&args)?))
    } else {
        None
    };
    let shots: Vec<(u64, u64)> = plan
        .shots
        .iter()
        .map(|s| (s.start, s.end))
        .filter(|&(a, b)| b >= range.0 && a <= range.1)
        .collect();
    let (Some(&(first, _)), Some(&(_, last))) = (shots.first(), shots.last()) else {
        return Ok(0);
    };
    // Whole shots, each from its own start, as a render colours them.
    let mut shares = Vec::new();
    let bar = crate::metrics::progress(last - first + 1);
    weak::scan(
        plan,
        prior,
        (first, last),
        &AtomicBool::new(false),
        |_, w| {
            shares.push(w);
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    let keys: Vec<u64> = p.keyframes.iter().map(|k| k.frame).collect();
    let mut scans = Vec::new();
    for (start, end) in shots {
        let Some(own) = shares.get((start - first) as usize..=(end - first) as usize) else {
            continue;
        };
        let suggested = weak::suggestions(own, start, &keys);
        let mean = own.iter().sum::<f32>() / own.len().max(1) as f32;
        println!(
            "shot {start}-{end}: {:.1}% of the colour from weak sources; {}",
            100.0 * mean,
            if suggested.is_empty() {
                "no keyframe suggested".to_owned()
            } else {
                format!(
                    "suggested keyframes: {}",
                    suggested
                        .iter()
                        .map(|s| format!("{} (gain {:.1})", s.frame, s.gain))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        scans.push(ShotScan {
            start,
            end,
            weak_share: own.to_vec(),
            suggested_keyframes: suggested,
        });
    }
    if let (Some(out), Some(outputs)) = (json, outputs) {
        let text = serde_json::to_string_pretty(&scans).map_err(output)?;
        outputs.write_text(out, &text)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(0)
}
