"""`evalflow judge calibrate` on files, against the simulated judge server on 127.0.0.1.

Called through the module's configure/run (the integrator wires it into `evalflow`)."""

from __future__ import annotations

import argparse
import csv
import json
import random

import pytest

from evalflow.cli import UserError
from evalflow.cli.judge import configure, run
from evalflow.lib.judge.cases import case_split, is_holdout
from evalflow.lib.judge.prompts import DEFAULTS_DIR, default_template
from evalflow.simulator.judge_server import SIMULATED_MODEL, SimulatedJudgeServer

DIM = "groundedness"
N_CASES = 260


def build_files(folder):
    """cases.jsonl and labels.csv: three annotators; A and B always give the truth, C is wrong on
    one case in eight; ten extra cases have two annotators who disagree (a tie: no consensus)."""
    rng = random.Random(17)
    truth, rows, cases = {}, [], []
    for n in range(N_CASES + 10):
        case_id = f"gc-{n:04d}"
        verdict = "Fail" if rng.random() < 0.3 else "Pass"
        cases.append({"case_id": case_id, "input": {"user_query": f"what is the fee {n}?"},
                      "output": f"The fee is {n} dollars.", "expected_behavior": ["cite the fee document"]})
        if n >= N_CASES:
            rows += [(case_id, "ann-a", DIM, "Pass"), (case_id, "ann-b", DIM, "fail")]
            continue
        truth[case_id] = verdict
        wrong = "Pass" if verdict == "Fail" else "Fail"
        rows += [(case_id, "ann-a", DIM, verdict), (case_id, "ann-b", DIM, verdict.lower()),
                 (case_id, "ann-c", DIM, wrong if n % 8 == 0 else verdict), (case_id, "ann-a", "safety", "Pass")]
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "annotator", "dimension", "value"])
        writer.writerows(rows)
    return truth


