"""Annotation batches: two-pass Label Studio / CSV files, gold mixing, atomic writes, scoring."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from evalflow.lib.annotation import (
    DEFAULT_DIMENSIONS,
    BatchConflictError,
    BatchManifest,
    gold_count,
    load_known_answers,
    pass1_config,
    pass2_config,
    score_gold,
    validate_tasks,
    verify_batch,
    write_annotation_batch,
)
from evalflow.lib.annotation import (
    batch as batch_module,
)
from evalflow.lib.annotation.scoring import contains_key_facts

PASS_FILES = ("pass1_config.xml", "pass1_tasks.json", "pass1.csv")


def make_candidate(i: int) -> dict:
    """A redacted trace as the sampler hands it over, with an output found nowhere else."""
    query = f"Question {i}: why was <PERSON_{i:08x}> charged a fee on <ACCOUNT_ID_{i:08x}>?"
    output = f"Model answer #{i}: the fee of ${i}.{i:02d} was charged in error, a refund is on its way."
    return {
        "trace_id": f"trace-{i:04d}",
        "session_id": f"session-{i // 2}",
        "timestamp": "2026-10-01T12:00:00Z",
        "messages": [
            {"role": "system", "content": "You are <PERSON_d0262d49>, the support assistant."},
            {"role": "user", "content": f"earlier message {i}"},
            {"role": "assistant", "content": f"earlier reply {i}"},
            {"role": "user", "content": query},
        ],
        "user_query": query,
        "retrieved_context": [{"doc_id": f"kb-v1/fees#{i}", "text": f"Fee rule {i}.", "score": 0.81}],
        "tool_calls": [{"name": "lookup_account", "arguments": {"account_id": f"<ACCOUNT_ID_{i:08x}>"},
                        "result": {"status": "active", "available_balance": 100.0 + i}}],
        "output": output,
        "intent_id": f"intent-{i % 3}",
        "intent_name": "fees_explanation",
        "stratum": f"intent-{i % 3}|none|easy",
        "reason": "proportional",
        "failure_modes": [],
        "difficulty_bucket": "easy",
    }


@pytest.fixture(scope="module")
def known_answers() -> list[dict]:
    return load_known_answers()


@pytest.fixture
def candidates() -> list[dict]:
    return [make_candidate(i) for i in range(1, 46)]


def write(candidates, out_dir, known_answers, **kwargs) -> BatchManifest:
    kwargs.setdefault("batch_id", "batch-001")
    return write_annotation_batch(candidates, out_dir, known_answers=known_answers, **kwargs)


def read_tasks(folder: Path, name: str) -> list[dict]:
    return json.loads((folder / f"{name}_tasks.json").read_text(encoding="utf-8"))


def all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


# --- Label Studio import check -------------------------------------------------------------

def test_tasks_of_both_passes_validate_against_their_configs(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)

    for name in ("pass1", "pass2"):
        config = (manifest.path / f"{name}_config.xml").read_text(encoding="utf-8")
        result = validate_tasks(config, read_tasks(manifest.path, name))
        assert result == [], name


def test_validator_catches_broken_tasks(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)
    config = (manifest.path / "pass2_config.xml").read_text(encoding="utf-8")
    tasks = read_tasks(manifest.path, "pass2")

    del tasks[3]["data"]["output"]
    tasks[5]["data"]["history"] = "user: a flat string where a list of turns belongs"
    tasks[7]["data"]["history"] = [{"speaker": "user", "text": "wrong keys"}]
    tasks[8]["data"]["query"] = 42
    problems = validate_tasks(config, tasks)

    assert any("task 3" in p and "'output'" in p for p in problems)
    assert any("task 5" in p and "'history'" in p for p in problems)
    assert any("task 7" in p and "'role'" in p for p in problems)
    assert any("task 8" in p and "string" in p for p in problems)
    assert len(problems) == 4


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("<View><Text name='q' value='$query'/>", "not valid XML"),
        ("<View><Text name='q' value='$query'/><TextArea name='a' toName='nope'/></View>", "'nope'"),
        ("<View><Text name='q' value='$query'/><TextArea name='q' toName='q'/></View>", "duplicate name"),
        ("<View><Text name='q' value='$query'/><Choices name='c' toName='q'/></View>", "has no Choice"),
        ("<View><Text name='q' value='$query'/><Choices name='c' toName='q' choice='pick'>"
         "<Choice value='A'/></Choices></View>", "choice='pick'"),
        ("<View><Txt name='q' value='$query'/></View>", "unknown tag <Txt>"),
        ("<View><Text name='q' value='$missing'/></View>", "missing field 'missing'"),
    ],
)
def test_validator_catches_broken_configs(config, expected):
    problems = validate_tasks(config, [{"data": {"query": "hello"}}])

    assert any(expected in p for p in problems), problems


def test_label_studio_sdk_accepts_configs_and_tasks(tmp_path, candidates, known_answers):
    sdk = pytest.importorskip("label_studio_sdk.label_interface",
                              reason="label-studio-sdk is not installed (optional)")
    manifest = write(candidates, tmp_path, known_answers)

    for name in ("pass1", "pass2"):
        interface = sdk.LabelInterface((manifest.path / f"{name}_config.xml").read_text(encoding="utf-8"))
        interface.validate()  # raises on a bad configuration
        tasks = read_tasks(manifest.path, name)
        assert all(interface.validate_task(task) for task in tasks), name
        broken = {"data": {k: v for k, v in tasks[0]["data"].items() if k != "query"}}
        assert not interface.validate_task(broken)


# --- no label leakage ---------------------------------------------------------------------

def test_pass1_files_never_contain_the_model_output(tmp_path, candidates, known_answers):
    # One dialect folds the answer into the messages: it must be dropped from pass 1 too.
    candidates[0]["messages"].append({"role": "assistant", "content": candidates[0]["output"]})
    # Warehouse rows carry JSON columns as strings.
    candidates[1]["messages"] = json.dumps(candidates[1]["messages"])
    manifest = write(candidates, tmp_path, known_answers)
    outputs = [c["output"] for c in candidates]
    outputs += [k["output"] for k in known_answers if k["case_id"] in
                {g["case_id"] for g in manifest.to_dict()["gold"]}]

    pass1_text = "\n".join((manifest.path / name).read_text(encoding="utf-8") for name in PASS_FILES)
    pass1_strings = "\n".join(all_strings(read_tasks(manifest.path, "pass1")))
    pass2_text = (manifest.path / "pass2_tasks.json").read_text(encoding="utf-8")
    pass2_strings = "\n".join(all_strings(read_tasks(manifest.path, "pass2")))
    for output in outputs:
        assert output not in pass1_text
        assert output not in pass1_strings
        assert output in pass2_strings  # the same check finds outputs where they belong
    assert all("output" not in task["data"] for task in read_tasks(manifest.path, "pass1"))
    assert candidates[0]["output"] in pass2_text


def test_pass1_keeps_the_input_the_model_saw(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)
    by_trace = {item["item_id"]: item["trace_id"] for item in manifest.to_dict()["items"]
                if item["origin"] == "trace"}
    source = {c["trace_id"]: c for c in candidates}

    for task in read_tasks(manifest.path, "pass1"):
        if task["data"]["item_id"] not in by_trace:
            continue
        data, candidate = task["data"], source[by_trace[task["data"]["item_id"]]]
        i = int(candidate["trace_id"].split("-")[1])
        assert data["query"] == candidate["user_query"]
        assert data["history"] == [{"role": "user", "content": f"earlier message {i}"},
                                   {"role": "assistant", "content": f"earlier reply {i}"}]
        assert f"Fee rule {i}." in data["context"] and "kb-v1/fees#" in data["context"]
        assert "lookup_account" in data["tool_calls"] and str(100.0 + i) in data["tool_calls"]


# --- gold mixing ----------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "rate", "expected"), [
    (200, 0.10, 23), (90, 0.10, 10), (9, 0.10, 1), (1, 0.10, 1), (45, 0.10, 5),
    (100, 0.20, 25), (100, 0.0, 0), (0, 0.10, 0),
])
def test_gold_count_keeps_gold_share_at_least_the_rate(n, rate, expected):
    result = gold_count(n, rate)

    assert result == expected
    if n and rate:
        assert result / (n + result) >= rate


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_gold_count_rejects_impossible_rates(rate):
    with pytest.raises(ValueError, match="gold_rate"):
        gold_count(10, rate)


def test_gold_is_mixed_in_at_the_rate_and_spread_over_the_batch(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers, gold_rate=0.10)
    data = manifest.to_dict()
    tasks = read_tasks(manifest.path, "pass1")

    assert data["counts"] == {"candidates": 45, "gold": 5, "gold_requested": 5, "tasks": 50}
    assert data["gold_share"] == pytest.approx(0.10)
    task_ids = [t["data"]["item_id"] for t in tasks]
    positions = sorted(task_ids.index(item_id) for item_id in data["gold_item_ids"])
    assert positions == sorted(g["position"] for g in data["gold"])
    # one gold case in each tenth... fifth of the batch (segments of 10 tasks)
    assert [p // 10 for p in positions] == [0, 1, 2, 3, 4]
    assert len({g["case_id"] for g in data["gold"]}) == 5
    assert sorted(item["trace_id"] for item in data["items"] if item["origin"] == "trace") == \
        sorted(c["trace_id"] for c in candidates)


def test_shuffle_is_deterministic_for_a_seed(tmp_path, candidates, known_answers):
    first = write(candidates, tmp_path / "a", known_answers, seed=3)
    again = write(candidates, tmp_path / "b", known_answers, seed=3)
    other = write(candidates, tmp_path / "c", known_answers, seed=4)

    assert first.files == again.files
    order = [i["item_id"] for i in first.to_dict()["items"]]
    assert order == [i["item_id"] for i in again.to_dict()["items"]]
    assert order != [i["item_id"] for i in other.to_dict()["items"]]
    # shuffled, not the sampler's order
    real_order = [i["trace_id"] for i in first.to_dict()["items"] if i["origin"] == "trace"]
    assert real_order != [c["trace_id"] for c in candidates]


def test_gold_tasks_are_indistinguishable_from_real_ones(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)
    gold_ids = set(manifest.gold_item_ids)

    for name in ("pass1", "pass2"):
        tasks = read_tasks(manifest.path, name)
        gold_tasks = [t for t in tasks if t["data"]["item_id"] in gold_ids]
        real_tasks = [t for t in tasks if t["data"]["item_id"] not in gold_ids]
        assert gold_tasks and real_tasks
        def shape(task):
            return sorted(task), {k: type(v).__name__ for k, v in task["data"].items()}

        assert {json.dumps(shape(t)) for t in gold_tasks} == {json.dumps(shape(t)) for t in real_tasks}
        for task in tasks:
            assert re.fullmatch(r"[0-9a-f]{16}", task["data"]["item_id"])
            text = json.dumps(task).lower()
            assert "gold" not in text and "ka-0" not in text and "trace-0" not in text
    manifest_text = (manifest.path / "manifest.json").read_text(encoding="utf-8")
    assert all(g["case_id"] in manifest_text for g in manifest.to_dict()["gold"])


def test_too_few_known_answers_records_the_shortfall(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers[:2], gold_rate=0.25)

    assert manifest.counts["gold_requested"] == 15
    assert manifest.counts["gold"] == 2
    assert manifest.to_dict()["gold_share"] == pytest.approx(2 / 47)


# --- files: manifest, atomicity, idempotence, CSV -------------------------------------------

def test_manifest_hashes_match_the_files(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)

    expected = {"pass1_config.xml", "pass1_tasks.json", "pass1.csv",
                "pass2_config.xml", "pass2_tasks.json", "pass2.csv"}
    assert set(manifest.files) == expected
    for name, digest in manifest.files.items():
        assert hashlib.sha256((manifest.path / name).read_bytes()).hexdigest() == digest
    assert BatchManifest.load(manifest.path).to_dict() == manifest.to_dict()
    assert "Pass 1" in manifest.to_dict()["workflow"]
    assert verify_batch(manifest) == []

    (manifest.path / "pass2.csv").write_text("edited by hand\n", encoding="utf-8")
    assert verify_batch(manifest) == ["pass2.csv: sha256 differs from the manifest"]
    with pytest.raises(BatchConflictError, match="modified"):
        write(candidates, tmp_path, known_answers)


def test_crash_mid_write_leaves_no_half_batch(tmp_path, candidates, known_answers, monkeypatch):
    earlier = write(candidates, tmp_path, known_answers, batch_id="batch-001")
    real_write = batch_module._write_file

    def crash_on_pass2_csv(path, text):
        if path.name == "pass2.csv":
            raise OSError("disk full")
        real_write(path, text)

    monkeypatch.setattr(batch_module, "_write_file", crash_on_pass2_csv)
    with pytest.raises(OSError, match="disk full"):
        write(candidates[:10], tmp_path, known_answers, batch_id="batch-002")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-001"]
    assert verify_batch(earlier) == []
    monkeypatch.undo()
    retried = write(candidates[:10], tmp_path, known_answers, batch_id="batch-002")
    assert retried.created and verify_batch(retried) == []


def test_writer_killed_before_cleanup_leaves_only_a_hidden_temporary(tmp_path, candidates, known_answers,
                                                                    monkeypatch):
    earlier = write(candidates, tmp_path, known_answers, batch_id="batch-001")

    def killed(path, text):
        raise KeyboardInterrupt  # as far as the files go, the process died here

    monkeypatch.setattr(batch_module, "_write_file", killed)
    monkeypatch.setattr(batch_module, "_discard_staging", lambda path: None)  # no cleanup ran
    with pytest.raises(KeyboardInterrupt):
        write(candidates[:10], tmp_path, known_answers, batch_id="batch-002")

    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[1:] == ["batch-001"] and leftovers[0].startswith(".batch-002.tmp-")
    monkeypatch.undo()
    retried = write(candidates[:10], tmp_path, known_answers, batch_id="batch-002")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-001", "batch-002"]
    assert verify_batch(retried) == [] and verify_batch(earlier) == []


def test_rerun_with_same_inputs_is_a_no_op_and_different_inputs_an_error(tmp_path, candidates, known_answers):
    first = write(candidates, tmp_path, known_answers)
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}

    again = write(candidates, tmp_path, known_answers)
    assert (first.created, again.created) == (True, False)
    assert again.to_dict() == first.to_dict()
    assert {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()} == mtimes

    with pytest.raises(BatchConflictError, match="different inputs"):
        write(candidates[:-1], tmp_path, known_answers)
    with pytest.raises(BatchConflictError, match="different inputs"):
        write(candidates, tmp_path, known_answers, seed=1)
    assert {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()} == mtimes


def test_csv_has_one_row_per_task_in_task_order(tmp_path, candidates, known_answers):
    candidates[2]["user_query"] = candidates[2]["messages"][-1]["content"] = "=HYPERLINK(\"x\")"
    manifest = write(candidates, tmp_path, known_answers)

    for name, answers in (("pass1", ["expected_behavior", "gold_answer", "risk_level"]),
                          ("pass2", [*DEFAULT_DIMENSIONS, "critique"])):
        tasks = read_tasks(manifest.path, name)
        with (manifest.path / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(tasks) == manifest.counts["tasks"]
        assert [r["item_id"] for r in rows] == [t["data"]["item_id"] for t in tasks]
        assert list(rows[0])[-len(answers):] == answers
        assert all(r[a] == "" for r in rows for a in answers)
        for row, task in zip(rows, tasks):
            assert row["context"] == task["data"]["context"]
            assert row["history"] == "\n".join(f"{t['role']}: {t['content']}" for t in task["data"]["history"])
        assert "'=HYPERLINK(\"x\")" in [r["query"] for r in rows]  # formula neutralised


def test_rejects_bad_batch_ids_duplicate_traces_and_bad_dimensions(tmp_path, candidates, known_answers):
    with pytest.raises(ValueError, match="batch_id"):
        write(candidates, tmp_path, known_answers, batch_id="../escape")
    with pytest.raises(ValueError, match="unique"):
        write(candidates + candidates[:1], tmp_path, known_answers)
    with pytest.raises(ValueError, match="duplicate scoring dimensions"):
        write(candidates, tmp_path, known_answers, dimensions=("accuracy", "accuracy"))
    with pytest.raises(ValueError, match="invalid scoring dimension"):
        write(candidates, tmp_path, known_answers, dimensions=("query",))
    assert list(tmp_path.iterdir()) == []


def test_custom_dimensions_shape_pass2(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers, dimensions=("accuracy", "tone"))
    config = (manifest.path / "pass2_config.xml").read_text(encoding="utf-8")

    assert re.findall(r'<Choices name="(\w+)"', config) == ["accuracy", "tone"]
    header = next(csv.reader(io.StringIO((manifest.path / "pass2.csv").read_text(encoding="utf-8"))))
    assert header[-3:] == ["accuracy", "tone", "critique"]
    assert validate_tasks(config, read_tasks(manifest.path, "pass2")) == []
    assert re.findall(r'<Choices name="(\w+)"', pass2_config(DEFAULT_DIMENSIONS)) == list(DEFAULT_DIMENSIONS)
    assert "$output" not in pass1_config()


# --- known answers and scoring ----------------------------------------------------------------

def test_known_answers_file_is_a_usable_answer_key(known_answers):
    assert len(known_answers) >= 25  # enough for a 200-trace batch at 10% (23 cases)
    verdicts = [v for case in known_answers for v in case["verdicts"].values()]
    assert verdicts.count("Fail") >= 15 and verdicts.count("Pass") >= 15
    for case in known_answers:
        assert set(case["verdicts"]) <= set(DEFAULT_DIMENSIONS), case["case_id"]
        if all(v == "Pass" for v in case["verdicts"].values()):
            # a correct answer satisfies its own key facts, so the pass-1 check is fair
            assert contains_key_facts(case["output"], case["key_facts"]), case["case_id"]


@pytest.mark.parametrize(("line", "expected"), [
    ('{"case_id": "x"}', "missing"),
    ('{"case_id": "x", "input": {"user_query": "q"}, "expected_behavior": [], "key_facts": ["a"],'
     ' "output": "o", "verdicts": {"accuracy": "Maybe"}}', "Pass/Fail"),
    ('{"case_id": "x", "input": {}, "expected_behavior": [], "key_facts": ["a"],'
     ' "output": "o", "verdicts": {"accuracy": "Pass"}}', "user_query"),
    ("not json", "not JSON"),
])
def test_load_known_answers_rejects_bad_cases(tmp_path, line, expected):
    path = tmp_path / "known.jsonl"
    path.write_text(line + "\n", encoding="utf-8")

    with pytest.raises(ValueError, match=expected):
        load_known_answers(path)


def test_load_known_answers_rejects_duplicate_ids(tmp_path, known_answers):
    path = tmp_path / "known.jsonl"
    path.write_text("\n".join(json.dumps(known_answers[0]) for _ in range(2)), encoding="utf-8")

    with pytest.raises(ValueError, match="duplicate case_id"):
        load_known_answers(path)


def choices(name, value):
    return {"from_name": name, "to_name": "output", "type": "choices", "value": {"choices": [value]}}


def text(name, value, to_name="output"):
    return {"from_name": name, "to_name": to_name, "type": "textarea", "value": {"text": [value]}}


def test_score_gold_on_a_pass2_export(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)
    gold = {g["item_id"]: g for g in manifest.to_dict()["gold"]}
    export, expected_correct, expected_total = [], 0, 0
    for number, task in enumerate(read_tasks(manifest.path, "pass2")):
        item = task["data"]["item_id"]
        if item not in gold:  # real tasks: any verdicts, never scored
            result = [choices(d, "Fail") for d in DEFAULT_DIMENSIONS] + [text("critique", "meh")]
            export.append({"id": number, "data": task["data"],
                           "annotations": [{"completed_by": 7, "result": result}]})
            continue
        known = gold[item]["known_verdicts"]
        flip = next(iter(known))  # annotator 7 gets exactly one dimension wrong per gold task
        verdicts = {d: known.get(d, "Pass") for d in DEFAULT_DIMENSIONS}
        verdicts[flip] = "Fail" if known[flip] == "Pass" else "Pass"
        expected_correct += len(known) - 1
        expected_total += len(known)
        annotations = [
            {"completed_by": 7, "result": [choices(d, v) for d, v in verdicts.items()] + [text("critique", "x")]},
            {"completed_by": {"id": 9, "email": "b@example.org"},
             "result": [choices(d, v) for d, v in known.items()] + [text("critique", "y")]},
            # skipped by annotator 9: its (wrong) choices must not count
            {"completed_by": {"id": 9, "email": "b@example.org"}, "was_cancelled": True,
             "result": [choices(d, "Pass" if v == "Fail" else "Fail") for d, v in known.items()]},
        ]
        export.append({"id": number, "data": task["data"], "annotations": annotations})

    result = score_gold(manifest, export)

    assert result["gold_tasks"] == result["gold_annotated"] == 5
    assert result["unannotated_gold"] == []
    assert result["by_annotator"]["7"]["pass2"]["correct"] == expected_correct
    assert result["by_annotator"]["7"]["pass2"]["total"] == expected_total
    assert result["by_annotator"]["b@example.org"]["pass2"]["accuracy"] == 1.0
    assert result["pass2"]["accuracy"] == pytest.approx((2 * expected_total - 5) / (2 * expected_total))
    assert result["pass1"]["total"] == 0
    positions = [row["position"] for row in result["by_position"]]
    assert positions == sorted(positions) and len(positions) == 10
    assert set(positions) == {g["position"] for g in gold.values()}
    halves = result["fatigue"]
    assert halves["first_half"]["total"] + halves["second_half"]["total"] == 2 * expected_total


def test_score_gold_on_a_pass1_export(tmp_path, candidates, known_answers):
    manifest = write(candidates, tmp_path, known_answers)
    data = json.loads((manifest.path / "manifest.json").read_text(encoding="utf-8"))
    gold = data["gold"]
    export = []
    for number, entry in enumerate(gold):
        facts = [f if isinstance(f, str) else f[-1] for f in entry["key_facts"]]
        answer = "Sure. " + ", and ".join(facts).upper() + "."  # case must not matter
        if number == 0:
            answer = "I am not sure, please call us."  # misses the key facts
        result = [text("expected_behavior", "must be right", "query"), text("gold_answer", answer, "query"),
                  {"from_name": "risk_level", "to_name": "query", "type": "choices",
                   "value": {"choices": ["low"]}}]
        export.append({"id": number, "data": {"item_id": entry["item_id"]},
                       "annotations": [{"completed_by": 3, "result": result}]})
    export = export[:-1]  # the last gold task was never annotated

    result = score_gold(data, export)

    assert result["pass1"] == {"correct": 3, "total": 4, "accuracy": 0.75}
    assert result["unannotated_gold"] == [gold[-1]["item_id"]]
    assert result["pass2"]["total"] == 0
    assert [r["correct"] for r in result["by_position"] if r["item_id"] == gold[0]["item_id"]] == [0]


@pytest.mark.parametrize(("answer", "facts", "expected"), [
    ("Disputes are possible within 60  Days.", ["60 days"], True),
    ("Disputes are possible within 6 days.", ["60 days"], False),
    ("It costs nothing.", [["free", "nothing"]], True),
    ("It is $10,000 a day.", [["$10,000"], "a day"], True),
    ("It is $100,000 a day.", [["$10,000"]], False),
    ("Reset links expire after 30 minutes.", ["forgot password", "30 minutes"], False),
])
def test_contains_key_facts(answer, facts, expected):
    assert contains_key_facts(answer, facts) is expected
