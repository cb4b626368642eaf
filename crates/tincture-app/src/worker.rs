//! The background threads of the GUI: the frame worker that owns the
//! [`VideoReader`] and decodes previews, and the one-shot ONNX Runtime check.
//!
//! Nothing here runs on the UI thread. Every message sent to the UI is
//! followed by [`egui::Context::request_repaint`], so the UI wakes up to
//! show it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use eframe::egui;
use tincture_core::compose::frame_to_rgb8;
use tincture_core::project::Project;
use tincture_engine::project::{check_source, new_project};
use tincture_media::{MediaInfo, ScrubProxy, VideoReader, evict_proxies};

/// Name of the frame worker thread.
pub const FRAME_THREAD_NAME: &str = "tincture-frames";
/// Name of the thread that loads ONNX Runtime.
pub const RUNTIME_THREAD_NAME: &str = "tincture-onnx";

/// A command for the frame worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open a film, replacing the one open, and make a new project for it.
    Open(PathBuf),
    /// Open a project file and its film: the film it records, or `film`
    /// (relinking), accepted when its first frames match the project's.
    OpenProject {
        /// The project file.
        path: PathBuf,
        /// Another place for its film.
        film: Option<PathBuf>,
    },
    /// Decode frame `index` of the open film. Only the newest pending `Show`
    /// is decoded; `generation` comes back with the frame so the UI can drop
    /// stale ones.
    Show {
        /// Frame index, 0-based.
        index: u64,
        /// The UI's request counter at the time of the request.
        generation: u64,
    },
    /// End the worker.
    Stop,
}

/// What the UI needs to know about an open film.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaSummary {
    /// The file.
    pub path: PathBuf,
    /// The file name, for the status bar and the window title.
    pub file_name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Pixel (sample) aspect ratio, width over height; 1.0 for square pixels.
    pub pixel_aspect: f32,
    /// Nominal frame rate, frames per second.
    pub frame_rate: f64,
    /// FFmpeg's name of the pixel format.
    pub pixel_format: String,
    /// Frames in the film, counted.
    pub frame_count: u64,
    /// Start timecode, if the file carries one.
    pub timecode: Option<String>,
}

impl MediaSummary {
    /// Summarises what [`VideoReader::info`] reports.
    pub fn from_info(info: &MediaInfo) -> Self {
        let v = &info.video;
        Self {
            path: info.path.clone(),
            file_name: display_name(&info.path),
            width: v.width,
            height: v.height,
            pixel_aspect: parse_ratio(&v.sample_aspect_ratio).unwrap_or(1.0),
            frame_rate: v.frame_rate,
            pixel_format: v.pixel_format.clone(),
            frame_count: v.frame_count,
            timecode: v.timecode.clone(),
        }
    }

    /// Width over height of the picture as it is meant to be seen, pixel
    /// aspect included.
    pub fn display_aspect(&self) -> f32 {
        self.width as f32 * self.pixel_aspect / self.height.max(1) as f32
    }
}

/// The file name of `path`, or the whole path if it has none.
pub fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Parses `num:den` (or `num/den`) into a positive ratio.
fn parse_ratio(text: &str) -> Option<f32> {
    let (num, den) = text.split_once([':', '/'])?;
    let (num, den): (f32, f32) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    let r = num / den;
    (r.is_finite() && r > 0.0).then_some(r)
}

/// A decoded frame as 8-bit RGB, ready for a texture: the image is built
/// on the thread that decoded it, so the UI thread only hands it to the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbFrame {
    /// The generation of the [`Command::Show`] it answers.
    pub generation: u64,
    /// Frame index, 0-based.
    pub index: u64,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels, shared (the cache and the texture upload hold the same).
    pub image: Arc<egui::ColorImage>,
}

