"""What a reward-model method is: a head size, a pairwise loss, and a way to condition.

A method turns a training record into an ``RMExample`` (its conditioning text, or none) and
turns the head outputs of the chosen and rejected responses into a loss, the probability that
the chosen response wins, and a reward margin. The default is the Bradley–Terry model on a
scalar reward (``btl``); the distributional baselines override the loss (``dpl.py``), the
conditioned baselines override ``condition`` (``oracle.py``, ``icl.py``, ``summary.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from plus_sdk.training.data.records import TrainingRecord


@dataclass(frozen=True)
class RMExample:
    """One target pair with the text that conditions the reward model (or ``None``)."""

    condition: str | None
    prompt: str
    chosen: str
    rejected: str


@dataclass
class PairOutput:
    """What a method makes of one batch of (chosen, rejected) head outputs."""

    loss: torch.Tensor  # scalar, differentiable
    prob: torch.Tensor  # [B] P(chosen beats rejected)
    margin: torch.Tensor  # [B] reward(chosen) - reward(rejected)


class RewardMethod:
    """Bradley–Terry on one scalar reward, no conditioning: the ``btl`` baseline."""

    name = "btl"
    out_features = 1

    def reward(self, outputs: torch.Tensor) -> torch.Tensor:
        """Scalar reward of each row of head outputs ``[B, out_features]``."""
        return outputs[:, 0]

    def pair(self, chosen: torch.Tensor, rejected: torch.Tensor) -> PairOutput:
        """Loss −log σ(r_c − r_r), win probability and margin."""
        margin = self.reward(chosen) - self.reward(rejected)
        return PairOutput(loss=-F.logsigmoid(margin).mean(), prob=torch.sigmoid(margin), margin=margin)

    def condition(self, record: TrainingRecord) -> str | None:
        """The conditioning text of a record (none for BTL)."""
        return None

    def prepare(self, records: list[TrainingRecord], reward_model: Any) -> None:
        """One-off work before conditioning ``records`` (e.g. generating summaries)."""

    def example(self, record: TrainingRecord) -> RMExample:
        return RMExample(condition=self.condition(record), prompt=record.prompt, chosen=record.chosen,
                         rejected=record.rejected)

    def examples(self, records: list[TrainingRecord]) -> list[RMExample]:
        return [self.example(r) for r in records]
