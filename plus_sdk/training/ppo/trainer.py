"""The PPO trainer of the summarizer: rollout → advantages → update, on one SharedBase.

One co-adaptation iteration (``coadapt.py``, Algorithm 1) calls it for step 1 (``generate``), step 3
(``logprobs(..., reference=True)``), step 4 (``make_experience``: old log-probs, values, KL-penalized
rewards, advantages) and step 5 (``update``: epochs × minibatches of clipped PPO with gradient
accumulation, clipping and separate optimizers / schedules for the actor and the critic; then the
KL controller). ``update`` reads like cleanrl's loop; the speed machinery around it (fusing, bf16
autocast, checkpoint planning, throughput and MFU) lives in ``speed.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from plus_sdk.training.optim import adapter_parameters, all_reduce_grads
from plus_sdk.training.ppo.algorithm import (
    PPOConfig,
    RunningMoments,
    gae,
    group_advantages,
    kl_estimate,
    make_kl_controller,
    make_optimizer,
    masked_mean,
    masked_var,
    mean_sequence_kl,
    policy_loss,
    rloo_advantages,
    token_rewards,
    value_loss,
    whiten,
)
from plus_sdk.training.ppo.batches import (
    Experience,
    GroupLengths,
    group_minibatches,
    select_groups,
    trim_prompt_padding,
)
from plus_sdk.training.ppo.rollout import (
    LogProbs,
    Rollout,
    left_pad,
    response_logprobs,
    response_values,
    sample_responses,
)
from plus_sdk.training.ppo.speed import (
    Checkpointing,
    Stopwatch,
    autocast_for,
    can_fuse,
    checkpointed_layers,
    device_peak_tflops,
    non_embedding_parameters,
    plan_checkpointing,
    precision,
    rollout_activation_bytes,
    throughput,
)
from plus_sdk.training.ppo.vllm_rollout import pack_rollout

#: The statistics of one optimizer step: each micro-batch's (device tensors) with its token share, the
#: actor's gradient norm (a device tensor) and the learning rate.
StepStats = tuple[list[tuple[dict[str, torch.Tensor], float]], torch.Tensor, float]

#: A timing hook: ``phase("name")`` wraps one phase of the work (``PhaseTimer.phase`` in co-adaptation).
Phase = Callable[[str], contextlib.AbstractContextManager[None]]


def no_phase(name: str) -> contextlib.AbstractContextManager[None]:
    """The default timing hook: times nothing."""
    del name
    return contextlib.nullcontext()

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
    ``gradient_checkpointing``: True recomputes decoder layers in the update's backward pass, 'auto'
    only when the update's estimated activations exceed the free CUDA memory (never on CPU).
    """

    def __init__(self, base: Any, config: PPOConfig, *, total_steps: int, adapter: str = "summarizer",
                 critic: Critic | None = None, seed: int = 0, gradient_checkpointing: Checkpointing = False) -> None:
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
        self.gradient_checkpointing = gradient_checkpointing
        #: bf16 under autocast, or None (the weights' own precision)
        self.autocast = autocast_for(config.autocast, base.model, base.device)
        self.params = non_embedding_parameters(base.model)
        compute_dtype = self.autocast or base.model.get_input_embeddings().weight.dtype
        self.peak_tflops = device_peak_tflops(config.peak_tflops, base.device, compute_dtype)

    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to ``self.autocast`` around a forward, or nothing."""
        return precision(self.autocast, self.base.device.type)

    def attach_vllm(self, engine: Any) -> None:
        """Sample with ``engine`` (a ``VLLMRolloutEngine``) instead of the training model."""
        self.vllm = engine
        self._published_step = -1

    # -------------------------------------------------------------- 1. rollout (and 3. reference log-probs)
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
        with self.base.use(None if reference else self.adapter) as model, self.precision():
            return response_logprobs(model, rollout.prompt_ids, rollout.prompt_mask, rollout.response_ids,
                                     rollout.response_mask, rollout.samples_per_prompt,
                                     self.config.temperature).logprobs

    # -------------------------------------------------------------- 4. advantages: the experience
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
        return can_fuse(self.config, num_responses)

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
        live, live_seconds = None, 0.0
        checkpoint = self.plan_checkpointing(rollout)
        with phase("policy_logprobs"):
            if fuse:
                clock = Stopwatch(self.base.device)
                with self.base.use(self.adapter) as model:
                    live = self._forward(model, rollout, checkpoint)
                live_seconds = clock.seconds()
                old = live.logprobs.detach()
            else:
                old = self.logprobs(rollout, reference=False)
        values = None
        if self.critic is not None:
            with phase("critic_values"), torch.no_grad(), self.precision():
                values = self.critic.values(rollout)
        advantages, returns, metrics = self.advantages(scores, old, ref_logprobs, rollout.response_mask, values,
                                                       rollout.samples_per_prompt)
        return Experience(rollout, old, ref_logprobs, advantages, returns, values, live, live_seconds,
                          checkpoint), metrics

    def _forward(self, model: Any, r: Rollout, checkpoint: bool = False) -> LogProbs:
        """The policy's per-token log-probs and entropies of a rollout, with gradients (autocast, and
        layer recomputation over cache-free full sequences when ``checkpoint``)."""
        layers = checkpointed_layers(model) if checkpoint else contextlib.nullcontext()
        with self.precision(), layers:
            return response_logprobs(model, r.prompt_ids, r.prompt_mask, r.response_ids, r.response_mask,
                                     r.samples_per_prompt, self.config.temperature, share_prefix=not checkpoint)

    # -------------------------------------------------------------- checkpoint planning (speed.py)
    def groups_per_micro_batch(self, k: int) -> int:
        """Prompt groups per forward/backward of the update (a group's k samples stay together)."""
        groups_per_mb = max(1, self.config.minibatch_size // k)
        return max(1, min(self.config.micro_batch_size // k, groups_per_mb))

    def activation_estimate(self, rollout: Rollout) -> int:
        """Estimated bytes the largest forward of the update keeps for its backward (padded shapes)."""
        groups = rollout.prompt_ids.shape[0]
        if not self.can_fuse(rollout.num_responses):
            groups = min(groups, self.groups_per_micro_batch(rollout.samples_per_prompt))
        element = 2 if self.autocast is not None else self.base.model.get_input_embeddings().weight.element_size()
        return rollout_activation_bytes(self.base.model, rollout, groups, element)

    def plan_checkpointing(self, rollout: Rollout) -> bool:
        """Whether the update of ``rollout`` recomputes layers: the setting, or for 'auto' the estimate
        against the free CUDA memory (never on CPU)."""
        return plan_checkpointing(self.gradient_checkpointing, self.base.device,
                                  lambda: self.activation_estimate(rollout))

    # -------------------------------------------------------------- 5. update
    def update(self, exp: Experience) -> dict[str, float]:
        """Epochs × minibatches of clipped PPO on the actor (and the critic for GAE); then the KL controller.

        Statistics stay on the device until one sync at the end; the result also holds the update's
        throughput (``update_tokens``, ``update_seconds``, ``update_tflops``, and ``mfu`` when a peak is known).
        """
        lengths = GroupLengths.of(exp.rollout)  # host-side token counts: one sync per update
        clock = Stopwatch(self.base.device)
        steps: list[StepStats] = []
        minibatches: list[list[int]] = []
        for _ in range(self.config.epochs):
            for groups in self.minibatches(exp):
                steps.append(self._minibatch_step(exp, groups, lengths))
                minibatches.append(groups)
        sequence_kl = mean_sequence_kl(exp.old_logprobs, exp.ref_logprobs, exp.rollout.response_mask)
        out = self._mean_stats(steps, sequence_kl)  # the update's one read of device values
        self.kl_ctl.update(out.pop("sequence_kl"), exp.rollout.num_responses)
        out.update(self._throughput(exp, minibatches, lengths, clock))
        return out

    def minibatches(self, exp: Experience) -> Iterable[list[int]]:
        """One epoch's minibatches of prompt groups: all of them when fused, else shuffled chunks."""
        groups, k = exp.rollout.prompt_ids.shape[0], exp.rollout.samples_per_prompt
        if exp.live is not None:
            return [list(range(groups))]
        return group_minibatches(groups, max(1, self.config.minibatch_size // k), self.shuffler)

    def _minibatch_step(self, exp: Experience, groups: list[int], lengths: GroupLengths) -> StepStats:
        """One optimizer step of the actor (and critic) over one minibatch, with token-weighted accumulation.

        Returns each micro-batch's statistics (device tensors) with its token share, the actor's gradient
        norm (a device tensor) and the learning rate; nothing here waits for the device.
        """
        total_tokens = float(sum(lengths.responses[g] for g in groups))
        index = torch.tensor(groups, device=exp.rollout.prompt_ids.device)  # one copy per minibatch
        per_micro = self.groups_per_micro_batch(exp.rollout.samples_per_prompt)
        self.actor_opt.zero_grad(set_to_none=True)
        if self.critic_opt is not None:
            self.critic_opt.zero_grad(set_to_none=True)
        micros: list[tuple[dict[str, torch.Tensor], float]] = []
        for start in range(0, len(groups), per_micro):
            chunk = groups[start : start + per_micro]
            micro = select_groups(exp, index[start : start + per_micro])
            micro.rollout = trim_prompt_padding(micro.rollout, max(lengths.prompt[g] for g in chunk))
            share = float(sum(lengths.responses[g] for g in chunk)) / max(total_tokens, 1.0)
            micros.append((self._backward(exp, micro, share), share))
        exp.live = None  # its graph is spent
        grad_norm = self._optimizer_step(self.actor_params, self.actor_opt, self.actor_sched)
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            self._optimizer_step(self.critic.parameters(), self.critic_opt, self.critic_sched)
        self.step_count += 1
        return micros, grad_norm, float(self.actor_sched.get_last_lr()[0])

    def _backward(self, exp: Experience, micro: Experience, share: float) -> dict[str, torch.Tensor]:
        """Back-propagate the losses of ``micro`` (a micro-batch of ``exp``), weighted by its token ``share``:
        the clipped policy loss minus the entropy bonus, and the clipped value loss for GAE. Returns its
        statistics (device tensors)."""
        cfg = self.config
        r = micro.rollout
        mask = r.response_mask.float()
        with self.base.use(self.adapter) as model:
            # fused: the experience's forward is this (one) micro-batch
            out = exp.live if exp.live is not None else self._forward(model, r, exp.checkpoint)
            pl = policy_loss(out.logprobs, micro.old_logprobs, micro.advantages, mask, cfg.clip_eps)
            entropy = masked_mean(out.entropy, mask)
            ((pl.loss - cfg.entropy_coef * entropy) * share).backward()
        stats = {"policy_loss": pl.loss.detach(), "entropy": entropy.detach(),
                 "clip_fraction": pl.clip_fraction, "approx_kl": pl.approx_kl}
        if self.critic is not None:
            assert micro.old_values is not None
            with self.precision():
                values = self.critic.values(r)
            vloss, vclip = value_loss(values, micro.old_values, micro.returns, mask, cfg.value_clip)
            (cfg.vf_coef * vloss * share).backward()
            stats.update(value_loss=vloss.detach(), value_clip_fraction=vclip)
        return stats

    def _throughput(self, exp: Experience, minibatches: list[list[int]], lengths: GroupLengths,
                    clock: Stopwatch) -> dict[str, float]:
        """The update's tokens (prompt and responses of each minibatch, twice with a critic), its wall time
        (the fused forward included) and FLOP rate."""
        passes = 2 if self.critic is not None else 1
        tokens = sum(passes * sum(lengths.prompt[g] + lengths.responses[g] for g in mb) for mb in minibatches)
        seconds = clock.seconds() + exp.live_seconds
        exp.live_seconds = 0.0
        return throughput(self.params, tokens, seconds, self.peak_tflops)

    @staticmethod
    def _mean_stats(steps: list[StepStats], sequence_kl: torch.Tensor) -> dict[str, float]:
        """Token-weighted statistics of each optimizer step, averaged over steps: every device value is
        read in one host sync, then summed in the same order as per-micro-batch floats would be."""
        device_values = [v for micros, grad_norm, _ in steps for stats, _ in micros for v in stats.values()]
        device_values += [grad_norm for _, grad_norm, _ in steps] + [sequence_kl]
        host = iter(torch.stack([v.detach().float().reshape(()) for v in device_values]).tolist())
        totals: dict[str, float] = {}
        for micros, _, lr in steps:
            stats: dict[str, float] = {}
            for micro, share in micros:
                for key in micro:
                    stats[key] = stats.get(key, 0.0) + next(host) * share
            stats["actor_lr"] = lr
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value
        for _ in steps:
            totals["grad_norm"] = totals.get("grad_norm", 0.0) + next(host)
        out = {key: value / max(len(steps), 1) for key, value in totals.items()}
        out["sequence_kl"] = next(host)
        return out

    def _optimizer_step(self, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                        scheduler: torch.optim.lr_scheduler.LRScheduler) -> torch.Tensor:
        """Average gradients over processes, clip them, step; returns the gradient norm before clipping
        (a device tensor: reading it would wait for the device)."""
        all_reduce_grads(params)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
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
