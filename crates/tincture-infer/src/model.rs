//! One colorizer graph in an ONNX Runtime session, behind the adapter for
//! its I/O convention. [`Model::run`] takes luma (and hints) at the size the
//! model runs at and returns CIE a*b* at that size.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};
use tincture_core::guided::bilinear_taps;
use tincture_core::memory::{CellFeatures, FeatureBlock};
use tincture_core::metrics::srgb_to_lab;

use crate::error::{Error, Result};
use crate::hints::Hint;
use crate::manifest::{AdapterKind, Manifest, Normalisation, TensorSpec};

/// Where the session runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionChoice {
    /// The best accelerator whose runtime is present, else the CPU.
    #[default]
    Auto,
    /// The CPU only.
    Cpu,
}

/// Luma (and hints) at the size the model runs at.
#[derive(Clone, Copy, Debug)]
pub struct ModelInput<'a> {
    /// Y' in 0..1, row-major.
    pub luma: &'a [f32],
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Hints, in these pixel coordinates.
    pub hints: &'a [Hint],
    /// Frame or image index, for messages.
    pub frame: u64,
}

/// A loaded colorizer.
pub struct Model {
    manifest: Manifest,
    path: PathBuf,
    session: Session,
    norm: Normalisation,
    fixed_size: Option<(usize, usize)>,
    provider: String,
    threads: usize,
    notice: Option<String>,
    gray: GrayL,
    /// Whether the graph also returns its a\*b\* class distribution
    /// ([`CLASS_PROB`] and [`CLASS_CENTRES`]).
    has_classes: bool,
    /// Whether the graph returns the features frames are matched on
    /// ([`FEATURE_OUTPUTS`]).
    has_features: bool,
}

/// The output holding the model's probability of each a\*b\* class per
/// pixel (N x Q x h x w), when the graph has one.
pub const CLASS_PROB: &str = "ab_class_prob";
/// The output holding each class's a\*b\* centre (Q x 2).
pub const CLASS_CENTRES: &str = "ab_class_centres";
/// The outputs holding the encoder features that frames are matched on
/// (N x C x h x w each, at 1/8 and 1/16 of the input), finest first; see
/// [`Model::run_features`].
pub const FEATURE_OUTPUTS: [&str; 2] = ["feat_e3", "feat_e4"];

/// The model's distribution over a\*b\* classes at every pixel of one
/// picture: what it thinks each pixel's colour could be, and how likely.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMap {
    /// Width of the map (a fraction of the picture's).
    pub width: usize,
    /// Height of the map.
    pub height: usize,
    /// The a\*b\* centre of each class.
    pub centres: Vec<[f32; 2]>,
    /// Probability of each class per cell: `centres.len()` planes of
    /// `width * height`, each cell's summing to 1.
    pub prob: Vec<f32>,
}

/// One of the model's likely colours at a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LikelyColour {
    /// CIE a\*b\* (the probability-weighted mean of the classes it gathers).
    pub ab: [f32; 2],
    /// The probability the model gives it (the sum over those classes).
    pub probability: f32,
}

/// The `limit`-th largest probability among `modes` (`limit` >= 1, and
/// `modes` holds at least that many).
fn kth_mass(modes: &[LikelyColour], limit: usize) -> f32 {
    let mut masses: Vec<f32> = modes.iter().map(|m| m.probability).collect();
    masses.sort_by(|a, b| b.total_cmp(a));
    masses[limit - 1]
}

