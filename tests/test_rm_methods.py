"""Every reward-model method trains a few steps on a tiny real model and its loss falls;
DPL losses match hand-computed values; ICL keeps the target; VPL latents and KL behave."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.rm.registry import METHODS, make_method
from plus_sdk.training.rm.run import RMRunConfig, SummarySettings, make_learner
from plus_sdk.training.rm.trainer import RMTrainConfig
from plus_sdk.training.rm.vpl import VPLConfig


@pytest.fixture(scope="module")
def pets() -> dict:
    return build_pets(16, 8, 2, 0)


def run_config(tiny: Path, method: str, tmp: Path, encoder: str = "backbone") -> RMRunConfig:
    return RMRunConfig(method=method, base=str(tiny), device="cpu", dtype="float32", steps=8, progress=False,
                       train=RMTrainConfig(lr=3e-3, batch_size=4, warmup_ratio=0.0),
                       summary=SummarySettings(max_new_tokens=8, cache_dir=str(tmp / "cache"), task="pets"),
                       vpl=VPLConfig(encoder=encoder, hidden=32, latent=8, lr=3e-3, warmup_ratio=0.0))


@pytest.mark.parametrize("method", METHODS)
def test_method_loss_falls(method: str, tiny_model_dir: Path, tmp_path: Path, pets: dict) -> None:
    config = run_config(tiny_model_dir, method, tmp_path)
    learner = make_learner(config, pets["train"] + pets["test"])
    batch = pets["train"][:4]
    losses = [learner.step(batch)["loss"] for _ in range(8)]
    assert losses[-1] < losses[0], losses
    prob, margin = learner.predict(pets["test"])
    assert prob.shape == margin.shape == (len(pets["test"]),)
    assert torch.all((prob >= 0) & (prob <= 1))


def test_summary_cache_reused(tiny_model_dir: Path, tmp_path: Path, pets: dict) -> None:
    config = run_config(tiny_model_dir, "summary", tmp_path)
    make_learner(config, pets["test"])
    files = sorted((tmp_path / "cache").rglob("*.json"))
    assert len(files) == len({r.context.source_hash() for r in pets["test"]})
    stamps = [f.stat().st_mtime_ns for f in files]
    learner = make_learner(config, pets["test"])
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not regenerated
    assert learner.method.condition(pets["test"][0]).startswith("Here is a summary")


def test_dpl_meanvar_matches_hand_computed() -> None:
    method = make_method("dpl-meanvar")
    chosen = torch.tensor([[1.0, 0.0]])
    rejected = torch.tensor([[0.0, 1.0]])
    s_c, s_r = math.log(2.0) + 1e-4, math.log(1.0 + math.e) + 1e-4  # softplus(0), softplus(1) (+ floor)
    z = 1.0 / math.sqrt(s_c**2 + s_r**2)
    expected = math.log1p(math.exp(-z * math.sqrt(2 * math.pi)))
    out = method.pair(chosen, rejected)
    assert float(out.loss) == pytest.approx(expected, rel=1e-5)
    assert float(out.prob[0]) == pytest.approx(1 / (1 + math.exp(-z * math.sqrt(2 * math.pi))), rel=1e-5)
    assert float(out.margin[0]) == pytest.approx(1.0)


def test_dpl_categorical_matches_hand_computed() -> None:
    method = make_method("dpl-categorical")
    big = 50.0
    chosen = torch.full((1, 10), -big)
    chosen[0, 9] = big  # all mass on atom 1.0
    rejected = torch.zeros(1, 10)  # uniform over the 10 atoms
    out = method.pair(chosen, rejected)
    # P(X_c > X_r) = 9/10, ties (atom 1.0) count half: 9/10 + 1/20 = 0.95
    assert float(out.prob[0]) == pytest.approx(0.95, abs=1e-5)
    entropy = 0.5 * (0.0 + math.log(10))
    assert float(out.loss) == pytest.approx(-math.log(0.95) - 0.1 * entropy, abs=1e-4)
    assert float(out.margin[0]) == pytest.approx(1.0 - 0.5, abs=1e-5)
    # symmetric inputs: an even chance
    same = method.pair(rejected, rejected)
    assert float(same.prob[0]) == pytest.approx(0.5, abs=1e-6)


def test_icl_budget_drops_oldest_and_keeps_target(tiny_model_dir: Path, tmp_path: Path) -> None:
    records = build_pets(8, 8, 6, 0)["train"]
    config = run_config(tiny_model_dir, "icl", tmp_path)
    learner = make_learner(config, records)
    rm, method = learner.rm, learner.method
    record = records[0]
    bare = method.length(record, None)  # the target alone
    budget = bare + 150
    method.max_tokens = budget
    method._cache.clear()
    condition = method.condition(record)
    assert condition is not None
    assert method.length(record, condition) <= budget
    oldest, newest = record.context.examples[0], record.context.examples[-1]
    assert newest.chosen in condition and oldest.chosen not in condition
    for response in (record.chosen, record.rejected):
        ids = rm.encode(record.prompt, response, condition)
        _, suffix = rm.encode_split(record.prompt, response, condition)
        assert ids[-len(suffix):] == suffix and len(ids) <= budget
        assert response in rm.tokenizer.decode(ids)
    method.max_tokens = bare - 1
    method._cache.clear()
    with pytest.raises(ValueError, match="alone has"):
        method.condition(record)


def test_vpl_latent_shapes_and_kl(tiny_model_dir: Path, tmp_path: Path, pets: dict) -> None:
    from plus_sdk.training.rm.vpl import VPLRewardModel, cyclical_weight, kl_divergence

    config = run_config(tiny_model_dir, "vpl", tmp_path, encoder="minilm")
    learner = make_learner(config, pets["train"])
    trainer = learner.trainer
    out = trainer.forward(pets["train"][:3], sample=False)
    assert out["mean"].shape == out["logvar"].shape == out["z"].shape == (3, 8)
    assert float(out["mean"].abs().max()) <= 1.0 and float(out["logvar"].abs().max()) <= 1.0
    assert torch.allclose(out["z"].norm(dim=-1), torch.full((3,), math.sqrt(8)), atol=1e-4)
    assert float(kl_divergence(torch.zeros(2, 8), torch.zeros(2, 8))) == pytest.approx(0.0)
    mean, logvar = torch.full((1, 4), 0.5), torch.full((1, 4), -1.0)
    assert float(kl_divergence(mean, logvar)) == pytest.approx(0.5 * 4 * (math.exp(-1) + 0.25 - 1 + 1), rel=1e-6)
    weights = [cyclical_weight(s, total=8, cycles=2, ramp=0.5) for s in range(8)]
    assert weights == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0])
    trainer.save_pretrained(tmp_path / "vpl")
    loaded = VPLRewardModel.from_pretrained(tmp_path / "vpl", device="cpu")
    record = pets["train"][0]
    scores = loaded.score_batch(record.context, [(record.prompt, record.chosen), (record.prompt, record.rejected)])
    assert scores[0] - scores[1] == pytest.approx(float(trainer.predict([record])[1][0]), abs=1e-4)
