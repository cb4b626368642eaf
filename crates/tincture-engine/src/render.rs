//! The render pipeline: decode → colorize → compose (source luma + new
//! chroma) → encode, streaming in bounded memory.
//!
//! A decode thread feeds frames through a bounded channel to the caller's
//! thread, which colorizes and encodes. The output is written under a
//! temporary name and renamed when complete. On cancel the encoder is
//! flushed and the trailer written, so the partial file is valid; it keeps
//! its temporary name and the outcome says which frame to resume from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tincture_core::colorize::Colorizer;
use tincture_core::compose::{OutputLayout, compose_frame};
use tincture_core::timecode::offset_timecode;
use tincture_media::{
    DecodedFrame, ImageFormat, ImageSequenceWriter, PassthroughStream, StreamKind, StreamPacket,
    VideoCodec, VideoReader, VideoWriter, VideoWriterConfig,
};

use crate::live_metrics::{LiveMetrics, MetricsThread, Sidecar, sidecar_path, write_json_atomic};
use crate::{Error, Result};

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
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match output.extension() {
        Some(ext) => format!("{stem}.tincture-partial.{}", ext.to_string_lossy()),
        None => format!("{stem}.tincture-partial"),
    };
    output.with_file_name(name)
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
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (format!("sha256:{hex}"), text)
}

enum Sink {
    Video(VideoWriter),
    Images(ImageSequenceWriter),
}

fn check_output(req: &RenderRequest, partial: &Path) -> Result<()> {
    if req.output.exists() && !req.overwrite {
        return Err(Error::OutputExists {
            path: req.output.clone(),
        });
    }
    let dir = req
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::Output {
            path: req.output.clone(),
            reason: format!("the folder {} does not exist", dir.display()),
        });
    }
    // Probe writability with the partial name itself, so the message is about the real place.
    let probe = if matches!(req.format, OutputFormat::Images(_)) {
        partial.with_extension("probe")
    } else {
        partial.to_owned()
    };
    std::fs::write(&probe, b"").map_err(|e| Error::Output {
        path: req.output.clone(),
        reason: e.to_string(),
    })?;
    let _ = std::fs::remove_file(&probe);
    if partial.is_dir() {
        let _ = std::fs::remove_dir_all(partial);
    }
    Ok(())
}