impl ClassMap {
    /// The model's most likely colours at the point `(u, v)` of the picture
    /// (each 0..1), most likely first, at most `limit`, none under
    /// `min_probability`. Neighbouring classes (within one and a half grid
    /// steps of a more likely one) are gathered into it, so the list holds
    /// distinct colours, not shades of one; each colour's probability is the
    /// mass it gathers.
    pub fn likely_at(
        &self,
        u: f32,
        v: f32,
        limit: usize,
        min_probability: f32,
    ) -> Vec<LikelyColour> {
        let q = self.centres.len();
        let cells = self.width * self.height;
        if limit == 0 || q == 0 || cells == 0 || self.prob.len() != q * cells {
            return Vec::new();
        }
        let x = ((u.clamp(0.0, 1.0) * self.width as f32) as usize).min(self.width - 1);
        let y = ((v.clamp(0.0, 1.0) * self.height as f32) as usize).min(self.height - 1);
        let cell = y * self.width + x;
        let p: Vec<f32> = (0..q).map(|c| self.prob[c * cells + cell]).collect();
        let step = self
            .centres
            .iter()
            .skip(1)
            .map(|c| (c[0] - self.centres[0][0]).hypot(c[1] - self.centres[0][1]))
            .filter(|d| *d > 1e-3)
            .fold(f32::INFINITY, f32::min);
        let radius = if step.is_finite() { 1.5 * step } else { 0.0 };
        let mut order: Vec<usize> = (0..q).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let mut taken = vec![false; q];
        let mut out: Vec<LikelyColour> = Vec::new();
        // The mass no mode has gathered yet: once it cannot beat the
        // `limit`-th mode found (or reach `min_probability`), no later
        // mode can make the list.
        let mut left: f32 = p.iter().sum();
        for &peak in &order {
            // (A little slack for the float sum.)
            let bound = left + 1e-5;
            if bound < min_probability || out.len() >= limit && bound < kth_mass(&out, limit) {
                break;
            }
            // Each mode starts at the most likely class left; the modes are
            // ranked by the mass they gather.
            if taken[peak] || p[peak] <= 0.0 {
                continue;
            }
            let centre = self.centres[peak];
            let (mut mass, mut a, mut b) = (0.0f32, 0.0f32, 0.0f32);
            for c in 0..q {
                let d = (self.centres[c][0] - centre[0]).hypot(self.centres[c][1] - centre[1]);
                if !taken[c] && d <= radius {
                    taken[c] = true;
                    mass += p[c];
                    a += p[c] * self.centres[c][0];
                    b += p[c] * self.centres[c][1];
                }
            }
            left -= mass;
            if mass >= min_probability && mass > 0.0 {
                out.push(LikelyColour {
                    ab: [a / mass, b / mass],
                    probability: mass,
                });
            }
        }
        out.sort_by(|x, y| y.probability.total_cmp(&x.probability));
        out.truncate(limit);
        out
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.manifest.name)
            .field("path", &self.path)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// L* of an sRGB gray of value `y` (0..1): how the colorizer sees luma.
pub fn gray_l(y: f32) -> f32 {
    let y = f64::from(y.clamp(0.0, 1.0));
    srgb_to_lab([y, y, y])[0] as f32
}

/// A lookup table of [`gray_l`] over 0..1, for whole images.
#[derive(Clone, Debug)]
pub struct GrayL {
    table: Vec<f32>,
}

impl Default for GrayL {
    fn default() -> Self {
        const N: usize = 4096;
        let table = (0..=N).map(|i| gray_l(i as f32 / N as f32)).collect();
        Self { table }
    }
}

impl GrayL {
    /// L* of gray `y`, interpolated.
    pub fn get(&self, y: f32) -> f32 {
        let n = (self.table.len() - 1) as f32;
        let t = y.clamp(0.0, 1.0) * n;
        let i = (t as usize).min(self.table.len() - 2);
        let f = t - i as f32;
        self.table[i] * (1.0 - f) + self.table[i + 1] * f
    }
}

fn ort_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The accelerators to try, best first, for this platform's runtime.
fn accelerators() -> Vec<(&'static str, ort::ep::ExecutionProviderDispatch)> {
    use ort::ep::ExecutionProvider;
    let mut out = Vec::new();
    if ort::ep::TensorRT::is_available().unwrap_or(false) {
        out.push((
            "TensorRT",
            ort::ep::TensorRT::default().build().error_on_failure(),
        ));
    }
    if ort::ep::CUDA::is_available().unwrap_or(false) {
        out.push(("CUDA", ort::ep::CUDA::default().build().error_on_failure()));
    }
    #[cfg(target_os = "macos")]
    if ort::ep::CoreML::is_available().unwrap_or(false) {
        out.push((
            "CoreML",
            ort::ep::CoreML::default().build().error_on_failure(),
        ));
    }
    #[cfg(windows)]
    if ort::ep::DirectML::is_available().unwrap_or(false) {
        out.push((
            "DirectML",
            ort::ep::DirectML::default().build().error_on_failure(),
        ));
    }
    out
}

fn builder(threads: usize) -> std::result::Result<SessionBuilder, String> {
    let (_, env) = crate::runtime().map_err(|e| e.to_string())?;
    let b = Session::builder(&env).map_err(ort_err)?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(ort_err)?;
    let b = b.with_intra_threads(threads.max(1)).map_err(ort_err)?;
    b.with_memory_pattern(true).map_err(ort_err)
}

/// Builds a session on the best available provider; returns it and the provider's name.
/// `bytes`, when given, is the file's content already read (to check its
/// hash), so it is not read twice.
fn open_session(
    path: &Path,
    bytes: Option<&[u8]>,
    choice: ExecutionChoice,
    threads: usize,
) -> Result<(Session, String)> {
    let model_err = |reason: String| Error::Model {
        path: path.to_owned(),
        reason,
    };
    let commit = |mut b: SessionBuilder| match bytes {
        Some(bytes) => b.commit_from_memory(bytes),
        None => b.commit_from_file(path),
    };
    if bytes.is_none() && !path.is_file() {
        return Err(model_err(
            "the model file is missing; reinstall Tincture, or point --model at an existing .onnx or manifest".into(),
        ));
    }
    // Load the runtime before asking it which providers it has.
    crate::runtime()?;
    if choice == ExecutionChoice::Auto {
        for (name, ep) in accelerators() {
            let attempt = builder(threads).and_then(|b| {
                commit(b.with_execution_providers([ep]).map_err(ort_err)?).map_err(ort_err)
            });
            match attempt {
                Ok(s) => {
                    tracing::info!(provider = name, model = %path.display(), "inference session on {name}");
                    return Ok((s, name.to_owned()));
                }
                Err(e) => tracing::warn!(
                    "{name} is present but could not run {}: {e}; trying the next",
                    path.display()
                ),
            }
        }
    }
    let session = commit(builder(threads).map_err(&model_err)?).map_err(|e| {
            model_err(format!(
                "ONNX Runtime cannot load it ({e}); the file is corrupt or not an ONNX model. Re-download or re-export it"
            ))
        })?;
    tracing::info!(provider = "CPU", threads, model = %path.display(), "inference session on the CPU");
    Ok((session, "CPU".to_owned()))
}

/// The graph's inputs and outputs: (name, type) each.
type Signature = Vec<(String, ValueType)>;

fn signature(session: &Session) -> (Signature, Signature) {
    let list = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| (o.name().to_owned(), o.dtype().clone()))
            .collect()
    };
    (list(session.inputs()), list(session.outputs()))
}

