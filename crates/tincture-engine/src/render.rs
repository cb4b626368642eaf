//! The render pipeline: decode → colorize → compose (source luma + new
//! chroma) → encode, streaming in bounded memory.
//!
//! A decode thread feeds frames through a bounded channel to the caller's
//! thread, which colorizes and encodes. The output is written under a
//! temporary name and renamed when complete. On cancel the encoder is
//! flushed and the trailer written, so the partial file is valid; it keeps
//! its temporary name and the outcome says which frame to resume from.
//!
//! The settings of a partial file are recorded beside it
//! ([`resume_record_path`]); a later export of the same settings renders
//! only the remaining frames and joins them to it ([`Start::Resumed`]). When
//! writing fails (a full disk), the frames written are kept in a valid
//! partial file where the container allows it (Matroska and image
//! sequences; a MOV/MP4 cut short has no index and is removed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tincture_core::colorize::Colorizer;
use tincture_core::compose::{OutputLayout, compose_frame};
use tincture_core::timecode::offset_timecode;
use tincture_media::{
    DecodedFrame, ImageFormat, ImageSequenceWriter, PassthroughStream, StreamKind, StreamPacket,
    StreamTail, VideoCodec, VideoReader, VideoWriter, VideoWriterConfig,
};

use crate::error::KeptPartial;
use crate::live_metrics::{LiveMetrics, MetricsThread, Sidecar, sidecar_path, write_json_atomic};
use crate::{Error, Result, output};

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum OutputFormat {
    /// A video file.
    Video(VideoCodec),
    /// A folder of images.
    Images(ImageFormat),
}

impl OutputFormat {
    /// Parses a CLI/GUI name: `ffv1`, `prores`, `h264`, `png`, `tiff`.
    pub fn from_name(name: &str, crf: u8) -> Option<Self> {
        Some(match name {
            "ffv1" => Self::Video(VideoCodec::Ffv1),
            "prores" => Self::Video(VideoCodec::ProRes),
            "h264" => Self::Video(VideoCodec::H264 { crf }),
            "png" => Self::Images(ImageFormat::Png),
            "tiff" => Self::Images(ImageFormat::Tiff16),
            _ => return None,
        })
    }

    /// Guesses the format from the output's name: `.mkv` FFV1, `.mov` ProRes,
    /// `.mp4` H.264; a name without extension is a PNG folder.
    pub fn from_path(path: &Path, crf: u8) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("mkv") => Some(Self::Video(VideoCodec::Ffv1)),
            Some("mov") => Some(Self::Video(VideoCodec::ProRes)),
            Some("mp4") => Some(Self::Video(VideoCodec::H264 { crf })),
            None => Some(Self::Images(ImageFormat::Png)),
            _ => None,
        }
    }
}

/// What to render.
pub struct RenderRequest {
    /// The source film (opened read-only).
    pub input: PathBuf,
    /// The output file, or folder for image sequences.
    pub output: PathBuf,
    /// The export format.
    pub format: OutputFormat,
    /// Inclusive frame range; `None` for the whole film.
    pub frames: Option<(u64, u64)>,
    /// The colour engine; `None` sends frames through unchanged (a plain transcode).
    pub colorizer: Option<Box<dyn Colorizer>>,
    /// Replace an existing output.
    pub overwrite: bool,
    /// Encoder threads, 0 for one per core.
    pub threads: usize,
    /// Measure the output while rendering (flicker, colourfulness) and write
    /// the series beside it as `NAME.metrics.json`; `None` skips this.
    pub metrics: Option<LiveMetrics>,
    /// The other files the render reads (a project, its reference photos, a
    /// reference photo): like `input`, the output may be none of them nor a
    /// folder holding one (see [`crate::output`]).
    pub also_reads: Vec<PathBuf>,
}

impl RenderRequest {
    /// Every file the render reads: the source film and [`Self::also_reads`].
    pub fn inputs(&self) -> Vec<&Path> {
        std::iter::once(self.input.as_path())
            .chain(self.also_reads.iter().map(PathBuf::as_path))
            .collect()
    }
}

/// Progress, reported after every frame.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Frames written.
    pub done: u64,
    /// Frames to write.
    pub total: u64,
}

