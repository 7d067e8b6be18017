"""The labels stage in Dagster: the drop-folder sensor as the daemon evaluates it, the label
assets materialized over the small world (test_labels_pipeline.build_world) with their checks,
and the demo's label loop (the simulated judge endpoint, the printed summary)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from test_labels_pipeline import World, build_world, copy_world, import_incoming, pseudonym

from evalflow.cli.demo_labels import judge_endpoint, label_summary
from evalflow.defs.judge.assets import judge_calibration, judge_labels
from evalflow.defs.labels import automation
from evalflow.defs.labels.assets import (
    GATE_CHECK,
    QUALITY_CHECK,
    QUARANTINE_CHECK,
    consensus_labels,
    label_agreement,
    labels,
)
from evalflow.defs.labels.automation import label_drop_sensor
from evalflow.defs.resources import WarehouseResource
from evalflow.defs.run_tags import REASON_TAG, STARTED_BY_TAG
from evalflow.lib.judge.config import BASE_URL_ENV, MODEL_ENV
from evalflow.lib.labels.store import table_frame
from evalflow.simulator.judge_server import SIMULATED_MODEL

LABEL_ASSETS = [labels, consensus_labels, label_agreement]
DIMENSIONS = ("accuracy", "groundedness", "policy", "relevance", "safety")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> World:
    """The world with the annotators' exports waiting in the drop folder, nothing imported."""
    root = tmp_path_factory.mktemp("labels-defs") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(root))
        return build_world(root)


@pytest.fixture
def world(fresh, tmp_path, monkeypatch) -> World:
    for name in (BASE_URL_ENV, MODEL_ENV, "EVALFLOW_HUMAN_AGREEMENT_MIN"):
        monkeypatch.delenv(name, raising=False)
    return copy_world(fresh, tmp_path / "data", monkeypatch)


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:  # a temporary DAGSTER_HOME with SQLite storage
        yield instance


def tick(instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="label_drop_sensor") as context:
        return label_drop_sensor(context), context.cursor


def incoming(world: World) -> Path:
    return world.data_dir / "labels" / "incoming"


def test_an_empty_drop_folder_starts_nothing(world, instance):
    for path in incoming(world).iterdir():
        path.unlink()

    result, cursor = tick(instance)

    assert isinstance(result, dg.SkipReason) and result.skip_message.startswith("no label file in")
    assert cursor is None


def test_new_exports_start_the_labels_job_once(world, instance):
    names = sorted(p.name for p in incoming(world).iterdir())

    request, cursor = tick(instance)

    assert isinstance(request, dg.RunRequest)
    assert request.run_key == cursor is not None
    assert request.tags[STARTED_BY_TAG] == "label_drop_sensor"
    assert request.tags[REASON_TAG].startswith("2 new label files: ")
    assert sorted(request.tags[REASON_TAG].removeprefix("2 new label files: ").split(", ")) == names
    again, same = tick(instance, cursor)
    assert isinstance(again, dg.SkipReason) and again.skip_message == "no change in 2 label files"
    assert same == cursor


def test_files_already_imported_start_nothing_and_a_re_export_does(world, instance):
    import_incoming(world)

    skip, cursor = tick(instance)  # a daemon started after the import: no cursor

    assert isinstance(skip, dg.SkipReason) and skip.skip_message == "2 label files, all already imported"
    assert cursor is not None
    # Label Studio's export of the same project a day later: new bytes, whatever they hold.
    first = Path(world.simulation.files["pass1"])
    export = json.loads(first.read_text(encoding="utf-8"))
    re_export = incoming(world) / "project-1-at-2026-11-03-09-00-reexport.json"
    re_export.write_text(json.dumps(export, indent=1), encoding="utf-8")
    request, _ = tick(instance, cursor)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[REASON_TAG] == f"1 new label file: {re_export.name}"


def test_the_sensor_only_reads_the_warehouse_with_its_short_wait(world, instance, monkeypatch):
    """While a run writes the warehouse, a tick must give up after SENSOR_LOCK_WAIT_S and skip
    ('warehouse is held by ...'); a write connection would wait the full lock timeout and the
    tick would time out instead. So every connection a tick opens is read-only with that wait."""
    import evalflow.lib.common.warehouse as warehouse_module

    import_incoming(world)
    opened = []
    real = warehouse_module.connect_waiting

    def spy(path, read_only=False, wait_s=None, **kwargs):
        opened.append((read_only, wait_s))
        return real(path, read_only=read_only, wait_s=wait_s, **kwargs)

    monkeypatch.setattr(warehouse_module, "connect_waiting", spy)
    result, _ = tick(instance)

    assert isinstance(result, dg.SkipReason)
    assert opened and all(o == (True, automation.SENSOR_LOCK_WAIT_S) for o in opened), opened


