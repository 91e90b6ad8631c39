"""Reward-model training: one trainer, one module per method (see ``registry``)."""
