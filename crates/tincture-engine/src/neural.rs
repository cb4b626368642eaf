//! The neural colorizer for the render pipeline: the model runs on the
//! inference worker thread ("tincture-infer"), and the pipeline sends it
//! each frame as a batch job.

use std::sync::Arc;

use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::memory::CellFeatures;
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

/// One model loaded on an inference worker thread.
#[derive(Debug)]
struct Loaded {
    worker: InferenceWorker,
    name: String,
    provider: String,
    settings: serde_json::Value,
}

impl Loaded {
    fn start(choice: &ModelChoice) -> Result<Self> {
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
        })
    }
}

/// A [`Colorizer`] that sends every frame to the inference worker.
///
/// Shots may ask for a model of their own ([`Colorizer::set_model`]): each
/// other model is started, on a worker thread of its own, the first time a
/// frame needs it, and kept for the frames after.
#[derive(Debug)]
pub struct WorkerColorizer {
    choice: ModelChoice,
    main: Loaded,
    /// Models other shots asked for, by their name as given (or why they
    /// could not be loaded).
    others: std::collections::HashMap<String, std::result::Result<Loaded, String>>,
    /// The model asked for the frames now (a shot's own); `None` for `main`.
    model: Option<String>,
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
        Ok(Self {
            choice: choice.clone(),
            main: Loaded::start(choice)?,
            others: std::collections::HashMap::new(),
            model: None,
            hints: Vec::new(),
            short_side: None,
            next_id: 0,
        })
    }

    /// The execution provider the worker's session runs on.
    pub fn provider(&self) -> &str {
        &self.main.provider
    }

    /// Hints applied to every frame (stills).
    pub fn set_hints(&mut self, hints: Vec<Hint>) {
        self.hints = hints;
    }

    /// The model for the frames now: the main one, or the shot's own
    /// (started the first time it is asked for).
    fn current(&mut self) -> std::result::Result<&Loaded, String> {
        let Some(spec) = self.model.clone().filter(|m| *m != self.choice.spec) else {
            return Ok(&self.main);
        };
        let choice = ModelChoice {
            spec: spec.clone(),
            ..self.choice.clone()
        };
        let loaded = self
            .others
            .entry(spec.clone())
            .or_insert_with(|| Loaded::start(&choice).map_err(|e| e.to_string()));
        loaded
            .as_ref()
            .map_err(|e| format!("the shot's model `{spec}` cannot be used: {e}"))
    }

    /// A new job id and the job for one frame.
    fn job(
        &mut self,
        luma: &LumaImage,
        frame: u64,
        hints: Vec<Hint>,
        matrix: Matrix,
    ) -> (u64, Job) {
        self.next_id += 1;
        let job = Job {
            luma: Arc::new(luma.clone()),
            hints,
            frame,
            matrix,
            short_side: self.short_side,
        };
        (self.next_id, job)
    }

    /// The model's a\*b\* class distribution over one frame (see
    /// [`NeuralColorizer::classes`]); `None` when the model has none.
    ///
    /// # Errors
    /// When the model fails on the frame.
    pub fn classes(&mut self, luma: &LumaImage, frame_index: u64) -> Result<Option<ClassMap>> {
        let (id, job) = self.job(luma, frame_index, Vec::new(), Matrix::Bt709);
        let loaded = self.current().map_err(|reason| {
            crate::Error::Model(tincture_infer::Error::WorkerStopped { reason })
        })?;
        Ok(loaded.worker.classes_blocking(id, job)?)
    }
}

impl Colorizer for WorkerColorizer {
    fn name(&self) -> &str {
        &self.main.name
    }

    fn settings(&self) -> serde_json::Value {
        let mut s = self.main.settings.clone();
        if let Some(o) = s.as_object_mut() {
            o.insert("hints".into(), self.hints.len().into());
        }
        s
    }

    fn set_render_short_side(&mut self, short_side: Option<u32>) {
        self.short_side = short_side;
    }

    fn set_model(&mut self, model: Option<&str>) {
        self.model = model.map(str::to_owned);
    }

    fn features(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
    ) -> tincture_core::Result<Option<CellFeatures>> {
        let (id, job) = self.job(luma, frame_index, Vec::new(), Matrix::Bt709);
        let loaded = self
            .current()
            .map_err(|message| tincture_core::Error::Engine { message })?;
        loaded
            .worker
            .features_blocking(id, job)
            .map_err(|e| tincture_core::Error::Engine {
                message: e.to_string(),
            })
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<ChromaField> {
        let (id, job) = self.job(luma, frame_index, self.hints.clone(), matrix);
        let loaded = self
            .current()
            .map_err(|message| tincture_core::Error::Engine { message })?;
        loaded
            .worker
            .colorize_blocking(id, job)
            .map_err(|e| tincture_core::Error::Engine {
                message: e.to_string(),
            })
    }
}
