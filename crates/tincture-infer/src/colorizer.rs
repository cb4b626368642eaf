//! The neural colorizer as a [`Colorizer`]: runs a [`Model`] at the render
//! resolution and brings its colour back to the frame's full resolution
//! with an edge-aware (luma-guided) upsampling. Only chroma comes out; the
//! pipeline keeps the source's luma.

use tincture_core::Result as CoreResult;
use tincture_core::color::Matrix;
use tincture_core::colorize::Colorizer;
use tincture_core::domain::DomainTransform;
use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::guided::GuidedFilter;
use tincture_core::metrics::LabToSrgb;
use tincture_core::solver::{ChromaSolver, DataTerm, SolverParams};

use crate::error::Result;
use crate::hints::Hint;
use crate::model::{ClassMap, GrayL, Model, ModelInput, resize_area, resize_bilinear};

/// How the model is run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenderSettings {
    /// Short side of the image the model sees, for models of dynamic size;
    /// `None` for the model's own default. Never above the frame's size.
    pub short_side: Option<u32>,
    /// How a hint's colour reaches the pixels around it.
    #[serde(default)]
    pub hint_spread: HintSpread,
}

/// How the difference between a hint's colour and the model's is carried
/// to the pixels around the hint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintSpread {
    /// Normalised convolution with the domain transform, guided by the
    /// lightness ([`spread_hint_residuals`]).
    Filter,
    /// The edge-aware chroma solver the film engine uses (Levin et al.
    /// 2004 smoothness, multigrid) as the filter of a normalised
    /// convolution ([`solve_hint_residuals`]). The default: on the
    /// val_diverse photos it scores 0.25 dB above the filter at 10 points
    /// and 0.20 dB at 100.
    #[default]
    Solver,
}

impl HintSpread {
    /// The name used in settings and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Filter => "filter",
            Self::Solver => "solver",
        }
    }
}

/// How [`solve_hint_residuals`] uses the solver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SolverSpreadMode {
    /// Normalised convolution with the solver as the edge-aware filter:
    /// the hints' corrections and their mask are smoothed alike (a weighted
    /// least-squares filter, Farbman et al. 2008, on the luma affinities of
    /// Levin et al. 2004) and divided, and the correction fades where the
    /// smoothed mask falls well below the hints' mean density.
    #[default]
    Normalised,
    /// The corrections are data terms of one solve with a weak pull to zero
    /// everywhere (Levin's colorization of the correction).
    Residual,
    /// The hints and the model's colour are data terms of one solve (the
    /// model's colour weakly), as the film engine's keyframes are solved.
    PriorAsData,
}

/// Settings of [`solve_hint_residuals`]. The defaults were chosen on the
/// val_diverse photos (see `tune_hint_spread` in tincture-engine's examples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolverSpread {
    /// How the solver is used.
    pub mode: SolverSpreadMode,
    /// How far a hint's correction reaches across even lightness, in mean
    /// spacings between hints (`sqrt(pixels / hints)`), at 10 hints or
    /// fewer.
    pub reach: f32,
    /// The same at 100 hints and more; between 10 and 100 hints the reach
    /// moves log-linearly from `reach` to this.
    pub reach_dense: f32,
    /// σ of the solver's luma affinity, unit luma: lightness steps much
    /// larger than this stop a hint's colour.
    pub sigma: f32,
    /// [`SolverSpreadMode::Normalised`]: where the smoothed mask is this
    /// share of the hints' mean density, half the correction is kept.
    pub fade: f32,
}

impl Default for SolverSpread {
    fn default() -> Self {
        Self {
            mode: SolverSpreadMode::Normalised,
            reach: 1.0,
            reach_dense: 0.5,
            sigma: 0.03,
            fade: 0.01,
        }
    }
}

/// A model plus the pre- and post-processing around it.
#[derive(Debug)]
pub struct NeuralColorizer {
    model: Model,
    settings: RenderSettings,
    /// The short side asked for the frames now (a shot's own), over
    /// `settings`'.
    shot_short_side: Option<u32>,
    hints: Vec<Hint>,
    gray: GrayL,
    lab: LabToSrgb,
    guide: Option<GuidedFilter>,
    solver_spread: SolverSpread,
}

