"""PRISM builder on small fixture files in the upstream prism-alignment format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plus_sdk.training.data.prism import STATED_PREFS, PrismConfig, build_prism


def prefs(k: int) -> dict[str, int]:
    return {name: (k * 7 + 11 * i) % 101 for i, name in enumerate(STATED_PREFS)}


def history_item(turn: int, role: str, content: str, *, score=None, chosen=None, wid=None, model=None) -> dict:
    return {
        "turn": turn,
        "role": role,
        "content": content,
        "model_provider": None if role == "user" else "prov",
        "model_name": model,
        "score": score,
        "if_chosen": chosen,
        "within_turn_id": wid,
    }


def conversation(user: str, c: int) -> dict:
    """Turn 0: one user message, four replies (reply 1 chosen); turn 1: two replies (reply 0 chosen)."""
    cid = f"{user}-c{c}"
    history = [history_item(0, "user", f"{cid} opening question")]
    for w in range(4):
        history.append(
            history_item(
                0,
                "model",
                f"{cid} t0 reply {w}",
                score=90 if w == 1 else 20 + w,
                chosen=(w == 1),
                wid=w,
                model=f"model-{w}",
            )
        )
    history.append(history_item(1, "user", f"{cid} follow-up question"))
    for w in range(2):
        history.append(
            history_item(1, "model", f"{cid} t1 reply {w}", score=70 - 30 * w, chosen=(w == 0), wid=w, model="model-1")
        )
    return {
        "conversation_id": cid,
        "user_id": user,
        "generated_datetime": f"2023-11-{10 + c:02d} 10:00:00",
        "conversation_type": ["unguided", "values guided", "controversy guided"][c % 3],
        "opening_prompt": f"{cid} opening question",
        "conversation_turns": 2,
        "conversation_history": history,
        "performance_attributes": {},
        "open_feedback": "ok",
    }


def utterances(conv: dict) -> list[dict]:
    """The same conversation flattened into upstream utterance rows."""
    rows, prompts = [], {}
    for item in conv["conversation_history"]:
        if item["role"] == "user":
            prompts[item["turn"]] = item["content"]
            continue
        rows.append(
            {
                "utterance_id": f"{conv['conversation_id']}-{item['turn']}-{item['within_turn_id']}",
                "interaction_id": f"{conv['conversation_id']}-{item['turn']}",
                "conversation_id": conv["conversation_id"],
                "user_id": conv["user_id"],
                "turn": item["turn"],
                "within_turn_id": item["within_turn_id"],
                "user_prompt": prompts[item["turn"]],
                "model_response": item["content"],
                "model_name": item["model_name"],
                "model_provider": "prov",
                "score": item["score"],
                "if_chosen": item["chosen"] if "chosen" in item else item["if_chosen"],
                "conversation_type": conv["conversation_type"],
            }
        )
    return rows


def write_lines(path: Path, rows: list) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def prism_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 complete users u0..u9, plus: u10 with 5 conversations, u11 with an incomplete survey,
    u12 survey-only; one bad JSON line; and upstream's quirks: u3-c2 turn 1 has the same reply
    twice, both chosen (and a turn 2 after it); u4-c1 turn 0 has a reply tied with the chosen score;
    u5-c1 turn 0 has an "EMPTY STRING" reply; u6-c1 turn 1 has an "EMPTY STRING" user message."""
    folder = tmp_path_factory.mktemp("prism")
    survey = [
        {
            "user_id": f"u{k}",
            "survey_only": False,
            "num_completed_conversations": 6,
            "stated_prefs": prefs(k),
            "system_string": "Be brief.",
            "self_description": "I like facts.",
            "age": "25-34 years old",
        }
        for k in range(11)
    ]
    survey.append({"user_id": "u11", "survey_only": False, "stated_prefs": {"values": 50}})
    survey.append({"user_id": "u12", "survey_only": True, "stated_prefs": prefs(12)})
    conversations = [conversation(f"u{k}", c) for k in range(10) for c in range(6)]
    conversations += [conversation("u10", c) for c in range(5)] + [conversation("u11", c) for c in range(6)]
    by_id = {c["conversation_id"]: c for c in conversations}
    for item in by_id["u3-c2"]["conversation_history"]:
        if item["turn"] == 1 and item["role"] == "model":
            item.update(content="u3-c2 t1 reply 0", if_chosen=True)
    by_id["u3-c2"]["conversation_history"] += [
        history_item(2, "user", "u3-c2 last question"),
        history_item(2, "model", "u3-c2 t2 reply 0", score=80, chosen=True, wid=0, model="model-1"),
        history_item(2, "model", "u3-c2 t2 reply 1", score=10, chosen=False, wid=1, model="model-2"),
    ]
    by_id["u3-c2"]["conversation_turns"] = 3
    by_id["u4-c1"]["conversation_history"][3]["score"] = 90  # turn 0, reply 2: tied with the chosen reply 1
    by_id["u5-c1"]["conversation_history"][4]["content"] = "EMPTY STRING"  # turn 0, reply 3
    by_id["u6-c1"]["conversation_history"][5]["content"] = "EMPTY STRING"  # turn 1, the user message
    write_lines(folder / "survey.jsonl", survey)
    write_lines(folder / "conversations.jsonl", [*conversations, "{broken json"])
    write_lines(folder / "utterances.jsonl", [u for c in conversations for u in utterances(c)])
    return folder


