#!/usr/bin/env bash
# Reproduces a built-in colorizer and its manifest: `make model` (v2, the default) or
# `MODEL=v1 make model`.
#
# 1. a Python environment pinned by models/training/requirements*.txt, in models/training/.venv;
# 2. v2 only: the v1 graph's weights into a PyTorch checkpoint (models/training/warmstart.py,
#    which checks that it reproduces the v1 graph);
# 3. training on $TINCTURE_SHARED/data/images/train (resumes from models/training/runs/$MODEL if
#    present; run it again after any stop);
# 4. ONNX export and manifest;
# 5. evaluation through Tincture itself (tincture-cli eval-images) at 0, 10 and 100 hint points,
#    on val (v1 and v2) and val_diverse (v2), recorded in the manifest.
#
# The data is not part of the repository; point TINCTURE_SHARED at the folder that holds data/images.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${TINCTURE_SHARED:-../shared}"
MODEL="${MODEL:-v2}"
TRAIN="$SHARED/data/images/train"
VAL="$SHARED/data/images/val"
VAL_DIVERSE="$SHARED/data/images/val_diverse"
RUN=models/training/runs/$MODEL
OUT=models/tincture-colorizer-$MODEL.onnx

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
PY="../../$VENV/bin/python"
T="$(realpath "$TRAIN")"
V="$(realpath "$VAL")"
case "$MODEL" in
v1)
    # v1 was trained by the code of commit 9af2d09 (its hint draw and sampling differ from v2's):
    # that code is taken from git history and run as it was.
    STEPS="${STEPS:-1200}"
    V1SRC=$(mktemp -d)
    git archive 9af2d09 models/training | tar -x -C "$V1SRC"
    mkdir -p "$RUN"
    echo "[model] training v1 with the code of 9af2d09 ($STEPS steps; resumes from $RUN/checkpoint.pt if present)"
    (cd "$V1SRC/models/training" && "$OLDPWD/$VENV/bin/python" train.py --data "$T" --val "$V" \
        --run "$OLDPWD/$RUN" --steps "$STEPS" --val-every 400)
    (cd "$V1SRC/models/training" && "$OLDPWD/$VENV/bin/python" export.py "$OLDPWD/$RUN/final.pt" "$OLDPWD/$OUT")
    cp "$RUN/train.log" models/training/train-log.txt
    SETS="val"
    ;;
v2)
    # 700 steps from the v1 graph's weights (see models/training/README.md).
    VD="$(realpath "$VAL_DIVERSE")"
    if [ ! -f "$RUN/init.pt" ]; then
        echo "[model] warm start: the v1 graph's weights into $RUN/init.pt"
        (cd models/training && $PY warmstart.py ../tincture-colorizer-v1.onnx runs/v2/init.pt --data "$T" --check "$VD")
    fi
    echo "[model] training v2 (700 steps; resumes from $RUN/checkpoint.pt if present)"
    (cd models/training && $PY train.py --data "$T" --val "$V" --val-diverse "$VD" --run runs/v2 \
        --init runs/v2/init.pt --steps 700 --freeze 3 --no-hint-share 0.3 --val-every 250 --checkpoint-every 50)
    # Temperature and blend: chosen on val_diverse by select_settings.py's fixed rule.
    (cd models/training && $PY export.py --version 2.0.0 --log models/training/train-log-v2.txt \
        --temperature "${TEMPERATURE:-0.38}" --blend "${BLEND:-0.25}" runs/v2/final.pt "../../$OUT")
    cp "$RUN/train-log.txt" models/training/train-log-v2.txt
    SETS="val val_diverse"
    ;;
*)
    echo "[model] MODEL must be v1 or v2" >&2
    exit 2
    ;;
esac
echo "[model] evaluating with tincture-cli eval-images"
cargo build --release -p tincture-cli
EVAL=$(mktemp -d)
for set in $SETS; do
    for n in 0 10 100; do
        target/release/tincture-cli eval-images "$SHARED/data/images/$set" --points "$n" \
            --model "${OUT%.onnx}.json" --seed 0 --json "$EVAL/$set-$n.json"
    done
    (cd models/training && $PY export.py --metrics --dataset "$set" \
        --command "tincture-cli eval-images DIR --points N --model ${OUT%.onnx}.json --seed 0" \
        "../../${OUT%.onnx}.json" "$EVAL/$set"-*.json)
done
echo "[model] done: $OUT"
