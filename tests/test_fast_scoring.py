"""Prefix-shared scoring equals the unshared computation (fp32, tiny real models, LoRA on)."""

from __future__ import annotations

import pytest
import torch

from plus_sdk.backends.local import LocalBackend, LocalModel, SharedBase
from plus_sdk.fast_scoring import group_by_prefix, plan_batches
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.reward import PersonalizedRewardModel, RewardHead
from plus_sdk.summarizer import Summarizer

TOL = 1e-4

CONDITIONS = [None, "The user adores cats and wants short answers.",
              "This user trains dogs, likes long practical explanations and detailed step-by-step advice."]
PROMPTS = ["Tell me about a pet.", "Give me one practical tip for looking after an animal at home, please."]
RESPONSES = ["Cats purr.",
             "Dogs fetch sticks until your arm is tired.",
             "Fish swim in slow circles all day long in their glass bowls, which many people find calming "
             "to watch after a long and busy day at work."]


def reward_model(folder: str, *, lora: bool = False, **kwargs: object) -> PersonalizedRewardModel:
    """A reward model on a private (unpooled) copy of a tiny base, optionally with a random LoRA."""
    base = SharedBase.load(folder, device="cpu", dtype="float32", share=False)
    adapter = None
    if lora:
        from peft import LoraConfig

        torch.manual_seed(1)
        config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"])
        base.add_new_adapter("reward", config)
        base.model.eval()
        adapter = "reward"
    head = RewardHead(base.model.config.hidden_size)
    return PersonalizedRewardModel(LocalModel(base, adapter), head, **kwargs)  # type: ignore[arg-type]


def all_items() -> list[tuple[str | None, str, str]]:
    return [(c, p, r) for c in CONDITIONS for p in PROMPTS for r in RESPONSES]


def max_gap(model: PersonalizedRewardModel, items: list[tuple[str | None, str, str]]) -> float:
    shared = model.score_batch(items, prefix_sharing=True)
    unshared = model.score_batch(items, prefix_sharing=False)
    return max(abs(a - b) for a, b in zip(shared, unshared, strict=True))


def test_shared_equals_unshared_several_prefixes(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir))
    items = all_items()
    pairs = model.encode_items(items)
    assert len({tuple(p) for p, _ in pairs}) == len(CONDITIONS) * len(PROMPTS)
    assert len({len(s) for _, s in pairs}) == len(RESPONSES)  # suffixes of different lengths
    assert pairs == [model.encode_split(p, r, model.condition_for(c)) for c, p, r in items]
    assert max_gap(model, items) < TOL


def test_shared_equals_unshared_with_lora_adapter(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir), lora=True)
    items = all_items()
    assert max_gap(model, items) < TOL
    with_lora = model.score_batch(items)
    model.model.adapter = None  # same weights, adapter switched off
    without = model.score_batch(items)
    assert max(abs(a - b) for a, b in zip(with_lora, without, strict=True)) > 1e-3  # the adapter was really on


def test_small_token_budget_splits_batches_and_still_matches(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir), tokens_per_batch=64)
    items = all_items()
    pairs = model.encode_items(items)
    groups = group_by_prefix([p for p, _ in pairs])
    batches = plan_batches(groups, [len(s) for _, s in pairs], 64)
    assert len(batches) > 1
    assert sorted(i for batch in batches for g in batch for i in g.items) == list(range(len(items)))
    assert max_gap(model, items) < TOL


def test_overlong_items_fall_back_to_the_cut_sequence(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir), max_length=60)
    items = all_items()
    pairs = model.encode_items(items)
    assert any(len(p) + len(s) > 60 for p, s in pairs) and any(len(p) + len(s) <= 60 for p, s in pairs)
    assert max_gap(model, items) < TOL


def test_empty_and_single_item(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir))
    assert model.score_batch([]) == []
    one = ("The user adores cats.", "Tell me about a pet.", "Cats purr.")
    assert abs(model.score(*one) - model.score_batch([one], prefix_sharing=False)[0]) < TOL


