"""Quiet model loads: known third-party noise is hidden while plus-sdk loads or saves a model.

Hidden inside ``quiet_loading()``: transformers' ``FutureWarning`` about
``is_gradient_checkpointing``, its "Loading weights" progress bar and info logs, and peft's
"Adapter ... was active which is now deleted" warning. Everything else still shows.
``set_verbose(True)`` (``plus -v``, or ``PLUS_VERBOSE=1``) shows all of it again.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

#: (category, message regex) of the warnings hidden during loads.
KNOWN_NOISE: tuple[tuple[type[Warning], str], ...] = (
    (FutureWarning, r".*is_gradient_checkpointing.*"),
    (UserWarning, r"Adapter .* was active which is now deleted.*"),
)

_verbose = os.environ.get("PLUS_VERBOSE", "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Show (``True``) or hide (``False``) third-party load noise from now on."""
    global _verbose
    _verbose = on


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide the known load warnings and progress bars inside the block (unless verbose)."""
    if _verbose:
        yield
        return
    from transformers.utils import logging as hf_logging  # optional at import: loaded with the first model

    bar_was_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            for category, pattern in KNOWN_NOISE:
                warnings.filterwarnings("ignore", message=pattern, category=category)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_was_on:
            hf_logging.enable_progress_bar()
