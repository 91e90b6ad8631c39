"""Pets built as VPL's generator builds it (``source=vpl``), on a fixture in VPL's layout.

The fixture (``tests/fixtures/vpl_checkout``) is a fake checkout: four sentence lists under
``data/simple_pets/``, one neutral fact per line, written for this project. The lists hold 84, 86,
88 and 90 sentences, so the test pools (the sentences after the first 80) have 4, 6, 8 and 10.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from plus_sdk.training.data.build import build_dataset
from plus_sdk.training.data.pets import CONTROVERSIAL_TYPES, PetsConfig
from plus_sdk.training.data.pets_vpl import (
    VPL_PROMPT,
    build_vpl_pets,
    expected_vpl_counts,
    rows_per_type,
    split_sentences,
)
from plus_sdk.training.data.upstream import SourceError

REPO = Path(__file__).resolve().parent.parent
CHECKOUT = REPO / "tests" / "fixtures" / "vpl_checkout"
LISTS = CHECKOUT / "data" / "simple_pets"
ANIMAL = {"bird": "birds", "cat": "cats", "dog": "dogs", "rabbit": "rabbits"}


def lines(animal: str) -> list[str]:
    return (LISTS / f"{ANIMAL[animal]}.txt").read_text(encoding="utf-8").splitlines()


def animal_of(sentence: str) -> str:
    return next(a for a in ANIMAL if sentence in lines(a))


@pytest.fixture(scope="module")
def vpl() -> dict:
    return build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(CHECKOUT)))


def test_the_first_n_sentences_are_train_and_the_rest_test() -> None:
    assert split_sentences(["a", "b", "c"], 2) == (["a", "b"], ["c"])
    with pytest.raises(ValueError, match="more than 3"):
        split_sentences(["a", "b", "c"], 3)


def test_rows_are_counted_per_user_type_or_shared_out() -> None:
    assert rows_per_type(2000, "user_type") == [2000, 2000]
    assert rows_per_type(5, "all") == [3, 2]
    assert expected_vpl_counts(2000, 200) == {"train": 4000, "test": 400}
    assert expected_vpl_counts(2000, 200, "all", n_ood=200) == {"train": 2000, "test": 200, "ood": 200}


def test_the_fixture_gives_vpl_counts_2000_and_200_rows_per_user_type(vpl) -> None:
    assert {k: len(v) for k, v in vpl.items()} == {"train": 4000, "test": 400}
    for split, per_type in (("train", 2000), ("test", 200)):
        assert Counter(r.user_type for r in vpl[split]) == {"cat": per_type, "dog": per_type}
        assert len({r.user_id for r in vpl[split]}) == 2 * per_type  # each row is a user of its own
    # pair types drawn uniformly from the ten: each near 400 of 4000 train rows
    types = Counter(r.meta["pair_type"] for r in vpl["train"])
    assert set(types) == set(range(10)) and all(330 <= n <= 470 for n in types.values())


def test_every_row_has_the_one_prompt_and_sentences_from_its_split_pool(vpl) -> None:
    for split, part in (("train", slice(0, 80)), ("test", slice(80, None))):
        pool = {s for a in ANIMAL for s in lines(a)[part]}
        for record in vpl[split]:
            assert record.prompt == VPL_PROMPT and record.meta["source"] == "vpl"
            assert {record.chosen, record.rejected} <= pool
            assert all({e.chosen, e.rejected} <= pool and e.prompt == VPL_PROMPT for e in record.context.examples)
    used = {r.chosen for r in vpl["test"]} | {r.rejected for r in vpl["test"]}
    assert {s for s in used if animal_of(s) == "bird"} == set(lines("bird")[80:])  # 4 test bird sentences


def test_contexts_hold_8_controversial_rows_labelled_by_the_same_user_type(vpl) -> None:
    for record in vpl["train"][:300] + vpl["test"]:
        assert len(record.context.examples) == 8
        assert animal_of(record.chosen) == record.meta["chosen_animal"]
        for example in record.context.examples:
            assert {animal_of(example.chosen), animal_of(example.rejected)} == {"cat", "dog"}
            assert animal_of(example.chosen) == record.user_type
        assert (record.prompt, record.chosen, record.rejected) not in {
            (e.prompt, e.chosen, e.rejected) for e in record.context.examples}
        assert record.controversial == (record.meta["pair_type"] in CONTROVERSIAL_TYPES)


def test_pets_ood_from_vpl_lists_trains_on_dog_cat_and_tests_200_bird_rabbit_users() -> None:
    result = build_dataset("pets-ood", PetsConfig(source="vpl", vpl_path=str(CHECKOUT), n_train=100, n_test=20))
    splits = result.splits
    assert {k: len(v) for k, v in splits.items()} == {"train": 200, "test": 40, "ood": 200}
    assert all(r.meta["pair_type"] in CONTROVERSIAL_TYPES for r in splits["train"] + splits["test"])
    assert Counter(r.user_type for r in splits["ood"]) == {"bird": 100, "rabbit": 100}
    test_pool = {s for a in ("bird", "rabbit") for s in lines(a)[80:]}
    for record in splits["ood"]:
        assert {record.chosen, record.rejected} <= test_pool and animal_of(record.chosen) == record.user_type
        assert all(animal_of(e.chosen) == record.user_type for e in record.context.examples)


def test_rows_per_switch_counts_in_all_for_vpl_and_per_type_for_plus_pets() -> None:
    vpl_all = build_dataset("pets", PetsConfig(source="vpl", vpl_path=str(CHECKOUT), n_train=30, n_test=10,
                                               rows_per="all"))
    assert vpl_all.report()["sizes"] == {"train": 30, "test": 10}
    plus = build_dataset("pets", PetsConfig(n_train=40, n_test=8, rows_per="user_type", n_context=3))
    assert plus.report()["sizes"] == {"train": 80, "test": 16}


def test_the_same_seed_gives_the_same_vpl_records_and_another_seed_others() -> None:
    config = PetsConfig(source="vpl", vpl_path=str(CHECKOUT), n_train=20, n_test=4, seed=3)
    first, again = build_vpl_pets(config), build_vpl_pets(config)
    assert [r.model_dump() for r in first["train"]] == [r.model_dump() for r in again["train"]]
    other = build_vpl_pets(config.model_copy(update={"seed": 4}))
    assert [r.chosen for r in other["train"]] != [r.chosen for r in first["train"]]


def test_a_missing_or_incomplete_vpl_path_names_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"needs vpl_path.*clone VPL's code"):
        build_vpl_pets(PetsConfig(source="vpl"))
    with pytest.raises(SourceError, match=re.escape(f"{tmp_path / 'nowhere'} does not exist")):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(tmp_path / "nowhere")))
    (tmp_path / "birds.txt").write_text("\n".join(lines("bird")), encoding="utf-8")
    with pytest.raises(SourceError, match=r"holds no cats\.txt, dogs\.txt, rabbits\.txt"):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(tmp_path)))
    for animal in ("cat", "dog", "rabbit"):
        (tmp_path / f"{ANIMAL[animal]}.txt").write_text("\n".join(lines(animal)[:80]), encoding="utf-8")
    with pytest.raises(SourceError, match=r"cats\.txt: a sentence list has 80 sentences"):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(tmp_path)))


def test_plus_data_build_pets_source_vpl_gives_the_generators_row_counts(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "pets-vpl"
    done = subprocess.run(
        [sys.executable, "-m", "plus_sdk.cli", "data", "build", "pets", "source=vpl", f"vpl_path={CHECKOUT}",
         "--out", str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["sizes"] == expected_vpl_counts(2000, 200)
    assert json.loads((out / "build.json").read_text())["config"]["source"] == "vpl"
