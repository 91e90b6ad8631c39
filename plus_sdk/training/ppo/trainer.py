"""The PPO trainer of the summarizer: rollouts, experience and the clipped update, on one SharedBase.

``PPOTrainer.make_experience`` turns a scored rollout into old log-probs, values and advantages;
``PPOTrainer.update`` runs epochs × minibatches of clipped PPO with gradient accumulation,
clipping and separate optimizers / schedules for the actor and the critic. When one on-policy
step covers the batch (one epoch, one minibatch, no critic), the experience keeps the graph of
its policy forward and the update reuses it (``fuse``): the same step, one forward pass fewer.

On a GPU the update runs its forwards under bf16 autocast (``ppo.autocast``), keeps per-micro-batch
statistics on the device until one host sync per update, recomputes decoder layers in the backward
pass only when its activations would not fit (``gradient_checkpointing='auto'``), and reports its
throughput (``update_tokens``, ``update_seconds``, ``update_tflops``, ``mfu``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from plus_sdk.training.optim import adapter_parameters, all_reduce_grads
from plus_sdk.training.ppo.algorithm import (
    PPOConfig,
    RunningMoments,
    activation_bytes,
    autocast_dtype,
    gae,
    group_advantages,
    kl_estimate,
    make_kl_controller,
    make_optimizer,
    masked_mean,
    masked_var,
    needs_checkpointing,
    non_embedding_parameters,
    peak_tflops_of,
    policy_loss,
    rloo_advantages,
    token_rewards,
    update_tflops,
    value_loss,
    whiten,
)
from plus_sdk.training.ppo.batches import (
    Experience,
    checkpointed_layers,
    group_minibatches,
    select_groups,
    sync,
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
from plus_sdk.training.ppo.vllm_rollout import pack_rollout

logger = logging.getLogger(__name__)

#: ``gradient_checkpointing`` of the update: always, never, or when its activations would not fit (CUDA).
Checkpointing = bool | Literal["auto"]

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
        device = base.device
        weight_dtype = base.model.get_input_embeddings().weight.dtype
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        #: bf16 under autocast, or None (the weights' own precision)
        self.autocast = autocast_dtype(config.autocast, device.type, weight_dtype, bf16_ok)
        self.params = non_embedding_parameters(base.model)
        compute_bf16 = (self.autocast or weight_dtype) == torch.bfloat16
        spec_peak = peak_tflops_of(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
        self.peak_tflops = config.peak_tflops or (spec_peak if compute_bf16 else None)

    def precision(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to ``self.autocast`` around a forward, or nothing."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.base.device.type, dtype=self.autocast)

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
        with self.base.use(None if reference else self.adapter) as model, self.precision():
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
        live, live_seconds = None, 0.0
        checkpoint = self.plan_checkpointing(rollout)
        with phase("policy_logprobs"):
            if fuse:
                sync(self.base.device)
                start = time.perf_counter()
                with self.base.use(self.adapter) as model:
                    live = self._forward(model, rollout, checkpoint)
                sync(self.base.device)
                live_seconds = time.perf_counter() - start
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

    # -------------------------------------------------------------- memory plan
    def groups_per_micro_batch(self, k: int) -> int:
        """Prompt groups per forward/backward of the update (a group's k samples stay together)."""
        groups_per_mb = max(1, self.config.minibatch_size // k)
        return max(1, min(self.config.micro_batch_size // k, groups_per_mb))

    def activation_estimate(self, rollout: Rollout) -> int:
        """Estimated bytes the largest micro-batch of the update keeps for its backward (padded shapes)."""
        c = self.base.model.config
        k, (groups, width), length = rollout.samples_per_prompt, rollout.prompt_ids.shape, rollout.response_ids.shape[1]
        g = min(groups, self.groups_per_micro_batch(k))
        if self.can_fuse(rollout.num_responses):
            g = groups
        heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        element = 2 if self.autocast is not None else self.base.model.get_input_embeddings().weight.element_size()
        return activation_bytes(layers=c.num_hidden_layers, hidden=c.hidden_size, intermediate=c.intermediate_size,
                                kv_dim=heads * head_dim, vocab=c.vocab_size, body_tokens=g * width + g * k * length,
                                cached_tokens=g * k * width, response_tokens=g * k * length, element_bytes=element)

    def plan_checkpointing(self, rollout: Rollout) -> bool:
        """Whether the update of ``rollout`` recomputes layers: the setting, or for 'auto' the estimate
        against the free CUDA memory (never on CPU)."""
        if self.gradient_checkpointing != "auto":
            return bool(self.gradient_checkpointing)
        if self.base.device.type != "cuda":
            return False
        free, _ = torch.cuda.mem_get_info(self.base.device)
        estimate = self.activation_estimate(rollout)
        needed = needs_checkpointing(estimate, free)
        logger.debug("PPO update activations ~%.2f GB, %.2f GB free: checkpointing %s", estimate / 1e9, free / 1e9,
                     "on" if needed else "off")
        return needed

    # -------------------------------------------------------------- update
    def update(self, exp: Experience) -> dict[str, float]:
        """Epochs × minibatches of clipped PPO on the actor (and the critic for GAE); then the KL controller.

        Statistics stay on the device until one sync at the end; the result also holds the update's
        throughput (``update_tokens``, ``update_seconds``, ``update_tflops``, and ``mfu`` when a peak is known).
        """
        cfg = self.config
        r = exp.rollout
        k, groups = r.samples_per_prompt, r.prompt_ids.shape[0]
        groups_per_mb = max(1, cfg.minibatch_size // k)
        groups_per_micro = self.groups_per_micro_batch(k)
        prompt_lengths, response_tokens = torch.stack(  # host-side token counts: one sync per update
            [r.prompt_mask.sum(-1), r.response_mask.view(groups, k, -1).sum((1, 2))]).tolist()
        sync(self.base.device)
        start = time.perf_counter()
        steps: list[tuple[list[tuple[dict[str, torch.Tensor], float]], torch.Tensor, float]] = []
        tokens = 0
        for _ in range(cfg.epochs):
            batches = [list(range(groups))] if exp.live is not None else group_minibatches(groups, groups_per_mb,
                                                                                             self.shuffler)
            for mb in batches:
                steps.append(self._minibatch_step(exp, mb, groups_per_micro, prompt_lengths, response_tokens))
                passes = 2 if self.critic is not None else 1
                tokens += passes * sum(prompt_lengths[g] + response_tokens[g] for g in mb)
        mask = r.response_mask.float()
        sequence_kl = (kl_estimate(exp.old_logprobs, exp.ref_logprobs, "k1") * mask).sum(-1).mean()
        out = self._mean_stats(steps, sequence_kl)
        self.kl_ctl.update(out.pop("sequence_kl"), r.num_responses)
        seconds = time.perf_counter() - start + exp.live_seconds  # _mean_stats read the device: all work is done
        exp.live_seconds = 0.0
        out.update(update_tokens=float(tokens), update_seconds=seconds,
                   update_tflops=update_tflops(self.params, tokens, seconds))
        if self.peak_tflops:
            out["mfu"] = out["update_tflops"] / self.peak_tflops
        return out

    @staticmethod
    def _mean_stats(steps: list[tuple[list[tuple[dict[str, torch.Tensor], float]], torch.Tensor, float]],
                    sequence_kl: torch.Tensor) -> dict[str, float]:
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

    def _minibatch_step(self, exp: Experience, groups: list[int], groups_per_micro: int, prompt_lengths: list[int],
                        response_tokens: list[int]) -> tuple[list[tuple[dict[str, torch.Tensor], float]],
                                                             torch.Tensor, float]:
        """One optimizer step of the actor (and critic) over one minibatch, with token-weighted accumulation.

        Returns each micro-batch's statistics (device tensors) with its token share, the actor's gradient
        norm (a device tensor) and the learning rate; nothing here waits for the device.
        """
        cfg = self.config
        total_tokens = float(sum(response_tokens[g] for g in groups))
        index = torch.tensor(groups, device=exp.rollout.prompt_ids.device)  # one copy per minibatch
        self.actor_opt.zero_grad(set_to_none=True)
        if self.critic_opt is not None:
            self.critic_opt.zero_grad(set_to_none=True)
        micros: list[tuple[dict[str, torch.Tensor], float]] = []
        for start in range(0, len(groups), groups_per_micro):
            chunk = groups[start : start + groups_per_micro]
            micro = select_groups(exp, index[start : start + groups_per_micro])
            r = trim_prompt_padding(micro.rollout, max(prompt_lengths[g] for g in chunk))
            mask = r.response_mask.float()
            share = float(sum(response_tokens[g] for g in chunk)) / max(total_tokens, 1.0)
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
            micros.append((stats, share))
        exp.live = None  # its graph is spent
        grad_norm = self._optimizer_step(self.actor_params, self.actor_opt, self.actor_sched)
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            self._optimizer_step(self.critic.parameters(), self.critic_opt, self.critic_sched)
        self.step_count += 1
        return micros, grad_norm, float(self.actor_sched.get_last_lr()[0])

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
