"""The parts of VPL's UltraFeedback pipeline that plus-sdk does not do by default.

Read from VPL's code (repository ``vpl_llm``):

* ``row_split``: ``hidden_context/data_utils/ultrafeedback_augment.py`` (its ``__main__``) seeds
  numpy's global generator with ``--seed`` (42), then draws
  ``np.random.choice(length, int(length * 0.1), replace=False)`` over the rows of
  argilla's cleaned binarized set, in file order and before anything is filtered: those rows are
  test. Legacy numpy draws that as ``RandomState(42).permutation(length)[:int(0.1 * length)]``,
  so the test share is rounded *down* (60,917 rows: 6,091 test, as VPL's own log in
  ``ultrafeedback_four.py`` records).
* the length filter: ``hidden_context/data_utils/add_survey_contexts.py``
  (``generate_embeddings_with_llm``) tokenizes each pair's two texts,
  ``"Human: " + prompt + "\\n\\nAssistant: " + reply``, with the encoder's tokenizer called with
  its defaults (GPT-2's for ``--model_type gpt2``, Llama-2's for ``llama``) and keeps the pair when
  both are at most ``max_length`` (1,024) tokens. ``with_token_counts`` counts the same texts.
  ``load_length_tokenizer`` loads the named tokenizer, from the local cache first; when that fails
  (offline, no copy of GPT-2's tokenizer), it falls back to the SDK's embedded tokenizer and logs a
  warning, and the build report names the tokenizer that counted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, TypeVar

import numpy as np

from plus_sdk.models import load_tokenizer

logger = logging.getLogger(__name__)
P = TypeVar("P")

#: the name that picks the SDK's own offline tokenizer for the length filter
EMBEDDED = "embedded"


def row_split(n_rows: int, fraction: float, seed: int) -> set[int]:
    """Indices of the held-out rows, drawn as VPL draws them: ``int(fraction * n_rows)`` of them, legacy
    numpy ``RandomState(seed).choice(n_rows, k, replace=False)``."""
    k = int(n_rows * fraction)
    if k < 1:
        return set()
    return {int(i) for i in np.random.RandomState(seed).choice(n_rows, k, replace=False)}


def load_length_tokenizer(name: str) -> tuple[Any, str]:
    """(tokenizer, the name of the one loaded): ``name``, or the embedded one when ``name`` cannot load."""
    from transformers import AutoTokenizer  # optional: transformers, loaded only when a tokenizer is needed

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


def vpl_text(prompt: str, reply: str) -> str:
    """The text VPL builds for one side of a pair (and measures for the length filter)."""
    return f"Human: {prompt}\n\nAssistant: {reply}"


def with_token_counts(pairs: list[P], tokenizer: Any) -> list[P]:
    """The pairs with ``tokens`` set: the longer of VPL's two texts (``vpl_text``), in tokens as the
    tokenizer counts them when called with its defaults (special tokens included, as VPL calls it)."""
    texts = sorted({vpl_text(p.prompt, r.response) for p in pairs for r in (p.a, p.b)})  # type: ignore[attr-defined]
    ids = tokenizer(texts)["input_ids"] if texts else []
    length = {text: len(row) for text, row in zip(texts, ids, strict=True)}
    return [dataclasses.replace(p, tokens=max(length[vpl_text(p.prompt, r.response)]  # type: ignore[attr-defined]
                                              for r in (p.a, p.b)))  # type: ignore[attr-defined]
            for p in pairs]
