"""Reward-model metrics on known scores, and a whole `plus train-rm` run that stops and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from plus_sdk.training.data.pets import build_pets
from plus_sdk.training.evaluate import expected_calibration_error, markdown_row, pair_metrics


def test_pair_metrics_on_known_scores() -> None:
    records = build_pets(8, 8, 1, 0)["test"][:4]
    kinds = [(r.user_type, r.controversial) for r in records]
    records = [r.model_copy(update={"user_type": t, "controversial": c})
               for r, (t, c) in zip(records, [("cat", True), ("cat", False), ("dog", True), ("dog", False)],
                                    strict=True)]
    assert kinds  # built
    prob = torch.tensor([0.9, 0.6, 0.3, 0.8])
    margin = torch.tensor([2.0, 0.5, -1.0, 1.5])
    out = pair_metrics(records, prob, margin)
    assert out["n"] == 4
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["margin"] == pytest.approx(0.75)
    assert out["accuracy_controversial"] == pytest.approx(0.5)
    assert out["accuracy_agreed"] == pytest.approx(1.0)
    assert out["accuracy_by_user_type"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(0.5)}
    # confidences 0.9, 0.6, 0.7, 0.8 fall in bins 8, 2, 4, 6 (width 0.05 over [0.5, 1]); correct 1, 1, 0, 1
    expected = 0.25 * (abs(1 - 0.9) + abs(1 - 0.6) + abs(0 - 0.7) + abs(1 - 0.8))
    assert out["ece"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="same length"):
        pair_metrics(records, prob[:2], margin)


def test_ece_perfectly_calibrated_bin_is_zero() -> None:
    # ten pairs at confidence 0.7 (P = 0.7 or 0.3), seven of them right: calibrated
    prob = torch.tensor([0.7] * 7 + [0.3] * 3)
    assert expected_calibration_error(prob) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error(torch.tensor([])) == 0.0


def test_markdown_row() -> None:
    row = markdown_row("BTL", {"test": {"accuracy": 0.5, "accuracy_controversial": 0.25, "accuracy_agreed": 0.75,
                                        "margin": 0.1, "ece": 0.05},
                               "ood": {"accuracy": 0.4}, "cost": {"train_seconds": 12.3, "peak_rss_mb": 800}})
    assert row == "| BTL | 50.0 | 25.0 | 75.0 | 40.0 | 0.10 | 0.050 | 12 | 800 |"


def test_train_rm_run_stops_and_resumes_with_same_losses(tiny_model_dir: Path, tmp_path: Path) -> None:
    from plus_sdk.cli import main
    from plus_sdk.reward import PersonalizedRewardModel

    common = [f"base={tiny_model_dir}", "device=cpu", "dtype=float32", "steps=4", "eval_every=2", "log_every=1",
              "progress=false", "data.n_train=32", "data.n_test=8", "data.n_ood=8", "data.n_context=2",
              "train.batch_size=4", "train.lr=1e-3", "train.lora.dropout=0.1"]
    recipe = str(Path(__file__).resolve().parents[1] / "training/pets/btl.yaml")
    assert main(["train-rm", "--config", recipe, f"run_dir={tmp_path / 'full'}", *common]) == 0
    assert main(["train-rm", "--config", recipe, f"run_dir={tmp_path / 'cut'}", "stop_after=2", *common]) == 0
    assert json.loads((tmp_path / "cut/last/state.json").read_text())["step"] == 2
    assert not (tmp_path / "cut/eval.json").exists()
    assert main(["train-rm", "--config", recipe, f"run_dir={tmp_path / 'cut'}", *common]) == 0

    def losses(run: str) -> dict[int, float]:
        rows = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return {int(r["step"]): r["loss"] for r in rows if r["kind"] == "train"}

    full, cut = losses("full"), losses("cut")
    assert sorted(cut) == [1, 2, 3, 4]
    assert [cut[s] for s in (3, 4)] == pytest.approx([full[s] for s in (3, 4)], abs=1e-6)
    results = json.loads((tmp_path / "cut/eval.json").read_text())
    assert {"test", "ood", "cost"} <= set(results) and results["test"]["n"] == 8
    assert (tmp_path / "cut/eval.md").read_text().count("|") > 10
    # the saved adapter loads as a PersonalizedRewardModel
    rm = PersonalizedRewardModel.from_pretrained(str(tiny_model_dir), tmp_path / "cut/last", device="cpu",
                                                 dtype="float32")
    assert isinstance(rm.score(None, "Talk about a pet.", "Cats purr."), float)
    # plus eval on the best checkpoint writes its own results
    out = tmp_path / "evaluated"
    assert main(["eval", "--run", str(tmp_path / "cut"), "--out", str(out)]) == 0
    assert json.loads((out / "eval.json").read_text())["test"]["n"] == 8


def test_controversial_pairs_are_also_scored_per_axis_when_the_builder_names_one() -> None:
    from plus_sdk.training.data.styles import StylesConfig, build_styles

    records = build_styles(StylesConfig(n_train=0, n_test=40, n_context=2))["test"]
    axis_rows = [r for r in records if r.controversial][:3]
    agreed = [r for r in records if not r.controversial][:1]
    axis_rows = [axis_rows[0].model_copy(update={"meta": {**axis_rows[0].meta, "axis": "tone"}}),
                 axis_rows[1].model_copy(update={"meta": {**axis_rows[1].meta, "axis": "tone"}}),
                 axis_rows[2].model_copy(update={"meta": {**axis_rows[2].meta, "axis": "code"}})]
    out = pair_metrics(axis_rows + agreed, torch.tensor([0.9, 0.2, 0.7, 0.1]), torch.tensor([1.0, -1.0, 1.0, -1.0]))
    # tone: one right of two; code: right; the agreed (wrong) row counts for no axis
    assert out["accuracy_by_axis"] == {"code": pytest.approx(1.0), "tone": pytest.approx(0.5)}
    assert "accuracy_by_axis" not in pair_metrics(build_pets(8, 8, 1, 0)["test"][:2], torch.tensor([0.9, 0.2]),
                                                   torch.tensor([1.0, -1.0]))
