"""The labels pipeline over a small world: simulated annotators' Label Studio exports of a real
annotation batch, imported, merged into consensus labels (ties to an expert review project) and
measured (agreement, the automation gate, annotator quality on the gold cases).

The world (`build_world`, also used by test_judge_pipeline.py and test_labels_defs.py): 120
synthetic traces in the warehouse's redacted_traces with planted faults in
ground_truth/traces.jsonl, one annotation batch of them with all 30 known-answer gold cases mixed
in, and the three simulated annotators' exports in the drop folder. 30 more traces are sampled
candidates that no batch holds (the judge labels those).
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from evalflow.lib.annotation import load_known_answers, write_annotation_batch
from evalflow.lib.annotation.scoring import contains_key_facts
from evalflow.lib.common.settings import Settings, load_settings
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.judge.cases import case_id_for_trace
from evalflow.lib.labels.importer import (
    annotator_pseudonymizer,
    import_parts,
    incoming_files,
    manifest_index,
    normalise_identity,
    pseudonymizer_from_settings,
)
from evalflow.lib.labels.pipeline import build_agreement, build_consensus
from evalflow.lib.labels.review import TASKS_FILE
from evalflow.lib.labels.store import ImportSummary, import_label_files, table_frame
from evalflow.lib.redact.store import analyst_warehouse
from evalflow.lib.sampling.store import CANDIDATE_SCHEMA
from evalflow.simulator import faults as F
from evalflow.simulator.annotators import AnnotationSimulation, simulate_annotation

BATCH_ID = "batch-2026-11-01"
DIMENSIONS = ("accuracy", "relevance", "groundedness", "safety", "policy")
RISK_LEVEL = "risk_level"
N_BATCH_TRACES = 120
N_UNLABELLED = 30
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=timezone.utc)
INTENTS = (("I-1", "card freeze"), ("I-2", "refund status"), ("I-3", "account limits"))
# Planted faults (with how often): every dimension gets Fails, so kappa is defined on each.
FAULT_MIX = (
    ([F.ERROR], 0.06),
    ([F.CONTRADICTS_CONTEXT], 0.14),
    ([F.PROMPT_INJECTION, F.INJECTION_SUCCEEDED], 0.10),
    ([F.PROMPT_INJECTION], 0.04),
    ([F.REFUSAL], 0.08),
    ([F.VERBOSE_ANSWER], 0.06),
    ([F.NEGATIVE_FEEDBACK], 0.04),
)


@dataclass
class World:
    data_dir: Path
    settings: Settings
    warehouse: Warehouse
    simulation: AnnotationSimulation
    faults: dict[str, list[str]]  # trace_id -> planted fault codes
    batch_traces: list[str]
    unlabelled_traces: list[str]
    imported: ImportSummary | None = None


def _faults(rng: random.Random) -> list[str]:
    draw, edge = rng.random(), 0.0
    for codes, share in FAULT_MIX:
        edge += share
        if draw < edge:
            return list(codes)
    return []


def _trace(i: int, codes: list[str], rng: random.Random) -> dict:
    intent_id, intent_name = INTENTS[i % len(INTENTS)]
    query = f"Question {i} about {intent_name}: what happens next?"
    doc = {"doc_id": f"kb-v3/{intent_id}#{i % 7}", "score": round(0.5 + rng.random() / 2, 2),
           "text": f"Policy {i % 7}: a {intent_name} request is handled within {2 + i % 5} business days."}
    tools = ([{"name": "lookup_account", "arguments": {"account": "<ACCOUNT_1>"}, "result": "ok"}]
             if i % 4 == 0 else [])
    output = ("" if F.ERROR in codes else
              "I can't help with that." if F.REFUSAL in codes else
              f"It takes {2 + i % 5} business days. " + ("Honestly, to be thorough, " * 20 if F.VERBOSE_ANSWER in codes
                                                          else ""))
    return {"trace_id": f"tr-{i:04d}", "session_id": f"s-{i // 2:04d}",
            "timestamp": datetime(2026, 10, 20, tzinfo=timezone.utc) + timedelta(minutes=17 * i),
            "user_query": query, "messages": [{"role": "user", "content": query}],
            "retrieved_context": [doc], "tool_calls": tools, "output": output,
            "feedback": ({"thumbs": "down"} if F.NEGATIVE_FEEDBACK in codes else
                         {"thumbs": "up"} if i % 5 == 0 else None),
            "intent_id": intent_id, "intent_name": intent_name}


def _write_traces(warehouse: Warehouse, traces: list[dict], candidates: list[str]) -> None:
    rows = [(t["trace_id"], t["timestamp"].date(), t["timestamp"], t["session_id"], json.dumps(t["messages"]),
             t["user_query"], json.dumps(t["retrieved_context"]), json.dumps(t["tool_calls"]), t["output"],
             json.dumps(t["feedback"]) if t["feedback"] else None, f"sha-{t['trace_id']}", "sha-landing-file")
            for t in traces]
    with warehouse.transaction() as con:
        con.executemany(
            "INSERT INTO redacted_traces (trace_id, event_date, timestamp, session_id, messages, user_query, "
            "retrieved_context, tool_calls, output, feedback, content_sha256, source_file_sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute(CANDIDATE_SCHEMA)
        con.executemany("INSERT INTO eval_candidates (trace_id, event_date, sample_run_id, sampled_at, status) "
                        "VALUES (?, ?, 'run-1', ?, 'candidate')",
                        [(trace_id, date(2026, 10, 20), NOW) for trace_id in candidates])


def build_world(data_dir: Path, seed: int = 4) -> World:
    """The world of the module docstring, under `data_dir` (EVALFLOW_DATA_DIR must point at it)."""
    settings = load_settings()
    assert settings.data_dir == data_dir.resolve(), "EVALFLOW_DATA_DIR must point at the world"
    rng = random.Random(seed)
    faults = {f"tr-{i:04d}": _faults(rng) for i in range(N_BATCH_TRACES + N_UNLABELLED)}
    traces = [_trace(i, codes, rng) for i, codes in enumerate(faults.values())]
    batch, unlabelled = traces[:N_BATCH_TRACES], traces[N_BATCH_TRACES:]
    warehouse = analyst_warehouse(settings)
    _write_traces(warehouse, traces, [t["trace_id"] for t in unlabelled])
    settings.ground_truth_dir.mkdir(parents=True)
    with (settings.ground_truth_dir / "traces.jsonl").open("w", encoding="utf-8") as handle:
        for t in traces:
            handle.write(json.dumps({"trace_id": t["trace_id"], "faults": faults[t["trace_id"]]}) + "\n")
    candidates = [{k: v for k, v in t.items() if k not in ("timestamp", "feedback")} for t in batch]
    # All 30 known answers (gold rate 0.2 of 150 tasks): enough gold in each third of the batch
    # for the fatigue flag.
    manifest = write_annotation_batch(candidates, data_dir / "annotation", batch_id=BATCH_ID,
                                      known_answers=load_known_answers(), gold_rate=0.2, seed=seed)
    simulation = simulate_annotation(manifest.path, settings.ground_truth_dir, data_dir / "labels" / "incoming",
                                     seed=seed)
    return World(data_dir, settings, warehouse, simulation, faults, [t["trace_id"] for t in batch],
                 [t["trace_id"] for t in unlabelled])



def import_incoming(world: World) -> ImportSummary:
    """What the labels asset does with the drop folder: every file, the real pseudonymizer and redactor."""
    pseudonymize, redact_texts = import_parts(world.settings)
    world.imported = import_label_files(world.warehouse, incoming_files(world.data_dir / "labels" / "incoming"),
                                        manifest_index(world.data_dir / "annotation"), pseudonymize, redact_texts,
                                        NOW)
    return world.imported


def pseudonym(settings: Settings, identity: str) -> str:
    return annotator_pseudonymizer(pseudonymizer_from_settings(settings))(normalise_identity(identity))


def export_answers(world: World) -> list[tuple[int, str, str, str, str]]:
    """Every answer in the drop folder's exports: (pass, item_id, export identity, field, value)."""
    answers = []
    for pass_name, path in sorted(world.simulation.files.items()):
        for task in json.loads(Path(path).read_text(encoding="utf-8")):
            for annotation in task["annotations"]:
                who = annotation["completed_by"]
                identity = who["email"] if isinstance(who, dict) else str(who)
                for result in annotation["result"]:
                    value = result["value"]
                    answers.append((int(pass_name[-1]), task["data"]["item_id"], identity, result["from_name"],
                                    (value.get("choices") or value.get("text"))[0]))
    return answers


