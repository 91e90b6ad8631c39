"""Summary-conditioned reward models: PLUS-untrained and the reward half of PLUS.

Each record's context is summarized once by a given summarizer (the frozen base model —
adapters off — for PLUS-untrained, or a trained summarizer adapter/bundle); summaries are
cached on disk in a ``SummaryCache`` keyed exactly as the SDK keys them (context hash,
summarizer id, prompt version), so reruns and the SDK reuse them. The reward model reads
``prompts.summary_condition(summary)`` before the prompt.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from plus_sdk import prompts
from plus_sdk.backends.local import LocalBackend, LocalModel, SharedBase
from plus_sdk.cache import SummaryCache
from plus_sdk.summarizer import Summarizer
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.rm.base import RewardMethod
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)


class SummaryMethod(RewardMethod):
    """Bradley–Terry conditioned on a summary of the user's context."""

    name = "summary"

    def __init__(self, summarizer: Summarizer | None = None, *, adapter: str | os.PathLike[str] | None = None,
                 task: str = "generic", cache_dir: str | os.PathLike[str] | None = None,
                 max_new_tokens: int = 96, batch_size: int = 8) -> None:
        self.summarizer = summarizer
        self.adapter = adapter
        self.task = task
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.summaries: dict[str, str] = {}

    def build_summarizer(self, reward_model: Any) -> Summarizer:
        """A summarizer on the reward model's base: adapters off (untrained) or a loaded adapter."""
        base: SharedBase = reward_model.model.base
        name = None
        if self.adapter is not None:
            name = base.add_adapter(self.adapter, "summarizer")
        return Summarizer(LocalBackend(LocalModel(base, name), batch_size=self.batch_size), task=self.task,
                          sampling=SamplingConfig(max_new_tokens=self.max_new_tokens),
                          cache=SummaryCache(self.cache_dir))

    def prepare(self, records: list[TrainingRecord], reward_model: Any) -> None:
        """Summarize every distinct context of ``records`` not summarized yet (cached on disk)."""
        if self.summarizer is None:
            self.summarizer = self.build_summarizer(reward_model)
        todo: dict[str, Any] = {}
        for record in records:
            key = record.context.source_hash()
            if key not in self.summaries:
                todo.setdefault(key, record.context)
        if not todo:
            return
        logger.info("Summarizing %d contexts with %s", len(todo), self.summarizer.summarizer_id)
        results = self.summarizer.summarize_batch(list(todo.values()), progress=True)
        for key, summary in zip(todo, results, strict=True):
            self.summaries[key] = summary.text

    def condition(self, record: TrainingRecord) -> str | None:
        key = record.context.source_hash()
        if key not in self.summaries:
            raise KeyError(f"no summary for the context of user {record.user_id}; call prepare(records, rm) first")
        return prompts.summary_condition(self.summaries[key])
