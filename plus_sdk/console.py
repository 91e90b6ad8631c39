"""Command output: results to stdout, command errors to stderr.

The ``plus`` subcommands write through these two functions; library code logs instead.
"""

from __future__ import annotations

import sys
from typing import Any


def emit(text: str) -> None:
    """Write a command's result to stdout."""
    sys.stdout.write(f"{text}\n")


def emit_error(text: str) -> None:
    """Write a command's error message to stderr."""
    sys.stderr.write(f"{text}\n")


def readable_errors(exc: Any) -> str:
    """A pydantic ``ValidationError`` as one ``field: problem`` line per error (no documentation links)."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())) or "input"
        lines.append(f"  {where}: {error.get('msg', 'invalid')}")
    return "\n".join(lines)
