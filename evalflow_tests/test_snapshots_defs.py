"""golden_set / rolling_set assets and `evalflow snapshot` over them: a promotion file becomes
golden@v1, the launchpad config golden@v2, the rolling set leaves the golden traces out, and the
CLI lists, shows, diffs, verifies and exports them; a pin that does not exist is an error."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from evalflow.cli import main
from evalflow.defs.resources import WarehouseResource
from evalflow.defs.snapshots.assets import golden_set, rolling_set
from evalflow.lib.common.clock import utcnow
from evalflow.lib.common.settings import load_settings
from evalflow.lib.eval_cases.store import replace_eval_cases
from evalflow.lib.redact.store import analyst_warehouse
from evalflow.lib.snapshots import promotion_to_toml
from evalflow.lib.snapshots.store import list_versions, read_cases
from evalflow_tests.test_snapshots import pool, promo


def _materialize(asset, config: dict | None = None):
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    result = dg.materialize([asset], resources={"warehouse": WarehouseResource()}, run_config=run_config)
    assert result.success
    return result.asset_materializations_for_node(asset.op.name)[0].metadata


@pytest.fixture
def cases(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    cases = pool(40)
    replace_eval_cases(analyst_warehouse(load_settings()), cases, utcnow())
    return cases


def test_promotions_publish_golden_versions_and_the_cli_reads_them(cases, capsys, tmp_path):
    data_dir = load_settings().data_dir
    assert _materialize(golden_set)["version"].value.startswith("unchanged")
    first = [c["case_id"] for c in cases[:20]]
    (data_dir / "promotions").mkdir()
    (data_dir / "promotions" / "0001-first.toml").write_text(promotion_to_toml(promo(add=first)))
    assert _materialize(golden_set)["version"].value == "golden@v1"
    assert _materialize(golden_set)["version"].value.startswith("unchanged")  # a file is applied once
    # The version records the production traffic it was drawn from (here none: no traces), over
    # its cases' source dates, for the drift report to compare with.
    from evalflow.lib.snapshots import store

    with store.reading(data_dir) as reader:
        baseline = reader.manifest(store.DatasetRef("golden", "v1"))["production_baseline"]
    dates = sorted(c["source_date"] for c in cases[:20])
    assert baseline["window"] == {"start": dates[0], "end": dates[-1]}
    assert baseline["traces"] == 0 and set(baseline["retrieval"]["top_k"]) == set(first)
    relabel = {"case_id": first[0], "dimension": "accuracy", "verdict": "Fail", "reason": "wrong fee"}
    second = _materialize(golden_set, {"message": "relabel one", "author": "reviewer_b", "relabel": [relabel]})
    assert second["version"].value == "golden@v2"
    v2 = {c["case_id"]: c for c in read_cases(data_dir, "golden@v2")}
    assert v2[first[0]]["labels"]["accuracy"]["verdict"] == "Fail" and len(v2) == 20
    assert {c["split"] for c in v2.values()} == {c["split"] for c in cases[:20]}

    rolling = _materialize(rolling_set, {"size": 10})
    ref = rolling["version"].value
    rolled = read_cases(data_dir, ref)
    assert len(rolled) == 10 and not {c["case_id"] for c in rolled} & set(first)

    assert main(["snapshot", "list"]) == 0
    listed = capsys.readouterr().out
    assert "golden@v1" in listed and "golden@v2" in listed and ref in listed
    assert main(["snapshot", "verify", "golden@v2"]) == 0
    assert main(["snapshot", "diff", "golden@v1", "golden@v2"]) == 0
    assert first[0] in capsys.readouterr().out
    assert main(["snapshot", "export", "golden@v2", "-o", str(tmp_path / "out"), "--dev"]) == 0
    exported = (tmp_path / "out" / "golden" / "v2" / "dev.jsonl").read_text().splitlines()
    assert exported and all(json.loads(line)["split"] == "dev" for line in exported)
    assert main(["snapshot", "verify", "golden@v9"]) == 1  # never a fallback to another version
    assert "golden@v9" in capsys.readouterr().err
    assert [v.version for v in list_versions(data_dir, "golden")] == ["v1", "v2"]
