//! The shipped colorizer (`models/`, named by `registry::BUILTIN_MANIFEST`) through the real
//! CLI: it loads, keeps luma, follows painted hints, and, on real historical
//! photographs when ../shared is present, makes the README's before/after grid.

use std::path::Path;

use tincture_core::metrics::srgb8_to_lab;
use tincture_tests::{cli, repo, shared_dir, skip_or_fail};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn luma601([r, g, b]: [u8; 3]) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

#[test]
fn builtin_model_keeps_luma_and_follows_hints() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // A gray scene: sky gradient over a darker ground, with a disc.
    let (w, h) = (320u32, 200u32);
    let gray = image::GrayImage::from_fn(w, h, |x, y| {
        let disc = (x as f32 - 220.0).hypot(y as f32 - 70.0) < 30.0;
        let v = if disc {
            200.0
        } else if y < 120 {
            150.0 + 60.0 * (y as f32 / 120.0)
        } else {
            70.0 + 20.0 * ((x / 8) % 2) as f32
        };
        image::Luma([v as u8])
    });
    let input = d.join("scene.png");
    gray.save(&input).expect("save");
    // Hints: the ground is green at four points.
    let green = "#3f8a2c";
    let points: Vec<String> = [(40, 160), (120, 180), (200, 150), (280, 170)]
        .iter()
        .map(|(x, y)| format!(r##"{{"x":{x},"y":{y},"color":"{green}","size":3}}"##))
        .collect();
    let hints = d.join("hints.json");
    std::fs::write(&hints, format!(r#"{{"points":[{}]}}"#, points.join(","))).expect("hints");
    let out = d.join("out.png");
    let res = cli(&[
        "colorize-image",
        s(&input),
        "-o",
        s(&out),
        "--hints",
        s(&hints),
        "--cpu",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let rgb = image::open(&out).expect("output").into_rgb8();
    for (p, g) in rgb.pixels().zip(gray.pixels()) {
        assert!(
            (luma601(p.0) - f32::from(g.0[0])).abs() <= 1.0,
            "luma changed: {:?} vs {}",
            p.0,
            g.0[0]
        );
    }
    // The ground, between the hints, takes on the hinted green's hue.
    let want = srgb8_to_lab([0x3f, 0x8a, 0x2c]);
    let mut a = 0.0;
    let mut b = 0.0;
    let mut n = 0.0;
    for y in 140..195 {
        for x in 20..300 {
            let lab = srgb8_to_lab(rgb.get_pixel(x, y).0);
            a += lab[1];
            b += lab[2];
            n += 1.0;
        }
    }
    let (a, b) = (a / n, b / n);
    assert!(
        a < -10.0 && b > 10.0,
        "ground should be green like {want:?}, got a {a:.1} b {b:.1}"
    );
}

#[test]
fn bw_photos_before_after_grid() {
    let Some(shared) = shared_dir() else {
        skip_or_fail(
            "bw_photos_before_after_grid",
            "../shared is absent (the historical B&W photos live there)",
        );
        return;
    };
    let photos = shared.join("data/images/bw_photos");
    let names = [
        "1890CliffHouseSF.jpg",
        "1920sFamilyPhoto.jpg",
        "AthleticClubParis1913.jpg",
        "Cork1905.jpg",
        "EasterNyc1911.jpg",
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let row_h = 300u32;
    let mut rows = Vec::new();
    for name in names {
        let input = photos.join(name);
        if !input.is_file() {
            skip_or_fail(
                "bw_photos_before_after_grid",
                format!("{} is missing", input.display()),
            );
            return;
        }
        let out = dir.path().join(format!("{name}.png"));
        let res = cli(&["colorize-image", s(&input), "-o", s(&out), "--cpu"]);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let before = image::open(&input).expect("photo").into_rgb8();
        let after = image::open(&out).expect("colorized").into_rgb8();
        assert_eq!(before.dimensions(), after.dimensions());
        let scale = |im: &image::RgbImage| {
            let w = (im.width() as f32 * row_h as f32 / im.height() as f32).round() as u32;
            image::imageops::resize(im, w.max(1), row_h, image::imageops::FilterType::Triangle)
        };
        rows.push((scale(&before), scale(&after)));
    }
    let gap = 8u32;
    let width = rows
        .iter()
        .map(|(b, a)| b.width() + a.width() + 3 * gap)
        .max()
        .unwrap_or(0);
    let height = rows.len() as u32 * (row_h + gap) + gap;
    let mut grid = image::RgbImage::from_pixel(width, height, image::Rgb([24, 24, 24]));
    for (i, (b, a)) in rows.iter().enumerate() {
        let y = gap + i as u32 * (row_h + gap);
        image::imageops::overlay(&mut grid, b, i64::from(gap), i64::from(y));
        image::imageops::overlay(&mut grid, a, i64::from(2 * gap + b.width()), i64::from(y));
    }
    let path = repo().join("screenshots/bw-photos-before-after.png");
    grid.save(&path).expect("write grid");
    println!("wrote {}", path.display());
}

/// A textured disc on a striped ground, the disc's centre at `cx`.
fn disc_scene(w: usize, h: usize, cx: f32) -> tincture_core::frame::LumaImage {
    let data = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let (dx, dy) = (x - cx, y - h as f32 / 2.0);
            if dx.hypot(dy) < 40.0 {
                // A bright disc with a dark checker inside.
                if ((dx + 40.0) as usize / 10 + (dy + 40.0) as usize / 10).is_multiple_of(2) {
                    0.9
                } else {
                    0.55
                }
            } else if (y as usize / 6).is_multiple_of(2) {
                0.3
            } else {
                0.2
            }
        })
        .collect();
    tincture_core::frame::LumaImage {
        width: w,
        height: h,
        data,
    }
}

#[test]
fn the_builtin_models_features_find_an_object_that_moved_far() {
    use tincture_core::frame::ChromaField;
    use tincture_core::memory::{CellColour, ColourMemory, EntryKind, MemoryParams};
    use tincture_core::motion::Confident;
    use tincture_infer::{ExecutionChoice, Model, NeuralColorizer, RenderSettings};

    let manifest = repo()
        .join("models")
        .join(tincture_infer::registry::BUILTIN_MANIFEST);
    let model = Model::open(&manifest, ExecutionChoice::Cpu, 2).expect("the built-in model opens");
    assert!(
        model.has_features(),
        "the built-in graph returns its encoder features"
    );
    let mut colorizer = NeuralColorizer::new(model, RenderSettings::default());
    let (w, h) = (448, 256);
    // The disc jumps 200 px between the frames: no flow follows that.
    let (a, b) = (disc_scene(w, h, 100.0), disc_scene(w, h, 300.0));
    let fa = colorizer
        .cell_features(&a, 0)
        .expect("runs")
        .expect("features");
    let fb = colorizer
        .cell_features(&b, 1)
        .expect("runs")
        .expect("features");
    assert_eq!(
        (fa.width(), fa.height(), fa.channels()),
        (w / 8, h / 8, 128)
    );
    // Frame a's colour: the disc red, the ground blue.
    let inside = |img: &tincture_core::frame::LumaImage, cx: f32, i: usize| {
        let (x, y) = ((i % img.width) as f32, (i / img.width) as f32);
        (x - cx).hypot(y - h as f32 / 2.0) < 40.0
    };
    let (red, blue) = ((-0.1f32, 0.3f32), (0.25f32, -0.1f32));
    let pick = |on: bool| if on { red } else { blue };
    let colour = Confident::uniform(
        ChromaField {
            width: w,
            height: h,
            cb: (0..w * h).map(|i| pick(inside(&a, 100.0, i)).0).collect(),
            cr: (0..w * h).map(|i| pick(inside(&a, 100.0, i)).1).collect(),
        },
        1.0,
    );
    let mut memory = ColourMemory::new(MemoryParams::default());
    let cells = CellColour::from_confident(&colour, fa.width(), fa.height()).expect("cells");
    memory
        .insert(0, EntryKind::Key, &fa, &cells)
        .expect("stored");
    let matched = memory.match_cells(&fb).expect("matched").upsample(&b);
    // Deep inside the moved disc and far out on the ground, the colour
    // comes back from the memory, confidently.
    let mut checked = 0;
    for i in 0..w * h {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        let r = (x - 300.0).hypot(y - h as f32 / 2.0);
        let want = if r < 24.0 {
            red
        } else if r > 70.0
            && (x - 100.0).hypot(y - h as f32 / 2.0) > 70.0
            && x > 16.0
            && x < w as f32 - 16.0
        {
            blue
        } else {
            continue;
        };
        let got = (matched.chroma.cb[i], matched.chroma.cr[i]);
        assert!(
            (got.0 - want.0).abs() < 0.08 && (got.1 - want.1).abs() < 0.08,
            "pixel ({x}, {y}): matched {got:?}, want {want:?}"
        );
        checked += 1;
    }
    assert!(checked > 20_000, "{checked} pixels checked");
    let conf_in = matched.confidence[(h / 2) * w + 300];
    assert!(conf_in > 0.3, "confidence at the disc's centre {conf_in}");
}
