#!/usr/bin/env bash
# PLUS co-adaptation on Pets with the embedded default model, run on one GPU (the CPU of the
# development machine was too contended for the 2-hour CPU recipe). Also the PLUS-untrained
# reference: the same loop with the summarizer frozen, so only the reward model learns.
# Usage (repo root, GPU machine):  OUT=/some/folder bash benchmarks/plus_pets_gpu.sh [key=value ...]
# Extra arguments override the recipe (e.g. init_from=BUNDLE max_minutes=3 run_dir=...);
# SKIP_UNTRAINED=1 skips the frozen-summarizer reference run.
set -euo pipefail
OUT=${OUT:-runs/gpu-out}
mkdir -p "$OUT"
python3 -c "import torch; print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
RUN=runs/pets-smollm2-gpu
python3 -m plus_sdk.cli -v train training/pets/plus_smollm2_gpu.yaml run_dir=$RUN "$@"
if [ -z "${SKIP_UNTRAINED:-}" ]; then
  python3 -m plus_sdk.cli -v train training/pets/plus_smollm2_gpu.yaml run_dir=runs/pets-untrained-gpu \
    train_summarizer=false max_minutes=1.0 eval.every=1000
fi
python3 - <<'PY'
import os
from plus_sdk.training.export import export_run
export_run("runs/pets-smollm2-gpu", os.path.join(os.environ["OUT"], "bundle"), checkpoint="best",
           name="pets-smollm2")
PY
cd "$OUT" && tar cf summarizer.tar -C bundle card.json summarizer && tar cf reward.tar -C bundle reward && rm -rf bundle
cd - > /dev/null
cp runs/pets-smollm2-gpu/metrics.jsonl "$OUT/metrics_plus.jsonl"
cp runs/pets-smollm2-gpu/samples.jsonl "$OUT/samples_plus.jsonl"
if [ -z "${SKIP_UNTRAINED:-}" ]; then
  cp runs/pets-untrained-gpu/metrics.jsonl "$OUT/metrics_untrained.jsonl"
  cp runs/pets-untrained-gpu/samples.jsonl "$OUT/samples_untrained.jsonl"
fi
ls -la "$OUT"
