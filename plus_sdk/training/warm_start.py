"""``init_from``: where a co-adaptation run's starting weights come from, and whether they fit its recipe.

``init_from`` takes what ``from_pretrained`` takes: a bundle folder or a bundle NAME (resolved by
``bundle.find_bundle``: ``./adapters/``, the shipped bundles, the user bundle folder), and also a
``plus train`` run folder (its best checkpoint, else its latest). Before any weight is copied, each
role's LoRA shape (``r``, ``alpha``, ``target_modules``, layers) and the base model are compared with
the recipe's, so a mismatch is one line naming the setting to change, not a raw tensor error.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from plus_sdk.bundle import find_bundle, read_card
from plus_sdk.models import bundle_search_folders, model_id_of, resolve_model, shipped_bundle_names
from plus_sdk.training.checkpoint import SUFFIX, read_checkpoint
from plus_sdk.training.config import LoraSettings, load_config
from plus_sdk.training.ppo.coadapt_config import CoadaptConfig


class WarmStartError(ValueError):
    """``init_from`` names nothing loadable, or weights whose shape does not fit the recipe."""


@dataclass
class WarmStartSource:
    """Where ``init_from`` points: a bundle folder, or a run folder with its checkpoint."""

    path: Path
    kind: str  # "bundle" or "run"
    base_model: str | None
    lora: dict[str, dict[str, Any]]  # role -> {"r", "alpha", "target_modules", "layers"}


def _lora_of_adapter(folder: Path) -> dict[str, Any] | None:
    """The LoRA shape in a saved adapter's ``adapter_config.json`` (None when there is none)."""
    path = folder / "adapter_config.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    layers = data.get("layers_to_transform")
    return {"r": data.get("r"), "alpha": data.get("lora_alpha"), "target_modules": sorted(data.get("target_modules")
            or []), "layers": sorted(layers) if isinstance(layers, list) else layers}


def lora_shape(settings: LoraSettings, num_layers: int) -> dict[str, Any]:
    """The LoRA shape a recipe's ``LoraSettings`` gives on a base of ``num_layers`` layers."""
    layers = settings.peft(num_layers).layers_to_transform
    return {"r": settings.r, "alpha": settings.alpha, "target_modules": sorted(settings.target_modules),
            "layers": sorted(layers) if layers is not None else None}


def resolve_init_from(ref: str | os.PathLike[str]) -> WarmStartSource:
    """The bundle or run folder ``ref`` names, with its base model and LoRA shapes; else a one-line error."""
    bundle = find_bundle(ref)
    if bundle is not None:
        card = read_card(bundle)
        lora = {role: shape for role in ("summarizer", "reward")
                if (shape := _lora_of_adapter(bundle / role)) is not None}
        return WarmStartSource(bundle, "bundle", card.base_model, lora)
    path = Path(ref).expanduser()
    if (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        config = load_config(CoadaptConfig, path / "config.yaml")
        num_layers = _num_layers(config.model.summarizer_base)
        lora = {"summarizer": lora_shape(config.model.summarizer_lora, num_layers),
                "reward": lora_shape(config.rm.lora, num_layers)}
        return WarmStartSource(path, "run", config.model.summarizer_base, lora)

    names = shipped_bundle_names()
    near = difflib.get_close_matches(str(ref), names, n=3, cutoff=0.5)
    raise WarmStartError(
        f"init_from={ref}: no bundle folder, bundle name or `plus train` run folder of that name (names are looked "
        f"up in {', '.join(str(f) for f in bundle_search_folders())})"
        + (f"; nearest: {', '.join(near)}" if near else f"; known bundles: {', '.join(names) or 'none'}")
        + ". Fix: give an existing one, or init_from=null to start fresh")


def _num_layers(base: str | None) -> int:
    from transformers import AutoConfig  # optional: transformers auto classes, on first use

    return int(AutoConfig.from_pretrained(resolve_model(base)).num_hidden_layers)


def check_fits(source: WarmStartSource, roles: Sequence[str], *, base: str | None, num_layers: int,
               summarizer_lora: LoraSettings, reward_lora: LoraSettings) -> None:
    """A ``WarmStartError`` naming the first recipe setting that differs from ``source`` for ``roles``."""
    ref = source.path
    if source.base_model is not None and model_id_of(source.base_model) != model_id_of(base):
        raise WarmStartError(f"init_from={ref} was trained on base {source.base_model!r} but this recipe's "
                             f"model.summarizer_base is {base!r}: set model.summarizer_base={source.base_model} "
                             "or init_from=null")
    wanted = {"summarizer": ("model.summarizer_lora", summarizer_lora), "reward": ("rm.lora", reward_lora)}
    for role in roles:
        setting, lora = wanted[role]
        have = source.lora.get(role)
        if have is None:
            raise WarmStartError(f"init_from={ref} holds no {role} adapter: set init_roles to the roles it has "
                                 f"({', '.join(source.lora) or 'none'}) or init_from=null")
        mine = lora_shape(lora, num_layers)
        for key, field in (("r", "r"), ("alpha", "alpha"), ("target_modules", "target_modules"),
                           ("layers", "top_layers")):
            if have[key] != mine[key]:
                theirs = have[key] if key != "layers" else _top_layers(have[key], num_layers)
                fix = f"{setting}.{field}={_yaml(theirs)}"
                raise WarmStartError(f"init_from={ref}: its {role} adapter has {key}={_yaml(have[key])} but the "
                                     f"recipe's {setting}.{field} gives {_yaml(mine[key])}; set {fix}, or "
                                     "init_from=null to start fresh")


def _top_layers(layers: list[int] | None, num_layers: int) -> int | None:
    return None if layers is None else len(layers)


def _yaml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return "null" if value is None else str(value)


def read_weights(source: WarmStartSource, roles: Sequence[str]) -> dict[str, Any]:
    """The weights of ``roles``: ``{"summarizer": adapter, "reward": adapter, "reward_head": head}`` (those asked)."""
    out: dict[str, Any] = {}
    if source.kind == "run":
        folder = source.path / "checkpoints"  # the best checkpoint, else the latest (as plus export picks)
        best, latest = folder / f"best{SUFFIX}", folder / "latest.json"
        if not best.exists() and not latest.exists():
            raise WarmStartError(f"init_from={source.path}: the run wrote no checkpoint yet")
        path = best if best.exists() else folder / json.loads(latest.read_text(encoding="utf-8"))["checkpoint"]
        state = read_checkpoint(path)
        out.update({role: state[role] for role in roles})
        if "reward" in roles:
            out["reward_head"] = state["reward_head"]
        return out
    for role in roles:
        weights = source.path / role / "adapter_model.safetensors"
        if not weights.exists():
            raise WarmStartError(f"init_from={source.path}: {weights} is missing (export a bundle with plus export)")
        out[role] = load_file(str(weights))
    if "reward" in roles:
        out["reward_head"] = load_file(str(source.path / "reward" / "head.safetensors"))
    return out
