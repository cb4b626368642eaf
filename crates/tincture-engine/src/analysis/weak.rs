//! Where to paint next: each frame's share coloured from weak sources (the
//! model alone, or a colour-memory match too unsure to count), found by
//! colouring a stretch of the film as an export would, and the frames where
//! one more keyframe would help most.
//!
//! The scan colours at a reduced size ([`SCAN_MAX_WIDTH`]): the share is a
//! fraction of the picture, and what loses the flow (occlusion, entry, fast
//! motion) loses it at any size.

use std::sync::atomic::{AtomicBool, Ordering};

use tincture_core::colorize::Colorizer;
use tincture_core::frame::LumaImage;
use tincture_core::propagate::suggest_keyframes;
use tincture_media::VideoReader;

use crate::film::{FilmColorizer, FilmPlan};
use crate::{Error, Result};

use super::FrameRange;

/// The widest picture a scan colours; wider films are scanned shrunk to it.
pub const SCAN_MAX_WIDTH: usize = 480;

/// Frames over which a keyframe's help is taken to fade (by 1/e), as the
/// colour carried from it does (see [`suggest_keyframes`]).
pub const SUGGEST_WINDOW: usize = 12;
/// The most suggestions given at once.
pub const SUGGEST_MAX: usize = 5;
/// A suggestion must promise to replace at least this much weak colour:
/// a whole frame's worth.
pub const SUGGEST_MIN_GAIN: f32 = 1.0;

/// A frame where one more keyframe would help.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Suggestion {
    /// The frame index.
    pub frame: u64,
    /// The expected gain: the weak colour a keyframe there would replace,
    /// in frames' worth (see [`suggest_keyframes`]).
    pub gain: f32,
}

/// The frames where one more keyframe would help most, best first, from the
/// weak shares of consecutive frames starting at frame `first`. Frames in
/// `keyframes` are never suggested.
pub fn suggestions(weak: &[f32], first: u64, keyframes: &[u64]) -> Vec<Suggestion> {
    // A keyframe already there gains nothing: its frame counts as sure.
    let mut weak = weak.to_vec();
    for &k in keyframes {
        if let Some(w) = k
            .checked_sub(first)
            .and_then(|i| weak.get_mut(usize::try_from(i).ok()?))
        {
            *w = 0.0;
        }
    }
    suggest_keyframes(&weak, SUGGEST_WINDOW, SUGGEST_MAX, SUGGEST_MIN_GAIN)
        .into_iter()
        .filter(|&(i, _)| !keyframes.contains(&(first + i as u64)))
        .map(|(i, gain)| Suggestion {
            frame: first + i as u64,
            gain,
        })
        .collect()
}

/// The size a film of `w` x `h` is scanned at: `None` for its own.
pub fn scan_size(w: usize, h: usize) -> Option<(usize, usize)> {
    (w > SCAN_MAX_WIDTH).then(|| {
        let sh = (h * SCAN_MAX_WIDTH).div_ceil(w).max(1);
        (SCAN_MAX_WIDTH, sh)
    })
}

/// Colours frames `first..=last` of `plan`'s film as an export would (from
/// the shot's start or the keyframe before `first`), at [`scan_size`], with
/// `prior` as the model; gives each frame's weak share to `on_frame` as it
/// is coloured. Returns `false` when `cancel` stopped it early.
///
/// # Errors
/// [`Error::Media`] when the film cannot be read; [`Error::Analysis`],
/// naming the film and the frame, when colouring a frame fails.
pub fn scan(
    mut plan: FilmPlan,
    prior: Option<Box<dyn Colorizer>>,
    (first, last): (u64, u64),
    cancel: &AtomicBool,
    mut on_frame: impl FnMut(u64, f32),
) -> Result<bool> {
    let film = plan.source.clone();
    let reader = VideoReader::open(&film)?;
    let (w, h) = (
        reader.info().video.width as usize,
        reader.info().video.height as usize,
    );
    let small = scan_size(w, h);
    if let Some(size) = small {
        plan.scale((w, h), size);
    }
    let last = last.min(reader.frame_count().saturating_sub(1));
    let mut frames = FrameRange::new(reader, (first, last));
    let mut colorizer = FilmColorizer::new(plan, prior);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let Some(f) = frames.next()? else {
            return Ok(true);
        };
        let luma = f.frame.luma_unit();
        let luma = match small {
            Some((sw, sh)) => LumaImage {
                width: sw,
                height: sh,
                data: tincture_infer::model::resize_area(&luma.data, w, h, sw, sh),
            },
            None => luma,
        };
        colorizer
            .colorize(&luma, f.index, f.frame.matrix)
            .map_err(|e| Error::Analysis {
                path: film.clone(),
                reason: format!(
                    "frame {}: colouring it to find weak colour failed: {e}",
                    f.index
                ),
            })?;
        on_frame(f.index, colorizer.weak_share());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_skip_keyframes_and_count_from_the_first_frame() {
        // Weak from frame 130 (index 30) on; a keyframe already at 140.
        let weak: Vec<f32> = (0..60).map(|i| if i >= 30 { 0.8 } else { 0.0 }).collect();
        let s = suggestions(&weak, 100, &[]);
        assert_eq!(s[0].frame, 130, "{s:?}");
        let s = suggestions(&weak, 100, &[130]);
        assert!(s.iter().all(|x| x.frame != 130), "{s:?}");
        assert!(s[0].frame > 130, "{s:?}");
        assert!(suggestions(&[0.0; 40], 0, &[]).is_empty());
    }

    #[test]
    fn scan_sizes_keep_the_aspect() {
        assert_eq!(scan_size(320, 240), None);
        assert_eq!(scan_size(1920, 1080), Some((480, 270)));
        assert_eq!(scan_size(2048, 1556), Some((480, 365)));
    }
}
