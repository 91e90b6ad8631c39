"""Typed records: validation errors name the field, hashes are stable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from plus_sdk.types import Conversation, Preference, PreferenceExample, Summary, Turn, UserContext


def test_identical_pair_is_rejected() -> None:
    with pytest.raises(ValidationError, match="identical"):
        PreferenceExample(prompt="p", chosen="same", rejected="same")


def test_empty_field_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        PreferenceExample(prompt="p", chosen="", rejected="x")
    assert info.value.errors()[0]["loc"] == ("chosen",)


def test_empty_context_is_rejected() -> None:
    with pytest.raises(ValidationError, match="context is empty"):
        UserContext()
    with pytest.raises(ValidationError, match="context is empty"):
        UserContext(guidelines="   ")


def test_wrong_types_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        UserContext.model_validate({"examples": "not a list"})
    assert info.value.errors()[0]["loc"][0] == "examples"
    with pytest.raises(ValidationError) as info:
        Turn(role="robot", content="hi")  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"] == ("role",)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        UserContext.model_validate({"guidelines": "short", "colour": "blue"})


def test_source_hash_ignores_user_id_and_tracks_content() -> None:
    ex = PreferenceExample(prompt="p", chosen="a", rejected="b")
    one = UserContext(user_id="x", examples=[ex])
    two = UserContext(user_id="y", examples=[ex])
    three = UserContext(user_id="x", examples=[ex], guidelines="be brief")
    assert one.source_hash() == two.source_hash()
    assert one.source_hash() != three.source_hash()
    assert len(one.source_hash()) == 32


def test_conversation_from_pairs_and_roundtrip() -> None:
    conv = Conversation.from_pairs(("hi", "hello"), ("bye", "see you"))
    assert [t.role for t in conv.turns] == ["user", "assistant", "user", "assistant"]
    ctx = UserContext(conversations=[conv], profile={"safety": 80})
    assert UserContext.model_validate_json(ctx.model_dump_json()) == ctx


def test_preference_bounds_and_confidence() -> None:
    pref = Preference(choice="b", probability=0.2, rewards=(0.0, 1.4))
    assert pref.confidence == pytest.approx(0.8)
    with pytest.raises(ValidationError) as info:
        Preference(choice="c", probability=0.5)  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"] == ("choice",)
    with pytest.raises(ValidationError):
        Preference(choice="a", probability=1.5)


def test_summary_from_text_is_user_edited() -> None:
    summary = Summary.from_text("Prefers cats.")
    assert summary.edited_by_user and summary.model_id == "user"