fn graph_dims(ty: &ValueType) -> Option<Vec<i64>> {
    ty.tensor_shape().map(|s| s.iter().copied().collect())
}

/// Checks a manifest's tensor against the graph's; returns the graph's dims.
fn check_tensor(
    spec: &TensorSpec,
    graph: &[(String, ValueType)],
    role: &str,
) -> std::result::Result<Vec<i64>, String> {
    let names: Vec<&str> = graph.iter().map(|(n, _)| n.as_str()).collect();
    let (_, ty) = graph.iter().find(|(n, _)| *n == spec.name).ok_or_else(|| {
        format!(
            "the manifest's {role} `{}` is not in the graph (its {role}s: {})",
            spec.name,
            names.join(", ")
        )
    })?;
    if ty.tensor_type() != Some(TensorElementType::Float32) {
        return Err(format!("{role} `{}` is not a float32 tensor", spec.name));
    }
    let dims = graph_dims(ty).unwrap_or_default();
    if dims.len() != spec.shape.len() {
        return Err(format!(
            "{role} `{}` has rank {} in the graph but {} in the manifest",
            spec.name,
            dims.len(),
            spec.shape.len()
        ));
    }
    for (i, (g, m)) in dims.iter().zip(&spec.shape).enumerate() {
        if let Some(m) = m
            && *g > 0
            && g != m
        {
            return Err(format!(
                "{role} `{}` dimension {i} is {g} in the graph but {m} in the manifest; fix the manifest's shape",
                spec.name
            ));
        }
    }
    Ok(dims)
}

/// Guesses the adapter of a bare `.onnx` file from its signature.
fn infer_adapter(
    inputs: &[(String, ValueType)],
    outputs: &[(String, ValueType)],
) -> Option<AdapterKind> {
    let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
    let channels = |ty: &ValueType| graph_dims(ty).and_then(|d| d.get(1).copied());
    let out_c = outputs.first().and_then(|(_, t)| channels(t));
    match names.as_slice() {
        ["l", "ab_hint", "hint_mask"] => Some(AdapterKind::Tincture),
        ["data_l", "user_ab", "user_map"] => Some(AdapterKind::Siggraph17),
        [_] => match (channels(&inputs[0].1), out_c) {
            (Some(1), _) => Some(AdapterKind::Eccv16),
            (Some(3), Some(3)) => Some(AdapterKind::Deoldify),
            (Some(3), Some(2)) => Some(AdapterKind::Ddcolor),
            _ => None,
        },
        _ => None,
    }
}

fn spec_of(name: &str, dims: &[i64]) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        shape: dims.iter().map(|&d| (d > 0).then_some(d)).collect(),
        normalisation: String::new(),
    }
}

impl Model {
    /// Opens a model from its manifest.
    ///
    /// # Errors
    /// When the manifest or model is missing or corrupt, the hash differs,
    /// or the graph does not match the manifest.
    pub fn open(manifest_path: &Path, choice: ExecutionChoice, threads: usize) -> Result<Self> {
        let (manifest, path) = Manifest::load(manifest_path)?;
        // With a hash to check, the file is read once and the session built from memory.
        let mut bytes = None;
        if let Some(want) = &manifest.sha256
            && path.is_file()
        {
            let content = std::fs::read(&path).map_err(|e| Error::Model {
                path: path.clone(),
                reason: format!(
                    "cannot read the model named by {}: {e}",
                    manifest_path.display()
                ),
            })?;
            let got = sha256_hex(&content);
            if !got.eq_ignore_ascii_case(want) {
                return Err(Error::Model {
                    path,
                    reason: format!(
                        "the file's sha256 is {got}, but its manifest says {want}: the file is damaged or was replaced; \
                         restore it, or fix the manifest's sha256"
                    ),
                });
            }
            bytes = Some(content);
        }
        let (session, provider) = open_session(&path, bytes.as_deref(), choice, threads)?;
        Self::with_session(manifest, path, session, provider, threads)
    }

