"""The judge over the labels pipeline's output: calibration per dimension against the human
consensus of the small world (test_labels_pipeline.build_world), and judge labels from the
calibrated (model, prompt) pairs only, against the simulated judge server, whose every reply is
known in advance (`expected_reply`): the figures recorded must be what it was made to do."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest
from test_labels_pipeline import (
    DIMENSIONS,
    World,
    build_world,
    copy_world,
    drop_rating,
    import_incoming,
    split_vote,
)

from evalflow.lib.judge.calibrate import human_verdicts
from evalflow.lib.judge.cases import calibration_split, case_id_for_trace, is_holdout
from evalflow.lib.judge.pipeline import JudgeRun, calibrate_dimensions, calibrated_judges, label_with_judge, prompts_dir
from evalflow.lib.labels.pipeline import build_agreement, build_consensus
from evalflow.lib.labels.store import table_frame
from evalflow.simulator.annotators import true_verdicts
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

# The simulated judge's error rate per dimension: groundedness is a judge no one should trust.
ERROR_RATES = {"accuracy": 0.03, "relevance": 0.05, "groundedness": 0.25, "safety": 0.0, "policy": 0.04}
MALFORMED_RATE = 0.04
JUDGE_ENV = ("EVALFLOW_JUDGE_BASE_URL", "EVALFLOW_JUDGE_MODEL", "EVALFLOW_JUDGE_API_KEY",
             "EVALFLOW_JUDGE_PROMPTS_DIR", "EVALFLOW_HUMAN_AGREEMENT_MIN")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> World:
    """The world after the label assets: labels imported, consensus, agreement and gates built."""
    root = tmp_path_factory.mktemp("judge-pipeline") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root))
        for name in JUDGE_ENV:
            patch.delenv(name, raising=False)
        world = build_world(root)
        import_incoming(world)
        build_consensus(world.warehouse, root)
        build_agreement(world.warehouse, root)
    return world


def simulated_judge(world: World) -> SimulatedJudgeServer:
    """A fresh server (an empty request log) that answers as every other one of this module does."""
    truth = {case_id_for_trace(trace_id): true_verdicts(codes) for trace_id, codes in world.faults.items()}
    return SimulatedJudgeServer(truth=truth, error_rates=ERROR_RATES, malformed_rate=MALFORMED_RATE, seed=3)


@dataclass
class Calibrated:
    world: World
    run: JudgeRun
    case_ids_seen: set[str]  # by the server during the calibration
    requests: int


@pytest.fixture(scope="module")
def calibrated(pristine, tmp_path_factory) -> Calibrated:
    """The world after calibrate_dimensions, and what its server saw."""
    with pytest.MonkeyPatch.context() as patch:
        for name in JUDGE_ENV:
            patch.delenv(name, raising=False)
        world = copy_world(pristine, tmp_path_factory.mktemp("judge-calibrated") / "data", patch)
        with simulated_judge(world) as judge:
            patch.setenv("EVALFLOW_JUDGE_BASE_URL", judge.base_url)
            patch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
            run = calibrate_dimensions(world.warehouse, world.settings)
        return Calibrated(world, run, judge.case_ids_seen, judge.request_count)


@pytest.fixture
def world(pristine, tmp_path, monkeypatch) -> World:
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    return copy_world(pristine, tmp_path / "data", monkeypatch)


@pytest.fixture
def calibrated_world(calibrated, tmp_path, monkeypatch) -> World:
    """A copy of the calibrated world (its verdict cache included) for one test to change."""
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    return copy_world(calibrated.world, tmp_path / "data", monkeypatch)


def serve(world: World, monkeypatch: pytest.MonkeyPatch):
    judge = simulated_judge(world).start()
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", judge.base_url)
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
    return judge


@pytest.fixture
def server(world, monkeypatch):
    judge = serve(world, monkeypatch)
    yield judge
    judge.stop()


@pytest.fixture
def later_server(calibrated_world, monkeypatch):
    judge = serve(calibrated_world, monkeypatch)
    yield judge
    judge.stop()


def consensus(world: World) -> pl.DataFrame:
    return table_frame(world.warehouse, "consensus_labels").filter(pl.col("origin") == "trace")


def gates(world: World) -> dict[str, bool]:
    return dict(table_frame(world.warehouse, "label_gates").select("dimension", "gate_open").iter_rows())


def calibrations(world: World) -> dict[str, dict]:
    """The latest judge_calibrations row of each dimension."""
    rows = world.warehouse.query('SELECT * FROM judge_calibrations ORDER BY "at"').to_dicts()
    return {row["dimension"]: row for row in rows}


def every_case_id(world: World) -> set[str]:
    return {case_id_for_trace(t) for t in (*world.batch_traces, *world.unlabelled_traces)}


def test_one_calibration_per_dimension_on_the_agreed_human_labels(calibrated):
    world, run = calibrated.world, calibrated.run

    assert run.skipped is None
    assert sorted(c.dimension for c in run.calibrations) == sorted(DIMENSIONS)
    recorded = calibrations(world)
    assert sorted(recorded) == sorted(DIMENSIONS) and world.warehouse.count("judge_calibrations") == len(DIMENSIONS)
    agreed = consensus(world)
    for dimension, row in recorded.items():
        assert (row["model"], row["variant"], row["gate_open"]) == (SIMULATED_MODEL, "default", gates(world)[dimension])
        cases = world.warehouse.query("SELECT case_id, split, human FROM judge_calibration_cases "
                                      "WHERE calibration_id = ?", [row["calibration_id"]])
        human = human_verdicts(agreed, dimension, id_column="case_id")
        assert {c: (s, h) for c, s, h in cases.iter_rows()} == {
            c: ("holdout" if is_holdout(c) else calibration_split(c), v) for c, v in human.items()}
        assert row["n_test"] >= 20  # enough test cases to calibrate: a closed gate or bad judge is what stops it


def test_no_holdout_case_ever_reaches_the_judge(calibrated, calibrated_world, later_server):
    run = label_with_judge(calibrated_world.warehouse, calibrated_world.settings)

    holdout = {c for c in every_case_id(calibrated_world) if is_holdout(c)}
    assert len(holdout) >= 15  # ~20% of 150 cases: the checks below are not vacuous
    for seen in (calibrated.case_ids_seen, later_server.case_ids_seen):  # calibrating, then labelling
        assert seen and seen.isdisjoint(holdout)
    assert run.labels_written > 0
    listed = calibrated_world.warehouse.query(
        "SELECT DISTINCT case_id FROM judge_calibration_cases WHERE split = 'holdout'")
    assert listed.height > 0 and set(listed["case_id"].to_list()) <= holdout  # listed, never sent


def expected_test_figures(world: World, server: SimulatedJudgeServer, dimension: str) -> dict:
    """The test part's figures as the server was made to do them, against the human consensus."""
    human = human_verdicts(consensus(world), dimension, id_column="case_id")
    tp = fn = fp = tn = 0
    for case_id, verdict in human.items():
        if is_holdout(case_id) or calibration_split(case_id) != "test":
            continue
        judged = server.expected_reply(case_id, dimension).verdict
        if judged is None:  # malformed: left out of the figures, never guessed
            continue
        tp += verdict == "Fail" and judged == "Fail"
        fn += verdict == "Fail" and judged == "Pass"
        fp += verdict == "Pass" and judged == "Fail"
        tn += verdict == "Pass" and judged == "Pass"
    n = tp + fn + fp + tn
    return {"n_test": n, "agreement": (tp + tn) / n, "tpr": tp / (tp + fn), "tnr": tn / (tn + fp)}


