"""The parts of VPL's UltraFeedback pipeline that plus-sdk does not do by default.

* ``row_split``: VPL holds out a share of the pair *rows* (not of the instructions) with numpy's
  generator and seed 42. It draws as ``datasets.Dataset.train_test_split(test_size, seed)`` does:
  ``numpy.random.default_rng(seed).permutation(n)``, the first ``ceil(test_size * n)`` indices
  are test (a test checks this against ``datasets`` itself).
* the length filter: VPL keeps the pairs that fit GPT-2's 1,024-token window. Assumed here: a pair
  is dropped when the prompt's tokens plus either reply's tokens exceed ``max_tokens``.
  ``load_length_tokenizer`` loads the named tokenizer, from the local cache first; when that fails
  (offline, no copy of GPT-2's tokenizer), it falls back to the SDK's embedded tokenizer and
  logs a warning, and the build report names the tokenizer that counted.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any, TypeVar

logger = logging.getLogger(__name__)
P = TypeVar("P")

#: the name that picks the SDK's own offline tokenizer for the length filter
EMBEDDED = "embedded"


def row_split(n_rows: int, fraction: float, seed: int) -> set[int]:
    """Indices of the held-out rows: ``ceil(fraction * n_rows)`` of them, numpy ``default_rng(seed)``."""
    import numpy as np

    if n_rows < 2:
        return set()
    permutation = np.random.default_rng(seed).permutation(n_rows)
    return {int(i) for i in permutation[: math.ceil(fraction * n_rows)]}


def load_length_tokenizer(name: str) -> tuple[Any, str]:
    """(tokenizer, the name of the one loaded): ``name``, or the embedded one when ``name`` cannot load."""
    from transformers import AutoTokenizer

    from plus_sdk.models import load_tokenizer

    if name != EMBEDDED:
        attempts = [True] if os.environ.get("HF_HUB_OFFLINE") == "1" else [True, False]
        for local_only in attempts:
            try:
                return AutoTokenizer.from_pretrained(name, local_files_only=local_only), name
            except Exception as exc:  # missing cache, no network, bad name: try the next way, then fall back
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        logger.warning("length filter: tokenizer %r cannot be loaded (%s); counting with the SDK's embedded "
                       "tokenizer instead, so lengths differ from %r's", name, reason, name)
    return load_tokenizer(None), EMBEDDED


def with_token_counts(pairs: list[P], tokenizer: Any) -> list[P]:
    """The pairs with ``tokens`` set: the prompt's tokens plus the longer reply's."""
    texts = sorted({t for p in pairs for t in (p.prompt, p.a.response, p.b.response)})  # type: ignore[attr-defined]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    length = {text: len(row) for text, row in zip(texts, ids, strict=True)}
    return [dataclasses.replace(p, tokens=length[p.prompt] + max(length[p.a.response], length[p.b.response]))  # type: ignore
            for p in pairs]
