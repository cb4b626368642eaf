//! The project file: everything an archivist does to one film (shots,
//! keyframes with painted hints, reference photos, per-shot settings), kept
//! as a versioned JSON document so work is never lost.
//!
//! Start at [`Project`]: [`Project::load`] reads, migrates and validates a
//! file; [`Project::save`] writes it atomically (a crash mid-save leaves the
//! previous file untouched). The schema written today is [`PROJECT_VERSION`];
//! a file from a newer Tincture is refused rather than silently truncated,
//! and an older one is stepped forward by [`migrate`].
//!
//! Paths inside the file are stored as given; relative ones are resolved
//! against the project file's folder with [`Project::resolve`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema version this build writes, and the newest it reads.
pub const PROJECT_VERSION: u32 = 1;

/// Highest accepted [`ShotSettings::saturation`] (1.0 leaves chroma as computed).
pub const SATURATION_MAX: f32 = 4.0;

/// Most points one stroke may hold. A painted stroke holds a few hundred; a
/// file with more was damaged or made to harm.
pub const MAX_STROKE_POINTS: usize = 100_000;

/// Most strokes one keyframe may hold.
pub const MAX_STROKES_PER_KEYFRAME: usize = 10_000;

/// Largest brush diameter, in pixels, a stroke may have (the painting tools
/// give 1 to 200).
pub const MAX_BRUSH_SIZE: f32 = 4096.0;

/// Largest film side, in pixels, a project may record (no film is larger;
/// FFmpeg's own decoders stop at 16384).
pub const MAX_FRAME_SIDE: u32 = 65_536;

/// Longest fingerprint accepted, in hex digits (Tincture writes 64).
pub const MAX_FINGERPRINT_LEN: usize = 128;

/// Largest project file read, in bytes. A real project with thousands of
/// keyframes stays far below; a larger file is refused before it is read.
pub const MAX_PROJECT_BYTES: u64 = 256 << 20;

/// At most this many problems are spelled out in an [`ProjectError::Invalid`] message.
const PROBLEMS_SHOWN: usize = 10;

// ---------------------------------------------------------------------------
// Errors

/// Everything that can go wrong reading, checking or writing a project.
/// Every message names the file (where there is one) and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file could not be read.
    #[error(
        "could not read the project {}: {source}; check that the file exists and that you may read it",
        .path.display()
    )]
    Read {
        /// The project file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file could not be written; any previous file at `path` is unchanged.
    #[error(
        "could not save the project to {}: {source}; the previous file, if any, is unchanged; \
         check that the folder exists, that you may write to it and that the disk has room",
        .path.display()
    )]
    Write {
        /// The project file that was being written.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not well-formed JSON (damaged, cut short, or edited by hand).
    #[error(
        "{} is not valid JSON: {detail} at line {line}, column {column}; {advice}",
        .path.display()
    )]
    Syntax {
        /// The project file.
        path: PathBuf,
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column of the first error.
        column: usize,
        /// What the parser found wrong.
        detail: String,
        /// What to do about it.
        advice: String,
    },
    /// The document has no top-level `"version"` key.
    #[error(
        "{} has no \"version\" key, so it is not a Tincture project (or it was damaged); \
         project files start with {{\"version\": {PROJECT_VERSION}, ...}}; {advice}",
        .path.display()
    )]
    MissingVersion {
        /// The project file.
        path: PathBuf,
        /// What to do about it.
        advice: String,
    },
    /// The `"version"` is not a schema number at all (zero, negative, text...).
    #[error(
        "{}: \"version\" is {found}, which is not a project schema (schemas are whole numbers \
         from 1 to {supported}); {advice}",
        .path.display()
    )]
    BadVersion {
        /// The project file.
        path: PathBuf,
        /// The value found, as JSON text.
        found: String,
        /// The newest schema this build reads.
        supported: u32,
        /// What to do about it.
        advice: String,
    },
    /// The file was written by a newer Tincture than this one.
    #[error(
        "{} was written by a newer Tincture (schema {found}); this build reads up to schema \
         {supported}; update Tincture",
        .path.display()
    )]
    NewerVersion {
        /// The project file.
        path: PathBuf,
        /// The file's schema.
        found: u64,
        /// The newest schema this build reads.
        supported: u32,
    },
    /// Well-formed JSON whose content does not fit the schema (a missing
    /// field, a number where text belongs...), or a migration step that failed.
    #[error(
        "{} does not match project schema {schema}: {detail}{}; {advice}",
        .path.display(),
        at_line(*.at)
    )]
    Schema {
        /// The project file.
        path: PathBuf,
        /// The schema the content was read as.
        schema: u32,
        /// What did not fit.
        detail: String,
        /// 1-based line and column, where known.
        at: Option<(usize, usize)>,
        /// What to do about it.
        advice: String,
    },
    /// The project parsed but contradicts itself or its film: see
    /// [`Project::validate`]. Each problem says what to do.
    #[error("{}", invalid_message(.path.as_deref(), .problems))]
    Invalid {
        /// The project file, when the project came from one.
        path: Option<PathBuf>,
        /// One sentence per problem, in file order.
        problems: Vec<String>,
    },
    /// The project could not be turned into JSON (a path that is not valid
    /// Unicode, a number that is not finite). Nothing was written.
    #[error(
        "could not save the project to {}: {detail}; nothing was written and the previous file, \
         if any, is unchanged",
        .path.display()
    )]
    Encode {
        /// The project file that was to be written.
        path: PathBuf,
        /// What could not be encoded.
        detail: String,
    },
}

/// Result with [`ProjectError`].
pub type Result<T, E = ProjectError> = std::result::Result<T, E>;

fn at_line(at: Option<(usize, usize)>) -> String {
    match at {
        Some((line, column)) => format!(" (line {line}, column {column})"),
        None => String::new(),
    }
}

fn invalid_message(path: Option<&Path>, problems: &[String]) -> String {
    let mut out = match path {
        Some(p) => format!("the project {} ", p.display()),
        None => "the project ".to_owned(),
    };
    match problems {
        [] => out.push_str("is invalid"),
        [one] => {
            out.push_str("is invalid: ");
            out.push_str(one);
        }
        many => {
            out.push_str(&format!("has {} problems: ", many.len()));
            out.push_str(&many[..many.len().min(PROBLEMS_SHOWN)].join("; "));
            if many.len() > PROBLEMS_SHOWN {
                out.push_str(&format!("; and {} more", many.len() - PROBLEMS_SHOWN));
            }
        }
    }
    out
}

/// Advice for a file that cannot be read as a project: point at the autosave
/// sidecar when there is one.
fn damaged_advice(path: &Path) -> String {
    let autosave = Project::autosave_path(path);
    if autosave.is_file() {
        format!(
            "an autosave exists at {}: open it, or restore the project from a backup",
            autosave.display()
        )
    } else {
        "restore the project from a backup, or correct the text by hand".to_owned()
    }
}

// ---------------------------------------------------------------------------
// The document

/// One film's colorization project, as stored on disk.
///
/// Invariants checked by [`Project::validate`]: `shots` are contiguous and
/// cover the film (or are empty: the whole film is then one shot);
/// `keyframes` are sorted by frame with no frame twice, and lie in the film.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Schema of this document: [`PROJECT_VERSION`] after [`Project::new`] or
    /// [`Project::load`].
    pub version: u32,
    /// The film this project colours.
    pub source: SourceRef,
    /// Shots in film order, contiguous and covering the film; empty when
    /// shots have not been detected (the whole film is then one shot).
    #[serde(default)]
    pub shots: Vec<ShotEntry>,
    /// Keyframes with painted hints or a reference image, sorted by frame.
    #[serde(default)]
    pub keyframes: Vec<Keyframe>,
    /// External reference photos (not frames of this film) that steer the
    /// model's colour prior.
    #[serde(default)]
    pub references: Vec<ReferencePhoto>,
    /// Settings for every shot without its own override.
    #[serde(default)]
    pub defaults: ShotSettings,
    /// The project's palette: hint colours the archivist keeps to paint
    /// with again (`#rrggbb`, sRGB), in the order they were added. Absent
    /// in files from before palettes, which load with an empty one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub palette: Vec<String>,
}

/// The film a project belongs to, with enough about it to notice when the
/// file on disk is not the one the work was done on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The film's path as given; a relative path resolves against the
    /// project file's folder ([`Project::resolve`]).
    pub path: PathBuf,
    /// File size in bytes (0 when unknown).
    #[serde(default)]
    pub size: u64,
    /// Hex digest of the first frames, computed by the engine (empty when
    /// not yet computed).
    #[serde(default)]
    pub fingerprint: String,
    /// Number of frames; frames are numbered `0..frame_count`.
    pub frame_count: u64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate as `[numerator, denominator]`, e.g. `[24000, 1001]`.
    pub rate: [u32; 2],
}

