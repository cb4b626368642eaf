//! Shot detection: where a film's hard cuts are, from its luma alone.
//!
//! Each frame is reduced to two small signatures: a 64-bin luma histogram
//! and a 16x16 grid of block means. Consecutive frames are compared by
//!
//! - **tone**: the earth mover's distance between their histograms (the area
//!   between the two cumulative histograms, in luma units), which grows
//!   smoothly with a fade instead of jumping as bins empty and fill;
//! - **structure**: one minus the Pearson correlation of their block grids,
//!   which ignores any change of brightness and contrast (a fade, a flash,
//!   flicker of an old print) but sees a new picture even when its histogram
//!   is the old one's. It is weighted down as either frame's grid goes flat
//!   (`s² / (s² + 0.02²)` for the smaller grid standard deviation `s`), so
//!   the grain of a black frame does not count as structure.
//!
//! The distance of frame `j` from frame `j - 1` is `structure + tone_weight
//! * tone`. Frame `j` starts a new shot when that distance
//!
//! 1. is at least [`ShotParams::min_distance`];
//! 2. stands out from the distances of the frames before it: above their
//!    median plus [`ShotParams::spread_factor`] robust standard deviations
//!    (1.4826 MAD, at least [`ShotParams::min_spread`]) and above
//!    [`ShotParams::level_ratio`] times their median;
//! 3. is [`ShotParams::neighbour_ratio`] times both neighbouring distances,
//!    so the onset of a pan, a fade or a dissolve (gradual changes) is no cut;
//! 4. is not a flash: no frame among the three before `j` matches a frame
//!    among `j..=j+2` within two frames of it (distance below
//!    [`ShotParams::flash_ratio`] times the cut's), as a one- or two-frame
//!    flash (lightning, a photographer's bulb, a burnt frame) returns to;
//! 5. comes at least [`ShotParams::min_shot_len`] frames after the previous
//!    cut (or the first frame).
//!
//! [`ShotDetector`] takes frames one at a time and reports each cut two
//! frames late (the look-ahead of the flash test); [`detect_shots`] runs it
//! over a whole sequence.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::frame::LumaImage;

/// Bins of the luma histogram.
const BINS: usize = 64;
/// Cells per side of the block-mean grid.
const GRID: usize = 16;
/// The grid standard deviation at which structure counts half.
const FLAT_CONTRAST: f32 = 0.02;
/// Frames the detector waits for after a candidate cut before deciding.
pub const LOOK_AHEAD: u64 = 2;
/// Longest flash, in frames, that is not taken for a shot.
const FLASH_SPAN: u64 = 2;

/// One shot: frames `start..=end` of a film.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shot {
    /// First frame (index from the film's first frame, 0).
    pub start: u64,
    /// Last frame, inclusive.
    pub end: u64,
}

impl Shot {
    /// Number of frames in the shot (0 if `end < start`).
    pub fn frames(&self) -> u64 {
        self.end.saturating_add(1).saturating_sub(self.start)
    }
}

/// Shots that cover every frame of a film of `frame_count` frames:
/// `shots` (in order, not overlapping) with a shot of its own for every
/// stretch they leave out (before the first, between two, after the last).
/// An edit list names only the shots its editor cut; a project needs every
/// frame in a shot. Shots past the film's end are cut at its last frame.
pub fn fill_gaps(shots: &[Shot], frame_count: u64) -> Vec<Shot> {
    let Some(last) = frame_count.checked_sub(1) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(shots.len() * 2 + 1);
    let mut next = 0u64;
    for s in shots {
        if s.start > last || s.end < s.start || s.start < next {
            continue;
        }
        if s.start > next {
            out.push(Shot {
                start: next,
                end: s.start - 1,
            });
        }
        let end = s.end.min(last);
        out.push(Shot {
            start: s.start,
            end,
        });
        next = end + 1;
    }
    if next <= last {
        out.push(Shot {
            start: next,
            end: last,
        });
    }
    out
}

