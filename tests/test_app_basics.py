"""What an app developer trips on: ties, quiet loads, --version, the access log, one config spelling, umask."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from peft import LoraConfig

from plus_sdk import PersonalizedJudge, PersonalizedRewardModel, Summarizer, __version__
from plus_sdk.backends.local import LocalBackend, LocalModel, SharedBase
from plus_sdk.backends.openai import OpenAIBackend
from plus_sdk.cli import build_parser, main
from plus_sdk.cli.config_arg import split_config
from plus_sdk.files import atomic_write_text, staged_dir, umask_mode
from plus_sdk.reward import RewardHead
from plus_sdk.server.access_log import access_line
from plus_sdk.server.spawn import spawned_server
from plus_sdk.types import Preference, choice_for

TOKEN = "secret-token-456"
NOISE = ("is_gradient_checkpointing", "Loading weights", "which is now deleted")


# ---------------------------------------------------------------------------------------
# Ties
# ---------------------------------------------------------------------------------------


def test_choice_for_is_a_tie_only_at_exactly_one_half() -> None:
    assert [choice_for(p) for p in (0.0, 0.49, 0.5, 0.51, 1.0)] == ["b", "b", "tie", "a", "a"]


def test_a_tie_has_confidence_one_half_and_round_trips() -> None:
    tie = Preference(choice="tie", probability=0.5)
    assert tie.confidence == 0.5
    assert Preference.model_validate_json(tie.model_dump_json()).choice == "tie"


def test_a_debiased_llm_judge_that_answers_both_orders_the_same_way_is_a_tie() -> None:
    unused = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", api_key="unused")  # the answers are given below
    judge = PersonalizedJudge(backend=unused, debias=True)
    items = [("likes cats", "Pet?", "Cats.", "Dogs.")]
    _, a_first = judge.llm_conversations(items, [None])
    split = judge.read_llm_answers(items, [None], a_first, ["Option 1", "Option 1"])  # position bias only
    agree = judge.read_llm_answers(items, [None], a_first, ["Option 1", "Option 2"])  # a, both times
    assert split[0].choice == "tie" and split[0].probability == 0.5
    assert agree[0].choice == "a" and agree[0].probability == 1.0


# ---------------------------------------------------------------------------------------
# Quiet loads, --version, -v
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle with summarizer and reward LoRA adapters: the load that used to be noisy."""
    base = SharedBase.load(str(tiny_model_dir), share=False)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    base.add_new_adapter("summarizer", lora)
    base.add_new_adapter("reward", lora)
    summarizer = Summarizer(LocalBackend(LocalModel(base, "summarizer")))
    reward = PersonalizedRewardModel(LocalModel(base, "reward"), RewardHead(base.model.config.hidden_size))
    folder = tmp_path_factory.mktemp("bundle") / "b"
    PersonalizedJudge(reward, summarizer).save_pretrained(folder)
    return folder


