"""docs/own_users.md runs as written, start to finish: validate -> train (quick settings) -> export ->
load by name -> judge a new pair, on the example users that ship with the docs.

Every ```bash and ```python block of the page runs in order, in a fresh folder holding a copy of
``docs/examples``, with ``plus`` on PATH. One change, stated in the page: each ``plus train`` line
gets ``model.summarizer_base=<the suite's tiny random model>`` so that training takes seconds.
Blocks marked ``<!-- docs-test: skip (why) -->`` (the hour-long full settings) are left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_coadapt import tiny_config

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "own_users.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->\s*$")


def page_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, code, line) of the page's bash and python blocks not marked skip, in order."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if not SKIP.search(before):
            blocks.append((match.group(1), match.group(2), text.count("\n", 0, match.start()) + 1))
    return blocks


def on_tiny_model(script: str, tiny: Path) -> str:
    """The shell script with ``model.summarizer_base=TINY`` added to each ``plus train`` command."""
    joined = script.replace("\\\n", " ")
    return re.sub(r"^(\s*plus train .*?)\s*$", rf"\1 model.summarizer_base={tiny}", joined, flags=re.M)


def test_the_own_users_page_runs_as_written_from_validation_to_a_judgement(tiny_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    shutil.copytree(REPO / "docs" / "examples", tmp_path / "docs" / "examples")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PLUS_SDK_BUNDLES": str(tmp_path / "ub"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PLUS_SDK_QUIET", None)
    blocks = page_blocks(PAGE.read_text(encoding="utf-8"))
    assert [lang for lang, _, _ in blocks] == ["bash", "bash", "bash", "python"]
    outputs = []
    for lang, code, line in blocks:
        command = (["bash", "-e", "-c", on_tiny_model(code, tiny_model_dir)] if lang == "bash"
                   else [sys.executable, "-c", code])
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"docs/own_users.md:{line} failed:\n{result.stderr[-4000:]}"
        outputs.append(result)
    validate, train, export, judge = outputs
    assert validate.stdout.count("ready to train on") == 2
    # the run: a bar over the iterations with the time left, no raw cursor-up escapes, curves in the run folder
    assert re.search(r"co-adapt.*\| 1/2 \[[\d:]+<[\d:]+", train.stderr) and "\x1b[A" not in train.stderr
    run = tmp_path / "runs" / "my-bundle"
    assert (run / "plots" / "curves.png").stat().st_size > 1000
    assert json.loads(export.stdout)["bundle"] == "adapters/my-bundle"
    card = json.loads((tmp_path / "adapters" / "my-bundle" / "card.json").read_text(encoding="utf-8"))
    assert card["trained_on"] == "files docs/examples/my_users/train.jsonl"
    said = [line for line in judge.stderr.splitlines() if "Loaded bundle" in line]
    assert len(said) == 1 and "'my-bundle'" in said[0] and "files docs/examples/my_users/train.jsonl" in said[0]
    choice, probability, *_summary = judge.stdout.split()
    assert choice in ("a", "b", "tie") and 0.0 <= float(probability) <= 1.0


def test_each_evaluation_point_is_evaluated_once(tiny_model_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from plus_sdk.training.ppo.coadapt import CoAdaptation, CoadaptConfig

    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run", **{"eval.every": 2}))
    run = CoAdaptation(config)
    evaluated: list[int] = []
    real = run.evaluate

    def counting(records: object, prefix: str) -> object:
        if prefix == "test":
            evaluated.append(run.iteration)
        return real(records, prefix)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "evaluate", counting)
    final = run.train()
    assert evaluated == [0, 2]  # before training, then iteration 2; the final evaluation reuses it
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    at_two = next(r for r in rows if r["phase"] == "train" and r["iteration"] == 2)
    assert final["test_accuracy"] == at_two["test_accuracy"] and rows[-1]["phase"] == "final"
    assert (tmp_path / "run" / "plots" / "curves.png").exists()
