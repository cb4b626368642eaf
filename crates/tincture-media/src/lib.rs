//! Tincture's media layer: everything that touches FFmpeg (through
//! ffmpeg-next) lives here.
//!
//! - [`probe()`] reads what a file holds ([`MediaInfo`]), counting frames
//!   itself because containers lie.
//! - [`VideoReader`] decodes sequentially and seeks frame-accurately by
//!   frame index.
//! - [`VideoWriter`] encodes FFV1/MKV, ProRes 422 HQ/MOV and H.264/MP4 and
//!   copies audio, subtitle and timecode untouched; [`ImageSequenceWriter`]
//!   writes PNG and 16-bit TIFF frames.
//! - [`ScrubProxy`] keeps a lossless all-intra copy of a long-GOP film, so
//!   the viewer reads any frame without decoding from a distant keyframe.
//! - [`join_segments`] joins a resumed export to the partial file it
//!   continues, by stream copy; [`concat_chunks`] joins the chunks of a
//!   farm render the same way.
//!
//! Sources are only ever opened for reading.

mod concat;
mod convert;
mod decode;
mod encode;
mod error;
mod probe;
mod proxy;
mod remux;

pub use concat::{ChunkFile, Concat, concat_chunks};
pub use convert::{layout_of_pixel, pixel_name};
pub use decode::{DecodedFrame, StreamPacket, VideoReader};
pub use encode::{
    Container, ImageFormat, ImageSequenceWriter, PassthroughStream, SEQUENCE_MARKER,
    SEQUENCE_SETTINGS, VideoCodec, VideoWriter, VideoWriterConfig, is_sequence_file, sync_file,
};
pub use error::{Error, Result};
pub use probe::{ColourTags, MediaInfo, StreamInfo, StreamKind, VideoInfo, probe};
pub use proxy::{PROXY_CHUNK, PROXY_MIN_RUN, ProxyWriter, ScrubProxy, evict_proxies};
pub use remux::{StreamTail, count_frames, join_segments};

/// Smallest frame side Tincture accepts.
pub const MIN_FRAME_SIDE: u32 = 16;

/// Initialises FFmpeg once per process and quiets its own logging (Tincture
/// reports errors itself, with the file and frame).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Errors here mean a broken FFmpeg build; decoding would report them anyway.
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

/// FFmpeg library versions, for `--version` and bug reports.
pub fn ffmpeg_version() -> String {
    let v = ffmpeg_next::codec::version();
    format!("libavcodec {}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}
