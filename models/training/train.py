"""Train Tincture's built-in colorizer.

    python train.py --data ../../../shared/data/images/train --run runs/v1

Reproducible: every random draw of step k comes from a generator seeded with
(seed, k), so a run resumed from its checkpoint draws exactly what an
uninterrupted run would. Checkpoints are written every --checkpoint-every
steps and on Ctrl-C; starting the same command again resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import colorizer as C

HERE = Path(__file__).resolve().parent
EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTS)


def dataset_digest(files: list[Path]) -> str:
    """sha256 over the sorted (name, sha256 of content) pairs."""
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def load_cache(files: list[Path], short: int, cache: Path) -> list[np.ndarray]:
    """Decode every image once, resized so its short side is `short` pixels."""
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        flat, shapes = z["flat"], z["shapes"]
        out, o = [], 0
        for h, w in shapes:
            out.append(flat[o:o + h * w * 3].reshape(h, w, 3))
            o += h * w * 3
        return out
    images = []
    for i, p in enumerate(files):
        im = Image.open(p).convert("RGB")
        s = short / min(im.size)
        if s < 1.0:
            im = im.resize((max(short, round(im.width * s)), max(short, round(im.height * s))),
                           Image.BILINEAR, reducing_gap=3.0)
        images.append(np.asarray(im, dtype=np.uint8))
        if i % 500 == 0:
            print(f"[cache] {i}/{len(files)}", flush=True)
    flat = np.concatenate([im.ravel() for im in images])
    shapes = np.array([im.shape[:2] for im in images], dtype=np.int64)
    np.savez(cache, flat=flat, shapes=shapes)
    return images


def ab_histogram(images: list[np.ndarray], seed: int) -> np.ndarray:
    """Counts of quantised ab over a fixed subsample of every training image."""
    rng = np.random.default_rng([seed, 999_999])
    counts = np.zeros(C.GRID_N * C.GRID_N, dtype=np.float64)
    for im in images:
        ys = rng.integers(0, im.shape[0], 512)
        xs = rng.integers(0, im.shape[1], 512)
        lab = C.rgb_to_lab(im[ys, xs].astype(np.float64) / 255.0)
        idx = np.clip(np.round((lab[:, 1:] + C.AB_RANGE) / C.GRID_STEP), 0, C.GRID_N - 1).astype(int)
        np.add.at(counts, idx[:, 0] * C.GRID_N + idx[:, 1], 1)
    return counts


def sample_hints(rng, ab: np.ndarray, no_hint_share: float, max_points: int):
    """Random point hints carrying the true colour: 1..3 px patches, their mean ab."""
    h, w = ab.shape[:2]
    hint = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), np.float32)
    if rng.random() < no_hint_share:
        return hint, mask
    n = int(math.exp(rng.uniform(0.0, math.log(max_points + 1))))
    for _ in range(n):
        p = int(rng.integers(1, 4))
        y = int(rng.integers(0, h - p + 1))
        x = int(rng.integers(0, w - p + 1))
        hint[y:y + p, x:x + p] = ab[y:y + p, x:x + p].reshape(-1, 2).mean(0)
        mask[y:y + p, x:x + p] = 1.0
    return hint, mask


def augment(rng, im: np.ndarray, size: int) -> np.ndarray:
    """Random scale crop, flip, and exposure/contrast/gamma changes (0..1 RGB)."""
    h, w = im.shape[:2]
    c = int(rng.integers(size, min(h, w, 2 * size) + 1))
    y = int(rng.integers(0, h - c + 1))
    x = int(rng.integers(0, w - c + 1))
    crop = Image.fromarray(im[y:y + c, x:x + c])
    if c != size:
        crop = crop.resize((size, size), Image.BILINEAR)
    rgb = np.asarray(crop, dtype=np.float64) / 255.0
    if rng.random() < 0.5:
        rgb = rgb[:, ::-1]
    if rng.random() < 0.5:
        gamma = math.exp(rng.uniform(-0.4, 0.4))
        gain = math.exp(rng.uniform(-0.35, 0.35))
        contrast = math.exp(rng.uniform(-0.35, 0.35))
        rgb = np.clip((rgb ** gamma) * gain, 0.0, 1.0)
        rgb = np.clip((rgb - 0.5) * contrast + 0.5, 0.0, 1.0)
    return rgb


def make_batch(images, step: int, args):
    rng = np.random.default_rng([args.seed, step])
    idx = rng.integers(0, len(images), args.batch)
    ls, hints, masks, abs_ = [], [], [], []
    for i in idx:
        rgb = augment(rng, images[i], args.size)
        lab = C.rgb_to_lab(rgb)
        l_in = C.gray_l(C.luma601(rgb))
        hint, mask = sample_hints(rng, lab[..., 1:], args.no_hint_share, args.max_points)
        ls.append(l_in[None])
        hints.append(hint.transpose(2, 0, 1))
        masks.append(mask[None])
        abs_.append(lab[..., 1:].transpose(2, 0, 1))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).float()  # noqa: E731
    return t(ls), t(hints), t(masks), t(abs_)


def losses(model, batch, weights):
    l, hint, mask, ab = batch
    reg, logits = model.features(l, hint, mask)
    reg_loss = F.smooth_l1_loss(reg / 10.0, ab / 10.0, beta=1.0)
    ab4 = F.avg_pool2d(ab, 4)
    target = C.quantise(ab4)
    ce = F.cross_entropy(logits, target, reduction="none")
    cls_loss = (ce * weights[target]).mean()
    return reg_loss, cls_loss


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def save(path: Path, model, opt, step: int, meta: dict):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "meta": meta}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--val", type=Path, default=None)
    ap.add_argument("--run", type=Path, default=HERE / "runs" / "v1")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-hint-share", type=float, default=0.4)
    ap.add_argument("--max-points", type=int, default=150)
    ap.add_argument("--checkpoint-every", type=int, default=200)
    ap.add_argument("--val-every", type=int, default=1000)
    ap.add_argument("--init", type=Path, default=None,
                    help="start from the weights of an earlier stage (final.pt) instead of ImageNet")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="folder holding cache.npz, ab_counts.npy and data.json (default: --run)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    log = open(args.run / "train.log", "a")

    def say(msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    files = list_images(args.data)
    cache_dir = args.cache_dir or args.run
    data_info_path = cache_dir / "data.json"
    if data_info_path.exists():
        data_info = json.loads(data_info_path.read_text())
    else:
        data_info = {"folder": args.data.name, "images": len(files), "sha256": dataset_digest(files)}
        data_info_path.write_text(json.dumps(data_info, indent=2))
    images = load_cache(files, 2 * args.size, cache_dir / "cache.npz")
    hist_path = cache_dir / "ab_counts.npy"
    if hist_path.exists():
        counts = np.load(hist_path)
    else:
        counts = ab_histogram(images, args.seed)
        np.save(hist_path, counts)
    weights = torch.from_numpy(C.rebalance_weights(counts)).float()

    model = C.Colorizer(C.grid_centres())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ckpt = args.run / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        say(f"resumed at step {step}")
    else:
        if args.init:
            model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=False)["model"])
        say(f"start: {vars(args)} data={data_info}")

    meta = {"args": {k: str(v) for k, v in vars(args).items()}, "data": data_info}
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    model.train()
    t0, seen, acc = time.time(), 0, np.zeros(2)
    while step < args.steps and not stop["now"]:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        torch.manual_seed(args.seed + step)
        batch = make_batch(images, step, args)
        reg_loss, cls_loss = losses(model, batch, weights)
        loss = reg_loss + cls_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += args.batch
        acc += [reg_loss.item(), cls_loss.item()]
        if step % 50 == 0:
            dt = time.time() - t0
            say(f"step {step} reg {acc[0] / 50:.4f} cls {acc[1] / 50:.4f} "
                f"lr {lr_at(step, args):.2e} {seen / dt:.1f} img/s")
            acc[:] = 0
        if step % args.checkpoint_every == 0:
            save(ckpt, model, opt, step, meta)
        if args.val and step % args.val_every == 0:
            import evaluate
            model.eval()
            with torch.no_grad():
                r = evaluate.evaluate(model, args.val, points=(0, 10, 100), limit=32)
            model.train()
            say(f"val step {step} {json.dumps(r)}")
    save(ckpt, model, opt, step, meta)
    say(f"stopped at step {step}{' (interrupted)' if stop['now'] else ''}")
    if step >= args.steps:
        torch.save({"model": model.state_dict(), "meta": meta, "step": step}, args.run / "final.pt")
        say("final weights written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
