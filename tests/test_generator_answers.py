"""The generator answers the request: the summary describes the reader and is never the reply.

On the real default model (marked ``default_model``): the guide's examples and ten hand-written
summaries, each with a request; the reply must not be the summary (not equal, neither a substring
of the other, low word overlap) and must address the request (share a content word with it).
"""

from __future__ import annotations

import re

import pytest

from plus_sdk import prompts

STOP = {"a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "me", "my", "i", "you", "your", "is", "are",
        "it", "be", "with", "how", "what", "do", "does", "should", "can", "give", "tell", "about", "some", "who",
        "user", "prefers", "likes", "wants", "that", "this", "one", "short", "s"}

#: (summary, request): the guide's examples first, then ten hand-written readers
CASES: list[tuple[str, str]] = [
    ("The user prefers the sea.", "Plan me a weekend in Lisbon."),
    ("The user prefers a penguin.", "Name one sight in Lisbon."),
    ("Wants short, direct answers.", "How long should I steep green tea?"),
    ("Loves cats and mentions them whenever possible.", "What should I cook for dinner tonight?"),
    ("A beginner programmer who likes code examples.", "How do I reverse a list in Python?"),
    ("Prefers answers laid out as bullet lists.", "How can I sleep better?"),
    ("A retired teacher who enjoys history.", "Suggest a book to read this summer."),
    ("Likes a formal, polite tone.", "Write a note declining a dinner invitation."),
    ("Is training for a marathon and counts calories.", "What is a good breakfast?"),
    ("Wants every claim backed by a number.", "Why is exercise good for the heart?"),
    ("Speaks casually and likes jokes.", "Explain what a black hole is."),
    ("Has a small balcony and no garden.", "Which vegetables can I grow at home?"),
]


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP and len(w) > 2}


def stem(word: str) -> str:
    """A crude stem: the first four letters ("cooking" and "cook" share one)."""
    return word[:4]


def test_the_summary_describes_the_reader_in_the_system_turn_and_the_user_turn_is_the_request() -> None:
    messages = prompts.generation_messages("Plan me a weekend in Lisbon.", "The user prefers the sea.", max_words=42)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "Plan me a weekend in Lisbon."
    assert "The user prefers the sea." in messages[0]["content"] and "42 words" in messages[0]["content"]
    assert "Do not repeat" in messages[0]["content"]
    assert prompts.generation_messages("Q?") == [{"role": "system", "content": prompts.GENERATION_SYSTEM.format(
        max_words=100)}, {"role": "user", "content": "Q?"}]


@pytest.mark.default_model
def test_replies_on_the_default_model_answer_the_request_and_never_copy_the_summary() -> None:
    from plus_sdk import PersonalizedGenerator, Summary

    gen = PersonalizedGenerator.from_pretrained(quiet=True)
    replies = gen.generate_batch([(Summary.from_text(summary), request) for summary, request in CASES],
                                 max_words=60)
    problems = []
    for (summary, request), reply in zip(CASES, replies, strict=True):
        low, ref = reply.strip().lower(), summary.strip().lower().rstrip(".")
        copied = not low or low.rstrip(".") == ref or ref in low or low in summary.lower()
        overlap = len(words(reply) & words(summary)) > max(1, len(words(reply)) // 3)
        answers = bool({stem(w) for w in words(reply)} & {stem(w) for w in words(request)})
        if copied or overlap or not answers:
            problems.append(f"summary {summary!r}, request {request!r}: reply {reply!r}")
    print("\n".join(f"{request} -> {reply!r}" for (_, request), reply in zip(CASES, replies, strict=True)))
    assert not problems, "\n".join(problems)