    /// Opens a bare `.onnx` file, recognising its adapter from its signature.
    ///
    /// # Errors
    /// When the file is missing or corrupt, or its signature matches no adapter.
    pub fn open_onnx(path: &Path, choice: ExecutionChoice, threads: usize) -> Result<Self> {
        let (session, provider) = open_session(path, None, choice, threads)?;
        let (inputs, outputs) = signature(&session);
        let adapter = infer_adapter(&inputs, &outputs).ok_or_else(|| Error::Model {
            path: path.to_owned(),
            reason: format!(
                "its inputs ({}) match no known colorizer convention; write a manifest (.json) beside it naming the adapter",
                inputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_owned();
        let manifest = Manifest {
            schema: 1,
            name,
            version: "unknown".into(),
            adapter,
            file: path
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned(),
            sha256: None,
            summary: String::new(),
            inputs: inputs
                .iter()
                .map(|(n, t)| spec_of(n, &graph_dims(t).unwrap_or_default()))
                .collect(),
            outputs: outputs
                .iter()
                .take(1)
                .map(|(n, t)| spec_of(n, &graph_dims(t).unwrap_or_default()))
                .collect(),
            size_multiple: None,
            render_short_side: None,
            normalisation: None,
            licence: String::new(),
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        };
        Self::with_session(manifest, path.to_owned(), session, provider, threads)
    }

    fn with_session(
        manifest: Manifest,
        path: PathBuf,
        session: Session,
        provider: String,
        threads: usize,
    ) -> Result<Self> {
        let bad = |reason: String| Error::Model {
            path: path.clone(),
            reason,
        };
        let (inputs, outputs) = signature(&session);
        let adapter = manifest.adapter;
        let mut first_dims = Vec::new();
        for (i, spec) in manifest.inputs.iter().enumerate() {
            let dims = check_tensor(spec, &inputs, "input").map_err(&bad)?;
            let want = adapter.input_channels()[i];
            if dims.get(1).is_some_and(|&c| c > 0 && c != want) {
                return Err(bad(format!(
                    "input `{}` has {} channels in the graph; adapter {adapter:?} feeds {want}",
                    spec.name, dims[1]
                )));
            }
            if i == 0 {
                first_dims = dims;
            }
        }
        let out_dims = check_tensor(&manifest.outputs[0], &outputs, "output").map_err(&bad)?;
        let want = adapter.output_channels();
        if out_dims.len() != 4 || out_dims[1] > 0 && out_dims[1] != want {
            return Err(bad(format!(
                "the output `{}` has shape {out_dims:?}; a colorizer of adapter {adapter:?} must return N x {want} x H x W ({})",
                manifest.outputs[0].name,
                if want == 2 { "ab" } else { "RGB" }
            )));
        }
        let fixed_size = match (first_dims.get(2), first_dims.get(3)) {
            (Some(&h), Some(&w)) if h > 0 && w > 0 => Some((w as usize, h as usize)),
            _ => adapter
                .default_input_size()
                .filter(|_| manifest.inputs[0].shape.get(2).copied().flatten().is_some())
                .map(|s| (s as usize, s as usize)),
        };
        let norm = manifest.normalisation();
        Ok(Self {
            manifest,
            path,
            session,
            norm,
            fixed_size,
            provider,
            threads,
            notice: None,
            gray: GrayL::default(),
            has_classes: [CLASS_PROB, CLASS_CENTRES]
                .iter()
                .all(|n| outputs.iter().any(|(name, _)| name == n)),
            has_features: FEATURE_OUTPUTS
                .iter()
                .all(|n| outputs.iter().any(|(name, _)| name == n)),
        })
    }

    /// Whether the graph returns its a\*b\* class distribution, so
    /// [`Model::run_classes`] can say which colours it finds likely.
    pub fn has_classes(&self) -> bool {
        self.has_classes
    }

    /// Whether the graph returns features to match frames on, so
    /// [`Model::run_features`] gives some.
    pub fn has_features(&self) -> bool {
        self.has_features
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The execution provider in use ("CPU", "CUDA", ...).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// A message about a change the model made on its own (such as falling
    /// back to the CPU), once.
    pub fn take_notice(&mut self) -> Option<String> {
        self.notice.take()
    }

    /// The size the model runs at for an image of `width` x `height`: its
    /// fixed size, or the image scaled so its short side is `short_side`
    /// (never enlarged), rounded to the model's size multiple.
    pub fn run_size(&self, width: usize, height: usize, short_side: Option<u32>) -> (usize, usize) {
        if let Some(s) = self.fixed_size {
            return s;
        }
        let m = self.manifest.size_multiple.unwrap_or(1).max(1) as usize;
        let short = short_side
            .or(self.manifest.render_short_side)
            .unwrap_or(256) as usize;
        let scale = (short as f64 / width.min(height).max(1) as f64).min(1.0);
        let round = |v: usize| ((v as f64 * scale / m as f64).round() as usize).max(1) * m;
        (round(width), round(height))
    }

    /// Runs the graph; returns a* and b* planes (row-major, `width * height` each).
    ///
    /// # Errors
    /// When ONNX Runtime fails (after one retry on the CPU if an accelerator
    /// failed), the output has an unexpected shape, or it holds NaNs.
    pub fn run(&mut self, input: ModelInput<'_>) -> Result<[Vec<f32>; 2]> {
        match self.run_once(input) {
            Err(Error::Inference { reason, .. }) if self.provider != "CPU" => {
                // Typically out of GPU memory: say so and go on on the CPU.
                let note = format!(
                    "{} failed on frame {} ({reason}); continuing on the CPU",
                    self.provider, input.frame
                );
                tracing::warn!("{note}");
                let (session, provider) =
                    open_session(&self.path, None, ExecutionChoice::Cpu, self.threads)?;
                self.session = session;
                self.provider = provider;
                self.notice = Some(note);
                self.run_once(input)
            }
            other => other,
        }
    }

    /// The model's a\*b\* class distribution for `input` (`None` when the
    /// graph does not return one). Only the distribution is computed, not
    /// the colour.
    ///
    /// # Errors
    /// When ONNX Runtime fails, or the outputs have unexpected shapes or
    /// non-finite values.
    pub fn run_classes(&mut self, input: ModelInput<'_>) -> Result<Option<ClassMap>> {
        if !self.has_classes {
            return Ok(None);
        }
        let name = self.manifest.name.clone();
        let frame = input.frame;
        let fail = self.failure(frame);
        let feeds = self.feeds(input)?;
        let options = RunOptions::new()
            .map_err(|e| fail(e.to_string()))?
            .with_outputs(
                OutputSelector::no_default()
                    .with(CLASS_PROB)
                    .with(CLASS_CENTRES),
            );
        let outputs = self
            .session
            .run_with_options(feeds, &options)
            .map_err(|e| fail(e.to_string()))?;
        let get = |key: &str| -> Result<(Vec<i64>, Vec<f32>)> {
            let value = outputs
                .get(key)
                .ok_or_else(|| fail(format!("the graph returned no `{key}`")))?;
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| fail(format!("output `{key}` is not a float tensor: {e}")))?;
            Ok((shape.iter().copied().collect(), data.to_vec()))
        };
        let (pd, prob) = get(CLASS_PROB)?;
        let (cd, centres) = get(CLASS_CENTRES)?;
        let q = cd.first().copied().unwrap_or(0);
        if pd.len() != 4 || pd[0] != 1 || pd[1] != q || cd.len() != 2 || cd[1] != 2 || q < 1 {
            return Err(fail(format!(
                "outputs `{CLASS_PROB}` {pd:?} and `{CLASS_CENTRES}` {cd:?} do not fit: expected 1 x Q x h x w and Q x 2"
            )));
        }
        if prob.iter().chain(&centres).any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                model: name,
                frame,
                count: prob
                    .iter()
                    .chain(&centres)
                    .filter(|v| !v.is_finite())
                    .count(),
            });
        }
        Ok(Some(ClassMap {
            width: pd[3] as usize,
            height: pd[2] as usize,
            centres: centres.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
            prob,
        }))
    }

