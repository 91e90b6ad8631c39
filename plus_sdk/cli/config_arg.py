"""One spelling of the config argument: ``plus CMD CONFIG [key=value ...]`` for every command that takes one.

``--config CONFIG`` still works as a deprecated alias (a warning says so). The first
positional word without ``=`` is the config file; the rest are dotted ``key=value`` overrides.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("plus_sdk.cli")


def add_config_arguments(parser: argparse.ArgumentParser, example: str, overrides_example: str) -> None:
    """``[CONFIG] [key=value ...]`` positionals and the deprecated ``--config`` alias."""
    parser.add_argument("overrides", nargs="*", metavar="[CONFIG] KEY=VALUE",
                        help=f"a YAML file (e.g. {example}) then settings as key=value, e.g. {overrides_example}")
    parser.add_argument("--config", default=None, dest="config_option", metavar="CONFIG",
                        help="deprecated alias of the positional CONFIG")
    parser.set_defaults(split_config=True)


def split_config(args: argparse.Namespace) -> None:
    """Set ``args.config`` and ``args.overrides`` from the positionals (or the deprecated option)."""
    words = list(args.overrides)
    positional = words.pop(0) if words and "=" not in words[0] else None
    if positional is not None and args.config_option is not None:
        raise ValueError(f"the config is given twice ({positional} and --config {args.config_option}); "
                         "give it once, as the first positional argument")
    if args.config_option is not None:
        logger.warning("--config is deprecated: put the config file first, e.g. `plus %s %s`",
                       args.command, args.config_option)
    args.config = positional or args.config_option
    args.overrides = words
