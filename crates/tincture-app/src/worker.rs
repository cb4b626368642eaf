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
use tincture_media::{MediaInfo, VideoReader};

/// Name of the frame worker thread.
pub const FRAME_THREAD_NAME: &str = "tincture-frames";
/// Name of the thread that loads ONNX Runtime.
pub const RUNTIME_THREAD_NAME: &str = "tincture-onnx";

/// A command for the frame worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open a film, replacing the one open.
    Open(PathBuf),
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

/// A decoded frame as 8-bit RGB, ready for a texture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbFrame {
    /// The generation of the [`Command::Show`] it answers.
    pub generation: u64,
    /// Frame index, 0-based.
    pub index: u64,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` RGB triplets, row by row.
    pub rgb: Vec<u8>,
}

/// A message from a background thread to the UI.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A film was opened.
    Opened(MediaSummary),
    /// A frame was decoded.
    Frame(RgbFrame),
    /// Opening or decoding failed; the text names the file and says why.
    Error(String),
    /// The outcome of loading ONNX Runtime: its version, or why it did not load.
    Runtime(Result<String, String>),
}

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
    /// `ctx` after each.
    ///
    /// # Errors
    /// When the operating system cannot start the thread.
    pub fn spawn(ctx: egui::Context, to_ui: Sender<Message>) -> std::io::Result<Self> {
        let (commands, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let outbox = Outbox { ctx, tx: to_ui };
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(FRAME_THREAD_NAME.to_owned())
            .spawn(move || run_frames(&rx, &outbox, &stop_flag))?;
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
    open: Option<PathBuf>,
    show: Option<(u64, u64)>,
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
                    batch.open = Some(path);
                    batch.show = None;
                }
                Command::Show { index, generation } => batch.show = Some((index, generation)),
            }
        }
        batch
    }
}

fn run_frames(rx: &Receiver<Command>, outbox: &Outbox, stop: &AtomicBool) {
    let mut reader: Option<VideoReader> = None;
    while let Ok(first) = rx.recv() {
        let batch = Batch::fold(std::iter::once(first).chain(rx.try_iter()));
        if batch.stop || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(path) = batch.open {
            reader = None;
            match VideoReader::open(&path) {
                Ok(r) => {
                    let summary = MediaSummary::from_info(r.info());
                    tracing::info!(
                        path = %path.display(),
                        frames = summary.frame_count,
                        "film opened"
                    );
                    reader = Some(r);
                    if !outbox.send(Message::Opened(summary)) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    if !outbox.send(Message::Error(e.to_string())) {
                        break;
                    }
                }
            }
        }
        let (Some((index, generation)), Some(r)) = (batch.show, reader.as_mut()) else {
            continue;
        };
        let message = match r.seek(index) {
            Ok(decoded) => {
                let frame = &decoded.frame;
                tracing::trace!(index, generation, "frame decoded");
                Message::Frame(RgbFrame {
                    generation,
                    index,
                    width: frame.width(),
                    height: frame.height(),
                    rgb: frame_to_rgb8(frame),
                })
            }
            Err(e) => {
                tracing::warn!("{e}");
                Message::Error(e.to_string())
            }
        };
        if !outbox.send(message) {
            break;
        }
    }
    tracing::debug!("frame worker stopped");
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
    fn latest_show_wins() {
        let b = Batch::fold([show(1, 1), show(5, 2), show(3, 3)]);
        assert_eq!(b.show, Some((3, 3)));
        assert!(!b.stop && b.open.is_none());
    }

    #[test]
    fn open_drops_older_shows_and_stop_ends() {
        let b = Batch::fold([show(9, 1), Command::Open("a.mkv".into()), show(0, 2)]);
        assert_eq!(b.open.as_deref(), Some(Path::new("a.mkv")));
        assert_eq!(b.show, Some((0, 2)));
        let b = Batch::fold([show(9, 1), Command::Open("b.mkv".into())]);
        assert_eq!(b.show, None);
        assert!(Batch::fold([show(1, 1), Command::Stop, show(2, 2)]).stop);
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("1:1"), Some(1.0));
        assert_eq!(parse_ratio("4/3"), Some(4.0 / 3.0));
        assert_eq!(parse_ratio("0:1"), None);
        assert_eq!(parse_ratio("junk"), None);
    }
}
