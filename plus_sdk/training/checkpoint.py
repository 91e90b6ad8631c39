"""The one checkpoint format of every trainer: a safetensors file, nested state as JSON in its header.

A training state is a tree of dicts, lists and tuples whose leaves are tensors, numbers, strings,
booleans, None or numpy arrays (optimizer states, schedulers, RNG states, adapter weights).
``flatten`` moves every tensor out of the tree under its path (``ppo/actor_opt/state/0/exp_avg``)
and leaves a JSON-able skeleton; ``unflatten`` puts them back. ``write_checkpoint`` stores the
tensors with ``safetensors`` and the skeleton in the file's metadata, atomically (temporary file,
fsync, rename); ``read_checkpoint`` reverses it. Nothing is pickled, so reading a checkpoint can
never run code, and the round trip is exact (tensors bit for bit, floats through ``repr``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

SUFFIX = ".safetensors"
_STATE_KEY = "state"

# markers of values JSON cannot hold as they are
_TENSOR, _TUPLE, _DICT, _ARRAY = "__tensor__", "__tuple__", "__dict__", "__ndarray__"


def flatten(state: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """A JSON-able copy of ``state``; its tensors go into ``tensors`` under their paths."""
    if isinstance(state, torch.Tensor):
        tensors[path] = state.detach().cpu().contiguous().clone()
        return {_TENSOR: path}
    if isinstance(state, dict):
        if all(isinstance(k, str) for k in state) and _TENSOR not in state:
            return {k: flatten(v, tensors, f"{path}/{k}") for k, v in state.items()}
        return {_DICT: [[flatten(k, tensors, f"{path}/key{i}"), flatten(v, tensors, f"{path}/{k}")]
                        for i, (k, v) in enumerate(state.items())]}
    if isinstance(state, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(state)]}
    if isinstance(state, list):
        return [flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(state)]
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    if type(state).__module__ == "numpy":
        if isinstance(state, np.ndarray):
            tensors[path] = torch.from_numpy(state.astype(np.int64) if state.dtype == np.uint32 else state).clone()
            return {_ARRAY: path, "dtype": str(state.dtype)}
        return state.item()  # a numpy scalar
    raise TypeError(f"checkpoint value at {path or '/'} is a {type(state).__name__}; only tensors, numbers, "
                    "strings, lists, tuples and dicts can be stored")


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The state ``flatten`` took apart."""
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if _TENSOR in tree:
        return tensors[tree[_TENSOR]]
    if _TUPLE in tree:
        return tuple(unflatten(v, tensors) for v in tree[_TUPLE])
    if _DICT in tree:
        return {unflatten(k, tensors): unflatten(v, tensors) for k, v in tree[_DICT]}
    if _ARRAY in tree:
        return tensors[tree[_ARRAY]].numpy().astype(tree["dtype"])
    return {k: unflatten(v, tensors) for k, v in tree.items()}


def write_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={_STATE_KEY: json.dumps(skeleton)})
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state ``write_checkpoint`` stored at ``path`` (tensors on the CPU)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        metadata = handle.metadata() or {}
        if _STATE_KEY not in metadata:
            raise ValueError(f"{path} is not a plus-sdk checkpoint (no state in its safetensors header)")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return unflatten(json.loads(metadata[_STATE_KEY]), tensors)


def adapter_weights(base: Any, name: str) -> dict[str, torch.Tensor]:
    """CPU copies of the weights of LoRA adapter ``name`` on a ``SharedBase``."""
    from peft import get_peft_model_state_dict  # optional: peft, imported on first use (about 0.5 s)

    state = get_peft_model_state_dict(base.model, adapter_name=name)
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def load_adapter_weights(base: Any, name: str, weights: dict[str, torch.Tensor]) -> None:
    """Copy ``weights`` into LoRA adapter ``name`` of a ``SharedBase``; unknown keys are an error."""
    from peft import set_peft_model_state_dict  # optional: peft, imported on first use (about 0.5 s)

    result = set_peft_model_state_dict(base.model, weights, adapter_name=name)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint adapter {name!r} has unexpected keys: {unexpected[:3]}")
