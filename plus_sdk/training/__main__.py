"""``python -m plus_sdk.training CONFIG [--resume] [key=value ...]`` (also under ``accelerate launch -m``).

The same as ``plus train``; a leading ``train`` word is accepted too.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the ``plus train`` arguments and run co-adaptation."""
    from plus_sdk.training.coadapt import cmd_train

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "train":
        args = args[1:]
    parser = argparse.ArgumentParser(prog="python -m plus_sdk.training", description=__doc__)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--run-dir", default=None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return cmd_train(parser.parse_args(args))


if __name__ == "__main__":
    raise SystemExit(main())
