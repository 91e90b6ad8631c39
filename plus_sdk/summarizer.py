"""Summarizer: writes a short text summary z of a user from their context c.

Works over any ``ChatBackend`` (a local model with an optional LoRA adapter by default).
Summaries are cached by (context hash, summarizer id, prompt version), so each user is
summarized once; a ``SummaryStore`` can be given to keep them durably per user id.

Over-long contexts: only the ``max_context_items`` most recent items are kept; when the
rendered prompt still exceeds ``max_context_tokens``, the oldest examples and conversations
are dropped (each item is tokenized once, then a binary search picks how many recent ones
fit; see ``plus_sdk.truncation``) and a ``ContextTruncatedWarning`` is issued; if the most
recent item alone is too long its texts are cut.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.backends.base import ChatBackend, Messages
from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.bundle import open_bundle
from plus_sdk.cache import SummaryCache, cache_key
from plus_sdk.cancel import raise_if_cancelled
from plus_sdk.coalesce import CoalesceSettings, coalescer_for, is_local, run_on_worker, settings_of
from plus_sdk.context_reader import ReaderBackend, is_reader, load_reader, save_reader
from plus_sdk.encoder import SentenceEncoder
from plus_sdk.inputs import as_context
from plus_sdk.store import summarize_with_store
from plus_sdk.truncation import DEFAULT_MAX_CONTEXT_ITEMS, ContextTooLargeError, fit_context, keep_recent
from plus_sdk.types import AdapterCard, SamplingConfig, Summary, UserContext

logger = logging.getLogger(__name__)

#: Default decoding for summaries: greedy, enough tokens for ~50 words plus the marker.
DEFAULT_SUMMARY_SAMPLING = SamplingConfig(max_new_tokens=96)
#: Default prompt budget of the summarizer, in tokens.
DEFAULT_MAX_CONTEXT_TOKENS = 2048


class ContextTruncatedWarning(UserWarning):
    """A user's context was cut to fit the summarizer's token budget."""


class Summarizer:
    """Turns a ``UserContext`` into a ``Summary``."""

    def __init__(self, backend: ChatBackend, *, task: str = "generic", context_kind: str = "pairs",
                 sampling: SamplingConfig = DEFAULT_SUMMARY_SAMPLING, max_words: int = prompts.SUMMARY_MAX_WORDS,
                 max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
                 max_context_items: int = DEFAULT_MAX_CONTEXT_ITEMS, cache: SummaryCache | None = None,
                 store: Any = None, card: AdapterCard | None = None, coalesce: CoalesceSettings | None = None) -> None:
        """``coalesce``: window and batch size of ``asummarize`` (None: defaults for the model's device)."""
        if task not in prompts.SUMMARY_TASKS:
            raise ValueError(f"task={task!r} is unknown; use one of {', '.join(prompts.SUMMARY_TASKS)}")
        if context_kind not in ("pairs", "conversations"):
            raise ValueError(f"context_kind={context_kind!r} is unknown; use 'pairs' or 'conversations'")
        self.backend = backend
        self.task = task
        self.context_kind = context_kind
        self.sampling = sampling
        self.max_words = max_words
        self.max_context_tokens = max_context_tokens
        if max_context_items < 1:
            raise ValueError(f"max_context_items={max_context_items} must be at least 1")
        self.max_context_items = max_context_items
        self.cache = cache if cache is not None else SummaryCache()
        self.store = store
        self.card = card
        self.coalesce = coalesce

    @classmethod
    def from_pretrained(cls, base: str | os.PathLike[str] | None = None, adapter: str | os.PathLike[str] | None = None,
                        *, device: str | None = None, dtype: str | torch.dtype | None = None,
                        cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Summarizer:
        """A local summarizer.

        ``base``: a bundle folder (``card.json`` + ``summarizer/``), a model name or folder,
        or ``None`` for the trained default bundle when it exists, else the default base.
        """
        bundle, card = open_bundle(base, adapter, quiet=kwargs.pop("quiet", False))
        if bundle is not None and card is not None:
            if prompts.PROMPT_VERSION not in (card.prompt_version, *card.checked_prompt_versions):
                logger.warning("Bundle %s was trained with prompt version %s, this plus-sdk writes version %s: "
                               "its summaries may be worse than its card says; retrain or pin plus-sdk",
                               bundle, card.prompt_version, prompts.PROMPT_VERSION)
            adapter = bundle / "summarizer"
            if not (adapter / "adapter_config.json").exists():
                adapter = None  # a bundle whose summarizer is the bare base model
            base = card.base_model
            kwargs.setdefault("task", card.summary_task)
            kwargs.setdefault("context_kind", card.context_kind)
            max_new = card.config.get("summary_max_new_tokens")
            if max_new and "sampling" not in kwargs:  # decode as the bundle was trained
                kwargs["sampling"] = SamplingConfig(max_new_tokens=int(max_new))
        reader_folder = bundle / "summarizer" if bundle is not None and is_reader(bundle / "summarizer") else None
        model = LocalModel.load(None if base is None else str(base), adapter, role="summarizer",
                                device=device, dtype=dtype)
        cache = kwargs.pop("cache", None)
        if cache is None:
            cache = SummaryCache(cache_dir)
        if reader_folder is not None:  # the encoder path: the context is read through a sentence encoder
            reader, encoder_name = load_reader(reader_folder)
            backend: ChatBackend = ReaderBackend(model, reader, SentenceEncoder.load(encoder_name, device=device))
            return cls(backend, card=card, cache=cache, **kwargs)
        return cls(LocalBackend(model), card=card, cache=cache, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Save the LoRA adapter of a local summarizer into ``folder`` (and an encoder-path one's context reader)."""
        model = getattr(self.backend, "model", None)
        if model is None or model.adapter is None:
            raise ValueError("only a local summarizer with a LoRA adapter can be saved")
        model.base.save_adapter(model.adapter, folder)
        if isinstance(self.backend, ReaderBackend):  # the encoder path: its reader (and hint bank) beside the adapter
            save_reader(self.backend.reader, self.backend.encoder.name, folder)

    # ------------------------------------------------------------------
    @property
    def summarizer_id(self) -> str:
        """Identity used in cache keys: model, adapter, task and context kind."""
        return f"{self.backend.model_id}:{self.task}:{self.context_kind}:{self.max_words}"

    def messages_for(self, context: UserContext) -> Messages:
        """The prompt for ``context``, cut to ``max_context_items`` and the token budget (see module doc)."""
        labels = self.context_kind == "pairs"
        n_items = len(context.examples) + len(context.conversations)
        trimmed = keep_recent(context, self.max_context_items)
        if trimmed is not context:
            warnings.warn(f"context of user {context.user_id or '?'} had {n_items} items > max_context_items="
                          f"{self.max_context_items}; kept the most recent {self.max_context_items}",
                          ContextTruncatedWarning, stacklevel=3)
        model = getattr(self.backend, "model", None)
        count = getattr(model, "count_tokens", None)
        if count is None:
            return self._render(trimmed)
        tokenizer = model.tokenizer  # type: ignore[union-attr]

        def count_texts(texts: list[str]) -> list[int]:
            if not texts:  # a context of only a guideline or profile: tokenizers refuse an empty batch
                return []
            return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

        try:
            kept, original, tokens = fit_context(trimmed, self._render, count, count_texts, self.max_context_tokens,
                                                 labels=labels)
        except ContextTooLargeError:
            kept, original, tokens = self._halve_last_item(trimmed, count)
        if kept is not trimmed:
            warnings.warn(
                f"context of user {context.user_id or '?'} had {original} tokens > max_context_tokens="
                f"{self.max_context_tokens}; kept the most recent items ({tokens} tokens)",
                ContextTruncatedWarning, stacklevel=3,
            )
        return self._render(kept)

    def _render(self, context: UserContext) -> Messages:
        return prompts.summarizer_messages(context, self.task, max_words=self.max_words,
                                           context_kind=self.context_kind)  # type: ignore[arg-type]

    def _halve_last_item(self, context: UserContext, count: Any) -> tuple[UserContext, int, int]:
        """Only the most recent item, its texts halved until the prompt fits (a few dozen rounds at most)."""
        original = count(self._render(context))
        trimmed: UserContext | None = keep_recent(context, 1)
        while trimmed is not None:
            tokens = count(self._render(trimmed))
            if tokens <= self.max_context_tokens:
                return trimmed, original, tokens
            trimmed = _halve_item(trimmed)
        raise ContextTooLargeError(f"the context cannot fit max_context_tokens={self.max_context_tokens}; raise it")

    def summarize(self, context: UserContext | dict[str, Any] | None, *, sampling: SamplingConfig | None = None,
                  user_id: str | None = None, refresh: bool = False) -> Summary:
        """The summary of one user's context.

        With ``user_id`` (and a ``store``): the stored summary is reused when it matches the
        context or the user edited it, else refreshed and recorded (see ``plus_sdk.store``).
        """
        if user_id is not None:
            return self.summarize_batch([context], sampling=sampling, user_ids=[user_id], refresh=refresh)[0]
        return self.summarize_batch([context], sampling=sampling)[0]  # type: ignore[list-item]

    def summarize_batch(self, contexts: Sequence[UserContext | dict[str, Any]], *,
                        sampling: SamplingConfig | None = None, progress: bool = False,
                        use_cache: bool = True, user_ids: Sequence[str | None] | None = None,
                        refresh: bool = False) -> list[Summary]:
        """Summaries of many contexts; cached ones are reused, the rest generated in batches.

        Sampled summaries (``sampling.do_sample``) bypass the cache. ``user_ids`` (one per
        context, ``None`` for none) use and update ``self.store``; ``refresh=True`` regenerates
        and overwrites stored summaries, user edits included.
        """
        if user_ids is not None:
            return summarize_with_store(self, self.store, [None if c is None else as_context(c) for c in contexts],
                                        user_ids, refresh=refresh, sampling=sampling, progress=progress,
                                        use_cache=use_cache)
        sampling = sampling or self.sampling
        use_cache = use_cache and not sampling.do_sample
        plan = self.plan_batch(contexts, sampling, use_cache)
        keys = list(plan.todo)
        batch = self.backend_batch_size
        bar = tqdm(total=len(keys), desc="summarize", unit="user", disable=not progress or not keys)
        for start in range(0, len(keys), batch):
            raise_if_cancelled()  # the client went away (plus serve): stop between batches
            chunk = keys[start : start + batch]
            texts = self._texts_for([plan.first(k) for k in chunk], sampling)
            plan.fill(self, chunk, texts, use_cache)
            bar.update(len(chunk))
        bar.close()
        return plan.summaries()

    def plan_batch(self, contexts: Sequence[UserContext | dict[str, Any]], sampling: SamplingConfig,
                   use_cache: bool) -> BatchPlan:
        """Which distinct contexts of a batch still need generating (cached ones are filled in)."""
        parsed = [as_context(c) for c in contexts]
        plan = BatchPlan(parsed, [None] * len(parsed), {})
        by_key: dict[str, list[int]] = {}
        for i, context in enumerate(parsed):
            key = cache_key(context.source_hash(), self.summarizer_id, prompts.PROMPT_VERSION)
            if sampling.do_sample:  # every row gets its own sample
                key = f"{key}#{i}"
            by_key.setdefault(key, []).append(i)
        for key, rows in by_key.items():
            cached = self.cache.get(key) if use_cache else None
            if cached is None:
                plan.todo[key] = rows
            for i in rows if cached is not None else ():
                plan.results[i] = cached
        return plan

    async def asummarize(self, context: UserContext | dict[str, Any] | None, *, sampling: SamplingConfig | None = None,
                         user_id: str | None = None, refresh: bool = False) -> Summary:
        """``summarize`` without blocking the event loop; a local model batches concurrent callers that ask
        nothing per call through ``summarize_batch`` (``plus_sdk.coalesce``)."""
        if user_id is None and context is None:
            raise ValueError("context is None: give a UserContext (or a user_id with a store)")
        if user_id is None and sampling is None and not refresh and is_local(self):
            coalescer = coalescer_for(self, "summarize", self.summarize_batch, settings_of(self))
            return await coalescer.submit(as_context(context))  # type: ignore[arg-type]
        user_ids = None if user_id is None else [user_id]
        return (await self.asummarize_batch([context], sampling=sampling, user_ids=user_ids,  # type: ignore[list-item]
                                            refresh=refresh))[0]

    async def asummarize_batch(self, contexts: Sequence[UserContext | dict[str, Any]], *,
                               sampling: SamplingConfig | None = None,
                               user_ids: Sequence[str | None] | None = None, refresh: bool = False) -> list[Summary]:
        """``summarize_batch`` on the model's worker thread, or with ``achat`` for a remote backend."""
        if is_local(self) or user_ids is not None:  # the store is synchronous: keep it off the loop too
            return await run_on_worker(self, lambda: self.summarize_batch(
                contexts, sampling=sampling, user_ids=user_ids, refresh=refresh))
        sampling = sampling or self.sampling
        use_cache = not sampling.do_sample
        plan = self.plan_batch(contexts, sampling, use_cache)
        keys = list(plan.todo)
        if keys:
            texts = await self.backend.achat([self.messages_for(plan.first(k)) for k in keys],  # type: ignore[attr-defined]
                                             sampling)
            plan.fill(self, keys, texts, use_cache)
        return plan.summaries()

    @property
    def backend_batch_size(self) -> int:
        return int(getattr(self.backend, "batch_size", 8))

    def summary_complete(self, text: str) -> bool:
        """True once a partly generated text holds a whole summary, so generation can stop.

        Complete means: a paragraph break after summary text that follows the marker, or at
        least ``max_words`` words ending a sentence, or the ``2 * max_words`` words that
        ``extract_summary`` keeps at most.
        """
        marker = prompts.SUMMARY_MARKER_RE.search(text)
        body = text[marker.end():] if marker else text
        if marker and body.strip() and "\n\n" in body.lstrip():
            return True
        words = len(body.split())
        return words >= 2 * self.max_words or (words >= self.max_words and body.rstrip().endswith((".", "!", "?")))

    def _texts_for(self, contexts: list[UserContext], sampling: SamplingConfig) -> list[str]:
        """Raw summarizer outputs for contexts: read directly by an encoder-path backend, else prompted."""
        if getattr(self.backend, "reads_contexts", False):  # its cost does not grow with the context's tokens
            kept = [keep_recent(c, self.max_context_items) for c in contexts]
            for context, trimmed in zip(contexts, kept, strict=True):
                if trimmed is not context:
                    warnings.warn(f"context of user {context.user_id or '?'} had more than max_context_items="
                                  f"{self.max_context_items} items; kept the most recent ones",
                                  ContextTruncatedWarning, stacklevel=3)
            return self.backend.read(kept, sampling)  # type: ignore[attr-defined]
        return self._generate([self.messages_for(c) for c in contexts], sampling)

    def _generate(self, conversations: list[Messages], sampling: SamplingConfig) -> list[str]:
        """Raw summarizer outputs; a backend that takes ``stop`` ends each row with its summary."""
        if "stop" in inspect.signature(self.backend.chat).parameters:
            return self.backend.chat(conversations, sampling, stop=self.summary_complete)  # type: ignore[call-arg]
        return self.backend.chat(conversations, sampling)

    def _make_summary(self, raw: str, context: UserContext) -> Summary:
        text = prompts.extract_summary(raw, max_words=2 * self.max_words) or prompts.EMPTY_SUMMARY
        return Summary(text=text, model_id=self.summarizer_id, prompt_version=prompts.PROMPT_VERSION,
                       source_hash=context.source_hash())


@dataclass
class BatchPlan:
    """A summarization batch: parsed contexts, results so far, and rows per context still to generate."""

    parsed: list[UserContext]
    results: list[Summary | None]
    todo: dict[str, list[int]]

    def first(self, key: str) -> UserContext:
        """The context to summarize for ``key`` (its first row)."""
        return self.parsed[self.todo[key][0]]

    def fill(self, summarizer: Summarizer, keys: Sequence[str], texts: Sequence[str], use_cache: bool) -> None:
        """Record the raw generations ``texts`` for ``keys`` on every row that shares each context."""
        for key, raw in zip(keys, texts, strict=True):
            summary = summarizer._make_summary(raw, self.first(key))
            if use_cache:
                summarizer.cache.put(key, summary)
            for i in self.todo[key]:
                self.results[i] = summary

    def summaries(self) -> list[Summary]:
        return [r for r in self.results if r is not None]


def _halve_item(context: UserContext) -> UserContext | None:
    """The one-item context with its texts halved; ``None`` once they are too short to cut."""
    examples, conversations = list(context.examples), list(context.conversations)
    if examples:
        ex = examples[0]
        if min(len(ex.prompt), len(ex.chosen), len(ex.rejected)) < 8:
            return None
        half = {f: getattr(ex, f)[: len(getattr(ex, f)) // 2] for f in ("prompt", "chosen", "rejected")}
        if half["chosen"] == half["rejected"]:
            half["rejected"] += " (cut)"
        return context.model_copy(update={"examples": [ex.model_copy(update=half)]})
    if conversations:
        conv = conversations[0]
        if all(len(t.content) < 8 for t in conv.turns):
            return None
        turns = [t.model_copy(update={"content": t.content[: max(len(t.content) // 2, 1)]}) for t in conv.turns]
        return context.model_copy(update={"conversations": [conv.model_copy(update={"turns": turns})]})
    return None
