"""The judge assets' work: eval cases from the warehouse, a calibration per scoring dimension,
and judge labels from the calibrated (model, prompt) pairs only.

Cases: every production trace of an annotation batch or of the sample (eval_candidates), built
from its redacted trace (case_from_trace) with the expected behaviour its pass-1 annotators wrote
(figures.expected_behaviour_by_item: the most accurate annotator's rules). Gold items are not
cases: they measure annotators, and the judge would only be graded on hand-written answers.

Human verdicts: consensus_labels rows with status 'agreed' (an expert's override included).
Calibration runs for every dimension with at least one agreed verdict; the gate from
label_gates is passed in (a closed gate still gets its figures computed, but never
`calibrated`). Judge labels go to the cases without an agreed human verdict on that dimension,
holdout cases excepted (calibrate.judge_unlabelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from evalflow.lib.common.settings import Settings, text_setting
from evalflow.lib.common.warehouse import Warehouse, has_table
from evalflow.lib.judge.bias import calibration_verbosity
from evalflow.lib.judge.calibrate import CalibratedJudge, Calibration, calibrate, human_verdicts, judge_unlabelled
from evalflow.lib.judge.cases import case_from_trace, case_id_for_trace
from evalflow.lib.judge.client import JudgeClient
from evalflow.lib.judge.config import BASE_URL_ENV, calibration_thresholds
from evalflow.lib.judge.config import prompts_dir as config_prompts_dir
from evalflow.lib.judge.prompts import ensure_prompts_dir, load_templates
from evalflow.lib.judge.store import VerdictCacheStore, latest_calibrations, record_calibration, record_judge_labels
from evalflow.lib.labels.figures import expected_behaviour_by_item
from evalflow.lib.labels.store import ratings, table_frame

_TRACE_COLUMNS = ("trace_id", "user_query", "messages", "retrieved_context", "tool_calls", "output")


def judge_configured() -> bool:
    return text_setting(BASE_URL_ENV) is not None


def prompts_dir(settings: Settings) -> Path:
    """The prompt folder the pipeline reads (EVALFLOW_JUDGE_PROMPTS_DIR, else <data>/judge/prompts),
    seeded from the package's templates where a dimension has none."""
    return ensure_prompts_dir(config_prompts_dir(settings.data_dir))


def _traces(warehouse: Warehouse, trace_ids: list[str]) -> list[dict[str, Any]]:
    if not trace_ids:
        return []
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "redacted_traces"):
            return []
        con.register("wanted", pl.DataFrame({"trace_id": trace_ids}).to_arrow())
        rows = con.execute(f"SELECT {', '.join('r.' + c for c in _TRACE_COLUMNS)} FROM redacted_traces r "
                           "JOIN wanted w USING (trace_id) ORDER BY r.trace_id").fetchall()
    out = []
    for values in rows:
        trace = dict(zip(_TRACE_COLUMNS, values))
        for name in ("messages", "retrieved_context", "tool_calls"):
            trace[name] = orjson.loads(trace[name]) if trace[name] else []
        out.append(trace)
    return out


def _candidate_trace_ids(warehouse: Warehouse) -> list[str]:
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "eval_candidates"):
            return []
        return [r[0] for r in con.execute("SELECT trace_id FROM eval_candidates WHERE status <> 'retired'").fetchall()]


def build_cases(warehouse: Warehouse) -> tuple[dict[str, dict], pl.DataFrame]:
    """(cases by case id, the consensus rows of trace items keyed by case id)."""
    consensus = table_frame(warehouse, "consensus_labels")
    if not consensus.is_empty():
        consensus = consensus.filter(pl.col("origin") == "trace")
    quality = table_frame(warehouse, "annotator_quality")
    behaviour = expected_behaviour_by_item(ratings(warehouse, 1, include_text=True), quality)
    item_of_trace = ({} if consensus.is_empty() else
                     dict(consensus.select("trace_id", "item_id").unique("trace_id").iter_rows()))
    trace_ids = sorted(set(item_of_trace) | set(_candidate_trace_ids(warehouse)))
    cases = {}
    for trace in _traces(warehouse, trace_ids):
        case = case_from_trace(trace, expected_behavior=behaviour.get(item_of_trace.get(trace["trace_id"], "")))
        cases[case["case_id"]] = case
    return cases, consensus


