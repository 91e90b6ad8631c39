"""``python -m plus_sdk.cli ...`` (also under ``accelerate launch -m plus_sdk.cli``): the ``plus`` command."""

from plus_sdk.cli import main

raise SystemExit(main())
