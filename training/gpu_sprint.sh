#!/usr/bin/env bash
# One large GPU for about ten minutes (think one H200): benchmark generation on it, then train the paper-scale
# generators for as long as the budget allows. Run from the repository root, with the requirements installed
# (the device machine has no network: carry a virtual environment) and ../shared/data beside the checkout:
#
#     bash training/gpu_sprint.sh                    # results under $OUT (or gpu_sprint/), one JSON per step
#     MAR_MINUTES=8 FLOW_MINUTES=8 bash training/gpu_sprint.sh    # a longer loan: more minutes per model
#
# Order = value per minute: (1) seconds per cine on the GPU at batch 1 and 16 with the bundled weights (what a
# GPU backend gives users), (2) the paper-scale representation (96 px, 50 frames: data, frame autoencoder,
# motion model), (3) the paper MAR, (4) the paper ECG flow on the bundled ECG MAE's features is not possible
# (the paper flow expects the paper MAE's 384-wide features), so (4) trains the default-size ECG flow on the GPU
# for comparison with the CPU run. Every step writes its log; a failed step does not stop the later ones.
set -u
OUT="${OUT:-gpu_sprint}"
mkdir -p "$OUT"
MAR_MINUTES="${MAR_MINUTES:-3}"
FLOW_MINUTES="${FLOW_MINUTES:-1.5}"
AE_EPOCHS="${AE_EPOCHS:-4}"
PY="${PYTHON:-python}"

step() {  # step NAME COMMAND...: run, keep its output and exit status, go on either way
  local name="$1"; shift
  local started=$(date +%s)
  echo "==> $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - started ))}" >> "$OUT/steps.jsonl"
  tail -n 3 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.csv" 2>&1
# (1) generation speed with the bundled weights on the GPU
step bench_cpgg_b1 "$PY" -m evaluation.bench --generator cpgg --batch-size 1 --repeats 10 --device cuda
step bench_cpgg_b16 "$PY" -m evaluation.bench --generator cpgg --batch-size 16 --repeats 5 --device cuda
step bench_ecg "$PY" -m evaluation.bench --target ecg-to-cine --repeats 10 --device cuda
# (2) the paper-scale representation (the frame autoencoder's perceptual loss uses the bundled segmenter)
step prepare_paper "$PY" -m cardiosynth.data prepare --config paper
step frame_ae_paper "$PY" -m training.train_frame_ae --config paper --epochs "$AE_EPOCHS" --segmenter weights/segmenter \
  --out "$OUT/weights/frame_ae_paper" --device cuda
step motion_paper "$PY" -m training.fit_motion --config paper --out "$OUT/weights/motion_paper"
# (3) the paper MAR on that representation
step mar_paper "$PY" -m training.train_mar --config paper --frame-ae "$OUT/weights/frame_ae_paper" \
  --motion "$OUT/weights/motion_paper" --out "$OUT/weights/mar_paper" --max-minutes "$MAR_MINUTES" --device cuda
# (4) the default ECG flow on the GPU (same data and settings as the bundled CPU run)
step ecg_flow_gpu "$PY" -m training.train_ecg_flow --out "$OUT/weights/ecg_flow_gpu" --max-minutes "$FLOW_MINUTES" \
  --device cuda
cat "$OUT/steps.jsonl"