@pytest.fixture(scope="module")
def built(prism_dir: Path):
    return build_prism(PrismConfig(source=str(prism_dir), n_unseen_users=3, seen_test_conversations=1))


def test_users_are_filtered_and_split_without_leakage(built):
    train, test = built.splits["train"], built.splits["test"]
    kept = {r.user_id for r in train + test}
    assert kept == {f"u{k}" for k in range(10)}  # u10 (5 conversations), u11 (survey), u12 (no chats) dropped
    assert built.info["users"] == {"kept": 10, "seen": 7, "unseen": 3}
    unseen = {r.user_id for r in test if r.meta["user_split"] == "unseen"}
    assert len(unseen) == 3 and not unseen & {r.user_id for r in train}
    # seen users' last conversation is held out: its id never shows up in train targets or contexts
    held_out = {r.meta["conversation_id"] for r in test if r.meta["user_split"] == "seen"}
    assert held_out and all(cid.endswith("-c5") for cid in held_out)
    train_texts = {r.prompt for r in train} | {e.prompt for r in train for e in r.context.examples}
    assert not any(cid in text for cid in held_out for text in train_texts)
    assert not any(uid + "-" in text for uid in unseen for text in train_texts)


def test_pairs_are_the_chosen_reply_against_each_other_reply_with_contexts_from_other_conversations(built):
    records = built.splits["train"] + built.splits["test"]
    for record in records:
        cid, turn = record.meta["conversation_id"], record.meta["turn"]
        assert record.chosen == f"{cid} t{turn} reply {1 if turn == 0 else 0}"
        assert record.rejected.startswith(f"{cid} t{turn} reply ") and record.rejected != record.chosen
        if turn == 0:
            assert record.prompt == f"{cid} opening question"
        else:  # the dialogue so far with the chosen reply only
            assert f"Assistant: {cid} t0 reply 1" in record.prompt and "t0 reply 0" not in record.prompt
            last = "follow-up question" if turn == 1 else "last question"
            assert record.prompt.endswith(f"User: {cid} {last}")
        assert len(record.context.examples) == 3
        turns = set()
        for example in record.context.examples:
            source = example.chosen.split(" t")[0]
            assert source.startswith(record.user_id + "-c") and source != cid  # same user, other conversation
            turns.add((source, example.chosen))
            if record.meta["user_split"] == "seen":
                assert not source.endswith("-c5")  # contexts of seen users come from their training chats
        assert len(turns) == 3  # at most one pair per turn
        assert record.meta["stated_prefs"] == prefs(int(record.user_id[1:]))
        assert "0-100" in record.oracle and "factuality" in record.oracle
        assert record.user_type is None and not record.controversial
    per_conversation: dict[str, list[int]] = {}
    for record in built.splits["train"] + built.splits["test"]:
        per_conversation.setdefault(record.meta["conversation_id"], []).append(record.meta["turn"])
    quirks = {"u3-c2": [0, 0, 0, 2], "u4-c1": [0, 0, 1], "u5-c1": [0, 0, 1], "u6-c1": [0, 0, 0]}
    for cid, turns in per_conversation.items():  # 3 pairs at turn 0 (4 replies), 1 at turn 1 (2 replies)
        assert sorted(turns) == quirks.get(cid, [0, 0, 0, 1])
    assert set(quirks) <= set(per_conversation)


