"""Batch sizes that follow the device: small fixed batches on CPU, a memory budget on CUDA.

On a CPU one decoding step costs about the same for one row or eight, and bigger batches only
add padding, so generation keeps batches of ``CPU_GENERATION_BATCH`` and scoring keeps
``CPU_SCORING_TOKENS`` token slots per forward pass. On a GPU the opposite holds: a decoding
step reads all the weights whatever the batch, so the batch should be as large as memory
allows. The pure functions here turn free memory, a model's shape and a sequence length into
rows (generation) or token slots (scoring); ``cuda_free_bytes`` reads the free memory. Every
caller accepts an explicit size that overrides all of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: Rows per generation batch on CPU (the size the CPU fast path was tuned with).
CPU_GENERATION_BATCH = 8
#: Token slots per scoring forward pass on CPU.
CPU_SCORING_TOKENS = 4096
#: Most rows in one generation batch on CUDA (beyond this a decoding step is compute-bound anyway).
MAX_GENERATION_ROWS = 256
#: Most token slots in one scoring forward pass on CUDA.
MAX_SCORING_TOKENS = 1 << 18
#: Share of the free memory that batches may use (the rest absorbs fragmentation and kernels' workspace).
HEADROOM = 0.7


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes of keys + values one token keeps in the cache, over all layers."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def activation_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Transient bytes per token of one layer's forward (gate + up projections, a few hidden states)."""
    intermediate = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    return (2 * intermediate + 4 * config.hidden_size) * dtype_bytes


def generation_rows(free_bytes: int, tokens_per_row: int, bytes_per_token: int, *,
                    headroom: float = HEADROOM, max_rows: int = MAX_GENERATION_ROWS) -> int:
    """Rows of ``tokens_per_row`` (prompt + new tokens) that fit ``headroom`` of ``free_bytes``; at least 1."""
    if tokens_per_row <= 0 or bytes_per_token <= 0:
        raise ValueError("tokens_per_row and bytes_per_token must be positive")
    rows = int(free_bytes * headroom) // (tokens_per_row * bytes_per_token)
    return max(1, min(max_rows, rows))


def scoring_tokens(free_bytes: int, bytes_per_token: int, *, headroom: float = HEADROOM,
                   max_tokens: int = MAX_SCORING_TOKENS, min_tokens: int = CPU_SCORING_TOKENS) -> int:
    """Token slots per scoring pass that fit ``headroom`` of ``free_bytes``, within [min_tokens, max_tokens]."""
    if bytes_per_token <= 0:
        raise ValueError("bytes_per_token must be positive")
    tokens = int(free_bytes * headroom) // bytes_per_token
    return max(min_tokens, min(max_tokens, tokens))


def plan_rows(lengths: Sequence[int], extra: int, budget_tokens: int, max_rows: int) -> list[list[int]]:
    """Split positions of ascending ``lengths`` into runs with rows x (longest + extra) <= budget_tokens.

    A run always takes at least one row; ``extra`` is what each row grows by (new tokens).
    """
    runs: list[list[int]] = []
    current: list[int] = []
    for index, length in enumerate(lengths):
        if current and (len(current) >= max_rows or (len(current) + 1) * (length + extra) > budget_tokens):
            runs.append(current)
            current = []
        current.append(index)
    if current:
        runs.append(current)
    return runs


def cuda_free_bytes(device: torch.device) -> int:
    """Free CUDA memory on ``device``, counting blocks that torch's allocator holds but does not use."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def dtype_size(model: Any) -> int:
    """Bytes per element of ``model``'s parameters."""
    return next(model.parameters()).element_size()
