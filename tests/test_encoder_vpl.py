"""VPL on the encoder path: the KL term on hand-computed values, the posterior's pooling, learning
Pets users from their context pairs alone, and an exact resume.

The encoder is the real all-MiniLM-L6-v2 shipped on PyPI (offline).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from plus_sdk.training.rm.encoder import EncoderSettings
from plus_sdk.training.rm.encoder_vpl import PairPosterior, kl_to_standard_normal
from plus_sdk.training.rm.run import VPL_WEIGHTS, RMRunConfig, train_rm


def test_the_kl_to_a_standard_normal_matches_hand_computed_values() -> None:
    mean = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    log_var = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)]])
    # row 0 is the prior itself; row 1: ½(1 + 1 − 1 − 0) = 0.5 and ½(0 + 4 − 1 − ln 4) ≈ 0.8069, averaged
    expected = torch.tensor([0.0, (0.5 + 0.5 * (3.0 - math.log(4.0))) / 2])
    assert torch.allclose(kl_to_standard_normal(mean, log_var), expected, atol=1e-6)


def test_the_posterior_averages_a_contexts_pairs_and_gives_the_prior_without_pairs() -> None:
    torch.manual_seed(0)
    posterior = PairPosterior(dim=3, latent=2, hidden=4)
    pairs = torch.randn(3, 6)
    mean, log_var = posterior(pairs, torch.tensor([0, 0, 2]), n=3)
    expected = posterior.out(posterior.pair(pairs[:2]).mean(0)).chunk(2)
    assert torch.allclose(mean[0], expected[0], atol=1e-6) and torch.allclose(log_var[0], expected[1], atol=1e-6)
    assert torch.equal(mean[1], torch.zeros(2)) and torch.equal(log_var[1], torch.zeros(2))  # no pairs: the prior


def _config(run_dir: Path, **overrides: object) -> RMRunConfig:
    settings = {"method": "vpl", "backbone": "encoder", "run_dir": str(run_dir), "steps": 240, "eval_every": 80,
                "eval_rows": 40, "progress": False, "seed": 0,
                "data": {"dataset": "pets", "n_train": 400, "n_test": 80, "n_ood": 0, "n_context": 4},
                "encoder": EncoderSettings(hidden=32, lr=3e-3, batch_size=32)}
    return RMRunConfig(**{**settings, **overrides})


def test_encoder_vpl_learns_pets_users_from_their_context_pairs(tmp_path: Path) -> None:
    results = train_rm(_config(tmp_path / "run"))
    # controversial Pets pairs are at chance for any model that ignores the user (BTL)
    assert results["test"]["accuracy_controversial"] >= 0.8, results["test"]
    assert (tmp_path / "run" / "best" / VPL_WEIGHTS).is_file()


def test_an_encoder_vpl_run_resumed_midway_ends_where_an_unbroken_run_ends(tmp_path: Path) -> None:
    whole = train_rm(_config(tmp_path / "whole", steps=60, eval_every=30))
    assert train_rm(_config(tmp_path / "split", steps=60, eval_every=30, stop_after=30)) == {"stopped_at": 30}
    resumed = train_rm(_config(tmp_path / "split", steps=60, eval_every=30))
    assert resumed["test"]["margin"] == whole["test"]["margin"]
    assert json.loads((tmp_path / "split" / "last" / "state.json").read_text())["step"] == 60
