//! PNG plots of per-frame metric series (`tincture-cli metrics --plot`,
//! `eval --plot`) and side-by-side strips of frames (`eval --strip`), drawn
//! with plotters into a memory buffer and encoded with `image`, so no
//! system font library is needed: text is set in Ubuntu Light, embedded by
//! the `epaint_default_fonts` crate.
//!
//! One panel per metric, stacked vertically, sharing the frame axis; the
//! frames that flicker most are marked in every panel. [`report_plot`]
//! lays out a [`MetricsReport`]'s panels; [`write_plot`] and
//! [`write_strip`] write PNGs by the rules of [`crate::output`].

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use tincture_core::frame::RgbImage;
use tincture_core::video_metrics::{MetricsReport, SeriesSummary};

use super::TOP_FLICKER;
use crate::{Error, Result};

/// Width of every plot, pixels.
pub const PLOT_WIDTH: u32 = 1600;
/// Height of one panel, pixels.
pub const PANEL_HEIGHT: u32 = 300;
/// Height of the title strip, pixels.
pub const TITLE_HEIGHT: u32 = 64;

const SERIES_COLOUR: RGBColor = RGBColor(31, 119, 180);
const FLOOR_COLOUR: RGBColor = RGBColor(150, 150, 150);
const MARK_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// One panel: a metric's per-frame series.
pub struct Panel<'a> {
    /// The panel's caption.
    pub caption: String,
    /// The y axis' description.
    pub unit: &'a str,
    /// The series (index 0 is the first frame measured).
    pub series: &'a SeriesSummary,
    /// A second series drawn in gray behind it (the truth's own values in `eval`).
    pub floor: Option<&'a SeriesSummary>,
    /// Whether the y axis starts at 0 (metrics that are 0 at best).
    pub from_zero: bool,
    /// Draw the flicker marks' values here (the warp error panel).
    pub label_marks: bool,
}

/// What a plot shows.
pub struct Plot<'a> {
    /// The title, naming the file.
    pub title: String,
    /// The source frame index of the series' first value.
    pub first_frame: u64,
    /// The panels, top to bottom.
    pub panels: Vec<Panel<'a>>,
    /// The frames to mark (0-based in the series), worst first.
    pub marks: Vec<usize>,
}

/// Makes the embedded font the one plotters finds for its usual family names.
fn register_fonts() -> Result<(), String> {
    for family in ["sans-serif", "serif", "monospace"] {
        register_font(
            family,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .map_err(|_| "the embedded font cannot be read".to_owned())?;
    }
    Ok(())
}

/// Decimals for the tick labels of an axis spanning `lo..hi` (about six
/// ticks), or `None` where scientific notation reads better.
fn axis_decimals(lo: f64, hi: f64) -> Option<usize> {
    let top = lo.abs().max(hi.abs());
    if top >= 1e6 || (top > 0.0 && top < 1e-3) {
        return None;
    }
    let step = (hi - lo) / 6.0;
    if !(step.is_finite() && step > 0.0) {
        return Some(2);
    }
    Some((-step.log10().floor()).clamp(0.0, 6.0) as usize)
}

/// A y-axis tick label with `decimals` (scientific for `None`).
fn axis_label(v: f64, decimals: Option<usize>) -> String {
    match decimals {
        _ if v == 0.0 => "0".into(),
        Some(d) => format!("{v:.d$}"),
        None => format!("{v:.1e}"),
    }
}

/// The y range that holds `values` with a little room around them.
fn y_range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        return (if from_zero { lo } else { lo - pad }, hi + pad);
    }
    hi += 0.08 * span;
    if !from_zero {
        lo -= 0.08 * span;
    }
    (lo, hi)
}

