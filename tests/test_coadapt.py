"""Co-adaptation (Algorithm 1) on tiny random models: one iteration, resume after SIGKILL, DDP, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch_threads import threads_under_test

from plus_sdk import prompts
from plus_sdk.training.checkpoint import read_checkpoint
from plus_sdk.training.ppo.coadapt import CoAdaptation, CoadaptConfig, run
from plus_sdk.training.summary_metrics.pets import animals_named, names_right_animal
from plus_sdk.training.timing import BudgetSpentError, budget_guard

REPO = Path(__file__).resolve().parents[1]


def tiny_config(model_dir: Path, run_dir: Path, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "run_dir": str(run_dir), "seed": 0, "iterations": 2, "contexts_per_iteration": 2, "rm_steps": 2,
        "rm_batch_size": 2, "checkpoint_every": 1, "progress": False,
        "model": {"summarizer_base": str(model_dir), "threads": threads_under_test(),
                  "summarizer_lora": {"r": 4, "alpha": 8}, "critic_lora": {"r": 4, "alpha": 8}},
        "data": {"n_train": 40, "n_test": 20, "n_ood": 10, "n_context": 2},
        "eval": {"every": 100, "test_rows": 2, "ood_rows": 2, "final_test_rows": 2, "final_ood_rows": 2,
                 "samples_logged": 2},
        "ppo": {"samples_per_prompt": 2, "max_new_tokens": 6, "actor_lr": 0.01},
        "rm": {"lr": 0.01, "lora": {"r": 4, "alpha": 8}, "batch_size": 2},
    }
    for key, value in changes.items():
        node = config
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return config


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def trainable_snapshot(run: CoAdaptation) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return ([p.detach().clone() for p in run.ppo.actor_params], [p.detach().clone() for p in run.reward.trainer.params])


def changed(before: list[torch.Tensor], after: list[torch.Tensor]) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("estimator", ["rloo", "gae"])
def test_one_iteration_changes_summarizer_and_reward_model(tiny_model_dir: Path, tmp_path: Path,
                                                           estimator: str) -> None:
    changes: dict[str, Any] = {"ppo.estimator": estimator}
    if estimator == "gae":
        changes.update({"ppo.samples_per_prompt": 1, "ppo.minibatch_size": 1, "ppo.epochs": 2})
    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run", **changes))
    run = CoAdaptation(config)
    assert run.reward_base is run.policy_base  # one base in memory for every role
    actor, reward = trainable_snapshot(run)
    critic = [p.detach().clone() for p in run.ppo.critic.parameters()] if run.ppo.critic else []
    metrics = run.iterate()
    actor_after, reward_after = trainable_snapshot(run)
    assert changed(actor, actor_after), "the summarizer adapter did not move"
    assert changed(reward, reward_after), "the reward model did not move"
    if estimator == "gae":
        assert run.ppo.critic is not None and changed(critic, run.ppo.critic.parameters())
        assert run.ppo.step_count == 4  # 2 epochs × 2 minibatches of one context
    for key in ("score", "kl", "rm_loss", "rm_accuracy", "entropy", "clip_fraction", "time_generation",
                "time_ppo_update", "time_rm_update", "peak_rss_mb", "summary_tokens", "update_tokens",
                "update_seconds"):
        assert key in metrics, key
    assert metrics["update_tflops"] > 0 and "mfu" not in metrics  # no peak is known for a CPU
    assert run.reward.trainer.step_count == 2


def test_frozen_summarizer_trains_only_the_reward_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run", train_summarizer=False))
    run = CoAdaptation(config)
    actor, reward = trainable_snapshot(run)
    run.iterate()
    actor_after, reward_after = trainable_snapshot(run)
    assert not changed(actor, actor_after)
    assert changed(reward, reward_after)


def test_animal_naming_metric() -> None:
    from plus_sdk.training.data.pets import build_pets

    record = next(r for r in build_pets(n_train=20, n_test=20, n_context=2)["test"] if r.user_type == "cat")
    assert animals_named("Prefers kittens; avoids dogs.") == ["cat", "dog"]
    assert names_right_animal("The user likes cats, not dogs", record) == (True, False)
    assert names_right_animal("Dogs!", record) == (False, False)
    assert names_right_animal("cats only", record) == (True, True)


def test_pets_provides_its_summary_metrics_through_the_dataset_hook() -> None:
    from plus_sdk.training.data.pets import build_pets
    from plus_sdk.training.summary_metrics.hooks import summary_metrics

    cat = next(r for r in build_pets(n_train=20, n_test=20, n_context=2)["test"] if r.user_type == "cat")
    # first summary names the cat first but also a dog; the second names only the cat
    shares = summary_metrics(["cats beat dogs", "cats", "dogs"], [cat, cat, cat], "test")
    assert shares == {"test_right_animal_first": pytest.approx(2 / 3), "test_right_animal_only": pytest.approx(1 / 3)}
    other = cat.model_copy(update={"dataset": "prism"})
    assert summary_metrics(["cats"], [other], "test") == {}  # a dataset without a hook logs nothing extra


def _run_cli(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plus_sdk.cli", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def _train_lines(run_dir: Path) -> dict[int, dict[str, Any]]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {row["iteration"]: row for row in lines if row.get("phase") == "train"}


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    iterations = 6
    reference = write_config(tmp_path, tiny_config(tiny_model_dir, tmp_path / "ref", iterations=iterations), "r.yaml")
    killed = write_config(tmp_path, tiny_config(tiny_model_dir, tmp_path / "kill", iterations=iterations), "k.yaml")
    proc = _run_cli([str(reference)], env)
    victim = _run_cli([str(killed)], env)
    latest = tmp_path / "kill" / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["iteration"] >= 2:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = json.loads(latest.read_text())["iteration"]
    assert 2 <= killed_at < iterations
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    resumed = _run_cli([str(killed), "--resume"], env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:] if resumed.stderr else ""
    ref_lines, got_lines = _train_lines(tmp_path / "ref"), _train_lines(tmp_path / "kill")
    assert sorted(got_lines) == list(range(1, iterations + 1))
    for it in range(1, iterations + 1):
        for key in ("rm_loss", "policy_loss", "score", "kl", "rm_step", "summary_tokens"):
            assert got_lines[it][key] == pytest.approx(ref_lines[it][key], abs=1e-5), (it, key)
    state = read_checkpoint(tmp_path / "kill" / "checkpoints" / f"iter-{iterations:06d}.safetensors")
    assert state["iteration"] == iterations and state["rm_trainer"]["step_count"] == 2 * iterations
    assert state["ppo"]["step_count"] == iterations


@pytest.mark.slow
def test_two_process_cpu_ddp_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Two gloo processes (torch.distributed.run; accelerate's Accelerator joins the process group)."""
    config = write_config(tmp_path, tiny_config(tiny_model_dir, tmp_path / "ddp", iterations=2,
                                                contexts_per_iteration=4))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "plus_sdk.cli", "train", str(config)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = _train_lines(tmp_path / "ddp")
    assert sorted(lines) == [1, 2]  # one line per iteration: only rank 0 writes
    for row in lines.values():
        assert row["replica_drift"] == pytest.approx(0.0, abs=1e-9)  # both processes hold the same weights
        assert 0.0 <= row["rm_accuracy"] <= 1.0 and row["rm_step"] == pytest.approx(2 * row["iteration"])


