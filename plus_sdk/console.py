"""Command output: results to stdout, command errors to stderr.

The ``plus`` subcommands write through these two functions; library code logs instead.
"""

from __future__ import annotations

import sys


def emit(text: str) -> None:
    """Write a command's result to stdout."""
    sys.stdout.write(f"{text}\n")


def emit_error(text: str) -> None:
    """Write a command's error message to stderr."""
    sys.stderr.write(f"{text}\n")