/// How a render ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All frames written; the output has its final name.
    Completed {
        /// The output.
        path: PathBuf,
        /// Frames written.
        frames: u64,
    },
    /// Stopped on request; a valid partial file is left under its temporary name.
    Cancelled {
        /// The partial output.
        partial: PathBuf,
        /// Frames written.
        frames: u64,
        /// The source frame to resume from.
        resume_from: u64,
    },
}

/// The temporary name an output is written under until it is complete:
/// `name.tincture-partial.ext`, beside it.
pub fn partial_path(output: &Path) -> PathBuf {
    temp_path(output, "tincture-partial")
}

/// A digest of everything that determines the output's pixels.
fn settings_digest(req: &RenderRequest, first: u64, last: u64) -> (String, String) {
    let settings = serde_json::json!({
        "tincture": crate::VERSION,
        "format": req.format,
        "frames": [first, last],
        "colorizer": req.colorizer.as_ref().map_or(serde_json::json!("passthrough"), |c| serde_json::json!({
            "name": c.name(),
            "settings": c.settings(),
        })),
    });
    let text = settings.to_string();
    (sha256_text(&text), text)
}

/// `sha256:HEX` of `text`.
fn sha256_text(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A digest of an export's settings (as recorded in an image sequence's
/// settings file) without its frame range: the same for every chunk of one
/// render, so a farm's join can tell chunks made with other settings apart.
/// Video renders carry it as the `TINCTURE_COLOUR_DIGEST` tag.
pub fn colour_digest(settings: &serde_json::Value) -> String {
    let mut settings = settings.clone();
    if let Some(fields) = settings.as_object_mut() {
        fields.remove("frames");
    }
    sha256_text(&settings.to_string())
}

/// How an export began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// From its first frame: there was no partial file.
    Fresh,
    /// From where an earlier export of the same settings stopped: only the
    /// remaining frames are rendered, then joined to the partial file.
    Resumed {
        /// The first source frame rendered now.
        from: u64,
        /// Frames kept from the partial file.
        kept: u64,
    },
    /// A partial file was there but cannot be continued (other settings, or
    /// unreadable); it was replaced.
    StartedOver {
        /// Why, in words for the user.
        reason: String,
    },
}

/// What a render reports while it runs.
#[derive(Clone, Debug)]
pub enum RenderEvent {
    /// Once, before the first frame.
    Started(Start),
    /// After every frame; counts only the frames this run renders.
    Progress(Progress),
}

/// The settings a partial file was made with, kept beside it as
/// `NAME.tincture-partial.EXT.json` (see [`resume_record_path`]): a later
/// export resumes from the partial file only when they match.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ResumeRecord {
    tincture: String,
    source: PathBuf,
    source_size: u64,
    /// Modification time, seconds and nanoseconds since the epoch.
    source_modified: Option<[u64; 2]>,
    format: serde_json::Value,
    frames: [u64; 2],
    settings_digest: String,
}

impl ResumeRecord {
    fn new(req: &RenderRequest, first: u64, last: u64, digest: &str) -> Self {
        let meta = std::fs::metadata(&req.input).ok();
        let modified = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| [d.as_secs(), u64::from(d.subsec_nanos())]);
        Self {
            tincture: crate::VERSION.into(),
            source: std::fs::canonicalize(&req.input).unwrap_or_else(|_| req.input.clone()),
            source_size: meta.map_or(0, |m| m.len()),
            source_modified: modified,
            format: serde_json::to_value(req.format).unwrap_or_default(),
            frames: [first, last],
            settings_digest: digest.into(),
        }
    }

    /// Why a partial file made with `self` cannot be continued with `now`.
    fn difference(&self, now: &Self) -> Option<String> {
        Some(if self.tincture != now.tincture {
            format!("it was made by Tincture {}", self.tincture)
        } else if self.source != now.source {
            format!("it was made from {}", self.source.display())
        } else if (self.source_size, self.source_modified) != (now.source_size, now.source_modified)
        {
            "the source film changed since".into()
        } else if self.format != now.format {
            "it has another format".into()
        } else if self.frames != now.frames {
            format!(
                "it covers frames {}-{}, not {}-{}",
                self.frames[0], self.frames[1], now.frames[0], now.frames[1]
            )
        } else if self.settings_digest != now.settings_digest {
            "it was made with other colour settings".into()
        } else {
            return None;
        })
    }
}

/// A temporary name beside `output`: `name.TAG.ext`.
fn temp_path(output: &Path, tag: &str) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match output.extension() {
        Some(ext) => format!("{stem}.{tag}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{tag}"),
    };
    output.with_file_name(name)
}

