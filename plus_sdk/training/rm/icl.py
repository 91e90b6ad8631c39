"""The in-context-learning (ICL) baseline: the user's past pairs verbatim in the input.

The context is rendered by ``prompts.icl_condition`` and placed before the target prompt.
Token budget: the whole input (context + prompt + the longer of the two responses) must fit
``max_tokens`` (default: the reward model's ``max_length``). When it does not, the oldest
context items are dropped one at a time; the target prompt and responses are never cut. If
not even one item fits, the record is scored without context (logged), and if the target
alone is too long a ``ContextBudgetError`` names the budget to raise.
"""

from __future__ import annotations

import logging
from typing import Any

from plus_sdk import prompts
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.rm.base import RewardMethod
from plus_sdk.types import UserContext

logger = logging.getLogger(__name__)


class ContextBudgetError(ValueError):
    """The target pair alone is longer than the ICL token budget."""


def drop_oldest_item(context: UserContext) -> UserContext | None:
    """The context without its oldest pair (then oldest conversation); ``None`` when nothing is left."""
    examples, conversations = list(context.examples), list(context.conversations)
    if examples:
        examples.pop(0)
    elif conversations:
        conversations.pop(0)
    else:
        return None
    if not examples and not conversations:
        return None
    return context.model_copy(update={"examples": examples, "conversations": conversations})


class ICL(RewardMethod):
    """Bradley–Terry conditioned on the verbatim context, fitted to a token budget."""

    name = "icl"

    def __init__(self, max_tokens: int | None = None, *, labels: bool = True) -> None:
        self.max_tokens = max_tokens
        self.labels = labels
        self.reward_model: Any = None
        self._cache: dict[tuple[str, str, str, str], str | None] = {}
        self.dropped_items = 0

    def prepare(self, records: list[TrainingRecord], reward_model: Any) -> None:
        self.reward_model = reward_model

    @property
    def budget(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        if self.reward_model is None:
            raise ValueError("ICL needs prepare(records, reward_model) (or max_tokens) before conditioning")
        return int(self.reward_model.max_length)

    def length(self, record: TrainingRecord, condition: str | None) -> int:
        """Tokens of the longer of the two full inputs (chosen / rejected)."""
        rm = self.reward_model
        return max(sum(map(len, rm.encode_split(record.prompt, response, condition)))
                   for response in (record.chosen, record.rejected))

    def condition(self, record: TrainingRecord) -> str | None:
        key = (record.context.source_hash(), record.prompt, record.chosen, record.rejected)
        if key not in self._cache:
            self._cache[key] = self.fit(record)
        return self._cache[key]

    def fit(self, record: TrainingRecord) -> str | None:
        """The longest suffix of the context (newest items) whose input fits the budget."""
        if self.reward_model is None:
            raise ValueError("ICL needs prepare(records, reward_model) before conditioning")
        bare = self.length(record, None)
        if bare > self.budget:
            raise ContextBudgetError(f"the target pair of user {record.user_id} alone has {bare} tokens > "
                                     f"ICL budget {self.budget}; raise max_length (or icl_max_tokens)")
        context: UserContext | None = record.context
        while context is not None:
            condition = prompts.icl_condition(context, labels=self.labels)
            if self.length(record, condition) <= self.budget:
                return condition
            self.dropped_items += 1
            context = drop_oldest_item(context)
        logger.warning("ICL: no context item of user %s fits %d tokens; scoring without context",
                       record.user_id, self.budget)
        return None
