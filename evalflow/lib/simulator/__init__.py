"""A deterministic production-traffic simulator: Northwind Bank's support assistant.

`simulate` writes a month of raw traces (three dialects, PII, failures, planted changes and a
few malformed lines) to a landing folder, and the answers to a separate ground-truth folder.
"""

from evalflow.lib.simulator.core import SimulationSummary, simulate
from evalflow.lib.simulator.faults import FAULT_CODES
from evalflow.lib.simulator.pii import PII_TYPES
from evalflow.lib.simulator.tracked import resolve_path

__all__ = ["simulate", "SimulationSummary", "FAULT_CODES", "PII_TYPES", "resolve_path"]
