"""Adds intermediate activations of the colorizer as extra ONNX outputs, for matching.

    python feature_outputs.py [OUT.onnx] [--model MODEL.onnx] [--layers e3,e4] [--check N]

Issue 23, step 1: per-frame features that say "this is the same stuff", to
match a frame against a memory of coloured frames. The colorizer already
computes such features on its way to the colour; this script exposes some
of them as graph outputs, the way `class_outputs.py` added the class
distribution: it appends one `Identity` node per feature and a graph output
for it, and touches no other node or weight, so `ab` (and the other
existing outputs) are unchanged. It then checks that with ONNX Runtime:
on `--check` random inputs (two sizes, with and without hints) the original
outputs of the new graph are bit-identical to the unmodified graph's.

Candidates (name: tensor, scale of the input, channels):

    e2  encoder stage 2 output (MobileNetV2 block 3, U-Net skip)   1/4   24
    e3  encoder stage 3 output (block 6, U-Net skip)               1/8   32
    e4a encoder block 10 (middle of stage 4)                       1/16  64
    e4  encoder stage 4 output (block 13, U-Net skip)              1/16  96
    e5  encoder stage 5 output (block 17, bottleneck)              1/32  320
    d4  decoder level 1/16 (up4 output, after both convs)          1/16  128
    d3  decoder level 1/8  (up3 output)                            1/8   96
    d2  decoder level 1/4  (up2 output, feeds the class head)      1/4   64

Each output is named `feat_<name>` (for example `feat_e4`) and has shape
N x C x H/s x W/s. The encoder's first convolution also sees the hint
channels, so the features change a little with hints; for matching, run the
graph without hints (ab_hint and hint_mask all zero).

Default: MODEL is ../tincture-colorizer-v1.onnx (beside this folder), OUT is
/tmp/<model>-features.onnx, all candidates; the manifest is not touched.

`--ship` adds the features the workstation matches on (`SHIPPED`: e3 and
e4, chosen in FEATURES.md) to MODEL in place, after the same check, and
records them and the new sha256 in its manifest. export.py adds them to
every graph it exports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).resolve().parent

# name -> (tensor in the exported graph, scale denominator, channels)
CANDIDATES: dict[str, tuple[str, int, int]] = {
    "e2": ("/enc2/enc2.3/Add_output_0", 4, 24),
    "e3": ("/enc3/enc3.6/Add_output_0", 8, 32),
    "e4a": ("/enc4/enc4.10/Add_output_0", 16, 64),
    "e4": ("/enc4/enc4.13/Add_output_0", 16, 96),
    "e5": ("/enc5/enc5.17/conv/conv.2/Conv_output_0", 32, 320),
    "d4": ("/up4/block/block.1/block.1.2/Relu_output_0", 16, 128),
    "d3": ("/up3/block/block.1/block.1.2/Relu_output_0", 8, 96),
    "d2": ("/up2/block/block.1/block.1.2/Relu_output_0", 4, 64),
}


def output_name(layer: str) -> str:
    return f"feat_{layer}"


def add_feature_outputs(model: onnx.ModelProto, layers: list[str]) -> onnx.ModelProto:
    g = model.graph
    produced = {o for n in g.node for o in n.output}
    existing = {o.name for o in g.output}
    for layer in layers:
        if layer not in CANDIDATES:
            raise SystemExit(f"unknown layer {layer!r}; candidates: {', '.join(CANDIDATES)}")
        tensor, scale, channels = CANDIDATES[layer]
        if tensor not in produced:
            raise SystemExit(f"{layer}: the graph has no tensor {tensor!r}: is this Tincture's colorizer graph?")
        name = output_name(layer)
        if name in existing:
            continue
        g.node.append(helper.make_node("Identity", [tensor], [name], name=f"{name}_identity"))
        g.output.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, ["n", channels, f"h{scale}", f"w{scale}"]))
    onnx.checker.check_model(model)
    return model


# The features the workstation matches frames on (see FEATURES.md): shipped
# in the built-in graphs by `--ship` and by export.py.
SHIPPED = ["e3", "e4"]


def update_manifest(onnx_path: Path, layers: list[str]) -> None:
    """Records the feature outputs and the new file's sha256 in the manifest beside `onnx_path`."""
    manifest_path = onnx_path.with_suffix(".json")
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    names = {output_name(layer) for layer in layers}
    outputs = [o for o in manifest.get("outputs", []) if o.get("name") not in names]
    for layer in layers:
        _, scale, channels = CANDIDATES[layer]
        outputs.append({"name": output_name(layer), "shape": [None, channels, None, None],
                        "normalisation": f"encoder activations at 1/{scale} of the input (features to match "
                                         "frames on; run without hints)"})
    manifest["outputs"] = outputs
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)


