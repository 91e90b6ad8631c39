"""Evaluate one checkpoint of a co-adaptation run on the full held-out and Pets-OOD sets.

Greedy summaries of each row's context, then the reward model's verdict, exactly as the run's
final evaluation does (``CoAdaptation.run_evaluation(final=True)``), for a checkpoint other
than the last one (e.g. ``best``, chosen on the small periodic evaluation).

    python benchmarks/plus_eval_checkpoint.py runs/plus-cpu-warm --checkpoint best --out result.json
    python benchmarks/plus_eval_checkpoint.py RUN --checkpoint latest --out r.json eval.final_test_rows=200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="best", help="best, latest, or a checkpoint .pt file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value settings that do not touch weights "
                                                     "(e.g. eval.final_test_rows=200 eval.final_ood_rows=200)")
    args = parser.parse_intermixed_args()

    from plus_sdk.training.export import load_checkpoint_run

    run_dir = Path(args.run_dir)
    work = run_dir / f"eval-{Path(args.checkpoint).stem}"  # evaluation samples go here, not into the run
    work.mkdir(parents=True, exist_ok=True)
    run, state, path = load_checkpoint_run(run_dir, args.checkpoint, work_dir=work, threads=args.threads,
                                            overrides=args.overrides)
    started = time.perf_counter()
    metrics = run.run_evaluation(final=True)
    samples = [json.loads(line) for line in (work / "samples.jsonl").read_text().splitlines()]
    result = {"run_dir": str(run_dir), "checkpoint": path.name, "iteration": int(state["iteration"]),
              "metrics": metrics, "wall_seconds": time.perf_counter() - started, "samples": samples}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({"checkpoint": path.name, "iteration": result["iteration"], **metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
