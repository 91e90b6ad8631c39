"""``plus train general`` end to end on small data: the encoder-path reward model, the context reader's
two stages, the evaluation, and a bundle that ``PersonalizedJudge.from_pretrained`` loads and uses.

The encoder is the real all-MiniLM-L6-v2; the summarizer LM is the suite's tiny random Llama, so
the summaries are noise: this checks the plumbing and the files, not the quality (benchmarks do that).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from plus_sdk import PersonalizedJudge, PreferenceExample, Summary, UserContext
from plus_sdk.cli import main
from plus_sdk.context_reader import READER_SPEC
from plus_sdk.encoder_reward import SPEC_FILE


def test_plus_train_general_writes_a_bundle_with_both_roles_a_card_and_curves(general_run: Path) -> None:
    bundle = general_run / "bundle"
    assert (bundle / "reward" / SPEC_FILE).is_file()
    assert (bundle / "summarizer" / READER_SPEC).is_file()
    assert (bundle / "summarizer" / "adapter_model.safetensors").is_file()
    card = json.loads((bundle / "card.json").read_text(encoding="utf-8"))
    assert card["config"]["kind"] == "encoder" and card["trained"]
    assert "test_plus_accuracy" in card["metrics"] and "test_oracle_heldout_accuracy" in card["metrics"]
    results = json.loads((general_run / "results.json").read_text(encoding="utf-8"))
    assert set(results["seconds"]) == {"reward_model", "summarizer", "evaluation", "total"}
    assert 0.0 <= results["test_named"]["named_share"] <= 1.0
    stages = {json.loads(line).get("stage") for line in (general_run / "metrics.jsonl").read_text().splitlines()}
    assert {"reward", "regress", "decode"} <= stages
    assert (general_run / "plots" / "curves.png").is_file()


def test_the_general_bundle_judges_through_the_public_api(general_run: Path) -> None:
    judge = PersonalizedJudge.from_pretrained(general_run / "bundle", quiet=True)
    user = UserContext(examples=[PreferenceExample(prompt="Tell me about a pet.", chosen="Cats groom themselves.",
                                                   rejected="Dogs love to fetch.")])
    pref = judge.prefer(user, "Talk about a pet.", "Cats purr when happy.", "Dogs wag their tails.")
    assert pref.summary is not None and pref.summary.text
    assert pref.method == "reward_model" and 0.0 <= pref.probability <= 1.0
    typed = judge.prefer(Summary.from_text("loves cats"), "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert typed.summary is not None and typed.summary.text == "loves cats"
    assert judge.summarizer is not None and judge.summarizer.backend.reads_contexts  # type: ignore[union-attr]


def test_plus_train_general_show_prints_the_resolved_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "general", "rm_steps=7", "--show"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["kind"] == "encoder" and shown["rm_steps"] == 7 and shown["reader"]["wordings"] == "train"
