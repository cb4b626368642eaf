#!/usr/bin/env bash
# Reproduces models/tincture-colorizer-v1.onnx and its manifest: `make model`.
#
# 1. a Python environment pinned by models/training/requirements*.txt, in models/training/.venv;
# 2. training on $TINCTURE_SHARED/data/images/train (resumes from models/training/runs/v1 if present);
# 3. ONNX export and manifest;
# 4. evaluation through Tincture itself (tincture-cli eval-images) on the validation photos, at 0,
#    10 and 100 hint points, recorded in the manifest.
#
# The data is not part of the repository; point TINCTURE_SHARED at the folder that holds data/images.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${TINCTURE_SHARED:-../shared}"
TRAIN="$SHARED/data/images/train"
VAL="$SHARED/data/images/val"
RUN=models/training/runs/v1
OUT=models/tincture-colorizer-v1.onnx
STEPS="${STEPS:-1200}"

if [ ! -d "$TRAIN" ] || [ ! -d "$VAL" ]; then
    echo "[model] training data not found at $TRAIN and $VAL; set TINCTURE_SHARED to the folder holding data/images" >&2
    exit 3
fi
VENV=models/training/.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "[model] creating the Python environment in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -r models/training/requirements.txt
    "$VENV/bin/pip" install --no-deps -r models/training/requirements-nodeps.txt
fi
echo "[model] training ($STEPS steps; resumes from $RUN/checkpoint.pt if present)"
(cd models/training && "../../$VENV/bin/python" train.py --data "$(realpath "../../$TRAIN")" \
    --val "$(realpath "../../$VAL")" --run runs/v1 --steps "$STEPS" --val-every 400)
echo "[model] exporting"
(cd models/training && "../../$VENV/bin/python" export.py runs/v1/final.pt "../../$OUT")
cp "$RUN/train.log" models/training/train-log.txt
echo "[model] evaluating with tincture-cli eval-images"
cargo build --release -p tincture-cli
EVAL=$(mktemp -d)
for n in 0 10 100; do
    TINCTURE_BUILTIN_MODELS=models target/release/tincture-cli eval-images "$VAL" --points "$n" --json "$EVAL/eval-$n.json"
done
(cd models/training && "../../$VENV/bin/python" export.py --metrics "../../${OUT%.onnx}.json" "$EVAL"/eval-*.json)
echo "[model] done: $OUT"
