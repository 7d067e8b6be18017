"""`evalflow contamination`: files in, the report out, exit 0 with findings; 1 for a mistake the
user can fix, 2 for a malformed call. One run loads the real embedder (the packaged MiniLM, offline)."""

from __future__ import annotations

import json

import pytest

from evalflow.cli import EXIT_USAGE, EXIT_USER_ERROR, main
from evalflow.lib.contamination import CONFIG_ENV

QUESTION = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. How much in dollars does she make every day at the market?")
OTHER = "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?"
PARAPHRASE = ("How much in dollars does she make daily at the market? Janet's ducks lay 16 eggs each day. She "
              "eats three for breakfast each morning and bakes muffins for her pals daily with four.")


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"case_id": "copied", "text": QUESTION.upper()},
        {"case_id": "inside", "text": OTHER},
        {"case_id": "clean", "text": "Where can I see the exchange rate for euros in the app?"},
        {"case_id": "paraphrased", "text": PARAPHRASE},
    ]) + "\n\n")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"task_id": "B/1", "question": QUESTION, "answer": "18"}) + "\n")
    prompts = tmp_path / "prompts.csv"
    prompts.write_text('id,text\np1,"Solve step by step.\n\nQuestion: ' + OTHER + '\nAnswer: 3"\n')
    return tmp_path, cases, bench, prompts


def test_findings_exit_0_and_the_report_has_one_object_per_case(files, capsys):
    tmp_path, cases, bench, prompts = files
    out = tmp_path / "out" / "report.json"
    code = main(["contamination", "--cases", str(cases), "--corpus", f"bench={bench}:question",
                 "--corpus", f"fewshot={prompts}:text", "--kind", "fewshot=few_shot",
                 "--kind", "bench=public_benchmark", "--no-embed", "-o", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert [c["case_id"] for c in report["cases"]] == ["copied", "inside", "clean", "paraphrased"]
    by_id = {c["case_id"]: c for c in report["cases"]}
    assert by_id["copied"]["matches"][0] == {"corpus": "bench", "doc_id": "B/1", "method": "exact", "score": 1.0}
    assert {m["corpus"] for m in by_id["inside"]["matches"]} == {"fewshot"}
    assert not by_id["clean"]["contaminated"]
    assert by_id["paraphrased"]["methods"]["embedding"]["skipped"] == "no embedder"
    assert [(c["name"], c["kind"]) for c in report["summary"]["corpora"]] == [
        ("bench", "public_benchmark"), ("fewshot", "few_shot")]
    printed = capsys.readouterr().out
    assert "cases found in a corpus" in printed and "copied: exact 1.000 in bench doc B/1" in printed
    assert not list(out.parent.glob("*.tmp"))


def test_the_default_run_embeds_with_the_pipelines_model_and_finds_the_paraphrase(files):
    tmp_path, cases, bench, _ = files
    out = tmp_path / "report.json"
    assert main(["contamination", "--cases", str(cases), "--corpus", f"bench={bench}:question", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["summary"]["embedder"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    by_id = {c["case_id"]: c for c in report["cases"]}
    assert by_id["paraphrased"]["methods"]["embedding"]["hit"]
    assert by_id["paraphrased"]["contaminated"] and not by_id["clean"]["contaminated"]
    assert by_id["clean"]["methods"]["embedding"]["score"] < 0.5


def test_registered_corpora_come_from_the_data_folder(files):
    tmp_path, cases, bench, _ = files
    data = tmp_path / "data"
    data.mkdir()
    (data / "contamination.toml").write_text(
        f'[[corpus]]\nname = "bench"\nkind = "public_benchmark"\npath = "{bench}"\nfields = ["question"]\n')
    out = tmp_path / "report.json"
    assert main(["contamination", "--cases", str(cases), "--registered", "--no-embed", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["by_corpus"] == {"bench": 2}  # the copy and the paraphrase


@pytest.mark.parametrize("problem", ["missing cases", "bad json", "no case id", "duplicate id", "empty cases",
                                     "missing corpus", "no corpus", "kind without corpus", "unknown format",
                                     "bad toml", "clash"])
def test_user_mistakes_exit_1_with_one_line(files, capsys, problem):
    tmp_path, cases, bench, _ = files
    args = ["contamination", "--cases", str(cases), "--corpus", f"bench={bench}", "--no-embed",
            "-o", str(tmp_path / "r.json")]
    if problem == "missing cases":
        args[2] = str(tmp_path / "nope.jsonl")
    elif problem in ("bad json", "no case id", "duplicate id", "empty cases"):
        content = {"bad json": "{oops\n", "no case id": '{"text": "x"}\n',
                   "duplicate id": '{"case_id": "a", "text": "x"}\n{"case_id": "a", "text": "y"}\n',
                   "empty cases": "\n"}[problem]
        cases.write_text(content)
    elif problem == "missing corpus":
        args[4] = f"bench={tmp_path / 'gone.jsonl'}"
    elif problem == "no corpus":
        args[3:5] = []
    elif problem == "kind without corpus":
        args += ["--kind", "other=training"]
    elif problem == "unknown format":
        notes = tmp_path / "notes.txt"
        notes.write_text("hello")
        args[4] = f"notes={notes}"
    elif problem == "bad toml":
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "contamination.toml").write_text("[thresholds\n")
    elif problem == "clash":
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "contamination.toml").write_text(
            f'[[corpus]]\nname = "bench"\nkind = "training"\npath = "{bench}"\n')
        args.append("--registered")
    assert main(args) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("evalflow: error:") and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("args", [
    ["--corpus", "justaname"],
    ["--corpus", "a=b.jsonl", "--kind", "a=secret"],
    ["--corpus", "a=b.jsonl"],  # no -o
])
def test_malformed_calls_exit_2(files, args, capsys):
    _, cases, _, _ = files
    full = ["contamination", "--cases", str(cases), *args]
    if "-o" not in args and args != ["--corpus", "a=b.jsonl"]:
        full += ["-o", "r.json"]
    with pytest.raises(SystemExit) as exit_info:
        main(full)
    assert exit_info.value.code == EXIT_USAGE
