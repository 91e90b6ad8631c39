"""Supervised warm start of the summarizer: learn to write a user's true description first.

PLUS trains the summarizer by reinforcement learning alone. From an untrained 135M summarizer
that explores slowly: most sampled summaries name nothing, so most rollouts carry no signal
(measured on Pets, REFERENCE section 6). When a dataset knows each user's true description
(the ``oracle`` field, as styles and Pets do), a few hundred supervised steps first teach the
summarizer that vocabulary ("This user prefers concise answers ..."); co-adaptation then goes
on from there (``init_from`` + ``init_roles: [summarizer, ...]``), with the summarizer judged
only by the reward model again. This step is optional and not part of the paper's Algorithm 1.

The loss is next-token cross-entropy on the target summary only (the prompt is masked), with
the summarizer prompt exactly as co-adaptation and the SDK build it. The output is a bundle
folder holding ``summarizer/`` (a LoRA adapter) and ``card.json``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.backends.local import SharedBase
from plus_sdk.bundle import write_card
from plus_sdk.files import atomic_write_text
from plus_sdk.models import model_id_of
from plus_sdk.training.config import LoraSettings, StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import DataSource, load_records
from plus_sdk.training.optim import adapter_parameters, build_adamw, scheduled
from plus_sdk.types import AdapterCard, UserContext

logger = logging.getLogger(__name__)


class SFTData(DataSource):
    """Records whose ``oracle`` field is the target summary."""

    summary_task: str = Field("generic", description="Summarizer prompt family (prompts.SUMMARY_TASKS).")
    max_prompt_tokens: int = Field(1024, ge=16, description="Longest prompt; longer contexts lose their oldest pairs.")


class SFTConfig(StrictConfig):
    """A supervised warm-start run of the summarizer."""

    run_dir: str = Field("runs/summarizer-sft", description="Output bundle folder (summarizer/ + card.json + "
                                                          "metrics.jsonl).")
    base: str | None = Field(None, description="Summarizer base (null: the embedded default).")
    seed: int = Field(0, description="Seed of batch order and LoRA initialization.")
    steps: int = Field(200, ge=1, description="Optimizer steps.")
    batch_size: int = Field(4, ge=1, description="Contexts per step.")
    lr: float = Field(2e-4, gt=0, description="Peak AdamW learning rate.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of the steps spent warming up (then linear "
                                                               "decay to 0 at the last step).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads.")
    device: str | None = Field(None, description="cpu, cuda, ... (default: CUDA when present).")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="Summarizer adapter shape (match the "
                                                                         "co-adaptation recipe's summarizer_lora).")
    data: SFTData = Field(default_factory=SFTData, description="Records with oracle descriptions.")


def target_text(record: TrainingRecord) -> str:
    """What the summarizer should write for this record's user: the marker, then the true description."""
    if not record.oracle:
        raise ValueError(f"record of user {record.user_id} has no 'oracle' description; the supervised warm start "
                         "needs datasets that describe each user (styles, pets)")
    return f"{prompts.SUMMARY_MARKER} {record.oracle}"


def _ids(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_messages(context: UserContext, task: str, tokenizer: Any, max_tokens: int) -> list[dict[str, str]]:
    """The summarizer prompt, dropping the oldest pairs until it fits ``max_tokens``."""
    while True:
        messages = prompts.summarizer_messages(context, task)
        fits = len(_ids(tokenizer, messages, generation_prompt=True)) <= max_tokens
        if fits or len(context.examples) + len(context.conversations) <= 1:
            return messages
        if context.examples:
            context = context.model_copy(update={"examples": context.examples[1:]})
        else:
            context = context.model_copy(update={"conversations": context.conversations[1:]})


def encode(record: TrainingRecord, tokenizer: Any, task: str, max_prompt_tokens: int) -> tuple[list[int], int]:
    """Token ids of prompt + target turn, and how many leading ids belong to the prompt (masked)."""
    messages = prompt_messages(record.context, task, tokenizer, max_prompt_tokens)
    prompt_ids = _ids(tokenizer, messages, generation_prompt=True)
    full = _ids(tokenizer, [*messages, {"role": "assistant", "content": target_text(record)}], generation_prompt=False)
    if full[: len(prompt_ids)] != prompt_ids:
        raise RuntimeError("the chat template does not extend the prompt with the answer; cannot mask the prompt")
    return full, len(prompt_ids)


def batch_tensors(encoded: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (-100 on prompt and padding)."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def train_summarizer(config: SFTConfig) -> dict[str, Any]:
    """Run the warm start; returns the final metrics and writes the bundle to ``config.run_dir``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train, _, _ = load_records(config.data)
    train = [r for r in train if r.oracle]
    if not train:
        raise ValueError("no training record has an 'oracle' description")
    base = SharedBase.load(config.base, device=config.device, share=False)
    base.add_new_adapter("summarizer", config.lora.peft_for(base.model))
    tokenizer = base.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    params = [p for _, p in adapter_parameters(base.model, "summarizer")]
    for p in params:
        p.requires_grad_(True)
    optimizer = build_adamw(params, lr=config.lr, betas=(0.9, 0.95))
    scheduler = scheduled(optimizer, schedule="linear", total=config.steps, warmup_ratio=config.warmup_ratio)
    order = list(range(len(train)))
    random.Random(config.seed).shuffle(order)
    out = Path(config.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    start, losses = time.perf_counter(), []
    with base.use("summarizer") as model, metrics_path.open("w", encoding="utf-8") as log:
        model.train()
        for step in tqdm(range(config.steps), desc="summarizer warm start", disable=None):
            picked = [train[order[(step * config.batch_size + i) % len(order)]] for i in range(config.batch_size)]
            batch = {k: v.to(base.device) for k, v in batch_tensors(
                [encode(r, tokenizer, config.data.summary_task, config.data.max_prompt_tokens) for r in picked],
                pad_id).items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            log.write(json.dumps({"step": step + 1, "loss": losses[-1], "lr": scheduler.get_last_lr()[0],
                                  "elapsed_s": round(time.perf_counter() - start, 1)}) + "\n")
            log.flush()
        model.eval()
    base.save_adapter("summarizer", out / "summarizer")
    final = {"steps": config.steps, "final_loss": sum(losses[-10:]) / len(losses[-10:]),
             "train_seconds": round(time.perf_counter() - start, 1)}
    card = AdapterCard(name=out.name, base_model=model_id_of(config.base), prompt_version=prompts.PROMPT_VERSION,
                       summary_task=config.data.summary_task, trained=True, method="summary",
                       trained_on=f"{config.data.dataset} (supervised warm start on oracle descriptions)",
                       metrics={k: float(v) for k, v in final.items()}, config=config.model_dump())
    write_card(out, card)
    atomic_write_text(out / "result.json", json.dumps(final, indent=2) + "\n")
    logger.info("summarizer warm start done: %s", final)
    return final
