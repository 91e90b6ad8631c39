"""PersonalizedJudge: which of two responses would this user prefer?

Two modes behind one API, both returning a ``Preference``:

- **reward model** (default): summarize the user's context once (cached), score both
  responses with a ``PersonalizedRewardModel`` conditioned on the summary, and report
  P(a ≻ b) = σ(r_a − r_b).
- **LLM as judge**: any ``ChatBackend`` (a local model, an OpenAI-compatible server, vLLM)
  is asked which option the user prefers, with the summary in its prompt; with
  ``debias=True`` both option orders are asked, cancelling position bias.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from plus_sdk import prompts
from plus_sdk.backends import as_backend
from plus_sdk.backends.base import ChatBackend
from plus_sdk.bundle import card_for, quiet_loads, save_bundle
from plus_sdk.coalesce import CoalesceSettings, coalescer_for, is_local, run_on_worker, settings_of
from plus_sdk.inputs import ContextOrSummary, aresolve_summaries, check_item, resolve_summaries
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.store import attach_store
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import Preference, SamplingConfig, Summary, choice_for

logger = logging.getLogger(__name__)

#: One judging request: (context or summary, prompt, response a, response b).
JudgeItem = tuple[ContextOrSummary, str, str, str]
#: Decoding for an LLM judge's short answer (room for "The user would prefer Option 2.").
JUDGE_SAMPLING = SamplingConfig(max_new_tokens=32)
#: LLM-judge prompt layouts: the summary in the system turn (default) or inline before the question.
JUDGE_PROMPTS = {"system": prompts.judge_messages_system, "inline": prompts.judge_messages}


def parse_choice(answer: str, option_1: str, option_2: str) -> int | None:
    """Which option (1 or 2) a judge's answer picks, or None.

    First the ``Option 1`` / ``Option 2`` forms (``prompts.parse_judge_answer``); failing that,
    an answer that quotes the start of exactly one option's text picks that option.
    """
    picked = prompts.parse_judge_answer(answer)
    if picked is not None:
        return picked
    text = " ".join(answer.lower().split())
    heads = [" ".join(option.lower().split())[:40] for option in (option_1, option_2)]
    quoted = [bool(head) and head in text for head in heads]
    if quoted[0] != quoted[1]:
        return 1 if quoted[0] else 2
    return None


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class PersonalizedJudge:
    """Predicts a user's preference between two responses."""

    def __init__(self, reward_model: PersonalizedRewardModel | None = None, summarizer: Summarizer | None = None,
                 *, backend: ChatBackend | str | None = None, backend_options: dict[str, Any] | None = None,
                 debias: bool = False, order_seed: int | None = None, prompt_style: str = "system",
                 sampling: SamplingConfig = JUDGE_SAMPLING, store: Any = None,
                 coalesce: CoalesceSettings | None = None) -> None:
        """``backend``: a ``ChatBackend`` or a kind (``"local"``, ``"openai"``, ``"vllm"``) built with
        ``backend_options``. LLM-judge options: ``debias`` asks both option orders; ``order_seed``
        shuffles which response is shown first, per query (the same query always gets the same
        order, with or without a summary); ``None`` shows ``a`` first; ``prompt_style``: ``"system"``
        (summary in the system turn) or ``"inline"`` (just before the question). ``store``: a ``SummaryStore``
        (attached to the summarizer) so ``prefer(..., user_id=)`` reuses and records summaries.
        ``coalesce``: window and batch size of ``aprefer`` (None: defaults for the model's device)."""
        if prompt_style not in JUDGE_PROMPTS:
            raise ValueError(f"prompt_style={prompt_style!r} is unknown; use one of {', '.join(JUDGE_PROMPTS)}")
        if reward_model is None and backend is None:
            raise ValueError("give a reward_model (reward-model judge) or a backend (LLM judge)")
        self.reward_model = reward_model
        self.summarizer = summarizer
        if store is not None:
            attach_store(summarizer, store)
        self.backend = as_backend(backend, backend_options) if backend is not None else None
        self.debias = debias
        self.order_seed = order_seed
        self.prompt_style = prompt_style
        self.sampling = sampling
        self.coalesce = coalesce

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None, *, device: str | None = None,
                        dtype: str | torch.dtype | None = None, quiet: bool = False,
                        **kwargs: Any) -> PersonalizedJudge:
        """A reward-model judge from a bundle folder (``card.json``, ``summarizer/``, ``reward/``) or a bundle
        name (looked up in ``./adapters/``, the shipped bundles, then the user bundle folder).

        With no ``path``: the trained default bundle when present, else the embedded default
        base model with an untrained head (a warning says so). One line on stderr says which bundle
        was loaded, unless ``quiet`` (or ``PLUS_SDK_QUIET=1``).
        """
        with quiet_loads(quiet):
            summarizer = Summarizer.from_pretrained(path, device=device, dtype=dtype,
                                                    cache_dir=kwargs.pop("cache_dir", None))
            reward = PersonalizedRewardModel.from_pretrained(path, device=device, dtype=dtype)
        return cls(reward, summarizer, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike[str], *, name: str | None = None) -> None:
        """Save this judge as an adapter bundle that ``from_pretrained(folder)`` loads back."""

        if self.reward_model is None:
            raise ValueError("only a reward-model judge can be saved; an LLM judge has no weights of its own")
        card = self.reward_model.card or card_for(self.summarizer, self.reward_model.base_name,
                                                  name=name or Path(folder).name)
        save_bundle(folder, card, self.summarizer, self.reward_model)

    @property
    def trained(self) -> bool:
        """True when the reward model comes from a trained bundle."""
        return self.reward_model is not None and self.reward_model.trained

    def summary_for(self, context: ContextOrSummary, *, user_id: str | None = None) -> Summary | None:
        """The summary the judge would use for ``context`` (and ``user_id``, with a store)."""
        return resolve_summaries([context], self.summarizer, user_ids=None if user_id is None else [user_id])[0]

    def prefer(self, context: ContextOrSummary, prompt: str, a: str, b: str, *, user_id: str | None = None,
               refresh: bool = False) -> Preference:
        """Which of ``a`` and ``b`` the user described by ``context`` prefers.

        ``user_id``: use and update that user's stored summary (needs ``store=``); ``context``
        may then be ``None`` to judge with the stored summary alone."""
        return self.prefer_batch([(context, prompt, a, b)], user_ids=None if user_id is None else [user_id],
                                 refresh=refresh)[0]

    def prefer_batch(self, items: Sequence[JudgeItem], *, user_ids: Sequence[str | None] | None = None,
                     refresh: bool = False) -> list[Preference]:
        """Many judgements; each distinct context is summarized once (``user_ids``: see ``prefer``)."""
        for i, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 4:
                size = f"{len(item)} values" if isinstance(item, (tuple, list)) else type(item).__name__
                raise TypeError(f"items[{i}] must be a 4-tuple (context, prompt, a, b), got {size}")
            check_item(*item[1:])
        summaries = resolve_summaries([item[0] for item in items], self.summarizer, user_ids=user_ids,
                                      refresh=refresh)
        if self.backend is not None and self.reward_model is None:
            return self._prefer_llm(items, summaries)
        return self._prefer_reward(items, summaries)

    def _prefer_reward(self, items: Sequence[JudgeItem], summaries: list[Summary | None]) -> list[Preference]:
        assert self.reward_model is not None
        triples: list[tuple[Summary | None, str, str]] = []
        for (_, prompt, a, b), summary in zip(items, summaries, strict=False):
            triples += [(summary, prompt, a), (summary, prompt, b)]
        rewards = self.reward_model.score_batch(triples)
        results = []
        for i, summary in enumerate(summaries):
            r_a, r_b = rewards[2 * i], rewards[2 * i + 1]
            p = 0.5 if r_a == r_b else _sigmoid(r_a - r_b)
            results.append(Preference(choice=choice_for(p), probability=p, rewards=(r_a, r_b),
                                      summary=summary, method="reward_model"))
        return results

    def a_shown_first(self, prompt: str, a: str, b: str) -> bool:
        """Whether the LLM judge shows ``a`` as Option 1 (seeded per query; see ``order_seed``)."""
        if self.order_seed is None:
            return True
        blob = f"{self.order_seed}\x1f{prompt}\x1f{a}\x1f{b}".encode()
        return hashlib.sha256(blob).digest()[0] % 2 == 0

    def _prefer_llm(self, items: Sequence[JudgeItem], summaries: list[Summary | None]) -> list[Preference]:
        assert self.backend is not None
        conversations, a_first_flags = self.llm_conversations(items, summaries)
        return self.read_llm_answers(items, summaries, a_first_flags, self.backend.chat(conversations, self.sampling))

    def llm_conversations(self, items: Sequence[JudgeItem], summaries: list[Summary | None],
                          ) -> tuple[list[list[dict[str, str]]], list[bool]]:
        """The LLM-judge prompts of ``items`` (two per item with ``debias``) and whether ``a`` came first."""
        conversations = []
        a_first_flags: list[bool] = []
        for (_, prompt, a, b), summary in zip(items, summaries, strict=False):
            text = summary.text if summary else None
            orders = [self.a_shown_first(prompt, a, b)]
            if self.debias:
                orders.append(not orders[0])
            for a_first in orders:
                first, second = (a, b) if a_first else (b, a)
                conversations.append(JUDGE_PROMPTS[self.prompt_style](prompt, first, second, text))
                a_first_flags.append(a_first)
        return conversations, a_first_flags

    def read_llm_answers(self, items: Sequence[JudgeItem], summaries: list[Summary | None],
                         a_first_flags: list[bool], answers: list[str]) -> list[Preference]:
        """``Preference``s from the LLM judge's answers to ``llm_conversations``."""
        per_item = 2 if self.debias else 1
        results = []
        for i, summary in enumerate(summaries):
            votes = []  # 1.0 = a preferred, 0.0 = b preferred, 0.5 = unparseable
            _, _, a, b = items[i]
            for k in range(per_item):
                a_first = a_first_flags[i * per_item + k]
                answer = answers[i * per_item + k]
                picked = parse_choice(answer, *((a, b) if a_first else (b, a)))
                if picked is None:
                    logger.warning("LLM judge answer not understood: %r", answer[:80])
                    votes.append(0.5)
                else:
                    votes.append(1.0 if (picked == 1) == a_first else 0.0)
            p = sum(votes) / len(votes)
            results.append(Preference(choice=choice_for(p), probability=p, summary=summary,
                                      method="llm_judge"))
        return results

    async def aprefer(self, context: ContextOrSummary, prompt: str, a: str, b: str, *, user_id: str | None = None,
                      refresh: bool = False) -> Preference:
        """``prefer`` without blocking the event loop; a local judge batches concurrent callers through
        ``prefer_batch`` (``plus_sdk.coalesce``)."""
        check_item(prompt, a, b)
        if user_id is None and not refresh and is_local(self):
            coalescer = coalescer_for(self, "prefer", self.prefer_batch, settings_of(self))
            return await coalescer.submit((context, prompt, a, b))
        user_ids = None if user_id is None else [user_id]
        return (await self.aprefer_batch([(context, prompt, a, b)], user_ids=user_ids, refresh=refresh))[0]

    async def aprefer_batch(self, items: Sequence[JudgeItem], *, user_ids: Sequence[str | None] | None = None,
                            refresh: bool = False) -> list[Preference]:
        """``prefer_batch`` on the model's worker thread, or async end to end for a remote LLM judge."""
        for _, prompt, a, b in items:
            check_item(prompt, a, b)
        if is_local(self):
            return await run_on_worker(self, lambda: self.prefer_batch(items, user_ids=user_ids, refresh=refresh))
        summaries = await aresolve_summaries([item[0] for item in items], self.summarizer, user_ids=user_ids,
                                             refresh=refresh)
        conversations, a_first = self.llm_conversations(items, summaries)
        answers = await self.backend.achat(conversations, self.sampling)  # type: ignore[union-attr]
        return self.read_llm_answers(items, summaries, a_first, answers)