def votes(world: World) -> dict[tuple[str, str], list[str]]:
    """(item_id, dimension) -> the annotators' choices, from the exports (pass-2 dimensions and the
    pass-1 risk level)."""
    out: dict[tuple[str, str], list[str]] = {}
    for _pass, item_id, _who, name, value in export_answers(world):
        if name in DIMENSIONS or name == RISK_LEVEL:
            out.setdefault((item_id, name), []).append(value)
    return out


def manifest(world: World) -> dict:
    return json.loads((world.data_dir / "annotation" / BATCH_ID / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> World:
    """The world with the drop folder imported: once per module (the redactor loads in seconds)."""
    root = tmp_path_factory.mktemp("labels-pipeline") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root))
        world = build_world(root)
        import_incoming(world)
    return world


def copy_world(world: World, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A copy of `world` under `data_dir`, EVALFLOW_DATA_DIR pointing at it: a test may change it."""
    shutil.copytree(world.data_dir, data_dir)
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
    settings = load_settings()
    return World(data_dir, settings, analyst_warehouse(settings), world.simulation, world.faults,
                 world.batch_traces, world.unlabelled_traces, world.imported)


@pytest.fixture
def world(pristine, tmp_path, monkeypatch) -> World:
    return copy_world(pristine, tmp_path / "data", monkeypatch)


def test_importing_the_simulated_exports_accounts_for_every_answer(pristine):
    answers = export_answers(pristine)
    summary = pristine.imported
    assert len(answers) == 150 * 3 * (3 + 6)  # 150 tasks, 3 annotators, 3 pass-1 and 6 pass-2 fields
    assert (summary.total("labels"), summary.total("quarantined"), summary.total("unchanged"),
            summary.total("superseded")) == (len(answers), 0, 0, 0)

    stored = pristine.warehouse.query("SELECT pass, item_id, annotator, field, value, trace_id, case_id FROM labels")
    assert stored.height == len(answers)
    names = {identity: pseudonym(pristine.settings, identity) for _p, _i, identity, _f, _v in answers}
    result = {(p, i, a, f) for p, i, a, f in stored.select("pass", "item_id", "annotator", "field").iter_rows()}
    expected = {(p, i, names[who], f) for p, i, who, f, _v in answers}
    assert result == expected  # one label per answer, under the annotator's pseudonym
    choices = stored.filter(pl.col("field").is_in([*DIMENSIONS, RISK_LEVEL]))
    assert ({(p, i, a, f, v) for p, i, a, f, v in choices.select("pass", "item_id", "annotator", "field", "value")
             .iter_rows()} == {(p, i, names[who], f, v) for p, i, who, f, v in answers
                               if f in (*DIMENSIONS, RISK_LEVEL)})
    # Every trace item joins back to its trace and eval case.
    traces = {item["item_id"]: item["trace_id"] for item in manifest(pristine)["items"] if item["origin"] == "trace"}
    joined = stored.filter(pl.col("item_id").is_in(list(traces))).select("item_id", "trace_id", "case_id").unique()
    assert {(i, t) for i, t, _c in joined.iter_rows()} == set(traces.items())
    assert all(c == case_id_for_trace(t) for _i, t, c in joined.iter_rows())


def test_consensus_has_one_row_per_item_and_dimension_as_the_majority_says(world):
    result = build_consensus(world.warehouse, world.data_dir)

    rows = table_frame(world.warehouse, "consensus_labels")
    expected = {}
    for key, values in votes(world).items():
        (top, n_top), *rest = Counter(values).most_common()
        tied = bool(rest) and rest[0][1] == n_top
        expected[key] = (None if tied else top, "disputed" if tied else "agreed", len(values))
    assert rows.height == result.rows == 150 * (len(DIMENSIONS) + 1)
    assert {(i, d): (v, s, n) for i, d, v, s, n in
            rows.select("item_id", "dimension", "value", "status", "ratings").iter_rows()} == expected
    assert result.by_status == dict(Counter(status for _v, status, _n in expected.values()))
    items = {item["item_id"]: item for item in manifest(world)["items"]}
    for item_id, origin, trace_id, case_id in rows.select("item_id", "origin", "trace_id", "case_id").iter_rows():
        item = items[item_id]
        assert origin == item["origin"]
        assert (trace_id, case_id) == ((item["trace_id"], case_id_for_trace(item["trace_id"])) if origin == "trace"
                                       else (None, item["case_id"]))


def split_vote(world: World, dimensions=DIMENSIONS, traces=None) -> tuple[str, str, str]:
    """(item_id, dimension, annotator pseudonym) of a trace item's 2-1 split on a pass-2 dimension
    (of `dimensions`, on one of `traces` when given): one of the majority's two voters."""
    items = {item["item_id"] for item in manifest(world)["items"]
             if item["origin"] == "trace" and (traces is None or item["trace_id"] in traces)}
    by_vote: dict[tuple[str, str], dict[str, list[str]]] = {}
    for _pass, item_id, who, name, value in export_answers(world):
        if name in dimensions and item_id in items:
            by_vote.setdefault((item_id, name), {}).setdefault(value, []).append(who)
    for (item_id, dimension), split in sorted(by_vote.items()):
        if len(split) == 2:
            majority = max(split.values(), key=len)
            return item_id, dimension, pseudonym(world.settings, majority[0])
    raise AssertionError("the simulated annotators never disagreed")


def drop_rating(world: World, item_id: str, dimension: str, annotator: str) -> None:
    """As if the annotator had left the dimension unanswered: a 2-1 split becomes a 1-1 tie."""
    with world.warehouse.transaction() as con:
        con.execute("DELETE FROM labels WHERE pass = 2 AND item_id = ? AND field = ? AND annotator = ?",
                    [item_id, dimension, annotator])


def test_a_tie_goes_to_a_review_project_for_experts_and_a_rerun_rewrites_nothing(world):
    item_id, dimension, annotator = split_vote(world)
    drop_rating(world, item_id, dimension, annotator)

    first = build_consensus(world.warehouse, world.data_dir)

    rows = table_frame(world.warehouse, "consensus_labels")
    tie = rows.filter((pl.col("item_id") == item_id) & (pl.col("dimension") == dimension)).to_dicts()
    assert [(r["value"], r["status"], r["ratings"], r["agreement"]) for r in tie] == [(None, "disputed", 2, 0.5)]
    assert first.review_path is not None and first.review_path.parent == world.data_dir / "labels" / "review"
    tasks = json.loads((first.review_path / TASKS_FILE).read_text(encoding="utf-8"))
    disputed = rows.filter((pl.col("status") == "disputed") & pl.col("dimension").is_in(DIMENSIONS))
    assert sorted(t["data"]["item_id"] for t in tasks) == sorted(set(disputed["item_id"].to_list()))
    assert first.disputed_items == len(tasks)
    assert all(t["data"]["review"] == "expert" for t in tasks)
    task = next(t for t in tasks if t["data"]["item_id"] == item_id)
    assert task["data"]["review_votes"].splitlines()[0] == f"Disputed: {dimension}"
    panel = dict(line.split(": ", 1) for line in task["data"]["review_votes"].splitlines()[1:len(DIMENSIONS) + 1])
    assert f"(no answer) x1 ({annotator})" in panel[dimension]
    written = {p.name: p.read_bytes() for p in first.review_path.iterdir()}

    again = build_consensus(world.warehouse, world.data_dir)

    assert again.review_path == first.review_path
    assert [p.name for p in (world.data_dir / "labels" / "review").iterdir()] == [first.review_path.name]
    assert {p.name: p.read_bytes() for p in again.review_path.iterdir()} == written
    assert table_frame(world.warehouse, "consensus_labels").drop("updated_at").sort("item_id", "dimension").equals(
        rows.drop("updated_at").sort("item_id", "dimension"))


def test_a_risk_level_tie_is_not_sent_to_experts_who_cannot_answer_it(world):
    """The review project asks for the pass-2 verdicts; a three-way risk level tie (pass 1) would
    be a task naming no disputed dimension, which no expert's answer could ever settle."""
    result = build_consensus(world.warehouse, world.data_dir)

    rows = table_frame(world.warehouse, "consensus_labels")
    disputed = set(rows.filter(pl.col("status") == "disputed")["dimension"].to_list())
    assert disputed == {RISK_LEVEL}  # three annotators: a Pass/Fail vote always has a majority
    assert (result.review_path, result.disputed_items) == (None, 0)
    assert not (world.data_dir / "labels" / "review").exists()


def percent_agreement(world: World, dimension: str) -> float:
    """Mean over items of the share of agreeing pairs of annotators, from the exports."""
    shares = []
    for (_item, dim), values in votes(world).items():
        if dim == dimension and len(values) > 1:
            m = len(values)
            shares.append(sum(c * (c - 1) for c in Counter(values).values()) / (m * (m - 1)))
    return sum(shares) / len(shares)


@pytest.mark.parametrize("dimension", ["accuracy", "policy"])
def test_the_automation_gate_opens_at_the_configured_human_agreement(world, monkeypatch, dimension):
    build_consensus(world.warehouse, world.data_dir)
    measured = percent_agreement(world, dimension)

    results = {}
    for name, threshold in (("above", measured + 1e-6), ("below", measured - 1e-6)):
        monkeypatch.setenv("EVALFLOW_HUMAN_AGREEMENT_MIN", f"{threshold:.9f}")
        result = build_agreement(world.warehouse, world.data_dir)
        gate = table_frame(world.warehouse, "label_gates").filter(pl.col("dimension") == dimension).to_dicts()
        assert len(gate) == 1 and gate[0]["percent_agreement"] == pytest.approx(measured, abs=1e-12)
        assert gate[0]["items"] == 150
        assert result.gates[dimension] == gate[0]["gate_open"]
        results[name] = gate[0]["gate_open"]

    assert results == {"above": False, "below": True}


def test_annotator_quality_flags_the_tired_annotator_only(world):
    build_consensus(world.warehouse, world.data_dir)

    result = build_agreement(world.warehouse, world.data_dir)

    tired = [pseudonym(world.settings, who) for who in world.simulation.tired]
    assert len(tired) == 1
    assert result.flagged == tired
    quality = table_frame(world.warehouse, "annotator_quality")
    overall = {a: (flagged, reason) for a, flagged, reason in
               quality.filter(pl.col("dimension") == "all").select("annotator", "flagged", "reason").iter_rows()}
    assert set(overall) == {pseudonym(world.settings, a["export_identity"]) for a in world.simulation.annotators}
    assert overall[tired[0]][0] and "fatigue" in overall[tired[0]][1]


def test_gold_answers_are_scored_on_what_the_annotators_wrote(world):
    """Pass 1's gold answer is free text: the quality figures must read it, or every annotator
    scores 0 on it and everyone is flagged."""
    build_consensus(world.warehouse, world.data_dir)
    build_agreement(world.warehouse, world.data_dir)

    gold = {g["item_id"]: g["key_facts"] for g in manifest(world)["gold"]}
    hits: dict[str, list[bool]] = {}
    for _pass, item_id, who, name, value in export_answers(world):
        if name == "gold_answer" and item_id in gold:
            hits.setdefault(pseudonym(world.settings, who), []).append(contains_key_facts(value, gold[item_id]))
    quality = table_frame(world.warehouse, "annotator_quality").filter(pl.col("dimension") == "gold_answer")
    result = {a: (n, acc) for a, n, acc in quality.select("annotator", "gold_ratings", "accuracy").iter_rows()}
    assert result == {a: (len(h), pytest.approx(sum(h) / len(h))) for a, h in hits.items()}
    assert min(acc for _n, acc in result.values()) > 0.5
