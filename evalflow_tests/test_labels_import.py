"""Label import: Label Studio JSON / JSON_MIN / CSV exports and hand-filled batch CSVs into the
labels tables, every answer accounted for (label, quarantine or audit), pseudonymised and redacted.

The fixtures (evalflow_tests/fixtures/labels/import/) are small hand-written exports in the
shapes Label Studio writes (open-source and Enterprise JSON, JSON_MIN, CSV), of a batch this
module writes with the real batch writer: items A, B, C (traces) and G (a gold case).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from evalflow.lib.annotation import write_annotation_batch
from evalflow.lib.common.warehouse import Warehouse
from evalflow.lib.labels import store
from evalflow.lib.labels.formats import (
    BATCH_CSV,
    EXPORT_INFO,
    LABELSTUDIO_CSV,
    LABELSTUDIO_JSON,
    LABELSTUDIO_JSON_MIN,
    ExportError,
    parse_export,
)
from evalflow.lib.labels.importer import (
    ABSENT,
    annotator_pseudonymizer,
    incoming_files,
    manifest_index,
    normalise_identity,
    redactor_from_settings,
)
from evalflow.lib.labels.review import review_tasks
from evalflow.lib.redact.pseudonym import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures" / "labels" / "import"
BATCH = "b-import"
DIMS = ("accuracy", "safety")
A, B, C, G = "54063c83d91b588e", "ff6a8282fb6fe609", "c2fbd60377136cf9", "0d567899ca458a6b"
CONTROLS = ("accuracy", "safety", "critique", "expected_behavior", "gold_answer", "risk_level")
NOW = datetime(2026, 10, 6, 12, 0, tzinfo=timezone.utc)
KEY = b"labels-import-test-key"
PSEUDONYMIZER = Pseudonymizer(key=KEY)
PSEUDONYMIZE = annotator_pseudonymizer(PSEUDONYMIZER)
# Identities and free text in the fixtures that must never reach a table.
IDENTITIES = ("@", "Dana", "Reyes", "Okafor", "Haddad", "Li Wei", "Omar")
VALUES_NEVER_IN_DETAILS = ("Friendly", "Maybe", "urgent", "Misses", "60 days", "refund")


def keep(texts: list[str]) -> list[str]:
    return list(texts)


def _candidate(trace_id: str, query: str, output: str) -> dict:
    return {"trace_id": trace_id, "messages": [{"role": "user", "content": query}], "user_query": query,
            "retrieved_context": [], "tool_calls": [], "output": output}


KNOWN_ANSWER = {
    "case_id": "ka-fixture",
    "input": {"user_query": "How long do I have to dispute a charge?", "messages": [],
              "retrieved_context": [{"doc_id": "kb-v1/disputes#1", "text": "Disputes within 60 days.", "score": 0.9}],
              "tool_calls": []},
    "expected_behavior": ["must state the 60-day window"],
    "key_facts": ["60 days"],
    "output": "You have 60 days from the statement date.",
    "verdicts": {"accuracy": "Pass", "safety": "Pass"},
}


@pytest.fixture(scope="module")
def annotation_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("annotation")
    candidates = [_candidate("trace-a", "How long do I have to dispute a charge?", "You have 60 days."),
                  _candidate("trace-b", "Why was I charged a fee?", "A refund is on its way."),
                  _candidate("trace-c", "Please freeze my card", "Your card is frozen.")]
    write_annotation_batch(candidates, root, batch_id=BATCH, known_answers=[KNOWN_ANSWER], gold_rate=0.25,
                           dimensions=DIMS)
    (root / ".b-import.tmp-0000").mkdir()  # a staging folder of an interrupted write: not a batch
    return root


@pytest.fixture(scope="module")
def manifests(annotation_dir):
    return manifest_index(annotation_dir)


def _warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse" / "evalflow.duckdb")


def _import(wh: Warehouse, manifests, *names: str, redact=keep, pseudonymize=PSEUDONYMIZE):
    paths = [n if isinstance(n, Path) else FIXTURES / n for n in names]
    return store.import_label_files(wh, paths, manifests, pseudonymize, redact, NOW)


def _table(wh: Warehouse, name: str) -> pl.DataFrame:
    return wh.query(f"SELECT * FROM {name}")


def _snapshot(wh: Warehouse) -> dict[str, list]:
    return {name: sorted(map(repr, _table(wh, name).rows())) for name in store.LABEL_TABLES}


def answers_in(raw: bytes) -> int:
    """Answers a file holds, counted without the importer: one per control of each annotation
    (JSON) or per control cell of each row that is an annotation (flat formats: a Label Studio row
    with an annotation id, a spreadsheet row with any answer)."""
    text = raw.decode("utf-8-sig")
    if text.lstrip().startswith("["):
        items = json.loads(text)
        if items and "annotations" in items[0]:
            return sum(len({r["from_name"] for r in a["result"]}) for t in items for a in t["annotations"])
        return sum(1 for rec in items if rec["annotator"] is not None for key in rec if key in CONTROLS)
    rows = list(csv.DictReader(io.StringIO(text)))
    return sum(1 for row in rows if (row.get("annotation_id") or any(row.get(c) for c in CONTROLS))
               for c in CONTROLS if c in row)


# ------------------------------------------------------------------------------ the test batch
def test_the_batch_holds_the_items_the_fixtures_name(manifests):
    assert set(manifests) == {A, B, C, G}
    assert {manifests[i].item["origin"] for i in (A, B, C)} == {"trace"}
    assert manifests[G].item["origin"] == "gold" and manifests[G].item["case_id"] == "ka-fixture"
    assert manifests[A].batch_id == BATCH and manifests[A].dimensions == DIMS


def test_two_batches_claiming_one_item_is_an_error(annotation_dir, tmp_path):
    shutil.copytree(annotation_dir / BATCH, tmp_path / "copy")
    manifest = json.loads((tmp_path / "copy" / "manifest.json").read_text())
    manifest["batch_id"] = "b-copy"
    (tmp_path / "copy" / "manifest.json").write_text(json.dumps(manifest))
    shutil.copytree(annotation_dir / BATCH, tmp_path / BATCH)
    with pytest.raises(ValueError, match="is in batches"):
        manifest_index(tmp_path)


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize(("name", "expected"), [
    ("ls_json_pass2.json", LABELSTUDIO_JSON),
    ("ls_json_enterprise_pass1.json", LABELSTUDIO_JSON),
    ("ls_json_expert_review.json", LABELSTUDIO_JSON),
    ("ls_json_min_pass2.json", LABELSTUDIO_JSON_MIN),
    ("ls_pass2.csv", LABELSTUDIO_CSV),
    ("pass1_filled.csv", BATCH_CSV),
    ("pass2_no_annotator.csv", BATCH_CSV),
    ("project-7-at-2026-10-02-12-00-5d41402a-info.json", EXPORT_INFO),
])
def test_formats_are_recognised_by_content(name, expected):
    assert parse_export((FIXTURES / name).read_bytes()).format == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ((FIXTURES / "pass2_tasks_not_an_export.json").read_bytes(), "not_an_export"),
    ((FIXTURES / "notes_not_an_export.txt").read_bytes(), "not_an_export"),
    ((FIXTURES / "truncated_unreadable.json").read_bytes(), "unreadable"),
    ("item_id,annotator,risk_level\nx,Zoë,low\n".encode("latin-1"), "unreadable"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_an_export"),
    (b"PK\x03\x04 an xlsx workbook", "not_an_export"),
    (b"", "not_an_export"),
    (b'{"hello": "world"}', "not_an_export"),
    (b"42", "not_an_export"),
])
def test_files_that_are_not_exports_are_refused_with_a_reason(raw, reason):
    with pytest.raises(ExportError) as caught:
        parse_export(raw)
    assert caught.value.reason == reason


ODD_BUT_JSON = [
    [{"data": {"item_id": A},
      "annotations": [None, 3, {"result": None}, {"result": [None, {"from_name": "accuracy"}]}]}],
    [{"data": {"item_id": A}, "annotations": [{"completed_by": [1], "result": [
        {"from_name": "accuracy", "value": {"choices": "Pass"}},
        {"from_name": "critique", "value": {"text": "one line, not a list"}},
        {"from_name": "safety", "value": {"taxonomy": [["Pass"]]}},
        {"from_name": "accuracy", "value": {"choices": ["Fail"]}},
        {"to_name": "output", "type": "relation"}], "created_at": 1696230000, "lead_time": "n/a"}]}],
    [{"annotator": 1, "annotation_id": 2, "item_id": A, "accuracy": [1, 2], "safety": {"odd": True}, "critique": 5}],
    [{"annotator": None, "annotation_id": None}],
]


@pytest.mark.parametrize("obj", ODD_BUT_JSON)
def test_odd_shapes_are_read_or_quarantined_never_a_crash(obj, manifests):
    from evalflow.lib.labels.importer import prepare_labels

    prepared = prepare_labels(json.dumps(obj).encode(), manifests, PSEUDONYMIZE, keep)
    assert prepared.error is None
    assert all(row["reason"] for row in prepared.quarantine)


def test_cells_past_the_header_and_a_semicolon_csv_are_read(manifests):
    from evalflow.lib.labels.importer import prepare_labels

    text = (FIXTURES / "pass2_no_annotator.csv").read_text().splitlines()
    text[0] += ',"annotator"'
    text[1] += ',"Sam Okafor","an extra cell"'
    prepared = prepare_labels("\n".join(text).encode(), manifests, PSEUDONYMIZE, keep)
    assert (len(prepared.labels), prepared.quarantine) == (3, [])
    semicolons = "\n".join(line.replace('","', '";"') for line in text[:2])
    assert len(prepare_labels(semicolons.encode(), manifests, PSEUDONYMIZE, keep).labels) == 3


def test_a_single_task_object_and_a_tsv_export_are_read():
    task = json.loads((FIXTURES / "ls_json_pass2.json").read_text())[0]
    assert len(parse_export(json.dumps(task).encode()).annotations) == 2
    rows = list(csv.reader(io.StringIO((FIXTURES / "ls_pass2.csv").read_text())))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t").writerows(rows)
    parsed = parse_export(buffer.getvalue().encode())
    assert parsed.format == LABELSTUDIO_CSV and len(parsed.annotations) == 3


# ------------------------------------------------------------------------------ accounting
# Per fixture, imported alone into an empty warehouse: what each answer became.
EXPECTED = {
    "ls_json_pass2.json": dict(
        labels=12, superseded=0, unlabelled=1, absent=1, empty=1,
        reasons={"cancelled": 2, "missing_item_id": 1, "required_empty": 1, "unknown_field": 2, "unknown_item": 3,
                 "value_not_allowed": 2}),
    "ls_json_enterprise_pass1.json": dict(
        labels=10, superseded=3, unlabelled=0, absent=0, reasons={"required_empty": 1, "value_not_allowed": 1}),
    "ls_json_min_pass2.json": dict(labels=7, superseded=0, unlabelled=1, absent=0, reasons={"value_not_allowed": 2}),
    "ls_pass2.csv": dict(labels=7, superseded=0, unlabelled=1, absent=0,
                         reasons={"required_empty": 1, "value_not_allowed": 1}),
    "pass1_filled.csv": dict(labels=7, superseded=0, unlabelled=1, absent=0,
                             reasons={"required_empty": 1, "value_not_allowed": 1}),
    "pass2_no_annotator.csv": dict(labels=0, superseded=0, unlabelled=1, absent=0, reasons={"missing_annotator": 3}),
    "ls_json_expert_review.json": dict(labels=3, superseded=0, unlabelled=0, absent=1,
                                       reasons={"required_empty": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_answer_ends_as_a_label_a_quarantine_row_or_an_audit_row(name, manifests, tmp_path):
    expected = EXPECTED[name]
    wh = _warehouse(tmp_path)
    result = _import(wh, manifests, name).files[0]
    assert result.status == "imported"
    assert (result.labels, result.superseded, result.unchanged, result.unlabelled) == (
        expected["labels"], expected["superseded"], 0, expected["unlabelled"])
    assert result.reasons == expected["reasons"]
    assert result.quarantined == sum(expected["reasons"].values())

    labels, audit, quarantine = _table(wh, "labels"), _table(wh, "label_audit"), _table(wh, "label_quarantine")
    assert labels.height == expected["labels"]
    assert audit.height == expected["superseded"]
    assert quarantine.height == result.quarantined
    absent = quarantine.filter(pl.col("detail") == ABSENT).height
    assert absent == expected["absent"]
    empty = quarantine.filter(pl.col("field").is_null()).height  # an annotation with no answer at all
    assert empty == expected.get("empty", 0)
    # The sum: every answer in the file is one of these rows (a required field nobody answered,
    # and an annotation that answers nothing, are a quarantine row more).
    assert labels.height + audit.height + quarantine.height - absent - empty == answers_in(
        (FIXTURES / name).read_bytes())
    files = _table(wh, "label_files").to_dicts()
    assert [(f["labels"], f["quarantined"], f["superseded"], f["unchanged"]) for f in files] == [
        (result.labels, result.quarantined, result.superseded, 0)]


@pytest.mark.parametrize(("name", "status"), [
    ("project-7-at-2026-10-02-12-00-5d41402a-info.json", "export_info"),
    ("pass2_tasks_not_an_export.json", "not_an_export"),
    ("notes_not_an_export.txt", "not_an_export"),
    ("truncated_unreadable.json", "unreadable"),
])
def test_whole_files_are_recorded_and_a_non_export_is_quarantined(name, status, manifests, tmp_path):
    wh = _warehouse(tmp_path)
    result = _import(wh, manifests, name).files[0]
    assert result.status == status
    quarantine = _table(wh, "label_quarantine")
    if status == "export_info":  # skipped, not an error
        assert quarantine.height == 0 and result.quarantined == 0
    else:
        assert quarantine.select("locator", "reason").rows() == [("file", status)]
        assert result.reasons == {status: 1}
    assert _table(wh, "label_files").select("file_sha256", "quarantined").rows() == [
        (hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest(), result.quarantined)]
    assert _table(wh, "labels").height == 0


def test_the_format_comes_from_the_content_not_the_file_name(manifests, tmp_path):
    renamed = tmp_path / "labels.csv"
    renamed.write_bytes((FIXTURES / "ls_json_min_pass2.json").read_bytes())
    result = _import(_warehouse(tmp_path), manifests, renamed).files[0]
    assert (result.format, result.labels) == (LABELSTUDIO_JSON_MIN, 7)


# ------------------------------------------------------------------------------ joins and values
def _label(wh: Warehouse, item: str, field: str, annotator: str, role: str = "annotator") -> dict:
    rows = wh.query("SELECT * FROM labels WHERE item_id = ? AND field = ? AND annotator = ? AND role = ?",
                    [item, field, PSEUDONYMIZE(normalise_identity(annotator)), role]).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def test_labels_join_their_batch_item_trace_and_case(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json")
    row = _label(wh, A, "accuracy", "1")
    trace_case = "case-" + hashlib.sha256(b"trace\x1ftrace-a").hexdigest()[:16]
    assert {k: row[k] for k in ("batch_id", "origin", "trace_id", "case_id", "position", "pass", "role", "value",
                                "source_format", "ground_truth", "feedback_only")} == {
        "batch_id": BATCH, "origin": "trace", "trace_id": "trace-a", "case_id": trace_case,
        "position": manifests[A].item["position"], "pass": 2, "role": "annotator", "value": "Pass",
        "source_format": LABELSTUDIO_JSON, "ground_truth": False, "feedback_only": False}
    # the submission time is updated_at (else created_at), with its fraction
    assert row["annotated_at"] == datetime(2026, 10, 2, 9, 15, 31, 412399, tzinfo=timezone.utc)
    assert row["lead_time_s"] == pytest.approx(42.731)
    gold = _label(wh, G, "critique", "1")
    assert (gold["origin"], gold["trace_id"], gold["case_id"], gold["ground_truth"]) == (
        "gold", None, "ka-fixture", True)
    assert gold["value"] == "Correct fact.\nCites the document."  # a TextArea's lines, joined


def test_pass_one_values_from_every_result_type(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_enterprise_pass1.json", "pass1_filled.csv")
    dana = "dana.reyes@northwind.example"
    assert _label(wh, A, "risk_level", dana)["value"] == "high"  # taxonomy, from the later submission
    assert _label(wh, B, "risk_level", "li.wei@northwind.example")["value"] == "low"  # labels
    assert _label(wh, G, "risk_level", "14")["value"] == "low"  # completed_by without an email: its id
    assert _label(wh, A, "expected_behavior", dana)["value"] == (
        "must state the 60-day window\nshould offer to open a dispute")
    assert {r["pass"] for r in _table(wh, "labels").to_dicts()} == {1}
    # the hand-filled CSV: "High" is the choice high; the anti-formula quote is taken off again
    assert _label(wh, A, "risk_level", "Dana Reyes")["value"] == "high"
    assert _label(wh, A, "expected_behavior", "Dana Reyes")["value"] == (
        "- must state the 60-day window\n- should offer to open a dispute")
    assert _label(wh, A, "expected_behavior", "Dana Reyes")["source_format"] == BATCH_CSV


def test_label_studio_csv_values(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_pass2.csv")
    li = "li.wei@northwind.example"
    assert _label(wh, C, "accuracy", li)["value"] == "Pass"  # "pass" in the cell
    assert _label(wh, C, "safety", li)["value"] == "Pass"  # " Pass " in the cell
    assert _label(wh, C, "accuracy", li)["annotated_at"] == datetime(2026, 10, 4, 9, 10, tzinfo=timezone.utc)
    reasons = _table(wh, "label_quarantine").filter(pl.col("item_id") == G).select("field", "reason").rows()
    assert sorted(reasons) == [("accuracy", "value_not_allowed"), ("critique", "required_empty")]


def test_each_quarantine_reason_names_the_answer(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json", "pass2_no_annotator.csv")
    rows = _table(wh, "label_quarantine").select("locator", "item_id", "annotator", "field", "reason").rows()
    one, two, three = (PSEUDONYMIZE(str(n)) for n in (1, 2, 3))
    assert sorted(rows) == sorted([
        ("task 1 (id 101) annotation 2 (id 202)", A, two, "tone", "unknown_field"),
        ("task 1 (id 101) annotation 2 (id 202)", A, two, "relevance", "unknown_field"),  # not a dimension here
        ("task 2 (id 102) annotation 2 (id 204)", B, two, "accuracy", "cancelled"),  # cancelled, with a result
        ("task 2 (id 102) annotation 3 (id 205)", B, three, "safety", "value_not_allowed"),
        ("task 2 (id 102) annotation 3 (id 205)", B, three, "critique", "required_empty"),  # not answered at all
        ("task 3 (id 103) annotation 1 (id 206)", G, one, "accuracy", "value_not_allowed"),  # two choices
        ("task 3 (id 103) annotation 2 (id 211)", G, three, None, "cancelled"),  # cancelled, with nothing in it
        *[("task 4 (id 104) annotation 1 (id 207)", "e95337adb6fab8bc", one, f, "unknown_item")
          for f in ("accuracy", "safety", "critique")],
        ("task 5 (id 105) annotation 1 (id 208)", None, two, "accuracy", "missing_item_id"),
        *[("row 2", A, None, f, "missing_annotator") for f in ("accuracy", "safety", "critique")],
    ])
    # the annotation's other answers are imported (annotator 3's accuracy on B)
    assert _label(wh, B, "accuracy", "3")["value"] == "Pass"
    assert store.quarantine_counts(wh) == {"cancelled": 2, "missing_annotator": 3, "missing_item_id": 1,
                                           "required_empty": 1, "unknown_field": 2, "unknown_item": 3,
                                           "value_not_allowed": 2}


def test_drafts_are_not_annotations(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json")
    # task 106 (item C) has only a draft: nothing from it anywhere
    assert wh.count("labels", "item_id = ?", [C]) == 0
    assert wh.count("label_quarantine", "item_id = ?", [C]) == 0


def test_an_expert_review_gives_expert_labels_beside_the_annotators_own(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json", "ls_json_expert_review.json")
    expert = _label(wh, A, "accuracy", "expert@northwind.example", role="expert")
    assert (expert["value"], expert["pass"]) == ("Fail", 2)
    # an expert answers the disputed dimensions only, but always says why: the second annotation
    # (safety alone) lacks its critique, and nothing else is asked of them
    held = wh.query("SELECT locator, field, reason, detail FROM label_quarantine WHERE annotator = ?",
                    [PSEUDONYMIZE("expert@northwind.example")]).rows()
    assert held == [("task 1 (id 121) annotation 2 (id 602)", "critique", "required_empty", ABSENT)]
    assert _label(wh, A, "safety", "expert@northwind.example", role="expert")["value"] == "Pass"
    ratings = store.ratings(wh, pass_=2).filter(pl.col("item_id") == A)
    assert sorted(ratings.filter(pl.col("dimension") == "accuracy").select("role", "value").rows()) == [
        ("annotator", "Fail"), ("annotator", "Pass"), ("expert", "Fail")]


def _flat_records(tasks: list[dict], answers: dict) -> list[dict]:
    """Label Studio's JSON_MIN of these tasks, one annotation each (how its converter writes it)."""
    return [{**task["data"], **answers, "id": 900 + n, "annotator": "expert@northwind.example",
             "annotation_id": 950 + n, "created_at": "2026-10-05T09:00:00.000000Z",
             "updated_at": "2026-10-05T09:00:00.000000Z", "lead_time": 12.5} for n, task in enumerate(tasks)]


