"""One week's drift report: every signal against the golden set's production baseline and against
the week before, each with its value, threshold, severity and a line a person reads.

Signals (docs/drift.md says what each measures and why its threshold is what it is):

| signal | vs | value | breach when |
|---|---|---|---|
| traffic | none | traces in the week | never (coverage: days with data, partial weeks) |
| intent_mix | golden, previous | JS divergence (bits) | above max(floor, null quantile at the week's size) |
| embedding | golden, previous | aggregated MMD statistic (null sds) | permutation p below alpha / tests |
| system_prompt, tool_schema, prompt_template | golden, previous | week's share on new hashes / ids | >= warn share |
| retrieval | golden, previous | mean BM25 overlap@k of the golden queries | below retrieval_overlap_warn |
| kb_changed_docs | golden, previous | documents whose content changed under one id | >= kb_changed_docs_warn |
| kb_new_docs | golden, previous | share of the week's retrievals of ids the baseline never saw | >= kb_new_share_warn |
| staleness | golden | share of golden cases older than six months | >= stale_share_warn |
| version_age | golden | days since the golden version was published | >= version_age_warn_days |
| safety_share | golden, previous | share of traffic with injection/policy signals | ratio, gap and test say it rose |
| safety_coverage | golden | the safety edge set's share of golden cases | below the week's safety share |
| safety_pass_rate | golden | the safety edge set's pass rate | 15+ points above the rolling safety cases' |
| score_inflation | golden | golden pass rate - rolling pass rate | gap >= 15 points and significant |
| stall | golden | lowest golden pass rate of the last versions | >= 90% each while failures do not fall |

("previous" is the baseline `previous_week`.)

`compute_week(inputs, config)` is deterministic: every random draw is seeded by config.seed, the
week and the signal. Details hold ids, hashes, shares and intent names, never trace text.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from evalflow.lib.drift.baseline import safety_flags, sessions_deff, shares, true_share
from evalflow.lib.drift.config import DriftConfig
from evalflow.lib.drift.inputs import GoldenBaseline, Traffic, WeekInputs, pass_rate, verdict_counts
from evalflow.lib.drift.retrieval import BM25Index, KBSnapshot, case_query, kb_snapshot, seen_overlap
from evalflow.lib.drift.stats import MMD_SCALES, divergence, fisher_greater, js_null, mmd_test, rng_for

GOLDEN = "golden"
PREVIOUS = "previous_week"
NONE = "none"
WARN = "WARN"
ERROR = "ERROR"
# (signal, trace column, what a person calls it, its shares' key in the production baseline)
HASH_FIELDS = (("system_prompt", "system_prompt_hash", "system-prompt hash", "system_prompt_hashes"),
               ("tool_schema", "tool_schema_hash", "tool-schema hash", "tool_schema_hashes"),
               ("prompt_template", "prompt_template_id", "prompt template id", "prompt_template_ids"))
_PLURAL = {"system-prompt hash": "system-prompt hashes", "tool-schema hash": "tool-schema hashes",
           "prompt template id": "prompt template ids"}
_VS = {GOLDEN: "the golden baseline", PREVIOUS: "the week before", NONE: ""}


@dataclass
class SignalResult:
    signal: str
    baseline: str  # "golden" | "previous_week" | "none"
    value: float | None
    threshold: float | None
    severity: str | None  # None = no breach, else "WARN" | "ERROR"
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def breached(self) -> bool:
        return self.severity is not None

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "baseline": self.baseline, "value": self.value, "threshold": self.threshold,
                "severity": self.severity, "detail": self.detail, "data": plain(self.data)}


def alert_id(week_start: date | str, signal: str, baseline: str) -> str:
    """Stable id of a week's alert on one signal and baseline (a receiver de-duplicates on it)."""
    key = f"{week_start}|{signal}|{baseline}"
    return "alert-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class WeekReport:
    week_start: date
    signals: list[SignalResult]
    figures: dict[str, Any] = field(default_factory=dict)  # key figures for the asset's metadata
    computed_at: datetime | None = None

    def breaches(self) -> list[SignalResult]:
        return [s for s in self.signals if s.breached]

    def signal(self, name: str, baseline: str) -> SignalResult | None:
        return next((s for s in self.signals if s.signal == name and s.baseline == baseline), None)

    def alerts(self) -> list[dict[str, Any]]:
        """Rows for `alerts`: the breaches only."""
        return [{"alert_id": alert_id(self.week_start, s.signal, s.baseline), "week_start": self.week_start,
                 "signal": s.signal, "baseline": s.baseline, "severity": s.severity, "value": s.value,
                 "threshold": s.threshold, "detail": s.detail} for s in self.breaches()]

    def history_rows(self) -> list[dict[str, Any]]:
        """Rows for `drift_history`: one per signal and baseline."""
        return [{"week_start": self.week_start, "signal": s.signal, "baseline": s.baseline, "value": s.value,
                 "threshold": s.threshold, "severity": s.severity, "detail": s.detail,
                 "computed_at": self.computed_at} for s in self.signals]

    def as_dict(self) -> dict[str, Any]:
        week_end = self.week_start + timedelta(days=6)
        return {"week_start": self.week_start.isoformat(), "week_end": week_end.isoformat(),
                "computed_at": self.computed_at.isoformat() if self.computed_at else None,
                "figures": plain(self.figures), "signals": [s.as_dict() for s in self.signals]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, allow_nan=False)


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to None, dates to ISO text, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# ----------------------------------------------------------------------------- formatting
def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def short(h: str, n: int = 12) -> str:
    h = str(h)
    return h if len(h) <= n + 1 else h[:n] + "…"


