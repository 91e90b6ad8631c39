"""Summarizer, PersonalizedJudge and PersonalizedGenerator with a SummaryStore (tiny real model; the store
on a real SQLite file and on a live PostgreSQL server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plus_sdk import (
    PersonalizedGenerator,
    PersonalizedJudge,
    PersonalizedRewardModel,
    Summarizer,
    SummaryStore,
    UserContext,
)
from plus_sdk.cache import SummaryCache
from plus_sdk.store import UnknownUserError
from plus_sdk.types import PreferenceExample, SamplingConfig


@pytest.fixture()
def store(new_store_location: Callable[[], str]) -> Iterator[SummaryStore]:
    with SummaryStore(new_store_location()) as opened:
        yield opened


@pytest.fixture()
def summarizer(tiny_model_dir: Path, store: SummaryStore) -> Summarizer:
    return Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=12),
                                      cache=SummaryCache(), store=store)


def lookups(summarizer: Summarizer) -> int:
    """How many times the summarizer went to its cache/model (a store hit skips both)."""
    return summarizer.cache.hits + summarizer.cache.misses


def changed(context: UserContext) -> UserContext:
    extra = PreferenceExample(prompt="Any hobby?", chosen="Knitting by the fire.", rejected="Skydiving.")
    return context.model_copy(update={"examples": [*context.examples, extra]})


def test_summarizer_reuses_refreshes_and_records(summarizer: Summarizer, store: SummaryStore,
                                                 cat_context: UserContext) -> None:
    first = summarizer.summarize(cat_context, user_id="alice")
    assert store.get("alice") == first and first.source_hash == cat_context.source_hash()
    before = lookups(summarizer)
    again = summarizer.summarize(cat_context, user_id="alice")
    assert again.text == first.text and lookups(summarizer) == before  # served from the store
    assert len(store.history("alice")) == 1
    newer = changed(cat_context)
    refreshed = summarizer.summarize(newer, user_id="alice")
    assert refreshed.source_hash == newer.source_hash() and lookups(summarizer) == before + 1
    assert [r.source_hash for r in store.history("alice")] == [cat_context.source_hash(), newer.source_hash()]


def test_user_edits_win_and_refreshes_become_proposals(summarizer: Summarizer, store: SummaryStore,
                                                       cat_context: UserContext) -> None:
    summarizer.summarize(cat_context, user_id="alice")
    store.edit("alice", "Loves cats; keep answers under two sentences.")
    used = summarizer.summarize(cat_context, user_id="alice")
    assert used.text == "Loves cats; keep answers under two sentences." and used.edited_by_user
    newer = changed(cat_context)
    used = summarizer.summarize(newer, user_id="alice")
    assert used.edited_by_user  # the edit still wins over the changed context ...
    proposal = store.proposal("alice")
    assert proposal is not None and proposal.source_hash == newer.source_hash()  # ... the model's view waits
    count = len(store.history("alice"))
    summarizer.summarize(newer, user_id="alice")
    assert len(store.history("alice")) == count  # the same proposal is not generated twice
    forced = summarizer.summarize(newer, user_id="alice", refresh=True)
    assert not forced.edited_by_user and store.get("alice").source_hash == newer.source_hash()  # type: ignore[union-attr]


def test_batch_with_user_ids(summarizer: Summarizer, store: SummaryStore, cat_context: UserContext,
                             dog_context: UserContext) -> None:
    out = summarizer.summarize_batch([cat_context, dog_context, cat_context], user_ids=["cat", "dog", None])
    assert [s.source_hash for s in out] == [cat_context.source_hash(), dog_context.source_hash(),
                                            cat_context.source_hash()]
    assert store.users() == ["cat", "dog"]
    with pytest.raises(ValueError, match="one user id per context"):
        summarizer.summarize_batch([cat_context], user_ids=["cat", "dog"])


def test_user_id_without_a_store_is_an_error(tiny_model_dir: Path, cat_context: UserContext) -> None:
    plain = Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=4), cache=SummaryCache())
    with pytest.raises(ValueError, match="no SummaryStore is configured"):
        plain.summarize(cat_context, user_id="alice")


def test_judge_uses_the_store(tiny_model_dir: Path, store: SummaryStore, cat_context: UserContext) -> None:
    summarizer = Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=12),
                                            cache=SummaryCache())
    judge = PersonalizedJudge(PersonalizedRewardModel.from_pretrained(tiny_model_dir), summarizer, store=store)
    assert summarizer.store is store
    made = judge.prefer(cat_context, "Which pet?", "A cat.", "A dog.", user_id="alice")
    assert made.summary == store.get("alice")
    store.edit("alice", "Only ever wants dog facts.")
    edited = judge.prefer(None, "Which pet?", "A cat.", "A dog.", user_id="alice")  # stored summary alone
    assert edited.summary is not None and edited.summary.text == "Only ever wants dog facts."
    assert edited.rewards != made.rewards  # the edited summary changed the reward model's input
    batch = judge.prefer_batch([(cat_context, "Which pet?", "A cat.", "A dog."), (None, "Q?", "x", "y")],
                               user_ids=["alice", "alice"])
    assert [p.summary.text for p in batch] == ["Only ever wants dog facts."] * 2  # type: ignore[union-attr]
    with pytest.raises(UnknownUserError, match="no stored summary"):
        judge.prefer(None, "Which pet?", "A cat.", "A dog.", user_id="nobody")
    assert judge.prefer(None, "Which pet?", "A cat.", "A dog.").summary is None  # no user id: unpersonalized


def test_generator_uses_the_store(tiny_model_dir: Path, store: SummaryStore, cat_context: UserContext) -> None:
    summarizer = Summarizer.from_pretrained(tiny_model_dir, sampling=SamplingConfig(max_new_tokens=8),
                                            cache=SummaryCache())
    generator = PersonalizedGenerator.from_pretrained(tiny_model_dir, summarizer=summarizer, store=store,
                                                      sampling=SamplingConfig(max_new_tokens=6))
    store.edit("bob", "Bob wants replies about sailing.")
    seen: list[str] = []
    original = generator.backend.chat
    generator.backend.chat = lambda batch, s, **kw: seen.extend(  # type: ignore[method-assign]
        m["content"] for conv in batch for m in conv) or original(batch, s, **kw)
    reply = generator.generate(cat_context, "Plan my weekend.", user_id="bob")
    assert isinstance(reply, str)
    assert any("Bob wants replies about sailing." in content for content in seen)
    assert store.proposal("bob") is not None  # the context's own summary was recorded as a proposal
    generator.generate(cat_context, "Plan my weekend.", user_id="carol")
    assert store.get("carol") is not None and not store.get("carol").edited_by_user  # type: ignore[union-attr]
