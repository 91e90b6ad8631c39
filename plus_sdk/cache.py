"""Summary cache: each user's context is summarized once per summarizer and prompt version.

Keys combine the context's content hash, the summarizer's id (base model, adapter
fingerprint, task) and ``PROMPT_VERSION``; a change to any of them misses the cache. The
cache lives in memory and, when given a folder, on disk as one JSON file per entry written
atomically, so several processes can share it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from plus_sdk.files import atomic_write_text
from plus_sdk.types import Summary

logger = logging.getLogger(__name__)


def cache_key(source_hash: str, summarizer_id: str, prompt_version: str) -> str:
    """The key of one cached summary."""
    blob = f"{source_hash}|{summarizer_id}|{prompt_version}".encode()
    return hashlib.sha256(blob).hexdigest()[:40]


class SummaryCache:
    """An LRU of summaries in memory, optionally backed by a folder of JSON files."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, max_entries: int = 100_000) -> None:
        self.folder = Path(folder).expanduser() if folder else None
        self.max_entries = max_entries
        self._memory: OrderedDict[str, Summary] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> Summary | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._memory[key]
        if self.folder is not None and self._path(key).exists():
            try:
                summary = Summary.model_validate_json(self._path(key).read_text(encoding="utf-8"))
            except ValueError:
                logger.warning("Ignoring an unreadable cache entry %s", self._path(key))
            else:
                self._remember(key, summary)
                self.hits += 1
                return summary
        self.misses += 1
        return None

    def put(self, key: str, summary: Summary) -> None:
        self._remember(key, summary)
        if self.folder is not None:
            atomic_write_text(self._path(key), summary.model_dump_json())

    def _remember(self, key: str, summary: Summary) -> None:
        with self._lock:
            self._memory[key] = summary
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)

    def forget(self, source_hashes: set[str]) -> int:
        """Drop every entry (in memory and on disk) summarizing one of ``source_hashes``; returns how many."""
        if not source_hashes:
            return 0
        with self._lock:
            gone = [k for k, v in self._memory.items() if v.source_hash in source_hashes]
            for key in gone:
                del self._memory[key]
        removed = len(gone)
        for path in self.folder.glob("*/*.json") if self.folder is not None and self.folder.is_dir() else ():
            try:
                summary = Summary.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if summary.source_hash in source_hashes:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def __len__(self) -> int:
        return len(self._memory)
