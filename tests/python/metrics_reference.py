#!/usr/bin/env python3
"""Independent reference implementation of Tincture's video metrics.

Usage: python metrics_reference.py DUMP_DIR [--jobs N] [--reference-every K]

Reads a dump written by the Rust cross-check test and prints one JSON object
on stdout with per-frame and per-clip metrics.  Written from the published
definitions (see README.md beside this file), with numpy and scikit-image
only; all arithmetic is float64.

DUMP_DIR holds:
  meta.json      {"width": W, "height": H, "frames": N, "reference": bool}
  frames.rgb     N frames of raw 8-bit RGB, row-major, W*H*3 bytes each
  reference.rgb  the ground-truth clip in the same layout (when "reference")
  flow_fw.f32    N-1 pairs of little-endian float32 planes u then v
                 (W*H each); pair i is the flow from frame i to frame i+1
  flow_bw.f32    the same for the flow from frame i+1 back to frame i
"""

import argparse
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

CDC_DILATIONS = (1, 2, 4)
PSNR_CAP = 100.0


# --------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------

class Dump:
    """Memory-mapped view of a dump directory (cheap to reopen in workers)."""

    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        self.w = int(meta["width"])
        self.h = int(meta["height"])
        self.n = int(meta["frames"])
        self.has_reference = bool(meta.get("reference", False))
        if self.w <= 0 or self.h <= 0 or self.n < 0:
            raise ValueError(f"bad meta.json: {meta}")

        self.frames = self._map("frames.rgb", np.uint8, (self.n, self.h, self.w, 3))
        self.reference = (
            self._map("reference.rgb", np.uint8, (self.n, self.h, self.w, 3))
            if self.has_reference
            else None
        )
        if self.n >= 2:
            shape = (self.n - 1, 2, self.h, self.w)
            self.flow_fw = self._map("flow_fw.f32", np.dtype("<f4"), shape)
            self.flow_bw = self._map("flow_bw.f32", np.dtype("<f4"), shape)
        else:
            self.flow_fw = self.flow_bw = None

    def _map(self, name, dtype, shape):
        path = os.path.join(self.root, name)
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        actual = os.path.getsize(path)
        if actual != expected:
            raise ValueError(f"{path}: {actual} bytes, expected {expected} for shape {shape}")
        if expected == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)


# --------------------------------------------------------------------------
# Warp error (Lai et al. 2018, occlusion check of Sundaram et al. 2010)
# --------------------------------------------------------------------------

_GRIDS = {}


def _pixel_grid(h, w):
    """Flat float64 x and y coordinates of every pixel centre, row-major."""
    if (h, w) not in _GRIDS:
        py, px = np.divmod(np.arange(h * w, dtype=np.intp), w)
        _GRIDS[(h, w)] = (px.astype(np.float64), py.astype(np.float64))
    return _GRIDS[(h, w)]


def _bilinear_taps(qx, qy, w, h):
    """Flat indices and weights of the four bilinear taps at (qx, qy).

    x0 = floor(qx) clamped to [0, W-2] (0 when W == 1), fx = qx - x0, and the
    same for y, so q on the last column/row gets fx = 1 / fy = 1.  Every
    point must lie inside [0, W-1] x [0, H-1].
    """
    x0 = np.clip(np.floor(qx), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(qy), 0, max(h - 2, 0))
    fx = qx - x0
    fy = qy - y0
    x0i = x0.astype(np.intp)
    y0i = y0.astype(np.intp)
    # With W == 1 (or H == 1) the far tap has weight fx == 0 (fy == 0);
    # point it at the same pixel so it stays in range.
    x1i = x0i + 1 if w > 1 else x0i
    row0 = y0i * w
    row1 = row0 + w if h > 1 else row0
    idx = (row0 + x0i, row0 + x1i, row1 + x0i, row1 + x1i)
    gx = 1 - fx
    gy = 1 - fy
    wts = (gx * gy, fx * gy, gx * fy, fx * fy)
    return idx, wts


def _sample(plane, idx, wts):
    """Bilinear sample of a flat (H*W,) float64 plane at precomputed taps."""
    return (
        wts[0] * plane[idx[0]]
        + wts[1] * plane[idx[1]]
        + wts[2] * plane[idx[2]]
        + wts[3] * plane[idx[3]]
    )


