"""Training extras of plus-sdk: data builders, reward models and baselines, PPO, co-adaptation.

Install with ``pip install plus-sdk[training]``. Nothing in the core package imports this.
"""