/// Renders `req`, calling `progress` after each frame and stopping cleanly
/// when `cancel` becomes true.
///
/// # Errors
/// Bad input, unusable output, or a frame that cannot be decoded, colorized
/// or encoded; each error names the file and, where it applies, the frame.
/// On error the partial output is removed, so nothing is left that looks complete.
pub fn render(
    mut req: RenderRequest,
    cancel: &AtomicBool,
    mut progress: impl FnMut(Progress),
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
    check_output(&req, &partial)?;

    let info = reader.info().clone();
    let v = &info.video;
    let (digest, settings_json) = settings_digest(&req, first, last);
    let subsampling = reader.subsampling();
    let (layout, mut sink) = match req.format {
        OutputFormat::Video(codec) => {
            let copy: Vec<usize> = info
                .streams
                .iter()
                .filter(|s| matches!(s.kind, StreamKind::Audio | StreamKind::Subtitle))
                .map(|s| s.index)
                .collect();
            reader.keep_packets_of(copy.clone());
            let mut metadata: Vec<(String, String)> = info
                .tags
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("encoder") && k != "timecode")
                .cloned()
                .collect();
            metadata.push(("TINCTURE_VERSION".into(), crate::VERSION.into()));
            metadata.push(("TINCTURE_SETTINGS_DIGEST".into(), digest.clone()));
            metadata.push(("TINCTURE_SOURCE_FRAMES".into(), format!("{first}-{last}")));
            let layout = codec.layout(v.bit_depth, subsampling);
            let config = VideoWriterConfig {
                path: partial.clone(),
                final_path: req.output.clone(),
                codec,
                layout,
                passthrough: copy
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
                VideoWriter::create(&config, &reader).inspect_err(|_| remove_partial(&partial))?;
            (layout, Sink::Video(writer))
        }
        OutputFormat::Images(format) => {
            let layout = OutputLayout {
                bit_depth: v.bit_depth,
                subsampling: tincture_core::frame::Subsampling::S444,
            };
            let sink = ImageSequenceWriter::create(&partial, format)?;
            std::fs::write(partial.join("tincture-settings.json"), &settings_json).map_err(
                |e| Error::Output {
                    path: req.output.clone(),
                    reason: e.to_string(),
                },
            )?;
            (layout, Sink::Images(sink))
        }
    };
    tracing::info!(input = %req.input.display(), output = %req.output.display(), first, last, %digest, "render started");

    let t_first = reader.pts_of(first).unwrap_or(0);
    let tb = f64::from(reader.time_base());
    let offset_seconds = t_first as f64 * tb;
    let end_seconds = reader
        .pts_of(last)
        .map(|p| (p + reader.duration_of(last)) as f64 * tb);
    let durations: Vec<i64> = (first..=last).map(|i| reader.duration_of(i)).collect();

    let metrics_thread = match &req.metrics {
        Some(live) => Some(
            MetricsThread::start(live.clone()).map_err(|e| Error::Output {
                path: req.output.clone(),
                reason: format!("cannot start the metrics thread: {e}"),
            })?,
        ),
        None => None,
    };
    let result = run_frames(
        &mut req,
        reader,
        &mut sink,
        metrics_thread.as_ref(),
        layout,
        (first, last),
        whole,
        offset_seconds,
        end_seconds,
        &durations,
        t_first,
        cancel,
        &mut progress,
    );
    let finished = match sink {
        Sink::Video(w) => w.finish().map(|_| ()),
        Sink::Images(_) => Ok(()),
    };
    let written = match (result, finished) {
        (Ok(n), Ok(())) => n,
        (Err(e), _) => {
            remove_partial(&partial);
            return Err(e);
        }
        (Ok(_), Err(e)) => {
            remove_partial(&partial);
            return Err(e.into());
        }
    };
    if written < last - first + 1 {
        tracing::warn!(frames = written, "render cancelled");
        return Ok(Outcome::Cancelled {
            partial,
            frames: written,
            resume_from: first + written,
        });
    }
    if req.output.exists() && req.overwrite {
        let removed = if req.output.is_dir() {
            std::fs::remove_dir_all(&req.output)
        } else {
            std::fs::remove_file(&req.output)
        };
        removed.map_err(|e| Error::Output {
            path: req.output.clone(),
            reason: e.to_string(),
        })?;
    }
    std::fs::rename(&partial, &req.output).map_err(|e| Error::Output {
        path: req.output.clone(),
        reason: e.to_string(),
    })?;
    if let (Some(thread), Some(live)) = (metrics_thread, &req.metrics) {
        thread.finish();
        let sidecar = Sidecar {
            tincture_version: crate::VERSION,
            source: &req.input,
            output: &req.output,
            source_frames: [first, last],
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
        frames: written,
    })
}

fn remove_partial(partial: &Path) {
    let _ = if partial.is_dir() {
        std::fs::remove_dir_all(partial)
    } else {
        std::fs::remove_file(partial)
    };
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
    progress: &mut impl FnMut(Progress),
) -> Result<u64> {
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
                let failed = item.is_err();
                let mut packets = reader.take_packets();
                if i == last && !failed {
                    if let Err(e) = reader.read_packets_until(end_seconds.unwrap_or(f64::INFINITY))
                    {
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
        })?;

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
                    Some(
                        c.colorize(&luma, index, decoded.frame.matrix)
                            .map_err(|source| Error::Colorize {
                                path: req.input.clone(),
                                frame: index,
                                source,
                            })?,
                    )
                }
                None => None,
            };
            let out = compose_frame(&decoded.frame, chroma.as_ref(), layout);
            if let Some(m) = metrics {
                m.send(out.clone());
            }
            match sink {
                Sink::Video(w) => {
                    w.write_frame(
                        &out,
                        decoded.pts - t_first,
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
            written += 1;
            progress(Progress {
                done: written,
                total,
            });
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = decoder.join();
    outcome.map(|()| written)
}
