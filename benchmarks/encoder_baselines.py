"""The baselines table of the encoder path: BTL, VPL, PLUS-untrained, Oracle (dataset and held-out
wordings) and PLUS, on the same held-out styles users (and Pets users), scored by one evaluation.

Each baseline is a ``plus train-rm`` recipe under ``training/encoder/``, run in its own process (so
its peak memory is its own); the table reads each run's ``eval.json``. PLUS rows are bundles
(``general-smollm2``, or a co-adapted one): their summarizer writes a summary of every held-out
user's context and their reward model scores the pairs under it, with the same ``pair_metrics``.

    .venv/bin/python benchmarks/encoder_baselines.py                        # every row
    .venv/bin/python benchmarks/encoder_baselines.py --only btl vpl         # some rows
    .venv/bin/python benchmarks/encoder_baselines.py --plus general-smollm2 runs/coadapt-bundle
        -> benchmarks/results/encoder_baselines.json (rows are merged into what is there)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from plus_sdk import PersonalizedJudge
from plus_sdk.training.config import load_config
from plus_sdk.training.data.source import load_records
from plus_sdk.training.evaluate import pair_metrics
from plus_sdk.training.rm.run import RMRunConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "encoder_baselines.json"
#: row name -> recipe under training/encoder/
RECIPES = {"BTL": "btl", "VPL": "vpl", "PLUS-untrained": "untrained", "Oracle (dataset wording)": "oracle",
           "Oracle (held-out wordings)": "oracle_heldout"}
AXES = ("caveats", "clarify", "code", "example", "format", "length", "level", "numbers", "tone")


def run_recipe(recipe: str, run_root: Path, threads: int) -> dict[str, Any]:
    """Train one baseline in a child process; its eval.json plus the wall time."""
    run_dir = run_root / recipe
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: train-rm would resume a finished one in 0 s
    started = time.perf_counter()
    recipe_file = ROOT / "training" / "encoder" / f"{recipe}.yaml"
    print(f"{recipe}: training (plus train-rm {recipe_file.relative_to(ROOT)})", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "plus_sdk.cli", "train-rm", str(recipe_file), f"run_dir={run_dir}",
                    f"threads={threads}", f"progress={'true' if sys.stderr.isatty() else 'false'}"],
                   check=True, cwd=ROOT)
    results = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    results["wall_seconds"] = time.perf_counter() - started
    return results


def score_bundle(bundle: str, threads: int) -> dict[str, Any]:
    """A bundle's summarizer and reward model on the held-out users of the encoder recipes."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    config = load_config(RMRunConfig, ROOT / "training" / "encoder" / "oracle.yaml")
    _train, test, ood = load_records(config.data)
    judge = PersonalizedJudge.from_pretrained(bundle, quiet=True)
    assert judge.summarizer is not None and judge.reward_model is not None
    out: dict[str, Any] = {"bundle": bundle}
    for name, rows in (("test", test), ("ood", ood)):
        contexts = {r.context.source_hash(): r.context for r in rows}
        summaries = dict(zip(contexts, (s.text for s in judge.summarizer.summarize_batch(list(contexts.values()))),
                             strict=True))
        items = [(summaries[r.context.source_hash()], r.prompt, r.chosen) for r in rows]
        items += [(summaries[r.context.source_hash()], r.prompt, r.rejected) for r in rows]
        rewards = torch.tensor(judge.reward_model.score_batch(items))
        margin = rewards[: len(rows)] - rewards[len(rows):]
        out[name] = pair_metrics(rows, torch.sigmoid(margin), margin)
    out["wall_seconds"] = time.perf_counter() - started
    out["cost"] = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    return out


def run_bundle(bundle: str, threads: int) -> dict[str, Any]:
    """``score_bundle`` in a child process (its own peak memory)."""
    print(f"{bundle}: summarizing and scoring the held-out users", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, __file__, "--score-bundle", bundle, "--threads", str(threads)],
                          check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def pct(value: Any) -> str:
    return "–" if value is None or value != value else f"{100 * float(value):.1f}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The markdown table of docs/benchmarks.md."""
    head = ("| method | styles acc | controversial | " + " | ".join(AXES) + " | Pets acc | wall (s) | peak RSS (MB) |\n"
            "| --- | --- | --- | " + " | ".join("---" for _ in AXES) + " | --- | --- | --- |")
    lines = [head]
    for name, r in rows.items():
        test, ood = r.get("test", {}), r.get("ood", {})
        axes = test.get("accuracy_by_axis", {})
        lines.append(f"| {name} | {pct(test.get('accuracy'))} | {pct(test.get('accuracy_controversial'))} | "
                     + " | ".join(pct(axes.get(a)) for a in AXES)
                     + f" | {pct(ood.get('accuracy'))} | {r.get('wall_seconds', float('nan')):.0f} | "
                     f"{r.get('cost', {}).get('peak_rss_mb', float('nan')):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="recipes to run (default: all)")
    parser.add_argument("--plus", nargs="*", default=["general-smollm2"], help="bundles scored as PLUS rows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-root", default=str(ROOT / "runs" / "encoder_baselines"))
    parser.add_argument("--score-bundle", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_bundle:
        print(json.dumps(score_bundle(args.score_bundle, args.threads)))
        return
    rows: dict[str, dict[str, Any]] = {}
    if RESULTS.exists():
        rows = json.loads(RESULTS.read_text(encoding="utf-8"))["rows"]
    for name, recipe in RECIPES.items():
        if args.only is None or recipe in args.only:
            rows[name] = run_recipe(recipe, Path(args.run_root), args.threads)
    for bundle in args.plus or []:
        rows[f"PLUS ({Path(bundle).name})"] = run_bundle(bundle, args.threads)
    load = os.getloadavg()
    report = {"rows": rows, "load_average": [round(x, 2) for x in load], "threads": args.threads,
              "table": table(rows)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(report["table"])
    print(f"load average {load[0]:.2f}; written to {RESULTS}")


if __name__ == "__main__":
    main()
