"""The one reward-model trainer shared by every LM-based method (and by co-adaptation).

``add_reward_lora`` puts a fresh trainable LoRA adapter (named ``reward`` by default) and a
head on a ``SharedBase``; ``RewardTrainer`` optimizes exactly those parameters — the
adapter's LoRA weights (names containing ``.{adapter}.``) and the head — with AdamW, linear
warmup then cosine decay, gradient accumulation over micro-batches, clipping, and the
method's pairwise loss (Bradley–Terry by default). Other adapters on the same base (the
summarizer and critic of PPO) are never touched.

Distributed: pass an ``accelerate.Accelerator``; gradients are averaged over processes before
clipping, so the same code runs on one CPU, one GPU, or DDP. Nothing needs ``accelerate
launch`` on one process.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from pydantic import Field

from plus_sdk.backends.local import SharedBase
from plus_sdk.reward import PersonalizedRewardModel, RewardHead
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.rm.base import PairOutput, RewardMethod, RMExample

logger = logging.getLogger(__name__)

__all__ = ["RMExample", "RMTrainConfig", "RewardTrainer", "adapter_parameters", "add_reward_lora"]


class RMTrainConfig(StrictConfig):
    """Optimizer and adapter settings of the reward-model trainer (CPU-friendly defaults)."""

    lr: float = Field(1e-4, gt=0, description="Peak AdamW learning rate (paper 9e-6 at 3B; 1e-4 suits LoRA on 135M).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.03, ge=0, le=1, description="Share of steps with linear warmup (paper 3 %).")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine decay ends at lr × this.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam betas (paper 0.9, 0.95).")
    grad_clip: float = Field(1.0, gt=0, description="Global gradient-norm clip (paper 1).")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step (gradient accumulation).")
    batch_size: int = Field(8, ge=1, description="Pairs per optimizer step (all micro-batches together).")
    lora_r: int = Field(8, ge=1, description="LoRA rank of the reward adapter.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha of the reward adapter.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout of the reward adapter.")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                      description="Module names that get LoRA layers.")
    lora_top_layers: int | None = Field(None, ge=1, description="Put LoRA only on the top N transformer layers "
                                        "(cheaper backward; none = every layer).")
    max_length: int = Field(1024, ge=16, description="Longest reward-model input in tokens.")
    bf16: bool = Field(False, description="Run forward passes under bf16 autocast (GPU; ignored where unsupported).")
    seed: int = Field(0, description="Seed of the adapter initialisation and of dropout.")


def adapter_parameters(model: Any, adapter_name: str) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs of one LoRA adapter: names containing ``.{adapter_name}.``."""
    marker = f".{adapter_name}."
    found = [(name, p) for name, p in model.named_parameters() if marker in name]
    if not found:
        raise ValueError(f"the model has no parameters of adapter {adapter_name!r}; create it with "
                         f"add_reward_lora / SharedBase.add_new_adapter first")
    return found


def lora_config(config: RMTrainConfig, num_layers: int | None = None) -> Any:
    """The peft ``LoraConfig`` of the reward adapter (``num_layers``: the backbone's, for lora_top_layers)."""
    from peft import LoraConfig

    layers = None
    if config.lora_top_layers is not None and num_layers is not None:
        layers = list(range(max(num_layers - config.lora_top_layers, 0), num_layers))
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), bias="none", layers_to_transform=layers)


def add_reward_lora(base: SharedBase, config: RMTrainConfig, name: str = "reward", *,
                    out_features: int = 1) -> PersonalizedRewardModel:
    """Add a trainable LoRA adapter ``name`` and a fresh head to ``base``; return the reward model."""
    from plus_sdk.backends.local import LocalModel

    torch.manual_seed(config.seed)
    base.add_new_adapter(name, lora_config(config, getattr(base.model.config, "num_hidden_layers", None)))
    hidden = base.model.config.hidden_size
    head = RewardHead(hidden, out_features).to(dtype=base.model.dtype)
    return PersonalizedRewardModel(LocalModel(base, name), head, max_length=config.max_length,
                                   batch_size=config.batch_size * 2)


