"""Training the encoder-path reward model: a small head on frozen sentence embeddings.

``plus train-rm`` with ``backbone: encoder`` trains ``EncoderRewardHead`` (``plus_sdk.encoder_reward``)
by the Bradley–Terry loss −log σ(r(chosen | z) − r(rejected | z)). What stands in for z depends on
the method, exactly as on the causal-LM path:

- ``btl``: nothing (the head's shared part alone);
- ``oracle``: the user's true description; with ``wordings: train`` a hand-written wording drawn at
  random per row and step (``training.data.wordings``), so the head learns what descriptions mean,
  not 18 strings;
- ``summary``: the summary a summarizer writes of the row's context (PLUS-untrained with the bare
  base, or a trained summarizer bundle).

Every text is embedded once (the encoder caches by text hash), so a step costs a few
milliseconds and a run of thousands of steps takes seconds once the embeddings exist.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from plus_sdk.encoder_reward import EncoderScorer
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.wordings import describe_record
from plus_sdk.training.optim import scheduled

WordingSplit = Literal["dataset", "train", "heldout", "typed"]
#: The head's learning rate falls from ``lr`` to ``lr × MIN_LR_RATIO`` along a cosine over the run.
MIN_LR_RATIO = 0.1


class EncoderSettings(StrictConfig):
    """The encoder-path reward model (``backbone: encoder``)."""

    name: str | None = Field(None, description="Sentence encoder: a sentence-transformers folder or hub id "
                                               "(null: all-MiniLM-L6-v2 from its PyPI package, offline).")
    hidden: int = Field(256, ge=8, description="Width of the head's reply and user towers.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the head.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay of the head.")
    batch_size: int = Field(64, ge=1, description="Pairs per optimizer step.")
    wordings: WordingSplit = Field("dataset", description="method=oracle: 'dataset' uses each row's own "
                                   "description; 'train' draws a hand-written train wording per row and step.")
    eval_wordings: WordingSplit = Field("dataset", description="method=oracle: the descriptions evaluation "
                                        "conditions on ('heldout' and 'typed' wordings test generality).")
    wording_variants: int = Field(8, ge=1, description="method=oracle with drawn wordings: descriptions drawn per "
                                  "row, embedded once up front; each step uses one of them in turn.")
    vpl_latent: int = Field(32, ge=1, description="method=vpl: width of the latent user vector z.")
    vpl_kl_weight: float = Field(0.01, ge=0, description="method=vpl: β, the weight of KL(q(z | c) ‖ N(0, I)) in the "
                                 "loss (per latent dimension, averaged over rows).")


def draw_wording(record: TrainingRecord, split: WordingSplit, seed: str) -> str:
    """The description of ``record``'s user under ``split`` (seeded: the same seed gives the same text)."""
    if split == "dataset":
        if not record.oracle:
            raise ValueError(f"record of user {record.user_id} has no 'oracle' description; the oracle method "
                             "needs datasets that describe each user")
        return record.oracle

    return describe_record(record, random.Random(seed), split)


