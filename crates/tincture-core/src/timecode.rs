//! SMPTE timecode: parsing, formatting and offsetting, drop-frame included.

/// A timecode base: nominal frames per second and whether it drops frame numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimecodeBase {
    /// Nominal (integer) frame rate: 24, 25, 30, 60...
    pub fps: u32,
    /// Drop-frame counting (29.97 and 59.94 material).
    pub drop: bool,
}

impl TimecodeBase {
    /// The base for a frame rate; `drop` is honoured only for 29.97 and 59.94.
    pub fn for_rate(rate: f64, drop: bool) -> Self {
        let fps = rate.round().max(1.0) as u32;
        let ntsc =
            (rate * 1001.0 / 1000.0 - f64::from(fps)).abs() < 0.01 && (fps == 30 || fps == 60);
        Self {
            fps,
            drop: drop && ntsc,
        }
    }

    fn dropped_per_minute(self) -> u64 {
        if self.drop {
            u64::from(self.fps / 15)
        } else {
            0
        }
    }

    /// Formats a frame count as `HH:MM:SS:FF` (`;` before the frames for drop-frame).
    ///
    /// Hours wrap at 24, as on a timecode clock. Any count is accepted: the
    /// arithmetic is done in 128 bits, so a count read from a damaged file
    /// cannot overflow it.
    pub fn format(self, frames: u64) -> String {
        let fps = u128::from(self.fps.max(1));
        let mut n = u128::from(frames);
        let d = u128::from(self.dropped_per_minute());
        if d > 0 {
            let per_10min = fps * 600 - d * 9;
            let per_min = fps * 60 - d;
            let tens = n / per_10min;
            let rem = n % per_10min;
            n += d * 9 * tens
                + if rem > d {
                    d * ((rem - d) / per_min)
                } else {
                    0
                };
        }
        let ff = n % fps;
        let total_s = n / fps;
        let sep = if self.drop { ';' } else { ':' };
        format!(
            "{:02}:{:02}:{:02}{sep}{:02}",
            (total_s / 3600) % 24,
            (total_s / 60) % 60,
            total_s % 60,
            ff
        )
    }

    /// Parses `HH:MM:SS:FF` (or with `;`/`.` before the frames) into a frame count.
    ///
    /// `None` for anything else, including a timecode whose frame count does
    /// not fit in 64 bits (a huge hour field in a damaged tag).
    pub fn parse(self, text: &str) -> Option<u64> {
        let mut fields = text.split([':', ';', '.']);
        let mut next = || -> Option<u64> { fields.next()?.trim().parse().ok() };
        let (h, m, s, f) = (next()?, next()?, next()?, next()?);
        if fields.next().is_some() {
            return None;
        }
        let fps = u64::from(self.fps.max(1));
        if m >= 60 || s >= 60 || f >= fps {
            return None;
        }
        let minutes = h.checked_mul(60)?.checked_add(m)?;
        let total = minutes
            .checked_mul(60)?
            .checked_add(s)?
            .checked_mul(fps)?
            .checked_add(f)?;
        let d = self.dropped_per_minute();
        total.checked_sub(d.checked_mul(minutes - minutes / 10)?)
    }
}

/// The timecode of frame `offset` of a film whose first frame is at `start`.
/// `None` if `start` is not a valid timecode at this rate, or if the sum
/// does not fit in a frame count.
pub fn offset_timecode(start: &str, offset: u64, rate: f64) -> Option<String> {
    let base = TimecodeBase::for_rate(rate, start.contains(';'));
    Some(base.format(base.parse(start)?.checked_add(offset)?))
}

/// The timecode shown for frame `index`: from the film's start timecode, or
/// from zero if it has none.
pub fn frame_timecode(index: u64, rate: f64, start: Option<&str>) -> String {
    start
        .and_then(|s| offset_timecode(s, index, rate))
        .unwrap_or_else(|| TimecodeBase::for_rate(rate, false).format(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_drop() {
        let b = TimecodeBase::for_rate(24.0, false);
        assert_eq!(b.format(0), "00:00:00:00");
        assert_eq!(b.format(24 * 3600 + 23), "01:00:00:23");
        assert_eq!(b.parse("01:00:00:23"), Some(24 * 3600 + 23));
        assert_eq!(
            offset_timecode("10:00:00:00", 48, 25.0).as_deref(),
            Some("10:00:01:23")
        );
    }

    #[test]
    fn drop_frame_round_trips() {
        let b = TimecodeBase::for_rate(30000.0 / 1001.0, true);
        assert!(b.drop);
        assert_eq!(b.format(1800), "00:01:00;02");
        assert_eq!(b.format(17982), "00:10:00;00");
        for n in [0, 1799, 1800, 17981, 17982, 107_892, 123_456] {
            assert_eq!(b.parse(&b.format(n)), Some(n), "frame {n}");
        }
    }

    #[test]
    fn bad_timecode() {
        assert_eq!(offset_timecode("aa:00:00:00", 1, 24.0), None);
        assert_eq!(offset_timecode("00:00:00:30", 1, 24.0), None);
        assert_eq!(frame_timecode(25, 25.0, None), "00:00:01:00");
        assert_eq!(offset_timecode("00:00:00:00:00", 1, 24.0), None);
        assert_eq!(offset_timecode("00:00:00", 1, 24.0), None);
    }

    /// Numbers from a damaged tag or list: no overflow, no panic.
    #[test]
    fn huge_timecodes_are_refused_not_overflowed() {
        let b = TimecodeBase::for_rate(24.0, false);
        assert_eq!(b.parse("99999999999999999:00:00:00"), None);
        assert_eq!(b.parse("18446744073709551615:00:00:00"), None);
        let last = b
            .parse("128102389400760:00:00:00")
            .expect("fits in 64 bits");
        assert_eq!(
            offset_timecode("128102389400760:00:00:00", u64::MAX, 24.0),
            None
        );
        assert_eq!(b.format(last), "00:00:00:00");
        let df = TimecodeBase::for_rate(60000.0 / 1001.0, true);
        for n in [u64::MAX, u64::MAX - 1, u64::MAX / 2] {
            assert_eq!(df.format(n).len(), 11);
            assert_eq!(b.format(n).len(), 11);
        }
        let odd = TimecodeBase::for_rate(f64::INFINITY, false);
        assert!(odd.format(u64::MAX).len() >= 11);
        assert_eq!(TimecodeBase::for_rate(f64::NAN, false).fps, 1);
    }
}
