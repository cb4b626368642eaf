//! Joining the chunks of a farm render into one output, without
//! re-encoding, and writing its manifest.
//!
//! Video chunks (FFV1/MKV, ProRes/MOV) are joined by packet copy
//! ([`tincture_media::concat_chunks`]): the video of each chunk in frame
//! order, retimed as one whole render times it, and the source's audio and
//! subtitles copied once for the whole range. Image-sequence chunks are
//! linked (or copied, across file systems) into one folder. Either way the
//! result equals one whole render of the same project, bit for bit.
//!
//! Before anything is written the chunks are checked: each must be a
//! complete Tincture render of a frame range of the source (the range it
//! records, and that many frames), the ranges must follow one another with
//! no gap or overlap and cover the range asked for, and every chunk must
//! have been made with the same settings and Tincture version. A chunk
//! that fails is named in the error, with what to do.
//!
//! The manifest (`OUT.manifest.json` beside a file, `OUT.manifest.json`
//! beside a folder) records each chunk's frame range, sha256, settings
//! digests and Tincture version.

use std::path::{Path, PathBuf};

use tincture_core::timecode::offset_timecode;
use tincture_media::{ChunkFile, Concat, Container, StreamKind, VideoReader};

use super::verify::sequence_frames;
use super::{farm_error, parse_range, sha256_file, sha256_files, tag};
use crate::output::{self, Kind};
use crate::render::{colour_digest, partial_path};
use crate::{Error, Result};

/// What to join.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The chunks' outputs (video files or image-sequence folders), in any order.
    pub chunks: Vec<PathBuf>,
    /// The joined output.
    pub output: PathBuf,
    /// The source film the chunks were rendered from (opened read-only).
    pub source: PathBuf,
    /// The source frames the joined output must cover, inclusive; `None`
    /// for the whole film.
    pub frames: Option<(u64, u64)>,
    /// Replace an existing output (and manifest).
    pub overwrite: bool,
}

/// One chunk, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkRecord {
    /// The chunk's output.
    pub path: PathBuf,
    /// Its source frames, inclusive.
    pub frames: [u64; 2],
    /// `sha256:HEX` of its file (of its frame files, in order, for a sequence).
    pub sha256: String,
    /// The digest of its render's settings, frame range included
    /// (`TINCTURE_SETTINGS_DIGEST`).
    pub settings_digest: String,
    /// The digest of its render's settings without the frame range: the
    /// same for every chunk of one render.
    pub colour_digest: Option<String>,
    /// The Tincture version that rendered it.
    pub tincture_version: String,
}

/// A copied stream of the joined output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamRecord {
    /// Its index in the source.
    pub source_index: usize,
    /// `audio` or `subtitle`.
    pub kind: String,
    /// Its codec.
    pub codec: String,
}

/// The record a join writes beside its output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The Tincture version that joined the chunks.
    pub tincture_version: String,
    /// The source film.
    pub source: PathBuf,
    /// The joined output.
    pub output: PathBuf,
    /// `ffv1`, `prores`, `png` or `tiff`.
    pub format: String,
    /// The source frames of the output, inclusive.
    pub frames: [u64; 2],
    /// The output's start timecode, if the source has one.
    pub timecode: Option<String>,
    /// The streams copied from the source once for the whole output.
    pub copied_streams: Vec<StreamRecord>,
    /// The chunks, in frame order.
    pub chunks: Vec<ChunkRecord>,
}

/// Where the manifest of `output` is written: `NAME.EXT.manifest.json`
/// beside a file, `NAME.manifest.json` beside a folder.
pub fn manifest_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".manifest.json");
    output.with_file_name(name)
}

/// A chunk read and checked on its own.
struct Chunk {
    record: ChunkRecord,
    format: String,
    /// A sequence chunk's frame files, in order.
    files: Vec<PathBuf>,
}

