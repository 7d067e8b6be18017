"""Read what annotators hand back, whatever its format, into one shape: annotations with results.

Formats are recognised by content, never by file name (people rename downloads):

- `labelstudio_json`: Label Studio's JSON export, a list of tasks each with `data` and
  `annotations[]` (or `completions[]` in old versions) holding `result[]`; one task object on
  its own (the per-task files of a cloud target storage) is read as a list of one.
- `labelstudio_json_min`: JSON_MIN, a list of flat records: the task's data fields, one key per
  control, and `annotator`, `annotation_id`, `created_at`, `updated_at`, `lead_time`, `id`.
- `labelstudio_csv`: Label Studio's CSV (or TSV) export, JSON_MIN flattened into columns
  (columns sorted by name; a data key that collides with a control name becomes `_data_<key>`).
- `batch_csv`: the batch's own pass1.csv / pass2.csv filled in by hand, with an `annotator`
  column added (cells that start like a formula carry a leading single quote; removed here).
- `labelstudio_export_info`: the `*-info.json` Label Studio writes beside an export in a
  project's export folder (project, platform, download): recognised and skipped.

How Label Studio's exports vary (see the fixtures in evalflow_tests/fixtures/labels/import/):
`completed_by` is a user id or an object with `email`; results come as `choices`, `textarea`
(`value.text` list), `rating`, `labels` and `taxonomy` (paths, joined with "/"); `drafts` sit
beside `annotations` and are not annotations; a cancelled annotation (`was_cancelled`, or
`skipped` in old versions) can still carry results; Enterprise adds `reviews`, `history` and
`agreement`, which say nothing about the labels themselves. JSON_MIN and CSV leave cancelled
annotations out and give a task without annotations one row with an empty annotator.

Nothing here validates values against a configuration (importer.py does); this module only
says what the file holds. Errors never quote the file's content.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from evalflow.lib.annotation.tasks import PASS1_FIELDS, PASS2_FIELDS
from evalflow.lib.labels.review import VOTES_FIELD

LABELSTUDIO_JSON = "labelstudio_json"
LABELSTUDIO_JSON_MIN = "labelstudio_json_min"
LABELSTUDIO_CSV = "labelstudio_csv"
BATCH_CSV = "batch_csv"
EXPORT_INFO = "labelstudio_export_info"
FORMATS = (LABELSTUDIO_JSON, LABELSTUDIO_JSON_MIN, LABELSTUDIO_CSV, BATCH_CSV)

# Keys of a flat record (JSON_MIN, CSV) that are not controls: Label Studio's own, the task data
# the batch writes, and what the expert review project adds to it (`review`, the votes panel).
# Task data keys starting with "review" and Label Studio's `_data_` / `_transcript` columns are
# not controls either.
FLAT_META_KEYS = frozenset({"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time",
                            "agreement", "history", "annotated_at", VOTES_FIELD, *PASS2_FIELDS})
_FLAT_META_PREFIXES = ("review", "_data_")
_FLAT_META_SUFFIXES = ("_transcript",)
_BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\x89PNG", b"\x1f\x8b", b"\xd0\xcf\x11\xe0")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class ExportError(ValueError):
    """The whole file cannot be read as labels: `reason` is not_an_export or unreadable, and the
    message says why without quoting the file."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Result:
    """One control's answer in one annotation. `values` are strings: the chosen options, the
    text lines, a rating, label names or taxonomy paths; empty when the answer is empty."""

    field: str
    values: list[str]
    kind: str  # choices | text | rating | labels | taxonomy | cell


@dataclass
class Annotation:
    """One annotator's submission for one task (a JSON annotation, a flat record, a CSV row)."""

    locator: str  # where in the file: "task 3 (id 12) annotation 2 (id 45)", "row 7"
    item_id: str | None
    annotator: str | None  # the raw identity (user id, email or name): pseudonymise before storing
    annotated_at: datetime | None
    lead_time_s: float | None
    results: list[Result]
    ground_truth: bool = False
    cancelled: bool = False
    expert: bool = False  # from an expert review project (data.review == "expert")
    pass_hint: int | None = None  # from the task data: 2 when it shows the model's output
    flat: bool = False  # a flat record: a control column left empty reads as an empty result


