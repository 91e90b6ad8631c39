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

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import torch

from plus_sdk import prompts
from plus_sdk.backends.base import ChatBackend
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.summarizer import ContextOrSummary, Summarizer, resolve_summaries
from plus_sdk.types import Preference, SamplingConfig, Summary

logger = logging.getLogger(__name__)

#: One judging request: (context or summary, prompt, response a, response b).
JudgeItem = tuple[ContextOrSummary, str, str, str]
#: Decoding for an LLM judge's short answer.
JUDGE_SAMPLING = SamplingConfig(max_new_tokens=8)


def _check_item(prompt: str, a: str, b: str) -> None:
    for name, value in (("prompt", prompt), ("a", a), ("b", b)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string")
    if a.strip() == b.strip():
        raise ValueError("responses a and b are identical; the judge needs two different responses")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class PersonalizedJudge:
    """Predicts a user's preference between two responses."""

    def __init__(self, reward_model: PersonalizedRewardModel | None = None, summarizer: Summarizer | None = None,
                 *, backend: ChatBackend | None = None, debias: bool = False,
                 sampling: SamplingConfig = JUDGE_SAMPLING) -> None:
        if reward_model is None and backend is None:
            raise ValueError("give a reward_model (reward-model judge) or a backend (LLM judge)")
        self.reward_model = reward_model
        self.summarizer = summarizer
        self.backend = backend
        self.debias = debias
        self.sampling = sampling

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None, *, device: str | None = None,
                        dtype: str | torch.dtype | None = None, **kwargs: Any) -> PersonalizedJudge:
        """A reward-model judge from a bundle folder (``card.json``, ``summarizer/``, ``reward/``).

        With no ``path``: the trained default bundle when present, else the embedded default
        base model with an untrained head (a warning says so).
        """
        summarizer = Summarizer.from_pretrained(path, device=device, dtype=dtype,
                                                cache_dir=kwargs.pop("cache_dir", None))
        reward = PersonalizedRewardModel.from_pretrained(path, device=device, dtype=dtype)
        return cls(reward, summarizer, **kwargs)

    @property
    def trained(self) -> bool:
        """True when the reward model comes from a trained bundle."""
        return self.reward_model is not None and self.reward_model.trained

    def summary_for(self, context: ContextOrSummary) -> Summary | None:
        """The summary the judge would use for ``context``."""
        return resolve_summaries([context], self.summarizer)[0]

    def prefer(self, context: ContextOrSummary, prompt: str, a: str, b: str) -> Preference:
        """Which of ``a`` and ``b`` the user described by ``context`` prefers."""
        return self.prefer_batch([(context, prompt, a, b)])[0]

    def prefer_batch(self, items: Sequence[JudgeItem]) -> list[Preference]:
        """Many judgements; each distinct context is summarized once."""
        for _, prompt, a, b in items:
            _check_item(prompt, a, b)
        summaries = resolve_summaries([item[0] for item in items], self.summarizer)
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
            p = _sigmoid(r_a - r_b)
            results.append(Preference(choice="a" if r_a >= r_b else "b", probability=p, rewards=(r_a, r_b),
                                      summary=summary, method="reward_model"))
        return results

    def _prefer_llm(self, items: Sequence[JudgeItem], summaries: list[Summary | None]) -> list[Preference]:
        assert self.backend is not None
        conversations = []
        for (_, prompt, a, b), summary in zip(items, summaries, strict=False):
            text = summary.text if summary else None
            conversations.append(prompts.judge_messages(prompt, a, b, text))
            if self.debias:
                conversations.append(prompts.judge_messages(prompt, b, a, text))
        answers = self.backend.chat(conversations, self.sampling)
        per_item = 2 if self.debias else 1
        results = []
        for i, summary in enumerate(summaries):
            votes = []  # 1.0 = a preferred, 0.0 = b preferred, 0.5 = unparseable
            for k in range(per_item):
                picked = prompts.parse_judge_answer(answers[i * per_item + k])
                if picked is None:
                    logger.warning("LLM judge answer not understood: %r", answers[i * per_item + k][:80])
                    votes.append(0.5)
                else:
                    a_first = k == 0
                    votes.append(1.0 if (picked == 1) == a_first else 0.0)
            p = sum(votes) / len(votes)
            results.append(Preference(choice="a" if p >= 0.5 else "b", probability=p, summary=summary,
                                      method="llm_judge"))
        return results
