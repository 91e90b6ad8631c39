"""Optimizers, learning-rate schedules, adapter parameters and gradient averaging, shared by every trainer.

- ``adapter_parameters`` picks the weights of one named LoRA adapter on a (peft) model;
- ``build_adamw`` makes AdamW (the fused CUDA kernel when every parameter lives on a GPU);
- ``lr_multiplier`` is THE schedule: linear warmup, then constant, linear or cosine decay to a
  floor; ``scheduled`` wraps an optimizer in it. Its length is the number of optimizer steps
  the run will take, computed up front by the trainer (cleanrl / nanochat style), so the
  last optimizer step leaves the learning rate exactly at its final value;
- ``all_reduce_grads`` averages gradients over processes (a no-op in one process).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist

from plus_sdk.training.distributed import dist_info

Schedule = Literal["constant", "linear", "cosine"]


def adapter_parameters(model: Any, adapter: str) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs of one LoRA adapter: names containing ``.{adapter}.``."""
    marker = f".{adapter}."
    found = [(name, p) for name, p in model.named_parameters() if marker in name]
    if not found:
        raise ValueError(f"the model has no parameters of adapter {adapter!r}; create it with "
                         f"add_reward_lora / SharedBase.add_new_adapter first")
    return found


def build_adamw(params: Iterable[torch.nn.Parameter], *, lr: float, betas: Sequence[float] = (0.9, 0.999),
                weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW over ``params``; the fused kernel when they all live on a CUDA device."""
    params = list(params)
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=(float(betas[0]), float(betas[1])), weight_decay=weight_decay,
                             **({"fused": True} if fused else {}))


def warmup_steps(ratio: float, total: int) -> int:
    """Optimizer steps of linear warmup: ``ratio`` of ``total``, rounded."""
    return round(ratio * total)


def lr_multiplier(step: int, *, schedule: Schedule, total: int, warmup: int, floor: float = 0.0) -> float:
    """Multiplier of the peak lr after ``step`` optimizer steps.

    Steps ``0 .. warmup-1`` ramp linearly to 1 (``(step+1) / warmup``); then ``constant`` stays at 1,
    while ``linear`` and ``cosine`` fall from 1 to ``floor``, reaching it at ``step == total``.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    if schedule == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    if schedule == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"schedule={schedule!r} is unknown; use constant, linear or cosine")


def scheduled(optimizer: torch.optim.Optimizer, *, schedule: Schedule, total: int, warmup_ratio: float,
              floor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepping ``optimizer`` along ``lr_multiplier`` over ``total`` optimizer steps."""
    total = max(int(total), 1)
    warmup = warmup_steps(warmup_ratio, total)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, schedule=schedule, total=total, warmup=warmup, floor=floor))


def all_reduce_grads(params: Sequence[torch.nn.Parameter]) -> None:
    """Average gradients over processes (a missing gradient counts as zeros); no-op in one process."""
    world = dist_info()[1]
    if world == 1:
        return

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world)
