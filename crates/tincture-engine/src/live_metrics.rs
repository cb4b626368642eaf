//! Metrics measured while an export runs, on their own thread, and written
//! beside the output as a JSON sidecar (`NAME.metrics.json`, or
//! `metrics.json` inside an image-sequence folder).
//!
//! The render loop hands each finished output frame to the
//! `tincture-metrics` thread over a bounded channel; the thread converts it
//! to 8-bit RGB and pushes it into a shared [`MetricsStream`], which the GUI
//! can read at any moment through a [`LiveMetrics`] handle to plot the
//! series as frames arrive.
//!
//! To stay cheap next to the export, live metrics are measured on a preview
//! of each output frame at most [`PREVIEW_SIDE`] pixels on its long side
//! (box-averaged from the frame's own planes). `tincture-cli metrics`
//! measures at full resolution.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};
use tincture_core::flow::FlowParams;
use tincture_core::frame::{ChromaPlanes, Frame, Plane};
use tincture_core::video_metrics::{FrameMetrics, MetricsReport, MetricsStream, StreamOptions};

/// A shared, live view of an export's metrics.
///
/// The measuring and the reading never wait on each other for long: the
/// stream is locked only by the thread that measures (and by
/// [`report`](Self::report), once the export is done), while readers such
/// as the window's flicker graph read a published copy of the per-frame
/// series, locked only to append one frame. A window polling every frame
/// therefore never waits for a frame to be measured.
#[derive(Clone, Debug)]
pub struct LiveMetrics {
    inner: Arc<Mutex<Shared>>,
    published: Arc<Mutex<Vec<FrameMetrics>>>,
}

#[derive(Debug)]
struct Shared {
    stream: MetricsStream,
    error: Option<String>,
}

/// The long side of the preview that live metrics are measured on.
pub const PREVIEW_SIDE: usize = 128;

impl Default for LiveMetrics {
    fn default() -> Self {
        Self::new(StreamOptions {
            flow: FlowParams::fast(),
            warp_error: true,
        })
    }
}

/// Box-averages a plane by an integer factor (edges average what is there).
fn shrink_plane(p: &Plane, k: usize) -> Plane {
    let w = p.width.div_ceil(k);
    let h = p.height.div_ceil(k);
    let mut data = Vec::with_capacity(w * h);
    // Row by row through the plane: each output row sums its k rows of
    // boxes, then divides by the box's area.
    let mut sums = vec![0u32; w];
    for y in 0..h {
        sums.fill(0);
        let rows = (y * k)..((y + 1) * k).min(p.height);
        let n_rows = rows.len() as u32;
        for r in rows {
            for (sum, cells) in sums.iter_mut().zip(p.row(r).chunks(k)) {
                *sum += cells.iter().map(|&v| u32::from(v)).sum::<u32>();
            }
        }
        let last = (p.width - (w - 1) * k) as u32;
        data.extend(sums.iter().enumerate().map(|(x, &sum)| {
            let n = n_rows * if x + 1 == w { last } else { k as u32 };
            ((sum + n / 2) / n.max(1)) as u16
        }));
    }
    Plane {
        width: w,
        height: h,
        data,
    }
}

/// A frame shrunk so its long side is at most [`PREVIEW_SIDE`].
pub fn preview_frame(frame: &Frame) -> Frame {
    let k = frame
        .width()
        .max(frame.height())
        .div_ceil(PREVIEW_SIDE)
        .max(1);
    if k == 1 {
        return frame.clone();
    }
    let y = shrink_plane(&frame.y, k);
    let chroma = frame.chroma.as_ref().map(|c| {
        let (sx, sy) = c.subsampling.shifts();
        // Chroma is resampled to the preview's luma size.
        let fit = |p: &Plane| {
            let kx = (k >> sx).max(1);
            let ky = (k >> sy).max(1);
            let shrunk = if kx == ky {
                shrink_plane(p, kx)
            } else {
                p.clone()
            };
            resize_nearest(&shrunk, y.width, y.height)
        };
        ChromaPlanes {
            subsampling: tincture_core::frame::Subsampling::S444,
            cb: fit(&c.cb),
            cr: fit(&c.cr),
        }
    });
    Frame {
        bit_depth: frame.bit_depth,
        y,
        chroma,
        range: frame.range,
        matrix: frame.matrix,
    }
}

fn resize_nearest(p: &Plane, w: usize, h: usize) -> Plane {
    if (p.width, p.height) == (w, h) {
        return p.clone();
    }
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        let sy = (y * p.height / h).min(p.height - 1);
        for x in 0..w {
            let sx = (x * p.width / w).min(p.width - 1);
            data.push(p.data[sy * p.width + sx]);
        }
    }
    Plane {
        width: w,
        height: h,
        data,
    }
}

