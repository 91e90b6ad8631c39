"""UltraFeedback-P2 / P4: users who each value one of UltraFeedback's four rated attributes.

Upstream format (``openbmb/UltraFeedback``, one row per instruction)::

    {"instruction": str, "completions": [
        {"response": str,
         "annotations": {"helpfulness": {"Rating": "4", ...}, "honesty": {"Rating": "5", ...},
                         "instruction_following": {"Rating": "3", ...},
                         "truthfulness": {"Rating": "N/A", ...}}}, ...], ...}

Ratings are strings "1".."5" (integers are accepted too); "N/A" or a missing rating is missing.

How records are built:

1. Completions missing a rating of any of the four attributes are dropped; a row left with
   fewer than two completions, or that is not shaped as above, is skipped and counted.
2. Held-out split by instruction text: 10 % of the distinct instructions (``random.Random(42)``)
   go to ``test``; no test instruction appears anywhere in ``train`` (targets or contexts).
3. Response pairs as in argilla's binarized UltraFeedback: the completion with the highest mean
   rating against a random completion with a strictly lower mean (``pairs="all"``: every pair).
4. Each user type values one attribute; its label prefers the response rated higher on it,
   a tie is broken by a seeded coin. P-2 = {helpfulness, honesty}, P-4 = all four.
5. ``controversial_only`` keeps pairs whose labels are not the same for every user type.
6. Every (pair, user type) becomes one record of a fresh synthetic user of that type. Its context
   holds pairs of the same split (never the target's instruction) labelled by the same type:
   P-2 8 pairs; P-4 2-8 pairs, redrawn until exactly one user type fits them (a type fits when it
   rates no context chosen reply below its rejected one).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator
from tqdm.auto import tqdm

from plus_sdk.training.config import StrictConfig
from plus_sdk.training.data.records import TrainingRecord
from plus_sdk.training.data.result import BuildResult, cap
from plus_sdk.training.data.upstream import iter_rows
from plus_sdk.types import PreferenceExample, UserContext

logger = logging.getLogger(__name__)

ATTRIBUTES: tuple[str, ...] = ("helpfulness", "honesty", "instruction_following", "truthfulness")
VARIANTS: dict[str, tuple[str, ...]] = {"uf-p2": ("helpfulness", "honesty"), "uf-p4": ATTRIBUTES}

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


class UltraFeedbackConfig(StrictConfig):
    """How UltraFeedback-P2/P4 is built."""

    source: str = Field(
        default="openbmb/UltraFeedback", description="Hub name, or a local JSONL/JSON/Parquet file or folder."
    )
    variant: Literal["uf-p2", "uf-p4"] = Field(default="uf-p2", description="'uf-p2' (2 user types) or 'uf-p4' (4).")
    pairs: Literal["binarized", "all"] = Field(
        default="binarized", description="Best-vs-random-lower pair per instruction, or all pairs."
    )
    controversial_only: bool = Field(default=True, description="Keep only pairs the user types disagree on.")
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0, description="Share of instructions held out as test.")
    split_seed: int = Field(default=42, description="Seed of the held-out split.")
    seed: int = Field(default=0, description="Seed of pairing, tie-breaking and context sampling.")
    n_context_min: int | None = Field(
        default=None, ge=1, description="Fewest context pairs (default 8 for P-2, 2 for P-4)."
    )
    n_context_max: int | None = Field(default=None, ge=1, description="Most context pairs (default 8).")
    identifiable_context: bool | None = Field(
        default=None, description="Redraw contexts until exactly one user type fits (default: P-4 only)."
    )
    max_context_tries: int = Field(default=100, ge=1, description="Context draws before a record is skipped.")
    max_rows: int | None = Field(default=None, ge=1, description="Read at most this many upstream rows.")
    max_train: int | None = Field(default=None, ge=1, description="Cap on train records (seeded subset).")
    max_test: int | None = Field(default=None, ge=1, description="Cap on test records (seeded subset).")

    @model_validator(mode="after")
    def _variant_defaults(self) -> UltraFeedbackConfig:
        p4 = self.variant == "uf-p4"
        if self.n_context_min is None:
            object.__setattr__(self, "n_context_min", 2 if p4 else 8)
        if self.n_context_max is None:
            object.__setattr__(self, "n_context_max", max(8, self.n_context_min or 0))
        if self.identifiable_context is None:
            object.__setattr__(self, "identifiable_context", p4)
        if (self.n_context_min or 0) > (self.n_context_max or 0):
            raise ValueError(f"n_context_min ({self.n_context_min}) is above n_context_max ({self.n_context_max})")
        return self


@dataclass(frozen=True)
class _Completion:
    response: str
    ratings: dict[str, int]


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


def _rating(value: Any) -> int | None:
    try:
        number = int(float(str(value).strip()))
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 else None


def _parse_row(row: dict[str, Any] | None, skipped: Counter[str]) -> tuple[str, list[_Completion]] | None:
    """(instruction, usable completions), or ``None`` with the reason counted in ``skipped``."""
    if not isinstance(row, dict) or not isinstance(row.get("instruction"), str) or not row["instruction"].strip():
        skipped["malformed_rows"] += 1
        return None
    completions = row.get("completions")
    if not isinstance(completions, list):
        skipped["malformed_rows"] += 1
        return None
    usable: list[_Completion] = []
    for completion in completions:
        annotations = completion.get("annotations") if isinstance(completion, dict) else None
        response = completion.get("response") if isinstance(completion, dict) else None
        if not isinstance(annotations, dict) or not isinstance(response, str) or not response.strip():
            skipped["malformed_completions"] += 1
            continue
        ratings = {
            attr: _rating(annotations.get(attr, {}).get("Rating") if isinstance(annotations.get(attr), dict) else None)
            for attr in ATTRIBUTES
        }
        if any(value is None for value in ratings.values()):
            skipped["completions_missing_ratings"] += 1
            continue
        usable.append(_Completion(response=response.strip(), ratings=ratings))  # type: ignore[arg-type]
    if len({c.response for c in usable}) < 2:
        skipped["rows_with_fewer_than_2_rated_completions"] += 1
        return None
    return row["instruction"].strip(), usable


def _instruction_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).lower().encode("utf-8")).hexdigest()[:16]


def _make_pair(key: str, row: int, prompt: str, a: _Completion, b: _Completion, rng: random.Random) -> _Pair:
    labels, ties = {}, []
    for attr in ATTRIBUTES:
        if a.ratings[attr] == b.ratings[attr]:
            ties.append(attr)
            labels[attr] = rng.randrange(2)
        else:
            labels[attr] = 0 if a.ratings[attr] > b.ratings[attr] else 1
    return _Pair(key=key, row=row, prompt=prompt, a=a, b=b, labels=labels, ties=tuple(ties))


def _pairs_of(
    key: str, row: int, prompt: str, completions: list[_Completion], mode: str, rng: random.Random
) -> list[_Pair]:
    """Response pairs of one instruction (identical responses never pair up)."""
    if mode == "all":
        combos = [(a, b) for i, a in enumerate(completions) for b in completions[i + 1 :] if a.response != b.response]
        return [_make_pair(key, row, prompt, a, b, rng) for a, b in combos]
    mean = {id(c): sum(c.ratings.values()) / len(ATTRIBUTES) for c in completions}
    top = max(mean.values())
    best = rng.choice([c for c in completions if mean[id(c)] == top])
    lower = [c for c in completions if mean[id(c)] < top and c.response != best.response]
    if not lower:
        return []
    return [_make_pair(key, row, prompt, best, rng.choice(lower), rng)]


def _oriented(pair: _Pair, attr: str) -> tuple[_Completion, _Completion]:
    """(chosen, rejected) of the pair for a user who values ``attr``."""
    return (pair.a, pair.b) if pair.labels[attr] == 0 else (pair.b, pair.a)


def fitting_types(pairs: list[_Pair], user_type: str, types: tuple[str, ...]) -> list[str]:
    """User types that rate no chosen reply (as ``user_type`` labels them) below the rejected one."""
    fits = []
    for other in types:
        if all(c.ratings[other] >= r.ratings[other] for c, r in (_oriented(p, user_type) for p in pairs)):
            fits.append(other)
    return fits


def _sample_context(
    pool: list[_Pair],
    target: _Pair,
    user_type: str,
    types: tuple[str, ...],
    config: UltraFeedbackConfig,
    rng: random.Random,
) -> list[_Pair] | None:
    assert config.n_context_min is not None and config.n_context_max is not None
    for _ in range(config.max_context_tries):
        k = rng.randint(config.n_context_min, config.n_context_max)
        draw = rng.sample(pool, min(len(pool), k + 8))
        picked = [p for p in draw if p.key != target.key][:k]
        if len(picked) < k:
            continue
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


def load_pairs(config: UltraFeedbackConfig, skipped: Counter[str]) -> list[_Pair]:
    """Every usable response pair of the upstream file, with all four attribute labels."""
    rng = random.Random(f"uf-pairs/{config.seed}")
    pairs: list[_Pair] = []
    for index, row in enumerate(tqdm(iter_rows(config.source), desc="UltraFeedback rows", disable=None)):
        if config.max_rows is not None and index >= config.max_rows:
            break
        parsed = _parse_row(row, skipped)
        if parsed is None:
            continue
        prompt, completions = parsed
        made = _pairs_of(_instruction_key(prompt), index, prompt, completions, config.pairs, rng)
        if not made:
            skipped["rows_without_a_lower_rated_completion"] += 1
        pairs += made
    return pairs


def held_out_keys(pairs: list[_Pair], fraction: float, seed: int) -> set[str]:
    """Instruction keys of the held-out split: ``fraction`` of the distinct instructions."""
    keys = sorted({p.key for p in pairs})
    random.Random(seed).shuffle(keys)
    return set(keys[: math.ceil(fraction * len(keys))]) if len(keys) > 1 else set()


def build_ultrafeedback(config: UltraFeedbackConfig | None = None, **overrides: Any) -> BuildResult:
    """UF-P2 or UF-P4 train/test records from ``config.source`` (see the module docstring)."""
    given = config.model_dump(exclude_unset=True) if config is not None else {}
    config = UltraFeedbackConfig.model_validate({**given, **overrides})
    types = VARIANTS[config.variant]
    skipped: Counter[str] = Counter()
    pairs = load_pairs(config, skipped)
    if not pairs:
        raise ValueError(f"{config.source}: no usable UltraFeedback rows (skipped: {dict(skipped)})")
    if config.controversial_only:
        kept = [p for p in pairs if len({p.labels[t] for t in types}) > 1]
        skipped["pairs_all_users_agree"] += len(pairs) - len(kept)
        pairs = kept
        if not pairs:
            raise ValueError(
                f"{config.source}: no pair on which the {config.variant} user types disagree; "
                "set controversial_only=false to keep agreed pairs"
            )
    test_keys = held_out_keys(pairs, config.test_fraction, config.split_seed)
    pools = {"train": [p for p in pairs if p.key not in test_keys], "test": [p for p in pairs if p.key in test_keys]}
    rng = random.Random(f"uf-records/{config.seed}")
    limits = {"train": config.max_train, "test": config.max_test}
    splits: dict[str, list[TrainingRecord]] = {}
    for split, pool in pools.items():
        targets = [(p, t) for p in pool for t in types]
        targets = cap(targets, limits[split], rng)
        records = []
        for pair, attr in tqdm(targets, desc=f"{config.variant} {split}", disable=None):
            context = _sample_context(pool, pair, attr, types, config, rng)
            if context is None:
                skipped[f"{split}_targets_without_an_identifying_context"] += 1
                continue
            records.append(_record(config.variant, split, len(records), pair, attr, context, types))
        splits[split] = records
    result = BuildResult(
        splits=splits,
        skipped=skipped,
        info={"user_types": list(types), "pairs": {k: len(v) for k, v in pools.items()}, "config": config.model_dump()},
    )
    result.log_skips(config.variant)
    return result
