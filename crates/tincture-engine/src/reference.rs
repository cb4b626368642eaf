//! Loading reference photographs for colour transfer.

use std::path::Path;

use tincture_core::color::Matrix;
use tincture_core::frame::RgbImage;
use tincture_core::transfer::{ReferenceColorizer, TransferSettings};

use crate::{Error, Result};

/// Loads an image file as 8-bit sRGB.
///
/// # Errors
/// When the file is missing or not a readable image.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let img = image::open(path).map_err(|e| Error::Reference {
        path: path.to_owned(),
        reason: format!(
            "cannot read the reference image ({e}); use a PNG, JPEG or TIFF colour photograph"
        ),
    })?;
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Builds a reference colour-transfer engine from an image file.
///
/// # Errors
/// When the image cannot be read or is unusable (grayscale, too small);
/// the message names the file and says what to do.
pub fn reference_colorizer(path: &Path, matrix: Matrix) -> Result<ReferenceColorizer> {
    let rgb = load_rgb(path)?;
    ReferenceColorizer::new(&rgb, matrix, TransferSettings::default()).map_err(|e| {
        Error::Reference {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    })
}
