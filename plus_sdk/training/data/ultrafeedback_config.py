"""UltraFeedback-P2/P4 settings: ``UltraFeedbackConfig`` and its presets.

A preset fills every setting the caller did not give (what it chose is logged by the builder and
kept in ``build.json`` → ``preset``):

* ``preset="vpl"``: VPL's code. Pairs from argilla's cleaned binarized set; a 1,024-token length
  filter on ``"Human: " + prompt + "\\n\\nAssistant: " + reply`` (GPT-2 tokenizer); 10 % of the pair
  file's *rows* held out (legacy numpy, seed 42, rounded down); a target's own instruction may
  appear in its context; P-2 contexts of 8 pairs, P-4 of 2-8. The tie handling follows
  ``vpl_branch``: ``released`` is what VPL's released ``ultrafeedback_augment.py`` runs: ties kept
  and broken by a coin (``filter_equal=False``), a P-2 pair controversial when any two of the
  *four* attributes disagree; ``dev`` drops pairs tied on an attribute of the variant (no stored
  VPL script does exactly this: its ``filter_equal=True`` drops the tied user type's record, not
  the pair; see docs/data.md).
* ``preset="paper"``: the PLUS paper's App. H: 2-4 context pairs, train 10k (P-2) / 40k (P-4)
  records, test 2k; everything else as the default.

No preset: plus-sdk's defaults (the paper's context sizes, VPL's choices where the paper is silent,
split by instructions so that no test instruction is seen in training).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plus_sdk.training.config import StrictConfig

ATTRIBUTES: tuple[str, ...] = ("helpfulness", "honesty", "instruction_following", "truthfulness")
VARIANTS: dict[str, tuple[str, ...]] = {"uf-p2": ("helpfulness", "honesty"), "uf-p4": ATTRIBUTES}
#: training repeats of each target with fresh contexts, per variant (VPL: 8x for P-2, 4x for P-4)
TRAIN_REPEATS: dict[str, int] = {"uf-p2": 8, "uf-p4": 4}

class UltraFeedbackConfig(StrictConfig):
    """How UltraFeedback-P2/P4 is built."""

    source: str = Field(
        default="openbmb/UltraFeedback",
        description="Fine-grained ratings: hub name, or a local JSONL/JSON/Parquet file or folder.",
    )
    pairs_source: str | None = Field(
        default=None,
        description="Optional pair file in the argilla/ultrafeedback-binarized-preferences-cleaned layout; "
        "None rebuilds its pairs from `source` by the same rule.",
    )
    variant: Literal["uf-p2", "uf-p4"] = Field(default="uf-p2", description="'uf-p2' (2 user types) or 'uf-p4' (4).")
    pairs: Literal["binarized", "all"] = Field(
        default="binarized", description="Best-vs-random-lower pair per instruction, or all pairs."
    )
    exclude_sources: list[str] = Field(
        default_factory=lambda: ["truthful_qa"], description="Upstream `source` values to skip (TruthfulQA)."
    )
    ties: Literal["drop", "coin"] = Field(
        default="drop", description="Pairs tied on an attribute of the variant: drop them, or break by a coin."
    )
    controversial_only: bool = Field(default=True, description="Keep only pairs the user types disagree on.")
    test_fraction: float = Field(default=0.1, gt=0.0, lt=1.0,
                                 description="Share of instructions (or rows) held out as test.")
    split_seed: int = Field(default=42, description="Seed of the held-out split.")
    seed: int = Field(default=0, description="Seed of pairing, tie-breaking and context sampling.")
    n_context_min: int = Field(default=2, ge=1, description="Fewest context pairs (paper: 2).")
    n_context_max: int = Field(default=4, ge=1, description="Most context pairs (paper: 4).")
    identifiable_context: bool | None = Field(
        default=None, description="Redraw contexts until exactly one user type fits (default: P-4 only)."
    )
    context_pool: int | None = Field(
        default=100, ge=1, description="Contexts come from this many train pairs (None: the target's whole split)."
    )
    train_repeats: int | None = Field(
        default=None, ge=1, description="Each train target repeated with fresh contexts (default 8 P-2, 4 P-4)."
    )
    preset: Literal["vpl", "paper"] | None = Field(
        default=None, description="Fill the settings not given from a preset: 'vpl' (VPL's code, see vpl_branch) "
        "or 'paper' (the PLUS paper's App. H sizes); None: plus-sdk's defaults.")
    vpl_branch: Literal["dev", "released"] = Field(
        default="dev", description="preset=vpl: tie handling: 'released' as VPL's released script (ties coin-flipped, "
        "P-2's controversial pairs found over all four attributes); 'dev' drops pairs tied on the variant's "
        "attributes (no stored VPL script does exactly this, see docs/data.md).")
    controversial_over: Literal["variant", "all"] = Field(
        default="variant", description="Attributes whose labels must disagree for a pair to be controversial: the "
        "variant's user types, or all four (VPL's released branch).")
    max_tokens: int | None = Field(
        default=None, ge=1, description="Drop a pair when either 'Human: {prompt}\\n\\nAssistant: {reply}' text is "
        "longer than this many tokens of length_tokenizer (VPL: 1024 GPT-2 tokens); None: no length filter.")
    length_tokenizer: str = Field(
        default="gpt2", description="Tokenizer of the length filter (hub id or path); when it cannot be loaded "
        "(offline), the SDK's embedded tokenizer counts instead, with a warning; 'embedded' picks that directly.")
    split: Literal["instructions", "rows"] = Field(
        default="instructions", description="Held-out split: 'instructions' (a share of the distinct instructions, "
        "random.Random(split_seed)) or 'rows' (int(share * n) of the pair file's rows, legacy numpy "
        "RandomState(split_seed).choice, as VPL).")
    exclude_target_instruction: bool = Field(
        default=True, description="Keep pairs of a target's own instruction out of its context (False: only the "
        "identical pair is kept out, as VPL, whose context may hold it).")
    max_context_tries: int = Field(default=100, ge=1, description="Context draws before a record is skipped.")
    max_rows: int | None = Field(default=None, ge=1, description="Read at most this many upstream rows.")
    max_train: int | None = Field(default=None, ge=1, description="Cap on train records (seeded subset).")
    max_test: int | None = Field(default=None, ge=1, description="Cap on test records (seeded subset).")

    @model_validator(mode="after")
    def _variant_defaults(self) -> UltraFeedbackConfig:
        for name, value in preset_values(self.preset, self.variant, self.vpl_branch).items():
            if name not in self.model_fields_set:  # given settings win over the preset
                object.__setattr__(self, name, value)
        p4 = self.variant == "uf-p4"
        if self.identifiable_context is None:
            object.__setattr__(self, "identifiable_context", p4)
        if self.train_repeats is None:
            object.__setattr__(self, "train_repeats", TRAIN_REPEATS[self.variant])
        if self.n_context_min > self.n_context_max:
            raise ValueError(f"n_context_min ({self.n_context_min}) is above n_context_max ({self.n_context_max})")
        return self


#: the cleaned binarized pair set VPL reads
VPL_PAIRS = "argilla/ultrafeedback-binarized-preferences-cleaned"
PRESETS: tuple[str, ...] = ("vpl", "paper")


def preset_values(preset: str | None, variant: str, branch: str = "dev") -> dict[str, Any]:
    """The settings a preset chooses for a variant (``{}`` without a preset)."""
    if preset is None:
        return {}
    if preset == "paper":
        return {"n_context_min": 2, "n_context_max": 4, "max_train": 10_000 if variant == "uf-p2" else 40_000,
                "max_test": 2_000}
    if preset != "vpl":
        raise ValueError(f"preset {preset!r} is unknown; use one of {', '.join(PRESETS)}")
    released = branch == "released"
    return {
        "pairs_source": VPL_PAIRS,
        "max_tokens": 1024,
        "length_tokenizer": "gpt2",
        "split": "rows",
        "exclude_target_instruction": False,
        "n_context_min": 8 if variant == "uf-p2" else 2,
        "n_context_max": 8,
        "ties": "coin" if released else "drop",
        "controversial_over": "all" if released else "variant",
    }


def preset_report(config: UltraFeedbackConfig) -> dict[str, Any]:
    """What a config's preset chose (the settings given explicitly are not the preset's)."""
    chosen = preset_values(config.preset, config.variant, config.vpl_branch)
    return {
        "name": config.preset,
        "vpl_branch": config.vpl_branch if config.preset == "vpl" else None,
        "chose": {k: getattr(config, k) for k in chosen if k not in config.model_fields_set},
        "overridden": sorted(k for k in chosen if k in config.model_fields_set),
    }
