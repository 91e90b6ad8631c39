"""Prefix-shared reward scoring: encode shared context once, score only what differs.

Both responses of a judged pair, and every candidate of one prompt, share the same prefix:
the chat template with the user's conditioning turn and the prompt, up to the start of the
assistant turn; and all prompts of one user share the template + conditioning turn. Scoring
one full sequence at a time re-encodes all of that again and again. Here the work is a
three-level tree, each level run in right-padded, length-sorted batches (length bucketing)
on top of the keys/values cached by the level above (a transformers ``DynamicCache`` whose
rows are gathered per child):

1. **head** of each group of items (same ``key``, e.g. the same user's condition): the
   longest common prefix of the group's prefixes, encoded once;
2. **prompt**: each distinct prefix's remaining tokens, on top of its group's head;
3. **response**: each suffix on top of its prefix; the reward is the head applied to the
   hidden state of the suffix's last real token.

Every token attends to the real tokens above it (a 4-D additive mask hides the padding that
now sits between levels) and causally within its level; position ids continue from the real
length above. Ids, positions and attended keys are those of the unshared computation, so the
result equals it up to floating-point reassociation; ``tests/test_fast_scoring.py`` checks
it to 1e-4 in fp32, with and without a LoRA adapter.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from plus_sdk import batching

#: Default budget of (prefix + suffix) token slots in one forward batch on CPU (bounds memory).
DEFAULT_TOKENS_PER_BATCH = batching.CPU_SCORING_TOKENS
#: On CUDA, item sets whose unshared padded batch is at most this many token slots are scored in
#: one plain forward pass: kernel launches, not FLOPs, bound them, and the tree needs three passes.
ONE_PASS_TOKENS = 8192


def device_tokens_per_batch(body: Any, device: torch.device, longest: int) -> int:
    """Token slots per forward batch: the CPU default, or what free CUDA memory holds.

    Per token slot the tree keeps the parent's keys/values, the gathered copy and the new
    ones (3 x the cache), one layer's activations, and a row of the additive mask over at
    most ``longest`` keys.
    """
    if device.type != "cuda":
        return DEFAULT_TOKENS_PER_BATCH
    dtype_bytes = batching.dtype_size(body)
    per_token = (3 * batching.kv_bytes_per_token(body.config, dtype_bytes)
                 + batching.activation_bytes_per_token(body.config, dtype_bytes) + longest * dtype_bytes)
    return batching.scoring_tokens(batching.cuda_free_bytes(device), per_token)


def sharing_pays(device_type: str, lengths: Sequence[int]) -> bool:
    """Whether the prefix-shared tree beats one plain padded pass over items of ``lengths``.

    On CPU it always does (it saves FLOPs, which bound the time). On CUDA a small set (its
    padded batch under ``ONE_PASS_TOKENS``) is launch-bound, so one pass is faster.
    """
    if device_type != "cuda" or not lengths:
        return True
    return len(lengths) * max(lengths) > ONE_PASS_TOKENS


@dataclass
class PrefixGroup:
    """Tokens encoded once (a prefix, or a group's common head) and the items that share them."""

    prefix: list[int]
    items: list[int] = field(default_factory=list)


def group_by_prefix(prefixes: Sequence[Sequence[int]]) -> list[PrefixGroup]:
    """Distinct prefixes (in order of first appearance) with the indices of their items."""
    groups: dict[tuple[int, ...], PrefixGroup] = {}
    for index, prefix in enumerate(prefixes):
        key = tuple(prefix)
        if key not in groups:
            groups[key] = PrefixGroup(list(prefix))
        groups[key].items.append(index)
    return list(groups.values())


def plan_batches(groups: list[PrefixGroup], suffix_lengths: Sequence[int],
                 tokens_per_batch: int) -> list[list[PrefixGroup]]:
    """Pack prefix groups, shortest prefix first, into batches under a token budget.

    A batch's cost is estimated as its suffix rows times (longest prefix + longest suffix);
    a group too big for any batch goes alone (its suffixes are split later).
    """
    ordered = sorted(groups, key=lambda g: len(g.prefix))
    batches: list[list[PrefixGroup]] = []
    current: list[PrefixGroup] = []
    rows = width_prefix = width_suffix = 0
    for group in ordered:
        g_suffix = max(suffix_lengths[i] for i in group.items)
        new_rows = rows + len(group.items)
        new_cost = new_rows * (max(width_prefix, len(group.prefix)) + max(width_suffix, g_suffix))
        if current and new_cost > tokens_per_batch:
            batches.append(current)
            current, rows, width_prefix, width_suffix = [], 0, 0, 0
            new_rows = len(group.items)
        current.append(group)
        rows = new_rows
        width_prefix = max(width_prefix, len(group.prefix))
        width_suffix = max(width_suffix, g_suffix)
    if current:
        batches.append(current)
    return batches


KVTensors = list[tuple[torch.Tensor, torch.Tensor]]


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, lengths) of right-padded token id lists."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    return ids.to(device), lengths.to(device)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``[B, Q, K]`` permission to a ``[B, 1, Q, K]`` additive float mask."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def cache_argument(body: Any) -> str:
    """Name of the KV-cache keyword of a transformers decoder body (changed across versions)."""
    params = inspect.signature(body.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def new_cache(body: Any) -> Any:
    """An empty ``DynamicCache`` for ``body``."""
    from transformers import DynamicCache  # optional at import: loaded with the first model

    try:
        return DynamicCache(config=body.config)
    except TypeError:  # older transformers
        return DynamicCache()


def cache_tensors(cache: Any) -> KVTensors:
    """Per-layer (keys, values) of a ``DynamicCache``."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


@dataclass
class KVState:
    """Cached rows: per-layer keys/values ``[R, heads, W, dim]``, which of the W slots are real
    tokens (``valid``, padding sits in the middle after several extensions), and how many real
    tokens each row has (the position of its next token)."""

    tensors: KVTensors | None
    valid: torch.Tensor
    n_real: torch.Tensor


def empty_state(rows: int, device: torch.device) -> KVState:
    return KVState(None, torch.zeros((rows, 0), dtype=torch.bool, device=device),
                   torch.zeros(rows, dtype=torch.long, device=device))


def extend(body: Any, state: KVState, rows: torch.Tensor, sequences: Sequence[Sequence[int]], pad_id: int,
           dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, KVState]:
    """Run ``sequences[i]`` on top of cached row ``rows[i]`` of ``state``.

    Returns the hidden states ``[S, L, H]``, the sequences' lengths, and the extended state
    (row ``i`` = parent row + sequence ``i``). Each token attends to its parent's real tokens
    and causally to its own sequence; positions continue from the parent's real length.
    """
    device = rows.device
    ids, lengths = right_pad(sequences, pad_id, device)
    width = ids.shape[1]
    parent_valid = state.valid.index_select(0, rows)
    offset = state.n_real.index_select(0, rows)
    steps = torch.arange(width, device=device)
    to_parent = parent_valid[:, None, :].expand(-1, width, -1)
    causal = (steps[:, None] >= steps[None, :])[None].expand(len(sequences), -1, -1)
    mask = additive_mask(torch.cat([to_parent, causal], dim=2), dtype)
    cache = new_cache(body)
    for layer, (keys, values) in enumerate(state.tensors or []):
        cache.update(keys.index_select(0, rows), values.index_select(0, rows), layer)
    hidden = body(input_ids=ids, attention_mask=mask, position_ids=offset[:, None] + steps[None],
                  use_cache=True, **{cache_argument(body): cache}).last_hidden_state
    own = steps[None, :] < lengths[:, None]
    return hidden, lengths, KVState(cache_tensors(cache), torch.cat([parent_valid, own], dim=1), offset + lengths)


def chunks(order: list[int], widths: Sequence[int], parent_width: int, tokens_per_batch: int) -> list[list[int]]:
    """Split ``order`` (sorted by width) into runs whose rows x (parent + widest) fit the budget."""
    runs = batching.plan_rows([widths[i] for i in order], parent_width, tokens_per_batch, max_rows=len(order) or 1)
    return [[order[k] for k in run] for run in runs]


def common_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix, kept short of the shortest sequence (so every
    sequence keeps at least one token of its own)."""
    first, shortest = sequences[0], min(len(s) for s in sequences)
    n = 0
    while n < shortest - 1 and all(s[n] == first[n] for s in sequences):
        n += 1
    return n


def score_prefix_shared(body: Any, head: Any, prefixes: Sequence[Sequence[int]], suffixes: Sequence[Sequence[int]],
                        *, pad_id: int, device: torch.device, dtype: torch.dtype,
                        keys: Sequence[Any] | None = None,
                        tokens_per_batch: int = DEFAULT_TOKENS_PER_BATCH) -> torch.Tensor:
    """Rewards (first head output) of items ``prefixes[i] + suffixes[i]``, sharing work.

    Items with the same ``keys[i]`` (e.g. the same user's conditioning turn; by default the
    same prefix) form a group whose longest common prefix (the "head": chat template +
    condition) is encoded once; each distinct prefix then adds its own tokens (the prompt)
    on top, and each suffix (the response) on top of its prefix. ``body`` is the transformer
    body (no LM head) with the right adapter already active; call under inference mode.
    """
    if len(prefixes) != len(suffixes):
        raise ValueError(f"got {len(prefixes)} prefixes but {len(suffixes)} suffixes; give one of each per item")
    if any(len(s) == 0 for s in suffixes):
        raise ValueError("every suffix needs at least one token (the response and its end-of-turn)")
    if any(len(p) == 0 for p in prefixes):
        raise ValueError("every prefix needs at least one token (the chat template)")
    if not prefixes:
        return torch.empty(0, dtype=torch.float32)
    rewards = torch.empty(len(prefixes), dtype=torch.float32, device=device)  # one copy to the host at the end
    keys = [tuple(p) for p in prefixes] if keys is None else list(keys)
    by_key: dict[Any, list[int]] = {}
    for index, key in enumerate(keys):
        by_key.setdefault(key, []).append(index)
    groups = []
    for members in by_key.values():
        distinct = list(dict.fromkeys(tuple(prefixes[i]) for i in members))
        shared = common_length(distinct)
        if shared > 0:
            groups.append(PrefixGroup(list(distinct[0][:shared]), members))
            continue
        for prefix in distinct:  # nothing in common: one group per prefix
            groups.append(PrefixGroup(list(prefix[: len(prefix) - 1] or prefix),
                                      [i for i in members if tuple(prefixes[i]) == prefix]))
    suffix_lengths = [len(s) for s in suffixes]
    for batch in plan_batches(groups, suffix_lengths, tokens_per_batch):
        rows = torch.arange(len(batch), device=device)
        _, _, heads = extend(body, empty_state(len(batch), device), rows, [g.prefix for g in batch], pad_id, dtype)
        nodes: dict[tuple[int, tuple[int, ...]], list[int]] = {}  # (group row, prompt tokens) -> items
        for row, group in enumerate(batch):
            for i in group.items:
                nodes.setdefault((row, tuple(prefixes[i][len(group.prefix):])), []).append(i)
        node_keys = list(nodes)
        node_order = sorted(range(len(node_keys)), key=lambda n: len(node_keys[n][1]))
        head_width = heads.valid.shape[1]
        for node_chunk in chunks(node_order, [len(k[1]) for k in node_keys], head_width, tokens_per_batch):
            parent_rows = torch.tensor([node_keys[n][0] for n in node_chunk], device=device)
            _, _, prompts = extend(body, heads, parent_rows, [node_keys[n][1] for n in node_chunk], pad_id, dtype)
            leaves = [(slot, i) for slot, n in enumerate(node_chunk) for i in nodes[node_keys[n]]]
            leaves.sort(key=lambda leaf: suffix_lengths[leaf[1]])  # bucket suffixes by length
            widths = [suffix_lengths[i] for _, i in leaves]
            for leaf_chunk in chunks(list(range(len(leaves))), widths, prompts.valid.shape[1], tokens_per_batch):
                slots = torch.tensor([leaves[k][0] for k in leaf_chunk], device=device)
                items = [leaves[k][1] for k in leaf_chunk]
                hidden, lengths, _ = extend(body, prompts, slots, [suffixes[i] for i in items], pad_id, dtype)
                last = hidden[torch.arange(hidden.shape[0], device=device), lengths - 1]
                rewards[torch.tensor(items, device=device)] = head(last)[:, 0].float()
    return rewards.cpu()
