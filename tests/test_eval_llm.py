"""``plus eval-judge`` and ``plus eval-generate``: results, shared option order, resuming."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plus_sdk import prompts
from plus_sdk.backends.base import Messages
from plus_sdk.backends.local import LocalBackend, LocalModel
from plus_sdk.cli import main
from plus_sdk.reward import PersonalizedRewardModel
from plus_sdk.server import ServeConfig, create_app, serve_in_thread
from plus_sdk.summarizer import Summarizer
from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.data.records import write_jsonl
from plus_sdk.training.evaluate_llm import (
    ITEMS_FILE,
    GenerateEvalConfig,
    JudgeEvalConfig,
    chosen_shown_first,
    evaluate_generation,
    evaluate_judge,
)
from plus_sdk.types import SamplingConfig


class FirstOptionJudge:
    """A judge with pure position bias (always Option 1) that records what it was asked."""

    model_id = "first-option"

    def __init__(self) -> None:
        self.seen: list[Messages] = []

    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig) -> list[str]:
        self.seen += messages_batch
        return ["Option 1"] * len(messages_batch)


class Counting:
    """Wraps a real backend and counts the conversations sent to it."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.calls = 0
        self.batch_size = inner.batch_size

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig) -> list[str]:
        self.calls += len(messages_batch)
        return self.inner.chat(messages_batch, sampling)


@pytest.fixture(scope="module")
def pets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pets") / "test.jsonl"
    write_jsonl(build_pets(n_train=0, n_test=8, n_context=2, seed=0)["test"], path)
    return path


@pytest.fixture(scope="module")
def tiny_summarizer(tiny_model_dir: Path) -> Summarizer:
    backend = LocalBackend(LocalModel.load(str(tiny_model_dir)))
    return Summarizer(backend, task="pets", sampling=SamplingConfig(max_new_tokens=6))


def option_pairs(messages: list[Messages]) -> list[str]:
    return [m[-1]["content"].split("Option 1:")[1] for m in messages]


def test_eval_judge_shares_order_and_resumes(pets_file: Path, tiny_summarizer: Summarizer, tmp_path: Path) -> None:
    out = tmp_path / "judge"
    config = JudgeEvalConfig(data=str(pets_file), out=str(out), limit=4, batch_size=2, seed=1)
    judge = FirstOptionJudge()
    first = evaluate_judge(config, backend=judge, summarizer=tiny_summarizer)
    assert len(judge.seen) == 8  # 4 items x (with, without)
    with_summary = [m for m in judge.seen if "preferences:" in m[0]["content"]]
    without = [m for m in judge.seen if "preferences:" not in m[0]["content"]]
    assert option_pairs(with_summary) == option_pairs(without)  # same order in both conditions

    rows = [json.loads(line) for line in (out / ITEMS_FILE).read_text().splitlines()]
    assert [r["chosen_first"] for r in rows] == [chosen_shown_first(1, r["key"]) for r in rows]
    share_first = sum(r["chosen_first"] for r in rows) / 4
    metrics = first["metrics"]["all"]
    assert metrics["n"] == 4
    assert metrics["with_summary"]["accuracy"] == metrics["without_summary"]["accuracy"] == share_first
    assert metrics["with_summary"]["option_1_rate"] == 1.0

    more = FirstOptionJudge()  # a rerun with a larger limit only does the new items
    second = evaluate_judge(config.model_copy(update={"limit": 8}), backend=more, summarizer=tiny_summarizer)
    assert len(more.seen) == 8 and second["metrics"]["all"]["n"] == 8
    keys = [json.loads(line)["key"] for line in (out / ITEMS_FILE).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 8

    with (out / ITEMS_FILE).open("a") as handle:  # a crash mid-write leaves a torn line
        handle.write('{"key": "0000')
    idle = FirstOptionJudge()
    third = evaluate_judge(config.model_copy(update={"limit": 8}), backend=idle, summarizer=tiny_summarizer)
    assert idle.seen == [] and third["metrics"] == second["metrics"]
    assert json.loads((out / "results.json").read_text())["metrics"] == third["metrics"]
    assert "| all | 8 |" in (out / "results.md").read_text()


def test_eval_generate_scores_with_the_oracle_and_resumes(pets_file: Path, tiny_summarizer: Summarizer,
                                                          tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    config = GenerateEvalConfig(data=str(pets_file), out=str(out), limit=3, batch_size=2, max_words=6,
                                max_new_tokens=12)
    reward_model = PersonalizedRewardModel.from_pretrained(str(tiny_model_dir))
    generator = Counting(LocalBackend(LocalModel.load(str(tiny_model_dir))))
    results = evaluate_generation(config, backend=generator, summarizer=tiny_summarizer, reward_model=reward_model)
    rows = [json.loads(line) for line in (out / ITEMS_FILE).read_text().splitlines()]
    assert generator.calls == 2 * len(rows) > 0  # each distinct (user, prompt): personalized + default
    records = {r.user_id + r.prompt: r for r in _records(pets_file)}
    for row in rows:
        record = records[row["user_id"] + row["prompt"]]
        condition = prompts.oracle_condition(record.oracle)
        expected = reward_model.score_ids([reward_model.encode(row["prompt"], row["personalized"] or " ",
                                                               condition)])[0].item()
        assert row["reward_personalized"] == pytest.approx(expected, abs=1e-4)
        assert row["win"] in (0.0, 0.5, 1.0) and len(row["personalized"].split()) <= 6
    assert results["metrics"]["n"] == len(rows)
    assert results["metrics"]["win_rate"] == pytest.approx(sum(r["win"] for r in rows) / len(rows), abs=1e-4)

    again = Counting(generator.inner)
    rerun = evaluate_generation(config, backend=again, summarizer=tiny_summarizer, reward_model=reward_model)
    assert again.calls == 0 and rerun["metrics"] == results["metrics"]
    assert (out / "results.md").exists()


def _records(path: Path) -> list:
    from plus_sdk.training.data.records import read_jsonl

    return read_jsonl(path)


@pytest.fixture(scope="module")
def server_url(tiny_model_dir: Path) -> Iterator[str]:
    with serve_in_thread(create_app(ServeConfig(model=str(tiny_model_dir), served_model_name="tiny"))) as url:
        yield f"{url}/v1"


def test_eval_judge_cli_against_plus_serve(pets_file: Path, tiny_model_dir: Path, server_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["eval-judge", "--json", f"data={pets_file}", f"out={out}", "backend=openai", "model=tiny",
                 f"base_url={server_url}", f"summarizer={tiny_model_dir}", "limit=2", "batch_size=2",
                 "max_new_tokens=4"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["judge"] == f"openai:tiny@{server_url}"
    assert printed["usage"]["requests"] == 4  # 2 items x 2 conditions
    assert (out / "results.json").exists()


def test_eval_config_errors_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval-judge", f"data={tmp_path / 'x.jsonl'}"]) == 2
    assert "out" in capsys.readouterr().err


def test_eval_judge_with_oracle_descriptions(pets_file: Path, tmp_path: Path) -> None:
    judge = FirstOptionJudge()
    config = JudgeEvalConfig(data=str(pets_file), out=str(tmp_path / "oracle"), limit=2, summary_source="oracle")
    results = evaluate_judge(config, backend=judge)  # no summarizer is built for oracle texts
    oracles = {r.oracle for r in _records(pets_file)[:2]}
    shown = {m[0]["content"].split("preferences: ")[1] for m in judge.seen if "preferences: " in m[0]["content"]}
    assert shown == oracles and results["metrics"]["all"]["n"] == 2
