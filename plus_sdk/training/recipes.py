"""Training recipes by name: ``plus train styles`` finds ``training/styles/plus.yaml``.

The YAML recipes under the repository's ``training/`` folder are also copied into the wheel
(``plus_sdk/_recipes/``, by ``setup.py``), so an installed package can train without a checkout.
A name is ``FAMILY`` (its ``plus.yaml``) or ``FAMILY/RECIPE`` (e.g. ``styles/oracle``); a path to
an existing file is used as it is.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

#: where recipes are looked up, in order: the wheel's copy, then a source checkout
RECIPE_ROOTS: tuple[Path, ...] = (
    Path(__file__).resolve().parents[1] / "_recipes",
    Path(__file__).resolve().parents[2] / "training",
)


class UnknownRecipeError(FileNotFoundError):
    """Neither a file nor the name of a shipped recipe."""


def recipe_root() -> Path | None:
    """The folder that holds the shipped recipes, or None when none is installed."""
    return next((root for root in RECIPE_ROOTS if root.is_dir() and any(root.glob("*/*.yaml"))), None)


def shipped_recipes() -> list[str]:
    """Names of every shipped recipe (``family/recipe``; accelerate configs excluded)."""
    root = recipe_root()
    if root is None:
        return []
    return sorted(f"{p.parent.name}/{p.stem}" for p in root.glob("*/*.yaml") if p.parent.name != "accelerate")


def resolve_recipe(name: str | os.PathLike[str]) -> Path:
    """The YAML file ``name`` stands for: an existing path, or a shipped recipe's name."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    root = recipe_root()
    text = str(name).removesuffix(".yaml").removeprefix("training/")
    if root is not None and text:
        for candidate in (root / f"{text}.yaml", root / text / "plus.yaml"):
            if candidate.is_file():
                return candidate
    known = shipped_recipes()
    near = difflib.get_close_matches(text, known + sorted({k.split("/")[0] for k in known}), n=3)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    raise UnknownRecipeError(
        f"recipe {str(name)!r} is neither a file nor a shipped recipe.{hint} Shipped: {', '.join(known) or 'none'}"
    )
