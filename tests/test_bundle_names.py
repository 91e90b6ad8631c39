"""Bundles by name and warm starts: local names resolve locally (no network), init_from takes what
from_pretrained takes, and a misfit or unknown init_from is one line naming the fix."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_coadapt import tiny_config

from plus_sdk.bundle import find_bundle
from plus_sdk.models import ModelNotFoundError
from plus_sdk.training.config import LoraSettings, load_config
from plus_sdk.training.ppo.coadapt import CoAdaptation, CoadaptConfig
from plus_sdk.training.recipes import resolve_recipe
from plus_sdk.training.warm_start import WarmStartError, check_fits, resolve_init_from

REPO = Path(__file__).resolve().parents[1]


def _plus(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "plus_sdk.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=cwd)


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CoAdaptation:
    """A one-iteration co-adaptation run on the tiny model (its folder holds a checkpoint)."""
    folder = tmp_path_factory.mktemp("tiny-run") / "run"
    run = CoAdaptation(CoadaptConfig.model_validate(tiny_config(tiny_model_dir, folder, iterations=1)))
    run.train()
    return run


def test_plus_train_show_prints_the_resolved_recipe_and_exits_0() -> None:
    result = _plus("train", "styles", "iterations=3", "data.dataset=files", "--show")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["iterations"] == 3 and shown["data"]["dataset"] == "files" and shown["init_from"] is None
    assert shown["model"]["summarizer_lora"]["top_layers"] == 10  # the recipe's own settings, resolved


def test_shipped_recipes_that_warm_start_from_an_unshipped_bundle_default_to_starting_fresh() -> None:
    from plus_sdk.training.recipes import shipped_recipes

    for name in shipped_recipes():
        path = resolve_recipe(name)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if data.get("init_from"):
            assert find_bundle(data["init_from"]) is not None, f"{name} warm-starts from {data['init_from']}"
    assert "STARTS FRESH" in resolve_recipe("styles").read_text(encoding="utf-8")


def test_an_unknown_init_from_names_the_folders_searched_and_the_nearest_bundle() -> None:
    with pytest.raises(WarmStartError, match=r"init_from=pets-smolm2: .*nearest: pets-smollm2.*init_from=null"):
        resolve_init_from("pets-smolm2")


def test_init_from_takes_a_shipped_bundle_name_as_from_pretrained_does() -> None:
    source = resolve_init_from("pets-smollm2")
    assert source.kind == "bundle" and source.path == find_bundle("pets-smollm2")
    assert source.lora["summarizer"]["r"] == 16


def test_a_bundle_whose_lora_shape_differs_from_the_recipe_is_one_line_naming_the_setting() -> None:
    config = load_config(CoadaptConfig, resolve_recipe("styles"))
    with pytest.raises(WarmStartError) as info:
        check_fits(resolve_init_from("pets-smollm2"), ["summarizer", "reward"], base=None, num_layers=30,
                   summarizer_lora=config.model.summarizer_lora, reward_lora=config.rm.lora)
    message = str(info.value)
    assert "\n" not in message and "model.summarizer_lora.target_modules=[k_proj,o_proj,q_proj,v_proj]" in message
    with pytest.raises(WarmStartError, match=r"rm\.lora\.r=16"):
        check_fits(resolve_init_from("pets-smollm2"), ["reward"], base=None, num_layers=30,
                   summarizer_lora=LoraSettings(), reward_lora=LoraSettings(r=8, alpha=32))


def test_init_from_a_bundle_on_another_base_names_model_summarizer_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "r", init_from="pets-smollm2"))
    with pytest.raises(WarmStartError, match=r"model\.summarizer_base"):
        CoAdaptation(config)


def test_init_from_a_run_folder_starts_from_its_checkpoint(tiny_run: CoAdaptation, tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:
    config = CoadaptConfig.model_validate(tiny_config(tiny_model_dir, tmp_path / "warm",
                                                      init_from=str(tiny_run.run_dir)))
    warm = CoAdaptation(config)
    for a, b in zip(tiny_run.ppo.actor_params, warm.ppo.actor_params, strict=True):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())
    for a, b in zip(tiny_run.reward.trainer.params, warm.reward.trainer.params, strict=True):
        assert torch.allclose(a.detach().cpu(), b.detach().cpu())


def test_a_bundle_name_resolves_in_local_adapters_before_shipped_and_user_bundles(
        tiny_run: CoAdaptation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plus_sdk.training.export import export_run

    monkeypatch.setenv("PLUS_SDK_BUNDLES", str(tmp_path / "user"))
    export_run(tiny_run.run_dir, tmp_path / "user" / "mine", checkpoint="latest")
    export_run(tiny_run.run_dir, tmp_path / "work" / "adapters" / "mine", checkpoint="latest")
    assert find_bundle("mine") == tmp_path / "user" / "mine"
    monkeypatch.chdir(tmp_path / "work")
    assert find_bundle("mine") == Path.cwd() / "adapters" / "mine"
    assert find_bundle("../mine") is None and find_bundle("nothing-here") is None


def test_loading_a_user_exported_bundle_by_name_makes_no_network_call(
        tiny_run: CoAdaptation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plus_sdk import PersonalizedJudge

    user = tmp_path / "user-bundles"
    result = _plus("export", str(tiny_run.run_dir), "my-bundle", "--user-bundles", "--checkpoint", "latest",
                   env={"PLUS_SDK_BUNDLES": str(user)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bundle"] == str(user / "my-bundle")
    calls: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise OSError("network blocked by the test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("PLUS_SDK_BUNDLES", str(user))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    judge = PersonalizedJudge.from_pretrained("my-bundle", quiet=True)
    assert judge.trained and judge.prefer("likes cats", "A pet?", "Cats.", "Dogs.").choice in ("a", "b", "tie")
    assert calls == []
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        PersonalizedJudge.from_pretrained("my-bundel", quiet=True)
    message = str(info.value)
    assert time.perf_counter() - start < 15
    assert str(user) in message and "adapters" in message and "Nearest bundle names: my-bundle" in message
    assert "no hub answered" in message


def test_export_to_user_bundles_refuses_a_path_as_the_name(tiny_run: CoAdaptation, tmp_path: Path) -> None:
    result = _plus("export", str(tiny_run.run_dir), "some/where", "--user-bundles")
    assert result.returncode == 2 and "--user-bundles takes a bundle NAME" in result.stderr
    assert "Traceback" not in result.stderr
