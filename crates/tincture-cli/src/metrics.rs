//! `metrics` and `eval`: how much a coloured clip flickers and, when the
//! true colour is known, how far it is from it, frame by frame.
//!
//! `metrics VIDEO [--reference GT]` measures a clip as it is. `eval GT`
//! takes a colour clip as the truth, makes it gray (its own Y' plane, chroma
//! dropped), colours it back (the neural model, or reference transfer from
//! keyframes whose true colour is given) and measures the result against the
//! truth. Both stream the clip through [`MetricsStream`], so memory stays
//! flat however long it is; `eval` computes one optical flow per frame pair
//! from the truth's luma and shares it between the prediction's stream and
//! the truth's own (whose warp error and CDC are the floor a colorization
//! can reach: real motion blur, noise and lighting changes count too).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::compose::{OutputLayout, chroma_field_of, compose_frame, frame_to_rgb8};
use tincture_core::flow::FlowParams;
use tincture_core::frame::{ChromaField, Frame, LumaImage, RgbImage, Subsampling};
use tincture_core::look::Look;
use tincture_core::motion::Confident;
use tincture_core::transfer::{ReferenceColorizer, TransferSettings};
use tincture_core::video_metrics::{
    LumaFlow, MetricsReport, MetricsStream, SeriesSummary, StreamOptions, lab_means,
};
use tincture_engine::Error as EngineError;
use tincture_engine::film::{FilmColorizer, FilmPlan, KeyColour};
use tincture_engine::neural::open_colorizer;
use tincture_infer::NeuralColorizer;
use tincture_media::{DecodedFrame, VideoReader};

use crate::outputs::Outputs;
use crate::plot::{Panel, Plot, StripColumn, write_strip};
use crate::{Failure, ModelArgs, parse_frames};

/// A reference whose mean CIE chroma (C*ab) lies below this on the frames
/// looked at is gray.
pub const GRAY_CHROMA: f64 = 1.0;

/// How many frames the summary lists as flickering most.
pub const TOP_FLICKER: usize = 5;

/// Arguments of `metrics`.
#[derive(clap::Args)]
pub struct MetricsArgs {
    /// The clip to measure (a colorization, or any colour video).
    pub video: PathBuf,
    /// The true colour of the same clip, frame for frame: adds PSNR, SSIM and CIEDE2000.
    #[arg(long, value_name = "GT_VIDEO")]
    pub reference: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Also draw the per-frame series into this PNG (1600 px wide).
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Frames to measure, inclusive: `A-B`, `A-` (to the end) or `N`.
    #[arg(long, value_name = "A-B")]
    pub frames: Option<String>,
    /// Replace the --json and --plot files if they exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// Arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalVideoArgs {
    /// A colour clip: the truth. Its own luma is the gray input that is coloured back.
    pub gt: PathBuf,
    /// Frames whose true colour is given (comma-separated indices): keyframes. Every other frame
    /// takes its colour by propagation along the optical flow from the keyframes around it, joined
    /// with the model's prior where propagation is unsure. Without it, the neural model colours
    /// every frame on its own.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',')]
    pub keyframes_from_gt: Vec<u64>,
    /// With keyframes: colour the other frames by reference transfer from the nearest keyframe at
    /// or before them, instead of propagation (the simpler engine, for comparison).
    #[arg(long, requires = "keyframes_from_gt")]
    pub transfer: bool,
    /// With keyframes: propagation alone, without the model's prior.
    #[arg(long, requires = "keyframes_from_gt", conflicts_with = "transfer")]
    pub no_prior: bool,
    /// Strength of the temporal stabiliser, 0 (off) to 0.95. Default: 0.6 with keyframes, 0
    /// (the model frame by frame) without.
    #[arg(long, value_name = "S")]
    pub stabilise: Option<f32>,
    /// With keyframes and the prior: how fast the prior fades in where propagation stays unsure,
    /// per frame, 0 to 1 (1: at once). Default: the engine's (0.1).
    #[arg(long, value_name = "F", requires = "keyframes_from_gt")]
    pub prior_fade: Option<f32>,
    /// With keyframes and the prior: how steady the prior is held along the motion before it
    /// joins, 0 (each frame's own) to 0.95. Default: the engine's (0.9).
    #[arg(long, value_name = "S", requires = "keyframes_from_gt")]
    pub prior_steady: Option<f32>,
    /// A colour photograph that steers the model's prior for every frame, as a reference photo of
    /// a project does (a period photo of the same place, say); give it more than once for several.
    /// Gray or unreadable pictures are refused.
    #[arg(long, value_name = "PHOTO", conflicts_with = "transfer")]
    pub reference_photo: Vec<PathBuf>,
    /// Also write a side-by-side strip PNG: every Nth frame (--strip-every) as gray, the model
    /// frame by frame, this evaluation's output and the truth.
    #[arg(long, value_name = "OUT.png")]
    pub strip: Option<PathBuf>,
    /// Frame spacing of --strip.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub strip_every: u64,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Also draw the per-frame series into this PNG (1600 px wide).
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Frames to evaluate, inclusive: `A-B`, `A-` (to the end) or `N`.
    #[arg(long, value_name = "A-B")]
    pub frames: Option<String>,
    /// Replace the --json, --plot and --strip files if they exist.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// What `metrics --json` writes: the report with the files it measured.
#[derive(Serialize)]
struct MetricsJson<'a> {
    video: String,
    reference: Option<String>,
    first_frame: u64,
    #[serde(flatten)]
    report: &'a MetricsReport,
}

