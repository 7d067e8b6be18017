"""Annotation queue: two-pass Label Studio / CSV batches with known-answer gold cases.

Pass 1 asks for the expected behaviour and a gold answer without showing the model's answer
(so it cannot anchor the gold answer); pass 2 shows the answer and asks Pass/Fail per scoring
dimension with a critique. See batch.py for the files, gold.py for gold mixing, scoring.py for
annotator accuracy, validate.py for the import check.
"""

from evalflow.lib.annotation.batch import (
    DEFAULT_DIMENSIONS,
    BatchConflictError,
    BatchManifest,
    verify_batch,
    write_annotation_batch,
)
from evalflow.lib.annotation.gold import DEFAULT_KNOWN_ANSWERS, gold_count, load_known_answers
from evalflow.lib.annotation.labelstudio import pass1_config, pass2_config
from evalflow.lib.annotation.scoring import score_gold
from evalflow.lib.annotation.task_validation import validate_tasks

__all__ = [
    "DEFAULT_DIMENSIONS",
    "DEFAULT_KNOWN_ANSWERS",
    "BatchConflictError",
    "BatchManifest",
    "gold_count",
    "load_known_answers",
    "pass1_config",
    "pass2_config",
    "score_gold",
    "validate_tasks",
    "verify_batch",
    "write_annotation_batch",
]
