//! Projects meet the film: fingerprints that notice a changed or moved
//! source, relinking, and the [`FilmPlan`] a project renders by.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::frame::RgbImage;
use tincture_core::look::{Look, Rolloff};
use tincture_core::project::{KeyframeReference, Project, ShotSettings, SourceRef, hex_to_rgb8};
use tincture_core::propagate::PropagationParams;
use tincture_core::transfer::{ReferenceColorizer, TransferSettings};
use tincture_media::VideoReader;

use crate::film::{FilmColorizer, FilmPlan, KeyColour, ShotPlan, StrokeHint};
use crate::{Error, Result};

/// Frames hashed into a source's fingerprint.
pub const FINGERPRINT_FRAMES: u64 = 3;

/// Size and fingerprint of a film file: the sha256 of the luma planes of
/// its first frames (decoded, so the same film remuxed keeps its
/// fingerprint; a different cut or grade does not).
///
/// # Errors
/// When the file cannot be read or decoded.
pub fn fingerprint(path: &Path) -> Result<(u64, String)> {
    fingerprint_and_count(path).map(|(size, digest, _)| (size, digest))
}

/// [`fingerprint`] and the film's frame count, from one opening of the file.
fn fingerprint_and_count(path: &Path) -> Result<(u64, String, u64)> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::Project {
            path: path.to_path_buf(),
            reason: format!("cannot read the film: {e}"),
        })?
        .len();
    let mut reader = VideoReader::open(path)?;
    let mut hasher = Sha256::new();
    for _ in 0..FINGERPRINT_FRAMES.min(reader.frame_count()) {
        let Some(f) = reader.next_frame()? else { break };
        let y = &f.frame.y;
        hasher.update((y.width as u64).to_le_bytes());
        hasher.update((y.height as u64).to_le_bytes());
        for v in &y.data {
            hasher.update(v.to_le_bytes());
        }
    }
    let digest = hasher.finalize();
    let hex = digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    });
    Ok((size, hex, reader.frame_count()))
}

/// A new project for the film at `path`, with its size, fingerprint,
/// length, geometry and rate filled in. `path` is stored as given.
///
/// # Errors
/// When the film cannot be read.
pub fn new_project(path: &Path) -> Result<Project> {
    let reader = VideoReader::open(path)?;
    let info = reader.info();
    let (size, fingerprint) = fingerprint(path)?;
    let (num, den) = parse_rate(&info.video.frame_rate_exact);
    Ok(Project::new(SourceRef {
        path: path.to_path_buf(),
        size,
        fingerprint,
        frame_count: reader.frame_count(),
        width: info.video.width,
        height: info.video.height,
        rate: [num, den],
    }))
}

/// Checks that `film` (or, without it, the film the project records) is
/// the one the project's work was done on, and returns its path. A film is
/// matched by the fingerprint of its first frames, so a moved or renamed
/// file is found again (relinked); a different film is refused. A file whose
/// first frames match but whose size changed (re-encoded, trimmed at the
/// end) is refused unless `accept_changed`.
///
/// # Errors
/// [`Error::Project`] naming the file, what differs and what to do.
pub fn check_source(
    project: &Project,
    project_path: &Path,
    film: Option<&Path>,
    accept_changed: bool,
) -> Result<PathBuf> {
    let recorded = project.resolve(project_path, &project.source.path);
    let candidate = film.map_or_else(|| recorded.clone(), Path::to_path_buf);
    let fail = |reason: String| Error::Project {
        path: project_path.to_path_buf(),
        reason,
    };
    if !candidate.exists() {
        return Err(fail(format!(
            "the film {} is not there (moved or renamed?); give its new path: it is accepted \
             when its first frames match the project's fingerprint",
            candidate.display()
        )));
    }
    let (size, digest, count) = fingerprint_and_count(&candidate)?;
    let src = &project.source;
    if !src.fingerprint.is_empty() && digest != src.fingerprint {
        return Err(fail(format!(
            "{} is not the film this project was made on ({}): its first {FINGERPRINT_FRAMES} \
             frames differ (fingerprint {} recorded, {} found); give the original film",
            candidate.display(),
            recorded.display(),
            short(&src.fingerprint),
            short(&digest)
        )));
    }
    if !accept_changed && src.size != 0 && size != src.size {
        return Err(fail(format!(
            "{} changed since the project was saved: it was {} bytes and is now {size}, though \
             its first frames match (re-encoded or trimmed?); check the film, then pass \
             --accept-changed to use it",
            candidate.display(),
            src.size,
        )));
    }
    if src.frame_count != 0 && count != src.frame_count && !accept_changed {
        return Err(fail(format!(
            "{} has {count} frames but the project was made on {} frames; check the film, \
             then pass --accept-changed to use it",
            candidate.display(),
            src.frame_count
        )));
    }
    Ok(candidate)
}