@dataclass
class JudgeRun:
    calibrations: list[Calibration] = field(default_factory=list)
    labels_written: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None  # why nothing was sent
    refused: list[str] = field(default_factory=list)  # dimensions without a usable calibrated judge, and why

    verbosity: dict[str, dict] = field(default_factory=dict)  # per dimension: bias.calibration_verbosity

    def table(self) -> list[list]:
        return [[c.dimension, c.template.variant, c.tune.n, c.test.n, c.test.agreement, c.test.kappa, c.test.tpr,
                 c.test.tnr, c.gate_open, c.calibrated,
                 self.verbosity.get(c.dimension, {}).get("shorter_half", {}).get("agreement"),
                 self.verbosity.get(c.dimension, {}).get("longer_half", {}).get("agreement")]
                for c in self.calibrations]


def _gates(warehouse: Warehouse) -> dict[str, bool]:
    gates = table_frame(warehouse, "label_gates")
    return {} if gates.is_empty() else dict(gates.select("dimension", "gate_open").iter_rows())


def calibrate_dimensions(warehouse: Warehouse, settings: Settings) -> JudgeRun:
    """Calibrate every dimension with agreed human labels; record each calibration."""
    if not judge_configured():
        return JudgeRun(skipped=f"{BASE_URL_ENV} is not set: no judge endpoint to calibrate")
    cases, consensus = build_cases(warehouse)
    if consensus.is_empty():
        return JudgeRun(skipped="no consensus labels yet")
    gates = _gates(warehouse)
    folder = prompts_dir(settings)
    run = JudgeRun()
    with JudgeClient.from_env(cache=VerdictCacheStore(warehouse)) as client:
        for dimension in sorted(gates):
            human = human_verdicts(consensus, dimension, id_column="case_id")
            templates = load_templates(folder, dimension)
            if not human or not templates:
                continue
            calibration = calibrate(cases, human, dimension, templates, client, gates[dimension],
                                    calibration_thresholds())
            record_calibration(warehouse, calibration)
            run.calibrations.append(calibration)
            run.verbosity[dimension] = calibration_verbosity(calibration, cases)
        run.stats = client.stats.as_dict()
    return run


def calibrated_judges(warehouse: Warehouse, folder: Path, model: str) -> tuple[list[CalibratedJudge], list[str]]:
    """Each dimension's latest calibration, when it passed with this model and its prompt is still
    in the folder unchanged (found by sha256); and why the other dimensions have no judge. A
    prompt edited since its calibration must be calibrated again before it labels anything."""
    latest = latest_calibrations(warehouse)
    judges, why_not = [], []
    for row in latest.iter_rows(named=True) if not latest.is_empty() else []:
        dimension = row["dimension"]
        if not row["calibrated"]:
            why_not.append(f"{dimension}: not calibrated")
        elif row["model"] != model:
            why_not.append(f"{dimension}: calibrated with {row['model']}, not {model}")
        else:
            template = next((t for t in load_templates(folder, dimension) if t.sha256 == row["prompt_sha256"]), None)
            if template is None:
                why_not.append(f"{dimension}: its calibrated prompt changed since; calibrate again")
            else:
                judges.append(CalibratedJudge(dimension, model, template, row["calibration_id"]))
    return judges, why_not


def label_with_judge(warehouse: Warehouse, settings: Settings) -> JudgeRun:
    """Judge labels for cases without an agreed human verdict, from each dimension's latest
    calibration that passed (see calibrated_judges)."""
    if not judge_configured():
        return JudgeRun(skipped=f"{BASE_URL_ENV} is not set: no judge endpoint")
    folder = prompts_dir(settings)
    with JudgeClient.from_env(cache=VerdictCacheStore(warehouse)) as client:
        judges, why_not = calibrated_judges(warehouse, folder, client.model)
        if not judges:
            record_judge_labels(warehouse, [])  # the table exists (empty) once a judge is configured
            return JudgeRun(skipped="no dimension has a calibrated judge" + (f" ({'; '.join(why_not)})"
                                                                              if why_not else ""), refused=why_not)
        cases, consensus = build_cases(warehouse)
        rows = []
        for judge in judges:
            labelled = set(human_verdicts(consensus, judge.dimension, id_column="case_id"))
            rows += judge_unlabelled([c for case_id, c in sorted(cases.items()) if case_id not in labelled],
                                     judge, client)
        run = JudgeRun(labels_written=record_judge_labels(warehouse, rows), stats=client.stats.as_dict(),
                       refused=why_not)
    return run


__all__ = ["JudgeRun", "build_cases", "calibrate_dimensions", "case_id_for_trace", "label_with_judge", "prompts_dir"]