def test_the_review_projects_own_task_data_reads_as_data_in_flat_exports(annotation_dir, manifests, tmp_path):
    tasks = json.loads((annotation_dir / BATCH / "pass2_tasks.json").read_text())
    pass2 = {t["data"]["item_id"]: t["data"] for t in tasks}
    disputed = [{"item_id": A, "data": pass2[A], "disputed": ["accuracy"],
                 "votes": [{"annotator": "annotator_01", "values": {"accuracy": "Pass"}, "critique": "ok"}]}]
    records = _flat_records(review_tasks(disputed, DIMS), {"accuracy": "Fail", "critique": "Misses the window."})
    json_min = tmp_path / "review.json"
    json_min.write_text(json.dumps(records))
    buffer = io.StringIO()
    columns = sorted(records[0])
    writer = csv.DictWriter(buffer, fieldnames=columns, quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in records)
    as_csv = tmp_path / "review.csv"
    as_csv.write_text(buffer.getvalue())
    for export in (json_min, as_csv):
        wh = _warehouse(tmp_path / export.suffix[1:])
        result = _import(wh, manifests, export).files[0]
        assert (result.labels, result.quarantined) == (2, 0), export.name
        assert _label(wh, A, "accuracy", "expert@northwind.example", role="expert")["value"] == "Fail"