impl NeuralColorizer {
    /// Wraps a loaded model.
    pub fn new(model: Model, settings: RenderSettings) -> Self {
        Self {
            model,
            settings,
            shot_short_side: None,
            hints: Vec::new(),
            gray: GrayL::default(),
            lab: LabToSrgb::default(),
            guide: None,
            solver_spread: SolverSpread::default(),
        }
    }

    /// Replaces the settings of the solver's hint spread (used when
    /// [`RenderSettings::hint_spread`] is [`HintSpread::Solver`]); for
    /// choosing them on validation photos.
    pub fn set_solver_spread(&mut self, spread: SolverSpread) {
        self.solver_spread = spread;
    }

    /// The settings of the solver's hint spread.
    pub fn solver_spread(&self) -> SolverSpread {
        self.solver_spread
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably (for its notices).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// The render settings.
    pub fn settings(&self) -> RenderSettings {
        self.settings
    }

    /// The short side the model sees now: the shot's, else the settings'.
    pub fn short_side(&self) -> Option<u32> {
        self.shot_short_side.or(self.settings.short_side)
    }

    /// Hints used for every later frame through the [`Colorizer`] interface
    /// (stills; video keyframes come through [`NeuralColorizer::colorize_with`]).
    pub fn set_hints(&mut self, hints: Vec<Hint>) {
        self.hints = hints;
    }

    /// Colours `luma` with `hints` (in `luma`'s pixel coordinates).
    ///
    /// # Errors
    /// When the model fails or returns non-finite values.
    pub fn colorize_with(
        &mut self,
        luma: &LumaImage,
        hints: &[Hint],
        frame: u64,
        matrix: Matrix,
    ) -> Result<ChromaField> {
        let (w, h) = (luma.width, luma.height);
        let (mw, mh) = self.model.run_size(w, h, self.short_side());
        let small = resize_area(&luma.data, w, h, mw, mh);
        let (sx, sy) = (mw as f32 / w as f32, mh as f32 / h as f32);
        let scaled: Vec<Hint> = hints
            .iter()
            .map(|p| Hint {
                x: ((p.x + 0.5) * sx - 0.5).clamp(0.0, (mw - 1) as f32),
                y: ((p.y + 0.5) * sy - 0.5).clamp(0.0, (mh - 1) as f32),
                ab: p.ab,
                size: (p.size * sx.max(sy)).max(1.0),
            })
            .collect();
        let [a, b] = self.model.run(ModelInput {
            luma: &small,
            width: mw,
            height: mh,
            hints: &scaled,
            frame,
        })?;
        let [a, b] = match self.settings.hint_spread {
            HintSpread::Filter => {
                let guide: Vec<f32> = small.iter().map(|&y| self.gray.get(y)).collect();
                spread_hint_residuals([a, b], mw, mh, &scaled, &guide)
            }
            HintSpread::Solver => {
                solve_hint_residuals([a, b], mw, mh, &scaled, &small, self.solver_spread).map_err(
                    |e| crate::Error::Inference {
                        model: self.model.name().to_string(),
                        frame,
                        reason: format!("spreading the hints failed: {e}"),
                    },
                )?
            }
        };
        let (a, b) = self.upsample(luma, [a, b], (mw, mh));
        Ok(self.to_chroma(luma, &a, &b, matrix))
    }

    /// The model's a\*b\* class distribution over `luma` at the render
    /// resolution, without hints: the colours the model itself finds likely
    /// at each point. `None` when the model does not return one.
    ///
    /// # Errors
    /// When the model fails.
    pub fn classes(&mut self, luma: &LumaImage, frame: u64) -> Result<Option<ClassMap>> {
        if !self.model.has_classes() {
            return Ok(None);
        }
        let (w, h) = (luma.width, luma.height);
        let (mw, mh) = self.model.run_size(w, h, self.short_side());
        let small = resize_area(&luma.data, w, h, mw, mh);
        self.model.run_classes(ModelInput {
            luma: &small,
            width: mw,
            height: mh,
            hints: &[],
            frame,
        })
    }

    /// The features `luma` is matched on against a memory of coloured
    /// frames (see [`Model::run_features`]), computed at the render
    /// resolution without hints; `None` when the model has none.
    ///
    /// # Errors
    /// When the model fails.
    pub fn cell_features(
        &mut self,
        luma: &LumaImage,
        frame: u64,
    ) -> Result<Option<tincture_core::memory::CellFeatures>> {
        if !self.model.has_features() {
            return Ok(None);
        }
        let (w, h) = (luma.width, luma.height);
        let (mw, mh) = self.model.run_size(w, h, self.short_side());
        let small = resize_area(&luma.data, w, h, mw, mh);
        self.model.run_features(ModelInput {
            luma: &small,
            width: mw,
            height: mh,
            hints: &[],
            frame,
        })
    }

    /// Bilinear upsampling, then a guided filter with the full-resolution
    /// lightness as guide so colour edges snap to luma edges.
    fn upsample(
        &mut self,
        luma: &LumaImage,
        [a, b]: [Vec<f32>; 2],
        (mw, mh): (usize, usize),
    ) -> (Vec<f32>, Vec<f32>) {
        let (w, h) = (luma.width, luma.height);
        let a = resize_bilinear(&a, mw, mh, w, h);
        let b = resize_bilinear(&b, mw, mh, w, h);
        let factor = (w as f32 / mw as f32).max(h as f32 / mh as f32);
        if factor <= 1.25 {
            return (a, b);
        }
        let radius = (factor * 1.5).ceil() as usize;
        let guide: Vec<f32> = luma
            .data
            .iter()
            .map(|&y| self.gray.get(y) / 100.0)
            .collect();
        let eps = 1e-3;
        let filter = match self.guide.as_mut() {
            Some(f) if f.width() == w && f.height() == h => {
                f.reset(&guide, w, h, radius, eps);
                f
            }
            _ => self
                .guide
                .insert(GuidedFilter::new(&guide, w, h, radius, eps)),
        };
        (filter.filter(&a), filter.filter(&b))
    }

    fn to_chroma(&self, luma: &LumaImage, a: &[f32], b: &[f32], matrix: Matrix) -> ChromaField {
        let n = luma.width * luma.height;
        let mut cb = vec![0.0f32; n];
        let mut cr = vec![0.0f32; n];
        for i in 0..n {
            let l = self.gray.get(luma.data[i]);
            let rgb = self.lab.convert([l, a[i], b[i]]);
            let [_, u, v] = matrix.rgb_to_ycbcr(rgb);
            cb[i] = u;
            cr[i] = v;
        }
        ChromaField {
            width: luma.width,
            height: luma.height,
            cb,
            cr,
        }
    }
}

/// Makes hints hold: the difference between each hint's colour and the
/// model's colour there is spread to the neighbourhood by normalised
/// convolution with an edge-aware filter (the domain transform, guided by the
/// lightness `guide` in L* units), and added to the model's a*b*. The reach
/// follows the hint density (about the mean spacing between hints), the
/// spread stops at lightness edges, and the correction fades to nothing where
/// no hint is near, leaving the model's own colour. The reach, edge
/// sensitivity and fall-off were chosen on validation photos (see the
/// README's PSNR-vs-points table).
pub fn spread_hint_residuals(
    [mut a, mut b]: [Vec<f32>; 2],
    w: usize,
    h: usize,
    hints: &[Hint],
    guide: &[f32],
) -> [Vec<f32>; 2] {
    if hints.is_empty() || w == 0 || h == 0 {
        return [a, b];
    }
    let n = w * h;
    let mut ra = vec![0.0f32; n];
    let mut rb = vec![0.0f32; n];
    let mut m = vec![0.0f32; n];
    let (hint_ab, mask) = crate::model::rasterise_hints(hints, w, h);
    for i in 0..n {
        if mask[i] > 0.0 {
            m[i] = 1.0;
            ra[i] = hint_ab[i] - a[i];
            rb[i] = hint_ab[n + i] - b[i];
        }
    }
    // Hint density sets the filter. With few hints the spread is wide and
    // smooth, and the model's own colour stays the better guess away from
    // them; with many, the spread is shorter, stops at strong lightness edges
    // (tens of L* units: film grain and fine texture must not stop it), and
    // the hints' colour wins over the model's. Between 10 and 100 hints the
    // settings move log-linearly.
    let t = ((hints.len() as f32).log10() - 1.0).clamp(0.0, 1.0);
    let spacing = ((n as f32) / hints.len() as f32).sqrt();
    let sigma_s = (spacing * (0.577 + 0.223 * t)).clamp(2.0, 64.0);
    let sigma_r = if t > 0.0 {
        4.0 * sigma_s / t
    } else {
        f32::INFINITY
    };
    let dt = DomainTransform::new(guide, w, h, sigma_s, sigma_r, 3);
    let den = dt.filter(&m);
    let num_a = dt.filter(&ra);
    let num_b = dt.filter(&rb);
    // tau: how quickly the correction fades with distance from the hints,
    // relative to the weight a lone hint keeps at its own pixel (a hint
    // painted with a wide brush counts as one hint, not as many pixels).
    let per_hint = m.iter().sum::<f32>() / hints.len() as f32;
    let tau = 0.2 * 0.05f32.powf(t) * per_hint * DomainTransform::impulse_peak(sigma_s, 3);
    for i in 0..n {
        let d = den[i];
        if d > 1e-12 {
            let conf = d / (d + tau);
            a[i] += num_a[i] / d * conf;
            b[i] += num_b[i] / d * conf;
        }
    }
    // Hinted pixels take their colour exactly.
    for i in 0..n {
        if mask[i] > 0.0 {
            a[i] = hint_ab[i];
            b[i] = hint_ab[n + i];
        }
    }
    [a, b]
}

/// Makes hints hold with the edge-aware chroma solver the film engine uses
/// (see [`SolverSpreadMode`] for the three ways it can be used). `luma` is
/// the unit luma at the model's size. The solve's weak term sets how far a
/// correction reaches over even lightness: about the mean spacing between
/// hints times [`SolverSpread::reach`]; lightness edges stop it as the film
/// engine's solve does. Hinted pixels take their colour exactly.
///
/// # Errors
/// When `luma` does not hold `w * h` values.
pub fn solve_hint_residuals(
    [mut a, mut b]: [Vec<f32>; 2],
    w: usize,
    h: usize,
    hints: &[Hint],
    luma: &[f32],
    spread: SolverSpread,
) -> CoreResult<[Vec<f32>; 2]> {
    if hints.is_empty() || w == 0 || h == 0 {
        return Ok([a, b]);
    }
    // The solver's targets are chroma-sized numbers; a*b* are scaled into
    // that range and back (the solve is linear, so the scale changes
    // nothing but the tolerance's meaning).
    const SCALE: f32 = 1.0 / 128.0;
    /// A hinted pixel's weight in the one-solve modes: far above any
    /// neighbour coupling, so the solve holds it.
    const HINT_WEIGHT: f32 = 10.0;
    let n = w * h;
    let (hint_ab, mask) = crate::model::rasterise_hints(hints, w, h);
    let t = ((hints.len() as f32).log10() - 1.0).clamp(0.0, 1.0);
    let spacing = ((n as f32) / hints.len() as f32).sqrt();
    let reach = (spacing * (spread.reach + (spread.reach_dense - spread.reach) * t)).max(1.0);
    // With smoothness 1, a lone target of weight `w` spreads over about
    // sqrt(1 / w) pixels of even luma.
    let weak = 1.0 / (reach * reach);
    let image = LumaImage {
        width: w,
        height: h,
        data: luma.to_vec(),
    };
    let params = SolverParams {
        sigma: spread.sigma,
        ..SolverParams::default()
    };
    let mut solver = ChromaSolver::new(&image, params)?;
    let weak_w = vec![weak; n];
    match spread.mode {
        SolverSpreadMode::Normalised => {
            let mut ra = vec![0.0f32; n];
            let mut rb = vec![0.0f32; n];
            for i in 0..n {
                if mask[i] > 0.0 {
                    ra[i] = (hint_ab[i] - a[i]) * SCALE;
                    rb[i] = (hint_ab[n + i] - b[i]) * SCALE;
                }
            }
            let num = solver.solve(
                &[DataTerm {
                    cb: &ra,
                    cr: &rb,
                    weight: &weak_w,
                }],
                None,
            )?;
            let zero = vec![0.0f32; n];
            let den = solver.solve(
                &[DataTerm {
                    cb: &mask,
                    cr: &zero,
                    weight: &weak_w,
                }],
                None,
            )?;
            // The correction is num / den, kept by den / (den + tau).
            let density = mask.iter().sum::<f32>() / n as f32;
            let tau = spread.fade.max(1e-6) * density;
            for i in 0..n {
                let keep = 1.0 / ((den.cb[i].max(0.0) + tau) * SCALE);
                a[i] += num.cb[i] * keep;
                b[i] += num.cr[i] * keep;
            }
        }
        SolverSpreadMode::Residual | SolverSpreadMode::PriorAsData => {
            let prior = spread.mode == SolverSpreadMode::PriorAsData;
            let mut hint_cb = vec![0.0f32; n];
            let mut hint_cr = vec![0.0f32; n];
            let mut hint_w = vec![0.0f32; n];
            let (base_cb, base_cr): (Vec<f32>, Vec<f32>) = if prior {
                (
                    a.iter().map(|v| v * SCALE).collect(),
                    b.iter().map(|v| v * SCALE).collect(),
                )
            } else {
                (vec![0.0; n], vec![0.0; n])
            };
            for i in 0..n {
                if mask[i] > 0.0 {
                    hint_w[i] = HINT_WEIGHT;
                    let (da, db) = if prior { (0.0, 0.0) } else { (a[i], b[i]) };
                    hint_cb[i] = (hint_ab[i] - da) * SCALE;
                    hint_cr[i] = (hint_ab[n + i] - db) * SCALE;
                }
            }
            let terms = [
                DataTerm {
                    cb: &hint_cb,
                    cr: &hint_cr,
                    weight: &hint_w,
                },
                DataTerm {
                    cb: &base_cb,
                    cr: &base_cr,
                    weight: &weak_w,
                },
            ];
            let solved = solver.solve(&terms, None)?;
            for i in 0..n {
                if prior {
                    a[i] = solved.cb[i] / SCALE;
                    b[i] = solved.cr[i] / SCALE;
                } else {
                    a[i] += solved.cb[i] / SCALE;
                    b[i] += solved.cr[i] / SCALE;
                }
            }
        }
    }
    for i in 0..n {
        if mask[i] > 0.0 {
            a[i] = hint_ab[i];
            b[i] = hint_ab[n + i];
        }
    }
    Ok([a, b])
}

impl Colorizer for NeuralColorizer {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn set_render_short_side(&mut self, short_side: Option<u32>) {
        self.shot_short_side = short_side;
    }

