"""PRISM's Table 6 preset, real choices against empty replies, and score ties after the opening
turn, on fixture files in the prism-alignment layout (helpers of ``test_data_prism``).

Fixture quirks: u1-c2 turn 1 has its *chosen* reply stored as "EMPTY STRING"; u2-c3 turn 1 has
two different replies with the same score; u3-c4 turn 0 has a rejected "EMPTY STRING" reply.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_data_prism import conversation, prefs, write_lines

from plus_sdk.training.data.prism import PrismConfig, build_prism
from plus_sdk.training.data.prism_config import preset_report, preset_values

EMPTY = "(the model gave an empty reply)"
QUIRKY = ("u1-c2", "u2-c3", "u3-c4")  # one pair fewer each by default


@pytest.fixture(scope="module")
def quirks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prism-quirks")
    survey = [{"user_id": f"u{k}", "stated_prefs": prefs(k)} for k in range(8)]
    conversations = [conversation(f"u{k}", c) for k in range(8) for c in range(6)]
    by_id = {c["conversation_id"]: c for c in conversations}
    history = by_id["u1-c2"]["conversation_history"]
    history[6]["content"] = "EMPTY STRING"  # turn 1, reply 0: the chosen one
    history = by_id["u2-c3"]["conversation_history"]
    history[7]["score"] = history[6]["score"]  # turn 1: the rejected reply ties with the chosen one
    by_id["u3-c4"]["conversation_history"][4]["content"] = "EMPTY STRING"  # turn 0, reply 3 (rejected)
    write_lines(folder / "survey.jsonl", survey)
    write_lines(folder / "conversations.jsonl", conversations)
    return folder


def turns_of(result, conversation_id: str) -> list[tuple[int, str]]:
    return sorted((r.meta["turn"], r.rejected) for split in result.splits.values() for r in split
                  if r.meta["conversation_id"] == conversation_id)


def test_the_table6_preset_holds_out_sixth_conversations_as_test_and_unseen_users_as_ood() -> None:
    assert preset_values("table6") == {"seen_test_conversations": 1, "unseen_split": "ood", "max_train": 20_000,
                                       "max_test": 1_000}
    config = PrismConfig(preset="table6", max_test=50)
    assert (config.seen_test_conversations, config.unseen_split, config.max_test) == (1, "ood", 50)
    assert preset_report(config) == {"name": "table6", "chose": {"seen_test_conversations": 1,
                                                                 "unseen_split": "ood", "max_train": 20_000},
                                     "overridden": ["max_test"]}


def test_table6_counts_and_split_on_the_fixture(quirks_dir: Path) -> None:
    result = build_prism(PrismConfig(source=str(quirks_dir), preset="table6", n_unseen_users=2))
    train, test, ood = (result.splits[s] for s in ("train", "test", "ood"))
    assert {r.meta["user_split"] for r in test} == {"seen"} and {r.meta["user_split"] for r in ood} == {"unseen"}
    assert all(r.meta["conversation_id"].endswith("-c5") for r in test)
    assert len({r.user_id for r in ood}) == 2 and not {r.user_id for r in ood} & {r.user_id for r in train}
    assert {r.user_id for r in test} == {r.user_id for r in train}  # the same (seen) users
    # 4 pairs per conversation (3 at turn 0, 1 at turn 1): 6 seen users' sixth conversations, 2 unseen x 6
    pairs = {f"u{k}-c{c}": 3 if f"u{k}-c{c}" in QUIRKY else 4 for k in range(8) for c in range(6)}
    unseen = {r.user_id for r in ood}
    counts = result.info["counts"]
    assert counts["test"]["records"] == len(test) == 6 * 4
    assert counts["ood"]["records"] == len(ood) == sum(n for cid, n in pairs.items() if cid.split("-")[0] in unseen)
    assert len(train) == sum(n for cid, n in pairs.items() if cid.split("-")[0] not in unseen and "-c5" not in cid)
    assert result.info["preset"]["name"] == "table6"


def test_a_score_tie_after_the_opening_turn_is_not_paired_unless_kept(quirks_dir: Path) -> None:
    dropped = build_prism(PrismConfig(source=str(quirks_dir), n_unseen_users=2))
    assert [t for t, _ in turns_of(dropped, "u2-c3")] == [0, 0, 0]
    kept = build_prism(PrismConfig(source=str(quirks_dir), n_unseen_users=2, tied_scores="keep"))
    assert (1, "u2-c3 t1 reply 1") in turns_of(kept, "u2-c3")
    assert sum(c["pairs_before_tie_filter"] - c["pairs_after_tie_filter"] for c in dropped.info["counts"].values()) == 1


def test_empty_replies_are_never_paired_by_default(quirks_dir: Path) -> None:
    result = build_prism(PrismConfig(source=str(quirks_dir), n_unseen_users=2))
    assert [t for t, _ in turns_of(result, "u3-c4")] == [0, 0, 1]  # the empty rejected reply gives no pair
    assert [t for t, _ in turns_of(result, "u1-c2")] == [0, 0, 0]  # an empty chosen reply: no pair at turn 1
    assert result.skipped["turns_with_an_empty_chosen_reply"] == 1 and not result.skipped["turns_malformed"]


def test_with_an_empty_reply_text_real_choices_against_empty_replies_are_kept(quirks_dir: Path) -> None:
    result = build_prism(PrismConfig(source=str(quirks_dir), n_unseen_users=2, empty_reply_text=EMPTY))
    assert (0, EMPTY) in turns_of(result, "u3-c4")  # the user chose a real reply over the empty one
    chosen_empty = [r for split in result.splits.values() for r in split
                    if r.meta["conversation_id"] == "u1-c2" and r.meta["turn"] == 1]
    assert [(r.chosen, r.rejected) for r in chosen_empty] == [(EMPTY, "u1-c2 t1 reply 1")]
    assert not result.skipped["turns_with_an_empty_chosen_reply"]
