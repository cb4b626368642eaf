"""Warm-start a PyTorch colorizer from an exported Tincture ONNX graph.

    python warmstart.py ../tincture-colorizer-v1.onnx runs/v2/init.pt \
        --data ../../../shared/data/images/train --check ../../../shared/data/images/val_diverse

The checkpoint of v1 was not kept; its ONNX graph is. The export folded each
BatchNorm into the convolution before it, so the graph holds one weight and
one bias per conv+BN pair (named `onnx::Conv_*`), while the heads without BN
keep their PyTorch names. This script

1. matches the graph's Conv nodes, in graph order, to the model's Conv2d
   modules in the order the forward pass calls them (shapes are checked);
2. puts the folded weight in the conv, and "unfolds" the BN so that training
   can go on with batch statistics: the BN's running mean and variance are
   measured on training crops (with simulated hints), and its scale and shift
   set so that in eval mode BN(conv(x)) equals the folded conv exactly
   (gamma = sqrt(var + eps), beta = mean + folded bias);
3. checks that the result reproduces the ONNX `ab` output (ONNX Runtime) on a
   few photos with and without hints, and fails if it does not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper
from PIL import Image

import colorizer as C


def conv_call_order(model: nn.Module) -> list[str]:
    """Names of the Conv2d modules in the order one forward pass calls them."""
    order, hooks = [], []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda mod, i, o, n=name: order.append(n)))
    with torch.no_grad():
        model.eval()
        z = torch.zeros(1, 1, 64, 64)
        model(z + 50.0, torch.zeros(1, 2, 64, 64), z)
    for h in hooks:
        h.remove()
    return order


def bn_after(model: nn.Module) -> dict[str, str]:
    """conv name -> name of the BatchNorm2d that directly follows it in its Sequential."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential):
            kids = list(m.named_children())
            for (a, ma), (b, mb) in zip(kids, kids[1:]):
                if isinstance(ma, nn.Conv2d) and isinstance(mb, nn.BatchNorm2d):
                    prefix = f"{name}." if name else ""
                    out[prefix + a] = prefix + b
    return out


def load_folded(model: C.Colorizer, onnx_path: Path):
    g = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    order = conv_call_order(model)
    if len(order) != len(convs):
        raise SystemExit(f"{len(convs)} Conv nodes in the graph, {len(order)} Conv2d calls in the model")
    modules = dict(model.named_modules())
    bns = bn_after(model)
    folded = {}  # conv name -> folded bias (for convs followed by a BN)
    with torch.no_grad():
        for name, node in zip(order, convs):
            conv = modules[name]
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else None
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise SystemExit(f"{name}: graph weight {w.shape}, model {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            if name in bns:
                folded[name] = torch.from_numpy(b.copy())
                bn = modules[bns[name]]
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(folded[name])
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b))
            elif b is not None:
                raise SystemExit(f"{name}: the graph has a bias the model lacks")
        model.bins.copy_(torch.from_numpy(inits["bins"]))
    return folded, bns


def unfold_bn(model: C.Colorizer, folded: dict, bns: dict, batches):
    """Measure each BN input's statistics and set the BN so eval mode is unchanged."""
    modules = dict(model.named_modules())
    sums = {n: [0.0, 0.0, 0] for n in folded}
    hooks = []
    for conv_name in folded:
        def hook(mod, inp, out, n=conv_name):
            x = out.detach().double()
            s = sums[n]
            s[0] = s[0] + x.sum(dim=(0, 2, 3))
            s[1] = s[1] + (x * x).sum(dim=(0, 2, 3))
            s[2] += x.shape[0] * x.shape[2] * x.shape[3]
        hooks.append(modules[conv_name].register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        for l, hint, mask in batches:
            model.features(l, hint, mask)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for conv_name, b in folded.items():
            s0, s1, n = sums[conv_name]
            mean = s0 / n
            var = (s1 / n - mean * mean).clamp_min(1e-6)
            bn = modules[bns[conv_name]]
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((mean + b.double()).float())


def calibration_batches(data: Path, n_batches: int, batch: int, size: int, seed: int):
    import train

    files = train.list_images(data)
    rng = np.random.default_rng([seed, 424242])
    pick = rng.choice(len(files), n_batches * batch, replace=False)
    out = []
    for k in range(n_batches):
        ls, hs, ms = [], [], []
        for i in pick[k * batch:(k + 1) * batch]:
            im = np.asarray(Image.open(files[i]).convert("RGB"))
            rgb = train.augment(rng, im, size)
            lab = C.rgb_to_lab(rgb)
            hint, mask = train.sample_hints(rng, lab[..., 1:], no_hint_share=0.25)
            ls.append(C.gray_l(C.luma601(rgb))[None])
            hs.append(hint.transpose(2, 0, 1))
            ms.append(mask[None])
        t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).float()  # noqa: E731
        out.append((t(ls), t(hs), t(ms)))
    return out


def check(model: C.Colorizer, onnx_path: Path, folder: Path, n: int = 4) -> float:
    """Largest |ab difference| between the model and the ONNX graph, 0 and 50 hints."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png", ".jpeg"})[:n]
    rng = np.random.default_rng(5)
    worst = 0.0
    model.eval()
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB").resize((256, 192)), dtype=np.float64) / 255.0
        lab = C.rgb_to_lab(rgb)
        l = C.gray_l(C.luma601(rgb))[None, None].astype(np.float32)
        for points in (0, 50):
            hint = np.zeros((1, 2, 192, 256), np.float32)
            mask = np.zeros((1, 1, 192, 256), np.float32)
            ys, xs = rng.integers(0, 192, points), rng.integers(0, 256, points)
            hint[0, :, ys, xs] = lab[ys, xs, 1:]
            mask[0, 0, ys, xs] = 1.0
            ref = sess.run(["ab"], {"l": l, "ab_hint": hint, "hint_mask": mask})[0]
            with torch.no_grad():
                got = model(torch.from_numpy(l), torch.from_numpy(hint), torch.from_numpy(mask)).numpy()
            d = float(np.abs(got - ref).max())
            print(f"  {f.name} {points} hints: max |ab diff| {d:.5f} (ab range {np.abs(ref).max():.1f})")
            worst = max(worst, d)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="training photos, for the BN statistics")
    ap.add_argument("--check", type=Path, required=True, help="photos to compare against the graph on")
    ap.add_argument("--temperature", type=float, default=0.38)
    ap.add_argument("--blend", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = C.Colorizer(C.grid_centres(), pretrained=False, temperature=a.temperature, blend=a.blend)
    folded, bns = load_folded(model, a.onnx)
    print(f"loaded {len(folded)} folded conv+BN pairs from {a.onnx}")
    before = check(model, a.onnx, a.check)
    unfold_bn(model, folded, bns, calibration_batches(a.data, 8, 16, 128, a.seed))
    print("BN statistics measured on 128 training crops; checking again")
    after = check(model, a.onnx, a.check)
    if max(before, after) > 0.05:
        print(f"FAILED: the warm-started model differs from {a.onnx} by up to {max(before, after):.4f} ab")
        return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "step": 0,
                "meta": {"warm_start": str(a.onnx.name), "max_ab_diff": max(before, after)}}, a.out)
    print(f"wrote {a.out}: reproduces {a.onnx.name} to {max(before, after):.5f} ab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
