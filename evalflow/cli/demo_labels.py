"""The demo's label loop: what annotators and a judge endpoint would do, simulated, so the demo
shows the whole flywheel (sample -> annotate -> label -> judge).

- Three simulated annotators (evalflow/simulator/annotators.py: known accuracy per dimension,
  one who tires over the batch) label the first 85% of the newest annotation batch (the rest is
  left for the judge) and their Label Studio JSON
  exports land in <data>/labels/incoming/, where the label_drop_sensor (or the demo's own run)
  picks them up.
- A SIMULATED judge endpoint (evalflow/simulator/judge_server.py, model `simulated-judge`)
  serves the chat-completions API on 127.0.0.1 for the length of the demo, with a known error
  rate per dimension, unless EVALFLOW_JUDGE_BASE_URL points at a real one.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from evalflow.lib.common.settings import Settings, text_setting
from evalflow.lib.judge.config import BASE_URL_ENV, MODEL_ENV

# The simulated judge's error rate per dimension: a share of its verdicts is flipped. Accuracy,
# relevance and safety are within what calibration accepts; groundedness and policy are gated
# off by the humans' own disagreement anyway.
SIMULATED_JUDGE_ERRORS = {"accuracy": 0.04, "relevance": 0.05, "groundedness": 0.08, "safety": 0.03, "policy": 0.10}
SIMULATED_MALFORMED_RATE = 0.02
# The simulated annotators get through this share of the batch, as a team often does before a
# release: the rest is what a calibrated judge labels.
DONE_SHARE = 0.85


def newest_batch(settings: Settings) -> Path | None:
    root = settings.data_dir / "annotation"
    batches = sorted(p for p in root.glob("batch-*") if (p / "manifest.json").is_file()) if root.is_dir() else []
    return batches[-1] if batches else None


def annotate_newest_batch(settings: Settings, seed: int = 0):
    """The simulated annotators' exports of the newest batch, in the drop folder (None: no batch)."""
    from evalflow.simulator.annotators import simulate_annotation

    batch = newest_batch(settings)
    if batch is None:
        return None
    return simulate_annotation(batch, settings.ground_truth_dir, settings.data_dir / "labels" / "incoming", seed=seed,
                               done_share=DONE_SHARE)


def _truth(settings: Settings) -> dict[str, dict[str, str]]:
    from evalflow.lib.judge.cases import case_id_for_trace
    from evalflow.simulator.annotators import true_verdicts

    truth = {}
    path = settings.ground_truth_dir / "traces.jsonl"
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            truth[case_id_for_trace(record["trace_id"])] = true_verdicts(record.get("faults") or [])
    return truth


@contextlib.contextmanager
def judge_endpoint(settings: Settings, seed: int = 0) -> Iterator[str]:
    """The judge for the demo: the configured endpoint when EVALFLOW_JUDGE_BASE_URL is set, else a
    simulated one on 127.0.0.1 for the duration (the environment points at it meanwhile)."""
    if text_setting(BASE_URL_ENV):
        yield f"the judge at {text_setting(BASE_URL_ENV)} (model {text_setting(MODEL_ENV)})"
        return
    from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

    server = SimulatedJudgeServer(truth=_truth(settings), error_rates=SIMULATED_JUDGE_ERRORS,
                                  malformed_rate=SIMULATED_MALFORMED_RATE, seed=seed)
    saved = {name: os.environ.get(name) for name in (BASE_URL_ENV, MODEL_ENV)}
    with server:
        os.environ[BASE_URL_ENV], os.environ[MODEL_ENV] = server.base_url, SIMULATED_MODEL
        try:
            rates = ", ".join(f"{d} {r:.0%}" for d, r in SIMULATED_JUDGE_ERRORS.items())
            yield f"a SIMULATED judge at {server.base_url} (model {SIMULATED_MODEL}; known error rates: {rates})"
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _pseudonym(settings: Settings, identity: str) -> str:
    from evalflow.lib.labels.importer import annotator_pseudonymizer, normalise_identity, pseudonymizer_from_settings

    return annotator_pseudonymizer(pseudonymizer_from_settings(settings))(normalise_identity(identity))


def _judge_name(model: str) -> str:
    """How the printout names a judge model: the demo's simulated one always as SIMULATED."""
    from evalflow.simulator.judge_server import SIMULATED_MODEL

    return f"SIMULATED judge {model!r}" if model == SIMULATED_MODEL else f"judge {model!r}"


