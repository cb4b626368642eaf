//! Joining the source's luma with chroma into an output frame, and turning
//! frames into RGB for image sequences and display.
//!
//! The luma plane of an output frame is always the source's, copied; only a
//! change of bit depth (for a codec that cannot carry the source's) alters
//! code values, by an exact left shift upwards or a rounding shift downwards.

use crate::color::{ColorRange, Matrix, round_unsigned};
use crate::frame::{ChromaField, ChromaPlanes, Frame, Plane, Subsampling};
use rayon::prelude::*;

/// What an encoder wants: bit depth and chroma layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLayout {
    /// Bits per sample.
    pub bit_depth: u8,
    /// Chroma layout.
    pub subsampling: Subsampling,
}

/// Converts code values between bit depths: an exact shift up, a rounded shift down.
pub fn convert_depth(value: u16, from: u8, to: u8) -> u16 {
    if to >= from {
        value << (to - from)
    } else {
        let shift = from - to;
        let max = (1u32 << to) - 1;
        (((u32::from(value)) + (1 << (shift - 1))) >> shift).min(max) as u16
    }
}

fn convert_plane_depth(plane: &Plane, from: u8, to: u8) -> Plane {
    if from == to {
        return plane.clone();
    }
    Plane {
        width: plane.width,
        height: plane.height,
        data: plane
            .data
            .iter()
            .map(|&v| convert_depth(v, from, to))
            .collect(),
    }
}

