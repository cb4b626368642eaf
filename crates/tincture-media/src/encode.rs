//! Encoding: archival and delivery video files with stream copy, and image
//! sequences.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ffmpeg_next::codec::packet::Packet;
use ffmpeg_next::util::frame::video::Video as AvFrame;
use ffmpeg_next::{Dictionary, Rational, codec, encoder, ffi, format};
use tincture_core::compose::{OutputLayout, frame_to_rgb8, frame_to_rgb16};
use tincture_core::frame::{Frame, Subsampling};

use crate::convert::{av_from_frame, gray_pixel, pixel_for};
use crate::decode::StreamPacket;
use crate::{Error, Result, VideoReader};

/// Video codecs Tincture exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum VideoCodec {
    /// FFV1 version 3, lossless, with per-slice CRCs: the archival master.
    Ffv1,
    /// Apple ProRes 422 HQ, 10-bit: for editing.
    ProRes,
    /// H.264 (x264), 8-bit 4:2:0, constant quality: for access copies.
    H264 {
        /// Constant rate factor (0 = lossless, 18 = visually transparent, 23 = x264's default).
        crf: u8,
    },
}

/// Containers for [`VideoCodec`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Matroska.
    Mkv,
    /// QuickTime.
    Mov,
    /// MPEG-4 Part 14.
    Mp4,
}

impl Container {
    pub(crate) fn muxer(self) -> &'static str {
        match self {
            Self::Mkv => "matroska",
            Self::Mov => "mov",
            Self::Mp4 => "mp4",
        }
    }

    /// Muxer options for the header: MOV and MP4 keep free-form tags and colour atoms.
    pub(crate) fn header_options(self) -> Dictionary<'static> {
        let mut opts = Dictionary::new();
        if self != Self::Mkv {
            opts.set("movflags", "+use_metadata_tags+write_colr");
        }
        opts
    }

    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mkv => "mkv",
            Self::Mov => "mov",
            Self::Mp4 => "mp4",
        }
    }
}

impl VideoCodec {
    /// The container this codec is written in.
    pub fn container(self) -> Container {
        match self {
            Self::Ffv1 => Container::Mkv,
            Self::ProRes => Container::Mov,
            Self::H264 { .. } => Container::Mp4,
        }
    }

    /// The output layout for a source of this depth and chroma layout.
    /// FFV1 keeps the source's depth and layout (4:4:4 for gray), so luma is bit-exact.
    pub fn layout(self, source_depth: u8, source: Option<Subsampling>) -> OutputLayout {
        match self {
            Self::Ffv1 => OutputLayout {
                bit_depth: source_depth,
                subsampling: source.unwrap_or(Subsampling::S444),
            },
            Self::ProRes => OutputLayout {
                bit_depth: 10,
                subsampling: Subsampling::S422,
            },
            Self::H264 { .. } => OutputLayout {
                bit_depth: 8,
                subsampling: Subsampling::S420,
            },
        }
    }

    fn encoder_name(self) -> &'static str {
        match self {
            Self::Ffv1 => "ffv1",
            Self::ProRes => "prores_ks",
            Self::H264 { .. } => "libx264",
        }
    }
}

/// A source stream to copy into the output without re-encoding.
#[derive(Clone, Copy, Debug)]
pub struct PassthroughStream {
    /// Index in the source.
    pub source_index: usize,
}

/// How to create a [`VideoWriter`].
#[derive(Clone, Debug)]
pub struct VideoWriterConfig {
    /// The file to write (usually a temporary name, renamed on success).
    pub path: PathBuf,
    /// The name the output will have when complete, for messages.
    pub final_path: PathBuf,
    /// The codec.
    pub codec: VideoCodec,
    /// Bit depth and chroma layout of the frames that will be written.
    pub layout: OutputLayout,
    /// Streams to copy.
    pub passthrough: Vec<PassthroughStream>,
    /// Container-level tags.
    pub metadata: Vec<(String, String)>,
    /// Start timecode of the output.
    pub timecode: Option<String>,
    /// Encoder threads (0 = one per core).
    pub threads: usize,
}

/// Writes a video file: encoded frames plus copied streams.
pub struct VideoWriter {
    path: PathBuf,
    octx: format::context::Output,
    encoder: encoder::Video,
    time_base: Rational,
    stream_map: HashMap<usize, (usize, Rational)>,
    durations: HashMap<i64, i64>,
    frames: u64,
}

fn output_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The codec name of stream `index` of `source` ("?" when unknown).
fn codec_name(source: &VideoReader, index: usize) -> &str {
    source
        .info()
        .streams
        .iter()
        .find(|s| s.index == index)
        .map_or("?", |s| s.codec.as_str())
}