impl SourceRef {
    /// The last frame's number, or `None` for a film with no frames.
    pub fn last_frame(&self) -> Option<u64> {
        self.frame_count.checked_sub(1)
    }

    /// Frames per second, or 0 when the rate is unknown (denominator 0).
    pub fn fps(&self) -> f64 {
        if self.rate[1] == 0 {
            0.0
        } else {
            f64::from(self.rate[0]) / f64::from(self.rate[1])
        }
    }

    /// "frames 0–299", or "no frames at all", for messages.
    fn range_text(&self) -> String {
        match self.last_frame() {
            Some(last) => format!("frames 0–{last}"),
            None => "no frames at all".to_owned(),
        }
    }
}

/// One shot: an inclusive frame range with optional settings of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShotEntry {
    /// First frame of the shot.
    pub start: u64,
    /// Last frame of the shot (inclusive).
    pub end: u64,
    /// This shot's settings; `None` uses [`Project::defaults`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ShotSettings>,
}

impl ShotEntry {
    /// Whether `frame` lies in this shot.
    pub fn contains(&self, frame: u64) -> bool {
        (self.start..=self.end).contains(&frame)
    }
}

/// A frame the archivist has given colour information for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Keyframe {
    /// The frame number.
    pub frame: u64,
    /// Colour hints painted on the frame.
    #[serde(default)]
    pub strokes: Vec<Stroke>,
    /// A coloured version of this frame, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<KeyframeReference>,
}

impl Keyframe {
    /// An empty keyframe at `frame`.
    pub fn new(frame: u64) -> Self {
        Self {
            frame,
            ..Self::default()
        }
    }
}

/// A brush stroke of colour hint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stroke {
    /// Pixel coordinates `[x, y]` in the frame the stroke was painted on.
    pub points: Vec<[f32; 2]>,
    /// `"#rrggbb"` sRGB; only its chroma is used (the film's luma is kept).
    pub color: String,
    /// Brush diameter in pixels.
    pub size: f32,
    /// `[width, height]` of the frame the stroke was painted on.
    pub canvas: [u32; 2],
}

/// A coloured version of a keyframe, by kind. Stored with a `"kind"` tag so
/// later kinds can be added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyframeReference {
    /// An image of this very frame in colour: ground truth, another tool's
    /// colorized frame, a photograph of the scene.
    Image {
        /// The image's path; relative paths resolve against the project's folder.
        path: PathBuf,
    },
}

/// An external reference photo (not a frame of this film) that steers the
/// model's colour prior.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferencePhoto {
    /// The photo's path; relative paths resolve against the project's folder.
    pub path: PathBuf,
    /// Indices into [`Project::shots`] the photo applies to; empty means all
    /// shots.
    #[serde(default)]
    pub shots: Vec<usize>,
    /// How strongly it steers, 0 (not at all) to [`REFERENCE_WEIGHT_MAX`]; 1
    /// is the default (and what files without it mean).
    #[serde(default = "unit_weight", skip_serializing_if = "is_unit_weight")]
    pub weight: f32,
}

/// The strongest a reference photo may be weighted.
pub const REFERENCE_WEIGHT_MAX: f32 = 3.0;

fn unit_weight() -> f32 {
    1.0
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_unit_weight(w: &f32) -> bool {
    *w == 1.0
}

impl ReferencePhoto {
    /// A photo for `shots` (empty: every shot) at the default weight.
    pub fn new(path: PathBuf, shots: Vec<usize>) -> Self {
        Self {
            path,
            shots,
            weight: 1.0,
        }
    }

    /// Whether the photo applies to the shot with index `shot`.
    pub fn applies_to(&self, shot: usize) -> bool {
        self.shots.is_empty() || self.shots.contains(&shot)
    }
}

/// How one shot is coloured. Missing fields in a file take their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShotSettings {
    /// Chroma gain, 0 (gray) to [`SATURATION_MAX`]; 1 leaves colour as computed.
    pub saturation: f32,
    /// Chroma fades to zero below this luma.
    pub shadow_rolloff: Rolloff,
    /// Chroma fades to zero above this luma.
    pub highlight_rolloff: Rolloff,
    /// Temporal stabiliser strength, 0 (off) to 1 (strongest).
    pub stabiliser: f32,
    /// Whether the neural model's colour prior is used.
    pub model_prior: bool,
    /// Short side, in pixels, of the picture the model sees for this shot;
    /// `None` for the render's own choice (the export's, or the model's
    /// default). Larger resolves finer colour detail, at more time per frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_short_side: Option<u32>,
    /// The model that colours this shot: `builtin`, a user model's name, or
    /// a model file (manifest or ONNX); `None` for the render's own model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether, where motion loses the colour carried from the keyframes
    /// (fast motion, occlusion, things entering, a pan onto new ground),
    /// each frame is matched against a memory of the shot's coloured frames,
    /// keyframes and reference photos, before the model's colour fills in.
    /// Needs the model (its features are what is matched). Off in files
    /// that do not say, so older projects render as they did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub colour_memory: bool,
}

/// The smallest and largest render resolutions (short side, pixels) a shot
/// may ask of the model.
pub const RENDER_SHORT_SIDE: std::ops::RangeInclusive<u32> = 64..=2160;

impl Default for ShotSettings {
    fn default() -> Self {
        Self {
            saturation: 1.0,
            shadow_rolloff: Rolloff::shadows(),
            highlight_rolloff: Rolloff::highlights(),
            stabiliser: 0.6,
            model_prior: true,
            render_short_side: None,
            model: None,
            colour_memory: false,
        }
    }
}

/// A soft knee in luma beyond which chroma fades out, so deep shadows and
/// bright highlights stay neutral as they are on real film stock.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rolloff {
    /// Luma (0..1) where the fade ends: chroma is 0 beyond it.
    pub threshold: f32,
    /// Luma width of the soft knee (0..1); 0 is a hard cut.
    pub width: f32,
    /// Whether the roll-off is applied.
    pub enabled: bool,
}

impl Rolloff {
    /// The default shadow roll-off: chroma fades out below luma 0.08.
    pub fn shadows() -> Self {
        Self {
            threshold: 0.08,
            width: 0.10,
            enabled: true,
        }
    }

    /// The default highlight roll-off: chroma fades out above luma 0.92.
    pub fn highlights() -> Self {
        Self {
            threshold: 0.92,
            width: 0.08,
            enabled: true,
        }
    }
}

// ---------------------------------------------------------------------------
// Colour strings

/// Parses `"#rrggbb"` (either case) into sRGB bytes; `None` for anything else.
pub fn hex_to_rgb8(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// Formats sRGB bytes as `"#rrggbb"` (lower case), the form strokes store.
pub fn rgb8_to_hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

// ---------------------------------------------------------------------------
// Migration

/// One schema step: turns a document of schema `k` into schema `k + 1`, or
/// says why it cannot.
type Migration = fn(Value) -> std::result::Result<Value, String>;

/// `MIGRATIONS[k]` upgrades schema `k + 1` to `k + 2`. To introduce schema 2:
/// bump [`PROJECT_VERSION`], change the structs, and append one function here
/// that rewrites a schema-1 document into schema 2.
const MIGRATIONS: &[Migration] = &[];

const _: () = assert!(
    MIGRATIONS.len() + 1 == PROJECT_VERSION as usize,
    "one migration per schema step"
);

/// Steps a parsed project document from its own schema up to
/// [`PROJECT_VERSION`], setting `"version"` as it goes. `path` is only used
/// in messages.
///
/// # Errors
/// A document that is not a JSON object, has no `"version"`, has a version
/// that is not a schema number or is newer than this build reads, or that a
/// migration step cannot convert.
pub fn migrate(doc: Value, path: &Path) -> Result<Value> {
    migrate_with(doc, path, MIGRATIONS)
}

fn migrate_with(mut doc: Value, path: &Path, migrations: &[Migration]) -> Result<Value> {
    let current = migrations.len() as u64 + 1;
    let mut version = document_version(&doc, path, current)?;
    while version < current {
        let step = migrations[(version - 1) as usize];
        doc = step(doc).map_err(|detail| ProjectError::Schema {
            path: path.to_owned(),
            schema: version as u32,
            detail: format!("upgrading from schema {version} failed: {detail}"),
            at: None,
            advice: damaged_advice(path),
        })?;
        version += 1;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("version".to_owned(), Value::from(version));
        }
    }
    Ok(doc)
}