/// Runs of consecutive frames that have a value, as (frame, value) points.
fn runs(series: &SeriesSummary, first_frame: u64) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in series.per_frame.iter().enumerate() {
        match v {
            Some(v) if v.is_finite() => current.push((first_frame as i64 + i as i64, *v)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

fn draw_panel(area: &Area<'_>, plot: &Plot<'_>, panel: &Panel<'_>) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let n = panel.series.per_frame.len() as i64;
    let x0 = plot.first_frame as i64;
    let x1 = x0 + (n - 1).max(1);
    let values = panel
        .series
        .per_frame
        .iter()
        .chain(panel.floor.map_or(&[][..], |f| &f.per_frame[..]))
        .flatten()
        .copied();
    let (y0, y1) = y_range(values, panel.from_zero);
    let empty = panel.series.per_frame.iter().all(Option::is_none);
    let caption = if empty {
        format!(
            "{}: no values ({})",
            panel.caption,
            not_applicable_reason(n)
        )
    } else {
        panel.caption.clone()
    };
    let mut chart = ChartBuilder::on(area)
        .margin_top(8)
        .margin_bottom(6)
        .margin_left(12)
        .margin_right(28)
        .caption(caption, ("sans-serif", 22))
        .x_label_area_size(44)
        .y_label_area_size(96)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    let decimals = axis_decimals(y0, y1);
    let y_fmt = |v: &f64| axis_label(*v, decimals);
    let x_fmt = |v: &i64| v.to_string();
    chart
        .configure_mesh()
        .x_desc("frame")
        .y_desc(panel.unit)
        .x_labels(16)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .max_light_lines(2)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
        .map_err(|e| err(&e))?;
    // The most flickering frames, in every panel.
    for &m in &plot.marks {
        let x = x0 + m as i64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y0), (x, y1)],
                MARK_COLOUR.mix(0.35),
            )))
            .map_err(|e| err(&e))?;
    }
    if let Some(floor) = panel.floor {
        for (k, run) in runs(floor, plot.first_frame).into_iter().enumerate() {
            let s = chart
                .draw_series(LineSeries::new(run, FLOOR_COLOUR.stroke_width(2)).point_size(1))
                .map_err(|e| err(&e))?;
            if k == 0 {
                s.label("truth (floor)").legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], FLOOR_COLOUR.stroke_width(2))
                });
            }
        }
    }
    for (k, run) in runs(panel.series, plot.first_frame).into_iter().enumerate() {
        let s = chart
            .draw_series(LineSeries::new(run, SERIES_COLOUR.stroke_width(2)).point_size(2))
            .map_err(|e| err(&e))?;
        if k == 0 && panel.floor.is_some() {
            s.label("prediction").legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], SERIES_COLOUR.stroke_width(2))
            });
        }
    }
    if panel.label_marks {
        for (rank, &m) in plot.marks.iter().enumerate() {
            let Some(Some(v)) = panel.series.per_frame.get(m) else {
                continue;
            };
            let x = x0 + m as i64;
            // Labels near the right edge go to the left of their point.
            let dx = if (x - x0) as f64 > 0.85 * (x1 - x0) as f64 {
                -120
            } else {
                8
            };
            let mark = EmptyElement::at((x, *v))
                + Circle::new((0, 0), 5, MARK_COLOUR.filled())
                + Text::new(
                    format!("#{} frame {x}", rank + 1),
                    (dx, -4),
                    ("sans-serif", 15).into_font().color(&MARK_COLOUR),
                );
            chart
                .draw_series(std::iter::once(mark))
                .map_err(|e| err(&e))?;
        }
    }
    if panel.floor.is_some() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

fn not_applicable_reason(frames: i64) -> &'static str {
    if frames < 2 {
        "one frame"
    } else {
        "the flow follows no pixel"
    }
}

/// Draws `plot` into an RGB buffer of [`PLOT_WIDTH`] x its height.
///
/// # Errors
/// The drawing library's message.
pub fn render(plot: &Plot<'_>) -> Result<(u32, u32, Vec<u8>), String> {
    register_fonts()?;
    let panels = plot.panels.len().max(1) as u32;
    let (w, h) = (PLOT_WIDTH, TITLE_HEIGHT + panels * PANEL_HEIGHT);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, body) = root.split_vertically(TITLE_HEIGHT);
        top.draw(&Text::new(
            plot.title.clone(),
            (20, 18),
            ("sans-serif", 28).into_font().color(&BLACK),
        ))
        .map_err(|e| e.to_string())?;
        let areas = body.split_evenly((panels as usize, 1));
        for (area, panel) in areas.iter().zip(&plot.panels) {
            draw_panel(area, plot, panel)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok((w, h, buf))
}

