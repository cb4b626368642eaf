//! Chooses the settings of the solver's hint spread on a folder of
//! validation photographs (val_diverse), beside the filter spread, with the
//! same gray pictures, points and scoring as `tincture-cli eval-images`.
//!
//! ```sh
//! cargo run --release -p tincture-engine --example tune_hint_spread -- \
//!     ../shared/data/images/val_diverse 10,100
//! ```
//!
//! Prints one line per setting and point count: mean PSNR and
//! colourfulness over the folder. `TUNE_EVERY` and `TUNE_GRID` are read as
//! described in `main`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use tincture_engine::analysis::stills::{StillsRequest, evaluate_stills};
use tincture_engine::neural::ModelChoice;
use tincture_infer::{HintSpread, RenderSettings, SolverSpread, SolverSpreadMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("give a folder of colour photographs")?);
    let points: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "10,100".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // TUNE_EVERY=K scores every K-th photo only (a quicker sweep; confirm
    // the choice on the whole folder).
    let every: usize = std::env::var("TUNE_EVERY").map_or(Ok(1), |v| v.parse())?;
    let _subset;
    let dir = if every > 1 {
        let tmp = tempfile::tempdir()?;
        let mut names: Vec<_> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names.iter().step_by(every) {
            std::os::unix::fs::symlink(
                std::fs::canonicalize(p)?,
                tmp.path()
                    .join(p.file_name().ok_or("a file without a name")?),
            )?;
        }
        let d = tmp.path().to_path_buf();
        _subset = tmp;
        d
    } else {
        dir
    };
    // TUNE_GRID: `modes` (one setting of each mode), `normalised` (the
    // normalised mode's sweep) or a list `reach:sigma:fade;...` of the
    // normalised mode.
    let grid = std::env::var("TUNE_GRID").unwrap_or_else(|_| "normalised".into());
    let mut settings: Vec<Option<SolverSpread>> = vec![None];
    let normalised = |reach: f32, sigma: f32, fade: f32| SolverSpread {
        mode: SolverSpreadMode::Normalised,
        reach,
        reach_dense: reach,
        sigma,
        fade,
    };
    match grid.as_str() {
        "modes" => {
            for mode in [
                SolverSpreadMode::Normalised,
                SolverSpreadMode::Residual,
                SolverSpreadMode::PriorAsData,
            ] {
                settings.push(Some(SolverSpread {
                    mode,
                    ..SolverSpread::default()
                }));
            }
        }
        "normalised" => {
            for reach in [0.5, 1.0, 2.0] {
                for sigma in [0.03, 0.1, 1.0] {
                    for fade in [0.05, 0.3] {
                        settings.push(Some(normalised(reach, sigma, fade)));
                    }
                }
            }
        }
        list => {
            for item in list.split(';') {
                let v: Vec<f32> = item.split(':').map(str::parse).collect::<Result<_, _>>()?;
                let [reach, sigma, fade] = v[..] else {
                    return Err(format!("`{item}` is not reach:sigma:fade").into());
                };
                settings.push(Some(normalised(reach, sigma, fade)));
            }
        }
    }
    println!("points spread mode reach sigma fade psnr colourfulness images");
    for &p in &points {
        for s in &settings {
            let hint_spread = if s.is_some() {
                HintSpread::Solver
            } else {
                HintSpread::Filter
            };
            let req = StillsRequest {
                dir: dir.clone(),
                points: p,
                seed: 0,
                model: ModelChoice {
                    render: RenderSettings {
                        hint_spread,
                        ..RenderSettings::default()
                    },
                    ..ModelChoice::default()
                },
                solver_spread: *s,
            };
            let report = evaluate_stills(&req, &AtomicBool::new(false), |_| {})?;
            let m = report.means().ok_or("no picture was scored")?;
            match s {
                None => println!(
                    "{p} filter - - - - {:.3} {:.2} {}",
                    m.psnr,
                    m.colorfulness,
                    report.scored.len()
                ),
                Some(s) => println!(
                    "{p} solver {:?} {} {} {} {:.3} {:.2} {}",
                    s.mode,
                    s.reach,
                    s.sigma,
                    s.fade,
                    m.psnr,
                    m.colorfulness,
                    report.scored.len()
                ),
            }
        }
    }
    Ok(())
}
