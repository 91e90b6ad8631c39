"""Method names (``method:`` in a train-rm config) → method objects."""

from __future__ import annotations

from typing import Any

from plus_sdk.training.rm.base import RewardMethod
from plus_sdk.training.rm.btl import BTL
from plus_sdk.training.rm.dpl import DPLCategorical, DPLMeanVar
from plus_sdk.training.rm.icl import ICL
from plus_sdk.training.rm.oracle import Oracle
from plus_sdk.training.rm.summary import SummaryMethod

METHODS: tuple[str, ...] = ("btl", "dpl-meanvar", "dpl-categorical", "icl", "summary", "oracle", "vpl")


def make_method(name: str, **options: Any) -> RewardMethod:
    """The LM-based method called ``name`` (``vpl`` is trained by ``VPLTrainer`` instead)."""
    if name == "btl":
        return BTL()
    if name == "dpl-meanvar":
        return DPLMeanVar()
    if name == "dpl-categorical":
        return DPLCategorical()
    if name == "icl":
        return ICL(options.get("max_tokens"))
    if name == "summary":
        return SummaryMethod(adapter=options.get("adapter"), task=options.get("task", "generic"),
                             cache_dir=options.get("cache_dir"), max_new_tokens=options.get("max_new_tokens", 96),
                             batch_size=options.get("batch_size", 8))
    if name == "oracle":
        return Oracle(as_summary=bool(options.get("oracle_as_summary", False)))
    if name == "vpl":
        raise ValueError("method 'vpl' is not an LM reward head; train it with plus_sdk.training.rm.vpl.VPLTrainer")
    raise ValueError(f"method={name!r} is unknown; use one of {', '.join(METHODS)}")
