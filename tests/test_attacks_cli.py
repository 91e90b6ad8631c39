"""Attack tour, items 5, 6 and 8: bad input to the CLI and the loaders gives one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plus_sdk.models import ModelNotFoundError, check_adapter_folder, check_hub_name
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import AdapterCard


def plus(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def assert_clean_failure(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "errors.pydantic.dev" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr


def test_judge_validates_its_input_before_loading_any_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    # the model path is bad too: the context must be reported first, so no model was looked up
    assert_clean_failure(plus("judge", "--model", "/missing", "--context", str(bad), "--prompt", "p", "-a", "x",
                              "-b", "y"), "is not valid JSON")
    assert_clean_failure(plus("judge", "--model", "/missing", "--summary", "s", "--prompt", "p", "-a", "same",
                              "-b", "same"), "identical")
    assert_clean_failure(plus("judge", "--model", "/missing", "--summary", "", "--prompt", "p", "-a", "x",
                              "-b", "y"), "--summary is empty")


def test_an_invalid_context_is_one_readable_line_per_field(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"examples": [{"prompt": "p", "chosen": 3}], "colour": "red"}), encoding="utf-8")
    result = plus("judge", "--model", "/missing", "--context", str(wrong), "--prompt", "p", "-a", "x", "-b", "y")
    assert_clean_failure(result, "examples.0.chosen:")
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert any(line.strip().startswith("examples.0.rejected:") for line in lines)
    assert all(":" in line for line in lines) and len(lines) >= 3


def test_judge_with_a_missing_model_names_the_path() -> None:
    assert_clean_failure(plus("judge", "--model", "/missing/model", "--summary", "s", "--prompt", "p", "-a", "x",
                              "-b", "y"), "/missing/model does not exist")


def test_serve_with_a_folder_or_a_non_database_store_is_a_clean_error(tmp_path: Path) -> None:
    assert_clean_failure(plus("serve", "--store", str(tmp_path)), "is a folder")
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, not a database\n" * 10, encoding="utf-8")
    assert_clean_failure(plus("serve", "--store", str(junk)), "is not a SQLite database")


def test_summaries_revert_with_a_huge_version_is_a_clean_error(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite3")
    assert plus("summaries", "edit", "alice", "likes cats", "--store", db).returncode == 0
    assert_clean_failure(plus("summaries", "revert", "alice", str(10**23), "--store", db), "has no version")


def test_from_pretrained_on_a_missing_path_a_file_or_nothing_names_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Summarizer.from_pretrained(str(tmp_path / "nowhere" / "model"))
    plain = tmp_path / "weights.bin"
    plain.write_bytes(b"0" * 10)
    with pytest.raises(ModelNotFoundError, match="is a file, not a model folder"):
        Summarizer.from_pretrained(str(plain))
    with pytest.raises(ModelNotFoundError, match="model name is empty"):
        Summarizer.from_pretrained("")


def test_malformed_adapter_config_names_the_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(ValueError, match=r"adapter_config\.json is not valid JSON"):
        check_adapter_folder(adapter)
    with pytest.raises(ValueError, match=str(adapter / "adapter_config.json")):
        Summarizer.from_pretrained(tiny_model_dir, adapter)


def test_an_unknown_bundle_name_offline_lists_the_shipped_ones_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        Summarizer.from_pretrained("pets-smolm2")
    assert time.perf_counter() - start < 2.0
    assert "Nearest bundle names: pets-smollm2" in str(info.value) and "Known bundles" in str(info.value)


def test_a_card_naming_a_hub_base_fails_at_once_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    card = AdapterCard(name="b", base_model="some-org/not-cached-model", prompt_version="1")
    (bundle / "card.json").write_text(card.model_dump_json(), encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=r"some-org/not-cached-model.*offline"):
        Summarizer.from_pretrained(bundle)
    assert time.perf_counter() - start < 2.0


def test_hub_names_pass_when_online_and_paths_never_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert check_hub_name("some-org/some-model") == "some-org/some-model"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        check_hub_name("./relative/missing")


def test_prefer_batch_with_a_three_tuple_is_a_type_error(tiny_model_dir: Path) -> None:
    from plus_sdk.judge import PersonalizedJudge

    judge = PersonalizedJudge.from_pretrained(tiny_model_dir)
    with pytest.raises(TypeError, match=r"items\[0\] must be a 4-tuple.*got 3 values"):
        judge.prefer_batch([("likes cats", "A pet?", "Cats.")])  # type: ignore[list-item]
