"""Shared optimizer helpers: the one warmup + decay schedule, on hand-computed values, and sized per recipe."""

from __future__ import annotations

import math

import pytest
import torch

from plus_sdk.training.optim import build_adamw, lr_multiplier, scheduled, warmup_steps


def test_warmup_ramps_linearly_to_one() -> None:
    assert [lr_multiplier(s, schedule="cosine", total=10, warmup=2) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]


def test_cosine_falls_to_the_floor_at_the_last_step() -> None:
    # after warmup 2 of 10 steps, step 6 is halfway: floor + (1 − floor)·0.5·(1 + cos(π/2)) = 0.1 + 0.45
    assert lr_multiplier(6, schedule="cosine", total=10, warmup=2, floor=0.1) == pytest.approx(0.55)
    assert lr_multiplier(10, schedule="cosine", total=10, warmup=2, floor=0.1) == pytest.approx(0.1)
    assert lr_multiplier(9, schedule="cosine", total=10, warmup=2, floor=0.1) > 0.1


def test_linear_falls_to_zero_and_constant_stays_at_one() -> None:
    assert lr_multiplier(5, schedule="linear", total=10, warmup=0) == pytest.approx(0.5)
    assert lr_multiplier(10, schedule="linear", total=10, warmup=0) == 0.0
    assert lr_multiplier(10, schedule="constant", total=10, warmup=0) == 1.0


def test_an_unknown_schedule_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="schedule='step'"):
        lr_multiplier(3, schedule="step", total=10, warmup=0)  # type: ignore[arg-type]


def test_warmup_steps_round_the_ratio() -> None:
    assert warmup_steps(0.03, 100) == 3 and warmup_steps(0.03, 10) == 0 and warmup_steps(0.25, 10) == 2


def test_scheduler_reaches_the_final_lr_after_exactly_total_steps() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_adamw([param], lr=1.0)
    scheduler = scheduled(optimizer, schedule="cosine", total=4, warmup_ratio=0.0, floor=0.0)
    lrs = []
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert lrs[:3] == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 4)) for s in (1, 2, 3)])
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
