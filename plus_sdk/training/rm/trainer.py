"""The one reward-model trainer shared by every LM-based method (and by co-adaptation).

``add_reward_lora`` puts a fresh trainable LoRA adapter (named ``reward`` by default) and a
head on a ``SharedBase``; ``RewardTrainer`` optimizes exactly those parameters — the
adapter's LoRA weights (names containing ``.{adapter}.``) and the head — with AdamW, linear
warmup then cosine decay, gradient accumulation over micro-batches, clipping, and the
method's pairwise loss (Bradley–Terry by default). Other adapters on the same base (the
summarizer and critic of PPO) are never touched.

Distributed: pass an ``accelerate.Accelerator``; gradients are averaged over processes before
clipping, so the same code runs on one CPU, one GPU, or DDP. Nothing needs ``accelerate
launch`` on one process. Launched with a DeepSpeed config (``training/accelerate/zero2.yaml``,
``zero3.yaml``), the backbone + head are wrapped as one module in a DeepSpeed engine, which then
owns gradient reduction, clipping, accumulation and the optimizer step; this needs
a reward model that does not share its base with other roles (``plus train-rm``, not PPO).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from pydantic import Field

from plus_sdk.backends.local import LocalModel, SharedBase
from plus_sdk.reward import PersonalizedRewardModel, RewardHead
from plus_sdk.training.config import LoraSettings, StrictConfig
from plus_sdk.training.distributed import dist_info, reduce_mean
from plus_sdk.training.optim import adapter_parameters, all_reduce_grads, build_adamw, scheduled
from plus_sdk.training.rm.base import PairOutput, RewardMethod, RMExample

logger = logging.getLogger(__name__)

__all__ = ["RMExample", "RMTrainConfig", "RewardNetwork", "RewardTrainer", "adapter_parameters",
           "add_reward_lora", "uses_deepspeed"]


def uses_deepspeed(accelerator: Any) -> bool:
    """True when ``accelerator`` was set up for DeepSpeed (``accelerate launch`` with a DeepSpeed config)."""
    if accelerator is None:
        return False
    from accelerate.utils import DistributedType  # optional: accelerate (training extra), loaded only with one

    return getattr(accelerator, "distributed_type", None) == DistributedType.DEEPSPEED


class RewardNetwork(torch.nn.Module):
    """The reward model as one module (backbone with its adapter + head), for engines that wrap a model."""

    def __init__(self, reward_model: PersonalizedRewardModel) -> None:
        super().__init__()
        self.backbone = reward_model.model.base.model
        self.head = reward_model.head
        self.config = self.backbone.config  # read by accelerate to size DeepSpeed buckets
        object.__setattr__(self, "_rm", reward_model)  # not a submodule: its modules are registered above

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._rm.forward(input_ids, attention_mask)


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
    lora: LoraSettings = Field(default_factory=lambda: LoraSettings(r=8, alpha=16),
                               description="LoRA shape of the reward adapter (r, alpha, dropout, target_modules, "
                                           "top_layers).")
    max_length: int = Field(1024, ge=16, description="Longest reward-model input in tokens.")
    bf16: bool = Field(False, description="Run forward passes under bf16 autocast (GPU; ignored where unsupported).")
    seed: int = Field(0, description="Seed of the adapter initialisation and of dropout.")


def add_reward_lora(base: SharedBase, config: RMTrainConfig, name: str = "reward", *,
                    out_features: int = 1) -> PersonalizedRewardModel:
    """Add a trainable LoRA adapter ``name`` and a fresh head to ``base``; return the reward model."""
    torch.manual_seed(config.seed)
    base.add_new_adapter(name, config.lora.peft_for(base.model))
    hidden = base.model.config.hidden_size
    head = RewardHead(hidden, out_features).to(dtype=base.model.dtype)
    return PersonalizedRewardModel(LocalModel(base, name), head, max_length=config.max_length,
                                   batch_size=config.batch_size * 2)


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
        self.optimizer = build_adamw(self.params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self.scheduler = scheduled(self.optimizer, schedule="cosine", total=self.total_steps,
                                   warmup_ratio=config.warmup_ratio, floor=config.min_lr_ratio)
        self.step_count = 0
        #: The DeepSpeed engine wrapping the reward model, when launched with DeepSpeed.
        self.engine: Any = None
        if uses_deepspeed(accelerator):
            self._prepare_deepspeed(accelerator)

    def _prepare_deepspeed(self, accelerator: Any) -> None:
        """Hand the reward network, optimizer and schedule to a DeepSpeed engine (ZeRO stage from the config)."""
        micro = math.ceil(self.config.batch_size / self.config.grad_accum)
        if len(self.micro_batches([None] * self.config.batch_size)) != self.config.grad_accum:
            raise ValueError(f"with DeepSpeed, train.batch_size={self.config.batch_size} must split into exactly "
                             f"train.grad_accum={self.config.grad_accum} micro-batches; make batch_size a multiple "
                             "of grad_accum")
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = micro
        ds["gradient_accumulation_steps"] = self.config.grad_accum
        ds["gradient_clipping"] = self.config.grad_clip
        ds["train_batch_size"] = micro * self.config.grad_accum * self.world_size
        accelerator.gradient_accumulation_steps = self.config.grad_accum
        # the schedule stays ours: it drives the wrapped AdamW's param_groups, which ZeRO reads each step
        self.engine, self.optimizer = accelerator.prepare(RewardNetwork(self.rm), self.optimizer)
        logger.info("Reward model wrapped in a DeepSpeed engine (ZeRO stage %s, %d processes)",
                    ds.get("zero_optimization", {}).get("stage", 0), self.world_size)

    @contextlib.contextmanager
    def full_weights(self, *, modify: bool = False) -> Iterator[None]:
        """Under ZeRO-3, gather the partitioned adapter + head weights for the duration (else a no-op).

        Collective: every process must enter it. ``modify=True`` broadcasts rank 0's edits on exit.
        """
        if self.engine is None or self.engine.zero_optimization_stage() != 3:
            yield
            return
        import deepspeed  # deepspeed: optional dependency (plus-sdk[deepspeed])

        with deepspeed.zero.GatheredParameters(self.params, modifier_rank=0 if modify else None):
            yield

    # ------------------------------------------------------------------ helpers
    @property
    def world_size(self) -> int:
        """Processes sharing the training (torch.distributed's world size)."""
        return dist_info()[1]

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
            out = (self.engine(ids, mask) if self.engine is not None else self.rm.forward(ids, mask)).float()
        return self.method.pair(out[0::2], out[1::2])

    def micro_batches(self, batch: Sequence[RMExample]) -> list[Sequence[RMExample]]:
        size = max(math.ceil(len(batch) / self.config.grad_accum), 1)
        return [batch[i : i + size] for i in range(0, len(batch), size)]

    # ------------------------------------------------------------------ training
    def step(self, batch: Sequence[RMExample]) -> dict[str, float]:
        """One optimizer step on ``batch`` (accumulated over ``grad_accum`` micro-batches)."""
        if not batch:
            raise ValueError("RewardTrainer.step got an empty batch")
        batch = list(batch)
        if self.engine is not None:
            return self._step_deepspeed(batch)
        totals = {"loss": 0.0, "accuracy": 0.0, "margin": 0.0}
        with self.mode(True):
            for micro in self.micro_batches(batch):
                out = self.pair_output(micro)
                share = len(micro) / len(batch)
                (out.loss * share).backward()
                totals["loss"] += float(out.loss.detach()) * share
                totals["accuracy"] += float((out.prob.detach() > 0.5).float().sum()) / len(batch)
                totals["margin"] += float(out.margin.detach().sum()) / len(batch)
        all_reduce_grads(self.params)
        totals = reduce_mean(totals)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return {**totals, "lr": float(lr), "grad_norm": float(grad_norm), "step": float(self.step_count)}

    def _step_deepspeed(self, batch: list[RMExample]) -> dict[str, float]:
        """The same step through the DeepSpeed engine (it reduces, clips and steps at the last micro-batch)."""
        micros = self.micro_batches(batch)
        if len(micros) != self.config.grad_accum:
            raise ValueError(f"a batch of {len(batch)} pairs gives {len(micros)} micro-batches, DeepSpeed expects "
                             f"train.grad_accum={self.config.grad_accum}; pass train.batch_size pairs per step")
        totals = {"loss": 0.0, "accuracy": 0.0, "margin": 0.0}
        lr = self.scheduler.get_last_lr()[0]
        with self.mode(True):
            for micro in micros:
                out = self.pair_output(micro)
                share = len(micro) / len(batch)
                # the engine divides by its accumulation steps; undo that so micro-batches weigh by size
                self.engine.backward(out.loss * share * len(micros))
                self.engine.step()
                totals["loss"] += float(out.loss.detach()) * share
                totals["accuracy"] += float((out.prob.detach() > 0.5).float().sum()) / len(batch)
                totals["margin"] += float(out.margin.detach().sum()) / len(batch)
        self.scheduler.step()
        totals = reduce_mean(totals)
        grad_norm = self.engine.get_global_grad_norm()
        self.step_count += 1
        return {**totals, "lr": float(lr), "grad_norm": float(grad_norm or 0.0), "step": float(self.step_count)}

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
        """Trainable weights, optimizer, scheduler, step counter and RNG state (for resume).

        Under DeepSpeed every process must call it (each holds a shard of the optimizer state;
        the shards are gathered into ``optimizer_shards``, one per process).
        """
        if self.engine is not None:
            return self._deepspeed_state_dict()
        return {
            "weights": {name: p.detach().cpu().clone() for name, p in self.named},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step_count": self.step_count,
            "rng": torch.get_rng_state(),
        }

    def _deepspeed_state_dict(self) -> dict[str, Any]:
        """``state_dict`` under DeepSpeed: full LoRA weights + every process's optimizer shard (collective)."""
        shard = portable_shard(self.engine.optimizer.state_dict())
        shards: list[Any] = [None] * self.world_size
        dist.all_gather_object(shards, shard)
        with self.full_weights():
            weights = {name: p.detach().cpu().clone() for name, p in self.named}
        return {
            "weights": weights,
            "optimizer_shards": shards,
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
        with torch.no_grad(), self.full_weights(modify=True):
            for name, p in self.named:
                if name in weights:
                    p.copy_(weights[name].to(p.device, p.dtype))
        if self.engine is not None:
            if "optimizer_shards" not in state:
                raise ValueError("this checkpoint was not written under DeepSpeed; resume it without DeepSpeed")
            # ZeRO rebuilds its fp32 master partitions from the weights just copied into the model
            live = self.engine.optimizer.state_dict()
            shards = [restored_shard(shard, live) for shard in state["optimizer_shards"]]
            self.engine.optimizer.load_state_dict(shards, load_from_fp32_weights=False)
        else:
            if "optimizer" not in state:
                raise ValueError("this checkpoint was written under DeepSpeed; resume it with the same launch config")
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count = int(state["step_count"])
        if "rng" in state:
            torch.set_rng_state(state["rng"])


#: parts of a DeepSpeed optimizer shard that the engine rebuilds itself (objects, not state)
REBUILT_SHARD_KEYS = ("param_slice_mappings",)


def portable_shard(shard: dict[str, Any]) -> dict[str, Any]:
    """A DeepSpeed optimizer shard the checkpoint format can hold: its loss-scaler object becomes its
    fields, and the parameter-slice maps (rebuilt by the engine) are left out."""
    shard = {k: v for k, v in shard.items() if k not in REBUILT_SHARD_KEYS}
    scaler = shard.get("loss_scaler")
    if scaler is not None and hasattr(scaler, "__dict__"):
        shard["loss_scaler"] = {k: v for k, v in vars(scaler).items() if isinstance(v, (bool, int, float, str))}
    return shard


def restored_shard(shard: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``portable_shard``, given the engine's own ``live`` shard: its rebuilt parts are
    taken from there, and the saved loss-scaler fields are set back on the engine's loss scaler."""
    shard = {**{k: live[k] for k in REBUILT_SHARD_KEYS if k in live}, **shard}
    scaler = live.get("loss_scaler")
    saved = shard.get("loss_scaler")
    if isinstance(saved, dict) and scaler is not None:
        for key, value in saved.items():
            setattr(scaler, key, value)
        shard["loss_scaler"] = scaler
    return shard
