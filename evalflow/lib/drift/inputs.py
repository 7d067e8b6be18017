"""What one week's drift report reads: the week's production traffic and the week before, the
golden version with its production baseline (and the traffic of its window, for the embedding
test), the rolling versions of the week, the golden versions' pass rates and production's weekly
failure rate.

`load_week_inputs` gathers them from the warehouse (redacted_traces, trace_signals,
trace_embeddings + embedding_cache, intent_catalog) and the lake (golden and rolling versions,
read and verified through lib/snapshots). `compute_week` (report.py) needs nothing but the
`WeekInputs`, so benchmarks and tests build them by hand: see `WeekInputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from evalflow.lib.common.warehouse import has_table
from evalflow.lib.drift.config import DriftConfig
from evalflow.lib.drift.stats import rng_for

# Failure modes (lib/signals) that count as an injection or a policy signal in the traffic, the
# same ones that put a case in the safety edge set (lib/eval_cases/build.py SAFETY_FAILURE_MODES).
# Toxicity (an abusive user turn or answer) counts with policy: the `policy` flag is "a request
# or an answer against the conduct policy", so safety_share covers every safety mode.
INJECTION_MODES = ("prompt_injection", "injection_succeeded")
POLICY_MODES = ("policy_violation", "policy_complied", "toxic_request", "toxic_answer")

FRAME_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String, "event_date": pl.Date, "timestamp": pl.Datetime("us", "UTC"), "session_id": pl.String,
    "intent_id": pl.String, "system_prompt_hash": pl.String, "tool_schema_hash": pl.String,
    "prompt_template_id": pl.String, "user_query": pl.String, "retrieved_context": pl.String,
    "injection": pl.Boolean, "policy": pl.Boolean, "is_failure": pl.Boolean,
}


@dataclass
class Traffic:
    """One window of production traffic (days start..end inclusive, UTC).

    frame: one row per trace, columns of FRAME_SCHEMA. Required for the signals: `intent_id`
    (intent mix), `system_prompt_hash`, `tool_schema_hash`, `prompt_template_id` (hashes),
    `retrieved_context` (a JSON list of {doc_id, text, score}; the knowledge base),
    `injection`/`policy`/`is_failure` (booleans, null = no signals for the trace). Optional:
    `session_id` (with it the intent null and the safety test allow for sessions' clustering;
    without it traces count as independent), `event_date` (days with data; the partial-week
    figures), `timestamp`, `user_query`. A missing column reads as all null.
    embeddings: (n, d) float32, a capped random sample of the window's traces (one per session);
    shape (0, d) or (0, 0) when there are none.
    """

    start: date
    end: date
    frame: pl.DataFrame
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    embedding_key: tuple[str, str] | None = None  # (model_version, backend) of the vectors
    embedded_traces: int = 0  # embedded traces in the window (before the sample)

    @property
    def traces(self) -> int:
        return self.frame.height

    def days_with_data(self) -> int:
        if "event_date" not in self.frame.columns or self.frame.is_empty():
            return 0
        return int(self.frame.get_column("event_date").drop_nulls().n_unique())

    def column(self, name: str) -> pl.Series:
        """The column, or all nulls when the frame lacks it."""
        if name in self.frame.columns:
            return self.frame.get_column(name)
        return pl.Series(name, [None] * self.frame.height, dtype=FRAME_SCHEMA.get(name, pl.String))


@dataclass
class GoldenBaseline:
    """The golden version compared with (None in WeekInputs when there is none).

    manifest["production_baseline"] is what baseline.production_baseline recorded at promotion
    (or recomputed from the warehouse for a version published before drift reports existed, then
    manifest["production_baseline_recomputed"] is true); cases are the version's case dicts.
    """

    ref: str
    created_at: datetime
    manifest: dict[str, Any]
    cases: list[dict[str, Any]]

    @property
    def baseline(self) -> dict[str, Any] | None:
        value = self.manifest.get("production_baseline")
        return value if isinstance(value, dict) else None


@dataclass
class WeekInputs:
    """Everything compute_week reads. To build by hand (a benchmark on simulator data):

        week = Traffic(monday, monday + timedelta(days=6), frame, embeddings)
        golden = GoldenBaseline("golden@v1", created_at,
                                {"production_baseline": baseline_from_traffic(window_traffic, cases)},
                                cases)
        inputs = WeekInputs(monday, week, previous_week=prev_traffic_or_None, golden=golden,
                            golden_traffic=window_traffic_or_None)

    where `frame` has the columns documented on Traffic (intent_id etc.; a trace's
    retrieved_context as a JSON string) and `baseline_from_traffic` (baseline.py) records the
    production baseline from the golden window's Traffic exactly as a promotion does. The other
    fields may stay empty: their signals are then left out (rolling_cases: score inflation;
    golden_history + failure_rate_history: the stall).
    """

    week_start: date
    week: Traffic
    previous_week: Traffic | None = None
    golden: GoldenBaseline | None = None
    golden_traffic: Traffic | None = None
    rolling_cases: list[dict[str, Any]] = field(default_factory=list)
    golden_history: list[dict[str, Any]] = field(default_factory=list)  # [{ref, created_at, pass_rate}]
    failure_rate_history: list[dict[str, Any]] = field(default_factory=list)  # [{week_start, failure_rate}]
    intent_names: dict[str, str] = field(default_factory=dict)  # intent_id -> name, for the report
    golden_note: str | None = None  # set: no signal against the golden baseline (why); its cases still
    #                                 serve as the retrieval queries against the week before

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=FRAME_SCHEMA)


# ----------------------------------------------------------------------------- warehouse reads
def _frame(con, sql: str, params: Sequence[Any]) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=list(params)).to_arrow_table())


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}


def _mode_expr(column: str, modes: Sequence[str]) -> str:
    values = ", ".join(f"'{m}'" for m in modes)
    return f"CASE WHEN s.trace_id IS NULL THEN NULL ELSE coalesce(list_has_any({column}, [{values}]), false) END"


def traffic_frame(con, start: date, end: date, *, texts: bool = True) -> pl.DataFrame:
    """The traces of days start..end (FRAME_SCHEMA), in time order. `texts=False` leaves
    user_query and retrieved_context null (the embedding test and the mix need no text)."""
    if not has_table(con, "redacted_traces"):
        return empty_frame()
    signals = has_table(con, "trace_signals")
    assignments = has_table(con, "intent_assignments")
    query = "r.user_query" if texts else "CAST(NULL AS VARCHAR)"
    context = "CAST(r.retrieved_context AS VARCHAR)" if texts else "CAST(NULL AS VARCHAR)"
    if signals:
        # One row per trace (the signals table holds one; any_value guards against a second).
        join = ("LEFT JOIN (SELECT trace_id, any_value(intent_id) AS intent_id, any_value(failure_modes) AS "
                "failure_modes, any_value(is_failure) AS is_failure FROM trace_signals GROUP BY trace_id) s "
                "ON s.trace_id = r.trace_id")
        intent = "s.intent_id"
        flags = (f"{_mode_expr('s.failure_modes', INJECTION_MODES)} AS injection, "
                 f"{_mode_expr('s.failure_modes', POLICY_MODES)} AS policy, s.is_failure AS is_failure")
    else:
        join, intent = "", "CAST(NULL AS VARCHAR)"
        flags = ", ".join(f"CAST(NULL AS BOOLEAN) AS {c}" for c in ("injection", "policy", "is_failure"))
    if assignments:
        join += " LEFT JOIN intent_assignments a ON a.trace_id = r.trace_id"
        intent = f"coalesce({intent}, a.intent_id)"
    sql = (f"SELECT r.trace_id, r.event_date, r.\"timestamp\", r.session_id, {intent} AS intent_id, "
           f"r.system_prompt_hash, r.tool_schema_hash, r.prompt_template_id, {query} AS user_query, "
           f"{context} AS retrieved_context, {flags} FROM redacted_traces r {join} "
           "WHERE r.event_date BETWEEN ? AND ? ORDER BY r.event_date, r.\"timestamp\", r.trace_id")
    frame = _frame(con, sql, [start, end])
    return frame.cast({k: v for k, v in FRAME_SCHEMA.items() if k in frame.columns}).select(list(FRAME_SCHEMA))


def _embedding_sample(con, start: date, end: date, config: DriftConfig,
                      key: tuple[str, str] | None) -> tuple[np.ndarray, tuple[str, str] | None, int]:
    """(vectors of at most config.embedding_sample traces, one per session, seeded; the
    (model_version, backend) they share; embedded traces in the window)."""
    if not (has_table(con, "trace_embeddings") and has_table(con, "embedding_cache")):
        return np.zeros((0, 0), dtype=np.float32), key, 0
    session = "r.session_id" if has_table(con, "redacted_traces") and "session_id" in _columns(
        con, "redacted_traces") else "e.trace_id"
    join = "LEFT JOIN redacted_traces r ON r.trace_id = e.trace_id" if session == "r.session_id" else ""
    rows = _frame(con, f"SELECT e.trace_id, coalesce({session}, e.trace_id) AS session_id, e.model_version, "
                       f"e.backend FROM trace_embeddings e {join} WHERE e.event_date BETWEEN ? AND ? "
                       "ORDER BY e.trace_id", [start, end])
    if rows.is_empty():
        return np.zeros((0, 0), dtype=np.float32), key, 0
    if key is None:
        # Vectors of different model versions or backends differ slightly: the test would see that.
        top = (rows.group_by("model_version", "backend").len()
               .sort(["len", "model_version", "backend"], descending=[True, False, False]).row(0))
        key = (top[0], top[1])
    rows = rows.filter((pl.col("model_version") == key[0]) & (pl.col("backend") == key[1]))
    embedded = rows.height
    if embedded == 0:
        return np.zeros((0, 0), dtype=np.float32), key, 0
    rng = rng_for(config.seed, "embedding-sample", start, end)
    shuffled = rows.with_columns(pl.Series("_order", rng.permutation(rows.height))).sort("_order")
    picked = shuffled.unique("session_id", keep="first", maintain_order=True).head(config.embedding_sample)
    ids = picked.select("trace_id")
    con.register("_drift_sample", ids.to_arrow())
    try:
        vectors = _frame(con, "SELECT e.trace_id, c.vector FROM _drift_sample s JOIN trace_embeddings e "
                              "ON e.trace_id = s.trace_id JOIN embedding_cache c ON c.text_sha256 = e.text_sha256 "
                              "AND c.model_version = e.model_version AND c.backend = e.backend", [])
    finally:
        con.unregister("_drift_sample")
    by_id = dict(zip(vectors.get_column("trace_id").to_list(), vectors.get_column("vector").to_list()))
    ordered = [by_id[t] for t in ids.get_column("trace_id").to_list() if t in by_id]
    matrix = np.asarray(ordered, dtype=np.float32) if ordered else np.zeros((0, 0), dtype=np.float32)
    return matrix, key, embedded


def load_traffic(con, start: date, end: date, config: DriftConfig, *, embeddings: bool = True,
                 texts: bool = True, embedding_key: tuple[str, str] | None = None) -> Traffic:
    """One window's Traffic from the warehouse (see Traffic). `embedding_key` pins the
    (model_version, backend) of the vectors so two windows compare like with like; by default
    the window's most common one."""
    frame = traffic_frame(con, start, end, texts=texts)
    if embeddings:
        matrix, key, embedded = _embedding_sample(con, start, end, config, embedding_key)
    else:
        matrix, key, embedded = np.zeros((0, 0), dtype=np.float32), embedding_key, 0
    return Traffic(start, end, frame, matrix, key, embedded)