/// The film colorizer of a project, as `tincture-cli render --project` and
/// the GUI's export build it: the film (`film`, or the one the project
/// records) is matched by [`check_source`], the plan made by [`plan_of`],
/// and `prior` called to start the model only when a shot uses its prior.
///
/// # Errors
/// As [`check_source`] and [`plan_of`], or what `prior` returns.
pub fn film_colorizer<E: From<Error>>(
    project: &Project,
    project_path: &Path,
    film: Option<&Path>,
    accept_changed: bool,
    prior: impl FnOnce() -> std::result::Result<Box<dyn Colorizer>, E>,
) -> std::result::Result<FilmColorizer, E> {
    let film = check_source(project, project_path, film, accept_changed)?;
    let plan = plan_of(project, project_path, film)?;
    let prior = if plan.shots.iter().any(|s| s.model_prior) {
        Some(prior()?)
    } else {
        None
    };
    Ok(FilmColorizer::new(plan, prior))
}

/// Every file a render by `project` (saved at `project_path`) reads: the
/// project itself, its film, its reference photos and its keyframes'
/// pictures, resolved against the project's folder. A render's output may
/// be none of them ([`crate::output`]).
pub fn project_inputs(project: &Project, project_path: &Path) -> Vec<PathBuf> {
    let mut inputs = vec![
        project_path.to_owned(),
        project.resolve(project_path, &project.source.path),
    ];
    inputs.extend(
        project
            .references
            .iter()
            .map(|r| project.resolve(project_path, &r.path)),
    );
    inputs.extend(project.keyframes.iter().filter_map(|k| {
        k.reference
            .as_ref()
            .map(|KeyframeReference::Image { path }| project.resolve(project_path, path))
    }));
    inputs
}