impl RgbFrame {
    /// Frame `index` from `width * height` RGB triplets, row by row.
    ///
    /// # Panics
    /// When `rgb` does not hold `width * height` triplets.
    pub fn from_rgb(index: u64, width: usize, height: usize, rgb: &[u8]) -> Self {
        Self {
            generation: 0,
            index,
            width,
            height,
            image: Arc::new(egui::ColorImage::from_rgb([width, height], rgb)),
        }
    }

    /// The bytes its picture takes.
    pub fn bytes(&self) -> usize {
        self.image.pixels.len() * size_of::<egui::Color32>()
    }

    /// The colour of pixel (`x`, `y`) as RGB.
    pub fn rgb_at(&self, x: usize, y: usize) -> [u8; 3] {
        let c = self.image.pixels[y * self.width + x];
        [c.r(), c.g(), c.b()]
    }
}

/// A message from a background thread to the UI.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A film was opened.
    Opened(MediaSummary),
    /// A new project for the film just opened.
    NewProject(Box<Project>),
    /// A project file was opened, with its film (checked against it).
    ProjectOpened {
        /// The project.
        project: Box<Project>,
        /// Its file.
        path: PathBuf,
        /// Its film.
        film: PathBuf,
    },
    /// A project was read but its film cannot be used: missing, or not the
    /// film it was made on. The user can point at the film (relink).
    ProjectNeedsFilm {
        /// The project file.
        path: PathBuf,
        /// What is wrong and what to do.
        text: String,
    },
    /// A frame was decoded.
    Frame(RgbFrame),
    /// Opening or decoding failed; the text names the file and says why.
    Error(String),
    /// A thumbnail for the timeline (`generation` is the film's open generation).
    Thumbnail(RgbFrame),
    /// Shots detected in the film, as inclusive ranges, for the film opened
    /// at `generation`.
    Shots {
        /// The film's open generation.
        generation: u64,
        /// The shots.
        shots: Vec<(u64, u64)>,
    },
    /// How far the background pass over the film (shots, scrub proxy) has
    /// come, for the film opened at `generation`.
    Pass {
        /// The film's open generation.
        generation: u64,
        /// Frames read so far.
        done: u64,
        /// Frames in the film.
        total: u64,
    },
    /// Why the film being opened gets no scrub proxy, or stopped getting
    /// one (its budget), for the status bar.
    ProxyNote {
        /// The [`Command::Open`] generation it belongs to.
        generation: u64,
        /// What to tell the user.
        text: String,
    },
    /// The outcome of loading ONNX Runtime: its version, or why it did not load.
    Runtime(Result<String, String>),
}

/// The background pass reports its progress every this many frames.
const PASS_REPORT_EVERY: u64 = 25;

/// Handle to the frame worker thread ([`FRAME_THREAD_NAME`]).
///
/// Dropping it asks the worker to stop and returns at once; the worker ends
/// after the frame it is decoding, if any.
pub struct FrameWorker {
    commands: Sender<Command>,
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl FrameWorker {
    /// Starts the worker. It sends its [`Message`]s to `to_ui` and wakes
    /// `ctx` after each. Frames it has not cached are read from the film's
    /// scrub proxy under `proxies` where built (see [`ScrubProxy`]).
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(
        ctx: egui::Context,
        to_ui: Sender<Message>,
        proxies: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let (commands, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let outbox = Outbox { ctx, tx: to_ui };
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(FRAME_THREAD_NAME.to_owned())
            .spawn(move || {
                run_guarded(
                    "frame",
                    || run_frames(&rx, &outbox, &stop_flag, proxies.as_deref()),
                    |text| {
                        outbox.send(Message::Error(text));
                    },
                );
            })?;
        Ok(Self {
            commands,
            stop,
            _thread: thread,
        })
    }

    /// Queues a command; never blocks. Returns `false` if the worker has ended.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Commands waiting for the worker.
    pub fn queued(&self) -> usize {
        self.commands.len()
    }
}

impl Drop for FrameWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unbounded channel: this never blocks. An error means the worker has already ended.
        let _ = self.commands.send(Command::Stop);
    }
}