    /// The features the frame is matched on (`None` when the graph returns
    /// none): a hypercolumn of [`FEATURE_OUTPUTS`] on the grid of the finest
    /// (1/8 of the input), each cell a unit vector. Only the encoder up to
    /// those layers is computed. Give no hints: they reach the encoder, and
    /// the same stuff must give the same features in every frame.
    ///
    /// # Errors
    /// When ONNX Runtime fails, or the outputs have unexpected shapes or
    /// non-finite values.
    pub fn run_features(&mut self, input: ModelInput<'_>) -> Result<Option<CellFeatures>> {
        if !self.has_features {
            return Ok(None);
        }
        let frame = input.frame;
        let fail = self.failure(frame);
        let feeds = self.feeds(input)?;
        let mut selector = OutputSelector::no_default();
        for name in FEATURE_OUTPUTS {
            selector = selector.with(name);
        }
        let options = RunOptions::new()
            .map_err(|e| fail(e.to_string()))?
            .with_outputs(selector);
        let outputs = self
            .session
            .run_with_options(feeds, &options)
            .map_err(|e| fail(e.to_string()))?;
        let mut blocks = Vec::new();
        for name in FEATURE_OUTPUTS {
            let value = outputs
                .get(name)
                .ok_or_else(|| fail(format!("the graph returned no `{name}`")))?;
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| fail(format!("output `{name}` is not a float tensor: {e}")))?;
            let dims: Vec<i64> = shape.iter().copied().collect();
            if dims.len() != 4 || dims[0] != 1 || dims[1] < 1 || dims[2] < 1 || dims[3] < 1 {
                return Err(fail(format!(
                    "output `{name}` has shape {dims:?}; expected 1 x C x h x w"
                )));
            }
            let bad = data.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                return Err(Error::NonFinite {
                    model: self.manifest.name.clone(),
                    frame,
                    count: bad,
                });
            }
            blocks.push((
                dims[1] as usize,
                dims[3] as usize,
                dims[2] as usize,
                data.to_vec(),
            ));
        }
        let (_, width, height, _) = blocks[0];
        let views: Vec<FeatureBlock<'_>> = blocks
            .iter()
            .map(|(channels, width, height, data)| FeatureBlock {
                data,
                channels: *channels,
                width: *width,
                height: *height,
            })
            .collect();
        CellFeatures::hypercolumn(&views, width, height)
            .map(Some)
            .map_err(|e| fail(e.to_string()))
    }

    /// An inference error on `frame` of this model, for a reason.
    fn failure(&self, frame: u64) -> impl Fn(String) -> Error + use<> {
        let model = self.manifest.name.clone();
        move |reason| Error::Inference {
            model: model.clone(),
            frame,
            reason,
        }
    }

    /// The graph's inputs for `input`, named as the manifest names them.
    fn feeds(
        &self,
        input: ModelInput<'_>,
    ) -> Result<Vec<(Cow<'static, str>, SessionInputValue<'static>)>> {
        let ModelInput {
            luma,
            width: w,
            height: h,
            hints,
            frame,
        } = input;
        let n = w * h;
        let fail = self.failure(frame);
        if luma.len() != n {
            return Err(fail(format!(
                "luma holds {} values for {w}x{h}",
                luma.len()
            )));
        }
        let norm = self.norm;
        let gray = &self.gray;
        let adapter = self.manifest.adapter;
        let tensor = |c: usize, data: Vec<f32>| {
            Tensor::from_array(([1usize, c, h, w], data)).map_err(|e| fail(e.to_string()))
        };
        let mut feeds: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = Vec::new();
        let names: Vec<String> = self
            .manifest
            .inputs
            .iter()
            .map(|s| s.name.clone())
            .collect();
        match adapter {
            AdapterKind::Tincture | AdapterKind::Siggraph17 | AdapterKind::Eccv16 => {
                let l: Vec<f32> = luma
                    .iter()
                    .map(|&y| (gray.get(y) + norm.l_offset) * norm.l_scale)
                    .collect();
                feeds.push((names[0].clone().into(), tensor(1, l)?.into()));
                if adapter.takes_hints() {
                    let (ab, mask) = rasterise_hints(hints, w, h);
                    let ab = ab.into_iter().map(|v| v * norm.ab_scale).collect();
                    let mask = mask.into_iter().map(|v| v * norm.mask_scale).collect();
                    feeds.push((names[1].clone().into(), tensor(2, ab)?.into()));
                    feeds.push((names[2].clone().into(), tensor(1, mask)?.into()));
                }
            }
            AdapterKind::Deoldify | AdapterKind::Ddcolor => {
                // The gray picture as RGB: Lab(L, 0, 0) is R = G = B = Y'.
                let mut rgb = vec![0.0f32; 3 * n];
                for c in 0..3 {
                    for (o, &y) in rgb[c * n..(c + 1) * n].iter_mut().zip(luma) {
                        *o = (y.clamp(0.0, 1.0) - norm.rgb_mean[c]) / norm.rgb_std[c];
                    }
                }
                feeds.push((names[0].clone().into(), tensor(3, rgb)?.into()));
            }
        }
        Ok(feeds)
    }

    fn run_once(&mut self, input: ModelInput<'_>) -> Result<[Vec<f32>; 2]> {
        let ModelInput {
            width: w,
            height: h,
            frame,
            ..
        } = input;
        let n = w * h;
        let fail = self.failure(frame);
        let norm = self.norm;
        let adapter = self.manifest.adapter;
        let feeds = self.feeds(input)?;
        let out_name = self.manifest.outputs[0].name.clone();
        // Only the colour: a graph's other outputs (the class distribution)
        // are not computed for it.
        let options = RunOptions::new()
            .map_err(|e| fail(e.to_string()))?
            .with_outputs(OutputSelector::no_default().with(out_name.clone()));
        let outputs = self
            .session
            .run_with_options(feeds, &options)
            .map_err(|e| fail(e.to_string()))?;
        let value = outputs
            .get(&out_name)
            .ok_or_else(|| fail(format!("the graph returned no `{out_name}`")))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(format!("output `{out_name}` is not a float tensor: {e}")))?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let want_c = adapter.output_channels();
        if dims.len() != 4 || dims[0] != 1 || dims[1] != want_c || dims[2] < 1 || dims[3] < 1 {
            return Err(fail(format!(
                "output `{out_name}` has shape {dims:?}; expected 1 x {want_c} x H x W ({})",
                if want_c == 2 { "ab" } else { "RGB" }
            )));
        }
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::NonFinite {
                model: self.manifest.name.clone(),
                frame,
                count: bad,
            });
        }
        let (oh, ow) = (dims[2] as usize, dims[3] as usize);
        let plane = |c: usize| resize_bilinear(&data[c * ow * oh..(c + 1) * ow * oh], ow, oh, w, h);
        let ab = if want_c == 2 {
            [plane(0), plane(1)].map(|p| {
                p.into_iter()
                    .map(|v| v * norm.out_scale)
                    .collect::<Vec<_>>()
            })
        } else {
            let (r, g, b) = (plane(0), plane(1), plane(2));
            let mut a_out = vec![0.0; n];
            let mut b_out = vec![0.0; n];
            for i in 0..n {
                let rgb = [r[i], g[i], b[i]]
                    .iter()
                    .enumerate()
                    .map(|(c, &v)| {
                        f64::from((v * norm.out_rgb_std[c] + norm.out_rgb_mean[c]).clamp(0.0, 1.0))
                    })
                    .collect::<Vec<_>>();
                let lab = srgb_to_lab([rgb[0], rgb[1], rgb[2]]);
                a_out[i] = lab[1] as f32;
                b_out[i] = lab[2] as f32;
            }
            [a_out, b_out]
        };
        Ok(ab)
    }
}

