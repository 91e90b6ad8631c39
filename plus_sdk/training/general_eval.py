"""Evaluation of an encoder-path bundle: accuracy by axis and pair kind, wordings, and named sides.

``evaluate_conditions`` scores held-out rows with the reward model under given conditions (generated
summaries, the dataset's own descriptions, held-out wordings, typed wordings) and reports accuracy
overall, on controversial and agreed pairs and per styles axis; ``named_share`` is the share of
users whose summary names what they prefer. ``plus train general`` and ``benchmarks/general_bundle.py``
both use these, so the card and the benchmark table count the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.summary_metrics.hooks import names_user


def axis_of(record: TrainingRecord) -> str:
    """The styles axis a row is about, ``pets`` for Pets rows, else the dataset name."""
    if record.dataset == "styles":
        return str(record.meta.get("axis", "?"))
    return "pets" if record.dataset.startswith("pets") else record.dataset


def accuracy_table(records: Sequence[TrainingRecord], margins: torch.Tensor) -> dict[str, Any]:
    """Accuracy overall, on controversial and agreed pairs, and per axis (ties count half)."""
    right = (margins > 0).float() + 0.5 * (margins == 0).float()
    out: dict[str, Any] = {"n": len(records), "accuracy": float(right.mean()) if len(records) else float("nan")}
    for name, keep in (("controversial", True), ("agreed", False)):
        rows = [i for i, r in enumerate(records) if r.controversial == keep]
        if rows:
            out[f"accuracy_{name}"] = float(right[rows].mean())
    by_axis: dict[str, float] = {}
    for axis in sorted({axis_of(r) for r in records}):
        rows = [i for i, r in enumerate(records) if axis_of(r) == axis]
        by_axis[axis] = float(right[rows].mean())
    out["accuracy_by_axis"] = by_axis
    return out


def evaluate_conditions(scorer: Any, records: Sequence[TrainingRecord],
                        conditions: Sequence[str | None]) -> dict[str, Any]:
    """``accuracy_table`` of a reward model (anything with ``score_batch``) under one condition per row."""
    items = [(c, r.prompt, r.chosen) for r, c in zip(records, conditions, strict=True)]
    items += [(c, r.prompt, r.rejected) for r, c in zip(records, conditions, strict=True)]
    rewards = torch.tensor(scorer.score_batch(items))
    return accuracy_table(records, rewards[: len(records)] - rewards[len(records):])


def named_share(summaries: Sequence[str], records: Sequence[TrainingRecord]) -> dict[str, float]:
    """Per user: does the summary name what they prefer? Shares overall and by dataset, plus empty ones."""
    seen: dict[str, tuple[bool, str]] = {}
    empty = 0
    for text, record in zip(summaries, records, strict=True):
        named = names_user(text, record)
        if named is not None and record.user_id not in seen:
            seen[record.user_id] = (named, record.dataset)
        empty += not text.strip()
    out = {"named_share": sum(n for n, _ in seen.values()) / max(len(seen), 1), "named_users": float(len(seen)),
           "empty_summaries": float(empty)}
    for dataset in sorted({d for _, d in seen.values()}):
        rows = [n for n, d in seen.values() if d == dataset]
        out[f"named_share_{dataset}"] = sum(rows) / len(rows)
    return out
