//! Tincture's link to ONNX Runtime (through `ort`, loaded dynamically).
//!
//! The runtime is a shared library that `make run`/`make test` fetch into
//! the project's `third_party/onnxruntime/` and `make install` puts in
//! `PREFIX/lib/tincture/`. [`find_runtime`] looks for it beside the
//! executable, in its install folders and in the checkout it was built in,
//! then at `ORT_DYLIB_PATH`, then in the system library folders; never in
//! the current folder or its ancestors (a film's folder could hold any
//! library). [`load_runtime`] loads it once per process and reports clearly
//! when it is missing, instead of panicking.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod colorizer;
pub mod error;
pub mod hints;
pub mod manifest;
pub mod model;
pub mod onnx_writer;
pub mod registry;
pub mod worker;

pub use colorizer::{HintSpread, NeuralColorizer, RenderSettings, SolverSpread, SolverSpreadMode};
pub use error::{Error, Result};
pub use hints::{Hint, Hints};
pub use manifest::{AdapterKind, Manifest};
pub use model::{ExecutionChoice, Model, ModelInput};
pub use registry::{ModelRegistry, ModelSource};
pub use worker::{InferenceWorker, Job, WorkerEvent};

/// Where a runtime library was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeSource {
    /// Tincture's own folders: beside the executable, its install folder
    /// (`PREFIX/lib/tincture`), or the checkout's `third_party/onnxruntime`.
    Project,
    /// The `ORT_DYLIB_PATH` environment variable.
    Environment,
    /// A system library folder.
    System,
}

/// A loaded runtime.
#[derive(Clone, Debug)]
pub struct RuntimeInfo {
    /// The library file.
    pub path: PathBuf,
    /// How it was found.
    pub source: RuntimeSource,
    /// Its version, from the file name when it carries one.
    pub version: String,
}

const LIB_PREFIX: &str = "libonnxruntime.so";

/// The first `libonnxruntime.so*` file in `dir` (newest version by name).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(LIB_PREFIX))
        })
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The folder of the running executable.
fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
}

/// Tincture's own folders to search for the runtime (see [`shipped_dirs`]).
pub fn project_dirs() -> Vec<PathBuf> {
    shipped_dirs(
        &[
            Path::new("."),
            &Path::new("..").join("lib").join("tincture"),
        ],
        &Path::new("third_party").join("onnxruntime"),
    )
}

/// Where Tincture looks for what it ships beside itself (the runtime, the
/// built-in model), nearest first, without repeats: each of `installed`
/// taken from the executable's folder (an install puts the binaries in
/// `PREFIX/bin` and the rest in `PREFIX/lib/tincture` and
/// `PREFIX/share/tincture`), then `in_checkout` in each ancestor of the
/// executable's folder (a build in `target/` of a checkout) and in the
/// checkout it was built from. Never the current folder: a user works in
/// folders that could hold anything.
pub fn shipped_dirs(installed: &[&Path], in_checkout: &Path) -> Vec<PathBuf> {
    let mut dirs = shipped_dirs_from(exe_dir().as_deref(), installed, in_checkout);
    // The checkout this binary was built from, wherever cargo put the
    // binary (`CARGO_TARGET_DIR` may lie outside the checkout).
    if let Some(checkout) = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2) {
        let d = checkout.join(in_checkout);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// [`shipped_dirs`] for an executable in `exe_dir`.
pub fn shipped_dirs_from(
    exe_dir: Option<&Path>,
    installed: &[&Path],
    in_checkout: &Path,
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let Some(exe_dir) = exe_dir else {
        return dirs;
    };
    let mut push = |d: PathBuf| {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    for rel in installed {
        // `..` taken lexically, so the folders read as an install's
        // (`PREFIX/lib/tincture`, not `PREFIX/bin/../lib/tincture`).
        let mut dir = exe_dir.to_owned();
        for c in rel.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    dir = dir.parent().map_or(dir.clone(), Path::to_owned);
                }
                other => dir.push(other),
            }
        }
        push(dir);
    }
    for ancestor in exe_dir.ancestors() {
        push(ancestor.join(in_checkout));
    }
    dirs
}

