"""The automation gate: may a judge label a dimension instead of people?

Only when people agree on it. Per dimension, the gate is open when human percent agreement is at
least EVALFLOW_HUMAN_AGREEMENT_MIN (default 0.80: the low end of the 80-85% human agreement the
article asks for before anything is automated) on at least EVALFLOW_GATE_MIN_ITEMS items (default
50) rated by two or more annotators. Below that count the figure itself is too uncertain: at 50
items a percent agreement of 0.80 has a 95% interval of about +-0.11.

The figures come from `agreement.agreement_report` (its `dimensions` dict); the gate does not
recompute them. Its item count is the report's `pairable_items` (items with two or more ratings
of the dimension: agreement needs a pair), or `items` for a report without that key. Alpha and
its interval are carried along for display: the gate itself is on percent agreement, the
yardstick the issue names (alpha is shown beside it because a dimension where nearly everything
passes can agree at 0.95 with an alpha near zero).
"""

from __future__ import annotations

import math

import polars as pl

from evalflow.lib.common.settings import float_setting, int_setting

AGREEMENT_MIN_ENV = "EVALFLOW_HUMAN_AGREEMENT_MIN"
MIN_ITEMS_ENV = "EVALFLOW_GATE_MIN_ITEMS"
DEFAULT_AGREEMENT_MIN = 0.80
DEFAULT_MIN_ITEMS = 50

GATE_SCHEMA = {
    "dimension": pl.String,
    "items": pl.Int64,
    "percent_agreement": pl.Float64,
    "alpha": pl.Float64,
    "alpha_lo": pl.Float64,
    "alpha_hi": pl.Float64,
    "gate_open": pl.Boolean,
    "reason": pl.String,
}


def agreement_min() -> float:
    return float_setting(AGREEMENT_MIN_ENV, DEFAULT_AGREEMENT_MIN, low=0.0, high=1.0)


def gate_min_items() -> int:
    return int_setting(MIN_ITEMS_ENV, DEFAULT_MIN_ITEMS, low=1)


def _number(value) -> float | None:
    # NaN (alpha of a dimension with no variation) reads as "no figure", like None.
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _decide(items: int, agreement: float | None, need_agreement: float, need_items: int) -> tuple[bool, str]:
    if items == 0 or agreement is None:
        return False, "closed: no item has two ratings"
    if items < need_items:
        return False, f"closed: {items} items with two or more ratings, {need_items} needed"
    if agreement < need_agreement:
        return False, f"closed: agreement {agreement:.3f} below {need_agreement:.2f} on {items} items"
    return True, f"open: agreement {agreement:.3f} >= {need_agreement:.2f} on {items} items"


def automation_gate(report: dict, *, min_agreement: float | None = None, min_items: int | None = None) -> pl.DataFrame:
    """One row per dimension of `report` (agreement_report's output): dimension, items,
    percent_agreement, alpha, alpha_lo, alpha_hi, gate_open, reason. Thresholds default to the
    EVALFLOW_HUMAN_AGREEMENT_MIN / EVALFLOW_GATE_MIN_ITEMS settings."""
    need_agreement = agreement_min() if min_agreement is None else min_agreement
    need_items = gate_min_items() if min_items is None else min_items
    if not 0.0 <= need_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {need_agreement}")
    if need_items < 1:
        raise ValueError(f"min_items must be at least 1, got {need_items}")
    rows = []
    for dimension, figures in sorted((report.get("dimensions") or {}).items()):
        items = int(figures.get("pairable_items", figures.get("items")) or 0)
        agreement = _number(figures.get("percent_agreement"))
        interval = figures.get("alpha_ci95") or (None, None)
        gate_open, reason = _decide(items, agreement, need_agreement, need_items)
        rows.append({"dimension": dimension, "items": items, "percent_agreement": agreement,
                     "alpha": _number(figures.get("alpha")), "alpha_lo": _number(interval[0]),
                     "alpha_hi": _number(interval[1]), "gate_open": gate_open, "reason": reason})
    return pl.DataFrame(rows, schema=GATE_SCHEMA)


def open_dimensions(gate: pl.DataFrame) -> list[str]:
    """The dimensions a judge may label (calibration also needs the gate open)."""
    return gate.filter(pl.col("gate_open"))["dimension"].to_list()
