"""Records in JSONL/Arrow, context kinds, and `plus data build|stats` run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plus_sdk.training.data import (
    RecordError,
    apply_context_kind,
    build_pets,
    guideline_for,
    read_arrow,
    read_jsonl,
    read_records,
    write_arrow,
    write_jsonl,
)
from plus_sdk.training.data.stats import dataset_stats, distribution

ATTRIBUTES = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def write_upstream_uf(path: Path, n: int) -> Path:
    """``n`` rows in the openbmb/UltraFeedback layout with varied string ratings."""
    rows = []
    for i in range(n):
        completions = [
            {
                "response": f"Reply {j} to prompt {i}",
                "annotations": {
                    a: {"Rating": str(1 + (i * 7 + j * (k + 1) + k) % 5), "Rationale": "-"}
                    for k, a in enumerate(ATTRIBUTES)
                },
            }
            for j in range(4)
        ]
        rows.append({"instruction": f"Prompt {i}", "completions": completions})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def plus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def small():
    return build_pets(n_train=24, n_test=8, n_context=3, seed=2)


def test_jsonl_and_arrow_round_trip(small, tmp_path):
    records = small["train"]
    write_jsonl(records, tmp_path / "train.jsonl")
    write_arrow(records, tmp_path / "train_arrow")
    assert read_jsonl(tmp_path / "train.jsonl") == records
    assert read_arrow(tmp_path / "train_arrow") == records
    assert read_records(tmp_path / "train_arrow") == read_records(tmp_path / "train.jsonl")
    write_arrow([], tmp_path / "empty")  # an empty split reads back as empty
    assert read_arrow(tmp_path / "empty") == []


def test_bad_rows_name_their_line_or_row(small, tmp_path):
    from datasets import Dataset

    from plus_sdk.training.data.records import to_arrow_row

    lines = [r.model_dump_json() for r in small["test"][:2]]
    broken = json.loads(lines[1])
    broken["prompt"] = ""
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:2"):
        read_jsonl(tmp_path / "bad.jsonl")
    rows = [to_arrow_row(r) for r in small["test"][:3]]
    rows[2]["chosen"] = rows[2]["rejected"]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "bad_arrow"))
    with pytest.raises(RecordError, match="row 3"):
        read_arrow(tmp_path / "bad_arrow")


def test_context_kinds(small):
    records = small["train"][:6]
    conversations = apply_context_kind(records, "conversations")
    for before, after in zip(records, conversations, strict=True):
        assert not after.context.examples and len(after.context.conversations) == 3
        shown = [t.content for c in after.context.conversations for t in c.turns]
        assert shown == [x for e in before.context.examples for x in (e.prompt, e.chosen)]  # chosen only
        assert not {e.rejected for e in before.context.examples} & set(shown)
        assert after.meta["context_kind"] == "conversations" and after.pair == before.pair
    guided = apply_context_kind(records, "guideline")
    assert all(r.context.guidelines == guideline_for("pets") and len(r.context.examples) == 3 for r in guided)
    custom = apply_context_kind(records, "guideline", guideline="Some users like birds.")
    assert custom[0].context.guidelines == "Some users like birds."
    assert "helpfulness" in guideline_for("uf-p2") and "truthfulness" in guideline_for("uf-p4")
    with pytest.raises(ValueError, match="context kind"):
        apply_context_kind(records, "pictures")


def test_distribution():
    assert distribution(list(range(1, 101))) == {"min": 1, "median": 50.5, "p95": 95, "max": 100, "mean": 50.5}


def test_cli_builds_pets_and_reports_stats(tmp_path):
    out = tmp_path / "pets"
    done = plus("data", "build", "pets", "--out", str(out), "--n-train", "40", "--n-test", "20", "--n-context", "4")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sizes"] == {"train": 40, "test": 20}
    train = read_jsonl(out / "train.jsonl")
    assert len(train) == 40 and all(len(r.context.examples) == 4 for r in train)
    assert json.loads((out / "build.json").read_text())["config"]["n_context"] == 4
    stats = plus("data", "stats", str(out), "--json")
    assert stats.returncode == 0, stats.stderr
    info = json.loads(stats.stdout)
    assert info["train"]["rows"] == 40 and info["train"]["users"] == 10
    assert info["train"]["users_per_type"] == {"cat": 5, "dog": 5}
    assert info["train"]["controversial_share"] == 0.5
    tokens = info["train"]["context_tokens"]
    assert 100 < tokens["min"] <= tokens["median"] <= tokens["p95"] <= tokens["max"] < 600
    assert info["train"]["summarizer_prompt_tokens"]["min"] > tokens["min"]
    table = plus("data", "stats", str(out), "--no-tokens")
    assert table.returncode == 0 and "[test] rows 20" in table.stdout


def test_cli_builds_pets_ood_with_dog_cat_training_side(tmp_path):
    out = tmp_path / "pets-ood"
    done = plus("data", "build", "pets-ood", "--out", str(out), "--n-train", "20", "--n-test", "8", "--n-ood", "12",
                "--n-context", "3")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sizes"] == {"train": 20, "test": 8, "ood": 12}
    train, ood = read_jsonl(out / "train.jsonl"), read_jsonl(out / "ood.jsonl")
    assert {r.meta["pair_type"] for r in train} <= {5, 6, 7, 8, 9}  # dog-vs-cat targets only
    assert {r.user_type for r in ood} == {"bird", "rabbit"}


def test_cli_builds_ultrafeedback_conversations_in_arrow(tmp_path):
    source = write_upstream_uf(tmp_path / "uf.jsonl", 80)
    out = tmp_path / "uf"
    done = plus(
        "data",
        "build",
        "uf-p2",
        "--out",
        str(out),
        "--source",
        str(source),
        "--set",
        "pairs=all",
        "--n-context",
        "3",
        "--max-train",
        "30",
        "--context-kind",
        "conversations",
        "--format",
        "arrow",
    )
    assert done.returncode == 0, done.stderr
    train = read_arrow(out / "train")
    assert len(train) == 30
    assert all(not r.context.examples and len(r.context.conversations) == 3 for r in train)
    stats = plus("data", "stats", str(out), "--json", "--no-tokens")
    assert json.loads(stats.stdout)["train"]["context_conversations"]["max"] == 3


def test_cli_errors_are_clear(tmp_path, capsys):
    from plus_sdk.cli import main  # in process: the same code path, without a new interpreter

    def error_of(*args: str) -> str:
        assert main(list(args)) == 2
        return capsys.readouterr().err

    assert "--n-train does not apply to uf-p2" in error_of(
        "data", "build", "uf-p2", "--out", str(tmp_path / "x"), "--n-train", "5"
    )
    assert "survey.jsonl" in error_of("data", "build", "prism", "--out", str(tmp_path / "y"), "--source", str(tmp_path))
    assert "n_pets" in error_of("data", "build", "pets", "--out", str(tmp_path / "z"), "--set", "n_pets=3")
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()
    assert "no train/test/ood split" in error_of("data", "stats", str(tmp_path), "--no-tokens")


def test_dataset_stats_in_process(small, tmp_path):
    write_jsonl(small["test"], tmp_path / "test.jsonl")
    stats = dataset_stats(tmp_path)
    assert list(stats) == ["test"] and stats["test"]["context_pairs"]["max"] == 3