/// The panels of a report's plot: warp error, CDC and colourfulness, then
/// PSNR, SSIM and CIEDE2000 where the report has them; `floor` adds the
/// truth's own warp error and CDC behind the report's. The frames that
/// flicker most are marked.
pub fn report_plot<'a>(
    title: String,
    report: &'a MetricsReport,
    floor: Option<&'a MetricsReport>,
    first_frame: u64,
) -> Plot<'a> {
    let mut panels = vec![
        Panel {
            caption: "warp error (frame t-1 warped onto t along the flow; lower is better)".into(),
            unit: "mean squared RGB difference",
            series: &report.warp_error,
            floor: floor.map(|f| &f.warp_error),
            from_zero: true,
            label_marks: true,
        },
        Panel {
            caption:
                "CDC (colour distribution consistency with frames t-1, t-2, t-4; lower is better)"
                    .into(),
            unit: "Jensen-Shannon divergence",
            series: &report.cdc,
            floor: floor.map(|f| &f.cdc),
            from_zero: true,
            label_marks: false,
        },
        Panel {
            caption: "colourfulness (Hasler & Süsstrunk M3)".into(),
            unit: "M3",
            series: &report.colorfulness,
            floor: None,
            from_zero: true,
            label_marks: false,
        },
    ];
    let reference: [(&Option<SeriesSummary>, &str, &'static str, bool); 3] = [
        (
            &report.psnr,
            "PSNR against the truth (higher is better)",
            "dB",
            false,
        ),
        (
            &report.ssim,
            "SSIM against the truth (higher is better)",
            "SSIM",
            false,
        ),
        (
            &report.ciede2000,
            "CIEDE2000 against the truth (lower is better)",
            "mean dE00",
            true,
        ),
    ];
    for (series, caption, unit, from_zero) in reference {
        if let Some(s) = series {
            panels.push(Panel {
                caption: caption.into(),
                unit,
                series: s,
                floor: None,
                from_zero,
                label_marks: false,
            });
        }
    }
    Plot {
        title,
        first_frame,
        panels,
        marks: report
            .warp_error
            .worst_frames(TOP_FLICKER)
            .into_iter()
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Writes an RGB buffer of `w` x `h` to `path` as a PNG.
fn save_png(path: &Path, (w, h): (u32, u32), buf: Vec<u8>) -> std::result::Result<(), String> {
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| "the picture's buffer does not match its size".to_owned())?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| e.to_string())
}

/// Draws `plot` and writes it to `out` as a PNG, by the rules of
/// [`crate::output::write_file`]: never over one of `inputs`, over an
/// existing file only with `overwrite`, complete or not at all.
///
/// # Errors
/// [`Error::Draw`] when it cannot be drawn; the output errors of
/// [`crate::output::write_file`] when it cannot be written.
pub fn write_plot(out: &Path, inputs: &[&Path], overwrite: bool, plot: &Plot<'_>) -> Result<()> {
    let (w, h, buf) = render(plot).map_err(|reason| Error::Draw {
        path: out.to_owned(),
        what: "plot",
        reason,
    })?;
    crate::output::write_file(out, inputs, overwrite, |partial| {
        save_png(partial, (w, h), buf)
    })
}

/// One column of a side-by-side strip: a frame's pictures, top to bottom.
#[derive(Clone, Debug)]
pub struct StripColumn {
    /// Frame number.
    pub index: u64,
    /// Gray input, the model frame by frame, the evaluated output, the truth.
    pub rows: [RgbImage; 4],
}

/// Row captions of a strip.
const STRIP_ROWS: [&str; 4] = ["gray input", "model, per frame", "this output", "truth"];
/// Width of one strip thumbnail, in pixels.
pub const STRIP_THUMB: u32 = 240;
/// Width of the strip's caption column.
pub const STRIP_CAPTION: u32 = 170;
/// Height of the strip's header.
const STRIP_HEADER: u32 = 70;