/// Whether an OS error number means the disk or the quota is full.
fn is_disk_full(errno: i32) -> bool {
    matches!(
        std::io::Error::from_raw_os_error(errno).kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The error for a failed write of `path` at `frame`, noting a full disk.
pub(crate) fn write_error(path: &Path, frame: u64, e: ffmpeg_next::Error) -> Error {
    Error::Write {
        path: path.to_owned(),
        frame,
        disk_full: matches!(e, ffmpeg_next::Error::Other { errno } if is_disk_full(errno)),
        reason: e.to_string(),
    }
}

/// The error for a failed file write of `path` at `frame`, noting a full disk.
fn io_write_error(path: &Path, frame: u64, e: &std::io::Error) -> Error {
    Error::Write {
        path: path.to_owned(),
        frame,
        disk_full: e.raw_os_error().is_some_and(is_disk_full)
            || e.kind() == std::io::ErrorKind::StorageFull,
        reason: e.to_string(),
    }
}

/// The number of FFV1 slices for a frame size: more slices encode in
/// parallel; FFV1 v3 allows up to 1024 but small frames gain nothing.
fn ffv1_slices(width: u32, height: u32) -> u32 {
    match width * height {
        0..=300_000 => 4,
        300_001..=1_000_000 => 16,
        _ => 24,
    }
}

impl VideoWriter {
    /// Creates the file and its streams, taking frame geometry, timing,
    /// colour tags and field order from `source`.
    ///
    /// # Errors
    /// When the file cannot be created, an encoder is missing, or a stream
    /// cannot be carried in the container.
    pub fn create(config: &VideoWriterConfig, source: &VideoReader) -> Result<Self> {
        Self::create_as(config, source, false)
    }

    /// [`create`](Self::create), or with `gray` a gray stream of the
    /// layout's depth (the layout's chroma is then ignored): for copies of
    /// gray films, such as scrub proxies.
    pub(crate) fn create_as(
        config: &VideoWriterConfig,
        source: &VideoReader,
        gray: bool,
    ) -> Result<Self> {
        crate::init();
        let path = &config.final_path;
        let info = &source.info().video;
        let container = config.codec.container();
        let h264 = matches!(config.codec, VideoCodec::H264 { .. });
        if h264 && (info.width % 2 == 1 || info.height % 2 == 1) {
            return Err(output_error(
                path,
                format!(
                    "H.264 4:2:0 needs an even width and height, and this film is {}x{}; export FFV1, ProRes or an image sequence instead",
                    info.width, info.height
                ),
            ));
        }
        let mut octx = format::output_as(&config.path, container.muxer())
            .map_err(|e| output_error(path, e))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let codec = encoder::find_by_name(config.codec.encoder_name()).ok_or_else(|| {
            output_error(
                path,
                format!("this FFmpeg has no {} encoder", config.codec.encoder_name()),
            )
        })?;
        let pixel = if gray {
            gray_pixel(config.layout.bit_depth)
        } else {
            pixel_for(config.layout.bit_depth, config.layout.subsampling)
        }
        .ok_or_else(|| output_error(path, "unsupported output layout"))?;

        let time_base = source.time_base();
        let rate = source.frame_rate;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| output_error(path, e))?;
        enc.set_width(info.width);
        enc.set_height(info.height);
        enc.set_format(pixel);
        enc.set_time_base(time_base);
        if rate.numerator() > 0 {
            enc.set_frame_rate(Some(rate));
        }
        enc.set_aspect_ratio(source.sample_aspect);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.threads
        };
        enc.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Slice,
            count: threads,
            ..Default::default()
        });
        // SAFETY: setting plain fields of the not-yet-opened codec context.
        unsafe {
            let ctx = &mut *enc.as_mut_ptr();
            let [range, primaries, trc, space] = info.colour.raw;
            ctx.color_range = std::mem::transmute::<i32, ffi::AVColorRange>(range);
            ctx.color_primaries = std::mem::transmute::<i32, ffi::AVColorPrimaries>(primaries);
            ctx.color_trc = std::mem::transmute::<i32, ffi::AVColorTransferCharacteristic>(trc);
            ctx.colorspace = if space == ffi::AVColorSpace::AVCOL_SPC_UNSPECIFIED as i32 {
                // Tag the matrix the chroma was computed with, so players decode it as intended.
                match source.matrix() {
                    tincture_core::color::Matrix::Bt709 => ffi::AVColorSpace::AVCOL_SPC_BT709,
                    tincture_core::color::Matrix::Bt601 => ffi::AVColorSpace::AVCOL_SPC_SMPTE170M,
                    tincture_core::color::Matrix::Bt2020 => ffi::AVColorSpace::AVCOL_SPC_BT2020_NCL,
                }
            } else {
                std::mem::transmute::<i32, ffi::AVColorSpace>(space)
            };
            ctx.field_order = source.field_order;
        }
        let mut opts = Dictionary::new();
        match config.codec {
            VideoCodec::Ffv1 => {
                opts.set("level", "3");
                opts.set("slicecrc", "1");
                opts.set("g", "1");
                opts.set("slices", &ffv1_slices(info.width, info.height).to_string());
            }
            VideoCodec::ProRes => {
                opts.set("profile", "3");
                opts.set("vendor", "apl0");
            }
            VideoCodec::H264 { crf } => {
                opts.set("crf", &crf.to_string());
                opts.set("preset", "medium");
            }
        }
        let encoder = enc.open_with(opts).map_err(|e| {
            output_error(
                path,
                format!(
                    "cannot open the {} encoder: {e}",
                    config.codec.encoder_name()
                ),
            )
        })?;

        let mut video_meta = Dictionary::new();
        if let Some(tc) = &config.timecode {
            video_meta.set("timecode", tc);
        }
        {
            let mut ost = octx.add_stream(codec).map_err(|e| output_error(path, e))?;
            ost.set_parameters(&encoder);
            // SAFETY: setting a plain field of the stream we just added.
            unsafe { (*ost.as_mut_ptr()).sample_aspect_ratio = source.sample_aspect.into() };
            ost.set_time_base(time_base);
            if rate.numerator() > 0 {
                ost.set_avg_frame_rate(rate);
                ost.set_rate(rate);
            }
            ost.set_metadata(video_meta);
        }

        let mut stream_map = HashMap::new();
        for pass in &config.passthrough {
            let (params, tb) = source.stream_parameters(pass.source_index).ok_or_else(|| {
                output_error(
                    path,
                    format!("source stream {} does not exist", pass.source_index),
                )
            })?;
            // SAFETY: valid codec parameters of an open stream.
            let codec_id = unsafe { (*params.as_ptr()).codec_id };
            let supported = unsafe {
                ffi::avformat_query_codec(
                    octx.format().as_ptr(),
                    codec_id,
                    ffi::FF_COMPLIANCE_NORMAL,
                )
            };
            if supported != 1 {
                return Err(Error::StreamNotCarried {
                    path: source.path().to_owned(),
                    index: pass.source_index,
                    codec: codec_name(source, pass.source_index).to_owned(),
                    container: container.muxer().to_owned(),
                });
            }
            let meta: Vec<(String, String)> = source
                .info()
                .streams
                .iter()
                .filter(|s| s.index == pass.source_index)
                .filter_map(|s| s.language.clone().map(|l| ("language".to_owned(), l)))
                .collect();
            let mut ost = octx
                .add_stream(encoder::find(codec::Id::None))
                .map_err(|e| output_error(path, e))?;
            ost.set_parameters(params);
            ost.set_time_base(tb);
            // SAFETY: clearing the codec tag lets the muxer choose its own for the codec.
            unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
            let mut d = Dictionary::new();
            for (k, v) in &meta {
                d.set(k, v);
            }
            ost.set_metadata(d);
            stream_map.insert(pass.source_index, (ost.index(), tb));
        }

        let mut meta = Dictionary::new();
        for (k, v) in &config.metadata {
            meta.set(k, v);
        }
        if let Some(tc) = &config.timecode {
            meta.set("timecode", tc);
        }
        octx.set_metadata(meta);
        octx.write_header_with(container.header_options())
            .map_err(|e| {
                if config.passthrough.is_empty() {
                    return output_error(path, e);
                }
                // The muxer lists a codec it then refuses (FLAC in MOV):
                // name the streams copied, and what to do.
                let streams: Vec<String> = config
                    .passthrough
                    .iter()
                    .map(|pass| {
                        let codec = codec_name(source, pass.source_index);
                        format!("stream {} ({codec})", pass.source_index)
                    })
                    .collect();
                output_error(
                    path,
                    format!(
                        "the {} container cannot hold {} of {} as it is ({e}); choose \
                         --format ffv1 (MKV), which carries any sound and subtitles as they are, \
                         or convert that sound to PCM first",
                        container.muxer(),
                        streams.join(", "),
                        source.path().display()
                    ),
                )
            })?;
        // The muxer may have changed the stream time bases; look them up again.
        for (_, (out, tb)) in stream_map.iter_mut() {
            if let Some(s) = octx.stream(*out) {
                *tb = s.time_base();
            }
        }
        Ok(Self {
            path: path.clone(),
            octx,
            encoder,
            time_base,
            stream_map,
            durations: HashMap::new(),
            frames: 0,
        })
    }

    /// Encodes one frame. `pts` and `duration` are in the source video
    /// stream's time base, already shifted so the output starts at 0.
    ///
    /// # Errors
    /// When the frame's layout does not match the writer's, or encoding or writing fails.
    pub fn write_frame(
        &mut self,
        frame: &Frame,
        pts: i64,
        duration: i64,
        index: u64,
    ) -> Result<()> {
        let mut av: AvFrame = av_from_frame(frame)
            .filter(|av| av.format() == self.encoder.format())
            .ok_or_else(|| Error::Encode {
                path: self.path.clone(),
                frame: index,
                reason:
                    "the frame's depth or chroma layout is not the one this file was opened for"
                        .into(),
            })?;
        av.set_pts(Some(pts));
        // SAFETY: copying colour fields into a frame we own.
        unsafe {
            let ctx = &*self.encoder.as_ptr();
            let f = &mut *av.as_mut_ptr();
            f.color_range = ctx.color_range;
            f.colorspace = ctx.colorspace;
            f.color_primaries = ctx.color_primaries;
            f.color_trc = ctx.color_trc;
        }
        self.durations.insert(pts, duration);
        self.encoder.send_frame(&av).map_err(|e| Error::Encode {
            path: self.path.clone(),
            frame: index,
            reason: e.to_string(),
        })?;
        self.frames += 1;
        self.drain(index)
    }

    fn drain(&mut self, index: u64) -> Result<()> {
        let mut packet = Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    if let Some(d) = packet.pts().and_then(|p| self.durations.remove(&p)) {
                        packet.set_duration(d);
                    }
                    packet.set_stream(0);
                    let out_tb = self
                        .octx
                        .stream(0)
                        .map_or(self.time_base, |s| s.time_base());
                    packet.rescale_ts(self.time_base, out_tb);
                    packet
                        .write_interleaved(&mut self.octx)
                        .map_err(|e| write_error(&self.path, index, e))?;
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(()),
                Err(ffmpeg_next::Error::Other { errno }) if errno == ffi::EAGAIN => return Ok(()),
                Err(e) => {
                    return Err(Error::Encode {
                        path: self.path.clone(),
                        frame: index,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// Copies a packet of a passthrough stream, shifting it `offset` seconds earlier.
    ///
    /// # Errors
    /// [`Error::Write`] when writing fails.
    pub fn write_packet(&mut self, packet: StreamPacket, offset: f64) -> Result<()> {
        let Some(&(out, out_tb)) = self.stream_map.get(&packet.stream) else {
            return Ok(());
        };
        let mut p = packet.packet;
        // The source stream's time base, never the packet's own field: the
        // demuxer leaves that unset, and the output stream's may differ (MOV
        // counts audio in samples where Matroska counts milliseconds).
        let in_tb = packet.time_base;
        let shift = (offset / f64::from(in_tb)).round() as i64;
        p.set_pts(p.pts().map(|t| t - shift));
        p.set_dts(p.dts().map(|t| t - shift));
        p.rescale_ts(in_tb, out_tb);
        p.set_position(-1);
        p.set_stream(out);
        let frame = self.frames.saturating_sub(1);
        p.write_interleaved(&mut self.octx)
            .map_err(|e| write_error(&self.path, frame, e))
    }

    /// Flushes the encoder and writes the trailer, leaving a complete file.
    /// Call this on cancel and after a failed write too: the trailer is
    /// attempted even when flushing fails, so the result is a valid file of
    /// the frames written wherever the disk allows.
    ///
    /// # Errors
    /// When flushing or writing fails ([`Error::Write`] for the latter).
    pub fn finish(mut self) -> Result<u64> {
        let last = self.frames.saturating_sub(1);
        let flushed = self
            .encoder
            .send_eof()
            .map_err(|e| Error::Encode {
                path: self.path.clone(),
                frame: last,
                reason: e.to_string(),
            })
            .and_then(|()| self.drain(last));
        let trailer = self
            .octx
            .write_trailer()
            .map_err(|e| write_error(&self.path, last, e));
        flushed.and(trailer).map(|()| self.frames)
    }
}

/// Image sequence formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ImageFormat {
    /// PNG, 8-bit RGB for 8-bit sources, 16-bit otherwise.
    Png,
    /// TIFF, 16-bit RGB.
    Tiff16,
}

impl ImageFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Tiff16 => "tif",
        }
    }
}

