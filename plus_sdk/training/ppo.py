"""PPO for the summarizer, written out plainly (read top to bottom).

The pieces, in the order one iteration uses them:

1. **rollout** — ``sample_responses`` prefills each prompt once, copies its KV cache for the
   ``k`` samples of that prompt, and samples token by token (temperature, optional top-p).
   Token ids and masks are kept exactly as generated.
2. **log-probs** — ``response_logprobs`` runs the prompt once (with gradients when training),
   shares its cache across the ``k`` responses, and returns per-token log-probs (and the
   hidden states a value head needs). The reference policy is the same base with every
   adapter off, so no second copy of the model exists.
3. **rewards** — ``kl_estimate`` (k1, k2, k3), a fixed or adaptive KL coefficient
   (``FixedKLController`` / ``AdaptiveKLController``), ``token_rewards`` puts the clipped
   score on the last token and −β·KL on every token; ``RunningMoments`` optionally
   normalizes scores.
4. **advantages** — ``gae`` (γ, λ) with a critic, or ``rloo_advantages`` (leave-one-out
   baseline over the ``k`` samples of a prompt, critic-free); ``whiten`` over the batch.
5. **losses** — ``policy_loss`` (clipped ratio, clip fraction, approximate KL),
   ``value_loss`` (clipped), ``entropy_from_logits``.
6. **update** — ``PPOTrainer.update`` runs epochs × minibatches with gradient clipping and
   separate optimizers / schedules for the actor and the critic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from plus_sdk.training.config import StrictConfig

logger = logging.getLogger(__name__)

KLEstimator = Literal["k1", "k2", "k3"]
Estimator = Literal["rloo", "group", "gae"]


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
    actor_schedule: Literal["constant", "linear", "cosine"] = Field("constant", description="Actor lr schedule.")
    critic_schedule: Literal["constant", "linear", "cosine"] = Field("constant", description="Critic lr schedule.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of optimizer steps spent warming up.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam betas.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient-norm clip.")


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


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists into (ids, mask)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            ids[row, width - len(seq):] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids, mask


def prompt_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded prompts (pads get 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


# ---------------------------------------------------------------------------------------
# 1. Rollout: sample k responses per prompt, sharing each prompt's KV cache
# ---------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """What sampling produced: prompts (left-padded) and k responses each (right-padded)."""

    prompt_ids: torch.Tensor  # [B, P]
    prompt_mask: torch.Tensor  # [B, P]
    response_ids: torch.Tensor  # [B*k, S]
    response_mask: torch.Tensor  # [B*k, S]; 1 on generated tokens, EOS included
    samples_per_prompt: int

    @property
    def num_responses(self) -> int:
        return int(self.response_ids.shape[0])

    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)


def _cache_kwargs(body: Any, cache: Any) -> dict[str, Any]:
    """Pass a KV cache under the keyword this transformers version expects."""
    import inspect

    params = inspect.signature(body.forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


def _cache_of(output: Any) -> Any:
    """The KV cache of a model output (``cache`` or ``past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _forward_body(body: Any, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                  cache: Any) -> tuple[torch.Tensor, Any]:
    """One forward of the transformer body with a KV cache: (hidden states, updated cache)."""
    out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
               **_cache_kwargs(body, cache))
    return out.last_hidden_state, _cache_of(out)


def _prefill(body: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, k: int) -> tuple[Any, torch.Tensor]:
    """Run the prompts once; return their KV cache repeated k times and last hidden states."""
    from transformers import DynamicCache

    hidden, cache = _forward_body(body, prompt_ids, prompt_mask, prompt_positions(prompt_mask), DynamicCache())
    if k > 1:
        cache.batch_repeat_interleave(k)
    return cache, hidden[:, -1:].repeat_interleave(k, dim=0)