def _name(intent: str, names: Mapping[str, str]) -> str:
    name = names.get(intent)
    return f"{intent} ({name})" if name and name != intent else str(intent)


def _result(signal: str, baseline: str, value, threshold, severity, detail, **data) -> SignalResult:
    return SignalResult(signal, baseline, None if value is None else float(value),
                        None if threshold is None else float(threshold), severity, detail, plain(data))


# ----------------------------------------------------------------------------- traffic
def _traffic(inputs: WeekInputs, config: DriftConfig) -> SignalResult:
    week = inputs.week
    days = week.days_with_data()
    with_intent = int(week.column("intent_id").is_not_null().sum())
    partial = days < 7
    note = f"{days} of 7 days with data" + (" (a partial week)" if partial else "")
    detail = f"{note}; {week.traces:,} traces, {with_intent:,} with an intent"
    if with_intent < config.min_traces:
        detail += f"; under {config.min_traces} traces with an intent the noisy signals raise no alarm"
    return _result("traffic", NONE, week.traces, None, None, detail, days_with_data=days, coverage=round(days / 7, 4),
                   partial=partial, traces_with_intent=with_intent, min_traces=config.min_traces,
                   embedded_traces=week.embedded_traces)


# ----------------------------------------------------------------------------- intent mix
def _counts(series: pl.Series) -> dict[str, float]:
    values = series.drop_nulls()
    if values.is_empty():
        return {}
    counts = values.value_counts()
    return {str(k): float(c) for k, c in zip(counts.get_column(values.name).to_list(),
                                             counts.get_column("count").to_list())}


def intent_mix(week_counts: Mapping[str, float], base_counts: Mapping[str, float], *, deff_week: float,
               deff_base: float, baseline: str, config: DriftConfig, rng: np.random.Generator,
               names: Mapping[str, str] | None = None) -> SignalResult:
    """JS (bits) and smoothed KL of the week's intent mix against the baseline's, each intent's
    contribution, and the alarm threshold max(intent_js_floor, the intent_null_quantile of JS
    between two multinomial samples of the pooled mix at the effective sizes n / deff)."""
    names = names or {}
    n_week, n_base = float(sum(week_counts.values())), float(sum(base_counts.values()))
    if n_week <= 0 or n_base <= 0:
        side = "the week" if n_week <= 0 else "the baseline"
        return _result("intent_mix", baseline, None, None, None, f"no trace with an intent in {side}",
                       traces=n_week, baseline_traces=n_base)
    div = divergence(week_counts, base_counts, config.kl_pseudocount)
    pooled = [(week_counts.get(c, 0.0) + base_counts.get(c, 0.0)) for c in div.categories]
    null = js_null(pooled, n_week / max(1.0, deff_week), n_base / max(1.0, deff_base), config.intent_null_draws, rng)
    null_q = float(np.quantile(null, config.intent_null_quantile))
    threshold = max(config.intent_js_floor, null_q)
    rows = sorted(({"intent_id": c, "name": names.get(c), "week_share": p, "baseline_share": q, "delta": p - q,
                    "js_contribution": j, "kl_contribution": k}
                   for c, p, q, j, k in zip(div.categories, div.week_share, div.baseline_share, div.js_contrib,
                                            div.kl_contrib)), key=lambda r: (-r["js_contribution"], r["intent_id"]))
    too_few = min(n_week, n_base) < config.min_traces
    severity = None
    if not too_few and div.js > threshold:
        severity = ERROR if div.js >= max(config.intent_js_error, threshold) else WARN
    movers = ", ".join(f"{_name(r['intent_id'], names)} {pct(r['baseline_share'])}→{pct(r['week_share'])}"
                       for r in rows[:3] if r["js_contribution"] > 0)
    detail = (f"JS {div.js:.4f} bits vs {_VS[baseline]} (threshold {threshold:.4f}: max of floor "
              f"{config.intent_js_floor:g} and null q{config.intent_null_quantile:g} {null_q:.4f} at {n_week:,.0f} "
              f"vs {n_base:,.0f} traces, design effect {deff_week:.2f}/{deff_base:.2f}); KL {div.kl:.4f}; "
              f"moved most: {movers or 'none'}")
    if too_few:
        detail = (f"too few traces for an alarm ({min(n_week, n_base):,.0f} < {config.min_traces} with an intent); "
                  + detail)
    return _result("intent_mix", baseline, div.js, threshold, severity, detail, js=div.js, kl=div.kl,
                   kl_pseudocount=config.kl_pseudocount, null_quantile=null_q, null_q=config.intent_null_quantile,
                   null_mean=float(null.mean()), floor=config.intent_js_floor, traces=n_week, baseline_traces=n_base,
                   design_effect=deff_week, baseline_design_effect=deff_base, too_few_traces=too_few, intents=rows)


