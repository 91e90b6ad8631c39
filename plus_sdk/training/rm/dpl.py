"""Distributional preference learning (DPL) baselines: mean-variance and categorical heads.

Both ignore the user's context; they model the spread of rewards across users instead.

* ``dpl-meanvar``: the head outputs (μ, raw); σ = softplus(raw). With
  z = (μ_c − μ_r) / √(σ_c² + σ_r²) the loss is softplus(−z·√(2π)) = −log σ(z·√(2π)), a smooth
  stand-in for −log Φ(z); P(chosen wins) = σ(z·√(2π)); the reward is μ.
* ``dpl-categorical``: the head outputs logits over 10 atoms on [0, 1]. P(chosen wins) is
  P(X_c > X_r) + ½·P(X_c = X_r) for independent X_c, X_r; the loss is −log of it minus 0.1 × the
  mean entropy of the two distributions (an entropy bonus); the reward is E[X].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from plus_sdk.training.rm.base import PairOutput, RewardMethod

SQRT_2PI = math.sqrt(2.0 * math.pi)
SIGMA_FLOOR = 1e-4


class DPLMeanVar(RewardMethod):
    """Gaussian reward per response: (mean, softplus std)."""

    name = "dpl-meanvar"
    out_features = 2

    def pair(self, chosen: torch.Tensor, rejected: torch.Tensor) -> PairOutput:
        mu_c, mu_r = chosen[:, 0], rejected[:, 0]
        sigma_c = F.softplus(chosen[:, 1]) + SIGMA_FLOOR
        sigma_r = F.softplus(rejected[:, 1]) + SIGMA_FLOOR
        z = (mu_c - mu_r) / torch.sqrt(sigma_c**2 + sigma_r**2)
        loss = F.softplus(-z * SQRT_2PI).mean()
        return PairOutput(loss=loss, prob=torch.sigmoid(z * SQRT_2PI), margin=mu_c - mu_r)


class DPLCategorical(RewardMethod):
    """Categorical reward per response over ``atoms`` evenly spaced values on [0, 1]."""

    name = "dpl-categorical"
    out_features = 10
    entropy_coef = 0.1

    def atoms(self, like: torch.Tensor) -> torch.Tensor:
        return torch.linspace(0.0, 1.0, self.out_features, device=like.device, dtype=like.dtype)

    def reward(self, outputs: torch.Tensor) -> torch.Tensor:
        return (outputs.softmax(-1) * self.atoms(outputs)).sum(-1)

    @staticmethod
    def win_probability(p_c: torch.Tensor, p_r: torch.Tensor) -> torch.Tensor:
        """P(X_c > X_r) + ½ P(X_c = X_r) for rows of atom probabilities."""
        joint = p_c.unsqueeze(2) * p_r.unsqueeze(1)  # [B, i (chosen atom), j (rejected atom)]
        n = p_c.shape[-1]
        above = torch.tril(torch.ones(n, n, device=p_c.device, dtype=p_c.dtype), diagonal=-1)  # i > j
        eye = torch.eye(n, device=p_c.device, dtype=p_c.dtype)
        return (joint * (above + 0.5 * eye)).sum((1, 2))

    def pair(self, chosen: torch.Tensor, rejected: torch.Tensor) -> PairOutput:
        p_c, p_r = chosen.softmax(-1), rejected.softmax(-1)
        prob = self.win_probability(p_c, p_r).clamp(1e-6, 1 - 1e-6)
        entropy = 0.5 * (-(p_c * chosen.log_softmax(-1)).sum(-1) - (p_r * rejected.log_softmax(-1)).sum(-1))
        loss = (-prob.log() - self.entropy_coef * entropy).mean()
        return PairOutput(loss=loss, prob=prob, margin=self.reward(chosen) - self.reward(rejected))
