"""Evaluate one checkpoint of a co-adaptation run on the full held-out and Pets-OOD sets.

Greedy summaries of each row's context, then the reward model's verdict, exactly as the run's
final evaluation does (``CoAdaptation.run_evaluation(final=True)``), for a checkpoint other
than the last one (e.g. ``best``, chosen on the small periodic evaluation).

    python benchmarks/plus_eval_checkpoint.py runs/plus-cpu-warm --checkpoint best --out result.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="best", help="best, latest, or a checkpoint .pt file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from plus_sdk.training.coadapt import CONFIG_FILE, CoAdaptation, CoadaptConfig
    from plus_sdk.training.config import load_config
    from plus_sdk.training.export import checkpoint_path

    run_dir = Path(args.run_dir)
    config = load_config(CoadaptConfig, run_dir / CONFIG_FILE)
    config.progress = False
    config.run_dir = str(run_dir / f"eval-{Path(args.checkpoint).stem}")  # samples go here, not into the run
    if args.threads:
        config.model.threads = args.threads
    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run_dir, args.checkpoint)
    run = CoAdaptation(config)
    state = torch.load(path, map_location="cpu", weights_only=False)
    run.load_state_dict(state)
    started = time.perf_counter()
    metrics = run.run_evaluation(final=True)
    samples = [json.loads(line) for line in (Path(config.run_dir) / "samples.jsonl").read_text().splitlines()]
    result = {"run_dir": str(run_dir), "checkpoint": path.name, "iteration": int(state["iteration"]),
              "metrics": metrics, "wall_seconds": time.perf_counter() - started, "samples": samples}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({"checkpoint": path.name, "iteration": result["iteration"], **metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
