"""PersonalizedGenerator: a response written for the user a summary describes.

Any ``ChatBackend`` writes the reply; the summary (from a context, or given directly, e.g.
after the user edited it) goes into the prompt, with a word budget. No fine-tuning needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from plus_sdk import prompts
from plus_sdk.backends import as_backend
from plus_sdk.backends.base import ChatBackend, Messages
from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.bundle import card_for, find_bundle, quiet_loads, read_card, save_bundle
from plus_sdk.coalesce import CoalesceSettings, coalescer_for, is_local, run_on_worker, settings_of
from plus_sdk.inputs import ContextOrSummary, aresolve_summaries, resolve_summaries
from plus_sdk.prompts import clip_words
from plus_sdk.store import attach_store
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import SamplingConfig, Summary

#: Word budget of a personalized reply (the paper asks for under 100 words).
DEFAULT_MAX_WORDS = 100
#: Decoding of replies: greedy, ~1.6 tokens per word of budget.
DEFAULT_GENERATION_SAMPLING = SamplingConfig(max_new_tokens=192)


class PersonalizedGenerator:
    """Writes replies personalized by a user summary."""

    def __init__(self, backend: ChatBackend | str, summarizer: Summarizer | None = None, *,
                 max_words: int = DEFAULT_MAX_WORDS, sampling: SamplingConfig = DEFAULT_GENERATION_SAMPLING,
                 backend_options: dict[str, Any] | None = None, store: Any = None,
                 coalesce: CoalesceSettings | None = None) -> None:
        """``backend``: a ``ChatBackend`` or a kind (``"local"``, ``"openai"``, ``"vllm"``) built with
        ``backend_options``. Replies are asked to stay under ``max_words`` words, decoded with at most
        ~2 tokens per word of budget, and cut at the budget if the model runs over. ``coalesce``: window and
        batch size of ``agenerate`` (None: defaults for the model's device)."""
        self.backend = as_backend(backend, backend_options)
        self.summarizer = summarizer
        if store is not None:  # a SummaryStore: generate(..., user_id=) reuses and records summaries
            attach_store(summarizer, store)
        self.max_words = max_words
        self.sampling = sampling
        self.coalesce = coalesce

    @classmethod
    def from_pretrained(cls, base: str | os.PathLike[str] | None = None, *, summarizer: Summarizer | str | None = None,
                        device: str | None = None, dtype: str | torch.dtype | None = None, quiet: bool = False,
                        **kwargs: Any) -> PersonalizedGenerator:
        """A local generator on ``base`` (a model name or folder, or a bundle; the default base if None).

        ``summarizer``: a ``Summarizer``, a bundle path or name, or ``None`` for the default one.
        Both share one copy of the base weights when they use the same base. ``quiet``: no line on
        stderr saying which bundle was loaded.
        """
        bundle = find_bundle(base)
        if bundle is not None:
            base = read_card(bundle).base_model
            summarizer = summarizer or str(bundle)
        if not isinstance(summarizer, Summarizer):
            with quiet_loads(quiet):
                summarizer = Summarizer.from_pretrained(summarizer, device=device, dtype=dtype)
        model = LocalModel.load(None if base is None else str(base), device=device, dtype=dtype)
        return cls(LocalBackend(model), summarizer, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike[str], *, name: str | None = None) -> None:
        """Save the generator's summarizer as a bundle; ``from_pretrained(folder)`` rebuilds both."""
        model = getattr(self.backend, "model", None)
        if model is None:
            raise ValueError("only a local generator can be saved; remote backends have no weights here")
        card = card_for(self.summarizer, model.base.name or model.base.base_id, name=name or Path(folder).name)
        save_bundle(folder, card.model_copy(update={"base_model": model.base.name or model.base.base_id}),
                    self.summarizer)

    def generate(self, context: ContextOrSummary, prompt: str, *, max_words: int | None = None,
                 sampling: SamplingConfig | None = None, user_id: str | None = None, refresh: bool = False) -> str:
        """A reply to ``prompt`` for the user described by ``context`` (or a summary).

        ``user_id``: use and update that user's stored summary (needs ``store=``)."""
        return self.generate_batch([(context, prompt)], max_words=max_words, sampling=sampling,
                                   user_ids=None if user_id is None else [user_id], refresh=refresh)[0]

    def generate_batch(self, items: Sequence[tuple[ContextOrSummary, str]], *, max_words: int | None = None,
                       sampling: SamplingConfig | None = None, user_ids: Sequence[str | None] | None = None,
                       refresh: bool = False) -> list[str]:
        """Replies for many (context or summary, prompt) pairs (``user_ids``: one per pair, see ``generate``)."""
        for _, prompt in items:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError("prompt must be a non-empty string")
        summaries = resolve_summaries([c for c, _ in items], self.summarizer, user_ids=user_ids, refresh=refresh)
        budget = max_words or self.max_words
        conversations, sampling = self.requests_for(items, summaries, budget, sampling)
        return [clip_words(text, budget) for text in self.backend.chat(conversations, sampling)]

    def requests_for(self, items: Sequence[tuple[ContextOrSummary, str]], summaries: Sequence[Summary | None],
                     budget: int, sampling: SamplingConfig | None) -> tuple[list[Messages], SamplingConfig]:
        """The prompts of ``items`` and the decoding capped at ~2 tokens per word of ``budget``."""
        conversations = [prompts.generation_messages(p, s.text if s else None, max_words=budget)
                         for (_, p), s in zip(items, summaries, strict=False)]
        sampling = sampling or self.sampling
        token_cap = 2 * budget + 16
        if sampling.max_new_tokens > token_cap:
            sampling = sampling.model_copy(update={"max_new_tokens": token_cap})
        return conversations, sampling

    async def agenerate(self, context: ContextOrSummary, prompt: str, *, max_words: int | None = None,
                        sampling: SamplingConfig | None = None, user_id: str | None = None,
                        refresh: bool = False) -> str:
        """``generate`` without blocking the event loop; a local generator batches concurrent callers that ask
        nothing per call through ``generate_batch`` (``plus_sdk.coalesce``); remote backends stay async."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        if is_local(self):
            if user_id is None and max_words is None and sampling is None and not refresh:
                coalescer = coalescer_for(self, "generate", self.generate_batch, settings_of(self))
                return await coalescer.submit((context, prompt))
            return await run_on_worker(self, lambda: self.generate(
                context, prompt, max_words=max_words, sampling=sampling, user_id=user_id, refresh=refresh))
        summaries = await aresolve_summaries([context], self.summarizer,
                                             user_ids=None if user_id is None else [user_id], refresh=refresh)
        budget = max_words or self.max_words
        conversations, sampling = self.requests_for([(context, prompt)], summaries, budget, sampling)
        texts = await self.backend.achat(conversations, sampling)  # type: ignore[attr-defined]
        return clip_words(texts[0], budget)