def run_plus(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # every warning would print once
    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_a_model_load_prints_no_known_noise_and_verbose_brings_it_back(bundle: Path) -> None:
    judge_args = ["judge", "--model", str(bundle), "--summary", "likes cats", "--prompt", "Pet?", "-a", "Cat.",
                  "-b", "Dog."]
    quiet = run_plus(*judge_args)
    assert quiet.returncode == 0, quiet.stderr
    assert Preference.model_validate_json(quiet.stdout).choice in ("a", "b", "tie")
    for phrase in NOISE:
        assert phrase not in quiet.stderr, quiet.stderr
    loud = run_plus("-v", *judge_args)
    assert loud.returncode == 0, loud.stderr
    assert "is_gradient_checkpointing" in loud.stderr and "Loading weights" in loud.stderr


def test_plus_version_prints_the_package_version() -> None:
    result = run_plus("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"plus-sdk {__version__}"


# ---------------------------------------------------------------------------------------
# One spelling of the config argument
# ---------------------------------------------------------------------------------------


def parsed(*argv: str) -> tuple[str | None, list[str]]:
    args = build_parser().parse_args(list(argv))
    split_config(args)
    return args.config, args.overrides


@pytest.mark.parametrize("command", ["train-rm", "eval-judge", "eval-generate"])
def test_config_is_positional_and_the_option_still_works(command: str, caplog: pytest.LogCaptureFixture) -> None:
    assert parsed(command, "r.yaml", "steps=2") == ("r.yaml", ["steps=2"])
    assert parsed(command, "steps=2") == (None, ["steps=2"])
    assert parsed(command, "--config", "r.yaml", "steps=2") == ("r.yaml", ["steps=2"])
    assert "--config is deprecated" in caplog.text


def test_plus_train_takes_the_same_positional_form() -> None:
    args = build_parser().parse_args(["train", "r.yaml", "iterations=2"])
    assert (args.config, args.overrides) == ("r.yaml", ["iterations=2"])


def test_a_config_given_twice_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-rm", "a.yaml", "--config", "b.yaml"]) == 2
    assert "given twice" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Files follow the user's umask
# ---------------------------------------------------------------------------------------


@pytest.fixture()
def umask_022() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_and_staged_folders_follow_the_umask(tmp_path: Path, umask_022: object) -> None:
    assert umask_mode() == 0o644 and umask_mode(directory=True) == 0o755
    atomic_write_text(tmp_path / "card.json", "{}")
    with staged_dir(tmp_path / "bundle") as staging:
        (staging / "x").write_text("1")
    assert mode(tmp_path / "card.json") == 0o644 and mode(tmp_path / "bundle") == 0o755
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.json", "{}")
    assert mode(tmp_path / "private.json") == 0o600


def test_store_exports_follow_the_umask(tmp_path: Path, umask_022: object) -> None:
    from plus_sdk.store import SummaryStore

    store = SummaryStore(tmp_path / "s.db")
    store.put("u1", "Likes cats.")
    store.export_jsonl(tmp_path / "export.jsonl")
    assert mode(tmp_path / "export.jsonl") == 0o644


# ---------------------------------------------------------------------------------------
# plus serve: access log, coalesced async routes, ties over HTTP
# ---------------------------------------------------------------------------------------


def test_access_line_format() -> None:
    assert access_line("POST", "/v1/judge", 200, 12.345) == "POST /v1/judge 200 12.3ms user=-"
    assert access_line("GET", "/health", 404, 1.0, "u7") == "GET /health 404 1.0ms user=u7"


def test_plus_serve_logs_requests_without_bodies_or_keys_and_coalesces(tiny_model_dir: Path) -> None:
    secret_prompt = "MY-PRIVATE-QUESTION"
    flags = ["--model", str(tiny_model_dir), "--served-model-name", "tiny", "--coalesce-window-ms", "50"]
    with spawned_server(flags, env={"PLUS_SERVE_TOKEN": TOKEN}) as (url, process):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/v1/models?token={TOKEN}", timeout=10).status_code == 401

        async def judge_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=120, headers=auth) as client:
                body = {"summary": "likes cats", "prompt": secret_prompt, "a": "Cat.", "b": "Dog."}
                return list(await asyncio.gather(*(
                    client.post(f"{url}/v1/judge", json={**body, "a": f"Cat {i}."}) for i in range(8))))

        responses = asyncio.run(judge_all())
        assert [r.status_code for r in responses] == [200] * 8
        for response in responses:
            pref = Preference.model_validate(response.json())
            assert pref.choice == choice_for(pref.probability)  # a split vote is reported as a tie
    log = process.output  # type: ignore[attr-defined]
    assert "GET /health 200" in log and "GET /v1/models 401" in log
    assert log.count("POST /v1/judge 200") == 8
    assert TOKEN not in log and secret_prompt not in log and "Cat 3." not in log
