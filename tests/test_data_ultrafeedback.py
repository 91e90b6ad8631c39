"""UltraFeedback-P2/P4 builder on small fixture files in the upstream openbmb/UltraFeedback format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.ultrafeedback import ATTRIBUTES, UltraFeedbackConfig, build_ultrafeedback


def completion(text: str, ratings: dict[str, object]) -> dict:
    """One upstream completion: ratings are strings as upstream ("N/A" when missing)."""
    return {
        "model": "some-model",
        "principle": "helpfulness",
        "response": text,
        "annotations": {
            attr: {
                "Rating": str(ratings[attr]),
                "Rationale": "because",
                **({"Type": ["0"]} if attr in ("helpfulness", "truthfulness") else {}),
            }
            for attr in ATTRIBUTES
        },
        "critique": "fine",
        "overall_score": 5.0,
        "fine-grained_score": 3.5,
    }


def random_rows(n: int, seed: int) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """``n`` upstream rows with 4 completions of random ratings; also text -> ratings."""
    rng = random.Random(seed)
    rows, ratings_of = [], {}
    for i in range(n):
        completions = []
        for j in range(4):
            ratings = {attr: rng.randint(1, 5) for attr in ATTRIBUTES}
            text = f"Answer {j} to question {i}: {rng.random():.6f}"
            ratings_of[text] = ratings
            completions.append(completion(text, ratings))
        rows.append(
            {
                "source": "evol_instruct",
                "instruction": f"Question number {i}?",
                "models": ["a", "b", "c", "d"],
                "completions": completions,
                "correct_answers": ["None"],
                "incorrect_answers": ["None"],
            }
        )
    return rows, ratings_of


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, int]]]:
    rows, ratings_of = random_rows(200, seed=5)
    return write_jsonl(tmp_path_factory.mktemp("uf") / "ultrafeedback.jsonl", rows), ratings_of


def check_labels(records: list[TrainingRecord], ratings_of: dict[str, dict[str, int]]) -> None:
    for record in records:
        attr = record.user_type
        chosen, rejected = ratings_of[record.chosen][attr], ratings_of[record.rejected][attr]
        assert chosen >= rejected
        assert record.meta["tie_broken"] == (chosen == rejected)
        for example in record.context.examples:  # the context is labelled by the same user type
            assert ratings_of[example.chosen][attr] >= ratings_of[example.rejected][attr]


def test_p2_labels_splits_and_controversial_filter(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(UltraFeedbackConfig(source=str(path), variant="uf-p2", pairs="all"))
    train, test = result.splits["train"], result.splits["test"]
    assert train and test
    assert {r.user_type for r in train} == {"helpfulness", "honesty"}
    check_labels(train + test, ratings_of)
    # every record is controversial: the two user types label the pair differently
    for record in train + test:
        assert record.controversial
        a, b = ratings_of[record.chosen], ratings_of[record.rejected]
        other = "honesty" if record.user_type == "helpfulness" else "helpfulness"
        assert a[other] <= b[other]  # the other type does not strictly prefer this record's chosen reply
        assert len(record.context.examples) == 8 and record.oracle
    # 10 % of the 200 instructions are held out, and no held-out instruction leaks into train
    test_prompts = {r.prompt for r in test}
    train_texts = {r.prompt for r in train} | {e.prompt for r in train for e in r.context.examples}
    assert not test_prompts & train_texts
    assert {e.prompt for r in test for e in r.context.examples} <= {
        f"Question number {i}?" for i in range(200)
    } - train_texts
    assert result.report()["pairs"]["test"] > 0
    assert len({r.meta["instruction_key"] for r in test}) <= 20
    assert result.skipped["pairs_all_users_agree"] > 0


def test_keeping_agreed_pairs_marks_them_not_controversial(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p2", controversial_only=False, max_train=300)
    records = result.splits["train"]
    assert len(records) == 300
    agreed = [r for r in records if not r.controversial]
    assert agreed and "pairs_all_users_agree" not in result.skipped
    for record in agreed:
        a, b = ratings_of[record.chosen], ratings_of[record.rejected]
        assert a["helpfulness"] >= b["helpfulness"] and a["honesty"] >= b["honesty"]


def test_ties_are_broken_by_a_seeded_coin(tmp_path):
    # helpfulness always ties; honesty decides; so the helpfulness user's label is a coin flip
    rows = []
    for i in range(60):
        rows.append(
            {
                "instruction": f"Tie question {i}",
                "completions": [
                    completion(
                        f"first reply {i}",
                        {"helpfulness": 3, "honesty": 5, "instruction_following": 4, "truthfulness": 4},
                    ),
                    completion(
                        f"second reply {i}",
                        {"helpfulness": 3, "honesty": 1, "instruction_following": 2, "truthfulness": 2},
                    ),
                ],
            }
        )
    path = write_jsonl(tmp_path / "ties.jsonl", rows)
    config = UltraFeedbackConfig(
        source=str(path), variant="uf-p2", controversial_only=False, n_context_min=2, n_context_max=2
    )
    records = build_ultrafeedback(config).splits["train"]
    helpful = [r for r in records if r.user_type == "helpfulness"]
    honest = [r for r in records if r.user_type == "honesty"]
    assert all(r.meta["tie_broken"] and r.meta["ties"] == ["helpfulness"] for r in helpful)
    assert all(r.chosen.startswith("first") for r in honest)  # no tie: the higher rating wins
    firsts = sum(r.chosen.startswith("first") for r in helpful)
    assert 10 < firsts < len(helpful) - 10  # both outcomes occur
    assert all(r.controversial == (not r.chosen.startswith("first")) for r in helpful)
    again = build_ultrafeedback(config).splits["train"]
    assert [r.chosen for r in again] == [r.chosen for r in records]
    other_seed = build_ultrafeedback(config, seed=1).splits["train"]
    assert [r.chosen for r in other_seed] != [r.chosen for r in records]


def test_p4_contexts_identify_exactly_one_user_type(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p4", max_train=200, max_test=40)
    records = result.splits["train"] + result.splits["test"]
    assert {r.user_type for r in records} == set(ATTRIBUTES)
    check_labels(records, ratings_of)
    for record in records:
        assert 2 <= len(record.context.examples) <= 8
        fitting = [
            t
            for t in ATTRIBUTES
            if all(ratings_of[e.chosen][t] >= ratings_of[e.rejected][t] for e in record.context.examples)
        ]
        assert fitting == [record.user_type]
    assert len({len(r.context.examples) for r in records}) > 2  # the context size varies


def test_binarized_pairs_take_the_best_mean_against_a_lower_one(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p2", controversial_only=False)
    by_prompt: dict[str, set[str]] = {}
    for record in result.splits["train"]:
        by_prompt.setdefault(record.prompt, set()).update({record.chosen, record.rejected})
    mean = lambda text: sum(ratings_of[text].values())  # noqa: E731
    for prompt, texts in by_prompt.items():
        assert len(texts) == 2  # one pair per instruction
        i = int(prompt.split()[-1].rstrip("?"))
        best = max(mean(t) for t in ratings_of if f"to question {i}:" in t)
        high, low = sorted(texts, key=mean, reverse=True)
        assert mean(high) == best and mean(low) < mean(high)


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    rows, _ = random_rows(30, seed=2)
    rows[0]["completions"][0]["annotations"]["honesty"]["Rating"] = "N/A"
    rows[1]["completions"] = rows[1]["completions"][:1]
    del rows[2]["completions"]
    bad_lines = ["{not json", json.dumps(["a", "list"]), json.dumps({"instruction": "", "completions": []})]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows + bad_lines)
    result = build_ultrafeedback(
        source=str(path), variant="uf-p2", controversial_only=False, n_context_min=2, n_context_max=2
    )
    skipped = result.report()["skipped"]
    assert skipped["completions_missing_ratings"] == 1
    assert skipped["rows_with_fewer_than_2_rated_completions"] == 1
    assert skipped["malformed_rows"] == 4  # no completions, invalid JSON, a list, an empty instruction
    assert result.splits["train"]
    with pytest.raises(ValueError, match="no usable UltraFeedback rows"):
        build_ultrafeedback(source=str(write_jsonl(tmp_path / "bad.jsonl", bad_lines)))


def test_arrow_folder_source_gives_the_same_records(upstream, tmp_path):
    from datasets import Dataset

    path, _ = upstream
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "uf_arrow"))
    config = dict(variant="uf-p2", max_train=50, max_test=10)
    from_jsonl = build_ultrafeedback(source=str(path), **config).splits
    from_arrow = build_ultrafeedback(source=str(tmp_path / "uf_arrow"), **config).splits
    assert [r.model_dump() for r in from_arrow["train"]] == [r.model_dump() for r in from_jsonl["train"]]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="n_context_min"):
        UltraFeedbackConfig(n_context_min=5, n_context_max=3)