/// The truth's own temporal metrics in `eval --json`.
#[derive(Serialize)]
struct TruthJson<'a> {
    warp_error: &'a SeriesSummary,
    cdc: &'a SeriesSummary,
}

/// What `eval --json` writes.
#[derive(Serialize)]
struct EvalJson<'a> {
    video: String,
    reference: Option<String>,
    first_frame: u64,
    engine: String,
    keyframes: &'a [u64],
    #[serde(flatten)]
    report: &'a MetricsReport,
    truth: TruthJson<'a>,
}

fn media_failure(e: tincture_media::Error) -> Failure {
    Failure::from(EngineError::Media(e))
}

/// Frames `first..=last` of a clip, in order.
struct FrameRange {
    reader: VideoReader,
    next: u64,
    first: u64,
    last: u64,
}

impl FrameRange {
    fn new(reader: VideoReader, (first, last): (u64, u64)) -> Self {
        Self {
            reader,
            next: first,
            first,
            last,
        }
    }

    fn path(&self) -> String {
        self.reader.path().display().to_string()
    }

    /// The next frame of the range; `None` after its last.
    fn next(&mut self) -> Result<Option<DecodedFrame>, Failure> {
        if self.next > self.last {
            return Ok(None);
        }
        let frame = if self.next == self.first && self.first > 0 {
            self.reader.seek(self.first).map_err(media_failure)?
        } else {
            match self.reader.next_frame().map_err(media_failure)? {
                Some(f) => f,
                None => {
                    return Err(Failure {
                        code: 3,
                        message: format!(
                            "{}: frame {}: the file ends there, though {} frames were counted; it may be truncated",
                            self.path(),
                            self.next,
                            self.reader.frame_count()
                        ),
                    });
                }
            }
        };
        self.next = frame.index + 1;
        Ok(Some(frame))
    }
}

/// The inclusive frame range `--frames` names (all frames without it).
fn frame_range(path: &Path, text: Option<&str>, count: u64) -> Result<(u64, u64), Failure> {
    if count == 0 {
        return Err(Failure {
            code: 3,
            message: format!("{}: holds no video frames", path.display()),
        });
    }
    let Some(text) = text else {
        return Ok((0, count - 1));
    };
    let (a, b) = parse_frames(text, count).map_err(|reason| Failure {
        code: 2,
        message: format!("--frames {text}: {}: {reason}", path.display()),
    })?;
    Ok((a, b))
}

/// A frame as 8-bit sRGB.
fn rgb8(frame: &Frame) -> RgbImage {
    RgbImage {
        width: frame.width(),
        height: frame.height(),
        data: frame_to_rgb8(frame),
    }
}

