"""PRISM settings: ``PrismConfig`` and its preset.

``preset="table6"`` fills every setting the caller did not give with the PLUS paper's Table 6
setting: each seen user's last conversation is held out as ``test`` (Table 6 scores the held-out
conversations of the training users), the 308 unseen users go to ``ood`` (App. F, Table 9), and
the paper's sizes (train 20k, test 1k). What it chose is logged and kept in ``build.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plus_sdk.training.config import StrictConfig

PRESETS: tuple[str, ...] = ("table6",)


def preset_values(preset: str | None) -> dict[str, Any]:
    """The settings a PRISM preset chooses (``{}`` without one)."""
    if preset is None:
        return {}
    if preset != "table6":
        raise ValueError(f"preset {preset!r} is unknown; use one of {', '.join(PRESETS)}")
    return {"seen_test_conversations": 1, "unseen_split": "ood", "max_train": 20_000, "max_test": 1_000}


class PrismConfig(StrictConfig):
    """How the PRISM records are built."""

    source: str = Field(
        default="HannahRoseKirk/prism-alignment",
        description="Hub name, or a local folder with survey.jsonl and conversations.jsonl (or utterances.jsonl).",
    )
    min_conversations: int = Field(default=6, ge=1, description="Keep users with at least this many conversations.")
    unseen_fraction: float = Field(
        default=308 / 1308, gt=0.0, lt=1.0, description="Share of kept users held out as unseen (test)."
    )
    n_unseen_users: int | None = Field(default=None, ge=1, description="Number of unseen users (overrides the share).")
    seen_test_conversations: int = Field(
        default=0, ge=0, description="Last conversations of each seen user that go to test instead of train."
    )
    n_context: int = Field(default=3, ge=1, description="Past pairs in each context.")
    tied_scores: Literal["drop", "keep"] = Field(
        default="drop", description="A reply scored the same as the chosen one, at any turn: not paired (drop), "
        "or paired (keep)."
    )
    seed: int = Field(default=0, description="Seed of context sampling and caps.")
    split_seed: int = Field(default=42, description="Seed of the seen/unseen user split.")
    max_train: int | None = Field(default=None, ge=1, description="Cap on train records (seeded subset).")
    max_test: int | None = Field(default=None, ge=1, description="Cap on test records (seeded subset).")
    preset: Literal["table6"] | None = Field(
        default=None, description="Fill the settings not given from a preset: 'table6' (held-out sixth "
        "conversations of seen users as test, unseen users as ood, the paper's sizes); None: defaults.")
    unseen_split: Literal["test", "ood"] = Field(
        default="test", description="Where the unseen users' records go: 'test' (App. F) or 'ood' (next to a "
        "test split of seen users' held-out conversations, Table 6).")
    empty_reply_text: str | None = Field(
        default=None, description="PRISM stores an empty reply as 'EMPTY STRING'. None (default): a pair with "
        "an empty reply is not made; a text: such pairs are kept (a real choice) with this text for the reply.")

    @model_validator(mode="after")
    def _preset(self) -> PrismConfig:
        for name, value in preset_values(self.preset).items():
            if name not in self.model_fields_set:  # given settings win over the preset
                object.__setattr__(self, name, value)
        return self


def preset_report(config: PrismConfig) -> dict[str, Any]:
    """What the config's preset chose (settings given explicitly are not the preset's)."""
    chosen = preset_values(config.preset)
    return {"name": config.preset, "chose": {k: getattr(config, k) for k in chosen if k not in config.model_fields_set},
            "overridden": sorted(k for k in chosen if k in config.model_fields_set)}
