"""The training records of a run as a resumable stream, and fixed evaluation subsets."""

from __future__ import annotations

import random
from collections.abc import Sequence

from plus_sdk.training.data.records import TrainingRecord


def fixed_subset(records: Sequence[TrainingRecord], n: int, seed: int) -> list[TrainingRecord]:
    """A reproducible random subset of ``n`` records (all when fewer)."""
    if n >= len(records):
        return list(records)
    rng = random.Random(f"eval/{seed}")
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


class RecordStream:
    """An endless, reshuffled-per-epoch stream of training records with a resumable position."""

    def __init__(self, records: Sequence[TrainingRecord], seed: int) -> None:
        if not records:
            raise ValueError("the training set is empty")
        self.records = list(records)
        self.seed = seed
        self.position = 0

    def order(self, epoch: int) -> list[int]:
        rng = random.Random(f"stream/{self.seed}/{epoch}")
        order = list(range(len(self.records)))
        rng.shuffle(order)
        return order

    def take(self, n: int) -> list[TrainingRecord]:
        out = []
        for _ in range(n):
            epoch, index = divmod(self.position, len(self.records))
            out.append(self.records[self.order(epoch)[index]])
            self.position += 1
        return out
