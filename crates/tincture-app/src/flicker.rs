//! Per-frame flicker as the window shows it: warp error and CDC by source
//! frame, the frames that stand out (marked red on the timeline's graph
//! row), and summaries for the clip and the shot.
//!
//! A frame stands out when its warp error or its CDC is above that
//! series' threshold: four times the median absolute deviation above the
//! median of the frames measured, and at least twice the median. The
//! threshold follows the film, so a grainy reel and a clean one are judged
//! each against itself.

use std::collections::BTreeMap;

/// One frame's flicker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Warp error against the frame before.
    pub warp: f64,
    /// Colour distribution consistency against the frames before, where known.
    pub cdc: Option<f64>,
}

/// The thresholds above which a frame is marked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// For warp error.
    pub warp: f64,
    /// For CDC (infinite when no CDC is known).
    pub cdc: f64,
}

/// A summary of the frames in a range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Frames measured.
    pub frames: usize,
    /// Mean warp error.
    pub mean_warp: f64,
    /// The frame of the highest warp error, and that error.
    pub worst: (u64, f64),
    /// Frames marked.
    pub marked: usize,
}

/// A robust threshold for `values`: median + 4 MAD, and at least twice the median.
fn threshold(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = deviations[deviations.len() / 2];
    (median + 4.0 * mad).max(2.0 * median)
}

/// The flicker measured so far, by source frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flicker {
    samples: BTreeMap<u64, Sample>,
}

impl Flicker {
    /// Records frame `frame`'s flicker (a frame measured again replaces its sample).
    pub fn insert(&mut self, frame: u64, sample: Sample) {
        self.samples.insert(frame, sample);
    }

    /// Forgets the frames in `frames`: the first frames of shots, whose
    /// warp error against the frame before measures the cut, not flicker.
    pub fn forget(&mut self, frames: impl IntoIterator<Item = u64>) {
        for f in frames {
            self.samples.remove(&f);
        }
    }

    /// Forgets everything (another film was opened).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// Frames measured.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no frame is measured.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples in frame order.
    pub fn samples(&self) -> impl Iterator<Item = (u64, Sample)> + '_ {
        self.samples.iter().map(|(&f, &s)| (f, s))
    }

    /// The thresholds over every frame measured.
    pub fn thresholds(&self) -> Thresholds {
        let mut warp: Vec<f64> = self.samples.values().map(|s| s.warp).collect();
        let mut cdc: Vec<f64> = self.samples.values().filter_map(|s| s.cdc).collect();
        Thresholds {
            warp: threshold(&mut warp),
            cdc: threshold(&mut cdc),
        }
    }

    /// Whether `sample` stands out under `t`.
    pub fn is_marked(sample: &Sample, t: &Thresholds) -> bool {
        sample.warp > t.warp || sample.cdc.is_some_and(|c| c > t.cdc)
    }

    /// The marked frames, in order.
    pub fn marked(&self) -> Vec<u64> {
        let t = self.thresholds();
        self.samples
            .iter()
            .filter(|(_, s)| Self::is_marked(s, &t))
            .map(|(&f, _)| f)
            .collect()
    }

    /// The first marked frame after `frame`, wrapping round to the first.
    pub fn next_marked(&self, frame: u64) -> Option<u64> {
        let marked = self.marked();
        marked
            .iter()
            .copied()
            .find(|&f| f > frame)
            .or_else(|| marked.first().copied())
    }

    /// A summary of the frames `start..=end`; `None` when none is measured.
    pub fn summary(&self, start: u64, end: u64) -> Option<Summary> {
        let t = self.thresholds();
        let mut frames = 0;
        let mut sum = 0.0;
        let mut worst = (0, f64::NEG_INFINITY);
        let mut marked = 0;
        for (&f, s) in self.samples.range(start..=end) {
            frames += 1;
            sum += s.warp;
            if s.warp > worst.1 {
                worst = (f, s.warp);
            }
            marked += usize::from(Self::is_marked(s, &t));
        }
        (frames > 0).then(|| Summary {
            frames,
            mean_warp: sum / frames as f64,
            worst,
            marked,
        })
    }
}

/// The change of `now` against `before`, as a signed percentage of `before`.
pub fn trend(before: f64, now: f64) -> Option<f64> {
    (before > 0.0 && before.is_finite() && now.is_finite()).then(|| (now - before) / before * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady_with_a_spike() -> Flicker {
        let mut f = Flicker::default();
        for i in 0..40u64 {
            // Small, slightly varying flicker; frames 12 and 30 stand out.
            let warp = match i {
                12 => 0.02,
                _ => 0.001 + (i % 3) as f64 * 1e-4,
            };
            let cdc = Some(if i == 30 { 0.05 } else { 0.002 });
            f.insert(i, Sample { warp, cdc });
        }
        f
    }

    #[test]
    fn frames_that_stand_out_in_either_series_are_marked() {
        let f = steady_with_a_spike();
        assert_eq!(f.marked(), vec![12, 30]);
        assert_eq!(f.next_marked(0), Some(12));
        assert_eq!(f.next_marked(12), Some(30));
        assert_eq!(f.next_marked(35), Some(12), "wraps round");
    }

    #[test]
    fn cuts_are_not_flicker() {
        let mut f = steady_with_a_spike();
        f.forget([12, 99]);
        assert_eq!(f.marked(), vec![30]);
        assert_eq!(f.len(), 39);
    }

    #[test]
    fn a_steady_film_has_no_marks() {
        let mut f = Flicker::default();
        for i in 0..30u64 {
            f.insert(
                i,
                Sample {
                    warp: 0.001 + (i % 5) as f64 * 1e-5,
                    cdc: None,
                },
            );
        }
        assert!(f.marked().is_empty());
        assert_eq!(f.next_marked(3), None);
        assert!(Flicker::default().summary(0, 10).is_none());
    }

    #[test]
    fn summaries_cover_their_range_and_trends_compare() {
        let f = steady_with_a_spike();
        let clip = f.summary(0, 39).expect("measured");
        assert_eq!(clip.frames, 40);
        assert_eq!(clip.worst, (12, 0.02));
        assert_eq!(clip.marked, 2);
        let shot = f.summary(20, 39).expect("measured");
        assert_eq!(shot.frames, 20);
        assert_eq!(shot.marked, 1);
        assert!(shot.mean_warp < clip.mean_warp);
        assert_eq!(trend(0.002, 0.001), Some(-50.0));
        assert_eq!(trend(0.0, 0.001), None);
    }
}
