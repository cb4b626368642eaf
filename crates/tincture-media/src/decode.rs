//! Sequential decoding and frame-accurate seeking by frame index.
//!
//! On open the reader reads every packet header of the video stream once
//! (no decoding) to build an index: each frame's presentation timestamp and
//! the keyframes. Frame `i` is the `i`-th frame in presentation order, so
//! seeking works on long-GOP and variable-frame-rate files alike: seek to the
//! keyframe before the frame, then decode forward to its exact timestamp.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

use ffmpeg_next::codec::packet::Packet;
use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Input;
use ffmpeg_next::media::Type;
use ffmpeg_next::util::frame::video::Video as AvFrame;
use ffmpeg_next::{Rational, codec};
use tincture_core::color::{ColorRange, Matrix};
use tincture_core::frame::{Frame, Subsampling};

use crate::convert::{frame_from_av, layout_of_pixel, matrix_of, pixel_name};
use crate::probe::{
    ColourTags, MediaInfo, StreamInfo, StreamKind, VideoInfo, ratio, subsampling_name,
};
use crate::{Error, MIN_FRAME_SIDE, Result};

/// A decoded frame and where it sits in the film.
#[derive(Clone, Debug)]
pub struct DecodedFrame {
    /// Frame index, 0-based, in presentation order.
    pub index: u64,
    /// Presentation timestamp in the video stream's time base.
    pub pts: i64,
    /// The pixels.
    pub frame: Frame,
}

/// A packet of a non-video stream, read on the way, for stream copy.
pub struct StreamPacket {
    /// Source stream index.
    pub stream: usize,
    /// The packet, timestamps in the source stream's time base.
    pub(crate) packet: Packet,
    /// The source stream's time base. FFmpeg's demuxer (5.1) leaves the
    /// packet's own `time_base` field unset, so it is recorded here.
    pub(crate) time_base: Rational,
    /// Presentation time in seconds (decode time if it has no pts).
    pub time: Option<f64>,
}

struct Index {
    /// Presentation timestamps of all frames, ascending; `None` if the stream lacks timestamps.
    pts: Option<Vec<i64>>,
    /// Keyframes in decode order: (pts, seek timestamp).
    keyframes: Vec<(i64, i64)>,
    count: u64,
}

/// Decodes a film's video stream; see the module docs.
pub struct VideoReader {
    path: PathBuf,
    input: Input,
    stream_index: usize,
    time_base: Rational,
    decoder: ffmpeg_next::decoder::Video,
    index: Index,
    info: MediaInfo,
    range: ColorRange,
    matrix: Matrix,
    subsampling: Option<Subsampling>,
    /// Nominal frame rate (0/1 when unknown), for the encoder.
    pub(crate) frame_rate: Rational,
    /// Sample aspect ratio, for the encoder.
    pub(crate) sample_aspect: Rational,
    /// Field order, for the encoder.
    pub(crate) field_order: ffi::AVFieldOrder,
    /// Index the next sequentially decoded frame will have.
    next_index: u64,
    eof_sent: bool,
    passthrough: Vec<usize>,
    queued: VecDeque<StreamPacket>,
    scratch: AvFrame,
}

fn av_err(e: ffmpeg_next::Error) -> String {
    e.to_string()
}

