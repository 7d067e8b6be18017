"""Trace signals (failure modes, outliers, difficulty) and the failure taxonomy built on them.

Inputs are redacted traces only. Each rule is documented in the module that implements it:
rules.py (per-trace rules), grounding.py (unsupported answers), outliers.py (robust per-intent
statistics), difficulty.py, patterns.py (the word lists), taxonomy.py (failure clusters);
config.py holds the codes, severities and thresholds.
"""

from evalflow.lib.signals.compute import SIGNAL_SCHEMA, compute_signals
from evalflow.lib.signals.config import DIFFICULTY_BUCKETS, FAILURE_MODES, SEVERITY, SignalConfig
from evalflow.lib.signals.io import read_signal_inputs
from evalflow.lib.signals.taxonomy import (
    CATEGORIES,
    FailureTaxonomy,
    build_failure_taxonomy,
    taxonomy_markdown,
)

__all__ = [
    "CATEGORIES",
    "DIFFICULTY_BUCKETS",
    "FAILURE_MODES",
    "SEVERITY",
    "SIGNAL_SCHEMA",
    "FailureTaxonomy",
    "SignalConfig",
    "build_failure_taxonomy",
    "compute_signals",
    "read_signal_inputs",
    "taxonomy_markdown",
]
