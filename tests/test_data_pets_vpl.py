"""Pets built as VPL's generator builds it (``source=vpl``), on a fixture in VPL's layout.

The fixture (``tests/fixtures/vpl_checkout``) is a fake checkout in VPL's layout: the module
``hidden_context/data_utils/simple_templates.py`` with the lists ``bird_sentences``,
``cat_sentences``, ``dog_sentences`` and ``rabbit_sentences`` (and one list the builder ignores),
neutral facts written for this project. The lists hold 84, 86, 88 and 90 sentences, so the test
pools (the sentences after the first 80) have 4, 6, 8 and 10.
"""

from __future__ import annotations

import ast
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
MODULE = CHECKOUT / "hidden_context" / "data_utils" / "simple_templates.py"
ANIMAL = {"bird": "bird_sentences", "cat": "cat_sentences", "dog": "dog_sentences", "rabbit": "rabbit_sentences"}
LISTS = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(MODULE.read_text()).body
         if isinstance(node, ast.Assign)}


def lines(animal: str) -> list[str]:
    return LISTS[ANIMAL[animal]]


def module_text(lists: dict[str, list[str]]) -> str:
    return "".join(f"{name} = {values!r}\n" for name, values in lists.items())


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


def test_contexts_hold_8_controversial_rows_labelled_by_the_same_user_type_drawn_with_replacement(vpl) -> None:
    repeats = 0
    for record in vpl["train"] + vpl["test"]:
        assert len(record.context.examples) == 8
        assert animal_of(record.chosen) == record.meta["chosen_animal"]
        for example in record.context.examples:
            assert {animal_of(example.chosen), animal_of(example.rejected)} == {"cat", "dog"}
            assert animal_of(example.chosen) == record.user_type
        assert (record.prompt, frozenset((record.chosen, record.rejected))) not in {
            (e.prompt, frozenset((e.chosen, e.rejected))) for e in record.context.examples}
        assert record.controversial == (record.meta["pair_type"] in CONTROVERSIAL_TYPES)
        repeats += len(record.context.examples) > len({(e.chosen, e.rejected) for e in record.context.examples})
    # with replacement, as VPL: ~1,000 test rows' worth of draws from ~100 test controversial rows repeat often
    assert repeats > 0


def test_both_user_types_get_the_same_rows_and_context_draws_as_vpls_seeded_runs(vpl) -> None:
    for split in ("train", "test"):
        cats, dogs = (sorted((r for r in vpl[split] if r.user_type == t), key=lambda r: r.meta["vpl_row"])
                      for t in ("cat", "dog"))
        for cat, dog in zip(cats, dogs, strict=True):
            assert cat.meta["vpl_row"] == dog.meta["vpl_row"]
            assert {cat.chosen, cat.rejected} == {dog.chosen, dog.rejected}
            assert cat.meta["pair_type"] == dog.meta["pair_type"]
            assert [{e.chosen, e.rejected} for e in cat.context.examples] == [
                {e.chosen, e.rejected} for e in dog.context.examples]
            flipped = cat.meta["pair_type"] in CONTROVERSIAL_TYPES
            assert (cat.chosen == dog.chosen) != flipped


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
    with pytest.raises(SourceError, match=r"holds no simple_templates\.py"):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(tmp_path)))
    module = tmp_path / "simple_templates.py"
    module.write_text(module_text({"bird_sentences": lines("bird")}), encoding="utf-8")
    with pytest.raises(SourceError, match=r"defines no cat_sentences, dog_sentences, rabbit_sentences"):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(tmp_path)))
    module.write_text(module_text({f"{a}_sentences": lines(a)[:80] if a == "cat" else lines(a) for a in ANIMAL}),
                      encoding="utf-8")
    with pytest.raises(SourceError, match=r"cat_sentences: a sentence list has 80 sentences"):
        build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(module)))


def test_the_sentence_module_is_read_without_running_it(tmp_path: Path) -> None:
    module = tmp_path / "simple_templates.py"
    lists = {f"{a}_sentences": lines(a) for a in ANIMAL}
    module.write_text("raise SystemExit('must not run')\n" + module_text(lists), encoding="utf-8")
    built = build_vpl_pets(PetsConfig(source="vpl", vpl_path=str(module), n_train=4, n_test=2))
    assert {k: len(v) for k, v in built.items()} == {"train": 8, "test": 4}


def test_plus_data_build_pets_source_vpl_gives_the_generators_row_counts(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "pets-vpl"
    done = subprocess.run(
        [sys.executable, "-m", "plus_sdk.cli", "data", "build", "pets", "source=vpl", f"vpl_path={CHECKOUT}",
         "--out", str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["sizes"] == expected_vpl_counts(2000, 200)
    assert json.loads((out / "build.json").read_text())["config"]["source"] == "vpl"
