"""Agreement per slice for the pipeline: the risk-level slice of agreement_rows, pair kappas per
dimension and slice (pair_rows, the label_agreement_pairs rows), and a label_agreement_pairs
table an older version wrote without slice columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from evalflow.lib.annotation.labelstudio import RISK_LEVELS
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.labels.agreement import PAIR_ROW_SCHEMA, ROW_SCHEMA, agreement_report, agreement_rows, pair_rows
from evalflow.lib.labels.store import DERIVED_SCHEMA, replace_tables, table_frame

COLUMNS = ["item_id", "annotator", "dimension", "value"]


def sliced_ratings(seed: int = 5, items: int = 36, annotators: int = 5) -> pl.DataFrame:
    """Pass/Fail ratings on "d" and low/medium/high on "risk_level", every item with a risk level
    slice (its true risk) and an intent; some ratings missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(items):
        risk = RISK_LEVELS[item % 3]
        intent = "billing" if item % 4 else "refunds"
        truth = "Pass" if rng.random() < 0.6 else "Fail"
        for a in range(annotators):
            if rng.random() < 0.25:
                continue
            verdict = truth if rng.random() < 0.8 else ("Fail" if truth == "Pass" else "Pass")
            rated_risk = risk if rng.random() < 0.7 else RISK_LEVELS[rng.integers(0, 3)]
            rows.append((f"i{item:03d}", f"ann{a}", "d", verdict, risk, intent))
            rows.append((f"i{item:03d}", f"ann{a}", "risk_level", rated_risk, risk, intent))
    return pl.DataFrame(rows, schema=[*COLUMNS, "risk_level", "intent"], orient="row")


def subset(frame: pl.DataFrame, dimension: str, kind: str, value: str) -> pl.DataFrame:
    part = frame.filter(pl.col("dimension") == dimension)
    return part if kind == "all" else part.filter(pl.col(kind) == value)


def test_agreement_rows_on_the_risk_level_slice_match_the_report_on_that_slice():
    frame = sliced_ratings()
    levels = {"d": "nominal", "risk_level": "ordinal"}
    result = agreement_rows(frame, levels, slices=("risk_level",), value_orders={"risk_level": RISK_LEVELS},
                            n_boot=50, seed=1)
    assert result.columns == list(ROW_SCHEMA)
    keys = list(zip(result["dimension"], result["slice_kind"], result["slice_value"]))
    assert keys == [(dim, kind, value) for dim in ("d", "risk_level")
                    for kind, value in [("all", "all"), *(("risk_level", v) for v in sorted(RISK_LEVELS))]]
    for row in result.iter_rows(named=True):
        part = subset(frame, row["dimension"], row["slice_kind"], row["slice_value"])
        expected = agreement_report(part.select(COLUMNS), levels[row["dimension"]], n_boot=0,
                                    value_order=RISK_LEVELS if row["dimension"] == "risk_level" else None)
        (figures,) = expected["dimensions"].values()
        assert (row["items"], row["ratings"], row["annotators"]) == (
            figures["items"], figures["ratings"], figures["annotators"])
        assert row["percent_agreement"] == pytest.approx(figures["percent_agreement"], abs=1e-12)
        assert row["alpha"] == pytest.approx(figures["alpha"], abs=1e-12)
    # every rated item is in exactly one risk-level slice
    d_rows = result.filter(pl.col("dimension") == "d")
    assert d_rows.filter(pl.col("slice_kind") == "risk_level")["items"].sum() == d_rows["items"][0]


def test_pair_kappas_per_dimension_and_slice_equal_the_report_on_each_slice():
    frame = sliced_ratings(seed=9)
    orders = {"risk_level": RISK_LEVELS}
    result = pair_rows(frame, ["d", "risk_level"], slices=("intent", "risk_level", "batch_id"), value_orders=orders)
    assert result.columns == list(PAIR_ROW_SCHEMA)
    groups = result.select("dimension", "slice_kind", "slice_value").unique(maintain_order=True).rows()
    assert groups == [(dim, kind, value) for dim in ("d", "risk_level")
                      for kind, value in [("all", "all"), ("intent", "billing"), ("intent", "refunds"),
                                          *(("risk_level", v) for v in sorted(RISK_LEVELS))]]  # no batch_id column
    for dim, kind, value in groups:
        part = subset(frame, dim, kind, value)
        report = agreement_report(part.select(COLUMNS), "nominal", n_boot=0)
        expected = report["dimensions"][dim]["pairs"]
        got = result.filter((pl.col("dimension") == dim) & (pl.col("slice_kind") == kind)
                            & (pl.col("slice_value") == value)).drop("dimension", "slice_kind", "slice_value")
        assert got.to_dicts() == expected, (dim, kind, value)
    # a pair rates fewer items in common within a slice than over all of them
    whole = result.filter((pl.col("dimension") == "d") & (pl.col("slice_kind") == "all"))
    sliced = result.filter((pl.col("dimension") == "d") & (pl.col("slice_kind") == "risk_level"))
    assert sliced["items"].sum() == whole["items"].sum()
    assert sliced.height >= whole.height


def test_an_old_pairs_table_without_slice_columns_is_rebuilt_with_them(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    slice_columns = "    slice_kind VARCHAR NOT NULL,\n    slice_value VARCHAR NOT NULL,\n    a VARCHAR"
    old_schema = DERIVED_SCHEMA.replace(slice_columns, "    a VARCHAR")
    assert old_schema != DERIVED_SCHEMA
    with warehouse.transaction() as con:
        con.execute(old_schema)
        con.execute("INSERT INTO label_agreement_pairs VALUES ('d', 'ann0', 'ann1', 3, 1.0, 1.0)")
    frame = pair_rows(sliced_ratings(), ["d"], slices=("risk_level",))
    replace_tables(warehouse, {"label_agreement_pairs": frame})
    stored = table_frame(warehouse, "label_agreement_pairs")
    assert stored.columns == list(PAIR_ROW_SCHEMA)
    assert stored.sort(stored.columns).equals(frame.sort(frame.columns))
    # a second run with the current shape keeps the table and replaces its rows
    replace_tables(warehouse, {"label_agreement_pairs": frame.head(2)})
    assert table_frame(warehouse, "label_agreement_pairs").height == 2
