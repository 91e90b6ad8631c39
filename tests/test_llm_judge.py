"""PersonalizedJudge as an LLM judge, and PersonalizedGenerator, on any backend.

The ordering/debias/parsing logic is checked with ``RuleJudge``, a small deterministic
``ChatBackend`` whose answers follow a known rule (position bias, or the animal named in the
summary); the end-to-end path runs against ``plus serve`` with a tiny model over real HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_injection import FaultInjector, with_faults

from plus_sdk.backends.base import Messages
from plus_sdk.backends.openai import OpenAIBackend
from plus_sdk.generator import PersonalizedGenerator
from plus_sdk.judge import PersonalizedJudge, parse_choice
from plus_sdk.server import ServeConfig, create_app, serve_in_thread
from plus_sdk.summarizer import Summarizer
from plus_sdk.types import SamplingConfig, UserContext


class RuleJudge:
    """Answers like a judge with a fixed rule; records every conversation it saw."""

    model_id = "rule-judge"

    def __init__(self, rule: str = "summary") -> None:
        self.rule = rule
        self.seen: list[Messages] = []

    def chat(self, messages_batch: list[Messages], sampling: SamplingConfig) -> list[str]:
        self.seen += messages_batch
        return [self.answer(m) for m in messages_batch]

    def answer(self, messages: Messages) -> str:
        if self.rule == "first":
            return "The user would prefer Option 1."
        system, user = messages[0]["content"], messages[-1]["content"]
        liked = re.search(r"likes (\w+)", system)  # "likes cats" -> "cats"
        option_1 = user.split("Option 1:")[1].split("Option 2:")[0]
        if liked is None:
            return "Hard to say."
        return "Option 1" if liked.group(1) in option_1.lower() else "I think option 2."


def options_of(messages: Messages) -> tuple[str, str]:
    user = messages[-1]["content"]
    first = user.split("Option 1:")[1].split("Option 2:")[0].strip()
    second = user.split("Option 2:")[1].split("\n\n")[0].strip()
    return first, second


QUERIES = [(f"Tell me about pet number {i}.", f"Cats are calm {i}.", f"Dogs are loud {i}.") for i in range(12)]


def test_option_order_is_seeded_and_identical_with_and_without_summary() -> None:
    backend = RuleJudge()
    judge = PersonalizedJudge(backend=backend, order_seed=7)
    judge.prefer_batch([("likes cats", p, a, b) for p, a, b in QUERIES])
    judge.prefer_batch([(None, p, a, b) for p, a, b in QUERIES])
    with_summary, without = backend.seen[: len(QUERIES)], backend.seen[len(QUERIES):]
    assert [options_of(m) for m in with_summary] == [options_of(m) for m in without]
    firsts = {options_of(m)[0].startswith("Cats") for m in with_summary}
    assert firsts == {True, False}  # the seed shuffles the order across queries
    again = RuleJudge()
    PersonalizedJudge(backend=again, order_seed=7).prefer_batch([(None, p, a, b) for p, a, b in QUERIES])
    assert [options_of(m) for m in again.seen] == [options_of(m) for m in without]  # reproducible


def test_judge_follows_the_summary_whatever_the_order() -> None:
    judge = PersonalizedJudge(backend=RuleJudge(), order_seed=3)
    cats = judge.prefer_batch([("likes cats", p, a, b) for p, a, b in QUERIES])
    dogs = judge.prefer_batch([("likes dogs", p, a, b) for p, a, b in QUERIES])
    assert {p.choice for p in cats} == {"a"} and {p.choice for p in dogs} == {"b"}
    assert all(p.method == "llm_judge" and p.summary is not None for p in cats)
    unsure = judge.prefer_batch([(None, p, a, b) for p, a, b in QUERIES])  # no summary: no parsable answer
    assert {p.probability for p in unsure} == {0.5}


def test_debias_cancels_position_bias() -> None:
    biased = PersonalizedJudge(backend=RuleJudge("first"))
    assert biased.prefer(None, "Q?", "one", "two").probability == 1.0  # a is always Option 1
    backend = RuleJudge("first")
    fair = PersonalizedJudge(backend=backend, debias=True)
    preference = fair.prefer(None, "Q?", "one", "two")
    assert preference.probability == 0.5
    assert [options_of(m) for m in backend.seen] == [("one", "two"), ("two", "one")]
    steady = PersonalizedJudge(backend=RuleJudge(), debias=True)
    consistent = steady.prefer("likes cats", "Q?", "Cats nap.", "Dogs run.")
    assert consistent.probability == 1.0 and consistent.choice == "a"


def test_parse_choice_is_robust() -> None:
    assert parse_choice("The user would prefer Option 2.", "x", "y") == 2
    assert parse_choice("**option 1**", "x", "y") == 1
    assert parse_choice("2", "x", "y") == 2
    assert parse_choice("They'd like: Cats nap in the sun all day.", "Cats nap in the sun all day.",
                        "Dogs run.") == 1
    assert parse_choice("Both are fine.", "Cats nap.", "Dogs run.") is None
    with pytest.raises(ValueError, match="prompt_style"):
        PersonalizedJudge(backend=RuleJudge(), prompt_style="sideways")


def test_backend_kind_by_name_needs_valid_kind() -> None:
    with pytest.raises(ValueError, match="backend='tgi' is unknown"):
        PersonalizedJudge(backend="tgi")


# --------------------------------------------------------------------- against plus serve


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[tuple[str, FaultInjector]]:
    faults = FaultInjector()
    app = with_faults(create_app(ServeConfig(model=str(tiny_model_dir), served_model_name="tiny")), faults)
    with serve_in_thread(app) as url:
        yield f"{url}/v1", faults


def test_judge_over_openai_backend_against_plus_serve(server: tuple[str, FaultInjector],
                                                      cat_context: UserContext) -> None:
    url, faults = server
    faults.reset()
    faults.fail_next(1, 429, retry_after=0)  # the judge rides out a rate limit too
    backend = OpenAIBackend(model="tiny", base_url=url, backoff_initial=0.01)
    judge = PersonalizedJudge(summarizer=Summarizer(backend), backend=backend, debias=True)
    preference = judge.prefer(cat_context, "Tell me about a pet.", "Cats purr.", "Dogs bark.")
    assert preference.method == "llm_judge" and 0.0 <= preference.probability <= 1.0
    assert preference.summary is not None and preference.summary.model_id.startswith("openai:tiny@")
    assert backend.usage.requests == 3  # one summary, two judge orders
    assert faults.statuses.count(200) == 3 and faults.statuses[0] == 429

    by_name = PersonalizedJudge(backend="openai", backend_options={"model": "tiny", "base_url": url})
    assert by_name.prefer("likes cats", "A pet?", "Cats purr.", "Dogs bark.").summary.text == "likes cats"


def test_generator_on_openai_backend_keeps_the_word_budget(server: tuple[str, FaultInjector]) -> None:
    url, _ = server
    generator = PersonalizedGenerator("openai", backend_options={"model": "tiny", "base_url": url}, max_words=4)
    replies = generator.generate_batch([("likes cats", "Tell me about pets."), (None, "Tell me about pets.")],
                                       sampling=SamplingConfig(max_new_tokens=40))
    assert len(replies) == 2 and all(len(r.split()) <= 4 for r in replies)


@pytest.mark.default_model
def test_default_model_judge_answers_parse() -> None:
    """SmolLM2-135M-Instruct as the judge: answers name an option (the system-turn prompt)."""
    from plus_sdk.backends import make_backend

    backend = make_backend("local")
    judge = PersonalizedJudge(backend=backend, order_seed=0)
    items = [("This user prefers hearing about cats rather than dogs.", "Talk to me about a pet.",
              "A cat curls up on a warm lap and purrs.", "A dog fetches the ball again and again."),
             (None, "Talk to me about a pet.", "A cat curls up on a warm lap and purrs.",
              "A dog fetches the ball again and again.")] * 2
    preferences = judge.prefer_batch(items)
    assert sum(p.probability != 0.5 for p in preferences) >= 3
