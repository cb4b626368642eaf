//! Colour science: Y'CbCr matrices, code-value ranges, and the gamut limit
//! that lets chroma be added without ever touching luma.

/// The Y'CbCr matrix (luma coefficients) of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Matrix {
    /// ITU-R BT.601 (SD video; also BT.470BG / SMPTE 170M).
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
    /// ITU-R BT.2020 non-constant luminance.
    Bt2020,
}

impl Matrix {
    /// The matrix a player would assume for untagged video of this height.
    pub fn default_for_height(height: usize) -> Self {
        if height >= 720 {
            Self::Bt709
        } else {
            Self::Bt601
        }
    }

    /// (Kr, Kb) luma coefficients.
    pub fn kr_kb(self) -> (f32, f32) {
        match self {
            Self::Bt601 => (0.299, 0.114),
            Self::Bt709 => (0.2126, 0.0722),
            Self::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// Converts non-linear R'G'B' (0..1) to Y' (0..1) and Cb, Cr (-0.5..0.5).
    pub fn rgb_to_ycbcr(self, [r, g, b]: [f32; 3]) -> [f32; 3] {
        let (kr, kb) = self.kr_kb();
        let kg = 1.0 - kr - kb;
        let y = kr * r + kg * g + kb * b;
        [
            y,
            (b - y) / (2.0 * (1.0 - kb)),
            (r - y) / (2.0 * (1.0 - kr)),
        ]
    }

    /// Converts Y' (0..1) and Cb, Cr (-0.5..0.5) to non-linear R'G'B', unclamped.
    pub fn ycbcr_to_rgb(self, [y, cb, cr]: [f32; 3]) -> [f32; 3] {
        let (kr, kb) = self.kr_kb();
        let kg = 1.0 - kr - kb;
        let r = y + 2.0 * (1.0 - kr) * cr;
        let b = y + 2.0 * (1.0 - kb) * cb;
        let g = (y - kr * r - kb * b) / kg;
        [r, g, b]
    }

    /// Scales (cb, cr) towards neutral just enough that the R'G'B' of
    /// (y, cb, cr) lies inside 0..1. The luma is never changed; where `y`
    /// itself is outside 0..1 the chroma becomes neutral.
    ///
    /// This is what makes an RGB export keep the source luma: a colour
    /// outside the gamut would be clipped, and clipping changes luma.
    #[inline]
    pub fn limit_to_gamut(self, y: f32, cb: f32, cr: f32) -> (f32, f32) {
        let inside = (0.0..=1.0).contains(&y);
        let (kr, kb) = self.kr_kb();
        let kg = 1.0 - kr - kb;
        // Offsets of R, G, B from Y at full chroma.
        let dr = 2.0 * (1.0 - kr) * cr;
        let db = 2.0 * (1.0 - kb) * cb;
        let dg = -(kr * dr + kb * db) / kg;
        // How far each of R, G, B may go before it leaves 0..1 (no bound
        // where it barely moves); written without branches, as this runs
        // for every pixel of every frame.
        let reach = |d: f32| {
            let room = if d > 0.0 { 1.0 - y } else { -y };
            let t = room / d;
            if d.abs() > 1e-9 { t } else { 1.0 }
        };
        let t = reach(dr).min(reach(dg)).min(reach(db)).clamp(0.0, 1.0);
        if inside { (cb * t, cr * t) } else { (0.0, 0.0) }
    }
}

/// Whether code values use the limited ("TV", 16..235 at 8 bit) or full range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ColorRange {
    /// Limited range: black at 16 << (depth - 8), white at 235 << (depth - 8).
    Limited,
    /// Full range: 0 ..= 2^depth - 1.
    Full,
}

impl ColorRange {
    /// (offset, scale) such that unit luma = (code - offset) / scale.
    pub fn luma_offset_scale(self, bit_depth: u8) -> (f32, f32) {
        match self {
            Self::Limited => {
                let k = f32::from(1u16 << (bit_depth - 8));
                (16.0 * k, 219.0 * k)
            }
            Self::Full => (0.0, ((1u32 << bit_depth) - 1) as f32),
        }
    }

    /// (scale) such that unit chroma = (code - 2^(depth-1)) / scale.
    pub fn chroma_scale(self, bit_depth: u8) -> f32 {
        match self {
            Self::Limited => 224.0 * f32::from(1u16 << (bit_depth - 8)),
            Self::Full => ((1u32 << bit_depth) - 1) as f32,
        }
    }

    /// Code value of black.
    pub fn luma_black(self, bit_depth: u8) -> u16 {
        match self {
            Self::Limited => 16 << (bit_depth - 8),
            Self::Full => 0,
        }
    }