@pytest.mark.slow
def test_export_plot_and_load_with_the_judge(tiny_model_dir: Path, tmp_path: Path) -> None:
    from plus_sdk.judge import PersonalizedJudge
    from plus_sdk.training.export import export_run
    from plus_sdk.training.plots import plot_run

    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run", iterations=2,
                                                      **{"eval.every": 1}))
    run = CoAdaptation(config)
    run.train()
    assert (tmp_path / "run" / "checkpoints" / "best.safetensors").exists()
    files = plot_run(tmp_path / "run")
    assert files[0].name == "curves.png" and files[0].stat().st_size > 1000
    bundle = export_run(tmp_path / "run", tmp_path / "adapters" / "tiny", checkpoint="latest")
    card = json.loads((bundle / "card.json").read_text())
    readme = (bundle / "README.md").read_text()
    assert readme.startswith("# tiny") and f"prompt version {card['prompt_version']}" in readme
    assert all(f"| {key} |" in readme for key in card["metrics"])
    assert card["trained"] and card["summary_task"] == "pets" and "untrained_test_accuracy" in card["metrics"]
    judge = PersonalizedJudge.from_pretrained(bundle)
    summary = run.greedy_summaries(run.test[:1])[0]
    pref = judge.prefer(summary, run.test[0].prompt, run.test[0].chosen, run.test[0].rejected)
    # the bundle's reward model scores exactly as the trained one did
    margin = float(run.reward.margins([summary], run.test[:1])[0])
    assert pref.rewards is not None
    assert pref.rewards[0] - pref.rewards[1] == pytest.approx(margin, abs=1e-4)
    # a new run warm-started from the bundle holds exactly the exported weights
    warm = CoAdaptation(CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "warm",
                                                                 init_from=str(bundle))))
    for a, b in zip(run.ppo.actor_params, warm.ppo.actor_params, strict=True):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())
    for a, b in zip(run.reward.trainer.params, warm.reward.trainer.params, strict=True):
        assert torch.allclose(a.detach().cpu(), b.detach().cpu())
    # init_roles=[summarizer]: the summarizer comes from the bundle, the reward model starts fresh
    fresh = CoAdaptation(CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "fresh")))
    half_config = tiny_config(tiny_model_dir, tmp_path / "half", init_from=str(bundle), init_roles=["summarizer"])
    half = CoAdaptation(CoadaptConfig.model_validate(half_config))
    for a, b in zip(run.ppo.actor_params, half.ppo.actor_params, strict=True):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())
    trained_rm, half_rm = ([p.detach().cpu() for p in r.reward.trainer.params] for r in (run, half))
    assert changed(trained_rm, half_rm)
    for a, b in zip(fresh.reward.trainer.params, half.reward.trainer.params, strict=True):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())


