//! The film colorizer: keyframes, hints, references and the model, joined
//! by propagation along the optical flow, shot by shot.
//!
//! [`FilmColorizer`] implements [`Colorizer`], so the render pipeline
//! (decode thread, encoder, stream copy, partial files, cancel, live
//! metrics) is the same for a project as for any other engine. Frames come
//! to it in order; to carry colour *backward* from a later keyframe it reads
//! ahead in the source itself, on its own read-only reader, up to that
//! keyframe. A render that starts inside a shot (a `--frames` chunk on a
//! render farm) first replays the shot from the keyframe before it (or the
//! shot's start), so a chunk equals the same frames of a whole render; with
//! a [chunk state](crate::chunk_state) folder it continues from where the
//! chunk before it left off instead, and leaves its own ends for the chunks
//! beside it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::frame::{ChromaField, LumaImage, RgbImage};
use tincture_core::look::Look;
use tincture_core::memory::{CellColour, CellFeatures, ColourMemory, EntryKind};
use tincture_core::motion::Confident;
use tincture_core::propagate::{BackwardPass, PropagationParams, Propagator, solve_key};

use crate::chunk_state::ChunkState;
use tincture_core::solver::{ChromaSolver, DataTerm};
use tincture_core::transfer::{ReferenceColorizer, TransferSettings};
use tincture_media::VideoReader;

/// A hint stroke in the film's pixel coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct StrokeHint {
    /// The path, in frame pixels.
    pub points: Vec<[f32; 2]>,
    /// Its sRGB colour; only the chroma is used.
    pub rgb: [u8; 3],
    /// Brush diameter in pixels.
    pub size: f32,
}

/// What gives a keyframe its colour.
#[derive(Clone, Debug)]
pub enum KeyColour {
    /// Colour given outright (the truth's, in an evaluation).
    Given(Confident),
    /// Colour steered by hint strokes and, optionally, a coloured version of
    /// the frame (the truth, another tool's colorized frame, a photo),
    /// solved against the frame's luma together with the prior.
    Steered {
        /// Hint strokes.
        strokes: Vec<StrokeHint>,
        /// A coloured picture of this frame.
        reference: Option<RgbImage>,
    },
}

/// One shot of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ShotPlan {
    /// First frame.
    pub start: u64,
    /// Last frame (inclusive).
    pub end: u64,
    /// Look controls.
    pub look: Look,
    /// Stabiliser strength, 0..1.
    pub stabiliser: f32,
    /// Whether the neural model's prior is used.
    pub model_prior: bool,
    /// The short side the model sees in this shot (`None`: the model's
    /// render setting).
    pub render_short_side: Option<u32>,
    /// The model for this shot (`None`: the render's own).
    pub model: Option<String>,
    /// Whether this shot is matched against a memory of its coloured
    /// frames, when the plan keeps one ([`PropagationParams::memory`]).
    pub memory: bool,
    /// Indices into [`FilmPlan::references`] of the photos that steer this
    /// shot's prior.
    pub references: Vec<usize>,
}

/// Everything the film colorizer needs.
#[derive(Clone, Debug)]
pub struct FilmPlan {
    /// The source film (read ahead, read-only).
    pub source: PathBuf,
    /// Its frame count.
    pub frame_count: u64,
    /// Shots, in order, covering the film.
    pub shots: Vec<ShotPlan>,
    /// Keyframes by frame index.
    pub keys: BTreeMap<u64, KeyColour>,
    /// External reference photos.
    pub references: Vec<RgbImage>,
    /// How strongly each photo steers (1 when missing; 0 not at all).
    pub reference_weights: Vec<f32>,
    /// Propagation settings (the stabiliser strength is taken per shot).
    pub params: PropagationParams,
}

impl FilmPlan {
    /// One shot over the whole film with default settings.
    pub fn whole_film(source: PathBuf, frame_count: u64) -> Self {
        Self {
            source,
            frame_count,
            shots: vec![ShotPlan {
                start: 0,
                end: frame_count.saturating_sub(1),
                look: Look::default(),
                stabiliser: PropagationParams::default().stabiliser,
                model_prior: true,
                render_short_side: None,
                model: None,
                memory: true,
                references: Vec::new(),
            }],
            keys: BTreeMap::new(),
            references: Vec::new(),
            reference_weights: Vec::new(),
            params: PropagationParams::default(),
        }
    }

    /// Scales what the plan places in frame pixels (strokes; keyframe
    /// pictures of the film's size) from `full` to `small`, for colouring
    /// the film at a smaller size (a preview, an analysis).
    pub fn scale(&mut self, full: (usize, usize), small: (usize, usize)) {
        let k = small.0 as f32 / full.0.max(1) as f32;
        for key in self.keys.values_mut() {
            if let KeyColour::Steered { strokes, reference } = key {
                for s in strokes.iter_mut() {
                    for p in &mut s.points {
                        *p = [p[0] * k, p[1] * k];
                    }
                    s.size = (s.size * k).max(1.0);
                }
                if let Some(img) = reference
                    && (img.width, img.height) == full
                {
                    *img = shrink_rgb(img, small);
                }
            }
        }
    }
}

/// An RGB picture resized by area averaging.
pub fn shrink_rgb(img: &RgbImage, (w, h): (usize, usize)) -> RgbImage {
    let channel = |c: usize| -> Vec<f32> {
        let plane: Vec<f32> = img
            .data
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f32::from(v))
            .collect();
        tincture_infer::model::resize_area(&plane, img.width, img.height, w, h)
    };
    let [r, g, b] = [channel(0), channel(1), channel(2)];
    let data = (0..w * h)
        .flat_map(|i| [r[i], g[i], b[i]].map(|v| v.round().clamp(0.0, 255.0) as u8))
        .collect();
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

