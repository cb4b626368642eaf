//! Planning a farm render: the film is cut into chunks, and a job bundle
//! is written for an engine that exists (Open Job Description, Slurm).
//!
//! Chunk boundaries fall on shot boundaries wherever a shot fits a chunk:
//! consecutive whole shots are packed into a chunk up to its size, so no
//! chunk replays a shot from its start. A shot longer than a chunk is cut
//! into near-equal pieces, a *stretch*: its chunks share a `--chunk-state`
//! folder and must run in order (each continues from the state the one
//! before it left), so the plan gives each chunk the chunk it runs
//! `after` and a `pass`: pass 1 holds every chunk that depends on none, pass
//! 2 the second chunk of each stretch, and so on. An engine runs the chunks
//! of one pass in parallel and the passes one after another.
//!
//! The bundle (`OUTDIR/`): `job.json` (the chunks and settings, read back
//! by `tincture-cli farm render` and `farm join`), `project.json` (a copy
//! of the project, whose sha256 the render step checks the project against),
//! and `job.template.json` (OpenJD, spec 2023-09) or `submit.sh` with
//! `render.sbatch` and `join.sbatch` (Slurm job arrays with `afterok`
//! dependencies). Chunks are written to `OUTDIR/chunks/`, their state to
//! `OUTDIR/state/`, the joined output to `OUTDIR/`.

use std::path::{Path, PathBuf};

use super::{farm_error, sha256_file};
use crate::output;
use crate::{Error, Result};

/// One chunk of a plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedChunk {
    /// Its number, from 0 in frame order.
    pub id: usize,
    /// Its source frames, inclusive.
    pub frames: [u64; 2],
    /// The shot it is part of when it is one piece of a shot cut into
    /// several (a stretch); `None` for chunks of whole shots.
    pub stretch: Option<usize>,
    /// The chunk that must complete before it (the piece of the same shot
    /// before it).
    pub after: Option<usize>,
    /// Which pass it runs in, from 1: one more than the chunk it runs after.
    pub pass: usize,
}

/// Cuts a film of `count` frames whose shots are `shots` (inclusive
/// ranges, in order, covering the film; empty for one shot) into chunks of
/// at most `chunk_frames` frames (see the module docs).
pub fn chunk_film(count: u64, shots: &[(u64, u64)], chunk_frames: u64) -> Vec<PlannedChunk> {
    let size = chunk_frames.max(1);
    let whole = [(0, count.saturating_sub(1))];
    let shots = if shots.is_empty() { &whole[..] } else { shots };
    let mut chunks: Vec<PlannedChunk> = Vec::new();
    // Whole shots gathered for the chunk being filled.
    let mut open: Option<(u64, u64)> = None;
    let close = |open: &mut Option<(u64, u64)>, chunks: &mut Vec<PlannedChunk>| {
        if let Some((a, b)) = open.take() {
            chunks.push(PlannedChunk {
                id: chunks.len(),
                frames: [a, b],
                stretch: None,
                after: None,
                pass: 1,
            });
        }
    };
    for (s, &(a, b)) in shots.iter().enumerate() {
        if count == 0 || a > b {
            continue;
        }
        let len = b - a + 1;
        if len > size {
            close(&mut open, &mut chunks);
            let pieces = len.div_ceil(size);
            for k in 0..pieces {
                let start = a + len * k / pieces;
                let end = a + len * (k + 1) / pieces - 1;
                let after = (k > 0).then(|| chunks.len() - 1);
                chunks.push(PlannedChunk {
                    id: chunks.len(),
                    frames: [start, end],
                    stretch: Some(s),
                    after,
                    pass: k as usize + 1,
                });
            }
            continue;
        }
        open = match open {
            Some((start, _)) if b - start < size => Some((start, b)),
            Some(_) => {
                close(&mut open, &mut chunks);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    close(&mut open, &mut chunks);
    chunks
}

/// The engine a bundle is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Open Job Description (`openjd run`, AWS Deadline Cloud).
    Openjd,
    /// Slurm (`sbatch` job arrays).
    Slurm,
}

/// How big the chunks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkSize {
    /// About this many chunks.
    Count(u64),
    /// At most this many frames a chunk.
    Frames(u64),
}

/// What to plan.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The source film.
    pub film: PathBuf,
    /// The project.
    pub project: PathBuf,
    /// The bundle folder (created; it must be new or empty).
    pub bundle: PathBuf,
    /// The chunks' format: `ffv1`, `prores`, `png` or `tiff`.
    pub format: String,
    /// The chunk size.
    pub size: ChunkSize,
    /// The engine.
    pub engine: Engine,
    /// The `tincture-cli` the jobs run.
    pub cli: PathBuf,
}

