"""Training data: one record format and the builders of the paper's datasets.

``build_pets`` / ``build_pets_ood`` (synthetic, offline), ``build_ultrafeedback`` (UF-P2/P4) and
``build_prism`` (from the upstream files), ``apply_context_kind`` for the three context kinds,
``build_dataset`` / ``write_dataset`` for the CLI, ``dataset_stats`` for ``plus data stats``.
What training does with the records lives elsewhere: ``training.stream`` (the resumable record stream)
and ``training.summary_metrics`` (each dataset's summary-metrics hook).
"""

from plus_sdk.training.data.build import DATASETS, build_dataset, write_dataset
from plus_sdk.training.data.contexts import CONTEXT_KINDS, apply_context_kind, guideline_for
from plus_sdk.training.data.pets import PetsConfig, build_pets, build_pets_ood
from plus_sdk.training.data.prism import PrismConfig, build_prism
from plus_sdk.training.data.records import (
    RecordError,
    TrainingRecord,
    read_arrow,
    read_jsonl,
    read_records,
    write_arrow,
    write_jsonl,
)
from plus_sdk.training.data.result import BuildResult
from plus_sdk.training.data.stats import dataset_stats
from plus_sdk.training.data.ultrafeedback import UltraFeedbackConfig, build_ultrafeedback

__all__ = [
    "CONTEXT_KINDS",
    "DATASETS",
    "BuildResult",
    "PetsConfig",
    "PrismConfig",
    "RecordError",
    "TrainingRecord",
    "UltraFeedbackConfig",
    "apply_context_kind",
    "build_dataset",
    "build_pets",
    "build_pets_ood",
    "build_prism",
    "build_ultrafeedback",
    "dataset_stats",
    "guideline_for",
    "read_arrow",
    "read_jsonl",
    "read_records",
    "write_arrow",
    "write_dataset",
    "write_jsonl",
]
