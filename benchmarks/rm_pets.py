"""Benchmark: every reward-model method on Pets and Pets-OOD with the embedded default backbone.

Each method runs in its own process (``plus train-rm``), so peak resident memory is per
method. Results are gathered into ``benchmarks/results/rm_pets.json`` and printed as a
Markdown table (the one in docs/benchmarks.md).

    python benchmarks/rm_pets.py                      # the recipes in training/pets/
    python benchmarks/rm_pets.py --steps 60 --methods btl oracle  # a subset, fewer steps
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("vpl", "btl", "oracle", "summary", "dpl-meanvar", "dpl-categorical", "icl")
LABELS = {"btl": "BTL", "dpl-meanvar": "DPL (mean-var)", "dpl-categorical": "DPL (categorical)",
          "icl": "ICL", "summary": "PLUS-untrained (summary RM)", "oracle": "Oracle", "vpl": "VPL (MiniLM)"}


def _seconds(value: float | None) -> str:
    """A time for the table; collected runs that the script did not time show a dash."""
    return "–" if value is None else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=None, help="override steps for every method")
    parser.add_argument("--icl-steps", type=int, default=None, help="override steps for ICL only (long inputs)")
    parser.add_argument("--vpl-steps", type=int, default=None, help="override steps for VPL only (cheap steps)")
    parser.add_argument("--runs", default="runs/bench_rm", help="folder of the runs")
    parser.add_argument("--collect", action="store_true", help="only gather the finished runs' eval.json")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/rm_pets.json"))
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()
    out_path = Path(args.out)
    results: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.setdefault("machine", f"{platform.machine()} {platform.processor() or ''}, CPU only".strip())
    results.setdefault("methods", {})
    for method in args.methods:
        overrides = [f"run_dir={args.runs}/{method}", *args.overrides]
        steps = {"icl": args.icl_steps, "vpl": args.vpl_steps}.get(method) or args.steps
        if steps:
            overrides += [f"steps={steps}", f"eval_every={steps}"]
        command = [sys.executable, "-m", "plus_sdk.cli", "train-rm", "--config",
                   str(ROOT / f"training/pets/{method}.yaml"), *overrides]
        eval_path = ROOT / args.runs / method / "eval.json"
        if args.collect:
            if eval_path.exists():
                entry = json.loads(eval_path.read_text())
                entry["overrides"] = overrides
                results["methods"][method] = entry
            continue
        print("$", " ".join(command), flush=True)
        started = time.perf_counter()
        code = subprocess.call(command, cwd=ROOT)
        wall = time.perf_counter() - started
        if code != 0 or not eval_path.exists():
            results["methods"][method] = {"error": f"exit code {code}", "wall_seconds": wall}
        else:
            entry = json.loads(eval_path.read_text())
            entry["wall_seconds"] = wall
            entry["overrides"] = overrides
            results["methods"][method] = entry
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"{method}: {wall:.0f} s", flush=True)
    if args.collect:
        out_path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))
    return 0


def table(results: dict) -> str:
    """The docs table: accuracies (%), OOD split by user type, calibration, cost."""

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{100 * value:.1f}"

    rows = ["| method | steps | test acc | controversial | agreed | OOD acc | OOD bird / rabbit users | ECE "
            "| train (s) | wall (s) | peak RSS (MB) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method in METHODS:
        entry = results["methods"].get(method)
        if not entry or "error" in entry:
            continue
        test, ood, cost = entry["test"], entry.get("ood", {}), entry["cost"]
        by_type = ood.get("accuracy_by_user_type", {})
        rows.append(f"| {LABELS[method]} | {cost['steps']} | {pct(test['accuracy'])} | "
                    f"{pct(test.get('accuracy_controversial'))} | {pct(test.get('accuracy_agreed'))} | "
                    f"{pct(ood.get('accuracy'))} | {pct(by_type.get('bird'))} / {pct(by_type.get('rabbit'))} | "
                    f"{test['ece']:.3f} | {cost['train_seconds']:.0f} | {_seconds(entry.get('wall_seconds'))} | "
                    f"{cost['peak_rss_mb']:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
