#!/usr/bin/env python3
"""OpenCV's DIS optical flow for the flow bench (crates/tincture-engine/benches/flow.rs).

    python opencv_dis.py JOB_DIR

JOB_DIR/job.json:
    {"width": W, "height": H, "repeats": N,
     "presets": ["ultrafast", "fast", "medium"],
     "pairs": [["a.u8", "b.u8", "out_stem"], ...]}

Frames are raw 8-bit gray, W*H bytes, row-major, in JOB_DIR. For every pair and preset the
script runs cv2.DISOpticalFlow_create(preset).calc(a, b) `repeats` times (one warm-up call
first), and writes the flow to JOB_DIR/<out_stem>_<preset>.f32: the u plane then the v plane,
little-endian float32, W*H values each. It prints one JSON object on stdout:

    {"opencv": "4.12.0", "threads": 2,
     "timings": [{"pair": 0, "preset": "fast", "best_ms": 12.3}, ...]}

Threads: OpenCV's default (cv2.getNumThreads(), all cores), as Tincture's flow uses rayon's
default pool. Exit status 3, with a line starting "skip:" on stdout, when OpenCV (cv2) or
numpy is not installed.
"""

import json
import sys
import time
from pathlib import Path

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import cv2
        import numpy as np
    except ImportError as e:
        print(f"skip: OpenCV for Python is not installed ({e}); scripts/setup.sh --bench installs it")
        return 3

    job_dir = Path(sys.argv[1])
    job = json.loads((job_dir / "job.json").read_text())
    w, h = job["width"], job["height"]
    repeats = max(1, int(job.get("repeats", 1)))

    def load(name: str):
        data = np.fromfile(job_dir / name, dtype=np.uint8)
        if data.size != w * h:
            raise SystemExit(f"{name}: {data.size} bytes, expected {w}x{h} = {w * h}")
        return data.reshape(h, w)

    timings = []
    for preset in job["presets"]:
        dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        for index, (a_name, b_name, stem) in enumerate(job["pairs"]):
            a, b = load(a_name), load(b_name)
            flow = dis.calc(a, b, None)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                flow = dis.calc(a, b, None)
                best = min(best, time.perf_counter() - t0)
            uv = np.ascontiguousarray(flow.transpose(2, 0, 1), dtype="<f4")
            uv.tofile(job_dir / f"{stem}_{preset}.f32")
            timings.append({"pair": index, "preset": preset, "best_ms": best * 1e3})

    print(json.dumps({"opencv": cv2.__version__, "threads": cv2.getNumThreads(), "timings": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
