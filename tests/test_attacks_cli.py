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


MALFORMED_YAML = "steps: 20\ntrain:\n  lr: [3e-4\n  batch: 2\n"  # the list is never closed


@pytest.mark.parametrize("command", [
    ["train", "{config}"],
    ["train-rm", "{config}"],
    ["train-summarizer", "{config}"],
    ["eval-judge", "{config}"],
    ["eval-generate", "{config}"],
    ["data", "build", "pets", "--out", "{out}", "--config", "{config}"],
])
def test_malformed_yaml_exits_2_with_file_line_and_column_on_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    from plus_sdk.cli import main as plus_main

    config = tmp_path / "broken.yaml"
    config.write_text(MALFORMED_YAML, encoding="utf-8")
    args = [word.format(config=config, out=tmp_path / "out") for word in command]
    assert plus_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {config}:") and "invalid YAML" in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    line, column = err.split(f"{config}:", 1)[1].split(":")[:2]
    assert line.isdigit() and column.isdigit() and int(line) >= 3, err
    assert not (tmp_path / "out").exists()


def test_a_malformed_yaml_override_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    from plus_sdk.cli import main as plus_main

    assert plus_main(["train-rm", "steps=[1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: override 'steps=[1'") and "invalid YAML" in err and len(err.splitlines()) == 1


def valid_record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "dataset": "own", "split": "train", "user_id": "u1", "prompt": "Which pet?", "chosen": "A cat.",
        "rejected": "A dog.",
        "context": {"examples": [{"prompt": "Pet?", "chosen": "Cats.", "rejected": "Dogs."}]}}
    record.update(changes)
    return record


def test_data_validate_names_the_field_of_every_problem(tmp_path: Path) -> None:
    from plus_sdk.training.data.records import validate_jsonl

    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join([json.dumps(valid_record()), '{"dataset": "own",', json.dumps(valid_record(
        chosen="Same.", rejected="Same.")), '{"score": NaN}']) + "\n", encoding="utf-8")
    count, problems = validate_jsonl(rows)
    by_line = {p.line: p for p in problems}
    assert count == 4 and sorted(by_line) == [2, 3, 4]
    assert by_line[2].field == "(whole line)" and "not valid JSON" in by_line[2].message
    assert by_line[3].field == "chosen, rejected" and "identical" in by_line[3].message
    assert by_line[4].field == "(whole line)" and "NaN is not a JSON number" in by_line[4].message


def test_data_validate_on_a_binary_file_names_the_file_and_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from plus_sdk.cli import main as plus_main

    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe\n" * 4)
    assert plus_main(["data", "validate", str(binary)]) == 2
    out = capsys.readouterr().out
    assert f"{binary}: line 1, field '(whole line)': not UTF-8 text" in out, out
    assert "codec can't decode" not in out