    fn settings(&self) -> serde_json::Value {
        let m = self.model.manifest();
        serde_json::json!({
            "engine": "neural",
            "model": m.name,
            "version": m.version,
            "sha256": m.sha256,
            "adapter": m.adapter,
            "short_side": self.settings.short_side,
            "hints": self.hints.len(),
            "hint_spread": self.settings.hint_spread.name(),
        })
    }

    fn features(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
    ) -> CoreResult<Option<tincture_core::memory::CellFeatures>> {
        self.cell_features(luma, frame_index)
            .map_err(|e| tincture_core::Error::Engine {
                message: e.to_string(),
            })
    }

    fn colorize(
        &mut self,
        luma: &LumaImage,
        frame_index: u64,
        matrix: Matrix,
    ) -> CoreResult<ChromaField> {
        let hints = std::mem::take(&mut self.hints);
        let out = self.colorize_with(luma, &hints, frame_index, matrix);
        self.hints = hints;
        out.map_err(|e| tincture_core::Error::Engine {
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_solver_spread_holds_hints_and_stops_at_lightness_edges() {
        // A dark left half and a light right half; a red hint in the dark
        // half near the edge, a blue one far off in the light half.
        let (w, h) = (200, 100);
        let luma: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 100 { 0.2 } else { 0.8 })
            .collect();
        let (red, blue) = ([40.0f32, 20.0f32], [-10.0f32, -40.0f32]);
        let hints = [
            Hint {
                x: 90.0,
                y: 50.0,
                ab: red,
                size: 1.0,
            },
            Hint {
                x: 190.0,
                y: 50.0,
                ab: blue,
                size: 1.0,
            },
        ];
        let dist = |p: (f32, f32), q: [f32; 2]| (p.0 - q[0]).hypot(p.1 - q[1]);
        let apart = dist((red[0], red[1]), blue);
        for sigma in [0.03, 1.0] {
            for mode in [
                SolverSpreadMode::Normalised,
                SolverSpreadMode::Residual,
                SolverSpreadMode::PriorAsData,
            ] {
                let spread = SolverSpread {
                    mode,
                    sigma,
                    ..SolverSpread::default()
                };
                let model_ab = [vec![0.0f32; w * h], vec![0.0f32; w * h]];
                let [a, b] =
                    solve_hint_residuals(model_ab, w, h, &hints, &luma, spread).expect("solved");
                let at = |x: usize| (a[50 * w + x], b[50 * w + x]);
                assert_eq!(at(90), (40.0, 20.0), "{mode:?}: the hinted pixel");
                // 20 px from the red hint across the edge, 80 px from the
                // blue one on its own side.
                let across = at(110);
                let normalised = mode == SolverSpreadMode::Normalised;
                if sigma < 0.1 {
                    assert!(
                        across.0 < 10.0,
                        "{mode:?}: red leaks across the edge: {across:?}"
                    );
                    assert!(
                        !normalised || dist(across, blue) < 0.25 * apart,
                        "{mode:?}: across the edge {across:?} should be near blue"
                    );
                    let own = at(85);
                    assert!(
                        !normalised || dist(own, red) < 0.25 * apart,
                        "{mode:?}: beside the red hint {own:?}"
                    );
                } else if normalised {
                    // Without edges to stop it, the near hint wins: the
                    // checks above can fail.
                    assert!(
                        dist(across, red) < dist(across, blue),
                        "{mode:?}, no edges: {across:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn hint_residuals_spread_locally_and_fade() {
        let (w, h) = (600, 100);
        let model_ab = [vec![5.0f32; w * h], vec![-5.0f32; w * h]];
        let hints = [Hint {
            x: 20.0,
            y: 50.0,
            ab: [45.0, 15.0],
            size: 1.0,
        }];
        let [a, b] = spread_hint_residuals(model_ab.clone(), w, h, &hints, &vec![50.0; w * h]);
        let at = |x: usize| (a[50 * w + x], b[50 * w + x]);
        assert_eq!(at(20), (45.0, 15.0), "the hinted pixel takes its colour");
        let near = at(30);
        assert!(
            near.0 > 30.0 && near.1 > 5.0,
            "near the hint the colour follows it: {near:?}"
        );
        let far = at(599);
        assert!(
            (far.0 - 5.0).abs() < 1.0 && (far.1 + 5.0).abs() < 1.0,
            "far away the model's colour stays: {far:?}"
        );
        assert_eq!(
            spread_hint_residuals(model_ab.clone(), w, h, &[], &vec![50.0; w * h]),
            model_ab
        );
    }
}