/// Where the settings of `output`'s partial file are recorded, for resuming:
/// `name.tincture-partial.ext.json`.
pub fn resume_record_path(output: &Path) -> PathBuf {
    let mut name = partial_path(output).into_os_string();
    name.push(".json");
    PathBuf::from(name)
}

/// Frames of an image-sequence partial folder that are there, in order
/// from `first`. Each is decoded whole: a file cut short keeps a valid
/// header, so reading headers alone would keep a damaged frame.
fn images_kept(dir: &Path, format: ImageFormat, first: u64, last: u64) -> u64 {
    (first..=last)
        .take_while(|&i| image::open(dir.join(ImageSequenceWriter::file_name(format, i))).is_ok())
        .count() as u64
}

/// Decides whether the partial file of `req` can be continued: returns how
/// the export starts and the frames kept.
fn decide_start(req: &RenderRequest, partial: &Path, now: &ResumeRecord) -> (Start, u64) {
    if !partial.exists() {
        return (Start::Fresh, 0);
    }
    let over = |reason: String| {
        let reason = format!("{} cannot be continued: {reason}", partial.display());
        (Start::StartedOver { reason }, 0)
    };
    let recorded: Option<ResumeRecord> = std::fs::read(resume_record_path(&req.output))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(recorded) = recorded else {
        return over("its settings were not recorded".into());
    };
    if let Some(why) = recorded.difference(now) {
        return over(why);
    }
    let [first, last] = now.frames;
    let kept = match req.format {
        OutputFormat::Video(_) => tincture_media::count_frames(partial).unwrap_or(0),
        OutputFormat::Images(format) => images_kept(partial, format, first, last),
    };
    if kept == 0 {
        over("it holds no readable frames".into())
    } else if kept > last - first {
        over("it already holds every frame".into())
    } else {
        (
            Start::Resumed {
                from: first + kept,
                kept,
            },
            kept,
        )
    }
}

enum Sink {
    Video(VideoWriter),
    Images(ImageSequenceWriter),
}

/// What the output of `format` is: a file or a folder of frames.
fn output_kind(format: OutputFormat) -> output::Kind {
    match format {
        OutputFormat::Video(_) => output::Kind::File,
        OutputFormat::Images(_) => output::Kind::Sequence,
    }
}

