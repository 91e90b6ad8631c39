"""Speed of the PPO update: fusing, autocast, checkpoint planning, throughput.

None of this changes what the update computes (bf16 autocast aside, which rounds); ``trainer.PPOTrainer``
calls it around the plain rollout → advantages → update loop:

- **fusing** — ``can_fuse``: when one on-policy step covers the batch, the experience keeps the graph of
  its policy forward and the update back-propagates through it (one forward pass fewer);
- **autocast** — ``autocast_dtype`` / ``autocast_for`` (bf16 autocast over fp32 weights) and ``precision``;
- **checkpoint planning** — ``activation_bytes`` (a rough upper estimate of what one forward keeps for its
  backward), ``needs_checkpointing`` and ``plan_checkpointing`` (recompute decoder layers only when the
  update would not fit), ``checkpointed_layers`` (the recomputation itself);
- **throughput** — ``sync`` and ``Stopwatch`` (wall time of device work), ``non_embedding_parameters``,
  ``update_tflops``, ``peak_tflops_of`` / ``device_peak_tflops`` and ``throughput`` (the update's
  ``update_tokens``, ``update_seconds``, ``update_tflops`` and ``mfu``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.utils.checkpoint

from plus_sdk.training.ppo.algorithm import Autocast, PPOConfig
from plus_sdk.training.ppo.rollout import Rollout

logger = logging.getLogger(__name__)

#: ``gradient_checkpointing`` of the update: always, never, or when its activations would not fit (CUDA).
Checkpointing = bool | Literal["auto"]

#: Dense bf16 peak of known GPUs in TFLOP/s (spec sheets); the first fragment found in the device name wins.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (("H100 PCIe", 756.0), ("H200", 989.4), ("H100", 989.4),
                                                    ("A100", 312.0))


# ---------------------------------------------------------------------------------------
# Fusing: the experience's policy forward is the update's
# ---------------------------------------------------------------------------------------


def can_fuse(config: PPOConfig, num_responses: int) -> bool:
    """True when one on-policy gradient step covers the batch (no separate old-log-prob pass)."""
    return (config.estimator != "gae" and config.epochs == 1 and config.minibatch_size >= num_responses
            and config.micro_batch_size >= num_responses)


# ---------------------------------------------------------------------------------------
# Autocast
# ---------------------------------------------------------------------------------------


def autocast_dtype(mode: Autocast, device_type: str, weight_dtype: torch.dtype,
                   bf16_supported: bool) -> torch.dtype | None:
    """The autocast dtype of the update's forwards, or None for none: 'auto' is bf16 only over fp32 weights
    on a bf16-capable CUDA device; 'bf16' is bf16 everywhere (CPU autocast too)."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    cuda_fp32 = device_type == "cuda" and bf16_supported and weight_dtype == torch.float32
    return torch.bfloat16 if cuda_fp32 else None


def autocast_for(mode: Autocast, model: Any, device: torch.device) -> torch.dtype | None:
    """``autocast_dtype`` for ``model`` (its weights' dtype) on ``device``."""
    weight_dtype = model.get_input_embeddings().weight.dtype
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return autocast_dtype(mode, device.type, weight_dtype, bf16_ok)