def _sample_token(logits: torch.Tensor, temperature: float, top_p: float,
                  generator: torch.Generator | None) -> torch.Tensor:
    """One token per row from softmax(logits / T), restricted to the top-p mass."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    # exponential race (argmax of p / E, E ~ Exp(1)) draws from p, on the model's device
    noise = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / noise).argmax(dim=-1)


@torch.no_grad()
def sample_responses(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, *, k: int,
                     max_new_tokens: int, eos_ids: Sequence[int], pad_id: int, temperature: float = 1.0,
                     top_p: float = 1.0, greedy: bool = False,
                     generator: torch.Generator | None = None) -> Rollout:
    """Sample ``k`` responses per prompt; each prompt is run through the model once."""
    device = prompt_ids.device
    n = prompt_ids.shape[0] * k
    body, head = causal_lm_parts(model)
    cache, hidden = _prefill(body, prompt_ids, prompt_mask, k)
    logits = head(hidden)[:, -1]
    mask = prompt_mask.repeat_interleave(k, dim=0)
    start = prompt_mask.sum(-1).repeat_interleave(k, dim=0)
    eos = torch.tensor(list(eos_ids), device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    tokens: list[torch.Tensor] = []
    alive: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        token = logits.argmax(-1) if greedy else _sample_token(logits, temperature, top_p, generator)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        alive.append(~done)
        tokens.append(token)
        done = done | torch.isin(token, eos)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, alive[-1].long().unsqueeze(-1)], dim=-1)
        hidden, cache = _forward_body(body, token.unsqueeze(-1), mask, (start + step).unsqueeze(-1), cache)
        logits = head(hidden)[:, -1]
    response_ids = torch.stack(tokens, dim=1)
    response_mask = torch.stack(alive, dim=1).long()
    return Rollout(prompt_ids, prompt_mask, response_ids, response_mask, k)


# ---------------------------------------------------------------------------------------
# 2. Log-probs (policy, reference) and hidden states (critic), prompt run once per group
# ---------------------------------------------------------------------------------------


def _response_hidden(body: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                     response_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Hidden states at the positions that predict each response token: [B*k, S, H]."""
    cache, last_prompt = _prefill(body, prompt_ids, prompt_mask, k)
    start = prompt_mask.sum(-1).repeat_interleave(k, dim=0)
    positions = start.unsqueeze(-1) + torch.arange(response_ids.shape[1], device=response_ids.device)
    mask = torch.cat([prompt_mask.repeat_interleave(k, dim=0), response_mask], dim=-1)
    hidden, _ = _forward_body(body, response_ids, mask, positions, cache)
    return torch.cat([last_prompt, hidden[:, :-1]], dim=1)


def causal_lm_parts(model: Any) -> tuple[Any, Any]:
    """(transformer body, lm head) of a causal LM, peft-wrapped or not."""
    from peft import PeftModel

    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    body = inner.get_decoder() if hasattr(inner, "get_decoder") and inner.get_decoder() is not None else inner.model
    return body, inner.get_output_embeddings()


@dataclass
class LogProbs:
    """Per-token log-probs of the taken tokens, with the entropy of each distribution."""

    logprobs: torch.Tensor  # [N, S]
    entropy: torch.Tensor  # [N, S]


def response_logprobs(model: Any, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor,
                      response_mask: torch.Tensor, k: int, temperature: float = 1.0) -> LogProbs:
    """log π(token | prefix) / T-scaled for every response token (with grads if enabled)."""
    body, head = causal_lm_parts(model)
    hidden = _response_hidden(body, prompt_ids, prompt_mask, response_ids, response_mask, k)
    logits = head(hidden).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    entropy = entropy_from_logits(logits)
    return LogProbs(logprobs * response_mask, entropy * response_mask)


def response_values(model: Any, value_head: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                    response_ids: torch.Tensor, response_mask: torch.Tensor, k: int) -> torch.Tensor:
    """Critic values V(s_t) for every response position: [N, S]."""
    body, _ = causal_lm_parts(model)
    hidden = _response_hidden(body, prompt_ids, prompt_mask, response_ids, response_mask, k)
    return value_head(hidden.to(next(value_head.parameters()).dtype)).squeeze(-1).float() * response_mask


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) along the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


