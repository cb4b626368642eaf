//! `colorize-image`: one still picture through the neural colorizer, and
//! taking a picture's luma. Luma and the model's chroma are composed into
//! R'G'B' by [`compose_rgb`], which `eval-images` shares (in the engine's
//! [`tincture_engine::analysis::stills`]). The picture is written by the
//! rules of [`crate::outputs`].
//!
//! Stills use BT.601 full range: Y' = 0.299 R' + 0.587 G' + 0.114 B' on the
//! sRGB values. The output's Y' is the input's; only Cb and Cr come from the
//! model, limited to the gamut at each pixel's luma so that clamping to RGB
//! never changes luma beyond the final rounding.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use tincture_core::frame::LumaImage;
use tincture_engine::analysis::stills::{STILL_MATRIX, compose_rgb};
use tincture_engine::neural::open_colorizer;
use tincture_infer::Hints;

use crate::outputs::Outputs;
use crate::{Failure, ModelArgs};

/// Arguments of `colorize-image`.
#[derive(clap::Args)]
pub struct ColorizeImageArgs {
    /// The picture: PNG, JPEG, TIFF or BMP, gray or colour, 8 or 16 bit. Its luma is kept exactly.
    pub input: PathBuf,
    /// The coloured picture: .png or .jpg (8-bit), .tif or .tiff (16-bit).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Colour hints, in the input's pixel coordinates:
    /// {"points": [{"x": 120, "y": 80, "color": "#b04030", "size": 3}, {"x": 40, "y": 200, "ab": [20, -12.5]}]}.
    #[arg(long, value_name = "HINTS.json")]
    pub hints: Option<PathBuf>,
    /// Replace the output if it exists.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The file formats a still is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StillFormat {
    /// 8-bit PNG.
    Png,
    /// 8-bit JPEG, quality 95.
    Jpeg,
    /// 16-bit TIFF.
    Tiff16,
}

impl StillFormat {
    /// The format the output's extension names.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "tif" | "tiff" => Some(Self::Tiff16),
            _ => None,
        }
    }

    /// The largest code value: 255 or 65535.
    pub fn max(self) -> f32 {
        match self {
            Self::Png | Self::Jpeg => 255.0,
            Self::Tiff16 => 65535.0,
        }
    }
}

/// Y' of a picture as unit floats. A gray picture's luma is its gray value
/// exactly (v / 255 or v / 65535); a colour picture's is the BT.601
/// weighted sum of its R'G'B'. Alpha is ignored.
pub fn luma_of(img: &DynamicImage) -> LumaImage {
    let y601 = |rgb: [f32; 3]| STILL_MATRIX.rgb_to_ycbcr(rgb)[0];
    let data: Vec<f32> = match img {
        DynamicImage::ImageLuma8(g) => g.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect(),
        DynamicImage::ImageLumaA8(g) => g.pixels().map(|p| f32::from(p[0]) / 255.0).collect(),
        DynamicImage::ImageLuma16(g) => {
            g.as_raw().iter().map(|&v| f32::from(v) / 65535.0).collect()
        }
        DynamicImage::ImageLumaA16(g) => g.pixels().map(|p| f32::from(p[0]) / 65535.0).collect(),
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img
            .to_rgb8()
            .pixels()
            .map(|p| y601(p.0.map(|v| f32::from(v) / 255.0)))
            .collect(),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) => img
            .to_rgb16()
            .pixels()
            .map(|p| y601(p.0.map(|v| f32::from(v) / 65535.0)))
            .collect(),
        _ => img.to_rgb32f().pixels().map(|p| y601(p.0)).collect(),
    };
    LumaImage {
        width: img.width() as usize,
        height: img.height() as usize,
        data,
    }
}

