"""Every training recipe in training/ validates against its config model (typos fail here, not mid-run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plus_sdk.training.coadapt import CoadaptConfig
from plus_sdk.training.config import load_config, read_config_file
from plus_sdk.training.rm.run import RMRunConfig

RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "training").rglob("*.yaml")
                 if "accelerate" not in p.parts)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_validates(path: Path) -> None:
    data = read_config_file(path)
    model = RMRunConfig if "method" in data else CoadaptConfig
    config = load_config(model, path)
    assert config.run_dir


def test_pets_ood_recipes_train_on_dog_cat_labels_only() -> None:
    root = Path(__file__).resolve().parents[1] / "training" / "pets-ood"
    assert load_config(CoadaptConfig, root / "plus.yaml").data.pets_targets == "dog-cat"
    assert load_config(RMRunConfig, root / "oracle.yaml").data.pets_targets == "dog-cat"