/// The UI's end of the message channel plus the context to wake.
struct Outbox {
    ctx: egui::Context,
    tx: Sender<Message>,
}

impl Outbox {
    /// Sends and wakes the UI; `false` when the UI has gone.
    fn send(&self, message: Message) -> bool {
        let sent = self.tx.send(message).is_ok();
        self.ctx.request_repaint();
        sent
    }
}

/// What one batch of pending commands asks for, after latest-wins.
#[derive(Debug, Default, PartialEq, Eq)]
struct Batch {
    stop: bool,
    open: Option<Open>,
    show: Option<(u64, u64)>,
}

/// What to open.
#[derive(Debug, PartialEq, Eq)]
enum Open {
    Film(PathBuf),
    Project {
        path: PathBuf,
        film: Option<PathBuf>,
    },
}

impl Batch {
    /// Folds commands in arrival order: the last `Open` wins, and so does the
    /// last `Show` (one queued before a newer `Open` is for the old film and
    /// is dropped). `Stop` ends everything.
    fn fold(commands: impl IntoIterator<Item = Command>) -> Self {
        let mut batch = Self::default();
        for command in commands {
            match command {
                Command::Stop => {
                    batch.stop = true;
                    break;
                }
                Command::Open(path) => {
                    batch.open = Some(Open::Film(path));
                    batch.show = None;
                }
                Command::OpenProject { path, film } => {
                    batch.open = Some(Open::Project { path, film });
                    batch.show = None;
                }
                Command::Show { index, generation } => batch.show = Some((index, generation)),
            }
        }
        batch
    }
}

/// Runs a worker thread's `body` until it returns. A panic inside it (a
/// bug) is logged and reported with `report`, and `body` starts again with
/// fresh state, so the window shows what went wrong instead of waiting
/// forever on a thread that died.
pub fn run_guarded(thread: &str, mut body: impl FnMut(), mut report: impl FnMut(String)) {
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut body)) {
            Ok(()) => return,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                let text = format!(
                    "Tincture's {thread} thread stopped on an internal error ({what}) and was \
                     restarted; what it was doing was not finished. Please report this, with the log."
                );
                tracing::error!("{text}");
                report(text);
            }
        }
    }
}

/// The most frames kept around the playhead.
const CACHE_FRAMES: usize = 48;
/// The most bytes of pictures kept around the playhead: 48 frames of a 2K
/// scan would take 610 MB, of an 8K one 6.4 GB. Two frames are always kept.
pub const CACHE_BYTES: usize = 256 << 20;
/// Frames decoded ahead of the playhead while nothing else is asked.
const READ_AHEAD: u64 = 12;

/// Recently decoded frames, oldest first.
#[derive(Default)]
struct FrameCache {
    frames: std::collections::VecDeque<RgbFrame>,
}

impl FrameCache {
    fn get(&self, index: u64) -> Option<&RgbFrame> {
        self.frames.iter().find(|f| f.index == index)
    }

