"""The oracle baseline: the reward model reads the true description of the user."""

from __future__ import annotations

from plus_sdk import prompts
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.rm.base import RewardMethod


class MissingOracleError(ValueError):
    """A record has no ``oracle`` description, so the oracle method cannot condition on it."""


class Oracle(RewardMethod):
    """Bradley–Terry conditioned on ``prompts.oracle_condition(record.oracle)``."""

    name = "oracle"

    def condition(self, record: TrainingRecord) -> str | None:
        if not record.oracle:
            raise MissingOracleError(f"record of user {record.user_id} has no 'oracle' field; the oracle method "
                                     "needs datasets that describe each user (pets, ultrafeedback, prism)")
        return prompts.oracle_condition(record.oracle)