/// The sha256 of a value's `Debug` text, streamed (a plan holds pictures).
fn digest_of_debug(value: &impl std::fmt::Debug) -> String {
    use sha2::Digest as _;
    struct Hasher(sha2::Sha256);
    impl std::fmt::Write for Hasher {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut h = Hasher(sha2::Sha256::new());
    let _ = std::fmt::Write::write_fmt(&mut h, format_args!("{value:?}"));
    h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Weight of a hint stroke against carried colour (1) and the prior.
const STROKE_WEIGHT: f32 = 4.0;
/// A backward walk over frames of later chunks leaves its colour at every
/// frame that is a multiple of this (see [`crate::chunk_state`]), so no
/// chunk walks back more than its own length and this many frames, whoever
/// ran first. 10 s at 24 fps: at 1080p, 25 MB of state each.
pub const STATE_STRIDE: u64 = 240;

/// Confidence of a keyframe steered by strokes only, away from them.
const STEERED_CONFIDENCE: f32 = 0.5;

/// The memory the backward pass may keep (checkpoints of carried colour
/// and runs of luma read ahead) when `TINCTURE_PROPAGATION_BUDGET_MB` does
/// not say: 512 MiB, whatever the shot's length, so that a whole render at
/// 1080p (decoder, solver, encoder and all) stays within 1.5 GB. (At 640
/// MiB a 2,400-frame 1080p shot peaked at 1.50 GB: the pass fills its
/// checkpoint slots the more, the longer the shot, up to its budget.)
pub const DEFAULT_PROPAGATION_BUDGET: usize = 512 << 20;

/// The backward pass's memory budget: `TINCTURE_PROPAGATION_BUDGET_MB`
/// (mebibytes) when set and valid, else [`DEFAULT_PROPAGATION_BUDGET`].
pub fn propagation_budget() -> usize {
    std::env::var("TINCTURE_PROPAGATION_BUDGET_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .and_then(|mb| mb.checked_mul(1 << 20))
        .unwrap_or(DEFAULT_PROPAGATION_BUDGET)
}

/// Asked between frames of long work; `true` stops it with
/// [`tincture_core::Error::Cancelled`].
pub type StopCheck = tincture_core::colorize::Stop;

/// The film colorizer (see the module docs).
pub struct FilmColorizer {
    plan: FilmPlan,
    prior: Option<Box<dyn Colorizer>>,
    transfers: Vec<Option<ReferenceColorizer>>,
    reader: Option<VideoReader>,
    propagator: Propagator,
    next: Option<u64>,
    /// The backward pass of the stretch being coloured, within `budget`.
    backward: Option<BackwardPass>,
    budget: usize,
    /// The keyframes' colour, for the keyframes around the frame coloured last.
    key_cache: HashMap<u64, Confident>,
    /// The size frames are coloured at: that of the luma last asked for.
    /// Frames read ahead are brought to it, so a preview that colours a
    /// smaller picture of the film replays and reads ahead at that size.
    work_size: Option<(usize, usize)>,
    /// Frames read for propagation, to give free memory back now and then.
    reads: u64,
    stop: Option<StopCheck>,
    /// Where a keyframe's solve starts (see [`warm_start`](Self::warm_start)).
    warm: HashMap<u64, ChromaField>,
    /// A preview keeps the solver of the keyframe it solved last (see
    /// [`take_key_solver`](Self::take_key_solver)).
    key_solver: Option<(u64, ChromaSolver)>,
    /// A digest of the whole plan (strokes, references, looks), so the
    /// settings digest changes with any of them.
    plan_digest: String,
    /// Out-of-order frames replay from the keyframe before them, not the shot's start.
    preview: bool,
    /// Frames replayed so far to enter shots in the middle.
    replayed: u64,
    /// The chunk state folder, and the last frame of this chunk.
    chunk: Option<(ChunkState, u64)>,
    /// The frame this colorizer entered its stretch at, whose carried
    /// colour is left in the chunk state folder.
    leave_backward_at: Option<u64>,
    /// See [`set_state_stride`](Self::set_state_stride).
    state_stride: u64,
    /// Backward steps of the passes before the current one.
    earlier_steps: u64,
    /// The memory of coloured frames of the shot being coloured, when the
    /// plan asks for one (see [`PropagationParams::memory`]).
    memory: ColourMemory,
}

/// With a memory, every this many frames since the last keyframe (or the
/// shot's start) is remembered as a recent frame.
const MEMORY_STRIDE: u64 = 4;

impl std::fmt::Debug for FilmColorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilmColorizer")
            .field("source", &self.plan.source)
            .field("shots", &self.plan.shots.len())
            .field("keys", &self.plan.keys.len())
            .field("prior", &self.prior.as_ref().map(|p| p.name().to_owned()))
            .finish_non_exhaustive()
    }
}

fn engine_error(message: String) -> tincture_core::Error {
    tincture_core::Error::Engine { message }
}

/// Chroma of an 8-bit sRGB picture under `matrix` (its own luma ignored).
pub fn chroma_of_rgb(image: &RgbImage, matrix: Matrix) -> ChromaField {
    let mut out = ChromaField::neutral(image.width, image.height);
    for (i, px) in image.data.chunks_exact(3).enumerate() {
        let rgb = [px[0], px[1], px[2]].map(|v| f32::from(v) / 255.0);
        let [_, cb, cr] = matrix.rgb_to_ycbcr(rgb);
        out.cb[i] = cb;
        out.cr[i] = cr;
    }
    out
}

/// Paints strokes into a data term: chroma and weight per pixel.
pub fn rasterise_strokes(
    strokes: &[StrokeHint],
    width: usize,
    height: usize,
    matrix: Matrix,
) -> (ChromaField, Vec<f32>) {
    let mut chroma = ChromaField::neutral(width, height);
    let mut weight = vec![0.0f32; width * height];
    for s in strokes {
        let [_, cb, cr] = matrix.rgb_to_ycbcr(s.rgb.map(|v| f32::from(v) / 255.0));
        let r = (s.size.max(1.0)) / 2.0;
        let mut stamp = |cx: f32, cy: f32| {
            let (x0, x1) = ((cx - r).floor().max(0.0), (cx + r).ceil());
            let (y0, y1) = ((cy - r).floor().max(0.0), (cy + r).ceil());
            let (x1, y1) = (x1.min(width as f32 - 1.0), y1.min(height as f32 - 1.0));
            if x1 < x0 || y1 < y0 {
                return;
            }
            for y in y0 as usize..=y1 as usize {
                for x in x0 as usize..=x1 as usize {
                    let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                    if d2 <= r * r + 0.25 {
                        let i = y * width + x;
                        chroma.cb[i] = cb;
                        chroma.cr[i] = cr;
                        weight[i] = STROKE_WEIGHT;
                    }
                }
            }
        };
        let points = &s.points;
        if let Some(&[x, y]) = points.first() {
            stamp(x, y);
        }
        for pair in points.windows(2) {
            let ([ax, ay], [bx, by]) = (pair[0], pair[1]);
            let len = (bx - ax).hypot(by - ay);
            let steps = (len / (r * 0.5).max(0.5)).ceil().max(1.0) as usize;
            for k in 1..=steps {
                let t = k as f32 / steps as f32;
                stamp(ax + t * (bx - ax), ay + t * (by - ay));
            }
        }
    }
    (chroma, weight)
}

impl FilmColorizer {
    /// A colorizer for the viewer: like [`new`](Self::new), but a frame
    /// asked for out of order is coloured without replaying its shot from
    /// the start, only from the keyframe before it (see `colorize`).
    pub fn preview(plan: FilmPlan, prior: Option<Box<dyn Colorizer>>) -> Self {
        Self {
            preview: true,
            ..Self::new(plan, prior)
        }
    }

    /// A colorizer for `plan`, with the model's prior where the plan wants it.
    pub fn new(plan: FilmPlan, prior: Option<Box<dyn Colorizer>>) -> Self {
        let transfers = plan.references.iter().map(|_| None).collect();
        let propagator = Propagator::new(plan.params);
        let plan_digest = digest_of_debug(&plan);
        let plan_memory = plan.params.memory;
        Self {
            plan,
            prior,
            transfers,
            reader: None,
            propagator,
            next: None,
            backward: None,
            budget: propagation_budget(),
            key_cache: HashMap::new(),
            work_size: None,
            reads: 0,
            stop: None,
            warm: HashMap::new(),
            key_solver: None,
            plan_digest,
            preview: false,
            replayed: 0,
            chunk: None,
            leave_backward_at: None,
            state_stride: STATE_STRIDE,
            earlier_steps: 0,
            memory: ColourMemory::new(plan_memory.unwrap_or_default()),
        }
    }

    /// Renders a chunk ending at frame `last` with the chunk state folder
    /// `dir` (see [`crate::chunk_state`]): entering a shot in the middle,
    /// it continues from the forward state the chunk before it left, if
    /// any, and starts the backward walk at the colour the chunk after it
    /// left; it leaves the same for them.
    pub fn set_chunk_state(&mut self, dir: PathBuf, last: u64) {
        let prior = self.prior.as_ref().map(|p| p.settings().to_string());
        let digest = digest_of_debug(&(&self.plan_digest, prior, crate::VERSION, self.plan.params));
        self.chunk = Some((ChunkState::new(dir, digest), last));
    }

    /// Starts the solve of keyframe `frame`'s colour from `chroma` (ignored
    /// if its size is not the frame's): for the viewer, which colours the
    /// frame being painted again after every stroke, from the colour it had
    /// before. The answer is the same system's to the solver's tolerance;
    /// the solve takes fewer iterations.
    pub fn warm_start(&mut self, frame: u64, chroma: ChromaField) {
        self.warm.insert(frame, chroma);
    }

    /// The solver a preview colorizer built for keyframe `frame`'s luma, if
    /// that keyframe is the last it solved; a colorizer built for the next
    /// revision of the same film takes it with
    /// [`reuse_key_solver`](Self::reuse_key_solver), so a stroke's solve
    /// skips building the solver's hierarchy again.
    pub fn take_key_solver(&mut self, frame: u64) -> Option<ChromaSolver> {
        match self.key_solver.take() {
            Some((f, solver)) if f == frame => Some(solver),
            other => {
                self.key_solver = other;
                None
            }
        }
    }

    /// Solves keyframe `frame` with `solver`, built for that frame's luma by
    /// an earlier colorizer of the same film (see
    /// [`take_key_solver`](Self::take_key_solver)); it is set aside if its
    /// size or parameters are not this plan's.
    pub fn reuse_key_solver(&mut self, frame: u64, solver: ChromaSolver) {
        self.key_solver = Some((frame, solver));
    }

    /// Stops long work (a backward pass, a replay) between frames when
    /// `stop` says so: its `colorize` then ends with
    /// [`tincture_core::Error::Cancelled`].
    pub fn set_stop(&mut self, stop: StopCheck) {
        self.stop = Some(stop);
    }

    /// Keeps the backward pass within `bytes` (see [`BackwardPass`]).
    pub fn set_memory_budget(&mut self, bytes: usize) {
        self.budget = bytes;
        self.drop_backward();
    }

    /// Frames replayed so far to enter shots in the middle (a `--frames`
    /// chunk, a preview's jump).
    pub fn replayed_frames(&self) -> u64 {
        self.replayed
    }

    /// The backward steps of all passes so far (frames recomputed count
    /// again).
    pub fn backward_steps(&self) -> u64 {
        self.earlier_steps + self.backward.as_ref().map_or(0, BackwardPass::steps)
    }

    /// Leaves the backward walk's colour at every `stride`-th frame in the
    /// chunk state folder instead of every [`STATE_STRIDE`]-th (for chunks
    /// shorter than that).
    pub fn set_state_stride(&mut self, stride: u64) {
        self.state_stride = stride.max(1);
    }

    /// Ends the backward pass, counting its steps.
    fn drop_backward(&mut self) {
        if let Some(pass) = self.backward.take() {
            self.earlier_steps += pass.steps();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s())
    }

    /// Keyframe `frame`'s solved colour, once a frame needed it.
    pub fn key_chroma(&self, frame: u64) -> Option<&ChromaField> {
        self.key_cache.get(&frame).map(|c| &c.chroma)
    }

    /// The share of the last frame coloured whose colour came from weak
    /// sources (see [`Propagator::weak_share`]).
    pub fn weak_share(&self) -> f32 {
        self.propagator.weak_share()
    }

    /// The plan this colorizer renders by.
    pub fn plan(&self) -> &FilmPlan {
        &self.plan
    }

    fn shot_of(&self, frame: u64) -> Option<usize> {
        self.plan
            .shots
            .iter()
            .position(|s| (s.start..=s.end).contains(&frame))
    }

    fn read_luma(&mut self, frame: u64) -> tincture_core::Result<LumaImage> {
        // A backward walk reads a frame a step: every 16 steps, the free
        // memory of the steps before goes back to the system.
        self.reads += 1;
        if self.reads.is_multiple_of(16) {
            crate::release_free_memory();
        }
        if self.reader.is_none() {
            let r = VideoReader::open(&self.plan.source)
                .map_err(|e| engine_error(format!("reading ahead for propagation: {e}")))?;
            self.reader = Some(r);
        }
        let Some(reader) = self.reader.as_mut() else {
            return Err(engine_error("the read-ahead reader is not open".into()));
        };
        let decoded = reader
            .seek(frame)
            .map_err(|e| engine_error(format!("reading ahead for propagation: {e}")))?;
        let luma = decoded.frame.luma_unit();
        Ok(match self.work_size {
            Some((w, h)) if (w, h) != (luma.width, luma.height) => LumaImage {
                width: w,
                height: h,
                data: tincture_infer::model::resize_area(&luma.data, luma.width, luma.height, w, h),
            },
            _ => luma,
        })
    }

    /// The prior for `frame`: the model's proposal and the reference photos'
    /// transfers, averaged (photos count double, times their weight: the
    /// archivist chose them; a photo weighted 0 takes no part).
    fn prior(
        &mut self,
        shot: usize,
        luma: &LumaImage,
        frame: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<Option<Confident>> {
        let use_model = self.plan.shots[shot].model_prior;
        let mut parts: Vec<(ChromaField, f32)> = Vec::new();
        if use_model && let Some(model) = self.prior.as_mut() {
            model.set_render_short_side(self.plan.shots[shot].render_short_side);
            model.set_model(self.plan.shots[shot].model.as_deref());
            parts.push((model.colorize(luma, frame, matrix)?, 1.0));
        }
        for &r in &self.plan.shots[shot].references {
            let weight = self.plan.reference_weights.get(r).copied().unwrap_or(1.0);
            if weight <= 0.0 {
                continue;
            }
            let transfer = match &mut self.transfers[r] {
                Some(t) => t,
                slot => slot.insert(ReferenceColorizer::new(
                    &self.plan.references[r],
                    matrix,
                    TransferSettings::default(),
                )?),
            };
            parts.push((transfer.colorize(luma, frame, matrix)?, 2.0 * weight));
        }
        // The weighted mean of the parts (one part is taken as it is).
        let total: f32 = parts.iter().map(|p| p.1).sum();
        let mut parts = parts.into_iter();
        let Some((mut out, w0)) = parts.next() else {
            return Ok(None);
        };
        if total != w0 {
            for v in out.cb.iter_mut().chain(out.cr.iter_mut()) {
                *v *= w0 / total;
            }
            for (c, w) in parts {
                let k = w / total;
                for (o, v) in out
                    .cb
                    .iter_mut()
                    .zip(&c.cb)
                    .chain(out.cr.iter_mut().zip(&c.cr))
                {
                    *o += k * v;
                }
            }
        }
        Ok(Some(Confident::uniform(out, 1.0)))
    }

    fn key_colour(
        &mut self,
        shot: usize,
        luma: &LumaImage,
        frame: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<Option<Confident>> {
        if let Some(c) = self.key_cache.get(&frame) {
            return Ok(Some(c.clone()));
        }
        let Some(spec) = self.plan.keys.get(&frame).cloned() else {
            return Ok(None);
        };
        let (w, h) = (luma.width, luma.height);
        let colour = match spec {
            KeyColour::Given(c) => {
                if (c.chroma.width, c.chroma.height) != (w, h) {
                    return Err(tincture_core::Error::SizeMismatch {
                        what: format!(
                            "keyframe {frame}: its colour is {}x{} but the film is {w}x{h}",
                            c.chroma.width, c.chroma.height
                        ),
                    });
                }
                c
            }
            KeyColour::Steered { strokes, reference } => {
                let prior = self.prior(shot, luma, frame, matrix)?;
                let (stroke_chroma, stroke_weight) = rasterise_strokes(&strokes, w, h, matrix);
                let params = self.plan.params;
                let mut terms: Vec<DataTerm<'_>> = Vec::new();
                let prior_w: Vec<f32>;
                if let Some(p) = &prior {
                    prior_w = p
                        .confidence
                        .iter()
                        .map(|c| c * params.prior_weight)
                        .collect();
                    terms.push(DataTerm {
                        cb: &p.chroma.cb,
                        cr: &p.chroma.cr,
                        weight: &prior_w,
                    });
                }
                // A coloured picture of this very frame gives colour
                // everywhere; a picture of another size is a photo of the
                // scene, and gives its colours by transfer.
                let (ref_chroma, ref_weight, ref_conf) = match &reference {
                    Some(img) if (img.width, img.height) == (w, h) => {
                        (Some(chroma_of_rgb(img, matrix)), vec![1.0f32; w * h], 1.0)
                    }
                    Some(img) => {
                        let mut t =
                            ReferenceColorizer::new(img, matrix, TransferSettings::default())?;
                        (
                            Some(t.colorize(luma, frame, matrix)?),
                            vec![0.5f32; w * h],
                            STEERED_CONFIDENCE,
                        )
                    }
                    None => (None, Vec::new(), STEERED_CONFIDENCE),
                };
                if let Some(c) = &ref_chroma {
                    terms.push(DataTerm {
                        cb: &c.cb,
                        cr: &c.cr,
                        weight: &ref_weight,
                    });
                }
                terms.push(DataTerm {
                    cb: &stroke_chroma.cb,
                    cr: &stroke_chroma.cr,
                    weight: &stroke_weight,
                });
                let start = self
                    .warm
                    .remove(&frame)
                    .filter(|c| (c.width, c.height) == (w, h));
                // A preview solves the keyframe it is painting again after
                // every stroke: it keeps the solver (hierarchy and arrays)
                // for the next time, and uses the one it was handed.
                let kept = self
                    .key_solver
                    .take()
                    .filter(|(f, solver)| *f == frame && solver.fits(w, h, params.solver));
                let solver = match kept {
                    Some((_, solver)) => Some(solver),
                    None if self.preview => Some(ChromaSolver::new(luma, params.solver)?),
                    None => None,
                };
                let chroma = match solver {
                    Some(mut solver) => {
                        let chroma = solver.solve(&terms, start.as_ref())?;
                        self.key_solver = Some((frame, solver));
                        chroma
                    }
                    None => solve_key(luma, &terms, params.solver, start.as_ref())?,
                };
                let confidence = stroke_weight
                    .iter()
                    .map(|&s| if s > 0.0 { 1.0 } else { ref_conf })
                    .collect();
                Confident { chroma, confidence }
            }
        };
        self.key_cache.insert(frame, colour.clone());
        Ok(Some(colour))
    }

    /// The colour carried backward to `frame` from the next keyframe of its
    /// shot, if there is one.
    fn carried_back(
        &mut self,
        shot: usize,
        frame: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<Option<Confident>> {
        if self.plan.keys.contains_key(&frame) {
            return Ok(None);
        }
        let s = &self.plan.shots[shot];
        let (start, end) = (s.start, s.end);
        let Some(next_key) = self.plan.keys.range(frame..=end).next().map(|(k, _)| *k) else {
            return Ok(None);
        };
        let from = self
            .plan
            .keys
            .range(start..frame)
            .next_back()
            .map_or(start, |(k, _)| k + 1);
        if !self
            .backward
            .as_ref()
            .is_some_and(|b| b.key() == next_key && b.covers(frame))
        {
            self.drop_backward();
            let key_luma = self.read_luma(next_key)?;
            let Some(key) = self.key_colour(shot, &key_luma, next_key, matrix)? else {
                return Ok(None);
            };
            let mut pass = BackwardPass::new(from, next_key, key, self.budget);
            // The walk starts at the nearest colour left past this chunk's
            // end, if a chunk after this one (or a walk that passed) left
            // one.
            if let Some((state, last)) = &self.chunk
                && let Some((at, colour)) = state.load_backward(
                    next_key,
                    frame.max(last.saturating_add(1)),
                    key_luma.width,
                    key_luma.height,
                )
                && pass.seed(at, colour)
            {
                tracing::debug!(frame, at, "the backward walk starts at a chunk's state");
            }
            self.backward = Some(pass);
        }
        let Some(mut pass) = self.backward.take() else {
            return Ok(None);
        };
        let params = self.plan.params;
        let stop = self.stop.take();
        // A walk over frames of later chunks leaves the colour at every
        // STATE_STRIDE-th frame for the chunks before them (once).
        let chunk = self.chunk.as_ref().map(|(c, last)| (c.clone(), *last));
        let stride = self.state_stride;
        let mut leave = |t: u64, c: &Confident| {
            if let Some((state, last)) = &chunk
                && t > *last
                && t.is_multiple_of(stride)
                && !state.has_backward(next_key, t, c.chroma.width, c.chroma.height)
                && let Err(e) = state.save_backward(next_key, t, c.chroma.width, c.chroma.height, c)
            {
                tracing::warn!("cannot leave the chunk state: {e}");
            }
        };
        let carried = pass.carried_leaving(
            frame,
            &mut |f| self.read_luma(f),
            &params,
            &|| stop.as_ref().is_some_and(|s| s()),
            &mut leave,
        );
        self.stop = stop;
        self.backward = Some(pass);
        let carried = carried?;
        if self.leave_backward_at == Some(frame)
            && let Some((state, _)) = &self.chunk
        {
            let (w, h) = (carried.chroma.width, carried.chroma.height);
            if let Err(e) = state.save_backward(next_key, frame, w, h, &carried) {
                tracing::warn!("cannot leave the chunk state: {e}");
            }
        }
        Ok(Some(carried))
    }

    fn step(
        &mut self,
        shot: usize,
        luma: &LumaImage,
        frame: u64,
        matrix: Matrix,
        with_prior: bool,
    ) -> tincture_core::Result<ChromaField> {
        if self.stopped() {
            return Err(tincture_core::Error::Cancelled);
        }
        let key = self.key_colour(shot, luma, frame, matrix)?;
        // Only the keyframes around this frame are needed from here on.
        let s = &self.plan.shots[shot];
        let before = self
            .plan
            .keys
            .range(s.start..=frame)
            .next_back()
            .map_or(s.start, |(k, _)| *k);
        self.key_cache.retain(|k, _| *k >= before);
        let backward = self.carried_back(shot, frame, matrix)?;
        let prior = if key.is_some() || !with_prior {
            None
        } else {
            self.prior(shot, luma, frame, matrix)?
        };
        // A preview's replay (frames coloured only to reach the one shown):
        // where matched colour joins only a frame's output (a data-term
        // weight of 0), it is not matched there, and features are taken only
        // of the frames the memory keeps: a 12-frame replay then runs the
        // model on 4 frames, not 13. As a data term (the default), matched
        // colour is carried on, so the replay matches every frame, as the
        // render does, and the preview shows what the export will (matching
        // only every 4th frame of the replay took a 12-frame preview from
        // 5.1 s to 2.2 s, but left its frame up to 76 code values of chroma
        // from the export's: `cargo bench -p tincture-engine --bench
        // memory_render`).
        let replaying = !with_prior && self.plan.params.matched_weight <= 0.0;
        let kept = key.is_some() || (frame - before).is_multiple_of(MEMORY_STRIDE);
        let features = if replaying && !kept {
            None
        } else {
            self.features(shot, luma, frame)?
        };
        let matched = match &features {
            Some(f) if key.is_none() && !replaying && !self.memory.is_empty() => {
                Some(self.memory.match_cells(f)?.upsample(luma))
            }
            _ => None,
        };
        let mut chroma = self.propagator.step_matched(
            luma,
            key.as_ref(),
            backward,
            prior.as_ref(),
            matched.as_ref(),
        )?;
        if let Some(f) = &features {
            self.remember(shot, frame, luma, key.as_ref(), f, &chroma)?;
        }
        self.plan.shots[shot].look.apply(luma, &mut chroma)?;
        self.next = Some(frame + 1);
        Ok(chroma)
    }
}

impl FilmColorizer {
    /// Whether shot `shot` is matched against a memory.
    fn keeps_memory(&self, shot: usize) -> bool {
        self.plan.params.memory.is_some() && self.plan.shots.get(shot).is_some_and(|s| s.memory)
    }

    /// The frame's features for the memory, when the plan keeps one and
    /// the model gives them.
    fn features(
        &mut self,
        shot: usize,
        luma: &LumaImage,
        frame: u64,
    ) -> tincture_core::Result<Option<CellFeatures>> {
        if !self.keeps_memory(shot) {
            return Ok(None);
        }
        let Some(model) = self.prior.as_mut() else {
            return Ok(None);
        };
        model.set_render_short_side(self.plan.shots[shot].render_short_side);
        model.set_model(self.plan.shots[shot].model.as_deref());
        model.features(luma, frame)
    }

    /// Puts frame `frame` into the memory: a keyframe for good (the recent
    /// frames before it go), and every [`MEMORY_STRIDE`]th frame since the
    /// last keyframe as a recent one, with the confidence propagation
    /// carries on with.
    fn remember(
        &mut self,
        shot: usize,
        frame: u64,
        luma: &LumaImage,
        key: Option<&Confident>,
        features: &CellFeatures,
        chroma: &ChromaField,
    ) -> tincture_core::Result<()> {
        let (cw, ch) = (features.width(), features.height());
        if let Some(k) = key {
            self.memory.forget_recent();
            let cells = CellColour::from_frame(k, luma, cw, ch)?;
            return self.memory.insert(frame, EntryKind::Key, features, &cells);
        }
        let since = self
            .plan
            .keys
            .range(self.plan.shots[shot].start..=frame)
            .next_back()
            .map_or(self.plan.shots[shot].start, |(k, _)| *k);
        if !(frame - since).is_multiple_of(MEMORY_STRIDE) {
            return Ok(());
        }
        let Some(confidence) = self.propagator.carried_confidence() else {
            return Ok(());
        };
        let colour = Confident {
            chroma: chroma.clone(),
            confidence: confidence.to_vec(),
        };
        let cells = CellColour::from_frame(&colour, luma, cw, ch)?;
        self.memory
            .insert(frame, EntryKind::Recent, features, &cells)
    }

    /// Entering shot `shot` at frame `start` (its start or a keyframe):
    /// the memory holds the shot's reference photos and its keyframes
    /// before `start`, as it would had the render begun at the shot's
    /// start.
    fn enter_memory(
        &mut self,
        shot: usize,
        start: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<()> {
        self.memory.clear();
        if !self.keeps_memory(shot) {
            return Ok(());
        }
        // A reference photo of the scene is stuff seen in colour: where a
        // pan reveals ground the photo shows, the match finds it.
        for r in self.plan.shots[shot].references.clone() {
            if self.plan.reference_weights.get(r).copied().unwrap_or(1.0) <= 0.0 {
                continue;
            }
            let photo = &self.plan.references[r];
            let chroma = chroma_of_rgb(photo, matrix);
            let luma = LumaImage {
                width: photo.width,
                height: photo.height,
                data: photo
                    .data
                    .chunks_exact(3)
                    .map(|px| {
                        matrix.rgb_to_ycbcr([px[0], px[1], px[2]].map(|v| f32::from(v) / 255.0))[0]
                    })
                    .collect(),
            };
            let Some(features) = self.features(shot, &luma, start)? else {
                return Ok(());
            };
            let cells = CellColour::from_frame(
                &Confident::uniform(chroma, 1.0),
                &luma,
                features.width(),
                features.height(),
            )?;
            // Photos are told apart from frames by indices no film reaches.
            let id = u64::MAX - r as u64;
            self.memory.insert(id, EntryKind::Key, &features, &cells)?;
        }
        let keys: Vec<u64> = self
            .plan
            .keys
            .range(self.plan.shots[shot].start..start)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let luma = self.read_luma(k)?;
            let Some(features) = self.features(shot, &luma, k)? else {
                return Ok(());
            };
            if let Some(colour) = self.key_colour(shot, &luma, k, matrix)? {
                let cells =
                    CellColour::from_frame(&colour, &luma, features.width(), features.height())?;
                self.memory.insert(k, EntryKind::Key, &features, &cells)?;
            }
        }
        Ok(())
    }
}

impl Colorizer for FilmColorizer {
    fn name(&self) -> &str {
        "propagation"
    }

    fn set_stop(&mut self, stop: StopCheck) {
        FilmColorizer::set_stop(self, stop);
    }

    fn settings(&self) -> serde_json::Value {
        let p = &self.plan.params;
        let mut settings = serde_json::json!({
            "engine": "propagation",
            "keyframes": self.plan.keys.keys().collect::<Vec<_>>(),
            "shots": self.plan.shots.iter().map(|s| serde_json::json!({
                "start": s.start, "end": s.end, "stabiliser": s.stabiliser,
                "saturation": s.look.saturation, "model_prior": s.model_prior,
                "render_short_side": s.render_short_side, "model": s.model,
            })).collect::<Vec<_>>(),
            "references": self.plan.references.len(),
            "prior": self.prior.as_ref().map(|m| m.settings()),
            "prior_weight": p.prior_weight,
            "plan": self.plan_digest,
            "decay": p.carry.decay,
        });
        // Recorded only when on, so renders without it keep their digest.
        if let (Some(m), Some(o)) = (p.memory, settings.as_object_mut()) {
            o.insert(
                "memory".into(),
                serde_json::json!({
                    "top_k": m.top_k, "temperature": m.temperature, "max_recent": m.max_recent,
                    "matched_weight": p.matched_weight, "stride": MEMORY_STRIDE,
                    "cells": "two-toned",
                    "shots": self.plan.shots.iter().enumerate()
                        .filter(|(_, s)| s.memory).map(|(i, _)| i).collect::<Vec<_>>(),
                }),
            );
        }
        settings
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> tincture_core::Result<ChromaField> {
        let Some(shot) = self.shot_of(frame_index) else {
            return Err(engine_error(format!(
                "frame {frame_index} lies in no shot of the project (the film has {} frames); \
                 re-detect the shots or relink the project to the right film",
                self.plan.frame_count
            )));
        };
        let size = (luma.width, luma.height);
        if self.work_size != Some(size) {
            // Colour kept at another size is of no use at this one.
            self.work_size = Some(size);
            self.drop_backward();
            self.key_cache.clear();
            self.next = None;
        }
        let shot_start = self.plan.shots[shot].start;
        let continuing = self.next == Some(frame_index) && frame_index != shot_start;
        if !continuing {
            self.propagator.reset(self.plan.shots[shot].stabiliser);
            // Entering a shot in the middle. A keyframe sets the whole
            // forward state (its colour passes exactly, the stabiliser holds
            // it, the prior's share and running mean start afresh), so what
            // came before it never reaches the frames after it: a render
            // replays from the last keyframe at or before the frame (the
            // shot's start when there is none), and equals one that began at
            // the shot's start. A chunk of a farm thus pays for the frames
            // since the keyframe before it, not for the whole shot. A
            // preview replays from that keyframe too, without the prior,
            // which joins only each frame's output.
            let last_key = self
                .plan
                .keys
                .range(shot_start..=frame_index)
                .next_back()
                .map(|(k, _)| *k);
            let start = match last_key {
                Some(k) => k,
                None if self.preview => frame_index,
                None => shot_start,
            };
            // A chunk before this one may have left the state after the
            // frame before this one.
            // With a memory the state left holds no memory: replay.
            let left = match &self.chunk {
                Some((state, _))
                    if start < frame_index
                        && !self.preview
                        && self.plan.params.memory.is_none() =>
                {
                    state.load_forward(frame_index - 1, size.0, size.1)
                }
                _ => None,
            };
            self.enter_memory(shot, start, matrix)?;
            if let Some(left) = left {
                self.propagator
                    .restore(left, self.plan.shots[shot].stabiliser);
                tracing::debug!(frame = frame_index, "continuing from a chunk's state");
            } else {
                for f in start..frame_index {
                    let l = self.read_luma(f)?;
                    self.step(shot, &l, f, matrix, !self.preview)?;
                    self.replayed += 1;
                }
            }
            if self.chunk.is_some() {
                self.leave_backward_at = Some(frame_index);
            }
        }
        let chroma = self.step(shot, luma, frame_index, matrix, true)?;
        if let Some((state, last)) = &self.chunk
            && *last == frame_index
            && frame_index < self.plan.shots[shot].end
            && !self.plan.keys.contains_key(&(frame_index + 1))
            && let Err(e) =
                state.save_forward(frame_index, size.0, size.1, &self.propagator.state())
        {
            tracing::warn!("cannot leave the chunk state: {e}");
        }
        Ok(chroma)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strokes_and_frame_pictures_scale_with_the_plan() {
        let mut plan = FilmPlan::whole_film("reel.mkv".into(), 10);
        let picture = RgbImage {
            width: 4,
            height: 2,
            data: [[200u8, 0, 0], [200, 0, 0], [0, 0, 200], [0, 0, 200]]
                .repeat(2)
                .concat(),
        };
        plan.keys.insert(
            3,
            KeyColour::Steered {
                strokes: vec![StrokeHint {
                    points: vec![[2.0, 1.0], [3.0, 1.0]],
                    rgb: [10, 20, 30],
                    size: 8.0,
                }],
                reference: Some(picture),
            },
        );
        plan.scale((4, 2), (2, 1));
        let Some(KeyColour::Steered { strokes, reference }) = plan.keys.get(&3) else {
            panic!("the keyframe");
        };
        assert_eq!(strokes[0].points, vec![[1.0, 0.5], [1.5, 0.5]]);
        assert_eq!(strokes[0].size, 4.0);
        let small = reference.as_ref().expect("the picture");
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(
            small.data,
            vec![200, 0, 0, 0, 0, 200],
            "each half keeps its colour"
        );
    }

    use super::*;

    fn stroke(x: f32, rgb: [u8; 3]) -> StrokeHint {
        StrokeHint {
            points: vec![[x, 8.0], [x, 40.0]],
            rgb,
            size: 4.0,
        }
    }

    fn painted(strokes: Vec<StrokeHint>) -> FilmPlan {
        let mut plan = FilmPlan::whole_film("reel.mkv".into(), 10);
        plan.keys.insert(
            3,
            KeyColour::Steered {
                strokes,
                reference: None,
            },
        );
        plan
    }

    /// Dark left half, light right half.
    fn halves(w: usize, h: usize) -> LumaImage {
        LumaImage {
            width: w,
            height: h,
            data: (0..w * h)
                .map(|i| if i % w < 30 { 0.3 } else { 0.7 })
                .collect(),
        }
    }

    /// A red stroke on the left, then a blue one on the right.
    /// A preview colorizer of the film with a red stroke on keyframe 3, and
    /// that keyframe's colour.
    fn red_stroke_coloured(luma: &LumaImage) -> (FilmColorizer, ChromaField) {
        let mut film = FilmColorizer::preview(painted(vec![stroke(10.0, [200, 70, 60])]), None);
        let colour = film.colorize(luma, 3, Matrix::Bt709).expect("colours");
        (film, colour)
    }

    fn red_then_blue() -> FilmPlan {
        painted(vec![
            stroke(10.0, [200, 70, 60]),
            stroke(50.0, [60, 90, 210]),
        ])
    }

    #[test]
    fn a_keyframe_solved_from_its_colour_before_a_stroke_gets_the_same_colour() {
        // Dark left half, light right half; a red stroke on the left, then a
        // blue one on the right.
        let (w, h) = (64, 48);
        let luma = halves(w, h);
        let m = Matrix::Bt709;
        let (first, before) = red_stroke_coloured(&luma);
        let start = first.key_chroma(3).expect("the keyframe's colour").clone();
        let both = red_then_blue();
        let cold = FilmColorizer::preview(both.clone(), None)
            .colorize(&luma, 3, m)
            .expect("colours");
        let mut warm = FilmColorizer::preview(both.clone(), None);
        warm.warm_start(3, start);
        let warmed = warm.colorize(&luma, 3, m).expect("colours");
        // The new stroke shows, and the answer is the cold solve's.
        let right = 24 * w + 50;
        assert!(
            warmed.cb[right] - before.cb[right] > 0.1,
            "the blue stroke shows"
        );
        assert!(
            cold.max_abs_diff(&warmed) < 2e-3,
            "{}",
            cold.max_abs_diff(&warmed)
        );
        // A start of another size is not used.
        let mut odd = FilmColorizer::preview(both, None);
        odd.warm_start(3, ChromaField::neutral(8, 8));
        let ignored = odd.colorize(&luma, 3, m).expect("colours");
        assert_eq!(cold.max_abs_diff(&ignored), 0.0);
    }

    #[test]
    fn a_keyframe_solver_handed_to_the_next_revision_gives_the_same_colour() {
        let (w, h) = (64, 48);
        let luma = halves(w, h);
        let m = Matrix::Bt709;
        let (mut first, _) = red_stroke_coloured(&luma);
        assert!(first.take_key_solver(4).is_none(), "frame 4 is no keyframe");
        let solver = first
            .take_key_solver(3)
            .expect("a preview keeps its keyframe's solver");
        let both = red_then_blue();
        let fresh = FilmColorizer::preview(both.clone(), None)
            .colorize(&luma, 3, m)
            .expect("colours");
        let mut next = FilmColorizer::preview(both.clone(), None);
        next.reuse_key_solver(3, solver);
        let reused = next.colorize(&luma, 3, m).expect("colours");
        assert_eq!(reused, fresh, "the same colour, to the bit");
        // ...and it keeps the solver for the stroke after.
        assert!(next.take_key_solver(3).is_some());
        // A solver built for another size is set aside.
        let small = LumaImage {
            width: 32,
            height: 24,
            data: vec![0.5; 32 * 24],
        };
        let params = both.params.solver;
        let mut odd = FilmColorizer::preview(both, None);
        odd.reuse_key_solver(3, ChromaSolver::new(&small, params).expect("a solver"));
        assert_eq!(odd.colorize(&luma, 3, m).expect("colours"), fresh);
    }
}
