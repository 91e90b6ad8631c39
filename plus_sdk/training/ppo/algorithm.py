"""PPO for the summarizer, written out plainly: the config and the math (read top to bottom).

A co-adaptation iteration (``coadapt.py``, Algorithm 1) runs 1. rollout, 2. score, 3. reference,
4. advantages, 5. PPO update of the summarizer, 6. reward-model NLL steps. Sampling and log-probs (steps
1 and 3, and the policy entropy ``rollout.entropy_from_logits``) live in ``rollout.py``, the loop in
``trainer.py`` and its speed helpers in ``speed.py``; this module holds the math of steps 4 and 5:

4. **advantages** — ``kl_estimate`` (k1, k2, k3), a fixed or adaptive KL coefficient
   (``FixedKLController`` / ``AdaptiveKLController``), ``token_rewards`` puts the clipped
   score on the last token and −β·KL on every token; ``RunningMoments`` optionally
   normalizes scores. Then ``gae`` (γ, λ) with a critic, or ``rloo_advantages`` (leave-one-out
   baseline over the ``k`` samples of a prompt, critic-free) / ``group_advantages``; ``whiten``
   over the batch.
5. **update** — ``policy_loss`` (clipped ratio, clip fraction, approximate KL), ``value_loss``
   (clipped), ``mean_sequence_kl`` (what the KL controller follows);
   ``optimizer_steps_per_iteration`` (epochs × minibatches) sizes the actor and critic schedules
   (``make_optimizer``) before training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from plus_sdk.reward import last_token_index
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.optim import Schedule, build_adamw, scheduled

KLEstimator = Literal["k1", "k2", "k3"]
Estimator = Literal["rloo", "group", "gae"]
Autocast = Literal["auto", "bf16", "off"]


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


class PPOConfig(StrictConfig):
    """Everything the PPO half of co-adaptation needs."""

    estimator: Estimator = Field("rloo", description="'rloo' (leave-one-out baseline), 'group' (mean baseline, "
                                                      "divided by the group std) or 'gae' (critic + GAE).")
    samples_per_prompt: int = Field(2, ge=1, description="Summaries sampled per context (k); rloo/group need >= 2.")
    max_new_tokens: int = Field(40, ge=1, description="Longest summary, in tokens.")
    temperature: float = Field(0.9, gt=0, description="Sampling temperature (log-probs use the same one).")
    rollout_engine: Literal["hf", "vllm"] = Field("hf", description="Sampler of the summaries: 'hf' (our KV-cached "
                                                  "loop on the training model) or 'vllm' (a vLLM engine fed the "
                                                  "latest LoRA weights; GPU, plus-sdk[vllm]).")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="Share of GPU memory the vLLM "
                                               "engine may take (the training model needs the rest).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass; 1 disables it.")
    kl_estimator: KLEstimator = Field("k1", description="Per-token KL estimator against the reference policy.")
    kl_coef: float = Field(0.02, ge=0, description="KL coefficient β (the start value when adaptive).")
    kl_target: float | None = Field(None, gt=0, description="Target KL per sequence; set it for the adaptive "
                                                             "controller, leave null for a fixed β.")
    kl_horizon: int = Field(10000, ge=1, description="Adaptive controller horizon, in samples.")
    reward_clip: float = Field(10.0, gt=0, description="Scores are clipped to [-reward_clip, reward_clip].")
    normalize_reward: bool = Field(False, description="Divide scores by a running std (running mean removed).")
    gamma: float = Field(1.0, ge=0, le=1, description="GAE discount γ.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE λ.")
    whiten_advantages: bool = Field(True, description="Whiten advantages over the batch.")
    clip_eps: float = Field(0.2, gt=0, description="PPO ratio clip ε.")
    value_clip: float = Field(0.2, gt=0, description="Value-loss clip around the rollout values.")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss (critic optimizer).")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    epochs: int = Field(1, ge=1, description="PPO epochs over each rollout batch (M_θ = epochs × minibatches).")
    minibatch_size: int = Field(8, ge=1, description="Responses per PPO minibatch (per process).")
    micro_batch_size: int = Field(8, ge=1, description="Responses per forward/backward (gradient accumulation).")
    actor_lr: float = Field(3e-4, gt=0, description="Summarizer LoRA learning rate.")
    critic_lr: float = Field(1e-4, gt=0, description="Critic (LoRA + value head) learning rate.")
    actor_schedule: Schedule = Field("constant", description="Actor lr schedule.")
    critic_schedule: Schedule = Field("constant", description="Critic lr schedule.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of optimizer steps spent warming up.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam betas.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    autocast: Autocast = Field("auto", description="Precision of the log-prob and update forwards: 'bf16' "
                               "(torch autocast over fp32 weights, on CPU too), 'off', or 'auto' (bf16 on a "
                               "bf16-capable CUDA device whose weights are fp32, off elsewhere).")
    peak_tflops: float | None = Field(None, gt=0, description="Peak FLOP rate of the device, in TFLOP/s, for the "
                                      "update's 'mfu' metric; null: the spec bf16 dense peak of a known GPU "
                                      "(H100, H200, A100) when the update computes in bf16, else no mfu.")


# ---------------------------------------------------------------------------------------
# Small tensor helpers
# ---------------------------------------------------------------------------------------


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` where ``mask`` is 1."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` where ``mask`` is 1 (Bessel-corrected by default)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased:
        count = mask.sum()
        if count > 1:
            var = var * count / (count - 1)
    return var


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / std over the masked entries; ``shift_mean=False`` keeps the mean."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


# ---------------------------------------------------------------------------------------
# 4. Advantages: the KL penalty and token rewards
# ---------------------------------------------------------------------------------------


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator = "k1") -> torch.Tensor:
    """Per-token estimate of KL(π || π_ref) from samples of π.

    With log-ratio ``r = log π − log π_ref``: k1 = r (unbiased, can be negative),
    k2 = r²/2 (biased, low variance), k3 = (e^{−r} − 1) + r (unbiased, always ≥ 0).
    """
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kl_estimator={estimator!r} is unknown; use k1, k2 or k3")


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, coef: float) -> None:
        self.value = coef

    def update(self, current_kl: float, n_steps: int) -> None:
        del current_kl, n_steps

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. (2019): move β so that the measured KL tracks a target."""

    def __init__(self, init_coef: float, target: float, horizon: int) -> None:
        self.value = init_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