/// Refuses a clip that holds no colour: one without chroma planes, or whose
/// mean CIE chroma is below [`GRAY_CHROMA`] on the first frame of the range
/// and also on its middle and last frames (so a fade from black does not
/// count as gray). `code` is the exit code of the refusal.
fn check_colour(path: &Path, (first, last): (u64, u64), code: u8) -> Result<(), Failure> {
    let gray = |detail: String| Failure {
        code,
        message: format!(
            "{}: the clip is gray ({detail}): a reference must hold the true colour; give the colour original of the clip",
            path.display(),
        ),
    };
    let mut reader = VideoReader::open(path).map_err(media_failure)?;
    if reader.subsampling().is_none() {
        return Err(gray(format!(
            "its pixel format {} has no chroma planes",
            reader.info().video.pixel_format
        )));
    }
    let mut looked = Vec::new();
    for index in [first, first + (last - first) / 2, last] {
        if looked.iter().any(|(i, _)| *i == index) {
            continue;
        }
        let f = reader.seek(index).map_err(media_failure)?;
        if f.frame.chroma.is_none() {
            return Err(gray(format!("frame {index} has no chroma planes")));
        }
        let chroma = lab_means(&rgb8(&f.frame))[2];
        if chroma >= GRAY_CHROMA {
            return Ok(());
        }
        looked.push((index, chroma));
    }
    let list: Vec<String> = looked
        .iter()
        .map(|(i, c)| format!("frame {i}: {c:.2}"))
        .collect();
    Err(gray(format!(
        "mean chroma C*ab below {GRAY_CHROMA}: {}",
        list.join(", ")
    )))
}

