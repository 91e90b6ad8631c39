"""The `plus` command and the real default model end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plus_sdk import PersonalizedJudge, Preference, UserContext


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True, timeout=600)


def test_import_is_light() -> None:
    code = "import plus_sdk, sys; bad = [m for m in ('vllm', 'openai', 'deepspeed') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_judge_prints_a_valid_preference(tiny_model_dir: Path, tmp_path: Path, cat_context: UserContext) -> None:
    user = tmp_path / "user.json"
    user.write_text(cat_context.model_dump_json())
    result = _run("judge", "--model", str(tiny_model_dir), "--context", str(user), "--prompt", "Talk about a pet.",
                  "-a", "Cats purr.", "-b", "Dogs bark.")
    assert result.returncode == 0, result.stderr
    pref = Preference.model_validate_json(result.stdout)
    assert pref.choice in ("a", "b") and pref.summary is not None


def test_cli_bad_context_names_the_problem(tiny_model_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"examples": [{"prompt": "p", "chosen": "x", "rejected": "x"}]}))
    result = _run("judge", "--model", str(tiny_model_dir), "--context", str(user),
                  "--prompt", "Q", "-a", "1", "-b", "2")
    assert result.returncode != 0 and "identical" in result.stderr
    missing = _run("summarize", "--model", str(tiny_model_dir), "--context", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr


@pytest.mark.default_model
def test_default_model_end_to_end(cat_context: UserContext) -> None:
    judge = PersonalizedJudge.from_pretrained()
    pref = judge.prefer(cat_context, "Talk about a pet.", "Cats purr when happy.", "Dogs wag their tails.")
    assert pref.summary is not None and len(pref.summary.text.split()) >= 3
    again = judge.prefer(cat_context, "Talk about a pet.", "Cats purr when happy.", "Dogs wag their tails.")
    assert again.summary == pref.summary and again.probability == pytest.approx(pref.probability, abs=1e-6)


@pytest.mark.default_model
def test_demo_runs(tmp_path: Path) -> None:
    result = _run("demo", "--json", str(tmp_path / "demo.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "demo.json").read_text())
    assert len(report["items"]) >= 12 and "summary" in result.stdout
    assert len({item["user"] for item in report["items"]}) >= 6
    # the truth sits next to every judgement, and the run ends on the accuracy line
    marks = result.stdout.count("✓") + result.stdout.count("✗")
    assert marks == len(report["items"]) and report["correct"] == sum(i["correct"] for i in report["items"])
    assert f"Accuracy: {report['correct']}/{len(report['items'])}" in result.stdout.strip().splitlines()[-1]
    # the encoder-path default reads style users too (12 / 16 when shipped; the pets-only default got 7)
    assert report["correct"] >= 11, report["correct"]


@pytest.mark.default_model
def test_no_demo_user_gets_a_template_placeholder_as_summary() -> None:
    from importlib import resources

    from plus_sdk.prompts import EMPTY_SUMMARY, is_placeholder

    users = json.loads(resources.files("plus_sdk.data").joinpath("demo_users.json").read_text(encoding="utf-8"))
    judge = PersonalizedJudge.from_pretrained()
    for user in users["users"]:
        summary = judge.summary_for(UserContext.model_validate(user["context"]))
        assert summary is not None and not is_placeholder(summary.text), (user["name"], summary)
        assert summary.text == EMPTY_SUMMARY or len(summary.text.split()) >= 3


@pytest.mark.default_model
def test_shipped_pets_ood_bundle_loads_by_name_and_follows_a_rabbit_user() -> None:
    from plus_sdk.bundle import find_bundle
    from plus_sdk.training.data.pets import build_pets_ood

    assert find_bundle("pets-ood-smollm2") is not None and find_bundle("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    judge = PersonalizedJudge.from_pretrained("pets-ood-smollm2")
    rabbit_users = [r for r in build_pets_ood(n_test=8, n_context=3, seed=0) if r.user_type == "rabbit"]
    # a user who keeps choosing rabbits over birds: every trained user would pick the bird
    for record in rabbit_users[:2]:
        pref = judge.prefer(record.context, record.prompt, record.chosen, record.rejected)
        assert pref.choice == "a", (pref.summary, pref.probability)


@pytest.mark.default_model
def test_plus_serve_with_no_model_or_bundle_judges_with_the_default_bundle(cat_context: UserContext) -> None:
    from plus_sdk.server.app import ServeConfig, Services  # optional: the server extra

    services = Services(ServeConfig())
    default = PersonalizedJudge.from_pretrained(quiet=True)
    assert services.judge.trained and services.summarizer is services.judge.summarizer
    assert services.judge.reward_model is not None and default.reward_model is not None
    assert services.judge.reward_model.card == default.reward_model.card
    served = services.judge.prefer(cat_context, "Talk about a pet.", "Cats purr when happy.", "Dogs wag their tails.")
    local = default.prefer(cat_context, "Talk about a pet.", "Cats purr when happy.", "Dogs wag their tails.")
    assert served.choice == local.choice and served.probability == pytest.approx(local.probability, abs=1e-5)
