"""PII detection and redaction.

    from evalflow.lib.redact import Detection, DetectorConfig, PiiDetector, high_precision_scan

Modules, one job each:
    config.py              entity types, DetectorConfig, detector_config_from_env
    detection.py           Detection, and how overlapping detections merge
    engine.py              PiiDetector: the batched analysis loop, and which recognizers it runs
    nlp.py                 spaCy loading (NER only)
    presidio_internals.py  subclasses of Presidio internals (tied to the presidio-analyzer pin)
    preconditions.py       cheap tests that skip a recognizer where it cannot match
    text_prep.py           field-path context words, chunks of long texts, the unescaped view
    recognizers.py, names.py, lexicon.py   our recognizers and the word lists they use
    leak_scan.py           high_precision_scan: the leak check on redacted output
    pseudonym.py, traces.py, files.py      placeholders, and redacting traces and files

Importing this package is cheap: Presidio and spaCy load when a `PiiDetector` is built (or
`high_precision_scan` first runs), never at import time, so Dagster `defs/` modules can import
it at top level.
"""

from evalflow.lib.redact.config import (
    DEFAULT_ENTITIES,
    SUPPORTED_ENTITIES,
    DetectorConfig,
)
from evalflow.lib.redact.detection import Detection
from evalflow.lib.redact.engine import PiiDetector
from evalflow.lib.redact.leak_scan import HIGH_PRECISION_ENTITIES, high_precision_scan
from evalflow.lib.redact.text_prep import context_from_path

__all__ = [
    "DEFAULT_ENTITIES",
    "HIGH_PRECISION_ENTITIES",
    "SUPPORTED_ENTITIES",
    "Detection",
    "DetectorConfig",
    "PiiDetector",
    "context_from_path",
    "high_precision_scan",
]
