"""UltraFeedback-P2 / P4: users who each value one of UltraFeedback's four rated attributes.

Upstream ratings (``openbmb/UltraFeedback``, one row per instruction)::

    {"source": "evol_instruct", "instruction": str, "models": [...], "completions": [
        {"response": str, "model": str, ...,
         "annotations": {"helpfulness": {"Rating": "4", ...}, "honesty": {"Rating": "5", ...},
                         "instruction_following": {"Rating": "3", ...},
                         "truthfulness": {"Rating": "N/A", ...}}}, ...], ...}

Ratings are strings "1".."5" (integers are accepted too); "N/A" or a missing rating is missing.
Optional pair file (``pairs_source``, e.g. ``argilla/ultrafeedback-binarized-preferences-cleaned``):
rows ``{"source", "prompt", "chosen": [{"role", "content"}, ...], "rejected": [...], ...}``.

How records are built (defaults follow the paper, and VPL's code where the paper is silent):

1. Rows whose ``source`` is in ``exclude_sources`` (TruthfulQA) are skipped.
2. Held-out split: 10 % of the distinct instructions (``random.Random(42)``) go to ``test``.
3. Pairs as in argilla's cleaned binarized set: the completion with the highest mean rating
   (over the ratings it has) against a random completion with a strictly lower mean; or, with
   ``pairs_source``, exactly the pairs of that file, joined back to the fine-grained ratings.
   ``pairs="all"`` takes every pair instead. Then a pair is dropped when either reply misses
   any of the four ratings (VPL's order: binarize first, drop "N/A" after).
4. Each user type values one attribute; its label prefers the reply rated higher on it.
   ``ties="drop"`` drops pairs tied on any attribute of the variant; ``ties="coin"`` keeps them
   and breaks each tie with a seeded coin, as VPL's released ``ultrafeedback_augment.py`` does.
   P-2 = {helpfulness, honesty}, P-4 = all four.
5. ``controversial_only`` keeps pairs whose labels are not the same for every user type.
6. Every (pair, user type) becomes one record of a fresh synthetic user of that type, repeated
   ``train_repeats`` times in train with fresh contexts. A context holds 2-4 pairs (paper)
   drawn from a fixed pool of ``context_pool`` (100) train pairs, the same pool for test targets,
   never the target's instruction, labelled by the same type; for P-4 redrawn until exactly one
   user type fits (a type fits when it rates every chosen context reply strictly above the
   rejected one).

Switches toward VPL's code (all set at once by ``preset="vpl"``, see ``ultrafeedback_config``):
``max_tokens`` (length filter, ``ultrafeedback_vpl``), ``split="rows"``, ``exclude_target_instruction``,
``controversial_over``, ``ties`` and the context sizes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from tqdm.auto import tqdm

from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.result import BuildResult, cap
from plus_sdk.training.data.ultrafeedback_config import ATTRIBUTES, VARIANTS, UltraFeedbackConfig, preset_report
from plus_sdk.training.data.ultrafeedback_vpl import load_length_tokenizer, row_split, with_token_counts
from plus_sdk.training.data.upstream import iter_rows
from plus_sdk.types import PreferenceExample, UserContext

logger = logging.getLogger(__name__)

#: the true description of each user type, for oracle models
ORACLES: dict[str, str] = {
    "helpfulness": "This user prefers the reply that helps most: useful, informative and complete.",
    "honesty": (
        "This user prefers the most honest reply: one that is candid about its uncertainty and "
        "does not pretend to know what it does not."
    ),
    "instruction_following": "This user prefers the reply that follows their instructions most closely.",
    "truthfulness": "This user prefers the most truthful reply: accurate, with no made-up facts.",
}


@dataclass(frozen=True)
class _Completion:
    response: str
    ratings: dict[str, int | None]

    @property
    def complete(self) -> bool:
        return all(value is not None for value in self.ratings.values())

    @property
    def mean(self) -> float | None:
        known = [v for v in self.ratings.values() if v is not None]
        return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class _Row:
    key: str
    index: int
    prompt: str
    completions: list[_Completion]


@dataclass(frozen=True)
class _Pair:
    """Two completions of one instruction; ``labels[attr]`` is 0 if the attribute prefers ``a``."""

    key: str
    row: int
    prompt: str
    a: _Completion
    b: _Completion
    labels: dict[str, int]
    ties: tuple[str, ...]
    tokens: int | None = None  # the longer of VPL's two texts, when the length filter counts them
    file_row: int | None = None  # the row of the pair file it came from (VPL's split draws these rows)


def _rating(value: Any) -> int | None:
    try:
        number = int(float(str(value).strip()))
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 else None


def _instruction_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).lower().encode("utf-8")).hexdigest()[:16]


def _completion(raw: Any) -> _Completion | None:
    annotations = raw.get("annotations") if isinstance(raw, dict) else None
    response = raw.get("response") if isinstance(raw, dict) else None
    if not isinstance(annotations, dict) or not isinstance(response, str) or not response.strip():
        return None
    ratings = {
        attr: _rating(annotations[attr].get("Rating")) if isinstance(annotations.get(attr), dict) else None
        for attr in ATTRIBUTES
    }
    return _Completion(response=response.strip(), ratings=ratings)


def _parse_row(
    row: dict[str, Any] | None, index: int, config: UltraFeedbackConfig, skipped: Counter[str]
) -> _Row | None:
    """An upstream row with its completions (missing ratings kept as ``None``), or ``None`` counted."""
    if not isinstance(row, dict) or not isinstance(row.get("instruction"), str) or not row["instruction"].strip():
        skipped["malformed_rows"] += 1
        return None
    if row.get("source") in config.exclude_sources:
        skipped[f"rows_from_{row['source']}"] += 1
        return None
    if not isinstance(row.get("completions"), list):
        skipped["malformed_rows"] += 1
        return None
    completions = []
    for raw in row["completions"]:
        parsed = _completion(raw)
        if parsed is None:
            skipped["malformed_completions"] += 1
        else:
            completions.append(parsed)
    prompt = row["instruction"].strip()
    return _Row(key=_instruction_key(prompt), index=index, prompt=prompt, completions=completions)


def read_rows(config: UltraFeedbackConfig, skipped: Counter[str]) -> list[_Row]:
    """The usable rows of the upstream ratings file."""
    rows = []
    for index, row in enumerate(tqdm(iter_rows(config.source), desc="UltraFeedback rows", disable=None)):
        if config.max_rows is not None and index >= config.max_rows:
            break
        parsed = _parse_row(row, index, config, skipped)
        if parsed is not None:
            rows.append(parsed)
    return rows


def make_pair(row: _Row, a: _Completion, b: _Completion, rng: random.Random) -> _Pair:
    """A pair with all four labels; a tied attribute gets a seeded coin (the ``ties`` setting may drop it)."""
    labels, ties = {}, []
    for attr in ATTRIBUTES:
        if a.ratings[attr] == b.ratings[attr] or a.ratings[attr] is None or b.ratings[attr] is None:
            ties.append(attr)
            labels[attr] = rng.randrange(2)
        else:
            labels[attr] = 0 if a.ratings[attr] > b.ratings[attr] else 1  # type: ignore[operator]
    return _Pair(key=row.key, row=row.index, prompt=row.prompt, a=a, b=b, labels=labels, ties=tuple(ties))


def binarized_pair(row: _Row, rng: random.Random) -> tuple[_Completion, _Completion] | None:
    """argilla's rule: the best mean rating against a random reply with a strictly lower mean."""
    ranked = [c for c in row.completions if c.mean is not None]
    if not ranked:
        return None
    top = max(c.mean for c in ranked)  # type: ignore[type-var]
    best = rng.choice([c for c in ranked if c.mean == top])
    lower = [c for c in ranked if c.mean < top and c.response != best.response]  # type: ignore[operator]
    return (best, rng.choice(lower)) if lower else None


