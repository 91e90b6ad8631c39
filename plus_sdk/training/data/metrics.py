"""Dataset-specific summary metrics: a hook each dataset may provide to the generic training loop.

A hook maps (summaries, the records they were written for) to named shares, e.g. Pets'
``right_animal_first``. Co-adaptation logs them with a prefix (``test_``, ``ood_``, ``sample_``)
for every dataset that registers one in ``HOOKS``; other datasets log nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from plus_sdk.training.data.pets_metrics import names_right_animal, right_animal_shares
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.styles_metrics import names_every_side, side_shares

SummaryMetrics = Callable[[Sequence[str], Sequence[TrainingRecord]], dict[str, float]]

#: Dataset name (``TrainingRecord.dataset``) → its summary-metrics hook.
HOOKS: dict[str, SummaryMetrics] = {"pets": right_animal_shares, "pets-ood": right_animal_shares,
                                    "styles": side_shares}


def names_user(summary: str, record: TrainingRecord) -> bool | None:
    """Whether a summary names what its user prefers: every styles side, or the Pets user's animal alone
    (None for datasets without a keyword check)."""
    if record.dataset == "styles":
        return names_every_side(summary, record)
    animal = names_right_animal(summary, record)
    return None if animal is None else animal[1]


def metrics_for(dataset: str) -> SummaryMetrics | None:
    """The summary-metrics hook of ``dataset``, or None when it has none."""
    return HOOKS.get(dataset)


def summary_metrics(summaries: Sequence[str], records: Sequence[TrainingRecord], prefix: str) -> dict[str, float]:
    """``{prefix}_{name}: value`` from the hook of the records' dataset (empty when it has none)."""
    hook = metrics_for(records[0].dataset) if records else None
    if hook is None:
        return {}
    return {f"{prefix}_{name}": value for name, value in hook(summaries, records).items()}
