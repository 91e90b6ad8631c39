"""How many torch CPU threads the numeric tests run with: ``$PLUS_TEST_THREADS`` (default 1).

``.ci/run`` (``make test-threads``) runs the tests marked ``numeric`` once with 1 thread and
once with 2, so a loss pinned on one CPU and thread count that only holds there is caught:
fp32 sums are reduced in a different order with more threads.
"""

from __future__ import annotations

import os

#: Environment variable naming the torch thread count of the numeric tests.
THREADS_ENV = "PLUS_TEST_THREADS"


def threads_under_test() -> int:
    """``$PLUS_TEST_THREADS`` as a positive integer (default 1)."""
    raw = os.environ.get(THREADS_ENV, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"${THREADS_ENV}={raw!r}: give a positive integer, e.g. 2")
    return int(raw)
