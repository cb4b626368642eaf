//! `shots`: where a film's shots begin and end, found in its luma
//! ([`tincture_core::shots`]) or read from a CMX3600 EDL
//! ([`tincture_core::edl`]), printed as a table and written as an EDL for
//! DaVinci Resolve and as JSON.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tincture_core::edl::{Edl, read_cmx3600, write_cmx3600};
use tincture_core::shots::{Shot, ShotDetector, ShotParams};
use tincture_core::timecode::{TimecodeBase, frame_timecode};
use tincture_engine::Error as EngineError;
use tincture_media::VideoReader;

use crate::Failure;
use crate::metrics::progress;
use crate::outputs::Outputs;

/// Arguments of `shots`.
#[derive(clap::Args)]
pub struct ShotsArgs {
    /// The film (gray or Y'CbCr, any bit depth); only its luma is read.
    pub video: PathBuf,
    /// Write the shots as a CMX3600 EDL (one cut event per shot), for DaVinci Resolve and other conform tools.
    #[arg(long, value_name = "OUT.edl")]
    pub edl: Option<PathBuf>,
    /// Write the shots as JSON: {file, frame_count, rate, start_timecode, shots: [{start, end}]}.
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
    /// Read the shots from this CMX3600 EDL instead of detecting them; its events must lie inside
    /// the film (source timecodes counted from the film's start timecode).
    #[arg(long, value_name = "IN.edl")]
    pub import: Option<PathBuf>,
    /// Fewest frames in a detected shot: a cut closer than this to the one before is ignored.
    #[arg(long, value_name = "N", default_value_t = ShotParams::default().min_shot_len,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub min_shot: u64,
    /// Store the shots in this project (which must belong to VIDEO), replacing its shot list;
    /// with --from-project, read them from it instead.
    #[arg(long, value_name = "P.json")]
    pub project: Option<PathBuf>,
    /// Take the shots from --project instead of detecting them (to export its list as an EDL).
    #[arg(long, requires = "project", conflicts_with = "import")]
    pub from_project: bool,
    /// Reel name of the EDL's events (letters, digits and _, at most 8).
    #[arg(long, value_name = "NAME", default_value = "AX")]
    pub reel: String,
    /// Replace the --edl and --json files if they exist (--project is always updated in place).
    #[arg(long)]
    pub overwrite: bool,
}

/// What `shots --json` writes.
#[derive(Serialize)]
struct ShotsJson<'a> {
    file: String,
    frame_count: u64,
    rate: f64,
    start_timecode: Option<&'a str>,
    /// `detected`, or `imported` with `--import`.
    origin: &'static str,
    shots: &'a [Shot],
}

/// The film's facts the command needs.
struct Film {
    path: PathBuf,
    frame_count: u64,
    rate: f64,
    timecode: Option<String>,
}

impl Film {
    fn timecode(&self, index: u64) -> String {
        frame_timecode(index, self.rate, self.timecode.as_deref())
    }

    fn drop_frame(&self) -> bool {
        self.timecode.as_deref().is_some_and(|t| t.contains(';'))
    }
}

fn media_failure(e: tincture_media::Error) -> Failure {
    Failure::from(EngineError::Media(e))
}

