"""The label assets' work: read the labels and the batch folders, derive (figures.py), write
(store.py). Kept out of defs/ so the assets stay thin and the steps are testable without Dagster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.report import markdown_table
from evalflow.lib.common.warehouse import Warehouse, has_table
from evalflow.lib.labels import figures
from evalflow.lib.labels.consensus import ROLE_FEEDBACK, feedback_ratings
from evalflow.lib.labels.leakage import anchored, load_pass2_tasks
from evalflow.lib.labels.review import disputed_items, write_review_project
from evalflow.lib.labels.store import ratings, replace_tables, table_frame


def review_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "labels" / "review"


@dataclass
class ConsensusResult:
    rows: int
    by_status: dict[str, int]
    disputed_items: int
    review_path: Path | None
    anchored: int


def _batch_dirs(data_dir: Path) -> list[Path]:
    root = Path(data_dir) / "annotation"
    if not root.is_dir():
        return []
    return [d for d in sorted(root.iterdir()) if not d.name.startswith(".") and (d / "pass2_tasks.json").is_file()]


def _feedback(warehouse: Warehouse, pass2: pl.DataFrame, manifests: list[dict]) -> pl.DataFrame:
    """Production thumbs of the batches' trace items as role-'feedback' ratings. A thumb is the
    user's verdict on the whole answer, so it stands for every scoring dimension of the batch;
    majority_vote uses it only where no person rated the item (status 'feedback_only')."""
    items = [(item["item_id"], item["trace_id"], tuple(m["dimensions"])) for m in manifests
             for item in m.get("items", []) if item.get("origin") == "trace"]
    if not items:
        return pl.DataFrame()
    with warehouse.connect(read_only=True) as con:
        if not has_table(con, "redacted_traces"):
            return pl.DataFrame()
        con.register("wanted", pl.DataFrame(items, schema=["item_id", "trace_id", "dims"], orient="row")
                     .select("item_id", "trace_id").to_arrow())
        rows = con.execute(
            "SELECT w.item_id, json_extract_string(r.feedback, '$.thumbs') FROM wanted w "
            "JOIN redacted_traces r ON r.trace_id = w.trace_id WHERE r.feedback IS NOT NULL").fetchall()
    dims = sorted({d for _i, _t, ds in items for d in ds})
    thumbs = pl.DataFrame(rows, schema=["item_id", "thumbs"], orient="row")
    rated = feedback_ratings(thumbs, dims)
    ids = {item_id: trace_id for item_id, trace_id, _d in items}
    batch_of = {item["item_id"]: m["batch_id"] for m in manifests for item in m.get("items", [])}
    from evalflow.lib.judge.cases import case_id_for_trace

    return rated.with_columns(
        pl.col("item_id").replace_strict(batch_of, default=None).alias("batch_id"),
        pl.lit("trace").alias("origin"),
        pl.col("item_id").replace_strict(ids, default=None).alias("trace_id"),
    ).with_columns(pl.col("trace_id").map_elements(case_id_for_trace, return_dtype=pl.String).alias("case_id"),
                   pl.lit(ROLE_FEEDBACK).alias("role"))


def _review_id(disputed: list[dict]) -> str:
    # A new queue content gets a new id: a published review project is never rewritten, since
    # experts may be working on it.
    digest = hashlib.sha256(json.dumps([(d["item_id"], d["disputed"]) for d in disputed]).encode()).hexdigest()
    return f"review-{digest[:12]}"


def build_consensus(warehouse: Warehouse, data_dir: Path) -> ConsensusResult:
    manifests = figures.load_manifests(Path(data_dir) / "annotation")
    pass1, pass2 = ratings(warehouse, 1), ratings(warehouse, 2)
    agreed = figures.consensus(pass1, pass2, _feedback(warehouse, pass2, manifests))
    tasks: dict[str, dict] = {}
    for batch in _batch_dirs(data_dir):
        tasks.update(load_pass2_tasks(batch))
    text2 = ratings(warehouse, 2, include_text=True).rename({"dimension": "field"})
    dimensions = sorted({d for m in manifests for d in m["dimensions"]})
    # The review project asks experts for the pass-2 verdicts only: a risk level tie (pass 1) stays
    # disputed here, never a task that names no dimension an expert could answer.
    disputed = disputed_items(agreed.filter(pl.col("dimension").is_in(dimensions)),
                              text2.with_columns(pl.lit(2).alias("pass")), tasks)
    review_path = None
    if disputed:
        review_path = write_review_project(disputed, review_dir(data_dir), _review_id(disputed), dimensions)
    gold_answers = ratings(warehouse, 1, include_text=True).rename({"dimension": "field"})
    flagged = anchored(gold_answers.with_columns(pl.lit(1).alias("pass")), tasks)
    replace_tables(warehouse, {"consensus_labels": agreed.with_columns(pl.lit(utcnow()).alias("updated_at")),
                               "label_anchored": flagged})
    counts = agreed.group_by("status").len()
    return ConsensusResult(rows=agreed.height, by_status=dict(zip(counts["status"].to_list(), counts["len"].to_list())),
                           disputed_items=len(disputed), review_path=review_path, anchored=flagged.height)


@dataclass
class AgreementResult:
    rows: int
    gates: dict[str, bool]
    gate_markdown: str
    flagged: list[str] = field(default_factory=list)


def _gate_markdown(gate: pl.DataFrame) -> str:
    def show(value) -> str:
        return "–" if value is None else f"{value:.3f}"

    rows = [[d, items, show(agr), f"{show(a)} [{show(lo)}, {show(hi)}]", "open" if is_open else "closed"]
            for d, items, agr, a, lo, hi, is_open in gate.select(
                "dimension", "items", "percent_agreement", "alpha", "alpha_lo", "alpha_hi", "gate_open").iter_rows()]
    return markdown_table(["dimension", "items", "agreement", "alpha [95% CI]", "judge gate"], rows)


def build_agreement(warehouse: Warehouse, data_dir: Path) -> AgreementResult:
    manifests = figures.load_manifests(Path(data_dir) / "annotation")
    # Pass 1 with its free text: annotator quality scores the gold answers (human_figures takes
    # only the risk level of it for agreement).
    pass1, pass2 = ratings(warehouse, 1, include_text=True), ratings(warehouse, 2)
    agreed = table_frame(warehouse, "consensus_labels")
    if pass2.is_empty():
        replace_tables(warehouse, {name: None for name in
                                   ("label_agreement", "label_agreement_pairs", "label_gates",
                                    "annotator_quality", "annotator_fatigue")})
        return AgreementResult(0, {}, "no pass-2 labels imported yet")
    result = figures.human_figures(pass1, pass2, manifests, agreed)
    now = utcnow()
    replace_tables(warehouse, {
        "label_agreement": result.agreement.with_columns(pl.lit(now).alias("computed_at")),
        "label_agreement_pairs": result.pairs,
        "label_gates": result.gate.with_columns(pl.lit(now).alias("computed_at")),
        "annotator_quality": result.quality, "annotator_fatigue": result.fatigue,
    })
    flagged = sorted(set(result.quality.filter(pl.col("flagged"))["annotator"].to_list()))
    gates = dict(zip(result.gate["dimension"].to_list(), result.gate["gate_open"].to_list()))
    return AgreementResult(result.agreement.height, gates, _gate_markdown(result.gate), flagged)