/// The one output check ([`output::check`]) for the render's output, the
/// files written beside it (partial, settings record, temporary segments,
/// the metrics sidecar) and a partial folder left by an earlier render.
fn check_output(req: &RenderRequest) -> Result<()> {
    let inputs = req.inputs();
    let kind = output_kind(req.format);
    output::check(&req.output, &inputs, req.overwrite, kind)?;
    for beside in [
        partial_path(&req.output),
        resume_record_path(&req.output),
        temp_path(&req.output, "tincture-resume"),
        temp_path(&req.output, "tincture-join"),
        temp_path(&req.output, "tincture-probe"),
    ] {
        output::check_not_input(&beside, &inputs)?;
    }
    if req.metrics.is_some() && kind == output::Kind::File {
        output::check(
            &sidecar_path(&req.output),
            &inputs,
            req.overwrite,
            output::Kind::File,
        )?;
    }
    // Probe writability beside the output, so the message is about the real place.
    let probe = temp_path(&req.output, "tincture-probe");
    std::fs::write(&probe, b"").map_err(|e| Error::Output {
        path: req.output.clone(),
        reason: e.to_string(),
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Renders `req`, calling `progress` after each frame and stopping cleanly
/// when `cancel` becomes true. See [`render_with`].
///
/// # Errors
/// As [`render_with`].
pub fn render(
    req: RenderRequest,
    cancel: &AtomicBool,
    mut progress: impl FnMut(Progress),
) -> Result<Outcome> {
    render_with(req, cancel, |event| {
        if let RenderEvent::Progress(p) = event {
            progress(p);
        }
    })
}

/// Renders `req`, reporting to `on_event`, and stopping cleanly when
/// `cancel` becomes true.
///
/// When a partial file of an earlier export of the same settings (source,
/// format, frame range, colour settings) is there, only the remaining
/// frames are rendered and then joined to it by stream copy; the result
/// equals an uninterrupted render. A partial file of other settings is
/// replaced ([`Start::StartedOver`]).
///
/// # Errors
/// Bad input, unusable output, or a frame that cannot be decoded, colorized
/// or encoded; each error names the file and, where it applies, the frame.
/// On such an error this run's output is removed, so nothing is left that
/// looks complete. When writing fails (a full disk), the frames written are
/// kept in a valid partial file where possible: [`Error::WriteFailed`].
pub fn render_with(
    mut req: RenderRequest,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(RenderEvent),
) -> Result<Outcome> {
    let mut reader = VideoReader::open(&req.input)?;
    let count = reader.frame_count();
    let (first, last) = req.frames.unwrap_or((0, count - 1));
    if first > last || last >= count {
        return Err(Error::FrameRange {
            path: req.input.clone(),
            first,
            last,
            count,
        });
    }
    let whole = first == 0 && last == count - 1;
    let partial = partial_path(&req.output);
    let record_path = resume_record_path(&req.output);
    check_output(&req)?;
    // Another Tincture (a window, a farm's second try) writing this same
    // partial file would corrupt it: one at a time.
    let _lock =
        crate::lock::FileLock::acquire(&partial, &format!("the output {}", req.output.display()))
            .map_err(|e| Error::Output {
            path: req.output.clone(),
            reason: e.to_string(),
        })?;

    let info = reader.info().clone();
    let v = &info.video;
    let (digest, settings_json) = settings_digest(&req, first, last);
    let record = ResumeRecord::new(&req, first, last, &digest);
    let (start, kept) = decide_start(&req, &partial, &record);
    let resuming = kept > 0;
    let from = first + kept;
    if !resuming && partial.is_dir() {
        // Only a partial sequence of Tincture's is removed.
        output::remove_sequence_folder(&partial)?;
    } else if !resuming {
        remove_partial(&partial);
    }
    // A resumed video is rendered apart, video only, and joined afterwards.
    let segment = match req.format {
        OutputFormat::Video(_) if resuming => temp_path(&req.output, "tincture-resume"),
        _ => partial.clone(),
    };
    let copy: Vec<usize> = info
        .streams
        .iter()
        .filter(|s| matches!(s.kind, StreamKind::Audio | StreamKind::Subtitle))
        .map(|s| s.index)
        .collect();
    let subsampling = reader.subsampling();
    let (layout, mut sink) = match req.format {
        OutputFormat::Video(codec) => {
            let copied = if resuming { Vec::new() } else { copy.clone() };
            reader.keep_packets_of(copied.clone());
            let mut metadata: Vec<(String, String)> = info
                .tags
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("encoder") && k != "timecode")
                .cloned()
                .collect();
            metadata.push(("TINCTURE_VERSION".into(), crate::VERSION.into()));
            metadata.push(("TINCTURE_SETTINGS_DIGEST".into(), digest.clone()));
            metadata.push(("TINCTURE_SOURCE_FRAMES".into(), format!("{first}-{last}")));
            if let Ok(settings) = serde_json::from_str(&settings_json) {
                metadata.push(("TINCTURE_COLOUR_DIGEST".into(), colour_digest(&settings)));
            }
            let layout = codec.layout(v.bit_depth, subsampling);
            let config = VideoWriterConfig {
                path: segment.clone(),
                final_path: req.output.clone(),
                codec,
                layout,
                passthrough: copied
                    .into_iter()
                    .map(|source_index| PassthroughStream { source_index })
                    .collect(),
                metadata,
                timecode: v
                    .timecode
                    .as_deref()
                    .and_then(|tc| offset_timecode(tc, first, v.frame_rate)),
                threads: req.threads,
            };
            let writer =
                VideoWriter::create(&config, &reader).inspect_err(|_| remove_partial(&segment))?;
            (layout, Sink::Video(writer))
        }
        OutputFormat::Images(format) => {
            let layout = OutputLayout {
                bit_depth: v.bit_depth,
                subsampling: tincture_core::frame::Subsampling::S444,
            };
            let sink = ImageSequenceWriter::create(&partial, format)?;
            if !resuming {
                std::fs::write(
                    partial.join(tincture_media::SEQUENCE_SETTINGS),
                    &settings_json,
                )
                .map_err(|e| Error::Output {
                    path: req.output.clone(),
                    reason: e.to_string(),
                })?;
            }
            (layout, Sink::Images(sink))
        }
    };
    if !resuming {
        // Recorded once the output exists, so a refused output leaves nothing behind.
        write_json_atomic(&record_path, &record).map_err(|e| {
            remove_partial(&partial);
            Error::Output {
                path: req.output.clone(),
                reason: format!("cannot record the export's settings: {e}"),
            }
        })?;
    }
    tracing::info!(input = %req.input.display(), output = %req.output.display(), first, last, from, %digest, "render started");
    on_event(RenderEvent::Started(start));

    // Every run keeps the timing origin of the export's first frame, so a
    // resumed segment's timestamps are those of an uninterrupted render.
    let t_first = reader.pts_of(first).unwrap_or(0);
    let tb = f64::from(reader.time_base());
    let offset_seconds = t_first as f64 * tb;
    let end_of = |i: u64| {
        reader
            .pts_of(i)
            .map(|p| p.saturating_add(reader.duration_of(i)) as f64 * tb)
    };
    let end_seconds = end_of(last);
    let ends: Vec<Option<f64>> = (from..=last).map(end_of).collect();
    let durations: Vec<i64> = (from..=last).map(|i| reader.duration_of(i)).collect();

    let metrics_thread = match &req.metrics {
        Some(live) => Some(
            MetricsThread::start(live.clone()).map_err(|e| Error::Output {
                path: req.output.clone(),
                reason: format!("cannot start the metrics thread: {e}"),
            })?,
        ),
        None => None,
    };
    let (written, result) = run_frames(
        &mut req,
        reader,
        &mut sink,
        metrics_thread.as_ref(),
        layout,
        (from, last),
        whole,
        offset_seconds,
        end_seconds,
        &durations,
        t_first,
        cancel,
        &mut on_event,
    );
    let finished = match sink {
        Sink::Video(w) => w.finish().map(|_| ()),
        Sink::Images(_) => Ok(()),
    };
    let failure = match (result, finished) {
        (Ok(()), Ok(())) => None,
        (Err(e), _) => Some(e),
        (Ok(()), Err(e)) => Some(Error::from(e)),
    };
    let tail = |end: Option<f64>| StreamTail {
        source: req.input.clone(),
        streams: copy.clone(),
        offset_seconds,
        start: (!whole).then_some(offset_seconds),
        end,
    };
    let join = |end: Option<f64>| match req.format {
        OutputFormat::Video(codec) => {
            join_into_partial(&req.output, &partial, &segment, codec, &tail(end))
        }
        OutputFormat::Images(_) => Ok(0),
    };
    if let Some(e) = failure {
        let Some((disk_full, reason)) = write_failure(&e) else {
            remove_partial(&segment);
            if !resuming {
                let _ = std::fs::remove_file(&record_path);
            }
            return Err(e);
        };
        let frames = match req.format {
            OutputFormat::Video(_) => {
                if resuming {
                    // Join what the segment holds, if the disk allows.
                    let n = tincture_media::count_frames(&segment).unwrap_or(0);
                    if n > 0
                        && let Err(e) = join(ends.get(n as usize - 1).copied().flatten())
                    {
                        tracing::warn!("the frames rendered after resuming are lost: {e}");
                    }
                    remove_partial(&segment);
                }
                tincture_media::count_frames(&partial).unwrap_or(0)
            }
            OutputFormat::Images(_) => kept + written,
        };
        let kept = if frames > 0 {
            Some(KeptPartial {
                path: partial.clone(),
                frames,
                resume_from: first + frames,
            })
        } else {
            remove_partial(&partial);
            let _ = std::fs::remove_file(&record_path);
            None
        };
        return Err(Error::WriteFailed {
            output: req.output.clone(),
            frame: from + written,
            disk_full,
            reason,
            kept,
        });
    }
    let total = last - first + 1;
    let mut frames = kept + written;
    if resuming && matches!(req.format, OutputFormat::Video(_)) {
        if written == 0 {
            remove_partial(&segment);
        } else {
            let complete = frames == total;
            let end = if complete {
                if whole { None } else { end_seconds }
            } else {
                ends.get(written as usize - 1).copied().flatten()
            };
            match join(end) {
                Ok(n) => frames = n,
                Err(e) => {
                    remove_partial(&segment);
                    return Err(match (complete, write_failure(&e)) {
                        (true, Some((disk_full, reason))) => Error::WriteFailed {
                            output: req.output.clone(),
                            frame: from,
                            disk_full,
                            reason,
                            kept: Some(KeptPartial {
                                path: partial.clone(),
                                frames: kept,
                                resume_from: from,
                            }),
                        },
                        _ => e,
                    });
                }
            }
        }
    }
    if frames < total {
        tracing::warn!(frames, "render cancelled");
        return Ok(Outcome::Cancelled {
            partial,
            frames,
            resume_from: first + frames,
        });
    }
    // Checked again: the output may have appeared while the frames were
    // rendered. A file is replaced atomically by the rename; a folder only
    // when it is an image sequence of Tincture's.
    let kind = output_kind(req.format);
    output::check(&req.output, &req.inputs(), req.overwrite, kind)?;
    output::replace(&partial, &req.output, kind)?;
    let _ = std::fs::remove_file(&record_path);
    if let (Some(thread), Some(live)) = (metrics_thread, &req.metrics) {
        thread.finish();
        let sidecar = Sidecar {
            tincture_version: crate::VERSION,
            source: &req.input,
            output: &req.output,
            source_frames: [from, last],
            flow: "dense inverse search on the luma of a preview of each output frame (long side 160 px)",
            report: live.report(),
        };
        let path = sidecar_path(&req.output);
        write_json_atomic(&path, &sidecar).map_err(|e| Error::Output {
            path: path.clone(),
            reason: format!("cannot write the metrics sidecar: {e}"),
        })?;
    }
    Ok(Outcome::Completed {
        path: req.output.clone(),
        frames,
    })
}

/// Whether `e` is a failed write of the output: (disk full, reason).
fn write_failure(e: &Error) -> Option<(bool, String)> {
    match e {
        Error::Media(tincture_media::Error::Write {
            disk_full, reason, ..
        }) => Some((*disk_full, reason.clone())),
        _ => None,
    }
}

/// Joins the resumed `segment` onto `partial` (through a temporary file, so
/// `partial` stays valid if the join fails) and removes `segment`; returns
/// the frames in `partial`.
fn join_into_partial(
    output: &Path,
    partial: &Path,
    segment: &Path,
    codec: VideoCodec,
    tail: &StreamTail,
) -> Result<u64> {
    let joined = temp_path(output, "tincture-join");
    let frames = tincture_media::join_segments(partial, segment, &joined, codec.container(), tail)
        .inspect_err(|_| remove_partial(&joined))?;
    std::fs::rename(&joined, partial).map_err(|e| Error::Output {
        path: output.to_owned(),
        reason: e.to_string(),
    })?;
    remove_partial(segment);
    Ok(frames)
}

/// Removes a partial output: a file, or a sequence folder of Tincture's
/// (one that is not is left where it is).
fn remove_partial(partial: &Path) {
    if partial.is_dir() {
        if let Err(e) = output::remove_sequence_folder(partial) {
            tracing::warn!("{e}");
        }
    } else {
        let _ = std::fs::remove_file(partial);
    }
}

type Decoded = tincture_media::Result<(DecodedFrame, Vec<StreamPacket>)>;

#[allow(clippy::too_many_arguments)]
fn run_frames(
    req: &mut RenderRequest,
    mut reader: VideoReader,
    sink: &mut Sink,
    metrics: Option<&MetricsThread>,
    layout: OutputLayout,
    (first, last): (u64, u64),
    whole: bool,
    offset_seconds: f64,
    end_seconds: Option<f64>,
    durations: &[i64],
    t_first: i64,
    cancel: &AtomicBool,
    on_event: &mut impl FnMut(RenderEvent),
) -> (u64, Result<()>) {
    let total = last - first + 1;
    let (tx, rx) = crossbeam_channel::bounded::<Decoded>(4);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop_decoder = stop.clone();
    let decoder = std::thread::Builder::new()
        .name("tincture-decode".into())
        .spawn(move || {
            let mut next = Some(reader.seek(first));
            for i in first..=last {
                if stop_decoder.load(Ordering::Relaxed) {
                    return;
                }
                let item = match next.take() {
                    Some(r) => r,
                    None => reader.next_frame().and_then(|f| {
                        f.ok_or_else(|| tincture_media::Error::Decode {
                            path: reader.path().to_owned(),
                            frame: i,
                            reason: "the file ended early".into(),
                        })
                    }),
                };
                // Frames are counted here, not taken on the decoder's word: a
                // damaged packet it skipped would shift every later frame.
                let item = item.and_then(|f| {
                    if f.index == i {
                        Ok(f)
                    } else {
                        Err(tincture_media::Error::Decode {
                            path: reader.path().to_owned(),
                            frame: i,
                            reason: format!(
                                "the decoder gave frame {} where frame {i} was due (a damaged or missing packet)",
                                f.index
                            ),
                        })
                    }
                });
                let failed = item.is_err();
                let mut packets = reader.take_packets();
                if i == last && !failed {
                    // A whole film keeps all of its sound, also what runs past
                    // its last frame (as a resumed render and a farm's join
                    // do); a range keeps the sound of its frames.
                    let until = match end_seconds {
                        Some(end) if !whole => end,
                        _ => f64::INFINITY,
                    };
                    if let Err(e) = reader.read_packets_until(until) {
                        tracing::warn!("{e}");
                    }
                    packets.extend(reader.take_packets());
                }
                if tx.send(item.map(|f| (f, packets))).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|e| Error::Output {
            path: req.output.clone(),
            reason: format!("cannot start the decode thread: {e}"),
        });
    let decoder = match decoder {
        Ok(d) => d,
        Err(e) => return (0, Err(e)),
    };

    let mut written = 0u64;
    let outcome = (|| -> Result<()> {
        for received in &rx {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let (decoded, packets) = received?;
            let index = decoded.index;
            let chroma = match req.colorizer.as_mut() {
                Some(c) => {
                    let luma = decoded.frame.luma_unit();
                    match c.colorize(&luma, index, decoded.frame.matrix) {
                        Ok(chroma) => Some(chroma),
                        // The colorizer stopped inside long work (a backward
                        // pass) because the render was cancelled.
                        Err(tincture_core::Error::Cancelled) if cancel.load(Ordering::Relaxed) => {
                            break;
                        }
                        Err(source) => {
                            return Err(Error::Colorize {
                                path: req.input.clone(),
                                frame: index,
                                source,
                            });
                        }
                    }
                }
                None => None,
            };
            let out = compose_frame(&decoded.frame, chroma.as_ref(), layout);
            match sink {
                Sink::Video(w) => {
                    w.write_frame(
                        &out,
                        decoded.pts.saturating_sub(t_first),
                        durations[(index - first) as usize],
                        index,
                    )?;
                    for p in packets {
                        let inside = whole
                            || p.time.is_some_and(|t| {
                                t >= offset_seconds && end_seconds.is_none_or(|end| t < end)
                            });
                        if inside {
                            w.write_packet(p, offset_seconds)?;
                        }
                    }
                }
                Sink::Images(w) => w.write_frame(&out, index)?,
            }
            // Written: the metrics thread takes the frame itself, no copy.
            if let Some(m) = metrics {
                m.send(out);
            }
            written += 1;
            on_event(RenderEvent::Progress(Progress {
                done: written,
                total,
            }));
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = decoder.join();
    (written, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincture_core::color::{ColorRange, Matrix};
    use tincture_core::frame::Frame;

    #[test]
    fn resume_keeps_only_frames_that_decode_whole() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let seq = dir.path().join("out.tincture-partial");
        let mut writer = ImageSequenceWriter::create(&seq, ImageFormat::Png).expect("creates");
        let mut frame = Frame::neutral(96, 64, 8, None, ColorRange::Limited, Matrix::Bt709);
        frame.y.data.iter_mut().enumerate().for_each(|(i, v)| {
            *v = 16 + ((i * 37) % 200) as u16;
        });
        for i in 0..4 {
            writer.write_frame(&frame, i).expect("writes");
        }
        assert!(seq.join(tincture_media::SEQUENCE_MARKER).exists());
        let names: Vec<String> = std::fs::read_dir(&seq)
            .expect("reads")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("tincture-partial")),
            "no temporary frame left: {names:?}"
        );
        assert_eq!(images_kept(&seq, ImageFormat::Png, 0, 3), 4);
        // Frame 2 cut short: its header still reads, its pixels do not.
        let cut = seq.join(ImageSequenceWriter::file_name(ImageFormat::Png, 2));
        let bytes = std::fs::read(&cut).expect("reads");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("writes");
        assert!(image::image_dimensions(&cut).is_ok(), "the header is whole");
        assert_eq!(images_kept(&seq, ImageFormat::Png, 0, 3), 2);
    }
}
