//! The rules every file the CLI writes follows, through the engine's one
//! output check ([`tincture_engine::output`]): an output is never one of
//! the command's inputs nor a folder holding one, an existing output is
//! replaced only with `--overwrite`, and a file appears complete (flushed to
//! disk, renamed into place) or not at all.

use std::path::{Path, PathBuf};

use tincture_engine::analysis::plot::{self, Plot, StripColumn};
use tincture_engine::output;

use crate::Failure;

/// A command's inputs and its `--overwrite`, which its outputs must respect.
pub struct Outputs {
    inputs: Vec<PathBuf>,
    overwrite: bool,
}

impl Outputs {
    /// The rules for a command that reads `inputs`.
    pub fn new<'a>(inputs: impl IntoIterator<Item = &'a Path>, overwrite: bool) -> Self {
        Self {
            inputs: inputs.into_iter().map(Path::to_owned).collect(),
            overwrite,
        }
    }

    fn inputs(&self) -> Vec<&Path> {
        self.inputs.iter().map(PathBuf::as_path).collect()
    }

    /// Checks that the file `out` may be written, before the work that
    /// makes it starts.
    ///
    /// # Errors
    /// Exit code 4 with the engine's message (an input, an existing output
    /// without `--overwrite`, a missing folder).
    pub fn check(&self, out: &Path) -> Result<(), Failure> {
        let inputs = self.inputs();
        output::check(out, &inputs, self.overwrite, output::Kind::File)?;
        output::check_not_input(&tincture_engine::render::partial_path(out), &inputs)?;
        Ok(())
    }

    /// Checks `out` again and writes it through `write`, which is given a
    /// temporary name beside it; the file is flushed to disk and renamed
    /// into place, and removed on failure.
    ///
    /// # Errors
    /// Exit code 4, naming `out`.
    pub fn write(
        &self,
        out: &Path,
        write: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), Failure> {
        output::write_file(out, &self.inputs(), self.overwrite, write)?;
        Ok(())
    }

    /// Writes `text` to `out` (see [`Self::write`]).
    ///
    /// # Errors
    /// As [`Self::write`].
    pub fn write_text(&self, out: &Path, text: &str) -> Result<(), Failure> {
        self.write(out, |partial| {
            std::fs::write(partial, text).map_err(|e| e.to_string())
        })
    }

    /// Draws `plot` and writes it to `out` as a PNG (see [`Self::write`]).
    ///
    /// # Errors
    /// Exit code 1 when it cannot be drawn, 4 when it cannot be written.
    pub fn write_plot(&self, out: &Path, plot: &Plot<'_>) -> Result<(), Failure> {
        plot::write_plot(out, &self.inputs(), self.overwrite, plot)?;
        Ok(())
    }

    /// Draws a strip of `columns` under `title` and writes it to `out` as a
    /// PNG (see [`Self::write`]).
    ///
    /// # Errors
    /// Exit code 1 when it cannot be drawn (no frames among them), 4 when it
    /// cannot be written.
    pub fn write_strip(
        &self,
        out: &Path,
        columns: &[StripColumn],
        title: &str,
    ) -> Result<(), Failure> {
        plot::write_strip(out, &self.inputs(), self.overwrite, columns, title)?;
        Ok(())
    }
}