/// `shots`: returns the exit code.
///
/// # Errors
/// 3 when the film cannot be decoded or the EDL given to `--import` cannot
/// be read or does not fit the film (the message names the line), 4 when
/// an output cannot be written.
pub fn shots_cmd(args: &ShotsArgs) -> Result<u8, Failure> {
    let outputs = Outputs::new(
        std::iter::once(args.video.as_path())
            .chain(args.import.as_deref())
            .chain(args.project.as_deref()),
        args.overwrite,
    );
    for out in args.edl.iter().chain(&args.json) {
        outputs.check(out)?;
    }
    let mut reader = VideoReader::open(&args.video).map_err(media_failure)?;
    let film = Film {
        path: args.video.clone(),
        frame_count: reader.frame_count(),
        rate: reader.info().video.frame_rate,
        timecode: reader.info().video.timecode.clone(),
    };
    if film.frame_count == 0 {
        return Err(Failure {
            code: 3,
            message: format!("{}: holds no video frames", film.path.display()),
        });
    }
    let project = match &args.project {
        Some(p) => Some((p, crate::project::load_for(p, &film.path)?)),
        None => None,
    };
    let (shots, origin) = match (&args.import, &project) {
        (_, Some((_, project))) if args.from_project => {
            drop(reader);
            let shots = if project.shots.is_empty() {
                vec![Shot {
                    start: 0,
                    end: film.frame_count - 1,
                }]
            } else {
                project
                    .shots
                    .iter()
                    .map(|s| Shot {
                        start: s.start,
                        end: s.end,
                    })
                    .collect()
            };
            (shots, "project")
        }
        (Some(edl), _) => {
            drop(reader);
            (import(edl, &film)?, "imported")
        }
        (None, _) => (detect(&mut reader, &film, args.min_shot)?, "detected"),
    };
    if let Some((path, mut project)) = project
        && !args.from_project
    {
        crate::project::set_shots(&mut project, &shots);
        project.save(path).map_err(|e| Failure {
            code: 4,
            message: e.to_string(),
        })?;
        eprintln!("stored {} shots in {}", shots.len(), path.display());
    }
    print_table(&film, &shots, origin);
    let title = film.path.file_name().map_or_else(
        || film.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if let Some(out) = &args.edl {
        let text = write_cmx3600(
            &title,
            &args.reel,
            &shots,
            film.rate,
            film.drop_frame(),
            film.timecode.as_deref(),
        );
        outputs.write_text(out, &text)?;
        eprintln!(
            "wrote the EDL ({} events) to {}",
            shots.len(),
            out.display()
        );
    }
    if let Some(out) = &args.json {
        let json = ShotsJson {
            file: film.path.display().to_string(),
            frame_count: film.frame_count,
            rate: film.rate,
            start_timecode: film.timecode.as_deref(),
            origin,
            shots: &shots,
        };
        let text = serde_json::to_string_pretty(&json).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        outputs.write_text(out, &(text + "\n"))?;
    }
    Ok(0)
}

/// Decodes every frame's luma and finds the cuts.
fn detect(reader: &mut VideoReader, film: &Film, min_shot: u64) -> Result<Vec<Shot>, Failure> {
    let mut detector = ShotDetector::new(ShotParams {
        min_shot_len: min_shot,
        ..ShotParams::default()
    });
    let bar = progress(film.frame_count);
    while let Some(f) = reader.next_frame().map_err(media_failure)? {
        detector.push(&f.frame.luma_unit());
        bar.inc(1);
    }
    bar.finish_and_clear();
    if detector.frames() != film.frame_count {
        return Err(Failure {
            code: 3,
            message: format!(
                "{}: frame {}: the file ends there, though {} frames were counted; it may be truncated",
                film.path.display(),
                detector.frames(),
                film.frame_count
            ),
        });
    }
    Ok(detector.finish())
}

/// Reads the shots of an EDL and checks them against the film.
fn import(path: &Path, film: &Film) -> Result<Vec<Shot>, Failure> {
    let input = |message: String| Failure {
        code: 3,
        message: format!("{}: {message}", path.display()),
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| input(format!("cannot read the EDL: {e}")))?;
    let edl = read_cmx3600(&text, film.rate).map_err(|e| input(e.to_string()))?;
    let start = film
        .timecode
        .as_deref()
        .and_then(|t| TimecodeBase::for_rate(film.rate, t.contains(';')).parse(t))
        .or(edl.source_start)
        .unwrap_or(0);
    let shots = edl
        .shots(start, film.rate)
        .map_err(|e| input(e.to_string()))?;
    check_inside(&edl, &shots, film).map_err(input)?;
    // A project needs every frame in a shot: what the list leaves out
    // becomes shots of its own.
    let filled = tincture_core::shots::fill_gaps(&shots, film.frame_count);
    let added = filled.len() - shots.len();
    if added > 0 {
        eprintln!(
            "{}: the list leaves {added} stretch{} of the film out; each is a shot of its own",
            path.display(),
            if added == 1 { "" } else { "es" }
        );
    }
    Ok(filled)
}

/// Refuses an event that lies past the film's last frame.
fn check_inside(edl: &Edl, shots: &[Shot], film: &Film) -> Result<(), String> {
    let last = film.frame_count - 1;
    for (event, shot) in edl.events.iter().zip(shots) {
        if shot.end > last {
            return Err(format!(
                "line {}: event {} (source {}-{}) covers frames {}-{}, but {} has {} frames (0-{last}, \
                 timecodes {}-{}); the list was made for another film, another cut of it or a copy with \
                 another start timecode: correct or delete that event, or make the list again from this film",
                event.line,
                event.number,
                event.source_in_text,
                event.source_out_text,
                shot.start,
                shot.end,
                film.path.display(),
                film.frame_count,
                film.timecode(0),
                film.timecode(last),
            ));
        }
    }
    Ok(())
}

/// Prints one row per shot.
fn print_table(film: &Film, shots: &[Shot], origin: &str) {
    println!(
        "{}: {} frames at {:.3} fps, {} shot{} ({origin})",
        film.path.display(),
        film.frame_count,
        film.rate,
        shots.len(),
        if shots.len() == 1 { "" } else { "s" }
    );
    println!(
        "  {:>5} {:>9} {:>9}  {:<11}  {:<11}  {:>8}",
        "shot", "first", "last", "in", "out", "frames"
    );
    for (i, s) in shots.iter().enumerate() {
        println!(
            "  {:>5} {:>9} {:>9}  {:<11}  {:<11}  {:>8}",
            i + 1,
            s.start,
            s.end,
            film.timecode(s.start),
            film.timecode(s.end),
            s.frames()
        );
    }
    let covered: u64 = shots.iter().map(Shot::frames).sum();
    if covered < film.frame_count {
        println!(
            "  ({} of the film's frames lie in no shot)",
            film.frame_count - covered
        );
    }
}
