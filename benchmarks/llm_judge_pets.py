"""LLM-judge accuracy with vs without summaries on Pets test users, local default model.

The embedded default (SmolLM2-135M-Instruct) is both the summarizer (untrained, Pets prompt)
and the judge. Each test record's option order is drawn once (seeded) and shared by the two
conditions; the run is repeated with ``debias=True`` (both orders asked, averaged), and both
again with the record's true description as the summary (``oracle_*``: an upper bound that
separates the judge's ability to use a summary from the summarizer's quality). Reruns resume.

    .venv/bin/python benchmarks/llm_judge_pets.py --n-test 60
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from plus_sdk.files import atomic_write_text
from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.data.records import write_jsonl
from plus_sdk.training.evaluate_llm import JudgeEvalConfig, evaluate_judge, make_eval_backend, make_summarizer

ROOT = Path(__file__).resolve().parent


def naming_rate(items: Path) -> float:
    """Share of generated summaries that name the user's animal and not the other one."""
    rows = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines() if line.strip()]
    hits = 0
    for row in rows:
        text, liked = row["summary"].lower(), row["user_type"]
        other = "dog" if liked == "cat" else "cat"
        hits += liked in text and other not in text
    return round(hits / len(rows), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=60)
    parser.add_argument("--n-context", type=int, default=8)
    parser.add_argument("--work", default=str(ROOT / "runs" / "llm_judge_pets"))
    parser.add_argument("--out", default=str(ROOT / "results" / "llm_judge_pets.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens of each judge answer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    work = Path(args.work)
    data = work / "pets_test.jsonl"
    write_jsonl(build_pets(n_train=0, n_test=args.n_test, n_context=args.n_context, seed=0)["test"], data)
    base = JudgeEvalConfig(data=str(data), out=str(work / "one_order"), summary_task="pets", batch_size=8,
                           max_new_tokens=args.max_new_tokens)
    backend, summarizer = make_eval_backend(base), make_summarizer(base)
    report: dict[str, object] = {"model": backend.model_id, "summarizer": summarizer.summarizer_id,
                                 "n_test": args.n_test, "n_context": args.n_context,
                                 "judge_max_new_tokens": args.max_new_tokens, "prompt_style": "system"}
    for source in ("summarizer", "oracle"):
        for debias in (False, True):
            name = ("oracle_" if source == "oracle" else "") + ("debias" if debias else "one_order")
            config = base.model_copy(update={"debias": debias, "summary_source": source, "out": str(work / name)})
            start = time.perf_counter()
            results = evaluate_judge(config, backend=backend, summarizer=summarizer)
            wall = round(time.perf_counter() - start, 1)
            report[name] = {"metrics": results["metrics"],
                            "wall_s": wall if wall > 1.0 else "resumed from an earlier run"}
    report["summaries_naming_only_the_users_animal"] = naming_rate(work / "one_order" / "items.jsonl")
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