/// Encodes R'G'B' code values (see [`compose_rgb`]) as `format` into `path`.
fn encode(
    path: &Path,
    format: StillFormat,
    (width, height): (u32, u32),
    rgb: Vec<u16>,
) -> Result<(), String> {
    let wrong_size = || "the picture's buffer does not match its size".to_owned();
    let result = match format {
        StillFormat::Tiff16 => {
            image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(width, height, rgb)
                .ok_or_else(wrong_size)?
                .save_with_format(path, image::ImageFormat::Tiff)
        }
        StillFormat::Png | StillFormat::Jpeg => {
            let bytes: Vec<u8> = rgb.into_iter().map(|v| v.min(255) as u8).collect();
            let img = image::RgbImage::from_raw(width, height, bytes).ok_or_else(wrong_size)?;
            if format == StillFormat::Png {
                img.save_with_format(path, image::ImageFormat::Png)
            } else {
                let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
                let mut writer = std::io::BufWriter::new(file);
                img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut writer,
                    95,
                ))
                .and_then(|()| {
                    std::io::Write::flush(&mut writer).map_err(image::ImageError::IoError)
                })
            }
        }
    };
    result.map_err(|e| e.to_string())
}

/// Reads a picture for colouring.
///
/// # Errors
/// Exit code 3, naming the file, when it is missing or not a readable image.
pub fn read_image(path: &Path) -> Result<DynamicImage, Failure> {
    image::open(path).map_err(|e| Failure {
        code: 3,
        message: format!(
            "{}: cannot read the picture ({e}); use a PNG, JPEG, TIFF or BMP file",
            path.display()
        ),
    })
}

/// `colorize-image`: read, colour, compose, write.
///
/// # Errors
/// 2 for an output name of no known format, 3 for an unreadable input or
/// hints file, 4 for an existing or unwritable output, 6 for the model.
pub fn colorize_image_cmd(args: &ColorizeImageArgs) -> Result<(), Failure> {
    let out = &args.output;
    let format = StillFormat::from_path(out).ok_or_else(|| Failure {
        code: 2,
        message: format!(
            "{}: cannot tell the format from the name; use .png or .jpg (8-bit) or .tif (16-bit)",
            out.display()
        ),
    })?;
    let outputs = Outputs::new(
        std::iter::once(args.input.as_path()).chain(args.hints.as_deref()),
        args.overwrite,
    );
    outputs.check(out)?;
    let img = read_image(&args.input)?;
    let luma = luma_of(&img);
    let hints = match &args.hints {
        Some(path) => Hints::load(path, luma.width, luma.height)?.points,
        None => Vec::new(),
    };
    let mut colorizer = open_colorizer(&args.model.choice())?;
    let chroma = colorizer.colorize_with(&luma, &hints, 0, STILL_MATRIX)?;
    let rgb = compose_rgb(&luma, &chroma, format.max());
    outputs.write(out, |partial| {
        encode(partial, format, (img.width(), img.height()), rgb)
    })?;
    let model = colorizer.model();
    let (mw, mh) = model.run_size(luma.width, luma.height, colorizer.settings().short_side);
    eprintln!(
        "wrote {} ({}x{}, model `{}` on {} at {mw}x{mh}, {} hints)",
        out.display(),
        luma.width,
        luma.height,
        model.name(),
        model.provider(),
        hints.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_luma_is_the_gray_value_exactly() {
        let g8 = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 16 + y) as u8]));
        let luma = luma_of(&DynamicImage::ImageLuma8(g8.clone()));
        for (v, &y) in g8.as_raw().iter().zip(&luma.data) {
            assert_eq!(y, f32::from(*v) / 255.0);
        }
        let g16 = image::ImageBuffer::from_fn(8, 4, |x, y| image::Luma([(x * 8000 + y) as u16]));
        let luma = luma_of(&DynamicImage::ImageLuma16(g16.clone()));
        for (v, &y) in g16.as_raw().iter().zip(&luma.data) {
            assert_eq!(y, f32::from(*v) / 65535.0);
        }
        let rgb = image::RgbImage::from_pixel(2, 2, image::Rgb([200, 100, 50]));
        let luma = luma_of(&DynamicImage::ImageRgb8(rgb));
        let want = (0.299 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0) / 255.0;
        assert!((luma.data[0] - want).abs() < 1e-6, "{}", luma.data[0]);
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(
            StillFormat::from_path(Path::new("a.PNG")),
            Some(StillFormat::Png)
        );
        assert_eq!(
            StillFormat::from_path(Path::new("a.jpeg")),
            Some(StillFormat::Jpeg)
        );
        assert_eq!(
            StillFormat::from_path(Path::new("a.tif")),
            Some(StillFormat::Tiff16)
        );
        assert_eq!(StillFormat::from_path(Path::new("a.webp")), None);
        assert_eq!(StillFormat::from_path(Path::new("a")), None);
    }
}
