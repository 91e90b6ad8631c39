"""docs/own_users.md runs as written, start to finish: validate -> train (quick settings, then the full
settings shortened) -> export -> load by name -> judge a new pair -> a reward-model run and a supervised
summarizer run -> one bundle of the two, on the example users that ship with the docs.

Every ```bash and ```python block of the page runs in order, in a fresh folder holding a copy of
``docs/examples``, with ``plus`` on PATH, changed only in the ways ``tests/docs_blocks.py`` states
(``rewrite_for_test``): the suite's tiny random model for each training command, so that training
takes seconds, and the hour-long run shortened by the settings its ``docs-test: scaled`` mark names.
No block of the page is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docs_blocks import extract_blocks, free_port, rewrite_for_test
from test_coadapt import tiny_config

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "own_users.md"


def test_the_own_users_page_runs_as_written_from_validation_to_a_judgement(tiny_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    shutil.copytree(REPO / "docs" / "examples", tmp_path / "docs" / "examples")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PLUS_SDK_BUNDLES": str(tmp_path / "ub"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PLUS_SDK_QUIET", None)
    blocks = [b for b in extract_blocks(PAGE.read_text(encoding="utf-8"), PAGE) if b.lang in ("bash", "python")]
    assert not [b.where for b in blocks if b.skip]
    assert [b.lang for b in blocks] == ["bash", "bash", "bash", "bash", "python", "bash", "bash"]
    assert [bool(b.scaled) for b in blocks] == [False, False, True, False, False, False, False]
    outputs = []
    for block in blocks:
        code = rewrite_for_test(block, tiny_model_dir, free_port())
        command = ["bash", "-e", "-c", code] if block.lang == "bash" else [sys.executable, "-c", code]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        print(f"ran {block.where} in {time.perf_counter() - start:.1f} s")
        assert result.returncode == 0, f"{block.where} failed:\n{result.stderr[-4000:]}"
        outputs.append(result)
    validate, train, full, export, judge, warm_runs, warm_export = outputs
    assert validate.stdout.count("ready to train on") == 2
    # the run: a bar over the iterations with the time left, no raw cursor-up escapes, curves in the run folder
    assert re.search(r"co-adapt.*\| 1/2 \[[\d:]+<[\d:]+", train.stderr) and "\x1b[A" not in train.stderr
    assert re.search(r"co-adapt.*\| 1/1 \[", full.stderr)  # the full settings, shortened to one iteration
    run = tmp_path / "runs" / "my-bundle"
    assert (run / "plots" / "curves.png").stat().st_size > 1000
    assert json.loads(export.stdout)["bundle"] == "adapters/my-bundle"
    card = json.loads((tmp_path / "adapters" / "my-bundle" / "card.json").read_text(encoding="utf-8"))
    assert card["trained_on"] == "files docs/examples/my_users/train.jsonl"
    said = [line for line in judge.stderr.splitlines() if "Loaded bundle" in line]
    assert len(said) == 1 and "'my-bundle'" in said[0] and "files docs/examples/my_users/train.jsonl" in said[0]
    choice, probability, *_summary = judge.stdout.split()
    assert choice in ("a", "b", "tie") and 0.0 <= float(probability) <= 1.0
    # the warm bundle: the oracle reward model with the supervised summarizer
    assert (tmp_path / "runs" / "my-summarizer-sft" / "summarizer").is_dir(), warm_runs.stderr[-2000:]
    assert json.loads(warm_export.stdout)["bundle"] == "adapters/my-warm"
    warm = tmp_path / "adapters" / "my-warm"
    assert (warm / "summarizer").is_dir() and (warm / "reward").is_dir()
    assert json.loads((warm / "card.json").read_text(encoding="utf-8"))["trained_on"] == card["trained_on"]


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
