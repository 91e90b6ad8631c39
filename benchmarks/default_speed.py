"""Speed of a bundle through the public API: ``prefer`` with the user's summary cached, and ``prefer_batch``
on 64 new pairs, for each bundle named (the same users and pairs for all).

Every pair is new text (each reply gets a counter), so an encoder-path bundle pays for embedding
both replies on every call; only the user's summary is cached, after one warm-up call. The pairs
are built from the held-out styles users (``data.dataset: general``, seed 0).

    .venv/bin/python benchmarks/default_speed.py general-smollm2 pets-smollm2
        -> benchmarks/results/default_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import torch

from plus_sdk import PersonalizedJudge
from plus_sdk.training.data.source import DataSource, load_records


def measure(name: str, threads: int) -> dict[str, float]:
    """p50 / p90 of ``prefer`` (cached summary, new pair) and the pairs/s of ``prefer_batch`` on 64 new pairs."""
    torch.set_num_threads(threads)
    judge = PersonalizedJudge.from_pretrained(name, quiet=True)
    records = load_records(DataSource(dataset="general", n_train=8, n_test=64, n_ood=0, n_context=8, seed=0))[1]
    user = records[0].context
    judge.prefer(user, records[0].prompt, records[0].chosen, records[0].rejected)  # the summary is now cached
    latencies = []
    for i, record in enumerate(records[:20]):
        start = time.perf_counter()
        judge.prefer(user, record.prompt, f"{record.chosen} ({i})", f"{record.rejected} ({i})")
        latencies.append(time.perf_counter() - start)
    items = [(user, r.prompt, f"{r.chosen} [{i}]", f"{r.rejected} [{i}]") for i, r in enumerate(records)]
    start = time.perf_counter()
    judge.prefer_batch(items)
    batch_seconds = time.perf_counter() - start
    return {"prefer_p50_ms": 1000 * statistics.median(latencies),
            "prefer_p90_ms": 1000 * sorted(latencies)[int(0.9 * len(latencies)) - 1],
            "prefer_batch_64_s": batch_seconds, "prefer_batch_pairs_per_s": len(items) / batch_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", help="bundle names or folders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "default_speed.json"))
    args = parser.parse_args()
    out: dict = {"loadavg_before": os.getloadavg(), "threads": args.threads}
    for name in args.bundles:
        out[name] = measure(name, args.threads)
        print(name, json.dumps({k: round(v, 1) for k, v in out[name].items()}))
    out["loadavg_after"] = os.getloadavg()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
