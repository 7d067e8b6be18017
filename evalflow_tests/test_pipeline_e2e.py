"""End to end as a user runs it: `evalflow demo` (simulate, then run) on a folder of their
choice, then the warehouse is checked against the simulator's ground truth."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import duckdb
import pytest

from evalflow import cli
from evalflow.lib.ingest import reasons


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
        # 10 planted bad lines in 360 traces is 3%: above the 1% default, which the demo's
        # 30,000 traces stay under. The check itself is tested in test_ingest_defs.
        patch.setenv("EVALFLOW_REJECT_RATE_THRESHOLD", "0.05")
        patch.setenv("DAGSTER_HOME", str(data_dir.parent / "dagster_home"))
        (data_dir.parent / "dagster_home").mkdir()
        # Nine days: the labelled cases older than the last seven become golden@v1, so the
        # printout reaches the CI gate (see test_the_demo_printout_shows_the_whole_loop).
        printout = io.StringIO()
        with contextlib.redirect_stdout(printout):
            assert cli.main(["demo", "--days", "9", "--per-day", "40", "--seed", "5",
                             "--start-date", "2026-10-01"]) == 0
        (data_dir.parent / "demo_stdout.txt").write_text(printout.getvalue())
        # A second run over the same landing folder must change nothing.
        assert cli.main(["run"]) == 0
    return data_dir


def query(data_dir: Path, sql: str, store: str = "warehouse/evalflow.duckdb"):
    with duckdb.connect(str(data_dir / store), read_only=True) as con:
        return con.execute(sql).fetchall()


def query_raw(data_dir: Path, sql: str):
    return query(data_dir, sql, store="raw/raw.duckdb")


def ground_truth(data_dir: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "ground_truth" / name).read_text().splitlines()]


def test_every_good_trace_lands_once_in_its_day(demo_dir):
    truth = ground_truth(demo_dir, "traces.jsonl")
    rows = dict(query_raw(demo_dir, "SELECT trace_id, CAST(event_date AS VARCHAR) FROM raw_traces"))
    assert len(rows) == len(truth)  # nothing lost, nothing doubled by the second run
    assert {t["trace_id"] for t in truth} == set(rows)


def test_every_planted_bad_line_is_explained_where_it_is(demo_dir):
    planted = ground_truth(demo_dir, "malformed.jsonl")
    quarantined = {(path, line): reason for path, line, reason in query(
        demo_dir, "SELECT path, line_no, reason FROM quarantine")}
    expected = {(m["file"], m["line"]): m["reason"] for m in planted if m["reason"] != reasons.DUPLICATE}
    assert quarantined == expected
    duplicates = sum(1 for m in planted if m["reason"] == reasons.DUPLICATE)
    assert query(demo_dir, "SELECT sum(deduplicated) FROM landed_files")[0][0] == duplicates


def test_accounting_adds_up_over_the_landing_folder(demo_dir):
    ((lines, ingested, quarantined, deduplicated),) = query(
        demo_dir, "SELECT sum(lines_read), sum(ingested), sum(quarantined), sum(deduplicated) FROM landed_files")
    assert ingested + quarantined + deduplicated == lines
    assert quarantined == len(query(demo_dir, "SELECT DISTINCT path, line_no FROM quarantine"))


def test_all_simulated_dialects_reach_the_warehouse(demo_dir):
    dialects = dict(query_raw(demo_dir, "SELECT dialect, count(*) FROM raw_traces GROUP BY 1"))
    assert set(dialects) == {"canonical", "otlp", "langfuse"}


def test_the_run_is_recorded_in_the_dagster_instance(demo_dir):
    import dagster as dg

    home = demo_dir.parent / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_latest_materialization_events([dg.AssetKey("raw_traces")])
        assert records[dg.AssetKey("raw_traces")] is not None


def test_normalize_writes_canonical_jsonl_and_a_quarantine_report(demo_dir, tmp_path, capsys):
    out = tmp_path / "out" / "traces.jsonl"
    code = cli.main(["normalize", str(demo_dir / "landing" / "2026-10-01"), "-o", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    report_path = tmp_path / "out" / "traces.jsonl.quarantine.jsonl"
    report = [json.loads(line) for line in report_path.read_text().splitlines()]
    assert lines and all(line["trace_id"] and line["timestamp"] for line in lines)
    planted = {(m["file"].split("/")[-1], m["line"]) for m in ground_truth(demo_dir, "malformed.jsonl")
               if m["file"].startswith("2026-10-01/") and m["reason"] != reasons.DUPLICATE}
    assert {(Path(r["path"]).name, r["line_no"]) for r in report} == planted
    assert "quarantined" in capsys.readouterr().err


def test_user_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    code = cli.main(["normalize", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("evalflow: error: no such file or folder")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_normalize_fails_when_nothing_can_be_read(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{also not\n")
    assert cli.main(["normalize", str(bad), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "nothing could be read" in capsys.readouterr().err


def test_a_warehouse_held_too_long_is_one_line_naming_the_holder(tmp_path, monkeypatch, capsys):
    """DuckDB lets one process open a file for writing; a run waits for the holder (up to
    EVALFLOW_LOCK_WAIT_S), then says plainly who holds it. The wait itself is drilled in
    test_reliability."""
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    monkeypatch.setenv("EVALFLOW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("EVALFLOW_LOCK_WAIT_S", "1")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (data_dir / "warehouse").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
         str(data_dir / "warehouse" / "evalflow.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (data_dir / "landing").mkdir()
        (data_dir / "landing" / "a.jsonl").write_text(
            '{"trace_id": "t1", "timestamp": "2026-10-05T10:00:00Z", "output": "x"}\n')
        code = cli.main(["run"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("evalflow: error:") and "Traceback" not in "\n".join(err)
    assert "locked by PID" in err[-1] and f"PID {holder.pid}" in err[-1]
    assert any(line.startswith("evalflow: waiting for") for line in err[:-1])


def test_intents_are_discovered_named_and_kept_stable_across_runs(demo_dir):
    ((redacted,),) = query(demo_dir, "SELECT count(*) FROM redacted_traces WHERE payload_kept")
    ((embedded,),) = query(demo_dir, "SELECT count(*) FROM trace_embeddings")
    assert embedded == redacted
    catalog = query(demo_dir, "SELECT intent_id, name, size, share FROM intent_catalog")
    assert len(catalog) >= 3
    assert all(name and size > 0 for _, name, size, _ in catalog)
    # Each share is stored rounded to 6 decimals: the sum is 1 within half a unit per intent.
    assert abs(sum(share for *_, share in catalog) - 1.0) <= len(catalog) * 5e-7 + 1e-12
    ((unassigned,),) = query(demo_dir, "SELECT count(*) FROM intent_assignments WHERE intent_id IS NULL")
    assert unassigned == 0
    # The fixture ran `evalflow run` twice over the same data: the second run saw the same
    # window (same input fingerprint) and left the clustering as it was.
    batches = query(demo_dir, "SELECT clustered_at, list(DISTINCT kind) FROM intent_events GROUP BY 1 ORDER BY 1")
    assert len(batches) == 1 and batches[0][1] == ["birth"]
    runs = query(demo_dir, "SELECT rows, input_sha256 FROM intent_runs")
    assert len(runs) == 1 and runs[0][0] == redacted and len(runs[0][1]) == 64
    # Names and examples are built from redacted text only.
    examples = " ".join(" ".join(r[0]) for r in query(demo_dir, "SELECT examples FROM intent_catalog"))
    assert "@" not in examples


def test_the_model_embeds_each_trace_without_its_slot_values(demo_dir):
    import hashlib

    import orjson

    from evalflow.lib.intents import model_text
    from evalflow.lib.intents.store import trace_text

    rows = query(demo_dir, "SELECT r.user_query, r.messages, e.text_sha256 FROM redacted_traces r "
                           "JOIN trace_embeddings e USING (trace_id)")
    shown = [trace_text({"user_query": q, "messages": orjson.loads(m) if m else []}) for q, m, _ in rows]
    read = [model_text(t) for t in shown]
    assert [h for *_, h in rows] == [hashlib.sha256(t.encode()).hexdigest() for t in read]
    # Placeholders and amounts are gone from what the model read, so requests that differ only
    # in who, which account or how much share one vector ...
    assert not any("<" in t or any(c.isdigit() for c in t) for t in read)
    assert len(set(read)) < len(set(shown))
    # ... while the catalog still shows readable examples with their placeholders.
    examples = [e for (ex,) in query(demo_dir, "SELECT examples FROM intent_catalog") for e in ex]
    assert any("<" in e for e in examples)


def test_signals_taxonomy_and_sample_cover_the_window(demo_dir):
    ((signals,),) = query(demo_dir, "SELECT count(*) FROM trace_signals")
    ((redacted,),) = query(demo_dir, "SELECT count(*) FROM redacted_traces")
    assert signals == redacted  # every trace of the 4-day window (metadata-only ones included)
    clusters = query(demo_dir, "SELECT rank, traces FROM failure_clusters ORDER BY rank")
    assert clusters and [r for r, _ in clusters] == list(range(1, len(clusters) + 1))
    ((members,),) = query(demo_dir, "SELECT count(*) FROM failure_cluster_members")
    assert members == sum(n for _, n in clusters)
    # Two `evalflow run`s drew two samples: the budget holds, no trace twice, and no session
    # has traces in both (it would leak across batches, later across splits).
    runs = query(demo_dir, "SELECT sample_run_id, chosen, budget FROM sample_runs ORDER BY sampled_at")
    assert len(runs) == 2 and all(0 < chosen <= budget for _, chosen, budget in runs)
    ((overlap,),) = query(demo_dir, "SELECT count(*) FROM (SELECT session_id FROM eval_candidates "
                                    "GROUP BY 1 HAVING count(DISTINCT sample_run_id) > 1)")
    assert overlap == 0
    ((intents,),) = query(demo_dir, "SELECT count(DISTINCT intent_id) FROM eval_candidates")
    assert intents >= 3


def test_each_sample_becomes_an_importable_annotation_batch(demo_dir):
    from evalflow.lib.annotation import validate_tasks

    batches = query(demo_dir, "SELECT batch_id, path, candidates, gold, tasks FROM annotation_batches "
                              "ORDER BY created_at")
    assert len(batches) == 2
    for batch_id, path, candidates, gold, tasks in batches:
        folder = Path(path)
        assert folder.parent == demo_dir / "annotation"
        assert gold >= 1 and tasks == candidates + gold
        for pass_no in (1, 2):
            config = (folder / f"pass{pass_no}_config.xml").read_text()
            data = json.loads((folder / f"pass{pass_no}_tasks.json").read_text())
            assert len(data) == tasks
            assert validate_tasks(config, data) == []
        assert not any("output" in task["data"] for task in json.loads((folder / "pass1_tasks.json").read_text()))
        ((exported,),) = query(demo_dir, f"SELECT count(*) FROM eval_candidates WHERE batch_id = '{batch_id}' "
                                         "AND status = 'exported'")
        assert exported == candidates


def test_the_demo_printout_shows_the_whole_loop(demo_dir):
    """Labels come back (agreement per dimension, the annotator the simulation tired, a judge
    named as simulated), golden@v1 is promoted with its holdout, and `evalflow check` gates on it:
    each printed figure is read back from the stores, not only its line looked for."""
    from evalflow.lib.snapshots.store import read_cases

    text = (demo_dir.parent / "demo_stdout.txt").read_text()
    for dimension in ("accuracy", "relevance", "groundedness", "safety", "policy"):
        assert re.search(rf"^ +{dimension} +agreement \d\.\d\d on \d+ items, alpha .*; gate (open|closed)$",
                         text, re.M), dimension
    # the tired annotator is among those flagged, and flagged for fatigue (another may be flagged
    # too, for an accuracy that fell under the threshold by chance)
    flagged_line = re.search(r"^ *Annotators flagged on the gold cases: (.*)$", text, re.M)
    tired = re.search(r"\(the simulation made (annotator_[0-9a-f]+) tire over the batch\)", text)
    assert flagged_line and tired
    entries = re.split(r"; (?=annotator_[0-9a-f]+ \()", flagged_line.group(1))
    reasons = dict(entry.split(" ", 1) for entry in entries)
    assert "fatigue" in reasons.get(tired.group(1), ""), (tired.group(1), reasons)
    assert "Judge calibration (SIMULATED judge 'simulated-judge'" in text
    golden = re.search(r"golden@v1 +(\d+) cases, (\d+) holdout", text)
    assert golden, text
    cases = read_cases(demo_dir, "golden@v1")
    assert int(golden.group(1)) == len(cases) > 0
    assert int(golden.group(2)) == sum(case["split"] == "holdout" for case in cases)
    assert re.search(r"^  rolling@\d{4}-\d{2}-\d{2} +\d+ cases", text, re.M)
    gate = re.search(r"^evalflow check exited (\d+) \((.*)\)$", text, re.M)
    assert gate and gate.group(1) in {"0", "3"}
    assert (gate.group(1) == "0") == ("gate passed:" in text)
