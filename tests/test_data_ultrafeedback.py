"""UltraFeedback-P2/P4 builder on fixture files laid out exactly as openbmb/UltraFeedback (and, for
the pair file, argilla/ultrafeedback-binarized-preferences-cleaned)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from plus_sdk.training.data.ultrafeedback import (
    ATTRIBUTES,
    VARIANTS,
    UltraFeedbackConfig,
    _Completion,
    _completion,
    _Pair,
    _Row,
    build_ultrafeedback,
    fitting_types,
    labelled,
    make_pair,
)

RATED = dict(zip(ATTRIBUTES, (4, 4, 4, 4), strict=True))


def completion(text: str, ratings: dict[str, object]) -> dict:
    """One upstream completion; ratings are strings, "N/A" when the annotator gave none."""
    known = [int(v) for v in ratings.values() if v != "N/A"]
    annotations = {}
    for attr in ATTRIBUTES:
        note = {"Rating": str(ratings[attr]), "Rationale": f"notes on {attr}"}
        if attr in ("helpfulness", "truthfulness"):
            note |= {"Rationale For Rating": "short reason", "Type": ["1", "3"]}
        annotations[attr] = note
    return {
        "annotations": annotations,
        "critique": "A fair answer with room to grow.",
        "custom_system_prompt": "You are a careful assistant.",
        "fine-grained_score": sum(known) / len(known) if known else 0.0,
        "model": "some-chat-model",
        "overall_score": 6.5,
        "principle": "helpfulness",
        "response": text,
    }


def row(instruction: str, completions: list[dict], source: str = "evol_instruct") -> dict:
    return {
        "source": source,
        "instruction": instruction,
        "models": [c["model"] for c in completions],
        "completions": completions,
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
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
        rows.append(row(f"Question number {i}?", completions))
    return rows, ratings_of


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def rated(h: object, o: object, i: object, t: object) -> dict[str, object]:
    return dict(zip(ATTRIBUTES, (h, o, i, t), strict=True))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, int]]]:
    rows, ratings_of = random_rows(300, seed=5)
    return write_jsonl(tmp_path_factory.mktemp("uf") / "ultrafeedback.jsonl", rows), ratings_of


def strictly_labelled(records, ratings_of) -> None:
    for record in records:
        attr = record.user_type
        assert ratings_of[record.chosen][attr] > ratings_of[record.rejected][attr]
        for example in record.context.examples:  # the context is labelled by the same user type
            assert ratings_of[example.chosen][attr] > ratings_of[example.rejected][attr]


def test_truthfulqa_prompts_are_left_out_unless_asked_for(tmp_path):
    rows, _ = random_rows(40, seed=3)
    rows += [
        row(f"Is myth {k} true?", [completion(f"yes {k}", rated(5, 2, 5, 2)), completion(f"no {k}", rated(1, 5, 1, 4))],
            source="truthful_qa")
        for k in range(5)
    ]
    path = write_jsonl(tmp_path / "uf.jsonl", rows)
    result = build_ultrafeedback(source=str(path), controversial_only=False)
    assert result.skipped["rows_from_truthful_qa"] == 5
    assert not any("myth" in r.prompt for split in result.splits.values() for r in split)
    kept = build_ultrafeedback(source=str(path), controversial_only=False, exclude_sources=[], test_fraction=0.5)
    assert any("myth" in r.prompt for split in kept.splits.values() for r in split)


def test_the_best_reply_is_picked_before_na_ratings_drop_the_pair(tmp_path):
    # the best mean (5.0 over three ratings) has an N/A: the pair is dropped, not rebuilt from the others
    special = row("Name a prime.", [
        completion("Seven is prime.", rated(5, 5, 5, "N/A")),
        completion("Nine is prime.", rated(2, 4, 3, 2)),
        completion("Four is prime.", rated(1, 3, 1, 1)),
    ])
    rows, _ = random_rows(40, seed=4)
    path = write_jsonl(tmp_path / "uf.jsonl", [special, *rows])
    result = build_ultrafeedback(source=str(path), controversial_only=False, ties="coin", test_fraction=0.02)
    assert not any(r.prompt == "Name a prime." for split in result.splits.values() for r in split)
    counts = result.info["counts"]
    assert sum(c["pairs"] - c["pairs_with_all_ratings"] for c in counts.values()) == 1


SPECIAL = [  # three hand-made instructions, one binarized pair each
    row("Tie on honesty", [completion("tho a", rated(5, 3, 5, 1)), completion("tho b", rated(1, 3, 1, 5))]),
    row("Tie on truthfulness", [completion("ttr a", rated(5, 1, 5, 2)), completion("ttr b", rated(1, 5, 1, 2))]),
    row("No tie", [completion("nt a", rated(5, 1, 5, 1)), completion("nt b", rated(1, 5, 1, 4))]),
]


def test_pairs_tied_on_an_attribute_of_the_variant_are_dropped(tmp_path):
    rows, _ = random_rows(60, seed=8)
    path = write_jsonl(tmp_path / "uf.jsonl", [*SPECIAL, *rows])
    special = {r["instruction"] for r in SPECIAL}

    def kept(variant: str) -> set[str]:
        result = build_ultrafeedback(source=str(path), variant=variant, identifiable_context=False, train_repeats=1)
        return {r.prompt for split in result.splits.values() for r in split} & special

    assert kept("uf-p2") == {"Tie on truthfulness", "No tie"}  # truthfulness is not a P-2 attribute
    assert kept("uf-p4") == {"No tie"}


def test_the_build_counts_pairs_before_and_after_the_tie_filter():
    rows = [_Row(key=r["instruction"], index=i, prompt=r["instruction"],
                 completions=[_completion(c) for c in r["completions"]]) for i, r in enumerate(SPECIAL)]
    rng = random.Random(0)
    pairs = [make_pair(r, r.completions[0], r.completions[1], rng) for r in rows]
    for variant, after in (("uf-p2", 2), ("uf-p4", 1)):
        counts: Counter[str] = Counter()
        labelled(pairs, VARIANTS[variant], UltraFeedbackConfig(variant=variant), counts)
        assert counts == {"pairs": 3, "pairs_with_all_ratings": 3, "pairs_after_tie_filter": after, "pairs_kept": after}


def test_with_coin_ties_a_tied_label_is_a_seeded_coin(tmp_path):
    rows = [
        row(f"Tie question {i}", [
            completion(f"first reply {i}", rated(3, 5, 4, 4)),
            completion(f"second reply {i}", rated(3, 1, 2, 2)),
        ])
        for i in range(60)
    ]
    path = write_jsonl(tmp_path / "ties.jsonl", rows)
    config = UltraFeedbackConfig(
        source=str(path), controversial_only=False, ties="coin", n_context_min=2, n_context_max=2,
        identifiable_context=False, train_repeats=1,
    )
    records = build_ultrafeedback(config).splits["train"]
    helpful = [r for r in records if r.user_type == "helpfulness"]
    assert all(r.meta["tie_broken"] and r.meta["ties"] == ["helpfulness"] for r in helpful)
    assert all(r.chosen.startswith("first") for r in records if r.user_type == "honesty")
    firsts = sum(r.chosen.startswith("first") for r in helpful)
    assert 10 < firsts < len(helpful) - 10  # both outcomes occur
    assert [r.chosen for r in build_ultrafeedback(config).splits["train"]] == [r.chosen for r in records]
    assert [r.chosen for r in build_ultrafeedback(config, seed=1).splits["train"]] != [r.chosen for r in records]


def test_a_tie_fits_no_user_type():
    a = _Completion("a", rated(5, 3, 4, 2))
    b = _Completion("b", rated(2, 3, 4, 4))
    pair = _Pair(key="k", row=0, prompt="p", a=a, b=b,
                 labels={"helpfulness": 0, "honesty": 0, "instruction_following": 1, "truthfulness": 1},
                 ties=("honesty", "instruction_following"))
    # labelled by helpfulness, a is chosen: helpfulness fits (5 > 2); honesty and instruction-following tie
    assert fitting_types([pair], "helpfulness", ATTRIBUTES) == ["helpfulness"]
    # labelled by truthfulness, b is chosen: only truthfulness rates b strictly higher
    assert fitting_types([pair], "truthfulness", ATTRIBUTES) == ["truthfulness"]


def test_p2_contexts_hold_2_to_4_pool_pairs_and_train_targets_repeat_8_times(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p2")
    train, test = result.splits["train"], result.splits["test"]
    strictly_labelled(train + test, ratings_of)
    assert {len(r.context.examples) for r in train + test} == {2, 3, 4}  # the paper's 2-4 past examples
    targets = Counter((r.prompt, r.chosen, r.user_type) for r in train)
    assert set(targets.values()) == {8}
    assert set(Counter((r.prompt, r.chosen, r.user_type) for r in test).values()) == {1}
    assert len(train) == 8 * 2 * result.info["pairs"]["train"]
    assert all(r.controversial for r in train + test)
    # contexts: one fixed pool of at most 100 train pairs, for train and test targets alike
    pool = {(e.prompt, frozenset((e.chosen, e.rejected))) for r in train + test for e in r.context.examples}
    assert len(pool) <= result.info["context_pool"] == min(100, result.info["pairs"]["train"])
    small = build_ultrafeedback(source=str(path), variant="uf-p2", context_pool=10, max_train=300)
    records = small.splits["train"] + small.splits["test"]
    assert len({e.prompt for r in records for e in r.context.examples}) <= 10
    train_prompts = {r.prompt for r in train}
    assert {p for p, _ in pool} <= train_prompts
    assert all(e.prompt != r.prompt for r in train + test for e in r.context.examples)
    assert not {r.prompt for r in test} & train_prompts


def test_the_split_holds_out_10_percent_of_instructions_with_seed_42(upstream):
    path, _ = upstream
    first = build_ultrafeedback(source=str(path), max_train=50)
    keys = {r.meta["instruction_key"] for r in first.splits["test"]}
    assert 0 < len(keys) <= 30  # 10 % of the 300 instructions, minus those whose pairs were filtered
    other = build_ultrafeedback(source=str(path), max_train=50, split_seed=7)
    assert {r.meta["instruction_key"] for r in other.splits["test"]} != keys


def test_p4_contexts_identify_exactly_one_user_type(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p4", max_train=200, max_test=40)
    records = result.splits["train"] + result.splits["test"]
    assert {r.user_type for r in records} == set(ATTRIBUTES)
    strictly_labelled(records, ratings_of)
    for record in records:
        assert 2 <= len(record.context.examples) <= 4
        fitting = [
            t for t in ATTRIBUTES
            if all(ratings_of[e.chosen][t] > ratings_of[e.rejected][t] for e in record.context.examples)
        ]
        assert fitting == [record.user_type]
    assert set(Counter((r.prompt, r.chosen, r.user_type) for r in result.splits["train"]).values()) <= {1, 2, 3, 4}


def test_binarized_pairs_take_the_best_mean_against_a_lower_one(upstream):
    path, ratings_of = upstream
    result = build_ultrafeedback(source=str(path), controversial_only=False, ties="coin")
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


def argilla_row(upstream_row: dict, chosen: dict, rejected: dict) -> dict:
    """One row of the cleaned binarized set: chat messages and mean ratings of both replies."""
    def messages(reply: dict) -> list[dict]:
        return [{"content": upstream_row["instruction"], "role": "user"},
                {"content": reply["response"], "role": "assistant"}]

    return {
        "source": upstream_row["source"],
        "prompt": upstream_row["instruction"],
        "chosen": messages(chosen),
        "chosen-rating": chosen["fine-grained_score"],
        "chosen-model": chosen["model"],
        "rejected": messages(rejected),
        "rejected-rating": rejected["fine-grained_score"],
        "rejected-model": rejected["model"],
    }


def test_pairs_from_the_cleaned_binarized_file_are_joined_to_their_ratings(tmp_path):
    rows, ratings_of = random_rows(60, seed=9)
    picks = [argilla_row(r, r["completions"][0], r["completions"][3]) for r in rows]
    picks.append(argilla_row(rows[0], rows[0]["completions"][1], completion("never rated", RATED)))
    pairs_file = write_jsonl(tmp_path / "cleaned.jsonl", picks)
    ratings = write_jsonl(tmp_path / "uf.jsonl", rows)
    result = build_ultrafeedback(source=str(ratings), pairs_source=str(pairs_file), controversial_only=False,
                                 ties="coin", train_repeats=1)
    assert result.skipped["pair_rows_not_found_in_source"] == 1
    for record in result.splits["train"] + result.splits["test"]:
        assert {record.chosen[:8], record.rejected[:8]} == {"Answer 0", "Answer 3"}
        attr = record.user_type
        assert ratings_of[record.chosen][attr] >= ratings_of[record.rejected][attr]


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    rows, _ = random_rows(30, seed=2)
    rows[1]["completions"] = rows[1]["completions"][:1]
    del rows[2]["completions"]
    bad_lines = ["{not json", json.dumps(["a", "list"]), json.dumps({"instruction": "", "completions": []})]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows + bad_lines)
    result = build_ultrafeedback(source=str(path), controversial_only=False, ties="coin")
    skipped = result.report()["skipped"]
    assert skipped["rows_without_a_lower_rated_completion"] == 1
    assert skipped["malformed_rows"] == 4  # no completions, invalid JSON, a list, an empty instruction
    assert result.splits["train"]
    with pytest.raises(ValueError, match="no usable UltraFeedback rows"):
        build_ultrafeedback(source=str(write_jsonl(tmp_path / "bad.jsonl", bad_lines)))


def test_arrow_folder_source_gives_the_same_records(upstream, tmp_path):
    from datasets import Dataset

    path, _ = upstream
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "uf_arrow"))
    config = dict(max_train=50, max_test=10)
    from_jsonl = build_ultrafeedback(source=str(path), **config).splits
    from_arrow = build_ultrafeedback(source=str(tmp_path / "uf_arrow"), **config).splits
    assert [r.model_dump() for r in from_arrow["train"]] == [r.model_dump() for r in from_jsonl["train"]]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="n_context_min"):
        UltraFeedbackConfig(n_context_min=5, n_context_max=3)


def test_stats_of_a_built_folder_show_the_pair_counts_users_per_type_and_context_sizes(upstream, tmp_path):
    from plus_sdk.training.data.build import write_dataset
    from plus_sdk.training.data.stats import dataset_stats

    path, _ = upstream
    result = build_ultrafeedback(source=str(path), variant="uf-p4", max_train=120, max_test=40)
    write_dataset(result, tmp_path / "uf-p4")
    stats = dataset_stats(tmp_path / "uf-p4")
    for split in ("train", "test"):
        counts = stats[split]["build_counts"]
        assert counts == result.info["counts"][split]
        assert counts["pairs"] >= counts["pairs_with_all_ratings"] >= counts["pairs_after_tie_filter"]
        assert counts["pairs_after_tie_filter"] >= counts["pairs_kept"] > 0
        assert counts["records"] == stats[split]["rows"]
        assert stats[split]["controversial_share"] == 1.0
        assert set(stats[split]["users_per_type"]) == set(ATTRIBUTES)
        assert 2 <= stats[split]["context_pairs"]["min"] <= stats[split]["context_pairs"]["max"] <= 4
