"""Training data: one record format and the builders of the paper's datasets."""

from plus_sdk.training.data.records import TrainingRecord, read_jsonl, write_jsonl

__all__ = ["TrainingRecord", "read_jsonl", "write_jsonl"]
