"""``plus train general``: the encoder-path default bundle, from scratch, on one CPU.

Phases, each with its own progress bar, all writing to ``RUN_DIR/metrics.jsonl``:

1. **reward model**: the encoder-path head (``rm/encoder.py``) on styles and Pets users, conditioned
   on hand-written wordings of each user's description (a fresh one per row and step);
2. **summarizer**: the context reader and the LM's LoRA adapter (``reader.py``: regress, then decode);
3. **evaluation** on held-out users and prompts: PLUS (generated summaries), the reward model under
   the dataset's own descriptions, held-out wordings and typed wordings, and the share of users
   whose summary names what they prefer;
4. **bundle**: ``RUN_DIR/bundle`` (and ``out`` when given) with ``card.json`` stating data, wordings,
   steps, time and accuracies, loadable by ``PersonalizedJudge.from_pretrained``.

Co-adaptation (Algorithm 1) continues from this bundle as a warm start; see ``docs/encoder.md``.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from tqdm.auto import tqdm

from plus_sdk import prompts
from plus_sdk.bundle import card_markdown, write_card
from plus_sdk.encoder_reward import EncoderScorer
from plus_sdk.files import atomic_write_text, staged_dir
from plus_sdk.models import DEFAULT_MODEL
from plus_sdk.training.config import StrictConfig, dump_config
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.source import DataSource, load_records
from plus_sdk.training.general_eval import evaluate_conditions, named_share
from plus_sdk.training.plots import plot_stages
from plus_sdk.training.reader import ReaderConfig, ReaderTraining
from plus_sdk.training.rm.encoder import EncoderSettings, EncoderTrainer, draw_wording, oracle_condition
from plus_sdk.training.run_files import append_jsonl
from plus_sdk.types import AdapterCard
from plus_sdk.version import __version__

logger = logging.getLogger(__name__)


#: The panels of ``plots/curves.png``: (stage, metric) against the stage's own step.
CURVES = [("reward", "loss"), ("reward", "accuracy"), ("regress", "cosine_loss"), ("decode", "loss"),
          ("decode", "heldout_names_user"), ("decode", "heldout_distinct_summaries")]


class GeneralData(DataSource):
    """Styles and Pets users (``dataset: general``), with twins so no reply prior fits the data."""


class GeneralConfig(StrictConfig):
    """One ``plus train general`` run."""

    kind: str = Field("encoder", description="Recipe kind: 'encoder' (this pipeline).")
    name: str = Field("general-smollm2", description="Bundle name written on the card.")
    run_dir: str = Field("runs/general", description="Output folder (metrics, plots, bundle/).")
    out: str | None = Field(None, description="Also write the bundle here (e.g. adapters/general-smollm2); an "
                            "existing bundle folder there is replaced, any other non-empty folder is refused.")
    seed: int = Field(0, description="Seed of data order and initialisation.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default).")
    progress: bool = Field(True, description="Show progress bars.")
    data: GeneralData = Field(default_factory=lambda: GeneralData(dataset="general", twins=True),
                              description="Training and held-out records.")
    rm_steps: int = Field(3000, ge=1, description="Reward-model steps.")
    rm: EncoderSettings = Field(default_factory=lambda: EncoderSettings(wordings="train", eval_wordings="heldout"),
                                description="Encoder-path reward model.")
    reader: ReaderConfig = Field(default_factory=ReaderConfig, description="Encoder-path summarizer warm start.")
    eval_rows: int = Field(400, ge=1, description="Held-out styles rows of the final evaluation.")


def split_by_dataset(records: list[TrainingRecord]) -> tuple[list[TrainingRecord], list[TrainingRecord]]:
    """(styles rows, Pets rows)."""
    return ([r for r in records if r.dataset == "styles"], [r for r in records if r.dataset.startswith("pets")])


def train_reward(config: GeneralConfig, train: list[TrainingRecord], run_dir: Path) -> EncoderScorer:
    """Phase 1: the encoder-path reward head on wordings of each user's description."""
    scorer = EncoderScorer.create(config.rm.name, hidden=config.rm.hidden)
    trainer = EncoderTrainer(scorer, config.rm, total_steps=config.rm_steps,
                             condition=oracle_condition(config.rm, config.seed))
    trainer.prepare(train, progress=config.progress)
    rng = random.Random(f"rm/{config.seed}")
    for _ in tqdm(range(config.rm_steps), desc="general: reward model", disable=not config.progress):
        batch = [train[rng.randrange(len(train))] for _ in range(config.rm.batch_size)]
        out = trainer.step(batch)
        if trainer.step_count % 100 == 0 or trainer.step_count == config.rm_steps:
            append_jsonl(run_dir / "metrics.jsonl", {"stage": "reward", "step": trainer.step_count, **out})
    return scorer


