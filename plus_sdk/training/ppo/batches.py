"""What the PPO update runs over, and the speed plumbing around it.

``Experience`` is a scored rollout with old log-probs, values and advantages; ``group_minibatches``,
``select_groups`` and ``trim_prompt_padding`` cut it into minibatches that keep each prompt's k
samples together. ``checkpointed_layers`` recomputes decoder layers in the backward pass (memory for
compute) and ``sync`` waits for a device before a timing is read. ``trainer.PPOTrainer`` uses them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from plus_sdk.training.ppo.rollout import LogProbs, Rollout

# ---------------------------------------------------------------------------------------
# Experience and minibatches
# ---------------------------------------------------------------------------------------


@dataclass
class Experience:
    """A rollout with everything the update needs, on the training device."""

    rollout: Rollout
    old_logprobs: torch.Tensor  # [N, S]
    ref_logprobs: torch.Tensor  # [N, S]
    advantages: torch.Tensor  # [N, S]
    returns: torch.Tensor  # [N, S]
    old_values: torch.Tensor | None  # [N, S], GAE only
    live: LogProbs | None = None  # fused: the policy forward, graph kept, that the update back-propagates
    live_seconds: float = 0.0  # fused: how long that forward took (counted in the update's throughput)
    checkpoint: bool = False  # the update recomputes decoder layers in its backward pass


def group_minibatches(num_groups: int, groups_per_minibatch: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Shuffled prompt-group indices in chunks (a group's k samples stay together)."""
    order = torch.randperm(num_groups, generator=generator).tolist()
    for start in range(0, num_groups, groups_per_minibatch):
        yield order[start : start + groups_per_minibatch]


def select_groups(exp: Experience, index: torch.Tensor) -> Experience:
    """The rows of ``exp`` belonging to the prompt groups ``index`` (a tensor on the rollout's device)."""
    k = exp.rollout.samples_per_prompt
    rows = (index.unsqueeze(-1) * k + torch.arange(k, device=index.device)).view(-1)
    r = exp.rollout
    return Experience(
        rollout=Rollout(r.prompt_ids[index], r.prompt_mask[index], r.response_ids[rows], r.response_mask[rows], k),
        old_logprobs=exp.old_logprobs[rows], ref_logprobs=exp.ref_logprobs[rows], advantages=exp.advantages[rows],
        returns=exp.returns[rows], old_values=None if exp.old_values is None else exp.old_values[rows])


def trim_prompt_padding(rollout: Rollout, longest: int) -> Rollout:
    """Keep the last ``longest`` prompt columns (left padding beyond the longest prompt of a subset);
    ``longest`` comes from host-side lengths, so trimming needs no device sync."""
    first = rollout.prompt_ids.shape[1] - longest if longest > 0 else 0
    return Rollout(rollout.prompt_ids[:, first:], rollout.prompt_mask[:, first:], rollout.response_ids,
                   rollout.response_mask, rollout.samples_per_prompt)


# ---------------------------------------------------------------------------------------
# Speed: recomputed layers and device syncs
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def checkpointed_layers(model: Any) -> Iterator[None]:
    """Recompute each decoder layer in the backward pass while the model stays in eval mode.

    transformers checkpoints a layer only when that layer is training; only the layers' own flag is
    set, so dropout in their children stays off and log-probs do not change.
    """
    from torch.utils.checkpoint import checkpoint
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    saved = [(m.training, m.gradient_checkpointing, m.__dict__.get("_gradient_checkpointing_func")) for m in layers]
    for m in layers:
        m.training, m.gradient_checkpointing = True, True
        m._gradient_checkpointing_func = functools.partial(checkpoint, use_reentrant=False)
    try:
        yield
    finally:
        for m, (training, enabled, func) in zip(layers, saved, strict=True):
            m.training, m.gradient_checkpointing = training, enabled
            if func is None:
                del m._gradient_checkpointing_func
            else:
                m._gradient_checkpointing_func = func


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timing needs it; CPU work is already done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
