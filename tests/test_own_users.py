"""The path a newcomer walks to train on their own users: validate a file, find a recipe by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plus_sdk.training.data.records import validate_jsonl
from plus_sdk.training.recipes import UnknownRecipeError, resolve_recipe, shipped_recipes

GOOD = {"dataset": "mine", "split": "train", "user_id": "u1",
        "context": {"examples": [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}]},
        "prompt": "How are you?", "chosen": "Fine, thanks.", "rejected": "Why do you care?"}


def _plus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True, timeout=120)


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_validate_reports_every_bad_row_with_its_line_and_field(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "chosen": ""}, "{not json", {**GOOD, "split": "dev", "prompt": ""}, GOOD, [1, 2]]
    count, problems = validate_jsonl(_write(tmp_path / "mine.jsonl", rows))
    assert count == 6
    where = {(p.line, p.field) for p in problems}
    assert (2, "chosen") in where and (3, "") in where and (4, "split") in where and (4, "prompt") in where
    assert (6, "") in where and not any(p.line in (1, 5) for p in problems)


def test_plus_data_validate_lists_the_problems_and_exits_2_only_when_a_row_is_bad(tmp_path: Path) -> None:
    bad = _plus("data", "validate", str(_write(tmp_path / "bad.jsonl", [GOOD, {**GOOD, "user_id": ""}])))
    assert bad.returncode == 2
    assert "line 2, field 'user_id'" in bad.stdout and "2 rows, 1 bad" in bad.stdout
    good = _plus("data", "validate", str(_write(tmp_path / "good.jsonl", [GOOD, GOOD])))
    assert good.returncode == 0 and "2 rows, 0 bad - ready to train on" in good.stdout


def test_recipes_are_found_by_name_and_a_typo_lists_the_nearest() -> None:
    assert resolve_recipe("styles").parts[-2:] == ("styles", "plus.yaml")
    assert resolve_recipe("styles/oracle").name == "oracle.yaml"
    assert "styles/plus" in shipped_recipes() and "pets/plus" in shipped_recipes()
    with pytest.raises(UnknownRecipeError, match="Did you mean: styles"):
        resolve_recipe("stlyes")


def test_plus_train_names_an_unknown_recipe_in_one_line_and_exits_2() -> None:
    result = _plus("train", "stlyes")
    assert result.returncode == 2 and "Did you mean: styles" in result.stderr and "Traceback" not in result.stderr
