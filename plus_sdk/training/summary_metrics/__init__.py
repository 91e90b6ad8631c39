"""Summary metrics the training loop logs, each dataset's through its hook (``hooks.HOOKS``).

- ``hooks``: the registry the generic loop reads (``summary_metrics``, ``names_user``, ``headline_names``);
- ``pets``: does a summary name the animal its Pets user favours?
- ``styles``: does a summary name every side its styles user prefers?
"""