# ---------------------------------------------------------------------------------------
# 3. KL penalty and rewards
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


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of a right-padded mask."""
    return (mask.sum(-1) - 1).clamp(min=0).long()


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
# 5. Losses
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


# ---------------------------------------------------------------------------------------
# 6. Optimizers, schedules and the update loop
# ---------------------------------------------------------------------------------------


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int) -> Any:
    """Multiplier of the base lr at a given optimizer step (linear warmup, then the schedule)."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        if schedule == "linear":
            return max(1.0 - progress, 0.0)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def make_optimizer(params: list[torch.nn.Parameter], lr: float, config: PPOConfig, schedule: str,
                   total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW + warmup/schedule for one role; the fused (one-kernel) AdamW when every parameter is on CUDA."""
    params = list(params)
    fused = bool(params) and all(p.is_cuda for p in params)
    optimizer = torch.optim.AdamW(params, lr=lr, betas=config.betas, weight_decay=config.weight_decay,
                                  fused=fused or None)
    warmup = int(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(schedule, total_steps, warmup))
    return optimizer, scheduler


def all_reduce_grads(params: Sequence[torch.nn.Parameter]) -> None:
    """Average gradients over processes (no-op in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad /= world


@dataclass
class Experience:
    """A rollout with everything the update needs, on the training device."""

    rollout: Rollout
    old_logprobs: torch.Tensor  # [N, S]
    ref_logprobs: torch.Tensor  # [N, S]
    advantages: torch.Tensor  # [N, S]
    returns: torch.Tensor  # [N, S]
    old_values: torch.Tensor | None  # [N, S], GAE only


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
    """The LoRA weights of one named adapter."""
    params = [p for name, p in model.named_parameters() if "lora_" in name and f".{adapter}." in name]
    if not params:
        raise ValueError(f"the model has no LoRA adapter named {adapter!r}; add it with SharedBase.add_new_adapter")
    return params


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

    def __init__(self, base: Any, config: PPOConfig, *, total_iterations: int, adapter: str = "summarizer",
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
        steps = total_iterations * self.steps_per_iteration_estimate()
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

    def steps_per_iteration_estimate(self) -> int:
        return self.config.epochs

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
        from plus_sdk.training.vllm_rollout import pack_rollout

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

    def make_experience(self, rollout: Rollout, scores: torch.Tensor,
                        ref_logprobs: torch.Tensor | None = None) -> tuple[Experience, dict[str, float]]:
        """Old/reference log-probs, values, rewards and advantages for one rollout."""
        old = self.logprobs(rollout, reference=False)
        ref = ref_logprobs if ref_logprobs is not None else self.logprobs(rollout, reference=True)
        values = None
        if self.critic is not None:
            with torch.no_grad():
                values = self.critic.values(rollout)
        advantages, returns, metrics = self.advantages(scores, old, ref, rollout.response_mask, values,
                                                       rollout.samples_per_prompt)
        return Experience(rollout, old, ref, advantages, returns, values), metrics

    # -------------------------------------------------------------- update
    def update(self, exp: Experience) -> dict[str, float]:
        """Epochs × minibatches of clipped PPO on the actor (and the critic for GAE)."""
        cfg = self.config
        k = exp.rollout.samples_per_prompt
        groups = exp.rollout.prompt_ids.shape[0]
        groups_per_mb = max(1, cfg.minibatch_size // k)
        groups_per_micro = max(1, min(cfg.micro_batch_size // k, groups_per_mb))
        totals: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            for mb in group_minibatches(groups, groups_per_mb, self.shuffler):
                metrics = self._minibatch_step(exp, mb, groups_per_micro)
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        mask = exp.rollout.response_mask.float()
        sequence_kl = (kl_estimate(exp.old_logprobs, exp.ref_logprobs, "k1") * mask).sum(-1).mean()
        self.kl_ctl.update(float(sequence_kl), exp.rollout.num_responses)
        return {key: value / max(count, 1) for key, value in totals.items()}

    def _minibatch_step(self, exp: Experience, groups: list[int], groups_per_micro: int) -> dict[str, float]:
        """One optimizer step of the actor (and critic) over one minibatch, with accumulation."""
        cfg = self.config
        r = exp.rollout
        per_group = r.response_mask.view(-1, r.samples_per_prompt, r.response_mask.shape[-1]).sum((1, 2))
        total_tokens = per_group[torch.tensor(groups, device=per_group.device)].sum().clamp(min=1).float()
        self.actor_opt.zero_grad(set_to_none=True)
        if self.critic_opt is not None:
            self.critic_opt.zero_grad(set_to_none=True)
        # running sums stay on the device: no host sync per micro-batch, one at the end
        stats: dict[str, Any] = {"policy_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0,
                                 "value_loss": 0.0, "value_clip_fraction": 0.0}
        for start in range(0, len(groups), groups_per_micro):
            micro = select_groups(exp, groups[start : start + groups_per_micro])
            r = trim_prompt_padding(micro.rollout)
            mask = r.response_mask.float()
            share = mask.sum() / total_tokens  # token-weighted accumulation
            with self.base.use(self.adapter) as model:
                out = response_logprobs(model, r.prompt_ids, r.prompt_mask, r.response_ids, r.response_mask,
                                        r.samples_per_prompt, cfg.temperature)
                pl = policy_loss(out.logprobs, micro.old_logprobs, micro.advantages, mask, cfg.clip_eps)
                entropy = masked_mean(out.entropy, mask)
                loss = pl.loss - cfg.entropy_coef * entropy
                (loss * share).backward()
            stats["policy_loss"] += pl.loss.detach() * share
            stats["entropy"] += entropy.detach() * share
            stats["clip_fraction"] += pl.clip_fraction.detach() * share
            stats["approx_kl"] += pl.approx_kl.detach() * share
            if self.critic is not None:
                assert micro.old_values is not None
                values = self.critic.values(r)
                vloss, vclip = value_loss(values, micro.old_values, micro.returns, mask, cfg.value_clip)
                (cfg.vf_coef * vloss * share).backward()
                stats["value_loss"] += vloss.detach() * share
                stats["value_clip_fraction"] += vclip.detach() * share
        all_reduce_grads(self.actor_params)
        stats["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.actor_params, cfg.max_grad_norm)
        self.actor_opt.step()
        self.actor_sched.step()
        if self.critic is not None and self.critic_opt is not None and self.critic_sched is not None:
            params = self.critic.parameters()
            all_reduce_grads(params)
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            self.critic_opt.step()
            self.critic_sched.step()
        else:
            del stats["value_loss"], stats["value_clip_fraction"]
        self.step_count += 1
        stats["actor_lr"] = self.actor_sched.get_last_lr()[0]
        return {key: float(value) for key, value in stats.items()}

    def can_fuse(self, num_responses: int) -> bool:
        """True when one on-policy gradient step covers the batch (no separate old-log-prob pass)."""
        cfg = self.config
        return (cfg.estimator != "gae" and cfg.epochs == 1 and cfg.minibatch_size >= num_responses
                and cfg.micro_batch_size >= num_responses)

    def fused_update(self, rollout: Rollout, scores: torch.Tensor,
                     ref_logprobs: torch.Tensor) -> dict[str, float]:
        """One on-policy step: a single forward gives both the old log-probs (detached) and the loss.

        Identical to ``make_experience`` + ``update`` when the batch is one minibatch and one
        epoch (the ratio is exactly 1), minus one forward pass.
        """
        cfg = self.config
        r = rollout
        mask = r.response_mask.float()
        self.actor_opt.zero_grad(set_to_none=True)
        with self.base.use(self.adapter) as model:
            out = response_logprobs(model, r.prompt_ids, r.prompt_mask, r.response_ids, r.response_mask,
                                    r.samples_per_prompt, cfg.temperature)
            old = out.logprobs.detach()
            advantages, _, metrics = self.advantages(scores, old, ref_logprobs, r.response_mask, None,
                                                     r.samples_per_prompt)
            pl = policy_loss(out.logprobs, old, advantages, mask, cfg.clip_eps)
            entropy = masked_mean(out.entropy, mask)
            (pl.loss - cfg.entropy_coef * entropy).backward()
        all_reduce_grads(self.actor_params)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.actor_params, cfg.max_grad_norm)
        self.actor_opt.step()
        self.actor_sched.step()
        self.step_count += 1
        sequence_kl = (kl_estimate(old, ref_logprobs, "k1") * mask).sum(-1).mean()
        self.kl_ctl.update(float(sequence_kl), r.num_responses)
        metrics.update({"policy_loss": float(pl.loss.detach()), "entropy": float(entropy.detach()),
                        "clip_fraction": float(pl.clip_fraction), "approx_kl": float(pl.approx_kl),
                        "grad_norm": float(grad_norm), "actor_lr": float(self.actor_sched.get_last_lr()[0])})
        return metrics

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
