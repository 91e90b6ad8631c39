"""The oracle baseline: the reward model reads the true description of the user.

By default the description enters as ``prompts.oracle_condition`` ("About me: ..."). With
``as_summary=True`` it enters exactly where a PLUS summary does (``prompts.summary_condition``):
the oracle of the styles benchmark ("the user's true axis sentence as the summary"), and a
reward model that a summary-conditioned run can start from.
"""

from __future__ import annotations

from plus_sdk import prompts
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.rm.base import RewardMethod


class MissingOracleError(ValueError):
    """A record has no ``oracle`` description, so the oracle method cannot condition on it."""


class Oracle(RewardMethod):
    """Bradley–Terry conditioned on ``prompts.oracle_condition(record.oracle)``."""

    name = "oracle"

    def __init__(self, *, as_summary: bool = False) -> None:
        self.as_summary = as_summary

    def condition(self, record: TrainingRecord) -> str | None:
        if not record.oracle:
            raise MissingOracleError(f"record of user {record.user_id} has no 'oracle' field; the oracle method "
                                     "needs datasets that describe each user (pets, ultrafeedback, prism)")
        if self.as_summary:
            return prompts.summary_condition(record.oracle)
        return prompts.oracle_condition(record.oracle)
