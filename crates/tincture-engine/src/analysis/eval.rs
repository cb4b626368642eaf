//! Evaluating colorization on a colour clip taken as the truth
//! ([`evaluate`]): the clip is made gray (its own Y' plane, chroma
//! dropped), coloured back (the neural model frame by frame, or keyframes
//! whose true colour is given, propagated along the flow or by reference
//! transfer) and measured against the truth. One optical flow per frame
//! pair, from the truth's luma, is shared between the prediction's metrics
//! and the truth's own, whose warp error and CDC are the floor a
//! colorization can reach (real motion blur, noise and lighting changes
//! count too).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::compose::{OutputLayout, chroma_field_of, compose_frame};
use tincture_core::flow::FlowParams;
use tincture_core::frame::{ChromaField, Frame, LumaImage, Subsampling};
use tincture_core::look::Look;
use tincture_core::motion::Confident;
use tincture_core::transfer::{ReferenceColorizer, TransferSettings};
use tincture_core::video_metrics::{
    LumaFlow, MetricsReport, MetricsStream, SeriesSummary, StreamOptions,
};
use tincture_infer::NeuralColorizer;
use tincture_media::VideoReader;

use super::plot::{Plot, StripColumn, report_plot};
use super::{FrameRange, file_name, frame_range, frames_label, rgb8, why_gray};
use crate::film::{FilmColorizer, FilmPlan, KeyColour};
use crate::neural::{ModelChoice, open_colorizer};
use crate::{Error, Result};
use tincture_core::memory::MemoryParams;

/// The stabiliser's strength with keyframes when none is given.
pub const DEFAULT_STABILISE: f32 = 0.6;

/// What to evaluate and how to colour it.
#[derive(Clone, Debug, Default)]
pub struct EvalRequest {
    /// A colour clip: the truth. Its own luma is the gray input that is
    /// coloured back.
    pub truth: PathBuf,
    /// The frames to evaluate, inclusive; `None` for all of them.
    pub frames: Option<(u64, u64)>,
    /// Frames whose true colour is given. Every other frame takes its colour
    /// by propagation along the optical flow from the keyframes around it,
    /// joined with the model's prior where propagation is unsure. Empty: the
    /// model colours every frame on its own.
    pub keyframes: Vec<u64>,
    /// With keyframes: colour the other frames by reference transfer from
    /// the nearest keyframe at or before them, instead of propagation.
    pub transfer: bool,
    /// With keyframes: propagation alone, without the model's prior.
    pub no_prior: bool,
    /// With keyframes and the model: match frames against a memory of
    /// coloured frames where propagation fails (see
    /// [`tincture_core::memory`]).
    pub memory: bool,
    /// With the memory: the weight of matched colour per unit of its
    /// confidence; `None`: the engine's.
    pub memory_weight: Option<f32>,
    /// With the memory: best cosines at or below this give no confidence;
    /// `None`: the engine's.
    pub memory_floor: Option<f32>,
    /// With the memory: recent frames kept besides the keyframes; `None`:
    /// the engine's.
    pub memory_recent: Option<usize>,
    /// With the memory: the carried confidence above which matched colour
    /// has no say; `None`: the engine's.
    pub memory_gate: Option<f32>,
    /// Strength of the temporal stabiliser, 0 (off) to 0.95; `None`:
    /// [`DEFAULT_STABILISE`] with keyframes, 0 without.
    pub stabilise: Option<f32>,
    /// How fast the prior fades in where propagation stays unsure, per
    /// frame, 0 to 1; `None`: the film colorizer's own.
    pub prior_fade: Option<f32>,
    /// How steady the prior is held along the motion before it joins, 0 to
    /// 0.95; `None`: the film colorizer's own.
    pub prior_steady: Option<f32>,
    /// Colour photographs that steer the model's prior for every frame, as
    /// a project's reference photos do. Gray or unreadable ones are refused.
    pub reference_photos: Vec<PathBuf>,
    /// Collect a strip column every this many frames (see
    /// [`Evaluation::strip`]); `None` for no strip. The strip needs the model.
    pub strip_every: Option<u64>,
    /// The model, for the prior, for colouring without keyframes and for the
    /// strip.
    pub model: ModelChoice,
}

/// What an evaluation reports as it goes.
#[derive(Clone, Debug)]
pub enum EvalEvent {
    /// A model was loaded (for the prior or the strip).
    ModelOpened {
        /// The model's name.
        name: String,
        /// Where it runs.
        provider: String,
    },
    /// How the clip is coloured, in words ("propagation with the model's
    /// prior, stabilised 0.6").
    Colouring(String),
    /// Frames evaluated so far, of `total`.
    Progress {
        /// Frames done.
        done: u64,
        /// Frames to do.
        total: u64,
    },
}

