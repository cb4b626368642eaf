"""Adds the colorizer's a*b* class distribution to an exported ONNX graph.

    python class_outputs.py ../tincture-colorizer-v1.onnx

The exported graph returns only the blended a*b* (`ab`). Tincture's picker
also shows "the model's most likely colours at this pixel", which needs the
distribution the classification head computes on the way. This script adds
two outputs to the graph, leaving every existing node and weight as it is
(so `ab` is unchanged, value for value):

* `ab_class_prob`: softmax of the head's logits (temperature 1), shape
  N x Q x H/4 x W/4: the model's probability of each a*b* class per pixel;
* `ab_class_centres`: the classes' a*b* centres, Q x 2, in Lab units.

`export.py` calls it after every export, so `make model` produces the same
graph. The manifest (its `outputs` list and sha256) is updated beside the
ONNX file when one is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

PROB = "ab_class_prob"
CENTRES = "ab_class_centres"


def logits_of(graph: onnx.GraphProto) -> str:
    """The classification head's logits: the input of the Softmax that feeds the annealed mean."""
    producers = {o: n for n in graph.node for o in n.output}
    for n in graph.node:
        if n.op_type == "Softmax":
            div = producers.get(n.input[0])
            if div is not None and div.op_type == "Div":
                return div.input[0]
    raise SystemExit("no Softmax over temperature-divided logits found: is this Tincture's colorizer graph?")


def add_class_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    names = {o.name for o in g.output}
    if PROB in names and CENTRES in names:
        return model
    if "bins" not in {i.name for i in g.initializer}:
        raise SystemExit("the graph has no `bins` initializer (the a*b* class centres)")
    logits = logits_of(g)
    g.node.append(helper.make_node("Softmax", [logits], [PROB], name="ab_class_softmax", axis=1))
    g.node.append(helper.make_node("Identity", ["bins"], [CENTRES], name="ab_class_centres_identity"))
    g.output.append(helper.make_tensor_value_info(PROB, TensorProto.FLOAT, ["n", "q", "h4", "w4"]))
    g.output.append(helper.make_tensor_value_info(CENTRES, TensorProto.FLOAT, ["q", 2]))
    onnx.checker.check_model(model)
    return model


def update_manifest(onnx_path: Path):
    manifest_path = onnx_path.with_suffix(".json")
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    outputs = [o for o in manifest.get("outputs", []) if o.get("name") not in (PROB, CENTRES)]
    outputs.append({"name": PROB, "shape": [None, None, None, None],
                    "normalisation": "probability of each a*b* class (softmax, temperature 1), "
                                     "at a quarter of the input's size"})
    outputs.append({"name": CENTRES, "shape": [None, 2],
                    "normalisation": "CIE a*b* centre of each class, Lab units"})
    manifest["outputs"] = outputs
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    path = Path(sys.argv[1])
    model = add_class_outputs(onnx.load(str(path)))
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    update_manifest(path)
    print(f"{path}: outputs {[o.name for o in model.graph.output]}")


if __name__ == "__main__":
    main()
