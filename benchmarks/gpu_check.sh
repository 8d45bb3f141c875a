#!/usr/bin/env bash
# The paper's profile on one GPU, in under 10 minutes: throughput (fp32 against bf16 autocast),
# then Table I's schedule (600 epochs, batch 120, Adam lr 1e-4 constant, weight decay 1e-4) on
# MVTec AD `bottle` with RANDOM weights (no ImageNet weights here) and --precision auto, scored on
# the whole test split. Prints the wall time, the training images/s and the image AUROC.
#
#   bash benchmarks/gpu_check.sh                       # on a GPU machine, data under $PYRAMID_DATA
#   GPU_CHECK_EPOCHS=1 GPU_CHECK_SIZES=28 GPU_CHECK_THROUGHPUT=--quick bash benchmarks/gpu_check.sh   # CPU smoke test
#
# Settings (environment): PYRAMID_DATA (data root, default ../shared/data), GPU_CHECK_CATEGORY
# (bottle), GPU_CHECK_EPOCHS (600), GPU_CHECK_DEVICE (auto), GPU_CHECK_SIZES (throughput sizes,
# "28 120"), GPU_CHECK_THROUGHPUT (more options of throughput.py, e.g. --quick), GPU_CHECK_OUT
# (build/gpu-check; the run folder is replaced each time), PY (python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${PYRAMID_DATA:-$(cd .. && pwd)/shared/data}
CATEGORY=${GPU_CHECK_CATEGORY:-bottle}
EPOCHS=${GPU_CHECK_EPOCHS:-600}
DEVICE=${GPU_CHECK_DEVICE:-auto}
SIZES=${GPU_CHECK_SIZES:-28 120}
THROUGHPUT=${GPU_CHECK_THROUGHPUT:-}
OUT=${GPU_CHECK_OUT:-build/gpu-check}
rm -rf "$OUT/run"
mkdir -p "$OUT"
start=$(date +%s)
echo "== throughput (benchmarks/throughput.py, fp32 and bf16 in one process)"
# shellcheck disable=SC2086
"$PY" benchmarks/throughput.py --sizes $SIZES --device "$DEVICE" --precision $THROUGHPUT --json "$OUT/throughput.json"
echo "== Table I schedule on mvtec/$CATEGORY, random weights, $EPOCHS epochs, --precision auto"
"$PY" -m pyramid_lib train --dataset mvtec --normal-class "$CATEGORY" --data-root "$DATA" --no-download \
    --epochs "$EPOCHS" --batch-size 120 --lr 1e-4 --lr-schedule constant --weight-decay 1e-4 \
    --weights none --precision auto --device "$DEVICE" --out "$OUT/run"
"$PY" -m pyramid_lib evaluate "$OUT/run" --device "$DEVICE"
"$PY" - "$OUT/run" "$start" <<'EOF'
import json, sys, time
from pathlib import Path

import pandas as pd

run, start = Path(sys.argv[1]), int(sys.argv[2])
state = json.loads((run / "run.json").read_text())
cfg = json.loads((run / "config.json").read_text())
m = pd.read_csv(run / "metrics.csv").iloc[0]
rates = [h["images_per_s"] for h in state["history"]]
print(f"device {state['device']}; precision {cfg['precision']} (measured: {state.get('precision_measured')}); "
      f"weights {cfg['weights']}")
print(f"{len(rates)} epochs, training {state['wall_time_s']:.0f} s, median {sorted(rates)[len(rates) // 2]:.0f} "
      f"images/s; image AUROC {m.auroc:.4f}; whole check {time.time() - start:.0f} s wall")
EOF