/// What was colouring a frame that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colourer {
    /// The film colorizer (propagation, the model's prior, the stabiliser;
    /// the model frame by frame without keyframes).
    Film,
    /// Reference transfer from a keyframe.
    Transfer {
        /// The keyframe.
        keyframe: u64,
    },
    /// The model on its own, for the strip.
    Model,
}

impl std::fmt::Display for Colourer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Film => f.write_str("colouring"),
            Self::Transfer { keyframe } => {
                write!(f, "reference transfer from keyframe {keyframe}")
            }
            Self::Model => f.write_str("the model"),
        }
    }
}

/// What [`evaluate`] found.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The truth.
    pub truth: PathBuf,
    /// The frames asked for, inclusive.
    pub frames: (u64, u64),
    /// How the clip was coloured, in words.
    pub engine: String,
    /// The keyframes whose true colour was given, sorted.
    pub keyframes: Vec<u64>,
    /// The coloured clip measured against the truth.
    pub report: MetricsReport,
    /// The truth's own figures: its warp error and CDC are the floor.
    pub floor: MetricsReport,
    /// Every Nth frame (see [`EvalRequest::strip_every`]) as gray, the model
    /// frame by frame, this evaluation's output and the truth.
    pub strip: Vec<StripColumn>,
    /// Whether the cancel flag stopped the run before the last frame; the
    /// figures then cover the frames evaluated before it.
    pub stopped: bool,
    /// Per frame evaluated, the share of it coloured from weak sources
    /// (see [`tincture_core::propagate::Propagator::weak_share`]); empty
    /// unless the film colorizer coloured it.
    pub weak_share: Vec<f32>,
}

/// The truth's own temporal metrics in [`EvalJson`].
#[derive(Serialize)]
pub struct TruthJson<'a> {
    /// The truth's warp error.
    pub warp_error: &'a SeriesSummary,
    /// The truth's CDC.
    pub cdc: &'a SeriesSummary,
}

/// What `tincture-cli eval --json` writes.
#[derive(Serialize)]
pub struct EvalJson<'a> {
    /// The truth, as given.
    pub video: String,
    /// The truth again: the reference the output was measured against.
    pub reference: Option<String>,
    /// The source frame index of the series' first value.
    pub first_frame: u64,
    /// How the clip was coloured.
    pub engine: String,
    /// The keyframes given.
    pub keyframes: &'a [u64],
    /// The report's fields.
    #[serde(flatten)]
    pub report: &'a MetricsReport,
    /// The floor.
    pub truth: TruthJson<'a>,
    /// Per frame, the share coloured from weak sources (film colorizer only).
    #[serde(skip_serializing_if = "<[f32]>::is_empty")]
    pub weak_share: &'a [f32],
    /// Frames where one more keyframe would help most, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggested_keyframes: Vec<super::weak::Suggestion>,
}

impl Evaluation {
    /// "TRUTH coloured back by ENGINE from keyframes [..] (frames A-B)".
    pub fn title(&self) -> String {
        format!(
            "{} coloured back by {}{} ({})",
            self.truth.display(),
            self.engine,
            if self.keyframes.is_empty() {
                String::new()
            } else {
                format!(" from keyframes {:?}", self.keyframes)
            },
            frames_label(self.frames)
        )
    }

    /// The report with its floor and how it was made.
    pub fn json(&self) -> EvalJson<'_> {
        let truth = self.truth.display().to_string();
        EvalJson {
            video: truth.clone(),
            reference: Some(truth),
            first_frame: self.frames.0,
            engine: self.engine.clone(),
            keyframes: &self.keyframes,
            report: &self.report,
            truth: TruthJson {
                warp_error: &self.floor.warp_error,
                cdc: &self.floor.cdc,
            },
            weak_share: &self.weak_share,
            suggested_keyframes: self.suggested_keyframes(),
        }
    }

    /// Frames where one more keyframe would help most, best first, from the
    /// weak share (empty when it was not recorded).
    pub fn suggested_keyframes(&self) -> Vec<super::weak::Suggestion> {
        super::weak::suggestions(&self.weak_share, self.frames.0, &self.keyframes)
    }

    /// The report's plot, with the truth's floor behind its flicker.
    pub fn plot(&self) -> Plot<'_> {
        let title = format!(
            "Tincture eval: {} coloured back by {}, {}",
            file_name(&self.truth),
            self.engine,
            frames_label(self.frames)
        );
        report_plot(title, &self.report, Some(&self.floor), self.frames.0)
    }
}