def warp_error_pair(frame_t, frame_t1, fw, bw):
    """Warp error between frame t and frame t+1; None when no pixel is valid.

    frame_t, frame_t1: (H, W, 3) uint8; fw, bw: (2, H, W) float32 flows
    t -> t+1 and t+1 -> t.
    """
    h, w = frame_t.shape[:2]
    px, py = _pixel_grid(h, w)
    fu = fw[0].ravel().astype(np.float64)
    fv = fw[1].ravel().astype(np.float64)
    qx = px + fu
    qy = py + fv

    # Target inside the image (NaN flows compare False and are dropped).
    # Outside targets are parked on pixel (0, 0) so every tap stays in range;
    # they are masked out below.
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    if not inside.any():
        return None
    qx = np.where(inside, qx, 0.0)
    qy = np.where(inside, qy, 0.0)
    idx, wts = _bilinear_taps(qx, qy, w, h)

    # Forward-backward consistency, with bw sampled at the target.
    bu = _sample(bw[0].ravel().astype(np.float64), idx, wts)
    bv = _sample(bw[1].ravel().astype(np.float64), idx, wts)
    lhs = (fu + bu) ** 2 + (fv + bv) ** 2
    rhs = 0.01 * (fu * fu + fv * fv + bu * bu + bv * bv) + 0.5
    valid = inside & (lhs < rhs)
    count = int(np.count_nonzero(valid))
    if count == 0:
        return None

    cur = frame_t.reshape(-1, 3)
    nxt = frame_t1.reshape(-1, 3)
    err = np.zeros(h * w)
    for c in range(3):
        warped = _sample(nxt[:, c].astype(np.float64) / 255.0, idx, wts)
        diff = cur[:, c].astype(np.float64) / 255.0 - warped
        err += diff * diff
    err /= 3.0  # mean over the three channels
    return float(np.sum(err[valid]) / count)


# --------------------------------------------------------------------------
# Colour distribution consistency (Liu et al., TCVC)
# --------------------------------------------------------------------------

def channel_histograms(frame):
    """(3, 256) float64: per-channel histogram normalised by the pixel count."""
    px = frame.reshape(-1, 3)
    count = px.shape[0]
    return np.stack(
        [np.bincount(px[:, c], minlength=256).astype(np.float64) / count for c in range(3)]
    )


def _kl_to(p, m):
    """KL(P || M) along the last axis, zero-probability terms contributing 0."""
    pos = p > 0
    terms = np.zeros_like(p)
    np.divide(p, m, out=terms, where=pos)
    np.log(terms, out=terms, where=pos)
    terms *= p
    return terms.sum(axis=-1)


def jsd(p, q):
    """Jensen-Shannon divergence (natural log) along the last axis."""
    m = (p + q) / 2
    return 0.5 * _kl_to(p, m) + 0.5 * _kl_to(q, m)


def cdc(hists):
    """Per-frame and clip CDC from the (N, 3, 256) histograms."""
    n = hists.shape[0]
    # jsd_d[d] is (N-d, 3): JSD(h[i], h[i+d]) per channel.
    jsd_d = {d: jsd(hists[:-d], hists[d:]) for d in CDC_DILATIONS if n - d >= 1}

    per_frame = [None] * n
    for i in range(1, n):
        terms = [jsd_d[d][i - d] for d in CDC_DILATIONS if d <= i]  # each (3,)
        per_frame[i] = float(np.mean(np.concatenate(terms)))

    if n < 2:
        return per_frame, None
    channel = np.mean(np.stack([jsd_d[d].mean(axis=0) for d in sorted(jsd_d)]), axis=0)
    return per_frame, float(channel.mean())


# --------------------------------------------------------------------------
# Per-frame colour statistics and reference metrics
# --------------------------------------------------------------------------

