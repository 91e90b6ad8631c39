"""Prompt templates and summary extraction."""

from __future__ import annotations

import pytest

from plus_sdk import prompts
from plus_sdk.types import Conversation, PreferenceExample, UserContext


def _ctx(**kw: object) -> UserContext:
    ex = PreferenceExample(prompt="Talk about a pet.", chosen="CATS-CHOSEN", rejected="DOGS-REJECTED")
    return UserContext(examples=[ex], **kw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("##Summary The user prefers cats.", "The user prefers cats."),
        ("Sure! ##Summary: draft ##Summary Final: likes cats", "Final: likes cats"),
        ("## summary\nLikes short answers.", "Likes short answers."),
        ("No marker here, likes dogs.", "No marker here, likes dogs."),
        ("Likes rabbits. ##Summary", "Likes rabbits."),
        ("##Summary", ""),
    ],
)
def test_extract_summary(text: str, expected: str) -> None:
    assert prompts.extract_summary(text) == expected


def test_extract_summary_caps_length() -> None:
    long = "##Summary " + " ".join(["word"] * 500)
    assert len(prompts.extract_summary(long, max_words=20).split()) == 20
    assert len(prompts.extract_summary("x" * 5000, max_chars=100)) == 100


def test_summarizer_prompt_kinds() -> None:
    pairs = prompts.summarizer_messages(_ctx(), "pets")[0]["content"]
    assert "CATS-CHOSEN" in pairs and "DOGS-REJECTED" in pairs and prompts.SUMMARY_MARKER in pairs
    assert "pet" in pairs.lower()
    conv_only = prompts.summarizer_messages(_ctx(), "generic", context_kind="conversations")[0]["content"]
    assert "CATS-CHOSEN" in conv_only and "DOGS-REJECTED" not in conv_only
    guided = prompts.summarizer_messages(_ctx(guidelines="USERS-CARE-ABOUT-HONESTY"), "ultrafeedback")[0]["content"]
    assert "USERS-CARE-ABOUT-HONESTY" in guided
    with pytest.raises(ValueError, match="task"):
        prompts.summarizer_messages(_ctx(), "cooking")


def test_conversations_and_profile_rendered() -> None:
    ctx = UserContext(conversations=[Conversation.from_pairs(("QUESTION-X", "ANSWER-Y"))], profile={"safety": 90})
    text = prompts.summarizer_messages(ctx)[0]["content"]
    assert "QUESTION-X" in text and "ANSWER-Y" in text and "safety: 90" in text


def test_reward_messages() -> None:
    cond = prompts.summary_condition("likes cats")
    msgs = prompts.reward_messages("PROMPT", "RESPONSE", condition=cond)
    assert msgs[0]["role"] == "user" and "likes cats" in msgs[0]["content"] and "PROMPT" in msgs[0]["content"]
    assert msgs[1] == {"role": "assistant", "content": "RESPONSE"}
    assert prompts.reward_messages("PROMPT", "R")[0]["content"] == "PROMPT"
    assert "prefers cats" in prompts.oracle_condition("prefers cats")
    assert "CATS-CHOSEN" in prompts.icl_condition(_ctx())


def test_judge_prompt_and_parser() -> None:
    plain = prompts.judge_messages("Q", "A1", "A2")[1]["content"]
    personal = prompts.judge_messages("Q", "A1", "A2", "likes brevity")[1]["content"]
    assert "likes brevity" not in plain and "likes brevity" in personal
    assert plain.index("A1") < plain.index("A2")
    assert prompts.parse_judge_answer("Option 2") == 2
    assert prompts.parse_judge_answer("I pick **option 1** because") == 1
    assert prompts.parse_judge_answer(" 2.") == 2
    assert prompts.parse_judge_answer("Option 1, not Option 2") == 1
    assert prompts.parse_judge_answer("no idea") is None


def test_the_generation_prompt_describes_the_reader_in_the_system_turn_and_ends_on_the_request() -> None:
    msgs = prompts.generation_messages("Q?", "likes detail", max_words=42)
    assert "42 words" in msgs[0]["content"] and "likes detail" in msgs[0]["content"]
    assert msgs[1]["content"] == "Q?"
    assert prompts.generation_messages("Q?")[1]["content"] == "Q?"


@pytest.mark.parametrize("raw", ["The user prefers X.", "##Summary The user prefers [animal].",
                                 "##Summary: Likes <topic> answers", "Prefers {style} replies.", "Likes ____."])
def test_a_placeholder_output_becomes_the_empty_summary_and_is_never_returned(raw: str) -> None:
    assert prompts.is_placeholder(raw)
    assert prompts.extract_summary(raw) == ""


@pytest.mark.parametrize("text", ["The user prefers cats.", "Wants X-ray facts and Windows XP tips.",
                                  "Prefers short answers with code examples."])
def test_real_summaries_are_not_mistaken_for_placeholders(text: str) -> None:
    assert not prompts.is_placeholder(text) and prompts.extract_summary(text) == text


def test_no_summarizer_prompt_carries_a_copyable_placeholder() -> None:
    context = UserContext(examples=[PreferenceExample(prompt="p", chosen="a", rejected="b")])
    for task in prompts.SUMMARY_TASKS:
        body = prompts.summarizer_messages(context, task)[0]["content"]
        assert not prompts.is_placeholder(body.replace(context.examples[0].chosen, "")), task
