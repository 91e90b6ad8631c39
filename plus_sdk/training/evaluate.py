"""Reward-model evaluation: accuracy (overall, per user type, controversial or not), margin, ECE.

A prediction for a held-out pair is P(chosen beats rejected) = σ(r_A − r_B) (or the method's
own win probability, e.g. DPL's) and the reward margin. From them:

* ``accuracy``: share of pairs with P > ½ (r(chosen) > r(rejected)); also per ``user_type``
  and for controversial / non-controversial pairs;
* ``margin``: mean r(chosen) − r(rejected);
* ``ece``: expected calibration error over 10 equal-width confidence bins, confidence =
  max(P, 1 − P) and "correct" = P > ½ (orientation-free: swapping A and B changes nothing).

``plus eval --run DIR`` evaluates a finished ``plus train-rm`` run on its test (and OOD) records
and writes ``eval.json`` plus a Markdown table row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from plus_sdk.files import atomic_write_text
from plus_sdk.training.data.records import TrainingRecord

ECE_BINS = 10


def expected_calibration_error(prob: torch.Tensor, bins: int = ECE_BINS) -> float:
    """ECE of win probabilities ``prob`` = P(chosen wins) (correct when > ½)."""
    if prob.numel() == 0:
        return 0.0
    confidence = torch.maximum(prob, 1 - prob)
    correct = (prob > 0.5).float()
    # confidence lies in [0.5, 1]: bins of equal width over that range
    index = ((confidence - 0.5) / 0.5 * bins).long().clamp(0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            ece += float(in_bin.float().mean()) * abs(float(correct[in_bin].mean()) - float(confidence[in_bin].mean()))
    return ece


def accuracy(prob: torch.Tensor) -> float:
    return float((prob > 0.5).float().mean()) if prob.numel() else float("nan")


def pair_metrics(records: Sequence[TrainingRecord], prob: torch.Tensor, margin: torch.Tensor) -> dict[str, Any]:
    """All metrics of one evaluation set (see the module doc)."""
    if len(records) != len(prob) or len(prob) != len(margin):
        raise ValueError(f"records ({len(records)}), probabilities ({len(prob)}) and margins ({len(margin)}) "
                         "must have the same length")
    out: dict[str, Any] = {"n": len(records), "accuracy": accuracy(prob),
                           "margin": float(margin.mean()) if len(margin) else float("nan"),
                           "ece": expected_calibration_error(prob)}
    controversial = torch.tensor([r.controversial for r in records], dtype=torch.bool)
    if controversial.any():
        out["accuracy_controversial"] = accuracy(prob[controversial])
    if (~controversial).any():
        out["accuracy_agreed"] = accuracy(prob[~controversial])
    types = sorted({r.user_type for r in records if r.user_type})
    out["accuracy_by_user_type"] = {
        t: accuracy(prob[torch.tensor([r.user_type == t for r in records])]) for t in types
    }
    axes = sorted({r.meta["axis"] for r in records if r.controversial and "axis" in r.meta})
    if axes:  # builders that record the axis a pair differs on (styles): controversial pairs per axis
        out["accuracy_by_axis"] = {
            a: accuracy(prob[torch.tensor([r.controversial and r.meta.get("axis") == a for r in records])])
            for a in axes
        }
    return out


def markdown_header() -> str:
    return ("| method | test acc | controversial | agreed | OOD acc | margin | ECE | train time (s) | peak RSS (MB) |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _pct(value: Any) -> str:
    return "–" if value is None or value != value else f"{100 * float(value):.1f}"


def markdown_row(name: str, results: dict[str, Any]) -> str:
    """One table row: test accuracy (all / controversial / agreed), OOD accuracy, margin, ECE, cost."""
    test = results.get("test", {})
    ood = results.get("ood", {})
    cost = results.get("cost", {})
    margin = test.get("margin")
    ece = test.get("ece")
    return (f"| {name} | {_pct(test.get('accuracy'))} | {_pct(test.get('accuracy_controversial'))} | "
            f"{_pct(test.get('accuracy_agreed'))} | {_pct(ood.get('accuracy'))} | "
            f"{'–' if margin is None else f'{margin:.2f}'} | "
            f"{'–' if ece is None else f'{ece:.3f}'} | "
            f"{cost.get('train_seconds', float('nan')):.0f} | {cost.get('peak_rss_mb', float('nan')):.0f} |")


def write_results(results: dict[str, Any], folder: str | Path, name: str) -> Path:
    """Write ``eval.json`` and ``eval.md`` (header + one row) into ``folder``."""
    folder = Path(folder)
    path = folder / "eval.json"
    atomic_write_text(path, json.dumps(results, indent=2, sort_keys=True))
    atomic_write_text(folder / "eval.md", markdown_header() + "\n" + markdown_row(name, results) + "\n")
    return path