/// Reads and checks the document's `"version"` against `current`.
fn document_version(doc: &Value, path: &Path, current: u64) -> Result<u64> {
    let Some(obj) = doc.as_object() else {
        return Err(ProjectError::Schema {
            path: path.to_owned(),
            schema: current as u32,
            detail: "the top level is not a JSON object".to_owned(),
            at: None,
            advice: damaged_advice(path),
        });
    };
    let Some(found) = obj.get("version") else {
        return Err(ProjectError::MissingVersion {
            path: path.to_owned(),
            advice: damaged_advice(path),
        });
    };
    match found.as_u64() {
        Some(v) if v > current => Err(ProjectError::NewerVersion {
            path: path.to_owned(),
            found: v,
            supported: current as u32,
        }),
        Some(v) if v >= 1 => Ok(v),
        _ => Err(ProjectError::BadVersion {
            path: path.to_owned(),
            found: found.to_string(),
            supported: current as u32,
            advice: damaged_advice(path),
        }),
    }
}

// ---------------------------------------------------------------------------
// Loading and saving

impl Project {
    /// A fresh project for `source`: no shots, keyframes or references, and
    /// default settings.
    pub fn new(source: SourceRef) -> Self {
        Self {
            version: PROJECT_VERSION,
            source,
            shots: Vec::new(),
            keyframes: Vec::new(),
            references: Vec::new(),
            defaults: ShotSettings::default(),
            palette: Vec::new(),
        }
    }

