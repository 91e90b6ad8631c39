"""Attack tour on the summary store: one validation of text, ids and JSON, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest

from plus_sdk.server.keys import create_key, key_for_token, list_keys
from plus_sdk.store import (
    ImportFormatError,
    InvalidTextError,
    InvalidUserIdError,
    SummaryStore,
)
from plus_sdk.types import Summary, UserContext


@pytest.fixture()
def store(new_store_location: Callable[[], str]) -> Iterator[SummaryStore]:
    with SummaryStore(new_store_location()) as opened:
        yield opened


def export_of(*rows: dict[str, object]) -> io.StringIO:
    header = {"format": "plus-summaries", "schema_version": 3}
    return io.StringIO("\n".join(json.dumps(r) for r in [header, *rows]) + "\n")


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "escape \x1b[31mred", "del\x7f"])
def test_control_characters_in_summary_text_are_refused_naming_the_field(store: SummaryStore, text: str) -> None:
    with pytest.raises(InvalidTextError, match=r"text contains the control character U\+00"):
        store.edit("alice", text)
    with pytest.raises(InvalidTextError, match="model_id contains"):
        store.put("alice", Summary(text="fine", model_id="m\x00"))
    assert store.history("alice") == []


def test_newlines_tabs_and_carriage_returns_are_kept(store: SummaryStore) -> None:
    text = "Likes cats.\n\tPrefers short replies.\r\nNo dogs."
    assert store.edit("alice", text).text == text
    assert store.current("alice").text == text  # type: ignore[union-attr]


def test_an_export_holding_a_nul_byte_is_refused_with_its_line(store: SummaryStore) -> None:
    row = {"user_id": "imp", "version": 1, "text": "a\u0000b", "author": "model", "action": "put", "is_current": True}
    with pytest.raises(ImportFormatError, match=r"line 2: text contains the control character U\+0000"):
        store.import_jsonl(export_of(row))
    assert store.users() == []


def test_an_export_holding_nan_is_refused_with_its_line(store: SummaryStore) -> None:
    text = '{"format": "plus-summaries", "schema_version": NaN}\n'
    with pytest.raises(ImportFormatError, match="line 1 is not JSON: NaN is not a JSON number"):
        store.import_jsonl(io.StringIO(text))


@pytest.mark.parametrize("user_id", ["alice\n", "alice\r\n", "\nalice", "al\nice"])
def test_user_ids_must_match_the_pattern_in_full(store: SummaryStore, user_id: str) -> None:
    with pytest.raises(InvalidUserIdError, match="is not allowed"):
        store.edit(user_id, "likes cats")
    row = {"user_id": user_id, "version": 1, "text": "t", "author": "model", "action": "put", "is_current": True}
    with pytest.raises(ImportFormatError, match="is not allowed"):
        store.import_jsonl(export_of(row))
    assert store.users() == []


def test_deleting_a_user_revokes_their_keys_and_forgets_their_id(store: SummaryStore) -> None:
    store.edit("yara@example.com", "likes tea")
    _, token = create_key(store, "yara@example.com", label="yara's phone")
    _, other = create_key(store, "zoe")
    assert key_for_token(store, token) is not None
    store.delete("yara@example.com")
    assert key_for_token(store, token) is None  # the key no longer works
    assert key_for_token(store, other) is not None  # other users' keys do
    rows = list_keys(store, include_revoked=True)
    assert all("yara" not in r.user_id + r.label for r in rows) and len(rows) == 2
    with store.backend.read() as cur:
        names = [tuple(r) for r in cur.execute("SELECT user_id, label FROM plus_api_keys").fetchall()]
    assert not any("yara" in str(value) for value in names)


def test_a_key_label_with_a_control_character_is_refused(store: SummaryStore) -> None:
    with pytest.raises(InvalidTextError, match="label contains"):
        create_key(store, "alice", label="phone\x00")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_in_a_context_profile_are_refused_naming_the_key(value: float) -> None:
    with pytest.raises(ValueError, match=r"profile\.scores\.1 is NaN or infinite"):
        UserContext(profile={"scores": [1.0, value]})
    with pytest.raises(ValueError, match=r"profile\.age is NaN or infinite"):
        UserContext.model_validate_json(f'{{"profile": {{"age": {json.dumps(value)}}}}}')