/// The plan a bundle holds (`job.json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobPlan {
    /// The Tincture version that planned it.
    pub tincture_version: String,
    /// The source film (absolute).
    pub film: PathBuf,
    /// The project the chunks render (absolute).
    pub project: PathBuf,
    /// `sha256:HEX` of the project when planned (its copy is `project.json`).
    pub project_sha256: String,
    /// The chunks' format.
    pub format: String,
    /// Frames in the film.
    pub frames: u64,
    /// The engine.
    pub engine: Engine,
    /// The `tincture-cli` the jobs run.
    pub cli: PathBuf,
    /// The chunks, in frame order.
    pub chunks: Vec<PlannedChunk>,
}

/// The file name of `job.json` in a bundle.
pub const JOB_FILE: &str = "job.json";

impl JobPlan {
    /// Reads a bundle's `job.json`.
    ///
    /// # Errors
    /// [`Error::Farm`] naming the file.
    pub fn load(bundle: &Path) -> Result<Self> {
        let path = bundle.join(JOB_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            farm_error(
                &path,
                format!("cannot be read ({e}); is it a bundle of tincture-cli farm plan?"),
            )
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| farm_error(&path, format!("cannot be read: {e}")))
    }

    /// The output's file extension (none for sequences).
    pub fn extension(&self) -> Option<&'static str> {
        match self.format.as_str() {
            "ffv1" => Some("mkv"),
            "prores" => Some("mov"),
            _ => None,
        }
    }

    fn with_ext(&self, stem: String) -> String {
        match self.extension() {
            Some(ext) => format!("{stem}.{ext}"),
            None => stem,
        }
    }

    /// Where chunk `id` is written, in `bundle`.
    pub fn chunk_output(&self, bundle: &Path, id: usize) -> PathBuf {
        bundle
            .join("chunks")
            .join(self.with_ext(format!("chunk-{id:04}")))
    }

    /// The `--chunk-state` folder of chunk `id` (one per stretch; chunks of
    /// whole shots get one of their own, harmless and unshared).
    pub fn chunk_state(&self, bundle: &Path, id: usize) -> PathBuf {
        let name = match self.chunks.get(id).and_then(|c| c.stretch) {
            Some(s) => format!("shot-{s:04}"),
            None => format!("chunk-{id:04}"),
        };
        bundle.join("state").join(name)
    }

    /// The joined output, in `bundle`.
    pub fn joined_output(&self, bundle: &Path) -> PathBuf {
        let stem = self
            .film
            .file_stem()
            .map_or_else(|| "film".to_owned(), |s| s.to_string_lossy().into_owned());
        bundle.join(self.with_ext(format!("{stem}.colour")))
    }

    /// The chunks of pass `pass`, in order.
    pub fn pass(&self, pass: usize) -> Vec<&PlannedChunk> {
        self.chunks.iter().filter(|c| c.pass == pass).collect()
    }

    /// How many passes the plan has.
    pub fn passes(&self) -> usize {
        self.chunks.iter().map(|c| c.pass).max().unwrap_or(0)
    }

    /// Whether the format keeps luma bit for bit, so `verify` applies.
    pub fn verifiable(&self) -> bool {
        self.format != "prores"
    }
}