/// A frame progress bar on stderr (hidden when stderr is not a terminal), for every command
/// that walks a film.
pub fn progress(total: u64) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:40}] {pos}/{len} frames  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// "frame N" or "frames A-B".
fn frames_label((first, last): (u64, u64)) -> String {
    if first == last {
        format!("frame {first}")
    } else {
        format!("frames {first}-{last}")
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `metrics`: returns the exit code.
///
/// # Errors
/// 2 for a bad frame range, 3 for an unreadable clip, 5 for a reference
/// that cannot be used (another length or size, gray, unreadable), 4 when
/// an output cannot be written.
pub fn metrics_cmd(args: &MetricsArgs) -> Result<u8, Failure> {
    let outputs = Outputs::new(
        std::iter::once(args.video.as_path()).chain(args.reference.as_deref()),
        args.overwrite,
    );
    for out in args.json.iter().chain(&args.plot) {
        outputs.check(out)?;
    }
    let video = VideoReader::open(&args.video).map_err(media_failure)?;
    let count = video.frame_count();
    let range = frame_range(&args.video, args.frames.as_deref(), count)?;
    let mut reference = match &args.reference {
        Some(path) => {
            let reader = VideoReader::open(path).map_err(|e| {
                let mut f = media_failure(e);
                if f.code == 3 {
                    f.code = 5;
                }
                f
            })?;
            check_reference(&video, &reader)?;
            check_colour(path, range, 5)?;
            Some(FrameRange::new(reader, range))
        }
        None => None,
    };
    let mut frames = FrameRange::new(video, range);
    let bar = progress(range.1 - range.0 + 1);
    let mut stream = MetricsStream::new(StreamOptions::default());
    while let Some(f) = frames.next()? {
        let rgb = rgb8(&f.frame);
        let luma = f.frame.luma_unit();
        let truth = match reference.as_mut() {
            Some(r) => {
                let t = r.next()?.ok_or_else(|| Failure {
                    code: 5,
                    message: format!("{}: frame {}: the reference ends early", r.path(), f.index),
                })?;
                if (t.frame.width(), t.frame.height()) != (rgb.width, rgb.height) {
                    return Err(Failure {
                        code: 5,
                        message: format!(
                            "{}: frame {}: the reference frame is {}x{} but {}'s is {}x{}; a reference must be the same clip, frame for frame",
                            r.path(),
                            t.index,
                            t.frame.width(),
                            t.frame.height(),
                            display(&args.video),
                            rgb.width,
                            rgb.height
                        ),
                    });
                }
                Some(rgb8(&t.frame))
            }
            None => None,
        };
        stream
            .push(&rgb, &luma.data, truth.as_ref())
            .map_err(|e| Failure {
                code: 3,
                message: format!("{}: frame {}: {e}", display(&args.video), f.index),
            })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = stream.report();
    let title = match &args.reference {
        Some(r) => format!(
            "{} against {} ({})",
            display(&args.video),
            display(r),
            frames_label(range)
        ),
        None => format!("{} ({})", display(&args.video), frames_label(range)),
    };
    print_summary(&title, &report, range.0, None);
    if let Some(out) = &args.json {
        let json = MetricsJson {
            video: display(&args.video),
            reference: args.reference.as_deref().map(display),
            first_frame: range.0,
            report: &report,
        };
        write_json(&outputs, out, &json)?;
    }
    if let Some(out) = &args.plot {
        let title = match &args.reference {
            Some(r) => format!(
                "Tincture metrics: {} against {}, {}",
                file_name(&args.video),
                file_name(r),
                frames_label(range)
            ),
            None => format!(
                "Tincture metrics: {}, {}",
                file_name(&args.video),
                frames_label(range)
            ),
        };
        crate::plot::write_png(&outputs, out, &plot_of(title, &report, None, range.0))?;
    }
    Ok(0)
}

/// Refuses a reference of another length or frame size than the clip.
fn check_reference(video: &VideoReader, reference: &VideoReader) -> Result<(), Failure> {
    let (v, r) = (&video.info().video, &reference.info().video);
    let (vp, rp) = (display(video.path()), display(reference.path()));
    if video.frame_count() != reference.frame_count() {
        return Err(Failure {
            code: 5,
            message: format!(
                "{rp}: the reference has {} frames but {vp} has {}; a reference must be the same clip, frame for frame",
                reference.frame_count(),
                video.frame_count()
            ),
        });
    }
    if (v.width, v.height) != (r.width, r.height) {
        return Err(Failure {
            code: 5,
            message: format!(
                "{rp}: the reference's frames are {}x{} but {vp}'s are {}x{}; a reference must be the same clip at the same size",
                r.width, r.height, v.width, v.height
            ),
        });
    }
    Ok(())
}

fn write_json(outputs: &Outputs, out: &Path, value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    outputs.write_text(out, &(text + "\n"))
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

/// The gray input as RGB.
fn gray_rgb(frame: &Frame) -> RgbImage {
    rgb8(&gray_of(frame))
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

/// How a clip is coloured in `eval`.
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
    ) -> Result<Option<ChromaField>, Failure> {
        match self {
            Self::Film(c, _) => c
                .colorize(luma, index, truth.matrix)
                .map(Some)
                .map_err(|e| Failure {
                    code: 6,
                    message: format!("{}: frame {index}: colouring failed: {e}", gt.display()),
                }),
            Self::Keyframes { keys, transfer } => {
                if keys.binary_search(&index).is_ok() {
                    return Ok(None);
                }
                let k = keys.partition_point(|&k| k <= index).saturating_sub(1);
                transfer[k]
                    .colorize(luma, index, truth.matrix)
                    .map(Some)
                    .map_err(|e| Failure {
                        code: 1,
                        message: format!(
                            "{}: frame {index}: reference transfer from keyframe {} failed: {e}",
                            gt.display(),
                            keys[k]
                        ),
                    })
            }
        }
    }
}

fn check_keys(gt: &Path, keys: &[u64], count: u64) -> Result<Vec<u64>, Failure> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    if let Some(&bad) = keys.iter().find(|&&k| k >= count) {
        return Err(Failure {
            code: 2,
            message: format!(
                "--keyframes-from-gt {bad}: {} has {count} frames (0-{}); keyframes must lie inside it",
                gt.display(),
                count.saturating_sub(1)
            ),
        });
    }
    Ok(keys)
}

/// The film colorizer for `eval`: keyframes carry the truth's chroma.
fn film_engine(
    args: &EvalVideoArgs,
    count: u64,
    keys: &[u64],
    prior: Option<Box<dyn Colorizer>>,
) -> Result<FilmColorizer, Failure> {
    let gt = &args.gt;
    let mut plan = FilmPlan::whole_film(gt.clone(), count);
    let strength = args
        .stabilise
        .unwrap_or(if keys.is_empty() { 0.0 } else { 0.6 });
    if !(0.0..=1.0).contains(&strength) {
        return Err(Failure {
            code: 2,
            message: format!("--stabilise {strength}: give a strength from 0 to 0.95"),
        });
    }
    for shot in &mut plan.shots {
        shot.stabiliser = strength;
        // The truth is scored as it is: no creative look.
        shot.look = Look::identity();
        shot.model_prior = prior.is_some();
    }
    for path in &args.reference_photo {
        let photo = tincture_engine::reference::load_rgb(path)?;
        // A gray photo has no colour to give: refused here, by name.
        ReferenceColorizer::new(&photo, Matrix::Bt709, TransferSettings::default()).map_err(
            |e| EngineError::Reference {
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
    if let Some(f) = args.prior_fade {
        if !(0.0..=1.0).contains(&f) {
            return Err(Failure {
                code: 2,
                message: format!("--prior-fade {f}: give a rate from 0 to 1"),
            });
        }
        plan.params.prior_fade = f;
    }
    if let Some(s) = args.prior_steady {
        if !(0.0..=0.95).contains(&s) {
            return Err(Failure {
                code: 2,
                message: format!("--prior-steady {s}: give a steadiness from 0 to 0.95"),
            });
        }
        plan.params.prior_steadiness = s;
    }
    let mut reader = VideoReader::open(gt).map_err(media_failure)?;
    for &k in keys {
        let f = reader.seek(k).map_err(media_failure)?;
        let chroma = chroma_field_of(&f.frame);
        plan.keys
            .insert(k, KeyColour::Given(Confident::uniform(chroma, 1.0)));
    }
    Ok(FilmColorizer::new(plan, prior))
}

/// Builds one reference-transfer engine per keyframe, from its true colour.
fn keyframe_engine(gt: &Path, keys: &[u64], count: u64) -> Result<Engine, Failure> {
    let keys = check_keys(gt, keys, count)?;
    let mut reader = VideoReader::open(gt).map_err(media_failure)?;
    let matrix = reader.matrix();
    let mut transfer = Vec::with_capacity(keys.len());
    for &k in &keys {
        let f = reader.seek(k).map_err(media_failure)?;
        let c = ReferenceColorizer::new(&rgb8(&f.frame), matrix, TransferSettings::default())
            .map_err(|e| Failure {
                code: 3,
                message: format!(
                    "{}: frame {k}: this keyframe cannot give its colour to the others: {e}",
                    gt.display()
                ),
            })?;
        transfer.push(c);
    }
    Ok(Engine::Keyframes { keys, transfer })
}

/// `eval`: returns the exit code.
///
/// # Errors
/// 2 for a bad frame range or keyframe, 3 for an unreadable or gray clip,
/// 6 when the model cannot be used, 4 when an output cannot be written.
pub fn eval_cmd(args: &EvalVideoArgs) -> Result<u8, Failure> {
    let gt = &args.gt;
    let outputs = Outputs::new(
        std::iter::once(gt.as_path()).chain(args.reference_photo.iter().map(PathBuf::as_path)),
        args.overwrite,
    );
    for out in args.json.iter().chain(&args.strip).chain(&args.plot) {
        outputs.check(out)?;
    }
    let reader = VideoReader::open(gt).map_err(media_failure)?;
    let count = reader.frame_count();
    let range = frame_range(gt, args.frames.as_deref(), count)?;
    check_colour(gt, range, 3)?;
    let keys = check_keys(gt, &args.keyframes_from_gt, count)?;
    let needs_model = !args.transfer && !args.no_prior;
    let open_model = || -> Result<NeuralColorizer, Failure> {
        let c = open_colorizer(&args.model.choice())?;
        eprintln!("model `{}` on {}", c.model().name(), c.model().provider());
        Ok(c)
    };
    let mut engine = if args.transfer {
        eprintln!(
            "colouring by reference transfer from keyframes {}",
            keys.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        keyframe_engine(gt, &keys, count)?
    } else {
        let prior: Option<Box<dyn Colorizer>> = if needs_model {
            Some(Box::new(open_model()?))
        } else {
            None
        };
        let film = film_engine(args, count, &keys, prior)?;
        let strength = args
            .stabilise
            .unwrap_or(if keys.is_empty() { 0.0 } else { 0.6 });
        let what = match (keys.is_empty(), needs_model) {
            (true, _) => "the model frame by frame".to_owned(),
            (false, true) => "propagation with the model's prior".to_owned(),
            (false, false) => "propagation alone".to_owned(),
        };
        let what = match args.reference_photo.len() {
            0 => what,
            1 => format!("{what}, steered by a reference photo"),
            n => format!("{what}, steered by {n} reference photos"),
        };
        let desc = if strength > 0.0 {
            format!("{what}, stabilised {strength}")
        } else {
            what
        };
        eprintln!("colouring by {desc}");
        Engine::Film(Box::new(film), desc)
    };
    // The strip's "frame by frame" row needs the model on its own.
    let mut strip_model = match &args.strip {
        Some(_) => Some(open_model()?),
        None => None,
    };
    let mut strip = Vec::new();
    let keyframes = keys.clone();
    let mut frames = FrameRange::new(reader, range);
    let bar = progress(range.1 - range.0 + 1);
    let options = StreamOptions::default();
    let mut flow = LumaFlow::new(FlowParams::default());
    let mut prediction = MetricsStream::new(options);
    let mut truth = MetricsStream::new(options);
    while let Some(f) = frames.next()? {
        let index = f.index;
        let luma = f.frame.luma_unit();
        let true_rgb = rgb8(&f.frame);
        let predicted = match engine.chroma(gt, index, &luma, &f.frame)? {
            Some(chroma) => rgb8(&with_chroma(&f.frame, &chroma)),
            // A keyframe: its luma and its true chroma, that is the truth.
            None => true_rgb.clone(),
        };
        if let Some(model) = strip_model.as_mut()
            && (index - range.0) % args.strip_every.max(1) == 0
        {
            let auto = model
                .colorize(&luma, index, f.frame.matrix)
                .map_err(|e| Failure {
                    code: 6,
                    message: format!("{}: frame {index}: the model failed: {e}", gt.display()),
                })?;
            let gray = gray_rgb(&f.frame);
            let auto_rgb = rgb8(&with_chroma(&f.frame, &auto));
            strip.push(StripColumn {
                index,
                rows: [gray, auto_rgb, predicted.clone(), true_rgb.clone()],
            });
        }
        let flows = flow.push(&luma.data, luma.width, luma.height);
        let fail = |e: tincture_core::Error| Failure {
            code: 3,
            message: format!("{}: frame {index}: {e}", gt.display()),
        };
        prediction
            .push_with_flow(&predicted, Some(&true_rgb), flows.as_ref())
            .map_err(fail)?;
        truth
            .push_with_flow(&true_rgb, None, flows.as_ref())
            .map_err(fail)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = prediction.report();
    let floor = truth.report();
    let engine_name = engine.describe();
    let title = format!(
        "{} coloured back by {engine_name}{} ({})",
        display(gt),
        if keyframes.is_empty() {
            String::new()
        } else {
            format!(" from keyframes {keyframes:?}")
        },
        frames_label(range)
    );
    print_summary(&title, &report, range.0, Some(&floor));
    if let Some(out) = &args.json {
        let json = EvalJson {
            video: display(gt),
            reference: Some(display(gt)),
            first_frame: range.0,
            engine: engine_name.clone(),
            keyframes: &keyframes,
            report: &report,
            truth: TruthJson {
                warp_error: &floor.warp_error,
                cdc: &floor.cdc,
            },
        };
        write_json(&outputs, out, &json)?;
    }
    if let Some(out) = &args.strip {
        write_strip(&outputs, out, &strip, &engine_name)?;
        eprintln!("strip: {}", out.display());
    }
    if let Some(out) = &args.plot {
        let title = format!(
            "Tincture eval: {} coloured back by {engine_name}, {}",
            file_name(gt),
            frames_label(range)
        );
        crate::plot::write_png(
            &outputs,
            out,
            &plot_of(title, &report, Some(&floor), range.0),
        )?;
    }
    Ok(0)
}

/// The panels of a report's plot; `floor` adds the truth's own warp error
/// and CDC behind the prediction's.
fn plot_of<'a>(
    title: String,
    report: &'a MetricsReport,
    floor: Option<&'a MetricsReport>,
    first_frame: u64,
) -> Plot<'a> {
    let mut panels = vec![
        Panel {
            caption: "warp error (frame t-1 warped onto t along the flow; lower is better)".into(),
            unit: "mean squared RGB difference",
            series: &report.warp_error,
            floor: floor.map(|f| &f.warp_error),
            from_zero: true,
            label_marks: true,
        },
        Panel {
            caption:
                "CDC (colour distribution consistency with frames t-1, t-2, t-4; lower is better)"
                    .into(),
            unit: "Jensen-Shannon divergence",
            series: &report.cdc,
            floor: floor.map(|f| &f.cdc),
            from_zero: true,
            label_marks: false,
        },
        Panel {
            caption: "colourfulness (Hasler & Süsstrunk M3)".into(),
            unit: "M3",
            series: &report.colorfulness,
            floor: None,
            from_zero: true,
            label_marks: false,
        },
    ];
    let reference: [(&Option<SeriesSummary>, &str, &'static str, bool); 3] = [
        (
            &report.psnr,
            "PSNR against the truth (higher is better)",
            "dB",
            false,
        ),
        (
            &report.ssim,
            "SSIM against the truth (higher is better)",
            "SSIM",
            false,
        ),
        (
            &report.ciede2000,
            "CIEDE2000 against the truth (lower is better)",
            "mean dE00",
            true,
        ),
    ];
    for (series, caption, unit, from_zero) in reference {
        if let Some(s) = series {
            panels.push(Panel {
                caption: caption.into(),
                unit,
                series: s,
                floor: None,
                from_zero,
                label_marks: false,
            });
        }
    }
    Plot {
        title,
        first_frame,
        panels,
        marks: report
            .warp_error
            .worst_frames(TOP_FLICKER)
            .into_iter()
            .map(|(i, _)| i)
            .collect(),
    }
}

/// `value` with `decimals`, or "n/a".
fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

/// Prints the summary table and the frames that flicker most.
fn print_summary(
    title: &str,
    report: &MetricsReport,
    first_frame: u64,
    floor: Option<&MetricsReport>,
) {
    let one_frame = report.frames < 2;
    println!(
        "{title}: {} frame{}",
        report.frames,
        if report.frames == 1 { "" } else { "s" }
    );
    println!(
        "  {:<16} {:>12} {:>12} {:>12} {:>12}",
        "metric", "mean", "median", "worst 5%", "clip"
    );
    let row = |name: &str, s: &SeriesSummary, decimals: usize, temporal: bool| {
        if temporal && one_frame {
            println!("  {name:<16} {:>12}", "n/a (one frame)");
            return;
        }
        println!(
            "  {name:<16} {:>12} {:>12} {:>12} {:>12}",
            num(s.mean, decimals),
            num(s.median, decimals),
            num(s.p95, decimals),
            s.clip.map_or(String::new(), |c| format!("{c:.decimals$}")),
        );
    };
    row("warp error", &report.warp_error, 6, true);
    row("CDC", &report.cdc, 5, true);
    row("colourfulness", &report.colorfulness, 2, false);
    row("mean chroma", &report.mean_chroma, 2, false);
    if let Some(s) = &report.psnr {
        row("PSNR dB", s, 2, false);
    }
    if let Some(s) = &report.ssim {
        row("SSIM", s, 4, false);
    }
    if let Some(s) = &report.ciede2000 {
        row("CIEDE2000", s, 2, false);
    }
    if let Some(f) = floor {
        if one_frame {
            println!("  floor (the truth's own): n/a (one frame)");
        } else {
            println!(
                "  floor (the truth's own): warp error {} (mean), CDC {} (clip)",
                num(f.warp_error.mean, 6),
                num(f.cdc.clip, 5)
            );
        }
    }
    println!(
        "  (worst 5%: the 95th percentile where lower is better, the 5th where higher is better; \
         clip: CDC over the whole clip as published)"
    );
    if one_frame {
        println!("frames that flicker most: n/a (one frame)");
        return;
    }
    let worst = report.warp_error.worst_frames(TOP_FLICKER);
    if worst.is_empty() {
        println!("frames that flicker most: n/a (the flow follows no pixel)");
        return;
    }
    println!("frames that flicker most (warp error from the frame before):");
    for (i, v) in worst {
        let cdc = report.cdc.per_frame.get(i).copied().flatten();
        println!(
            "  frame {:>7}  warp error {v:.6}  CDC {}",
            first_frame + i as u64,
            num(cdc, 5)
        );
    }
}
