//! Joining the chunks of a farm render into one file by stream copy.
//!
//! Each chunk is a video file Tincture rendered from a frame range of the
//! same source (`render --frames A-B`), video only as far as the join is
//! concerned: its packets are copied in order, with the timestamps a whole
//! render gives them (each frame's own timestamp in the source, shifted so
//! the joined range starts at 0), so nothing is re-encoded. The audio and
//! subtitle streams are copied once, from the source, for the whole range,
//! as a whole render copies them; the chunks' own copies are ignored.
//!
//! Before anything is written every chunk is checked: its video must be
//! the first chunk's (codec, size, pixel format, codec header), and while
//! copying, each chunk must start on a keyframe, hold exactly its frames and
//! carry each frame's timestamp; otherwise the join fails naming the chunk.

use std::path::{Path, PathBuf};

use ffmpeg_next::codec::packet::Packet;
use ffmpeg_next::format::context::Input;
use ffmpeg_next::media::Type;
use ffmpeg_next::{Dictionary, Rational, codec, encoder, ffi, format};

use crate::encode::write_error;
use crate::{Container, Error, Result, StreamKind, VideoReader};

/// A chunk to join: a video file and the source frames it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkFile {
    /// The chunk's file.
    pub path: PathBuf,
    /// The source frame of its first frame.
    pub first: u64,
    /// How many frames it holds.
    pub frames: u64,
}

/// What [`concat_chunks`] writes.
pub struct Concat<'a> {
    /// The source film, opened: its frame timestamps time the output, and
    /// its audio and subtitle streams are copied into it.
    pub source: &'a VideoReader,
    /// The chunks, in frame order, contiguous.
    pub chunks: &'a [ChunkFile],
    /// The output's container (the chunks').
    pub container: Container,
    /// Container-level tags of the output.
    pub metadata: Vec<(String, String)>,
    /// The output's start timecode.
    pub timecode: Option<String>,
}

fn chunk_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Chunk {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn video_of(input: &Input, path: &Path) -> Result<usize> {
    input
        .streams()
        .best(Type::Video)
        .map(|s| s.index())
        .ok_or_else(|| chunk_error(path, "it holds no video; is it a chunk of this render?"))
}

/// What must agree between chunks for their packets to form one stream.
#[derive(PartialEq, Eq)]
struct VideoSignature {
    codec: ffi::AVCodecID,
    width: i32,
    height: i32,
    format: i32,
    extradata: Vec<u8>,
}

impl VideoSignature {
    fn of(params: &codec::Parameters) -> Self {
        // SAFETY: reading plain fields of valid codec parameters; the
        // extradata pointer is valid for `extradata_size` bytes when set.
        unsafe {
            let p = &*params.as_ptr();
            let extradata = if p.extradata.is_null() || p.extradata_size <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.extradata, p.extradata_size as usize).to_vec()
            };
            Self {
                codec: p.codec_id,
                width: p.width,
                height: p.height,
                format: p.format,
                extradata,
            }
        }
    }

    /// How `self` differs from `first`, in words.
    fn difference(&self, first: &Self) -> Option<String> {
        Some(if self.codec != first.codec {
            "its video codec is not the other chunks'".to_owned()
        } else if (self.width, self.height) != (first.width, first.height) {
            format!(
                "its frames are {}x{}, the other chunks' {}x{}",
                self.width, self.height, first.width, first.height
            )
        } else if self.format != first.format {
            "its pixel format is not the other chunks'".to_owned()
        } else if self.extradata != first.extradata {
            "it was encoded with other codec settings than the other chunks".to_owned()
        } else {
            return None;
        })
    }
}

/// `v` from time base `from` to `to`, rounded as FFmpeg rescales packets.
fn rescale(v: i64, from: Rational, to: Rational) -> i64 {
    // SAFETY: a pure arithmetic function of FFmpeg's.
    unsafe { ffi::av_rescale_q(v, from.into(), to.into()) }
}

