//! Where colorizers come from: the built-in model shipped in `models/`, and
//! user models dropped (with a manifest) into a models folder.
//!
//! `--model` takes `builtin`, a user model's name, or the path of a manifest
//! (`.json`) or a bare `.onnx` file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// File name of the built-in model's manifest.
pub const BUILTIN_MANIFEST: &str = "tincture-colorizer-v1.json";

/// A model to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A manifest file (the ONNX file lies beside it).
    Manifest(PathBuf),
    /// A bare ONNX file; the adapter is recognised from its signature.
    Onnx(PathBuf),
}

/// The known models.
#[derive(Clone, Debug, Default)]
pub struct ModelRegistry {
    /// Folders holding the built-in model, first match wins.
    pub builtin_dirs: Vec<PathBuf>,
    /// Folders of user models (each model a manifest + ONNX file).
    pub user_dirs: Vec<PathBuf>,
}

impl ModelRegistry {
    /// The standard places: `TINCTURE_BUILTIN_MODELS`, then beside the
    /// executable (`models/`) and its install (`PREFIX/share/tincture/models`),
    /// then `models/` in the checkout it was built in (never the current
    /// folder, see [`crate::shipped_dirs`]); user
    /// models in `TINCTURE_MODELS` and `$XDG_DATA_HOME/tincture/models`
    /// (default `~/.local/share/tincture/models`).
    pub fn standard() -> Self {
        let mut builtin_dirs: Vec<PathBuf> = std::env::var_os("TINCTURE_BUILTIN_MODELS")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        let installed = Path::new("..")
            .join("share")
            .join("tincture")
            .join("models");
        for d in crate::shipped_dirs(&[Path::new("models"), &installed], Path::new("models")) {
            if !builtin_dirs.contains(&d) {
                builtin_dirs.push(d);
            }
        }
        let mut user_dirs: Vec<PathBuf> = std::env::var_os("TINCTURE_MODELS")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        if let Some(d) = data {
            user_dirs.push(d.join("tincture").join("models"));
        }
        Self {
            builtin_dirs,
            user_dirs,
        }
    }

    /// The built-in model's manifest.
    ///
    /// # Errors
    /// When no folder holds it.
    pub fn builtin(&self) -> Result<PathBuf> {
        self.builtin_dirs
            .iter()
            .map(|d| d.join(BUILTIN_MANIFEST))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Manifest {
                path: PathBuf::from(BUILTIN_MANIFEST),
                reason: format!(
                    "the built-in model was not found (looked in {}); run Tincture from its folder, or set \
                     TINCTURE_BUILTIN_MODELS to the folder holding {BUILTIN_MANIFEST}",
                    self.builtin_dirs
                        .iter()
                        .take(4)
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// User models: (name, manifest path) for every readable manifest.
    /// Unreadable manifests are skipped with a warning.
    pub fn user_models(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for dir in &self.user_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            paths.sort();
            for p in paths {
                match Manifest::load(&p) {
                    Ok((m, _)) => out.push((m.name, p)),
                    Err(e) => tracing::warn!("skipping model: {e}"),
                }
            }
        }
        out
    }

    /// Resolves a `--model` value.
    ///
    /// # Errors
    /// [`Error::UnknownModel`] listing the known names, or the built-in
    /// model's absence.
    pub fn resolve(&self, spec: &str) -> Result<ModelSource> {
        if spec == "builtin" {
            return self.builtin().map(ModelSource::Manifest);
        }
        let path = Path::new(spec);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => return Ok(ModelSource::Manifest(path.to_owned())),
            Some("onnx") => return Ok(ModelSource::Onnx(path.to_owned())),
            _ => {}
        }
        let users = self.user_models();
        if let Some((_, p)) = users.iter().find(|(n, _)| n == spec) {
            return Ok(ModelSource::Manifest(p.clone()));
        }
        let mut known = vec!["builtin".to_owned()];
        known.extend(users.into_iter().map(|(n, _)| n));
        Err(Error::UnknownModel {
            name: spec.to_owned(),
            known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_builtin_names_and_paths() {
        let dir = tempfile::tempdir().expect("tmp");
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).expect("mkdir");
        std::fs::write(
            user.join("mine.json"),
            r#"{"name":"period-look","version":"2","adapter":"eccv16","file":"x.onnx",
                "inputs":[{"name":"L","shape":[1,1,256,256]}],"outputs":[{"name":"ab","shape":[1,2,256,256]}]}"#,
        )
        .expect("write");
        std::fs::write(user.join("broken.json"), "{").expect("write");
        let reg = ModelRegistry {
            builtin_dirs: vec![dir.path().join("nowhere")],
            user_dirs: vec![user.clone()],
        };
        assert_eq!(
            reg.resolve("period-look").expect("user model"),
            ModelSource::Manifest(user.join("mine.json"))
        );
        assert_eq!(
            reg.resolve("a/b.onnx").expect("path"),
            ModelSource::Onnx(PathBuf::from("a/b.onnx"))
        );
        let err = reg.resolve("nope").expect_err("unknown");
        assert!(err.to_string().contains("builtin, period-look"), "{err}");
        let err = reg.resolve("builtin").expect_err("no builtin here");
        assert!(err.to_string().contains("TINCTURE_BUILTIN_MODELS"), "{err}");
    }
}
