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
    assert (2, "chosen") in where and (3, "(whole line)") in where and (4, "split") in where
    assert (4, "prompt") in where and (6, "(whole line)") in where and not any(p.line in (1, 5) for p in problems)


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


def _rm_run(tiny: Path, run_dir: Path, method: str, **extra: object) -> Path:
    from plus_sdk.training.config import dump_config
    from plus_sdk.training.rm.run import RMRunConfig, train_rm

    config = RMRunConfig(method=method, base=str(tiny), device="cpu", dtype="float32", steps=2, eval_every=2,
                         eval_rows=4, progress=False, run_dir=str(run_dir),
                         data={"dataset": "pets", "n_train": 8, "n_test": 4, "n_ood": 0, "n_context": 2},
                         train={"lr": 1e-3, "batch_size": 2, "lora": {"r": 4, "alpha": 8}}, **extra)
    train_rm(config)
    dump_config(config, run_dir / "config.yaml")
    return run_dir


def test_a_summary_conditioned_train_rm_run_exports_to_a_bundle_the_judge_loads(tiny_model_dir: Path,
                                                                                tmp_path: Path) -> None:
    from plus_sdk import PersonalizedJudge
    from plus_sdk.bundle import read_card

    run_dir = _rm_run(tiny_model_dir, tmp_path / "oracle", "oracle", oracle_as_summary=True)
    result = _plus("export", str(run_dir), str(tmp_path / "bundle"))
    assert result.returncode == 0, result.stderr
    card = read_card(tmp_path / "bundle")
    assert card.method == "summary" and card.config["run_kind"] == "train-rm"
    assert (tmp_path / "bundle" / "reward" / "head.safetensors").exists()
    assert not (tmp_path / "bundle" / "summarizer").exists()  # summaries come from the base summarizer
    judge = PersonalizedJudge.from_pretrained(str(tmp_path / "bundle"))
    pref = judge.prefer("The user prefers cats.", "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert pref.choice in ("a", "b")


def test_an_oracle_run_exports_with_a_supervised_summarizer_the_judge_then_uses(tiny_model_dir: Path,
                                                                                tmp_path: Path) -> None:
    from plus_sdk import PersonalizedJudge
    from plus_sdk.training.sft import SFTConfig, train_summarizer

    run_dir = _rm_run(tiny_model_dir, tmp_path / "oracle", "oracle", oracle_as_summary=True)
    train_summarizer(SFTConfig(run_dir=str(tmp_path / "sft"), base=str(tiny_model_dir), steps=1, batch_size=2,
                               data={"dataset": "pets", "n_train": 4, "n_test": 2, "n_context": 2}))
    result = _plus("export", str(run_dir), str(tmp_path / "bundle"), "--summarizer", str(tmp_path / "sft"))
    assert result.returncode == 0, result.stderr
    shipped = tmp_path / "bundle" / "summarizer" / "adapter_model.safetensors"
    assert shipped.read_bytes() == (tmp_path / "sft" / "summarizer" / "adapter_model.safetensors").read_bytes()
    judge = PersonalizedJudge.from_pretrained(str(tmp_path / "bundle"))
    assert judge.summarizer.backend.model.adapter == "summarizer"  # the shipped adapter, not the bare base

    wrong = _plus("export", str(run_dir), str(tmp_path / "other"), "--summarizer", str(tmp_path / "oracle"))
    assert wrong.returncode == 2 and "--summarizer" in wrong.stderr and "Traceback" not in wrong.stderr
    assert not (tmp_path / "other").exists()


def test_exporting_a_reward_model_that_reads_no_summary_names_the_command_to_use(tiny_model_dir: Path,
                                                                                 tmp_path: Path) -> None:
    run_dir = _rm_run(tiny_model_dir, tmp_path / "btl", "btl")
    result = _plus("export", str(run_dir), str(tmp_path / "bundle"))
    assert result.returncode == 2 and "plus eval --run" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bundle").exists()


def test_loading_a_bundle_says_once_on_stderr_what_users_it_was_trained_for_unless_quiet(
        tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from plus_sdk import PersonalizedJudge

    run_dir = _rm_run(tiny_model_dir, tmp_path / "oracle", "oracle", oracle_as_summary=True)
    assert _plus("export", str(run_dir), str(tmp_path / "narrow")).returncode == 0
    with caplog.at_level(logging.INFO, logger="plus_sdk.loaded"):
        PersonalizedJudge.from_pretrained(str(tmp_path / "narrow"))
    lines = [r.getMessage() for r in caplog.records if r.name == "plus_sdk.loaded"]
    assert len(lines) == 1 and "Loaded bundle 'narrow'" in lines[0] and "trained for users of pets" in lines[0]

    # a plain script with no logging set up: the one line shows on stderr by default
    script = f"from plus_sdk import PersonalizedJudge; PersonalizedJudge.from_pretrained({str(tmp_path / 'narrow')!r}"
    plain = subprocess.run([sys.executable, "-c", script + ")"], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    said = [line for line in plain.stderr.splitlines() if "Loaded bundle" in line]
    assert len(said) == 1 and "trained for users of pets" in said[0]
    quiet = subprocess.run([sys.executable, "-c", script + ", quiet=True)"], capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0 and "Loaded bundle" not in quiet.stderr
    import os

    env_quiet = subprocess.run([sys.executable, "-c", script + ")"], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PLUS_SDK_QUIET": "1"})
    assert env_quiet.returncode == 0 and "Loaded bundle" not in env_quiet.stderr


def test_data_dataset_jsonl_is_read_as_files_with_a_warning_naming_the_one_spelling(
        caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from plus_sdk.training.config import load_config
    from plus_sdk.training.ppo.coadapt_config import CoadaptConfig

    with caplog.at_level(logging.WARNING):
        config = load_config(CoadaptConfig, None, ["data.dataset=jsonl", "data.train_path=a.jsonl"])
    assert config.data.dataset == "files"
    assert any("write files" in r.getMessage() for r in caplog.records)
