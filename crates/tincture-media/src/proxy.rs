//! Scrub proxies: a lossless, all-intra copy of a long-GOP film, so that any
//! frame decodes on its own.
//!
//! Seeking in an H.264 access copy with a keyframe every 250 frames means
//! decoding up to 249 frames before the one asked for: most of a second at
//! 720p. The viewer instead reads frames it has not cached from a proxy, an
//! FFV1 copy with every frame a keyframe, written in the background by one
//! sequential pass over the film. FFV1 is lossless, so a proxy frame is the
//! source frame, sample for sample, luma included.
//!
//! The proxy of a film lives in a folder of its own under a proxy root,
//! named by a hash of the film's path, size, modification time and frame
//! count (a changed film gets a new proxy). It is cut into files of
//! [`PROXY_CHUNK`] frames, each written under a temporary name and renamed
//! when complete, so a proxy is usable part by part while it is built, an
//! interrupted build keeps its finished parts, and a damaged part is
//! removed and rebuilt. Films whose seeks are short already (at most
//! [`PROXY_MIN_RUN`] frames from a keyframe) get none. [`evict_proxies`]
//! keeps the root under a size budget, oldest films first.
//!
//! The source is only ever read.

use std::path::{Path, PathBuf};

use tincture_core::color::{ColorRange, Matrix};
use tincture_core::frame::Frame;

use crate::{DecodedFrame, Result, VideoCodec, VideoReader, VideoWriter, VideoWriterConfig};

/// Frames per proxy file (ten seconds at 25 fps).
pub const PROXY_CHUNK: u64 = 250;

/// Films whose seeks decode at most this many frames need no proxy.
pub const PROXY_MIN_RUN: u64 = 30;

/// Where one film's proxy files are and how many frames each holds.
#[derive(Clone, Debug)]
struct Files {
    dir: PathBuf,
    frame_count: u64,
}

impl Files {
    fn chunk_path(&self, chunk: u64) -> PathBuf {
        self.dir.join(format!("{chunk:06}.mkv"))
    }

    fn partial_path(&self, chunk: u64) -> PathBuf {
        self.dir.join(format!("{chunk:06}.mkv.partial"))
    }

    fn chunk_len(&self, chunk: u64) -> u64 {
        self.frame_count
            .saturating_sub(chunk * PROXY_CHUNK)
            .min(PROXY_CHUNK)
    }

    fn built(&self, chunk: u64) -> bool {
        self.chunk_path(chunk).is_file()
    }
}

/// The scrub proxy of one film: reads frames from the parts built so far.
/// See the module docs.
pub struct ScrubProxy {
    files: Files,
    gray: bool,
    bit_depth: u8,
    range: ColorRange,
    matrix: Matrix,
    /// The part open for reading.
    open: Option<(u64, VideoReader)>,
}

impl ScrubProxy {
    /// The proxy of the film `source` reads, under `root`, built or not;
    /// `None` when the film seeks fast without one.
    pub fn for_film(root: &Path, source: &VideoReader) -> Option<Self> {
        if source.longest_keyframe_run() <= PROXY_MIN_RUN {
            return None;
        }
        Some(Self {
            files: Files {
                dir: root.join(film_key(source)),
                frame_count: source.frame_count(),
            },
            gray: source.subsampling().is_none(),
            bit_depth: source.info().video.bit_depth,
            range: source.range(),
            matrix: source.matrix(),
            open: None,
        })
    }

    /// The folder of this film's proxy files.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// About how many bytes the whole proxy will take: the film's samples
    /// (every plane at the source's depth, 2 bytes a sample above 8 bits)
    /// at FFV1's usual lossless ratio on scanned film, taken high (3/4 of
    /// the samples' size), so a proxy judged to fit does.
    pub fn estimated_bytes(&self, width: u32, height: u32, chroma_planes_share: f64) -> u64 {
        let pixels = u64::from(width) * u64::from(height);
        let sample = if self.bit_depth > 8 { 2.0 } else { 1.0 };
        let planes = if self.gray {
            1.0
        } else {
            1.0 + chroma_planes_share
        };
        (pixels as f64 * planes * sample * 0.75 * self.files.frame_count as f64) as u64
    }

    /// Number of proxy files the film needs.
    pub fn chunks(&self) -> u64 {
        self.files.frame_count.div_ceil(PROXY_CHUNK)
    }

