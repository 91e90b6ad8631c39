"""``plus train-rm``: one training run of any reward-model method, with eval, checkpoints and resume.

A run folder holds ``config.yaml``, ``metrics.jsonl`` (one JSON line per logged step and per
evaluation), ``last/`` and ``best/`` checkpoints (model files + ``trainer.safetensors``; each written to
a temporary folder and renamed into place), and at the end ``eval.json`` / ``eval.md``.
Rerunning the same command resumes from ``last/`` at the step where it stopped; batches are a
pure function of (seed, step), so a resumed run sees the same data as an uninterrupted one.

LM methods (btl, dpl-*, icl, summary, oracle) train a LoRA adapter + head saved in
``PersonalizedRewardModel`` format; ``vpl`` saves its own network (see ``vpl.py``). With
``backbone: encoder``, btl, oracle and summary train a small head on frozen sentence embeddings
instead (``encoder.py``), saved in the same bundle format.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import random
import resource
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from safetensors.torch import save_file
from tqdm.auto import tqdm

from plus_sdk.backends.local import SharedBase
from plus_sdk.cache import SummaryCache
from plus_sdk.encoder_reward import EncoderScorer
from plus_sdk.files import atomic_write_text
from plus_sdk.models import DEFAULT_MODEL
from plus_sdk.summarizer import Summarizer
from plus_sdk.training.checkpoint import read_checkpoint, write_checkpoint
from plus_sdk.training.config import StrictConfig, dump_config
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import DataSource, load_records
from plus_sdk.training.distributed import dist_info
from plus_sdk.training.evaluate import pair_metrics, write_results
from plus_sdk.training.rm.encoder import EncoderSettings, EncoderTrainer, oracle_condition
from plus_sdk.training.rm.encoder_vpl import EncoderVPLTrainer
from plus_sdk.training.rm.registry import METHODS, make_method
from plus_sdk.training.rm.trainer import RewardTrainer, RMTrainConfig, add_reward_lora
from plus_sdk.training.rm.vpl import VPLConfig, VPLTrainer
from plus_sdk.training.run_files import append_jsonl
from plus_sdk.types import SamplingConfig

logger = logging.getLogger(__name__)

#: Optimizer, schedule, step and RNG state of a checkpoint folder (``checkpoint.write_checkpoint``).
TRAINER_STATE = "trainer.safetensors"

#: Methods with an encoder backbone (``backbone: encoder``).
ENCODER_METHODS = ("btl", "oracle", "summary", "vpl")
#: The weights of an encoder-path VPL run (head, posterior, latent projection), in one safetensors file.
VPL_WEIGHTS = "encoder_vpl.safetensors"

MethodName = Literal["btl", "dpl-meanvar", "dpl-categorical", "icl", "summary", "oracle", "vpl"]


class RMData(DataSource):
    """Where the records come from: built on the fly (pets) or read from files."""


class SummarySettings(StrictConfig):
    """Summarizer used by method=summary."""

    adapter: str | None = Field(None, description="Trained summarizer LoRA folder; none = untrained (PLUS-untrained).")
    task: str = Field("pets", description="Summarizer prompt family (generic, pets, ultrafeedback, prism).")
    cache_dir: str | None = Field(None, description="Summary cache folder (default: run_dir/../summary_cache).")
    max_new_tokens: int = Field(96, ge=8, description="Longest generated summary, in tokens.")
    batch_size: int = Field(8, ge=1, description="Contexts summarized per generation batch.")


class RMRunConfig(StrictConfig):
    """One reward-model training run."""

    method: MethodName = Field("btl", description=f"Reward-model method: {', '.join(METHODS)}.")
    backbone: Literal["lm", "encoder"] = Field("lm", description="What the reward model reads through: 'lm' (a "
                                               "causal LM with LoRA, the paper's design) or 'encoder' (a small head "
                                               "on frozen sentence embeddings; btl, oracle, summary and vpl).")
    run_dir: str = Field("runs/rm", description="Output folder (checkpoints, metrics, results).")
    base: str | None = Field(None, description="Backbone model name or folder (default: the embedded SmolLM2-135M).")
    device: str | None = Field(None, description="cpu, cuda, ... (default: the accelerator's device).")
    dtype: str | None = Field(None, description="Backbone dtype (default: bf16 on capable GPUs, else float32).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads.")
    steps: int = Field(150, ge=1, description="Optimizer steps.")
    eval_every: int = Field(50, ge=1, description="Evaluate on eval_rows test pairs every N steps.")
    eval_rows: int = Field(100, ge=1, description="Test pairs used by periodic evaluations (the final one uses all).")
    log_every: int = Field(10, ge=1, description="Write train metrics every N steps.")
    stop_after: int | None = Field(None, ge=1, description="Stop (with a checkpoint) after this many steps in this "
                                   "invocation; rerun to resume (time-sliced or preemptible jobs).")
    seed: int = Field(0, description="Seed of batch order and initialisation.")
    progress: bool = Field(True, description="Show progress bars.")
    icl_max_tokens: int | None = Field(None, ge=32, description="ICL token budget (default: train.max_length).")
    oracle_as_summary: bool = Field(False, description="method=oracle: put the true description where a summary "
                                    "goes (summary_condition) instead of the 'About me' turn.")
    data: RMData = Field(default_factory=RMData, description="Records.")
    train: RMTrainConfig = Field(default_factory=RMTrainConfig, description="LM reward-model trainer settings.")
    summary: SummarySettings = Field(default_factory=SummarySettings, description="Summarizer for method=summary.")
    vpl: VPLConfig = Field(default_factory=VPLConfig, description="VPL settings for method=vpl.")
    encoder: EncoderSettings = Field(default_factory=EncoderSettings, description="Encoder-path reward model "
                                     "(backbone: encoder).")

    @property
    def batch_size(self) -> int:
        """Pairs per optimizer step, for whichever backbone trains."""
        return self.encoder.batch_size if self.backbone == "encoder" else self.train.batch_size


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def batch_for_step(records: list[TrainingRecord], step: int, size: int, seed: int) -> list[TrainingRecord]:
    """The training batch of ``step``: epochs of seeded shuffles, a pure function of (seed, step)."""
    per_epoch = max(len(records) // size, 1)
    epoch, index = divmod(step, per_epoch)
    order = list(range(len(records)))
    random.Random(f"{seed}/{epoch}").shuffle(order)
    return [records[i] for i in order[index * size : (index + 1) * size]]


def used_records(train: list[TrainingRecord], config: RMRunConfig, world: int = 1) -> list[TrainingRecord]:
    """The train records the run's batches will actually visit (no summaries or embeddings for the rest)."""
    size = config.batch_size * world
    seen: dict[int, TrainingRecord] = {}
    for step in range(config.steps):
        for record in batch_for_step(train, step, size, config.seed):
            seen.setdefault(id(record), record)
        if len(seen) == len(train):
            break
    return list(seen.values())


