//! Model manifests: the JSON file beside every ONNX colorizer that says what
//! the graph expects and returns, where it came from and how well it scores.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The I/O convention of a colorizer graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// Tincture's own model: `l`, `ab_hint`, `hint_mask` -> `ab`, any size
    /// that is a multiple of `size_multiple`.
    Tincture,
    /// Zhang et al. 2017 (interactive): `data_l`, `user_ab`, `user_map` ->
    /// `color_ab`, at 256x256.
    Siggraph17,
    /// Zhang et al. 2016 (automatic): L -> ab.
    Eccv16,
    /// DeOldify: gray RGB in, RGB out; Tincture keeps only the chroma.
    Deoldify,
    /// DDColor: gray RGB at 512x512 in, ab out.
    Ddcolor,
}

impl AdapterKind {
    /// Number of channels of each input, in the order the manifest lists them.
    pub fn input_channels(self) -> &'static [i64] {
        match self {
            Self::Tincture | Self::Siggraph17 => &[1, 2, 1],
            Self::Eccv16 => &[1],
            Self::Deoldify | Self::Ddcolor => &[3],
        }
    }

    /// Channels of the output: 2 for ab, 3 for RGB.
    pub fn output_channels(self) -> i64 {
        match self {
            Self::Deoldify => 3,
            _ => 2,
        }
    }

    /// Whether the graph takes colour hints.
    pub fn takes_hints(self) -> bool {
        matches!(self, Self::Tincture | Self::Siggraph17)
    }

    /// The normalisation this kind of model conventionally uses.
    pub fn default_normalisation(self) -> Normalisation {
        let base = Normalisation::default();
        match self {
            Self::Tincture | Self::Eccv16 | Self::Deoldify | Self::Ddcolor => base,
            // The Caffe release: mean-centred L, mask scaled to the ab range.
            Self::Siggraph17 => Normalisation {
                l_offset: -50.0,
                mask_scale: 110.0,
                ..base
            },
        }
    }

    /// The square input size a graph of this kind conventionally has, when fixed.
    pub fn default_input_size(self) -> Option<u32> {
        match self {
            Self::Siggraph17 | Self::Eccv16 => Some(256),
            Self::Ddcolor => Some(512),
            Self::Tincture | Self::Deoldify => None,
        }
    }
}

/// How values are scaled on the way in and out. Every field has the default
/// of the adapter kind; a manifest sets only what differs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalisation {
    /// Input L = (L* + l_offset) * l_scale, L* in 0..100.
    pub l_offset: f32,
    /// See `l_offset`.
    pub l_scale: f32,
    /// Hint ab input = a*b* * ab_scale.
    pub ab_scale: f32,
    /// Hint mask input = mask (0 or 1) * mask_scale.
    pub mask_scale: f32,
    /// RGB input = (rgb - mean) / std, rgb in 0..1.
    pub rgb_mean: [f32; 3],
    /// See `rgb_mean`.
    pub rgb_std: [f32; 3],
    /// a*b* = ab output * out_scale.
    pub out_scale: f32,
    /// RGB = output * out_rgb_std + out_rgb_mean, giving 0..1.
    pub out_rgb_mean: [f32; 3],
    /// See `out_rgb_mean`.
    pub out_rgb_std: [f32; 3],
}

impl Default for Normalisation {
    fn default() -> Self {
        Self {
            l_offset: 0.0,
            l_scale: 1.0,
            ab_scale: 1.0,
            mask_scale: 1.0,
            rgb_mean: [0.0; 3],
            rgb_std: [1.0; 3],
            out_scale: 1.0,
            out_rgb_mean: [0.0; 3],
            out_rgb_std: [1.0; 3],
        }
    }
}

/// One graph input or output as the manifest declares it. `null` in the
/// shape means any size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// The graph's name for it.
    pub name: String,
    /// Dimensions, `None` for dynamic ones.
    pub shape: Vec<Option<i64>>,
    /// Human-readable units, for the record.
    #[serde(default)]
    pub normalisation: String,
}

/// A model manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    #[serde(default = "one")]
    pub schema: u32,
    /// The name users pick it by (`--model NAME`).
    pub name: String,
    /// Model version.
    pub version: String,
    /// I/O convention.
    pub adapter: AdapterKind,
    /// The ONNX file, relative to the manifest.
    pub file: String,
    /// sha256 of the ONNX file; checked on load when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// One line on what it is.
    #[serde(default)]
    pub summary: String,
    /// Inputs, in the adapter's order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs; the first is the colour.
    pub outputs: Vec<TensorSpec>,
    /// Dynamic sizes must be multiples of this.
    #[serde(default)]
    pub size_multiple: Option<u32>,
    /// The short side the model runs at by default, for dynamic-size models.
    #[serde(default)]
    pub render_short_side: Option<u32>,
    /// Overrides of the adapter's default normalisation.
    #[serde(default)]
    pub normalisation: Option<Normalisation>,
    /// Licence of the weights.
    #[serde(default)]
    pub licence: String,
    /// Training record (free-form).
    #[serde(default)]
    pub training: serde_json::Value,
    /// Validation metrics (free-form).
    #[serde(default)]
    pub metrics: serde_json::Value,
}

fn one() -> u32 {
    1
}

/// The largest tensor dimension, render side or size multiple a manifest
/// may state, in pixels.
pub const MAX_TENSOR_SIDE: u32 = 16_384;