/// `"24000/1001"` as `(24000, 1001)`; `(0, 0)` when unreadable.
fn parse_rate(text: &str) -> (u32, u32) {
    let mut parts = text.split(['/', ':']);
    let num = parts.next().and_then(|n| n.trim().parse().ok());
    let den = parts.next().map_or(Some(1), |d| d.trim().parse().ok());
    match (num, den) {
        (Some(n), Some(d)) => (n, d),
        _ => (0, 0),
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn load_rgb(path: &Path, what: &str) -> Result<RgbImage> {
    let img = image::open(path).map_err(|e| Error::Reference {
        path: path.to_path_buf(),
        reason: format!("cannot read the {what}: {e}; give a PNG, JPEG or TIFF picture"),
    })?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// A shot's model as the registry takes it: a model file relative to the
/// project's folder made absolute, checked to exist; a name checked to be
/// known.
fn shot_model(
    spec: &str,
    project: &Project,
    project_path: &Path,
) -> std::result::Result<String, String> {
    let registry = tincture_infer::ModelRegistry::standard();
    let is_file = Path::new(spec)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("onnx"));
    if is_file {
        let path = project.resolve(project_path, Path::new(spec));
        if !path.is_file() {
            return Err(format!("the model file {} does not exist", path.display()));
        }
        return Ok(path.to_string_lossy().into_owned());
    }
    registry.resolve(spec).map_err(|e| e.to_string())?;
    Ok(spec.to_owned())
}

fn look_of(s: &ShotSettings) -> Look {
    let r = |r: tincture_core::project::Rolloff| Rolloff {
        threshold: r.threshold,
        width: r.width,
        enabled: r.enabled,
    };
    Look {
        saturation: s.saturation,
        shadows: r(s.shadow_rolloff),
        highlights: r(s.highlight_rolloff),
    }
}

/// The render plan of a project: shots with their looks, keyframes with
/// their strokes and references (loaded), reference photos (loaded and
/// checked to carry colour).
///
/// # Errors
/// An invalid project, or a reference that cannot be read or is gray.
pub fn plan_of(project: &Project, project_path: &Path, source: PathBuf) -> Result<FilmPlan> {
    project.validate().map_err(|e| Error::Project {
        path: project_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let src = &project.source;
    let last = src.frame_count.saturating_sub(1);
    let shots: Vec<ShotPlan> = if project.shots.is_empty() {
        vec![(0, last, &project.defaults)]
    } else {
        project
            .shots
            .iter()
            .map(|s| {
                (
                    s.start,
                    s.end,
                    s.settings.as_ref().unwrap_or(&project.defaults),
                )
            })
            .collect()
    }
    .into_iter()
    .enumerate()
    .map(|(i, (start, end, settings))| ShotPlan {
        start,
        end,
        look: look_of(settings),
        stabiliser: settings.stabiliser,
        model_prior: settings.model_prior,
        render_short_side: settings.render_short_side,
        model: settings.model.clone(),
        memory: settings.colour_memory,
        references: project
            .references
            .iter()
            .enumerate()
            .filter(|(_, r)| r.applies_to(i))
            .map(|(k, _)| k)
            .collect(),
    })
    .collect();
    let mut shots = shots;
    for (i, shot) in shots.iter_mut().enumerate() {
        if let (true, Some(spec)) = (shot.model_prior, shot.model.clone()) {
            // Said now, not mid-render: a shot's model that cannot be found.
            let resolved = shot_model(&spec, project, project_path).map_err(|reason| {
                Error::Project {
                    path: project_path.to_path_buf(),
                    reason: format!(
                        "shot {} (frames {}–{}): {reason}; choose another model for it in Properties",
                        i + 1,
                        shot.start,
                        shot.end
                    ),
                }
            })?;
            shot.model = Some(resolved);
        }
    }
    let mut references = Vec::new();
    for r in &project.references {
        let path = project.resolve(project_path, &r.path);
        let img = load_rgb(&path, "reference photo")?;
        // A gray photo has no colour to give: say so now, not mid-render.
        ReferenceColorizer::new(&img, Matrix::Bt709, TransferSettings::default()).map_err(|e| {
            Error::Reference {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        references.push(img);
    }
    let mut keys = BTreeMap::new();
    for k in &project.keyframes {
        let strokes = k
            .strokes
            .iter()
            .filter_map(|s| {
                Some(StrokeHint {
                    points: s.points.clone(),
                    rgb: hex_to_rgb8(&s.color)?,
                    size: s.size,
                })
            })
            .collect();
        let reference = match &k.reference {
            Some(KeyframeReference::Image { path }) => {
                let path = project.resolve(project_path, path);
                Some(load_rgb(
                    &path,
                    &format!("reference of keyframe {}", k.frame),
                )?)
            }
            None => None,
        };
        keys.insert(k.frame, KeyColour::Steered { strokes, reference });
    }
    let wants_memory = shots.iter().any(|s| s.memory);
    Ok(FilmPlan {
        source,
        frame_count: src.frame_count,
        shots,
        keys,
        references,
        reference_weights: project.references.iter().map(|r| r.weight).collect(),
        params: PropagationParams {
            // Kept when a shot asks for it; each shot says whether it is matched.
            memory: wants_memory.then(tincture_core::memory::MemoryParams::default),
            ..PropagationParams::default()
        },
    })
}