# Recorded on main BEFORE the issue-17 refactor (commit d79d3e5) with the code below; the refactor
# must reproduce them. Tolerance: the same float32 operations run in the same order, so the
# values should be bit-identical; rel 1e-5 leaves room only for a reordered float32 sum.
def test_gradient_checkpointing_is_true_false_or_auto(tiny_model_dir: Path, tmp_path: Path) -> None:
    for value in (True, False, "auto"):
        config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path, **{
            "model.gradient_checkpointing": value}))
        assert config.model.gradient_checkpointing == value
    with pytest.raises(ValueError, match="gradient_checkpointing"):
        CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path, **{
            "model.gradient_checkpointing": "sometimes"}))


RECORDED_KEYS = ("score", "kl", "policy_loss", "entropy", "approx_kl", "rm_loss", "rm_accuracy", "value_loss")
RECORDED_THREE_ITERATIONS: dict[str, list[tuple[float | None, ...]]] = {  # None: the metric is absent
    "rloo": [
        (-0.6921954154968262, 0.0, 0.0, 10.786853790283203,
         0.0, 0.7302640080451965, 0.5, None),
        (-0.6605819463729858, -0.004019498825073242, 0.0, 10.786835670471191,
         0.0, 0.7130332887172699, 0.5, None),
        (-0.7534823417663574, 0.06354784965515137, 0.0, 10.786849021911621,
         0.0, 0.7604691386222839, 0.5, None),
    ],
    "gae": [
        (-0.6920887231826782, 0.0, -0.028529055416584015, 10.78684401512146,
         0.0032361005432903767, 0.6266167759895325, 0.75, 0.4515231177210808),
        (-0.6566165685653687, 0.4372267723083496, -0.04797974042594433, 10.787088632583618,
         0.006405310210539028, 0.6080318093299866, 0.75, 0.5444846749305725),
        (-0.813389778137207, 0.9333844184875488, -0.02988927811384201, 10.786991596221924,
         0.011403859651200794, 0.7795034348964691, 0.5, 1.3626089990139008),
    ],
    "rloo_epochs": [
        (-0.6921954154968262, 0.0, -0.04957758202601781, 10.786821603775024,
         0.009166225732779292, 0.7302640080451965, 0.5, None),
        (-0.6565690040588379, 0.8107385635375977, -0.029819596073735966, 10.786804437637329,
         0.0025307454634457827, 0.7092068195343018, 0.5, None),
        (-0.7552493810653687, 0.2016136646270752, -0.011998105930009384, 10.786835432052612,
         0.014827041908593705, 0.7627171277999878, 0.5, None),
    ],
}
RECORDED_CHANGES: dict[str, dict[str, Any]] = {
    "rloo": {},  # one minibatch, one epoch: the fused update
    "gae": {"ppo.estimator": "gae", "ppo.samples_per_prompt": 1, "ppo.minibatch_size": 1, "ppo.epochs": 2},
    "rloo_epochs": {"ppo.epochs": 2, "ppo.minibatch_size": 2},  # the unfused update without a critic
}


