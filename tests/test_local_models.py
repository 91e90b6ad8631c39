"""The four classes on tiny random-init models (real transformers + peft, no hub)."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import pytest
import torch
from peft import LoraConfig

from plus_sdk import (
    PROMPT_VERSION,
    PersonalizedGenerator,
    PersonalizedJudge,
    PersonalizedRewardModel,
    Summarizer,
    Summary,
    UserContext,
)
from plus_sdk.backends.local import LocalModel, SharedBase
from plus_sdk.cache import SummaryCache
from plus_sdk.summarizer import ContextTruncatedWarning
from plus_sdk.types import PreferenceExample, SamplingConfig


@pytest.fixture()
def summarizer(tiny_model_dir: Path) -> Summarizer:
    return Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=12))


@pytest.fixture()
def reward_model(tiny_model_dir: Path) -> PersonalizedRewardModel:
    return PersonalizedRewardModel.from_pretrained(tiny_model_dir)


def test_summarize_returns_typed_summary(summarizer: Summarizer, cat_context: UserContext) -> None:
    summary = summarizer.summarize(cat_context)
    assert isinstance(summary, Summary) and summary.text
    assert summary.source_hash == cat_context.source_hash()
    assert summary.prompt_version and not summary.edited_by_user


def test_batch_equals_single_with_left_padding(summarizer: Summarizer, cat_context: UserContext,
                                               dog_context: UserContext) -> None:
    batch = summarizer.summarize_batch([cat_context, dog_context], use_cache=False)
    singles = [summarizer.summarize_batch([c], use_cache=False)[0] for c in (cat_context, dog_context)]
    assert [s.text for s in batch] == [s.text for s in singles]


def test_cache_summarizes_each_user_once(summarizer: Summarizer, cat_context: UserContext) -> None:
    calls: list[int] = []
    original = summarizer.backend.chat
    summarizer.backend.chat = lambda batch, sampling: calls.append(len(batch)) or original(batch, sampling)  # type: ignore[method-assign]
    first = summarizer.summarize_batch([cat_context, cat_context])
    second = summarizer.summarize(cat_context)
    assert calls == [1]
    assert first[0] == first[1] == second


def test_disk_cache_survives_a_new_summarizer(tiny_model_dir: Path, tmp_path: Path, cat_context: UserContext) -> None:
    one = Summarizer.from_pretrained(tiny_model_dir, cache_dir=tmp_path, sampling=SamplingConfig(max_new_tokens=8))
    made = one.summarize(cat_context)
    two = Summarizer.from_pretrained(tiny_model_dir, cache=SummaryCache(tmp_path),
                                     sampling=SamplingConfig(max_new_tokens=8))
    assert two.summarize(cat_context) == made and two.cache.hits == 1


def test_over_long_context_keeps_recent_items_with_warning(summarizer: Summarizer) -> None:
    examples = [PreferenceExample(prompt=f"question {i} " * 20, chosen=f"yes {i} " * 20, rejected=f"no {i} " * 20)
                for i in range(12)]
    summarizer.max_context_tokens = 400
    with pytest.warns(ContextTruncatedWarning, match="most recent"):
        messages = summarizer.messages_for(UserContext(examples=examples))
    text = messages[0]["content"]
    assert "question 11" in text and "question 0 " not in text
    assert summarizer.backend.model.count_tokens(messages) <= 400  # type: ignore[attr-defined]


def test_short_context_has_no_warning(summarizer: Summarizer, cat_context: UserContext) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarizer.messages_for(cat_context)


def test_reward_is_read_at_last_non_pad_token(reward_model: PersonalizedRewardModel) -> None:
    short = reward_model.score("likes cats", "Talk about a pet.", "Cats.")
    long = reward_model.score("likes cats", "Talk about a pet.", "Cats are lovely and quiet companions indeed.")
    batch = reward_model.score_batch([("likes cats", "Talk about a pet.", "Cats."),
                                      ("likes cats", "Talk about a pet.",
                                       "Cats are lovely and quiet companions indeed.")])
    assert batch == pytest.approx([short, long], abs=1e-5)


def test_summary_changes_the_reward(reward_model: PersonalizedRewardModel) -> None:
    with_cat = reward_model.score("likes cats", "Talk about a pet.", "Cats.")
    with_dog = reward_model.score("likes dogs a lot", "Talk about a pet.", "Cats.")
    plain = reward_model.score(None, "Talk about a pet.", "Cats.")
    assert len({round(with_cat, 6), round(with_dog, 6), round(plain, 6)}) == 3


def test_encode_split_is_prefix_of_template(reward_model: PersonalizedRewardModel) -> None:
    prefix, suffix = reward_model.encode_split("Q?", "An answer.", "cond")
    tok = reward_model.tokenizer
    full = tok.apply_chat_template([{"role": "user", "content": "cond\n\nQ?"},
                                    {"role": "assistant", "content": "An answer."}], tokenize=False)
    assert tok.decode(prefix + suffix) == full.rstrip("\n") or tok.decode(prefix + suffix) == full


def test_truncation_keeps_the_response(reward_model: PersonalizedRewardModel) -> None:
    reward_model.max_length = 64
    ids = reward_model.encode("word " * 300, "FINAL ANSWER", "cond")
    assert len(ids) == 64
    assert "FINAL ANSWER" in reward_model.tokenizer.decode(ids[-10:])


def test_reward_model_save_and_load_with_lora(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = SharedBase.load(str(tiny_model_dir), share=False)
    base.add_new_adapter("reward", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                              init_lora_weights=False))
    from plus_sdk.reward import RewardHead

    head = RewardHead(base.model.config.hidden_size)
    with torch.no_grad():
        head.linear.bias.fill_(0.25)
    model = PersonalizedRewardModel(LocalModel(base, "reward"), head)
    expected = model.score("likes cats", "Q", "A cat.")
    model.save_pretrained(tmp_path / "rm")
    assert (tmp_path / "rm" / "adapter_config.json").exists() and (tmp_path / "rm" / "head.safetensors").exists()
    loaded = PersonalizedRewardModel.from_pretrained(tiny_model_dir, tmp_path / "rm")
    assert loaded.score("likes cats", "Q", "A cat.") == pytest.approx(expected, abs=1e-5)
    # the LoRA adapter really is used: the bare base gives another value
    with loaded.model.base.use(None) as bare:
        ids, mask = loaded.collate([loaded.encode("Q", "A cat.", loaded.condition_for("likes cats"))])
        bare_value = loaded.head(loaded.hidden_last(bare, ids, mask))[0, 0].item()
    assert abs(bare_value - expected) > 1e-4


def test_missing_head_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"head\.safetensors"):
        PersonalizedRewardModel.from_pretrained(tiny_model_dir, tmp_path)


def test_judge_probability_is_sigmoid_of_margin(summarizer: Summarizer, reward_model: PersonalizedRewardModel,
                                                cat_context: UserContext) -> None:
    judge = PersonalizedJudge(reward_model, summarizer)
    pref = judge.prefer(cat_context, "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert pref.rewards is not None and pref.summary is not None
    r_a, r_b = pref.rewards
    assert pref.probability == pytest.approx(1 / (1 + math.exp(-(r_a - r_b))))
    assert pref.choice == ("a" if r_a >= r_b else "b")
    assert r_a == pytest.approx(reward_model.score(pref.summary, "Talk about a pet.", "Cats purr."), abs=1e-5)


def test_judge_accepts_an_edited_summary(summarizer: Summarizer, reward_model: PersonalizedRewardModel) -> None:
    judge = PersonalizedJudge(reward_model, summarizer)
    edited = Summary.from_text("Prefers dogs, always.")
    pref = judge.prefer(edited, "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert pref.summary == edited
    as_text = judge.prefer("Prefers dogs, always.", "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert as_text.rewards == pytest.approx(pref.rewards)


def test_judge_batch_summarizes_each_user_once(summarizer: Summarizer, reward_model: PersonalizedRewardModel,
                                               cat_context: UserContext, dog_context: UserContext) -> None:
    judge = PersonalizedJudge(reward_model, summarizer)
    items = [(cat_context, "Q", "a1", "b1"), (dog_context, "Q", "a2", "b2"), (cat_context, "Q", "a3", "b3")]
    results = judge.prefer_batch(items)
    assert len(results) == 3 and summarizer.cache.misses == 2
    assert results[0].summary == results[2].summary
    single = judge.prefer(cat_context, "Q", "a3", "b3")
    assert single.probability == pytest.approx(results[2].probability, abs=1e-6)


def test_judge_bad_input(summarizer: Summarizer, reward_model: PersonalizedRewardModel,
                         cat_context: UserContext) -> None:
    judge = PersonalizedJudge(reward_model, summarizer)
    with pytest.raises(ValueError, match="identical"):
        judge.prefer(cat_context, "Q", "same", "same")
    with pytest.raises(ValueError, match="prompt"):
        judge.prefer(cat_context, "", "a", "b")
    with pytest.raises(TypeError, match="context must be"):
        judge.prefer(42, "Q", "a", "b")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="context is empty"):
        judge.prefer({}, "Q", "a", "b")


def test_roles_share_one_base(tiny_model_dir: Path) -> None:
    summarizer = Summarizer.from_pretrained(tiny_model_dir)
    reward = PersonalizedRewardModel.from_pretrained(tiny_model_dir)
    assert summarizer.backend.model.base is reward.model.base  # type: ignore[attr-defined]


def test_generator_personalizes_prompt(tiny_model_dir: Path, summarizer: Summarizer,
                                       cat_context: UserContext) -> None:
    generator = PersonalizedGenerator.from_pretrained(tiny_model_dir, summarizer=summarizer,
                                                      sampling=SamplingConfig(max_new_tokens=10))
    seen: list[list[dict[str, str]]] = []
    original = generator.backend.chat
    generator.backend.chat = lambda batch, s: seen.extend(batch) or original(batch, s)  # type: ignore[method-assign]
    text = generator.generate(cat_context, "Tell me about pets.")
    assert isinstance(text, str)
    summary = summarizer.summarize(cat_context)
    assert summary.text in seen[0][0]["content"]  # the summary describes the reader in the system turn
    assert seen[0][-1] == {"role": "user", "content": "Tell me about pets."}  # the request stays the request
    plain = generator.generate(None, "Tell me about pets.")
    assert isinstance(plain, str) and seen[1][-1]["content"] == "Tell me about pets."
    with pytest.raises(ValueError, match="prompt"):
        generator.generate(None, " ")


def test_judge_and_generator_save_and_load_as_bundles(tiny_model_dir: Path, tmp_path: Path,
                                                      cat_context: UserContext,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from plus_sdk.bundle import read_card
    from plus_sdk.reward import RewardHead

    base = SharedBase.load(str(tiny_model_dir), share=False)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    base.add_new_adapter("summarizer", lora)
    base.add_new_adapter("reward", lora)
    from plus_sdk.backends.local import LocalBackend

    summarizer = Summarizer(LocalBackend(LocalModel(base, "summarizer")), sampling=SamplingConfig(max_new_tokens=8))
    head = RewardHead(base.model.config.hidden_size)
    judge = PersonalizedJudge(PersonalizedRewardModel(LocalModel(base, "reward"), head), summarizer)
    before = judge.prefer(cat_context, "Talk about a pet.", "Cats purr.", "Dogs bark.")
    judge.save_pretrained(tmp_path / "bundle")
    card = read_card(tmp_path / "bundle")
    assert card.base_model == str(tiny_model_dir) and card.prompt_version
    loaded = PersonalizedJudge.from_pretrained(tmp_path / "bundle")
    after = loaded.prefer(cat_context, "Talk about a pet.", "Cats purr.", "Dogs bark.")
    assert after.summary is not None and before.summary is not None
    assert after.summary.text == before.summary.text
    assert after.rewards == pytest.approx(before.rewards, abs=1e-5)

    generator = PersonalizedGenerator(LocalBackend(LocalModel(base, None)), summarizer,
                                      sampling=SamplingConfig(max_new_tokens=6))
    generator.save_pretrained(tmp_path / "gen")
    again = PersonalizedGenerator.from_pretrained(tmp_path / "gen", sampling=SamplingConfig(max_new_tokens=6))
    assert again.summarizer is not None
    assert again.summarizer.summarize(cat_context).text == summarizer.summarize(cat_context).text

    # a bundle trained with other prompt templates still loads, with a warning that names both versions
    from plus_sdk.bundle import write_card

    write_card(tmp_path / "bundle", card.model_copy(update={"prompt_version": "0"}))
    with caplog.at_level(logging.WARNING, logger="plus_sdk.summarizer"):
        Summarizer.from_pretrained(tmp_path / "bundle")
    assert any("prompt version 0" in r.getMessage() and f"version {PROMPT_VERSION}" in r.getMessage()
               for r in caplog.records)


def test_a_bundle_rechecked_with_the_current_prompts_loads_without_the_version_warning(
        tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from plus_sdk.bundle import read_card, write_card

    PersonalizedJudge.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "b")
    rechecked = {"prompt_version": "0", "checked_prompt_versions": [PROMPT_VERSION]}
    write_card(tmp_path / "b", read_card(tmp_path / "b").model_copy(update=rechecked))
    with caplog.at_level(logging.WARNING, logger="plus_sdk.summarizer"):
        Summarizer.from_pretrained(tmp_path / "b")
    assert not any("prompt version" in r.getMessage() for r in caplog.records)
