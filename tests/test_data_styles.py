"""The styles dataset: hand-written material, one-axis pairs, users, splits without leaks."""

from __future__ import annotations

import random
import re

import pytest

from plus_sdk.training.data.styles import (
    AXES,
    Style,
    StylesConfig,
    axis_pair,
    build_styles,
    names_side,
    oracle_text,
    render,
    split_items,
)
from plus_sdk.training.data.styles_items import StyleItem, load_all

ITEMS = [item for domain in load_all() for item in domain.items]
BY_ID = {item.id: item for item in ITEMS}


@pytest.fixture(scope="module")
def built():
    return build_styles(StylesConfig(n_train=600, n_test=200))


def _pieces(item: StyleItem) -> list[str]:
    core = [getattr(getattr(item.core, lvl), tone) for lvl in ("beginner", "expert") for tone in ("formal", "casual")]
    return [item.prompt, *core, *item.detail, item.example, item.principle, item.numbers, item.qualitative,
            item.caveat, item.question]


def test_the_shipped_material_has_400_prompts_in_at_least_12_domains_and_code_where_it_fits():
    domains = load_all()
    assert len(domains) >= 12
    assert len(ITEMS) >= 400
    assert len({item.prompt for item in ITEMS}) == len(ITEMS)
    assert sum(item.code is not None for item in ITEMS) >= 100


def test_at_least_eight_axes_each_with_two_sides_and_the_required_ones():
    assert len(AXES) >= 8
    assert {"length", "tone", "format", "code"} <= set(AXES)
    assert len(set(AXES) - {"length", "tone", "format", "code"}) >= 4
    for axis in AXES.values():
        assert len(set(axis.sides)) == 2


def test_no_test_prompt_and_no_sentence_of_a_test_reply_appears_in_train(built):
    def texts(record):
        return [record.prompt, record.chosen, record.rejected] + [
            f"{e.prompt}\n{e.chosen}\n{e.rejected}" for e in record.context.examples]

    train_text = "\n".join("\n".join(texts(r)) for r in built["train"])
    test_items = {r.meta["item"] for r in built["test"]}
    test_items |= {i for r in built["test"] for i in [r.meta.get("off_topic_item")] if i}
    assert test_items and not test_items & {r.meta["item"] for r in built["train"]}
    for item_id in test_items:
        for piece in _pieces(BY_ID[item_id]):
            assert piece not in train_text, f"{item_id}: {piece!r} leaks into train"


def test_the_split_holds_out_a_share_of_every_domain():
    train, test = split_items(ITEMS, 0.2, seed=0)
    assert not {i.id for i in train} & {i.id for i in test}
    domains = {i.id.rsplit("-", 1)[0] for i in ITEMS}
    assert domains == {i.id.rsplit("-", 1)[0] for i in test}


def test_the_same_seed_gives_the_same_records_and_another_seed_other_ones():
    a = build_styles(StylesConfig(n_train=40, n_test=20, seed=3))
    b = build_styles(StylesConfig(n_train=40, n_test=20, seed=3))
    c = build_styles(StylesConfig(n_train=40, n_test=20, seed=4))
    assert [r.model_dump() for r in a["train"]] == [r.model_dump() for r in b["train"]]
    assert [r.chosen for r in a["train"]] != [r.chosen for r in c["train"]]


def test_a_pair_differs_only_on_its_axis():
    item = next(i for i in ITEMS if i.code)
    base = Style({"level": "expert", "tone": "casual", "length": "concise"})
    concise, detailed = axis_pair(item, "length", base, "seed")
    assert detailed.startswith(concise) and all(d in detailed for d in item.detail)
    formal, casual = axis_pair(item, "tone", base, "seed")
    assert formal.replace(item.core.expert.formal, item.core.expert.casual) == casual
    code, no_code = axis_pair(item, "code", base, "seed")
    assert "```" in code and "```" not in no_code and code.startswith(no_code)
    caveat, direct = axis_pair(item, "caveats", base, "seed")
    assert caveat == f"{direct} {item.caveat}"
    beginner, expert = axis_pair(item, "level", base, "seed")
    assert beginner == item.core.beginner.casual and expert == item.core.expert.casual
    concrete, abstract = axis_pair(item, "example", base, "seed")
    assert concrete.replace(item.example, item.principle) == abstract
    numbers, qualitative = axis_pair(item, "numbers", base, "seed")
    assert re.search(r"\d", numbers.replace(item.core.expert.casual, "")) and numbers.replace(
        item.numbers, item.qualitative) == qualitative
    clarify, immediate = axis_pair(item, "clarify", base, "seed")
    assert clarify.startswith(item.question) and clarify.endswith(immediate)
    bullets, prose = axis_pair(item, "format", base, "seed")
    assert "\n" in bullets and "\n" not in prose
    assert set(re.findall(r"\w+", bullets)) - set(re.findall(r"\w+", prose)) <= {str(n) for n in range(1, 10)}


