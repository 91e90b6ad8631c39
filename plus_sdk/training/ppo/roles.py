"""The two roles Algorithm 1 trains, each behind one small interface, so co-adaptation is one loop.

A **summarizer role** turns a batch's records into the prompt token ids PPO generates from, and
makes those prompts readable for as long as the batch is in use (``reading``):

- ``TextPrompts``: the paper's design, the context rendered as text in the summarizer's prompt;
- ``ReaderPrompts``: the encoder path, a short instruction around soft tokens that the frozen
  context reader (``plus_sdk.context_reader``) makes of each context; ``reading`` sets the
  soft-token table the LM's input embedding looks them up in. A reader with a bank of known
  descriptions adds the line of hints nearest to each context's ê, as the bundle will serve it.
  Ids are plain ints either way, so generation, log-probs and the PPO update do not know which
  role they run on.

A **reward role** scores r(chosen | z) − r(rejected | z) for (summary, record) pairs, takes the
Bradley–Terry NLL steps of step 2 of Algorithm 1, and holds its own weights for checkpoints:

- ``LMReward``: a LoRA adapter and a linear head on a causal LM (``rm.trainer.RewardTrainer``);
- ``EncoderReward``: the small head on frozen sentence embeddings (``rm.encoder.EncoderTrainer``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from plus_sdk import prompts
from plus_sdk.backends.local import SharedBase
from plus_sdk.context_reader import (
    ContextReader,
    PromptCache,
    install_soft_embedding,
    is_reader,
    load_reader,
    save_reader,
    soft_table,
)
from plus_sdk.encoder_reward import EncoderRewardHead, EncoderScorer, is_encoder_reward
from plus_sdk.training.checkpoint import adapter_weights, load_adapter_weights
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.ppo.rollout import summarizer_prompt_ids
from plus_sdk.training.rm.encoder import EncoderSettings, EncoderTrainer
from plus_sdk.training.rm.trainer import RewardTrainer, RMExample, RMTrainConfig, add_reward_lora
from plus_sdk.types import UserContext


class SummarizerPrompts(Protocol):
    """What the loop asks of the summarizer role besides the PPO trainer itself."""

    def prompt_ids(self, records: Sequence[TrainingRecord]) -> list[list[int]]: ...

    def reading(self, records: Sequence[TrainingRecord]) -> contextlib.AbstractContextManager[None]: ...

    def save_pretrained(self, folder: Path) -> None: ...


class RewardRole(Protocol):
    """What the loop asks of the reward role."""

    def margins(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> torch.Tensor: ...

    def update(self, summaries: Sequence[str], records: Sequence[TrainingRecord], *, steps: int,
               batch_size: int) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save_pretrained(self, folder: Path) -> None: ...


def encoder_parts(bundle: Path, *, fresh_reward: bool = False) -> tuple[EncoderScorer, ContextReader]:
    """The frozen parts an encoder-role run reads through, from an encoder-path bundle: the sentence encoder
    with the reward head (a fresh head when ``fresh_reward``), and the context reader."""
    if not (is_reader(bundle / "summarizer") and is_encoder_reward(bundle / "reward")):
        raise ValueError(f"init_from={bundle} is not an encoder-path bundle (summarizer/reader.json and "
                         "reward/encoder_reward.json); roles=encoder starts from one such as general-smollm2")
    scorer = EncoderScorer.load_folder(bundle / "reward")
    if fresh_reward:
        scorer.head = EncoderRewardHead(scorer.head.dim, scorer.head.hidden).eval()
    reader, _ = load_reader(bundle / "summarizer")
    return scorer, reader


# ---------------------------------------------------------------------------------------
# Summarizer prompts
# ---------------------------------------------------------------------------------------


class TextPrompts:
    """The context as text in the summarizer prompt (cached per context)."""

    def __init__(self, tokenizer: Any, task: str, max_prompt_tokens: int) -> None:
        self.tokenizer, self.task, self.max_prompt_tokens = tokenizer, task, max_prompt_tokens
        self._cache: dict[int, list[int]] = {}

    def one(self, record: TrainingRecord) -> list[int]:
        key = hash(record.context.source_hash())
        if key not in self._cache:
            self._cache[key] = summarizer_prompt_ids(self.tokenizer, record.context, self.task,
                                                     self.max_prompt_tokens)
        return self._cache[key]

    def prompt_ids(self, records: Sequence[TrainingRecord]) -> list[list[int]]:
        return [self.one(r) for r in records]

    def reading(self, records: Sequence[TrainingRecord]) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def save_pretrained(self, folder: Path) -> None:
        """Nothing besides the LoRA adapter: the prompt is rendered from the context."""


class ReaderPrompts:
    """Soft tokens of each distinct context of a batch, in slots by first appearance (the reader is frozen)."""

    def __init__(self, base: SharedBase, reader: ContextReader, scorer: EncoderScorer) -> None:
        self.reader = reader.eval()
        self.encoder = scorer.encoder
        self.embedding = install_soft_embedding(base.model)
        self.prompts = PromptCache(base.tokenizer, self.embedding.vocab, reader.k)
        self._described: dict[str, torch.Tensor] = {}  # context hash → ê (the reader and encoder are frozen)

    @staticmethod
    def slots(records: Sequence[TrainingRecord]) -> dict[str, int]:
        """Context hash → slot, in order of first appearance."""
        slots: dict[str, int] = {}
        for record in records:
            slots.setdefault(record.context.source_hash(), len(slots))
        return slots

    @torch.no_grad()
    def described(self, contexts: Sequence[UserContext]) -> torch.Tensor:
        """ê of ``contexts`` ``[n, dim]``, computed once per context and reused by prompts and soft tokens."""
        keys = [c.source_hash() for c in contexts]
        missing = {key: c for key, c in zip(keys, contexts, strict=True) if key not in self._described}
        if missing:
            fresh = self.reader.describe(self.reader.features(self.encoder, list(missing.values())))
            self._described.update(zip(missing, fresh, strict=True))
        return torch.stack([self._described[key] for key in keys])

    def hints(self, records: Sequence[TrainingRecord]) -> list[list[str]]:
        """The reader's hints for each record's context (none without a bank)."""
        if not self.reader.hint_texts:
            return [[] for _ in records]
        return self.reader.hints(self.described([r.context for r in records]))

    def prompt_ids(self, records: Sequence[TrainingRecord]) -> list[list[int]]:
        slots = self.slots(records)
        return [self.prompts.ids(slots[r.context.source_hash()], hints)
                for r, hints in zip(records, self.hints(records), strict=True)]

    @contextlib.contextmanager
    def reading(self, records: Sequence[TrainingRecord]) -> Iterator[None]:
        """The soft-token table of ``records``' contexts, visible to the LM for the duration."""
        first = {r.context.source_hash(): r.context for r in records}
        with torch.no_grad():
            soft = self.reader.soft_tokens(self.described(list(first.values())))
        with soft_table(self.embedding, soft.reshape(-1, soft.shape[-1])):
            yield

    def save_pretrained(self, folder: Path) -> None:
        """The (frozen) reader beside the LoRA adapter, so the bundle loads as an encoder-path summarizer."""
        save_reader(self.reader, self.encoder.name, folder)