def test_empty_string_texts_never_enter_a_pair(built):
    for record in built.splits["train"] + built.splits["test"]:
        for pair in [record, *record.context.examples]:
            assert "EMPTY STRING" not in pair.prompt + pair.chosen + pair.rejected


def test_identical_replies_give_no_pair_but_the_dialogue_goes_on(built):
    assert built.skipped["turns_with_identical_replies"] == 1
    records = built.splits["train"] + built.splits["test"]
    last = [r for r in records if r.meta["conversation_id"] == "u3-c2" and r.meta["turn"] == 2]
    assert len(last) == 1 and "Assistant: u3-c2 t1 reply 0" in last[0].prompt


def test_replies_tied_with_the_chosen_score_are_dropped_unless_kept(prism_dir, built):
    records = built.splits["train"] + built.splits["test"]
    assert all(r.meta["chosen_score"] != r.meta["rejected_score"] for r in records)
    counts = built.info["counts"]
    assert sum(c["pairs_before_tie_filter"] - c["pairs_after_tie_filter"] for c in counts.values()) == 1
    assert sum(c["pairs_after_tie_filter"] for c in counts.values()) == len(records)
    kept = build_prism(
        PrismConfig(source=str(prism_dir), n_unseen_users=3, seen_test_conversations=1, tied_scores="keep")
    )
    tied = [r for split in kept.splits.values() for r in split if r.meta["chosen_score"] == r.meta["rejected_score"]]
    assert [(r.meta["conversation_id"], r.rejected) for r in tied] == [("u4-c1", "u4-c1 t0 reply 2")]


def test_malformed_turns_and_rows_are_counted(built):
    skipped = built.report()["skipped"]
    assert skipped["turns_malformed"] == 1  # u6-c1 turn 1 has an empty user message
    assert skipped["conversation_rows_malformed"] == 1  # the broken JSON line
    assert skipped["survey_rows_without_all_stated_prefs"] == 1
    assert skipped["users_with_too_few_conversations"] == 1
    assert skipped["users_without_a_complete_survey"] == 1
    turns = {(r.meta["conversation_id"], r.meta["turn"]) for r in built.splits["train"] + built.splits["test"]}
    assert ("u6-c1", 0) in turns and ("u6-c1", 1) not in turns


def test_utterances_without_dates_rebuild_the_same_records_but_cannot_hold_out_the_latest(prism_dir, tmp_path):
    (tmp_path / "survey.jsonl").write_text((prism_dir / "survey.jsonl").read_text())
    (tmp_path / "utterances.jsonl").write_text((prism_dir / "utterances.jsonl").read_text())
    assert "generated_datetime" not in (tmp_path / "utterances.jsonl").read_text()
    rebuilt = build_prism(PrismConfig(source=str(tmp_path), n_unseen_users=3))
    built = build_prism(PrismConfig(source=str(prism_dir), n_unseen_users=3))
    key = lambda r: (r.user_id, r.meta["conversation_id"], r.prompt, r.chosen, r.rejected, r.split)  # noqa: E731
    assert sorted(map(key, rebuilt.splits["train"])) == sorted(map(key, built.splits["train"]))
    assert sorted(map(key, rebuilt.splits["test"])) == sorted(map(key, built.splits["test"]))
    with pytest.raises(ValueError, match="generated_datetime"):
        build_prism(PrismConfig(source=str(tmp_path), n_unseen_users=3, seen_test_conversations=1))


def test_caps_are_seeded_and_bad_sources_are_clear_errors(prism_dir, tmp_path):
    config = PrismConfig(source=str(prism_dir), n_unseen_users=2, max_train=30, max_test=10, seed=4)
    first, again = build_prism(config), build_prism(config)
    assert len(first.splits["train"]) == 30 and len(first.splits["test"]) == 10
    assert [r.model_dump() for r in first.splits["train"]] == [r.model_dump() for r in again.splits["train"]]
    assert not {r.meta["conversation_id"] for r in first.splits["test"]} & {
        r.meta["conversation_id"] for r in first.splits["train"]
    }
    with pytest.raises(ValueError, match="pass the filter"):
        build_prism(source=str(prism_dir), min_conversations=7)
    with pytest.raises(Exception, match=r"survey\.jsonl"):
        build_prism(source=str(tmp_path))
