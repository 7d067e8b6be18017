"""The pytest plugin (evalflow/pytest_plugin.py): a pinned version's cases as test items in a
user's test session, run with pytester against a version published in a lake in tmp_path."""

from __future__ import annotations

import json
import os
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from evalflow.lib.common.lake import lake_transaction
from evalflow_tests.test_gate import cid, gate_cases, passing_responses, publish_fixture

pytest_plugins = ["pytester"]

PLUGIN = "evalflow.pytest_plugin"
ROOT = Path(__file__).resolve().parents[1]


def installed() -> bool:
    return any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))


def plugin_args() -> list[str]:
    """In-process runs: the entry point loads the plugin where the package is installed with it
    (and entry points are loaded); elsewhere (a checkout installed before the entry point existed)
    -p loads the same module."""
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    return [] if installed() and autoload else ["-p", PLUGIN]


@pytest.fixture
def version(tmp_path_factory):
    data = tmp_path_factory.mktemp("lake") / "data"
    publish_fixture(data)
    return data


@pytest.fixture
def user_repo(pytester):
    pytester.makeini("[pytest]\n")  # the rootdir is the repository, as in a user's repo with a config
    pytester.makepyfile(test_own="def test_the_repos_own_test():\n    assert True\n")
    return pytester


def responses_file(pytester, responses: dict) -> str:
    path = pytester.path / "responses.jsonl"
    path.write_text("".join(json.dumps({"case_id": k, "output": v}) + "\n" for k, v in responses.items()))
    return str(path)


def run(pytester, data: Path, responses: dict | None, *extra: str, snapshot: str = "golden@v1"):
    args = [*plugin_args(), "--evalflow-snapshot", snapshot, "--evalflow-data-dir", str(data), "-p", "no:cacheprovider"]
    if responses is not None:
        args += ["--evalflow-responses", responses_file(pytester, responses)]
    return pytester.runpytest(*args, *extra)


def intent_of(n: int) -> str:
    return gate_cases()[n]["intent_name"]


def test_the_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {"evalflow": PLUGIN}


def test_each_case_is_a_test_item_with_a_readable_id_beside_the_repos_own_tests(version, user_repo):
    result = run(user_repo, version, passing_responses(), "-v", "-rs")
    result.assert_outcomes(passed=8, skipped=1)  # 7 cases with checks + the repo's own test; 1 without a check
    for n in range(8):
        result.stdout.fnmatch_lines([f"evalflow::golden@v1::{intent_of(n)}/{cid(n)} *"])
    result.stdout.fnmatch_lines(["*collected 9 items", "*= evalflow =*",
                                 "golden@v1: 8 cases; pass rate 1.000 overall, 1.000 dev, 1.000 holdout (checks only)",
                                 "gate passed: pass rate 1.000 >= 0.800*",
                                 "SKIPPED*no deterministic check*"])
    assert result.ret == 0


def test_a_failed_case_names_its_failed_checks_and_a_missing_answer_fails(version, user_repo):
    responses = passing_responses()
    responses[cid(1)] = "Within 14 days."
    del responses[cid(3)]
    result = run(user_repo, version, responses)
    result.assert_outcomes(passed=6, failed=2, skipped=1)
    result.stdout.fnmatch_lines([f"*{intent_of(1)}/{cid(1)} failed:",
                                 "*check refund_days (numeric_tolerance): read 14, expected 30*",
                                 f"*{intent_of(3)}/{cid(3)} failed:", "*no response for this case",
                                 f"gate failed: 1 response(s) missing ({cid(3)})*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_holdout_and_safety_cases_are_marked(version, user_repo):
    holdout = run(user_repo, version, passing_responses(), "-m", "evalflow_holdout", "--collect-only", "-q")
    ids = [line for line in holdout.stdout.lines if line.startswith("evalflow::")]
    assert sorted(i.split("/")[-1] for i in ids) == sorted(cid(n) for n in (2, 6, 7))
    holdout.stdout.fnmatch_lines(["3/9 tests collected (6 deselected)*"])
    dev = run(user_repo, version, passing_responses(), "-m", "not evalflow_holdout and not evalflow_safety",
              "--collect-only", "-q")
    assert sorted(line.split("/")[-1] for line in dev.stdout.lines if line.startswith("evalflow::")) == sorted(
        cid(n) for n in (0, 1, 3, 4, 5))
    safety = run(user_repo, version, passing_responses(), "-m", "evalflow_safety", "--strict-markers")
    safety.assert_outcomes(passed=2)


def test_a_bad_pin_stops_the_session_with_a_usage_error(version, user_repo):
    result = run(user_repo, version, passing_responses(), snapshot="golden@v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*evalflow: golden@v2 does not exist (published: golden@v1)*"])
    with lake_transaction(version) as con:
        con.execute("UPDATE lake.main.dataset_cases SET case_json = replace(case_json, '30', '31')")
    result = run(user_repo, version, passing_responses())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*evalflow: golden@v1 does not verify*"])
    result = run(user_repo, version, None)  # a snapshot without responses
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--evalflow-snapshot and --evalflow-responses go together*"])


def test_without_the_options_the_plugin_adds_nothing(user_repo):
    result = user_repo.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["collected 1 item"])
    assert "evalflow::" not in result.stdout.str() and "= evalflow =" not in result.stdout.str()
    assert "--evalflow-snapshot" in user_repo.runpytest(*plugin_args(), "--help").stdout.str()  # it is loaded


def test_the_entry_point_loads_the_plugin_in_a_fresh_pytest_process(version, user_repo, monkeypatch):
    """A real `pytest` process finds the plugin through its pytest11 entry point alone (no -p):
    when the installed package predates the entry point, a dist-info naming it is put on the path."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    if not installed():
        dist = user_repo.path / "site" / "evalflow_plugin_entry-0.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalflow-plugin-entry\nVersion: 0\n")
        (dist / "entry_points.txt").write_text(f"[pytest11]\nevalflow = {PLUGIN}\n")
        monkeypatch.setenv("PYTHONPATH", str(dist.parent))
    responses = passing_responses()
    responses[cid(7)] = "Card number accepted, fee waived."
    result = user_repo.runpytest_subprocess(
        "--evalflow-snapshot", "golden@v1", "--evalflow-responses", responses_file(user_repo, responses),
        "--evalflow-data-dir", str(version), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{intent_of(7)}/{cid(7)} failed:", "gate failed: 1 safety case(s) failed*"])