    /// Whether frame `index` can be read from the proxy now.
    pub fn has(&self, index: u64) -> bool {
        index < self.files.frame_count && self.files.built(index / PROXY_CHUNK)
    }

    /// Frames the proxy holds so far.
    pub fn built_frames(&self) -> u64 {
        (0..self.chunks())
            .filter(|&c| self.files.built(c))
            .map(|c| self.files.chunk_len(c))
            .sum()
    }

    /// Frame `index`, read from the proxy; `None` when its part is not built
    /// yet. A part that does not read back whole is removed (the next build
    /// writes it again) and gives `None`, so the caller decodes the source.
    pub fn frame(&mut self, index: u64) -> Option<Frame> {
        if !self.has(index) {
            return None;
        }
        let chunk = index / PROXY_CHUNK;
        if self.open.as_ref().map(|(c, _)| *c) != Some(chunk) {
            self.open = None;
            let path = self.files.chunk_path(chunk);
            match VideoReader::open(&path) {
                Ok(r) if r.frame_count() == self.files.chunk_len(chunk) => {
                    self.open = Some((chunk, r));
                }
                other => {
                    let why = other.err().map_or_else(
                        || "it holds the wrong number of frames".to_owned(),
                        |e| e.to_string(),
                    );
                    self.discard(chunk, &why);
                    return None;
                }
            }
        }
        let (_, reader) = self.open.as_mut()?;
        match reader.seek(index - chunk * PROXY_CHUNK) {
            Ok(DecodedFrame { mut frame, .. })
                if frame.bit_depth == self.bit_depth && frame.chroma.is_none() == self.gray =>
            {
                // The source's own reading of range and matrix, whatever the copy's tags say.
                frame.range = self.range;
                frame.matrix = self.matrix;
                Some(frame)
            }
            Ok(_) => {
                self.discard(chunk, "its pixel layout is not the film's");
                None
            }
            Err(e) => {
                self.discard(chunk, &e.to_string());
                None
            }
        }
    }

    fn discard(&mut self, chunk: u64, why: &str) {
        self.open = None;
        let path = self.files.chunk_path(chunk);
        tracing::warn!(path = %path.display(), "scrub proxy part removed: {why}");
        let _ = std::fs::remove_file(path);
    }

    /// A writer that builds the parts still missing from a sequential decode
    /// of the film.
    pub fn writer(&self) -> ProxyWriter {
        ProxyWriter {
            files: self.files.clone(),
            gray: self.gray,
            at: None,
            current: None,
        }
    }
}

/// The part being written.
struct Part {
    writer: VideoWriter,
    written: u64,
    first_pts: i64,
}

/// Builds a [`ScrubProxy`]'s missing parts; feed it every frame of the film
/// in order with [`push`](Self::push), then call [`finish`](Self::finish).
pub struct ProxyWriter {
    files: Files,
    gray: bool,
    /// The part the last frame belonged to.
    at: Option<u64>,
    /// Its writer, unless that part was built already.
    current: Option<Part>,
}

