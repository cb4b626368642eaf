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
    pub fn format(self, frames: u64) -> String {
        let fps = u64::from(self.fps);
        let mut n = frames;
        let d = self.dropped_per_minute();
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
    pub fn parse(self, text: &str) -> Option<u64> {
        let parts: Vec<u64> = text
            .split([':', ';', '.'])
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()?;
        let [h, m, s, f] = parts[..] else { return None };
        let fps = u64::from(self.fps);
        if m >= 60 || s >= 60 || f >= fps {
            return None;
        }
        let minutes = h * 60 + m;
        let total = (minutes * 60 + s) * fps + f;
        let d = self.dropped_per_minute();
        Some(total - d * (minutes - minutes / 10))
    }
}

/// The timecode of frame `offset` of a film whose first frame is at `start`.
/// `None` if `start` is not a valid timecode at this rate.
pub fn offset_timecode(start: &str, offset: u64, rate: f64) -> Option<String> {
    let base = TimecodeBase::for_rate(rate, start.contains(';'));
    Some(base.format(base.parse(start)? + offset))
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
    }
}
