"""PLUS co-adaptation (Algorithm 1): PPO on the summarizer, Bradley–Terry NLL on the reward model.

Each iteration:

1. take the next N (context, pair) records of the training set;
2. sample ``k`` summaries per context with the current summarizer (``ppo_trainer.PPOTrainer.generate``);
3. score: ``log σ(r(chosen | z) − r(rejected | z))`` with the current reward model, on the
   summary's last token, with a per-token KL penalty against the start policy;
4. PPO (or the critic-free RLOO / group estimator) updates the summarizer LoRA adapter;
5. the reward model takes ``rm_steps`` NLL steps on the same fresh summaries, through the
   reward-model trainer (``plus_sdk.training.rm.trainer.RewardTrainer``).

Summarizer, critic and reward model are LoRA adapters on ONE ``SharedBase`` when they share a
base model (the reference policy is that base with adapters off); distinct bases give two.

A run folder holds ``config.yaml``, ``metrics.jsonl`` (one line per iteration, evaluations
included), ``samples.jsonl`` (summaries logged at each evaluation), ```checkpoints/`` (written
atomically every K iterations; ``latest.json`` names the newest) and, optionally, TensorBoard
event files. ``--resume`` continues from ``latest.json`` exactly (weights, optimizers,
schedules, RNG states, data position, KL controller).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.models import atomic_write_text
from plus_sdk.training import ppo
from plus_sdk.training.checkpoint import SUFFIX, read_checkpoint, write_checkpoint
from plus_sdk.training.config import LoraSettings, StrictConfig, dump_config
from plus_sdk.training.data.metrics import summary_metrics
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import DataSource, load_records
from plus_sdk.training.distributed import dist_info, reduce_mean
from plus_sdk.training.ppo import PPOConfig
from plus_sdk.training.ppo_trainer import Critic, PPOTrainer
from plus_sdk.training.rm.trainer import RewardTrainer, RMTrainConfig, add_reward_lora

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest.json"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "config.yaml"


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


class ModelSettings(StrictConfig):
    """Which base models play which role, and how they are loaded."""

    summarizer_base: str | None = Field(None, description="Summarizer base (null: the embedded default).")
    reward_base: str | None = Field(None, description="Reward-model base; null or equal to summarizer_base "
                                                      "means one shared base in memory.")
    device: str | None = Field(None, description="'cpu', 'cuda', 'cuda:1'...; null picks CUDA when present.")
    dtype: str | None = Field(None, description="'float32' / 'bfloat16'; null: bf16 on a capable GPU, else fp32.")
    summarizer_lora: LoraSettings = Field(default_factory=LoraSettings, description="Summarizer adapter shape.")
    critic_lora: LoraSettings = Field(default_factory=LoraSettings, description="Critic adapter shape (GAE only).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on the shared base.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default).")

    @property
    def shared(self) -> bool:
        return self.reward_base is None or self.reward_base == self.summarizer_base


class DataSettings(DataSource):
    """Where the (context, pair) records come from, and how the summarizer sees them."""

    summary_task: str = Field("pets", description="Summarizer prompt family (prompts.SUMMARY_TASKS).")
    n_context: int = Field(4, ge=1, description="Context pairs per user.")
    max_prompt_tokens: int = Field(1024, ge=16, description="Longest summarizer prompt; longer contexts lose "
                                                            "their oldest pairs.")


class EvalSettings(StrictConfig):
    """Held-out evaluation during and after training."""

    every: int = Field(10, ge=1, description="Evaluate every E iterations (and before training, and at the end).")
    test_rows: int = Field(100, ge=1, description="Held-out rows per periodic evaluation (a fixed random subset).")
    ood_rows: int = Field(50, ge=0, description="OOD rows per periodic evaluation.")
    final_test_rows: int = Field(200, ge=1, description="Held-out rows of the final evaluation.")
    final_ood_rows: int = Field(200, ge=0, description="OOD rows of the final evaluation.")
    batch_size: int = Field(16, ge=1, description="Contexts per greedy generation batch.")
    samples_logged: int = Field(6, ge=0, description="Greedy summaries written to samples.jsonl per evaluation.")
    target_accuracy: float | None = Field(None, gt=0, le=1, description="Stop once held-out accuracy reaches it "
                                                                         "(null: run every iteration).")


class CoadaptConfig(StrictConfig):
    """A PLUS co-adaptation run."""

    run_dir: str = Field("runs/plus", description="Output folder (metrics, checkpoints, samples).")
    seed: int = Field(0, description="Seed of sampling, shuffling and initialization.")
    iterations: int = Field(100, ge=1, description="Algorithm 1 iterations.")
    contexts_per_iteration: int = Field(8, ge=1, description="N: (context, pair) records per iteration (all "
                                                             "processes together).")
    rm_steps: int = Field(1, ge=0, description="M_φ: reward-model NLL steps per iteration on the fresh summaries.")
    rm_batch_size: int = Field(16, ge=1, description="Summaries per reward-model step (per process).")
    max_minutes: float | None = Field(None, gt=0, description="Wall-clock budget of the training loop; when "
                                                               "spent, training stops and the final evaluation runs.")
    init_from: str | None = Field(None, description="Adapter bundle (card.json + summarizer/ + reward/) whose "
                                                     "weights start this run (a warm start; optimizers start fresh).")
    init_roles: list[Literal["summarizer", "reward"]] = Field(
        default_factory=lambda: ["summarizer", "reward"],
        description="Which of the bundle's roles init_from loads; the others start fresh (e.g. [summarizer]).")
    train_summarizer: bool = Field(True, description="False freezes the summarizer (PLUS-untrained baseline).")
    checkpoint_every: int = Field(10, ge=1, description="Write a checkpoint every K iterations.")
    keep_checkpoints: int = Field(2, ge=1, description="Most recent checkpoints kept (the best is kept too).")
    tensorboard: bool = Field(False, description="Also write TensorBoard event files to run_dir/tb.")
    progress: bool = Field(True, description="Show progress bars.")
    model: ModelSettings = Field(default_factory=ModelSettings, description="Base models and adapters.")
    data: DataSettings = Field(default_factory=DataSettings, description="Training and evaluation data.")
    eval: EvalSettings = Field(default_factory=EvalSettings, description="Evaluation schedule.")
    ppo: PPOConfig = Field(default_factory=PPOConfig, description="Summarizer PPO / RLOO settings.")
    rm: RMTrainConfig = Field(default_factory=RMTrainConfig, description="Reward-model trainer settings "
                                                                          "(optimizer, batch, LoRA shape).")


def optimizer_steps(config: CoadaptConfig, world: int) -> tuple[int, int]:
    """(summarizer PPO, reward model) optimizer steps of the whole run on ``world`` processes."""
    per_iteration = ppo.optimizer_steps_per_iteration(config.ppo, config.contexts_per_iteration // world)
    return config.iterations * per_iteration, max(config.iterations * config.rm_steps, 1)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def fixed_subset(records: Sequence[TrainingRecord], n: int, seed: int) -> list[TrainingRecord]:
    """A reproducible random subset of ``n`` records (all when fewer)."""
    if n >= len(records):
        return list(records)
    rng = random.Random(f"eval/{seed}")
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


class RecordStream:
    """An endless, reshuffled-per-epoch stream of training records with a resumable position."""

    def __init__(self, records: Sequence[TrainingRecord], seed: int) -> None:
        if not records:
            raise ValueError("the training set is empty")
        self.records = list(records)
        self.seed = seed
        self.position = 0

    def order(self, epoch: int) -> list[int]:
        rng = random.Random(f"stream/{self.seed}/{epoch}")
        order = list(range(len(self.records)))
        rng.shuffle(order)
        return order

    def take(self, n: int) -> list[TrainingRecord]:
        out = []
        for _ in range(n):
            epoch, index = divmod(self.position, len(self.records))
            out.append(self.records[self.order(epoch)[index]])
            self.position += 1
        return out


# ---------------------------------------------------------------------------------------
# Timing and memory
# ---------------------------------------------------------------------------------------


class PhaseTimer:
    """Wall-clock seconds per named phase of one iteration."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory on a GPU), in MiB."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# ---------------------------------------------------------------------------------------