/// Joins `req.chunks` into `req.output` and writes the manifest beside it;
/// `progress(done, total)` is called after each chunk is hashed.
///
/// # Errors
/// [`Error::Farm`] naming a chunk that is missing, short, overlapping,
/// made with other settings, or of another kind; a media error naming a
/// chunk whose packets cannot be joined; the output checks of
/// [`crate::output`].
pub fn join(req: &JoinRequest, mut progress: impl FnMut(u64, u64)) -> Result<Manifest> {
    let source = VideoReader::open(&req.source)?;
    let count = source.frame_count();
    let (want_first, want_last) = req.frames.unwrap_or((0, count.saturating_sub(1)));
    if count == 0 || want_last >= count || want_first > want_last {
        return Err(Error::FrameRange {
            path: req.source.clone(),
            first: want_first,
            last: want_last,
            count,
        });
    }
    if req.chunks.is_empty() {
        return Err(farm_error(&req.output, "no chunks were given to join"));
    }
    let mut chunks = Vec::with_capacity(req.chunks.len());
    for (k, path) in req.chunks.iter().enumerate() {
        chunks.push(read_chunk(path)?);
        progress(k as u64 + 1, req.chunks.len() as u64);
    }
    chunks.sort_by_key(|c| c.record.frames[0]);
    check_chunks(&chunks, (want_first, want_last), &req.source, count)?;

    let sequence = !chunks[0].files.is_empty() || req.chunks[0].is_dir();
    let kind = if sequence { Kind::Sequence } else { Kind::File };
    let mut inputs: Vec<&Path> = req.chunks.iter().map(PathBuf::as_path).collect();
    inputs.push(&req.source);
    output::check(&req.output, &inputs, req.overwrite, kind)?;
    let manifest_file = manifest_path(&req.output);
    output::check(&manifest_file, &inputs, req.overwrite, Kind::File)?;
    let partial = partial_path(&req.output);
    output::check_not_input(&partial, &inputs)?;

    let v = &source.info().video;
    let timecode = v
        .timecode
        .as_deref()
        .and_then(|tc| offset_timecode(tc, want_first, v.frame_rate));
    let mut copied_streams = Vec::new();
    if sequence {
        join_sequence(&chunks, &partial, (want_first, want_last))?;
    } else {
        let container = match chunks[0].format.as_str() {
            "ffv1" => Container::Mkv,
            "prores" => Container::Mov,
            other => {
                return Err(farm_error(
                    &chunks[0].record.path,
                    format!(
                        "it is {other}; only ffv1 (MKV) and prores (MOV) chunks are joined without re-encoding: render the chunks as one of those"
                    ),
                ));
            }
        };
        copied_streams = source
            .info()
            .streams
            .iter()
            .filter(|s| matches!(s.kind, StreamKind::Audio | StreamKind::Subtitle))
            .map(|s| StreamRecord {
                source_index: s.index,
                kind: format!("{:?}", s.kind).to_lowercase(),
                codec: s.codec.clone(),
            })
            .collect();
        let mut metadata: Vec<(String, String)> = source
            .info()
            .tags
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("encoder") && k != "timecode")
            .cloned()
            .collect();
        let head = &chunks[0].record;
        metadata.push(("TINCTURE_VERSION".into(), head.tincture_version.clone()));
        metadata.push((
            "TINCTURE_SOURCE_FRAMES".into(),
            format!("{want_first}-{want_last}"),
        ));
        if let Some(d) = &head.colour_digest {
            metadata.push(("TINCTURE_COLOUR_DIGEST".into(), d.clone()));
        }
        metadata.push(("TINCTURE_JOINED_CHUNKS".into(), chunks.len().to_string()));
        let files: Vec<ChunkFile> = chunks
            .iter()
            .map(|c| ChunkFile {
                path: c.record.path.clone(),
                first: c.record.frames[0],
                frames: c.record.frames[1] - c.record.frames[0] + 1,
            })
            .collect();
        let job = Concat {
            source: &source,
            chunks: &files,
            container,
            metadata,
            timecode: timecode.clone(),
        };
        let _ = std::fs::remove_file(&partial);
        tincture_media::concat_chunks(&job, &partial, &req.output).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
    }
    // Checked again: the output may have appeared while the chunks were joined.
    let placed = output::check(&req.output, &inputs, req.overwrite, kind)
        .and_then(|()| output::replace(&partial, &req.output, kind));
    if let Err(e) = placed {
        remove_partial(&partial);
        return Err(e);
    }
    let manifest = Manifest {
        tincture_version: crate::VERSION.into(),
        source: req.source.clone(),
        output: req.output.clone(),
        format: chunks[0].format.clone(),
        frames: [want_first, want_last],
        timecode,
        copied_streams,
        chunks: chunks.into_iter().map(|c| c.record).collect(),
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Output {
        path: manifest_file.clone(),
        reason: e.to_string(),
    })?;
    output::write_bytes(&manifest_file, &inputs, req.overwrite, text.as_bytes())?;
    Ok(manifest)
}