/// The marker file Tincture writes into every image-sequence folder it
/// creates. Only a folder that holds it (or the `tincture-settings.json`
/// that renders have always written) is ever emptied by Tincture, and then
/// only of the files [`is_sequence_file`] names.
pub const SEQUENCE_MARKER: &str = ".tincture-sequence";

/// The settings record a render keeps inside an image-sequence folder.
pub const SEQUENCE_SETTINGS: &str = "tincture-settings.json";

/// Whether `name` is a file Tincture writes into an image-sequence folder:
/// a frame (`frame_NNNNNN.png` / `.tif`), a frame being written
/// (`frame_NNNNNN.tincture-partial.png`), the marker, the settings record
/// or the metrics sidecar (`metrics.json`).
pub fn is_sequence_file(name: &str) -> bool {
    if [SEQUENCE_MARKER, SEQUENCE_SETTINGS, "metrics.json"].contains(&name) {
        return true;
    }
    let Some(rest) = name.strip_prefix("frame_") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let tail = &rest[digits..];
    digits >= 6
        && [
            ".png",
            ".tif",
            ".tincture-partial.png",
            ".tincture-partial.tif",
        ]
        .contains(&tail)
}

/// Writes one image file per frame into a folder, named by frame index
/// (`frame_000123.png`), so chunks rendered apart land side by side.
/// Each frame is written under a temporary name, flushed to disk and
/// renamed, so a frame file is whole or absent. The folder gets the
/// [`SEQUENCE_MARKER`].
pub struct ImageSequenceWriter {
    dir: PathBuf,
    format: ImageFormat,
}

