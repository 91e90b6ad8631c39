"""The checkpoint format: nested training state through safetensors + JSON, exactly, without pickle."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from plus_sdk.training.checkpoint import flatten, read_checkpoint, unflatten, write_checkpoint


def test_flatten_moves_tensors_out_under_their_paths() -> None:
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten({"a": {"w": torch.ones(2)}, "b": (1, 2.5), "c": {0: "x"}}, tensors)
    assert list(tensors) == ["/a/w"]
    assert tree == {"a": {"w": {"__tensor__": "/a/w"}}, "b": {"__tuple__": [1, 2.5]}, "c": {"__dict__": [[0, "x"]]}}
    assert unflatten(tree, tensors)["c"] == {0: "x"}


def test_an_optimizer_and_rng_states_round_trip_exactly(tmp_path: Path) -> None:
    param = torch.nn.Parameter(torch.randn(3, 2))
    optimizer = torch.optim.AdamW([param], lr=0.1, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    param.grad = torch.randn(3, 2)
    optimizer.step()
    scheduler.step()
    state = {"opt": optimizer.state_dict(), "sched": scheduler.state_dict(), "torch": torch.get_rng_state(),
             "python": random.getstate(), "numpy": np.random.get_state(), "best": -1.0, "none": None}
    write_checkpoint(tmp_path / "c.safetensors", state)
    back = read_checkpoint(tmp_path / "c.safetensors")
    assert back["opt"]["param_groups"] == optimizer.state_dict()["param_groups"]  # betas stay a tuple
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert back["sched"] == scheduler.state_dict()
    assert torch.equal(back["torch"], torch.get_rng_state())
    random.setstate(back["python"])  # accepted as it is: tuples restored
    np.random.set_state(back["numpy"])
    assert back["numpy"][1].dtype == np.uint32 and back["best"] == -1.0 and back["none"] is None
    fresh = torch.optim.AdamW([torch.nn.Parameter(param.detach().clone())], lr=0.1, betas=(0.9, 0.95))
    fresh.load_state_dict(back["opt"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg_sq"], optimizer.state_dict()["state"][0]["exp_avg_sq"])


def test_an_unstorable_value_is_named_by_its_path() -> None:
    with pytest.raises(TypeError, match="/ppo/kl_ctl is a object"):
        flatten({"ppo": {"kl_ctl": object()}}, {})


def test_a_file_without_plus_state_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a plus-sdk checkpoint"):
        read_checkpoint(tmp_path / "other.safetensors")


def test_a_deepspeed_shard_round_trips_through_the_checkpoint_format(tmp_path) -> None:
    from types import SimpleNamespace

    from plus_sdk.training.checkpoint import read_checkpoint, write_checkpoint
    from plus_sdk.training.rm.trainer import portable_shard, restored_shard

    saved_scaler = SimpleNamespace(cur_scale=1.0, cur_iter=7, dynamic=False)
    shard = {"loss_scaler": saved_scaler, "param_slice_mappings": [{"w": object()}],
             "base_optimizer_state": {"state": {0: {"exp_avg": torch.ones(2)}}}}
    path = write_checkpoint(tmp_path / "s.safetensors", {"optimizer_shards": [portable_shard(shard)]})
    back = read_checkpoint(path)["optimizer_shards"][0]
    assert back["loss_scaler"] == {"cur_scale": 1.0, "cur_iter": 7, "dynamic": False}
    live_scaler = SimpleNamespace(cur_scale=4.0, cur_iter=0, dynamic=False)
    live = {"loss_scaler": live_scaler, "param_slice_mappings": ["rebuilt"]}
    restored = restored_shard(back, live)
    assert restored["loss_scaler"] is live_scaler and live_scaler.cur_iter == 7 and live_scaler.cur_scale == 1.0
    assert restored["param_slice_mappings"] == ["rebuilt"]
    assert torch.equal(restored["base_optimizer_state"]["state"][0]["exp_avg"], torch.ones(2))
