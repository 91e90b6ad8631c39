"""Statistics of a built dataset folder: rows, users per type, controversial share, context lengths.

When the folder has the builder's ``build.json`` with per-split ``counts`` (UltraFeedback, PRISM),
each split also gets them as ``build_counts``: pairs before and after the tie filter, pairs kept,
records, the numbers to check against the paper and VPL.

Context lengths are counted in tokens of a tokenizer (default: the embedded SmolLM2), twice:
the rendered context alone (``context_tokens``) and the summarizer's whole prompt with the chat
template (``summarizer_prompt_tokens``), as the summarizer reads it.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from plus_sdk.prompts import render_context, summarizer_messages
from plus_sdk.training.data.records import TrainingRecord, read_records

SPLITS: tuple[str, ...] = ("train", "test", "ood")


def summary_task(dataset: str) -> str:
    """The summarizer prompt family of a dataset."""
    if dataset.startswith("pets"):
        return "pets"
    if dataset.startswith("uf"):
        return "ultrafeedback"
    return "prism" if dataset == "prism" else "generic"


def distribution(values: list[int]) -> dict[str, float]:
    """min / median / p95 (nearest rank) / max / mean of a list of counts."""
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
    }


def _token_counts(records: list[TrainingRecord], tokenizer: Any) -> tuple[list[int], list[int]]:
    contexts, prompts = [], []
    for record in records:
        kind = record.meta.get("context_kind", "pairs")
        labels = kind != "conversations"
        contexts.append(render_context(record.context, labels=labels))
        messages = summarizer_messages(
            record.context, summary_task(record.dataset), context_kind="pairs" if labels else "conversations"
        )
        prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    count = lambda texts: [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]  # noqa: E731
    return count(contexts), count(prompts)


def split_stats(records: list[TrainingRecord], tokenizer: Any | None = None) -> dict[str, Any]:
    """Statistics of one split."""
    user_type = {r.user_id: r.user_type or "unknown" for r in records}
    stats: dict[str, Any] = {
        "rows": len(records),
        "users": len(user_type),
        "users_per_type": dict(sorted(Counter(user_type.values()).items())),
        "rows_per_type": dict(sorted(Counter(r.user_type or "unknown" for r in records).items())),
        "controversial_share": round(sum(r.controversial for r in records) / len(records), 4) if records else 0.0,
        "context_pairs": distribution([len(r.context.examples) for r in records]),
        "context_conversations": distribution([len(r.context.conversations) for r in records]),
    }
    if tokenizer is not None and records:
        context_tokens, prompt_tokens = _token_counts(records, tokenizer)
        stats["context_tokens"] = distribution(context_tokens)
        stats["summarizer_prompt_tokens"] = distribution(prompt_tokens)
    return stats


def build_counts(folder: Path) -> dict[str, dict[str, int]]:
    """Per-split builder counts from ``folder/build.json`` (empty when absent or unreadable)."""
    try:
        counts = json.loads((folder / "build.json").read_text(encoding="utf-8")).get("counts", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return counts if isinstance(counts, dict) else {}


def dataset_stats(folder: str | os.PathLike[str], tokenizer: Any | None = None) -> dict[str, Any]:
    """Statistics of every split found in ``folder`` (``<split>.jsonl`` or a ``<split>/`` datasets folder)."""
    root = Path(folder)
    counts = build_counts(root)
    found = {}
    for split in SPLITS:
        for path in (root / f"{split}.jsonl", root / split):
            if path.exists():
                found[split] = split_stats(read_records(path), tokenizer)
                if split in counts:
                    found[split]["build_counts"] = counts[split]
                break
    if not found:
        raise FileNotFoundError(f"{root} has no train/test/ood split (.jsonl file or datasets folder); build one first")
    return found