    fn put(&mut self, frame: RgbFrame) {
        self.frames.retain(|f| f.index != frame.index);
        let size = frame.bytes();
        while self.frames.len() >= CACHE_FRAMES
            || (self.frames.len() >= 2 && self.bytes() + size > CACHE_BYTES)
        {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
    }

    /// The bytes of the pictures held.
    fn bytes(&self) -> usize {
        self.frames.iter().map(RgbFrame::bytes).sum()
    }

    fn clear(&mut self) {
        self.frames.clear();
    }
}

/// Frame `index`: from the scrub proxy when its part is built (one intra
/// frame to decode), else from the film.
fn fetch(
    reader: &mut VideoReader,
    proxy: Option<&mut ScrubProxy>,
    index: u64,
) -> Result<RgbFrame, String> {
    match proxy.and_then(|p| p.frame(index)) {
        Some(frame) => Ok(RgbFrame::from_rgb(
            index,
            frame.width(),
            frame.height(),
            &frame_to_rgb8(&frame),
        )),
        None => decode(reader, index),
    }
}

fn decode(reader: &mut VideoReader, index: u64) -> Result<RgbFrame, String> {
    let decoded = reader.seek(index).map_err(|e| e.to_string())?;
    let frame = &decoded.frame;
    Ok(RgbFrame::from_rgb(
        index,
        frame.width(),
        frame.height(),
        &frame_to_rgb8(frame),
    ))
}

/// Opens a project and its film: the messages to send, and the reader.
fn open_project(path: &Path, film: Option<&Path>) -> (Vec<Message>, Option<VideoReader>) {
    // Shot models from outside the project's folder are asked about in
    // the window before anything is coloured with them.
    let project = match Project::load_asking_for_models(path) {
        Ok(p) => p,
        Err(e) => return (vec![Message::Error(e.to_string())], None),
    };
    let film = match check_source(&project, path, film, false) {
        Ok(f) => f,
        Err(e) => {
            return (
                vec![Message::ProjectNeedsFilm {
                    path: path.to_owned(),
                    text: e.to_string(),
                }],
                None,
            );
        }
    };
    match VideoReader::open(&film) {
        Ok(r) => (
            vec![
                Message::Opened(MediaSummary::from_info(r.info())),
                Message::ProjectOpened {
                    project: Box::new(project),
                    path: path.to_owned(),
                    film,
                },
            ],
            Some(r),
        ),
        Err(e) => (vec![Message::Error(e.to_string())], None),
    }
}

fn open_film(path: &Path) -> (Vec<Message>, Option<VideoReader>) {
    match VideoReader::open(path) {
        Ok(r) => {
            let summary = MediaSummary::from_info(r.info());
            tracing::info!(path = %path.display(), frames = summary.frame_count, "film opened");
            let project = match new_project(path) {
                Ok(p) => Message::NewProject(Box::new(p)),
                Err(e) => Message::Error(format!("Cannot start a project for this film: {e}")),
            };
            (vec![Message::Opened(summary), project], Some(r))
        }
        Err(e) => {
            tracing::warn!("{e}");
            (vec![Message::Error(e.to_string())], None)
        }
    }
}

fn run_frames(rx: &Receiver<Command>, outbox: &Outbox, stop: &AtomicBool, proxies: Option<&Path>) {
    let mut reader: Option<VideoReader> = None;
    let mut proxy: Option<ScrubProxy> = None;
    let mut cache = FrameCache::default();
    // The next frame to decode ahead, and the last one to.
    let mut ahead: Option<(u64, u64)> = None;
    loop {
        // Wait for a command, unless there is reading ahead to do.
        let first = if ahead.is_some() {
            match rx.try_recv() {
                Ok(c) => Some(c),
                Err(crossbeam_channel::TryRecvError::Empty) => None,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => break,
            }
        };
        let Some(first) = first else {
            // Idle: decode one frame ahead of the playhead into the cache.
            if let (Some((next, last)), Some(r)) = (ahead, reader.as_mut()) {
                if cache.get(next).is_none()
                    && let Ok(frame) = fetch(r, proxy.as_mut(), next)
                {
                    cache.put(frame);
                }
                ahead = (next < last).then_some((next + 1, last));
            } else {
                ahead = None;
            }
            continue;
        };
        let batch = Batch::fold(std::iter::once(first).chain(rx.try_iter()));
        if batch.stop || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(open) = batch.open {
            cache.clear();
            ahead = None;
            let (messages, r) = match &open {
                Open::Film(path) => open_film(path),
                Open::Project { path, film } => open_project(path, film.as_deref()),
            };
            proxy = proxies
                .zip(r.as_ref())
                .and_then(|(root, r)| ScrubProxy::for_film(root, r));
            reader = r;
            for m in messages {
                if !outbox.send(m) {
                    return;
                }
            }
        }
        let (Some((index, generation)), Some(r)) = (batch.show, reader.as_mut()) else {
            continue;
        };
        let result = match cache.get(index) {
            Some(f) => Ok(f.clone()),
            None => fetch(r, proxy.as_mut(), index),
        };
        let message = match result {
            Ok(mut frame) => {
                tracing::trace!(index, generation, "frame decoded");
                cache.put(frame.clone());
                frame.generation = generation;
                let last = r.frame_count().saturating_sub(1);
                ahead = (index < last).then_some((index + 1, (index + READ_AHEAD).min(last)));
                Message::Frame(frame)
            }
            Err(e) => {
                tracing::warn!("{e}");
                Message::Error(e)
            }
        };
        if !outbox.send(message) {
            break;
        }
    }
    tracing::debug!("frame worker stopped");
}

/// Name of the thumbnail and shot-detection thread.
pub const BACKGROUND_THREAD_NAME: &str = "tincture-background";

/// Height of timeline thumbnails in pixels.
pub const THUMB_HEIGHT: usize = 48;

/// Scales an RGB frame down to `height` rows by averaging boxes.
pub fn downscale(frame: &RgbFrame, height: usize) -> RgbFrame {
    let (w, h) = (frame.width, frame.height);
    let th = height.min(h).max(1);
    let tw = ((w * th) / h.max(1)).max(1);
    let mut rgb = Vec::with_capacity(tw * th * 3);
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
            let mut sum = [0u32; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    for (s, v) in sum.iter_mut().zip(frame.rgb_at(x, y)) {
                        *s += u32::from(v);
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            rgb.extend(sum.map(|v| ((v + n / 2) / n) as u8));
        }
    }
    RgbFrame {
        generation: frame.generation,
        ..RgbFrame::from_rgb(frame.index, tw, th, &rgb)
    }
}

/// Where scrub proxies are kept and how much disk they may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// The folder holding one folder per film.
    pub root: PathBuf,
    /// Bytes all proxies together may take; older films' are removed first.
    pub budget: u64,
}

