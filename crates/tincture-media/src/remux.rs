//! Joining a resumed export by stream copy: the partial file an earlier
//! export left (video and copied streams) and the video-only segment
//! rendered after it become one file, and the copied streams (audio,
//! subtitles) are continued from the source where the partial file's end,
//! so nothing is doubled or lost at the join.
//!
//! Both segments are written with the same timing origin (the first frame
//! of the export), so their timestamps are copied as they are.

use std::path::{Path, PathBuf};

use ffmpeg_next::codec::packet::Packet;
use ffmpeg_next::format::context::{Input, Output};
use ffmpeg_next::media::Type;
use ffmpeg_next::{Dictionary, Rational, codec, encoder, ffi, format};

use crate::encode::write_error;
use crate::{Container, Error, Result};

/// Where the copied streams continue after the partial file: the source
/// and the window of it the export covers.
#[derive(Clone, Debug)]
pub struct StreamTail {
    /// The source film.
    pub source: PathBuf,
    /// Source indices of the copied streams, in output order (output
    /// stream `k + 1` copies `streams[k]`; stream 0 is the video).
    pub streams: Vec<usize>,
    /// Source time, in seconds, of the export's first frame: copied packets
    /// are shifted this much earlier.
    pub offset_seconds: f64,
    /// Copy only packets at or after this source time (a frame range); `None`
    /// copies from the start.
    pub start: Option<f64>,
    /// Copy only packets before this source time; `None` copies to the end.
    pub end: Option<f64>,
}

/// Seconds of copied streams read again before the partial file's end, so
/// the join has no gap after a seek that lands late.
const SEEK_MARGIN: f64 = 2.0;

fn open(path: &Path) -> Result<Input> {
    crate::decode::open_input(path)
}

fn video_index(input: &Input, path: &Path) -> Result<usize> {
    input
        .streams()
        .best(Type::Video)
        .map(|s| s.index())
        .ok_or_else(|| Error::NoVideo {
            path: path.to_owned(),
            streams: "no video".into(),
        })
}

