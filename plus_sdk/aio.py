"""The async twins of the public methods: ``aprefer``, ``aprefer_batch``, ``asummarize``, ``agenerate``.

The classes expose them as methods (``judge.aprefer(...)``); the logic lives here.

- **Local models** never run on the event loop: single calls go through a ``Coalescer``
  (``plus_sdk.coalesce``) that batches concurrent callers into one ``prefer_batch`` /
  ``summarize_batch`` / ``generate_batch`` on the model's one worker thread; batch calls
  and calls with per-call options (``user_id``, ``sampling`` ...) run on that worker directly.
- **Remote backends** (those with ``achat``, e.g. ``OpenAIBackend``) are async end to end:
  requests go out concurrently, no thread is held while waiting.

Validation is the same as in the sync methods and happens before anything is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plus_sdk.coalesce import CoalesceSettings, coalescer_for, default_settings, is_local, model_key, run_on_worker
from plus_sdk.inputs import ContextOrSummary, as_context, check_item, resolve_summaries
from plus_sdk.prompts import clip_words
from plus_sdk.types import Preference, SamplingConfig, Summary, UserContext

if TYPE_CHECKING:
    from plus_sdk.generator import PersonalizedGenerator
    from plus_sdk.judge import JudgeItem, PersonalizedJudge
    from plus_sdk.summarizer import Summarizer


def settings_of(obj: Any) -> CoalesceSettings:
    """``obj.coalesce`` when set, else the defaults for the device its model sits on."""
    chosen = getattr(obj, "coalesce", None)
    return chosen if chosen is not None else default_settings(getattr(model_key(obj), "device", None))


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------


async def asummarize(summarizer: Summarizer, context: UserContext | dict[str, Any] | None, *,
                     sampling: SamplingConfig | None = None, user_id: str | None = None,
                     refresh: bool = False) -> Summary:
    """``Summarizer.summarize``, coalesced with concurrent callers when nothing per-call is asked."""
    if user_id is None and context is None:
        raise ValueError("context is None: give a UserContext (or a user_id with a store)")
    if user_id is None and sampling is None and not refresh and is_local(summarizer):
        coalescer = coalescer_for(summarizer, "summarize", summarizer.summarize_batch, settings_of(summarizer))
        return await coalescer.submit(as_context(context))  # type: ignore[arg-type]
    user_ids = None if user_id is None else [user_id]
    return (await asummarize_batch(summarizer, [context], sampling=sampling, user_ids=user_ids,  # type: ignore[list-item]
                                   refresh=refresh))[0]


async def asummarize_batch(summarizer: Summarizer, contexts: Sequence[UserContext | dict[str, Any]], *,
                           sampling: SamplingConfig | None = None, user_ids: Sequence[str | None] | None = None,
                           refresh: bool = False) -> list[Summary]:
    """``Summarizer.summarize_batch``: on the model's worker, or with ``achat`` for a remote backend."""
    if is_local(summarizer) or user_ids is not None:  # the store is synchronous: keep it off the loop too
        return await run_on_worker(summarizer, lambda: summarizer.summarize_batch(
            contexts, sampling=sampling, user_ids=user_ids, refresh=refresh))
    sampling = sampling or summarizer.sampling
    use_cache = not sampling.do_sample
    plan = summarizer.plan_batch(contexts, sampling, use_cache)
    keys = list(plan.todo)
    if keys:
        texts = await summarizer.backend.achat([summarizer.messages_for(plan.first(k)) for k in keys],  # type: ignore[attr-defined]
                                               sampling)
        plan.fill(summarizer, keys, texts, use_cache)
    return plan.summaries()


async def aresolve_summaries(values: Sequence[ContextOrSummary], summarizer: Summarizer | None, *,
                             user_ids: Sequence[str | None] | None = None,
                             refresh: bool = False) -> list[Summary | None]:
    """``resolve_summaries`` with the summarizing done by ``asummarize_batch``."""
    if user_ids is not None:
        return await asyncio.to_thread(resolve_summaries, values, summarizer, user_ids=user_ids, refresh=refresh)
    rows = [i for i, v in enumerate(values) if isinstance(v, (UserContext, dict))]
    resolved = list(values)
    if rows and summarizer is not None:
        summaries = await asummarize_batch(summarizer, [values[i] for i in rows])  # type: ignore[misc]
        for i, summary in zip(rows, summaries, strict=True):
            resolved[i] = summary
    return resolve_summaries(resolved, summarizer)  # only summaries and texts left: no model work


# ---------------------------------------------------------------------------------------
# Judging
# ---------------------------------------------------------------------------------------


async def aprefer(judge: PersonalizedJudge, context: ContextOrSummary, prompt: str, a: str, b: str, *,
                  user_id: str | None = None, refresh: bool = False) -> Preference:
    """``PersonalizedJudge.prefer``; local judges batch concurrent callers through ``prefer_batch``."""
    check_item(prompt, a, b)
    if user_id is None and not refresh and is_local(judge):
        coalescer = coalescer_for(judge, "prefer", judge.prefer_batch, settings_of(judge))
        return await coalescer.submit((context, prompt, a, b))
    user_ids = None if user_id is None else [user_id]
    return (await aprefer_batch(judge, [(context, prompt, a, b)], user_ids=user_ids, refresh=refresh))[0]


async def aprefer_batch(judge: PersonalizedJudge, items: Sequence[JudgeItem], *,
                        user_ids: Sequence[str | None] | None = None, refresh: bool = False) -> list[Preference]:
    """``PersonalizedJudge.prefer_batch``: on the model's worker, or async end to end for a remote LLM judge."""
    for _, prompt, a, b in items:
        check_item(prompt, a, b)
    if is_local(judge):
        return await run_on_worker(judge, lambda: judge.prefer_batch(items, user_ids=user_ids, refresh=refresh))
    summaries = await aresolve_summaries([item[0] for item in items], judge.summarizer, user_ids=user_ids,
                                         refresh=refresh)
    conversations, a_first = judge.llm_conversations(items, summaries)
    answers = await judge.backend.achat(conversations, judge.sampling)  # type: ignore[union-attr]
    return judge.read_llm_answers(items, summaries, a_first, answers)


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------


async def agenerate(generator: PersonalizedGenerator, context: ContextOrSummary, prompt: str, *,
                    max_words: int | None = None, sampling: SamplingConfig | None = None,
                    user_id: str | None = None, refresh: bool = False) -> str:
    """``PersonalizedGenerator.generate``; local generators batch concurrent default-option callers."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if is_local(generator):
        if user_id is None and max_words is None and sampling is None and not refresh:
            coalescer = coalescer_for(generator, "generate", generator.generate_batch, settings_of(generator))
            return await coalescer.submit((context, prompt))
        return await run_on_worker(generator, lambda: generator.generate(
            context, prompt, max_words=max_words, sampling=sampling, user_id=user_id, refresh=refresh))
    summaries = await aresolve_summaries([context], generator.summarizer,
                                         user_ids=None if user_id is None else [user_id], refresh=refresh)
    budget = max_words or generator.max_words
    conversations, sampling = generator.requests_for([(context, prompt)], summaries, budget, sampling)
    texts = await generator.backend.achat(conversations, sampling)  # type: ignore[attr-defined]
    return clip_words(texts[0], budget)