def precision(dtype: torch.dtype | None, device_type: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` around a forward, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


# ---------------------------------------------------------------------------------------
# Checkpoint planning: recompute decoder layers only when the update would not fit
# ---------------------------------------------------------------------------------------


def activation_bytes(*, layers: int, hidden: int, intermediate: int, kv_dim: int, vocab: int, body_tokens: int,
                     cached_tokens: int, response_tokens: int, element_bytes: int) -> int:
    """Bytes one forward keeps for its backward (a rough upper estimate for a Llama/Qwen-style decoder).

    Per layer and token through the body: norms, q/o and residuals ≈ 8·hidden, the gated MLP ≈ 4·intermediate
    elements; each response row also attends the cached prompt keys and values (2·kv_dim per cached token);
    the head keeps about four fp32 vocab-wide tensors per response token (logits, log-softmax, probabilities,
    their product for the entropy).
    """
    per_layer = body_tokens * (8 * hidden + 4 * intermediate) + cached_tokens * 2 * kv_dim
    return layers * element_bytes * per_layer + response_tokens * vocab * 4 * 4


def rollout_activation_bytes(model: Any, rollout: Rollout, groups: int, element_bytes: int) -> int:
    """``activation_bytes`` of one forward over ``groups`` prompt groups of ``rollout`` (padded shapes)."""
    c = model.config
    k, width, length = rollout.samples_per_prompt, rollout.prompt_ids.shape[1], rollout.response_ids.shape[1]
    heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return activation_bytes(layers=c.num_hidden_layers, hidden=c.hidden_size, intermediate=c.intermediate_size,
                            kv_dim=heads * head_dim, vocab=c.vocab_size,
                            body_tokens=groups * width + groups * k * length, cached_tokens=groups * k * width,
                            response_tokens=groups * k * length, element_bytes=element_bytes)


def needs_checkpointing(estimate_bytes: int, free_bytes: int, headroom: float = 0.8) -> bool:
    """True when the activations would take more than ``headroom`` of the free memory."""
    return estimate_bytes > headroom * free_bytes


def plan_checkpointing(setting: Checkpointing, device: torch.device, estimate: Callable[[], int]) -> bool:
    """Whether an update recomputes layers: the setting, or for 'auto' the ``estimate()`` of its activations
    against the free CUDA memory (never on CPU)."""
    if setting != "auto":
        return bool(setting)
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    estimated = estimate()
    needed = needs_checkpointing(estimated, free)
    logger.debug("PPO update activations ~%.2f GB, %.2f GB free: checkpointing %s", estimated / 1e9, free / 1e9,
                 "on" if needed else "off")
    return needed


@contextlib.contextmanager
def checkpointed_layers(model: Any) -> Iterator[None]:
    """Recompute each decoder layer in the backward pass while the model stays in eval mode.

    transformers checkpoints a layer only when that layer is training; only the layers' own flag is
    set, so dropout in their children stays off and log-probs do not change.
    """
    # transformers.modeling_layers loads modeling_utils (with accelerate, scipy, sympy: ~1,800 modules)
    from transformers.modeling_layers import GradientCheckpointingLayer  # optional: transformers, on first use

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    saved = [(m.training, m.gradient_checkpointing, m.__dict__.get("_gradient_checkpointing_func")) for m in layers]
    for m in layers:
        m.training, m.gradient_checkpointing = True, True
        m._gradient_checkpointing_func = functools.partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
    try:
        yield
    finally:
        for m, (training, enabled, func) in zip(layers, saved, strict=True):
            m.training, m.gradient_checkpointing = training, enabled
            if func is None:
                del m._gradient_checkpointing_func
            else:
                m._gradient_checkpointing_func = func


# ---------------------------------------------------------------------------------------
# Throughput: wall time, FLOP rate and MFU
# ---------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timing needs it; CPU work is already done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall time of device work: waits for the device when started and when read."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        sync(device)
        self.start = time.perf_counter()

    def seconds(self) -> float:
        sync(self.device)
        return time.perf_counter() - self.start


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters of ``model`` without its input embedding (the count MFU is taken over)."""
    embedding = model.get_input_embeddings().weight.numel()  # type: ignore[operator]
    return sum(p.numel() for p in model.parameters()) - embedding


def update_tflops(params: int, tokens: int, seconds: float) -> float:
    """TFLOP/s of a LoRA update: 4 × params × tokens (forward 2, activation gradients 2; the frozen base
    has no weight gradients) over ``seconds``."""
    return 4 * params * tokens / max(seconds, 1e-12) / 1e12


def peak_tflops_of(device_name: str) -> float | None:
    """The spec bf16 dense peak of a known GPU by its name (``torch.cuda.get_device_name``), else None."""
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def device_peak_tflops(configured: float | None, device: torch.device, compute_dtype: torch.dtype) -> float | None:
    """The configured peak, else the spec bf16 peak of a known GPU when the update computes in bf16, else None."""
    if configured:
        return configured
    if device.type != "cuda" or compute_dtype != torch.bfloat16:
        return None
    return peak_tflops_of(torch.cuda.get_device_name(device))


def throughput(params: int, tokens: int, seconds: float, peak_tflops: float | None) -> dict[str, float]:
    """The update's speed metrics: tokens, seconds, TFLOP/s, and MFU when the device's peak is known."""
    tflops = update_tflops(params, tokens, seconds)
    out = {"update_tokens": float(tokens), "update_seconds": seconds, "update_tflops": tflops}
    if peak_tflops:
        out["mfu"] = tflops / peak_tflops
    return out
