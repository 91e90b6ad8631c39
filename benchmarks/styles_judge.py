"""How well a shipped bundle personalizes held-out styles (and Pets) users, through the public API.

For each held-out row (4 per user, each with its own context of that user: 8 pairs by default,
as issue 13 asks) ``judge.summarizer`` writes a summary from the context, then
``judge.prefer_batch`` judges the row's target pair with that summary. About 4 s per context on
2 threads, so ``--limit`` (users) keeps quick runs short. Reported, for styles users:

- accuracy overall, on controversial pairs (users disagree) and per axis (controversial pairs);
- how often the summary names each of the user's sides (``styles.names_side``: a keyword of the
  side and none of the other side's), per user (their first row's summary) and per axis;
- how many summaries are placeholders (``prompts.is_placeholder``) or empty;
- wall time of summarizing and judging, and peak memory.

and the same accuracy on held-out Pets users (``--pets``). The records are the ones the styles
recipes test on (``data.dataset: general``, seed 0): prompts and sentences never seen in training.

    .venv/bin/python benchmarks/styles_judge.py --bundle general-smollm2
    .venv/bin/python benchmarks/styles_judge.py --bundle pets-smollm2 --limit 96   # the old default
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from plus_sdk import PersonalizedJudge, prompts
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import DataSource, load_records
from plus_sdk.training.data.styles import names_side

RESULTS = Path(__file__).resolve().parent / "results"


def user_sides(record: TrainingRecord) -> list[tuple[str, str]]:
    """The (axis, side) preferences of a styles user, read from its user type ("length=concise+...")."""
    return [tuple(part.split("=", 1)) for part in (record.user_type or "").split("+") if "=" in part]  # type: ignore[misc]


def share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def judge_records(judge: PersonalizedJudge, records: list[TrainingRecord]) -> tuple[list[str], list[float], float,
                                                                                    float]:
    """(summary texts, P(chosen), summarize seconds, judge seconds) of ``records``."""
    start = time.perf_counter()
    summaries = judge.summarizer.summarize_batch([r.context for r in records], progress=True)
    summarized = time.perf_counter()
    prefs = judge.prefer_batch([(s, r.prompt, r.chosen, r.rejected) for s, r in zip(summaries, records, strict=True)])
    judged = time.perf_counter()
    return [s.text for s in summaries], [p.probability for p in prefs], summarized - start, judged - summarized


def styles_metrics(records: list[TrainingRecord], texts: list[str], probs: list[float]) -> dict[str, Any]:
    """Accuracy (overall, controversial, per axis) and summary quality of styles users."""
    right = [p > 0.5 for p in probs]
    by_axis: dict[str, list[bool]] = defaultdict(list)
    named_by_axis: dict[str, list[bool]] = defaultdict(list)
    named_users = []
    seen: set[str] = set()
    for record, text, ok in zip(records, texts, right, strict=True):
        if record.controversial and "axis" in record.meta:
            by_axis[record.meta["axis"]].append(ok)
        if record.user_id in seen:  # summary quality counts once per user
            continue
        seen.add(record.user_id)
        sides = user_sides(record)
        flags = [names_side(text, axis, side) for axis, side in sides]
        for (axis, _), flag in zip(sides, flags, strict=True):
            named_by_axis[axis].append(flag)
        named_users.append(all(flags))
    controversial = [ok for ok, r in zip(right, records, strict=True) if r.controversial]
    return {
        "n": len(records), "users": len(seen), "accuracy": share(right), "accuracy_controversial": share(controversial),
        "accuracy_by_axis": {a: share(v) for a, v in sorted(by_axis.items())},
        "min_axis_accuracy": min((share(v) or 0.0) for v in by_axis.values()) if by_axis else None,
        "summary_names_all_sides": share(named_users),
        "summary_names_side_by_axis": {a: share(v) for a, v in sorted(named_by_axis.items())},
        "placeholder_summaries": sum(prompts.is_placeholder(t) for t in texts),
        "empty_summaries": sum(not t.strip() or t.strip() == prompts.EMPTY_SUMMARY for t in texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default=None, help="bundle name or folder (default: the library's default)")
    parser.add_argument("--n-test", type=int, default=400, help="held-out styles rows (4 per user)")
    parser.add_argument("--pets", type=int, default=100, help="held-out Pets users (0: none)")
    parser.add_argument("--n-context", type=int, default=8, help="context pairs per user")
    parser.add_argument("--limit", type=int, default=None, help="judge only the first N styles users (quick runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="results JSON (default: results/styles_judge_<bundle>.json)")
    parser.add_argument("--examples", type=int, default=12, help="summaries to keep in the results, for reading")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    _, test, pets = load_records(DataSource(dataset="general", n_train=1920, n_test=args.n_test, n_ood=args.pets,
                                            n_context=args.n_context, seed=0))
    if args.limit:
        users = list(dict.fromkeys(r.user_id for r in test))[: args.limit]
        test = [r for r in test if r.user_id in set(users)]
    load_start = time.perf_counter()
    judge = PersonalizedJudge.from_pretrained(args.bundle)
    load_s = time.perf_counter() - load_start
    name = Path(args.bundle).name if args.bundle else "default"
    texts, probs, summarize_s, judge_s = judge_records(judge, test)
    results: dict[str, Any] = {
        "bundle": name, "trained_on": judge.reward_model.card.trained_on if judge.reward_model.card else None,
        "n_context": args.n_context, "threads": args.threads, "load_s": round(load_s, 1),
        "styles": {**styles_metrics(test, texts, probs), "summarize_s": round(summarize_s, 1),
                   "judge_s": round(judge_s, 1)},
        "examples": [{"user_type": r.user_type, "summary": t} for r, t in list(zip(test, texts, strict=True))
                     [: args.examples]],
    }
    if pets:
        p_texts, p_probs, p_sum, p_judge = judge_records(judge, pets)
        results["pets"] = {"n": len(pets), "accuracy": share([p > 0.5 for p in p_probs]),
                           "summary_names_animal": share([r.user_type in t.lower() for r, t
                                                          in zip(pets, p_texts, strict=True)]),
                           "placeholder_summaries": sum(prompts.is_placeholder(t) for t in p_texts),
                           "summarize_s": round(p_sum, 1), "judge_s": round(p_judge, 1)}
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["loadavg_after"] = list(os.getloadavg())
    out = Path(args.out) if args.out else RESULTS / f"styles_judge_{name}.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in results["styles"].items() if not isinstance(v, dict)}, indent=1))
    print(json.dumps(results.get("pets"), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
