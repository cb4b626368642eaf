"""Train Tincture's built-in colorizer.

    python train.py --data ../../../shared/data/images/train --run runs/v2 \
        --val ../../../shared/data/images/val --val-diverse ../../../shared/data/images/val_diverse \
        --init runs/v2/init.pt

(`warmstart.py` makes init.pt from the shipped v1 ONNX graph.)

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


def sample_hints(rng, ab: np.ndarray, no_hint_share: float = 0.25, geometric_p: float = 1 / 8,
                 max_patch: int = 9, dense_share: float = 0.0, max_points: int = 256):
    """Simulated user hints carrying the true colour, as Zhang et al. 2017 drew them.

    A share of samples gets no hint at all (automatic colorization). The
    others get a geometric number of points (success probability
    `geometric_p`, so 1/p on average); with probability `dense_share` a
    log-uniform count of 16 to `max_points` instead, so that dense hints are
    seen too. Each point is a square patch of 1 to `max_patch` px that carries
    the patch's mean true a*b*.
    """
    h, w = ab.shape[:2]
    hint = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), np.float32)
    if rng.random() < no_hint_share:
        return hint, mask
    if rng.random() < dense_share:
        n = int(math.exp(rng.uniform(math.log(16), math.log(max_points + 1))))
    else:
        n = int(rng.geometric(geometric_p))
    for _ in range(n):
        p = int(rng.integers(1, max_patch + 1))
        y = int(rng.integers(0, h - p + 1))
        x = int(rng.integers(0, w - p + 1))
        hint[y:y + p, x:x + p] = ab[y:y + p, x:x + p].reshape(-1, 2).mean(0)
        mask[y:y + p, x:x + p] = 1.0
    return hint, mask


def source_weights(files: list[Path], manifest: Path | None, power: float) -> np.ndarray | None:
    """Sampling probability of each photo: its source's count to the power -`power`.

    The train folder is dominated by a few sources (1,500 road photos of
    9,067); power 0.5 draws each source in proportion to the square root of
    its size. None (uniform) when there is no manifest or power is 0."""
    if manifest is None or not manifest.exists() or power == 0:
        return None
    source = {}
    for line in manifest.read_text().splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 2:
            source[cols[0]] = cols[1]
    keys = [source.get(p.name, "?") for p in files]
    count = {k: keys.count(k) for k in set(keys)}
    w = np.array([count[k] ** -power for k in keys], dtype=np.float64)
    return w / w.sum()


def augment(rng, im: np.ndarray, size: int) -> np.ndarray:
    """Random scale crop, flip, and exposure/contrast/gamma changes (0..1 RGB)."""
    h, w = im.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        im = np.asarray(Image.fromarray(im).resize((max(size, round(w * s)), max(size, round(h * s))),
                                                   Image.BILINEAR))
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


def make_batch(images, step: int, args, probs=None):
    rng = np.random.default_rng([args.seed, step])
    idx = rng.choice(len(images), args.batch, p=probs)
    ls, hints, masks, abs_ = [], [], [], []
    for i in idx:
        rgb = augment(rng, images[i], args.size)
        lab = C.rgb_to_lab(rgb)
        l_in = C.gray_l(C.luma601(rgb))
        hint, mask = sample_hints(rng, lab[..., 1:], args.no_hint_share, args.geometric_p,
                                  args.max_patch, args.dense_share, args.max_points)
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


def save(path: Path, model, opt, step: int, meta: dict, curves: list | None = None):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "meta": meta,
                "curves": curves or []}, tmp)
    os.replace(tmp, path)


FROZEN_PREFIXES = ("enc1", "enc2", "enc3", "enc4", "enc5")


def freeze_lower(model, levels: int):
    """Freeze the first `levels` encoder stages (weights and BN statistics).

    No gradient flows into them, so autograd skips their backward pass."""
    for name in FROZEN_PREFIXES[:levels]:
        mod = getattr(model, name)
        mod.eval()
        for q in mod.parameters():
            q.requires_grad_(False)


def quick_val(model, sets: dict, limit: int) -> dict:
    import evaluate

    model.eval()
    with torch.no_grad():
        r = {name: evaluate.evaluate(model, folder, points=(0, 10, 100), limit=limit, spread=True)
             for name, folder in sets.items()}
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--val", type=Path, default=None)
    ap.add_argument("--val-diverse", type=Path, default=None)
    ap.add_argument("--val-limit", type=int, default=48,
                    help="photos of each validation set in the quick check (evenly spaced, fixed)")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="train_manifest.tsv (default: beside --data), for per-source sampling")
    ap.add_argument("--source-power", type=float, default=0.5,
                    help="draw photos with weight (photos of their source)^-power; 0 = uniform")
    ap.add_argument("--run", type=Path, default=HERE / "runs" / "v2")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-hint-share", type=float, default=0.25)
    ap.add_argument("--geometric-p", type=float, default=1 / 8)
    ap.add_argument("--max-patch", type=int, default=9)
    ap.add_argument("--dense-share", type=float, default=0.15)
    ap.add_argument("--max-points", type=int, default=256)
    ap.add_argument("--freeze", type=int, default=0,
                    help="freeze the first N encoder stages (enc1..encN)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop at this step and write final.pt, while the learning-rate schedule "
                         "still follows --steps (to reproduce a run that was stopped early)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop cleanly (checkpoint) after this many minutes of this process; 0 = no limit")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from these weights (warmstart.py's init.pt, or a final.pt) instead of ImageNet")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="folder holding cache.npz, ab_counts.npy and data.json (default: --run)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    log = open(args.run / "train-log.txt", "a")

    def say(msg: str):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    files = list_images(args.data)
    cache_dir = args.cache_dir or args.run
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_info_path = cache_dir / "data.json"
    if data_info_path.exists():
        data_info = json.loads(data_info_path.read_text())
    else:
        data_info = {"folder": args.data.name, "images": len(files), "sha256": dataset_digest(files)}
        data_info_path.write_text(json.dumps(data_info, indent=2))
    images = load_cache(files, 2 * args.size, cache_dir / "cache.npz")
    manifest = args.manifest or args.data.parent / f"{args.data.name}_manifest.tsv"
    probs = source_weights(files, manifest, args.source_power)
    hist_path = cache_dir / "ab_counts.npy"
    if hist_path.exists():
        counts = np.load(hist_path)
    else:
        counts = ab_histogram(images, args.seed)
        np.save(hist_path, counts)
    weights = torch.from_numpy(C.rebalance_weights(counts)).float()

    model = C.Colorizer(C.grid_centres(), pretrained=args.init is None)
    ckpt = args.run / "checkpoint.pt"
    step = 0
    state = torch.load(ckpt, map_location="cpu", weights_only=False) if ckpt.exists() else None
    init_meta = {}
    if state is None and args.init:
        init_state = torch.load(args.init, map_location="cpu", weights_only=False)
        model.load_state_dict(init_state["model"])
        init_meta = init_state.get("meta", {})
    if state is not None:
        model.load_state_dict(state["model"])
    freeze_lower(model, args.freeze)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=args.lr, weight_decay=1e-4)
    curves = []
    if state is not None:
        opt.load_state_dict(state["opt"])
        step = state["step"]
        curves = state.get("curves", [])
        say(f"resumed at step {step}")
    else:
        say(f"start: {vars(args)} data={data_info} "
            f"sampling={'per source, power %g' % args.source_power if probs is not None else 'uniform'}")

    meta = {"args": {k: str(v) for k, v in vars(args).items()}, "data": data_info}
    if state is not None and state.get("meta", {}).get("warm_start"):
        meta["warm_start"] = state["meta"]["warm_start"]
    elif init_meta.get("warm_start"):
        meta["warm_start"] = {"from": init_meta["warm_start"], "max_ab_diff": init_meta.get("max_ab_diff"),
                              "how": "warmstart.py: folded conv+BN weights of the graph, BN unfolded"}
    val_sets = {k: v for k, v in (("val", args.val), ("val_diverse", args.val_diverse)) if v}

    def checkpoint():
        meta["samples_seen"] = step * args.batch
        save(ckpt, model, opt, step, meta, curves)

    def validate():
        r = quick_val(model, val_sets, args.val_limit)
        curves.append({"step": step, "samples": step * args.batch, **r})
        say(f"val step {step} {json.dumps(r)}")
        (args.run / "curves.json").write_text(json.dumps(curves, indent=1))

    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    if val_sets and step == 0 and not curves:
        validate()
    model.train()
    freeze_lower(model, args.freeze)
    t_start = time.time()
    t0, seen, acc = time.time(), 0, np.zeros(2)
    last = min(args.steps, args.stop_at) if args.stop_at else args.steps
    while step < last and not stop["now"]:
        if args.max_minutes and time.time() - t_start > 60 * args.max_minutes:
            say(f"--max-minutes {args.max_minutes} reached")
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        torch.manual_seed(args.seed + step)
        batch = make_batch(images, step, args, probs)
        reg_loss, cls_loss = losses(model, batch, weights)
        loss = reg_loss + cls_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += args.batch
        acc += [reg_loss.item(), cls_loss.item()]
        if step % args.log_every == 0:
            dt = time.time() - t0
            k = args.log_every
            say(f"step {step} samples {step * args.batch} reg {acc[0] / k:.4f} cls {acc[1] / k:.4f} "
                f"lr {lr_at(step, args):.2e} {seen / dt:.2f} img/s")
            acc[:] = 0
            t0, seen = time.time(), 0
        if step % args.checkpoint_every == 0:
            checkpoint()
        if val_sets and step % args.val_every == 0:
            validate()
            model.train()
            freeze_lower(model, args.freeze)
            t0, seen = time.time(), 0
    checkpoint()
    say(f"stopped at step {step}, {step * args.batch} samples seen{' (interrupted)' if stop['now'] else ''}")
    if step >= last:
        torch.save({"model": model.state_dict(), "meta": meta, "step": step, "curves": curves},
                   args.run / "final.pt")
        say("final weights written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
