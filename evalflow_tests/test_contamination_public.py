"""The contamination check on public data (../shared/data: GSM8K test, HumanEval, Banking77,
SNIPS), a sample of the set benchmarks/contamination.py measures in full, with the default
thresholds and the real embedder: the issue's targets must hold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalflow.lib.contamination import check_cases

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.shared_data("benchmarks/gsm8k_test.jsonl", "benchmarks/HumanEval.jsonl.gz",
                                     "intents/banking77/test.csv", "intents/snips")


def _benchmark():
    spec = importlib.util.spec_from_file_location("contamination_benchmark", ROOT / "benchmarks" / "contamination.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def measured():
    from evalflow.lib.intents.embed import Embedder, EmbedderConfig

    bench = _benchmark()
    cases, corpora = bench.build_quality_set(sample=0.15)
    report = check_cases(cases, corpora, embedder=Embedder(EmbedderConfig(backend="auto")))
    flagged = {r["case_id"]: r["contaminated"] for r in report["cases"]}
    return cases, flagged, report


def _rate(cases, flagged, roles):
    group = [c for c in cases if c["role"] in roles]
    assert len(group) >= 30, f"too few {roles} cases in the sample to measure"
    return sum(flagged[c["case_id"]] for c in group) / len(group)


def test_verbatim_and_embedded_copies_are_found(measured):
    cases, flagged, _ = measured
    assert _rate(cases, flagged, {"verbatim", "embedded"}) >= 0.95


def test_paraphrases_are_found(measured):
    cases, flagged, _ = measured
    assert _rate(cases, flagged, {"paraphrase"}) >= 0.80


def test_unrelated_user_text_is_rarely_flagged(measured):
    cases, flagged, _ = measured
    assert _rate(cases, flagged, {"unrelated"}) <= 0.02
    assert _rate(cases, flagged, {"unseen"}) <= 0.05  # same-domain items in no corpus


def test_a_case_inside_a_few_shot_prompt_is_found_in_that_prompt(measured):
    cases, _, report = measured
    embedded = {c["case_id"] for c in cases if c["role"] == "embedded"}
    for result in report["cases"]:
        if result["case_id"] in embedded and result["contaminated"]:
            assert any(m["corpus"] == "fewshot" and m["doc_id"] == f"prompt-{result['case_id']}"
                       for m in result["matches"])
