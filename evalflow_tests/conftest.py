"""Shared test setup."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_model_dir(tmp_path_factory):
    """One ONNX export per test session, not one per test's data folder (it takes seconds)."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_MODEL_DIR", str(path))
        yield path