impl LiveMetrics {
    /// An empty set of series with the given options.
    pub fn new(options: StreamOptions) -> Self {
        Self {
            published: Arc::new(Mutex::new(Vec::new())),
            inner: Arc::new(Mutex::new(Shared {
                stream: MetricsStream::new(options),
                error: None,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn published(&self) -> std::sync::MutexGuard<'_, Vec<FrameMetrics>> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Summaries and series so far.
    pub fn report(&self) -> MetricsReport {
        let shared = self.lock();
        let mut r = shared.stream.report();
        if let Some(e) = &shared.error {
            r.notes.push(format!("metrics stopped early: {e}"));
        }
        r
    }

    /// The per-frame metrics so far (a copy).
    pub fn frames(&self) -> Vec<FrameMetrics> {
        self.published().clone()
    }

    /// The per-frame metrics from the `start`-th measured frame on (a copy;
    /// empty when there are no more). A reader that polls for new frames
    /// copies only those, however long the export.
    pub fn frames_from(&self, start: usize) -> Vec<FrameMetrics> {
        self.published()
            .get(start..)
            .map_or_else(Vec::new, <[FrameMetrics]>::to_vec)
    }

    /// Frames measured so far.
    pub fn len(&self) -> usize {
        self.published().len()
    }

    /// Whether no frame has been measured yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Measures the next output frame (what the metrics thread does with
    /// each frame it receives).
    pub fn measure(&self, frame: &Frame) {
        let frame = &preview_frame(frame);
        let rgb = crate::analysis::rgb8(frame);
        let luma = frame.luma_unit();
        let mut shared = self.lock();
        if shared.error.is_some() {
            return;
        }
        match shared.stream.push(&rgb, &luma.data, None) {
            Ok(_) => {
                let measured = shared.stream.frames();
                let mut published = self.published();
                let known = published.len();
                published.extend_from_slice(measured.get(known..).unwrap_or_default());
            }
            Err(e) => {
                tracing::warn!("live metrics stopped: {e}");
                shared.error = Some(e.to_string());
            }
        }
    }
}

/// The measuring thread of one export.
pub(crate) struct MetricsThread {
    tx: Option<Sender<Frame>>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsThread {
    pub(crate) fn start(live: LiveMetrics) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Frame>(4);
        // The flow and the metrics run in parallel on rayon's pool, which
        // pays off at full size; on a 128 px preview the pool's wake-ups and
        // idle spinning cost more than they give and take CPU from the
        // encoder's threads. So the metrics run on a pool of their own
        // thread only.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "tincture-metrics".into())
            .build()
            .map_err(std::io::Error::other)?;
        let handle = std::thread::Builder::new()
            .name("tincture-metrics-feed".into())
            .spawn(move || {
                pool.install(|| {
                    for frame in rx {
                        live.measure(&frame);
                    }
                });
            })?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Queues an output frame (waits when the thread is four frames behind).
    pub(crate) fn send(&self, frame: Frame) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(frame);
        }
    }

    /// Waits for the queued frames to be measured.
    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MetricsThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where an export's metrics sidecar goes.
pub fn sidecar_path(output: &Path) -> PathBuf {
    if output.extension().is_none() || output.is_dir() {
        output.join("metrics.json")
    } else {
        let mut name = output.file_name().unwrap_or_default().to_os_string();
        name.push(".metrics.json");
        output.with_file_name(name)
    }
}

/// The sidecar's content: what was measured, and the report.
#[derive(serde::Serialize)]
pub(crate) struct Sidecar<'a> {
    pub tincture_version: &'a str,
    pub source: &'a Path,
    pub output: &'a Path,
    pub source_frames: [u64; 2],
    pub flow: &'a str,
    #[serde(flatten)]
    pub report: MetricsReport,
}

/// Writes `value` as pretty JSON to `path` atomically: under the render's
/// partial name first, then renamed.
pub(crate) fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    crate::output::write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(|e| e.to_string())
    })
    .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tincture_core::color::{ColorRange, Matrix};

    #[test]
    fn a_shrunk_plane_is_the_mean_of_each_box_edges_included() {
        let (w, h) = (23, 11);
        let p = Plane {
            width: w,
            height: h,
            data: (0..w * h).map(|i| ((i * 7919) % 1021) as u16).collect(),
        };
        for k in [1, 2, 3, 4, 5] {
            let s = shrink_plane(&p, k);
            assert_eq!((s.width, s.height), (w.div_ceil(k), h.div_ceil(k)));
            for y in 0..s.height {
                for x in 0..s.width {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for yy in y * k..((y + 1) * k).min(h) {
                        for xx in x * k..((x + 1) * k).min(w) {
                            sum += u32::from(p.data[yy * w + xx]);
                            n += 1;
                        }
                    }
                    assert_eq!(
                        s.data[y * s.width + x],
                        ((sum + n / 2) / n) as u16,
                        "k {k}, box ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn frames_from_returns_only_the_newer_frames() {
        let live = LiveMetrics::default();
        for value in [16u16, 60, 120] {
            let mut f = Frame::neutral(32, 24, 8, None, ColorRange::Limited, Matrix::Bt709);
            f.y.data.iter_mut().enumerate().for_each(|(i, v)| {
                *v = value + (i % 7) as u16;
            });
            live.measure(&f);
        }
        assert_eq!(live.len(), 3);
        let all = live.frames();
        let later = live.frames_from(1);
        assert_eq!(later.len(), 2);
        assert_eq!(later[0].index, 1);
        assert_eq!(later[1].index, 2);
        assert_eq!(later[1].warp_error, all[2].warp_error);
        assert!(
            later[0].warp_error.is_some(),
            "the second frame has a warp error"
        );
        assert!(live.frames_from(3).is_empty());
        assert!(live.frames_from(10).is_empty());
    }
}
