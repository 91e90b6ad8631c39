"""PLUS co-adaptation (Algorithm 1): PPO on the summarizer, Bradley–Terry NLL on the reward model.

Each iteration takes the next N (context, pair) records of the training set; then PPO on the
summarizer (steps 1-5), then the reward model's NLL steps (step 6), numbered as in ``iterate``:

1. rollout: sample ``k`` summaries per context with the current summarizer (``PPOTrainer.generate``);
2. score: ``log σ(r(chosen | z) − r(rejected | z))`` with the current reward model, on the
   summary's last token;
3. reference: per-token log-probs of the start policy (the base with adapters off);
4. advantages: old log-probs (and values), the scores with a per-token KL penalty against the
   reference, advantages (``PPOTrainer.make_experience``);
5. update: PPO (or the critic-free RLOO / group estimator) updates the summarizer LoRA adapter
   (``PPOTrainer.update``);
6. the reward model takes ``rm_steps`` NLL steps on the same fresh summaries, through the
   reward-model trainer (``plus_sdk.training.rm.trainer.RewardTrainer``).

Summarizer, critic and reward model are LoRA adapters on ONE ``SharedBase`` when they share a
base model (the reference policy is that base with adapters off); distinct bases give two.

A run folder holds ``config.yaml``, ``metrics.jsonl`` (one line per iteration, evaluations
included), ``samples.jsonl`` (summaries logged at each evaluation), ``checkpoints/`` (one
safetensors file each, written atomically every K iterations by ``checkpoint.py``; ``latest.json``
names the newest) and, optionally, TensorBoard event files. ``--resume`` continues from
``latest.json`` exactly (weights, optimizers, schedules, RNG states, data position, KL controller).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.backends.local import SharedBase
from plus_sdk.files import atomic_write_text
from plus_sdk.models import resolve_model
from plus_sdk.reward import RewardHead
from plus_sdk.training.checkpoint import (
    SUFFIX,
    adapter_weights,
    load_adapter_weights,
    read_checkpoint,
    write_checkpoint,
)
from plus_sdk.training.config import dump_config
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import load_records
from plus_sdk.training.distributed import dist_info, reduce_mean, replica_drift
from plus_sdk.training.plots import plot_run
from plus_sdk.training.ppo.coadapt_config import CoadaptConfig, optimizer_steps
from plus_sdk.training.ppo.roles import EncoderReward, LMReward, ReaderPrompts, TextPrompts, encoder_parts
from plus_sdk.training.ppo.trainer import Critic, PPOTrainer
from plus_sdk.training.ppo.vllm_rollout import VLLMRolloutEngine
from plus_sdk.training.run_files import append_jsonl, truncate_metrics
from plus_sdk.training.stream import RecordStream, fixed_subset
from plus_sdk.training.summary_metrics.hooks import headline_names, summary_metrics
from plus_sdk.training.timing import BudgetSpentError, PhaseTimer, peak_memory_mb, phase_hook
from plus_sdk.training.warm_start import WarmStartSource, check_fits, read_weights, resolve_init_from

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "config.yaml"


# ---------------------------------------------------------------------------------------
# The co-adaptation run
# ---------------------------------------------------------------------------------------


class CoAdaptation:
    """Algorithm 1 of PLUS, with checkpoints, metrics and evaluation (see the module doc)."""

    def __init__(self, config: CoadaptConfig, *, accelerator: Any = None) -> None:
        self.config = config
        self.accelerator = accelerator
        self.on_phase: Callable[[str], None] | None = None  # set by train(): progress and the time budget
        self.rank, self.world = dist_info()
        if config.contexts_per_iteration % self.world:
            raise ValueError(f"contexts_per_iteration={config.contexts_per_iteration} must be a multiple of the "
                             f"number of processes ({self.world})")
        self.run_dir = Path(config.run_dir)
        init_source = resolve_init_from(config.init_from) if config.init_from else None  # fail before any load
        if config.model.threads:
            torch.set_num_threads(config.model.threads)
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        m = config.model
        device = m.device
        if device is None and accelerator is not None:
            device = str(accelerator.device)
        self.policy_base = SharedBase.load(m.summarizer_base, device=device, dtype=m.dtype, share=False)
        self.reward_base = (self.policy_base if m.shared or config.roles == "encoder" else
                            SharedBase.load(m.reward_base, device=device, dtype=m.dtype, share=False))
        self.policy_base.add_new_adapter("summarizer", m.summarizer_lora.peft_for(self.policy_base.model))
        critic = None
        if config.ppo.estimator == "gae":
            self.policy_base.add_new_adapter("critic", m.critic_lora.peft_for(self.policy_base.model))
            hidden = self.policy_base.model.config.hidden_size
            critic = Critic(self.policy_base, "critic",
                                RewardHead(hidden, 1).to(dtype=self.policy_base.model.dtype))
        ppo_steps, rm_steps = optimizer_steps(config, self.world)
        self.reward: LMReward | EncoderReward
        self.context_prompts: TextPrompts | ReaderPrompts
        if config.roles == "encoder":
            if init_source is None:
                raise ValueError("roles=encoder needs init_from: an encoder-path bundle such as general-smollm2 "
                                 "(train one with `plus train general`)")
            scorer, reader = encoder_parts(init_source.path, fresh_reward="reward" not in config.init_roles)
            self.reward = EncoderReward(scorer, config.encoder, total_steps=rm_steps)
            self.context_prompts = ReaderPrompts(self.policy_base, reader, scorer)
        else:
            self.reward = LMReward(self.reward_base, config.rm, total_steps=rm_steps, accelerator=accelerator)
            self.context_prompts = TextPrompts(self.policy_base.tokenizer, config.data.summary_task,
                                       config.data.max_prompt_tokens)
        if m.gradient_checkpointing is True:  # the reward-model steps ('auto' is planned per PPO update)
            for base in {id(self.policy_base): self.policy_base, id(self.reward_base): self.reward_base}.values():
                base.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.ppo = PPOTrainer(self.policy_base, config.ppo, total_steps=ppo_steps,
                             adapter="summarizer", critic=critic, seed=config.seed + 1000 * self.rank,
                             gradient_checkpointing=m.gradient_checkpointing)
        if config.ppo.rollout_engine == "vllm":
            self.ppo.attach_vllm(self.make_vllm_engine())
        if init_source is not None:
            self.warm_start(init_source)
        train, test, ood = load_records(config.data)
        self.stream = RecordStream(train, config.seed)
        self.test, self.ood = test, ood
        self.iteration = 0
        self.best_accuracy = -1.0
        self._last_eval: tuple[Any, dict[str, float], list[dict]] | None = None  # (key, metrics, samples)
        self.writer = None

    def make_vllm_engine(self) -> Any:
        """A vLLM engine on the summarizer's base (each process its own, on its own GPU)."""
        m = self.config.model
        return VLLMRolloutEngine(resolve_model(m.summarizer_base), self.run_dir / "vllm_adapters" / f"rank{self.rank}",
                                 max_lora_rank=m.summarizer_lora.r,
                                 gpu_memory_utilization=self.config.ppo.vllm_gpu_memory_utilization,
                                 dtype=m.dtype or "auto", seed=self.config.seed + self.rank)

    def warm_start(self, source: WarmStartSource) -> None:
        """Load the summarizer adapter and/or reward adapter + head (``init_roles``) of a bundle or a ``plus
        train`` run folder (``warm_start.resolve_init_from``) into this run, after checking they fit the recipe."""
        roles = self.config.init_roles
        m = self.config.model
        lm_roles = [r for r in roles if r == "summarizer" or self.config.roles == "lm"]  # an encoder head has no LoRA
        check_fits(source, lm_roles, base=m.summarizer_base,
                   num_layers=self.policy_base.model.config.num_hidden_layers,
                   summarizer_lora=m.summarizer_lora, reward_lora=self.config.rm.lora)
        weights = read_weights(source, lm_roles)
        if "summarizer" in roles:
            load_adapter_weights(self.policy_base, "summarizer", weights["summarizer"])
        if "reward" in roles and isinstance(self.reward, LMReward):
            self.reward.warm_start(weights)
        logger.info("Warm start of %s from %s", " and ".join(roles), source.path)

    # -------------------------------------------------------------- summaries
    @staticmethod
    def summaries_of(texts: Sequence[str]) -> list[str]:
        """Summary text of each generated text (a fixed sentence when nothing usable came out)."""
        return [prompts.extract_summary(t) or prompts.EMPTY_SUMMARY for t in texts]

    # -------------------------------------------------------------- one iteration
    def iterate(self) -> dict[str, float]:
        """One iteration of Algorithm 1; returns its metrics (reduced over processes)."""
        cfg = self.config
        timer = PhaseTimer(on_phase=self.on_phase)
        per_process = cfg.contexts_per_iteration // self.world
        batch = self.stream.take(cfg.contexts_per_iteration)[self.rank * per_process:(self.rank + 1) * per_process]
        with self.context_prompts.reading(batch):  # the summarizer's prompts stay readable for the whole update
            with timer.phase("generation"):  # 1. rollout: k summaries per context
                rollout = self.ppo.generate(self.context_prompts.prompt_ids(batch))
            summaries = self.summaries_of(self.ppo.decode(rollout))
            expanded = [r for r in batch for _ in range(cfg.ppo.samples_per_prompt)]
            with timer.phase("reward_scoring"):  # 2. score: log σ(r(chosen | z) − r(rejected | z))
                margins = self.reward.margins(summaries, expanded)
                scores = torch.nn.functional.logsigmoid(margins)
            metrics: dict[str, float] = {"rm_margin_acc_on_samples": float((margins > 0).float().mean())}
            if cfg.train_summarizer:
                with timer.phase("reference_logprobs"):  # 3. reference: the base with adapters off
                    ref = self.ppo.logprobs(rollout, reference=True)
                # 4. advantages: old log-probs, values, KL-penalized rewards
                experience, advantage_metrics = self.ppo.make_experience(rollout, scores, ref, phase=timer.phase)
                with timer.phase("ppo_update"):  # 5. clipped PPO update of the summarizer
                    metrics.update(self.ppo.update(experience))
                metrics.update(advantage_metrics)
            else:
                metrics["score"] = float(scores.mean())
        with timer.phase("rm_update"):  # 6. reward-model NLL steps on the fresh summaries
            metrics.update(self.reward.update(summaries, expanded, steps=cfg.rm_steps,
                                              batch_size=cfg.rm_batch_size))
        metrics.update(summary_metrics(summaries, expanded, "sample"))
        metrics["summary_tokens"] = float(rollout.lengths().float().mean())
        metrics["summary_words"] = sum(len(s.split()) for s in summaries) / len(summaries)
        metrics.update({f"time_{name}": value for name, value in timer.seconds.items()})
        metrics["time_iteration"] = sum(timer.seconds.values())
        metrics = reduce_mean(metrics)
        metrics.update(peak_memory_mb(self.policy_base.device))
        return metrics

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def greedy_summaries(self, records: Sequence[TrainingRecord], desc: str = "summaries") -> list[str]:
        """Greedy summaries of the records' contexts (each distinct context once)."""
        unique: dict[str, int] = {}
        for record in records:
            unique.setdefault(record.context.source_hash(), len(unique))
        contexts = {record.context.source_hash(): record for record in records}
        ordered = sorted(contexts.values(), key=lambda r: unique[r.context.source_hash()])
        texts: list[str] = []
        size = self.config.eval.batch_size
        bar = tqdm(total=len(ordered), desc=desc, unit="ctx", leave=False,  # nested: a terminal only (no raw [A)
                   disable=not self.config.progress or self.rank != 0 or not sys.stderr.isatty())
        for start in range(0, len(ordered), size):
            chunk = ordered[start:start + size]
            with self.context_prompts.reading(chunk):
                rollout = self.ppo.generate(self.context_prompts.prompt_ids(chunk), greedy=True)
            texts += self.ppo.decode(rollout)
            bar.update(len(chunk))
        bar.close()
        by_hash = dict(zip((r.context.source_hash() for r in ordered), self.summaries_of(texts), strict=True))
        return [by_hash[r.context.source_hash()] for r in records]

    def evaluate(self, records: Sequence[TrainingRecord], prefix: str) -> tuple[dict[str, float], list[dict]]:
        """Held-out accuracy (and the dataset's summary metrics) of greedy summaries; also sample rows."""
        if not records:
            return {}, []
        summaries = self.greedy_summaries(records, desc=f"eval {prefix}")
        margins = self.reward.margins(summaries, records)
        metrics = {f"{prefix}_accuracy": float((margins > 0).float().mean()),
                   f"{prefix}_rows": float(len(records))}
        metrics.update(summary_metrics(summaries, records, prefix))
        shown = []
        for summary, record, margin in list(zip(summaries, records, margins.tolist(), strict=True))[
                :self.config.eval.samples_logged]:
            shown.append({"split": prefix, "user_id": record.user_id, "user_type": record.user_type,
                          "summary": summary, "margin": margin})
        return metrics, shown

    def run_evaluation(self, *, final: bool = False) -> dict[str, float]:
        """Evaluate on the held-out and OOD subsets; log samples. Rank 0 only writes."""
        e = self.config.eval
        test = fixed_subset(self.test, e.final_test_rows if final else e.test_rows, self.config.seed)
        ood = fixed_subset(self.ood, e.final_ood_rows if final else e.ood_rows, self.config.seed)
        key = (self.iteration, tuple(map(id, test)), tuple(map(id, ood)))
        if self._last_eval is not None and self._last_eval[0] == key:  # same weights, same rows: evaluated once
            metrics, rows = dict(self._last_eval[1]), self._last_eval[2]
            logger.info("Evaluation of iteration %d reused (same weights, same rows)", self.iteration)
        else:
            start = time.perf_counter()
            metrics, shown = self.evaluate(test, "test")
            more, shown_ood = self.evaluate(ood, "ood")
            metrics.update(more)
            metrics["time_eval"] = time.perf_counter() - start
            rows = shown + shown_ood
            self._last_eval = (key, dict(metrics), rows)
        if self.rank == 0:
            for row in rows:
                append_jsonl(self.run_dir / SAMPLES_FILE, {"iteration": self.iteration, "final": final, **row})
        return metrics

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "iteration": self.iteration,
            "best_accuracy": self.best_accuracy,
            "data_position": self.stream.position,
            "summarizer": adapter_weights(self.policy_base, "summarizer"),
            **self.reward.state_dict(),
            "ppo": self.ppo.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "config": self.config.model_dump(mode="json"),
        }
        if self.ppo.critic is not None:
            state["critic"] = adapter_weights(self.policy_base, "critic")
        state["rng"]["numpy"] = np.random.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.best_accuracy = float(state["best_accuracy"])
        self.stream.position = int(state["data_position"])
        load_adapter_weights(self.policy_base, "summarizer", state["summarizer"])
        self.reward.load_state_dict(state)
        if self.ppo.critic is not None:
            load_adapter_weights(self.policy_base, "critic", state["critic"])
        self.ppo.load_state_dict(state["ppo"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        if "numpy" in state["rng"]:
            np.random.set_state(state["rng"]["numpy"])

    def save_checkpoint(self, *, best: bool = False) -> Path | None:
        """Write ``checkpoints/iter-NNNNNN.safetensors`` atomically and point ``latest.json`` at it."""
        if self.rank != 0:
            return None
        folder = self.run_dir / CHECKPOINT_DIR
        name = f"best{SUFFIX}" if best else f"iter-{self.iteration:06d}{SUFFIX}"
        path = write_checkpoint(folder / name, self.state_dict())
        if best:
            atomic_write_text(folder / "best.json", json.dumps({"iteration": self.iteration,
                                                                "test_accuracy": self.best_accuracy}))
            return path
        atomic_write_text(folder / LATEST_FILE, json.dumps({"checkpoint": name, "iteration": self.iteration}))
        kept = sorted(folder.glob(f"iter-*{SUFFIX}"))
        for old in kept[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def resume(self) -> bool:
        """Load the newest checkpoint of the run folder; False when there is none."""
        latest = self.run_dir / CHECKPOINT_DIR / LATEST_FILE
        if not latest.exists():
            return False
        info = json.loads(latest.read_text(encoding="utf-8"))
        path = self.run_dir / CHECKPOINT_DIR / info["checkpoint"]
        self.load_state_dict(read_checkpoint(path))
        if self.rank == 0:
            truncate_metrics(self.run_dir / METRICS_FILE, self.iteration)
        logger.info("Resumed %s at iteration %d", path, self.iteration)
        return True

    # -------------------------------------------------------------- logging
    def log(self, metrics: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        append_jsonl(self.run_dir / METRICS_FILE, {"iteration": self.iteration, "time": time.time(), **metrics},
                     durable=True)
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, self.iteration)

    # -------------------------------------------------------------- the loop
    def evaluate_and_keep_best(self) -> dict[str, float]:
        """A periodic evaluation; a new best held-out accuracy also writes the ``best`` checkpoint."""
        evaluation = self.run_evaluation()
        logger.info("Iteration %d: %s", self.iteration, _short(evaluation))
        if evaluation.get("test_accuracy", -1.0) > self.best_accuracy:
            self.best_accuracy = evaluation["test_accuracy"]
            self.save_checkpoint(best=True)
        return evaluation

    def train(self, *, resume: bool = False) -> dict[str, float]:
        """Run (or continue) the whole schedule; returns the final evaluation."""
        cfg = self.config
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_config(cfg, self.run_dir / CONFIG_FILE)
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter  # optional: tensorboard

                self.writer = SummaryWriter(str(self.run_dir / "tb"))
        resumed = self.resume() if resume else False
        if not resumed:
            if self.rank == 0:
                for stale in (METRICS_FILE, SAMPLES_FILE):
                    (self.run_dir / stale).unlink(missing_ok=True)
            before = self.run_evaluation()
            self.log({"phase": "eval", "before_training": True, **before})
            logger.info("Before training: %s", _short(before))
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc="co-adapt", unit="it",
                   disable=not cfg.progress or self.rank != 0)
        stop, started = False, time.time()
        # one process stops mid-iteration; several would have to agree first, so they stop between iterations
        self.on_phase = phase_hook(bar, started + 60 * cfg.max_minutes if self.world == 1 and cfg.max_minutes else None)
        while self.iteration < cfg.iterations and not stop:
            position = self.stream.position
            try:
                metrics = self.iterate()
            except BudgetSpentError as spent:
                self.stream.position = position  # the abandoned iteration's records come first on resume
                logger.info("%s in iteration %d: stopping after the last whole one", spent, self.iteration + 1)
                self.evaluate_and_keep_best()
                self.save_checkpoint()
                break
            self.iteration += 1
            if self.world > 1:
                metrics["replica_drift"] = replica_drift(self.ppo.actor_params + self.reward.params)
            bar.update(1)
            bar.set_postfix(score=f"{metrics.get('score', 0):.2f}", rm=f"{metrics.get('rm_accuracy', 0):.2f}",
                            kl=f"{metrics.get('kl', 0):.2f}")
            budget_spent = cfg.max_minutes is not None and time.time() - started > 60 * cfg.max_minutes
            if self.iteration % cfg.eval.every == 0 or self.iteration == cfg.iterations or budget_spent:
                metrics.update(self.evaluate_and_keep_best())
                target = cfg.eval.target_accuracy
                stop = budget_spent or (target is not None and metrics.get("test_accuracy", -1.0) >= target)
            self.log({"phase": "train", **metrics})
            if self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations or stop:
                self.save_checkpoint()
        bar.close()
        final = self.run_evaluation(final=True)
        self.log({"phase": "final", **final})
        if self.writer is not None:
            self.writer.close()
        if self.rank == 0:
            write_plots(self.run_dir)
        return final


def write_plots(run_dir: Path) -> None:
    """The run's PNG curves in ``RUN_DIR/plots`` (``plus plot``); a missing matplotlib is a warning, not an error."""
    try:
        files = plot_run(run_dir)
    except ImportError as exc:
        logger.warning("No PNG curves: %s (pip install matplotlib, then `plus plot %s`)", exc, run_dir)
        return
    logger.info("Curves: %s", files[0])


def _short(metrics: dict[str, float]) -> str:
    """The accuracies and the datasets' headline shares (their summary-metrics hooks) for one log line."""
    keys = [k for k in metrics if k.endswith(("accuracy", *headline_names()))]
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys)


def run(config: CoadaptConfig, *, resume: bool = False) -> dict[str, float]:
    """Build a run from a config and train it (uses accelerate when launched by it)."""
    accelerator = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import Accelerator  # optional: accelerate, for multi-process runs

        accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return CoAdaptation(config, accelerator=accelerator).train(resume=resume)
