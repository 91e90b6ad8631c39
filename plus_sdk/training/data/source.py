"""Where a training run's records come from: Pets, styles or both built in memory, or record files.

One config and one loader shared by ``plus train-rm`` and ``plus train`` (co-adaptation).
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.pets import PetsTargets, build_pets, build_pets_ood
from plus_sdk.training.data.records import TrainingRecord, read_records
from plus_sdk.training.data.styles import StylesConfig, build_styles


class DataSource(StrictConfig):
    """Records built on the fly (``pets``) or read from JSONL / Arrow files (``files``)."""

    dataset: Literal["pets", "styles", "general", "files", "jsonl"] = Field(
        "pets", description="'pets' builds Pets (+ Pets-OOD); 'styles' the multi-axis styles set; 'general' "
        "styles mixed with Pets (held-out styles users as test, held-out Pets users as ood); 'files' (alias "
        "'jsonl') reads the paths below.")
    n_train: int = Field(2000, ge=1, description="Train rows (for 'general': styles and Pets together).")
    n_test: int = Field(200, ge=1, description="Held-out rows.")
    n_ood: int = Field(200, ge=0, description="Pets-OOD rows (0: no OOD evaluation).")
    n_context: int = Field(8, ge=1, description="Context pairs per user.")
    pets_targets: PetsTargets = Field("all", description="Pets target pairs: 'all' ten types, or 'dog-cat' only "
                                      "(train for Pets-OOD as the paper does: no bird/rabbit labels in training).")
    twins: bool = Field(False, description="styles/general: each train user is followed by their twin, who "
                        "prefers every other side (see StylesConfig.twins).")
    pets_share: float = Field(0.25, ge=0, le=1, description="'general': share of the train rows that are Pets.")
    seed: int = Field(0, description="Data seed.")
    train_path: str | None = Field(None, description="Train records (JSONL or Arrow folder) when dataset=files.")
    test_path: str | None = Field(None, description="Held-out records when dataset=files.")
    ood_path: str | None = Field(None, description="Optional out-of-distribution records when dataset=files.")


def load_records(cfg: DataSource) -> tuple[list[TrainingRecord], list[TrainingRecord], list[TrainingRecord]]:
    """(train, test, ood) records."""
    if cfg.dataset == "pets":
        pets = build_pets(n_train=cfg.n_train, n_test=cfg.n_test, n_context=cfg.n_context, seed=cfg.seed,
                          targets=cfg.pets_targets)
        ood = build_pets_ood(n_test=cfg.n_ood, n_context=cfg.n_context, seed=cfg.seed) if cfg.n_ood else []
        return pets["train"], pets["test"], ood
    if cfg.dataset in ("styles", "general"):
        return _styles_records(cfg)
    if not cfg.train_path or not cfg.test_path:
        raise ValueError(f"data.dataset={cfg.dataset} needs data.train_path and data.test_path "
                         "(e.g. from `plus data build ... --out DIR`: DIR/train.jsonl, DIR/test.jsonl)")
    ood = read_records(cfg.ood_path) if cfg.ood_path else []
    return read_records(cfg.train_path), read_records(cfg.test_path), ood


def _styles_records(cfg: DataSource) -> tuple[list[TrainingRecord], list[TrainingRecord], list[TrainingRecord]]:
    """Styles alone, or mixed with Pets ('general': Pets held-out users become the ood set)."""
    n_pets = round(cfg.n_train * cfg.pets_share) if cfg.dataset == "general" else 0
    styles = build_styles(StylesConfig(n_train=cfg.n_train - n_pets, n_test=cfg.n_test, n_context=cfg.n_context,
                                       seed=cfg.seed, twins=cfg.twins))
    if cfg.dataset == "styles":
        return styles["train"], styles["test"], []
    pets = build_pets(n_train=n_pets, n_test=cfg.n_ood or 1, n_context=cfg.n_context, seed=cfg.seed,
                      targets=cfg.pets_targets)
    train = styles["train"] + pets["train"]
    random.Random(f"general/{cfg.seed}").shuffle(train)
    return train, styles["test"], pets["test"] if cfg.n_ood else []
