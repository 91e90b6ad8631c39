"""Dataset-specific summary metrics: the hook each dataset may register for the generic training loop.

A hook (``SummaryMetricsHook``) holds what a dataset adds to the logs: ``shares`` maps (summaries, the
records they were written for) to named shares, e.g. Pets' ``right_animal_first``; ``names_user`` says
whether one summary names what its user prefers; ``headline`` names the shares that the training log
shows beside the accuracies. Co-adaptation logs the shares with a prefix (``test_``, ``ood_``,
``sample_``) for every dataset that registers a hook in ``HOOKS``; other datasets log nothing extra.
The loop itself names no dataset's metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.summary_metrics.pets import names_favourite_alone, right_animal_shares
from plus_sdk.training.summary_metrics.styles import names_every_side, side_shares

SummaryMetrics = Callable[[Sequence[str], Sequence[TrainingRecord]], dict[str, float]]


@dataclass(frozen=True)
class SummaryMetricsHook:
    """What one dataset adds to the training logs (see the module doc)."""

    shares: SummaryMetrics
    #: (summary, record) -> whether the summary names what the record's user prefers; None: not this dataset's
    names_user: Callable[[str, TrainingRecord], bool | None]
    headline: tuple[str, ...] = ()


PETS = SummaryMetricsHook(right_animal_shares, names_favourite_alone, headline=("right_animal_first",))
STYLES = SummaryMetricsHook(side_shares, names_every_side)

#: Dataset name (``TrainingRecord.dataset``) → its summary-metrics hook.
HOOKS: dict[str, SummaryMetricsHook] = {"pets": PETS, "pets-ood": PETS, "styles": STYLES}


def names_user(summary: str, record: TrainingRecord) -> bool | None:
    """Whether a summary names what its user prefers, by the first hook that knows the record's dataset
    (every styles side, the Pets user's animal alone; None for datasets without a keyword check)."""
    for hook in dict.fromkeys(HOOKS.values()):
        named = hook.names_user(summary, record)
        if named is not None:
            return named
    return None


def metrics_for(dataset: str) -> SummaryMetrics | None:
    """The summary-metrics function of ``dataset``, or None when it has none."""
    hook = HOOKS.get(dataset)
    return None if hook is None else hook.shares


def headline_names() -> tuple[str, ...]:
    """The share names the hooks put in the training log beside the accuracies."""
    return tuple(dict.fromkeys(name for hook in HOOKS.values() for name in hook.headline))


def summary_metrics(summaries: Sequence[str], records: Sequence[TrainingRecord], prefix: str) -> dict[str, float]:
    """``{prefix}_{name}: value`` from the hook of the records' dataset (empty when it has none)."""
    hook = metrics_for(records[0].dataset) if records else None
    if hook is None:
        return {}
    return {f"{prefix}_{name}": value for name, value in hook(summaries, records).items()}
