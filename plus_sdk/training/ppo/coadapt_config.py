"""The typed config of a co-adaptation run (``plus train RECIPE``): models, data, evaluation, PPO, reward model."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, field_validator

from plus_sdk.training.config import LoraSettings, StrictConfig
from plus_sdk.training.data.source import DataSource
from plus_sdk.training.ppo.algorithm import PPOConfig, optimizer_steps_per_iteration
from plus_sdk.training.rm.encoder import EncoderSettings
from plus_sdk.training.rm.trainer import RMTrainConfig

logger = logging.getLogger(__name__)


class ModelSettings(StrictConfig):
    """Which base models play which role, and how they are loaded."""

    summarizer_base: str | None = Field(None, description="Summarizer base (null: the embedded default).")
    reward_base: str | None = Field(None, description="Reward-model base; null or equal to summarizer_base "
                                                      "means one shared base in memory.")
    device: str | None = Field(None, description="'cpu', 'cuda', 'cuda:1'...; null picks CUDA when present.")
    dtype: str | None = Field(None, description="'float32' / 'bfloat16'; null: bf16 on a capable GPU, else fp32.")
    summarizer_lora: LoraSettings = Field(default_factory=LoraSettings, description="Summarizer adapter shape.")
    critic_lora: LoraSettings = Field(default_factory=LoraSettings, description="Critic adapter shape (GAE only).")
    gradient_checkpointing: bool | Literal["auto"] = Field(
        False, description="Recompute decoder layers in the backward pass (compute for memory): true for the PPO "
        "update and the reward-model steps; 'auto' for the PPO update only when its estimated activations exceed "
        "the free CUDA memory (never on CPU); false never.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default).")

    @property
    def shared(self) -> bool:
        return self.reward_base is None or self.reward_base == self.summarizer_base


class DataSettings(DataSource):
    """Where the (context, pair) records come from, and how the summarizer sees them."""

    @field_validator("dataset")
    @classmethod
    def _one_spelling_of_files(cls, value: str) -> str:
        if value == "jsonl":
            logger.warning("data.dataset=jsonl is the old spelling of data.dataset=files (JSON lines or Arrow "
                           "files); write files")
            return "files"
        return value

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
    roles: Literal["lm", "encoder"] = Field(
        "lm", description="What the two roles read through: 'lm' (the paper's design: the summarizer reads the "
        "context as text, the reward model is a LoRA causal LM) or 'encoder' (the summarizer reads soft tokens of "
        "a frozen context reader, the reward model is a head on frozen sentence embeddings; needs init_from, an "
        "encoder-path bundle such as general-smollm2, which gives the reader, the encoder and both warm starts).")
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
    encoder: EncoderSettings = Field(default_factory=EncoderSettings, description="roles=encoder: the reward "
                                     "head's optimizer (lr, weight decay); its shape comes from init_from.")


def optimizer_steps(config: CoadaptConfig, world: int) -> tuple[int, int]:
    """(summarizer PPO, reward model) optimizer steps of the whole run on ``world`` processes."""
    per_iteration = optimizer_steps_per_iteration(config.ppo, config.contexts_per_iteration // world)
    return config.iterations * per_iteration, max(config.iterations * config.rm_steps, 1)