impl ImageSequenceWriter {
    /// Creates the folder (or opens it, to resume) and marks it as Tincture's.
    ///
    /// # Errors
    /// When the folder or its marker cannot be created.
    pub fn create(dir: &Path, format: ImageFormat) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| output_error(dir, e))?;
        let marker = dir.join(SEQUENCE_MARKER);
        if !marker.exists() {
            std::fs::write(
                &marker,
                "An image sequence written by Tincture. Tincture may replace the frame files \
                 here when asked to overwrite; it never removes anything else.\n",
            )
            .map_err(|e| output_error(&marker, e))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            format,
        })
    }

    /// The file name of frame `index`.
    pub fn file_name(format: ImageFormat, index: u64) -> String {
        format!("frame_{index:06}.{}", format.extension())
    }

    /// Writes frame `index`: under a temporary name, flushed to disk, then
    /// renamed into place.
    ///
    /// # Errors
    /// When encoding or writing the image fails.
    pub fn write_frame(&mut self, frame: &Frame, index: u64) -> Result<()> {
        let path = self.dir.join(Self::file_name(self.format, index));
        let partial = self.dir.join(format!(
            "frame_{index:06}.tincture-partial.{}",
            self.format.extension()
        ));
        let (w, h) = (frame.width() as u32, frame.height() as u32);
        let err = |e: image::ImageError| {
            // A file cut short by a failed write is removed: it is not a frame.
            let _ = std::fs::remove_file(&partial);
            match e {
                image::ImageError::IoError(io) => io_write_error(&path, index, &io),
                e => Error::Encode {
                    path: path.clone(),
                    frame: index,
                    reason: e.to_string(),
                },
            }
        };
        let kind = match self.format {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Tiff16 => image::ImageFormat::Tiff,
        };
        let sixteen = self.format == ImageFormat::Tiff16 || frame.bit_depth > 8;
        let result = if sixteen {
            let rgb = frame_to_rgb16(frame);
            image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(w, h, rgb)
                .map(|b| b.save_with_format(&partial, kind))
        } else {
            let rgb = frame_to_rgb8(frame);
            image::ImageBuffer::<image::Rgb<u8>, _>::from_raw(w, h, rgb)
                .map(|b| b.save_with_format(&partial, kind))
        };
        match result {
            Some(r) => r.map_err(err)?,
            None => {
                return Err(Error::Encode {
                    path,
                    frame: index,
                    reason: "buffer size mismatch".into(),
                });
            }
        }
        let placed = sync_file(&partial).and_then(|()| std::fs::rename(&partial, &path));
        placed.map_err(|e| err(image::ImageError::IoError(e)))
    }
}

/// Flushes a written file's contents to disk (before it is renamed into
/// place, so a power cut cannot leave a complete-looking empty file).
///
/// # Errors
/// When the file cannot be opened or flushed.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}
