//! File > Export to farm…: writes the same job bundle as `tincture-cli farm
//! plan` (see [`tincture_engine::farm::plan`]) for the saved project: the
//! chunks, an OpenJD job template or Slurm scripts, and a copy of the
//! project. The jobs run `tincture-cli`, the one installed beside this
//! window's executable.

use std::path::{Path, PathBuf};

use eframe::egui;
use tincture_engine::farm::plan::{ChunkSize, Engine, PlanRequest, write_bundle};

/// Chunk formats a farm can join without re-encoding.
const FARM_FORMATS: &[(&str, &str)] = &[
    ("ffv1", "FFV1 (MKV)"),
    ("prores", "ProRes 422 HQ (MOV)"),
    ("png", "PNG sequence"),
    ("tiff", "TIFF sequence"),
];

/// What the Export to farm window asks for.
#[derive(Debug)]
pub struct FarmDialog {
    /// Whether the window is open.
    pub open: bool,
    engine: Engine,
    chunks: u64,
    format: usize,
    bundle: String,
    /// What the last try gave: the bundle written, or why not.
    outcome: Option<Result<String, String>>,
}

impl Default for FarmDialog {
    fn default() -> Self {
        Self {
            open: false,
            engine: Engine::Openjd,
            chunks: 8,
            format: 0,
            bundle: String::new(),
            outcome: None,
        }
    }
}

/// The film and saved project a bundle is planned for.
pub struct FarmSource<'a> {
    /// The film.
    pub film: &'a Path,
    /// The project file, `None` while the project is unsaved.
    pub project: Option<&'a Path>,
    /// Its frame count.
    pub frame_count: u64,
    /// Its shots, inclusive.
    pub shots: Vec<(u64, u64)>,
}

impl FarmDialog {
    /// Opens the window, proposing a bundle folder beside the film.
    pub fn open_for(&mut self, film: &Path) {
        if self.bundle.is_empty() {
            let stem = film
                .file_stem()
                .map_or_else(|| "film".into(), |s| s.to_string_lossy().into_owned());
            self.bundle = film
                .with_file_name(format!("{stem}-farm-job"))
                .display()
                .to_string();
        }
        self.outcome = None;
        self.open = true;
    }

    /// What the last "Write job bundle" gave.
    pub fn outcome(&self) -> Option<&Result<String, String>> {
        self.outcome.as_ref()
    }

    /// The window.
    pub fn window_ui(&mut self, ctx: &egui::Context, source: Option<&FarmSource<'_>>) {
        if !self.open {
            return;
        }
        let mut open = self.open;
        let mut write = false;
        egui::Window::new("Export to farm")
            .open(&mut open)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("farm_grid").num_columns(2).show(ui, |ui| {
                    ui.label("Engine");
                    ui.horizontal(|ui| {
                        ui.radio_value(&mut self.engine, Engine::Openjd, "Open Job Description")
                            .on_hover_text("A job template for `openjd run` or AWS Deadline Cloud");
                        ui.radio_value(&mut self.engine, Engine::Slurm, "Slurm")
                            .on_hover_text("sbatch job arrays, one per render pass, then the join");
                    });
                    ui.end_row();
                    let label = ui.label("Chunks");
                    ui.add(egui::DragValue::new(&mut self.chunks).range(1..=10_000))
                        .labelled_by(label.id)
                        .on_hover_text(
                            "About this many; chunk boundaries fall on shot boundaries, and a \
                             longer shot is cut into pieces that run in order",
                        );
                    ui.end_row();
                    ui.label("Format");
                    ui.vertical(|ui| {
                        for (i, (_, label)) in FARM_FORMATS.iter().enumerate() {
                            ui.radio_value(&mut self.format, i, *label);
                        }
                    });
                    ui.end_row();
                    let label = ui.label("Job bundle folder");
                    ui.horizontal(|ui| {
                        ui.add(
                            egui::TextEdit::singleline(&mut self.bundle)
                                .desired_width(320.0)
                                .hint_text("a new or empty folder"),
                        )
                        .labelled_by(label.id);
                        if ui.button("Browse…").clicked()
                            && let Some(dir) = rfd::FileDialog::new()
                                .set_title("A new or empty folder for the job bundle")
                                .pick_folder()
                        {
                            self.bundle = dir.display().to_string();
                        }
                    });
                    ui.end_row();
                });
                ui.separator();
                let saved = source.is_some_and(|s| s.project.is_some());
                if !saved {
                    ui.label("Save the project first: the farm renders the saved project.");
                }
                write = ui
                    .add_enabled(saved, egui::Button::new("Write job bundle"))
                    .clicked();
                match &self.outcome {
                    Some(Ok(text)) => {
                        ui.label(text);
                    }
                    Some(Err(e)) => {
                        ui.colored_label(ui.visuals().error_fg_color, e);
                    }
                    None => {}
                }
            });
        self.open = open;
        if write && let Some(source) = source {
            let outcome = self.write(source);
            if let Err(e) = &outcome {
                tracing::error!("Export to farm: {e}");
            }
            self.outcome = Some(outcome);
        }
    }

    fn write(&self, source: &FarmSource<'_>) -> Result<String, String> {
        let Some(project) = source.project else {
            return Err("Save the project first.".into());
        };
        let bundle = PathBuf::from(self.bundle.trim());
        if bundle.as_os_str().is_empty() {
            return Err("Choose a folder for the job bundle.".into());
        }
        // Beside this program (an install, a build), or one folder up from
        // it (cargo's test programs live in `deps/`).
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let cli = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(|dir| dir.join("tincture-cli"))
            .find(|p| p.is_file())
            .ok_or("tincture-cli is not installed beside this window's program; the jobs run it")?;
        let req = PlanRequest {
            film: source.film.to_owned(),
            project: project.to_owned(),
            bundle: bundle.clone(),
            format: FARM_FORMATS
                .get(self.format)
                .map_or("ffv1", |f| f.0)
                .to_owned(),
            size: ChunkSize::Count(self.chunks.max(1)),
            engine: self.engine,
            cli,
        };
        let plan =
            write_bundle(&req, source.frame_count, &source.shots).map_err(|e| e.to_string())?;
        let run = match self.engine {
            Engine::Openjd => format!(
                "openjd run {} --step verify --run-dependencies",
                bundle.join("job.template.json").display()
            ),
            Engine::Slurm => format!("sh {}", bundle.join("submit.sh").display()),
        };
        Ok(format!(
            "Wrote {} chunks in {} passes to {}. Run it with: {run}",
            plan.chunks.len(),
            plan.passes(),
            bundle.display()
        ))
    }
}