/// Hints as the model's dense `ab` (planar, 2 planes) and mask planes.
pub fn rasterise_hints(hints: &[Hint], w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let n = w * h;
    let mut ab = vec![0.0f32; 2 * n];
    let mut mask = vec![0.0f32; n];
    for hint in hints {
        let half = (hint.size.max(1.0) - 1.0) / 2.0;
        let x0 = (hint.x - half).round().max(0.0) as usize;
        let y0 = (hint.y - half).round().max(0.0) as usize;
        let x1 = ((hint.x + half).round() as usize).min(w.saturating_sub(1));
        let y1 = ((hint.y + half).round() as usize).min(h.saturating_sub(1));
        for y in y0..=y1.max(y0).min(h.saturating_sub(1)) {
            for x in x0..=x1.max(x0).min(w.saturating_sub(1)) {
                let i = y * w + x;
                ab[i] = hint.ab[0];
                ab[n + i] = hint.ab[1];
                mask[i] = 1.0;
            }
        }
    }
    (ab, mask)
}

/// Bilinear resampling with pixel centres aligned (as `align_corners=False`).
pub fn resize_bilinear(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    if sw == dw && sh == dh {
        return src.to_vec();
    }
    let mut out = vec![0.0f32; dw * dh];
    let xs = bilinear_taps(dw, sw);
    for (y, (j, j1, t)) in bilinear_taps(dh, sh).into_iter().enumerate() {
        let (r0, r1) = (&src[j * sw..(j + 1) * sw], &src[j1 * sw..(j1 + 1) * sw]);
        for (o, &(i, i1, u)) in out[y * dw..(y + 1) * dw].iter_mut().zip(&xs) {
            let top = r0[i] + (r0[i1] - r0[i]) * u;
            let bot = r1[i] + (r1[i1] - r1[i]) * u;
            *o = top + (bot - top) * t;
        }
    }
    out
}

