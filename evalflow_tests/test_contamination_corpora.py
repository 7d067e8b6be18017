"""Contamination: registered corpora (contamination.toml), reading JSONL / CSV / Parquet corpora,
the CLI's corpus specs, trace prompts as a corpus, the deterministic rewrites, and the tables."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import polars as pl
import pytest

from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.contamination import (
    CONFIG_ENV,
    ContaminationConfig,
    ContaminationConfigError,
    Corpus,
    check_cases,
    iter_documents,
    load_contamination_config,
    load_corpora_config,
    normalise,
    parse_corpus_spec,
    split_leaks,
    trace_prompt_documents,
)
from evalflow.lib.contamination.corpora import CorpusStats
from evalflow.lib.contamination.store import report_sha256, write_run
from evalflow.lib.contamination.variants import (
    embed_in_prompt,
    noisy_copy,
    paraphrase,
    paraphrase_code,
)

NOW = datetime(2026, 10, 5, 8, tzinfo=timezone.utc)
QUESTION = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. How much in dollars does she make every day at the market?")


@pytest.fixture(autouse=True)
def _no_config_override(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)


# ----------------------------------------------------------------------------- reading corpora
def test_jsonl_documents_take_their_fields_and_ids_and_count_bad_lines(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join([
        json.dumps({"task_id": "T/1", "prompt": "first prompt", "answer": "a1"}),
        "not json",
        json.dumps({"task_id": "T/2", "prompt": "", "answer": ""}),
        json.dumps(["a list"]),
        "",
        json.dumps({"task_id": "T/3", "prompt": "third", "answer": "a3"}),
    ]) + "\n")
    stats = CorpusStats()
    docs = list(iter_documents(Corpus("b", "public_benchmark", path, ("prompt",)), stats))
    assert docs == [("T/1", "first prompt"), ("T/3", "third")]
    assert (stats.documents, stats.skipped) == (2, 3)
    everything = list(iter_documents(Corpus("b", "public_benchmark", path)))
    assert everything[0] == ("T/1", "T/1\nfirst prompt\na1")  # no fields: every string field


def test_gzip_csv_and_parquet_corpora(tmp_path):
    gz = tmp_path / "docs.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps({"text": "gz doc"}) + "\n")
    assert list(iter_documents(Corpus("g", "training", gz))) == [("1", "gz doc")]
    csv = tmp_path / "prompts.csv"
    csv.write_text("name,text,other\nalpha,\"first, with comma\",x\nbeta,second,y\n")
    assert list(iter_documents(Corpus("c", "few_shot", csv, ("text",), id_field="name"))) == [
        ("alpha", "first, with comma"), ("beta", "second")]
    parquet = tmp_path / "sft.parquet"
    pl.DataFrame({"id": [10, 11], "prompt": ["p one", "p two"], "response": ["r one", None]}).write_parquet(parquet)
    assert list(iter_documents(Corpus("p", "fine_tuning", parquet, ("prompt", "response")))) == [
        ("10", "p one\nr one"), ("11", "p two")]


def test_an_unknown_format_and_a_broken_parquet_file_are_named(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(ContaminationConfigError, match="not a corpus format"):
        list(iter_documents(Corpus("n", "training", bad)))
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(ContaminationConfigError, match="not a readable Parquet"):
        list(iter_documents(Corpus("n", "training", broken)))


def test_corpus_specs_of_the_command_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n")
    assert parse_corpus_spec(f"gsm={path}") == Corpus("gsm", "training", path, ())
    assert parse_corpus_spec(f"gsm={path}:question").fields == ("question",)
    assert parse_corpus_spec(f"gsm={path}:prompt,response").fields == ("prompt", "response")
    odd = tmp_path / "with:colon.jsonl"
    odd.write_text("{}\n")
    assert parse_corpus_spec(f"odd={odd}").path == odd
    for bad in ("noequals", "=path", "bad name=x.jsonl"):
        with pytest.raises(ContaminationConfigError):
            parse_corpus_spec(bad)


def test_corpus_kinds_are_checked():
    with pytest.raises(ContaminationConfigError, match="kind"):
        Corpus("x", "secret_stash", documents=[])
    with pytest.raises(ContaminationConfigError, match="path or documents"):
        Corpus("x", "training")


# ----------------------------------------------------------------------------- contamination.toml
def test_registered_corpora_and_thresholds_come_from_the_toml_file(tmp_path):
    (tmp_path / "corpora").mkdir()
    (tmp_path / "corpora" / "sft.jsonl").write_text(json.dumps({"prompt": QUESTION}) + "\n")
    (tmp_path / "contamination.toml").write_text('''
[thresholds]
embedding_threshold = 0.91
ngram_threshold = 1

[[corpus]]
name = "sft-2026-09"
kind = "fine_tuning"
path = "corpora/sft.jsonl"
fields = ["prompt"]
''')
    corpora = load_corpora_config(tmp_path)
    assert corpora == [Corpus("sft-2026-09", "fine_tuning", tmp_path / "corpora" / "sft.jsonl", ("prompt",))]
    config = load_contamination_config(tmp_path)
    assert config.embedding_threshold == 0.91 and config.ngram_threshold == 1.0
    assert config.minhash_threshold == ContaminationConfig().minhash_threshold
    report = check_cases([{"case_id": "q", "text": QUESTION}], corpora, config=config)
    assert report["cases"][0]["matches"][0] == {"corpus": "sft-2026-09", "doc_id": "1", "method": "exact",
                                                "score": 1.0}


def test_no_file_means_no_corpora_and_the_defaults(tmp_path):
    assert load_corpora_config(tmp_path) == []
    assert load_contamination_config(tmp_path) == ContaminationConfig()


def test_the_environment_variable_points_at_another_file(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere" / "c.toml"
    other.parent.mkdir()
    (other.parent / "few.csv").write_text("text\nhello there\n")
    other.write_text('[[corpus]]\nname = "few"\nkind = "few_shot"\npath = "few.csv"\n')
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert [c.name for c in load_corpora_config(tmp_path / "data")] == ["few"]
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(ContaminationConfigError, match="does not exist"):
        load_corpora_config(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ('[[corpus]]\nname = "a"\nkind = "training"\npath = "missing.jsonl"\n', "no such file"),
    ('[[corpus]]\nname = "a"\nkind = "trace_prompts"\npath = "x.jsonl"\n', "kind"),
    ('[[corpus]]\nname = "a"\nkind = "training"\n', "path: required"),
    ('[[corpus]]\nname = "a"\nkind = "training"\npath = "x.jsonl"\ncolour = "red"\n', "unknown field"),
    ('[[corpus]]\nname = "a"\nkind = "training"\npath = "x.jsonl"\n[[corpus]]\nname = "a"\nkind = "training"\n'
     'path = "x.jsonl"\n', "registered twice"),
    ('[limits]\nx = 1\n', "unknown section"),
    ('[thresholds]\nembedding_threshold = "high"\n', "expected float"),
    ('[thresholds]\nngram_threshold = 0\n', "must be in"),
    ('[thresholds]\nspeed = 3\n', "not a setting"),
    ('[thresholds]\nnum_perm = 1\n', "num_perm must be at least 2"),
    ('[thresholds]\nseed = -1\n', "seed must be in"),
    ('[[corpus]]\nname = "a"\nkind = "training"\npath = "notes.txt"\n', "not a corpus format"),
    ('[[corpus]\n', "not valid TOML"),
])
def test_a_wrong_configuration_names_the_file_and_the_field(tmp_path, text, message):
    (tmp_path / "x.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "contamination.toml").write_text(text)
    loader = load_contamination_config if text.startswith("[thresholds]") else load_corpora_config
    with pytest.raises(ContaminationConfigError, match=message) as error:
        loader(tmp_path)
    assert "contamination.toml" in str(error.value)


def test_an_lsh_threshold_with_no_band_setting_is_a_configuration_error():
    with pytest.raises(ContaminationConfigError, match="lsh_threshold"):
        check_cases([{"case_id": "q", "text": QUESTION}], [], config=ContaminationConfig(lsh_threshold=1.0))


# ----------------------------------------------------------------------------- trace prompts
def test_system_prompts_and_named_few_shot_turns_of_traces_are_a_corpus():
    traces = [
        {"trace_id": "t1", "messages": [
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "name": "example_user", "content": QUESTION},
            {"role": "assistant", "name": "example_assistant", "content": "She makes $18."},
            {"role": "user", "content": "my own question"}]},
        {"trace_id": "t2", "messages": json.dumps([{"role": "system", "content": "You are a bank assistant."},
                                                   {"role": "developer", "content": "Answer briefly."}])},
        {"trace_id": "t3", "messages": "not json"},
    ]
    docs = list(trace_prompt_documents(traces))
    assert docs == [("t1#0", "You are a bank assistant."), ("t1#1", QUESTION), ("t1#2", "She makes $18."),
                    ("t2#1", "Answer briefly.")]
    report = check_cases([{"case_id": "q", "text": QUESTION}], [Corpus("traces", "trace_prompts", documents=docs)])
    assert report["cases"][0]["matches"][0]["doc_id"] == "t1#1"


# ----------------------------------------------------------------------------- rewrites
def test_rewrites_are_deterministic_and_keep_the_problem():
    text = "Janet buys 16 eggs for $2 each. How many eggs does Janet have in total?"
    once = paraphrase(text, seed=1)
    assert once == paraphrase(text, seed=1)
    assert once.startswith("What number of eggs does") and "Janet" not in once and "16" not in once
    names = paraphrase(text, rules=("names",))
    assert names.count(names.split()[0]) == 2  # the same new name both times
    assert paraphrase("It costs $80,000.", rules=("numbers",)) != "It costs $80,000."
    assert normalise(noisy_copy(QUESTION, seed=3)) == normalise(QUESTION)
    with pytest.raises(ValueError):
        paraphrase(text, rules=("shuffle",))


def test_code_paraphrase_renames_the_function_and_parameters_but_not_the_examples_text():
    prompt = ('def has_close_elements(numbers: list, threshold: float) -> bool:\n'
              '    """ Check if in given list of numbers, are any two numbers closer than threshold.\n'
              '    >>> has_close_elements([1.0, 2.0], 0.5)\n    False\n    """\n')
    out = paraphrase_code(prompt, "has_close_elements")
    assert "has_close_elements" not in out and "def has_near_items(values: list, limit: float)" in out
    assert ">>> has_near_items([1.0, 2.0], 0.5)" in out and "Determine if" in out