fn remove_partial(partial: &Path) {
    if partial.is_dir() {
        let _ = output::remove_sequence_folder(partial);
    } else {
        let _ = std::fs::remove_file(partial);
    }
}

/// Reads what a chunk records about itself and hashes it.
fn read_chunk(path: &Path) -> Result<Chunk> {
    let missing = || {
        farm_error(
            path,
            "the chunk is missing; render it (or rerun the job: chunks already there are skipped)",
        )
    };
    let meta = std::fs::metadata(path).map_err(|_| missing())?;
    if meta.is_dir() {
        return read_sequence_chunk(path);
    }
    let info = tincture_media::probe(path).map_err(|e| {
        farm_error(
            path,
            format!("cannot be read ({e}); render this chunk again"),
        )
    })?;
    let not_ours = |what: &str| {
        farm_error(
            path,
            format!(
                "it has no {what} tag, so it is not a chunk Tincture rendered; render it with tincture-cli render --frames"
            ),
        )
    };
    let frames = tag(&info, "TINCTURE_SOURCE_FRAMES")
        .and_then(parse_range)
        .ok_or_else(|| not_ours("TINCTURE_SOURCE_FRAMES"))?;
    let settings_digest = tag(&info, "TINCTURE_SETTINGS_DIGEST")
        .ok_or_else(|| not_ours("TINCTURE_SETTINGS_DIGEST"))?
        .to_owned();
    let tincture_version = tag(&info, "TINCTURE_VERSION")
        .ok_or_else(|| not_ours("TINCTURE_VERSION"))?
        .to_owned();
    let held = info.video.frame_count;
    let due = frames.1 - frames.0 + 1;
    if held != due {
        return Err(farm_error(
            path,
            format!(
                "it holds {held} frames where its frames {}-{} are {due}: it is {}; render it again",
                frames.0,
                frames.1,
                if held < due {
                    "cut short"
                } else {
                    "not the chunk it says"
                }
            ),
        ));
    }
    let format = match info.video.codec.as_str() {
        "ffv1" => "ffv1",
        "prores" => "prores",
        other => other,
    }
    .to_owned();
    Ok(Chunk {
        record: ChunkRecord {
            path: path.to_owned(),
            frames: [frames.0, frames.1],
            sha256: sha256_file(path)?,
            settings_digest,
            colour_digest: tag(&info, "TINCTURE_COLOUR_DIGEST").map(str::to_owned),
            tincture_version,
        },
        format,
        files: Vec::new(),
    })
}

/// [`read_chunk`] for an image-sequence folder.
fn read_sequence_chunk(dir: &Path) -> Result<Chunk> {
    let settings_file = dir.join(tincture_media::SEQUENCE_SETTINGS);
    let bytes = std::fs::read(&settings_file).map_err(|_| {
        farm_error(
            dir,
            format!(
                "it holds no {}, so it is not an image sequence Tincture rendered (or it is still being rendered)",
                tincture_media::SEQUENCE_SETTINGS
            ),
        )
    })?;
    let settings: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| farm_error(&settings_file, format!("cannot be read: {e}")))?;
    let frames = settings
        .get("frames")
        .and_then(|f| Some((f.get(0)?.as_u64()?, f.get(1)?.as_u64()?)))
        .ok_or_else(|| farm_error(&settings_file, "it records no frame range"))?;
    let format = match settings.get("format") {
        Some(f) if f.to_string().contains("Tiff") => "tiff",
        _ => "png",
    };
    let files = sequence_frames(dir)?;
    let mut expected = frames.0;
    for (i, _) in &files {
        if *i != expected {
            return Err(farm_error(
                dir,
                format!(
                    "frame {expected} is missing (the chunk covers {}-{}): it is incomplete; render it again",
                    frames.0, frames.1
                ),
            ));
        }
        expected += 1;
    }
    if expected != frames.1 + 1 {
        return Err(farm_error(
            dir,
            format!(
                "it holds frames up to {} of {}-{}: it is cut short; render it again",
                expected as i64 - 1,
                frames.0,
                frames.1
            ),
        ));
    }
    let files: Vec<PathBuf> = files.into_iter().map(|(_, p)| p).collect();
    Ok(Chunk {
        record: ChunkRecord {
            path: dir.to_owned(),
            frames: [frames.0, frames.1],
            sha256: sha256_files(&files)?,
            settings_digest: super::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            colour_digest: Some(colour_digest(&settings)),
            tincture_version: settings
                .get("tincture")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned(),
        },
        format: format.into(),
        files,
    })
}