def session(path_or_bytes):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    o.inter_op_num_threads = 1
    return ort.InferenceSession(path_or_bytes, o, providers=["CPUExecutionProvider"])


def check(original: Path, modified: Path, layers: list[str], runs: int) -> None:
    """The original outputs must be bit-identical; the features must have the stated shapes."""
    a = session(str(original))
    b = session(str(modified))
    names = [o.name for o in a.get_outputs()]
    rng = np.random.default_rng(23)
    sizes = [(256, 448), (224, 320)]
    for i in range(runs):
        h, w = sizes[i % len(sizes)]
        l = rng.uniform(0, 100, (1, 1, h, w)).astype(np.float32)
        # a smooth image rather than noise on every other run
        if i % 2 == 1:
            y, x = np.mgrid[0:h, 0:w]
            l = (50 + 40 * np.sin(x / 17.0) * np.cos(y / 23.0))[None, None].astype(np.float32)
        ab = np.zeros((1, 2, h, w), np.float32)
        mask = np.zeros((1, 1, h, w), np.float32)
        hints = 0 if i < runs // 2 else 30
        if hints:
            ys, xs = rng.integers(0, h, hints), rng.integers(0, w, hints)
            mask[0, 0, ys, xs] = 1.0
            ab[0, :, ys, xs] = rng.uniform(-60, 60, (hints, 2)).astype(np.float32)
        feed = {"l": l, "ab_hint": ab, "hint_mask": mask}
        ra = a.run(names, feed)
        rb = b.run(None, feed)
        outs_b = dict(zip([o.name for o in b.get_outputs()], rb))
        for n, va in zip(names, ra):
            vb = outs_b[n]
            if va.shape != vb.shape or not np.array_equal(va, vb):
                diff = np.abs(va.astype(np.float64) - vb.astype(np.float64)).max() if va.shape == vb.shape else "shape"
                raise SystemExit(f"run {i}: output {n} differs from the original graph's (max {diff})")
        shapes = []
        for layer in layers:
            _, scale, channels = CANDIDATES[layer]
            f = outs_b[output_name(layer)]
            want = (1, channels, h // scale, w // scale)
            if f.shape != want:
                raise SystemExit(f"run {i}: {output_name(layer)} has shape {f.shape}, expected {want}")
            if not np.isfinite(f).all():
                raise SystemExit(f"run {i}: {output_name(layer)} holds non-finite values")
            shapes.append(f"{layer}{list(f.shape[1:])}")
        print(f"check {i}: {h}x{w}, {hints} hints: {', '.join(names)} bit-identical; {' '.join(shapes)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=None, help="where to write the graph (default /tmp/<model>-features.onnx)")
    ap.add_argument("--model", default=str(HERE.parent / "tincture-colorizer-v1.onnx"),
                    help="the colorizer graph to read (default ../tincture-colorizer-v1.onnx)")
    ap.add_argument("--layers", default=",".join(CANDIDATES),
                    help=f"comma-separated, from {', '.join(CANDIDATES)} (default all)")
    ap.add_argument("--check", type=int, default=4, help="random inputs to compare on (0: no check)")
    ap.add_argument("--ship", action="store_true",
                    help=f"add the shipped features ({','.join(SHIPPED)}) to --model in place, after checking "
                         "that its other outputs are unchanged, and update its manifest")
    a = ap.parse_args()
    src = Path(a.model)
    if a.ship:
        tmp = src.with_suffix(".features.onnx.tmp")
        onnx.save(add_feature_outputs(onnx.load(str(src)), SHIPPED), str(tmp))
        check(src, tmp, SHIPPED, max(a.check, 2))
        os.replace(tmp, src)
        update_manifest(src, SHIPPED)
        print(f"{src}: feature outputs {SHIPPED} added, manifest updated")
        return
    out = Path(a.out) if a.out else Path("/tmp") / f"{src.stem}-features.onnx"
    if out.resolve() == src.resolve():
        raise SystemExit("write the graph with features to a new file, not over the model")
    layers = [s.strip() for s in a.layers.split(",") if s.strip()]
    model = add_feature_outputs(onnx.load(str(src)), layers)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    print(f"{out}: outputs {[o.name for o in model.graph.output]}")
    if a.check:
        check(src, out, layers, a.check)


if __name__ == "__main__":
    main()
