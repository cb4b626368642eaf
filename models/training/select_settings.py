"""Choose the export's annealed-mean temperature and prior blend on a validation set.

    python select_settings.py runs/v2/final.pt --val ../../../shared/data/images/val_diverse \
        --temperature 0.38 0.3 --blend 0.5 0.75 1.0

One forward pass per photo and hint count gives the regression and the class
logits; every (temperature, blend) pair is then composed from them exactly as
the exported graph does (`Colorizer.forward`). Scored like `evaluate.py` (the
network alone, single-pixel hints drawn with a fixed seed), at 0 and 10 points.

Rule, fixed before looking at the figures: the most colourful automatic
(0-point) result among the settings whose 0-point PSNR is within --psnr-slack
dB of the best setting's (colour that costs more PSNR than that is not
taken). Use it on val_diverse only, never on the set you report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import colorizer as C
import evaluate as E


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--temperature", type=float, nargs="+", default=[0.38])
    ap.add_argument("--blend", type=float, nargs="+", default=[0.5])
    ap.add_argument("--points", type=int, nargs="+", default=[0, 10])
    ap.add_argument("--psnr-slack", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    state = torch.load(a.weights, map_location="cpu", weights_only=False)
    m = C.Colorizer(C.grid_centres(), pretrained=False)
    m.load_state_dict(state["model"])
    m.eval()
    files = sorted(p for p in a.val.iterdir() if p.suffix.lower() in {".jpg", ".png", ".jpeg"})
    combos = [(t, b) for t in a.temperature for b in a.blend]
    scores = {(n, t, b): ([], []) for n in a.points for t, b in combos}
    for k, f in enumerate(files):
        rgb8 = np.asarray(Image.open(f).convert("RGB"))
        gray8 = np.clip(np.round(C.luma601(rgb8.astype(np.float64))), 0, 255).astype(np.uint8)
        lab = C.rgb_to_lab(rgb8 / 255.0)
        h, w = gray8.shape
        ph, pw = (-h) % 32, (-w) % 32
        l = C.gray_l(gray8 / 255.0)
        for n in a.points:
            rng = np.random.default_rng([7, k])
            ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
            hint = np.zeros((2, h, w), np.float32)
            mask = np.zeros((1, h, w), np.float32)
            hint[:, ys, xs] = lab[ys, xs, 1:].T
            mask[0, ys, xs] = 1.0
            t_ = lambda x: F.pad(torch.from_numpy(x[None]).float(), (0, pw, 0, ph), mode="replicate")  # noqa: E731
            with torch.no_grad():
                mk = t_(mask)
                reg, logits = m.features(t_(l[None]), t_(hint), mk)
                near = F.max_pool2d(mk, 9, stride=1, padding=4)
                for t, b in combos:
                    m.temperature = t
                    prior = F.interpolate(m.annealed_mean(logits), size=reg.shape[-2:], mode="bilinear",
                                          align_corners=False)
                    wgt = b * (1.0 - near)
                    ab = (reg * (1.0 - wgt) + prior * wgt)[0, :, :h, :w].numpy().transpose(1, 2, 0)
                    pred = E.compose(gray8, E.lab_to_rgb(np.concatenate([l[..., None], ab], -1)))
                    scores[(n, t, b)][0].append(E.psnr(pred, rgb8))
                    scores[(n, t, b)][1].append(E.colorfulness(pred))
        if k % 50 == 0:
            print(f"[{k}/{len(files)}]", flush=True)
    table = []
    for t, b in combos:
        row = {"temperature": t, "blend": b}
        for n in a.points:
            ps, cs = scores[(n, t, b)]
            row[f"p{n}"] = {"psnr": round(float(np.mean(ps)), 3), "colorfulness": round(float(np.mean(cs)), 2)}
        table.append(row)
        print(json.dumps(row), flush=True)
    p0 = [r for r in table if "p0" in r]
    top = max(r["p0"]["psnr"] for r in p0)
    best = max((r for r in p0 if r["p0"]["psnr"] >= top - a.psnr_slack), key=lambda r: r["p0"]["colorfulness"])
    print("chosen:", json.dumps(best))
    if a.json:
        a.json.write_text(json.dumps({"set": str(a.val), "table": table, "chosen": best}, indent=1))


if __name__ == "__main__":
    main()