/// Box-averages a full-resolution field down to `subsampling`, then maps to code values.
fn downsample_to_plane(
    values: &[f32],
    width: usize,
    height: usize,
    subsampling: Subsampling,
    range: ColorRange,
    bit_depth: u8,
) -> Plane {
    let (sx, sy) = subsampling.shifts();
    let (cw, ch) = subsampling.chroma_size(width, height);
    let mut data = vec![0; cw * ch];
    // Output rows in parallel; each code from its own block of pixels.
    data.par_chunks_mut(cw.max(1))
        .enumerate()
        .for_each(|(cy, out)| {
            let y0 = cy << sy;
            let y1 = ((cy + 1) << sy).min(height);
            for (cx, o) in out.iter_mut().enumerate() {
                let x0 = cx << sx;
                let x1 = ((cx + 1) << sx).min(width);
                let mut sum = 0.0f32;
                for yy in y0..y1 {
                    let row = &values[yy * width..];
                    for &v in &row[x0..x1] {
                        sum += v;
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as f32;
                *o = range.chroma_code(sum / n, bit_depth);
            }
        });
    Plane {
        width: cw,
        height: ch,
        data,
    }
}

/// Expands a frame's chroma to a full-resolution unit-range field (nearest
/// neighbour), or neutral chroma for a gray frame.
pub fn chroma_field_of(frame: &Frame) -> ChromaField {
    let (w, h) = (frame.width(), frame.height());
    let Some(chroma) = &frame.chroma else {
        return ChromaField::neutral(w, h);
    };
    let (sx, sy) = chroma.subsampling.shifts();
    let mid = f32::from(1u16 << (frame.bit_depth - 1));
    let scale = frame.range.chroma_scale(frame.bit_depth);
    let mut field = ChromaField::neutral(w, h);
    // Rows in parallel; each pixel on its own.
    field
        .cb
        .par_chunks_mut(w.max(1))
        .zip(field.cr.par_chunks_mut(w.max(1)))
        .enumerate()
        .for_each(|(y, (cb, cr))| {
            let crow = (y >> sy) * chroma.cb.width;
            for x in 0..cb.len() {
                let ci = crow + (x >> sx);
                cb[x] = (f32::from(chroma.cb.data[ci]) - mid) / scale;
                cr[x] = (f32::from(chroma.cr.data[ci]) - mid) / scale;
            }
        });
    field
}

/// Builds an output frame from the source's luma and `chroma`.
///
/// With `chroma` = `None` the source's own chroma is carried (resampled only
/// if the layout differs), neutral for a gray source: this is the
/// pipeline's passthrough. With computed chroma, each pixel's chroma is first
/// limited to the gamut at that pixel's luma, so no RGB conversion downstream
/// has to clip.
pub fn compose_frame(source: &Frame, chroma: Option<&ChromaField>, layout: OutputLayout) -> Frame {
    let y = convert_plane_depth(&source.y, source.bit_depth, layout.bit_depth);
    let planes = match (chroma, &source.chroma) {
        (None, Some(src)) if src.subsampling == layout.subsampling => ChromaPlanes {
            subsampling: src.subsampling,
            cb: convert_plane_depth(&src.cb, source.bit_depth, layout.bit_depth),
            cr: convert_plane_depth(&src.cr, source.bit_depth, layout.bit_depth),
        },
        (None, None) => {
            let (cw, ch) = layout
                .subsampling
                .chroma_size(source.width(), source.height());
            let mid = 1u16 << (layout.bit_depth - 1);
            ChromaPlanes {
                subsampling: layout.subsampling,
                cb: Plane::filled(cw, ch, mid),
                cr: Plane::filled(cw, ch, mid),
            }
        }
        (computed, _) => {
            let owned;
            let field = match computed {
                Some(field) => {
                    let luma = source.luma_unit();
                    let mut limited = field.clone();
                    let m = source.matrix;
                    // Row by row in parallel; each pixel on its own, so the
                    // result does not depend on the split.
                    let w = luma.width.max(1);
                    limited
                        .cb
                        .par_chunks_mut(w)
                        .zip(limited.cr.par_chunks_mut(w))
                        .zip(luma.data.par_chunks(w))
                        .for_each(|((cb, cr), y)| {
                            for ((cb, cr), &y) in cb.iter_mut().zip(cr.iter_mut()).zip(y) {
                                (*cb, *cr) = m.limit_to_gamut(y, *cb, *cr);
                            }
                        });
                    owned = limited;
                    &owned
                }
                None => {
                    owned = chroma_field_of(source);
                    &owned
                }
            };
            let (w, h) = (source.width(), source.height());
            ChromaPlanes {
                subsampling: layout.subsampling,
                cb: downsample_to_plane(
                    &field.cb,
                    w,
                    h,
                    layout.subsampling,
                    source.range,
                    layout.bit_depth,
                ),
                cr: downsample_to_plane(
                    &field.cr,
                    w,
                    h,
                    layout.subsampling,
                    source.range,
                    layout.bit_depth,
                ),
            }
        }
    };
    Frame {
        bit_depth: layout.bit_depth,
        y,
        chroma: Some(planes),
        range: source.range,
        matrix: source.matrix,
    }
}

/// Converts a frame to non-linear R'G'B' at 16 bits per channel (row-major
/// RGB triplets). Chroma is gamut-limited at each pixel's luma before the
/// conversion, so for luma inside the nominal range the source's Y' can be
/// recovered exactly from the result (see [`luma_from_rgb16`]).
pub fn frame_to_rgb16(frame: &Frame) -> Vec<u16> {
    frame_to_rgb(frame, 65535.0, |v| v as u16)
}

/// Converts a frame to 8-bit sRGB' triplets, for previews and 8-bit image sequences.
pub fn frame_to_rgb8(frame: &Frame) -> Vec<u8> {
    frame_to_rgb(frame, 255.0, |v| v as u8)
}

fn frame_to_rgb<T: Copy + Default + Send>(
    frame: &Frame,
    max: f32,
    cast: impl Fn(f32) -> T + Sync,
) -> Vec<T> {
    let luma = frame.luma_unit();
    let field = chroma_field_of(frame);
    let m = frame.matrix;
    let w = luma.width.max(1);
    let mut out = vec![T::default(); luma.data.len() * 3];
    // Row by row in parallel; each pixel on its own.
    out.par_chunks_mut(3 * w)
        .zip(luma.data.par_chunks(w))
        .zip(field.cb.par_chunks(w).zip(field.cr.par_chunks(w)))
        .for_each(|((row, y), (cb, cr))| {
            for (px, ((&y, &cb), &cr)) in row.chunks_exact_mut(3).zip(y.iter().zip(cb).zip(cr)) {
                for (o, c) in px.iter_mut().zip(rgb_codes(m, y, cb, cr, max)) {
                    *o = cast(c as f32);
                }
            }
        });
    out
}

/// One pixel's R'G'B' codes from 0 to `max`, its chroma gamut-limited at its luma first.
#[inline]
fn rgb_codes(m: Matrix, y: f32, cb: f32, cr: f32, max: f32) -> [u32; 3] {
    let (u, v) = m.limit_to_gamut(y, cb, cr);
    m.ycbcr_to_rgb([y, u, v])
        .map(|c| round_unsigned(c.clamp(0.0, 1.0) * max))
}

/// A frame coloured for display, in one pass over its pixels: the frame
/// [`compose_frame`] builds from `source` and `chroma` at the source's bit
/// depth in 4:4:4, and [`frame_to_rgb8`] of that frame, the same to the bit
/// (each pixel's chroma gamut-limited, quantised to code values, read back
/// and converted), without the three whole-frame copies the two calls make
/// between them. The viewer's preview runs this on every coloured frame.
///
/// # Panics
/// If `chroma` is not the source's size.
pub fn compose_rgb8_444(source: &Frame, chroma: &ChromaField) -> (Frame, Vec<u8>) {
    let (w, h) = (source.width(), source.height());
    assert_eq!(
        (chroma.width, chroma.height),
        (w, h),
        "the chroma is the frame's size"
    );
    let (depth, range, m) = (source.bit_depth, source.range, source.matrix);
    let (offset, scale) = range.luma_offset_scale(depth);
    let mid = f32::from(1u16 << (depth - 1));
    let cscale = range.chroma_scale(depth);
    let (mut cb_codes, mut cr_codes) = (vec![0u16; w * h], vec![0u16; w * h]);
    let mut rgb = vec![0u8; 3 * w * h];
    let row = w.max(1);
    // Row by row in parallel; each pixel on its own.
    rgb.par_chunks_mut(3 * row)
        .zip(
            cb_codes
                .par_chunks_mut(row)
                .zip(cr_codes.par_chunks_mut(row)),
        )
        .zip(source.y.data.par_chunks(row))
        .zip(chroma.cb.par_chunks(row).zip(chroma.cr.par_chunks(row)))
        .for_each(|(((out, (cb_out, cr_out)), ys), (cbs, crs))| {
            let codes = cb_out.iter_mut().zip(cr_out.iter_mut());
            let values = ys.iter().zip(cbs.iter().zip(crs));
            for ((px, (cb_code, cr_code)), (&y, (&cb, &cr))) in
                out.chunks_exact_mut(3).zip(codes).zip(values)
            {
                let y = (f32::from(y) - offset) / scale;
                // As `compose_frame` writes the chroma...
                let (u, v) = m.limit_to_gamut(y, cb, cr);
                (*cb_code, *cr_code) = (range.chroma_code(u, depth), range.chroma_code(v, depth));
                // ...and `frame_to_rgb8` reads it back.
                let (u, v) = (
                    (f32::from(*cb_code) - mid) / cscale,
                    (f32::from(*cr_code) - mid) / cscale,
                );
                for (o, c) in px.iter_mut().zip(rgb_codes(m, y, u, v, 255.0)) {
                    *o = c as u8;
                }
            }
        });
    let plane = |data| Plane {
        width: w,
        height: h,
        data,
    };
    let frame = Frame {
        bit_depth: depth,
        y: source.y.clone(),
        chroma: Some(ChromaPlanes {
            subsampling: Subsampling::S444,
            cb: plane(cb_codes),
            cr: plane(cr_codes),
        }),
        range,
        matrix: m,
    };
    (frame, rgb)
}

/// Recovers a luma code value from a 16-bit R'G'B' pixel written by
/// [`frame_to_rgb16`]: the inverse an archivist uses to check an image sequence.
pub fn luma_from_rgb16(rgb: [u16; 3], matrix: Matrix, range: ColorRange, bit_depth: u8) -> u16 {
    let unit = rgb.map(|v| f32::from(v) / 65535.0);
    let (kr, kb) = matrix.kr_kb();
    let y = f64::from(kr) * f64::from(unit[0])
        + f64::from(1.0 - kr - kb) * f64::from(unit[1])
        + f64::from(kb) * f64::from(unit[2]);
    let (offset, scale) = range.luma_offset_scale(bit_depth);
    (f64::from(offset) + y * f64::from(scale)).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp_frame(bit_depth: u8, subsampling: Option<Subsampling>) -> Frame {
        let mut f = Frame::neutral(
            33,
            17,
            bit_depth,
            subsampling,
            ColorRange::Limited,
            Matrix::Bt709,
        );
        let (lo, scale) = ColorRange::Limited.luma_offset_scale(bit_depth);
        for (i, v) in f.y.data.iter_mut().enumerate() {
            *v = (lo + (i % 97) as f32 / 96.0 * scale) as u16;
        }
        f
    }

    #[test]
    fn depth_conversion() {
        assert_eq!(convert_depth(255, 8, 10), 1020);
        assert_eq!(convert_depth(1020, 10, 8), 255);
        assert_eq!(convert_depth(1023, 10, 8), 255);
        assert_eq!(convert_depth(513, 10, 8), 128);
    }

    #[test]
    fn composed_luma_is_the_source_luma() {
        let src = ramp_frame(10, None);
        let mut chroma = ChromaField::neutral(33, 17);
        chroma
            .cb
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = (i % 7) as f32 * 0.1 - 0.3);
        chroma.cr.fill(0.45);
        for s in [Subsampling::S420, Subsampling::S422, Subsampling::S444] {
            let out = compose_frame(
                &src,
                Some(&chroma),
                OutputLayout {
                    bit_depth: 10,
                    subsampling: s,
                },
            );
            assert_eq!(out.y, src.y);
            let c = out.chroma.as_ref().map(|c| (c.cb.width, c.cb.height));
            assert_eq!(c, Some(s.chroma_size(33, 17)));
        }
    }

    #[test]
    fn rgb16_lets_luma_be_recovered_exactly() {
        for depth in [8, 10] {
            let src = ramp_frame(depth, None);
            let mut chroma = ChromaField::neutral(33, 17);
            chroma.cb.fill(-0.4);
            chroma.cr.fill(0.5);
            let out = compose_frame(
                &src,
                Some(&chroma),
                OutputLayout {
                    bit_depth: depth,
                    subsampling: Subsampling::S444,
                },
            );
            let rgb = frame_to_rgb16(&out);
            for (i, &y) in src.y.data.iter().enumerate() {
                let px = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]];
                assert_eq!(
                    luma_from_rgb16(px, Matrix::Bt709, ColorRange::Limited, depth),
                    y,
                    "pixel {i}"
                );
            }
        }
    }

    #[test]
    fn the_one_pass_preview_is_compose_then_rgb8_to_the_bit() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        for (depth, range, matrix) in [
            (8, ColorRange::Limited, Matrix::Bt709),
            (10, ColorRange::Limited, Matrix::Bt601),
            (8, ColorRange::Full, Matrix::Bt601),
            (10, ColorRange::Full, Matrix::Bt709),
        ] {
            let (w, h) = (61, 37);
            let mut src = Frame::neutral(w, h, depth, None, range, matrix);
            let max = f32::from((1u16 << depth) - 1);
            // Every code somewhere, super-blacks and super-whites included.
            for v in &mut src.y.data {
                *v = (next() * (max + 1.0)).min(max) as u16;
            }
            let mut chroma = ChromaField::neutral(w, h);
            for (i, (cb, cr)) in chroma.cb.iter_mut().zip(&mut chroma.cr).enumerate() {
                // Out of gamut, at the bounds, negative zero, and ordinary.
                (*cb, *cr) = match i % 5 {
                    0 => (1.5 * (next() - 0.5), 1.5 * (next() - 0.5)),
                    1 => (-0.0, 0.5),
                    2 => (-0.5, -0.5),
                    _ => (0.8 * (next() - 0.5), 0.8 * (next() - 0.5)),
                };
            }
            let composed = compose_frame(
                &src,
                Some(&chroma),
                OutputLayout {
                    bit_depth: depth,
                    subsampling: Subsampling::S444,
                },
            );
            let (frame, rgb) = compose_rgb8_444(&src, &chroma);
            assert_eq!(frame, composed, "{depth}-bit {range:?} {matrix:?}");
            assert_eq!(
                rgb,
                frame_to_rgb8(&composed),
                "{depth}-bit {range:?} {matrix:?}"
            );
        }
    }

    #[test]
    fn passthrough_keeps_source_chroma() {
        let mut src = ramp_frame(8, Some(Subsampling::S420));
        if let Some(c) = src.chroma.as_mut() {
            c.cb.data
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 60 + (i % 100) as u16);
        }
        let out = compose_frame(
            &src,
            None,
            OutputLayout {
                bit_depth: 8,
                subsampling: Subsampling::S420,
            },
        );
        assert_eq!(out, src);
    }
}
