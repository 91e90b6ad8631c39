"""Wordings (issue #23): counts, naming checks, deterministic draws and the hand-written checks."""

from __future__ import annotations

import itertools
import random

import pytest

from plus_sdk.training.data.pets import USER_ANIMALS, build_pets, build_pets_ood
from plus_sdk.training.data.styles import (
    AXES,
    PREFERENCES,
    StylesConfig,
    build_styles,
    names_side,
    side_description,
    sides_named,
)
from plus_sdk.training.data.wordings import (
    WORDING_SPLITS,
    describe_pets,
    describe_record,
    describe_styles,
    handwritten_checks,
    handwritten_topics,
    heldout_record_oracles,
    pets_wordings,
    side_wordings,
)
from plus_sdk.training.summary_metrics.pets import animals_named

PETS_TYPES = ("dog", "cat", "bird", "rabbit")
MINIMUM = {"train": 12, "heldout": 4, "typed": 4}


def _names_animal(text: str, user_type: str) -> bool:
    """The summary_metrics.pets check: the user's animal named first, and no animal but the user's two."""
    liked, other = USER_ANIMALS[user_type]
    named = animals_named(text)
    return bool(named) and named[0] == liked and set(named) <= {liked, other}


def _all_wordings() -> list[str]:
    return ([w for a, s in PREFERENCES for split in WORDING_SPLITS for w in side_wordings(a, s, split)]
            + [w for t in PETS_TYPES for split in WORDING_SPLITS for w in pets_wordings(t, split)])


@pytest.mark.parametrize("split", WORDING_SPLITS)
def test_every_side_and_pets_type_has_enough_wordings(split: str) -> None:
    for axis, side in PREFERENCES:
        assert len(side_wordings(axis, side, split)) >= MINIMUM[split], (axis, side, split)
        assert len(side_wordings(axis, side, "train")) + len(side_wordings(axis, side, "heldout")) >= 16
    for user_type in PETS_TYPES:
        assert len(pets_wordings(user_type, split)) >= MINIMUM[split], (user_type, split)
        assert len(pets_wordings(user_type, "train")) + len(pets_wordings(user_type, "heldout")) >= 16


def test_no_wording_appears_twice_within_or_across_splits() -> None:
    everything = _all_wordings()
    lowered = [w.lower().strip(" .!?") for w in everything]
    assert len(set(lowered)) == len(lowered), sorted(w for w in lowered if lowered.count(w) > 1)


def test_every_styles_wording_names_its_side_and_no_other_axis() -> None:
    for axis, side in PREFERENCES:
        for split in WORDING_SPLITS:
            for text in side_wordings(axis, side, split):
                assert names_side(text, axis, side), (axis, side, split, text)
                others = {a: sides_named(text, a) for a in AXES if a != axis}
                assert not any(others.values()), (text, others)  # joinable with any other axis's wording
                assert not animals_named(text), text


def test_every_pets_wording_names_its_animal_first() -> None:
    for user_type in PETS_TYPES:
        for split in WORDING_SPLITS:
            for text in pets_wordings(user_type, split):
                assert _names_animal(text, user_type), (user_type, split, text)
                assert not any(sides_named(text, a) for a in AXES), text


def test_typed_wordings_are_short_lowercase_fragments() -> None:
    typed = [w for a, s in PREFERENCES for w in side_wordings(a, s, "typed")]
    typed += [w for t in PETS_TYPES for w in pets_wordings(t, "typed")]
    for text in typed:
        assert text == text.lower() and len(text.split()) <= 7, text


def test_true_descriptions_name_their_sides() -> None:
    for axis, side in PREFERENCES:
        assert names_side(side_description(axis, side), axis, side), (axis, side)


def test_a_keyword_inside_a_longer_keyword_of_the_other_side_does_not_count() -> None:
    assert sides_named("no code please", "code") == {"no-code"}
    assert sides_named("an informal tone", "tone") == {"casual"}
    assert sides_named("answers without warnings", "caveats") == {"direct"}
    assert sides_named("answer without questions back", "clarify") == {"immediate"}
    assert sides_named("some code, and no code", "code") == {"code", "no-code"}
    assert names_side("short and detailed", "length", "concise") is False
    with pytest.raises(ValueError, match="no side"):
        names_side("short", "length", "tiny")