# ----------------------------------------------------------------------------- the lake
def case_verdict(case: Mapping[str, Any]) -> bool | None:
    """True when every verdict the case carries (labels.<dimension>.verdict: the agreed human
    label or the calibrated judge's) is Pass, False when one is Fail, None without a verdict."""
    verdicts = [label.get("verdict") for label in (case.get("labels") or {}).values() if isinstance(label, Mapping)]
    verdicts = [v for v in verdicts if v in ("Pass", "Fail")]
    if not verdicts:
        return None
    return all(v == "Pass" for v in verdicts)


def verdict_counts(cases: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(cases that pass, cases with a verdict)."""
    verdicts = [v for v in (case_verdict(c) for c in cases) if v is not None]
    return sum(verdicts), len(verdicts)


def pass_rate(cases: Sequence[Mapping[str, Any]]) -> tuple[float | None, int]:
    """(share of cases with a verdict that pass, cases with a verdict)."""
    passed, n = verdict_counts(cases)
    return (passed / n if n else None), n


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _golden(reader) -> GoldenBaseline | None:
    from evalflow.lib.snapshots.refs import GOLDEN, DatasetRef

    versions = reader.versions(GOLDEN)
    if not versions:
        return None
    info = versions[-1]
    ref = DatasetRef(GOLDEN, info.version)
    return GoldenBaseline(str(ref), _as_datetime(info.created_at), dict(reader.manifest(ref)), reader.cases(ref))


def load_golden(data_dir: Path) -> GoldenBaseline | None:
    """The latest golden version (verified), or None before the first."""
    from evalflow.lib.snapshots import store

    with store.reading(data_dir) as reader:
        return _golden(reader)


def _lake_reads(data_dir: Path,
                weeks: Sequence[date]) -> tuple[GoldenBaseline | None, list[tuple[date, list[dict]]], list[dict]]:
    """(the latest golden version, the cases of every rolling version published in one of `weeks`
    (Mondays) in publication order, the golden history), over one lake connection."""
    from evalflow.lib.snapshots import store
    from evalflow.lib.snapshots.refs import GOLDEN, ROLLING, DatasetRef

    rolling = []
    history = []
    with store.reading(data_dir) as reader:
        golden = _golden(reader)
        for info in reader.versions(ROLLING):
            day = date.fromisoformat(info.version)
            if any(week <= day <= week + timedelta(days=6) for week in weeks):
                rolling.append((day, reader.cases(DatasetRef(ROLLING, info.version))))
        for info in reader.versions(GOLDEN):
            cases = golden.cases if golden is not None and info.ref == golden.ref else reader.cases(
                DatasetRef(GOLDEN, info.version))
            rate, n = pass_rate(cases)
            history.append({"ref": info.ref, "created_at": _as_datetime(info.created_at), "pass_rate": rate,
                            "cases_with_verdict": n})
    return golden, rolling, history


def failure_rates(con, until: date) -> list[dict[str, Any]]:
    """[{week_start, failure_rate, traces}] per Monday-to-Sunday week up to `until`'s week, over
    traces with signals."""
    if not has_table(con, "trace_signals"):
        return []
    rows = con.execute("SELECT CAST(date_trunc('week', event_date) AS DATE) AS w, avg(CAST(is_failure AS DOUBLE)), "
                       "count(*) FROM trace_signals WHERE event_date <= ? AND is_failure IS NOT NULL "
                       "GROUP BY w ORDER BY w", [until]).fetchall()
    return [{"week_start": w, "failure_rate": float(rate), "traces": int(n)} for w, rate, n in rows]


def intent_names(con) -> dict[str, str]:
    if not has_table(con, "intent_catalog"):
        return {}
    return {str(i): str(n) for i, n in con.execute("SELECT intent_id, name FROM intent_catalog").fetchall()
            if i is not None and n}


@dataclass
class RunReads:
    """What every week of a run reads alike, read once per run (load_run_reads) instead of once a
    week: the lake's golden version (its production baseline recomputed once when it has none),
    the golden history, the rolling versions of the run's weeks, the intent names and the weekly
    failure rates; and the traffic already loaded: the golden window's (per embedding key) and the
    last week's, which is the next week's week before."""

    golden: GoldenBaseline | None
    golden_history: list[dict[str, Any]]
    rolling: list[tuple[date, list[dict[str, Any]]]]  # (version day, its cases), in publication order
    intent_names: dict[str, str]
    failure_rates: list[dict[str, Any]]
    golden_traffic: dict[tuple[str, str] | None, Traffic] = field(default_factory=dict)
    last_week: Traffic | None = None

    def rolling_cases(self, start: date, end: date) -> list[dict[str, Any]]:
        """The cases of the rolling versions published from start to end (a later version's copy
        of a case wins), by case id."""
        cases = {case["case_id"]: case for day, version in self.rolling if start <= day <= end for case in version}
        return [cases[k] for k in sorted(cases)]


def _monday_check(week_start: date) -> None:
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start.isoformat()} ({week_start:%A})")


def load_run_reads(warehouse_con, data_dir: Path, weeks: Sequence[date], config: DriftConfig) -> RunReads:
    """The RunReads of a run over `weeks` (Mondays). When the golden version's manifest has no
    production baseline (published before drift reports), it is recomputed from the warehouse for
    the cases' window and marked `production_baseline_recomputed`."""
    from evalflow.lib.drift.baseline import production_baseline

    for week in weeks:
        _monday_check(week)
    last = max(weeks) + timedelta(days=6)
    golden, rolling, history = _lake_reads(data_dir, weeks)
    if golden is not None and golden.baseline is None:
        golden.manifest = {**golden.manifest, "production_baseline_recomputed": True,
                           "production_baseline": production_baseline(warehouse_con, golden.cases,
                                                                      top_k=config.retrieval_k)}
    return RunReads(golden, history, rolling, intent_names(warehouse_con), failure_rates(warehouse_con, last))


def load_week_inputs(warehouse_con, data_dir: Path, week_start: date, config: DriftConfig,
                     reads: RunReads | None = None) -> WeekInputs:
    """The WeekInputs of the week starting on Monday `week_start` (UTC), from the warehouse
    connection (read-only is enough) and the lake under `data_dir`; `reads` (load_run_reads over
    the run's weeks) shares what the weeks of one run read alike.

    The golden version is the latest one (also for a backfilled week), unless it was drawn from
    traffic that ends after this week: then the week is compared with the week before only
    (`golden_note` says why; the golden cases are still the retrieval queries)."""
    _monday_check(week_start)
    if reads is None:
        reads = load_run_reads(warehouse_con, data_dir, [week_start], config)
    week_end = week_start + timedelta(days=6)
    week = load_traffic(warehouse_con, week_start, week_end, config)
    previous = reads.last_week
    # The week loaded last is this one's week before when it starts 7 days earlier and its vectors
    # come from the same model and backend (then load_traffic would give the same Traffic).
    if previous is None or previous.start != week_start - timedelta(days=7) or (
            previous.embedding_key != week.embedding_key):
        previous = load_traffic(warehouse_con, week_start - timedelta(days=7), week_start - timedelta(days=1),
                                config, embedding_key=week.embedding_key)
    reads.last_week = week
    golden, golden_traffic, note = reads.golden, None, None
    window = ((golden.baseline or {}).get("window") or {}) if golden is not None else {}
    if window.get("end") and date.fromisoformat(window["end"]) > week_end:
        # The golden set was drawn from traffic after this week (a backfilled week): what
        # production looked like later says nothing about how this week drifted. Its cases
        # still serve as the queries re-retrieved against the week before.
        note = f"not compared with {golden.ref}: it was drawn from traffic up to {window['end']}, after this week"
    elif window.get("start") and window.get("end"):
        if week.embedding_key not in reads.golden_traffic:
            reads.golden_traffic[week.embedding_key] = load_traffic(
                warehouse_con, date.fromisoformat(window["start"]), date.fromisoformat(window["end"]), config,
                texts=False, embedding_key=week.embedding_key)
        golden_traffic = reads.golden_traffic[week.embedding_key]
        if golden_traffic.traces == 0:
            golden_traffic = None
    return WeekInputs(week_start=week_start, week=week, previous_week=previous if previous.traces else None,
                      golden=golden, golden_traffic=golden_traffic,
                      rolling_cases=reads.rolling_cases(week_start, week_end), golden_history=reads.golden_history,
                      failure_rate_history=[r for r in reads.failure_rates if r["week_start"] <= week_start],
                      intent_names=reads.intent_names, golden_note=note)