/// Tuning of [`ShotDetector`]; the defaults suit film and video from 8 to
/// 60 frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShotParams {
    /// Fewest frames in a shot: a cut closer than this to the previous cut
    /// (or to the first frame) is ignored. The last shot may be shorter.
    pub min_shot_len: u64,
    /// Smallest frame distance that can be a cut, whatever the context.
    pub min_distance: f32,
    /// How many preceding distances set the local level.
    pub window: usize,
    /// A cut lies this many robust standard deviations above the local median.
    pub spread_factor: f32,
    /// Floor of the robust standard deviation (a still scene has almost none).
    pub min_spread: f32,
    /// A cut is at least this many times the local median.
    pub level_ratio: f32,
    /// A cut is at least this many times the distances just before and after it.
    pub neighbour_ratio: f32,
    /// Frames around a candidate closer than this fraction of its distance
    /// make it a flash, not a cut; 0 turns the flash test off.
    pub flash_ratio: f32,
    /// Weight of the tonal distance (histogram) against the structural one (grid).
    pub tone_weight: f32,
}

impl Default for ShotParams {
    fn default() -> Self {
        Self {
            min_shot_len: 5,
            min_distance: 0.12,
            window: 16,
            spread_factor: 5.0,
            min_spread: 0.01,
            level_ratio: 3.0,
            neighbour_ratio: 2.0,
            flash_ratio: 0.5,
            tone_weight: 1.5,
        }
    }
}

/// What the detector keeps of a frame.
#[derive(Clone, Debug)]
struct Signature {
    /// Normalised luma histogram.
    hist: [f32; BINS],
    /// Grid size actually used (smaller than [`GRID`] for tiny frames).
    grid_size: (usize, usize),
    /// Block means, zero-mean.
    grid: Vec<f32>,
    /// Standard deviation of the block means.
    grid_std: f32,
}

