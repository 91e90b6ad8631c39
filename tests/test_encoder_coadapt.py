"""Algorithm 1 on the encoder roles: the same co-adaptation loop, with the context reader's soft tokens
as the summarizer's prompt and the encoder-path head as the reward model, warm-started from a
``plus train general`` bundle; resume is exact and the exported bundle judges through the public API.

The encoder is the real all-MiniLM-L6-v2; the LM is the suite's tiny random Llama (plumbing, not quality).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from plus_sdk import PersonalizedJudge
from plus_sdk.context_reader import READER_SPEC
from plus_sdk.encoder_reward import SPEC_FILE
from plus_sdk.training.export import export_run
from plus_sdk.training.ppo.coadapt import CoAdaptation, CoadaptConfig
from plus_sdk.training.ppo.roles import EncoderReward, ReaderPrompts


@pytest.fixture(scope="module")
def general_bundle(general_run: Path) -> Path:
    """The encoder-path bundle of the suite's small ``plus train general`` run (conftest)."""
    return general_run / "bundle"


def encoder_config(model_dir: Path, bundle: Path, run_dir: Path, **changes: Any) -> CoadaptConfig:
    config: dict[str, Any] = {
        "roles": "encoder", "init_from": str(bundle), "run_dir": str(run_dir), "seed": 0, "iterations": 2,
        "contexts_per_iteration": 2, "rm_steps": 2, "rm_batch_size": 4, "checkpoint_every": 1, "progress": False,
        "model": {"summarizer_base": str(model_dir), "threads": 1},
        "data": {"dataset": "general", "n_train": 40, "n_test": 8, "n_ood": 4, "n_context": 2},
        "eval": {"every": 100, "test_rows": 4, "ood_rows": 2, "final_test_rows": 4, "final_ood_rows": 2},
        "ppo": {"samples_per_prompt": 2, "max_new_tokens": 6, "actor_lr": 0.01},
        "encoder": {"lr": 0.01},
    }
    config.update(changes)
    return CoadaptConfig.model_validate(config)


class KilledError(Exception):
    """Stands for the process being killed."""


def snapshot(run: CoAdaptation) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.ppo.actor_params + run.reward.params]


def test_encoder_roles_train_the_summarizer_lora_and_the_reward_head_in_one_loop(
        tiny_model_dir: Path, general_bundle: Path, tmp_path: Path) -> None:
    run = CoAdaptation(encoder_config(tiny_model_dir, general_bundle, tmp_path / "run"))
    assert isinstance(run.reward, EncoderReward) and isinstance(run.context_prompts, ReaderPrompts)
    lora_before = [p.detach().clone() for p in run.ppo.actor_params]
    head_before = [p.detach().clone() for p in run.reward.params]
    metrics = run.iterate()
    assert any(not torch.equal(a, b) for a, b in zip(lora_before, run.ppo.actor_params, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(head_before, run.reward.params, strict=True))
    assert metrics["rm_step"] == 2.0 and "rm_loss" in metrics and "kl" in metrics
    # the soft tokens are ids past the vocabulary, and only a batch's own contexts are readable
    ids = run.context_prompts.prompt_ids(run.test[:2])
    assert max(ids[0]) >= run.context_prompts.embedding.vocab
    assert run.context_prompts.embedding.table is None  # the table lives only inside `reading`


def test_an_encoder_role_run_needs_an_encoder_path_bundle(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="roles=encoder needs init_from"):
        CoAdaptation(encoder_config(tiny_model_dir, tmp_path, tmp_path / "run", init_from=None))


def test_an_encoder_role_run_resumed_midway_ends_where_an_unbroken_run_ends(
        tiny_model_dir: Path, general_bundle: Path, tmp_path: Path) -> None:
    whole = CoAdaptation(encoder_config(tiny_model_dir, general_bundle, tmp_path / "whole"))
    whole.train()
    first = CoAdaptation(encoder_config(tiny_model_dir, general_bundle, tmp_path / "split"))
    save = first.save_checkpoint

    def save_then_die(*, best: bool = False) -> Path | None:  # the process dies right after checkpoint 1
        path = save(best=best)
        if not best:
            raise KilledError
        return path

    first.save_checkpoint = save_then_die  # type: ignore[method-assign]
    with pytest.raises(KilledError):
        first.train()
    assert first.iteration == 1
    resumed = CoAdaptation(encoder_config(tiny_model_dir, general_bundle, tmp_path / "split"))
    resumed.train(resume=True)
    for a, b in zip(snapshot(whole), snapshot(resumed), strict=True):
        assert torch.equal(a, b)


def test_an_exported_encoder_role_run_is_a_bundle_the_judge_scores_as_the_run_did(
        tiny_model_dir: Path, general_bundle: Path, tmp_path: Path) -> None:
    run = CoAdaptation(encoder_config(tiny_model_dir, general_bundle, tmp_path / "run", iterations=1))
    run.train()
    out = export_run(tmp_path / "run", tmp_path / "bundle", checkpoint="latest")
    assert (out / "summarizer" / READER_SPEC).is_file() and (out / "reward" / SPEC_FILE).is_file()
    judge = PersonalizedJudge.from_pretrained(out, quiet=True)
    record = run.test[0]
    summary = run.greedy_summaries([record])[0]
    pref = judge.prefer(summary, record.prompt, record.chosen, record.rejected)
    margin = float(run.reward.margins([summary], [record])[0])
    assert pref.probability == pytest.approx(float(torch.sigmoid(torch.tensor(margin))), abs=1e-5)
    assert judge.summarizer.summarize(record.context).text == summary  # type: ignore[union-attr]  # the bundle's summarizer writes what the run wrote