/// Plans `req` and writes its bundle; `shots` are the project's shots
/// (inclusive ranges) and `count` the film's frames.
///
/// # Errors
/// [`Error::Farm`] for a bundle folder that is not empty; the output
/// checks of [`crate::output`]; [`Error::Output`] when a file cannot be
/// written.
pub fn write_bundle(req: &PlanRequest, count: u64, shots: &[(u64, u64)]) -> Result<JobPlan> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let bundle = absolute(&req.bundle);
    let film = absolute(&req.film);
    let project = absolute(&req.project);
    let inputs = [film.as_path(), project.as_path()];
    output::check_not_input(&bundle, &inputs)?;
    if bundle.exists()
        && std::fs::read_dir(&bundle)
            .map_err(|e| farm_error(&bundle, e.to_string()))?
            .next()
            .is_some()
    {
        return Err(farm_error(
            &bundle,
            "the folder is not empty; plan into a new or empty folder",
        ));
    }
    let chunk_frames = match req.size {
        ChunkSize::Frames(f) => f.max(1),
        ChunkSize::Count(n) => count.div_ceil(n.max(1)).max(1),
    };
    let plan = JobPlan {
        tincture_version: crate::VERSION.into(),
        film: film.clone(),
        project: project.clone(),
        project_sha256: sha256_file(&project)?,
        format: req.format.clone(),
        frames: count,
        engine: req.engine,
        cli: absolute(&req.cli),
        chunks: chunk_film(count, shots, chunk_frames),
    };
    let made = |e: std::io::Error, p: &Path| Error::Output {
        path: p.to_owned(),
        reason: e.to_string(),
    };
    for dir in [bundle.clone(), bundle.join("chunks"), bundle.join("state")] {
        std::fs::create_dir_all(&dir).map_err(|e| made(e, &dir))?;
    }
    let write = |name: &str, text: &str| -> Result<()> {
        output::write_bytes(&bundle.join(name), &inputs, false, text.as_bytes())
    };
    let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let project_copy = std::fs::read(&project).map_err(|e| made(e, &project))?;
    output::write_bytes(&bundle.join("project.json"), &inputs, false, &project_copy)?;
    write(
        JOB_FILE,
        &serde_json::to_string_pretty(&plan)
            .map_err(|e| made(std::io::Error::other(e), &bundle))?,
    )?;
    match req.engine {
        Engine::Openjd => write("job.template.json", &json(&openjd_template(&plan, &bundle)))?,
        Engine::Slurm => {
            for (name, text) in slurm_scripts(&plan, &bundle) {
                write(name, &text)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let path = bundle.join(name);
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| made(e, &path))?;
                }
            }
        }
    }
    Ok(plan)
}

/// The OpenJD job template (spec 2023-09): a render step per pass, each a
/// parameter space over its chunks and depending on the pass before; a
/// join step depending on every render step; a verify step after it.
pub fn openjd_template(plan: &JobPlan, bundle: &Path) -> serde_json::Value {
    use serde_json::json;
    let cli = "{{Param.Cli}}";
    let bundle_param = "{{Param.Bundle}}";
    let run =
        |args: Vec<String>| json!({ "actions": { "onRun": { "command": cli, "args": args } } });
    let mut steps = Vec::new();
    let mut renders = Vec::new();
    for pass in 1..=plan.passes() {
        let ids: Vec<usize> = plan.pass(pass).iter().map(|c| c.id).collect();
        let name = format!("render-pass-{pass}");
        let mut step = json!({
            "name": name,
            "parameterSpace": {
                "taskParameterDefinitions": [{ "name": "Chunk", "type": "INT", "range": ids }]
            },
            "script": run(vec![
                "farm".into(), "render".into(), bundle_param.into(),
                "--chunk".into(), "{{Task.Param.Chunk}}".into(),
            ]),
        });
        if pass > 1 {
            step["dependencies"] = json!([{ "dependsOn": format!("render-pass-{}", pass - 1) }]);
        }
        steps.push(step);
        renders.push(json!({ "dependsOn": name }));
    }
    steps.push(json!({
        "name": "join",
        "dependencies": renders,
        "script": run(vec!["farm".into(), "join".into(), bundle_param.into()]),
    }));
    if plan.verifiable() {
        let out = plan.joined_output(bundle);
        steps.push(json!({
            "name": "verify",
            "dependencies": [{ "dependsOn": "join" }],
            "script": run(vec![
                "verify".into(), out.to_string_lossy().into_owned(),
                "--source".into(), plan.film.to_string_lossy().into_owned(),
            ]),
        }));
    }
    let stem = plan
        .film
        .file_stem()
        .map_or_else(|| "film".to_owned(), |s| s.to_string_lossy().into_owned());
    json!({
        "specificationVersion": "jobtemplate-2023-09",
        "name": format!("Tincture {stem}"),
        "parameterDefinitions": [
            { "name": "Cli", "type": "STRING", "default": plan.cli.to_string_lossy() },
            // OpenJD joins a relative default to the template's folder: the bundle.
            { "name": "Bundle", "type": "PATH", "default": "." },
        ],
        "steps": steps,
    })
}