def test_list_markers_vary_so_no_single_token_gives_the_list_side_away():
    item = ITEMS[0]
    style = Style({"format": "bullets", "length": "detailed"})
    firsts = {render(item, style, random.Random(seed)).splitlines()[-1][:2] for seed in range(40)}
    assert len(firsts) >= 3


def test_every_axis_record_is_labelled_by_the_users_side(built):
    for record in built["train"] + built["test"]:
        if record.meta["pair_kind"] != "axis":
            continue
        axis, side = record.meta["axis"], record.meta["side"]
        assert [axis, side] in record.meta["preferences"]
        item = BY_ID[record.meta["item"]]
        if axis == "length":
            assert (len(record.chosen) < len(record.rejected)) == (side == "concise")
        elif axis == "code":
            assert ("```" in record.chosen) == (side == "code")
        elif axis == "caveats":
            assert (item.caveat in record.chosen) == (side == "caveats")
        elif axis == "clarify":
            assert record.chosen.startswith(item.question) == (side == "clarify")
        elif axis == "example":
            assert (item.example in record.chosen) == (side == "concrete")
        elif axis == "numbers":
            assert (item.numbers in record.chosen) == (side == "numbers")
        elif axis == "level":
            assert (item.core.beginner.formal in record.chosen or item.core.beginner.casual in record.chosen) == (
                side == "beginner")
        elif axis == "tone":
            assert (item.core.beginner.casual in record.chosen or item.core.expert.casual in record.chosen) == (
                side == "casual")
        elif axis == "format":
            assert ("\n" in record.chosen.strip()) == (side == "bullets")


def test_contexts_hold_pairs_on_the_users_axes_and_never_the_target_prompt(built):
    for record in built["test"][:80]:
        assert len(record.context.examples) == 8
        prompts = [e.prompt for e in record.context.examples]
        assert record.prompt not in prompts and len(set(prompts)) == len(prompts)
        assert record.oracle == oracle_text([tuple(p) for p in record.meta["preferences"]])


def test_agreed_pairs_reject_a_reply_written_for_another_prompt_and_are_not_controversial(built):
    agreed = [r for r in built["train"] if r.meta["pair_kind"] == "agreed"]
    assert 0.05 < len(agreed) / len(built["train"]) < 0.3
    for record in agreed:
        assert not record.controversial
        other = BY_ID[record.meta["off_topic_item"]]
        assert other.core.beginner.formal in record.rejected or other.core.beginner.casual in record.rejected or \
            other.core.expert.formal in record.rejected or other.core.expert.casual in record.rejected
    assert all(r.controversial for r in built["train"] if r.meta["pair_kind"] == "axis")


def test_users_and_sides_are_balanced_and_some_users_prefer_two_axes(built):
    sides = {}
    for record in built["train"]:
        first = tuple(record.meta["preferences"][0])
        sides[first] = sides.get(first, 0) + 1
    assert len(sides) == 2 * len(AXES)
    assert max(sides.values()) <= 2 * min(sides.values())
    assert any(len(r.meta["preferences"]) == 2 for r in built["train"])


def test_a_summary_names_a_side_only_with_its_keywords_and_none_of_the_others():
    assert names_side("The user wants short, to the point replies.", "length", "concise")
    assert not names_side("The user wants short but detailed replies.", "length", "concise")
    assert not names_side("The user likes cats.", "tone", "casual")


def test_bad_sizes_name_the_setting_to_change():
    with pytest.raises(ValueError, match="n_context"):
        build_styles(StylesConfig(n_train=4, n_test=4, n_context=16, test_share=0.02))


def test_a_twin_prefers_every_other_side_on_the_same_pairs_reversed() -> None:
    from plus_sdk.training.data.styles import flipped_side

    plain = build_styles(StylesConfig(n_train=40, n_test=8, n_context=3, seed=1))
    twinned = build_styles(StylesConfig(n_train=40, n_test=8, n_context=3, seed=1, twins=True))
    assert len(twinned["train"]) == 40 and twinned["test"] == plain["test"]
    first = [r for r in twinned["train"] if r.user_id == "styles-train-0000"]
    twin = [r for r in twinned["train"] if r.user_id == "styles-train-0000-twin"]
    assert first == plain["train"][:4] and len(twin) == 4
    for mine, theirs in zip(first, twin, strict=True):
        assert theirs.meta["preferences"] == [[a, flipped_side(a, s)] for a, s in mine.meta["preferences"]]
        assert theirs.oracle != mine.oracle and theirs.prompt == mine.prompt
        assert [(e.prompt, e.chosen, e.rejected) for e in theirs.context.examples] == \
            [(e.prompt, e.rejected, e.chosen) for e in mine.context.examples]
        if mine.controversial:
            assert (theirs.chosen, theirs.rejected) == (mine.rejected, mine.chosen)
        else:  # both users agree on an on-topic reply over an off-topic one
            assert (theirs.chosen, theirs.rejected) == (mine.chosen, mine.rejected)
    assert flipped_side("length", "concise") == "detailed"
