"""Training subcommands of the ``plus`` command (data, train-rm, train, eval, plot, export).

Each feature module adds its own parser through one ``add_*`` function listed here.
"""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register every training subcommand on ``sub``."""
    del sub  # the data, reward-model and PPO modules register here as they land
