"""Shared test setup."""

import os
import tempfile
from pathlib import Path

import pytest

# Tests never read or write the checkout's own data folder: after `python3 quickstart.py demo`,
# ./data records the demo's first day, and the daily partitions (built when evalflow.defs is
# imported) would start there instead of where each test's data starts. Tests that need a data
# folder or a partitions start set their own.
os.environ["EVALFLOW_DATA_DIR"] = tempfile.mkdtemp(prefix="evalflow-tests-data-")
os.environ.pop("EVALFLOW_PARTITIONS_START", None)

# Third-party data (Langfuse's framework traces, LangSmith and OpenInference fixtures, Banking77)
# lives beside the checkout in <repo>/../shared/data, never in the repository (see its README).
# A test that reads it carries ``@pytest.mark.shared_data("<path under shared/data>")``: it skips
# with the path it looked for when that path is absent, and fails instead when
# EVALFLOW_REQUIRE_SHARED_DATA=1 (.ci/run sets it), so a CI checkout without ../shared cannot pass
# by skipping them. The behaviours those tests check are also covered by the project's own
# fixtures in evalflow_tests/fixtures, which every checkout has.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_SHARED_DATA = "EVALFLOW_REQUIRE_SHARED_DATA"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "shared_data(path): needs <repo>/../shared/data/<path>; skips when it is absent, fails "
        f"instead when {REQUIRE_SHARED_DATA}=1",
    )


def shared_data_required() -> bool:
    return os.environ.get(REQUIRE_SHARED_DATA, "").strip().lower() in ("1", "true", "yes")


def missing_shared_data(item) -> Path | None:
    """The first path a test's shared_data markers name that is not there, else None."""
    for marker in item.iter_markers(name="shared_data"):
        for relative in marker.args:
            if not (SHARED_DATA / relative).exists():
                return SHARED_DATA / relative
    return None


def pytest_collection_modifyitems(config, items):
    if shared_data_required():
        return
    for item in items:
        missing = missing_shared_data(item)
        if missing is not None:  # a skip mark, so the report names the test, not this file
            item.add_marker(pytest.mark.skip(reason=f"third-party data not found at {missing}"),
                            append=False)


@pytest.hookimpl(tryfirst=True)  # in the call phase, so it reports as a failed test
def pytest_runtest_call(item):
    if not shared_data_required():
        return
    missing = missing_shared_data(item)
    if missing is not None:
        pytest.fail(f"third-party data not found at {missing}; {REQUIRE_SHARED_DATA}=1 makes its "
                    f"absence a failure (put the shared data at {SHARED_DATA}, or unset "
                    f"{REQUIRE_SHARED_DATA} to skip these tests)", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def shared_model_dir(tmp_path_factory):
    """One ONNX export per test session, not one per test's data folder (it takes seconds)."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_MODEL_DIR", str(path))
        yield path


# One small materialized demo for the tests that need the whole pipeline run by the real command
# (the kill drills compare with it, the browser test serves it): built once per session, never
# written by a test (each copies it first). 2 days x 60 traces, seed 7: its intent catalog shows a
# <PERSON> placeholder, which the browser test looks for. Its instance sends runs launched from
# the UI straight to a subprocess (no daemon, no queue), with the warehouse pool's one writer.
SMALL_DEMO_ARGS = ("--days", "2", "--per-day", "60", "--seed", "7")
SMALL_DEMO_DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
run_launcher:
  module: dagster._core.launcher
  class: DefaultRunLauncher
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def small_demo_env(root: Path) -> dict[str, str]:
    return dict(os.environ, EVALFLOW_DATA_DIR=str(root / "data"), DAGSTER_HOME=str(root / "dagster_home"),
                # 10 planted bad lines in 120 traces: above the 1% default, on purpose.
                EVALFLOW_REJECT_RATE_THRESHOLD="0.5", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                GX_ANALYTICS_ENABLED="false")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """<root>/data (landing, ground truth, stores) and <root>/dagster_home of `evalflow demo`."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("small-demo")
    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text(SMALL_DEMO_DAGSTER_YAML)
    done = subprocess.run([sys.executable, "-m", "evalflow.cli", "demo", *SMALL_DEMO_ARGS],
                          env=small_demo_env(root), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return root
