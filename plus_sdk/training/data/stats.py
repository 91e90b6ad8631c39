"""Statistics of a built dataset folder: rows, users per type, controversial share, context lengths.

When the folder has the builder's ``build.json`` with per-split ``counts`` (UltraFeedback, PRISM),
each split also gets them as ``build_counts``: pairs before and after the tie filter, pairs kept,
records, the numbers to check against the paper and VPL; and, when a preset or VPL's Pets
generator built it, ``preset``: its name and what it chose.

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
    if dataset == "styles":
        return "generic"
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
    stats.update(axis_balance(records))
    if tokenizer is not None and records:
        context_tokens, prompt_tokens = _token_counts(records, tokenizer)
        stats["context_tokens"] = distribution(context_tokens)
        stats["summarizer_prompt_tokens"] = distribution(prompt_tokens)
        replies = [r.chosen for r in records] + [r.rejected for r in records]
        reply_ids = tokenizer(replies, add_special_tokens=False)["input_ids"]
        stats["response_tokens"] = distribution([len(ids) for ids in reply_ids])
    return stats


def axis_balance(records: list[TrainingRecord]) -> dict[str, Any]:
    """Target rows per axis and per (axis=side) the user picked, for builders that record them (styles)."""
    on_axis = [r for r in records if r.meta.get("pair_kind") == "axis"]
    if not on_axis:
        return {}
    return {
        "rows_per_axis": dict(sorted(Counter(r.meta["axis"] for r in on_axis).items())),
        "rows_per_side": dict(sorted(Counter(f"{r.meta['axis']}={r.meta['side']}" for r in on_axis).items())),
        "rows_per_domain": dict(sorted(Counter(str(r.meta.get("domain")) for r in records).items())),
    }


def _build_report(folder: Path) -> dict[str, Any]:
    try:
        report = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def build_counts(folder: Path) -> dict[str, dict[str, int]]:
    """Per-split builder counts from ``folder/build.json`` (empty when absent or unreadable)."""
    counts = _build_report(folder).get("counts", {})
    return counts if isinstance(counts, dict) else {}


def build_preset(folder: Path) -> dict[str, Any] | None:
    """The preset a builder applied and what it chose (``build.json`` → ``preset``), or ``None``."""
    preset = _build_report(folder).get("preset")
    return preset if isinstance(preset, dict) else None


def dataset_stats(folder: str | os.PathLike[str], tokenizer: Any | None = None) -> dict[str, Any]:
    """Statistics of every split found in ``folder`` (``<split>.jsonl`` or a ``<split>/`` datasets folder)."""
    root = Path(folder)
    counts = build_counts(root)
    preset = build_preset(root)
    found = {}
    for split in SPLITS:
        for path in (root / f"{split}.jsonl", root / split):
            if path.exists():
                found[split] = split_stats(read_records(path), tokenizer)
                if split in counts:
                    found[split]["build_counts"] = counts[split]
                if preset is not None:
                    found[split]["preset"] = preset
                break
    if not found:
        raise FileNotFoundError(f"{root} has no train/test/ood split (.jsonl file or datasets folder); build one first")
    return found