def warmup_cosine(step: int, *, total: int, warmup: int, floor: float) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine down to ``floor``."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class RewardTrainer:
    """Optimizes one reward adapter + head with a pairwise loss."""

    def __init__(self, reward_model: PersonalizedRewardModel, config: RMTrainConfig, *, total_steps: int,
                 method: RewardMethod | None = None, accelerator: Any = None) -> None:
        self.rm = reward_model
        self.config = config
        self.method = method or RewardMethod()
        self.accelerator = accelerator
        self.total_steps = max(int(total_steps), 1)
        if reward_model.model.adapter is None:
            raise ValueError("the reward model has no LoRA adapter to train; build it with add_reward_lora")
        if reward_model.head.linear.out_features != self.method.out_features:
            raise ValueError(f"method {self.method.name!r} needs a head with {self.method.out_features} outputs, "
                             f"the reward model has {reward_model.head.linear.out_features}")
        self.named = adapter_parameters(reward_model.model.base.model, reward_model.model.adapter)
        self.named += [(f"head.{n}", p) for n, p in reward_model.head.named_parameters()]
        for _, p in self.named:
            p.requires_grad_(True)
        self.params = [p for _, p in self.named]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, betas=tuple(config.betas),
                                           weight_decay=config.weight_decay)
        warmup = round(config.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, total=self.total_steps, warmup=warmup,
                                                     floor=config.min_lr_ratio))
        self.step_count = 0

    # ------------------------------------------------------------------ helpers
    @property
    def world_size(self) -> int:
        """Processes sharing the training (accelerate's, else torch.distributed's, else 1)."""
        if self.accelerator is not None:
            return int(getattr(self.accelerator, "num_processes", 1) or 1)
        import torch.distributed as dist

        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        device = self.rm.device
        if self.config.bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def mode(self, training: bool) -> Iterator[None]:
        """Put the shared model in train/eval mode for the duration, then restore it."""
        model = self.rm.model.base.model
        was = model.training
        model.train(training)
        try:
            yield
        finally:
            model.train(was)

    def encode(self, examples: Sequence[RMExample]) -> list[list[int]]:
        """Token ids of [chosen_0, rejected_0, chosen_1, ...]."""
        sequences: list[list[int]] = []
        for ex in examples:
            sequences.append(self.rm.encode(ex.prompt, ex.chosen, ex.condition))
            sequences.append(self.rm.encode(ex.prompt, ex.rejected, ex.condition))
        return sequences

    def pair_output(self, examples: Sequence[RMExample]) -> PairOutput:
        """Forward the chosen and rejected responses of ``examples`` and apply the method."""
        ids, mask = self.rm.collate(self.encode(examples))
        with self.autocast():
            out = self.rm.forward(ids, mask).float()
        return self.method.pair(out[0::2], out[1::2])

    def micro_batches(self, batch: Sequence[RMExample]) -> list[Sequence[RMExample]]:
        size = max(math.ceil(len(batch) / self.config.grad_accum), 1)
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    def all_reduce_grads(self) -> None:
        """Average gradients over processes (DDP without wrapping the shared model)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(self.world_size)

    # ------------------------------------------------------------------ training
    def step(self, batch: Sequence[RMExample]) -> dict[str, float]:
        """One optimizer step on ``batch`` (accumulated over ``grad_accum`` micro-batches)."""
        if not batch:
            raise ValueError("RewardTrainer.step got an empty batch")
        batch = list(batch)
        totals = {"loss": 0.0, "accuracy": 0.0, "margin": 0.0}
        with self.mode(True):
            for micro in self.micro_batches(batch):
                out = self.pair_output(micro)
                share = len(micro) / len(batch)
                (out.loss * share).backward()
                totals["loss"] += float(out.loss.detach()) * share
                totals["accuracy"] += float((out.prob.detach() > 0.5).float().sum()) / len(batch)
                totals["margin"] += float(out.margin.detach().sum()) / len(batch)
        self.all_reduce_grads()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return {**totals, "lr": float(lr), "grad_norm": float(grad_norm), "step": float(self.step_count)}

    @torch.no_grad()
    def predict(self, examples: Sequence[RMExample],
                batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(chosen wins), margin) of every example, in order, in eval mode."""
        probs, margins, _ = self._eval_pass(examples, batch_size)
        return probs, margins

    @torch.no_grad()
    def evaluate(self, examples: Sequence[RMExample]) -> dict[str, float]:
        """Loss, accuracy and mean margin on ``examples`` (no parameter changes)."""
        probs, margins, loss = self._eval_pass(examples)
        if not len(probs):
            return {"loss": 0.0, "accuracy": 0.0, "margin": 0.0}
        return {"loss": loss, "accuracy": float((probs > 0.5).float().mean()), "margin": float(margins.mean())}

    def _eval_pass(self, examples: Sequence[RMExample],
                   batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One eval-mode pass: win probabilities, margins and the mean loss."""
        size = batch_size or self.config.batch_size
        probs, margins, loss = [], [], 0.0
        with self.mode(False):
            for start in range(0, len(examples), size):
                chunk = examples[start : start + size]
                out = self.pair_output(chunk)
                probs.append(out.prob.float().cpu())
                margins.append(out.margin.float().cpu())
                loss += float(out.loss) * len(chunk)
        if not probs:
            return torch.empty(0), torch.empty(0), 0.0
        return torch.cat(probs), torch.cat(margins), loss / len(examples)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Trainable weights, optimizer, scheduler, step counter and RNG state (for resume)."""
        return {
            "weights": {name: p.detach().cpu().clone() for name, p in self.named},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step_count": self.step_count,
            "rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved (weights are optional)."""
        weights = state.get("weights") or {}
        missing = [name for name, _ in self.named if weights and name not in weights]
        if missing:
            raise KeyError(f"checkpoint lacks trainable weights {missing[:3]}...; was it saved for adapter "
                           f"{self.rm.model.adapter!r}?")
        with torch.no_grad():
            for name, p in self.named:
                if name in weights:
                    p.copy_(weights[name].to(p.device, p.dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count = int(state["step_count"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])
