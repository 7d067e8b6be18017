"""PII detection (and, in sibling modules, redaction).

    from evalflow.lib.redact.detect import Detection, DetectorConfig, PiiDetector, high_precision_scan

Importing this package or `detect` is cheap: Presidio and spaCy load when a `PiiDetector` is
built (or `high_precision_scan` first runs), never at import time, so Dagster `defs/` modules
can import it at top level.
"""

from evalflow.lib.redact.detect import (
    DEFAULT_ENTITIES,
    HIGH_PRECISION_ENTITIES,
    SUPPORTED_ENTITIES,
    Detection,
    DetectorConfig,
    PiiDetector,
    context_from_path,
    high_precision_scan,
)

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
