"""Typed configs: YAML + dotted CLI overrides, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from plus_sdk.training.config import ConfigError, StrictConfig, dump_config, load_config


class Optim(StrictConfig):
    lr: float = Field(default=1e-4, description="learning rate")


class Run(StrictConfig):
    steps: int = Field(default=10, description="optimizer steps")
    name: str = Field(default="x", description="run name")
    optim: Optim = Field(default_factory=Optim, description="optimizer")


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\noptim:\n  lr: 0.001\n")
    cfg = load_config(Run, path, ["optim.lr=3e-4", "name=pets"])
    assert cfg.steps == 5 and cfg.optim.lr == pytest.approx(3e-4) and cfg.name == "pets"
    dump_config(cfg, tmp_path / "out.yaml")
    assert load_config(Run, tmp_path / "out.yaml") == cfg


def test_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(Run, None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="steps"):
        load_config(Run, None, ["steps=many"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Run, None, ["steps"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Run, tmp_path / "missing.yaml")


def test_extends_merges_sections_and_the_variant_wins(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.yaml").write_text("steps: 5\nname: base\noptim:\n  lr: 0.001\n")
    variant = tmp_path / "b.yaml"
    variant.write_text("extends: base/a.yaml\nname: variant\n")
    cfg = load_config(Run, variant, ["steps=7"])
    assert (cfg.steps, cfg.name, cfg.optim.lr) == (7, "variant", pytest.approx(0.001))
    # a nested section merges key by key: the variant's lr, the base's other keys
    (tmp_path / "c.yaml").write_text("extends: b.yaml\noptim:\n  lr: 0.5\n")
    assert load_config(Run, tmp_path / "c.yaml") == Run(steps=5, name="variant", optim=Optim(lr=0.5))
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(Run, tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="named by 'extends'"):
        load_config(Run, tmp_path / "orphan.yaml")
