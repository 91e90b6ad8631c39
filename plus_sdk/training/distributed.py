"""Process layout and metric averaging shared by every trainer (one process, DDP or DeepSpeed).

torch.distributed is the one source of truth: accelerate and DeepSpeed both initialise it when
several processes run (accelerate itself reports one process under DeepSpeed on CPU).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def reduce_mean(metrics: dict[str, float]) -> dict[str, float]:
    """Average a flat metrics dict over processes (identical keys everywhere)."""
    world = dist_info()[1]
    if world == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return {k: float(v) / world for k, v in zip(keys, values.tolist(), strict=True)}


def replica_drift(params: list[torch.nn.Parameter]) -> float:
    """Largest difference between processes of a checksum of ``params`` (0 = in sync; 0 in one process)."""
    world = dist_info()[1]
    if world == 1:
        return 0.0
    checksum = torch.tensor([sum(float(p.detach().double().sum()) for p in params)], dtype=torch.float64)
    gathered = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(gathered, checksum)
    values = torch.cat(gathered)
    return float(values.max() - values.min())