/// Draws a strip (frames across, the four versions down, `title` above)
/// into an RGB buffer; returns its width, height and pixels.
///
/// # Errors
/// The reason, when there are no columns or a picture's buffer does not
/// match its size, or the drawing library's message.
pub fn render_strip(
    columns: &[StripColumn],
    title: &str,
) -> std::result::Result<(u32, u32, Vec<u8>), String> {
    let Some(first) = columns.first() else {
        return Err("no frames were evaluated".into());
    };
    register_fonts()?;
    let (fw, fh) = (first.rows[0].width.max(1), first.rows[0].height.max(1));
    let th = ((STRIP_THUMB as usize * fh) / fw).max(1) as u32;
    let gap = 6u32;
    let w = STRIP_CAPTION + columns.len() as u32 * (STRIP_THUMB + gap);
    let h = STRIP_HEADER + 4 * (th + gap);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for (c, col) in columns.iter().enumerate() {
        for (r, pic) in col.rows.iter().enumerate() {
            let src =
                image::RgbImage::from_raw(pic.width as u32, pic.height as u32, pic.data.clone())
                    .ok_or_else(|| "a frame's buffer does not match its size".to_owned())?;
            let thumb = image::imageops::resize(
                &src,
                STRIP_THUMB,
                th,
                image::imageops::FilterType::Triangle,
            );
            let x = STRIP_CAPTION + c as u32 * (STRIP_THUMB + gap);
            let y = STRIP_HEADER + r as u32 * (th + gap);
            image::imageops::replace(&mut canvas, &thumb, i64::from(x), i64::from(y));
        }
    }
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let text = |t: String, x: u32, y: u32, size: u32| {
            root.draw(&Text::new(
                t,
                (x as i32, y as i32),
                ("sans-serif", size as i32).into_font().color(&BLACK),
            ))
            .map_err(|e| e.to_string())
        };
        text(title.to_owned(), 12, 8, 22)?;
        for (c, col) in columns.iter().enumerate() {
            let x = STRIP_CAPTION + c as u32 * (STRIP_THUMB + gap);
            text(format!("frame {}", col.index), x + 4, 42, 18)?;
        }
        for (r, caption) in STRIP_ROWS.iter().enumerate() {
            let y = STRIP_HEADER + r as u32 * (th + gap) + th / 2 - 9;
            text((*caption).to_owned(), 10, y, 18)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok((w, h, buf))
}

/// Draws a strip (see [`render_strip`]) and writes it to `out` as a PNG, by
/// the rules of [`crate::output::write_file`].
///
/// # Errors
/// [`Error::Draw`] when it cannot be drawn (no columns among them); the
/// output errors of [`crate::output::write_file`] when it cannot be written.
pub fn write_strip(
    out: &Path,
    inputs: &[&Path],
    overwrite: bool,
    columns: &[StripColumn],
    title: &str,
) -> Result<()> {
    let (w, h, buf) = render_strip(columns, title).map_err(|reason| Error::Draw {
        path: out.to_owned(),
        what: "strip",
        reason,
    })?;
    crate::output::write_file(out, inputs, overwrite, |partial| {
        save_png(partial, (w, h), buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_labels() {
        assert_eq!(y_range(std::iter::empty(), true), (0.0, 1.0));
        assert_eq!(y_range([0.0, 0.0].into_iter(), true), (0.0, 1.0));
        let (lo, hi) = y_range([2.0, 4.0].into_iter(), false);
        assert!(lo < 2.0 && hi > 4.0);
        assert_eq!(y_range([2.0, 4.0].into_iter(), true).0, 0.0);
        assert_eq!(axis_decimals(0.0, 200.0), Some(0));
        assert_eq!(axis_decimals(0.9, 1.1), Some(2));
        assert_eq!(axis_decimals(0.0, 0.0002), None);
        assert_eq!(axis_label(0.0, None), "0");
        assert_eq!(axis_label(0.00012, None), "1.2e-4");
        assert_eq!(axis_label(32.5, Some(1)), "32.5");
    }

    #[test]
    fn runs_break_at_missing_values() {
        let s = SeriesSummary::of(vec![None, Some(1.0), Some(2.0), None, Some(3.0)], false);
        assert_eq!(
            runs(&s, 10),
            vec![vec![(11, 1.0), (12, 2.0)], vec![(14, 3.0)]]
        );
    }

    #[test]
    fn draws_a_plot_of_the_requested_width() {
        let s = SeriesSummary::of(vec![None, Some(0.01), Some(0.02), Some(0.001)], false);
        let one = SeriesSummary::of(vec![None], false);
        let plot = Plot {
            title: "test".into(),
            first_frame: 0,
            panels: vec![
                Panel {
                    caption: "warp error".into(),
                    unit: "",
                    series: &s,
                    floor: Some(&s),
                    from_zero: true,
                    label_marks: true,
                },
                Panel {
                    caption: "cdc".into(),
                    unit: "",
                    series: &one,
                    floor: None,
                    from_zero: true,
                    label_marks: false,
                },
            ],
            marks: vec![2],
        };
        let (w, h, buf) = render(&plot).expect("drawn");
        assert_eq!((w, h), (PLOT_WIDTH, TITLE_HEIGHT + 2 * PANEL_HEIGHT));
        assert!(buf.iter().any(|&v| v < 128), "something drawn");
    }

    #[test]
    fn a_strip_has_a_column_per_frame_and_a_row_per_version() {
        let pic = |v: u8| RgbImage {
            width: 64,
            height: 32,
            data: vec![v; 64 * 32 * 3],
        };
        let column = |index| StripColumn {
            index,
            rows: [pic(0), pic(80), pic(160), pic(240)],
        };
        let (w, h, buf) =
            render_strip(&[column(0), column(10), column(20)], "test").expect("drawn");
        // Thumbnails keep the frames' 2:1 shape: 240 x 120, 6 px apart.
        assert_eq!(
            (w, h),
            (STRIP_CAPTION + 3 * (STRIP_THUMB + 6), 70 + 4 * 126)
        );
        assert_eq!(buf.len(), (w * h * 3) as usize);
        // The last column's truth row holds the truth's gray.
        let x = STRIP_CAPTION + 2 * (STRIP_THUMB + 6) + STRIP_THUMB / 2;
        let y = 70 + 3 * 126 + 60;
        assert_eq!(buf[((y * w + x) * 3) as usize], 240);
        assert_eq!(
            render_strip(&[], "empty").expect_err("nothing to draw"),
            "no frames were evaluated"
        );
    }
}
