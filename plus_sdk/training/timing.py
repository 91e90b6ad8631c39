"""Wall-clock seconds per phase of an iteration, and peak memory: what a training log reports about cost."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


class PhaseTimer:
    """Wall-clock seconds per named phase of one iteration.

    ``on_phase(name)`` is called as each phase starts: co-adaptation uses it to show the phase in
    its progress bar and to stop at a phase boundary when the time budget is spent.
    """

    def __init__(self, on_phase: Callable[[str], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.on_phase = on_phase

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.on_phase is not None:
            self.on_phase(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory on a GPU), in MiB."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


class BudgetSpentError(RuntimeError):
    """The wall-clock budget ran out at a phase boundary, before the iteration changed any weight."""


#: phases after which an iteration has changed weights, so a budget stop must let it finish
MUTATING_PHASES: frozenset[str] = frozenset({"ppo_update", "rm_update"})


def budget_guard(deadline: float | None, clock: Callable[[], float] = time.time) -> Callable[[str], None]:
    """An ``on_phase`` hook that raises ``BudgetSpentError`` before a phase once ``deadline`` has passed.

    It raises only while no weight has changed yet in this iteration (before the PPO update), so the
    iteration can be abandoned and a checkpoint still describes a whole number of iterations.
    """
    mutated = False

    def check(name: str) -> None:
        nonlocal mutated
        if name == "generation":
            mutated = False
        if name in MUTATING_PHASES:
            mutated = True
        if deadline is not None and not mutated and clock() > deadline:
            raise BudgetSpentError(f"time budget spent before phase {name!r}")

    return check


def phase_hook(bar: Any, deadline: float | None) -> Callable[[str], None]:
    """An ``on_phase`` hook: show the phase in the progress bar, and stop at ``deadline`` (``budget_guard``)."""
    guard = budget_guard(deadline)
    label = getattr(bar, "desc", "")  # a disabled bar has none

    def on_phase(name: str) -> None:
        bar.set_description(f"{label} [{name}]")
        guard(name)

    return on_phase