/// The newest manifest format this build reads.
pub const MANIFEST_SCHEMA: u32 = 1;

impl Manifest {
    /// Reads and checks a manifest file.
    ///
    /// # Errors
    /// When it cannot be read, is not valid JSON of this shape, or declares
    /// inputs and outputs its adapter cannot use.
    pub fn load(path: &Path) -> Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            path: path.to_owned(),
            reason: format!("cannot read it: {e}"),
        })?;
        let manifest = Self::parse(&text, path)?;
        let model = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&manifest.file);
        Ok((manifest, model))
    }

    /// Reads and checks a manifest from its text; `path` is only used in
    /// messages.
    ///
    /// # Errors
    /// As [`load`](Self::load), but never for reading.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| Error::Manifest {
            path: path.to_owned(),
            reason: format!("not a valid model manifest: {e}"),
        })?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// The normalisation in force: the manifest's, or the adapter's default.
    pub fn normalisation(&self) -> Normalisation {
        self.normalisation
            .unwrap_or_else(|| self.adapter.default_normalisation())
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::Manifest {
            path: path.to_owned(),
            reason,
        };
        if self.schema > MANIFEST_SCHEMA {
            return Err(bad(format!(
                "manifest schema {} is newer than this Tincture reads ({MANIFEST_SCHEMA}); update Tincture",
                self.schema
            )));
        }
        let want = self.adapter.input_channels();
        if self.inputs.len() != want.len() {
            return Err(bad(format!(
                "adapter {:?} takes {} input(s), the manifest lists {}",
                self.adapter,
                want.len(),
                self.inputs.len()
            )));
        }
        for (spec, &ch) in self.inputs.iter().zip(want) {
            check_nchw(spec, ch).map_err(|r| bad(format!("input `{}`: {r}", spec.name)))?;
        }
        let out = self
            .outputs
            .first()
            .ok_or_else(|| bad("the manifest lists no output".into()))?;
        check_nchw(out, self.adapter.output_channels()).map_err(|r| {
            bad(format!(
                "output `{}`: {r} (adapter {:?} expects {})",
                out.name,
                self.adapter,
                if self.adapter.output_channels() == 2 {
                    "ab"
                } else {
                    "RGB"
                }
            ))
        })?;
        if self.size_multiple == Some(0) {
            return Err(bad("size_multiple must be at least 1".into()));
        }
        // Numbers that size tensors: bounded, so a damaged manifest cannot
        // ask for an absurd allocation.
        if let Some(m) = self.size_multiple
            && m > MAX_TENSOR_SIDE
        {
            return Err(bad(format!(
                "size_multiple {m} is larger than any picture side ({MAX_TENSOR_SIDE} at most)"
            )));
        }
        if let Some(side) = self.render_short_side
            && !(1..=MAX_TENSOR_SIDE).contains(&side)
        {
            return Err(bad(format!(
                "render_short_side {side} lies outside 1..{MAX_TENSOR_SIDE} pixels"
            )));
        }
        for spec in self.inputs.iter().chain(&self.outputs) {
            if let Some(d) = spec
                .shape
                .iter()
                .flatten()
                .find(|&&d| !(1..=i64::from(MAX_TENSOR_SIDE)).contains(&d))
            {
                return Err(bad(format!(
                    "`{}`: dimension {d} lies outside 1..{MAX_TENSOR_SIDE} (use null for a dynamic size)",
                    spec.name
                )));
            }
        }
        Ok(())
    }
}

fn check_nchw(spec: &TensorSpec, channels: i64) -> std::result::Result<(), String> {
    if spec.shape.len() != 4 {
        return Err(format!("shape {:?} is not N x C x H x W", spec.shape));
    }
    match spec.shape[1] {
        Some(c) if c != channels => Err(format!("has {c} channels, {channels} expected")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("m.json");
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn reads_defaults_and_rejects_wrong_channels() {
        let dir = tempfile::tempdir().expect("tmp");
        let ok = r#"{"name":"z","version":"1","adapter":"siggraph17","file":"z.onnx",
            "inputs":[{"name":"data_l","shape":[1,1,256,256]},{"name":"user_ab","shape":[1,2,256,256]},
                      {"name":"user_map","shape":[1,1,256,256]}],
            "outputs":[{"name":"color_ab","shape":[1,2,256,256]}]}"#;
        let (m, model) = Manifest::load(&write(dir.path(), ok)).expect("valid");
        assert_eq!(m.normalisation().l_offset, -50.0);
        assert_eq!(model, dir.path().join("z.onnx"));

        let rgb_out = ok.replace("[1,2,256,256]}]}", "[1,3,256,256]}]}");
        let err = Manifest::load(&write(dir.path(), &rgb_out)).expect_err("3-channel output");
        assert!(err.to_string().contains("expects ab"), "{err}");

        let two_inputs = r#"{"name":"z","version":"1","adapter":"tincture","file":"z.onnx",
            "inputs":[{"name":"l","shape":[1,1,null,null]}],"outputs":[{"name":"ab","shape":[1,2,null,null]}]}"#;
        let err = Manifest::load(&write(dir.path(), two_inputs)).expect_err("too few inputs");
        assert!(err.to_string().contains("takes 3 input"), "{err}");

        let err = Manifest::load(&write(dir.path(), "{not json")).expect_err("bad json");
        assert!(err.to_string().contains("m.json"), "{err}");
    }
}