/// The system folders to search.
pub fn system_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for d in [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/opt/onnxruntime/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Finds the runtime library: `project` folders first, then `env_path`
/// (the value of `ORT_DYLIB_PATH`), then `system` folders.
///
/// # Errors
/// [`Error::NotFound`] listing every place searched.
pub fn find_runtime_in(
    project: &[PathBuf],
    env_path: Option<&Path>,
    system: &[PathBuf],
) -> Result<(PathBuf, RuntimeSource)> {
    if let Some(p) = project.iter().find_map(|d| library_in(d)) {
        return Ok((p, RuntimeSource::Project));
    }
    if let Some(p) = env_path.filter(|p| p.is_file()) {
        return Ok((p.to_owned(), RuntimeSource::Environment));
    }
    if let Some(p) = system.iter().find_map(|d| library_in(d)) {
        return Ok((p, RuntimeSource::System));
    }
    let mut searched: Vec<PathBuf> = project.to_vec();
    searched.extend(env_path.map(Path::to_owned));
    searched.extend(system.iter().cloned());
    Err(Error::NotFound { searched })
}

/// Finds the runtime in the standard places (see [`find_runtime_in`]).
///
/// # Errors
/// [`Error::NotFound`] when there is none.
pub fn find_runtime() -> Result<(PathBuf, RuntimeSource)> {
    let env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    find_runtime_in(&project_dirs(), env.as_deref(), &system_dirs())
}

fn version_from_name(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.strip_prefix(LIB_PREFIX)
        .and_then(|v| v.strip_prefix('.'))
        .filter(|v| !v.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// Finds and loads ONNX Runtime once per process; later calls return the
/// first result.
///
/// # Errors
/// When no runtime is found or it will not load; the message says how to install it.
pub fn load_runtime() -> Result<RuntimeInfo> {
    runtime().map(|(info, _)| info)
}

/// The loaded runtime and its environment, which sessions are built in.
///
/// # Errors
/// As [`load_runtime`].
pub fn runtime() -> Result<(RuntimeInfo, ort::environment::Environment)> {
    static LOADED: OnceLock<Result<(RuntimeInfo, ort::environment::Environment)>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let (path, source) = find_runtime()?;
            let fail = |reason: String| Error::LoadFailed {
                path: path.clone(),
                reason,
            };
            let builder = ort::init_from(&path).map_err(|e| fail(e.to_string()))?;
            // Kept for the life of the process: every session is built in it.
            let env = builder
                .with_name("tincture")
                .build()
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "ONNX Runtime loaded");
            Ok((
                RuntimeInfo {
                    version: version_from_name(&path),
                    path,
                    source,
                },
                env,
            ))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_are_looked_for_beside_the_executable_and_its_install_only() {
        let exe = Path::new("/opt/films/bin");
        let dirs = shipped_dirs_from(
            Some(exe),
            &[
                Path::new("."),
                &Path::new("..").join("lib").join("tincture"),
            ],
            &Path::new("third_party").join("onnxruntime"),
        );
        let want: Vec<PathBuf> = [
            "/opt/films/bin",
            "/opt/films/lib/tincture",
            "/opt/films/bin/third_party/onnxruntime",
            "/opt/films/third_party/onnxruntime",
            "/opt/third_party/onnxruntime",
            "/third_party/onnxruntime",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(dirs, want);
        // The running process's list holds nothing of the current folder
        // that is not also the executable's.
        let cwd = std::env::current_dir().expect("cwd");
        let exe_dir = std::env::current_exe().expect("exe");
        for d in project_dirs() {
            assert!(
                !d.starts_with(&cwd)
                    || exe_dir.starts_with(d.parent().and_then(Path::parent).unwrap_or(&d)),
                "{} comes from the current folder",
                d.display()
            );
        }
    }

    #[test]
    fn search_order_and_missing_runtime() {
        let tmp = std::env::temp_dir().join(format!("tincture-ort-search-{}", std::process::id()));
        let (proj, sys) = (tmp.join("proj"), tmp.join("sys"));
        std::fs::create_dir_all(&proj).expect("mkdir");
        std::fs::create_dir_all(&sys).expect("mkdir");
        let env_lib = tmp.join("custom.so");
        std::fs::write(&env_lib, b"x").expect("write");
        std::fs::write(sys.join("libonnxruntime.so.1.20.0"), b"x").expect("write");

        let (projects, systems) = (vec![proj.clone()], vec![sys.clone()]);
        let err = find_runtime_in(&projects, None, &[]).expect_err("nothing there");
        assert!(err.to_string().contains("ORT_DYLIB_PATH"), "{err}");
        assert_eq!(
            find_runtime_in(&projects, Some(&env_lib), &systems)
                .expect("env")
                .1,
            RuntimeSource::Environment
        );
        assert_eq!(
            find_runtime_in(&projects, None, &systems).expect("sys").1,
            RuntimeSource::System
        );
        std::fs::write(proj.join("libonnxruntime.so.1.31.1"), b"x").expect("write");
        let (p, s) = find_runtime_in(&projects, Some(&env_lib), &systems).expect("project");
        assert_eq!(s, RuntimeSource::Project);
        assert_eq!(version_from_name(&p), "1.31.1");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