# Distributed helpers (one process works too)
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# The co-adaptation run
# ---------------------------------------------------------------------------------------


class CoAdaptation:
    """Algorithm 1 of PLUS, with checkpoints, metrics and evaluation (see the module doc)."""

    def __init__(self, config: CoadaptConfig, *, accelerator: Any = None) -> None:
        from plus_sdk.backends.local import SharedBase
        self.config = config
        self.accelerator = accelerator
        self.rank, self.world = dist_info()
        if config.contexts_per_iteration % self.world:
            raise ValueError(f"contexts_per_iteration={config.contexts_per_iteration} must be a multiple of the "
                             f"number of processes ({self.world})")
        self.run_dir = Path(config.run_dir)
        if config.model.threads:
            torch.set_num_threads(config.model.threads)
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        m = config.model
        device = m.device
        if device is None and accelerator is not None:
            device = str(accelerator.device)
        self.policy_base = SharedBase.load(m.summarizer_base, device=device, dtype=m.dtype, share=False)
        self.reward_base = (self.policy_base if m.shared else
                            SharedBase.load(m.reward_base, device=device, dtype=m.dtype, share=False))
        self.policy_base.add_new_adapter("summarizer", m.summarizer_lora.peft())
        critic = None
        if config.ppo.estimator == "gae":
            from plus_sdk.reward import RewardHead

            self.policy_base.add_new_adapter("critic", m.critic_lora.peft())
            hidden = self.policy_base.model.config.hidden_size
            critic = Critic(self.policy_base, "critic",
                                RewardHead(hidden, 1).to(dtype=self.policy_base.model.dtype))
        self.rm_config = config.rm
        self.reward_model = add_reward_lora(self.reward_base, self.rm_config, name="reward")
        if m.gradient_checkpointing:
            for base in {id(self.policy_base): self.policy_base, id(self.reward_base): self.reward_base}.values():
                base.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        ppo_steps, rm_steps = optimizer_steps(config, self.world)
        self.ppo = PPOTrainer(self.policy_base, config.ppo, total_steps=ppo_steps,
                             adapter="summarizer", critic=critic, seed=config.seed + 1000 * self.rank)
        if config.ppo.rollout_engine == "vllm":
            self.ppo.attach_vllm(self.make_vllm_engine())
        self.rm_trainer = RewardTrainer(self.reward_model, self.rm_config,
                                        total_steps=rm_steps,
                                        accelerator=accelerator)
        if config.init_from:
            self.warm_start(Path(config.init_from))
        train, test, ood = load_records(config.data)
        self.stream = RecordStream(train, config.seed)
        self.test, self.ood = test, ood
        self.iteration = 0
        self.best_accuracy = -1.0
        self._prompt_cache: dict[int, list[int]] = {}
        self.writer = None

    def make_vllm_engine(self) -> Any:
        """A vLLM engine on the summarizer's base (each process its own, on its own GPU)."""
        from plus_sdk.models import resolve_model
        from plus_sdk.training.vllm_rollout import VLLMRolloutEngine

        m = self.config.model
        return VLLMRolloutEngine(resolve_model(m.summarizer_base), self.run_dir / "vllm_adapters" / f"rank{self.rank}",
                                 max_lora_rank=m.summarizer_lora.r,
                                 gpu_memory_utilization=self.config.ppo.vllm_gpu_memory_utilization,
                                 dtype=m.dtype or "auto", seed=self.config.seed + self.rank)

    def warm_start(self, bundle: Path) -> None:
        """Load a bundle's summarizer adapter and/or reward adapter + head (``init_roles``) into this run."""
        from safetensors.torch import load_file

        roles = self.config.init_roles
        for folder, base, name in ((bundle / "summarizer", self.policy_base, "summarizer"),
                                   (bundle / "reward", self.reward_base, "reward")):
            if name not in roles:
                continue
            weights = folder / "adapter_model.safetensors"
            if not weights.exists():
                raise FileNotFoundError(f"init_from={bundle}: {weights} is missing (export a bundle with plus export)")
            self.load_adapter_state(base, name, load_file(str(weights)))
        if "reward" in roles:
            head = load_file(str(bundle / "reward" / "head.safetensors"))
            self.reward_model.head.load_state_dict({k: v.to(self.reward_model.head.linear.weight.dtype)
                                                    for k, v in head.items()})
        logger.info("Warm start of %s from %s", " and ".join(roles), bundle)

    # -------------------------------------------------------------- prompts and summaries
    def prompt_ids(self, record: TrainingRecord) -> list[int]:
        """Token ids of the summarizer prompt for a record's context (cached per context)."""
        key = hash(record.context.source_hash())
        if key not in self._prompt_cache:
            context = record.context
            tok = self.policy_base.tokenizer
            while True:
                messages = prompts.summarizer_messages(context, self.config.data.summary_task)
                ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
                ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
                if len(ids) <= self.config.data.max_prompt_tokens or len(context.examples) <= 1:
                    break
                context = context.model_copy(update={"examples": list(context.examples[1:])})
            self._prompt_cache[key] = ids
        return self._prompt_cache[key]

    @staticmethod
    def summaries_of(texts: Sequence[str]) -> list[str]:
        """Summary text of each generated text (a fixed sentence when nothing usable came out)."""
        return [prompts.extract_summary(t) or prompts.EMPTY_SUMMARY for t in texts]

    # -------------------------------------------------------------- reward model
    @torch.no_grad()
    def margins(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> torch.Tensor:
        """r(chosen | z) − r(rejected | z) for each (summary, record)."""
        rm = self.reward_model
        sequences: list[list[int]] = []
        for summary, record in zip(summaries, records, strict=True):
            condition = prompts.summary_condition(summary)
            sequences.append(rm.encode(record.prompt, record.chosen, condition))
            sequences.append(rm.encode(record.prompt, record.rejected, condition))
        rewards = rm.score_ids(sequences)
        return rewards[0::2] - rewards[1::2]

    def rm_examples(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> list[Any]:
        from plus_sdk.training.rm.trainer import RMExample

        return [RMExample(condition=prompts.summary_condition(s), prompt=r.prompt, chosen=r.chosen,
                          rejected=r.rejected) for s, r in zip(summaries, records, strict=True)]

    # -------------------------------------------------------------- one iteration
    def iterate(self) -> dict[str, float]:
        """One iteration of Algorithm 1; returns its metrics (reduced over processes)."""
        cfg = self.config
        timer = PhaseTimer()
        per_process = cfg.contexts_per_iteration // self.world
        batch = self.stream.take(cfg.contexts_per_iteration)[self.rank * per_process:(self.rank + 1) * per_process]
        k = cfg.ppo.samples_per_prompt
        with timer.phase("generation"):
            rollout = self.ppo.generate([self.prompt_ids(r) for r in batch])
        texts = self.ppo.decode(rollout)
        summaries = self.summaries_of(texts)
        expanded = [r for r in batch for _ in range(k)]
        with timer.phase("reward_scoring"):
            margins = self.margins(summaries, expanded)
            scores = torch.nn.functional.logsigmoid(margins)
        metrics: dict[str, float] = {"rm_margin_acc_on_samples": float((margins > 0).float().mean())}
        if cfg.train_summarizer:
            with timer.phase("reference_logprobs"):
                ref = self.ppo.logprobs(rollout, reference=True)
            experience, advantage_metrics = self.ppo.make_experience(rollout, scores, ref, phase=timer.phase)
            with timer.phase("ppo_update"):
                metrics.update(self.ppo.update(experience))
            metrics.update(advantage_metrics)
        else:
            metrics["score"] = float(scores.mean())
        with timer.phase("rm_update"):
            metrics.update(self.rm_update(summaries, expanded))
        metrics.update(summary_metrics(summaries, expanded, "sample"))
        metrics["summary_tokens"] = float(rollout.lengths().float().mean())
        metrics["summary_words"] = sum(len(s.split()) for s in summaries) / len(summaries)
        metrics.update({f"time_{name}": value for name, value in timer.seconds.items()})
        metrics["time_iteration"] = sum(timer.seconds.values())
        metrics = reduce_mean(metrics)
        metrics.update(peak_memory_mb(self.policy_base.device))
        return metrics

    def rm_update(self, summaries: Sequence[str], records: Sequence[TrainingRecord]) -> dict[str, float]:
        """M_φ Bradley–Terry NLL steps of the reward model on the fresh summaries."""
        examples = self.rm_examples(summaries, records)
        totals: dict[str, float] = {}
        for step in range(self.config.rm_steps):
            size = min(self.config.rm_batch_size, len(examples))
            start = (step * size) % len(examples)
            chunk = (examples + examples)[start:start + size]
            out = self.rm_trainer.step(chunk)
            for key, value in out.items():
                if isinstance(value, (int, float)):
                    totals[f"rm_{key}"] = totals.get(f"rm_{key}", 0.0) + float(value)
        out = {key: value / max(self.config.rm_steps, 1) for key, value in totals.items()}
        out["rm_step"] = float(self.rm_trainer.step_count)  # the counter itself, not its mean
        return out

    def replica_drift(self) -> float:
        """Largest difference between processes of a checksum of the trainable weights (0 = in sync)."""
        import torch.distributed as dist

        if self.world == 1:
            return 0.0
        params = self.ppo.actor_params + self.rm_trainer.params
        checksum = torch.tensor([sum(float(p.detach().double().sum()) for p in params)], dtype=torch.float64)
        gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
        dist.all_gather(gathered, checksum)
        values = torch.cat(gathered)
        return float(values.max() - values.min())

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
        bar = tqdm(total=len(ordered), desc=desc, unit="ctx", leave=False,
                   disable=not self.config.progress or self.rank != 0)
        for start in range(0, len(ordered), size):
            chunk = ordered[start:start + size]
            rollout = self.ppo.generate([self.prompt_ids(r) for r in chunk], greedy=True)
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
        margins = self.margins(summaries, records)
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
        start = time.perf_counter()
        metrics, shown = self.evaluate(test, "test")
        more, shown_ood = self.evaluate(ood, "ood")
        metrics.update(more)
        metrics["time_eval"] = time.perf_counter() - start
        if self.rank == 0:
            with (self.run_dir / SAMPLES_FILE).open("a", encoding="utf-8") as handle:
                for row in shown + shown_ood:
                    handle.write(json.dumps({"iteration": self.iteration, "final": final, **row}) + "\n")
        return metrics

    # -------------------------------------------------------------- checkpoints
    def adapter_state(self, base: Any, name: str) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(base.model, adapter_name=name)
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_adapter_state(self, base: Any, name: str, state: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(base.model, state, adapter_name=name)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise RuntimeError(f"checkpoint adapter {name!r} has unexpected keys: {unexpected[:3]}")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "iteration": self.iteration,
            "best_accuracy": self.best_accuracy,
            "data_position": self.stream.position,
            "summarizer": self.adapter_state(self.policy_base, "summarizer"),
            "reward": self.adapter_state(self.reward_base, "reward"),
            "reward_head": {k: v.detach().cpu().clone() for k, v in self.reward_model.head.state_dict().items()},
            "ppo": self.ppo.state_dict(),
            "rm_trainer": self.rm_trainer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "config": self.config.model_dump(mode="json"),
        }
        if self.ppo.critic is not None:
            state["critic"] = self.adapter_state(self.policy_base, "critic")
        try:
            import numpy as np

            state["rng"]["numpy"] = np.random.get_state()
        except ImportError:
            pass
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.best_accuracy = float(state["best_accuracy"])
        self.stream.position = int(state["data_position"])
        self.load_adapter_state(self.policy_base, "summarizer", state["summarizer"])
        self.load_adapter_state(self.reward_base, "reward", state["reward"])
        self.reward_model.head.load_state_dict(state["reward_head"])
        if self.ppo.critic is not None:
            self.load_adapter_state(self.policy_base, "critic", state["critic"])
        self.ppo.load_state_dict(state["ppo"])
        self.rm_trainer.load_state_dict(state["rm_trainer"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        if "numpy" in state["rng"]:
            import numpy as np

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
        line = json.dumps({"iteration": self.iteration, "time": time.time(), **metrics})
        with (self.run_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, self.iteration)

    # -------------------------------------------------------------- the loop
    def train(self, *, resume: bool = False) -> dict[str, float]:
        """Run (or continue) the whole schedule; returns the final evaluation."""
        cfg = self.config
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_config(cfg, self.run_dir / CONFIG_FILE)
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

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
        stop = False
        started = time.time()
        while self.iteration < cfg.iterations and not stop:
            metrics = self.iterate()
            self.iteration += 1
            if self.world > 1:
                metrics["replica_drift"] = self.replica_drift()
            bar.update(1)
            bar.set_postfix(score=f"{metrics.get('score', 0):.2f}", rm=f"{metrics.get('rm_accuracy', 0):.2f}",
                            kl=f"{metrics.get('kl', 0):.2f}")
            if self.iteration % cfg.eval.every == 0 or self.iteration == cfg.iterations:
                evaluation = self.run_evaluation()
                metrics.update(evaluation)
                logger.info("Iteration %d: %s", self.iteration, _short(evaluation))
                accuracy = evaluation.get("test_accuracy", -1.0)
                if accuracy > self.best_accuracy:
                    self.best_accuracy = accuracy
                    self.save_checkpoint(best=True)
                target = cfg.eval.target_accuracy
                stop = target is not None and accuracy >= target
            if cfg.max_minutes is not None and time.time() - started > 60 * cfg.max_minutes:
                logger.info("Time budget of %.1f min spent at iteration %d", cfg.max_minutes, self.iteration)
                stop = True
                if "test_accuracy" not in metrics:
                    evaluation = self.run_evaluation()
                    metrics.update(evaluation)
                    if evaluation.get("test_accuracy", -1.0) > self.best_accuracy:
                        self.best_accuracy = evaluation["test_accuracy"]
                        self.save_checkpoint(best=True)
            self.log({"phase": "train", **metrics})
            if self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations or stop:
                self.save_checkpoint()
        bar.close()
        final = self.run_evaluation(final=True)
        self.log({"phase": "final", **final})
        if self.writer is not None:
            self.writer.close()
        return final


def _short(metrics: dict[str, float]) -> str:
    keys = [k for k in metrics if k.endswith(("accuracy", "right_animal_first"))]
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys)


def truncate_metrics(path: Path, iteration: int) -> None:
    """Drop metric lines written after ``iteration`` (they are recomputed after a resume)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("iteration", 0) <= iteration]
    atomic_write_text(path, "\n".join(kept) + ("\n" if kept else ""))


def run(config: CoadaptConfig, *, resume: bool = False) -> dict[str, float]:
    """Build a run from a config and train it (uses accelerate when launched by it)."""
    accelerator = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=not torch.cuda.is_available())
    return CoAdaptation(config, accelerator=accelerator).train(resume=resume)


# ---------------------------------------------------------------------------------------
# Command line: plus train / plus plot / plus export
# ---------------------------------------------------------------------------------------


def cmd_train(args: Any) -> int:
    """``plus train CONFIG [--resume] [key=value ...]``."""
    from plus_sdk.training.config import load_config

    config = load_config(CoadaptConfig, args.config, list(args.overrides))
    if args.run_dir:
        config.run_dir = args.run_dir
    final = run(config, resume=args.resume)
    if dist_info()[0] == 0:
        from plus_sdk.console import emit

        emit(json.dumps(final, indent=2))
    return 0


def add_train_commands(sub: Any) -> None:
    """Register ``plus train``, ``plus plot`` and ``plus export``."""
    from plus_sdk.training.export import add_export_command
    from plus_sdk.training.plots import add_plot_command

    train = sub.add_parser("train", help="PLUS co-adaptation: PPO summarizer + NLL reward model (Algorithm 1)")
    train.add_argument("config", help="YAML recipe, e.g. training/pets/plus.yaml")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. iterations=50 ppo.actor_lr=1e-4")
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.json")
    train.add_argument("--run-dir", default=None, help="override run_dir")
    train.set_defaults(func=cmd_train)
    add_plot_command(sub)
    add_export_command(sub)
