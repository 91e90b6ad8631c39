"""Variational preference learning (VPL, Poddar et al.) on frozen text embeddings.

Every text ("User: prompt / Assistant: response") is embedded once by a frozen encoder —
all-MiniLM-L6-v2 (mean pooling, offline from its PyPI package) or the backbone LM's
last-token hidden state (adapters off). For each user:

1. each context pair becomes [e(prompt+chosen); e(prompt+rejected)] → pair-encoder MLP
   (2d → 512 → 512 → 512, LeakyReLU 0.2);
2. one-head self-attention over the pairs, then a (masked) mean over pairs;
3. linear maps to the mean and log-variance of a latent (both clamped to [−1, 1]);
4. z = mean + σ·ε (training) or z = mean (evaluation), L2-normalized and scaled by √latent;
5. the decoder MLP (d + latent → 512 → 512 → 1) scores each target response embedding.

Loss: Bradley–Terry on the decoder's rewards + β·w(step)·KL(q(z|context) ‖ N(0, I)), with w
a cyclical annealing schedule (linear ramp 0→1 over the first half of each cycle, then 1).

Saved as ``vpl.safetensors`` + ``vpl.json`` (config, encoder, optimizer-free); load with
``VPLRewardModel.from_pretrained(folder)``. This is not a LoRA adapter: VPL's reward model is
its own small network on top of a frozen encoder.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from plus_sdk.backends.local import SharedBase
from plus_sdk.files import atomic_write_text
from plus_sdk.models import find_minilm, pick_device
from plus_sdk.reward import last_token_index
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.optim import build_adamw, scheduled
from plus_sdk.types import UserContext

WEIGHTS_FILE = "vpl.safetensors"
CONFIG_FILE = "vpl.json"


MIN_LR_RATIO = 0.1  # the cosine decay of the VPL network's lr ends at lr × this

class VPLConfig(StrictConfig):
    """Network, loss and optimizer settings of VPL."""

    encoder: Literal["minilm", "backbone"] = Field("minilm", description="Frozen text encoder: all-MiniLM-L6-v2 "
                                                   "or the backbone LM's last hidden state.")
    hidden: int = Field(512, ge=4, description="Width of the pair encoder, attention and decoder (paper 512).")
    latent: int = Field(512, ge=2, description="Latent size (paper 512).")
    beta: float = Field(1e-4, ge=0, description="KL weight (paper: 1e-4 Pets, 0 UF-P2, 3e-6 UF-P4).")
    kl_cycles: int = Field(4, ge=1, description="Cycles of the cyclical KL annealing over the run.")
    kl_ramp: float = Field(0.5, gt=0, le=1, description="Share of each cycle spent ramping the KL weight 0 → 1.")
    lr: float = Field(3e-4, gt=0, description="AdamW learning rate of the VPL network.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.03, ge=0, le=1, description="Share of steps with linear warmup.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient-norm clip.")
    embed_batch_size: int = Field(64, ge=1, description="Texts per encoder forward pass when embedding.")
    max_text_tokens: int = Field(256, ge=8, description="Encoder input length cap (MiniLM: ≤ 512).")
    seed: int = Field(0, description="Seed of the network initialisation and latent sampling.")


def pair_text(prompt: str, response: str) -> str:
    """The text embedded for one (prompt, response)."""
    return f"User: {prompt}\nAssistant: {response}"


# ---------------------------------------------------------------------------------------
# Frozen encoders
# ---------------------------------------------------------------------------------------


class TextEncoder:
    """Frozen sentence embeddings with an in-memory cache (text → vector)."""

    def __init__(self, kind: str = "minilm", *, backbone: str | None = None, device: str | None = None,
                 batch_size: int = 64, max_tokens: int = 256) -> None:
        self.kind = kind
        self.backbone = backbone
        self.device = pick_device(device)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.cache: dict[str, torch.Tensor] = {}
        if kind == "minilm":
            from transformers import AutoModel, AutoTokenizer  # optional: transformers auto classes, on first use

            folder = find_minilm()
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModel.from_pretrained(folder).to(self.device).eval()
            self.dim = int(self.model.config.hidden_size)
        elif kind == "backbone":
            self.base = SharedBase.load(backbone, device=str(self.device))
            self.tokenizer = self.base.tokenizer
            self.dim = int(self.base.model.config.hidden_size)
        else:
            raise ValueError(f"VPL encoder {kind!r} is unknown; use 'minilm' or 'backbone'")

    @torch.inference_mode()
    def _forward(self, texts: list[str]) -> torch.Tensor:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_tokens).to(self.device)
        if self.kind == "minilm":
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float().cpu()

        with self.base.use(None) as model:
            body = self.base.decoder(model)
            hidden = body(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        index = last_token_index(enc["attention_mask"])
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), index].float().cpu()

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> torch.Tensor:
        """Embeddings ``[len(texts), dim]``, computing only the texts not seen before."""
        todo = sorted({t for t in texts if t not in self.cache}, key=len)
        bar = tqdm(total=len(todo), desc=f"embed ({self.kind})", unit="text", disable=not progress or not todo)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            for text, vector in zip(chunk, self._forward(chunk), strict=True):
                self.cache[text] = vector
            bar.update(len(chunk))
        bar.close()
        if not texts:
            return torch.empty(0, self.dim)
        return torch.stack([self.cache[t] for t in texts])


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with LeakyReLU(0.2) between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class VPLNetwork(nn.Module):
    """Pair encoder + self-attention + Gaussian latent + reward decoder."""

    def __init__(self, embed_dim: int, hidden: int = 512, latent: int = 512) -> None:
        super().__init__()
        self.embed_dim, self.hidden, self.latent = embed_dim, hidden, latent
        self.pair_encoder = mlp([2 * embed_dim, hidden, hidden, hidden])
        self.attention = nn.MultiheadAttention(hidden, num_heads=1, batch_first=True)
        self.to_mean = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = mlp([embed_dim + latent, hidden, hidden, 1])

    def posterior(self, pairs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance ``[B, latent]`` from context pairs ``[B, K, 2d]`` (mask ``[B, K]``, 1 = real)."""
        h = self.pair_encoder(pairs)
        attended, _ = self.attention(h, h, h, key_padding_mask=~mask.bool())
        weights = mask.to(attended.dtype).unsqueeze(-1)
        pooled = (attended * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.to_mean(pooled).clamp(-1, 1), self.to_logvar(pooled).clamp(-1, 1)

    def latent_code(self, mean: torch.Tensor, logvar: torch.Tensor, *, sample: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """z (sampled or the mean), L2-normalized and scaled by √latent."""
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * noise
        return F.normalize(z, dim=-1) * math.sqrt(self.latent)

    def reward(self, targets: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Rewards ``[B]`` of target embeddings ``[B, d]`` for users ``z`` ``[B, latent]``."""
        return self.decoder(torch.cat([targets, z], dim=-1)).squeeze(-1)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, I)), summed over latent dims, averaged over the batch."""
    return 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(-1).mean()


def cyclical_weight(step: int, *, total: int, cycles: int, ramp: float) -> float:
    """KL annealing weight in [0, 1]: a linear ramp at the start of each of ``cycles`` cycles."""
    period = max(total / cycles, 1.0)
    position = (step % period) / period
    return min(position / ramp, 1.0)


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------


def context_texts(context: UserContext) -> list[tuple[str, str]]:
    """(chosen text, rejected text) of every labelled pair of a context."""
    return [(pair_text(e.prompt, e.chosen), pair_text(e.prompt, e.rejected)) for e in context.examples]


def record_texts(record: TrainingRecord) -> list[str]:
    """Every text VPL embeds for one record."""
    texts = [t for pair in context_texts(record.context) for t in pair]
    return [*texts, pair_text(record.prompt, record.chosen), pair_text(record.prompt, record.rejected)]


class VPLTrainer:
    """Trains a ``VPLNetwork`` on records; same step/evaluate/state_dict surface as ``RewardTrainer``."""

    def __init__(self, config: VPLConfig, *, total_steps: int, encoder: TextEncoder | None = None,
                 backbone: str | None = None, device: str | None = None) -> None:
        self.config = config
        self.encoder = encoder or TextEncoder(config.encoder, backbone=backbone, device=device,
                                              batch_size=config.embed_batch_size, max_tokens=config.max_text_tokens)
        self.backbone = backbone
        torch.manual_seed(config.seed)
        self.net = VPLNetwork(self.encoder.dim, config.hidden, config.latent).to(self.encoder.device)
        self.total_steps = max(int(total_steps), 1)
        self.optimizer = build_adamw(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = scheduled(self.optimizer, schedule="cosine", total=self.total_steps,
                                   warmup_ratio=config.warmup_ratio, floor=MIN_LR_RATIO)
        self.generator = torch.Generator(device=self.encoder.device).manual_seed(config.seed)
        self.step_count = 0

    def prepare(self, records: Sequence[TrainingRecord]) -> None:
        """Embed every text of ``records`` once."""
        self.encoder.embed([t for r in records for t in record_texts(r)], progress=True)

    def tensors(self, records: Sequence[TrainingRecord]) -> dict[str, torch.Tensor]:
        """Padded context pairs, their mask, and the chosen/rejected target embeddings."""
        k = max(max(len(r.context.examples) for r in records), 1)
        d = self.encoder.dim
        pairs = torch.zeros(len(records), k, 2 * d)
        mask = torch.zeros(len(records), k, dtype=torch.bool)
        for row, record in enumerate(records):
            texts = context_texts(record.context)
            if texts:
                flat = self.encoder.embed([t for pair in texts for t in pair]).view(len(texts), 2 * d)
                pairs[row, : len(texts)] = flat
                mask[row, : len(texts)] = True
        if not bool(mask.any(1).all()):
            raise ValueError("VPL needs at least one labelled pair in every record's context")
        chosen = self.encoder.embed([pair_text(r.prompt, r.chosen) for r in records])
        rejected = self.encoder.embed([pair_text(r.prompt, r.rejected) for r in records])
        device = self.encoder.device
        return {"pairs": pairs.to(device), "mask": mask.to(device), "chosen": chosen.to(device),
                "rejected": rejected.to(device)}

    def forward(self, records: Sequence[TrainingRecord], *, sample: bool) -> dict[str, torch.Tensor]:
        t = self.tensors(records)
        mean, logvar = self.net.posterior(t["pairs"], t["mask"])
        z = self.net.latent_code(mean, logvar, sample=sample, generator=self.generator)
        margin = self.net.reward(t["chosen"], z) - self.net.reward(t["rejected"], z)
        return {"margin": margin, "kl": kl_divergence(mean, logvar), "mean": mean, "logvar": logvar, "z": z}

    def kl_weight(self) -> float:
        c = self.config
        return c.beta * cyclical_weight(self.step_count, total=self.total_steps, cycles=c.kl_cycles, ramp=c.kl_ramp)

    def step(self, records: Sequence[TrainingRecord]) -> dict[str, float]:
        """One optimizer step: BT loss + β·w(step)·KL."""
        self.net.train()
        out = self.forward(records, sample=True)
        bt = -F.logsigmoid(out["margin"]).mean()
        weight = self.kl_weight()
        loss = bt + weight * out["kl"]
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return {"loss": float(loss.detach()), "bt_loss": float(bt.detach()), "kl": float(out["kl"].detach()),
                "kl_weight": weight, "accuracy": float((out["margin"] > 0).float().mean()),
                "margin": float(out["margin"].detach().mean()), "lr": float(lr), "grad_norm": float(grad_norm),
                "step": float(self.step_count)}

    @torch.no_grad()
    def predict(self, records: Sequence[TrainingRecord], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(chosen wins), margin) per record with z = posterior mean."""
        self.net.eval()
        margins = [self.forward(records[i : i + batch_size], sample=False)["margin"].float().cpu()
                   for i in range(0, len(records), batch_size)]
        margin = torch.cat(margins) if margins else torch.empty(0)
        return torch.sigmoid(margin), margin

    @torch.no_grad()
    def evaluate(self, records: Sequence[TrainingRecord]) -> dict[str, float]:
        prob, margin = self.predict(records)
        return {"loss": float(-F.logsigmoid(margin).mean()), "accuracy": float((prob > 0.5).float().mean()),
                "margin": float(margin.mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step_count": self.step_count,
                "generator": self.generator.get_state(), "rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count = int(state["step_count"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        save_vpl(self.net, self.config, folder, backbone=self.backbone)


def save_vpl(net: VPLNetwork, config: VPLConfig, folder: str | os.PathLike[str], *,
             backbone: str | None = None) -> None:
    """Write ``vpl.safetensors`` and ``vpl.json`` (atomically) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{WEIGHTS_FILE}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    meta = {"config": config.model_dump(mode="json"), "embed_dim": net.embed_dim, "backbone": backbone}
    atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2))


class VPLRewardModel:
    """A trained VPL network with its frozen encoder: rewards for a user given their context."""

    def __init__(self, net: VPLNetwork, encoder: TextEncoder) -> None:
        self.net = net.eval()
        self.encoder = encoder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], *, device: str | None = None) -> VPLRewardModel:
        folder = Path(folder)
        if not (folder / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}; save VPL models with VPLTrainer.save_pretrained")
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        config = VPLConfig.model_validate(meta["config"])
        encoder = TextEncoder(config.encoder, backbone=meta.get("backbone"), device=device,
                              batch_size=config.embed_batch_size, max_tokens=config.max_text_tokens)
        net = VPLNetwork(int(meta["embed_dim"]), config.hidden, config.latent)
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return cls(net.to(encoder.device), encoder)

    @torch.no_grad()
    def score_batch(self, context: UserContext, items: Sequence[tuple[str, str]]) -> list[float]:
        """Rewards of (prompt, response) items for the user described by ``context`` (z = mean)."""
        texts = context_texts(context)
        if not texts:
            raise ValueError("VPL needs a context with at least one labelled pair (examples)")
        d = self.encoder.dim
        pairs = self.encoder.embed([t for p in texts for t in p]).view(1, len(texts), 2 * d).to(self.encoder.device)
        mask = torch.ones(1, len(texts), dtype=torch.bool, device=self.encoder.device)
        mean, logvar = self.net.posterior(pairs, mask)
        z = self.net.latent_code(mean, logvar, sample=False)
        targets = self.encoder.embed([pair_text(p, r) for p, r in items]).to(self.encoder.device)
        return self.net.reward(targets, z.expand(len(items), -1)).float().cpu().tolist()
