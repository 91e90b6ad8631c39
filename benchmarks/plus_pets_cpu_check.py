"""CPU check of the exported default bundle through the public API (no-argument from_pretrained).

Writes benchmarks/results/plus_pets_cpu_check.json: accuracy and the share of summaries naming the
user's animal first, on 40 held-out Pets rows and 20 Pets-OOD rows (fixed random subsets).
Run: python benchmarks/plus_pets_cpu_check.py
"""

from __future__ import annotations

import json
import time

import torch

from plus_sdk.bundle import default_bundle_dir
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.training.data.pets import build_pets, build_pets_ood
from plus_sdk.training.stream import fixed_subset
from plus_sdk.training.summary_metrics.pets import names_right_animal


def main() -> None:
    torch.set_num_threads(2)
    start = time.time()
    judge = PersonalizedJudge.from_pretrained()
    print("bundle", default_bundle_dir(), "trained", judge.trained, flush=True)
    test = fixed_subset(build_pets(n_train=10, n_test=200, n_context=4)["test"], 40, 0)
    ood = fixed_subset(build_pets_ood(n_test=200, n_context=4), 20, 0)
    out: dict[str, object] = {}
    for name, rows in (("test", test), ("ood", ood)):
        prefs = judge.prefer_batch([(r.context, r.prompt, r.chosen, r.rejected) for r in rows])
        pairs = list(zip(prefs, rows, strict=True))
        named = [names_right_animal(p.summary.text if p.summary else "", r) for p, r in pairs]
        out[name] = {
            "rows": len(rows),
            "accuracy": sum(p.choice == "a" for p in prefs) / len(prefs),
            "right_animal_first": sum(bool(n and n[0]) for n in named) / len(named),
            "examples": [{"user_type": r.user_type, "summary": p.summary.text if p.summary else None}
                         for p, r in pairs[:4]],
        }
        print(name, out[name], flush=True)
    out["wall_seconds"] = time.time() - start
    with open("benchmarks/results/plus_pets_cpu_check.json", "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)


if __name__ == "__main__":
    main()