def test_no_keyword_of_one_side_occurs_in_a_wording_of_the_other_side() -> None:
    for axis in AXES.values():
        for mine, theirs in ((0, 1), (1, 0)):
            texts = [w.lower() for split in WORDING_SPLITS for w in side_wordings(axis.name, axis.sides[mine], split)]
            for keyword in axis.keywords[theirs]:
                hits = [t for t in texts if keyword in t and sides_named(t, axis.name) != {axis.sides[mine]}]
                assert not hits, (axis.name, keyword, hits)


def _drawn_from(text: str, pools: dict[str, tuple[str, ...]], split: str) -> bool:
    """Whether ``text`` holds a wording of ``split`` and none of another split (except inside the one used)."""
    low = text.lower()
    used = [w for w in pools[split] if w in low]
    stray = [w for s, ws in pools.items() if s != split for w in ws if w in low and not any(w in u for u in used)]
    return bool(used) and not stray


@pytest.mark.parametrize("split", WORDING_SPLITS)
def test_describe_styles_is_deterministic_short_and_draws_from_its_split(split: str) -> None:
    for first, second in itertools.combinations(PREFERENCES, 2):
        if first[0] == second[0]:
            continue
        for seed in range(3):
            text = describe_styles([first, second], random.Random(seed), split)
            assert text == describe_styles([first, second], random.Random(seed), split)
            assert len(text.split()) < 40, text
            assert not any(mark in text for mark in ("?.", "!.", "?,", "!,", "?;", "!;", "..", ",,")), text
            assert names_side(text, *first) and names_side(text, *second), text
            for pref in (first, second):
                assert _drawn_from(text, {s: side_wordings(*pref, s) for s in WORDING_SPLITS}, split), (text, pref)
    for pref in PREFERENCES:
        for seed in range(5):
            one = describe_styles([pref], random.Random(seed), split)
            assert names_side(one, *pref) and len(one.split()) < 40
            assert _drawn_from(one, {s: side_wordings(*pref, s) for s in WORDING_SPLITS}, split), one
    texts = {describe_styles([("length", "concise"), ("tone", "casual")], random.Random(s), split) for s in range(40)}
    assert len(texts) > 10  # wordings, order and joiners vary


def test_typed_fragments_are_joined_without_doubled_punctuation() -> None:
    texts = {describe_styles([("code", "code"), ("caveats", "caveats")], random.Random(s), "typed") for s in range(300)}
    assert any(t.startswith(("snippet? ", "any warnings? ")) for t in texts)
    assert not [t for t in texts if any(mark in t for mark in ("?.", "!.", "?,", "!,", "?;", "!;"))]


def test_the_longest_two_axis_description_stays_under_40_words() -> None:
    for split in WORDING_SPLITS:
        longest = sorted((max(side_wordings(a, s, split), key=lambda w: len(w.split())) for a, s in PREFERENCES),
                         key=lambda w: len(w.split()))[-2:]
        # the longest shape adds five words: "The same user also" and a subject
        assert sum(len(w.split()) for w in longest) + 5 < 40, longest


def test_describe_styles_rejects_bad_input() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="unknown wording split"):
        describe_styles([("length", "concise")], rng, "test")
    with pytest.raises(ValueError, match="one side per axis"):
        describe_styles([("length", "concise"), ("length", "detailed")], rng, "train")
    with pytest.raises(ValueError, match="one or two"):
        describe_styles([], rng, "train")
    with pytest.raises(ValueError, match="length=tiny"):
        side_wordings("length", "tiny", "train")
    with pytest.raises(ValueError, match="'hamster'"):
        pets_wordings("hamster", "train")