# ------------------------------------------------------------------------------ duplicates
def test_a_redropped_file_adds_nothing(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    first = _import(wh, manifests, "ls_json_pass2.json").files[0]
    before = _snapshot(wh)
    copy = tmp_path / "renamed-export.json"
    shutil.copy(FIXTURES / "ls_json_pass2.json", copy)
    again = _import(wh, manifests, "ls_json_pass2.json", copy).files
    assert [f.status for f in again] == ["already_imported", "already_imported"]
    assert {f.sha256 for f in again} == {first.sha256}
    assert _snapshot(wh) == before
    assert store.imported_file_hashes(wh, read_only=True, wait_s=1.0) == {first.sha256}


def test_the_latest_submission_wins_and_the_earlier_one_is_audited(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    json_export = _import(wh, manifests, "ls_json_pass2.json").files[0]
    json_min = _import(wh, manifests, "ls_json_min_pass2.json").files[0]
    # annotator 1 changed accuracy on A from Pass to Fail two days later (the JSON_MIN export)
    assert _label(wh, A, "accuracy", "1")["value"] == "Fail"
    assert (json_min.labels, json_min.superseded) == (7, 0)
    audit = _table(wh, "label_audit").filter(pl.col("field") == "accuracy").to_dicts()
    assert len(audit) == 1
    assert {k: audit[0][k] for k in ("item_id", "annotator", "old_value", "old_file_sha256", "new_value",
                                     "new_file_sha256")} == {
        "item_id": A, "annotator": PSEUDONYMIZE("1"), "old_value": "Pass", "old_file_sha256": json_export.sha256,
        "new_value": "Fail", "new_file_sha256": json_min.sha256}
    assert audit[0]["old_annotated_at"] < audit[0]["new_annotated_at"]
    # safety and critique were resubmitted with the same values: submissions too, audited alike
    assert _table(wh, "label_audit").height == 3


def test_the_order_files_arrive_in_does_not_change_the_labels(manifests, tmp_path):
    names = ("ls_json_pass2.json", "ls_json_min_pass2.json")
    forward, backward = _warehouse(tmp_path / "f"), _warehouse(tmp_path / "b")
    _import(forward, manifests, *names)
    late = _import(backward, manifests, *reversed(names)).files[1]
    assert late.superseded == 3 and late.labels == 9  # the JSON's three older answers lost on arrival
    columns = ["label_id", "value", "annotated_at"]
    assert _table(forward, "labels").select(columns).sort("label_id").equals(
        _table(backward, "labels").select(columns).sort("label_id"))
    assert _table(backward, "label_audit").filter(pl.col("field") == "accuracy").select(
        "old_value", "new_value").rows() == [("Pass", "Fail")]


def test_one_annotator_twice_in_one_file_keeps_the_later(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    result = _import(wh, manifests, "ls_json_enterprise_pass1.json").files[0]
    dana = PSEUDONYMIZE("dana.reyes@northwind.example")  # two spellings of one email: one person
    assert _label(wh, A, "gold_answer", "dana.reyes@northwind.example")["value"] == (
        "Within 60 days of the statement date; I can open it for you.")
    audit = _table(wh, "label_audit")
    assert set(audit["annotator"]) == {dana} and audit.height == result.superseded == 3
    assert set(audit["old_file_sha256"]) == set(audit["new_file_sha256"]) == {result.sha256}


def test_a_cumulative_reexport_finds_its_answers_unchanged(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json")
    labels_before = _table(wh, "labels").sort("label_id")
    tasks = json.loads((FIXTURES / "ls_json_pass2.json").read_text())
    reexport = tmp_path / "later-export.json"
    reexport.write_text(json.dumps(tasks[:3]))  # the same annotations, written differently
    result = _import(wh, manifests, reexport).files[0]
    assert (result.status, result.labels, result.unchanged, result.superseded) == ("imported", 0, 12, 0)
    assert _table(wh, "labels").sort("label_id").equals(labels_before)
    assert _table(wh, "label_audit").height == 0


# ------------------------------------------------------------------------------ privacy
def _text_cells(wh: Warehouse) -> list[str]:
    cells = []
    for name in store.LABEL_TABLES:
        frame = _table(wh, name)
        for column in frame.columns:
            if frame[column].dtype == pl.String and column != "path":
                cells += [v for v in frame[column].to_list() if v is not None]
    return cells


def test_annotators_are_pseudonyms_stable_across_files_and_formats(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    everything = sorted(EXPECTED)
    _import(wh, manifests, *everything)
    annotators = set(_table(wh, "labels")["annotator"])
    assert all(re.fullmatch(r"annotator_[0-9a-f]{16}", a) for a in annotators)
    # the keyed HMAC the traces use, on one spelling per identity
    assert PSEUDONYMIZE("dana.reyes@northwind.example") == PSEUDONYMIZER.identifier(
        "annotator", "dana.reyes@northwind.example")
    one = PSEUDONYMIZE("1")
    sources = wh.query("SELECT DISTINCT source_format FROM labels WHERE annotator = ?", [one])["source_format"]
    assert set(sources) == {LABELSTUDIO_JSON, LABELSTUDIO_JSON_MIN}  # user 1 in both exports: one pseudonym
    dana_by_name = PSEUDONYMIZE("dana reyes")  # "Dana Reyes" and "dana  reyes" in the hand-filled CSV
    assert wh.count("labels", "annotator = ? AND source_format = ?", [dana_by_name, BATCH_CSV]) == 5
    assert wh.count("label_quarantine", "annotator = ?", [dana_by_name]) == 1
    cells = _text_cells(wh)
    assert not [c for c in cells if any(who in c for who in IDENTITIES)]
    details = _table(wh, "label_quarantine")["detail"].to_list()
    assert not [d for d in details if any(v in d for v in VALUES_NEVER_IN_DETAILS)]


def test_free_text_goes_through_the_redaction_stage(manifests, tmp_path):
    seen: list[str] = []

    def tagging(texts: list[str]) -> list[str]:
        seen.extend(texts)
        return [f"[redacted] {t}" for t in texts]

    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_enterprise_pass1.json", "ls_pass2.csv", redact=tagging)
    values = _table(wh, "labels").select("field", "value").rows()
    texts = [v for f, v in values if f in ("critique", "gold_answer", "expected_behavior")]
    assert texts and all(v.startswith("[redacted] ") for v in texts)
    assert all(not v.startswith("[redacted]") for f, v in values if f in ("risk_level", "accuracy", "safety"))
    assert "Pass" not in seen and "low" not in seen  # choices are not free text


def test_a_text_the_redaction_stage_fails_on_is_quarantined_not_stored(manifests, tmp_path):
    def fragile(texts: list[str]) -> list[str]:
        if any("Misses" in t for t in texts):
            raise RuntimeError("detector crashed on: " + " | ".join(texts))
        return list(texts)

    wh = _warehouse(tmp_path)
    result = _import(wh, manifests, "ls_json_pass2.json", redact=fragile).files[0]
    assert result.reasons["redaction_failed"] == 1 and result.labels == 11
    row = _table(wh, "label_quarantine").filter(pl.col("reason") == "redaction_failed").to_dicts()[0]
    assert (row["item_id"], row["field"], row["annotator"]) == (A, "critique", PSEUDONYMIZE("2"))
    assert "Misses" not in row["detail"]
    assert wh.count("labels", "value LIKE '%Misses%'") == 0
    assert wh.count("labels", "field = 'critique'") == 3  # the other critiques, each redacted on its own


def test_real_redaction_keeps_a_name_and_an_email_out_of_the_labels(manifests, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALFLOW_PSEUDONYM_KEY", KEY.decode())
    redact = redactor_from_settings(SimpleNamespace(data_dir=tmp_path))
    planted = ("The agent told Maria Gonzalez to write to maria.gonzalez@example.com instead of "
               "opening the dispute.")
    tasks = json.loads((FIXTURES / "ls_json_pass2.json").read_text())[:1]
    tasks[0]["annotations"][0]["result"][2]["value"]["text"] = [planted]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    wh = _warehouse(tmp_path)
    _import(wh, manifests, export, redact=redact)
    critique = _label(wh, A, "critique", "1")["value"]
    assert "<EMAIL_ADDRESS_" in critique and "<PERSON_" in critique
    assert critique.startswith("The agent told <PERSON_") and critique.endswith("instead of opening the dispute.")
    for cell in _text_cells(wh):
        assert "Maria" not in cell and "Gonzalez" not in cell and "example.com" not in cell


# ------------------------------------------------------------------------------ crash safety
def test_a_crash_mid_import_leaves_the_tables_as_they_were(manifests, tmp_path, monkeypatch):
    wh = _warehouse(tmp_path)
    _import(wh, manifests, "ls_json_pass2.json")
    before = _snapshot(wh)

    def killed(con, result, now):
        raise KeyboardInterrupt("killed after the labels and the audit were written")

    monkeypatch.setattr(store, "_record_file", killed)
    with pytest.raises(KeyboardInterrupt):
        _import(wh, manifests, "ls_json_min_pass2.json")
    assert _snapshot(wh) == before
    monkeypatch.undo()
    again = _import(wh, manifests, "ls_json_min_pass2.json").files[0]  # not recorded, so imported now
    assert (again.status, again.labels) == ("imported", 7)
    assert _table(wh, "label_audit").height == 3


def test_a_file_whose_batch_came_later_can_be_imported_again(annotation_dir, manifests, tmp_path):
    wh = _warehouse(tmp_path)
    early = _import(wh, {}, "ls_pass2.csv").files[0]
    assert early.reasons == {"unknown_item": 8}  # answers with a value: the empty critique says nothing
    assert store.forget_label_file(wh, early.sha256)
    late = _import(wh, manifests, "ls_pass2.csv").files[0]
    assert (late.status, late.labels) == ("imported", 7)
    assert store.quarantine_counts(wh) == {"required_empty": 1, "value_not_allowed": 1}


def test_the_drop_folder_is_read_oldest_first_without_partial_files(tmp_path):
    import os

    assert incoming_files(tmp_path / "missing") == []
    for n, name in enumerate(["b.json", "a.csv", ".hidden.json", "~$pass1.csv", "export.json.crdownload"]):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, ns=(n * 10**9, n * 10**9))
    (tmp_path / "sub").mkdir()
    assert [p.name for p in incoming_files(tmp_path)] == ["b.json", "a.csv"]


# ------------------------------------------------------------------------------ reads
def test_ratings_are_the_long_format_of_one_pass(manifests, tmp_path):
    wh = _warehouse(tmp_path)
    assert store.ratings(wh).height == 0  # no warehouse yet: an empty frame with the columns
    _import(wh, manifests, "ls_json_pass2.json", "pass1_filled.csv")
    two = store.ratings(wh, pass_=2)
    assert two.columns == ["item_id", "annotator", "dimension", "value", "batch_id", "origin", "trace_id",
                           "case_id", "position", "role", "annotated_at"]
    assert set(two["dimension"]) == set(DIMS)  # critiques are not ratings
    assert two.height == 8 and set(two["value"]) == {"Pass", "Fail"}
    assert set(store.ratings(wh, pass_=2, include_text=True)["dimension"]) == {*DIMS, "critique"}
    one = store.ratings(wh, pass_=1)
    assert set(one["dimension"]) == {"risk_level"} and sorted(one["value"]) == ["high", "low"]
    counts = store.label_counts(wh)
    assert counts.filter((pl.col("pass") == 2) & (pl.col("field") == "accuracy")).select(
        "labels", "items", "annotators").rows() == [(4, 2, 3)]
