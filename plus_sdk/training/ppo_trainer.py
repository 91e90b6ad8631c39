"""The PPO trainer of the summarizer: rollouts, experience and the clipped update, on one SharedBase.

``PPOTrainer.make_experience`` turns a scored rollout into old log-probs, values and advantages;
``PPOTrainer.update`` runs epochs × minibatches of clipped PPO with gradient accumulation,
clipping and separate optimizers / schedules for the actor and the critic. When one on-policy
step covers the batch (one epoch, one minibatch, no critic), the experience keeps the graph of
its policy forward and the update reuses it (``fuse``): the same step, one forward pass fewer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from plus_sdk.training.optim import adapter_parameters, all_reduce_grads
from plus_sdk.training.ppo import (
    PPOConfig,
    RunningMoments,
    gae,
    group_advantages,
    kl_estimate,
    make_kl_controller,
    make_optimizer,
    masked_mean,
    masked_var,
    policy_loss,
    rloo_advantages,
    token_rewards,
    value_loss,
    whiten,
)
from plus_sdk.training.rollout import LogProbs, Rollout, left_pad, response_logprobs, response_values, sample_responses
from plus_sdk.training.vllm_rollout import pack_rollout

logger = logging.getLogger(__name__)

#: A timing hook: ``phase("name")`` wraps one phase of the work (``PhaseTimer.phase`` in co-adaptation).
Phase = Callable[[str], contextlib.AbstractContextManager[None]]


def no_phase(name: str) -> contextlib.AbstractContextManager[None]:
    """The default timing hook: times nothing."""
    del name
    return contextlib.nullcontext()

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


def group_minibatches(num_groups: int, groups_per_minibatch: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Shuffled prompt-group indices in chunks (a group's k samples stay together)."""
    order = torch.randperm(num_groups, generator=generator).tolist()
    for start in range(0, num_groups, groups_per_minibatch):
        yield order[start : start + groups_per_minibatch]


def select_groups(exp: Experience, groups: list[int]) -> Experience:
    """The rows of ``exp`` belonging to the given prompt groups."""
    k = exp.rollout.samples_per_prompt
    index = torch.tensor(groups, device=exp.rollout.prompt_ids.device)
    rows = (index.unsqueeze(-1) * k + torch.arange(k, device=index.device)).view(-1)
    r = exp.rollout
    return Experience(
        rollout=Rollout(r.prompt_ids[index], r.prompt_mask[index], r.response_ids[rows], r.response_mask[rows], k),
        old_logprobs=exp.old_logprobs[rows], ref_logprobs=exp.ref_logprobs[rows], advantages=exp.advantages[rows],
        returns=exp.returns[rows], old_values=None if exp.old_values is None else exp.old_values[rows])


def trim_prompt_padding(rollout: Rollout) -> Rollout:
    """Drop prompt columns that are padding in every row (after selecting a subset)."""
    keep = rollout.prompt_mask.any(0)
    first = int(keep.nonzero()[0]) if keep.any() else 0
    return Rollout(rollout.prompt_ids[:, first:], rollout.prompt_mask[:, first:], rollout.response_ids,
                   rollout.response_mask, rollout.samples_per_prompt)


# ---------------------------------------------------------------------------------------
# The trainer: one policy adapter (and optionally a critic) on a SharedBase
# ---------------------------------------------------------------------------------------


def lora_parameters(model: Any, adapter: str) -> list[torch.nn.Parameter]:
    """The weights of one named LoRA adapter."""
    return [p for _, p in adapter_parameters(model, adapter)]


