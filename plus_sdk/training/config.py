"""Typed training configs: pydantic models loaded from YAML and overridden from the CLI.

Every config class is a pydantic model whose fields carry a one-line ``description``.
``load_config(Model, "recipe.yaml", ["optim.lr=1e-4", "steps=200"])`` reads the YAML, applies
dotted ``key=value`` overrides (values parsed as YAML scalars), and validates; an unknown key
or a bad value raises ``ConfigError`` naming the key. A recipe may start from another one with
``extends: other.yaml`` (relative to itself): sections merge key by key and the recipe's own
values win, so a variant holds only what differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plus_sdk.files import atomic_write_text

T = TypeVar("T", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or override that does not fit its schema."""


class StrictConfig(BaseModel):
    """Base class of training configs: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSettings(StrictConfig):
    """LoRA shape of one adapter (summarizer, critic or reward model): the one spelling in every recipe."""

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout (0 keeps rollouts and updates identical).")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                      description="Module names that get LoRA.")
    top_layers: int | None = Field(None, ge=1, description="Put LoRA only on the top N transformer layers "
                                   "(cheaper backward; null = every layer).")

    def peft(self, num_layers: int | None = None) -> Any:
        """The peft ``LoraConfig`` (``num_layers``: the backbone's, needed for ``top_layers``)."""
        from peft import LoraConfig  # optional: peft, imported on first use (about 0.5 s)

        layers = None
        if self.top_layers is not None and num_layers is not None:
            layers = list(range(max(num_layers - self.top_layers, 0), num_layers))
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), bias="none", layers_to_transform=layers)

    def peft_for(self, model: Any) -> Any:
        """The peft ``LoraConfig`` for a loaded transformers ``model`` (its layer count read from its config)."""
        return self.peft(getattr(getattr(model, "config", None), "num_hidden_layers", None))


def yaml_problem(where: str, exc: yaml.YAMLError) -> str:
    """One line for a YAML error: ``FILE:LINE:COLUMN: invalid YAML: problem`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    context = getattr(exc, "context", None)
    return f"{at}: invalid YAML: {problem}" + (f" ({' '.join(str(context).split())})" if context else "")


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` → (["a", "b"], 3); the value is parsed as a YAML scalar."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
    key, raw = item.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(f"override {item!r}", exc)) from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to a nested dict (returns the same dict)."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` on top of ``base``: nested mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: str | os.PathLike[str], _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's settings as a dict, with its ``extends:`` chain resolved."""
    path = Path(path)
    if path.resolve() in _chain:
        raise ConfigError(f"{path}: 'extends' loops back to itself ({' -> '.join(str(p) for p in _chain)})")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = f" (named by 'extends' in {_chain[-1]})" if _chain else ""
        raise ConfigError(f"config file {path} does not exist{hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(str(path), exc)) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ConfigError(f"{path} is not a YAML text file ({exc.__class__.__name__}); give a recipe .yaml") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping at top level")
    data = loaded or {}
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base = read_config_file(path.parent / str(parent), (*_chain, path.resolve()))
    return _merge(base, data)


def load_config(model: type[T], path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> T:
    """Load ``model`` from a YAML file (optional, ``extends:`` resolved) plus CLI overrides."""
    data = read_config_file(path) if path is not None else {}
    apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid config{where}: {problems}") from exc


def dump_config(config: BaseModel, path: str | os.PathLike[str]) -> None:
    """Write a config as YAML (atomically), e.g. next to a run's checkpoints."""
    atomic_write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