# ---------------------------------------------------------------------------------------
# Reward roles
# ---------------------------------------------------------------------------------------


def _chunks(examples: list[Any], steps: int, batch_size: int) -> Iterator[list[Any]]:
    """``steps`` batches of ``batch_size`` examples, cycling through ``examples`` in order."""
    size = min(batch_size, len(examples))
    for step in range(steps):
        start = (step * size) % len(examples)
        yield (examples + examples)[start:start + size]


def _mean_logs(outs: list[dict[str, Any]], steps: int) -> dict[str, float]:
    totals: dict[str, float] = {}
    for out in outs:
        for key, value in out.items():
            if isinstance(value, (int, float)):
                totals[f"rm_{key}"] = totals.get(f"rm_{key}", 0.0) + float(value)
    return {key: value / max(steps, 1) for key, value in totals.items()}


class LMReward:
    """The paper's reward model: a LoRA adapter ``reward`` and a head on a causal LM."""

    def __init__(self, base: SharedBase, config: RMTrainConfig, *, total_steps: int, accelerator: Any = None) -> None:
        self.base = base
        self.model = add_reward_lora(base, config, name="reward")
        self.trainer = RewardTrainer(self.model, config, total_steps=total_steps, accelerator=accelerator)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return self.trainer.params

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    @torch.no_grad()
    def margins(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> torch.Tensor:
        sequences: list[list[int]] = []
        for summary, record in zip(summaries, records, strict=True):
            condition = prompts.summary_condition(summary)
            sequences.append(self.model.encode(record.prompt, record.chosen, condition))
            sequences.append(self.model.encode(record.prompt, record.rejected, condition))
        rewards = self.model.score_ids(sequences)
        return rewards[0::2] - rewards[1::2]

    def update(self, summaries: Sequence[str], records: Sequence[TrainingRecord], *, steps: int,
               batch_size: int) -> dict[str, float]:
        examples = [RMExample(condition=prompts.summary_condition(s), prompt=r.prompt, chosen=r.chosen,
                              rejected=r.rejected) for s, r in zip(summaries, records, strict=True)]
        out = _mean_logs([self.trainer.step(chunk) for chunk in _chunks(examples, steps, batch_size)], steps)
        out["rm_step"] = float(self.trainer.step_count)  # the counter itself, not its mean
        return out

    def save_pretrained(self, folder: Path) -> None:
        self.model.save_pretrained(folder)

    def warm_start(self, weights: dict[str, Any]) -> None:
        load_adapter_weights(self.base, "reward", weights["reward"])
        self.model.head.load_state_dict({k: v.to(self.model.head.linear.weight.dtype)
                                         for k, v in weights["reward_head"].items()})

    def state_dict(self) -> dict[str, Any]:
        return {"reward": adapter_weights(self.base, "reward"),
                "reward_head": {k: v.detach().cpu().clone() for k, v in self.model.head.state_dict().items()},
                "rm_trainer": self.trainer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_adapter_weights(self.base, "reward", state["reward"])
        self.model.head.load_state_dict(state["reward_head"])
        self.trainer.load_state_dict(state["rm_trainer"])


class EncoderReward:
    """The encoder-path reward model: a small head on frozen sentence embeddings of summary, prompt and reply."""

    def __init__(self, scorer: EncoderScorer, settings: EncoderSettings, *, total_steps: int) -> None:
        self.scorer = scorer
        self.trainer = EncoderTrainer(scorer, settings, total_steps=total_steps, condition=lambda r, s, i: None)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return list(self.scorer.head.parameters())

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    @torch.no_grad()
    def margins(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> torch.Tensor:
        return self.trainer.predict(list(records), list(summaries))[1]

    def update(self, summaries: Sequence[str], records: Sequence[TrainingRecord], *, steps: int,
               batch_size: int) -> dict[str, float]:
        rows = list(zip(records, summaries, strict=True))
        outs = [self.trainer.fit([r for r, _ in chunk], [s for _, s in chunk])
                for chunk in _chunks(rows, steps, batch_size)]
        out = _mean_logs(outs, steps)
        out["rm_step"] = float(self.trainer.step_count)
        return out

    def save_pretrained(self, folder: Path) -> None:
        self.scorer.save_pretrained(folder)

    def state_dict(self) -> dict[str, Any]:
        return {"encoder_reward": self.trainer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state["encoder_reward"])