class Critic:
    """A value function: a LoRA adapter (on a SharedBase) plus a linear value head."""

    def __init__(self, base: Any, adapter: str, head: torch.nn.Module) -> None:
        self.base = base
        self.adapter = adapter
        self.head = head.to(base.device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return lora_parameters(self.base.model, self.adapter) + list(self.head.parameters())

    def values(self, rollout: Rollout) -> torch.Tensor:
        with self.base.use(self.adapter) as model:
            return response_values(model, self.head, rollout.prompt_ids, rollout.prompt_mask,
                                   rollout.response_ids, rollout.response_mask, rollout.samples_per_prompt)


class PPOTrainer:
    """Rollouts, rewards and clipped PPO updates of a summarizer LoRA adapter.

    ``base`` is the ``SharedBase`` holding the policy adapter ``adapter``; the reference
    policy is ``base.use(None)``. ``critic`` is needed for ``estimator='gae'`` only.
    """

    def __init__(self, base: Any, config: PPOConfig, *, total_steps: int, adapter: str = "summarizer",
                 critic: Critic | None = None, seed: int = 0) -> None:
        if config.estimator == "gae" and critic is None:
            raise ValueError("estimator='gae' needs a critic; pass critic=Critic(...) or use estimator='rloo'")
        if config.estimator in ("rloo", "group") and config.samples_per_prompt < 2:
            raise ValueError(f"estimator={config.estimator!r} needs ppo.samples_per_prompt >= 2")
        self.base = base
        self.config = config
        self.adapter = adapter
        self.critic = critic if config.estimator == "gae" else None
        self.actor_params = lora_parameters(base.model, adapter)
        steps = total_steps
        self.actor_opt, self.actor_sched = make_optimizer(self.actor_params, config.actor_lr, config,
                                                          config.actor_schedule, steps)
        self.critic_opt = self.critic_sched = None
        if self.critic is not None:
            self.critic_opt, self.critic_sched = make_optimizer(self.critic.parameters(), config.critic_lr, config,
                                                                config.critic_schedule, steps)
        self.kl_ctl = make_kl_controller(config)
        self.score_stats = RunningMoments()
        self.sampler = torch.Generator(device=base.device).manual_seed(seed)
        self.shuffler = torch.Generator().manual_seed(seed + 1)
        tok = base.tokenizer
        eos = base.model.generation_config.eos_token_id
        self.eos_ids = sorted({*(eos if isinstance(eos, list) else [eos] if eos is not None else []),
                               tok.eos_token_id} - {None})
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]
        self.step_count = 0
        #: The vLLM sampler when ``rollout_engine == "vllm"`` (see ``attach_vllm``).
        self.vllm: Any = None
        self._published_step = -1
        self._vllm_seed = seed

    def attach_vllm(self, engine: Any) -> None:
        """Sample with ``engine`` (a ``VLLMRolloutEngine``) instead of the training model."""
        self.vllm = engine
        self._published_step = -1

    # -------------------------------------------------------------- rollout
    def generate(self, prompt_token_ids: Sequence[Sequence[int]], *, greedy: bool = False,
                 k: int | None = None) -> Rollout:
        """Sample (or greedily decode) responses for tokenized prompts."""
        ids, mask = left_pad(prompt_token_ids, self.pad_id)
        ids, mask = ids.to(self.base.device), mask.to(self.base.device)
        if self.vllm is not None:
            return self._generate_vllm(prompt_token_ids, ids, mask, greedy=greedy, k=k)
        with self.base.use(self.adapter) as model:
            return sample_responses(model, ids, mask, k=1 if greedy else (k or self.config.samples_per_prompt),
                                    max_new_tokens=self.config.max_new_tokens, eos_ids=self.eos_ids,
                                    pad_id=self.pad_id, temperature=self.config.temperature, top_p=self.config.top_p,
                                    greedy=greedy, generator=self.sampler)

    def _generate_vllm(self, prompt_token_ids: Sequence[Sequence[int]], ids: torch.Tensor, mask: torch.Tensor, *,
                       greedy: bool, k: int | None) -> Rollout:
        """Sample on the vLLM engine with the current adapter weights (re-published after each update)."""
        if self._published_step != self.step_count:
            self.vllm.publish(self.base, self.adapter)
            self._published_step = self.step_count
        n = 1 if greedy else (k or self.config.samples_per_prompt)
        self._vllm_seed += 1
        responses = self.vllm.sample(prompt_token_ids, k=n, max_new_tokens=self.config.max_new_tokens,
                                     temperature=self.config.temperature, top_p=self.config.top_p, greedy=greedy,
                                     seed=self._vllm_seed)
        return pack_rollout(ids, mask, responses, n, self.pad_id)

    def decode(self, rollout: Rollout) -> list[str]:
        """Texts of the responses (special tokens dropped)."""
        tok = self.base.tokenizer
        return [tok.decode(ids[mask.bool()].tolist(), skip_special_tokens=True).strip()
                for ids, mask in zip(rollout.response_ids, rollout.response_mask, strict=True)]

    @torch.no_grad()
    def logprobs(self, rollout: Rollout, *, reference: bool) -> torch.Tensor:
        """Per-token log-probs under the policy, or the reference (adapters off)."""
        with self.base.use(None if reference else self.adapter) as model:
            return response_logprobs(model, rollout.prompt_ids, rollout.prompt_mask, rollout.response_ids,
                                     rollout.response_mask, rollout.samples_per_prompt,
                                     self.config.temperature).logprobs

    # -------------------------------------------------------------- experience
    def advantages(self, scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                   mask: torch.Tensor, values: torch.Tensor | None,
                   k: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Token advantages and returns from scores and the KL penalty."""
        cfg = self.config
        maskf = mask.float()
        raw_scores = scores.float().to(mask.device)
        if cfg.normalize_reward:
            self.score_stats.update(raw_scores)
            raw_scores = (raw_scores - self.score_stats.mean) / self.score_stats.std
        kl = kl_estimate(logprobs, ref_logprobs, cfg.kl_estimator) * maskf
        rewards = token_rewards(raw_scores, kl, maskf, self.kl_ctl.value, cfg.reward_clip)
        if cfg.estimator == "gae":
            assert values is not None
            advantages, returns = gae(rewards, values, maskf, cfg.gamma, cfg.lam)
        else:
            sequence_return = rewards.sum(-1)
            baseline = rloo_advantages if cfg.estimator == "rloo" else group_advantages
            advantages = baseline(sequence_return, k).unsqueeze(-1) * maskf
            returns = sequence_return.unsqueeze(-1) * maskf
        if cfg.whiten_advantages:
            advantages = whiten(advantages, maskf)
        sequence_kl = kl.sum(-1)
        metrics = {"score": float(scores.float().mean()), "kl": float(sequence_kl.mean()),
                   "kl_coef": float(self.kl_ctl.value), "return": float(rewards.sum(-1).mean()),
                   "advantage_std": float(masked_var(advantages, maskf).sqrt())}
        return advantages, returns, metrics

    def can_fuse(self, num_responses: int) -> bool:
        """True when one on-policy gradient step covers the batch (no separate old-log-prob pass)."""
        cfg = self.config
        return (cfg.estimator != "gae" and cfg.epochs == 1 and cfg.minibatch_size >= num_responses
                and cfg.micro_batch_size >= num_responses)

    def make_experience(self, rollout: Rollout, scores: torch.Tensor, ref_logprobs: torch.Tensor, *,
                        fuse: bool | None = None, phase: Phase = no_phase) -> tuple[Experience, dict[str, float]]:
        """Old log-probs, values, rewards and advantages of one scored rollout.

        ``fuse`` (default: when ``can_fuse``) runs the policy forward with gradients and keeps it in
        the experience, so ``update`` back-propagates through it instead of running it again.
        """
        fuse = self.can_fuse(rollout.num_responses) if fuse is None else fuse
        if fuse and not self.can_fuse(rollout.num_responses):
            raise ValueError("fuse=True needs one epoch, one minibatch and one micro-batch covering the batch, "
                             "and no critic")
        live = None
        with phase("policy_logprobs"):
            if fuse:
                with self.base.use(self.adapter) as model:
                    live = self._forward(model, rollout)
                old = live.logprobs.detach()
            else:
                old = self.logprobs(rollout, reference=False)
        values = None
        if self.critic is not None:
            with phase("critic_values"), torch.no_grad():
                values = self.critic.values(rollout)
        advantages, returns, metrics = self.advantages(scores, old, ref_logprobs, rollout.response_mask, values,
                                                       rollout.samples_per_prompt)
        return Experience(rollout, old, ref_logprobs, advantages, returns, values, live), metrics

    def _forward(self, model: Any, r: Rollout) -> LogProbs:
        """The policy's per-token log-probs and entropies of a rollout, with gradients."""
        return response_logprobs(model, r.prompt_ids, r.prompt_mask, r.response_ids, r.response_mask,
                                 r.samples_per_prompt, self.config.temperature)

    # -------------------------------------------------------------- update
    def update(self, exp: Experience) -> dict[str, float]:
        """Epochs × minibatches of clipped PPO on the actor (and the critic for GAE); then the KL controller."""
        cfg = self.config
        k = exp.rollout.samples_per_prompt
        groups = exp.rollout.prompt_ids.shape[0]
        groups_per_mb = max(1, cfg.minibatch_size // k)
        groups_per_micro = max(1, min(cfg.micro_batch_size // k, groups_per_mb))
        totals: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            batches = [list(range(groups))] if exp.live is not None else group_minibatches(groups, groups_per_mb,
                                                                                             self.shuffler)
            for mb in batches:
                for key, value in self._minibatch_step(exp, mb, groups_per_micro).items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        mask = exp.rollout.response_mask.float()
        sequence_kl = (kl_estimate(exp.old_logprobs, exp.ref_logprobs, "k1") * mask).sum(-1).mean()
        self.kl_ctl.update(float(sequence_kl), exp.rollout.num_responses)
        return {key: value / max(count, 1) for key, value in totals.items()}

    def _minibatch_step(self, exp: Experience, groups: list[int], groups_per_micro: int) -> dict[str, float]:
        """One optimizer step of the actor (and critic) over one minibatch, with token-weighted accumulation."""
        cfg = self.config
        r = exp.rollout
        per_group = r.response_mask.view(-1, r.samples_per_prompt, r.response_mask.shape[-1]).sum((1, 2))
        total_tokens = float(per_group[torch.tensor(groups)].sum())
        self.actor_opt.zero_grad(set_to_none=True)
        if self.critic_opt is not None:
            self.critic_opt.zero_grad(set_to_none=True)
        stats = {"policy_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0,
                 "value_loss": 0.0, "value_clip_fraction": 0.0}
        for start in range(0, len(groups), groups_per_micro):
            micro = select_groups(exp, groups[start : start + groups_per_micro])
            r = trim_prompt_padding(micro.rollout)
            mask = r.response_mask.float()
            share = float(mask.sum()) / max(total_tokens, 1.0)
            with self.base.use(self.adapter) as model:
                out = exp.live if exp.live is not None else self._forward(model, r)  # fused: one micro-batch
                pl = policy_loss(out.logprobs, micro.old_logprobs, micro.advantages, mask, cfg.clip_eps)
                entropy = masked_mean(out.entropy, mask)
                ((pl.loss - cfg.entropy_coef * entropy) * share).backward()
            stats["policy_loss"] += float(pl.loss.detach()) * share
            stats["entropy"] += float(entropy.detach()) * share
            stats["clip_fraction"] += float(pl.clip_fraction) * share
            stats["approx_kl"] += float(pl.approx_kl) * share
            if self.critic is not None:
                assert micro.old_values is not None
                vloss, vclip = value_loss(self.critic.values(r), micro.old_values, micro.returns, mask,
                                          cfg.value_clip)
                (cfg.vf_coef * vloss * share).backward()
                stats["value_loss"] += float(vloss.detach()) * share
                stats["value_clip_fraction"] += float(vclip) * share
        exp.live = None  # its graph is spent
        stats["grad_norm"] = self._optimizer_step(self.actor_params, self.actor_opt, self.actor_sched)
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            self._optimizer_step(self.critic.parameters(), self.critic_opt, self.critic_sched)
        else:
            del stats["value_loss"], stats["value_clip_fraction"]
        self.step_count += 1
        stats["actor_lr"] = float(self.actor_sched.get_last_lr()[0])
        return stats

    def _optimizer_step(self, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
        """Average gradients over processes, clip them, step; returns the gradient norm before clipping."""
        all_reduce_grads(params)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm))
        optimizer.step()
        scheduler.step()
        return grad_norm

    # -------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "actor_opt": self.actor_opt.state_dict(), "actor_sched": self.actor_sched.state_dict(),
            "kl_ctl": self.kl_ctl.state_dict(), "score_stats": self.score_stats.state_dict(),
            "sampler": self.sampler.get_state(), "shuffler": self.shuffler.get_state(), "step_count": self.step_count,
        }
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            state["critic_opt"] = self.critic_opt.state_dict()
            state["critic_sched"] = self.critic_sched.state_dict()
            state["critic_head"] = self.critic.head.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.actor_sched.load_state_dict(state["actor_sched"])
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.score_stats.load_state_dict(state["score_stats"])
        self.sampler.set_state(state["sampler"])
        self.shuffler.set_state(state["shuffler"])
        self.step_count = int(state["step_count"])
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            self.critic_opt.load_state_dict(state["critic_opt"])
            self.critic_sched.load_state_dict(state["critic_sched"])
            self.critic.head.load_state_dict(state["critic_head"])