/// What the background pass over a film does besides thumbnails.
#[derive(Clone, Debug, Default)]
pub struct BackgroundWork {
    /// Timeline thumbnails to make, evenly spaced.
    pub thumbnails: u64,
    /// Whether to detect shots.
    pub detect: bool,
    /// Where to build the film's scrub proxy, if it needs one.
    pub proxies: Option<ProxySettings>,
}

/// Makes timeline thumbnails of the film at `path`, evenly spaced, then
/// in one sequential pass detects its shots and builds the parts of its
/// scrub proxy still missing, on a thread of its own
/// ([`BACKGROUND_THREAD_NAME`]) at a lowered priority; stops early when
/// `cancel` is set (another film was opened). Errors only end the work:
/// the viewer reports decoding errors itself.
///
/// # Errors
/// When the operating system cannot start the thread.
pub fn spawn_background(
    ctx: egui::Context,
    to_ui: Sender<Message>,
    path: PathBuf,
    generation: u64,
    work: BackgroundWork,
    cancel: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let outbox = Outbox { ctx, tx: to_ui };
    std::thread::Builder::new()
        .name(BACKGROUND_THREAD_NAME.to_owned())
        .spawn(move || {
            tincture_engine::lower_thread_priority();
            let Ok(mut reader) = VideoReader::open(&path) else {
                return;
            };
            let frames = reader.frame_count();
            let count = work.thumbnails.min(frames);
            for k in 0..count {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let index = k * frames / count.max(1);
                let Ok(mut frame) = decode(&mut reader, index) else {
                    return;
                };
                frame.generation = generation;
                if !outbox.send(Message::Thumbnail(downscale(&frame, THUMB_HEIGHT))) {
                    return;
                }
            }
            let Ok(mut reader) = VideoReader::open(&path) else {
                return;
            };
            let note = |text: String| {
                outbox.send(Message::ProxyNote { generation, text });
            };
            let gb = |b: u64| b as f64 / 1e9;
            let mut proxy = work.proxies.as_ref().and_then(|settings| {
                let proxy = ScrubProxy::for_film(&settings.root, &reader)?;
                // The budget holds for this film's proxy too: one that
                // would not fit is not started.
                let video = &reader.info().video;
                use tincture_core::frame::Subsampling;
                let share = match reader.subsampling() {
                    Some(Subsampling::S420) => 0.5,
                    Some(Subsampling::S422) => 1.0,
                    Some(Subsampling::S444) => 2.0,
                    None => 0.0,
                };
                let estimate = proxy.estimated_bytes(video.width, video.height, share);
                if estimate > settings.budget {
                    note(format!(
                        "No scrub proxy: this film's would take about {:.1} GB, over the {:.1} GB \
                         budget (TINCTURE_PROXY_BUDGET_GB); far jumps decode from the film itself",
                        gb(estimate),
                        gb(settings.budget)
                    ));
                    return None;
                }
                evict_proxies(&settings.root, proxy.dir(), settings.budget);
                let writer = proxy.writer();
                (!writer.complete()).then_some(writer)
            });
            let budget = work.proxies.as_ref().map_or(u64::MAX, |s| s.budget);
            if !work.detect && proxy.is_none() {
                return;
            }
            let mut detector = work.detect.then(|| {
                tincture_core::shots::ShotDetector::new(tincture_core::shots::ShotParams::default())
            });
            let total = reader.frame_count();
            let mut done = 0;
            while let Ok(Some(decoded)) = reader.next_frame() {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                done += 1;
                if done % PASS_REPORT_EVERY == 0 {
                    outbox.send(Message::Pass {
                        generation,
                        done,
                        total,
                    });
                }
                if let Some(d) = detector.as_mut() {
                    d.push(&decoded.frame.luma_unit());
                }
                if let Some(writer) = proxy.as_mut()
                    && let Err(e) = writer.push(&reader, &decoded)
                {
                    // Scrubbing still works from the film itself, only slower.
                    tracing::warn!("the scrub proxy is not built further: {e}");
                    proxy = None;
                }
                // Measured as it grows (each part written whole): a proxy
                // over the budget is removed, as if it had not fitted.
                if done % tincture_media::PROXY_CHUNK == 0
                    && let Some(writer) = proxy.take()
                {
                    let bytes = writer.bytes_on_disk();
                    if bytes > budget {
                        let dir = writer.dir().to_owned();
                        drop(writer);
                        let _ = std::fs::remove_dir_all(&dir);
                        note(format!(
                            "No scrub proxy: this film's grew past the {:.1} GB budget \
                             (TINCTURE_PROXY_BUDGET_GB) and was removed; far jumps decode from \
                             the film itself",
                            gb(budget)
                        ));
                    } else {
                        proxy = Some(writer);
                    }
                }
            }
            if let Some(Err(e)) = proxy.map(tincture_media::ProxyWriter::finish) {
                tracing::warn!("the scrub proxy's last part was not kept: {e}");
            }
            if let Some(d) = detector {
                let shots = d.finish().iter().map(|s| (s.start, s.end)).collect();
                outbox.send(Message::Shots { generation, shots });
            }
            outbox.send(Message::Pass {
                generation,
                done: total,
                total,
            });
        })?;
    Ok(())
}

