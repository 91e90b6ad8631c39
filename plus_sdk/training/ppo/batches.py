"""What the PPO update (step 5 of an iteration) runs over.

``Experience`` is a scored rollout with old log-probs, values and advantages (step 4); ``GroupLengths``
holds each prompt group's token counts on the host; ``group_minibatches``, ``select_groups`` and
``trim_prompt_padding`` cut the experience into minibatches that keep each prompt's k samples together.
``trainer.PPOTrainer`` uses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass
class GroupLengths:
    """Token counts of each prompt group, read to the host once per update (slicing needs no device sync)."""

    prompt: list[int]  # the prompt's real tokens
    responses: list[int]  # the k responses' tokens together

    @classmethod
    def of(cls, rollout: Rollout) -> GroupLengths:
        groups, k = rollout.prompt_ids.shape[0], rollout.samples_per_prompt
        prompt, responses = torch.stack([rollout.prompt_mask.sum(-1),
                                         rollout.response_mask.view(groups, k, -1).sum((1, 2))]).tolist()
        return cls(prompt, responses)


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
