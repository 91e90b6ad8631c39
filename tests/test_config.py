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
