"""Training subcommands of the ``plus`` command (data, train-rm, train, eval, plot, export).

Each feature module adds its own parser through one ``add_*`` function listed here.
"""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register every training subcommand on ``sub``."""
    from plus_sdk.training.data.cli import add_data_commands

    add_data_commands(sub)
    from plus_sdk.training.evaluate_llm import add_eval_llm_commands

    add_eval_llm_commands(sub)
    from plus_sdk.training.rm.run import add_rm_commands

    add_rm_commands(sub)
    from plus_sdk.training.coadapt import add_train_commands

    add_train_commands(sub)