    /// Code value of a unit-range chroma value, rounded and clamped to the legal range.
    #[inline]
    pub fn chroma_code(self, value: f32, bit_depth: u8) -> u16 {
        let mid = f32::from(1u16 << (bit_depth - 1));
        let (lo, hi) = match self {
            Self::Limited => {
                let k = f32::from(1u16 << (bit_depth - 8));
                (16.0 * k, 240.0 * k)
            }
            Self::Full => (0.0, ((1u32 << bit_depth) - 1) as f32),
        };
        // Clamping before rounding gives the same code (the bounds are whole
        // numbers), and leaves a number that rounds without branches.
        round_unsigned((mid + value * self.chroma_scale(bit_depth)).clamp(lo, hi)) as u16
    }
}

/// `x.round()` for `x` from 0 to 2^31 (0 for NaN), without branches: what
/// rounding code values needs, once they are clamped to their range.
#[inline]
pub fn round_unsigned(x: f32) -> u32 {
    // x + 0.5 is exact in f64, and truncation is the floor of a positive number.
    (f64::from(x) + 0.5) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random 32-bit values from `seed` (non-zero).
    fn xorshift(mut bits: u32) -> impl FnMut() -> u32 {
        move || {
            bits ^= bits << 13;
            bits ^= bits >> 17;
            bits ^= bits << 5;
            bits
        }
    }

    #[test]
    fn chroma_codes_round_as_f32_round_then_clamp() {
        let mut next = xorshift(0x2545_f491u32);
        for k in 0..200_000 {
            let value = match k % 3 {
                0 => f32::from_bits(next()),
                1 => (next() % 40_001) as f32 / 20_000.0 - 1.0,
                // Exactly between two codes at 8 and 10 bits.
                _ => ((next() % 600) as f32 + 0.5 - 300.0) / 224.0,
            };
            for range in [ColorRange::Limited, ColorRange::Full] {
                for depth in [8u8, 10, 12, 16] {
                    let mid = f32::from(1u16 << (depth - 1));
                    let code = (mid + value * range.chroma_scale(depth)).round();
                    let (lo, hi) = match range {
                        ColorRange::Limited => {
                            let k = f32::from(1u16 << (depth - 8));
                            (16.0 * k, 240.0 * k)
                        }
                        ColorRange::Full => (0.0, ((1u32 << depth) - 1) as f32),
                    };
                    let want = code.clamp(lo, hi) as u16;
                    assert_eq!(
                        range.chroma_code(value, depth),
                        want,
                        "{value:e} {range:?} {depth}"
                    );
                }
            }
        }
        for x in [0.0f32, 0.5, 1.5, 2.5, 0.49999997, 254.5, 65535.0, 1e9] {
            assert_eq!(round_unsigned(x) as f32, x.round(), "{x}");
        }
        assert_eq!(round_unsigned(f32::NAN), 0);
    }

    #[test]
    fn the_gamut_limit_without_branches_is_the_plain_one_to_the_bit() {
        // The limit as first written: a loop with a branch per channel.
        fn plain(m: Matrix, y: f32, cb: f32, cr: f32) -> (f32, f32) {
            if !(0.0..=1.0).contains(&y) {
                return (0.0, 0.0);
            }
            let (kr, kb) = m.kr_kb();
            let kg = 1.0 - kr - kb;
            let dr = 2.0 * (1.0 - kr) * cr;
            let db = 2.0 * (1.0 - kb) * cb;
            let dg = -(kr * dr + kb * db) / kg;
            let mut t = 1.0f32;
            for d in [dr, dg, db] {
                if d > 1e-9 {
                    t = t.min((1.0 - y) / d);
                } else if d < -1e-9 {
                    t = t.min(-y / d);
                }
            }
            let t = t.clamp(0.0, 1.0);
            (cb * t, cr * t)
        }
        let mut next = xorshift(0x9e37_79b9u32);
        let edge = [0.0f32, 1.0, -0.0, 1e-10, -1e-10, 0.5, 0.7, -0.7];
        for k in 0..300_000 {
            let mut v = [0.0f32; 3];
            for x in &mut v {
                *x = match next() % 4 {
                    0 => edge[(next() % 8) as usize],
                    1 => f32::from_bits(next()),
                    _ => (next() % 20_001) as f32 / 10_000.0 - 0.5,
                };
            }
            let m = [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020][k % 3];
            let (ours, theirs) = (
                m.limit_to_gamut(v[0], v[1], v[2]),
                plain(m, v[0], v[1], v[2]),
            );
            let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(
                same(ours.0, theirs.0) && same(ours.1, theirs.1),
                "{m:?} {v:?}: {ours:?} against {theirs:?}"
            );
        }
    }

    #[test]
    fn rgb_ycbcr_round_trip() {
        for m in [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020] {
            for rgb in [[0.1, 0.5, 0.9], [1.0, 0.0, 0.0], [0.3, 0.3, 0.3]] {
                let back = m.ycbcr_to_rgb(m.rgb_to_ycbcr(rgb));
                for c in 0..3 {
                    assert!((back[c] - rgb[c]).abs() < 1e-5, "{m:?} {rgb:?} -> {back:?}");
                }
            }
        }
    }

    /// The published matrices, so a swapped or mistyped coefficient fails
    /// (a round trip alone passes with any invertible matrix). Y'CbCr of pure
    /// red, green and blue are the rows of each standard's R'G'B' to Y'CbCr
    /// matrix read by column: BT.601 Cb = -0.168736 R - 0.331264 G + 0.5 B,
    /// Cr = 0.5 R - 0.418688 G - 0.081312 B; BT.709 Cb = -0.114572 R -
    /// 0.385428 G + 0.5 B, Cr = 0.5 R - 0.454153 G - 0.045847 B; BT.2020
    /// Cb = -0.139630 R - 0.360370 G + 0.5 B, Cr = 0.5 R - 0.459786 G -
    /// 0.040214 B.
    #[test]
    fn matrices_have_the_published_coefficients() {
        let close = |got: [f32; 3], want: [f32; 3], what: &str| {
            for c in 0..3 {
                assert!(
                    (got[c] - want[c]).abs() < 1e-4,
                    "{what}: got {got:?}, want {want:?}"
                );
            }
        };
        assert_eq!(Matrix::Bt601.kr_kb(), (0.299, 0.114));
        assert_eq!(Matrix::Bt709.kr_kb(), (0.2126, 0.0722));
        assert_eq!(Matrix::Bt2020.kr_kb(), (0.2627, 0.0593));
        let table: [(Matrix, [[f32; 3]; 3]); 3] = [
            (
                Matrix::Bt601,
                [
                    [0.299, -0.168_736, 0.5],
                    [0.587, -0.331_264, -0.418_688],
                    [0.114, 0.5, -0.081_312],
                ],
            ),
            (
                Matrix::Bt709,
                [
                    [0.2126, -0.114_572, 0.5],
                    [0.7152, -0.385_428, -0.454_153],
                    [0.0722, 0.5, -0.045_847],
                ],
            ),
            (
                Matrix::Bt2020,
                [
                    [0.2627, -0.139_630, 0.5],
                    [0.6780, -0.360_370, -0.459_786],
                    [0.0593, 0.5, -0.040_214],
                ],
            ),
        ];
        let primaries = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        for (m, ycbcr) in table {
            for (rgb, want) in primaries.iter().zip(ycbcr) {
                close(m.rgb_to_ycbcr(*rgb), want, &format!("{m:?} {rgb:?}"));
                close(
                    m.ycbcr_to_rgb(want),
                    *rgb,
                    &format!("{m:?} back to {rgb:?}"),
                );
            }
            // White has Y' 1; every gray has no chroma and Y' equal to its level.
            close(
                m.rgb_to_ycbcr([1.0; 3]),
                [1.0, 0.0, 0.0],
                &format!("{m:?} white"),
            );
            for v in [0.0, 0.18, 0.5] {
                close(
                    m.rgb_to_ycbcr([v; 3]),
                    [v, 0.0, 0.0],
                    &format!("{m:?} gray {v}"),
                );
            }
        }
        // The inverse's published form: BT.601 R = Y + 1.402 Cr,
        // G = Y - 0.344136 Cb - 0.714136 Cr, B = Y + 1.772 Cb; BT.709
        // R = Y + 1.5748 Cr, G = Y - 0.187324 Cb - 0.468124 Cr, B = Y + 1.8556 Cb.
        let (y, cb, cr) = (0.5f32, 0.1f32, -0.2f32);
        close(
            Matrix::Bt601.ycbcr_to_rgb([y, cb, cr]),
            [
                y + 1.402 * cr,
                y - 0.344_136 * cb - 0.714_136 * cr,
                y + 1.772 * cb,
            ],
            "BT.601 inverse",
        );
        close(
            Matrix::Bt709.ycbcr_to_rgb([y, cb, cr]),
            [
                y + 1.5748 * cr,
                y - 0.187_324 * cb - 0.468_124 * cr,
                y + 1.8556 * cb,
            ],
            "BT.709 inverse",
        );
        // Untagged video: SD is BT.601, HD is BT.709.
        assert_eq!(Matrix::default_for_height(576), Matrix::Bt601);
        assert_eq!(Matrix::default_for_height(1080), Matrix::Bt709);
    }

    #[test]
    fn gamut_limit_keeps_rgb_in_range_and_hue() {
        let m = Matrix::Bt709;
        for y in [0.0, 0.05, 0.5, 0.95, 1.0] {
            let (cb, cr) = m.limit_to_gamut(y, 0.4, -0.45);
            let rgb = m.ycbcr_to_rgb([y, cb, cr]);
            assert!(
                rgb.iter().all(|v| (-1e-5..=1.0 + 1e-5).contains(v)),
                "y={y} {rgb:?}"
            );
            if cb != 0.0 {
                assert!((cr / cb - (-0.45 / 0.4)).abs() < 1e-4, "hue kept");
            }
        }
        // Chroma already inside the gamut is left alone.
        assert_eq!(m.limit_to_gamut(0.5, 0.05, 0.02), (0.05, 0.02));
    }

    #[test]
    fn ranges() {
        assert_eq!(ColorRange::Limited.luma_offset_scale(10), (64.0, 876.0));
        assert_eq!(ColorRange::Full.chroma_code(0.0, 8), 128);
        assert_eq!(ColorRange::Limited.chroma_code(1.0, 8), 240);
    }
}