impl Signature {
    fn of(image: &LumaImage) -> Self {
        let (w, h) = (image.width, image.height);
        let (gw, gh) = (GRID.min(w).max(1), GRID.min(h).max(1));
        let mut hist = [0f32; BINS];
        let mut sums = vec![0f64; gw * gh];
        let mut counts = vec![0u32; gw * gh];
        let column: Vec<usize> = (0..w).map(|x| x * gw / w.max(1)).collect();
        for (y, row) in image.data.chunks_exact(w.max(1)).take(h).enumerate() {
            let cells = (y * gh / h.max(1)) * gw;
            for (&v, &cx) in row.iter().zip(&column) {
                let v = if v.is_finite() {
                    v.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                hist[((v * BINS as f32) as usize).min(BINS - 1)] += 1.0;
                sums[cells + cx] += f64::from(v);
                counts[cells + cx] += 1;
            }
        }
        let total: f32 = hist.iter().sum();
        if total > 0.0 {
            hist.iter_mut().for_each(|b| *b /= total);
        }
        let mut grid: Vec<f32> = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| {
                if c > 0 {
                    (s / f64::from(c)) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let mean = grid.iter().sum::<f32>() / grid.len() as f32;
        grid.iter_mut().for_each(|g| *g -= mean);
        let grid_std = (grid.iter().map(|g| g * g).sum::<f32>() / grid.len() as f32).sqrt();
        Self {
            hist,
            grid_size: (gw, gh),
            grid,
            grid_std,
        }
    }

    /// Earth mover's distance between the two histograms, in luma units (0..1).
    fn tone_distance(&self, other: &Self) -> f32 {
        let (mut ca, mut cb, mut sum) = (0f32, 0f32, 0f32);
        for (a, b) in self.hist.iter().zip(&other.hist) {
            ca += a;
            cb += b;
            sum += (ca - cb).abs();
        }
        sum / BINS as f32
    }

    /// One minus the correlation of the block grids (0..2), weighted down
    /// when either grid is flat.
    fn structure_distance(&self, other: &Self) -> f32 {
        if self.grid_size != other.grid_size {
            return 1.0;
        }
        let s = self.grid_std.min(other.grid_std);
        if s <= f32::EPSILON {
            return 0.0;
        }
        let weight = s * s / (s * s + FLAT_CONTRAST * FLAT_CONTRAST);
        let cov = self
            .grid
            .iter()
            .zip(&other.grid)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            / self.grid.len() as f32;
        let r = cov / (self.grid_std * other.grid_std);
        weight * (1.0 - r).clamp(0.0, 2.0)
    }

    fn distance(&self, other: &Self, params: &ShotParams) -> f32 {
        self.structure_distance(other) + params.tone_weight * self.tone_distance(other)
    }
}

/// Median of a non-empty slice (sorted in place).
fn median(values: &mut [f32]) -> f32 {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// Finds hard cuts in a stream of frames. Push frames in order with
/// [`push`](Self::push), then call [`finish`](Self::finish) for the shots.
#[derive(Debug)]
pub struct ShotDetector {
    params: ShotParams,
    /// Signatures of frames `first_signature..frames`.
    signatures: VecDeque<Signature>,
    first_signature: u64,
    /// `distances[k - first_distance]` is the distance of frame `k` from frame `k - 1`.
    distances: VecDeque<f32>,
    first_distance: u64,
    /// Frames pushed so far.
    frames: u64,
    /// First frames of the shots after the first, in order.
    cuts: Vec<u64>,
}

impl ShotDetector {
    /// A detector with these parameters.
    pub fn new(params: ShotParams) -> Self {
        Self {
            params,
            signatures: VecDeque::new(),
            first_signature: 0,
            distances: VecDeque::new(),
            first_distance: 1,
            frames: 0,
            cuts: Vec::new(),
        }
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Cuts found so far: the first frame of every shot after the first.
    pub fn cuts(&self) -> &[u64] {
        &self.cuts
    }

    /// Takes the next frame. Returns the first frame of a new shot when one
    /// is now certain: a cut at frame `j` is reported when frame `j + 2` is
    /// pushed (or by [`finish`](Self::finish)).
    pub fn push(&mut self, frame: &LumaImage) -> Option<u64> {
        let signature = Signature::of(frame);
        if let Some(previous) = self.signatures.back() {
            self.distances
                .push_back(previous.distance(&signature, &self.params));
        }
        self.signatures.push_back(signature);
        self.frames += 1;
        // Keep the signatures the flash test needs, and the window of distances.
        let keep_signatures = (FLASH_SPAN + 2 + LOOK_AHEAD) as usize;
        while self.signatures.len() > keep_signatures {
            self.signatures.pop_front();
            self.first_signature += 1;
        }
        let keep_distances = self.params.window + LOOK_AHEAD as usize + 1;
        while self.distances.len() > keep_distances {
            self.distances.pop_front();
            self.first_distance += 1;
        }
        let candidate = self.frames.checked_sub(1 + LOOK_AHEAD)?;
        self.decide(candidate)
    }

    /// Decides the frames still waiting for their look-ahead and returns
    /// every shot, in order, covering all frames pushed (none if none were).
    pub fn finish(mut self) -> Vec<Shot> {
        for j in self.frames.saturating_sub(LOOK_AHEAD)..self.frames {
            self.decide(j);
        }
        let mut shots = Vec::with_capacity(self.cuts.len() + 1);
        let mut start = 0;
        for &cut in self.cuts.iter().chain(std::iter::once(&self.frames)) {
            if cut > start {
                shots.push(Shot {
                    start,
                    end: cut - 1,
                });
            }
            start = cut;
        }
        shots
    }

    fn distance_at(&self, k: u64) -> Option<f32> {
        let i = k.checked_sub(self.first_distance)?;
        self.distances.get(usize::try_from(i).ok()?).copied()
    }

    fn signature_at(&self, k: u64) -> Option<&Signature> {
        let i = k.checked_sub(self.first_signature)?;
        self.signatures.get(usize::try_from(i).ok()?)
    }

    /// Whether frame `j` starts a new shot; records it if so.
    fn decide(&mut self, j: u64) -> Option<u64> {
        let p = &self.params;
        let d = self.distance_at(j)?;
        let previous_cut = self.cuts.last().copied().unwrap_or(0);
        if j - previous_cut < p.min_shot_len || d < p.min_distance {
            return None;
        }
        let before = self.distance_at(j - 1).unwrap_or(0.0);
        let after = self.distance_at(j + 1).unwrap_or(0.0);
        if d < p.neighbour_ratio * before.max(after) {
            return None;
        }
        let mut window: Vec<f32> = (j.saturating_sub(p.window as u64).max(1)..j)
            .filter_map(|k| self.distance_at(k))
            .collect();
        if !window.is_empty() {
            let level = median(&mut window);
            let mut deviations: Vec<f32> = window.iter().map(|v| (v - level).abs()).collect();
            let spread = (1.4826 * median(&mut deviations)).max(p.min_spread);
            if d < level + p.spread_factor * spread || d < p.level_ratio * level {
                return None;
            }
        }
        if self.is_flash(j, d) {
            return None;
        }
        self.cuts.push(j);
        Some(j)
    }

    /// Whether a frame just before `j` matches one at or just after it, as
    /// the picture does either side of a one- or two-frame flash.
    fn is_flash(&self, j: u64, d: f32) -> bool {
        let limit = self.params.flash_ratio * d;
        for back in 0..=FLASH_SPAN {
            for ahead in 0..=FLASH_SPAN {
                if !(1..=FLASH_SPAN).contains(&(back + ahead)) {
                    continue;
                }
                let Some(before) = (j - 1).checked_sub(back).and_then(|k| self.signature_at(k))
                else {
                    continue;
                };
                let Some(after) = self.signature_at(j + ahead) else {
                    continue;
                };
                if before.distance(after, &self.params) < limit {
                    return true;
                }
            }
        }
        false
    }
}

/// The shots of a whole sequence of frames.
pub fn detect_shots<'a>(
    frames: impl IntoIterator<Item = &'a LumaImage>,
    params: ShotParams,
) -> Vec<Shot> {
    let mut detector = ShotDetector::new(params);
    for frame in frames {
        detector.push(frame);
    }
    detector.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_between_listed_shots_become_shots() {
        let shot = |start, end| Shot { start, end };
        let listed = [shot(10, 19), shot(30, 39), shot(40, 44)];
        assert_eq!(
            fill_gaps(&listed, 60),
            vec![
                shot(0, 9),
                shot(10, 19),
                shot(20, 29),
                shot(30, 39),
                shot(40, 44),
                shot(45, 59)
            ]
        );
        // Covered already: unchanged. Past the end: cut. Nothing: one shot.
        assert_eq!(fill_gaps(&[shot(0, 59)], 60), vec![shot(0, 59)]);
        assert_eq!(fill_gaps(&[shot(0, 80)], 60), vec![shot(0, 59)]);
        assert_eq!(fill_gaps(&[], 60), vec![shot(0, 59)]);
        assert!(fill_gaps(&[shot(0, 5)], 0).is_empty());
        // Every frame in exactly one shot, in order.
        let filled = fill_gaps(&listed, 60);
        assert!(filled.windows(2).all(|w| w[1].start == w[0].end + 1));
    }

    const W: usize = 96;
    const H: usize = 64;

    /// Deterministic noise in -1..1 from a frame, pixel and seed.
    fn noise(t: u32, i: usize, seed: u32) -> f32 {
        let mut x = (i as u32)
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(t.wrapping_mul(0x85EB_CA6B))
            ^ seed.wrapping_mul(0xC2B2_AE35);
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846C_A68B);
        x ^= x >> 16;
        (x as f32 / u32::MAX as f32) * 2.0 - 1.0
    }

    /// A textured scene: oriented stripes, a soft blob and grain. `kind`
    /// picks its layout, `t` the frame (for the grain), `shift` the camera's
    /// horizontal position in pixels.
    fn scene(kind: u32, t: u32, shift: f32) -> LumaImage {
        // Stripe frequencies, blob centre and vertical gradient of each layout.
        const LAYOUTS: [(f32, f32, f32, f32, f32); 5] = [
            (0.07, 0.05, 20.0, 10.0, 0.1),
            (0.12, -0.03, 70.0, 45.0, -0.1),
            (0.03, 0.15, 45.0, 30.0, 0.2),
            (-0.09, 0.09, 80.0, 12.0, -0.2),
            (0.18, 0.02, 10.0, 50.0, 0.0),
        ];
        let (fx, fy, bx, by, gradient) = LAYOUTS[kind as usize % LAYOUTS.len()];
        let mut data = Vec::with_capacity(W * H);
        for y in 0..H {
            for x in 0..W {
                let (xf, yf) = (x as f32 + shift, y as f32);
                let stripes = (fx * xf + fy * yf).sin();
                let r2 = ((xf - bx).powi(2) + (yf - by).powi(2)) / 300.0;
                let blob = (-r2).exp();
                let v = 0.45 + 0.18 * stripes + 0.3 * blob - gradient * (yf / H as f32 - 0.5)
                    + 0.03 * noise(t, y * W + x, kind);
                data.push(v.clamp(0.0, 1.0));
            }
        }
        LumaImage {
            width: W,
            height: H,
            data,
        }
    }

    fn mirrored(image: &LumaImage) -> LumaImage {
        let mut data = image.data.clone();
        for row in data.chunks_exact_mut(image.width) {
            row.reverse();
        }
        LumaImage {
            data,
            ..image.clone()
        }
    }

    fn scaled(image: &LumaImage, gain: f32) -> LumaImage {
        LumaImage {
            data: image
                .data
                .iter()
                .map(|v| (v * gain).clamp(0.0, 1.0))
                .collect(),
            ..image.clone()
        }
    }

    fn flash(image: &LumaImage) -> LumaImage {
        LumaImage {
            data: image
                .data
                .iter()
                .map(|v| (0.6 + 0.6 * v).min(1.0))
                .collect(),
            ..image.clone()
        }
    }

    /// A slow drift: half a pixel a frame.
    fn drift(t: u32) -> f32 {
        0.5 * t as f32
    }

    /// `(scene, frames)` runs, drifting.
    fn shots_of(runs: &[(u32, u32)]) -> Vec<LumaImage> {
        let mut t = 0;
        let mut frames = Vec::new();
        for &(kind, n) in runs {
            for _ in 0..n {
                frames.push(scene(kind, t, drift(t)));
                t += 1;
            }
        }
        frames
    }

    fn starts(shots: &[Shot]) -> Vec<u64> {
        shots.iter().map(|s| s.start).collect()
    }

    fn detect(frames: &[LumaImage]) -> Vec<Shot> {
        detect_shots(frames, ShotParams::default())
    }

    /// The shots cover every frame, in order, without gaps.
    fn assert_tiles(shots: &[Shot], frames: usize) {
        let mut next = 0;
        for s in shots {
            assert_eq!(s.start, next, "{shots:?}");
            assert!(s.end >= s.start);
            next = s.end + 1;
        }
        assert_eq!(next, frames as u64);
    }

    #[test]
    fn hard_cuts_at_the_exact_frame_short_shots_included() {
        let frames = shots_of(&[(0, 20), (1, 8), (2, 6), (3, 7), (0, 15)]);
        let shots = detect(&frames);
        assert_tiles(&shots, frames.len());
        assert_eq!(starts(&shots), vec![0, 20, 28, 34, 41]);
        assert_eq!(shots[2], Shot { start: 28, end: 33 });
        assert_eq!(shots[2].frames(), 6);
    }

    #[test]
    fn streaming_reports_each_cut_two_frames_late() {
        let frames = shots_of(&[(0, 12), (1, 12)]);
        let mut detector = ShotDetector::new(ShotParams::default());
        let mut reported = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if let Some(cut) = detector.push(f) {
                reported.push((i as u64, cut));
            }
        }
        assert_eq!(reported, vec![(12 + LOOK_AHEAD, 12)]);
        assert_eq!(detector.finish().len(), 2);
    }

    #[test]
    fn cut_in_the_last_frames_is_found_by_finish() {
        let frames = shots_of(&[(0, 15), (2, 1)]);
        let params = ShotParams::default();
        let shots = detect(&frames);
        assert_eq!(starts(&shots), vec![0, 15], "{params:?}");
    }

    #[test]
    fn fades_are_not_cuts_but_a_cut_during_one_is() {
        // Scene 0, faded out to black over 12 frames, 5 black frames, scene 1
        // faded in over 12 frames: a gradual change throughout.
        let mut frames = shots_of(&[(0, 15)]);
        for i in 0..12u32 {
            frames.push(scaled(
                &scene(0, 15 + i, drift(15 + i)),
                1.0 - (i + 1) as f32 / 12.0,
            ));
        }
        for i in 0..5u32 {
            frames.push(scaled(&scene(0, 27 + i, drift(27 + i)), 0.0));
        }
        for i in 0..12u32 {
            frames.push(scaled(
                &scene(1, 32 + i, drift(32 + i)),
                (i + 1) as f32 / 12.0,
            ));
        }
        frames.extend((44..54).map(|t| scene(1, t, drift(t))));
        let shots = detect(&frames);
        assert_eq!(shots, vec![Shot { start: 0, end: 53 }]);
        // Fading out fast (4 frames), still no cut.
        let mut fast = shots_of(&[(2, 12)]);
        fast.extend(
            (0..4u32).map(|i| scaled(&scene(2, 12 + i, drift(12 + i)), 0.75 - 0.25 * i as f32)),
        );
        fast.extend((16..26).map(|t| scaled(&scene(2, t, drift(t)), 0.0)));
        assert_eq!(detect(&fast).len(), 1, "fast fade");
        // Its steps are large enough to pass for cuts without the neighbour test.
        let naive = ShotParams {
            neighbour_ratio: 0.0,
            ..ShotParams::default()
        };
        assert!(detect_shots(&fast, naive).len() > 1, "fast fade, naively");
        // A fade-out interrupted by a hard cut to a full-brightness scene:
        // the cut is found at its frame, and nothing else.
        let mut cut = shots_of(&[(0, 15)]);
        cut.extend(
            (0..6u32).map(|i| scaled(&scene(0, 15 + i, drift(15 + i)), 1.0 - 0.1 * (i + 1) as f32)),
        );
        cut.extend((21..36).map(|t| scene(3, t, drift(t))));
        assert_eq!(starts(&detect(&cut)), vec![0, 21]);
    }

    #[test]
    fn cut_from_and_to_black_is_found() {
        let mut frames: Vec<LumaImage> = (0..10).map(|t| scaled(&scene(0, t, 0.0), 0.0)).collect();
        frames.extend((10..25).map(|t| scene(1, t, drift(t))));
        frames.extend((25..35).map(|t| scaled(&scene(0, t, 0.0), 0.02)));
        assert_eq!(starts(&detect(&frames)), vec![0, 10, 25]);
    }

    #[test]
    fn flashes_are_not_cuts() {
        let mut frames = shots_of(&[(0, 15)]);
        frames.push(flash(&scene(0, 15, drift(15))));
        frames.extend((16..28).map(|t| scene(0, t, drift(t))));
        frames.push(flash(&scene(0, 28, drift(28))));
        frames.push(flash(&scene(0, 29, drift(29))));
        frames.extend((30..42).map(|t| scene(0, t, drift(t))));
        assert_eq!(detect(&frames).len(), 1, "{:?}", detect(&frames));
        // The flashes are strong enough to be cuts without the flash test:
        // the two-frame one at once, the one-frame one when the neighbour
        // test (which a return to the first picture also fails) is off too.
        let no_flash_test = ShotParams {
            flash_ratio: 0.0,
            ..ShotParams::default()
        };
        assert_eq!(starts(&detect_shots(&frames, no_flash_test)), vec![0, 28]);
        let naive = ShotParams {
            neighbour_ratio: 0.0,
            ..no_flash_test
        };
        assert_eq!(starts(&detect_shots(&frames, naive)), vec![0, 15, 28]);
    }

    #[test]
    fn a_flash_next_to_a_real_cut_leaves_the_cut() {
        let mut frames = shots_of(&[(0, 15)]);
        frames.push(flash(&scene(0, 15, drift(15))));
        frames.extend((16..24).map(|t| scene(0, t, drift(t))));
        frames.extend((24..40).map(|t| scene(2, t, drift(t))));
        assert_eq!(starts(&detect(&frames)), vec![0, 24]);
    }

    #[test]
    fn steady_pan_is_one_shot() {
        for speed in [1.0, 3.0, 6.0] {
            let frames: Vec<LumaImage> = (0..60).map(|t| scene(1, t, speed * t as f32)).collect();
            assert_eq!(detect(&frames).len(), 1, "pan at {speed} px/frame");
        }
        // A whip pan (8 px a frame) that starts and stops abruptly.
        let frames: Vec<LumaImage> = (0..60)
            .map(|t| {
                let x = match t {
                    0..20 => 0.0,
                    20..40 => 8.0 * (t - 20) as f32,
                    _ => 160.0,
                };
                scene(1, t, x)
            })
            .collect();
        assert_eq!(detect(&frames).len(), 1, "{:?}", detect(&frames));
        let naive = ShotParams {
            neighbour_ratio: 0.0,
            ..ShotParams::default()
        };
        // Its first step is large enough to pass for a cut without the neighbour test.
        let naive = detect_shots(&frames, naive);
        assert!(starts(&naive).contains(&21), "naively: {naive:?}");
    }

    #[test]
    fn grain_alone_is_one_shot() {
        let frames: Vec<LumaImage> = (0..50)
            .map(|t| {
                let mut f = scene(3, t, 0.0);
                for (i, v) in f.data.iter_mut().enumerate() {
                    *v = (*v + 0.08 * noise(t, i, 99)).clamp(0.0, 1.0);
                }
                f
            })
            .collect();
        assert_eq!(detect(&frames).len(), 1);
        // Grain on black, too.
        let black: Vec<LumaImage> = (0..30)
            .map(|t| LumaImage {
                width: W,
                height: H,
                data: (0..W * H).map(|i| 0.03 + 0.02 * noise(t, i, 5)).collect(),
            })
            .collect();
        assert_eq!(detect(&black).len(), 1);
    }

    #[test]
    fn histogram_twins_are_told_apart() {
        // The second shot is the first mirrored: the same histogram, another picture.
        let a: Vec<LumaImage> = (0..15).map(|t| scene(0, t, 0.0)).collect();
        let mut frames = a.clone();
        frames.extend(a.iter().map(mirrored));
        let sa = Signature::of(&frames[14]);
        let sb = Signature::of(&frames[15]);
        assert!(sa.tone_distance(&sb) < 0.01, "histograms alike");
        assert_eq!(starts(&detect(&frames)), vec![0, 15]);
    }

    #[test]
    fn min_shot_len_merges_cuts_too_close() {
        let frames = shots_of(&[(0, 10), (1, 3), (2, 12)]);
        assert_eq!(starts(&detect(&frames)), vec![0, 10]);
        let params = ShotParams {
            min_shot_len: 3,
            ..ShotParams::default()
        };
        assert_eq!(starts(&detect_shots(&frames, params)), vec![0, 10, 13]);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        assert!(detect(&[]).is_empty());
        let one = [scene(0, 0, 0.0)];
        assert_eq!(detect(&one), vec![Shot { start: 0, end: 0 }]);
        let tiny: Vec<LumaImage> = (0..8)
            .map(|t| LumaImage {
                width: 3,
                height: 2,
                data: vec![0.1 * t as f32; 6],
            })
            .collect();
        assert_eq!(detect(&tiny).len(), 1);
    }
}