def evaluate_bundle(scorer: EncoderScorer, training: ReaderTraining, test: list[TrainingRecord],
                    ood: list[TrainingRecord], seed: int) -> dict[str, Any]:
    """Phase 3: PLUS and the reward model under every kind of description, on held-out users."""
    results: dict[str, Any] = {}
    for name, rows in (("test", test), ("ood", ood)):
        if not rows:
            continue
        summaries = training.summaries(rows)
        results[f"{name}_plus"] = evaluate_conditions(scorer, rows, summaries)
        results[f"{name}_named"] = named_share(summaries, rows)
        for split in ("dataset", "heldout", "typed"):
            try:
                conditions = [draw_wording(r, split, f"eval/{seed}/{r.user_id}/{r.prompt}")  # type: ignore[arg-type]
                              for r in rows]
            except (ValueError, KeyError) as exc:  # a dataset without hand-written wordings
                logger.info("no %s wordings for %s rows: %s", split, name, exc)
                continue
            results[f"{name}_oracle_{split}"] = evaluate_conditions(scorer, rows, conditions)
        results[f"{name}_btl"] = evaluate_conditions(scorer, rows, [None] * len(rows))
    return results


def card_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The flat numbers a card keeps (accuracies and named shares)."""
    flat: dict[str, float] = {}
    for key, table in results.items():
        for field, value in table.items():
            if isinstance(value, (int, float)):
                flat[f"{key}_{field}"] = float(value)
            elif isinstance(value, dict):
                flat.update({f"{key}_{field}_{k}": float(v) for k, v in value.items()})
    return flat


def write_bundle(folder: Path, scorer: EncoderScorer, training: ReaderTraining, card: AdapterCard) -> None:
    """``card.json``, ``README.md``, ``summarizer/`` (LoRA + reader) and ``reward/`` (head), atomically."""
    with staged_dir(folder) as staging:
        training.save(staging / "summarizer")
        scorer.save_pretrained(staging / "reward")
        write_card(staging, card)
        atomic_write_text(staging / "README.md", card_markdown(card))


def run_general(config: GeneralConfig) -> dict[str, Any]:
    """All phases; returns the evaluation results (also in ``RUN_DIR/results.json``)."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    dump_config(config, run_dir / "config.yaml")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    train, test, ood = load_records(config.data)
    test = test[: config.eval_rows]
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    scorer = train_reward(config, train, run_dir)
    seconds["reward_model"] = time.perf_counter() - tick
    tick = time.perf_counter()
    training = ReaderTraining(config.reader, train, test + ood, run_dir=run_dir, seed=config.seed,
                              progress=config.progress, encoder=scorer.encoder, pair_tower=scorer.head.reply)
    summarizer_metrics = {**training.regress(), **training.decode()}
    seconds["summarizer"] = time.perf_counter() - tick
    tick = time.perf_counter()
    results = evaluate_bundle(scorer, training, test, ood, config.seed)
    seconds["evaluation"] = time.perf_counter() - tick
    seconds["total"] = time.perf_counter() - started
    results["summarizer"] = summarizer_metrics
    results["seconds"] = seconds
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2))
    card = AdapterCard(
        name=config.name, base_model=config.reader.base or DEFAULT_MODEL, prompt_version=prompts.PROMPT_VERSION,
        summary_task="generic",
        context_kind="pairs", trained=True, method="summary",
        trained_on=f"{config.data.dataset} (styles + Pets users, n_train={config.data.n_train}, twins="
                   f"{config.data.twins}, n_context={config.data.n_context}, seed={config.data.seed}); reward model "
                   f"on '{config.rm.wordings}' wordings, summarizer on '{config.reader.wordings}' wordings",
        metrics=card_metrics(results), plus_sdk_version=__version__,
        config={"kind": "encoder", "encoder": scorer.encoder.name, "reward_base_model": scorer.encoder.name,
                "summary_max_new_tokens": config.reader.max_new_tokens, **config.model_dump(mode="json")})
    write_bundle(run_dir / "bundle", scorer, training, card)
    if config.out:
        target = Path(config.out)
        if target.exists() and any(target.iterdir()) and not (target / "card.json").is_file():
            raise FileExistsError(f"out={target} is a non-empty folder that is not a bundle; choose another")
        with staged_dir(target) as staging:
            shutil.copytree(run_dir / "bundle", staging, dirs_exist_ok=True)
    try:
        plot_stages(run_dir, CURVES)
    except (ImportError, ValueError) as exc:  # matplotlib is a training extra
        logger.warning("no plots written: %s", exc)
    logger.info("general bundle written to %s in %.0f s", run_dir / "bundle", seconds["total"])
    return results