def _intent_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    out = []
    week = inputs.week
    intents = week.column("intent_id")
    counts = _counts(intents)
    deff = sessions_deff(week, intents)
    seed = (config.seed, "intent_mix", inputs.week_start)
    base = inputs.golden.baseline if inputs.golden else None
    if inputs.golden is not None:
        if base is None or not base.get("intent_shares"):
            out.append(_result("intent_mix", GOLDEN, None, None, None,
                               f"{inputs.golden.ref} recorded no production intent mix"))
        else:
            n_base = float(base.get("intent_traces") or base.get("traces") or 0)
            base_counts = {k: float(v) * n_base for k, v in base["intent_shares"].items()}
            out.append(intent_mix(counts, base_counts, deff_week=deff,
                                  deff_base=float(base.get("intent_design_effect") or deff), baseline=GOLDEN,
                                  config=config, rng=rng_for(*seed, GOLDEN), names=inputs.intent_names))
    if inputs.previous_week is not None:
        prev = inputs.previous_week
        prev_intents = prev.column("intent_id")
        out.append(intent_mix(counts, _counts(prev_intents), deff_week=deff,
                              deff_base=sessions_deff(prev, prev_intents), baseline=PREVIOUS, config=config,
                              rng=rng_for(*seed, PREVIOUS), names=inputs.intent_names))
    return out


