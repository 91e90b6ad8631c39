"""The ``plus`` command: thin wrappers around library functions.

Results go to stdout (JSON for machine use), logs to stderr. One module per command group:
``judge`` (summarize, judge, demo), ``serve``, ``summaries`` (the summary store), ``keys``
(per-user API keys), ``data`` and
``train`` (train, train-rm, eval, eval-judge, eval-generate, plot, export); the last two are
added only when the training extras are installed. Library modules never import this package.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from plus_sdk import __version__
from plus_sdk.cli.config_arg import split_config
from plus_sdk.cli.judge import add_judge_commands
from plus_sdk.cli.keys import add_keys_commands
from plus_sdk.cli.serve import add_serve_commands
from plus_sdk.cli.summaries import add_summaries_commands
from plus_sdk.console import emit_error, readable_errors
from plus_sdk.quiet import set_verbose
from plus_sdk.store.errors import SummaryStoreError

logger = logging.getLogger("plus_sdk.cli")

try:
    from plus_sdk.cli.data import add_data_commands
    from plus_sdk.cli.train import add_train_commands
except ImportError as exc:  # optional: the training extras (accelerate, datasets, ...) are not installed
    logger.debug("training commands unavailable: %s", exc)
    TRAINING_COMMANDS: tuple[Callable[[Any], None], ...] = ()
else:
    TRAINING_COMMANDS = (add_data_commands, add_train_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plus", description="Personalize LLM assistants with PLUS summaries.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging on stderr, and third-party load warnings and progress bars")
    parser.add_argument("--version", action="version", version=f"plus-sdk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_judge_commands(sub)
    add_serve_commands(sub)
    add_summaries_commands(sub)
    add_keys_commands(sub)

    for add_commands in TRAINING_COMMANDS:
        add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    set_verbose(args.verbose)
    try:
        if getattr(args, "split_config", False):
            split_config(args)
        return int(args.func(args) or 0)
    except ValidationError as exc:
        emit_error("error: invalid input:\n" + readable_errors(exc))
        return 2
    except (ValueError, FileNotFoundError, SummaryStoreError) as exc:
        emit_error(f"error: {exc}")
        return 2

