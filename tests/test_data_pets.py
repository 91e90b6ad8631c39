"""Pets and Pets-OOD builders: roles, contexts, determinism, pools."""

from __future__ import annotations

import pytest

from plus_sdk.training.data.pets import (
    CONTROVERSIAL_TYPES,
    PAIR_TYPES,
    build_pets,
    build_pets_ood,
)
from plus_sdk.training.data.pets_sentences import ANIMALS, POOLS, PROMPTS

ANIMAL_OF = {text: animal for animal in ANIMALS for pool in POOLS[animal] for text in pool}
ROLE = {"bird": {"helpful", "harmless"}, "dog": {"helpful"}, "cat": {"harmless"}, "rabbit": set()}


@pytest.fixture(scope="module")
def pets():
    return build_pets(n_train=400, n_test=100, n_context=8, seed=3)


def test_pools_are_big_disjoint_and_single_sentences():
    all_texts = []
    for animal in ANIMALS:
        train, test = POOLS[animal]
        assert len(train) >= 80 and len(test) >= 10
        assert len(set(train)) == len(train) and len(set(test)) == len(test)
        assert not set(train) & set(test)
        all_texts += train + test
        for text in train + test:
            assert text.endswith((".", "!", "?")) and text.count(". ") == 0, text
    assert len(set(all_texts)) == len(all_texts)  # no sentence shared between animals
    assert len(PROMPTS) >= 4 and all("pet" in p for p in PROMPTS)


def test_sizes_splits_and_user_balance(pets):
    train, test = pets["train"], pets["test"]
    assert len(train) == 400 and len(test) == 100
    assert {r.split for r in train} == {"train"} and {r.split for r in test} == {"test"}
    assert {r.dataset for r in train + test} == {"pets"}
    assert not {r.user_id for r in train} & {r.user_id for r in test}
    types = [r.user_type for r in train]
    assert types.count("cat") == types.count("dog") == 200
    share = sum(r.controversial for r in train) / len(train)
    assert share == pytest.approx(0.5, abs=0.05)


def test_labels_follow_animal_roles(pets):
    for record in pets["train"] + pets["test"]:
        chosen, rejected = ANIMAL_OF[record.chosen], ANIMAL_OF[record.rejected]
        assert (chosen, rejected) == (record.meta["chosen_animal"], record.meta["rejected_animal"])
        pair_type = record.meta["pair_type"]
        assert {chosen, rejected} == set(PAIR_TYPES[pair_type])
        assert record.controversial == (pair_type in CONTROVERSIAL_TYPES)
        if record.controversial:
            # the helpful (dog) user takes the helpful animal, the harmless (cat) user the harmless one
            wanted = {"dog": "helpful", "cat": "harmless"}[record.user_type]
            assert wanted in ROLE[chosen] and wanted not in ROLE[rejected]
            assert chosen == record.user_type
        else:
            assert ROLE[rejected] < ROLE[chosen]  # the chosen animal has every good role of the other
        assert record.user_type in record.oracle and record.oracle.startswith("This user prefers")


def test_contexts_are_the_users_own_controversial_pairs_without_the_target(pets):
    history: dict[str, set[tuple[str, str, str]]] = {}
    for record in pets["train"] + pets["test"]:
        examples = record.context.examples
        assert len(examples) == 8 and record.context.user_id == record.user_id
        target = (record.prompt, record.chosen, record.rejected)
        keys = [(e.prompt, e.chosen, e.rejected) for e in examples]
        assert target not in keys and len(set(keys)) == 8
        for example in examples:
            assert ANIMAL_OF[example.chosen] == record.user_type  # consistent with this user
            assert {ANIMAL_OF[example.chosen], ANIMAL_OF[example.rejected]} == {"cat", "dog"}
        mine = history.setdefault(record.user_id, set())
        mine.update(keys)
        if record.controversial:
            mine.add(target)
    # every context of a user comes from one history of 10 controversial rows (2 per type 5-9)
    assert all(8 <= len(rows) <= 10 for rows in history.values())
    assert len(history) == 100 + 25  # 4 targets per user


