"""Attack tour, item 1: a huge context is cut in O(n log n), in the library and over HTTP."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from plus_sdk.summarizer import ContextTruncatedWarning, Summarizer
from plus_sdk.truncation import keep_recent, longest_fitting_suffix
from plus_sdk.types import PreferenceExample, SamplingConfig, UserContext


def huge_context(n: int) -> UserContext:
    return UserContext(user_id="u-huge", examples=[
        PreferenceExample(prompt=f"question {i} about pets", chosen=f"answer yes {i}", rejected=f"answer no {i}")
        for i in range(n)])


def test_longest_fitting_suffix_counts_from_the_most_recent_item() -> None:
    assert longest_fitting_suffix([5, 4, 3, 2], 5) == 2  # 2 + 3 = 5 fits, + 4 does not
    assert longest_fitting_suffix([5, 4, 3, 2], 1) == 0
    assert longest_fitting_suffix([5, 4, 3, 2], 100) == 4


def test_keep_recent_drops_examples_before_conversations() -> None:
    context = huge_context(3)
    kept = keep_recent(context, 2)
    assert [e.prompt for e in kept.examples] == ["question 1 about pets", "question 2 about pets"]
    assert keep_recent(context, 5) is context


@pytest.fixture(scope="module")
def summarizer(tiny_model_dir: Path) -> Summarizer:
    return Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=4))


def test_ten_thousand_examples_are_cut_within_two_seconds(summarizer: Summarizer) -> None:
    context = huge_context(10_000)
    start = time.perf_counter()
    with pytest.warns(ContextTruncatedWarning, match="max_context_items"):
        messages = summarizer.messages_for(context)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    text = messages[0]["content"]
    assert "question 9999 about pets" in text and "question 0 about pets" not in text
    assert summarizer.backend.model.count_tokens(messages) <= summarizer.max_context_tokens  # type: ignore[attr-defined]


def test_the_item_cap_is_configurable(tiny_model_dir: Path) -> None:
    small = Summarizer.from_pretrained(tiny_model_dir, max_context_items=3)
    with pytest.warns(ContextTruncatedWarning, match="kept the most recent 3"):
        text = small.messages_for(huge_context(5))[0]["content"]
    assert "question 2 about" in text and "question 1 about" not in text
    with pytest.raises(ValueError, match="max_context_items"):
        Summarizer.from_pretrained(tiny_model_dir, max_context_items=0)


def test_cut_time_grows_about_linearly(summarizer: Summarizer) -> None:
    def cut_seconds(n: int) -> float:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summarizer.messages_for(huge_context(n))
        return time.perf_counter() - start

    summarizer.max_context_items = 100_000
    try:
        small, large = cut_seconds(400), cut_seconds(1600)
    finally:
        summarizer.max_context_items = 512
    assert large < 10 * small + 0.5, (small, large)  # quadratic would be ~16x


def test_a_context_of_only_a_guideline_or_profile_is_summarized(summarizer: Summarizer) -> None:
    for context in (UserContext(guidelines="Short answers."), UserContext(profile={"age": 30})):
        summary = summarizer.summarize(context)
        assert summary.text and summary.source_hash == context.source_hash()