impl ProxyWriter {
    /// The folder of the proxy's files.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The bytes the proxy's files take on disk now.
    pub fn bytes_on_disk(&self) -> u64 {
        std::fs::read_dir(&self.files.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Whether every part is built (the pass can be skipped).
    pub fn complete(&self) -> bool {
        (0..self.files.frame_count.div_ceil(PROXY_CHUNK)).all(|c| self.files.built(c))
    }

    /// Adds `frame`, the next frame of a sequential decode of `source`.
    ///
    /// # Errors
    /// When the proxy folder or a part cannot be written (a full disk, say).
    /// The part being written is then dropped.
    pub fn push(&mut self, source: &VideoReader, frame: &DecodedFrame) -> Result<()> {
        let chunk = frame.index / PROXY_CHUNK;
        if self.at != Some(chunk) {
            self.close()?;
            self.at = Some(chunk);
            if !self.files.built(chunk) {
                self.current = Some(self.open_part(source, chunk, frame)?);
            }
        }
        let Some(part) = self.current.as_mut() else {
            return Ok(());
        };
        let (pts, duration) = match source.pts_of(frame.index) {
            Some(p) => (p - part.first_pts, source.duration_of(frame.index)),
            None => (part.written as i64, 1),
        };
        if let Err(e) = part
            .writer
            .write_frame(&frame.frame, pts, duration, frame.index)
        {
            self.drop_current();
            return Err(e);
        }
        part.written += 1;
        if part.written == self.files.chunk_len(chunk) {
            self.close()?;
        }
        Ok(())
    }

    fn open_part(&self, source: &VideoReader, chunk: u64, first: &DecodedFrame) -> Result<Part> {
        let final_path = self.files.chunk_path(chunk);
        std::fs::create_dir_all(&self.files.dir).map_err(|e| crate::Error::Output {
            path: self.files.dir.clone(),
            reason: e.to_string(),
        })?;
        let video = &source.info().video;
        let config = VideoWriterConfig {
            path: self.files.partial_path(chunk),
            final_path,
            codec: VideoCodec::Ffv1,
            layout: VideoCodec::Ffv1.layout(video.bit_depth, source.subsampling()),
            passthrough: Vec::new(),
            metadata: vec![(
                "comment".to_owned(),
                format!("Tincture scrub proxy of {}", source.path().display()),
            )],
            timecode: None,
            threads: 1,
        };
        let writer = VideoWriter::create_as(&config, source, self.gray)?;
        Ok(Part {
            writer,
            written: 0,
            first_pts: source.pts_of(first.index).unwrap_or(0),
        })
    }

    /// Ends the part being written: flushed to disk and renamed into place
    /// when whole, removed otherwise.
    fn close(&mut self) -> Result<()> {
        let (Some(part), Some(chunk)) = (self.current.take(), self.at) else {
            return Ok(());
        };
        let partial = self.files.partial_path(chunk);
        let whole = part.written == self.files.chunk_len(chunk);
        let finished = part.writer.finish();
        if whole && finished.is_ok() {
            // Flushed to disk before the rename, so a power cut cannot leave
            // a part under its final name that is not whole.
            crate::sync_file(&partial)
                .and_then(|()| std::fs::rename(&partial, self.files.chunk_path(chunk)))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&partial);
                    crate::Error::Output {
                        path: self.files.chunk_path(chunk),
                        reason: e.to_string(),
                    }
                })?;
        } else {
            let _ = std::fs::remove_file(&partial);
        }
        finished.map(|_| ())
    }

    fn drop_current(&mut self) {
        if let (Some(part), Some(chunk)) = (self.current.take(), self.at) {
            let _ = part.writer.finish();
            let _ = std::fs::remove_file(self.files.partial_path(chunk));
        }
    }

    /// Ends the pass: the part in progress is kept only if it is whole.
    ///
    /// # Errors
    /// When the last part cannot be finished.
    pub fn finish(mut self) -> Result<()> {
        self.close()
    }
}

impl Drop for ProxyWriter {
    fn drop(&mut self) {
        // A pass stopped early (another film opened): leave no partial behind.
        self.drop_current();
    }
}

/// The folder name of a film's proxy: FNV-1a of its path, size, modification
/// time and frame count, in hex.
fn film_key(source: &VideoReader) -> String {
    let path = source.path();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let meta = std::fs::metadata(&path).ok();
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let modified = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(path.to_string_lossy().as_bytes());
    eat(&size.to_le_bytes());
    eat(&modified.to_le_bytes());
    eat(&source.frame_count().to_le_bytes());
    let name = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .take(40)
                .collect::<String>()
        })
        .unwrap_or_default();
    format!("{name}-{hash:016x}")
}

/// Removes the proxies of other films under `root`, least recently written
/// first, until all proxies there (`keep`'s included) fit in `budget` bytes.
/// Returns the bytes freed.
pub fn evict_proxies(root: &Path, keep: &Path, budget: u64) -> u64 {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut dirs: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    let mut total = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let (mut size, mut newest) = (0, std::time::UNIX_EPOCH);
        for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(m) = file.metadata() {
                size += m.len();
                newest = newest.max(m.modified().unwrap_or(std::time::UNIX_EPOCH));
            }
        }
        total += size;
        if dir != keep {
            dirs.push((newest, size, dir));
        }
    }
    dirs.sort();
    let mut freed = 0;
    for (_, size, dir) in dirs {
        if total <= budget {
            break;
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            tracing::info!(dir = %dir.display(), bytes = size, "old scrub proxy removed");
            total -= size;
            freed += size;
        }
    }
    freed
}
