"""The drift thresholds: documented defaults, a TOML file, two environment variables, and errors
that name the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from evalflow.lib.drift.config import DriftConfig, DriftConfigError, config_from_mapping, load_drift_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "drift.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("EVALFLOW_DRIFT_CONFIG", "EVALFLOW_DRIFT_SEED", "EVALFLOW_DRIFT_MIN_TRACES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_a_file(tmp_path):
    config = load_drift_config(tmp_path)
    assert config == DriftConfig()
    assert (config.inflation_gap, config.stall_pass_rate, config.stale_after_days) == (0.15, 0.90, 183)


def test_a_toml_file_overrides_at_top_level_or_under_drift(tmp_path):
    (tmp_path / "drift.toml").write_text("intent_js_floor = 0.01\n[drift]\ninflation_gap = 0.2\nretrieval_k = 10\n")
    config = load_drift_config(tmp_path)
    assert (config.intent_js_floor, config.inflation_gap, config.retrieval_k) == (0.01, 0.2, 10)
    assert config.min_traces == DriftConfig().min_traces


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.toml"
    other.write_text("seed = 3\nmin_traces = 50\n")
    monkeypatch.setenv("EVALFLOW_DRIFT_CONFIG", str(other))
    assert (load_drift_config(tmp_path).seed, load_drift_config(tmp_path).min_traces) == (3, 50)
    monkeypatch.setenv("EVALFLOW_DRIFT_SEED", "11")
    monkeypatch.setenv("EVALFLOW_DRIFT_MIN_TRACES", "500")
    assert (load_drift_config(tmp_path).seed, load_drift_config(tmp_path).min_traces) == (11, 500)


@pytest.mark.parametrize("text, message", [
    ("intent_js_flor = 0.01", "unknown key 'intent_js_flor'"),
    ("min_traces = 'many'", "min_traces must be a whole number"),
    ("inflation_gap = 1.5", "inflation_gap must be at least 0 and at most 1"),
    ("hash_new_share_warn = 0.5\nhash_new_share_error = 0.1", "hash_new_share_error must not be below"),
    ("embedding_permutations = 200", "embedding_permutations too few for embedding_alpha"),
    ("stale_share_warn = 0.8\nstale_share_error = 0.6", "stale_share_error must not be below stale_share_warn"),
    ("inflation_gap = 0.2\ninflation_gap_error = 0.1", "inflation_gap_error must not be below inflation_gap"),
    ("[drift]\nseed = 1.5", "seed must be a whole number"),
    ("this is not toml", "not TOML"),
])
def test_bad_values_name_the_key(tmp_path, text, message):
    (tmp_path / "drift.toml").write_text(text)
    with pytest.raises(DriftConfigError, match=re.escape(message)):
        load_drift_config(tmp_path)


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DRIFT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(DriftConfigError, match="does not exist"):
        load_drift_config(tmp_path)


def test_a_folder_where_the_file_should_be_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "drift.toml").mkdir()
    with pytest.raises(DriftConfigError, match="is not a file"):
        load_drift_config(tmp_path)
    monkeypatch.setenv("EVALFLOW_DRIFT_CONFIG", str(tmp_path))
    with pytest.raises(DriftConfigError, match="is not a file"):
        load_drift_config(tmp_path)


def test_a_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DRIFT_MIN_TRACES", "0")
    with pytest.raises(ValueError, match="EVALFLOW_DRIFT_MIN_TRACES"):
        load_drift_config(tmp_path)


def test_every_key_and_its_default_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for field in dataclasses.fields(DriftConfig):
        row = re.search(rf"^\| `{field.name}` \| `([^`]*)` \|", text, flags=re.M)
        assert row, f"docs/drift.md has no row for {field.name}"
        assert config_from_mapping({field.name: type(field.default)(eval(row[1]))}) == DriftConfig(), field.name