def test_pair_types_are_balanced_over_targets(pets):
    counts = {t: 0 for t in PAIR_TYPES}
    for record in pets["train"]:
        counts[record.meta["pair_type"]] += 1
    assert set(counts.values()) == {40}


def test_train_and_test_sentences_come_from_their_own_pools(pets):
    train_texts = {t for a in ANIMALS for t in POOLS[a][0]}
    test_texts = {t for a in ANIMALS for t in POOLS[a][1]}
    for record in pets["train"]:
        texts = {record.chosen, record.rejected} | {t for e in record.context.examples for t in (e.chosen, e.rejected)}
        assert texts <= train_texts
    for record in pets["test"]:
        texts = {record.chosen, record.rejected} | {t for e in record.context.examples for t in (e.chosen, e.rejected)}
        assert texts <= test_texts


def test_deterministic_under_seed():
    first = build_pets(n_train=60, n_test=20, n_context=4, seed=7)
    again = build_pets(n_train=60, n_test=20, n_context=4, seed=7)
    other = build_pets(n_train=60, n_test=20, n_context=4, seed=8)
    dump = lambda d: [r.model_dump_json() for s in ("train", "test") for r in d[s]]  # noqa: E731
    assert dump(first) == dump(again)
    assert dump(first) != dump(other)
    assert all(len(r.context.examples) == 4 for r in first["train"])


def test_pets_ood_users_compare_birds_with_rabbits():
    records = build_pets_ood(n_test=60, n_context=8, seed=1)
    assert len(records) == 60 and {r.split for r in records} == {"ood"} and {r.dataset for r in records} == {"pets-ood"}
    assert {r.user_type for r in records} == {"bird", "rabbit"}
    for record in records:
        assert ANIMAL_OF[record.chosen] == record.user_type
        assert {ANIMAL_OF[record.chosen], ANIMAL_OF[record.rejected]} == {"bird", "rabbit"}
        assert record.controversial
        assert record.meta["trained_analogue"] == {"bird": "dog", "rabbit": "cat"}[record.user_type]
        target = (record.prompt, record.chosen, record.rejected)
        for example in record.context.examples:
            assert (example.prompt, example.chosen, example.rejected) != target
            assert ANIMAL_OF[example.chosen] == record.user_type
            assert ANIMAL_OF[example.rejected] != record.user_type
    assert [r.model_dump_json() for r in records] == [r.model_dump_json() for r in build_pets_ood(60, 8, 1)]


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_context"):
        build_pets(n_train=10, n_test=10, n_context=0)
    with pytest.raises(ValueError, match=">= 0"):
        build_pets_ood(n_test=-1)


def test_dog_cat_targets_keep_bird_and_rabbit_out_of_training():
    data = build_pets(n_train=120, n_test=40, n_context=3, seed=2, targets="dog-cat")
    for split in ("train", "test"):
        records = data[split]
        assert records and {r.user_type for r in records} == {"cat", "dog"}
        for record in records:
            # targets and contexts both compare a dog with a cat, labelled by the user's animal
            assert {ANIMAL_OF[record.chosen], ANIMAL_OF[record.rejected]} == {"cat", "dog"}
            assert ANIMAL_OF[record.chosen] == record.user_type and record.controversial
            for example in record.context.examples:
                assert ANIMAL_OF[example.chosen] == record.user_type
        # every dog-vs-cat pair type is a target equally often
        counts = [sum(r.meta["pair_type"] == t for r in records) for t in sorted(CONTROVERSIAL_TYPES)]
        assert max(counts) - min(counts) <= 1
    with pytest.raises(ValueError, match="targets='birds'"):
        build_pets(n_train=10, n_test=10, targets="birds")  # type: ignore[arg-type]