def label_summary(settings: Settings, simulation) -> list[str]:
    """The lines the demo prints about the label loop: agreement and gate per dimension, the
    annotators flagged (and the one the simulation made tired), the judge per dimension."""
    from evalflow.lib.common.warehouse import connect_waiting, has_table

    lines = []
    with connect_waiting(settings.warehouse_path, read_only=True) as con:
        if has_table(con, "label_gates"):
            lines.append("Human agreement per dimension (the judge may label a dimension only when its gate is open):")
            for dim, items, agreement, alpha, lo, hi, is_open in con.execute(
                    "SELECT dimension, items, percent_agreement, alpha, alpha_lo, alpha_hi, gate_open "
                    "FROM label_gates ORDER BY dimension").fetchall():
                shown = "–" if agreement is None else f"{agreement:.2f}"
                interval = "" if alpha is None else f", alpha {alpha:.2f} [{lo:.2f}, {hi:.2f}]"
                lines.append(f"  {dim:<13} agreement {shown} on {items} items{interval}; gate "
                             + ("open" if is_open else "closed"))
        if has_table(con, "consensus_labels"):
            counts = dict(con.execute("SELECT status, count(*) FROM consensus_labels GROUP BY 1").fetchall())
            shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            lines.append(f"Consensus labels (item x dimension): {shown}; disputed verdicts go to an expert "
                         f"review project in {settings.data_dir / 'labels' / 'review'}")
        if has_table(con, "annotator_quality"):
            flagged = con.execute("SELECT annotator, reason FROM annotator_quality WHERE flagged AND dimension = 'all' "
                                  "ORDER BY annotator").fetchall()
            tired = {_pseudonym(settings, who) for who in (simulation.tired if simulation else [])}
            lines.append("Annotators flagged on the gold cases: "
                         + ("; ".join(f"{who} ({why})" for who, why in flagged) or "none"))
            if tired:
                lines.append(f"  (the simulation made {', '.join(sorted(tired))} tire over the batch)")
        if has_table(con, "judge_calibrations"):
            latest = con.execute(
                "SELECT dimension, variant, n_test, agreement, kappa, calibrated, gate_open, model "
                "FROM judge_calibrations "
                "QUALIFY row_number() OVER (PARTITION BY dimension ORDER BY \"at\" DESC) = 1 "
                "ORDER BY dimension").fetchall()
            judges = ", ".join(_judge_name(model) for model in sorted({row[-1] for row in latest}))
            lines.append(f"Judge calibration ({judges}; test part, held back from prompt choice):")
            for dim, variant, n, agreement, kappa, calibrated, gate, _model in latest:
                figures = ("–" if agreement is None else f"{agreement:.2f}") + ", kappa " + (
                    "–" if kappa is None else f"{kappa:.2f}")
                verdict = "calibrated" if calibrated else ("not calibrated (human gate closed)" if not gate
                                                           else "not calibrated")
                lines.append(f"  {dim:<13} {variant} prompt: agreement {figures} on {n} test cases; {verdict}")
        if has_table(con, "judge_labels"):
            n = con.execute("SELECT count(*) FROM judge_labels").fetchone()[0]
            lines.append(f"Judge labels written for cases no human consensus covers: {n}")
    return lines


# ---------------------------------------------------------------------------- eval sets
FIRST_PROMOTION = "0001-demo-first-golden.toml"


def write_first_promotion(settings: Settings) -> Path | None:
    """The demo's first golden promotion, as a reviewer would write it: the eval cases of the
    labelled batch older than the last 7 days (those are the rolling set's). None when a golden
    version exists already or there is no case."""
    from evalflow.lib.eval_cases.store import eval_case_rows
    from evalflow.lib.redact.store import analyst_warehouse
    from evalflow.lib.snapshots import promotion_from_dict, promotion_to_toml
    from evalflow.lib.snapshots.store import latest_version

    if latest_version(settings.data_dir, "golden") is not None:
        return None
    from datetime import timedelta

    rows = eval_case_rows(analyst_warehouse(settings)).drop_nulls("source_date")
    if rows.is_empty():
        return None
    cut = rows["source_date"].max() - timedelta(days=6)
    case_ids = sorted(rows.filter(rows["source_date"] < cut)["case_id"].to_list())
    if not case_ids:
        return None
    promotion = promotion_from_dict({"message": "first golden set: the demo batch's labelled cases before "
                                                f"{cut.isoformat()}",
                                     "author": "evalflow demo", "add": case_ids})
    folder = settings.data_dir / "promotions"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FIRST_PROMOTION
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(promotion_to_toml(promotion), encoding="utf-8")
    tmp.replace(path)  # the promotion sensor never reads half a file
    return path


def write_demo_responses(settings: Settings, ref: str) -> Path:
    """The simulated assistant's answers to the pinned version's cases (its production answers:
    what the gate would see if the model had not changed), as RESPONSES.jsonl."""
    from evalflow.lib.snapshots.store import read_cases

    path = settings.data_dir / "exports" / "demo_responses.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for case in read_cases(settings.data_dir, ref):
            handle.write(json.dumps({"case_id": case["case_id"], "output": case.get("labeled_output")}) + "\n")
    return path


def version_lines(settings: Settings) -> list[str]:
    from evalflow.lib.snapshots.store import list_versions

    lines = []
    for info in list_versions(settings.data_dir):
        share = info.holdout_cases / info.cases if info.cases else 0.0
        lines.append(f"{info.ref:<20} {info.cases:>5} cases, {info.holdout_cases} holdout ({share:.0%}); "
                     f"{info.message}")
    return lines