# ---------------------------------------------------------------------------------------
# One learner interface over the LM trainer and VPL
# ---------------------------------------------------------------------------------------


class Learner(abc.ABC):
    """What a train-rm run drives: ``trainer`` steps and predicts on ``inputs(records)``; ``save`` writes it."""

    trainer: Any

    def inputs(self, records: list[TrainingRecord]) -> Any:
        """What the trainer reads for these records (the records themselves by default)."""
        return records

    def step(self, records: list[TrainingRecord]) -> dict[str, float]:
        return self.trainer.step(self.inputs(records))

    def predict(self, records: list[TrainingRecord]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.trainer.predict(self.inputs(records))

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    def state(self) -> dict[str, Any]:
        """Trainer state for a checkpoint (every process calls it: collective under DeepSpeed)."""
        return self.trainer.state_dict()

    def full_weights(self) -> contextlib.AbstractContextManager[None]:
        """Whole weights for the duration (collective under ZeRO-3; a no-op elsewhere)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def save_weights(self, folder: Path) -> None:
        """Write the trained weights into ``folder`` in the method's own format."""

    def save(self, folder: Path, state: dict[str, Any]) -> None:
        self.save_weights(folder)
        write_checkpoint(folder / TRAINER_STATE, state)

    def load(self, folder: Path) -> None:
        self.trainer.load_state_dict(read_checkpoint(folder / TRAINER_STATE))


class LMLearner(Learner):
    """A LoRA reward model + head trained by ``RewardTrainer`` with a method's conditioning and loss."""

    def __init__(self, config: RMRunConfig, records: list[TrainingRecord], accelerator: Any = None) -> None:
        device = config.device or (str(accelerator.device) if accelerator is not None else None)
        options: dict[str, Any] = {"max_tokens": config.icl_max_tokens, "oracle_as_summary": config.oracle_as_summary,
                                   **config.summary.model_dump()}
        if options["cache_dir"] is None:
            options["cache_dir"] = str(Path(config.run_dir).parent / "summary_cache")
        self.method = make_method(config.method, **options)
        self.base = SharedBase.load(config.base, device=device, dtype=config.dtype, share=False)
        self.rm = add_reward_lora(self.base, config.train, out_features=self.method.out_features)
        self.trainer = RewardTrainer(self.rm, config.train, total_steps=config.steps, method=self.method,
                                     accelerator=accelerator)
        self.method.prepare(records, self.rm)

    def inputs(self, records: list[TrainingRecord]) -> Any:
        return self.method.examples(records)

    def full_weights(self) -> contextlib.AbstractContextManager[None]:
        return self.trainer.full_weights()

    def save_weights(self, folder: Path) -> None:
        self.rm.save_pretrained(folder)


class VPLLearner(Learner):
    """The VPL network on frozen embeddings."""

    def __init__(self, config: RMRunConfig, records: list[TrainingRecord], accelerator: Any = None) -> None:
        device = config.device or (str(accelerator.device) if accelerator is not None else None)
        self.trainer = VPLTrainer(config.vpl, total_steps=config.steps, backbone=config.base, device=device)
        self.trainer.prepare(records)

    def save_weights(self, folder: Path) -> None:
        self.trainer.save_pretrained(folder)


class EncoderLearner(Learner):
    """The encoder-path head: btl (no condition), oracle (descriptions or wordings) or summary (summaries)."""

    def __init__(self, config: RMRunConfig, records: list[TrainingRecord], accelerator: Any = None) -> None:
        if config.method not in ENCODER_METHODS:
            raise ValueError(f"method={config.method!r} has no encoder backbone; use {', '.join(ENCODER_METHODS)} "
                             "with backbone: encoder, or backbone: lm")
        self.scorer = EncoderScorer.create(config.encoder.name, hidden=config.encoder.hidden, device=config.device)
        self.summaries: dict[str, str] = {}
        condition: Any = None
        if config.method == "oracle":
            condition = oracle_condition(config.encoder, config.seed)
        elif config.method == "summary":
            self.summaries = summaries_of(records, config)
            def condition(record: TrainingRecord, step: int, row: int) -> str | None:
                return self.summaries[record.context.source_hash()]
        elif config.method == "btl":
            def condition(record: TrainingRecord, step: int, row: int) -> str | None:
                return None
        if config.method == "vpl":
            self.trainer = EncoderVPLTrainer(self.scorer, config.encoder, total_steps=config.steps, seed=config.seed)
        else:
            self.trainer = EncoderTrainer(self.scorer, config.encoder, total_steps=config.steps, condition=condition)
        self.trainer.prepare(records, progress=config.progress)

    def save_weights(self, folder: Path) -> None:
        if isinstance(self.trainer, EncoderVPLTrainer):  # no text summary: the latent's networks go beside the head
            save_file({f"{name}.{k}": v.detach().contiguous() for name, module in self.trainer.modules.items()
                       for k, v in module.state_dict().items()}, str(folder / VPL_WEIGHTS))
            return
        self.scorer.save_pretrained(folder)


def summaries_of(records: list[TrainingRecord], config: RMRunConfig) -> dict[str, str]:
    """The summary of every distinct context of ``records`` (context hash → text), cached on disk.

    ``summary.adapter``: a bundle whose summarizer writes them; null: the bare default base model
    (PLUS-untrained)."""
    settings = config.summary
    cache_dir = settings.cache_dir or str(Path(config.run_dir).parent / "summary_cache")
    options: dict[str, Any] = {"cache": SummaryCache(cache_dir)}
    if settings.adapter is None:
        options.update(task=settings.task, sampling=SamplingConfig(max_new_tokens=settings.max_new_tokens))
    summarizer = Summarizer.from_pretrained(settings.adapter or DEFAULT_MODEL, device=config.device, **options)
    contexts = {r.context.source_hash(): r.context for r in records}
    texts = summarizer.summarize_batch(list(contexts.values()), progress=config.progress)
    return {key: summary.text for key, summary in zip(contexts, texts, strict=True)}


def make_learner(config: RMRunConfig, records: list[TrainingRecord], accelerator: Any = None) -> Learner:
    if config.backbone == "encoder":
        return EncoderLearner(config, records, accelerator)
    cls = VPLLearner if config.method == "vpl" else LMLearner
    return cls(config, records, accelerator)


# ---------------------------------------------------------------------------------------
# Checkpoints and logs
# ---------------------------------------------------------------------------------------


def save_checkpoint(learner: Learner, folder: Path, extra: dict[str, Any], *,
                    write: bool = True) -> None:
    """Every process calls it (DeepSpeed gathers state); those with ``write`` write the checkpoint."""
    state = learner.state()
    with learner.full_weights():
        if write:
            _write_checkpoint(learner, folder, state, extra)


def _write_checkpoint(learner: Learner, folder: Path, state: dict[str, Any],
                      extra: dict[str, Any]) -> None:
    """Write a checkpoint into a temporary sibling folder, then swap it into place."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    learner.save(tmp, state)
    atomic_write_text(tmp / "state.json", json.dumps(extra, indent=2))
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_accelerator(config: RMRunConfig) -> Any:
    """An ``accelerate.Accelerator`` (works without ``accelerate launch`` for one process)."""
    from accelerate import Accelerator  # optional: accelerate (training extra), ~400 modules loaded only when used

    cpu = config.device == "cpu" or (config.device is None and not torch.cuda.is_available())
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        cpu = False  # cpu=True would turn a DeepSpeed launch into plain multi-CPU DDP (DS_ACCELERATOR picks CPU)
    return Accelerator(cpu=cpu)


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def evaluate_learner(learner: Learner, test: list[TrainingRecord],
                     ood: list[TrainingRecord]) -> dict[str, Any]:
    results: dict[str, Any] = {"test": pair_metrics(test, *learner.predict(test))}
    if ood:
        results["ood"] = pair_metrics(ood, *learner.predict(ood))
    return results


def train_rm(config: RMRunConfig, *, accelerator: Any = None) -> dict[str, Any]:
    """Train (or resume) one run; returns the final evaluation results."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    accelerator = accelerator if accelerator is not None else make_accelerator(config)
    rank, world = dist_info()
    main = rank == 0
    torch.manual_seed(config.seed)
    if main:
        dump_config(config, run_dir / "config.yaml")
    train, test, ood = load_records(config.data)
    started = time.perf_counter()
    learner = make_learner(config, used_records(train, config, world) + test + ood, accelerator)
    prepare_seconds = time.perf_counter() - started
    best_accuracy = -1.0
    last = run_dir / "last"
    if (last / TRAINER_STATE).exists():
        learner.load(last)
        state = json.loads((last / "state.json").read_text(encoding="utf-8"))
        best_accuracy = float(state.get("best_accuracy", -1.0))
        logger.info("Resumed %s at step %d", run_dir, learner.step_count)
    metrics_path = run_dir / "metrics.jsonl"
    eval_set = test[: config.eval_rows]
    size = config.batch_size
    train_started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=learner.step_count, desc=f"train-rm {config.method}",
               disable=not (config.progress and main))
    first_step = learner.step_count
    while learner.step_count < config.steps:
        step = learner.step_count
        if config.stop_after is not None and step - first_step >= config.stop_after:
            save_checkpoint(learner, last, {"step": step, "best_accuracy": best_accuracy}, write=main)
            logger.info("Stopping at step %d (stop_after=%d); rerun to resume", step, config.stop_after)
            bar.close()
            return {"stopped_at": step}
        batch = batch_for_step(train, step, size * world, config.seed)[rank * size : (rank + 1) * size]
        out = learner.step(batch)
        bar.update(1)
        bar.set_postfix(loss=f"{out['loss']:.3f}", acc=f"{out['accuracy']:.2f}")
        done = learner.step_count
        if main and (done % config.log_every == 0 or done == config.steps):
            append_jsonl(metrics_path, {"kind": "train", **out, "time": time.perf_counter() - train_started})
        if done % config.eval_every == 0 or done == config.steps:
            results = evaluate_learner(learner, eval_set, [])
            accuracy = results["test"]["accuracy"]
            if main:
                append_jsonl(metrics_path, {"kind": "eval", "step": done, "accuracy": accuracy,
                                            "margin": results["test"]["margin"], "ece": results["test"]["ece"]})
            if accuracy > best_accuracy:  # every process evaluated the same rows: all agree
                best_accuracy = accuracy
                save_checkpoint(learner, run_dir / "best", {"step": done, "accuracy": accuracy}, write=main)
            save_checkpoint(learner, last, {"step": done, "best_accuracy": best_accuracy}, write=main)
    bar.close()
    train_seconds = time.perf_counter() - train_started
    eval_started = time.perf_counter()
    results = evaluate_learner(learner, test, ood)
    results["cost"] = {"prepare_seconds": prepare_seconds, "train_seconds": train_seconds,
                       "eval_seconds": time.perf_counter() - eval_started, "peak_rss_mb": peak_rss_mb(),
                       "steps": config.steps, "batch_size": size}
    if torch.cuda.is_available():
        results["cost"]["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    results["method"] = config.method
    results["best_eval_accuracy"] = best_accuracy
    if main:
        write_results(results, run_dir, config.method)
    return results


def evaluate_run(config: RMRunConfig, *, checkpoint: Path) -> dict[str, Any]:
    """Evaluate a saved checkpoint of a run on the run's test and OOD records."""
    if not (checkpoint / TRAINER_STATE).exists():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint (no {TRAINER_STATE}); train with `plus train-rm`")
    _train, test, ood = load_records(config.data)
    learner = make_learner(config.model_copy(update={"steps": max(config.steps, 1)}), test + ood)
    learner.load(checkpoint)
    results = evaluate_learner(learner, test, ood)
    results["method"] = config.method
    results["checkpoint"] = str(checkpoint)
    return results