fn c_name(ptr: *const std::os::raw::c_char) -> String {
    if ptr.is_null() {
        "unknown".to_owned()
    } else {
        // SAFETY: FFmpeg's name functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

fn field_order_name(order: ffi::AVFieldOrder) -> &'static str {
    match order {
        ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE => "progressive",
        ffi::AVFieldOrder::AV_FIELD_TT => "tt",
        ffi::AVFieldOrder::AV_FIELD_BB => "bb",
        ffi::AVFieldOrder::AV_FIELD_TB => "tb",
        ffi::AVFieldOrder::AV_FIELD_BT => "bt",
        _ => "unknown",
    }
}

/// Whether the file starts with printable UTF-8 text (a mislabelled note, a subtitle, a list).
fn looks_like_text(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let text = match std::str::from_utf8(&head[..n]) {
        Ok(t) => t,
        // A multi-byte character cut at the end of the buffer.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || c.is_whitespace())
}

fn check_readable(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) => Err(Error::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Ok(m) if m.is_dir() => Err(Error::Unreadable {
            path: path.to_owned(),
            reason: "it is a folder, not a file".into(),
        }),
        Ok(m) if m.len() == 0 => Err(Error::Empty {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
    }
}

/// Demuxers that open further files or addresses named inside the file
/// (playlists, lists of files, stream descriptions): a film given to
/// Tincture is read, never followed somewhere else.
const REFUSED_FORMATS: &[&str] = &[
    "hls",
    "applehttp",
    "concat",
    "dash",
    "imf",
    "webm_dash_manifest",
    "sdp",
    "rtsp",
    "rtp",
];

/// How many bytes of a file are probed before it is opened.
const PROBE_BYTES: u64 = 1 << 20;

/// `Some(name)` when FFmpeg's name for a format (a comma-separated list of
/// aliases, such as `mov,mp4,m4a`) names a refused demuxer.
fn refused_format(name: &str) -> Option<&str> {
    name.split(',')
        .find(|n| REFUSED_FORMATS.contains(&n.trim()))
}

/// The demuxer FFmpeg would pick for the file's first bytes, probed without
/// opening it as media.
fn probed_format_name(path: &Path, url: &CStr) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(PROBE_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let size = head.len();
    // FFmpeg's probes may read this far past the end of the data.
    head.resize(size + ffi::AVPROBE_PADDING_SIZE as usize, 0);
    let probe = ffi::AVProbeData {
        filename: url.as_ptr(),
        buf: head.as_mut_ptr(),
        buf_size: i32::try_from(size).ok()?,
        mime_type: std::ptr::null(),
    };
    // SAFETY: `probe` points at a padded buffer and a NUL-terminated name
    // that outlive the call; the result is a static format description.
    let format = unsafe { ffi::av_probe_input_format(&raw const probe, 1) };
    if format.is_null() {
        return None;
    }
    // SAFETY: a registered demuxer's name is a static C string.
    Some(c_name(unsafe { (*format).name }))
}

/// Opens a media file for reading through FFmpeg, local files only: the
/// path is given as a `file:` URL with the protocol whitelist set to
/// `file` (so nothing the file names is fetched from the network, nor
/// through other protocols), and playlist-style demuxers (HLS, concat...)
/// are refused before they open anything and again after opening.
///
/// # Errors
/// [`Error::Unreadable`] for a name that is not valid UTF-8 (FFmpeg takes
/// text), [`Error::Refused`] for a playlist, [`Error::NotMedia`] when
/// FFmpeg cannot open it.
pub(crate) fn open_input(path: &Path) -> Result<Input> {
    crate::init();
    let Some(text) = path.to_str() else {
        return Err(Error::Unreadable {
            path: path.to_owned(),
            reason: "its name is not valid UTF-8, which FFmpeg cannot take; rename the file".into(),
        });
    };
    let url = format!("file:{text}");
    let refuse = |kind: &str| Error::Refused {
        path: path.to_owned(),
        kind: kind.to_owned(),
        reason: "a playlist or list of other files; Tincture reads only the file it is given"
            .into(),
    };
    let c_url = std::ffi::CString::new(url.as_str()).map_err(|_| Error::Unreadable {
        path: path.to_owned(),
        reason: "its name holds a NUL character; rename the file".into(),
    })?;
    if let Some(name) = probed_format_name(path, &c_url)
        && let Some(kind) = refused_format(&name)
    {
        return Err(refuse(kind));
    }
    let mut options = ffmpeg_next::Dictionary::new();
    options.set("protocol_whitelist", "file");
    let input =
        ffmpeg_next::format::input_with_dictionary(&url, options).map_err(|e| Error::NotMedia {
            path: path.to_owned(),
            reason: av_err(e),
        })?;
    if let Some(kind) = refused_format(input.format().name()) {
        return Err(refuse(kind));
    }
    Ok(input)
}

impl VideoReader {
    /// Opens a film for reading and indexes its video stream.
    ///
    /// # Errors
    /// See [`Error`]: unreadable, empty or non-media files, files without
    /// video, unsupported pixel formats and frames smaller than
    /// [`MIN_FRAME_SIDE`].
    pub fn open(path: &Path) -> Result<Self> {
        crate::init();
        check_readable(path)?;
        let not_media = |reason: String| Error::NotMedia {
            path: path.to_owned(),
            reason,
        };
        let mut input = open_input(path).map_err(|e| match e {
            Error::NotMedia { .. } if looks_like_text(path) => {
                not_media("it is a text file".into())
            }
            e => e,
        })?;
        let container = input.format().name().to_owned();
        if container == "tty" {
            return Err(not_media("it looks like a text file".into()));
        }
        let Some(stream) = input.streams().best(Type::Video) else {
            let streams: Vec<String> = input
                .streams()
                .map(|s| format!("{:?}", s.parameters().medium()).to_lowercase())
                .collect();
            let streams = if streams.is_empty() {
                "no streams".to_owned()
            } else {
                streams.join(", ")
            };
            return Err(Error::NoVideo {
                path: path.to_owned(),
                streams,
            });
        };
        let stream_index = stream.index();
        let time_base = stream.time_base();
        let params = stream.parameters();
        // SAFETY: `params` wraps the stream's valid AVCodecParameters.
        let par = unsafe { &*params.as_ptr() };
        let codec_name = c_name(unsafe { ffi::avcodec_get_name(par.codec_id) });
        let mut ctx = codec::context::Context::from_parameters(params.clone())
            .map_err(|e| not_media(av_err(e)))?;
        ctx.set_threading(codec::threading::Config::kind(
            codec::threading::Type::Frame,
        ));
        let decoder = ctx.decoder().video().map_err(|_| Error::NoDecoder {
            path: path.to_owned(),
            codec: codec_name.clone(),
        })?;
        let pixel = decoder.format();
        let Some((bit_depth, subsampling, jpeg_range)) = layout_of_pixel(pixel) else {
            return Err(Error::UnsupportedPixelFormat {
                path: path.to_owned(),
                format: pixel_name(pixel),
            });
        };
        let (width, height) = (decoder.width(), decoder.height());
        if width < MIN_FRAME_SIDE || height < MIN_FRAME_SIDE {
            return Err(Error::TooSmall {
                path: path.to_owned(),
                width,
                height,
                min: MIN_FRAME_SIDE,
            });
        }
        let full = jpeg_range || par.color_range == ffi::AVColorRange::AVCOL_RANGE_JPEG;
        let range = if full {
            ColorRange::Full
        } else {
            ColorRange::Limited
        };
        let matrix =
            matrix_of(decoder.color_space()).unwrap_or(Matrix::default_for_height(height as usize));
        let colour = ColourTags {
            range: if full {
                "pc".into()
            } else {
                c_name(unsafe { ffi::av_color_range_name(par.color_range) })
            },
            primaries: c_name(unsafe { ffi::av_color_primaries_name(par.color_primaries) }),
            transfer: c_name(unsafe { ffi::av_color_transfer_name(par.color_trc) }),
            matrix: c_name(unsafe { ffi::av_color_space_name(par.color_space) }),
            raw: [
                par.color_range as i32,
                par.color_primaries as i32,
                par.color_trc as i32,
                par.color_space as i32,
            ],
        };
        // The container's aspect ratio wins over the codec's, as in FFmpeg's own guess;
        // FFV1 in Matroska, for one, states it only in the container.
        // SAFETY: the stream pointer is valid while `input` is open.
        let stream_sar = unsafe { (*stream.as_ptr()).sample_aspect_ratio };
        let sar = [stream_sar, par.sample_aspect_ratio]
            .into_iter()
            .find(|r| r.num > 0 && r.den > 0)
            .map_or(Rational::new(1, 1), Rational::from)
            .reduce();
        let dar = display_aspect(width, height, sar).ok_or_else(|| Error::Absurd {
            path: path.to_owned(),
            field: "the sample aspect ratio".into(),
            value: format!("{}:{}", sar.numerator(), sar.denominator()),
            reason: format!(
                "no film's pixels are that shape (Tincture accepts 1:{MAX_SAR} to {MAX_SAR}:1); \
                 the tag is damaged: set it again, say with ffmpeg's -aspect or setsar"
            ),
        })?;
        let avg_rate = stream.avg_frame_rate();
        let rate = if avg_rate.numerator() > 0 {
            avg_rate
        } else {
            stream.rate()
        };
        let container_frames = u64::try_from(stream.frames()).ok().filter(|&n| n > 0);
        let field_order = field_order_name(par.field_order).to_owned();

        let mut timecode = stream.metadata().get("timecode").map(str::to_owned);
        timecode = timecode.or_else(|| input.metadata().get("timecode").map(str::to_owned));
        let mut streams = Vec::new();
        for s in input.streams() {
            if s.index() == stream_index {
                continue;
            }
            let p = s.parameters();
            // SAFETY: valid codec parameters of an open stream.
            let sp = unsafe { &*p.as_ptr() };
            let kind = StreamKind::of(p.medium());
            if timecode.is_none() {
                timecode = s.metadata().get("timecode").map(str::to_owned);
            }
            let tb = s.time_base();
            streams.push(StreamInfo {
                index: s.index(),
                kind,
                codec: c_name(unsafe { ffi::avcodec_get_name(sp.codec_id) }),
                language: s.metadata().get("language").map(str::to_owned),
                sample_rate: (kind == StreamKind::Audio).then_some(sp.sample_rate as u32),
                channels: (kind == StreamKind::Audio).then_some(sp.ch_layout.nb_channels as u16),
                start_time: (s.start_time() != ffi::AV_NOPTS_VALUE)
                    .then(|| s.start_time() as f64 * f64::from(tb)),
                time_base: ratio(tb),
            });
        }
        let tags = input
            .metadata()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let duration =
            (input.duration() > 0).then(|| input.duration() as f64 / f64::from(ffi::AV_TIME_BASE));

        let index = build_index(&mut input, stream_index, path)?;
        let variable = index.pts.as_ref().is_some_and(|pts| {
            // In 128 bits: timestamps from a damaged file may lie anywhere.
            let mut deltas = pts.windows(2).map(|w| i128::from(w[1]) - i128::from(w[0]));
            let first = deltas.next();
            first.is_some_and(|d0| deltas.any(|d| (d - d0).abs() > 1))
        });
        let info = MediaInfo {
            path: path.to_owned(),
            container,
            duration,
            video: VideoInfo {
                index: stream_index,
                codec: codec_name,
                width,
                height,
                sample_aspect_ratio: format!("{}:{}", sar.numerator(), sar.denominator()),
                display_aspect_ratio: format!("{}:{}", dar.numerator(), dar.denominator()),
                frame_rate: f64::from(rate),
                frame_rate_exact: ratio(rate),
                variable_frame_rate: variable,
                time_base: ratio(time_base),
                frame_count: index.count,
                container_frame_count: container_frames,
                pixel_format: pixel_name(pixel),
                bit_depth,
                chroma: subsampling_name(subsampling),
                colour,
                field_order,
                keyframes: index.keyframes.len() as u64,
                timecode,
            },
            streams,
            tags,
        };
        let mut reader = Self {
            path: path.to_owned(),
            input,
            stream_index,
            time_base,
            decoder,
            index,
            info,
            range,
            matrix,
            subsampling,
            frame_rate: rate,
            sample_aspect: sar,
            field_order: par.field_order,
            next_index: 0,
            eof_sent: false,
            passthrough: Vec::new(),
            queued: VecDeque::new(),
            scratch: AvFrame::empty(),
        };
        reader.rewind()?;
        Ok(reader)
    }

    /// What the file holds.
    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of frames, counted.
    pub fn frame_count(&self) -> u64 {
        self.index.count
    }

    /// The video stream's time base.
    pub fn time_base(&self) -> Rational {
        self.time_base
    }

    /// Presentation timestamp of frame `index`, if the stream has timestamps.
    pub fn pts_of(&self, index: u64) -> Option<i64> {
        self.index.pts.as_ref()?.get(index as usize).copied()
    }

    /// Duration of frame `index` in the stream's time base: the gap to the
    /// next frame, or the previous gap for the last frame.
    pub fn duration_of(&self, index: u64) -> i64 {
        let Some(pts) = &self.index.pts else { return 1 };
        let i = index as usize;
        match (pts.get(i), pts.get(i.saturating_add(1))) {
            (Some(a), Some(b)) => b.saturating_sub(*a).max(1),
            _ if i >= 1 && i < pts.len() => pts[i].saturating_sub(pts[i - 1]).max(1),
            _ => 1,
        }
    }

    /// The most frames a seek may have to decode: the longest run from a
    /// keyframe to the frame before the next one (the whole film when it
    /// has no timestamps to seek by). 1 for an all-intra film.
    pub fn longest_keyframe_run(&self) -> u64 {
        let Some(all) = &self.index.pts else {
            return self.index.count;
        };
        let mut keys: Vec<u64> = self
            .index
            .keyframes
            .iter()
            .filter_map(|(pts, _)| all.binary_search(pts).ok().map(|i| i as u64))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.first() != Some(&0) {
            // Frames before the first keyframe decode only from the start.
            keys.insert(0, 0);
        }
        keys.push(self.index.count);
        keys.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(1)
    }

    /// The matrix the chroma is interpreted with (tagged, or assumed by frame height).
    pub fn matrix(&self) -> Matrix {
        self.matrix
    }

    /// The chroma layout; `None` for gray.
    pub fn subsampling(&self) -> Option<Subsampling> {
        self.subsampling
    }

    /// The code-value range.
    pub fn range(&self) -> ColorRange {
        self.range
    }

    /// Asks the reader to keep the packets of these (non-video) streams as it
    /// reads, for [`take_packets`](Self::take_packets).
    pub fn keep_packets_of(&mut self, streams: Vec<usize>) {
        self.passthrough = streams;
    }

    /// Codec parameters and time base of a source stream, for stream copy.
    pub(crate) fn stream_parameters(&self, stream: usize) -> Option<(codec::Parameters, Rational)> {
        let s = self.input.stream(stream)?;
        Some((s.parameters(), s.time_base()))
    }

    /// Packets of kept streams read so far.
    pub fn take_packets(&mut self) -> Vec<StreamPacket> {
        self.queued.drain(..).collect()
    }

    /// Reads on past the last decoded frame, keeping packets of kept streams
    /// until one starts at or after `until` seconds, or the file ends.
    ///
    /// # Errors
    /// On a read error other than the end of the file.
    pub fn read_packets_until(&mut self, until: f64) -> Result<()> {
        loop {
            let mut packet = Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        continue;
                    }
                    if let Some(p) = self.keep(packet) {
                        let late = p.time.is_some_and(|t| t >= until);
                        if !late {
                            self.queued.push_back(p);
                        } else {
                            return Ok(());
                        }
                    }
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(()),
                Err(e) => return Err(self.decode_error(self.next_index, e)),
            }
        }
    }

    fn keep(&self, packet: Packet) -> Option<StreamPacket> {
        let stream = packet.stream();
        if !self.passthrough.contains(&stream) {
            return None;
        }
        let tb = self.input.stream(stream)?.time_base();
        let time = packet
            .pts()
            .or(packet.dts())
            .map(|t| t as f64 * f64::from(tb));
        Some(StreamPacket {
            stream,
            packet,
            time_base: tb,
            time,
        })
    }

    fn decode_error(&self, frame: u64, e: ffmpeg_next::Error) -> Error {
        Error::Decode {
            path: self.path.clone(),
            frame,
            reason: av_err(e),
        }
    }

    fn rewind(&mut self) -> Result<()> {
        self.seek_to_timestamp(i64::MIN)?;
        self.next_index = 0;
        Ok(())
    }

    fn seek_to_timestamp(&mut self, ts: i64) -> Result<()> {
        // SAFETY: the context is open; seeking to the start or to an indexed keyframe.
        let ret = unsafe {
            if ts == i64::MIN {
                ffi::avformat_seek_file(
                    self.input.as_mut_ptr(),
                    -1,
                    i64::MIN,
                    0,
                    0,
                    ffi::AVSEEK_FLAG_BACKWARD,
                )
            } else {
                ffi::av_seek_frame(
                    self.input.as_mut_ptr(),
                    self.stream_index as i32,
                    ts,
                    ffi::AVSEEK_FLAG_BACKWARD,
                )
            }
        };
        if ret < 0 {
            return Err(self.decode_error(self.next_index, ffmpeg_next::Error::from(ret)));
        }
        self.decoder.flush();
        self.eof_sent = false;
        self.queued.clear();
        Ok(())
    }

    /// Decodes the next frame in presentation order; `None` at the end.
    fn decode_raw(&mut self) -> Result<Option<i64>> {
        loop {
            match self.decoder.receive_frame(&mut self.scratch) {
                Ok(()) => {
                    return Ok(Some(
                        self.scratch
                            .timestamp()
                            .or(self.scratch.pts())
                            .unwrap_or(i64::MIN),
                    ));
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(ffmpeg_next::Error::Other { errno }) if errno == ffi::EAGAIN => {}
                Err(e) => return Err(self.decode_error(self.next_index, e)),
            }
            if self.eof_sent {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream_index => {
                    if let Err(e) = self.decoder.send_packet(&packet) {
                        if !matches!(e, ffmpeg_next::Error::InvalidData) {
                            return Err(self.decode_error(self.next_index, e));
                        }
                        tracing::warn!(
                            "{}: frame {}: damaged packet skipped",
                            self.path.display(),
                            self.next_index
                        );
                    }
                }
                Ok(()) => {
                    if let Some(p) = self.keep(packet) {
                        self.queued.push_back(p);
                    }
                }
                Err(ffmpeg_next::Error::Eof) => {
                    self.decoder
                        .send_eof()
                        .map_err(|e| self.decode_error(self.next_index, e))?;
                    self.eof_sent = true;
                }
                Err(e) => return Err(self.decode_error(self.next_index, e)),
            }
        }
    }

    fn frame_index_of(&self, pts: i64) -> u64 {
        match &self.index.pts {
            Some(all) => all
                .binary_search(&pts)
                .map_or(self.next_index, |i| i as u64),
            None => self.next_index,
        }
    }

    fn current_frame(&self, index: u64) -> Result<Frame> {
        let (w, h) = (self.scratch.width(), self.scratch.height());
        let v = &self.info.video;
        if (w, h) != (v.width, v.height) {
            return Err(Error::Absurd {
                path: self.path.clone(),
                field: format!("the size of frame {index}"),
                value: format!("{w}x{h}"),
                reason: format!(
                    "the film's frames are {}x{}, and Tincture works on films of one frame size; \
                     split the film where the size changes, or scale it to one size first",
                    v.width, v.height
                ),
            });
        }
        frame_from_av(&self.scratch, self.range, self.matrix).ok_or_else(|| {
            Error::UnsupportedPixelFormat {
                path: self.path.clone(),
                format: format!(
                    "{} (format changed at frame {index})",
                    pixel_name(self.scratch.format())
                ),
            }
        })
    }

    /// Decodes the next frame in presentation order; `None` after the last.
    ///
    /// # Errors
    /// When a frame cannot be decoded; the error names the frame.
    pub fn next_frame(&mut self) -> Result<Option<DecodedFrame>> {
        let Some(pts) = self.decode_raw()? else {
            return Ok(None);
        };
        let index = self.frame_index_of(pts);
        self.next_index = index + 1;
        Ok(Some(DecodedFrame {
            index,
            pts,
            frame: self.current_frame(index)?,
        }))
    }

    /// Returns frame `index` exactly, seeking if needed. Reading on with
    /// [`next_frame`](Self::next_frame) continues from there.
    ///
    /// # Errors
    /// For an index past the end, or when the frame cannot be decoded.
    pub fn seek(&mut self, index: u64) -> Result<DecodedFrame> {
        if index >= self.index.count {
            return Err(Error::FrameOutOfRange {
                path: self.path.clone(),
                frame: index,
                count: self.index.count,
            });
        }
        if index == self.next_index
            && let Some(f) = self.next_frame()?
            && f.index == index
        {
            return Ok(f);
        }
        let Some(target) = self.pts_of(index) else {
            // No timestamps: decode from the start.
            self.rewind()?;
            return self.decode_until(index, |i, _| i >= index);
        };
        let keys: Vec<i64> = self
            .index
            .keyframes
            .iter()
            .filter(|(pts, _)| *pts <= target)
            .map(|&(_, seek)| seek)
            .collect();
        // Try the nearest keyframe first, then earlier ones (open GOPs), then the start.
        for seek_ts in keys.iter().rev().take(3).copied().map(Some).chain([None]) {
            match seek_ts {
                Some(ts) => self.seek_to_timestamp(ts)?,
                None => self.rewind()?,
            }
            if let Ok(f) = self.decode_until(index, |_, pts| pts >= target)
                && f.pts == target
            {
                return Ok(f);
            }
        }
        Err(Error::Decode {
            path: self.path.clone(),
            frame: index,
            reason: "seeking did not reach the frame".into(),
        })
    }

    fn decode_until(
        &mut self,
        index: u64,
        done: impl Fn(u64, i64) -> bool,
    ) -> Result<DecodedFrame> {
        loop {
            let Some(pts) = self.decode_raw()? else {
                return Err(Error::Decode {
                    path: self.path.clone(),
                    frame: index,
                    reason: "the file ended before it".into(),
                });
            };
            let idx = self.frame_index_of(pts);
            self.next_index = idx + 1;
            if done(idx, pts) {
                return Ok(DecodedFrame {
                    index: idx,
                    pts,
                    frame: self.current_frame(idx)?,
                });
            }
        }
    }
}

/// The widest (or tallest) pixel shape accepted: anamorphic film is 2:1,
/// so this leaves room for any real film and refuses damaged tags.
const MAX_SAR: i64 = 100;

/// The display aspect ratio of a `width` x `height` picture with sample
/// aspect `sar`, reduced; `None` when `sar` lies outside 1:[`MAX_SAR`] to
/// [`MAX_SAR`]:1.
fn display_aspect(width: u32, height: u32, sar: Rational) -> Option<Rational> {
    let (num, den) = (i64::from(sar.numerator()), i64::from(sar.denominator()));
    if num <= 0 || den <= 0 || num > den * MAX_SAR || den > num * MAX_SAR {
        return None;
    }
    let (mut a, mut b) = (i64::from(width) * num, i64::from(height) * den);
    let g = gcd(a, b);
    if g > 0 {
        (a, b) = (a / g, b / g);
    }
    // Both fit in i64 (sides and SAR terms are 32-bit); after reduction they
    // usually fit FFmpeg's 32-bit rationals too, else the nearest one is used.
    match (i32::try_from(a), i32::try_from(b)) {
        (Ok(a), Ok(b)) => Some(Rational::new(a, b)),
        _ => Some(Rational::from(a as f64 / b as f64)),
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

fn build_index(input: &mut Input, stream_index: usize, path: &Path) -> Result<Index> {
    let mut pts_list = Vec::new();
    let mut all_pts = true;
    let mut keyframes = Vec::new();
    let mut count = 0u64;
    loop {
        let mut packet = Packet::empty();
        match packet.read(input) {
            Ok(()) => {
                if packet.stream() != stream_index {
                    continue;
                }
                count += 1;
                match packet.pts() {
                    Some(p) => pts_list.push(p),
                    None => all_pts = false,
                }
                if packet.is_key()
                    && let Some(p) = packet.pts()
                {
                    keyframes.push((p, packet.dts().unwrap_or(p)));
                }
            }
            Err(ffmpeg_next::Error::Eof) => break,
            Err(e) => {
                return Err(Error::Decode {
                    path: path.to_owned(),
                    frame: count,
                    reason: format!("reading the file failed: {e}"),
                });
            }
        }
    }
    if count == 0 {
        return Err(Error::NotMedia {
            path: path.to_owned(),
            reason: "the video stream holds no frames".into(),
        });
    }
    pts_list.sort_unstable();
    pts_list.dedup();
    let pts = (all_pts && pts_list.len() as u64 == count).then_some(pts_list);
    Ok(Index {
        pts,
        keyframes,
        count,
    })
}
