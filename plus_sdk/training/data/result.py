"""What a dataset builder returns: records per split plus a report of what was kept and skipped."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

from plus_sdk.training.data.records import TrainingRecord

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class BuildResult:
    """Records per split (``train``/``test``/``ood``) and counts of skipped or dropped upstream rows."""

    splits: dict[str, list[TrainingRecord]]
    skipped: Counter[str] = field(default_factory=Counter)
    info: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary: sizes, skip counts and builder facts."""
        return {
            "sizes": {name: len(rows) for name, rows in self.splits.items()},
            "skipped": dict(sorted(self.skipped.items())),
            **self.info,
        }

    def log_skips(self, dataset: str) -> None:
        """Log one warning per kind of skipped row (nothing when nothing was skipped)."""
        for reason, count in sorted(self.skipped.items()):
            logger.warning("%s: %d %s", dataset, count, reason.replace("_", " "))


def cap(items: list[T], limit: int | None, rng: random.Random) -> list[T]:
    """At most ``limit`` items, a seeded random subset in the original order."""
    if limit is None or len(items) <= limit:
        return items
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]
