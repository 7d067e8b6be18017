"""Shared test setup."""

import os
from pathlib import Path

import pytest

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
