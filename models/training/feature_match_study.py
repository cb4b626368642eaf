"""Which per-frame features match "the same stuff" best, measured by carried colour.

    python feature_outputs.py                       # writes /tmp/tincture-colorizer-v1-features.onnx
    python feature_match_study.py [--pairs 10] [--out /tmp/feature_study] [--reuse]
    python feature_match_study.py --time-matching   # only the matching cost, then exit

Issue 23, step 1. For pairs of frames (t, t+d), d in {1, 5, 10, 20}, of the
colour clips in shared/data/video/color, each frame is reduced to what
Tincture feeds the colorizer: the BT.601 luma at the model's run size (short
side 256, sides rounded to multiples of 32: 448 x 256 for these 852 x 480
clips), turned into L*. Then for every feature candidate:

* every cell of frame t+d is matched by cosine similarity against all cells
  of frame t (the candidate's own grid: 1/4, 1/8, 1/16 or 1/32 of the input);
* frame t's TRUE chroma (CIE a*b*, averaged per cell) is carried over, from
  the best cell (k=1) or as the softmax-weighted mean of the best 4 (k=4,
  temperature T);
* it is compared with frame t+d's true chroma: cell MAE (mean absolute error
  over cells and both a*, b* channels, Lab units, at the candidate's grid),
  full MAE (the carried cell chroma upsampled bilinearly to 448 x 256,
  against the true per-pixel a*b*), and PSNR of the RGB image rebuilt from the
  true L* and the carried, upsampled a*b* (PSNR against the true frame, 0..1);
* the cell MAE is also given on the hard cells: "changed" cells, where
  frame t's chroma at the same cell is off by more than 4 (motion or
  occlusion changed the colour there), and "flow-fail" cells, where the
  Farneback reference is off by more than 4;
* a confidence per cell (the top-1 cosine, the top-1 minus top-2 margin, or
  the softmax peak) is thresholded at its median over the tune set; the
  share of cells above it and their cell MAE are reported, and the MAE of
  the most confident half of each pair's cells, since the solver will weight
  by confidence.

Candidates: the colorizer's activations (feature_outputs.py; no hints, L2
normalised per cell; the `c` variants subtract the memory frame's mean
feature first), hypercolumns of e3 and e4 at 1/8 (each L2 normalised, e4
upsampled bilinearly and weighted 0.7, 1 or 1.4, the whole normalised
again), e4 alone upsampled to 1/8 (`e4@8`), raw luma patches of the
cell's size normalised by their mean and standard deviation (NCC), and a
luma+gradient descriptor (4x4 luma, x and y gradient over a window of twice
the cell's size). References: the same cell of frame t ("no motion"),
frame t's chroma warped along Farneback optical flow (OpenCV, t+d -> t),
the best cell of frame t in hindsight ("oracle", a floor for copying cells)
and frame t+d's own cell means upsampled ("grid floor", what the grid loses).

Clips c07_davis_blackswan and c05_sam2_juggle are the REPORT set; the
temperature, the confidence measure and its threshold are chosen on the
others (TUNE set) only. Tables (markdown) go to stdout and OUT/tables.md,
all figures to OUT/results.json, the matches to OUT/stage1.pkl (--reuse
redoes the tuning and tables from it without matching again).

Runtime: about 40 minutes on 2 busy cores for 10 pairs per clip per d;
OUT/stage1.pkl is then about 0.9 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from feature_outputs import CANDIDATES, output_name  # noqa: E402

REPORT_CLIPS = ("c07_davis_blackswan", "c05_sam2_juggle")
DS = (1, 5, 10, 20)
TEMPS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
K = 4
HARD = 4.0  # a cell whose chroma error exceeds this (a*b* MAE) by a reference counts as changed / failed

# ------------------------------------------------------------------ colour --
# The formulas of colorizer.py (scikit-image's), without importing torch.
_M = np.array([[0.412453, 0.357580, 0.180423],
               [0.212671, 0.715160, 0.072169],
               [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_linear(c):
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def linear_to_srgb(c):
    c = np.clip(c, 0.0, None)
    return np.where(c > 0.0031308, 1.055 * np.power(c, 1 / 2.4) - 0.055, 12.92 * c)


def _f(t):
    return np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)


def rgb_to_lab(rgb):
    xyz = srgb_to_linear(rgb) @ _M.T / _WHITE
    fx, fy, fz = _f(xyz[..., 0]), _f(xyz[..., 1]), _f(xyz[..., 2])
    y = xyz[..., 1]
    l = np.where(y > 0.008856, 116.0 * np.cbrt(y) - 16.0, 903.3 * y)
    return np.stack([l, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    l, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (l + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def finv(f):
        return np.where(f > 0.206893, f ** 3, (f - 16.0 / 116.0) / 7.787)

    y = np.where(l > 903.3 * 0.008856, fy ** 3, l / 903.3)
    xyz = np.stack([finv(fx), y, finv(fz)], axis=-1) * _WHITE
    return np.clip(linear_to_srgb(xyz @ np.linalg.inv(_M).T), 0.0, 1.0)


def gray_l(y):
    lin = srgb_to_linear(y)
    return np.where(lin > 0.008856, 116.0 * np.cbrt(lin) - 16.0, 903.3 * lin)


def luma601(rgb):
    return rgb @ np.array([0.299, 0.587, 0.114])


# ------------------------------------------------------------------ frames --

def run_size(w: int, h: int, short: int = 256, m: int = 32) -> tuple[int, int]:
    """Tincture's Model::run_size: short side to `short`, never enlarged, rounded to multiples of m."""
    scale = min(short / min(w, h), 1.0)
    return (max(1, round(w * scale / m)) * m, max(1, round(h * scale / m)) * m)