def make_kl_controller(config: PPOConfig) -> FixedKLController | AdaptiveKLController:
    """Fixed β, or adaptive when ``kl_target`` is set."""
    if config.kl_target is None:
        return FixedKLController(config.kl_coef)
    return AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)


class RunningMoments:
    """Running mean / std of scores (Chan et al. parallel update), for reward normalization."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-8

    def update(self, x: torch.Tensor) -> None:
        batch_mean, batch_var, n = float(x.mean()), float(x.var(unbiased=False)), x.numel()
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 1e-8))

    def state_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float,
                  clip: float) -> torch.Tensor:
    """Per-token rewards: −β·KL everywhere, plus the clipped score on the last token."""
    rewards = -kl_coef * kl * mask
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last_token_index(mask)] += scores.clamp(-clip, clip).to(rewards.dtype)
    return rewards


# ---------------------------------------------------------------------------------------
# 4. Advantages: GAE with a critic, or a leave-one-out / group baseline without one
# ---------------------------------------------------------------------------------------


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over right-padded rows; returns (advantages, returns).

    δ_t = r_t + γ·V_{t+1} − V_t (V after the last real token is 0), A_t = δ_t + γλ·A_{t+1}.
    """
    values = values * mask
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    next_value = torch.zeros_like(next_advantage)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t].to(rewards.dtype)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        # padding positions pass the future through unchanged (they hold zeros)
        next_advantage = advantage * m + next_advantage * (1 - m)
        next_value = values[:, t] * m + next_value * (1 - m)
    returns = (advantages + values) * mask
    return advantages, returns


def rloo_advantages(returns: torch.Tensor, k: int) -> torch.Tensor:
    """Sequence return minus the mean return of the other k−1 samples of the same prompt."""
    if k < 2:
        raise ValueError("the leave-one-out baseline needs samples_per_prompt >= 2")
    grouped = returns.view(-1, k)
    baseline = (grouped.sum(-1, keepdim=True) - grouped) / (k - 1)
    return (grouped - baseline).view(-1)


def group_advantages(returns: torch.Tensor, k: int, eps: float = 1e-6) -> torch.Tensor:
    """(return − group mean) / group std: the critic-free group baseline."""
    if k < 2:
        raise ValueError("the group baseline needs samples_per_prompt >= 2")
    grouped = returns.view(-1, k)
    centered = grouped - grouped.mean(-1, keepdim=True)
    return (centered / (grouped.std(-1, keepdim=True) + eps)).view(-1)


# ---------------------------------------------------------------------------------------
# 5. Update: losses
# ---------------------------------------------------------------------------------------


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor
    clip_fraction: torch.Tensor
    approx_kl: torch.Tensor
    ratio_mean: torch.Tensor


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip_eps: float) -> PolicyLossOutput:
    """PPO clipped surrogate: mean over tokens of max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean(0.5 * log_ratio**2, mask)
        ratio_mean = masked_mean(ratio, mask)
    return PolicyLossOutput(loss, clip_fraction, approx_kl, ratio_mean)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss 0.5·max((V−R)², (clip(V, V_old±c)−R)²); returns (loss, clip fraction)."""
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    with torch.no_grad():
        fraction = masked_mean((loss_clipped > loss_unclipped).float(), mask)
    return loss, fraction


def mean_sequence_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(π || π_ref) per sequence (k1, summed over its tokens), averaged over the batch."""
    return (kl_estimate(logprobs, ref_logprobs, "k1") * mask.float()).sum(-1).mean()


# ---------------------------------------------------------------------------------------
# 5. Update: optimizer steps and schedules
# ---------------------------------------------------------------------------------------


def optimizer_steps_per_iteration(config: PPOConfig, prompts_per_process: int) -> int:
    """Optimizer steps one ``update`` takes: epochs × minibatches (a prompt's k samples stay together)."""
    groups_per_minibatch = max(1, config.minibatch_size // config.samples_per_prompt)
    return config.epochs * math.ceil(prompts_per_process / groups_per_minibatch)


def make_optimizer(params: list[torch.nn.Parameter], lr: float, config: PPOConfig, schedule: Schedule,
                   total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW + warmup/schedule for one role, over ``total_steps`` optimizer steps."""
    optimizer = build_adamw(params, lr=lr, betas=config.betas, weight_decay=config.weight_decay)
    return optimizer, scheduled(optimizer, schedule=schedule, total=total_steps, warmup_ratio=config.warmup_ratio)