@pytest.mark.parametrize("split", WORDING_SPLITS)
def test_describe_pets_is_deterministic_and_draws_from_its_split(split: str) -> None:
    for user_type in PETS_TYPES:
        texts = [describe_pets(user_type, random.Random(seed), split) for seed in range(20)]
        assert texts == [describe_pets(user_type, random.Random(seed), split) for seed in range(20)]
        assert all(_names_animal(t, user_type) for t in texts)
        for text in texts:
            assert _drawn_from(text, {s: pets_wordings(user_type, s) for s in WORDING_SPLITS}, split), text


def test_describe_record_on_built_styles_and_pets_records() -> None:
    styles = build_styles(StylesConfig(n_train=24, n_test=8, n_context=2, two_axis_share=0.5, seed=1))
    pets = build_pets(n_train=8, n_test=4, n_context=2)
    ood = build_pets_ood(n_test=8, n_context=2)
    rng = random.Random(0)
    for record in styles["train"] + styles["test"]:
        for split in WORDING_SPLITS:
            text = describe_record(record, rng, split)
            assert all(names_side(text, a, s) for a, s in record.meta["preferences"]), (record.user_type, text)
    for record in pets["train"] + pets["test"] + ood:
        for split in WORDING_SPLITS:
            assert _names_animal(describe_record(record, rng, split), record.user_type or ""), record.user_type
    other = pets["test"][0].model_copy(update={"dataset": "uf-p2"})
    with pytest.raises(ValueError, match="'uf-p2'"):
        describe_record(other, rng, "train")


@pytest.mark.parametrize("split", WORDING_SPLITS)
def test_heldout_record_oracles_are_seeded_one_per_user_and_leave_the_input_alone(split: str) -> None:
    records = build_styles(StylesConfig(n_train=0, n_test=16, n_context=2, seed=2))["test"]
    records += build_pets_ood(n_test=8, n_context=2)
    before = [r.model_copy(deep=True) for r in records]
    first = heldout_record_oracles(records, split, seed=3)
    assert first == heldout_record_oracles(records, split, seed=3)
    assert [r.oracle for r in first] != [r.oracle for r in heldout_record_oracles(records, split, seed=4)]
    assert records == before
    by_user: dict[str, set[str]] = {}
    for old, new in zip(records, first, strict=True):
        by_user.setdefault(new.user_id, set()).add(new.oracle or "")
        assert new.meta["wording_split"] == split and new.meta["original_oracle"] == old.oracle
        assert (new.prompt, new.chosen, new.rejected, new.context) == (old.prompt, old.chosen, old.rejected,
                                                                      old.context)
        assert new.oracle != old.oracle
    assert all(len(texts) == 1 for texts in by_user.values())


def test_handwritten_checks_are_balanced_and_cover_every_side_and_animal() -> None:
    checks, topics = handwritten_checks(), handwritten_topics()
    assert len(checks) == len(topics) == 24
    assert all(len(c) == 5 for c in checks)
    preferred = [c[4] for c in checks]
    assert set(preferred) == {"a", "b"} and abs(preferred.count("a") - preferred.count("b")) <= 2
    assert {f"{a}={s}" for a, s in PREFERENCES} | {"pets=dog", "pets=cat"} <= set(topics)
    for (summary, prompt, a, b, _), topic in zip(checks, topics, strict=True):
        kind, value = topic.split("=")
        assert a != b and prompt.endswith(("?", "."))
        if kind == "pets":
            assert _names_animal(summary, value), summary
        else:
            assert names_side(summary, kind, value), summary
    assert len({c[1] for c in checks}) == 24 and len({c[0] for c in checks}) == 24


def test_handwritten_checks_are_new() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "handwritten_users.py"
    text = path.read_text(encoding="utf-8")
    for summary, prompt, a, b, _ in handwritten_checks():
        assert summary not in text and prompt not in text and a not in text and b not in text
    from plus_sdk.training.data.styles_items import load_all

    items = [i for d in load_all() for i in d.items]
    prompts = {i.prompt for i in items}
    assert not prompts & {c[1] for c in handwritten_checks()}
