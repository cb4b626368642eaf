"""Time one 256x256 run of an exported colorizer with ONNX Runtime on 2 CPU threads.

    python time_onnx.py ../tincture-colorizer-v2.onnx [--runs 20]

An indication of `cargo bench -p tincture-infer --bench inference` (which runs
the same graph through the same runtime from Rust); prints the median and
the fastest of --runs runs after 3 warm-up runs.
"""

import argparse
import time

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("onnx")
ap.add_argument("--runs", type=int, default=20)
ap.add_argument("--size", type=int, default=256)
a = ap.parse_args()
o = ort.SessionOptions()
o.intra_op_num_threads = 2
o.inter_op_num_threads = 1
s = ort.InferenceSession(a.onnx, o, providers=["CPUExecutionProvider"])
n = a.size
rng = np.random.default_rng(0)
feed = {"l": rng.uniform(0, 100, (1, 1, n, n)).astype(np.float32),
        "ab_hint": np.zeros((1, 2, n, n), np.float32), "hint_mask": np.zeros((1, 1, n, n), np.float32)}
feed["hint_mask"][0, 0, rng.integers(0, n, 10), rng.integers(0, n, 10)] = 1.0
for _ in range(3):
    s.run(None, feed)
ts = []
for _ in range(a.runs):
    t = time.perf_counter()
    s.run(None, feed)
    ts.append(1000 * (time.perf_counter() - t))
print(f"{a.onnx}: {n}x{n}, 2 threads: median {np.median(ts):.1f} ms, fastest {min(ts):.1f} ms "
      f"over {a.runs} runs (onnxruntime {ort.__version__})")