#: the Pets question as it read when the losses above were recorded (prompt version 2); version 3 dropped
#: its copyable "X" placeholder, which changes the tokens, not the training code this test guards
PETS_ASK_V2 = ("From the replies the user picked, which animal does this user favour? Write one "
               "short sentence such as 'The user prefers X.' naming that animal.")


#: fp32 sums are reduced in another order on another CPU or thread count: a 2-core AMD EPYC gave kl
#: -0.0040221 where -0.0040195 is recorded (abs 2.6e-6, rel 6.5e-4); a broken update moves far more
RECORDED_REL, RECORDED_ABS = 1e-3, 1e-5


def test_the_recorded_loss_tolerance_covers_another_cpu_s_fp32_reduction_order() -> None:
    measured_elsewhere = {"kl": (-0.0040221, -0.0040195), "policy_loss": (-0.0119979, -0.0119981)}
    for key, (got, recorded) in measured_elsewhere.items():
        assert got == pytest.approx(recorded, rel=RECORDED_REL, abs=RECORDED_ABS), key
    assert -0.0045 != pytest.approx(-0.0040195, rel=RECORDED_REL, abs=RECORDED_ABS)  # a real change still fails


@pytest.mark.numeric
@pytest.mark.parametrize("name", sorted(RECORDED_CHANGES))
def test_three_iterations_match_the_recorded_losses(tiny_model_dir: Path, tmp_path: Path, name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(prompts._TASK_ASK, "pets", PETS_ASK_V2)
    config = tiny_config(tiny_model_dir, tmp_path / name, iterations=3, **RECORDED_CHANGES[name])
    run = CoAdaptation(CoadaptConfig.model_validate(config))
    for expected in RECORDED_THREE_ITERATIONS[name]:
        metrics = run.iterate()
        run.iteration += 1
        for key, value in zip(RECORDED_KEYS, expected, strict=True):
            if value is None:
                assert key not in metrics, key
            else:
                assert metrics[key] == pytest.approx(value, rel=RECORDED_REL, abs=RECORDED_ABS), (run.iteration, key)


def test_the_budget_guard_stops_only_before_an_iteration_has_changed_weights() -> None:
    now = [0.0]
    guard = budget_guard(deadline=10.0, clock=lambda: now[0])
    guard("generation")
    guard("reward_scoring")
    now[0] = 11.0
    with pytest.raises(BudgetSpentError, match="reference_logprobs"):
        guard("reference_logprobs")
    guard = budget_guard(deadline=10.0, clock=lambda: now[0])
    now[0] = 5.0
    guard("generation")
    guard("ppo_update")
    now[0] = 11.0
    guard("rm_update")  # weights already moved: the iteration finishes
    with pytest.raises(BudgetSpentError):
        guard("generation")  # the next iteration does not start
    assert budget_guard(None, clock=lambda: 1e12)("generation") is None


def test_an_iteration_reports_each_phase_as_it_starts(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = CoAdaptation(CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run")))
    seen: list[str] = []
    run.on_phase = seen.append
    run.iterate()
    assert seen[0] == "generation" and seen.index("ppo_update") < seen.index("rm_update") == len(seen) - 1
    assert {"reward_scoring", "reference_logprobs"} <= set(seen)


def test_a_spent_budget_stops_mid_iteration_at_a_whole_iteration_checkpoint(tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "run", iterations=50,
                                                      max_minutes=1e-6))
    final = run(config)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["phase"] for x in lines] == ["eval", "final"]  # no half iteration was logged
    assert "test_accuracy" in final
    state = read_checkpoint(next((tmp_path / "run" / "checkpoints").glob("iter-*")))
    assert state["iteration"] == 0 and state["data_position"] == 0
