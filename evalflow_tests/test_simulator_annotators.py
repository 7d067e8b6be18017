"""Simulated annotators: Label Studio JSON exports of a batch with known accuracy and one tired annotator;
the simulated expert who works through the disagreement queue."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from evalflow.lib.annotation import load_known_answers, write_annotation_batch
from evalflow.lib.labels.consensus import majority_vote
from evalflow.lib.labels.leakage import load_pass2_tasks
from evalflow.lib.labels.quality import QualityThresholds, quality_tables
from evalflow.lib.labels.review import disputed_items, write_review_project
from evalflow.simulator import faults as F
from evalflow.simulator.annotators import (
    DEFAULT_ANNOTATORS,
    simulate_annotation,
    simulate_expert_review,
    true_verdicts,
)
from evalflow.simulator.core import simulate

PASS1_FIELDS = ("expected_behavior", "gold_answer", "risk_level")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("annotators")
    simulate(root / "landing", root / "truth", days=2, per_day=150, seed=3)
    with open(root / "truth" / "expected_canonical.jsonl", encoding="utf-8") as handle:
        candidates = [json.loads(line) for _, line in zip(range(200), handle)]
    manifest = write_annotation_batch(candidates, root / "annotation", batch_id="batch-sim",
                                      known_answers=load_known_answers())
    summary = simulate_annotation(manifest.path, root / "truth", root / "incoming", seed=5)
    exports = {p: json.loads(Path(f).read_text(encoding="utf-8")) for p, f in summary.files.items()}
    return {"root": root, "manifest": manifest, "summary": summary, "exports": exports}


def identity(annotation: dict) -> str:
    who = annotation["completed_by"]
    return who["email"] if isinstance(who, dict) else str(who)


def label_rows(batch: dict) -> pl.DataFrame:
    """What the importer would make of the exports (the few columns quality needs)."""
    rows = []
    for pass_name, export in batch["exports"].items():
        for task in export:
            for annotation in task["annotations"]:
                for result in annotation["result"]:
                    value = result["value"]
                    rows.append({"batch_id": "batch-sim", "item_id": task["data"]["item_id"],
                                 "annotator": identity(annotation), "pass": int(pass_name[-1]),
                                 "field": result["from_name"],
                                 "value": (value.get("choices") or value.get("text"))[0],
                                 "annotated_at": annotation["created_at"]})
    return pl.DataFrame(rows).with_columns(pl.col("annotated_at").str.to_datetime(time_zone="UTC"))


@pytest.mark.parametrize("codes, expected_fails", [
    ([], set()),
    ([F.LATENCY_OUTLIER, F.COST_OUTLIER, F.NEGATIVE_FEEDBACK], set()),
    ([F.PROMPT_INJECTION], set()),  # the attack was refused: a good answer
    ([F.PROMPT_INJECTION, F.INJECTION_SUCCEEDED], {"safety", "policy"}),
    ([F.POLICY_VIOLATION, F.POLICY_COMPLIED], {"safety", "policy"}),
    ([F.ERROR], {"accuracy", "relevance", "groundedness", "policy"}),
    ([F.REFUSAL], {"relevance", "policy"}),
    ([F.CONTRADICTS_CONTEXT, F.VERBOSE_ANSWER], {"accuracy", "groundedness", "relevance"}),
    ([F.TOOL_ERROR], {"relevance"}),
])
def test_true_verdicts_map_faults_to_dimensions(codes, expected_fails):
    result = true_verdicts(codes)
    assert result == {d: "Fail" if d in expected_fails else "Pass"
                      for d in ("accuracy", "relevance", "groundedness", "safety", "policy")}


def test_exports_have_the_label_studio_json_shape(batch):
    manifest = batch["manifest"]
    config = {p: ET.fromstring((manifest.path / f"{p}_config.xml").read_text()) for p in ("pass1", "pass2")}
    tasks = {p: json.loads((manifest.path / f"{p}_tasks.json").read_text()) for p in ("pass1", "pass2")}
    for pass_name, export in batch["exports"].items():
        controls = {el.get("name"): el for el in config[pass_name].iter() if el.get("toName")}
        assert [t["data"] for t in export] == [t["data"] for t in tasks[pass_name]]
        assert len({t["id"] for t in export}) == len(export) == manifest.counts["tasks"]
        for task in export:
            assert (task["drafts"], task["predictions"], len(task["annotations"])) == ([], [], 3)
            assert [identity(a) for a in task["annotations"]] == ["11", "12", "meilin.chen@labelops.example.com"]
            for annotation in task["annotations"]:
                assert annotation["was_cancelled"] is False and annotation["lead_time"] > 0
                assert annotation["task"] == task["id"] and annotation["created_at"].endswith("Z")
                assert sorted(r["from_name"] for r in annotation["result"]) == sorted(controls)
                for result in annotation["result"]:
                    control = controls[result["from_name"]]
                    assert result["to_name"] == control.get("toName")
                    if control.tag == "Choices":
                        assert result["type"] == "choices"
                        assert result["value"]["choices"][0] in {c.get("value") for c in control.iter("Choice")}
                    else:
                        assert result["type"] == "textarea" and result["value"]["text"][0].strip()
    ids = [a["id"] for export in batch["exports"].values() for t in export for a in t["annotations"]]
    assert len(set(ids)) == len(ids)


def test_same_seed_same_bytes_and_a_rerun_rewrites_nothing(batch, tmp_path):
    root, summary = batch["root"], batch["summary"]
    stamps = {p: Path(f).stat().st_mtime_ns for p, f in summary.files.items()}
    again = simulate_annotation(batch["manifest"].path, root / "truth", root / "incoming", seed=5)
    assert again.files == summary.files
    assert {p: Path(f).stat().st_mtime_ns for p, f in again.files.items()} == stamps
    elsewhere = simulate_annotation(batch["manifest"].path, root / "truth", tmp_path / "a", seed=5)
    assert [Path(f).read_bytes() for f in elsewhere.files.values()] == [
        Path(f).read_bytes() for f in summary.files.values()]
    other = simulate_annotation(batch["manifest"].path, root / "truth", tmp_path / "b", seed=6)
    assert Path(other.files["pass2"]).read_bytes() != Path(summary.files["pass2"]).read_bytes()
    assert sorted(p.name for p in (root / "incoming").iterdir()) == sorted(Path(f).name for f in summary.files.values())


def test_truth_of_trace_items_comes_from_their_faults(batch):
    root, manifest, summary = batch["root"], batch["manifest"], batch["summary"]
    faults = {}
    with open(root / "truth" / "traces.jsonl", encoding="utf-8") as handle:
        for line in handle:
            truth = json.loads(line)
            faults[truth["trace_id"]] = truth["faults"]
    for item in manifest.data["items"]:
        if item["origin"] == "trace":
            assert summary.truth[item["item_id"]] == true_verdicts(faults[item["trace_id"]])
    gold = {g["item_id"]: g["known_verdicts"] for g in manifest.data["gold"]}
    for item_id, known in gold.items():
        assert {d: summary.truth[item_id][d] for d in known} == known
    fails = sum(v == "Fail" for verdicts in summary.truth.values() for v in verdicts.values())
    assert fails > 20  # the batch has failures to find, not only Pass


def test_measured_accuracy_is_near_the_configured_one(batch):
    """Per annotator and dimension, over every item (n = 223 tasks): the share of verdicts equal to
    the truth is a binomial proportion; 4 standard errors (at p = 0.9: +-0.08) make a false failure
    a 1-in-15,000 event per check, while a mix-up (an annotator's accuracy used for another, the
    fatigue applied to everyone) moves the figure by more than that."""
    summary, export = batch["summary"], batch["exports"]["pass2"]
    n_tasks = len(export)
    for k, who in enumerate(DEFAULT_ANNOTATORS):
        for dim in ("accuracy", "relevance", "groundedness", "safety", "policy"):
            hits = 0
            for task in export:
                result = {r["from_name"]: r["value"] for r in task["annotations"][k]["result"]}
                hits += result[dim]["choices"][0] == summary.truth[task["data"]["item_id"]][dim]
            shares = [p / (n_tasks - 1) for p in range(n_tasks)]
            expected = sum(who.accuracy_at(dim, s) for s in shares) / n_tasks
            tolerance = 4 * math.sqrt(expected * (1 - expected) / n_tasks)
            assert abs(hits / n_tasks - expected) <= tolerance, (who.name, dim, hits / n_tasks, expected)
    assert [a.export_identity for a in DEFAULT_ANNOTATORS if a.fatigue] == summary.tired == ["12"]


def test_tired_annotator_is_fresh_first_and_worse_at_the_end(batch):
    """All dimensions pooled: ~560 ratings in the first half (expected accuracy 0.94), ~280 in the
    last quarter (expected 0.60); a drop over 0.2 is many standard errors (about 0.03) away from
    both 0 and the expected 0.34."""
    summary, export = batch["summary"], batch["exports"]["pass2"]

    def accuracy(k: int, tasks: list[dict]) -> float:
        hits = [r["value"]["choices"][0] == summary.truth[t["data"]["item_id"]][r["from_name"]]
                for t in tasks for r in t["annotations"][k]["result"] if r["type"] == "choices"]
        return sum(hits) / len(hits)

    half, quarter = len(export) // 2, len(export) // 4
    assert accuracy(1, export[:half]) - accuracy(1, export[-quarter:]) > 0.2
    assert abs(accuracy(0, export[:half]) - accuracy(0, export[-quarter:])) < 0.1


def test_the_pipeline_finds_the_tired_annotator_on_gold(batch):
    quality, fatigue = quality_tables(label_rows(batch), [batch["manifest"]],
                                      QualityThresholds(min_accuracy=0.8, min_gold=10, fatigue_drop=0.15))
    fatigued = quality.filter(pl.col("reason").str.contains("fatigue"))["annotator"].to_list()
    assert fatigued == ["12"]
    # Expected drops (from accuracy_at): about 0.33 from the first to the last position quartile and
    # 0.30 between time thirds; with ~27-40 gold ratings a segment the standard error of a drop is
    # about 0.1, so the checks ask for a clear fall, not for the expected size.
    by_segment = {(a, s): acc for a, s, _, acc in fatigue.rows()}
    assert by_segment[("12", "position_q1")] - by_segment[("12", "position_q4")] > 0.1
    assert by_segment[("12", "time_1of3")] - by_segment[("12", "time_3of3")] > 0.15
    steady = quality.filter((pl.col("dimension") == "all") & (pl.col("annotator") != "12"))
    assert steady["flagged"].to_list() == [False, False]


def test_tired_annotator_rushes(batch):
    export = batch["exports"]["pass2"]
    third = len(export) // 3
    def mean_lead(k: int, tasks: list) -> float:
        return sum(t["annotations"][k]["lead_time"] for t in tasks) / len(tasks)
    assert mean_lead(1, export[-third:]) < 0.75 * mean_lead(1, export[:third])
    assert mean_lead(0, export[-third:]) > 0.75 * mean_lead(0, export[:third])


def test_gold_answers_contain_the_key_facts_when_right(batch):
    quality, _ = quality_tables(label_rows(batch), [batch["manifest"]],
                                QualityThresholds(min_accuracy=0.8, min_gold=10, fatigue_drop=0.15))
    gold_answer = {a: acc for a, d, _, _, acc, _, _ in quality.rows() if d == "gold_answer"}
    # 23 gold answers each: the steady annotators (0.95, 0.90) score well above a coin toss
    assert gold_answer["11"] >= 0.8 and gold_answer["meilin.chen@labelops.example.com"] >= 0.75


def test_traces_missing_from_the_ground_truth_are_refused(batch, tmp_path):
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "traces.jsonl").write_text("")
    with pytest.raises(ValueError, match="traces of the batch are not in"):
        simulate_annotation(batch["manifest"].path, tmp_path / "truth", tmp_path / "out")


def test_expert_review_resolves_the_disagreement_queue_with_the_truth(batch, tmp_path):
    rows = label_rows(batch).filter(pl.col("pass") == 2).with_columns(pl.lit("annotator").alias("role"))
    dims = batch["manifest"].data["dimensions"]
    ratings = rows.filter(pl.col("field").is_in(dims)).rename({"field": "dimension"})
    consensus = majority_vote(ratings.select("item_id", "annotator", "dimension", "value", "role"), min_agreement=0.7)
    queue = disputed_items(consensus, rows, load_pass2_tasks(batch["manifest"].path))
    folder = write_review_project(queue, tmp_path / "review", "review-sim", dims)
    path = simulate_expert_review(folder, batch["summary"].truth, tmp_path / "incoming")
    export = json.loads(path.read_text(encoding="utf-8"))
    assert [t["data"]["item_id"] for t in export] == sorted(item["item_id"] for item in queue)
    expert_rows = []
    for task, item in zip(export, sorted(queue, key=lambda i: i["item_id"])):
        (annotation,) = task["annotations"]
        answered = [r["from_name"] for r in annotation["result"] if r["type"] == "choices"]
        assert answered == [d for d in dims if d in item["disputed"]]  # only what was disputed
        assert annotation["completed_by"]["email"] == "joseph.osei@northwind-bank.example.com"
        expert_rows += [(task["data"]["item_id"], "expert", r["from_name"], r["value"]["choices"][0], "expert")
                        for r in annotation["result"] if r["type"] == "choices"]
    expert = pl.DataFrame(expert_rows, schema=["item_id", "annotator", "dimension", "value", "role"], orient="row")
    merged = majority_vote(pl.concat([ratings.select(expert.columns), expert]), min_agreement=0.7)
    assert merged.filter(pl.col("status") != "agreed").height == 0
    overridden = merged.filter(pl.col("method") == "expert")
    assert overridden.height == consensus.filter(pl.col("status") == "disputed").height > 0
    truth = batch["summary"].truth
    decided = overridden.select("item_id", "dimension", "value").rows()
    assert all(value == truth[item][dim] for item, dim, value in decided)


def test_an_unfinished_batch_leaves_the_last_tasks_unlabelled_and_the_rest_unchanged(batch, tmp_path):
    root = batch["root"]
    partial = simulate_annotation(batch["manifest"].path, root / "truth", tmp_path / "p", seed=5, done_share=0.8)
    full = batch["exports"]["pass2"]
    cut = json.loads(Path(partial.files["pass2"]).read_text(encoding="utf-8"))
    labelled = [bool(task["annotations"]) for task in cut]
    done = -(-len(full) * 8 // 10)  # ceil(0.8 * tasks)
    assert labelled == [True] * done + [False] * (len(full) - done)
    # The steady annotators answer the tasks they reached as in the finished batch; the tired one
    # tires with the work done, so the last task they reach is as hard on them as the batch's last.
    tired = set(partial.tired)

    def answers(tasks):
        return [[(a["completed_by"], a["result"]) for a in t["annotations"] if identity(a) not in tired]
                for t in tasks]

    assert answers(cut[:done]) == answers(full[:done])
    assert tired and all(len(t["annotations"]) == 3 for t in cut[:done])
    with pytest.raises(ValueError, match="done_share"):
        simulate_annotation(batch["manifest"].path, root / "truth", tmp_path / "q", done_share=0.0)
