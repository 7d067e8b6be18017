"""Latency, cost and length outliers relative to the trace's intent, by robust statistics.

Robust z. For a value x (on a log scale: latency, cost and length are multiplicative, a 10x
slow call is as far from the median as a 10x fast one), z = (x - median) / (1.4826 x MAD), the
median and MAD taken over the trace's group. Groups go from fine to coarse: intent x model
(a model's price and speed differ, and routing can send one intent to two models), then model,
then all traces; a trace uses the finest group holding at least `min_group_size` reference
traces (30 by default). Traces with no intent skip the first level. The scale is floored at 0.05
(about 5% on the log scale) so a group of near-identical values does not turn noise into huge
z. Reference traces are the ones that did not fail: a failed request's latency is the
failure's (a timeout waits 30 s, a rate limit fails fast) and it has no answer to measure.

Outliers, each flagged only when z > 3.5 *and* the value is at least 3x its group's median
(statistically unusual and large enough to matter):

- `latency_score` = min(z of latency, z of latency per generated token), where the per-token
  figure divides by the output tokens floored at the group's median output length. A long
  answer takes long to stream: a runaway answer is slow in total but not per token, and is
  reported as `verbose_output`, not as a latency outlier. `latency_outlier` needs the score and
  the ratio on total latency. A failed request is compared with failed requests of its own
  `error_type` (then with all failed requests): a timeout always waits its timeout, a rate
  limit fails fast, so only a failure slow *for its kind* is a latency outlier.
- `cost_score` = min(z of cost, z of cost per generated token, z of cost per recorded prompt
  token), the last dividing by the prompt the trace records (characters / 4 of its messages,
  retrieved context and tool calls) floored at the group's median. A long conversation, or one
  that carries an earlier runaway answer in its history, is expensive for a reason the trace
  shows (and scores as difficult); `cost_outlier` marks spend that neither the answer nor the
  recorded prompt explains: hidden context stuffing, retries, agent loops, a wrong price.
  Failed requests are flagged too: their tokens are billed all the same. Metadata-only traces
  (no recorded prompt) are judged on the other two figures.
- `verbose_output`: z of the answer length (output tokens, or characters / 4 without a token
  count) > 3.5, at least 3x the group median, and at least 200 tokens, so an intent of one-line
  answers does not flag a paragraph.
- Retrieval scores on a scale other than 0..1 (any score above 1 in the window, e.g. BM25):
  `low_retrieval_score` when the best score's z (raw scale, same groups) is under -3.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

MAD_TO_SIGMA = 1.4826
MIN_LOG_SCALE = 0.05


@dataclass
class RobustScore:
    z: np.ndarray  # nan where the value is missing or no group had enough reference traces
    median: np.ndarray  # the median of the group each trace was compared with (x's scale)


def robust_z(x: np.ndarray, levels: Sequence[Sequence[str | None]], reference: np.ndarray,
             min_group_size: int, min_scale: float = MIN_LOG_SCALE) -> RobustScore:
    """Robust z of x per group, trying each level of group keys in turn (None = no group)."""
    n = len(x)
    z = np.full(n, np.nan)
    median = np.full(n, np.nan)
    assigned = np.zeros(n, dtype=bool)
    usable = reference & np.isfinite(x)
    for keys in levels:
        frame = pl.DataFrame({"key": list(keys), "x": x, "use": usable},
                             schema={"key": pl.String, "x": pl.Float64, "use": pl.Boolean})
        stats = (frame.filter(pl.col("use") & pl.col("key").is_not_null())
                 .group_by("key")
                 .agg(pl.col("x").median().alias("med"), pl.len().alias("n"),
                      ((pl.col("x") - pl.col("x").median()).abs().median()).alias("mad"))
                 .filter(pl.col("n") >= min_group_size))
        joined = frame.join(stats, on="key", how="left", maintain_order="left")
        med = joined["med"].to_numpy().astype(float)
        mad = joined["mad"].to_numpy().astype(float)
        take = ~assigned & np.isfinite(med)
        scale = np.maximum(MAD_TO_SIGMA * mad, min_scale)
        z[take] = (x[take] - med[take]) / scale[take]
        median[take] = med[take]
        assigned |= take
    z[~np.isfinite(x)] = np.nan
    return RobustScore(z, median)


def group_levels(intent_ids: Sequence[str | None], models: Sequence[str | None]) -> list[list[str | None]]:
    """intent x model, then model, then everything."""
    model_keys = [m if m is not None else "<no model>" for m in models]
    return [
        [None if i is None else f"{i}\x1f{m}" for i, m in zip(intent_ids, model_keys)],
        model_keys,
        ["<all>"] * len(model_keys),
    ]


def log_of(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(arr > 0, np.log(arr), np.nan)


@dataclass
class OutlierSignals:
    latency_score: np.ndarray
    latency_outlier: np.ndarray
    cost_score: np.ndarray
    cost_outlier: np.ndarray
    verbose: np.ndarray
    output_length_ratio: np.ndarray  # answer length / group median (for reasons)
    low_retrieval_relative: np.ndarray


def _flag(score: np.ndarray, x: np.ndarray, median: np.ndarray, z_min: float, ratio: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (np.nan_to_num(score, nan=-np.inf) > z_min) & (np.nan_to_num(x - median, nan=-np.inf) >= np.log(ratio))


def _per_unit_score(log_value: np.ndarray, log_units: np.ndarray, units_median: np.ndarray,
                    levels, reference, min_group: int) -> np.ndarray:
    """z of value / max(units, the group's median units): a trace with fewer units than usual
    is not rewarded for it, one with more is judged per unit."""
    floor = np.fmax(log_units, units_median)  # fmax: a missing count falls back to the median
    per_unit = log_value - np.where(np.isfinite(floor), np.maximum(floor, 0.0), np.nan)
    return robust_z(per_unit, levels, reference, min_group).z


def _explained_score(log_value: np.ndarray, explanations: list[tuple[np.ndarray, np.ndarray]],
                     levels, reference, min_group: int) -> tuple[np.ndarray, np.ndarray]:
    """min(z of the value, z of the value per unit of each explanation), and the group medians."""
    total = robust_z(log_value, levels, reference, min_group)
    score = total.z.copy()
    for log_units, units_median in explanations:
        per_unit = _per_unit_score(log_value, log_units, units_median, levels, reference, min_group)
        score = np.where(np.isfinite(per_unit), np.fmin(score, per_unit), score)
    return score, total.median


def compute_outliers(*, latency_ms, cost_usd, output_length, prompt_length, retrieval_max,
                     failed: np.ndarray, error_types: Sequence[str | None], intent_ids, models,
                     z_min: float, min_ratio: float, min_group: int,
                     verbose_min_tokens: int) -> OutlierSignals:
    levels = group_levels(intent_ids, models)
    ok = ~failed
    log_out = log_of(output_length)
    out_stats = robust_z(log_out, levels, ok, min_group)
    verbose = _flag(out_stats.z, log_out, out_stats.median, z_min, min_ratio) & ok
    verbose &= np.nan_to_num(log_out, nan=-np.inf) >= np.log(verbose_min_tokens)
    log_prompt = log_of(prompt_length)
    prompt_median = robust_z(log_prompt, levels, ok, min_group).median
    by_answer = (log_out, out_stats.median)

    scores = {}
    log_latency = log_of(latency_ms)
    score, median = _explained_score(log_latency, [by_answer], levels, ok, min_group)
    kinds = [k if f else None for k, f in zip(error_types, failed)]
    failures = robust_z(log_latency, [kinds, [("<failed>" if f else None) for f in failed]], failed, min_group)
    score = np.where(failed, failures.z, score)
    median = np.where(failed, failures.median, median)
    scores["latency"] = (score, _flag(score, log_latency, median, z_min, min_ratio))
    log_cost = log_of(cost_usd)
    score, median = _explained_score(log_cost, [by_answer, (log_prompt, prompt_median)], levels, ok, min_group)
    scores["cost"] = (score, _flag(score, log_cost, median, z_min, min_ratio))

    raw_retrieval = np.array([np.nan if v is None else float(v) for v in retrieval_max], dtype=float)
    low_relative = np.zeros(len(raw_retrieval), dtype=bool)
    if np.nanmax(raw_retrieval, initial=0.0) > 1.0:
        spread = robust_z(raw_retrieval, levels, np.isfinite(raw_retrieval), min_group, min_scale=1e-9)
        low_relative = np.nan_to_num(spread.z, nan=0.0) < -z_min

    with np.errstate(invalid="ignore"):
        ratio = np.exp(log_out - out_stats.median)
    return OutlierSignals(
        latency_score=scores["latency"][0], latency_outlier=scores["latency"][1],
        cost_score=scores["cost"][0], cost_outlier=scores["cost"][1],
        verbose=verbose, output_length_ratio=ratio, low_retrieval_relative=low_relative,
    )