/// Quotes `s` for a POSIX shell.
fn sh(s: &Path) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// Quotes `s` for an `#SBATCH` line: sbatch splits those on white space
/// unless it is inside double quotes (a bundle path with a space was read
/// as a second, invalid, directive).
fn sbatch_quoted(s: &Path) -> String {
    format!("\"{}\"", s.to_string_lossy())
}

/// The Slurm scripts: `render.sbatch` (one array task a chunk of a pass),
/// `join.sbatch` (join, then verify) and `submit.sh`, which submits a job
/// array per pass, each `afterok` the one before, and the join `afterok`
/// all of them.
pub fn slurm_scripts(plan: &JobPlan, bundle: &Path) -> Vec<(&'static str, String)> {
    let cli = sh(&plan.cli);
    let b = sh(bundle);
    let render = format!(
        "#!/bin/sh\n#SBATCH --job-name=tincture-render\n#SBATCH --cpus-per-task=2\n#SBATCH --output={}\n# $1: the pass; the array index picks the chunk within it.\nexec {cli} farm render {b} --pass \"$1\" --index \"$SLURM_ARRAY_TASK_ID\"\n",
        sbatch_quoted(&bundle.join("logs/render-%A_%a.log"))
    );
    let verify = if plan.verifiable() {
        format!(
            "{cli} verify {} --source {}\n",
            sh(&plan.joined_output(bundle)),
            sh(&plan.film)
        )
    } else {
        String::new()
    };
    let join = format!(
        "#!/bin/sh\n#SBATCH --job-name=tincture-join\n#SBATCH --output={}\nset -e\n{cli} farm join {b}\n{verify}",
        sbatch_quoted(&bundle.join("logs/join-%j.log"))
    );
    let mut submit = format!(
        "#!/bin/sh\n# Submits the render passes as job arrays and the join after them.\nset -e\ncd {b}\nmkdir -p logs\nafter=\"\"\nall=\"\"\n"
    );
    for pass in 1..=plan.passes() {
        let n = plan.pass(pass).len();
        submit.push_str(&format!(
            "id=$(sbatch --parsable ${{after:+--dependency=afterok:$after}} --array=0-{} render.sbatch {pass})\nafter=\"$id\"\nall=\"${{all:+$all:}}$id\"\n",
            n - 1
        ));
    }
    submit.push_str("sbatch --parsable --dependency=afterok:$all join.sbatch\n");
    vec![
        ("render.sbatch", render),
        ("join.sbatch", join),
        ("submit.sh", submit),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(chunks: &[PlannedChunk]) -> Vec<[u64; 2]> {
        chunks.iter().map(|c| c.frames).collect()
    }

    #[test]
    fn short_shots_are_packed_whole_and_boundaries_fall_on_cuts() {
        let shots = [(0, 9), (10, 29), (30, 34), (35, 59), (60, 99)];
        let chunks = chunk_film(100, &shots, 40);
        assert_eq!(ranges(&chunks), vec![[0, 34], [35, 59], [60, 99]]);
        assert!(chunks.iter().all(|c| c.after.is_none() && c.pass == 1));
        for c in &chunks {
            assert!(
                shots.iter().any(|s| s.0 == c.frames[0]),
                "{c:?} starts on a cut"
            );
            assert!(
                shots.iter().any(|s| s.1 == c.frames[1]),
                "{c:?} ends on a cut"
            );
        }
    }

    #[test]
    fn a_long_shot_is_split_into_a_chain_that_runs_in_order() {
        let shots = [(0, 9), (10, 109), (110, 119)];
        let chunks = chunk_film(120, &shots, 30);
        assert_eq!(
            ranges(&chunks),
            vec![[0, 9], [10, 34], [35, 59], [60, 84], [85, 109], [110, 119]]
        );
        let long: Vec<_> = chunks.iter().filter(|c| c.stretch == Some(1)).collect();
        assert_eq!(long.len(), 4);
        assert_eq!(long[0].after, None);
        for w in long.windows(2) {
            assert_eq!(
                w[1].after,
                Some(w[0].id),
                "each piece runs after the one before"
            );
            assert_eq!(w[1].pass, w[0].pass + 1);
        }
        assert_eq!(chunks[0].pass, 1);
        assert_eq!(
            chunks[5].pass, 1,
            "other shots do not wait for the long one"
        );
    }

    #[test]
    fn chunks_cover_every_frame_once_whatever_the_size() {
        let shots = [(0, 0), (1, 57), (58, 60), (61, 199), (200, 200), (201, 240)];
        for size in [1, 2, 7, 30, 60, 100, 241, 1000] {
            let chunks = chunk_film(241, &shots, size);
            let mut next = 0;
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(c.id, i);
                assert_eq!(c.frames[0], next, "size {size}: contiguous");
                assert!(c.frames[1] - c.frames[0] < size, "size {size}: {c:?} fits");
                if let Some(a) = c.after {
                    assert_eq!(chunks[a].frames[1] + 1, c.frames[0]);
                    assert_eq!(chunks[a].stretch, c.stretch);
                }
                next = c.frames[1] + 1;
            }
            assert_eq!(next, 241, "size {size}: covers the film");
        }
        // No shots recorded: the film is one shot.
        assert_eq!(
            ranges(&chunk_film(10, &[], 4)),
            vec![[0, 2], [3, 5], [6, 9]]
        );
    }

    #[test]
    fn slurm_scripts_quote_a_bundle_path_with_spaces() {
        let plan = JobPlan {
            tincture_version: "0".into(),
            film: "/films/reel one.mkv".into(),
            project: "/films/p.json".into(),
            project_sha256: "sha256:0".into(),
            format: "ffv1".into(),
            frames: 48,
            engine: Engine::Slurm,
            cli: "/opt/tincture cli".into(),
            chunks: chunk_film(48, &[(0, 23), (24, 47)], 12),
        };
        let scripts = slurm_scripts(&plan, Path::new("/jobs/reel one"));
        let text = |name: &str| {
            scripts
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.clone())
                .expect(name)
        };
        // sbatch reads an unquoted `#SBATCH` value only up to a space.
        assert!(
            text("render.sbatch")
                .contains("#SBATCH --output=\"/jobs/reel one/logs/render-%A_%a.log\"\n")
        );
        assert!(
            text("join.sbatch").contains("#SBATCH --output=\"/jobs/reel one/logs/join-%j.log\"\n")
        );
        assert!(
            text("render.sbatch").contains("exec '/opt/tincture cli' farm render '/jobs/reel one'")
        );
        assert!(text("submit.sh").contains("cd '/jobs/reel one'\n"));
        // Two passes, the second after the first, the join after both.
        let submit = text("submit.sh");
        assert_eq!(submit.matches("--array=0-1 render.sbatch").count(), 2);
        assert!(submit.ends_with("--dependency=afterok:$all join.sbatch\n"));
    }
}
