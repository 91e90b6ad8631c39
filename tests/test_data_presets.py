"""UltraFeedback presets (``vpl`` with both branches, ``paper``) on fixtures in VPL's input layout:
fine-grained ratings as openbmb/UltraFeedback stores them and a pair file as
argilla/ultrafeedback-binarized-preferences-cleaned stores it (texts written for this test)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from plus_sdk.training.data.build import build_dataset, write_dataset
from plus_sdk.training.data.stats import dataset_stats
from plus_sdk.training.data.ultrafeedback import (
    ATTRIBUTES,
    UltraFeedbackConfig,
    _Completion,
    _Pair,
    _sample_context,
    build_ultrafeedback,
)
from plus_sdk.training.data.ultrafeedback_config import VPL_PAIRS, preset_report, preset_values
from plus_sdk.training.data.ultrafeedback_vpl import (
    EMBEDDED,
    load_length_tokenizer,
    row_split,
    vpl_text,
    with_token_counts,
)

TOPICS = ["tides", "bread", "volcanoes", "chess", "rainbows", "bicycles", "glaciers", "bees", "clocks", "maps"]
LONG_ROWS = 3  # instructions far longer than 1,024 tokens: the length filter drops their pairs


def upstream_completion(text: str, ratings: dict[str, int]) -> dict:
    return {"response": text, "model": "a-model", "fine-grained_score": sum(ratings.values()) / 4,
            "annotations": {a: {"Rating": str(r), "Rationale": "why"} for a, r in ratings.items()}}


def pair_row(instruction: str, chosen: dict, rejected: dict) -> dict:
    def chat(reply: dict) -> list[dict]:
        return [{"role": "user", "content": instruction}, {"role": "assistant", "content": reply["response"]}]

    return {"source": "evol_instruct", "prompt": instruction, "chosen": chat(chosen), "rejected": chat(rejected),
            "chosen-rating": chosen["fine-grained_score"], "rejected-rating": rejected["fine-grained_score"]}


@pytest.fixture(scope="module")
def vpl_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """400 instructions with 4 rated replies, and one cleaned pair per instruction (best mean vs a lower one)."""
    rng = random.Random(11)
    folder = tmp_path_factory.mktemp("uf-vpl")
    ratings_rows, pairs = [], []
    for i in range(400):
        topic = TOPICS[i % len(TOPICS)]
        instruction = f"Tell me one thing about {topic}, question {i}."
        if i < LONG_ROWS:
            instruction += " Please consider this carefully." * 250
        completions = [upstream_completion(f"Reply {j} on {topic} for question {i}.",
                                           {a: rng.randint(1, 5) for a in ATTRIBUTES}) for j in range(4)]
        ranked = sorted(completions, key=lambda c: -c["fine-grained_score"])
        lower = [c for c in ranked if c["fine-grained_score"] < ranked[0]["fine-grained_score"]]
        ratings_rows.append({"source": "evol_instruct", "instruction": instruction, "completions": completions})
        if lower:
            pairs.append(pair_row(instruction, ranked[0], rng.choice(lower)))
    ratings = folder / "ultrafeedback.jsonl"
    ratings.write_text("\n".join(json.dumps(r) for r in ratings_rows) + "\n", encoding="utf-8")
    pair_file = folder / "cleaned.jsonl"
    pair_file.write_text("\n".join(json.dumps(p) for p in pairs) + "\n", encoding="utf-8")
    return ratings, pair_file, len(pairs)


def vpl_config(vpl_inputs, variant: str, branch: str = "dev", **extra) -> UltraFeedbackConfig:
    ratings, pair_file, _ = vpl_inputs
    return UltraFeedbackConfig(source=str(ratings), pairs_source=str(pair_file), variant=variant, preset="vpl",
                               vpl_branch=branch, length_tokenizer=EMBEDDED, **extra)


def test_each_preset_chooses_the_settings_of_its_source() -> None:
    dev = preset_values("vpl", "uf-p2", "dev")
    assert dev == {"pairs_source": VPL_PAIRS, "max_tokens": 1024, "length_tokenizer": "gpt2", "split": "rows",
                   "exclude_target_instruction": False, "n_context_min": 8, "n_context_max": 8,
                   "ties": "drop", "controversial_over": "variant"}
    released = preset_values("vpl", "uf-p4", "released")
    assert (released["ties"], released["controversial_over"], released["n_context_min"]) == ("coin", "all", 2)
    assert preset_values("paper", "uf-p2") == {"n_context_min": 2, "n_context_max": 4, "max_train": 10_000,
                                               "max_test": 2_000}
    assert preset_values("paper", "uf-p4")["max_train"] == 40_000
    assert preset_values(None, "uf-p4") == {}


def test_settings_given_explicitly_win_over_the_preset_and_the_variant_is_read_last() -> None:
    config = UltraFeedbackConfig(preset="vpl", n_context_min=3)
    assert (config.n_context_min, config.n_context_max, config.split, config.max_tokens) == (3, 8, "rows", 1024)
    report = preset_report(config)
    assert report["overridden"] == ["n_context_min"] and "n_context_min" not in report["chose"]
    assert report["chose"]["split"] == "rows" and report["vpl_branch"] == "dev"
    # build_dataset passes the variant after the config: the preset's P-4 sizes apply, not P-2's
    p4 = UltraFeedbackConfig.model_validate({**UltraFeedbackConfig(preset="vpl").model_dump(exclude_unset=True),
                                             "variant": "uf-p4"})
    assert (p4.n_context_min, p4.n_context_max) == (2, 8)


def test_the_row_split_draws_as_vpls_seeded_numpy_choice_rounded_down() -> None:
    import numpy as np

    for n in (10, 57, 400, 60917):
        np.random.seed(42)  # VPL's ultrafeedback_augment.py: seed the global generator, then one choice call
        expected = {int(i) for i in np.random.choice(n, int(n * 0.1), replace=False)}
        assert row_split(n, 0.1, 42) == expected
    assert len(row_split(60917, 0.1, 42)) == 6091  # VPL's log of its own run: 54,826 train / 6,091 test
    assert len(row_split(19, 0.1, 42)) == 1 and row_split(9, 0.1, 42) == set()  # int(1.9) = 1, int(0.9) = 0


def test_the_length_filter_counts_vpls_human_assistant_text_for_each_reply() -> None:
    class Words:  # a tokenizer that counts words and adds one special token, as a default call may
        def __call__(self, texts: list[str]) -> dict:
            return {"input_ids": [[0, *t.split()] for t in texts]}

    def pair(reply_a: str, reply_b: str) -> _Pair:
        a, b = (_Completion(r, dict.fromkeys(ATTRIBUTES, 3)) for r in (reply_a, reply_b))
        return _Pair(key="k", row=0, prompt="two words", a=a, b=b, labels=dict.fromkeys(ATTRIBUTES, 0), ties=())

    (counted,) = with_token_counts([pair("one", "one two three")], Words())
    # "Human: two words\n\nAssistant: one two three" is 7 words, plus the special token
    assert vpl_text("two words", "x") == "Human: two words\n\nAssistant: x" and counted.tokens == 8


def test_preset_vpl_dev_on_p2_splits_rows_filters_length_and_ties_and_uses_8_context_pairs(vpl_inputs) -> None:
    _, _, n_pairs = vpl_inputs
    result = build_ultrafeedback(vpl_config(vpl_inputs, "uf-p2"))
    counts = result.info["counts"]
    n_test = int(0.1 * n_pairs)
    assert (counts["test"]["pairs"], counts["train"]["pairs"]) == (n_test, n_pairs - n_test)
    long_in = {s: sum(r < LONG_ROWS for r in ids) for s, ids in (("test", row_split(n_pairs, 0.1, 42)),
                                                                  ("train", set(range(n_pairs))))}
    long_in["train"] -= long_in["test"]
    for split in ("train", "test"):
        c = counts[split]
        assert c["pairs_with_all_ratings"] - c["pairs_within_length"] == long_in[split]
        assert c["pairs_after_tie_filter"] <= c["pairs_within_length"]
    assert sum(c["pairs_with_all_ratings"] - c["pairs_within_length"] for c in counts.values()) == LONG_ROWS
    for record in result.splits["train"] + result.splits["test"]:
        assert len(record.context.examples) == 8
        assert not set(record.meta["ties"]) & {"helpfulness", "honesty"}  # dev: ties on the variant dropped
        assert "consider this carefully" not in record.prompt
    assert result.info["preset"]["name"] == "vpl" and result.info["length_tokenizer"] == EMBEDDED
    assert result.info["preset"]["overridden"] == ["length_tokenizer", "pairs_source"]


def test_preset_vpl_released_keeps_ties_and_finds_controversy_over_all_four_attributes(vpl_inputs) -> None:
    result = build_ultrafeedback(vpl_config(vpl_inputs, "uf-p2", "released", max_train=400))
    counts = result.info["counts"]["train"]
    assert counts["pairs_after_tie_filter"] == counts["pairs_within_length"]  # no pair dropped for a tie
    records = result.splits["train"] + result.splits["test"]
    assert any(r.meta["tie_broken"] for r in records)
    # kept although both P-2 users agree: another attribute disagrees (not controversial for the P-2 users)
    assert any(not r.controversial for r in records)
    dev = build_ultrafeedback(vpl_config(vpl_inputs, "uf-p2", "dev"))
    assert counts["pairs_kept"] > dev.info["counts"]["train"]["pairs_kept"]


def test_preset_vpl_on_p4_draws_2_to_8_pairs_until_one_user_type_fits(vpl_inputs) -> None:
    result = build_ultrafeedback(vpl_config(vpl_inputs, "uf-p4", max_train=300))
    sizes = {len(r.context.examples) for r in result.splits["train"] + result.splits["test"]}
    assert sizes <= set(range(2, 9)) and len(sizes) > 2


def test_preset_paper_uses_2_to_4_context_pairs_and_the_paper_sizes(vpl_inputs) -> None:
    ratings, _, _ = vpl_inputs
    config = UltraFeedbackConfig(source=str(ratings), preset="paper", variant="uf-p4")
    assert (config.max_train, config.max_test, config.split, config.max_tokens) == (40_000, 2_000, "instructions",
                                                                                    None)
    result = build_ultrafeedback(config)
    assert {len(r.context.examples) for r in result.splits["train"]} <= {2, 3, 4}
    train_keys = {r.meta["instruction_key"] for r in result.splits["train"]}
    assert not train_keys & {r.meta["instruction_key"] for r in result.splits["test"]}


def test_without_exclusion_a_context_may_hold_the_targets_instruction_but_never_its_pair() -> None:
    def pair(text: str, key: str = "same") -> _Pair:
        a = _Completion(f"{text} a", dict.fromkeys(ATTRIBUTES, 5))
        b = _Completion(f"{text} b", dict.fromkeys(ATTRIBUTES, 1))
        return _Pair(key=key, row=0, prompt=key, a=a, b=b, labels=dict.fromkeys(ATTRIBUTES, 0), ties=())

    target, pool = pair("t"), [pair("t"), pair("u"), pair("v")]
    config = UltraFeedbackConfig(n_context_min=2, n_context_max=2, identifiable_context=False)
    assert _sample_context(pool, target, "honesty", ATTRIBUTES, config, random.Random(0)) is None
    vpl = config.model_copy(update={"exclude_target_instruction": False})
    picked = _sample_context(pool, target, "honesty", ATTRIBUTES, vpl, random.Random(0))
    assert picked is not None and sorted(p.a.response for p in picked) == ["u a", "v a"]


def test_an_unloadable_length_tokenizer_falls_back_to_the_embedded_one(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        tokenizer, used = load_length_tokenizer(str(tmp_path / "no-such-tokenizer"))
    assert used == EMBEDDED and tokenizer("one two")["input_ids"]
    assert "embedded tokenizer instead" in caplog.text


def test_stats_json_shows_the_preset_and_the_counts(vpl_inputs, tmp_path) -> None:
    ratings, pair_file, _ = vpl_inputs
    config = UltraFeedbackConfig(source=str(ratings), pairs_source=str(pair_file), preset="vpl",
                                 length_tokenizer=EMBEDDED, max_train=50)
    write_dataset(build_dataset("uf-p2", config), tmp_path / "uf")
    stats = dataset_stats(tmp_path / "uf")
    assert stats["train"]["preset"]["name"] == "vpl" and stats["train"]["preset"]["chose"]["split"] == "rows"
    assert stats["test"]["build_counts"]["pairs_within_length"] >= stats["test"]["build_counts"]["pairs_kept"]


def test_the_row_split_counts_every_row_of_the_pair_file_even_the_unusable_ones(vpl_inputs, tmp_path) -> None:
    ratings, pair_file, n_pairs = vpl_inputs
    rows = pair_file.read_text(encoding="utf-8").splitlines()
    padded = tmp_path / "cleaned-with-empty-replies.jsonl"
    empty = json.dumps({"source": "evol_instruct", "prompt": "No reply here.", "chosen": [], "rejected": []})
    padded.write_text("\n".join([empty] * 7 + rows) + "\n", encoding="utf-8")  # VPL's inner_join skips these later
    result = build_ultrafeedback(UltraFeedbackConfig(source=str(ratings), pairs_source=str(padded), preset="vpl",
                                                     length_tokenizer=EMBEDDED, max_train=10))
    test_rows = row_split(n_pairs + 7, 0.1, 42)
    assert result.info["counts"]["test"]["pairs"] == len({r for r in test_rows if r >= 7})
    assert result.skipped["pair_rows_malformed"] == 7
