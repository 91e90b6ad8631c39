"""Warm start of the encoder-path summarizer (``plus_sdk.context_reader``), in two stages.

1. **Regress** (seconds): the context reader's ``regress`` network learns to place ê, from the
   pooled context features, on the sentence embedding of a description of the user (cosine loss,
   a fresh wording per row and step). This is where the context is read; it cannot be ignored,
   since ê is all the LM will see.
2. **Decode** (minutes): the LM (LoRA) and the ``project`` network learn to write a description
   from soft tokens. Half of each batch is *autoencoding*: the soft tokens come from e(w) of a
   wording w and the target is w itself, so the only way to lower the loss is to read the soft
   tokens (the remedy for the collapse onto one description for everyone). The other half comes
   from ê of real contexts, with a wording of that user as the target.

With ``hints`` > 0 the reader also holds a bank of known descriptions, built after stage 1: one
entry per dataset description of the train users (``record.oracle``), at the normalized mean
embedding of the wordings drawn for its users. Each decode prompt then shows the ``hints`` texts
nearest to its soft tokens' source (ê for the context half, e(w) for the autoencoding half), and
so do the evaluation and the saved summarizer.

Every ``eval_every`` steps the held-out users are summarized greedily and the share whose summary
names what they prefer (``summary_metrics.hooks.names_user``) is logged with the loss in
``metrics.jsonl``; ``plots/`` gets the curves. The result is a summarizer folder (LoRA adapter +
``reader.safetensors`` + ``reader.json``) that a bundle ships as ``summarizer/``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from tqdm.auto import tqdm

from plus_sdk.backends.local import LocalModel, SharedBase
from plus_sdk.bundle import portable_base_name
from plus_sdk.context_reader import (
    ContextReader,
    PromptCache,
    ReaderBackend,
    install_soft_embedding,
    save_reader,
    soft_table,
)
from plus_sdk.encoder import SentenceEncoder
from plus_sdk.files import atomic_write_text
from plus_sdk.prompts import EMPTY_SUMMARY, extract_summary
from plus_sdk.training.config import LoraSettings, StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.optim import adapter_parameters
from plus_sdk.training.rm.encoder import WordingSplit, draw_wording
from plus_sdk.training.run_files import append_jsonl
from plus_sdk.training.sft import batch_tensors
from plus_sdk.training.summary_metrics.hooks import names_user
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)

ADAPTER = "summarizer"


class ReaderConfig(StrictConfig):
    """The two warm-start stages of the encoder-path summarizer."""

    encoder: str | None = Field(None, description="Sentence encoder (null: all-MiniLM-L6-v2, offline).")
    base: str | None = Field(None, description="Summarizer LM (null: the embedded SmolLM2-135M-Instruct).")
    wordings: WordingSplit = Field("train", description="Descriptions to aim at: 'train' draws a hand-written "
                                   "wording per row and step; 'dataset' uses each row's own description.")
    regress_steps: int = Field(1500, ge=0, description="Stage 1 steps (regressor on cached features).")
    regress_lr: float = Field(1e-3, gt=0, description="Stage 1 AdamW learning rate.")
    regress_batch: int = Field(128, ge=1, description="Stage 1 contexts per step.")
    decode_steps: int = Field(300, ge=0, description="Stage 2 steps (LM + projector).")
    decode_batch: int = Field(16, ge=2, description="Stage 2 rows per step (half autoencoding, half contexts).")
    lm_lr: float = Field(1e-3, gt=0, description="Stage 2 learning rate of the LoRA adapter.")
    project_lr: float = Field(1e-3, gt=0, description="Stage 2 learning rate of the projector.")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="Summarizer LoRA shape.")
    hidden: int = Field(512, ge=16, description="Width of the reader's two networks.")
    max_new_tokens: int = Field(40, ge=8, description="Longest summary, in tokens.")
    eval_every: int = Field(50, ge=1, description="Summarize the held-out users every N decode steps.")
    eval_users: int = Field(48, ge=1, description="Held-out users summarized per evaluation.")
    wording_variants: int = Field(8, ge=1, description="Descriptions drawn per context (embedded once up front).")
    max_contexts: int = Field(2000, ge=1, description="Distinct train contexts read (their items are embedded "
                                                      "once; more costs encoder time, not LM time).")
    hints: int = Field(0, ge=0, description="Known descriptions (the train users' dataset descriptions nearest to "
                                            "ê) written as text after the soft tokens, for the LM to copy; 0: none.")


def distinct_contexts(records: Sequence[TrainingRecord]) -> list[TrainingRecord]:
    """One record per distinct context, in order."""
    seen: dict[str, TrainingRecord] = {}
    for record in records:
        seen.setdefault(record.context.source_hash(), record)
    return list(seen.values())


def spread_users(records: Sequence[TrainingRecord], count: int) -> list[TrainingRecord]:
    """Up to ``count`` records of distinct users, taken evenly over the list (so both datasets show)."""
    by_user = list({r.user_id: r for r in records}.values())
    if len(by_user) <= count:
        return by_user
    step = len(by_user) / count
    return [by_user[int(i * step)] for i in range(count)]


class ReaderTraining:
    """Both stages over one encoder, one LM and one reader (see the module doc)."""

    def __init__(self, config: ReaderConfig, train: Sequence[TrainingRecord], held_out: Sequence[TrainingRecord],
                 *, run_dir: Path, seed: int = 0, progress: bool = True,
                 encoder: SentenceEncoder | None = None, pair_tower: torch.nn.Module | None = None) -> None:
        """``pair_tower``: the trained reward head's reply tower, copied (frozen) into the reader."""
        self.config = config
        self.run_dir = run_dir
        self.seed = seed
        self.progress = progress
        self.encoder = encoder or SentenceEncoder.load(config.encoder)
        self.base = SharedBase.load(config.base, share=False)
        self.base.add_new_adapter(ADAPTER, config.lora.peft_for(self.base.model))
        self.embedding = install_soft_embedding(self.base.model)
        d_model = int(self.base.model.config.hidden_size)
        rms = float(self.embedding.base.weight.detach().pow(2).mean(-1).sqrt().mean())
        torch.manual_seed(seed)
        pair_hidden = int(pair_tower[-1].out_features) if pair_tower is not None else 256  # type: ignore[index]
        self.reader = ContextReader(self.encoder.dim, d_model, hidden=config.hidden, embed_rms=rms,
                                    pair_hidden=pair_hidden)
        if pair_tower is not None:
            self.reader.pairs.load_state_dict(pair_tower.state_dict())
        self.train = distinct_contexts(train)[: config.max_contexts]
        self.held_out = spread_users(held_out, config.eval_users)
        self.features = self.reader.features(self.encoder, [r.context for r in self.train], progress=progress)
        variants = range(config.wording_variants)
        self.encoder.encode(sorted({self.wording(r, k) for r in self.train for k in variants}))
        self.prompts = PromptCache(self.base.tokenizer, self.embedding.vocab, self.reader.k)

    def wording(self, record: TrainingRecord, k: int) -> str:
        """The ``k``-th drawn description of ``record``'s user (one of ``wording_variants``)."""
        k %= self.config.wording_variants
        return draw_wording(record, self.config.wordings, f"{self.seed}/{k}/{record.user_id}/{record.prompt}")

    # ------------------------------------------------------------------ stage 1
    def regress(self) -> dict[str, float]:
        """Fit ê to the embeddings of the users' descriptions."""
        cfg = self.config
        net = self.reader.regress
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.regress_lr, weight_decay=1e-4)
        rng = random.Random(f"regress/{self.seed}")
        loss = torch.tensor(0.0)
        for step in tqdm(range(cfg.regress_steps), desc="reader: regress", disable=not self.progress):
            rows = [rng.randrange(len(self.train)) for _ in range(cfg.regress_batch)]
            targets = self.encoder.encode([self.wording(self.train[i], step + k) for k, i in enumerate(rows)])
            loss = (1 - F.cosine_similarity(self.reader.describe(self.features[rows]), targets, dim=-1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (step + 1) % 100 == 0 or step + 1 == cfg.regress_steps:
                append_jsonl(self.run_dir / "metrics.jsonl", {"stage": "regress", "step": step + 1,
                                                              "cosine_loss": loss.item()})
        if cfg.hints:
            self.build_hints()
        return {"regress_cosine_loss": loss.item(), **self.regress_eval()}

    @torch.no_grad()
    def build_hints(self) -> None:
        """The reader's bank: per dataset description of the train users, the normalized mean embedding of
        the wordings drawn for its users (``wording_variants`` each), with the description as its text."""
        groups: dict[str, list[str]] = {}
        for record in self.train:
            if record.oracle:
                groups.setdefault(record.oracle, []).extend(
                    self.wording(record, k) for k in range(self.config.wording_variants))
        if not groups:
            raise ValueError("hints need train records with a dataset description ('oracle'); these have none")
        texts = sorted(groups)
        centroids = torch.stack([self.encoder.encode(groups[text]).mean(0) for text in texts])
        self.reader.set_hints(texts, F.normalize(centroids, dim=-1), self.config.hints)
        logger.info("reader hints: a bank of %d known descriptions, %d shown per prompt", len(texts),
                    self.config.hints)

    @torch.no_grad()
    def regress_eval(self) -> dict[str, float]:
        """Mean cosine of ê to the held-out users' own descriptions (``dataset`` wording)."""
        if not self.held_out:
            return {}
        described = self.reader.describe(self.reader.features(self.encoder, [r.context for r in self.held_out]))
        truth = self.encoder.encode([r.oracle or "" for r in self.held_out])
        return {"regress_heldout_cosine": float(F.cosine_similarity(described, truth, dim=-1).mean())}

    # ------------------------------------------------------------------ stage 2
    def decode_batch(self, step: int, rng: random.Random) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Token tensors of one decode step and the described vectors its soft tokens come from."""
        tok = self.base.tokenizer
        half = self.config.decode_batch // 2
        own = [self.train[rng.randrange(len(self.train))] for _ in range(half)]
        ctx_rows = [rng.randrange(len(self.train)) for _ in range(self.config.decode_batch - half)]
        targets = [self.wording(r, step + k) for k, r in enumerate(own)]
        targets += [self.wording(self.train[i], step + k + 1) for k, i in enumerate(ctx_rows)]
        with torch.no_grad():
            described = torch.cat([self.encoder.encode(targets[:half]),
                                   self.reader.describe(self.features[ctx_rows])])
        encoded = []
        eos = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else tok.eos_token_id
        hints = self.reader.hints(described)  # autoencoding half: nearest to e(w); context half: nearest to ê
        for slot, text in enumerate(targets):
            prompt = self.prompts.ids(slot, hints[slot])
            answer = tok(text, add_special_tokens=False)["input_ids"] + [eos]
            encoded.append((prompt + answer, len(prompt)))
        return batch_tensors(encoded, tok.pad_token_id), described

    def decode(self) -> dict[str, float]:
        """Train the LoRA adapter and the projector to write descriptions from soft tokens."""
        cfg = self.config
        if cfg.hints and not self.reader.hint_texts:  # stage 1 builds the bank; decoding alone builds it here
            self.build_hints()
        lora = [p for _, p in adapter_parameters(self.base.model, ADAPTER)]
        for p in lora:
            p.requires_grad_(True)
        opt = torch.optim.AdamW([{"params": lora, "lr": cfg.lm_lr},
                                 {"params": self.reader.project.parameters(), "lr": cfg.project_lr}],
                                weight_decay=0.0)
        rng = random.Random(f"decode/{self.seed}")
        started, losses, last_eval = time.perf_counter(), [], {}
        bar = tqdm(range(cfg.decode_steps), desc="reader: decode", disable=not self.progress)
        with self.base.use(ADAPTER) as model:
            for step in bar:
                model.train()
                batch, described = self.decode_batch(step, rng)
                soft = self.reader.soft_tokens(described)
                with soft_table(self.embedding, soft.reshape(-1, soft.shape[-1])):
                    loss = model(**batch).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(lora + list(self.reader.project.parameters()), 1.0)
                opt.step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                row: dict[str, Any] = {"stage": "decode", "step": step + 1, "loss": losses[-1],
                                       "elapsed_s": round(time.perf_counter() - started, 1)}
                if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.decode_steps:
                    model.eval()
                    last_eval = self.evaluate()
                    row.update(last_eval)
                    logger.info("reader decode step %d: loss %.3f, %s", step + 1, losses[-1], last_eval)
                append_jsonl(self.run_dir / "metrics.jsonl", row)
            model.eval()
        tail = losses[-10:] or [float("nan")]
        return {"decode_loss": sum(tail) / len(tail), "decode_seconds": time.perf_counter() - started, **last_eval}

    # ------------------------------------------------------------------ evaluation and saving
    def backend(self) -> ReaderBackend:
        return ReaderBackend(LocalModel(self.base, ADAPTER), self.reader, self.encoder)

    def summaries(self, records: Sequence[TrainingRecord]) -> list[str]:
        """Greedy summaries of ``records``' contexts."""
        sampling = SamplingConfig(max_new_tokens=self.config.max_new_tokens)
        raw = self.backend().read([r.context for r in records], sampling)
        return [extract_summary(t) or EMPTY_SUMMARY for t in raw]

    def evaluate(self) -> dict[str, float]:
        """Share of held-out users whose greedy summary names what they prefer, and how many distinct ones."""
        texts = self.summaries(self.held_out)
        named = [names_user(t, r) for t, r in zip(texts, self.held_out, strict=True)]
        checked = [n for n in named if n is not None]
        for text, record in list(zip(texts, self.held_out, strict=True))[:4]:
            append_jsonl(self.run_dir / "samples.jsonl", {"user": record.user_id, "truth": record.oracle,
                                                          "summary": text})
        return {"heldout_names_user": sum(checked) / max(len(checked), 1),
                "heldout_distinct_summaries": float(len(set(texts)))}

    def save(self, folder: Path) -> None:
        """The summarizer folder of a bundle: LoRA adapter + reader."""
        self.base.save_adapter(ADAPTER, folder)
        portable_base_name(folder, self.config.base)
        save_reader(self.reader, self.encoder.name, folder)
        atomic_write_text(folder / "reader_training.json", json.dumps(self.config.model_dump(), indent=2))