def _rebuilt_pairs(rows: list[_Row], mode: str, rng: random.Random, skipped: Counter[str]) -> list[_Pair]:
    pairs = []
    for row in rows:
        if mode == "all":
            combos = [(a, b) for i, a in enumerate(row.completions) for b in row.completions[i + 1 :]]
            pairs += [make_pair(row, a, b, rng) for a, b in combos if a.response != b.response]
            continue
        picked = binarized_pair(row, rng)
        if picked is None:
            skipped["rows_without_a_lower_rated_completion"] += 1
        else:
            pairs.append(make_pair(row, *picked, rng))
    return pairs


def _last_reply(messages: Any) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        return content.strip() if isinstance(content, str) and content.strip() else None
    return None


def _file_pairs(
    rows: list[_Row], config: UltraFeedbackConfig, rng: random.Random, skipped: Counter[str]
) -> tuple[list[_Pair], int]:
    """The pairs of ``config.pairs_source``, each joined to its two rated completions in ``rows``, and the
    number of rows the file has."""
    by_key = {row.key: row for row in rows}
    pairs = []
    file_row = -1
    for file_row, item in enumerate(tqdm(iter_rows(config.pairs_source or ""), desc="UltraFeedback pairs",
                                         disable=None)):
        prompt = item.get("prompt") if isinstance(item, dict) else None
        chosen, rejected = (
            (_last_reply(item.get("chosen")), _last_reply(item.get("rejected"))) if prompt else (None, None)
        )
        if not isinstance(prompt, str) or chosen is None or rejected is None:
            skipped["pair_rows_malformed"] += 1
            continue
        if item.get("source") in config.exclude_sources:
            skipped[f"pair_rows_from_{item['source']}"] += 1
            continue
        row = by_key.get(_instruction_key(prompt))
        texts = {c.response: c for c in row.completions} if row else {}
        if chosen not in texts or rejected not in texts:
            skipped["pair_rows_not_found_in_source"] += 1
            continue
        pair = make_pair(row, texts[chosen], texts[rejected], rng)  # type: ignore[arg-type]
        pairs.append(replace(pair, file_row=file_row))
    return pairs, file_row + 1


