"""`evalflow run` launches named jobs, one per phase, whose selections are exactly the phases."""

from __future__ import annotations

from evalflow.cli.runner import _load_definitions, _phases
from evalflow.defs.pipeline_jobs import PHASE_JOBS


def test_each_phase_has_a_named_job_with_exactly_its_assets():
    definitions = _load_definitions()
    for name, assets, _partitioned in _phases(definitions):
        job = definitions.resolve_job_def(PHASE_JOBS[name])
        in_job = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
        in_phase = {key.to_user_string() for asset in assets for key in asset.keys}
        assert in_job == in_phase, name


def test_the_daily_job_is_partitioned_like_the_daily_assets():
    definitions = _load_definitions()
    job = definitions.resolve_job_def(PHASE_JOBS["daily partitions"])
    assert job.partitions_def is not None and job.partitions_def.get_partition_keys()