class HeadOptimizer:
    """AdamW with the cosine schedule over trainable ``modules`` (the head first), and their state for checkpoints."""

    def __init__(self, modules: dict[str, nn.Module], settings: EncoderSettings, *, total_steps: int) -> None:
        self.modules = modules
        self.params = [p for module in modules.values() for p in module.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.schedule = scheduled(self.optimizer, schedule="cosine", total=total_steps, warmup_ratio=0.0,
                                  floor=MIN_LR_RATIO)
        self.step_count = 0

    def train_mode(self, on: bool) -> None:
        for module in self.modules.values():
            module.train(on)

    def update(self, loss: torch.Tensor) -> float:
        """One optimizer step on ``loss`` (gradients clipped to norm 1); returns the learning rate after it."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.step_count += 1
        return float(self.schedule.get_last_lr()[0])

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: module.state_dict() for name, module in self.modules.items()}
        return {**state, "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "step": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step_count = int(state["step"])


class EncoderTrainer(HeadOptimizer):
    """Adam on the head of an ``EncoderScorer``; conditions come from ``condition(record, step, row)``."""

    def __init__(self, scorer: EncoderScorer, settings: EncoderSettings, *, total_steps: int,
                 condition: Callable[[TrainingRecord, int, int], str | None]) -> None:
        self.scorer = scorer
        self.settings = settings
        self.condition = condition
        self.head = scorer.head
        super().__init__({"head": self.head}, settings, total_steps=total_steps)

    def prepare(self, records: Sequence[TrainingRecord], *, progress: bool = False) -> None:
        """Embed every prompt, reply and known condition of ``records`` once, in one batch."""
        texts = {t for r in records for t in (r.prompt, r.chosen, r.rejected)}
        bank = getattr(self.condition, "bank", None)
        if bank is not None:
            texts |= bank(records)
        self.scorer.encoder.encode(sorted(texts), progress=progress)

    def margins(self, records: Sequence[TrainingRecord], conditions: Sequence[str | None]) -> torch.Tensor:
        """r(chosen | z) − r(rejected | z) for each row (with gradients when enabled)."""
        items = [(c, r.prompt, r.chosen) for r, c in zip(records, conditions, strict=True)]
        items += [(c, r.prompt, r.rejected) for r, c in zip(records, conditions, strict=True)]
        feats = self.scorer.features(items)
        rewards = self.head(feats["summary"], feats["has_summary"], feats["prompt"], feats["reply"])
        return rewards[: len(records)] - rewards[len(records):]

    def step(self, records: Sequence[TrainingRecord]) -> dict[str, float]:
        """One Bradley–Terry step on a batch, conditioned as ``condition`` says."""
        return self.fit(records, [self.condition(r, self.step_count, i) for i, r in enumerate(records)])

    def fit(self, records: Sequence[TrainingRecord], conditions: Sequence[str | None]) -> dict[str, float]:
        """One Bradley–Terry step on a batch under the given conditions (e.g. fresh summaries)."""
        self.train_mode(True)
        margin = self.margins(records, conditions)
        loss = -F.logsigmoid(margin).mean()
        lr = self.update(loss)
        self.train_mode(False)
        margin = margin.detach()
        return {"loss": loss.item(), "accuracy": float((margin > 0).float().mean()), "margin": float(margin.mean()),
                "lr": lr}

    @torch.no_grad()
    def predict(self, records: Sequence[TrainingRecord], conditions: Sequence[str | None] | None = None,
                batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(chosen wins), margin) of every row, in order (``conditions``: default the eval condition)."""
        if conditions is None:
            conditions = [self.condition(r, -1, i) for i, r in enumerate(records)]
        margins = [self.margins(records[s:s + batch_size], conditions[s:s + batch_size])
                   for s in range(0, len(records), batch_size)]
        margin = torch.cat(margins) if margins else torch.empty(0)
        return torch.sigmoid(margin), margin


class OracleCondition:
    """Conditions of ``method=oracle``: one of ``wording_variants`` drawn descriptions per row, in turn by
    step; evaluation (step −1) draws from ``eval_wordings``. ``bank`` lists every training condition."""

    def __init__(self, settings: EncoderSettings, seed: int) -> None:
        self.settings = settings
        self.seed = seed

    def variant(self, record: TrainingRecord, k: int) -> str:
        return draw_wording(record, self.settings.wordings, f"train/{self.seed}/{k}/{record.user_id}/{record.prompt}")

    def __call__(self, record: TrainingRecord, step: int, row: int) -> str | None:
        if step < 0:
            return draw_wording(record, self.settings.eval_wordings,
                                f"eval/{self.seed}/{record.user_id}/{record.prompt}")
        return self.variant(record, (step + row) % self.settings.wording_variants)

    def bank(self, records: Sequence[TrainingRecord]) -> set[str]:
        """Every description training may condition on (embedded up front)."""
        return {self.variant(r, k) for r in records for k in range(self.settings.wording_variants)}


def oracle_condition(settings: EncoderSettings, seed: int) -> OracleCondition:
    """The conditions of ``method=oracle`` (see ``OracleCondition``)."""
    return OracleCondition(settings, seed)