/// Loads ONNX Runtime on a thread of its own ([`RUNTIME_THREAD_NAME`]) and
/// sends the outcome as [`Message::Runtime`].
///
/// # Errors
/// When the operating system cannot start the thread.
pub fn spawn_runtime_check(ctx: egui::Context, to_ui: Sender<Message>) -> std::io::Result<()> {
    let outbox = Outbox { ctx, tx: to_ui };
    std::thread::Builder::new()
        .name(RUNTIME_THREAD_NAME.to_owned())
        .spawn(move || {
            // A broken library can panic inside the loader; report it like any other failure.
            let outcome = std::panic::catch_unwind(tincture_infer::load_runtime)
                .unwrap_or_else(|_| {
                    Err(tincture_infer::Error::LoadFailed {
                        path: PathBuf::from("libonnxruntime.so"),
                        reason: "the library panicked while loading".into(),
                    })
                })
                .map(|info| info.version)
                .map_err(|e| e.to_string());
            if let Err(e) = &outcome {
                tracing::warn!("{e}");
            }
            outbox.send(Message::Runtime(outcome));
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(index: u64, generation: u64) -> Command {
        Command::Show { index, generation }
    }

    #[test]
    fn a_panicking_worker_is_reported_and_restarted() {
        let mut runs = 0;
        let mut reports = Vec::new();
        run_guarded(
            "colour",
            || {
                runs += 1;
                assert!(runs > 1, "solver went wrong");
            },
            |text| reports.push(text),
        );
        assert_eq!(runs, 2, "started again after the panic");
        assert_eq!(reports.len(), 1);
        assert!(
            reports[0].contains("colour thread") && reports[0].contains("solver went wrong"),
            "{}",
            reports[0]
        );
    }

    #[test]
    fn the_frame_cache_is_bounded_in_bytes() {
        // 2K frames (12.7 MB each as RGBA): the byte bound holds well below
        // the frame count bound; small frames are held up to the count.
        let frame =
            |index: u64, w: usize, h: usize| RgbFrame::from_rgb(index, w, h, &vec![0u8; w * h * 3]);
        let mut cache = FrameCache::default();
        for i in 0..40 {
            cache.put(frame(i, 2048, 1556));
            assert!(cache.bytes() <= CACHE_BYTES, "{} bytes", cache.bytes());
        }
        assert_eq!(cache.frames.len(), CACHE_BYTES / (2048 * 1556 * 4));
        assert!(cache.get(39).is_some() && cache.get(0).is_none());
        let mut cache = FrameCache::default();
        for i in 0..100 {
            cache.put(frame(i, 160, 120));
        }
        assert_eq!(cache.frames.len(), CACHE_FRAMES);
        // A single frame larger than the bound is still kept, with one more.
        let mut cache = FrameCache::default();
        cache.put(frame(0, 8192, 8192));
        cache.put(frame(1, 8192, 8192));
        assert_eq!(cache.frames.len(), 2);
        cache.put(frame(2, 8192, 8192));
        assert_eq!(cache.frames.len(), 2);
    }

    #[test]
    fn latest_show_wins() {
        let b = Batch::fold([show(1, 1), show(5, 2), show(3, 3)]);
        assert_eq!(b.show, Some((3, 3)));
        assert!(!b.stop && b.open.is_none());
    }

    #[test]
    fn open_drops_older_shows_and_stop_ends() {
        let b = Batch::fold([show(9, 1), Command::Open("a.mkv".into()), show(0, 2)]);
        assert_eq!(b.open, Some(Open::Film("a.mkv".into())));
        assert_eq!(b.show, Some((0, 2)));
        let b = Batch::fold([show(9, 1), Command::Open("b.mkv".into())]);
        assert_eq!(b.show, None);
        assert!(Batch::fold([show(1, 1), Command::Stop, show(2, 2)]).stop);
    }

    #[test]
    fn downscale_averages_boxes() {
        let rgb = [[0, 0, 0], [200, 100, 50], [10, 10, 10], [10, 10, 10]]
            .repeat(2)
            .concat();
        let frame = RgbFrame {
            generation: 3,
            ..RgbFrame::from_rgb(7, 4, 2, &rgb)
        };
        let small = downscale(&frame, 1);
        assert_eq!(
            (small.width, small.height, small.index, small.generation),
            (2, 1, 7, 3)
        );
        assert_eq!(
            [small.rgb_at(0, 0), small.rgb_at(1, 0)],
            [[100, 50, 25], [10, 10, 10]]
        );
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("1:1"), Some(1.0));
        assert_eq!(parse_ratio("4/3"), Some(4.0 / 3.0));
        assert_eq!(parse_ratio("0:1"), None);
        assert_eq!(parse_ratio("junk"), None);
    }
}
