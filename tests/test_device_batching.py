"""Batch sizes that follow the device, the O(1)-per-step stop check, and batched scoring.

The sizing functions are pure and checked on hand-computed values. Generation with the
incremental stop check is compared with plain ``model.generate`` and with the old stop
check (decode every row's whole text at every step) on a tiny random model; large-batch
scoring is compared with one ``prefer`` call per pair.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from plus_sdk import batching
from plus_sdk.backends.local import IncrementalText, LocalBackend, LocalModel, SharedBase
from plus_sdk.fast_scoring import ONE_PASS_TOKENS, sharing_pays
from plus_sdk.judge import PersonalizedJudge
from plus_sdk.reward import PersonalizedRewardModel, RewardHead
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import SamplingConfig

QWEN_05B = SimpleNamespace(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                           num_attention_heads=14, num_key_value_heads=2)


# ------------------------------------------------------------------ pure sizing
def test_kv_bytes_per_token_of_a_qwen_0_5b_shape_in_bf16() -> None:
    # 2 (k and v) x 24 layers x 2 kv heads x 64 head dim x 2 bytes
    assert batching.kv_bytes_per_token(QWEN_05B, 2) == 12288


def test_activation_bytes_per_token_counts_gate_up_and_hidden_states() -> None:
    assert batching.activation_bytes_per_token(QWEN_05B, 2) == (2 * 4864 + 4 * 896) * 2


def test_generation_rows_divides_the_budget_by_row_bytes() -> None:
    # 10_000 bytes x 0.5 = 5_000; a row is 10 tokens x 100 bytes = 1_000 -> 5 rows
    assert batching.generation_rows(10_000, 10, 100, headroom=0.5) == 5
    assert batching.generation_rows(10, 10, 100, headroom=0.5) == 1  # always at least one row
    assert batching.generation_rows(10**12, 10, 100, max_rows=64) == 64  # capped


def test_generation_rows_rejects_empty_rows() -> None:
    with pytest.raises(ValueError, match="tokens_per_row"):
        batching.generation_rows(1000, 0, 100)


def test_scoring_tokens_fits_the_budget_between_its_bounds() -> None:
    assert batching.scoring_tokens(1_000_000, 100, headroom=0.5, min_tokens=10, max_tokens=10**6) == 5000
    assert batching.scoring_tokens(1_000, 100, headroom=0.5, min_tokens=64) == 64
    assert batching.scoring_tokens(10**15, 1, max_tokens=1000, min_tokens=10) == 1000


def test_plan_rows_keeps_rows_times_longest_plus_extra_under_the_budget() -> None:
    # [1, 2]: 2 x (2 + 2) = 8 <= 12; adding 3: 3 x 5 = 15 > 12; [3] then 10 alone (2 x 12 > 12)
    assert batching.plan_rows([1, 2, 3, 10], 2, 12, max_rows=99) == [[0, 1], [2], [3]]
    assert batching.plan_rows([1, 1, 1, 1, 1], 0, 100, max_rows=2) == [[0, 1], [2, 3], [4]]
    assert batching.plan_rows([50], 0, 10, max_rows=4) == [[0]]  # too long alone still runs


def test_sharing_pays_on_cpu_always_and_on_cuda_only_for_big_sets() -> None:
    assert sharing_pays("cpu", [5, 6])
    assert not sharing_pays("cuda", [100, 200])  # 2 x 200 = 400 slots: one pass
    assert sharing_pays("cuda", [ONE_PASS_TOKENS, 10])


# ------------------------------------------------------------------ generation
@pytest.fixture(scope="module")
def tiny_base(tiny_model_dir) -> SharedBase:
    return SharedBase.load(str(tiny_model_dir), device="cpu", dtype="float32", share=False)


def test_local_backend_batches_follow_the_cpu_default_or_the_override(tiny_base: SharedBase) -> None:
    backend = LocalBackend(LocalModel(tiny_base))
    assert backend.batch_size == batching.CPU_GENERATION_BATCH
    assert [len(run) for run in backend.plan(list(range(20)), 8)] == [8, 8, 4]
    backend.batch_size = 3
    assert [len(run) for run in backend.plan(list(range(7)), 8)] == [3, 3, 1]
    assert LocalBackend(LocalModel(tiny_base), static_cache=True).generate_kwargs(
        SamplingConfig())["top_k"] is None  # static cache is ignored on CPU
    assert "cache_implementation" not in LocalBackend(LocalModel(tiny_base), static_cache=True).generate_kwargs(
        SamplingConfig())


def test_incremental_text_equals_decoding_the_whole_list(tiny_base: SharedBase) -> None:
    tok = tiny_base.tokenizer
    text = "Naïve café owners ❤️ their 猫 cats.\n\nThe end — really! 🐈‍⬛"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    growing = IncrementalText(tok)
    for k, token in enumerate(ids):
        so_far = growing.add([token])
        full = tok.decode(ids[: k + 1], skip_special_tokens=True)
        assert full.startswith(so_far) and (so_far == full or full.endswith("\ufffd") or "\ufffd" in full[len(so_far):])
    assert growing.text == tok.decode(ids, skip_special_tokens=True)


class WholeTextStop:
    """The stop check before this change: decode every row's whole new text at every step."""

    def __init__(self, tokenizer, prompt_width, done) -> None:
        self.tokenizer, self.prompt_width, self.done = tokenizer, prompt_width, done

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        return torch.tensor([self.done(t) for t in texts], dtype=torch.bool, device=input_ids.device)