/// The gray input of a truth frame: its own Y' plane, its chroma dropped.
fn gray_of(frame: &Frame) -> Frame {
    Frame {
        bit_depth: frame.bit_depth,
        y: frame.y.clone(),
        chroma: None,
        range: frame.range,
        matrix: frame.matrix,
    }
}

/// The truth's luma with `chroma` joined to it as a render would (luma
/// copied, chroma at 4:4:4).
fn with_chroma(frame: &Frame, chroma: &ChromaField) -> Frame {
    let gray = gray_of(frame);
    compose_frame(
        &gray,
        Some(chroma),
        OutputLayout {
            bit_depth: gray.bit_depth,
            subsampling: Subsampling::S444,
        },
    )
}

/// How a clip is coloured.
enum Engine {
    /// The film colorizer: keyframes of true colour propagated along the
    /// flow, the model's prior, the stabiliser. Without keyframes it is the
    /// model frame by frame, optionally stabilised.
    Film(Box<FilmColorizer>, String),
    /// Keyframes keep their true chroma; other frames take reference
    /// transfer from the nearest keyframe at or before them.
    Keyframes {
        /// Sorted, distinct.
        keys: Vec<u64>,
        /// One per key.
        transfer: Vec<ReferenceColorizer>,
    },
}

impl Engine {
    fn describe(&self) -> String {
        match self {
            Self::Film(_, d) => d.clone(),
            Self::Keyframes { .. } => "reference transfer".into(),
        }
    }

    /// Chroma for frame `index` of the truth `truth`, whose luma is `luma`;
    /// `None` for a keyframe, which keeps the truth's own chroma.
    fn chroma(
        &mut self,
        gt: &Path,
        index: u64,
        luma: &LumaImage,
        truth: &Frame,
    ) -> Result<Option<ChromaField>> {
        let failed = |by: Colourer| {
            move |source| Error::Evaluate {
                path: gt.to_owned(),
                frame: index,
                by,
                source,
            }
        };
        match self {
            Self::Film(c, _) => c
                .colorize(luma, index, truth.matrix)
                .map(Some)
                .map_err(failed(Colourer::Film)),
            Self::Keyframes { keys, transfer } => {
                if keys.binary_search(&index).is_ok() {
                    return Ok(None);
                }
                let k = keys.partition_point(|&k| k <= index).saturating_sub(1);
                transfer[k]
                    .colorize(luma, index, truth.matrix)
                    .map(Some)
                    .map_err(failed(Colourer::Transfer { keyframe: keys[k] }))
            }
        }
    }
}

/// The keyframes sorted and distinct, checked to lie inside a clip of
/// `count` frames.
fn check_keys(gt: &Path, keys: &[u64], count: u64) -> Result<Vec<u64>> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    if let Some(&bad) = keys.iter().find(|&&k| k >= count) {
        return Err(Error::Setting {
            name: "keyframes",
            value: bad.to_string(),
            reason: format!(
                "{} has {count} frames (0-{}); keyframes must lie inside it",
                gt.display(),
                count.saturating_sub(1)
            ),
        });
    }
    Ok(keys)
}

/// A setting outside its range.
fn setting(name: &'static str, value: f32, reason: &str) -> Error {
    Error::Setting {
        name,
        value: value.to_string(),
        reason: reason.to_owned(),
    }
}

/// The stabiliser's strength `req` asks for.
fn strength(req: &EvalRequest, keys: &[u64]) -> f32 {
    req.stabilise.unwrap_or(if keys.is_empty() {
        0.0
    } else {
        DEFAULT_STABILISE
    })
}