/// Tags worth carrying: the muxer writes its own encoder and duration.
fn carried(meta: ffmpeg_next::DictionaryRef<'_>) -> Dictionary<'static> {
    let mut d = Dictionary::new();
    for (k, v) in meta.iter() {
        if !k.eq_ignore_ascii_case("encoder") && !k.eq_ignore_ascii_case("duration") {
            d.set(k, v);
        }
    }
    d
}

/// The packet's time in seconds (its decode time, else its presentation time).
fn seconds(p: &Packet, tb: Rational) -> Option<f64> {
    p.dts().or(p.pts()).map(|t| t as f64 * f64::from(tb))
}

/// Counts the video packets (frames) of a file, reading on until the file
/// ends or stops making sense, so a file cut short by a full disk is
/// counted up to its last whole frame.
///
/// # Errors
/// When the file cannot be opened or has no video.
pub fn count_frames(path: &Path) -> Result<u64> {
    let mut input = open(path)?;
    let video = video_index(&input, path)?;
    let mut count = 0;
    loop {
        let mut packet = Packet::empty();
        match packet.read(&mut input) {
            Ok(()) if packet.stream() == video => count += 1,
            Ok(()) => {}
            Err(_) => return Ok(count),
        }
    }
}

struct Joiner {
    path: PathBuf,
    octx: Output,
    out_tb: Vec<Rational>,
    frames: u64,
}

impl Joiner {
    fn write(&mut self, mut packet: Packet, stream: usize, in_tb: Rational) -> Result<()> {
        packet.rescale_ts(in_tb, self.out_tb[stream]);
        packet.set_position(-1);
        packet.set_stream(stream);
        if stream == 0 {
            self.frames += 1;
        }
        packet
            .write_interleaved(&mut self.octx)
            .map_err(|e| write_error(&self.path, self.frames.saturating_sub(1), e))
    }
}

/// Joins `head` (the partial file of a stopped export, possibly cut short)
/// and `tail` (the video rendered after it) into `output`, continuing the
/// copied streams from `streams.source` after the last packet `head` holds.
/// Returns the frames in `output`.
///
/// # Errors
/// When a file cannot be read or the output cannot be written
/// ([`Error::Write`], noting a full disk).
pub fn join_segments(
    head: &Path,
    tail: &Path,
    output: &Path,
    container: Container,
    streams: &StreamTail,
) -> Result<u64> {
    let mut head_in = open(head)?;
    let head_video = video_index(&head_in, head)?;
    let mut tail_in = open(tail)?;
    let tail_video = video_index(&tail_in, tail)?;
    let mut octx = format::output_as(output, container.muxer()).map_err(|e| Error::Output {
        path: output.to_owned(),
        reason: e.to_string(),
    })?;

    // Output streams as in the head: video first, then the copied streams.
    let mut order: Vec<usize> = vec![head_video];
    order.extend(
        head_in
            .streams()
            .map(|s| s.index())
            .filter(|&i| i != head_video),
    );
    let mut in_tb = vec![Rational::new(0, 1); head_in.nb_streams() as usize];
    let mut out_of = vec![0usize; in_tb.len()];
    for (out, &i) in order.iter().enumerate() {
        let Some(ist) = head_in.stream(i) else {
            continue;
        };
        in_tb[i] = ist.time_base();
        out_of[i] = out;
        let mut ost = octx
            .add_stream(encoder::find(codec::Id::None))
            .map_err(|e| write_error(output, 0, e))?;
        ost.set_parameters(ist.parameters());
        ost.set_time_base(ist.time_base());
        ost.set_avg_frame_rate(ist.avg_frame_rate());
        ost.set_rate(ist.rate());
        ost.set_metadata(carried(ist.metadata()));
        // SAFETY: plain fields of a stream we just added and of an open input stream.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
            (*ost.as_mut_ptr()).sample_aspect_ratio = (*ist.as_ptr()).sample_aspect_ratio;
            (*ost.as_mut_ptr()).disposition = (*ist.as_ptr()).disposition;
        }
    }
    octx.set_metadata(carried(head_in.metadata()));
    octx.write_header_with(container.header_options())
        .map_err(|e| write_error(output, 0, e))?;
    let out_tb: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
    let mut joiner = Joiner {
        path: output.to_owned(),
        octx,
        out_tb,
        frames: 0,
    };

    // The head, up to its last readable packet; the last timestamp of each
    // copied stream marks where the source takes over.
    let mut last: Vec<Option<i64>> = vec![None; order.len()];
    loop {
        let mut packet = Packet::empty();
        if packet.read(&mut head_in).is_err() {
            break;
        }
        let i = packet.stream();
        if i >= out_of.len() {
            continue;
        }
        let out = out_of[i];
        let mut rescaled = packet.clone();
        rescaled.rescale_ts(in_tb[i], joiner.out_tb[out]);
        if let Some(t) = rescaled.pts().or(rescaled.dts()) {
            last[out] = Some(last[out].map_or(t, |l| l.max(t)));
        }
        joiner.write(packet, out, in_tb[i])?;
    }
    drop(head_in);
    let out_tb = joiner.out_tb.clone();

    let mut source = open(&streams.source)?;
    let src_tb: Vec<Rational> = source.streams().map(|s| s.time_base()).collect();
    // Seek the source a little before the earliest point a copied stream resumes.
    let resume_at = streams
        .streams
        .iter()
        .enumerate()
        .map(|(k, _)| {
            let out = k + 1;
            match (last.get(out).copied().flatten(), out_tb.get(out)) {
                (Some(t), Some(&tb)) => t as f64 * f64::from(tb) + streams.offset_seconds,
                _ => streams.start.unwrap_or(0.0),
            }
        })
        .fold(f64::INFINITY, f64::min)
        - SEEK_MARGIN;
    if resume_at.is_finite() && resume_at > 0.0 {
        let ts = (resume_at * f64::from(ffi::AV_TIME_BASE)) as i64;
        if source.seek(ts, ..ts).is_err() {
            // Reading from the start is slower, and as correct.
            source = open(&streams.source)?;
        }
    }
    let stop_after = streams.end.map(|e| e + 2.0 * SEEK_MARGIN);
    let next_source = |source: &mut Input| -> Result<Option<(Packet, usize, Rational)>> {
        if streams.streams.is_empty() {
            return Ok(None);
        }
        loop {
            let mut p = Packet::empty();
            match p.read(source) {
                Ok(()) => {}
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(e) => {
                    return Err(Error::Decode {
                        path: streams.source.clone(),
                        frame: 0,
                        reason: format!("reading the streams to copy: {e}"),
                    });
                }
            }
            let i = p.stream();
            let Some(k) = streams.streams.iter().position(|&s| s == i) else {
                continue;
            };
            let tb = src_tb[i];
            let t = p.pts().or(p.dts()).map(|t| t as f64 * f64::from(tb));
            if let (Some(t), Some(stop)) = (t, stop_after)
                && t >= stop
            {
                return Ok(None);
            }
            let inside = match (streams.start, streams.end) {
                (None, None) => true,
                (start, end) => {
                    t.is_some_and(|t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e))
                }
            };
            if !inside {
                continue;
            }
            // As the render shifts them (see `VideoWriter::write_packet`).
            let shift = (streams.offset_seconds / f64::from(tb)).round() as i64;
            p.set_pts(p.pts().map(|t| t - shift));
            p.set_dts(p.dts().map(|t| t - shift));
            let out = k + 1;
            let Some(&otb) = out_tb.get(out) else {
                continue;
            };
            let mut probe = p.clone();
            probe.rescale_ts(tb, otb);
            let already = match (probe.pts().or(probe.dts()), last[out]) {
                (Some(t), Some(l)) => t <= l,
                _ => false,
            };
            if !already {
                return Ok(Some((p, out, tb)));
            }
        }
    };

    // The tail's video and the source's copied streams, merged in time order.
    let tail_tb = tail_in
        .stream(tail_video)
        .map_or(Rational::new(1, 1000), |s| s.time_base());
    let next_tail = |input: &mut Input| -> Result<Option<Packet>> {
        loop {
            let mut p = Packet::empty();
            match p.read(input) {
                Ok(()) if p.stream() == tail_video => return Ok(Some(p)),
                Ok(()) => {}
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(e) => {
                    return Err(Error::Decode {
                        path: tail.to_owned(),
                        frame: 0,
                        reason: format!("reading the resumed segment: {e}"),
                    });
                }
            }
        }
    };
    let mut video = next_tail(&mut tail_in)?;
    let mut copied = next_source(&mut source)?;
    loop {
        let take_video = match (&video, &copied) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(v), Some((c, _, ctb))) => {
                let tv = seconds(v, tail_tb).unwrap_or(f64::NEG_INFINITY);
                // Both are already in output time.
                tv <= seconds(c, *ctb).unwrap_or(f64::NEG_INFINITY)
            }
        };
        if take_video {
            if let Some(v) = video.take() {
                joiner.write(v, 0, tail_tb)?;
            }
            video = next_tail(&mut tail_in)?;
        } else {
            if let Some((c, out, tb)) = copied.take() {
                joiner.write(c, out, tb)?;
            }
            copied = next_source(&mut source)?;
        }
    }
    joiner
        .octx
        .write_trailer()
        .map_err(|e| write_error(output, joiner.frames.saturating_sub(1), e))?;
    Ok(joiner.frames)
}
