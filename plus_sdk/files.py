"""File helpers: the plus-sdk cache folder, and atomic writes of a text file or a whole folder
(readers never see half of one)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` where it is listed, else set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(directory: bool = False) -> int:
    """The mode a plain ``open`` (0o666) or ``mkdir`` (0o777) would give under the user's umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file so that readers see the old or the new content, never a torn one.

    The file gets the user's umask (``tempfile`` would leave it at 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, umask_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class TargetFolderError(ValueError):
    """A folder to write is not one plus-sdk may replace: the current folder (or one holding it), a file,
    or a non-empty folder without ``force``."""


def check_target_folder(target: str | os.PathLike[str], *, force: bool = False) -> Path:
    """The resolved ``target`` if a folder may be written there, else ``TargetFolderError`` saying why.

    Allowed: a missing or empty folder; a non-empty one only with ``force`` (CLI: ``--force``).
    Never the current folder or a folder that holds it, and never a file, whatever ``force`` says.
    """
    resolved = Path(target).expanduser().resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise TargetFolderError(f"output folder {target} is the current folder or holds it; it is never replaced: "
                                f"give a new folder, e.g. {Path(target) / 'bundle'}")
    if resolved.exists() and not resolved.is_dir():
        raise TargetFolderError(f"output folder {target} is a file; give a folder path")
    if resolved.is_dir() and not force:
        entries = sorted(p.name for p in resolved.iterdir())
        if entries:
            raise TargetFolderError(f"output folder {target} is not empty ({len(entries)} entries, e.g. "
                                    f"{entries[0]!r}); choose a new folder, or pass --force (force=True) to "
                                    "replace it")
    return resolved


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False  # e.g. a file system without RENAME_EXCHANGE: fall back to two renames


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Build a folder in a sibling staging folder, then swap it in place of ``target``.

    Readers see the old folder or the complete new one, never half of it; on an error the
    staging folder is removed and ``target`` is left as it was. ``target`` must pass
    ``check_target_folder``: a non-empty folder is replaced only with ``force``, and the current
    folder never. Only the staging folder (and, with ``force``, the replaced folder, after the
    swap) is ever removed.
    """
    resolved = check_target_folder(target, force=force)
    resolved.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{resolved.name}.", dir=resolved.parent))
    staging.chmod(umask_mode(directory=True))  # mkdtemp makes it 0700
    try:
        yield staging
        check_target_folder(target, force=force)  # it may have filled while we wrote
        if resolved.is_dir() and any(resolved.iterdir()):  # force: swap, then remove the old one
            if not _exchange(staging, resolved):
                old = Path(tempfile.mkdtemp(prefix=f".{resolved.name}.old.", dir=resolved.parent))
                os.replace(resolved, old / "folder")
                os.replace(staging, resolved)
                staging = old
        else:
            os.replace(staging, resolved)  # over a missing or empty folder: one atomic rename
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def cache_dir() -> Path:
    """The plus-sdk cache folder (``PLUS_SDK_CACHE`` or ``~/.cache/plus-sdk``), created."""
    root = Path(os.environ.get("PLUS_SDK_CACHE", Path.home() / ".cache" / "plus-sdk")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def non_finite_path(value: Any, where: str = "") -> str | None:
    """The dotted path of the first NaN or infinite number inside ``value`` (dicts, lists, floats), or ``None``.

    JSON has no NaN or Infinity; Python's ``json`` accepts them anyway, so readers of untrusted
    JSON call this (or ``json_lines``) to refuse them, naming where they were.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return where or "value"
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite_path(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


class _NonFiniteNumberError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumberError(name)


def json_lines(handle: Iterable[str]) -> Iterator[tuple[int, Any, json.JSONDecodeError | None]]:
    """Each non-blank line of a JSON-lines stream: (1-based line number, value, parse error).

    A line that is not JSON gives ``(number, None, error)``, so each reader decides whether to
    skip it or refuse the file. ``NaN`` and ``Infinity`` are not JSON and count as errors.
    """
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value, error = json.loads(line, parse_constant=_refuse_constant), None
        except json.JSONDecodeError as exc:
            value, error = None, exc
        except _NonFiniteNumberError as exc:
            value, error = None, json.JSONDecodeError(f"{exc.name} is not a JSON number (use a number or null)",
                                                      line, max(line.find(exc.name), 0))
        yield number, value, error