/// The film colorizer: keyframes carry the truth's chroma.
fn film_engine(
    req: &EvalRequest,
    count: u64,
    keys: &[u64],
    prior: Option<Box<dyn Colorizer>>,
) -> Result<FilmColorizer> {
    let gt = &req.truth;
    let mut plan = FilmPlan::whole_film(gt.clone(), count);
    let strength = strength(req, keys);
    if !(0.0..=1.0).contains(&strength) {
        return Err(setting(
            "stabilise",
            strength,
            "give a strength from 0 to 0.95",
        ));
    }
    for shot in &mut plan.shots {
        shot.stabiliser = strength;
        // The truth is scored as it is: no creative look.
        shot.look = Look::identity();
        shot.model_prior = prior.is_some();
    }
    for path in &req.reference_photos {
        let photo = crate::reference::load_rgb(path)?;
        // A gray photo has no colour to give: refused here, by name.
        ReferenceColorizer::new(&photo, Matrix::Bt709, TransferSettings::default()).map_err(
            |e| Error::Reference {
                path: path.clone(),
                reason: e.to_string(),
            },
        )?;
        let index = plan.references.len();
        plan.references.push(photo);
        plan.reference_weights.push(1.0);
        for shot in &mut plan.shots {
            shot.references.push(index);
        }
    }
    plan.params.stabiliser = strength;
    if req.memory {
        let mut m = MemoryParams::default();
        if let Some(f) = req.memory_floor {
            if !(0.0..1.0).contains(&f) || f >= m.cosine_full {
                return Err(setting(
                    "memory_floor",
                    f,
                    "give a cosine from 0 to below the full-confidence cosine",
                ));
            }
            m.cosine_floor = f;
        }
        if let Some(r) = req.memory_recent {
            m.max_recent = r;
        }
        if let Some(g) = req.memory_gate {
            if !(0.0..=1.0).contains(&g) || g == 0.0 {
                return Err(setting(
                    "memory_gate",
                    g,
                    "give a confidence above 0, at most 1",
                ));
            }
            plan.params.matched_gate = g;
        }
        plan.params.memory = Some(m);
        if let Some(w) = req.memory_weight {
            if !(0.0..=1000.0).contains(&w) {
                return Err(setting("memory_weight", w, "give a weight from 0 to 1000"));
            }
            plan.params.matched_weight = w;
        }
    }
    if let Some(f) = req.prior_fade {
        if !(0.0..=1.0).contains(&f) {
            return Err(setting("prior_fade", f, "give a rate from 0 to 1"));
        }
        plan.params.prior_fade = f;
    }
    if let Some(s) = req.prior_steady {
        if !(0.0..=0.95).contains(&s) {
            return Err(setting(
                "prior_steady",
                s,
                "give a steadiness from 0 to 0.95",
            ));
        }
        plan.params.prior_steadiness = s;
    }
    let mut reader = VideoReader::open(gt)?;
    for &k in keys {
        let f = reader.seek(k)?;
        let chroma = chroma_field_of(&f.frame);
        plan.keys
            .insert(k, KeyColour::Given(Confident::uniform(chroma, 1.0)));
    }
    Ok(FilmColorizer::new(plan, prior))
}

/// One reference-transfer engine per keyframe, from its true colour.
fn keyframe_engine(gt: &Path, keys: &[u64]) -> Result<Engine> {
    let mut reader = VideoReader::open(gt)?;
    let matrix = reader.matrix();
    let mut transfer = Vec::with_capacity(keys.len());
    for &k in keys {
        let f = reader.seek(k)?;
        let c = ReferenceColorizer::new(&rgb8(&f.frame), matrix, TransferSettings::default())
            .map_err(|e| Error::Analysis {
                path: gt.to_owned(),
                reason: format!(
                    "frame {k}: this keyframe cannot give its colour to the others: {e}"
                ),
            })?;
        transfer.push(c);
    }
    Ok(Engine::Keyframes {
        keys: keys.to_vec(),
        transfer,
    })
}