    /// Reads a project file, migrates it to [`PROJECT_VERSION`] and
    /// [validates](Self::validate) it.
    ///
    /// # Errors
    /// Any [`ProjectError`] but `Write` and `Encode`; each names the file.
    ///
    /// Besides [`validate`](Self::validate), a loaded file's shot models
    /// must be registry names or files inside the project's own folder
    /// ([`model_path_problems`](Self::model_path_problems)): a file from
    /// elsewhere does not choose which code Tincture loads.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let project = Self::load_unvalidated(path)?;
        project.checked(path)
    }

    /// Reads and validates a project like [`load`](Self::load), but leaves
    /// shot models outside the project's folder to the caller, which asks
    /// the user first (the window does; see
    /// [`model_path_problems`](Self::model_path_problems)).
    ///
    /// # Errors
    /// As [`load`](Self::load), but for those models.
    pub fn load_asking_for_models(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let project = Self::load_unvalidated(path)?;
        match project.validate() {
            Ok(()) => Ok(project),
            Err(ProjectError::Invalid { problems, .. }) => Err(ProjectError::Invalid {
                path: Some(path.to_owned()),
                problems,
            }),
            Err(other) => Err(other),
        }
    }

    /// Reads a project from the bytes of a file, as [`load`](Self::load)
    /// does after reading it: parsed, migrated and validated. `path` is only
    /// used in messages and advice.
    ///
    /// # Errors
    /// As [`load`](Self::load), but never `Read`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        Self::parse_unvalidated(bytes, path)?.checked(path)
    }

    /// `self` if it passes [`validate`](Self::validate) and
    /// [`model_path_problems`](Self::model_path_problems), else every
    /// problem, naming the file at `path`.
    fn checked(self, path: &Path) -> Result<Self> {
        let mut problems = match self.validate() {
            Ok(()) => Vec::new(),
            Err(ProjectError::Invalid { problems, .. }) => problems,
            Err(other) => return Err(other),
        };
        problems.extend(self.model_path_problems());
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ProjectError::Invalid {
                path: Some(path.to_owned()),
                problems,
            })
        }
    }

    /// Like [`load`](Self::load) but without [`validate`](Self::validate),
    /// for repair tools that open a project to show and fix its problems
    /// (say, keyframes beyond the end of a film that was relinked).
    ///
    /// # Errors
    /// The file cannot be read, is not JSON, has a missing, bad or newer
    /// version, or does not fit the schema.
    pub fn load_unvalidated(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let read_error = |source| ProjectError::Read {
            path: path.to_owned(),
            source,
        };
        let size = fs::metadata(path).map_err(read_error)?.len();
        if size > MAX_PROJECT_BYTES {
            return Err(ProjectError::Schema {
                path: path.to_owned(),
                schema: PROJECT_VERSION,
                detail: format!(
                    "the file is {size} bytes; Tincture reads project files of at most {} MiB, \
                     far more than any real project needs",
                    MAX_PROJECT_BYTES >> 20
                ),
                at: None,
                advice: damaged_advice(path),
            });
        }
        let bytes = fs::read(path).map_err(read_error)?;
        Self::parse_unvalidated(&bytes, path)
    }

    /// Parses and migrates a project from the bytes of the file at `path`
    /// (used only in messages), without validating it.
    fn parse_unvalidated(bytes: &[u8], path: &Path) -> Result<Self> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| syntax_error(path, &e))?;
        let before = document_version(&doc, path, u64::from(PROJECT_VERSION))?;
        let schema_error = |e: serde_json::Error| ProjectError::Schema {
            path: path.to_owned(),
            schema: PROJECT_VERSION,
            at: (e.line() > 0).then(|| (e.line(), e.column())),
            detail: strip_position(&e),
            advice: damaged_advice(path),
        };
        if before == u64::from(PROJECT_VERSION) {
            // Already current: read from the text so errors carry line numbers.
            serde_json::from_slice(bytes).map_err(schema_error)
        } else {
            let doc = migrate(doc, path)?;
            serde_json::from_value(doc).map_err(schema_error)
        }
    }

    /// Writes the project as pretty JSON, atomically: the text goes to a
    /// temporary file in the same folder, which is flushed to disk and then
    /// renamed over `path` (and, on Unix, the folder is flushed too). A
    /// failure at any point leaves the previous file untouched and no
    /// temporary file behind.
    ///
    /// The project is not [validated](Self::validate) first, so work on a
    /// project with problems can still be saved.
    ///
    /// # Errors
    /// [`ProjectError::Encode`] for numbers that are not finite or paths that
    /// are not Unicode; [`ProjectError::Write`] for I/O failures.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let encode_error = |detail: String| ProjectError::Encode {
            path: path.to_owned(),
            detail,
        };
        let non_finite = self.non_finite_problems();
        if !non_finite.is_empty() {
            return Err(encode_error(non_finite.join("; ")));
        }
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| encode_error(e.to_string()))?;
        text.push(b'\n');
        write_file_atomically(path, &text).map_err(|source| ProjectError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The autosave sidecar for a project file: `reel1.json` →
    /// `reel1.autosave.json`, `reel1.tincture` → `reel1.tincture.autosave.json`,
    /// in the same folder.
    pub fn autosave_path(path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let base = if is_json {
            path.file_stem()
        } else {
            path.file_name()
        };
        let mut name = base.unwrap_or_else(|| "project".as_ref()).to_owned();
        name.push(".autosave.json");
        path.with_file_name(name)
    }

    /// Resolves a path stored in the project (`p`) against the folder of the
    /// project file at `project_path`; absolute paths are returned unchanged.
    pub fn resolve(&self, project_path: &Path, p: &Path) -> PathBuf {
        if p.is_absolute() {
            return p.to_owned();
        }
        match project_path.parent() {
            Some(dir) => dir.join(p),
            None => p.to_owned(),
        }
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn syntax_error(path: &Path, e: &serde_json::Error) -> ProjectError {
    let mut detail = strip_position(e);
    if e.is_eof() {
        detail.push_str(" (the file ends early: it was probably cut short while being written)");
    }
    ProjectError::Syntax {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        detail,
        advice: damaged_advice(path),
    }
}

/// Distinguishes concurrent saves from one process (autosave and a manual
/// save may overlap).
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, flushed to disk, renamed over `path`, and the folder flushed.
/// On failure the previous file is untouched and no temporary is left.
///
/// # Errors
/// Any I/O failure on the way.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp_path, mut file) = create_temp(dir, name)?;
    let written = (|| {
        if let Ok(meta) = fs::metadata(path) {
            // Keep the permissions of the file being replaced.
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp_path, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    sync_dir(dir)
}

fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..16 {
        let n = SAVE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{pid}-{n}"));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            // A leftover from a crashed process with the same id: try another name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// Flushes the folder entry of a rename to disk, so a power cut after a
/// save cannot bring back the old file.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot sync a folder; the rename itself is done.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

// ---------------------------------------------------------------------------
// Validation

impl Project {
    /// Checks the project against itself and its own [`source`](Self::source):
    /// source geometry, shot ranges (in order, contiguous, inside the film),
    /// keyframes (sorted, unique, inside the film, strokes painted on frames
    /// of the film's size, valid colours, finite numbers), references, and
    /// settings ranges.
    ///
    /// # Errors
    /// [`ProjectError::Invalid`] listing every problem found, each with what
    /// to do; its `path` is `None` (load fills it in).
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.version != PROJECT_VERSION {
            problems.push(format!(
                "the project says schema {} but holds schema {PROJECT_VERSION} data; \
                 set \"version\" to {PROJECT_VERSION}",
                self.version
            ));
        }
        self.check_source(&mut problems);
        self.check_shots(&mut problems);
        self.check_keyframes(&mut problems);
        self.check_references(&mut problems);
        for c in &self.palette {
            if hex_to_rgb8(c).is_none() {
                problems.push(format!(
                    "palette colour {c:?} is not a #rrggbb colour; correct it or remove it"
                ));
            }
        }
        check_settings("the default settings", &self.defaults, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ProjectError::Invalid {
                path: None,
                problems,
            })
        }
    }

    fn check_source(&self, problems: &mut Vec<String>) {
        let s = &self.source;
        if s.path.as_os_str().is_empty() {
            problems.push("the project names no source film; relink it to the film".to_owned());
        }
        if s.width == 0 || s.height == 0 {
            problems.push(format!(
                "the film is recorded as {}x{} pixels; relink the project to the film so its size is read again",
                s.width, s.height
            ));
        }
        if s.width > MAX_FRAME_SIDE || s.height > MAX_FRAME_SIDE {
            problems.push(format!(
                "source.width/height: the film is recorded as {}x{} pixels, larger than any film \
                 ({MAX_FRAME_SIDE} pixels a side at most); relink the project to the film so its \
                 size is read again",
                s.width, s.height
            ));
        }
        if s.fingerprint.len() > MAX_FINGERPRINT_LEN
            || !s.fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let shown: String = s.fingerprint.chars().take(24).collect();
            problems.push(format!(
                "source.fingerprint: {shown:?}{} is not a fingerprint (hex digits, at most \
                 {MAX_FINGERPRINT_LEN}); relink the project to the film so it is computed again",
                if shown.len() < s.fingerprint.len() {
                    "..."
                } else {
                    ""
                }
            ));
        }
        if s.frame_count == 0 {
            problems.push(
                "the film is recorded as having no frames; relink the project to the film so its length is read again"
                    .to_owned(),
            );
        }
        if s.rate[0] == 0 || s.rate[1] == 0 {
            problems.push(format!(
                "the film's frame rate {}/{} is not a rate; relink the project to the film so its rate is read again",
                s.rate[0], s.rate[1]
            ));
        }
    }

    fn check_shots(&self, problems: &mut Vec<String>) {
        let film = self.source.range_text();
        let last = self.source.last_frame();
        let redetect = "detect shots again or correct the shot list";
        for shot in &self.shots {
            let (a, b) = (shot.start, shot.end);
            if a > b {
                problems.push(format!(
                    "the shot at frames {a}–{b} runs backwards; {redetect}"
                ));
            }
            if last.is_none_or(|last| a.max(b) > last) {
                problems.push(format!(
                    "the shot at frames {a}–{b} lies outside the film ({film}); {redetect}"
                ));
            }
            if let Some(settings) = &shot.settings {
                check_settings(&format!("the shot at frames {a}–{b}"), settings, problems);
            }
        }
        for pair in self.shots.windows(2) {
            let (p, n) = (&pair[0], &pair[1]);
            if n.start < p.start {
                problems.push(format!(
                    "shots are out of order: frames {}–{} come after frames {}–{}; {redetect}",
                    n.start, n.end, p.start, p.end
                ));
            } else if n.start <= p.end {
                problems.push(format!(
                    "the shots at frames {}–{} and {}–{} overlap; {redetect}",
                    p.start, p.end, n.start, n.end
                ));
            } else if n.start > p.end + 1 {
                problems.push(format!(
                    "frames {}–{} belong to no shot; {redetect}",
                    p.end + 1,
                    n.start - 1
                ));
            }
        }
        if let (Some(first), Some(last_shot), Some(last)) =
            (self.shots.first(), self.shots.last(), last)
        {
            if first.start > 0 && first.start <= last {
                problems.push(format!(
                    "frames 0–{} belong to no shot; {redetect}",
                    first.start - 1
                ));
            }
            if last_shot.end < last && last_shot.start <= last_shot.end {
                problems.push(format!(
                    "frames {}–{last} belong to no shot; {redetect}",
                    last_shot.end + 1
                ));
            }
        }
    }

    fn check_keyframes(&self, problems: &mut Vec<String>) {
        let s = &self.source;
        for pair in self.keyframes.windows(2) {
            let (p, n) = (pair[0].frame, pair[1].frame);
            if n == p {
                problems.push(format!(
                    "frame {n} has two keyframes; merge their strokes into one and delete the other"
                ));
            } else if n < p {
                problems.push(format!(
                    "keyframes are out of order (frame {n} comes after frame {p}); \
                     sort the \"keyframes\" list by frame"
                ));
            }
        }
        for kf in &self.keyframes {
            let f = kf.frame;
            if f >= s.frame_count {
                problems.push(format!(
                    "keyframe at frame {f} lies outside the film ({}); \
                     remove it or relink the project to the right film",
                    s.range_text()
                ));
            }
            if let Some(stroke) = kf
                .strokes
                .iter()
                .find(|st| st.canvas != [s.width, s.height])
            {
                problems.push(format!(
                    "keyframe {f}: a stroke was painted on a {}x{} frame but the film is {}x{}; \
                     relink the project to the film it was made for, or repaint this keyframe",
                    stroke.canvas[0], stroke.canvas[1], s.width, s.height
                ));
            }
            if kf.strokes.len() > MAX_STROKES_PER_KEYFRAME {
                problems.push(format!(
                    "keyframes[frame {f}].strokes: {} strokes, more than the {MAX_STROKES_PER_KEYFRAME} \
                     Tincture accepts on one keyframe (painting never makes that many); the file \
                     is damaged: restore it from a backup or delete this keyframe's strokes",
                    kf.strokes.len()
                ));
            }
            for (i, stroke) in kf.strokes.iter().enumerate() {
                if hex_to_rgb8(&stroke.color).is_none() {
                    let shown: String = stroke.color.chars().take(24).collect();
                    problems.push(format!(
                        "keyframe {f}, stroke {i}: colour {shown:?} is not of the form \"#rrggbb\"; \
                         pick the stroke's colour again",
                    ));
                }
                if stroke.size.is_finite() && stroke.size <= 0.0 {
                    problems.push(format!(
                        "keyframe {f}, stroke {i}: brush size {} is not positive; repaint the stroke",
                        stroke.size
                    ));
                } else if stroke.size.is_finite() && stroke.size > MAX_BRUSH_SIZE {
                    problems.push(format!(
                        "keyframe {f}, stroke {i}: brush size {} px is larger than the \
                         {MAX_BRUSH_SIZE} px Tincture accepts; repaint the stroke",
                        stroke.size
                    ));
                }
                stroke_point_problems(f, i, stroke, problems);
            }
            if let Some(KeyframeReference::Image { path }) = &kf.reference
                && path.as_os_str().is_empty()
            {
                problems.push(format!(
                    "keyframe {f}: its reference image has an empty path; choose the image again"
                ));
            }
        }
        problems.extend(self.keyframe_non_finite());
    }

    fn check_references(&self, problems: &mut Vec<String>) {
        let shot_count = self.shots.len().max(1);
        for r in &self.references {
            if r.path.as_os_str().is_empty() {
                problems.push(
                    "a reference photo has an empty path; choose the photo again or remove it"
                        .to_owned(),
                );
            }
            if !(0.0..=REFERENCE_WEIGHT_MAX).contains(&r.weight) {
                problems.push(format!(
                    "reference photo {} has weight {}; give a weight from 0 to {REFERENCE_WEIGHT_MAX}",
                    r.path.display(),
                    r.weight
                ));
            }
            for &i in &r.shots {
                if i >= shot_count {
                    problems.push(format!(
                        "reference photo {} names shot {i}, but the project has {shot_count} \
                         shot(s), numbered from 0; choose the photo's shots again",
                        r.path.display()
                    ));
                }
            }
        }
    }

    /// Shot models that name a file outside the project's own folder: an
    /// absolute path, or one whose `..` climbs out of it. A shot's model is
    /// either a name the model registry resolves (`builtin`, a user model)
    /// or a manifest or ONNX file beside the project, so opening a project
    /// from elsewhere never makes Tincture load code from an arbitrary
    /// place. [`load`](Self::load) checks this; [`validate`](Self::validate)
    /// does not, so the window can hold a model the user picked from
    /// anywhere while they work.
    pub fn model_path_problems(&self) -> Vec<String> {
        let settings = std::iter::once(("the default settings".to_owned(), &self.defaults)).chain(
            self.shots.iter().enumerate().filter_map(|(i, s)| {
                let label = format!("shot {} (frames {}–{})", i + 1, s.start, s.end);
                s.settings.as_ref().map(|st| (label, st))
            }),
        );
        let mut problems = Vec::new();
        for (label, s) in settings {
            let Some(model) = s.model.as_deref() else {
                continue;
            };
            if !model_stays_in_project(model) {
                problems.push(format!(
                    "{label}: model {model:?} is a file outside the project's folder; Tincture \
                     loads a shot's model only by name (builtin, or a model installed in \
                     Tincture's models folder) or from the project's own folder: copy the model \
                     there and name it by a path relative to the project (say \"models/m.json\"), \
                     or install it and name it"
                ));
            }
        }
        problems
    }

    /// Numbers that JSON cannot hold; checked by both `validate` and `save`.
    fn non_finite_problems(&self) -> Vec<String> {
        let mut problems = self.keyframe_non_finite();
        let settings = std::iter::once(("the default settings".to_owned(), &self.defaults)).chain(
            self.shots.iter().filter_map(|s| {
                let label = format!("the shot at frames {}–{}", s.start, s.end);
                s.settings.as_ref().map(|st| (label, st))
            }),
        );
        for (label, s) in settings {
            if settings_numbers(s).iter().any(|(_, v)| !v.is_finite()) {
                problems.push(format!("{label} hold a number that is not finite"));
            }
        }
        problems
    }

    fn keyframe_non_finite(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for kf in &self.keyframes {
            for (i, stroke) in kf.strokes.iter().enumerate() {
                let bad_point = stroke.points.iter().flatten().any(|v| !v.is_finite());
                if bad_point || !stroke.size.is_finite() {
                    problems.push(format!(
                        "keyframe {}, stroke {i}: a coordinate or the brush size is not a finite \
                         number; repaint the stroke",
                        kf.frame
                    ));
                }
            }
        }
        problems
    }
}

/// How far, in pixels, a stroke's points may lie outside its canvas: the
/// canvas's larger side. The painting tools keep points inside the frame;
/// this leaves room for strokes written by scripts that overshoot, and
/// refuses coordinates no frame could mean.
fn stroke_margin(canvas: [u32; 2]) -> f32 {
    canvas[0].max(canvas[1]) as f32
}

/// Problems with the points of stroke `i` of the keyframe at `frame`: too
/// many, or lying far outside the canvas (non-finite ones are reported by
/// `keyframe_non_finite`).
fn stroke_point_problems(frame: u64, i: usize, stroke: &Stroke, problems: &mut Vec<String>) {
    if stroke.points.len() > MAX_STROKE_POINTS {
        problems.push(format!(
            "keyframe {frame}, stroke {i}: points: {} points, more than the {MAX_STROKE_POINTS} \
             Tincture accepts in one stroke (painting never makes that many); the file is \
             damaged: restore it from a backup or delete the stroke",
            stroke.points.len()
        ));
        return;
    }
    let [w, h] = stroke.canvas.map(|v| v as f32);
    let m = stroke_margin(stroke.canvas);
    let outside = stroke.points.iter().position(|&[x, y]| {
        x.is_finite() && y.is_finite() && !((-m..=w + m).contains(&x) && (-m..=h + m).contains(&y))
    });
    if let Some(j) = outside {
        let [x, y] = stroke.points[j];
        problems.push(format!(
            "keyframe {frame}, stroke {i}: points[{j}] ({x}, {y}) lies far outside the {}x{} \
             canvas (more than {m} px beyond its edge); repaint the stroke",
            stroke.canvas[0], stroke.canvas[1]
        ));
    }
}

/// Whether a shot's model text stays inside the project's folder: a plain
/// name, or a relative path that never climbs above its start.
pub fn model_stays_in_project(model: &str) -> bool {
    use std::path::Component;
    // Both separators count, whatever the platform, so a file written on
    // Windows is judged the same here.
    let unified = model.replace('\\', "/");
    let path = Path::new(&unified);
    if path.is_absolute() || unified.starts_with('/') || unified.contains(':') {
        return false;
    }
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn settings_numbers(s: &ShotSettings) -> [(&'static str, f32); 6] {
    [
        ("saturation", s.saturation),
        ("stabiliser strength", s.stabiliser),
        ("shadow roll-off threshold", s.shadow_rolloff.threshold),
        ("shadow roll-off width", s.shadow_rolloff.width),
        (
            "highlight roll-off threshold",
            s.highlight_rolloff.threshold,
        ),
        ("highlight roll-off width", s.highlight_rolloff.width),
    ]
}

fn check_settings(label: &str, s: &ShotSettings, problems: &mut Vec<String>) {
    for (name, v) in settings_numbers(s) {
        let max = if name == "saturation" {
            SATURATION_MAX
        } else {
            1.0
        };
        if !v.is_finite() {
            problems.push(format!(
                "{label}: the {name} is not a finite number; set it again"
            ));
        } else if !(0.0..=max).contains(&v) {
            problems.push(format!(
                "{label}: the {name} is {v}, outside 0–{max}; set it within that range"
            ));
        }
    }
    if s.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        problems.push(format!(
            "{label}: the model is named by an empty text; choose a model or the render's own"
        ));
    }
    if let Some(side) = s.render_short_side
        && !RENDER_SHORT_SIDE.contains(&side)
    {
        problems.push(format!(
            "{label}: the render resolution is {side} px, outside {}–{} px; choose another",
            RENDER_SHORT_SIDE.start(),
            RENDER_SHORT_SIDE.end()
        ));
    }
    let (sh, hi) = (&s.shadow_rolloff, &s.highlight_rolloff);
    if sh.enabled && hi.enabled && sh.threshold >= hi.threshold {
        problems.push(format!(
            "{label}: the shadow roll-off ({}) is not below the highlight roll-off ({}), so no \
             tone keeps its colour; lower the shadow threshold or raise the highlight one",
            sh.threshold, hi.threshold
        ));
    }
}

// ---------------------------------------------------------------------------
// Queries and edits

impl Project {
    /// Index into [`shots`](Self::shots) of the shot holding `frame`, or
    /// `None` when there are no shots or the frame falls in no shot.
    pub fn shot_index(&self, frame: u64) -> Option<usize> {
        let i = self.shots.partition_point(|s| s.start <= frame);
        let candidate = i.checked_sub(1)?;
        self.shots[candidate].contains(frame).then_some(candidate)
    }

    /// The inclusive frame range of the shot holding `frame`: the whole film
    /// when there are no shots. In a project that fails validation, a frame
    /// in no shot gets the gap between its neighbouring shots.
    pub fn shot_of(&self, frame: u64) -> (u64, u64) {
        if let Some(i) = self.shot_index(frame) {
            let s = &self.shots[i];
            return (s.start, s.end);
        }
        let i = self.shots.partition_point(|s| s.start <= frame);
        let lo = i
            .checked_sub(1)
            .map_or(0, |p| self.shots[p].end.saturating_add(1));
        let hi = self.shots.get(i).map_or_else(
            || self.source.last_frame().unwrap_or(0),
            |next| next.start.saturating_sub(1),
        );
        (lo.min(frame), hi.max(frame))
    }

    /// The settings that apply at `frame`: its shot's override, else
    /// [`defaults`](Self::defaults).
    pub fn settings_for(&self, frame: u64) -> &ShotSettings {
        self.shot_index(frame)
            .and_then(|i| self.shots[i].settings.as_ref())
            .unwrap_or(&self.defaults)
    }

    /// Keyframes with `start <= frame <= end`, in frame order.
    pub fn keyframes_in(&self, start: u64, end: u64) -> &[Keyframe] {
        let lo = self.keyframes.partition_point(|k| k.frame < start);
        let hi = self.keyframes.partition_point(|k| k.frame <= end);
        self.keyframes.get(lo..hi).unwrap_or(&[])
    }

    /// The keyframe at `frame`, if any.
    pub fn keyframe(&self, frame: u64) -> Option<&Keyframe> {
        self.keyframe_position(frame)
            .ok()
            .map(|i| &self.keyframes[i])
    }

    /// The keyframe at `frame`, created empty (in order) if there is none.
    pub fn add_keyframe(&mut self, frame: u64) -> &mut Keyframe {
        let i = match self.keyframe_position(frame) {
            Ok(i) => i,
            Err(i) => {
                self.keyframes.insert(i, Keyframe::new(frame));
                i
            }
        };
        &mut self.keyframes[i]
    }

    /// Puts `keyframe` in its place by frame, replacing and returning any
    /// keyframe already at that frame.
    pub fn upsert_keyframe(&mut self, keyframe: Keyframe) -> Option<Keyframe> {
        match self.keyframe_position(keyframe.frame) {
            Ok(i) => Some(std::mem::replace(&mut self.keyframes[i], keyframe)),
            Err(i) => {
                self.keyframes.insert(i, keyframe);
                None
            }
        }
    }

    /// Removes and returns the keyframe at `frame`, if any.
    pub fn remove_keyframe(&mut self, frame: u64) -> Option<Keyframe> {
        let i = self.keyframe_position(frame).ok()?;
        Some(self.keyframes.remove(i))
    }

    /// Reference photos that apply to the shot holding `frame`.
    pub fn references_for(&self, frame: u64) -> impl Iterator<Item = &ReferencePhoto> {
        let shot = self.shot_index(frame).unwrap_or(0);
        self.references.iter().filter(move |r| r.applies_to(shot))
    }

    fn keyframe_position(&self, frame: u64) -> std::result::Result<usize, usize> {
        self.keyframes.binary_search_by_key(&frame, |k| k.frame)
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fresh, empty folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "tincture-project-{}-{name}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn source() -> SourceRef {
        SourceRef {
            path: PathBuf::from("reel1.mkv"),
            size: 123_456,
            fingerprint: "ab12".to_owned(),
            frame_count: 300,
            width: 1280,
            height: 720,
            rate: [24000, 1001],
        }
    }

    fn stroke(color: &str) -> Stroke {
        Stroke {
            points: vec![[10.0, 20.0], [30.5, 40.25]],
            color: color.to_owned(),
            size: 12.0,
            canvas: [1280, 720],
        }
    }

    /// A valid project with every kind of content.
    fn full_project() -> Project {
        let mut p = Project::new(source());
        p.shots = vec![
            ShotEntry {
                start: 0,
                end: 99,
                settings: None,
            },
            ShotEntry {
                start: 100,
                end: 199,
                settings: Some(ShotSettings {
                    saturation: 1.5,
                    model_prior: false,
                    ..ShotSettings::default()
                }),
            },
            ShotEntry {
                start: 200,
                end: 299,
                settings: None,
            },
        ];
        p.add_keyframe(12).strokes.push(stroke("#a0b0c0"));
        p.upsert_keyframe(Keyframe {
            frame: 150,
            strokes: vec![stroke("#FF0000")],
            reference: Some(KeyframeReference::Image {
                path: PathBuf::from("refs/frame150.png"),
            }),
        });
        p.references.push(ReferencePhoto::new(
            PathBuf::from("/archive/photos/street.jpg"),
            vec![1, 2],
        ));
        p
    }

    fn problems(p: &Project) -> Vec<String> {
        match p.validate() {
            Err(ProjectError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn assert_problem(p: &Project, needle: &str) {
        let found = problems(p);
        assert!(
            found.iter().any(|m| m.contains(needle)),
            "no problem containing {needle:?} in {found:#?}"
        );
    }

    #[test]
    fn project_validate_refuses_hostile_numbers_and_counts() {
        let mut p = full_project();
        p.keyframes[0].strokes[0].points[1] = [1e30, 5.0];
        assert_problem(
            &p,
            "keyframe 12, stroke 0: points[1] (1000000000000000000000000000000, 5) lies far outside the 1280x720 canvas",
        );
        // Within the margin (the canvas's larger side) is fine.
        p.keyframes[0].strokes[0].points[1] = [-1279.0, 2000.0];
        p.validate().unwrap();

        let mut p = full_project();
        p.keyframes[0].strokes[0].size = 1e9;
        assert_problem(&p, "brush size 1000000000 px is larger than the 4096 px");

        let mut p = full_project();
        p.keyframes[0].strokes[0].points = vec![[1.0, 1.0]; MAX_STROKE_POINTS + 1];
        assert_problem(&p, "100001 points, more than the 100000");

        let mut p = full_project();
        p.keyframes[0].strokes = vec![stroke("#102030"); MAX_STROKES_PER_KEYFRAME + 1];
        assert_problem(&p, "10001 strokes, more than the 10000");

        let mut p = full_project();
        p.source.fingerprint = "abcdéf0123456789".to_owned();
        assert_problem(
            &p,
            "source.fingerprint: \"abcdéf0123456789\" is not a fingerprint",
        );
        p.source.fingerprint = "a".repeat(MAX_FINGERPRINT_LEN + 1);
        assert_problem(&p, "source.fingerprint");
        p.source.fingerprint = String::new();
        p.validate().unwrap();

        let mut p = full_project();
        p.source.width = u32::MAX;
        assert_problem(&p, "source.width/height");
    }

    #[test]
    fn project_load_refuses_models_outside_its_folder() {
        let dir = TempDir::new("models");
        let path = dir.join("film.json");
        for (model, ok) in [
            ("builtin", true),
            ("sepia-v2", true),
            ("models/m.json", true),
            ("./m.onnx", true),
            ("models/../m.onnx", true),
            ("/opt/evil/m.onnx", false),
            ("../m.json", false),
            ("models/../../m.json", false),
            ("..\\m.onnx", false),
            ("C:\\models\\m.onnx", false),
        ] {
            let mut p = full_project();
            p.shots[1].settings.as_mut().unwrap().model = Some(model.to_owned());
            // The window may hold any model while the user works.
            p.validate().unwrap();
            p.save(&path).unwrap();
            match Project::load(&path) {
                Ok(_) => assert!(ok, "{model} should be refused"),
                Err(e) => {
                    assert!(!ok, "{model} should load: {e}");
                    let msg = e.to_string();
                    assert!(msg.contains("film.json"), "{msg}");
                    assert!(msg.contains("shot 2 (frames 100–199)"), "{msg}");
                    assert!(msg.contains("copy the model there"), "{msg}");
                }
            }
        }
        let mut p = full_project();
        p.defaults.model = Some("/tmp/m.onnx".to_owned());
        assert!(p.model_path_problems()[0].starts_with("the default settings"));
    }

    #[test]
    fn project_load_refuses_a_huge_file_before_reading_it() {
        let dir = TempDir::new("huge");
        let path = dir.join("film.json");
        let f = File::create(&path).unwrap();
        f.set_len(MAX_PROJECT_BYTES + 1).unwrap();
        let msg = Project::load(&path).unwrap_err().to_string();
        assert!(msg.contains("film.json"), "{msg}");
        assert!(msg.contains("at most 256 MiB"), "{msg}");
    }

    #[test]
    fn project_round_trips_through_save_and_load() {
        let dir = TempDir::new("roundtrip");
        let path = dir.join("film.json");
        let p = full_project();
        p.validate().unwrap();
        p.save(&path).unwrap();
        let back = Project::load(&path).unwrap();
        assert_eq!(back, p);
        // Stable output: saving again yields the same bytes.
        let first = fs::read(&path).unwrap();
        back.save(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);
        let text = String::from_utf8(first).unwrap();
        assert!(
            text.starts_with("{\n  \"version\": 1,\n  \"source\""),
            "{text}"
        );
        assert!(text.contains("\"kind\": \"image\""), "{text}");
    }

    #[test]
    fn project_save_leaves_no_temp_files_and_replaces_existing() {
        let dir = TempDir::new("atomic");
        let path = dir.join("film.json");
        fs::write(&path, "old contents").unwrap();
        let p = full_project();
        p.save(&path).unwrap();
        assert_eq!(dir.names(), vec!["film.json".to_owned()]);
        assert_eq!(Project::load(&path).unwrap(), p);

        let mut q = p.clone();
        q.remove_keyframe(12).unwrap();
        q.save(&path).unwrap();
        assert_eq!(Project::load(&path).unwrap(), q);
        assert_eq!(dir.names(), vec!["film.json".to_owned()]);
    }

    #[test]
    fn project_save_into_missing_folder_fails_cleanly() {
        let dir = TempDir::new("missing");
        let path = dir.join("no-such-folder").join("film.json");
        let err = full_project().save(&path).unwrap_err();
        assert!(matches!(err, ProjectError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-folder"), "{err}");
        assert!(dir.names().is_empty());
    }

    #[test]
    fn project_failed_save_keeps_the_old_file() {
        let dir = TempDir::new("keep");
        let path = dir.join("film.json");
        let good = full_project();
        good.save(&path).unwrap();
        let before = fs::read(&path).unwrap();

        // Unencodable: fails before touching the disk.
        let mut bad = good.clone();
        bad.defaults.saturation = f32::NAN;
        let err = bad.save(&path).unwrap_err();
        assert!(matches!(err, ProjectError::Encode { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);

        // Fails at the rename: the target is a folder holding a file.
        let blocked = dir.join("blocked.json");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("keep"), "x").unwrap();
        let err = good.save(&blocked).unwrap_err();
        assert!(matches!(err, ProjectError::Write { .. }), "{err:?}");
        assert!(blocked.join("keep").is_file());

        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(
            dir.names(),
            vec!["blocked.json".to_owned(), "film.json".to_owned()]
        );
    }

    #[test]
    fn project_concurrent_saves_do_not_collide() {
        let dir = TempDir::new("concurrent");
        let path = dir.join("film.json");
        let p = full_project();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| p.save(&path).unwrap());
            }
        });
        assert_eq!(Project::load(&path).unwrap(), p);
        assert_eq!(dir.names(), vec!["film.json".to_owned()]);
    }

    #[test]
    fn project_minimal_schema_1_file_loads_with_defaults() {
        let dir = TempDir::new("minimal");
        let path = dir.join("min.json");
        fs::write(
            &path,
            r#"{"version": 1,
                "source": {"path": "reel1.mkv", "frame_count": 300, "width": 1280,
                           "height": 720, "rate": [24, 1]},
                "some_future_key": {"ignored": true}}"#,
        )
        .unwrap();
        let p = Project::load(&path).unwrap();
        assert_eq!(p.version, PROJECT_VERSION);
        assert!(p.shots.is_empty() && p.keyframes.is_empty() && p.references.is_empty());
        assert_eq!(p.defaults, ShotSettings::default());
        assert_eq!(p.source.fingerprint, "");
        assert_eq!(p.shot_of(123), (0, 299));
    }

    #[test]
    fn project_partial_settings_take_defaults() {
        let dir = TempDir::new("partial");
        let path = dir.join("p.json");
        fs::write(
            &path,
            r#"{"version": 1,
                "source": {"path": "a.mkv", "frame_count": 10, "width": 4, "height": 4, "rate": [25, 1]},
                "defaults": {"saturation": 0.5}}"#,
        )
        .unwrap();
        let p = Project::load(&path).unwrap();
        assert_eq!(p.defaults.saturation, 0.5);
        assert_eq!(p.defaults.stabiliser, ShotSettings::default().stabiliser);
        assert_eq!(p.defaults.shadow_rolloff, Rolloff::shadows());
    }

    #[test]
    fn project_from_newer_tincture_is_refused() {
        let dir = TempDir::new("newer");
        let path = dir.join("new.json");
        fs::write(&path, r#"{"version": 99, "source": {"whatever": 1}}"#).unwrap();
        let err = Project::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ProjectError::NewerVersion { found: 99, .. }),
            "{err:?}"
        );
        assert!(msg.contains("new.json"), "{msg}");
        assert!(
            msg.contains(
                "was written by a newer Tincture (schema 99); this build reads up to schema 1; update Tincture"
            ),
            "{msg}"
        );
    }

    #[test]
    fn project_without_version_is_refused() {
        let dir = TempDir::new("noversion");
        let path = dir.join("nov.json");
        fs::write(&path, r#"{"source": {"path": "a.mkv"}}"#).unwrap();
        let err = Project::load(&path).unwrap_err();
        assert!(
            matches!(err, ProjectError::MissingVersion { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no \"version\" key"), "{err}");

        fs::write(&path, r#"{"version": "one"}"#).unwrap();
        let err = Project::load(&path).unwrap_err();
        assert!(matches!(err, ProjectError::BadVersion { .. }), "{err:?}");

        fs::write(&path, r#"[1, 2]"#).unwrap();
        let err = Project::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn project_malformed_json_error_names_line_and_autosave() {
        let dir = TempDir::new("malformed");
        let path = dir.join("bad.json");
        fs::write(&path, "{\n  \"version\": 1,\n  \"source\": {,\n}\n").unwrap();
        let err = Project::load(&path).unwrap_err();
        match &err {
            ProjectError::Syntax { line, .. } => assert_eq!(*line, 3),
            other => panic!("expected Syntax, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("bad.json") && msg.contains("line 3"), "{msg}");
        assert!(msg.contains("backup"), "{msg}");

        // With an autosave beside it, the message points there.
        fs::write(Project::autosave_path(&path), "{}").unwrap();
        let msg = Project::load(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.autosave.json"), "{msg}");

        // Cut short mid-write.
        fs::write(&path, "{\n  \"version\": 1,\n  \"sour").unwrap();
        let msg = Project::load(&path).unwrap_err().to_string();
        assert!(msg.contains("cut short"), "{msg}");
    }

    #[test]
    fn project_schema_mismatch_names_line() {
        let dir = TempDir::new("schema");
        let path = dir.join("s.json");
        fs::write(
            &path,
            "{\"version\": 1,\n\"source\": {\"path\": \"a.mkv\", \"frame_count\": \"many\",\n\
             \"width\": 4, \"height\": 4, \"rate\": [25, 1]}}",
        )
        .unwrap();
        let err = Project::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                ProjectError::Schema {
                    at: Some((2, _)),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn project_missing_file_error_names_it() {
        let dir = TempDir::new("absent");
        let path = dir.join("absent.json");
        let err = Project::load(&path).unwrap_err();
        assert!(matches!(err, ProjectError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.json"), "{err}");
    }

    #[test]
    fn project_load_reports_validation_with_path() {
        let dir = TempDir::new("invalid");
        let path = dir.join("inv.json");
        let mut p = full_project();
        p.add_keyframe(500);
        p.save(&path).unwrap();
        let err = Project::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("inv.json") && msg.contains("frame 500"),
            "{msg}"
        );
        // Repair tools can still open it.
        assert_eq!(Project::load_unvalidated(&path).unwrap(), p);
    }

    #[test]
    fn project_migration_steps_each_schema_in_turn() {
        fn one_to_two(mut v: Value) -> std::result::Result<Value, String> {
            v["renamed"] = v["old"].take();
            Ok(v)
        }
        fn two_to_three(mut v: Value) -> std::result::Result<Value, String> {
            v["added"] = Value::from(3);
            Ok(v)
        }
        let path = Path::new("m.json");
        let steps: &[Migration] = &[one_to_two, two_to_three];
        let doc = serde_json::json!({"version": 1, "old": "x"});
        let out = migrate_with(doc, path, steps).unwrap();
        assert_eq!(out["version"], 3);
        assert_eq!(out["renamed"], "x");
        assert_eq!(out["added"], 3);

        let doc = serde_json::json!({"version": 2, "old": "x"});
        let out = migrate_with(doc, path, steps).unwrap();
        assert_eq!(out["version"], 3);
        assert_eq!(out["old"], "x", "schema 2 must skip the first step");
        assert!(out.get("renamed").is_none());
        assert_eq!(out["added"], 3);

        let failing: &[Migration] = &[|_| Err("boom".to_owned())];
        let err = migrate_with(serde_json::json!({"version": 1}), path, failing).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");

        // Today's schema needs no step.
        let doc = serde_json::json!({"version": PROJECT_VERSION});
        assert_eq!(migrate(doc.clone(), path).unwrap(), doc);
    }

    #[test]
    fn project_validate_keyframe_outside_film() {
        let mut p = full_project();
        p.add_keyframe(500);
        assert_problem(
            &p,
            "keyframe at frame 500 lies outside the film (frames 0–299); remove it or relink the project to the right film",
        );
    }

    #[test]
    fn project_validate_stroke_canvas_mismatch() {
        let mut p = full_project();
        p.add_keyframe(12).strokes[0].canvas = [1920, 1080];
        assert_problem(
            &p,
            "keyframe 12: a stroke was painted on a 1920x1080 frame but the film is 1280x720; ",
        );
    }

    #[test]
    fn project_validate_keyframe_order_and_duplicates() {
        let mut p = full_project();
        p.keyframes.push(Keyframe::new(150));
        assert_problem(&p, "frame 150 has two keyframes");
        let mut p = full_project();
        p.keyframes.push(Keyframe::new(3));
        assert_problem(
            &p,
            "keyframes are out of order (frame 3 comes after frame 150)",
        );
    }

    #[test]
    fn project_validate_shot_ranges() {
        let with_shots = |shots: &[(u64, u64)]| {
            let mut p = Project::new(source());
            p.shots = shots
                .iter()
                .map(|&(start, end)| ShotEntry {
                    start,
                    end,
                    settings: None,
                })
                .collect();
            p
        };
        with_shots(&[(0, 299)]).validate().unwrap();
        assert_problem(
            &with_shots(&[(0, 149), (100, 299)]),
            "frames 0–149 and 100–299 overlap",
        );
        assert_problem(
            &with_shots(&[(150, 299), (0, 149)]),
            "shots are out of order: frames 0–149 come after frames 150–299",
        );
        assert_problem(
            &with_shots(&[(0, 99), (150, 299)]),
            "frames 100–149 belong to no shot",
        );
        assert_problem(&with_shots(&[(10, 299)]), "frames 0–9 belong to no shot");
        assert_problem(&with_shots(&[(0, 200)]), "frames 201–299 belong to no shot");
        assert_problem(
            &with_shots(&[(0, 349)]),
            "the shot at frames 0–349 lies outside the film (frames 0–299)",
        );
        assert_problem(&with_shots(&[(0, 0), (1, 299), (50, 20)]), "runs backwards");
    }

    #[test]
    fn project_validate_colours_and_numbers() {
        let mut p = full_project();
        p.add_keyframe(12).strokes.push(stroke("red"));
        assert_problem(
            &p,
            "keyframe 12, stroke 1: colour \"red\" is not of the form",
        );

        let mut p = full_project();
        p.add_keyframe(12).strokes[0].points[1][0] = f32::INFINITY;
        assert_problem(
            &p,
            "keyframe 12, stroke 0: a coordinate or the brush size is not a finite",
        );

        let mut p = full_project();
        p.add_keyframe(12).strokes[0].size = 0.0;
        assert_problem(&p, "brush size 0 is not positive");

        let mut p = full_project();
        p.defaults.saturation = 5.0;
        assert_problem(&p, "the default settings: the saturation is 5, outside 0–4");

        let mut p = full_project();
        p.defaults.highlight_rolloff.width = f32::NAN;
        assert_problem(&p, "the highlight roll-off width is not a finite number");

        let mut p = full_project();
        p.shots[1].settings.as_mut().unwrap().stabiliser = 1.5;
        assert_problem(
            &p,
            "the shot at frames 100–199: the stabiliser strength is 1.5",
        );

        let mut p = full_project();
        p.defaults.shadow_rolloff.threshold = 0.95;
        assert_problem(
            &p,
            "shadow roll-off (0.95) is not below the highlight roll-off (0.92)",
        );
    }

    #[test]
    fn project_validate_source_and_references() {
        let mut p = full_project();
        p.references[0].shots.push(7);
        assert_problem(&p, "names shot 7, but the project has 3 shot(s)");
        let mut p = full_project();
        p.references[0].weight = 7.5;
        assert_problem(&p, "has weight 7.5; give a weight from 0 to 3");

        let mut p = Project::new(source());
        p.source.width = 0;
        p.source.rate = [24, 0];
        let found = problems(&p);
        assert_eq!(found.len(), 2, "{found:#?}");
        let msg = p.validate().unwrap_err().to_string();
        assert!(msg.starts_with("the project has 2 problems: "), "{msg}");
    }

    #[test]
    fn project_settings_for_uses_shot_override_or_defaults() {
        let mut p = Project::new(source());
        assert_eq!(p.settings_for(42), &ShotSettings::default());
        assert_eq!(p.shot_of(42), (0, 299));

        p = full_project();
        assert_eq!(p.settings_for(99), &p.defaults);
        assert_eq!(p.settings_for(100).saturation, 1.5);
        assert!(!p.settings_for(199).model_prior);
        assert_eq!(p.settings_for(200), &p.defaults);
        assert_eq!(p.shot_of(150), (100, 199));
        assert_eq!(p.shot_index(299), Some(2));

        // A gap (invalid project) reads as its own span with default settings.
        p.shots.remove(1);
        assert_eq!(p.shot_index(150), None);
        assert_eq!(p.shot_of(150), (100, 199));
        assert_eq!(p.settings_for(150), &p.defaults);
    }

    #[test]
    fn project_keyframe_edits_keep_order() {
        let mut p = Project::new(source());
        for f in [50, 10, 30, 10, 70] {
            p.add_keyframe(f);
        }
        let frames: Vec<u64> = p.keyframes.iter().map(|k| k.frame).collect();
        assert_eq!(frames, [10, 30, 50, 70]);

        let replaced = p.upsert_keyframe(Keyframe {
            frame: 30,
            strokes: vec![stroke("#010203")],
            reference: None,
        });
        assert_eq!(replaced, Some(Keyframe::new(30)));
        assert_eq!(p.upsert_keyframe(Keyframe::new(40)), None);
        assert_eq!(p.keyframe(30).unwrap().strokes.len(), 1);

        let inside: Vec<u64> = p.keyframes_in(30, 50).iter().map(|k| k.frame).collect();
        assert_eq!(inside, [30, 40, 50]);
        assert!(p.keyframes_in(51, 69).is_empty());
        assert!(p.keyframes_in(60, 20).is_empty());
        assert_eq!(p.remove_keyframe(40), Some(Keyframe::new(40)));
        assert_eq!(p.remove_keyframe(40), None);
        p.validate().unwrap();
    }

    #[test]
    fn reference_weights_default_to_one_and_are_kept() {
        let old: ReferencePhoto =
            serde_json::from_str(r#"{"path": "street.jpg", "shots": [0]}"#).unwrap();
        assert_eq!(old.weight, 1.0, "files from before weights");
        assert!(!serde_json::to_string(&old).unwrap().contains("weight"));
        let strong = ReferencePhoto { weight: 2.5, ..old };
        let text = serde_json::to_string(&strong).unwrap();
        assert_eq!(
            serde_json::from_str::<ReferencePhoto>(&text).unwrap(),
            strong
        );
    }

    #[test]
    fn the_palette_is_kept_and_older_files_have_none() {
        let mut p = full_project();
        let before = serde_json::to_string(&p).unwrap();
        assert!(
            !before.contains("palette"),
            "an empty palette is not written"
        );
        let old: Project = serde_json::from_str(&before).unwrap();
        assert!(old.palette.is_empty());
        p.palette = vec!["#c84030".to_owned(), "#3050a0".to_owned()];
        p.validate().unwrap();
        let back: Project = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.palette, p.palette);
        p.palette.push("teal".to_owned());
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("\"teal\"") && err.contains("#rrggbb"), "{err}");
    }

    #[test]
    fn a_shots_render_resolution_and_model_are_kept_checked_and_absent_from_older_files() {
        let mut p = full_project();
        let before = serde_json::to_string(&p).unwrap();
        assert!(!before.contains("render_short_side"), "none is not written");
        p.shots[1].settings.as_mut().unwrap().render_short_side = Some(512);
        p.validate().unwrap();
        let back: Project = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.settings_for(150).render_short_side, Some(512));
        assert_eq!(back.settings_for(10).render_short_side, None);
        p.shots[1].settings.as_mut().unwrap().render_short_side = Some(8);
        let err = p.validate().unwrap_err().to_string();
        assert!(
            err.contains("frames 100–199") && err.contains("render resolution is 8 px"),
            "{err}"
        );
        // A shot's own model, likewise.
        p.shots[1].settings.as_mut().unwrap().render_short_side = None;
        assert!(!serde_json::to_string(&p).unwrap().contains("\"model\""));
        p.shots[1].settings.as_mut().unwrap().model = Some("sepia-v2".into());
        let back: Project = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.settings_for(150).model.as_deref(), Some("sepia-v2"));
        p.shots[1].settings.as_mut().unwrap().model = Some(" ".into());
        let err = p.validate().unwrap_err().to_string();
        assert!(
            err.contains("frames 100–199") && err.contains("empty"),
            "{err}"
        );
    }

    #[test]
    fn project_references_for_frame() {
        let mut p = full_project();
        p.references
            .push(ReferencePhoto::new(PathBuf::from("all.jpg"), vec![]));
        assert_eq!(p.references_for(10).count(), 1);
        assert_eq!(p.references_for(150).count(), 2);
    }

    #[test]
    fn project_hex_colours() {
        assert_eq!(hex_to_rgb8("#a0B0c0"), Some([0xa0, 0xb0, 0xc0]));
        assert_eq!(hex_to_rgb8("#000000"), Some([0, 0, 0]));
        for bad in [
            "a0b0c0",
            "#a0b0c",
            "#a0b0c0ff",
            "#g0b0c0",
            "",
            "#",
            "#+1+1+1",
            "#ééé",
        ] {
            assert_eq!(hex_to_rgb8(bad), None, "{bad}");
        }
        assert_eq!(rgb8_to_hex([255, 0, 16]), "#ff0010");
        assert_eq!(hex_to_rgb8(&rgb8_to_hex([1, 2, 3])), Some([1, 2, 3]));
    }

    #[test]
    fn project_paths_resolve_and_autosave() {
        let p = Project::new(source());
        let proj = Path::new("/films/reel1/reel1.json");
        assert_eq!(
            p.resolve(proj, Path::new("reel1.mkv")),
            Path::new("/films/reel1/reel1.mkv")
        );
        assert_eq!(
            p.resolve(proj, Path::new("/abs/x.png")),
            Path::new("/abs/x.png")
        );
        assert_eq!(
            p.resolve(Path::new("reel1.json"), Path::new("a.png")),
            Path::new("a.png")
        );
        assert_eq!(
            Project::autosave_path(proj),
            Path::new("/films/reel1/reel1.autosave.json")
        );
        assert_eq!(
            Project::autosave_path("reel1.tincture"),
            Path::new("reel1.tincture.autosave.json")
        );
    }
}
