"""One entry point for every dataset: pick a builder by name, build, apply a context kind, write.

``build_dataset("pets", PetsConfig())`` returns a ``BuildResult``; ``write_dataset`` saves its
splits as ``train.jsonl`` / ``test.jsonl`` / ``ood.jsonl`` (or ``datasets`` folders with
``fmt="arrow"``) plus ``build.json`` (sizes, skip counts, the config).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from plus_sdk.files import atomic_write_text, staged_dir
from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.contexts import apply_context_kind
from plus_sdk.training.data.pets import PetsConfig, build_pets, build_pets_ood
from plus_sdk.training.data.pets_vpl import build_vpl_pets
from plus_sdk.training.data.prism import PrismConfig, build_prism
from plus_sdk.training.data.records import TrainingRecord, write_arrow, write_jsonl
from plus_sdk.training.data.result import BuildResult
from plus_sdk.training.data.styles import StylesConfig, build_styles
from plus_sdk.training.data.ultrafeedback import UltraFeedbackConfig, build_ultrafeedback

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("pets", "pets-ood", "styles", "uf-p2", "uf-p4", "prism")


def config_class(dataset: str) -> type[StrictConfig]:
    """The config model of a dataset builder."""
    if dataset in ("pets", "pets-ood"):
        return PetsConfig
    if dataset in ("uf-p2", "uf-p4"):
        return UltraFeedbackConfig
    if dataset == "prism":
        return PrismConfig
    if dataset == "styles":
        return StylesConfig
    raise ValueError(f"dataset {dataset!r} is unknown; use one of {', '.join(DATASETS)}")


def _pets_splits(dataset: str, config: PetsConfig) -> dict[str, list[TrainingRecord]]:
    """plus-sdk Pets, or VPL's generator (``source="vpl"``); Pets-OOD adds the ``ood`` split."""
    if config.source == "vpl":
        return build_vpl_pets(config, dataset)
    # Pets-OOD trains on dog-vs-cat targets only by default (paper §6.2) and tests on bird/rabbit users
    targets = config.targets or ("dog-cat" if dataset == "pets-ood" else "all")
    per_type = 2 if config.rows_per == "user_type" else 1  # n_train/n_test per user type: twice the rows in all
    splits = build_pets(per_type * config.n_train, per_type * config.n_test, config.n_context, config.seed,
                        targets_per_user=config.targets_per_user, targets=targets)
    if dataset == "pets-ood":
        splits["ood"] = build_pets_ood(config.n_ood, config.n_context, config.seed,
                                       targets_per_user=config.targets_per_user)
    return splits


def build_dataset(
    dataset: str, config: StrictConfig | None = None, *, context_kind: str = "pairs", guideline: str | None = None
) -> BuildResult:
    """Build ``dataset`` with ``config`` (its defaults when ``None``) and the given context kind."""
    config = config or config_class(dataset)()
    if dataset in ("pets", "pets-ood"):
        assert isinstance(config, PetsConfig)
        result = BuildResult(splits=_pets_splits(dataset, config))
        if config.source == "vpl":  # VPL's generator: what it used, for `plus data stats`
            chose = {"vpl_path": config.vpl_path, "vpl_prompt": config.vpl_prompt, "rows_per": config.rows_per or
                     "user_type", "vpl_train_sentences": config.vpl_train_sentences, "n_context": config.n_context}
            result.info["preset"] = {"name": "vpl", "chose": chose}
    elif dataset == "styles":
        assert isinstance(config, StylesConfig)
        result = BuildResult(splits=build_styles(config))
    elif dataset in ("uf-p2", "uf-p4"):
        assert isinstance(config, UltraFeedbackConfig)
        result = build_ultrafeedback(config, variant=dataset)
    else:
        config_class(dataset)  # raises for unknown names
        assert isinstance(config, PrismConfig)
        result = build_prism(config)
    result.info.setdefault("config", config.model_dump())
    if context_kind != "pairs" or guideline:
        kind = "guideline" if guideline and context_kind == "pairs" else context_kind
        result.splits = {k: apply_context_kind(v, kind, guideline=guideline) for k, v in result.splits.items()}
        context_kind = kind
    result.info.update({"dataset": dataset, "context_kind": context_kind})
    return result


def write_dataset(
    result: BuildResult, out: str | os.PathLike[str], *, fmt: Literal["jsonl", "arrow"] = "jsonl",
    force: bool = False,
) -> dict[str, Any]:
    """Write each split and ``build.json`` into the folder ``out``, atomically; returns the report.

    A non-empty ``out`` is refused unless ``force`` (then replaced); the current folder never."""
    folder = Path(out)
    files = {}
    with staged_dir(folder, force=force) as staging:
        for split, records in result.splits.items():
            if fmt == "arrow":
                write_arrow(records, staging / split)
                files[split] = str(folder / split)
            else:
                write_jsonl(records, staging / f"{split}.jsonl")
                files[split] = str(folder / f"{split}.jsonl")
        report = {**result.report(), "files": files, "format": fmt}
        atomic_write_text(staging / "build.json", json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    logger.info("wrote %s to %s", {k: len(v) for k, v in result.splits.items()}, folder)
    return report