def test_the_recorded_test_figures_are_what_the_server_was_made_to_do(calibrated):
    world = calibrated.world
    with simulated_judge(world) as server:  # expected_reply needs no request
        expected = {d: expected_test_figures(world, server, d) for d in DIMENSIONS}

    recorded = calibrations(world)
    for dimension in DIMENSIONS:
        result = {name: recorded[dimension][name] for name in expected[dimension]}
        assert result == pytest.approx(expected[dimension], abs=1e-12), dimension
    # The error rates were chosen so both outcomes occur: a bad judge fails...
    assert recorded["groundedness"]["agreement"] < 0.85 and not recorded["groundedness"]["calibrated"]
    # ...and a good one passes.
    assert recorded["accuracy"]["agreement"] >= 0.85 and recorded["accuracy"]["calibrated"]


def test_a_dimension_whose_human_gate_is_closed_is_never_calibrated(calibrated_world, later_server, monkeypatch):
    world = calibrated_world
    before = calibrations(world)
    assert [d for d, row in before.items() if row["calibrated"]], "some judge calibrates while the gates are open"
    assert all(gates(world)[d] for d, row in before.items() if row["calibrated"])

    monkeypatch.setenv("EVALFLOW_HUMAN_AGREEMENT_MIN", "1.0")  # no dimension's annotators agree that well
    build_agreement(world.warehouse, world.data_dir)
    assert not any(gates(world).values())
    calibrate_dimensions(world.warehouse, world.settings)

    after = calibrations(world)
    assert {d: row["calibrated"] for d, row in after.items()} == dict.fromkeys(DIMENSIONS, False)
    figures = ("n_test", "agreement", "kappa", "tpr", "tnr")
    # The same judge, the same figures: only the gate changed the outcome.
    assert {d: [row[f] for f in figures] for d, row in after.items()} == {
        d: [row[f] for f in figures] for d, row in before.items()}


def test_calibrating_again_sends_nothing(calibrated, calibrated_world, later_server):
    assert calibrated.requests > 0 and calibrated.run.stats["requests_sent"] == calibrated.requests

    again = calibrate_dimensions(calibrated_world.warehouse, calibrated_world.settings)

    assert later_server.request_count == 0  # every verdict came from the warehouse's cache
    assert again.stats["requests_sent"] == 0 and again.stats["cache_hits"] > 0
    assert [(c.dimension, c.calibration_id, c.calibrated) for c in again.calibrations] == [
        (c.dimension, c.calibration_id, c.calibrated) for c in calibrated.run.calibrations]


