"""Line-per-event JSON logs of a run folder (``metrics.jsonl``, ``samples.jsonl``): append, and cut after a resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from plus_sdk.files import atomic_write_text


def append_jsonl(path: Path, row: dict[str, Any], *, durable: bool = False) -> None:
    """Append ``row`` as one JSON line; ``durable`` also fsyncs it (it survives a crash right after)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


def truncate_metrics(path: Path, iteration: int) -> None:
    """Drop metric lines written after ``iteration`` (they are recomputed after a resume)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("iteration", 0) <= iteration]
    atomic_write_text(path, "\n".join(kept) + ("\n" if kept else ""))