@dataclass
class ParsedExport:
    format: str
    annotations: list[Annotation] = field(default_factory=list)
    unlabelled: int = 0  # tasks or rows that carry no annotation at all


def safe_token(value: Any) -> str:
    """An id from the file, fit for a locator or a quarantine detail: kept when it looks like
    an id, else a short note (it could be anything, even someone's name)."""
    text = str(value)
    return text if _SAFE_ID.match(text) else "(not an id)"


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO timestamp (Z, an offset, or none: read as UTC) as an aware datetime; None when absent
    or unreadable (the label is kept; only its ordering against later submissions is lost)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _float(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _strings(items: Any) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    return [str(item) for item in items if item is not None]


def _taxonomy_paths(paths: Any) -> list[str]:
    out = []
    for path in paths if isinstance(paths, list) else [paths]:
        out.append("/".join(_strings(path)) if isinstance(path, list) else str(path))
    return out


def _value_parts(value: dict) -> tuple[str, list[str]]:
    """(kind, values) of one result's `value` object, whatever the control type."""
    if "choices" in value:
        return "choices", _strings(value["choices"])
    if "taxonomy" in value:
        return "taxonomy", _taxonomy_paths(value["taxonomy"])
    if "labels" in value:
        return "labels", _strings(value["labels"])
    if "rating" in value:
        return "rating", _strings(value["rating"])
    if "text" in value:
        return "text", _strings(value["text"])
    return "unknown", []


def _merge(results: list[Result]) -> list[Result]:
    """One Result per field: several results of one control in one annotation (a TextArea with
    several regions, repeated choices) are one answer."""
    merged: dict[str, Result] = {}
    for result in results:
        if result.field in merged:
            merged[result.field].values.extend(result.values)
        else:
            merged[result.field] = Result(result.field, list(result.values), result.kind)
    return list(merged.values())


# ---------------------------------------------------------------------------- Label Studio JSON
def _annotator_identity(completed_by: Any) -> str | None:
    # Enterprise: {"id", "email", "first_name", ...}; open source: the user id. The email is what
    # JSON_MIN and CSV write for the object form, so the same person matches across formats.
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("email") or completed_by.get("id")
    if completed_by is None or completed_by == "" or isinstance(completed_by, bool):
        return None
    return str(completed_by)


def _task_hints(data: dict) -> tuple[str | None, bool, int | None]:
    item_id = data.get("item_id")
    item_id = None if item_id is None or str(item_id).strip() == "" else str(item_id).strip()
    expert = str(data.get("review", "")).strip().lower() == "expert"
    pass_hint = 2 if "output" in data else (1 if "query" in data else None)
    return item_id, expert, pass_hint


def _json_annotations(tasks: list) -> ParsedExport:
    parsed = ParsedExport(LABELSTUDIO_JSON)
    for t_index, task in enumerate(tasks, start=1):
        task_label = f"task {t_index}" + (f" (id {safe_token(task['id'])})" if task.get("id") is not None else "")
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        item_id, expert, pass_hint = _task_hints(data)
        annotations = task.get("annotations", task.get("completions")) or []
        if not annotations:
            parsed.unlabelled += 1
        for a_index, annotation in enumerate(annotations, start=1):
            if not isinstance(annotation, dict):
                annotation = {"result": []}
            locator = f"{task_label} annotation {a_index}"
            if annotation.get("id") is not None:
                locator += f" (id {safe_token(annotation['id'])})"
            results = []
            for result in annotation.get("result") or []:
                if not isinstance(result, dict) or not result.get("from_name"):
                    continue  # relations and other results that name no control carry no answer
                value = result.get("value") if isinstance(result.get("value"), dict) else {}
                kind, values = _value_parts(value)
                results.append(Result(str(result["from_name"]), values, kind))
            parsed.annotations.append(Annotation(
                locator=locator,
                item_id=item_id,
                annotator=_annotator_identity(annotation.get("completed_by")),
                annotated_at=parse_timestamp(annotation.get("updated_at") or annotation.get("created_at")),
                lead_time_s=_float(annotation.get("lead_time")),
                results=_merge(results),
                ground_truth=bool(annotation.get("ground_truth")),
                cancelled=bool(annotation.get("was_cancelled") or annotation.get("skipped")),
                expert=expert,
                pass_hint=pass_hint,
            ))
    return parsed


# ---------------------------------------------------------------------------- flat records
def is_flat_meta(key: str) -> bool:
    return (key in FLAT_META_KEYS or key.startswith(_FLAT_META_PREFIXES)
            or key.endswith(_FLAT_META_SUFFIXES))


def _structured(value: Any) -> tuple[str, list[str]] | None:
    """JSON_MIN's shapes for anything but one choice or one text: {"choices": [...]},
    {"text": [...]}, [{"rating": 4}], [{"taxonomy": [[...]]}], [{"labels": [...], ...}]."""
    if isinstance(value, dict):
        kind, values = _value_parts(value)
        return None if kind == "unknown" else (kind, values)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        parts = [_value_parts(v) for v in value]
        if any(kind == "unknown" for kind, _ in parts):
            return None
        return parts[0][0], [text for _, values in parts for text in values]
    return None


def _flat_value(value: Any, from_csv: bool) -> tuple[str, list[str]]:
    if value is None:
        return "cell", []
    if from_csv and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        # The CSV export writes anything but one choice or one text as JSON; a critique that only
        # looks like JSON stays text.
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        found = _structured(decoded) if decoded is not None else None
        if found is not None:
            return found
    elif not from_csv:
        found = _structured(value)
        if found is not None:
            return found
        if isinstance(value, list):
            return "cell", _strings(value)
    text = str(value)
    return "cell", [text] if text.strip() else []


def _flat_annotation(record: dict, locator: str, from_csv: bool, batch_csv: bool) -> Annotation | None:
    """None for a row that holds no annotation (a task nobody annotated, a row nobody filled)."""
    record = {key: value for key, value in record.items() if isinstance(key, str)}  # csv: cells past the header
    data = {key[len("_data_"):] if key.startswith("_data_") else key: value for key, value in record.items()
            if key.startswith("_data_") or key in PASS2_FIELDS or key.startswith("review")}
    item_id, expert, pass_hint = _task_hints(data)
    if pass_hint is None and batch_csv:
        pass_hint = 1
    results = []
    for key, value in record.items():
        if is_flat_meta(key):
            continue
        kind, values = _flat_value(value, from_csv)
        results.append(Result(key, values, kind))
    annotator = record.get("annotator")
    annotator = None if annotator is None or str(annotator).strip() == "" else str(annotator).strip()
    has_answer = any(r.values for r in results)
    if annotator is None and not has_answer:
        return None
    if batch_csv and not has_answer:
        return None  # a row of the spreadsheet nobody filled in (the name may be filled down)
    return Annotation(
        locator=locator,
        item_id=item_id,
        annotator=annotator,
        annotated_at=parse_timestamp(record.get("updated_at") or record.get("created_at")
                                     or record.get("annotated_at")),
        lead_time_s=_float(record.get("lead_time")),
        results=results,
        expert=expert,
        pass_hint=pass_hint,
        flat=True,
    )


def _json_min_annotations(records: list) -> ParsedExport:
    parsed = ParsedExport(LABELSTUDIO_JSON_MIN)
    for index, record in enumerate(records, start=1):
        locator = f"record {index}"
        ids = [f"task id {safe_token(record['id'])}"] if record.get("id") is not None else []
        if record.get("annotation_id") is not None:
            ids.append(f"annotation id {safe_token(record['annotation_id'])}")
        if ids:
            locator += f" ({', '.join(ids)})"
        annotation = _flat_annotation(record, locator, from_csv=False, batch_csv=False)
        if annotation is None:
            parsed.unlabelled += 1
        else:
            parsed.annotations.append(annotation)
    return parsed


def _unquote(cell: str) -> str:
    # csv_export.py prefixes a cell that starts like a formula with "'" (CSV injection).
    return cell[1:] if cell.startswith("'") and cell[1:2] in _FORMULA_STARTS and len(cell) > 1 else cell


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_annotations(text: str) -> ParsedExport:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
        header = [name.strip() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = list(reader)
    except csv.Error as exc:
        raise ExportError("unreadable", f"not readable as CSV ({type(exc).__name__})") from None
    names = set(header)
    if {"annotator", "annotation_id"} <= names or {"annotation_id", "lead_time"} <= names:
        fmt = LABELSTUDIO_CSV
    elif set(PASS1_FIELDS) <= names:
        fmt = BATCH_CSV
    else:
        raise ExportError("not_an_export", "a CSV file that is neither a Label Studio export nor a batch's "
                                           "pass1.csv / pass2.csv (no item_id/annotation columns)")
    parsed = ParsedExport(fmt)
    for index, row in enumerate(rows, start=2):  # the spreadsheet's row number; the header is row 1
        if fmt == BATCH_CSV:
            row = {key: _unquote(value) if isinstance(value, str) else value for key, value in row.items()}
        annotation = _flat_annotation(row, f"row {index}", from_csv=True, batch_csv=fmt == BATCH_CSV)
        if annotation is None:
            parsed.unlabelled += 1
        else:
            parsed.annotations.append(annotation)
    return parsed


# ---------------------------------------------------------------------------- detection
def _is_export_info(obj: dict) -> bool:
    return isinstance(obj.get("project"), dict) and ("download" in obj or "platform" in obj)


def _is_ls_task(obj: Any) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("data"), dict)
            and isinstance(obj.get("annotations", obj.get("completions")), list))