def test_greedy_chat_equals_plain_generate_and_the_old_stop_check(tiny_base: SharedBase) -> None:
    from transformers import StoppingCriteriaList

    backend = LocalBackend(LocalModel(tiny_base))
    tok = tiny_base.tokenizer
    conversations = [[{"role": "user", "content": text}] for text in
                     ("Tell me about cats and the many ways they show affection.", "Hi", "Dogs?",
                      "What should a first-time owner of a parrot buy before it arrives home?")]
    sampling = SamplingConfig(max_new_tokens=24)
    for stop in (None, lambda text: len(text.split()) >= 3, lambda text: "e" in text):
        got = backend.chat(conversations, sampling, stop=stop)
        texts = backend.render(conversations)
        order = sorted(range(len(texts)), key=lambda i: len(tok(texts[i], add_special_tokens=False)["input_ids"]))
        enc = tok([texts[i] for i in order], return_tensors="pt", padding=True, add_special_tokens=False)
        criteria = None if stop is None else StoppingCriteriaList([WholeTextStop(tok, enc["input_ids"].shape[1], stop)])
        with torch.inference_mode():
            out = tiny_base.model.generate(**enc, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id,
                                           temperature=None, top_p=None, top_k=None, stopping_criteria=criteria)
        plain = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        expected = [""] * len(texts)
        for row, text in zip(order, plain, strict=True):
            expected[row] = text.strip()
        assert got == expected


# ------------------------------------------------------------------ batched scoring
def test_one_big_batch_equals_one_prefer_call_per_pair(tiny_base: SharedBase, cat_context, dog_context) -> None:
    head = RewardHead(tiny_base.model.config.hidden_size)
    big = PersonalizedRewardModel(LocalModel(tiny_base), head, tokens_per_batch=1 << 18)
    judge = PersonalizedJudge(big, Summarizer(LocalBackend(LocalModel(tiny_base))))
    prompts = ["Tell me about a pet.", "Give me one practical tip for owners of rabbits, please.", "Why?"]
    answers = ["Cats purr.", "Dogs fetch sticks until your arm is tired.", "Rabbits need hay, water and space."]
    items = [(ctx, p, a, b) for ctx in (cat_context, dog_context) for p in prompts
             for a, b in zip(answers, answers[1:] + answers[:1], strict=True)]
    batched = judge.prefer_batch(items)
    one_by_one = [judge.prefer(*item) for item in items]
    for fast, single in zip(batched, one_by_one, strict=True):
        assert max(abs(x - y) for x, y in zip(fast.rewards, single.rewards, strict=True)) < 1e-4
        assert abs(fast.probability - single.probability) < 1e-4
