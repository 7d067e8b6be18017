"""Inter-annotator agreement over long-format ratings (item_id, annotator, dimension, value).

Per dimension:
- Krippendorff's alpha at the scale's level of measurement (nominal for Pass/Fail, ordinal for
  Likert-like scales, interval for numbers), computed by the `krippendorff` package from a value
  count matrix (items x values; missing ratings simply do not count). Items rated once are kept in
  the counts but, as in Krippendorff's definition, carry no information about agreement.
- A bootstrap 95% percentile interval for alpha over items: the items with two or more ratings
  (the "pairable" ones; the others add nothing to alpha) are resampled with replacement, n_boot
  times, and alpha is recomputed on each resample; the interval is the 2.5th and 97.5th
  percentiles (numpy's linear interpolation) of the resamples where alpha is defined. Alpha's
  observed and expected disagreements are sums over items of per-item terms, so each resample
  is one matrix product of resample counts with a per-item feature matrix, not a new alpha run.
- Percent agreement: for each item with at least two ratings, the share of its pairs of ratings
  that agree; the mean over those items, each item weighted equally (Fleiss' P-bar with a
  varying number of raters). With two ratings per item this is the share of items whose two
  ratings agree, the same quantity as a pair's "agreement" below.
- For every pair of annotators who both rated at least one item: the number of such items, the
  share of them with equal values and Cohen's unweighted kappa over them, computed for all pairs
  at once from sparse one-hot matrices. Kappa is None when it is undefined (both annotators gave
  one and the same value on every shared item: chance agreement is 1).

Values are compared after stripping spaces; an empty value is a missing rating. Numeric values
(ordinal and interval levels) are compared as numbers, so "3" and "3.0" agree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

LEVELS = ("nominal", "ordinal", "interval")
RATING_COLUMNS = ("item_id", "annotator", "dimension", "value")
DEFAULT_SLICES = ("intent", "risk_level", "batch_id")
CONFIDENCE = 0.95
# krippendorff.alpha builds an items x values x values array; past this many cells (a fine-grained
# interval scale) the same formula is evaluated from per-item sums instead (checked equal in tests).
_PACKAGE_CELLS_MAX = 5_000_000
# Bootstrap resample counts are built this many cells at a time, to bound memory.
_BOOT_CHUNK_CELLS = 1 << 22

ROW_SCHEMA = {
    "dimension": pl.String, "level": pl.String, "slice_kind": pl.String, "slice_value": pl.String,
    "items": pl.Int64, "pairable_items": pl.Int64, "annotators": pl.Int64, "ratings": pl.Int64,
    "percent_agreement": pl.Float64, "alpha": pl.Float64, "alpha_lo": pl.Float64, "alpha_hi": pl.Float64,
    "alpha_reason": pl.String,
}


@dataclass(frozen=True)
class CodedRatings:
    """One dimension's non-missing ratings as integer codes.

    item/annotator/code hold one entry per rating; `values` lists the value labels in code order
    (for ordinal scales, low to high); `numeric` gives each code's number where the level uses
    numbers (interval, and ordinal scales of numbers), else None.
    """

    items: np.ndarray
    annotators: np.ndarray
    values: list[str]
    numeric: np.ndarray | None
    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray

    @property
    def value_counts(self) -> np.ndarray:
        """items x values: how many annotators gave each value to each item."""
        n_values = len(self.values)
        flat = np.bincount(self.item * n_values + self.code, minlength=len(self.items) * n_values)
        return flat.reshape(len(self.items), n_values)


# -- public API -------------------------------------------------------------------------------

def agreement_report(ratings: pl.DataFrame, level: str, n_boot: int = 1000, seed: int = 0,
                     value_order: Sequence[str] | None = None) -> dict[str, Any]:
    """The REPORT.json of `evalflow agreement`: {"level", "bootstrap", "dimensions": {DIM: {...}}}.

    Each dimension gives items (with at least one rating), pairable_items (with two or more),
    annotators, ratings (non-missing), values (in code order), alpha, alpha_ci95 [lo, hi],
    alpha_reason (why alpha is None, else None), percent_agreement and pairs [{a, b, items,
    agreement, kappa}] sorted by (a, b). `value_order` orders the labels of an ordinal scale
    (low to high); without it an ordinal scale must be numeric (sorted as numbers) or the
    project's risk levels. Raises ValueError on a bad level, a missing column, a value that does
    not fit the level, or an annotator rating an item twice on one dimension.
    """
    _check_level(level)
    frame = normalise_ratings(ratings)
    dimensions = {}
    for dimension in sorted(frame.get_column("dimension").unique().to_list()):
        coded = code_ratings(frame.filter(pl.col("dimension") == dimension), level, value_order, dimension)
        stats = dimension_agreement(coded, level, n_boot, _rng(seed, dimension))
        pairs = pair_agreement(coded)
        dimensions[dimension] = {
            "items": stats["items"], "pairable_items": stats["pairable_items"],
            "annotators": stats["annotators"], "ratings": stats["ratings"], "values": coded.values,
            "alpha": stats["alpha"], "alpha_ci95": [stats["alpha_lo"], stats["alpha_hi"]],
            "alpha_reason": stats["alpha_reason"], "percent_agreement": stats["percent_agreement"],
            "pairs": pairs,
        }
    return {
        "level": level,
        "bootstrap": {"resamples": n_boot, "seed": seed, "confidence": CONFIDENCE, "unit": "item",
                      "interval": "percentile"},
        "dimensions": dimensions,
    }


def agreement_rows(ratings: pl.DataFrame, levels: Mapping[str, str], slices: Sequence[str] = DEFAULT_SLICES,
                   value_orders: Mapping[str, Sequence[str]] | None = None, n_boot: int = 1000,
                   seed: int = 0) -> pl.DataFrame:
    """One row per (dimension, slice_kind, slice_value), columns as ROW_SCHEMA, for the pipeline.

    `levels` maps each dimension to measure to its level; dimensions not in it (free-text fields
    such as critiques) are skipped. slice_kind "all" (slice_value "all") covers every rating; each
    column of `slices` present on `ratings` adds one row per distinct non-null value, over the
    ratings carrying that value (rows with a null slice value only count under "all"). Pair
    statistics are left out (see agreement_report). The bootstrap is seeded per (dimension,
    slice), so a slice's interval does not depend on which other slices exist.
    """
    for dimension, level in levels.items():
        _check_level(level, dimension)
    slice_columns = [c for c in slices if c in ratings.columns]
    frame = normalise_ratings(ratings, extra=slice_columns)
    rows = []
    for dimension in sorted(set(frame.get_column("dimension").unique().to_list()) & set(levels)):
        level = levels[dimension]
        order = (value_orders or {}).get(dimension)
        part = frame.filter(pl.col("dimension") == dimension)
        groups: list[tuple[str, str, pl.DataFrame]] = [("all", "all", part)]
        for column in slice_columns:
            for value in sorted(part.get_column(column).drop_nulls().unique().to_list()):
                groups.append((column, value, part.filter(pl.col(column) == value)))
        for kind, value, subset in groups:
            coded = code_ratings(subset, level, order, dimension)
            stats = dimension_agreement(coded, level, n_boot, _rng(seed, dimension, kind, value))
            rows.append({"dimension": dimension, "level": level, "slice_kind": kind, "slice_value": value,
                         **{k: stats[k] for k in ROW_SCHEMA if k in stats}})
    return pl.DataFrame(rows, schema=ROW_SCHEMA)


PAIR_ROW_SCHEMA = {
    "dimension": pl.String, "slice_kind": pl.String, "slice_value": pl.String, "a": pl.String, "b": pl.String,
    "items": pl.Int64, "agreement": pl.Float64, "kappa": pl.Float64,
}


def pair_rows(ratings: pl.DataFrame, dimensions: Sequence[str], slices: Sequence[str] = DEFAULT_SLICES,
              value_orders: Mapping[str, Sequence[str]] | None = None) -> pl.DataFrame:
    """One row per (dimension, slice_kind, slice_value, pair of annotators who rated an item of
    that slice in common): their percent agreement and unweighted Cohen's kappa over those items
    (`pair_agreement`), columns as PAIR_ROW_SCHEMA. The slices are those of `agreement_rows`:
    "all"/"all" over every rating, then one group per distinct non-null value of each column of
    `slices` present on `ratings`. Dimensions not in `dimensions` are skipped."""
    slice_columns = [c for c in slices if c in ratings.columns]
    frame = normalise_ratings(ratings, extra=slice_columns)
    rows = []
    for dimension in sorted(set(frame.get_column("dimension").unique().to_list()) & set(dimensions)):
        order = (value_orders or {}).get(dimension)
        level = "ordinal" if order is not None else "nominal"
        part = frame.filter(pl.col("dimension") == dimension)
        groups: list[tuple[str, str, pl.DataFrame]] = [("all", "all", part)]
        for column in slice_columns:
            for value in sorted(part.get_column(column).drop_nulls().unique().to_list()):
                groups.append((column, value, part.filter(pl.col(column) == value)))
        for kind, value, subset in groups:
            for pair in pair_agreement(code_ratings(subset, level, order, dimension)):
                rows.append({"dimension": dimension, "slice_kind": kind, "slice_value": value, **pair})
    return pl.DataFrame(rows, schema=PAIR_ROW_SCHEMA)


# -- input ------------------------------------------------------------------------------------

def normalise_ratings(ratings: pl.DataFrame, extra: Sequence[str] = ()) -> pl.DataFrame:
    """The four rating columns (plus `extra`) as strings, stripped; a missing value is null.

    Raises ValueError for a missing column, a rating without item, annotator or dimension, or an
    annotator with two ratings of one item on one dimension (which one would count is unclear).
    """
    missing = [c for c in RATING_COLUMNS if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings need the columns {', '.join(RATING_COLUMNS)}; missing: {', '.join(missing)}")
    columns = list(RATING_COLUMNS) + [c for c in extra if c not in RATING_COLUMNS]
    frame = ratings.select([pl.col(c).cast(pl.String).str.strip_chars().alias(c) for c in columns])
    keys = frame.select(RATING_COLUMNS[:3])
    if keys.null_count().sum_horizontal().item() or keys.select(
            pl.any_horizontal(pl.all() == "")).to_series().any():
        raise ValueError("every rating needs an item_id, an annotator and a dimension; some are empty")
    # Empty and null both mean a missing rating; the row stays so that its dimension is listed.
    frame = frame.with_columns(pl.when(pl.col("value") == "").then(None).otherwise(pl.col("value")).alias("value"))
    given = frame.filter(pl.col("value").is_not_null())
    duplicated = given.filter(pl.struct(RATING_COLUMNS[:3]).is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        raise ValueError(f"an annotator rated item {first['item_id']!r} twice on dimension {first['dimension']!r} "
                         f"({duplicated.height} ratings involved); keep one rating per annotator, item and "
                         "dimension")
    return frame


def code_ratings(frame: pl.DataFrame, level: str, value_order: Sequence[str] | None = None,
                 dimension: str = "") -> CodedRatings:
    """Integer codes for one dimension's normalised ratings (see normalise_ratings); missing
    ratings are left out."""
    frame = frame.filter(pl.col("value").is_not_null())
    items, item = np.unique(frame.get_column("item_id").to_numpy().astype(str), return_inverse=True)
    annotators, annotator = np.unique(frame.get_column("annotator").to_numpy().astype(str), return_inverse=True)
    raw = frame.get_column("value")
    numbers = raw.cast(pl.Float64, strict=False)
    numeric_ok = bool(numbers.is_not_null().all() and numbers.is_finite().all())
    if level == "interval" and not numeric_ok:
        bad = frame.filter(numbers.is_null() | ~numbers.is_finite().fill_null(False)).row(0, named=True)
        raise ValueError(f"interval level needs numbers; dimension {dimension!r}, item {bad['item_id']!r} has a "
                         "value that is not a finite number")
    if level == "ordinal" and value_order is not None:
        values, code = _code_by_order(raw, list(value_order), dimension)
        numeric = None
    elif level != "nominal" and numeric_ok:
        distinct, code = np.unique(numbers.to_numpy(), return_inverse=True)
        values, numeric = [_number_label(x) for x in distinct], distinct
    elif level == "ordinal":
        values, code = _code_by_order(raw, _known_order(raw, dimension), dimension)
        numeric = None
    else:
        values_array, code = np.unique(raw.to_numpy().astype(str), return_inverse=True)
        values, numeric = [str(v) for v in values_array], None
    return CodedRatings(items=items, annotators=annotators, values=values, numeric=numeric,
                        item=item.astype(np.int64), annotator=annotator.astype(np.int64),
                        code=np.asarray(code, dtype=np.int64))


def _code_by_order(raw: pl.Series, order: list[str], dimension: str) -> tuple[list[str], np.ndarray]:
    position = {value: i for i, value in enumerate(order)}
    unknown = sorted(set(raw.unique().to_list()) - set(position))
    if unknown:
        shown = ", ".join(repr(v[:30]) for v in unknown[:5])
        raise ValueError(f"dimension {dimension!r} has values outside the given order "
                         f"({', '.join(order)}): {shown}")
    return order, raw.replace_strict(position, return_dtype=pl.Int64).to_numpy()


def _known_order(raw: pl.Series, dimension: str) -> list[str]:
    """The order of a label scale the project defines (risk levels), for ordinal without an order."""
    from evalflow.lib.annotation.labelstudio import RISK_LEVELS

    if set(raw.unique().to_list()) <= set(RISK_LEVELS):
        return list(RISK_LEVELS)
    raise ValueError(f"ordinal level: dimension {dimension!r} has values that are not numbers; give their order "
                     "from low to high (value_order, or --order on the command line)")


def _number_label(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


# -- alpha, percent agreement, bootstrap --------------------------------------------------------

def dimension_agreement(coded: CodedRatings, level: str, n_boot: int = 1000,
                        rng: np.random.Generator | None = None) -> dict[str, Any]:
    """items, pairable_items, annotators, ratings, percent_agreement, alpha, alpha_lo, alpha_hi,
    alpha_reason for one dimension (JSON-ready: None, never NaN)."""
    counts = coded.value_counts
    per_item = counts.sum(axis=1)
    pairable = per_item >= 2
    result: dict[str, Any] = {
        "items": int(len(coded.items)), "pairable_items": int(pairable.sum()),
        "annotators": int(len(np.unique(coded.annotator))), "ratings": int(len(coded.code)),
        "percent_agreement": None, "alpha": None, "alpha_lo": None, "alpha_hi": None, "alpha_reason": None,
    }
    if not pairable.any():
        result["alpha_reason"] = ("no ratings" if not len(coded.code)
                                  else "no item has two or more ratings, so there is no agreement to measure")
        return result
    counts = counts[pairable]
    m = per_item[pairable]
    result["percent_agreement"] = float(np.mean((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))))
    features = item_features(counts, level, coded.numeric)
    if not np.isfinite(alpha_from_sums(features.sum(axis=0, keepdims=True), level, len(coded.values))[0]):
        result["alpha_reason"] = ("every rating of the items rated twice or more has the same value: "
                                  "no variation, so chance disagreement is zero and alpha is undefined")
        return result
    result["alpha"] = _package_alpha(counts, level, coded, features)
    if n_boot > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        alphas = bootstrap_alphas(features, level, len(coded.values), bootstrap_indices(len(m), n_boot, rng))
        defined = alphas[np.isfinite(alphas)]
        if defined.size:
            tail = (1 - CONFIDENCE) / 2 * 100
            lo, hi = np.percentile(defined, [tail, 100 - tail])
            result["alpha_lo"], result["alpha_hi"] = float(lo), float(hi)
    return result


def _package_alpha(counts: np.ndarray, level: str, coded: CodedRatings, features: np.ndarray) -> float:
    n_values = counts.shape[1]
    if counts.shape[0] * n_values * n_values > _PACKAGE_CELLS_MAX:
        return float(alpha_from_sums(features.sum(axis=0, keepdims=True), level, n_values)[0])
    import krippendorff

    # Ordinal distances depend only on the values' ranks and marginals; interval ones on the numbers.
    domain = coded.numeric if level == "interval" else np.arange(n_values)
    return float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))


def item_features(counts: np.ndarray, level: str, numeric: np.ndarray | None = None) -> np.ndarray:
    """Per pairable item, the terms whose sums over items give alpha (see alpha_from_sums).

    counts: items x values (every item with two or more ratings). nominal: [observed
    disagreement, count of each value]; interval: [observed disagreement, m, sum x, sum x^2]
    (x centred, alpha does not change under a shift); ordinal: the item's coincidence matrix,
    flattened.
    """
    counts = counts.astype(np.float64)
    m = counts.sum(axis=1)
    if level == "nominal":
        disagreement = (m * m - (counts * counts).sum(axis=1)) / (m - 1)
        return np.column_stack([disagreement, counts])
    if level == "interval":
        x = numeric - (numeric @ counts.sum(axis=0)) / m.sum()
        s1, s2 = counts @ x, counts @ (x * x)
        disagreement = 2 * (m * s2 - s1 * s1) / (m - 1)
        return np.column_stack([disagreement, m, s1, s2])
    coincidences = counts[:, :, None] * counts[:, None, :]
    diagonal = np.arange(counts.shape[1])
    coincidences[:, diagonal, diagonal] -= counts
    return (coincidences / (m - 1)[:, None, None]).reshape(len(m), -1)


def alpha_from_sums(sums: np.ndarray, level: str, n_values: int) -> np.ndarray:
    """Alpha for each row of summed item features (rows: resamples); NaN where it is undefined.

    alpha = 1 - (n - 1) * sum(o_ck * d_ck) / sum(n_c * n_k * d_ck), with o the coincidence
    matrix, n_c its marginals, n their total and d the level's squared difference (Krippendorff
    2011, "Computing Krippendorff's Alpha-Reliability").
    """
    sums = np.atleast_2d(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        if level == "nominal":
            marginals = sums[:, 1:]
            n = marginals.sum(axis=1)
            expected = n * n - (marginals * marginals).sum(axis=1)
            observed = sums[:, 0]
            scale = n * n
        elif level == "interval":
            observed, n, s1, s2 = sums.T
            expected = 2 * (n * s2 - s1 * s1)
            scale = 2 * n * s2
        else:
            coincidences = sums.reshape(-1, n_values, n_values)
            marginals = coincidences.sum(axis=1)
            n = marginals.sum(axis=1)
            distance = _ordinal_distances(marginals)
            observed = (coincidences * distance).sum(axis=(1, 2))
            expected = np.einsum("bc,bk,bck->b", marginals, marginals, distance)
            scale = n * n
        # No variation gives expected == 0 up to round-off (interval: n*S2 == S1^2 for equal values), which
        # must read as undefined, not as a huge alpha; the tolerance is relative to the data's own scale.
        defined = expected > 1e-12 * scale
        alphas = 1 - (n - 1) * observed / np.where(defined, expected, 1.0)
    return np.where(defined, alphas, np.nan)


def _ordinal_distances(marginals: np.ndarray) -> np.ndarray:
    """d_ck = (sum of n_g for g from c to k - (n_c + n_k) / 2)^2, per row of marginals."""
    cumulative = np.cumsum(marginals, axis=1)
    index = np.arange(marginals.shape[1])
    lo, hi = np.minimum.outer(index, index), np.maximum.outer(index, index)
    between = cumulative[:, hi] - cumulative[:, lo] + marginals[:, lo]
    return (between - (marginals[:, :, None] + marginals[:, None, :]) / 2) ** 2


def bootstrap_indices(n_items: int, n_boot: int, rng: np.random.Generator):
    """Resamples of item positions with replacement, as (chunk, n_items) arrays in order."""
    chunk = max(1, _BOOT_CHUNK_CELLS // max(n_items, 1))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n_items, size=(min(chunk, n_boot - start), n_items))


def bootstrap_alphas(features: np.ndarray, level: str, n_values: int, indices) -> np.ndarray:
    """Alpha of each resample: resample counts per item (a row of weights) times the features."""
    out = []
    n_items = features.shape[0]
    for block in indices:
        rows = np.repeat(np.arange(block.shape[0]), n_items)
        weights = np.bincount(rows * n_items + block.ravel(), minlength=block.shape[0] * n_items)
        out.append(alpha_from_sums(weights.reshape(block.shape[0], n_items) @ features, level, n_values))
    return np.concatenate(out) if out else np.empty(0)


# -- pairs --------------------------------------------------------------------------------------

def pair_agreement(coded: CodedRatings) -> list[dict[str, Any]]:
    """{a, b, items, agreement, kappa} for every pair of annotators with at least one shared item.

    Cohen's kappa over the shared items: with n shared items, A agreements and x_c, y_c the
    times each of the two gave value c there, kappa = (n*A - sum x_c*y_c) / (n^2 - sum x_c*y_c),
    i.e. (p_o - p_e) / (1 - p_e) (scikit-learn's cohen_kappa_score; equal in the tests).
    """
    from scipy import sparse

    n_annotators, n_items, n_values = len(coded.annotators), len(coded.items), len(coded.values)
    if n_annotators < 2 or not len(coded.code):
        return []
    ones = np.ones(len(coded.code))
    rated = sparse.csr_matrix((ones, (coded.annotator, coded.item)), shape=(n_annotators, n_items))
    valued = sparse.csr_matrix((ones, (coded.annotator, coded.item * n_values + coded.code)),
                               shape=(n_annotators, n_items * n_values))
    shared = (rated @ rated.T).toarray()
    agreed = (valued @ valued.T).toarray()
    chance = np.zeros_like(shared)
    for value in np.unique(coded.code):
        mask = coded.code == value
        gave = sparse.csr_matrix((ones[mask], (coded.annotator[mask], coded.item[mask])),
                                 shape=(n_annotators, n_items))
        # [a, b]: items where a gave this value and b rated; times its transpose: x_c * y_c.
        x = (gave @ rated.T).toarray()
        chance += x * x.T
    a_index, b_index = np.triu_indices(n_annotators, 1)
    keep = shared[a_index, b_index] > 0
    a_index, b_index = a_index[keep], b_index[keep]
    n = shared[a_index, b_index]
    agree = agreed[a_index, b_index]
    expected = chance[a_index, b_index]
    denominator = n * n - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(denominator > 0, (n * agree - expected) / np.where(denominator > 0, denominator, 1), np.nan)
    names = coded.annotators
    return [{"a": str(names[a]), "b": str(names[b]), "items": int(k), "agreement": float(g / k),
             "kappa": None if np.isnan(q) else float(q)}
            for a, b, k, g, q in zip(a_index.tolist(), b_index.tolist(), n.tolist(), agree.tolist(), kappa.tolist())]


# -- helpers ------------------------------------------------------------------------------------

def _check_level(level: str, dimension: str | None = None) -> None:
    if level not in LEVELS:
        where = f" for dimension {dimension!r}" if dimension else ""
        raise ValueError(f"unknown level of measurement{where}: {level!r} (expected one of {', '.join(LEVELS)})")


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator per (seed, dimension, ...): one dimension's interval never depends on another's."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(zlib.crc32(str(k).encode()) for k in keys)])