def _is_json_min_record(obj: Any) -> bool:
    return isinstance(obj, dict) and "annotation_id" in obj and "annotator" in obj


def _from_json(obj: Any) -> ParsedExport:
    if isinstance(obj, dict):
        if _is_export_info(obj):
            return ParsedExport(EXPORT_INFO)
        if _is_ls_task(obj):
            return _json_annotations([obj])
        raise ExportError("not_an_export", "a JSON object that is not a Label Studio task or export")
    if not isinstance(obj, list):
        raise ExportError("not_an_export", "JSON that is not a list of tasks or records")
    if not obj:
        return ParsedExport(LABELSTUDIO_JSON)  # an export of a project with nothing in it
    if all(_is_ls_task(item) for item in obj):
        return _json_annotations(obj)
    if all(_is_json_min_record(item) for item in obj):
        return _json_min_annotations(obj)
    if all(isinstance(item, dict) and "data" in item for item in obj):
        raise ExportError("not_an_export", "Label Studio tasks without annotations (a task file, not an export)")
    raise ExportError("not_an_export", "a JSON list whose items are not all Label Studio tasks with annotations "
                                       "or all JSON_MIN records")


def parse_export(raw: bytes) -> ParsedExport:
    """The annotations in one file's bytes. Raises ExportError (not_an_export | unreadable)."""
    if raw.startswith(_BINARY_MAGIC) or b"\x00" in raw[:4096]:
        raise ExportError("not_an_export", "a binary file (a spreadsheet or archive? save it as CSV UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError("unreadable", f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    stripped = text.lstrip()
    if not stripped:
        raise ExportError("not_an_export", "an empty file")
    if stripped[0] in "[{":
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ExportError("unreadable", f"invalid JSON at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise ExportError("unreadable", "JSON nested too deeply") from None
        return _from_json(obj)
    return _csv_annotations(text)
