"""VPL on the encoder path: a latent user vector inferred from the context's pairs, no text summary.

Variational Preference Learning (Poddar et al., 2024) reads a user's labelled pairs with an encoder
q(z | c), samples a latent z and conditions the reward on it, trained by the Bradley–Terry loss
plus β · KL(q(z | c) ‖ N(0, I)). On the encoder path every text is already a frozen sentence
embedding, so the pieces are small:

    pair i of the context ──▶ g([e(chosen) − e(rejected), e(prompt)])     one vector per pair
    mean over pairs ──▶ (μ, log σ²) of a ``latent``-wide Gaussian          q(z | c)
    z ~ q (training) or z = μ (evaluation) ──▶ P z                          where a summary's embedding goes
    r(y | z, x) = the encoder-path head of ``plus_sdk.encoder_reward`` reading P z as its user input

It is the baseline PLUS is compared with when the user representation is a vector instead of
readable text, trained on exactly the rows, embeddings and head the other encoder methods use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plus_sdk.encoder_reward import EncoderScorer, mlp
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.rm.encoder import EncoderSettings, HeadOptimizer


class PairPosterior(nn.Module):
    """q(z | c): a network per pair, mean-pooled over the context, to a Gaussian's mean and log-variance."""

    def __init__(self, dim: int, latent: int, hidden: int) -> None:
        super().__init__()
        self.pair = mlp([2 * dim, hidden, hidden])
        self.out = nn.Linear(hidden, 2 * latent)

    def forward(self, pairs: torch.Tensor, owner: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``pairs`` ``[P, 2·dim]`` belong to contexts ``owner`` ``[P]`` in ``0..n−1``; returns (μ, log σ²),
        each ``[n, latent]``. A context without pairs gets the prior (μ = 0, log σ² = 0)."""
        hidden = self.pair(pairs)
        pooled = torch.zeros(n, hidden.shape[-1]).index_add_(0, owner, hidden)
        counts = torch.zeros(n).index_add_(0, owner, torch.ones(len(owner)))
        stats = self.out(pooled / counts.clamp(min=1).unsqueeze(-1))
        mean, log_var = stats.chunk(2, dim=-1)
        empty = (counts == 0).unsqueeze(-1)
        return mean.masked_fill(empty, 0.0), log_var.masked_fill(empty, 0.0)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row, averaged over latent dimensions: ½ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).mean(-1)


class EncoderVPLTrainer(HeadOptimizer):
    """The encoder-path head conditioned on a VPL latent; same ``step`` / ``predict`` / state as ``EncoderTrainer``."""

    def __init__(self, scorer: EncoderScorer, settings: EncoderSettings, *,
                 total_steps: int, seed: int = 0) -> None:
        self.scorer = scorer
        self.settings = settings
        self.head = scorer.head
        dim = scorer.encoder.dim
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.posterior = PairPosterior(dim, settings.vpl_latent, settings.hidden)
        self.to_user = nn.Linear(settings.vpl_latent, 2 * dim)
        torch.random.set_rng_state(generator_state)
        self.sampler = torch.Generator().manual_seed(seed)
        super().__init__({"head": self.head, "posterior": self.posterior, "to_user": self.to_user}, settings,
                         total_steps=total_steps)

    def prepare(self, records: Sequence[TrainingRecord], *, progress: bool = False) -> None:
        """Embed every text the rows and their contexts hold, once."""
        texts = {t for r in records for t in (r.prompt, r.chosen, r.rejected)}
        texts |= {t for r in records for e in r.context.examples for t in (e.prompt, e.chosen, e.rejected)}
        self.scorer.encoder.encode(sorted(texts), progress=progress)

    def context_pairs(self, records: Sequence[TrainingRecord]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every context pair's input ``[P, 2·dim]`` and the row it belongs to ``[P]``."""
        owners = [i for i, r in enumerate(records) for _ in r.context.examples]
        examples = [e for r in records for e in r.context.examples]
        dim = self.scorer.encoder.dim
        if not examples:
            return torch.zeros(0, 2 * dim), torch.zeros(0, dtype=torch.long)
        encode = self.scorer.encoder.encode
        chosen, rejected, prompt = (encode([getattr(e, f) for e in examples]) for f in ("chosen", "rejected", "prompt"))
        return torch.cat([chosen - rejected, prompt], -1), torch.tensor(owners)

    def margins(self, records: Sequence[TrainingRecord], *, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(r(chosen | z) − r(rejected | z), KL per row); z is drawn from q when ``sample``, else its mean."""
        pairs, owner = self.context_pairs(records)
        mean, log_var = self.posterior(pairs, owner, len(records))
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=self.sampler)
            z = mean + (0.5 * log_var).exp() * noise
        user = self.to_user(z).repeat(2, 1)
        items = [(None, r.prompt, r.chosen) for r in records] + [(None, r.prompt, r.rejected) for r in records]
        feats = self.scorer.features(items)
        rewards = self.head(user, torch.ones(len(items)), feats["prompt"], feats["reply"])
        return rewards[: len(records)] - rewards[len(records):], kl_to_standard_normal(mean, log_var)

    def step(self, records: Sequence[TrainingRecord]) -> dict[str, float]:
        """One step of Bradley–Terry NLL + β · KL."""
        self.train_mode(True)
        margin, kl = self.margins(records, sample=True)
        nll = -F.logsigmoid(margin).mean()
        loss = nll + self.settings.vpl_kl_weight * kl.mean()
        lr = self.update(loss)
        self.train_mode(False)
        margin = margin.detach()
        return {"loss": loss.item(), "nll": nll.item(), "kl": float(kl.detach().mean()),
                "accuracy": float((margin > 0).float().mean()), "margin": float(margin.mean()), "lr": lr}

    @torch.no_grad()
    def predict(self, records: Sequence[TrainingRecord], batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(chosen wins), margin) of every row with z = the posterior mean."""
        margins = [self.margins(records[s:s + batch_size], sample=False)[0] for s in range(0, len(records), batch_size)]
        margin = torch.cat(margins) if margins else torch.empty(0)
        return torch.sigmoid(margin), margin

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "sampler": self.sampler.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.sampler.set_state(state["sampler"])