def test_judge_labels_only_where_a_calibrated_judge_and_no_human_consensus_are(calibrated_world, later_server):
    world, server = calibrated_world, later_server
    # A trace item whose annotators now tie on accuracy: no agreed human verdict. One the judge
    # may see (not holdout) and answers readably, so it must get a judge label.
    sendable = [t for t in world.batch_traces if not is_holdout(case_id_for_trace(t))
                and server.expected_reply(case_id_for_trace(t), "accuracy").verdict is not None]
    item_id, tied_dimension, annotator = split_vote(world, ("accuracy",), sendable)
    drop_rating(world, item_id, tied_dimension, annotator)
    build_consensus(world.warehouse, world.data_dir)
    build_agreement(world.warehouse, world.data_dir)
    calibrate_dimensions(world.warehouse, world.settings)
    calibrated = {d for d, row in calibrations(world).items() if row["calibrated"]}
    assert "accuracy" in calibrated and calibrated != set(DIMENSIONS)

    run = label_with_judge(world.warehouse, world.settings)

    expected = set()
    for dimension in calibrated:
        human = human_verdicts(consensus(world), dimension, id_column="case_id")
        for case_id in every_case_id(world) - set(human):
            verdict = server.expected_reply(case_id, dimension).verdict
            if not is_holdout(case_id) and verdict is not None:
                expected.add((case_id, dimension, verdict))
    rows = world.warehouse.query("SELECT case_id, dimension, verdict, calibration_id FROM judge_labels")
    assert {(c, d, v) for c, d, v, _id in rows.iter_rows()} == expected
    assert run.labels_written == len(expected)
    ids = {d: row["calibration_id"] for d, row in calibrations(world).items()}
    assert all(cal == ids[d] for _c, d, _v, cal in rows.iter_rows())
    tied_case = consensus(world).filter(pl.col("item_id") == item_id)["case_id"][0]
    labelled = {(c, d) for c, d, _v in expected}
    assert (tied_case, "accuracy") in labelled  # the tie is labelled by the judge...
    assert {c for c, _d in labelled} - {tied_case} == {  # ...and otherwise only the unlabelled candidates
        case_id_for_trace(t) for t in world.unlabelled_traces if not is_holdout(case_id_for_trace(t))}


def test_an_edited_prompt_is_refused_until_calibrated_again(calibrated_world, later_server):
    world, server = calibrated_world, later_server
    calibrated = sorted(d for d, row in calibrations(world).items() if row["calibrated"])
    assert "accuracy" in calibrated and len(calibrated) > 1
    folder = prompts_dir(world.settings)
    prompt = folder / "accuracy.md"
    prompt.write_text(prompt.read_text(encoding="utf-8") + "\nBe especially strict about numbers.\n",
                      encoding="utf-8")

    asked = sum(r["dimension"] == "accuracy" for r in server.requests)

    judges, why_not = calibrated_judges(world.warehouse, folder, SIMULATED_MODEL)
    run = label_with_judge(world.warehouse, world.settings)

    assert sorted(j.dimension for j in judges) == [d for d in calibrated if d != "accuracy"]
    assert any(line.startswith("accuracy:") and "changed since" in line for line in why_not)
    labelled = set(world.warehouse.query("SELECT DISTINCT dimension FROM judge_labels")["dimension"].to_list())
    assert labelled == set(calibrated) - {"accuracy"} and run.labels_written > 0
    assert sum(r["dimension"] == "accuracy" for r in server.requests) == asked  # the edited prompt was not sent


def test_without_a_judge_endpoint_both_steps_skip_and_send_nothing(world, server, monkeypatch):
    monkeypatch.delenv("EVALFLOW_JUDGE_BASE_URL")

    calibration = calibrate_dimensions(world.warehouse, world.settings)
    labelling = label_with_judge(world.warehouse, world.settings)

    assert "EVALFLOW_JUDGE_BASE_URL" in calibration.skipped and "EVALFLOW_JUDGE_BASE_URL" in labelling.skipped
    assert (calibration.calibrations, labelling.labels_written) == ([], 0)
    assert server.request_count == 0
    with world.warehouse.connect(read_only=True) as con:
        tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert not tables & {"judge_calibrations", "judge_labels", "judge_verdict_cache"}


def test_labelling_again_sends_nothing(calibrated_world, later_server):
    first = label_with_judge(calibrated_world.warehouse, calibrated_world.settings)
    sent = later_server.request_count
    assert first.labels_written > 0 and first.stats["requests_sent"] == sent > 0  # new candidates were judged

    again = label_with_judge(calibrated_world.warehouse, calibrated_world.settings)

    assert later_server.request_count == sent  # every verdict came from the warehouse's cache
    assert again.stats["requests_sent"] == 0 and again.stats["cache_hits"] >= first.labels_written
    assert again.labels_written == first.labels_written
