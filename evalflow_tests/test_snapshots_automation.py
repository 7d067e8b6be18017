"""What publishes eval-set versions by itself (evalflow/defs/snapshots/automation.py), evaluated
with Dagster's own contexts against a data folder in tmp_path: promotion_file_sensor asks for a
run for a new promotion file and not for one already applied; rolling_set_schedule asks for
one run a day, whose (empty) config publishes rolling@<newest case's day> once."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from evalflow.defs.resources import WarehouseResource
from evalflow.defs.run_tags import REASON_TAG, STARTED_BY_TAG
from evalflow.defs.snapshots.assets import golden_set, rolling_set
from evalflow.defs.snapshots.automation import (
    golden_set_job,
    promotion_file_sensor,
    rolling_set_job,
    rolling_set_schedule,
)
from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.settings import load_settings
from evalflow.lib.eval_cases.store import replace_eval_cases
from evalflow.lib.redact.store import analyst_warehouse
from evalflow.lib.snapshots import promotion_to_toml
from evalflow.lib.snapshots.store import list_versions
from evalflow_tests.test_snapshots import pool, promo


@pytest.fixture
def cases(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    cases = pool(40)
    replace_eval_cases(analyst_warehouse(load_settings()), cases, utcnow())
    return cases


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[golden_set, rolling_set], jobs=[golden_set_job, rolling_set_job],
                          sensors=[promotion_file_sensor], schedules=[rolling_set_schedule],
                          resources={"warehouse": WarehouseResource()})


def run(job_name: str, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """The job a tick asked for, run in process with the request's config and tags."""
    job = definitions().resolve_job_def(job_name)
    result = job.execute_in_process(run_config=request.run_config, tags=request.tags,
                                    instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result


def version_of(result: dg.ExecuteInProcessResult, asset) -> str:
    return result.asset_materializations_for_node(asset.op.name)[0].metadata["version"].value


def sensor_tick():
    with dg.build_sensor_context(sensor_name="promotion_file_sensor") as context:
        return promotion_file_sensor(context)


def test_a_new_promotion_file_gives_a_run_request_and_an_applied_one_does_not(cases):
    data_dir = load_settings().data_dir
    skipped = sensor_tick()  # no promotions folder, no lake: nothing to do
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == "no pending promotion file"

    folder = data_dir / "promotions"
    folder.mkdir(parents=True)
    (folder / "0001-first.toml").write_text(promotion_to_toml(promo(add=[c["case_id"] for c in cases[:20]])))
    request = sensor_tick()
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "0001-first.toml"
    assert request.tags[STARTED_BY_TAG] == "promotion_file_sensor"
    assert request.tags[REASON_TAG] == "1 promotion file: 0001-first.toml"
    assert not request.run_config  # the asset's empty config: apply the pending files
    assert version_of(run("golden_set_job", request), golden_set) == "golden@v1"

    applied = sensor_tick()  # the file made golden@v1 (recognised by its sha256)
    assert isinstance(applied, dg.SkipReason)

    (folder / "0002-second.toml").write_text(promotion_to_toml(promo(add=[c["case_id"] for c in cases[20:25]])))
    second = sensor_tick()
    assert isinstance(second, dg.RunRequest) and second.run_key == "0002-second.toml"  # only the new file
    assert version_of(run("golden_set_job", second), golden_set) == "golden@v2"
    assert isinstance(sensor_tick(), dg.SkipReason)
    assert [v.version for v in list_versions(data_dir, "golden")] == ["v1", "v2"]


def test_the_daily_schedule_requests_one_rolling_run_whose_config_publishes_the_newest_day_once(cases):
    data_dir = load_settings().data_dir
    when = datetime(2026, 3, 12, 5, 30, tzinfo=timezone.utc)
    request = rolling_set_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "rolling-2026-03-12"  # one run per scheduled day
    assert request.tags[STARTED_BY_TAG] == "rolling_set_schedule"
    assert request.tags[REASON_TAG] == "rolling set of 2026-03-12"
    assert not request.run_config  # RollingConfig's defaults: size 200, seed 0, the newest case's day
    newest = max(c["source_date"] for c in cases)
    assert version_of(run("rolling_set_job", request), rolling_set) == f"rolling@{newest}"

    # the next day, with no new labelled case: no new version (the newest day's version exists)
    later = rolling_set_schedule(dg.build_schedule_context(scheduled_execution_time=when.replace(day=13)))
    assert later.run_key == "rolling-2026-03-13"
    assert version_of(run("rolling_set_job", later), rolling_set) == f"unchanged: rolling@{newest} exists"
    assert [v.version for v in list_versions(data_dir, "rolling")] == [newest]