/// Area-average downscaling (each output pixel the mean of the source
/// pixels it covers); bilinear when enlarging.
pub fn resize_area(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    if dw >= sw || dh >= sh {
        return resize_bilinear(src, sw, sh, dw, dh);
    }
    let span = |i: usize, s: usize, d: usize| (i * s / d, ((i + 1) * s).div_ceil(d).min(s));
    let mut rows = vec![0.0f32; dw * sh];
    for y in 0..sh {
        let r = &src[y * sw..(y + 1) * sw];
        for x in 0..dw {
            let (a, b) = span(x, sw, dw);
            rows[y * dw + x] = r[a..b].iter().sum::<f32>() / (b - a) as f32;
        }
    }
    let mut out = vec![0.0f32; dw * dh];
    for y in 0..dh {
        let (a, b) = span(y, sh, dh);
        for x in 0..dw {
            let s: f32 = (a..b).map(|j| rows[j * dw + x]).sum();
            out[y * dw + x] = s / (b - a) as f32;
        }
    }
    out
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_l_is_lab_lightness() {
        assert!((gray_l(1.0) - 100.0).abs() < 1e-3);
        assert!(gray_l(0.0).abs() < 1e-3);
        // sRGB 119/255 is close to L* 50.
        assert!(
            (gray_l(119.0 / 255.0) - 50.0).abs() < 0.5,
            "{}",
            gray_l(119.0 / 255.0)
        );
        let t = GrayL::default();
        for i in 0..=100 {
            let y = i as f32 / 100.0;
            assert!((t.get(y) - gray_l(y)).abs() < 0.02);
        }
    }

    #[test]
    fn resizing_keeps_constants_and_means() {
        let src: Vec<f32> = (0..64).map(|i| (i % 8) as f32).collect();
        let down = resize_area(&src, 8, 8, 4, 4);
        assert_eq!(down[0], 0.5);
        assert_eq!(down[3], 6.5);
        let up = resize_bilinear(&[2.0; 4], 2, 2, 5, 3);
        assert!(up.iter().all(|&v| v == 2.0));
    }

    #[test]
    fn hints_rasterise_as_patches() {
        let hints = [Hint {
            x: 2.0,
            y: 1.0,
            ab: [10.0, -5.0],
            size: 3.0,
        }];
        let (ab, mask) = rasterise_hints(&hints, 5, 4);
        assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), 9);
        assert_eq!(ab[1], 10.0);
        assert_eq!(ab[20 + 2 * 5 + 3], -5.0);
        assert_eq!(mask[3 * 5 + 2], 0.0);
    }

    /// A 2 x 1 map over a 5 x 5 grid of classes 10 apart: the left cell
    /// holds a red mode spread over three neighbouring classes and a weaker
    /// blue one; the right cell is sure of one green class.
    fn two_cell_map() -> ClassMap {
        let centres: Vec<[f32; 2]> = (0..25)
            .map(|i| [(i / 5) as f32 * 10.0 - 20.0, (i % 5) as f32 * 10.0 - 20.0])
            .collect();
        let class = |a: f32, b: f32| {
            centres
                .iter()
                .position(|c| *c == [a, b])
                .expect("a class centre")
        };
        let mut prob = vec![0.0f32; 25 * 2];
        let mut set = |c: usize, cell: usize, p: f32| prob[c * 2 + cell] = p;
        set(class(20.0, 10.0), 0, 0.3);
        set(class(20.0, 20.0), 0, 0.2);
        set(class(10.0, 10.0), 0, 0.1);
        set(class(-20.0, -20.0), 0, 0.25);
        set(class(0.0, 0.0), 0, 0.15);
        set(class(-20.0, 10.0), 1, 1.0);
        ClassMap {
            width: 2,
            height: 1,
            centres,
            prob,
        }
    }

    #[test]
    fn likely_colours_gather_neighbouring_classes_most_likely_first() {
        let map = two_cell_map();
        let left = map.likely_at(0.1, 0.5, 5, 0.01);
        assert_eq!(left.len(), 3, "{left:?}");
        // The red mode: 0.3 + 0.2 + 0.1, at their weighted mean.
        assert!((left[0].probability - 0.6).abs() < 1e-5, "{left:?}");
        let want = [
            (0.3 * 20.0 + 0.2 * 20.0 + 0.1 * 10.0) / 0.6,
            (0.3 * 10.0 + 0.2 * 20.0 + 0.1 * 10.0) / 0.6,
        ];
        assert!((left[0].ab[0] - want[0]).abs() < 1e-4 && (left[0].ab[1] - want[1]).abs() < 1e-4);
        assert_eq!(left[1].ab, [-20.0, -20.0]);
        assert_eq!(left[2].ab, [0.0, 0.0]);
        assert!(
            left.windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
        // Limits: the count, and the smallest probability worth showing.
        assert_eq!(map.likely_at(0.1, 0.5, 1, 0.01).len(), 1);
        assert_eq!(map.likely_at(0.1, 0.5, 5, 0.2).len(), 2);
        let right = map.likely_at(0.9, 0.5, 5, 0.01);
        assert_eq!(
            right,
            vec![LikelyColour {
                ab: [-20.0, 10.0],
                probability: 1.0
            }]
        );
        // Points outside the picture are clamped to its edge.
        assert_eq!(map.likely_at(7.0, -3.0, 5, 0.01), right);
        // A map whose sizes do not fit its data says nothing.
        let broken = ClassMap {
            prob: vec![0.5; 3],
            ..map
        };
        assert!(broken.likely_at(0.5, 0.5, 5, 0.0).is_empty());
    }
}