/// Reads the next video packet of `input`; `None` at the end.
fn next_video(input: &mut Input, video: usize, path: &Path) -> Result<Option<Packet>> {
    loop {
        let mut p = Packet::empty();
        match p.read(input) {
            Ok(()) if p.stream() == video => return Ok(Some(p)),
            Ok(()) => {}
            Err(ffmpeg_next::Error::Eof) => return Ok(None),
            Err(e) => {
                return Err(chunk_error(
                    path,
                    format!("cannot be read to its end ({e}); render this chunk again"),
                ));
            }
        }
    }
}

/// The chunk being copied.
struct Reading {
    chunk: usize,
    input: Input,
    video: usize,
    tb: Rational,
    read: u64,
}

/// Joins `job.chunks` into `output` (the file to write; `final_path` is the
/// name it will have, for messages) without re-encoding; returns the frames
/// written. See the module docs for what is checked.
///
/// # Errors
/// [`Error::Chunk`] naming a chunk that cannot be joined (unreadable,
/// another encoding, not starting on a keyframe, short, long, or timed
/// unlike the source's frames); [`Error::StreamNotCarried`]; [`Error::Write`]
/// when writing fails.
pub fn concat_chunks(job: &Concat<'_>, output: &Path, final_path: &Path) -> Result<u64> {
    crate::init();
    let Some(head) = job.chunks.first() else {
        return Err(Error::Output {
            path: final_path.to_owned(),
            reason: "there are no chunks to join".into(),
        });
    };
    let last_chunk = &job.chunks[job.chunks.len() - 1];
    let first = head.first;
    let last = (last_chunk.first + last_chunk.frames).saturating_sub(1);
    let source = job.source;
    let count = source.frame_count();
    if last >= count {
        return Err(chunk_error(
            &last_chunk.path,
            format!(
                "it ends at frame {last}, past the end of {} (frames 0-{})",
                source.path().display(),
                count.saturating_sub(1)
            ),
        ));
    }

    // Every chunk's video must be the first one's.
    let mut signature: Option<(VideoSignature, codec::Parameters)> = None;
    for c in job.chunks {
        let input = crate::decode::open_input(&c.path)
            .map_err(|e| chunk_error(&c.path, format!("cannot be opened ({e})")))?;
        let video = video_of(&input, &c.path)?;
        let Some(stream) = input.stream(video) else {
            return Err(chunk_error(&c.path, "it holds no video"));
        };
        let params = stream.parameters();
        let sig = VideoSignature::of(&params);
        match &signature {
            None => signature = Some((sig, params)),
            Some((s, _)) => {
                if let Some(why) = sig.difference(s) {
                    return Err(chunk_error(
                        &c.path,
                        format!("{why}; render every chunk of a job with the same settings"),
                    ));
                }
            }
        }
    }
    let Some((_, video_params)) = signature else {
        return Err(chunk_error(&head.path, "it holds no video"));
    };

    let mut octx = format::output_as(output, job.container.muxer()).map_err(|e| Error::Output {
        path: final_path.to_owned(),
        reason: e.to_string(),
    })?;
    let src_tb = source.time_base();
    let rate = source.frame_rate;
    {
        let mut ost = octx
            .add_stream(encoder::find(codec::Id::None))
            .map_err(|e| write_error(final_path, 0, e))?;
        ost.set_parameters(video_params);
        ost.set_time_base(src_tb);
        if rate.numerator() > 0 {
            ost.set_avg_frame_rate(rate);
            ost.set_rate(rate);
        }
        // SAFETY: plain fields of the stream we just added.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
            (*ost.as_mut_ptr()).sample_aspect_ratio = source.sample_aspect.into();
        }
        let mut meta = Dictionary::new();
        if let Some(tc) = &job.timecode {
            meta.set("timecode", tc);
        }
        ost.set_metadata(meta);
    }
    // The source's audio and subtitles, as a whole render carries them.
    let copied: Vec<usize> = source
        .info()
        .streams
        .iter()
        .filter(|s| matches!(s.kind, StreamKind::Audio | StreamKind::Subtitle))
        .map(|s| s.index)
        .collect();
    let mut src_stream_tb = Vec::new();
    for &index in &copied {
        let (params, tb) = source
            .stream_parameters(index)
            .ok_or_else(|| Error::Output {
                path: final_path.to_owned(),
                reason: format!("source stream {index} does not exist"),
            })?;
        // SAFETY: valid codec parameters of an open stream and an output format.
        let supported = unsafe {
            let codec_id = (*params.as_ptr()).codec_id;
            ffi::avformat_query_codec(octx.format().as_ptr(), codec_id, ffi::FF_COMPLIANCE_NORMAL)
        };
        let info = source.info().streams.iter().find(|s| s.index == index);
        if supported != 1 {
            return Err(Error::StreamNotCarried {
                path: source.path().to_owned(),
                index,
                codec: info.map_or("?", |s| s.codec.as_str()).to_owned(),
                container: job.container.muxer().to_owned(),
            });
        }
        let mut ost = octx
            .add_stream(encoder::find(codec::Id::None))
            .map_err(|e| write_error(final_path, 0, e))?;
        ost.set_parameters(params);
        ost.set_time_base(tb);
        // SAFETY: clearing the codec tag lets the muxer choose its own for the codec.
        unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
        let mut d = Dictionary::new();
        if let Some(lang) = info.and_then(|s| s.language.as_deref()) {
            d.set("language", lang);
        }
        ost.set_metadata(d);
        src_stream_tb.push(tb);
    }
    let mut meta = Dictionary::new();
    for (k, v) in &job.metadata {
        meta.set(k, v);
    }
    if let Some(tc) = &job.timecode {
        meta.set("timecode", tc);
    }
    octx.set_metadata(meta);
    octx.write_header_with(job.container.header_options())
        .map_err(|e| write_error(final_path, 0, e))?;
    let out_tb: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();

    // Timing as a render of frames `first..=last` gives it.
    let whole = first == 0 && last + 1 == count;
    let t_first = source.pts_of(first).unwrap_or(0);
    let offset_seconds = t_first as f64 * f64::from(src_tb);
    let end_seconds = (!whole).then(|| {
        source.pts_of(last).map_or(f64::INFINITY, |p| {
            p.saturating_add(source.duration_of(last)) as f64 * f64::from(src_tb)
        })
    });

    let open_chunk = |chunk: usize| -> Result<Reading> {
        let path = &job.chunks[chunk].path;
        let input = crate::decode::open_input(path)
            .map_err(|e| chunk_error(path, format!("cannot be opened ({e})")))?;
        let video = video_of(&input, path)?;
        let tb = input
            .stream(video)
            .map_or(Rational::new(1, 1000), |s| s.time_base());
        Ok(Reading {
            chunk,
            input,
            video,
            tb,
            read: 0,
        })
    };
    // The next frame of the joined video: (packet in source time, frame).
    let next_frame = |reading: &mut Option<Reading>| -> Result<Option<(Packet, u64)>> {
        loop {
            let Some(r) = reading.as_mut() else {
                return Ok(None);
            };
            let c = &job.chunks[r.chunk];
            let Some(mut p) = next_video(&mut r.input, r.video, &c.path)? else {
                if r.read != c.frames {
                    return Err(chunk_error(
                        &c.path,
                        format!(
                            "it holds {} frames where frames {}-{} need {}: it was cut short; render it again",
                            r.read,
                            c.first,
                            c.first + c.frames - 1,
                            c.frames
                        ),
                    ));
                }
                let next = r.chunk + 1;
                *reading = if next < job.chunks.len() {
                    Some(open_chunk(next)?)
                } else {
                    None
                };
                continue;
            };
            let frame = c.first + r.read;
            if r.read >= c.frames {
                return Err(chunk_error(
                    &c.path,
                    format!(
                        "it holds more than the {} frames of {}-{}; is it a chunk of this job?",
                        c.frames,
                        c.first,
                        c.first + c.frames - 1
                    ),
                ));
            }
            if r.read == 0 && !p.is_key() {
                return Err(chunk_error(
                    &c.path,
                    "it does not start on a keyframe, so it cannot be joined without re-encoding; render it as ffv1 or prores",
                ));
            }
            // The chunk times its frames from its own first frame.
            let src_pts = source.pts_of(frame).unwrap_or(frame as i64);
            let due = rescale(
                src_pts - source.pts_of(c.first).unwrap_or(c.first as i64),
                src_tb,
                r.tb,
            );
            if p.pts() != Some(due) {
                return Err(chunk_error(
                    &c.path,
                    format!(
                        "its frame {} (source frame {frame}) has timestamp {} where {due} was due: its frames are not frames {}-{} of {}",
                        r.read,
                        p.pts().map_or("none".to_owned(), |t| t.to_string()),
                        c.first,
                        c.first + c.frames - 1,
                        source.path().display()
                    ),
                ));
            }
            r.read += 1;
            p.set_pts(Some(src_pts - t_first));
            p.set_dts(Some(src_pts - t_first));
            p.set_duration(source.duration_of(frame));
            return Ok(Some((p, frame)));
        }
    };

    let mut src_in = crate::decode::open_input(source.path())?;
    let shift_of: Vec<i64> = src_stream_tb
        .iter()
        .map(|tb| (offset_seconds / f64::from(*tb)).round() as i64)
        .collect();
    // The next packet of a copied stream inside the range: (packet, output stream).
    let next_copied = |input: &mut Input| -> Result<Option<(Packet, usize)>> {
        if copied.is_empty() {
            return Ok(None);
        }
        loop {
            let mut p = Packet::empty();
            match p.read(input) {
                Ok(()) => {}
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(e) => {
                    return Err(Error::Decode {
                        path: source.path().to_owned(),
                        frame: 0,
                        reason: format!("reading the streams to copy: {e}"),
                    });
                }
            }
            let Some(k) = copied.iter().position(|&s| s == p.stream()) else {
                continue;
            };
            let tb = src_stream_tb[k];
            let t = p.pts().or(p.dts()).map(|t| t as f64 * f64::from(tb));
            if let (Some(t), Some(end)) = (t, end_seconds)
                && t >= end + 10.0
            {
                return Ok(None);
            }
            let inside = whole
                || t.is_some_and(|t| t >= offset_seconds && end_seconds.is_none_or(|e| t < e));
            if !inside {
                continue;
            }
            p.set_pts(p.pts().map(|t| t - shift_of[k]));
            p.set_dts(p.dts().map(|t| t - shift_of[k]));
            return Ok(Some((p, k + 1)));
        }
    };

    let mut frames = 0u64;
    let mut write = |mut p: Packet, out: usize, in_tb: Rational, frames: u64| -> Result<()> {
        p.rescale_ts(in_tb, out_tb[out]);
        p.set_position(-1);
        p.set_stream(out);
        p.write_interleaved(&mut octx)
            .map_err(|e| write_error(final_path, first + frames.saturating_sub(1), e))
    };
    let seconds = |p: &Packet, tb: Rational| p.dts().or(p.pts()).map(|t| t as f64 * f64::from(tb));
    let mut reading = Some(open_chunk(0)?);
    let mut video = next_frame(&mut reading)?;
    let mut other = next_copied(&mut src_in)?;
    loop {
        let take_video = match (&video, &other) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((v, _)), Some((o, k))) => {
                let tv = seconds(v, src_tb).unwrap_or(f64::NEG_INFINITY);
                tv <= seconds(o, src_stream_tb[k - 1]).unwrap_or(f64::NEG_INFINITY)
            }
        };
        if take_video {
            if let Some((p, _)) = video.take() {
                frames += 1;
                write(p, 0, src_tb, frames)?;
            }
            video = next_frame(&mut reading)?;
        } else {
            if let Some((p, k)) = other.take() {
                write(p, k, src_stream_tb[k - 1], frames)?;
            }
            other = next_copied(&mut src_in)?;
        }
    }
    // The closure's borrow of the output ends with its last use above.
    octx.write_trailer()
        .map_err(|e| write_error(final_path, last, e))?;
    Ok(frames)
}
