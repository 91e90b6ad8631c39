"""Reading upstream datasets (the builders' raw input): a local JSONL/JSON/Parquet file, a
``datasets`` folder, or a hub name. (``source.py`` is something else: the records a run trains on.)

Builders get plain ``dict`` rows (or ``None`` for a line that is not valid JSON, so that they can
count it as malformed). Hub names need the network; offline, pass a local copy instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plus_sdk.files import json_lines

logger = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """An upstream dataset that cannot be read at all."""


def iter_json_lines(path: Path) -> Iterator[dict[str, Any] | None]:
    """Rows of a JSONL file; a line that is not a JSON object yields ``None`` (and is logged)."""
    with path.open(encoding="utf-8") as handle:
        for number, row, error in json_lines(handle):
            if error is not None:
                logger.warning("%s:%d: not valid JSON (%s); row skipped", path, number, error.msg)
            yield row if isinstance(row, dict) else None


def _iter_file(path: Path) -> Iterator[dict[str, Any] | None]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_json_lines(path)
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data if isinstance(data, list) else data.get("data", data.get("rows"))
        if not isinstance(rows, list):
            raise SourceError(f"{path}: expected a JSON list of rows (or {{'data': [...]}})")
        yield from (r if isinstance(r, dict) else None for r in rows)
    elif suffix in {".parquet", ".arrow"}:
        from datasets import Dataset  # optional: datasets (training extra), imported on first use (about 1.4 s)

        dataset = Dataset.from_parquet(str(path)) if suffix == ".parquet" else Dataset.from_file(str(path))
        yield from dataset
    else:
        raise SourceError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .parquet or .arrow")


def _iter_dataset_folder(folder: Path) -> Iterator[dict[str, Any] | None]:
    from datasets import (  # optional: datasets (training extra), imported on first use (about 1.4 s)
        DatasetDict,
        load_from_disk,
    )

    dataset = load_from_disk(str(folder))
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    yield from dataset


def iter_rows(source: str | Path, *, name: str | None = None, split: str = "train") -> Iterator[dict[str, Any] | None]:
    """Rows of ``source``: a file, a ``save_to_disk`` folder, a folder of JSONL files, or a hub name.

    ``name`` is the hub configuration (e.g. ``"survey"`` for PRISM); ignored for local paths.
    """
    path = Path(source).expanduser()
    if path.is_file():
        yield from _iter_file(path)
        return
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            yield from _iter_dataset_folder(path)
            return
        files = sorted(path.rglob("*.jsonl")) or sorted(path.rglob("*.parquet"))
        if not files:
            raise SourceError(f"{path} holds no .jsonl or .parquet files and is not a datasets folder")
        for file in files:
            yield from _iter_file(file)
        return
    if "/" not in str(source) or str(source).startswith((".", "/", "~")):
        raise SourceError(f"{source} is neither an existing local path nor a hub name like 'owner/name'")
    try:
        from datasets import load_dataset  # optional: datasets (training extra), imported on first use (about 1.4 s)

        dataset = load_dataset(str(source), name, split=split)
    except Exception as exc:  # network, auth, missing config: one clear message
        raise SourceError(
            f"could not load {source!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline? Download it elsewhere and pass the local file or folder instead."
        ) from exc
    yield from dataset
