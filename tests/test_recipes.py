"""Every training recipe in training/ validates against its config model (typos fail here, not mid-run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plus_sdk.training.config import load_config, read_config_file
from plus_sdk.training.general import GeneralConfig
from plus_sdk.training.optim import lr_multiplier, warmup_steps
from plus_sdk.training.ppo.coadapt import CoadaptConfig, optimizer_steps
from plus_sdk.training.rm.encoder import MIN_LR_RATIO as ENCODER_MIN_LR_RATIO
from plus_sdk.training.rm.run import RMRunConfig
from plus_sdk.training.rm.vpl import MIN_LR_RATIO as VPL_MIN_LR_RATIO
from plus_sdk.training.sft import SFTConfig

RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "training").rglob("*.yaml")
                 if "accelerate" not in p.parts)


def recipe_model(data: dict) -> type:
    """Which config a recipe is for: the encoder-path pipeline, a reward-model run, a summarizer warm start, or
    co-adaptation."""
    if data.get("kind") == "encoder":
        return GeneralConfig
    if "method" in data:
        return RMRunConfig
    return SFTConfig if "iterations" not in data and "lora" in data else CoadaptConfig


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_validates(path: Path) -> None:
    data = read_config_file(path)
    config = load_config(recipe_model(data), path)
    assert config.run_dir


def test_pets_ood_recipes_train_on_dog_cat_labels_only() -> None:
    root = Path(__file__).resolve().parents[1] / "training" / "pets-ood"
    assert load_config(CoadaptConfig, root / "plus.yaml").data.pets_targets == "dog-cat"
    assert load_config(RMRunConfig, root / "oracle.yaml").data.pets_targets == "dog-cat"


def _decay_ends_exactly_at(total: int, schedule: str, warmup_ratio: float, floor: float) -> None:
    """The lr after ``total`` optimizer steps is the final one; after ``total − 1`` it is still above it."""
    warmup = warmup_steps(warmup_ratio, total)
    assert warmup < total, "warmup would outlast the run"
    if schedule == "constant":
        return
    at = [lr_multiplier(s, schedule=schedule, total=total, warmup=warmup, floor=floor)  # type: ignore[arg-type]
          for s in (total - 1, total)]
    assert at[1] == pytest.approx(floor, abs=1e-12) and at[0] > floor + 1e-12


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_schedule_reaches_its_final_lr_at_the_last_optimizer_step(path: Path) -> None:
    data = read_config_file(path)
    if recipe_model(data) is GeneralConfig:
        general = load_config(GeneralConfig, path)
        _decay_ends_exactly_at(general.rm_steps, "cosine", 0.0, ENCODER_MIN_LR_RATIO)
        return
    if recipe_model(data) is SFTConfig:
        sft = load_config(SFTConfig, path)
        _decay_ends_exactly_at(sft.steps, "linear", sft.warmup_ratio, 0.0)
        return
    if "method" in data:
        config = load_config(RMRunConfig, path)
        floor = VPL_MIN_LR_RATIO if config.method == "vpl" else config.train.min_lr_ratio
        warmup = config.vpl.warmup_ratio if config.method == "vpl" else config.train.warmup_ratio
        _decay_ends_exactly_at(config.steps, "cosine", warmup, floor)
        return
    plus = load_config(CoadaptConfig, path)
    for world in (w for w in (1, 2, 4, 8) if plus.contexts_per_iteration % w == 0):
        ppo_steps, rm_steps = optimizer_steps(plus, world)
        _decay_ends_exactly_at(ppo_steps, plus.ppo.actor_schedule, plus.ppo.warmup_ratio, 0.0)
        _decay_ends_exactly_at(ppo_steps, plus.ppo.critic_schedule, plus.ppo.warmup_ratio, 0.0)
        rm = plus.rm
        _decay_ends_exactly_at(rm_steps, "cosine", rm.warmup_ratio, rm.min_lr_ratio)


def test_a_bad_reward_model_setting_fails_when_the_config_loads(tmp_path: Path) -> None:
    from plus_sdk.training.config import ConfigError

    recipe = tmp_path / "plus.yaml"
    recipe.write_text("rm: {lr: -1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rm\.lr"):
        load_config(CoadaptConfig, recipe)  # before any model is loaded
