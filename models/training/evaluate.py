"""Quick validation of a colorizer during training and for choosing the
export's blend. The figures of record come from `tincture-cli eval-images`,
which runs the exported ONNX graph through Tincture itself.

Protocol (the same as eval-images): the gray image is BT.601 luma, rounded to
8 bits. N points are drawn at random (fixed seed per image) and carry the
original's a*b* at that pixel. The prediction keeps the gray luma exactly and
takes only chroma from the model (Y'CbCr, BT.601, full range).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import colorizer as C

_M_XYZ2RGB = np.linalg.inv(C._M_RGB2XYZ)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    l, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (l + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def finv(f):
        return np.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)

    xyz = np.stack([finv(fx), finv(fy), finv(fz)], axis=-1) * C._WHITE
    lin = np.clip(xyz @ _M_XYZ2RGB.T, 0.0, 1.0)
    return np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)


def compose(gray8: np.ndarray, rgb_pred: np.ndarray) -> np.ndarray:
    """Keep the gray luma, take Cb/Cr from the prediction; 8-bit RGB out."""
    p = rgb_pred * 255.0
    cb = -0.168736 * p[..., 0] - 0.331264 * p[..., 1] + 0.5 * p[..., 2]
    cr = 0.5 * p[..., 0] - 0.418688 * p[..., 1] - 0.081312 * p[..., 2]
    y = gray8.astype(np.float64)
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.clip(np.round(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def colorfulness(rgb: np.ndarray) -> float:
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())


def colorize(model, gray8: np.ndarray, hints: list[tuple[int, int, float, float]]) -> np.ndarray:
    h, w = gray8.shape
    ph, pw = (-h) % 32, (-w) % 32
    l = C.gray_l(gray8 / 255.0)
    hint = np.zeros((2, h, w), np.float32)
    mask = np.zeros((1, h, w), np.float32)
    for y, x, a, b in hints:
        hint[:, y, x] = (a, b)
        mask[0, y, x] = 1.0
    t = lambda a: F.pad(torch.from_numpy(a[None]).float(), (0, pw, 0, ph), mode="replicate")  # noqa: E731
    ab = model(t(l[None]), t(hint), t(mask))[0, :, :h, :w].numpy().transpose(1, 2, 0)
    lab = np.concatenate([l[..., None], ab], axis=-1)
    return compose(gray8, lab_to_rgb(lab))


def evaluate(model, folder: Path, points=(0, 10, 100), limit: int | None = None, seed: int = 7,
             spread: bool = False):
    """Mean PSNR and colourfulness at each hint count. `limit` keeps the first
    photos, or with `spread` that many evenly spaced over the sorted folder
    (so every source of a mixed set is represented)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".jpg", ".png", ".jpeg"})
    if limit and spread and limit < len(files):
        files = [files[round(i * len(files) / limit)] for i in range(limit)]
    elif limit:
        files = files[:limit]
    out = {}
    for n in points:
        ps, cs, gs = [], [], []
        for k, f in enumerate(files):
            rgb8 = np.asarray(Image.open(f).convert("RGB"))
            gray8 = np.clip(np.round(C.luma601(rgb8.astype(np.float64))), 0, 255).astype(np.uint8)
            lab = C.rgb_to_lab(rgb8 / 255.0)
            rng = np.random.default_rng([seed, k])
            ys = rng.integers(0, gray8.shape[0], n)
            xs = rng.integers(0, gray8.shape[1], n)
            hints = [(int(y), int(x), float(lab[y, x, 1]), float(lab[y, x, 2])) for y, x in zip(ys, xs)]
            pred = colorize(model, gray8, hints)
            ps.append(psnr(pred, rgb8))
            cs.append(colorfulness(pred))
            gs.append(psnr(np.repeat(gray8[..., None], 3, -1), rgb8))
        out[f"p{n}"] = {"psnr": round(float(np.mean(ps)), 3), "colorfulness": round(float(np.mean(cs)), 2)}
    out["gray_psnr"] = round(float(np.mean(gs)), 3)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("weights", type=Path)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--blend", type=float, nargs="*", default=[0.5])
    ap.add_argument("--temperature", type=float, nargs="*", default=[0.38])
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    state = torch.load(a.weights, map_location="cpu", weights_only=False)
    m = C.Colorizer(C.grid_centres(), pretrained=False)
    m.load_state_dict(state["model"])
    m.eval()
    for t in a.temperature:
        for bl in a.blend:
            m.temperature, m.blend = t, bl
            with torch.no_grad():
                print(f"T={t} blend={bl}", evaluate(m, a.val, limit=a.limit), flush=True)
