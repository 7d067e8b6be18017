"""Inter-annotator agreement: published reference values, the fast bootstrap, pairwise kappa, the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import warnings
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import krippendorff
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from evalflow.cli import UserError
from evalflow.cli import agreement as agreement_cli
from evalflow.lib.labels import agreement
from evalflow.lib.labels.agreement import (
    agreement_report,
    agreement_rows,
    bootstrap_alphas,
    bootstrap_indices,
    code_ratings,
    item_features,
    normalise_ratings,
)

FIXTURES = Path(__file__).parent / "fixtures" / "labels" / "agreement"
COLUMNS = ["item_id", "annotator", "dimension", "value"]


def ratings(rows: list[tuple], **extra: list) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=COLUMNS, orient="row")
    return frame.with_columns(**{k: pl.Series(v) for k, v in extra.items()})


def fixture(name: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES / f"{name}.csv", infer_schema=False)


def only_dimension(report: dict) -> dict:
    (dimension,) = report["dimensions"].values()
    return dimension


# -- an exact reference, written from Krippendorff (2011) independently of the package ----------

def exact_alpha(path: Path, level: str) -> Fraction:
    """alpha = 1 - (n-1) * sum(o_ck d_ck) / sum(n_c n_k d_ck) over the coincidence matrix o."""
    units: dict[str, list] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["value"].strip():
                value = row["value"].strip()
                units[row["item_id"]].append(value if level == "nominal" else Fraction(value))
    pairable = [values for values in units.values() if len(values) >= 2]
    domain = sorted({v for values in pairable for v in values})
    o: dict[tuple, Fraction] = defaultdict(Fraction)
    for values in pairable:
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[c, k] += Fraction(1, len(values) - 1)
    n_c = {c: sum((o[c, k] for k in domain), Fraction(0)) for c in domain}
    n = sum(n_c.values())

    def delta(c, k) -> Fraction:
        if level == "nominal":
            return Fraction(int(c != k))
        if level == "interval":
            return (c - k) ** 2
        lo, hi = sorted((domain.index(c), domain.index(k)))
        return (sum(n_c[g] for g in domain[lo:hi + 1]) - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(o[c, k] * delta(c, k) for c in domain for k in domain)
    expected = sum(n_c[c] * n_c[k] * delta(c, k) for c in domain for k in domain)
    return 1 - (n - 1) * observed / expected


PUBLISHED_ALPHAS = [
    # (fixture, level, published value, decimals it was published to)
    ("krippendorff_2011", "nominal", 0.743, 3),
    ("krippendorff_2011", "ordinal", 0.815, 3),
    ("krippendorff_2011", "interval", 0.849, 3),
    ("wikipedia_krippendorff_alpha", "nominal", 0.691, 3),
    ("wikipedia_krippendorff_alpha", "interval", 0.811, 3),
    ("hayes_krippendorff_2007", "ordinal", 0.7598, 4),
    ("krippendorff_2004_binary", "nominal", 0.095, 3),
]


@pytest.mark.parametrize(("name", "level", "published", "decimals"), PUBLISHED_ALPHAS)
def test_alpha_equals_published_values(name, level, published, decimals):
    result = only_dimension(agreement_report(fixture(name), level, n_boot=0))["alpha"]
    expected = exact_alpha(FIXTURES / f"{name}.csv", level)
    assert round(float(expected), decimals) == published  # the exact reference reproduces the publication
    assert round(result, decimals) == published
    assert result == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize(("name", "level", "published", "decimals"), PUBLISHED_ALPHAS)
def test_alpha_from_item_sums_equals_published_values(monkeypatch, name, level, published, decimals):
    # The path taken for scales too fine for the package's items x values x values array.
    monkeypatch.setattr(agreement, "_PACKAGE_CELLS_MAX", 0)
    result = only_dimension(agreement_report(fixture(name), level, n_boot=0))["alpha"]
    assert result == pytest.approx(float(exact_alpha(FIXTURES / f"{name}.csv", level)), abs=1e-9)


def test_pair_kappa_equals_published_two_by_two_example():
    report = agreement_report(fixture("wikipedia_cohen_kappa"), "nominal", n_boot=0)
    (pair,) = only_dimension(report)["pairs"]
    p_o, p_e = Fraction(20 + 15, 50), Fraction(25, 50) * Fraction(30, 50) + Fraction(25, 50) * Fraction(20, 50)
    assert (pair["a"], pair["b"], pair["items"]) == ("readerA", "readerB", 50)
    assert pair["agreement"] == pytest.approx(0.7, abs=1e-12)
    assert pair["kappa"] == pytest.approx(float((p_o - p_e) / (1 - p_e)), abs=1e-12)
    assert round(pair["kappa"], 1) == 0.4


# -- the fast bootstrap and the pairs against the reference implementations ---------------------

def random_ratings(seed: int, items: int = 40, annotators: int = 7, values=("1", "2", "3", "4", "5"),
                   missing: float = 0.4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(values), items)
    rows = []
    for item in range(items):
        for a in range(annotators):
            if rng.random() < missing:
                continue
            code = truth[item] if rng.random() < 0.6 else rng.integers(0, len(values))
            rows.append((f"i{item:03d}", f"ann{a}", "d", values[code]))
    return ratings(rows)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_fast_bootstrap_equals_package_alpha_on_each_resample(level):
    coded = code_ratings(normalise_ratings(random_ratings(seed=3)), level)
    counts = coded.value_counts
    pairable = counts.sum(axis=1) >= 2
    features = item_features(counts[pairable], level, coded.numeric)
    indices = list(bootstrap_indices(int(pairable.sum()), 60, np.random.default_rng(11)))
    result = bootstrap_alphas(features, level, len(coded.values), iter(indices))

    # Naive: the annotators x items matrix (NaN = missing) of the pairable items, resampled by column.
    # Interval alpha needs the numbers; nominal and ordinal only the values' codes (ranks).
    domain = coded.numeric if level == "interval" else np.arange(len(coded.values), dtype=float)
    matrix = np.full((len(coded.annotators), len(coded.items)), np.nan)
    matrix[coded.annotator, coded.item] = domain[coded.code]
    matrix = matrix[:, pairable]
    expected = np.array([krippendorff.alpha(reliability_data=matrix[:, row], value_domain=domain,
                                            level_of_measurement=level)
                         for block in indices for row in block])
    assert len(result) == 60
    assert np.allclose(result, expected, rtol=0, atol=1e-9)
    assert len(np.unique(np.round(result, 9))) > 30  # the resamples differ: this compares something


def test_pair_kappa_and_agreement_equal_sklearn_for_every_pair():
    frame = random_ratings(seed=5, items=60, annotators=9, values=("Pass", "Fail", "Unsure"), missing=0.5)
    # Two annotators who agree on one value on the two items they share: kappa is undefined.
    frame = pl.concat([frame, ratings([("x1", "same_a", "d", "Pass"), ("x1", "same_b", "d", "Pass"),
                                       ("x2", "same_a", "d", "Pass"), ("x2", "same_b", "d", "Pass")])])
    result = {(p["a"], p["b"]): p for p in only_dimension(agreement_report(frame, "nominal", n_boot=0))["pairs"]}

    by_annotator = {a: dict(zip(g["item_id"], g["value"])) for (a,), g in frame.group_by("annotator")}
    expected = {}
    names = sorted(by_annotator)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sorted(set(by_annotator[a]) & set(by_annotator[b]))
            if not shared:
                continue
            x, y = [by_annotator[a][s] for s in shared], [by_annotator[b][s] for s in shared]
            with warnings.catch_warnings():  # sklearn warns where kappa is undefined (one value only)
                warnings.simplefilter("ignore")
                kappa = cohen_kappa_score(x, y)
            expected[a, b] = (len(shared), sum(p == q for p, q in zip(x, y)) / len(shared),
                              None if np.isnan(kappa) else kappa)
    assert set(result) == set(expected)
    assert len(expected) > 30
    for key, (items, share, kappa) in expected.items():
        assert (result[key]["items"], result[key]["agreement"]) == (items, pytest.approx(share, abs=1e-12))
        if kappa is None:
            assert result[key]["kappa"] is None
        else:
            assert result[key]["kappa"] == pytest.approx(kappa, abs=1e-12)
    assert result["same_a", "same_b"] == {"a": "same_a", "b": "same_b", "items": 2, "agreement": 1.0, "kappa": None}


# -- percent agreement, missing ratings, undefined alpha ----------------------------------------

HAND_EXAMPLE = [
    ("i1", "A", "accuracy", "Pass"), ("i1", "B", "accuracy", "Pass"), ("i1", "C", "accuracy", "Fail"),
    ("i1", "D", "accuracy", ""),  # a missing rating: counts nowhere
    ("i2", "A", "accuracy", "Pass"), ("i2", "B", "accuracy", "Pass"),
    ("i3", "A", "accuracy", "Fail"), ("i3", "C", "accuracy", "Pass"),
    ("i4", "B", "accuracy", "Fail"),  # rated once: not in percent agreement
    ("i5", "A", "accuracy", "Pass"), ("i5", "B", "accuracy", "Pass"), ("i5", "C", "accuracy", "Pass"),
    ("i5", "D", "accuracy", " Pass "),
]


def test_percent_agreement_and_pairs_on_a_hand_computed_example():
    result = only_dimension(agreement_report(ratings(HAND_EXAMPLE), "nominal", n_boot=0))
    # i1: 1 of 3 pairs agree; i2: 1 of 1; i3: 0 of 1; i5: 6 of 6 -> (1/3 + 1 + 0 + 1) / 4
    assert result["percent_agreement"] == pytest.approx(7 / 12, abs=1e-12)
    assert (result["items"], result["pairable_items"], result["annotators"], result["ratings"]) == (5, 4, 4, 12)
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    # A-B share i1, i2, i5, always Pass: agreement 1, kappa undefined.
    assert pairs["A", "B"] == {"a": "A", "b": "B", "items": 3, "agreement": 1.0, "kappa": None}
    # A-C share i1 (P,F), i3 (F,P), i5 (P,P): kappa = (3*1 - (2*2 + 1*1)) / (9 - 5) = -0.5.
    assert pairs["A", "C"]["agreement"] == pytest.approx(1 / 3)
    assert pairs["A", "C"]["kappa"] == pytest.approx(-0.5, abs=1e-12)
    # D's empty rating of i1 is missing: D shares only i5 with A, B and C.
    assert [pairs[k, "D"]["items"] for k in "ABC"] == [1, 1, 1]
    assert sorted(pairs) == [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]


def test_missing_ratings_do_not_change_alpha():
    complete = fixture("krippendorff_2011")
    with_gaps = complete.filter(pl.col("value").is_not_null())
    assert complete.height > with_gaps.height  # the fixture writes its missing ratings as empty values
    result = [only_dimension(agreement_report(f, "interval", n_boot=0))["alpha"] for f in (complete, with_gaps)]
    assert result[0] == result[1] == pytest.approx(0.849107, abs=1e-6)


def test_undefined_alpha_is_none_with_a_reason():
    rows = [
        ("i1", "A", "same", "Pass"), ("i1", "B", "same", "Pass"), ("i2", "A", "same", "Pass"),
        ("i2", "B", "same", "Pass"),
        ("i1", "A", "single", "Pass"), ("i2", "B", "single", "Fail"),
        ("i1", "A", "empty", ""), ("i2", "B", "empty", None),
    ]
    report = agreement_report(ratings(rows), "nominal", n_boot=200)
    same, single, empty = (report["dimensions"][d] for d in ("same", "single", "empty"))
    assert (same["alpha"], same["alpha_ci95"], same["percent_agreement"]) == (None, [None, None], 1.0)
    assert "no variation" in same["alpha_reason"]
    assert (single["alpha"], single["percent_agreement"], single["pairs"]) == (None, None, [])
    assert "no item has two or more ratings" in single["alpha_reason"]
    assert (empty["items"], empty["ratings"], empty["alpha"], empty["alpha_reason"]) == (0, 0, None, "no ratings")
    json.dumps(report, allow_nan=False)  # None, never NaN, anywhere


def test_interval_alpha_is_defined_by_variation_not_by_the_numbers_scale():
    tiny = [(f"u{i}", f"r{j}", "d", repr(1e-8 * ((i + j) % 3))) for i in range(6) for j in range(3)]
    flat = [(f"u{i}", f"r{j}", "d", "0.1") for i in range(5) for j in range(3)] + [("u9", "r0", "d", "0.3")]
    matrix = np.array([[1e-8 * ((i + j) % 3) for i in range(6)] for j in range(3)])
    result = only_dimension(agreement_report(ratings(tiny), "interval", n_boot=50))
    undefined = only_dimension(agreement_report(ratings(flat), "interval", n_boot=50))
    assert result["alpha"] == pytest.approx(krippendorff.alpha(matrix, level_of_measurement="interval"), abs=1e-9)
    assert result["alpha_reason"] is None
    assert (undefined["alpha"], undefined["alpha_ci95"]) == (None, [None, None])
    assert "no variation" in undefined["alpha_reason"]


def test_a_defined_alpha_has_no_reason_and_a_seeded_interval_around_it():
    frame = fixture("hayes_krippendorff_2007")
    first, again, other = (only_dimension(agreement_report(frame, "ordinal", n_boot=500, seed=s)) for s in (1, 1, 2))
    lo, hi = first["alpha_ci95"]
    assert first["alpha_reason"] is None
    assert lo < first["alpha"] < hi
    assert 0.5 < lo and hi < 0.95  # 40 items: an interval of a few tenths, not a point and not [-1, 1]
    assert again["alpha_ci95"] == first["alpha_ci95"]
    assert other["alpha_ci95"] != first["alpha_ci95"]


# -- value coding ---------------------------------------------------------------------------------

def test_ordinal_numbers_are_ordered_as_numbers():
    # The disagreements are between 9 and 10: neighbours as numbers, the two ends as text ("10" < "2" < "9").
    values = {"u1": ("9", "10", "9"), "u2": ("10", "9", "10"), "u3": ("2", "2", "2"), "u4": ("9", "9", "10")}
    frame = ratings([(u, f"r{j}", "d", v) for u, vs in values.items() for j, v in enumerate(vs)])
    result = only_dimension(agreement_report(frame, "ordinal", n_boot=0))
    matrix = np.array([[float(vs[j]) for vs in values.values()] for j in range(3)])
    lexicographic = np.array([[{"10": 0, "2": 1, "9": 2}[vs[j]] for vs in values.values()] for j in range(3)])
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")
    assert result["values"] == ["2", "9", "10"]
    assert result["alpha"] == pytest.approx(expected, abs=1e-12)
    assert result["alpha"] != pytest.approx(
        krippendorff.alpha(reliability_data=lexicographic, level_of_measurement="ordinal"), abs=1e-3)


def test_ordinal_labels_follow_the_given_order_or_the_risk_levels():
    rows = [("u1", "a", "risk", "low"), ("u1", "b", "risk", "medium"), ("u2", "a", "risk", "high"),
            ("u2", "b", "risk", "high"), ("u3", "a", "risk", "low"), ("u3", "b", "risk", "high"),
            ("u4", "a", "risk", "medium"), ("u4", "b", "risk", "medium")]
    numeric = [(u, a, d, {"low": "1", "medium": "2", "high": "3"}[v]) for u, a, d, v in rows]
    expected = only_dimension(agreement_report(ratings(numeric), "ordinal", n_boot=0))["alpha"]
    known = only_dimension(agreement_report(ratings(rows), "ordinal", n_boot=0))
    given = only_dimension(agreement_report(ratings(rows), "ordinal", n_boot=0,
                                            value_order=["low", "medium", "high"]))
    reversed_middle = only_dimension(agreement_report(ratings(rows), "ordinal", n_boot=0,
                                                      value_order=["medium", "low", "high"]))
    assert known["values"] == given["values"] == ["low", "medium", "high"]
    assert known["alpha"] == given["alpha"] == pytest.approx(expected, abs=1e-12)
    assert reversed_middle["alpha"] != pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="outside the given order"):
        agreement_report(ratings(rows), "ordinal", value_order=["low", "high"])
    with pytest.raises(ValueError, match="give their order"):
        agreement_report(ratings([("u1", "a", "d", "good"), ("u1", "b", "d", "bad")]), "ordinal")


def test_bad_ratings_raise_value_errors():
    with pytest.raises(ValueError, match="interval level needs numbers; dimension 'd', item 'u2'"):
        agreement_report(ratings([("u1", "a", "d", "1"), ("u2", "a", "d", "Pass")]), "interval")
    with pytest.raises(ValueError, match="rated item 'u1' twice on dimension 'd'"):
        agreement_report(ratings([("u1", "a", "d", "Pass"), ("u1", "a", "d", "Fail")]), "nominal")
    with pytest.raises(ValueError, match="unknown level of measurement: 'ratio'"):
        agreement_report(ratings([("u1", "a", "d", "1")]), "ratio")
    with pytest.raises(ValueError, match="missing: annotator"):
        agreement_report(pl.DataFrame({"item_id": ["u1"], "dimension": ["d"], "value": ["1"]}), "nominal")
    with pytest.raises(ValueError, match="needs an item_id"):
        agreement_report(ratings([("", "a", "d", "1")]), "nominal")


# -- rows for the pipeline ------------------------------------------------------------------------

def test_agreement_rows_per_dimension_and_slice_match_the_report():
    frame = random_ratings(seed=8, items=30, annotators=5, values=("Pass", "Fail"), missing=0.2)
    items = sorted(frame["item_id"].unique())
    intent = {item: ("billing" if i % 3 else "refunds") for i, item in enumerate(items)}
    frame = pl.concat([frame, frame.with_columns(pl.lit("critique").alias("dimension"))]).with_columns(
        pl.col("item_id").replace_strict(intent).alias("intent"),
        pl.when(pl.col("item_id") == items[0]).then(None).otherwise(pl.lit("batch-1")).alias("batch_id"))
    result = agreement_rows(frame, {"d": "nominal"}, n_boot=100, seed=4)

    assert result.columns == list(agreement.ROW_SCHEMA)
    keys = list(zip(result["dimension"], result["slice_kind"], result["slice_value"]))
    assert keys == [("d", "all", "all"), ("d", "intent", "billing"), ("d", "intent", "refunds"),
                    ("d", "batch_id", "batch-1")]  # "critique" has no level: skipped
    for row in result.iter_rows(named=True):
        subset = frame.filter(pl.col("dimension") == "d")
        if row["slice_kind"] != "all":
            subset = subset.filter(pl.col(row["slice_kind"]) == row["slice_value"])
        expected = only_dimension(agreement_report(subset.select(COLUMNS), "nominal", n_boot=0))
        assert (row["items"], row["ratings"], row["annotators"]) == (
            expected["items"], expected["ratings"], expected["annotators"])
        assert row["alpha"] == pytest.approx(expected["alpha"], abs=1e-12)
        assert row["percent_agreement"] == pytest.approx(expected["percent_agreement"], abs=1e-12)
        assert row["alpha_lo"] < row["alpha"] < row["alpha_hi"]
    all_items = result.row(0, named=True)["items"]
    assert result.row(3, named=True)["items"] == all_items - 1  # the null batch_id rating counts only under all


def test_agreement_rows_reject_an_unknown_level():
    with pytest.raises(ValueError, match="for dimension 'd'"):
        agreement_rows(ratings([("u1", "a", "d", "1")]), {"d": "likert"})


# -- the CLI module ---------------------------------------------------------------------------------

def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    agreement_cli.configure(parser)
    return parser.parse_args(list(argv))


def test_cli_writes_the_report_and_prints_the_table(tmp_path, capsys):
    output = tmp_path / "out" / "REPORT.json"
    code = agreement_cli.run(cli_args(str(FIXTURES / "krippendorff_2011.csv"), "--level", "ordinal", "-o",
                                      str(output), "--boot", "200", "--seed", "3"))
    report = json.loads(output.read_text())
    dimension = report["dimensions"]["value"]
    assert code == 0
    assert report["level"] == "ordinal"
    assert set(dimension) >= {"items", "annotators", "ratings", "alpha", "alpha_ci95", "percent_agreement", "pairs"}
    assert (dimension["items"], dimension["annotators"], dimension["ratings"]) == (12, 4, 41)
    assert round(dimension["alpha"], 3) == 0.815
    assert len(dimension["alpha_ci95"]) == 2 and dimension["alpha_ci95"][0] < dimension["alpha_ci95"][1]
    assert [(p["a"], p["b"]) for p in dimension["pairs"]] == [
        ("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]
    assert set(dimension["pairs"][0]) == {"a", "b", "items", "agreement", "kappa"}
    assert not list(output.parent.glob("*.tmp"))
    out = capsys.readouterr().out
    table_row = next(line for line in out.splitlines() if line.startswith("value"))
    assert table_row.split()[:6] == ["value", "12", "4", "41", "0.818", "0.815"]


def test_cli_order_option_and_undefined_alpha_note(tmp_path, capsys):
    path = tmp_path / "risk.csv"
    path.write_text("item_id,annotator,dimension,value,batch_id\nu1,a,risk,Low,b1\nu1,b,risk,Mid,b1\n"
                    "u2,a,risk,High,b1\nu2,b,risk,High,b1\nu3,a,other,Low,b1\n")
    assert agreement_cli.run(cli_args(str(path), "--level", "ordinal", "--order", "Low, Mid ,High", "--boot", "0")) == 0
    out = capsys.readouterr().out
    assert "other: alpha undefined: no item has two or more ratings" in out


@pytest.mark.parametrize(("content", "argv", "message"), [
    (None, ["--level", "nominal"], "no such file"),
    ("item,rater,dimension,value\nu1,a,d,Pass\n", ["--level", "nominal"],
     "the header must name the columns item_id,annotator,dimension,value; it has item,rater,dimension,value"),
    ("item_id,annotator,dimension,value\n", ["--level", "nominal"], "has a header but no ratings"),
    ("item_id,annotator,dimension,value\nu1,a,d,3\nu1,b,d,Pass\n", ["--level", "interval"],
     "interval level needs numbers; dimension 'd', item 'u1'"),
    ("item_id,annotator,dimension,value\nu1,a,d,Pass\nu1,a,d,Fail\n", ["--level", "nominal"], "twice"),
    ("item_id,annotator,dimension,value\nu1,a,d,Pass\n", ["--level", "nominal", "--order", "a,b"],
     "--order only applies to --level ordinal"),
    ("item_id,annotator,dimension,value\nu1,a,d,Pass\nu2,a,d,x,y,z\n", ["--level", "nominal"],
     "is not a readable CSV file"),
])
def test_cli_bad_input_is_one_user_error_line(tmp_path, content, argv, message):
    path = tmp_path / "ratings.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as caught:
        agreement_cli.run(cli_args(str(path), *argv))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_command_text_is_complete():
    short, description, examples = agreement_cli.COMMAND
    assert short and "Krippendorff" in description and examples[0].startswith("evalflow agreement ")