def labelled(
    pairs: Iterable[_Pair], types: tuple[str, ...], config: UltraFeedbackConfig, counts: Counter[str]
) -> list[_Pair]:
    """Drop pairs missing a rating, too long ones (``max_tokens``), tied ones (``ties="drop"``), then agreed
    ones (over the variant's types, or all four attributes); counting each step."""
    pairs = list(pairs)
    counts["pairs"] += len(pairs)
    pairs = [p for p in pairs if p.a.complete and p.b.complete]
    counts["pairs_with_all_ratings"] += len(pairs)
    if config.max_tokens is not None:
        pairs = [p for p in pairs if p.tokens is None or p.tokens <= config.max_tokens]
        counts["pairs_within_length"] += len(pairs)
    if config.ties == "drop":
        pairs = [p for p in pairs if not set(p.ties) & set(types)]
    counts["pairs_after_tie_filter"] += len(pairs)
    over = ATTRIBUTES if config.controversial_over == "all" else types
    if config.controversial_only:
        pairs = [p for p in pairs if len({p.labels[t] for t in over}) > 1]
    counts["pairs_kept"] += len(pairs)
    return pairs


def _oriented(pair: _Pair, attr: str) -> tuple[_Completion, _Completion]:
    """(chosen, rejected) of the pair for a user who values ``attr``."""
    return (pair.a, pair.b) if pair.labels[attr] == 0 else (pair.b, pair.a)


def fitting_types(pairs: list[_Pair], user_type: str, types: tuple[str, ...]) -> list[str]:
    """User types that rate every chosen reply (as ``user_type`` labels them) strictly above the rejected one."""
    oriented = [_oriented(p, user_type) for p in pairs]
    return [t for t in types if all((c.ratings[t] or 0) > (r.ratings[t] or 0) for c, r in oriented)]


def _sample_context(
    pool: list[_Pair],
    target: _Pair,
    user_type: str,
    types: tuple[str, ...],
    config: UltraFeedbackConfig,
    rng: random.Random,
) -> list[_Pair] | None:
    if config.exclude_target_instruction:
        candidates = [p for p in pool if p.key != target.key]
    else:  # VPL: any pool pair but the target itself (a record never holds its own pair)
        texts = (target.prompt, {target.a.response, target.b.response})
        candidates = [p for p in pool if (p.prompt, {p.a.response, p.b.response}) != texts]
    for _ in range(config.max_context_tries):
        k = rng.randint(config.n_context_min, config.n_context_max)
        if len(candidates) < k:
            return None
        picked = rng.sample(candidates, k)
        if not config.identifiable_context or fitting_types(picked, user_type, types) == [user_type]:
            return picked
    return None


def _record(
    dataset: str, split: str, index: int, pair: _Pair, attr: str, context: list[_Pair], types: tuple[str, ...]
) -> TrainingRecord:
    user_id = f"{dataset}-{split}-{index:06d}"
    examples = []
    for p in context:
        chosen, rejected = _oriented(p, attr)
        examples.append(PreferenceExample(prompt=p.prompt, chosen=chosen.response, rejected=rejected.response))
    chosen, rejected = _oriented(pair, attr)
    return TrainingRecord(
        dataset=dataset,
        split=split,  # type: ignore[arg-type]
        user_id=user_id,
        user_type=attr,
        oracle=ORACLES[attr],
        context=UserContext(user_id=user_id, examples=examples),
        prompt=pair.prompt,
        chosen=chosen.response,
        rejected=rejected.response,
        controversial=len({pair.labels[t] for t in types}) > 1,
        meta={
            "instruction_key": pair.key,
            "source_row": pair.row,
            "ratings": {"chosen": chosen.ratings, "rejected": rejected.ratings},
            "ties": list(pair.ties),
            "tie_broken": attr in pair.ties,
            "n_context": len(context),
        },
    )