# ----------------------------------------------------------------------------- embeddings
def _capped(matrix: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(matrix) <= cap:
        return matrix
    return matrix[np.sort(rng.choice(len(matrix), size=cap, replace=False))]


def _embedding_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    pairs = []
    if inputs.golden is not None:
        pairs.append((GOLDEN, inputs.golden_traffic))
    if inputs.previous_week is not None:
        pairs.append((PREVIOUS, inputs.previous_week))
    if not pairs:
        return []
    alpha = config.embedding_alpha / len(pairs)  # Bonferroni over the report's embedding tests
    out = []
    for baseline, other in pairs:
        rng = rng_for(config.seed, "embedding", inputs.week_start, baseline)
        if other is None:
            out.append(_result("embedding", baseline, None, None, None,
                               "the golden window's traffic is no longer in the warehouse: no embedding test"))
            continue
        x = _capped(np.asarray(inputs.week.embeddings), config.embedding_sample, rng)
        y = _capped(np.asarray(other.embeddings), config.embedding_sample, rng)
        if len(x) < config.embedding_min or len(y) < config.embedding_min or x.shape[1] != y.shape[1]:
            out.append(_result("embedding", baseline, None, None, None,
                               f"too few embedded traces for the test ({len(x)} in the week, {len(y)} in "
                               f"{_VS[baseline]}; needs {config.embedding_min} each)", n_week=len(x),
                               n_baseline=len(y)))
            continue
        res = mmd_test(x, y, config.embedding_permutations, rng, alpha)
        severity = WARN if res.p_value <= alpha else None
        detail = (f"MMD test vs {_VS[baseline]}: p = {res.p_value:.4f} ({res.permutations:,} permutations; alpha "
                  f"{alpha:g} = {config.embedding_alpha:g} / {len(pairs)} tests), statistic {res.statistic:.2f} null "
                  f"sd (threshold {res.null_quantile:.2f}); MMD² {res.mmd2:.5f}; centroid distance "
                  f"{res.centroid_distance:.4f}; {res.n_x} vs {res.n_y} traces, one per session")
        out.append(_result("embedding", baseline, res.statistic, res.null_quantile, severity, detail,
                           p_value=res.p_value, mmd2=res.mmd2, kernel_scales=list(MMD_SCALES),
                           alpha=alpha, family_alpha=config.embedding_alpha, tests=len(pairs),
                           centroid_distance=res.centroid_distance, bandwidth=res.bandwidth, n_week=res.n_x,
                           n_baseline=res.n_y, permutations=res.permutations))
    return out


# ----------------------------------------------------------------------------- hashes
def unseen_by_chance(share: float, baseline_n: float | None, alpha: float) -> bool:
    """Whether a value carrying `share` of the week could plausibly be missing from a baseline of
    `baseline_n` draws by chance alone: (1 - share)^n >= alpha. A tiny baseline (the first days of
    data) then does not make every value it happened not to see look new."""
    if not baseline_n:
        return False
    return (1.0 - min(share, 1.0)) ** baseline_n >= alpha


def hash_signal(signal: str, week_shares: Mapping[str, float], base_shares: Mapping[str, float] | None,
                baseline: str, config: DriftConfig, label: str, baseline_n: float | None = None) -> SignalResult:
    """New and vanished hashes (or template ids) with their shares; value = the week's share on
    values the baseline never had. Exact, except that a value a baseline of `baseline_n` traces
    could have missed by chance (unseen_by_chance) is listed but not counted."""
    if not week_shares:
        return _result(signal, baseline, None, None, None, f"no trace of the week carries a {label}")
    if not base_shares:
        return _result(signal, baseline, None, None, None, f"{_VS[baseline]} recorded no {label}")
    unknown = {h: s for h, s in sorted(week_shares.items(), key=lambda kv: -kv[1]) if h not in base_shares}
    maybe = {h: s for h, s in unknown.items() if unseen_by_chance(s, baseline_n, config.unseen_alpha)}
    new = {h: s for h, s in unknown.items() if h not in maybe}
    vanished = {h: s for h, s in sorted(base_shares.items(), key=lambda kv: -kv[1]) if h not in week_shares}
    value = float(sum(new.values()))
    severity = ERROR if value >= config.hash_new_share_error else WARN if value >= config.hash_new_share_warn else None
    parts = []
    if new:
        parts.append("new: " + ", ".join(f"{short(h)} ({pct(s)} of the week)" for h, s in list(new.items())[:3]))
    if maybe:
        parts.append("not in the baseline but too rare to be sure it is new: "
                     + ", ".join(f"{short(h)} ({pct(s, 2)})" for h, s in list(maybe.items())[:3]))
    if vanished:
        parts.append("vanished: " + ", ".join(f"{short(h)} (was {pct(s)})" for h, s in list(vanished.items())[:3]))
    detail = (f"{_PLURAL.get(label, label)} vs {_VS[baseline]}: " + "; ".join(parts) if parts
              else f"every {label} of the week is in {_VS[baseline]} ({len(week_shares)} in use)")
    return _result(signal, baseline, value, config.hash_new_share_warn, severity, detail, week=dict(week_shares),
                   baseline_shares=dict(base_shares), new=new, vanished=vanished, unseen_by_chance=maybe,
                   baseline_traces=baseline_n, error_threshold=config.hash_new_share_error)


def template_checks(traffic: Traffic, base: Mapping[str, Any] | None, baseline: str, config: DriftConfig,
                    suffix: str = "") -> list[SignalResult]:
    """hash_signal of each HASH_FIELDS column of `traffic` against `base`, a production baseline
    (baseline.py: its shares per hash or id, over its `traces`)."""
    base = base or {}
    return [hash_signal(signal + suffix, shares(traffic.column(column)), base.get(key), baseline, config, label,
                        base.get("traces")) for signal, column, label, key in HASH_FIELDS]


def template_hash_check(traffic: Traffic, golden: GoldenBaseline | None, config: DriftConfig) -> list[SignalResult]:
    """The nightly check: one day (or any window) of traffic against the golden baseline's
    system-prompt hashes, tool-schema hashes and template ids. Signals are named
    `system_prompt_nightly`, `tool_schema_nightly`, `prompt_template_nightly` (baseline golden);
    empty when there is no golden version or it recorded no baseline."""
    if golden is None or golden.baseline is None:
        return []
    return template_checks(traffic, golden.baseline, GOLDEN, config, suffix="_nightly")


def _hash_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    out = []
    if inputs.golden is not None:
        out += template_checks(inputs.week, inputs.golden.baseline, GOLDEN, config)
    if inputs.previous_week is not None:
        previous = inputs.previous_week
        for signal, column, label, _ in HASH_FIELDS:
            values = previous.column(column)
            out.append(hash_signal(signal, shares(inputs.week.column(column)), shares(values), PREVIOUS, config, label,
                                   float(values.is_not_null().sum())))
    return out


# ----------------------------------------------------------------------------- retrieval
def _overlaps(index: BM25Index, cases: Mapping[str, Mapping[str, Any]], recorded: Mapping[str, Sequence[str]],
              k: int, snap: KBSnapshot) -> dict[str, dict[str, Any]]:
    out = {}
    for case_id in sorted(recorded):
        case = cases.get(case_id)
        query = case_query(case) if case is not None else None
        if query is None or not recorded[case_id]:
            continue
        now = index.top_k(query, k)
        overlap, unseen = seen_overlap(recorded[case_id], now, snap.hashes, snap.superseded)
        out[case_id] = {"overlap": overlap, "recorded": list(recorded[case_id]), "now": now, "unseen": unseen}
    return out


def _retrieval_result(baseline: str, per_case: dict[str, dict[str, Any]], k: int, config: DriftConfig,
                      snap: KBSnapshot, base_docs: Mapping[str, str]) -> SignalResult:
    new_ids = sorted(set(snap.hashes) - set(base_docs))
    unseen = sorted(set(base_docs) - set(snap.hashes))
    kb = (f"knowledge base: {len(snap)} current documents this week; vs {_VS[baseline]} {len(new_ids)} ids new, "
          f"{len(unseen)} of {len(base_docs)} not current (unseen or re-issued)")
    common = dict(k=k, breach_when="below", error_threshold=config.retrieval_overlap_error, kb_docs_week=len(snap),
                  kb_docs_baseline=len(base_docs), new_doc_ids=new_ids[:50], new_docs=len(new_ids),
                  unseen_doc_ids=unseen[:50], unseen_docs=len(unseen))
    if not len(snap):
        return _result("retrieval", baseline, None, None, None,
                       "no document in the week's retrieved context: nothing to retrieve from", **common)
    if not per_case:
        return _result("retrieval", baseline, None, None, None,
                       "no golden case with a query and a recorded top-k", cases=0, **common)
    values = [v["overlap"] for v in per_case.values() if v["overlap"] is not None]
    unknown = len(per_case) - len(values)
    unknown_note = (f"; {unknown} more not comparable (none of their recorded documents was retrieved this week)"
                    if unknown else "")
    if not values:
        return _result("retrieval", baseline, None, None, None,
                       f"no golden query is comparable: none of their recorded documents was retrieved this week; "
                       f"{kb}", cases=0, not_comparable=unknown, per_case=per_case, **common)
    mean = float(np.mean(values))
    low = sum(1 for v in values if v < 0.5)
    severity = None
    if len(values) >= config.retrieval_min_cases:
        if mean < config.retrieval_overlap_error:
            severity = ERROR
        elif mean < config.retrieval_overlap_warn:
            severity = WARN
    detail = (f"mean overlap@{k} {mean:.2f} over {len(values)} golden queries vs {_VS[baseline]} "
              f"({low} below 0.5){unknown_note}; {kb}")
    if len(values) < config.retrieval_min_cases:
        detail = f"too few golden queries for an alarm ({len(values)} < {config.retrieval_min_cases}); " + detail
    comparable = {c: v for c, v in per_case.items() if v["overlap"] is not None}
    worst = sorted(comparable.items(), key=lambda kv: (kv[1]["overlap"], kv[0]))[:10]
    return _result("retrieval", baseline, mean, config.retrieval_overlap_warn, severity, detail, cases=len(values),
                   not_comparable=unknown, below_half=low, per_case=per_case,
                   worst=[{"case_id": c, **v} for c, v in worst], **common)


def _changed_docs(baseline: str, snap: KBSnapshot, base_docs: Mapping[str, str], golden_docs: set[str],
                  config: DriftConfig) -> SignalResult:
    changed = sorted(d for d, h in snap.hashes.items()
                     if (d in base_docs and base_docs[d] != h) or d in snap.changed_within)
    in_golden = [d for d in changed if d in golden_docs]
    if not snap.hashes or not base_docs:
        return _result("kb_changed_docs", baseline, None, None, None,
                       "no documents to compare (none seen this week or in " + _VS[baseline] + ")")
    severity = None
    if len(changed) >= config.kb_changed_docs_warn:
        severity = ERROR if in_golden else WARN
    if changed:
        detail = (f"{len(changed)} document(s) changed content under the same id vs {_VS[baseline]}: "
                  + ", ".join(short(d, 40) for d in changed[:8]) + (" …" if len(changed) > 8 else ""))
        if in_golden:
            detail += (f"; {len(in_golden)} in golden cases' recorded top-k: "
                       + ", ".join(short(d, 40) for d in in_golden[:5]))
    else:
        detail = f"no document changed content under the same id vs {_VS[baseline]} ({len(snap)} documents)"
    changes = [{"doc_id": d, "before": base_docs.get(d), "now": snap.hashes[d],
                "within_week": snap.changed_within.get(d, [])} for d in changed]
    return _result("kb_changed_docs", baseline, len(changed), config.kb_changed_docs_warn, severity, detail,
                   changed=changes, in_golden_top_k=in_golden)


def _new_docs(baseline: str, snap: KBSnapshot, known: set[str], baseline_n: float, config: DriftConfig) -> SignalResult:
    """Share of the week's retrievals that returned a document id the baseline never saw (a new
    document, or a re-id). Exact, except that an id a baseline of `baseline_n` retrievals could
    have missed by chance is listed but not counted."""
    total = snap.retrievals()
    if not total or not known:
        return _result("kb_new_docs", baseline, None, None, None,
                       "no documents to compare (none seen this week or in " + _VS[baseline] + ")")
    unknown = {d: n for d, n in sorted(snap.sightings.items(), key=lambda kv: (-kv[1], kv[0])) if d not in known}
    maybe = {d: n for d, n in unknown.items() if unseen_by_chance(n / total, baseline_n, config.unseen_alpha)}
    new = {d: n for d, n in unknown.items() if d not in maybe}
    value = sum(new.values()) / total
    severity = ERROR if value >= config.kb_new_share_error else WARN if value >= config.kb_new_share_warn else None
    if new:
        detail = (f"{len(new)} document id(s) {_VS[baseline]} never saw returned {pct(value)} of the week's "
                  f"{total:,} retrievals: " + ", ".join(short(d, 40) for d in list(new)[:6])
                  + (" …" if len(new) > 6 else ""))
    else:
        detail = f"every document id retrieved this week is known to {_VS[baseline]} ({len(snap.sightings)} ids)"
    if maybe:
        detail += f"; {len(maybe)} more unseen there but too rarely retrieved to be sure they are new"
    if snap.superseded:
        detail += f"; {len(snap.superseded)} id(s) re-issued under a new id with the same content"
    return _result("kb_new_docs", baseline, value, config.kb_new_share_warn, severity, detail,
                   new_ids={d: n / total for d, n in list(new.items())[:50]}, new_docs=len(new), retrievals=total,
                   unseen_by_chance={d: n / total for d, n in list(maybe.items())[:50]}, baseline_retrievals=baseline_n,
                   superseded=dict(sorted(snap.superseded.items())[:50]), error_threshold=config.kb_new_share_error)


def _retrieval_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    if inputs.golden is None:
        return []
    snap = kb_snapshot(inputs.week.frame)
    base = (inputs.golden.baseline or {}).get("retrieval") or {}
    recorded = base.get("top_k") or {}
    k = int(base.get("k") or config.retrieval_k)
    cases = {str(c.get("case_id")): c for c in inputs.golden.cases}
    golden_docs = {d for docs in recorded.values() for d in docs}
    index = BM25Index(snap.docs)
    base_docs = base.get("kb_docs") or {}
    out = [_retrieval_result(GOLDEN, _overlaps(index, cases, recorded, k, snap), k, config, snap, base_docs),
           _changed_docs(GOLDEN, snap, base_docs, golden_docs, config),
           _new_docs(GOLDEN, snap, set(base_docs) | set(base.get("superseded") or {}),
                     float((inputs.golden.baseline or {}).get("traces") or 0), config)]
    if inputs.previous_week is not None:
        prev_snap = kb_snapshot(inputs.previous_week.frame)
        prev_index = BM25Index(prev_snap.docs)
        then = {cid: prev_index.top_k(case_query(c), k) for cid, c in sorted(cases.items()) if case_query(c)}
        out.append(_retrieval_result(PREVIOUS, _overlaps(index, cases, then, k, snap), k, config, snap,
                                     prev_snap.hashes))
        out.append(_changed_docs(PREVIOUS, snap, prev_snap.hashes, golden_docs, config))
        out.append(_new_docs(PREVIOUS, snap, set(prev_snap.sightings), float(prev_snap.retrievals()), config))
    return out


# ----------------------------------------------------------------------------- staleness
def _staleness_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    golden = inputs.golden
    if golden is None:
        return []
    today = inputs.week_end
    dates = sorted(date.fromisoformat(c["source_date"]) for c in golden.cases if c.get("source_date"))
    stale = sum(1 for d in dates if (today - d).days > config.stale_after_days)
    out = []
    if dates:
        share = stale / len(dates)
        severity = (ERROR if share >= config.stale_share_error else WARN if share >= config.stale_share_warn else None)
        out.append(_result("staleness", GOLDEN, share, config.stale_share_warn, severity,
                           f"{stale} of {len(dates)} dated cases of {golden.ref} ({pct(share)}) are older than "
                           f"{config.stale_after_days} days at {today.isoformat()}; oldest {dates[0].isoformat()}",
                           stale_cases=stale, dated_cases=len(dates), cases=len(golden.cases),
                           oldest=dates[0], newest=dates[-1], error_threshold=config.stale_share_error))
    else:
        out.append(_result("staleness", GOLDEN, None, None, None, f"no case of {golden.ref} has a source date"))
    age = (today - golden.created_at.date()).days
    if age < 0:
        detail = f"{golden.ref} was published {-age} days after this week ended (the latest version is compared)"
    else:
        detail = f"{golden.ref} is {age} days old at {today.isoformat()}"
    severity = WARN if age >= config.version_age_warn_days else None
    out.append(_result("version_age", GOLDEN, age, config.version_age_warn_days, severity, detail,
                       ref=golden.ref, created_at=golden.created_at))
    return out


# ----------------------------------------------------------------------------- safety
def is_safety(case: Mapping[str, Any]) -> bool:
    from evalflow.lib.eval_cases.build import is_safety_case

    return is_safety_case(case)


def _safety_share(flags: pl.Series, deff: float, base_share: float | None, base_n: float, base_deff: float,
                  baseline: str, config: DriftConfig, golden_edge_share: float | None) -> SignalResult:
    """The week's share of traces with an injection or policy signal (`flags`: safety_flags of the
    week, `deff` their sessions' design effect) against the baseline's."""
    known = flags.drop_nulls()
    n = known.len()
    if n == 0:
        return _result("safety_share", baseline, None, None, None, "no trace of the week has signals")
    x = float(known.sum())
    share = x / n
    if base_share is None or base_n <= 0:
        return _result("safety_share", baseline, share, None, None,
                       f"{pct(share, 2)} of the week's traffic has injection or policy signals; {_VS[baseline]} "
                       "has no signals to compare with")
    base_eff = base_n / max(1.0, base_deff)
    p = fisher_greater(x / deff, n / deff, base_share * base_eff, base_eff)
    threshold = max(base_share * config.safety_share_ratio, base_share + config.safety_share_min_diff)
    too_few = min(n, base_n) < config.min_traces
    severity = WARN if (not too_few and share >= threshold and p < config.safety_alpha) else None
    detail = (f"injection/policy signals in {pct(share, 2)} of the week's traffic vs {pct(base_share, 2)} in "
              f"{_VS[baseline]} (threshold {pct(threshold, 2)}, Fisher's one-sided p = {p:.2g})")
    if golden_edge_share is not None:
        detail += f"; the golden safety edge set is {pct(golden_edge_share)} of its cases"
    if too_few:
        detail = f"too few traces for an alarm ({min(n, base_n):,.0f} < {config.min_traces}); " + detail
    return _result("safety_share", baseline, share, threshold, severity, detail, week_share=share,
                   baseline_share=base_share, traces=n, baseline_traces=base_n, p_value=p, alpha=config.safety_alpha,
                   design_effect=deff, golden_edge_set_share=golden_edge_share)


def _gap(signal: str, golden_cases, rolling_cases, config: DriftConfig, what: str) -> SignalResult:
    """golden pass rate vs rolling pass rate (cases with a verdict); breach when the gap is at
    least inflation_gap, both sides have pass_rate_min_cases and the one-sided test says p <
    inflation_alpha."""
    gp, gn = verdict_counts(golden_cases)
    rp, rn = verdict_counts(rolling_cases)
    golden_rate = gp / gn if gn else None
    rolling_rate = rp / rn if rn else None
    if golden_rate is None or rolling_rate is None:
        missing = "golden" if golden_rate is None else "this week's rolling set"
        value = golden_rate if signal == "safety_pass_rate" else None
        return _result(signal, GOLDEN, value, None, None,
                       f"{what}: no verdicts in {missing} to compare (golden {pct(golden_rate)} of {gn} cases, rolling "
                       f"{pct(rolling_rate)} of {rn})", golden_pass_rate=golden_rate, golden_cases=gn,
                       rolling_pass_rate=rolling_rate, rolling_cases=rn)
    gap = golden_rate - rolling_rate
    p = fisher_greater(gp, gn, rp, rn)
    enough = min(gn, rn) >= config.pass_rate_min_cases
    severity = None
    if enough and gap >= config.inflation_gap and p < config.inflation_alpha:
        severity = ERROR if gap >= config.inflation_gap_error else WARN
    detail = (f"{what}: golden {pct(golden_rate)} ({gn} cases) vs rolling {pct(rolling_rate)} ({rn} cases): "
              f"{100 * gap:+.1f} points (Fisher's one-sided p = {p:.2g})")
    if not enough:
        detail = f"too few cases for an alarm (needs {config.pass_rate_min_cases} a side); " + detail
    value, threshold = (gap, config.inflation_gap) if signal == "score_inflation" else (
        golden_rate, rolling_rate + config.inflation_gap)
    return _result(signal, GOLDEN, value, threshold, severity, detail, golden_pass_rate=golden_rate, golden_cases=gn,
                   rolling_pass_rate=rolling_rate, rolling_cases=rn, gap=gap, p_value=p, alpha=config.inflation_alpha)


def _safety_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    out = []
    golden = inputs.golden
    edge_share = None
    flags = safety_flags(inputs.week)
    deff = sessions_deff(inputs.week, flags)
    if golden is not None:
        golden_ids = {c.get("case_id") for c in golden.cases}
        safety_cases = [c for c in golden.cases if is_safety(c)]
        edge_share = len(safety_cases) / len(golden.cases) if golden.cases else None
        base = golden.baseline or {}
        out.append(_safety_share(flags, deff, base.get("safety_signal_share"), float(base.get("safety_traces") or 0),
                                 float(base.get("safety_design_effect") or 1.0), GOLDEN, config, edge_share))
        week_share = true_share(flags)
        if edge_share is not None and week_share is not None:
            too_few = flags.drop_nulls().len() < config.min_traces
            severity = WARN if (not too_few and edge_share < week_share) else None
            out.append(_result("safety_coverage", GOLDEN, edge_share, week_share, severity,
                               f"safety edge set: {len(safety_cases)} of {len(golden.cases)} golden cases "
                               f"({pct(edge_share)}) vs injection/policy signals in {pct(week_share, 2)} of the "
                               "week's traffic" + ("; too few traces for an alarm" if too_few else ""),
                               breach_when="below", safety_cases=len(safety_cases), cases=len(golden.cases)))
        rolling_safety = [c for c in inputs.rolling_cases if is_safety(c) and c.get("case_id") not in golden_ids]
        all_rate, all_n = pass_rate(golden.cases)
        result = _gap("safety_pass_rate", safety_cases, rolling_safety, config, "safety edge set pass rate")
        result.detail += f"; all golden cases {pct(all_rate)} ({all_n})"
        result.data["aggregate_pass_rate"], result.data["aggregate_cases"] = all_rate, all_n
        out.append(result)
    if inputs.previous_week is not None:
        prev_flags = safety_flags(inputs.previous_week)
        out.append(_safety_share(flags, deff, true_share(prev_flags), float(prev_flags.drop_nulls().len()),
                                 sessions_deff(inputs.previous_week, prev_flags), PREVIOUS, config, edge_share))
    return out


# ----------------------------------------------------------------------------- pass rates
def _failure_rate(traffic: Traffic) -> float | None:
    return true_share(traffic.column("is_failure"))


def _stall(inputs: WeekInputs, config: DriftConfig) -> SignalResult | None:
    history = [h for h in inputs.golden_history if h.get("pass_rate") is not None
               and _date(h.get("created_at")) <= inputs.week_end]
    if inputs.golden is None:
        return None
    n = config.stall_versions
    if len(history) < n:
        return _result("stall", GOLDEN, None, config.stall_pass_rate, None,
                       f"needs {n} golden versions with verdicts ({len(history)} so far)", versions=len(history))
    last = history[-n:]
    low = min(h["pass_rate"] for h in last)
    first_week = _monday(_date(last[0]["created_at"]))
    rates = {_date(r["week_start"]): r["failure_rate"] for r in inputs.failure_rate_history
             if r.get("failure_rate") is not None}
    before = next((rates[w] for w in sorted(rates) if w >= first_week), None)
    now = _failure_rate(inputs.week)
    if now is None:
        now = rates.get(inputs.week_start)
    refs = ", ".join(f"{h['ref']} {pct(h['pass_rate'])}" for h in last)
    if before is None or now is None:
        return _result("stall", GOLDEN, low, config.stall_pass_rate, None,
                       f"golden pass rates {refs}; no production failure rate to compare", versions=last)
    falling = now <= before * (1 - config.stall_min_drop)
    stalled = low >= config.stall_pass_rate and not falling
    detail = (f"golden pass rates {refs}; production failure rate {pct(before)} in the week of {last[0]['ref']} "
              f"→ {pct(now)} now ({'falling' if falling else 'not falling'} by {pct(config.stall_min_drop, 0)})")
    return _result("stall", GOLDEN, low, config.stall_pass_rate, WARN if stalled else None, detail, versions=last,
                   failure_rate_then=before, failure_rate_now=now)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _pass_rate_signals(inputs: WeekInputs, config: DriftConfig) -> list[SignalResult]:
    if inputs.golden is None:
        return []
    golden_ids = {c.get("case_id") for c in inputs.golden.cases}
    rolling = [c for c in inputs.rolling_cases if c.get("case_id") not in golden_ids]
    out = [_gap("score_inflation", inputs.golden.cases, rolling, config, "pass rate")]
    stall = _stall(inputs, config)
    if stall is not None:
        out.append(stall)
    return out


# ----------------------------------------------------------------------------- the week
def _figures(inputs: WeekInputs, signals: list[SignalResult]) -> dict[str, Any]:
    traffic = signals[0].data
    figures: dict[str, Any] = {
        "week": f"{inputs.week_start.isoformat()}..{inputs.week_end.isoformat()}",
        "days_with_data": traffic["days_with_data"], "partial_week": traffic["partial"], "traces": inputs.week.traces,
        "golden": inputs.golden.ref if inputs.golden and not inputs.golden_note else None,
        "golden_note": inputs.golden_note,
        "alerts": sum(1 for s in signals if s.breached),
        "errors": sum(1 for s in signals if s.severity == ERROR),
        "warnings": sum(1 for s in signals if s.severity == WARN),
        "failure_rate": _failure_rate(inputs.week),
    }
    for s in signals:
        if s.signal != "traffic" and s.value is not None:
            figures[f"{s.signal} vs {s.baseline}" if s.baseline != NONE else s.signal] = round(s.value, 6)
    return figures


def compute_week(inputs: WeekInputs, config: DriftConfig) -> WeekReport:
    """Every signal of the week (module doc) against the golden baseline and the week before.

    Works on WeekInputs built by hand as well as on load_week_inputs' (see WeekInputs): a missing
    golden version or previous week leaves out the signals that need it."""
    from evalflow.lib.common.clock import utcnow

    signals = [_traffic(inputs, config)]
    signals += _intent_signals(inputs, config)
    signals += _embedding_signals(inputs, config)
    signals += _hash_signals(inputs, config)
    signals += _retrieval_signals(inputs, config)
    signals += _staleness_signals(inputs, config)
    signals += _safety_signals(inputs, config)
    signals += _pass_rate_signals(inputs, config)
    if inputs.golden_note:  # a week before the golden set's traffic: the week before only
        signals = [s for s in signals if s.baseline != GOLDEN]
    return WeekReport(inputs.week_start, signals, _figures(inputs, signals), computed_at=utcnow())