def read_clip(path: Path) -> np.ndarray:
    """All frames at the run size, RGB uint8 [T,H,W,3] (area scaling)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True).stdout.strip().split(",")
    w, h = run_size(int(probe[0]), int(probe[1]))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={w}:{h}:flags=area",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


class Frame:
    def __init__(self, rgb8: np.ndarray):
        rgb = rgb8.astype(np.float64) / 255.0
        self.rgb = rgb
        self.lab = rgb_to_lab(rgb)
        self.L = gray_l(luma601(rgb)).astype(np.float32)  # what the model sees
        self.y8 = np.clip(luma601(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        self.feats: dict[str, np.ndarray] = {}

    @property
    def ab(self):
        return self.lab[..., 1:]


def cell_mean(img: np.ndarray, s: int) -> np.ndarray:
    """[H,W,C] -> [H/s,W/s,C] mean per s x s cell."""
    h, w = img.shape[:2]
    return img.reshape(h // s, s, w // s, s, -1).mean(axis=(1, 3))


# ---------------------------------------------------------------- features --

def l2n(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + eps)


def model_feats(sess, fr: Frame, layers: list[str]) -> dict[str, np.ndarray]:
    h, w = fr.L.shape
    feed = {"l": fr.L[None, None], "ab_hint": np.zeros((1, 2, h, w), np.float32),
            "hint_mask": np.zeros((1, 1, h, w), np.float32)}
    outs = sess.run([output_name(x) for x in layers], feed)
    return {x: o[0].transpose(1, 2, 0).astype(np.float32) for x, o in zip(layers, outs)}  # [h,w,C]


def upsample(feat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(feat, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR).reshape(shape + (-1,))


def luma_patch(fr: Frame, s: int) -> np.ndarray:
    """Raw L* patches of the cell's size, minus their mean, over their std (NCC after L2)."""
    h, w = fr.L.shape
    p = fr.L.reshape(h // s, s, w // s, s).transpose(0, 2, 1, 3).reshape(h // s, w // s, s * s)
    p = p - p.mean(axis=-1, keepdims=True)
    return p / (p.std(axis=-1, keepdims=True) + 1e-3)


def luma_grad(fr: Frame, s: int) -> np.ndarray:
    """4x4 L*, x and y gradient over a 2s x 2s window centred on each cell (48 values)."""
    import cv2

    L = fr.L / 100.0
    gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    h, w = L.shape
    chans = []
    for c, wt in ((L, 1.0), (gx, 4.0), (gy, 4.0)):
        half = cell_mean(c[..., None], s // 2)[..., 0]  # cells of s/2
        pad = np.pad(half, 1, mode="edge")
        win = np.lib.stride_tricks.sliding_window_view(pad, (4, 4))[::2, ::2]  # [h/s, w/s, 4, 4]
        chans.append(wt * win.reshape(h // s, w // s, 16))
    return np.concatenate(chans, axis=-1)


def candidate_list(layers):
    """name -> (kind, scale, spec)."""
    c = {}
    for x in layers:
        c[x] = ("model", CANDIDATES[x][1], x)
    for x in ("e3", "e4"):
        if x in layers:
            c[x + "c"] = ("model_centred", CANDIDATES[x][1], x)
    if "e3" in layers and "e4" in layers:
        c["e3+e4"] = ("hyper", 8, ("e3", "e4", 1.0))
        c["e3+0.7e4"] = ("hyper", 8, ("e3", "e4", 0.7))
        c["e3+1.4e4"] = ("hyper", 8, ("e3", "e4", 1.4))
    if "e4" in layers:
        c["e4@8"] = ("up", 8, "e4")
    for s in (4, 8, 16):
        c[f"luma{s}"] = ("luma", s, s)
    for s in (8, 16):
        c[f"lumagrad{s}"] = ("lumagrad", s, s)
    return c


def descriptors(kind, spec, fq: Frame, fm: Frame):
    """Query (frame t+d) and memory (frame t) descriptors, [h,w,C], L2 normalised."""
    if kind == "model":
        return l2n(fq.feats[spec]), l2n(fm.feats[spec])
    if kind == "model_centred":
        mu = fm.feats[spec].reshape(-1, fm.feats[spec].shape[-1]).mean(axis=0)
        return l2n(fq.feats[spec] - mu), l2n(fm.feats[spec] - mu)
    if kind == "hyper":
        a, b, wb = spec
        out = []
        for fr in (fq, fm):
            fa = l2n(fr.feats[a])
            fb = wb * l2n(upsample(fr.feats[b], fa.shape[:2]))
            out.append(l2n(np.concatenate([fa, fb], axis=-1)))
        return out[0], out[1]
    if kind == "up":
        s = fq.L.shape[0] // 8, fq.L.shape[1] // 8
        return l2n(upsample(fq.feats[spec], s)), l2n(upsample(fm.feats[spec], s))
    if kind == "luma":
        return l2n(luma_patch(fq, spec)), l2n(luma_patch(fm, spec))
    if kind == "lumagrad":
        return l2n(luma_grad(fq, spec)), l2n(luma_grad(fm, spec))
    raise ValueError(kind)


def topk(q: np.ndarray, m: np.ndarray, k: int = K, chunk: int = 2048):
    """Cosine top-k of every query row among the memory rows: (idx [Nq,k], cos [Nq,k]), best first."""
    idx = np.empty((q.shape[0], k), np.int32)
    cos = np.empty((q.shape[0], k), np.float32)
    mt = np.ascontiguousarray(m.T)
    for i in range(0, q.shape[0], chunk):
        s = q[i:i + chunk] @ mt
        part = np.argpartition(-s, k, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1)
        idx[i:i + chunk] = np.take_along_axis(part, order, axis=1)
        cos[i:i + chunk] = np.take_along_axis(ps, order, axis=1)
    return idx, cos


def softmax_w(cos: np.ndarray, t: float) -> np.ndarray:
    z = (cos - cos[:, :1]) / t
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------- metrics --

def psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def full_metrics(ab_grid: np.ndarray | None, truth: Frame, ab_full: np.ndarray | None = None):
    """Full-resolution MAE of a*b* and PSNR of RGB from true L* + carried a*b*."""
    if ab_full is None:
        ab_full = upsample(ab_grid.astype(np.float32), truth.L.shape)
    mae = float(np.mean(np.abs(ab_full - truth.ab)))
    lab = np.concatenate([truth.lab[..., :1], ab_full], axis=-1)
    return mae, psnr(lab_to_rgb(lab), truth.rgb)


def farneback_ab(fq: Frame, fm: Frame) -> np.ndarray:
    """Frame t's a*b* warped to frame t+d along Farneback flow from t+d to t."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(fq.y8, fm.y8, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    h, w = fq.y8.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    ab = fm.ab.astype(np.float32)
    return cv2.remap(ab, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


# -------------------------------------------------------------------- main --

def pairs_for(n: int, d: int, count: int) -> list[int]:
    if n - 1 - d < 0:
        return []
    return sorted(set(int(round(x)) for x in np.linspace(0, n - 1 - d, count)))


def hint_sensitivity(sess, fr: Frame, layers, rng, hints=20):
    """Mean per-cell cosine between the features without and with `hints` true-colour points."""
    h, w = fr.L.shape
    ab = np.zeros((1, 2, h, w), np.float32)
    mask = np.zeros((1, 1, h, w), np.float32)
    ys, xs = rng.integers(0, h, hints), rng.integers(0, w, hints)
    mask[0, 0, ys, xs] = 1.0
    ab[0, :, ys, xs] = fr.ab[ys, xs].astype(np.float32)
    outs = sess.run([output_name(x) for x in layers], {"l": fr.L[None, None], "ab_hint": ab, "hint_mask": mask})
    res = {}
    for x, o in zip(layers, outs):
        a = l2n(fr.feats[x])
        b = l2n(o[0].transpose(1, 2, 0))
        res[x] = float((a * b).sum(-1).mean())
    return res


def stage1(a, cands, layers):
    """Matches every pair with every candidate; returns (recs, cellwise, hint_sens)."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = a.threads
    o.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, o, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(23)
    clips = sorted(Path(a.clips).glob("*.mp4"))
    recs: list[dict] = []  # one per (pair, candidate or reference)
    cellwise: dict[tuple, list] = {}  # (candidate, set) -> per pair: top-k, errors per cell
    hint_sens: dict[str, list] = {}
    t0 = time.time()
    for clip in clips:
        name = clip.stem
        split = "report" if name in REPORT_CLIPS else "tune"
        frames8 = read_clip(clip)
        n = len(frames8)
        plan = {d: pairs_for(n, d, a.pairs) for d in DS}
        needed = sorted({t for d in DS for t in plan[d]} | {t + d for d in DS for t in plan[d]})
        frames = {}
        for t in needed:
            fr = Frame(frames8[t])
            fr.feats = model_feats(sess, fr, layers)
            frames[t] = fr
        if split == "tune":
            for t in needed[:2]:
                for hints in (20, 300):
                    for x, v in hint_sensitivity(sess, frames[t], layers, rng, hints).items():
                        hint_sens.setdefault(f"{x} ({hints} pts)", []).append(v)
        print(f"{name}: {n} frames at {frames8.shape[2]}x{frames8.shape[1]}, {len(needed)} decoded "
              f"({time.time() - t0:.0f} s)", flush=True)
        for d in DS:
            for t in plan[d]:
                fm, fq = frames[t], frames[t + d]
                flow_ab = farneback_ab(fq, fm)
                base = {"clip": name, "set": split, "d": d, "t": t}
                grids = {}
                same_full = full_metrics(None, fq, ab_full=fm.ab)
                flow_full = full_metrics(None, fq, ab_full=flow_ab)
                for s in sorted({c[1] for c in cands.values()}):
                    A_m = cell_mean(fm.ab, s)
                    A_q = cell_mean(fq.ab, s)
                    qa, ma = A_q.reshape(-1, 2), A_m.reshape(-1, 2)
                    fl = cell_mean(flow_ab, s).reshape(-1, 2)
                    e_same = np.abs(qa - ma).mean(-1)
                    e_flow = np.abs(qa - fl).mean(-1)
                    changed = e_same > HARD
                    flowfail = e_flow > HARD
                    grids[s] = (A_m, A_q, changed, flowfail)
                    oracle = np.concatenate([np.abs(qa[i:i + 512, None, :] - ma[None]).mean(-1).min(axis=1)
                                             for i in range(0, qa.shape[0], 512)])
                    floor_full = full_metrics(A_q, fq)
                    for ref, e, (fmae, fps) in (
                            ("same cell", e_same, same_full),
                            ("Farneback", e_flow, flow_full),
                            ("oracle cell", oracle, (np.nan, np.nan)),
                            ("grid floor", np.zeros_like(e_same), floor_full)):
                        recs.append({**base, "cand": f"{ref} @1/{s}", "scale": s, "ref": True,
                                     "cell_mae_k1": float(e.mean()), "cell_mae_k4": float(e.mean()),
                                     "changed_mae_k4": float(e[changed].mean()) if changed.any() else np.nan,
                                     "flowfail_mae_k4": float(e[flowfail].mean()) if flowfail.any() else np.nan,
                                     "changed_share": float(changed.mean()), "flowfail_share": float(flowfail.mean()),
                                     "full_mae_k1": fmae, "full_mae_k4": fmae, "psnr_k1": fps, "psnr_k4": fps})
                for cname, (kind, s, spec) in cands.items():
                    A_m, A_q, changed, flowfail = grids[s]
                    qd, md = descriptors(kind, spec, fq, fm)
                    C = qd.shape[-1]
                    idx, cos = topk(qd.reshape(-1, C), md.reshape(-1, C))
                    ma, qa = A_m.reshape(-1, 2), A_q.reshape(-1, 2)
                    pred1 = ma[idx[:, 0]]
                    e1 = np.abs(pred1 - qa).mean(-1)
                    r = {**base, "cand": cname, "scale": s, "ref": False, "C": C,
                         "cell_mae_k1": float(e1.mean())}
                    r["full_mae_k1"], r["psnr_k1"] = full_metrics(pred1.reshape(A_q.shape), fq)
                    e4 = {}
                    for T in TEMPS:
                        w = softmax_w(cos, T)
                        pred = (w[:, :, None] * ma[idx]).sum(1)
                        e4[T] = np.abs(pred - qa).mean(-1).astype(np.float32)
                        r[f"cell_mae_k4_T{T}"] = float(e4[T].mean())
                    recs.append(r)
                    cellwise.setdefault((cname, split), []).append({
                        "d": d, "cos": cos, "e4": e4, "idx": idx, "A_m": A_m.astype(np.float32),
                        "A_q": A_q.astype(np.float32), "changed": changed, "flowfail": flowfail,
                        "t": t, "clip": name})
            print(f"  d={d}: {len(plan[d])} pairs ({time.time() - t0:.0f} s)", flush=True)
        del frames, frames8
    return recs, cellwise, hint_sens


def time_matching(c: int = 128):
    """Time of matching one query frame against one memory frame, random unit vectors."""
    rng = np.random.default_rng(0)
    for name, n in (("448 x 256 run, 1/8 grid (56 x 32)", 1792), ("1280 x 736 run, 1/8 grid (160 x 92)", 14720)):
        q = l2n(rng.standard_normal((n, c)).astype(np.float32))
        mt = np.ascontiguousarray(l2n(rng.standard_normal((n, c)).astype(np.float32)).T)
        for what in ("product only", "product + numpy top-4"):
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                for i in range(0, n, 2048):
                    s = q[i:i + 2048] @ mt
                    if what != "product only":
                        np.argpartition(-s, K, axis=1)[:, :K]
                ts.append(time.perf_counter() - t)
            print(f"{name}: {what}: {1000 * min(ts):.1f} ms per memory frame (best of 3); "
                  f"{2 * n * n * c / 1e9:.2f} GFLOP in the product", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/tincture-colorizer-v1-features.onnx",
                    help="the graph with feature outputs (feature_outputs.py)")
    ap.add_argument("--clips", default="/work/shared/data/video/color")
    ap.add_argument("--pairs", type=int, default=10, help="pairs per clip per d")
    ap.add_argument("--layers", default="e2,e3,e4a,e4,e5,d4,d3,d2")
    ap.add_argument("--out", default="/tmp/feature_study")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="take the matches from OUT/stage1.pkl (written by an earlier run) and redo the rest")
    ap.add_argument("--time-matching", action="store_true",
                    help="only time the cosine matching of one frame against one memory frame (128 values a "
                         "cell, 1/8 grid of 448 x 256 and of 1280 x 736) and exit")
    a = ap.parse_args()
    if a.time_matching:
        time_matching()
        return

    import pickle

    import cv2

    cv2.setNumThreads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    layers = [x for x in a.layers.split(",") if x]
    cands = candidate_list(layers)
    t0 = time.time()
    cache = out / "stage1.pkl"
    if a.reuse:
        with open(cache, "rb") as f:
            recs, cellwise, hint_sens, cands = pickle.load(f)
    else:
        recs, cellwise, hint_sens = stage1(a, cands, layers)
        with open(cache, "wb") as f:
            pickle.dump((recs, cellwise, hint_sens, cands), f, protocol=pickle.HIGHEST_PROTOCOL)

    # ---------------- tuning on the tune set only ----------------
    chosen = {}
    for cname in cands:
        tune = [r for r in recs if r["cand"] == cname and r["set"] == "tune"]
        best_T = min(TEMPS, key=lambda T: np.mean([r[f"cell_mae_k4_T{T}"] for r in tune]))
        cw = cellwise[(cname, "tune")]
        scores = {}
        for meas in ("c1", "margin", "peak"):
            # ranking quality: error of the most confident half of each pair's cells
            half = np.mean([top_half_err(conf_of(c, meas, best_T), c["e4"][best_T]) for c in cw])
            # threshold: the median confidence over all tune cells
            conf = np.concatenate([conf_of(c, meas, best_T) for c in cw])
            scores[meas] = (float(half), float(np.median(conf)))
        chosen[cname] = {"T": best_T, "conf": scores}
    # one confidence measure for all: the one whose confident half has the lowest error on average
    meas_best = min(("c1", "margin", "peak"),
                    key=lambda m: np.mean([chosen[c]["conf"][m][0] for c in cands]))
    for cname in cands:
        chosen[cname]["measure"] = meas_best
        chosen[cname]["thr"] = chosen[cname]["conf"][meas_best][1]

    # ---------------- final metrics with the chosen settings ----------------
    for r in recs:
        if not r["ref"]:
            r["T"] = chosen[r["cand"]]["T"]
            r["cell_mae_k4"] = r[f"cell_mae_k4_T{r['T']}"]
    byid = {}
    for (cname, split), cw in cellwise.items():
        T, meas, thr = chosen[cname]["T"], chosen[cname]["measure"], chosen[cname]["thr"]
        for c in cw:
            conf = conf_of(c, meas, T)
            ok = conf >= thr
            e = c["e4"][T]
            byid[(cname, c["clip"], c["d"], c["t"])] = (c, {
                "conf_share": float(ok.mean()),
                "conf_mae_k4": float(e[ok].mean()) if ok.any() else np.nan,
                "half_mae_k4": top_half_err(conf, e),
                "changed_mae_k4": float(e[c["changed"]].mean()) if c["changed"].any() else np.nan,
                "flowfail_mae_k4": float(e[c["flowfail"]].mean()) if c["flowfail"].any() else np.nan,
                "changed_share": float(c["changed"].mean()), "flowfail_share": float(c["flowfail"].mean()),
                "conf_share_changed": float(ok[c["changed"]].mean()) if c["changed"].any() else np.nan,
                "conf_mae_changed": float(e[c["changed"] & ok].mean()) if (c["changed"] & ok).any() else np.nan,
                "conf_changed_share": float((c["changed"] & ok).mean()),
                "half_mae_changed": top_half_err(conf[c["changed"]], e[c["changed"]]) if c["changed"].any()
                else np.nan,
            })
    clip_frames: dict[str, np.ndarray] = {}
    truth: dict[int, Frame] = {}
    for r in recs:
        if r["ref"]:
            continue
        c, extra = byid[(r["cand"], r["clip"], r["d"], r["t"])]
        r.update(extra)
        if r["clip"] not in clip_frames:
            clip_frames.clear()
            truth.clear()
            clip_frames[r["clip"]] = read_clip(Path(a.clips) / f"{r['clip']}.mp4")
        tq = r["t"] + r["d"]
        if tq not in truth:
            truth[tq] = Frame(clip_frames[r["clip"]][tq])
        w = softmax_w(c["cos"], r["T"])
        ma = c["A_m"].reshape(-1, 2)
        pred = (w[:, :, None] * ma[c["idx"]]).sum(1).reshape(c["A_q"].shape)
        r["full_mae_k4"], r["psnr_k4"] = full_metrics(pred, truth[tq])

    # ---------------- tables ----------------
    weight_of = {"changed_mae_k4": "changed_share", "flowfail_mae_k4": "flowfail_share",
                 "conf_share_changed": "changed_share", "conf_mae_changed": "conf_changed_share",
                 "half_mae_changed": "changed_share"}

    def mean_of(rs, k):
        """Mean over pairs; the hard-cell errors are pooled over cells (each pair weighted by its count)."""
        v = [(r.get(k, np.nan), r.get(weight_of[k], 0.0) if k in weight_of else 1.0) for r in rs]
        v = [(x, w) for x, w in v if x is not None and np.isfinite(x) and w > 0]
        return float(np.average([x for x, _ in v], weights=[w for _, w in v])) if v else np.nan

    def fmt(v, p=2):
        return "-" if not np.isfinite(v) else f"{v:.{p}f}"

    lines = [f"Run: {' '.join(sys.argv)}", "",
             f"Pairs: {a.pairs} per clip per d (fewer where the clip is short); frames at the run size "
             f"(448 x 256); model {a.model}", ""]
    lines.append("Chosen on the TUNE set: T, the temperature of the k=4 softmax (lowest tune cell MAE); "
                 f"the confidence measure for all candidates (`{meas_best}`: lowest tune error on the most "
                 "confident half of each pair's cells, among c1 = top-1 cosine, margin = top-1 minus top-2 "
                 "cosine, peak = softmax weight of the top match); the confidence threshold (the median of "
                 "that measure over all tune cells):")
    lines.append("")
    lines.append("| candidate | grid | C | T | conf. thr | tune MAE of confident half by c1 / margin / peak |")
    lines.append("|---|---|---|---|---|---|")
    for cname, (kind, s, spec) in cands.items():
        ch = chosen[cname]
        C = next(r["C"] for r in recs if r["cand"] == cname)
        cs = " / ".join(f"{ch['conf'][m][0]:.2f}" for m in ("c1", "margin", "peak"))
        lines.append(f"| {cname} | 1/{s} | {C} | {ch['T']} | {ch['thr']:.3f} | {cs} |")
    lines.append("")
    lines.append("Temperature sweep, tune set, cell MAE k=4 (all d pooled):")
    lines.append("")
    lines.append("| candidate | " + " | ".join(f"T={T}" for T in TEMPS) + " |")
    lines.append("|---|" + "---|" * len(TEMPS))
    for cname in cands:
        tune = [r for r in recs if r["cand"] == cname and r["set"] == "tune"]
        lines.append(f"| {cname} | " + " | ".join(f"{mean_of(tune, f'cell_mae_k4_T{T}'):.2f}"
                                              for T in TEMPS) + " |")
    lines.append("")
    lines.append("Hint sensitivity (tune clips, 2 frames each, 20 or 300 single-pixel true-colour hints): "
                 "mean per-cell cosine between the features without and with hints: " +
                 ", ".join(f"{x} {np.mean(v):.4f}" for x, v in hint_sens.items() if v))
    lines.append("")
    order = list(cands) + sorted({r["cand"] for r in recs if r["ref"]},
                                 key=lambda x: (int(x.split("/")[-1]), x))
    for split in ("tune", "report"):
        clips_in = sorted({r["clip"] for r in recs if r["set"] == split})
        for d in list(DS) + ["all"]:
            sel = [r for r in recs if r["set"] == split and (d == "all" or r["d"] == d)]
            npairs = len({(r["clip"], r["d"], r["t"]) for r in sel})
            lines.append(f"### {split.upper()} set ({', '.join(clips_in)}), d = {d} ({npairs} pairs)")
            lines.append("")
            shares = ", ".join(
                f"1/{s}: {fmt(100 * mean_of([r for r in sel if r['cand'] == f'same cell @1/{s}'], 'changed_share'), 1)}%"
                f" / {fmt(100 * mean_of([r for r in sel if r['cand'] == f'same cell @1/{s}'], 'flowfail_share'), 1)}%"
                for s in sorted({r["scale"] for r in sel if r["ref"]}))
            lines.append(f"Changed cells (same-cell error > {HARD}) / flow-fail cells (Farneback cell error > "
                         f"{HARD}), share of all cells per grid: {shares}")
            lines.append("")
            lines.append("| candidate | grid | cell MAE k1 | cell MAE k4 | changed cells MAE k4 | flow-fail cells MAE k4 | "
                         "full MAE k4 | PSNR k1 | PSNR k4 | share >= thr | cell MAE k4 >= thr | "
                         "cell MAE k4 confident half |")
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for cname in order:
                rs = [r for r in sel if r["cand"] == cname]
                if not rs:
                    continue
                m = lambda k: mean_of(rs, k)  # noqa: E731
                s = rs[0]["scale"]
                if rs[0]["ref"]:
                    lines.append(f"| *{cname}* | 1/{s} | {fmt(m('cell_mae_k1'))} | | {fmt(m('changed_mae_k4'))} | "
                                 f"{fmt(m('flowfail_mae_k4'))} | {fmt(m('full_mae_k1'))} | {fmt(m('psnr_k1'))} "
                                 f"| | | | |")
                else:
                    lines.append(f"| {cname} | 1/{s} | {fmt(m('cell_mae_k1'))} | {fmt(m('cell_mae_k4'))} | "
                                 f"{fmt(m('changed_mae_k4'))} | {fmt(m('flowfail_mae_k4'))} | "
                                 f"{fmt(m('full_mae_k4'))} | {fmt(m('psnr_k1'))} | "
                                 f"{fmt(m('psnr_k4'))} | {fmt(100 * m('conf_share'), 0)}% | "
                                 f"{fmt(m('conf_mae_k4'))} | {fmt(m('half_mae_k4'))} |")
            lines.append("")
    # summary: one table per metric and set, candidates x d
    summary = [("cell_mae_k4", "cell MAE k4 (a*b*, at the candidate's grid)", 2),
               ("changed_mae_k4", f"cell MAE k4 on changed cells (same cell off by > {HARD})", 2),
               ("flowfail_mae_k4", f"cell MAE k4 on flow-fail cells (Farneback off by > {HARD})", 2),
               ("psnr_k4", "PSNR k4 (dB, RGB from true L* + carried a*b* upsampled to 448 x 256)", 2),
               ("half_mae_k4", "cell MAE k4 of the most confident half of each pair's cells", 2),
               ("conf_share", "share of cells whose confidence is >= the tune threshold", 2),
               ("conf_mae_k4", "cell MAE k4 of the cells whose confidence is >= the tune threshold", 2),
               ("half_mae_changed", "cell MAE k4 of the most confident half of each pair's changed cells "
                                    "(compare with the changed-cell MAE of all of them)", 2),
               ("conf_share_changed", f"share of the changed cells (same cell off by > {HARD}) whose "
                                      "confidence is >= the tune threshold", 2),
               ("conf_mae_changed", "cell MAE k4 of the changed cells whose confidence is >= the tune threshold",
                2)]
    sum_rows = [c for c in cands] + [f"{ref} @1/{s}" for s in (8, 16) for ref in ("same cell", "Farneback",
                                                                                 "oracle cell")]
    for split in ("tune", "report"):
        for key, title, p in summary:
            lines.append(f"### Summary, {split.upper()} set: {title}")
            lines.append("")
            lines.append("| candidate | grid | " + " | ".join(f"d={d}" for d in DS) + " | all |")
            lines.append("|---|---|" + "---|" * (len(DS) + 1))
            for cname in sum_rows:
                rs = [r for r in recs if r["set"] == split and r["cand"] == cname]
                if not rs or (rs[0]["ref"] and key.startswith(("half_", "conf_"))):
                    continue
                k = key if not rs[0]["ref"] or key != "psnr_k4" else "psnr_k1"
                vals = [mean_of([r for r in rs if r["d"] == d], k) for d in DS] + [mean_of(rs, k)]
                if all(not np.isfinite(v) for v in vals):
                    continue
                label = f"*{cname}*" if rs[0]["ref"] else cname
                lines.append(f"| {label} | 1/{rs[0]['scale']} | " + " | ".join(fmt(v, p) for v in vals) + " |")
            lines.append("")
    # per clip, 1/8 grid, all d pooled
    per_clip = [c for c in ("e3", "e4@8", "e3+e4", "d3", "luma8", "lumagrad8") if c in cands]
    per_clip += ["same cell @1/8", "Farneback @1/8"]
    lines.append("### Per clip, 1/8 grid, all d pooled: cell MAE k4 (changed cells MAE k4)")
    lines.append("")
    lines.append("| clip | set | " + " | ".join(per_clip) + " |")
    lines.append("|---|---|" + "---|" * len(per_clip))
    for clip in sorted({r["clip"] for r in recs}):
        rs = [r for r in recs if r["clip"] == clip]
        lines.append(f"| {clip} | {rs[0]['set']} | " + " | ".join(
            f"{fmt(mean_of([r for r in rs if r['cand'] == c], 'cell_mae_k4'))} "
            f"({fmt(mean_of([r for r in rs if r['cand'] == c], 'changed_mae_k4'))})" for c in per_clip) + " |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    (out / "tables.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(
        {"chosen": chosen, "measure": meas_best, "hint_sensitivity": hint_sens,
         "records": recs}, indent=1, default=float))
    print(f"({time.time() - t0:.0f} s; tables in {out / 'tables.md'})")


def top_half_err(conf: np.ndarray, err: np.ndarray) -> float:
    o = np.argsort(-conf, kind="stable")
    return float(err[o[: max(1, len(o) // 2)]].mean())


def conf_of(c: dict, meas: str, T: float) -> np.ndarray:
    if meas == "c1":
        return c["cos"][:, 0]
    if meas == "margin":
        return c["cos"][:, 0] - c["cos"][:, 1]
    return softmax_w(c["cos"], T)[:, 0]


if __name__ == "__main__":
    main()
