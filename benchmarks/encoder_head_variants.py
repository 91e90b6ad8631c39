"""Which encoder-path reward head generalizes to held-out prompts and wordings?

Trains head variants on the cached embeddings of ``plus train general``'s rows (train wordings,
8 drawn per row, batch 64, ``rm_steps`` steps, AdamW at ``rm.lr`` with a cosine to 10 %) and scores held-out
styles users (dataset / held-out / typed wordings, per axis) and held-out Pets users:

- ``A`` the shipped head (reply tower on [f, f⊙e(x), f−e(x)], user tower, similarity terms);
- ``B`` linear: r = (W u + b)·f(y) + w·f(y);
- ``C`` low rank: (U u)·(V f(y)) at rank 64; ``E`` the same with a two-layer user tower;
- ``F`` the shipped head at width 64;
- ``G`` the shipped head with no prompt in the reply tower; ``H`` G with dropout 0.2;
- ``I`` the shipped head with dropout 0.2 on its inputs.

    .venv/bin/python benchmarks/encoder_head_variants.py A B C                 # the variants to run
    .venv/bin/python benchmarks/encoder_head_variants.py A data.n_train=12000  # recipe overrides
    .venv/bin/python benchmarks/encoder_head_variants.py A rm.lr=1e-2         # the head's learning rate
        -> a JSON line per variant, also appended to benchmarks/results/encoder_head_variants.jsonl
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from plus_sdk.encoder_reward import EncoderRewardHead, EncoderScorer, mlp
from plus_sdk.training.config import load_config
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import load_records
from plus_sdk.training.general import GeneralConfig
from plus_sdk.training.general_eval import accuracy_table
from plus_sdk.training.rm.encoder import draw_wording

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "encoder_head_variants.jsonl"
VARIANTS_PER_ROW = 8
Features = dict[str, torch.Tensor]


class Shipped(nn.Module):
    """The head ``plus train general`` ships, optionally with dropout on its inputs."""

    def __init__(self, dim: int, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.head = EncoderRewardHead(dim, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(z), torch.ones(len(z)), p, self.drop(y))


class Linear(nn.Module):
    """r = (W u + b)·f(y) + w·f(y)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.user = nn.Linear(2 * dim, dim)
        self.shared = nn.Linear(dim, 1, bias=False)

    def forward(self, z: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.user(z) * y).sum(-1) + self.shared(y).squeeze(-1)


class LowRank(nn.Module):
    """r = (U u)·(V f(y)) / √rank + w·f(y)."""

    def __init__(self, dim: int, rank: int = 64, deep: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.user = mlp([2 * dim, 256, rank]) if deep else nn.Linear(2 * dim, rank)
        self.reply = nn.Linear(dim, rank)
        self.shared = nn.Linear(dim, 1)

    def forward(self, z: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rank = self.reply.out_features
        return (self.user(z) * self.reply(y)).sum(-1) / rank ** 0.5 + self.shared(y).squeeze(-1)


class NoPrompt(nn.Module):
    """The shipped head's parts, with a reply tower that reads f(y) alone."""

    def __init__(self, dim: int, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.dim, self.hidden = dim, hidden
        self.reply = nn.Sequential(nn.Dropout(dropout), mlp([dim, hidden, hidden]))
        self.user = nn.Sequential(nn.Dropout(dropout), mlp([2 * dim, hidden, hidden]))
        self.shared = nn.Linear(hidden, 1)
        self.similarity = nn.Parameter(torch.tensor(0.0))
        self.contrast = nn.Parameter(torch.tensor(0.0))

    def forward(self, z: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q = self.reply(y)
        personal = (self.user(z) * q).sum(-1) / self.hidden ** 0.5
        similar = (self.similarity * (z[:, : self.dim] * y).sum(-1)
                   + self.contrast * (z[:, self.dim:] * y).sum(-1))
        return self.shared(q).squeeze(-1) + personal + similar


VARIANTS: dict[str, Callable[[int], nn.Module]] = {
    "A": lambda d: Shipped(d), "B": lambda d: Linear(d), "C": lambda d: LowRank(d),
    "E": lambda d: LowRank(d, deep=True), "F": lambda d: Shipped(d, hidden=64), "G": lambda d: NoPrompt(d),
    "H": lambda d: NoPrompt(d, dropout=0.2), "I": lambda d: Shipped(d, dropout=0.2),
}


def features(scorer: EncoderScorer, rows: list[TrainingRecord], conditions: list[str]) -> Features:
    """Summary, prompt, chosen and rejected embeddings of rows under one condition each."""
    items = [(c, r.prompt, r.chosen) for r, c in zip(rows, conditions, strict=True)]
    items += [(c, r.prompt, r.rejected) for r, c in zip(rows, conditions, strict=True)]
    f, n = scorer.features(items), len(rows)
    return {"z": f["summary"][:n], "p": f["prompt"][:n], "c": f["reply"][:n], "j": f["reply"][n:]}


def margin(model: nn.Module, f: Features) -> torch.Tensor:
    return model(f["z"], f["p"], f["c"]) - model(f["z"], f["p"], f["j"])


def train(model: nn.Module, banks: list[Features], steps: int, batch: int, weight_decay: float, lr: float) -> None:
    """AdamW on Bradley–Terry (cosine to lr/10), one wording bank per step in turn."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 10)
    rng = random.Random(0)
    rows = len(banks[0]["c"])
    for step in range(steps):
        index = torch.tensor([rng.randrange(rows) for _ in range(batch)])
        chunk = {k: v[index] for k, v in banks[step % len(banks)].items()}
        loss = -F.logsigmoid(margin(model, chunk)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    model.eval()


def main() -> None:
    overrides = [a for a in sys.argv[1:] if "=" in a]
    chosen = [a for a in sys.argv[1:] if "=" not in a] or ["A", "B"]
    torch.set_num_threads(2)
    config = load_config(GeneralConfig, ROOT / "training" / "general" / "plus.yaml", overrides)
    train_rows, test, ood = load_records(config.data)
    test = test[: config.eval_rows]
    scorer = EncoderScorer.create(config.rm.name)
    banks = [features(scorer, train_rows, [draw_wording(r, "train", f"train/0/{k}/{r.user_id}/{r.prompt}")
                                           for r in train_rows]) for k in range(VARIANTS_PER_ROW)]
    evals = {(name, split): (rows, features(scorer, rows, [draw_wording(r, split, f"eval/0/{r.user_id}/{r.prompt}")
                                                           for r in rows]))
             for name, rows in (("test", test), ("ood", ood)) for split in ("dataset", "heldout", "typed")}
    for variant in chosen:
        model = VARIANTS[variant](scorer.encoder.dim)
        started = time.time()
        train(model, banks, config.rm_steps, config.rm.batch_size, config.rm.weight_decay, config.rm.lr)
        out: dict[str, object] = {"variant": variant, "seconds": round(time.time() - started, 1),
                                  "overrides": overrides}
        with torch.no_grad():
            every_fourth = {k: v[::4] for k, v in banks[0].items()}
            out["train"] = round(float((margin(model, every_fourth) > 0).float().mean()), 3)
            for (name, split), (rows, f) in evals.items():
                table = accuracy_table(rows, margin(model, f))
                out[f"{name}_{split}"] = round(table["accuracy"], 3)
                if name == "test" and split in ("dataset", "heldout"):
                    out[f"axes_{split}"] = {k: round(a, 2) for k, a in table["accuracy_by_axis"].items()}
        print(json.dumps(out), flush=True)
        with OUT.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