/// "N, N, N".
fn list(keys: &[u64]) -> String {
    keys.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `req` colours the clip, in words.
fn describe(req: &EvalRequest, keys: &[u64], needs_model: bool) -> String {
    let what = match (keys.is_empty(), needs_model) {
        (true, _) => "the model frame by frame".to_owned(),
        (false, true) => "propagation with the model's prior".to_owned(),
        (false, false) => "propagation alone".to_owned(),
    };
    let what = match req.reference_photos.len() {
        0 => what,
        1 => format!("{what}, steered by a reference photo"),
        n => format!("{what}, steered by {n} reference photos"),
    };
    let what = if req.memory && needs_model && !keys.is_empty() {
        format!("{what} and the colour memory")
    } else {
        what
    };
    let strength = strength(req, keys);
    if strength > 0.0 {
        format!("{what}, stabilised {strength}")
    } else {
        what
    }
}

/// Evaluates colorization on the truth `req.truth`, reporting through
/// `on_event` (the models loaded, how the clip is coloured, progress after
/// each frame) and stopping between frames once `cancel` is set.
///
/// # Errors
/// [`Error::Media`] or [`Error::Analysis`] when the truth cannot be read or
/// measured, or is gray; [`Error::FrameRange`] for frames outside it;
/// [`Error::Setting`] for a keyframe outside it, or a setting out of range
/// (or reference transfer or propagation alone without keyframes);
/// [`Error::Reference`] for a reference photo that is gray or unreadable;
/// [`Error::Model`] when the model cannot be loaded; [`Error::Evaluate`]
/// when colouring a frame fails.
pub fn evaluate(
    req: &EvalRequest,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(EvalEvent),
) -> Result<Evaluation> {
    let gt = &req.truth;
    let reader = VideoReader::open(gt)?;
    let count = reader.frame_count();
    let range = frame_range(gt, req.frames, count)?;
    if let Some(reason) = why_gray(gt, range)? {
        return Err(Error::Analysis {
            path: gt.clone(),
            reason,
        });
    }
    let keys = check_keys(gt, &req.keyframes, count)?;
    if keys.is_empty() && (req.transfer || req.no_prior) {
        return Err(Error::Setting {
            name: "keyframes",
            value: "none".into(),
            reason:
                "reference transfer and propagation alone colour from keyframes; give at least one"
                    .into(),
        });
    }
    let needs_model = !req.transfer && !req.no_prior;
    let mut engine = if req.transfer {
        // Said before the keyframes are read: that is where it can fail.
        on_event(EvalEvent::Colouring(format!(
            "reference transfer from keyframes {}",
            list(&keys)
        )));
        keyframe_engine(gt, &keys)?
    } else {
        let prior: Option<Box<dyn Colorizer>> = if needs_model {
            Some(Box::new(open_model(&req.model, &mut on_event)?))
        } else {
            None
        };
        let film = film_engine(req, count, &keys, prior)?;
        let desc = describe(req, &keys, needs_model);
        on_event(EvalEvent::Colouring(desc.clone()));
        Engine::Film(Box::new(film), desc)
    };
    // The strip's "frame by frame" row needs the model on its own.
    let mut strip_model = match req.strip_every {
        Some(_) => Some(open_model(&req.model, &mut on_event)?),
        None => None,
    };
    let mut strip = Vec::new();
    let total = range.1 - range.0 + 1;
    let mut frames = FrameRange::new(reader, range);
    let options = StreamOptions::default();
    let mut flow = LumaFlow::new(FlowParams::default());
    let mut prediction = MetricsStream::new(options);
    let mut truth = MetricsStream::new(options);
    let (mut done, mut stopped) = (0, false);
    let mut weak_share = Vec::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            stopped = done < total;
            break;
        }
        let Some(f) = frames.next()? else { break };
        let index = f.index;
        let luma = f.frame.luma_unit();
        let true_rgb = rgb8(&f.frame);
        let predicted = match engine.chroma(gt, index, &luma, &f.frame)? {
            Some(chroma) => rgb8(&with_chroma(&f.frame, &chroma)),
            // A keyframe: its luma and its true chroma, that is the truth.
            None => true_rgb.clone(),
        };
        if let Engine::Film(c, _) = &engine {
            weak_share.push(c.weak_share());
        }
        if let (Some(model), Some(every)) = (strip_model.as_mut(), req.strip_every)
            && (index - range.0) % every.max(1) == 0
        {
            let auto = model
                .colorize(&luma, index, f.frame.matrix)
                .map_err(|source| Error::Evaluate {
                    path: gt.clone(),
                    frame: index,
                    by: Colourer::Model,
                    source,
                })?;
            strip.push(StripColumn {
                index,
                rows: [
                    rgb8(&gray_of(&f.frame)),
                    rgb8(&with_chroma(&f.frame, &auto)),
                    predicted.clone(),
                    true_rgb.clone(),
                ],
            });
        }
        let flows = flow.push(&luma.data, luma.width, luma.height);
        let fail = |e: tincture_core::Error| Error::Analysis {
            path: gt.clone(),
            reason: format!("frame {index}: {e}"),
        };
        prediction
            .push_with_flow(&predicted, Some(&true_rgb), flows.as_ref())
            .map_err(fail)?;
        truth
            .push_with_flow(&true_rgb, None, flows.as_ref())
            .map_err(fail)?;
        done += 1;
        on_event(EvalEvent::Progress { done, total });
    }
    Ok(Evaluation {
        truth: gt.clone(),
        frames: range,
        engine: engine.describe(),
        keyframes: keys,
        report: prediction.report(),
        floor: truth.report(),
        strip,
        stopped,
        weak_share,
    })
}

/// Opens the model `choice` names and says so.
fn open_model(
    choice: &ModelChoice,
    on_event: &mut impl FnMut(EvalEvent),
) -> Result<NeuralColorizer> {
    let c = open_colorizer(choice)?;
    on_event(EvalEvent::ModelOpened {
        name: c.model().name().to_owned(),
        provider: c.model().provider().to_owned(),
    });
    Ok(c)
}