def parse(argv):
    parser = argparse.ArgumentParser(prog="evalflow judge")
    configure(parser)
    return parser.parse_args(argv)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EVALFLOW_JUDGE_PROMPTS_DIR", raising=False)
    monkeypatch.delenv("EVALFLOW_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv("EVALFLOW_JUDGE_MODEL", SIMULATED_MODEL)
    truth = build_files(tmp_path)
    return tmp_path, truth


def calibrate_args(tmp_path, *extra):
    return parse(["calibrate", "--cases", str(tmp_path / "cases.jsonl"), "--labels", str(tmp_path / "labels.csv"),
                  "--dimension", DIM, "-o", str(tmp_path / "report.json"), *extra])


def test_calibrate_writes_the_report_with_the_servers_figures_and_never_sends_holdout(env, monkeypatch, capsys):
    tmp_path, truth = env
    with SimulatedJudgeServer(truth={c: {DIM: v} for c, v in truth.items()}, error_rates={DIM: 0.05},
                              malformed_rate=0.04, transient_error_rate=0.1, seed=21) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        assert run(calibrate_args(tmp_path)) == 0
        out = capsys.readouterr().out
        sent = server.request_count
        seen = server.case_ids_seen
        assert run(calibrate_args(tmp_path)) == 0  # a re-run: everything comes from the cache
        assert server.request_count == sent
    report = json.loads((tmp_path / "report.json").read_text())
    judged = [c for c in truth if not is_holdout(c)]
    assert seen == set(judged)  # neither holdout cases nor the tied ones reached the judge
    assert report["usage"]["requests_sent"] == 0 and report["usage"]["cache_hits"] == len(judged)

    assert (report["dimension"], report["model"], report["prompt_sha256"]) == (
        DIM, SIMULATED_MODEL, default_template(DIM).sha256)
    expected_cases = [{"case_id": c, "split": case_split(c), "human": truth[c],
                       "judge": None if is_holdout(c) else server.expected_reply(c, DIM).verdict}
                      for c in sorted(truth)]
    assert [{k: row[k] for k in ("case_id", "split", "human", "judge")} for row in report["cases"]] == expected_cases
    for part in ("tune", "test"):
        pairs = [(c["human"], c["judge"]) for c in expected_cases if c["split"] == part]
        scored = [(h, j) for h, j in pairs if j is not None]
        confusion = {"tp": scored.count(("Fail", "Fail")), "fn": scored.count(("Fail", "Pass")),
                     "fp": scored.count(("Pass", "Fail")), "tn": scored.count(("Pass", "Pass"))}
        assert report[part]["confusion"] == confusion
        assert report[part]["n"] == len(scored)
        assert report[part]["agreement"] == (confusion["tp"] + confusion["tn"]) / len(scored)
        assert report[part]["tpr"] == confusion["tp"] / (confusion["tp"] + confusion["fn"])
        assert report[part]["tnr"] == confusion["tn"] / (confusion["tn"] + confusion["fp"])
        assert set(report[part]) >= {"n", "agreement", "kappa", "tpr", "tnr", "confusion"}
    assert report["unparseable"] == sum(c["judge"] is None and c["split"] != "holdout" for c in expected_cases) > 0
    # verbosity bias: agreement on the shorter and the longer half of the judged cases, side by side
    judged_n = sum(c["judge"] is not None for c in expected_cases)
    halves = report["verbosity"]
    assert halves["shorter_half"]["n"] + halves["longer_half"]["n"] == judged_n
    assert halves["shorter_half"]["n"] == judged_n // 2
    # the annotators agree (gate computed open), the judge is good: calibrated
    assert report["human_gate"]["open"] is True and report["calibrated"] is True
    assert "calibrated: yes" in out and "holdout:" in out and "none sent to the judge" in out
    # the default templates were seeded into the user's prompt folder
    seeded = tmp_path / "data" / "judge" / "prompts"
    assert sorted(p.name for p in seeded.glob("*.md")) == sorted(p.name for p in DEFAULTS_DIR.glob("*.md"))
    assert (tmp_path / "data" / "judge" / "cache.duckdb").is_file()


def test_prompt_files_are_the_variants(env, monkeypatch):
    tmp_path, truth = env
    base = default_template(DIM).text
    (tmp_path / f"{DIM}.md").write_text(base)
    (tmp_path / f"{DIM}.hasty.md").write_text(base + "\nHASTY: decide quickly.\n")
    with SimulatedJudgeServer(truth={c: {DIM: v} for c, v in truth.items()},
                              error_rates={DIM: {"HASTY": 0.4, "": 0.02}}, seed=2) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        run(calibrate_args(tmp_path, "--prompt", str(tmp_path / f"{DIM}.hasty.md"), "--prompt",
                           str(tmp_path / f"{DIM}.md"), "--cache", str(tmp_path / "c.duckdb")))
        hasty_cases = {r["case_id"] for r in server.requests if r["variant"] == "HASTY"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["variant"] == "default"
    assert [v["variant"] for v in report["variants"]] == ["hasty", "default"]
    assert hasty_cases == {c for c in truth if case_split(c) == "tune"}
    assert not (tmp_path / "data" / "judge" / "cache.duckdb").exists() and (tmp_path / "c.duckdb").is_file()


def test_an_uncomputed_gate_is_taken_as_open_with_a_warning_and_closed_means_not_calibrated(env, monkeypatch, capsys):
    tmp_path, truth = env
    with SimulatedJudgeServer(truth={c: {DIM: v} for c, v in truth.items()}, seed=2) as server:
        monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", server.base_url)
        run(calibrate_args(tmp_path, "--human-gate", "open"))
        err = capsys.readouterr().err
        opened = json.loads((tmp_path / "report.json").read_text())
        run(calibrate_args(tmp_path, "--human-gate", "closed"))
        closed = json.loads((tmp_path / "report.json").read_text())
    assert "warning: the human agreement gate of groundedness was not computed; taken as open" in err
    assert opened["calibrated"] is True
    assert closed["calibrated"] is False and "the human agreement gate is closed" in closed["shortfalls"]


@pytest.mark.parametrize("missing", ["EVALFLOW_JUDGE_BASE_URL", "EVALFLOW_JUDGE_MODEL"])
def test_a_missing_endpoint_setting_is_a_user_error_naming_it(env, monkeypatch, missing):
    tmp_path, _ = env
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv(missing)
    with pytest.raises(UserError, match=f"{missing} is not set"):
        run(calibrate_args(tmp_path))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.write_text(p.read_text().replace(",fail\n", ",maybe\n", 1)), "must be Pass or Fail; found 'maybe'"),
    (lambda p: p.write_text("item,who,dim,value\n"), "the header must name the columns"),
])
def test_bad_labels_are_user_errors(env, monkeypatch, edit, message):
    tmp_path, _ = env
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    edit(tmp_path / "labels.csv")
    with pytest.raises(UserError, match=message):
        run(calibrate_args(tmp_path))


def test_a_dimension_without_labels_or_a_usable_template_is_a_user_error(env, monkeypatch):
    tmp_path, _ = env
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(UserError, match="no ratings of dimension 'tone' \\(it has: groundedness, safety\\)"):
        run(parse(["calibrate", "--cases", str(tmp_path / "cases.jsonl"), "--labels", str(tmp_path / "labels.csv"),
                   "--dimension", "tone", "-o", str(tmp_path / "r.json")]))
    with pytest.raises(UserError, match="safety.md: the template must contain the line 'Case id: {case_id}'"):
        (tmp_path / "prompts").mkdir()
        monkeypatch.setenv("EVALFLOW_JUDGE_PROMPTS_DIR", str(tmp_path / "prompts"))
        (tmp_path / "prompts" / "safety.md").write_text("not a template")
        run(parse(["calibrate", "--cases", str(tmp_path / "cases.jsonl"), "--labels", str(tmp_path / "labels.csv"),
                   "--dimension", "safety", "-o", str(tmp_path / "r.json")]))


def test_bad_cases_are_user_errors_naming_the_line(env, monkeypatch):
    tmp_path, _ = env
    monkeypatch.setenv("EVALFLOW_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(cases.read_text() + "{not json\n")
    with pytest.raises(UserError, match=f"line {N_CASES + 11}: not JSON"):
        run(calibrate_args(tmp_path))
    lines = cases.read_text().splitlines()[:2]
    cases.write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(UserError, match="line 2: case gc-0000 appears twice"):
        run(calibrate_args(tmp_path))