def colorfulness(frame):
    """Hasler & Suesstrunk (2003) M3 on 8-bit RGB values."""
    rgb = frame.reshape(-1, 3).astype(np.float64)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.sqrt(np.var(rg) + np.var(yb))
    mu = math.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)
    return sigma + 0.3 * mu


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def frame_metrics(dump, i, reference_every=1):
    """Every per-frame metric of frame i that needs no other frame.

    The reference metrics (PSNR, SSIM, CIEDE2000) are computed only when i is
    a multiple of reference_every, and are None otherwise.
    """
    frame = np.asarray(dump.frames[i])
    out = {"hist": channel_histograms(frame)}

    lab = rgb2lab(frame.astype(np.float64) / 255.0)
    a, b = lab[..., 1], lab[..., 2]
    out["colorfulness"] = colorfulness(frame)
    out["mean_a"] = float(np.mean(a))
    out["mean_b"] = float(np.mean(b))
    out["mean_chroma"] = float(np.mean(np.sqrt(a * a + b * b)))

    if dump.reference is not None and i % reference_every != 0:
        out["psnr"] = out["ssim"] = out["ciede2000"] = None
    elif dump.reference is not None:
        ref = np.asarray(dump.reference[i])
        f64 = frame.astype(np.float64)
        r64 = ref.astype(np.float64)
        with np.errstate(divide="ignore"):
            psnr = peak_signal_noise_ratio(r64, f64, data_range=255)
        out["psnr"] = float(min(psnr, PSNR_CAP))  # inf (identical) -> cap
        out["ssim"] = float(
            structural_similarity(
                f64,
                r64,
                channel_axis=-1,
                data_range=255,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        )
        ref_lab = rgb2lab(r64 / 255.0)
        out["ciede2000"] = float(deltaE_ciede2000(lab, ref_lab).mean())
    return out


def _chunk_worker(root, start, stop, reference_every):
    """Metrics for frames [start, stop) and warp errors of the pairs ending there."""
    dump = Dump(root)
    frames = []
    warps = []
    for i in range(start, stop):
        frames.append(frame_metrics(dump, i, reference_every))
        if i >= 1:
            t = i - 1
            warps.append(
                warp_error_pair(
                    np.asarray(dump.frames[t]),
                    np.asarray(dump.frames[t + 1]),
                    np.asarray(dump.flow_fw[t]),
                    np.asarray(dump.flow_bw[t]),
                )
            )
        else:
            warps.append(None)
    return frames, warps


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def compute(root, jobs, reference_every=1):
    dump = Dump(root)
    n = dump.n
    jobs = max(1, min(jobs, n))
    if n == 0:
        chunks = []
    else:
        bounds = np.linspace(0, n, num=min(n, jobs * 4) + 1).round().astype(int)
        chunks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    frames, warps = [], []
    if jobs == 1 or len(chunks) <= 1:
        results = [_chunk_worker(root, a, b, reference_every) for a, b in chunks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_chunk_worker, root, a, b, reference_every) for a, b in chunks]
            results = [f.result() for f in futures]
    for fr, wa in results:
        frames.extend(fr)
        warps.extend(wa)

    per_frame = {"warp_error": warps}
    hists = (
        np.stack([f["hist"] for f in frames]) if frames else np.zeros((0, 3, 256))
    )
    per_frame["cdc"], clip_cdc = cdc(hists)
    keys = ["colorfulness", "mean_a", "mean_b", "mean_chroma"]
    if dump.has_reference:
        keys += ["psnr", "ssim", "ciede2000"]
    for k in keys:
        per_frame[k] = [f[k] for f in frames]

    valid_warps = [w for w in warps if w is not None]
    clip_warp = float(np.mean(valid_warps)) if valid_warps else None

    # JSON has no NaN/inf: anything non-finite is reported as null.
    for k, vals in per_frame.items():
        per_frame[k] = [None if v is None else _finite_or_none(v) for v in vals]
    clip = {
        "warp_error": None if clip_warp is None else _finite_or_none(clip_warp),
        "cdc": None if clip_cdc is None else _finite_or_none(clip_cdc),
    }
    return {"per_frame": per_frame, "clip": clip}


def _keep_freed_memory():
    """Ask glibc malloc to keep freed memory instead of returning it to the OS.

    Every metric allocates a few dozen frame-sized float64 temporaries (3-10
    MB each).  By default glibc serves those with fresh mmap()s or trims them
    back, so each one page-faults in again: that doubled the run time in
    kernel work.  Purely a speed setting; results do not change.  No-op where
    glibc is not available.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum
        libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
        libc.mallopt(m_top_pad, 64 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


def _default_jobs():
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump_dir", help="directory written by the Rust cross-check test")
    ap.add_argument(
        "--jobs",
        type=int,
        default=_default_jobs(),
        help="worker processes (default: CPUs, at most 8); results do not depend on it",
    )
    ap.add_argument(
        "--reference-every",
        type=int,
        default=1,
        metavar="K",
        help="compute psnr/ssim/ciede2000 only on frames whose index is a multiple of K "
        "(null elsewhere); default 1, every frame. They dominate the run time.",
    )
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.reference_every < 1:
        ap.error("--jobs and --reference-every must be at least 1")
    _keep_freed_memory()
    result = compute(args.dump_dir, args.jobs, args.reference_every)
    json.dump(result, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
