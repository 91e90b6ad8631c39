"""``python -m plus_sdk.training CONFIG [--resume] [key=value ...]`` (also under ``accelerate launch -m``).

The same as ``plus train`` (its parser comes from ``plus_sdk.cli.train``); a leading ``train`` word is
accepted too.
"""

from __future__ import annotations

import argparse
import logging
import sys

from plus_sdk.cli.train import add_train_arguments, cmd_train


def main(argv: list[str] | None = None) -> int:
    """Parse the ``plus train`` arguments and run co-adaptation."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":
        args = args[1:]
    parser = argparse.ArgumentParser(prog="python -m plus_sdk.training", description=__doc__)
    add_train_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return cmd_train(parser.parse_args(args))


if __name__ == "__main__":
    raise SystemExit(main())
