"""A one-line spinner naming the phase (loading, summarizing, scoring) of a command that loads models.

It draws on stderr only when stderr is a terminal: piped or redirected output gets nothing from it,
so logs and JSON stay clean. ``PLUS_SDK_QUIET=1`` turns it off too.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

FRAMES = "|/-\\"


class Spinner:
    """``with Spinner() as spin: spin.phase("loading the model"); ...``: a spinner with the phase and elapsed time."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        quiet = os.environ.get("PLUS_SDK_QUIET", "").strip().lower() not in ("", "0", "false", "no")
        self.enabled = bool(isatty and isatty()) and not quiet
        self.interval = interval
        self.text = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start = time.perf_counter()

    def phase(self, text: str) -> None:
        """Show ``text`` as the current phase from now on."""
        with self._lock:
            self.text = text
        self._draw(0)

    def _draw(self, tick: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            line = f"\r\x1b[K{FRAMES[tick % len(FRAMES)]} {self.text} ({time.perf_counter() - self._start:.0f} s)"
            self.stream.write(line)
            self.stream.flush()

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            self._draw(tick)

    def __enter__(self) -> Spinner:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="plus-spinner", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled:
            with self._lock:
                self.stream.write("\r\x1b[K")  # leave the line empty for what comes next
                self.stream.flush()