def test_a_few_shot_prompt_holds_the_item_among_the_others():
    prompt = embed_in_prompt(QUESTION, "18", [("q1", "a1"), ("q2", "a2"), ("q3", "a3")], seed=0)
    assert f"Question: {QUESTION}\nAnswer: 18" in prompt and prompt.count("Question:") == 4


# ----------------------------------------------------------------------------- tables
def _report():
    return check_cases([{"case_id": "q", "text": QUESTION}, {"case_id": "u", "text": "unrelated words here"}],
                       [Corpus("bench", "public_benchmark", documents=[("7", QUESTION)])])


def test_write_run_records_the_run_and_its_findings(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = _report()
    leaks = split_leaks({"holdout": [{"case_id": "h", "text": QUESTION}], "dev": [{"case_id": "d", "text": QUESTION}]})
    run = write_run(warehouse, report, leaks, run_id="run-1", checked_at=NOW)
    assert run["cases"] == 2 and run["contaminated"] == 1
    assert len(leaks) > 1 and run["split_leaks"] == 1  # one pair of cases, found by several methods
    rows = warehouse.query("SELECT * FROM contamination_findings ORDER BY corpus, method").to_dicts()
    corpus_rows = [r for r in rows if r["corpus_kind"] == "public_benchmark"]
    assert {r["method"] for r in corpus_rows} == {"exact", "ngram", "substring", "minhash"}
    assert all(r["case_id"] == "q" and r["doc_id"] == "7" and r["split"] is None for r in corpus_rows)
    leak_rows = [r for r in rows if r["corpus_kind"] == "dataset"]
    assert leak_rows and all((r["split"], r["case_id"], r["corpus"], r["doc_id"]) == ("holdout", "h", "dev", "d")
                             for r in leak_rows)
    stored = warehouse.query("SELECT * FROM contamination_runs").to_dicts()[0]
    assert json.loads(stored["by_corpus"]) == {"bench": 1} and stored["report_sha256"] == report_sha256(report)
    # no text of a case or a document is stored anywhere
    dump = json.dumps([rows, stored], default=str)
    assert "ducks" not in dump.lower()


def test_a_rerun_replaces_its_rows_and_a_failed_write_changes_nothing(tmp_path, monkeypatch):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = _report()
    write_run(warehouse, report, [], run_id="run-1", checked_at=NOW)
    before = warehouse.query("SELECT * FROM contamination_findings ORDER BY method").to_dicts()
    write_run(warehouse, report, [], run_id="run-1", checked_at=NOW)
    assert warehouse.query("SELECT * FROM contamination_findings ORDER BY method").to_dicts() == before
    write_run(warehouse, report, [], run_id="run-2", checked_at=NOW)
    assert warehouse.count("contamination_runs") == 2

    from evalflow.lib.common import catalog

    def boom(*_, **__):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(catalog, "apply_catalog", boom)
    with pytest.raises(RuntimeError):
        write_run(warehouse, _report(), [], run_id="run-1", checked_at=datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert warehouse.query("SELECT * FROM contamination_findings WHERE run_id = 'run-1' ORDER BY method"
                           ).to_dicts() == before