/// Checks that sorted `chunks` cover `want` exactly, one after another, and
/// were made alike.
fn check_chunks(chunks: &[Chunk], want: (u64, u64), source: &Path, count: u64) -> Result<()> {
    let head = &chunks[0];
    let mut next = want.0;
    for (k, c) in chunks.iter().enumerate() {
        let [a, b] = c.record.frames;
        let path = &c.record.path;
        if b >= count {
            return Err(farm_error(
                path,
                format!(
                    "it covers frames {a}-{b}, past the end of {} (frames 0-{}); is it a chunk of this film?",
                    source.display(),
                    count - 1
                ),
            ));
        }
        if a > next {
            let after = if k == 0 {
                "the start of the range".to_owned()
            } else {
                chunks[k - 1].record.path.display().to_string()
            };
            return Err(farm_error(
                path,
                format!(
                    "frames {next}-{} are missing between {after} and this chunk (frames {a}-{b}); render the missing chunk",
                    a - 1
                ),
            ));
        }
        if a < next {
            let other = if k == 0 {
                format!("the range asked for, which starts at frame {}", want.0)
            } else {
                chunks[k - 1].record.path.display().to_string()
            };
            return Err(farm_error(
                path,
                format!("its frames {a}-{b} overlap {other}; join each frame once"),
            ));
        }
        if c.format != head.format {
            return Err(farm_error(
                path,
                format!(
                    "it is {}, {} is {}; join chunks of one format",
                    c.format,
                    head.record.path.display(),
                    head.format
                ),
            ));
        }
        if c.record.tincture_version != head.record.tincture_version {
            return Err(farm_error(
                path,
                format!(
                    "it was rendered by Tincture {}, {} by {}; render every chunk with one version",
                    c.record.tincture_version,
                    head.record.path.display(),
                    head.record.tincture_version
                ),
            ));
        }
        if let (Some(x), Some(y)) = (&c.record.colour_digest, &head.record.colour_digest)
            && x != y
        {
            return Err(farm_error(
                path,
                format!(
                    "it was rendered with other settings than {} (another project, model or format); render it again with the job's settings",
                    head.record.path.display()
                ),
            ));
        }
        next = b + 1;
    }
    if next <= want.1 {
        let last = &chunks[chunks.len() - 1].record.path;
        return Err(farm_error(
            last,
            format!(
                "frames {next}-{} are missing after this chunk, the last given; render the missing chunk",
                want.1
            ),
        ));
    }
    if next > want.1 + 1 {
        return Err(farm_error(
            &chunks[chunks.len() - 1].record.path,
            format!(
                "it runs past frame {}, the end of the range asked for",
                want.1
            ),
        ));
    }
    Ok(())
}

/// Links (or copies) every chunk's frames into the sequence folder `partial`.
fn join_sequence(chunks: &[Chunk], partial: &Path, frames: (u64, u64)) -> Result<()> {
    if std::fs::symlink_metadata(partial).is_ok() {
        output::remove_sequence_folder(partial)?;
    }
    let format = if chunks[0].format == "tiff" {
        tincture_media::ImageFormat::Tiff16
    } else {
        tincture_media::ImageFormat::Png
    };
    tincture_media::ImageSequenceWriter::create(partial, format)?;
    let failed = |e: std::io::Error, what: &Path| Error::Output {
        path: partial.to_owned(),
        reason: format!("cannot place {}: {e}", what.display()),
    };
    for c in chunks {
        for f in &c.files {
            let Some(name) = f.file_name() else { continue };
            let to = partial.join(name);
            if std::fs::hard_link(f, &to).is_err() {
                std::fs::copy(f, &to).map_err(|e| failed(e, f))?;
                tincture_media::sync_file(&to).map_err(|e| failed(e, f))?;
            }
        }
    }
    let settings = std::fs::read(c_settings(&chunks[0].record.path))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if let Some(mut settings) = settings {
        settings["frames"] = serde_json::json!([frames.0, frames.1]);
        let file = partial.join(tincture_media::SEQUENCE_SETTINGS);
        std::fs::write(&file, settings.to_string()).map_err(|e| failed(e, &file))?;
    }
    Ok(())
}

fn c_settings(dir: &Path) -> PathBuf {
    dir.join(tincture_media::SEQUENCE_SETTINGS)
}
