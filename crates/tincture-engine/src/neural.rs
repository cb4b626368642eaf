//! The neural colorizer for the render pipeline: the model runs on the
//! inference worker thread ("tincture-infer"), and the pipeline sends it
//! each frame as a batch job.

use std::sync::Arc;

use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_infer::model::ClassMap;
use tincture_infer::worker::Job;
use tincture_infer::{
    ExecutionChoice, Hint, InferenceWorker, Model, ModelRegistry, ModelSource, NeuralColorizer,
    RenderSettings,
};

use crate::Result;

/// How to find and run a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelChoice {
    /// `builtin`, a user model's name, or a manifest / `.onnx` path.
    pub spec: String,
    /// Render resolution.
    pub render: RenderSettings,
    /// CPU only, or the best accelerator present.
    pub execution: ExecutionChoice,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for ModelChoice {
    fn default() -> Self {
        Self {
            spec: "builtin".into(),
            render: RenderSettings::default(),
            execution: ExecutionChoice::Auto,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Opens the model `choice` names, on the calling thread.
///
/// # Errors
/// When the model cannot be found or loaded.
pub fn open_colorizer(choice: &ModelChoice) -> Result<NeuralColorizer> {
    let source = ModelRegistry::standard().resolve(&choice.spec)?;
    let model = match &source {
        ModelSource::Manifest(p) => Model::open(p, choice.execution, choice.threads)?,
        ModelSource::Onnx(p) => Model::open_onnx(p, choice.execution, choice.threads)?,
    };
    Ok(NeuralColorizer::new(model, choice.render))
}

/// A [`Colorizer`] that sends every frame to the inference worker.
#[derive(Debug)]
pub struct WorkerColorizer {
    worker: InferenceWorker,
    name: String,
    provider: String,
    settings: serde_json::Value,
    hints: Vec<Hint>,
    /// The short side asked for the frames now (a shot's own).
    short_side: Option<u32>,
    next_id: u64,
}

impl WorkerColorizer {
    /// Starts a worker for `choice`; the model loads on the worker thread.
    ///
    /// # Errors
    /// When the model cannot be loaded.
    pub fn start(choice: &ModelChoice) -> Result<Self> {
        let owned = choice.clone();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (worker, name, provider) = InferenceWorker::start(move || {
            let c = open_colorizer(&owned).map_err(|e| match e {
                crate::Error::Model(m) => m,
                other => tincture_infer::Error::WorkerStopped {
                    reason: other.to_string(),
                },
            })?;
            let _ = tx.send(Colorizer::settings(&c));
            Ok(c)
        })?;
        let settings = rx.recv().unwrap_or(serde_json::Value::Null);
        tracing::info!(model = %name, provider = %provider, "neural colorizer ready");
        Ok(Self {
            worker,
            name,
            provider,
            settings,
            hints: Vec::new(),
            short_side: None,
            next_id: 0,
        })
    }

    /// The execution provider the worker's session runs on.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Hints applied to every frame (stills).
    pub fn set_hints(&mut self, hints: Vec<Hint>) {
        self.hints = hints;
    }

    /// The model's a\*b\* class distribution over one frame (see
    /// [`NeuralColorizer::classes`]); `None` when the model has none.
    ///
    /// # Errors
    /// When the model fails on the frame.
    pub fn classes(&mut self, luma: &LumaImage, frame_index: u64) -> Result<Option<ClassMap>> {
        self.next_id += 1;
        let job = Job {
            luma: Arc::new(luma.clone()),
            hints: Vec::new(),
            frame: frame_index,
            matrix: Matrix::Bt709,
            short_side: self.short_side,
        };
        Ok(self.worker.classes_blocking(self.next_id, job)?)
    }
}

impl Colorizer for WorkerColorizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn settings(&self) -> serde_json::Value {
        let mut s = self.settings.clone();
        if let Some(o) = s.as_object_mut() {
            o.insert("hints".into(), self.hints.len().into());
        }
        s
    }

    fn set_render_short_side(&mut self, short_side: Option<u32>) {
        self.short_side = short_side;
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<ChromaField> {
        self.next_id += 1;
        let job = Job {
            luma: Arc::new(luma.clone()),
            hints: self.hints.clone(),
            frame: frame_index,
            matrix,
            short_side: self.short_side,
        };
        self.worker
            .colorize_blocking(self.next_id, job)
            .map_err(|e| tincture_core::Error::Engine {
                message: e.to_string(),
            })
    }
}
