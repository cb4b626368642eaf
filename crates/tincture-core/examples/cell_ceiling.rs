//! How close cell colour can come to the truth: the colour ceiling of the
//! memory of coloured frames.
//!
//! ```sh
//! ffmpeg -i CLIP.mp4 -vf "select='not(mod(n\,10))'" -vsync 0 -frames:v 5 \
//!     -pix_fmt yuv444p -f rawvideo FRAMES.yuv
//! cargo run --release -p tincture-core --example cell_ceiling -- FRAMES.yuv 852 480 [57 32]
//! ```
//!
//! For each frame of 8-bit YUV 4:4:4 (the truth), its chroma is averaged
//! over a grid of cells (57x32 by default: the model's features at 1/8 of
//! a 256 px short side) and brought back to full size, once with one colour
//! per cell (`CellColour::from_confident`) and once two-toned by the
//! frame's luma (`CellColour::from_frame`). Prints the chroma PSNR of each
//! against the truth: what a perfect match could reach.

use std::process::ExitCode;

use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::memory::CellColour;
use tincture_core::motion::Confident;

fn chroma_psnr(a: &ChromaField, b: &ChromaField) -> f64 {
    let sq: f64 =
        a.cb.iter()
            .zip(&b.cb)
            .chain(a.cr.iter().zip(&b.cr))
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum();
    let mse = sq / (2 * a.cb.len()).max(1) as f64;
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: cell_ceiling FRAMES.yuv WIDTH HEIGHT [CELLS_ACROSS CELLS_DOWN]";
    let number = |i: usize, default: Option<usize>| -> Result<usize, String> {
        match (args.get(i), default) {
            (Some(v), _) => v
                .parse()
                .map_err(|_| format!("{v:?} is not a number; {usage}")),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(usage.to_string()),
        }
    };
    let path = args.first().ok_or(usage)?;
    let (w, h) = (number(1, None)?, number(2, None)?);
    let (cw, ch) = (number(3, Some(57))?, number(4, Some(32))?);
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let size = w * h * 3;
    if size == 0 || raw.len() % size != 0 || cw == 0 || ch == 0 || cw > w || ch > h {
        return Err(format!(
            "{path}: {} bytes is not a whole number of {w}x{h} yuv444p frames for {cw}x{ch} cells",
            raw.len()
        ));
    }
    let chroma =
        |v: &[u8]| -> Vec<f32> { v.iter().map(|&c| (f32::from(c) - 128.0) / 255.0).collect() };
    for (f, frame) in raw.chunks_exact(size).enumerate() {
        let n = w * h;
        let luma = LumaImage {
            width: w,
            height: h,
            data: frame[..n].iter().map(|&v| f32::from(v) / 255.0).collect(),
        };
        let truth = ChromaField {
            width: w,
            height: h,
            cb: chroma(&frame[n..2 * n]),
            cr: chroma(&frame[2 * n..]),
        };
        let colour = Confident::uniform(truth.clone(), 1.0);
        let plain = CellColour::from_confident(&colour, cw, ch).map_err(|e| e.to_string())?;
        let toned = CellColour::from_frame(&colour, &luma, cw, ch).map_err(|e| e.to_string())?;
        let (p, t) = (
            chroma_psnr(&plain.upsample(&luma).chroma, &truth),
            chroma_psnr(&toned.upsample(&luma).chroma, &truth),
        );
        println!(
            "frame {f}: one colour per cell {p:.2} dB, two-toned {t:.2} dB ({:+.2})",
            t - p
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cell_ceiling: {e}");
            ExitCode::FAILURE
        }
    }
}
