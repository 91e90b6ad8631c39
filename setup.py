"""Build hook: ship the trained adapter bundles of ``adapters/`` and the recipes of ``training/``.

Everything else about the package is declared in pyproject.toml. The bundles are copied to
``plus_sdk/_adapters/`` so that ``PersonalizedJudge.from_pretrained()`` finds the trained
default after a plain ``pip install`` of the wheel (``plus_sdk.models.default_bundle_dir``); the
YAML recipes to ``plus_sdk/_recipes/`` so that ``plus train styles`` works without a checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildPyWithAdapters(build_py):
    """The usual build_py, plus a copy of each bundle folder that holds a card.json."""

    def run(self) -> None:
        super().run()
        source = ROOT / "adapters"
        target = Path(self.build_lib) / "plus_sdk" / "_adapters"
        for bundle in sorted(source.glob("*/card.json")):
            shutil.copytree(bundle.parent, target / bundle.parent.name, dirs_exist_ok=True)
        recipes = Path(self.build_lib) / "plus_sdk" / "_recipes"
        for recipe in sorted((ROOT / "training").glob("*/*.yaml")):
            (recipes / recipe.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(recipe, recipes / recipe.parent.name / recipe.name)


setup(cmdclass={"build_py": BuildPyWithAdapters})