def materialize(assets, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, instance=instance, resources={"warehouse": WarehouseResource()})


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def materialized(fresh, tmp_path_factory, instance):
    """The three label assets materialized once over a copy of the world: (world, result)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (BASE_URL_ENV, MODEL_ENV, "EVALFLOW_HUMAN_AGREEMENT_MIN"):
            patch.delenv(name, raising=False)
        world = copy_world(fresh, tmp_path_factory.mktemp("labels-defs-run") / "data", patch)
        return world, materialize(LABEL_ASSETS, instance)


def test_the_label_assets_import_merge_and_measure_the_drop_folder(materialized):
    world, result = materialized

    assert result.success
    imported = metadata(result, "labels")
    assert (imported["files_imported"], imported["labels_added"], imported["quarantined"]) == (2, 4050, 0)
    assert imported["dagster/row_count"] == world.warehouse.count("labels") == 4050
    merged = metadata(result, "consensus_labels")
    table = table_frame(world.warehouse, "consensus_labels")
    assert merged["dagster/row_count"] == table.height == 150 * 6
    assert merged["by_status"] == dict(table.group_by("status").len().iter_rows())
    tired = pseudonym(world.settings, world.simulation.tired[0])
    assert metadata(result, "label_agreement")["flagged_annotators"] == tired


def test_the_label_checks_warn_without_failing_the_run(materialized):
    world, result = materialized
    gates = dict(table_frame(world.warehouse, "label_gates").select("dimension", "gate_open").iter_rows())
    closed = sorted(d for d, is_open in gates.items() if not is_open)
    assert sorted(gates) == list(DIMENSIONS) and closed  # the harder dimensions' annotators disagree too much

    evaluations = checks(result)

    assert result.success
    assert evaluations[QUARANTINE_CHECK].passed
    gate = evaluations[GATE_CHECK]
    assert (gate.passed, gate.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert gate.metadata["closed"].value == ", ".join(closed)
    assert gate.metadata["open"].value == ", ".join(d for d in DIMENSIONS if gates[d])
    quality = evaluations[QUALITY_CHECK]
    assert (quality.passed, quality.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert quality.metadata["flagged"].value == pseudonym(world.settings, world.simulation.tired[0])


def test_materializing_again_imports_nothing_twice(materialized, tmp_path, monkeypatch, instance):
    world = copy_world(materialized[0], tmp_path / "data", monkeypatch)

    result = materialize(LABEL_ASSETS, instance)

    imported = metadata(result, "labels")
    assert (imported["files_in_drop_folder"], imported["files_imported"], imported["labels_added"]) == (2, 0, 0)
    assert world.warehouse.count("labels") == 4050
    skip, _ = tick(instance)
    assert isinstance(skip, dg.SkipReason) and skip.skip_message == "2 label files, all already imported"


def served_model(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/models", timeout=10) as response:
        return json.load(response)["data"][0]["id"]


def test_the_demo_judge_endpoint_restores_the_environment(world, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, "the-users-model")

    with judge_endpoint(world.settings) as described:
        inside = os.environ.get(BASE_URL_ENV), os.environ.get(MODEL_ENV)
        assert served_model(inside[0]) == SIMULATED_MODEL
    assert "SIMULATED" in described and inside[0] in described
    assert inside[1] == SIMULATED_MODEL
    assert (os.environ.get(BASE_URL_ENV), os.environ.get(MODEL_ENV)) == (None, "the-users-model")

    with pytest.raises(RuntimeError, match="a failing step"):
        with judge_endpoint(world.settings):
            raise RuntimeError("a failing step")
    assert (os.environ.get(BASE_URL_ENV), os.environ.get(MODEL_ENV)) == (None, "the-users-model")


def test_the_demo_uses_a_configured_judge_as_it_is(world, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, "https://judge.example.com/v1")
    monkeypatch.setenv(MODEL_ENV, "real-judge")
    shutil.rmtree(world.settings.ground_truth_dir)  # a real deployment has no simulator truth

    with judge_endpoint(world.settings) as described:
        inside = os.environ[BASE_URL_ENV], os.environ[MODEL_ENV]

    assert inside == ("https://judge.example.com/v1", "real-judge")
    assert described == "the judge at https://judge.example.com/v1 (model real-judge)"
    assert (os.environ[BASE_URL_ENV], os.environ[MODEL_ENV]) == inside


def test_the_demo_summary_names_every_dimension_and_the_tired_annotator(materialized, tmp_path, monkeypatch,
                                                                        instance):
    world = copy_world(materialized[0], tmp_path / "data", monkeypatch)
    with judge_endpoint(world.settings):
        judged = materialize([judge_calibration, judge_labels], instance)
    assert judged.success

    lines = label_summary(world.settings, world.simulation)

    gates = dict(table_frame(world.warehouse, "label_gates").select("dimension", "gate_open").iter_rows())
    calibrated = dict(world.warehouse.query("SELECT dimension, calibrated FROM judge_calibrations").iter_rows())
    for dimension in DIMENSIONS:
        named = [line for line in lines if line.strip().startswith(f"{dimension} ")]
        assert len(named) == 2, (dimension, lines)  # its human agreement, then its judge
        agreement, judge = named
        assert agreement.endswith("gate open" if gates[dimension] else "gate closed")
        assert judge.endswith("; calibrated") == calibrated[dimension]
    tired = pseudonym(world.settings, world.simulation.tired[0])
    assert any(line.startswith("Annotators flagged") and tired in line for line in lines)
    assert f"  (the simulation made {tired} tire over the batch)" in lines
    # the judge is named as simulated where its calibration is reported
    assert f"Judge calibration (SIMULATED judge {SIMULATED_MODEL!r}; test part, held back from prompt choice):" in lines
    written = world.warehouse.count("judge_labels")
    assert written > 0 and lines[-1] == f"Judge labels written for cases no human consensus covers: {written}"