def held_out_keys(keys: Iterable[str], fraction: float, seed: int) -> set[str]:
    """Instruction keys of the held-out split: ``fraction`` of the distinct instructions."""
    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    return set(ordered[: math.ceil(fraction * len(ordered))]) if len(ordered) > 1 else set()


def _records(
    split: str,
    targets: list[tuple[_Pair, str]],
    pool: list[_Pair],
    types: tuple[str, ...],
    config: UltraFeedbackConfig,
    rng: random.Random,
    skipped: Counter[str],
) -> list[TrainingRecord]:
    records: list[TrainingRecord] = []
    for pair, attr in tqdm(targets, desc=f"{config.variant} {split}", disable=None):
        context = _sample_context(pool, pair, attr, types, config, rng)
        if context is None:
            skipped[f"{split}_targets_without_a_context"] += 1
            continue
        records.append(_record(config.variant, split, len(records), pair, attr, context, types))
    return records


def build_ultrafeedback(config: UltraFeedbackConfig | None = None, **overrides: Any) -> BuildResult:
    """UF-P2 or UF-P4 train/test records from ``config.source`` (see the module docstring)."""
    given = config.model_dump(exclude_unset=True) if config is not None else {}
    config = UltraFeedbackConfig.model_validate({**given, **overrides})
    types = VARIANTS[config.variant]
    if config.preset:
        logger.info("%s: preset %s chose %s", config.variant, config.preset, preset_report(config)["chose"])
    skipped: Counter[str] = Counter()
    rows = read_rows(config, skipped)
    if not rows:
        raise ValueError(f"{config.source}: no usable UltraFeedback rows (skipped: {dict(skipped)})")
    rng = random.Random(f"uf-pairs/{config.seed}")
    if config.pairs_source:
        all_pairs, n_file_rows = _file_pairs(rows, config, rng, skipped)
    else:
        all_pairs = _rebuilt_pairs(rows, config.pairs, rng, skipped)
        n_file_rows = len(all_pairs)
    length_tokenizer = None
    if config.max_tokens is not None:
        tokenizer, length_tokenizer = load_length_tokenizer(config.length_tokenizer)
        all_pairs = with_token_counts(all_pairs, tokenizer)
    if config.split == "rows":  # VPL: a share of the pair file's rows (or of the rebuilt pairs), in their order
        test_rows = row_split(n_file_rows, config.test_fraction, config.split_seed)
        held_out = [(i if p.file_row is None else p.file_row) in test_rows for i, p in enumerate(all_pairs)]
    else:
        test_keys = held_out_keys((row.key for row in rows), config.test_fraction, config.split_seed)
        held_out = [p.key in test_keys for p in all_pairs]
    counts: dict[str, Counter[str]] = {"train": Counter(), "test": Counter()}
    pools = {
        split: labelled(
            (p for p, out in zip(all_pairs, held_out, strict=True) if out == (split == "test")),
            types, config, counts[split],
        )
        for split in ("train", "test")
    }
    if not pools["train"]:
        raise ValueError(
            f"{config.source}: no train pair survives the filters ({dict(counts['train'])}); "
            "set ties=coin or controversial_only=false to keep more pairs"
        )
    rng = random.Random(f"uf-records/{config.seed}")
    train = pools["train"]
    context_pool = rng.sample(train, min(config.context_pool, len(train))) if config.context_pool else None
    limits = {"train": config.max_train, "test": config.max_test}
    splits: dict[str, list[TrainingRecord]] = {}
    for split, pool in pools.items():
        repeats = config.train_repeats if split == "train" else 1
        targets = cap([(p, t) for _ in range(repeats or 1) for p in pool for t in types], limits[split], rng)
        splits[split] = _records(split, targets, context_pool or pool, types, config, rng, skipped)
    for split, records in splits.items():
        counts[split]["records"] = len(records)
        counts[split]["controversial_records"] = sum(r.controversial for r in records)
    result = BuildResult(
        splits=splits,
        skipped=skipped,
        info={
            "user_types": list(types),
            "pairs": {k: len(v) for k, v in pools.items()},
            "counts": {k: dict(v) for k, v in counts.items()},
            "context_pool": len(context_pool) if context_pool else None,
            "preset": preset_report(config),
            "length_tokenizer": length_tokenizer,
            "config": config.model_dump(),
        },
    )
    result.log_skips(config.variant)
    return result
