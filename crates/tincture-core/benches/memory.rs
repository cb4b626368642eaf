//! Cost of matching a 1280x720 frame against a memory of coloured frames,
//! beside the per-frame chroma solve of propagation on the same frame size.
//!
//! `cargo bench -p tincture-core --bench memory`
//!
//! The features are a hypercolumn of 128 channels at 1/8 of the size the
//! colorizer runs a 1280x720 frame at (455x256, so 57x32 cells), as the
//! colorizer's encoder gives them. A memory of 1, 5 and 9 frames (keys plus
//! recent frames) is matched (top 4, softmax) and the result brought to
//! 1280x720 bilinearly. The baseline is one propagation step of
//! the chroma solver at 1280x720 (carried colour with a filled band, warm
//! start), which every frame of a render already pays. Each is timed best
//! and median of 7 after a warm-up.

use std::time::Instant;

use tincture_core::frame::{ChromaField, LumaImage};
use tincture_core::memory::{CellColour, CellFeatures, ColourMemory, EntryKind, MemoryParams};
use tincture_core::solver::{ChromaSolver, DataTerm, SolverParams};

const W: usize = 1280;
const H: usize = 720;
const CW: usize = 57;
const CH: usize = 32;
const C: usize = 128;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn time<T>(mut f: impl FnMut() -> T) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(f());
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[3])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let cells = CW * CH;
    let mut feats = || {
        CellFeatures::new(
            CW,
            CH,
            C,
            (0..cells * C).map(|_| rng.next() - 0.5).collect(),
        )
    };
    let frames: Vec<CellFeatures> = (0..9).map(|_| feats()).collect::<Result<_, _>>()?;
    let query = feats()?;
    let colour = CellColour {
        width: CW,
        height: CH,
        cb: (0..cells).map(|i| (i % 7) as f32 * 0.01).collect(),
        cr: (0..cells).map(|i| (i % 5) as f32 * -0.01).collect(),
        confidence: vec![0.9; cells],
        // Two-toned cells, as frames coloured by the engine are.
        dark: (0..cells)
            .map(|i| [(i % 7) as f32 * 0.01 - 0.02, (i % 5) as f32 * -0.01])
            .collect(),
        light: (0..cells)
            .map(|i| [(i % 7) as f32 * 0.01 + 0.02, (i % 5) as f32 * -0.01])
            .collect(),
    };
    let luma = LumaImage {
        width: W,
        height: H,
        data: (0..W * H)
            .map(|i| 0.3 + 0.4 * ((i % W) as f32 / W as f32) + 0.01 * rng.next())
            .collect(),
    };
    // Baseline: one propagation step at 1280x720.
    let carried = ChromaField {
        width: W,
        height: H,
        cb: (0..W * H)
            .map(|i| 0.1 * ((i % W) as f32 / W as f32))
            .collect(),
        cr: vec![-0.05; W * H],
    };
    let weights: Vec<f32> = (0..W * H)
        .map(|i| if (i % W) > 1100 { 0.0 } else { 20.0 })
        .collect();
    let (solve_best, solve_median) = time(|| {
        let mut s = ChromaSolver::new(&luma, SolverParams::default()).expect("solver");
        s.solve(
            &[DataTerm {
                cb: &carried.cb,
                cr: &carried.cr,
                weight: &weights,
            }],
            Some(&carried),
        )
        .expect("solved")
    });
    println!(
        "propagation step (solver, {W}x{H}): best {solve_best:.1} ms, median {solve_median:.1} ms"
    );
    let (up_best, up_median) = time(|| colour.upsample(&luma));
    println!(
        "two-toned upsampling of the matched cells to {W}x{H}: best {up_best:.1} ms, median {up_median:.1} ms"
    );
    println!(
        "memory frames | cells | MB | match best ms | median ms | match + upsampling / solve (median)"
    );
    for n in [1usize, 5, 9] {
        let mut m = ColourMemory::new(MemoryParams {
            max_recent: 8,
            min_confidence: 0.0,
            ..MemoryParams::default()
        });
        for (i, f) in frames.iter().take(n).enumerate() {
            let kind = if i == 0 {
                EntryKind::Key
            } else {
                EntryKind::Recent
            };
            m.insert(i as u64, kind, f, &colour)?;
        }
        let (best, median) = time(|| m.match_cells(&query).expect("matched"));
        println!(
            "{n} | {} | {:.1} | {best:.1} | {median:.1} | {:.2}",
            m.cells(),
            m.bytes() as f64 / 1e6,
            (median + up_median) / solve_median
        );
    }
    Ok(())
}