def test_judge_summarizes_each_user_once_and_matches_unshared(tiny_model_dir, cat_context, dog_context) -> None:
    model = reward_model(str(tiny_model_dir))
    summarizer = Summarizer(LocalBackend(LocalModel(model.model.base)))
    judge = PersonalizedJudge(model, summarizer)
    items = [(ctx, p, RESPONSES[0], RESPONSES[k]) for ctx in (cat_context, dog_context) for p in PROMPTS
             for k in (1, 2)]
    fast = judge.prefer_batch(items)
    assert summarizer.cache.misses == 2 and len(summarizer.cache) == 2  # one summary per user
    model.prefix_sharing = False
    slow = judge.prefer_batch(items)
    assert summarizer.cache.misses == 2  # second call: all cached
    for f, s in zip(fast, slow, strict=True):
        assert f.choice == s.choice or abs(f.rewards[0] - f.rewards[1]) < TOL
        assert abs(f.probability - s.probability) < TOL
        assert max(abs(a - b) for a, b in zip(f.rewards, s.rewards, strict=True)) < TOL


@pytest.mark.parametrize("bad", [([[1, 2]], []), ([[1, 2]], [[]])])
def test_score_prefix_shared_rejects_bad_input(bad) -> None:
    from plus_sdk.fast_scoring import score_prefix_shared

    with pytest.raises(ValueError, match="suffix"):
        score_prefix_shared(None, None, bad[0], bad[1], pad_id=0, device=torch.device("cpu"), dtype=torch.float32)


# ------------------------------------------------------------------ summarizer generation
def test_summary_complete_rules(tiny_model_dir) -> None:
    base = SharedBase.load(str(tiny_model_dir), device="cpu", dtype="float32", share=False)
    summarizer = Summarizer(LocalBackend(LocalModel(base)), max_words=5)
    assert not summarizer.summary_complete("##Summary The user likes")
    assert not summarizer.summary_complete("Some preamble.\n\nMore preamble")  # no marker: no paragraph rule
    assert summarizer.summary_complete("##Summary The user likes cats.\n\nNext")
    assert not summarizer.summary_complete("##Summary The user likes cats a lot")  # 5 words, no sentence end
    assert summarizer.summary_complete("##Summary The user likes cats a lot.")
    assert summarizer.summary_complete("one two three four five six seven eight nine ten")  # 2 x max_words


def test_local_backend_keeps_order_and_stops_rows(tiny_model_dir) -> None:
    from plus_sdk.types import SamplingConfig

    base = SharedBase.load(str(tiny_model_dir), device="cpu", dtype="float32", share=False)
    backend = LocalBackend(LocalModel(base), batch_size=1)  # no padding: rows comparable one by one
    conversations = [[{"role": "user", "content": text}] for text in
                     ("A long question about the many habits of cats and dogs at home?", "Hi", "Tell me more.")]
    sampling = SamplingConfig(max_new_tokens=12)
    together = backend.chat(conversations, sampling)  # sorted by length inside, returned in input order
    alone = [backend.chat([c], sampling)[0] for c in conversations]
    assert together == alone
    stopped = backend.chat(conversations, sampling, stop=lambda text: True)  # every row ends after one token
    tok = base.tokenizer
    for short, full in zip(stopped, together, strict=True):
        assert len(tok(short, add_special_tokens=False)["input_ids"]) <= 1
        assert full.startswith(short)


@pytest.mark.default_model
def test_shared_equals_unshared_on_the_default_model() -> None:
    model = PersonalizedRewardModel.from_pretrained("smollm2-135m-instruct", device="cpu", dtype="float32")
    items = [(c, PROMPTS[0], r) for c in CONDITIONS[1:] for r in RESPONSES]
    assert max_gap(model, items) < TOL


def test_keys_with_nothing_in_common_still_match(tiny_model_dir) -> None:
    model = reward_model(str(tiny_model_dir))
    pairs = model.encode_items(all_items()[:6])
    pairs = [([100 + k, *prefix], suffix) for k, (prefix, suffix) in enumerate(pairs)]  # no common head
    shared = model.score_split(pairs, keys=["one user"] * len(pairs))
    unshared = model.score_ids([p + s for p, s in pairs])
    assert float((shared - unshared).abs().max()) < TOL
