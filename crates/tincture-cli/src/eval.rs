//! `eval-images`: how well a model colours pictures it has never seen.
//!
//! The scoring is the engine's ([`tincture_engine::analysis::stills`]):
//! each colour photograph in a folder is made gray as a scan of a print
//! would be, given N random one-pixel hints of its true colour, coloured
//! back and scored against the original. This module reads the arguments,
//! prints a line per picture and the means, and writes the JSON.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use tincture_engine::analysis::stills::{
    StillFailureKind, StillMeans, StillsEvent, StillsRequest, evaluate_stills,
};

use crate::outputs::Outputs;
use crate::{Failure, ModelArgs};

/// Arguments of `eval-images`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A folder of colour photographs (jpg, jpeg, png, tif, tiff, bmp), taken in name order.
    pub dir: PathBuf,
    /// Hint points per picture, each carrying the original's colour at one random pixel.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub points: usize,
    /// Also write the scores as JSON to this file.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Seed of the random points; the same seed gives the same points.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Print a line of scores per picture.
    #[arg(long)]
    pub verbose: bool,
    /// Replace the --json file if it exists.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn table_line(name: &str, m: &StillMeans) -> String {
    format!(
        "{name:<32} {:>8.2} {:>7.4} {:>7.2} {:>9.2} {:>9.2} {:>9.2}",
        m.psnr, m.ssim, m.ciede2000, m.colorfulness, m.colorfulness_reference, m.gray_psnr
    )
}

/// `eval-images`: returns the exit code, 0 when every picture was scored.
///
/// # Errors
/// 3 for an unreadable folder or one without pictures, 6 when the model
/// cannot be loaded, 4 when the JSON cannot be written. A picture that
/// cannot be read or coloured is reported and the run goes on; the exit
/// code then says so (6 when the model failed on one, else 3).
pub fn eval_images_cmd(args: &EvalArgs) -> Result<u8, Failure> {
    let outputs = Outputs::new([args.dir.as_path()], args.overwrite);
    if let Some(out) = &args.json {
        outputs.check(out)?;
    }
    let request = StillsRequest {
        dir: args.dir.clone(),
        points: args.points,
        seed: args.seed,
        model: args.model.choice(),
        solver_spread: None,
    };
    let header = format!(
        "{:<32} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "picture", "PSNR dB", "SSIM", "dE2000", "colourful", "original", "gray PSNR"
    );
    let mut code = 0u8;
    let report = evaluate_stills(&request, &AtomicBool::new(false), |event| match event {
        StillsEvent::Started {
            model,
            provider,
            short_side,
            pictures,
        } => {
            eprintln!(
                "scoring model `{model}` on {provider} at short side {short_side}: {pictures} pictures, {} hint points each, seed {}",
                args.points, args.seed
            );
            if args.verbose {
                println!("{header}");
            }
        }
        StillsEvent::Picture { index, total, name } => {
            eprintln!("[{}/{total}] {name}", index + 1);
        }
        StillsEvent::Scored(s) => {
            if args.verbose {
                let one = StillMeans::of(std::slice::from_ref(s)).unwrap_or_default();
                println!("{}", table_line(&s.name, &one));
            }
        }
        StillsEvent::Skipped { name } => {
            eprintln!("{name}: skipped: a gray picture has no colour to score against");
        }
        StillsEvent::Failed(f) => {
            eprintln!("error: {}: {}", f.path.display(), f.reason);
            code = code.max(match f.kind {
                StillFailureKind::Model => 6,
                StillFailureKind::Unreadable | StillFailureKind::Unscorable => 3,
            });
        }
    })?;
    match report.means() {
        Some(m) => {
            if !args.verbose {
                println!("{header}");
            }
            println!(
                "{}",
                table_line(&format!("mean of {} pictures", report.scored.len()), &m)
            );
        }
        None => {
            code = code.max(3);
            eprintln!("error: {}: no picture could be scored", args.dir.display());
        }
    }
    if !report.failed.is_empty() {
        eprintln!("{} pictures could not be scored", report.failed.len());
    }
    if let Some(out) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        outputs.write_text(out, &(text + "\n"))?;
    }
    Ok(code)
}
