"""Styles summary metrics: does a summary name every side its user prefers? (the styles hook of ``hooks``)."""

from __future__ import annotations

from collections.abc import Sequence

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.styles import names_side


def names_every_side(summary: str, record: TrainingRecord) -> bool | None:
    """True when ``summary`` names each (axis, side) of a styles user (keyword check); None elsewhere."""
    preferences = record.meta.get("preferences") if record.dataset == "styles" else None
    if not preferences:
        return None
    return all(names_side(summary, axis, side) for axis, side in preferences)


def side_shares(summaries: Sequence[str], records: Sequence[TrainingRecord]) -> dict[str, float]:
    """Share of summaries that name every side of their user (``names_side``)."""
    named = [names_every_side(s, r) for s, r in zip(summaries, records, strict=True)]
    if not named:
        return {}
    return {"names_side": sum(bool(n) for n in named) / len(named)}
