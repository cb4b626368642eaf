//! Conversions between FFmpeg frames and Tincture's planar [`Frame`].

use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::frame::video::Video as AvFrame;
use tincture_core::color::{ColorRange, Matrix};
use tincture_core::frame::{ChromaPlanes, Frame, Plane, Subsampling};

/// Bit depth, chroma layout and whether the format implies full range
/// (the JPEG "yuvj" formats), for the pixel formats Tincture reads.
pub fn layout_of_pixel(pixel: Pixel) -> Option<(u8, Option<Subsampling>, bool)> {
    use Subsampling::{S420, S422, S444};
    Some(match pixel {
        Pixel::GRAY8 => (8, None, false),
        Pixel::GRAY10LE => (10, None, false),
        Pixel::GRAY12LE => (12, None, false),
        Pixel::GRAY16LE => (16, None, false),
        Pixel::YUV420P => (8, Some(S420), false),
        Pixel::YUV422P => (8, Some(S422), false),
        Pixel::YUV444P => (8, Some(S444), false),
        Pixel::YUVJ420P => (8, Some(S420), true),
        Pixel::YUVJ422P => (8, Some(S422), true),
        Pixel::YUVJ444P => (8, Some(S444), true),
        Pixel::YUV420P10LE => (10, Some(S420), false),
        Pixel::YUV422P10LE => (10, Some(S422), false),
        Pixel::YUV444P10LE => (10, Some(S444), false),
        Pixel::YUV420P12LE => (12, Some(S420), false),
        Pixel::YUV422P12LE => (12, Some(S422), false),
        Pixel::YUV444P12LE => (12, Some(S444), false),
        Pixel::YUV420P16LE => (16, Some(S420), false),
        Pixel::YUV422P16LE => (16, Some(S422), false),
        Pixel::YUV444P16LE => (16, Some(S444), false),
        _ => return None,
    })
}

/// The FFmpeg pixel format for a Y'CbCr layout.
pub(crate) fn pixel_for(bit_depth: u8, subsampling: Subsampling) -> Option<Pixel> {
    use Subsampling::{S420, S422, S444};
    Some(match (bit_depth, subsampling) {
        (8, S420) => Pixel::YUV420P,
        (8, S422) => Pixel::YUV422P,
        (8, S444) => Pixel::YUV444P,
        (10, S420) => Pixel::YUV420P10LE,
        (10, S422) => Pixel::YUV422P10LE,
        (10, S444) => Pixel::YUV444P10LE,
        (12, S420) => Pixel::YUV420P12LE,
        (12, S422) => Pixel::YUV422P12LE,
        (12, S444) => Pixel::YUV444P12LE,
        (16, S420) => Pixel::YUV420P16LE,
        (16, S422) => Pixel::YUV422P16LE,
        (16, S444) => Pixel::YUV444P16LE,
        _ => return None,
    })
}

/// FFmpeg's name of a pixel format.
pub fn pixel_name(pixel: Pixel) -> String {
    pixel.descriptor().map_or_else(
        || format!("{pixel:?}").to_lowercase(),
        |d| d.name().to_owned(),
    )
}

fn read_plane(frame: &AvFrame, index: usize, width: usize, height: usize, bit_depth: u8) -> Plane {
    let stride = frame.stride(index);
    let bytes = frame.data(index);
    let mut data = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = &bytes[y * stride..];
        if bit_depth == 8 {
            data.extend(row[..width].iter().map(|&b| u16::from(b)));
        } else {
            data.extend(
                row[..2 * width]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]])),
            );
        }
    }
    Plane {
        width,
        height,
        data,
    }
}

fn write_plane(frame: &mut AvFrame, index: usize, plane: &Plane, bit_depth: u8) {
    let stride = frame.stride(index);
    let bytes = frame.data_mut(index);
    for y in 0..plane.height {
        let src = plane.row(y);
        let row = &mut bytes[y * stride..];
        if bit_depth == 8 {
            for (d, &s) in row[..plane.width].iter_mut().zip(src) {
                *d = s as u8;
            }
        } else {
            for (d, &s) in row[..2 * plane.width].chunks_exact_mut(2).zip(src) {
                d.copy_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// Copies a decoded FFmpeg frame into a [`Frame`]. `None` if its pixel
/// format is not one Tincture reads.
pub(crate) fn frame_from_av(frame: &AvFrame, range: ColorRange, matrix: Matrix) -> Option<Frame> {
    let (bit_depth, subsampling, _) = layout_of_pixel(frame.format())?;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let y = read_plane(frame, 0, w, h, bit_depth);
    let chroma = subsampling.map(|s| {
        let (cw, ch) = s.chroma_size(w, h);
        ChromaPlanes {
            subsampling: s,
            cb: read_plane(frame, 1, cw, ch, bit_depth),
            cr: read_plane(frame, 2, cw, ch, bit_depth),
        }
    });
    Some(Frame {
        bit_depth,
        y,
        chroma,
        range,
        matrix,
    })
}

/// The FFmpeg pixel format for gray of this depth.
pub(crate) fn gray_pixel(bit_depth: u8) -> Option<Pixel> {
    Some(match bit_depth {
        8 => Pixel::GRAY8,
        10 => Pixel::GRAY10LE,
        12 => Pixel::GRAY12LE,
        16 => Pixel::GRAY16LE,
        _ => return None,
    })
}

/// Copies a [`Frame`] (Y'CbCr, or gray when it has no chroma) into a new
/// FFmpeg frame of the matching format.
pub(crate) fn av_from_frame(frame: &Frame) -> Option<AvFrame> {
    let pixel = match &frame.chroma {
        Some(chroma) => pixel_for(frame.bit_depth, chroma.subsampling)?,
        None => gray_pixel(frame.bit_depth)?,
    };
    let mut av = AvFrame::new(pixel, frame.width() as u32, frame.height() as u32);
    write_plane(&mut av, 0, &frame.y, frame.bit_depth);
    if let Some(chroma) = &frame.chroma {
        write_plane(&mut av, 1, &chroma.cb, frame.bit_depth);
        write_plane(&mut av, 2, &chroma.cr, frame.bit_depth);
    }
    Some(av)
}

/// Maps FFmpeg's colour-space tag to a matrix, `None` if untagged or unknown.
pub(crate) fn matrix_of(space: ffmpeg_next::util::color::Space) -> Option<Matrix> {
    use ffmpeg_next::util::color::Space;
    match space {
        Space::BT709 => Some(Matrix::Bt709),
        Space::BT470BG | Space::SMPTE170M | Space::FCC => Some(Matrix::Bt601),
        Space::BT2020NCL | Space::BT2020CL => Some(Matrix::Bt2020),
        _ => None,
    }
}
